//===- TEComputeAtTest.cpp - nested compute_at regions and cache stages ---===//
//
// Stages computed inside stages that are themselves computed at a consumer's tile: a
// cache_write tile of M computed at a loop of M while M is computed per tile of E (M's region
// starts at the tile's origin), and elementwise or stencil stages attached inside such a stage,
// up to four levels deep. Each schedule is lowered, run in the loop IR interpreter (before and
// after the loop pipeline) and JIT-compiled, and compared with plain C++ loops on random
// inputs, at tile sizes that divide the extents and sizes that leave tails.
//
// The bug these pin down: a region's min is an expression of the consumer's loop variables,
// and an unsplit loop's variable is the consumer's root variable itself; offsetting the
// consumer's loads by the region's min before its root variables were replaced by their values
// (region min + loop) shifted the min too, so the reads landed off the tile (NaN, garbage).
//
//===----------------------------------------------------------------------===//
#include "tessel/Loop/Interpret.h"
#include "tessel/Loop/Pass.h"
#include "tessel/Loop/Text.h"
#include "tessel/TE/Build.h"
#include "TestUtils.h"

#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

using namespace tessel;
using namespace tessel::te;

namespace {

using test::errorOf;
using test::randomFloats;

/// The data of one argument tensor (inputs random, the output filled with a sentinel).
struct ArgData {
  Tensor tensor;
  std::vector<float> data;
};

void expectClose(const std::vector<float> &got, const std::vector<float> &want,
                 const std::string &what) {
  ASSERT_EQ(got.size(), want.size()) << what;
  for (size_t i = 0; i < got.size(); ++i)
    ASSERT_NEAR(got[i], want[i], 1e-4f * (1 + std::fabs(want[i]))) << what << " at " << i;
}

/// Lowers s, runs it in the loop IR interpreter (lowered and after the loop pipeline) and as
/// JIT-compiled code, and compares the last argument (the output) with want.
void checkSchedule(const Schedule &s, std::vector<ArgData> args, const std::vector<float> &want,
                   const std::string &what) {
  std::vector<Tensor> tensors;
  for (auto &a : args)
    tensors.push_back(a.tensor);
  const std::string out = args.back().tensor.name();
  loop::LoweredFunc f = te::lower(s, tensors, "nested");
  SCOPED_TRACE(what + "\n" + loop::printFunc(f));
  for (bool pipeline : {false, true}) {
    loop::InterpBuffers bufs;
    for (auto &a : args)
      bufs[a.tensor.name()] = std::vector<double>(a.data.begin(), a.data.end());
    loop::interpret(pipeline ? loop::lowerPipeline(f) : f, bufs, {});
    std::vector<float> got(bufs[out].begin(), bufs[out].end());
    expectClose(got, want, what + (pipeline ? " (interpreted after the loop pipeline)"
                                            : " (interpreted, lowered)"));
  }
  BuiltModule m = tessel::build(s, tensors, "llvm", "nested");
  std::vector<RuntimeArg> rargs;
  for (auto &a : args)
    rargs.emplace_back(static_cast<void *>(a.data.data()));
  m.call(rargs);
  expectClose(args.back().data, want, what + " (JIT)");
}

/// Sizes of the tests: tiles that divide the extents, and extents that leave tails.
struct Size {
  int64_t m, n, k;
};
const Size kSizes[] = {{16, 16, 8}, {13, 19, 5}, {8, 24, 3}, {5, 7, 4}};

std::string label(const char *what, const Size &z) {
  return std::string(what) + " m=" + std::to_string(z.m) + " n=" + std::to_string(z.n) +
         " k=" + std::to_string(z.k);
}

/// M = A x B (m x k times k x n), E = M + 1: the GEMM accumulated in a cache_write tile.
struct GemmPlusOne {
  Size z;
  Tensor A, B, M, E;
  std::vector<float> a, b;
  explicit GemmPlusOne(Size sz) : z(sz) {
    A = te::placeholder({z.m, z.k}, DType::f32, "A");
    B = te::placeholder({z.k, z.n}, DType::f32, "B");
    auto r = te::reduce_axis({0, z.k}, "r");
    M = te::compute({z.m, z.n}, [&](Var i, Var j) { return te::sum(A(i, r) * B(r, j), {r}); }, "M");
    E = te::compute({z.m, z.n}, [&](Var i, Var j) { return M(i, j) + 1.0f; }, "E");
    a = randomFloats(size_t(z.m * z.k), unsigned(z.m * 7 + z.k));
    b = randomFloats(size_t(z.k * z.n), unsigned(z.n * 5 + z.k));
  }
  std::vector<float> reference() const {
    std::vector<float> e(size_t(z.m * z.n));
    for (int64_t i = 0; i < z.m; ++i)
      for (int64_t j = 0; j < z.n; ++j) {
        float acc = 0;
        for (int64_t p = 0; p < z.k; ++p)
          acc += a[size_t(i * z.k + p)] * b[size_t(p * z.n + j)];
        e[size_t(i * z.n + j)] = acc + 1.0f;
      }
    return e;
  }
  std::vector<ArgData> args() const {
    return {{A, a}, {B, b}, {E, std::vector<float>(size_t(z.m * z.n), NAN)}};
  }
};

} // namespace

