//===- Quantized.cpp - Quantized ops ---------------------------------------===//
//
// QuantizeLinear, DequantizeLinear, DynamicQuantizeLinear, MatMulInteger, QLinearMatMul,
// ConvInteger and QLinearConv. Integer products accumulate in int32 (wrapping, as the spec's
// int32 accumulator does); requantization is round-half-to-even then saturation, computed in
// float like the ONNX reference and onnxruntime. The conv ops use a direct N-D loop.
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"
#include "tessel/Graph/Lowering.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <string>
#include <type_traits>

namespace tessel {

namespace {

/// Calls f(T{}) for the integer element types a quantized tensor may have.
template <class F> decltype(auto) dispatchQuant(const AttrReader &ctx, DType dt, F &&f,
                                                const char *what) {
  switch (dt) {
  case DType::u8: return f(uint8_t{});
  case DType::i8: return f(int8_t{});
  case DType::u16: return f(uint16_t{});
  case DType::i16: return f(int16_t{});
  case DType::i32: return f(int32_t{});
  default:
    ctx.fail(what, ": expected an 8/16/32-bit integer element type, got ", dtypeName(dt));
  }
}

/// Round half to even (the default FP rounding mode), then clamp to T's range.
template <class T> T saturateRound(float v) {
  float r = std::nearbyint(v);
  constexpr double lo = double(std::numeric_limits<T>::lowest());
  constexpr double hi = double(std::numeric_limits<T>::max());
  if (std::isnan(r))
    return T(0);
  double d = r;
  if (d <= lo)
    return std::numeric_limits<T>::lowest();
  if (d >= hi)
    return std::numeric_limits<T>::max();
  return T(int64_t(d));
}

/// Per-tensor or per-axis quantization parameter: value at channel c.
struct QParam {
  std::vector<float> f;   // scales (as float)
  std::vector<int64_t> i; // zero points
};

/// The number of channels a (scale, zero point) pair covers along `axis` of `shape`: 1 when
/// per-tensor. Errors when the parameter's size matches neither.
int64_t paramChannels(const AttrReader &ctx, const Tensor &p, const std::vector<int64_t> &shape,
                      int64_t axis, bool allowAxis, const char *what) {
  if (p.numel() == 1 && p.rank() <= 1)
    return 1;
  if (!allowAxis)
    ctx.fail(what, " must be a scalar (per-tensor) at this opset, got shape ", p.shapeString());
  if (p.rank() != 1 || axis < 0 || axis >= int64_t(shape.size()) || p.numel() != shape[axis])
    ctx.fail(what, " of shape ", p.shapeString(),
             " must be a scalar or a 1-D tensor with one value per element of axis ", axis,
             " of the input ", shapeToString(shape));
  return p.numel();
}

/// outer/inner extents of `axis` in `shape` (axis size is shape[axis]).
void axisExtents(const std::vector<int64_t> &shape, int64_t axis, int64_t &inner, int64_t &chans) {
  inner = 1;
  for (size_t d = size_t(axis) + 1; d < shape.size(); ++d)
    inner *= shape[d];
  chans = shape.empty() ? 1 : shape[axis];
}

float toFloatScale(const AttrReader &ctx, const Tensor &s, int64_t i, const char *what) {
  double v = s.getDouble(i);
  if (!(v > 0) && !(v < 0))
    ctx.fail(what, " must be non-zero and finite, got ", v);
  return float(v);
}

//===----------------------------------------------------------------------===//
// QuantizeLinear / DequantizeLinear
//===----------------------------------------------------------------------===//

/// The quantization axis; only validated when a parameter is per-axis (a per-tensor scale
/// ignores it, so the default axis 1 on a 1-D input is fine).
int64_t quantAxis(const AttrReader &ctx, const Tensor &scale, int64_t rank) {
  if (ctx.opset() < 13 || (scale.numel() == 1 && scale.rank() <= 1))
    return 0;
  return normalizeAxis(ctx, ctx.attrInt("axis", 1), rank);
}

void quantizeLinearKernel(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  const Tensor &scale = ctx.input(1);
  bool hasZp = ctx.hasInput(2);
  Tensor zp = hasZp ? ctx.input(2) : Tensor::scalar<uint8_t>(0);
  int64_t axis = quantAxis(ctx, scale, x.rank());
  int64_t ch = paramChannels(ctx, scale, x.shape(), axis, ctx.opset() >= 13, "y_scale");
  if (hasZp) {
    int64_t zch = paramChannels(ctx, zp, x.shape(), axis, ctx.opset() >= 13, "y_zero_point");
    ctx.check(zch == ch, "y_scale has ", ch, " values but y_zero_point has ", zch);
  }
  std::vector<float> s(ch);
  std::vector<float> z(ch);
  for (int64_t c = 0; c < ch; ++c) {
    s[c] = toFloatScale(ctx, scale, c, "y_scale");
    z[c] = float(zp.getInt64(c));
  }
  int64_t inner = 1, chans = 1;
  if (ch > 1)
    axisExtents(x.shape(), axis, inner, chans);
  // x as float
  Tensor xf = x.dtype() == DType::f32 ? x : x.cast(DType::f32);
  const float *xp = xf.data<float>();
  dispatchQuant(ctx, zp.dtype(), [&](auto tq) {
    using Q = decltype(tq);
    Tensor y(dtypeOf<Q>, x.shape());
    Q *yp = y.data<Q>();
    const int64_t n = x.numel();
    for (int64_t i = 0; i < n; ++i) {
      int64_t c = ch > 1 ? (i / inner) % chans : 0;
      yp[i] = saturateRound<Q>(std::nearbyint(xp[i] / s[c]) + z[c]);
    }
    ctx.setOutput(0, std::move(y));
  }, "y_zero_point");
}

void dequantizeLinearKernel(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  const Tensor &scale = ctx.input(1);
  bool hasZp = ctx.hasInput(2);
  int64_t axis = quantAxis(ctx, scale, x.rank());
  int64_t ch = paramChannels(ctx, scale, x.shape(), axis, ctx.opset() >= 13, "x_scale");
  std::vector<int64_t> z(ch, 0);
  if (hasZp) {
    const Tensor &zp = ctx.input(2);
    ctx.check(zp.dtype() == x.dtype(), "x_zero_point has type ", dtypeName(zp.dtype()),
              " but x has type ", dtypeName(x.dtype()), "; they must match");
    int64_t zch = paramChannels(ctx, zp, x.shape(), axis, ctx.opset() >= 13, "x_zero_point");
    ctx.check(zch == ch, "x_scale has ", ch, " values but x_zero_point has ", zch);
    for (int64_t c = 0; c < ch; ++c)
      z[c] = zp.getInt64(c);
    if (x.dtype() == DType::i32)
      for (int64_t c = 0; c < ch; ++c)
        ctx.check(z[c] == 0, "x_zero_point must be 0 for int32 input, got ", z[c]);
  }
  std::vector<float> s(ch);
  for (int64_t c = 0; c < ch; ++c)
    s[c] = float(scale.getDouble(c));
  int64_t inner = 1, chans = 1;
  if (ch > 1)
    axisExtents(x.shape(), axis, inner, chans);
  dispatchQuant(ctx, x.dtype(), [&](auto tq) {
    using Q = decltype(tq);
    const Q *xp = x.data<Q>();
    dispatchFloat(scale.dtype(), [&](auto tf) {
      using F = decltype(tf);
      Tensor y(dtypeOf<F>, x.shape());
      F *yp = y.data<F>();
      const int64_t n = x.numel();
      for (int64_t i = 0; i < n; ++i) {
        int64_t c = ch > 1 ? (i / inner) % chans : 0;
        yp[i] = F(float(int64_t(xp[i]) - z[c]) * s[c]);
      }
      ctx.setOutput(0, std::move(y));
    }, "x_scale");
  }, "x");
}

//===----------------------------------------------------------------------===//
// DynamicQuantizeLinear
//===----------------------------------------------------------------------===//

void dynamicQuantizeKernel(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  ctx.check(x.dtype() == DType::f32, "x must be float32, got ", dtypeName(x.dtype()));
  const float *xp = x.data<float>();
  const int64_t n = x.numel();
  float mn = 0, mx = 0;
  for (int64_t i = 0; i < n; ++i) {
    if (std::isnan(xp[i]))
      ctx.fail("x contains NaN at element ", i, "; cannot compute a quantization range");
    mn = std::min(mn, xp[i]);
    mx = std::max(mx, xp[i]);
  }
  float scale = (mx - mn) / 255.0f;
  uint8_t zp = 0;
  Tensor y(DType::u8, x.shape());
  uint8_t *yp = y.data<uint8_t>();
  if (scale != 0 && std::isfinite(scale)) {
    zp = saturateRound<uint8_t>((0.0f - mn) / scale);
    for (int64_t i = 0; i < n; ++i)
      yp[i] = saturateRound<uint8_t>(std::nearbyint(xp[i] / scale) + float(zp));
  } else if (!std::isfinite(scale)) {
    ctx.fail("x has an infinite range; cannot compute a quantization scale");
  }
  ctx.setOutput(0, std::move(y));
  if (ctx.hasOutput(1))
    ctx.setOutput(1, Tensor::scalar<float>(scale));
  if (ctx.hasOutput(2))
    ctx.setOutput(2, Tensor::scalar<uint8_t>(zp));
}

//===----------------------------------------------------------------------===//
// Integer matrix products
//===----------------------------------------------------------------------===//

/// MatMul shape inference (numpy matmul semantics).
Shape matmulShape(const InferContext &ctx, const Shape &a, const Shape &b) {
  if (!a.rankKnown || !b.rankKnown)
    return Shape::unknownRank();
  if (a.rank() == 0 || b.rank() == 0)
    ctx.fail("matmul inputs must have rank >= 1");
  std::vector<Dim> ad = a.dims, bd = b.dims;
  bool aVec = ad.size() == 1, bVec = bd.size() == 1;
  if (aVec)
    ad.insert(ad.begin(), Dim(1));
  if (bVec)
    bd.push_back(Dim(1));
  const Dim &ka = ad[ad.size() - 1], &kb = bd[bd.size() - 2];
  if (ka.isStatic() && kb.isStatic() && ka.value != kb.value)
    ctx.fail("inner dimensions differ: ", a.str(), " x ", b.str());
  Shape ab(std::vector<Dim>(ad.begin(), ad.end() - 2));
  Shape bb(std::vector<Dim>(bd.begin(), bd.end() - 2));
  Shape batch = broadcastShapes(ctx, ab, bb);
  std::vector<Dim> out = batch.dims;
  if (!aVec)
    out.push_back(ad[ad.size() - 2]);
  if (!bVec)
    out.push_back(bd[bd.size() - 1]);
  return Shape(out);
}

/// The geometry of a batched matmul of static shapes.
struct MatMulGeom {
  int64_t M = 0, K = 0, N = 0;
  std::vector<int64_t> outShape, batch, aBatch, bBatch;
};

MatMulGeom matmulGeom(const AttrReader &ctx, const std::vector<int64_t> &a,
                      const std::vector<int64_t> &b) {
  ctx.check(!a.empty() && !b.empty(), "matmul inputs must have rank >= 1, got ", shapeToString(a),
            " and ", shapeToString(b));
  std::vector<int64_t> ad = a, bd = b;
  bool aVec = ad.size() == 1, bVec = bd.size() == 1;
  if (aVec)
    ad.insert(ad.begin(), 1);
  if (bVec)
    bd.push_back(1);
  MatMulGeom g;
  g.M = ad[ad.size() - 2];
  g.K = ad[ad.size() - 1];
  g.N = bd[bd.size() - 1];
  ctx.check(bd[bd.size() - 2] == g.K, "inner dimensions differ: ", shapeToString(a), " x ",
            shapeToString(b));
  g.aBatch.assign(ad.begin(), ad.end() - 2);
  g.bBatch.assign(bd.begin(), bd.end() - 2);
  g.batch = broadcastStatic(ctx, g.aBatch, g.bBatch);
  g.outShape = g.batch;
  if (!aVec)
    g.outShape.push_back(g.M);
  if (!bVec)
    g.outShape.push_back(g.N);
  return g;
}

/// Runs f(batchIndex, aOffset, bOffset) for each broadcast batch (offsets in matrices).
template <class F> void forEachBatch(const MatMulGeom &g, F &&f) {
  const std::vector<int64_t> ins[2] = {g.aBatch, g.bBatch};
  if (g.batch.empty()) {
    f(int64_t(0), int64_t(0), int64_t(0));
    return;
  }
  forEachBroadcast<2>(g.batch, ins, [&](int64_t o, const int64_t *in) { f(o, in[0], in[1]); });
}

/// Per-row (of A, length M) or per-column (of B, length N) zero points / scales; size 1 or n.
void checkVecParam(const AttrReader &ctx, const Tensor &p, int64_t n, const char *what,
                   const char *per) {
  if (p.numel() == 1 && p.rank() <= 1)
    return;
  if (p.rank() == 1 && p.numel() == n)
    return;
  ctx.fail(what, " of shape ", p.shapeString(), " must be a scalar or a 1-D tensor of ", n,
           " values (", per, ")");
}

/// acc[b][i][j] = sum_k (A[i,k]-az[i]) * (B[k,j]-bz[j]) over int32 (wrapping). Output int32
/// tensor of shape g.outShape.
Tensor integerMatMul(const AttrReader &ctx, const Tensor &A, const Tensor &B, const Tensor *az,
                     const Tensor *bz, const MatMulGeom &g) {
  Tensor out(DType::i32, g.outShape);
  int32_t *op = out.data<int32_t>();
  const int64_t M = g.M, K = g.K, N = g.N;
  std::vector<int32_t> azv(M, 0), bzv(N, 0);
  if (az) {
    checkVecParam(ctx, *az, M, "a_zero_point", "one per row of A");
    for (int64_t i = 0; i < M; ++i)
      azv[i] = int32_t(az->getInt64(az->numel() == 1 ? 0 : i));
  }
  if (bz) {
    checkVecParam(ctx, *bz, N, "b_zero_point", "one per column of B");
    for (int64_t j = 0; j < N; ++j)
      bzv[j] = int32_t(bz->getInt64(bz->numel() == 1 ? 0 : j));
  }
  dispatchQuant(ctx, A.dtype(), [&](auto ta) {
    using TA = decltype(ta);
    dispatchQuant(ctx, B.dtype(), [&](auto tb) {
      using TB = decltype(tb);
      const TA *ap = A.data<TA>();
      const TB *bp = B.data<TB>();
      std::vector<uint32_t> row(N);
      forEachBatch(g, [&](int64_t o, int64_t ai, int64_t bi) {
        const TA *a = ap + ai * M * K;
        const TB *b = bp + bi * K * N;
        int32_t *c = op + o * M * N;
        for (int64_t i = 0; i < M; ++i) {
          std::fill(row.begin(), row.end(), 0u);
          for (int64_t k = 0; k < K; ++k) {
            uint32_t av = uint32_t(int32_t(a[i * K + k]) - azv[i]);
            if (av == 0)
              continue;
            const TB *brow = b + k * N;
            for (int64_t j = 0; j < N; ++j)
              row[j] += av * uint32_t(int32_t(brow[j]) - bzv[j]);
          }
          for (int64_t j = 0; j < N; ++j)
            c[i * N + j] = int32_t(row[j]);
        }
      });
    }, "B");
  }, "A");
  return out;
}

void matMulIntegerKernel(KernelContext &ctx) {
  const Tensor &A = ctx.input(0), &B = ctx.input(1);
  MatMulGeom g = matmulGeom(ctx, A.shape(), B.shape());
  const Tensor *az = ctx.hasInput(2) ? &ctx.input(2) : nullptr;
  const Tensor *bz = ctx.hasInput(3) ? &ctx.input(3) : nullptr;
  if (az)
    ctx.check(az->dtype() == A.dtype(), "a_zero_point type must match A");
  if (bz)
    ctx.check(bz->dtype() == B.dtype(), "b_zero_point type must match B");
  ctx.setOutput(0, integerMatMul(ctx, A, B, az, bz, g));
}

void qlinearMatMulKernel(KernelContext &ctx) {
  const Tensor &A = ctx.input(0), &as = ctx.input(1), &az = ctx.input(2);
  const Tensor &B = ctx.input(3), &bs = ctx.input(4), &bz = ctx.input(5);
  const Tensor &ys = ctx.input(6), &yz = ctx.input(7);
  ctx.check(az.dtype() == A.dtype(), "a_zero_point type must match a");
  ctx.check(bz.dtype() == B.dtype(), "b_zero_point type must match b");
  MatMulGeom g = matmulGeom(ctx, A.shape(), B.shape());
  checkVecParam(ctx, as, g.M, "a_scale", "one per row of a");
  checkVecParam(ctx, bs, g.N, "b_scale", "one per column of b");
  checkVecParam(ctx, ys, g.M, "y_scale", "one per row of y");
  checkVecParam(ctx, yz, g.M, "y_zero_point", "one per row of y");
  Tensor acc = integerMatMul(ctx, A, B, &az, &bz, g);
  const int32_t *accp = acc.data<int32_t>();
  std::vector<float> asv(g.M), ysv(g.M), yzv(g.M), bsv(g.N);
  for (int64_t i = 0; i < g.M; ++i) {
    asv[i] = toFloatScale(ctx, as, as.numel() == 1 ? 0 : i, "a_scale");
    ysv[i] = toFloatScale(ctx, ys, ys.numel() == 1 ? 0 : i, "y_scale");
    yzv[i] = float(yz.getInt64(yz.numel() == 1 ? 0 : i));
  }
  for (int64_t j = 0; j < g.N; ++j)
    bsv[j] = toFloatScale(ctx, bs, bs.numel() == 1 ? 0 : j, "b_scale");
  dispatchQuant(ctx, yz.dtype(), [&](auto tq) {
    using Q = decltype(tq);
    Tensor y(dtypeOf<Q>, g.outShape);
    Q *yp = y.data<Q>();
    const int64_t MN = g.M * g.N;
    const int64_t total = y.numel();
    for (int64_t o = 0; o < total; o += MN)
      for (int64_t i = 0; i < g.M; ++i)
        for (int64_t j = 0; j < g.N; ++j) {
          float mult = asv[i] * bsv[j] / ysv[i];
          int64_t idx = o + i * g.N + j;
          yp[idx] = saturateRound<Q>(std::nearbyint(float(accp[idx]) * mult) + yzv[i]);
        }
    ctx.setOutput(0, std::move(y));
  }, "y_zero_point");
}

void inferMatMulInteger(InferContext &ctx) {
  ctx.setOutputType(0, Type::tensor(DType::i32, matmulShape(ctx, tensorShape(ctx, 0),
                                                             tensorShape(ctx, 1))));
}

void inferQLinearMatMul(InferContext &ctx) {
  DType dt = ctx.inputType(7).dtype;
  ctx.setOutputType(0, Type::tensor(dt, matmulShape(ctx, tensorShape(ctx, 0), tensorShape(ctx, 3))));
}

//===----------------------------------------------------------------------===//
// Integer convolution
//===----------------------------------------------------------------------===//

/// Conv geometry: kernel, strides, dilations, begin/end pads for k spatial dims.
struct ConvGeom {
  int64_t k = 0;
  std::vector<int64_t> kernel, strides, dilations, padBegin, padEnd;
  int64_t group = 1;
};

/// Reads and validates the conv attributes; `inDims` are the spatial input dims (-1 = unknown),
/// `kernelDims` the weight's spatial dims (-1 = unknown).
ConvGeom convAttrs(const AttrReader &ctx, int64_t k, const std::vector<int64_t> &kernelDims) {
  ConvGeom g;
  g.k = k;
  g.kernel = ctx.attrInts("kernel_shape", kernelDims);
  ctx.check(int64_t(g.kernel.size()) == k, "kernel_shape has ", g.kernel.size(),
            " values, expected ", k, " (one per spatial dim)");
  for (int64_t d = 0; d < k; ++d) {
    if (d < int64_t(kernelDims.size()) && kernelDims[d] >= 0)
      ctx.check(g.kernel[d] == kernelDims[d], "kernel_shape ", shapeToString(g.kernel),
                " does not match the weight's spatial dims ", shapeToString(kernelDims));
  }
  g.strides = ctx.attrInts("strides", std::vector<int64_t>(k, 1));
  g.dilations = ctx.attrInts("dilations", std::vector<int64_t>(k, 1));
  std::vector<int64_t> pads = ctx.attrInts("pads", std::vector<int64_t>(2 * k, 0));
  ctx.check(int64_t(g.strides.size()) == k, "strides has ", g.strides.size(), " values, expected ", k);
  ctx.check(int64_t(g.dilations.size()) == k, "dilations has ", g.dilations.size(),
            " values, expected ", k);
  ctx.check(int64_t(pads.size()) == 2 * k, "pads has ", pads.size(), " values, expected ", 2 * k);
  for (int64_t d = 0; d < k; ++d) {
    ctx.check(g.strides[d] >= 1, "strides must be >= 1, got ", shapeToString(g.strides));
    ctx.check(g.dilations[d] >= 1, "dilations must be >= 1, got ", shapeToString(g.dilations));
    ctx.check(g.kernel[d] >= 1 || g.kernel[d] == -1, "kernel dims must be >= 1, got ",
              shapeToString(g.kernel));
    ctx.check(pads[d] >= 0 && pads[d + k] >= 0, "pads must be >= 0, got ", shapeToString(pads));
  }
  g.padBegin.assign(pads.begin(), pads.begin() + k);
  g.padEnd.assign(pads.begin() + k, pads.end());
  g.group = ctx.attrInt("group", 1);
  ctx.check(g.group >= 1, "group must be >= 1, got ", g.group);
  return g;
}

/// Output spatial dims (-1 where unknown); fills g.padBegin/padEnd for auto_pad SAME_*.
std::vector<int64_t> convOutDims(const AttrReader &ctx, ConvGeom &g, const std::vector<int64_t> &in) {
  std::string autoPad = ctx.attrString("auto_pad", "NOTSET");
  std::vector<int64_t> out(g.k, -1);
  for (int64_t d = 0; d < g.k; ++d) {
    if (in[d] < 0 || g.kernel[d] < 0)
      continue;
    int64_t ek = (g.kernel[d] - 1) * g.dilations[d] + 1;
    if (autoPad == "SAME_UPPER" || autoPad == "SAME_LOWER") {
      out[d] = (in[d] + g.strides[d] - 1) / g.strides[d];
      int64_t total = std::max<int64_t>(0, (out[d] - 1) * g.strides[d] + ek - in[d]);
      int64_t small = total / 2;
      g.padBegin[d] = autoPad == "SAME_UPPER" ? small : total - small;
      g.padEnd[d] = total - g.padBegin[d];
      continue;
    }
    if (autoPad == "VALID") {
      g.padBegin[d] = g.padEnd[d] = 0;
    } else if (autoPad != "NOTSET") {
      ctx.fail("auto_pad '", autoPad, "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
    }
    int64_t span = in[d] + g.padBegin[d] + g.padEnd[d] - ek;
    ctx.check(span >= 0, "the kernel (", ek, " with dilation) is larger than the padded input (",
              in[d] + g.padBegin[d] + g.padEnd[d], ") along spatial dim ", d);
    out[d] = span / g.strides[d] + 1;
  }
  return out;
}

/// Inference for ConvInteger / QLinearConv: x at input xi, w at input wi.
void inferIntConv(InferContext &ctx, size_t xi, size_t wi, DType dt) {
  const Shape &xs = tensorShape(ctx, xi);
  const Shape &ws = tensorShape(ctx, wi);
  int64_t rank = xs.rankKnown ? xs.rank() : ws.rankKnown ? ws.rank() : -1;
  if (rank < 0) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  ctx.check(rank >= 3, "x must have rank >= 3 (N, C, spatial...), got rank ", rank);
  int64_t k = rank - 2;
  std::vector<int64_t> kd(k, -1), in(k, -1);
  if (ws.rankKnown) {
    ctx.check(ws.rank() == rank, "w has rank ", ws.rank(), " but x has rank ", rank);
    for (int64_t d = 0; d < k; ++d)
      kd[d] = ws.dims[2 + d].isStatic() ? ws.dims[2 + d].value : -1;
  }
  if (xs.rankKnown)
    for (int64_t d = 0; d < k; ++d)
      in[d] = xs.dims[2 + d].isStatic() ? xs.dims[2 + d].value : -1;
  ConvGeom g = convAttrs(ctx, k, kd);
  std::vector<int64_t> out = convOutDims(ctx, g, in);
  std::vector<Dim> dims;
  dims.push_back(xs.rankKnown ? xs.dims[0] : Dim());
  dims.push_back(ws.rankKnown ? ws.dims[0] : Dim());
  for (int64_t d = 0; d < k; ++d)
    dims.push_back(out[d] >= 0 ? Dim(out[d]) : Dim());
  ctx.setOutputType(0, Type::tensor(dt, Shape(dims)));
}

/// Direct N-D integer convolution: int32 accumulators (wrapping), x zero point per tensor, w
/// zero point per tensor or per output channel. Padded positions contribute zero.
Tensor integerConv(const AttrReader &ctx, const Tensor &X, const Tensor &W, int32_t xz,
                   const std::vector<int32_t> &wz) {
  ctx.check(X.rank() >= 3, "x must have rank >= 3 (N, C, spatial...), got ", X.shapeString());
  ctx.check(W.rank() == X.rank(), "w has shape ", W.shapeString(), " but x has shape ",
            X.shapeString(), "; ranks must match");
  const int64_t k = X.rank() - 2;
  std::vector<int64_t> kd(W.shape().begin() + 2, W.shape().end());
  std::vector<int64_t> in(X.shape().begin() + 2, X.shape().end());
  ConvGeom g = convAttrs(ctx, k, kd);
  std::vector<int64_t> outSp = convOutDims(ctx, g, in);
  const int64_t N = X.dim(0), C = X.dim(1), M = W.dim(0), Cg = W.dim(1);
  ctx.check(C % g.group == 0 && M % g.group == 0 && Cg * g.group == C, "x has ", C,
            " channels and w has shape ", W.shapeString(), " but group is ", g.group,
            " (expected w.shape[1] * group == channels and output channels divisible by group)");
  ctx.check(int64_t(wz.size()) == 1 || int64_t(wz.size()) == M, "w_zero_point has ", wz.size(),
            " values, expected 1 or ", M, " (one per output channel)");
  std::vector<int64_t> outShape = {N, M};
  outShape.insert(outShape.end(), outSp.begin(), outSp.end());
  Tensor out(DType::i32, outShape);
  int32_t *op = out.data<int32_t>();
  int64_t inSp = 1, outN = 1, K = 1;
  for (int64_t d = 0; d < k; ++d) {
    inSp *= in[d];
    outN *= outSp[d];
    K *= kd[d];
  }
  // Per kernel position: the per-dim offsets (dilated).
  std::vector<int64_t> kOff(K * k);
  {
    std::vector<int64_t> idx(k, 0);
    for (int64_t kk = 0; kk < K; ++kk) {
      for (int64_t d = 0; d < k; ++d)
        kOff[kk * k + d] = idx[d] * g.dilations[d];
      for (int64_t d = k - 1; d >= 0; --d) {
        if (++idx[d] < kd[d])
          break;
        idx[d] = 0;
      }
    }
  }
  if (out.numel() == 0)
    return out;
  const int64_t Mg = M / g.group;
  dispatchQuant(ctx, X.dtype(), [&](auto tx) {
    using TX = decltype(tx);
    dispatchQuant(ctx, W.dtype(), [&](auto tw) {
      using TW = decltype(tw);
      const TX *xp = X.data<TX>();
      const TW *wp = W.data<TW>();
      std::vector<int64_t> oidx(k), base(k);
      for (int64_t n = 0; n < N; ++n)
        for (int64_t m = 0; m < M; ++m) {
          const int64_t grp = m / Mg;
          const uint32_t wzm = uint32_t(wz.size() == 1 ? wz[0] : wz[m]);
          int32_t *orow = op + (n * M + m) * outN;
          std::fill(oidx.begin(), oidx.end(), 0);
          for (int64_t o = 0; o < outN; ++o) {
            for (int64_t d = 0; d < k; ++d)
              base[d] = oidx[d] * g.strides[d] - g.padBegin[d];
            uint32_t acc = 0;
            for (int64_t c = 0; c < Cg; ++c) {
              const TX *xc = xp + (n * C + grp * Cg + c) * inSp;
              const TW *wc = wp + (m * Cg + c) * K;
              for (int64_t kk = 0; kk < K; ++kk) {
                int64_t flat = 0;
                bool inside = true;
                for (int64_t d = 0; d < k; ++d) {
                  int64_t p = base[d] + kOff[kk * k + d];
                  if (p < 0 || p >= in[d]) {
                    inside = false;
                    break;
                  }
                  flat = flat * in[d] + p;
                }
                if (!inside)
                  continue;
                acc += uint32_t(int32_t(xc[flat]) - xz) * (uint32_t(int32_t(wc[kk])) - wzm);
              }
            }
            orow[o] = int32_t(acc);
            for (int64_t d = k - 1; d >= 0; --d) {
              if (++oidx[d] < outSp[d])
                break;
              oidx[d] = 0;
            }
          }
        }
    }, "w");
  }, "x");
  return out;
}

std::vector<int32_t> wZeroPoints(const AttrReader &ctx, const Tensor &wz, const Tensor &W) {
  ctx.check(wz.numel() >= 1 && wz.rank() <= 1, "w_zero_point must be a scalar or 1-D, got ",
            wz.shapeString());
  ctx.check(wz.dtype() == W.dtype(), "w_zero_point type must match w");
  std::vector<int32_t> v(wz.numel());
  for (int64_t i = 0; i < wz.numel(); ++i)
    v[i] = int32_t(wz.getInt64(i));
  return v;
}

int32_t xZeroPoint(const AttrReader &ctx, const Tensor &xz, const Tensor &X) {
  ctx.check(xz.numel() == 1 && xz.rank() <= 1, "x_zero_point must be a scalar, got ",
            xz.shapeString());
  ctx.check(xz.dtype() == X.dtype(), "x_zero_point type must match x");
  return int32_t(xz.getInt64(0));
}

void convIntegerKernel(KernelContext &ctx) {
  const Tensor &X = ctx.input(0), &W = ctx.input(1);
  int32_t xz = ctx.hasInput(2) ? xZeroPoint(ctx, ctx.input(2), X) : 0;
  std::vector<int32_t> wz = ctx.hasInput(3) ? wZeroPoints(ctx, ctx.input(3), W)
                                            : std::vector<int32_t>{0};
  ctx.setOutput(0, integerConv(ctx, X, W, xz, wz));
}

void qlinearConvKernel(KernelContext &ctx) {
  const Tensor &X = ctx.input(0), &xs = ctx.input(1), &xzT = ctx.input(2);
  const Tensor &W = ctx.input(3), &ws = ctx.input(4), &wzT = ctx.input(5);
  const Tensor &ys = ctx.input(6), &yz = ctx.input(7);
  int32_t xz = xZeroPoint(ctx, xzT, X);
  std::vector<int32_t> wz = wZeroPoints(ctx, wzT, W);
  ctx.check(xs.numel() == 1, "x_scale must be a scalar, got ", xs.shapeString());
  ctx.check(ys.numel() == 1, "y_scale must be a scalar, got ", ys.shapeString());
  ctx.check(yz.numel() == 1, "y_zero_point must be a scalar, got ", yz.shapeString());
  Tensor acc = integerConv(ctx, X, W, xz, wz);
  const int64_t N = acc.dim(0), M = acc.dim(1);
  const int64_t sp = M ? acc.numel() / std::max<int64_t>(N * M, 1) : 0;
  ctx.check(ws.rank() <= 1 && (ws.numel() == 1 || ws.numel() == M), "w_scale of shape ",
            ws.shapeString(), " must be a scalar or have one value per output channel (", M, ")");
  std::vector<int32_t> bias(M, 0);
  if (ctx.hasInput(8)) {
    const Tensor &B = ctx.input(8);
    ctx.check(B.dtype() == DType::i32 && B.rank() == 1 && B.numel() == M, "B must be int32 of shape [",
              M, "], got ", B.typeString());
    for (int64_t m = 0; m < M; ++m)
      bias[m] = B.data<int32_t>()[m];
  }
  float xsv = toFloatScale(ctx, xs, 0, "x_scale");
  float ysv = toFloatScale(ctx, ys, 0, "y_scale");
  std::vector<float> mult(M);
  for (int64_t m = 0; m < M; ++m)
    mult[m] = xsv * toFloatScale(ctx, ws, ws.numel() == 1 ? 0 : m, "w_scale") / ysv;
  float yzv = float(yz.getInt64(0));
  const int32_t *ap = acc.data<int32_t>();
  dispatchQuant(ctx, yz.dtype(), [&](auto tq) {
    using Q = decltype(tq);
    Tensor y(dtypeOf<Q>, acc.shape());
    Q *yp = y.data<Q>();
    for (int64_t n = 0; n < N; ++n)
      for (int64_t m = 0; m < M; ++m) {
        int64_t off = (n * M + m) * sp;
        for (int64_t i = 0; i < sp; ++i) {
          int32_t a = int32_t(uint32_t(ap[off + i]) + uint32_t(bias[m]));
          yp[off + i] = saturateRound<Q>(std::nearbyint(float(a) * mult[m]) + yzv);
        }
      }
    ctx.setOutput(0, std::move(y));
  }, "y_zero_point");
}

} // namespace

// --- lowerings of the Quantized ops
// The same arithmetic as the reference kernels, in the same order and precision: products of
// zero-point-corrected integers accumulate in int32 (wrapping), requantization multiplies in
// float, rounds half to even (llvm.roundeven) and saturates to the output type (NaN -> 0).
// Scales and zero points are read from their tensors (per tensor: element 0; per axis/row/
// column: the matching element), so they need not be constants.
namespace {

using loop::Expr;
using loop::Var;

std::vector<Expr> asExprs(const std::vector<Var> &iv) { return {iv.begin(), iv.end()}; }

/// The number of elements of input i (static shape).
int64_t numelOf(const LowerContext &ctx, size_t i) {
  int64_t n = 1;
  for (int64_t d : ctx.inputShape(i))
    n *= d;
  return n;
}

/// Input i, a per-tensor (one element) or 1-D per-channel parameter of `n` values: its value
/// for channel `c` (an error naming `what` for any other shape).
Expr paramAt(const LowerContext &ctx, size_t i, int64_t n, Expr c, const char *what) {
  std::vector<int64_t> s = ctx.inputShape(i);
  const te::Tensor &t = ctx.input(i);
  if (numelOf(ctx, i) == 1 && s.size() <= 1)
    return t.access(std::vector<Expr>(s.size(), Expr(int64_t(0))));
  ctx.check(s.size() == 1 && s[0] == n, what, " of shape ", shapeToString(s),
            " must be a scalar or a 1-D tensor of ", n, " values");
  return t.access({std::move(c)});
}

bool isQuantDType(DType dt) {
  return dt == DType::u8 || dt == DType::i8 || dt == DType::u16 || dt == DType::i16 ||
         dt == DType::i32;
}

void checkQuantDType(const LowerContext &ctx, DType dt, const char *what) {
  ctx.check(isQuantDType(dt), what, ": expected an 8/16/32-bit integer element type, got ",
            dtypeName(dt));
}

Expr toI32(Expr e) { return e.type() == loop::Type::i32() ? e : loop::cast(DType::i32, e); }
Expr toF32(Expr e) { return e.type() == loop::Type::f32() ? e : loop::cast(DType::f32, e); }

/// saturateRound<Q>(round(v)): v (f32) rounded half to even, clamped to Q's range, NaN -> 0.
Expr saturateTo(DType q, Expr v) {
  double lo = 0, hi = 0;
  switch (q) {
  case DType::u8: hi = 255; break;
  case DType::i8: lo = -128; hi = 127; break;
  case DType::u16: hi = 65535; break;
  case DType::i16: lo = -32768; hi = 32767; break;
  default: lo = -2147483648.0; hi = 2147483647.0; break; // i32
  }
  Expr r = loop::cast(DType::f64, loop::round(v)); // compare in double, as the reference does
  Expr clamped = loop::max(loop::min(r, Expr(hi)), Expr(lo));
  Expr y = loop::cast(q, clamped);
  return loop::select(!(r == r), lowering::constant(q, 0), y);
}

/// QuantizeLinear: y = saturate(round(float(x) / scale) + zero_point), per tensor or per axis.
void lowerQuantizeLinear(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  DType q = ctx.outputDType(0);
  checkQuantDType(ctx, q, "y_zero_point");
  bool perAxis = ctx.opset() >= 13 && numelOf(ctx, 1) != 1;
  int64_t axis = perAxis ? lowering::normalizeAxis(ctx, ctx.attrInt("axis", 1), int64_t(xs.size())) : 0;
  int64_t ch = perAxis ? xs[axis] : 1;
  te::Tensor X = ctx.input(0);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    Expr c = perAxis ? Expr(iv[axis]) : Expr(int64_t(0));
    Expr s = toF32(paramAt(ctx, 1, ch, c, "y_scale"));
    Expr z = ctx.hasInput(2) ? toF32(paramAt(ctx, 2, ch, c, "y_zero_point")) : Expr(0.0f);
    return saturateTo(q, loop::round(toF32(X.access(asExprs(iv))) / s) + z);
  }));
}

