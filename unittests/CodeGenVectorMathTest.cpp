//===- CodeGenVectorMathTest.cpp - the inline f32 exp of the LLVM emitter -----===//
//
// lib/CodeGen/LLVM/EmitLLVM.cpp emits exp (and sigmoid's exp) on f32 as straight-line code
// (emitExpF32) instead of one libm call per lane. These tests JIT exp and sigmoid over many
// values, vectorized (16 lanes, tail included) and scalar, and compare with std::exp in ulps,
// plus the special values (+-inf, NaN, overflow, underflow, subnormal results); the same for
// the inline f32 tanh and erf (rational approximations) against std::tanh / std::erf. Also the
// emitter's folding of vector indices made of ramps divided and taken modulo constants (what a
// vectorized Reshape/Transpose reads) into contiguous accesses, checked against plain C++ on
// shapes where it applies and where it must not.
//
//===----------------------------------------------------------------------===//
#include "tessel/TE/Build.h"
#include "tessel/TE/Schedule.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <limits>
#include <random>

using namespace tessel;

namespace {

/// Distance in units in the last place between two finite floats of the same sign or zero.
int64_t ulps(float a, float b) {
  int32_t ia, ib;
  std::memcpy(&ia, &a, 4);
  std::memcpy(&ib, &b, 4);
  if (ia < 0)
    ia = int32_t(0x80000000u - uint32_t(ia));
  if (ib < 0)
    ib = int32_t(0x80000000u - uint32_t(ib));
  return std::llabs(int64_t(ia) - int64_t(ib));
}

/// out[i] = f(in[i]) over n floats, vectorized by 16 (the tail peeled) or scalar.
BuiltModule buildMap(int64_t n, bool vectorize, loop::Expr (*f)(loop::Expr)) {
  te::Tensor in = te::placeholder({n}, DType::f32, "in");
  te::Tensor out = te::compute({n}, [&](loop::Var i) { return f(in(i)); }, "out");
  te::Schedule s = te::create_schedule(out);
  if (vectorize)
    s[out].vectorize(s[out].split(out.axis(0), 16).second);
  return tessel::build(s, {in, out}, "llvm", vectorize ? "map_vec" : "map_scalar");
}

loop::Expr expOf(loop::Expr x) { return loop::exp(x); }
loop::Expr sigmoidOf(loop::Expr x) { return loop::sigmoid(x); }
loop::Expr tanhOf(loop::Expr x) { return loop::tanh(x); }
loop::Expr erfOf(loop::Expr x) { return loop::erf(x); }

} // namespace

TEST(CodeGenVectorMath, ExpF32WithinTwoUlpsOfStdExp) {
  // Dense over [-87, 88] (normal results), plus random values over the same range.
  std::vector<float> x;
  for (double v = -87.0; v <= 88.0; v += 0.00731)
    x.push_back(float(v));
  std::mt19937 rng(5);
  std::uniform_real_distribution<float> u(-87.0f, 88.0f);
  for (int i = 0; i < 20000; ++i)
    x.push_back(u(rng));
  for (float v : {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 1e-8f, -1e-8f, 0.34657359f, -0.34657359f})
    x.push_back(v);
  x.push_back(5.0f); // a length that is no multiple of 16: a scalar tail too
  const int64_t n = int64_t(x.size());
  for (bool vec : {true, false}) {
    BuiltModule f = buildMap(n, vec, expOf);
    std::vector<float> y(x.size(), -1.0f);
    f({x.data(), y.data()});
    int64_t worst = 0;
    float worstX = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      float want = float(std::exp(double(x[i])));
      int64_t d = ulps(y[i], want);
      if (d > worst) {
        worst = d;
        worstX = x[i];
      }
    }
    EXPECT_LE(worst, 2) << (vec ? "vector" : "scalar") << ": worst at x = " << worstX;
  }
}

TEST(CodeGenVectorMath, ExpF32SpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  const float nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x = {inf, -inf, nan, 89.0f, 100.0f, -104.0f, -200.0f, -88.0f, -95.0f,
                          88.7f, -87.5f, 0.0f, 1.0f, 2.0f, -3.0f, 10.0f};
  BuiltModule f = buildMap(int64_t(x.size()), true, expOf);
  std::vector<float> y(x.size());
  f({x.data(), y.data()});
  EXPECT_EQ(y[0], inf);
  EXPECT_EQ(y[1], 0.0f);
  EXPECT_TRUE(std::isnan(y[2]));
  EXPECT_EQ(y[3], inf); // overflow
  EXPECT_EQ(y[4], inf);
  EXPECT_EQ(y[5], 0.0f); // underflow
  EXPECT_EQ(y[6], 0.0f);
  for (size_t i : {7u, 8u, 9u, 10u}) { // near overflow, and subnormal results
    float want = float(std::exp(double(x[i])));
    EXPECT_NEAR(y[i], want, std::fabs(want) * 1e-6 + 1e-44) << "x = " << x[i];
  }
  EXPECT_EQ(y[11], 1.0f);
}

