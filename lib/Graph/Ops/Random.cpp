//===- Random.cpp - Random ops ---------------------------------------===//
//
// RandomUniform, RandomNormal, RandomUniformLike, RandomNormalLike, Bernoulli, Multinomial:
// reference kernels and lowerings over one counter-based generator, so that the interpreter
// and compiled code draw the same values and parallel, vectorized kernels are fine.
//
// The generator is SplitMix64 read at a position: element i's bits are
//   draw(key, i) = mix64(key + (i + 1) * 0x9E3779B97F4A7C15)
// (mix64: SplitMix64's finalizer), a pure function of (key, i). `key` is mix64 of the bits of
// the `seed` attribute (as a double) when given: the same values on every run, in the
// interpreter and compiled (bitwise for uniform, Bernoulli and Multinomial; Normal's log, cos
// and sqrt are libm's in both, within a few ulp at worst). Without `seed` (ONNX: "auto
// generated") the interpreter takes the key from std::random_device on each run and compiled
// code from the fresh_u64 loop-IR intrinsic, evaluated once per kernel call in a stored [1]
// stage (an atomic module counter mixed with the cycle counter and an address: new values on
// each run and in each process, thread-safe, no runtime support; docs/lowering.md, "Random
// ops"). Element i of a value uses draw(key, i) (Normal: draw(key, 2i) and draw(key, 2i + 1),
// Box-Muller's cosine branch; Multinomial: draw(key, b * sample_size + s)); a uniform in [0, 1)
// takes the top p bits, p = the output type's precision (53 f64, 24 f32, 11 f16, 8 bf16; 53 for
// Normal, Bernoulli and Multinomial), computed in double and rounded once to the output type.
// Values differ from numpy's, so the ONNX tests that compare exact draws fail (listed).
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"
#include "tessel/Graph/Lowering.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <limits>
#include <numbers>
#include <optional>
#include <random>
#include <string>
#include <vector>

