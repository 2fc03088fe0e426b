//===- WinogradTest.cpp - Winograd F(m x m, 3 x 3) blocked convolution ----===//
//
// tessel::ConvWinogradNCHWc (lib/Graph/Ops/Layout.cpp, docs/compile.md "Convolution"): the
// transform-layout pass turns the large stride-1 3x3 convs into it, with the weights
// transformed at compile time; the rewritten graph must give the original Conv's values in the
// reference interpreter (the op's reference kernel) and compiled under the Winograd schedule
// (lib/Compiler/ScheduleWinograd.cpp), at 1 and 2 threads. Output sizes that the m x m tiles do
// not divide (29, 30, 31, 62: the last tile row and column reach past the output), rows wider
// than one register tile (112, 64 and 82 columns: column groups of 14, 8 and 7), asymmetric pads,
// no bias, epilogues (ReLU, a residual Add), blocks 16 and 8, F(2x2) and F(4x4); the error of
// the transforms against the direct conv is bounded.
//
//===----------------------------------------------------------------------===//
#include "CompileTestUtils.h"
#include "GraphTestUtils.h"
#include "tessel/Compiler/Compile.h"
#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Text.h"
#include "tessel/Graph/Transforms.h"
#include "tessel/Graph/Winograd.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/runtime/Model.h"
#include "tessel/runtime/ThreadPool.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>
#include <sstream>

using namespace tessel;