/// DequantizeLinear: y = float(x - zero_point) * scale (in float, then the scale's dtype).
void lowerDequantizeLinear(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  checkQuantDType(ctx, ctx.inputDType(0), "x");
  DType f = ctx.outputDType(0);
  bool perAxis = ctx.opset() >= 13 && numelOf(ctx, 1) != 1;
  int64_t axis = perAxis ? lowering::normalizeAxis(ctx, ctx.attrInt("axis", 1), int64_t(xs.size())) : 0;
  int64_t ch = perAxis ? xs[axis] : 1;
  te::Tensor X = ctx.input(0);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    Expr c = perAxis ? Expr(iv[axis]) : Expr(int64_t(0));
    Expr x = loop::cast(DType::i64, X.access(asExprs(iv)));
    if (ctx.hasInput(2))
      x = x - loop::cast(DType::i64, paramAt(ctx, 2, ch, c, "x_zero_point"));
    Expr y = loop::cast(DType::f32, x) * toF32(paramAt(ctx, 1, ch, c, "x_scale"));
    return f == DType::f32 ? y : loop::cast(f, y);
  }));
}

/// The batched integer product of MatMulInteger/QLinearMatMul: acc[b..., i, j] = sum_k
/// (a[i,k] - az[i]) * (b[k,j] - bz[j]) in int32 (wrapping). Calls `epilogue(acc, i, j)` on the
/// accumulator tensor's element and sets output 0.
void lowerIntegerMatMul(LowerContext &ctx, size_t ai, size_t bi, size_t azi, size_t bzi,
                        const std::function<Expr(Expr, Expr, Expr)> &epilogue) {
  std::vector<int64_t> as = ctx.inputShape(ai), bs = ctx.inputShape(bi);
  checkQuantDType(ctx, ctx.inputDType(ai), "A");
  checkQuantDType(ctx, ctx.inputDType(bi), "B");
  ctx.check(!as.empty() && !bs.empty(), "matmul inputs must have rank >= 1");
  bool aVec = as.size() == 1, bVec = bs.size() == 1;
  std::vector<int64_t> ad = as, bd = bs;
  if (aVec)
    ad.insert(ad.begin(), 1);
  if (bVec)
    bd.push_back(1);
  const int64_t M = ad[ad.size() - 2], K = ad.back(), N = bd.back();
  ctx.check(bd[bd.size() - 2] == K, "inner dimensions differ: ", shapeToString(as), " x ",
            shapeToString(bs));
  std::vector<int64_t> out = ctx.outputShape(0);
  std::vector<int64_t> aBatch(ad.begin(), ad.end() - 2), bBatch(bd.begin(), bd.end() - 2);
  size_t nb = out.size() - (aVec ? 0 : 1) - (bVec ? 0 : 1);
  te::Tensor A = ctx.input(ai), B = ctx.input(bi);
  // acc over the full [batch..., M, N] shape (vectors keep their extent-1 dim)
  std::vector<int64_t> accShape(out.begin(), out.begin() + nb);
  accShape.push_back(M);
  accShape.push_back(N);
  te::Tensor acc = ctx.compute(lowering::shapeExprs(accShape), [&](std::vector<Var> iv) {
    te::IterVar k = te::reduce_axis({Expr(int64_t(0)), Expr(K)}, "k");
    std::vector<Var> batch(iv.begin(), iv.begin() + nb);
    Var i = iv[nb], j = iv[nb + 1];
    std::vector<Expr> aIdx = lowering::broadcastIndex(batch, aBatch), bIdx = lowering::broadcastIndex(batch, bBatch);
    if (!aVec)
      aIdx.push_back(i);
    aIdx.push_back(k);
    bIdx.push_back(k);
    if (!bVec)
      bIdx.push_back(j);
    Expr a = toI32(A.access(aIdx)), b = toI32(B.access(bIdx));
    if (ctx.hasInput(azi))
      a = a - toI32(paramAt(ctx, azi, M, i, "a_zero_point"));
    if (ctx.hasInput(bzi))
      b = b - toI32(paramAt(ctx, bzi, N, j, "b_zero_point"));
    return te::sum(a * b, {k});
  }, "acc");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    std::vector<Expr> idx(iv.begin(), iv.begin() + nb);
    Expr i = aVec ? Expr(int64_t(0)) : Expr(iv[nb]);
    Expr j = bVec ? Expr(int64_t(0)) : Expr(iv[iv.size() - 1]);
    idx.push_back(i);
    idx.push_back(j);
    return epilogue(acc.access(idx), i, j);
  }));
}

