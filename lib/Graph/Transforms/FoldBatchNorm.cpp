//===- FoldBatchNorm.cpp - fold inference BatchNormalization into Conv/Gemm/MatMul ----===//
//
// An inference-mode BatchNormalization is a per-channel affine map y = x * s + t with
// s = scale / sqrt(var + eps) and t = B - mean * s. When x is the output of a Conv, Gemm or
// MatMul with constant weights, the map folds into those weights:
//
//   BN(Conv(X, W, b))          -> Conv(X, W * s[:,None,...], (b - mean) * s + B)
//   BN(Gemm(A, B, C))          -> Gemm(A, B * s (along N), s * beta * C + t) with beta = 1
//   BN(MatMul(A[M,K], W[K,N])) -> Gemm(A, W * s[None,:], t)
//
// New weights are computed in double and stored in the weight's dtype. The folded node's output
// must feed only the BatchNormalization, whose extra (training) outputs must be absent.
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

Tensor fromDoubles(DType dt, const std::vector<int64_t> &shape, const std::vector<double> &d) {
  return Tensor::fromVector<double>(shape, d).cast(dt);
}

//===----------------------------------------------------------------------===//
// The BatchNormalization side
//===----------------------------------------------------------------------===//

/// An inference BN as y = x * s + t per channel (channel = dim 1).
struct Affine {
  std::vector<double> s, t, mean, scale, bias;
  int64_t channels = 0;
};

std::optional<Affine> matchBatchNorm(const Graph &g, const std::set<const Value *> &captured,
                                     const Node &bn) {
  if (bn.numInputs() != 5 || bn.numOutputs() < 1 || !bn.output(0))
    return std::nullopt;
  for (size_t i = 0; i < 5; ++i)
    if (!bn.input(i))
      return std::nullopt;
  const int64_t opset = g.opsetVersion("");
  // Training mode computes batch statistics: never fold it (same rule as the reference kernel).
  bool extra = false;
  for (size_t i = 1; i < bn.numOutputs(); ++i)
    if (Value *o = bn.output(i)) {
      extra = true;
      if (!o->uses().empty() || isGraphOutput(g, o) || captured.count(o))
        return std::nullopt;
    }
  if (opset >= 14) {
    auto tm = intAttr(bn, "training_mode", 0);
    if (!tm || *tm != 0)
      return std::nullopt;
  } else if (opset >= 7 && extra) {
    return std::nullopt;
  }
  if (opset < 9) {
    auto spatial = intAttr(bn, "spatial", 1);
    if (!spatial || *spatial == 0)
      return std::nullopt; // per-element parameters
  }
  auto eps = floatAttr(bn, "epsilon", 1e-5f);
  if (!eps)
    return std::nullopt;
  const Type &xt = bn.input(0)->type;
  if (!xt.isTensor() || !isFloatType(xt.dtype) || !xt.shape.rankKnown || xt.shape.rank() < 2 ||
      !xt.shape.dims[1].isStatic())
    return std::nullopt;
  const int64_t C = xt.shape.dims[1].value;
  std::vector<double> prm[5];
  for (int i = 1; i < 5; ++i) {
    const Tensor *t = constantOf(g, bn.input(i));
    if (!t || !isFloatType(t->dtype()) || t->numel() != C || t->rank() > 1)
      return std::nullopt;
    prm[i] = t->toDoubleVector();
  }
  Affine a;
  a.channels = C;
  a.scale = prm[1];
  a.bias = prm[2];
  a.mean = prm[3];
  a.s.resize(C);
  a.t.resize(C);
  for (int64_t c = 0; c < C; ++c) {
    double v = prm[4][c] + double(*eps);
    if (!(v > 0) || !std::isfinite(v))
      return std::nullopt; // would divide by zero or NaN: keep the node, it fails the same way
    a.s[c] = prm[1][c] / std::sqrt(v);
    a.t[c] = prm[2][c] - prm[3][c] * a.s[c];
    if (!std::isfinite(a.s[c]) || !std::isfinite(a.t[c]))
      return std::nullopt;
  }
  return a;
}

//===----------------------------------------------------------------------===//
// The producers
//===----------------------------------------------------------------------===//

