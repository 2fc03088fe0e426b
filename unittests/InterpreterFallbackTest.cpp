//===- InterpreterFallbackTest.cpp - --allow-interpreter-fallback ---------===//
//
// A node whose op has no lowering (RandomUniformLike) is a compile error naming the node and
// the op without the option; with it, the node becomes a fallback step (the optional fallback
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

// relu(random_uniform_like(x * 2) - 0.5) + max(x over each matrix): RandomUniformLike (no
// lowering: random ops are not compiled; seeded, its values are the same on every run) sits
// between two kernels and reads an arena value.
const char *kRand = R"(
graph @fallback(%x: f32[3,4,4]) opset {"": 17} {
  %two: f32[] = dense<2.0>
  %half: f32[] = dense<0.5>
  %m = Mul(%x, %two) {name = "mul"}
  %d = RandomUniformLike(%m) {name = "rand", seed = 3.0}
  %c = Sub(%d, %half) {name = "sub"}
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

} // namespace

TEST(InterpreterFallback, RandomUniformLikeHasNoLowering) {
  auto g = parseGraph(kRand, "test");
  for (const auto &n : g->nodes())
    EXPECT_EQ(hasLowering(*n), n->opType != "RandomUniformLike") << n->opType;
}

TEST(InterpreterFallback, WithoutTheOptionTheCompileFailsNamingNodeAndOp) {
  std::string err = errorOf([] { compileText(kRand, false); });
  EXPECT_NE(err.find("node 'rand' (RandomUniformLike)"), std::string::npos) << err;
  EXPECT_NE(err.find("has no lowering"), std::string::npos) << err;
  EXPECT_NE(err.find("--allow-interpreter-fallback"), std::string::npos) << err;
}

TEST(InterpreterFallback, CompiledModelMatchesTheInterpreter) {
  registerInterpreterFallback();
  CompiledModel cm = compileText(kRand, true);
  ASSERT_EQ(cm.fallbackNodes.size(), 1u);
  EXPECT_NE(cm.fallbackNodes[0].find("node 'rand' (RandomUniformLike)"), std::string::npos)
      << cm.fallbackNodes[0];
  runtime::Model m = runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size());
  ASSERT_NE(m.info("fallback_nodes"), nullptr);
  EXPECT_EQ(*m.info("fallback_nodes"), "rand (RandomUniformLike)");
  ASSERT_EQ(m.contents().fallbacks.size(), 1u);
  EXPECT_EQ(m.contents().fallbacks[0].opType, "RandomUniformLike");

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
      for (int i = 0; i < 48; ++i)
        EXPECT_NEAR((*got)[0].data<float>()[i], want.data<float>()[i], 1e-5) << i;
    }
  }
}

// An op that has a lowering, on a node its lowering rejects (CumSum lowers, but not as a sum
// of bf16 values): without the option the compile fails with the lowering's reason, with it
// the node falls back while the rest (the bf16 casts too) compiles.
TEST(InterpreterFallback, NodeTheLoweringRejectsFallsBack) {
  const char *text = R"(
graph @bf16(%x: f32[4,6]) opset {"": 17} {
  %ax: i64[] = dense<1>
  %b = Cast(%x) {name = "to_bf16", to = 16}
  %c = CumSum(%b, %ax) {name = "cumsum"}
  %f = Cast(%c) {name = "to_f32", to = 1}
  %y = Relu(%f) {name = "relu"}
  return %y
}
)";
  std::string err = errorOf([&] { compileText(text, false); });
  EXPECT_NE(err.find("node 'cumsum' (CumSum)"), std::string::npos) << err;
  registerInterpreterFallback();
  CompiledModel cm = compileText(text, true);
  ASSERT_EQ(cm.fallbackNodes.size(), 1u);
  EXPECT_NE(cm.fallbackNodes[0].find("node 'cumsum' (CumSum)"), std::string::npos);
  runtime::Model m = runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size());
  runtime::HostTensor x(m.inputs()[0]);
  Tensor xt(DType::f32, {4, 6});
  for (int i = 0; i < 24; ++i)
    x.data<float>()[i] = xt.data<float>()[i] = 0.37f * float(i) - 3.1f;
  auto ref = parseGraph(text, "test");
  auto want = Interpreter(*ref).run({{"x", Object(xt)}}).at("y").tensor;
  auto out = m.run({x});
  ASSERT_EQ(out.size(), 1u);
  EXPECT_EQ(std::memcmp(out[0].bytes.data(), want.raw(), 24 * 4), 0);
}

// An If falls back with its subgraphs: the values they capture (a computed one, a graph input,
// a constant) reach the serialized node, as step arguments or as its initializers.
TEST(InterpreterFallback, IfWithCapturesFallsBack) {
  const char *text = R"(
graph @iff(%x: f32[2,3], %c: bool[]) opset {"": 17} {
  %k: f32[2,3] = dense<0.5>
  %n = Neg(%x) {name = "neg"}
  %r = If(%c) {name = "if", else_branch = graph @e() {
    %b = Add(%x, %k)
    return %b
  }, then_branch = graph @t() {
    %a = Mul(%n, %k)
    return %a
  }} : f32[2,3]
  %y = Relu(%r) {name = "relu"}
  return %y
}
)";
  registerInterpreterFallback();
  CompiledModel cm = compileText(text, true);
  ASSERT_EQ(cm.fallbackNodes.size(), 1u);
  EXPECT_NE(cm.fallbackNodes[0].find("node 'if' (If)"), std::string::npos);
  runtime::Model m = runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size());
  auto ref = parseGraph(text, "test");
  for (bool cond : {true, false}) {
    runtime::HostTensor x(m.inputs()[0]), c(m.inputs()[1]);
    Tensor xt(DType::f32, {2, 3}), ct(DType::boolean, {});
    for (int i = 0; i < 6; ++i)
      x.data<float>()[i] = xt.data<float>()[i] = 0.75f * float(i) - 2.f;
    c.data<bool>()[0] = ct.data<bool>()[0] = cond;
    auto want = Interpreter(*ref).run({{"x", Object(xt)}, {"c", Object(ct)}}).at("y").tensor;
    auto out = m.run({x, c});
    ASSERT_EQ(out.size(), 1u);
    EXPECT_EQ(std::memcmp(out[0].bytes.data(), want.raw(), 6 * 4), 0) << "cond " << cond;
  }
}

TEST(InterpreterFallback, LoadingWithoutAHandlerFailsNamingTheNodes) {
  CompiledModel cm = compileText(kRand, true);
  runtime::setFallbackHandler({});
  EXPECT_FALSE(runtime::hasFallbackHandler());
  std::string err = errorOf(
      [&] { runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size(), "fb.tsl"); });
  EXPECT_NE(err.find("rand (RandomUniformLike)"), std::string::npos) << err;
  EXPECT_NE(err.find("no fallback handler"), std::string::npos) << err;
  tessel_model *cm2 = nullptr;
  EXPECT_EQ(tessel_load_from_memory(cm.artifact.data(), cm.artifact.size(), &cm2), -1);
  std::string cerr = tessel_last_error();
  EXPECT_NE(cerr.find("rand (RandomUniformLike)"), std::string::npos) << cerr;
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
  EXPECT_EQ(sectionCount(compileText(kRand, true).artifact), runtime::kMaxSectionKinds);
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
