//===- CodeGenLLVMTest.cpp - targets, JIT, AOT objects and shared libraries ===//
//
// Hand-built IRBuilder modules (no emitter involved): a float vector add JIT-compiled and loaded
// from a shared library, checked against C++ on fresh random inputs; cross-target objects and PTX.
//
//===----------------------------------------------------------------------===//
#include "tessel/CodeGen/AOT.h"
#include "tessel/CodeGen/JIT.h"
#include "tessel/CodeGen/Optimize.h"
#include "tessel/CodeGen/Target.h"
#include "tessel/Support/Error.h"

#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>
#include <llvm/Target/TargetMachine.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <cstring>
#include <dlfcn.h>
#include <filesystem>
#include <random>
#include <unistd.h>

using namespace tessel;
using namespace tessel::codegen;

namespace {

/// `void vadd_f32(float *a, float *b, float *c, int64_t n)`: c[i] = a[i] + b[i], a plain loop
/// that the optimizer vectorizes.
std::unique_ptr<llvm::Module> buildVectorAdd(llvm::LLVMContext &ctx, const char *name = "vadd_f32") {
  auto module = std::make_unique<llvm::Module>("vadd", ctx);
  llvm::IRBuilder<> b(ctx);
  llvm::Type *ptr = b.getPtrTy();
  llvm::Type *i64 = b.getInt64Ty();
  auto *fnTy = llvm::FunctionType::get(b.getVoidTy(), {ptr, ptr, ptr, i64}, false);
  auto *fn = llvm::Function::Create(fnTy, llvm::Function::ExternalLinkage, name, *module);
  auto *entry = llvm::BasicBlock::Create(ctx, "entry", fn);
  auto *loop = llvm::BasicBlock::Create(ctx, "loop", fn);
  auto *exit = llvm::BasicBlock::Create(ctx, "exit", fn);
  llvm::Value *a = fn->getArg(0), *bb = fn->getArg(1), *c = fn->getArg(2), *n = fn->getArg(3);
  b.SetInsertPoint(entry);
  b.CreateCondBr(b.CreateICmpSGT(n, b.getInt64(0)), loop, exit);
  b.SetInsertPoint(loop);
  llvm::PHINode *i = b.CreatePHI(i64, 2, "i");
  i->addIncoming(b.getInt64(0), entry);
  llvm::Type *f32 = b.getFloatTy();
  llvm::Value *x = b.CreateLoad(f32, b.CreateGEP(f32, a, i));
  llvm::Value *y = b.CreateLoad(f32, b.CreateGEP(f32, bb, i));
  b.CreateStore(b.CreateFAdd(x, y), b.CreateGEP(f32, c, i));
  llvm::Value *next = b.CreateAdd(i, b.getInt64(1), "i.next", true, true);
  i->addIncoming(next, loop);
  b.CreateCondBr(b.CreateICmpSLT(next, n), loop, exit);
  b.SetInsertPoint(exit);
  b.CreateRetVoid();
  return module;
}

using VAddFn = void(float *, float *, float *, int64_t);

void checkVectorAdd(VAddFn *fn, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-10.0f, 10.0f);
  for (int64_t n : {1, 7, 16, 1000}) {
    std::vector<float> a(n), b(n), c(n + 1, 0.0f);
    for (int64_t i = 0; i < n; ++i) {
      a[i] = dist(rng);
      b[i] = dist(rng);
    }
    c[n] = 12345.0f; // a guard element that must stay untouched
    fn(a.data(), b.data(), c.data(), n);
    for (int64_t i = 0; i < n; ++i)
      ASSERT_EQ(c[i], a[i] + b[i]) << "n=" << n << " i=" << i;
    EXPECT_EQ(c[n], 12345.0f) << "n=" << n << ": wrote past the end";
  }
}

std::string tempPath(const std::string &name) {
  return (std::filesystem::temp_directory_path() /
          ("tessel-codegen-" + std::to_string(::getpid()) + "-" + name))
      .string();
}

} // namespace

