//===- FuseOps.cpp - operator fusion by post-dominator tree ---------------===//
//
// TVM's FuseOps (relay/transforms/fuse_ops.cc) on the graph IR: a forward dataflow graph of the
// top-level nodes with a pattern on every edge, its post-dominator tree, and a union-find of
// groups that nodes merge into along the tree. The rules are listed in
// include/tessel/Graph/Fusion.h; docs/fusion.md explains them with pictures.
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/Fusion.h"

#include "tessel/Graph/PassUtils.h"

#include "tessel/Support/Error.h"

#include <algorithm>
#include <cctype>
#include <ostream>
#include <queue>
#include <sstream>
#include <unordered_set>

namespace tessel {

namespace {

OpPattern combine(OpPattern a, OpPattern b) { return std::max(a, b); }

bool hasSubgraph(const Node &n) {
  for (auto &[name, a] : n.attrs)
    if (a.g || !a.graphs.empty())
      return true;
  return false;
}

/// One edge of the forward graph: producer -> consumer, with the consumer's pattern as seen from
/// this input (Broadcast becomes ElemWise when the input has the output's shape).
struct Edge {
  int64_t to;
  OpPattern pattern;
};

struct ForwardGraph {
  std::vector<const Node *> nodes;
  std::unordered_map<const Node *, int64_t> index;
  std::vector<OpPattern> pattern;
  std::vector<std::vector<Edge>> outputs; // consumers of each node
  std::vector<bool> externRef;            // produces a graph output
};

/// The top-level node of `g` that produces `v`, or -1 (graph input, initializer, capture).
int64_t producerIndex(const ForwardGraph &fg, const Value *v) {
  if (!v || !v->producer())
    return -1;
  auto it = fg.index.find(v->producer());
  return it == fg.index.end() ? -1 : it->second;
}

bool sameShape(const Value *a, const Value *b) {
  return a && b && a->type.isTensor() && b->type.isTensor() && a->type.shape.rankKnown &&
         a->type.shape == b->type.shape;
}

ForwardGraph buildForwardGraph(const Graph &g, const FuseOptions &opts) {
  ForwardGraph fg;
  for (auto &n : g.nodes()) {
    fg.index[n.get()] = int64_t(fg.nodes.size());
    fg.nodes.push_back(n.get());
  }
  const size_t n = fg.nodes.size();
  fg.pattern.resize(n);
  fg.outputs.resize(n);
  fg.externRef.assign(n, false);
  for (size_t j = 0; j < n; ++j) {
    const Node &node = *fg.nodes[j];
    fg.pattern[j] = opts.opaque && opts.opaque->count(&node) ? OpPattern::Opaque : nodePattern(node);
    for (const Value *v : node.inputs()) {
      int64_t p = producerIndex(fg, v);
      if (p < 0)
        continue;
      OpPattern e = fg.pattern[j];
      if (e == OpPattern::Broadcast && sameShape(v, node.output(0)))
        e = OpPattern::ElemWise;
      fg.outputs[p].push_back({int64_t(j), e});
    }
    // Values a subgraph captures are inputs of the node that holds it (an Opaque node).
    if (hasSubgraph(node)) {
      std::vector<const Value *> caps;
      collectNodeCaptures(node, g, caps);
      for (const Value *v : caps)
        if (int64_t p = producerIndex(fg, v); p >= 0)
          fg.outputs[p].push_back({int64_t(j), OpPattern::Opaque});
    }
  }
  for (const Value *v : g.outputs)
    if (int64_t p = producerIndex(fg, v); p >= 0)
      fg.externRef[p] = true;
  return fg;
}

/// The post-dominator tree over the forward graph (TVM's DominatorTree): parent = the least
/// common ancestor of a node's consumers; `pattern` combines the edge patterns on the way.
struct PostDomTree {
  std::vector<int64_t> parent; // -1: no post-dominator inside the graph
  std::vector<int64_t> depth;
  std::vector<OpPattern> pattern;
};

PostDomTree buildPostDomTree(const ForwardGraph &fg) {
  const size_t n = fg.nodes.size();
  PostDomTree t;
  t.parent.assign(n, -1);
  t.depth.assign(n, 1);
  t.pattern.assign(n, OpPattern::Opaque);
  auto lca = [&](int64_t a, int64_t b, OpPattern &p) {
    while (a != b) {
      if (a < 0 || b < 0)
        return int64_t(-1);
      if (t.depth[a] < t.depth[b]) {
        p = combine(p, t.pattern[b]);
        b = t.parent[b];
      } else if (t.depth[b] < t.depth[a]) {
        p = combine(p, t.pattern[a]);
        a = t.parent[a];
      } else {
        p = combine(p, combine(t.pattern[a], t.pattern[b]));
        a = t.parent[a];
        b = t.parent[b];
      }
    }
    return a;
  };
  // Consumers come after their producer in the graph's topological order.
  for (int64_t i = int64_t(n) - 1; i >= 0; --i) {
    if (fg.externRef[i] || fg.outputs[i].empty())
      continue; // a graph output (its value leaves the graph) or a dead end
    OpPattern p = OpPattern::ElemWise;
    int64_t parent = fg.outputs[i][0].to;
    p = combine(p, fg.outputs[i][0].pattern);
    for (size_t k = 1; k < fg.outputs[i].size() && parent >= 0; ++k) {
      parent = lca(parent, fg.outputs[i][k].to, p);
      p = combine(p, fg.outputs[i][k].pattern);
    }
    t.parent[i] = parent;
    t.depth[i] = parent >= 0 ? t.depth[parent] + 1 : 1;
    t.pattern[i] = parent >= 0 ? p : OpPattern::Opaque;
  }
  return t;
}

bool isMasterPattern(OpPattern p) {
  return p == OpPattern::OutEWiseFusable || p == OpPattern::CommReduce;
}

/// A row reduction: a CommReduce node with one float input and one output of that dtype whose
/// static shape is the input's with the last dim (> 1) kept as 1 (ReduceMean/ReduceMax/... over
/// the last axis with keepdims: LayerNorm's mean and variance, a decomposed Softmax's max and
/// sum). Several of them and the broadcast ops between them may share a group (one kernel).
bool isRowReduction(const Node &n) {
  if (nodePattern(n) != OpPattern::CommReduce || n.numOutputs() != 1 || n.numInputs() < 1)
    return false;
  const Value *x = n.input(0), *y = n.output(0);
  if (!x || !y || !x->type.isTensor() || !y->type.isTensor() || x->type.dtype != y->type.dtype ||
      !isFloat(x->type.dtype))
    return false;
  const Shape &xs = x->type.shape, &ys = y->type.shape;
  if (!xs.rankKnown || !ys.rankKnown || xs.dims.size() != ys.dims.size() || xs.dims.empty())
    return false;
  const size_t r = xs.dims.size();
  for (size_t d = 0; d < r; ++d) {
    if (!xs.dims[d].isStatic() || !ys.dims[d].isStatic())
      return false;
    const int64_t a = xs.dims[d].value, b = ys.dims[d].value;
    if (d + 1 < r ? a != b : !(b == 1 && a > 1))
      return false;
  }
  return true;
}

/// Union-find of groups (TVM's GraphPartitioner::Group).
class Partitioner {
public:
  Partitioner(const ForwardGraph &fg, const PostDomTree &tree, const FuseOptions &opts)
      : fg_(fg), tree_(tree), opts_(opts) {
    const size_t n = fg.nodes.size();
    parent_.resize(n);
    size_.assign(n, 1);
    pattern_ = fg.pattern;
    master_.assign(n, -1);
    rowOnly_.assign(n, true);
    for (size_t i = 0; i < n; ++i) {
      parent_[i] = int64_t(i);
      if (isMasterPattern(fg.pattern[i])) {
        master_[i] = int64_t(i);
        rowOnly_[i] = isRowReduction(*fg.nodes[i]);
      }
    }
  }

