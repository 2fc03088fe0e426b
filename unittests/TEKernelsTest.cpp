//===- TEKernelsTest.cpp - the kernel suite: TE kernels vs naive C++ ------===//
//
// Issue 4's kernel suite: the seed example and 35 other kernels (elementwise, broadcast, casts,
// reductions, softmax, layernorm, matmul, conv2d, transpose, pooling, concat, pad, gather), each
// a TE definition + a realistic schedule (splits that do NOT divide the extent so vector tails
// occur, vectorize, parallel, unroll, compute_at / compute_inline, cache_write) + a naive C++
// reference. Every kernel is JIT-built (tessel::build: lower -> loop pipeline -> LLVM O3) and run
// at 3+ sizes on fresh seeded random inputs (never zeros), once with its schedule
// (TEKernels/KernelTest.Scheduled/NAME) and once with the default schedule
// (TEKernels/KernelTest.Default/NAME), so a schedule bug is told apart from a definition bug.
// Tolerances are per kernel: exact for data movement, casts, selects and min/max; relative
// 1e-5 for elementwise math; looser for sums (stated with each kernel).
//
// The cross-target smoke test (issue 4 item 6) emits the seed and a vectorized kernel with
// tessel::buildObject for "aarch64" (ELF e_machine 183, the kernel's symbol, NEON vector
// instructions when llvm-objdump is available) and for "x86-64" (e_machine 62).
//
//===----------------------------------------------------------------------===//
#include "tessel/Loop/Text.h"
#include "tessel/TE/Build.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <random>
#include <regex>
#include <sstream>
#include <string>
#include <vector>

#include <unistd.h>

using namespace tessel;
using namespace tessel::te;