void lowerMatMulInteger(LowerContext &ctx) {
  lowerIntegerMatMul(ctx, 0, 1, 2, 3, [](Expr acc, Expr, Expr) { return acc; });
}

/// QLinearMatMul: saturate(round(float(acc) * (a_scale[i] * b_scale[j] / y_scale[i])) + y_zp[i]).
void lowerQLinearMatMul(LowerContext &ctx) {
  DType q = ctx.outputDType(0);
  checkQuantDType(ctx, q, "y_zero_point");
  std::vector<int64_t> as = ctx.inputShape(0), bs = ctx.inputShape(3);
  const int64_t M = as.size() == 1 ? 1 : as[as.size() - 2], N = bs.size() == 1 ? 1 : bs.back();
  lowerIntegerMatMul(ctx, 0, 3, 2, 5, [&](Expr acc, Expr i, Expr j) {
    Expr mult = toF32(paramAt(ctx, 1, M, i, "a_scale")) * toF32(paramAt(ctx, 4, N, j, "b_scale")) /
                toF32(paramAt(ctx, 6, M, i, "y_scale"));
    Expr yz = toF32(paramAt(ctx, 7, M, i, "y_zero_point"));
    return saturateTo(q, loop::round(loop::cast(DType::f32, acc) * mult) + yz);
  });
}

