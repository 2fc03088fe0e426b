//===- Image.cpp - Image ops ---------------------------------------===//
//
// Resize (opsets 10, 11, 13), Upsample (1, 7, 9), GridSample (16), RoiAlign (10, 16) and
// NonMaxSuppression (10, 11).
//
// Resize is separable: for each axis it precomputes, per output coordinate, the input taps and
// their weights (1 tap for nearest, 2 for linear, 4 for cubic) and applies the axes one after the
// other on a double buffer. Nearest is a pure gather, so it is exact for every element type.
// GridSample follows torch.nn.functional.grid_sample (the ONNX tests come from it); RoiAlign
// and NonMaxSuppression follow onnxruntime (the ONNX tests come from it).
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"
#include "tessel/Graph/Lowering.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>
#include <string>
#include <type_traits>

namespace tessel {

namespace {

//===----------------------------------------------------------------------===//
// Resize / Upsample
//===----------------------------------------------------------------------===//

enum class InterpMode { Nearest, Linear, Cubic };
enum class CoordMode { HalfPixel, PytorchHalfPixel, AlignCorners, Asymmetric, TfHalfPixelForNN, TfCropAndResize };
enum class NearestMode { RoundPreferFloor, RoundPreferCeil, Floor, Ceil, Simple };

struct ResizeParams {
  InterpMode mode = InterpMode::Nearest;
  CoordMode coord = CoordMode::HalfPixel;
  NearestMode nearest = NearestMode::RoundPreferFloor;
  double cubicA = -0.75;
  bool excludeOutside = false;
  double extrapolation = 0;
  std::vector<double> roi; // 2*rank (starts then ends) for tf_crop_and_resize
};

InterpMode parseMode(const AttrReader &ctx, const std::string &m, bool allowCubic) {
  if (m == "nearest")
    return InterpMode::Nearest;
  if (m == "linear" || m == "bilinear")
    return InterpMode::Linear;
  if (m == "cubic" && allowCubic)
    return InterpMode::Cubic;
  ctx.fail("mode '", m, "' is not supported (expected nearest, linear",
           allowCubic ? " or cubic)" : ")");
}

/// Reads the Resize attributes (opset >= 11) or the fixed behaviour of Resize-10 / Upsample.
ResizeParams resizeParams(const AttrReader &ctx, bool legacy) {
  ResizeParams p;
  if (legacy) {
    p.mode = parseMode(ctx, ctx.attrString("mode", "nearest"), false);
    p.coord = CoordMode::Asymmetric;
    p.nearest = NearestMode::Simple;
    return p;
  }
  p.mode = parseMode(ctx, ctx.attrString("mode", "nearest"), true);
  std::string c = ctx.attrString("coordinate_transformation_mode", "half_pixel");
  if (c == "half_pixel")
    p.coord = CoordMode::HalfPixel;
  else if (c == "pytorch_half_pixel")
    p.coord = CoordMode::PytorchHalfPixel;
  else if (c == "align_corners")
    p.coord = CoordMode::AlignCorners;
  else if (c == "asymmetric")
    p.coord = CoordMode::Asymmetric;
  else if (c == "tf_half_pixel_for_nn" && ctx.opset() < 13)
    p.coord = CoordMode::TfHalfPixelForNN;
  else if (c == "tf_crop_and_resize")
    p.coord = CoordMode::TfCropAndResize;
  else
    ctx.fail("coordinate_transformation_mode '", c, "' is not supported (expected half_pixel, ",
             "pytorch_half_pixel, align_corners, asymmetric, tf_crop_and_resize",
             ctx.opset() < 13 ? ", tf_half_pixel_for_nn)" : ")");
  std::string n = ctx.attrString("nearest_mode", "round_prefer_floor");
  if (n == "round_prefer_floor")
    p.nearest = NearestMode::RoundPreferFloor;
  else if (n == "round_prefer_ceil")
    p.nearest = NearestMode::RoundPreferCeil;
  else if (n == "floor")
    p.nearest = NearestMode::Floor;
  else if (n == "ceil")
    p.nearest = NearestMode::Ceil;
  else
    ctx.fail("nearest_mode '", n, "' is not supported (expected round_prefer_floor, ",
             "round_prefer_ceil, floor or ceil)");
  p.cubicA = ctx.attrFloat("cubic_coeff_a", -0.75f);
  p.excludeOutside = ctx.attrInt("exclude_outside", 0) != 0;
  p.extrapolation = ctx.attrFloat("extrapolation_value", 0.0f);
  return p;
}

/// Taps of one axis: for output coordinate x, taps idx[x*T + t] with weights w[x*T + t].
struct AxisTaps {
  int64_t T = 1;
  std::vector<int64_t> idx;
  std::vector<double> w;
  std::vector<uint8_t> outside; // tf_crop_and_resize: coordinate outside the input
  bool anyOutside = false;
  bool identity = false;
};

void cubicCoeffs(double r, double A, double c[4]) {
  c[0] = ((A * (r + 1) - 5 * A) * (r + 1) + 8 * A) * (r + 1) - 4 * A;
  c[1] = ((A + 2) * r - (A + 3)) * r * r + 1;
  c[2] = ((A + 2) * (1 - r) - (A + 3)) * (1 - r) * (1 - r) + 1;
  c[3] = ((A * ((1 - r) + 1) - 5 * A) * ((1 - r) + 1) + 8 * A) * ((1 - r) + 1) - 4 * A;
}

AxisTaps axisTaps(const ResizeParams &p, int64_t in, int64_t out, double scale, int64_t axis,
                  int64_t rank) {
  AxisTaps a;
  a.T = p.mode == InterpMode::Nearest ? 1 : p.mode == InterpMode::Linear ? 2 : 4;
  a.idx.resize(out * a.T);
  a.w.resize(out * a.T);
  a.outside.assign(out, 0);
  // The resized length as the ONNX reference sees it: in * scale (not rounded).
  const double lenResized = double(in) * scale;
  a.identity = in == out;
  for (int64_t x = 0; x < out; ++x) {
    double xo = 0;
    switch (p.coord) {
    case CoordMode::HalfPixel: xo = (x + 0.5) / scale - 0.5; break;
    case CoordMode::PytorchHalfPixel: xo = out > 1 ? (x + 0.5) / scale - 0.5 : 0.0; break;
    case CoordMode::AlignCorners:
      xo = lenResized == 1 ? 0.0 : x * double(in - 1) / (lenResized - 1);
      break;
    case CoordMode::Asymmetric: xo = x / scale; break;
    case CoordMode::TfHalfPixelForNN: xo = (x + 0.5) / scale; break;
    case CoordMode::TfCropAndResize: {
      double s = p.roi[axis], e = p.roi[axis + rank];
      xo = lenResized == 1 ? (e - s) * (in - 1) / 2.0 : x * (e - s) * (in - 1) / (lenResized - 1);
      xo += s * (in - 1);
      if (xo < 0 || xo > double(in - 1)) {
        a.outside[x] = 1;
        a.anyOutside = true;
        xo = 0;
      }
      break;
    }
    }
    if (!std::isfinite(xo))
      xo = 0;
    xo = std::clamp(xo, -1e15, 1e15);
    auto clampIdx = [&](int64_t i) { return std::clamp<int64_t>(i, 0, in - 1); };
    double fl = std::floor(xo);
    double r = xo - fl;
    int64_t x0 = int64_t(fl);
    int64_t *ix = &a.idx[x * a.T];
    double *w = &a.w[x * a.T];
    if (p.mode == InterpMode::Nearest) {
      int64_t n = x0;
      if (r != 0) {
        switch (p.nearest) {
        case NearestMode::RoundPreferFloor: n = r <= 0.5 ? x0 : x0 + 1; break;
        case NearestMode::RoundPreferCeil: n = r < 0.5 ? x0 : x0 + 1; break;
        case NearestMode::Floor: n = x0; break;
        case NearestMode::Ceil: n = x0 + 1; break;
        case NearestMode::Simple: n = scale < 1 ? x0 + 1 : x0; break;
        }
      }
      ix[0] = clampIdx(n);
      w[0] = 1;
    } else if (p.mode == InterpMode::Linear) {
      ix[0] = clampIdx(x0);
      ix[1] = clampIdx(x0 + 1);
      w[0] = 1 - r;
      w[1] = r;
    } else {
      double c[4];
      cubicCoeffs(r, p.cubicA, c);
      double sum = 0;
      for (int t = 0; t < 4; ++t) {
        int64_t i = x0 - 1 + t;
        if (p.excludeOutside && (i < 0 || i >= in))
          c[t] = 0;
        sum += c[t];
        ix[t] = clampIdx(i);
      }
      for (int t = 0; t < 4; ++t)
        w[t] = p.excludeOutside && sum != 0 ? c[t] / sum : c[t];
    }
    if (a.identity) {
      double self = 0;
      bool other = false;
      for (int64_t t = 0; t < a.T; ++t) {
        if (ix[t] == x)
          self += w[t];
        else if (w[t] != 0)
          other = true;
      }
      if (self != 1 || other || a.outside[x])
        a.identity = false;
    }
  }
  return a;
}

template <class T> T fromDouble(double v) {
  if constexpr (std::is_same_v<T, bool>) {
    return v != 0;
  } else if constexpr (std::is_integral_v<T>) {
    double r = std::nearbyint(v);
    if (std::isnan(r))
      return T(0);
    if (r <= double(std::numeric_limits<T>::lowest()))
      return std::numeric_limits<T>::lowest();
    if (r >= double(std::numeric_limits<T>::max()))
      return std::numeric_limits<T>::max();
    return T(r);
  } else {
    return T(v);
  }
}

/// The resize itself, output shape given; scales[d] per axis.
Tensor resizeCore(const AttrReader &ctx, const Tensor &X, const std::vector<int64_t> &outShape,
                  const std::vector<double> &scales, const ResizeParams &p) {
  const int64_t rank = X.rank();
  Tensor Y(X.dtype(), outShape);
  if (Y.numel() == 0)
    return Y;
  ctx.check(X.numel() > 0, "cannot resize an empty input ", X.shapeString(), " to ",
            shapeToString(outShape));
  std::vector<AxisTaps> taps(rank);
  bool anyOutside = false;
  for (int64_t d = 0; d < rank; ++d) {
    taps[d] = axisTaps(p, X.dim(d), outShape[d], scales[d], d, rank);
    anyOutside |= taps[d].anyOutside;
  }
  if (p.mode == InterpMode::Nearest && !anyOutside) {
    // Pure gather: exact for every element type.
    std::vector<int64_t> inStrides = stridesOf(X.shape());
    dispatchAll(X.dtype(), [&](auto tv) {
      using T = decltype(tv);
      const T *xp = X.data<T>();
      T *yp = Y.data<T>();
      const int64_t total = Y.numel();
      const int64_t inner = outShape[rank - 1];
      const std::vector<int64_t> &lastIdx = taps[rank - 1].idx;
      const int64_t lastStride = inStrides[rank - 1];
      std::vector<int64_t> oidx(rank, 0);
      for (int64_t o = 0; o < total; o += inner) {
        int64_t base = 0;
        for (int64_t d = 0; d + 1 < rank; ++d)
          base += taps[d].idx[oidx[d]] * inStrides[d];
        for (int64_t j = 0; j < inner; ++j)
          yp[o + j] = xp[base + lastIdx[j] * lastStride];
        for (int64_t d = rank - 2; d >= 0; --d) {
          if (++oidx[d] < outShape[d])
            break;
          oidx[d] = 0;
        }
      }
    }, "X");
    return Y;
  }
  ctx.check(X.dtype() != DType::string && X.dtype() != DType::boolean, "mode linear/cubic needs a ",
            "numeric input, got ", dtypeName(X.dtype()));
  // Separable passes over a double buffer.
  std::vector<double> cur(X.numel());
  dispatchNumeric(X.dtype(), [&](auto tv) {
    using T = decltype(tv);
    const T *xp = X.data<T>();
    for (int64_t i = 0; i < X.numel(); ++i)
      cur[i] = double(xp[i]);
  }, "X");
  std::vector<int64_t> curShape = X.shape();
  std::vector<double> next;
  for (int64_t d = 0; d < rank; ++d) {
    const AxisTaps &a = taps[d];
    if (a.identity)
      continue;
    int64_t outer = 1, inner = 1;
    for (int64_t e = 0; e < d; ++e)
      outer *= curShape[e];
    for (int64_t e = d + 1; e < rank; ++e)
      inner *= curShape[e];
    const int64_t in = curShape[d], out = outShape[d];
    next.assign(outer * out * inner, 0.0);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t x = 0; x < out; ++x) {
        double *dst = &next[(o * out + x) * inner];
        for (int64_t t = 0; t < a.T; ++t) {
          double w = a.w[x * a.T + t];
          if (w == 0)
            continue;
          const double *src = &cur[(o * in + a.idx[x * a.T + t]) * inner];
          for (int64_t i = 0; i < inner; ++i)
            dst[i] += w * src[i];
        }
      }
    cur.swap(next);
    curShape[d] = out;
  }
  if (anyOutside) {
    std::vector<int64_t> oidx(rank, 0);
    const int64_t total = Y.numel();
    for (int64_t o = 0; o < total; ++o) {
      bool out = false;
      for (int64_t d = 0; d < rank && !out; ++d)
        out = taps[d].outside[oidx[d]];
      if (out)
        cur[o] = p.extrapolation;
      for (int64_t d = rank - 1; d >= 0; --d) {
        if (++oidx[d] < outShape[d])
          break;
        oidx[d] = 0;
      }
    }
  }
  dispatchNumeric(X.dtype(), [&](auto tv) {
    using T = decltype(tv);
    T *yp = Y.data<T>();
    for (int64_t i = 0; i < Y.numel(); ++i)
      yp[i] = fromDouble<T>(cur[i]);
  }, "X");
  return Y;
}

/// Output shape from scales: floor(in * scale).
std::vector<int64_t> sizesFromScales(const AttrReader &ctx, const std::vector<int64_t> &in,
                                     const std::vector<double> &scales) {
  std::vector<int64_t> out(in.size());
  for (size_t d = 0; d < in.size(); ++d) {
    double s = scales[d];
    if (!(s > 0) || !std::isfinite(s))
      ctx.fail("scales must be positive and finite, got ", s, " for axis ", d);
    double v = std::floor(double(in[d]) * s);
    if (v > double(int64_t(1) << 40))
      ctx.fail("scale ", s, " for axis ", d, " gives an output dimension that is too large");
    out[d] = int64_t(v);
  }
  return out;
}

std::vector<double> readScales(const AttrReader &ctx, const Tensor &t, int64_t rank) {
  ctx.check(t.numel() == rank, "scales has ", t.numel(), " values, expected ", rank,
            " (one per input dimension)");
  ctx.check(t.dtype() != DType::string, "scales must be numeric");
  std::vector<double> v = t.toDoubleVector();
  for (double s : v)
    ctx.check(s > 0 && std::isfinite(s), "scales must be positive and finite, got ", s);
  return v;
}

/// Resize kernel for every opset, and Upsample.
void resizeKernel(KernelContext &ctx, bool upsample) {
  const Tensor &X = ctx.input(0);
  const int64_t rank = X.rank();
  ctx.check(rank >= 1, "X must have rank >= 1");
  int64_t opset = ctx.opset();
  bool legacy = upsample || opset < 11;
  ResizeParams p = resizeParams(ctx, legacy);
  std::vector<double> scales;
  std::vector<int64_t> outShape;
  if (upsample && opset < 9) {
    if (ctx.hasAttr("scales")) {
      std::vector<float> s = ctx.attrFloats("scales");
      ctx.check(int64_t(s.size()) == rank, "attribute scales has ", s.size(), " values, expected ",
                rank);
      scales.assign(s.begin(), s.end());
    } else {
      ctx.check(rank == 4, "Upsample-1 needs a 4-D input, got ", X.shapeString());
      scales = {1.0, 1.0, ctx.attrFloat("height_scale"), ctx.attrFloat("width_scale")};
    }
    for (double s : scales)
      ctx.check(s >= 1, "Upsample scales must be >= 1, got ", s);
    outShape = sizesFromScales(ctx, X.shape(), scales);
  } else if (legacy) {
    scales = readScales(ctx, ctx.input(1), rank);
    outShape = sizesFromScales(ctx, X.shape(), scales);
  } else {
    bool hasScales = ctx.hasInput(2) && ctx.input(2).numel() > 0;
    bool hasSizes = ctx.hasInput(3) && ctx.input(3).numel() > 0;
    ctx.check(hasScales != hasSizes, hasScales ? "only one of scales and sizes may be given"
                                               : "one of scales and sizes must be given");
    if (hasScales) {
      scales = readScales(ctx, ctx.input(2), rank);
      outShape = sizesFromScales(ctx, X.shape(), scales);
    } else {
      const Tensor &st = ctx.input(3);
      ctx.check(st.dtype() == DType::i64, "sizes must be int64, got ", dtypeName(st.dtype()));
      ctx.check(st.numel() == rank, "sizes has ", st.numel(), " values, expected ", rank);
      outShape = st.toInt64Vector();
      scales.resize(rank);
      for (int64_t d = 0; d < rank; ++d) {
        ctx.check(outShape[d] >= 0, "sizes must be >= 0, got ", shapeToString(outShape));
        scales[d] = X.dim(d) > 0 ? double(outShape[d]) / double(X.dim(d)) : 1.0;
        if (scales[d] == 0)
          scales[d] = 1.0; // output is empty; the value is not used
      }
    }
    if (p.coord == CoordMode::TfCropAndResize) {
      ctx.check(ctx.hasInput(1), "roi is required for tf_crop_and_resize");
      const Tensor &roi = ctx.input(1);
      ctx.check(roi.numel() == 2 * rank, "roi has ", roi.numel(), " values, expected ", 2 * rank,
                " (starts then ends, one per input dimension)");
      p.roi = roi.toDoubleVector();
    }
  }
  ctx.setOutput(0, resizeCore(ctx, X, outShape, scales, p));
}

void inferResize(InferContext &ctx, bool upsample) {
  const Type &xt = ctx.inputType(0);
  const Shape &xs = tensorShape(ctx, 0);
  if (!xs.rankKnown) {
    ctx.setOutputType(0, Type::tensor(xt.dtype));
    return;
  }
  const int64_t rank = xs.rank();
  std::vector<Dim> out(rank);
  std::vector<double> scales;
  const Tensor *sizes = nullptr;
  int64_t opset = ctx.opset();
  if (upsample && opset < 9) {
    if (ctx.hasAttr("scales")) {
      std::vector<float> s = ctx.attrFloats("scales");
      if (int64_t(s.size()) == rank)
        scales.assign(s.begin(), s.end());
    } else if (rank == 4) {
      scales = {1.0, 1.0, ctx.attrFloat("height_scale", 0), ctx.attrFloat("width_scale", 0)};
    }
  } else {
    size_t si = (upsample || opset < 11) ? 1 : 2;
    if (ctx.hasInput(si)) {
      const Tensor *s = ctx.inputConstant(si);
      if (s && s->numel() == rank && s->dtype() != DType::string)
        scales = s->toDoubleVector();
    }
    if (!upsample && opset >= 11 && ctx.hasInput(3)) {
      const Tensor *z = ctx.inputConstant(3);
      if (z && z->numel() == rank && z->dtype() == DType::i64)
        sizes = z;
    }
  }
  for (int64_t d = 0; d < rank; ++d) {
    if (sizes) {
      int64_t v = sizes->getInt64(d);
      if (v >= 0)
        out[d] = Dim(v);
    } else if (int64_t(scales.size()) == rank) {
      double s = scales[d];
      if (s == 1.0)
        out[d] = xs.dims[d];
      else if (xs.dims[d].isStatic() && s > 0 && std::isfinite(s))
        out[d] = Dim(int64_t(std::floor(double(xs.dims[d].value) * s)));
    }
  }
  ctx.setOutputType(0, Type::tensor(xt.dtype, Shape(out)));
}

//===----------------------------------------------------------------------===//
// GridSample (torch.nn.functional.grid_sample semantics)
//===----------------------------------------------------------------------===//

enum class GridPad { Zeros, Border, Reflection };

template <class F> F gsUnnormalize(F c, int64_t size, bool alignCorners) {
  return alignCorners ? (c + 1) / 2 * F(size - 1) : ((c + 1) * F(size) - 1) / 2;
}

template <class F> F gsReflect(F in, int64_t twiceLow, int64_t twiceHigh) {
  if (twiceLow == twiceHigh)
    return F(0);
  F mn = F(twiceLow) / 2;
  F span = F(twiceHigh - twiceLow) / 2;
  in = std::fabs(in - mn);
  F extra = std::fmod(in, span);
  F flips = std::floor(in / span);
  return std::fmod(flips, F(2)) == 0 ? extra + mn : span - extra + mn;
}

template <class F> F gsComputeCoord(F c, int64_t size, GridPad pad, bool alignCorners) {
  if (pad == GridPad::Border) {
    c = std::min(F(size - 1), std::max(c, F(0)));
  } else if (pad == GridPad::Reflection) {
    c = alignCorners ? gsReflect(c, 0, 2 * (size - 1)) : gsReflect(c, -1, 2 * size - 1);
    c = std::min(F(size - 1), std::max(c, F(0)));
  }
  return c;
}

template <class F> void gsCubicCoeffs(F t, F c[4]) {
  const F A = F(-0.75);
  auto near = [&](F x) { return ((A + 2) * x - (A + 3)) * x * x + 1; };
  auto far = [&](F x) { return ((A * x - 5 * A) * x + 8 * A) * x - 4 * A; };
  c[0] = far(t + 1);
  c[1] = near(t);
  c[2] = near(1 - t);
  c[3] = far(2 - t);
}

void gridSampleKernel(KernelContext &ctx) {
  const Tensor &X = ctx.input(0), &G = ctx.input(1);
  ctx.check(X.rank() == 4, "X must be 4-D (N, C, H, W), got ", X.shapeString());
  ctx.check(G.rank() == 4 && G.dim(3) == 2 && G.dim(0) == X.dim(0), "grid must have shape [N, H_out, ",
            "W_out, 2] with N = ", X.dim(0), ", got ", G.shapeString());
  std::string m = ctx.attrString("mode", "bilinear");
  std::string pm = ctx.attrString("padding_mode", "zeros");
  bool ac = ctx.attrInt("align_corners", 0) != 0;
  int mode = m == "bilinear" ? 0 : m == "nearest" ? 1 : m == "bicubic" ? 2 : -1;
  ctx.check(mode >= 0, "mode '", m, "' is not supported (expected bilinear, nearest or bicubic)");
  GridPad pad = pm == "zeros" ? GridPad::Zeros : pm == "border" ? GridPad::Border : GridPad::Reflection;
  ctx.check(pm == "zeros" || pm == "border" || pm == "reflection", "padding_mode '", pm,
            "' is not supported (expected zeros, border or reflection)");
  const int64_t N = X.dim(0), C = X.dim(1), H = X.dim(2), W = X.dim(3);
  const int64_t Ho = G.dim(1), Wo = G.dim(2);
  Tensor Y(X.dtype(), {N, C, Ho, Wo});
  if (Y.numel() == 0)
    return ctx.setOutput(0, Y);
  Tensor Gc = G.dtype() == X.dtype() ? G : G.cast(X.dtype());
  dispatchFloat(X.dtype(), [&](auto tv) {
    using T = decltype(tv);
    using F = std::conditional_t<std::is_same_v<T, double>, double, float>;
    const T *xp = X.data<T>();
    const T *gp = Gc.data<T>();
    T *yp = Y.data<T>();
    // Reads a pixel at integral coordinates given as F; zero outside (and for NaN).
    auto atF = [&](const T *plane, F y, F x) -> F {
      if (!(x >= 0 && x < F(W) && y >= 0 && y < F(H)))
        return F(0);
      return F(plane[int64_t(y) * W + int64_t(x)]);
    };
    auto at = [&](const T *plane, int64_t y, int64_t x) -> F {
      if (x < 0 || x >= W || y < 0 || y >= H)
        return F(0);
      return F(plane[y * W + x]);
    };
    for (int64_t n = 0; n < N; ++n)
      for (int64_t h = 0; h < Ho; ++h)
        for (int64_t w = 0; w < Wo; ++w) {
          const T *g = gp + ((n * Ho + h) * Wo + w) * 2;
          F gx = F(g[0]), gy = F(g[1]);
          F ix = gsUnnormalize(gx, W, ac), iy = gsUnnormalize(gy, H, ac);
          for (int64_t c = 0; c < C; ++c) {
            const T *plane = xp + (n * C + c) * H * W;
            F v = 0;
            if (mode == 2) {
              F fx = std::floor(ix), fy = std::floor(iy);
              F tx = ix - fx, ty = iy - fy;
              F cx[4], cy[4];
              gsCubicCoeffs(tx, cx);
              gsCubicCoeffs(ty, cy);
              for (int j = 0; j < 4; ++j) {
                F row = 0;
                for (int i = 0; i < 4; ++i) {
                  F px = gsComputeCoord(fx - 1 + i, W, pad, ac);
                  F py = gsComputeCoord(fy - 1 + j, H, pad, ac);
                  row += cx[i] * atF(plane, py, px);
                }
                v += cy[j] * row;
              }
            } else {
              F sx = gsComputeCoord(ix, W, pad, ac), sy = gsComputeCoord(iy, H, pad, ac);
              if (!std::isfinite(sx) || !std::isfinite(sy)) {
                v = 0;
              } else if (mode == 1) {
                F rx = std::nearbyint(sx), ry = std::nearbyint(sy);
                if (rx >= 0 && rx < W && ry >= 0 && ry < H)
                  v = at(plane, int64_t(ry), int64_t(rx));
              } else {
                F fx = std::floor(sx), fy = std::floor(sy);
                if (fx >= -2 && fx <= F(W) + 1 && fy >= -2 && fy <= F(H) + 1) {
                  int64_t x0 = int64_t(fx), y0 = int64_t(fy);
                  F lx = sx - fx, ly = sy - fy;
                  v = at(plane, y0, x0) * (1 - lx) * (1 - ly) + at(plane, y0, x0 + 1) * lx * (1 - ly) +
                      at(plane, y0 + 1, x0) * (1 - lx) * ly + at(plane, y0 + 1, x0 + 1) * lx * ly;
                }
              }
            }
            yp[((n * C + c) * Ho + h) * Wo + w] = T(v);
          }
        }
  }, "X");
  ctx.setOutput(0, std::move(Y));
}

void inferGridSample(InferContext &ctx) {
  const Shape &xs = tensorShape(ctx, 0);
  const Shape &gs = tensorShape(ctx, 1);
  std::vector<Dim> d(4);
  if (xs.rankKnown) {
    ctx.check(xs.rank() == 4, "X must be 4-D, got ", xs.str());
    d[0] = xs.dims[0];
    d[1] = xs.dims[1];
  }
  if (gs.rankKnown) {
    ctx.check(gs.rank() == 4, "grid must be 4-D, got ", gs.str());
    if (d[0].isUnknown())
      d[0] = gs.dims[0];
    d[2] = gs.dims[1];
    d[3] = gs.dims[2];
  }
  ctx.setOutputType(0, Type::tensor(ctx.inputType(0).dtype, Shape(d)));
}

//===----------------------------------------------------------------------===//
// RoiAlign (onnxruntime semantics)
//===----------------------------------------------------------------------===//

/// RoiAlign's attributes, checked: {half_pixel coordinates, average pooling}.
std::pair<bool, bool> roiAlignModes(const AttrReader &ctx) {
  std::string mode = ctx.attrString("mode", "avg");
  ctx.check(mode == "avg" || mode == "max", "mode '", mode, "' is not supported (expected avg or max)");
  std::string ctm = ctx.attrString("coordinate_transformation_mode",
                                   ctx.opset() >= 16 ? "half_pixel" : "output_half_pixel");
  ctx.check(ctm == "half_pixel" || ctm == "output_half_pixel", "coordinate_transformation_mode '",
            ctm, "' is not supported (expected half_pixel or output_half_pixel)");
  return {ctm == "half_pixel", mode == "avg"};
}

void roiAlignKernel(KernelContext &ctx) {
  const Tensor &X = ctx.input(0), &rois = ctx.input(1), &bi = ctx.input(2);
  ctx.check(X.rank() == 4, "X must be 4-D (N, C, H, W), got ", X.shapeString());
  ctx.check(rois.rank() == 2 && rois.dim(1) == 4, "rois must have shape [num_rois, 4], got ",
            rois.shapeString());
  ctx.check(bi.rank() == 1 && bi.dim(0) == rois.dim(0), "batch_indices must have shape [",
            rois.dim(0), "], got ", bi.shapeString());
  auto [halfPixel, avg] = roiAlignModes(ctx);
  const int64_t ph = ctx.attrInt("output_height", 1), pw = ctx.attrInt("output_width", 1);
  ctx.check(ph >= 1 && pw >= 1, "output_height and output_width must be >= 1, got ", ph, ", ", pw);
  const int64_t sr = ctx.attrInt("sampling_ratio", 0);
  ctx.check(sr >= 0, "sampling_ratio must be >= 0, got ", sr);
  const double spatialScale = ctx.attrFloat("spatial_scale", 1.0f);
  const int64_t N = X.dim(0), C = X.dim(1), H = X.dim(2), W = X.dim(3), R = rois.dim(0);
  std::vector<int64_t> batch = bi.toInt64Vector();
  for (int64_t r = 0; r < R; ++r)
    ctx.check(batch[r] >= 0 && batch[r] < N, "batch_indices[", r, "] = ", batch[r],
              " is out of range [0, ", N, ")");
  Tensor Y(X.dtype(), {R, C, ph, pw});
  Tensor rc = rois.dtype() == X.dtype() ? rois : rois.cast(X.dtype());
  dispatchFloat(X.dtype(), [&](auto tv) {
    using T = decltype(tv);
    using F = std::conditional_t<std::is_same_v<T, double>, double, float>;
    const T *xp = X.data<T>();
    const T *rp = rc.data<T>();
    T *yp = Y.data<T>();
    struct Pre {
      int64_t p1, p2, p3, p4;
      F w1, w2, w3, w4;
    };
    std::vector<Pre> pre;
    for (int64_t r = 0; r < R; ++r) {
      const F off = halfPixel ? F(0.5) : F(0);
      F x1 = F(rp[r * 4 + 0]) * F(spatialScale) - off, y1 = F(rp[r * 4 + 1]) * F(spatialScale) - off;
      F x2 = F(rp[r * 4 + 2]) * F(spatialScale) - off, y2 = F(rp[r * 4 + 3]) * F(spatialScale) - off;
      F rw = x2 - x1, rh = y2 - y1;
      if (!halfPixel) {
        rw = std::max(rw, F(1));
        rh = std::max(rh, F(1));
      }
      F bh = rh / F(ph), bw = rw / F(pw);
      double gh = sr > 0 ? double(sr) : std::ceil(double(rh) / double(ph));
      double gw = sr > 0 ? double(sr) : std::ceil(double(rw) / double(pw));
      if (!std::isfinite(gh) || !std::isfinite(gw) || gh > 1e4 || gw > 1e4)
        ctx.fail("roi ", r, " gives a sampling grid that is too large or not finite");
      const int64_t gridH = std::max<int64_t>(int64_t(gh), 0), gridW = std::max<int64_t>(int64_t(gw), 0);
      const F count = F(std::max<int64_t>(gridH * gridW, 1));
      pre.clear();
      pre.reserve(ph * pw * gridH * gridW);
      for (int64_t py = 0; py < ph; ++py)
        for (int64_t px = 0; px < pw; ++px)
          for (int64_t iy = 0; iy < gridH; ++iy) {
            F yy = y1 + F(py) * bh + (F(iy) + F(0.5)) * bh / F(gridH);
            for (int64_t ix = 0; ix < gridW; ++ix) {
              F xx = x1 + F(px) * bw + (F(ix) + F(0.5)) * bw / F(gridW);
              F y = yy, x = xx;
              if (!(y >= -1 && y <= F(H) && x >= -1 && x <= F(W))) {
                pre.push_back({0, 0, 0, 0, 0, 0, 0, 0});
                continue;
              }
              if (y <= 0)
                y = 0;
              if (x <= 0)
                x = 0;
              int64_t yl = int64_t(y), xl = int64_t(x), yh, xh;
              if (yl >= H - 1) {
                yh = yl = H - 1;
                y = F(yl);
              } else {
                yh = yl + 1;
              }
              if (xl >= W - 1) {
                xh = xl = W - 1;
                x = F(xl);
              } else {
                xh = xl + 1;
              }
              F ly = y - F(yl), lx = x - F(xl), hy = 1 - ly, hx = 1 - lx;
              pre.push_back({yl * W + xl, yl * W + xh, yh * W + xl, yh * W + xh, hy * hx, hy * lx,
                             ly * hx, ly * lx});
            }
          }
      for (int64_t c = 0; c < C; ++c) {
        const T *plane = xp + (batch[r] * C + c) * H * W;
        size_t k = 0;
        for (int64_t py = 0; py < ph; ++py)
          for (int64_t px = 0; px < pw; ++px) {
            F out = 0;
            bool first = true;
            for (int64_t s = 0; s < gridH * gridW; ++s, ++k) {
              const Pre &q = pre[k];
              if (avg) {
                out += q.w1 * F(plane[q.p1]) + q.w2 * F(plane[q.p2]) + q.w3 * F(plane[q.p3]) +
                       q.w4 * F(plane[q.p4]);
              } else {
                F v = std::max(std::max(std::max(q.w1 * F(plane[q.p1]), q.w2 * F(plane[q.p2])),
                                        q.w3 * F(plane[q.p3])),
                               q.w4 * F(plane[q.p4]));
                out = first ? v : std::max(out, v);
                first = false;
              }
            }
            if (avg)
              out /= count;
            yp[((r * C + c) * ph + py) * pw + px] = T(out);
          }
      }
    }
  }, "X");
  ctx.setOutput(0, std::move(Y));
}

void inferRoiAlign(InferContext &ctx) {
  const Shape &xs = tensorShape(ctx, 0);
  const Shape &rs = tensorShape(ctx, 1);
  const Shape &bs = tensorShape(ctx, 2);
  std::vector<Dim> d(4);
  if (rs.rankKnown && rs.rank() == 2)
    d[0] = rs.dims[0];
  else if (bs.rankKnown && bs.rank() == 1)
    d[0] = bs.dims[0];
  if (xs.rankKnown) {
    ctx.check(xs.rank() == 4, "X must be 4-D, got ", xs.str());
    d[1] = xs.dims[1];
  }
  d[2] = Dim(ctx.attrInt("output_height", 1));
  d[3] = Dim(ctx.attrInt("output_width", 1));
  ctx.setOutputType(0, Type::tensor(ctx.inputType(0).dtype, Shape(d)));
}

//===----------------------------------------------------------------------===//
// NonMaxSuppression (onnxruntime semantics)
//===----------------------------------------------------------------------===//

void nmsKernel(KernelContext &ctx) {
  const Tensor &boxes = ctx.input(0), &scores = ctx.input(1);
  ctx.check(boxes.rank() == 3 && boxes.dim(2) == 4, "boxes must have shape [batch, boxes, 4], got ",
            boxes.shapeString());
  ctx.check(scores.rank() == 3 && scores.dim(0) == boxes.dim(0) && scores.dim(2) == boxes.dim(1),
            "scores must have shape [", boxes.dim(0), ", classes, ", boxes.dim(1), "], got ",
            scores.shapeString());
  const int64_t centerBox = ctx.attrInt("center_point_box", 0);
  ctx.check(centerBox == 0 || centerBox == 1, "center_point_box must be 0 or 1, got ", centerBox);
  int64_t maxOut = 0;
  if (ctx.hasInput(2)) {
    const Tensor &t = ctx.input(2);
    ctx.check(t.numel() == 1, "max_output_boxes_per_class must hold one value, got ", t.shapeString());
    maxOut = t.getInt64(0);
  }
  double iouTh = 0;
  if (ctx.hasInput(3)) {
    const Tensor &t = ctx.input(3);
    ctx.check(t.numel() == 1, "iou_threshold must hold one value, got ", t.shapeString());
    iouTh = t.getDouble(0);
    ctx.check(iouTh >= 0 && iouTh <= 1, "iou_threshold must be in [0, 1], got ", iouTh);
  }
  bool hasScoreTh = ctx.hasInput(4);
  double scoreTh = 0;
  if (hasScoreTh) {
    const Tensor &t = ctx.input(4);
    ctx.check(t.numel() == 1, "score_threshold must hold one value, got ", t.shapeString());
    scoreTh = t.getDouble(0);
  }
  const int64_t B = boxes.dim(0), NB = boxes.dim(1), NC = scores.dim(1);
  std::vector<double> bx = boxes.toDoubleVector();
  std::vector<double> sc = scores.toDoubleVector();
  // Per box: x_min, y_min, x_max, y_max.
  std::vector<double> corners(bx.size());
  for (int64_t i = 0; i < B * NB; ++i) {
    const double *b = &bx[i * 4];
    double *c = &corners[i * 4];
    if (centerBox) {
      c[0] = b[0] - b[2] / 2;
      c[1] = b[1] - b[3] / 2;
      c[2] = b[0] + b[2] / 2;
      c[3] = b[1] + b[3] / 2;
    } else {
      c[0] = std::min(b[1], b[3]);
      c[1] = std::min(b[0], b[2]);
      c[2] = std::max(b[1], b[3]);
      c[3] = std::max(b[0], b[2]);
    }
  }
  auto suppressed = [&](const double *a, const double *b) {
    double ix0 = std::max(a[0], b[0]), iy0 = std::max(a[1], b[1]);
    double ix1 = std::min(a[2], b[2]), iy1 = std::min(a[3], b[3]);
    if (ix1 <= ix0 || iy1 <= iy0)
      return false;
    double inter = (ix1 - ix0) * (iy1 - iy0);
    double areaA = (a[2] - a[0]) * (a[3] - a[1]);
    double areaB = (b[2] - b[0]) * (b[3] - b[1]);
    double uni = areaA + areaB - inter;
    if (areaA <= 0 || areaB <= 0 || uni <= 0)
      return false;
    return inter / uni > iouTh;
  };
  std::vector<int64_t> result;
  std::vector<int64_t> cand, selected;
  if (maxOut > 0) {
    for (int64_t b = 0; b < B; ++b)
      for (int64_t c = 0; c < NC; ++c) {
        const double *s = &sc[(b * NC + c) * NB];
        cand.clear();
        for (int64_t i = 0; i < NB; ++i)
          if (!std::isnan(s[i]) && (!hasScoreTh || s[i] > scoreTh))
            cand.push_back(i);
        std::stable_sort(cand.begin(), cand.end(), [&](int64_t x, int64_t y) { return s[x] > s[y]; });
        selected.clear();
        for (int64_t i : cand) {
          if (int64_t(selected.size()) >= maxOut)
            break;
          const double *bi = &corners[(b * NB + i) * 4];
          bool keep = true;
          for (int64_t j : selected)
            if (suppressed(bi, &corners[(b * NB + j) * 4])) {
              keep = false;
              break;
            }
          if (keep)
            selected.push_back(i);
        }
        for (int64_t i : selected) {
          result.push_back(b);
          result.push_back(c);
          result.push_back(i);
        }
      }
  }
  int64_t K = int64_t(result.size()) / 3;
  ctx.setOutput(0, Tensor::fromVector<int64_t>({K, 3}, result));
}

} // namespace

