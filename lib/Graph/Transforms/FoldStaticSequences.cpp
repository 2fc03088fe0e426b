//===- FoldStaticSequences.cpp - sequences of known structure as tensors --===//
//
// A compiled model has tensors only, but many sequences inside a graph have a structure known
// at compile time: SequenceConstruct of tensors, then SequenceInsert/SequenceErase at constant
// positions, read back by SequenceAt at a constant position, SequenceLength,
// ConcatFromSequence, or made by SplitToSequence with a constant (or no) split. This pass
// tracks each top-level sequence value as the list of tensor values it holds and rewrites the
// readers:
//
//   SequenceAt(S, p)              -> S[p] (uses forwarded; p may be negative, as the reference)
//   SequenceLength(S)             -> an i64 constant
//   ConcatFromSequence(S, axis)   -> Concat(S..., axis); new_axis = 1: each element reshaped with
//                                    the new axis first (static shapes)
//   SplitToSequence(X, split?)    -> one Slice per piece (no split: pieces of 1, reshaped without
//                                    the axis when keepdims = 0; a scalar split: pieces of that
//                                    size, the last one shorter; a 1-D split: those sizes)
//
//   SequenceInsert(S, t, p)       -> with a run-time p, when t and S's elements share one
//                                    static type: n + 1 elements, each a Where on p
//   SequenceLength(SplitToSequence(X, split)) with a 1-D split of static length k -> k
//   Identity(S)                   -> S's list (a sequence or optional passes through)
//   Optional(x) / Optional()      -> a present (x) / an absent optional
//   OptionalHasElement(O)         -> a bool constant
//   OptionalGetElement(O)         -> O's element, when O is present
//                                    (a tensor or sequence in O's place counts as present)
//
// A known sequence that is still read by a node this pass does not fold (SequenceMap, a Loop,
// a graph output) is rebuilt as SequenceConstruct of its elements (SequenceEmpty with the
// element dtype when it has none), and a known optional as Optional(element) / Optional() with
// its type: the canonical forms that inline-control-flow reads (staticSequenceElements) and
// that tessel compile turns into artifact outputs (docs/compile.md, "Sequence and optional
// inputs and outputs").
//
// The sequence nodes left without readers are removed. A position or split that is not a
// constant, a sequence that is a graph output or read by a subgraph, or a sequence coming from a
// graph input or a Loop/If leaves that sequence (and what it feeds) alone. Positions count as
// constant when they are initializers, also of a graph input: tessel compile bakes those inputs
// into the artifact. compileModel runs the pass at every -O level, after inline-control-flow.
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/PassUtils.h"

#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Transforms.h"

#include <algorithm>
#include <map>
#include <optional>
#include <set>
#include <unordered_map>

namespace tessel {

using namespace passutils;

namespace {

class SequenceFolder {
public:
  SequenceFolder(Graph &g, PassStats &stats) : g_(g), stats_(stats), captured_(capturedValues(g)) {}

  bool run() {
    std::vector<Node *> nodes;
    for (auto &n : g_.nodes())
      nodes.push_back(n.get());
    bool changed = false;
    for (Node *n : nodes)
      if (n->domain.empty() || n->domain == "ai.onnx")
        changed |= visit(*n);
    if (changed)
      g_.sortTopologically();
    // Sequence nodes nothing reads go too when nothing folded (a SequenceMap or Loop that
    // inline-control-flow unrolled leaves its input sequences unread).
    changed |= eraseDeadSequenceNodes();
    // After the dead readers went: only values something still reads are rebuilt.
    nodes.clear();
    for (auto &n : g_.nodes())
      nodes.push_back(n.get());
    bool rebuilt = false;
    for (Node *n : nodes)
      for (Value *o : n->outputs())
        rebuilt |= canonicalize(*n, o);
    if (rebuilt) {
      g_.sortTopologically();
      eraseDeadSequenceNodes();
    }
    return changed || rebuilt;
  }

private:
  using List = std::vector<Value *>;

  /// A scalar or one-element integer constant (an initializer, also of a graph input).
  std::optional<int64_t> constInt(const Value *v) const {
    if (!v || !v->isConstant() || v->constant.numel() != 1 ||
        (v->constant.dtype() != DType::i64 && v->constant.dtype() != DType::i32))
      return std::nullopt;
    return v->constant.getInt64(0);
  }

  const List *listOf(const Value *v) const {
    auto it = lists_.find(v);
    return it == lists_.end() ? nullptr : &it->second;
  }

