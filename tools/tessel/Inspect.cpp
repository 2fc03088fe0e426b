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
// A .tsl artifact (docs/artifact.md, "Inspecting an artifact") is read with the runtime's own
// checker (runtime::ArtifactFile: parseArtifact, no code loaded, no CPU check): its metadata
// (`input NAME: f32[...]`, `output ...`, target, CPU features, tessel version, source hash, opt
// level), one `kernel I: SYMBOL flops F (args)` line per execution-plan step, the memory line in
// the format above (peak live bytes from the slices' first and last steps), weights, fallback
// nodes, and `size: F bytes: code C (x%), weights W (y%), rest R (z%)` with the section table.
// A truncated or corrupted file is the runtime's error, exit status 1.
//
//===----------------------------------------------------------------------===//
#include "Commands.h"

#include "tessel/Compiler/Flops.h"
#include "tessel/Frontend/ONNX.h"
#include "tessel/Graph/Fusion.h"
#include "tessel/Graph/MemoryPlan.h"
#include "tessel/Graph/Transforms.h"
#include "tessel/runtime/Artifact.h"
#include "tessel/runtime/Model.h"

#include <algorithm>
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

/// "12.5%" of `part` in `whole`.
std::string percent(uint64_t part, uint64_t whole) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.1f%%", whole ? 100.0 * double(part) / double(whole) : 0.0);
  return buf;
}

std::string joined(const std::vector<std::string> &items, const char *none) {
  if (items.empty())
    return none;
  std::string s;
  for (const std::string &i : items)
    s += (s.empty() ? "" : ", ") + i;
  return s;
}

/// "input x", "weight conv.w", "arena slice t", "scalar 5": what step argument `a` names.
std::string describeArg(const runtime::ArtifactContents &c, const runtime::StepArg &a) {
  std::string kind = runtime::argKindName(a.kind);
  auto idx = size_t(a.value);
  switch (a.kind) {
  case runtime::ArgKind::Input: return kind + " " + c.metadata.inputs[idx].name;
  case runtime::ArgKind::Output: return kind + " " + c.metadata.outputs[idx].name;
  case runtime::ArgKind::Weight: return kind + " " + c.weights[idx].desc.name;
  case runtime::ArgKind::Arena: return kind + " " + c.memoryPlan.slices[idx].name;
  case runtime::ArgKind::Scalar: return kind + " " + std::to_string(a.value);
  }
  return kind;
}

/// The largest sum of arena-slice bytes live at one step, a slice being live from the first
/// step that names it to the last (the compiler plans the arena over these lifetimes).
uint64_t peakLiveBytes(const runtime::ArtifactContents &c) {
  size_t n = c.memoryPlan.slices.size();
  std::vector<int64_t> first(n, -1), last(n, -1);
  for (size_t s = 0; s < c.steps.size(); ++s)
    for (const runtime::StepArg &a : c.steps[s].args)
      if (a.kind == runtime::ArgKind::Arena) {
        auto i = size_t(a.value);
        if (first[i] < 0)
          first[i] = int64_t(s);
        last[i] = int64_t(s);
      }
  uint64_t peak = 0;
  for (size_t s = 0; s < c.steps.size(); ++s) {
    uint64_t live = 0;
    for (size_t i = 0; i < n; ++i)
      if (first[i] >= 0 && first[i] <= int64_t(s) && int64_t(s) <= last[i])
        live += c.memoryPlan.slices[i].size;
    peak = std::max(peak, live);
  }
  return peak;
}