/// The int32 direct convolution of ConvInteger/QLinearConv (NCHW, 1-3+ spatial dims, groups,
/// pads/auto_pad, strides, dilations): acc[n, m, o...] = sum over the group's channels and the
/// kernel of (x - x_zp) * (w - w_zp[m]); padded positions contribute zero. Calls
/// `epilogue(acc, m)` and sets output 0.
void lowerIntegerConv(LowerContext &ctx, size_t xi, size_t xzi, size_t wi, size_t wzi,
                      const std::function<Expr(Expr, Var)> &epilogue) {
  std::vector<int64_t> xs = ctx.inputShape(xi), ws = ctx.inputShape(wi);
  checkQuantDType(ctx, ctx.inputDType(xi), "x");
  checkQuantDType(ctx, ctx.inputDType(wi), "w");
  ctx.check(xs.size() >= 3 && ws.size() == xs.size(), "x ", shapeToString(xs), " and w ",
            shapeToString(ws), " must have the same rank >= 3 (N, C, spatial...)");
  const int64_t k = int64_t(xs.size()) - 2;
  std::vector<int64_t> kd(ws.begin() + 2, ws.end()), in(xs.begin() + 2, xs.end());
  ConvGeom g = convAttrs(ctx, k, kd);
  convOutDims(ctx, g, in); // fills the pads of auto_pad
  const int64_t C = xs[1], M = ws[0], Cg = ws[1];
  ctx.check(Cg * g.group == C && M % g.group == 0, "x has ", C, " channels and w has shape ",
            shapeToString(ws), " but group is ", g.group);
  const int64_t Mg = M / g.group;
  std::vector<int64_t> out = ctx.outputShape(0);
  te::Tensor X = ctx.input(xi), W = ctx.input(wi);
  te::Tensor acc = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    te::IterVar c = te::reduce_axis({Expr(int64_t(0)), Expr(Cg)}, "c");
    std::vector<te::IterVar> axes = {c};
    std::vector<Expr> xIdx = {iv[0], Expr(iv[1]) / Mg * Cg + c}, wIdx = {iv[1], c};
    Expr inside;
    for (int64_t d = 0; d < k; ++d) {
      te::IterVar r = te::reduce_axis({Expr(int64_t(0)), Expr(kd[d])}, "r" + std::to_string(d));
      axes.push_back(r);
      Expr p = Expr(iv[2 + d]) * g.strides[d] - g.padBegin[d] + Expr(r) * g.dilations[d];
      Expr ok = (p >= int64_t(0)) && (p < in[d]);
      inside = inside.defined() ? (inside && ok) : ok;
      xIdx.push_back(loop::max(loop::min(p, Expr(in[d] - 1)), Expr(int64_t(0))));
      wIdx.push_back(r);
    }
    Expr x = toI32(X.access(xIdx)), w = toI32(W.access(wIdx));
    if (ctx.hasInput(xzi)) {
      ctx.check(numelOf(ctx, xzi) == 1, "x_zero_point must be a scalar, got shape ",
                shapeToString(ctx.inputShape(xzi)));
      x = x - toI32(paramAt(ctx, xzi, 1, Expr(int64_t(0)), "x_zero_point"));
    }
    if (ctx.hasInput(wzi))
      w = w - toI32(paramAt(ctx, wzi, M, iv[1], "w_zero_point"));
    Expr term = x * w;
    if (inside.defined())
      term = loop::select(inside, term, loop::makeZero(term.type()));
    return te::sum(term, axes);
  }, "acc");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    return epilogue(acc.access(asExprs(iv)), iv[1]);
  }));
}

