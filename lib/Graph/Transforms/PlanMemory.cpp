//===- PlanMemory.cpp - liveness-based static arena for intermediates -----===//
//
// planMemory (see include/tessel/Graph/MemoryPlan.h):
//  1. liveness: in the graph's node order, each planned value lives from its producer's index to
//     the index of its last reader (a subgraph that captures it counts as a read by the node
//     holding the subgraph); a graph output kept in the arena lives to the end (index N);
//  2. sharing: walking the nodes in order, an output may take over the storage block of an input
//     that dies at this node (in place for the elementwise list below, alias for view ops);
//  3. packing: "greedy by size" over the blocks' lifetime intervals (largest first, ties by
//     earlier start), each at the best-fitting gap among the blocks already placed that overlap
//     it in time (Fit::Best, Pisarchyk & Lee 2020 / TFLite) or at the first gap (Fit::First,
//     TFLite Micro's GreedyMemoryPlanner); no gap fits -> above the highest of them.
//
// verifyMemoryPlan re-derives liveness on its own and checks the result pairwise.
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/MemoryPlan.h"

#include "tessel/Support/Error.h"

#include <algorithm>
#include <ostream>
#include <set>
#include <unordered_set>

namespace tessel {

namespace {

// Elementwise ops whose output element i depends only on element i of each (broadcast) input, so
// the kernel may write output element i over input element i once it has read it. The registry
// has no such field yet (issue 5 adds op classes with FuseOps); until then this list is the one
// place that says it. An input qualifies only when it has the output's element size and element
// count (so no broadcasting is involved) and dies at the node.
const std::set<std::string> kInPlaceOps = {
    // unary math and activations
    "Abs", "Acos", "Acosh", "Asin", "Asinh", "Atan", "Atanh", "Ceil", "Cos", "Cosh", "Erf",
    "Exp", "Floor", "Log", "Neg", "Not", "Reciprocal", "Round", "Sign", "Sin", "Sinh", "Sqrt",
    "Tan", "Tanh", "Relu", "LeakyRelu", "PRelu", "Elu", "Selu", "Celu", "Gelu", "Sigmoid",
    "HardSigmoid", "HardSwish", "Softplus", "Softsign", "Mish", "ThresholdedRelu", "Shrink",
    "Clip", "Cast", "BitwiseNot",
    // binary and variadic, with broadcasting
    "Add", "Sub", "Mul", "Div", "Pow", "Mod", "Max", "Min", "Sum", "Mean", "And", "Or", "Xor",
    "BitShift", "BitwiseAnd", "BitwiseOr", "BitwiseXor", "Where"};

// Ops whose output is a view of input 0's bytes in the same order.
const std::set<std::string> kViewOps = {"Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity"};

bool isDefaultDomain(const Node &n) { return n.domain.empty() || n.domain == "ai.onnx"; }

int64_t alignUp(int64_t x, int64_t a) { return (x + a - 1) / a * a; }

/// The byte size of a value that goes into the arena; an Error when it has none statically.
int64_t valueBytes(const Value &v) {
  const Type &t = v.type;
  const std::string where = "memory plan: value '" + v.name() + "'";
  TESSEL_CHECK(t.isTensor(), where, " has type ", t.str(),
               "; a static arena holds tensors only");
  TESSEL_CHECK(t.dtype != DType::undefined && t.dtype != DType::string, where, " has type ",
               t.str(), "; a static arena needs a fixed-size element type");
  TESSEL_CHECK(t.shape.isStatic(), where, " has type ", t.str(),
               "; a static memory plan needs static shapes (bind the symbolic and unknown dims "
               "first)");
  int64_t n = int64_t(dtypeSize(t.dtype));
  for (int64_t d : t.shape.staticDims())
    TESSEL_CHECK(!__builtin_mul_overflow(n, d, &n) && n <= (int64_t(1) << 56), where,
                 " has type ", t.str(), ": its size overflows");
  return n;
}

/// The subgraphs held in a node's attributes.
std::vector<const Graph *> subgraphsOf(const Node &n) {
  std::vector<const Graph *> r;
  for (auto &[name, a] : n.attrs) {
    if (a.g)
      r.push_back(a.g.get());
    for (auto &sg : a.graphs)
      if (sg)
        r.push_back(sg.get());
  }
  return r;
}

/// Index of the last node reading each value of `g`'s top level (direct inputs and captures).
std::unordered_map<const Value *, int64_t> lastReads(const Graph &g) {
  std::unordered_map<const Value *, int64_t> last;
  const auto &nodes = g.nodes();
  for (int64_t i = 0; i < int64_t(nodes.size()); ++i) {
    const Node &n = *nodes[i];
    for (const Value *v : n.inputs())
      if (v)
        last[v] = i;
    for (const Graph *sg : subgraphsOf(n)) {
      std::vector<const Value *> caps;
      collectCaptures(*sg, g, caps);
      for (const Value *v : caps)
        last[v] = i;
    }
  }
  return last;
}

/// Whether a value produced by a node of the top level goes into the arena.
bool isPlanned(const Value &v, const Node &producer, const std::unordered_set<const Value *> &outs,
               bool outputsInArena) {
  if (v.isConstant() || (producer.opType == "Constant" && isDefaultDomain(producer)))
    return false;
  return outputsInArena || !outs.count(&v);
}

/// Whether output 0 of `n` may share the storage of input `in` by the op's kind alone (sizes
/// and liveness are checked by the caller). Sets `kind`.
bool mayShare(const Node &n, size_t in, const PlanOptions &opts, ValuePlacement::Kind &kind) {
  if (opts.aliasViews && isViewOp(n) && in == 0) {
    kind = ValuePlacement::Kind::Alias;
    return true;
  }
  if (opts.inPlace && isInPlaceOp(n)) {
    kind = ValuePlacement::Kind::InPlace;
    return true;
  }
  return false;
}

bool sameElementsAndSize(const Value &a, const Value &b, int64_t aBytes, int64_t bBytes) {
  return aBytes == bBytes && dtypeSize(a.type.dtype) == dtypeSize(b.type.dtype);
}

struct Block {
  int64_t size = 0; // rounded up to the alignment
  int64_t first = 0, last = 0;
  int64_t offset = 0;
  bool overlaps(const Block &o) const { return first <= o.last && o.first <= last; }
};

/// Greedy by size: offsets for every block.
void packBlocks(std::vector<Block> &blocks, PlanOptions::Fit fit) {
  std::vector<size_t> order(blocks.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    if (blocks[a].size != blocks[b].size)
      return blocks[a].size > blocks[b].size;
    return blocks[a].first < blocks[b].first;
  });
  std::vector<size_t> placed; // sorted by offset
  for (size_t id : order) {
    Block &b = blocks[id];
    if (b.size == 0) {
      b.offset = 0;
      continue;
    }
    int64_t end = 0, best = -1, bestGap = 0;
    for (size_t p : placed) {
      const Block &o = blocks[p];
      if (!o.overlaps(b))
        continue;
      int64_t gap = o.offset - end;
      if (gap >= b.size && (best < 0 || gap < bestGap)) {
        best = end;
        bestGap = gap;
        if (fit == PlanOptions::Fit::First)
          break;
      }
      end = std::max(end, o.offset + o.size);
    }
    b.offset = best >= 0 ? best : end;
    auto pos = std::upper_bound(placed.begin(), placed.end(), id, [&](size_t x, size_t y) {
      return blocks[x].offset < blocks[y].offset;
    });
    placed.insert(pos, id);
  }
}

const char *kindName(ValuePlacement::Kind k) {
  switch (k) {
  case ValuePlacement::Kind::Own:
    return "own";
  case ValuePlacement::Kind::InPlace:
    return "inplace";
  case ValuePlacement::Kind::Alias:
    return "alias";
  }
  return "?";
}

} // namespace