// --- lowerings of the Image ops
// Resize / Upsample with static output shapes. The coordinate transformation is the reference
// kernel's (axisTaps) written as expressions of the output coordinate, in double and in the
// same order of operations, so indices and weights are bit-identical; scales and roi are
// literals when constant and read at run time otherwise (sizes come from the static output
// shape). Nearest without tf_crop_and_resize is one gather (exact for every dtype). Linear,
// cubic and tf_crop_and_resize run the reference's separable passes: one f64 stage per resized
// axis, each a reduction over the axis's taps (2 linear, 4 cubic) in the reference's order, then
// the extrapolation value where a coordinate is outside, then the conversion to the output
// dtype (integers: round half to even, saturate).
namespace {

using loop::Expr;
using loop::Var;

/// What the lowering needs to know of one axis.
struct LAxis {
  int64_t in = 1, out = 1;
  Expr scale;            ///< f64
  bool identity = false; ///< statically known to map x to x with weight 1 (no pass needed)
};

/// One axis's interpolation for output coordinate x: the tap indices and weights (f64) and
/// whether the coordinate is outside the roi (tf_crop_and_resize; else false).
struct LTaps {
  std::vector<Expr> idx, w;
  Expr outside;
};

Expr f64(Expr e) { return e.type() == loop::Type::f64() ? e : loop::cast(DType::f64, e); }
Expr clampIndex(Expr i, int64_t n) { return loop::max(loop::min(i, Expr(n - 1)), Expr(int64_t(0))); }

/// The reference's axisTaps for output coordinate `x` (an expression), as expressions.
LTaps axisTapsExpr(const ResizeParams &p, const LAxis &a, Expr x, const Expr &roiStart,
                   const Expr &roiEnd) {
  LTaps t;
  const int64_t in = a.in, out = a.out;
  Expr xd = f64(x), sc = a.scale;
  Expr lenResized = Expr(double(in)) * sc;
  Expr xo;
  switch (p.coord) {
  case CoordMode::HalfPixel: xo = (xd + 0.5) / sc - 0.5; break;
  case CoordMode::PytorchHalfPixel: xo = out > 1 ? (xd + 0.5) / sc - 0.5 : Expr(0.0); break;
  case CoordMode::AlignCorners:
    xo = loop::select(lenResized == 1.0, Expr(0.0), xd * double(in - 1) / (lenResized - 1.0));
    break;
  case CoordMode::Asymmetric: xo = xd / sc; break;
  case CoordMode::TfHalfPixelForNN: xo = (xd + 0.5) / sc; break;
  case CoordMode::TfCropAndResize: {
    Expr st = roiStart, en = roiEnd;
    xo = loop::select(lenResized == 1.0, (en - st) * double(in - 1) / 2.0,
                      xd * (en - st) * double(in - 1) / (lenResized - 1.0));
    xo = xo + st * double(in - 1);
    t.outside = (xo < 0.0) || (xo > double(in - 1));
    xo = loop::select(t.outside, Expr(0.0), xo);
    break;
  }
  }
  // !isfinite -> 0 (NaN and inf fail the comparison), then clamp to +-1e15
  xo = loop::select(loop::fabs(xo) <= 1e300, xo, Expr(0.0));
  xo = loop::max(loop::min(xo, Expr(1e15)), Expr(-1e15));
  Expr fl = loop::floor(xo);
  Expr r = xo - fl;
  Expr x0 = loop::cast(DType::i64, fl);
  if (p.mode == InterpMode::Nearest) {
    Expr up;
    switch (p.nearest) {
    case NearestMode::RoundPreferFloor: up = r > 0.5; break;
    case NearestMode::RoundPreferCeil: up = r >= 0.5; break;
    case NearestMode::Floor: up = loop::makeBool(false); break;
    case NearestMode::Ceil: up = r != 0.0; break;
    case NearestMode::Simple: up = (r != 0.0) && (sc < 1.0); break;
    }
    t.idx.push_back(clampIndex(loop::select(up, x0 + int64_t(1), x0), in));
    t.w.push_back(Expr(1.0));
    return t;
  }
  if (p.mode == InterpMode::Linear) {
    t.idx = {clampIndex(x0, in), clampIndex(x0 + int64_t(1), in)};
    t.w = {1.0 - r, r};
    return t;
  }
  const double A = p.cubicA;
  Expr r1 = r + 1.0, q = 1.0 - r, q1 = q + 1.0;
  std::vector<Expr> c = {
      ((A * r1 - 5 * A) * r1 + 8 * A) * r1 - 4 * A,
      ((A + 2) * r - (A + 3)) * r * r + 1.0,
      ((A + 2) * q - (A + 3)) * q * q + 1.0,
      ((A * q1 - 5 * A) * q1 + 8 * A) * q1 - 4 * A,
  };
  Expr sum = Expr(0.0);
  for (int k = 0; k < 4; ++k) {
    Expr i = x0 + int64_t(k - 1);
    if (p.excludeOutside)
      c[k] = loop::select((i < int64_t(0)) || (i >= in), Expr(0.0), c[k]);
    sum = sum + c[k];
    t.idx.push_back(clampIndex(i, in));
  }
  for (int k = 0; k < 4; ++k)
    t.w.push_back(p.excludeOutside ? loop::select(sum != 0.0, c[k] / sum, c[k]) : c[k]);
  return t;
}

/// The reference's fromDouble: integers round half to even and saturate (NaN -> 0), bool is
/// v != 0, floats convert.
Expr fromDoubleExpr(DType dt, Expr v) {
  if (dt == DType::boolean)
    return v != 0.0;
  if (isFloat(dt))
    return loop::cast(dt, v);
  loop::Type t(dt);
  Expr lo = te::reduceIdentity(loop::ReduceOp::Max, t), hi = te::reduceIdentity(loop::ReduceOp::Min, t);
  double dlo = double(*loop::asConstInt(lo)), dhi = isSigned(dt) || dt != DType::u64
                                                       ? double(*loop::asConstInt(hi))
                                                       : 18446744073709551615.0;
  Expr r = loop::round(v);
  Expr y = loop::select(r <= dlo, lo, loop::select(r >= dhi, hi, loop::cast(dt, loop::max(loop::min(r, Expr(dhi)), Expr(dlo)))));
  return loop::select(!(r == r), loop::makeZero(t), y);
}

void lowerResize(LowerContext &ctx, bool upsample) {
  std::vector<int64_t> xs = ctx.inputShape(0), os = ctx.outputShape(0);
  const int64_t rank = int64_t(xs.size());
  ctx.check(rank >= 1, "X must have rank >= 1");
  int64_t opset = ctx.opset();
  bool legacy = upsample || opset < 11;
  ResizeParams p = resizeParams(ctx, legacy);
  DType dt = ctx.inputDType(0);
  std::vector<LAxis> axes(rank);
  for (int64_t d = 0; d < rank; ++d) {
    axes[d].in = xs[d];
    axes[d].out = os[d];
  }
  int64_t total = 1;
  for (int64_t d : os)
    total *= d;
  ctx.check(total == 0 || std::all_of(xs.begin(), xs.end(), [](int64_t v) { return v > 0; }),
            "cannot resize an empty input ", shapeToString(xs), " to ", shapeToString(os));
  // scales: literals (attribute, constant input or sizes) or run-time loads
  auto scalesFromInput = [&](size_t i) {
    int64_t n = 1;
    for (int64_t v : ctx.inputShape(i))
      n *= v;
    ctx.check(n == rank, "scales has ", n, " values, expected ", rank, " (one per input dimension)");
    if (ctx.inputConstant(i)) {
      std::vector<double> v = ctx.constantFloats(i, "scales");
      for (int64_t d = 0; d < rank; ++d) {
        ctx.check(v[d] > 0 && std::isfinite(v[d]), "scales must be positive and finite, got ", v[d]);
        axes[d].scale = Expr(v[d]);
      }
      return;
    }
    ctx.check(isFloat(ctx.inputDType(i)), "scales must be float, got ", dtypeName(ctx.inputDType(i)));
    for (int64_t d = 0; d < rank; ++d)
      axes[d].scale = f64(ctx.input(i).access({Expr(d)}));
  };
  Expr roiS, roiE;
  std::vector<Expr> roiStart(rank), roiEnd(rank);
  if (upsample && opset < 9) {
    std::vector<double> sc;
    if (ctx.hasAttr("scales")) {
      std::vector<float> s = ctx.attrFloats("scales");
      ctx.check(int64_t(s.size()) == rank, "attribute scales has ", s.size(), " values, expected ", rank);
      sc.assign(s.begin(), s.end());
    } else {
      ctx.check(rank == 4, "Upsample-1 needs a 4-D input, got ", shapeToString(xs));
      sc = {1.0, 1.0, ctx.attrFloat("height_scale"), ctx.attrFloat("width_scale")};
    }
    for (int64_t d = 0; d < rank; ++d)
      axes[d].scale = Expr(sc[d]);
  } else if (legacy) {
    scalesFromInput(1);
  } else {
    auto given = [&](size_t i) {
      if (!ctx.hasInput(i))
        return false;
      int64_t n = 1;
      for (int64_t v : ctx.inputShape(i))
        n *= v;
      return n > 0;
    };
    bool hasScales = given(2), hasSizes = given(3);
    ctx.check(hasScales != hasSizes, hasScales ? "only one of scales and sizes may be given"
                                               : "one of scales and sizes must be given");
    if (hasScales) {
      scalesFromInput(2);
    } else {
      for (int64_t d = 0; d < rank; ++d) {
        double sc = double(os[d]) / double(xs[d]);
        axes[d].scale = Expr(sc == 0 ? 1.0 : sc);
      }
    }
    if (p.coord == CoordMode::TfCropAndResize) {
      ctx.check(ctx.hasInput(1), "roi is required for tf_crop_and_resize");
      int64_t n = 1;
      for (int64_t v : ctx.inputShape(1))
        n *= v;
      ctx.check(n == 2 * rank, "roi has ", n, " values, expected ", 2 * rank,
                " (starts then ends, one per input dimension)");
      const Tensor *c = ctx.inputConstant(1);
      std::vector<double> rv = c ? c->toDoubleVector() : std::vector<double>();
      for (int64_t d = 0; d < rank; ++d) {
        roiStart[d] = c ? Expr(rv[d]) : f64(ctx.input(1).access({Expr(d)}));
        roiEnd[d] = c ? Expr(rv[d + rank]) : f64(ctx.input(1).access({Expr(d + rank)}));
      }
    }
  }
  // axes that map x to x with weight 1 whatever the mode (the reference's identity case)
  for (auto &a : axes) {
    const double *sc = loop::asConstFloat(a.scale);
    a.identity = a.in == a.out && sc && *sc == 1.0 &&
                 (p.coord == CoordMode::HalfPixel || p.coord == CoordMode::PytorchHalfPixel ||
                  p.coord == CoordMode::AlignCorners || p.coord == CoordMode::Asymmetric);
  }
  te::Tensor X = ctx.input(0);
  if (p.mode == InterpMode::Nearest && p.coord != CoordMode::TfCropAndResize) {
    ctx.setOutput(0, ctx.compute(lowering::shapeExprs(os), [&](std::vector<Var> iv) {
      std::vector<Expr> idx;
      for (int64_t d = 0; d < rank; ++d)
        idx.push_back(axes[d].identity ? Expr(iv[d])
                                       : axisTapsExpr(p, axes[d], iv[d], Expr(), Expr()).idx[0]);
      return X.access(idx);
    }));
    return;
  }
  ctx.check(dt != DType::boolean, "mode linear/cubic needs a numeric input, got ", dtypeName(dt));
  // separable passes in f64: after pass d, axes 0..d have their output extent
  std::vector<int64_t> cur = xs;
  te::Tensor C = ctx.compute(lowering::shapeExprs(xs), [&](std::vector<Var> iv) {
    return f64(X.access(std::vector<Expr>(iv.begin(), iv.end())));
  }, "f64");
  for (int64_t d = 0; d < rank; ++d) {
    if (axes[d].identity)
      continue;
    cur[d] = os[d];
    te::Tensor src = C;
    C = ctx.compute(lowering::shapeExprs(cur), [&](std::vector<Var> iv) {
      LTaps t = axisTapsExpr(p, axes[d], iv[d], roiStart[d], roiEnd[d]);
      const int64_t T = int64_t(t.idx.size());
      auto term = [&](Expr idx, Expr w) {
        std::vector<Expr> si(iv.begin(), iv.end());
        si[d] = idx;
        return loop::select(w == 0.0, Expr(0.0), w * src.access(si)); // zero weights skipped
      };
      if (T == 1)
        return te::ComputeBody(term(t.idx[0], t.w[0]));
      te::IterVar k = te::reduce_axis({Expr(int64_t(0)), Expr(T)}, "tap");
      Expr idx = t.idx[T - 1], w = t.w[T - 1];
      for (int64_t j = T - 2; j >= 0; --j) {
        idx = loop::select(Expr(k) == j, t.idx[j], idx);
        w = loop::select(Expr(k) == j, t.w[j], w);
      }
      return te::ComputeBody(te::sum(term(idx, w), {k}));
    }, "axis" + std::to_string(d));
  }
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(os), [&](std::vector<Var> iv) {
    Expr v = C.access(std::vector<Expr>(iv.begin(), iv.end()));
    if (p.coord == CoordMode::TfCropAndResize) {
      Expr out;
      for (int64_t d = 0; d < rank; ++d) {
        if (axes[d].identity)
          continue;
        Expr o = axisTapsExpr(p, axes[d], iv[d], roiStart[d], roiEnd[d]).outside;
        out = out.defined() ? (out || o) : o;
      }
      if (out.defined())
        v = loop::select(out, Expr(p.extrapolation), v);
    }
    return fromDoubleExpr(dt, v);
  }));
}