void lowerConvInteger(LowerContext &ctx) {
  lowerIntegerConv(ctx, 0, 2, 1, 3, [](Expr acc, Var) { return acc; });
}

/// QLinearConv: saturate(round(float(acc + B[m]) * (x_scale * w_scale[m] / y_scale)) + y_zp).
void lowerQLinearConv(LowerContext &ctx) {
  DType q = ctx.outputDType(0);
  checkQuantDType(ctx, q, "y_zero_point");
  const int64_t M = ctx.inputShape(3)[0];
  for (size_t i : {size_t(1), size_t(6), size_t(7)})
    ctx.check(numelOf(ctx, i) == 1, "input ", i, " (x_scale, y_scale, y_zero_point) must be a scalar");
  if (ctx.hasInput(8))
    ctx.check(ctx.inputDType(8) == DType::i32 && ctx.inputShape(8) == std::vector<int64_t>{M},
              "B must be int32 of shape [", M, "]");
  lowerIntegerConv(ctx, 0, 2, 3, 5, [&](Expr acc, Var m) {
    if (ctx.hasInput(8))
      acc = acc + ctx.input(8)(m);
    Expr mult = toF32(paramAt(ctx, 1, 1, Expr(int64_t(0)), "x_scale")) *
                toF32(paramAt(ctx, 4, M, m, "w_scale")) /
                toF32(paramAt(ctx, 6, 1, Expr(int64_t(0)), "y_scale"));
    Expr yz = toF32(paramAt(ctx, 7, 1, Expr(int64_t(0)), "y_zero_point"));
    return saturateTo(q, loop::round(loop::cast(DType::f32, acc) * mult) + yz);
  });
}

