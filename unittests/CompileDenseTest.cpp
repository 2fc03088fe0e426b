//===- CompileDenseTest.cpp - dense contractions and row reductions compiled --===//
//
// The register-tiled contraction schedule (lib/Compiler/ScheduleDense.cpp), the compile-time
// transposition of Gemm weights (lib/Compiler/PackWeights.cpp) and the two-stage innermost-axis
// reductions (lib/Graph/Ops/Reduction.cpp): small graphs compiled, run through the runtime and
// compared with the interpreter, with non-uniform weights (a wrong layout would show), shapes
// with and without row tiles, batch axes, broadcast weights and remainders that fall back to
// the default schedule.
//
//===----------------------------------------------------------------------===//
#include "CompileTestUtils.h"
#include "tessel/Compiler/Compile.h"
#include "tessel/Graph/Text.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/runtime/Model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <sstream>
#include <vector>

using namespace tessel;

namespace {

/// "dense<[[...], ...]>" of a [rows, cols] matrix with distinct values.
std::string matrix(int64_t rows, int64_t cols, int seed) {
  std::ostringstream os;
  os << "dense<[";
  for (int64_t r = 0; r < rows; ++r) {
    os << (r ? ", [" : "[");
    for (int64_t c = 0; c < cols; ++c)
      os << (c ? ", " : "") << double((r * 37 + c * 11 + seed * 5) % 23 - 11) / 16.0;
    os << "]";
  }
  os << "]>";
  return os.str();
}

std::string vector(int64_t n, int seed) {
  std::ostringstream os;
  os << "dense<[";
  for (int64_t i = 0; i < n; ++i)
    os << (i ? ", " : "") << double((i * 7 + seed) % 13 - 6) / 8.0;
  os << "]>";
  return os.str();
}

using test::compileAndCheck;

bool anySchedule(const CompiledModel &cm, const std::string &what) {
  for (const CompiledKernel &k : cm.kernels)
    if (k.schedule.find(what) != std::string::npos)
      return true;
  return false;
}

} // namespace

TEST(CompileDense, GemmTransposedWeightsBiasRelu) {
  // nn.Linear as PyTorch exports it: Gemm(x, W [N, K], b) with transB = 1.
  std::string text = "graph @g(%x: f32[16,24]) opset {\"\": 17} {\n"
                     "  %w: f32[32,24] = " + matrix(32, 24, 1) + "\n"
                     "  %b: f32[32] = " + vector(32, 2) + "\n"
                     "  %y = Gemm(%x, %w, %b) {name = \"fc\", transB = 1}\n"
                     "  %r = Relu(%y) {name = \"relu\"}\n"
                     "  return %r\n}\n";
  CompiledModel cm = compileAndCheck(text);
  ASSERT_EQ(cm.kernels.size(), 1u);
  EXPECT_NE(cm.kernels[0].schedule.find("dense 8x"), std::string::npos) << cm.kernels[0].schedule;
  // The kernel reads the transposed copy made at compile time, not W.
  bool packed = false;
  for (const std::string &a : cm.kernels[0].args)
    packed |= a.find("packed") != std::string::npos;
  EXPECT_TRUE(packed);
}

TEST(CompileDense, MatrixVectorGemmWithoutRowTile) {
  // M = 1: no row axis; the columns are tiled by up to 4 vectors.
  std::string text = "graph @g(%x: f32[1,40]) opset {\"\": 17} {\n"
                     "  %w: f32[64,40] = " + matrix(64, 40, 3) + "\n"
                     "  %b: f32[64] = " + vector(64, 4) + "\n"
                     "  %y = Gemm(%x, %w, %b) {name = \"fc\", transB = 1}\n"
                     "  return %y\n}\n";
  CompiledModel cm = compileAndCheck(text);
  EXPECT_TRUE(anySchedule(cm, "dense 1x")) << cm.kernels[0].schedule;
}