namespace {

using test::dims;
using test::randomInputs;
using test::randomLiteral;

/// The largest |got - want| relative to max(1, |want|), with `what` failing above `tol`.
double maxError(const Tensor &got, const Tensor &want, double tol, const std::string &what) {
  EXPECT_EQ(got.shape(), want.shape()) << what;
  if (got.shape() != want.shape())
    return INFINITY;
  const float *g = got.data<float>(), *w = want.data<float>();
  double worst = 0;
  int bad = 0;
  for (int64_t i = 0; i < want.numel(); ++i) {
    double e = std::fabs(double(g[i]) - double(w[i])) / std::max(1.0, std::fabs(double(w[i])));
    if (!(e <= tol) && bad++ < 5)
      ADD_FAILURE() << what << "[" << i << "]: got " << g[i] << ", want " << w[i];
    if (!(e <= worst))
      worst = e;
  }
  return worst;
}

int countOps(const Graph &g, const std::string &domain, const std::string &op) {
  int n = 0;
  for (const auto &node : g.nodes())
    n += node->domain == domain && node->opType == op;
  return n;
}

/// `text` before and after transform-layout in the interpreter and compiled at -O3 through the
/// runtime at 1 and 2 threads; `winograd` convs must become ConvWinogradNCHWc. Returns the
/// compiled kernels' "symbol: schedule" lines. `tol` bounds the compiled f32 kernels' error
/// relative to max(1, |want|) (the interpreter's reference kernel computes in double: 1e-4).
std::vector<std::string> checkEverywhere(const std::string &text, int winograd,
                                         void (*rewrite)(Graph &) = nullptr, double tol = 1e-4) {
  std::vector<std::string> schedules;
  auto ref = parseGraph(text, "test");
  std::map<std::string, Object> in = randomInputs(*ref, 11);
  Interpreter refInterp(*ref);
  auto want = refInterp.run(in);

  auto blocked = parseGraph(text, "test");
  inferShapes(*blocked);
  PassStats stats;
  EXPECT_TRUE(transformLayout(*blocked, stats));
  if (rewrite)
    rewrite(*blocked);
  inferShapes(*blocked);
  EXPECT_EQ(countOps(*blocked, "tessel", "ConvWinogradNCHWc"), winograd);
  EXPECT_EQ(countOps(*blocked, "", "Conv"), 0);
  Interpreter blockedInterp(*blocked);
  auto got = blockedInterp.run(in);
  for (const Value *o : ref->outputs)
    maxError(got.at(o->name()).tensor, want.at(o->name()).tensor, 1e-4,
             "interpreter " + o->name());

  // Compiled from the original graph (the compiler runs transform-layout itself), or from the
  // rewritten one when the test changed it.
  auto g = parseGraph(text, "test");
  if (rewrite) {
    inferShapes(*g);
    transformLayout(*g, stats);
    rewrite(*g);
    inferShapes(*g);
  }
  CompileOptions opts;
  opts.optLevel = 3;
  CompiledModel cm = compileModel(*g, opts);
  for (const CompiledKernel &k : cm.kernels) {
    EXPECT_EQ(k.schedule.find("default schedule failed"), std::string::npos)
        << k.symbol << ": " << k.schedule;
    schedules.push_back(k.symbol + ": " + k.schedule);
  }
  for (int threads : {1, 2})
    for (auto &[name, t] : test::runArtifactF32(cm, in, threads))
      maxError(t, want.at(name).tensor, tol,
               "compiled (" + std::to_string(threads) + " threads) " + name);
  return schedules;
}

/// Conv 3x3 stride 1 (+ bias) + ReLU [+ residual Add of the input + ReLU], then a 1x1 conv so
/// that the Winograd kernel's output stays blocked (a lone conv's kernel also holds the
/// FromBlocked, which the schedule leaves to the default one).
std::string winogradGraph(int64_t C, int64_t H, int64_t W, const std::string &pads, bool bias,
                          bool residual) {
  std::ostringstream os;
  os << "graph @g(%x: " << dims({1, C, H, W}) << ") opset {\"\": 17} {\n";
  os << "  %w: " << dims({C, C, 3, 3}) << " = " << randomLiteral({C, C, 3, 3}, 3) << "\n";
  if (bias)
    os << "  %b: " << dims({C}) << " = " << randomLiteral({C}, 4) << "\n";
  os << "  %wp: " << dims({16, C, 1, 1}) << " = " << randomLiteral({16, C, 1, 1}, 5) << "\n";
  os << "  %c = Conv(%x, %w" << (bias ? ", %b" : "")
     << ") {kernel_shape = [3, 3], pads = " << pads << "}\n";
  if (residual)
    os << "  %a = Add(%c, %x)\n  %r = Relu(%a)\n";
  else
    os << "  %r = Relu(%c)\n";
  os << "  %p = Conv(%r, %wp) {kernel_shape = [1, 1]}\n";
  os << "  %y = Relu(%p)\n  return %y\n}\n";
  return os.str();
}

std::string scheduleOf(const std::vector<std::string> &schedules, const std::string &what) {
  for (const std::string &s : schedules)
    if (s.find(what) != std::string::npos)
      return s;
  return "";
}

/// The Winograd kernel's schedule line.
std::string winogradSchedule(const std::vector<std::string> &schedules) {
  return scheduleOf(schedules, "convwinogradnchwc");
}

/// The original Conv weights of the graph useF2x2 rewrites (the layout pass drops them).
Tensor gConvWeights;

/// Every ConvWinogradNCHWc of `g` switched to F(2x2, 3x3): tile 2, weights transformed again
/// from gConvWeights.
void useF2x2(Graph &g) {
  const Tensor *w = &gConvWeights;
  ASSERT_TRUE(w->defined());
  for (const auto &n : g.nodes()) {
    if (n->domain != "tessel" || n->opType != "ConvWinogradNCHWc")
      continue;
    const int64_t ob = n->output(0)->type.shape.staticDims()[4];
    Tensor u = winograd::transformWeights(*w, 2, ob);
    Value *uv = g.createValue(g.uniqueName("w_winograd2"),
                              Type::tensor(DType::f32, Shape::of(u.shape())));
    uv->constant = std::move(u);
    g.initializers.push_back(uv);
    n->setInput(1, uv);
    n->attrs["tile"].i = 2;
  }
}

} // namespace

TEST(Winograd, ResidualBlock28x28) {
  // resnet18's layer2 in small: 64 channels, 28x28 (7x7 tiles of 4: reg_n 7, two oc blocks),
  // bias, residual Add + ReLU fused into the output transform; the transformed input (452 KiB)
  // fits L2: computed once, oc-block pairs outer.
  auto s = checkEverywhere(winogradGraph(64, 28, 28, "[1, 1, 1, 1]", true, true), 1);
  EXPECT_NE(winogradSchedule(s).find("winograd F(4x4,3x3) gemm reg_n 7 x 2 oc blocks, oc blocks "
                                     "outer, input transform once"),
            std::string::npos)
      << winogradSchedule(s);
}

