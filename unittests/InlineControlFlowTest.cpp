//===- InlineControlFlowTest.cpp - If/Loop/Scan compiled by inlining ------===//
//
// The inline-control-flow pass (lib/Graph/Transforms/InlineControlFlow.cpp) makes If, Loop and
// Scan compilable: each model here compiles WITHOUT --allow-interpreter-fallback, runs through
// the runtime and matches the reference interpreter run on the original graph (with its
// If/Loop/Scan kernels), at -O0 and -O3, with both values of every boolean condition input.
// Nodes the pass must leave alone keep the "has no lowering" error.
//
//===----------------------------------------------------------------------===//
#include "CompileTestUtils.h"
#include "TestUtils.h"
#include "tessel/Compiler/InterpreterFallback.h"
#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Transforms.h"

#include <gtest/gtest.h>

#include <algorithm>

using namespace tessel;

namespace {

Tensor boolScalar(bool b) { return Tensor::scalar<bool>(b); }

/// Compiles `text` at -O0 and -O3 for each of `givens` and compares it with the interpreter;
/// the artifacts must have no interpreter-fallback nodes.
void checkCompiled(const std::string &text,
                   const std::vector<std::map<std::string, Tensor>> &givens, unsigned seeds = 2,
                   std::vector<int> optLevels = {0, 3}) {
  for (int opt : optLevels)
    for (const auto &given : givens)
      for (unsigned seed = 1; seed <= seeds; ++seed) {
        SCOPED_TRACE("-O" + std::to_string(opt) + " seed " + std::to_string(seed));
        test::CompareOptions o;
        o.optLevel = opt;
        o.seed = seed;
        o.given = given;
        o.scale = [](const std::string &) { return 2.0; };
        test::CompareResult r = test::compileAndCompare(text, o);
        EXPECT_TRUE(r.cm.fallbackNodes.empty());
      }
}

/// The ops of `text` after the pass alone.
std::vector<std::string> opsAfterPass(const std::string &text) {
  auto g = parseGraph(text, "test");
  runPasses(*g, {"inline-control-flow"});
  std::vector<std::string> ops;
  for (auto &n : g->nodes())
    ops.push_back(n->opType);
  return ops;
}

bool contains(const std::vector<std::string> &v, const std::string &s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

const char *kIf = R"(
graph @iff(%x: f32[2,3], %c: bool[]) opset {"": 17} {
  %k: f32[2,3] = dense<0.5>
  %n = Neg(%x) {name = "neg"}
  %r = If(%c) {name = "if", else_branch = graph @e() {
    %b: f32[3] = dense<[1, -2, 3]>
    %s = Add(%x, %b)
    return %s
  }, then_branch = graph @t() {
    %a = Mul(%n, %k)
    %h = Constant() {value = dense<1.5> : f32[]}
    %p = Exp(%a)
    %e = Mul(%p, %h)
    return %e
  }}
  %y = Relu(%r) {name = "relu"}
  return %y
}
)";

// sum_i (v + i) with a trace of v*v per iteration (M = 4, cond passed through).
const char *kLoop = R"(
graph @loop(%x: f32[2,3]) opset {"": 13} {
  %m: i64[] = dense<4>
  %v0 = Sigmoid(%x)
  %sum, %trace = Loop(%m, _, %v0) {name = "loop", body = graph @body(%i: i64[], %cin: bool[], %v: f32[2,3]) {
    %t = Cast(%i) {to = 1}
    %s = Add(%v, %t)
    %sq = Mul(%s, %x)
    %cout = Identity(%cin)
    return %cout, %s, %sq
  }}
  return %sum, %trace
}
)";

// Doubles v while its sum stays below a bound; stops early (the condition depends on data), and
// the initial condition is an input.
const char *kLoopDataCond = R"(
graph @loopcond(%x: f32[3], %c: bool[]) opset {"": 17} {
  %m: i64[] = dense<6>
  %bound: f32[] = dense<8.0>
  %a = Abs(%x)
  %y, %steps = Loop(%m, %c, %a, %x) {name = "grow", body = graph @body(%i: i64[], %cin: bool[], %v: f32[3], %w: f32[3]) {
    %two: f32[] = dense<2.0>
    %v2 = Mul(%v, %two)
    %w2 = Sub(%w, %v)
    %s = ReduceSum(%v2) {keepdims = 0}
    %go = Less(%s, %bound)
    return %go, %v2, %w2
  }}
  return %y, %steps
}
)";

const char *kScan9 = R"(
graph @scan9(%init: f32[2], %a: f32[2,4], %b: f32[4,2]) opset {"": 16} {
  %acc, %z, %z2 = Scan(%init, %a, %b) {name = "scan", num_scan_inputs = 2, scan_input_axes = [1, 0], scan_input_directions = [1, 0], scan_output_axes = [-1, 0], scan_output_directions = [1, 0], body = graph @body(%s: f32[2], %p: f32[2], %q: f32[2]) {
    %t = Mul(%p, %q)
    %u = Add(%s, %t)
    %o = Tanh(%u)
    %o2 = Sub(%u, %p)
    return %u, %o, %o2
  }}
  return %acc, %z, %z2
}
)";

