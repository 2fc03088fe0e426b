//===- InlineControlFlow.cpp - inline If, unroll Loop and Scan into the graph ------===//
//
// The compiler has no lowering for ops whose behaviour is a subgraph; this pass makes the
// common cases compilable by copying their bodies into the outer graph, where fusion and the
// ordinary lowerings see plain ops. It matches the reference kernels in
// lib/Graph/Ops/ControlFlow.cpp exactly:
//
//   If(c) with a constant c          -> the taken branch's nodes
//   If(c) with a run-time c          -> both branches' nodes; out_i = Where(c, then_i, else_i)
//                                       (only when then_i and else_i are tensors of one static
//                                       shape and dtype; sequences of as many such elements
//                                       select element by element, optionals both present
//                                       select their elements, both absent stay absent)
//   Loop(M, c, v...) with constant M -> M copies of the body: iteration number an i64 constant,
//                                       the body's cond input a constant true (it is true in
//                                       every iteration that runs), carried values threaded;
//                                       unless c and the body's cond are provably always true,
//                                       an `active` flag (c AND each iteration's cond) keeps
//                                       v = Where(active, new, old) (no scan outputs then);
//                                       scan outputs stacked with Unsqueeze + Concat on axis 0
//   Scan (opset 9+)                  -> one body copy per step over Gather(input, t, axis)
//                                       (index reversed for direction 1), states threaded, scan
//                                       outputs stacked on their axis (reversed for direction 1)
//   Scan (opset 8)                   -> the same per batch entry (Gather on the batch axis),
//                                       results stacked on axis 0; only without sequence_lens
//                                       (or with every length equal to the full length)
//   SequenceMap(S, ...)              -> one body copy per element of S (the other sequence
//                                       inputs' elements at the same position, tensor inputs
//                                       as they are); each output a SequenceConstruct of the
//                                       copies' results (SequenceEmpty for no element)
//
// Sequences and optionals flow through: the branches of an If with a constant condition and the
// carried values of a Loop that always runs its trip count may be sequences or optionals, which
// fold-static-sequences then folds (tessel compile alternates the two, with fold-constants,
// until none changes anything, docs/compile.md). A sequence's elements are known here
// when it is in the canonical form fold-static-sequences leaves: SequenceConstruct or
// SequenceEmpty (an optional: Optional(x) or Optional()).
//
// A node is left alone (the "has no lowering" error or the interpreter fallback applies) when
// the trip count or sequence length is not static, a sequence or optional whose structure is not
// known at compile time meets a run-time condition, the
// copies would exceed kMaxInlinedNodes, or a copy does not type-check (then the partial copy is
// removed again). Nested control flow is copied with its subgraphs (captures re-pointed) and
// inlined in a later sweep. Only the top-level graph is rewritten.
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Transforms.h"
#include "tessel/Graph/PassUtils.h"

#include <algorithm>
#include <functional>
#include <memory>
#include <optional>
#include <unordered_map>
#include <unordered_set>

