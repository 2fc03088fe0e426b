//===- SimplifyAlgebraTest.cpp - each simplify rule, both sides evaluated -===//
//
// For every rule of the simplify pass's table (lib/Graph/Transforms/SimplifyAlgebra.h) a small
// graph that matches it is run in the reference interpreter on random inputs (never zeros)
// before and after the pass: the rule must fire (its PassStats counter) and the results must
// agree (rtol 1e-5). Negative cases must leave the graph unchanged.
//
//===----------------------------------------------------------------------===//
#include "../lib/Graph/Transforms/SimplifyAlgebra.h"

#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Text.h"
#include "tessel/Graph/Transforms.h"
#include "tessel/Interp/Interpreter.h"

#include <gtest/gtest.h>

#include <cmath>
#include <random>
#include <set>
#include <string>

using namespace tessel;

namespace {

struct Case {
  const char *rule; // the rule that must fire
  const char *ir;   // a graph that matches it (its result feeds a node, or the rule would skip)
};

// The results flow into an Identity that is the graph output: graph outputs keep their names,
// so the rule must rewrite a node whose result is not one.
const Case kPositive[] = {
    {"mul-one", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %one: f32[3] = dense<1>
      %y = Mul(%x, %one)
      %z = Identity(%y)
      return %z })"},
    {"mul-one", R"(graph @g(%x: i32[2,3]) opset {"": 13} {
      %one: i32[1,1] = dense<1>
      %y = Mul(%x, %one)
      %z = Identity(%y)
      return %z })"},
    {"one-mul", R"(graph @g(%x: f32[N,3]) opset {"": 13} {
      %one: f32[] = dense<1>
      %y = Mul(%one, %x)
      %z = Identity(%y)
      return %z })"},
    {"add-zero", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %zero: f32[2,3] = dense<0>
      %y = Add(%x, %zero)
      %z = Identity(%y)
      return %z })"},
    {"zero-add", R"(graph @g(%x: f64[4]) opset {"": 13} {
      %zero: f64[1] = dense<0>
      %y = Add(%zero, %x)
      %z = Identity(%y)
      return %z })"},
    {"sub-zero", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %zero: f32[] = dense<0>
      %y = Sub(%x, %zero)
      %z = Identity(%y)
      return %z })"},
    {"div-one", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %one: f32[3] = dense<1>
      %y = Div(%x, %one)
      %z = Identity(%y)
      return %z })"},
    {"div-one", R"(graph @g(%x: i64[5]) opset {"": 13} {
      %one: i64[] = dense<1>
      %y = Div(%x, %one)
      %z = Identity(%y)
      return %z })"},
    {"pow-one", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %one: f32[] = dense<1>
      %y = Pow(%x, %one)
      %z = Identity(%y)
      return %z })"},
    {"pow-two", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %two: f32[3] = dense<2>
      %y = Pow(%x, %two)
      %z = Identity(%y)
      return %z })"},
    {"transpose-identity", R"(graph @g(%x: f32[2,3,4]) opset {"": 13} {
      %y = Transpose(%x) {perm = [0, 1, 2]}
      %z = Identity(%y)
      return %z })"},
    {"transpose-transpose", R"(graph @g(%x: f32[2,3,4]) opset {"": 13} {
      %t = Transpose(%x) {perm = [1, 0, 2]}
      %y = Transpose(%t) {perm = [1, 0, 2]}
      %z = Identity(%y)
      return %z })"},
    {"transpose-transpose", R"(graph @g(%x: f32[2,3,4]) opset {"": 13} {
      %t = Transpose(%x) {perm = [1, 2, 0]}
      %y = Transpose(%t) {perm = [0, 2, 1]}
      return %y })"},
    {"transpose-transpose", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %t = Transpose(%x)
      %y = Transpose(%t)
      %z = Identity(%y)
      return %z })"},
    {"reshape-same", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %s: i64[2] = dense<[0, -1]>
      %y = Reshape(%x, %s)
      %z = Identity(%y)
      return %z })"},
    {"reshape-reshape", R"(graph @g(%x: f32[2,3,4]) opset {"": 13} {
      %s1: i64[2] = dense<[6, 4]>
      %s2: i64[3] = dense<[4, -1, 2]>
      %t = Reshape(%x, %s1)
      %y = Reshape(%t, %s2)
      return %y })"},
    {"identity", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %y = Identity(%x)
      %r = Relu(%y)
      return %r })"},
    {"dropout-inference", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %y, %mask = Dropout(%x) {seed = 3}
      %z = Identity(%y)
      return %z })"},
    {"dropout-inference", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %ratio: f32[] = dense<0.5>
      %train: bool[] = dense<false>
      %y = Dropout(%x, %ratio, %train)
      %z = Identity(%y)
      return %z })"},
    {"dropout-inference", R"(graph @g(%x: f32[2,3]) opset {"": 10} {
      %y = Dropout(%x) {ratio = 0.3}
      %z = Identity(%y)
      return %z })"},
    {"cast-same", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %y = Cast(%x) {to = 1}
      %z = Identity(%y)
      return %z })"},
    {"cast-chain", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %w = Cast(%x) {to = 11}
      %y = Cast(%w) {to = 1}
      %z = Identity(%y)
      return %z })"},
    {"cast-chain", R"(graph @g(%x: i32[4]) opset {"": 13} {
      %w = Cast(%x) {to = 7}
      %y = Cast(%w) {to = 11}
      return %y })"},
    {"pad-zero", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %pads: i64[4] = dense<0>
      %y = Pad(%x, %pads)
      %z = Identity(%y)
      return %z })"},
    {"pad-zero", R"(graph @g(%x: f32[2,3]) opset {"": 10} {
      %y = Pad(%x) {mode = "reflect", pads = [0, 0, 0, 0]}
      %z = Identity(%y)
      return %z })"},
    {"slice-all", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %st: i64[1] = dense<[0]>
      %en: i64[1] = dense<[9223372036854775807]>
      %ax: i64[1] = dense<[1]>
      %y = Slice(%x, %st, %en, %ax)
      %z = Identity(%y)
      return %z })"},
    {"slice-all", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %st: i64[2] = dense<[-5, 0]>
      %en: i64[2] = dense<[2, 100]>
      %steps: i64[2] = dense<1>
      %y = Slice(%x, %st, %en, _, %steps)
      %z = Identity(%y)
      return %z })"},
    {"slice-all", R"(graph @g(%x: f32[2,3]) opset {"": 9} {
      %y = Slice(%x) {ends = [3], starts = [0], axes = [-1]}
      %z = Identity(%y)
      return %z })"},
    {"expand-same", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %s: i64[2] = dense<[1, 3]>
      %y = Expand(%x, %s)
      %z = Identity(%y)
      return %z })"},
    {"squeeze-unsqueeze", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %a: i64[2] = dense<[0, -1]>
      %b: i64[2] = dense<[3, 0]>
      %u = Unsqueeze(%x, %a)
      %y = Squeeze(%u, %b)
      %z = Identity(%y)
      return %z })"},
    {"squeeze-unsqueeze", R"(graph @g(%x: f32[2,3]) opset {"": 11} {
      %u = Unsqueeze(%x) {axes = [1]}
      %y = Squeeze(%u) {axes = [1]}
      %z = Identity(%y)
      return %z })"},
    {"unsqueeze-squeeze", R"(graph @g(%x: f32[2,1,3]) opset {"": 13} {
      %a: i64[1] = dense<[1]>
      %s = Squeeze(%x, %a)
      %y = Unsqueeze(%s, %a)
      %z = Identity(%y)
      return %z })"},
    {"concat-one", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %y = Concat(%x) {axis = 1}
      %z = Identity(%y)
      return %z })"},
    {"neg-neg", R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %a = Neg(%x)
      %b = Neg(%a)
      %c = Neg(%b)
      %y = Neg(%c)
      %z = Identity(%y)
      return %z })"},
    {"not-not", R"(graph @g(%x: bool[5]) opset {"": 13} {
      %a = Not(%x)
      %y = Not(%a)
      %z = Identity(%y)
      return %z })"},
};