const char *kScan8 = R"(
graph @scan8(%init: f32[3,2], %x: f32[3,4,2]) opset {"": 8} {
  %y, %z = Scan(_, %init, %x) {name = "scan8", num_scan_inputs = 1, directions = [1], body = graph @body(%s: f32[2], %n: f32[2]) {
    %a = Add(%s, %n)
    %o = Mul(%a, %n)
    return %a, %o
  }}
  return %y, %z
}
)";

// An If nested in a Loop body, its condition computed from the iteration number and a capture
// of the loop-carried value.
const char *kNested = R"(
graph @nested(%x: f32[4], %c: bool[]) opset {"": 17} {
  %m: i64[] = dense<3>
  %one: i64[] = dense<1>
  %y = Loop(%m, _, %x) {name = "outer", body = graph @body(%i: i64[], %cin: bool[], %v: f32[4]) {
    %odd = Equal(%i, %one)
    %r = If(%odd) {name = "pick", else_branch = graph @e() {
      %n = Neg(%v)
      return %n
    }, then_branch = graph @t() {
      %q = Sin(%v)
      %r2 = If(%c) {name = "inner", else_branch = graph @e2() {
        return %q
      }, then_branch = graph @t2() {
        %d = Add(%q, %x)
        return %d
      }}
      return %r2
    }}
    return %cin, %r
  }}
  return %y
}
)";

} // namespace

TEST(InlineControlFlow, IfWithRuntimeConditionCompiles) {
  EXPECT_FALSE(contains(opsAfterPass(kIf), "If"));
  EXPECT_TRUE(contains(opsAfterPass(kIf), "Where"));
  checkCompiled(kIf, {{{"c", boolScalar(true)}}, {{"c", boolScalar(false)}}});
}

TEST(InlineControlFlow, LoopWithConstantTripCountCompiles) {
  auto ops = opsAfterPass(kLoop);
  EXPECT_FALSE(contains(ops, "Loop"));
  EXPECT_EQ(std::count(ops.begin(), ops.end(), "Add"), 4); // one body copy per iteration
  checkCompiled(kLoop, {{}});
}

TEST(InlineControlFlow, LoopWithDataDependentConditionCompiles) {
  auto ops = opsAfterPass(kLoopDataCond);
  EXPECT_FALSE(contains(ops, "Loop"));
  EXPECT_TRUE(contains(ops, "And"));
  // Scale 2: |x| up to 2, the sum of 2|x| reaches the bound 8 after a few doublings (seed
  // dependent), so the loop stops before its 6 iterations.
  checkCompiled(kLoopDataCond, {{{"c", boolScalar(true)}}, {{"c", boolScalar(false)}}}, 3);
}

TEST(InlineControlFlow, ScanWithAxesAndDirectionsCompiles) {
  EXPECT_FALSE(contains(opsAfterPass(kScan9), "Scan"));
  checkCompiled(kScan9, {{}});
}

TEST(InlineControlFlow, Scan8WithBatchAxisCompiles) {
  EXPECT_FALSE(contains(opsAfterPass(kScan8), "Scan"));
  checkCompiled(kScan8, {{}});
}

TEST(InlineControlFlow, NestedIfInLoopCompiles) {
  auto ops = opsAfterPass(kNested);
  EXPECT_FALSE(contains(ops, "Loop"));
  EXPECT_FALSE(contains(ops, "If"));
  checkCompiled(kNested, {{{"c", boolScalar(true)}}, {{"c", boolScalar(false)}}});
}

// ONNX's test_loop11 body (y += x[i:i+1] per iteration, a scan output of y) with a constant trip
// count: the Slice bounds come from the iteration number, constant in each copy once folded
// (-O3; at -O0 a Slice with computed bounds has no lowering).
TEST(InlineControlFlow, LoopSlicingByIterationNumberCompiles) {
  const char *text = R"(
graph @loop11(%y: f32[1]) opset {"": 11} {
  %trip_count: i64[] = dense<5>
  %cond: bool[] = dense<true>
  %res_y, %res_scan = Loop(%trip_count, %cond, %y) {name = "Loop_0", body = graph @loop_body(%iter_count: i64[], %cond_in: bool[], %y_in: f32[1]) {
    %cond_out = Identity(%cond_in)
    %x = Constant() {value = dense<[1, 2, 3, 4, 5]> : f32[5]}
    %one = Constant() {value = dense<1> : i64[]}
    %end = Add(%iter_count, %one)
    %slice_start = Unsqueeze(%iter_count) {axes = [0]}
    %slice_end = Unsqueeze(%end) {axes = [0]}
    %slice_out = Slice(%x, %slice_start, %slice_end)
    %y_out = Add(%y_in, %slice_out)
    %scan_out = Identity(%y_out)
    return %cond_out, %y_out, %scan_out
  }}
  return %res_y, %res_scan
}
)";
  checkCompiled(text, {{}}, 1, {3});
}