namespace tessel {

using namespace passutils;

namespace {

/// The most nodes one If/Loop/Scan may expand into (body nodes, counted with nested subgraphs,
/// times the copies); a bigger one is left alone.
constexpr int64_t kMaxInlinedNodes = 4096;
/// The most body nodes the pass copies in one run (nested loops multiply).
constexpr int64_t kMaxNodesPerRun = 4 * kMaxInlinedNodes;

using ValueMap = std::unordered_map<const Value *, Value *>;
/// Maps a value an (inner) subgraph captures to the value it names in the new copy.
using OuterResolver = std::function<Value *(const Value *)>;

/// Nodes of g and of every subgraph nested in it.
int64_t countNodes(const Graph &g) {
  int64_t n = 0;
  for (auto &node : g.nodes()) {
    ++n;
    for (auto &[name, a] : node->attrs) {
      if (a.g)
        n += countNodes(*a.g);
      for (auto &sg : a.graphs)
        if (sg)
          n += countNodes(*sg);
    }
  }
  return n;
}

const Graph *graphAttr(const Node &n, const std::string &name) {
  const Attribute *a = n.attr(name);
  return a && a->kind == Attribute::Kind::Graph && a->g ? a->g.get() : nullptr;
}

bool isTensorValue(const Value *v) { return v && v->type.isTensor(); }

/// A tensor or a value whose type inference left unknown (a subgraph's capture is typed when it
/// is parsed or imported, so a body's types may be unknown where the copies' will be known):
/// sequences and optionals are not.
bool maybeTensor(const Value *v) {
  return v && (v->type.isTensor() || v->type.kind == Type::Kind::Unknown);
}

/// A tensor of one static shape and a known dtype.
bool isStaticTensor(const Type &t) {
  return t.isTensor() && t.dtype != DType::undefined && t.shape.isStatic();
}

/// A sequence, an optional, or a tensor of known dtype: a value the rewrite may produce (the
/// sequences and optionals for fold-static-sequences to fold).
bool isKnownKind(const Type &t) {
  return (t.isTensor() && t.dtype != DType::undefined) || t.kind == Type::Kind::Sequence ||
         t.kind == Type::Kind::Optional;
}

/// The elements of a sequence in canonical form (SequenceConstruct, SequenceEmpty), else nullopt.
std::optional<std::vector<Value *>> staticSequenceElements(const Value *v) {
  const Node *p = v ? v->producer() : nullptr;
  if (!p || !p->domain.empty())
    return std::nullopt;
  if (p->opType == "SequenceEmpty")
    return std::vector<Value *>{};
  if (p->opType != "SequenceConstruct")
    return std::nullopt;
  std::vector<Value *> r;
  for (Value *e : p->inputs())
    if (e)
      r.push_back(e);
  return r;
}

/// The element of an optional in canonical form: Optional(x) -> x, Optional() -> nullptr;
/// nullopt when not known.
std::optional<Value *> staticOptionalElement(const Value *v) {
  const Node *p = v ? v->producer() : nullptr;
  if (!p || !p->domain.empty() || p->opType != "Optional")
    return std::nullopt;
  return p->numInputs() ? p->input(0) : nullptr;
}

int64_t staticNumel(const Type &t) {
  int64_t n = 1;
  for (int64_t d : t.shape.staticDims())
    n *= d;
  return n;
}

/// A boolean scalar or one-element tensor (the form of every If/Loop condition).
bool isScalarBool(const Type &t) {
  return isStaticTensor(t) && t.dtype == DType::boolean && staticNumel(t) == 1;
}

/// The value of `v` when it is a one-element constant of g (through Identity nodes).
std::optional<double> scalarConstant(const Graph &g, const Value *v) {
  while (v && v->producer() && v->producer()->opType == "Identity" &&
         v->producer()->domain.empty())
    v = v->producer()->input(0);
  const Tensor *t = constantOf(g, v);
  if (!t || t->numel() != 1 || t->dtype() == DType::string)
    return std::nullopt;
  return t->getDouble(0);
}

/// True when `v` is body input `in` (through Identity nodes).
bool isPassThrough(const Value *v, const Value *in) {
  while (v && v->producer() && v->producer()->opType == "Identity" &&
         v->producer()->domain.empty())
    v = v->producer()->input(0);
  return v == in;
}

std::shared_ptr<Graph> cloneGraph(const Graph &src, Graph *parent, const OuterResolver &resolve);
void refineTypes(Graph &sg);

/// Appends to `dst` a copy of node `n` reading `ins`, its outputs named `outNames`, the node
/// named `name`; its subgraphs are cloned with their captures re-pointed through `resolve`
/// (and their types re-inferred when `refine`).
Node *copyNode(Graph &dst, const Node &n, std::vector<Value *> ins,
               const std::vector<std::string> &outNames, const std::string &name,
               const OuterResolver &resolve, bool refine) {
  Node *c = dst.appendNode(n.opType, std::move(ins), outNames, name);
  c->domain = n.domain;
  c->attrs = n.attrs;
  auto clone = [&](std::shared_ptr<Graph> &sg) {
    if (!sg)
      return;
    sg = cloneGraph(*sg, &dst, resolve);
    if (refine)
      refineTypes(*sg);
  };
  for (auto &[attrName, a] : c->attrs) {
    clone(a.g);
    for (auto &sg : a.graphs)
      clone(sg);
  }
  return c;
}

/// Copies subgraph `src` (held by a node being copied) under `parent`; values it captures are
/// re-pointed through `resolve`.
std::shared_ptr<Graph> cloneGraph(const Graph &src, Graph *parent, const OuterResolver &resolve) {
  auto dst = std::make_shared<Graph>();
  dst->name = src.name;
  dst->opsets = src.opsets;
  dst->parent = parent;
  dst->sourceFile = src.sourceFile;
  ValueMap m;
  std::unordered_set<const Value *> inputs(src.inputs.begin(), src.inputs.end());
  for (auto &vp : src.values()) {
    const Value *v = vp.get();
    if (v->producer() || !(v->outer || v->isConstant() || inputs.count(v)))
      continue;
    Value *nv = dst->createValue(v->name(), v->type);
    nv->constant = v->constant;
    if (v->outer)
      nv->outer = resolve(v->outer);
    m[v] = nv;
  }
  auto map = [&](const Value *v) -> Value * {
    if (!v)
      return nullptr;
    auto it = m.find(v);
    TESSEL_CHECK(it != m.end(), "graph '", src.name, "': value '", v->name(),
                 "' is used but not defined (expected an input, initializer, capture or node "
                 "output)");
    return it->second;
  };
  OuterResolver inner = [&](const Value *v) -> Value * {
    auto it = m.find(v);
    return it != m.end() ? it->second : resolve(v);
  };
  for (const Value *v : src.inputs)
    dst->inputs.push_back(map(v));
  for (const Value *v : src.initializers)
    dst->initializers.push_back(map(v));
  for (auto &np : src.nodes()) {
    const Node &n = *np;
    std::vector<Value *> ins;
    for (const Value *v : n.inputs())
      ins.push_back(map(v));
    std::vector<std::string> outNames;
    for (const Value *o : n.outputs())
      outNames.push_back(o ? o->name() : "");
    Node *c = copyNode(*dst, n, ins, outNames, n.name, inner, false);
    for (size_t i = 0; i < n.numOutputs(); ++i)
      if (n.output(i)) {
        c->output(i)->type = n.output(i)->type;
        m[n.output(i)] = c->output(i);
      }
  }
  for (const Value *v : src.outputs)
    dst->outputs.push_back(map(v));
  return dst;
}

/// Re-infers the types in a copied subgraph now that the values it captures are the copies'
/// (whose types inference knows): captures take their outer value's type, then each node (its
/// own subgraphs first) is inferred in order. A node whose inference fails keeps its types.
void refineTypes(Graph &sg) {
  for (auto &v : sg.values())
    if (v->outer && v->outer->type.kind != Type::Kind::Unknown)
      v->type = v->outer->type;
  for (auto &np : sg.nodes()) {
    Node &n = *np;
    for (auto &[name, a] : n.attrs) {
      if (a.g)
        refineTypes(*a.g);
      for (auto &g : a.graphs)
        if (g)
          refineTypes(*g);
    }
    try {
      std::vector<Type> ts = inferNode(n);
      for (size_t i = 0; i < n.numOutputs() && i < ts.size(); ++i)
        if (n.output(i))
          n.output(i)->type = ts[i];
    } catch (const std::exception &) {
    }
  }
}

/// Rewrites one graph; each expand* method either replaces its node or leaves the graph as it
/// was (an Error while building a copy rolls the copy back).
class Inliner {
public:
  Inliner(Graph &g, PassStats &stats) : g_(g), stats_(stats) {}

