//===- RandomLoweringTest.cpp - the random ops compiled vs the interpreter ===//
//
// RandomUniform, RandomNormal, RandomUniformLike, RandomNormalLike, Bernoulli and Multinomial
// (lib/Graph/Ops/Random.cpp, docs/lowering.md "Random ops"), compiled end to end (compileModel
// at -O3, the artifact run by the runtime):
// - seeded: the same values as the interpreter for every op and output dtype (bitwise for
//   uniform, Bernoulli and Multinomial; Normal within a few ulp), on every run;
// - statistics of 100k draws, seeded and unseeded, compiled and interpreted: mean and variance,
//   range, lag-1 correlation, Bernoulli frequencies, Multinomial class frequencies against the
//   probabilities. The bounds are 6 or more standard deviations wide: they cannot flake;
// - unseeded: two runs of one artifact (and of the interpreter) differ, also when two threads
//   run it at once;
// - the loop-IR intrinsics behind them: xor folds, fresh_u64 is never folded, and its generated
//   code (an atomic counter and the cycle counter; the virtual counter on AArch64) gives
//   distinct values from a parallel loop and from the lanes of a vector.
//
//===----------------------------------------------------------------------===//
#include "CompileTestUtils.h"
#include "TestUtils.h"
#include "tessel/CodeGen/AOT.h"
#include "tessel/CodeGen/EmitLLVM.h"
#include "tessel/CodeGen/Optimize.h"
#include "tessel/CodeGen/Target.h"
#include "tessel/Compiler/Compile.h"
#include "tessel/Graph/Text.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/Loop/Evaluate.h"
#include "tessel/Loop/IR.h"
#include "tessel/Loop/Simplify.h"
#include "tessel/runtime/Model.h"
#include "tessel/runtime/ThreadPool.h"

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <map>
#include <set>
#include <string>
#include <thread>
#include <vector>

using namespace tessel;

namespace {

/// One random node `y = OP(inputs) {attrs}` in a graph with the given inputs.
std::string graphOf(const std::string &op, const std::string &attrs,
                    const std::string &inputs = "", const std::string &args = "") {
  return "graph @rng(" + inputs + ") opset {\"\": 17} {\n  %y = " + op + "(" + args +
         ") {name = \"rng\"" + (attrs.empty() ? "" : ", " + attrs) + "}\n  return %y\n}\n";
}

/// Compiles `text`, runs it through the runtime and compares with the interpreter (tolerance
/// `tol`: |got - want| <= tol + tol |want|; 0 is exact); returns the compiled output y.
Tensor compiledMatchesInterpreter(const std::string &text, double tol,
                                  std::map<std::string, Tensor> given = {}) {
  test::CompareOptions o;
  o.tol = tol;
  o.given = std::move(given);
  auto r = test::compileAndCompare(text, o);
  EXPECT_EQ(r.outputs.count("y"), 1u) << text;
  return r.outputs.count("y") ? r.outputs["y"] : Tensor();
}

/// A compiled artifact, loaded: run() draws its outputs once more.
struct Compiled {
  CompiledModel cm;
  runtime::Model m;
  explicit Compiled(const std::string &text)
      : cm(compileModel(*parseGraph(text, "test"), {})),
        m(runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size())) {}
  /// Output y of one run on `inputs` (in the model's input order).
  Tensor run(const std::vector<Tensor> &inputs = {}) const {
    std::vector<runtime::HostTensor> ins;
    for (size_t i = 0; i < inputs.size(); ++i) {
      runtime::HostTensor h(m.inputs().at(i));
      std::memcpy(h.bytes.data(), inputs[i].raw(), h.bytes.size());
      ins.push_back(std::move(h));
    }
    return toTensor(m.run(ins).at(0));
  }
  static Tensor toTensor(const runtime::HostTensor &h) {
    static const std::map<runtime::ElemType, DType> kTypes = {
        {runtime::ElemType::f32, DType::f32}, {runtime::ElemType::f64, DType::f64},
        {runtime::ElemType::i32, DType::i32}, {runtime::ElemType::i64, DType::i64}};
    Tensor t(kTypes.at(h.desc.dtype), h.desc.shape);
    std::memcpy(t.raw(), h.bytes.data(), h.bytes.size());
    return t;
  }
};

