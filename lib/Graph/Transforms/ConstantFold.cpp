//===- ConstantFold.cpp - evaluate nodes whose inputs are all constant ----===//
//
// fold-constants: in topological order, a node whose present inputs are all constants is run
// with its op's reference kernel (the one implementation of its semantics, via the OpRegistry)
// and its outputs become initializers that keep their names. Constant nodes thus become
// initializers. Shape and Size fold when their input's shape is static (they do not need its
// data); the rest of shape-computation chains is fold-shapes' job.
//
// Not folded: random ops; nodes holding subgraphs; ops without a kernel at the model's opset;
// nodes whose outputs are not static tensors of at most kMaxFoldElements elements and
// kMaxFoldBytes bytes (huge constants stay computed at run time: "skipped-too-large"); and
// graph inputs with defaults count as not constant (a caller may override them). A kernel
// that throws leaves the node as it is: it fails at run time, where it always would have.
// Subgraph bodies are folded too (their own constants, and captured outer constants).
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Transforms.h"

#include "tessel/Graph/PassUtils.h"

#include <algorithm>
#include <optional>

namespace tessel {

using namespace passutils;

namespace {

/// The size cap on one folded output.
constexpr int64_t kMaxFoldElements = int64_t(1) << 20;
constexpr int64_t kMaxFoldBytes = int64_t(16) << 20;

/// The constant data of `v` (following captures to the outer value), or nullptr when `v` is
/// not a compile-time constant.
const Tensor *constantOf(const Value *v) {
  while (v && v->outer)
    v = v->outer;
  if (!v || !v->isConstant() || v->producer() || (v->graph() && isGraphInput(*v->graph(), v)))
    return nullptr;
  return &v->constant;
}

/// Whether an output of this type is a static tensor within the size cap.
bool withinCap(const Type &t) {
  if (!t.isTensor() || t.dtype == DType::undefined || !t.shape.isStatic())
    return false;
  int64_t n = 1;
  for (int64_t d : t.shape.staticDims()) {
    if (d != 0 && n > kMaxFoldElements / d)
      return false;
    n *= d;
  }
  size_t elem = t.dtype == DType::string ? 16 : dtypeSize(t.dtype);
  return n <= kMaxFoldElements && n * int64_t(elem) <= kMaxFoldBytes;
}

bool matchesType(const Tensor &t, const Type &ty) {
  return ty.isTensor() && t.dtype() == ty.dtype && ty.shape.isStatic() &&
         t.shape() == ty.shape.staticDims();
}

/// Shape / Size of an input with a static shape (they read no data). Shape's start/end
/// (opset 15) clamp as the spec says.
std::optional<Tensor> foldShapeOf(const Node &n) {
  const Value *x = n.input(0);
  if (!x || !x->type.isTensor() || !x->type.shape.isStatic() || n.numOutputs() != 1)
    return std::nullopt;
  std::vector<int64_t> dims = x->type.shape.staticDims();
  if (n.opType == "Size") {
    int64_t numel = 1;
    for (int64_t d : dims) {
      if (d != 0 && numel > INT64_MAX / d)
        return std::nullopt;
      numel *= d;
    }
    return Tensor::scalar<int64_t>(numel);
  }
  int64_t rank = int64_t(dims.size());
  auto clampAttr = [&](const char *name, int64_t dflt) {
    const Attribute *a = n.attr(name);
    int64_t v = a && a->kind == Attribute::Kind::Int ? a->i : dflt;
    if (v < 0)
      v += rank;
    return std::clamp<int64_t>(v, 0, rank);
  };
  int64_t start = clampAttr("start", 0), end = std::max(start, clampAttr("end", rank));
  std::vector<int64_t> v(dims.begin() + start, dims.begin() + end);
  return Tensor::fromVector<int64_t>({int64_t(v.size())}, v);
}

/// Runs the node's reference kernel on its constant inputs; nullopt when it cannot be folded.
std::optional<std::vector<Tensor>> evaluate(const Node &n, const Graph &g) {
  bool isShapeOp = (n.domain.empty() || n.domain == "ai.onnx") &&
                   (n.opType == "Shape" || n.opType == "Size");
  for (size_t i = 0; i < n.numOutputs(); ++i)
    if (n.output(i) && !withinCap(n.output(i)->type))
      return std::nullopt;
  if (isShapeOp) {
    if (n.input(0) && !constantOf(n.input(0))) {
      auto t = foldShapeOf(n);
      if (!t)
        return std::nullopt;
      return std::vector<Tensor>{*t};
    }
  }
  std::vector<Object> objects(n.numInputs());
  std::vector<const Object *> ins(n.numInputs(), nullptr);
  for (size_t i = 0; i < n.numInputs(); ++i) {
    if (!n.input(i))
      continue;
    const Tensor *t = constantOf(n.input(i));
    if (!t)
      return std::nullopt;
    objects[i] = Object(*t);
    ins[i] = &objects[i];
  }
  const OpDef *def = OpRegistry::get().lookup(n.domain, n.opType, g.opsetVersion(n.domain));
  if (!def || !def->kernel)
    return std::nullopt;
  KernelContext ctx(n, std::move(ins), [](const Graph &, const std::vector<Object> &) -> std::vector<Object> {
    fail("constant folding does not run subgraphs");
  });
  try {
    def->kernel(ctx);
  } catch (const std::exception &) {
    return std::nullopt;
  }
  std::vector<Tensor> outs(n.numOutputs());
  for (size_t i = 0; i < n.numOutputs(); ++i) {
    if (!n.output(i))
      continue;
    const Object &o = ctx.outputs()[i];
    if (!o.isTensor() || !matchesType(o.tensor, n.output(i)->type))
      return std::nullopt;
    outs[i] = o.tensor;
  }
  return outs;
}

bool runOnGraph(Graph &g, PassStats &stats) {
  bool changed = false;
  std::vector<Node *> nodes;
  for (auto &np : g.nodes())
    nodes.push_back(np.get());
  for (Node *n : nodes) {
    if (holdsSubgraph(*n)) {
      for (auto &[name, a] : n->attrs) {
        if (a.g)
          changed |= runOnGraph(*a.g, stats);
        for (auto &sg : a.graphs)
          if (sg)
            changed |= runOnGraph(*sg, stats);
      }
      continue;
    }
    if (isRandomOp(*n) || n->numOutputs() == 0)
      continue;
    bool allConstant = true;
    for (Value *v : n->inputs())
      allConstant &= !v || constantOf(v) != nullptr;
    bool isShapeOp = (n->domain.empty() || n->domain == "ai.onnx") &&
                     (n->opType == "Shape" || n->opType == "Size");
    if (!allConstant && !isShapeOp)
      continue;
    bool tooLarge = false;
    for (Value *v : n->outputs())
      if (v && v->type.isTensor() && v->type.shape.isStatic() && !withinCap(v->type))
        tooLarge = true;
    if (tooLarge) {
      stats.add("skipped-too-large");
      continue;
    }
    auto data = evaluate(*n, g);
    if (!data)
      continue;
    const char *counter = n->opType == "Constant" ? "constants-to-initializers" : "nodes-folded";
    replaceWithConstants(g, n, *data);
    stats.add(counter);
    changed = true;
  }
  return changed;
}

} // namespace

bool foldConstants(Graph &g, PassStats &stats) { return runOnGraph(g, stats); }

} // namespace tessel
