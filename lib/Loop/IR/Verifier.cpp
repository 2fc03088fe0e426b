//===- Verifier.cpp - checks a LoweredFunc is well formed -----------------===//

#include "tessel/Loop/Pass.h"
#include "tessel/Loop/Visitor.h"

#include <unordered_set>

namespace tessel::loop {

namespace {

class Verifier : public IRVisitor {
public:
  explicit Verifier(const LoweredFunc &f) : f_(f) {}
  using IRVisitor::visit;

  void run() {
    for (auto &p : f_.params) {
      if (p.isBuffer()) {
        buffers_.insert(p.buffer->data.get());
      } else {
        TESSEL_CHECK(p.var.defined(), where(), "a parameter is neither a buffer nor a variable");
        vars_.insert(p.var.get());
      }
    }
    // Buffer shapes may name scalar params declared after them: check them now.
    for (auto &p : f_.params)
      if (p.isBuffer())
        visitBuffer(p.buffer);
    TESSEL_CHECK(f_.body.defined(), where(), "the body is undefined");
    visit(f_.body);
  }

protected:
  void visit(const VarNode *op) override {
    TESSEL_CHECK(vars_.count(op), where(), "variable %", op->name,
                 " is used but not defined (expected a parameter or an enclosing for/let)");
  }
  void visit(const LetNode *op) override {
    visit(op->value);
    bind(op->var);
    visit(op->body);
    vars_.erase(op->var.get());
  }
  void visit(const LoadNode *op) override {
    checkBuffer(op->buffer, op->indices.size(), "load");
    IRVisitor::visit(op);
  }
  void visit(const StoreNode *op) override {
    checkBuffer(op->buffer, op->indices.size(), "store");
    IRVisitor::visit(op);
  }
  void visit(const ForNode *op) override {
    visit(op->min);
    visit(op->extent);
    bind(op->loopVar);
    visit(op->body);
    vars_.erase(op->loopVar.get());
  }
  void visit(const LetStmtNode *op) override {
    visit(op->value);
    bind(op->var);
    visit(op->body);
    vars_.erase(op->var.get());
  }
  void visit(const AllocateNode *op) override {
    visitBuffer(op->buffer);
    const VarNode *d = op->buffer->data.get();
    TESSEL_CHECK(!buffers_.count(d), where(), "buffer '", op->buffer.name(),
                 "' is allocated twice (expected one allocation per buffer)");
    buffers_.insert(d);
    visit(op->body);
    buffers_.erase(d);
  }

private:
  std::string where() const { return concat("loop IR verifier: func @", f_.name, ": "); }
  void bind(const Var &v) {
    TESSEL_CHECK(!vars_.count(v.get()), where(), "variable %", v.name(),
                 " is bound twice (expected each for/let to bind a fresh variable)");
    vars_.insert(v.get());
  }
  void checkBuffer(const Buffer &b, size_t nIndices, const char *op) {
    TESSEL_CHECK(buffers_.count(b->data.get()), where(), op, " of buffer '", b.name(),
                 "' which is neither a parameter nor allocated here");
    TESSEL_CHECK(nIndices == b.rank(), where(), op, " of buffer '", b.name(), "' with ", nIndices,
                 " indices (expected ", b.rank(), ")");
  }

  const LoweredFunc &f_;
  std::unordered_set<const ExprNode *> vars_;
  std::unordered_set<const VarNode *> buffers_;
};

} // namespace

void verifyLoweredFunc(const LoweredFunc &f) { Verifier(f).run(); }

} // namespace tessel::loop
