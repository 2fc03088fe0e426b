//===- Optimize.h - the LLVM IR optimization pipeline -----------*- C++ -*-===//
//
// Runs LLVM's standard module pipeline (new pass manager, O0..O3) over a module, with the target
// machine's TargetTransformInfo registered, so the loop and SLP vectorizers use the target's
// vector width and costs. The module is verified first: malformed IR from an emitter is an
// Error that carries the verifier's message, never a crash inside LLVM.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/CodeGen/Target.h"

namespace tessel::codegen {

/// Verifies `module`, prepares it for `tm` (prepareModule) and runs the pipeline of
/// `opts.optLevel`. Error if the module does not verify.
void optimizeModule(llvm::Module &module, llvm::TargetMachine &tm, const CodeGenOptions &opts);

/// Verifies `module`; Error whose message is LLVM verifier's output, prefixed by `what`.
void verifyModuleOrThrow(const llvm::Module &module, const std::string &what);

/// The module's textual IR (for tests, `--print-llvm`, and error messages).
std::string printModule(const llvm::Module &module);

} // namespace tessel::codegen