Tensor interpret(const std::string &text, const std::map<std::string, Tensor> &inputs = {}) {
  auto g = parseGraph(text, "test");
  std::map<std::string, Object> in;
  for (auto &[k, v] : inputs)
    in[k] = Object(v);
  return Interpreter(*g).run(in).at("y").tensor;
}

struct Stats {
  double mean = 0, var = 0, lo = INFINITY, hi = -INFINITY, lag1 = 0; // lag1: correlation
};
Stats statsOf(const Tensor &t) {
  std::vector<double> v = t.toDoubleVector();
  Stats s;
  for (double x : v) {
    s.mean += x;
    s.lo = std::min(s.lo, x);
    s.hi = std::max(s.hi, x);
  }
  s.mean /= double(v.size());
  double cov = 0;
  for (size_t i = 0; i < v.size(); ++i) {
    s.var += (v[i] - s.mean) * (v[i] - s.mean);
    if (i + 1 < v.size())
      cov += (v[i] - s.mean) * (v[i + 1] - s.mean);
  }
  s.lag1 = cov / s.var;
  s.var /= double(v.size());
  return s;
}

/// Uniform on [low, high): mean, variance (standard errors of 100k draws: 0.0009 (high - low)
/// and 0.0003 (high - low)^2; the bounds are 10x that), range, lag-1 correlation (0.003).
void expectUniform(const Tensor &t, double low, double high, const std::string &what) {
  ASSERT_EQ(t.numel(), 100000) << what;
  Stats s = statsOf(t);
  const double w = high - low;
  EXPECT_NEAR(s.mean, low + w / 2, 0.01 * w) << what;
  EXPECT_NEAR(s.var, w * w / 12, 0.003 * w * w) << what;
  EXPECT_GE(s.lo, low) << what;
  EXPECT_LT(s.hi, high) << what;
  EXPECT_LT(s.lo, low + 0.001 * w) << what;
  EXPECT_GT(s.hi, high - 0.001 * w) << what;
  EXPECT_LT(std::fabs(s.lag1), 0.02) << what;
}

/// Normal(mean, scale): sample mean (standard error 0.0032 scale), variance (0.0045 scale^2),
/// the share within one scale of the mean (0.6827, standard error 0.0015), lag-1 correlation.
void expectNormal(const Tensor &t, double mean, double scale, const std::string &what) {
  ASSERT_EQ(t.numel(), 100000) << what;
  Stats s = statsOf(t);
  EXPECT_NEAR(s.mean, mean, 0.03 * scale) << what;
  EXPECT_NEAR(s.var, scale * scale, 0.04 * scale * scale) << what;
  int64_t within = 0;
  for (double x : t.toDoubleVector())
    within += std::fabs(x - mean) < scale;
  EXPECT_NEAR(double(within) / 100000.0, 0.6827, 0.012) << what;
  EXPECT_LT(std::fabs(s.lag1), 0.02) << what;
}

bool sameBits(const Tensor &a, const Tensor &b) {
  return a.dtype() == b.dtype() && a.nbytes() == b.nbytes() &&
         std::memcmp(a.raw(), b.raw(), size_t(a.nbytes())) == 0;
}

Tensor filled(DType dt, std::vector<int64_t> shape, const std::function<double(int64_t)> &f) {
  Tensor t(DType::f64, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<double>()[i] = f(i);
  return dt == DType::f64 ? t : t.cast(dt);
}

const std::pair<int, DType> kFloatTypes[] = {
    {1, DType::f32}, {11, DType::f64}, {10, DType::f16}, {16, DType::bf16}};

} // namespace

//===----------------------------------------------------------------------===//
// Seeded: compiled == interpreter
//===----------------------------------------------------------------------===//

TEST(RandomLowering, SeededUniformIsBitwiseTheInterpreters) {
  for (auto [code, dt] : kFloatTypes) {
    std::string text = graphOf("RandomUniform", "shape = [37, 29], seed = 5.0, low = -2.0, "
                                                "high = 3.5, dtype = " + std::to_string(code));
    Tensor y = compiledMatchesInterpreter(text, 0.0);
    ASSERT_EQ(y.dtype(), dt);
    Stats s = statsOf(y);
    EXPECT_GE(s.lo, -2.0) << dtypeName(dt);
    EXPECT_LE(s.hi, 3.5) << dtypeName(dt);
    EXPECT_GT(s.hi - s.lo, 4.0) << dtypeName(dt);
  }
  // rank 0, the default dtype and range
  compiledMatchesInterpreter(graphOf("RandomUniform", "shape = [], seed = 1.0"), 0.0);
}

