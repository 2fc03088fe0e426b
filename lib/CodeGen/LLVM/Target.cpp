//===- Target.cpp - code generation targets -------------------------------===//
//
// The target presets, LLVM back-end registration, TargetMachine creation, and module
// preparation (triple, data layout, per-function CPU/features, fast-math).
//
//===----------------------------------------------------------------------===//
#include "tessel/CodeGen/Target.h"
#include "tessel/Support/Error.h"

#include <llvm/ADT/StringMap.h>
#include <llvm/IR/Function.h>
#include <llvm/IR/InstIterator.h>
#include <llvm/IR/Module.h>
#include <llvm/IR/Operator.h>
#include <llvm/MC/TargetRegistry.h>
#include <llvm/Support/CodeGen.h>
#include <llvm/Support/TargetSelect.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/Target/TargetOptions.h>
#include <llvm/TargetParser/Host.h>

#include <algorithm>
#include <mutex>
#include <sstream>

namespace tessel::codegen {

void initializeLLVMTargets() {
  static std::once_flag once;
  std::call_once(once, [] {
    llvm::InitializeAllTargetInfos();
    llvm::InitializeAllTargets();
    llvm::InitializeAllTargetMCs();
    llvm::InitializeAllAsmPrinters();
    llvm::InitializeAllAsmParsers();
  });
}

Target Target::host() {
  // Sorted, so the feature string (and anything keyed on it) is deterministic.
  std::vector<std::string> features;
  for (const auto &entry : llvm::sys::getHostCPUFeatures()) {
    std::string feature(1, entry.second ? '+' : '-');
    feature.append(entry.first().data(), entry.first().size());
    features.push_back(std::move(feature));
  }
  std::sort(features.begin(), features.end(),
            [](const std::string &a, const std::string &b) { return a.substr(1) < b.substr(1); });
  std::string joined;
  for (const auto &f : features)
    joined += (joined.empty() ? "" : ",") + f;
  return Target(TargetKind::Host, llvm::sys::getProcessTriple(),
                llvm::sys::getHostCPUName().str(), joined);
}

Target Target::x86_64Generic() {
  return Target(TargetKind::X86_64, "x86_64-unknown-linux-gnu", "x86-64", "");
}

Target Target::aarch64Linux() {
  return Target(TargetKind::AArch64, "aarch64-unknown-linux-gnu", "cortex-a72", "+neon");
}

Target Target::nvptx(std::string smVersion) {
  TESSEL_CHECK(smVersion.size() > 3 && smVersion.rfind("sm_", 0) == 0,
               "NVPTX target: bad compute capability '", smVersion,
               "'; expected sm_NN such as sm_80");
  return Target(TargetKind::NVPTX, "nvptx64-nvidia-cuda", std::move(smVersion), "");
}

Target Target::byName(const std::string &name) {
  if (name == "host" || name == "native")
    return host();
  if (name == "x86-64" || name == "x86_64")
    return x86_64Generic();
  if (name == "aarch64" || name == "arm64")
    return aarch64Linux();
  if (name == "nvptx")
    return nvptx();
  if (name.rfind("nvptx:", 0) == 0)
    return nvptx(name.substr(6));
  fail("unknown target '", name, "'; expected host, x86-64, aarch64, nvptx or nvptx:sm_NN");
}

std::vector<std::string> Target::enabledFeatures() const {
  std::vector<std::string> out;
  std::stringstream ss(features_);
  std::string item;
  while (std::getline(ss, item, ','))
    if (item.size() > 1 && item[0] == '+')
      out.push_back(item.substr(1));
  std::sort(out.begin(), out.end());
  return out;
}

bool Target::hasFeature(const std::string &name) const {
  auto enabled = enabledFeatures();
  return std::binary_search(enabled.begin(), enabled.end(), name);
}

std::string Target::describe() const {
  static const char *const kindNames[] = {"host", "x86-64", "aarch64", "nvptx"};
  return concat(kindNames[static_cast<int>(kind_)], " (", triple_, ", ", cpu_, ")");
}

bool Target::isAvailable() const {
  initializeLLVMTargets();
  std::string error;
  return llvm::TargetRegistry::lookupTarget(triple_, error) != nullptr;
}

Target Target::withCPU(std::string cpu, std::string features) const {
  Target t = *this;
  t.cpu_ = std::move(cpu);
  t.features_ = std::move(features);
  return t;
}

static llvm::CodeGenOptLevel codeGenLevel(unsigned optLevel) {
  switch (optLevel) {
  case 0:
    return llvm::CodeGenOptLevel::None;
  case 1:
    return llvm::CodeGenOptLevel::Less;
  case 2:
    return llvm::CodeGenOptLevel::Default;
  default:
    return llvm::CodeGenOptLevel::Aggressive;
  }
}

std::unique_ptr<llvm::TargetMachine>
Target::createTargetMachine(const CodeGenOptions &opts) const {
  TESSEL_CHECK(opts.optLevel <= 3, "code generation: optimization level ", opts.optLevel,
               " is out of range; expected 0, 1, 2 or 3");
  initializeLLVMTargets();
  std::string error;
  const llvm::Target *target = llvm::TargetRegistry::lookupTarget(triple_, error);
  TESSEL_CHECK(target, "target ", describe(), " is not available in this LLVM build: ", error);

  llvm::TargetOptions options;
  options.AllowFPOpFusion = llvm::FPOpFusion::Standard; // only llvm.fmuladd becomes an FMA
  if (opts.fastMath) {
    options.AllowFPOpFusion = llvm::FPOpFusion::Fast;
    options.UnsafeFPMath = true;
    options.NoInfsFPMath = true;
    options.NoNaNsFPMath = true;
    options.NoSignedZerosFPMath = true;
    options.ApproxFuncFPMath = true;
  }
  std::unique_ptr<llvm::TargetMachine> tm(target->createTargetMachine(
      triple_, cpu_, features_, options, llvm::Reloc::PIC_, std::nullopt,
      codeGenLevel(opts.optLevel)));
  TESSEL_CHECK(tm, "target ", describe(), ": LLVM could not create a target machine for CPU '",
               cpu_, "' with features '", features_, "'");
  return tm;
}

void prepareModule(llvm::Module &module, llvm::TargetMachine &tm, const CodeGenOptions &opts) {
  module.setTargetTriple(tm.getTargetTriple().str());
  module.setDataLayout(tm.createDataLayout());
  std::string cpu = tm.getTargetCPU().str();
  std::string features = tm.getTargetFeatureString().str();
  for (llvm::Function &fn : module) {
    if (fn.isDeclaration())
      continue;
    // An emitter may ask for more (a kernel specialized for avx512f); keep what it set.
    if (!fn.hasFnAttribute("target-cpu") && !cpu.empty())
      fn.addFnAttr("target-cpu", cpu);
    if (!fn.hasFnAttribute("target-features") && !features.empty())
      fn.addFnAttr("target-features", features);
    if (!opts.fastMath)
      continue;
    for (const char *attr : {"unsafe-fp-math", "no-infs-fp-math", "no-nans-fp-math",
                             "no-signed-zeros-fp-math", "approx-func-fp-math"})
      fn.addFnAttr(attr, "true");
    for (llvm::Instruction &inst : llvm::instructions(fn))
      if (llvm::isa<llvm::FPMathOperator>(inst))
        inst.setFast(true);
  }
}

} // namespace tessel::codegen
