//===- OpLoweringTest.cpp - op lowerings against the ONNX node tests ------===//
//
// For every ONNX conformance node test (/usr/share/libonnx-testdata/data/node/test_*) whose
// single node has a lowering: import it, treat its integer inputs as constants (as the compiler
// sees shapes/axes/pads after shape folding), lower the node to TE computes, build them with
// tessel::build (outermost output axis parallel) and compare with the expected outputs at
// rtol 1e-4 / atol 1e-5. Per-op pass/fail counts are printed; the cases in kKnownUnsupported
// must each fail with the stated error. Also: the docs table (docs/lowering.md) is current, and
// unsupported cases throw errors that name the node and the case.
//
//===----------------------------------------------------------------------===//
#include "tessel/Frontend/ONNX.h"
#include "tessel/Graph/Lowering.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/Loop/Evaluate.h"
#include "tessel/TE/Build.h"
#include "GraphTestUtils.h"
#include "TestUtils.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>

using namespace tessel;
namespace fs = std::filesystem;

namespace {

using test::errorOf;
using test::intAttr;
using test::intsAttr;
using test::stringAttr;

const char *kNodeTests = "/usr/share/libonnx-testdata/data/node";

/// Node tests whose case the lowering does not handle: each must fail with an Error containing
/// the given text (never silently wrong).
const std::map<std::string, std::string> kKnownUnsupported = {
#include "OpLoweringUnsupported.inc"
};


enum class Outcome { Skipped, Passed, Failed, Unsupported };

struct CaseResult {
  Outcome outcome = Outcome::Skipped;
  std::string op, detail;
};

bool closeEnough(const Tensor &got, const Tensor &want, std::string &why, double rtol = 1e-4) {
  if (got.shape() != want.shape()) {
    why = "shape " + got.shapeString() + " vs expected " + want.shapeString();
    return false;
  }
  std::vector<double> g = got.toDoubleVector(), w = want.toDoubleVector();
  bool exact = !isFloat(want.dtype());
  for (size_t i = 0; i < g.size(); ++i) {
    if (std::isnan(w[i]) && std::isnan(g[i]))
      continue;
    if (std::isinf(w[i]) && g[i] == w[i])
      continue;
    double tol = exact ? 0.0 : 1e-5 + rtol * std::fabs(w[i]);
    if (!(std::fabs(g[i] - w[i]) <= tol)) {
      std::ostringstream os;
      os << "element " << i << ": got " << g[i] << ", expected " << w[i];
      why = os.str();
      return false;
    }
  }
  return true;
}

/// Runs one node test; Skipped when it is not a single node with a lowering and static types.
CaseResult runNodeTest(const fs::path &dir) {
  CaseResult res;
  fs::path data = dir / "test_data_set_0";
  if (!fs::exists(dir / "model.onnx") || !fs::exists(data))
    return res;
  Model m;
  try {
    m = loadOnnx((dir / "model.onnx").string());
  } catch (const Error &) {
    return res; // the importer's business (the conformance list covers it)
  }
  Graph &g = *m.graph;
  if (g.nodes().size() != 1)
    return res;
  Node &n = *g.nodes()[0];
  res.op = n.opType;
  if (!hasLowering(n))
    return res;
  // The random ops' tests compare numpy's exact draws, which no other generator reproduces
  // (RandomLoweringTest checks the lowerings against the interpreter and statistics).
  if (n.opType == "Bernoulli" || n.opType == "Multinomial" || n.opType.starts_with("Random"))
    return res;
  // Inputs: the pb files in order of the required graph inputs; integer ones become constants.
  std::map<const Value *, Tensor> values;
  std::vector<const Value *> req = requiredInputs(g);
  for (size_t i = 0; i < req.size(); ++i) {
    fs::path p = data / ("input_" + std::to_string(i) + ".pb");
    if (!fs::exists(p))
      return res;
    Tensor t;
    try {
      t = readTensorProtoFile(p.string());
    } catch (const Error &) {
      return res;
    }
    if (isInteger(t.dtype()))
      const_cast<Value *>(req[i])->constant = t;
    values[req[i]] = t;
  }
  for (const Value *v : g.inputs)
    if (v->isConstant() && !values.count(v))
      values[v] = v->constant;
  try {
    inferShapes(g);
  } catch (const Error &) {
    return res; // the reference path does not accept it either
  }
  for (size_t i = 0; i < n.numOutputs(); ++i)
    if (n.output(i) && !(n.output(i)->type.isTensor() && n.output(i)->type.shape.isStatic()))
      return res;
  for (size_t i = 0; i < n.numInputs(); ++i)
    if (n.input(i) && !values.count(n.input(i)))
      return res;

  std::vector<void *> ptrs;
  std::vector<Tensor> outs;
  std::string err = errorOf([&] {
    LoweredNode ln = lowerNode(n);
    te::Schedule s = te::create_schedule(ln.definedOutputs());
    for (auto &t : ln.outputs)
      if (t.defined() && t.ndim() >= 2)
        s[t].parallel(t.axis(0));
    BuiltModule f = build(s, ln.args(), "llvm", "lowered_" + res.op);
    std::vector<RuntimeArg> args;
    for (size_t i = 0; i < n.numInputs(); ++i)
      if (n.input(i) && ln.inputUsed[i])
        args.emplace_back(values[n.input(i)].raw());
    for (size_t i = 0; i < n.numOutputs(); ++i)
      if (n.output(i)) {
        outs.emplace_back(n.output(i)->type.dtype, n.output(i)->type.shape.staticDims());
        args.emplace_back(outs.back().raw());
      }
    f.call(args);
  });
  if (!err.empty()) {
    res.outcome = Outcome::Unsupported;
    res.detail = err;
    return res;
  }
  // The interpreter's outputs, computed only when an output misses the data at rtol 1e-4: a
  // lowering must match the interpreter; where the interpreter itself is only within the
  // conformance tolerance (rtol 1e-3) of the data (GridSample bicubic: PyTorch's float
  // rounding), matching the interpreter at 1e-4 passes.
  std::optional<std::map<std::string, Object>> interp;
  auto interpOutputs = [&]() -> const std::map<std::string, Object> & {
    if (!interp) {
      g.outputs.clear();
      for (size_t i = 0; i < n.numOutputs(); ++i)
        if (n.output(i))
          g.outputs.push_back(n.output(i));
      std::map<std::string, Object> feed;
      for (auto &[v, t] : values)
        if (!v->isConstant())
          feed[v->name()] = Object(t);
      interp = Interpreter(g).run(feed);
    }
    return *interp;
  };
  size_t k = 0;
  for (size_t i = 0; i < n.numOutputs(); ++i) {
    if (!n.output(i))
      continue;
    // numbered by graph output (an omitted node output, e.g. GRU's Y, has no file)
    fs::path p = data / ("output_" + std::to_string(k) + ".pb");
    Tensor want = readTensorProtoFile(p.string());
    std::string why, why2;
    const Tensor &got = outs[k++];
    if (want.dtype() == DType::u16 && got.dtype() == DType::bf16) {
      // the ONNX test data stores bfloat16 outputs as their uint16 bits
      Tensor bits(DType::bf16, want.shape());
      std::memcpy(bits.raw(), want.raw(), size_t(want.nbytes()));
      want = bits;
    }
    if (closeEnough(got, want, why))
      continue;
    std::string err = errorOf([&] {
      const Tensor &oracle = interpOutputs().at(n.output(i)->name()).tensor;
      if (closeEnough(oracle, want, why2, 1e-3) && closeEnough(got, oracle, why2))
        why.clear();
    });
    if (!why.empty()) {
      res.outcome = Outcome::Failed;
      res.detail = "output " + std::to_string(i) + ": " + why + (err.empty() ? "" : " (" + err + ")");
      return res;
    }
  }
  res.outcome = Outcome::Passed;
  return res;
}

TEST(OpLowering, ConformanceNodeTests) {
  if (!fs::exists(kNodeTests))
    GTEST_SKIP() << kNodeTests << " is not installed (Debian: onnx test data)";
  std::vector<fs::path> dirs;
  for (auto &e : fs::directory_iterator(kNodeTests))
    if (e.is_directory())
      dirs.push_back(e.path());
  std::sort(dirs.begin(), dirs.end());
  struct Count {
    int passed = 0, failed = 0, unsupported = 0;
  };
  std::map<std::string, Count> perOp;
  int total = 0;
  for (auto &d : dirs) {
    std::string name = d.filename().string();
    if (name.find("_expanded") != std::string::npos)
      continue;
    CaseResult r = runNodeTest(d);
    if (r.outcome == Outcome::Skipped)
      continue;
    ++total;
    auto known = kKnownUnsupported.find(name);
    Count &c = perOp[r.op];
    if (r.outcome == Outcome::Passed) {
      ++c.passed;
      EXPECT_EQ(known, kKnownUnsupported.end())
          << name << " passes now: remove it from OpLoweringUnsupported.inc";
      continue;
    }
    if (r.outcome == Outcome::Unsupported && known != kKnownUnsupported.end()) {
      ++c.unsupported;
      EXPECT_NE(r.detail.find(known->second), std::string::npos)
          << name << ": expected an error containing '" << known->second << "', got: " << r.detail;
      continue;
    }
    ++c.failed;
    ADD_FAILURE() << name << " (" << r.op << ") "
                  << (r.outcome == Outcome::Failed ? "wrong values: " : "error: ") << r.detail;
  }
  std::printf("%-24s %6s %6s %11s\n", "op", "passed", "failed", "unsupported");
  for (auto &[op, c] : perOp)
    std::printf("%-24s %6d %6d %11d\n", op.c_str(), c.passed, c.failed, c.unsupported);
  std::printf("%d node tests of %zu ops lowered and checked\n", total, perOp.size());
  EXPECT_GT(total, 100);
}


/// A one-node graph `op` over f32 inputs of the given shapes (inference fills the output type).
struct OneNode {
  Graph g;
  Node *node = nullptr;
  OneNode(const std::string &op, const std::vector<std::vector<int64_t>> &shapes,
          std::map<std::string, Attribute> attrs = {}, DType dt = DType::f32) {
    g.opsets[""] = 17;
    std::vector<Value *> ins;
    for (size_t i = 0; i < shapes.size(); ++i) {
      Value *v = g.createValue("x" + std::to_string(i), Type::tensor(dt, Shape::of(shapes[i])));
      g.inputs.push_back(v);
      ins.push_back(v);
    }
    node = g.appendNode(op, ins, {"y"}, "n0");
    node->attrs = std::move(attrs);
    inferShapes(g);
  }
};

TEST(OpLowering, ErrorsNameNodeAndCase) {
  OneNode nz("NonZero", {{2, 2}}); // data-dependent output shape: no lowering
  std::string e = errorOf([&] { lowerNode(*nz.node); });
  EXPECT_NE(e.find("n0"), std::string::npos) << e;
  EXPECT_NE(e.find("has no lowering"), std::string::npos) << e;

  OneNode conv("Conv", {{1, 2, 5, 5}, {3, 2, 3, 3}}, {}, DType::i32);
  e = errorOf([&] { lowerNode(*conv.node); });
  EXPECT_NE(e.find("float inputs only"), std::string::npos) << e;

  OneNode str("Identity", {{4}}, {}, DType::string);
  e = errorOf([&] { lowerNode(*str.node); });
  EXPECT_NE(e.find("dtype str, which lowering does not support"), std::string::npos) << e;

  // an f16 sum is lowered at f32 (it would round at each step in f16): the sum stage is f32,
  // the output f16 (unittests/CompileHalfTest.cpp runs it)
  OneNode half("ReduceSum", {{4, 3}}, {{"keepdims", intAttr(0)}}, DType::f16);
  LoweredNode ln = lowerNode(*half.node);
  EXPECT_EQ(ln.outputs[0].dtype(), DType::f16);
  int sums = 0;
  for (const te::Tensor &t : ln.stages)
    if (t.op()->reduce) {
      ++sums;
      EXPECT_EQ(t.dtype(), DType::f32) << t.name();
    }
  EXPECT_GE(sums, 1);
}

TEST(OpLowering, DepthwiseConvMatchesInterpreter) {
  // 4 channels, group 4, pads and strides and dilations; checked against the interpreter.
  OneNode c("Conv", {{1, 4, 9, 8}, {4, 1, 3, 3}, {4}},
            {{"group", intAttr(4)},
             {"pads", intsAttr({1, 2, 1, 0})},
             {"strides", intsAttr({2, 1})},
             {"dilations", intsAttr({1, 2})}});
  std::vector<Tensor> in;
  unsigned seed = 7;
  for (auto *v : c.g.inputs) {
    Tensor t(DType::f32, v->type.shape.staticDims());
    for (int64_t i = 0; i < t.numel(); ++i) {
      seed = seed * 1103515245u + 12345u;
      t.data<float>()[i] = float((seed >> 8) % 2000) / 1000.0f - 1.0f;
    }
    in.push_back(t);
  }
  c.g.outputs = {c.node->output(0)};
  Interpreter interp(c.g);
  std::vector<Object> want = interp.runOrdered({Object(in[0]), Object(in[1]), Object(in[2])});
  LoweredNode ln = lowerNode(*c.node);
  BuiltModule f = build(te::create_schedule(ln.definedOutputs()), ln.args(), "llvm", "conv_dw");
  Tensor y(DType::f32, c.node->output(0)->type.shape.staticDims());
  f({in[0].raw(), in[1].raw(), in[2].raw(), y.raw()});
  std::string why;
  EXPECT_TRUE(closeEnough(y, want[0].tensor, why)) << why;
}

//===----------------------------------------------------------------------===//
// Lowerings against the interpreter on cases the node tests leave out: duplicate and negative
// scatter indices, reductions, per-axis quantization with saturation, zero points per row and
// per channel, groups/pads/strides/dilations, LpPool, integer Resize. Inputs are random (never
// zeros) or chosen to hit the edge; non-constant inputs are kernel arguments, as compiled.
//===----------------------------------------------------------------------===//

/// One input of a checked node: its value and whether the lowering sees it as a constant.
struct In {
  Tensor t;
  bool constant = false;
};

using test::randomTensor;

template <class T> Tensor tensorOf(std::vector<int64_t> shape, std::vector<T> v) {
  return Tensor::fromVector<T>(std::move(shape), std::move(v));
}

Attribute floatAttr(float v) {
  Attribute a;
  a.kind = Attribute::Kind::Float;
  a.f = v;
  return a;
}

/// Builds the one-node graph `op` over `ins`, runs it in the interpreter and lowered (built
/// with the outermost axis parallel, as the node tests), and expects the same outputs (integers
/// exactly, floats within rtol 1e-4 / atol 1e-5).
void expectLoweringMatchesInterpreter(const std::string &op, const std::vector<In> &ins,
                                      std::map<std::string, Attribute> attrs, int64_t opset = 17,
                                      size_t numOutputs = 1,
                                      std::vector<int64_t> declaredShape = {}) {
  Graph g;
  g.opsets[""] = opset;
  std::vector<Value *> vals;
  std::map<std::string, Object> feed;
  for (size_t i = 0; i < ins.size(); ++i) {
    if (!ins[i].t.defined()) { // an omitted optional input
      vals.push_back(nullptr);
      continue;
    }
    Value *v = g.createValue("x" + std::to_string(i),
                             Type::tensor(ins[i].t.dtype(), Shape::of(ins[i].t.shape())));
    if (ins[i].constant)
      v->constant = ins[i].t;
    else
      feed[v->name()] = Object(ins[i].t);
    g.inputs.push_back(v);
    vals.push_back(v);
  }
  std::vector<std::string> outNames;
  for (size_t i = 0; i < numOutputs; ++i)
    outNames.push_back("y" + std::to_string(i));
  Node *n = g.appendNode(op, vals, outNames, "n0");
  n->attrs = std::move(attrs);
  inferShapes(g);
  // a shape the model declares where inference cannot know it (a run-time scales input): for
  // output 0, and for the other outputs whose inferred shape is not static (TopK's indices)
  if (!declaredShape.empty())
    for (size_t i = 0; i < numOutputs; ++i)
      if (i == 0 || !n->output(i)->type.shape.isStatic())
        n->output(i)->type = Type::tensor(n->output(i)->type.dtype, Shape::of(declaredShape));
  for (size_t i = 0; i < numOutputs; ++i)
    g.outputs.push_back(n->output(i));
  Interpreter interp(g);
  std::map<std::string, Object> want = interp.run(feed);
  LoweredNode ln = lowerNode(*n);
  te::Schedule sch = te::create_schedule(ln.definedOutputs());
  for (auto &t : ln.outputs)
    if (t.defined() && t.ndim() >= 2)
      sch[t].parallel(t.axis(0));
  BuiltModule f = build(sch, ln.args(), "llvm", "checked_" + op);
  std::vector<RuntimeArg> args;
  for (size_t i = 0; i < ins.size(); ++i)
    if (ins[i].t.defined() && ln.inputUsed[i])
      args.emplace_back(const_cast<Tensor &>(ins[i].t).raw());
  std::vector<Tensor> outs;
  outs.reserve(numOutputs);
  for (size_t i = 0; i < numOutputs; ++i) {
    outs.emplace_back(n->output(i)->type.dtype, n->output(i)->type.shape.staticDims());
    args.emplace_back(outs.back().raw());
  }
  f.call(args);
  for (size_t i = 0; i < numOutputs; ++i) {
    std::string why;
    EXPECT_TRUE(closeEnough(outs[i], want.at(outNames[i]).tensor, why))
        << op << " output " << i << ": " << why;
  }
}

TEST(OpLowering, ScatterElementsDuplicateAndNegativeIndices) {
  Tensor data = randomTensor(DType::f32, {3, 5}, 1);
  Tensor idx = tensorOf<int64_t>({3, 4}, {0, -1, 4, 0, 2, 2, -3, 1, -5, 3, 3, 4});
  Tensor upd = randomTensor(DType::f32, {3, 4}, 2, 1, 3);
  // reduction none: the last update of a duplicate wins (the reference's order)
  expectLoweringMatchesInterpreter("ScatterElements", {{data}, {idx}, {upd}}, {{"axis", intAttr(1)}});
  expectLoweringMatchesInterpreter("Scatter", {{data}, {idx}, {upd}}, {{"axis", intAttr(1)}}, 9);
  for (const char *red : {"add", "mul", "max", "min"})
    expectLoweringMatchesInterpreter("ScatterElements", {{data}, {idx}, {upd}},
                                     {{"axis", intAttr(-1)}, {"reduction", stringAttr(red)}}, 16);
  // axis 0 with indices smaller than data in the other dim, integer data
  Tensor di = randomTensor(DType::i32, {4, 3}, 3, -50, 50);
  Tensor i0 = tensorOf<int32_t>({2, 2}, {3, -4, 3, 1});
  Tensor ui = randomTensor(DType::i32, {2, 2}, 4, -9, 9);
  expectLoweringMatchesInterpreter("ScatterElements", {{di}, {i0}, {ui}}, {});
  expectLoweringMatchesInterpreter("ScatterElements", {{di}, {i0}, {ui}},
                                   {{"reduction", stringAttr("add")}}, 16);
}

TEST(OpLowering, ScatterNDDuplicatesAndGatherNDBatchDims) {
  Tensor data = randomTensor(DType::f32, {4, 3, 2}, 5);
  Tensor idx = tensorOf<int64_t>({4, 1}, {1, -3, 1, 3});
  Tensor upd = randomTensor(DType::f32, {4, 3, 2}, 6, 1, 2);
  expectLoweringMatchesInterpreter("ScatterND", {{data}, {idx}, {upd}}, {});
  for (const char *red : {"add", "mul"})
    expectLoweringMatchesInterpreter("ScatterND", {{data}, {idx}, {upd}},
                                     {{"reduction", stringAttr(red)}}, 16);
  Tensor idx2 = tensorOf<int64_t>({2, 2, 2}, {0, 1, -1, 2, 0, 1, 0, 1});
  Tensor upd2 = randomTensor(DType::f32, {2, 2, 2}, 7);
  expectLoweringMatchesInterpreter("ScatterND", {{data}, {idx2}, {upd2}}, {});
  // one index tuple (indices of rank 1): no reduction over tuples
  Tensor one = tensorOf<int64_t>({2}, {-1, 2});
  expectLoweringMatchesInterpreter("ScatterND", {{data}, {one}, {tensorOf<float>({2}, {5.0f, -2.0f})}}, {});
  expectLoweringMatchesInterpreter("ScatterND", {{data}, {one}, {tensorOf<float>({2}, {5.0f, -2.0f})}},
                                   {{"reduction", stringAttr("mul")}}, 16);
  Tensor gd = randomTensor(DType::i64, {2, 3, 4}, 8, -100, 100);
  Tensor gi = tensorOf<int64_t>({2, 2, 1}, {2, -1, 0, 1});
  expectLoweringMatchesInterpreter("GatherND", {{gd}, {gi}}, {{"batch_dims", intAttr(1)}});
  expectLoweringMatchesInterpreter("Gather", {{gd}, {tensorOf<int64_t>({}, {-2})}}, {{"axis", intAttr(1)}});
  expectLoweringMatchesInterpreter("Gather", {{gd}, {tensorOf<int32_t>({}, {1}), true}}, {});
  expectLoweringMatchesInterpreter("GatherElements", {{gd}, {tensorOf<int32_t>({2, 1, 4}, {0, -1, 2, 1, 2, 2, -3, 0})}},
                                   {{"axis", intAttr(1)}});
}

TEST(OpLowering, QuantizeDequantizePerAxisSaturate) {
  // values that saturate both ways and halves that round to even
  Tensor x = randomTensor(DType::f32, {2, 3, 4}, 9, -300, 300);
  x.data<float>()[0] = 2.5f;
  x.data<float>()[1] = -3.5f;
  x.data<float>()[2] = 1e9f;
  Tensor scale = tensorOf<float>({3}, {1.0f, 0.5f, 2.0f});
  Tensor zp8 = tensorOf<int8_t>({3}, {0, -10, 7});
  Tensor zpu = tensorOf<uint8_t>({3}, {0, 128, 255});
  expectLoweringMatchesInterpreter("QuantizeLinear", {{x}, {scale}, {zp8}}, {{"axis", intAttr(1)}}, 13);
  expectLoweringMatchesInterpreter("QuantizeLinear", {{x}, {scale}, {zpu}}, {{"axis", intAttr(1)}}, 13);
  expectLoweringMatchesInterpreter("QuantizeLinear", {{x}, {tensorOf<float>({}, {0.37f})}}, {}, 10);
  Tensor q = randomTensor(DType::i8, {2, 3, 4}, 10, -128, 127);
  expectLoweringMatchesInterpreter("DequantizeLinear", {{q}, {scale}, {zp8}}, {{"axis", intAttr(1)}}, 13);
  Tensor q32 = randomTensor(DType::i32, {5}, 11, -100000, 100000);
  expectLoweringMatchesInterpreter("DequantizeLinear", {{q32}, {tensorOf<float>({}, {0.01f})}}, {}, 13);
}

TEST(OpLowering, IntegerMatMulAndConvZeroPoints) {
  Tensor a = randomTensor(DType::u8, {2, 3, 4}, 12, 0, 255);
  Tensor b = randomTensor(DType::i8, {4, 5}, 13, -128, 127);
  Tensor az = tensorOf<uint8_t>({3}, {3, 200, 0});
  Tensor bz = tensorOf<int8_t>({5}, {0, -7, 100, 1, -128});
  expectLoweringMatchesInterpreter("MatMulInteger", {{a}, {b}, {az}, {bz}}, {}, 10);
  expectLoweringMatchesInterpreter("MatMulInteger", {{randomTensor(DType::u8, {4}, 14, 0, 255)}, {b}}, {}, 10);
  // QLinearMatMul with per-row a/y parameters and per-column b parameters
  Tensor a2 = randomTensor(DType::u8, {3, 4}, 15, 0, 255);
  expectLoweringMatchesInterpreter(
      "QLinearMatMul",
      {{a2}, {tensorOf<float>({3}, {0.02f, 0.01f, 0.05f})}, {az}, {b},
       {tensorOf<float>({5}, {0.1f, 0.2f, 0.05f, 0.3f, 0.01f})}, {bz},
       {tensorOf<float>({3}, {1.5f, 2.0f, 0.7f})}, {tensorOf<uint8_t>({3}, {128, 0, 10})}},
      {}, 10);
  Tensor x = randomTensor(DType::u8, {1, 4, 6, 5}, 16, 0, 255);
  Tensor w = randomTensor(DType::u8, {4, 2, 3, 3}, 17, 0, 255);
  std::map<std::string, Attribute> geo = {{"group", intAttr(2)},
                                          {"pads", intsAttr({1, 0, 2, 1})},
                                          {"strides", intsAttr({2, 1})},
                                          {"dilations", intsAttr({1, 2})}};
  expectLoweringMatchesInterpreter("ConvInteger",
                                   {{x}, {w}, {tensorOf<uint8_t>({}, {17})},
                                    {tensorOf<uint8_t>({4}, {0, 128, 255, 3})}},
                                   geo, 10);
  expectLoweringMatchesInterpreter(
      "QLinearConv",
      {{x}, {tensorOf<float>({}, {0.02f})}, {tensorOf<uint8_t>({}, {17})}, {w},
       {tensorOf<float>({4}, {0.01f, 0.02f, 0.005f, 0.03f})}, {tensorOf<uint8_t>({4}, {0, 128, 255, 3})},
       {tensorOf<float>({}, {0.9f})}, {tensorOf<uint8_t>({}, {100})},
       {tensorOf<int32_t>({4}, {-500, 0, 1000, 42})}},
      geo, 10);
}

TEST(OpLowering, ConvTransposeAndLpPools) {
  Tensor x = randomTensor(DType::f32, {1, 4, 3, 5}, 18);
  Tensor w = randomTensor(DType::f32, {4, 3, 3, 2}, 19);
  Tensor b = randomTensor(DType::f32, {6}, 20);
  expectLoweringMatchesInterpreter("ConvTranspose", {{x}, {w}, {b}},
                                   {{"group", intAttr(2)},
                                    {"strides", intsAttr({2, 3})},
                                    {"dilations", intsAttr({2, 1})},
                                    {"pads", intsAttr({1, 0, 0, 2})},
                                    {"output_padding", intsAttr({1, 2})}});
  Tensor p = randomTensor(DType::f32, {2, 3, 7, 6}, 21);
  for (int64_t order : {1, 2, 3})
    expectLoweringMatchesInterpreter("LpPool", {{p}},
                                     {{"kernel_shape", intsAttr({3, 2})},
                                      {"strides", intsAttr({2, 1})},
                                      {"pads", intsAttr({1, 1, 1, 0})},
                                      {"p", intAttr(order)}});
  expectLoweringMatchesInterpreter("GlobalLpPool", {{p}}, {{"p", intAttr(3)}});
  expectLoweringMatchesInterpreter("GlobalLpPool", {{p}}, {});
}

/// MaxPool's Indices output: the reference's first-maximum rule in tap order (ties on a small
/// integer grid), NaN taps (a window whose first in-bounds tap is NaN picks it; a later NaN never
/// wins), windows in the pads, dilations and strides, storage_order 0 and 1, 1-D to 3-D, f32,
/// f64 and int8.
TEST(OpLowering, MaxPoolIndices) {
  Tensor x = randomTensor(DType::f32, {2, 3, 6, 7}, 41, -3, 3);
  for (int64_t i = 0; i < x.numel(); ++i) // ties: values on a coarse grid
    x.data<float>()[i] = std::round(x.data<float>()[i]);
  x.data<float>()[0] = std::nanf("");                    // the first tap of window (0, 0)
  x.data<float>()[9] = std::nanf("");                    // a later tap of some windows
  x.data<float>()[50] = -std::numeric_limits<float>::infinity();
  for (int64_t order : {0, 1}) {
    expectLoweringMatchesInterpreter("MaxPool", {{x}},
                                     {{"kernel_shape", intsAttr({3, 2})},
                                      {"strides", intsAttr({2, 1})},
                                      {"pads", intsAttr({1, 1, 1, 0})},
                                      {"storage_order", intAttr(order)}},
                                     12, 2);
    expectLoweringMatchesInterpreter("MaxPool", {{x.cast(DType::f64)}},
                                     {{"kernel_shape", intsAttr({2, 3})},
                                      {"dilations", intsAttr({2, 2})},
                                      {"storage_order", intAttr(order)}},
                                     12, 2);
  }
  expectLoweringMatchesInterpreter("MaxPool", {{randomTensor(DType::i8, {1, 2, 9}, 42, -5, 5)}},
                                   {{"kernel_shape", intsAttr({3})}, {"strides", intsAttr({2})},
                                    {"pads", intsAttr({2, 1})}},
                                   12, 2);
  expectLoweringMatchesInterpreter("MaxPool", {{randomTensor(DType::f32, {1, 2, 4, 5, 3}, 43)}},
                                   {{"kernel_shape", intsAttr({2, 2, 2})},
                                    {"pads", intsAttr({1, 0, 1, 0, 1, 1})},
                                    {"storage_order", intAttr(1)}},
                                   12, 2);
}

/// BatchNormalization with statistics outputs: training mode (opset 15 training_mode = 1, and
/// opset 9 where asking for outputs 1-4 means training) gives the batch statistics, the
/// normalized output and the running ones as the reference; opset 15 in inference mode passes
/// the input mean and var through.
TEST(OpLowering, BatchNormTrainingMode) {
  for (DType dt : {DType::f32, DType::f64}) {
    Tensor x = randomTensor(dt, {2, 3, 4, 5}, 44, -2, 3);
    Tensor scale = randomTensor(dt, {3}, 45, 0.5, 1.5), bias = randomTensor(dt, {3}, 46);
    Tensor mean = randomTensor(dt, {3}, 47), var = randomTensor(dt, {3}, 48, 0.5, 2);
    std::vector<In> ins = {{x}, {scale}, {bias}, {mean}, {var}};
    expectLoweringMatchesInterpreter("BatchNormalization", ins,
                                     {{"training_mode", intAttr(1)}, {"momentum", floatAttr(0.8f)},
                                      {"epsilon", floatAttr(1e-3f)}},
                                     15, 3);
    expectLoweringMatchesInterpreter("BatchNormalization", ins, {}, 9, 5);
    expectLoweringMatchesInterpreter("BatchNormalization", ins, {{"training_mode", intAttr(0)}},
                                     15, 3);
  }
}

TEST(OpLowering, ResizeIntegerLinearAndSplitOneHot) {
  Tensor x = randomTensor(DType::u8, {1, 2, 3, 4}, 22, 0, 255);
  expectLoweringMatchesInterpreter(
      "Resize", {{x}, {tensorOf<float>({0}, {})}, {tensorOf<float>({4}, {1.0f, 1.0f, 1.7f, 0.6f}), true}},
      {{"mode", stringAttr("linear")}}, 13);
  expectLoweringMatchesInterpreter(
      "Resize", {{x}, {tensorOf<float>({0}, {})}, {tensorOf<float>({4}, {1.0f, 1.0f, 2.0f, 1.5f})}},
      {{"mode", stringAttr("cubic")}, {"coordinate_transformation_mode", stringAttr("align_corners")}}, 13,
      1, {1, 2, 6, 6});
  Tensor xf = randomTensor(DType::f32, {2, 3, 4}, 24);
  expectLoweringMatchesInterpreter(
      "Resize", {{xf}, {tensorOf<float>({6}, {0, 0, -0.3f, 1, 1, 1.2f})}, {tensorOf<float>({3}, {1.0f, 1.5f, 2.5f})}},
      {{"mode", stringAttr("linear")}, {"coordinate_transformation_mode", stringAttr("tf_crop_and_resize")},
       {"extrapolation_value", floatAttr(-7.0f)}}, 13, 1, {2, 4, 10});
  Tensor s = randomTensor(DType::f32, {2, 7, 3}, 23);
  expectLoweringMatchesInterpreter("Split", {{s}, {tensorOf<int64_t>({3}, {2, 4, 1}), true}},
                                   {{"axis", intAttr(1)}}, 13, 3);
  expectLoweringMatchesInterpreter("Split", {{s}}, {{"axis", intAttr(-1)}}, 11, 3);
  Tensor oi = tensorOf<int64_t>({2, 3}, {0, -1, 4, 7, -6, 2});
  expectLoweringMatchesInterpreter("OneHot", {{oi}, {tensorOf<float>({}, {5.0f}), true},
                                              {tensorOf<int32_t>({2}, {-3, 9})}},
                                   {{"axis", intAttr(1)}}, 11);
  expectLoweringMatchesInterpreter("OneHot", {{oi.cast(DType::f32)}, {tensorOf<int64_t>({1}, {5}), true},
                                              {tensorOf<float>({2}, {0.5f, 2.0f})}},
                                   {}, 11);
}

TEST(OpLowering, GridSampleEinsumDynamicQuantize) {
  Tensor x = randomTensor(DType::f32, {1, 2, 4, 5}, 25);
  Tensor grid = randomTensor(DType::f32, {1, 3, 4, 2}, 26, -1.7, 1.7); // some samples outside
  for (const char *mode : {"bilinear", "nearest", "bicubic"})
    for (const char *pad : {"zeros", "border", "reflection"})
      for (int64_t ac : {0, 1})
        expectLoweringMatchesInterpreter("GridSample", {{x}, {grid}},
                                         {{"mode", stringAttr(mode)},
                                          {"padding_mode", stringAttr(pad)},
                                          {"align_corners", intAttr(ac)}},
                                         16);
  Tensor a = randomTensor(DType::f32, {2, 3, 3}, 27), b = randomTensor(DType::f32, {3, 4}, 28);
  expectLoweringMatchesInterpreter("Einsum", {{a}, {b}}, {{"equation", stringAttr("...ij,jk->...ik")}}, 12);
  expectLoweringMatchesInterpreter("Einsum", {{a}}, {{"equation", stringAttr("bii->bi")}}, 12);
  expectLoweringMatchesInterpreter("Einsum", {{a}}, {{"equation", stringAttr("bij")}}, 12);
  expectLoweringMatchesInterpreter("Einsum", {{randomTensor(DType::i32, {3, 4}, 29, -5, 5)},
                                              {randomTensor(DType::i32, {4}, 30, -5, 5)}},
                                   {{"equation", stringAttr("ij,j->")}}, 12);
  // RoiAlign: rois partly outside the image, both modes and coordinate transformations
  Tensor rx = randomTensor(DType::f32, {2, 3, 6, 7}, 34);
  Tensor rois = tensorOf<float>({3, 4}, {0.5f, 1.0f, 5.5f, 4.0f, -2.0f, -1.5f, 3.0f, 9.0f, 2.0f, 2.0f, 2.2f, 2.1f});
  Tensor bidx = tensorOf<int64_t>({3}, {1, 0, 1});
  for (const char *mode : {"avg", "max"})
    for (const char *ctm : {"half_pixel", "output_half_pixel"})
      expectLoweringMatchesInterpreter("RoiAlign", {{rx}, {rois}, {bidx}},
                                       {{"mode", stringAttr(mode)},
                                        {"coordinate_transformation_mode", stringAttr(ctm)},
                                        {"output_height", intAttr(3)},
                                        {"output_width", intAttr(2)},
                                        {"sampling_ratio", intAttr(2)},
                                        {"spatial_scale", floatAttr(0.8f)}},
                                       16);
  // all-positive input (min clamps to 0), mixed signs, and a zero range
  for (auto [lo, hi] : {std::pair{0.5, 9.0}, std::pair{-3.0, 2.0}, std::pair{0.0, 0.0}})
    expectLoweringMatchesInterpreter("DynamicQuantizeLinear",
                                     {{randomTensor(DType::f32, {3, 7}, 31, lo, hi)}}, {}, 11, 3);
}

TEST(OpLowering, SliceAndPadWithRunTimeArguments) {
  // starts/ends/axes/steps and pads as kernel arguments; the output shape as a model declares it
  Tensor x = randomTensor(DType::f32, {4, 6, 5}, 32);
  auto i64 = [](std::vector<int64_t> v) { return tensorOf<int64_t>({int64_t(v.size())}, v); };
  expectLoweringMatchesInterpreter("Slice", {{x}, {i64({-1, 1})}, {i64({-100, 100})}, {i64({-2, 0})}, {i64({-2, 1})}},
                                   {}, 13, 1, {3, 3, 5});
  expectLoweringMatchesInterpreter("Slice", {{x}, {i64({0, 2, 7})}, {i64({3, -1, 2})}, {}, {i64({1, 2, -2})}},
                                   {}, 13, 1, {3, 2, 1});
  expectLoweringMatchesInterpreter("Slice", {{x}, {i64({1})}, {i64({3})}}, {}, 10, 1, {2, 6, 5});
  Tensor xi = randomTensor(DType::i32, {3, 4}, 33, -50, 50);
  for (const char *mode : {"constant", "reflect", "edge"})
    expectLoweringMatchesInterpreter("Pad", {{xi}, {i64({1, 2, 0, 1})}, {tensorOf<int32_t>({}, {-9})}},
                                     {{"mode", stringAttr(mode)}}, 13, 1, {4, 7});
  // a size-1 dim in reflect mode reflects onto itself (constant pads)
  expectLoweringMatchesInterpreter("Pad", {{randomTensor(DType::f32, {1, 3}, 39)}, {i64({2, 1, 1, 0}), true}},
                                   {{"mode", stringAttr("reflect")}}, 13);
}

TEST(OpLowering, ShapeOpsAndGenerators) {
  Tensor x = randomTensor(DType::f32, {2, 5, 3, 4}, 35);
  expectLoweringMatchesInterpreter("Shape", {{x}}, {});
  expectLoweringMatchesInterpreter("Shape", {{x}}, {{"start", intAttr(-3)}, {"end", intAttr(3)}}, 15);
  expectLoweringMatchesInterpreter("Size", {{x}}, {});
  expectLoweringMatchesInterpreter("Range", {{tensorOf<float>({}, {-1.5f}), true}, {tensorOf<float>({}, {3.2f}), true},
                                             {tensorOf<float>({}, {0.7f}), true}}, {}, 11);
  expectLoweringMatchesInterpreter("Range", {{tensorOf<int64_t>({}, {10}), true}, {tensorOf<int64_t>({}, {-7}), true},
                                             {tensorOf<int64_t>({}, {-3}), true}}, {}, 11);
  Tensor value = tensorOf<int32_t>({1}, {-42});
  Attribute va;
  va.kind = Attribute::Kind::Tensor;
  va.t = value;
  expectLoweringMatchesInterpreter("ConstantOfShape", {{tensorOf<int64_t>({3}, {2, 1, 3}), true}}, {{"value", va}}, 9);
  Tensor m = randomTensor(DType::i64, {3, 4, 5}, 36, -9, 9);
  for (int64_t k : {-2, 0, 3})
    for (int64_t upper : {0, 1})
      for (bool constant : {true, false})
        expectLoweringMatchesInterpreter("Trilu", {{m}, {tensorOf<int64_t>({}, {k}), constant}},
                                         {{"upper", intAttr(upper)}}, 14);
  expectLoweringMatchesInterpreter("EyeLike", {{randomTensor(DType::i32, {4, 6}, 37, 1, 5)}},
                                   {{"k", intAttr(-1)}, {"dtype", intAttr(11)}}, 9); // double
  expectLoweringMatchesInterpreter("ReverseSequence", {{randomTensor(DType::f32, {3, 4, 2}, 38)},
                                                       {tensorOf<int64_t>({3}, {4, 0, 2})}},
                                   {{"batch_axis", intAttr(0)}, {"time_axis", intAttr(1)}}, 10);
}

/// Output 0 of a one-node graph `op` over `x`, lowered and built (the default schedule).
Tensor runLoweredUnary(const std::string &op, const Tensor &x) {
  Graph g;
  g.opsets[""] = 17;
  Value *v = g.createValue("x", Type::tensor(x.dtype(), Shape::of(x.shape())));
  g.inputs.push_back(v);
  Node *n = g.appendNode(op, {v}, {"y"}, "n0");
  inferShapes(g);
  LoweredNode ln = lowerNode(*n);
  BuiltModule f = build(te::create_schedule(ln.definedOutputs()), ln.args(), "llvm", "unary_" + op);
  Tensor y(n->output(0)->type.dtype, n->output(0)->type.shape.staticDims());
  f({const_cast<Tensor &>(x).raw(), y.raw()});
  return y;
}

/// `xs` as an f64 tensor and as an f32 tensor (each value rounded).
std::pair<Tensor, Tensor> f64AndF32(const std::vector<double> &xs) {
  const int64_t n = int64_t(xs.size());
  Tensor xd(DType::f64, {n}), xf(DType::f32, {n});
  for (int64_t i = 0; i < n; ++i) {
    xd.data<double>()[i] = xs[size_t(i)];
    xf.data<float>()[i] = float(xs[size_t(i)]);
  }
  return {xd, xf};
}

/// Asin/Acos/Atan call libm as the reference kernel does: bit for bit the same as std:: over a
/// dense range (every f32 step of 2^-12 in [-1.25, 1.25], so +-1, +-0 and the out-of-domain
/// NaNs), plus NaN and +-inf, in f32 and f64.
TEST(OpLowering, InverseTrigMatchesStdBitForBit) {
  std::vector<double> xs;
  for (int i = -5120; i <= 5120; ++i)
    xs.push_back(double(i) / 4096.0);
  for (double v : {-0.0, 1e-30, -1e-30, 0.9999999, -0.9999999, 1e30, -1e30,
                   std::numeric_limits<double>::infinity(),
                   -std::numeric_limits<double>::infinity(),
                   std::numeric_limits<double>::quiet_NaN()})
    xs.push_back(v);
  const int64_t n = int64_t(xs.size());
  struct Fn {
    const char *op;
    double (*d)(double);
    float (*f)(float);
  };
  const Fn fns[] = {{"Asin", [](double x) { return std::asin(x); }, [](float x) { return std::asin(x); }},
                    {"Acos", [](double x) { return std::acos(x); }, [](float x) { return std::acos(x); }},
                    {"Atan", [](double x) { return std::atan(x); }, [](float x) { return std::atan(x); }}};
  for (const Fn &fn : fns) {
    auto [xd, xf] = f64AndF32(xs);
    Tensor yd = runLoweredUnary(fn.op, xd), yf = runLoweredUnary(fn.op, xf);
    int bad = 0;
    for (int64_t i = 0; i < n && bad < 5; ++i) {
      double wd = fn.d(xd.data<double>()[i]), gd = yd.data<double>()[i];
      float wf = fn.f(xf.data<float>()[i]), gf = yf.data<float>()[i];
      bool okd = std::isnan(wd) ? std::isnan(gd) : std::memcmp(&wd, &gd, 8) == 0;
      bool okf = std::isnan(wf) ? std::isnan(gf) : std::memcmp(&wf, &gf, 4) == 0;
      if (!okd || !okf)
        ++bad;
      EXPECT_TRUE(okd) << fn.op << " f64 at " << xs[size_t(i)] << ": got " << gd << ", std " << wd;
      EXPECT_TRUE(okf) << fn.op << " f32 at " << xs[size_t(i)] << ": got " << gf << ", std " << wf;
    }
  }
}

/// Sinh, Asinh, Acosh and Atanh keep the digits of a tiny |x| (log1p/expm1 forms, not the
/// cancelling textbook ones: atanh(1e-30) was 0) and stay within a few ulp of std:: over
/// [-4, 4], at +-0, huge values, +-inf and NaN, in f32 and f64.
TEST(OpLowering, HyperbolicFunctionsKeepTinyInputs) {
  std::vector<double> xs;
  for (int i = -4096; i <= 4096; ++i)
    xs.push_back(double(i) / 1024.0);
  for (double v : {-0.0, 1e-30, -1e-30, 1e-10, -3e-7, 2e-4, 0.9999999, -0.9999999, 1.0000001,
                   1e10, -1e10, 1e30, std::numeric_limits<double>::infinity(),
                   -std::numeric_limits<double>::infinity(),
                   std::numeric_limits<double>::quiet_NaN()})
    xs.push_back(v);
  const int64_t n = int64_t(xs.size());
  struct Fn {
    const char *op;
    double (*d)(double);
  };
  const Fn fns[] = {{"Sinh", [](double x) { return std::sinh(x); }},
                    {"Asinh", [](double x) { return std::asinh(x); }},
                    {"Acosh", [](double x) { return std::acosh(x); }},
                    {"Atanh", [](double x) { return std::atanh(x); }}};
  for (const Fn &fn : fns) {
    auto [xd, xf] = f64AndF32(xs);
    Tensor yd = runLoweredUnary(fn.op, xd), yf = runLoweredUnary(fn.op, xf);
    int bad = 0;
    auto close = [](double want, double got, double ulps, double eps) {
      if (std::isnan(want) || std::isnan(got))
        return std::isnan(want) && std::isnan(got);
      if (std::isinf(want) || std::isinf(got) || want == 0)
        return want == got && std::signbit(want) == std::signbit(got);
      return std::fabs(got - want) <= ulps * eps * std::fabs(want);
    };
    for (int64_t i = 0; i < n && bad < 5; ++i) {
      const double xdi = xd.data<double>()[i];
      const float xfi = xf.data<float>()[i];
      bool okd = close(fn.d(xdi), yd.data<double>()[i], 8, 0x1p-52);
      bool okf = close(fn.d(double(xfi)), double(yf.data<float>()[i]), 4, 0x1p-23);
      bad += !okd || !okf;
      EXPECT_TRUE(okd) << fn.op << " f64 at " << xdi << ": got " << yd.data<double>()[i]
                       << ", std " << fn.d(xdi);
      EXPECT_TRUE(okf) << fn.op << " f32 at " << xfi << ": got " << yf.data<float>()[i]
                       << ", std " << fn.d(double(xfi));
    }
  }
}

/// Softmax and LogSoftmax treat a row's non-finite maximum as the reference does (0: a row with
/// +inf gives -inf log-probabilities for its finite entries, not NaN); Hardmax puts its 1 on
/// the first NaN of a row (numpy's argmax), else on the first maximum.
TEST(OpLowering, SoftmaxInfiniteRowsAndHardmaxNaN) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::nanf("");
  for (int64_t cols : {5, 32}) { // 32: the row-wise two-stage reductions
    Tensor x(DType::f32, {4, cols});
    for (int64_t i = 0; i < 4 * cols; ++i)
      x.data<float>()[i] = 0.25f * float(i % 7) - 0.5f;
    x.data<float>()[2] = inf;                 // row 0: +inf
    for (int64_t j = 0; j < cols; ++j)        // row 1: only -inf
      x.data<float>()[cols + j] = -inf;
    x.data<float>()[2 * cols + 3] = nan;      // row 2: a NaN after the first entries
    for (const char *op : {"Softmax", "LogSoftmax", "Hardmax"})
      expectLoweringMatchesInterpreter(op, {{x}}, {}, 13);
  }
  Tensor h(DType::f32, {3, 4});
  const float rows[3][4] = {{1, nan, 5, nan}, {nan, nan, nan, nan}, {2, 7, 7, -1}};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c)
      h.data<float>()[r * 4 + c] = rows[r][c];
  expectLoweringMatchesInterpreter("Hardmax", {{h}}, {}, 13);
  Tensor y = runLoweredUnary("Hardmax", h);
  const float want[3][4] = {{0, 1, 0, 0}, {1, 0, 0, 0}, {0, 1, 0, 0}};
  for (int r = 0; r < 3; ++r)
    for (int c = 0; c < 4; ++c)
      EXPECT_EQ(y.data<float>()[r * 4 + c], want[r][c]) << "row " << r << " col " << c;
}

