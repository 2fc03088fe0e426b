//===- gemm_interleaved.cpp - GEMM engines measured side by side, interleaved ===//
//
// On a shared, noisy machine, timing one engine for half a second and then the next compares
// different moments of the machine's load. This binary alternates the engines instead: each
// repetition times every engine once (a sample: as many calls as fill --sample-ms, at least
// one), and an engine's result is the median of its samples. It prints, per shape and thread
// count, every engine's GFLOP/s and tessel's ratio to oneDNN, and ENDS with one line per thread
// count for the 1024^3 GEMM (the interface `make bench-gemm` promises):
//
//   gemm 1024 threads=T tessel=X GFLOP/s onednn=Y GFLOP/s ratio=R
//
//   gemm-interleaved [--engines=tessel,onednn,openblas] [--threads=1,2] [--reps=N]
//                    [--reps-1024=N] [--sample-ms=MS] [--filter=SUBSTRING]
//
// Every engine is verified against the double-precision reference first (GemmEngines.h).
//
//===----------------------------------------------------------------------===//

#include "GemmEngines.h"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

using namespace tessel::bench;

namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> splitList(const std::string &text) {
  std::vector<std::string> items;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty())
      items.push_back(item);
  return items;
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/// GFLOP/s of one sample: calls until `sampleMs` have passed (at least one).
double sample(const GemmEngine &e, const GemmShape &s, int threads, const AlignedBuffer &a,
              const AlignedBuffer &b, AlignedBuffer &c, double sampleMs) {
  int64_t calls = 0;
  auto start = Clock::now();
  double elapsed = 0;
  do {
    e.sgemm(s.M, s.N, s.K, a.data, b.data, c.data, threads);
    ++calls;
    elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  } while (elapsed * 1e3 < sampleMs);
  return 2e-9 * double(s.M) * double(s.N) * double(s.K) * double(calls) / elapsed;
}

} // namespace

