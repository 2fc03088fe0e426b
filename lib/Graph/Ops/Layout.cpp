//===- Layout.cpp - tessel's internal blocked-layout ops ------------------===//
//
// Ops in domain "tessel" (opset 1) that the layout pass (lib/Graph/Transforms/
// TransformLayout.cpp, `transform-layout`) introduces; never in a model file. They carry
// activations in TVM's NCHW[x]c layout: [N, C/c, H, W, c], channel block c innermost, so that a
// convolution reads a vector of c output channels' weights and broadcasts one input value.
//
//   tessel::ToBlocked(X[N,C,H,W]) {block = c}           -> [N, C/c, H, W, c]
//   tessel::FromBlocked(Y[N,Cb,H,W,c])                  -> [N, Cb*c, H, W]
//   tessel::ConvNCHWc(Xb[N,IC/ib,H,W,ib], W[OC/ob, IC/ib, KH, KW, ib, ob], B[OC/ob, ob]?)
//       {kernel_shape, strides, pads = [top, left, bottom, right], dilations, group}
//                                                       -> [N, OC/ob, OH, OW, ob]
//   tessel::ConvWinogradNCHWc(Xb[N,IC/ib,H,W,ib], U[(m+2)^2, OC/ob, IC, ob], B[OC/ob, ob]?)
//       {tile = m, pads}  a 3x3 stride-1 conv as Winograd F(m x m, 3 x 3) (Winograd.h)
//                                                       -> [N, OC/ob, OH, OW, ob]
//   tessel::MaxPoolNCHWc(Y[N,Cb,H,W,c]) {kernel_shape, strides, pads}  -> [N, Cb, OH, OW, c]
//
// ConvNCHWc with group = 1 is a regular 2-D convolution; with group = C (depthwise, one output
// channel per input channel) the weights are [C/c, 1, KH, KW, 1, c] and input and output are
// blocked by the same c. Each op has shape inference, a reference kernel (the interpreter runs
// the rewritten graph, so `tessel-opt --verify-numerics` checks the pass) and a TE lowering
// (docs/compile.md, "Convolution"; the schedule is lib/Compiler/ScheduleConv.cpp, which finds
// the conv's stages by the names given here: "convnchwc_..." reduction, its "_pad" input).
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/Lowering.h"
#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Winograd.h"

#include "OpUtils.h"

#include <algorithm>
#include <cmath>