  /// One sweep over the nodes present now; true when something was inlined.
  bool sweep() {
    std::vector<Node *> nodes;
    for (auto &np : g_.nodes())
      nodes.push_back(np.get());
    bool changed = false;
    for (Node *n : nodes) {
      if (!n->domain.empty() && n->domain != "ai.onnx")
        continue;
      if (n->opType == "If")
        changed |= attempt(*n, [&] { return expandIf(*n); });
      else if (n->opType == "Loop")
        changed |= attempt(*n, [&] { return expandLoop(*n); });
      else if (n->opType == "Scan")
        changed |= attempt(*n, [&] { return expandScan(*n); });
      else if (n->opType == "SequenceMap")
        changed |= attempt(*n, [&] { return expandSequenceMap(*n); });
    }
    if (changed)
      g_.sortTopologically();
    return changed;
  }

private:
  /// The replacement of one node: its outputs' new values, committed only when complete.
  struct Replacement {
    std::vector<Value *> outputs; // per node output (nullptr where the output is omitted)
  };

  Graph &g_;
  PassStats &stats_;
  int64_t copiedNodes_ = 0;
  // The current attempt's additions, for a rollback.
  std::vector<Node *> added_;
  std::vector<Value *> addedConstants_;
  ValueMap bodyConstants_; // body initializer -> its copy in g (shared by the copies)
  std::string constantPrefix_; // "<node name>.": the copies' initializer names

  template <class F> bool attempt(Node &n, F expand) {
    added_.clear();
    addedConstants_.clear();
    bodyConstants_.clear();
    constantPrefix_ = (n.name.empty() ? n.opType : n.name) + ".";
    std::optional<Replacement> r;
    try {
      r = expand();
    } catch (const std::exception &) {
      r.reset(); // a copy did not type-check: leave the node alone
    }
    // Every replacement value is a tensor whose type the copies' inference knows, or a
    // sequence or optional (for fold-static-sequences).
    for (size_t i = 0; r && i < n.numOutputs(); ++i)
      if (n.output(i) && (!r->outputs[i] || !isKnownKind(r->outputs[i]->type)))
        r.reset();
    if (!r) {
      rollback();
      return false;
    }
    commit(n, *r);
    return true;
  }

  void rollback() {
    for (auto it = added_.rbegin(); it != added_.rend(); ++it)
      g_.eraseNode(*it);
    ConstValueSet none;
    for (Value *v : addedConstants_)
      dropIfDead(g_, none, v);
    added_.clear();
    addedConstants_.clear();
  }

  void commit(Node &n, const Replacement &r) {
    std::vector<Value *> olds = n.outputs();
    std::unordered_set<Value *> renamed;
    for (size_t i = 0; i < olds.size(); ++i) {
      Value *old = olds[i], *nv = r.outputs[i];
      if (!old)
        continue;
      redirectCaptures(g_, old, nv);
      old->replaceAllUsesWith(nv);
    }
    g_.eraseNode(&n);
    // Copies nothing reads (the conditions of an always-true loop, scan outputs the node did
    // not return) go at once: no later pass need run for the graph to compile at -O0.
    ConstValueSet captured = capturedValues(g_);
    std::unordered_set<const Node *> erased;
    for (auto it = added_.rbegin(); it != added_.rend(); ++it) {
      bool dead = true;
      for (const Value *o : (*it)->outputs())
        dead &= !o || (o->uses().empty() && !isGraphOutput(g_, o) && !captured.count(o));
      if (dead) {
        erased.insert(*it);
        g_.eraseNode(*it);
      }
    }
    std::erase_if(added_, [&](Node *a) { return erased.count(a) > 0; });
    for (Value *v : addedConstants_)
      dropIfDead(g_, captured, v);
    // The new values take the old names where they are fresh values of this rewrite, so that
    // readers of the IR (and of --print-after) see the same names.
    std::unordered_set<const Node *> mine(added_.begin(), added_.end());
    for (size_t i = 0; i < olds.size(); ++i) {
      Value *old = olds[i], *nv = r.outputs[i];
      if (!old || !nv->producer() || !mine.count(nv->producer()) || renamed.count(nv))
        continue;
      std::string name = old->name();
      g_.renameValue(old, g_.uniqueName(name + ".inlined"));
      g_.renameValue(nv, name);
      renamed.insert(nv);
    }
    added_.clear();
    addedConstants_.clear();
  }

  //===--------------------------------------------------------------------===//
  // Building blocks
  //===--------------------------------------------------------------------===//

  Value *constant(const std::string &base, const Tensor &t) {
    Value *v = addConstant(g_, base, t);
    addedConstants_.push_back(v);
    return v;
  }

  /// Appends op(inputs) with attributes, named after `base`; its output types are inferred now,
  /// so later checks see them (an inference error aborts the attempt).
  Value *emit(const std::string &op, std::vector<Value *> inputs, const std::string &base,
              std::map<std::string, Attribute> attrs = {}) {
    Node *n = appendInferred(g_, op, std::move(inputs), base, std::move(attrs));
    added_.push_back(n);
    return n->output(0);
  }

