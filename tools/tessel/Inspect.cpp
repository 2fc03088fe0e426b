//===- Inspect.cpp - tessel inspect: what a model holds and costs ---------===//
//
// Prints, before and after optimization at -O N, the node count and op histogram (top-level
// nodes), the parameter count and bytes (used initializers and Constant node values), and the
// arithmetic cost per op type counted from the inferred static shapes: MACs (multiply-adds) for
// Conv, ConvTranspose, MatMul, Gemm; FLOPs for those (2 per MAC, plus bias adds) and for pools,
// reductions, normalizations and elementwise ops (one per output element and operation; the
// normalizations and Softmax use a fixed per-element estimate). A node whose shapes are not
// static, and ops the table does not model, are reported as unknown, never guessed.
//
// Interface lines that outside scripts read:  `nodes: BEFORE -> AFTER`  and
// `op TYPE: BEFORE -> AFTER` (one per op type present before or after).
//
//===----------------------------------------------------------------------===//
#include "Commands.h"

#include "tessel/Frontend/ONNX.h"
#include "tessel/Graph/Transforms.h"

#include <cstdio>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <unordered_set>

namespace tessel::cli {

namespace {

struct Cost {
  int64_t macs = 0, flops = 0;
};

/// The static shape of a value, or nullopt.
std::optional<std::vector<int64_t>> shapeOf(const Value *v) {
  if (!v || !v->type.isTensor() || !v->type.shape.isStatic())
    return std::nullopt;
  return v->type.shape.staticDims();
}

int64_t product(const std::vector<int64_t> &s, size_t from = 0) {
  int64_t p = 1;
  for (size_t i = from; i < s.size(); ++i)
    p *= s[i];
  return p;
}

// Ops that move or reinterpret data and cost no arithmetic.
const std::set<std::string> kDataMovement = {
    "Reshape", "Transpose", "Concat", "Flatten", "Gather", "GatherElements", "GatherND",
    "Slice", "Squeeze", "Unsqueeze", "Shape", "Size", "Constant", "ConstantOfShape", "Identity",
    "Cast", "CastLike", "Expand", "Pad", "Split", "Dropout", "Tile", "DepthToSpace",
    "SpaceToDepth", "ScatterElements", "ScatterND", "Range", "OneHot", "NonZero", "Compress",
    "EyeLike", "Trilu", "ReverseSequence"};

// Elementwise ops: FLOPs per output element (per extra input for the variadic ones).
const std::map<std::string, int64_t> kElementwise = {
    {"Add", 1}, {"Sub", 1}, {"Mul", 1}, {"Div", 1}, {"Pow", 1}, {"Mod", 1}, {"Max", 1},
    {"Min", 1}, {"Sum", 1}, {"Mean", 1}, {"Relu", 1}, {"LeakyRelu", 1}, {"PRelu", 1},
    {"Sigmoid", 1}, {"Tanh", 1}, {"Exp", 1}, {"Log", 1}, {"Sqrt", 1}, {"Reciprocal", 1},
    {"Neg", 1}, {"Abs", 1}, {"Erf", 1}, {"Gelu", 1}, {"HardSigmoid", 1}, {"HardSwish", 1},
    {"Clip", 1}, {"Elu", 1}, {"Selu", 1}, {"Celu", 1}, {"Softplus", 1}, {"Softsign", 1},
    {"Mish", 1}, {"ThresholdedRelu", 1}, {"Sin", 1}, {"Cos", 1}, {"Tan", 1}, {"Floor", 1},
    {"Ceil", 1}, {"Round", 1}, {"Sign", 1}, {"Where", 1}, {"Equal", 1}, {"Less", 1},
    {"LessOrEqual", 1}, {"Greater", 1}, {"GreaterOrEqual", 1}, {"Not", 1}, {"And", 1}, {"Or", 1},
    {"Xor", 1}, {"IsNaN", 1}, {"IsInf", 1},
    // normalizations: estimates per element (BN: scale + shift; LN/IN: mean, var, normalize,
    // scale, shift; Softmax: max, subtract, exp, sum, divide)
    {"BatchNormalization", 2}, {"LayerNormalization", 5}, {"InstanceNormalization", 5},
    {"Softmax", 5}, {"LogSoftmax", 5}, {"LpNormalization", 3}};

const std::set<std::string> kVariadic = {"Sum", "Mean", "Max", "Min"};

/// The cost of one node, or nullopt when its shapes are not static or the op is not modelled.
std::optional<Cost> nodeCost(const Node &n) {
  if (!n.domain.empty() && n.domain != "ai.onnx")
    return std::nullopt;
  const std::string &op = n.opType;
  if (kDataMovement.count(op))
    return Cost{};
  auto out = shapeOf(n.output(0));
  if (op == "Conv" || op == "ConvInteger" || op == "QLinearConv") {
    size_t wi = op == "QLinearConv" ? 3 : 1;
    auto w = shapeOf(n.input(wi));
    if (!out || !w || w->size() < 2)
      return std::nullopt;
    Cost c;
    c.macs = product(*out) * product(*w, 1);
    c.flops = 2 * c.macs + (op == "Conv" && n.input(2) ? product(*out) : 0);
    return c;
  }
  if (op == "ConvTranspose") {
    auto x = shapeOf(n.input(0)), w = shapeOf(n.input(1));
    if (!out || !x || !w || w->size() < 2)
      return std::nullopt;
    Cost c;
    c.macs = product(*x) * product(*w, 1);
    c.flops = 2 * c.macs + (n.input(2) ? product(*out) : 0);
    return c;
  }
  if (op == "MatMul" || op == "MatMulInteger" || op == "QLinearMatMul") {
    auto a = shapeOf(n.input(0));
    if (!out || !a || a->empty())
      return std::nullopt;
    Cost c;
    c.macs = product(*out) * a->back();
    c.flops = 2 * c.macs;
    return c;
  }
  if (op == "Gemm") {
    auto a = shapeOf(n.input(0));
    if (!out || !a || a->size() != 2)
      return std::nullopt;
    const Attribute *t = n.attr("transA");
    int64_t k = (t && t->kind == Attribute::Kind::Int && t->i) ? (*a)[0] : (*a)[1];
    Cost c;
    c.macs = product(*out) * k;
    c.flops = 2 * c.macs + (n.input(2) ? product(*out) : 0);
    return c;
  }
  if (op == "MaxPool" || op == "AveragePool" || op == "LpPool") {
    const Attribute *k = n.attr("kernel_shape");
    if (!out || !k || k->kind != Attribute::Kind::Ints)
      return std::nullopt;
    return Cost{0, product(*out) * product(k->ints)};
  }
  if (op == "GlobalAveragePool" || op == "GlobalMaxPool" || op == "GlobalLpPool" ||
      op.rfind("Reduce", 0) == 0 || op == "ArgMax" || op == "ArgMin") {
    auto x = shapeOf(n.input(0));
    if (!x)
      return std::nullopt;
    return Cost{0, product(*x)};
  }
  auto it = kElementwise.find(op);
  if (it != kElementwise.end()) {
    if (!out)
      return std::nullopt;
    int64_t per = it->second;
    if (kVariadic.count(op))
      per *= std::max<int64_t>(1, int64_t(n.numInputs()) - 1);
    return Cost{0, product(*out) * per};
  }
  return std::nullopt;
}

struct OpStats {
  int64_t count = 0, unknown = 0;
  Cost cost;
};

struct Summary {
  int64_t nodes = 0, params = 0, paramBytes = 0;
  std::map<std::string, OpStats> ops;
  Cost total;
  int64_t unknown = 0;
};

void collectCaptures(const Graph &g, std::unordered_set<const Value *> &out) {
  for (auto &v : g.values())
    for (const Value *o = v->outer; o; o = o->outer)
      out.insert(o);
  for (auto &n : g.nodes())
    for (auto &[k, a] : n->attrs) {
      if (a.g)
        collectCaptures(*a.g, out);
      for (auto &sg : a.graphs)
        if (sg)
          collectCaptures(*sg, out);
    }
}

int64_t tensorBytes(const Tensor &t) {
  if (t.dtype() != DType::string)
    return int64_t(t.nbytes());
  int64_t b = 0;
  for (int64_t i = 0; i < t.numel(); ++i)
    b += int64_t(t.data<std::string>()[i].size());
  return b;
}

Summary summarize(const Graph &g) {
  Summary s;
  std::unordered_set<const Value *> captured;
  collectCaptures(g, captured);
  std::unordered_set<const Value *> outputs(g.outputs.begin(), g.outputs.end());
  std::unordered_set<const Value *> seen;
  auto addParam = [&](const Tensor &t) {
    s.params += t.numel();
    s.paramBytes += tensorBytes(t);
  };
  for (const Value *v : g.initializers)
    if (v && v->isConstant() && seen.insert(v).second &&
        (!v->uses().empty() || outputs.count(v) || captured.count(v)))
      addParam(v->constant);
  for (auto &np : g.nodes()) {
    const Node &n = *np;
    ++s.nodes;
    OpStats &o = s.ops[(n.domain.empty() || n.domain == "ai.onnx" ? "" : n.domain + ".") + n.opType];
    ++o.count;
    if (n.opType == "Constant" && n.domain.empty())
      if (const Attribute *a = n.attr("value"); a && a->kind == Attribute::Kind::Tensor)
        addParam(a->t);
    auto c = nodeCost(n);
    if (!c) {
      ++o.unknown;
      ++s.unknown;
      continue;
    }
    o.cost.macs += c->macs;
    o.cost.flops += c->flops;
    s.total.macs += c->macs;
    s.total.flops += c->flops;
  }
  return s;
}

std::string human(int64_t v) {
  const char *units[] = {"", "K", "M", "G", "T", "P"};
  double d = double(v);
  int u = 0;
  while (d >= 1000 && u < 5) {
    d /= 1000;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%lld", (long long)v);
  else
    std::snprintf(buf, sizeof buf, "%.2f%s", d, units[u]);
  return buf;
}

/// "123" or "123 (+2 unknown)"; "-" when the op is absent.
std::string costText(const OpStats *o, int64_t Cost::*field) {
  if (!o || o->count == 0)
    return "-";
  if (o->unknown == o->count)
    return "unknown";
  std::string s = std::to_string(o->cost.*field);
  if (o->unknown)
    s += " (+" + std::to_string(o->unknown) + " unknown)";
  return s;
}

} // namespace

int runInspect(const std::string &modelPath, int optLevel) {
  Model m = loadOnnx(modelPath);
  Graph &g = *m.graph;
  Summary before = summarize(g);
  optimizeGraph(g, optLevel);
  Summary after = summarize(g);

  std::cout << "model: " << modelPath << "\n";
  std::cout << "opset: " << g.opsetVersion("") << "; before -> after -O" << optLevel << "\n";
  std::cout << "nodes: " << before.nodes << " -> " << after.nodes << "\n";
  std::set<std::string> types;
  for (auto &[k, v] : before.ops)
    types.insert(k);
  for (auto &[k, v] : after.ops)
    types.insert(k);
  auto find = [](const Summary &s, const std::string &k) -> const OpStats * {
    auto it = s.ops.find(k);
    return it == s.ops.end() ? nullptr : &it->second;
  };
  for (auto &t : types) {
    const OpStats *b = find(before, t), *a = find(after, t);
    std::cout << "op " << t << ": " << (b ? b->count : 0) << " -> " << (a ? a->count : 0) << "\n";
  }
  std::cout << "parameters: " << before.params << " -> " << after.params << "\n";
  std::cout << "parameter bytes: " << before.paramBytes << " -> " << after.paramBytes << " ("
            << human(before.paramBytes) << "B -> " << human(after.paramBytes) << "B)\n";
  for (auto &t : types) {
    const OpStats *b = find(before, t), *a = find(after, t);
    bool anyMacs = (b && b->cost.macs) || (a && a->cost.macs);
    bool anyFlops = (b && (b->cost.flops || b->unknown)) || (a && (a->cost.flops || a->unknown));
    if (anyMacs)
      std::cout << "macs " << t << ": " << costText(b, &Cost::macs) << " -> "
                << costText(a, &Cost::macs) << "\n";
    if (anyFlops)
      std::cout << "flops " << t << ": " << costText(b, &Cost::flops) << " -> "
                << costText(a, &Cost::flops) << "\n";
  }
  auto total = [](const Summary &s, int64_t Cost::*f) {
    std::string r = std::to_string(s.total.*f) + " (" + human(s.total.*f) + ")";
    if (s.unknown)
      r += " +" + std::to_string(s.unknown) + " nodes unknown";
    return r;
  };
  std::cout << "macs total: " << total(before, &Cost::macs) << " -> " << total(after, &Cost::macs)
            << "\n";
  std::cout << "flops total: " << total(before, &Cost::flops) << " -> "
            << total(after, &Cost::flops) << "\n";
  return 0;
}

} // namespace tessel::cli
