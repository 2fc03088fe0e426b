//===- ArtifactTest.cpp - the .tsl format, its writer, loader and C API ---===//
//
// The kernels are a real shared object compiled at test time by the system C compiler
// (`cc -shared -fPIC`) from the C source below, with the artifact kernel ABI
// `void kernel(void **args)`; one of them runs its loop through tessel_parallel_for, which the
// dlopen'ed code resolves from libtessel_runtime.so.
//
//===----------------------------------------------------------------------===//

#include "RuntimeTestUtils.h"
#include "TestUtils.h"
#include "tessel/Artifact/Writer.h"
#include "tessel/CodeGen/AOT.h"
#include "tessel/TE/Build.h"
#include "tessel/TE/Schedule.h"
#include "tessel/TE/Tensor.h"
#include "tessel/runtime/Artifact.h"
#include "tessel/runtime/Model.h"
#include "tessel/runtime/tessel.h"

#include "tessel/Support/Error.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

using namespace tessel;
using namespace tessel::runtime;
using tessel::artifact::Writer;
using tessel::artifact::WriterOptions;

namespace {

const char *kKernelSource = R"C(
#include <stdint.h>
extern int tessel_parallel_for(int64_t n, void (*fn)(int64_t, int64_t, void *), void *ctx);

/* t = x + 1 */
void f32_add_one(void **args) {
  const float *x = (const float *)args[0];
  float *t = (float *)args[1];
  int64_t n = *(const int64_t *)args[2];
  for (int64_t i = 0; i < n; ++i)
    t[i] = x[i] + 1.0f;
}

/* u = t * w */
void f32_mul(void **args) {
  const float *t = (const float *)args[0], *w = (const float *)args[1];
  float *u = (float *)args[2];
  int64_t n = *(const int64_t *)args[3];
  for (int64_t i = 0; i < n; ++i)
    u[i] = t[i] * w[i];
}

/* y = u + b, in parallel chunks */
struct add_ctx { const float *u, *b; float *y; };
static void add_chunk(int64_t begin, int64_t end, void *p) {
  struct add_ctx *c = (struct add_ctx *)p;
  for (int64_t i = begin; i < end; ++i)
    c->y[i] = c->u[i] + c->b[i];
}
void f32_add_parallel(void **args) {
  struct add_ctx c = {(const float *)args[0], (const float *)args[1], (float *)args[2]};
  tessel_parallel_for(*(const int64_t *)args[3], add_chunk, &c);
}

/* s = sum(y) (one i64-scaled f64 accumulator, sequential: deterministic) */
void f64_sum(void **args) {
  const float *y = (const float *)args[0];
  double *s = (double *)args[1];
  int64_t n = *(const int64_t *)args[2];
  double acc = 0;
  for (int64_t i = 0; i < n; ++i)
    acc += y[i];
  s[0] = acc;
}

/* idx = the positions of x's positive elements, compactly; *extent = their count (a kernel of a
 * data-dependent output shape, as NonZero's). A negative x[0] reports an extent past the bound
 * (a kernel bug the runtime must catch). */
void i64_positive_indices(void **args) {
  const float *x = (const float *)args[0];
  int64_t *idx = (int64_t *)args[1], *extent = (int64_t *)args[2];
  int64_t n = *(const int64_t *)args[3], k = 0;
  for (int64_t i = 0; i < n; ++i)
    if (x[i] > 0)
      idx[k++] = i;
  *extent = x[0] < -100 ? n + 1 : k;
}
)C";

constexpr int64_t kN = 1000;

/// A private temporary folder for the test's files, removed when the test program exits.
std::string tempDir() {
  struct Dir {
    std::string path;
    ~Dir() {
      if (!path.empty())
        std::filesystem::remove_all(path);
    }
  };
  static Dir dir{[] {
    const char *base = std::getenv("TMPDIR");
    std::string tmpl = std::string(base && *base ? base : "/tmp") + "/tessel-artifact-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    const char *d = mkdtemp(buf.data());
    return d ? std::string(d) : std::string();
  }()};
  return dir.path;
}

/// The first `limit` bytes of a file (all of it when shorter).
std::vector<uint8_t> readBytes(const std::string &path, size_t limit = size_t(1) << 30) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes;
  char buf[65536];
  while (in && bytes.size() < limit) {
    in.read(buf, std::streamsize(std::min(sizeof buf, limit - bytes.size())));
    bytes.insert(bytes.end(), buf, buf + in.gcount());
  }
  return bytes;
}

/// The kernels' shared object, compiled once; empty when there is no C compiler.
const std::vector<uint8_t> &kernelLibrary() {
  static std::vector<uint8_t> so = [] {
    std::string dir = tempDir();
    if (dir.empty())
      return std::vector<uint8_t>();
    std::string src = dir + "/kernels.c", lib = dir + "/kernels.so";
    std::ofstream(src) << kKernelSource;
    std::string cmd = "cc -shared -fPIC -O2 -ffp-contract=off -o " + lib + " " + src;
    if (std::system(cmd.c_str()) != 0)
      return std::vector<uint8_t>();
    return readBytes(lib);
  }();
  return so;
}

#define REQUIRE_CC()                                                                               \
  do {                                                                                             \
    if (kernelLibrary().empty())                                                                   \
      GTEST_SKIP() << "no working `cc -shared` on this machine";                                  \
  } while (0)

std::vector<float> weightW() {
  std::vector<float> w(kN);
  for (int64_t i = 0; i < kN; ++i)
    w[i] = 0.5f + float(i % 7) * 0.25f;
  return w;
}
std::vector<float> weightB() {
  std::vector<float> b(kN);
  for (int64_t i = 0; i < kN; ++i)
    b[i] = float(i) * 0.001f - 0.3f;
  return b;
}