  int64_t opset() const { return g_.opsetVersion(""); }

  bool hasOp(const char *op) const {
    return OpRegistry::get().lookup("", op, opset()) != nullptr;
  }

  /// A one-element condition as a scalar (Where and And then keep the values' shapes).
  Value *scalarCond(Value *c, const std::string &base) {
    if (c->type.shape.rank() == 0)
      return c;
    return emit("Reshape", {c, constant(base + ".scalar_shape", Tensor(DType::i64, {0}))},
                base + ".scalar");
  }

  /// Stacks equally shaped values along a new axis `axis` (normalized to [0, rank]): Unsqueeze
  /// (axes an attribute before opset 13, an input since) and Concat.
  Value *stack(const std::vector<Value *> &parts, int64_t axis, const std::string &base) {
    Value *axes = opset() >= 13
                      ? constant(base + ".axes", Tensor::fromVector<int64_t>({1}, {axis}))
                      : nullptr;
    std::vector<Value *> us;
    for (size_t i = 0; i < parts.size(); ++i) {
      std::string name = base + ".part" + std::to_string(i);
      us.push_back(axes ? emit("Unsqueeze", {parts[i], axes}, name)
                        : emit("Unsqueeze", {parts[i]}, name, {{"axes", Attribute::ofInts({axis})}}));
    }
    if (us.size() == 1)
      return us[0];
    return emit("Concat", us, base, {{"axis", Attribute::ofInt(axis)}});
  }

  /// Slice `index` of v along `axis`, the axis removed (Gather with a scalar index).
  Value *sliceAt(Value *v, int64_t axis, int64_t index, const std::string &base) {
    Value *idx = constant(base + ".index", Tensor::scalar<int64_t>(index));
    return emit("Gather", {v, idx}, base, {{"axis", Attribute::ofInt(axis)}});
  }

  /// An empty stacked output: `elem` (a static tensor type) with a 0 dim inserted at `axis`.
  Value *emptyStack(const Type &elem, int64_t axis, const std::string &base) {
    std::vector<int64_t> s = elem.shape.staticDims();
    s.insert(s.begin() + axis, 0);
    return constant(base, Tensor(elem.dtype, s));
  }

  /// Copies body's nodes into g. `env` maps the body's inputs; captures map to the outer values
  /// they name; initializers to copies shared by every copy of this body. Returns the values of
  /// the body's outputs.
  std::vector<Value *> inlineBody(const Graph &body, ValueMap env, const std::string &prefix) {
    copiedNodes_ += countNodes(body);
    TESSEL_CHECK(copiedNodes_ <= kMaxNodesPerRun, "inline-control-flow: over the limit of ",
                 kMaxNodesPerRun, " copied nodes in one run");
    std::function<Value *(const Value *)> lookup = [&](const Value *v) -> Value * {
      if (!v)
        return nullptr;
      if (auto it = env.find(v); it != env.end())
        return it->second;
      if (v->graph() == &g_)
        return const_cast<Value *>(v); // a nested capture naming an outer value directly
      if (v->graph() == &body && v->outer) {
        TESSEL_CHECK(v->outer->graph() == &g_, "capture '", v->name(),
                     "' does not name a value of the graph being rewritten");
        return const_cast<Value *>(v->outer);
      }
      if (v->graph() == &body && v->isConstant() && !v->producer()) {
        Value *&c = bodyConstants_[v];
        if (!c)
          c = constant(constantPrefix_ + v->name(), v->constant);
        return c;
      }
      fail("graph '", body.name, "': value '", v->name(), "' is used but not defined");
    };
    for (auto &np : body.nodes()) {
      const Node &n = *np;
      // A Constant node's tensor becomes an initializer shared by the copies, as the body's
      // initializers do (the -O0 pipeline has no constant folding to do it).
      if (const Tensor *t = constantOf(body, n.output(0)); t && n.opType == "Constant") {
        Value *&c = bodyConstants_[n.output(0)];
        if (!c)
          c = constant(constantPrefix_ + n.output(0)->name(), *t);
        env[n.output(0)] = c;
        continue;
      }
      std::vector<Value *> ins;
      for (const Value *v : n.inputs())
        ins.push_back(lookup(v));
      std::vector<std::string> outNames;
      for (const Value *o : n.outputs())
        outNames.push_back(o ? g_.uniqueName(prefix + o->name()) : "");
      Node *c = copyNode(g_, n, ins, outNames,
                         g_.uniqueName(prefix + (n.name.empty() ? n.opType : n.name)), lookup, true);
      added_.push_back(c);
      for (size_t i = 0; i < n.numOutputs(); ++i)
        if (n.output(i))
          env[n.output(i)] = c->output(i);
      setInferredTypes(*c);
    }
    std::vector<Value *> outs;
    for (const Value *v : body.outputs)
      outs.push_back(lookup(v));
    return outs;
  }

  /// The prefix of the names of a node's copies: "<node name or op>.<what>."
  static std::string prefixOf(const Node &n, const std::string &what) {
    return (n.name.empty() ? n.opType : n.name) + "." + (what.empty() ? "" : what + ".");
  }

  /// `copies` copies of body fit kMaxInlinedNodes (an empty body counts as one node a copy:
  /// each copy still adds the threading and stacking nodes).
  bool withinBudget(int64_t copies, const Graph &body) {
    if (copies <= kMaxInlinedNodes &&
        copies * std::max<int64_t>(1, countNodes(body)) <= kMaxInlinedNodes)
      return true;
    stats_.add("over-budget");
    return false;
  }