namespace {

//===----------------------------------------------------------------------===//
// Harness
//===----------------------------------------------------------------------===//

/// A host buffer of f32 or i32 elements.
struct HostBuf {
  DType dtype = DType::f32;
  std::vector<float> f;
  std::vector<int32_t> i;
  size_t size() const { return dtype == DType::i32 ? i.size() : f.size(); }
  double at(size_t k) const { return dtype == DType::i32 ? double(i[k]) : double(f[k]); }
  void *data() { return dtype == DType::i32 ? static_cast<void *>(i.data()) : f.data(); }
};

/// One kernel instance at one size: its arguments and the tensors its schedule names.
struct Def {
  std::vector<Tensor> inputs;                 ///< placeholders, in argument order
  Tensor out;                                 ///< the output (the last buffer argument)
  std::map<std::string, Tensor> t;            ///< intermediate stages, by name
  std::vector<std::pair<std::string, int64_t>> scalars; ///< shape Vars, in parameter order
  std::map<std::string, std::pair<int32_t, int32_t>> intRange; ///< i32 inputs: [lo, hi)
  const Tensor &operator[](const std::string &name) const { return t.at(name); }
};

using Inputs = std::vector<HostBuf>;
using Reference = std::function<std::vector<double>(int64_t n, const Inputs &in)>;

struct Kernel {
  std::string name;
  std::vector<int64_t> sizes;
  double rtol, atol; ///< |got - want| <= atol + rtol * |want|; both 0: exact
  std::function<Def(int64_t n)> define;
  std::function<void(Schedule &, const Def &)> schedule;
  Reference reference;
};

int64_t extentOf(const Expr &e, const Def &d) {
  if (const int64_t *c = loop::asConstInt(e))
    return *c;
  if (const auto *v = e.as<loop::VarNode>())
    for (const auto &[name, value] : d.scalars)
      if (name == v->name)
        return value;
  ADD_FAILURE() << "shape extent is neither a constant nor a scalar of the kernel";
  return 0;
}

size_t numel(const Tensor &t, const Def &d) {
  size_t n = 1;
  for (const Expr &e : t.shape())
    n *= size_t(extentOf(e, d));
  return n;
}

HostBuf randomInput(const Tensor &t, const Def &d, std::mt19937 &rng) {
  HostBuf b;
  b.dtype = t.dtype();
  size_t n = numel(t, d);
  if (b.dtype == DType::i32) {
    auto it = d.intRange.find(t.name());
    auto [lo, hi] = it != d.intRange.end() ? it->second : std::pair<int32_t, int32_t>{-1000, 1000};
    std::uniform_int_distribution<int32_t> dist(lo, hi - 1);
    b.i.resize(n);
    for (auto &x : b.i)
      x = dist(rng);
  } else {
    // Never zero: magnitudes in [0.05, 2], random signs.
    std::uniform_real_distribution<float> mag(0.05f, 2.0f);
    std::bernoulli_distribution sign(0.5);
    b.f.resize(n);
    for (auto &x : b.f)
      x = sign(rng) ? mag(rng) : -mag(rng);
  }
  return b;
}

/// Builds kernel `k` at size n (scheduled or default), runs it and compares with the reference.
void runKernel(const Kernel &k, int64_t n, bool scheduled) {
  std::string what = k.name + (scheduled ? " (scheduled)" : " (default schedule)") +
                     " n=" + std::to_string(n);
  Def d = k.define(n);
  Schedule s = te::create_schedule(d.out);
  if (scheduled)
    k.schedule(s, d);
  std::vector<Tensor> args = d.inputs;
  args.push_back(d.out);
  BuiltModule f;
  try {
    f = tessel::build(s, args, "llvm", "kernel_" + k.name);
  } catch (const Error &e) {
    std::string lowered;
    try {
      lowered = loop::printFunc(te::lower(s, args, "kernel_" + k.name));
    } catch (const Error &e2) {
      lowered = std::string("(te::lower failed too: ") + e2.what() + ")";
    }
    FAIL() << what << ": build failed: " << e.what() << "\nlowered loop IR:\n" << lowered;
  }
  std::mt19937 rng(uint32_t(std::hash<std::string>{}(k.name)) ^ uint32_t(n * 7919));
  Inputs in;
  for (const Tensor &t : d.inputs)
    in.push_back(randomInput(t, d, rng));
  HostBuf out;
  out.dtype = d.out.dtype();
  size_t outN = numel(d.out, d);
  // A sentinel that no kernel produces, so an element left unwritten fails.
  if (out.dtype == DType::i32)
    out.i.assign(outN, std::numeric_limits<int32_t>::min());
  else
    out.f.assign(outN, std::numeric_limits<float>::quiet_NaN());
  std::vector<RuntimeArg> callArgs;
  for (HostBuf &b : in)
    callArgs.emplace_back(b.data());
  callArgs.emplace_back(out.data());
  for (const auto &[name, value] : d.scalars)
    callArgs.emplace_back(value);
  // A vectorize mark must give vector code (a stride-1 or strided ramp) once the size has at
  // least one full vector: loop partition falls back to scalar code only for an all-tail loop.
  bool marksVector = false;
  for (const Stage &st : s.stages())
    for (const auto &[var, kind] : st->forKinds)
      marksVector |= kind == loop::ForKind::Vectorized;
  if (marksVector && n == k.sizes.back())
    EXPECT_NE(loop::printFunc(f.loweredFunc()).find("ramp("), std::string::npos)
        << what << ": vectorized loops left no vector code:\n"
        << loop::printFunc(f.loweredFunc());
  f.call(callArgs);
  std::vector<double> want = k.reference(n, in);
  ASSERT_EQ(want.size(), outN) << what << ": reference size";
  size_t bad = 0;
  for (size_t i = 0; i < outN; ++i) {
    double got = out.at(i), w = want[i];
    bool ok = k.rtol == 0 && k.atol == 0 ? got == w
                                         : std::fabs(got - w) <= k.atol + k.rtol * std::fabs(w);
    if (!ok && ++bad <= 5)
      ADD_FAILURE() << what << ": element " << i << " is " << got << ", expected " << w
                    << " (rtol " << k.rtol << ", atol " << k.atol << ")";
  }
  EXPECT_EQ(bad, 0u) << what << ": " << bad << " of " << outN << " elements differ";
}

//===----------------------------------------------------------------------===//
// Definition helpers
//===----------------------------------------------------------------------===//

Tensor f32(std::vector<Expr> shape, const std::string &name) {
  return te::placeholder(std::move(shape), DType::f32, name);
}

/// Splits `ax` of `st` by `factor` and vectorizes the inner loop; returns the outer loop.
IterVar vecSplit(Stage st, const IterVar &ax, int64_t factor) {
  auto [o, i] = st.split(ax, factor);
  st.vectorize(i);
  return o;
}

/// An elementwise kernel on a 1-D f32 tensor of n elements.
Kernel unary(const std::string &name, std::function<Expr(Expr)> op, std::function<double(double)> ref,
             double rtol, double atol, int64_t vec, bool parallelOuter) {
  Kernel k;
  k.name = name;
  k.sizes = {1, 7, 16, 33, 1000};
  k.rtol = rtol;
  k.atol = atol;
  k.define = [op](int64_t n) {
    Def d;
    auto X = f32({n}, "X");
    d.inputs = {X};
    d.out = te::compute({n}, [&](Var i) { return op(X(i)); }, "Y");
    return d;
  };
  k.schedule = [vec, parallelOuter](Schedule &s, const Def &d) {
    IterVar o = vecSplit(s[d.out], d.out.axis(0), vec);
    if (parallelOuter)
      s[d.out].parallel(o);
  };
  k.reference = [ref](int64_t, const Inputs &in) {
    std::vector<double> r(in[0].size());
    for (size_t i = 0; i < r.size(); ++i)
      r[i] = ref(in[0].at(i));
    return r;
  };
  return k;
}

/// A reduction over the last axis ([rows, n] -> [rows]) or over axis 0 ([n, cols] -> [cols]).
Kernel reduction(const std::string &name, const std::string &op, bool lastAxis) {
  Kernel k;
  k.name = name;
  k.sizes = {1, 7, 33, 100};
  bool isSum = op == "sum";
  k.rtol = isSum ? 1e-5 : 0;
  k.atol = isSum ? 1e-5 : 0; // scaled by n below: float sums of n terms |x| <= 2
  const int64_t other = lastAxis ? 6 : 37;
  k.define = [op, lastAxis, other](int64_t n) {
    Def d;
    auto X = lastAxis ? f32({other, n}, "X") : f32({n, other}, "X");
    auto r = te::reduce_axis({0, n}, "r");
    auto red = [&](Expr e) {
      return op == "sum" ? te::sum(e, {r}) : op == "max" ? te::max(e, {r}) : te::min(e, {r});
    };
    d.inputs = {X};
    d.out = te::compute({other}, [&](Var i) { return lastAxis ? red(X(i, r)) : red(X(r, i)); }, "R");
    return d;
  };
  k.schedule = [lastAxis](Schedule &s, const Def &d) {
    Stage st = s[d.out];
    if (lastAxis) {
      // Rows in parallel; the reduction split by 4 (tails) with its inner loop unrolled.
      st.parallel(d.out.axis(0));
      auto [ro, ri] = st.split(d.out.reduceAxis(0), 4);
      st.unroll(ri);
    } else {
      // Columns vectorized by 8 (37 leaves a tail of 5) inside the reduction loop.
      auto [jo, ji] = st.split(d.out.axis(0), 8);
      st.reorder({jo, d.out.reduceAxis(0), ji});
      st.vectorize(ji);
    }
  };
  k.reference = [op, lastAxis, other](int64_t n, const Inputs &in) {
    std::vector<double> r(static_cast<size_t>(other));
    for (int64_t i = 0; i < other; ++i) {
      double acc = op == "sum" ? 0 : op == "max" ? -INFINITY : INFINITY;
      for (int64_t j = 0; j < n; ++j) {
        double x = lastAxis ? in[0].at(size_t(i * n + j)) : in[0].at(size_t(j * other + i));
        acc = op == "sum" ? acc + x : op == "max" ? std::max(acc, x) : std::min(acc, x);
      }
      r[size_t(i)] = acc;
    }
    return r;
  };
  return k;
}

/// Clamps an index expression into [0, hi - 1] (select evaluates both sides, so the index of a
/// load in the branch not taken must stay in bounds).
Expr clampIx(const Expr &e, int64_t hi) { return loop::max(loop::min(e, hi - 1), 0); }

//===----------------------------------------------------------------------===//
// The kernels
//===----------------------------------------------------------------------===//

std::vector<Kernel> makeKernels() {
  std::vector<Kernel> ks;
  const double elemR = 1e-5, elemA = 1e-6; // elementwise math: relative 1e-5

  // --- The seed example: symbolic n, B = A + 1 inlined into C = B * 2 ---------------------
  {
    Kernel k;
    k.name = "seed";
    k.sizes = {1, 7, 16, 33, 100, 1000};
    k.rtol = 0; // two float operations, the same in the reference: exact
    k.atol = 0;
    k.define = [](int64_t n) {
      Def d;
      auto N = te::var("n");
      auto A = f32({N}, "A");
      auto B = te::compute(A.shape(), [&](Var i) { return A(i) + 1.0f; }, "B");
      d.out = te::compute(B.shape(), [&](Var i) { return B(i) * 2.0f; }, "C");
      d.inputs = {A};
      d.t["B"] = B;
      d.scalars = {{"n", n}};
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) {
      s[d["B"]].compute_inline();
      IterVar o = vecSplit(s[d.out], d.out.axis(0), 8);
      auto [oo, oi] = s[d.out].split(o, 4);
      s[d.out].parallel(oo);
    };
    k.reference = [](int64_t, const Inputs &in) {
      std::vector<double> r(in[0].size());
      for (size_t i = 0; i < r.size(); ++i)
        r[i] = double((in[0].f[i] + 1.0f) * 2.0f);
      return r;
    };
    ks.push_back(k);
  }

  // --- Elementwise ----------------------------------------------------------------------
  {
    Kernel k;
    k.name = "add";
    k.sizes = {1, 7, 33, 1000};
    k.rtol = 0; // one float add, correctly rounded both ways
    k.atol = 0;
    k.define = [](int64_t n) {
      Def d;
      auto N = te::var("n");
      auto A = f32({N}, "A"), B = f32({N}, "B");
      d.inputs = {A, B};
      d.out = te::compute({N}, [&](Var i) { return A(i) + B(i); }, "C");
      d.scalars = {{"n", n}};
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) {
      s[d.out].parallel(vecSplit(s[d.out], d.out.axis(0), 16));
    };
    k.reference = [](int64_t, const Inputs &in) {
      std::vector<double> r(in[0].size());
      for (size_t i = 0; i < r.size(); ++i)
        r[i] = double(in[0].f[i] + in[1].f[i]);
      return r;
    };
    ks.push_back(k);
  }
  // Broadcasts: X[5, n] * V[n] (a row), X[5, n] * V[5] (a column), X[n] * S[1] (a scalar).
  for (const std::string kind : {"row", "col", "scalar"}) {
    Kernel k;
    k.name = "mul_broadcast_" + kind;
    k.sizes = {1, 7, 16, 100};
    k.rtol = 0;
    k.atol = 0;
    k.define = [kind](int64_t n) {
      Def d;
      if (kind == "scalar") {
        auto X = f32({n}, "X"), S = f32({1}, "S");
        d.inputs = {X, S};
        d.out = te::compute({n}, [&](Var i) { return X(i) * S(0); }, "Y");
      } else {
        auto X = f32({5, n}, "X");
        auto V = f32({kind == "row" ? Expr(n) : Expr(5)}, "V");
        d.inputs = {X, V};
        d.out = te::compute({5, n}, [&](Var i, Var j) { return X(i, j) * V(kind == "row" ? j : i); },
                            "Y");
      }
      return d;
    };
    k.schedule = [kind](Schedule &s, const Def &d) {
      Stage st = s[d.out];
      if (kind == "row") {
        st.parallel(d.out.axis(0));
        vecSplit(st, d.out.axis(1), 8);
      } else if (kind == "col") {
        // Fused rows and columns, vectorized by 8: the column index is (f % n).
        IterVar fused = st.fuse(d.out.axis(0), d.out.axis(1));
        st.parallel(vecSplit(st, fused, 8));
      } else {
        IterVar o = vecSplit(st, d.out.axis(0), 4);
        auto [oo, oi] = st.split(o, 2);
        st.unroll(oi);
      }
    };
    k.reference = [kind](int64_t n, const Inputs &in) {
      std::vector<double> r(in[0].size());
      for (size_t i = 0; i < r.size(); ++i) {
        float v = kind == "scalar" ? in[1].f[0]
                  : kind == "row"  ? in[1].f[i % size_t(n)]
                                   : in[1].f[i / size_t(n)];
        r[i] = double(in[0].f[i] * v);
      }
      return r;
    };
    ks.push_back(k);
  }
  {
    // relu on [n, 17]: rows in parallel, columns vectorized by 8 (17 = 2 * 8 + 1).
    Kernel k;
    k.name = "relu";
    k.sizes = {1, 7, 40};
    k.rtol = 0;
    k.atol = 0;
    k.define = [](int64_t n) {
      Def d;
      auto X = f32({n, 17}, "X");
      d.inputs = {X};
      d.out = te::compute({n, 17}, [&](Var i, Var j) { return loop::max(X(i, j), 0.0f); }, "Y");
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) {
      s[d.out].parallel(d.out.axis(0));
      vecSplit(s[d.out], d.out.axis(1), 8);
    };
    k.reference = [](int64_t, const Inputs &in) {
      std::vector<double> r(in[0].size());
      for (size_t i = 0; i < r.size(); ++i)
        r[i] = std::max(in[0].at(i), 0.0);
      return r;
    };
    ks.push_back(k);
  }
  ks.push_back(unary("sigmoid", [](Expr x) { return loop::sigmoid(x); },
                     [](double x) { return 1 / (1 + std::exp(-x)); }, elemR, elemA, 8, false));
  ks.push_back(unary("tanh", [](Expr x) { return loop::tanh(x); },
                     [](double x) { return std::tanh(x); }, elemR, elemA, 4, false));
  ks.push_back(unary(
      "gelu", [](Expr x) { return 0.5f * x * (1.0f + loop::erf(x * 0.70710678f)); },
      [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }, elemR, elemA, 8, true));
  ks.push_back(unary("exp", [](Expr x) { return loop::exp(x); },
                     [](double x) { return std::exp(x); }, elemR, elemA, 8, true));
  ks.push_back(unary("clip", [](Expr x) { return loop::min(loop::max(x, -1.0f), 1.5f); },
                     [](double x) { return std::min(std::max(x, -1.0), 1.5); }, 0, 0, 16, false));
  {
    Kernel k;
    k.name = "where";
    k.sizes = {1, 7, 33, 1000};
    k.rtol = 0;
    k.atol = 0;
    k.define = [](int64_t n) {
      Def d;
      auto Cd = f32({n}, "Cond"), A = f32({n}, "A"), B = f32({n}, "B");
      d.inputs = {Cd, A, B};
      d.out = te::compute({n}, [&](Var i) { return loop::select(Cd(i) > 0.0f, A(i), B(i)); }, "Y");
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) { vecSplit(s[d.out], d.out.axis(0), 8); };
    k.reference = [](int64_t, const Inputs &in) {
      std::vector<double> r(in[0].size());
      for (size_t i = 0; i < r.size(); ++i)
        r[i] = in[0].f[i] > 0 ? in[1].at(i) : in[2].at(i);
      return r;
    };
    ks.push_back(k);
  }
  {
    // f32 -> i32 (truncation toward zero, as C++'s conversion) of x * 100.
    Kernel k;
    k.name = "cast_f32_to_i32";
    k.sizes = {1, 7, 33, 1000};
    k.rtol = 0;
    k.atol = 0;
    k.define = [](int64_t n) {
      Def d;
      auto X = f32({n}, "X");
      d.inputs = {X};
      d.out = te::compute({n}, [&](Var i) { return loop::cast(DType::i32, X(i) * 100.0f); }, "Y");
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) { vecSplit(s[d.out], d.out.axis(0), 8); };
    k.reference = [](int64_t, const Inputs &in) {
      std::vector<double> r(in[0].size());
      for (size_t i = 0; i < r.size(); ++i)
        r[i] = double(int32_t(in[0].f[i] * 100.0f));
      return r;
    };
    ks.push_back(k);
  }
  {
    // i32 -> f32 of integers in [-100000, 100000), scaled by 0.25 (exact).
    Kernel k;
    k.name = "cast_i32_to_f32";
    k.sizes = {1, 7, 33, 1000};
    k.rtol = 0;
    k.atol = 0;
    k.define = [](int64_t n) {
      Def d;
      auto I = te::placeholder({n}, DType::i32, "I");
      d.inputs = {I};
      d.intRange["I"] = {-100000, 100000};
      d.out = te::compute({n}, [&](Var i) { return loop::cast(DType::f32, I(i)) * 0.25f; }, "Y");
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) { vecSplit(s[d.out], d.out.axis(0), 8); };
    k.reference = [](int64_t, const Inputs &in) {
      std::vector<double> r(in[0].size());
      for (size_t i = 0; i < r.size(); ++i)
        r[i] = double(float(in[0].i[i]) * 0.25f);
      return r;
    };
    ks.push_back(k);
  }

  // --- Reductions -------------------------------------------------------------------------
  for (const std::string op : {"sum", "max", "min"}) {
    ks.push_back(reduction(op + "_last_axis", op, true));
    ks.push_back(reduction(op + "_axis0", op, false));
  }
  for (Kernel &k : ks)
    if (k.name.rfind("sum_", 0) == 0)
      k.atol = 4e-6 * 100; // float sums of up to 100 terms of |x| <= 2
  {
    // mean over the last axis of [6, n]: the sum computed at the mean's row.
    Kernel k;
    k.name = "mean";
    k.sizes = {1, 7, 33, 100};
    k.rtol = 1e-5;
    k.atol = 1e-5;
    k.define = [](int64_t n) {
      Def d;
      auto X = f32({6, n}, "X");
      auto r = te::reduce_axis({0, n}, "r");
      auto S = te::compute({6}, [&](Var i) { return te::sum(X(i, r), {r}); }, "S");
      d.out = te::compute({6}, [&](Var i) { return S(i) / float(n); }, "M");
      d.inputs = {X};
      d.t["S"] = S;
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) {
      s[d["S"]].compute_at(s[d.out], d.out.axis(0));
      s[d.out].parallel(d.out.axis(0));
    };
    k.reference = [](int64_t n, const Inputs &in) {
      std::vector<double> r(6);
      for (int64_t i = 0; i < 6; ++i) {
        double acc = 0;
        for (int64_t j = 0; j < n; ++j)
          acc += in[0].at(size_t(i * n + j));
        r[size_t(i)] = acc / double(n);
      }
      return r;
    };
    ks.push_back(k);
  }
  {
    // softmax over the last axis of [3, n]: max, exp, sum and divide stages computed at the row.
    Kernel k;
    k.name = "softmax";
    k.sizes = {1, 7, 16, 100};
    k.rtol = 1e-5;
    k.atol = 1e-7;
    k.define = [](int64_t n) {
      Def d;
      auto X = f32({3, n}, "X");
      auto k1 = te::reduce_axis({0, n}, "k");
      auto M = te::compute({3}, [&](Var i) { return te::max(X(i, k1), {k1}); }, "M");
      auto E = te::compute({3, n}, [&](Var i, Var j) { return loop::exp(X(i, j) - M(i)); }, "E");
      auto k2 = te::reduce_axis({0, n}, "k");
      auto S = te::compute({3}, [&](Var i) { return te::sum(E(i, k2), {k2}); }, "S");
      d.out = te::compute({3, n}, [&](Var i, Var j) { return E(i, j) / S(i); }, "Y");
      d.inputs = {X};
      d.t = {{"M", M}, {"E", E}, {"S", S}};
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) {
      const Tensor &E = d["E"];
      for (const char *name : {"M", "E", "S"})
        s[d[name]].compute_at(s[d.out], d.out.axis(0));
      s[d.out].parallel(d.out.axis(0));
      vecSplit(s[E], E.axis(1), 8);
      vecSplit(s[d.out], d.out.axis(1), 8);
    };
    k.reference = [](int64_t n, const Inputs &in) {
      std::vector<double> r(static_cast<size_t>(3 * n));
      for (int64_t i = 0; i < 3; ++i) {
        double m = -INFINITY, sum = 0;
        for (int64_t j = 0; j < n; ++j)
          m = std::max(m, in[0].at(size_t(i * n + j)));
        for (int64_t j = 0; j < n; ++j)
          sum += std::exp(in[0].at(size_t(i * n + j)) - m);
        for (int64_t j = 0; j < n; ++j)
          r[size_t(i * n + j)] = std::exp(in[0].at(size_t(i * n + j)) - m) / sum;
      }
      return r;
    };
    ks.push_back(k);
  }
  {
    // layernorm over the last axis of [4, n], with gamma and beta of [n], epsilon 1e-5.
    Kernel k;
    k.name = "layernorm";
    k.sizes = {1, 7, 33, 100};
    k.rtol = 1e-4;
    k.atol = 1e-4;
    k.define = [](int64_t n) {
      Def d;
      auto X = f32({4, n}, "X"), G = f32({n}, "Gamma"), Bt = f32({n}, "Beta");
      auto r1 = te::reduce_axis({0, n}, "r");
      auto Sum = te::compute({4}, [&](Var i) { return te::sum(X(i, r1), {r1}); }, "Sum");
      auto Mu = te::compute({4}, [&](Var i) { return Sum(i) / float(n); }, "Mu");
      auto r2 = te::reduce_axis({0, n}, "r");
      auto Sq = te::compute({4}, [&](Var i) {
        return te::sum((X(i, r2) - Mu(i)) * (X(i, r2) - Mu(i)), {r2});
      }, "Sq");
      d.out = te::compute({4, n}, [&](Var i, Var j) {
        return (X(i, j) - Mu(i)) * loop::rsqrt(Sq(i) / float(n) + 1e-5f) * G(j) + Bt(j);
      }, "Y");
      d.inputs = {X, G, Bt};
      d.t = {{"Sum", Sum}, {"Mu", Mu}, {"Sq", Sq}};
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) {
      s[d["Mu"]].compute_inline();
      s[d["Sum"]].compute_at(s[d.out], d.out.axis(0));
      s[d["Sq"]].compute_at(s[d.out], d.out.axis(0));
      s[d.out].parallel(d.out.axis(0));
      vecSplit(s[d.out], d.out.axis(1), 8);
    };
    k.reference = [](int64_t n, const Inputs &in) {
      std::vector<double> r(static_cast<size_t>(4 * n));
      for (int64_t i = 0; i < 4; ++i) {
        double mu = 0, var = 0;
        for (int64_t j = 0; j < n; ++j)
          mu += in[0].at(size_t(i * n + j));
        mu /= double(n);
        for (int64_t j = 0; j < n; ++j)
          var += (in[0].at(size_t(i * n + j)) - mu) * (in[0].at(size_t(i * n + j)) - mu);
        var /= double(n);
        for (int64_t j = 0; j < n; ++j)
          r[size_t(i * n + j)] = (in[0].at(size_t(i * n + j)) - mu) / std::sqrt(var + 1e-5) *
                                     in[1].at(size_t(j)) + in[2].at(size_t(j));
      }
      return r;
    };
    ks.push_back(k);
  }

  // --- Matmul ------------------------------------------------------------------------------
  // C[M, N] = A[M, K] * B[K, N] with M = n, K = n + 1, N = n + 2 (no size a multiple of 8 or 16
  // except by chance, so every split leaves a tail).
  auto matmulRef = [](int64_t batch, int64_t m, int64_t kk, int64_t nn, const Inputs &in) {
    std::vector<double> r(static_cast<size_t>(batch * m * nn));
    for (int64_t b = 0; b < batch; ++b)
      for (int64_t i = 0; i < m; ++i)
        for (int64_t j = 0; j < nn; ++j) {
          double acc = 0;
          for (int64_t p = 0; p < kk; ++p)
            acc += in[0].at(size_t((b * m + i) * kk + p)) * in[1].at(size_t((b * kk + p) * nn + j));
          r[size_t((b * m + i) * nn + j)] = acc;
        }
    return r;
  };
  for (bool tiled : {false, true}) {
    Kernel k;
    k.name = tiled ? "matmul_tiled" : "matmul";
    k.sizes = {1, 7, 30, 64};
    k.rtol = 1e-5;
    k.atol = 4e-6 * 65 * 4; // float dot products of up to 65 terms |a b| <= 4
    k.define = [](int64_t n) {
      Def d;
      auto A = f32({n, n + 1}, "A"), B = f32({n + 1, n + 2}, "B");
      auto r = te::reduce_axis({0, n + 1}, "k");
      d.inputs = {A, B};
      d.out = te::compute({n, n + 2}, [&](Var i, Var j) { return te::sum(A(i, r) * B(r, j), {r}); },
                          "C");
      return d;
    };
    if (!tiled) {
      k.schedule = [](Schedule &s, const Def &d) {
        Stage st = s[d.out];
        auto [jo, ji] = st.split(d.out.axis(1), 8);
        st.reorder({d.out.axis(0), jo, d.out.reduceAxis(0), ji});
        st.vectorize(ji);
        st.parallel(d.out.axis(0));
      };
    } else {
      k.schedule = [](Schedule &sch, const Def &d) {
        Tensor CC = sch.cache_write(d.out, "local");
        auto [xo, yo, xi, yi] = sch[d.out].tile(d.out.axis(0), d.out.axis(1), 4, 16);
        sch[CC].compute_at(sch[d.out], yo);
        sch[CC].reorder({CC.reduceAxis(0), CC.axis(0), CC.axis(1)});
        sch[CC].unroll(CC.axis(0));
        vecSplit(sch[CC], CC.axis(1), 8);
        sch[d.out].parallel(xo);
      };
    }
    k.reference = [matmulRef](int64_t n, const Inputs &in) { return matmulRef(1, n, n + 1, n + 2, in); };
    ks.push_back(k);
  }
  {
    Kernel k;
    k.name = "batch_matmul";
    k.sizes = {1, 7, 20};
    k.rtol = 1e-5;
    k.atol = 4e-6 * 21 * 4;
    k.define = [](int64_t n) {
      Def d;
      auto A = f32({3, n, n + 1}, "A"), B = f32({3, n + 1, n + 2}, "B");
      auto r = te::reduce_axis({0, n + 1}, "k");
      d.inputs = {A, B};
      d.out = te::compute({3, n, n + 2}, [&](Var b, Var i, Var j) {
        return te::sum(A(b, i, r) * B(b, r, j), {r});
      }, "C");
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) {
      Stage st = s[d.out];
      IterVar bi = st.fuse(d.out.axis(0), d.out.axis(1));
      auto [jo, ji] = st.split(d.out.axis(2), 4);
      st.reorder({bi, jo, d.out.reduceAxis(0), ji});
      st.vectorize(ji);
      st.parallel(bi);
    };
    k.reference = [matmulRef](int64_t n, const Inputs &in) { return matmulRef(3, n, n + 1, n + 2, in); };
    ks.push_back(k);
  }

  // --- Convolutions -------------------------------------------------------------------------
  // conv2d NCHW: I[2, 3, n, n] * W[4, 3, 3, 3], padding 1, stride 2 -> O[2, 4, oh, oh].
  {
    Kernel k;
    k.name = "conv2d_nchw_pad1_stride2";
    k.sizes = {1, 6, 13, 32};
    k.rtol = 1e-5;
    k.atol = 4e-6 * 27 * 4;
    k.define = [](int64_t n) {
      Def d;
      const int64_t oh = (n + 2 - 3) / 2 + 1;
      auto I = f32({2, 3, n, n}, "I"), W = f32({4, 3, 3, 3}, "W");
      auto P = te::compute({2, 3, n + 2, n + 2}, [&](Var b, Var c, Var y, Var x) {
        Expr inside = y >= 1 && y < n + 1 && x >= 1 && x < n + 1;
        return te::if_then_else(inside, I(b, c, clampIx(y - 1, n), clampIx(x - 1, n)), 0.0f);
      }, "P");
      auto rc = te::reduce_axis({0, 3}, "rc"), ry = te::reduce_axis({0, 3}, "ry"),
           rx = te::reduce_axis({0, 3}, "rx");
      d.out = te::compute({2, 4, oh, oh}, [&](Var b, Var o, Var y, Var x) {
        return te::sum(P(b, rc, y * 2 + ry, x * 2 + rx) * W(o, rc, ry, rx), {rc, ry, rx});
      }, "O");
      d.inputs = {I, W};
      d.t["P"] = P;
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) {
      const Tensor &O = d.out;
      Stage st = s[O];
      s[d["P"]].compute_inline();
      IterVar bo = st.fuse(O.axis(0), O.axis(1));
      auto [xo, xi] = st.split(O.axis(3), 4);
      st.reorder({bo, O.axis(2), xo, O.reduceAxis(0), O.reduceAxis(1), O.reduceAxis(2), xi});
      st.unroll(O.reduceAxis(2));
      st.vectorize(xi);
      st.parallel(bo);
    };
    k.reference = [](int64_t n, const Inputs &in) {
      const int64_t oh = (n + 2 - 3) / 2 + 1;
      std::vector<double> r(static_cast<size_t>(2 * 4 * oh * oh));
      for (int64_t b = 0; b < 2; ++b)
        for (int64_t o = 0; o < 4; ++o)
          for (int64_t y = 0; y < oh; ++y)
            for (int64_t x = 0; x < oh; ++x) {
              double acc = 0;
              for (int64_t c = 0; c < 3; ++c)
                for (int64_t ky = 0; ky < 3; ++ky)
                  for (int64_t kx = 0; kx < 3; ++kx) {
                    int64_t yy = y * 2 + ky - 1, xx = x * 2 + kx - 1;
                    if (yy < 0 || yy >= n || xx < 0 || xx >= n)
                      continue;
                    acc += in[0].at(size_t(((b * 3 + c) * n + yy) * n + xx)) *
                           in[1].at(size_t(((o * 3 + c) * 3 + ky) * 3 + kx));
                  }
              r[size_t(((b * 4 + o) * oh + y) * oh + x)] = acc;
            }
      return r;
    };
    ks.push_back(k);
  }
  {
    // depthwise conv2d: I[5, n, n] * W[5, 1, 3, 3], padding 1, stride 1; the padded input is
    // computed at the output's row (a 3-row stencil region).
    Kernel k;
    k.name = "depthwise_conv2d";
    k.sizes = {1, 7, 20};
    k.rtol = 1e-5;
    k.atol = 4e-6 * 9 * 4;
    k.define = [](int64_t n) {
      Def d;
      auto I = f32({5, n, n}, "I"), W = f32({5, 1, 3, 3}, "W");
      auto P = te::compute({5, n + 2, n + 2}, [&](Var c, Var y, Var x) {
        Expr inside = y >= 1 && y < n + 1 && x >= 1 && x < n + 1;
        return te::if_then_else(inside, I(c, clampIx(y - 1, n), clampIx(x - 1, n)), 0.0f);
      }, "P");
      auto ry = te::reduce_axis({0, 3}, "ry"), rx = te::reduce_axis({0, 3}, "rx");
      d.out = te::compute({5, n, n}, [&](Var c, Var y, Var x) {
        return te::sum(P(c, y + ry, x + rx) * W(c, 0, ry, rx), {ry, rx});
      }, "O");
      d.inputs = {I, W};
      d.t["P"] = P;
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) {
      const Tensor &O = d.out;
      Stage st = s[O];
      s[d["P"]].compute_at(st, O.axis(1));
      auto [xo, xi] = st.split(O.axis(2), 8);
      st.reorder({O.axis(0), O.axis(1), xo, O.reduceAxis(0), O.reduceAxis(1), xi});
      st.vectorize(xi);
      st.parallel(O.axis(0));
    };
    k.reference = [](int64_t n, const Inputs &in) {
      std::vector<double> r(static_cast<size_t>(5 * n * n));
      for (int64_t c = 0; c < 5; ++c)
        for (int64_t y = 0; y < n; ++y)
          for (int64_t x = 0; x < n; ++x) {
            double acc = 0;
            for (int64_t ky = 0; ky < 3; ++ky)
              for (int64_t kx = 0; kx < 3; ++kx) {
                int64_t yy = y + ky - 1, xx = x + kx - 1;
                if (yy < 0 || yy >= n || xx < 0 || xx >= n)
                  continue;
                acc += in[0].at(size_t((c * n + yy) * n + xx)) * in[1].at(size_t((c * 3 + ky) * 3 + kx));
              }
            r[size_t((c * n + y) * n + x)] = acc;
          }
      return r;
    };
    ks.push_back(k);
  }

  // --- Data movement (exact) ------------------------------------------------------------
  {
    Kernel k;
    k.name = "transpose_2d";
    k.sizes = {1, 7, 33};
    k.rtol = 0;
    k.atol = 0;
    k.define = [](int64_t n) {
      Def d;
      auto A = f32({n, n + 3}, "A");
      d.inputs = {A};
      d.out = te::compute({n + 3, n}, [&](Var i, Var j) { return A(j, i); }, "T");
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) {
      auto [xo, yo, xi, yi] = s[d.out].tile(d.out.axis(0), d.out.axis(1), 8, 8);
      s[d.out].unroll(xi);
      s[d.out].vectorize(yi);
      s[d.out].parallel(xo);
    };
    k.reference = [](int64_t n, const Inputs &in) {
      std::vector<double> r(static_cast<size_t>(n * (n + 3)));
      for (int64_t i = 0; i < n + 3; ++i)
        for (int64_t j = 0; j < n; ++j)
          r[size_t(i * n + j)] = in[0].at(size_t(j * (n + 3) + i));
      return r;
    };
    ks.push_back(k);
  }
  {
    // NCHW -> NHWC: A[2, n, 3, 5] -> T[2, 3, 5, n], T(a, b, c, d) = A(a, d, b, c).
    Kernel k;
    k.name = "transpose_4d_nchw_to_nhwc";
    k.sizes = {1, 7, 33};
    k.rtol = 0;
    k.atol = 0;
    k.define = [](int64_t n) {
      Def d;
      auto A = f32({2, n, 3, 5}, "A");
      d.inputs = {A};
      d.out = te::compute({2, 3, 5, n}, [&](Var a, Var b, Var c, Var e) { return A(a, e, b, c); }, "T");
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) {
      Stage st = s[d.out];
      IterVar ab = st.fuse(d.out.axis(0), d.out.axis(1));
      st.parallel(ab);
      vecSplit(st, d.out.axis(3), 4);
    };
    k.reference = [](int64_t n, const Inputs &in) {
      std::vector<double> r(static_cast<size_t>(2 * 3 * 5 * n));
      for (int64_t a = 0; a < 2; ++a)
        for (int64_t b = 0; b < 3; ++b)
          for (int64_t c = 0; c < 5; ++c)
            for (int64_t e = 0; e < n; ++e)
              r[size_t(((a * 3 + b) * 5 + c) * n + e)] = in[0].at(size_t(((a * n + e) * 3 + b) * 5 + c));
      return r;
    };
    ks.push_back(k);
  }

  // --- Pooling ------------------------------------------------------------------------------
  // 3x3 windows, stride 2, padding 1 on X[3, n, n] -> [3, oh, oh], oh = (n - 1) / 2 + 1.
  for (bool isMax : {true, false}) {
    Kernel k;
    k.name = isMax ? "maxpool_3x3_stride2_pad1" : "avgpool_3x3_stride2_pad1";
    k.sizes = {1, 6, 13, 32};
    k.rtol = isMax ? 0 : 1e-5;
    k.atol = isMax ? 0 : 1e-6;
    k.define = [isMax](int64_t n) {
      Def d;
      const int64_t oh = (n - 1) / 2 + 1;
      auto X = f32({3, n, n}, "X");
      float padValue = isMax ? -INFINITY : 0.0f;
      auto P = te::compute({3, n + 2, n + 2}, [&](Var c, Var y, Var x) {
        Expr inside = y >= 1 && y < n + 1 && x >= 1 && x < n + 1;
        return te::if_then_else(inside, X(c, clampIx(y - 1, n), clampIx(x - 1, n)), padValue);
      }, "P");
      auto ry = te::reduce_axis({0, 3}, "ry"), rx = te::reduce_axis({0, 3}, "rx");
      d.inputs = {X};
      d.t["P"] = P;
      if (isMax) {
        d.out = te::compute({3, oh, oh}, [&](Var c, Var y, Var x) {
          return te::max(P(c, y * 2 + ry, x * 2 + rx), {ry, rx});
        }, "Pool");
      } else {
        // ONNX AveragePool's default count_include_pad = 0: divide by the valid elements.
        auto S = te::compute({3, oh, oh}, [&](Var c, Var y, Var x) {
          return te::sum(P(c, y * 2 + ry, x * 2 + rx), {ry, rx});
        }, "S");
        auto count = [&](Expr o) {
          return loop::min(o * 2 + 2, n) - loop::max(o * 2 - 1, 0); // rows [2o-1, 2o+1] inside
        };
        d.out = te::compute({3, oh, oh}, [&](Var c, Var y, Var x) {
          return S(c, y, x) / loop::cast(DType::f32, count(y) * count(x));
        }, "Pool");
        d.t["S"] = S;
      }
      return d;
    };
    k.schedule = [isMax](Schedule &s, const Def &d) {
      const Tensor &O = d.out;
      s[d["P"]].compute_inline();
      s[O].parallel(O.axis(0));
      if (isMax) {
        auto [xo, xi] = s[O].split(O.axis(2), 4);
        s[O].reorder({O.axis(0), O.axis(1), xo, O.reduceAxis(0), O.reduceAxis(1), xi});
        s[O].unroll(O.reduceAxis(1));
        s[O].vectorize(xi);
      } else {
        const Tensor &S = d["S"];
        s[S].compute_at(s[O], O.axis(1));
        s[S].unroll(S.reduceAxis(0));
        s[S].unroll(S.reduceAxis(1));
        vecSplit(s[O], O.axis(2), 4);
      }
    };
    k.reference = [isMax](int64_t n, const Inputs &in) {
      const int64_t oh = (n - 1) / 2 + 1;
      std::vector<double> r(static_cast<size_t>(3 * oh * oh));
      for (int64_t c = 0; c < 3; ++c)
        for (int64_t y = 0; y < oh; ++y)
          for (int64_t x = 0; x < oh; ++x) {
            double acc = isMax ? -INFINITY : 0;
            int count = 0;
            for (int64_t ky = 0; ky < 3; ++ky)
              for (int64_t kx = 0; kx < 3; ++kx) {
                int64_t yy = y * 2 + ky - 1, xx = x * 2 + kx - 1;
                if (yy < 0 || yy >= n || xx < 0 || xx >= n)
                  continue;
                double v = in[0].at(size_t((c * n + yy) * n + xx));
                acc = isMax ? std::max(acc, v) : acc + v;
                ++count;
              }
            r[size_t((c * oh + y) * oh + x)] = isMax ? acc : acc / count;
          }
      return r;
    };
    ks.push_back(k);
  }
  {
    // global average pool: X[n, 7, 9] -> [n].
    Kernel k;
    k.name = "global_avgpool";
    k.sizes = {1, 7, 33};
    k.rtol = 1e-5;
    k.atol = 1e-5;
    k.define = [](int64_t n) {
      Def d;
      auto X = f32({n, 7, 9}, "X");
      auto ry = te::reduce_axis({0, 7}, "ry"), rx = te::reduce_axis({0, 9}, "rx");
      auto S = te::compute({n}, [&](Var c) { return te::sum(X(c, ry, rx), {ry, rx}); }, "S");
      d.out = te::compute({n}, [&](Var c) { return S(c) * (1.0f / 63.0f); }, "G");
      d.inputs = {X};
      d.t["S"] = S;
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) {
      const Tensor &S = d["S"];
      auto [co, ci] = s[d.out].split(d.out.axis(0), 4);
      s[S].compute_at(s[d.out], co);
      s[S].unroll(S.reduceAxis(1));
      s[d.out].vectorize(ci);
      s[d.out].parallel(co);
    };
    k.reference = [](int64_t n, const Inputs &in) {
      std::vector<double> r(static_cast<size_t>(n));
      for (int64_t c = 0; c < n; ++c) {
        double acc = 0;
        for (int64_t i = 0; i < 63; ++i)
          acc += in[0].at(size_t(c * 63 + i));
        r[size_t(c)] = acc * double(1.0f / 63.0f);
      }
      return r;
    };
    ks.push_back(k);
  }
  {
    // concat along axis 1: A[4, n] ++ B[4, 5] -> [4, n + 5].
    Kernel k;
    k.name = "concat";
    k.sizes = {1, 7, 33};
    k.rtol = 0;
    k.atol = 0;
    k.define = [](int64_t n) {
      Def d;
      auto A = f32({4, n}, "A"), B = f32({4, 5}, "B");
      d.inputs = {A, B};
      d.out = te::compute({4, n + 5}, [&](Var i, Var j) {
        return te::if_then_else(j < n, A(i, clampIx(j, n)), B(i, clampIx(j - n, 5)));
      }, "C");
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) {
      s[d.out].parallel(d.out.axis(0));
      vecSplit(s[d.out], d.out.axis(1), 8);
    };
    k.reference = [](int64_t n, const Inputs &in) {
      std::vector<double> r(static_cast<size_t>(4 * (n + 5)));
      for (int64_t i = 0; i < 4; ++i)
        for (int64_t j = 0; j < n + 5; ++j)
          r[size_t(i * (n + 5) + j)] = j < n ? in[0].at(size_t(i * n + j)) : in[1].at(size_t(i * 5 + j - n));
      return r;
    };
    ks.push_back(k);
  }
  {
    // pad: A[3, n] -> [3 + 1 + 2, n + 2 + 1] (top 1, bottom 2, left 2, right 1) with 0.5.
    Kernel k;
    k.name = "pad";
    k.sizes = {1, 7, 33};
    k.rtol = 0;
    k.atol = 0;
    k.define = [](int64_t n) {
      Def d;
      auto A = f32({3, n}, "A");
      d.inputs = {A};
      d.out = te::compute({6, n + 3}, [&](Var i, Var j) {
        Expr inside = i >= 1 && i < 4 && j >= 2 && j < n + 2;
        return te::if_then_else(inside, A(clampIx(i - 1, 3), clampIx(j - 2, n)), 0.5f);
      }, "P");
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) { vecSplit(s[d.out], d.out.axis(1), 8); };
    k.reference = [](int64_t n, const Inputs &in) {
      std::vector<double> r(static_cast<size_t>(6 * (n + 3)));
      for (int64_t i = 0; i < 6; ++i)
        for (int64_t j = 0; j < n + 3; ++j)
          r[size_t(i * (n + 3) + j)] = i >= 1 && i < 4 && j >= 2 && j < n + 2
                                           ? in[0].at(size_t((i - 1) * n + j - 2))
                                           : 0.5;
      return r;
    };
    ks.push_back(k);
  }
  {
    // gather along axis 0 (ONNX Gather): Data[n + 3, 6], Idx[n] (i32, negative = from the end).
    Kernel k;
    k.name = "gather";
    k.sizes = {1, 7, 33};
    k.rtol = 0;
    k.atol = 0;
    k.define = [](int64_t n) {
      Def d;
      const int64_t rows = n + 3;
      auto Data = f32({rows, 6}, "Data");
      auto Idx = te::placeholder({n}, DType::i32, "Idx");
      d.inputs = {Data, Idx};
      d.intRange["Idx"] = {int32_t(-rows), int32_t(rows)};
      d.out = te::compute({n, 6}, [&](Var i, Var j) {
        Expr ix = loop::cast(DType::i64, Idx(i));
        return Data(loop::select(ix < 0, ix + rows, ix), j);
      }, "Y");
      return d;
    };
    k.schedule = [](Schedule &s, const Def &d) {
      s[d.out].parallel(d.out.axis(0));
      vecSplit(s[d.out], d.out.axis(1), 4);
    };
    k.reference = [](int64_t n, const Inputs &in) {
      const int64_t rows = n + 3;
      std::vector<double> r(static_cast<size_t>(n * 6));
      for (int64_t i = 0; i < n; ++i) {
        int64_t ix = in[1].i[size_t(i)];
        if (ix < 0)
          ix += rows;
        for (int64_t j = 0; j < 6; ++j)
          r[size_t(i * 6 + j)] = in[0].at(size_t(ix * 6 + j));
      }
      return r;
    };
    ks.push_back(k);
  }
  return ks;
}

const std::vector<Kernel> &kernels() {
  static const std::vector<Kernel> ks = makeKernels();
  return ks;
}

const Kernel &kernelNamed(const std::string &name) {
  for (const Kernel &k : kernels())
    if (k.name == name)
      return k;
  throw std::runtime_error("no kernel " + name);
}

std::vector<std::string> kernelNames() {
  std::vector<std::string> names;
  for (const Kernel &k : kernels())
    names.push_back(k.name);
  return names;
}

class KernelTest : public ::testing::TestWithParam<std::string> {};

} // namespace