/// y = (x + 1) * w + b and s = sum(y) as four steps over two arena slices.
Writer makeWriter(WriterOptions options = {}) {
  Writer w(options);
  w.setTarget(std::string(hostArch()) + "-unknown-linux-gnu", "generic", {});
  w.setSourceHash(artifact::hashBytes("model", 5));
  w.setBufferAlignment(64);
  w.setExtra("producer", "ArtifactTest");
  uint32_t x = w.addInput("x", DType::f32, {kN});
  uint32_t y = w.addOutput("y", DType::f32, {kN});
  uint32_t s = w.addOutput("sum", DType::f64, {});
  std::vector<float> wv = weightW(), bv = weightB();
  uint32_t wi = w.addWeight("w", DType::f32, {kN}, wv.data(), wv.size() * 4);
  uint32_t bi = w.addWeight("b", DType::f32, {kN}, bv.data(), bv.size() * 4);
  uint32_t t = w.appendArenaSlice("t", kN * 4);
  uint32_t u = w.appendArenaSlice("u", kN * 4);
  w.setCode(kernelLibrary());
  w.addStep("f32_add_one", {Writer::input(x), Writer::arena(t), Writer::scalar(kN)});
  w.addStep("f32_mul", {Writer::arena(t), Writer::weight(wi), Writer::arena(u), Writer::scalar(kN)});
  w.addStep("f32_add_parallel",
            {Writer::arena(u), Writer::weight(bi), Writer::output(y), Writer::scalar(kN)});
  w.addStep("f64_sum", {Writer::output(y), Writer::output(s), Writer::scalar(kN)});
  return w;
}

const std::vector<uint8_t> &goodArtifact() {
  static std::vector<uint8_t> bytes = makeWriter().finish();
  return bytes;
}

/// idx = positive_indices(x): one output whose dim 0 depends on the data.
Writer makeDynamicWriter(WriterOptions options = {}) {
  Writer w(options);
  w.setTarget(std::string(hostArch()) + "-unknown-linux-gnu", "generic", {});
  uint32_t x = w.addInput("x", DType::f32, {kN});
  uint32_t y = w.addOutput("y", DType::f32, {kN});
  uint32_t idx = w.addOutput("idx", DType::i64, {kN});
  uint32_t ext = w.appendArenaSlice("idx.extent", 8);
  w.setCode(kernelLibrary());
  w.addStep("f32_add_one", {Writer::input(x), Writer::output(y), Writer::scalar(kN)});
  w.addStep("i64_positive_indices",
            {Writer::input(x), Writer::output(idx), Writer::arena(ext), Writer::scalar(kN)});
  w.addDynamicOutput(idx, 0, ext);
  return w;
}

HostTensor randomInput(uint32_t seed) {
  HostTensor x(TensorDesc{"x", ElemType::f32, {kN}});
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-2.0f, 2.0f);
  for (int64_t i = 0; i < kN; ++i)
    x.data<float>()[i] = dist(rng);
  return x;
}

void expectOutputs(const HostTensor &x, const std::vector<HostTensor> &out) {
  ASSERT_EQ(out.size(), 2u);
  std::vector<float> w = weightW(), b = weightB();
  double sum = 0;
  for (int64_t i = 0; i < kN; ++i) {
    volatile float t = x.data<float>()[i] + 1.0f;
    volatile float u = t * w[i];
    float want = u + b[i];
    ASSERT_EQ(out[0].data<float>()[i], want) << "y[" << i << "]";
    sum += out[0].data<float>()[i];
  }
  EXPECT_EQ(out[1].data<double>()[0], sum);
}

/// The error message of loading `bytes`, or "" when it loads.
std::string loadError(const std::vector<uint8_t> &bytes) {
  try {
    Model::loadFromMemory(bytes.data(), bytes.size(), "test.tsl");
  } catch (const Error &e) {
    return e.what();
  }
  return "";
}

uint64_t getU64(const std::vector<uint8_t> &b, size_t at) {
  uint64_t v = 0;
  for (int i = 0; i < 8; ++i)
    v |= uint64_t(b[at + i]) << (8 * i);
  return v;
}
void putU64(std::vector<uint8_t> &b, size_t at, uint64_t v) {
  for (int i = 0; i < 8; ++i)
    b[at + i] = uint8_t(v >> (8 * i));
}
void putU32(std::vector<uint8_t> &b, size_t at, uint32_t v) {
  for (int i = 0; i < 4; ++i)
    b[at + i] = uint8_t(v >> (8 * i));
}

/// Table entry of section kind k (1-based): offset, size, checksum at +8, +16, +24.
size_t entryAt(uint32_t kind) { return kHeaderSize + (kind - 1) * kSectionEntrySize; }

/// The section count the header gives.
uint32_t sectionCount(const std::vector<uint8_t> &b) {
  return uint32_t(b[24]) | uint32_t(b[25]) << 8 | uint32_t(b[26]) << 16 | uint32_t(b[27]) << 24;
}

/// Recomputes the header checksum (after a deliberate edit of the header or table).
void fixHeaderChecksum(std::vector<uint8_t> &b) {
  size_t end = kHeaderSize + sectionCount(b) * kSectionEntrySize;
  std::vector<uint8_t> h(b.begin(), b.begin() + end);
  std::memset(h.data() + 32, 0, 8);
  putU64(b, 32, fnv1a64(h.data(), h.size()));
}

/// Recomputes every section checksum and the header checksum (after editing a section).
void fixAllChecksums(std::vector<uint8_t> &b) {
  for (uint32_t i = 0; i < sectionCount(b); ++i) {
    size_t e = kHeaderSize + i * kSectionEntrySize;
    putU64(b, e + 24, fnv1a64(b.data() + getU64(b, e + 8), getU64(b, e + 16)));
  }
  fixHeaderChecksum(b);
}

//===--- running ------------------------------------------------------------===//