  /// A known optional: its element (nullptr = absent); nullopt when not known.
  std::optional<Value *> optionalOf(const Value *v) const {
    auto it = optionals_.find(v);
    if (it == optionals_.end())
      return std::nullopt;
    return it->second;
  }

  /// Records that `to` holds what `from` holds (a known list or optional); false when unknown.
  bool alias(const Value *from, Value *to) {
    if (from == to)
      return true;
    lists_.erase(to);
    optionals_.erase(to);
    if (const List *l = listOf(from)) {
      List copy = *l;
      lists_[to] = std::move(copy);
      return true;
    }
    if (std::optional<Value *> o = optionalOf(from)) {
      optionals_[to] = *o;
      return true;
    }
    return false;
  }

  /// Position `p` of a list of n (negative counts from the end); nullopt when out of range
  /// (`end` allows p == n, as SequenceInsert does).
  static std::optional<int64_t> position(int64_t p, int64_t n, bool end) {
    if (p < 0)
      p += n;
    if (p < 0 || p > n || (!end && p == n))
      return std::nullopt;
    return p;
  }

  bool visit(Node &n) {
    const std::string &op = n.opType;
    Value *out = n.numOutputs() ? n.output(0) : nullptr;
    if (!out)
      return false;
    if (op == "SequenceEmpty") {
      lists_[out] = {};
      return false;
    }
    if (op == "SequenceConstruct") {
      List l;
      for (Value *v : n.inputs())
        if (v)
          l.push_back(v);
      lists_[out] = l;
      return false;
    }
    if (op == "SequenceInsert" || op == "SequenceErase") {
      const List *in = listOf(n.input(0));
      if (!in)
        return false;
      List l = *in;
      const int64_t size = int64_t(l.size());
      const bool insert = op == "SequenceInsert";
      const size_t posInput = insert ? 2 : 1;
      std::optional<int64_t> p = insert ? size : size - 1;
      if (n.numInputs() > posInput && n.input(posInput)) {
        std::optional<int64_t> c = constInt(n.input(posInput));
        if (!c && insert && n.input(1))
          return insertAtRuntimePosition(n, l);
        p = c ? position(*c, size, insert) : std::nullopt;
      }
      if (!p || (!insert && size == 0) || (insert && !n.input(1)))
        return false;
      if (insert)
        l.insert(l.begin() + *p, n.input(1));
      else
        l.erase(l.begin() + *p);
      lists_[out] = l;
      return false;
    }
    if (op == "SplitToSequence")
      return split(n);
    if (op == "Identity") {
      alias(n.input(0), out);
      return false;
    }
    if (op == "Optional") {
      if (n.numInputs() && n.input(0))
        optionals_[out] = n.input(0);
      else if (out->type.kind == Type::Kind::Optional)
        optionals_[out] = nullptr;
      return false;
    }
    if (op == "OptionalHasElement" || op == "OptionalGetElement") {
      Value *in = n.numInputs() ? n.input(0) : nullptr;
      std::optional<Value *> o = optionalOf(in);
      // A tensor or a sequence (opset 18 allows them, and a Loop's unrolled copies may carry
      // one where the body expects an optional) counts as present, holding itself.
      if (!o && in && (in->type.isTensor() || in->type.kind == Type::Kind::Sequence))
        o = in;
      if (!o)
        return false;
      if (op == "OptionalHasElement")
        return replace(n, constant(base(n) + ".has_element", Tensor::scalar<bool>(*o != nullptr)));
      if (!*o)
        return false; // the reference's error: an empty optional has no element
      alias(*o, out);
      return replace(n, *o);
    }
    if (op == "SequenceLength")
      if (std::optional<int64_t> k = splitLength(n.input(0)))
        return replace(n, constant(base(n) + ".length", Tensor::scalar<int64_t>(*k)));
    const List *in = listOf(n.numInputs() ? n.input(0) : nullptr);
    if (!in)
      return false;
    if (op == "SequenceAt") {
      std::optional<int64_t> c = constInt(n.numInputs() > 1 ? n.input(1) : nullptr);
      std::optional<int64_t> p = c ? position(*c, int64_t(in->size()), false) : std::nullopt;
      if (!p)
        return false;
      return replace(n, (*in)[size_t(*p)]);
    }
    if (op == "SequenceLength")
      return replace(n, constant(base(n) + ".length",
                                    Tensor::scalar<int64_t>(int64_t(in->size()))));
    if (op == "ConcatFromSequence")
      return concat(n, *in);
    return false;
  }

