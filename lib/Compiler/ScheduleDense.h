//===- ScheduleDense.h - register-tiled contractions (private) -*- C++ -*-===//
//
// The schedule of MatMul/Gemm-like reduction stages in a fused kernel (docs/compile.md,
// "Dense, reductions and overhead"): out[..., r, ..., j] = sum_k a(.., k) * b(.., k, j).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "Schedule.h"

#include <string>

namespace tessel::compiler {

/// Schedules `st` as a register-tiled contraction when it is one: an f32 sum over one constant
/// reduction axis k of a body whose loads that use the innermost data axis j do not use some
/// other data axis r (the rows: what a MatMul's A indexes and its B does not, its batch axis
/// too when B is shared). The loop nest is
///
///   [extent-1 axes, (other data axes, j / nr) fused and parallel, r / mr, k,
///    r % mr (unrolled), j % nr (vectorized)]
///
/// with an mr x nr tile of the output accumulated in registers across k (mr broadcasts of A
/// and nr / lanes vector loads of B per k step). With >= 2 row tiles, the K x nr panel of B
/// (the tensor the loads using j read) is copied into a contiguous local buffer inside the
/// panel loop (cache_read on `s`, computed at the panel loop). Without a row axis (a
/// matrix-vector product), j is tiled by up to 4 vectors: 4 independent accumulator chains.
/// Returns false (and changes nothing) when the stage is not such a contraction or its columns
/// do not tile without a remainder; `desc` gets "dense MRxNR[ packedB[ prefetched]][ parallel]" on
/// success (prefetched: B of kStreamedWeightBytes or more, its rows prefetched 16 ahead).
bool scheduleContraction(te::Schedule &s, te::Stage st, const ScheduleConfig &config,
                         std::string &desc);

} // namespace tessel::compiler
