//===- Activation.cpp - Activation ops ---------------------------------------===//
//
// Pointwise activations: each op is a scalar function (a generic lambda, built from the node's
// attributes) run by one unary driver; f16/bf16 compute in float. PRelu broadcasts its slope
// unidirectionally to X.
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"
#include "tessel/Graph/Lowering.h"

#include <cmath>
#include <limits>
#include <type_traits>

namespace tessel {

namespace {

/// How activations name their element-type sets (in errors and docs).
std::string setName(unsigned s) {
  switch (s) {
  case kF: return "float types";
  case kF | kSI: return "float types or signed integers";
  case kF | kSI | kUI: return "float types or integers";
  default: return "numeric types";
  }
}

/// A unary activation: mk(ctx) returns the scalar function on Calc<T>.
template <unsigned Set, class Mk> OpDef activation(std::string name, int since, Mk mk) {
  OpDef d;
  d.name = std::move(name);
  d.sinceVersion = since;
  d.untilVersion = 17;
  d.minInputs = d.maxInputs = 1;
  d.minOutputs = d.maxOutputs = 1;
  d.dtypes = setName(Set);
  d.infer = inferSameAs(0);
  d.kernel = unaryKernel<Set, setName, false, true>(std::move(mk));
  d.pattern = OpPattern::ElemWise;
  return d;
}

template <class C> C sigmoid(C x) {
  if (x >= C(0))
    return C(1) / (C(1) + std::exp(-x));
  C e = std::exp(x);
  return e / (C(1) + e);
}

void preluKernel(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  Tensor slope = ctx.input(1);
  // Before opset 7 a 1-D slope of C values is per channel (axis 1), not numpy-broadcast.
  if (ctx.opset() < 7 && slope.rank() == 1 && slope.numel() > 1 && x.rank() >= 2 &&
      slope.dim(0) == x.dim(1)) {
    std::vector<int64_t> s(x.rank() - 1, 1);
    s[0] = slope.dim(0);
    slope = slope.reshaped(s);
  }
  if (slope.dtype() != x.dtype())
    ctx.fail("slope has element type ", dtypeName(slope.dtype()), ", expected ",
             dtypeName(x.dtype()), " like X");
  std::vector<int64_t> out = broadcastStatic(ctx, x.shape(), slope.shape());
  if (out != x.shape())
    ctx.fail("slope of shape ", slope.shapeString(), " does not broadcast to X's shape ",
             x.shapeString());
  dispatchSet<kF | kSI | kUI, setName>(ctx, x.dtype(), "input X", [&](auto t) {
    using T = decltype(t);
    using C = Calc<T>;
    Tensor y(x.dtype(), x.shape());
    const T *px = x.data<T>(), *ps = slope.data<T>();
    T *py = y.data<T>();
    const int64_t n = x.numel();
    auto f = [](C v, C s) { return v < C(0) ? C(s * v) : v; };
    if (slope.numel() == 1) {
      const C s = C(ps[0]);
      for (int64_t i = 0; i < n; ++i)
        py[i] = T(f(C(px[i]), s));
    } else if (slope.numel() == n) {
      for (int64_t i = 0; i < n; ++i)
        py[i] = T(f(C(px[i]), C(ps[i])));
    } else {
      // general broadcast (e.g. a per-channel slope [C,1,1] on X [N,C,H,W])
      const std::vector<int64_t> ins[2] = {x.shape(), slope.shape()};
      forEachBroadcast(out, ins, [&](int64_t o, const int64_t *in) {
        py[o] = T(f(C(px[in[0]]), C(ps[in[1]])));
      });
    }
    ctx.setOutput(0, std::move(y));
  });
}

} // namespace

// --- lowerings of the Activation ops
// Each activation is an elementwise TE compute whose scalar expression mirrors the reference
// lambda above (selects, so NaN passes through where the reference lets it).
namespace {

using loop::Expr;
using ActFn = std::function<Expr(const LowerContext &, const Expr &)>;

LowerFn activationLowering(ActFn f, bool floatOnly = true) {
  return [f, floatOnly](LowerContext &ctx) {
    lowering::lowerBroadcast(ctx, [&](const std::vector<Expr> &v) {
      ctx.check(!floatOnly || v[0].type().isFloat(), "lowering handles float inputs only, got ",
                dtypeName(v[0].type().dtype));
      return f(ctx, v[0]);
    });
  };
}
Expr fconst(const Expr &like, double v) { return loop::makeConst(like.type(), v); }

void attachActivationLowerings(OpRegistry &r) {
  r.setLower("Relu", activationLowering([](const LowerContext &, const Expr &x) {
    Expr zero = loop::makeZero(x.type());
    return loop::select(x < zero, zero, x);
  }, false));
  r.setLower("LeakyRelu", activationLowering([](const LowerContext &c, const Expr &x) {
    return loop::select(x < 0.0, x * fconst(x, c.attrFloat("alpha", 0.01f)), x);
  }));
  r.setLower("Elu", activationLowering([](const LowerContext &c, const Expr &x) {
    return loop::select(x < 0.0, fconst(x, c.attrFloat("alpha", 1.0f)) * (loop::exp(x) - 1.0), x);
  }));
  r.setLower("Selu", activationLowering([](const LowerContext &c, const Expr &x) {
    Expr a = fconst(x, c.attrFloat("alpha", 1.67326319217681884765625f));
    Expr g = fconst(x, c.attrFloat("gamma", 1.05070102214813232421875f));
    return loop::select(x > 0.0, g * x, g * (a * loop::exp(x) - a));
  }));
  r.setLower("Celu", activationLowering([](const LowerContext &c, const Expr &x) {
    float alpha = c.attrFloat("alpha", 1.0f);
    c.check(alpha != 0, "attribute 'alpha' must be non-zero");
    Expr a = fconst(x, alpha);
    Expr neg = a * (loop::exp(x / a) - 1.0);
    return loop::max(x, fconst(x, 0)) + loop::min(neg, fconst(x, 0));
  }));
  r.setLower("HardSigmoid", activationLowering([](const LowerContext &c, const Expr &x) {
    Expr v = fconst(x, c.attrFloat("alpha", 0.2f)) * x + fconst(x, c.attrFloat("beta", 0.5f));
    return loop::select(v < 0.0, fconst(x, 0), loop::select(v > 1.0, fconst(x, 1), v));
  }));
  r.setLower("HardSwish", activationLowering([](const LowerContext &, const Expr &x) {
    Expr v = x * fconst(x, 1.0 / 6.0) + 0.5;
    v = loop::select(v < 0.0, fconst(x, 0), loop::select(v > 1.0, fconst(x, 1), v));
    return x * v;
  }));
  r.setLower("Sigmoid", activationLowering([](const LowerContext &, const Expr &x) { return loop::sigmoid(x); }));
  r.setLower("Softplus", activationLowering([](const LowerContext &, const Expr &x) {
    // log(1 + exp(x)) without overflow
    return loop::select(x > 0.0, x + loop::log(loop::exp(-x) + 1.0), loop::log(loop::exp(x) + 1.0));
  }));
  r.setLower("Softsign", activationLowering([](const LowerContext &, const Expr &x) {
    return x / (loop::fabs(x) + 1.0);
  }));
  r.setLower("ThresholdedRelu", activationLowering([](const LowerContext &c, const Expr &x) {
    return loop::select(x > fconst(x, c.attrFloat("alpha", 1.0f)), x, fconst(x, 0));
  }));
  r.setLower("Shrink", activationLowering([](const LowerContext &c, const Expr &x) {
    Expr l = fconst(x, c.attrFloat("lambd", 0.5f)), b = fconst(x, c.attrFloat("bias", 0.0f));
    return loop::select(x < -l, x + b, loop::select(x > l, x - b, fconst(x, 0)));
  }));
  // PRelu: slope broadcasts (unidirectionally) to X
  r.setLower("PRelu", [](LowerContext &ctx) {
    auto prelu = [](const Expr &x, const Expr &slope) {
      Expr zero = loop::makeZero(x.type());
      return loop::select(x < zero, x * slope, x);
    };
    // Before opset 7 a 1-D slope of C values is per channel (axis 1), as preluKernel reads it.
    std::vector<int64_t> xs = ctx.inputShape(0), ss = ctx.inputShape(1);
    const Graph *g = ctx.node().graph();
    if (g && g->opsetVersion("") < 7 && ss.size() == 1 && ss[0] > 1 && xs.size() >= 2 &&
        ss[0] == xs[1]) {
      te::Tensor x = ctx.input(0), slope = ctx.input(1);
      ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<loop::Var> iv) {
        std::vector<Expr> xi(iv.begin(), iv.end());
        return prelu(x.access(xi), slope.access({Expr(iv[1])}));
      }));
      return;
    }
    lowering::lowerBroadcast(ctx, [&](const std::vector<Expr> &v) { return prelu(v[0], v[1]); });
  });
}

} // namespace
// --- end of the Activation lowerings