// The trip count comes from a shape (Shape -> Gather): a constant only once fold-shapes ran, so
// the pass leaves the Loop alone before optimizeGraph and compileModel inlines it after (-O3).
TEST(InlineControlFlow, TripCountFromAShapeCompiles) {
  const char *text = R"(
graph @shape_trips(%x: f32[4,3], %y: f32[3]) opset {"": 17} {
  %s = Shape(%x)
  %zero: i64[] = dense<0>
  %n = Gather(%s, %zero)
  %t: bool[] = dense<true>
  %r = Loop(%n, %t, %y) {name = "loop", body = graph @b(%i: i64[], %cin: bool[], %v: f32[3]) {
    %row = Gather(%x, %i)
    %w = Add(%v, %row)
    return %cin, %w
  }} : f32[3]
  return %r
}
)";
  EXPECT_TRUE(contains(opsAfterPass(text), "Loop")); // the pass alone: not a constant yet
  checkCompiled(text, {{}}, 1, {3});
}

// The trip count is an input: no static unrolling, so the Loop stays and compiling it without
// the fallback is the usual error naming the node.
TEST(InlineControlFlow, RuntimeTripCountIsLeftAlone) {
  const char *text = R"(
graph @dyn(%x: f32[2], %n: i64[]) opset {"": 17} {
  %y = Loop(%n, _, %x) {name = "dyn", body = graph @body(%i: i64[], %cin: bool[], %v: f32[2]) {
    %s = Neg(%v)
    return %cin, %s
  }}
  return %y
}
)";
  EXPECT_TRUE(contains(opsAfterPass(text), "Loop"));
  auto g = parseGraph(text, "test");
  std::string err = test::errorOf([&] { compileModel(*g, {}); });
  EXPECT_NE(err.find("node 'dyn' (Loop)"), std::string::npos) << err;
  EXPECT_NE(err.find("has no lowering"), std::string::npos) << err;
}

TEST(InlineControlFlow, OverBudgetLoopIsLeftAlone) {
  const char *text = R"(
graph @big(%x: f32[2]) opset {"": 17} {
  %m: i64[] = dense<2049>
  %y = Loop(%m, _, %x) {name = "big", body = graph @body(%i: i64[], %cin: bool[], %v: f32[2]) {
    %s = Neg(%v)
    %t = Abs(%s)
    return %cin, %t
  }}
  return %y
}
)";
  auto g = parseGraph(text, "test");
  PassStats stats;
  EXPECT_FALSE(inlineControlFlow(*g, stats));
  EXPECT_EQ(stats.counters["over-budget"], 1);
  EXPECT_EQ(g->nodes().size(), 1u);
}

// Sequence-typed Ifs stay (their values cannot be compiled either way).
TEST(InlineControlFlow, SequenceIfIsLeftAlone) {
  const char *text = R"(
graph @seq(%x: f32[2], %c: bool[]) opset {"": 17} {
  %zero: i64[] = dense<0>
  %r = If(%c) {else_branch = graph @e() {
    %s = SequenceConstruct(%x)
    return %s
  }, then_branch = graph @t() {
    %s2 = SequenceConstruct(%x, %x)
    return %s2
  }}
  %y = SequenceAt(%r, %zero)
  return %y
}
)";
  EXPECT_TRUE(contains(opsAfterPass(text), "If"));
}

// What the pass leaves alone still runs with --allow-interpreter-fallback: a Loop with a
// run-time trip count falls back with its body, whose captures (a computed value, a constant,
// a graph input) reach the serialized node.
TEST(InlineControlFlow, RuntimeTripCountLoopFallsBackWithCaptures) {
  const char *text = R"(
graph @lp(%x: f32[2,3], %c: bool[], %trips: i64[]) opset {"": 17} {
  %k: f32[2,3] = dense<0.5>
  %n = Neg(%x) {name = "neg"}
  %r = Loop(%trips, %c, %x) {name = "loop", body = graph @b(%i: i64[], %cin: bool[], %v: f32[2,3]) {
    %a = Mul(%n, %k)
    %s = Add(%v, %a)
    %t = Sub(%s, %x)
    return %cin, %t
  }} : f32[2,3]
  %y = Relu(%r) {name = "relu"}
  return %y
}
)";
  registerInterpreterFallback();
  auto g = parseGraph(text, "test");
  CompileOptions co;
  co.allowInterpreterFallback = true;
  CompiledModel cm = compileModel(*g, co);
  ASSERT_EQ(cm.fallbackNodes.size(), 1u);
  EXPECT_NE(cm.fallbackNodes[0].find("node 'loop' (Loop)"), std::string::npos);
  for (bool cond : {true, false})
    for (int64_t trips : {0, 3}) {
      test::CompareOptions o;
      o.compile = co;
      o.given = {{"c", boolScalar(cond)}, {"trips", Tensor::scalar<int64_t>(trips)}};
      test::CompareResult r = test::compileAndCompare(text, o);
      EXPECT_EQ(r.cm.fallbackNodes.size(), 1u);
    }
}