bool isInPlaceOp(const Node &n) { return isDefaultDomain(n) && kInPlaceOps.count(n.opType); }

bool isViewOp(const Node &n) { return isDefaultDomain(n) && kViewOps.count(n.opType); }

const ValuePlacement *MemoryPlan::find(const Value *v) const {
  auto it = index_.find(v);
  return it == index_.end() ? nullptr : &values[it->second];
}

double MemoryPlan::reuseFactor() const {
  return arenaBytes == 0 ? 1.0 : double(sumBytes) / double(arenaBytes);
}

MemoryPlan planMemory(const Graph &g, const PlanOptions &opts) {
  TESSEL_CHECK(opts.alignment >= 1 && (opts.alignment & (opts.alignment - 1)) == 0,
               "memory plan: alignment ", opts.alignment, " is not a power of two >= 1");
  MemoryPlan plan;
  plan.alignment = opts.alignment;
  const auto &nodes = g.nodes();
  const int64_t numNodes = int64_t(nodes.size());
  plan.numNodes = numNodes;
  std::unordered_set<const Value *> outs(g.outputs.begin(), g.outputs.end());
  auto last = lastReads(g);

  std::vector<Block> blocks;
  std::vector<int64_t> bytes;
  for (int64_t i = 0; i < numNodes; ++i) {
    const Node &n = *nodes[i];
    std::unordered_set<int64_t> claimed; // blocks taken over at this node
    for (size_t o = 0; o < n.numOutputs(); ++o) {
      const Value *v = n.output(o);
      if (!v || !isPlanned(*v, n, outs, opts.outputsInArena))
        continue;
      ValuePlacement p;
      p.value = v;
      p.bytes = valueBytes(*v);
      p.first = i;
      auto it = last.find(v);
      p.last = std::max(i, it == last.end() ? i : it->second);
      if (outs.count(v))
        p.last = numNodes;
      // Take over the block of an input that dies here, when the op allows it.
      for (size_t in = 0; o == 0 && in < n.numInputs(); ++in) {
        const Value *u = n.input(in);
        const ValuePlacement *pu = u ? plan.find(u) : nullptr;
        ValuePlacement::Kind kind;
        if (!pu || pu->last != i || claimed.count(pu->block) || !mayShare(n, in, opts, kind) ||
            !sameElementsAndSize(*u, *v, pu->bytes, p.bytes))
          continue;
        p.kind = kind;
        p.shares = u;
        p.block = pu->block;
        claimed.insert(pu->block);
        blocks[p.block].last = p.last;
        break;
      }
      if (!p.shares) {
        p.block = int64_t(blocks.size());
        blocks.push_back({alignUp(p.bytes, opts.alignment), p.first, p.last, 0});
      }
      plan.index_[v] = plan.values.size();
      plan.values.push_back(p);
      plan.sumBytes += alignUp(p.bytes, opts.alignment);
    }
  }

  packBlocks(blocks, opts.fit);
  plan.numBlocks = int64_t(blocks.size());
  for (auto &p : plan.values)
    p.offset = blocks[p.block].offset;
  for (auto &b : blocks)
    plan.arenaBytes = std::max(plan.arenaBytes, b.offset + b.size);
  plan.arenaBytes = alignUp(plan.arenaBytes, opts.alignment);

  // Peak: bytes of the blocks live at each node (a difference array over node indices).
  std::vector<int64_t> delta(numNodes + 2, 0);
  for (auto &b : blocks) {
    delta[b.first] += b.size;
    delta[b.last + 1] -= b.size;
  }
  int64_t live = 0;
  for (int64_t d : delta)
    plan.peakLiveBytes = std::max(plan.peakLiveBytes, live += d);
  return plan;
}

