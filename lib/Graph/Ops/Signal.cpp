//===- Signal.cpp - Signal ops ---------------------------------------===//
//
// DFT, STFT, HannWindow, HammingWindow, BlackmanWindow, MelWeightMatrix (ai.onnx opset 17).
// Transforms compute in double: radix-2 FFT for power-of-two lengths, a direct DFT with a
// twiddle table otherwise.
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"
#include "tessel/Graph/Lowering.h"

#include <algorithm>
#include <cmath>
#include <complex>
#include <functional>
#include <numbers>
#include <optional>
#include <string>
#include <tuple>
#include <utility>
#include <vector>

namespace tessel {

namespace {

using cd = std::complex<double>;

/// A transform of one length: X[k] = sum_j x[j] exp(-+2 pi i jk/n), inverse scaled by 1/n.
class DftPlan {
public:
  DftPlan(int64_t n, bool inverse) : n_(n), inverse_(inverse) {
    pow2_ = n > 0 && (n & (n - 1)) == 0;
    tw_.resize(size_t(n));
    const double sign = inverse ? 1.0 : -1.0;
    for (int64_t m = 0; m < n; ++m) {
      double a = sign * 2.0 * std::numbers::pi * double(m) / double(n);
      tw_[size_t(m)] = cd(std::cos(a), std::sin(a));
    }
    buf_.resize(size_t(n));
  }

  /// `in` holds n values (already zero-padded or truncated); writes outLen <= n values to out.
  void run(const cd *in, cd *out, int64_t outLen) {
    if (pow2_) {
      fft(in);
    } else {
      for (int64_t k = 0; k < outLen; ++k) {
        cd acc = 0;
        int64_t idx = 0;
        for (int64_t j = 0; j < n_; ++j) {
          acc += in[j] * tw_[size_t(idx)];
          idx += k;
          if (idx >= n_)
            idx -= n_;
        }
        buf_[size_t(k)] = acc;
      }
    }
    const double scale = inverse_ ? 1.0 / double(n_) : 1.0;
    for (int64_t k = 0; k < outLen; ++k)
      out[k] = buf_[size_t(k)] * scale;
  }

private:
  void fft(const cd *in) {
    const int64_t n = n_;
    int bits = 0;
    while ((int64_t(1) << bits) < n)
      ++bits;
    for (int64_t i = 0; i < n; ++i) {
      int64_t rev = 0;
      for (int b = 0; b < bits; ++b)
        if (i & (int64_t(1) << b))
          rev |= int64_t(1) << (bits - 1 - b);
      buf_[size_t(rev)] = in[i];
    }
    for (int64_t len = 2; len <= n; len <<= 1) {
      const int64_t step = n / len;
      for (int64_t i = 0; i < n; i += len)
        for (int64_t j = 0; j < len / 2; ++j) {
          cd u = buf_[size_t(i + j)];
          cd v = buf_[size_t(i + j + len / 2)] * tw_[size_t(j * step)];
          buf_[size_t(i + j)] = u + v;
          buf_[size_t(i + j + len / 2)] = u - v;
        }
    }
  }