void registerActivationOps(OpRegistry &r) {
  r.add(activation<kF | kSI>("Relu", 1, plain([](auto x) {
    using C = decltype(x);
    return x < C(0) ? C(0) : x; // NaN stays NaN
  })));
  r.add(activation<kF>("LeakyRelu", 1, [](const KernelContext &ctx) {
    float alpha = ctx.attrFloat("alpha", 0.01f);
    return [alpha](auto x) {
      using C = decltype(x);
      return x < C(0) ? C(C(alpha) * x) : x;
    };
  }));
  r.add(activation<kF>("Elu", 1, [](const KernelContext &ctx) {
    float alpha = ctx.attrFloat("alpha", 1.0f);
    return [alpha](auto x) {
      using C = decltype(x);
      return x < C(0) ? C(C(alpha) * (std::exp(x) - C(1))) : x;
    };
  }));
  r.add(activation<kF>("Selu", 1, [](const KernelContext &ctx) {
    float alpha = ctx.attrFloat("alpha", 1.67326319217681884765625f);
    float gamma = ctx.attrFloat("gamma", 1.05070102214813232421875f);
    return [alpha, gamma](auto x) {
      using C = decltype(x);
      return x > C(0) ? C(C(gamma) * x) : C(C(gamma) * (C(alpha) * std::exp(x) - C(alpha)));
    };
  }));
  r.add(activation<kF>("Celu", 12, [](const KernelContext &ctx) {
    float alpha = ctx.attrFloat("alpha", 1.0f);
    if (alpha == 0)
      ctx.fail("attribute 'alpha' must be non-zero");
    return [alpha](auto x) {
      using C = decltype(x);
      C a = C(alpha);
      C neg = a * (std::exp(x / a) - C(1));
      return C((x > C(0) ? x : C(0)) + (neg < C(0) ? neg : C(0)));
    };
  }));
  r.add(activation<kF>("HardSigmoid", 1, [](const KernelContext &ctx) {
    float alpha = ctx.attrFloat("alpha", 0.2f), beta = ctx.attrFloat("beta", 0.5f);
    return [alpha, beta](auto x) {
      using C = decltype(x);
      C v = C(alpha) * x + C(beta);
      return v < C(0) ? C(0) : v > C(1) ? C(1) : v;
    };
  }));
  r.add(activation<kF>("HardSwish", 14, plain([](auto x) {
    using C = decltype(x);
    C v = x * C(1.0 / 6.0) + C(0.5);
    v = v < C(0) ? C(0) : v > C(1) ? C(1) : v;
    return C(x * v);
  })));
  r.add(activation<kF>("Sigmoid", 1, plain([](auto x) { return sigmoid(x); })));
  r.add(activation<kF>("Softplus", 1, plain([](auto x) {
    using C = decltype(x);
    // log(1 + exp(x)) without overflow
    return x > C(0) ? C(x + std::log1p(std::exp(-x))) : C(std::log1p(std::exp(x)));
  })));
  r.add(activation<kF>("Softsign", 1, plain([](auto x) {
    using C = decltype(x);
    return C(x / (C(1) + std::fabs(x)));
  })));
  r.add(activation<kF>("ThresholdedRelu", 10, [](const KernelContext &ctx) {
    float alpha = ctx.attrFloat("alpha", 1.0f);
    return [alpha](auto x) {
      using C = decltype(x);
      return x > C(alpha) ? x : C(0);
    };
  }));
  {
    OpDef d = activation<kF | kSI | kUI>("Shrink", 9, [](const KernelContext &ctx) {
      double lambd = ctx.attrFloat("lambd", 0.5f), bias = ctx.attrFloat("bias", 0.0f);
      return [lambd, bias](auto x) {
        using C = decltype(x);
        if constexpr (std::is_integral_v<C>) {
          double v = double(x);
          return v < -lambd ? v + bias : v > lambd ? v - bias : 0.0;
        } else {
          return x < C(-lambd) ? C(x + C(bias)) : x > C(lambd) ? C(x - C(bias)) : C(0);
        }
      };
    });
    d.notes = "integer inputs compute in double and saturate back";
    r.add(std::move(d));
  }
  {
    OpDef d;
    d.name = "PRelu";
    d.sinceVersion = 1;
    d.untilVersion = 17;
    d.minInputs = d.maxInputs = 2;
    d.minOutputs = d.maxOutputs = 1;
    d.dtypes = "float types, int32, int64, uint32, uint64";
    d.notes = "slope broadcasts unidirectionally to X";
    d.infer = inferSameAs(0);
    d.kernel = preluKernel;
    d.pattern = OpPattern::Broadcast;
    r.add(std::move(d));
  }
  attachActivationLowerings(r);
}

} // namespace tessel