//===----------------------------------------------------------------------===//
// cache_write of a stage computed per tile of its consumer
//===----------------------------------------------------------------------===//

// The Winograd case: M computed per (4 x 8) tile of E, its cache tile computed at M's first
// (unsplit) loop, one row of the tile at a time.
TEST(TEComputeAt, CacheWriteAtUnsplitAxisOfStageComputedPerTile) {
  for (const Size &z : kSizes) {
    GemmPlusOne g(z);
    auto s = te::create_schedule(g.E);
    auto MC = s.cache_write(g.M, "local");
    auto [xo, yo, xi, yi] = s[g.E].tile(g.E.axis(0), g.E.axis(1), 4, 8);
    s[g.M].compute_at(s[g.E], yo);
    s[MC].compute_at(s[g.M], g.M.axis(0));
    checkSchedule(s, g.args(), g.reference(), label("cache_write at M.i", z));
  }
}

// The cache tile at M's innermost loop (one element), and with the reduction loop outermost.
TEST(TEComputeAt, CacheWriteAtInnermostAxisOfStageComputedPerTile) {
  for (const Size &z : kSizes) {
    GemmPlusOne g(z);
    auto s = te::create_schedule(g.E);
    auto MC = s.cache_write(g.M, "local");
    auto [xo, yo, xi, yi] = s[g.E].tile(g.E.axis(0), g.E.axis(1), 4, 8);
    s[g.M].compute_at(s[g.E], yo);
    s[MC].compute_at(s[g.M], g.M.axis(1));
    checkSchedule(s, g.args(), g.reference(), label("cache_write at M.j", z));
  }
}

// M split inside the tile (its loops are no longer its root variables), the cache tile at the
// outer part, reordered k-outer and vectorized as a register tile would be.
TEST(TEComputeAt, CacheWriteAtSplitAxisOfStageComputedPerTile) {
  for (const Size &z : kSizes) {
    GemmPlusOne g(z);
    auto s = te::create_schedule(g.E);
    auto MC = s.cache_write(g.M, "local");
    auto [xo, yo, xi, yi] = s[g.E].tile(g.E.axis(0), g.E.axis(1), 4, 8);
    s[g.M].compute_at(s[g.E], yo);
    auto [mo, mi] = s[g.M].split(g.M.axis(0), 2);
    s[MC].compute_at(s[g.M], mo);
    s[MC].reorder({MC.reduceAxis(0), MC.axis(0), MC.axis(1)});
    s[MC].vectorize(MC.axis(1));
    checkSchedule(s, g.args(), g.reference(), label("cache_write at M.i.outer", z));
  }
}

// E attached at a loop of its own consumer F: three levels of tiles (F's tile, E's row, M's
// row, the cache's row), every region with a non-zero offset.
TEST(TEComputeAt, CacheWriteThreeLevelsDeep) {
  for (const Size &z : kSizes) {
    GemmPlusOne g(z);
    auto F = te::compute({z.m, z.n}, [&](Var i, Var j) { return g.E(i, j) * 3.0f; }, "F");
    auto s = te::create_schedule(F);
    auto MC = s.cache_write(g.M, "local");
    auto [fo, fi] = s[F].split(F.axis(0), 8);
    s[g.E].compute_at(s[F], fo);
    s[g.M].compute_at(s[g.E], g.E.axis(0));
    s[MC].compute_at(s[g.M], g.M.axis(0));
    auto want = g.reference();
    for (auto &v : want)
      v *= 3.0f;
    auto args = g.args();
    args.back() = {F, std::vector<float>(size_t(z.m * z.n), NAN)};
    checkSchedule(s, args, want, label("F > E > M > M.local", z));
  }
}

