//===- CompileHalfTest.cpp - f16 and bf16 in compiled models ------------------------===//
//
// Small graphs with f16 and bf16 values compiled (tessel::compileModel, run through the
// runtime) and compared bit for bit with the reference interpreter: elementwise arithmetic
// (each op computed in f32 and rounded to nearest even, as the reference kernels do), casts
// between f32, f64, f16, bf16 and integers, max/min, and a max reduction, on values that
// round (halfway cases), overflow to infinity, NaN, signed zeros and subnormals. A node that
// sums f16/bf16 values is lowered at f32 and rounded once (checked within an ulp).
//
//===----------------------------------------------------------------------===//

#include "CompileTestUtils.h"
#include "TestUtils.h"

#include <cstdio>
#include <initializer_list>

namespace tessel {
namespace {

Tensor halfBits(std::vector<int64_t> shape, std::initializer_list<uint16_t> bits, DType dt) {
  Tensor t(dt, std::move(shape));
  EXPECT_EQ(size_t(t.numel()), bits.size());
  size_t i = 0;
  for (uint16_t b : bits) {
    if (dt == DType::f16)
      t.data<Float16>()[i++].bits = b;
    else
      t.data<BFloat16>()[i++].bits = b;
  }
  return t;
}

Tensor floats(std::vector<int64_t> shape, std::initializer_list<float> values) {
  Tensor t(DType::f32, std::move(shape));
  EXPECT_EQ(size_t(t.numel()), values.size());
  size_t i = 0;
  for (float v : values)
    t.data<float>()[i++] = v;
  return t;
}

std::string hexBytes(const uint8_t *p, size_t n) {
  std::string s;
  char buf[4];
  for (size_t i = n; i-- > 0;) { // little endian: most significant byte first
    std::snprintf(buf, sizeof buf, "%02x", p[i]);
    s += buf;
  }
  return s;
}

/// Compiles `text` at -O3, runs it through the runtime on `given` and expects every output
/// to have the interpreter's bytes exactly (NaN payloads included); reports the first
/// differing elements in hex.
void expectBitwise(const std::string &text, const std::map<std::string, Tensor> &given) {
  auto ref = parseGraph(text, "test");
  auto g = parseGraph(text, "test");
  CompileOptions opts;
  opts.optLevel = 3;
  CompiledModel cm = compileModel(*g, opts);
  runtime::Model m = runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size());
  std::map<std::string, Object> refIn;
  std::vector<runtime::HostTensor> ins;
  for (const runtime::TensorDesc &d : m.inputs()) {
    runtime::HostTensor h(d);
    const Tensor &t = given.at(d.name);
    ASSERT_EQ(uint64_t(t.nbytes()), h.bytes.size()) << d.name;
    std::memcpy(h.bytes.data(), t.raw(), h.bytes.size());
    refIn[d.name] = Object(t);
    ins.push_back(std::move(h));
  }
  auto want = Interpreter(*ref).run(refIn);
  auto got = m.run(ins);
  ASSERT_EQ(got.size(), ref->outputs.size());
  for (const runtime::HostTensor &h : got) {
    const Tensor &w = want.at(h.desc.name).tensor;
    ASSERT_EQ(uint64_t(w.nbytes()), h.bytes.size()) << h.desc.name;
    const size_t es = dtypeSize(w.dtype());
    const auto *gb = h.bytes.data();
    const auto *wb = static_cast<const uint8_t *>(w.raw());
    int bad = 0;
    for (int64_t i = 0; i < w.numel() && bad < 8; ++i)
      if (std::memcmp(gb + i * es, wb + i * es, es) != 0) {
        ++bad;
        ADD_FAILURE() << h.desc.name << "[" << i << "] (" << dtypeName(w.dtype()) << "): got 0x"
                      << hexBytes(gb + i * es, es) << ", expected 0x" << hexBytes(wb + i * es, es);
      }
  }
}

// f16 operands: ties to even, overflow to inf, inf - inf, NaN (quiet and signaling), signed
// zeros, subnormals (products that round to zero or to even), the largest finite value.
const std::vector<int64_t> kShape = {2, 8};
Tensor halfA() {
  return halfBits(kShape,
                  {0x3c00, 0x3c01, 0x7bff, 0x7c00, 0xfc00, 0x7e00, 0x7d01, 0x8000, //
                   0x0001, 0x0003, 0x0400, 0x3555, 0xc000, 0x03ff, 0x7bff, 0x0000},
                  DType::f16);
}
Tensor halfB() {
  return halfBits(kShape,
                  {0x1000, 0x1000, 0x4c00, 0xfc00, 0x3c00, 0x3c00, 0x0000, 0x0000, //
                   0x0001, 0x3800, 0x3800, 0x3555, 0x3c00, 0x0001, 0x4000, 0x8000},
                  DType::f16);
}
// the same for bf16 (0x3b80 is half a unit in the last place of 1.0)
Tensor bfA() {
  return halfBits(kShape,
                  {0x3f80, 0x3f81, 0x7f7f, 0x7f80, 0xff80, 0x7fc0, 0x7fa1, 0x8000, //
                   0x0001, 0x0003, 0x0080, 0x3eab, 0xc000, 0x007f, 0x7f7f, 0x0000},
                  DType::bf16);
}
Tensor bfB() {
  return halfBits(kShape,
                  {0x3b80, 0x3b80, 0x7f00, 0xff80, 0x3f80, 0x3f80, 0x0000, 0x0000, //
                   0x0001, 0x3f00, 0x3f00, 0x3eab, 0x3f80, 0x0001, 0x4000, 0x8000},
                  DType::bf16);
}

std::string binaryGraph(const char *dt, const char *op) {
  return std::string("graph @g(%a: ") + dt + "[2,8], %b: " + dt +
         "[2,8]) opset {\"\": 17} {\n  %y = " + op + "(%a, %b) {name = \"op\"}\n  return %y\n}\n";
}

TEST(CompileHalf, ArithmeticRoundsLikeTheInterpreter) {
  for (const char *op : {"Add", "Sub", "Mul", "Div", "Max", "Min"}) {
    SCOPED_TRACE(op);
    expectBitwise(binaryGraph("f16", op), {{"a", halfA()}, {"b", halfB()}});
    expectBitwise(binaryGraph("bf16", op), {{"a", bfA()}, {"b", bfB()}});
  }
}

TEST(CompileHalf, FusedChainRoundsAfterEachOp) {
  // Add, Sub, Mul and Relu fuse into one kernel; each node's result is rounded as the
  // interpreter rounds the tensor it writes: (1 + half an ulp) - 1 is 0, not half an ulp.
  for (const char *dt : {"f16", "bf16"}) {
    SCOPED_TRACE(dt);
    std::string text = std::string("graph @g(%a: ") + dt + "[2,8], %b: " + dt +
                       "[2,8]) opset {\"\": 17} {\n"
                       "  %s = Add(%a, %b) {name = \"add\"}\n"
                       "  %d = Sub(%s, %a) {name = \"sub\"}\n"
                       "  %p = Mul(%d, %b) {name = \"mul\"}\n"
                       "  %y = Relu(%p) {name = \"relu\"}\n"
                       "  return %y\n}\n";
    bool f16 = std::string(dt) == "f16";
    expectBitwise(text, {{"a", f16 ? halfA() : bfA()}, {"b", f16 ? halfB() : bfB()}});
  }
}

TEST(CompileHalf, CastsBetweenFloatTypes) {
  // f32 values on and between f16/bf16 values: ties (1 + 2^-11, 1 + 3 * 2^-11), 65520 (rounds
  // to inf), just below it, half-subnormal ties (2^-25, 3 * 2^-25), tiny values, the smallest
  // normals, NaN, infinities, -0, large values that bf16 keeps and f16 does not.
  Tensor x = floats({3, 8}, {1.0f + 0x1p-11f, 1.0f + 3 * 0x1p-11f, 65520.0f, 65519.99f,
                             0x1p-25f, 3 * 0x1p-25f, 1e-8f, -0x1p-14f,
                             NAN, INFINITY, -INFINITY, -0.0f, 3.0e38f, -1.5e-40f, 0.1f, -2.5f,
                             1.0f + 0x1p-8f, 1.0f + 3 * 0x1p-8f, 0x1.fffffep127f, 1e-45f,
                             0x1p-133f, 12345.678f, -65504.0f, 0x1.ffcp-15f});
  const char *text = R"(
graph @casts(%x: f32[3,8]) opset {"": 17} {
  %h = Cast(%x) {name = "to_f16", to = 10}
  %b = Cast(%x) {name = "to_bf16", to = 16}
  %hb = Cast(%h) {name = "f16_to_bf16", to = 16}
  %bh = Cast(%b) {name = "bf16_to_f16", to = 10}
  %hf = Cast(%h) {name = "f16_to_f32", to = 1}
  %bf = Cast(%b) {name = "bf16_to_f32", to = 1}
  %hd = Cast(%h) {name = "f16_to_f64", to = 11}
  %dh = Cast(%hd) {name = "f64_to_f16", to = 10}
  %db = Cast(%hd) {name = "f64_to_bf16", to = 16}
  return %h, %b, %hb, %bh, %hf, %bf, %hd, %dh, %db
}
)";
  expectBitwise(text, {{"x", x}});
}

