//===- TETest.cpp - tensor expressions, schedules, lowering, build --------===//
//
// Lowered loop IR text for the seed example and each schedule primitive, the error of each
// illegal schedule, bound inference with compute_at, and numerical checks of lowered and
// built (JIT) kernels against plain C++ loops on fresh random inputs (the loop IR interpreter
// runs the lowered function before and after the loop pipeline; the JIT runs the machine code).
//
//===----------------------------------------------------------------------===//
#include "tessel/Loop/Interpret.h"
#include "tessel/Loop/Pass.h"
#include "tessel/Loop/Text.h"
#include "tessel/TE/Build.h"
#include "TestUtils.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <random>

using namespace tessel;
using namespace tessel::te;

namespace {

using test::errorOf;
using test::randomFloats;

std::string text(const loop::LoweredFunc &f) { return loop::printFunc(f); }



std::vector<double> toDouble(const std::vector<float> &v) { return {v.begin(), v.end()}; }

void expectNear(const std::vector<float> &got, const std::vector<float> &want, float tol,
                const std::string &what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * (1 + std::fabs(want[i]))) << what << " at " << i;
}

void expectNear(const std::vector<double> &got, const std::vector<float> &want, float tol,
                const std::string &what) {
  std::vector<float> g(got.begin(), got.end());
  expectNear(g, want, tol, what);
}

struct Seed {
  Var n = te::var("n");
  Tensor A, B, C;
  Seed() {
    A = te::placeholder({n}, DType::f32, "A");
    B = te::compute(A.shape(), [&](Var i) { return A(i) + 1.0f; }, "B");
    C = te::compute(B.shape(), [&](Var i) { return B(i) * 2.0f; }, "C");
  }
};

/// Runs `f` (lowered, and after the loop pipeline) in the interpreter and checks C against want.
void interpretBoth(const loop::LoweredFunc &f, loop::InterpBuffers buffers,
                   const loop::InterpScalars &scalars, const std::string &out,
                   const std::vector<float> &want, float tol = 1e-5f) {
  loop::InterpBuffers b1 = buffers;
  loop::interpret(f, b1, scalars);
  expectNear(b1[out], want, tol, f.name + " (lowered)");
  loop::InterpBuffers b2 = buffers;
  loop::interpret(loop::lowerPipeline(f), b2, scalars);
  expectNear(b2[out], want, tol, f.name + " (after the loop pipeline)");
}

} // namespace

//===----------------------------------------------------------------------===//
// The seed example
//===----------------------------------------------------------------------===//

TEST(TE, SeedExampleLowersToOneLoopWithoutAllocation) {
  Seed e;
  auto s = te::create_schedule(e.C);
  s[e.B].compute_inline();
  auto f = te::lower(s, {e.A, e.C}, "seed");
  EXPECT_EQ(text(f), "func @seed(%A: f32[%n], %C: f32[%n], %n: i64) {\n"
                     "  for %i in 0..%n {\n"
                     "    C[%i] = (A[%i] + 1.0f) * 2.0f\n"
                     "  }\n"
                     "}\n");
}

TEST(TE, SeedExampleWithoutInlineAllocatesB) {
  Seed e;
  auto s = te::create_schedule(e.C);
  auto t = text(te::lower(s, {e.A, e.C}, "seed"));
  EXPECT_NE(t.find("allocate B: f32[%n] local"), std::string::npos) << t;
  EXPECT_NE(t.find("B[%i] = A[%i] + 1.0f"), std::string::npos) << t;
}