TEST(Artifact, RunsRealKernelsFromMemory) {
  REQUIRE_CC();
  Model m = Model::loadFromMemory(goodArtifact().data(), goodArtifact().size());
  ASSERT_EQ(m.inputs().size(), 1u);
  EXPECT_EQ(describe(m.inputs()[0]), "f32[1000]");
  EXPECT_EQ(describe(m.outputs()[1]), "f64[]");
  EXPECT_EQ(*m.info("producer"), "ArtifactTest");
  EXPECT_EQ(*m.info("num_steps"), "4");
  EXPECT_EQ(m.info("no such key"), nullptr);
  EXPECT_EQ(m.contents().memoryPlan.arenaSize, 8064u); // 4000 -> 4032, + 4000 -> 8064
  HostTensor x = randomInput(1);
  expectOutputs(x, m.run({x}));
}

TEST(Artifact, CApiLoadsFileIntrospectsAndRuns) {
  REQUIRE_CC();
  std::string path = tempDir() + "/model.tsl";
  makeWriter().write(path);
  tessel_model *m = nullptr;
  ASSERT_EQ(tessel_load(path.c_str(), &m), 0) << tessel_last_error();
  ASSERT_EQ(tessel_num_inputs(m), 1u);
  ASSERT_EQ(tessel_num_outputs(m), 2u);
  tessel_tensor info;
  ASSERT_EQ(tessel_input_info(m, 0, &info), 0);
  EXPECT_STREQ(info.name, "x");
  EXPECT_EQ(info.dtype, TESSEL_F32);
  EXPECT_EQ(info.rank, 1);
  EXPECT_EQ(info.shape[0], kN);
  EXPECT_EQ(info.size_bytes, uint64_t(kN * 4));
  ASSERT_EQ(tessel_output_info(m, 1, &info), 0);
  EXPECT_STREQ(info.name, "sum");
  EXPECT_STREQ(tessel_dtype_name(info.dtype), "f64");
  EXPECT_EQ(tessel_output_info(m, 2, &info), -1);
  EXPECT_ERROR_HAS(tessel_last_error(), "out of range");
  EXPECT_STREQ(tessel_model_info(m, "source_hash"), artifact::hashBytes("model", 5).c_str());
  EXPECT_STREQ(tessel_model_info(m, "tessel_version"), "0.1.0");
  EXPECT_EQ(tessel_model_info(m, "nope"), nullptr);

  HostTensor x = randomInput(2);
  std::vector<HostTensor> out = {HostTensor(TensorDesc{"y", ElemType::f32, {kN}}),
                                 HostTensor(TensorDesc{"sum", ElemType::f64, {}})};
  int64_t shape[1] = {kN};
  // Outputs first, in another order than the model's: binding is by name.
  tessel_tensor outs[2] = {{"sum", TESSEL_F64, 0, nullptr, out[1].bytes.data(), 8},
                           {"y", TESSEL_F32, 1, shape, out[0].bytes.data(), kN * 4}};
  tessel_tensor in = {"x", TESSEL_F32, 1, shape, x.bytes.data(), kN * 4};
  ASSERT_EQ(tessel_run(m, &in, 1, outs, 2), 0) << tessel_last_error();
  expectOutputs(x, out);

  // Wrong bindings are errors naming the tensor, never a crash.
  tessel_tensor bad = in;
  bad.name = "z";
  EXPECT_EQ(tessel_run(m, &bad, 1, outs, 2), -1);
  EXPECT_ERROR_HAS(tessel_last_error(), "no input named 'z'");
  int64_t wrongShape[2] = {10, 100};
  bad = in;
  bad.rank = 2;
  bad.shape = wrongShape;
  EXPECT_EQ(tessel_run(m, &bad, 1, outs, 2), -1);
  EXPECT_ERROR_HAS(tessel_last_error(), "input 'x' has rank 2, expected f32[1000]");
  int64_t otherShape[1] = {999};
  bad = in;
  bad.shape = otherShape;
  EXPECT_EQ(tessel_run(m, &bad, 1, outs, 2), -1);
  EXPECT_ERROR_HAS(tessel_last_error(), "input 'x' is f32[999], expected f32[1000]");
  bad = in;
  bad.dtype = TESSEL_I32;
  EXPECT_EQ(tessel_run(m, &bad, 1, outs, 2), -1);
  EXPECT_ERROR_HAS(tessel_last_error(), "is i32[1000], expected f32[1000]");
  bad = in;
  bad.size_bytes = 12;
  EXPECT_EQ(tessel_run(m, &bad, 1, outs, 2), -1);
  EXPECT_ERROR_HAS(tessel_last_error(), "buffer has 12 bytes, expected 4000");
  EXPECT_EQ(tessel_run(m, &in, 1, outs, 1), -1);
  EXPECT_ERROR_HAS(tessel_last_error(), "output 'y' (f32[1000]) is not given");
  tessel_tensor twice[2] = {in, in};
  EXPECT_EQ(tessel_run(m, twice, 2, outs, 2), -1);
  EXPECT_ERROR_HAS(tessel_last_error(), "given twice");
  tessel_tensor aliased[2] = {outs[0], outs[1]};
  aliased[1].data = x.bytes.data();
  EXPECT_EQ(tessel_run(m, &in, 1, aliased, 2), -1);
  EXPECT_ERROR_HAS(tessel_last_error(), "overlaps input 'x'");
  EXPECT_EQ(tessel_run(nullptr, &in, 1, outs, 2), -1);
  EXPECT_ERROR_HAS(tessel_last_error(), "model is NULL");
  tessel_free(m);

  tessel_model *none = nullptr;
  EXPECT_EQ(tessel_load((tempDir() + "/missing.tsl").c_str(), &none), -1);
  EXPECT_EQ(none, nullptr);
  EXPECT_ERROR_HAS(tessel_last_error(), "missing.tsl: cannot open");
  EXPECT_EQ(tessel_load_from_memory("TESSEL", 6, &none), -1);
  EXPECT_ERROR_HAS(tessel_last_error(), "truncated");
}

