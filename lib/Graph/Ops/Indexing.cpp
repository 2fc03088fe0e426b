//===- Indexing.cpp - Indexing ops ----------------------------------------===//
//
// Ops that read or write a tensor at computed positions: Gather, GatherElements, GatherND,
// Scatter, ScatterElements, ScatterND, OneHot, Compress, NonZero, Unique, Trilu, EyeLike,
// ReverseSequence. Every index is validated (negative indices wrap once, per the spec;
// anything else out of range is an error naming the node).
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"
#include "tessel/Graph/Lowering.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <numeric>
#include <optional>
#include <type_traits>

namespace tessel {

namespace {

//===----------------------------------------------------------------------===//
// Local helpers
//===----------------------------------------------------------------------===//

/// out[o, j, :] = in[o, idx[j], :], with in viewed as [outer, n, inner] and out as
/// [outer, idx.size(), inner].
void takeSlices(const AttrReader &ctx, const Tensor &in, Tensor &out, int64_t outer, int64_t n,
                int64_t inner, const std::vector<int64_t> &idx) {
  const int64_t k = int64_t(idx.size());
  dispatchBytes(ctx, in.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *src = ptr<T>(in);
    T *dst = ptr<T>(out);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t j = 0; j < k; ++j)
        copyRun(dst + (o * k + j) * inner, src + (o * n + idx[j]) * inner, inner);
  });
}

/// Compress/Unique: the (normalized) "axis" attribute with `in` = x, or axis 0 with `in` = x
/// flattened when the attribute is absent.
int64_t axisOrFlatten(const KernelContext &ctx, const Tensor &x, Tensor &in) {
  if (ctx.hasAttr("axis")) {
    ctx.check(x.rank() >= 1, "input must have rank >= 1 when axis is given");
    return normalizeAxis(ctx, ctx.attrInt("axis"), x.rank());
  }
  in = x.reshaped({x.numel()});
  return 0;
}

/// Index tensor (i32/i64) as int64 values.
std::vector<int64_t> indexValues(const KernelContext &ctx, const Tensor &t, const char *what) {
  ctx.check(t.dtype() == DType::i32 || t.dtype() == DType::i64, what,
            " must be int32 or int64, got ", dtypeName(t.dtype()));
  return t.toInt64Vector();
}

/// Wraps a negative index once; an Error if out of [-n, n).
inline int64_t wrapIndex(const AttrReader &ctx, int64_t i, int64_t n, const char *what) {
  if (i < -n || i >= n)
    ctx.fail(what, " ", i, " is out of range for a dim of size ", n, " (expected [", -n, ", ",
             n - 1, "])");
  return i < 0 ? i + n : i;
}

OpDef op(std::string name, int since, int until, int minIn, int maxIn, int minOut, int maxOut,
         std::string dtypes, std::string notes, InferFn infer, KernelFn kernel,
         OpPattern pattern = OpPattern::Opaque) {
  OpDef d;
  d.name = std::move(name);
  d.domain = "";
  d.sinceVersion = since;
  d.untilVersion = until;
  d.minInputs = minIn;
  d.maxInputs = maxIn;
  d.minOutputs = minOut;
  d.maxOutputs = maxOut;
  d.dtypes = std::move(dtypes);
  d.notes = std::move(notes);
  d.infer = std::move(infer);
  d.kernel = std::move(kernel);
  d.pattern = pattern;
  return d;
}

//===----------------------------------------------------------------------===//
// Gather
//===----------------------------------------------------------------------===//

void inferGather(InferContext &ctx) {
  DType dt = inDType(ctx, 0);
  const Shape &data = tensorShape(ctx, 0), &idx = tensorShape(ctx, 1);
  if (!data.rankKnown || !idx.rankKnown) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", 0), data.rank());
  std::vector<Dim> out(data.dims.begin(), data.dims.begin() + axis);
  out.insert(out.end(), idx.dims.begin(), idx.dims.end());
  out.insert(out.end(), data.dims.begin() + axis + 1, data.dims.end());
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

void kernelGather(KernelContext &ctx) {
  const Tensor &data = ctx.input(0), &indices = ctx.input(1);
  ctx.check(data.rank() >= 1, "data must have rank >= 1, got a scalar");
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", 0), data.rank());
  std::vector<int64_t> idx = indexValues(ctx, indices, "indices");
  const int64_t n = data.dim(axis);
  for (int64_t &i : idx)
    i = wrapIndex(ctx, i, n, "index");
  std::vector<int64_t> outShape(data.shape().begin(), data.shape().begin() + axis);
  outShape.insert(outShape.end(), indices.shape().begin(), indices.shape().end());
  outShape.insert(outShape.end(), data.shape().begin() + axis + 1, data.shape().end());
  Tensor out(data.dtype(), outShape);
  if (out.numel() > 0) {
    const int64_t outer = product(data.shape(), 0, axis);
    const int64_t inner = product(data.shape(), axis + 1);
    takeSlices(ctx, data, out, outer, n, inner, idx);
  }
  ctx.setOutput(0, out);
}

//===----------------------------------------------------------------------===//
// GatherElements, Scatter, ScatterElements
//===----------------------------------------------------------------------===//

/// Calls f(i, dataOffset) for each element i of `indices` (same rank as data).
template <class F>
void forEachElementIndex(const KernelContext &ctx, const std::vector<int64_t> &dataShape,
                         const std::vector<int64_t> &idxShape, const std::vector<int64_t> &idx,
                         int64_t axis, F &&f) {
  const int64_t rank = int64_t(dataShape.size());
  ctx.check(int64_t(idxShape.size()) == rank, "indices must have the rank of data (", rank,
            "), got shape ", shapeToString(idxShape));
  for (int64_t d = 0; d < rank; ++d)
    ctx.check(d == axis || idxShape[d] <= dataShape[d], "indices shape ",
              shapeToString(idxShape), " exceeds data shape ", shapeToString(dataShape),
              " in dim ", d);
  const int64_t total = int64_t(idx.size());
  if (total == 0)
    return;
  auto st = stridesOf(dataShape);
  const int64_t n = dataShape[axis];
  std::vector<int64_t> pos(rank, 0);
  int64_t base = 0; // offset of pos without the axis component
  for (int64_t i = 0; i < total; ++i) {
    int64_t j = wrapIndex(ctx, idx[i], n, "index");
    f(i, base + j * st[axis]);
    for (int64_t d = rank - 1; d >= 0; --d) {
      if (d != axis)
        base += st[d];
      if (++pos[d] < idxShape[d])
        break;
      if (d != axis)
        base -= st[d] * idxShape[d];
      pos[d] = 0;
    }
  }
}

void inferGatherElements(InferContext &ctx) {
  ctx.setOutputType(0, Type::tensor(inDType(ctx, 0), tensorShape(ctx, 1)));
}

void kernelGatherElements(KernelContext &ctx) {
  const Tensor &data = ctx.input(0), &indices = ctx.input(1);
  ctx.check(data.rank() >= 1, "data must have rank >= 1");
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", 0), data.rank());
  auto idx = indexValues(ctx, indices, "indices");
  Tensor out(data.dtype(), indices.shape());
  dispatchBytes(ctx, data.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *src = ptr<T>(data);
    T *dst = ptr<T>(out);
    forEachElementIndex(ctx, data.shape(), indices.shape(), idx, axis,
                        [&](int64_t i, int64_t off) { dst[i] = src[off]; });
  });
  ctx.setOutput(0, out);
}

enum class Reduction { None, Add, Mul, Max, Min };

Reduction scatterReduction(const AttrReader &ctx) {
  if (ctx.opset() < 16)
    return Reduction::None;
  std::string r = ctx.attrString("reduction", "none");
  if (r == "none")
    return Reduction::None;
  if (r == "add")
    return Reduction::Add;
  if (r == "mul")
    return Reduction::Mul;
  if (r == "max")
    return Reduction::Max;
  if (r == "min")
    return Reduction::Min;
  ctx.fail("unsupported reduction '", r, "' (expected none, add, mul, max or min)");
}

/// dst = reduce(dst, src) for numeric T (computed in the type itself; f16/bf16 via float).
template <class T> inline void applyReduction(Reduction red, T &dst, const T &src) {
  if constexpr (std::is_same_v<T, std::string>) {
    dst = src; // reductions on strings are rejected before
  } else if constexpr (std::is_same_v<T, bool>) {
    switch (red) {
    case Reduction::None: dst = src; break;
    case Reduction::Add: case Reduction::Max: dst = dst || src; break;
    case Reduction::Mul: case Reduction::Min: dst = dst && src; break;
    }
  } else {
    using C = std::conditional_t<std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>, float, T>;
    C a = C(dst), b = C(src);
    switch (red) {
    case Reduction::None: dst = src; return;
    case Reduction::Add: dst = T(C(a + b)); return;
    case Reduction::Mul: dst = T(C(a * b)); return;
    case Reduction::Max: dst = T(std::max(a, b)); return;
    case Reduction::Min: dst = T(std::min(a, b)); return;
    }
  }
}