TEST_P(KernelTest, Scheduled) {
  const Kernel &k = kernelNamed(GetParam());
  for (int64_t n : k.sizes)
    runKernel(k, n, /*scheduled=*/true);
}

TEST_P(KernelTest, Default) {
  const Kernel &k = kernelNamed(GetParam());
  for (int64_t n : k.sizes)
    runKernel(k, n, /*scheduled=*/false);
}

INSTANTIATE_TEST_SUITE_P(TEKernels, KernelTest, ::testing::ValuesIn(kernelNames()),
                         [](const ::testing::TestParamInfo<std::string> &info) { return info.param; });

TEST(TEKernelsSuite, HasTheSeedAndAtLeast20OtherKernels) {
  EXPECT_GE(kernels().size(), 21u);
  EXPECT_EQ(kernels().front().name, "seed");
  for (const Kernel &k : kernels())
    EXPECT_GE(k.sizes.size(), 3u) << k.name;
}

//===----------------------------------------------------------------------===//
// Cross-target smoke test (issue 4 item 6): AArch64 (NEON) and generic x86-64 objects
//===----------------------------------------------------------------------===//

namespace {

std::vector<unsigned char> readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), {}};
}

template <class T> T readLE(const std::vector<unsigned char> &b, size_t off) {
  T v{};
  if (off + sizeof(T) <= b.size())
    std::memcpy(&v, b.data() + off, sizeof(T)); // the test hosts and both targets: little endian
  return v;
}