TEST(Artifact, DynamicOutputsReportTheirShape) {
  REQUIRE_CC();
  std::vector<uint8_t> bytes = makeDynamicWriter().finish();
  Model m = Model::loadFromMemory(bytes.data(), bytes.size());
  ASSERT_EQ(m.dynamicOutputs().size(), 1u);
  EXPECT_EQ(m.dynamicOutputs()[0].output, 1u);
  EXPECT_EQ(m.dynamicOutputs()[0].axis, 0u);
  HostTensor x = randomInput(3);
  std::vector<int64_t> want;
  for (int64_t i = 0; i < kN; ++i)
    if (x.data<float>()[i] > 0)
      want.push_back(i);
  ASSERT_GT(want.size(), 0u);
  ASSERT_LT(want.size(), size_t(kN));
  // The HostTensor overload cuts the output to its actual shape.
  std::vector<HostTensor> out = m.run({x});
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].desc.shape, std::vector<int64_t>{kN});
  EXPECT_EQ(out[1].desc.shape, std::vector<int64_t>{int64_t(want.size())});
  ASSERT_EQ(out[1].bytes.size(), want.size() * 8);
  EXPECT_EQ(std::memcmp(out[1].bytes.data(), want.data(), want.size() * 8), 0);

  // The C API: tessel_run refuses the model, tessel_run_dynamic reports the shapes.
  tessel_model *cm = nullptr;
  ASSERT_EQ(tessel_load_from_memory(bytes.data(), bytes.size(), &cm), 0) << tessel_last_error();
  EXPECT_EQ(tessel_output_dynamic_axis(cm, 0), -1);
  EXPECT_EQ(tessel_output_dynamic_axis(cm, 1), 0);
  EXPECT_EQ(tessel_output_dynamic_axis(cm, 2), -1);
  std::vector<float> y(kN);
  std::vector<int64_t> idx(kN);
  int64_t shape[1] = {kN}, yShape[1] = {0}, idxShape[1] = {0};
  tessel_tensor in = {"x", TESSEL_F32, 1, shape, x.bytes.data(), kN * 4};
  tessel_tensor outs[2] = {{"idx", TESSEL_I64, 1, shape, idx.data(), kN * 8},
                           {"y", TESSEL_F32, 1, shape, y.data(), kN * 4}};
  EXPECT_EQ(tessel_run(cm, &in, 1, outs, 2), -1);
  EXPECT_ERROR_HAS(tessel_last_error(), "output 'idx' has a shape that depends on the data");
  int64_t *shapes[2] = {idxShape, yShape};
  ASSERT_EQ(tessel_run_dynamic(cm, &in, 1, outs, 2, shapes), 0) << tessel_last_error();
  EXPECT_EQ(idxShape[0], int64_t(want.size()));
  EXPECT_EQ(yShape[0], kN);
  EXPECT_EQ(std::memcmp(idx.data(), want.data(), want.size() * 8), 0);
  EXPECT_EQ(tessel_run_dynamic(cm, &in, 1, outs, 2, nullptr), -1);
  EXPECT_ERROR_HAS(tessel_last_error(), "output_shapes is NULL");

  // A kernel that reports an extent past the bound is an error, not a read past the buffer.
  x.data<float>()[0] = -1000.0f;
  EXPECT_ERROR_HAS(test::errorOf([&] { m.run({x}); }),
                   "the kernel reported 1001 for dim 0 of output 'idx', outside its bound "
                   "i64[1000]");
  tessel_free(cm);
}

TEST(ArtifactCorrupt, BadDynamicOutputEntries) {
  REQUIRE_CC();
  Writer w = makeDynamicWriter(WriterOptions{false});
  w.addDynamicOutput(2, 0, 0);
  EXPECT_ERROR_HAS(loadError(w.finish()), "names output 2, but the artifact has 2 outputs");
  w = makeDynamicWriter(WriterOptions{false});
  w.addDynamicOutput(1, 0, 0);
  EXPECT_ERROR_HAS(loadError(w.finish()), "is not after the previous entry's output");
  Writer v(WriterOptions{false});
  v.setTarget(std::string(hostArch()) + "-unknown-linux-gnu", "generic", {});
  uint32_t o = v.addOutput("o", DType::f32, {4});
  uint32_t small = v.appendArenaSlice("small", 4);
  v.addDynamicOutput(o, 1, small);
  EXPECT_ERROR_HAS(loadError(v.finish()), "dynamic output 'o' axis 1 is out of range for f32[4]");
  Writer u(WriterOptions{false});
  u.setTarget(std::string(hostArch()) + "-unknown-linux-gnu", "generic", {});
  o = u.addOutput("o", DType::f32, {4});
  small = u.appendArenaSlice("small", 4);
  u.addDynamicOutput(o, 0, small);
  EXPECT_ERROR_HAS(loadError(u.finish()), "extent slice 0 is not an arena slice of at least 8 "
                                          "bytes");
  // A file without dynamic outputs has no such section: byte for byte the older format.
  EXPECT_EQ(parseArtifact(goodArtifact().data(), goodArtifact().size()).sections.size(), 5u);
  std::vector<uint8_t> dyn = makeDynamicWriter().finish();
  EXPECT_EQ(parseArtifact(dyn.data(), dyn.size()).sections.size(), 6u);
}

/// makeWriter's model with a second input "n" (i64 scalar) fixed to 1000 at compile time.
Writer makeInputValueWriter(WriterOptions options = {}, DType valueType = DType::i64) {
  Writer w = makeWriter(options);
  uint32_t n = w.addInput("n", DType::i64, {});
  int64_t v = kN;
  uint32_t wi = w.addWeight("n.value", valueType, {}, &v, dtypeSize(valueType));
  w.addInputValue(n, wi);
  return w;
}