TEST(CodeGenVectorMath, SigmoidF32UsesTheSameExp) {
  std::vector<float> x;
  for (double v = -30.0; v <= 30.0; v += 0.0123)
    x.push_back(float(v));
  BuiltModule f = buildMap(int64_t(x.size()), true, sigmoidOf);
  std::vector<float> y(x.size());
  f({x.data(), y.data()});
  for (size_t i = 0; i < x.size(); ++i) {
    double want = 1.0 / (1.0 + std::exp(-double(x[i])));
    EXPECT_NEAR(y[i], want, 1e-6 * want + 1e-30) << "x = " << x[i];
  }
}

TEST(CodeGenVectorMath, ReshapeIndicesFoldOnlyWhereExact) {
  // out[i, j] = in[(i * C + j) / D % M * S + (i * C + j) % D + off], j vectorized by 16 (the
  // tail peeled): with C and D multiples of 16 each vector of j stays within one row of D
  // (a contiguous load); otherwise lanes cross rows and must gather.
  struct Shape {
    int64_t rows, C, D, M, S, off;
  };
  for (const Shape &sh : {Shape{8, 256, 256, 128, 768, 256}, Shape{6, 64, 32, 3, 48, 16},
                          Shape{5, 24, 40, 7, 41, 3}, Shape{4, 48, 16, 5, 20, 0},
                          Shape{3, 40, 24, 4, 30, 1}}) {
    SCOPED_TRACE("C " + std::to_string(sh.C) + " D " + std::to_string(sh.D));
    const int64_t nIn = (sh.M - 1) * sh.S + sh.D + sh.off;
    te::Tensor in = te::placeholder({nIn}, DType::f32, "in");
    te::Tensor out = te::compute(
        {sh.rows, sh.C},
        [&](loop::Var i, loop::Var j) {
          loop::Expr flat = i * sh.C + j;
          return in(flat / sh.D % sh.M * sh.S + flat % sh.D + sh.off);
        },
        "out");
    te::Schedule s = te::create_schedule(out);
    s[out].vectorize(s[out].split(out.axis(1), 16).second);
    BuiltModule f = tessel::build(s, {in, out}, "llvm", "reshape_copy");
    std::vector<float> x(static_cast<size_t>(nIn)), y(static_cast<size_t>(sh.rows * sh.C), -1.0f);
    for (int64_t k = 0; k < nIn; ++k)
      x[size_t(k)] = float(k) * 0.5f - 3.0f;
    f({x.data(), y.data()});
    for (int64_t i = 0; i < sh.rows; ++i)
      for (int64_t j = 0; j < sh.C; ++j) {
        const int64_t flat = i * sh.C + j;
        const float want = x[size_t(flat / sh.D % sh.M * sh.S + flat % sh.D + sh.off)];
        ASSERT_EQ(y[size_t(flat)], want) << "out[" << i << ", " << j << "]";
      }
  }
}

TEST(CodeGenVectorMath, TransposeIndicesFoldWhereTheStrideIsAMultipleOfTheDivisor) {
  // out[r, j] = in[flat / D % M * S + flat % D + off] with flat = j * K + r and j vectorized by
  // 16 (a transpose: the vector axis crosses rows). With K a multiple of D each lane's quotient
  // is the first lane's plus a multiple of K / D and the remainders are all equal (a strided
  // ramp and a broadcast instead of per-lane division); other K must give the same values too.
  struct Shape {
    int64_t rows, cols, K, D, M, S, off;
  };
  for (const Shape &sh : {Shape{256, 128, 256, 256, 128, 768, 256}, Shape{12, 48, 24, 12, 5, 30, 7},
                          Shape{10, 32, 20, 8, 7, 9, 1}, Shape{9, 40, 9, 9, 50, 3, 0}}) {
    SCOPED_TRACE("K " + std::to_string(sh.K) + " D " + std::to_string(sh.D));
    const int64_t nIn = (sh.M - 1) * sh.S + sh.D + sh.off;
    te::Tensor in = te::placeholder({nIn}, DType::f32, "in");
    te::Tensor out = te::compute(
        {sh.rows, sh.cols},
        [&](loop::Var r, loop::Var j) {
          loop::Expr flat = j * sh.K + r;
          return in(flat / sh.D % sh.M * sh.S + flat % sh.D + sh.off);
        },
        "out");
    te::Schedule s = te::create_schedule(out);
    s[out].vectorize(s[out].split(out.axis(1), 16).second);
    BuiltModule f = tessel::build(s, {in, out}, "llvm", "transpose_copy");
    std::vector<float> x(static_cast<size_t>(nIn)), y(static_cast<size_t>(sh.rows * sh.cols), -1.0f);
    for (int64_t k = 0; k < nIn; ++k)
      x[size_t(k)] = float(k) * 0.25f - 5.0f;
    f({x.data(), y.data()});
    for (int64_t r = 0; r < sh.rows; ++r)
      for (int64_t j = 0; j < sh.cols; ++j) {
        const int64_t flat = j * sh.K + r;
        const float want = x[size_t(flat / sh.D % sh.M * sh.S + flat % sh.D + sh.off)];
        ASSERT_EQ(y[size_t(r * sh.cols + j)], want) << "out[" << r << ", " << j << "]";
      }
  }
}