  //===--------------------------------------------------------------------===//
  // If
  //===--------------------------------------------------------------------===//

  std::optional<Replacement> expandIf(Node &n) {
    const Graph *thenG = graphAttr(n, "then_branch"), *elseG = graphAttr(n, "else_branch");
    Value *cond = n.input(0);
    if (!thenG || !elseG || !thenG->inputs.empty() || !elseG->inputs.empty() || !cond ||
        thenG->outputs.size() != elseG->outputs.size() ||
        thenG->outputs.size() < n.numOutputs())
      return std::nullopt;
    const std::string base = n.name.empty() ? "If" : n.name;
    Replacement r;
    if (std::optional<double> c = scalarConstant(g_, cond)) {
      const Graph &taken = *c != 0 ? *thenG : *elseG;
      if (!withinBudget(1, taken))
        return std::nullopt;
      std::vector<Value *> outs = inlineBody(taken, {}, prefixOf(n, *c != 0 ? "then" : "else"));
      r.outputs.assign(outs.begin(), outs.begin() + n.numOutputs());
      stats_.add("if-constant-cond");
      return r;
    }
    if (!isScalarBool(cond->type) || !hasOp("Where"))
      return std::nullopt;
    if (countNodes(*thenG) + countNodes(*elseG) > kMaxInlinedNodes) {
      stats_.add("over-budget");
      return std::nullopt;
    }
    std::vector<Value *> t = inlineBody(*thenG, {}, prefixOf(n, "then"));
    std::vector<Value *> e = inlineBody(*elseG, {}, prefixOf(n, "else"));
    Value *c = scalarCond(cond, base + ".cond");
    for (size_t i = 0; i < n.numOutputs(); ++i) {
      if (!n.output(i)) {
        r.outputs.push_back(nullptr);
        continue;
      }
      Value *v = select(c, t[i], e[i], n.output(i)->name() + ".select");
      if (!v)
        return std::nullopt;
      r.outputs.push_back(v);
    }
    stats_.add("if-inlined");
    return r;
  }

  /// Where(c, a, b) over two values of one structure: tensors of one static shape and dtype,
  /// sequences (canonical) of as many such elements, optionals both present (their elements
  /// selected) or both absent; nullptr when the structures differ or are not known.
  Value *select(Value *c, Value *a, Value *b, const std::string &base) {
    const Type &at = a->type, &bt = b->type;
    if (at.isTensor()) {
      if (!isStaticTensor(at) || !(at == bt))
        return nullptr;
      return emit("Where", {c, a, b}, base);
    }
    if (at.kind == Type::Kind::Sequence && bt.kind == Type::Kind::Sequence) {
      auto ea = staticSequenceElements(a), eb = staticSequenceElements(b);
      if (!ea || !eb || ea->size() != eb->size())
        return nullptr;
      if (ea->empty())
        return at == bt ? a : nullptr;
      std::vector<Value *> parts;
      for (size_t i = 0; i < ea->size(); ++i) {
        Value *v = select(c, (*ea)[i], (*eb)[i], base + ".elem" + std::to_string(i));
        if (!v || !v->type.isTensor())
          return nullptr;
        parts.push_back(v);
      }
      return emit("SequenceConstruct", parts, base);
    }
    if (at.kind == Type::Kind::Optional && bt.kind == Type::Kind::Optional) {
      auto oa = staticOptionalElement(a), ob = staticOptionalElement(b);
      if (!oa || !ob || (*oa == nullptr) != (*ob == nullptr))
        return nullptr; // presence decided at run time: no static structure
      if (!*oa)
        return at == bt ? a : nullptr;
      Value *v = select(c, *oa, *ob, base + ".elem");
      return v ? emit("Optional", {v}, base) : nullptr;
    }
    return nullptr;
  }

  //===--------------------------------------------------------------------===//
  // Loop
  //===--------------------------------------------------------------------===//