  void run() {
    if (opts_.maxGroupSize >= 3)
      fuseAttention();
    for (int phase = 0; phase < 2; ++phase)
      for (size_t i = 0; i < fg_.nodes.size(); ++i)
        visit(int64_t(i), phase);
  }

  int64_t find(int64_t i) {
    while (parent_[i] != i) {
      parent_[i] = parent_[parent_[i]];
      i = parent_[i];
    }
    return i;
  }
  int64_t masterOf(int64_t root) const { return master_[root]; }
  OpPattern patternOf(int64_t root) const { return pattern_[root]; }

private:
  /// Attention, the one group with two contractions: MatMul(Q, K^T) -> up to 3 elementwise or
  /// broadcast nodes (scale, mask) -> Softmax over the last axis -> MatMul(P, V), P as its first
  /// input, every node but the last read only by the next and no graph output, f32 of static
  /// shape. One kernel computes it block of query rows by block (lib/Compiler/
  /// ScheduleAttention.cpp), the scores never leave the cache. The last MatMul is the master.
  void fuseAttention() {
    auto inner = [&](int64_t v) { // read by one node only, not a graph output
      return v >= 0 && fg_.outputs[v].size() == 1 && !fg_.externRef[v];
    };
    auto staticF32 = [](const Value *v) {
      return v && v->type.isTensor() && v->type.dtype == DType::f32 && v->type.shape.isStatic();
    };
    for (size_t i = 0; i < fg_.nodes.size(); ++i) {
      const Node &pv = *fg_.nodes[i];
      if (pv.opType != "MatMul" || !pv.domain.empty() || !staticF32(pv.output(0)))
        continue;
      const int64_t sm = producerIndex(fg_, pv.input(0));
      if (!inner(sm) || fg_.nodes[sm]->opType != "Softmax")
        continue;
      const Node &softmax = *fg_.nodes[sm];
      const Graph *g = softmax.graph();
      const int64_t rank = int64_t(softmax.output(0)->type.shape.staticDims().size());
      const int64_t axis = passutils::intAttr(softmax, "axis", -1).value_or(-1);
      if (!g || g->opsetVersion("") < 13 || (axis != -1 && axis != rank - 1))
        continue;
      std::vector<int64_t> chain{int64_t(i), sm};
      int64_t p = producerIndex(fg_, softmax.input(0));
      while (inner(p) && fg_.pattern[p] <= OpPattern::Broadcast && chain.size() < 5) {
        chain.push_back(p);
        // the input on the path: the one a single-use node produces (the other is a scale or
        // a mask)
        int64_t next = -1;
        for (const Value *in : fg_.nodes[p]->inputs())
          if (int64_t q = producerIndex(fg_, in); inner(q) && next < 0)
            next = q;
        p = next;
      }
      if (!inner(p) || fg_.nodes[p]->opType != "MatMul" || !staticF32(fg_.nodes[p]->output(0)))
        continue;
      chain.push_back(p);
      if (int64_t(chain.size()) > opts_.maxGroupSize)
        continue;
      for (int64_t c : chain)
        if (find(c) != c || fg_.pattern[c] == OpPattern::Opaque) // grouped, or kept alone
          chain.clear();
      for (size_t c = 1; c < chain.size(); ++c)
        merge(chain[c], chain[0]);
      if (!chain.empty())
        master_[find(chain[0])] = chain[0];
    }
  }

