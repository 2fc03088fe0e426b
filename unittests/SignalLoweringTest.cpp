//===- SignalLoweringTest.cpp - DFT, STFT and Det compiled vs the interpreter ===//
//
// The lowerings of DFT and STFT (lib/Graph/Ops/Signal.cpp) and Det (lib/Graph/Ops/NN.cpp),
// docs/lowering.md: each graph is compiled end to end (tessel::compileModel at -O3, the artifact
// run by the runtime) and compared with the reference interpreter at 1e-4 absolute + 1e-4
// relative. Float inputs are random in [-1, 1) (seeded) unless a test gives them; integer
// inputs (dft_length, frame_step, frame_length when they are not constants) are given.
// DFT: real and complex, forward and inverse, every axis, powers of two (FFT stages, as the
// reference) and not (the direct sum), onesided, dft_length constant (padding, truncation) and read
// at run time, a transform too long for the per-pair twiddle tables. STFT: with and without a
// window, run-time frame_step / frame_length, complex two-sided. Det: batches, one matrix, f64,
// singular matrices (exactly 0), matrices that need pivoting (permutations, a zero and a tiny
// leading entry), n = 1 and n = 24; errors name the node and the case.
//
//===----------------------------------------------------------------------===//
#include "CompileTestUtils.h"
#include "TestUtils.h"
#include "tessel/Compiler/Compile.h"
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

using test::errorOf;

/// Compiles `text` at -O3 and runs the artifact on `given` inputs (by name) and, for the
/// others, f32/f64 values drawn from [-1, 1) with `seed`; compares every output with the
/// interpreter on the same inputs. Returns the compiled outputs by name, as tessel Tensors.
std::map<std::string, Tensor> checkCompiled(const std::string &text,
                                            std::map<std::string, Tensor> given = {},
                                            unsigned seed = 5) {
  test::CompareOptions o;
  o.seed = seed;
  o.given = std::move(given);
  return test::compileAndCompare(text, o).outputs;
}

Tensor scalarI64(int64_t v) {
  Tensor t(DType::i64, {});
  t.data<int64_t>()[0] = v;
  return t;
}

Tensor matrices(DType dt, std::vector<int64_t> shape, const std::vector<double> &v) {
  Tensor t(DType::f64, std::move(shape));
  EXPECT_EQ(size_t(t.numel()), v.size());
  std::memcpy(t.raw(), v.data(), v.size() * sizeof(double));
  return dt == DType::f64 ? t : t.cast(dt);
}

/// A one-node graph's compile error ("" when it compiles).
std::string compileError(const std::string &text) {
  auto g = parseGraph(text, "test");
  return errorOf([&] { compileModel(*g, {}); });
}

} // namespace

//===----------------------------------------------------------------------===//
// DFT
//===----------------------------------------------------------------------===//

TEST(SignalLowering, DftRealForwardEachAxis) {
  // axis 1 and 2 of [2, 12, 5, 1] (N = 12, the direct sum), then [3, 16, 1] (N = 16: the
  // reference's radix-2 FFT) and a negative axis
  checkCompiled(R"(
graph @dft(%x: f32[2,12,5,1]) opset {"": 17} {
  %y = DFT(%x) {name = "dft", axis = 1}
  %z = DFT(%x) {name = "dft2", axis = 2}
  return %y, %z
}
)");
  checkCompiled(R"(
graph @dft(%x: f32[3,16,1]) opset {"": 17} {
  %y = DFT(%x) {name = "dft", axis = -2}
  return %y
}
)");
}

TEST(SignalLowering, DftComplexInverse) {
  checkCompiled(R"(
graph @dft(%x: f32[2,7,8,2]) opset {"": 17} {
  %y = DFT(%x) {name = "inv", axis = 1, inverse = 1}
  %z = DFT(%x) {name = "inv8", axis = 2, inverse = 1}
  %w = DFT(%x) {name = "fwd", axis = 2}
  return %y, %z, %w
}
)");
  // f64 in and out
  checkCompiled(R"(
graph @dft(%x: f64[3,10,2]) opset {"": 17} {
  %y = DFT(%x) {name = "inv", axis = 1, inverse = 1}
  return %y
}
)");
}

TEST(SignalLowering, DftFftStages) {
  // powers of two >= 16 run as radix-2 FFT stages: complex and real, inverse, an inner axis,
  // zero padding (dft_length 64 > 40 samples) and truncation (32 < 40)
  checkCompiled(R"(
graph @dft(%x: f32[2,32,3,2], %r: f32[3,40,1]) opset {"": 17} {
  %n64: i64[] = dense<64>
  %n32: i64[] = dense<32>
  %a = DFT(%x) {name = "fwd", axis = 1}
  %b = DFT(%x) {name = "inv", axis = 1, inverse = 1}
  %c = DFT(%r, %n64) {name = "pad", axis = 1, onesided = 1}
  %d = DFT(%r, %n32) {name = "trunc", axis = 1}
  %e = DFT(%r, %n64) {name = "pad_inv", axis = 1, inverse = 1}
  return %a, %b, %c, %d, %e
}
)");
  checkCompiled(R"(
graph @dft(%x: f64[4,1024,1]) opset {"": 17} {
  %y = DFT(%x) {name = "long", axis = 1, onesided = 1}
  return %y
}
)");
}