/// GridSample (4-D, torch semantics as the reference): per output pixel the grid coordinate is
/// unnormalized, mapped by the padding mode (border clamps, reflection reflects; fmod written
/// as x - floor(x / y) * y, which can differ from std::fmod in the last bits) and sampled
/// nearest (round half to even), bilinear or bicubic (A = -0.75), in the input's float type and
/// in the reference's order of operations; samples outside the input read zero.
void lowerGridSample(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0), gs = ctx.inputShape(1);
  DType dt = ctx.inputDType(0);
  ctx.check(isFloat(dt), "lowering of GridSample expects a float input, got ", dtypeName(dt));
  ctx.check(xs.size() == 4, "X must be 4-D (N, C, H, W), got ", shapeToString(xs));
  ctx.check(gs.size() == 4 && gs[3] == 2 && gs[0] == xs[0], "grid must have shape [N, H_out, ",
            "W_out, 2] with N = ", xs[0], ", got ", shapeToString(gs));
  std::string m = ctx.attrString("mode", "bilinear");
  std::string pm = ctx.attrString("padding_mode", "zeros");
  bool ac = ctx.attrInt("align_corners", 0) != 0;
  int mode = m == "bilinear" ? 0 : m == "nearest" ? 1 : m == "bicubic" ? 2 : -1;
  ctx.check(mode >= 0, "mode '", m, "' is not supported (expected bilinear, nearest or bicubic)");
  ctx.check(pm == "zeros" || pm == "border" || pm == "reflection", "padding_mode '", pm,
            "' is not supported (expected zeros, border or reflection)");
  GridPad pad = pm == "zeros" ? GridPad::Zeros : pm == "border" ? GridPad::Border : GridPad::Reflection;
  const int64_t H = xs[2], W = xs[3];
  te::Tensor X = ctx.input(0), G = ctx.input(1);
  auto lit = [&](double v) { return lowering::constant(dt, v); };
  auto unnormalize = [&](Expr c, int64_t size) {
    return ac ? (c + 1.0) / 2.0 * lit(double(size - 1)) : ((c + 1.0) * lit(double(size)) - 1.0) / 2.0;
  };
  auto fmodPos = [&](Expr a, Expr b) { return a - loop::floor(a / b) * b; };
  auto reflect = [&](Expr in, int64_t twiceLow, int64_t twiceHigh) {
    if (twiceLow == twiceHigh)
      return lit(0);
    Expr mn = lit(double(twiceLow)) / 2.0, span = lit(double(twiceHigh - twiceLow)) / 2.0;
    in = loop::fabs(in - mn);
    Expr extra = fmodPos(in, span), flips = loop::floor(in / span);
    return loop::select(fmodPos(flips, lit(2)) == 0.0, extra + mn, span - extra + mn);
  };
  auto computeCoord = [&](Expr c, int64_t size) {
    if (pad == GridPad::Border)
      return loop::min(lit(double(size - 1)), loop::max(c, lit(0)));
    if (pad == GridPad::Reflection) {
      c = ac ? reflect(c, 0, 2 * (size - 1)) : reflect(c, -1, 2 * size - 1);
      return loop::min(lit(double(size - 1)), loop::max(c, lit(0)));
    }
    return c;
  };
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)), [&](Var n, Var c, Var h, Var w) {
    // a pixel at integral coordinates, zero outside (and for NaN)
    auto atF = [&](Expr y, Expr x) {
      Expr inside = (x >= 0.0) && (x < lit(double(W))) && (y >= 0.0) && (y < lit(double(H)));
      Expr yi = loop::cast(DType::i64, loop::select(inside, y, lit(0)));
      Expr xi = loop::cast(DType::i64, loop::select(inside, x, lit(0)));
      return loop::select(inside, X(n, c, yi, xi), lit(0));
    };
    auto at = [&](Expr y, Expr x) { return lowering::loadPadded(X, {n, c, y, x}, xs, lit(0)); };
    Expr gx = G(n, h, w, int64_t(0)), gy = G(n, h, w, int64_t(1));
    if (G.dtype() != dt) { // the reference casts the grid to X's type
      gx = loop::cast(dt, gx);
      gy = loop::cast(dt, gy);
    }
    Expr ix = unnormalize(gx, W), iy = unnormalize(gy, H);
    if (mode == 2) {
      Expr fx = loop::floor(ix), fy = loop::floor(iy);
      Expr tx = ix - fx, ty = iy - fy;
      auto coeffs = [&](Expr t) {
        const double A = -0.75;
        auto near = [&](Expr x) { return ((x * (A + 2)) - (A + 3)) * x * x + 1.0; };
        auto far = [&](Expr x) { return ((x * A - 5 * A) * x + 8 * A) * x - 4 * A; };
        return std::vector<Expr>{far(t + 1.0), near(t), near(1.0 - t), far(2.0 - t)};
      };
      std::vector<Expr> cx = coeffs(tx), cy = coeffs(ty);
      Expr v = lit(0);
      for (int j = 0; j < 4; ++j) {
        Expr row = lit(0);
        for (int i = 0; i < 4; ++i) {
          Expr px = computeCoord(fx + double(i - 1), W), py = computeCoord(fy + double(j - 1), H);
          row = row + cx[i] * atF(py, px);
        }
        v = v + cy[j] * row;
      }
      return v;
    }
    Expr sx = computeCoord(ix, W), sy = computeCoord(iy, H);
    Expr finite = (loop::fabs(sx) <= lit(1e30)) && (loop::fabs(sy) <= lit(1e30));
    if (mode == 1) {
      Expr rx = loop::round(loop::select(finite, sx, lit(-1))), ry = loop::round(loop::select(finite, sy, lit(-1)));
      return atF(ry, rx);
    }
    Expr fx = loop::floor(loop::select(finite, sx, lit(-100))), fy = loop::floor(loop::select(finite, sy, lit(-100)));
    Expr ok = (fx >= -2.0) && (fx <= lit(double(W + 1))) && (fy >= -2.0) && (fy <= lit(double(H + 1)));
    Expr x0 = loop::cast(DType::i64, loop::select(ok, fx, lit(0)));
    Expr y0 = loop::cast(DType::i64, loop::select(ok, fy, lit(0)));
    Expr lx = sx - fx, ly = sy - fy;
    Expr v = at(y0, x0) * (1.0 - lx) * (1.0 - ly) + at(y0, x0 + int64_t(1)) * lx * (1.0 - ly) +
             at(y0 + int64_t(1), x0) * (1.0 - lx) * ly + at(y0 + int64_t(1), x0 + int64_t(1)) * lx * ly;
    return loop::select(ok, v, lit(0));
  }));
}