TEST(CompileDense, BatchedMatMulWithResidual) {
  // Attention's P * V: both operands computed, a batch axis B does depend on, and an epilogue.
  std::string text = R"(
graph @g(%p: f32[2,16,8], %v: f32[2,8,32], %r: f32[2,16,32]) opset {"": 17} {
  %y = MatMul(%p, %v) {name = "pv"}
  %z = Add(%y, %r) {name = "res"}
  return %z
}
)";
  CompiledModel cm = compileAndCheck(text);
  EXPECT_TRUE(anySchedule(cm, "dense 8x")) << cm.kernels[0].schedule;
  EXPECT_TRUE(anySchedule(cm, "packedB"));
}

TEST(CompileDense, LargeWeightsArePrefetchedAsTheyStream) {
  // B of 512 KiB or more (here 256 x 512 floats) streams from DRAM: the panel copy prefetches
  // it (" prefetched"); a smaller one (256 x 256) stays in cache and is not.
  for (int n : {512, 256}) {
    SCOPED_TRACE("N " + std::to_string(n));
    std::string text = "graph @g(%x: f32[32,256]) opset {\"\": 17} {\n"
                       "  %w: f32[256," + std::to_string(n) + "] = " + matrix(256, n, 7) + "\n"
                       "  %y = MatMul(%x, %w) {name = \"ffn\"}\n"
                       "  return %y\n}\n";
    CompiledModel cm = compileAndCheck(text);
    EXPECT_EQ(anySchedule(cm, "packedB prefetched"), n == 512) << cm.kernels[0].schedule;
    EXPECT_TRUE(anySchedule(cm, "packedB")) << cm.kernels[0].schedule;
  }
}

TEST(CompileDense, MatrixVectorWithoutVectorTilesRunsColumnBlocksInParallel) {
  // [1, 64] x [64, 1000]: 1000 columns do not tile by whole vectors and there is no row axis,
  // so the default schedule takes it; its leading axis has extent 1, and the vector column
  // blocks (63, the last one partial) are the parallel loop instead.
  std::string text = "graph @g(%x: f32[1,64]) opset {\"\": 17} {\n"
                     "  %w: f32[64,1000] = " + matrix(64, 1000, 9) + "\n"
                     "  %y = MatMul(%x, %w) {name = \"head\"}\n"
                     "  return %y\n}\n";
  CompiledModel cm = compileAndCheck(text);
  EXPECT_TRUE(anySchedule(cm, "parallel 1, vectorized 1")) << cm.kernels[0].schedule;
}

TEST(CompileDense, BatchAxisAsRowsWithSharedWeights) {
  // [S, 1, K] x [K, N] (a projection before attention): the batch axis is the row axis.
  std::string text = "graph @g(%x: f32[16,1,24]) opset {\"\": 17} {\n"
                     "  %w: f32[24,48] = " + matrix(24, 48, 5) + "\n"
                     "  %y = MatMul(%x, %w) {name = \"proj\"}\n"
                     "  return %y\n}\n";
  CompiledModel cm = compileAndCheck(text);
  EXPECT_TRUE(anySchedule(cm, "dense 8x16")) << cm.kernels[0].schedule;
}

TEST(CompileDense, ColumnsThatDoNotTileFallBack) {
  // N = 10 is no multiple of a vector: the default schedule, same results.
  std::string text = "graph @g(%x: f32[6,24]) opset {\"\": 17} {\n"
                     "  %w: f32[10,24] = " + matrix(10, 24, 6) + "\n"
                     "  %y = Gemm(%x, %w) {name = \"fc\", transB = 1}\n"
                     "  return %y\n}\n";
  CompiledModel cm = compileAndCheck(text);
  EXPECT_FALSE(anySchedule(cm, "dense")) << cm.kernels[0].schedule;
}

TEST(CompileDense, InnermostAxisReductionsTwoStage) {
  // LayerNorm's means and a max over the last axis (multiples of 16: two stages), and an L2
  // norm over a last axis of 40 (one stage: no multiple of 16).
  std::string text = R"(
graph @g(%x: f32[3,5,64], %y: f32[4,40]) opset {"": 17} {
  %m = ReduceMean(%x) {name = "mean", axes = [-1]}
  %d = Sub(%x, %m) {name = "sub"}
  %q = Mul(%d, %d) {name = "sq"}
  %v = ReduceMean(%q) {name = "var", axes = [-1], keepdims = 0}
  %mx = ReduceMax(%x) {name = "max", axes = [2], keepdims = 0}
  %s = ReduceL2(%y) {name = "l2", axes = [1]}
  %e = ReduceLogSumExp(%x) {name = "lse", axes = [-1]}
  return %v, %mx, %s, %e
}
)";
  compileAndCheck(text);
}

