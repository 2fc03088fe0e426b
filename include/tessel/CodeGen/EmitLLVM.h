//===- EmitLLVM.h - loop IR to LLVM IR ---------------------------*- C++ -*-===//
//
// The emitter turns one flattened loop IR function (after the loop pipeline: StorageFlatten has
// left exactly one index per Load/Store) into an llvm::Module, and compileLoweredFunc JIT-compiles
// it into this process. The generated functions and their calling convention (docs/codegen.md):
//
//   void NAME(void **args);           // args[i]: param i of the LoweredFunc, in order: a buffer's
//                                     // data pointer, or a pointer to a scalar param's value
//   void NAME_typed(T0 *p0, ..., int64_t n, ...);   // the same, one typed argument per param
//
// Vector code is explicit: Ramp and Broadcast become LLVM vector values, a vector Load/Store with
// a stride-1 Ramp index one vector load/store, other indices gathers/scatters, predicates masked
// loads/stores. Parallel For loops are outlined into `void body(int64_t begin, int64_t end,
// void *ctx)` and run through the runtime's `tessel_parallel_for` (resolved by name).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/CodeGen/Target.h"

#include <cstdint>
#include <memory>
#include <string>

namespace llvm {
class LLVMContext;
class Module;
} // namespace llvm

namespace tessel::loop {
struct LoweredFunc;
} // namespace tessel::loop

namespace tessel::codegen {

class JIT;

/// What the caller of a generated function guarantees, and emitter choices.
struct EmitOptions {
  /// Bytes every buffer param's data pointer is aligned to (a power of two; 0: only the element
  /// size). With 64 the params are marked `align 64` and full vector loads/stores use it.
  unsigned bufferAlignment = 0;
  /// Buffer params never overlap (no in-place kernels): they are marked `noalias`, which lets
  /// LLVM vectorize and reorder freely. Turn off for a kernel whose input and output alias.
  bool noaliasBuffers = true;
  /// An Allocate of a constant size up to this many bytes lives on the stack (in the entry block
  /// of its function, so per thread inside parallel bodies); larger or symbolic sizes use
  /// aligned_alloc(64, ...) and free at the end of the Allocate's body.
  int64_t maxStackBytes = 32 * 1024;
  /// The most stack bytes one LLVM function (the kernel, or one outlined parallel body: it runs
  /// on a pool thread) keeps for its Allocates, all of which live at once in its entry block.
  /// An Allocate that would pass it goes to the heap even when it is small: a kernel with many
  /// stored stages (an unrolled LSTM, Det of many matrices) must not overflow a thread's stack.
  int64_t maxFunctionStackBytes = 512 * 1024;
  /// Loops whose body tessel already vectorized (it holds vector values) get
  /// `llvm.loop.vectorize.enable = false` so that LLVM does not vectorize them a second time.
  bool disableLLVMVectorizerOnVectorLoops = true;
};

/// The LLVM module (in `context`) that defines NAME and NAME_typed for `func`, not yet optimized
/// (optimizeModule, JIT::addModule and the AOT functions optimize it for their target). Error
/// naming the function and the construct if the loop IR holds something the emitter cannot
/// lower (a Load/Store with more than one index: run StorageFlatten first).
std::unique_ptr<llvm::Module> emitLLVM(const loop::LoweredFunc &func, llvm::LLVMContext &context,
                                       const Target &target, const CodeGenOptions &opts = {},
                                       const EmitOptions &emit = {});

/// A LoweredFunc JIT-compiled for the host. Copies share the JIT (and the code).
class CompiledFunc {
public:
  CompiledFunc() = default;
  /// Calls NAME(args): args[i] is param i's buffer data pointer or a pointer to its scalar.
  void operator()(void **args) const { entry_(args); }
  /// NAME_typed's address, to be cast to the matching C function type.
  void *typedAddress() const { return typed_; }
  const std::string &name() const { return name_; }
  bool valid() const { return entry_ != nullptr; }

private:
  friend CompiledFunc compileLoweredFunc(const loop::LoweredFunc &, const CodeGenOptions &,
                                         const EmitOptions &);
  std::shared_ptr<JIT> jit_;
  void (*entry_)(void **) = nullptr;
  void *typed_ = nullptr;
  std::string name_;
};

/// emitLLVM for Target::host(), added to a fresh JIT, both entry points looked up.
CompiledFunc compileLoweredFunc(const loop::LoweredFunc &func, const CodeGenOptions &opts = {},
                                const EmitOptions &emit = {});

} // namespace tessel::codegen