/// The names of the symbols in an ELF64 little-endian object's .symtab (parsed by hand).
std::vector<std::string> elfSymbols(const std::vector<unsigned char> &b) {
  std::vector<std::string> names;
  if (b.size() < 64 || b[4] != 2 /*ELFCLASS64*/ || b[5] != 1 /*little endian*/)
    return names;
  auto shoff = readLE<uint64_t>(b, 0x28);
  auto shentsize = readLE<uint16_t>(b, 0x3A), shnum = readLE<uint16_t>(b, 0x3C);
  for (uint16_t i = 0; i < shnum; ++i) {
    size_t sh = size_t(shoff) + size_t(i) * shentsize;
    if (readLE<uint32_t>(b, sh + 4) != 2 /*SHT_SYMTAB*/)
      continue;
    auto off = readLE<uint64_t>(b, sh + 0x18), size = readLE<uint64_t>(b, sh + 0x20);
    auto link = readLE<uint32_t>(b, sh + 0x28);
    auto entsize = readLE<uint64_t>(b, sh + 0x38);
    size_t strSh = size_t(shoff) + size_t(link) * shentsize;
    auto strOff = readLE<uint64_t>(b, strSh + 0x18), strSize = readLE<uint64_t>(b, strSh + 0x20);
    for (uint64_t e = 0; entsize && e + entsize <= size; e += entsize) {
      auto nameOff = readLE<uint32_t>(b, size_t(off + e));
      if (nameOff >= strSize || strOff + nameOff >= b.size())
        continue;
      names.emplace_back(reinterpret_cast<const char *>(b.data() + strOff + nameOff));
    }
  }
  return names;
}

