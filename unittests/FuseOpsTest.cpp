//===- FuseOpsTest.cpp - operator fusion ------------------------------------===//
//
// fuseOps on hand-written graphs (the classes of the registry, the rules of TVM's algorithm),
// on hundreds of seeded random DAGs (every plan checked by verifyFusionPlan: the groups
// partition the nodes, each is connected with one exit and at most one conv/matmul/reduction
// master, and the group order is topological, i.e. no cycle between groups), and on the five
// shared models (skipped when ../shared/models is absent).
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/Fusion.h"

#include "tessel/Frontend/ONNX.h"
#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Text.h"
#include "tessel/Graph/Transforms.h"
#include "GraphTestUtils.h"

#include <algorithm>
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <random>
#include <sstream>

using namespace tessel;

namespace {

using test::intsAttr;
using test::parseTestGraph;
using test::sharedModelsDir;


std::string planText(const FusionPlan &plan) {
  std::ostringstream os;
  printFusionPlan(os, plan);
  return os.str();
}

OpPattern registered(const std::string &op) {
  const OpDef *d = OpRegistry::get().lookupAny("", op);
  EXPECT_NE(d, nullptr) << op;
  return d ? d->pattern : OpPattern::Opaque;
}

TEST(FuseOps, RegistryClasses) {
  EXPECT_EQ(registered("Relu"), OpPattern::ElemWise);
  EXPECT_EQ(registered("Exp"), OpPattern::ElemWise);
  EXPECT_EQ(registered("Cast"), OpPattern::ElemWise);
  EXPECT_EQ(registered("Add"), OpPattern::Broadcast);
  EXPECT_EQ(registered("Where"), OpPattern::Broadcast);
  EXPECT_EQ(registered("PRelu"), OpPattern::Broadcast);
  EXPECT_EQ(registered("Max"), OpPattern::Broadcast);
  EXPECT_EQ(registered("Reshape"), OpPattern::Injective);
  EXPECT_EQ(registered("Transpose"), OpPattern::Injective);
  EXPECT_EQ(registered("Gather"), OpPattern::Injective);
  EXPECT_EQ(registered("Pad"), OpPattern::Injective);
  EXPECT_EQ(registered("ReduceMean"), OpPattern::CommReduce);
  EXPECT_EQ(registered("ArgMax"), OpPattern::CommReduce);
  EXPECT_EQ(registered("GlobalAveragePool"), OpPattern::CommReduce);
  EXPECT_EQ(registered("Conv"), OpPattern::OutEWiseFusable);
  EXPECT_EQ(registered("Gemm"), OpPattern::OutEWiseFusable);
  EXPECT_EQ(registered("MatMul"), OpPattern::OutEWiseFusable);
  EXPECT_EQ(registered("MaxPool"), OpPattern::OutEWiseFusable);
  EXPECT_EQ(registered("Softmax"), OpPattern::OutEWiseFusable);
  EXPECT_EQ(registered("If"), OpPattern::Opaque);
  EXPECT_EQ(registered("RandomNormal"), OpPattern::Opaque);
  EXPECT_EQ(registered("SequenceAt"), OpPattern::Opaque);
  EXPECT_EQ(registered("NonZero"), OpPattern::Opaque);
  EXPECT_EQ(opPatternName(OpPattern::OutEWiseFusable), "out-ewise-fusable");
  EXPECT_EQ(opPatternName(OpPattern::CommReduce), "comm-reduce");
}

TEST(FuseOps, NodeClassRefinements) {
  auto g = parseTestGraph(R"(graph @g(%x: f32[2,8]) {
    %k: i64[1] = dense<[3]>
    %v, %i = TopK(%x, %k)
    %d, %m = Dropout(%x)
    %e = Exp(%v)
    return %e, %i, %d, %m
  })");
  const auto &nodes = g->nodes();
  EXPECT_EQ(nodePattern(*nodes[0]), OpPattern::Opaque); // two outputs
  EXPECT_EQ(nodePattern(*nodes[1]), OpPattern::Opaque); // two outputs
  EXPECT_EQ(nodePattern(*nodes[2]), OpPattern::ElemWise);
}

TEST(FuseOps, ConvBiasReluIsOneKernel) {
  auto g = parseTestGraph(R"(graph @g(%x: f32[1,3,8,8]) {
    %w: f32[4,3,3,3] = dense<0.5>
    %b: f32[1,4,1,1] = dense<0.25>
    %c = Conv(%x, %w) {name = "conv", pads = [1, 1, 1, 1]}
    %a = Add(%c, %b)
    %r = Relu(%a)
    return %r
  })");
  FusionPlan plan = fuseOps(*g);
  verifyFusionPlan(*g, plan);
  ASSERT_EQ(plan.groups.size(), 1u) << planText(plan);
  const FusionGroup &grp = plan.groups[0];
  EXPECT_EQ(grp.pattern, OpPattern::OutEWiseFusable);
  EXPECT_EQ(grp.master->name, "conv");
  EXPECT_EQ(grp.inputs.size(), 3u);
  ASSERT_EQ(grp.outputs.size(), 1u);
  EXPECT_EQ(grp.outputs[0]->name(), "r");
  for (auto &n : g->nodes())
    EXPECT_EQ(plan.groupOf(n.get()), 0);

  FuseOptions one;
  one.maxGroupSize = 1;
  FusionPlan none = fuseOps(*g, one);
  verifyFusionPlan(*g, none);
  EXPECT_EQ(none.groups.size(), 3u);

  FuseOptions bad;
  bad.maxGroupSize = 0;
  EXPECT_THROW(fuseOps(*g, bad), Error);
}