/// BitShift on every unsigned width, both directions, broadcast amounts including ones at and
/// past the width (the reference gives 0 there); and the loop IR's shl/shr themselves, signed
/// types included, generated code against loop::evaluate.
TEST(OpLowering, BitShiftAndShiftIntrinsics) {
  for (DType dt : {DType::u8, DType::u16, DType::u32, DType::u64}) {
    Tensor x = randomTensor(dt, {3, 7}, 41, 1, 250);
    const int bits = int(dtypeSize(dt) * 8);
    // amounts 0, 1, 2, 5, bits - 1, bits, bits + 3 in the broadcast row
    Tensor y = tensorOf<double>({7}, {0, 1, 2, 5, double(bits - 1), double(bits), double(bits + 3)})
                   .cast(dt);
    for (const char *dir : {"LEFT", "RIGHT"})
      expectLoweringMatchesInterpreter("BitShift", {{x}, {y}}, {{"direction", stringAttr(dir)}}, 11);
  }
  // loop IR shl/shr: generated code == loop::evaluate (the simplifier's constant folder)
  for (DType dt : {DType::i8, DType::u8, DType::i32, DType::u64, DType::i64}) {
    const int64_t n = 64;
    te::Tensor A = te::placeholder({n}, dt, "a"), B = te::placeholder({n}, dt, "b");
    te::Tensor L = te::compute({n}, [&](loop::Var i) { return loop::shl(A(i), B(i)); }, "shl");
    te::Tensor R = te::compute({n}, [&](loop::Var i) { return loop::shr(A(i), B(i)); }, "shr");
    BuiltModule f = build(te::create_schedule({L, R}), {A, B, L, R}, "llvm", "shifts");
    Tensor a = randomTensor(DType::i64, {n}, 43, -100000, 100000).cast(dt);
    Tensor b(DType::f64, {n});
    for (int64_t i = 0; i < n; ++i)
      b.data<double>()[i] = double(i % 70) - 3; // -3 .. 66: negative, in range, past the width
    if (!isSigned(dt))
      for (int64_t i = 0; i < n; ++i)
        b.data<double>()[i] = double(i % 70);
    Tensor bt = b.cast(dt);
    Tensor l(dt, {n}), r(dt, {n});
    f({a.raw(), bt.raw(), l.raw(), r.raw()});
    std::vector<double> av = a.toDoubleVector(), bv = bt.toDoubleVector();
    for (int64_t i = 0; i < n; ++i) {
      loop::Type t(dt);
      auto val = [&](const Tensor &tt) {
        return loop::Value::ofInt(t, tt.getInt64(i));
      };
      loop::Value wl = loop::evaluateCall("shl", {val(a), val(bt)});
      loop::Value wr = loop::evaluateCall("shr", {val(a), val(bt)});
      EXPECT_EQ(l.getInt64(i), wl.i) << dtypeName(dt) << " " << av[size_t(i)] << " << " << bv[size_t(i)];
      EXPECT_EQ(r.getInt64(i), wr.i) << dtypeName(dt) << " " << av[size_t(i)] << " >> " << bv[size_t(i)];
    }
  }
  // a few values by hand: the definition of the out-of-range amounts
  auto ev = [](const char *fn, DType dt, int64_t x, int64_t y) {
    loop::Type t(dt);
    return loop::evaluateCall(fn, {loop::Value::ofInt(t, x), loop::Value::ofInt(t, y)}).i;
  };
  EXPECT_EQ(ev("shl", DType::u8, 0x81, 1), 0x02);
  EXPECT_EQ(ev("shl", DType::u8, 1, 8), 0);
  EXPECT_EQ(ev("shr", DType::u8, 0x80, 7), 1);
  EXPECT_EQ(ev("shr", DType::u8, 0x80, 9), 0);
  EXPECT_EQ(ev("shr", DType::i8, -128, 3), -16);
  EXPECT_EQ(ev("shr", DType::i8, -5, 100), -1);
  EXPECT_EQ(ev("shr", DType::i32, 5, -1), 0);
  EXPECT_NE(errorOf([] { loop::shl(loop::Expr(1.0f), loop::Expr(2.0f)); }).find("expected an integer type"),
            std::string::npos);
}