bool contains(const std::vector<std::string> &v, const std::string &s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

std::string runCommand(const std::string &cmd) {
  std::string out;
  if (FILE *p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0)
      out.append(buf, n);
    pclose(p);
  }
  return out;
}

const char *kObjdump = "/usr/lib/llvm-19/bin/llvm-objdump";

struct CrossKernel {
  std::string symbol;
  std::vector<Tensor> args;
  Schedule s;
};

/// The seed (B inlined, split by 4 for the 4-lane NEON vectors, symbolic n).
CrossKernel seedKernel() {
  auto N = te::var("n");
  auto A = f32({N}, "A");
  auto B = te::compute(A.shape(), [&](Var i) { return A(i) + 1.0f; }, "B");
  auto C = te::compute(B.shape(), [&](Var i) { return B(i) * 2.0f; }, "C");
  auto s = te::create_schedule(C);
  s[B].compute_inline();
  vecSplit(s[C], C.axis(0), 4);
  return {"seed", {A, C}, s};
}

/// A vectorized multiply-add kernel: Y[i, j] = X[i, j] * W[j] + Bias[j] on [9, 37] (tails).
CrossKernel scaleShiftKernel() {
  auto X = f32({9, 37}, "X"), W = f32({37}, "W"), Bias = f32({37}, "Bias");
  auto Y = te::compute({9, 37}, [&](Var i, Var j) { return X(i, j) * W(j) + Bias(j); }, "Y");
  auto s = te::create_schedule(Y);
  vecSplit(s[Y], Y.axis(1), 4);
  return {"scale_shift_rows", {X, W, Bias, Y}, s};
}

} // namespace

