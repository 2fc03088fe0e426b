//===- SimplifyAlgebra.cpp - peephole rules as a table --------------------===//
//
// Algebraic simplification as a table of rules (tinygrad's PatternMatcher): each entry names the
// op it matches, states its rule as a comment and in `pattern`, and has a small function that
// checks the match and rewrites the node in place. A rule never changes a value's dtype or shape
// and never changes numbers (every rewrite is exact).
//
// A rule either forwards the node's result to an existing value ("removing" the node: its uses
// and subgraph captures are redirected, the node is erased when dead), or edits the node in place
// (its output, and the output's name, stay). Forwarding is skipped when the result is a graph
// output, so graph output names stay stable.
//
// Every rule counts its rewrites under its own name in PassStats (e.g. "mul-one"); the pass also
// counts "nodes-removed". unittests/SimplifyAlgebraTest.cpp checks each rule by evaluating both
// sides on random values.
//
//===----------------------------------------------------------------------===//
#include "SimplifyAlgebra.h"

#include "tessel/Graph/PassUtils.h"

#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Transforms.h"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <optional>
#include <set>

namespace tessel {

using namespace passutils;

namespace {

//===----------------------------------------------------------------------===//
// Helpers: constants, types, forwarding
//===----------------------------------------------------------------------===//

/// Integers of a constant i32/i64 tensor (shape-like inputs), or nullopt.
std::optional<std::vector<int64_t>> constantInts(const Graph &g, const Value *v) {
  const Tensor *t = initializerOf(g, v);
  if (!t || (t->dtype() != DType::i64 && t->dtype() != DType::i32) || t->rank() > 1)
    return std::nullopt;
  return t->toInt64Vector();
}

/// True when every element of a numeric constant equals `x` (and there is at least one).
bool allEqual(const Tensor &t, double x) {
  if (t.numel() == 0 || t.dtype() == DType::string || t.dtype() == DType::undefined)
    return false;
  for (int64_t i = 0; i < t.numel(); ++i)
    if (t.getDouble(i) != x)
      return false;
  return true;
}

const Type *tensorType(const Value *v) {
  if (!v || !v->type.isTensor() || v->type.dtype == DType::undefined)
    return nullptr;
  return &v->type;
}

int64_t rankOf(const Value *v) {
  const Type *t = tensorType(v);
  return t && t->shape.rankKnown ? t->shape.rank() : -1;
}

/// Does broadcasting `x` (a tensor of known rank) with a tensor of shape `s` give x's shape?
/// True when s has no more dims than x and each of its dims (aligned right) is 1 or equals
/// x's static dim there.
bool broadcastsInto(const std::vector<int64_t> &s, const Value *x) {
  const Type *t = tensorType(x);
  if (!t || !t->shape.rankKnown || int64_t(s.size()) > t->shape.rank())
    return false;
  int64_t off = t->shape.rank() - int64_t(s.size());
  for (size_t i = 0; i < s.size(); ++i) {
    const Dim &d = t->shape.dims[off + i];
    if (s[i] != 1 && !(d.isStatic() && d.value == s[i]))
      return false;
  }
  return true;
}

/// The node whose output `v` is, when it is an ai.onnx `opType` node, else nullptr.
Node *producerOf(const Value *v, const char *opType) {
  if (!v || !v->producer())
    return nullptr;
  Node *p = v->producer();
  return p->domain.empty() && p->opType == opType ? p : nullptr;
}

/// Calls f(Graph &) for each subgraph held by a node of g (not recursive).
template <class F> void forEachSubgraph(const Graph &g, F &&f) {
  for (auto &n : g.nodes())
    for (auto &[name, a] : n->attrs) {
      if (a.g)
        f(*a.g);
      for (auto &sg : a.graphs)
        if (sg)
          f(*sg);
    }
}

bool isCaptured(const Graph &g, const Value *v) {
  bool found = false;
  forEachSubgraph(g, [&](Graph &sg) {
    for (auto &w : sg.values())
      found |= w->outer == v;
    found |= isCaptured(sg, v);
  });
  return found;
}

/// Replaces the node's only used result (output 0) by `to`. Skipped (false) when the result is a
/// graph output (its name must stay) or another output of the node is still used.
bool forward(Graph &g, Node &n, Value *to) {
  Value *from = n.output(0);
  if (!from || !to || from == to || isGraphOutput(g, from))
    return false;
  for (size_t i = 1; i < n.numOutputs(); ++i) {
    Value *o = n.output(i);
    if (o && (!o->uses().empty() || isGraphOutput(g, o) || isCaptured(g, o)))
      return false;
  }
  redirectCaptures(g, from, to);
  from->replaceAllUsesWith(to);
  return true;
}

/// The node's axes as an attribute (before `inputSince`) or a constant input 1 (from it).
std::optional<std::vector<int64_t>> axesOf(const Graph &g, const Node &n, int64_t inputSince) {
  if (AttrReader(n).opset() < inputSince) {
    const Attribute *a = n.attr("axes");
    if (!a || a->kind != Attribute::Kind::Ints)
      return std::nullopt;
    return a->ints;
  }
  if (!n.input(1))
    return std::nullopt;
  return constantInts(g, n.input(1));
}

/// Axes normalized to [0, rank) as a set; nullopt when out of range or repeated.
std::optional<std::set<int64_t>> normalizeAxes(const std::vector<int64_t> &axes, int64_t rank) {
  std::set<int64_t> s;
  for (int64_t a : axes) {
    if (a < 0 && rank >= 0)
      a += rank;
    if (a < 0 || (rank >= 0 && a >= rank) || !s.insert(a).second)
      return std::nullopt;
  }
  return s;
}

/// A Transpose's permutation (the attribute, or reversed dims by default); nullopt when it is
/// not a permutation of the input's rank.
std::optional<std::vector<int64_t>> permOf(const Node &n) {
  std::vector<int64_t> p;
  if (const Attribute *a = n.attr("perm")) {
    if (a->kind != Attribute::Kind::Ints)
      return std::nullopt;
    p = a->ints;
  } else {
    int64_t r = rankOf(n.input(0));
    if (r < 0)
      return std::nullopt;
    for (int64_t i = r - 1; i >= 0; --i)
      p.push_back(i);
  }
  int64_t r = rankOf(n.input(0));
  if (r >= 0 && r != int64_t(p.size()))
    return std::nullopt;
  std::vector<bool> seen(p.size(), false);
  for (int64_t v : p) {
    if (v < 0 || v >= int64_t(p.size()) || seen[v])
      return std::nullopt;
    seen[v] = true;
  }
  return p;
}

/// from -> to -> T == from -> T for any T that also holds `from` exactly)?
bool castIsExact(DType from, DType to) {
  if (from == to)
    return true;
  using D = DType;
  switch (from) {
  case D::boolean:
    return to != D::string && to != D::undefined;
  case D::i8:
    return to == D::i16 || to == D::i32 || to == D::i64 || to == D::f16 || to == D::f32 || to == D::f64;
  case D::u8:
    return to == D::i16 || to == D::u16 || to == D::i32 || to == D::u32 || to == D::i64 ||
           to == D::u64 || to == D::f16 || to == D::f32 || to == D::f64;
  case D::i16:
    return to == D::i32 || to == D::i64 || to == D::f32 || to == D::f64;
  case D::u16:
    return to == D::i32 || to == D::u32 || to == D::i64 || to == D::u64 || to == D::f32 || to == D::f64;
  case D::i32:
    return to == D::i64 || to == D::f64;
  case D::u32:
    return to == D::i64 || to == D::u64 || to == D::f64;
  case D::f16:
  case D::bf16:
    return to == D::f32 || to == D::f64;
  case D::f32:
    return to == D::f64;
  default:
    return false;
  }
}

std::optional<DType> castTarget(const Node &n) {
  const Attribute *a = n.attr("to");
  if (!a || a->kind != Attribute::Kind::Int)
    return std::nullopt;
  return dtypeFromOnnx(int(a->i));
}

//===----------------------------------------------------------------------===//
// The rules
//===----------------------------------------------------------------------===//

/// Binary op with a constant operand `k` (0 or 1) whose elements all equal `neutral`, where the
/// constant broadcasts into the other operand x: forward x. `sameDType`: the constant must have
/// x's dtype (not for Pow, whose exponent may differ).
bool dropNeutral(Graph &g, Node &n, size_t k, double neutral, bool sameDType = true) {
  if (n.numInputs() != 2)
    return false;
  Value *x = n.input(1 - k);
  const Tensor *c = initializerOf(g, n.input(k));
  const Type *xt = tensorType(x);
  if (!c || !xt || !allEqual(*c, neutral) || (sameDType && c->dtype() != xt->dtype))
    return false;
  if (!isFloat(xt->dtype) && !isInteger(xt->dtype))
    return false;
  if (!broadcastsInto(c->shape(), x))
    return false;
  return forward(g, n, x);
}

// x*1 -> x
bool mulOneRight(Graph &g, Node &n) { return dropNeutral(g, n, 1, 1.0); }
// 1*x -> x
bool mulOneLeft(Graph &g, Node &n) { return dropNeutral(g, n, 0, 1.0); }
// x+0 -> x
bool addZeroRight(Graph &g, Node &n) { return dropNeutral(g, n, 1, 0.0); }
// 0+x -> x
bool addZeroLeft(Graph &g, Node &n) { return dropNeutral(g, n, 0, 0.0); }
// x-0 -> x
bool subZero(Graph &g, Node &n) { return dropNeutral(g, n, 1, 0.0); }
// x/1 -> x
bool divOne(Graph &g, Node &n) { return dropNeutral(g, n, 1, 1.0); }
// x**1 -> x
bool powOne(Graph &g, Node &n) {
  const Type *xt = tensorType(n.input(0));
  if (!xt || !isFloat(xt->dtype))
    return false;
  return dropNeutral(g, n, 1, 1.0, /*sameDType=*/false);
}

// x**2 -> x*x   (float x, a constant exponent whose elements are all 2 and that broadcasts
// into x: exactly what the reference Pow computes for it, and a multiply in every backend)
bool powTwo(Graph &g, Node &n) {
  if (n.numInputs() != 2 || !n.input(0))
    return false;
  Value *x = n.input(0);
  const Type *xt = tensorType(x);
  const Tensor *c = initializerOf(g, n.input(1));
  if (!xt || !isFloat(xt->dtype) || !c || !allEqual(*c, 2.0) || !broadcastsInto(c->shape(), x))
    return false;
  n.opType = "Mul";
  n.setInput(1, x);
  return true;
}

// Transpose(x, identity perm) -> x
bool transposeIdentity(Graph &g, Node &n) {
  auto p = permOf(n);
  if (!p || !isIdentityPerm(*p) || rankOf(n.input(0)) != int64_t(p->size()))
    return false;
  return forward(g, n, n.input(0));
}

// Transpose(Transpose(x, p), q) -> Transpose(x, p∘q), and -> x when p∘q is the identity
bool transposeTranspose(Graph &g, Node &n) {
  Node *inner = producerOf(n.input(0), "Transpose");
  if (!inner || !inner->input(0))
    return false;
  auto p = permOf(*inner), q = permOf(n);
  if (!p || !q || p->size() != q->size())
    return false;
  // out[i] = mid[q[i]] = x[p[q[i]]]
  std::vector<int64_t> r(q->size());
  for (size_t i = 0; i < q->size(); ++i)
    r[i] = (*p)[(*q)[i]];
  Value *x = inner->input(0);
  if (isIdentityPerm(r))
    return rankOf(x) == int64_t(r.size()) && forward(g, n, x);
  n.attrs["perm"] = Attribute::ofInts(r);
  n.setInput(0, x);
  return true;
}

// Reshape(Reshape(x, s1), s2) -> Reshape(x, s2)   (s2 constant, no 0 that copies a dim of
// the intermediate)
bool reshapeReshape(Graph &g, Node &n) {
  Node *inner = producerOf(n.input(0), "Reshape");
  if (!inner || !inner->input(0) || n.numInputs() != 2)
    return false;
  auto s2 = constantInts(g, n.input(1));
  if (!s2)
    return false;
  bool allowZero = AttrReader(n).opset() >= 14 && AttrReader(n).attrInt("allowzero", 0) != 0;
  if (!allowZero && std::count(s2->begin(), s2->end(), 0))
    return false;
  n.setInput(0, inner->input(0));
  return true;
}

// Reshape(x, s) -> x   (s resolves to x's static shape)
bool reshapeSame(Graph &g, Node &n) {
  Value *x = n.input(0);
  const Type *xt = tensorType(x);
  if (!xt || !xt->shape.isStatic() || n.numInputs() != 2)
    return false;
  auto s = constantInts(g, n.input(1));
  auto dims = xt->shape.staticDims();
  if (!s || s->size() != dims.size())
    return false;
  bool allowZero = AttrReader(n).opset() >= 14 && AttrReader(n).attrInt("allowzero", 0) != 0;
  int minusOnes = 0;
  for (size_t i = 0; i < dims.size(); ++i) {
    int64_t d = (*s)[i];
    if (d == 0 && !allowZero)
      d = dims[i];
    if (d == -1) {
      ++minusOnes; // the one inferred dim: equal to x's since every other dim matches
      continue;
    }
    if (d != dims[i])
      return false;
  }
  if (minusOnes > 1)
    return false;
  return forward(g, n, x);
}

// Identity(x) -> x
bool identity(Graph &g, Node &n) { return forward(g, n, n.input(0)); }

// Dropout(x) -> x   (inference: no training_mode or a constant false one; mask unused)
bool dropoutInference(Graph &g, Node &n) {
  if (AttrReader(n).opset() >= 12 && n.input(2)) {
    const Tensor *t = initializerOf(g, n.input(2));
    if (!t || t->numel() != 1 || t->dtype() != DType::boolean || t->getInt64(0) != 0)
      return false;
  }
  return forward(g, n, n.input(0)); // forward() checks the mask is unused
}

// Cast(x: T, to=T) -> x
bool castSame(Graph &g, Node &n) {
  const Type *xt = tensorType(n.input(0));
  auto to = castTarget(n);
  if (!xt || !to || *to != xt->dtype || *to == DType::string)
    return false;
  return forward(g, n, n.input(0));
}

// Cast(Cast(x: T, to=W), to=T) -> x, Cast(Cast(x: T, to=W), to=U) -> Cast(x, to=U)
//   (when T -> W and T -> U are both exact, e.g. f32 -> f64 -> f32)
bool castChain(Graph &g, Node &n) {
  Node *inner = producerOf(n.input(0), "Cast");
  if (!inner || !inner->input(0))
    return false;
  Value *x = inner->input(0);
  const Type *xt = tensorType(x);
  auto w = castTarget(*inner), u = castTarget(n);
  if (!xt || !w || !u || !castIsExact(xt->dtype, *w) || !castIsExact(xt->dtype, *u))
    return false;
  if (*u == xt->dtype)
    return forward(g, n, x);
  n.setInput(0, x);
  return true;
}

// Pad(x, pads = 0...) -> x
bool padZero(Graph &g, Node &n) {
  std::optional<std::vector<int64_t>> pads;
  if (AttrReader(n).opset() < 11) {
    const Attribute *a = n.attr("pads");
    if (a && a->kind == Attribute::Kind::Ints)
      pads = a->ints;
  } else if (n.numInputs() <= 3) { // opset 18's axes input is not handled
    pads = constantInts(g, n.input(1));
  }
  if (!pads || pads->empty() || std::any_of(pads->begin(), pads->end(), [](int64_t p) { return p != 0; }))
    return false;
  int64_t r = rankOf(n.input(0));
  if (r < 0 || int64_t(pads->size()) != 2 * r)
    return false;
  return forward(g, n, n.input(0));
}

// Slice(x) taking every element (start 0, end >= dim, step 1 on each sliced axis) -> x
bool sliceAll(Graph &g, Node &n) {
  Value *x = n.input(0);
  const Type *xt = tensorType(x);
  if (!xt || !xt->shape.rankKnown)
    return false;
  int64_t rank = xt->shape.rank();
  std::optional<std::vector<int64_t>> starts, ends, axes, steps;
  if (AttrReader(n).opset() < 10) {
    auto ints = [&](const char *name) -> std::optional<std::vector<int64_t>> {
      const Attribute *a = n.attr(name);
      if (!a || a->kind != Attribute::Kind::Ints)
        return std::nullopt;
      return a->ints;
    };
    starts = ints("starts");
    ends = ints("ends");
    axes = n.attr("axes") ? ints("axes") : std::nullopt;
    if (n.attr("axes") && !axes)
      return false;
  } else {
    starts = constantInts(g, n.input(1));
    ends = constantInts(g, n.input(2));
    if (n.input(3) && !(axes = constantInts(g, n.input(3))))
      return false;
    if (n.input(4) && !(steps = constantInts(g, n.input(4))))
      return false;
  }
  if (!starts || !ends || starts->size() != ends->size())
    return false;
  size_t k = starts->size();
  if (!axes) {
    axes.emplace();
    for (size_t i = 0; i < k; ++i)
      axes->push_back(int64_t(i));
  }
  if (axes->size() != k || (steps && steps->size() != k))
    return false;
  auto norm = normalizeAxes(*axes, rank);
  if (!norm)
    return false;
  for (size_t i = 0; i < k; ++i) {
    int64_t a = (*axes)[i] < 0 ? (*axes)[i] + rank : (*axes)[i];
    const Dim &d = xt->shape.dims[a];
    int64_t st = (*starts)[i], en = (*ends)[i];
    if (steps && (*steps)[i] != 1)
      return false;
    if (d.isStatic()) {
      // ONNX clamps: start in [0, d], end in [0, d] after adding d to negatives.
      if (st < 0)
        st += d.value;
      if (en < 0)
        en += d.value;
      if (std::max<int64_t>(st, 0) != 0 || std::min<int64_t>(en, d.value) != d.value)
        return false;
      continue;
    }
    // Unknown dim: only the "from 0 to the end" sentinel takes everything for sure.
    if (st != 0 || en < (int64_t(1) << 62))
      return false;
  }
  return forward(g, n, x);
}

// Expand(x, s) -> x   (s broadcasts into x's shape)
bool expandSame(Graph &g, Node &n) {
  auto s = constantInts(g, n.input(1));
  if (!s || n.numInputs() != 2 || !broadcastsInto(*s, n.input(0)))
    return false;
  return forward(g, n, n.input(0));
}

// Squeeze(Unsqueeze(x, a), a) -> x
bool squeezeUnsqueeze(Graph &g, Node &n) {
  Node *inner = producerOf(n.input(0), "Unsqueeze");
  if (!inner || !inner->input(0))
    return false;
  auto a1 = axesOf(g, *inner, 13), a2 = axesOf(g, n, 13);
  if (!a1 || !a2 || a2->empty())
    return false;
  Value *x = inner->input(0);
  int64_t r = rankOf(x);
  int64_t outRank = r < 0 ? -1 : r + int64_t(a1->size());
  auto s1 = normalizeAxes(*a1, outRank), s2 = normalizeAxes(*a2, outRank);
  if (!s1 || !s2 || *s1 != *s2)
    return false;
  return forward(g, n, x);
}

// Unsqueeze(Squeeze(x, a), a) -> x   (Squeeze checked those dims are 1)
bool unsqueezeSqueeze(Graph &g, Node &n) {
  Node *inner = producerOf(n.input(0), "Squeeze");
  if (!inner || !inner->input(0))
    return false;
  auto a1 = axesOf(g, *inner, 13), a2 = axesOf(g, n, 13);
  if (!a1 || !a2 || a1->empty())
    return false;
  Value *x = inner->input(0);
  int64_t r = rankOf(x);
  auto s1 = normalizeAxes(*a1, r), s2 = normalizeAxes(*a2, r);
  if (!s1 || !s2 || *s1 != *s2)
    return false;
  return forward(g, n, x);
}

// Concat(x) -> x
bool concatOne(Graph &g, Node &n) {
  if (n.numInputs() != 1)
    return false;
  return forward(g, n, n.input(0));
}

/// op(op(x)) -> x for an involution `op`.
bool involution(Graph &g, Node &n, const char *op) {
  Node *inner = producerOf(n.input(0), op);
  if (!inner || !inner->input(0))
    return false;
  return forward(g, n, inner->input(0));
}

// Neg(Neg(x)) -> x
bool negNeg(Graph &g, Node &n) { return involution(g, n, "Neg"); }
// Not(Not(x)) -> x
bool notNot(Graph &g, Node &n) { return involution(g, n, "Not"); }

struct Rule {
  SimplifyRuleInfo info;
  bool (*rewrite)(Graph &, Node &);
};

// The table. Rules for one op are tried in order; the first that fires rewrites the node.
const Rule kRules[] = {
    // x*1 -> x
    {{"mul-one", "x*1 -> x", "Mul"}, mulOneRight},
    // 1*x -> x
    {{"one-mul", "1*x -> x", "Mul"}, mulOneLeft},
    // x+0 -> x
    {{"add-zero", "x+0 -> x", "Add"}, addZeroRight},
    // 0+x -> x
    {{"zero-add", "0+x -> x", "Add"}, addZeroLeft},
    // x-0 -> x
    {{"sub-zero", "x-0 -> x", "Sub"}, subZero},
    // x/1 -> x
    {{"div-one", "x/1 -> x", "Div"}, divOne},
    // x**1 -> x
    {{"pow-one", "x**1 -> x", "Pow"}, powOne},
    // x**2 -> x*x
    {{"pow-two", "x**2 -> x*x", "Pow"}, powTwo},
    // Transpose(x, identity) -> x
    {{"transpose-identity", "Transpose(x, identity perm) -> x", "Transpose"}, transposeIdentity},
    // Transpose(Transpose(x, p), q) -> Transpose(x, p∘q) (-> x when the identity)
    {{"transpose-transpose", "Transpose(Transpose(x, p), q) -> Transpose(x, p∘q) or x", "Transpose"},
     transposeTranspose},
    // Reshape(x, s) -> x when s is x's shape
    {{"reshape-same", "Reshape(x, shape(x)) -> x", "Reshape"}, reshapeSame},
    // Reshape(Reshape(x, s1), s2) -> Reshape(x, s2)
    {{"reshape-reshape", "Reshape(Reshape(x, s1), s2) -> Reshape(x, s2)", "Reshape"}, reshapeReshape},
    // Identity(x) -> x
    {{"identity", "Identity(x) -> x", "Identity"}, identity},
    // Dropout(x) -> x in inference
    {{"dropout-inference", "Dropout(x, training_mode=false) -> x (mask unused)", "Dropout"},
     dropoutInference},
    // Cast(x: T, to=T) -> x
    {{"cast-same", "Cast(x: T, to=T) -> x", "Cast"}, castSame},
    // Cast(Cast(x: T, to=W), to=U) -> Cast(x, to=U) (or x when U = T), T -> W exact
    {{"cast-chain", "Cast(Cast(x: T, to=W), to=T) -> x (T -> W exact)", "Cast"}, castChain},
    // Pad(x, 0) -> x
    {{"pad-zero", "Pad(x, pads=0) -> x", "Pad"}, padZero},
    // Slice(x, everything) -> x
    {{"slice-all", "Slice(x, 0, end) -> x", "Slice"}, sliceAll},
    // Expand(x, s) -> x when s broadcasts into shape(x)
    {{"expand-same", "Expand(x, s) -> x (s broadcasts into shape(x))", "Expand"}, expandSame},
    // Squeeze(Unsqueeze(x, a), a) -> x
    {{"squeeze-unsqueeze", "Squeeze(Unsqueeze(x, a), a) -> x", "Squeeze"}, squeezeUnsqueeze},
    // Unsqueeze(Squeeze(x, a), a) -> x
    {{"unsqueeze-squeeze", "Unsqueeze(Squeeze(x, a), a) -> x", "Unsqueeze"}, unsqueezeSqueeze},
    // Concat(x) -> x
    {{"concat-one", "Concat(x) -> x", "Concat"}, concatOne},
    // Neg(Neg(x)) -> x
    {{"neg-neg", "Neg(Neg(x)) -> x", "Neg"}, negNeg},
    // Not(Not(x)) -> x
    {{"not-not", "Not(Not(x)) -> x", "Not"}, notNot},
};

//===----------------------------------------------------------------------===//
// The driver
//===----------------------------------------------------------------------===//

bool isDead(const Graph &g, const Node &n) {
  for (Value *o : n.outputs())
    if (o && (!o->uses().empty() || isGraphOutput(g, o) || isCaptured(g, o)))
      return false;
  return true;
}

void eraseIfDead(Graph &g, Node *n, PassStats &stats) {
  bool present = std::any_of(g.nodes().begin(), g.nodes().end(), [&](auto &p) { return p.get() == n; });
  if (!present || !isDead(g, *n))
    return;
  g.eraseNode(n);
  stats.add("nodes-removed");
}

bool simplifyGraph(Graph &g, PassStats &stats) {
  bool changed = false;
  forEachSubgraph(g, [&](Graph &sg) { changed |= simplifyGraph(sg, stats); });
  // Rewrites expose new matches (Neg(Neg(Neg(Neg(x))))): repeat until nothing fires.
  for (int round = 0; round < 16; ++round) {
    bool any = false;
    std::vector<Node *> nodes;
    for (auto &np : g.nodes())
      nodes.push_back(np.get());
    for (Node *n : nodes) {
      if (!n->domain.empty() || n->numOutputs() == 0 || !n->output(0))
        continue;
      for (const Rule &r : kRules) {
        if (n->opType != r.info.op)
          continue;
        std::vector<Node *> producers; // erased below when the rewrite leaves them dead
        for (Value *v : n->inputs())
          if (v && v->producer() && v->producer()->graph() == &g)
            producers.push_back(v->producer());
        bool fired = false;
        try {
          fired = r.rewrite(g, *n);
        } catch (const std::exception &) {
          fired = false; // odd attributes or data: leave the node as it is
        }
        if (!fired)
          continue;
        stats.add(r.info.name);
        any = true;
        // Erase what the rewrite left dead: n itself, and the producers it detached (all
        // earlier in the snapshot, so none is visited again this round).
        eraseIfDead(g, n, stats);
        for (Node *p : producers)
          eraseIfDead(g, p, stats);
        break;
      }
    }
    if (!any)
      break;
    changed = true;
  }
  return changed;
}

} // namespace

std::vector<SimplifyRuleInfo> simplifyRules() {
  std::vector<SimplifyRuleInfo> r;
  for (const Rule &rule : kRules)
    r.push_back(rule.info);
  return r;
}

bool simplifyAlgebra(Graph &g, PassStats &stats) { return simplifyGraph(g, stats); }

} // namespace tessel
