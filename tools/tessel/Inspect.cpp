//===- Inspect.cpp - tessel inspect: what a model holds and costs ---------===//
//
// Prints, before and after optimization at -O N, the node count and op histogram (top-level
// nodes), the parameter count and bytes (used initializers and Constant node values), and the
// arithmetic cost per op type counted from the inferred static shapes: MACs (multiply-adds) for
// Conv, ConvTranspose, MatMul, Gemm; FLOPs for those (2 per MAC, plus bias adds) and for pools,
// reductions, normalizations and elementwise ops (one per output element and operation; the
// normalizations and Softmax use a fixed per-element estimate). A node whose shapes are not
// static, and ops the table does not model, are reported as unknown, never guessed.
//
// Interface lines that outside scripts read:  `nodes: BEFORE -> AFTER`  and
// `op TYPE: BEFORE -> AFTER` (one per op type present before or after).
//
// Last, the static memory plan of the optimized graph (include/tessel/Graph/MemoryPlan.h,
// docs/memory-plan.md): `memory: arena A bytes (peak live P bytes, sum of intermediates S bytes,
// reuse S/A x) [arena 4.01MB, peak 4.01MB, sum 22.98MB]` and a line with the value counts;
// `memory: not planned: WHY` when the graph has values without static shapes.
//
// With --fusion, the fusion groups of the optimized graph (include/tessel/Graph/Fusion.h,
// docs/fusion.md): `fusion: N nodes -> G kernels`, the count of groups per pattern, and one
// `group ...` line per group. --dot-prefix PATH writes PATH.before.dot (the optimized graph) and
// PATH.after.dot (each group a cluster), and renders each to .svg with Graphviz's `dot` when it
// is on PATH (started with posix_spawnp and an argument vector: no shell sees the file names).
//
//===----------------------------------------------------------------------===//
#include "Commands.h"

#include "tessel/Compiler/Flops.h"
#include "tessel/Frontend/ONNX.h"
#include "tessel/Graph/Fusion.h"
#include "tessel/Graph/MemoryPlan.h"
#include "tessel/Graph/Transforms.h"

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <set>
#include <unordered_set>

#include <spawn.h>
#include <sys/wait.h>

extern char **environ;