/// RoiAlign with a fixed sampling_ratio (> 0; 0 makes the grid size depend on each roi's
/// extent, which a static loop nest cannot express: an error). Per output (roi, channel, bin)
/// a reduction over the sr x sr sampling points computes each point's bilinear sample exactly
/// as the reference does (coordinates in the input's float type, points outside [-1, H] x
/// [-1, W] contribute zero), then averages (sum / sr^2) or takes the max. Rois and batch
/// indices are read at run time (an out-of-range batch index is clamped; the reference
/// reports it).
void lowerRoiAlign(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0), rs = ctx.inputShape(1), bs = ctx.inputShape(2);
  DType dt = ctx.inputDType(0);
  ctx.check(isFloat(dt), "lowering of RoiAlign expects a float input, got ", dtypeName(dt));
  ctx.check(xs.size() == 4, "X must be 4-D (N, C, H, W), got ", shapeToString(xs));
  ctx.check(rs.size() == 2 && rs[1] == 4, "rois must have shape [num_rois, 4], got ", shapeToString(rs));
  ctx.check(bs.size() == 1 && bs[0] == rs[0], "batch_indices must have shape [", rs[0], "], got ",
            shapeToString(bs));
  auto [halfPixel, avg] = roiAlignModes(ctx);
  const int64_t ph = ctx.attrInt("output_height", 1), pw = ctx.attrInt("output_width", 1);
  const int64_t sr = ctx.attrInt("sampling_ratio", 0);
  ctx.check(sr > 0, "lowering of RoiAlign needs sampling_ratio > 0 (a static sampling grid), got ", sr,
            "; with 0 the grid size depends on each roi's extent");
  const double spatialScale = ctx.attrFloat("spatial_scale", 1.0f);
  const int64_t N = xs[0], H = xs[2], W = xs[3];
  te::Tensor X = ctx.input(0), Rois = ctx.input(1), B = ctx.input(2);
  auto lit = [&](double v) { return lowering::constant(dt, v); };
  te::Tensor S = ctx.compute(lowering::shapeExprs(ctx.outputShape(0)), [&](Var r, Var c, Var py, Var px) {
    te::IterVar iy = te::reduce_axis({Expr(int64_t(0)), Expr(sr)}, "iy");
    te::IterVar ix = te::reduce_axis({Expr(int64_t(0)), Expr(sr)}, "ix");
    auto roi = [&](int64_t k) {
      Expr v = Rois(r, k);
      return v.type().dtype == dt ? v : loop::cast(dt, v);
    };
    Expr off = lit(halfPixel ? 0.5 : 0.0), scale = lit(spatialScale);
    Expr x1 = roi(0) * scale - off, y1 = roi(1) * scale - off;
    Expr x2 = roi(2) * scale - off, y2 = roi(3) * scale - off;
    Expr rw = x2 - x1, rh = y2 - y1;
    if (!halfPixel) {
      rw = loop::max(rw, lit(1));
      rh = loop::max(rh, lit(1));
    }
    Expr bh = rh / lit(double(ph)), bw = rw / lit(double(pw));
    Expr y = y1 + loop::cast(dt, Expr(py)) * bh + (loop::cast(dt, Expr(iy)) + 0.5) * bh / lit(double(sr));
    Expr x = x1 + loop::cast(dt, Expr(px)) * bw + (loop::cast(dt, Expr(ix)) + 0.5) * bw / lit(double(sr));
    Expr inside = (y >= -1.0) && (y <= lit(double(H))) && (x >= -1.0) && (x <= lit(double(W)));
    y = loop::select(inside && (y > 0.0), y, lit(0));
    x = loop::select(inside && (x > 0.0), x, lit(0));
    Expr yl0 = loop::cast(DType::i64, y), xl0 = loop::cast(DType::i64, x);
    Expr yTop = yl0 >= H - 1, xTop = xl0 >= W - 1;
    Expr yl = loop::select(yTop, Expr(H - 1), yl0), xl = loop::select(xTop, Expr(W - 1), xl0);
    Expr yh = loop::select(yTop, Expr(H - 1), yl0 + int64_t(1));
    Expr xh = loop::select(xTop, Expr(W - 1), xl0 + int64_t(1));
    y = loop::select(yTop, loop::cast(dt, yl), y);
    x = loop::select(xTop, loop::cast(dt, xl), x);
    Expr ly = y - loop::cast(dt, yl), lx = x - loop::cast(dt, xl), hy = 1.0 - ly, hx = 1.0 - lx;
    Expr b = B(r);
    if (b.type() != loop::Type::i64())
      b = loop::cast(DType::i64, b);
    b = loop::max(loop::min(b, Expr(N - 1)), Expr(int64_t(0)));
    auto at = [&](Expr yy, Expr xx) { return X(b, c, yy, xx); };
    Expr v1 = hy * hx * at(yl, xl), v2 = hy * lx * at(yl, xh), v3 = ly * hx * at(yh, xl),
         v4 = ly * lx * at(yh, xh);
    if (avg) {
      Expr v = loop::select(inside, v1 + v2 + v3 + v4, lit(0));
      return te::ComputeBody(te::sum(v, {iy, ix}));
    }
    Expr v = loop::select(inside, loop::max(loop::max(loop::max(v1, v2), v3), v4), lit(0));
    return te::ComputeBody(te::max(v, {iy, ix}));
  }, avg ? "sum" : "");
  if (!avg) {
    ctx.setOutput(0, S);
    return;
  }
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(ctx.outputShape(0)), [&](std::vector<Var> iv) {
    return S.access(std::vector<Expr>(iv.begin(), iv.end())) / lit(double(sr * sr));
  }));
}

