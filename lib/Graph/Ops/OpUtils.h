//===- OpUtils.h - helpers shared by op families (private) ------*- C++ -*-===//
#pragma once

#include "tessel/Graph/OpRegistry.h"

#include <cmath>
#include <cstring>
#include <limits>
#include <string>
#include <type_traits>
#include <vector>

namespace tessel {

// One registration function per op family file; OpRegistry.cpp calls them all.
#define TESSEL_OP_FAMILIES(X)                                                                      \
  X(Elementwise)                                                                                   \
  X(Activation)                                                                                    \
  X(Reduction)                                                                                     \
  X(Normalization)                                                                                 \
  X(TensorManip)                                                                                   \
  X(Indexing)                                                                                      \
  X(NN)                                                                                            \
  X(Image)                                                                                         \
  X(Quantized)                                                                                     \
  X(Recurrent)                                                                                     \
  X(ControlFlow)                                                                                   \
  X(Sequence)                                                                                      \
  X(Signal)                                                                                        \
  X(Text)                                                                                          \
  X(Random)                                                                                        \
  X(Layout)
#define TESSEL_DECLARE_FAMILY(F) void register##F##Ops(OpRegistry &r);
TESSEL_OP_FAMILIES(TESSEL_DECLARE_FAMILY)
#undef TESSEL_DECLARE_FAMILY

/// axis in [-rank, rank) -> [0, rank); an Error naming the node otherwise.
int64_t normalizeAxis(const AttrReader &ctx, int64_t axis, int64_t rank, const char *what = "axis");

/// a * b for sizes and dims from a model; an Error naming the node and `what` when the product
/// overflows int64 (hostile attributes such as blocksize = 2^40 must not wrap around to 0).
int64_t checkedMul(const AttrReader &ctx, int64_t a, int64_t b, const char *what);

/// The most dims inference tracks one by one for an output whose rank comes from the model (the
/// static length of a shape or axes input); beyond it the rank is left unknown.
inline constexpr int64_t kMaxTrackedRank = 4096;

/// Shape::unknownDims(rank), or an unknown rank when rank is negative or over kMaxTrackedRank: a
/// shape input declared with 2^32 elements must not make inference allocate 2^32 Dims.
Shape unknownDimsOrRank(int64_t rank);

/// Row-major strides of a static shape.
std::vector<int64_t> stridesOf(const std::vector<int64_t> &shape);

/// Numpy-style (multidirectional) broadcast of static shapes; Error naming the node on mismatch.
std::vector<int64_t> broadcastStatic(const AttrReader &ctx, const std::vector<int64_t> &a,
                                     const std::vector<int64_t> &b);
/// Broadcast of possibly symbolic/unknown shapes (for inference).
Shape broadcastShapes(const AttrReader &ctx, const Shape &a, const Shape &b);

/// Strides of `in` viewed as broadcast to `out` (0 where broadcast), length out.size().
std::vector<int64_t> broadcastStrides(const std::vector<int64_t> &in, const std::vector<int64_t> &out);

/// Calls f(outIndex, const int64_t *inIndex) for each element of `out`, where inIndex[k] is the
/// flat index into input k under numpy broadcasting of `ins` to `out`.
template <size_t N, class F>
void forEachBroadcast(const std::vector<int64_t> &out, const std::vector<int64_t> (&ins)[N], F &&f) {
  const int64_t rank = int64_t(out.size());
  std::vector<int64_t> strides[N];
  for (size_t k = 0; k < N; ++k)
    strides[k] = broadcastStrides(ins[k], out);
  int64_t total = 1;
  for (int64_t d : out)
    total *= d;
  if (total == 0)
    return;
  std::vector<int64_t> idx(rank, 0);
  int64_t in[N] = {};
  const int64_t inner = rank ? out[rank - 1] : 1;
  for (int64_t o = 0; o < total; o += inner) {
    for (int64_t j = 0; j < inner; ++j) {
      int64_t cur[N];
      for (size_t k = 0; k < N; ++k)
        cur[k] = in[k] + (rank ? j * strides[k][rank - 1] : 0);
      f(o + j, static_cast<const int64_t *>(cur));
    }
    // advance the outer index (all dims but the last)
    for (int64_t d = rank - 2; d >= 0; --d) {
      ++idx[d];
      for (size_t k = 0; k < N; ++k)
        in[k] += strides[k][d];
      if (idx[d] < out[d])
        break;
      for (size_t k = 0; k < N; ++k)
        in[k] -= strides[k][d] * out[d];
      idx[d] = 0;
    }
  }
}

// Inference helpers for the common cases.
/// Output i has the type of input `from`.
InferFn inferSameAs(size_t from = 0);
/// Output 0 is the broadcast of all (present) inputs; dtype of input 0, or `outType` if given.
InferFn inferBroadcast(DType outType = DType::undefined);

/// Shape of a Type that must be a tensor (error naming the node and input otherwise).
const Shape &tensorShape(const InferContext &ctx, size_t input);

//===----------------------------------------------------------------------===//
// Data movement
//===----------------------------------------------------------------------===//

/// Calls f(T{}) with T an unsigned integer of the element size, or std::string.
template <class F> decltype(auto) dispatchBytes(const AttrReader &ctx, DType dt, F &&f) {
  if (dt == DType::string)
    return f(std::string{});
  switch (dt == DType::undefined ? 0 : dtypeSize(dt)) {
  case 1: return f(uint8_t{});
  case 2: return f(uint16_t{});
  case 4: return f(uint32_t{});
  case 8: return f(uint64_t{});
  default: break;
  }
  ctx.fail("unsupported element type ", dtypeName(dt));
}

/// The tensor's storage as T (no dtype check: for the size-keyed types of dispatchBytes).
template <class T> T *ptr(Tensor &t) { return static_cast<T *>(t.raw()); }
template <class T> const T *ptr(const Tensor &t) { return static_cast<const T *>(t.raw()); }

/// Copies n elements src -> dst (memcpy for trivially copyable T).
template <class T> void copyRun(T *dst, const T *src, int64_t n) {
  if constexpr (std::is_trivially_copyable_v<T>) {
    if (n > 0)
      std::memcpy(dst, src, size_t(n) * sizeof(T));
  } else {
    for (int64_t i = 0; i < n; ++i)
      dst[i] = src[i];
  }
}

/// Copies n elements src[srcOff..] -> dst[dstOff..] (same dtype; strings are copied as strings).
void copyElems(Tensor &dst, int64_t dstOff, const Tensor &src, int64_t srcOff, int64_t n);

/// Product of v[from, to) (clamped to v's size; 1 when empty).
int64_t product(const std::vector<int64_t> &v, size_t from = 0, size_t to = size_t(-1));

//===----------------------------------------------------------------------===//
// Inference helpers
//===----------------------------------------------------------------------===//

/// dtype of input i when it is a tensor, undefined otherwise.
DType inDType(const InferContext &ctx, size_t i);

/// Dims equal in a and b are kept, others unknown; unknown rank unless both ranks are equal.
Shape mergeShapes(const Shape &a, const Shape &b);

//===----------------------------------------------------------------------===//
// Element-type sets (for pointwise ops)
//===----------------------------------------------------------------------===//

template <class T>
inline constexpr bool kIsHalf = std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>;
/// The type a scalar function computes in: float for f16/bf16, the type itself otherwise.
template <class T> using Calc = std::conditional_t<kIsHalf<T>, float, T>;

enum : unsigned {
  kF = 1,  // f16, bf16, f32, f64
  kSI = 2, // signed integers
  kUI = 4, // unsigned integers
  kB = 8,  // bool
  kInt = kSI | kUI,
  kNum = kF | kSI | kUI,
  kAllNum = kNum | kB,
};

template <class T> constexpr unsigned setOf() {
  if constexpr (std::is_same_v<T, bool>)
    return kB;
  else if constexpr (kIsHalf<T> || std::is_floating_point_v<T>)
    return kF;
  else if constexpr (std::is_signed_v<T>)
    return kSI;
  else
    return kUI;
}

/// Names a set of categories for messages and docs.
using SetNameFn = std::string (*)(unsigned);
/// "float types, signed integers, unsigned integers, bool" (the categories in the set).
std::string setListName(unsigned s);

/// Calls f(T{}) for the C++ type of dt when its category is in Set; an Error (naming the set with
/// Name) otherwise.
template <unsigned Set, SetNameFn Name = setListName, class F>
void dispatchSet(const AttrReader &ctx, DType dt, const char *what, F &&f) {
  if (dt == DType::string || dt == DType::undefined)
    ctx.fail(what, " has element type ", dtypeName(dt), ", expected ", Name(Set));
  dispatchNumeric(dt, [&](auto t) {
    using T = decltype(t);
    if constexpr ((setOf<T>() & Set) != 0)
      f(t);
    else
      ctx.fail(what, " has element type ", dtypeName(dt), ", expected ", Name(Set));
  });
}

/// Converts a computed value back to T: saturating (NaN -> 0) for integers.
template <class T, class V> T toElem(V v) {
  if constexpr (std::is_integral_v<T> && std::is_floating_point_v<V>) {
    if (std::isnan(v))
      return T(0);
    if (v >= V(std::numeric_limits<T>::max()))
      return std::numeric_limits<T>::max();
    if (v <= V(std::numeric_limits<T>::lowest()))
      return std::numeric_limits<T>::lowest();
    return T(v);
  } else {
    return T(v);
  }
}

/// The unary driver: `mk(ctx)` returns the scalar function (a generic lambda on Calc<T>), applied
/// to every element of input 0. The output has the input's dtype, or bool when BoolOut; results
/// are converted with toElem (saturating) when Saturate, a plain conversion otherwise.
template <unsigned Set, SetNameFn Name, bool BoolOut, bool Saturate, class Mk>
KernelFn unaryKernel(Mk mk) {
  return [mk](KernelContext &ctx) {
    const Tensor &x = ctx.input(0);
    dispatchSet<Set, Name>(ctx, x.dtype(), "input", [&](auto t) {
      using T = decltype(t);
      using TO = std::conditional_t<BoolOut, bool, T>;
      auto f = mk(ctx);
      Tensor y(dtypeOf<TO>, x.shape());
      const T *src = x.data<T>();
      TO *dst = y.data<TO>();
      const int64_t n = x.numel();
      for (int64_t i = 0; i < n; ++i) {
        if constexpr (Saturate)
          dst[i] = toElem<TO>(f(Calc<T>(src[i])));
        else
          dst[i] = TO(f(Calc<T>(src[i])));
      }
      ctx.setOutput(0, std::move(y));
    });
  };
}

/// Wraps an attribute-free scalar function as a factory (for unaryKernel's mk).
template <class F> auto plain(F f) {
  return [f](const KernelContext &) { return f; };
}

} // namespace tessel