//===----------------------------------------------------------------------===//
// Other stages attached inside a stage computed per tile
//===----------------------------------------------------------------------===//

// P = 2A (stencil input), M[i, j] = P[i, j] + P[i, j + 1] (reads a region one wider than its
// own), E = M * A: M per tile of E, P per row of M.
TEST(TEComputeAt, StencilStageAttachedInsideStageComputedPerTile) {
  for (const Size &z : kSizes) {
    auto A = te::placeholder({z.m, z.n + 1}, DType::f32, "A");
    auto P = te::compute({z.m, z.n + 1}, [&](Var i, Var j) { return A(i, j) * 2.0f; }, "P");
    auto M = te::compute({z.m, z.n}, [&](Var i, Var j) { return P(i, j) + P(i, j + 1); }, "M");
    auto E = te::compute({z.m, z.n}, [&](Var i, Var j) { return M(i, j) * A(i, j); }, "E");
    for (int attachP : {0, 1}) {
      auto s = te::create_schedule(E);
      auto [xo, yo, xi, yi] = s[E].tile(E.axis(0), E.axis(1), 4, 8);
      s[M].compute_at(s[E], yo);
      s[P].compute_at(s[M], M.axis(attachP));
      auto a = randomFloats(size_t(z.m * (z.n + 1)), unsigned(z.m + z.n));
      std::vector<float> want(size_t(z.m * z.n));
      for (int64_t i = 0; i < z.m; ++i)
        for (int64_t j = 0; j < z.n; ++j) {
          const float *row = &a[size_t(i * (z.n + 1))];
          want[size_t(i * z.n + j)] = (2.0f * row[j] + 2.0f * row[j + 1]) * row[j];
        }
      checkSchedule(s, {{A, a}, {E, std::vector<float>(size_t(z.m * z.n), NAN)}}, want,
                    label(attachP ? "stencil P at M.j" : "stencil P at M.i", z));
    }
  }
}

// Four stages deep with a cache_write in the middle: P = A + 1 computed at a loop of the cache
// tile of M = P x B, the cache at M's row, M per tile of E.
TEST(TEComputeAt, StageAttachedInsideCacheWriteTile) {
  for (const Size &z : kSizes) {
    GemmPlusOne g(z);
    auto P = te::compute({z.m, z.k}, [&](Var i, Var p) { return g.A(i, p) + 1.0f; }, "P");
    auto r = te::reduce_axis({0, z.k}, "r");
    auto M = te::compute({z.m, z.n}, [&](Var i, Var j) { return te::sum(P(i, r) * g.B(r, j), {r}); }, "M");
    auto E = te::compute({z.m, z.n}, [&](Var i, Var j) { return M(i, j) + 1.0f; }, "E");
    auto s = te::create_schedule(E);
    auto MC = s.cache_write(M, "local");
    auto [xo, yo, xi, yi] = s[E].tile(E.axis(0), E.axis(1), 4, 8);
    s[M].compute_at(s[E], yo);
    s[MC].compute_at(s[M], M.axis(0));
    s[P].compute_at(s[MC], MC.axis(0));
    std::vector<float> want(size_t(z.m * z.n));
    for (int64_t i = 0; i < z.m; ++i)
      for (int64_t j = 0; j < z.n; ++j) {
        float acc = 0;
        for (int64_t p = 0; p < z.k; ++p)
          acc += (g.a[size_t(i * z.k + p)] + 1.0f) * g.b[size_t(p * z.n + j)];
        want[size_t(i * z.n + j)] = acc + 1.0f;
      }
    checkSchedule(s, {{g.A, g.a}, {g.B, g.b}, {E, std::vector<float>(size_t(z.m * z.n), NAN)}},
                  want, label("P at M.local.ax0 at M.i at E.j.outer", z));
  }
}

