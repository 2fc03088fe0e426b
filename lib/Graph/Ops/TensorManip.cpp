//===- TensorManip.cpp - TensorManip ops ----------------------------------===//
//
// Ops that create tensors or move data without looking at it: Constant, Identity, Reshape,
// Shape, Size, Transpose, Concat, Unsqueeze, Squeeze, Flatten, Split, Slice, Expand, Tile,
// ConstantOfShape, Range, Pad, DepthToSpace, SpaceToDepth.
//
// Data movement dispatches on the element *size* (1/2/4/8 bytes, or std::string), so every
// dtype works with one instantiation per size; contiguous runs are copied with memcpy.
// Shape inference reads constant shape-like inputs (Reshape's shape, Slice's starts, ...) so
// the shape computations exporters emit resolve to static shapes.
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"
#include "tessel/Graph/Lowering.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <type_traits>

namespace tessel {

namespace {

//===----------------------------------------------------------------------===//
// Local helpers
//===----------------------------------------------------------------------===//

/// dst (contiguous, shape `shape`) [i] = src[base + sum idx_d * strides_d].
template <class T>
void stridedCopy(const T *src, T *dst, const std::vector<int64_t> &shapeIn,
                 const std::vector<int64_t> &stridesIn, int64_t base) {
  // Drop size-1 dims and coalesce dims that are contiguous with each other.
  std::vector<int64_t> shape, strides;
  for (size_t i = 0; i < shapeIn.size(); ++i) {
    if (shapeIn[i] == 0)
      return;
    if (shapeIn[i] == 1)
      continue;
    if (!shape.empty() && strides.back() == stridesIn[i] * shapeIn[i]) {
      shape.back() *= shapeIn[i];
      strides.back() = stridesIn[i];
      continue;
    }
    shape.push_back(shapeIn[i]);
    strides.push_back(stridesIn[i]);
  }
  if (shape.empty()) {
    dst[0] = src[base];
    return;
  }
  const int64_t rank = int64_t(shape.size());
  const int64_t inner = shape.back(), is = strides.back();
  const int64_t total = product(shape);
  std::vector<int64_t> idx(rank, 0);
  int64_t off = base;
  for (int64_t o = 0; o < total; o += inner) {
    if (is == 1) {
      copyRun(dst + o, src + off, inner);
    } else {
      const T *s = src + off;
      T *d = dst + o;
      for (int64_t j = 0; j < inner; ++j)
        d[j] = s[j * is];
    }
    for (int64_t d = rank - 2; d >= 0; --d) {
      off += strides[d];
      if (++idx[d] < shape[d])
        break;
      off -= strides[d] * shape[d];
      idx[d] = 0;
    }
  }
}

/// A new tensor of dtype/shape filled from `src` through a strided view.
Tensor stridedView(const AttrReader &ctx, const Tensor &src, const std::vector<int64_t> &shape,
                   const std::vector<int64_t> &strides, int64_t base) {
  Tensor out(src.dtype(), shape);
  if (out.numel() == 0)
    return out;
  dispatchBytes(ctx, src.dtype(), [&](auto tag) {
    using T = decltype(tag);
    stridedCopy<T>(ptr<T>(src), ptr<T>(out), shape, strides, base);
  });
  return out;
}

Tensor constantValue(const AttrReader &ctx);

/// Input i's value when known before running: an initializer / folded constant, or the output
/// of a Constant node (not folded yet). Undefined tensor otherwise.
Tensor constInput(const InferContext &ctx, size_t i) {
  if (!ctx.hasInput(i))
    return Tensor();
  if (const Tensor *t = ctx.inputConstant(i))
    return *t;
  const Value *v = ctx.node().input(i);
  while (v->outer)
    v = v->outer;
  const Node *p = v->producer();
  if (p && p->opType == "Constant" && p->domain.empty()) {
    try {
      return constantValue(AttrReader(*p));
    } catch (const Error &) {
      return Tensor(); // the Constant node reports its own error
    }
  }
  return Tensor();
}

/// Constant input i as int64 values, or nullopt.
std::optional<std::vector<int64_t>> constInts(const InferContext &ctx, size_t i) {
  Tensor t = constInput(ctx, i);
  if (!t.defined() || !isInteger(t.dtype()))
    return std::nullopt;
  return t.toInt64Vector();
}

/// Length of a 1-D input whose shape is known statically, or -1.
int64_t staticLength1D(const InferContext &ctx, size_t i) {
  if (!ctx.hasInput(i))
    return -1;
  const Shape &s = tensorShape(ctx, i);
  if (s.rankKnown && s.rank() == 1 && s.dims[0].isStatic())
    return s.dims[0].value;
  if (s.rankKnown && s.rank() == 0)
    return 1;
  return -1;
}

/// Product of dims: static when all static, the one non-static dim when the rest multiply to 1.
/// An Error naming the node when the static product overflows int64.
Dim productDims(const AttrReader &ctx, const std::vector<Dim> &dims, size_t from, size_t to) {
  int64_t p = 1;
  const Dim *other = nullptr;
  int nonStatic = 0;
  for (size_t i = from; i < to; ++i) {
    if (dims[i].isStatic()) {
      p = checkedMul(ctx, p, dims[i].value, "product of dims");
    } else {
      ++nonStatic;
      other = &dims[i];
    }
  }
  if (nonStatic == 0)
    return Dim(p);
  if (p == 0)
    return Dim(0);
  if (nonStatic == 1 && p == 1)
    return *other;
  return Dim();
}

std::vector<int64_t> shapeInput(const KernelContext &ctx, size_t i, const char *what) {
  const Tensor &t = ctx.input(i);
  ctx.check(isInteger(t.dtype()), what, " should be an integer tensor, got ", t.typeString());
  ctx.check(t.rank() <= 1, what, " should be 1-D, got shape ", t.shapeString());
  return t.toInt64Vector();
}

//===----------------------------------------------------------------------===//
// Constant
//===----------------------------------------------------------------------===//

Tensor constantValue(const AttrReader &ctx) {
  static const char *names[] = {"value",      "value_float", "value_floats", "value_int",
                                "value_ints", "value_string", "value_strings", "sparse_value"};
  int count = 0;
  for (const char *n : names)
    count += ctx.hasAttr(n);
  ctx.check(count == 1, "expected exactly one of the attributes value, value_float, value_floats, "
                        "value_int, value_ints, value_string, value_strings; got ",
            count);
  if (ctx.hasAttr("sparse_value"))
    ctx.fail("the sparse_value attribute (sparse tensors) is not supported");
  if (ctx.hasAttr("value"))
    return ctx.attrTensor("value");
  if (ctx.hasAttr("value_float"))
    return Tensor::scalar<float>(ctx.attrFloat("value_float"));
  if (ctx.hasAttr("value_floats")) {
    auto v = ctx.attrFloats("value_floats");
    return Tensor::fromVector<float>({int64_t(v.size())}, v);
  }
  if (ctx.hasAttr("value_int"))
    return Tensor::scalar<int64_t>(ctx.attrInt("value_int"));
  if (ctx.hasAttr("value_ints")) {
    auto v = ctx.attrInts("value_ints");
    return Tensor::fromVector<int64_t>({int64_t(v.size())}, v);
  }
  if (ctx.hasAttr("value_string"))
    return Tensor::scalar<std::string>(ctx.attrString("value_string"));
  auto v = ctx.attrStrings("value_strings");
  return Tensor::fromVector<std::string>({int64_t(v.size())}, v);
}

void inferConstant(InferContext &ctx) {
  Tensor t = constantValue(ctx);
  ctx.setOutputType(0, Type::tensor(t.dtype(), Shape::of(t.shape())));
}

void kernelConstant(KernelContext &ctx) { ctx.setOutput(0, constantValue(ctx)); }

//===----------------------------------------------------------------------===//
// Identity, Shape, Size
//===----------------------------------------------------------------------===//

void kernelIdentity(KernelContext &ctx) { ctx.setOutputObject(0, ctx.inputObject(0)); }

std::pair<int64_t, int64_t> shapeRange(const AttrReader &ctx, int64_t rank) {
  if (ctx.opset() < 15)
    return {0, rank};
  int64_t start = ctx.attrInt("start", 0);
  int64_t end = ctx.attrInt("end", rank);
  auto clampIdx = [&](int64_t v) {
    if (v < 0)
      v += rank;
    return std::clamp<int64_t>(v, 0, rank);
  };
  start = clampIdx(start);
  end = clampIdx(end);
  return {start, std::max(end, start)};
}

void inferShape(InferContext &ctx) {
  const Shape &s = tensorShape(ctx, 0);
  if (!s.rankKnown) {
    ctx.setOutputType(0, Type::tensor(DType::i64, Shape({Dim()})));
    return;
  }
  auto [start, end] = shapeRange(ctx, s.rank());
  ctx.setOutputType(0, Type::tensor(DType::i64, Shape({Dim(end - start)})));
}

void kernelShape(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  auto [start, end] = shapeRange(ctx, x.rank());
  std::vector<int64_t> v(x.shape().begin() + start, x.shape().begin() + end);
  ctx.setOutput(0, Tensor::fromVector<int64_t>({int64_t(v.size())}, v));
}

void inferSize(InferContext &ctx) { ctx.setOutputType(0, Type::tensor(DType::i64, Shape::of({}))); }

void kernelSize(KernelContext &ctx) {
  ctx.setOutput(0, Tensor::scalar<int64_t>(ctx.input(0).numel()));
}

//===----------------------------------------------------------------------===//
// Reshape
//===----------------------------------------------------------------------===//

bool reshapeAllowZero(const AttrReader &ctx) {
  return ctx.opset() >= 14 && ctx.attrInt("allowzero", 0) != 0;
}

void inferReshape(InferContext &ctx) {
  DType dt = inDType(ctx, 0);
  std::optional<std::vector<int64_t>> target;
  if (ctx.opset() < 5)
    target = ctx.attrInts("shape");
  else
    target = constInts(ctx, 1);
  if (!target) {
    int64_t len = staticLength1D(ctx, 1);
    ctx.setOutputType(0, Type::tensor(dt, unknownDimsOrRank(len)));
    return;
  }
  const Shape &in = tensorShape(ctx, 0);
  bool allowZero = reshapeAllowZero(ctx);
  std::vector<Dim> out(target->size());
  int64_t minusOne = -1;
  for (size_t i = 0; i < target->size(); ++i) {
    int64_t s = (*target)[i];
    if (s == 0 && !allowZero) {
      if (in.rankKnown) {
        ctx.check(int64_t(i) < in.rank(), "shape[", i, "] is 0 (copy the input dim) but the input has rank ",
                  in.rank());
        out[i] = in.dims[i];
      }
    } else if (s == -1) {
      ctx.check(minusOne < 0, "shape has more than one -1");
      minusOne = int64_t(i);
    } else {
      ctx.check(s >= 0, "shape[", i, "] = ", s, " is invalid (expected >= -1)");
      out[i] = Dim(s);
    }
  }
  if (minusOne >= 0 && in.rankKnown) {
    // Cancel dims that appear on both sides (same symbol or same value), then divide statics.
    std::vector<Dim> rem = in.dims;
    int64_t divisor = 1;
    bool ok = true;
    for (size_t i = 0; i < out.size() && ok; ++i) {
      if (int64_t(i) == minusOne)
        continue;
      const Dim &d = out[i];
      if (d.isUnknown()) {
        ok = false;
        break;
      }
      auto it = std::find(rem.begin(), rem.end(), d);
      if (d.isSymbolic()) {
        if (it == rem.end())
          ok = false;
        else
          rem.erase(it);
        continue;
      }
      if (it != rem.end() && d.value != 0) {
        rem.erase(it);
        continue;
      }
      divisor *= d.value;
    }
    if (ok) {
      int64_t num = 1;
      for (const Dim &d : rem) {
        if (!d.isStatic()) {
          ok = false;
          break;
        }
        num *= d.value;
      }
      if (ok && divisor != 0 && num % divisor == 0)
        out[minusOne] = Dim(num / divisor);
    }
  }
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

void kernelReshape(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  std::vector<int64_t> target =
      ctx.opset() < 5 ? ctx.attrInts("shape") : shapeInput(ctx, 1, "the shape input");
  bool allowZero = reshapeAllowZero(ctx);
  std::vector<int64_t> out(target.size());
  int64_t minusOne = -1, known = 1;
  bool hasZero = false;
  for (size_t i = 0; i < target.size(); ++i) {
    int64_t s = target[i];
    if (s == 0 && !allowZero) {
      ctx.check(int64_t(i) < x.rank(), "shape[", i,
                "] is 0 (copy the input dim) but the input has rank ", x.rank());
      out[i] = x.dim(i);
    } else if (s == -1) {
      ctx.check(minusOne < 0, "shape ", shapeToString(target), " has more than one -1");
      minusOne = int64_t(i);
      continue;
    } else {
      ctx.check(s >= 0, "shape[", i, "] = ", s, " is invalid (expected >= -1)");
      out[i] = s;
      hasZero |= s == 0;
    }
    ctx.check(!__builtin_mul_overflow(known, out[i], &known), "shape ", shapeToString(target),
              " is too large");
  }
  ctx.check(!(allowZero && hasZero && minusOne >= 0),
            "shape has both 0 and -1 with allowzero=1");
  if (minusOne >= 0) {
    ctx.check(known != 0, "cannot infer the -1 in shape ", shapeToString(target),
              " when another dim is 0");
    ctx.check(x.numel() % known == 0, "cannot reshape ", x.shapeString(), " to ",
              shapeToString(target));
    out[minusOne] = x.numel() / known;
    known = x.numel();
  }
  ctx.check(known == x.numel(), "cannot reshape a tensor of shape ", x.shapeString(), " (",
            x.numel(), " elements) to ", shapeToString(out));
  ctx.setOutput(0, x.reshaped(out));
}

//===----------------------------------------------------------------------===//
// Transpose
//===----------------------------------------------------------------------===//

std::vector<int64_t> transposePerm(const AttrReader &ctx, int64_t rank) {
  std::vector<int64_t> perm;
  if (ctx.hasAttr("perm")) {
    perm = ctx.attrInts("perm");
  } else {
    for (int64_t i = rank - 1; i >= 0; --i)
      perm.push_back(i);
  }
  ctx.check(int64_t(perm.size()) == rank, "perm has ", perm.size(),
            " entries but the input has rank ", rank);
  std::vector<bool> seen(rank, false);
  for (int64_t &p : perm) {
    ctx.check(p >= -rank && p < rank, "perm entry ", p, " out of range for rank ", rank);
    if (p < 0)
      p += rank;
    ctx.check(!seen[p], "perm ", shapeToString(ctx.attrInts("perm", {})), " is not a permutation");
    seen[p] = true;
  }
  return perm;
}

void inferTranspose(InferContext &ctx) {
  const Shape &in = tensorShape(ctx, 0);
  DType dt = inDType(ctx, 0);
  if (!in.rankKnown) {
    if (ctx.hasAttr("perm"))
      ctx.setOutputType(0, Type::tensor(dt, Shape::unknownDims(ctx.attrInts("perm").size())));
    else
      ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  auto perm = transposePerm(ctx, in.rank());
  std::vector<Dim> out;
  for (int64_t p : perm)
    out.push_back(in.dims[p]);
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

void kernelTranspose(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  auto perm = transposePerm(ctx, x.rank());
  auto st = stridesOf(x.shape());
  std::vector<int64_t> shape, strides;
  for (int64_t p : perm) {
    shape.push_back(x.dim(p));
    strides.push_back(st[p]);
  }
  ctx.setOutput(0, stridedView(ctx, x, shape, strides, 0));
}

//===----------------------------------------------------------------------===//
// Concat
//===----------------------------------------------------------------------===//

int64_t concatAxisAttr(const AttrReader &ctx) {
  if (ctx.opset() < 4)
    return ctx.attrInt("axis", 1);
  return ctx.attrInt("axis");
}

void inferConcat(InferContext &ctx) {
  DType dt = DType::undefined;
  int64_t rank = -1;
  for (size_t i = 0; i < ctx.numInputs(); ++i) {
    if (!ctx.hasInput(i))
      continue;
    if (dt == DType::undefined)
      dt = inDType(ctx, i);
    const Shape &s = tensorShape(ctx, i);
    if (s.rankKnown) {
      ctx.check(rank < 0 || rank == s.rank(), "inputs have different ranks (", rank, " and ",
                s.rank(), ")");
      rank = s.rank();
    }
  }
  if (rank < 0) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  int64_t axis = normalizeAxis(ctx, concatAxisAttr(ctx), rank);
  std::vector<Dim> out(rank);
  int64_t sum = 0;
  bool sumKnown = true;
  std::vector<Dim> axisDims;
  for (size_t i = 0; i < ctx.numInputs(); ++i) {
    if (!ctx.hasInput(i))
      continue;
    const Shape &s = tensorShape(ctx, i);
    if (!s.rankKnown) {
      sumKnown = false;
      axisDims.push_back(Dim());
      continue;
    }
    for (int64_t d = 0; d < rank; ++d) {
      if (d == axis)
        continue;
      const Dim &x = s.dims[d];
      if (x.isStatic()) {
        ctx.check(!out[d].isStatic() || out[d].value == x.value, "inputs differ in dim ", d, " (",
                  out[d].value, " vs ", x.value, ")");
        out[d] = x;
      } else if (x.isSymbolic() && out[d].isUnknown()) {
        out[d] = x;
      }
    }
    axisDims.push_back(s.dims[axis]);
    if (s.dims[axis].isStatic())
      sum += s.dims[axis].value;
    else
      sumKnown = false;
  }
  if (sumKnown) {
    out[axis] = Dim(sum);
  } else {
    // Only zero-size static parts besides one symbolic part: the symbol flows through.
    std::vector<Dim> nonZero;
    for (auto &d : axisDims)
      if (!(d.isStatic() && d.value == 0))
        nonZero.push_back(d);
    out[axis] = nonZero.size() == 1 ? nonZero[0] : Dim();
  }
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

void kernelConcat(KernelContext &ctx) {
  std::vector<const Tensor *> ins;
  for (size_t i = 0; i < ctx.numInputs(); ++i)
    if (ctx.hasInput(i))
      ins.push_back(&ctx.input(i));
  ctx.check(!ins.empty(), "needs at least one input");
  const Tensor &first = *ins[0];
  const int64_t rank = first.rank();
  ctx.check(rank > 0, "cannot concatenate scalars");
  int64_t axis = normalizeAxis(ctx, concatAxisAttr(ctx), rank);
  std::vector<int64_t> outShape = first.shape();
  outShape[axis] = 0;
  for (const Tensor *t : ins) {
    ctx.check(t->dtype() == first.dtype(), "inputs have different element types (",
              dtypeName(first.dtype()), " and ", dtypeName(t->dtype()), ")");
    ctx.check(t->rank() == rank, "inputs have different ranks: ", first.shapeString(), " and ",
              t->shapeString());
    for (int64_t d = 0; d < rank; ++d)
      ctx.check(d == axis || t->dim(d) == first.dim(d), "input shapes ", first.shapeString(),
                " and ", t->shapeString(), " differ outside the concat axis ", axis);
    outShape[axis] += t->dim(axis);
  }
  Tensor out(first.dtype(), outShape);
  if (out.numel() == 0) {
    ctx.setOutput(0, out);
    return;
  }
  const int64_t outer = product(outShape, 0, axis);
  const int64_t inner = product(outShape, axis + 1);
  const int64_t outRow = outShape[axis] * inner;
  dispatchBytes(ctx, first.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T *dst = ptr<T>(out);
    int64_t col = 0;
    for (const Tensor *t : ins) {
      const int64_t chunk = t->dim(axis) * inner;
      const T *src = ptr<T>(*t);
      for (int64_t o = 0; o < outer && chunk > 0; ++o)
        copyRun(dst + o * outRow + col, src + o * chunk, chunk);
      col += chunk;
    }
  });
  ctx.setOutput(0, out);
}

//===----------------------------------------------------------------------===//
// Unsqueeze, Squeeze, Flatten
//===----------------------------------------------------------------------===//

/// Axes from the attribute (before opset 13) or the constant/run-time input 1.
std::optional<std::vector<int64_t>> axesFor(const InferContext &ctx, int firstInputVersion) {
  if (ctx.opset() < firstInputVersion) {
    if (!ctx.hasAttr("axes"))
      return std::nullopt;
    return ctx.attrInts("axes");
  }
  return constInts(ctx, 1);
}

std::vector<int64_t> unsqueezeAxes(const AttrReader &ctx, std::vector<int64_t> axes,
                                   int64_t outRank) {
  std::vector<bool> seen(outRank, false);
  for (int64_t &a : axes) {
    a = normalizeAxis(ctx, a, outRank, "axes entry");
    ctx.check(!seen[a], "axes contains ", a, " twice");
    seen[a] = true;
  }
  return axes;
}

void inferUnsqueeze(InferContext &ctx) {
  DType dt = inDType(ctx, 0);
  const Shape &in = tensorShape(ctx, 0);
  int64_t nAxes = -1;
  std::optional<std::vector<int64_t>> axes;
  if (ctx.opset() < 13) {
    axes = ctx.attrInts("axes");
  } else {
    axes = constInts(ctx, 1);
    if (!axes)
      nAxes = staticLength1D(ctx, 1);
  }
  if (axes)
    nAxes = int64_t(axes->size());
  if (!in.rankKnown || nAxes < 0) {
    ctx.setOutputType(0, Type::tensor(dt, in.rankKnown && nAxes >= 0
                                              ? unknownDimsOrRank(in.rank() + nAxes)
                                              : Shape::unknownRank()));
    return;
  }
  int64_t outRank = in.rank() + nAxes;
  if (!axes) {
    ctx.setOutputType(0, Type::tensor(dt, unknownDimsOrRank(outRank)));
    return;
  }
  auto norm = unsqueezeAxes(ctx, *axes, outRank);
  std::vector<bool> isNew(outRank, false);
  for (int64_t a : norm)
    isNew[a] = true;
  std::vector<Dim> out;
  size_t j = 0;
  for (int64_t i = 0; i < outRank; ++i)
    out.push_back(isNew[i] ? Dim(1) : in.dims[j++]);
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

void kernelUnsqueeze(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  std::vector<int64_t> axes =
      ctx.opset() < 13 ? ctx.attrInts("axes") : shapeInput(ctx, 1, "the axes input");
  int64_t outRank = x.rank() + int64_t(axes.size());
  auto norm = unsqueezeAxes(ctx, axes, outRank);
  std::vector<bool> isNew(outRank, false);
  for (int64_t a : norm)
    isNew[a] = true;
  std::vector<int64_t> out;
  int64_t j = 0;
  for (int64_t i = 0; i < outRank; ++i)
    out.push_back(isNew[i] ? 1 : x.dim(j++));
  ctx.setOutput(0, x.reshaped(out));
}

void inferSqueeze(InferContext &ctx) {
  DType dt = inDType(ctx, 0);
  const Shape &in = tensorShape(ctx, 0);
  bool axesGiven = ctx.opset() < 13 ? ctx.hasAttr("axes") : ctx.hasInput(1);
  auto axes = axesFor(ctx, 13);
  if (!in.rankKnown) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  if (axesGiven && !axes) {
    int64_t n = staticLength1D(ctx, 1);
    ctx.setOutputType(0, Type::tensor(dt, n >= 0 && n <= in.rank() ? Shape::unknownDims(in.rank() - n)
                                                                  : Shape::unknownRank()));
    return;
  }
  std::vector<bool> drop(in.rank(), false);
  if (axes) {
    for (int64_t a : *axes) {
      a = normalizeAxis(ctx, a, in.rank(), "axes entry");
      const Dim &d = in.dims[a];
      ctx.check(!d.isStatic() || d.value == 1, "cannot squeeze dim ", a, " of size ", d.value);
      drop[a] = true;
    }
  } else {
    for (int64_t i = 0; i < in.rank(); ++i) {
      if (!in.dims[i].isStatic()) {
        ctx.setOutputType(0, Type::tensor(dt));
        return;
      }
      drop[i] = in.dims[i].value == 1;
    }
  }
  std::vector<Dim> out;
  for (int64_t i = 0; i < in.rank(); ++i)
    if (!drop[i])
      out.push_back(in.dims[i]);
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

void kernelSqueeze(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  std::vector<bool> drop(x.rank(), false);
  bool axesGiven = ctx.opset() < 13 ? ctx.hasAttr("axes") : ctx.hasInput(1);
  if (axesGiven) {
    std::vector<int64_t> axes =
        ctx.opset() < 13 ? ctx.attrInts("axes") : shapeInput(ctx, 1, "the axes input");
    for (int64_t a : axes) {
      a = normalizeAxis(ctx, a, x.rank(), "axes entry");
      ctx.check(x.dim(a) == 1, "cannot squeeze dim ", a, " of size ", x.dim(a), " (shape ",
                x.shapeString(), ")");
      drop[a] = true;
    }
  } else {
    for (int64_t i = 0; i < x.rank(); ++i)
      drop[i] = x.dim(i) == 1;
  }
  std::vector<int64_t> out;
  for (int64_t i = 0; i < x.rank(); ++i)
    if (!drop[i])
      out.push_back(x.dim(i));
  ctx.setOutput(0, x.reshaped(out));
}

int64_t flattenAxis(const AttrReader &ctx, int64_t rank) {
  int64_t axis = ctx.attrInt("axis", 1);
  ctx.check(axis >= -rank && axis <= rank, "axis ", axis, " out of range for rank ", rank,
            " (expected [", -rank, ", ", rank, "])");
  return axis < 0 ? axis + rank : axis;
}

void inferFlatten(InferContext &ctx) {
  DType dt = inDType(ctx, 0);
  const Shape &in = tensorShape(ctx, 0);
  if (!in.rankKnown) {
    ctx.setOutputType(0, Type::tensor(dt, Shape::unknownDims(2)));
    return;
  }
  int64_t axis = flattenAxis(ctx, in.rank());
  ctx.setOutputType(0, Type::tensor(dt, Shape({productDims(ctx, in.dims, 0, axis),
                                               productDims(ctx, in.dims, axis, in.rank())})));
}

void kernelFlatten(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  int64_t axis = flattenAxis(ctx, x.rank());
  ctx.setOutput(0, x.reshaped({product(x.shape(), 0, axis), product(x.shape(), axis)}));
}

//===----------------------------------------------------------------------===//
// Split
//===----------------------------------------------------------------------===//

/// The split sizes if given (attribute or input), else nullopt.
std::optional<std::vector<int64_t>> splitSizesInfer(const InferContext &ctx) {
  if (ctx.opset() >= 13 || (ctx.opset() < 2 && ctx.hasInput(1)))
    return constInts(ctx, 1);
  if (ctx.hasAttr("split"))
    return ctx.attrInts("split");
  return std::nullopt;
}

bool splitGiven(const AttrReader &ctx, bool hasInput1) {
  if (ctx.opset() >= 13)
    return hasInput1;
  return ctx.hasAttr("split") || (ctx.opset() < 2 && hasInput1);
}

void inferSplit(InferContext &ctx) {
  DType dt = inDType(ctx, 0);
  const Shape &in = tensorShape(ctx, 0);
  const size_t n = ctx.numOutputs();
  if (!in.rankKnown) {
    for (size_t i = 0; i < n; ++i)
      ctx.setOutputType(i, Type::tensor(dt));
    return;
  }
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", 0), in.rank());
  bool given = splitGiven(ctx, ctx.hasInput(1));
  auto sizes = given ? splitSizesInfer(ctx) : std::nullopt;
  if (sizes)
    ctx.check(sizes->size() == n, "split has ", sizes->size(), " entries but the node has ", n,
              " outputs");
  const Dim &d = in.dims[axis];
  for (size_t i = 0; i < n; ++i) {
    std::vector<Dim> out = in.dims;
    if (sizes)
      out[axis] = Dim((*sizes)[i]);
    else if (!given && d.isStatic() && d.value % int64_t(n) == 0)
      out[axis] = Dim(d.value / int64_t(n));
    else
      out[axis] = Dim();
    ctx.setOutputType(i, Type::tensor(dt, Shape(out)));
  }
}

void kernelSplit(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  ctx.check(x.rank() > 0, "cannot split a scalar");
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", 0), x.rank());
  const int64_t n = int64_t(ctx.numOutputs());
  const int64_t dim = x.dim(axis);
  std::vector<int64_t> sizes;
  if (splitGiven(ctx, ctx.hasInput(1))) {
    if (ctx.opset() >= 13 || (ctx.opset() < 2 && ctx.hasInput(1)))
      sizes = shapeInput(ctx, 1, "the split input");
    else
      sizes = ctx.attrInts("split");
    ctx.check(int64_t(sizes.size()) == n, "split has ", sizes.size(), " entries but the node has ",
              n, " outputs");
    int64_t sum = 0;
    for (int64_t s : sizes) {
      ctx.check(s >= 0, "split sizes must be >= 0, got ", shapeToString(sizes));
      sum += s;
      ctx.check(sum <= dim, "split sizes ", shapeToString(sizes), " exceed dim ", axis, " (",
                dim, ")");
    }
    ctx.check(sum == dim, "split sizes ", shapeToString(sizes), " do not sum to dim ", axis,
              " (", dim, ")");
  } else {
    ctx.check(dim % n == 0, "dim ", axis, " (", dim, ") cannot be split into ", n,
              " equal parts");
    sizes.assign(n, dim / n);
  }
  const int64_t outer = product(x.shape(), 0, axis);
  const int64_t inner = product(x.shape(), axis + 1);
  int64_t start = 0;
  for (int64_t i = 0; i < n; ++i) {
    std::vector<int64_t> shape = x.shape();
    shape[axis] = sizes[i];
    Tensor out(x.dtype(), shape);
    if (out.numel() > 0) {
      dispatchBytes(ctx, x.dtype(), [&](auto tag) {
        using T = decltype(tag);
        const T *src = ptr<T>(x);
        T *dst = ptr<T>(out);
        const int64_t chunk = sizes[i] * inner;
        for (int64_t o = 0; o < outer; ++o)
          copyRun(dst + o * chunk, src + (o * dim + start) * inner, chunk);
      });
    }
    start += sizes[i];
    if (ctx.hasOutput(i))
      ctx.setOutput(i, out);
  }
}

//===----------------------------------------------------------------------===//
// Slice
//===----------------------------------------------------------------------===//

struct SliceArgs {
  std::vector<int64_t> starts, ends, axes, steps;
};

/// Per-axis begin/count/step after clamping (the ONNX Slice rules).
struct SliceDim {
  int64_t start, count, step;
};

SliceDim sliceDim(int64_t dim, int64_t start, int64_t end, int64_t step) {
  if (dim == 0)
    return {0, 0, step};
  if (start < 0)
    start += dim;
  if (end < 0)
    end += dim;
  if (step > 0) {
    start = std::clamp<int64_t>(start, 0, dim);
    end = std::clamp<int64_t>(end, 0, dim);
    int64_t count = end > start ? (end - start + step - 1) / step : 0;
    return {start, count, step};
  }
  start = std::clamp<int64_t>(start, 0, dim - 1);
  end = std::clamp<int64_t>(end, -1, dim - 1);
  int64_t count = start > end ? (start - end + (-step) - 1) / (-step) : 0;
  return {start, count, step};
}

/// Validates and normalizes the args against the rank; returns axis -> index into args or -1.
std::vector<int64_t> sliceAxisMap(const AttrReader &ctx, SliceArgs &a, int64_t rank) {
  ctx.check(a.starts.size() == a.ends.size(), "starts has ", a.starts.size(),
            " entries but ends has ", a.ends.size());
  if (a.axes.empty() && !a.starts.empty())
    for (size_t i = 0; i < a.starts.size(); ++i)
      a.axes.push_back(int64_t(i));
  if (a.steps.empty())
    a.steps.assign(a.starts.size(), 1);
  ctx.check(a.axes.size() == a.starts.size(), "axes has ", a.axes.size(), " entries but starts has ",
            a.starts.size());
  ctx.check(a.steps.size() == a.starts.size(), "steps has ", a.steps.size(),
            " entries but starts has ", a.starts.size());
  std::vector<int64_t> map(rank, -1);
  for (size_t i = 0; i < a.axes.size(); ++i) {
    int64_t ax = normalizeAxis(ctx, a.axes[i], rank, "axes entry");
    ctx.check(map[ax] < 0, "axis ", ax, " appears twice in axes");
    ctx.check(a.steps[i] != 0, "steps must not be 0");
    ctx.check(a.steps[i] != std::numeric_limits<int64_t>::min(), "step out of range");
    map[ax] = int64_t(i);
  }
  return map;
}

void inferSlice(InferContext &ctx) {
  DType dt = inDType(ctx, 0);
  const Shape &in = tensorShape(ctx, 0);
  if (!in.rankKnown) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  SliceArgs a;
  bool known = true;
  if (ctx.opset() < 10) {
    a.starts = ctx.attrInts("starts");
    a.ends = ctx.attrInts("ends");
    a.axes = ctx.attrInts("axes", {});
  } else {
    auto s = constInts(ctx, 1), e = constInts(ctx, 2);
    auto ax = ctx.hasInput(3) ? constInts(ctx, 3) : std::optional<std::vector<int64_t>>(std::vector<int64_t>{});
    auto st = ctx.hasInput(4) ? constInts(ctx, 4) : std::optional<std::vector<int64_t>>(std::vector<int64_t>{});
    if (s && e && ax && st) {
      a.starts = *s;
      a.ends = *e;
      a.axes = *ax;
      a.steps = *st;
    } else {
      known = false;
      if (ax && ctx.hasInput(3)) {
        // Axes known: the other dims pass through.
        std::vector<Dim> out = in.dims;
        for (int64_t axv : *ax)
          out[normalizeAxis(ctx, axv, in.rank(), "axes entry")] = Dim();
        ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
        return;
      }
    }
  }
  if (!known) {
    ctx.setOutputType(0, Type::tensor(dt, Shape::unknownDims(in.rank())));
    return;
  }
  auto map = sliceAxisMap(ctx, a, in.rank());
  std::vector<Dim> out = in.dims;
  for (int64_t d = 0; d < in.rank(); ++d) {
    int64_t i = map[d];
    if (i < 0)
      continue;
    if (in.dims[d].isStatic()) {
      out[d] = Dim(sliceDim(in.dims[d].value, a.starts[i], a.ends[i], a.steps[i]).count);
    } else {
      bool whole = a.steps[i] == 1 && a.starts[i] == 0 &&
                   a.ends[i] >= std::numeric_limits<int32_t>::max();
      if (!whole)
        out[d] = Dim();
    }
  }
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

void kernelSlice(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  SliceArgs a;
  if (ctx.opset() < 10) {
    a.starts = ctx.attrInts("starts");
    a.ends = ctx.attrInts("ends");
    a.axes = ctx.attrInts("axes", {});
  } else {
    a.starts = shapeInput(ctx, 1, "starts");
    a.ends = shapeInput(ctx, 2, "ends");
    if (ctx.hasInput(3))
      a.axes = shapeInput(ctx, 3, "axes");
    if (ctx.hasInput(4))
      a.steps = shapeInput(ctx, 4, "steps");
  }
  auto map = sliceAxisMap(ctx, a, x.rank());
  auto st = stridesOf(x.shape());
  std::vector<int64_t> shape(x.rank()), strides(x.rank());
  int64_t base = 0;
  for (int64_t d = 0; d < x.rank(); ++d) {
    int64_t i = map[d];
    if (i < 0) {
      shape[d] = x.dim(d);
      strides[d] = st[d];
      continue;
    }
    SliceDim s = sliceDim(x.dim(d), a.starts[i], a.ends[i], a.steps[i]);
    shape[d] = s.count;
    strides[d] = st[d] * s.step;
    if (s.count > 0)
      base += s.start * st[d];
  }
  ctx.setOutput(0, stridedView(ctx, x, shape, strides, base));
}

//===----------------------------------------------------------------------===//
// Expand, Tile
//===----------------------------------------------------------------------===//

void inferExpand(InferContext &ctx) {
  DType dt = inDType(ctx, 0);
  const Shape &in = tensorShape(ctx, 0);
  auto shape = constInts(ctx, 1);
  if (!shape) {
    int64_t len = staticLength1D(ctx, 1);
    if (len >= 0 && in.rankKnown)
      ctx.setOutputType(0, Type::tensor(dt, unknownDimsOrRank(std::max(len, in.rank()))));
    else
      ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  for (int64_t s : *shape)
    ctx.check(s >= 0, "shape ", shapeToString(*shape), " has a negative dim");
  ctx.setOutputType(0, Type::tensor(dt, broadcastShapes(ctx, in, Shape::of(*shape))));
}

void kernelExpand(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  auto shape = shapeInput(ctx, 1, "the shape input");
  for (int64_t s : shape)
    ctx.check(s >= 0, "shape ", shapeToString(shape), " has a negative dim");
  auto out = broadcastStatic(ctx, x.shape(), shape);
  ctx.setOutput(0, stridedView(ctx, x, out, broadcastStrides(x.shape(), out), 0));
}

std::vector<int64_t> tileRepeats(const KernelContext &ctx, int64_t rank) {
  std::vector<int64_t> reps;
  if (ctx.opset() < 6) {
    int64_t tiles = ctx.input(1).toInt64Vector().at(0);
    int64_t axis = normalizeAxis(ctx, ctx.input(2).toInt64Vector().at(0), rank);
    reps.assign(rank, 1);
    reps[axis] = tiles;
  } else {
    reps = shapeInput(ctx, 1, "repeats");
  }
  ctx.check(int64_t(reps.size()) == rank, "repeats has ", reps.size(),
            " entries but the input has rank ", rank);
  for (int64_t r : reps)
    ctx.check(r >= 0, "repeats must be >= 0, got ", shapeToString(reps));
  return reps;
}

void inferTile(InferContext &ctx) {
  DType dt = inDType(ctx, 0);
  const Shape &in = tensorShape(ctx, 0);
  if (!in.rankKnown) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  std::optional<std::vector<int64_t>> reps;
  if (ctx.opset() >= 6) {
    reps = constInts(ctx, 1);
  } else {
    auto tiles = constInts(ctx, 1), axis = constInts(ctx, 2);
    if (tiles && axis && !tiles->empty() && !axis->empty()) {
      reps = std::vector<int64_t>(in.rank(), 1);
      (*reps)[normalizeAxis(ctx, (*axis)[0], in.rank())] = (*tiles)[0];
    }
  }
  if (!reps || int64_t(reps->size()) != in.rank()) {
    ctx.setOutputType(0, Type::tensor(dt, Shape::unknownDims(in.rank())));
    return;
  }
  std::vector<Dim> out = in.dims;
  for (int64_t d = 0; d < in.rank(); ++d) {
    int64_t r = (*reps)[d];
    if (r == 0)
      out[d] = Dim(0);
    else if (r != 1)
      out[d] = in.dims[d].isStatic() ? Dim(in.dims[d].value * r) : Dim();
  }
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

void kernelTile(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  auto reps = tileRepeats(ctx, x.rank());
  auto st = stridesOf(x.shape());
  // Output viewed as [r0, d0, r1, d1, ...] with strides [0, s0, 0, s1, ...].
  std::vector<int64_t> shape, strides, outShape;
  for (int64_t d = 0; d < x.rank(); ++d) {
    shape.push_back(reps[d]);
    strides.push_back(0);
    shape.push_back(x.dim(d));
    strides.push_back(st[d]);
    outShape.push_back(reps[d] * x.dim(d));
  }
  checkedNumel(outShape, dtypeSize(x.dtype()), "Tile output");
  Tensor out = stridedView(ctx, x, shape, strides, 0);
  ctx.setOutput(0, out.reshaped(outShape));
}

//===----------------------------------------------------------------------===//
// ConstantOfShape, Range
//===----------------------------------------------------------------------===//

Tensor constantOfShapeValue(const AttrReader &ctx) {
  if (!ctx.hasAttr("value"))
    return Tensor::scalar<float>(0.0f);
  const Tensor &v = ctx.attrTensor("value");
  ctx.check(v.numel() == 1, "the value attribute must hold exactly one element, got ",
            v.typeString());
  return v;
}

void inferConstantOfShape(InferContext &ctx) {
  DType dt = constantOfShapeValue(ctx).dtype();
  auto shape = constInts(ctx, 0);
  if (shape) {
    for (int64_t s : *shape)
      ctx.check(s >= 0, "shape ", shapeToString(*shape), " has a negative dim");
    ctx.setOutputType(0, Type::tensor(dt, Shape::of(*shape)));
    return;
  }
  int64_t len = staticLength1D(ctx, 0);
  ctx.setOutputType(0, Type::tensor(dt, unknownDimsOrRank(len)));
}

void kernelConstantOfShape(KernelContext &ctx) {
  Tensor v = constantOfShapeValue(ctx);
  auto shape = shapeInput(ctx, 0, "the shape input");
  for (int64_t s : shape)
    ctx.check(s >= 0, "shape ", shapeToString(shape), " has a negative dim");
  Tensor out(v.dtype(), shape);
  dispatchBytes(ctx, v.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T val = ptr<T>(v)[0];
    T *d = ptr<T>(out);
    std::fill(d, d + out.numel(), val);
  });
  ctx.setOutput(0, out);
}

/// ceil(diff / delta) clamped at 0, without overflow.
int64_t rangeCount(int64_t diff, int64_t delta) {
  if (delta > 0)
    return diff > 0 ? (diff - 1) / delta + 1 : 0;
  return diff < 0 ? (diff + 1) / delta + 1 : 0;
}

void inferRange(InferContext &ctx) {
  DType dt = inDType(ctx, 0);
  Tensor st = constInput(ctx, 0), lt = constInput(ctx, 1), dt_ = constInput(ctx, 2);
  const Tensor *s = st.defined() ? &st : nullptr, *l = lt.defined() ? &lt : nullptr,
               *d = dt_.defined() ? &dt_ : nullptr;
  if (s && l && d && s->numel() == 1 && l->numel() == 1 && d->numel() == 1) {
    double start = s->getDouble(0), limit = l->getDouble(0), delta = d->getDouble(0);
    if (delta != 0 && isInteger(s->dtype())) {
      int64_t a = s->getInt64(0), b = l->getInt64(0), c = d->getInt64(0);
      // Avoid overflow for extreme values: fall back to unknown.
      if (std::abs(double(b) - double(a)) < 4e18) {
        int64_t diff = b - a;
        int64_t n = rangeCount(diff, c);
        ctx.setOutputType(0, Type::tensor(dt, Shape({Dim(std::max<int64_t>(n, 0))})));
        return;
      }
    } else if (delta != 0) {
      double n = std::ceil((limit - start) / delta);
      if (std::isfinite(n) && n < 4e18) {
        ctx.setOutputType(0, Type::tensor(dt, Shape({Dim(std::max<int64_t>(int64_t(std::max(n, 0.0)), 0))})));
        return;
      }
    }
  }
  ctx.setOutputType(0, Type::tensor(dt, Shape({Dim()})));
}

void kernelRange(KernelContext &ctx) {
  const Tensor &s = ctx.input(0), &l = ctx.input(1), &d = ctx.input(2);
  ctx.check(s.numel() == 1 && l.numel() == 1 && d.numel() == 1,
            "start, limit and delta must be scalars, got ", s.shapeString(), ", ", l.shapeString(),
            ", ", d.shapeString());
  ctx.check(s.dtype() == l.dtype() && s.dtype() == d.dtype(),
            "start, limit and delta must have the same type");
  DType dt = s.dtype();
  ctx.check(dt == DType::f32 || dt == DType::f64 || dt == DType::i16 || dt == DType::i32 ||
                dt == DType::i64,
            "unsupported element type ", dtypeName(dt), " (expected float, double, int16, int32, int64)");
  int64_t n;
  if (isInteger(dt)) {
    int64_t a = s.getInt64(0), b = l.getInt64(0), c = d.getInt64(0);
    ctx.check(c != 0, "delta must not be 0");
    ctx.check(std::abs(double(b) - double(a)) < 4e18, "range too large");
    int64_t diff = b - a;
    n = rangeCount(diff, c);
  } else {
    double a = s.getDouble(0), b = l.getDouble(0), c = d.getDouble(0);
    ctx.check(c != 0, "delta must not be 0");
    double nd = std::ceil((b - a) / c);
    ctx.check(!std::isnan(nd) && nd < 4e18, "range has too many elements (start ", a, ", limit ",
              b, ", delta ", c, ")");
    n = nd > 0 ? int64_t(nd) : 0;
  }
  Tensor out(dt, {n});
  dispatchNumeric(dt, [&](auto tag) {
    using T = decltype(tag);
    if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double> ||
                  std::is_same_v<T, int16_t> || std::is_same_v<T, int32_t> ||
                  std::is_same_v<T, int64_t>) {
      // Accumulate like the spec's function body (and numpy.arange) do.
      const T delta = d.data<T>()[0];
      T *o = out.data<T>();
      if (n > 0)
        o[0] = s.data<T>()[0];
      for (int64_t i = 1; i < n; ++i)
        o[i] = T(o[i - 1] + delta);
    }
  });
  ctx.setOutput(0, out);
}

//===----------------------------------------------------------------------===//
// Pad
//===----------------------------------------------------------------------===//

std::string padMode(const AttrReader &ctx) {
  std::string mode = ctx.attrString("mode", "constant");
  ctx.check(mode == "constant" || mode == "reflect" || mode == "edge", "unsupported mode '", mode,
            "' (expected constant, reflect or edge)");
  return mode;
}

std::optional<std::vector<int64_t>> padsInfer(const InferContext &ctx) {
  if (ctx.opset() < 2)
    return ctx.attrInts("paddings");
  if (ctx.opset() < 11)
    return ctx.attrInts("pads");
  return constInts(ctx, 1);
}

void inferPad(InferContext &ctx) {
  DType dt = inDType(ctx, 0);
  const Shape &in = tensorShape(ctx, 0);
  padMode(ctx);
  if (!in.rankKnown) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  auto pads = padsInfer(ctx);
  if (!pads) {
    ctx.setOutputType(0, Type::tensor(dt, Shape::unknownDims(in.rank())));
    return;
  }
  ctx.check(int64_t(pads->size()) == 2 * in.rank(), "pads has ", pads->size(),
            " entries, expected 2 * rank = ", 2 * in.rank());
  std::vector<Dim> out = in.dims;
  for (int64_t d = 0; d < in.rank(); ++d) {
    int64_t p = (*pads)[d] + (*pads)[d + in.rank()];
    if (in.dims[d].isStatic()) {
      ctx.check(in.dims[d].value + p >= 0, "pads make dim ", d, " negative");
      out[d] = Dim(in.dims[d].value + p);
    } else if (p != 0 || (*pads)[d] != 0) {
      out[d] = Dim();
    }
  }
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

void kernelPad(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  const int64_t rank = x.rank();
  std::string mode = padMode(ctx);
  std::vector<int64_t> pads;
  Tensor value;
  if (ctx.opset() < 11) {
    pads = ctx.opset() < 2 ? ctx.attrInts("paddings") : ctx.attrInts("pads");
    value = Tensor::scalar<float>(ctx.attrFloat("value", 0.0f)).cast(x.dtype());
  } else {
    pads = shapeInput(ctx, 1, "pads");
    if (ctx.hasInput(2) && ctx.input(2).numel() > 0) {
      value = ctx.input(2);
      if (value.dtype() != x.dtype())
        value = value.cast(x.dtype());
    } else {
      value = Tensor(x.dtype(), {});
    }
  }
  ctx.check(int64_t(pads.size()) == 2 * rank, "pads has ", pads.size(),
            " entries, expected 2 * rank = ", 2 * rank);
  std::vector<int64_t> outShape(rank);
  for (int64_t d = 0; d < rank; ++d) {
    outShape[d] = x.dim(d) + pads[d] + pads[d + rank];
    ctx.check(outShape[d] >= 0, "pads ", shapeToString(pads), " make dim ", d, " negative");
  }
  Tensor out(x.dtype(), outShape);
  if (out.numel() == 0) {
    ctx.setOutput(0, out);
    return;
  }
  // Per dim: output index -> input index, or -1 for the constant value.
  auto st = stridesOf(x.shape());
  std::vector<std::vector<int64_t>> maps(rank);
  for (int64_t d = 0; d < rank; ++d) {
    const int64_t n = x.dim(d);
    if (mode != "constant" && n == 0)
      ctx.check(outShape[d] == 0, "cannot pad an empty dim ", d, " in ", mode, " mode");
    maps[d].resize(outShape[d]);
    for (int64_t o = 0; o < outShape[d]; ++o) {
      int64_t i = o - pads[d];
      if (i < 0 || i >= n) {
        if (mode == "constant") {
          i = -1;
        } else if (mode == "edge") {
          i = std::clamp<int64_t>(i, 0, n - 1);
        } else if (n == 1) {
          i = 0;
        } else {
          int64_t period = 2 * (n - 1);
          i %= period;
          if (i < 0)
            i += period;
          if (i >= n)
            i = period - i;
        }
      }
      maps[d][o] = i < 0 ? -1 : i * st[d];
    }
  }
  dispatchBytes(ctx, x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T *src = ptr<T>(x);
    T *dst = ptr<T>(out);
    const T val = ptr<T>(value)[0];
    if (rank == 0) {
      dst[0] = src[0];
      return;
    }
    const int64_t inner = outShape[rank - 1];
    const auto &imap = maps[rank - 1];
    std::vector<int64_t> idx(rank, 0);
    const int64_t total = out.numel();
    for (int64_t o = 0; o < total; o += inner) {
      int64_t off = 0;
      bool constRow = false;
      for (int64_t d = 0; d < rank - 1; ++d) {
        int64_t m = maps[d][idx[d]];
        if (m < 0) {
          constRow = true;
          break;
        }
        off += m;
      }
      T *row = dst + o;
      if (constRow) {
        std::fill(row, row + inner, val);
      } else {
        for (int64_t j = 0; j < inner; ++j)
          row[j] = imap[j] < 0 ? val : src[off + imap[j]];
      }
      for (int64_t d = rank - 2; d >= 0; --d) {
        if (++idx[d] < outShape[d])
          break;
        idx[d] = 0;
      }
    }
  });
  ctx.setOutput(0, out);
}

//===----------------------------------------------------------------------===//
// DepthToSpace, SpaceToDepth
//===----------------------------------------------------------------------===//

int64_t blockSize(const AttrReader &ctx) {
  int64_t b = ctx.attrInt("blocksize");
  ctx.check(b > 0, "blocksize must be > 0, got ", b);
  // blocksize^2 divides the channels: it must not overflow (2^32 * 2^32 wraps to 0).
  checkedMul(ctx, b, b, "blocksize^2");
  return b;
}

bool depthToSpaceCRD(const AttrReader &ctx) {
  if (ctx.opset() < 11)
    return false;
  std::string mode = ctx.attrString("mode", "DCR");
  ctx.check(mode == "DCR" || mode == "CRD", "unsupported mode '", mode, "' (expected DCR or CRD)");
  return mode == "CRD";
}

void inferDepthToSpace(InferContext &ctx, bool toSpace) {
  DType dt = inDType(ctx, 0);
  const Shape &in = tensorShape(ctx, 0);
  int64_t b = blockSize(ctx);
  if (toSpace)
    depthToSpaceCRD(ctx);
  if (b == 1) {
    ctx.setOutputType(0, Type::tensor(dt, in.rankKnown ? in : Shape::unknownDims(4)));
    return;
  }
  if (!in.rankKnown) {
    ctx.setOutputType(0, Type::tensor(dt, Shape::unknownDims(4)));
    return;
  }
  ctx.check(in.rank() == 4, "expected a 4-D input, got rank ", in.rank());
  std::vector<Dim> out = in.dims;
  auto scale = [&](int idx, bool mul) {
    const Dim &d = in.dims[idx];
    if (!d.isStatic())
      return Dim();
    int64_t f = idx == 1 ? b * b : b;
    if (mul)
      return Dim(checkedMul(ctx, d.value, f, "output dim"));
    ctx.check(d.value % f == 0, "dim ", idx, " (", d.value, ") is not divisible by ", f);
    return Dim(d.value / f);
  };
  out[1] = scale(1, !toSpace);
  out[2] = scale(2, toSpace);
  out[3] = scale(3, toSpace);
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

/// Strides of a 6-D row-major view `shape6` permuted by `perm`.
Tensor permute6(const AttrReader &ctx, const Tensor &x, const std::vector<int64_t> &shape6,
                const std::vector<int64_t> &perm, const std::vector<int64_t> &outShape) {
  auto st = stridesOf(shape6);
  std::vector<int64_t> shape, strides;
  for (int64_t p : perm) {
    shape.push_back(shape6[p]);
    strides.push_back(st[p]);
  }
  return stridedView(ctx, x, shape, strides, 0).reshaped(outShape);
}

void kernelDepthToSpace(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  ctx.check(x.rank() == 4, "expected a 4-D input, got ", x.shapeString());
  int64_t b = blockSize(ctx);
  int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  ctx.check(C % (b * b) == 0, "channels (", C, ") are not divisible by blocksize^2 (", b * b, ")");
  int64_t c = C / (b * b);
  std::vector<int64_t> outShape = {N, c, checkedMul(ctx, H, b, "output height"),
                                  checkedMul(ctx, W, b, "output width")};
  if (depthToSpaceCRD(ctx))
    ctx.setOutput(0, permute6(ctx, x, {N, c, b, b, H, W}, {0, 1, 4, 2, 5, 3}, outShape));
  else
    ctx.setOutput(0, permute6(ctx, x, {N, b, b, c, H, W}, {0, 3, 4, 1, 5, 2}, outShape));
}

void kernelSpaceToDepth(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  ctx.check(x.rank() == 4, "expected a 4-D input, got ", x.shapeString());
  int64_t b = blockSize(ctx);
  int64_t N = x.dim(0), C = x.dim(1), H = x.dim(2), W = x.dim(3);
  ctx.check(H % b == 0 && W % b == 0, "spatial dims ", x.shapeString(),
            " are not divisible by blocksize ", b);
  ctx.setOutput(0, permute6(ctx, x, {N, C, H / b, b, W / b, b}, {0, 3, 5, 1, 2, 4},
                            {N, checkedMul(ctx, C, b * b, "output channels"), H / b, W / b}));
}

OpDef op(std::string name, int since, int minIn, int maxIn, int minOut, int maxOut,
         std::string dtypes, std::string notes, InferFn infer, KernelFn kernel,
         OpPattern pattern = OpPattern::Opaque) {
  OpDef d;
  d.name = std::move(name);
  d.domain = "";
  d.sinceVersion = since;
  d.untilVersion = 17;
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

} // namespace

// --- lowerings of the TensorManip ops
// Data movement as index maps: every output element loads one input element (Reshape family
// through the flat index, Transpose through the permutation, Slice through start + i * step,
// Concat and Pad through selects over clamped, always in-bounds loads).
namespace {

using loop::Expr;
using loop::Var;

std::vector<Expr> asExprs(const std::vector<Var> &iv) { return {iv.begin(), iv.end()}; }

/// Output = input with the same elements in row-major order (Reshape, Flatten, Squeeze, ...).
void lowerReshapeLike(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0), out = ctx.outputShape(0);
  te::Tensor X = ctx.input(0);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    if (xs == out)
      return X.access(asExprs(iv));
    std::vector<int64_t> so = stridesOf(out), si = stridesOf(xs);
    Expr flat = int64_t(0);
    for (size_t d = 0; d < out.size(); ++d)
      flat = flat + iv[d] * so[d];
    std::vector<Expr> idx;
    for (size_t d = 0; d < xs.size(); ++d)
      idx.push_back(xs[d] == 1 ? Expr(int64_t(0)) : Expr(flat / si[d] % xs[d]));
    return X.access(idx);
  }));
}

void lowerTranspose(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  int64_t rank = int64_t(xs.size());
  std::vector<int64_t> perm;
  for (int64_t i = rank - 1; i >= 0; --i)
    perm.push_back(i);
  perm = ctx.attrInts("perm", perm);
  ctx.check(int64_t(perm.size()) == rank, "perm has ", perm.size(), " entries, expected ", rank);
  te::Tensor X = ctx.input(0);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)), [&](std::vector<Var> iv) {
    std::vector<Expr> idx(rank);
    for (int64_t d = 0; d < rank; ++d)
      idx[perm[d]] = iv[d];
    return X.access(idx);
  }));
}

void lowerConcat(LowerContext &ctx) {
  std::vector<int64_t> out = ctx.outputShape(0);
  int64_t axis = lowering::normalizeAxis(ctx, ctx.attrInt("axis"), int64_t(out.size()));
  std::vector<int64_t> offsets;
  std::vector<size_t> parts;
  int64_t off = 0;
  for (size_t i = 0; i < ctx.numInputs(); ++i) {
    std::vector<int64_t> s = ctx.inputShape(i);
    if (s[axis] == 0)
      continue;
    parts.push_back(i);
    offsets.push_back(off);
    off += s[axis];
  }
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    Expr v;
    for (size_t p = parts.size(); p-- > 0;) {
      int64_t len = ctx.inputShape(parts[p])[axis];
      std::vector<Expr> idx = asExprs(iv);
      idx[axis] = loop::max(loop::min(iv[axis] - offsets[p], Expr(len - 1)), Expr(int64_t(0)));
      Expr load = ctx.input(parts[p]).access(idx);
      v = v.defined() ? loop::select(iv[axis] < offsets[p] + len, load, v) : load;
    }
    return v;
  }));
}

