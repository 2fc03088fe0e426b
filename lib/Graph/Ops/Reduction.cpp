//===- Reduction.cpp - Reduction ops ---------------------------------------===//
//
// ReduceSum/Mean/Max/Min/Prod/L1/L2/LogSum/LogSumExp/SumSquare share one reduction driver
// (forEachReduceRun: any set of axes of a row-major tensor, contiguous inner runs); ArgMax,
// ArgMin, CumSum and TopK work on the (outer, axis, inner) view of their one axis.
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"
#include "tessel/Graph/Lowering.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <optional>
#include <type_traits>

namespace tessel {

namespace {

template <class T>
inline constexpr bool isFloatLike = std::is_floating_point_v<T> || std::is_same_v<T, Float16> ||
                                    std::is_same_v<T, BFloat16>;

/// The accumulator of a reduction over T: double for float types, 64-bit for integers.
template <class T>
using AccOf = std::conditional_t<isFloatLike<T>, double,
                                 std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>>;

/// The type comparisons run in: float for the 16-bit floats, T otherwise.
template <class T>
using CmpOf = std::conditional_t<std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>, float, T>;

/// double -> T; integers saturate (NaN -> 0) instead of being undefined behaviour.
template <class T> T fromDouble(double v) {
  if constexpr (isFloatLike<T>) {
    if constexpr (std::is_same_v<T, double>)
      return v;
    else
      return T(float(v));
  } else if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else {
    if (std::isnan(v))
      return T(0);
    if (v <= double(std::numeric_limits<T>::lowest()))
      return std::numeric_limits<T>::lowest();
    if (v >= double(std::numeric_limits<T>::max()))
      return std::numeric_limits<T>::max();
    return T(v);
  }
}

//===----------------------------------------------------------------------===//
// The reduction driver
//===----------------------------------------------------------------------===//

/// A reduction of a row-major tensor over a set of axes, with size-1 dims dropped and adjacent
/// dims of the same kind (reduced / kept) merged.
struct ReducePlan {
  std::vector<int64_t> dims;      // collapsed input dims
  std::vector<char> reduced;      // per collapsed dim
  std::vector<int64_t> inStride;  // row-major strides of the collapsed input
  std::vector<int64_t> outStride; // output stride per collapsed dim (0 for reduced dims)
  int64_t inNumel = 1, outNumel = 1;
};

ReducePlan makePlan(const std::vector<int64_t> &shape, const std::vector<char> &reducedAxes) {
  ReducePlan p;
  for (size_t i = 0; i < shape.size(); ++i) {
    p.inNumel *= shape[i];
    if (!reducedAxes[i])
      p.outNumel *= shape[i];
    if (shape[i] == 1)
      continue;
    if (!p.dims.empty() && p.reduced.back() == reducedAxes[i]) {
      p.dims.back() *= shape[i];
      continue;
    }
    p.dims.push_back(shape[i]);
    p.reduced.push_back(reducedAxes[i]);
  }
  if (p.dims.empty()) {
    p.dims.push_back(1);
    p.reduced.push_back(1);
  }
  size_t r = p.dims.size();
  p.inStride.assign(r, 1);
  p.outStride.assign(r, 0);
  int64_t in = 1, out = 1;
  for (size_t i = r; i-- > 0;) {
    p.inStride[i] = in;
    in *= p.dims[i];
    if (!p.reduced[i]) {
      p.outStride[i] = out;
      out *= p.dims[i];
    }
  }
  return p;
}

/// Calls f(inOffset, outOffset, n, outStep) for each contiguous run of n input elements along
/// the innermost collapsed dim; element j of the run maps to output outOffset + j * outStep
/// (outStep is 0 when the innermost dim is reduced, 1 when it is kept).
template <class F> void forEachReduceRun(const ReducePlan &p, F &&f) {
  if (p.inNumel == 0)
    return;
  const size_t r = p.dims.size();
  const int64_t n = p.dims[r - 1];
  const int64_t step = p.outStride[r - 1];
  std::vector<int64_t> idx(r, 0);
  int64_t in = 0, out = 0;
  for (int64_t base = 0; base < p.inNumel; base += n) {
    f(in, out, n, step);
    for (size_t d = r - 1; d-- > 0;) {
      in += p.inStride[d];
      out += p.outStride[d];
      if (++idx[d] < p.dims[d])
        break;
      in -= p.inStride[d] * p.dims[d];
      out -= p.outStride[d] * p.dims[d];
      idx[d] = 0;
    }
  }
}

enum class RK { Sum, Mean, Max, Min, Prod, L1, L2, LogSum, LogSumExp, SumSquare };

struct ReduceInfo {
  const char *name;
  RK kind;
};
constexpr ReduceInfo kReduceOps[] = {
    {"ReduceSum", RK::Sum},         {"ReduceMean", RK::Mean},
    {"ReduceMax", RK::Max},         {"ReduceMin", RK::Min},
    {"ReduceProd", RK::Prod},       {"ReduceL1", RK::L1},
    {"ReduceL2", RK::L2},           {"ReduceLogSum", RK::LogSum},
    {"ReduceLogSumExp", RK::LogSumExp}, {"ReduceSumSquare", RK::SumSquare},
};

template <class T> auto absOf(T v) {
  if constexpr (std::is_unsigned_v<T>)
    return v;
  else
    return v < 0 ? -v : v;
}

/// Reduces `in` (shape of the plan) into `out` (plan.outNumel elements).
template <RK K, class T> void reduceTyped(const ReducePlan &p, const T *in, T *out) {
  using Acc = AccOf<T>;
  const int64_t count = p.outNumel ? p.inNumel / p.outNumel : 0;
  std::vector<Acc> acc(p.outNumel);
  Acc init{};
  if constexpr (K == RK::Max || K == RK::LogSumExp) {
    if constexpr (isFloatLike<T>)
      init = -std::numeric_limits<double>::infinity();
    else
      init = Acc(std::numeric_limits<T>::lowest());
  } else if constexpr (K == RK::Min) {
    if constexpr (isFloatLike<T>)
      init = std::numeric_limits<double>::infinity();
    else
      init = Acc(std::numeric_limits<T>::max());
  } else if constexpr (K == RK::Prod) {
    init = Acc(1);
  }
  std::fill(acc.begin(), acc.end(), init);
  Acc *a = acc.data();

  auto combine = [](Acc s, Acc v) -> Acc {
    if constexpr (K == RK::Max || K == RK::LogSumExp) {
      if constexpr (isFloatLike<T>)
        return (v > s || std::isnan(v)) ? v : s;
      else
        return v > s ? v : s;
    } else if constexpr (K == RK::Min) {
      if constexpr (isFloatLike<T>)
        return (v < s || std::isnan(v)) ? v : s;
      else
        return v < s ? v : s;
    } else if constexpr (K == RK::Prod) {
      return s * v;
    } else if constexpr (K == RK::L1) {
      return s + absOf(v);
    } else if constexpr (K == RK::L2 || K == RK::SumSquare) {
      return s + v * v;
    } else {
      return s + v;
    }
  };
  forEachReduceRun(p, [&](int64_t i, int64_t o, int64_t n, int64_t step) {
    const T *x = in + i;
    if (step == 0) {
      Acc s = a[o];
      for (int64_t j = 0; j < n; ++j)
        s = combine(s, Acc(x[j]));
      a[o] = s;
    } else {
      Acc *y = a + o;
      for (int64_t j = 0; j < n; ++j)
        y[j] = combine(y[j], Acc(x[j]));
    }
  });

  if constexpr (K == RK::LogSumExp) {
    // second pass: sum of exp(x - max), max taken as 0 where it is not finite
    std::vector<double> sum(p.outNumel, 0.0);
    for (auto &m : acc)
      if (!std::isfinite(double(m)))
        m = Acc(0);
    double *s = sum.data();
    forEachReduceRun(p, [&](int64_t i, int64_t o, int64_t n, int64_t step) {
      const T *x = in + i;
      for (int64_t j = 0; j < n; ++j)
        s[o + j * step] += std::exp(double(x[j]) - double(a[o + j * step]));
    });
    for (int64_t k = 0; k < p.outNumel; ++k)
      out[k] = fromDouble<T>(std::log(s[k]) + double(a[k]));
    return;
  }
  for (int64_t k = 0; k < p.outNumel; ++k) {
    if constexpr (K == RK::Mean) {
      if constexpr (isFloatLike<T>)
        out[k] = fromDouble<T>(double(a[k]) / double(count));
      else
        out[k] = count ? T(a[k] / Acc(count)) : T(0);
    } else if constexpr (K == RK::L2) {
      out[k] = fromDouble<T>(std::sqrt(double(a[k])));
    } else if constexpr (K == RK::LogSum) {
      out[k] = fromDouble<T>(std::log(double(a[k])));
    } else if constexpr (isFloatLike<T>) {
      out[k] = fromDouble<T>(double(a[k]));
    } else {
      out[k] = T(a[k]); // integer sums wrap like numpy's
    }
  }
}

template <class T> void reduceDispatch(RK k, const ReducePlan &p, const T *in, T *out) {
  switch (k) {
  case RK::Sum: return reduceTyped<RK::Sum>(p, in, out);
  case RK::Mean: return reduceTyped<RK::Mean>(p, in, out);
  case RK::Max: return reduceTyped<RK::Max>(p, in, out);
  case RK::Min: return reduceTyped<RK::Min>(p, in, out);
  case RK::Prod: return reduceTyped<RK::Prod>(p, in, out);
  case RK::L1: return reduceTyped<RK::L1>(p, in, out);
  case RK::L2: return reduceTyped<RK::L2>(p, in, out);
  case RK::LogSum: return reduceTyped<RK::LogSum>(p, in, out);
  case RK::LogSumExp: return reduceTyped<RK::LogSumExp>(p, in, out);
  case RK::SumSquare: return reduceTyped<RK::SumSquare>(p, in, out);
  }
}

//===----------------------------------------------------------------------===//
// Reduce* ops: axes, inference, kernel
//===----------------------------------------------------------------------===//

/// Whether this op version takes axes as input 1 (ReduceSum from opset 13).
bool axesFromInput(const AttrReader &ctx, RK kind) { return kind == RK::Sum && ctx.opset() >= 13; }

/// The reduced-axis mask for a tensor of rank `rank` given the requested axes (empty = all).
std::vector<char> axesMask(const AttrReader &ctx, const std::vector<int64_t> &axes, int64_t rank) {
  std::vector<char> mask(rank, axes.empty() ? 1 : 0);
  if (rank == 0)
    return mask;
  for (int64_t a : axes) {
    int64_t n = normalizeAxis(ctx, a, rank, "reduction axis");
    if (mask[n])
      ctx.fail("reduction axis ", a, " is given twice");
    mask[n] = 1;
  }
  return mask;
}

void inferReduce(InferContext &ctx, RK kind) {
  const Type &t = ctx.inputType(0);
  const Shape &in = tensorShape(ctx, 0);
  DType dt = t.dtype;
  bool keep = ctx.attrInt("keepdims", 1) != 0;
  std::optional<std::vector<int64_t>> axes;
  bool noop = false;
  if (axesFromInput(ctx, kind)) {
    noop = ctx.attrInt("noop_with_empty_axes", 0) != 0;
    if (!ctx.hasInput(1))
      axes = std::vector<int64_t>{};
    else if (const Tensor *c = ctx.inputConstant(1))
      axes = c->toInt64Vector();
  } else {
    axes = ctx.attrInts("axes", {});
  }
  if (axes && axes->empty() && noop) {
    ctx.setOutputType(0, Type::tensor(dt, in));
    return;
  }
  if (!in.rankKnown || !axes) {
    if (in.rankKnown && keep)
      ctx.setOutputType(0, Type::tensor(dt, Shape::unknownDims(in.rank())));
    else if (axes && axes->empty() && !keep)
      ctx.setOutputType(0, Type::tensor(dt, Shape(std::vector<Dim>{})));
    else
      ctx.setOutputType(0, Type::tensor(dt, Shape::unknownRank()));
    return;
  }
  std::vector<char> mask = axesMask(ctx, *axes, in.rank());
  std::vector<Dim> out;
  for (int64_t i = 0; i < in.rank(); ++i) {
    if (!mask[i])
      out.push_back(in.dims[i]);
    else if (keep)
      out.push_back(Dim(1));
  }
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

void kernelReduce(KernelContext &ctx, RK kind) {
  const Tensor &x = ctx.input(0);
  bool keep = ctx.attrInt("keepdims", 1) != 0;
  std::vector<int64_t> axes;
  bool noop = false;
  if (axesFromInput(ctx, kind)) {
    noop = ctx.attrInt("noop_with_empty_axes", 0) != 0;
    if (ctx.hasInput(1)) {
      const Tensor &a = ctx.input(1);
      ctx.check(a.dtype() == DType::i64, "axes should be an int64 tensor, got ", a.typeString());
      ctx.check(a.rank() <= 1, "axes should be 1-D, got shape ", a.shapeString());
      axes = a.toInt64Vector();
    }
  } else {
    axes = ctx.attrInts("axes", {});
  }
  ctx.check(x.dtype() != DType::boolean && x.dtype() != DType::string,
            "unsupported element type ", dtypeName(x.dtype()));
  if (axes.empty() && noop) {
    ctx.setOutput(0, x);
    return;
  }
  std::vector<char> mask = axesMask(ctx, axes, x.rank());
  std::vector<int64_t> outShape;
  for (int64_t i = 0; i < x.rank(); ++i) {
    if (!mask[i])
      outShape.push_back(x.dim(i));
    else if (keep)
      outShape.push_back(1);
  }
  ReducePlan plan = makePlan(x.shape(), mask);
  Tensor y(x.dtype(), outShape);
  dispatchNumeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (!std::is_same_v<T, bool>)
      reduceDispatch<T>(kind, plan, x.data<T>(), y.data<T>());
  });
  ctx.setOutput(0, std::move(y));
}

//===----------------------------------------------------------------------===//
// ArgMax / ArgMin
//===----------------------------------------------------------------------===//

struct AxisView {
  int64_t outer = 1, n = 1, inner = 1;
};
AxisView axisView(const std::vector<int64_t> &shape, int64_t axis) {
  AxisView v;
  for (int64_t i = 0; i < int64_t(shape.size()); ++i) {
    if (i < axis)
      v.outer *= shape[i];
    else if (i == axis)
      v.n = shape[i];
    else
      v.inner *= shape[i];
  }
  return v;
}

void inferArg(InferContext &ctx) {
  const Shape &in = tensorShape(ctx, 0);
  bool keep = ctx.attrInt("keepdims", 1) != 0;
  if (!in.rankKnown) {
    ctx.setOutputType(0, Type::tensor(DType::i64, Shape::unknownRank()));
    return;
  }
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", 0), in.rank());
  std::vector<Dim> out;
  for (int64_t i = 0; i < in.rank(); ++i) {
    if (i != axis)
      out.push_back(in.dims[i]);
    else if (keep)
      out.push_back(Dim(1));
  }
  ctx.setOutputType(0, Type::tensor(DType::i64, Shape(out)));
}

void kernelArg(KernelContext &ctx, bool isMax) {
  const Tensor &x = ctx.input(0);
  bool keep = ctx.attrInt("keepdims", 1) != 0;
  bool last = ctx.attrInt("select_last_index", 0) != 0;
  ctx.check(x.rank() >= 1, "input should have rank >= 1, got a scalar");
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", 0), x.rank());
  ctx.check(x.dim(axis) > 0, "cannot take the arg", isMax ? "max" : "min",
            " over an empty axis (shape ", x.shapeString(), ")");
  std::vector<int64_t> outShape;
  for (int64_t i = 0; i < x.rank(); ++i) {
    if (i != axis)
      outShape.push_back(x.dim(i));
    else if (keep)
      outShape.push_back(1);
  }
  Tensor y(DType::i64, outShape);
  AxisView v = axisView(x.shape(), axis);
  int64_t *idx = y.data<int64_t>();
  dispatchNumeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using C = CmpOf<T>;
    const T *in = x.data<T>();
    std::vector<C> best(v.inner);
    // "better" is strict for the first index, non-strict for the last
    auto better = [&](C a, C b) {
      if (isMax)
        return last ? a >= b : a > b;
      return last ? a <= b : a < b;
    };
    for (int64_t o = 0; o < v.outer; ++o) {
      const T *base = in + o * v.n * v.inner;
      int64_t *ob = idx + o * v.inner;
      for (int64_t i = 0; i < v.inner; ++i) {
        best[i] = C(base[i]);
        ob[i] = 0;
      }
      for (int64_t k = 1; k < v.n; ++k) {
        const T *row = base + k * v.inner;
        for (int64_t i = 0; i < v.inner; ++i) {
          C c = C(row[i]);
          if (better(c, best[i])) {
            best[i] = c;
            ob[i] = k;
          }
        }
      }
    }
  });
  ctx.setOutput(0, std::move(y));
}