TEST(Winograd, Wide56x56) {
  // resnet18's layer1: 56x56, a row of 14 tiles in one register tile (reg_n 14 x 2 oc blocks);
  // the transformed input (1.8 MiB) does not fit L2: computed per tile row, tile rows outer.
  auto s = checkEverywhere(winogradGraph(64, 56, 56, "[1, 1, 1, 1]", true, false), 1);
  EXPECT_NE(winogradSchedule(s).find("winograd F(4x4,3x3) gemm reg_n 14 x 2 oc blocks, tile "
                                     "rows outer"),
            std::string::npos)
      << winogradSchedule(s);
}

TEST(Winograd, WideRowsInColumnGroups) {
  // Rows wider than one register tile (VGG/UNet-style 112- and 224-column layers, here 28
  // rows high to keep the interpreter quick): 112 columns are 28 tiles of 4, two column groups
  // of 14 (reg_n 14 x 2 oc blocks), M computed per group. Tolerance 3e-4: F(4x4)'s f32 error
  // (the transforms' constants up to 8) reaches 1.5e-4 here on a few of the 50k outputs; the
  // same per element as the one-group schedule's (a 1x1-conv net on 28x112 vs 56x56 inputs,
  // compiled vs the interpreter: max abs diff 2.80e-6 vs 2.78e-6; the direct conv 4.2e-7).
  auto s = checkEverywhere(winogradGraph(64, 28, 112, "[1, 1, 1, 1]", true, true), 1, nullptr,
                           3e-4);
  EXPECT_NE(winogradSchedule(s).find("winograd F(4x4,3x3) gemm reg_n 14 x 2 oc blocks, 2 column "
                                     "groups per tile row, tile rows outer"),
            std::string::npos)
      << winogradSchedule(s);
}

TEST(Winograd, WideRowsWithOutputTails) {
  // 62 output columns (16 tiles, the last reaching 2 columns past the output: two groups of
  // 8) and 29 rows, asymmetric pads, no bias; then 64 columns with block 8 (72 channels, an
  // odd number of oc blocks: one per register tile), bias and residual.
  auto s = checkEverywhere(winogradGraph(64, 29, 62, "[0, 1, 2, 1]", false, false), 1, nullptr,
                           3e-4);
  EXPECT_NE(winogradSchedule(s).find("gemm reg_n 8 x 2 oc blocks, 2 column groups per tile row"),
            std::string::npos)
      << winogradSchedule(s);
  s = checkEverywhere(winogradGraph(72, 28, 64, "[1, 1, 1, 1]", true, true), 1, nullptr, 3e-4);
  EXPECT_NE(winogradSchedule(s).find("gemm reg_n 8, 2 column groups per tile row"),
            std::string::npos)
      << winogradSchedule(s);
  // 82 columns (21 tiles, the last reaching past the output): three groups of 7, pads
  // [top 1, left 0, bottom 1, right 2].
  s = checkEverywhere(winogradGraph(64, 28, 82, "[1, 0, 1, 2]", true, false), 1, nullptr, 3e-4);
  EXPECT_NE(winogradSchedule(s).find("gemm reg_n 7 x 2 oc blocks, 3 column groups per tile row"),
            std::string::npos)
      << winogradSchedule(s);
}

TEST(Winograd, OutputsTheTilesDoNotDivide) {
  // 29x31 outputs (8 x 8 tiles of 4: the last tile row and column reach past the output),
  // asymmetric pads (29x31 input, pads [top 0, left 1, bottom 2, right 1]), no bias.
  auto s = checkEverywhere(winogradGraph(64, 29, 31, "[0, 1, 2, 1]", false, false), 1);
  EXPECT_NE(winogradSchedule(s).find("reg_n 8"), std::string::npos) << winogradSchedule(s);
  checkEverywhere(winogradGraph(64, 30, 30, "[1, 1, 1, 1]", true, true), 1);
}

TEST(Winograd, ConvAloneInItsKernel) {
  // The conv's output is a graph output and also read by Relu + Add: FuseOps gives the conv a
  // kernel of its own (no bias, no epilogue), whose output is the output transform itself.
  std::ostringstream os;
  os << "graph @g(%x: " << dims({1, 64, 28, 28}) << ") opset {\"\": 17} {\n";
  os << "  %w: " << dims({64, 64, 3, 3}) << " = " << randomLiteral({64, 64, 3, 3}, 3) << "\n";
  os << "  %c = Conv(%x, %w) {kernel_shape = [3, 3], pads = [1, 1, 1, 1]}\n";
  os << "  %r = Relu(%c)\n  %a = Add(%r, %x)\n  return %c, %a\n}\n";
  auto s = checkEverywhere(os.str(), 1);
  EXPECT_NE(winogradSchedule(s).find("winograd F(4x4,3x3)"), std::string::npos)
      << winogradSchedule(s);
}

