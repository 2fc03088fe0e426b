//===- Elementwise.cpp - Elementwise ops ---------------------------------------===//
//
// Unary math, binary arithmetic/logic/comparison with numpy broadcasting, variadic
// Max/Min/Mean/Sum, Where, Clip, Cast and CastLike. Every op is a per-element scalar function
// (a generic lambda) run by one of three drivers: unary, broadcasting binary, and the N-ary
// broadcast plan (Where). The broadcast plan coalesces dims so the inner loop is a contiguous
// run with input strides in {0, 1}: same-shape, scalar and bias-like broadcasts are fast.
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"
#include "tessel/Graph/Lowering.h"

#include <array>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <limits>
#include <type_traits>

namespace tessel {

namespace {

//===----------------------------------------------------------------------===//
// Element types
//===----------------------------------------------------------------------===//

// kIsHalf, Calc, the categories kF/kSI/kUI/kB, setOf and dispatchSet: see OpUtils.h.

// Integer arithmetic that wraps instead of invoking undefined behaviour.
template <class T> T wrapAdd(T a, T b) {
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>)
    return T(std::make_unsigned_t<T>(a) + std::make_unsigned_t<T>(b));
  else
    return T(a + b);
}
template <class T> T wrapSub(T a, T b) {
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>)
    return T(std::make_unsigned_t<T>(a) - std::make_unsigned_t<T>(b));
  else
    return T(a - b);
}
template <class T> T wrapMul(T a, T b) {
  if constexpr (std::is_integral_v<T> && std::is_signed_v<T>)
    return T(uint64_t(int64_t(a)) * uint64_t(int64_t(b)));
  else if constexpr (std::is_integral_v<T>)
    return T(uint64_t(a) * uint64_t(b));
  else
    return T(a * b);
}
template <class T> T wrapNeg(T a) {
  if constexpr (std::is_integral_v<T>)
    return T(std::make_unsigned_t<T>(0) - std::make_unsigned_t<T>(a));
  else
    return -a;
}

template <class T> bool isNaN(T x) {
  if constexpr (std::is_floating_point_v<T>)
    return std::isnan(x);
  else
    return false;
}

//===----------------------------------------------------------------------===//
// Broadcast plan
//===----------------------------------------------------------------------===//

/// The iteration over the broadcast of N input shapes, with dims coalesced: dims[m-1] is the
/// inner run and st[k][d] is input k's element stride along coalesced dim d (0 = broadcast).
template <size_t N> struct Plan {
  std::vector<int64_t> out;
  std::vector<int64_t> dims;
  std::vector<int64_t> st[N];
  int64_t numel = 0;
};

template <size_t N>
Plan<N> makePlan(const AttrReader &ctx, const std::array<const std::vector<int64_t> *, N> &in) {
  Plan<N> p;
  p.out = *in[0];
  for (size_t k = 1; k < N; ++k)
    p.out = broadcastStatic(ctx, p.out, *in[k]);
  p.numel = checkedNumel(p.out, 1, ctx.node().describe() + ": broadcast output");
  std::vector<int64_t> full[N];
  for (size_t k = 0; k < N; ++k)
    full[k] = broadcastStrides(*in[k], p.out);
  for (size_t d = 0; d < p.out.size(); ++d) {
    int64_t n = p.out[d];
    if (n == 1)
      continue;
    bool merge = !p.dims.empty();
    for (size_t k = 0; k < N && merge; ++k)
      merge = p.st[k].back() == full[k][d] * n;
    if (merge) {
      p.dims.back() *= n;
      for (size_t k = 0; k < N; ++k)
        p.st[k].back() = full[k][d];
    } else {
      p.dims.push_back(n);
      for (size_t k = 0; k < N; ++k)
        p.st[k].push_back(full[k][d]);
    }
  }
  if (p.dims.empty()) {
    p.dims.push_back(1);
    for (size_t k = 0; k < N; ++k)
      p.st[k].push_back(0);
  }
  return p;
}

/// Calls inner(outOffset, inOffsets[N], count, innerStrides[N]) for each inner run.
template <size_t N, class F> void runPlan(const Plan<N> &p, F &&inner) {
  if (p.numel == 0)
    return;
  const size_t m = p.dims.size();
  const int64_t n = p.dims[m - 1];
  int64_t s[N], off[N] = {};
  for (size_t k = 0; k < N; ++k)
    s[k] = p.st[k][m - 1];
  if (m == 1) {
    inner(int64_t(0), static_cast<const int64_t *>(off), n, static_cast<const int64_t *>(s));
    return;
  }
  std::vector<int64_t> idx(m - 1, 0);
  for (int64_t o = 0; o < p.numel; o += n) {
    inner(o, static_cast<const int64_t *>(off), n, static_cast<const int64_t *>(s));
    for (int64_t d = int64_t(m) - 2; d >= 0; --d) {
      for (size_t k = 0; k < N; ++k)
        off[k] += p.st[k][d];
      if (++idx[d] < p.dims[d])
        break;
      for (size_t k = 0; k < N; ++k)
        off[k] -= p.st[k][d] * p.dims[d];
      idx[d] = 0;
    }
  }
}

/// out = f(a, b) elementwise under numpy broadcasting (b viewed with shape bshape).
template <class TO, class TA, class TB, class F>
Tensor applyBinary(const AttrReader &ctx, const Tensor &a, const Tensor &b,
                   const std::vector<int64_t> &bshape, F &&f) {
  Plan<2> p = makePlan<2>(ctx, {&a.shape(), &bshape});
  Tensor out(dtypeOf<TO>, p.out);
  const TA *pa0 = a.data<TA>();
  const TB *pb0 = b.data<TB>();
  TO *py0 = out.data<TO>();
  runPlan(p, [&](int64_t o, const int64_t *off, int64_t n, const int64_t *s) {
    const TA *pa = pa0 + off[0];
    const TB *pb = pb0 + off[1];
    TO *py = py0 + o;
    if (s[0] == 1 && s[1] == 1) {
      for (int64_t j = 0; j < n; ++j)
        py[j] = TO(f(Calc<TA>(pa[j]), Calc<TB>(pb[j])));
    } else if (s[0] == 1 && s[1] == 0) {
      const Calc<TB> bv = Calc<TB>(pb[0]);
      for (int64_t j = 0; j < n; ++j)
        py[j] = TO(f(Calc<TA>(pa[j]), bv));
    } else if (s[0] == 0 && s[1] == 1) {
      const Calc<TA> av = Calc<TA>(pa[0]);
      for (int64_t j = 0; j < n; ++j)
        py[j] = TO(f(av, Calc<TB>(pb[j])));
    } else {
      for (int64_t j = 0; j < n; ++j)
        py[j] = TO(f(Calc<TA>(pa[j * s[0]]), Calc<TB>(pb[j * s[1]])));
    }
  });
  return out;
}