void verifyMemoryPlan(const Graph &g, const MemoryPlan &plan) {
  const auto &nodes = g.nodes();
  const int64_t numNodes = int64_t(nodes.size());
  const int64_t align = plan.alignment;
  TESSEL_CHECK(align >= 1 && (align & (align - 1)) == 0, "memory plan check: alignment ", align,
               " is not a power of two");
  TESSEL_CHECK(plan.numNodes == numNodes, "memory plan check: the plan is for ", plan.numNodes,
               " nodes, the graph has ", numNodes);
  std::unordered_set<const Value *> outs(g.outputs.begin(), g.outputs.end());

  // Liveness, derived again: producer index and last reader.
  std::unordered_map<const Value *, int64_t> producedAt, lastRead;
  for (int64_t i = 0; i < numNodes; ++i) {
    for (const Value *v : nodes[i]->inputs())
      if (v)
        lastRead[v] = std::max(lastRead[v], i);
    for (const Graph *sg : subgraphsOf(*nodes[i])) {
      std::vector<const Value *> caps;
      collectCaptures(*sg, g, caps);
      for (const Value *v : caps)
        lastRead[v] = std::max(lastRead[v], i);
    }
    for (const Value *v : nodes[i]->outputs())
      if (v)
        producedAt[v] = i;
  }

  std::unordered_map<const Value *, const ValuePlacement *> byValue;
  for (const ValuePlacement &p : plan.values) {
    TESSEL_CHECK(p.value, "memory plan check: a placement without a value");
    const std::string name = "memory plan check: value '" + p.value->name() + "'";
    TESSEL_CHECK(byValue.emplace(p.value, &p).second, name, " is placed twice");
    auto at = producedAt.find(p.value);
    TESSEL_CHECK(at != producedAt.end(), name, " is not produced by a node of the graph");
    const Node &producer = *nodes[at->second];
    TESSEL_CHECK(isPlanned(*p.value, producer, outs, true), name,
                 " is a constant; constants are not in the arena");
    TESSEL_CHECK(p.bytes == valueBytes(*p.value), name, " has ", p.bytes,
                 " bytes in the plan, expected ", valueBytes(*p.value));
    int64_t last = outs.count(p.value) ? numNodes
                                       : std::max(at->second, lastRead.count(p.value)
                                                                  ? lastRead[p.value]
                                                                  : at->second);
    TESSEL_CHECK(p.first == at->second && p.last == last, name, " is live [", p.first, ", ",
                 p.last, "] in the plan, expected [", at->second, ", ", last, "]");
    TESSEL_CHECK(p.offset >= 0 && p.offset % align == 0, name, " has offset ", p.offset,
                 ", expected a multiple of ", align);
    TESSEL_CHECK(p.offset + p.bytes <= plan.arenaBytes, name, " ends at byte ",
                 p.offset + p.bytes, ", past the arena's ", plan.arenaBytes);
    TESSEL_CHECK((p.kind == ValuePlacement::Kind::Own) == (p.shares == nullptr), name,
                 " is '", kindName(p.kind), "' ", p.shares ? "with" : "without",
                 " a value it shares");
  }
  // Every intermediate must be planned (graph outputs may or may not be).
  for (int64_t i = 0; i < numNodes; ++i)
    for (const Value *v : nodes[i]->outputs())
      if (v && isPlanned(*v, *nodes[i], outs, false))
        TESSEL_CHECK(byValue.count(v), "memory plan check: intermediate '", v->name(),
                     "' of ", nodes[i]->describe(), " has no place in the arena");

  // A sharing pair must be one the rules allow: `v` produced by a view or in-place op of which
  // `u` is an input that dies there, with the same size (and element size), at the same offset.
  auto allowedPair = [&](const ValuePlacement &v, const ValuePlacement &u) {
    if (v.shares != u.value || v.offset != u.offset || u.last != v.first || u.bytes != v.bytes)
      return false;
    const Node &n = *nodes[v.first];
    if (n.output(0) != v.value)
      return false;
    if (v.kind == ValuePlacement::Kind::Alias)
      return isViewOp(n) && n.input(0) == u.value;
    bool isInput = std::find(n.inputs().begin(), n.inputs().end(), u.value) != n.inputs().end();
    return isInPlaceOp(n) && isInput &&
           dtypeSize(u.value->type.dtype) == dtypeSize(v.value->type.dtype);
  };
  for (const ValuePlacement &p : plan.values)
    if (p.shares) {
      auto it = byValue.find(p.shares);
      TESSEL_CHECK(it != byValue.end() && allowedPair(p, *it->second),
                   "memory plan check: value '", p.value->name(), "' is ", kindName(p.kind),
                   " over '", p.shares->name(), "', which the rules do not allow (a view or "
                   "in-place op over an input of the same size that dies there)");
    }

  // Pairwise: overlapping lifetimes and overlapping bytes only for allowed pairs.
  std::vector<const ValuePlacement *> sorted;
  for (const ValuePlacement &p : plan.values)
    if (p.bytes > 0)
      sorted.push_back(&p);
  std::sort(sorted.begin(), sorted.end(),
            [](auto *a, auto *b) { return a->offset < b->offset; });
  for (size_t i = 0; i < sorted.size(); ++i) {
    const ValuePlacement &a = *sorted[i];
    for (size_t j = i + 1; j < sorted.size() && sorted[j]->offset < a.offset + a.bytes; ++j) {
      const ValuePlacement &b = *sorted[j];
      if (a.last < b.first || b.last < a.first)
        continue;
      if (allowedPair(a, b) || allowedPair(b, a))
        continue;
      fail("memory plan check: values '", a.value->name(), "' (live [", a.first, ", ", a.last,
           "], bytes [", a.offset, ", ", a.offset + a.bytes, ")) and '", b.value->name(),
           "' (live [", b.first, ", ", b.last, "], bytes [", b.offset, ", ", b.offset + b.bytes,
           ")) are live at once and share bytes");
    }
  }
  TESSEL_CHECK(plan.arenaBytes % align == 0, "memory plan check: arena of ", plan.arenaBytes,
               " bytes is not a multiple of the alignment ", align);
  TESSEL_CHECK(plan.peakLiveBytes <= plan.arenaBytes, "memory plan check: peak live bytes ",
               plan.peakLiveBytes, " exceed the arena's ", plan.arenaBytes);
}

void printMemoryPlan(std::ostream &os, const MemoryPlan &plan) {
  os << "memory plan: arena " << plan.arenaBytes << " bytes, peak live " << plan.peakLiveBytes
     << " bytes, sum " << plan.sumBytes << " bytes, " << plan.values.size() << " values in "
     << plan.numBlocks << " blocks, alignment " << plan.alignment << "\n";
  for (const ValuePlacement &p : plan.values) {
    os << "  %" << p.value->name() << ": offset " << p.offset << ", bytes " << p.bytes
       << ", live [" << p.first << ", " << p.last << "], " << kindName(p.kind);
    if (p.shares)
      os << " %" << p.shares->name();
    os << "\n";
  }
}

} // namespace tessel
