//===- RecurrentLoweringTest.cpp - RNN, GRU and LSTM compiled vs the interpreter ===//
//
// The recurrent lowerings (lib/Graph/Ops/Recurrent.cpp, docs/lowering.md) compiled end to end
// (tessel::compileModel at -O3, the artifact run by the runtime) on random inputs in [-1, 1)
// and compared with the reference interpreter (1e-4 absolute + 1e-4 relative): a bidirectional
// LSTM with peepholes, initial states and sequence_lens (a constant and a run-time input, with
// a zero and a full length), GRU with and without linear_before_reset (reverse, layout 1,
// clip), and every activation function of the spec with alpha/beta.
//
//===----------------------------------------------------------------------===//
#include "CompileTestUtils.h"
#include "TestUtils.h"
#include "tessel/Compiler/Compile.h"
#include "tessel/Graph/Lowering.h"
#include "tessel/Graph/Text.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/runtime/Model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

using namespace tessel;

namespace {

/// Compiles `text` at -O3, runs the artifact with the int32 inputs given in `ints` and every
/// float input drawn from [-1, 1) (seeded; times `weightScale` for every input but %x), and
/// compares each output with the interpreter. Returns the compiled model.
CompiledModel checkCompiled(const std::string &text,
                            const std::map<std::string, std::vector<int32_t>> &ints = {},
                            unsigned seed = 11, float weightScale = 1.0f) {
  test::CompareOptions o;
  o.seed = seed;
  for (const auto &[name, v] : ints) {
    Tensor t(DType::i32, {int64_t(v.size())});
    std::memcpy(t.raw(), v.data(), v.size() * sizeof(int32_t));
    o.given[name] = t;
  }
  o.scale = [weightScale](const std::string &name) { return name == "x" ? 1.0 : weightScale; };
  return test::compileAndCompare(text, o).cm;
}

/// A bidirectional LSTM (T=5, batch 3, input 4, hidden 6) with bias, initial_h/initial_c and
/// peepholes; `lens` declares sequence_lens (an initializer or a graph input).
std::string lstmText(const std::string &lensParam, const std::string &lensInit) {
  return R"(
graph @lstm(%x: f32[5,3,4], %w: f32[2,24,4], %r: f32[2,24,6], %b: f32[2,48], )" +
         lensParam + R"(%h0: f32[2,3,6], %c0: f32[2,3,6], %p: f32[2,18]) opset {"": 17} {
  )" + lensInit +
         R"(
  %y, %yh, %yc = LSTM(%x, %w, %r, %b, %lens, %h0, %c0, %p) {name = "lstm", direction = "bidirectional", hidden_size = 6}
  return %y, %yh, %yc
}
)";
}

} // namespace

TEST(RecurrentLowering, BidirectionalLstmWithConstantSequenceLens) {
  // Row 1 stops after 2 steps, row 2 has none: Y is zero there, Y_h/Y_c keep the states
  // (initial ones for row 2), and the reverse direction starts at each row's last step.
  CompiledModel cm = checkCompiled(lstmText("", "%lens: i32[3] = dense<[5, 2, 0]>"));
  // one node, one kernel: every step's stages live in it
  EXPECT_EQ(cm.kernels.size(), 1u);
}

TEST(RecurrentLowering, BidirectionalLstmWithRuntimeSequenceLens) {
  std::string text = lstmText("%lens: i32[3], ", "");
  checkCompiled(text, {{"lens", {3, 5, 1}}});
  checkCompiled(text, {{"lens", {0, 4, 5}}}, 12);
}

TEST(RecurrentLowering, WiderLstmAndGruUseVectorizedSchedules) {
  // hidden 32, input 16: the contractions get register tiles and the state updates vector
  // loops. Weights are scaled down: with weights in [-1, 1) a 32-wide recurrence is chaotic,
  // and float rounding differences (fma, summation order) grow step by step past 1e-4.
  checkCompiled(R"(
graph @lstm(%x: f32[10,2,16], %w: f32[2,128,16], %r: f32[2,128,32], %b: f32[2,256], %lens: i32[2], %h0: f32[2,2,32], %c0: f32[2,2,32], %p: f32[2,96]) opset {"": 17} {
  %y, %yh, %yc = LSTM(%x, %w, %r, %b, %lens, %h0, %c0, %p) {name = "lstm", hidden_size = 32, direction = "bidirectional"}
  return %y, %yh, %yc
}
)",
                {{"lens", {10, 7}}}, 5, 0.25f);
  checkCompiled(R"(
graph @gru(%x: f32[2,10,16], %w: f32[2,96,16], %r: f32[2,96,32], %b: f32[2,192], %h0: f32[2,2,32]) opset {"": 17} {
  %y, %yh = GRU(%x, %w, %r, %b, _, %h0) {name = "gru", hidden_size = 32, direction = "bidirectional", layout = 1}
  return %y, %yh
}
)",
                {}, 6, 0.25f);
}

