//===- Recurrent.cpp - Recurrent ops ---------------------------------------===//
//
// RNN, GRU and LSTM (ai.onnx, opsets 1..17): forward / reverse / bidirectional, sequence_lens,
// initial states, LSTM peepholes and input_forget, GRU linear_before_reset, every activation
// function of the spec with activation_alpha/activation_beta, clip, and the opset-14 layout.
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"

#include <algorithm>
#include <cctype>
#include <cmath>
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
}

} // namespace tessel
