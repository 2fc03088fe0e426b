//===- VectorizeLoops.cpp - Vectorized loops to vector expressions ---------===//
//
// Halide's VectorizeLoops / TVM's VectorizeLoop: `vectorized for i in m..m+L { S(i) }`
// becomes S with i := ramp(m, 1, L). Expressions that do not depend on i stay scalar; an
// operation with one vector operand broadcasts the other. A Load/Store whose index becomes a
// vector is a vector (gather/scatter when the stride is not 1) load/store. A store of a vector
// value to a scalar location is a reduction across lanes: `C[j] = C[j] op e` becomes
// `C[j] = C[j] op vector_reduce(op, e)` for op in + * min max (reassociation: for floats the
// summation order changes, as in every vectorized reduction); any other is rejected.
//
//===----------------------------------------------------------------------===//

#include "tessel/Loop/Passes.h"
#include "tessel/Loop/Visitor.h"

using namespace tessel;
using namespace tessel::loop;

namespace {

constexpr int64_t kMaxLanes = 64;

/// Vectorizes the body of one loop: `var` stands for ramp(min, 1, lanes).
class LoopVectorizer : public IRMutator {
public:
  LoopVectorizer(const ForNode *loop, int lanes) : loop_(loop), lanes_(lanes) {
    replacement_ = ramp(loop->min, makeOne(loop->min.type()), lanes);
  }
  using IRMutator::mutate;

protected:
  Expr widen(const Expr &e) const {
    if (e.type().lanes == lanes_)
      return e;
    if (e.type().lanes != 1)
      fail("an expression of type " + e.type().toString() + " mixes with " +
           std::to_string(lanes_) + " lanes");
    return broadcast(e, lanes_);
  }
  [[noreturn]] void fail(const std::string &what) const {
    throw Error("vectorize: loop '" + loop_->loopVar.name() + "': " + what);
  }
  bool anyVector(std::initializer_list<const Expr *> es) const {
    for (const Expr *e : es)
      if (e->defined() && e->type().lanes > 1)
        return true;
    return false;
  }

  Expr mutate(const Expr &e, const VarNode *op) override {
    if (op == loop_->loopVar.get())
      return replacement_;
    auto it = lets_.find(op);
    if (it != lets_.end())
      return it->second;
    return e;
  }

#define TESSEL_VEC_BINARY(NODE)                                                                    \
  Expr mutate(const Expr &e, const NODE *op) override { return binary(e, op); }
  TESSEL_VEC_BINARY(AddNode)
  TESSEL_VEC_BINARY(SubNode)
  TESSEL_VEC_BINARY(MulNode)
  TESSEL_VEC_BINARY(DivNode)
  TESSEL_VEC_BINARY(ModNode)
  TESSEL_VEC_BINARY(MinNode)
  TESSEL_VEC_BINARY(MaxNode)
  TESSEL_VEC_BINARY(EQNode)
  TESSEL_VEC_BINARY(NENode)
  TESSEL_VEC_BINARY(LTNode)
  TESSEL_VEC_BINARY(LENode)
  TESSEL_VEC_BINARY(GTNode)
  TESSEL_VEC_BINARY(GENode)
  TESSEL_VEC_BINARY(AndNode)
  TESSEL_VEC_BINARY(OrNode)
#undef TESSEL_VEC_BINARY

  template <ExprKind K> Expr binary(const Expr &e, const BinaryNode<K> *op) {
    Expr a = mutate(op->a), b = mutate(op->b);
    if (a.same_as(op->a) && b.same_as(op->b))
      return e;
    if (anyVector({&a, &b})) {
      a = widen(a);
      b = widen(b);
    }
    return BinaryNode<K>::make(a, b);
  }

  Expr mutate(const Expr &e, const SelectNode *op) override {
    Expr c = mutate(op->cond), t = mutate(op->trueValue), f = mutate(op->falseValue);
    if (c.same_as(op->cond) && t.same_as(op->trueValue) && f.same_as(op->falseValue))
      return e;
    if (anyVector({&c, &t, &f})) {
      c = widen(c);
      t = widen(t);
      f = widen(f);
    }
    return SelectNode::make(c, t, f);
  }