  int64_t n_;
  bool inverse_;
  bool pow2_ = false;
  std::vector<cd> tw_;
  std::vector<cd> buf_;
};

/// A scalar (one-element) integer input.
int64_t scalarInt(const KernelContext &ctx, size_t i, const char *name) {
  const Tensor &t = ctx.input(i);
  if (!isInteger(t.dtype()) || t.numel() != 1 || t.rank() > 1)
    ctx.fail("input ", name, " should be an integer scalar, got ", t.typeString());
  return t.getInt64(0);
}

double scalarFloat(const KernelContext &ctx, size_t i, const char *name) {
  const Tensor &t = ctx.input(i);
  if (t.numel() != 1 || t.rank() > 1 || t.dtype() == DType::string)
    ctx.fail("input ", name, " should be a numeric scalar, got ", t.typeString());
  return t.getDouble(0);
}

/// The value of a constant one-element integer input, when known at inference.
std::optional<int64_t> constScalarInt(const InferContext &ctx, size_t i) {
  if (i >= ctx.numInputs() || !ctx.hasInput(i))
    return std::nullopt;
  const Tensor *t = ctx.inputConstant(i);
  if (!t || t->numel() != 1 || !isInteger(t->dtype()))
    return std::nullopt;
  return t->getInt64(0);
}

DType outputDType(const AttrReader &ctx, int64_t dflt = 1) {
  int64_t code = ctx.attrInt("output_datatype", dflt);
  std::optional<DType> dt = dtypeFromOnnx(int(code));
  if (!dt || *dt == DType::string || *dt == DType::boolean)
    ctx.fail("attribute 'output_datatype' is ", code, ", expected a numeric ONNX data type");
  return *dt;
}

/// Reads a [.., 1|2] float tensor as complex values.
std::vector<cd> readComplex(const Tensor &t) {
  std::vector<double> d = t.toDoubleVector();
  const int64_t c = t.dim(t.rank() - 1);
  std::vector<cd> out(size_t(t.numel() / std::max<int64_t>(c, 1)));
  for (size_t i = 0; i < out.size(); ++i)
    out[i] = c == 2 ? cd(d[2 * i], d[2 * i + 1]) : cd(d[i], 0);
  return out;
}

Tensor writeComplex(DType dt, std::vector<int64_t> shape, const std::vector<cd> &v) {
  Tensor f(DType::f64, shape);
  double *p = f.data<double>();
  for (size_t i = 0; i < v.size(); ++i) {
    p[2 * i] = v[i].real();
    p[2 * i + 1] = v[i].imag();
  }
  return dt == DType::f64 ? f : f.cast(dt);
}

//===----------------------------------------------------------------------===//
// DFT
//===----------------------------------------------------------------------===//

int64_t dftAxis(const AttrReader &ctx, int64_t rank) {
  int64_t axis = ctx.attrInt("axis", 1);
  int64_t a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a > rank - 2)
    ctx.fail("attribute 'axis' is ", axis, ", expected a signal axis in [", -rank, ", -2] or [0, ",
             rank - 2, "] for an input of rank ", rank);
  return a;
}

void inferDFT(InferContext &ctx) {
  DType dt = ctx.inputType(0).dtype;
  const Shape &s = tensorShape(ctx, 0);
  if (!s.rankKnown) {
    ctx.setOutputType(0, Type::tensor(dt, Shape::unknownRank()));
    return;
  }
  if (s.rank() < 2)
    ctx.fail("input has rank ", s.rank(), ", expected >= 2 ([batch, signal..., 1 or 2])");
  const int64_t axis = dftAxis(ctx, s.rank());
  std::vector<Dim> out = s.dims;
  out.back() = Dim(2);
  Dim n = s.dims[size_t(axis)];
  if (ctx.numInputs() > 1 && ctx.hasInput(1)) {
    auto len = constScalarInt(ctx, 1);
    n = len ? Dim(*len) : Dim();
  }
  if (ctx.attrInt("onesided", 0) != 0)
    n = n.isStatic() ? Dim(n.value / 2 + 1) : Dim();
  out[size_t(axis)] = n;
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

void kernelDFT(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  if (!isFloat(x.dtype()))
    ctx.fail("input has element type ", dtypeName(x.dtype()), ", expected a float type");
  const int64_t rank = x.rank();
  if (rank < 2 || (x.dim(rank - 1) != 1 && x.dim(rank - 1) != 2))
    ctx.fail("input has shape ", x.shapeString(),
             ", expected [batch, signal..., 1] (real) or [batch, signal..., 2] (complex)");
  const bool complexIn = x.dim(rank - 1) == 2;
  const int64_t axis = dftAxis(ctx, rank);
  const bool inverse = ctx.attrInt("inverse", 0) != 0;
  const bool onesided = ctx.attrInt("onesided", 0) != 0;
  if (onesided && complexIn)
    ctx.fail("onesided=1 requires a real input (last dimension 1), got shape ", x.shapeString());
  const int64_t L = x.dim(axis);
  int64_t n = L;
  if (ctx.hasInput(1)) {
    n = scalarInt(ctx, 1, "dft_length");
    if (n <= 0)
      ctx.fail("dft_length is ", n, ", expected > 0");
  }
  const int64_t outLen = onesided ? n / 2 + 1 : n;
  std::vector<int64_t> outShape = x.shape();
  outShape[size_t(axis)] = outLen;
  outShape.back() = 2;
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < axis; ++d)
    outer *= x.dim(d);
  for (int64_t d = axis + 1; d < rank - 1; ++d)
    inner *= x.dim(d);
  checkedNumel(outShape, 16, "DFT output");

  std::vector<cd> in = readComplex(x);
  std::vector<cd> out(size_t(outer * outLen * inner));
  DftPlan plan(n, inverse);
  std::vector<cd> line(static_cast<size_t>(n)), res(static_cast<size_t>(outLen));
  const int64_t take = std::min(L, n);
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < inner; ++i) {
      std::fill(line.begin(), line.end(), cd(0));
      for (int64_t j = 0; j < take; ++j)
        line[size_t(j)] = in[size_t((o * L + j) * inner + i)];
      plan.run(line.data(), res.data(), outLen);
      for (int64_t k = 0; k < outLen; ++k)
        out[size_t((o * outLen + k) * inner + i)] = res[size_t(k)];
    }
  ctx.setOutput(0, writeComplex(x.dtype(), outShape, out));
}

//===----------------------------------------------------------------------===//
// STFT
//===----------------------------------------------------------------------===//

void inferSTFT(InferContext &ctx) {
  DType dt = ctx.inputType(0).dtype;
  const Shape &s = tensorShape(ctx, 0);
  if (s.rankKnown && s.rank() != 3)
    ctx.fail("input signal has rank ", s.rank(), ", expected 3 ([batch, length, 1 or 2])");
  Dim batch = s.rankKnown ? s.dims[0] : Dim();
  std::optional<int64_t> fl = constScalarInt(ctx, 3);
  if (!fl && ctx.numInputs() > 2 && ctx.hasInput(2)) {
    const Shape &ws = tensorShape(ctx, 2);
    if (ws.rankKnown && ws.rank() == 1 && ws.dims[0].isStatic())
      fl = ws.dims[0].value;
  }
  std::optional<int64_t> step = constScalarInt(ctx, 1);
  Dim frames;
  if (fl && step && *step > 0 && s.rankKnown && s.dims[1].isStatic() && s.dims[1].value >= *fl)
    frames = Dim((s.dims[1].value - *fl) / *step + 1);
  Dim bins;
  if (fl)
    bins = ctx.attrInt("onesided", 1) != 0 ? Dim(*fl / 2 + 1) : Dim(*fl);
  ctx.setOutputType(0, Type::tensor(dt, Shape({batch, frames, bins, Dim(2)})));
}