void kernelScatterElements(KernelContext &ctx) {
  const Tensor &data = ctx.input(0), &indices = ctx.input(1), &updates = ctx.input(2);
  ctx.check(data.rank() >= 1, "data must have rank >= 1");
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", 0), data.rank());
  Reduction red = scatterReduction(ctx);
  ctx.check(updates.dtype() == data.dtype(), "updates (", dtypeName(updates.dtype()),
            ") must have the element type of data (", dtypeName(data.dtype()), ")");
  ctx.check(updates.shape() == indices.shape(), "updates shape ", updates.shapeString(),
            " must equal indices shape ", indices.shapeString());
  ctx.check(red == Reduction::None || data.dtype() != DType::string,
            "reductions are not defined for strings");
  auto idx = indexValues(ctx, indices, "indices");
  Tensor out = data.clone();
  dispatchAll(data.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *upd = updates.data<T>();
    T *dst = out.data<T>();
    forEachElementIndex(ctx, data.shape(), indices.shape(), idx, axis,
                        [&](int64_t i, int64_t off) { applyReduction(red, dst[off], upd[i]); });
  });
  ctx.setOutput(0, out);
}

//===----------------------------------------------------------------------===//
// GatherND, ScatterND
//===----------------------------------------------------------------------===//

void inferGatherND(InferContext &ctx) {
  DType dt = inDType(ctx, 0);
  const Shape &data = tensorShape(ctx, 0), &idx = tensorShape(ctx, 1);
  int64_t b = ctx.attrInt("batch_dims", 0);
  if (!data.rankKnown || !idx.rankKnown || idx.rank() < 1 || !idx.dims.back().isStatic()) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  int64_t last = idx.dims.back().value;
  ctx.check(b >= 0 && b < std::min(data.rank(), idx.rank()), "batch_dims ", b,
            " must be in [0, min(rank(data), rank(indices)))");
  ctx.check(last >= 1 && last <= data.rank() - b, "indices.shape[-1] (", last,
            ") must be in [1, rank(data) - batch_dims]");
  std::vector<Dim> out(idx.dims.begin(), idx.dims.end() - 1);
  out.insert(out.end(), data.dims.begin() + b + last, data.dims.end());
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

/// Offsets (in data elements) of each index tuple, with batch offsets; validates indices.
struct NDPlan {
  std::vector<int64_t> offsets; // one per tuple, all batches
  int64_t slice = 1;            // elements per gathered slice
};

NDPlan planND(const KernelContext &ctx, const Tensor &data, const Tensor &indices, int64_t b) {
  ctx.check(indices.dtype() == DType::i64 || indices.dtype() == DType::i32,
            "indices must be int64, got ", dtypeName(indices.dtype()));
  const int64_t r = data.rank(), q = indices.rank();
  ctx.check(q >= 1, "indices must have rank >= 1");
  ctx.check(b >= 0 && b < std::min(r, q), "batch_dims ", b,
            " must be in [0, min(rank(data), rank(indices)))");
  const int64_t last = indices.dim(q - 1);
  ctx.check(last >= 1 && last <= r - b, "indices.shape[-1] (", last,
            ") must be in [1, rank(data) - batch_dims] = [1, ", r - b, "]");
  for (int64_t d = 0; d < b; ++d)
    ctx.check(indices.dim(d) == data.dim(d), "batch dims of indices ", indices.shapeString(),
              " and data ", data.shapeString(), " differ");
  NDPlan p;
  p.slice = product(data.shape(), b + last);
  const int64_t batches = product(data.shape(), 0, b);
  const int64_t tuplesPerBatch = product(indices.shape(), b, q - 1);
  auto st = stridesOf(data.shape());
  const int64_t batchStride = b > 0 ? st[b - 1] : 0;
  auto idx = indices.toInt64Vector();
  p.offsets.resize(batches * tuplesPerBatch);
  for (int64_t bi = 0; bi < batches; ++bi) {
    for (int64_t t = 0; t < tuplesPerBatch; ++t) {
      const int64_t *tuple = idx.data() + (bi * tuplesPerBatch + t) * last;
      int64_t off = bi * batchStride;
      for (int64_t k = 0; k < last; ++k)
        off += wrapIndex(ctx, tuple[k], data.dim(b + k), "index") * st[b + k];
      p.offsets[bi * tuplesPerBatch + t] = off;
    }
  }
  return p;
}

void kernelGatherND(KernelContext &ctx) {
  const Tensor &data = ctx.input(0), &indices = ctx.input(1);
  int64_t b = ctx.opset() >= 12 ? ctx.attrInt("batch_dims", 0) : 0;
  NDPlan p = planND(ctx, data, indices, b);
  const int64_t last = indices.dim(indices.rank() - 1);
  std::vector<int64_t> outShape(indices.shape().begin(), indices.shape().end() - 1);
  outShape.insert(outShape.end(), data.shape().begin() + b + last, data.shape().end());
  Tensor out(data.dtype(), outShape);
  if (out.numel() > 0) {
    dispatchBytes(ctx, data.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T *src = ptr<T>(data);
      T *dst = ptr<T>(out);
      for (size_t i = 0; i < p.offsets.size(); ++i)
        copyRun(dst + int64_t(i) * p.slice, src + p.offsets[i], p.slice);
    });
  }
  ctx.setOutput(0, out);
}

void kernelScatterND(KernelContext &ctx) {
  const Tensor &data = ctx.input(0), &indices = ctx.input(1), &updates = ctx.input(2);
  Reduction red = scatterReduction(ctx);
  ctx.check(red == Reduction::None || data.dtype() != DType::string,
            "reductions are not defined for strings");
  ctx.check(updates.dtype() == data.dtype(), "updates (", dtypeName(updates.dtype()),
            ") must have the element type of data (", dtypeName(data.dtype()), ")");
  NDPlan p = planND(ctx, data, indices, 0);
  const int64_t last = indices.dim(indices.rank() - 1);
  std::vector<int64_t> updShape(indices.shape().begin(), indices.shape().end() - 1);
  updShape.insert(updShape.end(), data.shape().begin() + last, data.shape().end());
  ctx.check(updates.shape() == updShape, "updates shape ", updates.shapeString(),
            " must be indices.shape[:-1] + data.shape[indices.shape[-1]:] = ",
            shapeToString(updShape));
  Tensor out = data.clone();
  dispatchAll(data.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *upd = updates.data<T>();
    T *dst = out.data<T>();
    for (size_t i = 0; i < p.offsets.size(); ++i) {
      T *d = dst + p.offsets[i];
      const T *u = upd + int64_t(i) * p.slice;
      if (red == Reduction::None)
        copyRun(d, u, p.slice);
      else
        for (int64_t j = 0; j < p.slice; ++j)
          applyReduction(red, d[j], u[j]);
    }
  });
  ctx.setOutput(0, out);
}

//===----------------------------------------------------------------------===//
// OneHot
//===----------------------------------------------------------------------===//

void inferOneHot(InferContext &ctx) {
  DType dt = inDType(ctx, 2);
  const Shape &in = tensorShape(ctx, 0);
  if (!in.rankKnown) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  int64_t outRank = in.rank() + 1;
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", -1), outRank);
  Dim depth;
  if (const Tensor *d = ctx.inputConstant(1); d && d->numel() == 1 && d->dtype() != DType::string) {
    double v = d->getDouble(0);
    if (v >= 1 && v < 1e15)
      depth = Dim(int64_t(v));
  }
  std::vector<Dim> out = in.dims;
  out.insert(out.begin() + axis, depth);
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

void kernelOneHot(KernelContext &ctx) {
  const Tensor &indices = ctx.input(0), &depthT = ctx.input(1), &values = ctx.input(2);
  ctx.check(depthT.numel() == 1, "depth must have one element, got ", depthT.shapeString());
  ctx.check(values.numel() == 2, "values must have two elements [off, on], got ",
            values.shapeString());
  ctx.check(indices.dtype() != DType::string && depthT.dtype() != DType::string,
            "indices and depth must be numeric");
  double dd = depthT.getDouble(0);
  ctx.check(dd >= 1 && dd < 9e18, "depth must be >= 1, got ", dd);
  const int64_t depth = int64_t(dd);
  const int64_t outRank = indices.rank() + 1;
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", -1), outRank);
  std::vector<int64_t> outShape = indices.shape();
  outShape.insert(outShape.begin() + axis, depth);
  Tensor out(values.dtype(), outShape);
  const int64_t outer = product(indices.shape(), 0, axis);
  const int64_t inner = product(indices.shape(), axis);
  auto idx = indices.toDoubleVector();
  dispatchBytes(ctx, values.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T off = ptr<T>(values)[0], on = ptr<T>(values)[1];
    T *dst = ptr<T>(out);
    std::fill(dst, dst + out.numel(), off);
    for (int64_t o = 0; o < outer; ++o) {
      for (int64_t i = 0; i < inner; ++i) {
        double v = idx[o * inner + i];
        if (v < 0)
          v += double(depth);
        if (!(v >= 0 && v < double(depth)))
          continue; // out of range: all "off"
        int64_t k = int64_t(v);
        dst[(o * depth + k) * inner + i] = on;
      }
    }
  });
  ctx.setOutput(0, out);
}

