//===- EliminateCommonSubexpr.cpp - merge identical nodes and constants ---===//
//
// cse: two constants with the same type and bitwise-equal data become one; then, in topological
// order, a node with the same domain, op type, attributes, inputs and output arity as an earlier
// node is replaced by it. Because uses are rewritten as we go, chains of identical nodes merge in
// one walk. Never merged: random ops (each draws its own numbers), nodes holding subgraphs, graph
// inputs with defaults (a caller may override one and not the other), and values that are
// outputs of the main graph (their names are the model's interface). Subgraphs are processed
// on their own (nothing merges across scopes); captures of a replaced value follow it.
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/Transforms.h"

#include "tessel/Graph/PassUtils.h"

#include <cstring>
#include <functional>
#include <unordered_map>
#include <unordered_set>

namespace tessel {

using namespace passutils;

namespace {

size_t mix(size_t h, size_t v) { return h ^ (v + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2)); }

size_t hashBytes(const void *p, size_t n) {
  return std::hash<std::string_view>()(std::string_view(static_cast<const char *>(p), n));
}

size_t hashTensor(const Tensor &t) {
  size_t h = mix(size_t(t.dtype()), t.shape().size());
  for (int64_t d : t.shape())
    h = mix(h, size_t(d));
  if (t.dtype() == DType::string) {
    for (int64_t i = 0; i < t.numel(); ++i)
      h = mix(h, std::hash<std::string>()(t.data<std::string>()[i]));
    return h;
  }
  return mix(h, hashBytes(t.raw(), t.nbytes()));
}

bool sameFloat(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

bool sameTensor(const Tensor &a, const Tensor &b) {
  if (a.defined() != b.defined())
    return false;
  return !a.defined() || a.equals(b);
}

/// Attribute equality; attributes holding graphs never compare equal.
bool sameAttr(const Attribute &a, const Attribute &b) {
  if (a.kind != b.kind || a.g || b.g || !a.graphs.empty() || !b.graphs.empty())
    return false;
  switch (a.kind) {
  case Attribute::Kind::Float: return sameFloat(a.f, b.f);
  case Attribute::Kind::Int: return a.i == b.i;
  case Attribute::Kind::String: return a.s == b.s;
  case Attribute::Kind::Tensor: return sameTensor(a.t, b.t);
  case Attribute::Kind::Floats:
    return a.floats.size() == b.floats.size() &&
           (a.floats.empty() ||
            std::memcmp(a.floats.data(), b.floats.data(), a.floats.size() * sizeof(float)) == 0);
  case Attribute::Kind::Ints: return a.ints == b.ints;
  case Attribute::Kind::Strings: return a.strings == b.strings;
  case Attribute::Kind::Tensors:
    if (a.tensors.size() != b.tensors.size())
      return false;
    for (size_t i = 0; i < a.tensors.size(); ++i)
      if (!sameTensor(a.tensors[i], b.tensors[i]))
        return false;
    return true;
  case Attribute::Kind::TypeAttr: return a.type == b.type;
  default: return false;
  }
}

size_t hashNode(const Node &n) {
  size_t h = mix(std::hash<std::string>()(n.opType), std::hash<std::string>()(n.domain));
  for (Value *v : n.inputs())
    h = mix(h, std::hash<const void *>()(v));
  for (Value *v : n.outputs())
    h = mix(h, v != nullptr);
  for (auto &[name, a] : n.attrs) {
    h = mix(h, std::hash<std::string>()(name));
    h = mix(h, size_t(a.kind));
    if (a.kind == Attribute::Kind::Int)
      h = mix(h, size_t(a.i));
  }
  return h;
}

bool sameNode(const Node &a, const Node &b) {
  if (a.opType != b.opType || a.domain != b.domain || a.inputs() != b.inputs() ||
      a.numOutputs() != b.numOutputs() || a.attrs.size() != b.attrs.size())
    return false;
  for (size_t i = 0; i < a.numOutputs(); ++i)
    if ((a.output(i) == nullptr) != (b.output(i) == nullptr))
      return false;
  auto ia = a.attrs.begin(), ib = b.attrs.begin();
  for (; ia != a.attrs.end(); ++ia, ++ib)
    if (ia->first != ib->first || !sameAttr(ia->second, ib->second))
      return false;
  return true;
}

void replaceValue(Graph &g, Value *from, Value *to) {
  from->replaceAllUsesWith(to);
  redirectCaptures(g, from, to);
}

bool runOnGraph(Graph &g, PassStats &stats) {
  bool changed = false;
  std::unordered_set<const Value *> pinned(g.inputs.begin(), g.inputs.end());
  if (!g.parent)
    pinned.insert(g.outputs.begin(), g.outputs.end());

  // Constants: initializers that are not inputs, and free constants.
  std::unordered_map<size_t, std::vector<Value *>> constants;
  std::unordered_set<const Value *> mergedAway;
  int64_t constantsMerged = 0;
  auto considerConstant = [&](Value *v) {
    if (!v || !v->isConstant() || v->producer() || v->outer || pinned.count(v) || mergedAway.count(v))
      return;
    auto &bucket = constants[hashTensor(v->constant)];
    for (Value *c : bucket) {
      if (c == v)
        return; // an initializer, seen again among the graph's values
      if (c->type == v->type && c->constant.equals(v->constant)) {
        replaceValue(g, v, c);
        mergedAway.insert(v);
        ++constantsMerged;
        return;
      }
    }
    bucket.push_back(v);
  };
  for (Value *v : g.initializers)
    considerConstant(v);
  for (auto &vp : g.values())
    considerConstant(vp.get());
  if (constantsMerged) {
    std::vector<Value *> inits;
    for (Value *v : g.initializers)
      if (!mergedAway.count(v))
        inits.push_back(v);
    g.initializers = std::move(inits);
    for (const Value *v : mergedAway)
      const_cast<Value *>(v)->constant = Tensor(); // no longer printed as a free constant
    stats.add("constants-merged", constantsMerged);
    changed = true;
  }

  // Nodes, in topological order: inputs are already canonical when a node is looked at.
  std::unordered_map<size_t, std::vector<Node *>> seen;
  std::vector<Node *> merged;
  for (auto &np : g.nodes()) {
    Node &n = *np;
    if (isRandomOp(n) || holdsSubgraph(n))
      continue;
    auto &bucket = seen[hashNode(n)];
    Node *same = nullptr;
    for (Node *c : bucket)
      if (sameNode(*c, n)) {
        same = c;
        break;
      }
    if (!same) {
      bucket.push_back(&n);
      continue;
    }
    bool isPinned = false;
    for (Value *v : n.outputs())
      isPinned |= v && pinned.count(v);
    if (isPinned)
      continue;
    for (size_t i = 0; i < n.numOutputs(); ++i)
      if (Value *v = n.output(i))
        replaceValue(g, v, same->output(i));
    merged.push_back(&n);
  }
  for (Node *n : merged)
    g.eraseNode(n);
  if (!merged.empty()) {
    stats.add("nodes-merged", int64_t(merged.size()));
    changed = true;
  }

  for (auto &np : g.nodes())
    for (auto &[name, a] : np->attrs) {
      if (a.g)
        changed |= runOnGraph(*a.g, stats);
      for (auto &sg : a.graphs)
        if (sg)
          changed |= runOnGraph(*sg, stats);
    }
  return changed;
}

} // namespace

bool eliminateCommonSubexpr(Graph &g, PassStats &stats) { return runOnGraph(g, stats); }

} // namespace tessel
