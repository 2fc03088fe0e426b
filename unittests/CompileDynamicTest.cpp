//===- CompileDynamicTest.cpp - shapes decided by values, end to end ---------------===//
//
// NonZero, Compress, Unique and NonMaxSuppression compiled with tessel::compileModel (their
// DynamicKernels, lib/Graph/Ops), written to a .tsl with a dynamic-outputs section, loaded by
// the runtime and run: the outputs' actual shapes and values must be the interpreter's, through
// the HostTensor overload (which cuts each output to its shape) and the C API's
// tessel_run_dynamic. The kernels' own cases are in DynamicKernelTest.cpp. And inputs fixed to
// one value at compile time (CompileOptions::inputValues, `tessel compile --input-value`).
//
//===----------------------------------------------------------------------===//

#include "CompileTestUtils.h"
#include "TestUtils.h"
#include "tessel/runtime/tessel.h"

#include <gtest/gtest.h>

using namespace tessel;
using tessel::test::compileAndCompare;
using tessel::test::CompareOptions;

namespace {

Tensor f32Tensor(std::vector<int64_t> shape, std::vector<float> v) {
  Tensor t(DType::f32, shape);
  std::copy(v.begin(), v.end(), t.data<float>());
  return t;
}

/// The compiled model's outputs by name, with their shapes, after checking them against the
/// interpreter (compileAndCompare compares values and byte sizes).
std::map<std::string, Tensor> compileRun(const std::string &text, const CompareOptions &o) {
  test::CompareResult r = compileAndCompare(text, o);
  return r.outputs;
}

TEST(CompileDynamic, NonZeroOutputBesideAStaticOne) {
  const char *text = R"(
graph @g(%x: f32[3,4]) opset {"": 13} {
  %nz = NonZero(%x) {name = "nz"}
  %y = Relu(%x) {name = "relu"}
  return %nz, %y
}
)";
  CompareOptions o;
  o.given["x"] = f32Tensor({3, 4}, {0, 1, 0, 2, 0, 0, 0, 0, -3, 0, 4, 0});
  std::map<std::string, Tensor> out = compileRun(text, o);
  ASSERT_TRUE(out.count("nz"));
  EXPECT_EQ(out["nz"].shape(), (std::vector<int64_t>{2, 4}));
  EXPECT_EQ(out["nz"].toInt64Vector(), (std::vector<int64_t>{0, 0, 2, 2, 1, 3, 0, 2}));
  EXPECT_EQ(out["y"].shape(), (std::vector<int64_t>{3, 4}));

  // All zero and all non-zero: the two ends of the bound.
  o.given["x"] = Tensor(DType::f32, {3, 4});
  EXPECT_EQ(compileRun(text, o)["nz"].shape(), (std::vector<int64_t>{2, 0}));
  o.given["x"] = f32Tensor({3, 4}, std::vector<float>(12, 0.5f));
  EXPECT_EQ(compileRun(text, o)["nz"].shape(), (std::vector<int64_t>{2, 12}));
}

TEST(CompileDynamic, ArtifactRecordsTheBoundAndTheCApiReportsTheShape) {
  auto g = parseGraph(R"(
graph @g(%x: f32[8], %c: bool[8]) opset {"": 13} {
  %y = Compress(%x, %c) {name = "cmp", axis = 0}
  return %y
}
)",
                      "test");
  CompiledModel cm = compileModel(*g, CompileOptions{});
  tessel_model *m = nullptr;
  ASSERT_EQ(tessel_load_from_memory(cm.artifact.data(), cm.artifact.size(), &m), 0)
      << tessel_last_error();
  tessel_tensor info;
  ASSERT_EQ(tessel_output_info(m, 0, &info), 0);
  EXPECT_EQ(info.rank, 1);
  EXPECT_EQ(info.shape[0], 8); // the bound
  EXPECT_EQ(tessel_output_dynamic_axis(m, 0), 0);
  float x[8] = {1, 2, 3, 4, 5, 6, 7, 8}, y[8] = {};
  bool c[8] = {true, false, false, true, true, false, false, false};
  int64_t shape[1] = {8}, yShape[1] = {-1};
  tessel_tensor in[2] = {{"x", TESSEL_F32, 1, shape, x, sizeof x},
                         {"c", TESSEL_BOOL, 1, shape, c, sizeof c}};
  tessel_tensor out = {"y", TESSEL_F32, 1, shape, y, sizeof y};
  int64_t *shapes[1] = {yShape};
  ASSERT_EQ(tessel_run_dynamic(m, in, 2, &out, 1, shapes), 0) << tessel_last_error();
  EXPECT_EQ(yShape[0], 3);
  EXPECT_EQ(y[0], 1.0f);
  EXPECT_EQ(y[1], 4.0f);
  EXPECT_EQ(y[2], 5.0f);
  EXPECT_EQ(tessel_run(m, in, 2, &out, 1), -1);
  EXPECT_ERROR_HAS(tessel_last_error(), "output 'y' has a shape that depends on the data");
  tessel_free(m);
}