//===----------------------------------------------------------------------===//
// Compress, NonZero
//===----------------------------------------------------------------------===//

void inferCompress(InferContext &ctx) {
  DType dt = inDType(ctx, 0);
  const Shape &in = tensorShape(ctx, 0);
  if (!ctx.hasAttr("axis")) {
    ctx.setOutputType(0, Type::tensor(dt, Shape({Dim()})));
    return;
  }
  if (!in.rankKnown) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis"), in.rank());
  std::vector<Dim> out = in.dims;
  out[axis] = Dim();
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

void kernelCompress(KernelContext &ctx) {
  const Tensor &x = ctx.input(0), &cond = ctx.input(1);
  ctx.check(cond.rank() == 1, "condition must be 1-D, got ", cond.shapeString());
  ctx.check(cond.dtype() == DType::boolean, "condition must be bool, got ",
            dtypeName(cond.dtype()));
  Tensor in = x;
  const int64_t axis = axisOrFlatten(ctx, x, in);
  const int64_t n = in.dim(axis);
  const bool *c = cond.data<bool>();
  std::vector<int64_t> keep;
  for (int64_t i = 0; i < cond.numel(); ++i) {
    if (!c[i])
      continue;
    ctx.check(i < n, "condition selects index ", i, " but the axis has size ", n);
    keep.push_back(i);
  }
  std::vector<int64_t> outShape = in.shape();
  outShape[axis] = int64_t(keep.size());
  Tensor out(x.dtype(), outShape);
  const int64_t outer = product(in.shape(), 0, axis), inner = product(in.shape(), axis + 1);
  if (out.numel() > 0)
    takeSlices(ctx, in, out, outer, n, inner, keep);
  ctx.setOutput(0, out);
}

void inferNonZero(InferContext &ctx) {
  const Shape &in = tensorShape(ctx, 0);
  Dim r = in.rankKnown ? Dim(std::max<int64_t>(in.rank(), 1)) : Dim();
  ctx.setOutputType(0, Type::tensor(DType::i64, Shape({r, Dim()})));
}

void kernelNonZero(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  std::vector<int64_t> nz;
  dispatchAll(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *p = x.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      bool z;
      if constexpr (std::is_same_v<T, std::string>)
        z = p[i].empty();
      else if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>)
        z = float(p[i]) == 0.0f;
      else
        z = p[i] == T(0);
      if (!z)
        nz.push_back(i);
    }
  });
  const int64_t rank = std::max<int64_t>(x.rank(), 1);
  const int64_t count = int64_t(nz.size());
  Tensor out(DType::i64, {rank, count});
  int64_t *o = out.data<int64_t>();
  auto st = x.rank() > 0 ? stridesOf(x.shape()) : std::vector<int64_t>{1};
  std::vector<int64_t> shape = x.rank() > 0 ? x.shape() : std::vector<int64_t>{1};
  for (int64_t j = 0; j < count; ++j) {
    int64_t flat = nz[j];
    for (int64_t d = 0; d < rank; ++d) {
      o[d * count + j] = flat / st[d];
      flat %= st[d];
    }
  }
  ctx.setOutput(0, out);
}

//===----------------------------------------------------------------------===//
// Unique
//===----------------------------------------------------------------------===//

void inferUnique(InferContext &ctx) {
  DType dt = inDType(ctx, 0);
  const Shape &in = tensorShape(ctx, 0);
  if (!ctx.hasAttr("axis")) {
    ctx.setOutputType(0, Type::tensor(dt, Shape({Dim()})));
  } else if (in.rankKnown) {
    int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis"), in.rank());
    std::vector<Dim> out = in.dims;
    out[axis] = Dim();
    ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
  } else {
    ctx.setOutputType(0, Type::tensor(dt));
  }
  Dim inv;
  if (!ctx.hasAttr("axis") && in.rankKnown)
    inv = [&] {
      int64_t p = 1;
      for (auto &d : in.dims) {
        if (!d.isStatic())
          return Dim();
        p *= d.value;
      }
      return Dim(p);
    }();
  else if (in.rankKnown)
    inv = in.dims[normalizeAxis(ctx, ctx.attrInt("axis"), in.rank())];
  for (size_t i = 1; i < ctx.numOutputs(); ++i)
    ctx.setOutputType(i, Type::tensor(DType::i64, Shape({i == 2 ? inv : Dim()})));
}

void kernelUnique(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  bool sorted = ctx.attrInt("sorted", 1) != 0;
  Tensor in = x;
  const int64_t axis = axisOrFlatten(ctx, x, in);
  const int64_t n = in.dim(axis);
  const int64_t outer = product(in.shape(), 0, axis), inner = product(in.shape(), axis + 1);
  // Slice i (along axis) element e = (o, j): src[(o * n + i) * inner + j].
  std::vector<int64_t> order(n), groupOf(n);
  std::vector<int64_t> groupFirst; // original index of each group's first occurrence
  std::vector<int64_t> counts;
  dispatchAll(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    using C = std::conditional_t<std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>, float, T>;
    const T *src = in.data<T>();
    // A total order: NaNs sort last and equal each other.
    auto less = [](const C &a, const C &b) {
      if constexpr (std::is_floating_point_v<C>) {
        if (std::isnan(a))
          return false;
        if (std::isnan(b))
          return true;
      }
      return a < b;
    };
    auto cmp = [&](int64_t a, int64_t b) -> int {
      for (int64_t o = 0; o < outer; ++o)
        for (int64_t j = 0; j < inner; ++j) {
          const T &ra = src[(o * n + a) * inner + j], &rb = src[(o * n + b) * inner + j];
          if constexpr (std::is_same_v<C, T>) {
            if (less(ra, rb))
              return -1;
            if (less(rb, ra))
              return 1;
          } else {
            C va = C(ra), vb = C(rb);
            if (less(va, vb))
              return -1;
            if (less(vb, va))
              return 1;
          }
        }
      return 0;
    };
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return cmp(a, b) < 0; });
    for (int64_t k = 0; k < n; ++k) {
      int64_t i = order[k];
      if (k == 0 || cmp(order[k - 1], i) != 0) {
        groupFirst.push_back(i);
        counts.push_back(0);
      }
      groupOf[i] = int64_t(groupFirst.size()) - 1;
      ++counts.back();
    }
  });
  int64_t u = int64_t(groupFirst.size());
  // Group order: sorted order, or order of first occurrence.
  std::vector<int64_t> rank(u);
  std::iota(rank.begin(), rank.end(), 0);
  if (!sorted) {
    std::vector<int64_t> byFirst(u);
    std::iota(byFirst.begin(), byFirst.end(), 0);
    std::sort(byFirst.begin(), byFirst.end(),
              [&](int64_t a, int64_t b) { return groupFirst[a] < groupFirst[b]; });
    for (int64_t k = 0; k < u; ++k)
      rank[byFirst[k]] = k;
  }
  std::vector<int64_t> first(u), cnt(u), inverse(n);
  for (int64_t g = 0; g < u; ++g) {
    first[rank[g]] = groupFirst[g];
    cnt[rank[g]] = counts[g];
  }
  for (int64_t i = 0; i < n; ++i)
    inverse[i] = rank[groupOf[i]];
  std::vector<int64_t> outShape = in.shape();
  outShape[axis] = u;
  Tensor y(x.dtype(), outShape);
  if (y.numel() > 0)
    takeSlices(ctx, in, y, outer, n, inner, first);
  ctx.setOutput(0, y);
  if (ctx.numOutputs() > 1 && ctx.hasOutput(1))
    ctx.setOutput(1, Tensor::fromVector<int64_t>({u}, first));
  if (ctx.numOutputs() > 2 && ctx.hasOutput(2))
    ctx.setOutput(2, Tensor::fromVector<int64_t>({n}, inverse));
  if (ctx.numOutputs() > 3 && ctx.hasOutput(3))
    ctx.setOutput(3, Tensor::fromVector<int64_t>({u}, cnt));
}

