//===- CompileOutputsTest.cpp - graph outputs that no node of their own computes ------===//
//
// Outputs the compiler must still write (docs/artifact.md, "Graph outputs"): a graph input that
// is also an output (directly, or through an Identity, Dropout and same-shape Reshape that
// optimization removes), an output listed twice, and one value under two output names. Each
// compiled artifact is loaded with the runtime and its outputs compared with the reference
// interpreter's: an input passed through bit for bit, computed values within 1e-4 + 1e-4 |x|.
//
//===----------------------------------------------------------------------===//
#include "CompileTestUtils.h"
#include "tessel/Compiler/Compile.h"
#include "tessel/Graph/Text.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/runtime/Model.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace tessel;

namespace {

/// Compiles `text` at `optLevel`, runs the artifact and the interpreter on the same seeded
/// random inputs, and checks that the artifact's outputs are the graph's distinct output names
/// in order (an output listed twice appears once) with the interpreter's values (an input's
/// copy bit for bit). Returns the artifact's output names.
std::vector<std::string> checkOutputs(const std::string &text, int optLevel) {
  auto ref = parseGraph(text, "test");
  auto g = parseGraph(text, "test");
  CompileOptions opts;
  opts.optLevel = optLevel;
  CompiledModel cm = compileModel(*g, opts);
  runtime::Model m = runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size());

  std::vector<std::string> want;
  for (const Value *v : ref->outputs)
    if (std::find(want.begin(), want.end(), v->name()) == want.end())
      want.push_back(v->name());
  std::vector<std::string> names;
  for (const runtime::TensorDesc &d : m.outputs())
    names.push_back(d.name);
  EXPECT_EQ(names, want);

  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  std::map<std::string, Object> refIn;
  std::vector<runtime::HostTensor> ins;
  for (const runtime::TensorDesc &d : m.inputs()) {
    runtime::HostTensor h(d);
    for (size_t i = 0; i < h.bytes.size() / 4; ++i)
      h.data<float>()[i] = u(rng);
    Tensor t(DType::f32, d.shape);
    std::memcpy(t.raw(), h.bytes.data(), h.bytes.size());
    refIn[d.name] = Object(t);
    ins.push_back(std::move(h));
  }
  Interpreter interp(*ref);
  auto ref_out = interp.run(refIn);
  auto got = m.run(ins);
  EXPECT_EQ(got.size(), want.size());
  for (const runtime::HostTensor &h : got) {
    const Tensor &w = ref_out.at(h.desc.name).tensor;
    EXPECT_EQ(uint64_t(w.nbytes()), h.bytes.size()) << h.desc.name;
    if (uint64_t(w.nbytes()) != h.bytes.size())
      continue;
    bool isInput = std::any_of(ins.begin(), ins.end(), [&](const runtime::HostTensor &in) {
      return in.desc.name == h.desc.name;
    });
    if (isInput || w.dtype() != DType::f32) { // a copy, or integers: exact
      EXPECT_EQ(std::memcmp(w.raw(), h.bytes.data(), h.bytes.size()), 0) << h.desc.name;
      continue;
    }
    const float *gp = h.data<float>(), *wp = w.data<float>();
    for (int64_t i = 0; i < w.numel(); ++i) // computed: the kernels' vector math
      EXPECT_NEAR(gp[i], wp[i], 1e-4 + 1e-4 * std::fabs(wp[i])) << h.desc.name << "[" << i << "]";
  }
  // The same artifact again, with the inputs' values changed: the outputs follow them (an
  // input copied at compile time would not).
  for (runtime::HostTensor &h : ins)
    for (size_t i = 0; i < h.bytes.size() / 4; ++i)
      h.data<float>()[i] += 2.f;
  auto again = m.run(ins);
  for (const runtime::HostTensor &h : again) {
    for (const runtime::HostTensor &in : ins) {
      if (in.desc.name == h.desc.name) // an input passed through: its new bytes
        EXPECT_EQ(h.bytes, in.bytes) << h.desc.name;
    }
  }
  return names;
}

TEST(CompileOutputs, InputIsAnOutput) {
  const char *text = R"(
graph @pass(%x: f32[3,5]) opset {"": 17} {
  %y = Relu(%x) {name = "relu"}
  return %x, %y
}
)";
  for (int level : {0, 3})
    EXPECT_EQ(checkOutputs(text, level), (std::vector<std::string>{"x", "y"})) << level;
  test::compileAndCheck(text, 3);
}

TEST(CompileOutputs, OnlyOutputIsTheInput) {
  for (int level : {0, 3})
    checkOutputs(R"(
graph @only(%x: f32[2,7]) opset {"": 17} {
  return %x
}
)",
                 level);
}

TEST(CompileOutputs, InputReachesAnOutputThroughRemovedOps) {
  // Optimization removes what it can of the Identity, the inference Dropout and the Reshape to
  // the same shape, keeping one node that produces the output under its name: at every level
  // the output comes out with the input's bits.
  const char *text = R"(
graph @chain(%x: f32[2,3,4]) opset {"": 17} {
  %shape: i64[3] = dense<[2, 3, 4]>
  %a = Identity(%x) {name = "id"}
  %b, %mask = Dropout(%a) {name = "drop"}
  %c = Reshape(%b, %shape) {name = "reshape"}
  return %c
}
)";
  for (int level : {0, 1, 2, 3})
    EXPECT_EQ(checkOutputs(text, level), (std::vector<std::string>{"c"})) << level;
}

TEST(CompileOutputs, OutputListedTwice) {
  for (int level : {0, 3})
    EXPECT_EQ(checkOutputs(R"(
graph @twice(%x: f32[4,6]) opset {"": 17} {
  %y = Tanh(%x) {name = "tanh"}
  return %y, %x, %y, %x
}
)",
                           level),
              (std::vector<std::string>{"y", "x"}))
        << level;
}

TEST(CompileOutputs, OneValueUnderTwoOutputNames) {
  // %z is %y under another name; two identical Relu nodes become one value after CSE.
  for (int level : {0, 3})
    EXPECT_EQ(checkOutputs(R"(
graph @alias(%x: f32[8], %w: f32[8]) opset {"": 17} {
  %y = Relu(%x) {name = "relu_a"}
  %z = Identity(%y) {name = "id"}
  %r1 = Relu(%w) {name = "relu_b"}
  %r2 = Relu(%w) {name = "relu_c"}
  %v = Identity(%w) {name = "id_w"}
  return %y, %z, %r1, %r2, %v, %w
}
)",
                           level),
              (std::vector<std::string>{"y", "z", "r1", "r2", "v", "w"}))
        << level;
}

TEST(CompileOutputs, ConstantOutputBesideInputOutput) {
  // A folded constant output and an input output in one artifact, both copied by kernels.
  EXPECT_EQ(checkOutputs(R"(
graph @mixed(%x: f32[2,3]) opset {"": 17} {
  %s = Shape(%x) {name = "shape"}
  %n = Neg(%x) {name = "neg"}
  return %s, %x, %n
}
)",
                         3),
            (std::vector<std::string>{"s", "x", "n"}));
}

} // namespace
