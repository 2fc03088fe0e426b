//===- Normalization.cpp - Normalization ops ---------------------------------------===//
//
// Softmax, LogSoftmax, Hardmax (one kernel over the (outer, axis, inner) view), the
// normalizations (BatchNormalization, LayerNormalization, InstanceNormalization, LRN,
// MeanVarianceNormalization), the losses (NegativeLogLikelihoodLoss, SoftmaxCrossEntropyLoss)
// and Dropout.
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"
#include "tessel/Support/Random.h"
#include "tessel/Graph/Lowering.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <type_traits>

namespace tessel {

namespace {

/// The type float math runs in: double for f64, float otherwise.
template <class T> using MathOf = std::conditional_t<std::is_same_v<T, double>, double, float>;

template <class T> const T *dataOf(const Tensor &t) { return t.data<T>(); }

/// Calls f(T{}) for float types, naming the op's input in the error otherwise.
template <class F> void dispatchFloatIn(const AttrReader &ctx, DType dt, const char *what, F &&f) {
  if (dt != DType::f32 && dt != DType::f16 && dt != DType::bf16 && dt != DType::f64)
    ctx.fail(what, " should have a float element type, got ", dtypeName(dt));
  dispatchFloat(dt, std::forward<F>(f));
}

struct AxisView {
  int64_t outer = 1, n = 1, inner = 1;
};

//===----------------------------------------------------------------------===//
// Softmax / LogSoftmax / Hardmax
//===----------------------------------------------------------------------===//

enum class SM { Softmax, LogSoftmax, Hardmax };

/// Hardmax's order: a NaN beats any number and the first NaN stays (numpy's argmax).
template <class C> bool beats(C a, C best) {
  return !std::isnan(best) && (a > best || std::isnan(a));
}

/// One block of n * inner elements (n along the axis, inner contiguous). x and y may alias.
/// scratch holds at least 2 * inner elements.
template <class C> void softmaxBlock(SM mode, const C *x, C *y, int64_t n, int64_t inner, C *scratch) {
  if (n == 0)
    return;
  if (inner == 1) {
    if (mode == SM::Hardmax) {
      int64_t best = 0;
      for (int64_t j = 1; j < n; ++j)
        if (beats(x[j], x[best]))
          best = j;
      for (int64_t j = 0; j < n; ++j)
        y[j] = C(0);
      y[best] = C(1);
      return;
    }
    C m = x[0];
    for (int64_t j = 1; j < n; ++j)
      m = x[j] > m ? x[j] : m;
    if (!std::isfinite(m))
      m = C(0);
    C s = 0;
    if (mode == SM::Softmax) {
      for (int64_t j = 0; j < n; ++j) {
        C e = std::exp(x[j] - m);
        y[j] = e;
        s += e;
      }
      C inv = C(1) / s;
      for (int64_t j = 0; j < n; ++j)
        y[j] *= inv;
      return;
    }
    for (int64_t j = 0; j < n; ++j)
      s += std::exp(x[j] - m);
    C l = m + std::log(s);
    for (int64_t j = 0; j < n; ++j)
      y[j] = x[j] - l;
    return;
  }
  C *mx = scratch, *s = scratch + inner;
  for (int64_t i = 0; i < inner; ++i)
    mx[i] = x[i];
  if (mode == SM::Hardmax) {
    // s holds the index of the first maximum (as C: exact for any realistic axis size)
    for (int64_t i = 0; i < inner; ++i)
      s[i] = 0;
    for (int64_t k = 1; k < n; ++k) {
      const C *r = x + k * inner;
      for (int64_t i = 0; i < inner; ++i)
        if (beats(r[i], mx[i])) {
          mx[i] = r[i];
          s[i] = C(k);
        }
    }
    for (int64_t k = 0; k < n; ++k) {
      C *r = y + k * inner;
      for (int64_t i = 0; i < inner; ++i)
        r[i] = int64_t(s[i]) == k ? C(1) : C(0);
    }
    return;
  }
  for (int64_t k = 1; k < n; ++k) {
    const C *r = x + k * inner;
    for (int64_t i = 0; i < inner; ++i)
      mx[i] = r[i] > mx[i] ? r[i] : mx[i];
  }
  for (int64_t i = 0; i < inner; ++i) {
    if (!std::isfinite(mx[i]))
      mx[i] = C(0);
    s[i] = 0;
  }
  if (mode == SM::Softmax) {
    for (int64_t k = 0; k < n; ++k) {
      const C *r = x + k * inner;
      C *o = y + k * inner;
      for (int64_t i = 0; i < inner; ++i) {
        C e = std::exp(r[i] - mx[i]);
        o[i] = e;
        s[i] += e;
      }
    }
    for (int64_t i = 0; i < inner; ++i)
      s[i] = C(1) / s[i];
    for (int64_t k = 0; k < n; ++k) {
      C *o = y + k * inner;
      for (int64_t i = 0; i < inner; ++i)
        o[i] *= s[i];
    }
    return;
  }
  for (int64_t k = 0; k < n; ++k) {
    const C *r = x + k * inner;
    for (int64_t i = 0; i < inner; ++i)
      s[i] += std::exp(r[i] - mx[i]);
  }
  for (int64_t i = 0; i < inner; ++i)
    s[i] = mx[i] + std::log(s[i]);
  for (int64_t k = 0; k < n; ++k) {
    const C *r = x + k * inner;
    C *o = y + k * inner;
    for (int64_t i = 0; i < inner; ++i)
      o[i] = r[i] - s[i];
  }
}

/// Softmax-like op over the (outer, n, inner) view of `x`, writing into `y` (same dtype/shape).
void softmaxTensor(SM mode, const Tensor &x, Tensor &y, AxisView v) {
  dispatchFloat(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using C = MathOf<T>;
    const T *in = x.data<T>();
    T *out = y.data<T>();
    const int64_t block = v.n * v.inner;
    std::vector<C> scratch(2 * v.inner);
    if constexpr (std::is_same_v<T, C>) {
      for (int64_t o = 0; o < v.outer; ++o)
        softmaxBlock<C>(mode, in + o * block, out + o * block, v.n, v.inner, scratch.data());
    } else {
      std::vector<C> buf(block);
      for (int64_t o = 0; o < v.outer; ++o) {
        const T *src = in + o * block;
        for (int64_t j = 0; j < block; ++j)
          buf[j] = C(src[j]);
        softmaxBlock<C>(mode, buf.data(), buf.data(), v.n, v.inner, scratch.data());
        T *dst = out + o * block;
        for (int64_t j = 0; j < block; ++j)
          dst[j] = T(buf[j]);
      }
    }
  });
}

void kernelSoftmax(KernelContext &ctx, SM mode) {
  const Tensor &x = ctx.input(0);
  const int64_t r = x.rank();
  AxisView v;
  if (ctx.opset() < 13) {
    // the input is coerced to 2-D [prod(dims[:axis]), prod(dims[axis:])]
    int64_t axis = ctx.attrInt("axis", 1);
    if (axis < -r || axis > r)
      ctx.fail("axis ", axis, " is out of range for a tensor of rank ", r, " (expected [", -r,
               ", ", r, "])");
    if (axis < 0)
      axis += r;
    for (int64_t i = 0; i < r; ++i)
      (i < axis ? v.outer : v.n) *= x.dim(i);
  } else {
    ctx.check(r >= 1, "input should have rank >= 1, got a scalar");
    int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", -1), r);
    for (int64_t i = 0; i < r; ++i)
      (i < axis ? v.outer : i == axis ? v.n : v.inner) *= x.dim(i);
  }
  Tensor y(x.dtype(), x.shape());
  if (x.numel() > 0) {
    dispatchFloatIn(ctx, x.dtype(), "input", [](auto) {});
    softmaxTensor(mode, x, y, v);
  }
  ctx.setOutput(0, std::move(y));
}

//===----------------------------------------------------------------------===//
// BatchNormalization
//===----------------------------------------------------------------------===//

bool batchNormTraining(const AttrReader &ctx, size_t numOutputs, bool anyExtraOutput) {
  if (ctx.opset() >= 14)
    return ctx.attrInt("training_mode", 0) != 0;
  if (ctx.opset() < 7)
    return false; // is_test=0 (training) is treated as inference, like every inference runtime
  return anyExtraOutput;
}

void inferBatchNorm(InferContext &ctx) {
  ctx.setOutputType(0, ctx.inputType(0));
  for (size_t i = 1; i < ctx.numOutputs(); ++i) {
    size_t like = i % 2 ? 3 : 4; // outputs 1, 3 are means (like input 3), 2, 4 variances
    ctx.setOutputType(i, Type::tensor(ctx.inputType(like).dtype, tensorShape(ctx, like)));
  }
}

void kernelBatchNorm(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  ctx.check(x.rank() >= 2, "input X should have rank >= 2 (N x C x ...), got shape ",
            x.shapeString());
  const int64_t N = x.dim(0), Cn = x.dim(1);
  int64_t S = 1;
  for (int64_t i = 2; i < x.rank(); ++i)
    S *= x.dim(i);
  const double eps = ctx.attrFloat("epsilon", 1e-5f);
  const double momentum = ctx.attrFloat("momentum", 0.9f);
  bool extra = false;
  for (size_t i = 1; i < ctx.numOutputs(); ++i)
    extra |= ctx.hasOutput(i);
  const bool training = batchNormTraining(ctx, ctx.numOutputs(), extra);
  const bool perElement = ctx.opset() < 9 && ctx.attrInt("spatial", 1) == 0;
  const int64_t P = perElement ? Cn * S : Cn; // parameter count
  const char *names[] = {"X", "scale", "B", "mean", "var"};
  std::vector<double> prm[5];
  for (int i = 1; i < 5; ++i) {
    const Tensor &t = ctx.input(i);
    ctx.check(isFloat(t.dtype()), "input ", names[i], " should have a float element type, got ",
              dtypeName(t.dtype()));
    ctx.check(t.numel() == P, "input ", names[i], " should have ", P, " elements (",
              perElement ? "C x spatial" : "C", " of X ", x.shapeString(), "), got shape ",
              t.shapeString());
    prm[i] = t.toDoubleVector();
  }
  std::vector<double> bmean, bvar;
  if (training) {
    // batch statistics per channel (population variance), over N and the spatial dims
    bmean.assign(Cn, 0.0);
    bvar.assign(Cn, 0.0);
    dispatchFloatIn(ctx, x.dtype(), "X", [&](auto tag) {
      using T = decltype(tag);
      const T *in = x.data<T>();
      for (int64_t c = 0; c < Cn; ++c) {
        double s = 0;
        for (int64_t n = 0; n < N; ++n) {
          const T *p = in + (n * Cn + c) * S;
          for (int64_t j = 0; j < S; ++j)
            s += double(p[j]);
        }
        double m = N * S > 0 ? s / double(N * S) : 0.0;
        double q = 0;
        for (int64_t n = 0; n < N; ++n) {
          const T *p = in + (n * Cn + c) * S;
          for (int64_t j = 0; j < S; ++j) {
            double d = double(p[j]) - m;
            q += d * d;
          }
        }
        bmean[c] = m;
        bvar[c] = N * S > 0 ? q / double(N * S) : 0.0;
      }
    });
  }
  // y = x * a + b with a = scale / sqrt(var + eps), b = B - mean * a
  std::vector<double> a(P), b(P);
  for (int64_t p = 0; p < P; ++p) {
    double m = training ? bmean[p] : prm[3][p];
    double v = training ? bvar[p] : prm[4][p];
    a[p] = prm[1][p] / std::sqrt(v + eps);
    b[p] = prm[2][p] - m * a[p];
  }
  Tensor y(x.dtype(), x.shape());
  dispatchFloatIn(ctx, x.dtype(), "X", [&](auto tag) {
    using T = decltype(tag);
    using C = MathOf<T>;
    const T *in = x.data<T>();
    T *out = y.data<T>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < Cn; ++c) {
        const T *p = in + (n * Cn + c) * S;
        T *q = out + (n * Cn + c) * S;
        if (perElement) {
          const double *pa = a.data() + c * S, *pb = b.data() + c * S;
          for (int64_t j = 0; j < S; ++j)
            q[j] = T(C(double(p[j]) * pa[j] + pb[j]));
        } else {
          const C ca = C(a[c]), cb = C(b[c]);
          for (int64_t j = 0; j < S; ++j)
            q[j] = T(C(p[j]) * ca + cb);
        }
      }
  });
  ctx.setOutput(0, std::move(y));
  if (ctx.numOutputs() <= 1)
    return;
  // training outputs: running mean/var (1, 2), then saved (batch) mean/var (3, 4; opset < 14)
  auto make = [&](int like, const std::vector<double> &vals) {
    const Tensor &ref = ctx.input(like);
    Tensor t(DType::f64, ref.shape());
    double *d = t.data<double>();
    for (int64_t i = 0; i < t.numel(); ++i)
      d[i] = i < int64_t(vals.size()) ? vals[i] : 0.0;
    return t.cast(ref.dtype());
  };
  std::vector<double> rm(P), rv(P);
  for (int64_t p = 0; p < P; ++p) {
    rm[p] = training ? prm[3][p] * momentum + bmean[p] * (1 - momentum) : prm[3][p];
    rv[p] = training ? prm[4][p] * momentum + bvar[p] * (1 - momentum) : prm[4][p];
  }
  if (ctx.hasOutput(1))
    ctx.setOutput(1, make(3, rm));
  if (ctx.hasOutput(2))
    ctx.setOutput(2, make(4, rv));
  if (ctx.hasOutput(3))
    ctx.setOutput(3, make(3, training ? bmean : prm[3]));
  if (ctx.hasOutput(4))
    ctx.setOutput(4, make(4, training ? bvar : prm[4]));
}

