//===- ConvNCHWcTest.cpp - blocked convolution: ops, pass, lowering, schedule ---===//
//
// The NCHW[x]c path (docs/compile.md, "Convolution"): the transform-layout pass rewrites Convs
// into tessel::ToBlocked / ConvNCHWc / FromBlocked with packed weights; the rewritten graph must
// give the original's values in the reference interpreter (the layout ops' reference kernels),
// and compiled (the TE lowerings under the blocked-conv schedule, run through the runtime). Odd
// sizes on purpose: 3 input channels (block 3), stride 2, asymmetric pads, dilation, output
// widths that no register tile divides evenly (13, a prime: reg_n 13; 31: reg_n 1), channel
// counts 16 does not divide (24: block 8), depthwise convs, epilogues (bias, ReLU, residual Add,
// per-channel Mul) and pools inside the blocked trunk. The schedule's variants (depthwise row
// chunks, all-rows and two-row tiles, the ToBlocked kernel) are checked through each kernel's
// schedule line, on graphs whose conv kernel keeps a blocked output.
//
//===----------------------------------------------------------------------===//
#include "CompileTestUtils.h"
#include "GraphTestUtils.h"
#include "tessel/Compiler/Compile.h"
#include "tessel/Graph/Lowering.h"
#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Text.h"
#include "tessel/Graph/Transforms.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/TE/Build.h"
#include "tessel/TE/Schedule.h"
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

void expectClose(const Tensor &got, const Tensor &want, const std::string &what) {
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const float *g = got.data<float>(), *w = want.data<float>();
  int bad = 0;
  for (int64_t i = 0; i < want.numel() && bad < 5; ++i)
    if (!(std::fabs(g[i] - w[i]) <= 1e-4 + 1e-4 * std::fabs(w[i]))) {
      ADD_FAILURE() << what << "[" << i << "]: got " << g[i] << ", want " << w[i];
      ++bad;
    }
}

int countOps(const Graph &g, const std::string &domain, const std::string &op) {
  int n = 0;
  for (const auto &node : g.nodes())
    n += node->domain == domain && node->opType == op;
  return n;
}

/// The graph before and after transform-layout in the interpreter, and compiled (-O3, which runs
/// the pass on AVX-512/AVX2 hosts) through the runtime at 1 and 2 threads. `schedules`, when
/// given, gets each compiled kernel's "symbol: schedule" line.
void checkEverywhere(const std::string &text, int expectConvs,
                     std::vector<std::string> *schedules = nullptr) {
  auto ref = parseGraph(text, "test");
  std::map<std::string, Object> in = randomInputs(*ref, 11);
  Interpreter refInterp(*ref);
  auto want = refInterp.run(in);

  auto blocked = parseGraph(text, "test");
  inferShapes(*blocked);
  PassStats stats;
  ASSERT_TRUE(transformLayout(*blocked, stats));
  inferShapes(*blocked);
  EXPECT_EQ(countOps(*blocked, "tessel", "ConvNCHWc"), expectConvs);
  EXPECT_EQ(countOps(*blocked, "", "Conv"), 0);
  Interpreter blockedInterp(*blocked);
  auto got = blockedInterp.run(in);
  for (const Value *o : ref->outputs)
    expectClose(got.at(o->name()).tensor, want.at(o->name()).tensor, "interpreter " + o->name());

  auto g = parseGraph(text, "test");
  CompileOptions opts;
  opts.optLevel = 3;
  CompiledModel cm = compileModel(*g, opts);
  for (const CompiledKernel &k : cm.kernels) {
    EXPECT_EQ(k.schedule.find("default schedule failed"), std::string::npos)
        << k.symbol << ": " << k.schedule;
    if (schedules)
      schedules->push_back(k.symbol + ": " + k.schedule);
  }
  for (int threads : {1, 2})
    for (auto &[name, t] : test::runArtifactF32(cm, in, threads))
      expectClose(t, want.at(name).tensor,
                  "compiled (" + std::to_string(threads) + " threads) " + name);
}

