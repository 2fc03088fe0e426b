//===- LoopIRTest.cpp - loop IR nodes, operators, visitors, text ----------===//

#include "tessel/Loop/Evaluate.h"
#include "tessel/Loop/Pass.h"
#include "tessel/Loop/Text.h"
#include "tessel/Loop/Visitor.h"
#include "TestUtils.h"

#include <gtest/gtest.h>

#include <cmath>

using namespace tessel;
using namespace tessel::loop;

namespace {

using test::errorOf;

TEST(LoopIR, TypesPrintAndParse) {
  EXPECT_EQ(Type::f32().toString(), "f32");
  EXPECT_EQ(Type::f32(16).toString(), "f32x16");
  EXPECT_EQ(Type::i64().toString(), "i64");
  EXPECT_EQ(Type::boolean(8).toString(), "boolx8");
  for (auto s : {"f32", "f32x16", "i64", "u8x4", "boolx8", "handle", "bf16x2"})
    EXPECT_EQ(Type::parse(s)->toString(), s);
  EXPECT_FALSE(Type::parse("f33"));
  EXPECT_FALSE(Type::parse("f32x0"));
  EXPECT_TRUE(Type::f32().isFloat());
  EXPECT_TRUE(Type::u8().isUInt());
  EXPECT_TRUE(Type::i32().isInt());
  EXPECT_TRUE(Type::boolean().isBool());
}

TEST(LoopIR, OperatorsPromoteLiteralsToTheOtherSide) {
  Buffer A = Buffer::make("A", DType::f16, {Var("n")});
  Var i("i"), k("k", Type::i32());
  Expr e = A(i) + 1.0f;
  EXPECT_EQ(e.type(), Type::f16());
  EXPECT_EQ((k * 2).type(), Type::i32());
  EXPECT_EQ((2 * k).type(), Type::i32());
  EXPECT_EQ((i < 10).type(), Type::boolean());
  EXPECT_EQ(Expr(3).type(), Type::i64());
  EXPECT_EQ(Expr(3.0f).type(), Type::f32());
  EXPECT_EQ(Expr(3.0).type(), Type::f64());
  EXPECT_EQ((ramp(i, 1, 8) + 1).type(), Type::i64(8));
  EXPECT_EQ(printExpr(A(i) * 2 + 1.0f), "A[%i] * 2.0f16 + 1.0f16");
  EXPECT_NE(errorOf([&] { (void)(k + 1.5); }).find("cannot be an i32"), std::string::npos);
  // == builds an expression; identity is same_as, structure is exprEqual.
  EXPECT_EQ((i == i).kind(), ExprKind::EQ);
  EXPECT_TRUE(i.same_as(i));
  EXPECT_FALSE((i + 1).same_as(i + 1));
  EXPECT_TRUE(exprEqual(i + 1, i + 1));
  EXPECT_FALSE(exprEqual(i + 1, Var("i") + 1)); // different variables with one name
  EXPECT_EQ(exprHash(i * 3 + 1), exprHash(i * 3 + 1));
}

TEST(LoopIR, ConstructorsCheckTypes) {
  Var i("i"), f("f", Type::f32());
  Buffer A = Buffer::make("A", DType::f32, {Expr(4), Expr(4)});
  EXPECT_NE(errorOf([&] { (void)(i + f); }).find("add: operand types differ: i64 vs f32"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { (void)(ramp(i, 1, 4) + i); }).find("i64x4 vs i64"), std::string::npos);
  EXPECT_NE(errorOf([&] { (void)A.load({i}); }).find("1 indices for a buffer of rank 2"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { (void)A.load({ramp(i, 1, 4), i}); }).find("expected equal lanes"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { (void)A.load({i, i}, makeBool(true, 4)); }).find("predicate"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { (void)ForNode::make(Var("j"), Expr(0.0f), 4, ForKind::Serial, makeNoOp()); })
                .find("min is f32"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { (void)call("exp", {i}); }).find("expected a float type"), std::string::npos);
  EXPECT_NE(errorOf([&] { (void)call("expp", {f}); }).find("unknown intrinsic 'expp'"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { (void)StoreNode::make(A, i, {i, i}); }).find("expected f32"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { (void)select(i, f, f); }).find("condition"), std::string::npos);
  Buffer C = Buffer::make("C", DType::f32, {Expr(64)});
  EXPECT_EQ(vectorReduce(ReduceOp::Add, C.load({ramp(i, 1, 8)})).type(), Type::f32());
  EXPECT_EQ(shuffle({ramp(i, 1, 4), ramp(i, 2, 4)}, {0, 4, 1, 5, 2}).type(), Type::i64(5));
}

TEST(LoopIR, MutatorKeepsUnchangedNodesAndSubstitutes) {
  Var i("i"), j("j"), n("n");
  Buffer B = Buffer::make("B", DType::f32, {n});
  Stmt s = ForNode::make(i, 0, n, ForKind::Serial, StoreNode::make(B, B(i) * 2.0f, {i}));
  EXPECT_TRUE(substitute(s, j, Expr(3)).same_as(s)); // j is not used
  Stmt t = substitute(s, n, Expr(8));
  EXPECT_FALSE(t.same_as(s));
  EXPECT_EQ(printStmt(t), "for %i in 0..8 {\n  B[%i] = B[%i] * 2.0f\n}\n");
  EXPECT_TRUE(usesVar(s, i));
  EXPECT_FALSE(usesVar(s, j));
  int count = 0;
  postOrderVisit(s, [&](const Expr &e) { count += e.as<VarNode>() != nullptr; });
  EXPECT_EQ(count, 5); // %n: the extent and B's shape at both accesses; %i: both indices
}

TEST(LoopIR, EvaluateIntegersFloatsAndLets) {
  Var x("x"), y("y", Type::f32());
  Env env{{x.get(), Value::ofInt(Type::i64(), -7)}, {y.get(), Value::ofFloat(Type::f32(), 0.5)}};
  EXPECT_EQ(evaluate(x / 2, env).i, -4);
  EXPECT_EQ(evaluate(x % 2, env).i, 1);
  EXPECT_EQ(evaluate(select(x < 0, x * x, x), env).i, 49);
  EXPECT_FLOAT_EQ(float(evaluate(exp(y) * 2.0f, env).f), 2.0f * std::exp(0.5f));
  Var z("z");
  EXPECT_EQ(evaluate(let(z, x + 1, z * z), env).i, 36);
  EXPECT_EQ(evaluate(cast(Type::u8(), x), env).i, 249);
  EXPECT_NE(errorOf([&] { (void)evaluate(x / 0, env); }).find("by zero"), std::string::npos);
}

TEST(LoopIR, TextRoundTripsAndReportsErrors) {
  const char *text = R"(func @add_one(%A: f32[%n], %B: f32[%n], %n: i64) {
  for %i in 0..%n {
    B[%i] = A[%i] + 1.0f
  }
}
)";
  LoweredFunc f = parseFunc(text);
  EXPECT_EQ(printFunc(f), text);
  EXPECT_NO_THROW(verifyLoweredFunc(f));
  ASSERT_EQ(f.params.size(), 3u);
  EXPECT_TRUE(f.params[0].isBuffer());
  EXPECT_FALSE(f.params[2].isBuffer());
  // The buffer's shape names the scalar parameter declared after it.
  EXPECT_TRUE(f.params[0].buffer->shape[0].same_as(f.params[2].var));
  EXPECT_EQ(errorOf([] { parseFunc("func @f(%A: f32[4]) {\n  A[0] = \n}\n", "t.tir"); }),
            "t.tir:3:1: expected an expression, got '}'");
  EXPECT_EQ(errorOf([] { parseFunc("func @f(%A: f32[4]) {\n  A[%q] = 1.0f\n}\n", "t.tir"); }),
            "t.tir:2:5: undefined variable %q (expected a parameter or a variable bound by an "
            "enclosing for/let)");
  EXPECT_NE(errorOf([] { parseFunc("func @f(%A: f32[4]) {\n  A[0] = 1\n}\n", "t.tir"); })
                .find("expected f32"),
            std::string::npos);
}

TEST(LoopIR, VerifierFindsUndefinedVariablesAndBuffers) {
  Var i("i"), n("n");
  Buffer A = Buffer::make("A", DType::f32, {n});
  LoweredFunc f{"f", {Param::ofBuffer(A)}, StoreNode::make(A, Expr(1.0f), {Expr(0)})};
  EXPECT_NE(errorOf([&] { verifyLoweredFunc(f); }).find("variable %n is used but not defined"),
            std::string::npos);
  f.params.push_back(Param::ofVar(n));
  EXPECT_NO_THROW(verifyLoweredFunc(f));
  Buffer T = Buffer::make("T", DType::f32, {Expr(4)}, "local");
  f.body = StoreNode::make(T, Expr(1.0f), {Expr(0)});
  EXPECT_NE(errorOf([&] { verifyLoweredFunc(f); }).find("buffer 'T' which is neither"),
            std::string::npos);
  f.body = AllocateNode::make(T, f.body);
  EXPECT_NO_THROW(verifyLoweredFunc(f));
  EXPECT_NE(errorOf([] { lookupLoopPass("nope"); }).find("expected one of: simplify"),
            std::string::npos);
}

} // namespace
