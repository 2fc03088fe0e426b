//===- gemm.cpp - tessel's TE-scheduled GEMM as a benchmark engine --------===//
//
// The engine "tessel": te::denseGemm + te::scheduleDenseGemm (include/tessel/TE/Gemm.h: packed
// B panels, an mr x nr register tile kept in a local buffer, vectorized and unrolled, parallel
// over the tiles), compiled by tessel's loop pipeline and LLVM JIT once per shape (the first
// call, which the benchmark does not time) and run on the runtime's thread pool.
//
//===----------------------------------------------------------------------===//

#include "GemmEngines.h"

#include "tessel/TE/Gemm.h"
#include "tessel/runtime/ThreadPool.h"

#include <cstdio>
#include <map>
#include <memory>
#include <mutex>
#include <tuple>

namespace {

const tessel::te::CompiledGemm &kernelFor(int64_t M, int64_t N, int64_t K) {
  static std::mutex mutex;
  static std::map<std::tuple<int64_t, int64_t, int64_t>, std::unique_ptr<tessel::te::CompiledGemm>>
      kernels;
  std::lock_guard<std::mutex> lock(mutex);
  auto &slot = kernels[{M, N, K}];
  if (!slot)
    slot = std::make_unique<tessel::te::CompiledGemm>(
        tessel::te::buildDenseGemm(M, N, K, tessel::te::chooseGemmTiling(M, N, K)));
  return *slot;
}

void tesselSgemm(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                 int threads) {
  auto &pool = tessel::runtime::ThreadPool::global();
  if (pool.numThreads() != threads)
    pool.setNumThreads(threads);
  kernelFor(M, N, K)(A, B, C);
}

std::string describeTessel() {
  tessel::te::GemmTiling t = tessel::te::chooseGemmTiling(1024, 1024, 1024);
  return "TE-scheduled (te::scheduleDenseGemm), LLVM JIT for this CPU, tile at 1024^3: " +
         std::to_string(t.mr) + "x" + std::to_string(t.nr) + ", runtime thread pool";
}

} // namespace

TESSEL_REGISTER_GEMM_ENGINE(Tessel, "tessel", tesselSgemm, describeTessel);