TEST(RandomLowering, SeededNormalMatchesTheInterpreter) {
  // log, cos and sqrt are libm's on both sides; the tolerance allows a few ulp of f64 and one
  // rounding step of the narrow types
  const double tol[] = {1e-6, 1e-13, 1e-3, 8e-3};
  int k = 0;
  for (auto [code, dt] : kFloatTypes) {
    std::string text = graphOf("RandomNormal", "shape = [4, 9, 25], seed = -7.0, mean = 1.5, "
                                               "scale = 0.25, dtype = " + std::to_string(code));
    Tensor y = compiledMatchesInterpreter(text, tol[k++]);
    ASSERT_EQ(y.dtype(), dt);
  }
}

TEST(RandomLowering, SeededLikeOpsMatchTheInterpreter) {
  // the input gives the shape (and, without dtype, the type); its values are not read
  compiledMatchesInterpreter(graphOf("RandomUniformLike", "seed = 2.0, low = 10.0, high = 11.0",
                                     "%x: f64[6,50]", "%x"), 0.0);
  compiledMatchesInterpreter(graphOf("RandomUniformLike", "seed = 2.0, dtype = 1",
                                     "%x: f64[6,50]", "%x"), 0.0);
  compiledMatchesInterpreter(graphOf("RandomNormalLike", "seed = 3.0, scale = 4.0",
                                     "%x: f32[300]", "%x"), 1e-6);
  compiledMatchesInterpreter(graphOf("RandomNormalLike", "seed = 3.0, dtype = 11",
                                     "%x: f32[3,100]", "%x"), 1e-13);
}

TEST(RandomLowering, SeededBernoulliIsBitwiseTheInterpreters) {
  // probabilities over [0, 1] (both ends included), every output type family
  for (DType in : {DType::f32, DType::f64}) {
    Tensor p = filled(in, {64, 50}, [](int64_t i) { return double(i % 101) / 100.0; });
    const std::string inputs = "%x: " + std::string(dtypeName(in)) + "[64,50]";
    for (std::string dtype : {"", ", dtype = 11", ", dtype = 9", ", dtype = 6", ", dtype = 1"}) {
      std::string text = graphOf("Bernoulli", "seed = 11.0" + dtype, inputs, "%x");
      Tensor y = compiledMatchesInterpreter(text, 0.0, {{"x", p}});
      std::vector<double> v = y.toDoubleVector(), pv = p.toDoubleVector();
      for (size_t i = 0; i < v.size(); ++i) {
        ASSERT_TRUE(v[i] == 0.0 || v[i] == 1.0) << i;
        if (pv[i] == 0.0 || pv[i] == 1.0)
          ASSERT_EQ(v[i], pv[i]) << i; // p = 0 never, p = 1 always
      }
    }
  }
}

TEST(RandomLowering, SeededMultinomialIsBitwiseTheInterpreters) {
  // logits with a NaN (weight 0), -inf (weight 0), large values (the row max is subtracted)
  Tensor logits = filled(DType::f32, {5, 7}, [](int64_t i) {
    if (i == 3)
      return std::nan("");
    if (i == 9)
      return -std::numeric_limits<double>::infinity();
    return i >= 28 ? 80.0 + double(i % 7) : std::sin(double(i)) * 3.0;
  });
  for (std::string dtype : {"", ", dtype = 7"}) {
    std::string text = graphOf("Multinomial", "seed = 4.0, sample_size = 200" + dtype,
                               "%x: f32[5,7]", "%x");
    Tensor y = compiledMatchesInterpreter(text, 0.0, {{"x", logits}});
    std::vector<double> k = y.toDoubleVector();
    for (size_t i = 0; i < k.size(); ++i) {
      ASSERT_TRUE(k[i] >= 0 && k[i] < 7) << k[i];
      if (i / 200 == 0)
        ASSERT_NE(k[i], 3.0); // NaN: weight 0
      if (i / 200 == 1)
        ASSERT_NE(k[i], 2.0); // -inf: weight 0
    }
  }
  Tensor l64 = filled(DType::f64, {2, 300}, [](int64_t i) { return std::cos(double(i)); });
  compiledMatchesInterpreter(graphOf("Multinomial", "seed = 4.0, sample_size = 33",
                                     "%x: f64[2,300]", "%x"),
                             0.0, {{"x", l64}});
}