void kernelSTFT(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  if (!isFloat(x.dtype()))
    ctx.fail("input signal has element type ", dtypeName(x.dtype()), ", expected a float type");
  if (x.rank() != 3 || (x.dim(2) != 1 && x.dim(2) != 2))
    ctx.fail("input signal has shape ", x.shapeString(),
             ", expected [batch, length, 1] (real) or [batch, length, 2] (complex)");
  const bool complexIn = x.dim(2) == 2;
  const bool onesided = ctx.attrInt("onesided", 1) != 0;
  if (onesided && complexIn)
    ctx.fail("onesided=1 requires a real signal (last dimension 1), got shape ", x.shapeString());
  const int64_t step = scalarInt(ctx, 1, "frame_step");
  if (step <= 0)
    ctx.fail("frame_step is ", step, ", expected > 0");
  std::vector<double> window;
  int64_t fl = -1;
  if (ctx.hasInput(2)) {
    const Tensor &w = ctx.input(2);
    if (w.rank() != 1 || w.dtype() == DType::string)
      ctx.fail("input window has shape ", w.shapeString(), ", expected rank 1");
    window = w.toDoubleVector();
    fl = w.dim(0);
  }
  if (ctx.hasInput(3)) {
    int64_t f = scalarInt(ctx, 3, "frame_length");
    if (fl >= 0 && f != fl)
      ctx.fail("frame_length ", f, " differs from the window length ", fl);
    fl = f;
  }
  if (fl < 0)
    ctx.fail("either window or frame_length must be given");
  if (fl == 0)
    ctx.fail("frame_length is 0, expected > 0");
  const int64_t batch = x.dim(0), len = x.dim(1);
  if (len < fl)
    ctx.fail("signal length ", len, " is shorter than the frame length ", fl);
  const int64_t frames = (len - fl) / step + 1;
  const int64_t bins = onesided ? fl / 2 + 1 : fl;
  std::vector<int64_t> outShape{batch, frames, bins, 2};
  checkedNumel(outShape, 16, "STFT output");
  std::vector<cd> in = readComplex(x);
  std::vector<cd> out(size_t(batch * frames * bins));
  DftPlan plan(fl, false);
  std::vector<cd> line(static_cast<size_t>(fl));
  for (int64_t b = 0; b < batch; ++b)
    for (int64_t f = 0; f < frames; ++f) {
      const cd *src = in.data() + b * len + f * step;
      for (int64_t j = 0; j < fl; ++j)
        line[size_t(j)] = window.empty() ? src[j] : src[j] * window[size_t(j)];
      plan.run(line.data(), out.data() + (b * frames + f) * bins, bins);
    }
  ctx.setOutput(0, writeComplex(x.dtype(), outShape, out));
}

//===----------------------------------------------------------------------===//
// Windows
//===----------------------------------------------------------------------===//

/// The generalized cosine windows' coefficients (a0, a1, a2), shared by the reference kernel
/// and the lowering.
struct CosineWindow {
  const char *name;
  double a0, a1, a2;
};
constexpr CosineWindow kCosineWindows[] = {{"HannWindow", 0.5, 0.5, 0.0},
                                           {"HammingWindow", 25.0 / 46.0, 21.0 / 46.0, 0.0},
                                           {"BlackmanWindow", 0.42, 0.5, 0.08}};

/// Generalized cosine window a0 - a1 cos(2 pi k / N) + a2 cos(4 pi k / N).
OpDef windowOp(const char *name, double a0, double a1, double a2) {
  OpDef d;
  d.name = name;
  d.sinceVersion = 17;
  d.untilVersion = 17;
  d.minInputs = d.maxInputs = 1;
  d.minOutputs = d.maxOutputs = 1;
  d.dtypes = "size: int32/int64; output: output_datatype (numeric)";
  d.notes = "periodic (default) or symmetric";
  d.infer = [](InferContext &ctx) {
    DType dt = outputDType(ctx);
    auto size = constScalarInt(ctx, 0);
    ctx.setOutputType(0, Type::tensor(dt, Shape({size && *size >= 0 ? Dim(*size) : Dim()})));
  };
  d.kernel = [a0, a1, a2](KernelContext &ctx) {
    DType dt = outputDType(ctx);
    const int64_t size = scalarInt(ctx, 0, "size");
    if (size < 0)
      ctx.fail("size is ", size, ", expected >= 0");
    const bool periodic = ctx.attrInt("periodic", 1) != 0;
    const int64_t N = periodic ? size : size - 1;
    Tensor out(DType::f64, {size});
    double *p = out.data<double>();
    for (int64_t k = 0; k < size; ++k) {
      double a = N > 0 ? 2.0 * std::numbers::pi * double(k) / double(N) : 0.0;
      p[k] = a0 - a1 * std::cos(a) + a2 * std::cos(2 * a);
    }
    ctx.setOutput(0, dt == DType::f64 ? out : out.cast(dt));
  };
  return d;
}

//===----------------------------------------------------------------------===//
// MelWeightMatrix
//===----------------------------------------------------------------------===//

void inferMel(InferContext &ctx) {
  DType dt = outputDType(ctx);
  auto mel = constScalarInt(ctx, 0);
  auto dft = constScalarInt(ctx, 1);
  ctx.setOutputType(0, Type::tensor(dt, Shape({dft && *dft > 0 ? Dim(*dft / 2 + 1) : Dim(),
                                               mel && *mel > 0 ? Dim(*mel) : Dim()})));
}