/// TopK: ties keep the lower index, NaN sorts above every number (largest first) and last in
/// smallest, along inner and outer axes, integers and floats, K of 0, 1 and the axis length.
TEST(OpLowering, TopKTiesAndNaN) {
  const float nan = std::numeric_limits<float>::quiet_NaN();
  Tensor x = tensorOf<float>({3, 6}, {1, 3, 3, nan, -2, 3,  //
                                      0, -0.0f, 0, 5, 5, -1, //
                                      nan, 2, nan, 2, -7, 2});
  for (int64_t k : {0, 1, 4, 6})
    for (int64_t largest : {0, 1})
      expectLoweringMatchesInterpreter("TopK", {{x}, {tensorOf<int64_t>({1}, {k}), true}},
                                       {{"axis", intAttr(1)}, {"largest", intAttr(largest)}}, 11, 2);
  expectLoweringMatchesInterpreter("TopK", {{x}, {tensorOf<int64_t>({1}, {2}), true}},
                                   {{"axis", intAttr(0)}, {"largest", intAttr(0)}}, 11, 2);
  Tensor xi = randomTensor(DType::i32, {2, 9, 3}, 44, -3, 3); // many ties
  for (int64_t largest : {0, 1})
    expectLoweringMatchesInterpreter("TopK", {{xi}, {tensorOf<int64_t>({1}, {5}), true}},
                                     {{"axis", intAttr(-2)}, {"largest", intAttr(largest)}}, 11, 2);
  // K at run time: the extent comes from the declared output shape
  expectLoweringMatchesInterpreter("TopK", {{x}, {tensorOf<int64_t>({1}, {4}), false}},
                                   {{"axis", intAttr(1)}}, 11, 2, {3, 4});
  // opset 1: k as an attribute, one output
  expectLoweringMatchesInterpreter("TopK", {{randomTensor(DType::f64, {4, 5}, 45)}},
                                   {{"k", intAttr(3)}}, 1, 1);
}

