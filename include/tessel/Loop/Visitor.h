//===- Visitor.h - loop IR visitors and mutators ----------------*- C++ -*-===//
//
// IRVisitor walks an Expr/Stmt tree, recursing into every child by default; override the
// visit(const XNode *) of the nodes you care about and call the base to keep recursing.
//
// IRMutator rebuilds a tree bottom-up; each mutate(const XNode *) returns the SAME node when
// none of its children changed (DESIGN.md: "mutators return the same node when nothing
// changed"), so `result.same_as(input)` tells a pass that it did nothing. Buffers are visited
// through visitBuffer/mutateBuffer (shape and strides expressions); by default the mutator
// keeps the buffer node when its expressions are unchanged and remembers rewritten buffers so
// that every Load/Store/Allocate of one buffer sees the same new node.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Loop/IR.h"

#include <functional>
#include <unordered_map>

namespace tessel::loop {

class IRVisitor {
public:
  virtual ~IRVisitor() = default;
  /// Dispatches on the node kind; undefined handles are ignored.
  virtual void visit(const Expr &e);
  virtual void visit(const Stmt &s);

protected:
  virtual void visit(const IntImmNode *) {}
  virtual void visit(const FloatImmNode *) {}
  virtual void visit(const VarNode *) {}
  virtual void visit(const AddNode *op) { visitBinary(op); }
  virtual void visit(const SubNode *op) { visitBinary(op); }
  virtual void visit(const MulNode *op) { visitBinary(op); }
  virtual void visit(const DivNode *op) { visitBinary(op); }
  virtual void visit(const ModNode *op) { visitBinary(op); }
  virtual void visit(const MinNode *op) { visitBinary(op); }
  virtual void visit(const MaxNode *op) { visitBinary(op); }
  virtual void visit(const EQNode *op) { visitBinary(op); }
  virtual void visit(const NENode *op) { visitBinary(op); }
  virtual void visit(const LTNode *op) { visitBinary(op); }
  virtual void visit(const LENode *op) { visitBinary(op); }
  virtual void visit(const GTNode *op) { visitBinary(op); }
  virtual void visit(const GENode *op) { visitBinary(op); }
  virtual void visit(const AndNode *op) { visitBinary(op); }
  virtual void visit(const OrNode *op) { visitBinary(op); }
  virtual void visit(const NotNode *op);
  virtual void visit(const SelectNode *op);
  virtual void visit(const CastNode *op);
  virtual void visit(const CallNode *op);
  virtual void visit(const LoadNode *op);
  virtual void visit(const RampNode *op);
  virtual void visit(const BroadcastNode *op);
  virtual void visit(const LetNode *op);
  virtual void visit(const ShuffleNode *op);
  virtual void visit(const VectorReduceNode *op);

  virtual void visit(const ForNode *op);
  virtual void visit(const StoreNode *op);
  virtual void visit(const LetStmtNode *op);
  virtual void visit(const IfThenElseNode *op);
  virtual void visit(const AllocateNode *op);
  virtual void visit(const EvaluateNode *op);
  virtual void visit(const SeqNode *op);

  /// Visits a buffer's shape and strides (called for Load, Store and Allocate).
  virtual void visitBuffer(const Buffer &b);