// The region offsets in the lowered text: the cache tile of one row of M is indexed from 0
// (its min, the row, cancels), and M's tile from the tile's origin.
TEST(TEComputeAt, CacheTileIndexedFromItsOrigin) {
  GemmPlusOne g({16, 16, 8});
  auto s = te::create_schedule(g.E);
  auto MC = s.cache_write(g.M, "local");
  auto [xo, yo, xi, yi] = s[g.E].tile(g.E.axis(0), g.E.axis(1), 4, 8);
  s[g.M].compute_at(s[g.E], yo);
  s[MC].compute_at(s[g.M], g.M.axis(0));
  std::string t = loop::printFunc(te::lower(s, {g.A, g.B, g.E}, "tile"));
  EXPECT_NE(t.find("allocate M: f32[4, 8] local"), std::string::npos) << t;
  EXPECT_NE(t.find("allocate M.local: f32[1, 8] local"), std::string::npos) << t;
  // (the printer renames the cache's second axis j, which M's loop j already names, to %j.1)
  EXPECT_NE(t.find("M[%i, %j.1] = M.local[0, %j.1]"), std::string::npos) << t;
  EXPECT_NE(t.find("M.local[0, %j] = M.local[0, %j] + A[%i.outer * 4 + %i, %r]"), std::string::npos) << t;
  EXPECT_NE(t.find("= M[%i.inner, %j.inner] + 1.0f"), std::string::npos) << t;
  // 4 x 8 tiles of a 16 x 16 result never cross its edges (ranging the loops of E, which M is
  // computed in, shows it): no guards.
  EXPECT_EQ(t.find("if "), std::string::npos) << t;
}

// At 13 x 19 the last tiles cross the edges: the cache tile's rows and columns are guarded
// (the guards sit just inside the loops they use), and the result is right (the tests above).
TEST(TEComputeAt, CacheTileGuardedAtTheTensorEdges) {
  GemmPlusOne g({13, 19, 5});
  auto s = te::create_schedule(g.E);
  auto MC = s.cache_write(g.M, "local");
  auto [xo, yo, xi, yi] = s[g.E].tile(g.E.axis(0), g.E.axis(1), 4, 8);
  s[g.M].compute_at(s[g.E], yo);
  s[MC].compute_at(s[g.M], g.M.axis(0));
  std::string t = loop::printFunc(te::lower(s, {g.A, g.B, g.E}, "tile"));
  EXPECT_NE(t.find("if %i.outer * 4 + %i < 13"), std::string::npos) << t;
  EXPECT_NE(t.find("if %j.outer * 8 + %j < 19"), std::string::npos) << t;
}

// A cache_read (packing) of an input computed inside the cache tile, which is computed inside M,
// which is computed per tile of E whose two tile loops are fused into one.
TEST(TEComputeAt, CacheReadInsideCacheWriteTileOfFusedTile) {
  for (const Size &z : kSizes) {
    GemmPlusOne g(z);
    auto s = te::create_schedule(g.E);
    auto MC = s.cache_write(g.M, "local");
    auto BB = s.cache_read(g.B, "local", {MC});
    auto [xo, yo, xi, yi] = s[g.E].tile(g.E.axis(0), g.E.axis(1), 4, 8);
    auto tiles = s[g.E].fuse(xo, yo);
    s[g.M].compute_at(s[g.E], tiles);
    s[MC].compute_at(s[g.M], g.M.axis(0));
    s[BB].compute_at(s[MC], MC.reduceAxis(0));
    checkSchedule(s, g.args(), g.reference(), label("B.local at M.local.r, fused tiles", z));
  }
}