/// Element k of the 1-D integer input i as an i64 expression (a run-time load).
Expr loadInt(const LowerContext &ctx, size_t i, int64_t k) {
  Expr v = ctx.input(i).access({Expr(k)});
  return v.type() == loop::Type::i64() ? v : loop::cast(DType::i64, v);
}

/// Slice with starts/axes/steps read at run time (the output shape is static: declared by the
/// model). Per data dim the start and step of the matching axes entry (the last one wins, as no
/// valid model repeats an axis), normalized like sliceDim: start += dim when negative, clamped
/// to [0, dim] (step > 0) or [0, dim - 1] (step < 0); the end only decides the (static) count.
/// Loads stay in bounds: the index is clamped.
void lowerSliceRuntime(LowerContext &ctx, const std::vector<int64_t> &xs) {
  const int64_t rank = int64_t(xs.size());
  std::vector<int64_t> ss = ctx.inputShape(1);
  ctx.check(ss.size() == 1, "starts must be 1-D, got ", shapeToString(ss));
  const int64_t K = ss[0];
  ctx.check(ctx.inputShape(2) == ss, "ends has shape ", shapeToString(ctx.inputShape(2)),
            " but starts has ", shapeToString(ss));
  for (size_t i : {size_t(3), size_t(4)})
    if (ctx.hasInput(i))
      ctx.check(ctx.inputShape(i) == ss, "input ", i, " has shape ", shapeToString(ctx.inputShape(i)),
                ", expected that of starts ", shapeToString(ss));
  auto intAt = [&](size_t i, int64_t k) -> Expr {
    if (const Tensor *c = ctx.inputConstant(i))
      return Expr(c->toInt64Vector()[k]);
    return loadInt(ctx, i, k);
  };
  std::vector<Expr> start(rank), step(rank);
  for (int64_t d = 0; d < rank; ++d) {
    start[d] = Expr(int64_t(0));
    step[d] = Expr(int64_t(1));
    for (int64_t k = 0; k < K; ++k) {
      Expr ax = ctx.hasInput(3) ? intAt(3, k) : Expr(k);
      Expr hit = loop::select(ax < int64_t(0), ax + rank, ax) == Expr(d);
      Expr st = ctx.hasInput(4) ? intAt(4, k) : Expr(int64_t(1));
      Expr s0 = intAt(1, k);
      s0 = loop::select(s0 < int64_t(0), s0 + xs[d], s0);
      Expr sPos = loop::max(loop::min(s0, Expr(xs[d])), Expr(int64_t(0)));
      Expr sNeg = loop::max(loop::min(s0, Expr(xs[d] - 1)), Expr(int64_t(0)));
      start[d] = loop::select(hit, loop::select(st > int64_t(0), sPos, sNeg), start[d]);
      step[d] = loop::select(hit, st, step[d]);
    }
  }
  te::Tensor X = ctx.input(0);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)), [&](std::vector<Var> iv) {
    std::vector<Expr> idx;
    for (int64_t d = 0; d < rank; ++d)
      idx.push_back(loop::max(loop::min(iv[d] * step[d] + start[d], Expr(xs[d] - 1)), Expr(int64_t(0))));
    return X.access(idx);
  }));
}

