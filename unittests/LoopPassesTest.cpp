//===- LoopPassesTest.cpp - loop lowering passes against the interpreter --===//
//
// Each test builds a function in loop IR, runs a pass, and checks with the reference
// interpreter (tessel/Loop/Interpret.h) that both versions compute the same buffers from the
// same random (never zero) inputs.
//
//===----------------------------------------------------------------------===//

#include "tessel/Loop/Evaluate.h"
#include "tessel/Loop/Interpret.h"
#include "tessel/Loop/Pass.h"
#include "tessel/Loop/Passes.h"
#include "tessel/Loop/Visitor.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <random>

using namespace tessel;
using namespace tessel::loop;

namespace {

std::vector<double> randomData(size_t n, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(0.5f, 2.0f);
  std::vector<double> v(n);
  for (double &x : v)
    x = dist(rng) * (rng() % 2 ? 1 : -1);
  return v;
}

/// Runs `before` and `after` on the same inputs and expects equal outputs.
void expectSame(const LoweredFunc &before, const LoweredFunc &after, const InterpBuffers &inputs,
                const InterpScalars &scalars, double tol = 0) {
  InterpBuffers a = inputs, b = inputs;
  interpret(before, a, scalars);
  interpret(after, b, scalars);
  for (const auto &[name, data] : a) {
    const auto &other = b.at(name);
    ASSERT_EQ(data.size(), other.size()) << name;
    for (size_t k = 0; k < data.size(); ++k) {
      if (std::isnan(data[k]) && std::isnan(other[k]))
        continue;
      EXPECT_NEAR(data[k], other[k], tol) << name << "[" << k << "]";
    }
  }
}

int countKind(const Stmt &s, ForKind kind) {
  int n = 0;
  struct V : IRVisitor {
    ForKind kind;
    int *n;
    using IRVisitor::visit;
    void visit(const ForNode *op) override {
      *n += op->forKind == kind;
      IRVisitor::visit(op);
    }
  } v;
  v.kind = kind;
  v.n = &n;
  v.visit(s);
  return n;
}

bool hasVectorStore(const Stmt &s) {
  bool found = false;
  struct V : IRVisitor {
    bool *found;
    using IRVisitor::visit;
    void visit(const StoreNode *op) override {
      *found |= op->value.type().lanes > 1;
      IRVisitor::visit(op);
    }
  } v;
  v.found = &found;
  v.visit(s);
  return found;
}

/// B[i] = A[i] * 2 + 1 over n elements, split by 8 with a tail guard, inner loop vectorized:
///   for io in 0..(n+7)/8 { vectorized for ii in 0..8 { if (io*8+ii < n) B[io*8+ii] = ... } }
LoweredFunc splitElementwise() {
  Var n("n"), io("io"), ii("ii");
  Buffer A = Buffer::make("A", DType::f32, {n});
  Buffer B = Buffer::make("B", DType::f32, {n});
  Expr i = io * 8 + ii;
  Stmt store = StoreNode::make(B, A(i) * 2.0f + 1.0f, {i});
  Stmt guarded = IfThenElseNode::make(i < n, store);
  Stmt inner = ForNode::make(ii, 0, 8, ForKind::Vectorized, guarded);
  Stmt outer = ForNode::make(io, 0, (n + 7) / 8, ForKind::Serial, inner);
  return {"f32_scale_add_split8", {Param::ofBuffer(A), Param::ofBuffer(B), Param::ofVar(n)}, outer};
}

TEST(LoopPassesTest, PartitionThenVectorizeMatchesWithTails) {
  LoweredFunc f = splitElementwise();
  LoweredFunc p = f;
  p.body = loopPartition(f.body);
  LoweredFunc v = p;
  v.body = vectorizeLoops(p.body);
  EXPECT_EQ(countKind(v.body, ForKind::Vectorized), 0);
  EXPECT_TRUE(hasVectorStore(v.body));
  for (int n : {1, 5, 8, 16, 37, 64, 70}) {
    InterpBuffers in{{"A", randomData(size_t(n), unsigned(n))}, {"B", randomData(size_t(n), 7)}};
    expectSame(f, p, in, {{"n", double(n)}});
    expectSame(f, v, in, {{"n", double(n)}});
  }
}

TEST(LoopPassesTest, LowerPipelineVerifiesAndMatches) {
  LoweredFunc f = splitElementwise();
  PipelineOptions options; // verifies the IR after every pass
  std::vector<std::string> ran;
  options.afterPass = [&](const std::string &name, const LoweredFunc &) { ran.push_back(name); };
  LoweredFunc g = lowerPipeline(f, options);
  EXPECT_NE(std::find(ran.begin(), ran.end(), "vectorize"), ran.end());
  EXPECT_EQ(countKind(g.body, ForKind::Vectorized), 0);
  EXPECT_TRUE(hasVectorStore(g.body));
  for (int n : {3, 8, 29}) {
    InterpBuffers in{{"A", randomData(size_t(n), 11)}, {"B", randomData(size_t(n), 12)}};
    expectSame(f, g, in, {{"n", double(n)}});
  }
  for (const char *name : {"loop-partition", "vectorize", "unroll", "storage-flatten",
                           "remove-noop"})
    EXPECT_EQ(lookupLoopPass(name).name, name);
}

TEST(LoopPassesTest, VectorizeWithoutPartitionIsAnError) {
  LoweredFunc f = splitElementwise();
  try {
    vectorizeLoops(f.body);
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("'ii'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("partition"), std::string::npos) << e.what();
  }
}

TEST(LoopPassesTest, VectorizeNonConstantExtentNamesTheLoop) {
  Var n("n"), i("i");
  Buffer A = Buffer::make("A", DType::f32, {n});
  Stmt s = ForNode::make(i, 0, n, ForKind::Vectorized, StoreNode::make(A, A(i) + 1.0f, {i}));
  try {
    vectorizeLoops(s);
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("loop 'i' has a non-constant extent"), std::string::npos)
        << e.what();
  }
}

TEST(LoopPassesTest, VectorizeSelectCallAndReduction) {
  // out[0] = out[0] + select(A[i] > 0, exp(A[i]), A[i] * A[i]) for i in 0..16, vectorized.
  Var i("i");
  Buffer A = Buffer::make("A", DType::f32, {16});
  Buffer O = Buffer::make("O", DType::f32, {1});
  Buffer M = Buffer::make("M", DType::f32, {16});
  Expr e = select(A(i) > 0.0f, exp(A(i)), A(i) * A(i));
  Stmt body = SeqNode::make(
      {StoreNode::make(M, max(e, 1.0f), {i}), StoreNode::make(O, O(Expr(0)) + e, {Expr(0)})});
  Stmt s = ForNode::make(i, 0, 16, ForKind::Vectorized, body);
  LoweredFunc f{
      "f32_select_sum16", {Param::ofBuffer(A), Param::ofBuffer(O), Param::ofBuffer(M)}, s};
  LoweredFunc v = f;
  v.body = vectorizeLoops(s);
  EXPECT_EQ(countKind(v.body, ForKind::Vectorized), 0);
  InterpBuffers in{{"A", randomData(16, 3)}, {"O", {0.25}}, {"M", randomData(16, 4)}};
  expectSame(f, v, in, {}, 1e-4); // the sum is reassociated across lanes
}

TEST(LoopPassesTest, VectorizeRejectsNonReductionScalarStore) {
  Var i("i");
  Buffer A = Buffer::make("A", DType::f32, {8});
  Buffer O = Buffer::make("O", DType::f32, {1});
  Stmt s = ForNode::make(i, 0, 8, ForKind::Vectorized, StoreNode::make(O, A(i), {Expr(0)}));
  EXPECT_THROW(vectorizeLoops(s), Error);
}

TEST(LoopPassesTest, UnrollMatches) {
  Var i("i"), k("k");
  Buffer A = Buffer::make("A", DType::f32, {12});
  Buffer B = Buffer::make("B", DType::f32, {12});
  Expr ix = i * 4 + k;
  Stmt s = ForNode::make(
      i, 0, 3, ForKind::Serial,
      ForNode::make(k, 0, 4, ForKind::Unrolled, StoreNode::make(B, A(ix) - 3.0f, {ix})));
  LoweredFunc f{"f32_sub_unroll4", {Param::ofBuffer(A), Param::ofBuffer(B)}, s};
  LoweredFunc u = f;
  u.body = unrollLoops(s);
  EXPECT_EQ(countKind(u.body, ForKind::Unrolled), 0);
  expectSame(f, u, {{"A", randomData(12, 1)}, {"B", randomData(12, 2)}}, {});
}

TEST(LoopPassesTest, UnrollNonConstantExtentIsAnError) {
  Var n("n"), k("k");
  Buffer A = Buffer::make("A", DType::f32, {n});
  Stmt s = ForNode::make(k, 0, n, ForKind::Unrolled, StoreNode::make(A, 1.0f, {k}));
  try {
    unrollLoops(s);
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("'k'"), std::string::npos) << e.what();
  }
}