// BN(Conv(X, W, b)) -> Conv(X, W * s[:,None,...], (b - mean) * s + B)
bool foldIntoConv(Graph &g, const std::set<const Value *> &captured, Node &conv, Node &bn,
                  const Affine &a) {
  if (conv.numInputs() < 2 || conv.numInputs() > 3 || conv.numOutputs() != 1 || !conv.input(0))
    return false;
  Value *wv = conv.input(1);
  Value *bv = conv.input(2);
  const Tensor *w = constantOf(g, wv);
  if (!w || !isFloatType(w->dtype()) || w->rank() < 3 || w->dim(0) != a.channels)
    return false;
  if (conv.input(0)->type.isTensor() && conv.input(0)->type.dtype != w->dtype())
    return false;
  const int64_t M = a.channels;
  std::vector<double> b(M, 0.0);
  if (bv) {
    const Tensor *bt = constantOf(g, bv);
    if (!bt || bt->dtype() != w->dtype() || bt->rank() != 1 || bt->numel() != M)
      return false;
    b = bt->toDoubleVector();
  }
  std::vector<double> wd = w->toDoubleVector();
  const int64_t per = M ? w->numel() / M : 0;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t j = 0; j < per; ++j)
      wd[m * per + j] *= a.s[m];
  std::vector<double> bd(M);
  for (int64_t m = 0; m < M; ++m)
    bd[m] = (b[m] - a.mean[m]) * a.s[m] + a.bias[m];

  std::string base = conv.name.empty() ? conv.output(0)->name() : conv.name;
  Value *nw = addConstant(g, base + ".weight_bn", fromDoubles(w->dtype(), w->shape(), wd));
  Value *nb = addConstant(g, base + ".bias_bn", fromDoubles(w->dtype(), {M}, bd));
  conv.setInput(1, nw);
  if (conv.numInputs() == 3)
    conv.setInput(2, nb);
  else
    conv.addInput(nb);
  bn.output(0)->replaceAllUsesWith(conv.output(0));
  g.eraseNode(&bn);
  dropIfDead(g, captured, wv);
  dropIfDead(g, captured, bv);
  return true;
}

// BN(Gemm(A, B, C)) -> Gemm(A, B * s (along N), s * beta * C + t) with beta = 1
bool foldIntoGemm(Graph &g, const std::set<const Value *> &captured, Node &gemm, Node &bn,
                  const Affine &a) {
  if (g.opsetVersion("") < 7 || gemm.numInputs() < 2 || gemm.numInputs() > 3 ||
      gemm.numOutputs() != 1)
    return false;
  auto transB = intAttr(gemm, "transB", 0);
  auto beta = floatAttr(gemm, "beta", 1.f);
  if (!transB || !beta || !intAttr(gemm, "transA", 0) || !floatAttr(gemm, "alpha", 1.f))
    return false;
  Value *bvv = gemm.input(1);
  Value *cv = gemm.input(2);
  const Tensor *B = constantOf(g, bvv);
  if (!B || !isFloatType(B->dtype()) || B->rank() != 2)
    return false;
  const bool tB = *transB != 0;
  const int64_t N = tB ? B->dim(0) : B->dim(1), K = tB ? B->dim(1) : B->dim(0);
  if (N != a.channels)
    return false;
  const Type &yt = gemm.output(0)->type;
  if (!yt.isTensor() || !yt.shape.rankKnown || yt.shape.rank() != 2 || yt.dtype != B->dtype())
    return false;
  // C' = s * beta * C + t: shape [N] unless C varies along M, then [M, N] (M must be static).
  std::vector<int64_t> cshape{N};
  std::vector<double> cd(N, 0.0);
  int64_t M = -1;
  const Tensor *C = nullptr;
  if (cv) {
    C = constantOf(g, cv);
    if (!C || C->dtype() != B->dtype() || C->rank() > 2)
      return false;
    std::vector<int64_t> cs = C->shape();
    while (cs.size() < 2)
      cs.insert(cs.begin(), 1);
    if (cs[1] != 1 && cs[1] != N)
      return false;
    if (cs[0] != 1) {
      if (!yt.shape.dims[0].isStatic() || yt.shape.dims[0].value != cs[0])
        return false;
      M = cs[0];
      cshape = {M, N};
    }
    std::vector<double> c = C->toDoubleVector();
    const int64_t rows = M < 0 ? 1 : M;
    cd.assign(rows * N, 0.0);
    const int64_t rs = cs[0] == 1 ? 0 : cs[1], csd = cs[1] == 1 ? 0 : 1;
    for (int64_t i = 0; i < rows; ++i)
      for (int64_t j = 0; j < N; ++j)
        cd[i * N + j] = double(*beta) * c[i * rs + j * csd];
  }
  const int64_t rows = M < 0 ? 1 : M;
  for (int64_t i = 0; i < rows; ++i)
    for (int64_t j = 0; j < N; ++j)
      cd[i * N + j] = cd[i * N + j] * a.s[j] + a.t[j];
  std::vector<double> bd = B->toDoubleVector();
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      bd[tB ? n * K + k : k * N + n] *= a.s[n];

  std::string base = gemm.name.empty() ? gemm.output(0)->name() : gemm.name;
  Value *nB = addConstant(g, base + ".weight_bn", fromDoubles(B->dtype(), B->shape(), bd));
  Value *nC = addConstant(g, base + ".bias_bn", fromDoubles(B->dtype(), cshape, cd));
  gemm.setInput(1, nB);
  if (gemm.numInputs() == 3)
    gemm.setInput(2, nC);
  else
    gemm.addInput(nC);
  Attribute one;
  one.kind = Attribute::Kind::Float;
  one.f = 1.f;
  gemm.attrs["beta"] = one;
  bn.output(0)->replaceAllUsesWith(gemm.output(0));
  g.eraseNode(&bn);
  dropIfDead(g, captured, bvv);
  dropIfDead(g, captured, cv);
  return true;
}

