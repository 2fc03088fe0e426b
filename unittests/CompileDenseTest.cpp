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
#include <random>
#include <sstream>

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
