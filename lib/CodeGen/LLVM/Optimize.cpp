//===- Optimize.cpp - the LLVM IR optimization pipeline -------------------===//
//
// LLVM's default per-module pipeline on the new pass manager. Constructing the PassBuilder with
// the TargetMachine registers the target's TargetIRAnalysis (TTI) with the function analyses,
// which is what the loop and SLP vectorizers ask for the vector register width and costs.
//
//===----------------------------------------------------------------------===//
#include "tessel/CodeGen/Optimize.h"
#include "tessel/Support/Error.h"

#include <llvm/Analysis/CGSCCPassManager.h>
#include <llvm/Analysis/LoopAnalysisManager.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/PassManager.h>
#include <llvm/IR/Verifier.h>
#include <llvm/Passes/OptimizationLevel.h>
#include <llvm/Passes/PassBuilder.h>
#include <llvm/Support/raw_ostream.h>
#include <llvm/Target/TargetMachine.h>

namespace tessel::codegen {

void verifyModuleOrThrow(const llvm::Module &module, const std::string &what) {
  std::string message;
  llvm::raw_string_ostream os(message);
  if (llvm::verifyModule(module, &os))
    fail(what, ": module '", module.getModuleIdentifier(),
         "' is not valid LLVM IR: ", os.str());
}

std::string printModule(const llvm::Module &module) {
  std::string text;
  llvm::raw_string_ostream os(text);
  module.print(os, nullptr);
  return os.str();
}

static llvm::OptimizationLevel optimizationLevel(unsigned level) {
  switch (level) {
  case 0:
    return llvm::OptimizationLevel::O0;
  case 1:
    return llvm::OptimizationLevel::O1;
  case 2:
    return llvm::OptimizationLevel::O2;
  default:
    return llvm::OptimizationLevel::O3;
  }
}

void optimizeModule(llvm::Module &module, llvm::TargetMachine &tm, const CodeGenOptions &opts) {
  TESSEL_CHECK(opts.optLevel <= 3, "LLVM optimizer: optimization level ", opts.optLevel,
               " is out of range; expected 0, 1, 2 or 3");
  verifyModuleOrThrow(module, "LLVM optimizer");
  prepareModule(module, tm, opts);

  llvm::PipelineTuningOptions tuning;
  tuning.LoopVectorization = opts.optLevel >= 2;
  tuning.SLPVectorization = opts.optLevel >= 2;
  tuning.LoopUnrolling = opts.optLevel >= 2;
  tuning.LoopInterleaving = opts.optLevel >= 2;

  llvm::LoopAnalysisManager lam;
  llvm::FunctionAnalysisManager fam;
  llvm::CGSCCAnalysisManager cgam;
  llvm::ModuleAnalysisManager mam;
  llvm::PassBuilder builder(&tm, tuning);
  builder.registerModuleAnalyses(mam);
  builder.registerCGSCCAnalyses(cgam);
  builder.registerFunctionAnalyses(fam);
  builder.registerLoopAnalyses(lam);
  builder.crossRegisterProxies(lam, fam, cgam, mam);

  llvm::OptimizationLevel level = optimizationLevel(opts.optLevel);
  llvm::ModulePassManager pipeline = level == llvm::OptimizationLevel::O0
                                         ? builder.buildO0DefaultPipeline(level)
                                         : builder.buildPerModuleDefaultPipeline(level);
  pipeline.run(module, mam);
}

} // namespace tessel::codegen