namespace tessel {

namespace {

using loop::Expr;
using loop::Var;

//===----------------------------------------------------------------------===//
// The generator, written once for host integers (reference kernels) and loop-IR expressions
// (lowerings): the same operations in the same order, so both give the same bits.
//===----------------------------------------------------------------------===//

constexpr uint64_t kGolden = 0x9E3779B97F4A7C15ull;

struct HostOps {
  using U = uint64_t;
  using D = double;
  static U lit(uint64_t v) { return v; }
  static U bitXor(U a, U b) { return a ^ b; }
  static U shr(U a, int k) { return a >> k; }
  static D toDouble(U a) { return double(a); }
  static D log(D x) { return std::log(x); }
  static D cos(D x) { return std::cos(x); }
  static D sqrt(D x) { return std::sqrt(x); }
  static D fma(D a, D b, D c) { return std::fma(a, b, c); }
};

struct ExprOps {
  using U = Expr;
  using D = Expr;
  static U lit(uint64_t v) { return loop::makeConst(loop::Type::u64(), int64_t(v)); }
  static U bitXor(U a, U b) { return loop::bitXor(std::move(a), std::move(b)); }
  static U shr(U a, int k) { return loop::shr(std::move(a), lit(uint64_t(k))); }
  static D toDouble(U a) { return loop::cast(DType::f64, std::move(a)); }
  static D log(D x) { return loop::log(std::move(x)); }
  static D cos(D x) { return loop::cos(std::move(x)); }
  static D sqrt(D x) { return loop::sqrt(std::move(x)); }
  static D fma(D a, D b, D c) { return loop::fma(std::move(a), std::move(b), std::move(c)); }
};

template <class O> struct Gen {
  using U = typename O::U;
  using D = typename O::D;
  /// SplitMix64's finalizer (a bijection of 64-bit values).
  static U mix64(U z) {
    z = O::bitXor(z, O::shr(z, 30)) * O::lit(0xBF58476D1CE4E5B9ull);
    z = O::bitXor(z, O::shr(z, 27)) * O::lit(0x94D049BB133111EBull);
    return O::bitXor(z, O::shr(z, 31));
  }
  /// The counter-th output of SplitMix64 started at `key` (counter from 0).
  static U draw(U key, U counter) { return mix64(key + (counter + O::lit(1)) * O::lit(kGolden)); }
  /// [0, 1) from the top `bits` bits: k * 2^-bits.
  static D unit(U r, int bits) {
    return O::toDouble(O::shr(r, 64 - bits)) * std::ldexp(1.0, -bits);
  }
  // The multiply-adds are fused on both sides: the compiler contracts a * b + c into an fma
  // (lib/Compiler/Compile.cpp), so the reference kernels round once there too.
  /// low + (high - low) * u, u from the top `bits` bits.
  static D uniform(U r, int bits, double low, double high) {
    return O::fma(D(high - low), unit(r, bits), D(low));
  }
  /// mean + scale * sqrt(-2 log u1) * cos(2 pi u2), u1 in (0, 1], u2 in [0, 1) (Box-Muller).
  static D normal(U r1, U r2, double mean, double scale) {
    D u1 = 1.0 - unit(r1, 53);
    D u2 = unit(r2, 53);
    D z = O::sqrt(-2.0 * O::log(u1)) * O::cos(2.0 * std::numbers::pi * u2);
    return O::fma(D(scale), z, D(mean));
  }
};

using Host = Gen<HostOps>;
using Lowered = Gen<ExprOps>;

/// Bits of the uniform in [0, 1) for an output of dtype dt: its precision.
int uniformBits(DType dt) {
  switch (dt) {
  case DType::f64: return 53;
  case DType::f16: return 11;
  case DType::bf16: return 8;
  default: return 24;
  }
}

/// The key from the `seed` attribute; nullopt when the op has none (auto-generated).
std::optional<uint64_t> seedKey(const AttrReader &ctx) {
  if (!ctx.hasAttr("seed"))
    return std::nullopt;
  float s = ctx.attrFloat("seed");
  if (!std::isfinite(s))
    ctx.fail("attribute 'seed' is ", s, ", expected a finite value");
  double d = s;
  uint64_t bits;
  std::memcpy(&bits, &d, sizeof bits);
  return Host::mix64(bits);
}

/// The reference kernels' key: the seed's, or a fresh one per run.
uint64_t hostKey(const AttrReader &ctx) {
  if (std::optional<uint64_t> k = seedKey(ctx))
    return *k;
  std::random_device rd;
  return Host::mix64((uint64_t(rd()) << 32) ^ uint64_t(rd()));
}

//===----------------------------------------------------------------------===//
// Attributes
//===----------------------------------------------------------------------===//

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

/// (low, high) of a uniform or (mean, scale) of a normal op, checked.
std::pair<double, double> distParams(const AttrReader &ctx, Dist dist) {
  if (dist == Dist::Uniform) {
    double lo = ctx.attrFloat("low", 0.f), hi = ctx.attrFloat("high", 1.f);
    if (!(lo <= hi) || !std::isfinite(lo) || !std::isfinite(hi))
      ctx.fail("expected finite low <= high, got low ", lo, ", high ", hi);
    return {lo, hi};
  }
  double mean = ctx.attrFloat("mean", 0.f), scale = ctx.attrFloat("scale", 1.f);
  if (!(scale > 0) || !std::isfinite(scale) || !std::isfinite(mean))
    ctx.fail("expected a finite mean and scale > 0, got mean ", mean, ", scale ", scale);
  return {mean, scale};
}

/// Fills an f64 tensor of `shape` with the distribution of the node's attributes, cast to dt.
Tensor sample(const KernelContext &ctx, Dist dist, DType dt, const std::vector<int64_t> &shape) {
  Tensor t(DType::f64, shape);
  double *p = t.data<double>();
  const uint64_t key = hostKey(ctx);
  const auto [a, b] = distParams(ctx, dist);
  const int bits = uniformBits(dt);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const uint64_t n = uint64_t(i);
    p[i] = dist == Dist::Uniform
               ? Host::uniform(Host::draw(key, n), bits, a, b)
               : Host::normal(Host::draw(key, 2 * n), Host::draw(key, 2 * n + 1), a, b);
  }
  return dt == DType::f64 ? t : t.cast(dt);
}

const char *kRandomNote = "counter-based (SplitMix64 at each element's index): seeded values are "
                          "the same compiled and interpreted; values differ from numpy's (the "
                          "ONNX tests comparing exact draws fail)";

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
  const uint64_t key = hostKey(ctx);
  for (size_t i = 0; i < prob.size(); ++i) {
    if (!(prob[i] >= 0.0 && prob[i] <= 1.0))
      ctx.fail("probability ", prob[i], " at index ", i, " is outside [0, 1]");
    p[i] = Host::unit(Host::draw(key, uint64_t(i)), 53) < prob[i] ? 1.0 : 0.0;
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

/// Each row's weights exp(x - max) (NaN entries weigh 0; an infinite max gives all zeros), the
/// running sum cdf[c] = w[0] + ... + w[c] in that order, and for each sample the number of
/// classes whose cdf is <= u * cdf[C - 1] (std::upper_bound), clamped to C - 1.
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
  const uint64_t key = hostKey(ctx);
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
    for (int64_t s = 0; s < samples; ++s) {
      double v = Host::unit(Host::draw(key, uint64_t(b * samples + s)), 53) * acc;
      int64_t k = int64_t(std::upper_bound(cdf.begin(), cdf.end(), v) - cdf.begin());
      o[b * samples + s] = std::min(k, classes - 1);
    }
  }
  ctx.setOutput(0, dt == DType::i64 ? out : out.cast(dt));
}

} // namespace