/// DynamicQuantizeLinear: the range [min(0, min x), max(0, max x)] (two reductions), scale =
/// range / 255, zero point = saturate(round(-min / scale)), y = saturate(round(x / scale) + zp);
/// a zero range gives scale 0, zero point 0 and y 0, as the reference. NaN or infinite inputs,
/// which the reference reports as errors, give unspecified values.
void lowerDynamicQuantizeLinear(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  ctx.check(ctx.inputDType(0) == DType::f32, "x must be float32, got ", dtypeName(ctx.inputDType(0)));
  te::Tensor X = ctx.input(0);
  auto reduceAll = [&](bool isMax) {
    return ctx.compute({}, [&](std::vector<Var>) {
      std::vector<te::IterVar> red;
      std::vector<Expr> idx;
      for (size_t d = 0; d < xs.size(); ++d) {
        red.push_back(te::reduce_axis({Expr(int64_t(0)), Expr(xs[d])}, "r" + std::to_string(d)));
        idx.push_back(red.back());
      }
      Expr v = X.access(idx);
      if (red.empty()) // a scalar input: the range includes 0
        return te::ComputeBody(isMax ? loop::max(v, Expr(0.0f)) : loop::min(v, Expr(0.0f)));
      return te::ComputeBody(isMax ? te::max(v, red, Expr(0.0f)) : te::min(v, red, Expr(0.0f)));
    }, isMax ? "max" : "min");
  };
  te::Tensor Mn = reduceAll(false), Mx = reduceAll(true);
  auto scaleOf = [&] { return (Mx.access({}) - Mn.access({})) / 255.0f; };
  auto zpOf = [&](Expr scale) {
    return loop::select(scale != 0.0f, saturateTo(DType::u8, (0.0f - Mn.access({})) / scale),
                        loop::makeZero(loop::Type::u8()));
  };
  te::Tensor Scale = ctx.compute({}, [&](std::vector<Var>) { return scaleOf(); }, "scale");
  te::Tensor Zp = ctx.compute({}, [&](std::vector<Var>) { return zpOf(Scale.access({})); }, "zero_point");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    Expr scale = Scale.access({});
    Expr y = saturateTo(DType::u8, loop::round(X.access(asExprs(iv)) / scale) +
                                       loop::cast(DType::f32, Zp.access({})));
    return loop::select(scale != 0.0f, y, loop::makeZero(loop::Type::u8()));
  }));
  // outputs 1 and 2 are their own computes (an output is never another output's stage)
  if (ctx.hasOutput(1))
    ctx.setOutput(1, ctx.compute({}, [&](std::vector<Var>) { return scaleOf(); }, "y_scale"));
  if (ctx.hasOutput(2))
    ctx.setOutput(2, ctx.compute({}, [&](std::vector<Var>) { return zpOf(scaleOf()); }, "y_zero_point"));
}