  Expr mutate(const Expr &e, const CastNode *op) override {
    Expr v = mutate(op->value);
    if (v.same_as(op->value))
      return e;
    return CastNode::make(op->type.withLanes(v.type().lanes), v);
  }

  Expr mutate(const Expr &e, const CallNode *op) override {
    bool changed = false;
    std::vector<Expr> args = mutateAll(op->args, changed);
    if (!changed)
      return e;
    bool vec = false;
    for (const Expr &a : args)
      vec |= a.type().lanes > 1;
    if (vec)
      for (Expr &a : args)
        a = widen(a);
    return CallNode::make(op->name, std::move(args));
  }

  Expr mutate(const Expr &e, const LoadNode *op) override {
    bool changed = false;
    std::vector<Expr> indices = mutateAll(op->indices, changed);
    Expr pred = op->predicate.defined() ? mutate(op->predicate) : Expr();
    if (!changed && pred.same_as(op->predicate))
      return e;
    bool vec = anyVector({&pred});
    for (const Expr &ix : indices)
      vec |= ix.type().lanes > 1;
    if (vec) {
      for (Expr &ix : indices)
        ix = widen(ix);
      if (pred.defined())
        pred = widen(pred);
    }
    return LoadNode::make(op->buffer, std::move(indices), pred);
  }

  Expr mutate(const Expr &e, const RampNode *op) override {
    if (usesVar(e, loop_->loopVar))
      fail("a ramp inside the loop depends on its variable; expected scalar code "
           "(nested vectorization is not supported)");
    return e;
  }
  Expr mutate(const Expr &e, const BroadcastNode *op) override {
    if (usesVar(e, loop_->loopVar))
      fail("a broadcast inside the loop depends on its variable; expected scalar code "
           "(nested vectorization is not supported)");
    return e;
  }

  Expr mutate(const Expr &e, const LetNode *op) override { return mutateLet(e, op); }
  Stmt mutate(const Stmt &s, const LetStmtNode *op) override { return mutateLet(s, op); }

  /// let x = value in body (an Expr or Stmt body): a vector value gives x a new variable of
  /// the vector type, used in the body.
  template <class R, class Node> R mutateLet(const R &orig, const Node *op) {
    Expr value = mutate(op->value);
    if (value.type().lanes == 1) {
      R body = mutate(op->body);
      if (value.same_as(op->value) && body.same_as(op->body))
        return orig;
      return Node::make(op->var, value, body);
    }
    Var v(op->var.name(), value.type());
    lets_[op->var.get()] = v;
    R body = mutate(op->body);
    lets_.erase(op->var.get());
    return Node::make(v, value, body);
  }

  Stmt mutate(const Stmt &s, const StoreNode *op) override {
    bool changed = false;
    std::vector<Expr> indices = mutateAll(op->indices, changed);
    Expr value = mutate(op->value);
    Expr pred = op->predicate.defined() ? mutate(op->predicate) : Expr();
    if (!changed && value.same_as(op->value) && pred.same_as(op->predicate))
      return s;
    bool vecIndex = anyVector({&pred});
    for (const Expr &ix : indices)
      vecIndex |= ix.type().lanes > 1;
    if (vecIndex) {
      for (Expr &ix : indices)
        ix = widen(ix);
      if (pred.defined())
        pred = widen(pred);
      return StoreNode::make(op->buffer, widen(value), std::move(indices), pred);
    }
    if (value.type().lanes == 1)
      return StoreNode::make(op->buffer, value, std::move(indices), pred);
    return reductionStore(op, value, indices, pred);
  }