//===----------------------------------------------------------------------===//
// Trilu, EyeLike
//===----------------------------------------------------------------------===//

void kernelTrilu(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  ctx.check(x.rank() >= 2, "input must have rank >= 2, got ", x.shapeString());
  int64_t k = 0;
  if (ctx.hasInput(1)) {
    const Tensor &kt = ctx.input(1);
    ctx.check(kt.numel() == 1 && kt.dtype() == DType::i64, "k must be an int64 scalar, got ",
              kt.typeString());
    k = kt.getInt64(0);
  }
  bool upper = ctx.attrInt("upper", 1) != 0;
  const int64_t rows = x.dim(x.rank() - 2), cols = x.dim(x.rank() - 1);
  const int64_t batches = product(x.shape(), 0, x.rank() - 2);
  Tensor out(x.dtype(), x.shape());
  dispatchBytes(ctx, x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *src = ptr<T>(x);
    T *dst = ptr<T>(out); // zero-initialized (empty strings)
    for (int64_t b = 0; b < batches; ++b)
      for (int64_t i = 0; i < rows; ++i) {
        // keep j - i >= k (upper) or j - i <= k (lower), clamped to [0, cols]
        int64_t lo = 0, hi = cols;
        if (upper)
          lo = std::clamp<int64_t>(i + std::clamp<int64_t>(k, -cols - rows, cols + rows), 0, cols);
        else
          hi = std::clamp<int64_t>(i + std::clamp<int64_t>(k, -cols - rows, cols + rows) + 1, 0, cols);
        const int64_t row = (b * rows + i) * cols;
        if (hi > lo)
          copyRun(dst + row + lo, src + row + lo, hi - lo);
      }
  });
  ctx.setOutput(0, out);
}

DType eyeLikeDType(const AttrReader &ctx, DType in) {
  if (!ctx.hasAttr("dtype"))
    return in;
  int64_t code = ctx.attrInt("dtype");
  auto dt = dtypeFromOnnx(int(code));
  ctx.check(dt.has_value() && *dt != DType::string, "unsupported dtype ", code);
  return *dt;
}

void inferEyeLike(InferContext &ctx) {
  DType in = inDType(ctx, 0);
  DType dt = ctx.hasAttr("dtype") ? eyeLikeDType(ctx, in) : in;
  ctx.setOutputType(0, Type::tensor(dt, tensorShape(ctx, 0)));
}

void kernelEyeLike(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  ctx.check(x.rank() == 2, "input must be 2-D, got ", x.shapeString());
  DType dt = eyeLikeDType(ctx, x.dtype());
  int64_t k = ctx.attrInt("k", 0);
  Tensor out(dt, x.shape());
  const int64_t rows = x.dim(0), cols = x.dim(1);
  dispatchNumeric(dt, [&](auto tag) {
    using T = decltype(tag);
    T *d = out.data<T>();
    for (int64_t i = 0; i < rows; ++i) {
      if (k > cols || k < -rows)
        break;
      int64_t j = i + k;
      if (j >= 0 && j < cols)
        d[i * cols + j] = T(1);
    }
  });
  ctx.setOutput(0, out);
}

//===----------------------------------------------------------------------===//
// ReverseSequence
//===----------------------------------------------------------------------===//

void kernelReverseSequence(KernelContext &ctx) {
  const Tensor &x = ctx.input(0), &lensT = ctx.input(1);
  ctx.check(x.rank() >= 2, "input must have rank >= 2, got ", x.shapeString());
  int64_t batchAxis = ctx.attrInt("batch_axis", 1), timeAxis = ctx.attrInt("time_axis", 0);
  ctx.check((batchAxis == 0 && timeAxis == 1) || (batchAxis == 1 && timeAxis == 0),
            "batch_axis and time_axis must be 0 and 1 (in some order), got ", batchAxis, " and ",
            timeAxis);
  const int64_t batch = x.dim(batchAxis), time = x.dim(timeAxis);
  auto lens = indexValues(ctx, lensT, "sequence_lens");
  ctx.check(lensT.rank() == 1 && int64_t(lens.size()) == batch, "sequence_lens must have shape [",
            batch, "], got ", lensT.shapeString());
  for (int64_t l : lens)
    ctx.check(l >= 0 && l <= time, "sequence length ", l, " out of range [0, ", time, "]");
  const int64_t inner = product(x.shape(), 2);
  Tensor out(x.dtype(), x.shape());
  if (out.numel() > 0) {
    dispatchBytes(ctx, x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T *src = ptr<T>(x);
      T *dst = ptr<T>(out);
      for (int64_t b = 0; b < batch; ++b)
        for (int64_t t = 0; t < time; ++t) {
          int64_t st = t < lens[b] ? lens[b] - 1 - t : t;
          auto off = [&](int64_t tt) {
            return (timeAxis == 0 ? tt * batch + b : b * time + tt) * inner;
          };
          copyRun(dst + off(t), src + off(st), inner);
        }
    });
  }
  ctx.setOutput(0, out);
}

} // namespace

// --- lowerings of the Indexing ops
namespace {

using loop::Expr;
using loop::Var;

/// k as i64, wrapped once by n (no clamp): what the index designates, for comparisons.
Expr wrapIndexExpr(Expr k, int64_t n) {
  k = loop::cast(DType::i64, k);
  return loop::select(k < int64_t(0), k + n, k);
}

/// An index value as i64, negative values wrapped once by `n`, then clamped to [0, n) so the
/// load stays in bounds (the reference kernel reports out-of-range indices; the generated code
/// cannot, and never reads outside the tensor).
Expr wrapClampIndex(Expr k, int64_t n) {
  return loop::max(loop::min(wrapIndexExpr(std::move(k), n), Expr(n - 1)), Expr(int64_t(0)));
}

// Gather as an index map: the output element at (outer, j..., inner) loads
// data[outer, indices[j...] (negative: + dim; clamped in range), inner].
void lowerGather(LowerContext &ctx) {
  std::vector<int64_t> ds = ctx.inputShape(0), is = ctx.inputShape(1);
  int64_t r = int64_t(ds.size()), q = int64_t(is.size());
  ctx.check(r >= 1, "data should have rank >= 1");
  int64_t axis = lowering::normalizeAxis(ctx, ctx.attrInt("axis", 0), r);
  te::Tensor D = ctx.input(0), I = ctx.input(1);
  int64_t n = ds[axis];
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)), [&](std::vector<Var> iv) {
    std::vector<Expr> ii(iv.begin() + axis, iv.begin() + axis + q); // empty: scalar indices
    std::vector<Expr> idx(iv.begin(), iv.begin() + axis);
    idx.push_back(wrapClampIndex(I.access(ii), n));
    for (size_t d = axis + q; d < iv.size(); ++d)
      idx.push_back(iv[d]);
    return D.access(idx);
  }));
}

void checkIndexDType(const LowerContext &ctx, size_t i) {
  DType dt = ctx.inputDType(i);
  ctx.check(dt == DType::i32 || dt == DType::i64, "input ", i, " (indices) must be int32 or int64, got ",
            dtypeName(dt));
}

/// GatherElements: out[p] = data[p with p[axis] replaced by indices[p]].
void lowerGatherElements(LowerContext &ctx) {
  std::vector<int64_t> ds = ctx.inputShape(0);
  int64_t r = int64_t(ds.size());
  ctx.check(r >= 1, "data should have rank >= 1");
  checkIndexDType(ctx, 1);
  int64_t axis = lowering::normalizeAxis(ctx, ctx.attrInt("axis", 0), r);
  te::Tensor D = ctx.input(0), I = ctx.input(1);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)), [&](std::vector<Var> iv) {
    std::vector<Expr> idx(iv.begin(), iv.end());
    idx[axis] = wrapClampIndex(I.access(std::vector<Expr>(iv.begin(), iv.end())), ds[axis]);
    return D.access(idx);
  }));
}

/// GatherND: out[b..., t..., s...] = data[b..., indices[b..., t..., 0..last), s...].
void lowerGatherND(LowerContext &ctx) {
  std::vector<int64_t> ds = ctx.inputShape(0), is = ctx.inputShape(1);
  checkIndexDType(ctx, 1);
  int64_t r = int64_t(ds.size()), q = int64_t(is.size());
  int64_t b = ctx.opset() >= 12 ? ctx.attrInt("batch_dims", 0) : 0;
  ctx.check(q >= 1 && b >= 0 && b < std::min(r, q), "batch_dims ", b,
            " must be in [0, min(rank(data), rank(indices)))");
  int64_t last = is[q - 1];
  ctx.check(last >= 1 && last <= r - b, "indices.shape[-1] (", last,
            ") must be in [1, rank(data) - batch_dims]");
  te::Tensor D = ctx.input(0), I = ctx.input(1);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)), [&](std::vector<Var> iv) {
    // iv = [indices dims 0..q-1) , data dims b+last..r)
    std::vector<Expr> idx(iv.begin(), iv.begin() + b);
    for (int64_t k = 0; k < last; ++k) {
      std::vector<Expr> ii(iv.begin(), iv.begin() + (q - 1));
      ii.push_back(Expr(k));
      idx.push_back(wrapClampIndex(I.access(ii), ds[b + k]));
    }
    for (size_t d = q - 1; d < iv.size(); ++d)
      idx.push_back(iv[d]);
    return D.access(idx);
  }));
}

