//===- Transforms.h - graph passes and the pipeline -------------*- C++ -*-===//
//
// A graph pass is one file in lib/Graph/Transforms with one entry point that rewrites a Graph in
// place and counts what it did in PassStats (e.g. "nodes-removed"). It returns true when it
// changed the graph. lib/Graph/Transforms/Pipeline.cpp holds the table of passes by name and
// the default pipelines for -O0..-O3, with the reason for each ordering constraint.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Graph/IR.h"

#include <iosfwd>
#include <map>
#include <set>
#include <string>
#include <vector>

namespace tessel {

/// Per-pass counters, e.g. {"nodes-removed": 3}. Printed by --stats.
struct PassStats {
  std::map<std::string, int64_t> counters;
  void add(const std::string &name, int64_t n = 1) { counters[name] += n; }
};

// The passes (one file each). Each returns true when it changed the graph.
bool eliminateDeadCode(Graph &g, PassStats &stats);          // dce
bool eliminateCommonSubexpr(Graph &g, PassStats &stats);     // cse
bool foldConstants(Graph &g, PassStats &stats);              // fold-constants
bool simplifyAlgebra(Graph &g, PassStats &stats);            // simplify
bool foldShapeComputations(Graph &g, PassStats &stats);      // fold-shapes
bool foldBatchNorm(Graph &g, PassStats &stats);              // fold-batchnorm
bool fuseMatMulAdd(Graph &g, PassStats &stats);              // matmul-add-to-gemm
bool foldPadIntoConvPool(Graph &g, PassStats &stats);        // fold-pad
bool sinkTransposes(Graph &g, PassStats &stats);             // sink-transpose
bool transformLayout(Graph &g, PassStats &stats);            // transform-layout
bool inlineControlFlow(Graph &g, PassStats &stats);          // inline-control-flow
bool expandTrainingDropout(Graph &g, PassStats &stats);      // expand-training-dropout
bool foldStaticSequences(Graph &g, PassStats &stats);        // fold-static-sequences

struct PassInfo {
  const char *name;        // the name used by --passes / --print-after
  const char *description; // one line, for --help and docs
  bool (*run)(Graph &, PassStats &);
};
/// Every graph pass, by name.
const std::vector<PassInfo> &allGraphPasses();
const PassInfo *findGraphPass(const std::string &name);

/// The default pipeline for an optimization level (0..3), as pass names.
std::vector<std::string> defaultPipeline(int optLevel);

struct PassOptions {
  bool printAfterAll = false;
  std::set<std::string> printAfter; // pass names
  bool timing = false;              // --pass-timing: time per pass
  bool stats = false;               // per-pass statistics
  bool verify = true;               // verifier (and shape inference) between passes
  std::ostream *log = nullptr;      // where printing/timing/stats go (default std::cerr)
};

/// Runs the named passes in order (a name may repeat). Unknown names are an Error listing the
/// known ones. Between passes (when opts.verify) re-runs shape inference and the verifier, and
/// names the pass that broke the graph.
void runPasses(Graph &g, const std::vector<std::string> &passes, const PassOptions &opts = {});
/// runPasses(g, defaultPipeline(optLevel), opts).
void optimizeGraph(Graph &g, int optLevel, const PassOptions &opts = {});

} // namespace tessel
