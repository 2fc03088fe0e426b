//===- RuntimeAxesLoweringTest.cpp - ReduceSum / CumSum with run-time axes, compiled ===//
//
// ReduceSum (opset 13+) whose axes and CumSum whose axis are graph inputs, not constants
// (lib/Graph/Ops/Reduction.cpp, docs/lowering.md "Axes given at run time"): each graph is
// compiled end to end (tessel::compileModel at -O3, the artifact run by the runtime) and
// compared with the reference interpreter on the same inputs (random f32 data, the axes given).
// ReduceSum: keepdims 1 and 0, one and several axes, negative axes, axes of extent 1, shapes
// that two sets of axes fit (the axes' values select at run time: each one is checked), empty
// axes with and without noop_with_empty_axes, and the errors (too many candidates, an output
// shape no reduction gives). CumSum: every axis chosen at run time (int64 and int32, 0-d and
// [1]), negative, exclusive, reverse, both; an out-of-range axis gives zeros.
//
//===----------------------------------------------------------------------===//
#include "CompileTestUtils.h"
#include "TestUtils.h"
#include "tessel/Compiler/Compile.h"
#include "tessel/Graph/Text.h"
#include "tessel/runtime/Model.h"

#include <gtest/gtest.h>

#include <cstring>
#include <map>
#include <string>
#include <vector>

using namespace tessel;

namespace {

using test::errorOf;

Tensor ints(DType dt, std::vector<int64_t> shape, const std::vector<int64_t> &v) {
  Tensor t(DType::i64, std::move(shape));
  EXPECT_EQ(size_t(t.numel()), v.size());
  if (!v.empty())
    std::memcpy(t.raw(), v.data(), v.size() * sizeof(int64_t));
  return dt == DType::i64 ? t : t.cast(dt);
}

Tensor axesOf(const std::vector<int64_t> &v) {
  return ints(DType::i64, {int64_t(v.size())}, v);
}

/// Compiles `text` and compares it with the interpreter, the named integer inputs given.
std::map<std::string, Tensor> checkCompiled(const std::string &text,
                                            std::map<std::string, Tensor> given) {
  test::CompareOptions o;
  o.seed = 11;
  o.given = std::move(given);
  return test::compileAndCompare(text, o).outputs;
}

/// A one-node ReduceSum graph over %x: f32[xs] with run-time %axes: i64[n] and output type `out`.
std::string reduceSum(const std::string &xs, int64_t n, const std::string &out, int keepdims,
                      int noop = 0) {
  return "graph @g(%x: f32[" + xs + "], %axes: i64[" + std::to_string(n) +
         "]) opset {\"\": 17} {\n  %y = ReduceSum(%x, %axes) {name = \"sum\", keepdims = " +
         std::to_string(keepdims) + ", noop_with_empty_axes = " + std::to_string(noop) +
         "} : f32[" + out + "]\n  return %y\n}\n";
}

/// A one-node CumSum graph over %x: f32[3,4,5] with a run-time axis of type `axisType`.
std::string cumSum(const std::string &axisType, int exclusive, int reverse) {
  return "graph @g(%x: f32[3,4,5], %axis: " + axisType +
         ") opset {\"\": 17} {\n  %y = CumSum(%x, %axis) {name = \"cs\", exclusive = " +
         std::to_string(exclusive) + ", reverse = " + std::to_string(reverse) +
         "}\n  return %y\n}\n";
}

/// The compile error of `text` ("" when it compiles).
std::string compileError(const std::string &text) {
  auto g = parseGraph(text, "test");
  return errorOf([&] { compileModel(*g, {}); });
}

} // namespace

//===----------------------------------------------------------------------===//
// ReduceSum
//===----------------------------------------------------------------------===//