TEST(RandomLowering, SeededRunsRepeatAndSeedsDiffer) {
  Compiled a(graphOf("RandomUniform", "shape = [1000], seed = 1.0"));
  Compiled b(graphOf("RandomUniform", "shape = [1000], seed = 2.0"));
  Tensor a1 = a.run(), a2 = a.run(), b1 = b.run();
  EXPECT_TRUE(sameBits(a1, a2));
  EXPECT_FALSE(sameBits(a1, b1));
  EXPECT_TRUE(sameBits(a1, interpret(graphOf("RandomUniform", "shape = [1000], seed = 1.0"))));
}

//===----------------------------------------------------------------------===//
// Statistics (seeded and unseeded, compiled and interpreted)
//===----------------------------------------------------------------------===//

TEST(RandomLowering, UniformStatistics) {
  for (std::string seed : {", seed = 9.0", ""})
    for (auto [code, dt] : {std::pair{1, DType::f32}, std::pair{11, DType::f64}}) {
      std::string text = graphOf("RandomUniform", "shape = [100000], low = -1.0, high = 3.0, "
                                                  "dtype = " + std::to_string(code) + seed);
      Compiled c(text);
      expectUniform(c.run(), -1.0, 3.0, "compiled " + text);
      expectUniform(interpret(text), -1.0, 3.0, "interpreted " + text);
    }
}

TEST(RandomLowering, NormalStatistics) {
  for (std::string seed : {", seed = 9.0", ""})
    for (auto [code, dt] : {std::pair{1, DType::f32}, std::pair{11, DType::f64}}) {
      std::string text = graphOf("RandomNormal", "shape = [100, 1000], mean = -2.0, scale = 3.0, "
                                                 "dtype = " + std::to_string(code) + seed);
      Compiled c(text);
      expectNormal(c.run(), -2.0, 3.0, "compiled " + text);
      expectNormal(interpret(text), -2.0, 3.0, "interpreted " + text);
    }
}

TEST(RandomLowering, BernoulliFrequencies) {
  // p = 0.3 everywhere (standard error of the frequency 0.00145; bound 0.01), and p = i / 100 by
  // column (1000 draws per column: standard error <= 0.016; bound 0.08)
  Tensor p = filled(DType::f32, {100000}, [](int64_t) { return 0.3; });
  Tensor cols = filled(DType::f32, {1000, 100}, [](int64_t i) { return double(i % 100) / 100.0; });
  for (std::string seed : {"seed = 9.0", ""}) {
    std::string text = graphOf("Bernoulli", seed, "%x: f32[100000]", "%x");
    Compiled c(text);
    for (const Tensor &y : {c.run({p}), interpret(text, {{"x", p}})})
      EXPECT_NEAR(statsOf(y).mean, 0.3, 0.01) << text;
    std::string colText = graphOf("Bernoulli", seed, "%x: f32[1000,100]", "%x");
    Compiled cc(colText);
    for (const Tensor &y : {cc.run({cols}), interpret(colText, {{"x", cols}})}) {
      std::vector<double> v = y.toDoubleVector();
      for (int j = 0; j < 100; ++j) {
        double n = 0;
        for (int i = 0; i < 1000; ++i)
          n += v[size_t(i * 100 + j)];
        EXPECT_NEAR(n / 1000.0, j / 100.0, 0.08) << colText << " column " << j;
      }
    }
  }
}

TEST(RandomLowering, MultinomialFrequencies) {
  // class probabilities 0.1 0.2 0.3 0.4 (row 0, as log-probabilities) and 0.4 0.3 0.2 0.1 (row
  // 1, unnormalized logits); 50000 samples per row: standard errors <= 0.0022, bound 0.015
  const double probs[2][4] = {{0.1, 0.2, 0.3, 0.4}, {0.4, 0.3, 0.2, 0.1}};
  Tensor logits = filled(DType::f32, {2, 4}, [&](int64_t i) {
    return std::log(probs[i / 4][i % 4]) + (i / 4) * 5.0;
  });
  for (std::string seed : {", seed = 9.0", ""}) {
    std::string text = graphOf("Multinomial", "sample_size = 50000, dtype = 7" + seed,
                               "%x: f32[2,4]", "%x");
    Compiled c(text);
    for (const Tensor &y : {c.run({logits}), interpret(text, {{"x", logits}})}) {
      ASSERT_EQ(y.dtype(), DType::i64);
      const int64_t *k = y.data<int64_t>();
      for (int b = 0; b < 2; ++b) {
        double n[4] = {0, 0, 0, 0};
        for (int s = 0; s < 50000; ++s) {
          ASSERT_TRUE(k[b * 50000 + s] >= 0 && k[b * 50000 + s] < 4);
          n[k[b * 50000 + s]] += 1;
        }
        for (int j = 0; j < 4; ++j)
          EXPECT_NEAR(n[j] / 50000.0, probs[b][j], 0.015) << text << " row " << b << " class " << j;
      }
    }
  }
}

