//===- ScheduleWinograd.h - Winograd convolution schedule (private) -*- C++ -*-===//
//
// The schedule of a tessel::ConvWinogradNCHWc kernel (lib/Graph/Ops/Layout.cpp; docs/compile.md,
// "Convolution"). Its four stages, found by name ("convwinogradnchwc_..."): the zero-padded input
// P, the input transform V [N, TH, ICo, alpha^2, TW, ib], the batched GEMM M [N, TH, alpha^2,
// OCo, TW, ob] and the output transform Y (with the fused epilogue E: bias, ReLU, residual Add):
//
//   P:  its own stage, rows in parallel (as the direct conv's padded copy)
//   E:  [(n, tile row) fused, parallel | oc_o / T | oc_o % T, tile column, i, j (m x m,
//       unrolled), oc_i (vector)]                                   (`tile rows outer`)
//   V:  computed at E's tile-row loop: [ic_o, tile column | p (alpha^2, unrolled), ic_i (vector)]
//   M:  computed at E's oc_o / T loop, for the whole tile row and T oc blocks:
//       [p | ic_o, ic_i | tile column (R = TW, unrolled), oc_o (T, unrolled), oc_i (vector)]
//
// A tile row wider than 14 tiles (OW > 56) is split into column groups of R tiles (R in
// [7, 14] dividing TW: 112 columns are 2 x 14), E's tile-column loop split inside its oc-pair
// loop, and M computed per group: [... | oc_o / T | column group | oc_o % T, tile column (R),
// ...], the same register tile (`G column groups per tile row` in the schedule line).
//
// A tile row's transformed input (alpha^2 x IC x TW x 4 bytes: 129 KiB for resnet18's 56x56x64
// layers) stays in L2 while the GEMM reads it once per oc-block pair; the GEMM's register tile
// is the direct conv's ow-major one (R tile columns x T oc blocks, R * T <= 28 accumulators,
// per step T weight vectors and R broadcasts), its output (alpha^2 x R x T blocks) is read by
// the output transform right after, from L1/L2. When the whole V fits L2 (<= 1 MiB: the 28x28
// layers) it is computed once, in parallel, and E runs [(n, oc_o / T) parallel | tile row |
// ...] with M at the tile-row loop (`oc blocks outer, input transform once`): each oc pair's
// slice of U is read once instead of once per tile row, and the parallel loop splits evenly.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "Schedule.h"

#include <string>
#include <vector>

namespace tessel::compiler {

/// Schedules every Winograd conv of `s` (its padding, transforms, GEMM and epilogue). Returns
/// the stages it scheduled; `desc` gets ", winograd F(mxm,3x3) gemm reg_n R[ x T oc blocks][,
/// G column groups per tile row], tile rows outer|oc blocks outer, input transform once" per
/// conv.
std::vector<te::Stage> scheduleWinogradConvs(te::Schedule &s, const ScheduleConfig &config,
                                             std::string &desc);

} // namespace tessel::compiler