void lowerSlice(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  if (ctx.opset() >= 10) {
    bool allConst = ctx.inputConstant(1) && ctx.inputConstant(2);
    for (size_t i : {size_t(3), size_t(4)})
      allConst = allConst && (!ctx.hasInput(i) || ctx.inputConstant(i));
    if (!allConst)
      return lowerSliceRuntime(ctx, xs);
  }
  SliceArgs a;
  if (ctx.opset() < 10) {
    a.starts = ctx.attrInts("starts");
    a.ends = ctx.attrInts("ends");
    a.axes = ctx.attrInts("axes", {});
  } else {
    a.starts = ctx.constantInts(1, "starts");
    a.ends = ctx.constantInts(2, "ends");
    if (ctx.hasInput(3))
      a.axes = ctx.constantInts(3, "axes");
    if (ctx.hasInput(4))
      a.steps = ctx.constantInts(4, "steps");
  }
  auto map = sliceAxisMap(ctx, a, int64_t(xs.size()));
  std::vector<SliceDim> dims;
  for (size_t d = 0; d < xs.size(); ++d)
    dims.push_back(map[d] < 0 ? SliceDim{0, xs[d], 1}
                              : sliceDim(xs[d], a.starts[map[d]], a.ends[map[d]], a.steps[map[d]]));
  te::Tensor X = ctx.input(0);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)), [&](std::vector<Var> iv) {
    std::vector<Expr> idx;
    for (size_t d = 0; d < xs.size(); ++d)
      idx.push_back(dims[d].step == 1 ? iv[d] + dims[d].start : iv[d] * dims[d].step + dims[d].start);
    return X.access(idx);
  }));
}