  /// SequenceInsert(S, t, p) with a run-time position p, when t and S's elements are tensors of
  /// one static type: the result has n + 1 elements whatever p is, element j selected by Where
  /// from t, S[j] and S[j-1] on p (normalized: p < 0 counts from the end). A position out of
  /// range, the reference's error, selects some element.
  bool insertAtRuntimePosition(Node &n, const List &in) {
    Value *t = n.input(1), *pos = n.input(2);
    const Type &tt = t->type;
    if (!tt.isTensor() || !tt.shape.isStatic() || tt.dtype == DType::undefined ||
        !pos->type.isTensor() || !pos->type.shape.isStatic() ||
        (pos->type.dtype != DType::i64 && pos->type.dtype != DType::i32))
      return false;
    int64_t numel = 1;
    for (int64_t d : pos->type.shape.staticDims())
      numel *= d;
    if (numel != 1)
      return false;
    for (const Value *e : in)
      if (!(e->type == tt))
        return false;
    const std::string b = base(n);
    if (in.empty()) {
      lists_[n.output(0)] = {t};
      return true;
    }
    const DType pt = pos->type.dtype;
    std::map<int64_t, Value *> scalars; // one constant per number
    auto scalar = [&](int64_t v) {
      Value *&c = scalars[v];
      if (!c)
        c = constant(b + ".j" + std::to_string(v),
                     pt == DType::i64 ? Tensor::scalar<int64_t>(v)
                                      : Tensor::scalar<int32_t>(int32_t(v)));
      return c;
    };
    const int64_t size = int64_t(in.size());
    Value *p = emit("Reshape", {pos, constant(b + ".scalar_shape", Tensor(DType::i64, {0}))},
                    b + ".position");
    p = emit("Where", {emit("Less", {p, scalar(0)}, b + ".negative"),
                       emit("Add", {p, scalar(size)}, b + ".from_end"), p},
             b + ".normalized");
    List l;
    for (int64_t j = 0; j <= size; ++j) {
      const std::string e = b + ".elem" + std::to_string(j);
      // Where p > j the element is S[j], where p < j S[j-1] (j = 0: p >= 0; j = n: p <= n).
      Value *rest = j == 0      ? in[0]
                    : j == size ? in[size_t(j - 1)]
                                : emit("Where", {emit("Greater", {p, scalar(j)}, e + ".after"),
                                                 in[size_t(j)], in[size_t(j - 1)]},
                                       e + ".shifted");
      l.push_back(emit("Where", {emit("Equal", {p, scalar(j)}, e + ".here"), t, rest}, e));
    }
    lists_[n.output(0)] = l;
    stats_.add("runtime-position-inserts");
    return true;
  }

  /// The number of pieces of SplitToSequence(X, split) whose split is a 1-D tensor of static
  /// length k (its values may be computed at run time): k.
  static std::optional<int64_t> splitLength(const Value *s) {
    const Node *p = s ? s->producer() : nullptr;
    if (!p || p->opType != "SplitToSequence" || p->numInputs() < 2 || !p->input(1))
      return std::nullopt;
    const Type &t = p->input(1)->type;
    if (!t.isTensor() || !t.shape.isStatic() || t.shape.rank() != 1)
      return std::nullopt;
    return t.shape.staticDims()[0];
  }

