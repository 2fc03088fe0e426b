//===- CompileTestUtils.h - compile a text graph and check it against the interpreter --===//
//
// compileAndCheck: the end-to-end check the compiler tests share. It compiles a text-IR graph
// with tessel::compileModel, loads the .tsl bytes with the runtime (Model::loadFromMemory, the
// code `tessel run OUT.tsl` runs), runs it on seeded random inputs and compares every output
// with the reference interpreter run on the uncompiled graph (1e-4 absolute + 1e-4 relative for f32,
// exact for other dtypes).
//
//===----------------------------------------------------------------------===//

#ifndef TESSEL_UNITTESTS_COMPILETESTUTILS_H
#define TESSEL_UNITTESTS_COMPILETESTUTILS_H

#include "tessel/Compiler/Compile.h"
#include "tessel/Graph/Text.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/runtime/Model.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace tessel::test {

/// Compiles `text` at `optLevel` (with `opts` otherwise), runs the artifact on inputs drawn
/// uniformly from [-1, 1) with `seed`, and compares with the interpreter. Returns the compiled
/// model for further checks.
inline CompiledModel compileAndCheck(const std::string &text, int optLevel = 3,
                                     CompileOptions opts = {}, unsigned seed = 7) {
  auto ref = parseGraph(text, "test");
  auto g = parseGraph(text, "test");
  opts.optLevel = optLevel;
  CompiledModel cm = compileModel(*g, opts);
  runtime::Model m = runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size());

  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::map<std::string, Object> refIn;
  std::vector<runtime::HostTensor> ins;
  for (const runtime::TensorDesc &d : m.inputs()) {
    runtime::HostTensor h(d);
    float *p = h.data<float>();
    for (size_t i = 0; i < h.bytes.size() / 4; ++i)
      p[i] = u(rng);
    Tensor t(DType::f32, d.shape);
    std::memcpy(t.raw(), p, h.bytes.size());
    refIn[d.name] = Object(t);
    ins.push_back(std::move(h));
  }
  Interpreter interp(*ref);
  auto want = interp.run(refIn);
  auto got = m.run(ins);
  EXPECT_EQ(got.size(), ref->outputs.size());
  for (const runtime::HostTensor &h : got) {
    const Tensor &w = want.at(h.desc.name).tensor;
    EXPECT_EQ(uint64_t(w.nbytes()), h.bytes.size()) << h.desc.name;
    if (uint64_t(w.nbytes()) != h.bytes.size())
      continue;
    if (w.dtype() != DType::f32) { // integers, bools: exact
      EXPECT_EQ(std::memcmp(w.raw(), h.bytes.data(), h.bytes.size()), 0) << h.desc.name;
      continue;
    }
    const float *gp = h.data<float>();
    const float *wp = w.data<float>();
    for (int64_t i = 0; i < w.numel(); ++i)
      EXPECT_NEAR(gp[i], wp[i], 1e-4 + 1e-4 * std::fabs(wp[i])) << h.desc.name << "[" << i << "]";
  }
  return cm;
}

} // namespace tessel::test

#endif
