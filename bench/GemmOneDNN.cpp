//===- GemmOneDNN.cpp - oneDNN dnnl_sgemm as a GEMM engine ----------------===//
//
// Debian's libdnnl 2.6 is built with DNNL_CPU_RUNTIME=OMP (libgomp): dnnl_sgemm uses
// omp_get_max_threads() threads, set here with omp_set_num_threads on the calling thread.
//
//===----------------------------------------------------------------------===//

#include "GemmEngines.h"

#include <oneapi/dnnl/dnnl.h>
#include <omp.h>

#include <cstdio>
#include <cstdlib>

namespace {

void onednnSgemm(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                 int threads) {
  if (omp_get_max_threads() != threads)
    omp_set_num_threads(threads);
  dnnl_status_t status = dnnl_sgemm('N', 'N', M, N, K, 1.0f, A, K, B, N, 0.0f, C, N);
  if (status != dnnl_success) {
    std::fprintf(stderr, "dnnl_sgemm(M=%lld, N=%lld, K=%lld) failed with status %d\n",
                 (long long)M, (long long)N, (long long)K, int(status));
    std::exit(1);
  }
}

const char *isaName(dnnl_cpu_isa_t isa) {
  switch (isa) {
  case dnnl_cpu_isa_sse41: return "sse41";
  case dnnl_cpu_isa_avx: return "avx";
  case dnnl_cpu_isa_avx2: return "avx2";
  case dnnl_cpu_isa_avx2_vnni: return "avx2_vnni";
  case dnnl_cpu_isa_avx512_core: return "avx512_core";
  case dnnl_cpu_isa_avx512_core_vnni: return "avx512_core_vnni";
  case dnnl_cpu_isa_avx512_core_bf16: return "avx512_core_bf16";
  case dnnl_cpu_isa_avx512_core_amx: return "avx512_core_amx";
  default: return "other";
  }
}

std::string describeOneDNN() {
  const dnnl_version_t *v = dnnl_version();
  char text[160];
  std::snprintf(text, sizeof text, "oneDNN %d.%d.%d (cpu runtime %s, max isa %s)", v->major,
                v->minor, v->patch, v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other",
                isaName(dnnl_get_effective_cpu_isa()));
  return text;
}

} // namespace

TESSEL_REGISTER_GEMM_ENGINE(OneDNN, "onednn", onednnSgemm, describeOneDNN);
