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
/// after optimization at `optLevel`.
int runInspect(const std::string &modelPath, int optLevel);

} // namespace tessel::cli
