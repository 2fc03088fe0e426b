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
  std::string mode = "interp";   // "interp" or "compiled" (compileModel + runtime, in-process)
  bool allowInterpreterFallback = false; // compiled mode: nodes with no lowering interpreted
  int codegenOptLevel = 2;       // compiled mode: the LLVM level of the kernels (as compile)
};
int runConformance(const ConformanceOptions &opts);
/// `tessel version`: tessel and LLVM versions, host CPU name and vector features.
int printVersion();

/// `tessel inspect`: op histogram, node count, parameters, FLOPs/MACs per op type, before and
/// after optimization at `optLevel`. With `fusion`, also the fusion groups of the optimized graph
/// (docs/fusion.md); a non-empty `dotPrefix` writes DOTPREFIX.before.dot and .after.dot (and
/// .svg when Graphviz's `dot` is on PATH) and implies `fusion`. A `.tsl` path prints what the
/// compiled artifact holds instead (docs/artifact.md, "Inspecting an artifact").
int runInspect(const std::string &modelPath, int optLevel, bool fusion = false,
               const std::string &dotPrefix = "");

/// `tessel compile` and the compiled paths of `tessel run` (Compile.cpp, docs/compile.md).
struct CompileCommandOptions {
  int optLevel = 3;
  std::vector<std::string> inputShapes; // NAME=1x3x224x224
  std::vector<std::string> inputValues; // NAME=FILE.npy: compile for this value of the input
  bool verbose = false;                 // one line per kernel
  bool noParallel = false, noVectorize = false;
  bool allowInterpreterFallback = false; // nodes with no lowering run in the interpreter
};
int runCompile(const std::string &model, const std::string &output, const CompileCommandOptions &o);
/// Runs a .tsl artifact, or with `jit` compiles MODEL.onnx in memory and runs that.
int runCompiled(const std::string &model, const std::vector<std::string> &inputs,
                const std::string &outDir, unsigned seed, bool jit, const CompileCommandOptions &o);
bool isArtifactPath(const std::string &path);

/// `tessel bench` (Bench.cpp, docs/compile.md): latency statistics of a .tsl, an .onnx compiled
/// in memory, or (interp) the reference interpreter; `profile` adds per-kernel times.
struct BenchOptions {
  std::string model;
  std::vector<std::string> inputs; // NAME=FILE.npy; seeded random values for the others
  std::vector<std::string> inputShapes; // NAME=1x3x224x224, for an .onnx compiled in memory
  unsigned seed = 0;
  int threads = 0; // runtime pool size; 0: TESSEL_NUM_THREADS or all cores
  int runs = 0;    // timed runs; 0: about two seconds' worth (10..10000)
  int warmup = 3;
  bool interp = false, profile = false;
};
int runBench(const BenchOptions &o);
/// `tessel accuracy` through the runtime: MODEL is a .tsl, or an .onnx compiled in memory.
int runCompiledAccuracy(const std::string &model, const std::string &images,
                        const std::string &labels, bool printPredictions, double minAccuracy);

} // namespace tessel::cli