TEST(Artifact, InputValuesAreCheckedAtEveryRun) {
  REQUIRE_CC();
  std::vector<uint8_t> bytes = makeInputValueWriter().finish();
  Model m = Model::loadFromMemory(bytes.data(), bytes.size());
  ASSERT_EQ(m.contents().inputValues.size(), 1u);
  HostTensor x = randomInput(4), n(TensorDesc{"n", ElemType::i64, {}});
  *n.data<int64_t>() = kN;
  expectOutputs(x, m.run({x, n}));
  *n.data<int64_t>() = 7;
  EXPECT_ERROR_HAS(test::errorOf([&] { m.run({x, n}); }),
                   "input 'n' is 7, but the model was compiled for 1000 only");
  EXPECT_EQ(parseArtifact(bytes.data(), bytes.size()).sections.size(), 6u);
}

TEST(ArtifactCorrupt, BadInputValueEntries) {
  REQUIRE_CC();
  EXPECT_ERROR_HAS(loadError(makeInputValueWriter(WriterOptions{false}, DType::f64).finish()),
                   "the value of input 'n' (i64[]) is weight 'n.value' of another type, f64[]");
  Writer w = makeWriter(WriterOptions{false});
  w.addInputValue(0, 9);
  EXPECT_ERROR_HAS(loadError(w.finish()), "the value of input 'x' is weight 9, but the artifact "
                                          "has 2 weights");
  w = makeInputValueWriter(WriterOptions{false});
  w.addInputValue(0, 0);
  EXPECT_ERROR_HAS(loadError(w.finish()), "input value 1 (input 'x') is not after the previous "
                                          "entry's input");
  w = makeInputValueWriter(WriterOptions{false});
  w.addInputValue(5, 0);
  EXPECT_ERROR_HAS(loadError(w.finish()), "names input 5, but the artifact has 2 inputs");
}

TEST(Artifact, StagesMisalignedBuffers) {
  REQUIRE_CC();
  Model m = Model::loadFromMemory(goodArtifact().data(), goodArtifact().size());
  HostTensor x = randomInput(3);
  // Caller buffers 4 bytes past a 64-byte boundary: the kernels still see aligned pointers.
  std::vector<uint8_t> inBuf(kN * 4 + 128), outBuf(kN * 4 + 128), sumBuf(16);
  auto misalign = [](std::vector<uint8_t> &v) {
    auto p = reinterpret_cast<uintptr_t>(v.data());
    return v.data() + ((64 - p % 64) % 64) + 4;
  };
  uint8_t *xin = misalign(inBuf), *yout = misalign(outBuf);
  std::memcpy(xin, x.bytes.data(), kN * 4);
  int64_t shape[1] = {kN};
  TensorArg in{"x", ElemType::f32, shape, 1, xin, kN * 4};
  TensorArg outs[2] = {{"y", ElemType::f32, shape, 1, yout, kN * 4},
                       {"sum", ElemType::f64, nullptr, 0, sumBuf.data(), 8}};
  m.run(&in, 1, outs, 2);
  std::vector<HostTensor> got = {HostTensor(TensorDesc{"y", ElemType::f32, {kN}}),
                                 HostTensor(TensorDesc{"sum", ElemType::f64, {}})};
  std::memcpy(got[0].bytes.data(), yout, kN * 4);
  std::memcpy(got[1].bytes.data(), sumBuf.data(), 8);
  expectOutputs(x, got);
}

TEST(Artifact, EightThreadsAtOnceGiveBitwiseIdenticalResults) {
  REQUIRE_CC();
  Model m = Model::loadFromMemory(goodArtifact().data(), goodArtifact().size());
  constexpr int kInputs = 4, kThreads = 8, kRuns = 25;
  std::vector<HostTensor> xs;
  std::vector<std::vector<HostTensor>> want;
  for (int i = 0; i < kInputs; ++i) {
    xs.push_back(randomInput(100 + i));
    want.push_back(m.run({xs.back()}));
  }
  std::vector<std::vector<HostTensor>> in;
  for (const HostTensor &x : xs)
    in.push_back({x});
  tessel::test::expectThreadsBitwiseEqual(m, in, want, kThreads, kRuns);
}

/// The whole path: a scheduled tensor expression compiled ahead of time by tessel's own code
/// generator (vectorized, parallel through tessel_parallel_for), linked into a shared object,
/// packed into an artifact, loaded and run from 8 threads.
TEST(Artifact, RunsAnAOTCompiledTensorExpressionKernel) {
  REQUIRE_CC();
  constexpr int64_t n = 4096;
  auto A = te::placeholder({n}, DType::f32, "A");
  auto W = te::placeholder({n}, DType::f32, "W");
  auto B = te::compute({n}, [&](loop::Var i) { return A(i) * W(i) + 1.0f; }, "B");
  auto s = te::create_schedule(B);
  auto [xo, xi] = s[B].split(B.axis(0), 16);
  s[B].vectorize(xi);
  s[B].parallel(xo);
  std::string obj = tempDir() + "/te.o", so = tempDir() + "/te.so";
  tessel::buildObject(s, {A, W, B}, "llvm", obj, "f32_mul_add_one_4096_parallel");
  codegen::linkSharedLibrary({obj}, so);

  std::vector<float> wv(n);
  for (int64_t i = 0; i < n; ++i)
    wv[i] = float(i % 13) * 0.125f - 0.5f;
  Writer w;
  w.setTarget(std::string(hostArch()) + "-unknown-linux-gnu", "host", {});
  w.setBufferAlignment(64);
  uint32_t a = w.addInput("a", DType::f32, {n});
  uint32_t b = w.addOutput("b", DType::f32, {n});
  uint32_t wi = w.addWeight("w", DType::f32, {n}, wv.data(), n * 4);
  w.setCodeFromFile(so);
  w.addStep("f32_mul_add_one_4096_parallel",
            {Writer::input(a), Writer::weight(wi), Writer::output(b)});
  std::vector<uint8_t> bytes = w.finish();
  Model m = Model::loadFromMemory(bytes.data(), bytes.size(), "te.tsl");

  HostTensor x(TensorDesc{"a", ElemType::f32, {n}});
  for (int64_t i = 0; i < n; ++i)
    x.data<float>()[i] = float(i % 101) * 0.03f - 1.5f;
  std::vector<HostTensor> want = m.run({x});
  for (int64_t i = 0; i < n; ++i)
    ASSERT_NEAR(want[0].data<float>()[i], x.data<float>()[i] * wv[i] + 1.0f, 1e-6f) << i;
  std::vector<int> mismatches(8, 0);
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t)
    threads.emplace_back([&, t] {
      for (int r = 0; r < 20; ++r)
        if (m.run({x})[0].bytes != want[0].bytes)
          ++mismatches[t];
    });
  for (std::thread &th : threads)
    th.join();
  for (int t = 0; t < 8; ++t)
    EXPECT_EQ(mismatches[t], 0) << "thread " << t;
}