// Two producers at the same loop of a stage computed per tile, the second reading the first
// (not M): the row maximum and the shifted exponentials of a softmax-like M.
TEST(TEComputeAt, ChainOfProducersAtOneLoopOfStageComputedPerTile) {
  for (const Size &z : kSizes) {
    auto A = te::placeholder({z.m, z.n}, DType::f32, "A");
    auto P1 = te::compute({z.m, z.n}, [&](Var i, Var j) { return A(i, j) * 0.5f; }, "P1");
    auto P2 = te::compute({z.m, z.n}, [&](Var i, Var j) { return P1(i, j) - 1.0f; }, "P2");
    auto M = te::compute({z.m, z.n}, [&](Var i, Var j) { return P2(i, j) * P2(i, j); }, "M");
    auto E = te::compute({z.m, z.n}, [&](Var i, Var j) { return M(i, j) + A(i, j); }, "E");
    auto s = te::create_schedule(E);
    auto [xo, yo, xi, yi] = s[E].tile(E.axis(0), E.axis(1), 4, 8);
    s[M].compute_at(s[E], yo);
    s[P2].compute_at(s[M], M.axis(0));
    s[P1].compute_at(s[M], M.axis(0));
    auto a = randomFloats(size_t(z.m * z.n), unsigned(z.m * 3 + z.n));
    std::vector<float> want(a.size());
    for (size_t i = 0; i < a.size(); ++i)
      want[i] = (a[i] * 0.5f - 1.0f) * (a[i] * 0.5f - 1.0f) + a[i];
    checkSchedule(s, {{A, a}, {E, std::vector<float>(a.size(), NAN)}}, want,
                  label("P1, P2 at M.i at E.j.outer", z));
  }
}

// With the tile inside the tensor (no edge guards), the cache tile's columns vectorize.
TEST(TEComputeAt, CacheTileOfStageComputedPerTileVectorizes) {
  GemmPlusOne g({16, 16, 8});
  auto s = te::create_schedule(g.E);
  auto MC = s.cache_write(g.M, "local");
  auto [xo, yo, xi, yi] = s[g.E].tile(g.E.axis(0), g.E.axis(1), 4, 8);
  s[g.M].compute_at(s[g.E], yo);
  auto [mo, mi] = s[g.M].split(g.M.axis(0), 2);
  s[MC].compute_at(s[g.M], mo);
  s[MC].reorder({MC.reduceAxis(0), MC.axis(0), MC.axis(1)});
  s[MC].vectorize(MC.axis(1));
  std::string t = loop::printFunc(tessel::lowerForBuild(s, {g.A, g.B, g.E}, "tile"));
  EXPECT_NE(t.find("M.local[ramp(%i * 8, 1, 8)] = M.local[ramp(%i * 8, 1, 8)] + x8("),
            std::string::npos) << t;
  EXPECT_EQ(t.find("if "), std::string::npos) << t;
  checkSchedule(s, g.args(), g.reference(), "vectorized cache tile 16x16x8");
}

// A reduction whose init reads a computed tensor (a bias): computed at a loop outside the
// reduction loop it is right; at a loop inside it, the init (which runs before that loop) would
// read it before it exists, so lowering rejects the schedule.
TEST(TEComputeAt, ProducerOfReductionInitMustBeOutsideTheReductionLoops) {
  auto A = te::placeholder({6, 5}, DType::f32, "A");
  auto Bias = te::placeholder({6}, DType::f32, "Bias");
  auto P = te::compute({6}, [&](Var i) { return Bias(i) * 2.0f; }, "P");
  auto r = te::reduce_axis({0, 5}, "r");
  auto C = te::compute({6}, [&](Var i) { return te::sum(A(i, r), {r}, P(i)); }, "C");
  auto a = randomFloats(30, 41), bias = randomFloats(6, 42);
  std::vector<float> want(6);
  for (size_t i = 0; i < 6; ++i) {
    want[i] = 2.0f * bias[i];
    for (size_t p = 0; p < 5; ++p)
      want[i] += a[i * 5 + p];
  }
  auto s = te::create_schedule(C);
  s[P].compute_at(s[C], C.axis(0));
  checkSchedule(s, {{A, a}, {Bias, bias}, {C, std::vector<float>(6, NAN)}}, want, "P at C.i");

  auto s2 = te::create_schedule(C);
  s2[C].reorder({r, C.axis(0)});
  s2[P].compute_at(s2[C], C.axis(0));
  EXPECT_NE(errorOf([&] { te::lower(s2, {A, Bias, C}, "init"); })
                .find("stage 'P': computed at loop 'i' of stage 'C', at or inside its reduction "
                      "loop 'r', but the reduction's init reads 'P' before that loop runs; "
                      "expected compute_at to a loop of 'C' outside its reduction loops"),
            std::string::npos);
}

//===----------------------------------------------------------------------===//
// Regions read through a division
//===----------------------------------------------------------------------===//