TEST(CodeGenTarget, Presets) {
  Target host = Target::host();
  EXPECT_EQ(host.kind(), TargetKind::Host);
  EXPECT_FALSE(host.cpu().empty());
  EXPECT_TRUE(host.isAvailable());
#if defined(__x86_64__)
  EXPECT_TRUE(host.hasFeature("sse2")) << host.features();
#if defined(__AVX2__)
  EXPECT_TRUE(host.hasFeature("avx2")) << host.features();
#endif
#endif
  EXPECT_EQ(Target::x86_64Generic().cpu(), "x86-64");
  EXPECT_EQ(Target::aarch64Linux().cpu(), "cortex-a72");
  EXPECT_TRUE(Target::aarch64Linux().hasFeature("neon"));
  EXPECT_EQ(Target::byName("aarch64").triple(), "aarch64-unknown-linux-gnu");
  EXPECT_EQ(Target::byName("nvptx:sm_86").cpu(), "sm_86");
  try {
    Target::byName("sparc");
    FAIL() << "expected an Error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("'sparc'"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("aarch64"), std::string::npos) << e.what();
  }
  EXPECT_THROW(Target::nvptx("80"), Error);
}

TEST(CodeGenJIT, VectorAddMatchesCpp) {
  JIT jit;
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto module = buildVectorAdd(*ctx);
  jit.addModule(std::move(module), std::move(ctx));
  checkVectorAdd(jit.lookupFunction<VAddFn>("vadd_f32"), 1);
}

TEST(CodeGenJIT, ProcessSymbolsResolve) {
  // `double call_cos(double)` calls libm's cos by name: resolved from this process.
  JIT jit;
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto module = std::make_unique<llvm::Module>("libm", *ctx);
  llvm::IRBuilder<> b(*ctx);
  auto *dTy = llvm::FunctionType::get(b.getDoubleTy(), {b.getDoubleTy()}, false);
  llvm::FunctionCallee cosFn = module->getOrInsertFunction("cos", dTy);
  auto *fn = llvm::Function::Create(dTy, llvm::Function::ExternalLinkage, "call_cos", *module);
  b.SetInsertPoint(llvm::BasicBlock::Create(*ctx, "entry", fn));
  b.CreateRet(b.CreateCall(cosFn, {fn->getArg(0)}));
  jit.addModule(std::move(module), std::move(ctx));
  auto *callCos = jit.lookupFunction<double(double)>("call_cos");
  volatile double x = 0.75;
  EXPECT_EQ(callCos(x), std::cos(x));
}

TEST(CodeGenJIT, DefineSymbolAndErrors) {
  JIT jit;
  static int hits = 0;
  struct Hook {
    static void hit() { ++hits; }
  };
  jit.defineSymbol("tessel_test_hook", reinterpret_cast<void *>(&Hook::hit));
  auto ctx = std::make_unique<llvm::LLVMContext>();
  auto module = std::make_unique<llvm::Module>("hook", *ctx);
  llvm::IRBuilder<> b(*ctx);
  auto *vTy = llvm::FunctionType::get(b.getVoidTy(), false);
  llvm::FunctionCallee hook = module->getOrInsertFunction("tessel_test_hook", vTy);
  auto *fn = llvm::Function::Create(vTy, llvm::Function::ExternalLinkage, "call_hook", *module);
  b.SetInsertPoint(llvm::BasicBlock::Create(*ctx, "entry", fn));
  b.CreateCall(hook);
  b.CreateRetVoid();
  jit.addModule(std::move(module), std::move(ctx));
  jit.lookupFunction<void()>("call_hook")();
  EXPECT_EQ(hits, 1);

  try {
    jit.lookup("no_such_function");
    FAIL() << "expected an Error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("no_such_function"), std::string::npos) << e.what();
  }

  // A module that does not verify is an Error carrying the verifier's message.
  auto badCtx = std::make_unique<llvm::LLVMContext>();
  auto bad = std::make_unique<llvm::Module>("bad", *badCtx);
  llvm::IRBuilder<> bb(*badCtx);
  auto *badFn = llvm::Function::Create(llvm::FunctionType::get(bb.getVoidTy(), false),
                                       llvm::Function::ExternalLinkage, "bad", *bad);
  llvm::BasicBlock::Create(*badCtx, "entry", badFn); // no terminator
  try {
    jit.addModule(std::move(bad), std::move(badCtx));
    FAIL() << "expected an Error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("not valid LLVM IR"), std::string::npos) << e.what();
  }
}

