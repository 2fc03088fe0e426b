//===- EliminateDeadCode.cpp - remove nodes and constants nothing uses ----===//
//
// dce: walks each graph backwards from its outputs. A node is live when one of its outputs is
// used by a live node, is a graph output, or is captured by a subgraph of a live node; every
// other node is removed (ONNX inference ops have no side effects; an unused random op is dead
// too). Then initializers and free constants that nothing live uses are dropped, unless they
// are graph inputs (a caller may override them) or outputs. Subgraphs (If/Loop/Scan bodies) of
// live nodes are cleaned the same way; their inputs and outputs are their signature and stay.
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/Transforms.h"

#include <algorithm>
#include <unordered_set>

namespace tessel {

namespace {

using ValueSet = std::unordered_set<const Value *>;

template <class F> void forEachSubgraph(const Node &n, F &&f) {
  for (auto &[name, a] : n.attrs) {
    if (a.g)
      f(*a.g);
    for (auto &sg : a.graphs)
      if (sg)
        f(*sg);
  }
}

/// Whether capture `v` of subgraph `sg` is still needed: used there, returned, or captured
/// again by a nested subgraph that needs it.
bool captureNeeded(const Value *v, const Graph &sg) {
  if (!v->uses().empty() || std::find(sg.outputs.begin(), sg.outputs.end(), v) != sg.outputs.end())
    return true;
  for (auto &n : sg.nodes()) {
    bool needed = false;
    forEachSubgraph(*n, [&](const Graph &inner) {
      for (auto &w : inner.values())
        needed = needed || (w->outer == v && captureNeeded(w.get(), inner));
    });
    if (needed)
      return true;
  }
  return false;
}

/// Adds the values of `owner` that subgraph `g` (or a subgraph nested in it) captures and
/// still needs. A capture nothing needs is detached (it would otherwise keep its outer value
/// alive); it is then a value nothing refers to, which the printer and verifier ignore.
void addCaptures(Graph &g, const Graph &owner, ValueSet &out, PassStats &stats) {
  for (auto &v : g.values()) {
    if (!v->outer)
      continue;
    if (!captureNeeded(v.get(), g)) {
      v->outer = nullptr;
      stats.add("captures-removed");
      continue;
    }
    const Value *o = v->outer;
    while (o && o->graph() != &owner)
      o = o->outer;
    if (o)
      out.insert(o);
  }
  for (auto &n : g.nodes())
    forEachSubgraph(*n, [&](Graph &sg) { addCaptures(sg, owner, out, stats); });
}

bool runOnGraph(Graph &g, PassStats &stats) {
  bool changed = false;
  int64_t capturesBefore = stats.counters.count("captures-removed") ? stats.counters["captures-removed"] : 0;
  // Subgraphs first: what they stop using no longer keeps outer values alive.
  for (auto &np : g.nodes())
    forEachSubgraph(*np, [&](Graph &sg) { changed |= runOnGraph(sg, stats); });
  ValueSet live(g.outputs.begin(), g.outputs.end());
  std::vector<Node *> dead;
  const auto &nodes = g.nodes();
  for (size_t i = nodes.size(); i-- > 0;) {
    Node &n = *nodes[i];
    bool isLive = std::any_of(n.outputs().begin(), n.outputs().end(),
                              [&](Value *v) { return v && live.count(v); });
    if (!isLive) {
      dead.push_back(&n);
      continue;
    }
    for (Value *v : n.inputs())
      if (v)
        live.insert(v);
    forEachSubgraph(n, [&](Graph &sg) { addCaptures(sg, g, live, stats); });
  }
  // `dead` is in reverse topological order: every user of a dead node's output is dead and
  // was erased before it.
  for (Node *n : dead) {
    std::vector<Value *> outs = n->outputs();
    g.eraseNode(n);
    for (Value *v : outs)
      if (v)
        v->constant = Tensor(); // a detached output must not turn into a free constant
  }
  if (!dead.empty()) {
    stats.add("nodes-removed", int64_t(dead.size()));
    changed = true;
  }

  // Constants nothing live uses. A graph input with a default stays (it is part of the
  // signature); so does anything that is a graph output.
  ValueSet keep(g.inputs.begin(), g.inputs.end());
  keep.insert(g.outputs.begin(), g.outputs.end());
  auto unused = [&](const Value *v) { return !keep.count(v) && !live.count(v) && v->uses().empty(); };
  int64_t removed = 0;
  std::vector<Value *> inits;
  for (Value *v : g.initializers) {
    if (v && unused(v)) {
      v->constant = Tensor();
      ++removed;
      continue;
    }
    inits.push_back(v);
  }
  g.initializers = std::move(inits);
  ValueSet initSet(g.initializers.begin(), g.initializers.end());
  for (auto &vp : g.values()) {
    Value *v = vp.get();
    if (v->isConstant() && !v->producer() && !v->outer && !initSet.count(v) && unused(v)) {
      v->constant = Tensor();
      ++removed;
    }
  }
  if (removed) {
    stats.add("constants-removed", removed);
    changed = true;
  }
  if (stats.counters.count("captures-removed") && stats.counters["captures-removed"] != capturesBefore)
    changed = true;
  return changed;
}

} // namespace

bool eliminateDeadCode(Graph &g, PassStats &stats) { return runOnGraph(g, stats); }

} // namespace tessel