TEST(SignalLowering, DftOnesidedAndConstantLength) {
  // dft_length 16 > 11 samples (zero padding), 6 < 11 (truncation), onesided
  checkCompiled(R"(
graph @dft(%x: f32[2,11,3,1]) opset {"": 17} {
  %n16: i64[] = dense<16>
  %n6: i64[] = dense<6>
  %a = DFT(%x, %n16) {name = "pad", axis = 1, onesided = 1}
  %b = DFT(%x, %n6) {name = "trunc", axis = 1}
  %c = DFT(%x) {name = "half", axis = 1, onesided = 1}
  %d = DFT(%x, %n16) {name = "pad_inv", axis = 1, inverse = 1}
  return %a, %b, %c, %d
}
)");
}

TEST(SignalLowering, DftLengthReadAtRunTime) {
  // not onesided: N is the output's extent; onesided: N is read at run time (9 bins: 16 or 17)
  const char *text = R"(
graph @dft(%x: f32[2,13,1], %n: i64[]) opset {"": 17} {
  %a = DFT(%x, %n) {name = "full", axis = 1} : f32[2,16,2]
  return %a
}
)";
  checkCompiled(text, {{"n", scalarI64(16)}});
  const char *half = R"(
graph @dft(%x: f32[2,13,1], %n: i64[]) opset {"": 17} {
  %a = DFT(%x, %n) {name = "half", axis = 1, onesided = 1} : f32[2,9,2]
  return %a
}
)";
  checkCompiled(half, {{"n", scalarI64(16)}});
  checkCompiled(half, {{"n", scalarI64(17)}});
}

TEST(SignalLowering, DftLongTransformIndexesPerTerm) {
  // 1100 samples x 1100 bins > 2^20 pairs: no [samples, bins] twiddle tables, the index
  // jk mod N per term
  checkCompiled(R"(
graph @dft(%x: f32[1,1100,2]) opset {"": 17} {
  %y = DFT(%x) {name = "long", axis = 1}
  return %y
}
)");
}

TEST(SignalLowering, DftErrorsNameNodeAndCase) {
  std::string e = compileError(R"(
graph @dft(%x: f32[2,8,2]) opset {"": 17} {
  %y = DFT(%x) {name = "bad", axis = 1, onesided = 1}
  return %y
}
)");
  EXPECT_NE(e.find("'bad'"), std::string::npos) << e;
  EXPECT_NE(e.find("onesided=1 requires a real input"), std::string::npos) << e;
}

//===----------------------------------------------------------------------===//
// STFT
//===----------------------------------------------------------------------===//

TEST(SignalLowering, StftWithWindowAndConstants) {
  checkCompiled(R"(
graph @stft(%s: f32[2,100,1], %w: f32[20]) opset {"": 17} {
  %step: i64[] = dense<7>
  %y = STFT(%s, %step, %w) {name = "stft"}
  %z = STFT(%s, %step, %w) {name = "two_sided", onesided = 0}
  return %y, %z
}
)");
}

TEST(SignalLowering, StftRunTimeStepAndLength) {
  // as the ONNX node test: frame_step and frame_length are graph inputs; the output is declared
  const char *text = R"(
graph @stft(%s: f32[1,128,1], %step: i64[], %fl: i64[]) opset {"": 17} {
  %y = STFT(%s, %step, _, %fl) {name = "stft"} : f32[1,15,9,2]
  return %y
}
)";
  checkCompiled(text, {{"step", scalarI64(8)}, {"fl", scalarI64(16)}});
  // onesided 9 bins: the frame length may also be 17 (read at run time)
  checkCompiled(R"(
graph @stft(%s: f32[1,128,1], %step: i64[], %fl: i64[]) opset {"": 17} {
  %y = STFT(%s, %step, _, %fl) {name = "stft"} : f32[1,14,9,2]
  return %y
}
)",
                {{"step", scalarI64(8)}, {"fl", scalarI64(17)}}, 9);
  // two-sided: the frame length is the output's bins
  checkCompiled(R"(
graph @stft(%s: f32[1,64,1], %step: i64[], %fl: i64[]) opset {"": 17} {
  %y = STFT(%s, %step, _, %fl) {name = "stft", onesided = 0} : f32[1,7,10,2]
  return %y
}
)",
                {{"step", scalarI64(9)}, {"fl", scalarI64(10)}});
}