TEST(TEKernelsCrossTarget, AArch64ObjectsHaveTheKernelAndNeonVectors) {
  for (CrossKernel k : {seedKernel(), scaleShiftKernel()}) {
    std::string path = ::testing::TempDir() + "tessel_kernels_" + k.symbol + "_aarch64.o";
    tessel::buildObject(k.s, k.args, "aarch64", path, k.symbol);
    auto bytes = readFile(path);
    ASSERT_GT(bytes.size(), 64u) << k.symbol;
    EXPECT_EQ(std::memcmp(bytes.data(), "\x7f" "ELF", 4), 0) << k.symbol;
    EXPECT_EQ(readLE<uint16_t>(bytes, 18), 183) << k.symbol << ": e_machine, expected EM_AARCH64";
    auto syms = elfSymbols(bytes);
    EXPECT_TRUE(contains(syms, k.symbol)) << k.symbol << ": symbol missing from .symtab";
    if (access(kObjdump, X_OK) != 0) {
      std::printf("[ skipped  ] NEON check of %s: %s not found\n", k.symbol.c_str(), kObjdump);
    } else {
      std::string asm_ = runCommand(std::string(kObjdump) + " --triple=aarch64 -d " + path);
      // 4 x f32 NEON arithmetic: fadd/fmul/fmla on v registers with the .4s arrangement.
      std::regex neon(R"((fadd|fmul|fmla)\s+v\d+\.4s)");
      EXPECT_TRUE(std::regex_search(asm_, neon)) << k.symbol << ": no NEON .4s arithmetic in\n"
                                                 << asm_;
      std::regex neonLoad(R"((ldr\s+q\d+|ld1\s+\{\s*v\d+\.4s|ldp\s+q\d+))");
      EXPECT_TRUE(std::regex_search(asm_, neonLoad)) << k.symbol << ": no 128-bit vector load in\n"
                                                     << asm_;
    }
    std::remove(path.c_str());
  }
}