// Graphs no rule may touch.
const char *const kNegative[] = {
    // x*1 where 1 broadcasts to a bigger shape: the result is not x's shape.
    R"(graph @g(%x: f32[3]) opset {"": 13} {
      %one: f32[2,3] = dense<1>
      %y = Mul(%x, %one)
      %z = Identity(%y)
      return %z })",
    // x*1 where x's dim is symbolic: 1 of shape [3] could broadcast it.
    R"(graph @g(%x: f32[N]) opset {"": 13} {
      %one: f32[3] = dense<1>
      %y = Mul(%x, %one)
      %z = Identity(%y)
      return %z })",
    // x*2, x+1, x/2, x**3 (x**2 is pow-two's).
    R"(graph @g(%x: f32[3]) opset {"": 13} {
      %two: f32[] = dense<2>
      %three: f32[] = dense<3>
      %one: f32[] = dense<1>
      %a = Mul(%x, %two)
      %b = Add(%a, %one)
      %c = Div(%b, %two)
      %d = Pow(%c, %three)
      %z = Identity(%d)
      return %z })",
    // A 1 that the caller may override (an input with a default) is not a constant.
    R"(graph @g(%x: f32[3], %one: f32[] = dense<1>) opset {"": 13} {
      %y = Mul(%x, %one)
      %z = Identity(%y)
      return %z })",
    // The result is a graph output: its name must stay.
    R"(graph @g(%x: f32[3]) opset {"": 13} {
      %one: f32[] = dense<1>
      %y = Mul(%x, %one)
      return %y })",
    // A Transpose that permutes.
    R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %y = Transpose(%x) {perm = [1, 0]}
      %z = Identity(%y)
      return %z })",
    // Reshape(Reshape(x)) whose outer shape copies a dim (0) of the intermediate.
    R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %s1: i64[2] = dense<[3, 2]>
      %s2: i64[3] = dense<[0, 1, 2]>
      %t = Reshape(%x, %s1)
      %y = Reshape(%t, %s2)
      %z = Identity(%y)
      return %z })",
    // Narrowing cast chain: f32 -> f16 -> f32 rounds.
    R"(graph @g(%x: f32[3]) opset {"": 13} {
      %h = Cast(%x) {to = 10}
      %y = Cast(%h) {to = 1}
      %z = Identity(%y)
      return %z })",
    // Dropout in training mode, and Dropout whose mask is used.
    R"(graph @g(%x: f32[3]) opset {"": 13} {
      %ratio: f32[] = dense<0.5>
      %train: bool[] = dense<true>
      %y = Dropout(%x, %ratio, %train) {seed = 1}
      %z = Identity(%y)
      return %z })",
    R"(graph @g(%x: f32[3]) opset {"": 13} {
      %y, %m = Dropout(%x)
      %z = Identity(%y)
      return %z, %m })",
    // Pad that pads; Slice that cuts; Expand that grows.
    R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %pads: i64[4] = dense<[0, 1, 0, 0]>
      %y = Pad(%x, %pads)
      %z = Identity(%y)
      return %z })",
    R"(graph @g(%x: f32[2,3]) opset {"": 13} {
      %st: i64[1] = dense<[0]>
      %en: i64[1] = dense<[2]>
      %ax: i64[1] = dense<[1]>
      %y = Slice(%x, %st, %en, %ax)
      %z = Identity(%y)
      return %z })",
    R"(graph @g(%x: f32[N,3]) opset {"": 13} {
      %st: i64[1] = dense<[0]>
      %en: i64[1] = dense<[2]>
      %y = Slice(%x, %st, %en)
      %z = Identity(%y)
      return %z })",
    R"(graph @g(%x: f32[1,3]) opset {"": 13} {
      %s: i64[2] = dense<[2, 3]>
      %y = Expand(%x, %s)
      %z = Identity(%y)
      return %z })",
    // Squeeze(Unsqueeze(x)) on different axes.
    R"(graph @g(%x: f32[3,1]) opset {"": 13} {
      %a: i64[1] = dense<[0]>
      %b: i64[1] = dense<[2]>
      %u = Unsqueeze(%x, %a)
      %y = Squeeze(%u, %b)
      %z = Identity(%y)
      return %z })",
    // Concat of two.
    R"(graph @g(%x: f32[3]) opset {"": 13} {
      %y = Concat(%x, %x) {axis = 0}
      %z = Identity(%y)
      return %z })",
};