//===----------------------------------------------------------------------===//
// NonMaxSuppression: a kernel of data-dependent output shape (DynamicKernel)
//===----------------------------------------------------------------------===//

/// NonMaxSuppression's checked static shapes: boxes [B, N, 4], scores [B, C, N].
struct NmsShape {
  int64_t batches = 0, boxes = 0, classes = 0;
};

NmsShape nmsShape(const AttrReader &node) {
  for (size_t i : {0, 1}) {
    const Value *v = lowering::hasNodeInput(node, i) ? node.node().input(i) : nullptr;
    node.check(v && v->type.isTensor() &&
                   (v->type.dtype == DType::f32 || v->type.dtype == DType::f64),
               i == 0 ? "boxes" : "scores", " must be an f32 or f64 tensor, got ",
               v ? v->type.str() : std::string("nothing"));
  }
  std::vector<int64_t> bs = lowering::nodeInputShape(node, 0);
  std::vector<int64_t> ss = lowering::nodeInputShape(node, 1);
  node.check(bs.size() == 3 && bs[2] == 4, "boxes must have shape [batch, boxes, 4], got ",
             shapeToString(bs));
  node.check(ss.size() == 3 && ss[0] == bs[0] && ss[2] == bs[1], "scores must have shape [",
             bs[0], ", classes, ", bs[1], "], got ", shapeToString(ss));
  return {bs[0], bs[1], ss[1]};
}

