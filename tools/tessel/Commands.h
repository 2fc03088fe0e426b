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

/// `tessel compile` and the compiled paths of `tessel run` (Compile.cpp, docs/compile.md).
struct CompileCommandOptions {
  int optLevel = 3;
  std::vector<std::string> inputShapes; // NAME=1x3x224x224
  bool verbose = false;                 // one line per kernel
  bool noParallel = false, noVectorize = false;
};
int runCompile(const std::string &model, const std::string &output, const CompileCommandOptions &o);
/// Runs a .tsl artifact, or with `jit` compiles MODEL.onnx in memory and runs that.
int runCompiled(const std::string &model, const std::vector<std::string> &inputs,
                const std::string &outDir, unsigned seed, bool jit, const CompileCommandOptions &o);
bool isArtifactPath(const std::string &path);

} // namespace tessel::cli