/// Opset < 7 "legacy" broadcast (attributes broadcast=1, axis): B's dims align with A's starting
/// at axis; returns B's shape padded with trailing 1s so numpy broadcasting gives the same result.
template <class D>
std::vector<D> legacyBShape(const AttrReader &ctx, size_t rankA, std::vector<D> b) {
  if (ctx.opset() >= 7 || ctx.attrInt("broadcast", 0) == 0 || !ctx.hasAttr("axis"))
    return b;
  int64_t ra = int64_t(rankA), rb = int64_t(b.size());
  int64_t axis = ctx.attrInt("axis");
  if (axis < 0)
    axis += ra;
  if (axis < 0 || axis + rb > ra)
    ctx.fail("legacy broadcast axis ", ctx.attrInt("axis"), " does not fit B (rank ", rb,
             ") into A (rank ", ra, ")");
  b.insert(b.end(), size_t(ra - axis - rb), D(1));
  return b;
}

Shape legacyBShape(const AttrReader &ctx, const Shape &a, const Shape &b) {
  if (ctx.opset() >= 7 || ctx.attrInt("broadcast", 0) == 0 || !ctx.hasAttr("axis"))
    return b;
  if (!a.rankKnown || !b.rankKnown)
    return Shape::unknownRank();
  return Shape(legacyBShape(ctx, a.dims.size(), b.dims));
}

DType knownDType(const InferContext &ctx, size_t i) {
  if (!ctx.hasInput(i))
    return DType::undefined;
  const Type &t = ctx.inputType(i);
  return t.isTensor() ? t.dtype : DType::undefined;
}

/// Inference of a binary op: broadcast shape; dtype of A (or bool); optionally A/B must agree.
InferFn inferBinary(bool boolOut, bool sameTypes = true) {
  return [=](InferContext &ctx) {
    DType da = knownDType(ctx, 0), db = knownDType(ctx, 1);
    if (sameTypes && da != DType::undefined && db != DType::undefined && da != db)
      ctx.fail("inputs A and B have different element types (", dtypeName(da), " and ",
               dtypeName(db), "), expected the same type");
    const Shape &sa = tensorShape(ctx, 0);
    Shape sb = legacyBShape(ctx, sa, tensorShape(ctx, 1));
    DType dt = boolOut ? DType::boolean : (da != DType::undefined || !sameTypes ? da : db);
    ctx.setOutputType(0, Type::tensor(dt, broadcastShapes(ctx, sa, sb)));
  };
}

InferFn inferUnary(DType out) {
  if (out == DType::undefined)
    return inferSameAs(0);
  return [out](InferContext &ctx) { ctx.setOutputType(0, Type::tensor(out, tensorShape(ctx, 0))); };
}

OpDef makeDef(std::string name, int since, int nin, int maxin, std::string dtypes) {
  OpDef d;
  d.name = std::move(name);
  d.sinceVersion = since;
  d.untilVersion = 17;
  d.minInputs = nin;
  d.maxInputs = maxin;
  d.minOutputs = d.maxOutputs = 1;
  d.dtypes = std::move(dtypes);
  return d;
}

//===----------------------------------------------------------------------===//
// Op builders
//===----------------------------------------------------------------------===//

/// A unary op: `mk(ctx)` returns the scalar function (a generic lambda on Calc<T>). The output
/// has the input's dtype, or bool when BoolOut.
template <unsigned Set, bool BoolOut = false, class Mk>
OpDef unaryOp(std::string name, int since, Mk mk) {
  OpDef d = makeDef(std::move(name), since, 1, 1, setListName(Set));
  d.infer = inferUnary(BoolOut ? DType::boolean : DType::undefined);
  d.kernel = unaryKernel<Set, setListName, BoolOut, false>(std::move(mk));
  d.pattern = OpPattern::ElemWise;
  return d;
}

void checkSameDType(const KernelContext &ctx, const Tensor &a, const Tensor &b, size_t ia,
                    size_t ib) {
  if (a.dtype() != b.dtype())
    ctx.fail("input ", ib, " has element type ", dtypeName(b.dtype()), " but input ", ia, " has ",
             dtypeName(a.dtype()), ", expected the same type");
}

/// A binary op with numpy broadcasting (and legacy opset<7 broadcast): both inputs of one dtype,
/// output of that dtype or bool.
template <unsigned Set, bool BoolOut = false, class Mk>
OpDef binaryOp(std::string name, int since, Mk mk) {
  OpDef d = makeDef(std::move(name), since, 2, 2, setListName(Set));
  d.infer = inferBinary(BoolOut);
  d.kernel = [mk](KernelContext &ctx) {
    const Tensor &a = ctx.input(0), &b = ctx.input(1);
    checkSameDType(ctx, a, b, 0, 1);
    std::vector<int64_t> bs = legacyBShape(ctx, a.shape().size(), b.shape());
    dispatchSet<Set>(ctx, a.dtype(), "input A", [&](auto t) {
      using T = decltype(t);
      using TO = std::conditional_t<BoolOut, bool, T>;
      ctx.setOutput(0, applyBinary<TO, T, T>(ctx, a, b, bs, mk(ctx)));
    });
  };
  d.pattern = OpPattern::Broadcast;
  return d;
}

/// Max/Min/Sum/Mean: 1..n inputs folded pairwise with broadcasting.
template <unsigned Set, class F> OpDef variadicOp(std::string name, F f, bool mean = false) {
  OpDef d = makeDef(std::move(name), 1, 1, 1 << 20, setListName(Set));
  d.infer = inferBroadcast();
  d.kernel = [f, mean](KernelContext &ctx) {
    const Tensor &first = ctx.input(0);
    for (size_t i = 1; i < ctx.numInputs(); ++i)
      checkSameDType(ctx, first, ctx.input(i), 0, i);
    dispatchSet<Set>(ctx, first.dtype(), "input 0", [&](auto t) {
      using T = decltype(t);
      Tensor acc = ctx.numInputs() == 1 ? first.clone()
                                        : applyBinary<T, T, T>(ctx, first, ctx.input(1),
                                                               ctx.input(1).shape(), f);
      for (size_t i = 2; i < ctx.numInputs(); ++i)
        acc = applyBinary<T, T, T>(ctx, acc, ctx.input(i), ctx.input(i).shape(), f);
      if (mean) {
        if constexpr ((setOf<T>() & kF) != 0) {
          const Calc<T> n = Calc<T>(ctx.numInputs());
          T *p = acc.data<T>();
          for (int64_t i = 0; i < acc.numel(); ++i)
            p[i] = T(Calc<T>(p[i]) / n);
        }
      }
      ctx.setOutput(0, std::move(acc));
    });
  };
  d.pattern = OpPattern::Broadcast;
  return d;
}