//===----------------------------------------------------------------------===//
// LayerNormalization
//===----------------------------------------------------------------------===//

DType stashType(const AttrReader &ctx) {
  int64_t st = ctx.attrInt("stash_type", 1);
  std::optional<DType> dt = dtypeFromOnnx(int(st));
  if (!dt || !isFloat(*dt))
    ctx.fail("stash_type ", st, " is not a float type");
  return *dt;
}

void inferLayerNorm(InferContext &ctx) {
  ctx.setOutputType(0, ctx.inputType(0));
  if (ctx.numOutputs() <= 1)
    return;
  DType st = stashType(ctx);
  const Shape &in = tensorShape(ctx, 0);
  Shape s = Shape::unknownRank();
  if (in.rankKnown) {
    int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", -1), in.rank());
    std::vector<Dim> d(in.dims.begin(), in.dims.begin() + axis);
    d.resize(in.rank(), Dim(1));
    s = Shape(d);
  }
  for (size_t i = 1; i < ctx.numOutputs(); ++i)
    ctx.setOutputType(i, Type::tensor(st, s));
}

/// `t` unidirectionally broadcast to `shape` (the trailing dims of X), as doubles.
std::vector<double> expandTo(const AttrReader &ctx, const Tensor &t, const char *what,
                             const std::vector<int64_t> &shape) {
  ctx.check(t.rank() <= int64_t(shape.size()), what, " of shape ", t.shapeString(),
            " cannot be broadcast to the normalized shape ", shapeToString(shape));
  size_t off = shape.size() - t.rank();
  for (int64_t i = 0; i < t.rank(); ++i)
    ctx.check(t.dim(i) == 1 || t.dim(i) == shape[off + i], what, " of shape ", t.shapeString(),
              " cannot be broadcast to the normalized shape ", shapeToString(shape));
  std::vector<double> src = t.toDoubleVector();
  int64_t total = 1;
  for (int64_t d : shape)
    total *= d;
  std::vector<double> out(total);
  std::vector<int64_t> strides = broadcastStrides(t.shape(), shape);
  std::vector<int64_t> idx(shape.size(), 0);
  int64_t s = 0;
  for (int64_t i = 0; i < total; ++i) {
    out[i] = src[s];
    for (size_t d = shape.size(); d-- > 0;) {
      s += strides[d];
      if (++idx[d] < shape[d])
        break;
      s -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
  return out;
}

void kernelLayerNorm(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  ctx.check(x.rank() >= 1, "input X should have rank >= 1, got a scalar");
  const int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", -1), x.rank());
  const double eps = ctx.attrFloat("epsilon", 1e-5f);
  DType st = stashType(ctx);
  std::vector<int64_t> normShape(x.shape().begin() + axis, x.shape().end());
  int64_t rows = 1, D = 1;
  for (int64_t i = 0; i < x.rank(); ++i)
    (i < axis ? rows : D) *= x.dim(i);
  std::vector<double> scale = expandTo(ctx, ctx.input(1), "Scale", normShape);
  std::vector<double> bias;
  if (ctx.hasInput(2))
    bias = expandTo(ctx, ctx.input(2), "B", normShape);
  std::vector<int64_t> statShape(x.shape().begin(), x.shape().begin() + axis);
  statShape.resize(x.rank(), 1);
  Tensor mean(DType::f64, statShape), inv(DType::f64, statShape);
  double *pm = mean.data<double>(), *pi = inv.data<double>();
  Tensor y(x.dtype(), x.shape());
  dispatchFloatIn(ctx, x.dtype(), "X", [&](auto tag) {
    using T = decltype(tag);
    const T *in = x.data<T>();
    T *out = y.data<T>();
    for (int64_t r = 0; r < rows; ++r) {
      const T *p = in + r * D;
      T *q = out + r * D;
      double s = 0;
      for (int64_t j = 0; j < D; ++j)
        s += double(p[j]);
      double m = D ? s / double(D) : 0.0;
      double v = 0;
      for (int64_t j = 0; j < D; ++j) {
        double d = double(p[j]) - m;
        v += d * d;
      }
      v = D ? v / double(D) : 0.0;
      double is = 1.0 / std::sqrt(v + eps);
      pm[r] = m;
      pi[r] = is;
      for (int64_t j = 0; j < D; ++j)
        q[j] = T(MathOf<T>((double(p[j]) - m) * is * scale[j] + (bias.empty() ? 0.0 : bias[j])));
    }
  });
  ctx.setOutput(0, std::move(y));
  if (ctx.hasOutput(1))
    ctx.setOutput(1, mean.cast(st));
  if (ctx.hasOutput(2))
    ctx.setOutput(2, inv.cast(st));
}

//===----------------------------------------------------------------------===//
// InstanceNormalization
//===----------------------------------------------------------------------===//

void kernelInstanceNorm(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  ctx.check(x.rank() >= 2, "input should have rank >= 2 (N x C x ...), got shape ",
            x.shapeString());
  const int64_t N = x.dim(0), Cn = x.dim(1);
  int64_t S = 1;
  for (int64_t i = 2; i < x.rank(); ++i)
    S *= x.dim(i);
  const double eps = ctx.attrFloat("epsilon", 1e-5f);
  const Tensor &sc = ctx.input(1), &bi = ctx.input(2);
  ctx.check(sc.numel() == Cn && sc.rank() == 1, "scale should have shape [", Cn, "], got ",
            sc.shapeString());
  ctx.check(bi.numel() == Cn && bi.rank() == 1, "B should have shape [", Cn, "], got ",
            bi.shapeString());
  std::vector<double> scale = sc.toDoubleVector(), bias = bi.toDoubleVector();
  Tensor y(x.dtype(), x.shape());
  dispatchFloatIn(ctx, x.dtype(), "input", [&](auto tag) {
    using T = decltype(tag);
    using C = MathOf<T>;
    const T *in = x.data<T>();
    T *out = y.data<T>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < Cn; ++c) {
        const T *p = in + (n * Cn + c) * S;
        T *q = out + (n * Cn + c) * S;
        double s = 0;
        for (int64_t j = 0; j < S; ++j)
          s += double(p[j]);
        double m = S ? s / double(S) : 0.0;
        double v = 0;
        for (int64_t j = 0; j < S; ++j) {
          double d = double(p[j]) - m;
          v += d * d;
        }
        v = S ? v / double(S) : 0.0;
        double a = scale[c] / std::sqrt(v + eps);
        double b = bias[c] - m * a;
        const C ca = C(a), cb = C(b);
        for (int64_t j = 0; j < S; ++j)
          q[j] = T(C(p[j]) * ca + cb);
      }
  });
  ctx.setOutput(0, std::move(y));
}

//===----------------------------------------------------------------------===//
// LRN
//===----------------------------------------------------------------------===//

void kernelLRN(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  ctx.check(x.rank() >= 2, "input should have rank >= 2 (N x C x ...), got shape ",
            x.shapeString());
  const double alpha = ctx.attrFloat("alpha", 1e-4f), beta = ctx.attrFloat("beta", 0.75f),
               bias = ctx.attrFloat("bias", 1.0f);
  const int64_t size = ctx.attrInt("size");
  ctx.check(size >= 1, "size should be >= 1, got ", size);
  const int64_t N = x.dim(0), Cn = x.dim(1);
  int64_t S = 1;
  for (int64_t i = 2; i < x.rank(); ++i)
    S *= x.dim(i);
  const int64_t lo = (size - 1) / 2, hi = size - 1 - lo; // floor and ceil of (size-1)/2
  Tensor y(x.dtype(), x.shape());
  dispatchFloatIn(ctx, x.dtype(), "input", [&](auto tag) {
    using T = decltype(tag);
    const T *in = x.data<T>();
    T *out = y.data<T>();
    std::vector<double> sq(S);
    for (int64_t n = 0; n < N; ++n)
      for (int64_t c = 0; c < Cn; ++c) {
        std::fill(sq.begin(), sq.end(), 0.0);
        for (int64_t k = std::max<int64_t>(0, c - lo); k <= std::min(Cn - 1, c + hi); ++k) {
          const T *p = in + (n * Cn + k) * S;
          for (int64_t j = 0; j < S; ++j)
            sq[j] += double(p[j]) * double(p[j]);
        }
        const T *p = in + (n * Cn + c) * S;
        T *q = out + (n * Cn + c) * S;
        for (int64_t j = 0; j < S; ++j)
          q[j] = T(MathOf<T>(double(p[j]) / std::pow(bias + alpha / double(size) * sq[j], beta)));
      }
  });
  ctx.setOutput(0, std::move(y));
}

//===----------------------------------------------------------------------===//
// MeanVarianceNormalization
//===----------------------------------------------------------------------===//

void kernelMVN(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  const int64_t r = x.rank();
  std::vector<int64_t> axes = ctx.attrInts("axes", {0, 2, 3});
  std::vector<char> mask(r, 0);
  for (int64_t a : axes) {
    int64_t n = normalizeAxis(ctx, a, r, "axes entry");
    ctx.check(!mask[n], "axis ", a, " is given twice in axes");
    mask[n] = 1;
  }
  // output index of each input element, via an odometer over the input
  std::vector<int64_t> outStride(r, 0);
  int64_t outNumel = 1;
  for (int64_t i = r; i-- > 0;)
    if (!mask[i]) {
      outStride[i] = outNumel;
      outNumel *= x.dim(i);
    }
  const int64_t total = x.numel();
  const int64_t count = outNumel ? total / outNumel : 0;
  auto forEach = [&](auto &&f) {
    std::vector<int64_t> idx(r, 0);
    int64_t o = 0;
    for (int64_t i = 0; i < total; ++i) {
      f(i, o);
      for (int64_t d = r; d-- > 0;) {
        o += outStride[d];
        if (++idx[d] < x.dim(d))
          break;
        o -= outStride[d] * x.dim(d);
        idx[d] = 0;
      }
    }
  };
  Tensor y(x.dtype(), x.shape());
  dispatchFloatIn(ctx, x.dtype(), "input", [&](auto tag) {
    using T = decltype(tag);
    const T *in = x.data<T>();
    T *out = y.data<T>();
    std::vector<double> s(outNumel, 0.0), sq(outNumel, 0.0);
    forEach([&](int64_t i, int64_t o) {
      double v = double(in[i]);
      s[o] += v;
      sq[o] += v * v;
    });
    for (int64_t o = 0; o < outNumel; ++o) {
      double m = count ? s[o] / double(count) : 0.0;
      double var = count ? sq[o] / double(count) - m * m : 0.0;
      s[o] = m;
      sq[o] = 1.0 / (std::sqrt(std::max(var, 0.0)) + 1e-9);
    }
    forEach([&](int64_t i, int64_t o) {
      out[i] = T(MathOf<T>((double(in[i]) - s[o]) * sq[o]));
    });
  });
  ctx.setOutput(0, std::move(y));
}

//===----------------------------------------------------------------------===//
// NegativeLogLikelihoodLoss / SoftmaxCrossEntropyLoss
//===----------------------------------------------------------------------===//

void inferLoss(InferContext &ctx) {
  const Type &t = ctx.inputType(0);
  std::string red = ctx.attrString("reduction", "mean");
  if (red == "none")
    ctx.setOutputType(0, Type::tensor(t.dtype, tensorShape(ctx, 1)));
  else
    ctx.setOutputType(0, Type::tensor(t.dtype, Shape(std::vector<Dim>{})));
  if (ctx.numOutputs() > 1)
    ctx.setOutputType(1, t);
}

/// NLL over logp (N, C, D...) given as a tensor of T; returns the loss tensor (dtype T).
Tensor nllLoss(KernelContext &ctx, const Tensor &logp, const Tensor &target, const Tensor *weight) {
  ctx.check(logp.rank() >= 2, "input should have rank >= 2 (N x C x ...), got shape ",
            logp.shapeString());
  const int64_t N = logp.dim(0), Cn = logp.dim(1);
  int64_t D = 1;
  for (int64_t i = 2; i < logp.rank(); ++i)
    D *= logp.dim(i);
  std::vector<int64_t> tshape = logp.shape();
  tshape.erase(tshape.begin() + 1);
  ctx.check(target.shape() == tshape, "target should have shape ", shapeToString(tshape),
            " (input ", logp.shapeString(), " without the class dim), got ", target.shapeString());
  ctx.check(target.dtype() == DType::i32 || target.dtype() == DType::i64,
            "target should be int32 or int64, got ", dtypeName(target.dtype()));
  std::vector<double> w;
  if (weight) {
    ctx.check(weight->rank() == 1 && weight->dim(0) == Cn, "weight should have shape [", Cn,
              "], got ", weight->shapeString());
    w = weight->toDoubleVector();
  }
  const std::string red = ctx.attrString("reduction", "mean");
  ctx.check(red == "none" || red == "sum" || red == "mean", "reduction should be none, sum or mean, got '",
            red, "'");
  const bool hasIgnore = ctx.hasAttr("ignore_index");
  const int64_t ignore = ctx.attrInt("ignore_index", 0);
  std::vector<int64_t> tv = target.toInt64Vector();
  Tensor loss(logp.dtype(), red == "none" ? tshape : std::vector<int64_t>{});
  dispatchFloatIn(ctx, logp.dtype(), "input", [&](auto tag) {
    using T = decltype(tag);
    const T *lp = logp.data<T>();
    T *out = loss.data<T>();
    double sum = 0, wsum = 0;
    for (int64_t n = 0; n < N; ++n)
      for (int64_t d = 0; d < D; ++d) {
        int64_t i = n * D + d;
        int64_t t = tv[i];
        double l = 0, wt = 0;
        if (!(hasIgnore && t == ignore)) {
          if (t < 0 || t >= Cn)
            ctx.fail("target value ", t, " at index ", i, " is out of range [0, ", Cn, ")");
          wt = weight ? w[t] : 1.0;
          l = -double(lp[(n * Cn + t) * D + d]) * wt;
        }
        if (red == "none")
          out[i] = T(MathOf<T>(l));
        sum += l;
        wsum += wt;
      }
    if (red == "sum")
      out[0] = T(MathOf<T>(sum));
    else if (red == "mean")
      out[0] = T(MathOf<T>(sum / wsum));
  });
  return loss;
}

void kernelNLL(KernelContext &ctx) {
  const Tensor *w = ctx.hasInput(2) ? &ctx.input(2) : nullptr;
  ctx.setOutput(0, nllLoss(ctx, ctx.input(0), ctx.input(1), w));
}

void kernelSCE(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  ctx.check(x.rank() >= 2, "scores should have rank >= 2 (N x C x ...), got shape ",
            x.shapeString());
  dispatchFloatIn(ctx, x.dtype(), "scores", [](auto) {});
  AxisView v;
  v.outer = x.dim(0);
  v.n = x.dim(1);
  for (int64_t i = 2; i < x.rank(); ++i)
    v.inner *= x.dim(i);
  Tensor logp(x.dtype(), x.shape());
  if (x.numel() > 0)
    softmaxTensor(SM::LogSoftmax, x, logp, v);
  const Tensor *w = ctx.hasInput(2) ? &ctx.input(2) : nullptr;
  ctx.setOutput(0, nllLoss(ctx, logp, ctx.input(1), w));
  if (ctx.numOutputs() > 1)
    ctx.setOutput(1, std::move(logp));
}

//===----------------------------------------------------------------------===//
// Dropout
//===----------------------------------------------------------------------===//

void inferDropout(InferContext &ctx) {
  const Type &t = ctx.inputType(0);
  ctx.setOutputType(0, t);
  if (ctx.numOutputs() > 1)
    ctx.setOutputType(1, Type::tensor(ctx.opset() >= 10 ? DType::boolean : t.dtype,
                                      tensorShape(ctx, 0)));
}

void kernelDropout(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  double ratio = ctx.attrFloat("ratio", 0.5f);
  bool training = false;
  if (ctx.opset() >= 12) {
    ratio = 0.5;
    if (ctx.hasInput(1)) {
      const Tensor &r = ctx.input(1);
      ctx.check(isFloat(r.dtype()) && r.numel() == 1, "ratio should be a float scalar, got ",
                r.typeString());
      ratio = r.getDouble(0);
    }
    if (ctx.hasInput(2)) {
      const Tensor &t = ctx.input(2);
      ctx.check(t.dtype() == DType::boolean && t.numel() == 1,
                "training_mode should be a bool scalar, got ", t.typeString());
      training = t.getInt64(0) != 0;
    }
  }
  const bool wantMask = ctx.hasOutput(1);
  const DType maskType = ctx.opset() >= 10 ? DType::boolean : x.dtype();
  if (!training || ratio == 0) {
    ctx.setOutput(0, x);
    if (wantMask) {
      Tensor m(DType::boolean, x.shape());
      std::fill_n(m.data<bool>(), m.numel(), true);
      ctx.setOutput(1, maskType == DType::boolean ? m : m.cast(maskType));
    }
    return;
  }
  ctx.check(ratio >= 0 && ratio < 1, "ratio should be in [0, 1), got ", ratio);
  // The mask draws uniform doubles as numpy's legacy RandomState does, so a given seed
  // reproduces numpy's np.random.seed(seed).
  const std::vector<double> u = numpyLegacyUniforms(
      ctx.hasAttr("seed") ? uint32_t(ctx.attrInt("seed")) : uint32_t(std::random_device{}()),
      x.numel());
  Tensor m(DType::boolean, x.shape());
  bool *mk = m.data<bool>();
  for (int64_t i = 0; i < x.numel(); ++i)
    mk[i] = u[size_t(i)] >= ratio;
  Tensor y(x.dtype(), x.shape());
  dispatchFloatIn(ctx, x.dtype(), "data", [&](auto tag) {
    using T = decltype(tag);
    using C = MathOf<T>;
    const C scale = C(1) / (C(1) - C(ratio));
    const T *in = x.data<T>();
    T *out = y.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i)
      out[i] = mk[i] ? T(C(in[i]) * scale) : T(C(0));
  });
  ctx.setOutput(0, std::move(y));
  if (wantMask)
    ctx.setOutput(1, maskType == DType::boolean ? m : m.cast(maskType));
}

} // namespace