void lowerExpand(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  te::Tensor X = ctx.input(0);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)), [&](std::vector<Var> iv) {
    return X.access(lowering::broadcastIndex(iv, xs));
  }));
}

void lowerPad(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  int64_t rank = int64_t(xs.size());
  std::string mode = padMode(ctx);
  DType dt = ctx.inputDType(0);
  std::vector<int64_t> pads;
  Expr value = lowering::constant(dt, 0);
  if (ctx.opset() < 11) {
    pads = ctx.opset() < 2 ? ctx.attrInts("paddings") : ctx.attrInts("pads");
    value = lowering::constant(dt, ctx.attrFloat("value", 0.0f));
  } else {
    if (ctx.inputConstant(1)) {
      pads = ctx.constantInts(1, "pads");
    } else {
      // run-time pads (the output shape is static: declared by the model); only the begin
      // pads move elements
      std::vector<int64_t> ps = ctx.inputShape(1);
      ctx.check(ps.size() == 1, "pads must be 1-D, got ", shapeToString(ps));
      pads.assign(ps[0], 0);
    }
    if (ctx.hasInput(2)) {
      std::vector<int64_t> vs = ctx.inputShape(2);
      int64_t n = 1;
      for (int64_t v : vs)
        n *= v;
      if (ctx.inputConstant(2)) {
        std::vector<double> v = ctx.constantFloats(2, "constant_value");
        if (!v.empty())
          value = lowering::constant(dt, v[0]);
      } else if (n > 0) {
        value = ctx.input(2).access(std::vector<Expr>(vs.size(), Expr(int64_t(0))));
      }
    }
  }
  ctx.check(int64_t(pads.size()) == 2 * rank, "pads has ", pads.size(), " entries, expected ", 2 * rank);
  bool runtimePads = ctx.opset() >= 11 && !ctx.inputConstant(1);
  te::Tensor X = ctx.input(0);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)), [&](std::vector<Var> iv) {
    std::vector<Expr> idx;
    for (int64_t d = 0; d < rank; ++d) {
      Expr i = runtimePads ? Expr(iv[d] - loadInt(ctx, 1, d)) : Expr(iv[d] - pads[d]);
      if (mode == "edge")
        i = loop::max(loop::min(i, Expr(xs[d] - 1)), Expr(int64_t(0)));
      else if (mode == "reflect" && xs[d] == 1)
        i = Expr(int64_t(0)); // as the reference: a size-1 dim reflects onto itself
      else if (mode == "reflect") {
        // reflect about 0 and n-1 with period 2(n-1)
        Expr p = Expr(2 * (xs[d] - 1));
        Expr m = (i % p + p) % p;
        i = loop::select(m >= xs[d], p - m, m);
      }
      idx.push_back(i);
    }
    if (mode != "constant")
      return X.access(idx);
    return lowering::loadPadded(X, idx, xs, value);
  }));
}