TEST(RuntimeAxesLowering, ReduceSumKeepDims) {
  checkCompiled(reduceSum("3,4,5", 1, "3,1,5", 1), {{"axes", axesOf({1})}});
  checkCompiled(reduceSum("3,4,5", 2, "1,4,1", 1), {{"axes", axesOf({0, 2})}});
  checkCompiled(reduceSum("3,4,5", 2, "1,4,1", 1), {{"axes", axesOf({-1, -3})}});
  checkCompiled(reduceSum("3,4,5", 3, "1,1,1", 1), {{"axes", axesOf({2, 0, 1})}});
  // a reduced axis of extent 1 reduces to itself: only axis 2 is summed
  checkCompiled(reduceSum("3,1,5", 2, "3,1,1", 1), {{"axes", axesOf({1, 2})}});
  // the innermost axis, long enough for the two-stage row reduction
  checkCompiled(reduceSum("4,64", 1, "4,1", 1), {{"axes", axesOf({-1})}});
}

TEST(RuntimeAxesLowering, ReduceSumDropDims) {
  checkCompiled(reduceSum("2,3,4", 1, "2,4", 0), {{"axes", axesOf({1})}});
  checkCompiled(reduceSum("2,3,4", 1, "3,4", 0), {{"axes", axesOf({-3})}});
  checkCompiled(reduceSum("2,3,4", 2, "3", 0), {{"axes", axesOf({0, 2})}});
  checkCompiled(reduceSum("2,3,4", 2, "3", 0), {{"axes", axesOf({-1, 0})}});
  checkCompiled(reduceSum("2,3,4", 3, "", 0), {{"axes", axesOf({0, 1, 2})}});
  // axes of extent 1: [1,3,1,4] -> [3,4] and [1,3,4]
  checkCompiled(reduceSum("1,3,1,4", 2, "3,4", 0), {{"axes", axesOf({0, 2})}});
  checkCompiled(reduceSum("1,3,1,4", 1, "1,3,4", 0), {{"axes", axesOf({2})}});
}

TEST(RuntimeAxesLowering, ReduceSumAmbiguousShapesSelectAtRunTime) {
  // [3,2,2] -> [3,2] is axis 1 or axis 2 (the ONNX test's shapes); [3,3] -> [3] is axis 0 or
  // axis 1: both candidates are computed and the axes' values pick one, checked for each
  for (int64_t a : {1, 2, -1, -2})
    checkCompiled(reduceSum("3,2,2", 1, "3,2", 0), {{"axes", axesOf({a})}});
  for (int64_t a : {0, 1, -1})
    checkCompiled(reduceSum("3,3", 1, "3", 0), {{"axes", axesOf({a})}});
  // a 0-d axes tensor (one axis)
  std::string scalarAxes = reduceSum("3,3", 1, "3", 0);
  scalarAxes.replace(scalarAxes.find("i64[1]"), 6, "i64[]");
  for (int64_t a : {0, 1})
    checkCompiled(scalarAxes, {{"axes", ints(DType::i64, {}, {a})}});
  for (std::vector<int64_t> a : {std::vector<int64_t>{0, 1}, {1, 2}, {2, 0}, {-1, -2}})
    checkCompiled(reduceSum("2,2,2", 2, "2", 0), {{"axes", axesOf(a)}});
  // fused with an elementwise producer and consumer
  const char *fused = R"(
graph @g(%x: f32[3,2,2], %axes: i64[1]) opset {"": 17} {
  %e = Exp(%x) {name = "exp"}
  %s = ReduceSum(%e, %axes) {name = "sum", keepdims = 0} : f32[3,2]
  %y = Relu(%s) {name = "relu"}
  return %y
}
)";
  for (int64_t a : {1, 2})
    checkCompiled(fused, {{"axes", axesOf({a})}});
}

TEST(RuntimeAxesLowering, ReduceSumEmptyAxes) {
  // noop_with_empty_axes=1 and no axes: the identity
  auto out = checkCompiled(reduceSum("3,4", 0, "3,4", 1, 1), {{"axes", axesOf({})}});
  EXPECT_EQ(out.at("y").shape(), (std::vector<int64_t>{3, 4}));
  out = checkCompiled(reduceSum("3,4", 0, "3,4", 0, 1), {{"axes", axesOf({})}});
  EXPECT_EQ(out.at("y").shape(), (std::vector<int64_t>{3, 4}));
  // noop_with_empty_axes=0 and no axes: every axis is reduced
  checkCompiled(reduceSum("3,4", 0, "1,1", 1, 0), {{"axes", axesOf({})}});
  checkCompiled(reduceSum("3,4", 0, "", 0, 0), {{"axes", axesOf({})}});
  // with axes, noop_with_empty_axes changes nothing
  checkCompiled(reduceSum("3,4", 1, "1,4", 1, 1), {{"axes", axesOf({0})}});
}

