//===- Random.cpp - Random ops ---------------------------------------===//
//
// RandomUniform, RandomNormal, RandomUniformLike, RandomNormalLike, Bernoulli, Multinomial.
// Values come from std::mt19937 (seeded with the `seed` attribute when given, else from
// std::random_device): dtype, shape and distribution follow the spec, but no two engines draw
// the same numbers, so the ONNX tests that compare exact random values cannot pass.
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"

#include <algorithm>
#include <cmath>
#include <optional>
#include <random>
#include <vector>

namespace tessel {

namespace {

std::mt19937 makeEngine(const AttrReader &ctx) {
  if (ctx.hasAttr("seed")) {
    float s = ctx.attrFloat("seed");
    if (!std::isfinite(s))
      ctx.fail("attribute 'seed' is ", s, ", expected a finite value");
    return std::mt19937(static_cast<uint32_t>(static_cast<int64_t>(s)));
  }
  std::random_device rd;
  return std::mt19937(rd());
}

/// The `dtype` attribute as a float type (f16/bf16/f32/f64); `dflt` when absent.
DType floatDTypeAttr(const AttrReader &ctx, DType dflt) {
  if (!ctx.hasAttr("dtype"))
    return dflt;
  int64_t code = ctx.attrInt("dtype");
  std::optional<DType> dt = dtypeFromOnnx(int(code));
  if (!dt || !isFloat(*dt))
    ctx.fail("attribute 'dtype' is ", code, ", expected a float type (float16, float, double)");
  return *dt;
}

/// Output dtype of the *Like ops: the dtype attribute, else the input's type (must be float).
DType likeDType(const AttrReader &ctx, DType input) {
  if (ctx.hasAttr("dtype"))
    return floatDTypeAttr(ctx, DType::f32);
  if (input == DType::undefined)
    return input;
  if (!isFloat(input))
    ctx.fail("input has element type ", dtypeName(input),
             "; without a 'dtype' attribute the output type is the input's, which must be float");
  return input;
}

std::vector<int64_t> shapeAttr(const AttrReader &ctx) {
  std::vector<int64_t> s = ctx.attrInts("shape");
  for (int64_t d : s)
    if (d < 0)
      ctx.fail("attribute 'shape' ", shapeToString(s), " has a negative dimension");
  return s;
}

enum class Dist { Uniform, Normal };

/// Fills an f64 tensor of `shape` with the distribution of the node's attributes, cast to dt.
Tensor sample(const KernelContext &ctx, Dist dist, DType dt, const std::vector<int64_t> &shape) {
  Tensor t(DType::f64, shape);
  double *p = t.data<double>();
  std::mt19937 eng = makeEngine(ctx);
  if (dist == Dist::Uniform) {
    double lo = ctx.attrFloat("low", 0.f), hi = ctx.attrFloat("high", 1.f);
    if (!(lo <= hi) || !std::isfinite(lo) || !std::isfinite(hi))
      ctx.fail("expected finite low <= high, got low ", lo, ", high ", hi);
    std::uniform_real_distribution<double> u(lo, hi);
    for (int64_t i = 0; i < t.numel(); ++i)
      p[i] = u(eng);
  } else {
    double mean = ctx.attrFloat("mean", 0.f), scale = ctx.attrFloat("scale", 1.f);
    if (!(scale > 0) || !std::isfinite(scale) || !std::isfinite(mean))
      ctx.fail("expected a finite mean and scale > 0, got mean ", mean, ", scale ", scale);
    std::normal_distribution<double> n(mean, scale);
    for (int64_t i = 0; i < t.numel(); ++i)
      p[i] = n(eng);
  }
  return dt == DType::f64 ? t : t.cast(dt);
}

const char *kRandomNote = "std::mt19937; dtype, shape and distribution per spec, values differ "
                          "from other engines (the ONNX tests comparing exact values fail)";

OpDef randomOp(const char *name, Dist dist) {
  OpDef d;
  d.name = name;
  d.minInputs = d.maxInputs = 0;
  d.minOutputs = d.maxOutputs = 1;
  d.dtypes = "float types";
  d.notes = kRandomNote;
  d.infer = [](InferContext &ctx) {
    ctx.setOutputType(0, Type::tensor(floatDTypeAttr(ctx, DType::f32), Shape::of(shapeAttr(ctx))));
  };
  d.kernel = [dist](KernelContext &ctx) {
    ctx.setOutput(0, sample(ctx, dist, floatDTypeAttr(ctx, DType::f32), shapeAttr(ctx)));
  };
  return d;
}

OpDef randomLikeOp(const char *name, Dist dist) {
  OpDef d;
  d.name = name;
  d.minInputs = d.maxInputs = 1;
  d.minOutputs = d.maxOutputs = 1;
  d.dtypes = "input: any; output: float types";
  d.notes = kRandomNote;
  d.infer = [](InferContext &ctx) {
    const Type &t = ctx.inputType(0);
    ctx.setOutputType(0, Type::tensor(likeDType(ctx, t.dtype), tensorShape(ctx, 0)));
  };
  d.kernel = [dist](KernelContext &ctx) {
    const Tensor &x = ctx.input(0);
    ctx.setOutput(0, sample(ctx, dist, likeDType(ctx, x.dtype()), x.shape()));
  };
  return d;
}

//===----------------------------------------------------------------------===//
// Bernoulli
//===----------------------------------------------------------------------===//

DType bernoulliDType(const AttrReader &ctx, DType input) {
  if (!ctx.hasAttr("dtype"))
    return input;
  int64_t code = ctx.attrInt("dtype");
  std::optional<DType> dt = dtypeFromOnnx(int(code));
  if (!dt || *dt == DType::string)
    ctx.fail("attribute 'dtype' is ", code, ", expected a numeric or bool type");
  return *dt;
}

void inferBernoulli(InferContext &ctx) {
  const Type &t = ctx.inputType(0);
  ctx.setOutputType(0, Type::tensor(bernoulliDType(ctx, t.dtype), tensorShape(ctx, 0)));
}

void kernelBernoulli(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  if (!isFloat(x.dtype()))
    ctx.fail("input has element type ", dtypeName(x.dtype()), ", expected a float type");
  DType dt = bernoulliDType(ctx, x.dtype());
  std::vector<double> prob = x.toDoubleVector();
  Tensor t(DType::f64, x.shape());
  double *p = t.data<double>();
  std::mt19937 eng = makeEngine(ctx);
  std::uniform_real_distribution<double> u(0.0, 1.0);
  for (size_t i = 0; i < prob.size(); ++i) {
    if (!(prob[i] >= 0.0 && prob[i] <= 1.0))
      ctx.fail("probability ", prob[i], " at index ", i, " is outside [0, 1]");
    p[i] = u(eng) < prob[i] ? 1.0 : 0.0;
  }
  ctx.setOutput(0, dt == DType::f64 ? t : t.cast(dt));
}

//===----------------------------------------------------------------------===//
// Multinomial
//===----------------------------------------------------------------------===//

DType multinomialDType(const AttrReader &ctx) {
  int64_t code = ctx.attrInt("dtype", 6);
  std::optional<DType> dt = dtypeFromOnnx(int(code));
  if (!dt || (*dt != DType::i32 && *dt != DType::i64))
    ctx.fail("attribute 'dtype' is ", code, ", expected int32 (6) or int64 (7)");
  return *dt;
}

int64_t sampleSize(const AttrReader &ctx) {
  int64_t n = ctx.attrInt("sample_size", 1);
  if (n <= 0)
    ctx.fail("attribute 'sample_size' is ", n, ", expected > 0");
  return n;
}

void inferMultinomial(InferContext &ctx) {
  const Shape &s = tensorShape(ctx, 0);
  Dim batch;
  if (s.rankKnown) {
    if (s.rank() != 2)
      ctx.fail("input has rank ", s.rank(), ", expected 2 ([batch_size, class_size])");
    batch = s.dims[0];
  }
  ctx.setOutputType(0, Type::tensor(multinomialDType(ctx), Shape({batch, Dim(sampleSize(ctx))})));
}

void kernelMultinomial(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  if (!isFloat(x.dtype()))
    ctx.fail("input has element type ", dtypeName(x.dtype()), ", expected a float type");
  if (x.rank() != 2 || x.dim(1) == 0)
    ctx.fail("input has shape ", x.shapeString(), ", expected [batch_size, class_size > 0]");
  const DType dt = multinomialDType(ctx);
  const int64_t samples = sampleSize(ctx);
  const int64_t batch = x.dim(0), classes = x.dim(1);
  std::vector<double> logits = x.toDoubleVector();
  Tensor out(DType::i64, {batch, samples});
  int64_t *o = out.data<int64_t>();
  std::mt19937 eng = makeEngine(ctx);
  std::vector<double> cdf(static_cast<size_t>(classes));
  for (int64_t b = 0; b < batch; ++b) {
    const double *row = logits.data() + b * classes;
    double mx = -INFINITY;
    for (int64_t c = 0; c < classes; ++c)
      if (!std::isnan(row[c]))
        mx = std::max(mx, row[c]);
    double acc = 0;
    for (int64_t c = 0; c < classes; ++c) {
      double w = std::isnan(row[c]) || std::isinf(mx) ? 0.0 : std::exp(row[c] - mx);
      acc += w;
      cdf[size_t(c)] = acc;
    }
    if (!(acc > 0) || !std::isfinite(acc))
      ctx.fail("row ", b, " of the input has no finite log-probability");
    std::uniform_real_distribution<double> u(0.0, acc);
    for (int64_t s = 0; s < samples; ++s) {
      double v = u(eng);
      int64_t k = int64_t(std::upper_bound(cdf.begin(), cdf.end(), v) - cdf.begin());
      o[b * samples + s] = std::min(k, classes - 1);
    }
  }
  ctx.setOutput(0, dt == DType::i64 ? out : out.cast(dt));
}

} // namespace

void registerRandomOps(OpRegistry &r) {
  r.add(randomOp("RandomUniform", Dist::Uniform));
  r.add(randomOp("RandomNormal", Dist::Normal));
  r.add(randomLikeOp("RandomUniformLike", Dist::Uniform));
  r.add(randomLikeOp("RandomNormalLike", Dist::Normal));
  r.add(OpDef{"Bernoulli", "", 15, 17, 1, 1, 1, 1, "input: float types; output: numeric or bool",
              kRandomNote, inferBernoulli, kernelBernoulli});
  r.add(OpDef{"Multinomial", "", 7, 17, 1, 1, 1, 1, "input: float types; output: int32/int64",
              kRandomNote, inferMultinomial, kernelMultinomial});
}

} // namespace tessel