namespace tessel {

namespace {

using loop::Expr;
using loop::Var;

/// The geometry of a ConvNCHWc node, from its attributes and input shapes (static dims).
struct BlockedConv {
  int64_t N, ICo, H, W, ib;        // input [N, ICo, H, W, ib]
  int64_t OCo, KH, KW, ob;         // weights [OCo, ICo or 1, KH, KW, ib or 1, ob]
  int64_t sh, sw, dh, dw;          // strides, dilations
  int64_t pt, pl, pb, pr;          // pads
  bool depthwise;
  int64_t OH, OW;
};

BlockedConv blockedConvGeom(const AttrReader &ctx, const std::vector<int64_t> &xs,
                            const std::vector<int64_t> &ws) {
  ctx.check(xs.size() == 5, "input Xb should be blocked [N, C/c, H, W, c], got ",
            shapeToString(xs));
  ctx.check(ws.size() == 6, "weights should be packed [OC/oc, IC/ic, KH, KW, ic, oc], got ",
            shapeToString(ws));
  BlockedConv g;
  g.N = xs[0], g.ICo = xs[1], g.H = xs[2], g.W = xs[3], g.ib = xs[4];
  g.OCo = ws[0], g.KH = ws[2], g.KW = ws[3], g.ob = ws[5];
  std::vector<int64_t> ks = ctx.attrInts("kernel_shape", {g.KH, g.KW});
  std::vector<int64_t> st = ctx.attrInts("strides", {1, 1});
  std::vector<int64_t> dl = ctx.attrInts("dilations", {1, 1});
  std::vector<int64_t> pd = ctx.attrInts("pads", {0, 0, 0, 0});
  ctx.check(ks.size() == 2 && ks[0] == g.KH && ks[1] == g.KW, "kernel_shape should be [", g.KH,
            ", ", g.KW, "] (the packed weights' KH, KW)");
  ctx.check(st.size() == 2 && st[0] > 0 && st[1] > 0, "strides should be 2 positive values");
  ctx.check(dl.size() == 2 && dl[0] > 0 && dl[1] > 0, "dilations should be 2 positive values");
  ctx.check(pd.size() == 4 && pd[0] >= 0 && pd[1] >= 0 && pd[2] >= 0 && pd[3] >= 0,
            "pads should be 4 non-negative values [top, left, bottom, right]");
  g.sh = st[0], g.sw = st[1], g.dh = dl[0], g.dw = dl[1];
  g.pt = pd[0], g.pl = pd[1], g.pb = pd[2], g.pr = pd[3];
  int64_t group = ctx.attrInt("group", 1);
  g.depthwise = group != 1;
  if (g.depthwise) {
    ctx.check(group == g.ICo * g.ib && ws[1] == 1 && ws[4] == 1 && g.OCo == g.ICo && g.ob == g.ib,
              "a grouped ConvNCHWc must be depthwise: group = C = ", g.ICo * g.ib,
              ", weights [C/c, 1, KH, KW, 1, c] with c = ", g.ib, ", got group ", group,
              " and weights ", shapeToString(ws));
  } else {
    ctx.check(ws[1] == g.ICo && ws[4] == g.ib, "weights ", shapeToString(ws),
              " do not match the input ", shapeToString(xs), ": expected [OC/oc, ", g.ICo, ", KH, KW, ",
              g.ib, ", oc]");
  }
  int64_t eh = (g.KH - 1) * g.dh + 1, ew = (g.KW - 1) * g.dw + 1;
  ctx.check(g.H + g.pt + g.pb >= eh && g.W + g.pl + g.pr >= ew, "the padded input ",
            g.H + g.pt + g.pb, "x", g.W + g.pl + g.pr, " is smaller than the dilated kernel ", eh,
            "x", ew);
  g.OH = (g.H + g.pt + g.pb - eh) / g.sh + 1;
  g.OW = (g.W + g.pl + g.pr - ew) / g.sw + 1;
  return g;
}

std::vector<int64_t> staticShapeOf(const InferContext &ctx, size_t i) {
  const Shape &s = tensorShape(ctx, i);
  if (!s.isStatic())
    ctx.fail("input ", i, " has shape ", s.str(), "; the layout ops need static shapes");
  return s.staticDims();
}

void checkF32(const AttrReader &ctx, DType dt) {
  ctx.check(dt == DType::f32, "the layout ops handle f32 only, got ", dtypeName(dt));
}

// --- ToBlocked

void toBlockedInfer(InferContext &ctx) {
  std::vector<int64_t> x = staticShapeOf(ctx, 0);
  checkF32(ctx, ctx.inputType(0).dtype);
  int64_t c = ctx.attrInt("block");
  ctx.check(x.size() == 4, "ToBlocked expects X as [N, C, H, W], got ", shapeToString(x));
  ctx.check(c > 0 && x[1] % c == 0, "block ", c, " should divide the channels ", x[1]);
  ctx.setOutputType(0, Type::tensor(DType::f32, Shape(std::vector<Dim>{
                                                    x[0], x[1] / c, x[2], x[3], c})));
}

void toBlockedKernel(KernelContext &ctx) {
  const Tensor &X = ctx.input(0);
  int64_t c = ctx.attrInt("block");
  int64_t N = X.dim(0), C = X.dim(1), HW = X.dim(2) * X.dim(3);
  Tensor Y(DType::f32, {N, C / c, X.dim(2), X.dim(3), c});
  const float *x = X.data<float>();
  float *y = Y.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t ch = 0; ch < C; ++ch)
      for (int64_t p = 0; p < HW; ++p)
        y[((n * (C / c) + ch / c) * HW + p) * c + ch % c] = x[(n * C + ch) * HW + p];
  ctx.setOutput(0, std::move(Y));
}

void toBlockedLower(LowerContext &ctx) {
  te::Tensor X = ctx.input(0);
  int64_t c = ctx.attrInt("block");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)),
                               [&](Var n, Var co, Var h, Var w, Var ci) {
                                 return X(n, co * c + ci, h, w);
                               }));
}

// --- FromBlocked

void fromBlockedInfer(InferContext &ctx) {
  std::vector<int64_t> x = staticShapeOf(ctx, 0);
  checkF32(ctx, ctx.inputType(0).dtype);
  ctx.check(x.size() == 5, "FromBlocked expects Y as [N, C/c, H, W, c], got ", shapeToString(x));
  ctx.setOutputType(0, Type::tensor(DType::f32,
                                    Shape(std::vector<Dim>{x[0], x[1] * x[4], x[2], x[3]})));
}

void fromBlockedKernel(KernelContext &ctx) {
  const Tensor &X = ctx.input(0);
  int64_t N = X.dim(0), Cb = X.dim(1), HW = X.dim(2) * X.dim(3), c = X.dim(4);
  Tensor Y(DType::f32, {N, Cb * c, X.dim(2), X.dim(3)});
  const float *x = X.data<float>();
  float *y = Y.data<float>();
  for (int64_t n = 0; n < N; ++n)
    for (int64_t ch = 0; ch < Cb * c; ++ch)
      for (int64_t p = 0; p < HW; ++p)
        y[(n * Cb * c + ch) * HW + p] = x[((n * Cb + ch / c) * HW + p) * c + ch % c];
  ctx.setOutput(0, std::move(Y));
}

void fromBlockedLower(LowerContext &ctx) {
  te::Tensor X = ctx.input(0);
  int64_t c = ctx.inputShape(0)[4];
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)),
                               [&](Var n, Var ch, Var h, Var w) {
                                 return X(n, ch / c, h, w, ch % c);
                               }));
}

// --- ConvNCHWc

