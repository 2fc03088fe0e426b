//===- FoldShapeComputations.cpp - fold exporter shape arithmetic ---------===//
//
// Exporters compute reshape targets at run time: Shape -> Gather -> Unsqueeze -> Concat ->
// Reshape, with Slice/Cast/Mul/Div/Equal/Where/ConstantOfShape/Expand in between. Once shape
// inference has made the shapes static, every such chain is a constant. This pass
//   - turns Shape(x) (with start/end) and Size(x) of a statically shaped x into constants, and
//     Gather(Shape(x), constant indices) into a constant when the gathered dims are static
//     (x's other dims may be symbolic);
//   - evaluates, through the op's reference kernel, any deterministic ai.onnx node whose inputs
//     are all small constants (<= kMaxElements elements, Constant nodes included) and whose
//     outputs are small tensors;
//   - re-runs shape inference and repeats, since a folded Reshape target makes more shapes
//     static (and so more Shape nodes foldable).
// A folded value keeps its name: its node is erased and the value becomes an initializer.
// Nodes whose results are graph outputs are left alone. Counts "nodes-folded" (and
// "shape-nodes-folded" for Shape/Size).
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Transforms.h"

#include "tessel/Graph/PassUtils.h"

#include <algorithm>
#include <limits>
#include <optional>
#include <set>
#include <string>