TEST(TEKernelsCrossTarget, GenericX86_64Object) {
  for (CrossKernel k : {seedKernel(), scaleShiftKernel()}) {
    std::string path = ::testing::TempDir() + "tessel_kernels_" + k.symbol + "_x86_64.o";
    tessel::buildObject(k.s, k.args, "x86-64", path, k.symbol);
    auto bytes = readFile(path);
    ASSERT_GT(bytes.size(), 64u) << k.symbol;
    EXPECT_EQ(readLE<uint16_t>(bytes, 18), 62) << k.symbol << ": e_machine, expected EM_X86_64";
    EXPECT_TRUE(contains(elfSymbols(bytes), k.symbol)) << k.symbol;
    if (access(kObjdump, X_OK) == 0) {
      // Generic x86-64 has SSE2: 4 x f32 packed arithmetic, and no AVX (ymm) registers.
      std::string asm_ = runCommand(std::string(kObjdump) + " -d " + path);
      EXPECT_NE(asm_.find("ps\t"), std::string::npos) << k.symbol << ": no packed SSE op\n" << asm_;
      EXPECT_EQ(asm_.find("ymm"), std::string::npos) << k.symbol << ": AVX in a generic object\n"
                                                     << asm_;
    }
    std::remove(path.c_str());
  }
}
