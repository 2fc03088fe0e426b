//===- Recurrent.cpp - Recurrent ops ---------------------------------------===//
//
// RNN, GRU and LSTM (ai.onnx, opsets 1..17): forward / reverse / bidirectional, sequence_lens,
// initial states, LSTM peepholes and input_forget, GRU linear_before_reset, every activation
// function of the spec with activation_alpha/activation_beta, clip, and the opset-14 layout.
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"
#include "tessel/Graph/Lowering.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <functional>
#include <optional>
#include <string>
#include <type_traits>
#include <vector>

namespace tessel {

namespace {

enum class Cell { RNN, GRU, LSTM };

/// Gates per cell: RNN 1 (i), GRU 3 (z r h), LSTM 4 (i o f c).
int gateCount(Cell c) { return c == Cell::RNN ? 1 : c == Cell::GRU ? 3 : 4; }
/// Activation functions per direction: RNN 1 (f), GRU 2 (f g), LSTM 3 (f g h).
int actCount(Cell c) { return c == Cell::RNN ? 1 : c == Cell::GRU ? 2 : 3; }

enum class ActKind {
  Relu,
  Tanh,
  Sigmoid,
  Affine,
  LeakyRelu,
  ThresholdedRelu,
  ScaledTanh,
  HardSigmoid,
  Elu,
  Softsign,
  Softplus
};

struct Activation {
  ActKind kind = ActKind::Tanh;
  double alpha = 0, beta = 0;