//===----------------------------------------------------------------------===//
// CumSum
//===----------------------------------------------------------------------===//

void kernelCumSum(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  const Tensor &a = ctx.input(1);
  ctx.check(a.dtype() == DType::i32 || a.dtype() == DType::i64,
            "axis should be an int32 or int64 tensor, got ", a.typeString());
  ctx.check(a.numel() == 1 && a.rank() <= 1, "axis should be a scalar, got shape ", a.shapeString());
  ctx.check(x.rank() >= 1, "input should have rank >= 1, got a scalar");
  int64_t axis = normalizeAxis(ctx, a.getInt64(0), x.rank());
  bool exclusive = ctx.attrInt("exclusive", 0) != 0;
  bool reverse = ctx.attrInt("reverse", 0) != 0;
  Tensor y(x.dtype(), x.shape());
  AxisView v = axisView(x.shape(), axis);
  dispatchNumeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, bool>) {
      ctx.fail("unsupported element type bool");
    } else {
      using Acc = AccOf<T>;
      const T *in = x.data<T>();
      T *out = y.data<T>();
      std::vector<Acc> acc(v.inner);
      for (int64_t o = 0; o < v.outer; ++o) {
        std::fill(acc.begin(), acc.end(), Acc(0));
        for (int64_t s = 0; s < v.n; ++s) {
          int64_t k = reverse ? v.n - 1 - s : s;
          const T *row = in + (o * v.n + k) * v.inner;
          T *orow = out + (o * v.n + k) * v.inner;
          for (int64_t i = 0; i < v.inner; ++i) {
            Acc prev = acc[i];
            acc[i] = prev + Acc(row[i]);
            Acc r = exclusive ? prev : acc[i];
            if constexpr (isFloatLike<T>)
              orow[i] = fromDouble<T>(r);
            else
              orow[i] = T(r);
          }
        }
      }
    }
  });
  ctx.setOutput(0, std::move(y));
}