void lowerTile(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  te::Tensor X = ctx.input(0);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)), [&](std::vector<Var> iv) {
    std::vector<Expr> idx;
    for (size_t d = 0; d < xs.size(); ++d)
      idx.push_back(xs[d] == 1 ? Expr(int64_t(0)) : Expr(iv[d] % xs[d]));
    return X.access(idx);
  }));
}

/// DepthToSpace (toSpace) and SpaceToDepth as channel/position index maps (NCHW).
void lowerDepthSpace(LowerContext &ctx, bool toSpace) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  ctx.check(xs.size() == 4, "expected a 4-D input, got ", shapeToString(xs));
  int64_t b = blockSize(ctx), C = xs[1];
  bool crd = toSpace && depthToSpaceCRD(ctx);
  int64_t c = toSpace ? C / (b * b) : C;
  te::Tensor X = ctx.input(0);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)), [&](Var n, Var ch, Var h, Var w) {
    if (toSpace) {
      Expr off = (h % b) * b + w % b;
      Expr cin = crd ? ch * (b * b) + off : off * c + ch;
      return X(n, cin, h / b, w / b);
    }
    Expr blk = ch / c; // (bh * b + bw)
    return X(n, ch % c, h * b + blk / b, w * b + blk % b);
  }));
}

/// A literal of dtype dt holding element 0 of t (integers exactly, not through a double).
Expr literalOf(const LowerContext &ctx, const Tensor &t, DType dt) {
  lowering::checkDType(ctx, dt, "value dtype");
  if (isFloat(dt))
    return loop::makeConst(loop::Type(dt), t.getDouble(0));
  if (dt == DType::boolean)
    return loop::makeBool(t.getDouble(0) != 0);
  return loop::makeConst(loop::Type(dt), t.getInt64(0));
}

