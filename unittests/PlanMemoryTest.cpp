//===- PlanMemoryTest.cpp - the static memory plan ------------------------===//
//
// planMemory on hand-built graphs, on hundreds of seeded random DAGs (each plan checked by
// verifyMemoryPlan AND by running the graph with every intermediate stored in the arena at its
// planned offset: a wrong overlap clobbers a live value and the outputs differ from the
// interpreter's), and on the five shared models (skipped when ../shared/models is absent).
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/MemoryPlan.h"

#include "tessel/Frontend/ONNX.h"
#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Text.h"
#include "tessel/Graph/Transforms.h"
#include "tessel/Interp/Interpreter.h"
#include "GraphTestUtils.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <random>
#include <sstream>

using namespace tessel;

namespace {

using test::intAttr;
using test::parseTestGraph;
using test::sharedModelsDir;


//===- random DAGs -------------------------------------------------------===//

struct Info {
  Value *v;
  DType dt;
  std::vector<int64_t> shape;
};

int64_t numel(const std::vector<int64_t> &s) {
  int64_t n = 1;
  for (int64_t d : s)
    n *= d;
  return n;
}


/// A random DAG over f32/f64 tensors: elementwise unary and binary ops, views (Reshape, Flatten,
/// Identity, Unsqueeze, Squeeze), Transpose, Concat, Split, Cast; some results are never read.
std::unique_ptr<Graph> randomGraph(std::mt19937 &rng, int numNodes) {
  auto g = std::make_unique<Graph>();
  g->name = "random";
  g->opsets[""] = 17;
  std::vector<Info> pool;
  Value *x = g->createValue("x", Type::tensor(DType::f32, Shape::of({4, 8})));
  g->inputs.push_back(x);
  pool.push_back({x, DType::f32, {4, 8}});
  Value *y = g->createValue("y", Type::tensor(DType::f32, Shape::of({4, 8})));
  g->inputs.push_back(y);
  pool.push_back({y, DType::f32, {4, 8}});
  auto pick = [&]() -> Info & {
    // Prefer recent values, so chains (and in-place chances) are common.
    std::uniform_int_distribution<size_t> recent(pool.size() > 4 ? pool.size() - 4 : 0,
                                                 pool.size() - 1);
    std::uniform_int_distribution<size_t> any(0, pool.size() - 1);
    return pool[rng() % 3 ? recent(rng) : any(rng)];
  };
  auto constant = [&](std::vector<int64_t> data) {
    Value *c = g->createValue(g->uniqueName("c"), Type::tensor(DType::i64, Shape::of({int64_t(data.size())})));
    c->constant = Tensor::fromVector<int64_t>({int64_t(data.size())}, data);
    g->initializers.push_back(c);
    return c;
  };
  int counter = 0;
  auto name = [&] { return "v" + std::to_string(counter++); };
  const char *unary[] = {"Neg", "Relu", "Abs", "Identity"};
  const char *binary[] = {"Add", "Mul", "Sub", "Max", "Min"};
  for (int i = 0; i < numNodes; ++i) {
    Info a = pick();
    int kind = int(rng() % 10);
    if (kind <= 2) {
      Node *n = g->appendNode(unary[rng() % 4], {a.v}, {name()});
      pool.push_back({n->output(0), a.dt, a.shape});
    } else if (kind <= 5) {
      std::vector<Info *> same;
      for (auto &b : pool)
        if (b.dt == a.dt && b.shape == a.shape)
          same.push_back(&b);
      Info b = *same[rng() % same.size()];
      Node *n = g->appendNode(binary[rng() % 5], {a.v, b.v}, {name()});
      pool.push_back({n->output(0), a.dt, a.shape});
    } else if (kind == 6) {
      // a view: Reshape to a random factorization, Flatten, or Unsqueeze + later Squeeze
      int64_t e = numel(a.shape);
      std::vector<int64_t> divisors;
      for (int64_t d = 1; d <= e; ++d)
        if (e % d == 0)
          divisors.push_back(d);
      int64_t d = divisors[rng() % divisors.size()];
      int which = int(rng() % 3);
      if (which == 0) {
        Node *n = g->appendNode("Reshape", {a.v, constant({d, e / d})}, {name()});
        pool.push_back({n->output(0), a.dt, {d, e / d}});
      } else if (which == 1) {
        Node *n = g->appendNode("Flatten", {a.v}, {name()});
        n->attrs["axis"] = intAttr(0);
        pool.push_back({n->output(0), a.dt, {1, e}});
      } else {
        Node *n = g->appendNode("Unsqueeze", {a.v, constant({0})}, {name()});
        std::vector<int64_t> s = a.shape;
        s.insert(s.begin(), 1);
        Node *m = g->appendNode("Squeeze", {n->output(0), constant({0})}, {name()});
        pool.push_back({n->output(0), a.dt, s});
        pool.push_back({m->output(0), a.dt, a.shape});
      }
    } else if (kind == 7) {
      if (a.shape.size() == 2 && numel(a.shape) <= 256) {
        Node *n = g->appendNode("Concat", {a.v, a.v}, {name()});
        n->attrs["axis"] = intAttr(0);
        pool.push_back({n->output(0), a.dt, {a.shape[0] * 2, a.shape[1]}});
      } else {
        Node *n = g->appendNode("Transpose", {a.v}, {name()});
        std::vector<int64_t> s(a.shape.rbegin(), a.shape.rend());
        pool.push_back({n->output(0), a.dt, s});
      }
    } else if (kind == 8) {
      if (a.shape.size() == 2 && a.shape[0] % 2 == 0) {
        Node *n = g->appendNode("Split", {a.v}, {name(), name()});
        n->attrs["axis"] = intAttr(0);
        std::vector<int64_t> s = {a.shape[0] / 2, a.shape[1]};
        pool.push_back({n->output(0), a.dt, s});
        pool.push_back({n->output(1), a.dt, s});
      } else {
        Node *n = g->appendNode("Transpose", {a.v}, {name()});
        std::vector<int64_t> s(a.shape.rbegin(), a.shape.rend());
        pool.push_back({n->output(0), a.dt, s});
      }
    } else {
      DType to = a.dt == DType::f32 ? DType::f64 : DType::f32;
      Node *n = g->appendNode("Cast", {a.v}, {name()});
      n->attrs["to"] = intAttr(dtypeToOnnx(to));
      pool.push_back({n->output(0), to, a.shape});
    }
  }
  // Outputs: the last value and up to two others produced by nodes.
  std::vector<Value *> produced;
  for (auto &info : pool)
    if (info.v->producer())
      produced.push_back(info.v);
  g->outputs.push_back(produced.back());
  for (int k = int(rng() % 3); k > 0; --k) {
    Value *o = produced[rng() % produced.size()];
    if (std::find(g->outputs.begin(), g->outputs.end(), o) == g->outputs.end())
      g->outputs.push_back(o);
  }
  inferShapes(*g);
  verifyGraph(*g);
  return g;
}

Tensor randomTensor(const Value &v, std::mt19937 &rng) {
  Tensor t(v.type.dtype, v.type.shape.staticDims());
  std::uniform_real_distribution<float> u(-2.f, 2.f);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<float>()[i] = u(rng);
  return t;
}

/// Runs `g` node by node with the reference kernels, storing every planned value only in an
/// arena at its planned offset (the others in a map). Returns the graph outputs.
std::vector<Tensor> runInArena(const Graph &g, const MemoryPlan &plan,
                               const std::map<std::string, Tensor> &inputs) {
  std::vector<unsigned char> arena(size_t(plan.arenaBytes) + 1, 0xAB);
  std::map<const Value *, Tensor> held;
  for (Value *v : g.inputs)
    held[v] = inputs.at(v->name());
  for (Value *v : g.initializers)
    held[v] = v->constant;
  auto read = [&](const Value *v) {
    if (const ValuePlacement *p = plan.find(v)) {
      Tensor t(v->type.dtype, v->type.shape.staticDims());
      std::memcpy(t.raw(), arena.data() + p->offset, size_t(p->bytes));
      return t;
    }
    return held.at(v);
  };
  for (auto &np : g.nodes()) {
    const Node &n = *np;
    std::vector<Tensor> ins;
    for (Value *v : n.inputs())
      ins.push_back(v ? read(v) : Tensor());
    std::vector<Object> objs;
    for (auto &t : ins)
      objs.push_back(t.defined() ? Object(t) : Object::none());
    std::vector<const Object *> ptrs;
    for (auto &o : objs)
      ptrs.push_back(&o);
    const OpDef *def = OpRegistry::get().lookup(n.domain, n.opType, g.opsetVersion(n.domain));
    EXPECT_NE(def, nullptr) << n.describe();
    KernelContext ctx(n, ptrs, [](const Graph &, const std::vector<Object> &) -> std::vector<Object> {
      fail("no subgraphs in this test");
    });
    def->kernel(ctx);
    for (size_t o = 0; o < n.numOutputs(); ++o) {
      const Value *v = n.output(o);
      if (!v)
        continue;
      const Tensor &t = ctx.outputs()[o].tensor;
      if (const ValuePlacement *p = plan.find(v)) {
        EXPECT_EQ(int64_t(t.nbytes()), p->bytes) << v->name();
        std::memcpy(arena.data() + p->offset, t.raw(), size_t(p->bytes));
      } else {
        held[v] = t;
      }
    }
  }
  std::vector<Tensor> outs;
  for (Value *v : g.outputs)
    outs.push_back(read(v));
  return outs;
}

//===- hand-built graphs -------------------------------------------------===//

TEST(PlanMemory, ChainRunsInPlaceInOneBlock) {
  auto g = parseTestGraph(R"(graph @chain(%x: f32[4,8]) {
    %a = Relu(%x)
    %b = Exp(%a)
    %c = Neg(%b)
    return %c
  })");
  MemoryPlan plan = planMemory(*g);
  verifyMemoryPlan(*g, plan);
  ASSERT_EQ(plan.values.size(), 2u);
  EXPECT_EQ(plan.arenaBytes, 128);
  EXPECT_EQ(plan.peakLiveBytes, 128);
  EXPECT_EQ(plan.sumBytes, 256);
  const ValuePlacement *b = plan.find(g->findValue("b"));
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(b->kind, ValuePlacement::Kind::InPlace);
  EXPECT_EQ(b->shares, g->findValue("a"));
  EXPECT_EQ(plan.find(g->findValue("c")), nullptr) << "outputs are not in the arena by default";
  EXPECT_EQ(plan.find(g->findValue("x")), nullptr) << "inputs are never in the arena";