//===--- the writer checks what it writes ----------------------------------===//

TEST(Artifact, WriterRejectsInconsistentArtifacts) {
  Writer w;
  uint32_t x = w.addInput("x", DType::f32, {4});
  w.addOutput("y", DType::f32, {4});
  w.setCode({0x7f, 'E', 'L', 'F'});
  w.addStep("k", {Writer::input(x), Writer::output(3)});
  try {
    w.finish();
    FAIL() << "an out-of-range output index was written";
  } catch (const Error &e) {
    EXPECT_ERROR_HAS(e.what(), "artifact writer: the artifact would be invalid");
    EXPECT_ERROR_HAS(e.what(), "step 0 (k) argument 1 is output 3, out of range");
  }
  float data[3] = {1, 2, 3};
  EXPECT_THROW(w.addWeight("w", DType::f32, {4}, data, sizeof data), Error);
  EXPECT_THROW(w.addInput("s", DType::string, {1}), Error);
  EXPECT_THROW(w.addInput("neg", DType::f32, {-1}), Error);
  EXPECT_THROW(w.addArenaSlice("odd", 8, 16), Error);

  Writer a;
  a.setArenaSize(64);
  a.addArenaSlice("big", 0, 128);
  EXPECT_THROW(a.finish(), Error);
}

//===--- the loader rejects bad files ---------------------------------------===//

TEST(ArtifactCorrupt, TruncatedAtManyPoints) {
  REQUIRE_CC();
  const std::vector<uint8_t> &good = goodArtifact();
  ASSERT_EQ(loadError(good), "");
  std::vector<size_t> cuts;
  for (size_t n = 0; n < 600 && n < good.size(); ++n)
    cuts.push_back(n);
  for (size_t n = 600; n < good.size(); n += 97)
    cuts.push_back(n);
  cuts.push_back(good.size() - 1);
  for (size_t n : cuts) {
    std::vector<uint8_t> b(good.begin(), good.begin() + n);
    std::string err;
    try {
      parseArtifact(b.data(), b.size(), "t.tsl");
    } catch (const Error &e) {
      err = e.what();
    }
    ASSERT_NE(err, "") << "a file truncated to " << n << " bytes was accepted";
    bool named = err.find("truncated") != std::string::npos ||
                 err.find("empty file") != std::string::npos;
    EXPECT_TRUE(named) << n << ": " << err;
  }
  // Through the loader too (with the same message), a few of them.
  for (size_t n : {size_t(0), size_t(5), size_t(63), size_t(64), size_t(300), good.size() / 2})
    EXPECT_NE(loadError(std::vector<uint8_t>(good.begin(), good.begin() + n)), "");
  std::vector<uint8_t> longer = good;
  longer.push_back(0);
  EXPECT_ERROR_HAS(loadError(longer), "extra bytes at the end");
}

TEST(ArtifactCorrupt, BadMagicWrongVersionBadEndianness) {
  REQUIRE_CC();
  std::vector<uint8_t> b = goodArtifact();
  b[0] = 'X';
  EXPECT_ERROR_HAS(loadError(b), "not a tessel artifact: it starts with 58 45 53 53");
  b = goodArtifact();
  putU32(b, 8, 2);
  EXPECT_ERROR_HAS(loadError(b), "format version 2, this runtime reads version 1");
  b = goodArtifact();
  putU32(b, 12, 0x04030201);
  EXPECT_ERROR_HAS(loadError(b), "endianness mark");
  b = goodArtifact();
  b[50] = 1; // reserved header byte
  EXPECT_ERROR_HAS(loadError(b), "header byte 50 is reserved");
}

TEST(ArtifactCorrupt, FlippedByteInEachSectionFailsItsChecksum) {
  REQUIRE_CC();
  const std::vector<uint8_t> &good = goodArtifact();
  for (uint32_t k = 1; k <= kNumSectionKinds; ++k) {
    size_t e = entryAt(k);
    uint64_t off = getU64(good, e + 8), size = getU64(good, e + 16);
    ASSERT_GT(size, 0u) << sectionKindName(SectionKind(k));
    for (uint64_t at : {off, off + size / 2, off + size - 1}) {
      std::vector<uint8_t> b = good;
      b[at] ^= 0x10;
      std::string err = loadError(b);
      EXPECT_ERROR_HAS(err, std::string("the ") + sectionKindName(SectionKind(k)) +
                                " section (bytes ");
      EXPECT_ERROR_HAS(err, "fails its checksum");
    }
  }
  // A flipped byte in the section table fails the header checksum.
  std::vector<uint8_t> b = good;
  b[entryAt(2) + 20] ^= 1;
  EXPECT_ERROR_HAS(loadError(b), "header checksum mismatch");
}