TEST(LoopPassesTest, StorageFlattenWithPaddedStrides) {
  // B[i, j] = A[i, j] + T[j] where A is 3x5 stored with a row stride of 8 (storage_align).
  Var i("i"), j("j");
  Buffer A = Buffer::make("A", DType::f32, {3, 5}, "global", {8, 1});
  Buffer B = Buffer::make("B", DType::f32, {3, 5});
  Buffer T = Buffer::make("T", DType::f32, {5}, "local");
  Stmt fill =
      ForNode::make(j, 0, 5, ForKind::Serial, StoreNode::make(T, cast(Type::f32(), j), {j}));
  Stmt compute = ForNode::make(
      i, 0, 3, ForKind::Serial,
      ForNode::make(j, 0, 5, ForKind::Serial, StoreNode::make(B, A(i, j) + T(j), {i, j})));
  Stmt s = AllocateNode::make(T, SeqNode::make({fill, compute}));
  LoweredFunc f{"f32_add_padded_3x5", {Param::ofBuffer(A), Param::ofBuffer(B)}, s};
  LoweredFunc flat = storageFlatten(f);
  EXPECT_EQ(flat.params[0].buffer.rank(), 1u);
  EXPECT_EQ(flat.params[1].buffer.rank(), 1u);
  // A needs 1 + 2*8 + 4*1 = 21 elements; B 15.
  EXPECT_TRUE(isConstInt(flat.params[1].buffer->shape[0], 15) ||
              !asConstInt(flat.params[1].buffer->shape[0]));
  expectSame(f, flat, {{"A", randomData(24, 5)}, {"B", randomData(15, 6)}}, {});
}