TEST(CompileDynamic, UniqueWithOutputsLeftUnusedAndATensorFedToIt) {
  // Only Y and counts are model outputs: indices and inverse_indices live in the arena at their
  // bound's size. The input is computed by a kernel before Unique's.
  const char *text = R"(
graph @g(%x: f32[10]) opset {"": 13} {
  %r = Floor(%x) {name = "floor"}
  %u, %i, %inv, %cnt = Unique(%r) {name = "uniq", sorted = 1}
  return %u, %cnt
}
)";
  CompareOptions o;
  o.given["x"] = f32Tensor({10}, {3.5f, 1.2f, 3.9f, -2.0f, 1.0f, 7.0f, 3.0f, -2.5f, 1.5f, 0.0f});
  std::map<std::string, Tensor> out = compileRun(text, o);
  EXPECT_EQ(out["u"].toDoubleVector(), (std::vector<double>{-3, -2, 0, 1, 3, 7}));
  EXPECT_EQ(out["cnt"].toInt64Vector(), (std::vector<int64_t>{1, 1, 1, 3, 3, 1}));
}

TEST(CompileDynamic, NonMaxSuppressionWithRunTimeLimits) {
  // max_output_boxes_per_class and the thresholds are inputs: the bound is B*C*N rows.
  const char *text = R"(
graph @g(%boxes: f32[1,6,4], %scores: f32[1,1,6], %max: i64[1], %iou: f32[1], %thr: f32[1]) opset {"": 11} {
  %sel = NonMaxSuppression(%boxes, %scores, %max, %iou, %thr) {name = "nms"}
  return %sel
}
)";
  CompareOptions o;
  o.given["boxes"] = f32Tensor({1, 6, 4}, {0.5f, 0.5f, 1.0f, 1.0f, 0.5f, 0.6f, 1.0f, 1.0f,
                                           0.5f, 0.4f, 1.0f, 1.0f, 0.5f, 10.5f, 1.0f, 1.0f,
                                           0.5f, 10.6f, 1.0f, 1.0f, 0.5f, 100.5f, 1.0f, 1.0f});
  o.given["scores"] = f32Tensor({1, 1, 6}, {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f});
  Tensor mx(DType::i64, {1});
  mx.data<int64_t>()[0] = 3;
  o.given["max"] = mx;
  o.given["iou"] = f32Tensor({1}, {0.5f});
  o.given["thr"] = f32Tensor({1}, {0.0f});
  std::map<std::string, Tensor> out = compileRun(text, o);
  EXPECT_EQ(out["sel"].shape(), (std::vector<int64_t>{3, 3}));
  // A hostile limit is clamped by the kernel, never written past the bound.
  mx.data<int64_t>()[0] = int64_t(1) << 62;
  o.given["max"] = mx;
  EXPECT_EQ(compileRun(text, o)["sel"].shape(), (std::vector<int64_t>{3, 3}));
  mx.data<int64_t>()[0] = -5;
  o.given["max"] = mx;
  EXPECT_EQ(compileRun(text, o)["sel"].shape(), (std::vector<int64_t>{0, 3}));
}

