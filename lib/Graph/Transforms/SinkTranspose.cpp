//===- SinkTranspose.cpp - sink Transposes through elementwise ops and cancel them ----===//
//
// Moves Transposes towards the outputs so that they meet other Transposes and cancel:
//
//   U(Transpose(x, p))                       -> Transpose(U(x), p)     U unary elementwise
//   B(Transpose(x, p), Transpose(y, p))      -> Transpose(B(x, y), p)  B binary elementwise
//   B(Transpose(x, p), c)                    -> Transpose(B(x, c'), p) c constant,
//                                               c' = Transpose(c padded to rank, inverse(p))
//   Transpose(Transpose(x, p1), p2)          -> Transpose(x, p1[p2])   identity -> x
//
// Elementwise ops commute with a permutation of the axes (and so does numpy broadcasting when
// both operands are permuted alike). A Transpose is only moved when the op is its only user, so
// the number of Transposes never grows; each move takes one strictly further down the DAG, so
// the rewriting terminates. A single Transpose is only moved when, further down the chain of
// elementwise ops, it will meet another Transpose (merge, compose or cancel): otherwise moving it
// would only rename values (and might separate it from a MatMul that can absorb it). The op node is rewired in place (its result becomes the
// un-transposed value) and a new Transpose after it takes over its uses.
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/Transforms.h"
#include "tessel/Graph/PassUtils.h"

#include <algorithm>
#include <optional>
#include <set>
#include <string_view>

namespace tessel {

using namespace passutils;

namespace {

/// Unary elementwise ops (input 0 is the tensor; Clip's min/max are scalars).
bool isUnaryElementwise(std::string_view op) {
  static const std::set<std::string_view> ops = {
      "Abs",     "Acos",     "Acosh",       "Asin",  "Asinh",    "Atan",    "Atanh",
      "Cast",    "Ceil",     "Celu",        "Clip",  "Cos",      "Cosh",    "Elu",
      "Erf",     "Exp",      "Floor",       "HardSigmoid",       "HardSwish", "Identity",
      "IsInf",   "IsNaN",    "LeakyRelu",   "Log",   "Mish",     "Neg",     "Not",
      "Reciprocal", "Relu",  "Round",       "Selu",  "Sigmoid",  "Sign",    "Sin",
      "Sinh",    "Softplus", "Softsign",    "Sqrt",  "Tan",      "Tanh",    "ThresholdedRelu"};
  return ops.count(op) != 0;
}

/// Binary elementwise ops with numpy broadcasting (PRelu: the slope broadcasts to X).
bool isBinaryElementwise(std::string_view op) {
  static const std::set<std::string_view> ops = {
      "Add", "And",  "BitShift", "Div",     "Equal", "Greater", "GreaterOrEqual", "Less",
      "LessOrEqual", "Max",      "Mean",    "Min",   "Mod",     "Mul",            "Or",
      "Pow", "PRelu", "Sub",     "Sum",     "Xor"};
  return ops.count(op) != 0;
}

/// A Transpose's permutation (the default reverses the dims; needs the input's rank).
std::optional<std::vector<int64_t>> permOf(const Node &t) {
  if (t.opType != "Transpose" || !t.domain.empty() || t.numInputs() != 1 || !t.input(0) ||
      t.numOutputs() != 1 || !t.output(0))
    return std::nullopt;
  const Type &xt = t.input(0)->type;
  const int64_t rank = xt.isTensor() && xt.shape.rankKnown ? xt.shape.rank() : -1;
  std::vector<int64_t> perm;
  if (const Attribute *a = t.attr("perm")) {
    if (a->kind != Attribute::Kind::Ints)
      return std::nullopt;
    perm = a->ints;
  } else {
    if (rank < 0)
      return std::nullopt;
    for (int64_t i = rank - 1; i >= 0; --i)
      perm.push_back(i);
  }
  if (rank >= 0 && int64_t(perm.size()) != rank)
    return std::nullopt;
  std::vector<bool> seen(perm.size(), false);
  for (int64_t p : perm) {
    if (p < 0 || p >= int64_t(perm.size()) || seen[p])
      return std::nullopt;
    seen[p] = true;
  }
  return perm;
}

std::vector<int64_t> inversePerm(const std::vector<int64_t> &p) {
  std::vector<int64_t> q(p.size());
  for (size_t i = 0; i < p.size(); ++i)
    q[p[i]] = int64_t(i);
  return q;
}

/// Transpose(t, perm) of a constant (any non-string dtype), by element bytes.
Tensor transposeTensor(const Tensor &t, const std::vector<int64_t> &perm) {
  const int64_t r = t.rank();
  std::vector<int64_t> outShape(r);
  for (int64_t i = 0; i < r; ++i)
    outShape[i] = t.dim(perm[i]);
  Tensor out(t.dtype(), outShape);
  const size_t es = dtypeSize(t.dtype());
  std::vector<int64_t> inStride(r, 1);
  for (int64_t i = r - 2; i >= 0; --i)
    inStride[i] = inStride[i + 1] * t.dim(i + 1);
  const auto *src = static_cast<const unsigned char *>(t.raw());
  auto *dst = static_cast<unsigned char *>(out.raw());
  std::vector<int64_t> idx(r, 0);
  for (int64_t o = 0; o < out.numel(); ++o) {
    int64_t off = 0;
    for (int64_t i = 0; i < r; ++i)
      off += idx[i] * inStride[perm[i]];
    std::copy(src + off * es, src + (off + 1) * es, dst + o * es);
    for (int64_t i = r - 1; i >= 0; --i) {
      if (++idx[i] < outShape[i])
        break;
      idx[i] = 0;
    }
  }
  return out;
}

/// The type of U(x) when U(Transpose(x, p)) has type `t`: dims permuted back.
Type untransposedType(const Type &t, const std::vector<int64_t> &p) {
  if (!t.isTensor())
    return Type::unknown();
  if (!t.shape.rankKnown || t.shape.rank() != int64_t(p.size()))
    return Type::tensor(t.dtype);
  std::vector<Dim> dims(p.size());
  for (size_t i = 0; i < p.size(); ++i)
    dims[p[i]] = t.shape.dims[i];
  return Type::tensor(t.dtype, Shape(dims));
}

class Sinker {
public:
  Sinker(Graph &g, PassStats &stats) : g_(g), stats_(stats), captured_(capturedValues(g)) {}