void kernelMel(KernelContext &ctx) {
  DType dt = outputDType(ctx);
  const int64_t numMel = scalarInt(ctx, 0, "num_mel_bins");
  const int64_t dftLen = scalarInt(ctx, 1, "dft_length");
  const int64_t rate = scalarInt(ctx, 2, "sample_rate");
  const double lower = scalarFloat(ctx, 3, "lower_edge_hertz");
  const double upper = scalarFloat(ctx, 4, "upper_edge_hertz");
  if (numMel <= 0 || dftLen <= 0 || rate <= 0)
    ctx.fail("num_mel_bins (", numMel, "), dft_length (", dftLen, ") and sample_rate (", rate,
             ") must be > 0");
  if (!(lower >= 0) || !(upper >= lower) || !std::isfinite(upper))
    ctx.fail("expected 0 <= lower_edge_hertz <= upper_edge_hertz, got ", lower, " and ", upper);
  const int64_t nbins = dftLen / 2 + 1;
  Tensor out(DType::f64, {nbins, numMel});
  double *p = out.data<double>();
  const double lowMel = 2595.0 * std::log10(1.0 + lower / 700.0);
  const double highMel = 2595.0 * std::log10(1.0 + upper / 700.0);
  const double melStep = (highMel - lowMel) / double(numMel + 2);
  std::vector<int64_t> fb(size_t(numMel + 2));
  for (int64_t i = 0; i < numMel + 2; ++i) {
    double m = double(i) * melStep + lowMel;
    double hz = 700.0 * (std::pow(10.0, m / 2595.0) - 1.0);
    fb[size_t(i)] = int64_t(std::floor(double(dftLen + 1) * hz / double(rate)));
  }
  auto set = [&](int64_t j, int64_t i, double v) {
    if (j >= 0 && j < nbins)
      p[j * numMel + i] = v;
  };
  for (int64_t i = 0; i < numMel; ++i) {
    const int64_t lo = fb[size_t(i)], ce = fb[size_t(i + 1)], hi = fb[size_t(i + 2)];
    const int64_t lc = ce - lo;
    if (lc == 0) {
      set(ce, i, 1.0);
    } else {
      for (int64_t j = std::max<int64_t>(lo, 0); j <= std::min(ce, nbins - 1); ++j)
        set(j, i, double(j - lo) / double(lc));
    }
    const int64_t ch = hi - ce;
    if (ch > 0)
      for (int64_t j = std::max<int64_t>(ce, 0); j < std::min(hi, nbins); ++j)
        set(j, i, double(hi - j) / double(ch));
  }
  ctx.setOutput(0, dt == DType::f64 ? out : out.cast(dt));
}

} // namespace