// --- lowerings of the Random ops
// Each output element evaluates the generator above at its own counter (a pure function of the
// key and the index: any schedule, parallel or vectorized, gives the same values). The key is
// a u64 literal for a seeded op, else fresh_u64(salt) in a stored [1] stage: one evaluation
// per kernel call (salt: a hash of the kernel's name). Compiled code does not check
// Bernoulli's probabilities (p > 1 gives 1, p < 0 or NaN gives 0) nor Multinomial's rows (a
// row with no finite log-probability gives unspecified indices in [0, C)): the reference
// kernels report both.
namespace {

/// The generator's key as an expression: the seed's literal, or a fresh value per call.
Expr loweredKey(const LowerContext &ctx) {
  if (std::optional<uint64_t> k = seedKey(ctx))
    return ExprOps::lit(*k);
  uint64_t salt = 0xcbf29ce484222325ull; // FNV-1a of the kernel's name
  for (unsigned char ch : ctx.name("key")) {
    salt ^= ch;
    salt *= 0x100000001b3ull;
  }
  te::Tensor key = lowering::storedCompute(
      ctx, {Expr(int64_t(1))},
      [&](const std::vector<Var> &) { return loop::freshU64(ExprOps::lit(salt)); }, "key");
  return key(Expr(int64_t(0)));
}

/// The row-major linear index of `iv` in `shape`, as u64.
Expr linearIndex(const std::vector<Var> &iv, const std::vector<int64_t> &shape) {
  return loop::cast(DType::u64,
                    lowering::rowMajorIndex(std::vector<Expr>(iv.begin(), iv.end()), shape));
}

void lowerSample(LowerContext &ctx, Dist dist) {
  const DType dt = ctx.outputDType(0);
  lowering::checkDType(ctx, dt, "output");
  const auto [a, b] = distParams(ctx, dist);
  const std::vector<int64_t> shape = ctx.outputShape(0);
  Expr key = loweredKey(ctx);
  const int bits = uniformBits(dt);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(shape), [&](const std::vector<Var> &iv) {
    Expr n = linearIndex(iv, shape);
    Expr v = dist == Dist::Uniform
                 ? Lowered::uniform(Lowered::draw(key, n), bits, a, b)
                 : Lowered::normal(Lowered::draw(key, n * ExprOps::lit(2)),
                                   Lowered::draw(key, n * ExprOps::lit(2) + ExprOps::lit(1)), a, b);
    return loop::cast(dt, v);
  }));
}

void lowerBernoulli(LowerContext &ctx) {
  const DType in = ctx.inputDType(0), dt = ctx.outputDType(0);
  ctx.check(isFloat(in), "input has element type ", dtypeName(in), ", expected a float type");
  lowering::checkDType(ctx, dt, "output");
  const std::vector<int64_t> shape = ctx.outputShape(0);
  Expr key = loweredKey(ctx);
  const te::Tensor &x = ctx.input(0);
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(shape), [&](const std::vector<Var> &iv) {
    Expr p = loop::cast(DType::f64, x.access(std::vector<Expr>(iv.begin(), iv.end())));
    Expr u = Lowered::unit(Lowered::draw(key, linearIndex(iv, shape)), 53);
    return loop::cast(dt, loop::select(u < p, Expr(1.0), Expr(0.0)));
  }));
}

