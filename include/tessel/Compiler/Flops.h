//===- Flops.h - arithmetic cost of a node, for kernel FLOPs ------*- C++ -*-===//
//
// The floating-point operation count of one graph node, from its inferred static shapes, shared
// by `tessel inspect` and the compiler: 2 per multiply-add for Conv,
// ConvTranspose, MatMul and Gemm (plus one per output element for a bias), the window size per
// output element for pools, one per input element for reductions, one per output element and
// operation for elementwise ops, a fixed per-element estimate for the normalizations and
// Softmax, and 0 for ops that only move data; tessel.ConvNCHWc (the blocked convolution of
// lib/Graph/Ops/Layout.cpp) counts as the Conv it replaces. compileModel sums it over each fused group and
// records the result per execution-plan step (metadata "kernel_flops"), which
// `tessel bench --profile` divides by the measured time to report GFLOP/s.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Graph/IR.h"

#include <cstdint>
#include <optional>

namespace tessel {

/// Multiply-adds (Conv, ConvTranspose, MatMul, Gemm and their quantized forms) and FLOPs of
/// one node.
struct NodeCost {
  int64_t macs = 0, flops = 0;
};

/// The cost of `n`, or nullopt when its shapes are not static or its op is not modelled.
std::optional<NodeCost> nodeCost(const Node &n);

/// The FLOPs of `n`, or nullopt when its shapes are not static or its op is not modelled.
std::optional<int64_t> nodeFlops(const Node &n);

} // namespace tessel