TEST(LoopPassesTest, FullPipelineOrderMatches) {
  // partition -> vectorize -> unroll -> flatten -> remove no-ops, on a 2-D padded buffer.
  Var n("n"), r("r"), io("io"), ii("ii");
  Buffer A = Buffer::make("A", DType::f32, {4, n}, "global", {n + 3, 1});
  Buffer B = Buffer::make("B", DType::f32, {4, n});
  Expr c = io * 4 + ii;
  Stmt st = IfThenElseNode::make(c < n, StoreNode::make(B, A(r, c) * A(r, c), {r, c}));
  Stmt s = ForNode::make(r, 0, 4, ForKind::Unrolled,
                         ForNode::make(io, 0, (n + 3) / 4, ForKind::Serial,
                                       ForNode::make(ii, 0, 4, ForKind::Vectorized, st)));
  LoweredFunc f{"f32_square_2d", {Param::ofBuffer(A), Param::ofBuffer(B), Param::ofVar(n)}, s};
  LoweredFunc g = f;
  g.body = removeNoOp(unrollLoops(vectorizeLoops(loopPartition(f.body))));
  g = storageFlatten(g);
  for (int nn : {3, 4, 9}) {
    InterpBuffers in{{"A", randomData(size_t(4 * (nn + 3)), 9)},
                     {"B", randomData(size_t(4 * nn), 10)}};
    expectSame(f, g, in, {{"n", double(nn)}});
  }
}