namespace tessel::cli {

namespace {

using Cost = NodeCost;

struct OpStats {
  int64_t count = 0, unknown = 0;
  Cost cost;
};

struct Summary {
  int64_t nodes = 0, params = 0, paramBytes = 0;
  std::map<std::string, OpStats> ops;
  Cost total;
  int64_t unknown = 0;
};

void collectCaptures(const Graph &g, std::unordered_set<const Value *> &out) {
  for (auto &v : g.values())
    for (const Value *o = v->outer; o; o = o->outer)
      out.insert(o);
  for (auto &n : g.nodes())
    for (auto &[k, a] : n->attrs) {
      if (a.g)
        collectCaptures(*a.g, out);
      for (auto &sg : a.graphs)
        if (sg)
          collectCaptures(*sg, out);
    }
}

int64_t tensorBytes(const Tensor &t) {
  if (t.dtype() != DType::string)
    return int64_t(t.nbytes());
  int64_t b = 0;
  for (int64_t i = 0; i < t.numel(); ++i)
    b += int64_t(t.data<std::string>()[i].size());
  return b;
}

Summary summarize(const Graph &g) {
  Summary s;
  std::unordered_set<const Value *> captured;
  collectCaptures(g, captured);
  std::unordered_set<const Value *> outputs(g.outputs.begin(), g.outputs.end());
  std::unordered_set<const Value *> seen;
  auto addParam = [&](const Tensor &t) {
    s.params += t.numel();
    s.paramBytes += tensorBytes(t);
  };
  for (const Value *v : g.initializers)
    if (v && v->isConstant() && seen.insert(v).second &&
        (!v->uses().empty() || outputs.count(v) || captured.count(v)))
      addParam(v->constant);
  for (auto &np : g.nodes()) {
    const Node &n = *np;
    ++s.nodes;
    OpStats &o = s.ops[(n.domain.empty() || n.domain == "ai.onnx" ? "" : n.domain + ".") + n.opType];
    ++o.count;
    if (n.opType == "Constant" && n.domain.empty())
      if (const Attribute *a = n.attr("value"); a && a->kind == Attribute::Kind::Tensor)
        addParam(a->t);
    auto c = nodeCost(n);
    if (!c) {
      ++o.unknown;
      ++s.unknown;
      continue;
    }
    o.cost.macs += c->macs;
    o.cost.flops += c->flops;
    s.total.macs += c->macs;
    s.total.flops += c->flops;
  }
  return s;
}

std::string human(int64_t v) {
  const char *units[] = {"", "K", "M", "G", "T", "P"};
  double d = double(v);
  int u = 0;
  while (d >= 1000 && u < 5) {
    d /= 1000;
    ++u;
  }
  char buf[32];
  if (u == 0)
    std::snprintf(buf, sizeof buf, "%lld", (long long)v);
  else
    std::snprintf(buf, sizeof buf, "%.2f%s", d, units[u]);
  return buf;
}

/// "123" or "123 (+2 unknown)"; "-" when the op is absent.
std::string costText(const OpStats *o, int64_t Cost::*field) {
  if (!o || o->count == 0)
    return "-";
  if (o->unknown == o->count)
    return "unknown";
  std::string s = std::to_string(o->cost.*field);
  if (o->unknown)
    s += " (+" + std::to_string(o->unknown) + " unknown)";
  return s;
}

/// The memory lines: the static arena of the (optimized) graph's intermediates.
void printMemorySummary(const Graph &g) {
  MemoryPlan plan;
  try {
    plan = planMemory(g);
    verifyMemoryPlan(g, plan);
  } catch (const Error &e) {
    std::cout << "memory: not planned: " << e.what() << "\n";
    return;
  }
  char reuse[32];
  std::snprintf(reuse, sizeof reuse, "%.2f", plan.reuseFactor());
  std::cout << "memory: arena " << plan.arenaBytes << " bytes (peak live " << plan.peakLiveBytes
            << " bytes, sum of intermediates " << plan.sumBytes << " bytes, reuse " << reuse
            << "x) [arena " << human(plan.arenaBytes) << "B, peak " << human(plan.peakLiveBytes)
            << "B, sum " << human(plan.sumBytes) << "B]\n";
  int64_t inPlace = 0, alias = 0;
  for (const ValuePlacement &p : plan.values) {
    inPlace += p.kind == ValuePlacement::Kind::InPlace;
    alias += p.kind == ValuePlacement::Kind::Alias;
  }
  std::cout << "memory values: " << plan.values.size() << " intermediates in " << plan.numBlocks
            << " blocks (" << inPlace << " in place, " << alias << " views), alignment "
            << plan.alignment << "\n";
}

/// Renders `dotPath` to `svgPath` with Graphviz. False (with a note) when `dot` is not on PATH;
/// an Error when it runs and fails.
bool renderSvg(const std::string &dotPath, const std::string &svgPath) {
  std::string outArg = "-o" + svgPath;
  std::vector<char *> argv = {const_cast<char *>("dot"), const_cast<char *>("-Tsvg"),
                              outArg.data(), const_cast<char *>(dotPath.c_str()), nullptr};
  pid_t pid = 0;
  int rc = posix_spawnp(&pid, "dot", nullptr, nullptr, argv.data(), environ);
  if (rc == ENOENT) {
    std::cout << "fusion svg: not written (Graphviz's `dot` is not on PATH)\n";
    return false;
  }
  TESSEL_CHECK(rc == 0, "cannot start Graphviz's `dot` for ", dotPath, ": ", std::strerror(rc));
  int status = 0;
  while (waitpid(pid, &status, 0) < 0)
    TESSEL_CHECK(errno == EINTR, "waiting for Graphviz's `dot`: ", std::strerror(errno));
  TESSEL_CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0, "Graphviz's `dot -Tsvg ", dotPath,
               "` failed (", WIFEXITED(status) ? "exit status " : "signal ",
               WIFEXITED(status) ? WEXITSTATUS(status) : WTERMSIG(status), ")");
  return true;
}

void writeDotFile(const std::string &path, const Graph &g, const FusionPlan *plan) {
  std::ofstream f(path, std::ios::binary);
  TESSEL_CHECK(f, path, ": cannot open the DOT output file");
  writeFusionDot(f, g, plan);
  f.close();
  TESSEL_CHECK(f, path, ": cannot write the DOT output file");
  std::cout << "fusion dot: " << path << "\n";
}

/// The fusion lines (and DOT/SVG pictures) of the optimized graph.
void printFusionSummary(const Graph &g, const std::string &dotPrefix) {
  FusionPlan plan = fuseOps(g);
  verifyFusionPlan(g, plan);
  std::cout << "fusion: " << plan.numNodes << " nodes -> " << plan.groups.size() << " kernels\n";
  std::map<std::string_view, int64_t> byPattern;
  int64_t fused = 0;
  for (const FusionGroup &grp : plan.groups) {
    ++byPattern[opPatternName(grp.pattern)];
    fused += grp.nodes.size() > 1;
  }
  std::cout << "fusion groups:";
  for (auto &[name, count] : byPattern)
    std::cout << " " << name << " " << count << ",";
  std::cout << " of them " << fused << " with more than one node\n";
  printFusionPlan(std::cout, plan);
  if (dotPrefix.empty())
    return;
  writeDotFile(dotPrefix + ".before.dot", g, nullptr);
  writeDotFile(dotPrefix + ".after.dot", g, &plan);
  if (renderSvg(dotPrefix + ".before.dot", dotPrefix + ".before.svg") &&
      renderSvg(dotPrefix + ".after.dot", dotPrefix + ".after.svg"))
    std::cout << "fusion svg: " << dotPrefix << ".before.svg, " << dotPrefix << ".after.svg\n";
}

} // namespace