TEST(FuseOps, TwoConvsNeverShareAGroup) {
  // Both convs reach the Add through elementwise edges; only one may take it.
  auto g = parseTestGraph(R"(graph @g(%x: f32[1,4,8,8]) {
    %w: f32[4,4,1,1] = dense<0.5>
    %c1 = Conv(%x, %w)
    %c2 = Conv(%x, %w)
    %r1 = Relu(%c1)
    %a = Add(%r1, %c2)
    return %a
  })");
  FusionPlan plan = fuseOps(*g);
  verifyFusionPlan(*g, plan);
  EXPECT_EQ(plan.groups.size(), 2u) << planText(plan);
}

TEST(FuseOps, VerifierCatchesABrokenPlan) {
  auto g = parseTestGraph(R"(graph @g(%x: f32[4]) {
    %a = Relu(%x)
    %b = Exp(%a)
    return %b
  })");
  FusionPlan plan = fuseOps(*g);
  verifyFusionPlan(*g, plan);
  ASSERT_EQ(plan.groups.size(), 1u);
  FusionPlan broken = plan;
  broken.groups[0].nodes.pop_back(); // a node in no group
  EXPECT_THROW(verifyFusionPlan(*g, broken), Error);
  FusionPlan noOutput = plan;
  noOutput.groups[0].outputs.clear();
  EXPECT_THROW(verifyFusionPlan(*g, noOutput), Error);
}

TEST(FuseOps, DotHasOneClusterPerGroup) {
  auto g = parseTestGraph(R"(graph @g(%x: f32[4,4]) {
    %k: i64[1] = dense<[2]>
    %a = Relu(%x)
    %v, %i = TopK(%a, %k)
    %e = Exp(%v)
    return %e
  })");
  FusionPlan plan = fuseOps(*g);
  std::ostringstream before, after;
  writeFusionDot(before, *g);
  writeFusionDot(after, *g, &plan);
  EXPECT_EQ(before.str().find("cluster_"), std::string::npos);
  size_t clusters = 0;
  for (size_t p = after.str().find("subgraph cluster_"); p != std::string::npos;
       p = after.str().find("subgraph cluster_", p + 1))
    ++clusters;
  EXPECT_EQ(clusters, plan.groups.size());
  EXPECT_NE(after.str().find("opaque"), std::string::npos);
}

//===- random DAGs -------------------------------------------------------===//


/// A random DAG over f32[4,4] values (and f32[4,1] reduction results) mixing every class:
/// elementwise (Relu, Exp, Neg), broadcast (Add, Mul), injective (Transpose), reduction
/// (ReduceSum keepdims), out-ewise-fusable (MatMul) and opaque (CumSum, TopK).
std::unique_ptr<Graph> randomDag(std::mt19937 &rng, int numNodes) {
  auto g = std::make_unique<Graph>();
  g->name = "random";
  g->opsets[""] = 17;
  std::vector<Value *> full, col;
  for (int i = 0; i < 2; ++i) {
    Value *x = g->createValue("x" + std::to_string(i), Type::tensor(DType::f32, Shape::of({4, 4})));
    g->inputs.push_back(x);
    full.push_back(x);
  }
  Value *axis = g->createValue("axis", Type::tensor(DType::i64, Shape::of({})));
  axis->constant = Tensor(DType::i64, std::vector<int64_t>{});
  axis->constant.data<int64_t>()[0] = 1;
  g->initializers.push_back(axis);
  Value *k = g->createValue("k", Type::tensor(DType::i64, Shape::of({1})));
  k->constant = Tensor(DType::i64, std::vector<int64_t>{1});
  k->constant.data<int64_t>()[0] = 4;
  g->initializers.push_back(k);

  auto pick = [&](const std::vector<Value *> &from) {
    // Prefer recent values so that chains form.
    std::uniform_int_distribution<size_t> recent(0, std::min<size_t>(from.size(), 4) - 1);
    return from[from.size() - 1 - recent(rng)];
  };
  std::uniform_int_distribution<int> opDist(0, 11);
  for (int i = 0; i < numNodes; ++i) {
    const std::string out = "v" + std::to_string(i);
    int op = opDist(rng);
    Node *n = nullptr;
    if (op <= 2) {
      const char *names[] = {"Relu", "Exp", "Neg"};
      n = g->appendNode(names[op], {pick(full)}, {out});
    } else if (op <= 5) {
      Value *b = (op == 5 && !col.empty()) ? pick(col) : pick(full);
      n = g->appendNode(op == 3 ? "Add" : "Mul", {pick(full), b}, {out});
    } else if (op == 6) {
      n = g->appendNode("Transpose", {pick(full)}, {out});
      n->attrs["perm"] = intsAttr({1, 0});
    } else if (op == 7) {
      n = g->appendNode("ReduceSum", {pick(full)}, {out});
      n->attrs["axes"] = intsAttr({1});
    } else if (op <= 9) {
      n = g->appendNode("MatMul", {pick(full), pick(full)}, {out});
    } else if (op == 10) {
      n = g->appendNode("CumSum", {pick(full), axis}, {out});
    } else {
      n = g->appendNode("TopK", {pick(full), k}, {out, out + "_i"});
    }
    (void)n;
    Value *v = g->findValue(out);
    if (op == 7)
      col.push_back(v);
    else
      full.push_back(v);
  }
  // Outputs: every value nobody reads, plus a few read ones (outputs in the middle of chains).
  std::bernoulli_distribution extra(0.1);
  for (auto &n : g->nodes())
    for (Value *v : n->outputs())
      if (v && v->name().find("_i") == std::string::npos && (v->uses().empty() || extra(rng)))
        g->outputs.push_back(v);
  inferShapes(*g);
  verifyGraph(*g);
  return g;
}