TEST(LoopPassesTest, RemoveNoOp) {
  Var i("i");
  Buffer A = Buffer::make("A", DType::f32, {4});
  Stmt keep = StoreNode::make(A, 1.0f, {Expr(1)});
  Stmt s = SeqNode::make({ForNode::make(i, 0, 0, ForKind::Serial, StoreNode::make(A, 2.0f, {i})),
                          keep, IfThenElseNode::make(Expr(i) < 3, makeNoOp())});
  Stmt r = removeNoOp(s);
  EXPECT_TRUE(r.same_as(keep));
}

TEST(LoopPassesTest, InterpreterChecksBounds) {
  Var i("i");
  Buffer A = Buffer::make("A", DType::f32, {4});
  LoweredFunc f{"oob",
                {Param::ofBuffer(A)},
                ForNode::make(i, 0, 5, ForKind::Serial, StoreNode::make(A, 1.0f, {i}))};
  InterpBuffers in{{"A", std::vector<double>(4)}};
  try {
    interpret(f, in);
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("'A'"), std::string::npos) << e.what();
  }
}

} // namespace

namespace {

// The interpreter computes every lane through Evaluate.h: a scalar store and each lane of a
// vector store give what evaluate() gives for that lane's scalar expression (i32 wrap-around,
// floor div/mod, casts, intrinsics).
TEST(LoopPassesTest, InterpreterAgreesWithTheEvaluatorLaneByLane) {
  Var x("x", Type::i32()), y("y", Type::i32());
  Buffer B = Buffer::make("B", DType::f64, {4});
  auto scalarExpr = [&](const Expr &xv, const Expr &yv) {
    int lanes = xv.type().lanes;
    auto k = [&](int64_t v) { // an i32 constant with the operands' lanes
      Expr c = makeConst(Type::i32(), v);
      return lanes == 1 ? c : broadcast(c, lanes);
    };
    Expr q = (xv * k(7) + k(2147483000)) / (yv % k(5) + k(6)) - min(xv, yv) % k(3);
    return cast(Type::f64(lanes), q) +
           cast(Type::f64(lanes), call("sqrt", {cast(Type::f32(lanes), xv * xv)}));
  };
  // Scalar: B[0] = e(x, y).
  LoweredFunc f{"scalar", {Param::ofBuffer(B), Param::ofVar(x), Param::ofVar(y)},
                StoreNode::make(B, scalarExpr(x, y), {Expr(0)})};
  // Vector: B[ramp(0, 1, 4)] = e(ramp(x, 1, 4), x4(y)).
  Expr xs = ramp(Expr(x), makeConst(Type::i32(), int64_t(1)), 4), ys = broadcast(Expr(y), 4);
  LoweredFunc g{"vector", {Param::ofBuffer(B), Param::ofVar(x), Param::ofVar(y)},
                StoreNode::make(B, scalarExpr(xs, ys), {ramp(Expr(0), Expr(1), 4)})};
  std::mt19937 rng(3);
  std::uniform_int_distribution<int> d(-100000, 100000);
  for (int t = 0; t < 50; ++t) {
    int64_t xv = d(rng), yv = d(rng);
    InterpBuffers b1{{"B", std::vector<double>(4)}}, b2 = b1;
    interpret(f, b1, {{"x", double(xv)}, {"y", double(yv)}});
    interpret(g, b2, {{"x", double(xv)}, {"y", double(yv)}});
    for (int l = 0; l < 4; ++l) {
      Env env{{x.get(), Value::ofInt(Type::i32(), xv + l)}, {y.get(), Value::ofInt(Type::i32(), yv)}};
      double want = evaluate(scalarExpr(x, y), env).f;
      // sqrt of a wrapped-around (negative) x * x is NaN in both.
      auto same = [&](double got) { return got == want || (std::isnan(got) && std::isnan(want)); };
      if (l == 0)
        EXPECT_TRUE(same(b1.at("B")[0])) << b1.at("B")[0] << " vs " << want << " x=" << xv;
      EXPECT_TRUE(same(b2.at("B")[size_t(l)]))
          << "lane " << l << ": " << b2.at("B")[size_t(l)] << " vs " << want << " x=" << xv;
    }
  }
}

} // namespace