// --- lowerings of the Normalization ops
// Softmax/LogSoftmax (max, sum of exp, then the elementwise epilogue), BatchNormalization in
// inference mode (per-channel affine map) and LayerNormalization (mean and variance reductions
// over the trailing axes) as TE computes. Reduced intermediates keep the reduced dims as 1.
namespace {

using loop::Expr;
using loop::Var;

/// The shape with the dims in `mask` set to 1.
std::vector<int64_t> keptShape(const std::vector<int64_t> &xs, const std::vector<char> &mask) {
  std::vector<int64_t> s = xs;
  for (size_t d = 0; d < s.size(); ++d)
    if (mask[d])
      s[d] = 1;
  return s;
}
/// Index into x for an output index `iv` of the kept shape, with reduce axes on masked dims.
std::vector<Expr> keptIndex(const std::vector<char> &mask, const std::vector<Var> &iv,
                            const std::vector<te::IterVar> &red) {
  std::vector<Expr> idx;
  size_t r = 0;
  for (size_t d = 0; d < mask.size(); ++d)
    idx.push_back(mask[d] ? Expr(red[r++]) : Expr(iv[d]));
  return idx;
}
/// Index into a kept-shape tensor for a full index `iv`.
std::vector<Expr> toKept(const std::vector<char> &mask, const std::vector<Var> &iv) {
  std::vector<Expr> idx;
  for (size_t d = 0; d < mask.size(); ++d)
    idx.push_back(mask[d] ? Expr(int64_t(0)) : Expr(iv[d]));
  return idx;
}
std::vector<te::IterVar> reduceAxesOf(const std::vector<int64_t> &xs, const std::vector<char> &mask) {
  std::vector<te::IterVar> red;
  for (size_t d = 0; d < xs.size(); ++d)
    if (mask[d])
      red.push_back(te::reduce_axis({0, xs[d]}, "r" + std::to_string(d)));
  return red;
}

/// A row maximum as the reference kernels use it: 0 when it is not finite (a row holding +inf,
/// or only -inf), so that x - max is never inf - inf.
Expr finiteOrZero(const Expr &m, DType dt) {
  Expr inf = lowering::constant(dt, std::numeric_limits<double>::infinity());
  return loop::select(loop::fabs(m) < inf, m, lowering::constant(dt, 0.0));
}

void lowerSoftmax(LowerContext &ctx, SM mode) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  DType dt = ctx.inputDType(0);
  ctx.check(isFloat(dt), "lowering expects a float input, got ", dtypeName(dt));
  int64_t r = int64_t(xs.size());
  ctx.check(r >= 1, "input should have rank >= 1, got a scalar");
  std::vector<char> mask(r, 0);
  if (ctx.opset() < 13) {
    int64_t axis = ctx.attrInt("axis", 1);
    ctx.check(axis >= -r && axis <= r, "axis ", axis, " is out of range for rank ", r);
    if (axis < 0)
      axis += r;
    for (int64_t d = axis; d < r; ++d)
      mask[d] = 1; // coerced to 2-D: [prod(dims[:axis]), prod(dims[axis:])]
  } else {
    mask[lowering::normalizeAxis(ctx, ctx.attrInt("axis", -1), r)] = 1;
  }
  te::Tensor X = ctx.input(0);
  std::vector<Expr> ks = lowering::shapeExprs(keptShape(xs, mask));
  std::vector<te::IterVar> r1 = reduceAxesOf(xs, mask), r2 = reduceAxesOf(xs, mask);
  if (mode == SM::Hardmax) {
    // 1 at the first maximum of the reduced region (row-major over its dims), 0 elsewhere:
    // the maximum, then the smallest flat position that holds it.
    auto flat = [&](auto idx) { // idx(j): the index along the j-th reduced dim
      Expr f = Expr(int64_t(0));
      size_t j = 0;
      for (int64_t d = 0; d < r; ++d)
        if (mask[d])
          f = f * xs[d] + idx(j++);
      return f;
    };
    te::Tensor M = ctx.compute(ks, [&](std::vector<Var> iv) {
      return te::max(X.access(keptIndex(mask, iv, r1)), r1);
    }, "max");
    int64_t count = 1;
    for (int64_t d = 0; d < r; ++d)
      count *= mask[d] ? xs[d] : 1;
    // A NaN counts as the maximum (numpy's argmax): the first NaN's position when there is one
    // (< count), else count + the first maximum's (then the maximum is NaN-free).
    te::Tensor F = ctx.compute(ks, [&](std::vector<Var> iv) {
      Expr x = X.access(keptIndex(mask, iv, r2));
      Expr hit = x == M.access(toKept(mask, iv));
      Expr pos = flat([&](size_t j) { return Expr(r2[j]); });
      return te::min(loop::select(x != x, pos, loop::select(hit, pos + count, Expr(2 * count))),
                     r2);
    }, "first");
    ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
      std::vector<Var> reduced;
      for (int64_t d = 0; d < r; ++d)
        if (mask[d])
          reduced.push_back(iv[d]);
      Expr here = flat([&](size_t j) { return Expr(reduced[j]); });
      Expr f = F.access(toKept(mask, iv));
      return loop::select(here == loop::select(f < count, f, f - count), lowering::constant(dt, 1.0),
                          lowering::constant(dt, 0.0));
    }));
    return;
  }
  te::Tensor M, S, E;
  // Over the innermost axis only, with a length that is a multiple of kRowLanes: the max and
  // the sum in two stages each (as the innermost-axis reductions of Reduction.cpp), so that a
  // row is read with contiguous vector loads into kRowLanes partial results, reduced after.
  constexpr int64_t kRowLanes = 16;
  bool rowWise = std::count(mask.begin(), mask.end(), 1) == 1 && mask[size_t(r - 1)] &&
                 xs.back() % kRowLanes == 0 && xs.back() >= 2 * kRowLanes;
  if (rowWise) {
    std::vector<int64_t> ps = xs;
    ps.back() = kRowLanes;
    auto row = [&](const std::vector<Var> &iv, Expr last) {
      std::vector<Expr> idx(iv.begin(), iv.end() - 1);
      idx.push_back(last);
      return idx;
    };
    te::IterVar ko1 = te::reduce_axis({0, xs.back() / kRowLanes}, "ko");
    te::IterVar ko2 = te::reduce_axis({0, xs.back() / kRowLanes}, "ko");
    te::IterVar l1 = te::reduce_axis({0, kRowLanes}, "l"), l2 = te::reduce_axis({0, kRowLanes}, "l");
    te::Tensor Mp = ctx.compute(lowering::shapeExprs(ps), [&](std::vector<Var> iv) {
      return te::max(X.access(row(iv, Expr(ko1) * kRowLanes + iv.back())), {ko1});
    }, "max_partial");
    M = ctx.compute(ks, [&](std::vector<Var> iv) { return te::max(Mp.access(row(iv, l1)), {l1}); },
                    "max");
    // Softmax: exp(x - max) stored once (a stored stage) and read by the sum and the output,
    // instead of computed in both: [4,128,128] 0.035 -> 0.0225 ms per kernel (exp is ~20
    // vector instructions per 16 values; the stored rows stay in L2).
    if (mode == SM::Softmax)
      E = lowering::storedCompute(ctx, lowering::shapeExprs(xs), [&](const std::vector<Var> &iv) {
        std::vector<Expr> idx(iv.begin(), iv.end());
        return loop::exp(X.access(idx) - finiteOrZero(M.access(row(iv, Expr(int64_t(0)))), dt));
      }, "exp");
    te::Tensor Sp = ctx.compute(lowering::shapeExprs(ps), [&](std::vector<Var> iv) {
      if (E.defined())
        return te::sum(E.access(row(iv, Expr(ko2) * kRowLanes + iv.back())), {ko2});
      return te::sum(loop::exp(X.access(row(iv, Expr(ko2) * kRowLanes + iv.back())) -
                               finiteOrZero(M.access(row(iv, Expr(int64_t(0)))), dt)),
                     {ko2});
    }, "sum_partial");
    S = ctx.compute(ks, [&](std::vector<Var> iv) { return te::sum(Sp.access(row(iv, l2)), {l2}); },
                    "sum");
  } else {
    M = ctx.compute(ks, [&](std::vector<Var> iv) {
      return te::max(X.access(keptIndex(mask, iv, r1)), r1);
    }, "max");
    S = ctx.compute(ks, [&](std::vector<Var> iv) {
      return te::sum(loop::exp(X.access(keptIndex(mask, iv, r2)) -
                               finiteOrZero(M.access(toKept(mask, iv)), dt)),
                     r2);
    }, "sum");
  }
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    Expr x = X.access(std::vector<Expr>(iv.begin(), iv.end()));
    Expr m = finiteOrZero(M.access(toKept(mask, iv)), dt);
    Expr s = S.access(toKept(mask, iv));
    if (mode == SM::LogSoftmax)
      return x - m - loop::log(s);
    return (E.defined() ? E.access(std::vector<Expr>(iv.begin(), iv.end())) : loop::exp(x - m)) / s;
  }));
}

