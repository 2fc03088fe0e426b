//===- GraphTestUtils.h - graph helpers shared by the unit tests ----------===//
//
// Building test graphs: parse text into a shape-inferred, verified graph, attribute literals,
// and the folder holding the shared .onnx models.
//
//===----------------------------------------------------------------------===//

#ifndef TESSEL_UNITTESTS_GRAPHTESTUTILS_H
#define TESSEL_UNITTESTS_GRAPHTESTUTILS_H

#include "tessel/Graph/IR.h"
#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Text.h"
#include "tessel/Support/Object.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <sstream>
#include <string>
#include <vector>

namespace tessel::test {

/// Parses graph text (default opset 17 when it names none), infers shapes and verifies it.
inline std::unique_ptr<Graph> parseTestGraph(const std::string &text) {
  auto g = parseGraph(text, "<test>");
  if (g->opsets.empty())
    g->opsets[""] = 17;
  inferShapes(*g);
  verifyGraph(*g);
  return g;
}

inline Attribute intAttr(int64_t v) { return Attribute::ofInt(v); }
inline Attribute intsAttr(std::vector<int64_t> v) { return Attribute::ofInts(std::move(v)); }

inline Attribute stringAttr(std::string v) {
  Attribute a;
  a.kind = Attribute::Kind::String;
  a.s = std::move(v);
  return a;
}

/// The folder of the shared .onnx models: $TESSEL_SHARED_MODELS, else the one CMake names.
inline std::string sharedModelsDir() {
  if (const char *env = std::getenv("TESSEL_SHARED_MODELS"))
    return env;
#ifdef TESSEL_SHARED_MODELS_DIR
  return TESSEL_SHARED_MODELS_DIR;
#else
  return "../shared/models";
#endif
}

/// A tensor of `shape` and dtype `dt` with values drawn from [lo, hi] (integers for integer
/// dtypes) by a small LCG seeded with `seed`, drawn in f64 and cast to `dt` (rounded once for
/// f16/bf16); the same values for the same arguments on every run.
inline Tensor randomTensor(DType dt, std::vector<int64_t> shape, unsigned seed, double lo = -1,
                           double hi = 1) {
  Tensor t(DType::f64, std::move(shape));
  for (int64_t i = 0; i < t.numel(); ++i) {
    seed = seed * 1103515245u + 12345u;
    double u = double((seed >> 8) % 100000) / 100000.0;
    t.data<double>()[i] = isFloat(dt) ? lo + (hi - lo) * u : std::floor(lo + (hi - lo + 1) * u);
  }
  return t.cast(dt);
}

/// A tensor literal with values from a fixed seed (weights must not be uniform: a wrong packing
/// order would go unnoticed with a splat).
inline std::string randomLiteral(const std::vector<int64_t> &shape, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-0.5f, 0.5f);
  int64_t n = 1;
  for (int64_t d : shape)
    n *= d;
  std::ostringstream os;
  os << "hex<\"";
  for (int64_t i = 0; i < n; ++i) {
    float f = u(rng);
    uint32_t bits;
    std::memcpy(&bits, &f, 4);
    for (int b = 0; b < 4; ++b) {
      char buf[3];
      std::snprintf(buf, sizeof buf, "%02x", unsigned((bits >> (8 * b)) & 0xff));
      os << buf;
    }
  }
  os << "\">";
  return os.str();
}

/// The text-IR type f32[d0,d1,...].
inline std::string dims(const std::vector<int64_t> &s) {
  std::string r = "f32[";
  for (size_t i = 0; i < s.size(); ++i)
    r += std::string(i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

/// Every non-constant graph input (f32 of static shape) drawn from [-1, 1) with `seed`.
inline std::map<std::string, Object> randomInputs(const Graph &g, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> u(-1, 1);
  std::map<std::string, Object> in;
  for (const Value *v : g.inputs) {
    if (v->isConstant())
      continue;
    Tensor t(DType::f32, v->type.shape.staticDims());
    float *p = t.data<float>();
    for (int64_t i = 0; i < t.numel(); ++i)
      p[i] = u(rng);
    in[v->name()] = Object(t);
  }
  return in;
}

} // namespace tessel::test

#endif // TESSEL_UNITTESTS_GRAPHTESTUTILS_H