namespace tessel {

using namespace passutils;

namespace {

/// Largest constant (elements) this pass reads or materializes: shape arithmetic is tiny, and
/// bigger data is fold-constants' business.
constexpr int64_t kMaxElements = 1024;

/// Ops never folded: random, stateful or with subgraphs (checked separately), and Dropout
/// (random in training mode).
bool neverFold(const std::string &op) {
  static const std::set<std::string> ops = {
      "RandomNormal", "RandomUniform", "RandomNormalLike", "RandomUniformLike", "Multinomial",
      "Bernoulli",    "Dropout",       "If",               "Loop",              "Scan",
  };
  return ops.count(op) != 0;
}

/// The dims [start, end) a Shape node returns (start/end from opset 15, clamped as the ONNX
/// spec and the Shape kernel do).
std::pair<int64_t, int64_t> shapeRange(const Node &n, int64_t rank) {
  AttrReader attrs(n);
  if (attrs.opset() < 15)
    return {0, rank};
  auto clampIdx = [&](int64_t v) { return std::clamp<int64_t>(v < 0 ? v + rank : v, 0, rank); };
  int64_t start = clampIdx(attrs.attrInt("start", 0));
  return {start, std::max(start, clampIdx(attrs.attrInt("end", rank)))};
}

/// Shape(x)[start:end] when those dims of x are static.
std::optional<Tensor> foldShape(const Node &n) {
  const Value *x = n.input(0);
  if (!x || !x->type.isTensor() || !x->type.shape.rankKnown)
    return std::nullopt;
  const Shape &s = x->type.shape;
  auto [start, end] = shapeRange(n, s.rank());
  std::vector<int64_t> dims;
  for (int64_t i = start; i < end; ++i) {
    if (!s.dims[i].isStatic())
      return std::nullopt;
    dims.push_back(s.dims[i].value);
  }
  return Tensor::fromVector<int64_t>({int64_t(dims.size())}, dims);
}

/// Size(x) when x's shape is static.
std::optional<Tensor> foldSize(const Node &n) {
  const Value *x = n.input(0);
  if (!x || !x->type.isTensor() || !x->type.shape.isStatic())
    return std::nullopt;
  int64_t numel = 1;
  for (int64_t d : x->type.shape.staticDims()) {
    if (d != 0 && numel > std::numeric_limits<int64_t>::max() / d)
      return std::nullopt;
    numel *= d;
  }
  return Tensor::scalar<int64_t>(numel);
}

/// Gather(Shape(x), indices, axis=0) when the gathered dims of x are static (others need not be).
std::optional<Tensor> foldGatherOfShape(const Graph &g, const Node &n) {
  const Value *sv = n.input(0);
  const Node *shapeNode = sv ? sv->producer() : nullptr;
  if (!shapeNode || shapeNode->opType != "Shape" || !shapeNode->domain.empty() || n.numInputs() != 2)
    return std::nullopt;
  const Tensor *idx = initializerOf(g, n.input(1));
  if (!idx || (idx->dtype() != DType::i64 && idx->dtype() != DType::i32) || idx->numel() > kMaxElements)
    return std::nullopt;
  if (AttrReader(n).attrInt("axis", 0) != 0)
    return std::nullopt;
  const Value *x = shapeNode->input(0);
  if (!x || !x->type.isTensor() || !x->type.shape.rankKnown)
    return std::nullopt;
  const Shape &s = x->type.shape;
  auto [start, end] = shapeRange(*shapeNode, s.rank());
  int64_t len = end - start;
  std::vector<int64_t> out;
  for (int64_t i : idx->toInt64Vector()) {
    if (i < 0)
      i += len;
    if (i < 0 || i >= len || !s.dims[start + i].isStatic())
      return std::nullopt; // out of range: leave it for the kernel to report at run time
    out.push_back(s.dims[start + i].value);
  }
  return Tensor::fromVector<int64_t>(idx->shape(), out);
}

/// Runs the node's reference kernel when all its inputs are small constants.
std::optional<std::vector<Tensor>> foldByKernel(const Graph &g, const Node &n) {
  if (!n.domain.empty() || neverFold(n.opType) || holdsSubgraph(n))
    return std::nullopt;
  std::vector<Object> objects(n.numInputs());
  std::vector<const Object *> ptrs(n.numInputs(), nullptr);
  for (size_t i = 0; i < n.numInputs(); ++i) {
    const Value *v = n.input(i);
    if (!v)
      continue;
    const Tensor *t = initializerOf(g, v);
    if (!t || t->numel() > kMaxElements)
      return std::nullopt;
    objects[i] = Object(*t);
    ptrs[i] = &objects[i];
  }
  if (n.opType == "Constant") { // its data is an attribute: check the size before copying it
    for (auto &[name, a] : n.attrs)
      if ((a.kind == Attribute::Kind::Tensor && a.t.numel() > kMaxElements) ||
          a.ints.size() > size_t(kMaxElements) || a.floats.size() > size_t(kMaxElements) ||
          a.strings.size() > size_t(kMaxElements))
        return std::nullopt;
  }
  // Outputs that inference (seeing the constant inputs) says are big are not materialized.
  std::vector<Type> types = inferNode(n);
  for (size_t i = 0; i < n.numOutputs() && i < types.size(); ++i) {
    const Type &t = types[i];
    if (!n.output(i))
      continue;
    if (!t.isTensor() || !t.shape.isStatic())
      return std::nullopt; // sequences, or a shape inference could not bound
    int64_t numel = 1;
    for (int64_t d : t.shape.staticDims()) {
      numel *= d;
      if (numel > kMaxElements)
        return std::nullopt;
    }
  }
  const OpDef *def = OpRegistry::get().lookup(n.domain, n.opType, n.graph()->opsetVersion(n.domain));
  if (!def || !def->kernel)
    return std::nullopt;
  KernelContext ctx(n, ptrs, [](const Graph &, const std::vector<Object> &) -> std::vector<Object> {
    fail("fold-shapes: a subgraph cannot be folded");
  });
  try {
    def->kernel(ctx);
  } catch (const std::exception &) {
    return std::nullopt; // bad data: the interpreter reports it at run time, as before
  }
  std::vector<Tensor> outs;
  for (size_t i = 0; i < n.numOutputs(); ++i) {
    if (!n.output(i)) {
      outs.emplace_back();
      continue;
    }
    Object &o = ctx.outputs()[i];
    if (!o.isTensor() || o.tensor.numel() > kMaxElements)
      return std::nullopt;
    outs.push_back(o.tensor);
  }
  return outs;
}

bool foldOnce(Graph &g, PassStats &stats, std::vector<Value *> &created) {
  bool changed = false;
  std::vector<Node *> nodes;
  for (auto &np : g.nodes())
    nodes.push_back(np.get());
  for (Node *n : nodes) {
    bool outputsOk = n->numOutputs() > 0;
    for (const Value *o : n->outputs())
      outputsOk &= !o || !isGraphOutput(g, o); // graph outputs keep their producer
    if (!outputsOk)
      continue;
    std::optional<std::vector<Tensor>> folded;
    bool isShape = false;
    try {
      if (n->domain.empty() && n->opType == "Shape" && n->numOutputs() == 1) {
        if (auto t = foldShape(*n))
          folded = std::vector<Tensor>{*t};
        isShape = true;
      } else if (n->domain.empty() && n->opType == "Size" && n->numOutputs() == 1) {
        if (auto t = foldSize(*n))
          folded = std::vector<Tensor>{*t};
        isShape = true;
      } else if (n->domain.empty() && n->opType == "Gather" && n->numOutputs() == 1) {
        if (auto t = foldGatherOfShape(g, *n))
          folded = std::vector<Tensor>{*t};
      }
      if (!folded && !isShape)
        folded = foldByKernel(g, *n);
    } catch (const std::exception &) {
      folded.reset(); // odd attributes: leave the node
    }
    if (!folded || folded->size() != n->numOutputs())
      continue;
    for (Value *o : n->outputs())
      if (o)
        created.push_back(o);
    replaceWithConstants(g, n, *folded);
    stats.add("nodes-folded");
    if (isShape)
      stats.add("shape-nodes-folded");
    changed = true;
  }
  return changed;
}

/// Folds g and its subgraphs. A subgraph's outer values are captures (not constants), so
/// folding there only reaches what the subgraph computes from its own constants.
bool foldGraph(Graph &g, Graph &root, PassStats &stats) {
  bool changed = false;
  for (auto &np : g.nodes())
    for (auto &[name, a] : np->attrs) {
      if (a.g)
        changed |= foldGraph(*a.g, root, stats);
      for (auto &sg : a.graphs)
        if (sg)
          changed |= foldGraph(*sg, root, stats);
    }
  std::vector<Value *> created;
  for (int round = 0; round < 32; ++round) {
    if (!foldOnce(g, stats, created))
      break;
    changed = true;
    // Folded shape inputs (Reshape targets, Slice bounds) make more types static.
    try {
      inferShapes(root);
    } catch (const std::exception &) {
      break; // the pass manager's own inference will report it
    }
  }
  // Intermediate results of a folded chain (Shape -> Gather -> ...) end up unused: drop them.
  // Initializers that were there before are dce's business.
  const std::set<const Value *> captured = capturedValues(g);
  for (Value *v : created)
    dropIfDead(g, captured, v);
  return changed;
}

} // namespace

bool foldShapeComputations(Graph &g, PassStats &stats) {
  // The types this pass reads must be current (it may run first, on a freshly parsed graph).
  try {
    inferShapes(g);
  } catch (const std::exception &) {
    return false;
  }
  return foldGraph(g, g, stats);
}

} // namespace tessel
