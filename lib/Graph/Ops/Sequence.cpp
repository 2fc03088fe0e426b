//===- Sequence.cpp - sequence and optional ops -----------------------------===//
//
// Sequences are Objects of Kind::Sequence (a std::vector<Tensor>); a runtime optional is its
// content, or an Object of Kind::None when empty. Positions follow the spec: negative positions
// count from the back; out-of-range positions are errors.
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"

#include <algorithm>
#include <cstring>

namespace tessel {

namespace {

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

/// The element type of a sequence (or optional) type; an unknown tensor when not known.
Type elemType(const Type &t) {
  if ((t.kind == Type::Kind::Sequence || t.kind == Type::Kind::Optional) && t.elem &&
      t.elem->kind != Type::Kind::Unknown)
    return *t.elem;
  return Type::tensor(DType::undefined, Shape::unknownRank());
}

/// A tensor type holding values of both tensor types (unknown dims where they differ).
Type mergeTensorTypes(const Type &a, const Type &b) {
  if (!a.isTensor())
    return b.isTensor() ? Type::tensor(b.dtype, Shape::unknownRank()) : a;
  if (!b.isTensor())
    return Type::tensor(a.dtype, Shape::unknownRank());
  DType dt = a.dtype == DType::undefined ? b.dtype : a.dtype;
  return Type::tensor(dt, mergeShapes(a.shape, b.shape));
}

const std::vector<Tensor> &inputSequence(const KernelContext &ctx, size_t i) {
  const Object &o = ctx.inputObject(i);
  ctx.check(o.isSequence(), "input ", i, " should be a sequence, got a ",
            o.isTensor() ? "tensor" : "empty optional");
  return o.sequence;
}

/// A position input (int32/int64 scalar) checked against [-n, n - 1] (or [-n, n] when
/// `allowEnd`), returned in [0, n) (or [0, n]).
int64_t readPosition(const KernelContext &ctx, size_t i, int64_t n, bool allowEnd) {
  const Tensor &t = ctx.input(i);
  ctx.check((t.dtype() == DType::i32 || t.dtype() == DType::i64) && t.numel() == 1,
            "position should be an int32 or int64 scalar, got ", t.typeString());
  int64_t p = t.getInt64(0);
  int64_t hi = allowEnd ? n : n - 1;
  ctx.check(p >= -n && p <= hi, "position ", p, " is out of range for a sequence of ", n,
            " elements (expected [", -n, ", ", hi, "])");
  return p < 0 ? p + n : p;
}

/// Elements [start, start + len) of t along `axis`.
Tensor sliceRange(const Tensor &t, int64_t axis, int64_t start, int64_t len) {
  const auto &s = t.shape();
  std::vector<int64_t> os = s;
  os[axis] = len;
  Tensor out(t.dtype(), os);
  int64_t outer = product(s, 0, axis), dim = s[axis], inner = product(s, axis + 1, s.size());
  for (int64_t o = 0; o < outer; ++o)
    copyElems(out, o * len * inner, t, (o * dim + start) * inner, len * inner);
  return out;
}

//===----------------------------------------------------------------------===//
// SequenceEmpty / SequenceConstruct / SequenceInsert / SequenceAt / SequenceErase / Length
//===----------------------------------------------------------------------===//

DType emptyDType(const AttrReader &ctx) {
  int64_t code = ctx.attrInt("dtype", 1);
  std::optional<DType> dt = dtypeFromOnnx(int(code));
  if (!dt || code != int64_t(int(code)))
    ctx.fail("attribute 'dtype' ", code, " is not a supported tensor element type");
  return *dt;
}

void inferSequenceConstruct(InferContext &ctx) {
  Type e = ctx.inputType(0);
  if (!e.isTensor())
    e = Type::tensor(DType::undefined, Shape::unknownRank());
  for (size_t i = 1; i < ctx.numInputs(); ++i)
    e = mergeTensorTypes(e, ctx.inputType(i));
  ctx.setOutputType(0, Type::sequence(e));
}

void runSequenceConstruct(KernelContext &ctx) {
  std::vector<Tensor> seq;
  seq.reserve(ctx.numInputs());
  for (size_t i = 0; i < ctx.numInputs(); ++i) {
    const Tensor &t = ctx.input(i);
    ctx.check(t.dtype() == ctx.input(0).dtype(), "input ", i, " is ", t.typeString(),
              " but input 0 is ", ctx.input(0).typeString(),
              "; a sequence holds one element type");
    seq.push_back(t);
  }
  ctx.setOutputObject(0, Object::seq(std::move(seq)));
}

void inferSequenceInsert(InferContext &ctx) {
  Type seq = ctx.inputType(0);
  Type e = elemType(seq);
  ctx.setOutputType(0, Type::sequence(mergeTensorTypes(e, ctx.inputType(1))));
}

void runSequenceInsert(KernelContext &ctx) {
  std::vector<Tensor> seq = inputSequence(ctx, 0);
  const Tensor &t = ctx.input(1);
  if (!seq.empty() && seq.front().dtype() != t.dtype())
    ctx.fail("cannot insert a ", t.typeString(), " into a sequence of ",
             dtypeName(seq.front().dtype()), " tensors");
  int64_t n = int64_t(seq.size());
  int64_t pos = ctx.hasInput(2) ? readPosition(ctx, 2, n, true) : n;
  seq.insert(seq.begin() + pos, t);
  ctx.setOutputObject(0, Object::seq(std::move(seq)));
}

void runSequenceAt(KernelContext &ctx) {
  const auto &seq = inputSequence(ctx, 0);
  int64_t pos = readPosition(ctx, 1, int64_t(seq.size()), false);
  ctx.setOutput(0, seq[pos]);
}

void runSequenceErase(KernelContext &ctx) {
  std::vector<Tensor> seq = inputSequence(ctx, 0);
  int64_t n = int64_t(seq.size());
  ctx.check(n > 0, "cannot erase from an empty sequence");
  int64_t pos = ctx.hasInput(1) ? readPosition(ctx, 1, n, false) : n - 1;
  seq.erase(seq.begin() + pos);
  ctx.setOutputObject(0, Object::seq(std::move(seq)));
}

//===----------------------------------------------------------------------===//
// SplitToSequence / ConcatFromSequence
//===----------------------------------------------------------------------===//

void inferSplitToSequence(InferContext &ctx) {
  const Type &in = ctx.inputType(0);
  DType dt = in.isTensor() ? in.dtype : DType::undefined;
  const Shape &s = tensorShape(ctx, 0);
  if (!s.rankKnown) {
    ctx.setOutputType(0, Type::sequence(Type::tensor(dt, Shape::unknownRank())));
    return;
  }
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", 0), s.rank());
  std::vector<Dim> dims = s.dims;
  if (!ctx.hasInput(1)) {
    if (ctx.attrInt("keepdims", 1))
      dims[axis] = Dim(1);
    else
      dims.erase(dims.begin() + axis);
  } else {
    dims[axis] = Dim();
    // All chunks have one static size when the split is constant and even.
    if (const Tensor *sp = ctx.inputConstant(1)) {
      std::vector<int64_t> v = sp->toInt64Vector();
      if (sp->rank() == 0 && v.size() == 1 && s.dims[axis].isStatic() && v[0] > 0 &&
          s.dims[axis].value % v[0] == 0)
        dims[axis] = Dim(v[0]);
      else if (sp->rank() == 1 && !v.empty() &&
               std::all_of(v.begin(), v.end(), [&](int64_t x) { return x == v[0] && x >= 0; }))
        dims[axis] = Dim(v[0]);
    }
  }
  ctx.setOutputType(0, Type::sequence(Type::tensor(dt, Shape(std::move(dims)))));
}

void runSplitToSequence(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  ctx.check(x.rank() >= 1, "input should have rank >= 1, got a scalar");
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis", 0), x.rank());
  int64_t dim = x.dim(axis);
  std::vector<Tensor> seq;
  if (!ctx.hasInput(1)) {
    bool keep = ctx.attrInt("keepdims", 1) != 0;
    std::vector<int64_t> squeezed = x.shape();
    squeezed.erase(squeezed.begin() + axis);
    seq.reserve(size_t(dim));
    for (int64_t i = 0; i < dim; ++i) {
      Tensor t = sliceRange(x, axis, i, 1);
      seq.push_back(keep ? t : t.reshaped(squeezed));
    }
    ctx.setOutputObject(0, Object::seq(std::move(seq)));
    return;
  }
  const Tensor &sp = ctx.input(1);
  ctx.check(sp.dtype() == DType::i32 || sp.dtype() == DType::i64,
            "split should be int32 or int64, got ", sp.typeString());
  ctx.check(sp.rank() <= 1, "split should be a scalar or 1-D, got ", sp.typeString());
  std::vector<int64_t> sizes = sp.toInt64Vector();
  if (sp.rank() == 0) {
    int64_t c = sizes[0];
    ctx.check(c > 0, "split ", c, " should be positive");
    sizes.clear();
    for (int64_t s = 0; s < dim; s += c)
      sizes.push_back(std::min(c, dim - s));
  } else {
    int64_t total = 0;
    for (int64_t v : sizes) {
      ctx.check(v >= 0, "split sizes should be >= 0, got ", v);
      ctx.check(v <= dim - total, "split sizes sum past the axis length ", dim);
      total += v;
    }
    ctx.check(total == dim, "split sizes sum to ", total, " but the axis has length ", dim);
  }
  int64_t start = 0;
  seq.reserve(sizes.size());
  for (int64_t v : sizes) {
    seq.push_back(sliceRange(x, axis, start, v));
    start += v;
  }
  ctx.setOutputObject(0, Object::seq(std::move(seq)));
}

void inferConcatFromSequence(InferContext &ctx) {
  Type e = elemType(ctx.inputType(0));
  bool newAxis = ctx.attrInt("new_axis", 0) != 0;
  if (!e.isTensor() || !e.shape.rankKnown) {
    ctx.setOutputType(0, Type::tensor(e.isTensor() ? e.dtype : DType::undefined,
                                      Shape::unknownRank()));
    return;
  }
  std::vector<Dim> dims = e.shape.dims;
  int64_t r = int64_t(dims.size()) + (newAxis ? 1 : 0);
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis"), r);
  if (newAxis)
    dims.insert(dims.begin() + axis, Dim());
  else
    dims[axis] = Dim();
  ctx.setOutputType(0, Type::tensor(e.dtype, Shape(std::move(dims))));
}

void runConcatFromSequence(KernelContext &ctx) {
  const auto &seq = inputSequence(ctx, 0);
  ctx.check(!seq.empty(), "cannot concatenate an empty sequence");
  bool newAxis = ctx.attrInt("new_axis", 0) != 0;
  const Tensor &first = seq.front();
  int64_t r = first.rank();
  int64_t axis = normalizeAxis(ctx, ctx.attrInt("axis"), r + (newAxis ? 1 : 0));
  // View every element with the axis present (new_axis inserts a 1 there).
  std::vector<int64_t> base = first.shape();
  if (newAxis)
    base.insert(base.begin() + axis, 1);
  ctx.check(!base.empty(), "cannot concatenate scalars without new_axis");
  int64_t total = 0;
  for (size_t i = 0; i < seq.size(); ++i) {
    const Tensor &t = seq[i];
    ctx.check(t.dtype() == first.dtype() && t.rank() == r, "element ", i, " is ", t.typeString(),
              " but element 0 is ", first.typeString());
    for (int64_t d = 0; d < r; ++d)
      ctx.check(t.dim(d) == first.dim(d) || (!newAxis && d == axis), "element ", i, " has shape ",
                t.shapeString(), ", incompatible with element 0's ", first.shapeString(),
                newAxis ? " (new_axis needs equal shapes)" : "");
    total += newAxis ? 1 : t.dim(axis);
  }
  std::vector<int64_t> os = base;
  os[axis] = total;
  Tensor out(first.dtype(), os);
  int64_t outer = product(base, 0, axis), innerDims = product(base, axis + 1, base.size());
  int64_t row = total * innerDims, off = 0;
  for (const Tensor &t : seq) {
    int64_t chunk = (newAxis ? 1 : t.dim(axis)) * innerDims;
    for (int64_t o = 0; o < outer; ++o)
      copyElems(out, o * row + off, t, o * chunk, chunk);
    off += chunk;
  }
  ctx.setOutput(0, std::move(out));
}

//===----------------------------------------------------------------------===//
// Optional / OptionalHasElement / OptionalGetElement
//===----------------------------------------------------------------------===//

void inferOptional(InferContext &ctx) {
  if (ctx.numInputs() > 0 && ctx.hasInput(0)) {
    ctx.setOutputType(0, Type::optional(ctx.inputType(0)));
    return;
  }
  const Attribute *a = ctx.node().attr("type");
  ctx.check(a && a->kind == Attribute::Kind::TypeAttr,
            "an Optional without input needs the attribute 'type' (a type proto)");
  ctx.setOutputType(0, Type::optional(a->type));
}

void runOptional(KernelContext &ctx) {
  if (ctx.numInputs() > 0 && ctx.node().input(0)) {
    ctx.setOutputObject(0, ctx.inputObject(0));
    return;
  }
  ctx.check(ctx.node().attr("type") != nullptr,
            "an Optional without input needs the attribute 'type' (a type proto)");
  ctx.setOutputObject(0, Object::none());
}

void inferOptionalGetElement(InferContext &ctx) {
  const Type &t = ctx.inputType(0);
  if (t.kind == Type::Kind::Optional)
    ctx.setOutputType(0, t.elem ? *t.elem : Type::unknown());
  else
    ctx.setOutputType(0, t);
}

void runOptionalGetElement(KernelContext &ctx) {
  ctx.check(ctx.hasInput(0), "the optional input is empty; it has no element to get");
  ctx.setOutputObject(0, ctx.inputObject(0));
}

} // namespace

void registerSequenceOps(OpRegistry &r) {
  r.add(OpDef{"SequenceEmpty", "", 11, 17, 0, 0, 1, 1, "all", "",
              [](InferContext &ctx) {
                ctx.setOutputType(0, Type::sequence(Type::tensor(emptyDType(ctx),
                                                                 Shape::unknownRank())));
              },
              [](KernelContext &ctx) {
                emptyDType(ctx);
                ctx.setOutputObject(0, Object::seq({}));
              }});
  r.add(OpDef{"SequenceConstruct", "", 11, 17, 1, 1 << 20, 1, 1, "all",
              "inputs must share one element type", inferSequenceConstruct,
              runSequenceConstruct});
  r.add(OpDef{"SequenceInsert", "", 11, 17, 2, 3, 1, 1, "all",
              "position in [-n, n], default: append", inferSequenceInsert, runSequenceInsert});
  r.add(OpDef{"SequenceAt", "", 11, 17, 2, 2, 1, 1, "all", "position in [-n, n-1]",
              [](InferContext &ctx) { ctx.setOutputType(0, elemType(ctx.inputType(0))); },
              runSequenceAt});
  r.add(OpDef{"SequenceErase", "", 11, 17, 1, 2, 1, 1, "all",
              "position in [-n, n-1], default: the last element",
              [](InferContext &ctx) {
                ctx.setOutputType(0, Type::sequence(elemType(ctx.inputType(0))));
              },
              runSequenceErase});
  r.add(OpDef{"SequenceLength", "", 11, 17, 1, 1, 1, 1, "all", "",
              [](InferContext &ctx) { ctx.setOutputType(0, Type::tensor(DType::i64, Shape::of({}))); },
              [](KernelContext &ctx) {
                ctx.setOutput(0, Tensor::scalar<int64_t>(int64_t(inputSequence(ctx, 0).size())));
              }});
  r.add(OpDef{"SplitToSequence", "", 11, 17, 1, 2, 1, 1, "all",
              "split: scalar chunk size (last chunk may be smaller) or 1-D sizes",
              inferSplitToSequence, runSplitToSequence});
  r.add(OpDef{"ConcatFromSequence", "", 11, 17, 1, 1, 1, 1, "all",
              "the sequence must not be empty", inferConcatFromSequence, runConcatFromSequence});
  r.add(OpDef{"Optional", "", 15, 17, 0, 1, 1, 1, "any (tensors, sequences)",
              "without input, the attribute 'type' gives the (empty) optional's type",
              inferOptional, runOptional});
  r.add(OpDef{"OptionalHasElement", "", 15, 17, 0, 1, 1, 1, "any (optionals, tensors, sequences)",
              "an omitted input counts as empty (opset 18 behaviour)",
              [](InferContext &ctx) {
                ctx.setOutputType(0, Type::tensor(DType::boolean, Shape::of({})));
              },
              [](KernelContext &ctx) {
                ctx.setOutput(0, Tensor::scalar<bool>(ctx.hasInput(0)));
              }});
  r.add(OpDef{"OptionalGetElement", "", 15, 17, 1, 1, 1, 1, "any (optionals, tensors, sequences)",
              "an empty optional is an error", inferOptionalGetElement, runOptionalGetElement});
}

} // namespace tessel