  PlanOptions opts;
  opts.outputsInArena = true;
  opts.inPlace = false;
  plan = planMemory(*g, opts);
  verifyMemoryPlan(*g, plan);
  EXPECT_EQ(plan.values.size(), 3u);
  EXPECT_EQ(plan.arenaBytes, 256); // a and b, then c over a's bytes
  EXPECT_EQ(plan.find(g->findValue("c"))->last, 3);
}

TEST(PlanMemory, ViewAliasesOnlyWhenItsInputDies) {
  auto g = parseTestGraph(R"(graph @views(%x: f32[4,8]) {
    %s: i64[1] = dense<[32]>
    %a = Relu(%x)
    %r = Reshape(%a, %s)
    %b = Neg(%x)
    %f = Flatten(%b)
    %g = Exp(%b)
    %o = Concat(%r, %r) {axis = 0}
    return %o, %f, %g
  })");
  PlanOptions opts;
  opts.outputsInArena = true;
  MemoryPlan plan = planMemory(*g, opts);
  verifyMemoryPlan(*g, plan);
  EXPECT_EQ(plan.find(g->findValue("r"))->kind, ValuePlacement::Kind::Alias);
  EXPECT_EQ(plan.find(g->findValue("r"))->offset, plan.find(g->findValue("a"))->offset);
  // %b is read again by Exp after the Flatten: the Flatten gets its own bytes.
  EXPECT_EQ(plan.find(g->findValue("f"))->kind, ValuePlacement::Kind::Own);
  EXPECT_EQ(plan.find(g->findValue("g"))->kind, ValuePlacement::Kind::InPlace);
}

