//===- Verifier.cpp - structural checks of a graph ------------------------===//
#include "tessel/Graph/IR.h"

#include <unordered_set>

namespace tessel {

namespace {
void verify(const Graph &g, std::unordered_set<const Value *> visible) {
  std::string where = "graph '" + g.name + "'";
  for (Value *v : g.inputs) {
    TESSEL_CHECK(v && v->graph() == &g, where, ": graph input is not a value of this graph");
    visible.insert(v);
  }
  for (Value *v : g.initializers) {
    TESSEL_CHECK(v->isConstant(), where, ": initializer '", v->name(), "' has no data");
    visible.insert(v);
  }
  for (auto &vp : g.values())
    if (vp->outer) {
      TESSEL_CHECK(visible.count(vp->outer), where, ": capture '", vp->name(),
                   "' names a value not visible in the enclosing scope");
      visible.insert(vp.get());
    } else if (vp->isConstant() && !vp->producer()) {
      visible.insert(vp.get());
    }
  for (auto &np : g.nodes()) {
    const Node &n = *np;
    TESSEL_CHECK(n.graph() == &g, n.describe(), ": node belongs to another graph");
    for (size_t i = 0; i < n.numInputs(); ++i) {
      Value *v = n.input(i);
      if (!v)
        continue;
      TESSEL_CHECK(visible.count(v), n.describe(), ": input ", i, " '", v->name(),
                   "' is used before it is defined (the graph is not in topological order or has a cycle)");
      bool found = false;
      for (auto &u : v->uses())
        found |= u.user == &n && u.operand == i;
      TESSEL_CHECK(found, n.describe(), ": use list of '", v->name(), "' is missing this node");
    }
    for (auto &[name, a] : n.attrs) {
      if (a.kind == Attribute::Kind::Graph && a.g)
        verify(*a.g, visible);
      for (auto &sg : a.graphs)
        verify(*sg, visible);
    }
    for (size_t i = 0; i < n.numOutputs(); ++i) {
      Value *v = n.output(i);
      if (!v)
        continue;
      TESSEL_CHECK(v->producer() == &n && v->producerOutput() == i, n.describe(), ": output '",
                   v->name(), "' does not point back at its producer");
      TESSEL_CHECK(!visible.count(v), n.describe(), ": output '", v->name(), "' is defined twice");
      visible.insert(v);
    }
  }
  for (Value *v : g.outputs)
    TESSEL_CHECK(v && visible.count(v), where, ": graph output '", v ? v->name() : "",
                 "' is never defined");
}
} // namespace

void verifyGraph(const Graph &g) { verify(g, {}); }

} // namespace tessel