  /// `C[j] = C[j] op e` with e a vector: `C[j] = C[j] op vector_reduce(op, e)`.
  Stmt reductionStore(const StoreNode *op, const Expr &value, const std::vector<Expr> &indices,
                      const Expr &pred) {
    auto isSelfLoad = [&](const Expr &x) {
      const auto *l = x.as<LoadNode>();
      if (!l || !l->buffer.same_as(op->buffer) || l->indices.size() != indices.size() ||
          l->predicate.defined())
        return false;
      for (size_t k = 0; k < indices.size(); ++k)
        if (!exprEqual(l->indices[k], indices[k]))
          return false;
      return true;
    };
    // Matched on the original value: vectorizing it broadcast the scalar self load.
    auto tryOp = [&](const auto *node, ReduceOp rop,
                     Expr (*combine)(Expr, Expr)) -> std::optional<Stmt> {
      if (!node)
        return std::nullopt;
      const Expr *self = nullptr, *other = nullptr;
      if (isSelfLoad(node->a) && !usesVar(node->a, loop_->loopVar)) {
        self = &node->a;
        other = &node->b;
      } else if (isSelfLoad(node->b) && !usesVar(node->b, loop_->loopVar)) {
        self = &node->b;
        other = &node->a;
      }
      if (!other)
        return std::nullopt;
      Expr part = mutate(*other);
      if (part.type().lanes == 1)
        return std::nullopt;
      Expr reduced = vectorReduce(rop, part);
      return StoreNode::make(op->buffer, combine(mutate(*self), reduced), indices, pred);
    };
    const Expr &original = op->value;
    if (auto r = tryOp(original.as<AddNode>(), ReduceOp::Add, &add))
      return *r;
    if (auto r = tryOp(original.as<MulNode>(), ReduceOp::Mul, &mul))
      return *r;
    if (auto r = tryOp(original.as<MinNode>(), ReduceOp::Min,
                       static_cast<Expr (*)(Expr, Expr)>(&tessel::loop::min)))
      return *r;
    if (auto r = tryOp(original.as<MaxNode>(), ReduceOp::Max,
                       static_cast<Expr (*)(Expr, Expr)>(&tessel::loop::max)))
      return *r;
    fail("the store to '" + op->buffer.name() +
         "' writes a vector value to a scalar location; expected a reduction of the form "
         "B[j] = B[j] op e with op in + * min max");
  }

  Stmt mutate(const Stmt &s, const IfThenElseNode *op) override {
    Expr c = mutate(op->cond);
    if (c.type().lanes > 1)
      fail("an if depends on the loop variable (" + c.type().toString() +
           " condition); expected no per-lane condition: run loop partition first so the "
           "vectorized loop has no tail guard");
    return IRMutator::mutate(s, op);
  }

  Stmt mutate(const Stmt &s, const ForNode *op) override {
    if (op->forKind == ForKind::Vectorized)
      fail("loop '" + op->loopVar.name() +
           "' is vectorized inside it; expected one "
           "vectorized loop per nest");
    if (usesVar(op->min, loop_->loopVar) || usesVar(op->extent, loop_->loopVar))
      fail("the bounds of inner loop '" + op->loopVar.name() +
           "' depend on the vectorized variable; expected bounds independent of it");
    return IRMutator::mutate(s, op);
  }

  Stmt mutate(const Stmt &, const AllocateNode *op) override {
    fail("it allocates '" + op->buffer.name() +
         "' inside its body; expected the allocation outside the vectorized loop");
  }

private:
  const ForNode *loop_;
  int lanes_;
  Expr replacement_;
  std::unordered_map<const VarNode *, Expr> lets_;
};

class Vectorizer : public IRMutator {
public:
  using IRMutator::mutate;

protected:
  Stmt mutate(const Stmt &s, const ForNode *op) override {
    if (op->forKind != ForKind::Vectorized)
      return IRMutator::mutate(s, op);
    const int64_t *extent = asConstInt(op->extent);
    if (!extent)
      throw Error("vectorize: loop '" + op->loopVar.name() +
                  "' has a non-constant extent; expected a constant extent (split the loop "
                  "by the vector width and partition its tail first)");
    if (*extent < 1 || *extent > kMaxLanes)
      throw Error("vectorize: loop '" + op->loopVar.name() + "' has extent " +
                  std::to_string(*extent) + "; expected 1 to " + std::to_string(kMaxLanes) +
                  " lanes");
    if (*extent == 1)
      return substitute(op->body, op->loopVar, op->min);
    return LoopVectorizer(op, int(*extent)).mutate(op->body);
  }
};

} // namespace

Stmt tessel::loop::vectorizeLoops(const Stmt &s) { return Vectorizer().mutate(s); }