TEST(PlanMemory, SubgraphCaptureExtendsLifetime) {
  // %a has no direct reader; the If node reads it through its branches (captures), so %b,
  // computed between them, must not take its bytes.
  auto g = parseTestGraph(R"(graph @captures(%x: f32[4], %c: bool[]) {
    %a = Relu(%x)
    %b = Neg(%x)
    %r = If(%c) {else_branch = graph @e() {
      %e = Abs(%a)
      return %e
    }, then_branch = graph @t() {
      %t = Neg(%a)
      return %t
    }}
    %d = Abs(%b)
    return %r, %d
  })");
  MemoryPlan plan = planMemory(*g);
  verifyMemoryPlan(*g, plan);
  ASSERT_EQ(plan.values.size(), 2u);
  EXPECT_EQ(plan.find(g->findValue("a"))->last, 2);
  EXPECT_NE(plan.find(g->findValue("a"))->offset, plan.find(g->findValue("b"))->offset);
}

TEST(PlanMemory, SymbolicDimIsAnErrorNamingTheValue) {
  auto g = parseTestGraph(R"(graph @sym(%x: f32[N,8]) {
    %a = Relu(%x)
    %b = Exp(%a)
    return %b
  })");
  try {
    planMemory(*g);
    FAIL() << "expected an Error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("value 'a' has type f32[N,8]"), std::string::npos)
        << e.what();
    EXPECT_NE(std::string(e.what()).find("static shapes"), std::string::npos) << e.what();
  }
  PlanOptions bad;
  bad.alignment = 48;
  EXPECT_THROW(planMemory(*g, bad), Error);
}

