//===- PackWeights.h - constant GEMM operands in kernel layout (private) -*- C++ -*-===//
//
// A compiler step between the graph pipeline and lowering (docs/compile.md, "Dense,
// reductions and overhead"): constant weights are rewritten once, at compile time, into the
// layout the register-tiled contraction schedule (ScheduleDense.h) reads with contiguous
// vector loads.
//
//===----------------------------------------------------------------------===//
#pragma once

namespace tessel {
class Graph;
}

namespace tessel::compiler {

/// Every Gemm with a constant 2-D f32/f64 B read transposed (transB = 1) reads a transposed
/// copy instead (a new initializer "<B>.packed", shared between Gemms) with transB = 0.
/// Returns the number of Gemms rewritten.
int packDenseWeights(Graph &g);

} // namespace tessel::compiler