//===----------------------------------------------------------------------===//
// Pow
//===----------------------------------------------------------------------===//

template <class A, class B> A intPow(A base, B e) {
  if constexpr (std::is_signed_v<B>) {
    if (e < 0) {
      if (base == 1)
        return A(1);
      if constexpr (std::is_signed_v<A>)
        if (base == -1)
          return A((e & 1) ? -1 : 1);
      return A(0);
    }
  }
  uint64_t r = 1, b = uint64_t(int64_t(base));
  uint64_t n = uint64_t(e);
  while (n) {
    if (n & 1)
      r *= b;
    b *= b;
    n >>= 1;
  }
  return A(r);
}

template <class A, class B> A powScalar(A x, B y) {
  if constexpr (std::is_integral_v<A> && std::is_integral_v<B>)
    return intPow(x, y);
  else if constexpr (std::is_integral_v<A>)
    return convertElement<A>(std::pow(double(x), double(y))); // saturating, NaN -> 0
  else if constexpr (std::is_same_v<A, float> && std::is_same_v<B, float>)
    return std::pow(x, y);
  else
    return A(std::pow(double(x), double(y)));
}

void powKernel(KernelContext &ctx) {
  const Tensor &a = ctx.input(0), &b = ctx.input(1);
  std::vector<int64_t> bs = legacyBShape(ctx, a.shape().size(), b.shape());
  dispatchSet<kF | kSI>(ctx, a.dtype(), "base X", [&](auto ta) {
    using TA = decltype(ta);
    dispatchSet<kNum>(ctx, b.dtype(), "exponent Y", [&](auto tb) {
      using TB = decltype(tb);
      // x^2 (variance in LayerNorm decompositions): a multiply, exactly what pow gives.
      if constexpr ((setOf<TA>() & kF) != 0) {
        if (b.numel() == 1 && double(Calc<TB>(b.data<TB>()[0])) == 2.0) {
          ctx.setOutput(0, applyBinary<TA, TA, TB>(ctx, a, b, bs,
                                                   [](auto x, auto) { return x * x; }));
          return;
        }
      }
      ctx.setOutput(0, applyBinary<TA, TA, TB>(ctx, a, b, bs, [](auto x, auto y) {
                      return powScalar(x, y);
                    }));
    });
  });
}

//===----------------------------------------------------------------------===//
// Cast
//===----------------------------------------------------------------------===//

std::optional<DType> dtypeFromOnnxName(const std::string &s) {
  static const struct {
    const char *name;
    DType t;
  } names[] = {{"FLOAT", DType::f32},   {"FLOAT16", DType::f16}, {"BFLOAT16", DType::bf16},
               {"DOUBLE", DType::f64},  {"INT8", DType::i8},     {"UINT8", DType::u8},
               {"INT16", DType::i16},   {"UINT16", DType::u16},  {"INT32", DType::i32},
               {"UINT32", DType::u32},  {"INT64", DType::i64},   {"UINT64", DType::u64},
               {"BOOL", DType::boolean}, {"STRING", DType::string}};
  for (auto &n : names)
    if (s == n.name)
      return n.t;
  return std::nullopt;
}

/// The 'to' attribute of Cast: an int (TensorProto.DataType) since opset 6, a name in opset 1.
DType castTarget(const AttrReader &ctx) {
  const Attribute *a = ctx.node().attr("to");
  if (!a)
    ctx.fail("missing required attribute 'to'");
  if (a->kind == Attribute::Kind::String) {
    auto t = dtypeFromOnnxName(a->s);
    if (!t)
      ctx.fail("attribute 'to' names an unsupported type '", a->s, "'");
    return *t;
  }
  int64_t v = ctx.attrInt("to");
  auto t = dtypeFromOnnx(int(v));
  if (!t || *t == DType::undefined)
    ctx.fail("attribute 'to' is ", v, ", not a supported TensorProto data type");
  return *t;
}

/// numpy's str() of a float: the shortest digits that round-trip (given in scientific form),
/// positional for 1e-4 <= |value| < 1e16 ("0.5", "3.0"), scientific otherwise ("1e-05").
std::string numpyStyle(const char *sci, size_t len, double value) {
  std::string_view s(sci, len);
  std::string out;
  if (!s.empty() && s[0] == '-') {
    out.push_back('-');
    s.remove_prefix(1);
  }
  size_t e = s.find('e');
  int exp = e == std::string_view::npos ? 0 : std::atoi(std::string(s.substr(e + 1)).c_str());
  std::string digits;
  for (char c : s.substr(0, e))
    if (c != '.')
      digits.push_back(c);
  while (digits.size() > 1 && digits.back() == '0')
    digits.pop_back();
  const double mag = std::fabs(value);
  if (digits == "0") {
    out.append("0.0");
  } else if (mag < 1e-4 || mag >= 1e16) {
    out.push_back(digits[0]);
    if (digits.size() > 1) {
      out.push_back('.');
      out.append(digits, 1, std::string::npos);
    }
    char buf[16];
    std::snprintf(buf, sizeof buf, "e%c%02d", exp < 0 ? '-' : '+', std::abs(exp));
    out.append(buf);
  } else if (exp < 0) {
    out.append("0.");
    out.append(size_t(-exp - 1), '0');
    out.append(digits);
  } else if (int(digits.size()) <= exp + 1) {
    out.append(digits);
    out.append(size_t(exp + 1 - int(digits.size())), '0');
    out.append(".0");
  } else {
    out.append(digits, 0, size_t(exp + 1));
    out.push_back('.');
    out.append(digits, size_t(exp + 1), std::string::npos);
  }
  return out;
}

template <class T> std::string floatToString(T v) {
  double d = double(Calc<T>(v));
  if (std::isnan(d))
    return "nan";
  if (std::isinf(d))
    return d > 0 ? "inf" : "-inf";
  char buf[64];
  if constexpr (kIsHalf<T>) {
    // shortest precision that round-trips through the 16-bit format
    for (int p = 0; p < 17; ++p) {
      auto r = std::to_chars(buf, buf + sizeof buf, float(d), std::chars_format::scientific, p);
      T back = T(std::strtof(std::string(buf, r.ptr).c_str(), nullptr));
      if (back.bits == v.bits || p == 16)
        return numpyStyle(buf, size_t(r.ptr - buf), d);
    }
    return "";
  } else {
    auto r = std::to_chars(buf, buf + sizeof buf, v, std::chars_format::scientific);
    return numpyStyle(buf, size_t(r.ptr - buf), d);
  }
}