/// ConstantOfShape: every element is the value attribute (default f32 0); the shape comes from
/// the (constant) shape input through shape inference.
void lowerConstantOfShape(LowerContext &ctx) {
  DType dt = ctx.outputDType(0);
  Expr v = ctx.hasAttr("value") ? literalOf(ctx, ctx.attrTensor("value"), dt)
                                : lowering::constant(dt, 0);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)),
                               [&](std::vector<Var>) { return v; }));
}

/// Range with a static length (constant start/limit/delta after shape inference):
/// out[i] = start + i * delta (start and delta are read from their tensors). Integers match the
/// reference exactly; floats compute start + i * delta where the reference accumulates, a
/// difference of a few ulps.
void lowerRange(LowerContext &ctx) {
  DType dt = ctx.outputDType(0);
  ctx.check(dt == DType::f32 || dt == DType::f64 || dt == DType::i16 || dt == DType::i32 ||
                dt == DType::i64,
            "unsupported element type ", dtypeName(dt), " (expected float, double, int16, int32, int64)");
  te::Tensor S = ctx.input(0), D = ctx.input(2);
  auto scalar = [&](const te::Tensor &t, size_t i) {
    std::vector<int64_t> sh = ctx.inputShape(i);
    int64_t n = 1;
    for (int64_t d : sh)
      n *= d;
    ctx.check(n == 1, "input ", i, " must be a scalar, got shape ", shapeToString(sh));
    return t.access(std::vector<Expr>(sh.size(), Expr(int64_t(0))));
  };
  Expr start = scalar(S, 0), delta = scalar(D, 2);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)), [&](Var i) {
    return start + loop::cast(dt, Expr(i)) * delta;
  }));
}