// --- lowerings of the Signal ops
// The window generators and MelWeightMatrix: their sizes are output extents, taken from the
// constant size inputs or else from the declared static output shape; the values are computed
// in the kernel in f64 with the reference's expressions (same order of operations), then
// converted to output_datatype. DFT and STFT transform in f64 with twiddle tables computed in
// the kernel: one sum reduction each for the real and imaginary parts (lowerLineDft), or
// radix-2 FFT stages for static powers of two (lineFft).
namespace {

using loop::Expr;
using loop::Var;

/// One scalar of a constant input as integer / double (an Error naming `what` otherwise).
int64_t loweredScalarInt(const LowerContext &ctx, size_t i, const char *what) {
  std::vector<int64_t> v = ctx.constantInts(i, what);
  ctx.check(v.size() == 1, what, " should be a scalar, got ", v.size(), " values");
  return v[0];
}
double loweredScalarFloat(const LowerContext &ctx, size_t i, const char *what) {
  std::vector<double> v = ctx.constantFloats(i, what);
  ctx.check(v.size() == 1, what, " should be a scalar, got ", v.size(), " values");
  return v[0];
}

/// Input i (a one-element tensor) as an expression of dtype `to` (f64 or i64): a literal when
/// constant, else a load of its one element, converted. An i64 input must be an integer.
Expr scalarExpr(const LowerContext &ctx, size_t i, const char *what, DType to) {
  if (ctx.inputConstant(i))
    return to == DType::i64 ? Expr(loweredScalarInt(ctx, i, what))
                            : Expr(loweredScalarFloat(ctx, i, what));
  std::vector<int64_t> es = ctx.inputShape(i);
  ctx.check(es.size() <= 1 && (es.empty() || es[0] == 1), what, " should be a scalar, got shape ",
            shapeToString(es));
  DType et = ctx.inputDType(i);
  if (to == DType::i64)
    ctx.check(isInteger(et), what, " should be an integer, got ", dtypeName(et));
  else
    ctx.check(isFloat(et) || isInteger(et), what, " should be numeric, got ", dtypeName(et));
  return loop::cast(to, ctx.input(i).access(std::vector<Expr>(es.size(), Expr(int64_t(0)))));
}
Expr scalarAsF64(const LowerContext &ctx, size_t i, const char *what) {
  return scalarExpr(ctx, i, what, DType::f64);
}
Expr scalarAsI64(const LowerContext &ctx, size_t i, const char *what) {
  return scalarExpr(ctx, i, what, DType::i64);
}

/// A size input that is an output extent: its value when constant, else the extent `dim` of
/// the declared output shape (which must then be static).
int64_t sizeFromOutput(const LowerContext &ctx, size_t i, const char *what, size_t dim) {
  if (ctx.inputConstant(i))
    return loweredScalarInt(ctx, i, what);
  const Value *v = ctx.node().output(0);
  ctx.check(v && v->type.isTensor() && v->type.shape.isStatic(), what,
            " is not a constant and the output shape is not static; lowering needs one of them");
  return ctx.outputShape(0)[dim];
}

/// a0 - a1 cos(2 pi k / N) + a2 cos(4 pi k / N), N = size (periodic) or size - 1 (symmetric).
LowerFn lowerWindow(double a0, double a1, double a2) {
  return [a0, a1, a2](LowerContext &ctx) {
    DType dt = ctx.outputDType(0);
    lowering::checkDType(ctx, dt, "output_datatype");
    ctx.check(dt != DType::boolean, "output_datatype bool is not supported");
    const int64_t size = sizeFromOutput(ctx, 0, "size", 0);
    ctx.check(size >= 0, "size is ", size, ", expected >= 0");
    const bool periodic = ctx.attrInt("periodic", 1) != 0;
    const int64_t N = periodic ? size : size - 1;
    ctx.setOutput(0, ctx.compute({Expr(size)}, [&](Var k) {
      Expr a = N > 0 ? Expr(2.0 * std::numbers::pi) * loop::cast(DType::f64, Expr(k)) /
                           Expr(double(N))
                     : Expr(0.0);
      Expr v = Expr(a0) - Expr(a1) * loop::cos(a) + Expr(a2) * loop::cos(Expr(2.0) * a);
      return dt == DType::f64 ? v : loop::cast(dt, v);
    }));
  };
}

/// MelWeightMatrix [dft_length / 2 + 1, num_mel_bins]: column i is the triangle over the
/// frequency bins lo = fb(i), ce = fb(i + 1), hi = fb(i + 2), with
/// fb(i) = floor((dft_length + 1) * hz(i) / sample_rate) and hz(i) the i-th of num_mel_bins + 2
/// points evenly spaced in mel between the edges; rising (j - lo) / (ce - lo) on [lo, ce]
/// (1 at ce when lo == ce), then falling (hi - j) / (hi - ce) on [ce, hi), which overwrites.
void lowerMel(LowerContext &ctx) {
  DType dt = ctx.outputDType(0);
  lowering::checkDType(ctx, dt, "output_datatype");
  ctx.check(dt != DType::boolean, "output_datatype bool is not supported");
  const int64_t numMel = sizeFromOutput(ctx, 0, "num_mel_bins", 1);
  sizeFromOutput(ctx, 1, "dft_length", 0); // a constant, or the output shape is static
  const int64_t nbins = ctx.outputShape(0)[0];  // dft_length / 2 + 1
  ctx.check(numMel > 0 && nbins > 0, "num_mel_bins (", numMel, ") and dft_length / 2 + 1 (", nbins,
            ") must be > 0");
  if (ctx.inputConstant(1))
    ctx.check(loweredScalarInt(ctx, 1, "dft_length") > 0, "dft_length must be > 0");
  if (ctx.inputConstant(2))
    ctx.check(loweredScalarInt(ctx, 2, "sample_rate") > 0, "sample_rate must be > 0");
  // dft_length and sample_rate enter the bins' formula: literals when constant, else loads
  Expr dftLen = scalarAsF64(ctx, 1, "dft_length"), rate = scalarAsF64(ctx, 2, "sample_rate");
  // The edges only set the spacing of the mel points: literals when constant (computed here
  // as the reference does), else read at run time (log10 then as log(x) / ln 10, which may
  // differ from std::log10 in the last bit; edges the reference rejects give unspecified
  // values).
  auto melOfEdge = [&](size_t i, const char *what) -> Expr {
    if (ctx.inputConstant(i)) {
      const double hz = loweredScalarFloat(ctx, i, what);
      ctx.check(hz >= 0 && std::isfinite(hz), what, " should be finite and >= 0, got ", hz);
      return Expr(2595.0 * std::log10(1.0 + hz / 700.0));
    }
    Expr hz = scalarAsF64(ctx, i, what);
    return Expr(2595.0) * (loop::log(Expr(1.0) + hz / Expr(700.0)) / Expr(std::log(10.0)));
  };
  if (ctx.inputConstant(3) && ctx.inputConstant(4)) {
    const double lower = loweredScalarFloat(ctx, 3, "lower_edge_hertz");
    const double upper = loweredScalarFloat(ctx, 4, "upper_edge_hertz");
    ctx.check(upper >= lower, "expected 0 <= lower_edge_hertz <= upper_edge_hertz, got ", lower,
              " and ", upper);
  }
  Expr lowMel = melOfEdge(3, "lower_edge_hertz"), highMel = melOfEdge(4, "upper_edge_hertz");
  Expr melStep = (highMel - lowMel) / Expr(double(numMel + 2));
  auto fb = [&](Expr i) { // the reference's bin of mel point i, as i64
    Expr m = loop::cast(DType::f64, i) * melStep + lowMel;
    Expr hz = Expr(700.0) * (loop::pow(Expr(10.0), m / Expr(2595.0)) - Expr(1.0));
    return loop::cast(DType::i64, loop::floor((dftLen + Expr(1.0)) * hz / rate));
  };
  ctx.setOutput(0, ctx.compute({Expr(nbins), Expr(numMel)}, [&](Var j, Var i) {
    Expr lo = fb(Expr(i)), ce = fb(Expr(i) + 1), hi = fb(Expr(i) + 2);
    Expr jf = loop::cast(DType::f64, Expr(j));
    Expr lc = ce - lo, ch = hi - ce;
    Expr rising = loop::select(lc == int64_t(0), loop::select(Expr(j) == ce, Expr(1.0), Expr(0.0)),
                               loop::select(Expr(j) >= lo && Expr(j) <= ce,
                                            (jf - loop::cast(DType::f64, lo)) /
                                                loop::cast(DType::f64, lc),
                                            Expr(0.0)));
    Expr falling = (loop::cast(DType::f64, hi) - jf) / loop::cast(DType::f64, ch);
    Expr v = loop::select(ch > int64_t(0) && Expr(j) >= ce && Expr(j) < hi, falling, rising);
    return dt == DType::f64 ? v : loop::cast(dt, v);
  }));
}

/// The most (sample, bin) pairs whose twiddles a transform tables (two f64 tables of this many
/// entries: 16 MiB); longer transforms index the per-length tables with jk mod N per term.
constexpr int64_t kMaxTwiddlePairs = int64_t(1) << 20;

/// A transform length: static, or read at run time (a dft_length or frame_length input that
/// is not a constant) with a static upper bound taken from the declared output shape.
struct DftLength {
  int64_t max = 0; ///< the length when static, else its largest value that fits the output
  Expr value;      ///< i64: a literal when static, else the load of the input
  bool isStatic = true;
};

/// What a line transform reads: sample j (0 <= j < take) of the line through output position
/// `idx` (the output's indices without the trailing [re, im] axis; the bin axis is ignored), as
/// f64 real and imaginary parts (imaginary undefined for a real signal).
using SampleFn = std::function<std::pair<Expr, Expr>(const std::vector<Var> &idx, Expr j)>;

/// The shortest power-of-two transform done by FFT stages rather than the direct sum.
constexpr int64_t kMinFftLength = 16;

/// A radix-2 Stockham FFT of N = 2^p samples along the bin axis (the reference's algorithm for
/// powers of two, up to the order of operations): p stored stages, each a real and an imaginary
/// f64 tensor of the line results' shape with N along the bin axis, in natural order (no bit
/// reversal). Stage t (Ns = 2^t) computes, for o = q 2Ns + r Ns + k (k < Ns, r in {0, 1}) and
/// j = q Ns + k,
///   y[o] = x[j] + w x[j + N/2] (r = 0) or x[j] - w x[j + N/2] (r = 1), w = w^(k N / (2 Ns)),
/// with the twiddles from the N-entry tables; stage 0 reads the samples (zero past `take`).
/// Returns the last stage's (real, imaginary) tensors.
std::pair<te::Tensor, te::Tensor> lineFft(const LowerContext &ctx, std::vector<int64_t> ls,
                                          size_t binAxis, int64_t take, int64_t N,
                                          const te::Tensor &cosT, const te::Tensor &sinT,
                                          const SampleFn &sample) {
  ls[binAxis] = N;
  using Complex = std::pair<Expr, Expr>;
  // the previous stage's element j along the bin axis of the line through iv
  std::function<Complex(const std::vector<Var> &, Expr)> prev =
      [&](const std::vector<Var> &iv, Expr j) -> Complex {
    if (take >= N)
      return sample(iv, j);
    Expr in = j < take; // zero padding (the load stays in bounds)
    auto [sr, si] = sample(iv, loop::min(j, Expr(take - 1)));
    return {loop::select(in, sr, Expr(0.0)),
            si.defined() ? loop::select(in, si, Expr(0.0)) : si};
  };
  te::Tensor re, im;
  for (int64_t Ns = 1; Ns < N; Ns *= 2) {
    auto stage = [&](bool imag) {
      return lowering::storedCompute(ctx, lowering::shapeExprs(ls), [&](const std::vector<Var> &iv) {
        Expr o = Expr(iv[binAxis]);
        Expr k = o % Ns, r = (o / Ns) % 2;
        Expr j = (o / (2 * Ns)) * Ns + k;
        auto [ar, ai] = prev(iv, j);
        auto [br, bi] = prev(iv, j + N / 2);
        Expr m = k * (N / (2 * Ns));
        Expr wc = cosT(m), ws = sinT(m);
        Expr v; // this part of b * w: (br wc - bi ws) + (br ws + bi wc)i
        if (!bi.defined())
          v = imag ? br * ws : br * wc;
        else
          v = imag ? br * ws + bi * wc : br * wc - bi * ws;
        Expr a = imag ? ai : ar; // undefined: the imaginary part of a real signal, 0
        if (!a.defined())
          return loop::select(r == int64_t(0), v, -v);
        return loop::select(r == int64_t(0), a + v, a - v);
      }, (imag ? "fft_imag" : "fft_real") + std::to_string(Ns));
    };
    te::Tensor nre = stage(false), nim = stage(true);
    prev = [nre, nim, binAxis](const std::vector<Var> &iv, Expr j) -> Complex {
      std::vector<Expr> idx(iv.begin(), iv.end());
      idx[binAxis] = j;
      return {nre.access(idx), nim.access(idx)};
    };
    re = nre;
    im = nim;
  }
  return {re, im};
}

/// Writes output 0 [..., K (at binAxis), ..., 2] = scale * sum_{j < take, j < N} x[j] w^(jk mod N),
/// w^m = (cos, sin)(sign 2 pi m / N), sign -1 (forward) or +1 (inverse, scale 1 / N). The
/// twiddles are two f64 tables of N (or its bound) entries, computed in the kernel with the
/// reference's expression; the real and imaginary parts are two f64 reductions in the
/// reference's order of operations ((a + bi)(c + di) = (ac - bd) + (ad + bc)i), then the
/// output converts to its dtype. A static power-of-two length >= kMinFftLength runs as FFT
/// stages instead (lineFft), as the reference does; its direct sum and its FFT differ from
/// these by rounding in f64 only.
void lowerLineDft(LowerContext &ctx, size_t binAxis, int64_t take, const DftLength &N, bool inverse,
                  const SampleFn &sample) {
  DType dt = ctx.outputDType(0);
  ctx.check(dt == DType::f32 || dt == DType::f64, "lowering handles f32 and f64 signals, got ",
            dtypeName(dt));
  std::vector<int64_t> os = ctx.outputShape(0);
  std::vector<int64_t> ls(os.begin(), os.end() - 1); // the line results' shape
  ctx.check(N.max >= 1 && take >= 1, "transform length ", N.max, " and ", take,
            " samples: expected both >= 1");
  const double sign = inverse ? 1.0 : -1.0;
  Expr n = N.isStatic ? N.value : loop::max(N.value, Expr(int64_t(1))); // no modulo by 0
  auto table = [&](bool isSin) {
    return lowering::storedCompute(ctx, {Expr(N.max)}, [&](const std::vector<Var> &m) {
      // the reference's sign * 2.0 * pi * double(m) / double(n), same order
      Expr a = Expr(sign * 2.0 * std::numbers::pi) * loop::cast(DType::f64, Expr(m[0])) /
               loop::cast(DType::f64, n);
      return isSin ? loop::sin(a) : loop::cos(a);
    }, isSin ? "sin" : "cos");
  };
  te::Tensor cosT = table(false), sinT = table(true);
  te::Tensor re, im; // the line results, indexed by the output's indices (bin axis included)
  if (N.isStatic && N.max >= kMinFftLength && (N.max & (N.max - 1)) == 0) {
    std::tie(re, im) = lineFft(ctx, ls, binAxis, take, N.max, cosT, sinT, sample);
  } else {
    // w^(jk mod N) by sample and bin: the index computation (an integer modulo, which no vector
    // unit does) once per pair instead of once per pair and line, and loads contiguous in k
    const int64_t K = ls[binAxis];
    const bool perPair = take * K <= kMaxTwiddlePairs;
    auto twiddleIndex = [&](Expr j, Expr k) {
      Expr m = (j * k) % n;
      if (!N.isStatic) // a run-time length beyond the declared output's: stay in the table
        m = loop::min(m, Expr(N.max - 1));
      return m;
    };
    te::Tensor cosJK, sinJK;
    if (perPair) {
      auto pairs = [&](const te::Tensor &t, const char *what) {
        return lowering::storedCompute(ctx, {Expr(take), Expr(K)}, [&](const std::vector<Var> &jk) {
          return t(twiddleIndex(Expr(jk[0]), Expr(jk[1])));
        }, what);
      };
      cosJK = pairs(cosT, "cos_jk");
      sinJK = pairs(sinT, "sin_jk");
    }
    auto part = [&](bool imag) {
      return ctx.compute(lowering::shapeExprs(ls), [&](std::vector<Var> iv) {
        te::IterVar j = te::reduce_axis({Expr(int64_t(0)), Expr(take)}, "j");
        Expr c, s;
        if (perPair) {
          c = cosJK(Expr(j), Expr(iv[binAxis]));
          s = sinJK(Expr(j), Expr(iv[binAxis]));
        } else {
          Expr m = twiddleIndex(Expr(j), Expr(iv[binAxis]));
          c = cosT(m);
          s = sinT(m);
        }
        auto [xr, xi] = sample(iv, Expr(j));
        Expr v;
        if (!xi.defined())
          v = imag ? xr * s : xr * c;
        else
          v = imag ? xr * s + xi * c : xr * c - xi * s;
        Expr where = N.isStatic ? Expr() : Expr(j) < N.value;
        return te::ComputeBody(te::sum(v, {j}, Expr(), where));
      }, imag ? "imag" : "real");
    };
    re = part(false);
    im = part(true);
  }
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(os), [&](std::vector<Var> iv) {
    std::vector<Expr> li(iv.begin(), iv.end() - 1);
    Expr v = loop::select(Expr(iv.back()) == int64_t(0), re.access(li), im.access(li));
    if (inverse)
      v = v * (Expr(1.0) / loop::cast(DType::f64, n));
    return dt == DType::f64 ? v : loop::cast(dt, v);
  }));
}