TEST(CodeGenAOT, SharedLibraryVectorAdd) {
  llvm::LLVMContext ctx;
  auto module = buildVectorAdd(ctx, "tessel_test_vadd_so");
  std::string lib = tempPath("vadd.so");
  emitSharedLibrary(*module, lib);
  EXPECT_FALSE(std::filesystem::exists(lib + ".o")) << "the object file should be removed";
  void *handle = dlopen(lib.c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(handle, nullptr) << dlerror();
  auto *fn = reinterpret_cast<VAddFn *>(dlsym(handle, "tessel_test_vadd_so"));
  ASSERT_NE(fn, nullptr) << dlerror();
  checkVectorAdd(fn, 2);
  dlclose(handle);
  std::filesystem::remove(lib);
}

TEST(CodeGenAOT, LinkErrorsNameTheFile) {
  std::string lib = tempPath("missing.so");
  try {
    linkSharedLibrary({tempPath("does-not-exist.o")}, lib);
    FAIL() << "expected an Error";
  } catch (const Error &e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find(lib), std::string::npos) << msg;
    EXPECT_NE(msg.find("exit status"), std::string::npos) << msg;
  }
  try {
    linkSharedLibrary({tempPath("x.o")}, lib, LinkOptions{"tessel-no-such-driver", {}});
    FAIL() << "expected an Error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("tessel-no-such-driver"), std::string::npos) << e.what();
  }
  llvm::LLVMContext ctx;
  auto module = buildVectorAdd(ctx);
  EXPECT_THROW(writeObjectFile(*module, Target::host(), "/nonexistent-dir/x.o"), Error);
}

TEST(CodeGenAOT, AArch64ObjectIsElfForArm64) {
  Target arm = Target::aarch64Linux();
  if (!arm.isAvailable())
    GTEST_SKIP() << "this LLVM has no AArch64 back end";
  llvm::LLVMContext ctx;
  auto module = buildVectorAdd(ctx);
  std::vector<char> object = emitObject(*module, arm);
  ASSERT_GE(object.size(), 64u);
  EXPECT_EQ(std::memcmp(object.data(), "\x7f" "ELF", 4), 0);
  EXPECT_EQ(object[4], 2) << "ELFCLASS64";
  uint16_t machine;
  std::memcpy(&machine, object.data() + 18, 2); // e_machine, little-endian
  EXPECT_EQ(machine, 183) << "EM_AARCH64";
  // The loop was vectorized with NEON registers.
  std::string assembly = emitAssembly(*buildVectorAdd(ctx, "again"), arm);
  EXPECT_NE(assembly.find("v0."), std::string::npos) << assembly;
}

TEST(CodeGenAOT, X86GenericObject) {
  llvm::LLVMContext ctx;
  auto module = buildVectorAdd(ctx);
  std::vector<char> object = emitObject(*module, Target::x86_64Generic());
  ASSERT_GE(object.size(), 64u);
  uint16_t machine;
  std::memcpy(&machine, object.data() + 18, 2);
  EXPECT_EQ(machine, 62) << "EM_X86_64";
}

TEST(CodeGenAOT, NVPTXAssembly) {
  Target gpu = Target::nvptx("sm_80");
  if (!gpu.isAvailable())
    GTEST_SKIP() << "this LLVM has no NVPTX back end";
  llvm::LLVMContext ctx;
  auto module = buildVectorAdd(ctx, "vadd_ptx");
  std::string ptx = emitAssembly(*module, gpu);
  EXPECT_NE(ptx.find(".target sm_80"), std::string::npos) << ptx;
  EXPECT_NE(ptx.find("vadd_ptx"), std::string::npos) << ptx;
  EXPECT_NE(ptx.find("add.rn.f32"), std::string::npos) << ptx;
  EXPECT_THROW(emitObject(*buildVectorAdd(ctx, "again"), gpu), Error);
}

TEST(CodeGenOptimize, FastMathOffByDefault) {
  llvm::LLVMContext ctx;
  auto module = buildVectorAdd(ctx);
  auto tm = Target::host().createTargetMachine();
  optimizeModule(*module, *tm, CodeGenOptions{});
  std::string text = printModule(*module);
  EXPECT_EQ(text.find("fadd fast"), std::string::npos) << text;
  EXPECT_EQ(text.find("\"unsafe-fp-math\"=\"true\""), std::string::npos);

  auto fastModule = buildVectorAdd(ctx, "fast");
  CodeGenOptions fast;
  fast.fastMath = true;
  optimizeModule(*fastModule, *tm, fast);
  EXPECT_NE(printModule(*fastModule).find("fadd fast"), std::string::npos);
}