/// `tessel inspect MODEL.tsl`: what a compiled artifact holds, read with the runtime's own
/// checker (runtime::ArtifactFile: parseArtifact, no code loaded), so a truncated or corrupted
/// file gives the runtime's error and an artifact compiled for another CPU can be inspected.
int inspectArtifact(const std::string &path) {
  runtime::ArtifactFile file = runtime::ArtifactFile::read(path);
  const runtime::ArtifactContents &c = file.contents();
  const runtime::Metadata &m = c.metadata;
  std::vector<double> flops = runtime::parseKernelFlops(c, path);
  auto extra = [&](std::string_view key) -> const std::string * {
    for (const auto &[k, v] : m.extra)
      if (k == key)
        return &v;
    return nullptr;
  };

  std::cout << "artifact: " << path << " (format version " << runtime::kArtifactVersion << ", "
            << c.sections.size() << " sections)\n";
  std::cout << "tessel version: " << (m.tesselVersion.empty() ? "not recorded" : m.tesselVersion)
            << "\n";
  std::cout << "source hash: " << (m.sourceHash.empty() ? "not recorded" : m.sourceHash) << "\n";
  std::cout << "target: " << (m.targetTriple.empty() ? "any" : m.targetTriple) << " (cpu "
            << (m.cpuName.empty() ? "not recorded" : m.cpuName) << ")\n";
  std::cout << "cpu features: " << joined(m.cpuFeatures, "none") << "\n";
  const std::string *opt = extra("opt_level");
  std::cout << "opt level: " << (opt ? *opt : "not recorded") << "\n";
  std::cout << "buffer alignment: " << m.bufferAlignment << "\n";
  for (size_t i = 0; i < m.inputs.size(); ++i) {
    const runtime::TensorDesc &d = m.inputs[i];
    std::cout << "input " << d.name << ": " << runtime::describe(d) << " (" << runtime::byteSize(d)
              << " bytes)";
    for (const runtime::InputValue &v : c.inputValues)
      if (v.input == i)
        std::cout << " [compiled for one value: weight " << c.weights[v.weight].desc.name << "]";
    std::cout << "\n";
  }
  for (size_t i = 0; i < m.outputs.size(); ++i) {
    const runtime::TensorDesc &d = m.outputs[i];
    std::cout << "output " << d.name << ": " << runtime::describe(d) << " ("
              << runtime::byteSize(d) << " bytes)";
    for (const runtime::DynamicOutput &dyn : c.dynamicOutputs)
      if (dyn.output == i)
        std::cout << " [dim " << dyn.axis << " depends on the data: at most " << d.shape[dyn.axis]
                  << "; extent in arena slice " << c.memoryPlan.slices[dyn.slice].name << "]";
    std::cout << "\n";
  }

  size_t numFallback = 0;
  for (const runtime::Step &s : c.steps)
    numFallback += s.fallback >= 0;
  std::cout << "kernels: " << c.steps.size() << " steps (" << c.steps.size() - numFallback
            << " compiled kernels, " << numFallback << " interpreter fallback)\n";
  double totalFlops = 0;
  for (size_t i = 0; i < c.steps.size(); ++i) {
    const runtime::Step &s = c.steps[i];
    std::cout << "kernel " << i << ": " << s.symbol;
    if (s.fallback >= 0) {
      const runtime::FallbackNode &f = c.fallbacks[size_t(s.fallback)];
      std::cout << " (interpreter: node '" << f.name << "' (" << f.opType << "))";
    }
    if (!flops.empty()) {
      totalFlops += flops[i];
      std::cout << " flops " << human(int64_t(flops[i]));
    }
    std::vector<std::string> args;
    for (const runtime::StepArg &a : s.args)
      args.push_back(describeArg(c, a));
    std::cout << " (" << joined(args, "no args") << ")\n";
  }
  if (flops.empty())
    std::cout << "flops total: not recorded\n";
  else
    std::cout << "flops total: " << int64_t(totalFlops) << " (" << human(int64_t(totalFlops))
              << ")\n";

  uint64_t sum = 0;
  for (const runtime::ArenaSlice &sl : c.memoryPlan.slices)
    sum += sl.size;
  uint64_t arena = c.memoryPlan.arenaSize, peak = peakLiveBytes(c);
  char reuse[32];
  std::snprintf(reuse, sizeof reuse, "%.2f", arena ? double(sum) / double(arena) : 1.0);
  std::cout << "memory: arena " << arena << " bytes (peak live " << peak
            << " bytes, sum of intermediates " << sum << " bytes, reuse " << reuse << "x) [arena "
            << human(int64_t(arena)) << "B, peak " << human(int64_t(peak)) << "B, sum "
            << human(int64_t(sum)) << "B]\n";
  std::cout << "memory slices: " << c.memoryPlan.slices.size() << " intermediates\n";
  uint64_t weightBytes = 0;
  for (const runtime::WeightDesc &w : c.weights)
    weightBytes += w.size;
  std::cout << "weights: " << c.weights.size() << " tensors, " << weightBytes << " bytes ("
            << human(int64_t(weightBytes)) << "B; weight data with alignment padding "
            << c.weightDataSize << " bytes)\n";
  for (const runtime::WeightDesc &w : c.weights)
    std::cout << "weight " << w.desc.name << ": " << runtime::describe(w.desc) << " (" << w.size
              << " bytes)\n";
  std::vector<std::string> fallbackNames;
  for (const runtime::FallbackNode &f : c.fallbacks)
    fallbackNames.push_back(f.name + " (" + f.opType + ")");
  std::cout << "fallback nodes: " << c.fallbacks.size() << (c.fallbacks.empty() ? "" : ": ")
            << joined(fallbackNames, "") << "\n";

  uint64_t codeSection = 0, weightSection = 0;
  for (const runtime::SectionInfo &sec : c.sections) {
    if (sec.kind == runtime::SectionKind::Code)
      codeSection = sec.size;
    if (sec.kind == runtime::SectionKind::Weights)
      weightSection = sec.size;
  }
  uint64_t rest = c.fileSize - codeSection - weightSection;
  std::cout << "size: " << c.fileSize << " bytes: code " << codeSection << " ("
            << percent(codeSection, c.fileSize) << "), weights " << weightSection << " ("
            << percent(weightSection, c.fileSize) << "), rest " << rest << " ("
            << percent(rest, c.fileSize) << ") [" << human(int64_t(c.fileSize)) << "B]\n";
  for (const runtime::SectionInfo &sec : c.sections)
    std::cout << "section " << runtime::sectionKindName(sec.kind) << ": bytes " << sec.offset
              << ".." << sec.offset + sec.size << " (" << sec.size << " bytes)\n";
  for (const auto &[k, v] : m.extra)
    if (k != "opt_level" && k != "kernel_flops")
      std::cout << "metadata " << k << ": " << v << "\n";
  return 0;
}

} // namespace

int runInspect(const std::string &modelPath, int optLevel, bool fusion,
               const std::string &dotPrefix) {
  if (isArtifactPath(modelPath)) {
    TESSEL_CHECK(!fusion && dotPrefix.empty(), modelPath,
                 ": --fusion and --dot-prefix show the fusion of an .onnx model; a .tsl artifact "
                 "holds compiled kernels (inspect the .onnx it was compiled from)");
    return inspectArtifact(modelPath);
  }
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
