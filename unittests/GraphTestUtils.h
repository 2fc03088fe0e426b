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

#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <memory>
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

} // namespace tessel::test

#endif // TESSEL_UNITTESTS_GRAPHTESTUTILS_H