TEST(CompileHalf, CastsToAndFromIntegers) {
  Tensor h = halfBits({8}, {0x3c00, 0xc500, 0x7bff, 0x3800, 0x3e00, 0xbe00, 0x0001, 0x4b00},
                      DType::f16);
  Tensor n(DType::i64, {8});
  const int64_t iv[8] = {0, 1, -3, 2049, 65519, 65520, 1 << 20, (int64_t(1) << 53) + 1};
  for (int i = 0; i < 8; ++i)
    n.data<int64_t>()[i] = iv[i];
  const char *text = R"(
graph @ints(%h: f16[8], %n: i64[8]) opset {"": 17} {
  %i = Cast(%h) {name = "f16_to_i32", to = 6}
  %nh = Cast(%n) {name = "i64_to_f16", to = 10}
  %nb = Cast(%n) {name = "i64_to_bf16", to = 16}
  %bb = Cast(%h) {name = "f16_to_bool", to = 9}
  %bh = Cast(%bb) {name = "bool_to_f16", to = 10}
  return %i, %nh, %nb, %bh
}
)";
  expectBitwise(text, {{"h", h}, {"n", n}});
}

TEST(CompileHalf, MaxReductionAndRelu) {
  // ReduceMax over the last axis and Relu, bit for bit with infinities, and through
  // compileAndCompare with tolerance 0 on finite values (its value comparison fails on inf).
  Tensor x = halfBits({2, 8},
                      {0x3c00, 0xbc00, 0x7bff, 0x0001, 0x8001, 0xfc00, 0x3555, 0x4000, //
                       0x8000, 0xc500, 0x0000, 0x7c00, 0x03ff, 0xfbff, 0x3801, 0x1000},
                      DType::f16);
  const char *text = R"(
graph @red(%x: f16[2,8]) opset {"": 17} {
  %m = ReduceMax(%x) {name = "max", axes = [1], keepdims = 0}
  %r = Relu(%x) {name = "relu"}
  return %m, %r
}
)";
  expectBitwise(text, {{"x", x}});
  test::CompareOptions o;
  o.given = {{"x", halfBits({2, 8},
                            {0x3c00, 0xbc00, 0x7bff, 0x0001, 0x8001, 0xfbff, 0x3555, 0x4000, //
                             0x8000, 0xc500, 0x0000, 0x3801, 0x03ff, 0xfbff, 0x3801, 0x1000},
                            DType::f16)}};
  o.tol = 0;
  test::compileAndCompare(text, o);
  // the same on bf16
  Tensor y = halfBits({2, 8},
                      {0x3f80, 0xbf80, 0x7f7f, 0x0001, 0x8001, 0xff80, 0x3eab, 0x4000, //
                       0x8000, 0xc0a0, 0x0000, 0x7f80, 0x007f, 0xff7f, 0x3f01, 0x3b80},
                      DType::bf16);
  std::string bt = text;
  bt.replace(bt.find("f16[2,8]"), 8, "bf16[2,8]");
  expectBitwise(bt, {{"x", y}});
}