/// One Conv (+ bias + ReLU) of the given geometry.
std::string convGraph(int64_t N, int64_t C, int64_t H, int64_t W, int64_t OC, int64_t K,
                      int64_t stride, const std::string &pads, int64_t dil, int64_t group,
                      bool bias) {
  std::vector<int64_t> ws{OC, C / group, K, K};
  std::ostringstream os;
  os << "graph @g(%x: " << dims({N, C, H, W}) << ") opset {\"\": 17} {\n";
  os << "  %w: " << dims(ws) << " = " << randomLiteral(ws, 3) << "\n";
  if (bias)
    os << "  %b: " << dims({OC}) << " = " << randomLiteral({OC}, 5) << "\n";
  os << "  %c = Conv(%x, %w" << (bias ? ", %b" : "") << ") {dilations = [" << dil << ", " << dil
     << "], group = " << group << ", kernel_shape = [" << K << ", " << K << "], pads = " << pads
     << ", strides = [" << stride << ", " << stride << "]}\n";
  os << "  %y = Relu(%c)\n  return %y\n}\n";
  return os.str();
}

/// A conv (+ bias + Clip; depthwise when group = C) then a 1x1 conv (+ ReLU): the first kernel's
/// output stays blocked, so it runs under the blocked-conv schedule (the kernel of a lone conv
/// also holds the FromBlocked back to NCHW, which the schedule leaves to the default one).
std::string convThenPointwise(int64_t C, int64_t H, int64_t W, int64_t OC, int64_t K,
                              int64_t stride, const std::string &pads, int64_t group,
                              bool epilogue = true) {
  std::ostringstream os;
  os << "graph @g(%x: " << dims({1, C, H, W}) << ") opset {\"\": 17} {\n";
  os << "  %w1: " << dims({OC, C / group, K, K}) << " = "
     << randomLiteral({OC, C / group, K, K}, 3) << "\n";
  os << "  %b1: " << dims({OC}) << " = " << randomLiteral({OC}, 4) << "\n";
  os << "  %wp: " << dims({16, OC, 1, 1}) << " = " << randomLiteral({16, OC, 1, 1}, 5) << "\n";
  os << "  %lo: f32[] = dense<0.0>\n  %hi: f32[] = dense<0.3>\n";
  os << "  %" << (epilogue ? "d" : "c") << " = Conv(%x, %w1" << (epilogue ? ", %b1" : "")
     << ") {group = " << group << ", kernel_shape = [" << K << ", " << K << "], pads = " << pads
     << ", strides = [" << stride << ", " << stride << "]}\n";
  if (epilogue)
    os << "  %c = Clip(%d, %lo, %hi)\n";
  os << "  %p = Conv(%c, %wp) {kernel_shape = [1, 1]}\n";
  os << "  %y = Relu(%p)\n  return %y\n}\n";
  return os.str();
}

std::string depthwiseThenPointwise(int64_t C, int64_t H, int64_t W, int64_t stride,
                                   const std::string &pads) {
  return convThenPointwise(C, H, W, C, 3, stride, pads, C);
}

} // namespace

TEST(ConvNCHWc, FirstLayerThreeChannelsStride2Padded) {
  // ic_bn = 3, oc_bn = 16, stride 2, 7x7 kernel: resnet18's first layer in small.
  checkEverywhere(convGraph(1, 3, 29, 29, 32, 7, 2, "[3, 3, 3, 3]", 1, 1, true), 1);
}

TEST(ConvNCHWc, OddWidthsAndTails) {
  // OW = 13 (reg_n 13), OW = 31 (prime > 28: reg_n 1), asymmetric pads, dilation 2, OC 24
  // (block 8), no bias.
  checkEverywhere(convGraph(1, 16, 13, 13, 16, 3, 1, "[1, 1, 1, 1]", 1, 1, true), 1);
  checkEverywhere(convGraph(1, 16, 9, 31, 16, 1, 1, "[0, 0, 0, 0]", 1, 1, false), 1);
  checkEverywhere(convGraph(2, 16, 11, 10, 24, 3, 1, "[2, 0, 1, 1]", 2, 1, false), 1);
}

TEST(ConvNCHWc, NarrowOutputTwoChannelBlocksPerTile) {
  // 7x7 output (reg_n 7): two output-channel blocks per register tile.
  checkEverywhere(convGraph(1, 32, 7, 7, 64, 3, 1, "[1, 1, 1, 1]", 1, 1, true), 1);
}