/// Shape: the input's static dims [start, end) as int64 literals (the input is not read).
void lowerShape(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  auto [start, end] = shapeRange(ctx, int64_t(xs.size()));
  std::vector<int64_t> dims(xs.begin() + start, xs.begin() + end);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)), [&](Var i) {
    Expr v = Expr(int64_t(0));
    for (size_t k = dims.size(); k-- > 0;)
      v = loop::select(Expr(i) == int64_t(k), Expr(dims[k]), v);
    return v;
  }));
}

/// Size: the input's static element count as an int64 scalar (the input is not read).
void lowerSize(LowerContext &ctx) {
  int64_t n = 1;
  for (int64_t d : ctx.inputShape(0))
    n *= d;
  ctx.setOutput(0, ctx.compute({}, [&](std::vector<Var>) { return Expr(n); }));
}

/// Split: output k reads the input at its offset along the axis (the sizes are the outputs'
/// inferred extents, whichever way they were given: attribute, input or equal parts).
void lowerSplit(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  ctx.check(!xs.empty(), "cannot split a scalar");
  int64_t axis = lowering::normalizeAxis(ctx, ctx.attrInt("axis", 0), int64_t(xs.size()));
  te::Tensor X = ctx.input(0);
  int64_t offset = 0;
  for (size_t k = 0; k < ctx.numOutputs(); ++k) {
    std::vector<int64_t> os = ctx.outputShape(k);
    ctx.check(os.size() == xs.size(), "output ", k, " has rank ", os.size(), ", expected ",
              xs.size());
    if (ctx.hasOutput(k)) {
      ctx.setOutput(k, ctx.compute(lowering::shapeExprs(os), [&](std::vector<Var> iv) {
        std::vector<Expr> idx = asExprs(iv);
        idx[axis] = idx[axis] + offset;
        return X.access(idx);
      }, "out" + std::to_string(k)));
    }
    offset += os[axis];
  }
  ctx.check(offset == xs[axis], "split sizes sum to ", offset, " but dim ", axis, " is ", xs[axis]);
}