/// BatchNormalization in training mode, as the reference: per channel the batch mean and the
/// population variance over N and the spatial dims (in f64), y = x * a + b with a = scale /
/// sqrt(var + eps) and b = B - mean * a (in f64, applied in x's type), the running statistics
/// mean * momentum + batch * (1 - momentum) (outputs 1, 2) and, before opset 14, the batch
/// statistics themselves (outputs 3, 4).
void lowerBatchNormTraining(LowerContext &ctx, const std::vector<int64_t> &xs, DType dt,
                            double eps) {
  const int64_t r = int64_t(xs.size());
  int64_t count = xs[0];
  for (int64_t d = 2; d < r; ++d)
    count *= xs[d];
  const double momentum = ctx.attrFloat("momentum", 0.9f);
  te::Tensor X = ctx.input(0), Sc = ctx.input(1), B = ctx.input(2), Mn = ctx.input(3), V = ctx.input(4);
  auto axes = [&]() { // N and the spatial dims
    std::vector<te::IterVar> red{te::reduce_axis({0, xs[0]}, "rn")};
    for (int64_t d = 2; d < r; ++d)
      red.push_back(te::reduce_axis({0, xs[d]}, "r" + std::to_string(d)));
    return red;
  };
  auto at = [&](const std::vector<te::IterVar> &red, Var c) {
    std::vector<Expr> idx{red[0], c};
    for (size_t i = 1; i < red.size(); ++i)
      idx.push_back(red[i]);
    return loop::cast(DType::f64, X.access(idx));
  };
  const Expr n = Expr(double(std::max<int64_t>(count, 1)));
  std::vector<te::IterVar> r1 = axes(), r2 = axes();
  te::Tensor S = ctx.compute({Expr(xs[1])}, [&](Var c) { return te::sum(at(r1, c), r1); }, "sum");
  te::Tensor Mb = ctx.compute({Expr(xs[1])}, [&](Var c) { return S(c) / n; }, "batch_mean");
  te::Tensor Q = ctx.compute({Expr(xs[1])}, [&](Var c) {
    Expr d = at(r2, c) - Mb(c);
    return te::sum(d * d, r2);
  }, "sum_sq");
  te::Tensor Vb = ctx.compute({Expr(xs[1])}, [&](Var c) { return Q(c) / n; }, "batch_var");
  te::Tensor A = ctx.compute({Expr(xs[1])}, [&](Var c) {
    return loop::cast(DType::f64, Sc(c)) / loop::sqrt(Vb(c) + eps);
  }, "a");
  te::Tensor Bb = ctx.compute({Expr(xs[1])}, [&](Var c) {
    return loop::cast(DType::f64, B(c)) - Mb(c) * A(c);
  }, "b");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    Expr c = iv[1];
    Expr x = X.access(std::vector<Expr>(iv.begin(), iv.end()));
    return x * loop::cast(dt, A(c)) + loop::cast(dt, Bb(c));
  }));
  auto running = [&](const te::Tensor &in, const te::Tensor &batch, size_t out) {
    DType odt = ctx.outputDType(out);
    ctx.setOutput(out, ctx.compute({Expr(xs[1])}, [&](Var c) {
      return loop::cast(odt, loop::cast(DType::f64, in(c)) * momentum + batch(c) * (1 - momentum));
    }, out == 1 ? "running_mean" : "running_var"));
  };
  if (ctx.numOutputs() > 1 && ctx.hasOutput(1))
    running(Mn, Mb, 1);
  if (ctx.numOutputs() > 2 && ctx.hasOutput(2))
    running(V, Vb, 2);
  for (size_t out : {size_t(3), size_t(4)})
    if (ctx.numOutputs() > out && ctx.hasOutput(out)) {
      const te::Tensor &batch = out == 3 ? Mb : Vb;
      DType odt = ctx.outputDType(out);
      ctx.setOutput(out, ctx.compute({Expr(xs[1])}, [&](Var c) {
        return loop::cast(odt, batch(c));
      }, out == 3 ? "saved_mean" : "saved_var"));
    }
}