Tensor castTensor(const KernelContext &ctx, const Tensor &x, DType to) {
  if (x.dtype() == to)
    return x.clone();
  if (to == DType::string && x.dtype() != DType::string) {
    Tensor out(DType::string, x.shape());
    std::string *dst = out.data<std::string>();
    dispatchNumeric(x.dtype(), [&](auto t) {
      using T = decltype(t);
      const T *src = x.data<T>();
      for (int64_t i = 0; i < x.numel(); ++i) {
        if constexpr (std::is_same_v<T, bool>)
          dst[i] = src[i] ? "True" : "False";
        else if constexpr (std::is_integral_v<T>)
          dst[i] = std::to_string(src[i]);
        else
          dst[i] = floatToString(src[i]);
      }
    });
    return out;
  }
  if (to == DType::bf16 && (x.dtype() == DType::f32 || x.dtype() == DType::f64)) {
    // The ONNX test data (onnx <= 1.13) converts float -> bfloat16 by truncation.
    Tensor out(DType::bf16, x.shape());
    BFloat16 *dst = out.data<BFloat16>();
    dispatchFloat(x.dtype(), [&](auto t) {
      using T = decltype(t);
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
        const T *src = x.data<T>();
        for (int64_t i = 0; i < x.numel(); ++i) {
          float f = float(src[i]);
          uint32_t u;
          std::memcpy(&u, &f, 4);
          dst[i].bits = std::isnan(f) ? uint16_t((u >> 16) | 0x40) : uint16_t(u >> 16);
        }
      }
    });
    return out;
  }
  return x.cast(to);
}

//===----------------------------------------------------------------------===//
// Where / Clip
//===----------------------------------------------------------------------===//

void whereKernel(KernelContext &ctx) {
  const Tensor &c = ctx.input(0), &x = ctx.input(1), &y = ctx.input(2);
  if (c.dtype() != DType::boolean)
    ctx.fail("condition has element type ", dtypeName(c.dtype()), ", expected bool");
  checkSameDType(ctx, x, y, 1, 2);
  Plan<3> p = makePlan<3>(ctx, {&c.shape(), &x.shape(), &y.shape()});
  dispatchAll(x.dtype(), [&](auto t) {
    using T = decltype(t);
    Tensor out(x.dtype(), p.out);
    const bool *pc0 = c.data<bool>();
    const T *px0 = x.data<T>(), *py0 = y.data<T>();
    T *po0 = out.data<T>();
    runPlan(p, [&](int64_t o, const int64_t *off, int64_t n, const int64_t *s) {
      const bool *pc = pc0 + off[0];
      const T *px = px0 + off[1], *py = py0 + off[2];
      T *po = po0 + o;
      if (s[0] == 1 && s[1] == 1 && s[2] == 1) {
        for (int64_t j = 0; j < n; ++j)
          po[j] = pc[j] ? px[j] : py[j];
      } else {
        for (int64_t j = 0; j < n; ++j)
          po[j] = pc[j * s[0]] ? px[j * s[1]] : py[j * s[2]];
      }
    });
    ctx.setOutput(0, std::move(out));
  }, "input X");
}

void clipKernel(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  dispatchSet<kNum>(ctx, x.dtype(), "input", [&](auto t) {
    using T = decltype(t);
    using C = Calc<T>;
    C lo = std::numeric_limits<C>::lowest(), hi = std::numeric_limits<C>::max();
    if constexpr (std::is_floating_point_v<C>) {
      lo = -std::numeric_limits<C>::infinity();
      hi = std::numeric_limits<C>::infinity();
    }
    if (ctx.opset() < 11) {
      if (ctx.hasAttr("min"))
        lo = C(ctx.attrFloat("min"));
      if (ctx.hasAttr("max"))
        hi = C(ctx.attrFloat("max"));
    } else {
      auto bound = [&](size_t i, C &v, const char *what) {
        if (!ctx.hasInput(i))
          return;
        const Tensor &b = ctx.input(i);
        if (b.dtype() != x.dtype())
          ctx.fail(what, " has element type ", dtypeName(b.dtype()), ", expected ",
                   dtypeName(x.dtype()), " like the input");
        if (b.numel() != 1)
          ctx.fail(what, " should be a scalar, got shape ", b.shapeString());
        v = C(b.data<T>()[0]);
      };
      bound(1, lo, "min");
      bound(2, hi, "max");
    }
    Tensor y(x.dtype(), x.shape());
    const T *src = x.data<T>();
    T *dst = y.data<T>();
    for (int64_t i = 0; i < x.numel(); ++i) {
      C v = C(src[i]);
      v = v < lo ? lo : v;
      dst[i] = T(v > hi ? hi : v);
    }
    ctx.setOutput(0, std::move(y));
  });
}

} // namespace

//===----------------------------------------------------------------------===//
// Registration
//===----------------------------------------------------------------------===//