//===----------------------------------------------------------------------===//
// Unseeded: new values on each run
//===----------------------------------------------------------------------===//

TEST(RandomLowering, UnseededRunsDiffer) {
  const std::string ops[] = {
      graphOf("RandomUniform", "shape = [64]"),
      graphOf("RandomNormal", "shape = [64], dtype = 11"),
      graphOf("RandomUniformLike", "", "%x: f32[64]", "%x"),
  };
  for (const std::string &text : ops) {
    Compiled c(text);
    std::vector<Tensor> in;
    if (c.m.inputs().size() == 1)
      in.push_back(filled(DType::f32, {64}, [](int64_t) { return 0.0; }));
    Tensor a = c.run(in), b = c.run(in);
    EXPECT_FALSE(sameBits(a, b)) << text;
    // a second load of the same artifact draws yet other values
    Compiled again(text);
    EXPECT_FALSE(sameBits(a, again.run(in))) << text;
    std::map<std::string, Tensor> feed;
    if (!in.empty())
      feed["x"] = in[0];
    EXPECT_FALSE(sameBits(interpret(text, feed), interpret(text, feed))) << text;
  }
  // Bernoulli at p = 0.5 and Multinomial over 16 equal classes: 256 draws alike twice in a
  // row would take a 2^-256 (4^-256) chance
  Tensor half = filled(DType::f32, {256}, [](int64_t) { return 0.5; });
  Compiled bern(graphOf("Bernoulli", "", "%x: f32[256]", "%x"));
  EXPECT_FALSE(sameBits(bern.run({half}), bern.run({half})));
  Tensor flat = filled(DType::f32, {1, 16}, [](int64_t) { return 0.0; });
  Compiled multi(graphOf("Multinomial", "sample_size = 256", "%x: f32[1,16]", "%x"));
  EXPECT_FALSE(sameBits(multi.run({flat}), multi.run({flat})));
}

TEST(RandomLowering, UnseededRunsFromTwoThreadsDiffer) {
  // parallel kernels over 100k elements, run from two threads at once: each run has its own
  // key, and every run's values are still uniform
  Compiled c(graphOf("RandomUniform", "shape = [100000]"));
  Tensor a, b;
  std::thread t([&] { a = c.run(); });
  b = c.run();
  t.join();
  EXPECT_FALSE(sameBits(a, b));
  expectUniform(a, 0.0, 1.0, "thread 1");
  expectUniform(b, 0.0, 1.0, "thread 2");
}

TEST(RandomLowering, ErrorsNameTheNode) {
  auto g = parseGraph(graphOf("RandomUniform", "shape = [4], low = 2.0, high = 1.0"), "test");
  std::string e = test::errorOf([&] { compileModel(*g, {}); });
  EXPECT_NE(e.find("'rng'"), std::string::npos) << e;
  EXPECT_NE(e.find("expected finite low <= high"), std::string::npos) << e;
}

//===----------------------------------------------------------------------===//
// The loop-IR intrinsics: xor and fresh_u64
//===----------------------------------------------------------------------===//

TEST(RandomLowering, XorFoldsFreshU64DoesNot) {
  using namespace tessel::loop;
  using loop::Type;
  using loop::Value;
  Expr c = makeConst(Type::u64(), int64_t(0xF0F0F0F0F0F0F0F0ull));
  Expr x = bitXor(c, makeConst(Type::u64(), int64_t(0xFF)));
  Expr folded = simplify(x);
  ASSERT_NE(asConstInt(folded), nullptr);
  EXPECT_EQ(uint64_t(*asConstInt(folded)), 0xF0F0F0F0F0F0F00Full);
  Expr f = freshU64(makeConst(Type::u64(), int64_t(7)));
  EXPECT_EQ(asConstInt(simplify(f)), nullptr); // kept: a fresh value per evaluation
  Value a = evaluate(f, {}), b = evaluate(f, {});
  EXPECT_NE(a.i, b.i);
  EXPECT_NE(test::errorOf([] { freshU64(makeConst(Type::i64(), int64_t(1))); }).find("expected u64"),
            std::string::npos);
}