void lowerBatchNorm(LowerContext &ctx) {
  bool extra = false;
  for (size_t i = 1; i < ctx.numOutputs(); ++i)
    extra |= ctx.hasOutput(i);
  const bool training = batchNormTraining(ctx, ctx.numOutputs(), extra);
  ctx.check(!(ctx.opset() < 9 && ctx.attrInt("spatial", 1) == 0), "spatial=0 has no lowering");
  std::vector<int64_t> xs = ctx.inputShape(0);
  ctx.check(xs.size() >= 2, "input X should have rank >= 2 (N x C x ...), got ", shapeToString(xs));
  DType dt = ctx.inputDType(0);
  ctx.check(isFloat(dt), "lowering expects a float input, got ", dtypeName(dt));
  for (size_t i = 1; i < 5; ++i) {
    ctx.check(ctx.inputShape(i) == std::vector<int64_t>{xs[1]}, "input ", i, " should have shape [",
              xs[1], "], got ", shapeToString(ctx.inputShape(i)));
    ctx.check(ctx.inputDType(i) == dt, "input ", i, " has dtype ", dtypeName(ctx.inputDType(i)),
              ", expected ", dtypeName(dt), " like X");
  }
  double eps = ctx.attrFloat("epsilon", 1e-5f);
  if (training) {
    lowerBatchNormTraining(ctx, xs, dt, eps);
    return;
  }
  te::Tensor X = ctx.input(0), Sc = ctx.input(1), B = ctx.input(2), Mn = ctx.input(3), V = ctx.input(4);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    Expr c = iv[1];
    Expr x = X.access(std::vector<Expr>(iv.begin(), iv.end()));
    return (x - Mn(c)) / loop::sqrt(V(c) + lowering::constant(dt, eps)) * Sc(c) + B(c);
  }));
  // Statistics outputs in inference mode (opset 14+, training_mode = 0): the inputs' mean and
  // var, as the reference.
  for (size_t out = 1; out < ctx.numOutputs() && out <= 4; ++out)
    if (ctx.hasOutput(out)) {
      const te::Tensor &from = out % 2 ? Mn : V;
      ctx.setOutput(out, ctx.compute({Expr(xs[1])}, [&](Var c) { return from(c); },
                                     out % 2 ? "mean_out" : "var_out"));
    }
}