TEST(TE, SeedExampleInterpreted) {
  for (int64_t n : {1, 7, 16, 1000}) {
    Seed e;
    auto s = te::create_schedule(e.C);
    s[e.B].compute_inline();
    auto a = randomFloats(size_t(n), unsigned(n));
    std::vector<float> want(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      want[size_t(i)] = (a[size_t(i)] + 1.0f) * 2.0f;
    interpretBoth(te::lower(s, {e.A, e.C}, "seed"),
                  {{"A", toDouble(a)}, {"C", std::vector<double>(size_t(n))}},
                  {{"n", double(n)}}, "C", want);
  }
}

TEST(TE, SeedExampleBuiltAndRun) {
  Seed e;
  auto s = te::create_schedule(e.C);
  s[e.B].compute_inline();
  auto f = tessel::build(s, {e.A, e.C}, "llvm");
  for (int64_t n : {1, 7, 16, 1000}) {
    auto a = randomFloats(size_t(n), unsigned(n) + 1);
    std::vector<float> c(static_cast<size_t>(n), -1.0f), want(static_cast<size_t>(n));
    for (int64_t i = 0; i < n; ++i)
      want[size_t(i)] = (a[size_t(i)] + 1.0f) * 2.0f;
    f({a.data(), c.data(), n});
    expectNear(c, want, 0, "seed n=" + std::to_string(n));
  }
  EXPECT_NE(errorOf([&] { float x = 0; f({&x, &x}); }).find("called with 2 argument(s); expected 3"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// Schedule primitives: lowered text
//===----------------------------------------------------------------------===//

TEST(TE, SplitWithTailGuard) {
  Seed e;
  auto s = te::create_schedule(e.C);
  s[e.B].compute_inline();
  auto [xo, xi] = s[e.C].split(e.C.axis(0), 8);
  EXPECT_EQ(text(te::lower(s, {e.A, e.C}, "split")),
            "func @split(%A: f32[%n], %C: f32[%n], %n: i64) {\n"
            "  for %i.outer in 0..(%n + 7) / 8 {\n"
            "    for %i.inner in 0..8 {\n"
            "      if %i.outer * 8 + %i.inner < %n {\n"
            "        C[%i.outer * 8 + %i.inner] = (A[%i.outer * 8 + %i.inner] + 1.0f) * 2.0f\n"
            "      }\n"
            "    }\n"
            "  }\n"
            "}\n");
}

TEST(TE, SplitThatDividesHasNoGuard) {
  auto A = te::placeholder({64}, DType::f32, "A");
  auto B = te::compute({64}, [&](Var i) { return A(i) * A(i); }, "B");
  auto s = te::create_schedule(B);
  auto [xo, xi] = s[B].split(B.axis(0), 16);
  s[B].vectorize(xi);
  s[B].parallel(xo);
  EXPECT_EQ(text(te::lower(s, {A, B}, "sq")),
            "func @sq(%A: f32[64], %B: f32[64]) {\n"
            "  parallel for %i.outer in 0..4 {\n"
            "    vectorized for %i.inner in 0..16 {\n"
            "      B[%i.outer * 16 + %i.inner] = A[%i.outer * 16 + %i.inner] * A[%i.outer * 16 + %i.inner]\n"
            "    }\n"
            "  }\n"
            "}\n");
}

TEST(TE, SplitNpartsFuseReorderTileUnroll) {
  auto A = te::placeholder({6, 8}, DType::f32, "A");
  auto B = te::compute({6, 8}, [&](Var i, Var j) { return A(j % 6, i % 8) + 1.0f; }, "B");
  {
    auto s = te::create_schedule(B);
    auto [o, in] = s[B].split_nparts(B.axis(1), 2);
    s[B].unroll(in);
    auto t = text(te::lower(s, {A, B}, "nparts"));
    EXPECT_NE(t.find("for %j.outer in 0..2"), std::string::npos) << t;
    EXPECT_NE(t.find("unrolled for %j.inner in 0..4"), std::string::npos) << t;
    EXPECT_EQ(t.find("if "), std::string::npos) << t;
  }
  {
    auto s = te::create_schedule(B);
    auto f = s[B].fuse(B.axis(0), B.axis(1));
    auto t = text(te::lower(s, {A, B}, "fused"));
    EXPECT_NE(t.find("for %i.j.fused in 0..48"), std::string::npos) << t;
    EXPECT_NE(t.find("B[%i.j.fused / 8, %i.j.fused % 8]"), std::string::npos) << t;
  }
  {
    auto s = te::create_schedule(B);
    s[B].reorder({B.axis(1), B.axis(0)});
    auto t = text(te::lower(s, {A, B}, "reordered"));
    EXPECT_LT(t.find("for %j in 0..8"), t.find("for %i in 0..6")) << t;
  }
  {
    auto s = te::create_schedule(B);
    auto [xo, yo, xi, yi] = s[B].tile(B.axis(0), B.axis(1), 3, 4);
    auto t = text(te::lower(s, {A, B}, "tiled"));
    size_t a = t.find("for %i.outer in 0..2"), b = t.find("for %j.outer in 0..2"),
           c = t.find("for %i.inner in 0..3"), d = t.find("for %j.inner in 0..4");
    ASSERT_NE(d, std::string::npos) << t;
    EXPECT_TRUE(a < b && b < c && c < d) << t;
  }
}

TEST(TE, ScheduledKernelsMatchReference) {
  // The same elementwise kernel under several schedules, interpreted before and after the loop
  // pipeline (symbolic shapes, tails that leave vector remainders).
  for (int64_t n : {1, 7, 16, 37}) {
    for (int variant = 0; variant < 4; ++variant) {
      auto N = te::var("n");
      auto A = te::placeholder({N, 5}, DType::f32, "A");
      auto B = te::compute({N, 5}, [&](Var i, Var j) { return loop::exp(A(i, j)) * 0.5f; }, "B");
      auto C = te::compute({N, 5}, [&](Var i, Var j) { return B(i, j) - A(i, j); }, "C");
      auto s = te::create_schedule(C);
      if (variant == 0) {
        s[B].compute_inline();
      } else if (variant == 1) {
        auto [xo, xi] = s[C].split(C.axis(0), 4);
        s[B].compute_at(s[C], xo);
      } else if (variant == 2) {
        auto f = s[C].fuse(C.axis(0), C.axis(1));
        auto [o, in] = s[C].split(f, 8);
        s[C].vectorize(in);
        s[B].compute_inline();
      } else {
        auto [xo, yo, xi, yi] = s[C].tile(C.axis(0), C.axis(1), 3, 2);
        s[B].compute_at(s[C], yo);
      }
      auto a = randomFloats(size_t(n * 5), unsigned(n * 10 + variant));
      std::vector<float> want(a.size());
      for (size_t i = 0; i < a.size(); ++i)
        want[i] = std::exp(a[i]) * 0.5f - a[i];
      interpretBoth(te::lower(s, {A, C}, "variant" + std::to_string(variant)),
                    {{"A", toDouble(a)}, {"C", std::vector<double>(a.size())}},
                    {{"n", double(n)}}, "C", want, 1e-5f);
    }
  }
}

//===----------------------------------------------------------------------===//
// Bound inference with compute_at
//===----------------------------------------------------------------------===//

TEST(TE, ComputeAtTileGetsTileSizedAllocate) {
  auto A = te::placeholder({64, 64}, DType::f32, "A");
  auto B = te::compute({64, 64}, [&](Var i, Var j) { return A(i, j) * 3.0f; }, "B");
  auto C = te::compute({64, 64}, [&](Var i, Var j) { return B(i, j) + B(i, j); }, "C");
  auto s = te::create_schedule(C);
  auto [xo, yo, xi, yi] = s[C].tile(C.axis(0), C.axis(1), 8, 16);
  s[B].compute_at(s[C], yo);
  auto t = text(te::lower(s, {A, C}, "tile_at"));
  EXPECT_NE(t.find("allocate B: f32[8, 16] local"), std::string::npos) << t;
  // Inside the tile: B's indices are relative to the tile's corner.
  EXPECT_NE(t.find("B[%i.inner, %j.inner]"), std::string::npos) << t;
  // The region is inside A (64 is a multiple of both tiles): no guard.
  EXPECT_EQ(t.find("if "), std::string::npos) << t;
}

TEST(TE, ComputeAtStencilRegionIsWiderThanTheTile) {
  // C[i] = B[i] + B[i + 2]: per tile of 8, B's region is 10 wide.
  auto A = te::placeholder({34}, DType::f32, "A");
  auto B = te::compute({34}, [&](Var i) { return A(i) * 2.0f; }, "B");
  auto C = te::compute({32}, [&](Var i) { return B(i) + B(i + 2); }, "C");
  auto s = te::create_schedule(C);
  auto [xo, xi] = s[C].split(C.axis(0), 8);
  s[B].compute_at(s[C], xo);
  auto f = te::lower(s, {A, C}, "stencil");
  auto t = text(f);
  EXPECT_NE(t.find("allocate B: f32[10] local"), std::string::npos) << t;
  auto a = randomFloats(34, 3);
  std::vector<float> want(32);
  for (size_t i = 0; i < 32; ++i)
    want[i] = a[i] * 2.0f + a[i + 2] * 2.0f;
  interpretBoth(f, {{"A", toDouble(a)}, {"C", std::vector<double>(32)}}, {}, "C", want);
}

//===----------------------------------------------------------------------===//
// Reductions, cache_read / cache_write, storage_align
//===----------------------------------------------------------------------===//

TEST(TE, SumReductionLowersToInitAndUpdate) {
  auto n = te::var("n");
  auto A = te::placeholder({4, n}, DType::f32, "A");
  auto k = te::reduce_axis({0, n}, "k");
  auto S = te::compute({4}, [&](Var i) { return te::sum(A(i, k), {k}); }, "S");
  auto s = te::create_schedule(S);
  auto f = te::lower(s, {A, S}, "rowsum");
  EXPECT_EQ(text(f), "func @rowsum(%A: f32[4, %n], %S: f32[4], %n: i64) {\n"
                     "  for %i in 0..4 {\n"
                     "    S[%i] = 0.0f\n"
                     "    for %k in 0..%n {\n"
                     "      S[%i] = S[%i] + A[%i, %k]\n"
                     "    }\n"
                     "  }\n"
                     "}\n");
  auto a = randomFloats(4 * 9, 5);
  std::vector<float> want(4, 0.0f);
  for (size_t i = 0; i < 4; ++i)
    for (size_t j = 0; j < 9; ++j)
      want[i] += a[i * 9 + j];
  interpretBoth(f, {{"A", toDouble(a)}, {"S", std::vector<double>(4)}}, {{"n", 9}}, "S", want);
}

TEST(TE, MaxReductionWithInitAndSplitReduceAxis) {
  auto A = te::placeholder({3, 10}, DType::f32, "A");
  auto k = te::reduce_axis({0, 10}, "k");
  auto M = te::compute({3}, [&](Var i) { return te::max(A(i, k), {k}, Expr(0.5f)); }, "M");
  auto s = te::create_schedule(M);
  auto [ko, ki] = s[M].split(k, 4);
  s[M].unroll(ki);
  auto f = te::lower(s, {A, M}, "rowmax");
  auto t = text(f);
  EXPECT_NE(t.find("M[%i] = 0.5f"), std::string::npos) << t;
  EXPECT_NE(t.find("if %k.outer * 4 + %k.inner < 10"), std::string::npos) << t;
  auto a = randomFloats(30, 6);
  std::vector<float> want(3, 0.5f);
  for (size_t i = 0; i < 3; ++i)
    for (size_t j = 0; j < 10; ++j)
      want[i] = std::max(want[i], a[i * 10 + j]);
  interpretBoth(f, {{"A", toDouble(a)}, {"M", std::vector<double>(3)}}, {}, "M", want);
}

struct Gemm {
  Tensor A, B, C;
  IterVar k;
  Gemm(int64_t m, int64_t n, int64_t kk) {
    A = te::placeholder({m, kk}, DType::f32, "A");
    B = te::placeholder({kk, n}, DType::f32, "B");
    k = te::reduce_axis({0, kk}, "k");
    C = te::compute({m, n}, [&](Var i, Var j) { return te::sum(A(i, k) * B(k, j), {k}); }, "C");
  }
  std::vector<float> reference(const std::vector<float> &a, const std::vector<float> &b, int64_t m,
                               int64_t n, int64_t kk) const {
    std::vector<float> c(size_t(m * n), 0.0f);
    for (int64_t i = 0; i < m; ++i)
      for (int64_t p = 0; p < kk; ++p)
        for (int64_t j = 0; j < n; ++j)
          c[size_t(i * n + j)] += a[size_t(i * kk + p)] * b[size_t(p * n + j)];
    return c;
  }
};

TEST(TE, GemmWithCacheWriteReorderAndVectorize) {
  // m = 20 leaves a tail of the 8-row tiles (guarded rows); n = 48 splits evenly into the
  // vectorized 16-wide columns (a vectorized loop must not carry a guard).
  const int64_t m = 20, n = 48, kk = 13;
  Gemm g(m, n, kk);
  auto s = te::create_schedule(g.C);
  auto CC = s.cache_write(g.C, "local");
  auto [xo, yo, xi, yi] = s[g.C].tile(g.C.axis(0), g.C.axis(1), 8, 16);
  s[CC].compute_at(s[g.C], yo);
  s[CC].reorder({CC.reduceAxis(0), CC.axis(0), CC.axis(1)});
  s[CC].vectorize(CC.axis(1));
  s[g.C].parallel(xo);
  auto f = te::lower(s, {g.A, g.B, g.C}, "gemm");
  auto t = text(f);
  EXPECT_NE(t.find("allocate C.local: f32[8, 16] local"), std::string::npos) << t;
  // The init nest is inside the tile, before the k loop, over the data-parallel loops.
  EXPECT_LT(t.find("C.local[%i.init, %j.init] = 0.0f"), t.find("for %k in 0..13")) << t;
  auto a = randomFloats(size_t(m * kk), 7), b = randomFloats(size_t(kk * n), 8);
  interpretBoth(f, {{"A", toDouble(a)}, {"B", toDouble(b)}, {"C", std::vector<double>(size_t(m * n))}},
                {}, "C", g.reference(a, b, m, n, kk), 1e-4f);
}

TEST(TE, GemmBuiltAndRun) {
  for (int64_t size : {1, 7, 16, 33}) {
    const int64_t n = 24; // columns split evenly into the vectorized 8-wide loop
    Gemm g(size, n, size);
    auto s = te::create_schedule(g.C);
    auto CC = s.cache_write(g.C, "local");
    auto [xo, yo, xi, yi] = s[g.C].tile(g.C.axis(0), g.C.axis(1), 4, 8);
    s[CC].compute_at(s[g.C], yo);
    s[CC].reorder({CC.reduceAxis(0), CC.axis(0), CC.axis(1)});
    s[CC].vectorize(CC.axis(1));
    s[g.C].parallel(xo);
    auto f = tessel::build(s, {g.A, g.B, g.C});
    auto a = randomFloats(size_t(size * size), 9), b = randomFloats(size_t(size * n), 10);
    std::vector<float> c(size_t(size * n), -7.0f);
    f({a.data(), b.data(), c.data()});
    expectNear(c, g.reference(a, b, size, n, size), 1e-4f, "gemm " + std::to_string(size));
  }
}

TEST(TE, CacheReadAndStorageAlign) {
  auto A = te::placeholder({16, 16}, DType::f32, "A");
  auto k = te::reduce_axis({0, 16}, "k");
  auto S = te::compute({16}, [&](Var i) { return te::sum(A(i, k) * A(k, i), {k}); }, "S");
  auto s = te::create_schedule(S);
  auto AA = s.cache_read(A, "local", {S});
  s[AA].storage_align(AA.axis(0), 8, 1);
  auto f = te::lower(s, {A, S}, "cached");
  auto t = text(f);
  EXPECT_NE(t.find("allocate A.local: f32[16, 17] local"), std::string::npos) << t;
  EXPECT_NE(t.find("A.local[%ax0, %ax1] = A[%ax0, %ax1]"), std::string::npos) << t;
  EXPECT_NE(t.find("A.local[%i, %k] * A.local[%k, %i]"), std::string::npos) << t;
  auto a = randomFloats(256, 11);
  std::vector<float> want(16, 0.0f);
  for (size_t i = 0; i < 16; ++i)
    for (size_t p = 0; p < 16; ++p)
      want[i] += a[i * 16 + p] * a[p * 16 + i];
  interpretBoth(f, {{"A", toDouble(a)}, {"S", std::vector<double>(16)}}, {}, "S", want, 1e-4f);
}

TEST(TE, PrefetchFetchesTheLinesOfALaterIteration) {
  // C[i, j] = sum_k A[i, k] * B[k, j] with k outside j: at each k, prefetch the row of B that
  // iteration k + 2 reads (32 floats: two 64-byte lines). For k = 6, 7 that row is past B's end:
  // a prefetch there is allowed (it never faults), and the interpreters must not read it.
  auto A = te::placeholder({4, 8}, DType::f32, "A");
  auto B = te::placeholder({8, 32}, DType::f32, "B");
  auto k = te::reduce_axis({0, 8}, "k");
  auto C = te::compute({4, 32}, [&](Var i, Var j) { return te::sum(A(i, k) * B(k, j), {k}); }, "C");
  auto s = te::create_schedule(C);
  s[C].reorder({C.axis(0), k, C.axis(1)});
  s[C].prefetch(B, k, 2);
  auto f = te::lower(s, {A, B, C}, "mm_prefetch");
  const std::string t = text(f);
  EXPECT_NE(t.find("    for %k in 0..8 {\n"
                   "      unrolled for %pf.B.1 in 0..2 {\n"
                   "        evaluate prefetch(B[%k + 2, %pf.B.1 * 16])\n"
                   "      }\n"
                   "      for %j in 0..32 {"),
            std::string::npos)
      << t;
  auto a = randomFloats(4 * 8, 21), b = randomFloats(8 * 32, 22);
  std::vector<float> want(4 * 32, 0.0f);
  for (size_t i = 0; i < 4; ++i)
    for (size_t j = 0; j < 32; ++j)
      for (size_t q = 0; q < 8; ++q)
        want[i * 32 + j] += a[i * 8 + q] * b[q * 32 + j];
  interpretBoth(f, {{"A", toDouble(a)}, {"B", toDouble(b)}, {"C", std::vector<double>(4 * 32)}}, {},
                "C", want, 1e-5f);
  // Through LLVM: the prefetch is llvm.prefetch, the result unchanged.
  auto built = tessel::build(s, {A, B, C}, "llvm");
  std::vector<float> c(4 * 32, -1.0f);
  built({a.data(), b.data(), c.data()});
  expectNear(c, want, 1e-5f, "mm_prefetch built");

  // Errors name the stage and what was expected.
  auto s2 = te::create_schedule(C);
  EXPECT_NE(errorOf([&] { s2[C].prefetch(B, C.axis(0), 1); auto [o, in] = s2[C].split(C.axis(0), 2);
                          te::lower(s2, {A, B, C}, "x"); })
                .find("prefetch at axis 'i', which is no longer a loop of the stage"),
            std::string::npos);
  auto D = te::compute({4}, [&](Var i) { return A(i, 0) * 2.0f; }, "D");
  auto E = te::compute({4}, [&](Var i) { return D(i) + B(0, i); }, "E");
  auto s3 = te::create_schedule(E);
  s3[D].prefetch(B, D.axis(0), 1);
  const std::string err = errorOf([&] { te::lower(s3, {A, B, E}, "y"); });
  EXPECT_NE(err.find("prefetch of 'B', which the stage does not read"), std::string::npos) << err;
}

TEST(TE, SelectCastAndIntrinsics) {
  auto A = te::placeholder({10}, DType::f32, "A");
  auto B = te::compute({10}, [&](Var i) {
    return te::if_then_else(A(i) > 0.0f, loop::sqrt(A(i)), loop::cast(Type::f32(), i) * -1.0f);
  }, "B");
  auto s = te::create_schedule(B);
  auto a = randomFloats(10, 12);
  std::vector<float> want(10);
  for (size_t i = 0; i < 10; ++i)
    want[i] = a[i] > 0 ? std::sqrt(a[i]) : -float(i);
  interpretBoth(te::lower(s, {A, B}, "sel"), {{"A", toDouble(a)}, {"B", std::vector<double>(10)}},
                {}, "B", want);
}

//===----------------------------------------------------------------------===//
// Illegal schedules
//===----------------------------------------------------------------------===//

TEST(TE, IllegalSchedulesAreClearErrors) {
  Gemm g(8, 8, 8);
  auto s = te::create_schedule(g.C);
  EXPECT_NE(errorOf([&] { s[g.C].vectorize(g.k); })
                .find("stage 'C': vectorize of reduction axis 'k'"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { s[g.C].parallel(g.k); }).find("stage 'C': parallel of reduction axis 'k'"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { s[g.C].compute_inline(); }).find("stage 'C': compute_inline of a reduction"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { s[g.C].reorder({g.C.axis(0), g.C.axis(0)}); })
                .find("reorder lists axis 'i' more than once"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { s[g.C].fuse(g.C.axis(1), g.k); }).find("of different kinds"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { s[g.C].fuse(g.C.axis(0), g.k); }).find("expected adjacent loops"),
            std::string::npos);
  auto [o, in] = s[g.C].split(g.C.axis(0), 2);
  EXPECT_NE(errorOf([&] { s[g.C].split(g.C.axis(0), 2); })
                .find("stage 'C': split of axis 'i', which was already split or fused away"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { s[g.C].split(o, 0); }).find("expected a positive factor"),
            std::string::npos);

  Seed e;
  auto s2 = te::create_schedule(e.C);
  EXPECT_NE(errorOf([&] { s2[e.C].compute_inline(); })
                .find("stage 'C': compute_inline of an output"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { s2[e.B].compute_at(s2[e.C], e.B.axis(0)); })
                .find("stage 'B': compute_at to axis 'i', which is not a loop of consumer stage 'C'"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { s2[e.B].vectorize(e.C.axis(0)); }).find("not an axis of this stage"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { s2[e.A].split(e.C.axis(0), 2); }).find("on a placeholder"),
            std::string::npos);
  // Vectorizing a loop of symbolic extent is refused at lowering.
  s2[e.C].vectorize(e.C.axis(0));
  EXPECT_NE(errorOf([&] { te::lower(s2, {e.A, e.C}); })
                .find("vectorize of axis 'i', whose extent is not a constant"),
            std::string::npos);
  // Missing arguments.
  auto s3 = te::create_schedule(e.C);
  EXPECT_NE(errorOf([&] { te::lower(s3, {e.C}); })
                .find("placeholder 'A' is read but is not in the argument list"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { te::lower(s3, {e.A}); }).find("output 'C' is not in the argument list"),
            std::string::npos);
  // Wrong arity of an access and of a compute body.
  EXPECT_NE(errorOf([&] { e.A(0, 1); }).find("tensor 'A' accessed with 2 index(es); expected 1"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { te::compute({4, 4}, [&](Var i) { return e.A(i); }, "X"); })
                .find("the body takes 1 index variable(s) but the shape has 2"),
            std::string::npos);
}

TEST(TE, ComputeRootUndoesComputeAtAndFusedAxesCannotBeSplit) {
  auto A = te::placeholder({8, 8}, DType::f32, "A");
  auto B = te::compute({8, 8}, [&](Var i, Var j) { return A(i, j) + 1.0f; }, "B");
  auto C = te::compute({8, 8}, [&](Var i, Var j) { return B(i, j) * 2.0f; }, "C");
  auto s = te::create_schedule(C);
  s[B].compute_at(s[C], C.axis(0));
  EXPECT_NE(text(te::lower(s, {A, C})).find("allocate B: f32[1, 8] local"), std::string::npos);
  s[B].compute_root();
  auto t = text(te::lower(s, {A, C}));
  EXPECT_EQ(t.find("allocate B: f32[8, 8] local"), t.find("allocate")) << t;
  auto f = s[C].fuse(C.axis(0), C.axis(1));
  EXPECT_NE(errorOf([&] { s[C].split(C.axis(1), 2); })
                .find("stage 'C': split of axis 'j', which was already split or fused away; "
                      "expected one of the current loops: i.j.fused"),
            std::string::npos);
  EXPECT_NE(errorOf([&] { s[B].compute_at(s[C], C.axis(0)); })
                .find("compute_at to axis 'i', which is not a loop of consumer stage 'C'"),
            std::string::npos);
  s[B].compute_at(s[C], f);
  EXPECT_NE(text(te::lower(s, {A, C})).find("allocate B: f32[1, 1] local"), std::string::npos);
}

TEST(TE, ComputeAtToANonReaderIsAnError) {
  auto A = te::placeholder({8}, DType::f32, "A");
  auto B = te::compute({8}, [&](Var i) { return A(i) + 1.0f; }, "B");
  auto C = te::compute({8}, [&](Var i) { return B(i) * 2.0f; }, "C");
  auto D = te::compute({8}, [&](Var i) { return C(i) - B(i); }, "D");
  auto s = te::create_schedule(D);
  s[B].compute_at(s[C], C.axis(0));
  EXPECT_NE(errorOf([&] { te::lower(s, {A, D}); })
                .find("stage 'B': computed at stage 'C' but also read by stage 'D'; expected compute_at to the only consumer"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// AOT
//===----------------------------------------------------------------------===//

TEST(TE, BuildObjectForAArch64) {
  Seed e;
  auto s = te::create_schedule(e.C);
  s[e.B].compute_inline();
  auto [xo, xi] = s[e.C].split(e.C.axis(0), 4);
  s[e.C].vectorize(xi);
  std::string path = ::testing::TempDir() + "tessel_te_seed_aarch64.o";
  tessel::buildObject(s, {e.A, e.C}, "aarch64", path, "seed");
  std::ifstream in(path, std::ios::binary);
  std::vector<unsigned char> bytes((std::istreambuf_iterator<char>(in)), {});
  ASSERT_GT(bytes.size(), 20u);
  EXPECT_EQ(bytes[0], 0x7f);
  EXPECT_EQ(bytes[1], 'E');
  EXPECT_EQ(bytes[18] | (bytes[19] << 8), 183); // EM_AARCH64
  std::remove(path.c_str());
}

//===----------------------------------------------------------------------===//
// More kernels, JIT-compiled and compared with plain C++ loops (sizes that leave tails)
//===----------------------------------------------------------------------===//

TEST(TE, SoftmaxBuiltAndRun) {
  for (int64_t n : {1, 7, 16, 100}) {
    auto N = te::var("n");
    const int64_t rows = 3;
    auto X = te::placeholder({rows, N}, DType::f32, "X");
    auto k1 = te::reduce_axis({0, N}, "k");
    auto M = te::compute({rows}, [&](Var i) { return te::max(X(i, k1), {k1}); }, "M");
    auto E = te::compute({rows, N}, [&](Var i, Var j) { return loop::exp(X(i, j) - M(i)); }, "E");
    auto k2 = te::reduce_axis({0, N}, "k");
    auto S = te::compute({rows}, [&](Var i) { return te::sum(E(i, k2), {k2}); }, "S");
    auto Y = te::compute({rows, N}, [&](Var i, Var j) { return E(i, j) / S(i); }, "Y");
    auto s = te::create_schedule(Y);
    s[M].compute_at(s[Y], Y.axis(0));
    s[E].compute_at(s[Y], Y.axis(0));
    s[S].compute_at(s[Y], Y.axis(0));
    s[Y].parallel(Y.axis(0));
    auto f = tessel::build(s, {X, Y});
    auto x = randomFloats(size_t(rows * n), unsigned(n) + 20);
    std::vector<float> y(x.size()), want(x.size());
    for (int64_t i = 0; i < rows; ++i) {
      float m = -INFINITY, sum = 0;
      for (int64_t j = 0; j < n; ++j)
        m = std::max(m, x[size_t(i * n + j)]);
      for (int64_t j = 0; j < n; ++j)
        sum += std::exp(x[size_t(i * n + j)] - m);
      for (int64_t j = 0; j < n; ++j)
        want[size_t(i * n + j)] = std::exp(x[size_t(i * n + j)] - m) / sum;
    }
    f({x.data(), y.data(), n});
    expectNear(y, want, 1e-5f, "softmax n=" + std::to_string(n));
  }
}

TEST(TE, Conv2dWithPaddingBuiltAndRun) {
  // NCHW, one image: out[co, y, x] = sum_{ci, ky, kx} in[ci, y+ky-1, x+kx-1] * w[co, ci, ky, kx]
  for (int64_t hw : {1, 5, 9}) {
    const int64_t ci = 3, co = 4, kh = 3;
    auto I = te::placeholder({ci, hw, hw}, DType::f32, "I");
    auto W = te::placeholder({co, ci, kh, kh}, DType::f32, "W");
    auto P = te::compute({ci, hw + 2, hw + 2}, [&](Var c, Var y, Var x) {
      Expr inside = y >= 1 && y < hw + 1 && x >= 1 && x < hw + 1;
      Expr yy = loop::max(loop::min(y - 1, hw - 1), 0), xx = loop::max(loop::min(x - 1, hw - 1), 0);
      return te::if_then_else(inside, I(c, yy, xx), 0.0f);
    }, "P");
    auto rc = te::reduce_axis({0, ci}, "rc"), ry = te::reduce_axis({0, kh}, "ry"),
         rx = te::reduce_axis({0, kh}, "rx");
    auto O = te::compute({co, hw, hw}, [&](Var o, Var y, Var x) {
      return te::sum(P(rc, y + ry, x + rx) * W(o, rc, ry, rx), {rc, ry, rx});
    }, "O");
    auto s = te::create_schedule(O);
    s[P].compute_inline();
    s[O].parallel(O.axis(0));
    auto f = tessel::build(s, {I, W, O});
    auto in = randomFloats(size_t(ci * hw * hw), 30), w = randomFloats(size_t(co * ci * kh * kh), 31);
    std::vector<float> out(size_t(co * hw * hw)), want(out.size(), 0.0f);
    for (int64_t o = 0; o < co; ++o)
      for (int64_t y = 0; y < hw; ++y)
        for (int64_t x = 0; x < hw; ++x) {
          float acc = 0;
          for (int64_t c = 0; c < ci; ++c)
            for (int64_t a = 0; a < kh; ++a)
              for (int64_t b = 0; b < kh; ++b) {
                int64_t yy = y + a - 1, xx = x + b - 1;
                if (yy < 0 || yy >= hw || xx < 0 || xx >= hw)
                  continue;
                acc += in[size_t((c * hw + yy) * hw + xx)] * w[size_t(((o * ci + c) * kh + a) * kh + b)];
              }
          want[size_t((o * hw + y) * hw + x)] = acc;
        }
    f({in.data(), w.data(), out.data()});
    expectNear(out, want, 1e-4f, "conv2d hw=" + std::to_string(hw));
  }
}

TEST(TE, TransposePoolingAndBroadcastBuiltAndRun) {
  for (int64_t n : {2, 6, 18}) {
    auto A = te::placeholder({n, n + 1}, DType::f32, "A");
    auto T = te::compute({n + 1, n}, [&](Var i, Var j) { return A(j, i); }, "T");
    auto sT = te::create_schedule(T);
    auto [xo, yo, xi, yi] = sT[T].tile(T.axis(0), T.axis(1), 4, 4);
    auto fT = tessel::build(sT, {A, T});
    auto a = randomFloats(size_t(n * (n + 1)), 40);
    std::vector<float> t(a.size()), wantT(a.size());
    for (int64_t i = 0; i < n + 1; ++i)
      for (int64_t j = 0; j < n; ++j)
        wantT[size_t(i * n + j)] = a[size_t(j * (n + 1) + i)];
    fT({a.data(), t.data()});
    expectNear(t, wantT, 0, "transpose n=" + std::to_string(n));

    // 2x2 max pooling, stride 2.
    auto X = te::placeholder({2 * n, 2 * n}, DType::f32, "X");
    auto ry = te::reduce_axis({0, 2}, "ry"), rx = te::reduce_axis({0, 2}, "rx");
    auto Pool = te::compute({n, n}, [&](Var i, Var j) {
      return te::max(X(i * 2 + ry, j * 2 + rx), {ry, rx});
    }, "Pool");
    auto sP = te::create_schedule(Pool);
    sP[Pool].unroll(ry);
    sP[Pool].unroll(rx);
    auto fP = tessel::build(sP, {X, Pool});
    auto x = randomFloats(size_t(4 * n * n), 41);
    std::vector<float> p(size_t(n * n)), wantP(p.size());
    for (int64_t i = 0; i < n; ++i)
      for (int64_t j = 0; j < n; ++j)
        wantP[size_t(i * n + j)] = std::max(
            std::max(x[size_t(2 * i * 2 * n + 2 * j)], x[size_t(2 * i * 2 * n + 2 * j + 1)]),
            std::max(x[size_t((2 * i + 1) * 2 * n + 2 * j)], x[size_t((2 * i + 1) * 2 * n + 2 * j + 1)]));
    fP({x.data(), p.data()});
    expectNear(p, wantP, 0, "maxpool n=" + std::to_string(n));

    // Bias add broadcast over rows, with a vectorized inner loop of 8 and a tail.
    auto N = te::var("n");
    auto Y = te::placeholder({4, N}, DType::f32, "Y");
    auto Bias = te::placeholder({N}, DType::f32, "Bias");
    auto Z = te::compute({4, N}, [&](Var i, Var j) { return loop::tanh(Y(i, j) + Bias(j)); }, "Z");
    auto sZ = te::create_schedule(Z);
    auto [jo, ji] = sZ[Z].split(Z.axis(1), 8);
    sZ[Z].unroll(ji);
    auto fZ = tessel::build(sZ, {Y, Bias, Z});
    auto y = randomFloats(size_t(4 * n), 42), bias = randomFloats(size_t(n), 43);
    std::vector<float> z(y.size()), wantZ(y.size());
    for (int64_t i = 0; i < 4; ++i)
      for (int64_t j = 0; j < n; ++j)
        wantZ[size_t(i * n + j)] = std::tanh(y[size_t(i * n + j)] + bias[size_t(j)]);
    fZ({y.data(), bias.data(), z.data(), n});
    expectNear(z, wantZ, 1e-5f, "bias+tanh n=" + std::to_string(n));
  }
}