// E[i, j] = M[i / 2, j] (nearest upsampling of rows): per 8-row tile of E, M's region is the 4
// rows (xo*8) / 2 .. (xo*8 + 7) / 2 (the multiples of 2 leave the floor division, so the
// extent is the constant 4); per 3-row tile, (xo*3) / 2 .. (xo*3 + 2) / 2 = (xo*3) / 2 + 1, two
// rows (before, these regions were the whole of M). Both against plain loops.
TEST(TEComputeAt, RegionThroughFloorDivision) {
  for (int64_t rows : {8, 5}) {
    const int64_t n = 6;
    auto A = te::placeholder({rows, n}, DType::f32, "A");
    auto M = te::compute({rows, n}, [&](Var t, Var j) { return A(t, j) * 2.0f; }, "M");
    auto E = te::compute({2 * rows, n}, [&](Var i, Var j) { return M(i / 2, j) + 1.0f; }, "E");
    auto a = randomFloats(size_t(rows * n), unsigned(rows));
    std::vector<float> want(size_t(2 * rows * n));
    for (int64_t i = 0; i < 2 * rows; ++i)
      for (int64_t j = 0; j < n; ++j)
        want[size_t(i * n + j)] = a[size_t((i / 2) * n + j)] * 2.0f + 1.0f;
    for (int64_t tile : {8, 3}) {
      auto s = te::create_schedule(E);
      auto [xo, xi] = s[E].split(E.axis(0), tile);
      s[M].compute_at(s[E], xo);
      std::string t = loop::printFunc(te::lower(s, {A, E}, "up"));
      EXPECT_NE(t.find(tile == 8 ? "allocate M: f32[4, 6] local" : "allocate M: f32[2, 6] local"),
                std::string::npos) << t;
      checkSchedule(s, {{A, a}, {E, std::vector<float>(want.size(), NAN)}}, want,
                    "upsample rows=" + std::to_string(rows) + " tile=" + std::to_string(tile));
    }
  }
}

// The Winograd register tile: E's columns c are tiles of 4 (M's row c / 4, the position in the
// tile c % 4); the tile loop split into groups of 3 tiles and the GEMM M computed per group is
// 3 rows of M (before, c / 4 widened M's region to all of it), with the last group of 7 tiles
// guarded at M's edge.
TEST(TEComputeAt, RegisterTileOfTileColumnsThroughDivision) {
  for (int64_t tiles : {6, 7}) {
    const int64_t K = 5, O = 8;
    auto V = te::placeholder({tiles, K}, DType::f32, "V");
    auto U = te::placeholder({K, O}, DType::f32, "U");
    auto r = te::reduce_axis({0, K}, "r");
    auto M = te::compute({tiles, O}, [&](Var t, Var o) { return te::sum(V(t, r) * U(r, o), {r}); }, "M");
    auto E = te::compute({tiles * 4, O}, [&](Var c, Var o) {
      return M(c / 4, o) * loop::cast(Type::f32(), c % 4 + 1);
    }, "E");
    auto s = te::create_schedule(E);
    auto [co, ci] = s[E].split(E.axis(0), 4);
    auto [coo, coi] = s[E].split(co, 3);
    s[M].compute_at(s[E], coo);
    s[M].reorder({M.reduceAxis(0), M.axis(0), M.axis(1)});
    s[M].unroll(M.axis(0));
    s[M].vectorize(M.axis(1));
    std::string t = loop::printFunc(te::lower(s, {V, U, E}, "regtile"));
    EXPECT_NE(t.find("allocate M: f32[3, 8] local"), std::string::npos) << t;
    auto v = randomFloats(size_t(tiles * K), unsigned(tiles)), u = randomFloats(size_t(K * O), 3);
    std::vector<float> want(size_t(tiles * 4 * O));
    for (int64_t c = 0; c < tiles * 4; ++c)
      for (int64_t o = 0; o < O; ++o) {
        float acc = 0;
        for (int64_t p = 0; p < K; ++p)
          acc += v[size_t((c / 4) * K + p)] * u[size_t(p * O + o)];
        want[size_t(c * O + o)] = acc * float(c % 4 + 1);
      }
    checkSchedule(s, {{V, v}, {U, u}, {E, std::vector<float>(want.size(), NAN)}}, want,
                  "register tile of 3 tile columns, " + std::to_string(tiles) + " tiles");
  }
}