/// The signal's input as f64 real / imaginary parts at `idx` (last index replaced).
std::pair<Expr, Expr> complexSample(const te::Tensor &x, std::vector<Expr> idx, bool complexIn) {
  idx.back() = Expr(int64_t(0));
  Expr re = loop::cast(DType::f64, x.access(idx));
  if (!complexIn)
    return {re, Expr()};
  idx.back() = Expr(int64_t(1));
  return {re, loop::cast(DType::f64, x.access(idx))};
}

/// DFT (opset 17): the transform along `axis` of [batch, signal..., 1 | 2] to [..., K, ..., 2].
/// dft_length: a constant, or (not onesided) the output's extent along the axis, or else read
/// at run time, bounded by the output's extent (onesided: N <= 2K - 1).
void lowerDFT(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  const int64_t rank = int64_t(xs.size());
  ctx.check(rank >= 2 && (xs.back() == 1 || xs.back() == 2), "input has shape ",
            shapeToString(xs), ", expected [batch, signal..., 1] (real) or [..., 2] (complex)");
  const bool complexIn = xs.back() == 2;
  const int64_t axis = dftAxis(ctx, rank);
  const bool inverse = ctx.attrInt("inverse", 0) != 0;
  const bool onesided = ctx.attrInt("onesided", 0) != 0;
  ctx.check(!(onesided && complexIn),
            "onesided=1 requires a real input (last dimension 1), got shape ", shapeToString(xs));
  const int64_t K = ctx.outputShape(0)[size_t(axis)], L = xs[size_t(axis)];
  DftLength N;
  if (!ctx.hasInput(1)) {
    N.max = L;
  } else if (ctx.inputConstant(1) || !onesided) {
    N.max = ctx.inputConstant(1) ? loweredScalarInt(ctx, 1, "dft_length") : K;
    ctx.check(N.max > 0, "dft_length is ", N.max, ", expected > 0");
  } else {
    N.max = 2 * K - 1;
    N.isStatic = false;
    N.value = scalarAsI64(ctx, 1, "dft_length");
  }
  if (N.isStatic)
    N.value = Expr(N.max);
  const te::Tensor &x = ctx.input(0);
  lowerLineDft(ctx, size_t(axis), std::min(L, N.max), N, inverse,
               [&](const std::vector<Var> &iv, Expr j) {
                 std::vector<Expr> idx(iv.begin(), iv.end());
                 idx.push_back(Expr(int64_t(0)));
                 idx[size_t(axis)] = j;
                 return complexSample(x, idx, complexIn);
               });
}