namespace {

/// `f` compiled as a map over x, vector and scalar: the largest distance in ulps from `ref`
/// (computed in double) is at most maxUlps.
void expectWithinUlps(const std::vector<float> &x, loop::Expr (*f)(loop::Expr),
                      double (*ref)(double), int64_t maxUlps) {
  for (bool vec : {true, false}) {
    BuiltModule m = buildMap(int64_t(x.size()), vec, f);
    std::vector<float> y(x.size(), -2.0f);
    m({const_cast<float *>(x.data()), y.data()});
    int64_t worst = 0;
    float worstX = 0;
    for (size_t i = 0; i < x.size(); ++i) {
      int64_t d = ulps(y[i], float(ref(double(x[i]))));
      if (d > worst) {
        worst = d;
        worstX = x[i];
      }
    }
    EXPECT_LE(worst, maxUlps) << (vec ? "vector" : "scalar") << ": worst at x = " << worstX;
  }
}

/// `f` compiled as a map over the special values sx, vector and scalar: the outputs.
std::vector<std::vector<float>> specialOutputs(const std::vector<float> &sx,
                                               loop::Expr (*f)(loop::Expr)) {
  std::vector<std::vector<float>> out;
  for (bool vec : {true, false}) {
    BuiltModule m = buildMap(int64_t(sx.size()), vec, f);
    std::vector<float> y(sx.size(), -2.0f);
    m({const_cast<float *>(sx.data()), y.data()});
    out.push_back(std::move(y));
  }
  return out;
}

} // namespace

TEST(CodeGenVectorMath, TanhF32WithinFewUlpsOfStdTanh) {
  // Dense over [-10, 10] (both sides of the clamp at 7.9), small values around the x = 4e-4
  // switch, random values; then signed zeros, infinities and NaN.
  std::vector<float> x;
  for (double v = -10.0; v <= 10.0; v += 0.000731)
    x.push_back(float(v));
  for (double v = 1e-6; v < 2e-3; v *= 1.01) {
    x.push_back(float(v));
    x.push_back(float(-v));
  }
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(-9.0f, 9.0f);
  for (int i = 0; i < 20000; ++i)
    x.push_back(u(rng));
  x.push_back(0.3f); // a length that is no multiple of 16: a scalar tail too
  expectWithinUlps(x, tanhOf, [](double v) { return std::tanh(v); }, 4);
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> sx = {0.0f, -0.0f, inf, -inf, std::nanf(""), 100.0f, -100.0f, 1e-30f};
  for (const std::vector<float> &y : specialOutputs(sx, tanhOf)) {
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_FALSE(std::signbit(y[0]));
    EXPECT_EQ(y[1], 0.0f);
    EXPECT_TRUE(std::signbit(y[1]));
    EXPECT_EQ(y[2], 1.0f);
    EXPECT_EQ(y[3], -1.0f);
    EXPECT_TRUE(std::isnan(y[4]));
    EXPECT_EQ(y[5], 1.0f);
    EXPECT_EQ(y[6], -1.0f);
    EXPECT_EQ(y[7], 1e-30f);
  }
}

TEST(CodeGenVectorMath, ErfF32WithinFewUlpsOfStdErf) {
  // Dense over [-5, 5] (both sides of the clamp at 4), tiny values, random values; then signed
  // zeros, infinities and NaN.
  std::vector<float> x;
  for (double v = -5.0; v <= 5.0; v += 0.000377)
    x.push_back(float(v));
  for (double v = 1e-30; v < 1e-2; v *= 1.1) {
    x.push_back(float(v));
    x.push_back(float(-v));
  }
  std::mt19937 rng(13);
  std::uniform_real_distribution<float> u(-4.5f, 4.5f);
  for (int i = 0; i < 20000; ++i)
    x.push_back(u(rng));
  x.push_back(0.7f); // a length that is no multiple of 16: a scalar tail too
  // 5 ulp measured (near x = 3.16, where erf is 1 - 1e-5 and an ulp is 6e-8).
  expectWithinUlps(x, erfOf, [](double v) { return std::erf(v); }, 6);
  const float inf = std::numeric_limits<float>::infinity();
  std::vector<float> sx = {0.0f, -0.0f, inf, -inf, std::nanf(""), 100.0f, -100.0f};
  for (const std::vector<float> &y : specialOutputs(sx, erfOf)) {
    EXPECT_EQ(y[0], 0.0f);
    EXPECT_FALSE(std::signbit(y[0]));
    EXPECT_EQ(y[1], 0.0f);
    EXPECT_TRUE(std::signbit(y[1]));
    EXPECT_EQ(y[2], 1.0f);
    EXPECT_EQ(y[3], -1.0f);
    EXPECT_TRUE(std::isnan(y[4]));
    EXPECT_EQ(y[5], 1.0f);
    EXPECT_EQ(y[6], -1.0f);
  }
}
