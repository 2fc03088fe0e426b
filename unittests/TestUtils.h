//===- TestUtils.h - helpers shared by the unit tests and benchmarks ------===//
//
// Small helpers that several tests (and bench/te_kernels.cpp) need: seeded random inputs and
// the message of a tessel::Error. No GoogleTest and no graph headers here, so a benchmark can
// include it too; graph-building helpers live in GraphTestUtils.h.
//
//===----------------------------------------------------------------------===//

#ifndef TESSEL_UNITTESTS_TESTUTILS_H
#define TESSEL_UNITTESTS_TESTUTILS_H

#include "tessel/Support/Error.h"

#include <cstddef>
#include <functional>
#include <random>
#include <string>
#include <vector>

namespace tessel::test {

/// n floats drawn uniformly from [lo, hi) by a std::mt19937 seeded with seed (the same values
/// for the same arguments on every run).
inline std::vector<float> randomFloats(size_t n, unsigned seed, float lo = -2.0f, float hi = 2.0f) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(lo, hi);
  std::vector<float> v(n);
  for (auto &x : v)
    x = dist(rng);
  return v;
}

/// The message of the tessel::Error that fn throws ("" when it throws none).
inline std::string errorOf(const std::function<void()> &fn) {
  try {
    fn();
  } catch (const Error &e) {
    return e.what();
  }
  return "";
}

} // namespace tessel::test

/// Expects the error message `msg` to contain `needle`.
#define EXPECT_ERROR_HAS(msg, needle)                                                              \
  EXPECT_NE(std::string(msg).find(needle), std::string::npos)                                      \
      << "error message: '" << (msg) << "' should mention '" << (needle) << "'"

#endif // TESSEL_UNITTESTS_TESTUTILS_H