//===----------------------------------------------------------------------===//
// TopK
//===----------------------------------------------------------------------===//

/// k of a TopK node: the attribute before opset 10, input 1 after; nullopt when unknown.
std::optional<int64_t> topkFromTensor(const AttrReader &ctx, const Tensor &k) {
  ctx.check(k.dtype() == DType::i64, "K should be an int64 tensor, got ", k.typeString());
  ctx.check(k.numel() == 1 && k.rank() <= 1, "K should be a 1-element 1-D tensor, got shape ",
            k.shapeString());
  return k.getInt64(0);
}

void inferTopK(InferContext &ctx) {
  const Type &t = ctx.inputType(0);
  const Shape &in = tensorShape(ctx, 0);
  std::optional<int64_t> k;
  if (ctx.opset() < 10)
    k = ctx.attrInt("k");
  else if (const Tensor *c = ctx.inputConstant(1))
    k = topkFromTensor(ctx, *c);
  if (!in.rankKnown) {
    ctx.setOutputType(0, Type::tensor(t.dtype, Shape::unknownRank()));
    if (ctx.hasOutput(1))
      ctx.setOutputType(1, Type::tensor(DType::i64, Shape::unknownRank()));
    return;
  }
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", -1), in.rank());
  std::vector<Dim> out = in.dims;
  if (k) {
    ctx.check(*k >= 0, "K should be >= 0, got ", *k);
    if (in.dims[axis].isStatic())
      ctx.check(*k <= in.dims[axis].value, "K = ", *k, " is larger than the axis size ",
                in.dims[axis].value);
    out[axis] = Dim(*k);
  } else {
    out[axis] = Dim();
  }
  ctx.setOutputType(0, Type::tensor(t.dtype, Shape(out)));
  if (ctx.numOutputs() > 1)
    ctx.setOutputType(1, Type::tensor(DType::i64, Shape(out)));
}

