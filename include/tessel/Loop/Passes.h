//===- Passes.h - loop IR lowering passes -----------------------*- C++ -*-===//
//
// The lowering passes that run on loop IR between TE lowering and code generation, one per
// file in lib/Loop/Transforms/ (Halide's VectorizeLoops/PartitionLoops/UnrollLoops/
// StorageFlattening, TVM's VectorizeLoop/LoopPartition/StorageFlatten). Each has one entry
// point on a Stmt and, where the function's parameters change (storageFlatten), one on a
// LoweredFunc. The order they run in, and why, is lib/Loop/Transforms/Pipeline.cpp.
//
// Errors are tessel::Error naming the loop/buffer and what was expected.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Loop/IR.h"

namespace tessel::loop {

/// Rewrites every multi-index Load/Store of a buffer into one flat index
/// `sum(index_i * stride_i)`, with the buffer's explicit strides (TE's storage_align/padding)
/// or, where it has none, dense row-major strides. Every buffer (parameters and Allocates)
/// becomes rank 1 with extent `1 + sum((shape_i - 1) * stride_i)` (the product of the shape
/// when dense); name, dtype, data variable, scope and alignment are kept.
Stmt storageFlatten(const Stmt &s);
LoweredFunc storageFlatten(const LoweredFunc &f);

/// Splits a Serial or Parallel For whose body holds an IfThenElse on a condition that is
/// true on a prefix (or suffix) of the loop's range into a main loop where the IfThenElse is
/// replaced by its then-branch and a tail loop keeping the condition. Inside the tail,
/// Vectorized loops become Serial (a vector main loop with a scalar tail).
///
/// Recognized conditions: integer `a < b`, `a <= b`, `a > b`, `a >= b` where `b - a` is linear
/// in the loop variable with a constant coefficient and linear, with constant coefficients,
/// in the variables of loops nested between the For and the IfThenElse when those loops have
/// constant min and extent (e.g. the tail guard `io*8 + ii < n` of a split by 8). Other
/// conditions are left alone. Vectorized and Unrolled loops are never partitioned themselves
/// (their extent must stay constant); their enclosing loop is.
Stmt loopPartition(const Stmt &s);

/// Turns every For of kind Vectorized (constant extent L, at most 64) into vector code: the loop
/// variable becomes ramp(min, 1, L), scalar operands next to vector ones are broadcast, Loads
/// and Stores with vector indices become vector loads/stores, Select/Cast/Call are widened.
/// A store of a vector value to a scalar location (`C[j] = C[j] + e(i)`, also with min/max
/// and *) becomes `C[j] = C[j] op vector_reduce(op, e)`; any other is an error. A
/// non-constant extent, an IfThenElse on a vector condition, an Allocate inside the loop or a
/// nested vectorized loop is an error naming the loop (partition tails first).
Stmt vectorizeLoops(const Stmt &s);

/// Replaces every For of kind Unrolled with a constant extent by one copy of its body per
/// iteration, the loop variable substituted by min + k. A non-constant extent is an error
/// naming the loop.
Stmt unrollLoops(const Stmt &s);

/// Removes statements that do nothing: Evaluate of a constant or variable, a For with extent
/// 0 or a no-op body, an IfThenElse whose branches are both no-ops, LetStmt/Allocate around a
/// no-op, no-ops inside a Seq (and a Seq of one statement becomes that statement).
Stmt removeNoOp(const Stmt &s);

} // namespace tessel::loop
