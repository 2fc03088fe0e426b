//===- Random.cpp - numpy-compatible uniform draws ------------------------===//
#include "tessel/Support/Random.h"

#include <random>

namespace tessel {

std::vector<double> numpyLegacyUniforms(uint32_t seed, int64_t n) {
  std::mt19937 gen(seed);
  std::vector<double> u(size_t(n > 0 ? n : 0));
  for (double &x : u) {
    uint32_t a = gen() >> 5, b = gen() >> 6;
    x = (double(a) * 67108864.0 + double(b)) / 9007199254740992.0;
  }
  return u;
}

} // namespace tessel
