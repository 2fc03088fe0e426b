//===- Commands.h - tessel CLI subcommands ----------------------*- C++ -*-===//
#pragma once

#include <string>
#include <vector>

namespace tessel::cli {

struct ConformanceOptions {
  std::vector<std::string> dirs;
  std::string filter;            // regex on the test folder name
  bool verbose = false;          // one line per test
  std::string report;            // markdown report path ("" = none)
  std::string expectedFailures;  // checked-in list; "" = no check
  int jobs = 1;
  int timeoutSeconds = 120;
  double rtol = 1e-3, atol = 1e-5;
  int optLevel = 0;              // optimizeGraph at this level before interpreting
};
int runConformance(const ConformanceOptions &opts);
/// `tessel version`: tessel and LLVM versions, host CPU name and vector features.
int printVersion();

/// `tessel inspect`: op histogram, node count, parameters, FLOPs/MACs per op type, before and
/// after optimization at `optLevel`. With `fusion`, also the fusion groups of the optimized graph
/// (docs/fusion.md); a non-empty `dotPrefix` writes DOTPREFIX.before.dot and .after.dot (and
/// .svg when Graphviz's `dot` is on PATH) and implies `fusion`.
int runInspect(const std::string &modelPath, int optLevel, bool fusion = false,
               const std::string &dotPrefix = "");

} // namespace tessel::cli
