//===- RemoveNoOp.cpp - drop statements that do nothing -------------------===//
//
// Halide's RemoveNoOp / TVM's RemoveNoOp: run after unrolling, partitioning and
// simplification, which leave empty loops, empty branches and sequences of one statement.
//
//===----------------------------------------------------------------------===//

#include "tessel/Loop/Passes.h"
#include "tessel/Loop/Visitor.h"

using namespace tessel;
using namespace tessel::loop;

namespace {

class NoOpRemover : public IRMutator {
public:
  using IRMutator::mutate;

protected:
  Stmt mutate(const Stmt &s, const ForNode *op) override {
    if (isConstInt(op->extent, 0))
      return makeNoOp();
    Stmt r = IRMutator::mutate(s, op);
    if (const auto *f = r.as<ForNode>(); f && isNoOp(f->body))
      return makeNoOp();
    return r;
  }
  Stmt mutate(const Stmt &s, const EvaluateNode *op) override {
    if (isNoOp(s))
      return s;
    ExprKind k = op->value.kind();
    if (k == ExprKind::IntImm || k == ExprKind::FloatImm || k == ExprKind::Var)
      return makeNoOp();
    return s;
  }
  Stmt mutate(const Stmt &s, const IfThenElseNode *op) override {
    Stmt r = IRMutator::mutate(s, op);
    const auto *i = r.as<IfThenElseNode>();
    if (!i)
      return r;
    bool elseEmpty = !i->elseCase.defined() || isNoOp(i->elseCase);
    if (isNoOp(i->thenCase) && elseEmpty)
      return makeNoOp();
    if (i->elseCase.defined() && isNoOp(i->elseCase))
      return IfThenElseNode::make(i->cond, i->thenCase);
    // if c {} else { S } -> if !c { S }
    if (isNoOp(i->thenCase))
      return IfThenElseNode::make(NotNode::make(i->cond), i->elseCase);
    return r;
  }
  Stmt mutate(const Stmt &s, const LetStmtNode *op) override {
    Stmt r = IRMutator::mutate(s, op);
    if (const auto *l = r.as<LetStmtNode>(); l && isNoOp(l->body))
      return makeNoOp();
    return r;
  }
  Stmt mutate(const Stmt &s, const AllocateNode *op) override {
    Stmt r = IRMutator::mutate(s, op);
    if (const auto *a = r.as<AllocateNode>(); a && isNoOp(a->body))
      return makeNoOp();
    return r;
  }
  Stmt mutate(const Stmt &s, const SeqNode *op) override {
    std::vector<Stmt> kept;
    bool changed = false;
    for (const Stmt &c : op->stmts) {
      Stmt m = mutate(c);
      changed |= !m.same_as(c);
      if (isNoOp(m)) {
        changed = true;
        continue;
      }
      kept.push_back(std::move(m));
    }
    if (kept.empty())
      return makeNoOp();
    if (kept.size() == 1)
      return kept.front();
    if (!changed)
      return s;
    return SeqNode::make(std::move(kept));
  }
};

} // namespace

Stmt tessel::loop::removeNoOp(const Stmt &s) { return NoOpRemover().mutate(s); }
