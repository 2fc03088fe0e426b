//===- InterpreterFallbackTest.cpp - --allow-interpreter-fallback ---------===//
//
// A node with no compiled form here (Compress, whose data-dependent output another node reads)
// is a compile error naming the node and the op without the option; with it, the node becomes a fallback step (the optional fallback
// section of the artifact), the model runs through the runtime with the interpreter registered
// as the fallback handler and matches the interpreter; without a handler, loading fails naming
// the node (C API too). Artifacts without fallback nodes keep the 5-section layout.
//
//===----------------------------------------------------------------------===//
#include "TestUtils.h"
#include "tessel/Compiler/Compile.h"
#include "tessel/Compiler/InterpreterFallback.h"
#include "tessel/Graph/Lowering.h"
#include "tessel/Graph/Text.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/Support/Error.h"
#include "tessel/runtime/Model.h"
#include "tessel/runtime/tessel.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <random>
#include <thread>

using namespace tessel;

namespace {

// relu(softmax(compress(x * 2, rows 0, 2, 3 of each matrix)) - 0.5) + max(x over each matrix):
// Compress (no TE lowering: its output shape depends on the condition's values; its
// DynamicKernel's output may flow through row-wise nodes, but Softmax does not take it; the
// model declares its shape) sits between two kernels and reads an arena value.
const char *kRand = R"(
graph @fallback(%x: f32[3,4,4]) opset {"": 17} {
  %two: f32[] = dense<2.0>
  %half: f32[] = dense<0.5>
  %keep: bool[4] = dense<[true, false, true, true]>
  %m = Mul(%x, %two) {name = "mul"}
  %d = Compress(%m, %keep) {name = "compress", axis = 1} : f32[3,3,4]
  %e = Softmax(%d) {name = "softmax", axis = 2}
  %c = Sub(%e, %half) {name = "sub"}
  %r = Relu(%c) {name = "relu"}
  %s = ReduceMax(%x) {name = "rmax", axes = [1, 2], keepdims = 1}
  %y = Add(%r, %s) {name = "add"}
  return %y
}
)";

using test::errorOf;

CompiledModel compileText(const char *text, bool fallback) {
  auto g = parseGraph(text, "test");
  CompileOptions o;
  o.allowInterpreterFallback = fallback;
  return compileModel(*g, o);
}


/// Runs `cm` and the interpreter on `text` (inputs: x, f32 of any shape, then `ax`, the i64
/// axes of a ReduceSum; one output y); the outputs must be bitwise equal.
void expectBitwiseAsInterpreter(const CompiledModel &cm, const char *text,
                                const std::vector<int64_t> &ax) {
  runtime::Model m = runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size());
  runtime::HostTensor x(m.inputs()[0]), a(m.inputs()[1]);
  Tensor xt(DType::f32, m.inputs()[0].shape), at(DType::i64, {int64_t(ax.size())});
  for (int64_t i = 0; i < xt.numel(); ++i)
    x.data<float>()[i] = xt.data<float>()[i] = 0.37f * float(i % 23) - 3.1f;
  for (size_t i = 0; i < ax.size(); ++i)
    a.data<int64_t>()[i] = at.data<int64_t>()[i] = ax[i];
  auto ref = parseGraph(text, "test");
  auto want = Interpreter(*ref).run({{"x", Object(xt)}, {"ax", Object(at)}}).at("y").tensor;
  auto out = m.run({x, a});
  ASSERT_EQ(out.size(), 1u);
  ASSERT_EQ(out[0].bytes.size(), want.nbytes());
  EXPECT_EQ(std::memcmp(out[0].bytes.data(), want.raw(), want.nbytes()), 0);
}

} // namespace

TEST(InterpreterFallback, CompressHasNoLowering) {
  auto g = parseGraph(kRand, "test");
  for (const auto &n : g->nodes())
    EXPECT_EQ(hasLowering(*n), n->opType != "Compress") << n->opType;
}

TEST(InterpreterFallback, WithoutTheOptionTheCompileFailsNamingNodeAndOp) {
  std::string err = errorOf([] { compileText(kRand, false); });
  EXPECT_NE(err.find("node 'compress' (Compress)"), std::string::npos) << err;
  EXPECT_NE(err.find("has a shape that depends on the data"), std::string::npos) << err;
  EXPECT_NE(err.find("--allow-interpreter-fallback"), std::string::npos) << err;
}

TEST(InterpreterFallback, CompiledModelMatchesTheInterpreter) {
  registerInterpreterFallback();
  CompiledModel cm = compileText(kRand, true);
  ASSERT_EQ(cm.fallbackNodes.size(), 1u);
  EXPECT_NE(cm.fallbackNodes[0].find("node 'compress' (Compress)"), std::string::npos)
      << cm.fallbackNodes[0];
  runtime::Model m = runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size());
  ASSERT_NE(m.info("fallback_nodes"), nullptr);
  EXPECT_EQ(*m.info("fallback_nodes"), "compress (Compress)");
  ASSERT_EQ(m.contents().fallbacks.size(), 1u);
  EXPECT_EQ(m.contents().fallbacks[0].opType, "Compress");

  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-1, 1);
  runtime::HostTensor x(m.inputs()[0]);
  Tensor xt(DType::f32, {3, 4, 4});
  for (int i = 0; i < 48; ++i)
    x.data<float>()[i] = xt.data<float>()[i] = u(rng);
  auto ref = parseGraph(kRand, "test");
  auto want = Interpreter(*ref).run({{"x", Object(xt)}}).at("y").tensor;
  // Several runs, and from two threads at once: the fallback kernel is reentrant.
  for (int rep = 0; rep < 2; ++rep) {
    std::vector<runtime::HostTensor> a, b;
    std::thread t([&] { a = m.run({x}); });
    b = m.run({x});
    t.join();
    for (auto *got : {&a, &b}) {
      ASSERT_EQ(got->size(), 1u);
      for (int i = 0; i < 36; ++i)
        EXPECT_NEAR((*got)[0].data<float>()[i], want.data<float>()[i], 1e-5) << i;
    }
  }
}

