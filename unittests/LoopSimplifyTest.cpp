//===- LoopSimplifyTest.cpp - the loop IR simplifier ----------------------===//
//
// Every rule of lib/Loop/Transforms/Simplify.cpp is checked by evaluating the expression before
// and after simplification on random values (and, for the float rules, on the IEEE special
// values), plus a random-expression fuzz over the integer rules.
//
//===----------------------------------------------------------------------===//

#include "tessel/Loop/Evaluate.h"
#include "tessel/Loop/Simplify.h"
#include "tessel/Loop/Text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

using namespace tessel;
using namespace tessel::loop;

namespace {

/// Evaluates e before and after simplify on `trials` random bindings of x and y; checks the
/// results agree and returns the simplified text.
std::string checkRule(const Expr &e, const Var &x, const Var &y, int trials = 200) {
  Expr s = simplify(e);
  std::mt19937_64 rng(42);
  std::uniform_int_distribution<int64_t> small(-1000, 1000);
  for (int t = 0; t < trials; ++t) {
    Env env;
    env[x.get()] = Value::ofInt(x.type(), small(rng));
    env[y.get()] = Value::ofInt(y.type(), small(rng));
    Value a, b;
    try {
      a = evaluate(e, env);
    } catch (const Error &) {
      continue; // e.g. division by zero in the original
    }
    b = evaluate(s, env);
    EXPECT_EQ(a.type, b.type) << printExpr(e) << " -> " << printExpr(s);
    EXPECT_EQ(a.i, b.i) << printExpr(e) << " -> " << printExpr(s);
  }
  return printExpr(s);
}

TEST(LoopSimplify, IntegerRulesHoldOnRandomValues) {
  for (Type t : {Type::i64(), Type::i32()}) {
    Var x("x", t), y("y", t);
    EXPECT_EQ(checkRule(x + 0, x, y), "%x");                       // x + 0 -> x
    EXPECT_EQ(checkRule(0 + x, x, y), "%x");                       // 0 + x -> x
    EXPECT_EQ(checkRule((x + 2) + 3, x, y).substr(0, 6), "%x + 5"); // (x + c1) + c2
    EXPECT_EQ(checkRule(x - 0, x, y), "%x");                       // x - 0 -> x
    EXPECT_EQ(checkRule(x - x, x, y).substr(0, 1), "0");           // x - x -> 0
    EXPECT_EQ(checkRule((x + 7) - 3, x, y).substr(0, 6), "%x + 4"); // (x + c1) - c2
    EXPECT_EQ(checkRule(x * 1, x, y), "%x");                       // x * 1 -> x
    EXPECT_EQ(checkRule(1 * x, x, y), "%x");                       // 1 * x -> x
    EXPECT_EQ(checkRule(x * 0, x, y).substr(0, 1), "0");           // x * 0 -> 0
    EXPECT_EQ(checkRule(0 * x, x, y).substr(0, 1), "0");           // 0 * x -> 0
    EXPECT_EQ(checkRule((x * 3) * 4, x, y).substr(0, 7), "%x * 12"); // (x * c1) * c2
    EXPECT_EQ(checkRule(x / 1, x, y), "%x");                       // x / 1 -> x
    EXPECT_EQ(checkRule((x * 6) / 6, x, y), "%x");                 // (x * c) / c -> x
    EXPECT_EQ(checkRule(x % 1, x, y).substr(0, 1), "0");           // x % 1 -> 0
    EXPECT_EQ(checkRule((x * 6) % 6, x, y).substr(0, 1), "0");     // (x * c) % c -> 0
    EXPECT_EQ(checkRule(min(x, x), x, y), "%x");                   // min(x, x) -> x
    EXPECT_EQ(checkRule(max(x, x), x, y), "%x");                   // max(x, x) -> x
    EXPECT_EQ(checkRule(select(x == x, x, y), x, y), "%x");        // x == x -> true, select
    EXPECT_EQ(checkRule(select(x < x, x, y), x, y), "%y");         // x < x -> false
    EXPECT_EQ(checkRule(select(x <= x && x >= x, x, y), x, y), "%x");
    EXPECT_EQ(checkRule(select(x != x || x > x, x, y), x, y), "%y");
    EXPECT_EQ(checkRule(select(!(x < y) && makeBool(true), x, y), x, y), checkRule(select(!(x < y), x, y), x, y));
    EXPECT_EQ(checkRule(select(x < y, x, x), x, y), "%x");         // select(c, a, a) -> a
    EXPECT_EQ(checkRule(select(!!(x < y), x, y), x, y), "select(%x < %y, %x, %y)"); // not(not)
  }
}

TEST(LoopSimplify, ConstantFoldingUsesFloorSemanticsAndWraps) {
  auto fold = [](Expr e) { return printExpr(simplify(e)); };
  EXPECT_EQ(fold(Expr(-7) / 2), "-4");
  EXPECT_EQ(fold(Expr(-7) % 2), "1");
  EXPECT_EQ(fold(Expr(7) % -2), "-1");
  EXPECT_EQ(fold(Expr(7) / -2), "-4");
  EXPECT_EQ(fold(makeConst(Type::i32(), int64_t(2147483647)) + 1), "-2147483648i32");
  EXPECT_EQ(fold(makeConst(Type::u8(), int64_t(250)) + 10), "4u8");
  EXPECT_EQ(fold(Expr(5) / 0), "5 / 0"); // never folded
  EXPECT_EQ(fold(cast(Type::i32(), Expr(3.75f))), "3i32");
  EXPECT_EQ(fold(Expr(1.5f) * 2.0f), "3.0f");
}

TEST(LoopSimplify, FloatRulesAreExactIncludingSpecialValues) {
  Var x("x", Type::f32());
  const double specials[] = {0.0, -0.0, 1.5, -3.25, INFINITY, -INFINITY, NAN, 1e-40};
  for (Expr e : {x * 1.0f, 1.0f * x, x / 1.0f, x - 0.0f}) {
    Expr s = simplify(e);
    EXPECT_TRUE(s.same_as(x)) << printExpr(e) << " -> " << printExpr(s);
    for (double v : specials) {
      Env env{{x.get(), Value::ofFloat(Type::f32(), v)}};
      double a = evaluate(e, env).f, b = evaluate(s, env).f;
      EXPECT_EQ(std::memcmp(&a, &b, sizeof a) == 0 || (std::isnan(a) && std::isnan(b)), true)
          << printExpr(e) << " at " << v;
    }
  }
  // Not exact in IEEE, so kept: x + 0.0 (x = -0.0), x * 0.0 (inf, NaN), x - x (inf).
  for (Expr e : {x + 0.0f, x * 0.0f, x - x})
    EXPECT_TRUE(simplify(e).same_as(e)) << printExpr(e);
}

TEST(LoopSimplify, VectorRules) {
  Var n("n");
  EXPECT_EQ(printExpr(simplify(ramp(n, 0, 4))), "x4(%n)");
  EXPECT_EQ(printExpr(simplify(broadcast(Expr(2), 8) * broadcast(Expr(3), 8))), "x8(6)");
  EXPECT_EQ(printExpr(simplify(ramp(n, 1, 4) + ramp(Expr(1), 2, 4))), "ramp(%n + 1, 3, 4)");
  EXPECT_EQ(printExpr(simplify(ramp(n, 1, 4) * broadcast(Expr(4), 4))), "ramp(%n * 4, 4, 4)");
  EXPECT_EQ(printExpr(simplify(ramp(n, 1, 4) + broadcast(Expr(4), 4))), "ramp(%n + 4, 1, 4)");
}

TEST(LoopSimplify, ReturnsTheSameNodeWhenNothingChanges) {
  Var x("x"), y("y");
  Expr e = x * y + select(x < y, x, y);
  EXPECT_TRUE(simplify(e).same_as(e));
  Buffer B = Buffer::make("B", DType::f32, {Expr(16)});
  Var i("i");
  Stmt s = ForNode::make(i, 0, 16, ForKind::Serial, StoreNode::make(B, Expr(1.0f), {i}));
  EXPECT_TRUE(simplify(s).same_as(s));
}

TEST(LoopSimplify, Statements) {
  Buffer B = Buffer::make("B", DType::f32, {Expr(16)});
  Var i("i"), x("x");
  Stmt one = ForNode::make(i, 3, 1, ForKind::Serial, StoreNode::make(B, Expr(1.0f), {i + 1}));
  EXPECT_EQ(printStmt(simplify(one)), "B[4] = 1.0f\n");
  Stmt zero = ForNode::make(i, 0, 0, ForKind::Serial, StoreNode::make(B, Expr(1.0f), {i}));
  EXPECT_TRUE(isNoOp(simplify(zero)));
  Stmt ifs = IfThenElseNode::make(Expr(1) < 2, StoreNode::make(B, Expr(1.0f), {Expr(0)}),
                                  StoreNode::make(B, Expr(2.0f), {Expr(0)}));
  EXPECT_EQ(printStmt(simplify(ifs)), "B[0] = 1.0f\n");
  Stmt let = LetStmtNode::make(x, Expr(2), StoreNode::make(B, Expr(1.0f), {x * 3}));
  EXPECT_EQ(printStmt(simplify(let)), "B[6] = 1.0f\n");
}

/// Random integer expressions over x and y: simplification never changes the value.
Expr randomExpr(std::mt19937 &rng, const Var &x, const Var &y, int depth) {
  std::uniform_int_distribution<int> pick(0, depth <= 0 ? 2 : 11);
  std::uniform_int_distribution<int64_t> c(-9, 9);
  switch (pick(rng)) {
  case 0: return x;
  case 1: return y;
  case 2: return makeConst(x.type(), c(rng));
  case 3: return randomExpr(rng, x, y, depth - 1) + randomExpr(rng, x, y, depth - 1);
  case 4: return randomExpr(rng, x, y, depth - 1) - randomExpr(rng, x, y, depth - 1);
  case 5: return randomExpr(rng, x, y, depth - 1) * randomExpr(rng, x, y, depth - 1);
  case 6: return randomExpr(rng, x, y, depth - 1) / makeConst(x.type(), c(rng));
  case 7: return randomExpr(rng, x, y, depth - 1) % makeConst(x.type(), c(rng));
  case 8: return min(randomExpr(rng, x, y, depth - 1), randomExpr(rng, x, y, depth - 1));
  case 9: return max(randomExpr(rng, x, y, depth - 1), randomExpr(rng, x, y, depth - 1));
  case 10:
    return select(randomExpr(rng, x, y, depth - 1) < randomExpr(rng, x, y, depth - 1),
                  randomExpr(rng, x, y, depth - 1), randomExpr(rng, x, y, depth - 1));
  default: return (randomExpr(rng, x, y, depth - 1) + c(rng)) + c(rng);
  }
}

TEST(LoopSimplify, RandomExpressionsKeepTheirValue) {
  std::mt19937 rng(7);
  for (Type t : {Type::i64(), Type::i32()}) {
    Var x("x", t), y("y", t);
    for (int k = 0; k < 300; ++k)
      checkRule(randomExpr(rng, x, y, 4), x, y, 20);
  }
}

} // namespace