void lowerLayerNorm(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  DType dt = ctx.inputDType(0);
  ctx.check(isFloat(dt), "lowering expects a float input, got ", dtypeName(dt));
  int64_t r = int64_t(xs.size());
  int64_t axis = lowering::normalizeAxis(ctx, ctx.attrInt("axis", -1), r);
  double eps = ctx.attrFloat("epsilon", 1e-5f);
  std::vector<char> mask(r, 0);
  int64_t n = 1;
  for (int64_t d = axis; d < r; ++d) {
    mask[d] = 1;
    n *= xs[d];
  }
  te::Tensor X = ctx.input(0), Sc = ctx.input(1);
  te::Tensor B = ctx.hasInput(2) ? ctx.input(2) : te::Tensor();
  std::vector<int64_t> ss = ctx.inputShape(1), bs = B.defined() ? ctx.inputShape(2) : std::vector<int64_t>{};
  std::vector<Expr> ks = lowering::shapeExprs(keptShape(xs, mask));
  std::vector<te::IterVar> r1 = reduceAxesOf(xs, mask), r2 = reduceAxesOf(xs, mask);
  Expr count = lowering::constant(dt, double(n));
  te::Tensor S = ctx.compute(ks, [&](std::vector<Var> iv) {
    return te::sum(X.access(keptIndex(mask, iv, r1)), r1);
  }, "sum");
  te::Tensor Q = ctx.compute(ks, [&](std::vector<Var> iv) {
    Expr d = X.access(keptIndex(mask, iv, r2)) - S.access(toKept(mask, iv)) / count;
    return te::sum(d * d, r2);
  }, "sqdev");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    std::vector<Var> tail(iv.begin() + axis, iv.end());
    Expr x = X.access(std::vector<Expr>(iv.begin(), iv.end()));
    Expr mean = S.access(toKept(mask, iv)) / count;
    Expr var = Q.access(toKept(mask, iv)) / count;
    Expr y = (x - mean) / loop::sqrt(var + lowering::constant(dt, eps)) *
             Sc.access(lowering::broadcastIndex(tail, ss));
    if (B.defined())
      y = y + B.access(lowering::broadcastIndex(tail, bs));
    return y;
  }));
  // Mean and InvStdDev (reduced dims kept as 1), in stash_type
  for (size_t o : {size_t(1), size_t(2)}) {
    if (o >= ctx.numOutputs() || !ctx.hasOutput(o))
      continue;
    DType st = ctx.outputDType(o);
    lowering::checkDType(ctx, st, "stash_type");
    ctx.setOutput(o, ctx.compute(ks, [&](std::vector<Var> iv) {
      std::vector<Expr> idx(iv.begin(), iv.end());
      Expr v = o == 1 ? S.access(idx) / count
                      : lowering::constant(dt, 1) /
                            loop::sqrt(Q.access(idx) / count + lowering::constant(dt, eps));
      return st == dt ? v : loop::cast(st, v);
    }, o == 1 ? "mean" : "invstddev"));
  }
}