/// Trilu: keep x[..., i, j] where j - i >= k (upper) or j - i <= k (lower), else zero; k is a
/// literal when constant, else read at run time.
void lowerTrilu(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  ctx.check(xs.size() >= 2, "input must have rank >= 2, got ", shapeToString(xs));
  Expr k = Expr(int64_t(0)); // a literal when constant, else read at run time
  if (ctx.hasInput(1)) {
    std::vector<int64_t> ks = ctx.inputShape(1);
    int64_t nk = 1;
    for (int64_t d : ks)
      nk *= d;
    ctx.check(nk == 1, "k must be a scalar, got shape ", shapeToString(ks));
    if (ctx.inputConstant(1)) {
      k = Expr(ctx.constantInts(1, "k")[0]);
    } else {
      k = ctx.input(1).access(std::vector<Expr>(ks.size(), Expr(int64_t(0))));
      if (k.type() != loop::Type::i64())
        k = loop::cast(DType::i64, k);
    }
  }
  bool upper = ctx.attrInt("upper", 1) != 0;
  te::Tensor X = ctx.input(0);
  DType dt = X.dtype();
  size_t n = xs.size();
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    Expr diff = Expr(iv[n - 1]) - Expr(iv[n - 2]);
    Expr keep = upper ? (diff >= k) : (diff <= k);
    return loop::select(keep, X.access(std::vector<Expr>(iv.begin(), iv.end())),
                        lowering::constant(dt, 0));
  }));
}

/// EyeLike: 1 where j - i == k, else 0, in the output dtype (the input gives only the shape).
void lowerEyeLike(LowerContext &ctx) {
  std::vector<int64_t> s = ctx.outputShape(0);
  ctx.check(s.size() == 2, "input must be 2-D, got ", shapeToString(s));
  DType dt = ctx.outputDType(0);
  lowering::checkDType(ctx, dt, "output dtype");
  int64_t k = ctx.attrInt("k", 0);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(s), [&](Var i, Var j) {
    return loop::select(Expr(j) - Expr(i) == k, lowering::constant(dt, 1), lowering::constant(dt, 0));
  }));
}

/// OneHot: out[..., c, ...] = values[1] when the index at that position (negative: + depth)
/// equals c, else values[0]; out-of-range indices give all "off". The output's extent along
/// the axis is static (a constant depth, or the model's declared shape); depth itself is a
/// literal when constant, else read at run time (int64(depth[0]), as the reference does).
void lowerOneHot(LowerContext &ctx) {
  std::vector<int64_t> is = ctx.inputShape(0), vs = ctx.inputShape(2), dsh = ctx.inputShape(1);
  int64_t nv = 1, nd = 1;
  for (int64_t d : vs)
    nv *= d;
  for (int64_t d : dsh)
    nd *= d;
  ctx.check(nv == 2, "values must have two elements [off, on], got shape ", shapeToString(vs));
  ctx.check(nd == 1, "depth must have one element, got shape ", shapeToString(dsh));
  int64_t axis = lowering::normalizeAxis(ctx, ctx.attrInt("axis", -1), int64_t(is.size()) + 1);
  te::Tensor I = ctx.input(0), V = ctx.input(2);
  Expr depth; // i64
  if (ctx.inputConstant(1)) {
    std::vector<double> dv = ctx.constantFloats(1, "depth");
    ctx.check(dv[0] >= 1 && dv[0] < 9e18, "depth must be >= 1, got ", dv[0]);
    depth = Expr(int64_t(dv[0]));
  } else {
    Expr d = ctx.input(1).access(std::vector<Expr>(dsh.size(), Expr(int64_t(0))));
    if (d.type().isFloat()) {
      if (d.type() != loop::Type::f64())
        d = loop::cast(DType::f64, d);
      d = loop::cast(DType::i64, loop::max(loop::min(d, Expr(9e18)), Expr(1.0)));
    } else if (d.type() != loop::Type::i64()) {
      d = loop::cast(DType::i64, d);
    }
    depth = loop::max(d, Expr(int64_t(1)));
  }
  auto valueAt = [&](int64_t k) {
    std::vector<Expr> idx;
    if (!vs.empty())
      idx.push_back(Expr(k));
    return V.access(idx);
  };
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)), [&](std::vector<Var> iv) {
    std::vector<Expr> ii;
    for (size_t d = 0; d < iv.size(); ++d)
      if (int64_t(d) != axis)
        ii.push_back(iv[d]);
    Expr v = I.access(ii);
    Expr hit;
    if (v.type().isFloat()) {
      // the reference wraps in double, then compares int64(v) for v in [0, depth)
      if (v.type() != loop::Type::f64())
        v = loop::cast(DType::f64, v);
      Expr df = loop::cast(DType::f64, depth);
      Expr w = loop::select(v < 0.0, v + df, v);
      Expr inRange = (w >= 0.0) && (w < df);
      Expr c = loop::cast(DType::i64, loop::max(loop::min(w, df - 1.0), Expr(0.0)));
      hit = inRange && (c == Expr(iv[axis]));
    } else {
      Expr w = v;
      if (w.type() != loop::Type::i64())
        w = loop::cast(DType::i64, w);
      w = loop::select(w < int64_t(0), w + depth, w);
      hit = (w == Expr(iv[axis])) && (w < depth);
    }
    return loop::select(hit, valueAt(1), valueAt(0));
  }));
}

/// ReverseSequence: out[t, b, ...] = x[t < len[b] ? len[b] - 1 - t : t, b, ...] (time and batch
/// axes 0/1 in either order); lengths are read at run time and clamped to [0, time].
void lowerReverseSequence(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  ctx.check(xs.size() >= 2, "input must have rank >= 2, got ", shapeToString(xs));
  checkIndexDType(ctx, 1);
  int64_t batchAxis = ctx.attrInt("batch_axis", 1), timeAxis = ctx.attrInt("time_axis", 0);
  ctx.check((batchAxis == 0 && timeAxis == 1) || (batchAxis == 1 && timeAxis == 0),
            "batch_axis and time_axis must be 0 and 1 (in some order), got ", batchAxis, " and ",
            timeAxis);
  const int64_t time = xs[timeAxis];
  te::Tensor X = ctx.input(0), L = ctx.input(1);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    Expr len = L(iv[batchAxis]);
    if (len.type() != loop::Type::i64())
      len = loop::cast(DType::i64, len);
    len = loop::max(loop::min(len, Expr(time)), Expr(int64_t(0)));
    Expr t = iv[timeAxis];
    std::vector<Expr> idx(iv.begin(), iv.end());
    idx[timeAxis] = loop::select(t < len, len - int64_t(1) - t, t);
    return X.access(idx);
  }));
}


/// data[p] (`init`) combined with the matching updates (`match` selects them; `upd` is the
/// update at the reduction's position) by reduction add/mul/max/min.
te::Reduction scatterReduce(Reduction red, Expr upd, std::vector<te::IterVar> axes, Expr match,
                            Expr init) {
  switch (red) {
  case Reduction::Add:
    return te::sum(upd, std::move(axes), init, match);
  case Reduction::Mul:
    return te::prod(upd, std::move(axes), init, match);
  case Reduction::Max:
    return te::max(upd, std::move(axes), init, match);
  case Reduction::Min:
    return te::min(upd, std::move(axes), init, match);
  case Reduction::None:
    break;
  }
  return te::Reduction();
}