int runInspect(const std::string &modelPath, int optLevel, bool fusion,
               const std::string &dotPrefix) {
  Model m = loadOnnx(modelPath);
  Graph &g = *m.graph;
  Summary before = summarize(g);
  optimizeGraph(g, optLevel);
  Summary after = summarize(g);

  std::cout << "model: " << modelPath << "\n";
  std::cout << "opset: " << g.opsetVersion("") << "; before -> after -O" << optLevel << "\n";
  std::cout << "nodes: " << before.nodes << " -> " << after.nodes << "\n";
  std::set<std::string> types;
  for (auto &[k, v] : before.ops)
    types.insert(k);
  for (auto &[k, v] : after.ops)
    types.insert(k);
  auto find = [](const Summary &s, const std::string &k) -> const OpStats * {
    auto it = s.ops.find(k);
    return it == s.ops.end() ? nullptr : &it->second;
  };
  for (auto &t : types) {
    const OpStats *b = find(before, t), *a = find(after, t);
    std::cout << "op " << t << ": " << (b ? b->count : 0) << " -> " << (a ? a->count : 0) << "\n";
  }
  std::cout << "parameters: " << before.params << " -> " << after.params << "\n";
  std::cout << "parameter bytes: " << before.paramBytes << " -> " << after.paramBytes << " ("
            << human(before.paramBytes) << "B -> " << human(after.paramBytes) << "B)\n";
  for (auto &t : types) {
    const OpStats *b = find(before, t), *a = find(after, t);
    bool anyMacs = (b && b->cost.macs) || (a && a->cost.macs);
    bool anyFlops = (b && (b->cost.flops || b->unknown)) || (a && (a->cost.flops || a->unknown));
    if (anyMacs)
      std::cout << "macs " << t << ": " << costText(b, &Cost::macs) << " -> "
                << costText(a, &Cost::macs) << "\n";
    if (anyFlops)
      std::cout << "flops " << t << ": " << costText(b, &Cost::flops) << " -> "
                << costText(a, &Cost::flops) << "\n";
  }
  auto total = [](const Summary &s, int64_t Cost::*f) {
    std::string r = std::to_string(s.total.*f) + " (" + human(s.total.*f) + ")";
    if (s.unknown)
      r += " +" + std::to_string(s.unknown) + " nodes unknown";
    return r;
  };
  std::cout << "macs total: " << total(before, &Cost::macs) << " -> " << total(after, &Cost::macs)
            << "\n";
  std::cout << "flops total: " << total(before, &Cost::flops) << " -> "
            << total(after, &Cost::flops) << "\n";
  printMemorySummary(g);
  if (fusion || !dotPrefix.empty())
    printFusionSummary(g, dotPrefix);
  return 0;
}

} // namespace tessel::cli