void kernelTopK(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  int64_t k = ctx.opset() < 10 ? ctx.attrInt("k") : *topkFromTensor(ctx, ctx.input(1));
  bool largest = ctx.attrInt("largest", 1) != 0;
  ctx.check(x.rank() >= 1, "input should have rank >= 1, got a scalar");
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", -1), x.rank());
  ctx.check(k >= 0 && k <= x.dim(axis), "K = ", k, " should be in [0, ", x.dim(axis),
            "] (the size of axis ", axis, ")");
  std::vector<int64_t> outShape = x.shape();
  outShape[axis] = k;
  Tensor vals(x.dtype(), outShape);
  Tensor inds(DType::i64, outShape);
  AxisView v = axisView(x.shape(), axis);
  int64_t *oi = inds.data<int64_t>();
  dispatchNumeric(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using C = CmpOf<T>;
    const T *in = x.data<T>();
    T *ov = vals.data<T>();
    std::vector<std::pair<C, int64_t>> buf(v.n);
    // a strict weak order with NaN above every number (numpy's sort order)
    auto less = [](C a, C b) {
      if constexpr (isFloatLike<T>) {
        if (std::isnan(a))
          return false;
        if (std::isnan(b))
          return true;
      }
      return a < b;
    };
    auto cmp = [&](const std::pair<C, int64_t> &a, const std::pair<C, int64_t> &b) {
      if (largest ? less(b.first, a.first) : less(a.first, b.first))
        return true;
      if (largest ? less(a.first, b.first) : less(b.first, a.first))
        return false;
      return a.second < b.second;
    };
    for (int64_t o = 0; o < v.outer; ++o) {
      for (int64_t i = 0; i < v.inner; ++i) {
        const T *base = in + o * v.n * v.inner + i;
        for (int64_t j = 0; j < v.n; ++j)
          buf[j] = {C(base[j * v.inner]), j};
        std::partial_sort(buf.begin(), buf.begin() + k, buf.end(), cmp);
        int64_t ob = o * k * v.inner + i;
        for (int64_t j = 0; j < k; ++j) {
          ov[ob + j * v.inner] = base[buf[j].second * v.inner];
          oi[ob + j * v.inner] = buf[j].second;
        }
      }
    }
  });
  ctx.setOutput(0, std::move(vals));
  if (ctx.numOutputs() > 1)
    ctx.setOutput(1, std::move(inds));
}

} // namespace

