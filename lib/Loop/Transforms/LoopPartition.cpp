//===- LoopPartition.cpp - split loops into a guard-free main part and a tail ===//
//
// Halide's PartitionLoops / TVM's LoopPartition, for the case schedules create: a split by
// a factor that does not divide the extent leaves a guard in the innermost body,
//
//   for io in 0..(n + 7) / 8 { vectorized for ii in 0..8 { if (io*8 + ii < n) { S } } }
//
// The guard is true for every ii as long as io*8 + 7 < n, i.e. io <= (n - 8) / 8 (floor).
// So the loop becomes
//
//   for io in 0..E { vectorized for ii in 0..8 { S } }           // E = clamp((n-8)/8 + 1)
//   for io in E..(n+7)/8 { for ii in 0..8 { if (io*8 + ii < n) { S } } }  // scalar tail
//
// Recognized: an IfThenElse whose condition is an integer comparison (< <= > >=) with
// `rhs - lhs` linear in the loop variable (constant coefficient k != 0) and linear with
// constant coefficients in the variables of loops between (those need constant min and
// extent). k < 0 gives a main prefix, k > 0 a main suffix (then the tail comes first).
// The first recognized IfThenElse (in program order) is the one partitioned on.
//
//===----------------------------------------------------------------------===//

#include "tessel/Loop/Passes.h"
#include "tessel/Loop/Simplify.h"
#include "tessel/Loop/Visitor.h"

#include <optional>

using namespace tessel;
using namespace tessel::loop;

namespace {

/// e = k * v + rest with constant k and rest free of v.
struct Linear {
  int64_t k;
  Expr rest;
};

std::optional<Linear> linearIn(const Expr &e, const Var &v) {
  if (!usesVar(e, v))
    return Linear{0, e};
  if (const auto *var = e.as<VarNode>(); var && var == v.get())
    return Linear{1, makeZero(e.type())};
  if (const auto *a = e.as<AddNode>()) {
    auto x = linearIn(a->a, v), y = linearIn(a->b, v);
    if (!x || !y)
      return std::nullopt;
    return Linear{x->k + y->k, add(x->rest, y->rest)};
  }
  if (const auto *s = e.as<SubNode>()) {
    auto x = linearIn(s->a, v), y = linearIn(s->b, v);
    if (!x || !y)
      return std::nullopt;
    return Linear{x->k - y->k, sub(x->rest, y->rest)};
  }
  if (const auto *m = e.as<MulNode>()) {
    const int64_t *c = asConstInt(m->b);
    const Expr *other = &m->a;
    if (!c) {
      c = asConstInt(m->a);
      other = &m->b;
    }
    if (!c)
      return std::nullopt;
    auto x = linearIn(*other, v);
    if (!x)
      return std::nullopt;
    return Linear{x->k * *c, mul(x->rest, makeConst(e.type(), *c))};
  }
  return std::nullopt;
}

struct InnerLoop {
  Var var;
  int64_t min, extent;
};

/// The smallest value of `e` over the inner loops' ranges, or nothing if not linear there.
std::optional<Expr> minOver(Expr e, const std::vector<InnerLoop> &inner) {
  for (const InnerLoop &l : inner) {
    auto lin = linearIn(e, l.var);
    if (!lin)
      return std::nullopt;
    if (lin->k == 0)
      continue;
    int64_t at = lin->k > 0 ? l.min : l.min + l.extent - 1;
    e = add(lin->rest, makeConst(e.type(), lin->k * at));
  }
  return e;
}

/// The guard found for loop `v`: in the main range, `guard` is replaced by its then-branch.
struct Split {
  const IfThenElseNode *guard = nullptr;
  bool prefix = true; ///< the guard holds for v <= bound (else for v >= bound)
  Expr bound;
};

class GuardFinder : public IRVisitor {
public:
  explicit GuardFinder(const Var &v) : v_(v) {}
  using IRVisitor::visit;
  std::optional<Split> found;

protected:
  void visit(const ForNode *op) override {
    if (found)
      return;
    const int64_t *mn = asConstInt(op->min), *ext = asConstInt(op->extent);
    if (!mn || !ext) {
      // The guard may still be found if it does not depend on this loop's variable.
      inner_.push_back({op->loopVar, 0, -1});
      IRVisitor::visit(op);
      inner_.pop_back();
      return;
    }
    inner_.push_back({op->loopVar, *mn, *ext});
    IRVisitor::visit(op);
    inner_.pop_back();
  }
  void visit(const IfThenElseNode *op) override {
    if (found)
      return;
    if (auto s = analyze(op)) {
      found = s;
      return;
    }
    IRVisitor::visit(op);
  }

private:
  std::optional<Split> analyze(const IfThenElseNode *op) {
    const Expr &c = op->cond;
    if (!usesVar(c, v_))
      return std::nullopt;
    // Normalize to d >= 0 with d an integer expression.
    Expr d;
    if (const auto *n = c.as<LTNode>())
      d = sub(sub(n->b, n->a), makeOne(n->a.type())); // a < b  <=>  b - a - 1 >= 0
    else if (const auto *n = c.as<LENode>())
      d = sub(n->b, n->a);
    else if (const auto *n = c.as<GTNode>())
      d = sub(sub(n->a, n->b), makeOne(n->a.type()));
    else if (const auto *n = c.as<GENode>())
      d = sub(n->a, n->b);
    else
      return std::nullopt;
    if (!d.type().isIntOrUInt() || d.type().isUInt() || d.type().lanes != 1)
      return std::nullopt;
    auto lin = linearIn(d, v_);
    if (!lin || lin->k == 0)
      return std::nullopt;
    std::vector<InnerLoop> known;
    for (const InnerLoop &l : inner_) {
      if (usesVar(lin->rest, l.var) && l.extent < 0)
        return std::nullopt;
      if (l.extent >= 0)
        known.push_back(l);
    }
    auto restMin = minOver(lin->rest, known);
    if (!restMin)
      return std::nullopt;
    if (usesVar(*restMin, v_))
      return std::nullopt;
    Type t = d.type();
    Split s;
    s.guard = op;
    if (lin->k < 0) {
      // k*v + r >= 0  <=>  v <= floor(r / -k)
      s.prefix = true;
      s.bound = div(*restMin, makeConst(t, -lin->k));
    } else {
      // k*v + r >= 0  <=>  v >= ceil(-r / k) = -floor(r / k)
      s.prefix = false;
      s.bound = neg(div(*restMin, makeConst(t, lin->k)));
    }
    return s;
  }