/// A blocked conv's output type [N, OC/ob, OH, OW, ob] from its geometry (ConvNCHWc's or
/// ConvWinogradNCHWc's), after checking the optional bias input 2 is [OC/ob, ob].
template <class Geom> void setBlockedConvOutput(InferContext &ctx, const Geom &g) {
  if (ctx.hasInput(2)) {
    std::vector<int64_t> bs = staticShapeOf(ctx, 2);
    ctx.check(bs == std::vector<int64_t>{g.OCo, g.ob}, "bias should be [", g.OCo, ", ", g.ob,
              "] (blocked like the output channels), got ", shapeToString(bs));
  }
  ctx.setOutputType(0, Type::tensor(DType::f32, Shape(std::vector<Dim>{g.N, g.OCo, g.OH, g.OW,
                                                                       g.ob})));
}

void convNCHWcInfer(InferContext &ctx) {
  std::vector<int64_t> xs = staticShapeOf(ctx, 0), ws = staticShapeOf(ctx, 1);
  checkF32(ctx, ctx.inputType(0).dtype);
  checkF32(ctx, ctx.inputType(1).dtype);
  BlockedConv g = blockedConvGeom(ctx, xs, ws);
  setBlockedConvOutput(ctx, g);
}

void convNCHWcKernel(KernelContext &ctx) {
  const Tensor &X = ctx.input(0), &Wt = ctx.input(1);
  BlockedConv g = blockedConvGeom(ctx, X.shape(), Wt.shape());
  Tensor Y(DType::f32, {g.N, g.OCo, g.OH, g.OW, g.ob});
  const float *x = X.data<float>(), *w = Wt.data<float>();
  const float *b = ctx.hasInput(2) ? ctx.input(2).data<float>() : nullptr;
  float *y = Y.data<float>();
  const int64_t wICo = g.depthwise ? 1 : g.ICo, wib = g.depthwise ? 1 : g.ib;
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t oco = 0; oco < g.OCo; ++oco)
      for (int64_t oh = 0; oh < g.OH; ++oh)
        for (int64_t ow = 0; ow < g.OW; ++ow)
          for (int64_t oci = 0; oci < g.ob; ++oci) {
            double acc = 0;
            for (int64_t ico = 0; ico < wICo; ++ico)
              for (int64_t kh = 0; kh < g.KH; ++kh) {
                int64_t ih = oh * g.sh + kh * g.dh - g.pt;
                if (ih < 0 || ih >= g.H)
                  continue;
                for (int64_t kw = 0; kw < g.KW; ++kw) {
                  int64_t iw = ow * g.sw + kw * g.dw - g.pl;
                  if (iw < 0 || iw >= g.W)
                    continue;
                  for (int64_t ici = 0; ici < wib; ++ici) {
                    // depthwise: input block oco, lane oci; else input block ico, lane ici
                    int64_t xb = g.depthwise ? oco : ico, xl = g.depthwise ? oci : ici;
                    float xv = x[(((n * g.ICo + xb) * g.H + ih) * g.W + iw) * g.ib + xl];
                    float wv = w[((((oco * wICo + ico) * g.KH + kh) * g.KW + kw) * wib + ici) *
                                     g.ob + oci];
                    acc += double(xv) * double(wv);
                  }
                }
              }
            if (b)
              acc += b[oco * g.ob + oci];
            y[(((n * g.OCo + oco) * g.OH + oh) * g.OW + ow) * g.ob + oci] = float(acc);
          }
  ctx.setOutput(0, std::move(Y));
}

void convNCHWcLower(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0), ws = ctx.inputShape(1);
  BlockedConv g = blockedConvGeom(ctx, xs, ws);
  te::Tensor X = ctx.input(0), Wt = ctx.input(1);
  // A zero-padded copy of the input as its own stage (the schedule computes it once per
  // kernel, in parallel, for a regular conv; per chunk of output rows for a depthwise one), so
  // the convolution's hot loop reads it without a bounds select.
  te::Tensor Xp = X;
  if (g.pt || g.pl || g.pb || g.pr)
    Xp = ctx.compute(lowering::shapeExprs({g.N, g.ICo, g.H + g.pt + g.pb, g.W + g.pl + g.pr, g.ib}),
                     [&](Var n, Var c, Var h, Var w, Var ci) {
                       // Only the spatial indices are clamped and tested (as in MaxPoolNCHWc):
                       // the channel lanes stay one contiguous vector load, not a gather.
                       Expr ih = h - g.pt, iw = w - g.pl;
                       Expr inside = ih >= int64_t(0) && ih < g.H && iw >= int64_t(0) &&
                                     iw < g.W;
                       Expr v = X(n, c, loop::min(loop::max(ih, int64_t(0)), g.H - 1),
                                  loop::min(loop::max(iw, int64_t(0)), g.W - 1), ci);
                       return loop::select(inside, v, Expr(0.0f));
                     },
                     "pad");
  std::vector<Expr> out = lowering::shapeExprs(ctx.outputShape(0));
  bool bias = ctx.hasInput(2);
  te::Tensor Y;
  if (g.depthwise) {
    auto kh = te::reduce_axis({0, g.KH}, "rkh"), kw = te::reduce_axis({0, g.KW}, "rkw");
    Y = ctx.compute(out, [&](Var n, Var co, Var oh, Var ow, Var ci) {
      return te::sum(Xp(n, co, oh * g.sh + kh * g.dh, ow * g.sw + kw * g.dw, ci) *
                         Wt(co, 0, kh, kw, 0, ci),
                     {kh, kw});
    }, bias ? "nobias" : "");
  } else {
    auto rco = te::reduce_axis({0, g.ICo}, "rco"), kh = te::reduce_axis({0, g.KH}, "rkh"),
         kw = te::reduce_axis({0, g.KW}, "rkw"), rci = te::reduce_axis({0, g.ib}, "rci");
    Y = ctx.compute(out, [&](Var n, Var co, Var oh, Var ow, Var ci) {
      return te::sum(Xp(n, rco, oh * g.sh + kh * g.dh, ow * g.sw + kw * g.dw, rci) *
                         Wt(co, rco, kh, kw, rci, ci),
                     {rco, kh, kw, rci});
    }, bias ? "nobias" : "");
  }
  if (bias) {
    te::Tensor B = ctx.input(2), Acc = Y;
    Y = ctx.compute(out, [&](Var n, Var co, Var oh, Var ow, Var ci) {
      return Acc(n, co, oh, ow, ci) + B(co, ci);
    });
  }
  ctx.setOutput(0, Y);
}

