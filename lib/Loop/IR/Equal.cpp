//===- Equal.cpp - structural equality and hashing of loop IR -------------===//

#include "tessel/Loop/IR.h"

#include <cstring>

namespace tessel::loop {

namespace {

/// Compares two trees; variables bound inside them (Let, LetStmt, For) are matched up in
/// `bound_`, free variables and buffers compare by identity.
class Comparer {
public:
  bool equal(const Expr &a, const Expr &b) {
    if (a.same_as(b))
      return true;
    if (!a.defined() || !b.defined())
      return false;
    if (a.kind() != b.kind() || a.type() != b.type())
      return false;
    switch (a.kind()) {
    case ExprKind::IntImm:
      return a.as<IntImmNode>()->value == b.as<IntImmNode>()->value;
    case ExprKind::FloatImm: {
      double x = a.as<FloatImmNode>()->value, y = b.as<FloatImmNode>()->value;
      return std::memcmp(&x, &y, sizeof x) == 0; // bitwise: -0.0 != 0.0, NaN == NaN
    }
    case ExprKind::Var: {
      auto it = bound_.find(a.get());
      return it != bound_.end() && it->second == b.get();
    }
#define BIN(K)                                                                                     \
  case ExprKind::K: {                                                                              \
    auto *x = a.as<K##Node>(), *y = b.as<K##Node>();                                               \
    return equal(x->a, y->a) && equal(x->b, y->b);                                                 \
  }
      BIN(Add) BIN(Sub) BIN(Mul) BIN(Div) BIN(Mod) BIN(Min) BIN(Max) BIN(EQ) BIN(NE) BIN(LT)
      BIN(LE) BIN(GT) BIN(GE) BIN(And) BIN(Or)
#undef BIN
    case ExprKind::Not:
      return equal(a.as<NotNode>()->a, b.as<NotNode>()->a);
    case ExprKind::Select: {
      auto *x = a.as<SelectNode>(), *y = b.as<SelectNode>();
      return equal(x->cond, y->cond) && equal(x->trueValue, y->trueValue) &&
             equal(x->falseValue, y->falseValue);
    }
    case ExprKind::Cast:
      return equal(a.as<CastNode>()->value, b.as<CastNode>()->value);
    case ExprKind::Call: {
      auto *x = a.as<CallNode>(), *y = b.as<CallNode>();
      return x->name == y->name && equalAll(x->args, y->args);
    }
    case ExprKind::Load: {
      auto *x = a.as<LoadNode>(), *y = b.as<LoadNode>();
      return equalBuffer(x->buffer, y->buffer) && equalAll(x->indices, y->indices) &&
             equal(x->predicate, y->predicate);
    }
    case ExprKind::Ramp: {
      auto *x = a.as<RampNode>(), *y = b.as<RampNode>();
      return x->lanes == y->lanes && equal(x->base, y->base) && equal(x->stride, y->stride);
    }
    case ExprKind::Broadcast: {
      auto *x = a.as<BroadcastNode>(), *y = b.as<BroadcastNode>();
      return x->lanes == y->lanes && equal(x->value, y->value);
    }
    case ExprKind::Let: {
      auto *x = a.as<LetNode>(), *y = b.as<LetNode>();
      if (x->var.type() != y->var.type() || !equal(x->value, y->value))
        return false;
      bound_[x->var.get()] = y->var.get();
      return equal(x->body, y->body);
    }
    case ExprKind::Shuffle: {
      auto *x = a.as<ShuffleNode>(), *y = b.as<ShuffleNode>();
      return x->indices == y->indices && equalAll(x->vectors, y->vectors);
    }
    case ExprKind::VectorReduce: {
      auto *x = a.as<VectorReduceNode>(), *y = b.as<VectorReduceNode>();
      return x->op == y->op && equal(x->value, y->value);
    }
    }
    return false;
  }

  bool equal(const Stmt &a, const Stmt &b) {
    if (a.same_as(b))
      return true;
    if (!a.defined() || !b.defined() || a.kind() != b.kind())
      return false;
    switch (a.kind()) {
    case StmtKind::For: {
      auto *x = a.as<ForNode>(), *y = b.as<ForNode>();
      if (x->forKind != y->forKind || x->loopVar.type() != y->loopVar.type() ||
          !equal(x->min, y->min) || !equal(x->extent, y->extent))
        return false;
      bound_[x->loopVar.get()] = y->loopVar.get();
      return equal(x->body, y->body);
    }
    case StmtKind::Store: {
      auto *x = a.as<StoreNode>(), *y = b.as<StoreNode>();
      return equalBuffer(x->buffer, y->buffer) && equal(x->value, y->value) &&
             equalAll(x->indices, y->indices) && equal(x->predicate, y->predicate);
    }
    case StmtKind::LetStmt: {
      auto *x = a.as<LetStmtNode>(), *y = b.as<LetStmtNode>();
      if (x->var.type() != y->var.type() || !equal(x->value, y->value))
        return false;
      bound_[x->var.get()] = y->var.get();
      return equal(x->body, y->body);
    }
    case StmtKind::IfThenElse: {
      auto *x = a.as<IfThenElseNode>(), *y = b.as<IfThenElseNode>();
      return equal(x->cond, y->cond) && equal(x->thenCase, y->thenCase) &&
             equal(x->elseCase, y->elseCase);
    }
    case StmtKind::Allocate: {
      auto *x = a.as<AllocateNode>(), *y = b.as<AllocateNode>();
      const BufferNode *bx = x->buffer.get(), *by = y->buffer.get();
      if (bx->dtype != by->dtype || bx->scope != by->scope || bx->alignment != by->alignment ||
          !equalAll(bx->shape, by->shape) || !equalAll(bx->strides, by->strides))
        return false;
      boundBuffers_[bx->data.get()] = by->data.get();
      return equal(x->body, y->body);
    }
    case StmtKind::Evaluate:
      return equal(a.as<EvaluateNode>()->value, b.as<EvaluateNode>()->value);
    case StmtKind::Seq: {
      auto *x = a.as<SeqNode>(), *y = b.as<SeqNode>();
      if (x->stmts.size() != y->stmts.size())
        return false;
      for (size_t i = 0; i < x->stmts.size(); ++i)
        if (!equal(x->stmts[i], y->stmts[i]))
          return false;
      return true;
    }
    }
    return false;
  }

private:
  bool equalAll(const std::vector<Expr> &a, const std::vector<Expr> &b) {
    if (a.size() != b.size())
      return false;
    for (size_t i = 0; i < a.size(); ++i)
      if (!equal(a[i], b[i]))
        return false;
    return true;
  }

