//===- Schedule.h - default schedules of a fused kernel (private) -*- C++ -*-===//
//
// The compiler's first, simple schedules (docs/compile.md): every stage of a kernel that is
// neither an output nor a reduction is inlined into its readers; reductions (Conv, MatMul,
// pooling, Softmax's max/sum, ...) stay root stages, allocated inside the kernel; each root
// stage gets fused outer data axes run in parallel when there is enough work, and its
// innermost data axis split by the vector width with the inner part vectorized (inside the
// reduction loops for a reduction; LoopPartition handles the tail).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/TE/Schedule.h"

#include <string>
#include <vector>

namespace tessel::compiler {

struct ScheduleConfig {
  bool parallel = true;
  bool vectorize = true;
  /// Reductions too: the innermost data axis, split by the vector width, moves inside the
  /// reduction loops and is vectorized.
  bool vectorizeReductions = true;
  /// MatMul/Gemm-like reductions get the register-tiled contraction schedule
  /// (ScheduleDense.h) where it applies.
  bool denseContractions = true;
  /// Lanes of a vector of 32-bit floats on the target (16 with AVX-512, 8 with AVX2, 4 SSE).
  int64_t vectorLanesF32 = 8;
  /// A root stage runs its outer loop in parallel when it does at least this many inner
  /// iterations in total (output elements x reduction extent) and the outer loop has >= 2.
  int64_t minParallelWork = 1 << 15;
};

/// Weights of at least this many bytes do not stay in L2 (1-2 MiB) from one inference to the
/// next: the conv and dense schedules prefetch them as they stream (te::Stage::prefetch).
constexpr int64_t kStreamedWeightBytes = 512 << 10;

/// The extent of an axis when it is a constant, else -1.
int64_t constExtent(const te::IterVar &iv);
/// A tensor's shape, -1 for each dimension that is not a constant.
std::vector<int64_t> constShape(const te::Tensor &t);
/// The bytes of a tensor of constant shape; 0 when a dimension is not constant.
int64_t constBytes(const te::Tensor &t);

/// Applies the default schedule to every stage of `s` (the schedule of one kernel's outputs).
/// Returns a short description ("inline 3, root 2, parallel 2, vectorized 1").
std::string applyDefaultSchedule(te::Schedule &s, const ScheduleConfig &config);

} // namespace tessel::compiler