// --- ConvWinogradNCHWc

/// The geometry of a ConvWinogradNCHWc node: a 3x3 stride-1 convolution computed as
/// F(m x m, 3 x 3) over output tiles of m x m (the last row and column of tiles may reach past
/// the output; those outputs are not stored).
struct WinogradConv {
  int64_t N, ICo, H, W, ib;   // input [N, ICo, H, W, ib]
  int64_t OCo, ob, m, alpha;  // transformed weights [alpha*alpha, OCo, ICo*ib, ob]
  int64_t pt, pl, pb, pr;     // pads
  int64_t OH, OW, TH, TW;     // output, tiles per column and row
};

WinogradConv winogradConvGeom(const AttrReader &ctx, const std::vector<int64_t> &xs,
                              const std::vector<int64_t> &us) {
  ctx.check(xs.size() == 5, "input Xb should be blocked [N, C/c, H, W, c], got ",
            shapeToString(xs));
  ctx.check(us.size() == 4, "transformed weights should be [alpha*alpha, OC/oc, IC, oc], got ",
            shapeToString(us));
  WinogradConv g;
  g.N = xs[0], g.ICo = xs[1], g.H = xs[2], g.W = xs[3], g.ib = xs[4];
  g.m = ctx.attrInt("tile", 0);
  ctx.check(g.m == 2 || g.m == 4, "tile should be 2 or 4 (F(2x2, 3x3) or F(4x4, 3x3)), got ",
            g.m);
  g.alpha = g.m + 2;
  g.OCo = us[1], g.ob = us[3];
  std::vector<int64_t> ks = ctx.attrInts("kernel_shape", {3, 3});
  std::vector<int64_t> st = ctx.attrInts("strides", {1, 1});
  std::vector<int64_t> dl = ctx.attrInts("dilations", {1, 1});
  std::vector<int64_t> pd = ctx.attrInts("pads", {0, 0, 0, 0});
  ctx.check(ks == std::vector<int64_t>{3, 3} && st == std::vector<int64_t>{1, 1} &&
                dl == std::vector<int64_t>{1, 1},
            "a Winograd conv is 3x3 with strides and dilations 1: kernel_shape [3, 3], strides "
            "[1, 1], dilations [1, 1]");
  ctx.check(ctx.attrInt("group", 1) == 1, "a Winograd conv has group 1");
  ctx.check(pd.size() == 4 && pd[0] >= 0 && pd[1] >= 0 && pd[2] >= 0 && pd[3] >= 0,
            "pads should be 4 non-negative values [top, left, bottom, right]");
  g.pt = pd[0], g.pl = pd[1], g.pb = pd[2], g.pr = pd[3];
  ctx.check(us[0] == g.alpha * g.alpha && us[2] == g.ICo * g.ib, "transformed weights ",
            shapeToString(us), " do not match the input ", shapeToString(xs), " and tile ", g.m,
            ": expected [", g.alpha * g.alpha, ", OC/oc, ", g.ICo * g.ib, ", oc]");
  ctx.check(g.H + g.pt + g.pb >= 3 && g.W + g.pl + g.pr >= 3, "the padded input ",
            g.H + g.pt + g.pb, "x", g.W + g.pl + g.pr, " is smaller than the 3x3 kernel");
  g.OH = g.H + g.pt + g.pb - 2, g.OW = g.W + g.pl + g.pr - 2;
  g.TH = (g.OH + g.m - 1) / g.m, g.TW = (g.OW + g.m - 1) / g.m;
  return g;
}

void convWinogradNCHWcInfer(InferContext &ctx) {
  std::vector<int64_t> xs = staticShapeOf(ctx, 0), us = staticShapeOf(ctx, 1);
  checkF32(ctx, ctx.inputType(0).dtype);
  checkF32(ctx, ctx.inputType(1).dtype);
  WinogradConv g = winogradConvGeom(ctx, xs, us);
  setBlockedConvOutput(ctx, g);
}