int main(int argc, char **argv) {
  std::vector<std::string> engineNames = {"tessel", "onednn", "openblas"};
  std::vector<int> threads = {1, 2};
  int reps = 5, reps1024 = 11;
  double sampleMs = 40;
  std::string filter;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char *prefix) -> const char * {
      size_t n = std::strlen(prefix);
      return arg.compare(0, n, prefix) == 0 ? argv[i] + n : nullptr;
    };
    if (const char *v = value("--engines=")) {
      engineNames = splitList(v);
    } else if (const char *v = value("--threads=")) {
      threads.clear();
      for (const std::string &t : splitList(v))
        threads.push_back(std::atoi(t.c_str()));
    } else if (const char *v = value("--reps=")) {
      reps = std::atoi(v);
    } else if (const char *v = value("--reps-1024=")) {
      reps1024 = std::atoi(v);
    } else if (const char *v = value("--sample-ms=")) {
      sampleMs = std::atof(v);
    } else if (const char *v = value("--filter=")) {
      filter = v;
    } else {
      std::fprintf(stderr,
                   "gemm-interleaved: unknown argument '%s'; expected --engines=a,b "
                   "--threads=1,2 --reps=N --reps-1024=N --sample-ms=MS --filter=TEXT\n",
                   argv[i]);
      return 2;
    }
  }
  for (int t : threads)
    if (t < 1) {
      std::fprintf(stderr, "gemm-interleaved: --threads: expected positive integers\n");
      return 2;
    }
  if (reps < 1 || reps1024 < 1) {
    std::fprintf(stderr, "gemm-interleaved: --reps and --reps-1024 must be at least 1\n");
    return 2;
  }
  std::vector<const GemmEngine *> engines;
  for (const std::string &name : engineNames) {
    const GemmEngine *e = findGemmEngine(name);
    if (!e) {
      std::string known;
      for (const GemmEngine &k : gemmEngines())
        known += (known.empty() ? "" : ", ") + k.name;
      std::fprintf(stderr, "gemm-interleaved: unknown engine '%s'; expected one of: %s\n",
                   name.c_str(), known.c_str());
      return 2;
    }
    engines.push_back(e);
  }
  for (const GemmEngine *e : engines) {
    std::printf("engine %-10s %s\n", e->name.c_str(), e->describe ? e->describe().c_str() : "");
    for (int t : threads) {
      std::string error = verifyGemmEngine(*e, t);
      if (!error.empty()) {
        std::fprintf(stderr, "gemm-interleaved: wrong result: %s\n", error.c_str());
        return 1;
      }
    }
  }
  std::printf("verified: every engine matches the double-precision reference\n\n");
  std::printf("GEMM, interleaved: median GFLOP/s of %d samples (%d at 1024^3) of >= %.0f ms, "
              "engines alternating\n",
              reps, reps1024, sampleMs);
  std::printf("%-12s %-32s %14s %3s", "model", "shape", "MxNxK", "thr");
  for (const GemmEngine *e : engines)
    std::printf(" %10s", e->name.c_str());
  bool haveRatio = findGemmEngine("tessel") && findGemmEngine("onednn") &&
                   std::find(engineNames.begin(), engineNames.end(), "tessel") != engineNames.end() &&
                   std::find(engineNames.begin(), engineNames.end(), "onednn") != engineNames.end();
  if (haveRatio)
    std::printf(" %8s", "t/onednn");
  std::printf("\n");

  std::map<int, std::map<std::string, double>> at1024; // threads -> engine -> GFLOP/s
  for (const GemmShape &shape : gemmBenchmarkShapes()) {
    std::string dims = std::to_string(shape.M) + "x" + std::to_string(shape.N) + "x" +
                       std::to_string(shape.K);
    if (!filter.empty() && dims.find(filter) == std::string::npos &&
        shape.what.find(filter) == std::string::npos)
      continue;
    bool is1024 = shape.M == 1024 && shape.N == 1024 && shape.K == 1024;
    AlignedBuffer a(shape.M * shape.K), b(shape.K * shape.N), c(shape.M * shape.N);
    fillRandom(a, 11);
    fillRandom(b, 12);
    for (int t : threads) {
      for (const GemmEngine *e : engines) // warm-up: JIT, thread start, caches
        e->sgemm(shape.M, shape.N, shape.K, a.data, b.data, c.data, t);
      std::map<std::string, std::vector<double>> samples;
      int n = is1024 ? reps1024 : reps;
      for (int r = 0; r < n; ++r) {
        for (size_t i = 0; i < engines.size(); ++i) {
          // Alternate the order too, so no engine always runs right after another's threads.
          const GemmEngine *e = engines[(i + size_t(r)) % engines.size()];
          // Let the previous engine's idle threads (OpenMP, OpenBLAS) stop spinning.
          std::this_thread::sleep_for(std::chrono::milliseconds(20));
          samples[e->name].push_back(sample(*e, shape, t, a, b, c, sampleMs));
        }
      }
      std::printf("%-12s %-32s %14s %3d", shape.model.c_str(), shape.what.c_str(), dims.c_str(), t);
      std::map<std::string, double> result;
      for (const GemmEngine *e : engines) {
        result[e->name] = median(samples[e->name]);
        std::printf(" %10.1f", result[e->name]);
      }
      if (haveRatio)
        std::printf(" %8.2f", result["tessel"] / result["onednn"]);
      std::printf("\n");
      std::fflush(stdout);
      if (is1024)
        at1024[t] = result;
    }
  }
  if (haveRatio) {
    std::printf("\n");
    for (int t : threads) {
      auto it = at1024.find(t);
      if (it == at1024.end())
        continue;
      double x = it->second["tessel"], y = it->second["onednn"];
      std::printf("gemm 1024 threads=%d tessel=%.1f GFLOP/s onednn=%.1f GFLOP/s ratio=%.2f\n", t,
                  x, y, x / y);
    }
  }
  return 0;
}
