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
// The sequence nodes left without readers are removed. A position or split that is not a
// constant, a sequence that is a graph output or read by a subgraph, or a sequence coming from a
// graph input or a Loop/If leaves that sequence (and what it feeds) alone. Positions count as
// constant when they are initializers, also of a graph input: tessel compile bakes those inputs
// into the artifact. compileModel runs the pass at every -O level, after inline-control-flow.
//
//===----------------------------------------------------------------------===//
#include "PassUtils.h"

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
    if (!changed)
      return false;
    g_.sortTopologically();
    eraseDeadSequenceNodes();
    return true;
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
                                "ConcatFromSequence", "SplitToSequence"};
    return std::any_of(std::begin(ops), std::end(ops), [&](const char *o) { return n.opType == o; });
  }

  /// The sequence nodes, and the nodes this pass made, that nothing reads any more (a split
  /// whose pieces no reader took).
  void eraseDeadSequenceNodes() {
    for (bool again = true; again;) {
      again = false;
      std::vector<Node *> dead;
      for (auto &n : g_.nodes()) {
        if (!isSequenceOp(*n) && !emitted_.count(n.get()))
          continue;
        bool used = false;
        for (const Value *o : n->outputs())
          used |= o && (!o->uses().empty() || isGraphOutput(g_, o) || captured_.count(o));
        if (!used)
          dead.push_back(n.get());
      }
      for (Node *n : dead) {
        emitted_.erase(n);
        g_.eraseNode(n);
        stats_.add("nodes-removed");
        again = true;
      }
    }
    for (Value *v : constants_)
      dropIfDead(g_, captured_, v);
  }

  Graph &g_;
  PassStats &stats_;
  ConstValueSet captured_;
  std::unordered_map<const Value *, List> lists_;
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