TEST(CompileDynamic, ValuesOfDataDependentShapeFlowThroughRowWiseNodes) {
  // torch.nonzero (NonZero -> Transpose), boxes picked by NonMaxSuppression (Gather of a column,
  // then of the boxes), Compress -> elementwise -> MatMul and -> Concat, and x[x > 0] (NonZero ->
  // Transpose -> GatherND): the varying axis moves through each node, and the model outputs
  // report the extent their source kernel found.
  const char *text = R"(
graph @g(%x: f32[3,4], %boxes: f32[1,6,4], %scores: f32[1,1,6], %c: bool[5], %m: f32[5,3], %w: f32[3,2]) opset {"": 13} {
  %nz = NonZero(%x) {name = "nz"}
  %idx = Transpose(%nz) {name = "tr"}
  %zero_f: f32[] = dense<0.0>
  %max: i64[1] = dense<[4]>
  %iou: f32[1] = dense<[0.5]>
  %sel = NonMaxSuppression(%boxes, %scores, %max, %iou) {name = "nms"}
  %two: i64[] = dense<2>
  %box = Gather(%sel, %two) {name = "col", axis = 1}
  %flat: i64[2] = dense<[6, 4]>
  %b2 = Reshape(%boxes, %flat) {name = "flat"}
  %picked = Gather(%b2, %box) {name = "pick", axis = 0}
  %rows = Compress(%m, %c) {name = "cmp", axis = 0}
  %r = Relu(%rows) {name = "relu"}
  %y = MatMul(%r, %w) {name = "mm"}
  %pos = Greater(%x, %zero_f) {name = "gt"}
  %pnz = NonZero(%pos) {name = "pnz"}
  %tuples = Transpose(%pnz) {name = "tuples"}
  %masked = GatherND(%x, %tuples) {name = "masked"}
  %both = Concat(%r, %rows) {name = "cat", axis = 1}
  return %idx, %picked, %y, %masked, %both
}
)";
  CompareOptions o;
  o.given["x"] = f32Tensor({3, 4}, {0, 1, 0, 2, 0, 0, 0, 0, -3, 0, 4, 0});
  o.given["boxes"] = f32Tensor({1, 6, 4}, {0.5f, 0.5f, 1.0f, 1.0f, 0.5f, 0.6f, 1.0f, 1.0f,
                                           0.5f, 0.4f, 1.0f, 1.0f, 0.5f, 10.5f, 1.0f, 1.0f,
                                           0.5f, 10.6f, 1.0f, 1.0f, 0.5f, 100.5f, 1.0f, 1.0f});
  o.given["scores"] = f32Tensor({1, 1, 6}, {0.9f, 0.75f, 0.6f, 0.95f, 0.5f, 0.3f});
  Tensor c(DType::boolean, {5});
  for (int i = 0; i < 5; ++i)
    c.data<bool>()[i] = i % 2 == 0;
  o.given["c"] = c;
  std::map<std::string, Tensor> out = compileRun(text, o);
  EXPECT_EQ(out["idx"].shape(), (std::vector<int64_t>{4, 2}));
  EXPECT_EQ(out["idx"].toInt64Vector(), (std::vector<int64_t>{0, 1, 0, 3, 2, 0, 2, 2}));
  EXPECT_EQ(out["picked"].shape(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(out["y"].shape(), (std::vector<int64_t>{3, 2}));
  EXPECT_EQ(out["masked"].toDoubleVector(), (std::vector<double>{1, 2, 4})); // x[x > 0]
  EXPECT_EQ(out["both"].shape(), (std::vector<int64_t>{3, 6}));
  // Nothing kept: every extent 0.
  o.given["x"] = Tensor(DType::f32, {3, 4});
  o.given["scores"] = f32Tensor({1, 1, 6}, std::vector<float>(6, 0.0f));
  o.given["c"] = Tensor(DType::boolean, {5});
  out = compileRun(text, o);
  EXPECT_EQ(out["idx"].shape(), (std::vector<int64_t>{0, 2}));
  EXPECT_EQ(out["y"].shape(), (std::vector<int64_t>{0, 2}));
}

TEST(CompileDynamic, ANodeThatCannotTakeADataDependentShapeIsAnError) {
  auto g = parseGraph(R"(
graph @g(%x: f32[3,4]) opset {"": 13} {
  %nz = NonZero(%x) {name = "nz"}
  %flat: i64[1] = dense<[-1]>
  %t = Reshape(%nz, %flat) {name = "rs"}
  return %t
}
)",
                      "test");
  std::string err = test::errorOf([&] { compileModel(*g, CompileOptions{}); });
  EXPECT_ERROR_HAS(err, "node 'nz' (NonZero): output 'nz' has a shape that depends on the data "
                        "([2,?]) and node 'rs' (Reshape) reads it, but op Reshape does not take "
                        "a value of data-dependent shape along that axis");
  // Two extents that different kernels decide do not meet in one node.
  g = parseGraph(R"(
graph @g(%x: f32[8], %a: bool[8], %b: bool[8]) opset {"": 13} {
  %p = Compress(%x, %a) {name = "p", axis = 0}
  %q = Compress(%x, %b) {name = "q", axis = 0}
  %s = Add(%p, %q) {name = "add"}
  return %s
}
)",
                 "test");
  EXPECT_ERROR_HAS(test::errorOf([&] { compileModel(*g, CompileOptions{}); }),
                   "it reads values whose extents two different kernels decide");
}