TEST(RecurrentLowering, StackedLstmsAsExported) {
  // Two layers as PyTorch exports them: LSTM, Squeeze of the direction axis, LSTM, with an
  // elementwise consumer of the last state.
  checkCompiled(R"(
graph @stacked(%x: f32[6,2,4], %w1: f32[1,24,4], %r1: f32[1,24,6], %b1: f32[1,48], %w2: f32[1,24,6], %r2: f32[1,24,6], %b2: f32[1,48]) opset {"": 17} {
  %axes: i64[1] = dense<[1]>
  %y1, _, _ = LSTM(%x, %w1, %r1, %b1) {name = "lstm1", hidden_size = 6}
  %s1 = Squeeze(%y1, %axes)
  %y2, %yh2, _ = LSTM(%s1, %w2, %r2, %b2) {name = "lstm2", hidden_size = 6}
  %t = Tanh(%yh2)
  return %y2, %t
}
)");
}

TEST(RecurrentLowering, LstmInputForgetLayout1WithoutOptionalInputs) {
  checkCompiled(R"(
graph @lstm(%x: f32[2,4,3], %w: f32[1,20,3], %r: f32[1,20,5]) opset {"": 17} {
  %y, %yh, %yc = LSTM(%x, %w, %r) {name = "lstm", hidden_size = 5, input_forget = 1, layout = 1, clip = 0.75}
  return %y, %yh, %yc
}
)");
  // Y_c alone (Y and Y_h omitted), reverse
  checkCompiled(R"(
graph @lstm(%x: f32[3,2,3], %w: f32[1,16,3], %r: f32[1,16,4], %b: f32[1,32]) opset {"": 17} {
  _, _, %yc = LSTM(%x, %w, %r, %b) {name = "lstm", hidden_size = 4, direction = "reverse"}
  return %yc
}
)");
}

TEST(RecurrentLowering, GruLinearBeforeReset) {
  checkCompiled(R"(
graph @gru(%x: f32[4,2,3], %w: f32[1,15,3], %r: f32[1,15,5], %b: f32[1,30], %h0: f32[1,2,5]) opset {"": 17} {
  %y, %yh = GRU(%x, %w, %r, %b, _, %h0) {name = "gru", hidden_size = 5, linear_before_reset = 1}
  return %y, %yh
}
)");
  // bidirectional with run-time sequence_lens, no initial state
  checkCompiled(R"(
graph @gru(%x: f32[4,3,3], %w: f32[2,15,3], %r: f32[2,15,5], %b: f32[2,30], %lens: i32[3]) opset {"": 17} {
  %y, %yh = GRU(%x, %w, %r, %b, %lens) {name = "gru", hidden_size = 5, linear_before_reset = 1, direction = "bidirectional"}
  return %y, %yh
}
)",
                {{"lens", {2, 4, 1}}});
}

TEST(RecurrentLowering, GruReverseLayout1Clip) {
  // linear_before_reset = 0: (r * H) R_h^T, reverse, batch-major layout, clip
  checkCompiled(R"(
graph @gru(%x: f32[2,5,3], %w: f32[1,12,3], %r: f32[1,12,4], %b: f32[1,24], %h0: f32[2,1,4]) opset {"": 17} {
  %y, %yh = GRU(%x, %w, %r, %b, _, %h0) {name = "gru", hidden_size = 4, direction = "reverse", layout = 1, clip = 0.5}
  return %y, %yh
}
)");
}