  std::optional<Replacement> expandLoop(Node &n) {
    const Graph *body = graphAttr(n, "body");
    if (!body || n.numInputs() < 2)
      return std::nullopt;
    const size_t N = n.numInputs() - 2;
    if (body->inputs.size() != N + 2 || body->outputs.size() < N + 1)
      return std::nullopt;
    const size_t K = body->outputs.size() - 1 - N;
    if (n.numOutputs() > N + K)
      return std::nullopt;
    // The trip count: a constant (after the input-shape overrides and shape inference).
    const Tensor *mt = n.input(0) ? constantOf(g_, n.input(0)) : nullptr;
    if (!mt || !isInteger(mt->dtype()) || mt->numel() != 1)
      return std::nullopt;
    int64_t trips = std::max<int64_t>(0, mt->getInt64(0));
    // The iteration number, the conditions and the scan outputs are tensors; a carried value
    // may be a sequence or optional (`structured`) when the loop always runs its trip count.
    bool structured = false;
    for (size_t j = 0; j < N; ++j) {
      if (!n.input(2 + j))
        return std::nullopt;
      structured |= !isTensorValue(n.input(2 + j)) || !maybeTensor(body->inputs[2 + j]) ||
                    !maybeTensor(body->outputs[1 + j]);
    }
    for (size_t j = 0; j < 2; ++j)
      if (!maybeTensor(body->inputs[j]))
        return std::nullopt;
    if (!maybeTensor(body->outputs[0]))
      return std::nullopt;
    for (size_t k = 0; k < K; ++k)
      if (!maybeTensor(body->outputs[1 + N + k]))
        return std::nullopt;
    for (size_t i = 0; i < n.numOutputs(); ++i) {
      const Value *o = n.output(i);
      if (o && !o->type.isTensor() && o->type.kind != Type::Kind::Unknown)
        structured = true;
    }
    // The initial condition: absent = true, a constant, or a run-time value.
    Value *cond = n.input(1);
    std::optional<double> c0 = cond ? scalarConstant(g_, cond) : std::optional<double>(1.0);
    if (c0 && *c0 == 0)
      trips = 0;
    if (!c0 && !isScalarBool(cond->type))
      return std::nullopt;
    const Value *bodyCond = body->outputs[0];
    std::optional<double> bc = scalarConstant(*body, bodyCond);
    const bool alwaysTrue = isPassThrough(bodyCond, body->inputs[1]) || (bc && *bc != 0);
    const bool guarded = !(c0 && alwaysTrue); // carry `active`
    bool scanUsed = false;
    for (size_t i = N; i < n.numOutputs(); ++i)
      scanUsed |= n.output(i) != nullptr;
    if (trips > 0 && guarded && (structured || scanUsed || !hasOp("Where") || !hasOp("And")))
      return std::nullopt;
    if (!withinBudget(std::max<int64_t>(trips, 1), *body))
      return std::nullopt;

    const std::string base = n.name.empty() ? "Loop" : n.name;
    std::vector<Value *> carried;
    for (size_t j = 0; j < N; ++j)
      carried.push_back(n.input(2 + j));
    std::vector<std::vector<Value *>> scans(K);
    Value *active = nullptr;
    if (trips > 0 && guarded)
      active = c0 ? constant(base + ".active", Tensor::scalar<bool>(true))
                  : scalarCond(cond, base + ".active");
    Value *yes = trips > 0 ? constant(base + ".cond_in", Tensor::scalar<bool>(true)) : nullptr;
    for (int64_t i = 0; i < trips; ++i) {
      const std::string it = "iter" + std::to_string(i);
      ValueMap env;
      env[body->inputs[0]] = constant(base + "." + it + ".i", Tensor::scalar<int64_t>(i));
      env[body->inputs[1]] = yes; // the body runs only while the condition is true
      for (size_t j = 0; j < N; ++j)
        env[body->inputs[2 + j]] = carried[j];
      std::vector<Value *> outs = inlineBody(*body, env, prefixOf(n, it));
      for (size_t j = 0; j < N; ++j) {
        Value *nv = outs[1 + j];
        if (active) {
          if (!isStaticTensor(nv->type) || !(nv->type == carried[j]->type))
            return std::nullopt; // Where needs one shape for the old and new value
          nv = emit("Where", {active, nv, carried[j]},
                    base + "." + it + ".v" + std::to_string(j));
        }
        carried[j] = nv;
      }
      for (size_t k = 0; k < K; ++k)
        scans[k].push_back(outs[1 + N + k]);
      if (active && i + 1 < trips) {
        Value *ci = outs[0];
        if (!isScalarBool(ci->type))
          return std::nullopt;
        active = emit("And", {active, scalarCond(ci, base + "." + it + ".cond")},
                      base + "." + it + ".active");
      }
    }
    Replacement r;
    for (size_t i = 0; i < n.numOutputs(); ++i) {
      if (!n.output(i)) {
        r.outputs.push_back(nullptr);
        continue;
      }
      if (i < N) {
        r.outputs.push_back(carried[i]);
        continue;
      }
      size_t k = i - N;
      if (scans[k].empty()) {
        const Type &bt = body->outputs[1 + i]->type;
        if (!isStaticTensor(bt))
          return std::nullopt; // the empty output's shape is not known
        r.outputs.push_back(emptyStack(bt, 0, n.output(i)->name() + ".empty"));
        continue;
      }
      r.outputs.push_back(stack(scans[k], 0, n.output(i)->name() + ".stack"));
    }
    stats_.add("loop-unrolled");
    stats_.add("loop-iterations", trips);
    return r;
  }

  //===--------------------------------------------------------------------===//
  // SequenceMap
  //===--------------------------------------------------------------------===//

  std::optional<Replacement> expandSequenceMap(Node &n) {
    const Graph *body = graphAttr(n, "body");
    if (!body || n.numInputs() < 1 || body->inputs.size() != n.numInputs() ||
        body->outputs.size() < n.numOutputs())
      return std::nullopt;
    // The length: that of every sequence input (the first input is one).
    std::vector<std::optional<std::vector<Value *>>> elems;
    int64_t len = -1;
    for (size_t j = 0; j < n.numInputs(); ++j) {
      Value *v = n.input(j);
      if (!v || (j == 0 && v->type.kind != Type::Kind::Sequence))
        return std::nullopt;
      if (v->type.isTensor()) {
        elems.push_back(std::nullopt);
        continue;
      }
      std::optional<std::vector<Value *>> e = staticSequenceElements(v);
      if (!e || (len >= 0 && int64_t(e->size()) != len))
        return std::nullopt;
      len = int64_t(e->size());
      elems.push_back(std::move(e));
    }
    for (const Value *v : body->outputs)
      if (!maybeTensor(v))
        return std::nullopt;
    if (!withinBudget(std::max<int64_t>(len, 1), *body))
      return std::nullopt;
    std::vector<std::vector<Value *>> outs(n.numOutputs());
    for (int64_t i = 0; i < len; ++i) {
      ValueMap env;
      for (size_t j = 0; j < n.numInputs(); ++j)
        env[body->inputs[j]] = elems[j] ? (*elems[j])[size_t(i)] : n.input(j);
      std::vector<Value *> o = inlineBody(*body, env, prefixOf(n, "elem" + std::to_string(i)));
      for (size_t k = 0; k < n.numOutputs(); ++k)
        outs[k].push_back(o[k]);
    }
    Replacement r;
    for (size_t k = 0; k < n.numOutputs(); ++k) {
      const Value *o = n.output(k);
      if (!o) {
        r.outputs.push_back(nullptr);
        continue;
      }
      if (!outs[k].empty()) {
        r.outputs.push_back(emit("SequenceConstruct", outs[k], o->name() + ".seq"));
        continue;
      }
      DType dt = o->type.kind == Type::Kind::Sequence && o->type.elem ? o->type.elem->dtype
                                                                      : body->outputs[k]->type.dtype;
      if (dt == DType::undefined)
        return std::nullopt; // SequenceEmpty needs the element dtype
      r.outputs.push_back(emit("SequenceEmpty", {}, o->name() + ".seq",
                               {{"dtype", Attribute::ofInt(dtypeToOnnx(dt))}}));
    }
    stats_.add("sequence-map-unrolled");
    stats_.add("sequence-map-elements", len);
    return r;
  }

