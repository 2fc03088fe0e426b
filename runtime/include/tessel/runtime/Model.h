//===- Model.h - load and run a compiled model (.tsl) -----------*- C++ -*-===//
//
// A Model is a loaded artifact (Artifact.h, docs/artifact.md), ready to run:
//
//   tessel::runtime::Model model = tessel::runtime::Model::load("model.tsl");
//   std::vector<tessel::runtime::HostTensor> out = model.run({input});
//
// Loading checks everything before anything is used: the file's structure and checksums
// (parseArtifact), that the target triple's architecture is this machine's, that this CPU has
// every feature the code needs (a missing one is named), then writes the code section to a
// private in-memory file (memfd_create; a deleted temp file where that is missing), dlopens it
// with RTLD_NOW | RTLD_LOCAL (its `tessel_parallel_for` resolves to libtessel_runtime.so,
// which is made RTLD_GLOBAL first when the host loaded it RTLD_LOCAL, as Python's ctypes does;
// the memfd stays open while the model lives, so each model's code has its own path) and resolves every kernel symbol of the execution plan (a missing one is
// named). Errors are tessel::Error; nothing aborts.
//
// Kernel ABI: `void kernel(void **args)`, args[i] the data pointer of a buffer (input, output,
// weight, arena slice) or the address of an int64_t scalar: the ABI of the LLVM emitter's
// `NAME(void **args)` entry points (CodeGen/EmitLLVM.h). Kernels write outputs directly into
// the caller's output buffers (staged through aligned copies when the artifact asks for an
// alignment the caller's pointers do not have).
//
// Thread safety: a loaded Model is immutable; run() is const and may be called from any number
// of threads at once. Intermediates live in arenas taken from a per-Model pool (a mutex-guarded
// free list; a caller that finds it empty allocates a new 64-byte-aligned arena, and returns it
// to the pool after the run), so concurrent runs never share scratch memory and each gives the
// same bits as a single-threaded run. The pool holds at most as many arenas as there were
// concurrent runs; they are freed with the Model.
//
// A .tsl file holds machine code that load() runs (dlopen): the checksums detect corruption,
// not malice. Load only artifacts you trust, as you would a shared library.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/runtime/Artifact.h"

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace tessel::runtime {

/// Runs one fallback node: `args` holds the data pointers of its inputs, then of its outputs,
/// in the order and with the types of FallbackNode::inputs / outputs. Called from Model::run,
/// possibly from several threads at once; reports failure by throwing (tessel::Error).
using FallbackKernel = std::function<void(void *const *args)>;
/// Prepares a fallback node when a model that has one is loaded (it may parse the payload once)
/// and returns its kernel; throws to reject the node.
using FallbackHandler = std::function<FallbackKernel(const FallbackNode &node)>;
/// Sets the process-wide fallback handler (an empty one removes it); models loaded afterwards
/// use it. Without a handler, loading an artifact that has fallback nodes fails naming them.
/// The tessel tool registers the reference interpreter (tessel/Compiler/InterpreterFallback.h).
TESSEL_RUNTIME_EXPORT void setFallbackHandler(FallbackHandler handler);
TESSEL_RUNTIME_EXPORT bool hasFallbackHandler();

/// A caller's buffer bound to a model input or output by name (borrowed, not owned).
struct TensorArg {
  std::string_view name;
  ElemType dtype = ElemType::f32;
  const int64_t *shape = nullptr;
  size_t rank = 0;
  void *data = nullptr;   // inputs are only read
  uint64_t sizeBytes = 0; // must equal the tensor's byte size
};

/// An owned tensor (for the convenience overload of run).
struct HostTensor {
  TensorDesc desc;
  std::vector<uint8_t> bytes;

  HostTensor() = default;
  explicit HostTensor(TensorDesc d) : desc(std::move(d)), bytes(byteSize(desc)) {}
  template <class T> T *data() { return reinterpret_cast<T *>(bytes.data()); }
  template <class T> const T *data() const { return reinterpret_cast<const T *>(bytes.data()); }
};

/// Per-step wall-clock times of one run, filled by run(..., profile) when profile is non-null
/// (`tessel bench --profile`). Profiling is off unless asked for: a run without a profile does
/// no timing at all.
struct RunProfile {
  /// stepNanoseconds[i]: the time of execution-plan step i (contents().steps[i]), measured on
  /// the calling thread around the kernel call (parallel chunks included).
  std::vector<uint64_t> stepNanoseconds;
};

/// An artifact file read into memory and checked by parseArtifact (structure, checksums, every
/// offset and index), and nothing more: no architecture or CPU-feature check, no dlopen, no
/// fallback handler, so it opens an artifact compiled for another machine. What
/// `tessel inspect model.tsl` reads; Model::load reads the file the same way, then loads it.
/// Move-only: contents() points into the bytes it owns.
class TESSEL_RUNTIME_EXPORT ArtifactFile {
public:
  /// Reads and checks the artifact at `path`: the errors of Model::load's first steps (a path
  /// that cannot be read, then parseArtifact's), naming the path.
  static ArtifactFile read(const std::string &path);

  ArtifactFile(ArtifactFile &&) noexcept = default;
  ArtifactFile &operator=(ArtifactFile &&) noexcept = default;

  /// The decoded file (contents().fileSize, contents().sections: its size and section table).
  const ArtifactContents &contents() const { return contents_; }

private:
  ArtifactFile() = default;
  std::unique_ptr<uint8_t, void (*)(void *)> bytes_{nullptr, nullptr};
  ArtifactContents contents_;
};

class TESSEL_RUNTIME_EXPORT Model {
public:
  /// Reads, checks and loads the artifact at `path` (errors name the path).
  static Model load(const std::string &path);
  /// The same for an artifact in memory (copied; `name` appears in errors).
  static Model loadFromMemory(const void *data, size_t size,
                              std::string_view name = "<memory>");

  Model(Model &&) noexcept;
  Model &operator=(Model &&) noexcept;
  ~Model();

  const std::vector<TensorDesc> &inputs() const;
  const std::vector<TensorDesc> &outputs() const;
  const Metadata &metadata() const;
  /// The artifact's contents (weights, memory plan, steps); the pointers in it stay valid for
  /// the Model's lifetime.
  const ArtifactContents &contents() const;
  /// A metadata value as text: "target_triple", "cpu_name", "cpu_features" and
  /// "fallback_nodes" (comma-separated), "tessel_version", "source_hash", "buffer_alignment",
  /// "arena_size", "num_steps", or a key of Metadata::extra; nullptr when there is no such key.
  const std::string *info(std::string_view key) const;

  /// The outputs whose shape depends on the data (NonZero, Unique, Compress,
  /// NonMaxSuppression): outputs() holds their upper bound, and a run reports the actual
  /// shape. Empty when every output has a fixed shape.
  const std::vector<DynamicOutput> &dynamicOutputs() const;

  /// Runs the model. Every input and output of the model must be given exactly once, by name
  /// (in any order), with its dtype, shape and byte size (for a dynamic output: its bound's);
  /// output buffers must not overlap each other or an input. Throws tessel::Error naming the
  /// tensor and what was expected. A model with dynamic outputs must be run through an
  /// overload that reports the output shapes (the last one, or the HostTensor ones).
  void run(const TensorArg *inputs, size_t numInputs, const TensorArg *outputs,
           size_t numOutputs) const;
  /// Runs the model on `inputs` (bound by name) and returns the outputs in the model's order,
  /// each with its actual shape (a dynamic output's bytes cut to it).
  std::vector<HostTensor> run(const std::vector<HostTensor> &inputs) const;
  /// Both overloads with a per-step profile (resized to the number of steps and overwritten).
  void run(const TensorArg *inputs, size_t numInputs, const TensorArg *outputs,
           size_t numOutputs, RunProfile *profile) const;
  std::vector<HostTensor> run(const std::vector<HostTensor> &inputs, RunProfile *profile) const;
  /// run() that also reports the outputs' actual shapes: (*outputShapes)[i] is the shape of
  /// outputs[i] as given (the declared shape, or for a dynamic output the shape the kernel
  /// reported, whose elements are at the start of the buffer, row-major). profile may be null.
  void run(const TensorArg *inputs, size_t numInputs, const TensorArg *outputs,
           size_t numOutputs, RunProfile *profile,
           std::vector<std::vector<int64_t>> *outputShapes) const;

  /// The arithmetic cost of each execution-plan step in floating-point operations, as the
  /// compiler counted it (metadata key "kernel_flops": one number per step, comma-separated;
  /// 0 for a step whose cost was not modelled). Empty when the artifact does not record it;
  /// load() rejects a "kernel_flops" that does not hold one number per step.
  const std::vector<double> &kernelFlops() const;

private:
  struct Impl;
  explicit Model(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

} // namespace tessel::runtime
