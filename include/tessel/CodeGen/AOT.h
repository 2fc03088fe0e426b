//===- AOT.h - ahead-of-time output: objects, assembly, shared libraries -*- C++ -*-===//
//
// Ahead-of-time compilation writes what the JIT keeps in memory: an ELF object file for any
// Target (the host, generic x86-64, AArch64), assembly text (PTX for NVPTX: the GPU driver
// compiles it), and a shared library with a C ABI for the host, linked by the system compiler
// driver (`cc -shared`, run directly with posix_spawn, no shell). The functions the module
// defines with external linkage keep their names in the object, so `dlsym(lib, "add")` finds
// `add`.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/CodeGen/Target.h"

#include <string>
#include <vector>

namespace tessel::codegen {

/// Optimizes `module` for `target` (optimizeModule) and returns the object file's bytes.
/// Error if the target is not available or cannot emit objects (NVPTX: use emitAssembly).
std::vector<char> emitObject(llvm::Module &module, const Target &target,
                             const CodeGenOptions &opts = {});

/// Optimizes `module` for `target` and returns the assembly text (PTX for NVPTX).
std::string emitAssembly(llvm::Module &module, const Target &target,
                         const CodeGenOptions &opts = {});

/// emitObject written to `path`. Error naming the file if it cannot be written.
void writeObjectFile(llvm::Module &module, const Target &target, const std::string &path,
                     const CodeGenOptions &opts = {});

struct LinkOptions {
  /// The compiler driver, looked up in PATH unless it contains a '/'.
  std::string driver = "cc";
  /// Extra arguments after the objects (`-lm`, `-L...`, `-Wl,...`).
  std::vector<std::string> extraArgs;
};

/// Runs `driver -shared -o output objects... extraArgs...` and waits for it. Error naming the
/// output file and the driver, with its exit status and what it printed, if it cannot be run,
/// fails, or leaves no output file.
void linkSharedLibrary(const std::vector<std::string> &objects, const std::string &output,
                       const LinkOptions &link = {});

/// The host object of `module` (writeObjectFile to `output` + ".o"), linked into the shared
/// library `output`; the object file is removed afterwards.
void emitSharedLibrary(llvm::Module &module, const std::string &output,
                       const CodeGenOptions &opts = {}, const LinkOptions &link = {});

} // namespace tessel::codegen