std::unique_ptr<Graph> parse(const char *text) {
  auto g = parseGraph(text, "case.tsl");
  inferShapes(*g);
  verifyGraph(*g);
  return g;
}

/// Random tensors for the graph's inputs: |values| in [0.5, 2] (ints in [1, 5]), random sign
/// for signed types, never zero. Symbolic dims are 2.
std::vector<Object> randomInputs(const Graph &g, std::mt19937 &rng) {
  std::vector<Object> ins;
  for (const Value *v : requiredInputs(g)) {
    std::vector<int64_t> shape;
    for (const Dim &d : v->type.shape.dims)
      shape.push_back(d.isStatic() ? d.value : 2);
    Tensor t(v->type.dtype, shape);
    std::uniform_real_distribution<double> mag(0.5, 2.0);
    std::uniform_int_distribution<int> imag(1, 5), coin(0, 1);
    dispatchNumeric(t.dtype(), [&](auto tag) {
      using T = decltype(tag);
      T *p = t.data<T>();
      for (int64_t i = 0; i < t.numel(); ++i) {
        bool neg = isSigned(t.dtype()) && coin(rng);
        if constexpr (std::is_same_v<T, bool>)
          p[i] = coin(rng) != 0;
        else if (isFloat(t.dtype()))
          p[i] = T(float(neg ? -mag(rng) : mag(rng)));
        else
          p[i] = T(neg ? -imag(rng) : imag(rng));
      }
    });
    ins.push_back(Object(t));
  }
  return ins;
}