TEST(Winograd, Block8) {
  // 72 channels: blocks of 8 (half vectors), 9 oc blocks (odd: one oc block per tile).
  auto s = checkEverywhere(winogradGraph(72, 28, 28, "[1, 1, 1, 1]", true, true), 1);
  EXPECT_NE(winogradSchedule(s).find("winograd F(4x4,3x3) gemm reg_n 7"), std::string::npos)
      << winogradSchedule(s);
  EXPECT_EQ(winogradSchedule(s).find("x 2 oc blocks"), std::string::npos) << winogradSchedule(s);
}

TEST(Winograd, F2x2) {
  // The op's other tile: F(2x2, 3x3) (14x14 tiles), reference kernel and lowering.
  const std::string text = winogradGraph(64, 28, 28, "[1, 1, 1, 1]", true, true);
  auto original = parseGraph(text, "test");
  for (Value *v : original->initializers)
    if (v->name() == "w")
      gConvWeights = v->constant;
  auto s = checkEverywhere(text, 1, useF2x2);
  EXPECT_NE(winogradSchedule(s).find("winograd F(2x2,3x3) gemm reg_n 14"), std::string::npos)
      << winogradSchedule(s);
}

TEST(Winograd, DirectWhereWinogradLoses) {
  // Small outputs (14x14: the transformed weights would stream per tile row), few channels,
  // and rows whose tiles do not split into register tiles of 7-14 without a tail (100 columns:
  // 25 tiles, 13 + 12, was 3-4x slower than direct; 58 columns: 15 tiles) stay direct convs.
  for (const std::string &text :
       {winogradGraph(64, 14, 14, "[1, 1, 1, 1]", true, false),
        winogradGraph(32, 28, 28, "[1, 1, 1, 1]", true, false),
        winogradGraph(64, 28, 100, "[1, 1, 1, 1]", true, false),
        winogradGraph(64, 28, 58, "[1, 1, 1, 1]", true, false)}) {
    auto g = parseGraph(text, "test");
    inferShapes(*g);
    PassStats stats;
    ASSERT_TRUE(transformLayout(*g, stats));
    EXPECT_EQ(countOps(*g, "tessel", "ConvWinogradNCHWc"), 0);
    EXPECT_EQ(countOps(*g, "tessel", "ConvNCHWc"), 2);
  }
}

TEST(Winograd, TransformError) {
  // The reference kernels (both in double): the only error is the f32 rounding of the
  // transformed weights, within 1e-5 of the largest output.
  const int64_t C = 64, H = 28;
  std::string text = winogradGraph(C, H, H, "[1, 1, 1, 1]", true, false);
  auto ref = parseGraph(text, "test");
  auto g = parseGraph(text, "test");
  inferShapes(*g);
  PassStats stats;
  ASSERT_TRUE(transformLayout(*g, stats));
  inferShapes(*g);
  std::map<std::string, Object> in = randomInputs(*ref, 7);
  auto want = Interpreter(*ref).run(in), got = Interpreter(*g).run(in);
  const Tensor &w = want.at("y").tensor, &o = got.at("y").tensor;
  double scale = 0, diff = 0;
  for (int64_t i = 0; i < w.numel(); ++i) {
    scale = std::max(scale, double(std::fabs(w.data<float>()[i])));
    diff = std::max(diff, double(std::fabs(w.data<float>()[i] - o.data<float>()[i])));
  }
  EXPECT_LT(diff, 1e-5 * scale) << "max abs diff " << diff << ", largest output " << scale;
}

TEST(Winograd, ShapeErrors) {
  // tile 3 is not an F(m x m, 3 x 3) this op has matrices for.
  const char *text = R"(graph @g(%x: f32[1,4,8,8,16], %u: f32[25,4,64,16]) opset {"": 17, "tessel": 1} {
  %y = tessel::ConvWinogradNCHWc(%x, %u) {tile = 3, pads = [1, 1, 1, 1]}
  return %y
}
)";
  auto g = parseGraph(text, "test");
  try {
    inferShapes(*g);
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("tile should be 2 or 4"), std::string::npos) << e.what();
  }
}