void attachQuantizedLowerings(OpRegistry &r) {
  r.setLower("DynamicQuantizeLinear", lowerDynamicQuantizeLinear);
  r.setLower("QuantizeLinear", lowerQuantizeLinear);
  r.setLower("DequantizeLinear", lowerDequantizeLinear);
  r.setLower("MatMulInteger", lowerMatMulInteger);
  r.setLower("QLinearMatMul", lowerQLinearMatMul);
  r.setLower("ConvInteger", lowerConvInteger);
  r.setLower("QLinearConv", lowerQLinearConv);
}

} // namespace
// --- end of the Quantized lowerings

void registerQuantizedOps(OpRegistry &r) {
  r.add(OpDef{
      "QuantizeLinear", "", 10, 17, 2, 3, 1, 1, "x: f32/f16/bf16/f64/i32; y: u8/i8 (any 8-32 bit int)",
      "per-tensor (opset 10) or per-axis (13+); round half to even, saturating",
      [](InferContext &ctx) {
        DType dt = ctx.hasInput(2) ? ctx.inputType(2).dtype : DType::u8;
        ctx.setOutputType(0, Type::tensor(dt, tensorShape(ctx, 0)));
      },
      quantizeLinearKernel, OpPattern::Broadcast});
  r.add(OpDef{
      "DequantizeLinear", "", 10, 17, 2, 3, 1, 1, "x: u8/i8/i32; y: type of x_scale",
      "per-tensor (opset 10) or per-axis (13+); int32 x requires a zero zero-point",
      [](InferContext &ctx) {
        DType dt = ctx.inputType(1).dtype;
        ctx.setOutputType(0, Type::tensor(dt, tensorShape(ctx, 0)));
      },
      dequantizeLinearKernel, OpPattern::Broadcast});
  r.add(OpDef{
      "DynamicQuantizeLinear", "", 11, 17, 1, 1, 1, 3, "x: f32; y: u8", "",
      [](InferContext &ctx) {
        ctx.setOutputType(0, Type::tensor(DType::u8, tensorShape(ctx, 0)));
        if (ctx.numOutputs() > 1)
          ctx.setOutputType(1, Type::tensor(DType::f32, Shape::of({})));
        if (ctx.numOutputs() > 2)
          ctx.setOutputType(2, Type::tensor(DType::u8, Shape::of({})));
      },
      dynamicQuantizeKernel});
  r.add(OpDef{"MatMulInteger", "", 10, 17, 2, 4, 1, 1, "u8/i8 -> i32",
              "zero points per tensor, per row of A or per column of B; int32 accumulation wraps",
              inferMatMulInteger, matMulIntegerKernel, OpPattern::OutEWiseFusable});
  r.add(OpDef{"QLinearMatMul", "", 10, 17, 8, 8, 1, 1, "u8/i8",
              "scales/zero points per tensor, per row (a, y) or per column (b)", inferQLinearMatMul,
              qlinearMatMulKernel, OpPattern::OutEWiseFusable});
  r.add(OpDef{"ConvInteger", "", 10, 17, 2, 4, 1, 1, "u8/i8 -> i32",
              "direct N-D loop; w zero point per tensor or per output channel",
              [](InferContext &ctx) { inferIntConv(ctx, 0, 1, DType::i32); }, convIntegerKernel,
              OpPattern::OutEWiseFusable});
  r.add(OpDef{"QLinearConv", "", 10, 17, 8, 9, 1, 1, "u8/i8",
              "direct N-D loop; w scale/zero point per tensor or per output channel",
              [](InferContext &ctx) { inferIntConv(ctx, 0, 3, ctx.inputType(7).dtype); },
              qlinearConvKernel, OpPattern::OutEWiseFusable});
  attachQuantizedLowerings(r);
}

} // namespace tessel