// --- lowerings of the Reduction ops
// Reductions are one TE reduction over the reduced axes (te::sum/max/min/prod; two stages, a
// vector of partial results then their reduction, for float rows over the innermost axis), with an
// elementwise epilogue where the op needs one (Mean, L2, LogSum, LogSumExp). ArgMax/ArgMin are
// two reductions: the extreme value, then the first (or last) index that holds it. ReduceSum's
// run-time axes and CumSum's run-time axis: see runtimeReduceMasks and lowerCumSumRuntimeAxis.
namespace {

using loop::Expr;
using loop::Var;

/// The input index of output index `iv` with reduce axes `red` on the masked dims.
std::vector<Expr> reducedIndex(const std::vector<char> &mask, bool keep, const std::vector<Var> &iv,
                               const std::vector<te::IterVar> &red) {
  std::vector<Expr> idx;
  size_t j = 0, r = 0;
  for (size_t d = 0; d < mask.size(); ++d) {
    if (!mask[d]) {
      idx.push_back(iv[j++]);
      continue;
    }
    idx.push_back(red[r++]);
    if (keep)
      ++j;
  }
  return idx;
}

/// "[0, 2]" (or "0_2" with sep "_") for the axes set in `mask`.
std::string axesString(const std::vector<char> &mask, const std::string &sep = "") {
  std::string s;
  for (size_t d = 0; d < mask.size(); ++d)
    if (mask[d])
      s += (s.empty() ? "" : sep.empty() ? ", " : sep) + std::to_string(d);
  return sep.empty() ? "[" + s + "]" : s;
}

/// At most this many sets of axes are told apart at run time (runtimeReduceMasks).
constexpr size_t kMaxRuntimeAxesCandidates = 8;

/// The reduced-axis masks that can explain a reduction whose axes are a run-time input
/// (ReduceSum from opset 13), read off the static shapes: the output shape was inferred or
/// declared for these same inputs, so it is trusted. nullopt: reduce nothing (the output is the
/// input); one mask: the axes follow from the shapes and the axes tensor is never read; several
/// (keepdims=0 only): the caller selects among them at run time by the axes' values. Reducing
/// an axis of extent 1 gives the same values as keeping it, so masks are told apart only by
/// their reduced axes of extent != 1:
///  - keepdims=1: an axis is reduced exactly when its output extent is 1 and its input extent
///    is not; any other difference is an error;
///  - keepdims=0: the kept axes are those whose extents, in order, spell the output shape, with
///    as many reduced axes as the axes tensor has elements ([3, 2, 2] -> [3, 2] reduces axis 1
///    or axis 2: two candidates); more than kMaxRuntimeAxesCandidates is an error;
///  - an axes tensor of static length 0: no axes, so noop_with_empty_axes decides (identity or
///    reduce all) without looking at the output.
std::optional<std::vector<std::vector<char>>>
runtimeReduceMasks(const LowerContext &ctx, const std::vector<int64_t> &xs,
                   const std::vector<int64_t> &out, bool keep, bool noop) {
  const size_t rank = xs.size();
  if (rank == 0)
    return std::nullopt; // a scalar: every reduction of it is itself
  std::optional<int64_t> numAxes;
  if (const Value *a = ctx.node().input(1);
      a && a->type.isTensor() && a->type.shape.isStatic()) {
    std::vector<int64_t> as = a->type.shape.staticDims();
    ctx.check(as.size() <= 1, "axes should be 1-D, got shape ", shapeToString(as));
    numAxes = as.empty() ? 1 : as[0];
  }
  if (numAxes == 0) {
    if (noop)
      return std::nullopt;
    return std::vector<std::vector<char>>{std::vector<char>(rank, 1)};
  }
  std::string shapes = "input shape " + shapeToString(xs) + ", output shape " + shapeToString(out);
  if (keep) {
    ctx.check(out.size() == rank, "axes are a run-time input and keepdims=1, so the output should ",
              "have the input's rank; got ", shapes);
    std::vector<char> mask(rank, 0);
    for (size_t d = 0; d < rank; ++d) {
      if (out[d] == xs[d])
        continue;
      ctx.check(out[d] == 1, "axes are a run-time input: output dim ", d, " should be ", xs[d],
                " (kept) or 1 (reduced); got ", shapes);
      mask[d] = 1;
    }
    if (std::find(mask.begin(), mask.end(), 1) == mask.end())
      return std::nullopt; // reduces nothing, or only axes of extent 1
    return std::vector<std::vector<char>>{mask};
  }
  ctx.check(rank <= 20, "axes are a run-time input: rank ", rank, " is too large to match the ",
            "output shape against (at most 20)");
  // Every mask whose kept extents spell `out`, keyed by its reduced axes of extent != 1.
  std::vector<std::vector<char>> keys, masks; // distinct keys, one mask for each
  std::vector<char> mask(rank, 0);
  auto search = [&](auto &&self, size_t d, size_t j, int64_t reduced) -> void {
    if (keys.size() > kMaxRuntimeAxesCandidates)
      return;
    if (d == rank) {
      if (j != out.size() || (numAxes && reduced != *numAxes) || (reduced == 0 && !noop))
        return;
      std::vector<char> key(rank, 0);
      for (size_t i = 0; i < rank; ++i)
        key[i] = mask[i] && xs[i] != 1;
      if (std::find(keys.begin(), keys.end(), key) == keys.end()) {
        keys.push_back(key);
        masks.push_back(mask);
      }
      return;
    }
    if (rank - d < out.size() - std::min(j, out.size()))
      return; // too few dims left to spell the rest of the output
    if (j < out.size() && out[j] == xs[d])
      self(self, d + 1, j + 1, reduced);
    mask[d] = 1;
    self(self, d + 1, j, reduced + 1);
    mask[d] = 0;
  };
  search(search, 0, 0, 0);
  ctx.check(!keys.empty(), "axes are a run-time input and keepdims=0, but no set of reduced ",
            "axes", numAxes ? " of size " + std::to_string(*numAxes) : std::string(),
            " turns the input shape into the output shape (", shapes, ")");
  if (keys.size() > 1 && !(numAxes && keys.size() <= kMaxRuntimeAxesCandidates))
    ctx.fail("axes are a run-time input and keepdims=0, and the shapes are ambiguous (", shapes,
             "): reducing axes ", axesString(keys[0]), " or axes ", axesString(keys[1]),
             numAxes ? " or more (over " + std::to_string(kMaxRuntimeAxesCandidates) +
                           " candidates to select among at run time)"
                     : std::string(" (and the axes tensor's length is not static)"),
             " fit; lowering needs the axes as a constant (an initializer or a folded constant)");
  if (masks.size() == 1 && std::find(masks[0].begin(), masks[0].end(), 1) == masks[0].end())
    return std::nullopt; // no axes: the output is the input
  return masks;
}

void lowerReduce(LowerContext &ctx, RK kind) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  DType dt = ctx.inputDType(0);
  ctx.check(dt != DType::boolean, "reductions of bool tensors are not supported");
  bool keep = ctx.attrInt("keepdims", 1) != 0;
  std::vector<int64_t> axes;
  bool noop = false;
  bool runtimeAxes = false;
  if (axesFromInput(ctx, kind)) {
    noop = ctx.attrInt("noop_with_empty_axes", 0) != 0;
    runtimeAxes = ctx.hasInput(1) && !ctx.inputConstant(1);
    if (ctx.hasInput(1) && !runtimeAxes)
      axes = ctx.constantInts(1, "axes");
  } else {
    axes = ctx.attrInts("axes", {});
  }
  bool floatOnly = kind == RK::Mean || kind == RK::L2 || kind == RK::LogSum || kind == RK::LogSumExp;
  ctx.check(!floatOnly || isFloat(dt), "lowering of this reduction handles float inputs only, got ",
            dtypeName(dt));
  if (runtimeAxes) {
    const Value *v = ctx.node().output(0);
    ctx.check(v && v->type.isTensor() && v->type.shape.isStatic(),
              "input 1 (axes) is not a constant and the output shape is not static (",
              v ? v->type.str() : std::string("missing"),
              "); lowering needs one of them to know the reduced axes");
  }
  std::vector<int64_t> out = ctx.outputShape(0);
  te::Tensor X = ctx.input(0);
  std::optional<std::vector<std::vector<char>>> rtMask;
  if (runtimeAxes)
    rtMask = runtimeReduceMasks(ctx, xs, out, keep, noop);
  if ((!runtimeAxes && axes.empty() && noop) || (runtimeAxes && !rtMask)) {
    ctx.check(out == xs, "the reduction reduces nothing, so the output shape should be the input ",
              "shape ", shapeToString(xs), "; got ", shapeToString(out));
    ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
      return X.access(std::vector<Expr>(iv.begin(), iv.end()));
    }));
    return;
  }
  // The reduction over the axes in `mask` (its computes named with `tag` when not empty).
  auto reduceOver = [&](const std::vector<char> &mask, const std::string &tag) -> te::Tensor {
    std::vector<te::IterVar> red;
    int64_t count = 1;
    for (size_t d = 0; d < xs.size(); ++d)
      if (mask[d]) {
        red.push_back(te::reduce_axis({0, xs[d]}, "r" + std::to_string(d)));
        count *= xs[d];
      }
    auto source = [&](const std::vector<Var> &iv) {
      Expr x = X.access(reducedIndex(mask, keep, iv, red));
      switch (kind) {
      case RK::L1: return x.type().isUInt() ? x : loop::abs(x);
      case RK::L2:
      case RK::SumSquare: return x * x;
      case RK::LogSumExp: return loop::exp(x);
      default: return x;
      }
    };
    bool epilogue = kind == RK::Mean || kind == RK::L2 || kind == RK::LogSum || kind == RK::LogSumExp;
    // A float reduction over the innermost axis only (LayerNorm's means, ...), of a length that
    // is a multiple of kRowLanes: two stages, so that the row is read with contiguous vector
    // loads. `partial[outer, l]` reduces x[outer, ko * kRowLanes + l] over ko (its innermost data
    // axis l is what the default schedule vectorizes, inside the ko loop: kRowLanes independent
    // accumulators), then the kRowLanes partials are reduced. One reduction over the row instead
    // would vectorize across rows (a gather per step, the row length apart).
    constexpr int64_t kRowLanes = 16;
    const int64_t rank = int64_t(xs.size());
    bool rowWise = isFloat(dt) && kind != RK::Prod && red.size() == 1 && mask[size_t(rank - 1)] &&
                   xs.back() % kRowLanes == 0 && xs.back() >= 2 * kRowLanes;
    te::Tensor R;
    if (rowWise) {
      std::vector<int64_t> ps(xs.begin(), xs.end() - 1);
      ps.push_back(kRowLanes);
      te::IterVar ko = te::reduce_axis({0, xs.back() / kRowLanes}, "ko");
      te::Tensor P = ctx.compute(lowering::shapeExprs(ps), [&](std::vector<Var> iv) {
        std::vector<Expr> idx(iv.begin(), iv.end() - 1);
        idx.push_back(Expr(ko) * kRowLanes + iv.back());
        Expr x = X.access(idx);
        switch (kind) {
        case RK::L1: x = loop::abs(x); break;
        case RK::L2:
        case RK::SumSquare: x = x * x; break;
        case RK::LogSumExp: x = loop::exp(x); break;
        default: break;
        }
        switch (kind) {
        case RK::Max: return te::max(x, {ko});
        case RK::Min: return te::min(x, {ko});
        default: return te::sum(x, {ko});
        }
      }, tag.empty() ? "partial" : "partial_" + tag);
      te::IterVar l = te::reduce_axis({0, kRowLanes}, "l");
      R = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
        std::vector<Expr> idx(iv.begin(), iv.begin() + (rank - 1));
        idx.push_back(l);
        Expr x = P.access(idx);
        switch (kind) {
        case RK::Max: return te::max(x, {l});
        case RK::Min: return te::min(x, {l});
        default: return te::sum(x, {l});
        }
      }, epilogue ? (tag.empty() ? "acc" : "acc_" + tag) : tag);
    } else {
      R = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
        Expr s = source(iv);
        switch (kind) {
        case RK::Max: return te::max(s, red);
        case RK::Min: return te::min(s, red);
        case RK::Prod: return te::prod(s, red);
        default: return te::sum(s, red);
        }
      }, epilogue ? (tag.empty() ? "acc" : "acc_" + tag) : tag);
    }
    if (!epilogue)
      return R;
    return ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
      Expr s = R.access(std::vector<Expr>(iv.begin(), iv.end()));
      switch (kind) {
      case RK::Mean: return s / lowering::constant(dt, double(count));
      case RK::L2: return loop::sqrt(s);
      default: return loop::log(s); // LogSum, LogSumExp
      }
    }, tag);
  };
  if (!runtimeAxes) {
    ctx.setOutput(0, reduceOver(axesMask(ctx, axes, int64_t(xs.size())), ""));
    return;
  }
  if (rtMask->size() == 1) {
    ctx.setOutput(0, reduceOver(rtMask->front(), ""));
    return;
  }
  // Several sets of axes fit the shapes: reduce over each, and let the axes tensor's values
  // pick at run time (zeros when they match none of them).
  te::Tensor A = ctx.input(1);
  std::vector<int64_t> as = ctx.inputShape(1);
  ctx.check(A.dtype() == DType::i64 && as.size() <= 1, "axes should be a 1-D int64 tensor, got ",
            dtypeName(A.dtype()), " ", shapeToString(as));
  std::vector<te::Tensor> rs;
  for (const std::vector<char> &m : *rtMask)
    rs.push_back(reduceOver(m, "axes" + axesString(m, "_")));
  const int64_t rank = int64_t(xs.size());
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    // isReduced[d]: some element of the axes tensor names axis d
    std::vector<Expr> isReduced(xs.size(), loop::makeBool(false));
    for (int64_t j = 0; j < (as.empty() ? 1 : as[0]); ++j) {
      Expr v = A.access(as.empty() ? std::vector<Expr>{} : std::vector<Expr>{Expr(j)});
      v = loop::select(v < Expr(int64_t(0)), v + Expr(rank), v);
      for (int64_t d = 0; d < rank; ++d)
        isReduced[size_t(d)] = isReduced[size_t(d)] || v == Expr(d);
    }
    std::vector<Expr> idx(iv.begin(), iv.end());
    Expr r = lowering::constant(dt, 0.0);
    for (size_t c = rs.size(); c-- > 0;) {
      Expr match = loop::makeBool(true);
      for (size_t d = 0; d < xs.size(); ++d)
        if (xs[d] != 1)
          match = match && ((*rtMask)[c][d] ? isReduced[d] : !isReduced[d]);
      r = loop::select(match, rs[c].access(idx), r);
    }
    return r;
  }));
}