void lowerInstanceNorm(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  ctx.check(xs.size() >= 3, "input should have rank >= 3 (N, C, spatial...), got ", shapeToString(xs));
  DType dt = ctx.inputDType(0);
  ctx.check(isFloat(dt), "lowering expects a float input, got ", dtypeName(dt));
  double eps = ctx.attrFloat("epsilon", 1e-5f);
  std::vector<char> mask(xs.size(), 1);
  mask[0] = mask[1] = 0;
  int64_t n = 1;
  for (size_t d = 2; d < xs.size(); ++d)
    n *= xs[d];
  te::Tensor X = ctx.input(0), Sc = ctx.input(1), B = ctx.input(2);
  std::vector<Expr> ks = lowering::shapeExprs(keptShape(xs, mask));
  std::vector<te::IterVar> r1 = reduceAxesOf(xs, mask), r2 = reduceAxesOf(xs, mask);
  Expr count = lowering::constant(dt, double(n));
  te::Tensor S = ctx.compute(ks, [&](std::vector<Var> iv) {
    return te::sum(X.access(keptIndex(mask, iv, r1)), r1);
  }, "sum");
  te::Tensor Q = ctx.compute(ks, [&](std::vector<Var> iv) {
    Expr d = X.access(keptIndex(mask, iv, r2)) - S.access(toKept(mask, iv)) / count;
    return te::sum(d * d, r2);
  }, "sqdev");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    Expr x = X.access(std::vector<Expr>(iv.begin(), iv.end()));
    Expr mean = S.access(toKept(mask, iv)) / count, var = Q.access(toKept(mask, iv)) / count;
    return (x - mean) / loop::sqrt(var + lowering::constant(dt, eps)) * Sc(iv[1]) + B(iv[1]);
  }));
}

/// Dropout in inference: the identity (and an all-true mask).
void lowerDropout(LowerContext &ctx) {
  if (ctx.opset() >= 12 && ctx.hasInput(2)) {
    std::vector<int64_t> t = ctx.constantInts(2, "training_mode");
    ctx.check(t.empty() || t[0] == 0, "training_mode is true; lowering handles inference only");
  }
  std::vector<int64_t> xs = ctx.inputShape(0);
  te::Tensor X = ctx.input(0);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    return X.access(std::vector<Expr>(iv.begin(), iv.end()));
  }));
  if (ctx.numOutputs() > 1 && ctx.hasOutput(1)) {
    DType mt = ctx.outputDType(1);
    ctx.setOutput(1, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var>) {
      return lowering::constant(mt, 1);
    }, "mask"));
  }
}

/// LRN: y = x / (bias + alpha / size * sum of x^2 over the channel window)^beta, the window
/// [c - floor((size-1)/2), c + ceil((size-1)/2)] clipped to the channels; squares summed in f64
/// as the reference kernel does.
void lowerLRN(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  DType dt = ctx.inputDType(0);
  ctx.check(isFloat(dt), "lowering expects a float input, got ", dtypeName(dt));
  ctx.check(xs.size() >= 2, "input should have rank >= 2 (N x C x ...), got ", shapeToString(xs));
  const double alpha = ctx.attrFloat("alpha", 1e-4f), beta = ctx.attrFloat("beta", 0.75f),
               bias = ctx.attrFloat("bias", 1.0f);
  const int64_t size = ctx.attrInt("size");
  ctx.check(size >= 1, "size should be >= 1, got ", size);
  const int64_t lo = (size - 1) / 2, C = xs[1];
  te::Tensor X = ctx.input(0);
  te::IterVar k = te::reduce_axis({0, size}, "k");
  te::Tensor Sq = ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    Expr c = Expr(iv[1]) + Expr(k) - lo;
    std::vector<Expr> idx(iv.begin(), iv.end());
    idx[1] = loop::max(loop::min(c, Expr(C - 1)), Expr(int64_t(0)));
    Expr x = loop::cast(DType::f64, X.access(idx));
    Expr in = (c >= Expr(int64_t(0))) && (c < Expr(C));
    return te::sum(loop::select(in, x * x, Expr(0.0)), {k});
  }, "sqsum");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    std::vector<Expr> idx(iv.begin(), iv.end());
    Expr d = loop::pow(Expr(bias) + Expr(alpha / double(size)) * Sq.access(idx), Expr(beta));
    return loop::cast(dt, loop::cast(DType::f64, X.access(idx)) / d);
  }));
}

/// MeanVarianceNormalization as the reference kernel computes it, in f64: the sum and the sum
/// of squares over `axes` (two reductions, reduced dims kept as 1), then
/// y = (x - mean) / (sqrt(max(E[x^2] - mean^2, 0)) + 1e-9).
void lowerMVN(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  DType dt = ctx.inputDType(0);
  ctx.check(isFloat(dt), "lowering expects a float input, got ", dtypeName(dt));
  const int64_t r = int64_t(xs.size());
  std::vector<char> mask(size_t(r), 0);
  int64_t count = 1;
  for (int64_t a : ctx.attrInts("axes", {0, 2, 3})) {
    int64_t d = lowering::normalizeAxis(ctx, a, r, "axes entry");
    ctx.check(!mask[size_t(d)], "axis ", a, " is given twice in axes");
    mask[size_t(d)] = 1;
    count *= xs[size_t(d)];
  }
  te::Tensor X = ctx.input(0);
  std::vector<Expr> ks = lowering::shapeExprs(keptShape(xs, mask));
  std::vector<te::IterVar> r1 = reduceAxesOf(xs, mask), r2 = reduceAxesOf(xs, mask);
  te::Tensor S = ctx.compute(ks, [&](std::vector<Var> iv) {
    return te::sum(loop::cast(DType::f64, X.access(keptIndex(mask, iv, r1))), r1);
  }, "sum");
  te::Tensor Q = ctx.compute(ks, [&](std::vector<Var> iv) {
    Expr x = loop::cast(DType::f64, X.access(keptIndex(mask, iv, r2)));
    return te::sum(x * x, r2);
  }, "sumsq");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    Expr x = loop::cast(DType::f64, X.access(std::vector<Expr>(iv.begin(), iv.end())));
    // count > 0 whenever there is an element to compute
    Expr m = S.access(toKept(mask, iv)) / Expr(double(count));
    Expr var = Q.access(toKept(mask, iv)) / Expr(double(count)) - m * m;
    Expr scale = Expr(1.0) / (loop::sqrt(loop::max(var, Expr(0.0))) + Expr(1e-9));
    return loop::cast(dt, (x - m) * scale);
  }));
}

