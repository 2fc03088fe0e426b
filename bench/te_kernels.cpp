//===- te_kernels.cpp - time three TE kernels built by tessel::build -------===//
//
// A quick timing loop (no Google Benchmark) over three scheduled TE kernels of the kernel suite
// (unittests/TEKernelsTest.cpp), JIT-compiled for the host:
//
//   add      C[i] = A[i] + B[i], 1M f32 elements          -> GB/s (12 bytes per element)
//   softmax  128 x 1024 f32, rows in parallel             -> GB/s (8 bytes per element)
//   conv2d   64 -> 64 channels, 56 x 56, 3x3, padding 1   -> GFLOP/s (2 flops per MAC)
//
// Usage: te-kernels [--reps N] [--ir] [--obj DIR]
//   --ir       print each kernel's loop IR after the loop pipeline (what the emitter sees)
//   --obj DIR  also write each kernel as a host object file DIR/NAME.o (for llvm-objdump -d)
// Each kernel runs once to warm up and is checked against a naive loop, then the minimum and
// median of N timed calls are printed. Parallel loops use the runtime's thread pool
// (TESSEL_NUM_THREADS sets its size).
//
//===----------------------------------------------------------------------===//
#include "tessel/Loop/Text.h"
#include "tessel/TE/Build.h"
#include "TestUtils.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <random>
#include <string>
#include <vector>

using namespace tessel;
using namespace tessel::te;