  template <class F> bool checkPath(int64_t src, int64_t sink, F cond) {
    visited_.clear();
    for (const Edge &e : fg_.outputs[src])
      if (!checkPathFrom(e.to, sink, cond))
        return false;
    return true;
  }
  template <class F> bool checkPathFrom(int64_t node, int64_t sink, F cond) {
    if (!visited_.insert(node).second)
      return true;
    if (!cond(pattern_[find(node)], node == sink, find(node)))
      return false;
    if (node == sink)
      return true;
    for (const Edge &e : fg_.outputs[node])
      if (!checkPathFrom(e.to, sink, cond))
        return false;
    return true;
  }

  /// The groups that fusing src into sink would merge: src's, sink's and those of every node on
  /// the paths between them.
  std::vector<int64_t> groupsOnPaths(int64_t src, int64_t sink) {
    std::unordered_set<int64_t> roots{find(src), find(sink)};
    visited_.clear();
    std::vector<int64_t> stack;
    for (const Edge &e : fg_.outputs[src])
      stack.push_back(e.to);
    while (!stack.empty()) {
      int64_t v = stack.back();
      stack.pop_back();
      if (!visited_.insert(v).second)
        continue;
      roots.insert(find(v));
      if (v == sink)
        continue;
      for (const Edge &e : fg_.outputs[v])
        stack.push_back(e.to);
    }
    return {roots.begin(), roots.end()};
  }

  /// The limits on top of TVM's rules: one master per group (or only row reductions),
  /// at most maxGroupSize nodes.
  bool withinLimits(int64_t src, int64_t sink) {
    int64_t nodes = 0, masters = 0;
    bool rows = true;
    for (int64_t r : groupsOnPaths(src, sink)) {
      nodes += size_[r];
      masters += master_[r] >= 0;
      rows = rows && rowOnly_[r];
    }
    return nodes <= opts_.maxGroupSize && (masters <= 1 || rows);
  }

  /// A group whose masters are all row reductions (at least one).
  bool rowGroup(int64_t root) const { return master_[root] >= 0 && rowOnly_[root]; }

