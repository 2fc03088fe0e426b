//===- Random.h - numpy-compatible uniform draws ----------------*- C++ -*-===//
//
// The uniform doubles numpy's legacy RandomState(seed).random_sample(n) draws: MT19937 seeded
// with `seed`, each double built from two 32-bit words (27 + 26 bits). Dropout's reference
// kernel draws its training-mode mask from them, so a seeded Dropout reproduces the ONNX test
// data (made with numpy); the compiler's expand-training-dropout pass bakes the same draws
// into a constant for a seeded Dropout.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <vector>

namespace tessel {

/// n uniform doubles in [0, 1), as numpy.random.RandomState(seed).random_sample(n).
std::vector<double> numpyLegacyUniforms(uint32_t seed, int64_t n);

} // namespace tessel
