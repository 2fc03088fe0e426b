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
#include "tessel/TE/Build.h"
#include "GraphTestUtils.h"
#include "TestUtils.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
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

bool closeEnough(const Tensor &got, const Tensor &want, std::string &why) {
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
    double tol = exact ? 0.0 : 1e-5 + 1e-4 * std::fabs(w[i]);
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
  size_t k = 0;
  for (size_t i = 0; i < n.numOutputs(); ++i) {
    if (!n.output(i))
      continue;
    fs::path p = data / ("output_" + std::to_string(i) + ".pb");
    Tensor want = readTensorProtoFile(p.string());
    std::string why;
    if (!closeEnough(outs[k++], want, why)) {
      res.outcome = Outcome::Failed;
      res.detail = "output " + std::to_string(i) + ": " + why;
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
  OneNode einsum("Einsum", {{2, 2}}, {{"equation", stringAttr("ii->i")}});
  std::string e = errorOf([&] { lowerNode(*einsum.node); });
  EXPECT_NE(e.find("n0"), std::string::npos) << e;
  EXPECT_NE(e.find("has no lowering"), std::string::npos) << e;

  OneNode conv("Conv", {{1, 2, 5, 5}, {3, 2, 3, 3}}, {}, DType::i32);
  e = errorOf([&] { lowerNode(*conv.node); });
  EXPECT_NE(e.find("float inputs only"), std::string::npos) << e;

  OneNode half("Relu", {{4}}, {}, DType::f16);
  e = errorOf([&] { lowerNode(*half.node); });
  EXPECT_NE(e.find("dtype f16, which lowering does not support"), std::string::npos) << e;
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

/// The markdown table of ops with a lowering (what docs/lowering.md embeds).
std::string loweringTable() {
  std::ostringstream os;
  os << "| op | op dtypes (lowered: all but f16, bf16, string) | op notes |\n|---|---|---|\n";
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
