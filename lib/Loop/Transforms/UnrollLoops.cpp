//===- UnrollLoops.cpp - replace Unrolled loops by copies of their body ---===//
//
// Halide's UnrollLoops: `unrolled for i in m..m+4 { S(i) }` becomes S(m); S(m+1); S(m+2);
// S(m+3). The extent must be a constant (split by a constant factor first).
//
//===----------------------------------------------------------------------===//

#include "tessel/Loop/Passes.h"
#include "tessel/Loop/Visitor.h"

using namespace tessel;
using namespace tessel::loop;

namespace {

class Unroller : public IRMutator {
public:
  using IRMutator::mutate;

protected:
  Stmt mutate(const Stmt &s, const ForNode *op) override {
    if (op->forKind != ForKind::Unrolled)
      return IRMutator::mutate(s, op);
    const int64_t *extent = asConstInt(op->extent);
    if (!extent)
      throw Error("unroll: loop '" + op->loopVar.name() +
                  "' has a non-constant extent; expected a constant extent (split the loop by "
                  "a constant factor before unrolling it)");
    Stmt body = mutate(op->body);
    if (*extent <= 0)
      return makeNoOp();
    std::vector<Stmt> copies;
    copies.reserve(size_t(*extent));
    for (int64_t k = 0; k < *extent; ++k) {
      Expr value = k == 0 ? op->min : add(op->min, makeConst(op->min.type(), k));
      copies.push_back(substitute(body, op->loopVar, value));
    }
    if (copies.size() == 1)
      return copies.front();
    return SeqNode::make(std::move(copies));
  }
};

} // namespace

Stmt tessel::loop::unrollLoops(const Stmt &s) { return Unroller().mutate(s); }