  /// Buffers are the same memory when they share the data variable (a flattened view shares
  /// it with the original) or are matched allocations; their shapes must agree too.
  bool equalBuffer(const Buffer &a, const Buffer &b) {
    if (a.same_as(b))
      return true;
    const VarNode *da = a->data.get(), *db = b->data.get();
    auto it = boundBuffers_.find(da);
    bool sameMemory = da == db || (it != boundBuffers_.end() && it->second == db);
    return sameMemory && a->dtype == b->dtype && equalAll(a->shape, b->shape) &&
           equalAll(a->strides, b->strides);
  }

  std::unordered_map<const ExprNode *, const ExprNode *> bound_;
  std::unordered_map<const VarNode *, const VarNode *> boundBuffers_;
};

size_t combine(size_t seed, size_t v) { return seed ^ (v + 0x9e3779b97f4a7c15ULL + (seed << 6) + (seed >> 2)); }

} // namespace

bool exprEqual(const Expr &a, const Expr &b) { return Comparer().equal(a, b); }
bool stmtEqual(const Stmt &a, const Stmt &b) { return Comparer().equal(a, b); }

size_t exprHash(const Expr &e) {
  if (!e.defined())
    return 0;
  size_t h = combine(size_t(e.kind()), std::hash<std::string>()(e.type().toString()));
  auto all = [&](const std::vector<Expr> &v) {
    for (auto &x : v)
      h = combine(h, exprHash(x));
  };
  switch (e.kind()) {
  case ExprKind::IntImm: return combine(h, std::hash<int64_t>()(e.as<IntImmNode>()->value));
  case ExprKind::FloatImm: return combine(h, std::hash<double>()(e.as<FloatImmNode>()->value));
  case ExprKind::Var: return combine(h, std::hash<const void *>()(e.get()));
#define BIN(K)                                                                                     \
  case ExprKind::K:                                                                                \
    return combine(combine(h, exprHash(e.as<K##Node>()->a)), exprHash(e.as<K##Node>()->b));
    BIN(Add) BIN(Sub) BIN(Mul) BIN(Div) BIN(Mod) BIN(Min) BIN(Max) BIN(EQ) BIN(NE) BIN(LT) BIN(LE)
    BIN(GT) BIN(GE) BIN(And) BIN(Or)
#undef BIN
  case ExprKind::Not: return combine(h, exprHash(e.as<NotNode>()->a));
  case ExprKind::Select: {
    auto *x = e.as<SelectNode>();
    all({x->cond, x->trueValue, x->falseValue});
    return h;
  }
  case ExprKind::Cast: return combine(h, exprHash(e.as<CastNode>()->value));
  case ExprKind::Call:
    h = combine(h, std::hash<std::string>()(e.as<CallNode>()->name));
    all(e.as<CallNode>()->args);
    return h;
  case ExprKind::Load:
    h = combine(h, std::hash<const void *>()(e.as<LoadNode>()->buffer->data.get()));
    all(e.as<LoadNode>()->indices);
    return combine(h, exprHash(e.as<LoadNode>()->predicate));
  case ExprKind::Ramp:
    return combine(combine(h, exprHash(e.as<RampNode>()->base)), exprHash(e.as<RampNode>()->stride));
  case ExprKind::Broadcast: return combine(h, exprHash(e.as<BroadcastNode>()->value));
  case ExprKind::Let:
    return combine(combine(h, exprHash(e.as<LetNode>()->value)), exprHash(e.as<LetNode>()->body));
  case ExprKind::Shuffle:
    for (int i : e.as<ShuffleNode>()->indices)
      h = combine(h, size_t(i));
    all(e.as<ShuffleNode>()->vectors);
    return h;
  case ExprKind::VectorReduce:
    return combine(combine(h, size_t(e.as<VectorReduceNode>()->op)),
                   exprHash(e.as<VectorReduceNode>()->value));
  }
  return h;
}

} // namespace tessel::loop
