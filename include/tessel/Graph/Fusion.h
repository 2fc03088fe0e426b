//===- Fusion.h - operator fusion: which nodes share one kernel --*- C++ -*-===//
//
// fuseOps partitions the top-level nodes of a graph into fusion groups; the compiler generates
// one kernel per group, and the values inside a group never reach memory. The graph itself is not
// changed (the interpreter keeps running it node by node): the result is a side table, a
// FusionPlan, that later lowering reads.
//
// The algorithm is TVM's FuseOps (relay/transforms/fuse_ops.cc): every op has a pattern class
// (OpPattern in tessel/Graph/OpRegistry.h, set by its OpDef); a node is fused into its immediate
// post-dominator (the first node through which every path from it to the graph's outputs
// passes) when the classes along every path between them allow it:
//
//  - phase 0: an OutEWiseFusable node (Conv, MatMul, Gemm, pooling, Softmax) takes the
//    elementwise/broadcast epilogue that follows it (bias, ReLU, Clip, residual Add) when the
//    edge to its post-dominator is elementwise and every node on the paths is <= Broadcast;
//  - phases 0 and 1: an ElemWise/Broadcast node fuses forward into its post-dominator when that
//    edge is <= Injective or a reduction, every node strictly between is <= Injective and the
//    post-dominator's group is anything but Opaque (so a broadcast input of a reduction, or the
//    epilogue of a conv group, joins that group);
//  - phase 1: an Injective node fuses forward when every node on the paths, the post-dominator
//    included, is <= Injective (injective chains such as Reshape -> Transpose -> Slice);
//  - phase 0: a row reduction (a float CommReduce node reducing only the last axis, kept as 1)
//    fuses forward when every node on the paths, the post-dominator included, is <= Broadcast
//    or in a row-reduction group; the ElemWise/Broadcast rule may also pass through such
//    groups (LayerNorm's mean, x - mean, variance and normalization become one kernel);
//  - other CommReduce nodes and Opaque nodes never fuse forward.
//
// A value used by several consumers ends its group unless all of them meet again at a node that
// post-dominates it and the rules above hold for every path (a diamond fuses as a whole). A node
// whose output is a graph output has no post-dominator, so a group never continues past a graph
// output. Besides TVM's rules, two limits keep each group one kernel: a group holds at most one
// master (an OutEWiseFusable or CommReduce node) unless all of them are row reductions (the
// master is then the last), and at most FuseOptions::maxGroupSize nodes.
//
// Every group has one exit: all values that leave it are outputs of its last node. The groups
// come in a topological order of the group graph (a kernel runs after the kernels it reads).
// docs/fusion.md has the details and the numbers on the benchmark models.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Graph/IR.h"
#include "tessel/Graph/OpRegistry.h"

#include <cstdint>
#include <iosfwd>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

namespace tessel {

struct FuseOptions {
  /// The most nodes one group may hold (TVM's max_fuse_depth); >= 1. 1 disables fusion.
  int64_t maxGroupSize = 256;
  /// Nodes that must be a group of their own (the compiler's interpreter-fallback nodes): they
  /// count as Opaque, so nothing fuses into or out of them. Not owned; may be null.
  const std::unordered_set<const Node *> *opaque = nullptr;
};

/// One fused kernel: a connected, convex set of nodes with a single exit.
struct FusionGroup {
  int64_t id = 0; // its index in FusionPlan::groups
  /// The group's class: its master's pattern, else the most restrictive pattern of its nodes.
  OpPattern pattern = OpPattern::Opaque;
  /// The node whose schedule the kernel follows: the group's one OutEWiseFusable or CommReduce
  /// node when it has one, else its last node.
  const Node *master = nullptr;
  /// Its nodes, in the graph's (topological) order; the last one is the exit.
  std::vector<const Node *> nodes;
  /// Values the group reads that it does not produce (graph inputs, weights, other groups'
  /// outputs), in order of first use, each once.
  std::vector<const Value *> inputs;
  /// Values the group produces that are read outside it or are graph outputs, in node order.
  std::vector<const Value *> outputs;
};

struct FusionPlan {
  /// The groups in a topological order of the group graph.
  std::vector<FusionGroup> groups;
  int64_t numNodes = 0;

  /// The index of the group holding `n`, or -1 when `n` is not a top-level node of the graph.
  int64_t groupOf(const Node *n) const;

private:
  friend FusionPlan fuseOps(const Graph &, const FuseOptions &);
  std::unordered_map<const Node *, int64_t> groupOf_;
};

/// Partitions the top-level nodes of `g` (shapes inferred, so that a broadcast op whose input has
/// the output's shape counts as elementwise on that edge) into fusion groups. An Error when an
/// option is invalid.
FusionPlan fuseOps(const Graph &g, const FuseOptions &opts = {});

/// Checks `plan` against `g`: the groups partition the top-level nodes; each group is connected,
/// lists its nodes in graph order, has at most one OutEWiseFusable/CommReduce node (its master
/// when present) or only row reductions (the master: the last), inputs and outputs as defined
/// above, and a single exit; no group reads a value produced by a later group. Throws an Error
/// naming the first violation.
void verifyFusionPlan(const Graph &g, const FusionPlan &plan);

/// The class fuseOps uses for a node: its OpDef's pattern, except Opaque for ops the registry
/// does not know, nodes with subgraphs, nodes with more than one output present, and nodes with a
/// non-tensor input or output (sequences, optionals).
OpPattern nodePattern(const Node &n);

/// "elemwise", "broadcast", "injective", "comm-reduce", "out-ewise-fusable", "opaque".
std::string_view opPatternName(OpPattern p);

/// How a node is named in fusion output: its name, else `%` and its first output's name.
std::string fusionNodeLabel(const Node &n);

/// Text form, one line per group (stable: the golden tests and `tessel inspect --fusion` use it):
///   `group 3 (out-ewise-fusable, master conv_5): Conv(conv_5) -> Add(add_2) -> Relu(relu_7);
///    inputs: %x, %w, %b, %res; outputs: %relu_7`  (on one line)
void printFusionPlan(std::ostream &os, const FusionPlan &plan);

/// Graphviz DOT of the top level of `g`: one box per node, an ellipse per graph input and
/// output, edges labelled with the value's type (weights are left out). With a plan, each group
/// is a cluster whose label gives its id, pattern and master.
void writeFusionDot(std::ostream &os, const Graph &g, const FusionPlan *plan = nullptr);

} // namespace tessel