TEST(CompileDense, OneBufferReadAsBothOperands) {
  // x * x: A's rows and B's panels come from the same buffer; B's panel is then not copied.
  std::string text = R"(
graph @g(%x: f32[32,32]) opset {"": 17} {
  %y = MatMul(%x, %x) {name = "square"}
  return %y
}
)";
  CompiledModel cm = compileAndCheck(text);
  EXPECT_TRUE(anySchedule(cm, "dense 8x32")) << cm.kernels[0].schedule;
  EXPECT_FALSE(anySchedule(cm, "packedB")) << cm.kernels[0].schedule;
}

TEST(CompileDense, PowConstantExponents) {
  // A constant scalar exponent is lowered to multiplies, a division or a square root (2, 3, 1,
  // 0, -1, 0.5); any other exponent calls pow. At -O0 the graph keeps every Pow (the lowering
  // sees them all); at -O3 simplify rewrites x**2 to x*x and x**1 to x first.
  std::string text = R"(
graph @g(%x: f32[4,48]) opset {"": 17} {
  %two: f32[] = dense<2>
  %three: f32[1] = dense<[3]>
  %one: f32[] = dense<1>
  %zero: f32[] = dense<0>
  %m1: f32[] = dense<-1>
  %half: f32[] = dense<0.5>
  %other: f32[] = dense<1.7>
  %a = Abs(%x) {name = "abs"}
  %p2 = Pow(%x, %two) {name = "sq"}
  %p3 = Pow(%x, %three) {name = "cube"}
  %p1 = Pow(%x, %one) {name = "same"}
  %p0 = Pow(%x, %zero) {name = "ones"}
  %pm1 = Pow(%x, %m1) {name = "recip"}
  %ph = Pow(%a, %half) {name = "root"}
  %po = Pow(%a, %other) {name = "general"}
  %s = ReduceMean(%p2) {name = "var", axes = [-1]}
  return %p2, %p3, %p1, %p0, %pm1, %ph, %po, %s
}
)";
  compileAndCheck(text, 0);
  compileAndCheck(text, 3);
}

TEST(CompileDense, PowConstantExponentSpecialValues) {
  // The rewritten exponents agree with std::pow bit for bit on signed zeros, infinities, NaN and
  // ordinary values (x**3 is two roundings: compared within 2 ulp).
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  const std::vector<float> xs = {-0.0f, 0.0f, -inf, inf, nan, 4.0f, 0.25f, -2.0f,
                                 3.0e-20f, -1.5e20f, 1.0f, -1.0f, 7.0f, 1e-3f, -0.5f, 2.5f};
  for (double y : {2.0, 3.0, 1.0, 0.0, -1.0, 0.5}) {
    SCOPED_TRACE("exponent " + std::to_string(y));
    std::ostringstream text;
    text << "graph @g(%x: f32[16]) opset {\"\": 17} {\n  %e: f32[] = dense<" << y
         << ">\n  %p = Pow(%x, %e) {name = \"p\"}\n  return %p\n}\n";
    auto g = parseGraph(text.str(), "test");
    CompileOptions opts;
    opts.optLevel = 0;
    CompiledModel cm = compileModel(*g, opts);
    runtime::Model m = runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size());
    std::vector<runtime::HostTensor> ins;
    ins.emplace_back(m.inputs()[0]);
    std::memcpy(ins[0].data<float>(), xs.data(), xs.size() * sizeof(float));
    auto got = m.run(ins);
    ASSERT_EQ(got.size(), 1u);
    const float *p = got[0].data<float>();
    for (size_t i = 0; i < xs.size(); ++i) {
      float want = std::pow(xs[i], float(y));
      SCOPED_TRACE("x = " + std::to_string(xs[i]));
      if (std::isnan(want)) {
        EXPECT_TRUE(std::isnan(p[i])) << p[i];
        continue;
      }
      if (y == 3.0 && std::isfinite(want) && want != 0.0f) {
        EXPECT_NEAR(p[i], want, 2 * std::fabs(want) * std::numeric_limits<float>::epsilon());
        continue;
      }
      EXPECT_EQ(p[i], want);
      EXPECT_EQ(std::signbit(p[i]), std::signbit(want));
    }
  }
}