/// ScatterElements / Scatter as a select over the output index: for out[p], the updates at
/// positions u with u[d] == p[d] (d != axis) and indices[u] (wrapped) == p[axis] are the ones
/// written to p. Reduction none: the last of them in the reference's order (the largest
/// u[axis]) wins, else data[p]; add/mul/max/min: data[p] combined with all of them.
void lowerScatterElements(LowerContext &ctx) {
  std::vector<int64_t> ds = ctx.inputShape(0), is = ctx.inputShape(1), us = ctx.inputShape(2);
  int64_t r = int64_t(ds.size());
  ctx.check(r >= 1, "data must have rank >= 1");
  checkIndexDType(ctx, 1);
  ctx.check(us == is, "updates shape ", shapeToString(us), " must equal indices shape ",
            shapeToString(is));
  ctx.check(int64_t(is.size()) == r, "indices must have the rank of data (", r, "), got shape ",
            shapeToString(is));
  int64_t axis = lowering::normalizeAxis(ctx, ctx.attrInt("axis", 0), r);
  for (int64_t d = 0; d < r; ++d)
    ctx.check(d == axis || is[d] <= ds[d], "indices shape ", shapeToString(is),
              " exceeds data shape ", shapeToString(ds), " in dim ", d);
  Reduction red = scatterReduction(ctx);
  te::Tensor D = ctx.input(0), I = ctx.input(1), U = ctx.input(2);
  DType dt = D.dtype();
  ctx.check(red == Reduction::None || dt != DType::boolean,
            "lowering of reduction on bool data is not supported; expected a numeric dtype");
  if (is[axis] == 0) {
    ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ds), [&](std::vector<Var> iv) {
      return D.access(std::vector<Expr>(iv.begin(), iv.end()));
    }));
    return;
  }
  // the update position u for output p and reduction index k: u = p with u[axis] = k, each
  // other dim clamped into the indices' extent (guarded by `inside`)
  auto position = [&](const std::vector<Var> &iv, Expr k, Expr &inside) {
    std::vector<Expr> u;
    for (int64_t d = 0; d < r; ++d) {
      if (d == axis) {
        u.push_back(k);
        continue;
      }
      if (is[d] < ds[d]) {
        Expr ok = Expr(iv[d]) < is[d];
        inside = inside.defined() ? (inside && ok) : ok;
        u.push_back(loop::min(Expr(iv[d]), Expr(is[d] - 1)));
      } else {
        u.push_back(iv[d]);
      }
    }
    return u;
  };
  if (red == Reduction::None) {
    te::Tensor last = ctx.compute(lowering::shapeExprs(ds), [&](std::vector<Var> iv) {
      te::IterVar k = te::reduce_axis({Expr(int64_t(0)), Expr(is[axis])}, "k");
      Expr inside;
      std::vector<Expr> u = position(iv, k, inside);
      Expr match = wrapIndexExpr(I.access(u), ds[axis]) == Expr(iv[axis]);
      if (inside.defined())
        match = inside && match;
      return te::max(loop::select(match, Expr(k), Expr(int64_t(-1))), {k}, Expr(int64_t(-1)));
    }, "last_update");
    ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ds), [&](std::vector<Var> iv) {
      std::vector<Expr> p(iv.begin(), iv.end());
      Expr l = last.access(p);
      Expr inside;
      std::vector<Expr> u = position(iv, loop::max(l, Expr(int64_t(0))), inside);
      return loop::select(l >= int64_t(0), U.access(u), D.access(p));
    }));
    return;
  }
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ds), [&](std::vector<Var> iv) {
    te::IterVar k = te::reduce_axis({Expr(int64_t(0)), Expr(is[axis])}, "k");
    Expr inside;
    std::vector<Expr> u = position(iv, k, inside);
    Expr match = wrapIndexExpr(I.access(u), ds[axis]) == Expr(iv[axis]);
    if (inside.defined())
      match = inside && match;
    return scatterReduce(red, U.access(u), {k}, match,
                         D.access(std::vector<Expr>(iv.begin(), iv.end())));
  }));
}

/// ScatterND as a select over the output index: the update tuples t (over indices.shape[:-1])
/// whose index tuple (wrapped) equals p[0..last) write to out[p]; none: the last such t (in
/// row-major order, as the reference applies them) gives updates[t, p[last:]], else data[p];
/// add/mul/max/min: data[p] combined with every such update.
void lowerScatterND(LowerContext &ctx) {
  std::vector<int64_t> ds = ctx.inputShape(0), is = ctx.inputShape(1), us = ctx.inputShape(2);
  checkIndexDType(ctx, 1);
  int64_t r = int64_t(ds.size()), q = int64_t(is.size());
  ctx.check(q >= 1, "indices must have rank >= 1");
  int64_t last = is[q - 1];
  ctx.check(last >= 1 && last <= r, "indices.shape[-1] (", last, ") must be in [1, rank(data)]");
  std::vector<int64_t> want(is.begin(), is.end() - 1);
  want.insert(want.end(), ds.begin() + last, ds.end());
  ctx.check(us == want, "updates shape ", shapeToString(us),
            " must be indices.shape[:-1] + data.shape[indices.shape[-1]:] = ", shapeToString(want));
  Reduction red = scatterReduction(ctx);
  te::Tensor D = ctx.input(0), I = ctx.input(1), U = ctx.input(2);
  ctx.check(red == Reduction::None || D.dtype() != DType::boolean,
            "lowering of reduction on bool data is not supported; expected a numeric dtype");
  int64_t tuples = 1;
  for (int64_t d = 0; d + 1 < q; ++d)
    tuples *= is[d];
  if (tuples == 0) {
    ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ds), [&](std::vector<Var> iv) {
      return D.access(std::vector<Expr>(iv.begin(), iv.end()));
    }));
    return;
  }
  // one reduction axis per tuple dim (a single unit axis when indices has rank 1: one tuple);
  // match = every index of the tuple designates p
  auto axesOf = [&] {
    std::vector<te::IterVar> t;
    for (int64_t d = 0; d + 1 < q; ++d)
      t.push_back(te::reduce_axis({Expr(int64_t(0)), Expr(is[d])}, "t" + std::to_string(d)));
    if (t.empty())
      t.push_back(te::reduce_axis({Expr(int64_t(0)), Expr(int64_t(1))}, "t"));
    return t;
  };
  // the tuple's position in indices' leading dims (none when indices has rank 1)
  auto tupleOf = [&](const std::vector<te::IterVar> &t) {
    return std::vector<Expr>(t.begin(), t.begin() + (q - 1));
  };
  auto matchOf = [&](const std::vector<Var> &iv, const std::vector<Expr> &t) {
    Expr match;
    for (int64_t k = 0; k < last; ++k) {
      std::vector<Expr> ii = t;
      ii.push_back(Expr(k));
      Expr m = wrapIndexExpr(I.access(ii), ds[k]) == Expr(iv[k]);
      match = match.defined() ? (match && m) : m;
    }
    return match;
  };
  auto updateAt = [&](std::vector<Expr> t, const std::vector<Var> &iv) {
    for (int64_t d = last; d < r; ++d)
      t.push_back(iv[d]);
    return U.access(t);
  };
  if (red == Reduction::None) {
    te::Tensor lastT = ctx.compute(lowering::shapeExprs(ds), [&](std::vector<Var> iv) {
      std::vector<te::IterVar> t = axesOf();
      std::vector<Expr> tup = tupleOf(t);
      Expr lin = Expr(int64_t(0)); // the tuple's row-major position
      for (int64_t d = 0; d + 1 < q; ++d)
        lin = lin * is[d] + tup[d];
      return te::max(loop::select(matchOf(iv, tup), lin, Expr(int64_t(-1))), t, Expr(int64_t(-1)));
    }, "last_update");
    ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ds), [&](std::vector<Var> iv) {
      std::vector<Expr> p(iv.begin(), iv.end());
      Expr l = lastT.access(p);
      Expr lc = loop::max(l, Expr(int64_t(0)));
      std::vector<Expr> t(q - 1);
      for (int64_t d = q - 2; d >= 0; --d) {
        t[d] = lc % is[d];
        lc = lc / is[d];
      }
      return loop::select(l >= int64_t(0), updateAt(t, iv), D.access(p));
    }));
    return;
  }
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ds), [&](std::vector<Var> iv) {
    std::vector<te::IterVar> t = axesOf();
    std::vector<Expr> tup = tupleOf(t);
    return scatterReduce(red, updateAt(tup, iv), t, matchOf(iv, tup),
                         D.access(std::vector<Expr>(iv.begin(), iv.end())));
  }));
}

//===----------------------------------------------------------------------===//
// NonZero, Compress, Unique: kernels of data-dependent output shapes (DynamicKernel)
//===----------------------------------------------------------------------===//
// Each writes its outputs in the layout of their bounds, then stores the dynamic extent in the
// extent slot and zeroes the rest of the bound (lowering::endDynamicOutput, Lowering.h);
// docs/lowering.md, "Data-dependent output shapes", has the algorithms and their costs.

using loop::IfThenElseNode;
using loop::SeqNode;
using loop::Stmt;
using loop::StoreNode;
using lowering::forRange;
using lowering::letIn;
using lowering::LocalScalar;

/// Compress's and Unique's view of their input along the axis: [outer, n, inner]; without an
/// "axis" attribute the input flattened, [1, numel, 1] (axis -1).
struct AxisView {
  int64_t axis = -1, outer = 1, n = 1, inner = 1;
};