TEST(SignalLowering, StftComplexSignal) {
  // a 12-sample window (the direct sum) and a 32-sample one (FFT stages)
  checkCompiled(R"(
graph @stft(%s: f32[2,50,2], %w: f32[12], %w32: f32[32]) opset {"": 17} {
  %step: i64[] = dense<5>
  %y = STFT(%s, %step, %w) {name = "stft", onesided = 0}
  %z = STFT(%s, %step, %w32) {name = "stft32", onesided = 0}
  return %y, %z
}
)");
}

TEST(SignalLowering, StftErrorsNameNodeAndCase) {
  std::string e = compileError(R"(
graph @stft(%s: f32[1,64,1], %w: f32[16]) opset {"": 17} {
  %step: i64[] = dense<4>
  %fl: i64[] = dense<12>
  %y = STFT(%s, %step, %w, %fl) {name = "mismatch"} : f32[1,13,9,2]
  return %y
}
)");
  EXPECT_NE(e.find("'mismatch'"), std::string::npos) << e;
  EXPECT_NE(e.find("differs from the window length"), std::string::npos) << e;
}

//===----------------------------------------------------------------------===//
// Det
//===----------------------------------------------------------------------===//

TEST(SignalLowering, DetRandomBatches) {
  checkCompiled(R"(
graph @det(%x: f32[3,2,5,5], %y: f32[4,4], %z: f64[2,6,6], %w: f32[3,1,1]) opset {"": 17} {
  %a = Det(%x) {name = "batched"}
  %b = Det(%y) {name = "single"}
  %c = Det(%z) {name = "double"}
  %d = Det(%w) {name = "one_by_one"}
  return %a, %b, %c, %d
}
)");
}

TEST(SignalLowering, DetLargeMatrix) {
  // 24 x 24: 69 stages; values of a few hundred to thousands, checked relatively
  checkCompiled(R"(
graph @det(%x: f64[2,24,24]) opset {"": 17} {
  %a = Det(%x) {name = "big"}
  return %a
}
)");
}

TEST(SignalLowering, DetSingularIsZero) {
  const char *text = R"(
graph @det(%x: f32[4,3,3]) opset {"": 17} {
  %a = Det(%x) {name = "det"}
  return %a
}
)";
  // a zero first column, a zero column later, two equal rows, a zero matrix: each exactly 0
  Tensor x = matrices(DType::f32, {4, 3, 3}, {0, 1, 2, 0,   3,  4, 0,  5, 7, //
                                              1, 2, 0, 3,   5,  0, -2, 7, 0, //
                                              1, 2, 3, 0.5, -1, 2, 1,  2, 3, //
                                              0, 0, 0, 0,   0,  0, 0,  0, 0});
  auto got = checkCompiled(text, {{"x", x}});
  const Tensor &d = got.at("a");
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(d.data<float>()[i], 0.0f) << i;
}

TEST(SignalLowering, DetNeedsPivoting) {
  const char *text = R"(
graph @det(%x: f64[4,4,4]) opset {"": 17} {
  %a = Det(%x) {name = "det"}
  return %a
}
)";
  // a 4-cycle permutation (det -1), the identity with rows 0 and 3 swapped (-1), a matrix with
  // a zero leading entry (2), and one with a 1e-12 leading entry (6 - 8e-12; without
  // pivoting, dividing by it would lose the digits)
  Tensor x =
      matrices(DType::f64, {4, 4, 4}, {0,     1, 0, 0, 0, 0, 1, 0, 0, 0,  0, 1, 1, 0, 0, 0, //
                                       0,     0, 0, 1, 0, 1, 0, 0, 0, 0,  1, 0, 1, 0, 0, 0, //
                                       0,     2, 1, 3, 1, 1, 0, 2, 4, -1, 2, 0, 3, 0, 1, 1, //
                                       1e-12, 1, 2, 3, 1, 1, 1, 1, 2, 3,  1, 2, 1, 2, 4, 7});
  auto got = checkCompiled(text, {{"x", x}});
  const double *d = got.at("a").data<double>();
  EXPECT_EQ(d[0], -1.0);
  EXPECT_EQ(d[1], -1.0);
  // the exact determinants (checkCompiled compared with the interpreter already)
  EXPECT_NEAR(d[2], 2.0, 1e-12);
  EXPECT_NEAR(d[3], 5.999999999992, 1e-12);
}

TEST(SignalLowering, DetErrorsNameNodeAndCase) {
  std::string e = compileError(R"(
graph @det(%x: f32[130,130]) opset {"": 17} {
  %a = Det(%x) {name = "huge"}
  return %a
}
)");
  EXPECT_NE(e.find("'huge'"), std::string::npos) << e;
  EXPECT_NE(e.find("130x130 matrix is larger than"), std::string::npos) << e;
  // 4096 matrices of 128 x 128: their stages would take 23 GB
  e = compileError(R"(
graph @det(%x: f32[4096,128,128]) opset {"": 17} {
  %a = Det(%x) {name = "many"}
  return %a
}
)");
  EXPECT_NE(e.find("'many'"), std::string::npos) << e;
  EXPECT_NE(e.find("bytes of stages; expected at most"), std::string::npos) << e;
}