TEST(CompileDense, AttentionBatchedMatMulsParallelOverHeads) {
  // Q * K^T and P * V over 4 heads (an even batch: the heads are the parallel loop, the column
  // panels a serial loop inside) and over 3 heads (odd and < 8: heads and panels fused into
  // one parallel loop, as before); K = 64 and N = 128 / 64 as in the transformer.
  for (int heads : {4, 3}) {
    SCOPED_TRACE("heads " + std::to_string(heads));
    std::string h = std::to_string(heads);
    std::string text = "graph @g(%q: f32[" + h + ",128,64], %kt: f32[" + h +
                       ",64,128], %v: f32[" + h + ",128,64]) opset {\"\": 17} {\n"
                       "  %s = MatMul(%q, %kt) {name = \"qk\"}\n"
                       "  %p = Softmax(%s) {name = \"sm\", axis = -1}\n"
                       "  %o = MatMul(%p, %v) {name = \"pv\"}\n"
                       "  return %o, %p\n}\n"; // %p an output too: no attention group
    CompiledModel cm = compileAndCheck(text);
    EXPECT_TRUE(anySchedule(cm, "dense 8x32 packedB parallel"));
  }
}

TEST(CompileDense, AttentionAsOneKernel) {
  // Q K^T, a scale and a mask (broadcast), Softmax over the keys, times V: one attention group
  // (FuseOps) and one kernel that computes it block of 8 query rows by block, the scores of a
  // block kept at the block (ScheduleAttention.h). 48 keys: a 16-wide score tile.
  std::string text = "graph @g(%q: f32[3,16,24], %kt: f32[3,24,48], %v: f32[3,48,32], "
                     "%mask: f32[16,48]) opset {\"\": 17} {\n"
                     "  %scale: f32[] = dense<0.25>\n"
                     "  %s = MatMul(%q, %kt) {name = \"qk\"}\n"
                     "  %t = Mul(%s, %scale) {name = \"scale\"}\n"
                     "  %u = Add(%t, %mask) {name = \"mask\"}\n"
                     "  %p = Softmax(%u) {name = \"sm\", axis = -1}\n"
                     "  %o = MatMul(%p, %v) {name = \"pv\"}\n"
                     "  return %o\n}\n";
  CompiledModel cm = compileAndCheck(text);
  ASSERT_EQ(cm.kernels.size(), 1u) << cm.kernels[0].schedule;
  EXPECT_EQ(cm.kernels[0].symbol, "k0_matmul_mul_add_softmax_matmul_f32");
  EXPECT_TRUE(anySchedule(cm, "attention rows 8 x 32, scores at the row block"))
      << cm.kernels[0].schedule;
  // 6 query rows (no row tile of 4 or 8): the same group, the default schedule, same results.
  std::string odd = text;
  odd.replace(odd.find("%q: f32[3,16,24]"), 16, "%q: f32[3,6,24]");
  odd.replace(odd.find("%mask: f32[16,48]"), 17, "%mask: f32[6,48]");
  CompiledModel cm2 = compileAndCheck(odd);
  ASSERT_EQ(cm2.kernels.size(), 1u);
  EXPECT_FALSE(anySchedule(cm2, "attention")) << cm2.kernels[0].schedule;
}