  bool split(Node &n) {
    Value *x = n.input(0);
    if (!x || !x->type.isTensor() || !x->type.shape.isStatic())
      return false;
    std::vector<int64_t> xs = x->type.shape.staticDims();
    const int64_t r = int64_t(xs.size());
    auto axisAttr = intAttr(n, "axis", 0);
    if (!axisAttr || r == 0 || *axisAttr < -r || *axisAttr >= r)
      return false;
    const int64_t axis = *axisAttr < 0 ? *axisAttr + r : *axisAttr;
    const int64_t dim = xs[size_t(axis)];
    std::vector<int64_t> sizes;
    bool squeeze = false;
    if (n.numInputs() < 2 || !n.input(1)) {
      auto keep = intAttr(n, "keepdims", 1);
      if (!keep)
        return false;
      squeeze = *keep == 0;
      sizes.assign(size_t(dim), 1);
    } else {
      const Value *sp = n.input(1);
      if (!sp->isConstant() || sp->constant.rank() > 1 ||
          (sp->constant.dtype() != DType::i64 && sp->constant.dtype() != DType::i32))
        return false;
      sizes = sp->constant.toInt64Vector();
      if (sp->constant.rank() == 0) {
        const int64_t c = sizes[0];
        if (c <= 0)
          return false;
        sizes.clear();
        for (int64_t s = 0; s < dim; s += c)
          sizes.push_back(std::min(c, dim - s));
      } else {
        int64_t total = 0;
        for (int64_t v : sizes)
          total += v < 0 ? dim + 1 : v; // a negative size: the reference's error, left alone
        if (total != dim)
          return false;
      }
    }
    List l;
    int64_t start = 0;
    std::vector<int64_t> squeezed = xs;
    squeezed.erase(squeezed.begin() + axis);
    for (int64_t v : sizes) {
      auto ints = [](std::vector<int64_t> d) {
        return Tensor::fromVector<int64_t>({int64_t(d.size())}, std::move(d));
      };
      Value *piece = emit("Slice",
                          {x, constant(base(n) + ".start", ints({start})),
                           constant(base(n) + ".end", ints({start + v})),
                           constant(base(n) + ".axis", ints({axis}))},
                          base(n) + ".piece");
      if (squeeze)
        piece = emit("Reshape", {piece, constant(base(n) + ".shape", ints(squeezed))},
                     base(n) + ".squeezed");
      l.push_back(piece);
      start += v;
    }
    lists_[n.output(0)] = l;
    return true;
  }

  bool concat(Node &n, const List &in) {
    if (in.empty())
      return false; // the reference's error
    auto newAxis = intAttr(n, "new_axis", 0);
    auto axisAttr = intAttr(n, "axis", 0);
    if (!newAxis || !axisAttr)
      return false;
    for (const Value *v : in)
      if (!v->type.isTensor() || !v->type.shape.isStatic())
        return false;
    const int64_t r = int64_t(in[0]->type.shape.staticDims().size()) + (*newAxis ? 1 : 0);
    if (*axisAttr < -r || *axisAttr >= r)
      return false;
    const int64_t axis = *axisAttr < 0 ? *axisAttr + r : *axisAttr;
    std::vector<Value *> parts;
    for (Value *v : in) {
      if (!*newAxis) {
        parts.push_back(v);
        continue;
      }
      std::vector<int64_t> s = v->type.shape.staticDims();
      s.insert(s.begin() + axis, 1);
      parts.push_back(emit(
          "Reshape",
          {v, constant(base(n) + ".shape", Tensor::fromVector<int64_t>({int64_t(s.size())}, s))},
          base(n) + ".part"));
    }
    return replace(n, emit("Concat", parts, base(n) + ".concat", {{"axis", Attribute::ofInt(axis)}}));
  }

  /// Rebuilds a known sequence or optional that something still reads (a node, a graph output,
  /// a subgraph) in its canonical form: SequenceConstruct / SequenceEmpty, Optional(x) /
  /// Optional(). Values already in that form, and values nothing reads, stay.
  bool canonicalize(const Node &producer, Value *v) {
    if (!v || (v->uses().empty() && !isGraphOutput(g_, v) && !captured_.count(v)))
      return false;
    const List *l = listOf(v);
    std::optional<Value *> o = optionalOf(v);
    if (!l && !o)
      return false;
    const std::string &op = producer.opType;
    if (l && (op == "SequenceConstruct" || (op == "SequenceEmpty" && l->empty())))
      return false;
    if (o && op == "Optional" && (producer.numInputs() && producer.input(0)) == (*o != nullptr) &&
        (!*o || producer.input(0) == canonical(*o)))
      return false;
    Value *c = nullptr;
    const std::string name = v->name() + ".canonical";
    if (l) {
      for (const Value *e : *l)
        if (!e->type.isTensor() || e->type.dtype == DType::undefined)
          return false; // SequenceConstruct's inference needs tensors of known dtype
      if (!l->empty()) {
        c = emit("SequenceConstruct", *l, name);
      } else {
        if (v->type.kind != Type::Kind::Sequence || !v->type.elem ||
            v->type.elem->dtype == DType::undefined)
          return false; // SequenceEmpty needs the element dtype
        c = emit("SequenceEmpty", {}, name,
                 {{"dtype", Attribute::ofInt(dtypeToOnnx(v->type.elem->dtype))}});
      }
    } else if (*o) {
      c = emit("Optional", {canonical(*o)}, name);
    } else {
      if (v->type.kind != Type::Kind::Optional || !v->type.elem)
        return false; // Optional() needs its type
      Attribute t;
      t.kind = Attribute::Kind::TypeAttr;
      t.type = *v->type.elem;
      c = emit("Optional", {}, name, {{"type", t}});
    }
    alias(v, c);
    canonical_[v] = c;
    redirectCaptures(g_, v, c);
    v->replaceAllUsesWith(c);
    stats_.add("structured-values-canonicalized");
    return true;
  }

