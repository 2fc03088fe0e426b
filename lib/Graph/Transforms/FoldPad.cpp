//===- FoldPad.cpp - fold a constant Pad into the following Conv or pool -----===//
//
//   Conv(Pad(x, p, 0))                       -> Conv(x) {pads += p}
//   AveragePool(Pad(x, p, 0))                -> AveragePool(x) {pads += p, count_include_pad = 1}
//   MaxPool(Pad(x, p, -inf))                 -> MaxPool(x) {pads += p}
//
// The Pad must be mode "constant" with constant, non-negative pads on the spatial dims only
// (none on N and C) and feed only the consumer's input X. The consumer must have auto_pad
// NOTSET. Pools also need ceil_mode 0 (with ceil_mode the last window's clipping differs
// between real and implicit padding). AveragePool counts the padded zeros, so it needs
// count_include_pad = 1, or no pads of its own (then count_include_pad is set to 1). MaxPool
// ignores implicit padding, which is a -inf pad; a MaxPool with an Indices output is left alone
// (indices would refer to the unpadded input).
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/Transforms.h"
#include "tessel/Graph/PassUtils.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <set>

namespace tessel {

using namespace passutils;

namespace {

/// A constant Pad: its pads (2 * rank, begins then ends) and its fill value.
struct ConstPad {
  std::vector<int64_t> pads;
  double value = 0;
};

std::optional<ConstPad> matchPad(const Graph &g, const Node &pad) {
  if (pad.numInputs() < 1 || !pad.input(0) || pad.numOutputs() != 1 || !pad.output(0))
    return std::nullopt;
  auto mode = stringAttr(pad, "mode", "constant");
  if (!mode || *mode != "constant")
    return std::nullopt;
  const int64_t opset = g.opsetVersion("");
  ConstPad r;
  if (opset < 11) {
    auto pads = intsAttr(pad, opset < 2 ? "paddings" : "pads", {});
    const Attribute *v = pad.attr("value");
    if (!pads || (v && v->kind != Attribute::Kind::Float))
      return std::nullopt;
    r.pads = *pads;
    r.value = v ? double(v->f) : 0.0;
  } else {
    if (pad.numInputs() > 3 && pad.input(3))
      return std::nullopt; // axes (opset 18)
    const Tensor *p = constantOf(g, pad.input(1));
    if (!p || (p->dtype() != DType::i64 && p->dtype() != DType::i32) || p->rank() != 1)
      return std::nullopt;
    r.pads = p->toInt64Vector();
    if (pad.numInputs() > 2 && pad.input(2)) {
      const Tensor *v = constantOf(g, pad.input(2));
      if (!v || v->numel() > 1 || v->dtype() == DType::string)
        return std::nullopt;
      r.value = v->numel() ? v->getDouble(0) : 0.0;
    }
  }
  if (r.pads.size() < 6 || r.pads.size() % 2)
    return std::nullopt; // N, C and at least one spatial dim
  const int64_t rank = int64_t(r.pads.size() / 2);
  const Type &xt = pad.input(0)->type;
  if (!xt.isTensor() || !isFloatType(xt.dtype) || (xt.shape.rankKnown && xt.shape.rank() != rank))
    return std::nullopt;
  for (int64_t p : r.pads)
    if (p < 0 || p > (int64_t(1) << 24))
      return std::nullopt;
  if (r.pads[0] || r.pads[1] || r.pads[rank] || r.pads[rank + 1])
    return std::nullopt; // pads on N or C
  return r;
}

bool tryFold(Graph &g, const std::set<const Value *> &captured, Node &op) {
  if (op.numInputs() < 1 || !op.input(0))
    return false;
  Value *x = op.input(0);
  Node *pad = x->producer();
  if (!pad || pad->opType != "Pad" || !pad->domain.empty() ||
      !hasSingleUse(g, captured, x))
    return false;
  auto cp = matchPad(g, *pad);
  if (!cp)
    return false;
  const int64_t rank = int64_t(cp->pads.size() / 2), nsp = rank - 2;
  auto autoPad = stringAttr(op, "auto_pad", "NOTSET");
  auto pads = intsAttr(op, "pads", std::vector<int64_t>(2 * nsp, 0));
  if (!autoPad || (!autoPad->empty() && *autoPad != "NOTSET") || !pads ||
      int64_t(pads->size()) != 2 * nsp)
    return false;
  bool setCountIncludePad = false;
  if (op.opType == "Conv") {
    if (cp->value != 0)
      return false;
  } else {
    auto ceil = intAttr(op, "ceil_mode", 0);
    if (!ceil || *ceil != 0)
      return false;
    if (op.opType == "AveragePool") {
      auto cip = intAttr(op, "count_include_pad", 0);
      if (cp->value != 0 || !cip || g.opsetVersion("") < 7) // count_include_pad is opset 7
        return false;
      if (*cip == 0) {
        if (std::any_of(pads->begin(), pads->end(), [](int64_t p) { return p != 0; }))
          return false;
        setCountIncludePad = true;
      }
    } else { // MaxPool
      if (!(std::isinf(cp->value) && cp->value < 0))
        return false;
      if (op.numOutputs() != 1)
        return false; // Indices output (or an omitted one we do not try to interpret)
    }
  }
  std::vector<int64_t> sum = *pads;
  for (int64_t i = 0; i < nsp; ++i) {
    sum[i] += cp->pads[2 + i];
    sum[nsp + i] += cp->pads[rank + 2 + i];
  }
  for (int64_t p : sum)
    if (p < 0 || p > (int64_t(1) << 24))
      return false; // the limit conv/pool shape inference accepts
  op.attrs["pads"] = Attribute::ofInts(sum);
  if (setCountIncludePad)
    op.attrs["count_include_pad"] = Attribute::ofInt(1);
  op.setInput(0, pad->input(0));
  // The Pad is dead now; drop it (dce would too) and any pads/value initializers it alone used.
  std::vector<Value *> ins(pad->inputs().begin() + 1, pad->inputs().end());
  g.eraseNode(pad);
  for (Value *v : ins)
    dropIfDead(g, captured, v);
  return true;
}

} // namespace

bool foldPadIntoConvPool(Graph &g, PassStats &stats) {
  std::vector<Node *> ops;
  for (auto &n : g.nodes())
    if (n->domain.empty() &&
        (n->opType == "Conv" || n->opType == "AveragePool" || n->opType == "MaxPool"))
      ops.push_back(n.get());
  if (ops.empty())
    return false;
  const std::set<const Value *> captured = capturedValues(g);
  bool changed = false;
  for (Node *op : ops)
    if (tryFold(g, captured, *op)) {
      stats.add("pads-folded");
      stats.add("nodes-removed");
      changed = true;
    }
  return changed;
}

} // namespace tessel