  //===--------------------------------------------------------------------===//
  // Scan
  //===--------------------------------------------------------------------===//

  struct ScanForm {
    size_t n = 0, m = 0, k = 0; // states, scan inputs, scan outputs
    std::vector<int64_t> inAxes, inDirs, outAxes, outDirs;
  };

  /// Scan's attributes, as the reference reads them (nullopt where they are malformed).
  static std::optional<ScanForm> scanForm(const Node &n, const Graph &body, size_t first,
                                          bool v8) {
    ScanForm f;
    std::optional<int64_t> m = intAttr(n, "num_scan_inputs", -1);
    if (!m || *m < 1 || size_t(*m) + first > n.numInputs())
      return std::nullopt;
    f.m = size_t(*m);
    f.n = n.numInputs() - first - f.m;
    if (body.inputs.size() != f.n + f.m || body.outputs.size() < f.n)
      return std::nullopt;
    f.k = body.outputs.size() - f.n;
    if (n.numOutputs() > f.n + f.k)
      return std::nullopt;
    auto list = [&](const char *name, size_t len) -> std::optional<std::vector<int64_t>> {
      auto v = intsAttr(n, name, std::vector<int64_t>(len, 0));
      if (!v || v->size() != len)
        return std::nullopt;
      return v;
    };
    auto dirs = list(v8 ? "directions" : "scan_input_directions", f.m);
    if (!dirs)
      return std::nullopt;
    f.inDirs = *dirs;
    if (v8) {
      f.inAxes.assign(f.m, 0);
      f.outAxes.assign(f.k, 0);
      f.outDirs.assign(f.k, 0);
    } else {
      auto ia = list("scan_input_axes", f.m), oa = list("scan_output_axes", f.k),
           od = list("scan_output_directions", f.k);
      if (!ia || !oa || !od)
        return std::nullopt;
      f.inAxes = *ia;
      f.outAxes = *oa;
      f.outDirs = *od;
    }
    for (int64_t d : f.inDirs)
      if (d != 0 && d != 1)
        return std::nullopt;
    for (int64_t d : f.outDirs)
      if (d != 0 && d != 1)
        return std::nullopt;
    return f;
  }

  /// The steps of one scan: `len` body copies over `ins` (scan axis `axes[j]` of input j),
  /// updating `states`; returns the scan outputs' per-step values in step order.
  std::vector<std::vector<Value *>> scanSteps(const Graph &body, const ScanForm &f,
                                              std::vector<Value *> &states,
                                              const std::vector<Value *> &ins,
                                              const std::vector<int64_t> &axes, int64_t len,
                                              const std::string &prefix) {
    std::vector<std::vector<Value *>> outs(f.k);
    for (int64_t t = 0; t < len; ++t) {
      const std::string step = prefix + "step" + std::to_string(t);
      ValueMap env;
      for (size_t j = 0; j < f.n; ++j)
        env[body.inputs[j]] = states[j];
      for (size_t j = 0; j < f.m; ++j) {
        int64_t index = f.inDirs[j] ? len - 1 - t : t;
        env[body.inputs[f.n + j]] =
            sliceAt(ins[j], axes[j], index, step + ".in" + std::to_string(j));
      }
      std::vector<Value *> o = inlineBody(body, env, step + ".");
      for (size_t j = 0; j < f.n; ++j)
        states[j] = o[j];
      for (size_t k = 0; k < f.k; ++k)
        outs[k].push_back(o[f.n + k]);
    }
    return outs;
  }

  /// The rank of a value with a known rank, else nullopt.
  static std::optional<int64_t> rankOf(const Value *v) {
    if (!v || !v->type.isTensor() || !v->type.shape.rankKnown)
      return std::nullopt;
    return v->type.shape.rank();
  }