TEST(RecurrentLowering, EveryActivationFunction) {
  // RNN: each direction its own function; alpha/beta consumed in order by those that take them
  checkCompiled(R"(
graph @rnn(%x: f32[3,2,4], %w: f32[2,5,4], %r: f32[2,5,5], %b: f32[2,10], %h0: f32[2,2,5]) opset {"": 17} {
  %y, %yh = RNN(%x, %w, %r, %b, _, %h0) {name = "rnn", hidden_size = 5, direction = "bidirectional", activations = ["LeakyRelu", "ScaledTanh"], activation_alpha = [0.3, 0.8], activation_beta = [1.5]}
  return %y, %yh
}
)");
  checkCompiled(R"(
graph @rnn(%x: f32[3,2,4], %w: f32[2,5,4], %r: f32[2,5,5]) opset {"": 17} {
  %y, %yh = RNN(%x, %w, %r) {name = "rnn", direction = "bidirectional", activations = ["Relu", "ThresholdedRelu"], activation_alpha = [0.1]}
  return %y, %yh
}
)");
  checkCompiled(R"(
graph @gru(%x: f32[3,2,4], %w: f32[2,15,4], %r: f32[2,15,5], %b: f32[2,30]) opset {"": 17} {
  %y, %yh = GRU(%x, %w, %r, %b) {name = "gru", hidden_size = 5, direction = "bidirectional", activations = ["HardSigmoid", "Softsign", "Sigmoid", "Softplus"], activation_alpha = [0.25], activation_beta = [0.4]}
  return %y, %yh
}
)");
  checkCompiled(R"(
graph @lstm(%x: f32[3,2,4], %w: f32[1,20,4], %r: f32[1,20,5], %b: f32[1,40]) opset {"": 17} {
  %y, %yh, %yc = LSTM(%x, %w, %r, %b) {name = "lstm", hidden_size = 5, activations = ["Sigmoid", "Elu", "Affine"], activation_alpha = [0.7, 0.5], activation_beta = [0.2]}
  return %y, %yh, %yc
}
)");
  checkCompiled(R"(
graph @lstm(%x: f32[3,2,4], %w: f32[1,20,4], %r: f32[1,20,5]) opset {"": 17} {
  %y, %yh, %yc = LSTM(%x, %w, %r) {name = "lstm", hidden_size = 5, activations = ["Sigmoid", "Tanh", "Tanh"]}
  return %y, %yh, %yc
}
)");
}

TEST(RecurrentLowering, DoublePrecision) {
  checkCompiled(R"(
graph @lstm(%x: f64[4,2,3], %w: f64[2,20,3], %r: f64[2,20,5], %b: f64[2,40], %lens: i32[2], %h0: f64[2,2,5], %c0: f64[2,2,5], %p: f64[2,15]) opset {"": 17} {
  %y, %yh, %yc = LSTM(%x, %w, %r, %b, %lens, %h0, %c0, %p) {name = "lstm", hidden_size = 5, direction = "bidirectional"}
  return %y, %yh, %yc
}
)",
                {{"lens", {3, 4}}});
}

TEST(RecurrentLowering, ErrorsNameNodeAndCase) {
  // a constant sequence_lens out of range: the lowering says which value and the range
  auto g = parseGraph(lstmText("", "%lens: i32[3] = dense<[5, 6, 1]>"), "test");
  std::string e = test::errorOf([&] { compileModel(*g); });
  EXPECT_NE(e.find("lstm"), std::string::npos) << e;
  EXPECT_NE(e.find("sequence_lens value 6 is out of range [0, 5]"), std::string::npos) << e;
}

// An f16 GRU: its matrix products would round at each step in f16, so lowerNode lowers the node
// at f32 and rounds the outputs once; it matches the interpreter within an f16 ulp or two.
TEST(RecurrentLowering, HalfGRUComputesInF32) {
  const char *text = R"(
graph @gru(%x: f16[2,1,3], %w: f16[1,6,3], %r: f16[1,6,2]) opset {"": 17} {
  %y = GRU(%x, %w, %r) {name = "gru_half", hidden_size = 2} : f16[2,1,1,2]
  return %y
}
)";
  test::CompareOptions o;
  o.given = {{"x", test::randomTensor(DType::f16, {2, 1, 3}, 1)},
             {"w", test::randomTensor(DType::f16, {1, 6, 3}, 2)},
             {"r", test::randomTensor(DType::f16, {1, 6, 2}, 3)}};
  o.tol = 2e-3;
  test::compileAndCompare(text, o);
}