  template <class A> A operator()(A x) const {
    switch (kind) {
    case ActKind::Relu: return x > A(0) ? x : A(0);
    case ActKind::Tanh: return std::tanh(x);
    case ActKind::Sigmoid: return A(1) / (A(1) + std::exp(-x));
    case ActKind::Affine: return A(alpha) * x + A(beta);
    case ActKind::LeakyRelu: return x >= A(0) ? x : A(alpha) * x;
    case ActKind::ThresholdedRelu: return x > A(alpha) ? x : A(0);
    case ActKind::ScaledTanh: return A(alpha) * std::tanh(A(beta) * x);
    case ActKind::HardSigmoid:
      return std::max(A(0), std::min(A(1), A(alpha) * x + A(beta)));
    case ActKind::Elu: return x >= A(0) ? x : A(alpha) * (std::exp(x) - A(1));
    case ActKind::Softsign: return x / (A(1) + std::abs(x));
    case ActKind::Softplus: return std::log1p(std::exp(-std::abs(x))) + std::max(x, A(0));
    }
    return x;
  }
};

std::string lower(std::string s) {
  for (char &c : s)
    c = char(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

/// Parses `activations` (with defaults), consuming activation_alpha/activation_beta in order
/// for the functions that take them (the onnxruntime convention). Returns numDir*perDir entries.
std::vector<Activation> parseActivations(const AttrReader &ctx, Cell cell, int64_t numDir) {
  const int perDir = actCount(cell);
  std::vector<std::string> dflt;
  if (cell == Cell::RNN)
    dflt = {"Tanh"};
  else if (cell == Cell::GRU)
    dflt = {"Sigmoid", "Tanh"};
  else
    dflt = {"Sigmoid", "Tanh", "Tanh"};
  std::vector<std::string> names = ctx.attrStrings("activations", {});
  if (names.empty()) {
    for (int64_t d = 0; d < numDir; ++d)
      names.insert(names.end(), dflt.begin(), dflt.end());
  }
  if (int64_t(names.size()) == perDir && numDir == 2) {
    std::vector<std::string> twice = names;
    twice.insert(twice.end(), names.begin(), names.end());
    names = twice;
  }
  if (int64_t(names.size()) != perDir * numDir)
    ctx.fail("attribute 'activations' has ", names.size(), " functions, expected ",
             perDir * numDir, " (", perDir, " per direction, ", numDir, " direction(s))");
  std::vector<float> alphas = ctx.attrFloats("activation_alpha", {});
  std::vector<float> betas = ctx.attrFloats("activation_beta", {});
  size_t ai = 0, bi = 0;
  auto takeAlpha = [&](double d) { return ai < alphas.size() ? double(alphas[ai++]) : d; };
  auto takeBeta = [&](double d) { return bi < betas.size() ? double(betas[bi++]) : d; };
  std::vector<Activation> acts;
  for (const std::string &n : names) {
    std::string l = lower(n);
    Activation a;
    if (l == "relu") {
      a.kind = ActKind::Relu;
    } else if (l == "tanh") {
      a.kind = ActKind::Tanh;
    } else if (l == "sigmoid") {
      a.kind = ActKind::Sigmoid;
    } else if (l == "affine") {
      a.kind = ActKind::Affine;
      a.alpha = takeAlpha(1.0);
      a.beta = takeBeta(0.0);
    } else if (l == "leakyrelu") {
      a.kind = ActKind::LeakyRelu;
      a.alpha = takeAlpha(0.01);
    } else if (l == "thresholdedrelu") {
      a.kind = ActKind::ThresholdedRelu;
      a.alpha = takeAlpha(1.0);
    } else if (l == "scaledtanh") {
      a.kind = ActKind::ScaledTanh;
      a.alpha = takeAlpha(1.0);
      a.beta = takeBeta(1.0);
    } else if (l == "hardsigmoid") {
      a.kind = ActKind::HardSigmoid;
      a.alpha = takeAlpha(0.2);
      a.beta = takeBeta(0.5);
    } else if (l == "elu") {
      a.kind = ActKind::Elu;
      a.alpha = takeAlpha(1.0);
    } else if (l == "softsign") {
      a.kind = ActKind::Softsign;
    } else if (l == "softplus") {
      a.kind = ActKind::Softplus;
    } else {
      ctx.fail("unsupported activation function '", n,
               "' (expected Relu, Tanh, Sigmoid, Affine, LeakyRelu, ThresholdedRelu, ScaledTanh, "
               "HardSigmoid, Elu, Softsign or Softplus)");
    }
    acts.push_back(a);
  }
  return acts;
}

int64_t numDirections(const AttrReader &ctx) {
  std::string dir = ctx.attrString("direction", "forward");
  if (dir == "forward" || dir == "reverse")
    return 1;
  if (dir == "bidirectional")
    return 2;
  ctx.fail("attribute 'direction' is '", dir, "', expected forward, reverse or bidirectional");
}

int64_t layoutOf(const AttrReader &ctx) {
  if (ctx.opset() < 14)
    return 0;
  int64_t layout = ctx.attrInt("layout", 0);
  if (layout != 0 && layout != 1)
    ctx.fail("attribute 'layout' is ", layout, ", expected 0 or 1");
  return layout;
}

//===----------------------------------------------------------------------===//
// Inference
//===----------------------------------------------------------------------===//

InferFn inferRecurrent(Cell cell) {
  return [cell](InferContext &ctx) {
    const Type &xt = ctx.inputType(0);
    DType dt = xt.dtype;
    const Shape &xs = tensorShape(ctx, 0);
    int64_t numDir = numDirections(ctx);
    int64_t layout = layoutOf(ctx);
    Dim seq, batch, hidden;
    if (xs.rankKnown) {
      if (xs.rank() != 3)
        ctx.fail("input X has rank ", xs.rank(), ", expected 3");
      seq = xs.dims[layout ? 1 : 0];
      batch = xs.dims[layout ? 0 : 1];
    }
    if (ctx.hasAttr("hidden_size")) {
      int64_t h = ctx.attrInt("hidden_size");
      if (h <= 0)
        ctx.fail("attribute 'hidden_size' is ", h, ", expected > 0");
      hidden = Dim(h);
    } else if (ctx.numInputs() > 2 && ctx.hasInput(2)) {
      const Shape &rs = tensorShape(ctx, 2);
      if (rs.rankKnown && rs.rank() == 3)
        hidden = rs.dims[2];
    }
    (void)gateCount(cell);
    if (ctx.numOutputs() > 0 && ctx.hasOutput(0)) {
      std::vector<Dim> y = layout ? std::vector<Dim>{batch, seq, Dim(numDir), hidden}
                                  : std::vector<Dim>{seq, Dim(numDir), batch, hidden};
      ctx.setOutputType(0, Type::tensor(dt, Shape(y)));
    }
    std::vector<Dim> st = layout ? std::vector<Dim>{batch, Dim(numDir), hidden}
                                 : std::vector<Dim>{Dim(numDir), batch, hidden};
    for (size_t i = 1; i < ctx.numOutputs(); ++i)
      if (ctx.hasOutput(i))
        ctx.setOutputType(i, Type::tensor(dt, Shape(st)));
  };
}

//===----------------------------------------------------------------------===//
// Kernel
//===----------------------------------------------------------------------===//

template <class A> std::vector<A> toAcc(const Tensor &t) {
  std::vector<double> d = t.toDoubleVector();
  return std::vector<A>(d.begin(), d.end());
}

void checkShape(const KernelContext &ctx, const Tensor &t, const char *name,
                const std::vector<int64_t> &want) {
  if (t.shape() != want)
    ctx.fail("input ", name, " has shape ", t.shapeString(), ", expected ", shapeToString(want));
}

template <class T> void runRecurrentT(KernelContext &ctx, Cell cell) {
  using A = std::conditional_t<std::is_same_v<T, double>, double, float>;
  const Tensor &X = ctx.input(0);
  const Tensor &W = ctx.input(1);
  const Tensor &R = ctx.input(2);
  const int64_t G = gateCount(cell);
  const int64_t numDir = numDirections(ctx);
  const int64_t layout = layoutOf(ctx);
  const std::string direction = ctx.attrString("direction", "forward");

  if (X.rank() != 3)
    ctx.fail("input X has shape ", X.shapeString(), ", expected rank 3");
  const int64_t seq = X.dim(layout ? 1 : 0);
  const int64_t batch = X.dim(layout ? 0 : 1);
  const int64_t I = X.dim(2);
  if (R.rank() != 3)
    ctx.fail("input R has shape ", R.shapeString(), ", expected rank 3");
  const int64_t H = ctx.hasAttr("hidden_size") ? ctx.attrInt("hidden_size") : R.dim(2);
  if (H <= 0)
    ctx.fail("hidden size is ", H, ", expected > 0");
  const int64_t GH = checkedMul(ctx, G, H, "gates * hidden_size");

  auto checkType = [&](const Tensor &t, const char *name) {
    if (t.dtype() != X.dtype())
      ctx.fail("input ", name, " has element type ", dtypeName(t.dtype()), ", expected ",
               dtypeName(X.dtype()), " (the type of X)");
  };
  checkType(W, "W");
  checkType(R, "R");
  checkShape(ctx, W, "W", {numDir, GH, I});
  checkShape(ctx, R, "R", {numDir, GH, H});

  std::vector<A> x = toAcc<A>(X), w = toAcc<A>(W), r = toAcc<A>(R);
  std::vector<A> bias(size_t(numDir * 2 * GH), A(0));
  if (ctx.hasInput(3)) {
    const Tensor &B = ctx.input(3);
    checkType(B, "B");
    checkShape(ctx, B, "B", {numDir, 2 * GH});
    bias = toAcc<A>(B);
  }
  std::vector<int64_t> lens(size_t(batch), seq);
  if (ctx.hasInput(4)) {
    const Tensor &L = ctx.input(4);
    if (L.dtype() != DType::i32 && L.dtype() != DType::i64)
      ctx.fail("input sequence_lens has element type ", dtypeName(L.dtype()), ", expected int32");
    checkShape(ctx, L, "sequence_lens", {batch});
    lens = L.toInt64Vector();
    for (int64_t l : lens)
      if (l < 0 || l > seq)
        ctx.fail("sequence_lens value ", l, " is out of range [0, ", seq, "]");
  }
  const std::vector<int64_t> stateShape =
      layout ? std::vector<int64_t>{batch, numDir, H} : std::vector<int64_t>{numDir, batch, H};
  auto stateIndex = [&](int64_t d, int64_t b) {
    return layout ? (b * numDir + d) * H : (d * batch + b) * H;
  };
  std::vector<A> h0(size_t(numDir * batch * H), A(0)), c0(size_t(numDir * batch * H), A(0));
  if (ctx.hasInput(5)) {
    const Tensor &t = ctx.input(5);
    checkType(t, "initial_h");
    checkShape(ctx, t, "initial_h", stateShape);
    h0 = toAcc<A>(t);
  }
  std::vector<A> peep(size_t(numDir * 3 * H), A(0));
  if (cell == Cell::LSTM) {
    if (ctx.hasInput(6)) {
      const Tensor &t = ctx.input(6);
      checkType(t, "initial_c");
      checkShape(ctx, t, "initial_c", stateShape);
      c0 = toAcc<A>(t);
    }
    if (ctx.hasInput(7)) {
      const Tensor &t = ctx.input(7);
      checkType(t, "P");
      checkShape(ctx, t, "P", {numDir, 3 * H});
      peep = toAcc<A>(t);
    }
  }
  std::vector<Activation> acts = parseActivations(ctx, cell, numDir);
  const bool hasClip = ctx.hasAttr("clip");
  const A clip = A(ctx.attrFloat("clip", 0.f));
  if (hasClip && !(clip > A(0)))
    ctx.fail("attribute 'clip' is ", clip, ", expected > 0");
  const bool linearBeforeReset = cell == Cell::GRU && ctx.attrInt("linear_before_reset", 0) != 0;
  const bool inputForget = cell == Cell::LSTM && ctx.attrInt("input_forget", 0) != 0;

  auto clipv = [&](A v) { return hasClip ? std::max(-clip, std::min(clip, v)) : v; };

  const std::vector<int64_t> yShape = layout ? std::vector<int64_t>{batch, seq, numDir, H}
                                             : std::vector<int64_t>{seq, numDir, batch, H};
  std::vector<A> y(size_t(checkedNumel(yShape, sizeof(A), "Y")), A(0));
  std::vector<A> yh(size_t(numDir * batch * H), A(0)), yc(size_t(numDir * batch * H), A(0));

  std::vector<A> gates(static_cast<size_t>(GH)), hr(static_cast<size_t>(GH));
  std::vector<A> h(static_cast<size_t>(H)), c(static_cast<size_t>(H)), hn(static_cast<size_t>(H));
  for (int64_t d = 0; d < numDir; ++d) {
    const bool reverse = direction == "reverse" || (numDir == 2 && d == 1);
    const A *wd = w.data() + d * GH * I;
    const A *rd = r.data() + d * GH * H;
    const A *wb = bias.data() + d * 2 * GH;
    const A *rb = wb + GH;
    const A *pd = peep.data() + d * 3 * H;
    const Activation &f = acts[size_t(d * actCount(cell))];
    const Activation &g = cell == Cell::RNN ? f : acts[size_t(d * actCount(cell) + 1)];
    const Activation &hact = cell == Cell::LSTM ? acts[size_t(d * actCount(cell) + 2)] : f;
    for (int64_t b = 0; b < batch; ++b) {
      const int64_t si = stateIndex(d, b);
      std::copy(h0.begin() + si, h0.begin() + si + H, h.begin());
      std::copy(c0.begin() + si, c0.begin() + si + H, c.begin());
      const int64_t len = lens[size_t(b)];
      for (int64_t s = 0; s < len; ++s) {
        const int64_t t = reverse ? len - 1 - s : s;
        const A *xt = x.data() + (layout ? (b * seq + t) * I : (t * batch + b) * I);
        // gates = x W^T + Wb ; hr = h R^T + Rb
        for (int64_t j = 0; j < GH; ++j) {
          const A *wr = wd + j * I;
          A acc = wb[j];
          for (int64_t k = 0; k < I; ++k)
            acc += wr[k] * xt[k];
          gates[size_t(j)] = acc;
          const A *rr = rd + j * H;
          A acc2 = rb[j];
          for (int64_t k = 0; k < H; ++k)
            acc2 += rr[k] * h[size_t(k)];
          hr[size_t(j)] = acc2;
        }
        if (cell == Cell::RNN) {
          for (int64_t j = 0; j < H; ++j)
            hn[size_t(j)] = f(clipv(gates[size_t(j)] + hr[size_t(j)]));
        } else if (cell == Cell::GRU) {
          // gate order z, r, h; keep z in gates[0,H), r in gates[H,2H)
          for (int64_t j = 0; j < H; ++j) {
            gates[size_t(j)] = f(clipv(gates[size_t(j)] + hr[size_t(j)]));
            gates[size_t(H + j)] = f(clipv(gates[size_t(H + j)] + hr[size_t(H + j)]));
            if (linearBeforeReset)
              hn[size_t(j)] = gates[size_t(2 * H + j)] + gates[size_t(H + j)] * hr[size_t(2 * H + j)];
          }
          if (!linearBeforeReset) {
            for (int64_t j = 0; j < H; ++j) {
              const A *rr = rd + (2 * H + j) * H;
              A acc = rb[2 * H + j];
              for (int64_t k = 0; k < H; ++k)
                acc += rr[k] * (gates[size_t(H + k)] * h[size_t(k)]);
              hn[size_t(j)] = gates[size_t(2 * H + j)] + acc;
            }
          }
          for (int64_t j = 0; j < H; ++j) {
            A ht = g(clipv(hn[size_t(j)]));
            A z = gates[size_t(j)];
            hn[size_t(j)] = (A(1) - z) * ht + z * h[size_t(j)];
          }
        } else {
          // gate order i, o, f, c; peepholes P order i, o, f
          for (int64_t j = 0; j < H; ++j) {
            A cp = c[size_t(j)];
            A ig = f(clipv(gates[size_t(j)] + hr[size_t(j)] + pd[j] * cp));
            A fg = inputForget ? A(1) - ig
                               : f(clipv(gates[size_t(2 * H + j)] + hr[size_t(2 * H + j)] +
                                         pd[2 * H + j] * cp));
            A cg = g(clipv(gates[size_t(3 * H + j)] + hr[size_t(3 * H + j)]));
            A cn = fg * cp + ig * cg;
            A og = f(clipv(gates[size_t(H + j)] + hr[size_t(H + j)] + pd[H + j] * cn));
            c[size_t(j)] = cn;
            hn[size_t(j)] = og * hact(cn);
          }
        }
        std::copy(hn.begin(), hn.end(), h.begin());
        A *yt = y.data() + (layout ? ((b * seq + t) * numDir + d) * H
                                   : ((t * numDir + d) * batch + b) * H);
        std::copy(h.begin(), h.end(), yt);
      }
      std::copy(h.begin(), h.end(), yh.begin() + si);
      std::copy(c.begin(), c.end(), yc.begin() + si);
    }
  }

  auto emit = [&](size_t i, const std::vector<int64_t> &shape, const std::vector<A> &v) {
    if (!ctx.hasOutput(i))
      return;
    Tensor out(X.dtype(), shape);
    T *o = out.data<T>();
    for (size_t k = 0; k < v.size(); ++k)
      o[k] = T(v[k]);
    ctx.setOutput(i, std::move(out));
  };
  emit(0, yShape, y);
  emit(1, stateShape, yh);
  if (cell == Cell::LSTM)
    emit(2, stateShape, yc);
}

KernelFn recurrentKernel(Cell cell) {
  return [cell](KernelContext &ctx) {
    dispatchFloat(
        ctx.input(0).dtype(), [&](auto tag) { runRecurrentT<decltype(tag)>(ctx, cell); },
        "RNN input X");
  };
}

} // namespace

// --- lowerings of the Recurrent ops
// The sequence length is static, so time is unrolled: one chain of computes per step, for all
// directions and batch rows at once. X W^T for every time step is one contraction up front, R
// is transposed once; each step then reduces H_{t-1} R^T and updates the state in the
// reference's order (gates, clip, activations, GRU's linear_before_reset, LSTM's peepholes and
// input_forget). Each step's state (and GRU's r * H_{t-1}) is a root stage: the default
// schedule inlines elementwise stages, and inlining a state into the next step would re-expand
// the whole recurrence, so the state is written as a one-term reduction, which stays a loop
// nest of its own. sequence_lens (a constant or a run-time input) masks the steps past a row's
// length: the state is kept, Y gets zeros, and the reverse direction starts at the row's last
// valid time. docs/lowering.md describes the costs.
namespace {

using loop::Expr;
using loop::Var;

/// An activation of the reference (Activation::operator()) as an expression of x's type.
Expr activationExpr(const Activation &a, const Expr &x) {
  auto c = [&](double v) { return loop::makeConst(x.type(), v); };
  switch (a.kind) {
  case ActKind::Relu: return loop::select(x > c(0), x, c(0));
  case ActKind::Tanh: return loop::tanh(x);
  case ActKind::Sigmoid: return loop::sigmoid(x);
  case ActKind::Affine: return c(a.alpha) * x + c(a.beta);
  case ActKind::LeakyRelu: return loop::select(x >= c(0), x, c(a.alpha) * x);
  case ActKind::ThresholdedRelu: return loop::select(x > c(a.alpha), x, c(0));
  case ActKind::ScaledTanh: return c(a.alpha) * loop::tanh(c(a.beta) * x);
  case ActKind::HardSigmoid: return loop::max(c(0), loop::min(c(1), c(a.alpha) * x + c(a.beta)));
  case ActKind::Elu: return loop::select(x >= c(0), x, c(a.alpha) * (loop::exp(x) - c(1)));
  case ActKind::Softsign: return x / (c(1) + loop::fabs(x));
  case ActKind::Softplus:
    return loop::log(loop::exp(-loop::fabs(x)) + c(1)) + loop::max(x, c(0));
  }
  return x;
}

LowerFn lowerRecurrent(Cell cell) {
  return [cell](LowerContext &ctx) {
    const DType dt = ctx.inputDType(0);
    lowering::checkDType(ctx, dt, "X");
    ctx.check(isFloat(dt), "lowering of ", ctx.node().opType, " handles float inputs only, got ",
              dtypeName(dt));
    const int64_t G = gateCount(cell);
    const int64_t D = numDirections(ctx);
    const int64_t layout = layoutOf(ctx);
    const std::string direction = ctx.attrString("direction", "forward");

    const std::vector<int64_t> xs = ctx.inputShape(0);
    ctx.check(xs.size() == 3, "input X has shape ", shapeToString(xs), ", expected rank 3");
    const int64_t T = xs[layout ? 1 : 0], B = xs[layout ? 0 : 1], I = xs[2];
    ctx.check(T > 0 && B > 0 && I > 0, "input X has shape ", shapeToString(xs),
              ", lowering expects a sequence length, batch and input size > 0");
    const std::vector<int64_t> rs = ctx.inputShape(2);
    ctx.check(rs.size() == 3, "input R has shape ", shapeToString(rs), ", expected rank 3");
    const int64_t H = ctx.hasAttr("hidden_size") ? ctx.attrInt("hidden_size") : rs[2];
    ctx.check(H > 0, "hidden size is ", H, ", expected > 0");
    const int64_t GH = G * H;
    auto checkInput = [&](size_t i, const char *what, const std::vector<int64_t> &want) {
      ctx.check(ctx.inputDType(i) == dt, "input ", what, " has element type ",
                dtypeName(ctx.inputDType(i)), ", expected ", dtypeName(dt), " (the type of X)");
      ctx.check(ctx.inputShape(i) == want, "input ", what, " has shape ",
                shapeToString(ctx.inputShape(i)), ", expected ", shapeToString(want));
    };
    checkInput(1, "W", {D, GH, I});
    checkInput(2, "R", {D, GH, H});
    const std::vector<int64_t> stateShape =
        layout ? std::vector<int64_t>{B, D, H} : std::vector<int64_t>{D, B, H};
    const bool hasB = ctx.hasInput(3), hasH0 = ctx.hasInput(5);
    const bool hasC0 = cell == Cell::LSTM && ctx.hasInput(6);
    const bool hasP = cell == Cell::LSTM && ctx.hasInput(7);
    if (hasB)
      checkInput(3, "B", {D, 2 * GH});
    if (hasH0)
      checkInput(5, "initial_h", stateShape);
    if (hasC0)
      checkInput(6, "initial_c", stateShape);
    if (hasP)
      checkInput(7, "P", {D, 3 * H});

    // sequence_lens: none needed when absent or a constant of full lengths; else loaded.
    bool masked = false;
    if (ctx.hasInput(4)) {
      DType lt = ctx.inputDType(4);
      ctx.check(lt == DType::i32 || lt == DType::i64, "input sequence_lens has element type ",
                dtypeName(lt), ", expected int32");
      ctx.check(ctx.inputShape(4) == std::vector<int64_t>{B}, "input sequence_lens has shape ",
                shapeToString(ctx.inputShape(4)), ", expected ",
                shapeToString(std::vector<int64_t>{B}));
      masked = true;
      if (ctx.inputConstant(4)) {
        std::vector<int64_t> lens = ctx.constantInts(4, "sequence_lens");
        for (int64_t l : lens)
          ctx.check(l >= 0 && l <= T, "sequence_lens value ", l, " is out of range [0, ", T, "]");
        masked = std::any_of(lens.begin(), lens.end(), [&](int64_t l) { return l != T; });
      }
    }

    const std::vector<Activation> acts = parseActivations(ctx, cell, D);
    const bool hasClip = ctx.hasAttr("clip");
    const double clip = ctx.attrFloat("clip", 0.f);
    ctx.check(!hasClip || clip > 0, "attribute 'clip' is ", clip, ", expected > 0");
    const bool linearBeforeReset = cell == Cell::GRU && ctx.attrInt("linear_before_reset", 0) != 0;
    const bool inputForget = cell == Cell::LSTM && ctx.attrInt("input_forget", 0) != 0;

    const te::Tensor X = ctx.input(0), W = ctx.input(1), R = ctx.input(2);
    const Expr zero = lowering::constant(dt, 0.0), one = lowering::constant(dt, 1.0);
    auto lit = [&](int64_t v) { return Expr(v); };
    auto clipped = [&](const Expr &v) {
      if (!hasClip)
        return v;
      Expr c = lowering::constant(dt, clip);
      return loop::max(-c, loop::min(c, v));
    };
    // The activation `which` (0: f, 1: g, 2: h) of direction d (a literal or an axis); one
    // expression when both directions use the same function.
    auto act = [&](int which, const Expr &d, const Expr &x) {
      const Activation &a0 = acts[size_t(which)];
      Expr fwd = activationExpr(a0, x);
      if (D == 1)
        return fwd;
      const Activation &a1 = acts[size_t(actCount(cell) + which)];
      if (a1.kind == a0.kind && a1.alpha == a0.alpha && a1.beta == a0.beta)
        return fwd;
      return loop::select(d == lit(0), fwd, activationExpr(a1, x));
    };
    // Row b's length as i64, clamped into [0, T] (only when masked).
    auto lenOf = [&](const Expr &b) {
      Expr l = loop::cast(DType::i64, ctx.input(4).access({b}));
      return loop::min(loop::max(l, lit(0)), lit(T));
    };
    // `fwd` for a forward direction d, `rev` for a reverse one (bidirectional: d == 1).
    const bool anyReverse = direction != "forward";
    auto byDirection = [&](const Expr &d, const Expr &fwd, const Expr &rev) -> Expr {
      if (!anyReverse)
        return fwd;
      if (D == 1)
        return rev;
      return loop::select(d == lit(1), rev, fwd);
    };
    // The time step `s` (a literal) reads in direction d, row b: s forward; len - 1 - s (or
    // T - 1 - s) reverse, clamped to stay in bounds on masked steps.
    auto timeOf = [&](int64_t s, const Expr &d, const Expr &b) -> Expr {
      if (!anyReverse)
        return lit(s);
      Expr rev = masked ? loop::max(lenOf(b) - lit(1 + s), lit(0)) : lit(T - 1 - s);
      return byDirection(d, lit(s), rev);
    };
    auto stateIndex = [&](const Expr &d, const Expr &b, const Expr &k) {
      return layout ? std::vector<Expr>{b, d, k} : std::vector<Expr>{d, b, k};
    };
    auto biasAt = [&](const Expr &d, const Expr &j) { // Wb[j] + Rb[j]
      return ctx.input(3).access({d, j}) + ctx.input(3).access({d, j + lit(GH)});
    };

    // X W^T for every time step: XW[t, d, b, j] = sum_k X[t, b, k] W[d, j, k].
    te::IterVar kx = te::reduce_axis({lit(0), lit(I)}, "k");
    te::Tensor XW = ctx.compute(
        lowering::shapeExprs({T, D, B, GH}),
        [&](Var t, Var d, Var b, Var j) {
          Expr x = layout ? X(b, t, kx) : X(t, b, kx);
          return te::sum(x * W(d, j, kx), {kx});
        },
        "xw");

    // R transposed once per run, RT[d, k, j] = R[d, j, k]: each step's h R^T then reads
    // whole rows of RT along j (the vectorized axis) instead of a column of R per lane.
    te::Tensor RT = lowering::storedCompute(
        ctx, lowering::shapeExprs({D, H, GH}),
        [&](const std::vector<Var> &v) { return R(v[0], v[2], v[1]); }, "r_transposed");

    // The state before step 0, then each step's (functions of d, b, k).
    using StateFn = std::function<Expr(const Expr &, const Expr &, const Expr &)>;
    StateFn hPrev = [&](const Expr &d, const Expr &b, const Expr &k) {
      return hasH0 ? ctx.input(5).access(stateIndex(d, b, k)) : zero;
    };
    StateFn cPrev = [&](const Expr &d, const Expr &b, const Expr &k) {
      return hasC0 ? ctx.input(6).access(stateIndex(d, b, k)) : zero;
    };
    bool hIsZero = !hasH0;
    std::vector<te::Tensor> hSteps;
    const std::vector<Expr> stShape = lowering::shapeExprs({D, B, H});

    for (int64_t s = 0; s < T; ++s) {
      const std::string st = "step" + std::to_string(s);
      // The gate pre-activation of gate `gate` (unit j): x W^T + Wb + Rb (+ h R^T).
      std::optional<te::Tensor> HR;
      auto hr = [&](int64_t rows, const std::string &what) {
        te::IterVar kh = te::reduce_axis({lit(0), lit(H)}, "k");
        return ctx.compute(
            lowering::shapeExprs({D, B, rows}),
            [&](Var d, Var b, Var j) { return te::sum(hPrev(d, b, kh) * RT(d, kh, j), {kh}); },
            st + what);
      };
      const int64_t recurrentRows = cell == Cell::GRU && !linearBeforeReset ? 2 * H : GH;
      if (!hIsZero)
        HR = hr(recurrentRows, "_hr");
      auto pre = [&](int64_t gate, const Expr &d, const Expr &b, const Expr &j, bool withHR,
                     bool withRb) {
        Expr jj = j + lit(gate * H);
        Expr v = XW(timeOf(s, d, b), d, b, jj);
        if (hasB)
          v = v + (withRb ? biasAt(d, jj) : ctx.input(3).access({d, jj}));
        if (withHR && HR)
          v = v + (*HR)(d, b, jj);
        return v;
      };
      auto valid = [&](const Expr &b) { return lit(s) < lenOf(b); };
      auto keepIfMasked = [&](const Expr &b, const Expr &next, const Expr &prev) {
        return masked ? loop::select(valid(b), next, prev) : next;
      };

      te::Tensor Hs, Cs;
      if (cell == Cell::RNN) {
        Hs = lowering::storedCompute(ctx, stShape, [&](const std::vector<Var> &v) {
          Expr h = act(0, v[0], clipped(pre(0, v[0], v[1], v[2], true, true)));
          return keepIfMasked(v[1], h, hPrev(v[0], v[1], v[2]));
        }, st + "_h");
      } else if (cell == Cell::GRU) {
        auto gate = [&](int64_t g, const Expr &d, const Expr &b, const Expr &j) {
          return act(0, d, clipped(pre(g, d, b, j, true, true)));
        };
        std::function<Expr(const Expr &, const Expr &, const Expr &)> hidden;
        if (linearBeforeReset) {
          hidden = [&](const Expr &d, const Expr &b, const Expr &j) {
            Expr jh = j + lit(2 * H);
            Expr rec = HR ? (*HR)(d, b, jh) : zero;
            if (hasB)
              rec = rec + ctx.input(3).access({d, jh + lit(GH)});
            return pre(2, d, b, j, false, false) + gate(1, d, b, j) * rec;
          };
        } else {
          // (r * H_{t-1}) R_h^T: r * H_{t-1} as a root stage, then the reduction.
          std::optional<te::Tensor> RHR;
          if (!hIsZero) {
            te::Tensor RH = lowering::storedCompute(ctx, stShape, [&](const std::vector<Var> &v) {
              return gate(1, v[0], v[1], v[2]) * hPrev(v[0], v[1], v[2]);
            }, st + "_rh");
            te::IterVar kh = te::reduce_axis({lit(0), lit(H)}, "k");
            RHR = ctx.compute(stShape, [&](Var d, Var b, Var j) {
              return te::sum(RH(d, b, kh) * RT(d, kh, j + lit(2 * H)), {kh});
            }, st + "_rhr");
          }
          hidden = [&, RHR](const Expr &d, const Expr &b, const Expr &j) {
            Expr jh = j + lit(2 * H);
            Expr rec = RHR ? (*RHR)(d, b, j) : zero;
            if (hasB)
              rec = rec + ctx.input(3).access({d, jh + lit(GH)});
            return pre(2, d, b, j, false, false) + rec;
          };
        }
        Hs = lowering::storedCompute(ctx, stShape, [&](const std::vector<Var> &v) {
          Expr ht = act(1, v[0], clipped(hidden(v[0], v[1], v[2])));
          Expr z = gate(0, v[0], v[1], v[2]);
          Expr hp = hPrev(v[0], v[1], v[2]);
          return keepIfMasked(v[1], (one - z) * ht + z * hp, hp);
        }, st + "_h");
      } else {
        // Gates i, o, f, c; peepholes P: i, o, f.
        auto peep = [&](int64_t which, const Expr &d, const Expr &j, const Expr &c) {
          return hasP ? ctx.input(7).access({d, j + lit(which * H)}) * c : Expr();
        };
        auto withPeep = [&](Expr v, const Expr &p) { return p.defined() ? v + p : v; };
        auto inputGate = [&](const Expr &d, const Expr &b, const Expr &j, const Expr &cp) {
          return act(0, d, clipped(withPeep(pre(0, d, b, j, true, true), peep(0, d, j, cp))));
        };
        Cs = lowering::storedCompute(ctx, stShape, [&](const std::vector<Var> &v) {
          const Expr d = v[0], b = v[1], j = v[2];
          Expr cp = cPrev(d, b, j);
          Expr ig = inputGate(d, b, j, cp);
          Expr fg = inputForget ? one - ig
                                : act(0, d, clipped(withPeep(pre(2, d, b, j, true, true),
                                                             peep(2, d, j, cp))));
          Expr cg = act(1, d, clipped(pre(3, d, b, j, true, true)));
          return keepIfMasked(b, fg * cp + ig * cg, cp);
        }, st + "_c");
        Hs = lowering::storedCompute(ctx, stShape, [&](const std::vector<Var> &v) {
          const Expr d = v[0], b = v[1], j = v[2];
          Expr cn = Cs(d, b, j);
          Expr og = act(0, d, clipped(withPeep(pre(1, d, b, j, true, true), peep(1, d, j, cn))));
          return keepIfMasked(b, og * act(2, d, cn), hPrev(d, b, j));
        }, st + "_h");
        cPrev = [Cs](const Expr &d, const Expr &b, const Expr &k) { return Cs(d, b, k); };
      }
      hSteps.push_back(Hs);
      hPrev = [Hs](const Expr &d, const Expr &b, const Expr &k) { return Hs(d, b, k); };
      hIsZero = false;
    }

    // Y[t, d, b, j]: the state of the step that ran at time t (zeros past the row's length).
    // The step is data dependent (reverse with sequence_lens), so the load is a balanced tree
    // of selects over the steps.
    if (ctx.hasOutput(0)) {
      auto y = [&](const Expr &t, const Expr &d, const Expr &b, const Expr &j) -> Expr {
        Expr len = masked ? lenOf(b) : lit(T);
        Expr step = byDirection(d, t, len - lit(1) - t);
        Expr v = lowering::balancedTree(
            0, size_t(T), [&](size_t k) { return hSteps[k](d, b, j); },
            [&](size_t mid, const Expr &lo, const Expr &hi) {
              return loop::select(step < lit(int64_t(mid)), lo, hi);
            });
        return masked ? loop::select(t < len, v, zero) : v;
      };
      std::vector<int64_t> yShape = layout ? std::vector<int64_t>{B, T, D, H}
                                           : std::vector<int64_t>{T, D, B, H};
      ctx.setOutput(0, ctx.compute(lowering::shapeExprs(yShape), [&](Var a, Var c, Var e, Var j) {
        return layout ? y(c, e, a, j) : y(a, c, e, j);
      }));
    }
    // Y_h, Y_c: the last step's state (rows past their length kept theirs).
    auto emitState = [&](size_t out, const StateFn &last, const char *what) {
      if (out >= ctx.numOutputs() || !ctx.hasOutput(out))
        return;
      ctx.setOutput(out, ctx.compute(lowering::shapeExprs(stateShape), [&](Var a, Var c, Var j) {
        return layout ? last(c, a, j) : last(a, c, j);
      }, what));
    };
    emitState(1, hPrev, "y_h");
    if (cell == Cell::LSTM)
      emitState(2, cPrev, "y_c");
  };
}

void attachRecurrentLowerings(OpRegistry &r) {
  r.setLower("RNN", lowerRecurrent(Cell::RNN));
  r.setLower("GRU", lowerRecurrent(Cell::GRU));
  r.setLower("LSTM", lowerRecurrent(Cell::LSTM));
}

} // namespace
// --- end of the Recurrent lowerings

void registerRecurrentOps(OpRegistry &r) {
  r.add(OpDef{"RNN", "", 1, 17, 3, 6, 0, 2, "float types",
              "activations: all of the spec (Relu, Tanh, Sigmoid, Affine, LeakyRelu, "
              "ThresholdedRelu, ScaledTanh, HardSigmoid, Elu, Softsign, Softplus); "
              "activation_alpha/beta consumed in order by the functions that take them",
              inferRecurrent(Cell::RNN), recurrentKernel(Cell::RNN)});
  r.add(OpDef{"GRU", "", 1, 17, 3, 6, 0, 2, "float types",
              "linear_before_reset, clip, layout, all spec activations",
              inferRecurrent(Cell::GRU), recurrentKernel(Cell::GRU)});
  r.add(OpDef{"LSTM", "", 1, 17, 3, 8, 0, 3, "float types",
              "peepholes, input_forget (f = 1 - i), clip, layout, all spec activations",
              inferRecurrent(Cell::LSTM), recurrentKernel(Cell::LSTM)});
  attachRecurrentLowerings(r);
}

} // namespace tessel