  /// The value that stands for `v` after canonicalization.
  Value *canonical(Value *v) const {
    auto it = canonical_.find(v);
    return it == canonical_.end() ? v : it->second;
  }

  /// Forwards the uses of n's output to `v` (a graph output too: its name is restored after).
  bool replace(Node &n, Value *v) {
    Value *o = n.output(0);
    if (captured_.count(o))
      return false;
    o->replaceAllUsesWith(v);
    stats_.add("sequence-reads-folded");
    return true;
  }

  Value *emit(const std::string &op, std::vector<Value *> inputs, const std::string &base,
              std::map<std::string, Attribute> attrs = {}) {
    Node *n = appendInferred(g_, op, std::move(inputs), base, std::move(attrs));
    emitted_.insert(n);
    return n->output(0);
  }

  /// A new initializer (dropped at the end if a split piece that reads it goes unused).
  Value *constant(const std::string &base, const Tensor &t) {
    Value *v = addConstant(g_, base, t);
    constants_.push_back(v);
    return v;
  }

  static std::string base(const Node &n) {
    return n.name.empty() ? (n.output(0) ? n.output(0)->name() : n.opType) : n.name;
  }

  static bool isSequenceOp(const Node &n) {
    static const char *ops[] = {"SequenceEmpty", "SequenceConstruct", "SequenceInsert",
                                "SequenceErase", "SequenceAt", "SequenceLength",
                                "ConcatFromSequence", "SplitToSequence", "Optional",
                                "OptionalHasElement", "OptionalGetElement"};
    return std::any_of(std::begin(ops), std::end(ops), [&](const char *o) { return n.opType == o; });
  }

  /// The sequence nodes, and the nodes this pass made, that nothing reads any more (a split
  /// whose pieces no reader took).
  bool eraseDeadSequenceNodes() {
    bool erased = false;
    for (bool again = true; again;) {
      again = false;
      // The elements of a known sequence or optional that something still reads stay (its
      // canonical form will read them).
      std::set<const Value *> held;
      auto live = [&](const Value *v) {
        return !v->uses().empty() || isGraphOutput(g_, v) || captured_.count(v);
      };
      for (auto &[v, l] : lists_)
        if (live(v))
          held.insert(l.begin(), l.end());
      for (auto &[v, e] : optionals_)
        if (e && live(v))
          held.insert(e);
      std::vector<Node *> dead;
      for (auto &n : g_.nodes()) {
        const bool structuredIdentity = n->opType == "Identity" && n->output(0) &&
                                        (listOf(n->output(0)) || optionalOf(n->output(0)));
        if (!isSequenceOp(*n) && !emitted_.count(n.get()) && !structuredIdentity)
          continue;
        bool used = false;
        for (const Value *o : n->outputs())
          used |= o && (live(o) || held.count(o));
        if (!used)
          dead.push_back(n.get());
      }
      for (Node *n : dead) {
        emitted_.erase(n);
        g_.eraseNode(n);
        stats_.add("nodes-removed");
        again = erased = true;
      }
    }
    for (Value *v : constants_)
      dropIfDead(g_, captured_, v);
    return erased;
  }

  Graph &g_;
  PassStats &stats_;
  ConstValueSet captured_;
  std::unordered_map<const Value *, List> lists_;
  std::unordered_map<const Value *, Value *> optionals_; // element; nullptr = absent
  std::unordered_map<const Value *, Value *> canonical_;
  std::set<const Node *> emitted_;
  std::vector<Value *> constants_;
};

} // namespace

bool foldStaticSequences(Graph &g, PassStats &stats) {
  std::vector<std::string> outputNames;
  for (const Value *v : g.outputs)
    outputNames.push_back(v->name());
  bool changed = SequenceFolder(g, stats).run();
  if (changed)
    g.restoreOutputNames(outputNames);
  return changed;
}

} // namespace tessel
