//===- Build.cpp - lower, loop pipeline, LLVM, JIT/object -----------------===//
#include "tessel/TE/Build.h"

#include "tessel/CodeGen/AOT.h"
#include "tessel/CodeGen/EmitLLVM.h"
#include "tessel/CodeGen/Target.h"
#include "tessel/Loop/Pass.h"
#include "tessel/runtime/ThreadPool.h"

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

namespace tessel {

struct BuiltModuleImpl {
  loop::LoweredFunc func;
  codegen::CompiledFunc compiled;
};

loop::LoweredFunc lowerForBuild(const te::Schedule &schedule, const std::vector<te::Tensor> &args,
                                const std::string &name) {
  return loop::lowerPipeline(te::lower(schedule, args, name));
}

static codegen::Target targetByName(const std::string &target) {
  if (target == "llvm" || target == "host")
    return codegen::Target::host();
  return codegen::Target::byName(target);
}

BuiltModule build(const te::Schedule &schedule, const std::vector<te::Tensor> &args,
                  const std::string &target, const std::string &name) {
  if (target != "llvm" && target != "host")
    fail("tessel::build: target '", target,
         "' cannot be JIT-compiled here; expected \"llvm\" (this CPU), or buildObject for '",
         target, "'");
  // Parallel loops call tessel_parallel_for, which the JIT resolves by name from the process.
  // This reference makes the linker keep libtessel_runtime.so (it would drop an --as-needed
  // library that nothing in the program calls), so every program that calls build() can run
  // parallel kernels.
  void *volatile keepRuntime = reinterpret_cast<void *>(&tessel_parallel_for);
  (void)keepRuntime;
  auto impl = std::make_shared<BuiltModuleImpl>();
  impl->func = lowerForBuild(schedule, args, name);
  impl->compiled = codegen::compileLoweredFunc(impl->func);
  BuiltModule m;
  m.impl_ = std::move(impl);
  return m;
}

void BuiltModule::call(const std::vector<RuntimeArg> &args) const {
  if (!impl_)
    fail("tessel::BuiltModule: called before build()");
  const auto &params = impl_->func.params;
  if (args.size() != params.size()) {
    std::string expected;
    for (auto &p : params)
      expected += (expected.empty() ? "" : ", ") + p.name() + (p.isBuffer() ? " (buffer)" : " (i64)");
    fail("function '", impl_->func.name, "' called with ", args.size(), " argument(s); expected ",
         params.size(), ": ", expected);
  }
  std::vector<int64_t> scalars(args.size());
  std::vector<void *> packed(args.size());
  for (size_t i = 0; i < args.size(); ++i) {
    if (params[i].isBuffer() != args[i].isPointer)
      fail("function '", impl_->func.name, "': argument ", i, " ('", params[i].name(), "') is ",
           args[i].isPointer ? "a pointer" : "a scalar", "; expected ",
           params[i].isBuffer() ? "a buffer's data pointer" : "an integer value");
    if (args[i].isPointer) {
      if (!args[i].pointer)
        fail("function '", impl_->func.name, "': argument ", i, " ('", params[i].name(),
             "') is a null pointer");
      packed[i] = args[i].pointer;
    } else {
      scalars[i] = args[i].scalar;
      packed[i] = &scalars[i];
    }
  }
  impl_->compiled(packed.data());
}

const loop::LoweredFunc &BuiltModule::loweredFunc() const { return impl_->func; }
const std::string &BuiltModule::name() const { return impl_->func.name; }
void BuiltModule::callPacked(void **args) const {
  if (!impl_)
    fail("tessel::BuiltModule: called before build()");
  impl_->compiled(args);
}

void buildObject(const te::Schedule &schedule, const std::vector<te::Tensor> &args,
                 const std::string &target, const std::string &path, const std::string &name) {
  codegen::Target t = targetByName(target);
  loop::LoweredFunc f = lowerForBuild(schedule, args, name);
  llvm::LLVMContext context;
  auto module = codegen::emitLLVM(f, context, t);
  codegen::writeObjectFile(*module, t, path);
}

} // namespace tessel