namespace {

bool allCorrect = true; ///< false once a kernel's result differs from its naive loop

void check(const char *kernel, double err, double tol) {
  if (err > tol) {
    std::fprintf(stderr, "error: %s: max error %.3g against the naive loop, expected <= %.3g\n",
                 kernel, err, tol);
    allCorrect = false;
  }
}

struct Options {
  int reps = 50;
  bool printIR = false;
  std::string objDir;
};

/// Times `call` (reps runs after one warm-up) and returns {min, median} seconds.
std::pair<double, double> timeIt(const std::function<void()> &call, int reps) {
  call();
  std::vector<double> t;
  for (int r = 0; r < reps; ++r) {
    auto t0 = std::chrono::steady_clock::now();
    call();
    t.push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  }
  std::sort(t.begin(), t.end());
  return {t.front(), t[t.size() / 2]};
}

void prepare(const Options &o, const Schedule &s, const std::vector<Tensor> &args,
             const std::string &name) {
  if (o.printIR)
    std::printf("--- %s: loop IR after the loop pipeline ---\n%s\n", name.c_str(),
                loop::printFunc(lowerForBuild(s, args, name)).c_str());
  if (!o.objDir.empty())
    tessel::buildObject(s, args, "llvm", o.objDir + "/" + name + ".o", name);
}

double maxRelErr(const std::vector<float> &got, const std::vector<double> &want) {
  double e = 0;
  for (size_t i = 0; i < got.size(); ++i)
    e = std::max(e, std::fabs(got[i] - want[i]) / (1e-3 + std::fabs(want[i])));
  return e;
}

void benchAdd(const Options &o) {
  const int64_t n = 1 << 20;
  auto A = te::placeholder({n}, DType::f32, "A"), B = te::placeholder({n}, DType::f32, "B");
  auto C = te::compute({n}, [&](Var i) { return A(i) + B(i); }, "C");
  auto s = te::create_schedule(C);
  auto [xo, xi] = s[C].split(C.axis(0), 16);
  s[C].vectorize(xi);
  auto [xoo, xoi] = s[C].split(xo, 1024);
  s[C].parallel(xoo);
  prepare(o, s, {A, B, C}, "add_1m");
  auto f = tessel::build(s, {A, B, C}, "llvm", "add_1m");
  auto a = test::randomFloats(size_t(n), 1), b = test::randomFloats(size_t(n), 2);
  std::vector<float> c(static_cast<size_t>(n));
  auto [tmin, tmed] = timeIt([&] { f({a.data(), b.data(), c.data()}); }, o.reps);
  std::vector<double> want(static_cast<size_t>(n));
  for (size_t i = 0; i < want.size(); ++i)
    want[i] = double(a[i] + b[i]);
  double bytes = 12.0 * double(n);
  std::printf("add      n=%lld: min %.1f us, median %.1f us, %.1f GB/s (min), max rel err %.2g\n",
              (long long)n, tmin * 1e6, tmed * 1e6, bytes / tmin * 1e-9, maxRelErr(c, want));
  check("add", maxRelErr(c, want), 0);
}

void benchSoftmax(const Options &o) {
  const int64_t rows = 128, n = 1024;
  auto X = te::placeholder({rows, n}, DType::f32, "X");
  auto k1 = te::reduce_axis({0, n}, "k");
  auto M = te::compute({rows}, [&](Var i) { return te::max(X(i, k1), {k1}); }, "M");
  auto E = te::compute({rows, n}, [&](Var i, Var j) { return loop::exp(X(i, j) - M(i)); }, "E");
  auto k2 = te::reduce_axis({0, n}, "k");
  auto S = te::compute({rows}, [&](Var i) { return te::sum(E(i, k2), {k2}); }, "S");
  auto Y = te::compute({rows, n}, [&](Var i, Var j) { return E(i, j) / S(i); }, "Y");
  auto s = te::create_schedule(Y);
  s[M].compute_at(s[Y], Y.axis(0));
  s[E].compute_at(s[Y], Y.axis(0));
  s[S].compute_at(s[Y], Y.axis(0));
  s[Y].parallel(Y.axis(0));
  auto [eo, ei] = s[E].split(E.axis(1), 8);
  s[E].vectorize(ei);
  auto [yo, yi] = s[Y].split(Y.axis(1), 8);
  s[Y].vectorize(yi);
  prepare(o, s, {X, Y}, "softmax_128x1024");
  auto f = tessel::build(s, {X, Y}, "llvm", "softmax_128x1024");
  auto x = test::randomFloats(size_t(rows * n), 3);
  std::vector<float> y(x.size());
  auto [tmin, tmed] = timeIt([&] { f({x.data(), y.data()}); }, o.reps);
  std::vector<double> want(x.size());
  for (int64_t i = 0; i < rows; ++i) {
    double m = -INFINITY, sum = 0;
    for (int64_t j = 0; j < n; ++j)
      m = std::max(m, double(x[size_t(i * n + j)]));
    for (int64_t j = 0; j < n; ++j)
      sum += std::exp(double(x[size_t(i * n + j)]) - m);
    for (int64_t j = 0; j < n; ++j)
      want[size_t(i * n + j)] = std::exp(double(x[size_t(i * n + j)]) - m) / sum;
  }
  double bytes = 8.0 * double(rows * n);
  std::printf("softmax  %lldx%lld: min %.1f us, median %.1f us, %.1f GB/s (min), max rel err %.2g\n",
              (long long)rows, (long long)n, tmin * 1e6, tmed * 1e6, bytes / tmin * 1e-9,
              maxRelErr(y, want));
  check("softmax", maxRelErr(y, want), 1e-4);
}

void benchConv2d(const Options &o) {
  const int64_t ci = 64, co = 64, hw = 56, kh = 3;
  auto I = te::placeholder({ci, hw, hw}, DType::f32, "I");
  auto W = te::placeholder({co, ci, kh, kh}, DType::f32, "W");
  auto P = te::compute({ci, hw + 2, hw + 2}, [&](Var c, Var y, Var x) {
    Expr inside = y >= 1 && y < hw + 1 && x >= 1 && x < hw + 1;
    Expr yy = loop::max(loop::min(y - 1, hw - 1), 0), xx = loop::max(loop::min(x - 1, hw - 1), 0);
    return te::if_then_else(inside, I(c, yy, xx), 0.0f);
  }, "P");
  auto rc = te::reduce_axis({0, ci}, "rc"), ry = te::reduce_axis({0, kh}, "ry"),
       rx = te::reduce_axis({0, kh}, "rx");
  auto O = te::compute({co, hw, hw}, [&](Var c, Var y, Var x) {
    return te::sum(P(rc, y + ry, x + rx) * W(c, rc, ry, rx), {rc, ry, rx});
  }, "O");
  auto s = te::create_schedule(O);
  // The padded input computed whole (once, 0.8 MB) rather than inlined (a select per MAC).
  auto [xo, xi] = s[O].split(O.axis(2), 8); // 56 = 7 * 8: no tail
  s[O].reorder({O.axis(0), O.axis(1), xo, rc, ry, rx, xi});
  s[O].unroll(ry);
  s[O].unroll(rx);
  s[O].vectorize(xi);
  s[O].parallel(O.axis(0));
  prepare(o, s, {I, W, O}, "conv2d_64x56x56_3x3");
  auto f = tessel::build(s, {I, W, O}, "llvm", "conv2d_64x56x56_3x3");
  auto in = test::randomFloats(size_t(ci * hw * hw), 4), w = test::randomFloats(size_t(co * ci * kh * kh), 5);
  std::vector<float> out(static_cast<size_t>(co * hw * hw));
  auto [tmin, tmed] = timeIt([&] { f({in.data(), w.data(), out.data()}); }, std::max(3, o.reps / 10));
  // Check one output channel against a naive loop (all 64 would take a while).
  double err = 0;
  for (int64_t c = 0; c < co; c += 21)
    for (int64_t y = 0; y < hw; ++y)
      for (int64_t x = 0; x < hw; ++x) {
        double acc = 0;
        for (int64_t r = 0; r < ci; ++r)
          for (int64_t a = 0; a < kh; ++a)
            for (int64_t b = 0; b < kh; ++b) {
              int64_t yy = y + a - 1, xx = x + b - 1;
              if (yy >= 0 && yy < hw && xx >= 0 && xx < hw)
                acc += double(in[size_t((r * hw + yy) * hw + xx)]) *
                       double(w[size_t(((c * ci + r) * kh + a) * kh + b)]);
            }
        double got = out[size_t((c * hw + y) * hw + x)];
        err = std::max(err, std::fabs(got - acc) / (1.0 + std::fabs(acc)));
      }
  double flops = 2.0 * double(co * hw * hw * ci * kh * kh);
  std::printf("conv2d   %lld->%lld ch %lldx%lld 3x3 pad 1: min %.2f ms, median %.2f ms, %.1f "
              "GFLOP/s (min), max err %.2g\n",
              (long long)ci, (long long)co, (long long)hw, (long long)hw, tmin * 1e3, tmed * 1e3,
              flops / tmin * 1e-9, err);
  check("conv2d", err, 1e-4);
}

} // namespace

int main(int argc, char **argv) {
  Options o;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--reps" && i + 1 < argc)
      o.reps = std::max(1, std::atoi(argv[++i]));
    else if (a == "--ir")
      o.printIR = true;
    else if (a == "--obj" && i + 1 < argc)
      o.objDir = argv[++i];
    else {
      std::fprintf(stderr, "usage: te-kernels [--reps N] [--ir] [--obj DIR]\n");
      return 2;
    }
  }
  try {
    benchAdd(o);
    benchSoftmax(o);
    benchConv2d(o);
  } catch (const Error &e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return allCorrect ? 0 : 1;
}