  Var v_;
  std::vector<InnerLoop> inner_;
};

/// Replaces the guard by its then-branch.
class GuardRemover : public IRMutator {
public:
  explicit GuardRemover(const IfThenElseNode *guard) : guard_(guard) {}
  using IRMutator::mutate;

protected:
  Stmt mutate(const Stmt &s, const IfThenElseNode *op) override {
    if (op == guard_)
      return op->thenCase;
    return IRMutator::mutate(s, op);
  }

private:
  const IfThenElseNode *guard_;
};

/// The tail runs with scalar code: its vectorized loops would carry a per-lane guard.
class Devectorizer : public IRMutator {
public:
  using IRMutator::mutate;

protected:
  Stmt mutate(const Stmt &s, const ForNode *op) override {
    Stmt r = IRMutator::mutate(s, op);
    const auto *f = r.as<ForNode>();
    if (!f || f->forKind != ForKind::Vectorized)
      return r;
    return ForNode::make(f->loopVar, f->min, f->extent, ForKind::Serial, f->body);
  }
};

class Partitioner : public IRMutator {
public:
  using IRMutator::mutate;

protected:
  Stmt mutate(const Stmt &s, const ForNode *op) override {
    if (op->forKind == ForKind::Vectorized) {
      // Outer loops were partitioned first, so a guard on this loop's own variable that is
      // still here means the whole loop is a tail (a split whose outer loop had one
      // iteration and was simplified away, e.g. extent 7 split by 8): run it as scalar code.
      GuardFinder finder(op->loopVar);
      finder.visit(op->body);
      if (finder.found)
        return Devectorizer().mutate(s);
      return IRMutator::mutate(s, op);
    }
    if (op->forKind == ForKind::Unrolled)
      return IRMutator::mutate(s, op);
    GuardFinder finder(op->loopVar);
    finder.visit(op->body);
    if (!finder.found)
      return IRMutator::mutate(s, op);
    const Split &split = *finder.found;
    Type t = op->min.type();
    Expr bound = split.bound.type() == t ? split.bound : cast(t, split.bound);
    Expr end = add(op->min, op->extent);
    // First iteration of the second part, clamped into [min, end].
    Expr mid = split.prefix ? add(bound, makeOne(t)) : bound;
    mid = simplify(max(op->min, min(mid, end)));
    end = simplify(end);
    // The main part may hold more guards on this loop (a reduction's init nest and its update
    // nest each carry the same tail guard): partitioning the main loop again removes them one
    // by one (each further split is exact; its tail range is empty when the bounds agree).
    Stmt mainBody = GuardRemover(split.guard).mutate(op->body);
    Stmt tailBody = Devectorizer().mutate(op->body);
    Stmt first, second;
    if (split.prefix) {
      first = partitionAgain(ForNode::make(op->loopVar, op->min, simplify(sub(mid, op->min)),
                                           op->forKind, mainBody));
      second = ForNode::make(op->loopVar, mid, simplify(sub(end, mid)), op->forKind, tailBody);
    } else {
      first =
          ForNode::make(op->loopVar, op->min, simplify(sub(mid, op->min)), op->forKind, tailBody);
      second = partitionAgain(
          ForNode::make(op->loopVar, mid, simplify(sub(end, mid)), op->forKind, mainBody));
    }
    return SeqNode::make({first, second});
  }

private:
  Stmt partitionAgain(const Stmt &loop) {
    const auto *f = loop.as<ForNode>();
    if (const int64_t *ext = asConstInt(f->extent); ext && *ext <= 0)
      return makeNoOp(); // empty (e.g. no full vector iteration): nothing runs
    return mutate(loop, f);
  }
};

} // namespace

Stmt tessel::loop::loopPartition(const Stmt &s) { return Partitioner().mutate(s); }
