//===- OpUtils.h - helpers shared by op families (private) ------*- C++ -*-===//
#pragma once

#include "tessel/Graph/OpRegistry.h"

#include <cmath>
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
  X(Random)
#define TESSEL_DECLARE_FAMILY(F) void register##F##Ops(OpRegistry &r);
TESSEL_OP_FAMILIES(TESSEL_DECLARE_FAMILY)
#undef TESSEL_DECLARE_FAMILY

/// axis in [-rank, rank) -> [0, rank); an Error naming the node otherwise.
int64_t normalizeAxis(const AttrReader &ctx, int64_t axis, int64_t rank, const char *what = "axis");

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

} // namespace tessel