/// Checks that optional input i holds one value (its static shape) and returns its constant
/// value when it is one, else nullptr.
const Tensor *nmsScalarInput(const AttrReader &node, size_t i, const char *what) {
  std::vector<int64_t> s = lowering::nodeInputShape(node, i);
  int64_t n = 1;
  for (int64_t d : s)
    n *= d;
  node.check(n == 1, what, " must hold one value, got shape ", shapeToString(s));
  return lowering::nodeInputConstant(node, i);
}

/// Rows of the output's bound: B * C * min(max_output_boxes_per_class, N) when that input is a
/// constant (0 when it is absent or <= 0), else B * C * N.
std::vector<DynamicOutputBound> nmsBounds(const AttrReader &node) {
  const NmsShape s = nmsShape(node);
  int64_t perClass = 0;
  if (lowering::hasNodeInput(node, 2)) {
    const Tensor *t = nmsScalarInput(node, 2, "max_output_boxes_per_class");
    perClass = t ? std::clamp<int64_t>(t->getInt64(0), 0, s.boxes) : s.boxes;
  }
  return {{{s.batches * s.classes * perClass, 3}, 0}};
}

/// Optional scalar input i as an expression of type `as`: `dflt` when absent, a literal when
/// constant, else element 0 of its buffer converted.
loop::Expr nmsScalar(const DynamicKernelContext &ctx, size_t i, const char *what, DType as,
                     double dflt) {
  if (!ctx.hasInput(i))
    return lowering::constant(as, dflt);
  DType dt = ctx.inputDType(i);
  ctx.check(as == DType::i64 ? isInteger(dt) && dt != DType::boolean
                             : dt == DType::f32 || dt == DType::f64,
            what, " has dtype ", dtypeName(dt), "; expected ",
            as == DType::i64 ? "an integer type" : "f32 or f64");
  if (const Tensor *t = nmsScalarInput(ctx, i, what))
    return as == DType::i64 ? loop::Expr(t->getInt64(0)) : loop::Expr(t->getDouble(0));
  return loop::cast(as, ctx.input(i).load({loop::Expr(int64_t(0))}));
}