  void merge(int64_t child, int64_t parent) {
    child = find(child);
    parent = find(parent);
    if (child == parent)
      return;
    parent_[child] = parent;
    size_[parent] += size_[child];
    const bool rows = rowOnly_[child] && rowOnly_[parent];
    if (master_[child] >= 0) {
      // Several row reductions: the master is the last of them in graph order.
      master_[parent] = std::max(master_[child], master_[parent]);
      pattern_[parent] = pattern_[child];
    } else if (master_[parent] < 0) {
      pattern_[parent] = combine(pattern_[parent], pattern_[child]);
    }
    rowOnly_[parent] = rows;
  }

  /// Merges every group on the paths from src to sink into sink's group.
  void commitFuse(int64_t src, int64_t sink) {
    for (int64_t r : groupsOnPaths(src, sink))
      merge(r, sink);
  }

  void visit(int64_t i, int phase) {
    const OpPattern own = fg_.pattern[i];
    if (own == OpPattern::Opaque)
      return;
    if (own == OpPattern::CommReduce && !isRowReduction(*fg_.nodes[i]))
      return;
    const int64_t dom = tree_.parent[i];
    if (dom < 0 || find(i) == find(dom))
      return;
    const OpPattern edge = tree_.pattern[i];
    // A row-reduction group on a path counts as broadcast: its values stay row by row.
    auto rowLocal = [this](OpPattern k, int64_t root) {
      return k <= OpPattern::Broadcast || (k == OpPattern::CommReduce && rowGroup(root));
    };
    bool ok = false;
    if (own == OpPattern::CommReduce) {
      // Phase 0: a row reduction takes the broadcast ops that read it (x - mean, the
      // normalization) and the row reductions after them (LayerNorm's variance), as far as
      // its post-dominator, when every node on the way is broadcast or a row reduction.
      ok = phase == 0 && checkPath(i, dom, [&](OpPattern k, bool, int64_t root) {
             return rowLocal(k, root);
           });
    } else if (own == OpPattern::OutEWiseFusable) {
      // Phase 0: the conv/matmul takes its elementwise epilogue.
      ok = phase == 0 && edge == OpPattern::ElemWise &&
           checkPath(i, dom, [](OpPattern k, bool, int64_t) { return k <= OpPattern::Broadcast; });
    } else if (own <= OpPattern::Broadcast) {
      // Into an injective or reduction consumer, or the epilogue of any non-opaque group;
      // through row reductions when the path is otherwise broadcast. Not when this node is in
      // a conv/matmul group and the consumer is injective (TVM's rule: an out-ewise-fusable
      // group takes elementwise epilogues only): a layout change or transpose after the
      // epilogue would make the group's output a different shape from the conv's, and the
      // register-tiled schedules (ScheduleConv.h, ScheduleDense.h) then do not apply (a 512
      // channel 3x3 conv whose FromBlocked output fused in ran at 32 GFLOP/s instead of 250).
      const int64_t m = masterOf(find(i));
      const bool contractionGroup = m >= 0 && fg_.pattern[m] == OpPattern::OutEWiseFusable;
      ok = !(contractionGroup && fg_.pattern[dom] == OpPattern::Injective) &&
           (edge <= OpPattern::Injective || edge == OpPattern::CommReduce) &&
           checkPath(i, dom, [&](OpPattern k, bool isSink, int64_t root) {
             return isSink ? k != OpPattern::Opaque
                           : k <= OpPattern::Injective || rowLocal(k, root);
           });
    } else if (own == OpPattern::Injective) {
      // Phase 1, so that conv groups finish taking their epilogues first.
      ok = phase == 1 && checkPath(i, dom, [](OpPattern k, bool, int64_t) {
             return k <= OpPattern::Injective;
           });
    }
    if (ok && withinLimits(i, dom))
      commitFuse(i, dom);
  }

