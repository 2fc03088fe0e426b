//===- FuseMatMulAdd.cpp - MatMul + Add (bias) -> Gemm ------------------------===//
//
//   Add(MatMul(A[M,K], B[K,N]), bias)  -> Gemm(A, B, bias)      (also Add(bias, MatMul(...)))
//
// when A and B are matrices, the MatMul's result feeds only the Add, and bias is
// unidirectionally broadcastable to [M,N] (rank <= 2, each dim 1 or equal), so the Add's result
// is the Gemm's [M,N]. The Add node itself becomes the Gemm, so its result keeps its name.
// Higher-rank MatMuls ([1,128,256] x [256,N] in a transformer) stay MatMul + Add: a later
// fusion pass handles them. Only f32/f64: Gemm rounds once where MatMul + Add rounds twice,
// which for f16/bf16 is a visible change.
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/Transforms.h"
#include "tessel/Graph/PassUtils.h"

#include <algorithm>
#include <set>

namespace tessel {

using namespace passutils;

namespace {

const Shape *matrixShape(const Value *v, DType dt) {
  if (!v || !v->type.isTensor() || v->type.dtype != dt || !v->type.shape.rankKnown ||
      v->type.shape.rank() != 2)
    return nullptr;
  return &v->type.shape;
}

/// bias is unidirectionally broadcastable to out ([M,N]): right-aligned, each dim 1 or the same
/// (a static 1, or an equal static value or symbol; unknown dims do not qualify).
bool broadcastsTo(const Shape &bias, const Shape &out) {
  if (!bias.rankKnown || bias.rank() > out.rank())
    return false;
  const int64_t off = out.rank() - bias.rank();
  for (int64_t i = 0; i < bias.rank(); ++i) {
    const Dim &b = bias.dims[i], &o = out.dims[off + i];
    if (b.isStatic() && b.value == 1)
      continue;
    if (b.isUnknown() || o.isUnknown() || !(b == o))
      return false;
  }
  return true;
}

bool tryFuse(Graph &g, const std::set<const Value *> &captured, Node &add) {
  if (add.numInputs() != 2 || add.numOutputs() != 1 || !add.output(0) || !add.input(0) ||
      !add.input(1))
    return false;
  for (size_t k = 0; k < 2; ++k) {
    Value *mmOut = add.input(k);
    Value *bias = add.input(1 - k);
    Node *mm = mmOut->producer();
    if (!mm || mm->opType != "MatMul" || !mm->domain.empty() || mm->numInputs() != 2 ||
        mm->numOutputs() != 1 || !hasSingleUse(g, captured, mmOut))
      continue;
    const Type &yt = mmOut->type;
    if (!yt.isTensor() || (yt.dtype != DType::f32 && yt.dtype != DType::f64))
      continue;
    const Shape *a = matrixShape(mm->input(0), yt.dtype), *b = matrixShape(mm->input(1), yt.dtype);
    const Shape *y = matrixShape(mmOut, yt.dtype);
    if (!a || !b || !y)
      continue;
    if (!bias->type.isTensor() || bias->type.dtype != yt.dtype || !broadcastsTo(bias->type.shape, *y))
      continue;
    // The Add becomes the Gemm (its result keeps its name and type).
    Value *A = mm->input(0), *B = mm->input(1);
    add.opType = "Gemm";
    add.attrs.clear();
    add.setInput(0, A);
    add.setInput(1, B);
    add.addInput(bias);
    g.eraseNode(mm);
    return true;
  }
  return false;
}

} // namespace

bool fuseMatMulAdd(Graph &g, PassStats &stats) {
  // Gemm with a C broadcast along M needs opset 7 (before: the `broadcast` attribute).
  if (g.opsetVersion("") < 7)
    return false;
  std::vector<Node *> adds;
  for (auto &n : g.nodes())
    if (n->opType == "Add" && n->domain.empty())
      adds.push_back(n.get());
  if (adds.empty())
    return false;
  const std::set<const Value *> captured = capturedValues(g);
  bool changed = false;
  for (Node *add : adds)
    if (tryFuse(g, captured, *add)) {
      stats.add("gemms-formed");
      stats.add("nodes-removed");
      changed = true;
    }
  // The Gemm sits where the Add was, after both MatMul operands and the bias: still sorted.
  return changed;
}

} // namespace tessel