/// NonMaxSuppression as onnxruntime and the reference kernel compute it, in f64. Per batch:
/// the corners of each box (x_min, y_min, x_max, y_max). Per batch and class: the candidates
/// (score not NaN and above score_threshold when given), stably merge-sorted by descending
/// score; greedy selection in that order, a candidate kept when no kept box overlaps it with
/// IoU > iou_threshold, until max_output_boxes_per_class are kept; then the [b, c, box] rows,
/// the row count as the extent and zeros in the bound's other rows.
loop::Stmt nmsBody(const DynamicKernelContext &ctx) {
  using loop::Expr;
  using loop::IfThenElseNode;
  using loop::SeqNode;
  using loop::Stmt;
  using loop::StoreNode;
  using lowering::forRange;
  using lowering::letIn;
  using lowering::LocalScalar;
  const NmsShape s = nmsShape(ctx);
  const int64_t centerBox = ctx.attrInt("center_point_box", 0);
  ctx.check(centerBox == 0 || centerBox == 1, "center_point_box must be 0 or 1, got ", centerBox);
  lowering::LetChain params; // the optional inputs, read once
  const Expr maxOut =
      params("max_output", nmsScalar(ctx, 2, "max_output_boxes_per_class", DType::i64, 0));
  const Expr iouTh = params("iou_threshold", nmsScalar(ctx, 3, "iou_threshold", DType::f64, 0));
  const bool hasScoreTh = ctx.hasInput(4);
  const Expr scoreTh =
      hasScoreTh ? params("score_threshold", nmsScalar(ctx, 4, "score_threshold", DType::f64, 0))
                 : Expr();
  const int64_t B = s.batches, N = s.boxes, C = s.classes, cap = std::max<int64_t>(N, 1);
  const int64_t rows = ctx.bound(0).shape[0];
  const loop::Buffer &boxes = ctx.input(0), &scores = ctx.input(1), &out = ctx.output(0);
  loop::Buffer corners = lowering::localBuffer("corners", DType::f64, cap * 4);
  loop::Buffer cand = lowering::localBuffer("cand", DType::i64, cap);
  loop::Buffer scratch = lowering::localBuffer("scratch", DType::i64, cap);
  loop::Buffer sel = lowering::localBuffer("sel", DType::i64, cap);
  loop::Buffer key = lowering::localBuffer("key", ctx.inputDType(1), cap);
  loop::Buffer keyScratch = lowering::localBuffer("key_scratch", ctx.inputDType(1), cap);
  LocalScalar m("m", DType::i64), nsel("nsel", DType::i64), keep("keep", DType::boolean),
      total("total", DType::i64);
  auto f64 = [](Expr e) { return loop::cast(DType::f64, std::move(e)); };
  auto corner = [&](Expr box, int64_t k) { return corners.load({box * 4 + k}); };

  Stmt perBatch = forRange("b", 0, B, [&](Expr b) {
    Stmt makeCorners = forRange("i", 0, N, [&](Expr i) {
      Expr base = (b * N + i) * 4;
      Expr b0 = f64(boxes.load({base})), b1 = f64(boxes.load({base + 1}));
      Expr b2 = f64(boxes.load({base + 2})), b3 = f64(boxes.load({base + 3}));
      std::vector<Expr> c;
      if (centerBox)
        c = {b0 - b2 / 2.0, b1 - b3 / 2.0, b0 + b2 / 2.0, b1 + b3 / 2.0};
      else // std::min/std::max: the loop IR's Min/Max are b < a ? b : a and a < b ? b : a
        c = {loop::min(b1, b3), loop::min(b0, b2), loop::max(b1, b3), loop::max(b0, b2)};
      std::vector<Stmt> st;
      for (int64_t k = 0; k < 4; ++k)
        st.push_back(StoreNode::make(corners, c[k], {i * 4 + k}));
      return SeqNode::make(st);
    });
    Stmt perClass = forRange("c", 0, C, [&](Expr c) {
      return letIn("sbase", (b * C + c) * N, [&](Expr sbase) {
        auto score = [&](Expr box) { return scores.load({sbase + box}); };
        Stmt collect = forRange("i", 0, N, [&](Expr i) {
          Expr sc = score(i);
          Expr isCand = !lowering::isNaN(sc);
          if (hasScoreTh)
            isCand = isCand && f64(sc) > scoreTh;
          return IfThenElseNode::make(
              isCand, SeqNode::make({StoreNode::make(cand, i, {m.get()}),
                                     StoreNode::make(key, sc, {m.get()}), m.increment()}));
        });
        // By descending score, the scores carried along (sequential reads).
        Stmt sort = lowering::stableMergeSort(
            {{key, keyScratch}, {cand, scratch}}, m.get(), N,
            [&](const std::vector<Expr> &x, const std::vector<Expr> &y) {
              return lowering::PrefixedCond{Stmt(), x[0] > y[0]};
            },
            "sort");
        // The reference's IoU test of the candidate against each kept box, formula for
        // formula; keep turns false at the first kept box that suppresses it.
        Stmt greedy = forRange("k", 0, m.get(), [&](Expr k) {
          lowering::LetChain box;
          Expr i = box("box", cand.load({k}));
          Expr a0 = box("a0", corner(i, 0)), a1 = box("a1", corner(i, 1));
          Expr a2 = box("a2", corner(i, 2)), a3 = box("a3", corner(i, 3));
          Expr areaA = box("area_a", (a2 - a0) * (a3 - a1));
          Stmt test = forRange("j", 0, nsel.get(), [&](Expr j) {
            lowering::LetChain v;
            Expr q = v("kept", sel.load({j}));
            Expr ix0 = v("ix0", loop::max(a0, corner(q, 0)));
            Expr iy0 = v("iy0", loop::max(a1, corner(q, 1)));
            Expr ix1 = v("ix1", loop::min(a2, corner(q, 2)));
            Expr iy1 = v("iy1", loop::min(a3, corner(q, 3)));
            Expr inter = v("inter", (ix1 - ix0) * (iy1 - iy0));
            Expr areaB = v("area_b", (corner(q, 2) - corner(q, 0)) * (corner(q, 3) - corner(q, 1)));
            Expr uni = v("union", areaA + areaB - inter);
            Expr overlap = !(ix1 <= ix0 || iy1 <= iy0);
            Expr proper = !(areaA <= 0.0 || areaB <= 0.0 || uni <= 0.0);
            Expr suppressed = overlap && proper && inter / uni > iouTh;
            Stmt drop = IfThenElseNode::make(suppressed, keep.set(loop::makeBool(false)));
            return IfThenElseNode::make(keep.get(), v.wrap(drop));
          });
          Stmt add = SeqNode::make({StoreNode::make(sel, i, {nsel.get()}), nsel.increment()});
          return IfThenElseNode::make(
              nsel.get() < maxOut,
              box.wrap(SeqNode::make(
                  {keep.set(loop::makeBool(true)), test, IfThenElseNode::make(keep.get(), add)})));
        });
        Stmt emit = forRange("t", 0, nsel.get(), [&](Expr t) {
          Expr row = total.get();
          Stmt write = SeqNode::make({StoreNode::make(out, b, {row * 3}),
                                      StoreNode::make(out, c, {row * 3 + 1}),
                                      StoreNode::make(out, sel.load({t}), {row * 3 + 2}),
                                      total.increment()});
          return IfThenElseNode::make(row < rows, write); // never past the bound
        });
        return SeqNode::make({m.set(0), collect, sort, nsel.set(0), greedy, emit});
      });
    });
    return SeqNode::make({makeCorners, perClass});
  });
  return lowering::allocateAll(
      {corners, cand, scratch, sel, key, keyScratch, m.buf, nsel.buf, keep.buf, total.buf},
      params.wrap(SeqNode::make(
          {total.set(0), perBatch, lowering::endDynamicOutput(ctx, 0, total.get())})));
}

