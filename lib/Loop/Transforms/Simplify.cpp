//===- Simplify.cpp - constant folding and algebraic rules for loop IR ----===//
//
// Entry points: simplify(Expr), simplify(Stmt), simplify(LoweredFunc). The expression rules
// are a table (kRules), one rule per entry with the rule as its comment; each is tested by
// evaluating both sides on random values (unittests/LoopSimplifyTest.cpp). Integer rules
// assume the rewritten expression does not overflow only where noted.
//
//===----------------------------------------------------------------------===//

#include "tessel/Loop/Simplify.h"
#include "tessel/Loop/Evaluate.h"
#include "tessel/Loop/Visitor.h"

#include <cmath>
#include <optional>

namespace tessel::loop {

namespace {

std::optional<Value> constValue(const Expr &e) {
  if (auto *i = e.as<IntImmNode>())
    return Value::ofInt(e.type(), i->value);
  if (auto *f = e.as<FloatImmNode>())
    return Value::ofFloat(e.type(), f->value);
  return std::nullopt;
}

Expr fromValue(const Value &v) {
  if (v.type.isFloat())
    return FloatImmNode::make(v.type, v.f);
  return IntImmNode::make(v.type, v.i);
}

bool isInt(const Expr &e) { return e.type().isIntOrUInt(); }
bool isConst(const Expr &e) { return asConstInt(e) || asConstFloat(e); }

/// e as x + c with a constant integer offset c (x - c gives -c, anything else offset 0).
struct Offset {
  Expr base;
  int64_t c = 0;
};

Offset splitOffset(const Expr &e) {
  if (!e.type().isInt() || !e.type().isScalar())
    return {e, 0};
  if (auto *n = e.as<AddNode>())
    if (auto c = asConstInt(n->b))
      return {n->a, *c};
  if (auto *n = e.as<SubNode>())
    if (auto c = asConstInt(n->b); c && wrapInt(e.type().dtype, -*c) == -*c)
      return {n->a, -*c};
  return {e, 0};
}

/// x + c in canonical form: x for c = 0, x - |c| for c < 0 (when -c fits the type), else x + c.
Expr withOffset(const Expr &x, int64_t c) {
  Type t = x.type();
  int64_t w = wrapInt(t.dtype, c);
  if (w == 0)
    return x;
  if (w < 0 && wrapInt(t.dtype, -w) == -w)
    return SubNode::make(x, makeConst(t, -w));
  return AddNode::make(x, makeConst(t, w));
}

/// (x + c1) + c2, (x - c1) + c2, ... with an integer constant b: the folded offset form.
Expr foldOffsets(ExprKind k, const Expr &a, const Expr &b) {
  auto cb = asConstInt(b);
  if (!cb || !a.type().isInt() || !a.type().isScalar())
    return Expr();
  Offset o = splitOffset(a);
  if (o.c == 0 && *cb >= 0)
    return Expr();
  int64_t c = int64_t(k == ExprKind::Add ? uint64_t(o.c) + uint64_t(*cb) : uint64_t(o.c) - uint64_t(*cb));
  return withOffset(o.base, c);
}

/// For min/max of two terms whose order is known for every x: -1 if a <= b, 1 if a >= b, 0 if
/// unknown. Known: x + c1 vs x + c2, and (x + c1) / d vs (x + c2) / d with d > 0 (floor
/// division is monotone). Assumes x + c1 and x + c2 do not overflow.
int knownOrder(const Expr &a, const Expr &b) {
  auto order = [](const Offset &x, const Offset &y) {
    if (!exprEqual(x.base, y.base) || x.c == y.c)
      return 0;
    return x.c < y.c ? -1 : 1;
  };
  auto *da = a.as<DivNode>(), *db = b.as<DivNode>();
  if (da && db) {
    auto d = asConstInt(da->b);
    if (!d || *d <= 0 || !exprEqual(da->b, db->b))
      return 0;
    return order(splitOffset(da->a), splitOffset(db->a));
  }
  return order(splitOffset(a), splitOffset(b));
}

/// (x + c1) / c2 with c2 > 0 and c1 a multiple of c2: x's quotient and c1 / c2, else nothing.
std::optional<std::pair<Offset, int64_t>> exactOffsetDiv(const Expr &a, const Expr &b) {
  auto d = asConstInt(b);
  if (!d || *d <= 0 || !a.type().isInt() || !a.type().isScalar())
    return std::nullopt;
  Offset o = splitOffset(a);
  if (o.c == 0 || o.c % *d != 0)
    return std::nullopt;
  return std::make_pair(o, *d);
}

/// One algebraic rule over a binary node's (already simplified) operands; returns an
/// undefined Expr when it does not apply.
struct Rule {
  ExprKind op;
  Expr (*apply)(const Expr &a, const Expr &b);
};

Expr rebuild(ExprKind k, Expr a, Expr b);

/// a == x * c1 + c2 or x * c1 - c2' (c2 = -c2') with b == c1 > 0 and c2 constants.
bool matchScaledOffset(const Expr &a, const Expr &b, Expr &x, int64_t &c1, int64_t &c2) {
  const int64_t *cb = asConstInt(b);
  if (!cb || *cb <= 0) return false;
  Expr lhs, off;
  bool negate = false;
  if (auto *add = a.as<AddNode>()) { lhs = add->a; off = add->b; }
  else if (auto *sub = a.as<SubNode>()) { lhs = sub->a; off = sub->b; negate = true; }
  else return false;
  auto *mul = lhs.as<MulNode>();
  const int64_t *co = asConstInt(off);
  if (!mul || !co || !exprEqual(mul->b, b)) return false;
  x = mul->a;
  c1 = *cb;
  c2 = negate ? -*co : *co;
  return true;
}

int64_t floorDiv(int64_t a, int64_t b) { return a / b - ((a % b != 0) && ((a < 0) != (b < 0))); }

// clang-format off
const Rule kRules[] = {
  // x + 0 -> x                         (integers only: -0.0 + 0.0 is +0.0)
  {ExprKind::Add, [](const Expr &a, const Expr &b) { return isInt(a) && isZero(b) ? a : Expr(); }},
  // 0 + x -> x                         (integers only)
  {ExprKind::Add, [](const Expr &a, const Expr &b) { return isInt(a) && isZero(a) ? b : Expr(); }},
  // (x + c1) + c2 -> x + (c1 + c2), (x - c1) + c2 -> x + (c2 - c1), x + (-c) -> x - c
  //                                    (signed integers; the result is written x - c when the
  //                                    offset is negative and x when it is 0)
  {ExprKind::Add, [](const Expr &a, const Expr &b) { return foldOffsets(ExprKind::Add, a, b); }},
  // (x + c1) + c2 -> x + (c1 + c2)     (other integers: unsigned, vectors)
  {ExprKind::Add, [](const Expr &a, const Expr &b) {
     auto *inner = a.as<AddNode>();
     if (!isInt(a) || !inner || !isConst(inner->b) || !isConst(b)) return Expr();
     return rebuild(ExprKind::Add, inner->a, rebuild(ExprKind::Add, inner->b, b)); }},
  // ramp(b1, s1) + ramp(b2, s2) -> ramp(b1 + b2, s1 + s2)
  {ExprKind::Add, [](const Expr &a, const Expr &b) {
     auto *x = a.as<RampNode>(), *y = b.as<RampNode>();
     if (!x || !y) return Expr();
     return ramp(rebuild(ExprKind::Add, x->base, y->base), rebuild(ExprKind::Add, x->stride, y->stride), x->lanes); }},
  // ramp(b, s) + broadcast(c) -> ramp(b + c, s)
  {ExprKind::Add, [](const Expr &a, const Expr &b) {
     auto *x = a.as<RampNode>(); auto *y = b.as<BroadcastNode>();
     if (!x || !y) return Expr();
     return ramp(rebuild(ExprKind::Add, x->base, y->value), x->stride, x->lanes); }},
  // broadcast(c) + ramp(b, s) -> ramp(c + b, s)   (a contiguous vector index: one vector load)
  {ExprKind::Add, [](const Expr &a, const Expr &b) {
     auto *x = a.as<BroadcastNode>(); auto *y = b.as<RampNode>();
     if (!x || !y) return Expr();
     return ramp(rebuild(ExprKind::Add, x->value, y->base), y->stride, y->lanes); }},
  // ramp(b, s) - broadcast(c) -> ramp(b - c, s)
  {ExprKind::Sub, [](const Expr &a, const Expr &b) {
     auto *x = a.as<RampNode>(); auto *y = b.as<BroadcastNode>();
     if (!x || !y) return Expr();
     return ramp(rebuild(ExprKind::Sub, x->base, y->value), x->stride, x->lanes); }},
  // x - 0 -> x                         (exact for floats too: -0.0 - 0.0 is -0.0)
  {ExprKind::Sub, [](const Expr &a, const Expr &b) { return isZero(b) && !isConst(a) ? a : Expr(); }},
  // x - x -> 0                         (integers only: inf - inf is NaN)
  {ExprKind::Sub, [](const Expr &a, const Expr &b) { return isInt(a) && exprEqual(a, b) ? makeZero(a.type()) : Expr(); }},
  // (x + c1) - c2 -> x + (c1 - c2), (x - c1) - c2 -> x - (c1 + c2), x - (-c) -> x + c
  //                                    (signed integers)
  {ExprKind::Sub, [](const Expr &a, const Expr &b) { return foldOffsets(ExprKind::Sub, a, b); }},
  // (x + c1) - c2 -> x + (c1 - c2)     (other integers: unsigned, vectors)
  {ExprKind::Sub, [](const Expr &a, const Expr &b) {
     auto *inner = a.as<AddNode>();
     if (!isInt(a) || !inner || !isConst(inner->b) || !isConst(b)) return Expr();
     return rebuild(ExprKind::Add, inner->a, rebuild(ExprKind::Sub, inner->b, b)); }},
  // x * 1 -> x                         (exact for floats)
  {ExprKind::Mul, [](const Expr &a, const Expr &b) { return isOne(b) ? a : Expr(); }},
  // 1 * x -> x
  {ExprKind::Mul, [](const Expr &a, const Expr &b) { return isOne(a) ? b : Expr(); }},
  // x * 0 -> 0                         (integers only: inf * 0 is NaN)
  {ExprKind::Mul, [](const Expr &a, const Expr &b) { return isInt(a) && isZero(b) ? b : Expr(); }},
  // 0 * x -> 0                         (integers only)
  {ExprKind::Mul, [](const Expr &a, const Expr &b) { return isInt(a) && isZero(a) ? a : Expr(); }},
  // (x * c1) * c2 -> x * (c1 * c2)     (integers)
  {ExprKind::Mul, [](const Expr &a, const Expr &b) {
     auto *inner = a.as<MulNode>();
     if (!isInt(a) || !inner || !isConst(inner->b) || !isConst(b)) return Expr();
     return rebuild(ExprKind::Mul, inner->a, rebuild(ExprKind::Mul, inner->b, b)); }},
  // ramp(b, s) * broadcast(c) -> ramp(b * c, s * c)
  {ExprKind::Mul, [](const Expr &a, const Expr &b) {
     auto *x = a.as<RampNode>(); auto *y = b.as<BroadcastNode>();
     if (!x || !y) return Expr();
     return ramp(rebuild(ExprKind::Mul, x->base, y->value), rebuild(ExprKind::Mul, x->stride, y->value), x->lanes); }},
  // x / 1 -> x                         (exact for floats)
  {ExprKind::Div, [](const Expr &a, const Expr &b) { return isOne(b) ? a : Expr(); }},
  // (x * c) / c -> x                   (integers, c != 0; assumes x * c does not overflow)
  {ExprKind::Div, [](const Expr &a, const Expr &b) {
     auto *inner = a.as<MulNode>();
     if (!isInt(a) || !inner || !asConstInt(b) || isZero(b) || !exprEqual(inner->b, b)) return Expr();
     return inner->a; }},
  // (x * c1 + c2) / c1 -> x + c2 / c1   (integers, c1 > 0: floor division; also x * c1 - c2;
  //                                       a tile's row i / mr once its rows are unrolled)
  {ExprKind::Div, [](const Expr &a, const Expr &b) {
     Expr x; int64_t c1 = 0, c2 = 0;
     if (!isInt(a) || !matchScaledOffset(a, b, x, c1, c2)) return Expr();
     return rebuild(ExprKind::Add, x, makeConst(a.type(), floorDiv(c2, c1))); }},
  // (x * c1 + c2) % c1 -> c2 % c1        (integers, c1 > 0: floor modulo; also x * c1 - c2)
  {ExprKind::Mod, [](const Expr &a, const Expr &b) {
     Expr x; int64_t c1 = 0, c2 = 0;
     if (!isInt(a) || !matchScaledOffset(a, b, x, c1, c2)) return Expr();
     return makeConst(a.type(), c2 - floorDiv(c2, c1) * c1); }},
  // ramp(x * c, 1, l) / broadcast(c) -> broadcast(x)   (integers, 0 < l <= c: floor division)
  {ExprKind::Div, [](const Expr &a, const Expr &b) {
     auto *r = a.as<RampNode>(); auto *c = b.as<BroadcastNode>();
     if (!isInt(a) || !r || !c || !isOne(r->stride) || !asConstInt(c->value)) return Expr();
     auto *base = r->base.as<MulNode>();
     if (!base || !exprEqual(base->b, c->value) || *asConstInt(c->value) < r->lanes) return Expr();
     return broadcast(base->a, r->lanes); }},
  // ramp(x * c, 1, l) % broadcast(c) -> ramp(0, 1, l)   (integers, 0 < l <= c: floor modulo)
  {ExprKind::Mod, [](const Expr &a, const Expr &b) {
     auto *r = a.as<RampNode>(); auto *c = b.as<BroadcastNode>();
     if (!isInt(a) || !r || !c || !isOne(r->stride) || !asConstInt(c->value)) return Expr();
     auto *base = r->base.as<MulNode>();
     if (!base || !exprEqual(base->b, c->value) || *asConstInt(c->value) < r->lanes) return Expr();
     return ramp(makeZero(base->a.type()), r->stride, r->lanes); }},
  // (x + c1) / c2 -> x / c2 + c1 / c2  (signed integers, c2 > 0, c1 a multiple of c2: exact
  //                                    with floor division; assumes x + c1 does not overflow)
  {ExprKind::Div, [](const Expr &a, const Expr &b) {
     auto q = exactOffsetDiv(a, b);
     if (!q) return Expr();
     return rebuild(ExprKind::Add, rebuild(ExprKind::Div, q->first.base, b),
                    makeConst(a.type(), q->first.c / q->second)); }},
  // (x + c1) % c2 -> x % c2            (the same conditions)
  {ExprKind::Mod, [](const Expr &a, const Expr &b) {
     auto q = exactOffsetDiv(a, b);
     return q ? rebuild(ExprKind::Mod, q->first.base, b) : Expr(); }},
  // x % 1 -> 0                         (integers)
  {ExprKind::Mod, [](const Expr &a, const Expr &b) { return isInt(a) && isOne(b) ? makeZero(a.type()) : Expr(); }},
  // (x * c) % c -> 0                   (integers, c != 0; assumes x * c does not overflow)
  {ExprKind::Mod, [](const Expr &a, const Expr &b) {
     auto *inner = a.as<MulNode>();
     if (!isInt(a) || !inner || !asConstInt(b) || isZero(b) || !exprEqual(inner->b, b)) return Expr();
     return makeZero(a.type()); }},
  // min(x, x) -> x
  {ExprKind::Min, [](const Expr &a, const Expr &b) { return exprEqual(a, b) ? a : Expr(); }},
  // max(x, x) -> x
  {ExprKind::Max, [](const Expr &a, const Expr &b) { return exprEqual(a, b) ? a : Expr(); }},
  // min(x + c1, x + c2) -> x + min(c1, c2); min((x + c1) / d, (x + c2) / d) -> the one with the
  // smaller offset (d > 0; see knownOrder; x alone is x + 0)
  {ExprKind::Min, [](const Expr &a, const Expr &b) {
     int o = knownOrder(a, b);
     return o < 0 ? a : o > 0 ? b : Expr(); }},
  // max(x + c1, x + c2) -> x + max(c1, c2); max((x + c1) / d, (x + c2) / d) likewise
  {ExprKind::Max, [](const Expr &a, const Expr &b) {
     int o = knownOrder(a, b);
     return o < 0 ? b : o > 0 ? a : Expr(); }},
  // x == x -> true                     (integers only: NaN != NaN)
  {ExprKind::EQ, [](const Expr &a, const Expr &b) { return isInt(a) && exprEqual(a, b) ? makeBool(true, a.type().lanes) : Expr(); }},
  // x <= x -> true, x >= x -> true     (integers only)
  {ExprKind::LE, [](const Expr &a, const Expr &b) { return isInt(a) && exprEqual(a, b) ? makeBool(true, a.type().lanes) : Expr(); }},
  {ExprKind::GE, [](const Expr &a, const Expr &b) { return isInt(a) && exprEqual(a, b) ? makeBool(true, a.type().lanes) : Expr(); }},
  // x != x, x < x, x > x -> false      (integers only)
  {ExprKind::NE, [](const Expr &a, const Expr &b) { return isInt(a) && exprEqual(a, b) ? makeBool(false, a.type().lanes) : Expr(); }},
  {ExprKind::LT, [](const Expr &a, const Expr &b) { return isInt(a) && exprEqual(a, b) ? makeBool(false, a.type().lanes) : Expr(); }},
  {ExprKind::GT, [](const Expr &a, const Expr &b) { return isInt(a) && exprEqual(a, b) ? makeBool(false, a.type().lanes) : Expr(); }},
  // true && x -> x, false && x -> false (either side)
  {ExprKind::And, [](const Expr &a, const Expr &b) {
     if (isConstInt(a, 1)) return b;
     if (isConstInt(b, 1)) return a;
     if (isConstInt(a, 0)) return a;
     if (isConstInt(b, 0)) return b;
     return Expr(); }},
  // false || x -> x, true || x -> true (either side)
  {ExprKind::Or, [](const Expr &a, const Expr &b) {
     if (isConstInt(a, 0)) return b;
     if (isConstInt(b, 0)) return a;
     if (isConstInt(a, 1)) return a;
     if (isConstInt(b, 1)) return b;
     return Expr(); }},
};
// clang-format on

/// Folds constants and applies kRules until no rule applies.
Expr rebuild(ExprKind k, Expr a, Expr b) {
  // c1 op c2 -> c                      (constant folding; integer division by zero is kept)
  auto ca = constValue(a), cb = constValue(b);
  if (ca && cb) {
    bool divByZero = (k == ExprKind::Div || k == ExprKind::Mod) && !ca->isFloat() && cb->i == 0;
    if (!divByZero)
      return fromValue(evaluateBinary(k, *ca, *cb));
  }
  // broadcast(x) op broadcast(y) -> broadcast(x op y)
  auto *ba = a.as<BroadcastNode>(), *bb = b.as<BroadcastNode>();
  if (ba && bb)
    return broadcast(rebuild(k, ba->value, bb->value), ba->lanes);
  // c + x -> x + c, c * x -> x * c     (canonical order: constants on the right)
  if ((k == ExprKind::Add || k == ExprKind::Mul || k == ExprKind::Min || k == ExprKind::Max) &&
      isConst(a) && !isConst(b) && isInt(a))
    std::swap(a, b);
  for (const Rule &r : kRules) {
    if (r.op != k)
      continue;
    if (Expr out = r.apply(a, b); out.defined())
      return out;
  }
  switch (k) {
#define BIN(K)                                                                                     \
  case ExprKind::K:                                                                                \
    return K##Node::make(std::move(a), std::move(b));
    TESSEL_LOOP_BINARY_KINDS(BIN)
#undef BIN
  default: fail("simplify: not a binary node");
  }
}

class Simplifier : public IRMutator {
public:
  using IRMutator::mutate;

protected:
  template <ExprKind K> Expr simplifyBinary(const Expr &e, const BinaryNode<K> *op) {
    Expr a = mutate(op->a), b = mutate(op->b);
    Expr out = rebuild(K, a, b);
    return exprEqual(out, e) ? e : out;
  }
#define BIN(K)                                                                                     \
  Expr mutate(const Expr &e, const K##Node *op) override { return simplifyBinary(e, op); }
  TESSEL_LOOP_BINARY_KINDS(BIN)
#undef BIN

  Expr mutate(const Expr &e, const NotNode *op) override {
    Expr a = mutate(op->a);
    // not(c) -> !c
    if (auto c = asConstInt(a))
      return makeBool(!*c, a.type().lanes);
    // not(not(x)) -> x
    if (auto *n = a.as<NotNode>())
      return n->a;
    return a.same_as(op->a) ? e : NotNode::make(a);
  }

  Expr mutate(const Expr &e, const SelectNode *op) override {
    Expr c = mutate(op->cond), a = mutate(op->trueValue), b = mutate(op->falseValue);
    // select(true, a, b) -> a; select(false, a, b) -> b
    if (auto v = asConstInt(c))
      return *v ? a : b;
    // select(c, a, a) -> a
    if (exprEqual(a, b))
      return a;
    if (c.same_as(op->cond) && a.same_as(op->trueValue) && b.same_as(op->falseValue))
      return e;
    return SelectNode::make(c, a, b);
  }

  Expr mutate(const Expr &e, const CastNode *op) override {
    Expr v = mutate(op->value);
    // cast(t, x: t) -> x
    if (v.type() == op->type)
      return v;
    // cast(t, c) -> c'                 (constant folding)
    if (auto cv = constValue(v))
      return fromValue(evaluateCast(op->type, *cv));
    return v.same_as(op->value) ? e : CastNode::make(op->type, v);
  }

  Expr mutate(const Expr &e, const CallNode *op) override {
    bool changed = false;
    std::vector<Expr> args = mutateAll(op->args, changed);
    // f(c1, ..., cn) -> c                (intrinsics through evaluateCall; kept when the
    //                                    intrinsic rejects the arguments or the result is not
    //                                    finite, which a constant cannot spell)
    std::vector<Value> values;
    for (const Expr &a : args)
      if (auto v = constValue(a))
        values.push_back(*v);
    const IntrinsicInfo *info = lookupIntrinsic(op->name);
    // fresh_u64(c) is not a function of c: never folded (an unseeded random op would draw the
    // same values on every run)
    if (!args.empty() && values.size() == args.size() && !(info && info->fresh)) {
      try {
        Value r = evaluateCall(op->name, values);
        if (r.type == e.type() && (!r.isFloat() || std::isfinite(r.f)))
          return fromValue(r);
      } catch (const Error &) {
      }
    }
    return changed ? CallNode::make(op->name, std::move(args)) : e;
  }

  Expr mutate(const Expr &e, const RampNode *op) override {
    Expr b = mutate(op->base), s = mutate(op->stride);
    // ramp(b, 0, l) -> broadcast(b, l)
    if (isZero(s))
      return broadcast(b, op->lanes);
    if (b.same_as(op->base) && s.same_as(op->stride))
      return e;
    return RampNode::make(b, s, op->lanes);
  }

  Expr mutate(const Expr &e, const LetNode *op) override { return simplifyLet(e, op); }
  Stmt mutate(const Stmt &s, const LetStmtNode *op) override { return simplifyLet(s, op); }

  /// let x = value in body, for an Expr or Stmt body.
  template <class R, class Node> R simplifyLet(const R &orig, const Node *op) {
    Expr v = mutate(op->value);
    // let x = c (or a variable) in body -> body[x := c]
    if (isConst(v) || v.as<VarNode>())
      return mutate(substitute(op->body, op->var, v));
    R b = mutate(op->body);
    if (v.same_as(op->value) && b.same_as(op->body))
      return orig;
    return Node::make(op->var, v, b);
  }

  Stmt mutate(const Stmt &s, const ForNode *op) override {
    Expr mn = mutate(op->min), ext = mutate(op->extent);
    if (auto n = asConstInt(ext)) {
      // for x in [min, min + 0) -> no-op (also for a negative extent)
      if (*n <= 0)
        return makeNoOp();
      // for x in [min, min + 1): body -> body[x := min]
      if (*n == 1)
        return mutate(substitute(op->body, op->loopVar, mn));
    }
    Stmt body = mutate(op->body);
    if (isNoOp(body))
      return makeNoOp();
    if (mn.same_as(op->min) && ext.same_as(op->extent) && body.same_as(op->body))
      return s;
    return ForNode::make(op->loopVar, mn, ext, op->forKind, body);
  }

  Stmt mutate(const Stmt &s, const IfThenElseNode *op) override {
    Expr c = mutate(op->cond);
    // if (true) a else b -> a; if (false) a else b -> b
    if (auto v = asConstInt(c)) {
      if (*v)
        return mutate(op->thenCase);
      return op->elseCase.defined() ? mutate(op->elseCase) : makeNoOp();
    }
    Stmt t = mutate(op->thenCase), el = mutate(op->elseCase);
    if (el.defined() && isNoOp(el))
      el = Stmt();
    if (isNoOp(t) && !el.defined())
      return makeNoOp();
    if (c.same_as(op->cond) && t.same_as(op->thenCase) && el.same_as(op->elseCase))
      return s;
    return IfThenElseNode::make(c, t, el);
  }


  Stmt mutate(const Stmt &s, const SeqNode *op) override {
    // drop no-ops from sequences
    std::vector<Stmt> out;
    bool changed = false;
    for (auto &st : op->stmts) {
      Stmt m = mutate(st);
      changed |= !m.same_as(st);
      if (isNoOp(m)) {
        changed = true;
        continue;
      }
      out.push_back(m);
    }
    if (!changed)
      return s;
    return SeqNode::make(std::move(out));
  }
};

} // namespace

Expr simplify(const Expr &e) { return Simplifier().mutate(e); }
Stmt simplify(const Stmt &s) { return Simplifier().mutate(s); }
LoweredFunc simplify(const LoweredFunc &f) {
  LoweredFunc out = f;
  out.body = simplify(f.body);
  return out;
}

} // namespace tessel::loop