/// NegativeLogLikelihoodLoss over log-probabilities LP (N, C, D...) with the reference's
/// arithmetic in f64: per target position, l = -LP[n, t, d] * w[t] (w = 1 without weights)
/// and the weight w[t], both 0 where t == ignore_index; then none (l per position), sum, or
/// mean (sum of l / sum of weights). A target outside [0, C), which the reference rejects, is
/// clamped into range (unspecified result).
void lowerNLLOver(LowerContext &ctx, const te::Tensor &LP, const std::vector<int64_t> &xs,
                  DType dt) {
  ctx.check(xs.size() >= 2, "input should have rank >= 2 (N x C x ...), got shape ",
            shapeToString(xs));
  const int64_t C = xs[1];
  std::vector<int64_t> ts = xs;
  ts.erase(ts.begin() + 1);
  ctx.check(ctx.inputShape(1) == ts, "target should have shape ", shapeToString(ts), " (input ",
            shapeToString(xs), " without the class dim), got ", shapeToString(ctx.inputShape(1)));
  DType tt = ctx.inputDType(1);
  ctx.check(tt == DType::i32 || tt == DType::i64, "target should be int32 or int64, got ",
            dtypeName(tt));
  te::Tensor W;
  if (ctx.hasInput(2)) {
    ctx.check(ctx.inputShape(2) == std::vector<int64_t>{C}, "weight should have shape [", C,
              "], got ", shapeToString(ctx.inputShape(2)));
    ctx.check(ctx.inputDType(2) == dt, "weight has dtype ", dtypeName(ctx.inputDType(2)),
              ", expected ", dtypeName(dt), " like the input");
    W = ctx.input(2);
  }
  const std::string red = ctx.attrString("reduction", "mean");
  ctx.check(red == "none" || red == "sum" || red == "mean",
            "reduction should be none, sum or mean, got '", red, "'");
  const bool hasIgnore = ctx.hasAttr("ignore_index");
  const int64_t ignore = ctx.attrInt("ignore_index", 0);
  te::Tensor T = ctx.input(1);
  // the weight of each target position (f64), 0 where ignored
  auto weightAt = [&](const std::vector<Expr> &tidx) -> std::pair<Expr, Expr> {
    Expr t = loop::cast(DType::i64, T.access(tidx));
    Expr tc = loop::max(loop::min(t, Expr(C - 1)), Expr(int64_t(0)));
    Expr w = W.defined() ? loop::cast(DType::f64, W(tc)) : Expr(1.0);
    if (hasIgnore)
      w = loop::select(t == Expr(ignore), Expr(0.0), w);
    return {w, tc};
  };
  auto lossAt = [&](const std::vector<Expr> &tidx) {
    auto [w, tc] = weightAt(tidx);
    std::vector<Expr> idx = tidx;
    idx.insert(idx.begin() + 1, tc);
    Expr l = -loop::cast(DType::f64, LP.access(idx)) * w;
    if (hasIgnore) // an ignored position contributes +0 (not -0 * w)
      l = loop::select(loop::cast(DType::i64, T.access(tidx)) == Expr(ignore), Expr(0.0), l);
    return l;
  };
  if (red == "none") {
    ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ts), [&](std::vector<Var> iv) {
      return loop::cast(dt, lossAt(std::vector<Expr>(iv.begin(), iv.end())));
    }));
    return;
  }
  std::vector<te::IterVar> r1, r2;
  for (size_t d = 0; d < ts.size(); ++d) {
    r1.push_back(te::reduce_axis({0, ts[d]}, "r" + std::to_string(d)));
    r2.push_back(te::reduce_axis({0, ts[d]}, "r" + std::to_string(d)));
  }
  te::Tensor L = ctx.compute({}, [&](std::vector<Var>) {
    return te::sum(lossAt(std::vector<Expr>(r1.begin(), r1.end())), r1);
  }, "losssum");
  if (red == "sum") {
    ctx.setOutput(0, ctx.compute({}, [&](std::vector<Var>) {
      return loop::cast(dt, L.access({}));
    }));
    return;
  }
  te::Tensor WS = ctx.compute({}, [&](std::vector<Var>) {
    return te::sum(weightAt(std::vector<Expr>(r2.begin(), r2.end())).first, r2);
  }, "weightsum");
  ctx.setOutput(0, ctx.compute({}, [&](std::vector<Var>) {
    return loop::cast(dt, L.access({}) / WS.access({}));
  }));
}

void lowerNLL(LowerContext &ctx) {
  DType dt = ctx.inputDType(0);
  ctx.check(isFloat(dt), "lowering expects a float input, got ", dtypeName(dt));
  lowerNLLOver(ctx, ctx.input(0), ctx.inputShape(0), dt);
}

/// SoftmaxCrossEntropyLoss: the log-softmax over the class dim (1) as the reference computes
/// it (max, set to 0 when not finite; the sum of exp(x - max); x - (max + log(sum))), then the
/// NLL loss over it; the log-probabilities are output 1 when asked for.
void lowerSCE(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  DType dt = ctx.inputDType(0);
  ctx.check(isFloat(dt), "lowering expects float scores, got ", dtypeName(dt));
  ctx.check(xs.size() >= 2, "scores should have rank >= 2 (N x C x ...), got shape ",
            shapeToString(xs));
  std::vector<char> mask(xs.size(), 0);
  mask[1] = 1;
  te::Tensor X = ctx.input(0);
  std::vector<Expr> ks = lowering::shapeExprs(keptShape(xs, mask));
  std::vector<te::IterVar> r1 = reduceAxesOf(xs, mask), r2 = reduceAxesOf(xs, mask);
  te::Tensor M = ctx.compute(ks, [&](std::vector<Var> iv) {
    return te::max(X.access(keptIndex(mask, iv, r1)), r1);
  }, "max");
  te::Tensor S = ctx.compute(ks, [&](std::vector<Var> iv) {
    Expr m = finiteOrZero(M.access(toKept(mask, iv)), dt);
    return te::sum(loop::exp(X.access(keptIndex(mask, iv, r2)) - m), r2);
  }, "sumexp");
  te::Tensor LP = ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    Expr m = finiteOrZero(M.access(toKept(mask, iv)), dt);
    return X.access(std::vector<Expr>(iv.begin(), iv.end())) -
           (m + loop::log(S.access(toKept(mask, iv))));
  }, "log_prob");
  lowerNLLOver(ctx, LP, xs, dt);
  if (ctx.numOutputs() > 1 && ctx.hasOutput(1))
    ctx.setOutput(1, LP);
}

void attachNormalizationLowerings(OpRegistry &r) {
  r.setLower("MeanVarianceNormalization", lowerMVN);
  r.setLower("NegativeLogLikelihoodLoss", lowerNLL);
  r.setLower("SoftmaxCrossEntropyLoss", lowerSCE);
  r.setLower("LRN", lowerLRN);
  r.setLower("InstanceNormalization", lowerInstanceNorm);
  r.setLower("Dropout", lowerDropout);
  r.setLower("Softmax", [](LowerContext &c) { lowerSoftmax(c, SM::Softmax); });
  r.setLower("LogSoftmax", [](LowerContext &c) { lowerSoftmax(c, SM::LogSoftmax); });
  r.setLower("Hardmax", [](LowerContext &c) { lowerSoftmax(c, SM::Hardmax); });
  r.setLower("BatchNormalization", lowerBatchNorm);
  r.setLower("LayerNormalization", lowerLayerNorm);
}

} // namespace
// --- end of the Normalization lowerings

void registerNormalizationOps(OpRegistry &r) {
  const struct {
    const char *name;
    SM mode;
  } softmaxes[] = {{"Softmax", SM::Softmax}, {"LogSoftmax", SM::LogSoftmax}, {"Hardmax", SM::Hardmax}};
  for (auto &s : softmaxes) {
    SM mode = s.mode;
    r.add(OpDef{s.name, "", 1, 17, 1, 1, 1, 1, "float types",
                "before opset 13 the input is coerced to 2-D at axis (default 1); from 13 one "
                "axis (default -1)",
                inferSameAs(0), [mode](KernelContext &ctx) { kernelSoftmax(ctx, mode); },
                OpPattern::OutEWiseFusable});
  }
  r.add(OpDef{"BatchNormalization", "", 1, 17, 5, 5, 1, 5, "float types",
              "inference mode; training_mode (14+) or extra outputs (7..13) use batch statistics "
              "and output running mean/var; spatial=0 (before 9) supported",
              inferBatchNorm, kernelBatchNorm, OpPattern::Broadcast});
  r.add(OpDef{"LayerNormalization", "", 17, 17, 2, 3, 1, 3, "float types",
              "Mean/InvStdDev outputs in stash_type", inferLayerNorm, kernelLayerNorm,
              OpPattern::OutEWiseFusable});
  r.add(OpDef{"InstanceNormalization", "", 1, 17, 3, 3, 1, 1, "float types", "", inferSameAs(0),
              kernelInstanceNorm, OpPattern::OutEWiseFusable});
  r.add(OpDef{"LRN", "", 1, 17, 1, 1, 1, 1, "float types", "", inferSameAs(0), kernelLRN,
              OpPattern::OutEWiseFusable});
  r.add(OpDef{"MeanVarianceNormalization", "", 9, 17, 1, 1, 1, 1, "float types",
              "(X - mean) / (std + 1e-9) over axes (default [0,2,3])", inferSameAs(0), kernelMVN,
              OpPattern::OutEWiseFusable});
  r.add(OpDef{"NegativeLogLikelihoodLoss", "", 12, 17, 2, 3, 1, 1, "float types",
              "reduction none/sum/mean, weight, ignore_index", inferLoss, kernelNLL});
  r.add(OpDef{"SoftmaxCrossEntropyLoss", "", 12, 17, 2, 3, 1, 2, "float types",
              "reduction none/sum/mean, weights, ignore_index, optional log_prob output",
              inferLoss, kernelSCE});
  r.add(OpDef{"Dropout", "", 1, 17, 1, 3, 1, 2, "float types",
              "identity unless training_mode (opset 12+) is true; the mask then follows the "
              "seed attribute with numpy's legacy MT19937 stream; is_test=0 (opset < 7) is "
              "treated as inference",
              inferDropout, kernelDropout});
  attachNormalizationLowerings(r);
}

} // namespace tessel