  /// One rewrite anywhere in the graph; false when there is nothing left to do.
  bool step() {
    for (auto &np : g_.nodes()) {
      Node &n = *np;
      if (!n.domain.empty())
        continue;
      if (n.opType == "Transpose" && compose(n))
        return true;
      if (isUnaryElementwise(n.opType) && sinkUnary(n))
        return true;
      if (isBinaryElementwise(n.opType) && sinkBinary(n))
        return true;
    }
    return false;
  }
  bool appended = false;

private:
  /// All uses of `v` are by `user` (at least one), and v is no graph output and not captured.
  bool usedOnlyBy(const Value *v, const Node *user) const {
    if (!v || v->uses().empty() || isGraphOutput(g_, v) || captured_.count(v))
      return false;
    for (auto &u : v->uses())
      if (u.user != user)
        return false;
    return true;
  }

  /// The Transpose producing `v` and its perm, when `user` is its only user.
  std::optional<std::pair<Node *, std::vector<int64_t>>> transposeFeeding(Value *v, const Node *user) {
    if (!v || !v->producer() || !usedOnlyBy(v, user))
      return std::nullopt;
    Node *t = v->producer();
    auto p = permOf(*t);
    if (!p)
      return std::nullopt;
    return std::make_pair(t, *p);
  }

  // Transpose(Transpose(x, p1), p2) -> Transpose(x, p1[p2]); an identity becomes x.
  bool compose(Node &t2) {
    auto p2 = permOf(t2);
    Value *mid = t2.input(0);
    if (!p2 || !mid->producer())
      return false;
    Node *t1 = mid->producer();
    auto p1 = permOf(*t1);
    if (!p1 || p1->size() != p2->size())
      return false;
    std::vector<int64_t> c(p2->size());
    for (size_t j = 0; j < c.size(); ++j)
      c[j] = (*p1)[(*p2)[j]];
    Value *x = t1->input(0);
    Value *out = t2.output(0);
    if (isIdentityPerm(c)) {
      // A graph output that would become an input or a constant is left alone.
      if (isGraphOutput(g_, out) && !x->producer())
        return false;
      if (captured_.count(out))
        return false;
      out->replaceAllUsesWith(x);
      g_.eraseNode(&t2);
      stats_.add("transposes-cancelled", 2);
      stats_.add("nodes-removed");
    } else {
      t2.setInput(0, x);
      t2.attrs["perm"] = Attribute::ofInts(c);
      stats_.add("transposes-composed");
    }
    eraseIfDead(t1);
    return true;
  }

  void eraseIfDead(Node *n) {
    for (Value *o : n->outputs())
      if (o && (!o->uses().empty() || isGraphOutput(g_, o) || captured_.count(o)))
        return;
    g_.eraseNode(n);
    stats_.add("nodes-removed");
  }

  /// `op`'s result now holds the un-transposed value: put Transpose(result, perm) after it.
  void transposeResult(Node &op, const std::vector<int64_t> &perm) {
    Value *o = op.output(0);
    Type oldType = o->type;
    Node *t = g_.appendNode("Transpose", {nullptr}, {g_.uniqueName(o->name() + "_t")},
                            op.name.empty() ? std::string() : op.name + "_transpose");
    t->attrs["perm"] = Attribute::ofInts(perm);
    t->output(0)->type = oldType;
    o->replaceAllUsesWith(t->output(0));
    t->setInput(0, o);
    o->type = untransposedType(oldType, perm);
    appended = true;
    stats_.add("transposes-sunk");
  }

  /// Other inputs of a unary op (Clip's min/max) must be single elements of rank <= `rank`,
  /// so they broadcast the same way before and after the move.
  static bool extraInputsAreScalars(const Node &u, size_t rank) {
    for (size_t i = 1; i < u.numInputs(); ++i) {
      const Value *v = u.input(i);
      if (!v)
        continue;
      if (!v->type.isTensor() || !v->type.shape.rankKnown || v->type.shape.rank() > int64_t(rank))
        return false;
      for (auto &d : v->type.shape.dims)
        if (!d.isStatic() || d.value != 1)
          return false;
    }
    return true;
  }