void lowerArg(LowerContext &ctx, bool isMax) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  ctx.check(!xs.empty(), "input should have rank >= 1, got a scalar");
  bool keep = ctx.attrInt("keepdims", 1) != 0;
  bool last = ctx.attrInt("select_last_index", 0) != 0;
  int64_t axis = lowering::normalizeAxis(ctx, ctx.attrInt("axis", 0), int64_t(xs.size()));
  ctx.check(xs[axis] > 0, "cannot take the arg", isMax ? "max" : "min", " over an empty axis");
  std::vector<char> mask(xs.size(), 0);
  mask[axis] = 1;
  std::vector<int64_t> out = ctx.outputShape(0);
  te::Tensor X = ctx.input(0);
  te::IterVar k = te::reduce_axis({0, xs[axis]}, "k");
  te::Tensor Best = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    Expr x = X.access(reducedIndex(mask, keep, iv, {k}));
    return isMax ? te::max(x, {k}) : te::min(x, {k});
  }, "best");
  te::IterVar k2 = te::reduce_axis({0, xs[axis]}, "k");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    Expr x = X.access(reducedIndex(mask, keep, iv, {k2}));
    Expr hit = x == Best.access(std::vector<Expr>(iv.begin(), iv.end()));
    Expr k64 = Expr(k2);
    if (last)
      return te::max(loop::select(hit, k64, Expr(int64_t(-1))), {k2});
    return te::min(loop::select(hit, k64, Expr(xs[axis])), {k2});
  }));
}

