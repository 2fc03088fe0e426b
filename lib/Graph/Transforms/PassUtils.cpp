//===- PassUtils.cpp - small helpers shared by the graph passes -----------===//
#include "tessel/Graph/PassUtils.h"

#include "tessel/Graph/OpRegistry.h"

#include <algorithm>

namespace tessel::passutils {

bool isGraphInput(const Graph &g, const Value *v) {
  return std::find(g.inputs.begin(), g.inputs.end(), v) != g.inputs.end();
}

bool isGraphOutput(const Graph &g, const Value *v) {
  return std::find(g.outputs.begin(), g.outputs.end(), v) != g.outputs.end();
}

const Tensor *constantOf(const Graph &g, const Value *v) {
  if (!v || v->outer)
    return nullptr;
  if (!v->producer())
    return initializerOf(g, v);
  const Node *p = v->producer();
  if (p->opType != "Constant" || !p->domain.empty() || p->numOutputs() != 1)
    return nullptr;
  const Attribute *a = p->attr("value");
  if (!a || a->kind != Attribute::Kind::Tensor || !a->t.defined())
    return nullptr;
  return &a->t;
}

const Tensor *initializerOf(const Graph &g, const Value *v) {
  if (!v || !v->isConstant() || v->producer() || v->outer || isGraphInput(g, v))
    return nullptr;
  return &v->constant;
}

ConstValueSet capturedValues(const Graph &g) {
  std::vector<const Value *> found;
  for (auto &n : g.nodes())
    collectNodeCaptures(*n, g, found);
  return ConstValueSet(found.begin(), found.end());
}

void redirectCaptures(const Graph &g, const Value *from, Value *to) {
  for (auto &n : g.nodes())
    for (auto &[name, a] : n->attrs) {
      auto visit = [&](Graph &sg) {
        for (auto &v : sg.values())
          if (v->outer == from)
            v->outer = to;
        redirectCaptures(sg, from, to);
      };
      if (a.g)
        visit(*a.g);
      for (auto &sg : a.graphs)
        if (sg)
          visit(*sg);
    }
}

bool hasSingleUse(const Graph &g, const ConstValueSet &captured, const Value *v) {
  return v && v->uses().size() == 1 && !isGraphOutput(g, v) && !captured.count(v);
}

bool onlyUsedBy(const Graph &g, const ConstValueSet &captured, const Value *v, const Node *user,
                size_t operand) {
  return hasSingleUse(g, captured, v) && v->uses()[0].user == user &&
         v->uses()[0].operand == operand;
}

namespace {
const Attribute *attrOfKind(const Node &n, const std::string &name, Attribute::Kind kind,
                            bool &present) {
  const Attribute *a = n.attr(name);
  present = a != nullptr;
  return a && a->kind == kind ? a : nullptr;
}
} // namespace

std::optional<int64_t> intAttr(const Node &n, const std::string &name, int64_t dflt) {
  bool present;
  const Attribute *a = attrOfKind(n, name, Attribute::Kind::Int, present);
  if (!present)
    return dflt;
  return a ? std::optional<int64_t>(a->i) : std::nullopt;
}

std::optional<float> floatAttr(const Node &n, const std::string &name, float dflt) {
  bool present;
  const Attribute *a = attrOfKind(n, name, Attribute::Kind::Float, present);
  if (!present)
    return dflt;
  return a ? std::optional<float>(a->f) : std::nullopt;
}

std::optional<std::string> stringAttr(const Node &n, const std::string &name, std::string dflt) {
  bool present;
  const Attribute *a = attrOfKind(n, name, Attribute::Kind::String, present);
  if (!present)
    return dflt;
  return a ? std::optional<std::string>(a->s) : std::nullopt;
}

std::optional<std::vector<int64_t>> intsAttr(const Node &n, const std::string &name,
                                             std::vector<int64_t> dflt) {
  bool present;
  const Attribute *a = attrOfKind(n, name, Attribute::Kind::Ints, present);
  if (!present)
    return dflt;
  return a ? std::optional<std::vector<int64_t>>(a->ints) : std::nullopt;
}

bool isFloatType(DType dt) {
  return dt == DType::f32 || dt == DType::f64 || dt == DType::f16 || dt == DType::bf16;
}

bool isIdentityPerm(const std::vector<int64_t> &p) {
  for (size_t i = 0; i < p.size(); ++i)
    if (p[i] != int64_t(i))
      return false;
  return true;
}

bool holdsSubgraph(const Node &n) {
  for (auto &[name, a] : n.attrs)
    if (a.g || !a.graphs.empty() || a.kind == Attribute::Kind::Graph ||
        a.kind == Attribute::Kind::Graphs)
      return true;
  return false;
}

bool isRandomOp(const Node &n) {
  return (n.domain.empty() || n.domain == "ai.onnx") &&
         (n.opType.starts_with("Random") || n.opType == "Bernoulli" || n.opType == "Multinomial");
}

void setInferredTypes(Node &n) {
  std::vector<Type> ts = inferNode(n);
  for (size_t i = 0; i < n.numOutputs() && i < ts.size(); ++i)
    if (n.output(i))
      n.output(i)->type = ts[i];
}

Node *appendInferred(Graph &g, const std::string &op, std::vector<Value *> inputs,
                     const std::string &base, std::map<std::string, Attribute> attrs) {
  std::string name = g.uniqueName(base);
  Node *n = g.appendNode(op, std::move(inputs), {name}, name);
  n->attrs = std::move(attrs);
  setInferredTypes(*n);
  return n;
}

Value *addConstant(Graph &g, const std::string &base, const Tensor &t) {
  Value *v = g.createValue(g.uniqueName(base), Type::tensor(t.dtype(), Shape::of(t.shape())));
  v->constant = t;
  g.initializers.push_back(v);
  return v;
}

void dropIfDead(Graph &g, const ConstValueSet &captured, Value *v) {
  if (!v || v->producer() || !v->uses().empty() || isGraphInput(g, v) || isGraphOutput(g, v) ||
      captured.count(v))
    return;
  auto it = std::find(g.initializers.begin(), g.initializers.end(), v);
  if (it == g.initializers.end())
    return;
  g.initializers.erase(it);
  v->constant = Tensor(); // an unreferenced value without data is not printed
}

void replaceWithConstants(Graph &g, Node *n, const std::vector<Tensor> &data) {
  std::vector<Value *> outs = n->outputs(), temps(outs.size(), nullptr);
  for (size_t i = 0; i < outs.size(); ++i) {
    if (!outs[i])
      continue;
    // Park the uses on a stand-in so the node can be erased, then move them back.
    temps[i] = g.createValue(g.uniqueName(outs[i]->name() + ".folding"), outs[i]->type);
    outs[i]->replaceAllUsesWith(temps[i]);
  }
  g.eraseNode(n);
  for (size_t i = 0; i < outs.size(); ++i) {
    if (!outs[i])
      continue;
    outs[i]->constant = data[i];
    outs[i]->type = Type::tensor(data[i].dtype(), Shape::of(data[i].shape()));
    g.initializers.push_back(outs[i]);
    temps[i]->replaceAllUsesWith(outs[i]);
  }
}

} // namespace tessel::passutils