// --- lowerings of the Elementwise ops
// Each lowering is an elementwise TE compute with numpy broadcasting (lowering::lowerBroadcast);
// the scalar expression mirrors the reference kernel above (NaN propagation included).
namespace {

using loop::Expr;
using LoweredScalar = std::function<Expr(const LowerContext &, const std::vector<Expr> &)>;

Expr requireFloat(const LowerContext &ctx, const Expr &x) {
  ctx.check(x.type().isFloat(), "lowering handles float inputs only, got ",
            dtypeName(x.type().dtype));
  return x;
}
Expr isNaNExpr(const Expr &x) { return x != x; }
/// log(1 + u) without losing a tiny u (Kahan: log(w) * u / (w - 1) with w = 1 + u rounded,
/// exact where w - 1 is), inf for u = inf.
Expr log1pExpr(const Expr &u) {
  Expr w = u + 1.0;
  Expr inf = lowering::constant(u.type().dtype, std::numeric_limits<double>::infinity());
  return loop::select(w == 1.0, u, loop::select(w == inf, w, loop::log(w) * u / (w - 1.0)));
}
/// exp(x) - 1 without losing a tiny x (Kahan: (u - 1) * x / log(u) with u = exp(x)).
Expr expm1Expr(const Expr &x) {
  Expr u = loop::exp(x);
  Expr um1 = u - 1.0;
  return loop::select(u == 1.0, x, loop::select(um1 == -1.0, um1, um1 * x / loop::log(u)));
}
/// Cast's conversion, as castTensor: f32/f64 -> bf16 truncates (the ONNX test data's rule),
/// through f32 and the bf16_trunc intrinsic; the rest is the loop IR's cast.
Expr castLowered(const Expr &x, DType to) {
  const DType from = x.type().dtype;
  if (from == to)
    return x;
  if (to == DType::bf16 && (from == DType::f32 || from == DType::f64)) {
    Expr f = from == DType::f32 ? x : loop::cast(DType::f32, x);
    return loop::cast(to, loop::call("bf16_trunc", {f}));
  }
  return loop::cast(to, x);
}

Expr truncExpr(const Expr &x) { return loop::select(x < 0.0, loop::ceil(x), loop::floor(x)); }
/// An integer divisor of 0 would trap in generated code: divide by 1 instead (the result is
/// unspecified, as in C; the reference kernel reports the error).
Expr safeDivisor(const Expr &b) {
  if (b.type().isFloat())
    return b;
  return loop::select(b == 0, loop::makeOne(b.type()), b);
}

/// One lowering per elementwise op: out = f(ctx, broadcast inputs).
void lowerElementwise(LowerContext &ctx, const LoweredScalar &f) {
  lowering::lowerBroadcast(ctx, [&](const std::vector<Expr> &v) { return f(ctx, v); });
}

LowerFn elementwise(LoweredScalar f) {
  return [f](LowerContext &ctx) { lowerElementwise(ctx, f); };
}
LowerFn floatUnary(Expr (*fn)(const Expr &)) {
  return elementwise([fn](const LowerContext &c, const std::vector<Expr> &v) {
    return fn(requireFloat(c, v[0]));
  });
}

Expr clipLowered(const LowerContext &ctx, const std::vector<Expr> &v) {
  Expr x = v[0];
  Expr lo, hi;
  if (ctx.opset() < 11) {
    if (ctx.hasAttr("min"))
      lo = lowering::constant(x.type().dtype, ctx.attrFloat("min"));
    if (ctx.hasAttr("max"))
      hi = lowering::constant(x.type().dtype, ctx.attrFloat("max"));
  } else {
    for (size_t i : {size_t(1), size_t(2)}) {
      if (!ctx.hasInput(i))
        continue;
      std::vector<int64_t> s = ctx.inputShape(i);
      int64_t n = 1;
      for (int64_t d : s)
        n *= d;
      ctx.check(n == 1, i == 1 ? "min" : "max", " should be a scalar, got shape ",
                shapeToString(s));
      ctx.check(v[i].type() == x.type(), i == 1 ? "min" : "max", " has element type ",
                dtypeName(v[i].type().dtype), ", expected ", dtypeName(x.type().dtype));
      // a constant bound (the usual case: an initializer) becomes a literal
      const Tensor *c = ctx.inputConstant(i);
      (i == 1 ? lo : hi) = c ? lowering::constant(x.type().dtype, c->toDoubleVector()[0]) : v[i];
    }
  }
  // v < lo ? lo : v; then v > hi ? hi : v (NaN passes through like the reference kernel)
  if (lo.defined())
    x = loop::select(x < lo, lo, x);
  if (hi.defined())
    x = loop::select(x > hi, hi, x);
  return x;
}

Expr powLowered(const LowerContext &ctx, const std::vector<Expr> &v) {
  if (!v[0].type().isFloat()) {
    // integer base: exact in f64 for the values that fit; a negative exponent truncates to 0
    // (except bases 1 and -1) like the reference kernel
    Expr p = loop::pow(loop::cast(DType::f64, v[0]), loop::cast(DType::f64, v[1]));
    Expr t = loop::select(p < 0.0, loop::ceil(p - 0.5), loop::floor(p + 0.5));
    Expr frac = loop::select(p < 0.0, loop::ceil(p), loop::floor(p)); // |p| < 1: truncation
    return loop::cast(v[0].type(), loop::select(loop::fabs(p) < 1.0, frac, t));
  }
  Expr x = v[0];
  // A constant scalar exponent (LayerNorm's x**2, x**0.5, 1/x) becomes multiplies, a square
  // root or a division instead of a libm pow call per element:
  //   x**2 -> x*x (what the reference kernel computes), x**3 -> x*x*x (two roundings: within
  //   1.5 ulp of pow), x**1 -> x, x**0 -> 1 (also for NaN, as pow),
  //   x**-1 -> 1/x, x**0.5 -> sqrt(x) except pow(-0, 0.5) = +0 and
  //   pow(-inf, 0.5) = +inf (sqrt gives -0 and NaN there).
  if (const Tensor *c = ctx.inputConstant(1); c && c->numel() == 1) {
    const double y = c->toDoubleVector()[0];
    const Expr one = loop::makeOne(x.type());
    if (y == 2.0)
      return x * x;
    if (y == 3.0)
      return x * x * x;
    if (y == 1.0)
      return x;
    if (y == 0.0)
      return one;
    if (y == -1.0)
      return one / x;
    if (y == 0.5) {
      Expr zero = loop::makeZero(x.type());
      Expr inf = lowering::constant(x.type().dtype, std::numeric_limits<double>::infinity());
      return loop::select(x == zero, zero,
                          loop::select(x == -inf, inf, loop::sqrt(x)));
    }
  }
  Expr e = v[1].type() == x.type() ? v[1] : loop::cast(x.type(), v[1]);
  return loop::pow(x, e);
}

Expr modLowered(const LowerContext &ctx, const std::vector<Expr> &v) {
  Expr a = v[0], b = safeDivisor(v[1]);
  if (ctx.attrInt("fmod", 0) == 0)
    return a % b; // floor modulo: the sign of the divisor, like numpy.mod
  if (a.type().isFloat())
    return a - truncExpr(a / b) * b; // C fmod
  return a - lowering::truncDiv(a, b) * b;
}

Expr variadicFold(const std::vector<Expr> &v, const std::function<Expr(Expr, Expr)> &f) {
  Expr acc = v[0];
  for (size_t i = 1; i < v.size(); ++i)
    acc = f(acc, v[i]);
  return acc;
}

void attachElementwiseLowerings(OpRegistry &r) {
  // unary float math (the loop IR's intrinsics, or their textbook identities)
  r.setLower("Tanh", floatUnary([](const Expr &x) { return loop::tanh(x); }));
  r.setLower("Exp", floatUnary([](const Expr &x) { return loop::exp(x); }));
  r.setLower("Log", floatUnary([](const Expr &x) { return loop::log(x); }));
  r.setLower("Sqrt", floatUnary([](const Expr &x) { return loop::sqrt(x); }));
  r.setLower("Ceil", floatUnary([](const Expr &x) { return loop::ceil(x); }));
  r.setLower("Floor", floatUnary([](const Expr &x) { return loop::floor(x); }));
  r.setLower("Round", floatUnary([](const Expr &x) { return loop::round(x); })); // half to even
  r.setLower("Cos", floatUnary([](const Expr &x) { return loop::cos(x); }));
  r.setLower("Sin", floatUnary([](const Expr &x) { return loop::sin(x); }));
  r.setLower("Tan", floatUnary([](const Expr &x) { return loop::sin(x) / loop::cos(x); }));
  // The textbook identities, each written so that a tiny |x| keeps its digits (log1p / expm1
  // where the plain form cancels: atanh(1e-30) is 1e-30, not 0).
  r.setLower("Sinh", floatUnary([](const Expr &x) {
    Expr e = expm1Expr(x); // |x| < 1: (e + e / (e + 1)) / 2 has no cancellation
    return loop::select(loop::fabs(x) < 1.0, (e + e / (e + 1.0)) * 0.5,
                        (loop::exp(x) - loop::exp(-x)) * 0.5);
  }));
  r.setLower("Cosh", floatUnary([](const Expr &x) { return (loop::exp(x) + loop::exp(-x)) * 0.5; }));
  r.setLower("Asinh", floatUnary([](const Expr &x) {
    Expr a = loop::fabs(x);
    Expr small = log1pExpr(a + a * a / (loop::sqrt(a * a + 1.0) + 1.0));
    Expr large = loop::select(a > 1e8, loop::log(a) + 0.69314718055994530942, // a*a would overflow
                              loop::log(a + loop::sqrt(a * a + 1.0)));
    Expr y = loop::select(a < 1.0, small, large);
    return loop::select(a == 0.0, x, loop::select(x < 0.0, -y, y)); // asinh(-0) = -0
  }));
  r.setLower("Acosh", floatUnary([](const Expr &x) {
    Expr t = x - 1.0; // acosh(x) = log1p(t + sqrt(t * (t + 2))); sqrt(t) is NaN for x < 1
    return loop::select(x > 1e8, loop::log(x) + 0.69314718055994530942,
                        log1pExpr(t + loop::sqrt(t) * loop::sqrt(x + 1.0)));
  }));
  r.setLower("Atanh", floatUnary([](const Expr &x) { // 1 + x and 1 - x are exact for |x| >= 0.5
    return loop::select(loop::fabs(x) < 0.5, log1pExpr(x * 2.0 / (1.0 - x)),
                        loop::log((x + 1.0) / (1.0 - x))) * 0.5;
  }));
  // libm's asin/acos/atan (no LLVM intrinsic): what the reference kernel calls
  r.setLower("Asin", floatUnary([](const Expr &x) { return loop::asin(x); }));
  r.setLower("Acos", floatUnary([](const Expr &x) { return loop::acos(x); }));
  r.setLower("Atan", floatUnary([](const Expr &x) { return loop::atan(x); }));
  r.setLower("Reciprocal", floatUnary([](const Expr &x) { return 1.0 / x; }));
  r.setLower("Erf", floatUnary([](const Expr &x) { return loop::erf(x); }));
  r.setLower("IsNaN", floatUnary([](const Expr &x) { return isNaNExpr(x); }));
  r.setLower("IsInf", elementwise([](const LowerContext &c, const std::vector<Expr> &v) {
    Expr x = requireFloat(c, v[0]);
    Expr inf = loop::makeConst(x.type(), double(INFINITY));
    Expr pos = c.attrInt("detect_positive", 1) ? Expr(x == inf) : loop::makeBool(false);
    Expr neg = c.attrInt("detect_negative", 1) ? Expr(x == -inf) : loop::makeBool(false);
    return pos || neg;
  }));
  r.setLower("Abs", elementwise([](const LowerContext &, const std::vector<Expr> &v) {
    return v[0].type().isUInt() ? v[0] : loop::abs(v[0]);
  }));
  r.setLower("Neg", elementwise([](const LowerContext &, const std::vector<Expr> &v) { return -v[0]; }));
  r.setLower("Sign", elementwise([](const LowerContext &, const std::vector<Expr> &v) {
    Expr x = v[0], zero = loop::makeZero(x.type()), one = loop::makeOne(x.type());
    if (x.type().isUInt())
      return loop::select(x > zero, one, zero);
    return loop::select(x > zero, one, loop::select(x < zero, -one, zero));
  }));
  r.setLower("Not", elementwise([](const LowerContext &, const std::vector<Expr> &v) { return !v[0]; }));

  // binary arithmetic (integers wrap; integer Div truncates toward zero like the reference)
  r.setLower("Add", elementwise([](const LowerContext &, const std::vector<Expr> &v) { return v[0] + v[1]; }));
  r.setLower("Sub", elementwise([](const LowerContext &, const std::vector<Expr> &v) { return v[0] - v[1]; }));
  r.setLower("Mul", elementwise([](const LowerContext &, const std::vector<Expr> &v) { return v[0] * v[1]; }));
  r.setLower("Div", elementwise([](const LowerContext &, const std::vector<Expr> &v) {
    return lowering::truncDiv(v[0], safeDivisor(v[1]));
  }));
  r.setLower("Mod", elementwise(modLowered));
  // unsigned shifts; an amount >= the bit width gives 0 (the loop IR's shl/shr define it so,
  // as the reference kernel does)
  r.setLower("BitShift", elementwise([](const LowerContext &c, const std::vector<Expr> &v) {
    c.check(v[0].type().isUInt(), "lowering of BitShift handles unsigned integers only, got ",
            dtypeName(v[0].type().dtype));
    std::string dir = c.attrString("direction");
    c.check(dir == "LEFT" || dir == "RIGHT", "attribute 'direction' is '", dir,
            "', expected LEFT or RIGHT");
    return dir == "LEFT" ? loop::shl(v[0], v[1]) : loop::shr(v[0], v[1]);
  }));
  r.setLower("Pow", elementwise(powLowered));

  // logic and comparison
  r.setLower("And", elementwise([](const LowerContext &, const std::vector<Expr> &v) { return v[0] && v[1]; }));
  r.setLower("Or", elementwise([](const LowerContext &, const std::vector<Expr> &v) { return v[0] || v[1]; }));
  r.setLower("Xor", elementwise([](const LowerContext &, const std::vector<Expr> &v) { return v[0] != v[1]; }));
  r.setLower("Equal", elementwise([](const LowerContext &, const std::vector<Expr> &v) { return v[0] == v[1]; }));
  r.setLower("Greater", elementwise([](const LowerContext &, const std::vector<Expr> &v) { return v[0] > v[1]; }));
  r.setLower("GreaterOrEqual", elementwise([](const LowerContext &, const std::vector<Expr> &v) { return v[0] >= v[1]; }));
  r.setLower("Less", elementwise([](const LowerContext &, const std::vector<Expr> &v) { return v[0] < v[1]; }));
  r.setLower("LessOrEqual", elementwise([](const LowerContext &, const std::vector<Expr> &v) { return v[0] <= v[1]; }));

  // variadic (NaN propagates through Max/Min like numpy.maximum/minimum)
  r.setLower("Max", elementwise([](const LowerContext &, const std::vector<Expr> &v) {
    return variadicFold(v, [](Expr x, Expr y) {
      Expr take = x > y;
      if (x.type().isFloat())
        take = take || isNaNExpr(x);
      return loop::select(take, x, y);
    });
  }));
  r.setLower("Min", elementwise([](const LowerContext &, const std::vector<Expr> &v) {
    return variadicFold(v, [](Expr x, Expr y) {
      Expr take = x < y;
      if (x.type().isFloat())
        take = take || isNaNExpr(x);
      return loop::select(take, x, y);
    });
  }));
  r.setLower("Sum", elementwise([](const LowerContext &c, const std::vector<Expr> &v) {
    return variadicFold(v, [](Expr x, Expr y) { return x + y; });
  }));
  r.setLower("Mean", elementwise([](const LowerContext &c, const std::vector<Expr> &v) {
    Expr s = variadicFold(v, [](Expr x, Expr y) { return x + y; });
    return s / loop::makeConst(s.type(), double(v.size()));
  }));

  r.setLower("Where", elementwise([](const LowerContext &, const std::vector<Expr> &v) {
    return loop::select(v[0], v[1], v[2]);
  }));
  r.setLower("Clip", elementwise(clipLowered));
  r.setLower("Cast", elementwise([](const LowerContext &c, const std::vector<Expr> &v) {
    DType to = c.outputDType(0);
    lowering::checkDType(c, to, "Cast target");
    return castLowered(v[0], to);
  }));
  r.setLower("CastLike", [](LowerContext &ctx) {
    DType to = ctx.outputDType(0);
    lowering::checkDType(ctx, to, "CastLike target");
    std::vector<int64_t> out = ctx.outputShape(0);
    te::Tensor x = ctx.input(0);
    ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<loop::Var> iv) {
      return castLowered(x.access(std::vector<Expr>(iv.begin(), iv.end())), to);
    }));
  });
}

} // namespace
// --- end of the Elementwise lowerings