/// The reference: per output tile, Y = A^T [U . (B^T d B)] A summed over input channels, in
/// double, straight from the definition (with U = G g G^T this is the plain convolution, up to
/// rounding of U to f32).
void convWinogradNCHWcKernel(KernelContext &ctx) {
  const Tensor &X = ctx.input(0), &Ut = ctx.input(1);
  WinogradConv g = winogradConvGeom(ctx, X.shape(), Ut.shape());
  const winograd::Matrices mt = winograd::matrices(g.m);
  const int64_t A = g.alpha, A2 = A * A, IC = g.ICo * g.ib, OC = g.OCo * g.ob;
  Tensor Y(DType::f32, {g.N, g.OCo, g.OH, g.OW, g.ob});
  const float *x = X.data<float>(), *u = Ut.data<float>();
  const float *b = ctx.hasInput(2) ? ctx.input(2).data<float>() : nullptr;
  float *y = Y.data<float>();
  std::vector<double> v(static_cast<size_t>(IC * A2)), d(static_cast<size_t>(A2)),
      t(static_cast<size_t>(A2)), mm(static_cast<size_t>(A2));
  for (int64_t n = 0; n < g.N; ++n)
    for (int64_t th = 0; th < g.TH; ++th)
      for (int64_t tw = 0; tw < g.TW; ++tw) {
        // V[ic] = B^T d B for the tile's (alpha x alpha) zero-padded input.
        for (int64_t ic = 0; ic < IC; ++ic) {
          for (int64_t a = 0; a < A; ++a)
            for (int64_t c = 0; c < A; ++c) {
              int64_t ih = th * g.m + a - g.pt, iw = tw * g.m + c - g.pl;
              bool inside = ih >= 0 && ih < g.H && iw >= 0 && iw < g.W;
              d[a * A + c] = inside ? x[(((n * g.ICo + ic / g.ib) * g.H + ih) * g.W + iw) * g.ib +
                                        ic % g.ib]
                                    : 0.0;
            }
          for (int64_t i = 0; i < A; ++i) // t = B^T d
            for (int64_t c = 0; c < A; ++c) {
              double s = 0;
              for (int64_t a = 0; a < A; ++a)
                s += mt.bt[i * A + a] * d[a * A + c];
              t[i * A + c] = s;
            }
          for (int64_t i = 0; i < A; ++i) // V = t B
            for (int64_t j = 0; j < A; ++j) {
              double s = 0;
              for (int64_t c = 0; c < A; ++c)
                s += t[i * A + c] * mt.bt[j * A + c];
              v[ic * A2 + i * A + j] = s;
            }
        }
        for (int64_t oc = 0; oc < OC; ++oc) {
          const int64_t oco = oc / g.ob, oci = oc % g.ob;
          for (int64_t p = 0; p < A2; ++p) { // M = sum over ic of U . V
            double s = 0;
            for (int64_t ic = 0; ic < IC; ++ic)
              s += double(u[((p * g.OCo + oco) * IC + ic) * g.ob + oci]) * v[ic * A2 + p];
            mm[p] = s;
          }
          for (int64_t i = 0; i < g.m; ++i)
            for (int64_t j = 0; j < g.m; ++j) {
              const int64_t oh = th * g.m + i, ow = tw * g.m + j;
              if (oh >= g.OH || ow >= g.OW)
                continue;
              double s = 0; // (A^T M A)[i][j]
              for (int64_t a = 0; a < A; ++a)
                for (int64_t c = 0; c < A; ++c)
                  s += mt.at[i * A + a] * mm[a * A + c] * mt.at[j * A + c];
              if (b)
                s += b[oc];
              y[(((n * g.OCo + oco) * g.OH + oh) * g.OW + ow) * g.ob + oci] = float(s);
            }
        }
      }
  ctx.setOutput(0, std::move(Y));
}

/// sum over (a, b) of k[a][b] * f(a, b), without the zero terms (the coefficients are small
/// integers or fractions; a 1 or -1 is an add or a subtract).
template <class F> Expr weightedSum(const std::vector<double> &k, int64_t rows, int64_t cols, F f) {
  Expr e;
  for (int64_t a = 0; a < rows; ++a)
    for (int64_t b = 0; b < cols; ++b) {
      double c = k[a * cols + b];
      if (c == 0)
        continue;
      Expr term = f(a, b);
      float mag = float(std::fabs(c));
      if (mag != 1.0f)
        term = term * mag;
      if (!e.defined())
        e = c < 0 ? -term : term;
      else
        e = c < 0 ? e - term : e + term;
    }
  return e.defined() ? e : Expr(0.0f);
}

/// The outer product row i of `l` x row j of `r` (k[a][b] = l[i][a] * r[j][b]).
std::vector<double> outerRows(const double *l, int64_t i, const double *r, int64_t j,
                              int64_t alpha) {
  std::vector<double> k(size_t(alpha * alpha));
  for (int64_t a = 0; a < alpha; ++a)
    for (int64_t b = 0; b < alpha; ++b)
      k[a * alpha + b] = l[i * alpha + a] * r[j * alpha + b];
  return k;
}