TEST(CompileInputValues, ARangeSizedByAnInputCompilesForItsValue) {
  // Range's limit is an input: the output's shape follows from its value.
  const char *text = R"(
graph @g(%n: i64[], %x: f32[]) opset {"": 13} {
  %zero: i64[] = dense<0>
  %one: i64[] = dense<1>
  %r = Range(%zero, %n, %one) {name = "range"}
  %f = Cast(%r) {name = "cast", to = 1}
  %y = Mul(%f, %x) {name = "mul"}
  return %y
}
)";
  auto g = parseGraph(text, "test");
  EXPECT_ERROR_HAS(test::errorOf([&] { compileModel(*g, CompileOptions{}); }),
                   "a compiled model needs static shapes");
  Tensor n(DType::i64, {});
  *n.data<int64_t>() = 5;
  CompareOptions o;
  o.compile.inputValues["n"] = n;
  o.given["n"] = n;
  o.given["x"] = f32Tensor({}, {0.5f});
  std::map<std::string, Tensor> out = compileRun(text, o);
  EXPECT_EQ(out["y"].toDoubleVector(), (std::vector<double>{0, 0.5, 1, 1.5, 2}));

  // The artifact keeps the input and checks its value at every run.
  auto h = parseGraph(text, "test");
  CompiledModel cm = compileModel(*h, o.compile);
  runtime::Model m = runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size());
  ASSERT_EQ(m.inputs().size(), 2u);
  EXPECT_EQ(m.contents().inputValues.size(), 1u);
  runtime::HostTensor hn(m.inputs()[0]), hx(m.inputs()[1]);
  *hn.data<int64_t>() = 6;
  EXPECT_ERROR_HAS(test::errorOf([&] { m.run({hn, hx}); }),
                   "input 'n' is 6, but the model was compiled for 5 only");
}

TEST(CompileInputValues, BadValuesNameTheInput) {
  const char *text = R"(
graph @g(%n: i64[], %x: f32[4]) opset {"": 13} {
  %y = Relu(%x) {name = "relu"}
  return %y
}
)";
  CompileOptions c;
  c.inputValues["m"] = Tensor(DType::i64, {});
  auto g = parseGraph(text, "test");
  EXPECT_ERROR_HAS(test::errorOf([&] { compileModel(*g, c); }),
                   "--input-value m: the model has no input 'm'; its inputs are: n, x");
  c.inputValues.clear();
  c.inputValues["n"] = Tensor(DType::i32, {});
  g = parseGraph(text, "test");
  EXPECT_ERROR_HAS(test::errorOf([&] { compileModel(*g, c); }),
                   "--input-value n: input 'n' has type i64[], the value is i32[]");
  c.inputValues.clear();
  c.inputValues["x"] = Tensor(DType::f32, {3});
  g = parseGraph(text, "test");
  EXPECT_ERROR_HAS(test::errorOf([&] { compileModel(*g, c); }),
                   "--input-value x: input 'x' has type f32[4], the value is f32[3]");
}

} // namespace
