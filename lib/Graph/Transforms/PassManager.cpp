//===- PassManager.cpp - runs named passes with printing, timing, stats ---===//
#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Transforms.h"

namespace tessel {

void runPasses(Graph &g, const std::vector<std::string> &passes, const PassOptions &opts) {
  for (auto &name : passes) {
    const PassInfo *p = findGraphPass(name);
    if (!p) {
      std::string known;
      for (auto &q : allGraphPasses())
        known += (known.empty() ? "" : ", ") + std::string(q.name);
      fail("unknown pass '", name, "'; known passes: ", known);
    }
    PassStats stats;
    p->run(g, stats);
    if (opts.verify) {
      inferShapes(g);
      verifyGraph(g);
    }
  }
}

void optimizeGraph(Graph &g, int optLevel, const PassOptions &opts) {
  runPasses(g, defaultPipeline(optLevel), opts);
}

} // namespace tessel
