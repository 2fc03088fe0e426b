//===- GemmEngines.h - the GEMM engines the benchmarks compare -*- C++ -*-===//
//
// A small registry `name -> sgemm(M, N, K, A, B, C, threads)` so that every GEMM engine
// (OpenBLAS, oneDNN, tessel's TE GEMM, ...) joins the same benchmark binary with one source
// file: define an SgemmFn and register it with TESSEL_REGISTER_GEMM_ENGINE, then add the file
// to GEMM_ENGINE_SOURCES in bench/CMakeLists.txt. Every engine computes the same thing:
// row-major fp32 C[M][N] = A[M][K] * B[K][N] (leading dimensions K, N, N; C is overwritten).
//
//===----------------------------------------------------------------------===//
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace tessel::bench {

/// Row-major C = A * B on `threads` threads (the engine sets its own threading up).
using SgemmFn = void (*)(int64_t M, int64_t N, int64_t K, const float *A, const float *B,
                         float *C, int threads);

struct GemmEngine {
  std::string name;                 // short, lower case: the benchmark names and table columns
  SgemmFn sgemm = nullptr;
  std::string (*describe)() = nullptr; // version, build, threading; may be null
};

/// Every registered engine, sorted by name.
std::vector<GemmEngine> gemmEngines();
/// The engine called `name`, or null.
const GemmEngine *findGemmEngine(std::string_view name);

struct GemmEngineRegistration {
  explicit GemmEngineRegistration(GemmEngine engine);
};

#define TESSEL_REGISTER_GEMM_ENGINE(ID, NAME, SGEMM, DESCRIBE)                                   \
  static ::tessel::bench::GemmEngineRegistration tesselGemmEngine##ID(                         \
      ::tessel::bench::GemmEngine{NAME, SGEMM, DESCRIBE})

/// One benchmarked GEMM shape and where it comes from.
struct GemmShape {
  std::string model; // "square", "resnet18", "transformer"
  std::string what;  // e.g. "conv2_x as GEMM"
  int64_t M, N, K;
};
/// The shapes of the peer benchmark: squares 256..2048, resnet18's convolutions as GEMM
/// (im2col) and its FC layer, the transformer's projections and attention.
const std::vector<GemmShape> &gemmBenchmarkShapes();

/// C = A * B accumulated in double (the oracle), and sum |A||B| per element in `absC` (the
/// scale of the rounding error) when absC is not null.
void referenceSgemm(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                    double *absC = nullptr);

/// Checks the engine against referenceSgemm on fresh random inputs (odd sizes that leave
/// vector tails, M = 1, and a mid-sized shape) at `threads` threads. Returns "" when every
/// element is within 2*K*eps*sum|a||b|, else a message naming the shape and the worst element.
std::string verifyGemmEngine(const GemmEngine &engine, int threads);

/// 64-byte aligned float buffer.
struct AlignedBuffer {
  explicit AlignedBuffer(size_t count);
  ~AlignedBuffer();
  AlignedBuffer(const AlignedBuffer &) = delete;
  AlignedBuffer &operator=(const AlignedBuffer &) = delete;
  float *data = nullptr;
  size_t size = 0;
};
/// Fills with uniform values in [-1, 1) from `seed`.
void fillRandom(AlignedBuffer &buffer, uint32_t seed);

} // namespace tessel::bench