TEST(PlanMemory, VerifierCatchesBrokenPlans) {
  auto g = parseTestGraph(R"(graph @diamond(%x: f32[4,8]) {
    %a = Relu(%x)
    %b = Exp(%a)
    %c = Add(%a, %b)
    %d = Neg(%c)
    return %d
  })");
  MemoryPlan good = planMemory(*g);
  verifyMemoryPlan(*g, good);
  auto expectError = [&](MemoryPlan p, const std::string &what) {
    try {
      verifyMemoryPlan(*g, p);
      ADD_FAILURE() << "no error for: " << what;
    } catch (const Error &e) {
      EXPECT_NE(std::string(e.what()).find(what), std::string::npos) << e.what();
    }
  };
  MemoryPlan overlap = good; // %a and %b both live at node 2
  overlap.values[1].offset = overlap.values[0].offset;
  expectError(overlap, "are live at once and share bytes");
  MemoryPlan unaligned = good;
  unaligned.values[1].offset += 8;
  unaligned.arenaBytes += 64;
  expectError(unaligned, "expected a multiple of 64");
  MemoryPlan outside = good;
  outside.arenaBytes = 128;
  expectError(outside, "past the arena");
  MemoryPlan missing = good;
  missing.values.pop_back();
  expectError(missing, "has no place in the arena");
  MemoryPlan badShare = good; // %b claims to be in place over %a, but %a is read later
  badShare.values[1].kind = ValuePlacement::Kind::InPlace;
  badShare.values[1].shares = g->findValue("a");
  badShare.values[1].offset = badShare.values[0].offset;
  expectError(badShare, "which the rules do not allow");
}

