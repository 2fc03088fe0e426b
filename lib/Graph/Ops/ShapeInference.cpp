//===- ShapeInference.cpp - type/shape inference over a graph -------------===//
//
// Runs each node's registered inference in topological order, subgraphs first (an If or Loop's
// result type depends on its bodies). An inferred type replaces the declared one (value_info)
// unless inference knows nothing.
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/OpRegistry.h"

namespace tessel {

namespace {
const OpDef &lookupOp(const Node &n) {
  int64_t version = n.graph() ? n.graph()->opsetVersion(n.domain) : 0;
  const OpRegistry &reg = OpRegistry::get();
  if (const OpDef *d = reg.lookup(n.domain, n.opType, version))
    return *d;
  if (const OpDef *any = reg.lookupAny(n.domain, n.opType))
    fail(n.describe(), ": opset ", version, " of domain '", n.domain.empty() ? "ai.onnx" : n.domain,
         "' is not supported for ", n.opType, " (supported: ", any->sinceVersion, "..",
         any->untilVersion, ")");
  fail(n.describe(), ": unsupported op '", n.opType, "'",
       n.domain.empty() ? std::string() : " in domain '" + n.domain + "'",
       " (see docs/ops.md for the supported ops)");
}

/// Keeps what the declared type knows where inference knows less.
Type merge(const Type &inferred, const Type &declared) {
  if (inferred.kind == Type::Kind::Unknown)
    return declared;
  if (!inferred.isTensor() || !declared.isTensor())
    return inferred;
  Type t = inferred;
  if (t.dtype == DType::undefined)
    t.dtype = declared.dtype;
  if (!t.shape.rankKnown && declared.shape.rankKnown)
    t.shape = declared.shape;
  else if (t.shape.rankKnown && declared.shape.rankKnown && t.shape.rank() == declared.shape.rank())
    for (size_t i = 0; i < t.shape.dims.size(); ++i)
      if (t.shape.dims[i].isUnknown())
        t.shape.dims[i] = declared.shape.dims[i];
  return t;
}
} // namespace

std::vector<Type> inferNode(const Node &n) {
  const OpDef &def = lookupOp(n);
  size_t nin = n.numInputs(), nout = n.numOutputs();
  TESSEL_CHECK(int(nin) >= def.minInputs && int(nin) <= def.maxInputs, n.describe(), ": has ", nin,
               " inputs, expected ", def.minInputs,
               def.maxInputs == def.minInputs ? std::string()
                                              : ".." + (def.maxInputs >= (1 << 20) ? std::string("n")
                                                                 : std::to_string(def.maxInputs)));
  TESSEL_CHECK(int(nout) >= def.minOutputs && int(nout) <= def.maxOutputs, n.describe(), ": has ",
               nout, " outputs, expected ", def.minOutputs,
               def.maxOutputs == def.minOutputs ? std::string()
                                                : ".." + (def.maxOutputs >= (1 << 20) ? std::string("n")
                                                                   : std::to_string(def.maxOutputs)));
  InferContext ctx(n);
  if (def.infer)
    def.infer(ctx);
  return ctx.outputTypes();
}

void inferShapes(Graph &g) {
  for (auto &np : g.nodes()) {
    Node &n = *np;
    for (auto &[name, a] : n.attrs) {
      if (a.kind == Attribute::Kind::Graph && a.g)
        inferShapes(*a.g);
      for (auto &sg : a.graphs)
        inferShapes(*sg);
    }
    std::vector<Type> types = inferNode(n);
    for (size_t i = 0; i < n.numOutputs(); ++i)
      if (Value *v = n.output(i))
        v->type = merge(types[i], v->type);
  }
}

} // namespace tessel
