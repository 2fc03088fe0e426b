//===- ScheduleAttention.h - attention as one kernel (private) -*- C++ -*-===//
//
// The schedule of the attention group FuseOps forms (docs/fusion.md): O = softmax(S) V with
// S = Q K^T (through elementwise scale/mask nodes), all in one kernel, block of query rows by
// block, so that the scores of a block (mr rows x the key length) stay in L1 between the two
// contractions instead of going through memory twice per stage:
//
//   O:        [(batch, i / mr) fused, parallel | d / nr | j | i % mr (unrolled), d % nr (vector)]
//   at O's parallel loop, over the block's mr rows:
//     S:        [j / nr | k | i (mr, unrolled), j % nr (vector)]      the 8x32 register tile
//     Softmax:  its max/sum partials, exp(x - max) and the normalized P, each row-wise with the
//               row's last axis vectorized (the elementwise nodes between S and the Softmax are
//               inlined)
//
//===----------------------------------------------------------------------===//
#pragma once

#include "Schedule.h"

#include <string>
#include <vector>

namespace tessel::compiler {

/// Schedules `s` as above when its output is the second MatMul of an attention group (a sum
/// over one axis of an f32 stage named "softmax_*" that Softmax's row-wise lowering made, times
/// a second operand), and returns the stages it scheduled (empty, `s` unchanged, otherwise).
/// `desc` gets ", attention rows MR x NR, scores at the row block".
std::vector<te::Stage> scheduleAttention(te::Schedule &s, const ScheduleConfig &config,
                                         std::string &desc);

} // namespace tessel::compiler
