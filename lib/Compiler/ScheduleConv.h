//===- ScheduleConv.h - blocked convolution schedules (private) -*- C++ -*-===//
//
// The schedule of tessel::ConvNCHWc stages (lib/Graph/Ops/Layout.cpp) in a fused kernel
// (docs/compile.md, "Convolution"), TVM's conv2d_NCHWc x86 schedule: the kernel's output E
// [n, oc_o, oh, ow, oc_i] (the conv or its fused epilogue: bias, ReLU, residual Add) is tiled
//
//   E:    [(n, oc_o, oh) fused, parallel | ow / reg_n | ow % reg_n (unrolled), oc_i (vector)]
//   conv: computed at E's ow / reg_n loop, over its reg_n x oc_bn tile:
//         [ic_o, kh, kw, ic_i | ow (reg_n, unrolled), oc_i (vectorized)]
//
// so each reduction step is one vector load of weights, reg_n broadcasts of the input and
// reg_n FMAs into reg_n vector accumulators that LLVM keeps in registers (the tile is a small
// stack buffer indexed by constants once unrolled); the epilogue reads the tile right after.
// Variants:
//   - narrow outputs (reg_n < 12, resnet18's 7x7 layers): two oc blocks per tile; for a
//     spatial kernel (3x3) the conv is computed at E's (n, oc_o) loop over all output rows,
//     [ic_o, kh, kw | oh | ic_i | oc tile, ow, oc_i], so a weight vector fetched once (these
//     layers' weights come from DRAM) serves every row while it is in L1;
//   - rows of 12 to 14, or wider rows split into tiles of 12 to 14 (28, 56, 112 columns), with
//     an even number of oc blocks (resnet18's 14x14 to 56x56 layers): two oc blocks per tile,
//     ow-major, [ic_o, kh, kw, ic_i | ow, oc tile (2), oc_i] (28 accumulators; per step
//     2 weight vectors and 14 broadcasts, each broadcast used by the two FMAs next to it);
//   - other rows of at most 14 with an even height: two rows per register tile,
//     [ic_o, kh, kw, ic_i | oh (2), ow, oc_i] (28 accumulators, each weight vector serves 28);
//   - depthwise ([kh, kw] as the reduction, both unrolled up to 3x3): E's rows are split in
//     chunks (a divisor of OH, chooseDepthwiseRowChunk) and the zero-padded input rows of a
//     chunk are computed at the chunk's parallel loop, into an L1-sized buffer, so these
//     memory-bound kernels read their input once instead of writing and re-reading a whole
//     padded copy;
//   - regular convs: the zero-padded input is its own stage, computed once per kernel in
//     parallel, so the hot loop has no bounds select.
// A regular conv whose weights are 512 KiB or more prefetches them 2 kw steps ahead
// (te::Stage::prefetch): they stream from L3/DRAM, faster than the hardware prefetcher runs.
// A kernel whose output is tessel::ToBlocked gets [rows (parallel when large) | w | c unrolled].
//
//===----------------------------------------------------------------------===//
#pragma once

#include "Schedule.h"

#include <string>
#include <vector>

namespace tessel::compiler {

/// Schedules every ConvNCHWc reduction stage of `s` with its padding stage and epilogue, and a
/// ToBlocked output. Returns the stages it scheduled (the default schedule leaves them alone);
/// `desc` gets ", conv nchwc reg_n R[ x 2 oc blocks][, ow-major][ x 2 rows][, all rows per tile
/// inside kh, kw][, weights prefetched 2 kw steps ahead][, padded rows per K output rows]" per conv and ", toblocked rows x w x c unrolled".
std::vector<te::Stage> scheduleBlockedConvs(te::Schedule &s, const ScheduleConfig &config,
                                            std::string &desc);

/// The output stage that reads `conv` through elementwise computes only (a fused epilogue:
/// bias, ReLU, residual Add), with those computes in `path`; `conv` itself when it is an output.
/// Undefined when two outputs read it or a stage off the path does (it would need the whole
/// conv). Shared by the conv and Winograd schedules.
te::Tensor epilogueOutput(const te::Schedule &s, const te::Tensor &conv,
                          std::vector<te::Tensor> &path);

/// The output-width tile of a blocked conv: the largest divisor of `ow` that keeps
/// reg_n * (oc_bn / lanes) accumulators, one weight vector and a broadcast in the 32 (AVX-512)
/// or 16 vector registers.
int64_t chooseConvRegN(int64_t ow, int64_t ocBlock, int64_t lanes);

/// The output rows per chunk of a depthwise conv (a divisor of `oh`): the padded input rows a
/// chunk reads, computed just before it, fit a 32 KiB buffer (`paddedW` x `lanesPerPoint`
/// floats per row; (r - 1) * stride + kh rows), and `outerTiles` x the chunks stay >= 8 where
/// possible, so that two threads get even shares.
int64_t chooseDepthwiseRowChunk(int64_t outerTiles, int64_t oh, int64_t paddedH,
                                int64_t paddedW, int64_t kh, int64_t lanesPerPoint);

} // namespace tessel::compiler