void attachTensorManipLowerings(OpRegistry &r) {
  r.setLower("ConstantOfShape", lowerConstantOfShape);
  r.setLower("Range", lowerRange);
  r.setLower("Shape", lowerShape);
  r.setLower("Size", lowerSize);
  r.setLower("Split", lowerSplit);
  r.setLower("Tile", lowerTile);
  r.setLower("DepthToSpace", [](LowerContext &c) { lowerDepthSpace(c, true); });
  r.setLower("SpaceToDepth", [](LowerContext &c) { lowerDepthSpace(c, false); });
  for (const char *op : {"Identity", "Reshape", "Flatten", "Squeeze", "Unsqueeze"})
    r.setLower(op, lowerReshapeLike);
  r.setLower("Transpose", lowerTranspose);
  r.setLower("Concat", lowerConcat);
  r.setLower("Slice", lowerSlice);
  r.setLower("Expand", lowerExpand);
  r.setLower("Pad", lowerPad);
}

} // namespace
// --- end of the TensorManip lowerings

void registerTensorManipOps(OpRegistry &r) {
  const char *all = "all (incl. string, bool)";
  r.add(op("Constant", 1, 0, 0, 1, 1, all, "sparse_value is not supported", inferConstant,
           kernelConstant));
  r.add(op("Identity", 1, 1, 1, 1, 1, "all; sequences and optionals pass through", "",
           inferSameAs(0), kernelIdentity, OpPattern::ElemWise));
  r.add(op("Reshape", 1, 1, 2, 1, 1, all, "", inferReshape, kernelReshape, OpPattern::Injective));
  r.add(op("Shape", 1, 1, 1, 1, 1, all, "", inferShape, kernelShape));
  r.add(op("Size", 1, 1, 1, 1, 1, all, "", inferSize, kernelSize));
  r.add(op("Transpose", 1, 1, 1, 1, 1, all, "", inferTranspose, kernelTranspose,
           OpPattern::Injective));
  r.add(op("Concat", 1, 1, 1 << 20, 1, 1, all, "", inferConcat, kernelConcat,
           OpPattern::Injective));
  r.add(op("Unsqueeze", 1, 1, 2, 1, 1, all, "", inferUnsqueeze, kernelUnsqueeze,
           OpPattern::Injective));
  r.add(op("Squeeze", 1, 1, 2, 1, 1, all, "", inferSqueeze, kernelSqueeze, OpPattern::Injective));
  r.add(op("Flatten", 1, 1, 1, 1, 1, all, "", inferFlatten, kernelFlatten, OpPattern::Injective));
  r.add(op("Split", 1, 1, 2, 1, 1 << 20, all, "num_outputs (opset 18) not supported", inferSplit,
           kernelSplit, OpPattern::Injective));
  r.add(op("Slice", 1, 1, 5, 1, 1, all, "", inferSlice, kernelSlice, OpPattern::Injective));
  r.add(op("Expand", 8, 2, 2, 1, 1, all, "", inferExpand, kernelExpand, OpPattern::Broadcast));
  r.add(op("Tile", 1, 2, 3, 1, 1, all, "", inferTile, kernelTile, OpPattern::Injective));
  r.add(op("ConstantOfShape", 9, 1, 1, 1, 1, "numeric, bool", "", inferConstantOfShape,
           kernelConstantOfShape));
  r.add(op("Range", 11, 3, 3, 1, 1, "f32, f64, i16, i32, i64", "", inferRange, kernelRange));
  r.add(op("Pad", 1, 1, 3, 1, 1, all, "modes constant, reflect, edge; axes (opset 18) not supported",
           inferPad, kernelPad, OpPattern::Injective));
  r.add(op("DepthToSpace", 1, 1, 1, 1, 1, all, "DCR and CRD modes",
           [](InferContext &ctx) { inferDepthToSpace(ctx, true); }, kernelDepthToSpace,
           OpPattern::Injective));
  r.add(op("SpaceToDepth", 1, 1, 1, 1, 1, all, "",
           [](InferContext &ctx) { inferDepthToSpace(ctx, false); }, kernelSpaceToDepth,
           OpPattern::Injective));
  attachTensorManipLowerings(r);
}

} // namespace tessel
