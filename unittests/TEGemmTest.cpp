//===- TEGemmTest.cpp - the TE-scheduled fp32 GEMM (include/tessel/TE/Gemm.h) ===//
//
// The scheduled, JIT-compiled GEMM against a double-precision reference on fresh random inputs,
// at sizes that leave tails in every direction (1x1x1, 17x33x65, 100x200x300), at 256^3, and at
// the benchmark's resnet18/transformer shapes with a small K; with the tile the chooser picks and
// with explicit tiles, serial and parallel, on 1 and 2 threads. Plus the shape of the generated
// loop IR (a guard-free micro-kernel of fused multiply-adds on contiguous vectors), the tile
// chooser, and the errors of malformed inputs.
//
//===----------------------------------------------------------------------===//
#include "tessel/Loop/Evaluate.h"
#include "tessel/Loop/Simplify.h"
#include "tessel/Loop/Text.h"
#include "tessel/TE/Gemm.h"
#include "tessel/runtime/ThreadPool.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <memory>
#include <random>
#include <regex>
#include <string>

using namespace tessel;

namespace {

struct Aligned {
  explicit Aligned(size_t n) : size(n) {
    data = static_cast<float *>(std::aligned_alloc(64, ((n * sizeof(float) + 63) / 64) * 64));
  }
  ~Aligned() { std::free(data); }
  float *data;
  size_t size;
};

void fill(Aligned &b, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> d(-1.0f, 1.0f);
  for (size_t i = 0; i < b.size; ++i)
    b.data[i] = d(rng);
}

/// Runs the GEMM on fresh inputs and checks every element against the double-precision product
/// within 2 * K * eps * sum_k |a||b| (the rounding bound of any summation order).
void checkGemm(int64_t M, int64_t N, int64_t K, const te::GemmTiling &tiling, int threads = 1) {
  SCOPED_TRACE(te::denseGemmKernelName(M, N, K, tiling) + " threads=" + std::to_string(threads));
  runtime::ThreadPool::global().setNumThreads(threads);
  te::CompiledGemm gemm = te::buildDenseGemm(M, N, K, tiling);
  Aligned a(size_t(M * K)), b(size_t(K * N)), c(size_t(M * N));
  fill(a, unsigned(M * 131 + K));
  fill(b, unsigned(N * 17 + K));
  for (size_t i = 0; i < c.size; ++i)
    c.data[i] = std::numeric_limits<float>::quiet_NaN(); // C is overwritten, never read
  gemm(a.data, b.data, c.data);
  const double eps = std::numeric_limits<float>::epsilon();
  for (int64_t i = 0; i < M; ++i) {
    for (int64_t j = 0; j < N; ++j) {
      double want = 0, scale = 0;
      for (int64_t k = 0; k < K; ++k) {
        double p = double(a.data[i * K + k]) * double(b.data[k * N + j]);
        want += p;
        scale += std::fabs(p);
      }
      double got = c.data[i * N + j];
      ASSERT_LE(std::fabs(got - want), 2 * double(K) * eps * scale + 1e-30)
          << "C[" << i << ", " << j << "] = " << got << ", expected " << want;
    }
  }
  runtime::ThreadPool::global().setNumThreads(1);
}

std::string text(const loop::LoweredFunc &f) { return loop::printFunc(f); }

} // namespace

TEST(TEGemm, TailsInEveryDirection) {
  for (auto [M, N, K] : {std::tuple<int64_t, int64_t, int64_t>{1, 1, 1}, {17, 33, 65},
                         {100, 200, 300}, {8, 32, 1}, {9, 31, 2}})
    checkGemm(M, N, K, te::chooseGemmTiling(M, N, K));
}

TEST(TEGemm, Square256) { checkGemm(256, 256, 256, te::chooseGemmTiling(256, 256, 256)); }

TEST(TEGemm, ExplicitTiles) {
  // Tiles that divide nothing (tails in M and N) and tiles that divide both.
  for (auto [mr, nr] : {std::pair<int64_t, int64_t>{8, 32}, {6, 64}, {14, 32}, {1, 16}, {4, 8}}) {
    te::GemmTiling t;
    t.mr = mr;
    t.nr = nr;
    checkGemm(17, 33, 65, t);
    checkGemm(56, 128, 40, t);
    t.parallel = false;
    checkGemm(23, 70, 9, t);
    t.packA = !t.packA; // both ways of reading A
    checkGemm(17, 33, 65, t);
    t.parallel = true;
    checkGemm(56, 128, 40, t);
    t.packPanelInside = false; // B packed up front
    checkGemm(17, 33, 65, t);
    t.packB = false; // B read in place (where N >= nr)
    checkGemm(3, 70, 20, t);
    checkGemm(5, 128, 7, t, 2);
  }
  // The other loop structures: K blocking (with and without row blocks of A), and the tile in
  // a local buffer (cache_write) with fused parallel loops.
  for (int variant = 0; variant < 3; ++variant) {
    te::GemmTiling t;
    t.kc = variant < 2 ? 16 : 0;
    t.mc = variant == 1 ? 16 : 0;
    t.localTile = variant == 2;
    checkGemm(40, 70, 48, t);
    checkGemm(9, 64, 32, t, 2);
  }
}

