//===- PackWeights.cpp - constant GEMM operands in the layout the kernels read -===//
//
// See PackWeights.h. Runs after the graph pipeline, on the graph the compiler lowers: a Gemm
// whose B is a constant [N, K] read transposed (transB = 1, what PyTorch's nn.Linear exports)
// gets a new initializer holding B^T [K, N] and transB = 0. Its kernel then reads B rows with
// contiguous vector loads along N (the vectorized axis of the register tile) instead of one
// gather per k step. The old initializer stays for any other reader (and is not written into
// the artifact when no kernel reads it).
//
//===----------------------------------------------------------------------===//
#include "PackWeights.h"

#include "tessel/Graph/IR.h"
#include "tessel/Support/Tensor.h"

#include <cstring>
#include <unordered_map>

namespace tessel::compiler {

namespace {

const Attribute *intAttribute(const Node &n, const char *name) {
  const Attribute *a = n.attr(name);
  return a && a->kind == Attribute::Kind::Int ? a : nullptr;
}

/// B^T of a constant 2-D tensor of 4-byte or 8-byte elements.
Tensor transposed(const Tensor &b) {
  const int64_t rows = b.shape()[0], cols = b.shape()[1];
  Tensor t(b.dtype(), {cols, rows});
  const size_t elem = dtypeSize(b.dtype());
  const auto *src = static_cast<const uint8_t *>(b.raw());
  auto *dst = static_cast<uint8_t *>(t.raw());
  for (int64_t r = 0; r < rows; ++r)
    for (int64_t c = 0; c < cols; ++c)
      std::memcpy(dst + (c * rows + r) * elem, src + (r * cols + c) * elem, elem);
  return t;
}

} // namespace

int packDenseWeights(Graph &g) {
  int packed = 0;
  // One transposed copy per weight, shared by every Gemm that reads it.
  std::unordered_map<const Value *, Value *> done;
  for (const auto &np : g.nodes()) {
    Node &n = *np;
    if (n.opType != "Gemm" || !n.domain.empty() || n.numInputs() < 2)
      continue;
    const Attribute *tb = intAttribute(n, "transB");
    Value *b = n.input(1);
    if (!tb || tb->i == 0 || !b || !b->isConstant() || b->producer())
      continue;
    const Tensor &w = b->constant;
    if (w.shape().size() != 2 || (w.dtype() != DType::f32 && w.dtype() != DType::f64))
      continue;
    Value *&bt = done[b];
    if (!bt) {
      Tensor t = transposed(w);
      bt = g.createValue(g.uniqueName(b->name() + ".packed"),
                         Type::tensor(t.dtype(), Shape::of(t.shape())));
      bt->constant = std::move(t);
      g.initializers.push_back(bt);
    }
    n.setInput(1, bt);
    n.attrs["transB"].i = 0;
    ++packed;
  }
  return packed;
}

} // namespace tessel::compiler