/// MeanVarianceNormalization over other axes; the losses with weights, ignore_index, every
/// reduction, run-time targets and SoftmaxCrossEntropy's log_prob output.
TEST(OpLowering, MvnAndLosses) {
  Tensor x = randomTensor(DType::f32, {2, 3, 4, 5}, 46, -3, 3);
  expectLoweringMatchesInterpreter("MeanVarianceNormalization", {{x}}, {{"axes", intsAttr({1, -1})}}, 13);
  expectLoweringMatchesInterpreter("MeanVarianceNormalization", {{x.cast(DType::f64)}}, {}, 9);
  Tensor scores = randomTensor(DType::f32, {3, 5, 2}, 47, -4, 4);
  Tensor target = tensorOf<int64_t>({3, 2}, {0, 4, 2, -1, 4, 4});
  Tensor target32 = target.cast(DType::i32);
  Tensor w = randomTensor(DType::f32, {5}, 48, 0.1, 2);
  for (const char *red : {"none", "sum", "mean"}) {
    std::map<std::string, Attribute> a = {{"reduction", stringAttr(red)}, {"ignore_index", intAttr(-1)}};
    expectLoweringMatchesInterpreter("NegativeLogLikelihoodLoss", {{scores}, {target}, {w}}, a, 13);
    expectLoweringMatchesInterpreter("NegativeLogLikelihoodLoss", {{scores}, {target32}}, a, 13);
    expectLoweringMatchesInterpreter("SoftmaxCrossEntropyLoss", {{scores}, {target}, {w}}, a, 13, 2);
    expectLoweringMatchesInterpreter("SoftmaxCrossEntropyLoss", {{scores.cast(DType::f64)}, {target32}},
                                     a, 13, 1);
  }
  // ignore_index that is a real class (4): its positions weigh nothing
  expectLoweringMatchesInterpreter("NegativeLogLikelihoodLoss",
                                   {{scores}, {tensorOf<int64_t>({3, 2}, {0, 4, 2, 1, 4, 4})}, {w}},
                                   {{"ignore_index", intAttr(4)}}, 13);
  // large scores: the log-softmax stays finite
  expectLoweringMatchesInterpreter("SoftmaxCrossEntropyLoss",
                                   {{randomTensor(DType::f32, {4, 3}, 49, 50, 90)},
                                    {tensorOf<int64_t>({4}, {2, 0, 1, 1})}},
                                   {{"reduction", stringAttr("sum")}}, 13, 2);
}

