//===- OpUtils.cpp - helpers shared by op families ------------------------===//
#include "OpUtils.h"

#include <algorithm>

namespace tessel {

int64_t normalizeAxis(const AttrReader &ctx, int64_t axis, int64_t rank, const char *what) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1))
    ctx.fail(what, " ", axis, " is out of range for a tensor of rank ", rank, " (expected [",
             -rank, ", ", rank - 1, "])");
  return axis < 0 ? axis + rank : axis;
}

int64_t checkedMul(const AttrReader &ctx, int64_t a, int64_t b, const char *what) {
  int64_t r;
  if (__builtin_mul_overflow(a, b, &r))
    ctx.fail(what, " overflows: ", a, " * ", b, " is out of the range of int64");
  return r;
}

Shape unknownDimsOrRank(int64_t rank) {
  if (rank < 0 || rank > kMaxTrackedRank)
    return Shape::unknownRank();
  return Shape::unknownDims(rank);
}

std::vector<int64_t> stridesOf(const std::vector<int64_t> &shape) {
  std::vector<int64_t> s(shape.size());
  int64_t acc = 1;
  for (int64_t i = int64_t(shape.size()) - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

std::vector<int64_t> broadcastStatic(const AttrReader &ctx, const std::vector<int64_t> &a,
                                     const std::vector<int64_t> &b) {
  size_t r = std::max(a.size(), b.size());
  std::vector<int64_t> out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      ctx.fail("shapes ", shapeToString(a), " and ", shapeToString(b), " cannot be broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Shape broadcastShapes(const AttrReader &ctx, const Shape &a, const Shape &b) {
  if (!a.rankKnown || !b.rankKnown)
    return Shape::unknownRank();
  size_t r = std::max(a.dims.size(), b.dims.size());
  std::vector<Dim> out(r);
  for (size_t i = 0; i < r; ++i) {
    Dim da = i < r - a.dims.size() ? Dim(1) : a.dims[i - (r - a.dims.size())];
    Dim db = i < r - b.dims.size() ? Dim(1) : b.dims[i - (r - b.dims.size())];
    if (da.isStatic() && db.isStatic()) {
      if (da.value != db.value && da.value != 1 && db.value != 1)
        ctx.fail("shapes ", a.str(), " and ", b.str(), " cannot be broadcast");
      out[i] = da.value == 1 ? db : da;
    } else if (da == db) {
      out[i] = da;
    } else if (da.isStatic() && da.value == 1) {
      out[i] = db;
    } else if (db.isStatic() && db.value == 1) {
      out[i] = da;
    } else if (da.isStatic() && da.value != 1) {
      out[i] = da;
    } else if (db.isStatic() && db.value != 1) {
      out[i] = db;
    } else {
      out[i] = Dim();
    }
  }
  return Shape(out);
}

std::vector<int64_t> broadcastStrides(const std::vector<int64_t> &in,
                                      const std::vector<int64_t> &out) {
  std::vector<int64_t> s(out.size(), 0);
  std::vector<int64_t> is = stridesOf(in);
  size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i)
    s[off + i] = in[i] == 1 ? 0 : is[i];
  return s;
}

InferFn inferSameAs(size_t from) {
  return [from](InferContext &ctx) {
    for (size_t i = 0; i < ctx.numOutputs(); ++i)
      ctx.setOutputType(i, ctx.inputType(from));
  };
}

InferFn inferBroadcast(DType outType) {
  return [outType](InferContext &ctx) {
    Shape s;
    bool first = true;
    DType dt = outType;
    for (size_t i = 0; i < ctx.numInputs(); ++i) {
      if (!ctx.hasInput(i))
        continue;
      const Shape &si = tensorShape(ctx, i);
      if (first) {
        s = si;
        if (dt == DType::undefined)
          dt = ctx.inputType(i).dtype;
        first = false;
      } else {
        s = broadcastShapes(ctx, s, si);
      }
    }
    ctx.setOutputType(0, Type::tensor(dt, s));
  };
}

const Shape &tensorShape(const InferContext &ctx, size_t input) {
  const Type &t = ctx.inputType(input);
  static const Shape unknown;
  if (t.kind == Type::Kind::Unknown)
    return unknown;
  if (!t.isTensor())
    ctx.fail("input ", input, " should be a tensor, got ", t.str());
  return t.shape;
}

int64_t product(const std::vector<int64_t> &v, size_t from, size_t to) {
  int64_t p = 1;
  const size_t end = std::min(to, v.size());
  for (auto it = v.begin() + std::min(from, end); it != v.begin() + end; ++it)
    p *= *it;
  return p;
}

void copyElems(Tensor &dst, int64_t dstOff, const Tensor &src, int64_t srcOff, int64_t n) {
  if (n <= 0)
    return;
  if (src.dtype() == DType::string) {
    const std::string *s = src.data<std::string>() + srcOff;
    std::copy(s, s + n, dst.data<std::string>() + dstOff);
    return;
  }
  size_t es = dtypeSize(src.dtype());
  std::memcpy(static_cast<char *>(dst.raw()) + dstOff * es,
              static_cast<const char *>(src.raw()) + srcOff * es, size_t(n) * es);
}

DType inDType(const InferContext &ctx, size_t i) {
  const Type &t = ctx.inputType(i);
  return t.isTensor() ? t.dtype : DType::undefined;
}

Shape mergeShapes(const Shape &a, const Shape &b) {
  if (!a.rankKnown || !b.rankKnown || a.rank() != b.rank())
    return Shape::unknownRank();
  std::vector<Dim> d(a.dims.size());
  for (size_t i = 0; i < d.size(); ++i)
    d[i] = a.dims[i] == b.dims[i] ? a.dims[i] : Dim();
  return Shape(std::move(d));
}

std::string setListName(unsigned s) {
  std::string r;
  auto add = [&](unsigned bit, const char *n) {
    if (s & bit)
      r += (r.empty() ? "" : ", ") + std::string(n);
  };
  add(kF, "float types");
  add(kSI, "signed integers");
  add(kUI, "unsigned integers");
  add(kB, "bool");
  return r;
}

} // namespace tessel