  std::optional<Replacement> expandScan(Node &n) {
    const Graph *body = graphAttr(n, "body");
    if (!body)
      return std::nullopt;
    const bool v8 = opset() < 9;
    const size_t first = v8 ? 1 : 0;
    std::optional<ScanForm> form = scanForm(n, *body, first, v8);
    if (!form)
      return std::nullopt;
    const ScanForm &f = *form;
    for (size_t j = first; j < first + f.n; ++j)
      if (!maybeTensor(n.input(j)))
        return std::nullopt;
    for (size_t j = first + f.n; j < n.numInputs(); ++j)
      if (!isTensorValue(n.input(j)) || !n.input(j)->type.shape.rankKnown)
        return std::nullopt;
    for (const Value *v : body->outputs)
      if (!maybeTensor(v))
        return std::nullopt;
    // The sequence length (and for Scan-8 the batch size): static and the same for every input.
    int64_t len = -1, batch = -1;
    std::vector<int64_t> axes(f.m);
    for (size_t j = 0; j < f.m; ++j) {
      const Shape &s = n.input(first + f.n + j)->type.shape;
      int64_t r = s.rank();
      int64_t ax = v8 ? 1 : f.inAxes[j] < 0 ? f.inAxes[j] + r : f.inAxes[j];
      if (ax < 0 || ax >= r || !s.dims[ax].isStatic())
        return std::nullopt;
      if (len >= 0 && s.dims[ax].value != len)
        return std::nullopt;
      len = s.dims[ax].value;
      axes[j] = v8 ? 0 : ax; // Scan-8 slices the batch entry first
    }
    if (v8) {
      for (size_t j = first; j < n.numInputs(); ++j) {
        const Shape &s = n.input(j)->type.shape;
        if (!s.rankKnown || s.rank() < 1 || !s.dims[0].isStatic() ||
            (batch >= 0 && s.dims[0].value != batch))
          return std::nullopt;
        batch = s.dims[0].value;
      }
      if (batch < 1)
        return std::nullopt;
      if (Value *sl = n.input(0)) { // every sequence length must be the full length
        const Tensor *t = constantOf(g_, sl);
        if (!t || !isInteger(t->dtype()) || t->numel() != batch)
          return std::nullopt;
        for (int64_t v : t->toInt64Vector())
          if (v != len)
            return std::nullopt;
      }
    }
    if (len > kMaxInlinedNodes || batch > kMaxInlinedNodes ||
        !withinBudget(std::max<int64_t>(1, len) * std::max<int64_t>(1, batch), *body))
      return std::nullopt;

    const std::string base = n.name.empty() ? "Scan" : n.name;
    Replacement r;
    std::vector<Value *> states(f.n);
    std::vector<std::vector<Value *>> scans; // per scan output: its final value
    if (!v8) {
      for (size_t j = 0; j < f.n; ++j)
        states[j] = n.input(j);
      std::vector<Value *> ins;
      for (size_t j = 0; j < f.m; ++j)
        ins.push_back(n.input(f.n + j));
      auto parts = scanSteps(*body, f, states, ins, axes, len, prefixOf(n, ""));
      for (size_t i = 0; i < n.numOutputs(); ++i) {
        Value *o = n.output(i);
        if (!o || i < f.n) {
          r.outputs.push_back(o ? states[i] : nullptr);
          continue;
        }
        size_t k = i - f.n;
        std::optional<int64_t> rank = rankOf(body->outputs[i]);
        if (!parts[k].empty())
          rank = rankOf(parts[k][0]);
        if (!rank)
          return std::nullopt;
        int64_t axis = f.outAxes[k] < 0 ? f.outAxes[k] + *rank + 1 : f.outAxes[k];
        if (axis < 0 || axis > *rank)
          return std::nullopt;
        if (parts[k].empty()) {
          if (!isStaticTensor(body->outputs[i]->type))
            return std::nullopt;
          r.outputs.push_back(emptyStack(body->outputs[i]->type, axis, o->name() + ".empty"));
          continue;
        }
        if (f.outDirs[k])
          std::reverse(parts[k].begin(), parts[k].end());
        r.outputs.push_back(stack(parts[k], axis, o->name() + ".stack"));
      }
      stats_.add("scan-unrolled");
      stats_.add("scan-steps", len);
      return r;
    }
    // Scan-8: the steps per batch entry, then the entries stacked on axis 0.
    if (len == 0)
      return std::nullopt; // zero-filled outputs: rare, left to the fallback
    std::vector<std::vector<Value *>> finalStates(f.n), outs(f.k);
    for (int64_t b = 0; b < batch; ++b) {
      const std::string pb = prefixOf(n, "batch" + std::to_string(b));
      std::vector<Value *> st(f.n), ins(f.m);
      for (size_t j = 0; j < f.n; ++j)
        st[j] = sliceAt(n.input(1 + j), 0, b, pb + "state" + std::to_string(j));
      for (size_t j = 0; j < f.m; ++j)
        ins[j] = sliceAt(n.input(1 + f.n + j), 0, b, pb + "in" + std::to_string(j));
      auto parts = scanSteps(*body, f, st, ins, axes, len, pb);
      for (size_t j = 0; j < f.n; ++j)
        finalStates[j].push_back(st[j]);
      for (size_t k = 0; k < f.k; ++k)
        if (n.output(f.n + k))
          outs[k].push_back(stack(parts[k], 0, pb + "out" + std::to_string(k)));
    }
    for (size_t i = 0; i < n.numOutputs(); ++i) {
      Value *o = n.output(i);
      if (!o) {
        r.outputs.push_back(nullptr);
        continue;
      }
      r.outputs.push_back(stack(i < f.n ? finalStates[i] : outs[i - f.n], 0, o->name() + ".stack"));
    }
    stats_.add("scan-unrolled");
    stats_.add("scan-steps", len * batch);
    return r;
  }
};

} // namespace

bool inlineControlFlow(Graph &g, PassStats &stats) {
  inferShapes(g); // trip counts, lengths and branch types after the input-shape overrides
  Inliner inliner(g, stats);
  bool changed = false;
  while (inliner.sweep())
    changed = true;
  return changed;
}

} // namespace tessel