  /// A constant operand a Transpose with `perm` can move past (see sinkBinary).
  bool movableConstant(const Value *v, size_t rank) const {
    const Tensor *c = constantOf(g_, v);
    return c && c->dtype() != DType::string && c->rank() <= int64_t(rank) &&
           c->numel() <= (int64_t(1) << 20);
  }

  /// Profitability: a Transpose with `perm` placed on `w` would, moving down through
  /// single-use elementwise ops, meet another Transpose (and compose or cancel) or a binary op
  /// whose other operand is a Transpose with the same perm (and merge). Otherwise moving it only
  /// renames values.
  bool meetsTranspose(const Value *w, const std::vector<int64_t> &perm, int depth) const {
    if (depth > 64 || !hasSingleUse(g_, captured_, w))
      return false;
    const Node *u = w->uses()[0].user;
    const size_t operand = w->uses()[0].operand;
    if (!u->domain.empty() || u->numOutputs() != 1 || !u->output(0))
      return false;
    if (u->opType == "Transpose")
      return permOf(*u).has_value();
    if (isUnaryElementwise(u->opType))
      return operand == 0 && extraInputsAreScalars(*u, perm.size()) &&
             meetsTranspose(u->output(0), perm, depth + 1);
    if (isBinaryElementwise(u->opType) && u->numInputs() == 2) {
      Value *other = u->input(1 - operand);
      if (!other)
        return false;
      if (other->producer() && usedOnlyBy(other, u)) {
        auto p = permOf(*other->producer());
        if (p && *p == perm)
          return true;
      }
      return movableConstant(other, perm.size()) && meetsTranspose(u->output(0), perm, depth + 1);
    }
    return false;
  }

  // U(Transpose(x, p)) -> Transpose(U(x), p)
  bool sinkUnary(Node &u) {
    if (u.numInputs() < 1 || u.numOutputs() != 1 || !u.output(0))
      return false;
    auto tp = transposeFeeding(u.input(0), &u);
    if (!tp)
      return false;
    auto &[t, perm] = *tp;
    if (!extraInputsAreScalars(u, perm.size()) || !meetsTranspose(u.output(0), perm, 0))
      return false;
    u.setInput(0, t->input(0));
    g_.eraseNode(t);
    transposeResult(u, perm);
    return true;
  }

  // B(Transpose(x, p), Transpose(y, p)) -> Transpose(B(x, y), p); B(Transpose(x, p), c) likewise
  bool sinkBinary(Node &b) {
    if (b.numInputs() != 2 || b.numOutputs() != 1 || !b.output(0) || !b.input(0) || !b.input(1))
      return false;
    auto t0 = transposeFeeding(b.input(0), &b);
    auto t1 = transposeFeeding(b.input(1), &b);
    if (t0 && t1) {
      if (t0->second != t1->second)
        return false;
      Node *n0 = t0->first, *n1 = t1->first;
      b.setInput(0, n0->input(0));
      b.setInput(1, n1->input(0));
      g_.eraseNode(n0);
      if (n1 != n0) {
        g_.eraseNode(n1);
        stats_.add("nodes-removed");
      }
      transposeResult(b, t0->second);
      return true;
    }
    if (!t0 && !t1)
      return false;
    const size_t k = t0 ? 0 : 1; // the transposed operand
    auto &[t, perm] = t0 ? *t0 : *t1;
    Value *other = b.input(1 - k);
    if (!movableConstant(other, perm.size()) || !meetsTranspose(b.output(0), perm, 0))
      return false;
    const Tensor *c = constantOf(g_, other);
    Value *newOther = other;
    if (c->numel() != 1) {
      std::vector<int64_t> shape(perm.size() - c->rank(), 1);
      shape.insert(shape.end(), c->shape().begin(), c->shape().end());
      Tensor ct = transposeTensor(c->reshaped(shape), inversePerm(perm));
      newOther = addConstant(g_, other->name() + "_t", ct);
    }
    b.setInput(k, t->input(0));
    b.setInput(1 - k, newOther);
    g_.eraseNode(t);
    dropIfDead(g_, captured_, other);
    transposeResult(b, perm);
    return true;
  }

  Graph &g_;
  PassStats &stats_;
  std::set<const Value *> captured_;
};

} // namespace

bool sinkTransposes(Graph &g, PassStats &stats) {
  bool any = false;
  for (auto &n : g.nodes())
    any |= n->opType == "Transpose" && n->domain.empty();
  if (!any)
    return false;
  Sinker s(g, stats);
  bool changed = false;
  // Each step moves a Transpose strictly down the DAG or removes one; the cap is a safety net.
  const size_t cap = 16 * g.nodes().size() + 16;
  for (size_t i = 0; i < cap && s.step(); ++i)
    changed = true;
  if (s.appended)
    g.sortTopologically();
  return changed;
}

} // namespace tessel
