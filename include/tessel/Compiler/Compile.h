//===- Compile.h - whole-model compilation to a .tsl artifact ----*- C++ -*-===//
//
// compileModel ties the pieces of issue 5 together (docs/compile.md):
//
//   optimizeGraph(-O N) -> static shapes (inferShapes; --input-shape fixes symbolic dims)
//   -> fuseOps -> per fusion group: lowerNode of each node over the group's placeholders,
//      intermediates compute_inline, reductions as root stages, a default schedule per root
//      stage (Schedule.cpp) -> te::lower -> loop::lowerPipeline -> codegen::emitLLVM
//   -> one object per kernel -> one shared library (tessel_parallel_for left undefined: the
//      process that loads the artifact links libtessel_runtime.so)
//   -> planMemory over the values that cross kernels -> artifact::Writer (weights, arena,
//      one step per kernel, metadata).
//
//   tessel::CompiledModel cm = tessel::compileModel(graph, opts);
//   cm.write("model.tsl");
//
// Heavy headers (LLVM, TE) stay in lib/Compiler/*.cpp.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Graph/IR.h"

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace tessel {

/// The structure of a sequence or optional input, fixed at compile time (docs/compile.md,
/// "Sequence and optional inputs and outputs"). Element dtypes come from the model's types.
struct InputStructure {
  enum class Kind : uint8_t {
    Tensor,   ///< a present optional tensor of shape `dims`
    Sequence, ///< a sequence (or a present optional sequence) of `elements.size()` tensors
    Absent,   ///< an absent optional
  };
  Kind kind = Kind::Tensor;
  /// Written as `opt(...)`: the input must be an optional (a bare spec fits either).
  bool optional = false;
  std::vector<int64_t> dims;                  ///< Tensor: its static dims ({} = a scalar)
  std::vector<std::vector<int64_t>> elements; ///< Sequence: each element's static dims
};

struct CompileOptions {
  /// Graph optimization level (optimizeGraph), 0..3.
  int optLevel = 3;
  /// Fixes input shapes: input name -> static dims (`--input-shape x=1x3x224x224`). Every
  /// symbolic or unknown input dim must be fixed this way, else compileModel fails naming it.
  std::map<std::string, std::vector<int64_t>> inputShapes;
  /// Fixes the structure of sequence and optional inputs: input name -> structure
  /// (`--input-shape x=seq(2x3,4x3)`, `x=none`, `x=opt(seq(2x3))`). A sequence input `x` of n
  /// elements becomes the tensor inputs `x[0]`..`x[n-1]`, a present optional the tensor input
  /// `x`, an absent one no input. A present optional tensor may also be given by inputShapes.
  std::map<std::string, InputStructure> inputStructures;
  /// Fixes inputs to one value (`--input-value n=n.npy`): the compiler folds the value as a
  /// constant, so that shapes and Loop trip counts computed from it become static, while the
  /// artifact keeps the input and the runtime rejects a run that gives another value
  /// (docs/compile.md, "Input values").
  std::map<std::string, Tensor> inputValues;
  /// Code generation target: "host" (the only one whose artifact this machine can run).
  std::string target = "host";
  /// The LLVM level for the kernels (0..3). 2: the kernels arrive vectorized, unrolled and
  /// register-tiled by their TE schedules, and LLVM's O3 additions (aggressive inlining, loop
  /// unswitching, ...) measured no faster on the benchmark models while compiling 13-25% slower
  /// (docs/compile.md).
  unsigned codegenOptLevel = 2;
  /// Default schedules: parallel outer loops and vectorized inner loops (off: plain loops).
  bool parallel = true;
  bool vectorize = true;
  /// The hash of the source model file for the metadata ("" = none recorded).
  std::string sourceHash;
  /// Largest fusion group (FuseOptions::maxGroupSize); 1 = one kernel per node.
  int64_t maxGroupSize = 256;
  /// Prints per-kernel progress to stderr.
  bool verbose = false;
  /// A node whose op has no lowering runs in the reference interpreter (a fallback step of the
  /// execution plan; the artifact lists it in its metadata) instead of failing the compile.
  bool allowInterpreterFallback = false;
};

/// One generated kernel: `void symbol(void **args)`.
struct CompiledKernel {
  std::string symbol;              ///< "k3_conv_add_relu_f32"
  std::vector<std::string> nodes;  ///< the graph nodes it computes (fusionNodeLabel)
  std::vector<std::string> args;   ///< value names, in the kernel's parameter order
  std::string schedule;            ///< a one-line description of the schedule applied
  int64_t flops = 0;               ///< FLOPs of its nodes (Flops.h; unmodelled nodes count 0)
};

struct CompiledModel {
  /// The .tsl file's bytes (validated by the runtime's parser before it is returned).
  std::vector<uint8_t> artifact;
  std::vector<CompiledKernel> kernels;
  /// Nodes run by the interpreter fallback ("node 'x' (Op)"); empty without
  /// allowInterpreterFallback. Their kernels[] entries have symbol "$fallback.<i>".
  std::vector<std::string> fallbackNodes;
  int64_t numNodes = 0;
  int64_t arenaBytes = 0;
  int64_t weightBytes = 0;
  size_t codeBytes = 0;
  /// Seconds spent in each phase (graph, lower+schedule, LLVM, link, write).
  double secondsGraph = 0, secondsLower = 0, secondsLLVM = 0, secondsLink = 0, secondsTotal = 0;

  /// Writes `artifact` to `path` (Error naming the file if it cannot be written).
  void write(const std::string &path) const;
};

/// Compiles `g`, which it optimizes and whose input shapes it fixes in place. Errors (tessel::Error) name
/// what stopped it: a symbolic input dim, a node whose op has no lowering (node and op), a
/// lowering's unsupported case, a non-tensor value.
CompiledModel compileModel(Graph &g, const CompileOptions &opts = {});

/// Parses `NAME=1x3x224x224` (`NAME=scalar` for rank 0) into opts.inputShapes, and the
/// structure of a sequence or optional input into opts.inputStructures: `NAME=seq(2x3,4x3)`
/// (`seq()`: empty, `seq(scalar)`: one rank-0 element), `NAME=none` (an absent optional),
/// `NAME=opt(2x3)`, `NAME=opt(seq(2x3))`. Error naming the spec when malformed.
void parseInputShapeSpec(const std::string &spec, CompileOptions &opts);

} // namespace tessel
