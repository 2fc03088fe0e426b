//===- CompiledThreadsTest.cpp - one compiled model, many threads at once -===//
//
// Issue 5's correctness item: the same compiled artifact, run from 8 threads at once, gives
// bitwise the same outputs as a single-threaded run. The reference is a run with the global
// thread pool at 1 thread; then 8 caller threads each run the model several times on the same
// inputs while the pool has 2 threads (so kernels' parallel loops run on the pool for one caller
// at a time and inline, with the same static partition, for the others), and every output must
// match the reference byte for byte. Models: the bundled example (examples/digits_cnn.onnx), and
// digits_cnn and resnet18 from the shared models when they are present (skipped when absent).
// Also checks the runtime's per-step profile and the compiler's per-step FLOPs
// (Model::run with a RunProfile, Model::kernelFlops).
//
//===----------------------------------------------------------------------===//
#include "GraphTestUtils.h"
#include "RuntimeTestUtils.h"
#include "TestUtils.h"

#include "tessel/Artifact/Writer.h"

#include "tessel/Compiler/Compile.h"
#include "tessel/Frontend/ONNX.h"
#include "tessel/Support/Npy.h"
#include "tessel/runtime/Model.h"
#include "tessel/runtime/ThreadPool.h"

#include <gtest/gtest.h>

#include <cstring>
#include <filesystem>
#include <random>
#include <thread>

using namespace tessel;
namespace fs = std::filesystem;

namespace {

std::vector<uint8_t> compileFile(const std::string &path) {
  Model m = loadOnnx(path);
  CompileOptions opts; // -O3, parallel + vectorized default schedules
  return compileModel(*m.graph, opts).artifact;
}

/// Seeded values in [-1, 1) for each f32 input of `model` (other dtypes: zero bytes).
std::vector<runtime::HostTensor> randomInputs(const runtime::Model &model, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1.f, 1.f);
  std::vector<runtime::HostTensor> in;
  for (const runtime::TensorDesc &d : model.inputs()) {
    runtime::HostTensor t(d);
    if (d.dtype == runtime::ElemType::f32)
      for (size_t i = 0; i < t.bytes.size() / 4; ++i)
        t.data<float>()[i] = u(rng);
    in.push_back(std::move(t));
  }
  return in;
}

/// Restores the global pool's thread count when it goes out of scope.
struct PoolThreads {
  int saved = runtime::ThreadPool::global().numThreads();
  explicit PoolThreads(int n) { runtime::ThreadPool::global().setNumThreads(n); }
  void set(int n) { runtime::ThreadPool::global().setNumThreads(n); }
  ~PoolThreads() { runtime::ThreadPool::global().setNumThreads(saved); }
};

void expectEightThreadsBitwiseAsOne(const runtime::Model &model,
                                    const std::vector<std::vector<runtime::HostTensor>> &inputs,
                                    int runsPerThread) {
  PoolThreads pool(1);
  std::vector<std::vector<runtime::HostTensor>> want;
  for (const auto &in : inputs)
    want.push_back(model.run(in));
  pool.set(2);
  test::expectThreadsBitwiseEqual(model, inputs, want, 8, runsPerThread);
}

std::string examplePath() {
  return (fs::path(TESSEL_SOURCE_DIR) / "examples" / "digits_cnn.onnx").string();
}

} // namespace

TEST(CompiledThreads, ExampleModelFromEightThreadsIsBitwiseTheOneThreadResult) {
  std::vector<uint8_t> bytes = compileFile(examplePath());
  runtime::Model model = runtime::Model::loadFromMemory(bytes.data(), bytes.size(), "digits_cnn");
  std::vector<std::vector<runtime::HostTensor>> inputs;
  for (unsigned seed = 1; seed <= 4; ++seed)
    inputs.push_back(randomInputs(model, seed));
  expectEightThreadsBitwiseAsOne(model, inputs, 25);
}

class CompiledThreadsShared : public ::testing::TestWithParam<const char *> {};

TEST_P(CompiledThreadsShared, FromEightThreadsIsBitwiseTheOneThreadResult) {
  fs::path dir = test::sharedModelsDir();
  fs::path onnx = dir / (std::string(GetParam()) + ".onnx");
  if (!fs::exists(onnx))
    GTEST_SKIP() << onnx << " is absent (set TESSEL_SHARED_MODELS to the shared models folder)";
  std::vector<uint8_t> bytes = compileFile(onnx.string());
  runtime::Model model = runtime::Model::loadFromMemory(bytes.data(), bytes.size(), GetParam());
  std::vector<std::vector<runtime::HostTensor>> inputs = {randomInputs(model, 7)};
  // The model's reference input too, when it is there and fits.
  fs::path npy = dir / (std::string(GetParam()) + ".in.npy");
  if (fs::exists(npy) && model.inputs().size() == 1) {
    Tensor t = readNpy(npy.string());
    runtime::HostTensor h(model.inputs()[0]);
    if (t.shape() == h.desc.shape && t.nbytes() == h.bytes.size()) {
      std::memcpy(h.bytes.data(), t.raw(), h.bytes.size());
      inputs.push_back({std::move(h)});
    }
  }
  expectEightThreadsBitwiseAsOne(model, inputs, 3);
}

INSTANTIATE_TEST_SUITE_P(SharedModels, CompiledThreadsShared,
                         ::testing::Values("digits_cnn", "resnet18"));

TEST(CompiledThreads, ProfileTimesEveryStepAndFlopsAreRecorded) {
  std::vector<uint8_t> bytes = compileFile(examplePath());
  runtime::Model model = runtime::Model::loadFromMemory(bytes.data(), bytes.size(), "digits_cnn");
  size_t steps = model.contents().steps.size();
  ASSERT_GT(steps, 0u);
  // One FLOP count per step; the conv/gemm kernels of a CNN have a positive count.
  const std::vector<double> &flops = model.kernelFlops();
  ASSERT_EQ(flops.size(), steps);
  double total = 0;
  for (double f : flops) {
    EXPECT_GE(f, 0);
    total += f;
  }
  EXPECT_GT(total, 0);
  // A profiled run fills one time per step and gives the same bits as an unprofiled run.
  std::vector<runtime::HostTensor> in = randomInputs(model, 3);
  std::vector<runtime::HostTensor> plain = model.run(in);
  runtime::RunProfile profile;
  profile.stepNanoseconds.assign(1, 12345); // overwritten, not appended to
  std::vector<runtime::HostTensor> profiled = model.run(in, &profile);
  ASSERT_EQ(profile.stepNanoseconds.size(), steps);
  uint64_t sum = 0;
  for (uint64_t ns : profile.stepNanoseconds)
    sum += ns;
  EXPECT_GT(sum, 0u);
  ASSERT_EQ(plain.size(), profiled.size());
  for (size_t o = 0; o < plain.size(); ++o)
    EXPECT_EQ(plain[o].bytes, profiled[o].bytes);
}

TEST(CompiledThreads, LoadRejectsKernelFlopsThatDoNotMatchTheSteps) {
  for (const char *bad : {"1,2", "x", "1,", "-3"}) {
    artifact::Writer w;
    w.setTarget(std::string(runtime::hostArch()) + "-unknown-linux-gnu", "host", {});
    w.setExtra("kernel_flops", bad);
    std::vector<uint8_t> bytes = w.finish();
    std::string err = test::errorOf(
        [&] { runtime::Model::loadFromMemory(bytes.data(), bytes.size(), "flops.tsl"); });
    EXPECT_NE(err.find("kernel_flops"), std::string::npos) << bad << ": " << err;
  }
}
