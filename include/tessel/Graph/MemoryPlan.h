//===- MemoryPlan.h - a static arena for a graph's intermediates -*- C++ -*-===//
//
// planMemory gives every intermediate tensor of a graph's top level (a value produced by a node
// that is not a graph output, unless PlanOptions::outputsInArena) a byte offset in one arena,
// so that a compiled model runs with one allocation. Lifetimes come from the execution order
// (the graph's node order, which is topological): a value is live from the node that produces
// it to its last use, inclusive. Two values whose lifetimes overlap never share bytes, except:
//
//  - in place: an elementwise op (a fixed, documented list in PlanMemory.cpp) whose input dies
//    at this node, is an intermediate of the arena and has the output's element size and
//    element count, writes its output over that input;
//  - alias: a view op (Reshape, Flatten, Squeeze, Unsqueeze, Identity) whose input dies at this
//    node returns the input's storage.
//
// Values so chained form one storage block; blocks are packed with "greedy by size" (Pisarchyk
// and Lee, "Efficient Memory Management for Deep Neural Net Inference", 2020; TFLite's
// GreedyBySize): largest block first, each at the best-fitting (smallest sufficient) gap between
// the blocks already placed whose lifetimes overlap it, or at the first such gap (TFLite Micro's
// GreedyMemoryPlanner) with Fit::First. docs/memory-plan.md has the details and numbers.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Graph/IR.h"

#include <cstdint>
#include <iosfwd>
#include <string>
#include <unordered_map>
#include <vector>

namespace tessel {

struct PlanOptions {
  enum class Fit : uint8_t { Best, First };
  /// Every offset is a multiple of this (a power of two >= 1); block sizes are rounded up to it.
  int64_t alignment = 64;
  /// Graph outputs produced by nodes get arena space too (live until the end of the run).
  bool outputsInArena = false;
  /// Elementwise ops may write over an input that dies at them.
  bool inPlace = true;
  /// View ops share their input's storage when the input dies at them.
  bool aliasViews = true;
  Fit fit = Fit::Best;
};

/// Where one value lives in the arena.
struct ValuePlacement {
  enum class Kind : uint8_t {
    Own,     // storage of its own (the first value of its block)
    InPlace, // written over `shares`, an input of its producer that dies there
    Alias,   // a view of `shares`, an input of its producer that dies there
  };
  const Value *value = nullptr;
  int64_t offset = 0; // bytes from the arena's start; a multiple of the alignment
  int64_t bytes = 0;  // the tensor's size (element count x element size), not rounded
  int64_t first = 0;  // index (in the execution order) of the producing node
  int64_t last = 0;   // index of the last node that reads it (== first when nothing does;
                      // the number of nodes when it is a graph output kept in the arena)
  Kind kind = Kind::Own;
  const Value *shares = nullptr; // for InPlace and Alias
  int64_t block = 0;             // index of its storage block
};

struct MemoryPlan {
  int64_t alignment = 64;
  int64_t numNodes = 0;
  /// One entry per planned value, in the order the nodes produce them.
  std::vector<ValuePlacement> values;
  /// Bytes the arena needs: the end of the highest block, rounded up to the alignment.
  int64_t arenaBytes = 0;
  /// The lower bound on any arena for this order and these sharing decisions: the maximum over
  /// nodes of the bytes of the blocks live at that node (block sizes rounded up to alignment).
  int64_t peakLiveBytes = 0;
  /// Bytes with no reuse at all: the sum of every planned value's size, rounded up to alignment.
  int64_t sumBytes = 0;
  int64_t numBlocks = 0;

  /// The placement of a value, or nullptr when the value is not in the arena.
  const ValuePlacement *find(const Value *v) const;
  /// sumBytes / arenaBytes (1 when the arena is empty).
  double reuseFactor() const;

private:
  friend MemoryPlan planMemory(const Graph &, const PlanOptions &);
  std::unordered_map<const Value *, size_t> index_;
};

/// Plans the arena for the top level of `g` (shapes inferred). An Error when a value to plan has
/// no static tensor type (it names the value and its type: a static plan needs static shapes;
/// the caller decides what to do) or when an option is invalid.
MemoryPlan planMemory(const Graph &g, const PlanOptions &opts = {});

/// Checks `plan` against `g` with its own liveness analysis: every value that must be planned
/// is, with its byte size; offsets are aligned and inside the arena; no two values whose
/// lifetimes overlap share a byte unless they are an allowed in-place or alias pair (then at the
/// same offset); peak <= arena. Throws an Error naming the first violation.
void verifyMemoryPlan(const Graph &g, const MemoryPlan &plan);

/// True when `n` is an op of the in-place list (elementwise: output element i depends only on
/// element i of each input, after broadcasting). Byte sizes and liveness are checked separately.
bool isInPlaceOp(const Node &n);
/// True when `n` is a view op (Reshape, Flatten, Squeeze, Unsqueeze, Identity in ai.onnx).
bool isViewOp(const Node &n);

/// Text form: a summary line, then one line per value:
///   `memory plan: arena A bytes, peak live P bytes, sum S bytes, N values in B blocks`
///   `  %name: offset O, bytes B, live [F, L], own|inplace %x|alias %x`
void printMemoryPlan(std::ostream &os, const MemoryPlan &plan);

} // namespace tessel