TEST(TEGemm, BenchmarkShapesAtSmallK) {
  // gemmBenchmarkShapes()'s M x N (resnet18 convolutions as GEMM and FC, transformer) with K cut
  // to 13, 16 or 24 so the naive reference stays fast.
  const std::tuple<int64_t, int64_t, int64_t> shapes[] = {
      {64, 3136, 13}, {128, 784, 16}, {256, 196, 24}, {512, 49, 13}, {1, 1000, 16},
      {128, 256, 13}, {128, 1024, 16}, {128, 128, 24}, {1024, 1024, 3}};
  for (auto [M, N, K] : shapes)
    checkGemm(M, N, K, te::chooseGemmTiling(M, N, K));
}

TEST(TEGemm, TwoThreads) {
  checkGemm(100, 200, 300, te::chooseGemmTiling(100, 200, 300), 2);
  checkGemm(512, 49, 13, te::chooseGemmTiling(512, 49, 13), 2);
  checkGemm(3, 5, 7, te::chooseGemmTiling(3, 5, 7), 2);
}

TEST(TEGemm, MicroKernelIsGuardFreeFmaOnContiguousVectors) {
  te::GemmTiling t;
  t.mr = 8;
  t.nr = 32;
  t.packA = true;
  te::CompiledGemm g = te::buildDenseGemm(64, 96, 40, t);
  std::string s = text(g.func);
  EXPECT_EQ(g.func.name, "f32_gemm_64x96x40_8x32_packA_parallel");
  // The k loop holds mr fused multiply-adds on 32-lane vectors, on contiguous (ramp) indices:
  // no guard, no division, no gather left by the packed layout.
  size_t k = s.find("for %k in 0..40 {");
  ASSERT_NE(k, std::string::npos) << s;
  size_t end = s.find("\n            }\n", k);
  std::string body = s.substr(k, end - k);
  size_t fmas = 0;
  for (size_t p = body.find("= fma("); p != std::string::npos; p = body.find("= fma(", p + 1))
    ++fmas;
  EXPECT_EQ(fmas, 8u) << body;
  EXPECT_EQ(body.find("if "), std::string::npos) << body;
  // No division left: the packed A index (i / mr, i % mr) folded away once the rows were
  // unrolled, and the panel of packedB is the one packed inside the panel loop.
  EXPECT_FALSE(std::regex_search(body, std::regex(R"( [/%] )"))) << body;
  EXPECT_NE(body.find("C.packedA[%i.outer * 320 + %k * 8 + 7]"), std::string::npos) << body;
  EXPECT_NE(body.find("C.packedB[ramp(%k * 32, 1, 32)]"), std::string::npos) << body;
  EXPECT_NE(body.find("C.packedB[ramp("), std::string::npos) << body;
  EXPECT_NE(s.find("parallel for"), std::string::npos) << s;
  // 64 x 96 is a whole number of 8 x 32 tiles: the product is written straight into C.
  EXPECT_EQ(s.find("C.tiles"), std::string::npos) << s;
}

TEST(TEGemm, TileChooser) {
  // Whole tiles where a good one exists; the biggest register tile that fits 32 registers.
  te::GemmTiling t = te::chooseGemmTiling(1024, 1024, 1024, 16);
  EXPECT_EQ(t.mr, 8);
  EXPECT_EQ(t.nr, 32);
  t = te::chooseGemmTiling(1, 1000, 512, 16); // one row: no padding of M, B read in place
  EXPECT_EQ(t.mr, 1);
  EXPECT_FALSE(t.packB);
  EXPECT_TRUE(te::chooseGemmTiling(64, 64, 64, 16).packB);
  t = te::chooseGemmTiling(512, 49, 4608, 16);
  EXPECT_EQ((512 + t.mr - 1) / t.mr * t.mr, 512);
  t = te::chooseGemmTiling(64, 64, 64, 8); // AVX2: 8 lanes, 16 ymm registers
  EXPECT_EQ(t.nr % 8, 0);
  EXPECT_LE(t.mr * (t.nr / 8) + t.nr / 8 + 1, 16);
}

