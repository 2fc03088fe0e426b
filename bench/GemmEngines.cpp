//===- GemmEngines.cpp - the GEMM engine registry, shapes and oracle -------===//

#include "GemmEngines.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <cstdlib>
#include <random>
#include <sstream>

namespace tessel::bench {

namespace {
std::vector<GemmEngine> &registry() {
  static std::vector<GemmEngine> engines;
  return engines;
}
} // namespace

GemmEngineRegistration::GemmEngineRegistration(GemmEngine engine) {
  registry().push_back(std::move(engine));
}

std::vector<GemmEngine> gemmEngines() {
  std::vector<GemmEngine> engines = registry();
  std::sort(engines.begin(), engines.end(),
            [](const GemmEngine &a, const GemmEngine &b) { return a.name < b.name; });
  return engines;
}

const GemmEngine *findGemmEngine(std::string_view name) {
  for (const GemmEngine &e : registry())
    if (e.name == name)
      return &e;
  return nullptr;
}

const std::vector<GemmShape> &gemmBenchmarkShapes() {
  static const std::vector<GemmShape> shapes = {
      {"square", "256^3", 256, 256, 256},
      {"square", "512^3", 512, 512, 512},
      {"square", "1024^3", 1024, 1024, 1024},
      {"square", "2048^3", 2048, 2048, 2048},
      // resnet18 at 224x224, batch 1: a 3x3 convolution as GEMM is M = C_out, N = H*W of the
      // output, K = C_in * 9 (im2col); the FC layer is 1 x 1000 x 512.
      {"resnet18", "conv layer1 3x3 64->64 56x56", 64, 3136, 576},
      {"resnet18", "conv layer2 3x3 128->128 28x28", 128, 784, 1152},
      {"resnet18", "conv layer3 3x3 256->256 14x14", 256, 196, 2304},
      {"resnet18", "conv layer4 3x3 512->512 7x7", 512, 49, 4608},
      {"resnet18", "fc 512->1000", 1, 1000, 512},
      // The transformer benchmark model (sequence 128, d_model 256, ffn 1024, head dim 64).
      {"transformer", "qkv/out projection", 128, 256, 256},
      {"transformer", "ffn up", 128, 1024, 256},
      {"transformer", "ffn down", 128, 256, 1024},
      {"transformer", "attention scores (one head)", 128, 128, 64},
  };
  return shapes;
}

void referenceSgemm(int64_t M, int64_t N, int64_t K, const float *A, const float *B, float *C,
                    double *absC) {
  std::vector<double> row(N), absRow(N);
  for (int64_t i = 0; i < M; ++i) {
    std::fill(row.begin(), row.end(), 0.0);
    std::fill(absRow.begin(), absRow.end(), 0.0);
    for (int64_t k = 0; k < K; ++k) {
      double a = A[i * K + k];
      const float *b = B + k * N;
      for (int64_t j = 0; j < N; ++j) {
        row[j] += a * b[j];
        absRow[j] += std::fabs(a * b[j]);
      }
    }
    for (int64_t j = 0; j < N; ++j) {
      C[i * N + j] = static_cast<float>(row[j]);
      if (absC)
        absC[i * N + j] = absRow[j];
    }
  }
}

std::string verifyGemmEngine(const GemmEngine &engine, int threads) {
  struct Case {
    int64_t M, N, K;
  };
  const Case cases[] = {{37, 53, 29}, {1, 1000, 512}, {128, 256, 256}, {65, 49, 577}};
  uint32_t seed = 1;
  for (const Case &c : cases) {
    AlignedBuffer a(c.M * c.K), b(c.K * c.N), got(c.M * c.N), want(c.M * c.N);
    std::vector<double> scale(c.M * c.N);
    fillRandom(a, seed++);
    fillRandom(b, seed++);
    fillRandom(got, seed++); // the engine must overwrite C, not accumulate into it
    engine.sgemm(c.M, c.N, c.K, a.data, b.data, got.data, threads);
    referenceSgemm(c.M, c.N, c.K, a.data, b.data, want.data, scale.data());
    for (int64_t i = 0; i < c.M * c.N; ++i) {
      double tolerance = 2.0 * c.K * FLT_EPSILON * scale[i] + 1e-6;
      if (!(std::fabs(double(got.data[i]) - want.data[i]) <= tolerance)) {
        std::ostringstream os;
        os << engine.name << " sgemm M=" << c.M << " N=" << c.N << " K=" << c.K
           << " threads=" << threads << ": C[" << i / c.N << "][" << i % c.N
           << "] = " << got.data[i] << ", expected " << want.data[i] << " (tolerance "
           << tolerance << ")";
        return os.str();
      }
    }
  }
  return "";
}

AlignedBuffer::AlignedBuffer(size_t count) : size(count) {
  size_t bytes = ((std::max<size_t>(count, 1) * sizeof(float) + 63) / 64) * 64;
  data = static_cast<float *>(std::aligned_alloc(64, bytes));
  if (!data)
    std::abort();
}

AlignedBuffer::~AlignedBuffer() { std::free(data); }

void fillRandom(AlignedBuffer &buffer, uint32_t seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (size_t i = 0; i < buffer.size; ++i)
    buffer.data[i] = dist(rng);
}

} // namespace tessel::bench