/// The reference kernel's algorithm in stages: row max, weights (stored), running sums (a sum
/// over c' <= c in order), draws u * total (stored), and the count of running sums <= draw.
void lowerMultinomial(LowerContext &ctx) {
  const DType in = ctx.inputDType(0), dt = ctx.outputDType(0);
  ctx.check(isFloat(in), "input has element type ", dtypeName(in), ", expected a float type");
  const std::vector<int64_t> xs = ctx.inputShape(0);
  ctx.check(xs.size() == 2 && xs[1] > 0, "input has shape ", shapeToString(xs),
            ", expected [batch_size, class_size > 0]");
  const int64_t batch = xs[0], classes = xs[1], samples = sampleSize(ctx);
  const te::Tensor &x = ctx.input(0);
  Expr key = loweredKey(ctx);
  const double inf = std::numeric_limits<double>::infinity();
  auto logit = [&](Expr b, Expr c) { return loop::cast(DType::f64, x(b, c)); };

  te::Tensor mx = ctx.compute({Expr(batch)}, [&](Var b) {
    te::IterVar c = te::reduce_axis({Expr(int64_t(0)), Expr(classes)}, "c");
    Expr v = logit(b, c.var());
    return te::max(loop::select(v != v, Expr(-inf), v), {c});
  }, "max");
  te::Tensor w = lowering::storedCompute(ctx, {Expr(batch), Expr(classes)},
                                         [&](const std::vector<Var> &iv) {
    Expr v = logit(iv[0], iv[1]), m = mx(iv[0]);
    Expr zero = (v != v) || (m == inf) || (m == -inf);
    return loop::select(zero, Expr(0.0), loop::exp(v - m));
  }, "weights");
  te::Tensor cdf = ctx.compute({Expr(batch), Expr(classes)}, [&](Var b, Var c) {
    te::IterVar k = te::reduce_axis({Expr(int64_t(0)), Expr(classes)}, "k");
    return te::sum(w(b, k.var()), {k}, Expr(), k.var() <= c);
  }, "cdf");
  te::Tensor draws = lowering::storedCompute(ctx, {Expr(batch), Expr(samples)},
                                             [&](const std::vector<Var> &iv) {
    Expr n = linearIndex(iv, {batch, samples});
    return Lowered::unit(Lowered::draw(key, n), 53) * cdf(iv[0], Expr(classes - 1));
  }, "draws");
  te::Tensor count = ctx.compute({Expr(batch), Expr(samples)}, [&](Var b, Var s) {
    te::IterVar c = te::reduce_axis({Expr(int64_t(0)), Expr(classes)}, "c");
    return te::sum(loop::select(cdf(b, c.var()) <= draws(b, s), Expr(int64_t(1)), Expr(int64_t(0))),
                   {c});
  }, "count");
  ctx.setOutput(0, ctx.compute({Expr(batch), Expr(samples)}, [&](Var b, Var s) {
    return loop::cast(dt, loop::min(count(b, s), Expr(classes - 1)));
  }));
}

void attachRandomLowerings(OpRegistry &r) {
  r.setLower("RandomUniform", [](LowerContext &ctx) { lowerSample(ctx, Dist::Uniform); });
  r.setLower("RandomNormal", [](LowerContext &ctx) { lowerSample(ctx, Dist::Normal); });
  r.setLower("RandomUniformLike", [](LowerContext &ctx) { lowerSample(ctx, Dist::Uniform); });
  r.setLower("RandomNormalLike", [](LowerContext &ctx) { lowerSample(ctx, Dist::Normal); });
  r.setLower("Bernoulli", lowerBernoulli);
  r.setLower("Multinomial", lowerMultinomial);
}

} // namespace
// --- end of the Random lowerings

void registerRandomOps(OpRegistry &r) {
  r.add(randomOp("RandomUniform", Dist::Uniform));
  r.add(randomOp("RandomNormal", Dist::Normal));
  r.add(randomLikeOp("RandomUniformLike", Dist::Uniform));
  r.add(randomLikeOp("RandomNormalLike", Dist::Normal));
  r.add(OpDef{"Bernoulli", "", 15, 17, 1, 1, 1, 1, "input: float types; output: numeric or bool",
              kRandomNote, inferBernoulli, kernelBernoulli});
  r.add(OpDef{"Multinomial", "", 7, 17, 1, 1, 1, 1, "input: float types; output: int32/int64",
              kRandomNote, inferMultinomial, kernelMultinomial});
  attachRandomLowerings(r);
}

} // namespace tessel