/// Lowering, four stages (docs/compile.md, "Convolution"; scheduled by
/// lib/Compiler/ScheduleWinograd.cpp, which finds them by these names):
///   "..._pad"             zero-padded input [N, ICo, TH*m + 2, TW*m + 2, ib]
///   "..._input_transform" V [N, TH, ICo, alpha^2, TW, ib] = B^T d B per tile
///   "..._gemm"            M [N, TH, alpha^2, OCo, TW, ob] = sum over ic of V * U (a batched
///                         GEMM, one per tile position p)
///   the output            Y [N, OCo, OH, OW, ob] = A^T M A (+ bias)
/// The position p (V, M) and the output's oh % m, ow % m select one of alpha^2 (m^2) sums with
/// constant coefficients: a chain of selects that folds away once the schedule unrolls them.
void convWinogradNCHWcLower(LowerContext &ctx) {
  WinogradConv g = winogradConvGeom(ctx, ctx.inputShape(0), ctx.inputShape(1));
  const winograd::Matrices mt = winograd::matrices(g.m);
  te::Tensor X = ctx.input(0), U = ctx.input(1);
  const int64_t m = g.m, A = g.alpha, A2 = A * A;
  te::Tensor Xp = ctx.compute(
      lowering::shapeExprs({g.N, g.ICo, g.TH * m + 2, g.TW * m + 2, g.ib}),
      [&](Var n, Var c, Var h, Var w, Var ci) {
        // Only the spatial indices are clamped and tested (as in ConvNCHWc).
        Expr ih = h - g.pt, iw = w - g.pl;
        Expr inside = ih >= int64_t(0) && ih < g.H && iw >= int64_t(0) && iw < g.W;
        Expr v = X(n, c, loop::min(loop::max(ih, int64_t(0)), g.H - 1),
                   loop::min(loop::max(iw, int64_t(0)), g.W - 1), ci);
        return loop::select(inside, v, Expr(0.0f));
      },
      "pad");
  te::Tensor V = ctx.compute(
      lowering::shapeExprs({g.N, g.TH, g.ICo, A2, g.TW, g.ib}),
      [&](std::vector<Var> ix) {
        const Var &n = ix[0], &th = ix[1], &c = ix[2], &p = ix[3], &tw = ix[4], &ci = ix[5];
        Expr r;
        for (int64_t q = A2 - 1; q >= 0; --q) {
          Expr e = weightedSum(outerRows(mt.bt, q / A, mt.bt, q % A, A), A, A,
                               [&](int64_t a, int64_t b) {
                                 return Xp(n, c, th * m + a, tw * m + b, ci);
                               });
          r = r.defined() ? loop::select(p == q, e, r) : e;
        }
        return r;
      },
      "input_transform");
  auto rco = te::reduce_axis({0, g.ICo}, "rco"), rci = te::reduce_axis({0, g.ib}, "rci");
  te::Tensor M = ctx.compute(
      lowering::shapeExprs({g.N, g.TH, A2, g.OCo, g.TW, g.ob}),
      [&](std::vector<Var> ix) {
        const Var &n = ix[0], &th = ix[1], &p = ix[2], &co = ix[3], &tw = ix[4], &ci = ix[5];
        return te::sum(V(n, th, rco, p, tw, rci) * U(p, co, rco * g.ib + rci, ci), {rco, rci});
      },
      "gemm");
  // A^T as alpha x alpha rows (zero-padded) so that outerRows can index it like B^T.
  std::vector<double> at(size_t(A * A), 0.0);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t a = 0; a < A; ++a)
      at[i * A + a] = mt.at[i * A + a];
  std::vector<Expr> out = lowering::shapeExprs(ctx.outputShape(0));
  const bool bias = ctx.hasInput(2);
  te::Tensor Y = ctx.compute(out, [&](Var n, Var co, Var oh, Var ow, Var ci) {
    Expr th = oh / m, tw = ow / m, i = oh % m, j = ow % m;
    Expr rows;
    for (int64_t ii = m - 1; ii >= 0; --ii) {
      Expr cols;
      for (int64_t jj = m - 1; jj >= 0; --jj) {
        Expr e = weightedSum(outerRows(at.data(), ii, at.data(), jj, A), A, A,
                             [&](int64_t a, int64_t b) { return M(n, th, a * A + b, co, tw, ci); });
        cols = cols.defined() ? loop::select(j == jj, e, cols) : e;
      }
      rows = rows.defined() ? loop::select(i == ii, cols, rows) : cols;
    }
    return rows;
  }, bias ? "nobias" : "");
  if (bias) {
    te::Tensor B = ctx.input(2), Acc = Y;
    Y = ctx.compute(out, [&](Var n, Var co, Var oh, Var ow, Var ci) {
      return Acc(n, co, oh, ow, ci) + B(co, ci);
    });
  }
  ctx.setOutput(0, Y);
}

// --- MaxPoolNCHWc

/// Geometry of a MaxPoolNCHWc: input [N, Cb, H, W, c], attrs kernel_shape, strides, pads.
struct BlockedPool {
  int64_t KH, KW, sh, sw, pt, pl, pb, pr, OH, OW;
};