void registerElementwiseOps(OpRegistry &r) {
  // --- unary math on float types
  r.add(unaryOp<kF>("Acos", 7, plain([](auto x) { return std::acos(x); })));
  r.add(unaryOp<kF>("Acosh", 9, plain([](auto x) { return std::acosh(x); })));
  r.add(unaryOp<kF>("Asin", 7, plain([](auto x) { return std::asin(x); })));
  r.add(unaryOp<kF>("Asinh", 9, plain([](auto x) { return std::asinh(x); })));
  r.add(unaryOp<kF>("Atan", 7, plain([](auto x) { return std::atan(x); })));
  r.add(unaryOp<kF>("Atanh", 9, plain([](auto x) { return std::atanh(x); })));
  r.add(unaryOp<kF>("Cos", 7, plain([](auto x) { return std::cos(x); })));
  r.add(unaryOp<kF>("Cosh", 9, plain([](auto x) { return std::cosh(x); })));
  r.add(unaryOp<kF>("Sin", 7, plain([](auto x) { return std::sin(x); })));
  r.add(unaryOp<kF>("Sinh", 9, plain([](auto x) { return std::sinh(x); })));
  r.add(unaryOp<kF>("Tan", 7, plain([](auto x) { return std::tan(x); })));
  r.add(unaryOp<kF>("Tanh", 1, plain([](auto x) { return std::tanh(x); })));
  r.add(unaryOp<kF>("Exp", 1, plain([](auto x) { return std::exp(x); })));
  r.add(unaryOp<kF>("Log", 1, plain([](auto x) { return std::log(x); })));
  r.add(unaryOp<kF>("Sqrt", 1, plain([](auto x) { return std::sqrt(x); })));
  r.add(unaryOp<kF>("Ceil", 1, plain([](auto x) { return std::ceil(x); })));
  r.add(unaryOp<kF>("Floor", 1, plain([](auto x) { return std::floor(x); })));
  // round half to even (the default rounding mode)
  r.add(unaryOp<kF>("Round", 11, plain([](auto x) { return std::nearbyint(x); })));
  r.add(unaryOp<kF>("Reciprocal", 1, plain([](auto x) { return decltype(x)(1) / x; })));
  r.add(unaryOp<kNum>("Erf", 9, plain([](auto x) { return std::erf(x); })));
  // --- unary on numbers
  r.add(unaryOp<kNum>("Abs", 1, plain([](auto x) {
    using C = decltype(x);
    if constexpr (std::is_unsigned_v<C>)
      return x;
    else if constexpr (std::is_integral_v<C>)
      return x < 0 ? wrapNeg(x) : x;
    else
      return std::fabs(x);
  })));
  r.add(unaryOp<kF | kSI>("Neg", 1, plain([](auto x) { return wrapNeg(x); })));
  r.add(unaryOp<kNum>("Sign", 9, plain([](auto x) {
    using C = decltype(x);
    return x > C(0) ? C(1) : x < C(0) ? C(-1) : x; // NaN stays NaN
  })));
  // --- predicates
  r.add(unaryOp<kB>("Not", 1, plain([](bool x) { return !x; })));
  r.add(unaryOp<kF, true>("IsNaN", 9, plain([](auto x) { return std::isnan(x); })));
  r.add(unaryOp<kF, true>("IsInf", 10, [](const KernelContext &ctx) {
    bool neg = ctx.attrInt("detect_negative", 1) != 0, pos = ctx.attrInt("detect_positive", 1) != 0;
    return [neg, pos](auto x) { return std::isinf(x) && (x > 0 ? pos : neg); };
  }));

  // --- binary arithmetic
  r.add(binaryOp<kNum>("Add", 1, plain([](auto x, auto y) { return wrapAdd(x, y); })));
  r.add(binaryOp<kNum>("Sub", 1, plain([](auto x, auto y) { return wrapSub(x, y); })));
  r.add(binaryOp<kNum>("Mul", 1, plain([](auto x, auto y) { return wrapMul(x, y); })));
  r.add(binaryOp<kNum>("Div", 1, [](const KernelContext &ctx) {
    return [&ctx](auto x, auto y) {
      using C = decltype(x);
      if constexpr (std::is_integral_v<C>) {
        if (y == 0)
          ctx.fail("integer division by zero");
        if constexpr (std::is_signed_v<C>)
          if (y == C(-1))
            return wrapNeg(x); // INT_MIN / -1 wraps instead of trapping
        return C(x / y); // truncates toward zero like C
      } else {
        return C(x / y);
      }
    };
  }));
  {
    OpDef d = binaryOp<kNum>("Mod", 10, [](const KernelContext &ctx) {
      bool cmod = ctx.attrInt("fmod", 0) != 0;
      return [&ctx, cmod](auto x, auto y) {
        using C = decltype(x);
        if constexpr (std::is_integral_v<C>) {
          if (y == 0)
            ctx.fail("integer modulo by zero");
          if constexpr (std::is_signed_v<C>) {
            if (y == C(-1))
              return C(0);
            C r = C(x % y);
            if (!cmod && r != 0 && ((r < 0) != (y < 0)))
              r = C(r + y);
            return r;
          } else {
            return C(x % y);
          }
        } else {
          C r = std::fmod(x, y);
          if (!cmod && r != 0 && ((r < 0) != (y < 0)))
            r += y; // sign of the divisor, like numpy's mod
          return r;
        }
      };
    });
    d.notes = "fmod=0 on floats follows numpy.mod";
    r.add(std::move(d));
  }
  {
    OpDef d = makeDef("Pow", 1, 2, 2, "base: float types, int32, int64; exponent: all numeric");
    d.infer = inferBinary(false, false);
    d.kernel = powKernel;
    d.notes = "integer base with negative integer exponent gives 0 (except bases 1 and -1)";
    d.pattern = OpPattern::Broadcast;
    r.add(std::move(d));
  }
  r.add(binaryOp<kUI>("BitShift", 11, [](const KernelContext &ctx) {
    std::string dir = ctx.attrString("direction");
    if (dir != "LEFT" && dir != "RIGHT")
      ctx.fail("attribute 'direction' is '", dir, "', expected LEFT or RIGHT");
    bool left = dir == "LEFT";
    return [left](auto x, auto y) {
      using C = decltype(x);
      if (y >= C(sizeof(C) * 8))
        return C(0);
      return left ? C(x << y) : C(x >> y);
    };
  }));

  // --- logic and comparison
  r.add(binaryOp<kB>("And", 1, plain([](bool x, bool y) { return x && y; })));
  r.add(binaryOp<kB>("Or", 1, plain([](bool x, bool y) { return x || y; })));
  r.add(binaryOp<kB>("Xor", 1, plain([](bool x, bool y) { return x != y; })));
  r.add(binaryOp<kAllNum, true>("Equal", 1, plain([](auto x, auto y) { return x == y; })));
  r.add(binaryOp<kNum, true>("Greater", 1, plain([](auto x, auto y) { return x > y; })));
  r.add(binaryOp<kNum, true>("GreaterOrEqual", 12, plain([](auto x, auto y) { return x >= y; })));
  r.add(binaryOp<kNum, true>("Less", 1, plain([](auto x, auto y) { return x < y; })));
  r.add(binaryOp<kNum, true>("LessOrEqual", 12, plain([](auto x, auto y) { return x <= y; })));

  // --- variadic (NaN propagates through Max/Min like numpy.maximum/minimum)
  r.add(variadicOp<kNum>("Max", [](auto x, auto y) { return (x > y || isNaN(x)) ? x : y; }));
  r.add(variadicOp<kNum>("Min", [](auto x, auto y) { return (x < y || isNaN(x)) ? x : y; }));
  r.add(variadicOp<kF>("Sum", [](auto x, auto y) { return x + y; }));
  r.add(variadicOp<kF>("Mean", [](auto x, auto y) { return x + y; }, true));

  // --- Where
  {
    OpDef d = makeDef("Where", 9, 3, 3, "all types (condition: bool)");
    d.infer = [](InferContext &ctx) {
      DType dx = knownDType(ctx, 1), dy = knownDType(ctx, 2);
      if (dx != DType::undefined && dy != DType::undefined && dx != dy)
        ctx.fail("inputs X and Y have different element types (", dtypeName(dx), " and ",
                 dtypeName(dy), ")");
      Shape s = broadcastShapes(ctx, tensorShape(ctx, 0), tensorShape(ctx, 1));
      s = broadcastShapes(ctx, s, tensorShape(ctx, 2));
      ctx.setOutputType(0, Type::tensor(dx != DType::undefined ? dx : dy, s));
    };
    d.kernel = whereKernel;
    d.pattern = OpPattern::Broadcast;
    r.add(std::move(d));
  }
  // --- Clip
  {
    OpDef d = makeDef("Clip", 1, 1, 3, setListName(kNum));
    d.infer = inferSameAs(0);
    d.kernel = clipKernel;
    d.notes = "min/max attributes before opset 11, optional scalar inputs from 11";
    d.pattern = OpPattern::ElemWise;
    r.add(std::move(d));
  }
  // --- Cast / CastLike
  {
    OpDef d = makeDef("Cast", 1, 1, 1, "all types including string");
    d.infer = [](InferContext &ctx) {
      ctx.setOutputType(0, Type::tensor(castTarget(ctx), tensorShape(ctx, 0)));
    };
    d.kernel = [](KernelContext &ctx) {
      ctx.setOutput(0, castTensor(ctx, ctx.input(0), castTarget(ctx)));
    };
    d.notes = "float->string prints like numpy str(); float->bfloat16 truncates (as the ONNX "
              "test data does)";
    d.pattern = OpPattern::ElemWise;
    r.add(std::move(d));
  }
  {
    OpDef d = makeDef("CastLike", 15, 2, 2, "all types including string");
    d.infer = [](InferContext &ctx) {
      ctx.setOutputType(0, Type::tensor(knownDType(ctx, 1), tensorShape(ctx, 0)));
    };
    d.kernel = [](KernelContext &ctx) {
      ctx.setOutput(0, castTensor(ctx, ctx.input(0), ctx.input(1).dtype()));
    };
    d.notes = "as Cast";
    d.pattern = OpPattern::ElemWise;
    r.add(std::move(d));
  }
  attachElementwiseLowerings(r);
}

} // namespace tessel
