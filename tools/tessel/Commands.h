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
};
int runConformance(const ConformanceOptions &opts);

} // namespace tessel::cli