void expectClose(const std::vector<Object> &a, const std::vector<Object> &b, const std::string &what) {
  ASSERT_EQ(a.size(), b.size()) << what;
  for (size_t i = 0; i < a.size(); ++i) {
    ASSERT_TRUE(a[i].isTensor() && b[i].isTensor()) << what;
    const Tensor &x = a[i].tensor, &y = b[i].tensor;
    ASSERT_EQ(x.dtype(), y.dtype()) << what << ": output " << i;
    ASSERT_EQ(x.shape(), y.shape()) << what << ": output " << i;
    for (int64_t k = 0; k < x.numel(); ++k) {
      double p = x.getDouble(k), q = y.getDouble(k);
      ASSERT_LE(std::fabs(p - q), 1e-5 * std::fabs(p)) << what << ": output " << i << " element " << k;
    }
  }
}

std::vector<std::string> outputNames(const Graph &g) {
  std::vector<std::string> r;
  for (const Value *v : g.outputs)
    r.push_back(v->name());
  return r;
}

TEST(SimplifyAlgebra, EveryRuleFiresAndKeepsNumbers) {
  std::mt19937 rng(1234);
  for (const Case &c : kPositive) {
    SCOPED_TRACE(std::string(c.rule) + ":\n" + c.ir);
    auto g = parse(c.ir);
    auto before = printGraph(*g);
    auto names = outputNames(*g);
    for (int trial = 0; trial < 3; ++trial) {
      auto ins = randomInputs(*g, rng);
      auto expected = Interpreter(*g).runOrdered(ins);
      auto g2 = parse(c.ir);
      PassStats stats;
      EXPECT_TRUE(simplifyAlgebra(*g2, stats));
      EXPECT_GE(stats.counters[c.rule], 1) << "rule did not fire";
      inferShapes(*g2);
      verifyGraph(*g2);
      EXPECT_NE(printGraph(*g2), before);
      EXPECT_EQ(outputNames(*g2), names) << "graph output names changed";
      auto got = Interpreter(*g2).runOrdered(ins);
      expectClose(expected, got, c.rule);
    }
  }
}

TEST(SimplifyAlgebra, EveryRuleHasATest) {
  std::set<std::string> tested;
  for (const Case &c : kPositive)
    tested.insert(c.rule);
  for (const SimplifyRuleInfo &r : simplifyRules())
    EXPECT_TRUE(tested.count(r.name)) << "rule '" << r.name << "' (" << r.pattern << ") has no test case";
}

TEST(SimplifyAlgebra, NegativeCasesDoNotFire) {
  for (const char *ir : kNegative) {
    SCOPED_TRACE(ir);
    auto g = parse(ir);
    auto before = printGraph(*g);
    PassStats stats;
    EXPECT_FALSE(simplifyAlgebra(*g, stats));
    EXPECT_TRUE(stats.counters.empty());
    EXPECT_EQ(printGraph(*g), before);
  }
}

// Forwarding a value that a subgraph captures retargets the capture.
TEST(SimplifyAlgebra, CapturesFollowRewrites) {
  const char *ir = R"(graph @g(%x: f32[3], %c: bool[]) opset {"": 13} {
    %y = Identity(%x)
    %r = If(%c) {else_branch = graph @e() {
      %n = Neg(%y)
      return %n
    }, then_branch = graph @t() {
      %a = Abs(%y)
      return %a
    }}
    return %r })";
  std::mt19937 rng(7);
  for (bool cond : {false, true}) {
    auto g = parse(ir);
    auto ins = randomInputs(*g, rng);
    ins[1] = Object(Tensor::scalar<bool>(cond));
    auto expected = Interpreter(*g).runOrdered(ins);
    PassStats stats;
    EXPECT_TRUE(simplifyAlgebra(*g, stats));
    EXPECT_EQ(stats.counters["identity"], 1);
    inferShapes(*g);
    verifyGraph(*g);
    EXPECT_EQ(printGraph(*g).find("Identity"), std::string::npos);
    expectClose(expected, Interpreter(*g).runOrdered(ins), "capture");
  }
}

} // namespace
