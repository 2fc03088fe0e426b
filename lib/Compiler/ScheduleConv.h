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
// The zero-padded input is its own stage, computed once per kernel in parallel, so the hot loop
// has no bounds select. Depthwise convs use the same nest with [kh, kw] as the reduction.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "Schedule.h"

#include <string>
#include <vector>

namespace tessel::compiler {

/// Schedules every ConvNCHWc reduction stage of `s` with its padding stage and epilogue.
/// Returns the stages it scheduled (the default schedule leaves them alone); `desc` gets
/// ", conv nchwc reg_n R" per conv.
std::vector<te::Stage> scheduleBlockedConvs(te::Schedule &s, const ScheduleConfig &config,
                                            std::string &desc);

/// The output-width tile of a blocked conv: the largest divisor of `ow` that keeps
/// reg_n * (oc_bn / lanes) accumulators, one weight vector and a broadcast in the 32 (AVX-512)
/// or 16 vector registers.
int64_t chooseConvRegN(int64_t ow, int64_t ocBlock, int64_t lanes);

} // namespace tessel::compiler