TEST(TEGemm, ContractMultiplyAdd) {
  auto f = loop::parseFunc("func @f(%A: f32[4], %B: f32[4]) {\n"
                           "  for %i in 0..4 {\n"
                           "    B[%i] = B[%i] + A[%i] * 2.0f\n"
                           "  }\n"
                           "}\n");
  std::string s = text(te::contractMultiplyAdd(f));
  EXPECT_NE(s.find("B[%i] = fma(A[%i], 2.0f, B[%i])"), std::string::npos) << s;
  // Integers are left alone.
  auto g = loop::parseFunc("func @g(%A: i64[4]) {\n"
                           "  for %i in 0..4 {\n"
                           "    A[%i] = A[%i] + %i * %i\n"
                           "  }\n"
                           "}\n");
  EXPECT_EQ(text(te::contractMultiplyAdd(g)), text(g));
}

TEST(TEGemm, MalformedInputsAreErrors) {
  auto A = te::placeholder({4, 5}, DType::f32, "A");
  auto B = te::placeholder({6, 7}, DType::f32, "B");
  try {
    te::denseGemm(A, B, te::GemmTiling{});
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("expected B to have 5 rows"), std::string::npos)
        << e.what();
  }
  auto H = te::placeholder({5, 7}, DType::f16, "H");
  try {
    te::denseGemm(A, H, te::GemmTiling{});
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("'H'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("expected an f32 matrix"), std::string::npos) << e.what();
  }
  te::GemmTiling bad;
  bad.mr = 0;
  EXPECT_THROW(te::denseGemm(A, te::placeholder({5, 7}, DType::f32, "B"), bad), Error);
}

// The simplifier rules the GEMM's index arithmetic relies on (added to
// lib/Loop/Transforms/Simplify.cpp's table with this GEMM): both sides on random values.
TEST(TEGemm, SimplifierRulesForTileIndices) {
  std::mt19937 rng(5);
  std::uniform_int_distribution<int64_t> xs(-1000, 1000), c2s(-40, 40), c1s(1, 64);
  loop::Var x("x", loop::Type::i64());
  for (int trial = 0; trial < 300; ++trial) {
    int64_t c1 = c1s(rng), c2 = c2s(rng), xv = xs(rng);
    loop::Expr sum = x * c1 + c2;
    loop::Env env{{x.get(), loop::Value::ofInt(loop::Type::i64(), xv)}};
    // (x * c1 + c2) / c1 -> x + c2 / c1 and (x * c1 + c2) % c1 -> c2 % c1 (floor semantics)
    for (loop::Expr e : {sum / c1, sum % c1}) {
      loop::Expr s = loop::simplify(e);
      EXPECT_EQ(loop::evaluate(e, env).i, loop::evaluate(s, env).i)
          << loop::printExpr(e) << " -> " << loop::printExpr(s) << " at x = " << xv;
      EXPECT_EQ(loop::printExpr(s).find(" / " + std::to_string(c1)), std::string::npos)
          << loop::printExpr(s);
    }
  }
  // ramp(x * c, 1, l) / broadcast(c) -> broadcast(x), % -> ramp(0, 1, l) for l <= c: lane t of
  // the left side is (x * c + t) / c, which is x for 0 <= t < c.
  for (int64_t c : {8, 16, 32}) {
    loop::Expr r = loop::ramp(x * c, 1, 16);
    std::string div = loop::printExpr(loop::simplify(r / loop::broadcast(loop::Expr(c), 16)));
    std::string mod = loop::printExpr(loop::simplify(r % loop::broadcast(loop::Expr(c), 16)));
    if (c >= 16) {
      EXPECT_EQ(div, "x16(%x)");
      EXPECT_EQ(mod, "ramp(0, 1, 16)");
    } else { // lanes cross a multiple of c: left alone
      EXPECT_NE(div, "x16(%x)");
    }
    for (int64_t xv : {-3, 0, 5})
      for (int64_t t = 0; t < std::min<int64_t>(c, 16); ++t) {
        loop::Env env{{x.get(), loop::Value::ofInt(loop::Type::i64(), xv)}};
        EXPECT_EQ(loop::evaluate((x * c + t) / c, env).i, xv);
        EXPECT_EQ(loop::evaluate((x * c + t) % c, env).i, t);
      }
  }
  // broadcast(c) + ramp(b, s) and ramp(b, s) - broadcast(c) stay ramps (one vector load).
  EXPECT_EQ(loop::printExpr(loop::simplify(loop::broadcast(x, 8) + loop::ramp(x * 2, 1, 8))),
            "ramp(%x + %x * 2, 1, 8)");
  EXPECT_EQ(loop::printExpr(loop::simplify(loop::ramp(x * 2, 1, 8) - loop::broadcast(x, 8))),
            "ramp(%x * 2 - %x, 1, 8)");
}