TEST(ArtifactCorrupt, OffsetsPastTheEndAndOverlappingSections) {
  REQUIRE_CC();
  const std::vector<uint8_t> &good = goodArtifact();
  std::vector<uint8_t> b = good;
  putU64(b, entryAt(3) + 8, good.size() + 64); // weights past the end
  fixHeaderChecksum(b);
  EXPECT_ERROR_HAS(loadError(b), "the weights section [");
  EXPECT_ERROR_HAS(loadError(b), "lies outside the file");

  b = good;
  putU64(b, entryAt(2) + 16, ~uint64_t(0) - 8); // code size wraps around
  fixHeaderChecksum(b);
  EXPECT_ERROR_HAS(loadError(b), "the code section [");

  b = good;
  putU64(b, entryAt(4) + 8, getU64(good, entryAt(3) + 8)); // memory plan onto the weights
  fixHeaderChecksum(b);
  EXPECT_ERROR_HAS(loadError(b), "overlaps the memory plan section");

  b = good;
  putU32(b, entryAt(5), 1); // two metadata sections
  fixHeaderChecksum(b);
  EXPECT_ERROR_HAS(loadError(b), "the metadata section appears twice");

  b = good;
  putU64(b, entryAt(1) + 8, 0); // metadata over the header
  fixHeaderChecksum(b);
  EXPECT_ERROR_HAS(loadError(b), "lies outside the file's section area");
}

TEST(ArtifactCorrupt, OutOfRangeIndicesAndMissingSymbol) {
  REQUIRE_CC();
  Writer w = makeWriter(WriterOptions{false});
  w.addStep("f32_add_one", {Writer::input(1), Writer::arena(0), Writer::scalar(kN)});
  EXPECT_ERROR_HAS(loadError(w.finish()), "step 4 (f32_add_one) argument 0 is input 1, out of "
                                          "range: the artifact has 1 input");
  w = makeWriter(WriterOptions{false});
  w.addStep("f32_add_one", {Writer::input(0), Writer::arena(7), Writer::scalar(kN)});
  EXPECT_ERROR_HAS(loadError(w.finish()), "argument 1 is arena slice 7, out of range");
  w = makeWriter(WriterOptions{false});
  w.addStep("f32_mul", {Writer::weight(2)});
  EXPECT_ERROR_HAS(loadError(w.finish()), "argument 0 is weight 2, out of range");
  w = makeWriter(WriterOptions{false});
  w.addStep("f32_mul", {{ArgKind(9), 0}});
  EXPECT_ERROR_HAS(loadError(w.finish()), "has kind 9");
  w = makeWriter(WriterOptions{false});
  w.addStep("no_such_kernel", {Writer::input(0)});
  EXPECT_ERROR_HAS(loadError(w.finish()),
                   "step 4 calls kernel 'no_such_kernel', which the code section does not define");
  w = makeWriter(WriterOptions{false});
  w.addStep("bad name!", {});
  EXPECT_ERROR_HAS(loadError(w.finish()), "is not a symbol name");
  w = makeWriter(WriterOptions{false});
  w.setArenaSize(4000);
  EXPECT_ERROR_HAS(loadError(w.finish()), "arena slice 1 'u' [4032, +4000) lies outside the "
                                          "arena of 4000 bytes");
  w = makeWriter(WriterOptions{false});
  w.setCode({'n', 'o', 't', 'E', 'L', 'F'});
  EXPECT_ERROR_HAS(loadError(w.finish()), "the code section is not an ELF shared object");
  w = makeWriter(WriterOptions{false});
  std::vector<uint8_t> elfJunk = {0x7f, 'E', 'L', 'F', 2, 1, 1, 0, 0, 0, 0, 0};
  w.setCode(elfJunk);
  EXPECT_ERROR_HAS(loadError(w.finish()), "cannot load the code section as a shared object");
}

/// Metadata the Writer refuses to produce, encoded directly.
TEST(ArtifactCorrupt, InvalidDTypesShapesAndWeights) {
  auto encode = [](const std::function<void(ArtifactContents &)> &edit) {
    ArtifactContents c;
    c.metadata.inputs = {TensorDesc{"x", ElemType::f32, {2, 3}}};
    static const uint8_t weight[64] = {};
    c.weights = {WeightDesc{TensorDesc{"w", ElemType::f32, {4}}, 0, 16}};
    c.weightData = weight;
    c.weightDataSize = 64;
    edit(c);
    std::vector<uint8_t> b = encodeArtifact(c);
    try {
      parseArtifact(b.data(), b.size(), "e.tsl");
    } catch (const Error &e) {
      return std::string(e.what());
    }
    return std::string();
  };
  EXPECT_EQ(encode([](ArtifactContents &) {}), "");
  EXPECT_ERROR_HAS(encode([](ArtifactContents &c) { c.metadata.inputs[0].dtype = ElemType(99); }),
                   "input 'x' has dtype code 99");
  EXPECT_ERROR_HAS(encode([](ArtifactContents &c) { c.metadata.inputs[0].dtype = ElemType(14); }),
                   "dtype code 14");
  EXPECT_ERROR_HAS(encode([](ArtifactContents &c) { c.metadata.inputs[0].shape = {2, -5}; }),
                   "input 'x': dim 1 is -5, expected a non-negative size");
  EXPECT_ERROR_HAS(encode([](ArtifactContents &c) {
                     c.metadata.inputs[0].shape = {int64_t(1) << 40, int64_t(1) << 40};
                   }),
                   "overflows");
  EXPECT_ERROR_HAS(encode([](ArtifactContents &c) {
                     c.metadata.inputs.push_back(c.metadata.inputs[0]);
                   }),
                   "input name 'x' appears twice");
  EXPECT_ERROR_HAS(encode([](ArtifactContents &c) { c.weights[0].size = 12; }),
                   "weight 'w' (f32[4]) has size 12, expected 16");
  EXPECT_ERROR_HAS(encode([](ArtifactContents &c) { c.weights[0].offset = 64; }),
                   "lies outside the weight data (64 bytes)");
  EXPECT_ERROR_HAS(encode([](ArtifactContents &c) { c.weights[0].offset = 8; }),
                   "offset 8 is not a multiple of 64");
  EXPECT_ERROR_HAS(encode([](ArtifactContents &c) { c.metadata.bufferAlignment = 48; }),
                   "buffer alignment 48 is not a power of two");
  EXPECT_ERROR_HAS(encode([](ArtifactContents &c) { c.steps.push_back({"k", {}}); }),
                   "the code section is empty");
  // A count that claims more items than the section has bytes for.
  ArtifactContents c;
  std::vector<uint8_t> b = encodeArtifact(c);
  size_t execOff = getU64(b, entryAt(5) + 8);
  putU32(b, execOff, 0x7fffffff);
  fixAllChecksums(b);
  std::string err;
  try {
    parseArtifact(b.data(), b.size());
  } catch (const Error &e) {
    err = e.what();
  }
  EXPECT_ERROR_HAS(err, "step count is 2147483647 but only 0 bytes are left");
}