// An op that has a lowering, on a node its lowering rejects: a ReduceSum over run-time axes
// whose output shape fits more than 8 sets of axes ([2,2,2,2,2] -> [2,2,2]: any 2 of 5 dims).
// Without the option the compile fails with the lowering's reason; with it the node falls back
// while the rest compiles.
const char *kRuntimeAxes = R"(
graph @axes(%x: f32[2,2,2,2,2], %ax: i64[2]) opset {"": 17} {
  %n = Neg(%x) {name = "neg"}
  %b = Abs(%n) {name = "abs"}
  %s = ReduceSum(%b, %ax) {name = "sum", keepdims = 0} : f32[2,2,2]
  %r = Relu(%s) {name = "relu"}
  %y = Sqrt(%r) {name = "sqrt"}
  return %y
}
)";

TEST(InterpreterFallback, NodeTheLoweringRejectsFallsBack) {
  std::string err = errorOf([&] { compileText(kRuntimeAxes, false); });
  EXPECT_NE(err.find("node 'sum' (ReduceSum)"), std::string::npos) << err;
  EXPECT_NE(err.find("8"), std::string::npos) << err;
  registerInterpreterFallback();
  CompiledModel cm = compileText(kRuntimeAxes, true);
  ASSERT_EQ(cm.fallbackNodes.size(), 1u);
  EXPECT_NE(cm.fallbackNodes[0].find("node 'sum' (ReduceSum)"), std::string::npos);
  for (const std::vector<int64_t> &ax : {std::vector<int64_t>{0, 1}, {4, 2}, {-1, -5}})
    expectBitwiseAsInterpreter(cm, kRuntimeAxes, ax);
}

// A fallback node is kept out of fusion, not its neighbours: the Neg and Abs before the
// ReduceSum (which would have joined its group) share one kernel, the fallback step runs alone,
// and the Relu and Sqrt after it share one.
TEST(InterpreterFallback, NeighboursOfAFallbackNodeStillFuse) {
  registerInterpreterFallback();
  CompiledModel cm = compileText(kRuntimeAxes, true);
  ASSERT_EQ(cm.kernels.size(), 3u);
  EXPECT_EQ(cm.kernels[0].nodes.size(), 2u);
  EXPECT_EQ(cm.kernels[1].nodes.size(), 1u);
  EXPECT_EQ(cm.kernels[2].nodes.size(), 2u);
}

TEST(InterpreterFallback, LoadingWithoutAHandlerFailsNamingTheNodes) {
  CompiledModel cm = compileText(kRand, true);
  runtime::setFallbackHandler({});
  EXPECT_FALSE(runtime::hasFallbackHandler());
  std::string err = errorOf(
      [&] { runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size(), "fb.tsl"); });
  EXPECT_NE(err.find("compress (Compress)"), std::string::npos) << err;
  EXPECT_NE(err.find("no fallback handler"), std::string::npos) << err;
  tessel_model *cm2 = nullptr;
  EXPECT_EQ(tessel_load_from_memory(cm.artifact.data(), cm.artifact.size(), &cm2), -1);
  std::string cerr = tessel_last_error();
  EXPECT_NE(cerr.find("compress (Compress)"), std::string::npos) << cerr;
  registerInterpreterFallback();
  EXPECT_TRUE(runtime::hasFallbackHandler());
}

TEST(InterpreterFallback, SectionCountFiveWithoutFallbackSixWith) {
  auto sectionCount = [](const std::vector<uint8_t> &b) {
    uint32_t v = 0;
    std::memcpy(&v, b.data() + 24, 4);
    return v;
  };
  const char *plain = R"(
graph @plain(%x: f32[4]) opset {"": 17} {
  %r = Relu(%x) {name = "relu"}
  return %r
}
)";
  EXPECT_EQ(sectionCount(compileText(plain, true).artifact), runtime::kNumSectionKinds);
  EXPECT_EQ(sectionCount(compileText(kRand, true).artifact), runtime::kNumSectionKinds + 1);
}

// Regression (conformance pytorch-converted/test_PReLU_*_multiparam compiled): before opset 7
// a 1-D slope of C values is per channel (axis 1), not numpy-broadcast against the last axis.
TEST(CompiledLowering, PReluOpset6SlopeIsPerChannel) {
  const char *text = R"(
graph @prelu(%x: f32[2,3,4]) opset {"": 6} {
  %s: f32[3] = dense<[0.25, -0.5, 2.0]>
  %y = PRelu(%x, %s) {name = "prelu"}
  return %y
}
)";
  auto g = parseGraph(text, "test");
  CompiledModel cm = compileModel(*g, {});
  runtime::Model m = runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size());
  runtime::HostTensor x(m.inputs()[0]);
  Tensor xt(DType::f32, {2, 3, 4});
  for (int i = 0; i < 24; ++i)
    x.data<float>()[i] = xt.data<float>()[i] = float(i % 7) - 3.5f;
  auto ref = parseGraph(text, "test");
  Tensor want = Interpreter(*ref).run({{"x", Object(xt)}}).at("y").tensor;
  auto got = m.run({x});
  ASSERT_EQ(got.size(), 1u);
  for (int i = 0; i < 24; ++i)
    EXPECT_FLOAT_EQ(got[0].data<float>()[i], want.data<float>()[i]) << i;
}
