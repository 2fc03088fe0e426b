//===- Visitor.cpp - loop IR visitor, mutator, substitution ---------------===//

#include "tessel/Loop/Visitor.h"

namespace tessel::loop {

//===----------------------------------------------------------------------===//
// IRVisitor
//===----------------------------------------------------------------------===//

void IRVisitor::visit(const Expr &e) {
  if (!e.defined())
    return;
  switch (e.kind()) {
#define CASE(K)                                                                                    \
  case ExprKind::K:                                                                                \
    return visit(static_cast<const K##Node *>(e.get()));
    TESSEL_LOOP_EXPR_KINDS(CASE)
#undef CASE
  }
}

void IRVisitor::visit(const Stmt &s) {
  if (!s.defined())
    return;
  switch (s.kind()) {
#define CASE(K)                                                                                    \
  case StmtKind::K:                                                                                \
    return visit(static_cast<const K##Node *>(s.get()));
    TESSEL_LOOP_STMT_KINDS(CASE)
#undef CASE
  }
}

void IRVisitor::visit(const NotNode *op) { visit(op->a); }
void IRVisitor::visit(const SelectNode *op) {
  visit(op->cond);
  visit(op->trueValue);
  visit(op->falseValue);
}
void IRVisitor::visit(const CastNode *op) { visit(op->value); }
void IRVisitor::visit(const CallNode *op) {
  for (auto &a : op->args)
    visit(a);
}
void IRVisitor::visit(const LoadNode *op) {
  visitBuffer(op->buffer);
  for (auto &i : op->indices)
    visit(i);
  visit(op->predicate);
}
void IRVisitor::visit(const RampNode *op) {
  visit(op->base);
  visit(op->stride);
}
void IRVisitor::visit(const BroadcastNode *op) { visit(op->value); }
void IRVisitor::visit(const LetNode *op) {
  visit(op->value);
  visit(op->body);
}
void IRVisitor::visit(const ShuffleNode *op) {
  for (auto &v : op->vectors)
    visit(v);
}
void IRVisitor::visit(const VectorReduceNode *op) { visit(op->value); }

void IRVisitor::visit(const ForNode *op) {
  visit(op->min);
  visit(op->extent);
  visit(op->body);
}
void IRVisitor::visit(const StoreNode *op) {
  visitBuffer(op->buffer);
  visit(op->value);
  for (auto &i : op->indices)
    visit(i);
  visit(op->predicate);
}
void IRVisitor::visit(const LetStmtNode *op) {
  visit(op->value);
  visit(op->body);
}
void IRVisitor::visit(const IfThenElseNode *op) {
  visit(op->cond);
  visit(op->thenCase);
  visit(op->elseCase);
}
void IRVisitor::visit(const AllocateNode *op) {
  visitBuffer(op->buffer);
  visit(op->body);
}
void IRVisitor::visit(const EvaluateNode *op) { visit(op->value); }
void IRVisitor::visit(const SeqNode *op) {
  for (auto &s : op->stmts)
    visit(s);
}
void IRVisitor::visitBuffer(const Buffer &b) {
  for (auto &e : b->shape)
    visit(e);
  for (auto &e : b->strides)
    visit(e);
}

//===----------------------------------------------------------------------===//
// IRMutator
//===----------------------------------------------------------------------===//

Expr IRMutator::mutate(const Expr &e) {
  if (!e.defined())
    return e;
  switch (e.kind()) {
#define CASE(K)                                                                                    \
  case ExprKind::K:                                                                                \
    return mutate(e, static_cast<const K##Node *>(e.get()));
    TESSEL_LOOP_EXPR_KINDS(CASE)
#undef CASE
  }
  return e;
}

Stmt IRMutator::mutate(const Stmt &s) {
  if (!s.defined())
    return s;
  switch (s.kind()) {
#define CASE(K)                                                                                    \
  case StmtKind::K:                                                                                \
    return mutate(s, static_cast<const K##Node *>(s.get()));
    TESSEL_LOOP_STMT_KINDS(CASE)
#undef CASE
  }
  return s;
}

std::vector<Expr> IRMutator::mutateAll(const std::vector<Expr> &es, bool &changed) {
  std::vector<Expr> out;
  out.reserve(es.size());
  for (auto &e : es) {
    out.push_back(mutate(e));
    if (!out.back().same_as(e))
      changed = true;
  }
  return out;
}

Expr IRMutator::mutate(const Expr &e, const NotNode *op) {
  Expr a = mutate(op->a);
  if (a.same_as(op->a))
    return e;
  return NotNode::make(std::move(a));
}

Expr IRMutator::mutate(const Expr &e, const SelectNode *op) {
  Expr c = mutate(op->cond), a = mutate(op->trueValue), b = mutate(op->falseValue);
  if (c.same_as(op->cond) && a.same_as(op->trueValue) && b.same_as(op->falseValue))
    return e;
  return SelectNode::make(std::move(c), std::move(a), std::move(b));
}

Expr IRMutator::mutate(const Expr &e, const CastNode *op) {
  Expr v = mutate(op->value);
  if (v.same_as(op->value))
    return e;
  return CastNode::make(op->type, std::move(v));
}

Expr IRMutator::mutate(const Expr &e, const CallNode *op) {
  bool changed = false;
  auto args = mutateAll(op->args, changed);
  if (!changed)
    return e;
  return CallNode::make(op->name, std::move(args));
}

Expr IRMutator::mutate(const Expr &e, const LoadNode *op) {
  bool changed = false;
  Buffer b = mutateBuffer(op->buffer);
  auto ix = mutateAll(op->indices, changed);
  Expr p = mutate(op->predicate);
  if (!changed && b.same_as(op->buffer) && p.same_as(op->predicate))
    return e;
  return LoadNode::make(std::move(b), std::move(ix), std::move(p));
}

Expr IRMutator::mutate(const Expr &e, const RampNode *op) {
  Expr b = mutate(op->base), s = mutate(op->stride);
  if (b.same_as(op->base) && s.same_as(op->stride))
    return e;
  return RampNode::make(std::move(b), std::move(s), op->lanes);
}

Expr IRMutator::mutate(const Expr &e, const BroadcastNode *op) {
  Expr v = mutate(op->value);
  if (v.same_as(op->value))
    return e;
  return BroadcastNode::make(std::move(v), op->lanes);
}

Expr IRMutator::mutate(const Expr &e, const LetNode *op) {
  Expr v = mutate(op->value), b = mutate(op->body);
  if (v.same_as(op->value) && b.same_as(op->body))
    return e;
  return LetNode::make(op->var, std::move(v), std::move(b));
}

Expr IRMutator::mutate(const Expr &e, const ShuffleNode *op) {
  bool changed = false;
  auto vs = mutateAll(op->vectors, changed);
  if (!changed)
    return e;
  return ShuffleNode::make(std::move(vs), op->indices);
}

Expr IRMutator::mutate(const Expr &e, const VectorReduceNode *op) {
  Expr v = mutate(op->value);
  if (v.same_as(op->value))
    return e;
  return VectorReduceNode::make(op->op, std::move(v));
}

Stmt IRMutator::mutate(const Stmt &s, const ForNode *op) {
  Expr mn = mutate(op->min), ext = mutate(op->extent);
  Stmt body = mutate(op->body);
  if (mn.same_as(op->min) && ext.same_as(op->extent) && body.same_as(op->body))
    return s;
  return ForNode::make(op->loopVar, std::move(mn), std::move(ext), op->forKind, std::move(body));
}

Stmt IRMutator::mutate(const Stmt &s, const StoreNode *op) {
  bool changed = false;
  Buffer b = mutateBuffer(op->buffer);
  Expr v = mutate(op->value);
  auto ix = mutateAll(op->indices, changed);
  Expr p = mutate(op->predicate);
  if (!changed && b.same_as(op->buffer) && v.same_as(op->value) && p.same_as(op->predicate))
    return s;
  return StoreNode::make(std::move(b), std::move(v), std::move(ix), std::move(p));
}

Stmt IRMutator::mutate(const Stmt &s, const LetStmtNode *op) {
  Expr v = mutate(op->value);
  Stmt b = mutate(op->body);
  if (v.same_as(op->value) && b.same_as(op->body))
    return s;
  return LetStmtNode::make(op->var, std::move(v), std::move(b));
}

Stmt IRMutator::mutate(const Stmt &s, const IfThenElseNode *op) {
  Expr c = mutate(op->cond);
  Stmt t = mutate(op->thenCase), e = mutate(op->elseCase);
  if (c.same_as(op->cond) && t.same_as(op->thenCase) && e.same_as(op->elseCase))
    return s;
  return IfThenElseNode::make(std::move(c), std::move(t), std::move(e));
}

Stmt IRMutator::mutate(const Stmt &s, const AllocateNode *op) {
  Buffer b = mutateBuffer(op->buffer);
  Stmt body = mutate(op->body);
  if (b.same_as(op->buffer) && body.same_as(op->body))
    return s;
  return AllocateNode::make(std::move(b), std::move(body));
}

Stmt IRMutator::mutate(const Stmt &s, const EvaluateNode *op) {
  Expr v = mutate(op->value);
  if (v.same_as(op->value))
    return s;
  return EvaluateNode::make(std::move(v));
}

Stmt IRMutator::mutate(const Stmt &s, const SeqNode *op) {
  std::vector<Stmt> out;
  out.reserve(op->stmts.size());
  bool changed = false;
  for (auto &st : op->stmts) {
    out.push_back(mutate(st));
    if (!out.back().same_as(st))
      changed = true;
  }
  if (!changed)
    return s;
  return SeqNode::make(std::move(out));
}

Buffer IRMutator::mutateBuffer(const Buffer &b) {
  if (!b.defined() || (b->shape.empty() && b->strides.empty()))
    return b;
  auto it = bufferMemo_.find(b.get());
  if (it != bufferMemo_.end())
    return it->second;
  bool changed = false;
  auto shape = mutateAll(b->shape, changed);
  auto strides = mutateAll(b->strides, changed);
  Buffer out = changed ? b.withShape(std::move(shape), std::move(strides)) : b;
  bufferMemo_.emplace(b.get(), out);
  return out;
}

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//

namespace {

class PostOrder : public IRVisitor {
public:
  explicit PostOrder(const std::function<void(const Expr &)> &f) : f_(f) {}
  using IRVisitor::visit;
  void visit(const Expr &e) override {
    if (!e.defined())
      return;
    IRVisitor::visit(e);
    f_(e);
  }

private:
  const std::function<void(const Expr &)> &f_;
};

class Substituter : public IRMutator {
public:
  explicit Substituter(const VarMap &map) : map_(map) {}
  using IRMutator::mutate;

protected:
  Expr mutate(const Expr &e, const VarNode *) override {
    auto it = map_.find(e);
    if (it == map_.end())
      return e;
    TESSEL_CHECK(it->second.defined() && it->second.type() == e.type(), "loop IR: substitute %",
                 static_cast<const VarNode *>(e.get())->name, ": the variable is ",
                 e.type().toString(), " but the replacement is ",
                 it->second.defined() ? it->second.type().toString() : std::string("undefined"),
                 " (expected equal types)");
    return it->second;
  }

private:
  const VarMap &map_;
};

} // namespace

void postOrderVisit(const Expr &e, const std::function<void(const Expr &)> &f) {
  PostOrder v(f);
  v.visit(e);
}

void postOrderVisit(const Stmt &s, const std::function<void(const Expr &)> &f) {
  PostOrder v(f);
  v.visit(s);
}

bool usesVar(const Expr &e, const Var &var) {
  bool found = false;
  postOrderVisit(e, [&](const Expr &x) { found |= x.same_as(var); });
  return found;
}

bool usesVar(const Stmt &s, const Var &var) {
  bool found = false;
  postOrderVisit(s, [&](const Expr &x) { found |= x.same_as(var); });
  return found;
}

Expr substitute(const Expr &e, const VarMap &map) {
  if (map.empty())
    return e;
  Substituter s(map);
  return s.mutate(e);
}

Stmt substitute(const Stmt &st, const VarMap &map) {
  if (map.empty())
    return st;
  Substituter s(map);
  return s.mutate(st);
}

} // namespace tessel::loop