BlockedPool blockedPoolGeom(const AttrReader &ctx, const std::vector<int64_t> &xs) {
  ctx.check(xs.size() == 5, "input should be blocked [N, C/c, H, W, c], got ", shapeToString(xs));
  std::vector<int64_t> ks = ctx.attrInts("kernel_shape");
  std::vector<int64_t> st = ctx.attrInts("strides", {1, 1});
  std::vector<int64_t> pd = ctx.attrInts("pads", {0, 0, 0, 0});
  ctx.check(ks.size() == 2 && ks[0] > 0 && ks[1] > 0, "kernel_shape should be 2 positive values");
  ctx.check(st.size() == 2 && st[0] > 0 && st[1] > 0, "strides should be 2 positive values");
  ctx.check(pd.size() == 4 && pd[0] >= 0 && pd[1] >= 0 && pd[2] >= 0 && pd[3] >= 0 &&
                pd[0] < ks[0] && pd[2] < ks[0] && pd[1] < ks[1] && pd[3] < ks[1],
            "pads should be 4 non-negative values [top, left, bottom, right] below the kernel");
  BlockedPool g{ks[0], ks[1], st[0], st[1], pd[0], pd[1], pd[2], pd[3], 0, 0};
  ctx.check(xs[2] + g.pt + g.pb >= g.KH && xs[3] + g.pl + g.pr >= g.KW,
            "the padded input is smaller than the kernel");
  g.OH = (xs[2] + g.pt + g.pb - g.KH) / g.sh + 1;
  g.OW = (xs[3] + g.pl + g.pr - g.KW) / g.sw + 1;
  return g;
}

void maxPoolNCHWcInfer(InferContext &ctx) {
  std::vector<int64_t> xs = staticShapeOf(ctx, 0);
  checkF32(ctx, ctx.inputType(0).dtype);
  BlockedPool g = blockedPoolGeom(ctx, xs);
  ctx.setOutputType(0, Type::tensor(DType::f32, Shape(std::vector<Dim>{xs[0], xs[1], g.OH, g.OW,
                                                                       xs[4]})));
}

void maxPoolNCHWcKernel(KernelContext &ctx) {
  const Tensor &X = ctx.input(0);
  BlockedPool g = blockedPoolGeom(ctx, X.shape());
  const int64_t N = X.dim(0), Cb = X.dim(1), H = X.dim(2), W = X.dim(3), c = X.dim(4);
  Tensor Y(DType::f32, {N, Cb, g.OH, g.OW, c});
  const float *x = X.data<float>();
  float *y = Y.data<float>();
  for (int64_t nc = 0; nc < N * Cb; ++nc)
    for (int64_t oh = 0; oh < g.OH; ++oh)
      for (int64_t ow = 0; ow < g.OW; ++ow)
        for (int64_t ci = 0; ci < c; ++ci) {
          float m = -INFINITY;
          for (int64_t kh = 0; kh < g.KH; ++kh)
            for (int64_t kw = 0; kw < g.KW; ++kw) {
              int64_t ih = oh * g.sh + kh - g.pt, iw = ow * g.sw + kw - g.pl;
              if (ih >= 0 && ih < H && iw >= 0 && iw < W)
                m = std::max(m, x[((nc * H + ih) * W + iw) * c + ci]);
            }
          y[((nc * g.OH + oh) * g.OW + ow) * c + ci] = m;
        }
  ctx.setOutput(0, std::move(Y));
}

void maxPoolNCHWcLower(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  BlockedPool g = blockedPoolGeom(ctx, xs);
  te::Tensor X = ctx.input(0);
  auto kh = te::reduce_axis({0, g.KH}, "rkh"), kw = te::reduce_axis({0, g.KW}, "rkw");
  const bool padded = g.pt || g.pl || g.pb || g.pr;
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)),
                               [&](Var n, Var c, Var oh, Var ow, Var ci) {
    Expr h = oh * g.sh + kh - g.pt, w = ow * g.sw + kw - g.pl;
    if (!padded)
      return te::max(X(n, c, h, w, ci), {kh, kw});
    // Only the spatial indices are clamped and tested: the channel lanes stay one contiguous
    // vector load (a clamp on every index, as the generic pool does, makes it a gather).
    Expr inside = h >= int64_t(0) && h < xs[2] && w >= int64_t(0) && w < xs[3];
    Expr v = X(n, c, loop::min(loop::max(h, int64_t(0)), xs[2] - 1),
               loop::min(loop::max(w, int64_t(0)), xs[3] - 1), ci);
    return te::max(loop::select(inside, v, Expr(-INFINITY)), {kh, kw});
  }));
}

OpDef layoutOp(const char *name, int minIn, int maxIn, const char *notes, InferFn infer,
               KernelFn kernel, OpPattern pattern, LowerFn lower) {
  OpDef d{name, "tessel", 1, 1, minIn, maxIn, 1, 1, "f32", notes, std::move(infer),
          std::move(kernel), pattern};
  d.lower = std::move(lower);
  return d;
}

} // namespace