  template <ExprKind K> void visitBinary(const BinaryNode<K> *op) {
    visit(op->a);
    visit(op->b);
  }
};

class IRMutator {
public:
  virtual ~IRMutator() = default;
  /// Dispatches on the node kind; undefined handles are returned as they are.
  virtual Expr mutate(const Expr &e);
  virtual Stmt mutate(const Stmt &s);

protected:
  // Each takes the handle (to return it unchanged) and the node.
  virtual Expr mutate(const Expr &e, const IntImmNode *) { return e; }
  virtual Expr mutate(const Expr &e, const FloatImmNode *) { return e; }
  virtual Expr mutate(const Expr &e, const VarNode *) { return e; }
  virtual Expr mutate(const Expr &e, const AddNode *op) { return mutateBinary(e, op); }
  virtual Expr mutate(const Expr &e, const SubNode *op) { return mutateBinary(e, op); }
  virtual Expr mutate(const Expr &e, const MulNode *op) { return mutateBinary(e, op); }
  virtual Expr mutate(const Expr &e, const DivNode *op) { return mutateBinary(e, op); }
  virtual Expr mutate(const Expr &e, const ModNode *op) { return mutateBinary(e, op); }
  virtual Expr mutate(const Expr &e, const MinNode *op) { return mutateBinary(e, op); }
  virtual Expr mutate(const Expr &e, const MaxNode *op) { return mutateBinary(e, op); }
  virtual Expr mutate(const Expr &e, const EQNode *op) { return mutateBinary(e, op); }
  virtual Expr mutate(const Expr &e, const NENode *op) { return mutateBinary(e, op); }
  virtual Expr mutate(const Expr &e, const LTNode *op) { return mutateBinary(e, op); }
  virtual Expr mutate(const Expr &e, const LENode *op) { return mutateBinary(e, op); }
  virtual Expr mutate(const Expr &e, const GTNode *op) { return mutateBinary(e, op); }
  virtual Expr mutate(const Expr &e, const GENode *op) { return mutateBinary(e, op); }
  virtual Expr mutate(const Expr &e, const AndNode *op) { return mutateBinary(e, op); }
  virtual Expr mutate(const Expr &e, const OrNode *op) { return mutateBinary(e, op); }
  virtual Expr mutate(const Expr &e, const NotNode *op);
  virtual Expr mutate(const Expr &e, const SelectNode *op);
  virtual Expr mutate(const Expr &e, const CastNode *op);
  virtual Expr mutate(const Expr &e, const CallNode *op);
  virtual Expr mutate(const Expr &e, const LoadNode *op);
  virtual Expr mutate(const Expr &e, const RampNode *op);
  virtual Expr mutate(const Expr &e, const BroadcastNode *op);
  virtual Expr mutate(const Expr &e, const LetNode *op);
  virtual Expr mutate(const Expr &e, const ShuffleNode *op);
  virtual Expr mutate(const Expr &e, const VectorReduceNode *op);

  virtual Stmt mutate(const Stmt &s, const ForNode *op);
  virtual Stmt mutate(const Stmt &s, const StoreNode *op);
  virtual Stmt mutate(const Stmt &s, const LetStmtNode *op);
  virtual Stmt mutate(const Stmt &s, const IfThenElseNode *op);
  virtual Stmt mutate(const Stmt &s, const AllocateNode *op);
  virtual Stmt mutate(const Stmt &s, const EvaluateNode *op);
  virtual Stmt mutate(const Stmt &s, const SeqNode *op);

  /// Mutates a buffer's shape and strides; returns the same buffer when unchanged. Results are
  /// memoized per buffer node.
  virtual Buffer mutateBuffer(const Buffer &b);

  /// Mutates each element; `changed` is set when any element changed.
  std::vector<Expr> mutateAll(const std::vector<Expr> &es, bool &changed);

  template <ExprKind K> Expr mutateBinary(const Expr &e, const BinaryNode<K> *op) {
    Expr a = mutate(op->a), b = mutate(op->b);
    if (a.same_as(op->a) && b.same_as(op->b))
      return e;
    return BinaryNode<K>::make(std::move(a), std::move(b));
  }

  std::unordered_map<const BufferNode *, Buffer> bufferMemo_;
};

/// Calls f on every expression node of e (children before parents) / of s's expressions.
void postOrderVisit(const Expr &e, const std::function<void(const Expr &)> &f);
void postOrderVisit(const Stmt &s, const std::function<void(const Expr &)> &f);
/// True when `v` occurs in e / s.
bool usesVar(const Expr &e, const Var &v);
bool usesVar(const Stmt &s, const Var &v);

} // namespace tessel::loop
