//===- Artifact.h - the compiled-model file format (.tsl) -------*- C++ -*-===//
//
// One self-contained file holds a compiled model: a fixed header, a section table, and five
// sections (metadata, code, weights, memory plan, execution plan). docs/artifact.md describes
// it byte by byte. This header is the single definition of the format: the compiler's writer
// (include/tessel/Artifact/Writer.h) encodes an ArtifactContents with it, and the runtime decodes
// and checks a file with parseArtifact before anything in it is used.
//
// parseArtifact is the structural validator: magic, version, endianness, sizes, every offset
// and size within the file, sections neither overlapping nor missing nor repeated, a checksum
// per section (FNV-1a 64) and one for the header and table, every string and count within its
// section, dtypes known, shapes non-negative with element counts and byte sizes that do not
// overflow, weights inside the weights data and 64-byte aligned, arena slices inside the arena,
// and every argument index of the execution plan in range. It never touches the code: the
// checks that need this machine (CPU features, architecture, dlopen, symbols) are the Model
// loader's (Model.h). Every failure is a tessel::Error that names the field and byte offset.
//
// No LLVM, no protobuf, nothing from lib/: this is part of the deployable runtime.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/runtime/ThreadPool.h" // TESSEL_RUNTIME_EXPORT

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessel::runtime {

/// The first 8 bytes of every artifact.
inline constexpr char kArtifactMagic[8] = {'T', 'E', 'S', 'S', 'E', 'L', '\0', '\x01'};
/// The format version this runtime reads and the writer writes.
inline constexpr uint32_t kArtifactVersion = 1;
/// Written as a little-endian u32; reads back as 0x01020304 only on a little-endian host.
inline constexpr uint32_t kEndianMark = 0x01020304u;
inline constexpr uint64_t kHeaderSize = 64;
inline constexpr uint64_t kSectionEntrySize = 32;
/// Sections, weights, weight data and arena slices start at multiples of this.
inline constexpr uint64_t kArtifactAlignment = 64;

enum class SectionKind : uint32_t {
  Metadata = 1,
  Code = 2,
  Weights = 3,
  MemoryPlan = 4,
  ExecutionPlan = 5,
  /// Optional: nodes that run through the interpreter fallback (a file without fallback steps
  /// has no such section, so files written before it existed still load).
  Fallback = 6,
  /// Optional: outputs whose shape depends on the data (a file without such outputs has no
  /// such section).
  DynamicOutputs = 7,
  /// Optional: inputs whose value the model was compiled for (`tessel compile --input-value`):
  /// the runtime checks each run's value against it.
  InputValues = 8,
};
/// The sections every artifact has (kinds 1..5).
inline constexpr uint32_t kNumSectionKinds = 5;
/// The most sections a file may have: the required ones plus the optional fallback,
/// dynamic-outputs and input-values sections.
inline constexpr uint32_t kMaxSectionKinds = 8;
TESSEL_RUNTIME_EXPORT const char *sectionKindName(SectionKind kind);

/// Element types, with tessel::DType's numbering (include/tessel/Support/DType.h) so that the
/// compiler can cast; `string` (14) and `undefined` (0) are not valid in an artifact.
enum class ElemType : uint32_t {
  f32 = 1,
  f16 = 2,
  bf16 = 3,
  f64 = 4,
  i8 = 5,
  u8 = 6,
  i16 = 7,
  u16 = 8,
  i32 = 9,
  u32 = 10,
  i64 = 11,
  u64 = 12,
  boolean = 13,
};
/// Bytes per element; 0 for a code that is not a valid ElemType.
TESSEL_RUNTIME_EXPORT size_t elemTypeSize(uint32_t code);
/// "f32", "i64", ...; "invalid" for a code that is not a valid ElemType.
TESSEL_RUNTIME_EXPORT const char *elemTypeName(uint32_t code);

/// FNV-1a 64 of `size` bytes (offset basis 0xcbf29ce484222325, prime 0x100000001b3).
TESSEL_RUNTIME_EXPORT uint64_t fnv1a64(const void *data, size_t size);

/// A named tensor's type: an input, an output, or a weight.
struct TensorDesc {
  std::string name;
  ElemType dtype = ElemType::f32;
  std::vector<int64_t> shape;
};
/// Elements of `shape` (1 for a scalar). Throws tessel::Error on a negative dim or overflow.
TESSEL_RUNTIME_EXPORT uint64_t numElements(const std::vector<int64_t> &shape);
/// numElements * elemTypeSize, with the same checks.
TESSEL_RUNTIME_EXPORT uint64_t byteSize(const TensorDesc &desc);
/// "f32[1,3,224,224]".
TESSEL_RUNTIME_EXPORT std::string describe(const TensorDesc &desc);

struct Metadata {
  std::vector<TensorDesc> inputs;
  std::vector<TensorDesc> outputs;
  std::string targetTriple; // e.g. "x86_64-unknown-linux-gnu"
  std::string cpuName;      // e.g. "skylake-avx512"
  /// CPU features the code needs, in LLVM's spelling without '+' ("avx2", "avx512f", "fma").
  std::vector<std::string> cpuFeatures;
  std::string tesselVersion;
  std::string sourceHash; // e.g. "sha256:<64 hex digits>" of the source model file
  /// Nodes that run through the interpreter fallback (name and op), informational.
  std::vector<std::string> fallbackNodes;
  /// Bytes every input/output data pointer must be aligned to when the kernels see it (a power
  /// of two, 1 = none); the runtime stages misaligned caller buffers through aligned copies.
  uint32_t bufferAlignment = 1;
  /// Free-form key/value pairs (producer, compile options, ...).
  std::vector<std::pair<std::string, std::string>> extra;
};

struct WeightDesc {
  TensorDesc desc;
  uint64_t offset = 0; // from the start of the weight data, a multiple of 64
  uint64_t size = 0;   // bytes, == byteSize(desc)
};

/// One intermediate value's place in the per-run arena.
struct ArenaSlice {
  std::string name;
  uint64_t offset = 0; // a multiple of 64
  uint64_t size = 0;
};

struct MemoryPlan {
  uint64_t arenaSize = 0; // bytes
  std::vector<ArenaSlice> slices;
};

enum class ArgKind : uint32_t {
  Input = 0,  // value: index into Metadata::inputs
  Output = 1, // value: index into Metadata::outputs
  Weight = 2, // value: index into the weights
  Arena = 3,  // value: index into MemoryPlan::slices
  Scalar = 4, // value: an i64 passed by pointer
};
TESSEL_RUNTIME_EXPORT const char *argKindName(ArgKind kind);

struct StepArg {
  ArgKind kind = ArgKind::Input;
  int64_t value = 0;
};

/// One kernel call: `void symbol(void **args)`, args[i] the buffer (or the i64 scalar's
/// address) that args[i] names. A step whose symbol is "$fallback.<i>" runs fallback node i
/// (FallbackNode) instead: its args are that node's inputs, then its outputs.
struct Step {
  std::string symbol;
  std::vector<StepArg> args;
  /// Set by parseArtifact: the fallback node index of a "$fallback.<i>" step, else -1.
  int64_t fallback = -1;
};
/// The symbol prefix of a fallback step.
inline constexpr std::string_view kFallbackSymbolPrefix = "$fallback.";

/// A graph node the compiler could not lower, run at run time by the process's fallback
/// handler (Model.h setFallbackHandler; the tessel tool registers the reference interpreter).
/// The runtime treats `payload` as opaque bytes: tessel's handler stores the node as a one-node
/// ONNX model whose constant inputs are initializers and whose graph inputs and outputs are, in
/// order, the tensors `inputs` and `outputs` describe.
struct FallbackNode {
  std::string name;   // the node's name
  std::string opType; // "Op", or "domain.Op" outside the default domain
  std::vector<TensorDesc> inputs;
  std::vector<TensorDesc> outputs;
  const uint8_t *payload = nullptr;
  uint64_t payloadSize = 0;
};

/// An output whose shape depends on the data (NonZero, Unique, Compress, NonMaxSuppression):
/// Metadata::outputs holds its upper bound; the kernel that writes it stores the actual extent
/// of dim `axis` as an i64 at the start of arena slice `slice`, and the output's elements
/// compactly (row-major in the actual shape) at the start of the output buffer.
struct DynamicOutput {
  uint32_t output = 0; // index into Metadata::outputs
  uint32_t axis = 0;   // < the output's rank
  uint32_t slice = 0;  // index into MemoryPlan::slices (at least 8 bytes)
};

/// An input the model was compiled for one value of (its shape-determining scalars, a Loop's
/// trip count: `tessel compile --input-value`): every run must give exactly the bytes of weight
/// `weight` (same dtype and shape as the input), else the run fails naming the input.
struct InputValue {
  uint32_t input = 0;  // index into Metadata::inputs
  uint32_t weight = 0; // index into the weights
};

/// One entry of the file's section table (set by parseArtifact; encodeArtifact ignores it).
struct SectionInfo {
  SectionKind kind = SectionKind::Metadata;
  uint64_t offset = 0; // from the start of the file
  uint64_t size = 0;   // bytes
};

/// Everything an artifact says, with the code and weight bytes by reference.
struct ArtifactContents {
  Metadata metadata;
  std::vector<WeightDesc> weights;
  MemoryPlan memoryPlan;
  std::vector<Step> steps;
  /// The shared object's bytes (an ELF .so for ELF targets).
  const uint8_t *code = nullptr;
  uint64_t codeSize = 0;
  /// The weight data (weights[i] is at weightData + weights[i].offset).
  const uint8_t *weightData = nullptr;
  uint64_t weightDataSize = 0;
  /// The fallback section's nodes (payloads by reference); empty when the file has none.
  std::vector<FallbackNode> fallbacks;
  /// The dynamic-outputs section's entries, by output index; empty when the file has none.
  std::vector<DynamicOutput> dynamicOutputs;
  /// The input-values section's entries, by input index; empty when the file has none.
  std::vector<InputValue> inputValues;
  /// Set by parseArtifact: the section table, in the order of the sections' offsets (what
  /// `tessel inspect model.tsl` prints), and the size of the whole file.
  std::vector<SectionInfo> sections;
  uint64_t fileSize = 0;
};

/// Decodes and checks an artifact held in memory (see the top of this file). The pointers in
/// the result point into `data`. `what` names the file in error messages.
TESSEL_RUNTIME_EXPORT ArtifactContents parseArtifact(const uint8_t *data, size_t size,
                                                     std::string_view what = "artifact");

/// The arithmetic cost of each execution-plan step in floating-point operations, as the
/// compiler recorded it in the metadata key "kernel_flops" (one non-negative number per step,
/// comma-separated; 0 for a step whose cost was not modelled). Empty when the key is absent;
/// an Error naming `what` when it does not hold one number per step. Model::kernelFlops and
/// `tessel inspect model.tsl` read it through this function.
TESSEL_RUNTIME_EXPORT std::vector<double> parseKernelFlops(const ArtifactContents &contents,
                                                           std::string_view what = "artifact");

/// Encodes `contents` (code and weight bytes copied from its pointers) as an artifact file
/// image. Checks only what encoding needs (counts and sizes that fit); the writer validates the
/// result with parseArtifact.
TESSEL_RUNTIME_EXPORT std::vector<uint8_t> encodeArtifact(const ArtifactContents &contents);

/// True when this CPU has `feature` (LLVM's spelling, an optional leading '+'); false for a
/// feature this runtime does not know how to detect.
TESSEL_RUNTIME_EXPORT bool hostHasCpuFeature(std::string_view feature);
/// The architecture part of a target triple this runtime's machine runs ("x86_64", "aarch64").
TESSEL_RUNTIME_EXPORT const char *hostArch();

} // namespace tessel::runtime