  const ForwardGraph &fg_;
  const PostDomTree &tree_;
  const FuseOptions &opts_;
  std::vector<int64_t> parent_, size_, master_;
  std::vector<bool> rowOnly_; // per root: every master of the group is a row reduction
  std::vector<OpPattern> pattern_;
  std::unordered_set<int64_t> visited_;
};

/// The group-level DAG in a topological order, ties broken by the first node's position (so the
/// order is the graph's wherever it can be). An Error on a cycle.
std::vector<int64_t> orderGroups(const ForwardGraph &fg, const std::vector<int64_t> &groupOfNode,
                                 int64_t numGroups, const std::vector<int64_t> &firstNode) {
  std::vector<std::vector<int64_t>> succ(numGroups);
  std::vector<int64_t> indeg(numGroups, 0);
  for (size_t i = 0; i < fg.nodes.size(); ++i)
    for (const Edge &e : fg.outputs[i]) {
      int64_t a = groupOfNode[i], b = groupOfNode[e.to];
      if (a == b)
        continue;
      succ[a].push_back(b);
      ++indeg[b];
    }
  auto later = [&](int64_t a, int64_t b) { return firstNode[a] > firstNode[b]; };
  std::priority_queue<int64_t, std::vector<int64_t>, decltype(later)> ready(later);
  for (int64_t k = 0; k < numGroups; ++k)
    if (indeg[k] == 0)
      ready.push(k);
  std::vector<int64_t> order;
  while (!ready.empty()) {
    int64_t k = ready.top();
    ready.pop();
    order.push_back(k);
    for (int64_t s : succ[k])
      if (--indeg[s] == 0)
        ready.push(s);
  }
  TESSEL_CHECK(int64_t(order.size()) == numGroups,
               "fuseOps: the fusion groups form a cycle (", numGroups - int64_t(order.size()),
               " groups on it); every group should be convex");
  return order;
}

/// Inputs and outputs of a group from its nodes.
void computeGroupIO(const Graph &g, FusionGroup &grp,
                    const std::unordered_map<const Node *, int64_t> &groupOf) {
  std::unordered_set<const Value *> produced, seen;
  for (const Node *n : grp.nodes)
    for (const Value *v : n->outputs())
      if (v)
        produced.insert(v);
  auto addInput = [&](const Value *v) {
    if (v && !produced.count(v) && seen.insert(v).second)
      grp.inputs.push_back(v);
  };
  for (const Node *n : grp.nodes) {
    for (const Value *v : n->inputs())
      addInput(v);
    std::vector<const Value *> caps;
    collectNodeCaptures(*n, g, caps);
    for (const Value *v : caps)
      addInput(v);
  }
  std::unordered_set<const Value *> graphOutputs(g.outputs.begin(), g.outputs.end());
  // Values read outside the group: by a node of another group or by a subgraph capture there.
  std::unordered_set<const Value *> readOutside;
  for (auto &n : g.nodes()) {
    auto it = groupOf.find(n.get());
    if (it != groupOf.end() && it->second == grp.id)
      continue;
    for (const Value *v : n->inputs())
      if (v && produced.count(v))
        readOutside.insert(v);
    std::vector<const Value *> caps;
    collectNodeCaptures(*n, g, caps);
    for (const Value *v : caps)
      if (produced.count(v))
        readOutside.insert(v);
  }
  for (const Node *n : grp.nodes)
    for (const Value *v : n->outputs())
      if (v && (graphOutputs.count(v) || readOutside.count(v)))
        grp.outputs.push_back(v);
}

std::string valueLabel(const Value *v) {
  const std::string &s = v->name();
  bool bare = !s.empty();
  for (char c : s)
    bare &= std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '$' ||
            c == '-' || c == '/';
  if (bare)
    return "%" + s;
  std::string r = "%\"";
  for (char c : s) {
    if (c == '"' || c == '\\')
      r += '\\';
    r += c;
  }
  return r + "\"";
}

std::string dotEscape(std::string_view s) {
  std::string r;
  for (char c : s) {
    if (c == '"' || c == '\\')
      r += '\\';
    if (c == '\n') {
      r += "\\n";
      continue;
    }
    r += c;
  }
  return r;
}

const char *patternColor(OpPattern p) {
  switch (p) {
  case OpPattern::ElemWise: return "#e8f5e9";
  case OpPattern::Broadcast: return "#e3f2fd";
  case OpPattern::Injective: return "#fff8e1";
  case OpPattern::CommReduce: return "#f3e5f5";
  case OpPattern::OutEWiseFusable: return "#ffebee";
  case OpPattern::Opaque: return "#eeeeee";
  }
  return "#ffffff";
}

} // namespace

std::string_view opPatternName(OpPattern p) {
  switch (p) {
  case OpPattern::ElemWise: return "elemwise";
  case OpPattern::Broadcast: return "broadcast";
  case OpPattern::Injective: return "injective";
  case OpPattern::CommReduce: return "comm-reduce";
  case OpPattern::OutEWiseFusable: return "out-ewise-fusable";
  case OpPattern::Opaque: return "opaque";
  }
  return "?";
}

OpPattern nodePattern(const Node &n) {
  if (hasSubgraph(n))
    return OpPattern::Opaque;
  int present = 0;
  for (const Value *v : n.outputs()) {
    if (!v)
      continue;
    ++present;
    if (!v->type.isTensor())
      return OpPattern::Opaque;
  }
  if (present != 1)
    return OpPattern::Opaque;
  for (const Value *v : n.inputs())
    if (v && !v->type.isTensor())
      return OpPattern::Opaque;
  const Graph *g = n.graph();
  const std::string domain = n.domain == "ai.onnx" ? "" : n.domain;
  const OpDef *def = g ? OpRegistry::get().lookup(domain, n.opType, g->opsetVersion(domain))
                       : OpRegistry::get().lookupAny(domain, n.opType);
  return def ? def->pattern : OpPattern::Opaque;
}

std::string fusionNodeLabel(const Node &n) {
  if (!n.name.empty())
    return n.name;
  const Value *v = n.output(0);
  for (size_t i = 0; !v && i < n.numOutputs(); ++i)
    v = n.output(i);
  return v ? valueLabel(v) : std::string("?");
}

int64_t FusionPlan::groupOf(const Node *n) const {
  auto it = groupOf_.find(n);
  return it == groupOf_.end() ? -1 : it->second;
}

FusionPlan fuseOps(const Graph &g, const FuseOptions &opts) {
  TESSEL_CHECK(opts.maxGroupSize >= 1, "fuseOps: maxGroupSize is ", opts.maxGroupSize,
               "; expected at least 1");
  ForwardGraph fg = buildForwardGraph(g, opts);
  PostDomTree tree = buildPostDomTree(fg);
  Partitioner part(fg, tree, opts);
  part.run();

  // Number the groups by their first node, then order them topologically.
  const size_t n = fg.nodes.size();
  std::unordered_map<int64_t, int64_t> rootToGroup;
  std::vector<int64_t> groupOfNode(n), firstNode, roots;
  for (size_t i = 0; i < n; ++i) {
    int64_t r = part.find(int64_t(i));
    auto [it, fresh] = rootToGroup.emplace(r, int64_t(roots.size()));
    if (fresh) {
      roots.push_back(r);
      firstNode.push_back(int64_t(i));
    }
    groupOfNode[i] = it->second;
  }
  const int64_t numGroups = int64_t(roots.size());
  std::vector<int64_t> order = orderGroups(fg, groupOfNode, numGroups, firstNode);
  std::vector<int64_t> rank(numGroups);
  for (int64_t k = 0; k < numGroups; ++k)
    rank[order[k]] = k;

  FusionPlan plan;
  plan.numNodes = int64_t(n);
  plan.groups.resize(numGroups);
  for (size_t i = 0; i < n; ++i) {
    int64_t id = rank[groupOfNode[i]];
    plan.groups[id].nodes.push_back(fg.nodes[i]);
    plan.groupOf_[fg.nodes[i]] = id;
  }
  for (int64_t k = 0; k < numGroups; ++k) {
    FusionGroup &grp = plan.groups[rank[k]];
    grp.id = rank[k];
    int64_t root = roots[k];
    int64_t master = part.masterOf(root);
    grp.master = master >= 0 ? fg.nodes[master] : grp.nodes.back();
    grp.pattern = part.patternOf(root);
  }
  for (FusionGroup &grp : plan.groups)
    computeGroupIO(g, grp, plan.groupOf_);
  return plan;
}

void verifyFusionPlan(const Graph &g, const FusionPlan &plan) {
  const char *what = "fusion plan: ";
  std::unordered_map<const Node *, int64_t> index, groupOf;
  for (auto &n : g.nodes())
    index[n.get()] = int64_t(index.size());
  TESSEL_CHECK(plan.numNodes == int64_t(index.size()), what, "plans ", plan.numNodes,
               " nodes; the graph has ", index.size());
  for (size_t k = 0; k < plan.groups.size(); ++k) {
    const FusionGroup &grp = plan.groups[k];
    TESSEL_CHECK(grp.id == int64_t(k), what, "group at position ", k, " has id ", grp.id);
    TESSEL_CHECK(!grp.nodes.empty(), what, "group ", k, " is empty");
    int64_t prev = -1;
    for (const Node *n : grp.nodes) {
      auto it = index.find(n);
      TESSEL_CHECK(it != index.end(), what, "group ", k, " holds a node that is not a top-level ",
                   "node of the graph");
      TESSEL_CHECK(it->second > prev, what, "group ", k, " does not list its nodes in graph order");
      prev = it->second;
      TESSEL_CHECK(groupOf.emplace(n, int64_t(k)).second, what, n->describe(),
                   " is in two groups");
      TESSEL_CHECK(plan.groupOf(n) == int64_t(k), what, "groupOf(", n->describe(), ") is ",
                   plan.groupOf(n), ", expected ", k);
    }
  }
  TESSEL_CHECK(groupOf.size() == index.size(), what, index.size() - groupOf.size(),
               " nodes are in no group");

  std::unordered_set<const Value *> graphOutputs(g.outputs.begin(), g.outputs.end());
  for (const FusionGroup &grp : plan.groups) {
    const int64_t k = grp.id;
    std::unordered_set<const Node *> members(grp.nodes.begin(), grp.nodes.end());
    // One master at most, and the master field agrees.
    const Node *master = nullptr;
    int masters = 0;
    bool rows = true;
    for (const Node *n : grp.nodes)
      if (isMasterPattern(nodePattern(*n))) {
        ++masters;
        master = n;
        rows = rows && isRowReduction(*n);
      }
    // The exception: an attention group (Partitioner::fuseAttention), MatMul -> elementwise
    // nodes -> Softmax -> MatMul, whose master is the last MatMul.
    bool attention = grp.nodes.size() >= 3 && grp.nodes.front()->opType == "MatMul" &&
                     grp.nodes.back()->opType == "MatMul";
    int softmaxes = 0;
    for (size_t i = 1; attention && i + 1 < grp.nodes.size(); ++i) {
      softmaxes += grp.nodes[i]->opType == "Softmax";
      attention = grp.nodes[i]->opType == "Softmax" ||
                  nodePattern(*grp.nodes[i]) <= OpPattern::Broadcast;
    }
    attention = attention && softmaxes == 1;
    TESSEL_CHECK(masters <= 1 || rows || attention, what, "group ", k, " has ", masters,
                 " out-ewise-fusable/reduction nodes; expected at most one, or only row "
                 "reductions, or an attention group (MatMul, elementwise, Softmax, MatMul)");
    TESSEL_CHECK(grp.master == (master ? master : grp.nodes.back()), what, "group ", k,
                 " names the wrong master");
    // Connected (as an undirected graph through values produced inside the group).
    std::unordered_set<const Node *> reached{grp.nodes.front()};
    std::vector<const Node *> stack{grp.nodes.front()};
    while (!stack.empty()) {
      const Node *n = stack.back();
      stack.pop_back();
      auto visit = [&](const Node *m) {
        if (m && members.count(m) && reached.insert(m).second)
          stack.push_back(m);
      };
      for (const Value *v : n->inputs())
        if (v)
          visit(v->producer());
      for (const Value *v : n->outputs())
        if (v)
          for (const Use &u : v->uses())
            visit(u.user);
    }
    TESSEL_CHECK(reached.size() == members.size(), what, "group ", k, " is not connected");
    // Inputs: read by the group, produced outside it or by an earlier group.
    std::vector<const Value *> inputs;
    std::unordered_set<const Value *> seen;
    for (const Node *n : grp.nodes)
      for (const Value *v : n->inputs())
        if (v && !(v->producer() && members.count(v->producer())) && seen.insert(v).second)
          inputs.push_back(v);
    for (const Value *v : inputs) {
      TESSEL_CHECK(std::find(grp.inputs.begin(), grp.inputs.end(), v) != grp.inputs.end(), what,
                   "group ", k, " reads %", v->name(), " but does not list it as an input");
      if (v->producer() && index.count(v->producer())) {
        int64_t from = groupOf[v->producer()];
        TESSEL_CHECK(from < k, what, "group ", k, " reads %", v->name(), " of group ", from,
                     ", which does not come before it");
      }
    }
    // Outputs: exactly the values used outside or returned; all from the last node.
    for (const Node *n : grp.nodes)
      for (const Value *v : n->outputs()) {
        if (!v)
          continue;
        bool escapes = graphOutputs.count(v) > 0;
        for (const Use &u : v->uses())
          escapes |= !members.count(u.user);
        bool listed = std::find(grp.outputs.begin(), grp.outputs.end(), v) != grp.outputs.end();
        if (escapes && !listed)
          fail(what, "group ", k, " does not list %", v->name(), " as an output");
        if (escapes && grp.nodes.size() > 1)
          TESSEL_CHECK(n == grp.nodes.back(), what, "group ", k, " has a second exit: %",
                       v->name(), " of ", n->describe(), " leaves it");
      }
  }
}

void printFusionPlan(std::ostream &os, const FusionPlan &plan) {
  for (const FusionGroup &grp : plan.groups) {
    os << "group " << grp.id << " (" << opPatternName(grp.pattern) << ", master "
       << fusionNodeLabel(*grp.master) << "): ";
    for (size_t i = 0; i < grp.nodes.size(); ++i)
      os << (i ? " -> " : "") << grp.nodes[i]->opType << "(" << fusionNodeLabel(*grp.nodes[i])
         << ")";
    os << "; inputs:";
    for (size_t i = 0; i < grp.inputs.size(); ++i)
      os << (i ? ", " : " ") << valueLabel(grp.inputs[i]);
    os << "; outputs:";
    for (size_t i = 0; i < grp.outputs.size(); ++i)
      os << (i ? ", " : " ") << valueLabel(grp.outputs[i]);
    os << "\n";
  }
}

void writeFusionDot(std::ostream &os, const Graph &g, const FusionPlan *plan) {
  std::unordered_map<const Node *, int64_t> id;
  for (auto &n : g.nodes())
    id[n.get()] = int64_t(id.size());
  os << "digraph \"" << dotEscape(g.name.empty() ? "graph" : g.name) << "\" {\n"
     << "  rankdir=TB;\n  node [shape=box, style=\"rounded,filled\", fillcolor=white, "
        "fontname=\"Helvetica\"];\n  edge [fontname=\"Helvetica\", fontsize=9];\n";
  auto nodeLine = [&](const Node &n, const char *indent) {
    OpPattern p = nodePattern(n);
    os << indent << "n" << id[&n] << " [label=\"" << dotEscape(n.opType) << "\\n"
       << dotEscape(fusionNodeLabel(n)) << "\", fillcolor=\"" << patternColor(p) << "\"];\n";
  };
  // Graph inputs that are not weights, and graph outputs, as ellipses.
  std::unordered_set<const Value *> weights(g.initializers.begin(), g.initializers.end());
  std::unordered_map<const Value *, std::string> ioName;
  for (size_t i = 0; i < g.inputs.size(); ++i)
    if (g.inputs[i] && !weights.count(g.inputs[i]) && !g.inputs[i]->isConstant()) {
      std::string name = "in" + std::to_string(i);
      ioName[g.inputs[i]] = name;
      os << "  " << name << " [shape=ellipse, style=solid, label=\""
         << dotEscape(valueLabel(g.inputs[i])) << "\"];\n";
    }
  for (size_t i = 0; i < g.outputs.size(); ++i)
    if (g.outputs[i])
      os << "  out" << i << " [shape=ellipse, style=solid, label=\""
         << dotEscape(valueLabel(g.outputs[i])) << "\"];\n";
  if (plan) {
    for (const FusionGroup &grp : plan->groups) {
      os << "  subgraph cluster_" << grp.id << " {\n    label=\"group " << grp.id << ": "
         << opPatternName(grp.pattern) << " (master " << dotEscape(fusionNodeLabel(*grp.master))
         << ")\";\n    style=\"rounded,filled\"; fillcolor=\"" << patternColor(grp.pattern)
         << "\"; color=\"#555555\";\n";
      for (const Node *n : grp.nodes)
        nodeLine(*n, "    ");
      os << "  }\n";
    }
  } else {
    for (auto &n : g.nodes())
      nodeLine(*n, "  ");
  }
  for (auto &n : g.nodes())
    for (const Value *v : n->inputs()) {
      if (!v)
        continue;
      std::string from;
      if (v->producer() && id.count(v->producer()))
        from = "n" + std::to_string(id[v->producer()]);
      else if (auto it = ioName.find(v); it != ioName.end())
        from = it->second;
      else
        continue; // a weight
      os << "  " << from << " -> n" << id[n.get()] << " [label=\"" << dotEscape(v->type.str())
         << "\"];\n";
    }
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const Value *v = g.outputs[i];
    if (!v)
      continue;
    std::string from;
    if (v->producer() && id.count(v->producer()))
      from = "n" + std::to_string(id[v->producer()]);
    else if (auto it = ioName.find(v); it != ioName.end())
      from = it->second;
    else
      continue;
    os << "  " << from << " -> out" << i << " [label=\"" << dotEscape(v->type.str()) << "\"];\n";
  }
  os << "}\n";
}

} // namespace tessel