//===- random DAGs -------------------------------------------------------===//

TEST(PlanMemory, RandomDAGsVerifyAndRunInTheArena) {
  int planned = 0, inPlace = 0, alias = 0;
  for (unsigned seed = 0; seed < 300; ++seed) {
    std::mt19937 rng(seed);
    auto g = randomGraph(rng, 3 + int(rng() % 40));
    std::map<std::string, Tensor> inputs;
    for (Value *v : g->inputs)
      inputs[v->name()] = randomTensor(*v, rng);
    std::map<std::string, Object> objs;
    for (auto &[k, t] : inputs)
      objs[k] = Object(t);
    auto want = Interpreter(*g).run(objs);
    for (int variant = 0; variant < 4; ++variant) {
      PlanOptions opts;
      opts.fit = variant & 1 ? PlanOptions::Fit::First : PlanOptions::Fit::Best;
      opts.outputsInArena = variant & 2;
      opts.alignment = int64_t(1) << (rng() % 8);
      opts.inPlace = opts.aliasViews = rng() % 4 != 0;
      SCOPED_TRACE(concat("seed ", seed, " variant ", variant, " alignment ", opts.alignment));
      MemoryPlan plan = planMemory(*g, opts);
      ASSERT_NO_THROW(verifyMemoryPlan(*g, plan)) << [&] {
        std::ostringstream os;
        printGraph(os, *g);
        printMemoryPlan(os, plan);
        return os.str();
      }();
      EXPECT_LE(plan.peakLiveBytes, plan.arenaBytes);
      EXPECT_LE(plan.arenaBytes, plan.sumBytes + opts.alignment);
      auto got = runInArena(*g, plan, inputs);
      for (size_t i = 0; i < g->outputs.size(); ++i)
        EXPECT_TRUE(got[i].equals(want[g->outputs[i]->name()].tensor))
            << "output " << g->outputs[i]->name();
      planned += int(plan.values.size());
      for (auto &p : plan.values) {
        inPlace += p.kind == ValuePlacement::Kind::InPlace;
        alias += p.kind == ValuePlacement::Kind::Alias;
      }
    }
  }
  // The generator must exercise the sharing rules, not only plain placement.
  EXPECT_GT(inPlace, 100);
  EXPECT_GT(alias, 50);
  EXPECT_GT(planned, 10000);
}

//===- the shared models -------------------------------------------------===//


class PlanMemoryModel : public ::testing::TestWithParam<const char *> {};

TEST_P(PlanMemoryModel, PlansAndVerifies) {
  std::filesystem::path path = std::filesystem::path(sharedModelsDir()) / (std::string(GetParam()) + ".onnx");
  if (!std::filesystem::exists(path))
    GTEST_SKIP() << path << " is absent (set TESSEL_SHARED_MODELS to the shared models folder)";
  Model m = loadOnnx(path.string());
  optimizeGraph(*m.graph, 3);
  for (int variant = 0; variant < 4; ++variant) {
    PlanOptions opts;
    opts.fit = variant & 1 ? PlanOptions::Fit::First : PlanOptions::Fit::Best;
    opts.outputsInArena = variant & 2;
    MemoryPlan plan = planMemory(*m.graph, opts);
    verifyMemoryPlan(*m.graph, plan);
    EXPECT_GT(plan.values.size(), 0u);
    EXPECT_LE(plan.peakLiveBytes, plan.arenaBytes);
    EXPECT_LT(plan.arenaBytes, plan.sumBytes) << "some reuse is expected on every model";
  }
}

INSTANTIATE_TEST_SUITE_P(Shared, PlanMemoryModel,
                         ::testing::Values("mlp", "digits_cnn", "resnet18", "mobilenet_v2",
                                           "transformer"));

} // namespace
