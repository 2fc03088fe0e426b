//===- CodeGenVectorMathTest.cpp - the inline f32 exp of the LLVM emitter -----===//
//
// lib/CodeGen/LLVM/EmitLLVM.cpp emits exp (and sigmoid's exp) on f32 as straight-line code
// (emitExpF32) instead of one libm call per lane. These tests JIT exp and sigmoid over many
// values, vectorized (16 lanes, tail included) and scalar, and compare with std::exp in ulps,
// plus the special values (+-inf, NaN, overflow, underflow, subnormal results).
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
