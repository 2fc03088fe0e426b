//===- CompileTest.cpp - tessel::compileModel end to end -----------------===//
//
// Compiles small graphs (text IR) into .tsl bytes, loads them with the runtime
// (Model::loadFromMemory: the same code `tessel run OUT.tsl` runs) and compares every output
// with the reference interpreter. The five shared models are covered by the ctest entries
// model.NAME.compiled (test/models/compile-model.sh).
//
//===----------------------------------------------------------------------===//
#include "CompileTestUtils.h"
#include "tessel/Compiler/Compile.h"
#include "tessel/Graph/Text.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/Support/Error.h"
#include "tessel/runtime/Model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

using namespace tessel;

namespace {

using test::compileAndCheck;

const char *kResidual = R"(
graph @residual(%x: f32[1,4,9,9]) opset {"": 17} {
  %w: f32[4,4,3,3] = dense<0.125>
  %b: f32[1,4,1,1] = dense<0.25>
  %res = Conv(%x, %w) {name = "conv_a", pads = [1, 1, 1, 1]}
  %c = Conv(%res, %w) {name = "conv_b", pads = [1, 1, 1, 1]}
  %a = Add(%c, %res) {name = "add"}
  %ab = Add(%a, %b) {name = "bias"}
  %r = Relu(%ab) {name = "relu"}
  return %r
}
)";

} // namespace

TEST(Compile, ResidualBlockMatchesInterpreter) {
  for (int level : {0, 3}) {
    CompiledModel cm = compileAndCheck(kResidual, level);
    // At -O3 on an AVX-512/AVX2 host, transform-layout blocks the convs (docs/compile.md,
    // "Convolution"): a ToBlocked kernel first, then ConvNCHWc kernels, then a FromBlocked one
    // (a conv group takes elementwise epilogues only, not the layout change: docs/fusion.md).
    const size_t b = level == 3 && !cm.kernels.empty() && cm.kernels[0].symbol == "k0_toblocked_f32";
    const std::string conv = b ? "convnchwc" : "conv";
    ASSERT_EQ(cm.kernels.size(), 2u + 2 * b);
    if (b)
      EXPECT_EQ(cm.kernels[3].symbol, "k3_fromblocked_f32");
    EXPECT_EQ(cm.kernels[b].symbol, "k" + std::to_string(b) + "_" + conv + "_f32");
    EXPECT_EQ(cm.kernels[1 + b].symbol.rfind("k" + std::to_string(1 + b) + "_" + conv + "_add", 0),
              0u)
        << cm.kernels[1 + b].symbol;
    // %res crosses kernels: it lives in the arena (4*9*9 floats, 64-byte aligned).
    EXPECT_GE(cm.arenaBytes, 4 * 81 * 4);
  }
}

TEST(Compile, PlainLoopsMatchInterpreter) {
  CompileOptions o;
  o.parallel = o.vectorize = false;
  compileAndCheck(kResidual, 0, o);
}

TEST(Compile, SeveralOutputsAndViews) {
  // A graph output that is a view of the input (a copy kernel), an output also read by a later
  // kernel, a softmax (two reductions in one kernel) and a vector tail (37 columns).
  compileAndCheck(R"(
graph @outs(%x: f32[3,37]) opset {"": 17} {
  %shape: i64[2] = dense<[37, 3]>
  %v = Reshape(%x, %shape)
  %e = Exp(%x)
  %s = Softmax(%e) {axis = 1}
  %m = ReduceMax(%s) {axes = [1], keepdims = 1}
  %y = Sub(%s, %m)
  return %v, %s, %y
}
)",
                  0);
}

TEST(Compile, SymbolicInputNeedsInputShape) {
  const char *text = R"(
graph @sym(%x: f32[N,20]) opset {"": 17} {
  %y = Relu(%x)
  return %y
}
)";
  auto g = parseGraph(text, "test");
  try {
    compileModel(*g, {});
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("input 'x'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("--input-shape"), std::string::npos) << e.what();
  }
  CompileOptions o;
  parseInputShapeSpec("x=5x20", o);
  compileAndCheck(text, 3, o);
  EXPECT_THROW(parseInputShapeSpec("x=5xa", o), Error);
  EXPECT_THROW(parseInputShapeSpec("=5", o), Error);
}

TEST(Compile, OpWithoutLoweringIsAnErrorNamingIt) {
  // A Loop whose trip count is an input: inline-control-flow cannot unroll it, and Loop itself
  // has no lowering.
  auto g = parseGraph(R"(
graph @loop(%n: i64[], %x: f32[4]) opset {"": 17} {
  %c: bool[] = dense<true>
  %y = Loop(%n, %c, %x) {name = "loop1", body = graph @body(%i: i64[], %cond: bool[], %a: f32[4]) {
    %b = Relu(%a) {name = "relu"}
    return %cond, %b
  }}
  return %y
}
)",
                      "test");
  try {
    compileModel(*g, {});
    FAIL() << "expected an error";
  } catch (const Error &e) {
    std::string m = e.what();
    EXPECT_NE(m.find("node 'loop1' (Loop)"), std::string::npos) << m;
    EXPECT_NE(m.find("has no lowering"), std::string::npos) << m;
  }
}

// Two artifacts whose kernels have the same symbol names, loaded at once: each must run its own
// code (a reused dlopen path once gave the second model the first one's library).
TEST(Compile, TwoModelsLoadedAtOnceRunTheirOwnCode) {
  auto compileText = [](const char *op) {
    std::string text = std::string(R"(
graph @g(%x: f32[64]) opset {"": 17} {
  %y = )") + op + R"((%x) {name = "k"}
  return %y
}
)";
    auto g = parseGraph(text, "test");
    return compileModel(*g, {}).artifact;
  };
  std::vector<uint8_t> a = compileText("Relu"), b = compileText("Neg");
  runtime::Model ma = runtime::Model::loadFromMemory(a.data(), a.size());
  runtime::Model mb = runtime::Model::loadFromMemory(b.data(), b.size());
  runtime::HostTensor x(ma.inputs()[0]);
  for (int i = 0; i < 64; ++i)
    x.data<float>()[i] = float(i) - 32.f;
  const float *ya = nullptr, *yb = nullptr;
  auto ra = ma.run({x}), rb = mb.run({x});
  ya = ra[0].data<float>();
  yb = rb[0].data<float>();
  for (int i = 0; i < 64; ++i) {
    EXPECT_EQ(ya[i], std::max(0.f, float(i) - 32.f)) << i;
    EXPECT_EQ(yb[i], 32.f - float(i)) << i;
  }
}

// Outputs that constant folding turns into constants (Shape of a static input) still come out
// of the artifact, under their own names, next to a computed output.
TEST(Compile, OutputFoldedToAConstant) {
  CompiledModel cm = compileAndCheck(R"(
graph @shape(%x: f32[2,3,5]) opset {"": 17} {
  %s = Shape(%x) {name = "shape"}
  %y = Relu(%x) {name = "relu"}
  return %s, %y
}
)",
                                     3);
  runtime::Model m = runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size());
  ASSERT_EQ(m.outputs().size(), 2u);
  EXPECT_EQ(m.outputs()[0].name, "s");
  runtime::HostTensor x(m.inputs()[0]);
  auto out = m.run({x});
  const int64_t *s = out[0].data<int64_t>();
  EXPECT_EQ(s[0], 2);
  EXPECT_EQ(s[1], 3);
  EXPECT_EQ(s[2], 5);
}
