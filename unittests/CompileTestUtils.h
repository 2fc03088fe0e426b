//===- CompileTestUtils.h - compile a text graph and check it against the interpreter --===//
//
// compileAndCompare / compileAndCheck: the end-to-end check the compiler tests share. It
// compiles a text-IR graph with tessel::compileModel, loads the .tsl bytes with the runtime
// (Model::loadFromMemory, the code `tessel run OUT.tsl` runs), runs it on given or seeded random
// inputs and compares every output with the reference interpreter run on the uncompiled graph
// (1e-4 absolute + 1e-4 relative for floats by default, exact for other dtypes).
//
//===----------------------------------------------------------------------===//

#ifndef TESSEL_UNITTESTS_COMPILETESTUTILS_H
#define TESSEL_UNITTESTS_COMPILETESTUTILS_H

#include "GraphTestUtils.h"
#include "tessel/Compiler/Compile.h"
#include "tessel/Graph/Text.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/runtime/Model.h"
#include "tessel/runtime/ThreadPool.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <functional>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace tessel::test {

/// What compileAndCompare feeds and checks.
struct CompareOptions {
  int optLevel = 3;
  CompileOptions compile;
  unsigned seed = 7;
  /// Inputs given by name (any dtype); the others are drawn from [-1, 1): f32 and f64 only.
  std::map<std::string, Tensor> given;
  /// Multiplies the drawn values of an input (by name); empty: 1.
  std::function<double(const std::string &)> scale;
  /// Float outputs: |got - want| <= tol + tol * |want|; other dtypes exact.
  double tol = 1e-4;
};

/// What the compiled model returned: the model, and its outputs by name.
struct CompareResult {
  CompiledModel cm;
  std::map<std::string, Tensor> outputs;
};

/// Compiles `text`, runs the artifact through the runtime on the inputs `o` describes and
/// compares every output with the interpreter run on the same inputs (gtest failures, at most
/// 5 reported per output).
inline CompareResult compileAndCompare(const std::string &text, const CompareOptions &o = {}) {
  auto ref = parseGraph(text, "test");
  auto g = parseGraph(text, "test");
  CompileOptions opts = o.compile;
  opts.optLevel = o.optLevel;
  CompareResult r;
  r.cm = compileModel(*g, opts);
  runtime::Model m = runtime::Model::loadFromMemory(r.cm.artifact.data(), r.cm.artifact.size());

  std::mt19937 rng(o.seed);
  std::uniform_real_distribution<float> uf(-1, 1);
  std::uniform_real_distribution<double> ud(-1, 1);
  std::map<std::string, Object> refIn;
  std::vector<runtime::HostTensor> ins;
  for (const runtime::TensorDesc &d : m.inputs()) {
    runtime::HostTensor h(d);
    Tensor t;
    if (auto it = o.given.find(d.name); it != o.given.end()) {
      t = it->second;
    } else {
      const double k = o.scale ? o.scale(d.name) : 1.0;
      const bool f64 = d.dtype == runtime::ElemType::f64;
      EXPECT_TRUE(f64 || d.dtype == runtime::ElemType::f32) << d.name << ": give it in `given`";
      t = Tensor(f64 ? DType::f64 : DType::f32, d.shape);
      for (int64_t i = 0; i < t.numel(); ++i)
        if (f64)
          t.data<double>()[i] = ud(rng) * k;
        else
          t.data<float>()[i] = uf(rng) * float(k);
    }
    EXPECT_EQ(uint64_t(t.nbytes()), h.bytes.size()) << d.name;
    std::memcpy(h.bytes.data(), t.raw(), std::min<size_t>(h.bytes.size(), t.nbytes()));
    refIn[d.name] = Object(t);
    ins.push_back(std::move(h));
  }
  Interpreter interp(*ref);
  auto want = interp.run(refIn);
  auto got = m.run(ins);
  EXPECT_EQ(got.size(), ref->outputs.size());
  for (const runtime::HostTensor &h : got) {
    const Tensor &w = want.at(h.desc.name).tensor;
    EXPECT_EQ(h.desc.shape, w.shape()) << h.desc.name;
    EXPECT_EQ(uint64_t(w.nbytes()), h.bytes.size()) << h.desc.name;
    if (uint64_t(w.nbytes()) != h.bytes.size())
      continue;
    Tensor gt(w.dtype(), w.shape());
    std::memcpy(gt.raw(), h.bytes.data(), h.bytes.size());
    r.outputs[h.desc.name] = gt;
    if (!isFloat(w.dtype())) { // integers, bools: exact
      EXPECT_EQ(std::memcmp(w.raw(), h.bytes.data(), h.bytes.size()), 0) << h.desc.name;
      continue;
    }
    std::vector<double> gv = gt.toDoubleVector(), wv = w.toDoubleVector();
    int bad = 0;
    for (size_t i = 0; i < wv.size() && bad < 5; ++i)
      if (!(std::fabs(gv[i] - wv[i]) <= o.tol + o.tol * std::fabs(wv[i]))) {
        ++bad;
        ADD_FAILURE() << h.desc.name << "[" << i << "]: got " << gv[i] << ", expected " << wv[i];
      }
  }
  return r;
}

/// Runs `cm` through the runtime on `in` (by input name) with the global thread pool at
/// `threads` (restored after); the outputs by name. f32 outputs only.
inline std::map<std::string, Tensor> runArtifactF32(const CompiledModel &cm,
                                                    const std::map<std::string, Object> &in,
                                                    int threads) {
  runtime::Model m = runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size());
  const int savedThreads = runtime::ThreadPool::global().numThreads();
  runtime::ThreadPool::global().setNumThreads(threads);
  std::vector<runtime::HostTensor> ins;
  for (const runtime::TensorDesc &d : m.inputs()) {
    runtime::HostTensor h(d);
    std::memcpy(h.bytes.data(), in.at(d.name).tensor.raw(), h.bytes.size());
    ins.push_back(std::move(h));
  }
  std::map<std::string, Tensor> out;
  for (const runtime::HostTensor &h : m.run(ins)) {
    Tensor t(DType::f32, h.desc.shape);
    std::memcpy(t.raw(), h.bytes.data(), h.bytes.size());
    out[h.desc.name] = t;
  }
  runtime::ThreadPool::global().setNumThreads(savedThreads);
  return out;
}

/// compileAndCompare at `optLevel` with `opts`, f32 inputs drawn with `seed`.
inline CompiledModel compileAndCheck(const std::string &text, int optLevel = 3,
                                     CompileOptions opts = {}, unsigned seed = 7) {
  CompareOptions o;
  o.optLevel = optLevel;
  o.compile = std::move(opts);
  o.seed = seed;
  return compileAndCompare(text, o).cm;
}

} // namespace tessel::test

#endif