void attachImageLowerings(OpRegistry &r) {
  auto nms = std::make_shared<DynamicKernel>();
  nms->bounds = nmsBounds;
  nms->body = nmsBody;
  r.setDynamicKernel("NonMaxSuppression", nms);
  r.setLower("RoiAlign", lowerRoiAlign);
  r.setLower("GridSample", lowerGridSample);
  r.setLower("Resize", [](LowerContext &c) { lowerResize(c, false); });
  r.setLower("Upsample", [](LowerContext &c) { lowerResize(c, true); });
}

} // namespace
// --- end of the Image lowerings

void registerImageOps(OpRegistry &r) {
  r.add(OpDef{"Resize", "", 10, 17, 2, 4, 1, 1, "all types (nearest); numeric (linear, cubic)",
              "N-D; opset 10 behaves as asymmetric with Upsample's nearest rounding",
              [](InferContext &ctx) { inferResize(ctx, false); },
              [](KernelContext &ctx) { resizeKernel(ctx, false); }, OpPattern::Injective});
  r.add(OpDef{"Upsample", "", 1, 9, 1, 2, 1, 1, "all types (nearest); numeric (linear)",
              "deprecated; scales attribute (1, 7) or input (9)",
              [](InferContext &ctx) { inferResize(ctx, true); },
              [](KernelContext &ctx) { resizeKernel(ctx, true); }, OpPattern::Injective});
  r.add(OpDef{"GridSample", "", 16, 17, 2, 2, 1, 1, "float types", "4-D only (as in opset 16)",
              inferGridSample, gridSampleKernel, OpPattern::Injective});
  r.add(OpDef{"RoiAlign", "", 10, 17, 3, 3, 1, 1, "float types", "", inferRoiAlign, roiAlignKernel,
              OpPattern::OutEWiseFusable});
  r.add(OpDef{"NonMaxSuppression", "", 10, 17, 2, 5, 1, 1, "f32 boxes/scores -> i64", "",
              [](InferContext &ctx) {
                ctx.setOutputType(0, Type::tensor(DType::i64, Shape({Dim(), Dim(3)})));
              },
              nmsKernel});
  attachImageLowerings(r);
}

} // namespace tessel