/// CumSum whose axis is a run-time tensor (0-d or [1], int32/int64): one reduction over
/// k in [0, the largest extent), where the axis value picks, by selects on it, which index k
/// replaces, which output index it is compared with, and the extent k must stay below (k is
/// clamped into every axis so each load is in bounds whatever the value). An axis value
/// outside [-rank, rank) matches no axis: the output is all zeros (the reference errors).
void lowerCumSumRuntimeAxis(LowerContext &ctx, const std::vector<int64_t> &xs, DType dt,
                            bool exclusive, bool reverse) {
  te::Tensor A = ctx.input(1);
  DType adt = A.dtype();
  ctx.check(adt == DType::i32 || adt == DType::i64, "axis should be an int32 or int64 tensor, got ",
            dtypeName(adt));
  std::vector<int64_t> as = ctx.inputShape(1);
  ctx.check(as.size() <= 1 && (as.empty() || as[0] == 1), "axis should be a scalar, got shape ",
            shapeToString(as));
  const int64_t rank = int64_t(xs.size());
  const int64_t maxN = std::max<int64_t>(*std::max_element(xs.begin(), xs.end()), 1);
  te::Tensor X = ctx.input(0);
  te::IterVar k = te::reduce_axis({0, maxN}, "k");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    Expr a = A.access(as.empty() ? std::vector<Expr>{} : std::vector<Expr>{Expr(int64_t(0))});
    if (adt != DType::i64)
      a = loop::cast(DType::i64, a);
    a = loop::select(a < Expr(int64_t(0)), a + Expr(rank), a);
    Expr kk = Expr(k), i = Expr(int64_t(0)), n = Expr(int64_t(0));
    std::vector<Expr> idx;
    for (int64_t d = 0; d < rank; ++d) {
      Expr on = a == Expr(d);
      Expr last = Expr(std::max<int64_t>(xs[size_t(d)] - 1, 0));
      idx.push_back(loop::select(on, loop::min(kk, last), Expr(iv[size_t(d)])));
      i = loop::select(on, Expr(iv[size_t(d)]), i);
      n = loop::select(on, Expr(xs[size_t(d)]), n);
    }
    // n stays 0 when the axis value is out of range, so nothing is summed
    Expr in = reverse ? (exclusive ? kk > i : kk >= i) : (exclusive ? kk < i : kk <= i);
    return te::sum(loop::select((kk < n) && in, X.access(idx), lowering::constant(dt, 0.0)), {k});
  }));
}

/// CumSum: out[..i..] = the sum of x[..k..] over k <= i along the axis (k < i when exclusive;
/// k >= i, k > i when reverse), as a reduction over the whole axis with a select: O(n^2) in
/// the axis length, fine for the short axes models cumulate over.
void lowerCumSum(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  DType dt = ctx.inputDType(0);
  ctx.check(!xs.empty(), "input should have rank >= 1, got a scalar");
  if (!ctx.inputConstant(1)) {
    lowerCumSumRuntimeAxis(ctx, xs, dt, ctx.attrInt("exclusive", 0) != 0,
                           ctx.attrInt("reverse", 0) != 0);
    return;
  }
  std::vector<int64_t> a = ctx.constantInts(1, "axis");
  ctx.check(a.size() == 1, "axis must hold one value, got ", a.size());
  int64_t axis = lowering::normalizeAxis(ctx, a[0], int64_t(xs.size()));
  bool exclusive = ctx.attrInt("exclusive", 0) != 0, reverse = ctx.attrInt("reverse", 0) != 0;
  te::Tensor X = ctx.input(0);
  te::IterVar k = te::reduce_axis({0, std::max<int64_t>(xs[axis], 1)}, "k");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    std::vector<Expr> idx(iv.begin(), iv.end());
    idx[size_t(axis)] = Expr(k);
    Expr i = Expr(iv[size_t(axis)]), kk = Expr(k);
    Expr in = reverse ? (exclusive ? kk > i : kk >= i) : (exclusive ? kk < i : kk <= i);
    return te::sum(loop::select(in, X.access(idx), lowering::constant(dt, 0.0)), {k});
  }));
}