/// STFT: frames of frame_length samples every frame_step, times the window, each transformed
/// ([batch, frames, bins, 2]). frame_step is a literal when constant, else read at run time;
/// frame_length is the window's length, or a constant, or (not onesided) the output's bins,
/// or else read at run time, bounded by the output (onesided: 2 * bins - 1). Frame starts past
/// the signal (which the reference rejects) are clamped.
void lowerSTFT(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  ctx.check(xs.size() == 3 && (xs[2] == 1 || xs[2] == 2), "input signal has shape ",
            shapeToString(xs), ", expected [batch, length, 1] (real) or [batch, length, 2]");
  const bool complexIn = xs[2] == 2;
  const bool onesided = ctx.attrInt("onesided", 1) != 0;
  ctx.check(!(onesided && complexIn),
            "onesided=1 requires a real signal (last dimension 1), got shape ", shapeToString(xs));
  const int64_t len = xs[1], bins = ctx.outputShape(0)[2];
  if (ctx.inputConstant(1))
    ctx.check(loweredScalarInt(ctx, 1, "frame_step") > 0, "frame_step must be > 0");
  Expr step = scalarAsI64(ctx, 1, "frame_step");
  const bool hasWindow = ctx.hasInput(2);
  DftLength N;
  if (hasWindow) {
    std::vector<int64_t> ws = ctx.inputShape(2);
    ctx.check(ws.size() == 1, "input window has shape ", shapeToString(ws), ", expected rank 1");
    N.max = ws[0];
    if (ctx.hasInput(3) && ctx.inputConstant(3))
      ctx.check(loweredScalarInt(ctx, 3, "frame_length") == N.max, "frame_length ",
                loweredScalarInt(ctx, 3, "frame_length"), " differs from the window length ",
                N.max);
  } else if (ctx.hasInput(3) && (ctx.inputConstant(3) || !onesided)) {
    N.max = ctx.inputConstant(3) ? loweredScalarInt(ctx, 3, "frame_length") : bins;
  } else if (ctx.hasInput(3)) {
    N.max = 2 * bins - 1;
    N.isStatic = false;
    N.value = scalarAsI64(ctx, 3, "frame_length");
  } else {
    ctx.fail("either window or frame_length must be given");
  }
  ctx.check(N.max > 0, "frame_length is ", N.max, ", expected > 0");
  ctx.check(!N.isStatic || len >= N.max, "signal length ", len,
            " is shorter than the frame length ", N.max);
  if (N.isStatic)
    N.value = Expr(N.max);
  const te::Tensor &x = ctx.input(0);
  te::Tensor w = hasWindow ? ctx.input(2) : te::Tensor();
  if (hasWindow) {
    DType wt = ctx.inputDType(2);
    ctx.check(isFloat(wt) || isInteger(wt), "input window should be numeric, got ",
              dtypeName(wt));
  }
  lowerLineDft(ctx, 2, N.max, N, false, [&](const std::vector<Var> &iv, Expr j) {
    // sample j of frame iv[1]: signal[b, f * step + j] (clamped into the signal)
    Expr pos = loop::min(loop::max(Expr(iv[1]) * step + j, Expr(int64_t(0))), Expr(len - 1));
    auto [re, im] = complexSample(x, {Expr(iv[0]), pos, Expr(int64_t(0))}, complexIn);
    if (!hasWindow)
      return std::pair<Expr, Expr>{re, im};
    Expr wj = loop::cast(DType::f64, w(j));
    return std::pair<Expr, Expr>{re * wj, im.defined() ? im * wj : im};
  });
}