TEST(ArtifactCorrupt, ForeignFiles) {
  std::vector<uint8_t> png = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13,
                              'I',  'H', 'D', 'R'};
  EXPECT_ERROR_HAS(loadError(png), "not a tessel artifact");
  EXPECT_ERROR_HAS(loadError(png), "(a PNG image)");
  std::vector<uint8_t> elf = readBytes("/proc/self/exe", 1 << 16);
  EXPECT_ERROR_HAS(loadError(elf), "(an ELF file)");
  EXPECT_ERROR_HAS(loadError({}), "empty file");
  std::vector<uint8_t> text(200, 'a');
  EXPECT_ERROR_HAS(loadError(text), "expected the magic 54 45 53 53 45 4c 00 01");
  EXPECT_ERROR_HAS(loadError(std::vector<uint8_t>(kHeaderSize + 10, 0)), "not a tessel artifact");
}

TEST(ArtifactCorrupt, HostChecks) {
  REQUIRE_CC();
  Writer w = makeWriter();
  std::vector<std::string> features = {"+sse2", "fakefeature123", "-avx512f"};
  w.setTarget(std::string(hostArch()) + "-unknown-linux-gnu", "imaginary-cpu", features);
  std::string err = loadError(w.finish());
  EXPECT_ERROR_HAS(err, "this CPU lacks required CPU feature fakefeature123");
  EXPECT_ERROR_HAS(err, "imaginary-cpu");
  EXPECT_EQ(err.find("sse2 ("), std::string::npos) << err; // sse2 is present
  w.setTarget("riscv32-unknown-elf", "", {});
  EXPECT_ERROR_HAS(loadError(w.finish()), "compiled for target 'riscv32-unknown-elf'");
#if defined(__x86_64__)
  EXPECT_TRUE(hostHasCpuFeature("sse2"));
  EXPECT_TRUE(hostHasCpuFeature("+sse2"));
#endif
  EXPECT_FALSE(hostHasCpuFeature("fakefeature123"));
}

/// Random single-byte corruptions anywhere: an error or (in padding) a working model, never a
/// crash. The same for random bytes.
// Sections 7 and 8 edited at random with every checksum made right again: each edit is either
// rejected by the checker, or loads and then runs or fails the run with an Error, never a crash
// or a read past a buffer.
TEST(ArtifactCorrupt, EditedDynamicAndInputValueSectionsNeverCrash) {
  REQUIRE_CC();
  Writer w = makeDynamicWriter();
  uint32_t n = w.addInput("n", DType::i64, {});
  int64_t three = 3;
  w.addInputValue(n, w.addWeight("n.value", DType::i64, {}, &three, 8));
  const std::vector<uint8_t> good = w.finish();
  ASSERT_EQ(loadError(good), "");
  std::vector<std::pair<uint64_t, uint64_t>> targets; // [offset, size) of sections 7 and 8
  for (uint32_t i = 0; i < sectionCount(good); ++i) {
    size_t e = kHeaderSize + i * kSectionEntrySize;
    uint32_t kind = good[e];
    if (kind == uint32_t(SectionKind::DynamicOutputs) || kind == uint32_t(SectionKind::InputValues))
      targets.push_back({getU64(good, e + 8), getU64(good, e + 16)});
  }
  ASSERT_EQ(targets.size(), 2u);
  HostTensor x = randomInput(5), nv(TensorDesc{"n", ElemType::i64, {}});
  *nv.data<int64_t>() = 3;
  std::mt19937 rng(11);
  int rejected = 0, loaded = 0;
  for (int i = 0; i < 400; ++i) {
    std::vector<uint8_t> b = good;
    const auto &[off, size] = targets[size_t(i) % 2];
    b[off + rng() % size] = uint8_t(rng() % 4); // small values: indices that may be in range
    fixAllChecksums(b);
    if (!loadError(b).empty()) {
      ++rejected;
      continue;
    }
    ++loaded;
    Model m = Model::loadFromMemory(b.data(), b.size());
    try {
      m.run({x, nv});
    } catch (const Error &) {
    }
  }
  EXPECT_GT(rejected, 0);
  EXPECT_GT(loaded, 0);
}

TEST(ArtifactCorrupt, RandomFlipsNeverCrash) {
  REQUIRE_CC();
  const std::vector<uint8_t> &good = goodArtifact();
  std::mt19937 rng(7);
  int rejected = 0;
  for (int i = 0; i < 300; ++i) {
    std::vector<uint8_t> b = good;
    size_t at = rng() % b.size();
    b[at] ^= uint8_t(1 + rng() % 255);
    if (!loadError(b).empty())
      ++rejected;
  }
  EXPECT_EQ(rejected, 300); // padding is checked too: every byte counts
  for (int i = 0; i < 100; ++i) {
    std::vector<uint8_t> b(rng() % 2000);
    for (uint8_t &c : b)
      c = uint8_t(rng());
    if (b.size() >= 8 && i % 2)
      std::memcpy(b.data(), kArtifactMagic, 8);
    EXPECT_NE(loadError(b), "");
  }
}

} // namespace