TEST(CompileDense, HeadSplitAndMergeCopies) {
  // The transformer's head split (Slice + Reshape + Transpose of the QKV projection) and merge
  // (Transpose + Reshape + residual Add): vector indices made of ramps divided and taken modulo
  // constants, which the emitter folds into contiguous loads where that is exact. Also a
  // reshape whose rows (24) are no multiple of the vector width, where it must not fold.
  std::string text = R"(
graph @g(%x: f32[128,1,768], %r: f32[1,128,256], %y: f32[5,24]) opset {"": 17} {
  %st: i64[1] = dense<[256]>
  %en: i64[1] = dense<[512]>
  %ax: i64[1] = dense<[2]>
  %k = Slice(%x, %st, %en, %ax) {name = "slice"}
  %s1: i64[3] = dense<[128, 4, 64]>
  %kh = Reshape(%k, %s1) {name = "split"}
  %kt = Transpose(%kh) {name = "heads", perm = [1, 0, 2]}
  %ktt = Transpose(%kh) {name = "keys", perm = [1, 2, 0]}
  %m = Transpose(%kt) {name = "merge", perm = [1, 0, 2]}
  %s2: i64[3] = dense<[1, 128, 256]>
  %mr = Reshape(%m, %s2) {name = "flat"}
  %o = Add(%mr, %r) {name = "res"}
  %s3: i64[2] = dense<[8, 15]>
  %yr = Reshape(%y, %s3) {name = "odd"}
  %yn = Neg(%yr) {name = "neg"}
  return %kt, %ktt, %o, %yn
}
)";
  compileAndCheck(text);
}

TEST(CompileDense, FewColumnsWithoutRowTileUnrolled) {
  // The mlp's head: M = 1 and N = 10 (no multiple of a vector): k outside, the 10 columns
  // unrolled inside (independent accumulators); with bias, and a batch of 5 rows of 7.
  std::string text = "graph @g(%x: f32[1,256], %y: f32[5,40]) opset {\"\": 17} {\n"
                     "  %w: f32[10,256] = " + matrix(10, 256, 7) + "\n"
                     "  %b: f32[10] = " + vector(10, 8) + "\n"
                     "  %v: f32[40,7] = " + matrix(40, 7, 9) + "\n"
                     "  %h = Gemm(%x, %w, %b) {name = \"head\", transB = 1}\n"
                     "  %z = MatMul(%y, %v) {name = \"narrow\"}\n"
                     "  return %h, %z\n}\n";
  CompiledModel cm = compileAndCheck(text);
  EXPECT_TRUE(anySchedule(cm, "dense 1x10 scalar"));
}

TEST(CompileDense, LayerNormAndSoftmaxDecomposedAsOneKernelEach) {
  // LayerNorm as PyTorch exports it (ReduceMean, Sub, Pow, ReduceMean, Add, Sqrt, Div, Mul,
  // Add over the last axis) and a decomposed Softmax (ReduceMax, Sub, Exp, ReduceSum, Div):
  // row reductions with the broadcast ops between them, one kernel each (FuseOps).
  std::string text = "graph @g(%x: f32[2,8,64], %y: f32[3,48]) opset {\"\": 17} {\n"
                     "  %two: f32[] = dense<2>\n"
                     "  %eps: f32[] = dense<1e-5>\n"
                     "  %ax: i64[1] = dense<[-1]>\n"
                     "  %g: f32[64] = " + vector(64, 3) + "\n"
                     "  %b: f32[64] = " + vector(64, 5) + "\n"
                     "  %m = ReduceMean(%x) {name = \"mean\", axes = [-1]}\n"
                     "  %d = Sub(%x, %m) {name = \"center\"}\n"
                     "  %p = Pow(%d, %two) {name = \"square\"}\n"
                     "  %v = ReduceMean(%p) {name = \"var\", axes = [-1]}\n"
                     "  %ve = Add(%v, %eps) {name = \"eps\"}\n"
                     "  %s = Sqrt(%ve) {name = \"std\"}\n"
                     "  %n = Div(%d, %s) {name = \"norm\"}\n"
                     "  %sc = Mul(%n, %g) {name = \"scale\"}\n"
                     "  %o = Add(%sc, %b) {name = \"shift\"}\n"
                     "  %mx = ReduceMax(%y) {name = \"max\", axes = [1]}\n"
                     "  %e = Sub(%y, %mx) {name = \"shifted\"}\n"
                     "  %ex = Exp(%e) {name = \"exp\"}\n"
                     "  %sm = ReduceSum(%ex, %ax) {name = \"sum\"}\n"
                     "  %sf = Div(%ex, %sm) {name = \"softmax\"}\n"
                     "  return %o, %sf\n}\n";
  CompiledModel cm = compileAndCheck(text);
  EXPECT_EQ(cm.kernels.size(), 2u);
  compileAndCheck(text, 0);
}