/// TopK by ranks: rank[..i..] = #{k : x[..k..] comes before x[..i..]} along the axis, in the
/// reference's order (largest or smallest first, NaN above every number, ties by the lower
/// index), so the ranks are a permutation of [0, n); output j holds the element of rank j
/// (indices: the one position whose rank is j; values: the input there). O(n^2) along the
/// axis, like CumSum's lowering: fine for the short axes TopK is used on.
void lowerTopK(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  DType dt = ctx.inputDType(0);
  ctx.check(!xs.empty(), "input should have rank >= 1, got a scalar");
  ctx.check(dt != DType::boolean, "TopK of a bool tensor is not supported");
  if (ctx.opset() >= 10 && !ctx.inputConstant(1)) { // K is the output's extent on the axis
    const Value *v = ctx.node().output(0);
    ctx.check(v && v->type.isTensor() && v->type.shape.isStatic(),
              "K is not a constant and the output shape is not static; lowering needs one of them");
  }
  const int64_t axis = lowering::normalizeAxis(ctx, ctx.attrInt("axis", -1), int64_t(xs.size()));
  const bool largest = ctx.attrInt("largest", 1) != 0;
  const int64_t n = xs[size_t(axis)];
  std::vector<int64_t> out = ctx.outputShape(0);
  te::Tensor X = ctx.input(0);
  const bool isF = isFloat(dt);
  // a strictly before b in the order "ascending, NaN last" (numpy's sort order)
  auto less = [&](const Expr &a, const Expr &b) -> Expr {
    if (!isF)
      return a < b;
    return (a == a) && ((b != b) || (a < b));
  };
  te::IterVar k = te::reduce_axis({0, std::max<int64_t>(n, 1)}, "k");
  te::Tensor Rank = ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    std::vector<Expr> idx(iv.begin(), iv.end());
    Expr me = X.access(idx);
    idx[size_t(axis)] = Expr(k);
    Expr other = X.access(idx);
    Expr before = largest ? less(me, other) : less(other, me);
    Expr tie = largest ? !less(other, me) : !less(me, other); // neither before the other
    Expr beats = before || (tie && Expr(k) < Expr(iv[size_t(axis)]));
    return te::sum(loop::select(beats, Expr(int64_t(1)), Expr(int64_t(0))), {k});
  }, "rank");
  te::IterVar k2 = te::reduce_axis({0, std::max<int64_t>(n, 1)}, "k");
  te::Tensor Ind = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    std::vector<Expr> idx(iv.begin(), iv.end());
    idx[size_t(axis)] = Expr(k2);
    Expr hit = Rank.access(idx) == Expr(iv[size_t(axis)]);
    return te::max(loop::select(hit, Expr(k2), Expr(int64_t(0))), {k2});
  }, "indices");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    std::vector<Expr> idx(iv.begin(), iv.end());
    idx[size_t(axis)] = loop::min(Ind.access(std::vector<Expr>(iv.begin(), iv.end())),
                                  Expr(std::max<int64_t>(n - 1, 0)));
    return X.access(idx);
  }, "values"));
  if (ctx.numOutputs() > 1 && ctx.hasOutput(1))
    ctx.setOutput(1, Ind);
}

void attachReductionLowerings(OpRegistry &r) {
  r.setLower("CumSum", lowerCumSum);
  r.setLower("TopK", lowerTopK);
  for (const ReduceInfo &ri : kReduceOps) {
    RK kind = ri.kind;
    r.setLower(ri.name, [kind](LowerContext &ctx) { lowerReduce(ctx, kind); });
  }
  r.setLower("ArgMax", [](LowerContext &ctx) { lowerArg(ctx, true); });
  r.setLower("ArgMin", [](LowerContext &ctx) { lowerArg(ctx, false); });
}

} // namespace
// --- end of the Reduction lowerings

void registerReductionOps(OpRegistry &r) {
  for (const ReduceInfo &info : kReduceOps) {
    RK kind = info.kind;
    OpDef d;
    d.name = info.name;
    d.minInputs = 1;
    d.maxInputs = kind == RK::Sum ? 2 : 1;
    d.minOutputs = d.maxOutputs = 1;
    d.dtypes = (kind == RK::Max || kind == RK::Min) ? "all numeric (not bool)"
                                                    : "float types, int32/64, uint32/64";
    d.notes = kind == RK::Sum ? "axes: attribute before opset 13, optional input from 13 "
                                "(noop_with_empty_axes)"
                              : "axes attribute; empty axes reduce all";
    d.infer = [kind](InferContext &ctx) { inferReduce(ctx, kind); };
    d.kernel = [kind](KernelContext &ctx) { kernelReduce(ctx, kind); };
    d.pattern = OpPattern::CommReduce;
    r.add(std::move(d));
  }

  for (bool isMax : {true, false}) {
    OpDef d;
    d.name = isMax ? "ArgMax" : "ArgMin";
    d.minInputs = d.maxInputs = 1;
    d.minOutputs = d.maxOutputs = 1;
    d.dtypes = "all numeric";
    d.notes = "keepdims, select_last_index; output int64";
    d.infer = inferArg;
    d.kernel = [isMax](KernelContext &ctx) { kernelArg(ctx, isMax); };
    d.pattern = OpPattern::CommReduce;
    r.add(std::move(d));
  }

  r.add(OpDef{"CumSum", "", 11, 17, 2, 2, 1, 1, "float types, int32/64, uint32/64",
              "exclusive, reverse", inferSameAs(0), kernelCumSum});

  r.add(OpDef{"TopK", "", 1, 17, 1, 2, 1, 2, "all numeric",
              "k attribute before opset 10, input from 10; ties keep the lower index; output "
              "always sorted",
              inferTopK, kernelTopK});
  attachReductionLowerings(r);
}

} // namespace tessel