/// MaxUnpool: duplicate indices (the last write wins), an output_shape larger than the default
/// (indices keep their coordinates), 1-D pooling; the windows in other dtypes; MelWeightMatrix
/// with constant edges (literals) and run-time edges.
TEST(OpLowering, MaxUnpoolWindowsAndMel) {
  Tensor x = randomTensor(DType::f32, {1, 2, 2, 2}, 50);
  Tensor idx = tensorOf<int64_t>({1, 2, 2, 2}, {0, 5, 5, 15, 16, 16, 18, 31});
  std::map<std::string, Attribute> a = {{"kernel_shape", intsAttr({2, 2})}, {"strides", intsAttr({2, 2})}};
  expectLoweringMatchesInterpreter("MaxUnpool", {{x}, {idx}}, a, 11);
  expectLoweringMatchesInterpreter("MaxUnpool", {{x}, {idx}, {tensorOf<int64_t>({4}, {1, 2, 5, 6}), true}},
                                   a, 11);
  Tensor xi = randomTensor(DType::i32, {2, 1, 3}, 51, -9, 9);
  Tensor i1 = tensorOf<int64_t>({2, 1, 3}, {1, 2, 5, 7, 6, 9});
  expectLoweringMatchesInterpreter("MaxUnpool", {{xi}, {i1}},
                                   {{"kernel_shape", intsAttr({2})}, {"strides", intsAttr({2})},
                                    {"pads", intsAttr({0, 1})}},
                                   11);
  for (const char *op : {"HannWindow", "HammingWindow", "BlackmanWindow"})
    for (int64_t dt : {1, 11}) // float, double
      for (int64_t periodic : {0, 1})
        expectLoweringMatchesInterpreter(op, {{tensorOf<int32_t>({}, {7}), true}},
                                         {{"output_datatype", intAttr(dt)}, {"periodic", intAttr(periodic)}},
                                         17);
  // size at run time: the extent comes from the declared output shape
  expectLoweringMatchesInterpreter("HannWindow", {{tensorOf<int64_t>({}, {9}), false}},
                                   {{"periodic", intAttr(0)}}, 17, 1, {9});
  auto i64s = [](int64_t v) { return tensorOf<int64_t>({}, {v}); };
  for (bool constant : {true, false})
    expectLoweringMatchesInterpreter("MelWeightMatrix",
                                     {{i64s(10), true}, {i64s(64), true}, {i64s(16000), true},
                                      {tensorOf<float>({}, {20.0f}), constant},
                                      {tensorOf<float>({}, {7600.0f}), constant}},
                                     {{"output_datatype", intAttr(11)}}, 17);
  // every input at run time (the output shape declared), dft_length odd
  expectLoweringMatchesInterpreter("MelWeightMatrix",
                                   {{i64s(8)}, {i64s(101)}, {i64s(8000)},
                                    {tensorOf<float>({}, {0.0f})}, {tensorOf<float>({}, {4000.0f})}},
                                   {{"output_datatype", intAttr(1)}}, 17, 1, {51, 8});
}