void registerLayoutOps(OpRegistry &r) {
  r.add(layoutOp("ToBlocked", 1, 1,
                 "internal (transform-layout): [N,C,H,W] -> NCHW[c]c [N,C/c,H,W,c], attr block",
                 toBlockedInfer, toBlockedKernel, OpPattern::Injective, toBlockedLower));
  r.add(layoutOp("FromBlocked", 1, 1,
                 "internal (transform-layout): [N,C/c,H,W,c] -> [N,C,H,W]", fromBlockedInfer,
                 fromBlockedKernel, OpPattern::Injective, fromBlockedLower));
  r.add(layoutOp("ConvNCHWc", 2, 3,
                 "internal (transform-layout): 2-D conv on blocked tensors, weights packed "
                 "[OC/oc,IC/ic,KH,KW,ic,oc], bias [OC/oc,oc]; group 1 or depthwise",
                 convNCHWcInfer, convNCHWcKernel, OpPattern::OutEWiseFusable, convNCHWcLower));
  r.add(layoutOp("ConvWinogradNCHWc", 2, 3,
                 "internal (transform-layout): 3x3 stride-1 conv on blocked tensors as "
                 "Winograd F(m x m, 3 x 3), attr tile = m (2 or 4), weights transformed "
                 "[(m+2)^2,OC/oc,IC,oc], bias [OC/oc,oc]",
                 convWinogradNCHWcInfer, convWinogradNCHWcKernel, OpPattern::OutEWiseFusable,
                 convWinogradNCHWcLower));
  r.add(layoutOp("MaxPoolNCHWc", 1, 1,
                 "internal (transform-layout): 2-D max pool on blocked tensors, attrs "
                 "kernel_shape, strides, pads [top,left,bottom,right]",
                 maxPoolNCHWcInfer, maxPoolNCHWcKernel, OpPattern::OutEWiseFusable,
                 maxPoolNCHWcLower));
}

namespace winograd {

namespace {

// F(2x2, 3x3): points 0, 1, -1, infinity.
constexpr double kAt2[2 * 4] = {1, 1, 1, 0, //
                                0, 1, -1, -1};
constexpr double kG2[4 * 3] = {1, 0, 0, 0.5, 0.5, 0.5, 0.5, -0.5, 0.5, 0, 0, 1};
constexpr double kBt2[4 * 4] = {1, 0, -1, 0, //
                                0, 1, 1, 0,  //
                                0, -1, 1, 0, //
                                0, 1, 0, -1};
// F(4x4, 3x3): points 0, 1, -1, 2, -2, infinity.
constexpr double kAt4[4 * 6] = {1, 1, 1, 1, 1, 0,  //
                                0, 1, -1, 2, -2, 0, //
                                0, 1, 1, 4, 4, 0,   //
                                0, 1, -1, 8, -8, 1};
constexpr double kG4[6 * 3] = {1.0 / 4,  0,         0,        //
                               -1.0 / 6, -1.0 / 6,  -1.0 / 6, //
                               -1.0 / 6, 1.0 / 6,   -1.0 / 6, //
                               1.0 / 24, 1.0 / 12,  1.0 / 6,  //
                               1.0 / 24, -1.0 / 12, 1.0 / 6,  //
                               0,        0,         1};
constexpr double kBt4[6 * 6] = {4, 0, -5, 0, 1, 0,   //
                                0, -4, -4, 1, 1, 0,  //
                                0, 4, -4, -1, 1, 0,  //
                                0, -2, -1, 2, 1, 0,  //
                                0, 2, -1, -2, 1, 0,  //
                                0, 4, 0, -5, 0, 1};

} // namespace

Matrices matrices(int64_t m) {
  if (m == 2)
    return {2, 4, kAt2, kG2, kBt2};
  if (m == 4)
    return {4, 6, kAt4, kG4, kBt4};
  fail("Winograd F(m x m, 3 x 3): tile m should be 2 or 4, got ", m);
}

Tensor transformWeights(const Tensor &W, int64_t m, int64_t ob) {
  TESSEL_CHECK(W.dtype() == DType::f32 && W.rank() == 4 && W.dim(2) == 3 && W.dim(3) == 3,
               "Winograd weights should be f32 [OC, IC, 3, 3], got ", shapeToString(W.shape()));
  const int64_t OC = W.dim(0), IC = W.dim(1);
  TESSEL_CHECK(ob > 0 && OC % ob == 0, "Winograd weights: block ", ob,
               " should divide the output channels ", OC);
  const Matrices mt = matrices(m);
  const int64_t A = mt.alpha;
  Tensor U(DType::f32, {A * A, OC / ob, IC, ob});
  const float *w = W.data<float>();
  float *u = U.data<float>();
  for (int64_t oc = 0; oc < OC; ++oc)
    for (int64_t ic = 0; ic < IC; ++ic) {
      const float *k = w + (oc * IC + ic) * 9;
      double t[6 * 3]; // G g
      for (int64_t i = 0; i < A; ++i)
        for (int64_t c = 0; c < 3; ++c) {
          double s = 0;
          for (int64_t a = 0; a < 3; ++a)
            s += mt.g[i * 3 + a] * double(k[a * 3 + c]);
          t[i * 3 + c] = s;
        }
      for (int64_t i = 0; i < A; ++i) // (G g) G^T
        for (int64_t j = 0; j < A; ++j) {
          double s = 0;
          for (int64_t c = 0; c < 3; ++c)
            s += t[i * 3 + c] * mt.g[j * 3 + c];
          u[(((i * A + j) * (OC / ob) + oc / ob) * IC + ic) * ob + oc % ob] = float(s);
        }
    }
  return U;
}

} // namespace winograd

} // namespace tessel
