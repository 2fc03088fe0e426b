//===- Target.h - code generation targets -----------------------*- C++ -*-===//
//
// A Target names the machine tessel generates code for: an LLVM triple, a CPU name and a feature
// string. The presets are the host (CPU and features detected at run time), generic x86-64,
// 64-bit ARM Linux (Cortex-A72 class: Raspberry Pi 4, NEON) and NVIDIA PTX (sm_80). A Target
// makes the llvm::TargetMachine that every later step (optimization, JIT, object emission) uses,
// so the vectorizers see the real vector width.
//
// This header includes no LLVM header; llvm::TargetMachine is only named.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <memory>
#include <string>
#include <vector>

namespace llvm {
class Module;
class TargetMachine;
} // namespace llvm

namespace tessel::codegen {

/// How code is generated, whatever the target.
struct CodeGenOptions {
  /// 0..3: the LLVM IR pipeline (O0..O3) and the back end's level (None..Aggressive).
  unsigned optLevel = 3;
  /// Off by default: results are then bit-for-bit those of the IR's operation order (only
  /// `llvm.fmuladd` may become an FMA). On: every floating-point operation may be reassociated,
  /// contracted and approximated, and NaN/Inf/-0 are assumed absent (vectorized reductions).
  bool fastMath = false;
};

enum class TargetKind { Host, X86_64, AArch64, NVPTX };

class Target {
public:
  /// This machine: the process triple, llvm::sys::getHostCPUName() and every feature that
  /// llvm::sys::getHostCPUFeatures() reports present.
  static Target host();
  /// Any x86-64 (SSE2 only): `x86_64-unknown-linux-gnu`, CPU `x86-64`.
  static Target x86_64Generic();
  /// 64-bit ARM Linux, Cortex-A72 class with NEON: `aarch64-unknown-linux-gnu`, `cortex-a72`.
  static Target aarch64Linux();
  /// NVIDIA GPUs through PTX: `nvptx64-nvidia-cuda`, the given compute capability (`sm_80`).
  static Target nvptx(std::string smVersion = "sm_80");
  /// The preset named `host`, `x86-64`, `aarch64` or `nvptx` (`nvptx:sm_86` picks the SM);
  /// any other name is an Error that lists these.
  static Target byName(const std::string &name);

  TargetKind kind() const { return kind_; }
  const std::string &triple() const { return triple_; }
  const std::string &cpu() const { return cpu_; }
  /// LLVM's comma-separated form: "+avx2,+fma,-avx512f" (may be empty).
  const std::string &features() const { return features_; }
  /// The enabled features, without the '+', sorted.
  std::vector<std::string> enabledFeatures() const;
  bool hasFeature(const std::string &name) const;
  /// "host (x86_64-pc-linux-gnu, skylake-avx512)": for messages and logs.
  std::string describe() const;

  /// Whether this LLVM build has a back end for the triple (NVPTX and AArch64 are optional
  /// components of LLVM).
  bool isAvailable() const;
  /// A TargetMachine for this target at the options' level, position-independent code (so
  /// objects can go into shared libraries). Error if the target is not available.
  std::unique_ptr<llvm::TargetMachine> createTargetMachine(const CodeGenOptions &opts = {}) const;

  /// Overrides, for targets that are not presets (tests, `--target-cpu`).
  Target withCPU(std::string cpu, std::string features) const;

private:
  Target(TargetKind kind, std::string triple, std::string cpu, std::string features)
      : kind_(kind), triple_(std::move(triple)), cpu_(std::move(cpu)),
        features_(std::move(features)) {}

  TargetKind kind_;
  std::string triple_;
  std::string cpu_;
  std::string features_;
};

/// Registers every LLVM back end, asm parser and printer this LLVM has. Idempotent and
/// thread-safe; every function of this library calls it, callers never need to.
void initializeLLVMTargets();

/// Makes a module ready for `tm`: sets its triple and data layout and gives every function
/// definition the target's `target-cpu` / `target-features` attributes, plus, when
/// `opts.fastMath`, the fast-math flags on every floating-point instruction and call and the
/// `unsafe-fp-math` family of function attributes. The optimizer, JIT and object emitter call
/// it; a module that was already prepared is left as it is.
void prepareModule(llvm::Module &module, llvm::TargetMachine &tm, const CodeGenOptions &opts);

} // namespace tessel::codegen