namespace {

// The rules that make split-by-factor tail bounds readable (loop partition's output).
TEST(LoopSimplify, OffsetAndBoundRulesHoldOnRandomValues) {
  for (Type t : {Type::i64(), Type::i32()}) {
    Var x("x", t), y("y", t);
    // The simplified text without the i32 suffix of constants, so both types read alike.
    auto rule = [&](const Expr &e) {
      std::string out = checkRule(e, x, y);
      for (size_t at; (at = out.find("i32")) != std::string::npos;)
        out.erase(at, 3);
      return out;
    };
    EXPECT_EQ(rule(x - 1 + -7), "%x - 8");         // (x - c1) + c2
    EXPECT_EQ(rule(x - 3 + 3), "%x");              // offset 0 -> x
    EXPECT_EQ(rule(x + -5), "%x - 5");             // x + (-c) -> x - c
    EXPECT_EQ(rule(x - -5), "%x + 5");             // x - (-c) -> x + c
    EXPECT_EQ(rule(x + 2 - 9), "%x - 7");          // (x + c1) - c2
    EXPECT_EQ(rule(x - 2 - 9), "%x - 11");         // (x - c1) - c2
    EXPECT_EQ(rule((x + 16) / 8), "%x / 8 + 2");   // (x + k*c) / c, floor
    EXPECT_EQ(rule((x - 8) / 8 + 1), "%x / 8");    // ... then the offsets cancel
    EXPECT_EQ(rule((x - 24) % 8), "%x % 8");       // (x + k*c) % c
    EXPECT_EQ(rule((x + 7) / 8), "(%x + 7) / 8");  // not a multiple: kept
    EXPECT_EQ(rule((x + 8) / -8), "(%x + 8) / (-8)"); // negative divisor: kept
    EXPECT_EQ(rule(min(x + 3, x - 2)), "%x - 2");  // known order
    EXPECT_EQ(rule(max(x + 3, x - 2)), "%x + 3");
    EXPECT_EQ(rule(min(x, x + 1)), "%x");
    EXPECT_EQ(rule(max(x, x + 1)), "%x + 1");
    EXPECT_EQ(rule(min(x / 8, (x + 7) / 8)), "%x / 8"); // floor div is monotone
    EXPECT_EQ(rule(max(x / 8, (x + 7) / 8)), "(%x + 7) / 8");
    EXPECT_EQ(rule(min((x - 1) / 4, (x + 2) / 4)), "(%x - 1) / 4");
    EXPECT_EQ(rule(min(x + 1, y + 1)), "min(%x + 1, %y + 1)"); // unknown: kept
    EXPECT_EQ(rule(min(x / 8, (x + 7) / -8)), "min(%x / 8, (%x + 7) / (-8))");
    // The loop partition bound for a split of n by 8, before and after.
    EXPECT_EQ(rule(max(min((x - 1 + -7) / 8 + 1, (x + 7) / 8), 0)),
              "max(%x / 8, 0)");
  }
}

TEST(LoopSimplify, OffsetRulesWrapLikeTheEvaluator) {
  // Near the i32 limits the folded offsets must wrap exactly as the unfolded expression.
  Var x("x", Type::i32()), y("y", Type::i32());
  Expr lo = makeConst(Type::i32(), int64_t(-2147483648LL));
  for (Expr e : {x + lo, x - lo, (x + 2147483647) + 5, (x - 2147483647) - 5}) {
    Expr s = simplify(e);
    for (int64_t v : {-2147483648LL, -5LL, 0LL, 7LL, 2147483647LL}) {
      Env env{{x.get(), Value::ofInt(Type::i32(), v)}};
      EXPECT_EQ(evaluate(e, env).i, evaluate(s, env).i) << printExpr(e) << " -> " << printExpr(s);
    }
    EXPECT_TRUE(simplify(s).same_as(s) || printExpr(simplify(s)) == printExpr(s)) << printExpr(s);
  }
}

TEST(LoopSimplify, FoldsIntrinsicsOfConstants) {
  auto fold = [](Expr e) { return printExpr(simplify(e)); };
  auto f32 = [](double v) { return makeConst(Type::f32(), v); };
  EXPECT_EQ(fold(call("sqrt", {f32(16.0)})), "4.0f");
  EXPECT_EQ(fold(call("floor", {f32(-2.5)})), "-3.0f");
  EXPECT_EQ(fold(call("abs", {Expr(-7)})), "7");
  EXPECT_EQ(fold(call("fma", {f32(2.0), f32(3.0), f32(1.0)})), "7.0f");
  EXPECT_EQ(fold(call("pow", {f32(2.0), f32(2.0) + f32(1.0)})), "8.0f"); // after folding args
  // The folded value is evaluateCall's, bit for bit (rounded to f32).
  Expr e = simplify(call("exp", {f32(1.0)}));
  ASSERT_NE(asConstFloat(e), nullptr);
  EXPECT_EQ(*asConstFloat(e), evaluateCall("exp", {Value::ofFloat(Type::f32(), 1.0)}).f);
  // Kept: a non-constant argument, and a result no constant can spell (inf, NaN).
  Var x("x", Type::f32());
  EXPECT_EQ(fold(call("sqrt", {Expr(x)})), "sqrt(%x)");
  EXPECT_EQ(fold(call("log", {f32(0.0)})), "log(0.0f)");
  EXPECT_EQ(fold(call("sqrt", {f32(-1.0)})), "sqrt(-1.0f)");
}

} // namespace