void attachSignalLowerings(OpRegistry &r) {
  for (const CosineWindow &w : kCosineWindows)
    r.setLower(w.name, lowerWindow(w.a0, w.a1, w.a2));
  r.setLower("MelWeightMatrix", lowerMel);
  r.setLower("DFT", lowerDFT);
  r.setLower("STFT", lowerSTFT);
}

} // namespace
// --- end of the Signal lowerings

void registerSignalOps(OpRegistry &r) {
  r.add(OpDef{"DFT", "", 17, 17, 1, 2, 1, 1, "float types",
              "real or complex input; onesided (real input only), inverse, axis, dft_length; "
              "computed in double (radix-2 FFT for powers of two, direct DFT otherwise)",
              inferDFT, kernelDFT});
  r.add(OpDef{"STFT", "", 17, 17, 2, 4, 1, 1, "float types",
              "window and/or frame_length (must agree); onesided (real signal only)", inferSTFT,
              kernelSTFT});
  for (const CosineWindow &w : kCosineWindows)
    r.add(windowOp(w.name, w.a0, w.a1, w.a2));
  r.add(OpDef{"MelWeightMatrix", "", 17, 17, 5, 5, 1, 1,
              "int32/int64 sizes, float edges; output: output_datatype",
              "follows the ONNX reference (bins floor((dft_length+1)*hz/sample_rate)); "
              "bins outside [0, dft_length/2] are dropped",
              inferMel, kernelMel});
  attachSignalLowerings(r);
}

} // namespace tessel