/// The markdown table of ops with a lowering (what docs/lowering.md embeds).
std::string loweringTable() {
  std::ostringstream os;
  os << "| op | op dtypes (lowered: all but string; f16/bf16 sums and products in f32) | op "
        "notes |\n|---|---|---|\n";
  for (const LoweringInfo &l : loweringList())
    os << "| " << l.op << " | " << l.dtypes << " | " << l.notes << " |\n";
  return os.str();
}

TEST(OpLowering, DocsListIsCurrent) {
  const std::string path = std::string(TESSEL_SOURCE_DIR) + "/docs/lowering.md";
  const std::string begin = "<!-- BEGIN lowering table -->\n", end = "<!-- END lowering table -->";
  std::ifstream f(path);
  ASSERT_TRUE(f) << path;
  std::stringstream ss;
  ss << f.rdbuf();
  std::string doc = ss.str();
  size_t a = doc.find(begin), b = doc.find(end);
  ASSERT_TRUE(a != std::string::npos && b != std::string::npos) << "markers missing in " << path;
  std::string table = loweringTable();
  std::string current = doc.substr(a + begin.size(), b - a - begin.size());
  if (current != table && std::getenv("TESSEL_UPDATE_DOCS")) {
    doc = doc.substr(0, a + begin.size()) + table + doc.substr(b);
    std::ofstream(path) << doc;
    return;
  }
  EXPECT_EQ(current, table) << "docs/lowering.md is stale: rerun with TESSEL_UPDATE_DOCS=1";
}

} // namespace