AxisView axisView(const AttrReader &node, const std::vector<int64_t> &shape) {
  AxisView v;
  if (!node.hasAttr("axis")) {
    v.n = product(shape);
    return v;
  }
  node.check(!shape.empty(), "input must have rank >= 1 when axis is given");
  v.axis = normalizeAxis(node, node.attrInt("axis"), int64_t(shape.size()));
  v.n = shape[v.axis];
  for (int64_t d = 0; d < v.axis; ++d)
    v.outer *= shape[d];
  for (size_t d = v.axis + 1; d < shape.size(); ++d)
    v.inner *= shape[d];
  return v;
}

/// The bound of an output that keeps some slices of the input along the view's axis: the input's
/// shape (flattened: [numel]) with the axis dynamic.
DynamicOutputBound slicesBound(const std::vector<int64_t> &shape, const AxisView &v) {
  if (v.axis < 0)
    return {{v.n}, 0};
  return {shape, v.axis};
}

/// An Error naming the node unless generated code handles the dtype of input i (checked by
/// the bounds, before the kernel's buffers are made).
void checkDynamicDType(const AttrReader &ctx, size_t i, const char *what) {
  const Value *v = lowering::hasNodeInput(ctx, i) ? ctx.node().input(i) : nullptr;
  ctx.check(v && v->type.isTensor(), what, " is missing or not a tensor");
  DType dt = v->type.dtype;
  ctx.check(lowering::isLowerableDType(dt), what, " has dtype ", dtypeName(dt),
            "; the compiled kernel handles f16, bf16, f32, f64, the integer types and bool");
}

std::vector<DynamicOutputBound> nonZeroBounds(const AttrReader &node) {
  checkDynamicDType(node, 0, "input");
  std::vector<int64_t> s = lowering::nodeInputShape(node, 0);
  return {{{std::max<int64_t>(int64_t(s.size()), 1), product(s)}, 1}};
}

/// NonZero: one scan writes the coordinates of the k-th non-zero element (NaN counts) at
/// out[d * numel + k] for each dim d (the bound [rank, numel]); then the count is the extent.
Stmt nonZeroBody(const DynamicKernelContext &ctx) {
  std::vector<int64_t> shape = ctx.inputShape(0);
  if (shape.empty())
    shape = {1}; // a scalar is treated as a 1-D tensor of one element (numpy, the reference)
  const int64_t n = product(shape), rank = int64_t(shape.size());
  const std::vector<int64_t> strides = stridesOf(shape);
  const loop::Buffer &x = ctx.input(0), &out = ctx.output(0);
  const DType dt = ctx.inputDType(0);
  auto nonZeroAt = [&](Expr i) { return x.load({i}) != loop::makeZero(loop::Type(dt)); };
  LocalScalar k("k", DType::i64);
  Stmt fill = forRange("i", 0, n, [&](Expr i) {
    std::vector<Stmt> writes;
    for (int64_t d = 0; d < rank; ++d)
      writes.push_back(StoreNode::make(out, (i / strides[d]) % shape[d], {d * n + k.get()}));
    writes.push_back(k.increment());
    return IfThenElseNode::make(nonZeroAt(i), SeqNode::make(writes));
  });
  return k.alloc(SeqNode::make({k.set(0), fill, lowering::endDynamicOutput(ctx, 0, k.get())}));
}

std::vector<DynamicOutputBound> compressBounds(const AttrReader &node) {
  checkDynamicDType(node, 0, "input");
  checkDynamicDType(node, 1, "condition");
  std::vector<int64_t> s = lowering::nodeInputShape(node, 0);
  return {slicesBound(s, axisView(node, s))};
}

/// Compress: collects the indices i < min(len(condition), n) whose condition is true, copies
/// the kept slices in the bound's layout, out[o, k, j] = x[o, keep[k], j] (k < K, the count),
/// then K is the extent.
Stmt compressBody(const DynamicKernelContext &ctx) {
  ctx.check(ctx.inputDType(1) == DType::boolean, "condition must be bool, got ",
            dtypeName(ctx.inputDType(1)));
  std::vector<int64_t> cs = ctx.inputShape(1);
  ctx.check(cs.size() == 1, "condition must be 1-D, got ", shapeToString(cs));
  const AxisView v = axisView(ctx, ctx.inputShape(0));
  const int64_t m = std::min(cs[0], v.n); // a longer condition's extra entries select nothing
  const loop::Buffer &x = ctx.input(0), &cond = ctx.input(1), &out = ctx.output(0);
  loop::Buffer keep = lowering::localBuffer("keep", DType::i64, std::max<int64_t>(m, 1));
  LocalScalar kept("kept", DType::i64);
  Stmt collect = forRange("i", 0, m, [&](Expr i) {
    return IfThenElseNode::make(
        cond.load({i}), SeqNode::make({StoreNode::make(keep, i, {kept.get()}), kept.increment()}));
  });
  Stmt copy = letIn("K", kept.get(), [&](Expr K) {
    return forRange("o", 0, v.outer, [&](Expr o) {
      return forRange("k", 0, K, [&](Expr k) {
        return forRange("j", 0, v.inner, [&](Expr j) {
          Expr src = (o * v.n + keep.load({k})) * v.inner + j;
          return StoreNode::make(out, x.load({src}), {(o * v.n + k) * v.inner + j});
        });
      });
    });
  });
  return lowering::allocateAll(
      {keep, kept.buf},
      SeqNode::make({kept.set(0), collect, copy, lowering::endDynamicOutput(ctx, 0, kept.get())}));
}

std::vector<DynamicOutputBound> uniqueBounds(const AttrReader &node) {
  checkDynamicDType(node, 0, "input");
  std::vector<int64_t> s = lowering::nodeInputShape(node, 0);
  const AxisView v = axisView(node, s);
  std::vector<DynamicOutputBound> b = {slicesBound(s, v), {{v.n}, 0}, {{v.n}, -1}, {{v.n}, 0}};
  b.resize(node.node().numOutputs());
  return b;
}

/// -1, 0 or 1 (i64) as va orders before, equal to or after vb (lowering::totalLess: NaN after
/// every number and equal to every NaN).
Expr cmpOf(Expr va, Expr vb) {
  return loop::select(lowering::totalLess(va, vb), Expr(int64_t(-1)),
                      loop::select(lowering::totalLess(vb, va), Expr(int64_t(1)),
                                   Expr(int64_t(0))));
}

/// cmp = -1, 0 or 1 as slice a of x (along the view's axis) orders before, equal to or after
/// slice b: lexicographic over the slice's elements in row-major order by cmpOf, as the
/// reference kernel compares (empty slices are equal).
Stmt compareSlices(const loop::Buffer &x, const AxisView &v, const LocalScalar &cmp, Expr a,
                   Expr b) {
  Stmt scan = forRange("e", 0, v.outer * v.inner, [&](Expr e) {
    Expr o = e / v.inner, j = e % v.inner;
    Expr va = x.load({(o * v.n + a) * v.inner + j}), vb = x.load({(o * v.n + b) * v.inner + j});
    return IfThenElseNode::make(cmp.get() == int64_t(0), cmp.set(cmpOf(va, vb)));
  });
  return SeqNode::make({cmp.set(0), scan});
}

