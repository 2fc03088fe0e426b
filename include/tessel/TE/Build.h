//===- Build.h - a schedule to machine code (JIT or object file) -*- C++ -*-===//
//
// tessel::build is TVM's tvm.build: lower the schedule (te::lower), run the loop pipeline
// (loop::lowerPipeline: simplify, loop partition, vectorize, unroll, storage flatten, ...), emit
// LLVM IR (codegen::emitLLVM) and compile it:
//
//   auto f = tessel::build(s, {A, C}, "llvm");        // JIT for this CPU
//   f({a.data(), c.data(), n});                        // buffers, then the shape Vars
//   tessel::buildObject(s, {A, C}, "aarch64", "f.o");  // AOT object for another target
//
// Arguments are passed in the order of the LoweredFunc's parameters: the args' buffers in order,
// then each scalar Var their shapes use (in order of first use), as a RuntimeArg (a data pointer
// or an i64 value). docs/te.md has the calling convention.
//
// LLVM stays inside lib/TE/Build.cpp; this header names no LLVM type.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/TE/Lower.h"

#include <cstdint>
#include <initializer_list>
#include <memory>
#include <string>
#include <vector>

namespace tessel {

/// One runtime argument: a buffer's data pointer or a scalar (i64) value.
struct RuntimeArg {
  void *pointer = nullptr;
  int64_t scalar = 0;
  bool isPointer = false;
  RuntimeArg(void *p) : pointer(p), isPointer(true) {}
  RuntimeArg(const void *p) : pointer(const_cast<void *>(p)), isPointer(true) {}
  template <class T, std::enable_if_t<std::is_integral_v<T>, int> = 0>
  RuntimeArg(T v) : scalar(int64_t(v)) {}
};

struct BuiltModuleImpl;

/// A JIT-compiled function made by build(). Copies share the code.
class BuiltModule {
public:
  BuiltModule() = default;
  /// Calls the function. Error if the count or kinds (pointer vs scalar) of the arguments do not
  /// match the parameters; buffer sizes are the caller's responsibility.
  void operator()(std::initializer_list<RuntimeArg> args) const { call(std::vector<RuntimeArg>(args)); }
  void call(const std::vector<RuntimeArg> &args) const;
  /// The function after the loop pipeline (what was compiled), and its name.
  const loop::LoweredFunc &loweredFunc() const;
  const std::string &name() const;
  /// Calls the packed entry point `void name(void **args)` directly (args[i]: a buffer's data
  /// pointer or a pointer to an int64_t), for callers that build their own argument arrays.
  void callPacked(void **args) const;

private:
  friend BuiltModule build(const te::Schedule &, const std::vector<te::Tensor> &,
                           const std::string &, const std::string &);
  std::shared_ptr<BuiltModuleImpl> impl_;
};

/// lower + loop pipeline: the loop IR that build() compiles (for inspection and tests).
loop::LoweredFunc lowerForBuild(const te::Schedule &schedule, const std::vector<te::Tensor> &args,
                                const std::string &name = "main");

/// Compiles for `target`: "llvm" (or "host"): JIT for this CPU. Error for any other target
/// (use buildObject for cross targets).
BuiltModule build(const te::Schedule &schedule, const std::vector<te::Tensor> &args,
                  const std::string &target = "llvm", const std::string &name = "main");

/// Compiles to an ELF object file at `path` for `target`: "llvm"/"host", "x86-64", "aarch64"
/// (codegen::Target::byName). The object defines `name` (packed) and `name_typed`.
void buildObject(const te::Schedule &schedule, const std::vector<te::Tensor> &args,
                 const std::string &target, const std::string &path,
                 const std::string &name = "main");

} // namespace tessel