TEST(FuseOps, RandomDagsGiveValidPlans) {
  std::mt19937 rng(20240605);
  std::uniform_int_distribution<int> size(1, 40);
  const int64_t limits[] = {1, 2, 3, 256};
  int64_t graphs = 0, nodes = 0, groups = 0, multi = 0;
  for (int iter = 0; iter < 400; ++iter) {
    SCOPED_TRACE("random DAG " + std::to_string(iter));
    auto g = randomDag(rng, size(rng));
    FuseOptions opts;
    opts.maxGroupSize = limits[iter % 4];
    FusionPlan plan;
    ASSERT_NO_THROW(plan = fuseOps(*g, opts)) << printGraph(*g);
    try {
      verifyFusionPlan(*g, plan);
    } catch (const Error &e) {
      FAIL() << e.what() << "\n" << printGraph(*g) << planText(plan);
    }
    for (const FusionGroup &grp : plan.groups) {
      EXPECT_LE(int64_t(grp.nodes.size()), opts.maxGroupSize);
      multi += grp.nodes.size() > 1;
    }
    if (opts.maxGroupSize == 1)
      EXPECT_EQ(plan.groups.size(), g->nodes().size());
    ++graphs;
    nodes += plan.numNodes;
    groups += int64_t(plan.groups.size());
  }
  // The generator must make fusion happen, not only check trivial plans.
  EXPECT_EQ(graphs, 400);
  EXPECT_GT(multi, 500);
  EXPECT_LT(groups, nodes);
}

//===- the shared models -------------------------------------------------===//


class FuseOpsModel : public ::testing::TestWithParam<const char *> {};

TEST_P(FuseOpsModel, FusesAndVerifies) {
  std::filesystem::path path =
      std::filesystem::path(sharedModelsDir()) / (std::string(GetParam()) + ".onnx");
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << path << " is absent (set TESSEL_SHARED_MODELS to the shared models folder)";
  Model m = loadOnnx(path.string());
  optimizeGraph(*m.graph, 3);
  FusionPlan plan = fuseOps(*m.graph);
  verifyFusionPlan(*m.graph, plan);
  EXPECT_LT(plan.groups.size(), m.graph->nodes().size()) << "some fusion is expected";
  // Every conv/matmul/gemm is the master of its group (in an attention group, MatMul ->
  // Softmax -> MatMul, the last MatMul), and an elementwise op that directly follows one as its
  // only consumer is in its group (bias, ReLU, Clip epilogues).
  for (auto &n : m.graph->nodes()) {
    if (nodePattern(*n) != OpPattern::OutEWiseFusable)
      continue;
    const FusionGroup &grp = plan.groups[plan.groupOf(n.get())];
    const bool attention = grp.master->opType == "MatMul" && grp.nodes.size() >= 3 &&
                           std::any_of(grp.nodes.begin(), grp.nodes.end(),
                                       [](const Node *g) { return g->opType == "Softmax"; });
    EXPECT_EQ(grp.master, attention ? grp.nodes.back() : n.get()) << n->describe();
    const Value *out = n->output(0);
    bool isOutput = false;
    for (const Value *o : m.graph->outputs)
      isOutput |= o == out;
    if (out->uses().size() == 1 && !isOutput &&
        nodePattern(*out->uses()[0].user) == OpPattern::ElemWise)
      EXPECT_EQ(plan.groupOf(out->uses()[0].user), grp.id) << n->describe();
  }
  std::cout << "[ fusion   ] " << GetParam() << ": " << plan.numNodes << " nodes -> "
            << plan.groups.size() << " kernels\n";
}

INSTANTIATE_TEST_SUITE_P(Shared, FuseOpsModel,
                         ::testing::Values("mlp", "digits_cnn", "resnet18", "mobilenet_v2",
                                           "transformer"));

} // namespace
