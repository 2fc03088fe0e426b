//===- JIT.cpp - compile LLVM modules into this process -------------------===//
//
// An ORC LLJIT built for Target::host(): the JITTargetMachineBuilder gets the detected CPU and
// features, so JIT-compiled code uses the same instructions as an AOT object for the host. Each
// module is optimized (optimizeModule) before it is handed to ORC. A DynamicLibrarySearchGenerator
// for the current process makes libc, libm and the exported symbols of the executable and its
// shared libraries (the runtime's tessel_parallel_for) resolvable by name.
//
//===----------------------------------------------------------------------===//
#include "tessel/CodeGen/JIT.h"
#include "tessel/CodeGen/Optimize.h"
#include "tessel/Support/Error.h"

#include <llvm/ExecutionEngine/Orc/Core.h>
#include <llvm/ExecutionEngine/Orc/ExecutionUtils.h>
#include <llvm/ExecutionEngine/Orc/JITTargetMachineBuilder.h>
#include <llvm/ExecutionEngine/Orc/LLJIT.h>
#include <llvm/ExecutionEngine/Orc/ThreadSafeModule.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Support/Error.h>
#include <llvm/Target/TargetMachine.h>
#include <llvm/TargetParser/SubtargetFeature.h>

namespace tessel::codegen {

namespace {

/// LLVM's message of `err` (consumed), for a tessel::Error.
std::string takeMessage(llvm::Error err) { return llvm::toString(std::move(err)); }

template <class T> T unwrap(llvm::Expected<T> value, const std::string &what) {
  if (!value)
    fail(what, ": ", takeMessage(value.takeError()));
  return std::move(*value);
}

void check(llvm::Error err, const std::string &what) {
  if (err)
    fail(what, ": ", takeMessage(std::move(err)));
}

} // namespace

struct JIT::Impl {
  std::unique_ptr<llvm::orc::LLJIT> jit;
  /// The machine the optimizer tunes for (the JIT's own code generator has its own copy).
  std::unique_ptr<llvm::TargetMachine> tm;
};

JIT::JIT(const CodeGenOptions &opts)
    : target_(Target::host()), opts_(opts), impl_(std::make_unique<Impl>()) {
  initializeLLVMTargets();
  impl_->tm = target_.createTargetMachine(opts_);

  llvm::orc::JITTargetMachineBuilder jtmb{llvm::Triple(target_.triple())};
  jtmb.setCPU(target_.cpu());
  llvm::SubtargetFeatures features(target_.features());
  jtmb.addFeatures(features.getFeatures());
  jtmb.setCodeGenOptLevel(impl_->tm->getOptLevel());
  jtmb.getOptions() = impl_->tm->Options;
  jtmb.setRelocationModel(llvm::Reloc::PIC_);

  impl_->jit = unwrap(llvm::orc::LLJITBuilder().setJITTargetMachineBuilder(std::move(jtmb)).create(),
                      "JIT for " + target_.describe());
  const llvm::DataLayout &layout = impl_->jit->getDataLayout();
  auto generator = unwrap(llvm::orc::DynamicLibrarySearchGenerator::GetForCurrentProcess(
                              layout.getGlobalPrefix()),
                          "JIT: cannot search this process's symbols");
  impl_->jit->getMainJITDylib().addGenerator(std::move(generator));
}

JIT::~JIT() = default;

void JIT::addModule(std::unique_ptr<llvm::Module> module,
                    std::unique_ptr<llvm::LLVMContext> context) {
  TESSEL_CHECK(module && context, "JIT: addModule needs a module and its context");
  TESSEL_CHECK(&module->getContext() == context.get(), "JIT: module '",
               module->getModuleIdentifier(), "' does not live in the context given with it");
  std::string name = module->getModuleIdentifier();
  optimizeModule(*module, *impl_->tm, opts_);
  // The JIT's data layout is the one the module was prepared with; say so if they disagree.
  TESSEL_CHECK(module->getDataLayout() == impl_->jit->getDataLayout(), "JIT: module '", name,
               "' has data layout '", module->getDataLayoutStr(), "'; expected the host's '",
               impl_->jit->getDataLayout().getStringRepresentation(), "'");
  check(impl_->jit->addIRModule(
            llvm::orc::ThreadSafeModule(std::move(module), std::move(context))),
        "JIT: cannot add module '" + name + "'");
}

void JIT::defineSymbol(const std::string &name, void *address) {
  llvm::orc::SymbolMap symbols;
  symbols[impl_->jit->mangleAndIntern(name)] = {llvm::orc::ExecutorAddr::fromPtr(address),
                                                llvm::JITSymbolFlags::Exported |
                                                    llvm::JITSymbolFlags::Callable};
  check(impl_->jit->getMainJITDylib().define(llvm::orc::absoluteSymbols(std::move(symbols))),
        "JIT: cannot define symbol '" + name + "'");
}

void *JIT::lookup(const std::string &name) {
  auto address = unwrap(impl_->jit->lookup(name), "JIT: cannot find or compile symbol '" + name + "'");
  return address.toPtr<void *>();
}

} // namespace tessel::codegen
