//===- Lower.h - a schedule to a loop IR function ---------------*- C++ -*-===//
//
// lower() turns a Schedule into one loop IR function (TVM's ScheduleOps + InferBound):
//
//   * compute_inline stages are substituted into their readers;
//   * bound inference: a root stage computes its whole shape; a stage computed at a consumer's
//     loop computes the region the consumer reads in one iteration of that loop (interval
//     analysis of the consumer's indices with the loops inside the attach point ranging over
//     their extents), and gets an Allocate of that region's (upper bound) size there;
//   * every stage becomes a loop nest over its leaf IterVars: a split is outer * factor + inner,
//     with an IfThenElse guard `if (outer * factor + inner < extent)` at the innermost level
//     unless the factor divides the extent statically (LoopPartition can split it off);
//     vectorize/unroll/parallel marks become the For kinds;
//   * a reduction is an init store (in a nest over the data-parallel loops inside the first
//     reduction loop) followed by the update loops;
//   * loads and stores are multi-dimensional (one index per dimension), StorageFlatten flattens
//     them later; intermediate tensors (not in args) are Allocate'd, args are parameters.
//
// The parameters are the args' buffers in order, then the scalar Vars their shapes use (each
// once, in order of first use). Errors name the stage and what was expected.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/TE/Schedule.h"

#include <string>
#include <vector>

namespace tessel::te {

loop::LoweredFunc lower(const Schedule &schedule, const std::vector<Tensor> &args,
                        const std::string &name = "main");

} // namespace tessel::te
