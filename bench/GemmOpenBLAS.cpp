//===- GemmOpenBLAS.cpp - OpenBLAS cblas_sgemm as a GEMM engine -----------===//
//
// Debian's libopenblas0-pthread (DYNAMIC_ARCH): the kernel set is picked at load time from the
// CPU, or forced with OPENBLAS_CORETYPE (see bench/README.md); threads through
// openblas_set_num_threads.
//
//===----------------------------------------------------------------------===//

#include "GemmEngines.h"

#include <cblas.h>

#include <cstdlib>

namespace {

void openblasSgemm(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                   int threads) {
  static int currentThreads = 0;
  if (threads != currentThreads) {
    openblas_set_num_threads(threads);
    currentThreads = threads;
  }
  cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
}

std::string describeOpenBLAS() {
  const char *coretype = std::getenv("OPENBLAS_CORETYPE");
  return std::string(openblas_get_config()) + "; core " + openblas_get_corename() +
         "; OPENBLAS_CORETYPE=" + (coretype ? coretype : "(unset)");
}

} // namespace

TESSEL_REGISTER_GEMM_ENGINE(OpenBLAS, "openblas", openblasSgemm, describeOpenBLAS);
