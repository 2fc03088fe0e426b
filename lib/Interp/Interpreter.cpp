//===- Interpreter.cpp - the reference interpreter ------------------------===//
//
// Executes nodes in order with their reference kernels. Values live in a frame per graph
// invocation; a subgraph frame's captures read the enclosing frame. A value is dropped after its
// last use, so peak memory stays near what a static plan would need.
//
//===----------------------------------------------------------------------===//
#include "tessel/Interp/Interpreter.h"

#include <algorithm>
#include <unordered_map>

namespace tessel {

namespace {

struct Frame {
  const Frame *parent = nullptr;
  std::unordered_map<const Value *, Object> values;

  const Object *find(const Value *v) const {
    while (v->outer) {
      // A capture: the value lives in an enclosing frame.
      const Frame *f = parent;
      const Value *o = v->outer;
      while (f) {
        auto it = f->values.find(o);
        if (it != f->values.end())
          return &it->second;
        if (!o->outer)
          break;
        o = o->outer;
        f = f->parent;
      }
      return nullptr;
    }
    auto it = values.find(v);
    return it == values.end() ? nullptr : &it->second;
  }
};

/// Does a runtime tensor agree with a declared/inferred type? Returns "" or the reason.
std::string mismatch(const Tensor &t, const Type &ty, std::map<std::string, int64_t> *symbols) {
  if (ty.kind == Type::Kind::Unknown)
    return "";
  if (ty.kind == Type::Kind::Optional)
    return ty.elem ? mismatch(t, *ty.elem, symbols) : "";
  if (!ty.isTensor())
    return "expected " + ty.str() + ", got a tensor";
  if (ty.dtype != DType::undefined && ty.dtype != t.dtype())
    return "element type is " + std::string(dtypeName(t.dtype())) + ", expected " +
           std::string(dtypeName(ty.dtype));
  if (!ty.shape.rankKnown)
    return "";
  if (ty.shape.rank() != t.rank())
    return "shape is " + t.shapeString() + ", expected rank " + std::to_string(ty.shape.rank()) +
           " " + ty.shape.str();
  for (int64_t i = 0; i < t.rank(); ++i) {
    const Dim &d = ty.shape.dims[i];
    if (d.isStatic() && d.value != t.dim(i))
      return "shape is " + t.shapeString() + ", expected " + ty.shape.str();
    if (d.isSymbolic() && symbols) {
      auto [it, fresh] = symbols->emplace(d.symbol, t.dim(i));
      if (!fresh && it->second != t.dim(i))
        return "shape is " + t.shapeString() + ", but dimension '" + d.symbol + "' was already " +
               std::to_string(it->second) + " in another input";
    }
  }
  return "";
}

std::string mismatch(const Object &o, const Type &ty, std::map<std::string, int64_t> *symbols) {
  if (ty.kind == Type::Kind::Unknown)
    return "";
  if (o.isNone())
    return ty.kind == Type::Kind::Optional ? "" : "got an empty optional, expected " + ty.str();
  if (o.isSequence()) {
    const Type *t = &ty;
    if (t->kind == Type::Kind::Optional && t->elem)
      t = t->elem.get();
    if (t->kind != Type::Kind::Sequence)
      return "got a sequence, expected " + ty.str();
    if (t->elem && t->elem->isTensor())
      for (auto &e : o.sequence)
        if (t->elem->dtype != DType::undefined && e.dtype() != t->elem->dtype)
          return "sequence element is " + e.typeString() + ", expected " + t->elem->str();
    return "";
  }
  return mismatch(o.tensor, ty, symbols);
}

class Executor {
public:
  explicit Executor(const InterpOptions &opts) : opts_(opts) {}

  std::vector<Object> runGraph(const Graph &g, const std::vector<Object> &inputs,
                               const Frame *parent) {
    Frame frame;
    frame.parent = parent;
    for (Value *v : g.initializers)
      frame.values[v] = Object(v->constant);
    for (auto &v : g.values())
      if (v->isConstant() && !v->producer())
        frame.values.emplace(v.get(), Object(v->constant));
    TESSEL_CHECK(inputs.size() <= g.inputs.size(), "graph '", g.name, "' takes ", g.inputs.size(),
                 " inputs, got ", inputs.size());
    for (size_t i = 0; i < inputs.size(); ++i)
      frame.values[g.inputs[i]] = inputs[i];

    const Plan &plan = planFor(g);
    const auto &nodes = g.nodes();
    for (size_t ni = 0; ni < nodes.size(); ++ni) {
      const Node &n = *nodes[ni];
      std::vector<const Object *> ins(n.numInputs(), nullptr);
      for (size_t i = 0; i < n.numInputs(); ++i) {
        Value *v = n.input(i);
        if (!v)
          continue;
        ins[i] = frame.find(v);
        TESSEL_CHECK(ins[i], n.describe(), ": input '", v->name(), "' has no value at run time");
      }
      KernelContext ctx(n, std::move(ins), [this, &frame](const Graph &sg, const std::vector<Object> &in) {
        return runGraph(sg, in, &frame);
      });
      const OpDef *def = plan.defs[ni];
      TESSEL_CHECK(def && def->kernel, n.describe(), ": op has no reference kernel");
      def->kernel(ctx);
      for (size_t i = 0; i < n.numOutputs(); ++i) {
        Value *v = n.output(i);
        if (!v)
          continue;
        Object &o = ctx.outputs()[i];
        if (opts_.checkInferredTypes) {
          std::string why = mismatch(o, v->type, nullptr);
          TESSEL_CHECK(why.empty(), n.describe(), ": output ", i, " '", v->name(), "': ", why,
                       " (the op's kernel and its shape inference disagree)");
        }
        frame.values[v] = std::move(o);
      }
      for (const Value *dead : plan.dies[ni])
        frame.values.erase(dead);
    }
    std::vector<Object> outs;
    for (Value *v : g.outputs) {
      const Object *o = frame.find(v);
      TESSEL_CHECK(o, "graph '", g.name, "': output '", v->name(), "' was not computed");
      outs.push_back(*o);
    }
    return outs;
  }

private:
  struct Plan {
    std::vector<const OpDef *> defs;
    std::vector<std::vector<const Value *>> dies; // values dead after node i
  };

