//===- PassManager.cpp - runs named passes with printing, timing, stats ---===//
//
// runPasses checks every name first (an unknown one is an Error listing the known passes), then
// runs the passes in order. After each pass it may print the graph (--print-after-all,
// --print-after=P; "(unchanged)" when the pass changed nothing), and, when opts.verify, re-runs
// shape inference and the verifier so that a pass that broke the graph is named. At the end it
// prints the wall time per pass (--pass-timing) and each pass's counters (--stats).
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Text.h"
#include "tessel/Graph/Transforms.h"

#include <chrono>
#include <cstdio>
#include <iostream>

namespace tessel {

namespace {

struct PassRun {
  std::string name;
  bool changed = false;
  double ms = 0;       // the pass itself
  double verifyMs = 0; // shape inference + verifier after it
  PassStats stats;
};

std::string knownPasses() {
  std::string known;
  for (auto &q : allGraphPasses())
    known += (known.empty() ? "" : ", ") + std::string(q.name);
  return known;
}

void printAfter(std::ostream &os, const PassRun &r, const Graph &g) {
  if (!r.changed) {
    os << "// -----// IR after " << r.name << " (unchanged) //----- //\n";
    return;
  }
  os << "// -----// IR after " << r.name << " //----- //\n";
  PrintOptions po;
  po.elideAbove = 64; // dumps stay short; they need not parse back
  printGraph(os, g, po);
}

std::string fmt(const char *f, double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

void printTiming(std::ostream &os, const std::vector<PassRun> &runs) {
  double total = 0, verify = 0;
  for (auto &r : runs) {
    total += r.ms + r.verifyMs;
    verify += r.verifyMs;
  }
  os << "===- pass timing (wall) -===\n";
  os << "  total: " << fmt("%.3f", total) << " ms\n";
  os << "   wall (ms)      %  pass\n";
  auto row = [&](double ms, const std::string &name) {
    os << fmt("%10.3f", ms) << "  " << fmt("%5.1f", total > 0 ? 100.0 * ms / total : 0.0) << "  "
       << name << "\n";
  };
  for (auto &r : runs)
    row(r.ms, r.name);
  if (verify > 0)
    row(verify, "(verifier and shape inference between passes)");
  row(total, "total");
}

void printStats(std::ostream &os, const std::vector<PassRun> &runs) {
  os << "===- pass statistics -===\n";
  for (auto &r : runs) {
    os << "pass '" << r.name << "':";
    if (r.stats.counters.empty())
      os << " (no changes)";
    bool first = true;
    for (auto &[k, v] : r.stats.counters) {
      os << (first ? " " : ", ") << k << " = " << v;
      first = false;
    }
    os << "\n";
  }
}

} // namespace

void runPasses(Graph &g, const std::vector<std::string> &passes, const PassOptions &opts) {
  std::vector<const PassInfo *> infos;
  for (auto &name : passes) {
    const PassInfo *p = findGraphPass(name);
    if (!p)
      fail("unknown pass '", name, "'; known passes: ", knownPasses());
    infos.push_back(p);
  }
  std::ostream &log = opts.log ? *opts.log : std::cerr;
  using Clock = std::chrono::steady_clock;
  auto ms = [](Clock::time_point a, Clock::time_point b) {
    return std::chrono::duration<double, std::milli>(b - a).count();
  };
  // Graph outputs keep their names: users, files and the ONNX writer are keyed by them.
  std::vector<std::string> outputNames;
  for (const Value *v : g.outputs)
    outputNames.push_back(v->name());
  std::vector<PassRun> runs;
  for (const PassInfo *p : infos) {
    PassRun r;
    r.name = p->name;
    auto t0 = Clock::now();
    try {
      r.changed = p->run(g, r.stats);
    } catch (const std::exception &e) {
      fail("in pass '", p->name, "': ", e.what());
    }
    g.restoreOutputNames(outputNames);
    auto t1 = Clock::now();
    r.ms = ms(t0, t1);
    if (opts.verify) {
      try {
        inferShapes(g);
        verifyGraph(g);
      } catch (const std::exception &e) {
        fail("after pass '", p->name, "': ", e.what());
      }
      r.verifyMs = ms(t1, Clock::now());
    }
    if (opts.printAfterAll || opts.printAfter.count(p->name))
      printAfter(log, r, g);
    runs.push_back(std::move(r));
  }
  if (opts.timing)
    printTiming(log, runs);
  if (opts.stats)
    printStats(log, runs);
  log.flush();
}

void optimizeGraph(Graph &g, int optLevel, const PassOptions &opts) {
  runPasses(g, defaultPipeline(optLevel), opts);
}

} // namespace tessel