TEST(ConvNCHWc, Depthwise) {
  checkEverywhere(convGraph(1, 32, 15, 15, 32, 3, 2, "[1, 1, 1, 1]", 1, 32, true), 1);
  checkEverywhere(convGraph(1, 16, 14, 14, 16, 3, 1, "[1, 1, 1, 1]", 1, 16, false), 1);
}

/// The schedule line of the kernel whose symbol contains `what` ("" when none does).
static std::string scheduleOf(const std::vector<std::string> &schedules, const std::string &what) {
  for (const std::string &s : schedules)
    if (s.find(what) != std::string::npos)
      return s;
  return "";
}

TEST(ConvNCHWc, DepthwisePaddedRowsPerChunkOfOutputRows) {
  // The depthwise schedule computes the padded input rows per chunk of output rows (a divisor
  // of the output height whose rows fit the L1 buffer) inside the parallel loop. Stride 1 and 2,
  // output heights with many divisors (24: chunks of several rows), prime (13, 7: one chunk of
  // all rows or one row), widths that no register tile divides (13: reg_n 13; 31: reg_n 1),
  // asymmetric pads, block 8 (24 channels), and a 7x7 output with two oc blocks per tile (one
  // row per chunk). The 3x3 taps are unrolled.
  struct Case {
    int64_t C, H, W, stride;
    const char *pads;
    const char *expect; // in the conv kernel's schedule line
  };
  const Case cases[] = {
      {32, 24, 24, 1, "[1, 1, 1, 1]", "padded rows per"},
      {32, 48, 48, 2, "[1, 1, 1, 1]", "padded rows per"},
      {16, 13, 13, 1, "[1, 1, 1, 1]", "reg_n 13, padded rows per"},
      {16, 26, 31, 1, "[0, 1, 2, 1]", "reg_n 1, padded rows per"},
      {24, 27, 27, 2, "[1, 1, 1, 1]", "padded rows per"},
      {64, 7, 7, 1, "[1, 1, 1, 1]", "x 2 oc blocks, padded rows per 1 output rows"},
      {48, 14, 14, 2, "[0, 0, 1, 1]", "padded rows per"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(std::to_string(c.C) + "x" + std::to_string(c.H) + "x" + std::to_string(c.W) +
                 " stride " + std::to_string(c.stride) + " pads " + c.pads);
    std::vector<std::string> schedules;
    checkEverywhere(depthwiseThenPointwise(c.C, c.H, c.W, c.stride, c.pads), 2, &schedules);
    std::string conv = scheduleOf(schedules, "convnchwc_clip");
    EXPECT_NE(conv.find(c.expect), std::string::npos) << conv;
    if (std::string(c.expect).find("prefetched") == std::string::npos)
      EXPECT_EQ(conv.find("prefetched"), std::string::npos) << conv;
  }
  // A 5x5 depthwise conv (its taps stay a loop: only up to 3x3 is unrolled).
  {
    std::vector<std::string> schedules;
    checkEverywhere(convThenPointwise(16, 20, 20, 16, 5, 1, "[2, 2, 2, 2]", 16), 2, &schedules);
    std::string conv = scheduleOf(schedules, "convnchwc_clip");
    EXPECT_NE(conv.find("reg_n 20, padded rows per"), std::string::npos) << conv;
  }
  // 112x112 stride 1 (mobilenet_v2's first depthwise conv): several rows per chunk.
  std::vector<std::string> schedules;
  checkEverywhere(depthwiseThenPointwise(32, 112, 112, 1, "[1, 1, 1, 1]"), 2, &schedules);
  std::string conv = scheduleOf(schedules, "convnchwc_clip");
  EXPECT_EQ(conv.find("padded rows per 1 output rows"), std::string::npos) << conv;
  EXPECT_NE(conv.find("padded rows per"), std::string::npos) << conv;
}

TEST(ConvNCHWc, RegularConvScheduleTiles) {
  // Regular convs whose output stays blocked (the conv schedule applies): output widths 13
  // (reg_n 13, odd height: one row per tile) and 31 (prime > 28: reg_n 1), stride 2 from 3
  // channels, 7x7 outputs of 3x3 convs (two oc blocks per tile, all rows per tile inside the
  // kh, kw loops) at stride 1 and 2, and rows of at most 14 with an even height (two rows per
  // register tile) when the output channels are one block; rows of 12 to 14 with an even
  // number of oc blocks (3x3 at stride 1 and 2, 1x1) get two oc blocks per tile, ow-major; a
  // 7x7 1x1 conv and a 7x7 conv with an odd number of oc blocks keep one row per tile.
  struct Case {
    int64_t C, H, W, OC, K, stride;
    const char *pads;
    const char *expect;
  };
  const Case cases[] = {
      {16, 13, 13, 32, 3, 1, "[1, 1, 1, 1]", "reg_n 13"},
      {16, 9, 31, 16, 3, 1, "[1, 0, 1, 0]", "reg_n 1"},
      {3, 29, 29, 32, 7, 2, "[3, 3, 3, 3]", "reg_n 15"},
      {32, 7, 7, 64, 3, 1, "[1, 1, 1, 1]", "reg_n 7 x 2 oc blocks, all rows per tile"},
      {32, 14, 14, 64, 3, 2, "[1, 1, 1, 1]", "reg_n 7 x 2 oc blocks, all rows per tile"},
      {64, 7, 9, 32, 3, 1, "[0, 1, 2, 1]", "reg_n 9 x 2 oc blocks, all rows per tile"},
      {16, 14, 14, 16, 3, 1, "[1, 1, 1, 1]", "reg_n 14 x 2 rows"},
      {16, 28, 28, 16, 3, 2, "[1, 1, 1, 1]", "reg_n 14 x 2 rows"},
      {8, 6, 10, 16, 3, 1, "[1, 1, 1, 1]", "reg_n 10 x 2 rows"},
      {16, 14, 14, 32, 3, 1, "[1, 1, 1, 1]", "reg_n 14 x 2 oc blocks, ow-major"},
      {16, 28, 28, 32, 3, 2, "[1, 1, 1, 1]", "reg_n 14 x 2 oc blocks, ow-major"},
      {8, 12, 12, 32, 3, 1, "[0, 1, 2, 1]", "reg_n 12 x 2 oc blocks, ow-major"},
      {32, 14, 14, 64, 1, 1, "[0, 0, 0, 0]", "reg_n 14 x 2 oc blocks, ow-major"},
      {16, 14, 13, 48, 3, 1, "[1, 1, 1, 1]", "reg_n 13 x 2 rows"},
      // Wider rows split into tiles of 12-14 columns get the oc pair ow-major too (28 -> 14,
      // 56 -> 14, 39 -> 13); with one oc block the row keeps its 28-wide tile.
      {16, 28, 28, 32, 3, 1, "[1, 1, 1, 1]", "reg_n 14 x 2 oc blocks, ow-major"},
      {16, 8, 56, 32, 1, 1, "[0, 0, 0, 0]", "reg_n 14 x 2 oc blocks, ow-major"},
      {8, 6, 39, 32, 3, 1, "[1, 1, 1, 1]", "reg_n 13 x 2 oc blocks, ow-major"},
      {16, 6, 28, 16, 3, 1, "[1, 1, 1, 1]", "reg_n 28"},
      // Weights of 512 KiB or more (128 x 128 x 3 x 3 floats: 576 KiB) are prefetched.
      {128, 7, 7, 128, 3, 1, "[1, 1, 1, 1]",
       "reg_n 7 x 2 oc blocks, all rows per tile inside kh, kw, weights prefetched 2 kw steps"},
      {128, 12, 12, 128, 3, 1, "[1, 1, 1, 1]",
       "reg_n 12 x 2 oc blocks, ow-major, weights prefetched 2 kw steps"},
  };
  for (const Case &c : cases) {
    SCOPED_TRACE(std::to_string(c.C) + "x" + std::to_string(c.H) + "x" + std::to_string(c.W) +
                 " -> " + std::to_string(c.OC) + " k" + std::to_string(c.K) + " stride " +
                 std::to_string(c.stride));
    std::vector<std::string> schedules;
    checkEverywhere(convThenPointwise(c.C, c.H, c.W, c.OC, c.K, c.stride, c.pads, 1), 2,
                    &schedules);
    std::string conv = scheduleOf(schedules, "convnchwc_clip");
    EXPECT_NE(conv.find(c.expect), std::string::npos) << conv;
    if (std::string(c.expect).find("prefetched") == std::string::npos)
      EXPECT_EQ(conv.find("prefetched"), std::string::npos) << conv;
  }
  // No epilogue (no bias, no activation): the conv accumulates in a cache stage.
  {
    std::vector<std::string> schedules;
    checkEverywhere(convThenPointwise(32, 7, 7, 64, 3, 1, "[1, 1, 1, 1]", 1, false), 2,
                    &schedules);
    std::string conv = scheduleOf(schedules, "convnchwc");
    EXPECT_NE(conv.find("reg_n 7 x 2 oc blocks, all rows per tile"), std::string::npos) << conv;
  }
  for (auto [OC, K] : {std::pair<int64_t, int64_t>{64, 1}, {48, 3}}) {
    std::vector<std::string> schedules;
    checkEverywhere(convThenPointwise(32, 7, 7, OC, K, 1, K == 1 ? "[0, 0, 0, 0]" : "[1, 1, 1, 1]",
                                      1),
                    2, &schedules);
    std::string conv = scheduleOf(schedules, "convnchwc_clip");
    EXPECT_NE(conv.find("reg_n 7"), std::string::npos) << conv;
    EXPECT_EQ(conv.find("all rows"), std::string::npos) << conv;
  }
}

TEST(ConvNCHWc, ToBlockedKernelSchedule) {
  // The input's ToBlocked is its own kernel: rows in parallel, [w | c] with c unrolled
  // (block 3 for the 3-channel input, 8 for 24 channels, 16).
  for (int64_t C : {3, 24, 16}) {
    SCOPED_TRACE("channels " + std::to_string(C));
    std::vector<std::string> schedules;
    checkEverywhere(convGraph(1, C, 30, 33, 16, 3, 2, "[1, 1, 1, 1]", 1, 1, true), 1,
                    &schedules);
    std::string tb = scheduleOf(schedules, "toblocked");
    EXPECT_NE(tb.find("toblocked rows x w x c unrolled"), std::string::npos) << tb;
  }
}

TEST(ConvNCHWc, BlockedTrunkWithResidualPoolsAndPerChannelConstants) {
  std::ostringstream os;
  os << "graph @trunk(%x: f32[1,3,20,20]) opset {\"\": 17} {\n"
     << "  %w1: f32[16,3,3,3] = " << randomLiteral({16, 3, 3, 3}, 1) << "\n"
     << "  %b1: f32[16] = " << randomLiteral({16}, 2) << "\n"
     << "  %w2: f32[16,16,3,3] = " << randomLiteral({16, 16, 3, 3}, 3) << "\n"
     << "  %wd: f32[16,1,3,3] = " << randomLiteral({16, 1, 3, 3}, 4) << "\n"
     << "  %s: f32[16,1,1] = " << randomLiteral({16, 1, 1}, 5) << "\n"
     << "  %lo: f32[] = dense<0.0>\n  %hi: f32[] = dense<0.2>\n"
     << "  %c1 = Conv(%x, %w1, %b1) {kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]}\n"
     << "  %r1 = Relu(%c1)\n"
     << "  %c2 = Conv(%r1, %w2) {kernel_shape = [3, 3], pads = [1, 1, 1, 1]}\n"
     << "  %a = Add(%c2, %r1)\n  %r2 = Relu(%a)\n"
     << "  %p = MaxPool(%r2) {kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]}\n"
     << "  %d = Conv(%p, %wd) {group = 16, kernel_shape = [3, 3], pads = [1, 1, 1, 1]}\n"
     << "  %cl = Clip(%d, %lo, %hi)\n  %m = Mul(%cl, %s)\n"
     << "  %g = GlobalAveragePool(%m)\n  %y = Flatten(%g)\n  return %y\n}\n";
  checkEverywhere(os.str(), 3);
  // One ToBlocked at the start, one FromBlocked before Flatten.
  auto g = parseGraph(os.str(), "test");
  inferShapes(*g);
  PassStats stats;
  ASSERT_TRUE(transformLayout(*g, stats));
  EXPECT_EQ(countOps(*g, "tessel", "ToBlocked"), 1);
  EXPECT_EQ(countOps(*g, "tessel", "FromBlocked"), 1);
}

/// The single node of `text` lowered alone (default TE schedule, no pass) against its reference
/// kernel in the interpreter.
void checkLoweringOfOneNode(const char *text) {
  auto g = parseGraph(text, "test");
  inferShapes(*g);
  std::map<std::string, Object> in = randomInputs(*g, 5);
  Interpreter interp(*g);
  auto want = interp.run(in);
  const Node &n = *g->nodes().front();
  LoweredNode ln = lowerNode(n);
  auto f = build(te::create_schedule(ln.definedOutputs()), ln.args());
  std::vector<Tensor> bufs;
  for (const Value *v : n.inputs())
    bufs.push_back(in.at(v->name()).tensor.clone());
  bufs.push_back(Tensor(DType::f32, n.output(0)->type.shape.staticDims()));
  std::vector<RuntimeArg> args;
  for (Tensor &t : bufs)
    args.push_back(RuntimeArg(t.raw()));
  f.call(args);
  expectClose(bufs.back(), want.at("y").tensor, "lowered " + n.opType);
}

TEST(ConvNCHWc, LoweringsMatchReferenceKernels) {
  checkLoweringOfOneNode(R"(
graph @g(%x: f32[1,2,9,7,3], %w: f32[2,2,3,3,3,8], %b: f32[2,8]) opset {"": 17, "tessel": 1} {
  %y = tessel::ConvNCHWc(%x, %w, %b) {kernel_shape = [3, 3], pads = [1, 2, 0, 1], strides = [2, 1], dilations = [1, 2]}
  return %y
}
)");
  checkLoweringOfOneNode(R"(
graph @g(%x: f32[1,2,9,7,16], %w: f32[2,1,3,3,1,16]) opset {"": 17, "tessel": 1} {
  %y = tessel::ConvNCHWc(%x, %w) {group = 32, kernel_shape = [3, 3], pads = [1, 1, 1, 1], strides = [2, 2]}
  return %y
}
)");
  checkLoweringOfOneNode(R"(
graph @g(%x: f32[2,3,11,10,16]) opset {"": 17, "tessel": 1} {
  %y = tessel::MaxPoolNCHWc(%x) {kernel_shape = [3, 2], pads = [1, 0, 2, 1], strides = [2, 2]}
  return %y
}
)");
  checkLoweringOfOneNode(R"(
graph @g(%x: f32[1,8,5,5]) opset {"": 17, "tessel": 1} {
  %y = tessel::ToBlocked(%x) {block = 4}
  return %y
}
)");
  checkLoweringOfOneNode(R"(
graph @g(%x: f32[1,2,5,3,4]) opset {"": 17, "tessel": 1} {
  %y = tessel::FromBlocked(%x)
  return %y
}
)");
}

TEST(ConvNCHWc, PoolsThatStayOnnxPools) {
  // AveragePool and a dilated MaxPool as 3-D pools with kernel [kh, kw, 1].
  std::ostringstream os;
  os << "graph @pools(%x: f32[1,3,10,10]) opset {\"\": 17} {\n"
     << "  %w: f32[8,3,3,3] = " << randomLiteral({8, 3, 3, 3}, 9) << "\n"
     << "  %c = Conv(%x, %w)\n"
     << "  %a = AveragePool(%c) {kernel_shape = [2, 2], pads = [1, 0, 0, 1], strides = [2, 2]}\n"
     << "  %y = MaxPool(%a) {dilations = [2, 2], kernel_shape = [2, 2]}\n  return %y\n}\n";
  checkEverywhere(os.str(), 1);
}

TEST(ConvNCHWc, ShapeErrorsNameTheProblem) {
  const char *text = R"(
graph @g(%x: f32[1,2,9,7,4], %w: f32[2,2,3,3,3,8]) opset {"": 17, "tessel": 1} {
  %y = tessel::ConvNCHWc(%x, %w) {kernel_shape = [3, 3]}
  return %y
}
)";
  try {
    auto g = parseGraph(text, "test");
    inferShapes(*g);
    FAIL() << "expected an error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("do not match the input"), std::string::npos) << e.what();
  }
}