  const Plan &planFor(const Graph &g) {
    auto it = plans_.find(&g);
    if (it != plans_.end())
      return it->second;
    Plan p;
    const auto &nodes = g.nodes();
    p.defs.resize(nodes.size());
    p.dies.resize(nodes.size());
    std::unordered_map<const Value *, size_t> last;
    for (size_t ni = 0; ni < nodes.size(); ++ni) {
      const Node &n = *nodes[ni];
      p.defs[ni] = OpRegistry::get().lookup(n.domain, n.opType, g.opsetVersion(n.domain));
      TESSEL_CHECK(p.defs[ni], n.describe(), ": unsupported op '", n.opType, "' at opset ",
                   g.opsetVersion(n.domain));
      for (Value *v : n.inputs())
        if (v && !v->outer)
          last[v] = ni;
      std::vector<const Value *> caps;
      for (auto &[name, a] : n.attrs) {
        if (a.g)
          collectCaptures(*a.g, g, caps);
        for (auto &sg : a.graphs)
          collectCaptures(*sg, g, caps);
      }
      for (const Value *v : caps)
        last[v] = ni;
    }
    for (Value *v : g.outputs)
      last.erase(v);
    for (auto &[v, ni] : last)
      if (v->producer()) // inputs/initializers stay (they are cheap: shared storage)
        p.dies[ni].push_back(v);
    return plans_.emplace(&g, std::move(p)).first->second;
  }

  const InterpOptions &opts_;
  std::unordered_map<const Graph *, Plan> plans_;
};

} // namespace

std::vector<const Value *> requiredInputs(const Graph &g) {
  std::vector<const Value *> r;
  for (Value *v : g.inputs)
    if (!v->isConstant())
      r.push_back(v);
  return r;
}

Interpreter::Interpreter(const Graph &g, InterpOptions opts) : graph_(g), opts_(opts) {}

std::map<std::string, Object> Interpreter::run(const std::map<std::string, Object> &inputs) {
  std::map<std::string, int64_t> symbols;
  std::vector<Object> ordered;
  size_t used = 0;
  for (Value *v : graph_.inputs) {
    auto it = inputs.find(v->name());
    if (it == inputs.end()) {
      TESSEL_CHECK(v->isConstant(), "missing input '", v->name(), "' (", v->type.str(), ")");
      ordered.push_back(Object(v->constant));
      continue;
    }
    ++used;
    std::string why = mismatch(it->second, v->type, &symbols);
    TESSEL_CHECK(why.empty(), "input '", v->name(), "': ", why);
    ordered.push_back(it->second);
  }
  if (used != inputs.size()) {
    for (auto &[name, o] : inputs) {
      bool known = false;
      for (Value *v : graph_.inputs)
        known |= v->name() == name;
      if (!known) {
        std::string names;
        for (Value *v : graph_.inputs)
          if (!v->isConstant())
            names += (names.empty() ? "" : ", ") + v->name();
        fail("unknown input '", name, "'; the model's inputs are: ", names);
      }
    }
  }
  Executor ex(opts_);
  std::vector<Object> outs = ex.runGraph(graph_, ordered, nullptr);
  std::map<std::string, Object> result;
  for (size_t i = 0; i < outs.size(); ++i)
    result[graph_.outputs[i]->name()] = std::move(outs[i]);
  return result;
}

std::vector<Object> Interpreter::runOrdered(const std::vector<Object> &inputs) {
  std::map<std::string, Object> named;
  auto req = requiredInputs(graph_);
  TESSEL_CHECK(inputs.size() == req.size(), "the model takes ", req.size(), " inputs, got ",
               inputs.size());
  for (size_t i = 0; i < req.size(); ++i)
    named[req[i]->name()] = inputs[i];
  auto outs = run(named);
  std::vector<Object> r;
  for (Value *v : graph_.outputs)
    r.push_back(outs[v->name()]);
  return r;
}

} // namespace tessel