// BN(MatMul(A[M,K], W[K,N])) -> Gemm(A, W * s[None,:], t). BN's channel is dim 1, which is the
// MatMul's N only for a 2-D result.
bool foldIntoMatMul(Graph &g, const std::set<const Value *> &captured, Node &mm, Node &bn,
                    const Affine &a) {
  if (g.opsetVersion("") < 7 || mm.numInputs() != 2 || mm.numOutputs() != 1)
    return false;
  Value *av = mm.input(0), *wv = mm.input(1);
  if (!av || !wv)
    return false;
  const Tensor *W = constantOf(g, wv);
  if (!W || !isFloatType(W->dtype()) || W->rank() != 2 || W->dim(1) != a.channels)
    return false;
  const Type &at = av->type;
  const Type &yt = mm.output(0)->type;
  if (!at.isTensor() || !at.shape.rankKnown || at.shape.rank() != 2 || at.dtype != W->dtype() ||
      !yt.isTensor() || !yt.shape.rankKnown || yt.shape.rank() != 2)
    return false;
  const int64_t K = W->dim(0), N = W->dim(1);
  std::vector<double> wd = W->toDoubleVector();
  for (int64_t k = 0; k < K; ++k)
    for (int64_t n = 0; n < N; ++n)
      wd[k * N + n] *= a.s[n];

  std::string base = mm.name.empty() ? mm.output(0)->name() : mm.name;
  Value *nW = addConstant(g, base + ".weight_bn", fromDoubles(W->dtype(), W->shape(), wd));
  Value *nC = addConstant(g, base + ".bias_bn", fromDoubles(W->dtype(), {N}, a.t));
  Value *bnOut = bn.output(0);
  Node *gemm = g.appendNode("Gemm", {av, nW, nC}, {g.uniqueName(bnOut->name() + "_gemm")},
                            mm.name.empty() ? bn.name : mm.name);
  gemm->output(0)->type = bnOut->type;
  bnOut->replaceAllUsesWith(gemm->output(0));
  g.eraseNode(&bn);
  g.eraseNode(&mm);
  dropIfDead(g, captured, wv);
  return true;
}

} // namespace

bool foldBatchNorm(Graph &g, PassStats &stats) {
  std::vector<Node *> bns;
  for (auto &n : g.nodes())
    if (n->opType == "BatchNormalization" && n->domain.empty())
      bns.push_back(n.get());
  if (bns.empty())
    return false;
  const std::set<const Value *> captured = capturedValues(g);
  bool changed = false, appended = false;
  for (Node *bn : bns) {
    auto affine = matchBatchNorm(g, captured, *bn);
    if (!affine)
      continue;
    Value *x = bn->input(0);
    Node *p = x->producer();
    if (!p || !p->domain.empty() || !onlyUsedBy(g, captured, x, bn, 0) || p->output(0) != x)
      continue;
    std::vector<Value *> params(bn->inputs().begin() + 1, bn->inputs().end());
    bool done = false;
    if (p->opType == "Conv") {
      done = foldIntoConv(g, captured, *p, *bn, *affine);
      if (done)
        stats.add("folded-into-conv");
    } else if (p->opType == "Gemm") {
      done = foldIntoGemm(g, captured, *p, *bn, *affine);
      if (done)
        stats.add("folded-into-gemm");
    } else if (p->opType == "MatMul") {
      done = foldIntoMatMul(g, captured, *p, *bn, *affine);
      if (done) {
        stats.add("folded-into-matmul");
        appended = true;
      }
    }
    if (done) {
      for (Value *v : params) // the BN's scale/B/mean/var, when nothing else uses them
        dropIfDead(g, captured, v);
      stats.add("nodes-removed");
      changed = true;
    }
  }
  if (appended)
    g.sortTopologically();
  return changed;
}

} // namespace tessel