TEST(RuntimeAxesLowering, ReduceSumErrors) {
  // 2^10 -> 2^5 with 5 run-time axes: 252 sets of axes fit, too many to select among
  std::string e = compileError(reduceSum("2,2,2,2,2,2,2,2,2,2", 5, "2,2,2,2,2", 0));
  EXPECT_NE(e.find("'sum' (ReduceSum)"), std::string::npos) << e;
  EXPECT_NE(e.find("ambiguous"), std::string::npos) << e;
  EXPECT_NE(e.find("reducing axes [5, 6, 7, 8, 9] or axes [4, 6, 7, 8, 9]"), std::string::npos)
      << e;
  EXPECT_NE(e.find("needs the axes as a constant"), std::string::npos) << e;
  // keepdims=1 and an output extent that is neither the input's nor 1
  e = compileError(reduceSum("3,4", 1, "2,4", 1));
  EXPECT_NE(e.find("output dim 0 should be 3 (kept) or 1 (reduced)"), std::string::npos) << e;
  // keepdims=0 and an output no set of axes gives
  e = compileError(reduceSum("3,4", 1, "5", 0));
  EXPECT_NE(e.find("no set of reduced axes of size 1 turns the input shape into the output shape"),
            std::string::npos)
      << e;
}

//===----------------------------------------------------------------------===//
// CumSum
//===----------------------------------------------------------------------===//

TEST(RuntimeAxesLowering, CumSumEachAxisAtRunTime) {
  for (int exclusive : {0, 1})
    for (int reverse : {0, 1}) {
      std::string text = cumSum("i64[]", exclusive, reverse);
      for (int64_t a : {0, 1, 2, -1, -2, -3}) {
        SCOPED_TRACE("axis " + std::to_string(a) + " exclusive " + std::to_string(exclusive) +
                     " reverse " + std::to_string(reverse));
        checkCompiled(text, {{"axis", ints(DType::i64, {}, {a})}});
      }
    }
}

TEST(RuntimeAxesLowering, CumSumInt32AndOneElementAxis) {
  for (int64_t a : {0, 2, -2})
    checkCompiled(cumSum("i32[]", 0, 0), {{"axis", ints(DType::i32, {}, {a})}});
  for (int64_t a : {1, -1})
    checkCompiled(cumSum("i64[1]", 1, 1), {{"axis", ints(DType::i64, {1}, {a})}});
}

TEST(RuntimeAxesLowering, CumSumOutOfRangeAxisGivesZeros) {
  // the reference interpreter errors; the compiled kernel cannot, and gives zeros
  auto g = parseGraph(cumSum("i64[]", 0, 0), "test");
  CompiledModel cm = compileModel(*g, {});
  runtime::Model m = runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size());
  for (int64_t a : {3, -4, 100}) {
    std::vector<runtime::HostTensor> ins;
    for (const runtime::TensorDesc &d : m.inputs()) {
      runtime::HostTensor h(d);
      if (d.name == "axis") {
        std::memcpy(h.bytes.data(), &a, sizeof(a));
      } else {
        for (size_t i = 0; i < h.bytes.size() / sizeof(float); ++i) {
          float v = 1.0f + float(i);
          std::memcpy(h.bytes.data() + i * sizeof(float), &v, sizeof(v));
        }
      }
      ins.push_back(std::move(h));
    }
    auto got = m.run(ins);
    ASSERT_EQ(got.size(), 1u);
    ASSERT_EQ(got[0].bytes.size(), size_t(60 * sizeof(float)));
    for (size_t i = 0; i < 60; ++i) {
      float v;
      std::memcpy(&v, got[0].bytes.data() + i * sizeof(float), sizeof(v));
      EXPECT_EQ(v, 0.0f) << "axis " << a << " element " << i;
    }
  }
}
