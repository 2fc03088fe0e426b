//===- Flops.cpp - arithmetic cost of a node ------------------------------===//
//
// See include/tessel/Compiler/Flops.h. `tessel inspect` (tools/tessel/Inspect.cpp) sums the
// same costs, so the per-kernel FLOPs of an artifact add up to the model's total that inspect
// prints after optimization (for the nodes it models).
//
//===----------------------------------------------------------------------===//
#include "tessel/Compiler/Flops.h"

#include <algorithm>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace tessel {

namespace {

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

} // namespace

std::optional<NodeCost> nodeCost(const Node &n) {
  const std::string &op = n.opType;
  if (n.domain == "tessel") {
    // The blocked-layout ops of lib/Graph/Ops/Layout.cpp (the layout pass adds them).
    if (op == "ToBlocked" || op == "FromBlocked")
      return NodeCost{};
    if (op == "ConvWinogradNCHWc") {
      // Counted as the direct 3x3 conv it computes (so GFLOP/s compare with ConvNCHWc's):
      // output [N, OC/ob, OH, OW, ob], transformed weights [(m+2)^2, OC/ob, IC, ob].
      auto out = shapeOf(n.output(0)), u = shapeOf(n.input(1));
      if (!out || !u || u->size() != 4)
        return std::nullopt;
      NodeCost c;
      c.macs = product(*out) * (*u)[2] * 9;
      c.flops = 2 * c.macs + (n.input(2) ? product(*out) : 0);
      return c;
    }
    if (op != "ConvNCHWc")
      return std::nullopt;
    // Output [N, OC/ob, OH, OW, ob]; weights [OC/ob, IC/ib or 1, KH, KW, ib or 1, ob]: the
    // multiply-adds per output element are the product of the weights' dims 1..4.
    auto out = shapeOf(n.output(0)), w = shapeOf(n.input(1));
    if (!out || !w || w->size() != 6)
      return std::nullopt;
    NodeCost c;
    c.macs = product(*out) * (*w)[1] * (*w)[2] * (*w)[3] * (*w)[4];
    c.flops = 2 * c.macs + (n.input(2) ? product(*out) : 0);
    return c;
  }
  if (!n.domain.empty() && n.domain != "ai.onnx")
    return std::nullopt;
  if (kDataMovement.count(op))
    return NodeCost{};
  auto out = shapeOf(n.output(0));
  // Multiply-add ops: 2 FLOPs per multiply-add, + one per output element for a bias.
  auto macOp = [&](int64_t macs, bool bias) {
    return NodeCost{macs, 2 * macs + (bias ? product(*out) : 0)};
  };
  if (op == "Conv" || op == "ConvInteger" || op == "QLinearConv") {
    auto w = shapeOf(n.input(op == "QLinearConv" ? 3 : 1));
    if (!out || !w || w->size() < 2)
      return std::nullopt;
    return macOp(product(*out) * product(*w, 1), op == "Conv" && n.input(2));
  }
  if (op == "ConvTranspose") {
    auto x = shapeOf(n.input(0)), w = shapeOf(n.input(1));
    if (!out || !x || !w || w->size() < 2)
      return std::nullopt;
    return macOp(product(*x) * product(*w, 1), n.input(2) != nullptr);
  }
  if (op == "MatMul" || op == "MatMulInteger" || op == "QLinearMatMul") {
    auto a = shapeOf(n.input(0));
    if (!out || !a || a->empty())
      return std::nullopt;
    return macOp(product(*out) * a->back(), false);
  }
  if (op == "Gemm") {
    auto a = shapeOf(n.input(0));
    if (!out || !a || a->size() != 2)
      return std::nullopt;
    const Attribute *t = n.attr("transA");
    int64_t k = (t && t->kind == Attribute::Kind::Int && t->i) ? (*a)[0] : (*a)[1];
    return macOp(product(*out) * k, n.input(2) != nullptr);
  }
  if (op == "MaxPool" || op == "AveragePool" || op == "LpPool") {
    const Attribute *k = n.attr("kernel_shape");
    if (!out || !k || k->kind != Attribute::Kind::Ints)
      return std::nullopt;
    return NodeCost{0, product(*out) * product(k->ints)};
  }
  if (op == "GlobalAveragePool" || op == "GlobalMaxPool" || op == "GlobalLpPool" ||
      op.rfind("Reduce", 0) == 0 || op == "ArgMax" || op == "ArgMin") {
    auto x = shapeOf(n.input(0));
    if (!x)
      return std::nullopt;
    return NodeCost{0, product(*x)};
  }
  auto it = kElementwise.find(op);
  if (it == kElementwise.end() || !out)
    return std::nullopt;
  int64_t per = it->second;
  if (kVariadic.count(op))
    per *= std::max<int64_t>(1, int64_t(n.numInputs()) - 1);
  return NodeCost{0, product(*out) * per};
}

std::optional<int64_t> nodeFlops(const Node &n) {
  if (auto c = nodeCost(n))
    return c->flops;
  return std::nullopt;
}

} // namespace tessel
