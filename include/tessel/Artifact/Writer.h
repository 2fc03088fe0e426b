//===- Writer.h - write a compiled-model artifact (.tsl) --------*- C++ -*-===//
//
// The compiler's side of the artifact format (runtime/include/tessel/runtime/Artifact.h,
// docs/artifact.md): collect the model's inputs and outputs, target, weights, memory plan,
// execution plan and code (a shared object's bytes), then write one self-contained file.
//
//   tessel::artifact::Writer w;
//   w.setTarget("x86_64-unknown-linux-gnu", "skylake-avx512", {"avx2", "fma"});
//   uint32_t x = w.addInput("x", DType::f32, {4});
//   uint32_t y = w.addOutput("y", DType::f32, {4});
//   uint32_t b = w.addWeight("bias", DType::f32, {4}, bias, 16);
//   w.setCode(sharedObjectBytes);
//   w.addStep("f32_add_4", {Writer::input(x), Writer::weight(b), Writer::output(y)});
//   w.write("model.tsl");
//
// finish() encodes and then checks the result with the runtime's own validator
// (runtime::parseArtifact), so a compiler bug (an argument index out of range, an arena slice
// past the arena, a weight whose bytes do not match its shape) is an Error at compile time,
// not a file the runtime rejects later. Every method that takes untrusted sizes checks them.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Support/DType.h"
#include "tessel/runtime/Artifact.h"

#include <cstdint>
#include <string>
#include <vector>

namespace tessel::artifact {

/// "fnv1a64:<16 hex digits>" of `size` bytes: the source model's hash for the metadata.
std::string hashBytes(const void *data, size_t size);
/// hashBytes of a file's contents. Error naming the file if it cannot be read.
std::string hashFile(const std::string &path);

/// The artifact's element type for `t`. Error for undefined and string.
runtime::ElemType toElemType(DType t);

struct WriterOptions {
  /// Check the encoded file with runtime::parseArtifact in finish(). Only tests that build
  /// deliberately broken files turn this off.
  bool validate = true;
};

class Writer {
public:
  explicit Writer(WriterOptions options = {});

  /// Target triple, CPU name, and the CPU features the code needs (LLVM spelling; a leading
  /// '+' is dropped, entries starting with '-' are not requirements and are skipped).
  void setTarget(std::string triple, std::string cpuName, std::vector<std::string> features);
  void setSourceHash(std::string hash);
  /// Default: this build's tessel version.
  void setTesselVersion(std::string version);
  /// The alignment the kernels assume for input/output pointers (a power of two; default 1).
  void setBufferAlignment(uint32_t alignment);
  void addFallbackNode(std::string node);
  void setExtra(std::string key, std::string value);

  /// Each returns the index that step arguments use.
  uint32_t addInput(std::string name, DType dtype, std::vector<int64_t> shape);
  uint32_t addOutput(std::string name, DType dtype, std::vector<int64_t> shape);
  /// Copies the weight's bytes; `size` must be its byte size. Placed at the next multiple of 64.
  uint32_t addWeight(std::string name, DType dtype, std::vector<int64_t> shape,
                     const void *data, size_t size);
  /// An intermediate at a planned offset (a multiple of 64) in the arena.
  uint32_t addArenaSlice(std::string name, uint64_t offset, uint64_t size);
  /// An intermediate placed after every slice so far (bump allocation, 64-aligned).
  uint32_t appendArenaSlice(std::string name, uint64_t size);
  /// Default: the end of the last slice, rounded up to 64.
  void setArenaSize(uint64_t size);

  /// The shared object that defines the kernels.
  void setCode(std::vector<uint8_t> sharedObject);
  /// setCode with a file's bytes (e.g. what codegen::linkSharedLibrary wrote).
  void setCodeFromFile(const std::string &path);

  static runtime::StepArg input(uint32_t i) { return {runtime::ArgKind::Input, int64_t(i)}; }
  static runtime::StepArg output(uint32_t i) { return {runtime::ArgKind::Output, int64_t(i)}; }
  static runtime::StepArg weight(uint32_t i) { return {runtime::ArgKind::Weight, int64_t(i)}; }
  static runtime::StepArg arena(uint32_t i) { return {runtime::ArgKind::Arena, int64_t(i)}; }
  static runtime::StepArg scalar(int64_t v) { return {runtime::ArgKind::Scalar, v}; }
  /// One kernel call `symbol(args)`; steps run in the order they are added.
  void addStep(std::string symbol, std::vector<runtime::StepArg> args);

  /// A step that runs graph node `name` (op `opType`) through the process's fallback handler
  /// (runtime/Model.h): `payload` is the node serialized for the handler, `args` its input
  /// buffers then its output buffers, with the types `inputs` / `outputs`. Also lists
  /// "name (opType)" in the metadata's fallback nodes. Returns the fallback node's index; the
  /// step's symbol is "$fallback.<index>".
  uint32_t addFallbackStep(std::string name, std::string opType,
                           std::vector<runtime::TensorDesc> inputs,
                           std::vector<runtime::TensorDesc> outputs, std::vector<uint8_t> payload,
                           std::vector<runtime::StepArg> args);

  /// Marks output `output`'s dim `axis` as data-dependent: the output's shape is its upper
  /// bound, and the kernel that writes it stores the actual extent (an i64) at the start of
  /// arena slice `extentSlice` (docs/artifact.md, section 7). Outputs in increasing order.
  void addDynamicOutput(uint32_t output, uint32_t axis, uint32_t extentSlice);

  /// Fixes input `input` to the value of weight `weight` (same dtype and shape): the runtime
  /// rejects a run that gives another value (docs/artifact.md, section 8). Inputs in increasing
  /// order.
  void addInputValue(uint32_t input, uint32_t weight);

  /// The file's bytes. Error (from the validator) if the artifact is inconsistent.
  std::vector<uint8_t> finish() const;
  /// finish() written to `path` (through a temporary file renamed into place). Error naming
  /// the file if it cannot be written.
  void write(const std::string &path) const;

private:
  WriterOptions options_;
  runtime::Metadata metadata_;
  std::vector<runtime::WeightDesc> weights_;
  std::vector<uint8_t> weightData_;
  runtime::MemoryPlan memoryPlan_;
  bool arenaSizeSet_ = false;
  std::vector<runtime::Step> steps_;
  std::vector<uint8_t> code_;
  struct PendingFallback {
    std::string name, opType;
    std::vector<runtime::TensorDesc> inputs, outputs;
    std::vector<uint8_t> payload;
  };
  std::vector<PendingFallback> fallbacks_;
  std::vector<runtime::DynamicOutput> dynamicOutputs_;
  std::vector<runtime::InputValue> inputValues_;
};

} // namespace tessel::artifact