TEST(CompileHalf, OpsWrittenAsSeveralOperationsRoundOnce) {
  // Atanh is lowered as log((1 + x) / (1 - x)) / 2, HardSigmoid as max(0, min(1, a x + b)):
  // computed in f32 and rounded once, as the reference does (rounded after each operation,
  // atanh(0.001) was 26 f16 ulp off).
  Tensor x = halfBits({8}, {0x1419, 0x9419, 0x3800, 0xb800, 0x2e66, 0x3b33, 0x0001, 0x0000},
                      DType::f16);
  const char *text = R"(
graph @multi(%x: f16[8]) opset {"": 17} {
  %a = Atanh(%x) {name = "atanh"}
  %h = HardSigmoid(%x) {name = "hs", alpha = 0.3, beta = 0.6}
  return %a, %h
}
)";
  expectBitwise(text, {{"x", x}});
  Tensor y = halfBits({8}, {0x3a83, 0xba83, 0x3f00, 0xbf00, 0x3dcd, 0x3f66, 0x3c23, 0x0000},
                      DType::bf16);
  std::string bt = text;
  bt.replace(bt.find("f16[8]"), 6, "bf16[8]");
  expectBitwise(bt, {{"x", y}});
}

/// A node that sums or multiplies f16/bf16 values (reductions, MatMul, Conv, Softmax,
/// LayerNorm, CumSum) is lowered at f32: inputs widened, outputs rounded once, as the reference
/// kernels compute. Results within two ulps of the narrow type of the interpreter's (the
/// accumulation order differs).
TEST(CompileHalf, SumsAndProductsAccumulateInF32) {
  for (const char *dt : {"f16", "bf16"}) {
    std::string text = R"(
graph @sums(%x: T[4,32], %w: T[32,16], %img: T[1,3,8,8], %k: T[4,3,3,3]) opset {"": 17} {
  %ax: i64[1] = dense<[1]>
  %s = ReduceSum(%x, %ax) {name = "sum", keepdims = 0}
  %p = ReduceProd(%x) {name = "prod", axes = [0], keepdims = 1}
  %m = MatMul(%x, %w) {name = "matmul"}
  %r = Relu(%m) {name = "relu"}
  %sm = Softmax(%x) {name = "softmax", axis = -1}
  %c = Conv(%img, %k) {name = "conv", pads = [1, 1, 1, 1]}
  %cs = CumSum(%x, %ax) {name = "cumsum"}
  %mean = ReduceMean(%x) {name = "mean", axes = [1], keepdims = 1}
  return %s, %p, %r, %sm, %c, %cs, %mean
}
)";
    for (size_t pos; (pos = text.find("T[")) != std::string::npos;)
      text.replace(pos, 1, dt);
    const DType d = std::string(dt) == "f16" ? DType::f16 : DType::bf16;
    test::CompareOptions o; // magnitudes in [0.5, 1.5]: products of 4 stay in range
    o.given = {{"x", test::randomTensor(d, {4, 32}, 11, 0.5, 1.5)},
               {"w", test::randomTensor(d, {32, 16}, 12, -1.5, -0.5)},
               {"img", test::randomTensor(d, {1, 3, 8, 8}, 13, 0.5, 1.5)},
               {"k", test::randomTensor(d, {4, 3, 3, 3}, 14, -1.5, 1.5)}};
    o.tol = d == DType::f16 ? 2e-3 : 1.6e-2; // two ulps of the narrow type
    test::CompareResult r = test::compileAndCompare(text, o);
    EXPECT_EQ(r.cm.fallbackNodes.size(), 0u) << dt;
    for (const CompiledKernel &k : r.cm.kernels)
      EXPECT_EQ(k.schedule.find("failed"), std::string::npos) << dt << " " << k.symbol << ": "
                                                              << k.schedule;
  }
}

} // namespace
} // namespace tessel