TEST(RandomLowering, FreshU64CodeGivesDistinctValuesFromAParallelLoop) {
  using namespace tessel::loop;
  using loop::Type;
  using loop::Value;
  ASSERT_GE(tessel_get_num_threads(), 1); // the runtime is loaded in this process
  Var n("n"), i("i");
  Buffer A = Buffer::make("A", DType::u64, {n});
  Stmt body = StoreNode::make(A, freshU64(makeConst(Type::u64(), int64_t(3))), {Expr(i)});
  LoweredFunc func{"u64_fresh_parallel", {Param::ofBuffer(A), Param::ofVar(n)},
                   ForNode::make(i, Expr(int64_t(0)), n, ForKind::Parallel, body)};
  llvm::LLVMContext ctx;
  std::string ir = codegen::printModule(*codegen::emitLLVM(func, ctx, codegen::Target::host()));
  EXPECT_NE(ir.find("atomicrmw add ptr @tessel.fresh_u64.counter"), std::string::npos) << ir;
  EXPECT_NE(ir.find("@llvm.readcyclecounter"), std::string::npos) << ir; // x86 host
  codegen::CompiledFunc f = codegen::compileLoweredFunc(func);
  std::set<uint64_t> seen;
  for (int call = 0; call < 2; ++call) {
    int64_t size = 20000;
    std::vector<uint64_t> out(size_t(size), 0);
    std::vector<void *> args = {out.data(), &size};
    f(args.data());
    seen.insert(out.begin(), out.end());
  }
  // a vector of 8 lanes: one fresh value per lane
  Buffer B = Buffer::make("B", DType::u64, {Expr(int64_t(8))});
  Expr lanes = freshU64(broadcast(makeConst(Type::u64(), int64_t(5)), 8));
  LoweredFunc vec{"u64x8_fresh", {Param::ofBuffer(B)},
                  StoreNode::make(B, lanes, {ramp(Expr(int64_t(0)), Expr(int64_t(1)), 8)})};
  codegen::CompiledFunc fv = codegen::compileLoweredFunc(vec);
  std::vector<uint64_t> v8(8, 0);
  std::vector<void *> vargs = {v8.data()};
  fv(vargs.data());
  seen.insert(v8.begin(), v8.end());
  EXPECT_EQ(seen.size(), 40008u); // no value twice, across elements, threads, calls and lanes
  // and the bits look random: each of the 64 bits is set in about half of the values
  for (int bit = 0; bit < 64; ++bit) {
    double ones = 0;
    for (uint64_t v : seen)
      ones += double((v >> bit) & 1);
    EXPECT_NEAR(ones / double(seen.size()), 0.5, 0.02) << "bit " << bit;
  }
}

// On AArch64 the clock is the virtual counter (llvm.readsteadycounter: CNTVCT_EL0, readable
// from user mode), not the cycle counter, which traps there unless the kernel enables it.
TEST(RandomLowering, FreshU64OnAArch64ReadsTheVirtualCounter) {
  using namespace tessel::loop;
  using loop::Type;
  auto target = codegen::Target::aarch64Linux();
  if (!target.isAvailable())
    GTEST_SKIP() << "this LLVM has no AArch64 back end";
  Buffer A = Buffer::make("A", DType::u64, {Expr(int64_t(1))});
  LoweredFunc func{"u64_fresh_aarch64", {Param::ofBuffer(A)},
                   StoreNode::make(A, freshU64(makeConst(Type::u64(), int64_t(1))),
                                   {Expr(int64_t(0))})};
  llvm::LLVMContext ctx;
  auto module = codegen::emitLLVM(func, ctx, target);
  std::string ir = codegen::printModule(*module);
  EXPECT_NE(ir.find("@llvm.readsteadycounter"), std::string::npos) << ir;
  EXPECT_EQ(ir.find("@llvm.readcyclecounter"), std::string::npos) << ir;
  std::vector<char> object = codegen::emitObject(*module, target);
  ASSERT_GE(object.size(), 64u);
  EXPECT_EQ(std::memcmp(object.data(), "\x7f" "ELF", 4), 0);
}