/// Unique: sorts the slice indices 0..n-1 stably by their slices (merge sort, O(n log n)
/// comparisons), groups equal neighbours (group g: its first index in sorted order, which is its
/// first occurrence, and its count; groupOf[i]), ranks the groups (sorted: in sorted order;
/// else by first occurrence, one scan of i = 0..n-1), then writes Y's slices (in the bound's
/// layout), indices, inverse_indices and counts, and ends Y, indices and counts at the number
/// of groups u.
Stmt uniqueBody(const DynamicKernelContext &ctx) {
  const AxisView v = axisView(ctx, ctx.inputShape(0));
  const bool sorted = ctx.attrInt("sorted", 1) != 0;
  const int64_t n = v.n, cap = std::max<int64_t>(n, 1);
  const loop::Buffer &x = ctx.input(0);
  auto local = [&](const char *name) { return lowering::localBuffer(name, DType::i64, cap); };
  loop::Buffer order = local("order"), scratch = local("scratch"), groupOf = local("group_of"),
               groupFirst = local("group_first"), groupCount = local("group_count");
  loop::Buffer rank = sorted ? loop::Buffer() : local("rank");
  loop::Buffer first = sorted ? groupFirst : local("first");
  loop::Buffer count = sorted ? groupCount : local("count");
  LocalScalar cmp("cmp", DType::i64), u("u", DType::i64), next("next", DType::i64);
  // One-element slices (flattened, or an axis with nothing beside it) sort with their values
  // carried along as a column (sequential reads); others by index, comparing the slices.
  const bool scalarSlices = v.outer * v.inner == 1;
  const DType dt = ctx.inputDType(0);
  loop::Buffer keys = scalarSlices ? lowering::localBuffer("keys", dt, cap) : loop::Buffer();
  loop::Buffer keysScratch =
      scalarSlices ? lowering::localBuffer("keys_scratch", dt, cap) : loop::Buffer();
  std::vector<Stmt> body;
  body.push_back(forRange("i", 0, n, [&](Expr i) {
    Stmt init = StoreNode::make(order, i, {i});
    return scalarSlices ? SeqNode::make({init, StoreNode::make(keys, x.load({i}), {i})}) : init;
  }));
  if (scalarSlices)
    body.push_back(lowering::stableMergeSort(
        {{keys, keysScratch}, {order, scratch}}, Expr(n), n,
        [&](const std::vector<Expr> &a, const std::vector<Expr> &b) {
          return lowering::PrefixedCond{Stmt(), lowering::totalLess(a[0], b[0])};
        },
        "sort"));
  else
    body.push_back(lowering::stableMergeSort(
        {{order, scratch}}, Expr(n), n,
        [&](const std::vector<Expr> &a, const std::vector<Expr> &b) {
          return lowering::PrefixedCond{compareSlices(x, v, cmp, a[0], b[0]),
                                        cmp.get() < int64_t(0)};
        },
        "sort"));
  // Groups of equal neighbours in sorted order.
  body.push_back(u.set(0));
  body.push_back(forRange("k", 0, n, [&](Expr k) {
    return letIn("it", order.load({k}), [&](Expr it) {
      Stmt newGroup = SeqNode::make({StoreNode::make(groupFirst, it, {u.get()}),
                                     StoreNode::make(groupCount, Expr(int64_t(0)), {u.get()}),
                                     u.increment()});
      Expr before = loop::max(k - 1, Expr(int64_t(0)));
      Stmt compare = scalarSlices ? cmp.set(cmpOf(keys.load({before}), keys.load({k})))
                                  : compareSlices(x, v, cmp, order.load({before}), it);
      return SeqNode::make(
          {compare,
           IfThenElseNode::make(k == int64_t(0) || cmp.get() != int64_t(0), newGroup),
           StoreNode::make(groupOf, u.get() - 1, {it}),
           StoreNode::make(groupCount, groupCount.load({u.get() - 1}) + 1, {u.get() - 1})});
    });
  }));
  // Groups ranked by first occurrence (sorted=0): the group of i gets the next rank where i is
  // its first index.
  auto rankOf = [&](Expr g) { return sorted ? g : rank.load({g}); };
  if (!sorted) {
    body.push_back(next.set(0));
    body.push_back(forRange("i", 0, n, [&](Expr i) {
      return letIn("g", groupOf.load({i}), [&](Expr g) {
        return IfThenElseNode::make(groupFirst.load({g}) == i,
                                    SeqNode::make({StoreNode::make(rank, next.get(), {g}),
                                                   next.increment()}));
      });
    }));
    body.push_back(forRange("g", 0, u.get(), [&](Expr g) {
      return letIn("r", rank.load({g}), [&](Expr r) {
        return SeqNode::make({StoreNode::make(first, groupFirst.load({g}), {r}),
                              StoreNode::make(count, groupCount.load({g}), {r})});
      });
    }));
  }
  body.push_back(letIn("U", u.get(), [&](Expr U) {
    std::vector<Stmt> outs;
    const loop::Buffer &y = ctx.output(0);
    outs.push_back(forRange("o", 0, v.outer, [&](Expr o) {
      return forRange("r", 0, U, [&](Expr r) {
        return forRange("j", 0, v.inner, [&](Expr j) {
          Expr src = (o * v.n + first.load({r})) * v.inner + j;
          return StoreNode::make(y, x.load({src}), {(o * v.n + r) * v.inner + j});
        });
      });
    }));
    outs.push_back(lowering::endDynamicOutput(ctx, 0, U));
    if (ctx.hasOutput(1)) {
      outs.push_back(forRange("r", 0, U, [&](Expr r) {
        return StoreNode::make(ctx.output(1), first.load({r}), {r});
      }));
      outs.push_back(lowering::endDynamicOutput(ctx, 1, U));
    }
    if (ctx.hasOutput(2))
      outs.push_back(forRange("i", 0, n, [&](Expr i) {
        return StoreNode::make(ctx.output(2), rankOf(groupOf.load({i})), {i});
      }));
    if (ctx.hasOutput(3)) {
      outs.push_back(forRange("r", 0, U, [&](Expr r) {
        return StoreNode::make(ctx.output(3), count.load({r}), {r});
      }));
      outs.push_back(lowering::endDynamicOutput(ctx, 3, U));
    }
    return SeqNode::make(outs);
  }));
  std::vector<loop::Buffer> bufs = {order, scratch, groupOf, groupFirst, groupCount,
                                    cmp.buf, u.buf, next.buf};
  if (scalarSlices)
    bufs.insert(bufs.end(), {keys, keysScratch});
  if (!sorted)
    for (const loop::Buffer &b : {rank, first, count})
      bufs.push_back(b);
  return lowering::allocateAll(bufs, SeqNode::make(body));
}

/// A DynamicKernel from its two functions.
std::shared_ptr<const DynamicKernel>
dynamicKernel(std::vector<DynamicOutputBound> (*bounds)(const AttrReader &),
              Stmt (*body)(const DynamicKernelContext &)) {
  auto k = std::make_shared<DynamicKernel>();
  k->bounds = bounds;
  k->body = body;
  return k;
}

void attachIndexingLowerings(OpRegistry &r) {
  r.setDynamicKernel("NonZero", dynamicKernel(nonZeroBounds, nonZeroBody));
  r.setDynamicKernel("Compress", dynamicKernel(compressBounds, compressBody));
  r.setDynamicKernel("Unique", dynamicKernel(uniqueBounds, uniqueBody));
  r.setLower("Gather", lowerGather);
  r.setLower("GatherElements", lowerGatherElements);
  r.setLower("GatherND", lowerGatherND);
  r.setLower("Trilu", lowerTrilu);
  r.setLower("EyeLike", lowerEyeLike);
  r.setLower("OneHot", lowerOneHot);
  r.setLower("ReverseSequence", lowerReverseSequence);
  r.setLower("ScatterElements", lowerScatterElements);
  r.setLower("Scatter", lowerScatterElements);
  r.setLower("ScatterND", lowerScatterND);
}

} // namespace
// --- end of the Indexing lowerings

void registerIndexingOps(OpRegistry &r) {
  const char *all = "all (incl. string, bool)";
  r.add(op("Gather", 1, 17, 2, 2, 1, 1, all, "", inferGather, kernelGather, OpPattern::Injective));
  r.add(op("GatherElements", 11, 17, 2, 2, 1, 1, all, "", inferGatherElements,
           kernelGatherElements, OpPattern::Injective));
  r.add(op("GatherND", 11, 17, 2, 2, 1, 1, all, "", inferGatherND, kernelGatherND,
           OpPattern::Injective));
  r.add(op("Scatter", 9, 10, 3, 3, 1, 1, all, "deprecated alias of ScatterElements",
           inferSameAs(0), kernelScatterElements));
  r.add(op("ScatterElements", 11, 17, 3, 3, 1, 1, all, "reduction none/add/mul (opset 16)",
           inferSameAs(0), kernelScatterElements));
  r.add(op("ScatterND", 11, 17, 3, 3, 1, 1, all, "reduction none/add/mul (opset 16)",
           inferSameAs(0), kernelScatterND));
  r.add(op("OneHot", 9, 17, 3, 3, 1, 1, "numeric indices/depth; any values", "", inferOneHot,
           kernelOneHot, OpPattern::Injective));
  r.add(op("Compress", 9, 17, 2, 2, 1, 1, all, "", inferCompress, kernelCompress));
  r.add(op("NonZero", 9, 17, 1, 1, 1, 1, all, "", inferNonZero, kernelNonZero));
  r.add(op("Unique", 11, 17, 1, 1, 1, 4, all, "", inferUnique, kernelUnique));
  r.add(op("Trilu", 14, 17, 1, 2, 1, 1, all, "", inferSameAs(0), kernelTrilu,
           OpPattern::Injective));
  r.add(op("EyeLike", 9, 17, 1, 1, 1, 1, "numeric, bool", "", inferEyeLike, kernelEyeLike,
           OpPattern::Injective));
  r.add(op("ReverseSequence", 10, 17, 2, 2, 1, 1, all, "", inferSameAs(0), kernelReverseSequence,
           OpPattern::Injective));
  attachIndexingLowerings(r);
}

} // namespace tessel
