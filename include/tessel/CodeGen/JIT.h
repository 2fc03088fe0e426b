//===- JIT.h - compile LLVM modules into this process ------------*- C++ -*-===//
//
// A JIT wraps an ORC LLJIT for the host: modules are optimized for the host target (CPU and
// features detected), compiled, and their functions looked up as C function pointers. Symbols of
// this process (libc, libm, and any function exported by the executable or a loaded shared
// library) resolve by name, so generated code can call a runtime function such as a thread
// pool's parallel-for; symbols that are not exported can be given explicitly with defineSymbol.
// Every LLVM error becomes a tessel::Error carrying LLVM's message.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/CodeGen/Target.h"

#include <cstdint>
#include <memory>
#include <string>

namespace llvm {
class LLVMContext;
} // namespace llvm

namespace tessel::codegen {

class JIT {
public:
  /// A JIT for Target::host() with these options.
  explicit JIT(const CodeGenOptions &opts = {});
  ~JIT();
  JIT(const JIT &) = delete;
  JIT &operator=(const JIT &) = delete;

  /// Takes ownership of `module` and the context it lives in (each module brings its own context,
  /// so modules can be built on different threads), optimizes it at the JIT's level
  /// (optimizeModule) and adds it. Its functions compile on first lookup. Error if the module does
  /// not verify or defines a symbol already defined.
  void addModule(std::unique_ptr<llvm::Module> module, std::unique_ptr<llvm::LLVMContext> context);

  /// Makes `name` resolve to `address` in modules added later or not yet compiled.
  void defineSymbol(const std::string &name, void *address);

  /// The address of the function or global `name` (compiling it if needed). Error naming the
  /// symbol, with LLVM's message, if it is not defined or fails to compile or link.
  void *lookup(const std::string &name);

  /// lookup() cast to a function pointer: `auto *add = jit.lookupFunction<void(float *)>("f")`.
  template <class Fn> Fn *lookupFunction(const std::string &name) {
    return reinterpret_cast<Fn *>(lookup(name));
  }

  const Target &target() const { return target_; }
  const CodeGenOptions &options() const { return opts_; }

private:
  struct Impl;
  Target target_;
  CodeGenOptions opts_;
  std::unique_ptr<Impl> impl_;
};

} // namespace tessel::codegen
