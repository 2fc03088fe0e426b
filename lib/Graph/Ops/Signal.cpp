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
#include <numbers>
#include <optional>
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
// converted to output_datatype.
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

/// Input i (a one-element tensor) as an f64 expression: a literal when constant, else a load.
Expr scalarAsF64(const LowerContext &ctx, size_t i, const char *what) {
  if (ctx.inputConstant(i))
    return Expr(loweredScalarFloat(ctx, i, what));
  std::vector<int64_t> es = ctx.inputShape(i);
  ctx.check(es.size() <= 1 && (es.empty() || es[0] == 1), what, " should be a scalar, got shape ",
            shapeToString(es));
  DType et = ctx.inputDType(i);
  ctx.check(isFloat(et) || isInteger(et), what, " should be numeric, got ", dtypeName(et));
  return loop::cast(DType::f64,
                    ctx.input(i).access(std::vector<Expr>(es.size(), Expr(int64_t(0)))));
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

void attachSignalLowerings(OpRegistry &r) {
  for (const CosineWindow &w : kCosineWindows)
    r.setLower(w.name, lowerWindow(w.a0, w.a1, w.a2));
  r.setLower("MelWeightMatrix", lowerMel);
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
