//===- gemm_peers.cpp - fp32 GEMM of every registered engine, side by side ===//
//
// Google Benchmark over every engine in GemmEngines.h x every shape of gemmBenchmarkShapes() x
// 1 and 2 threads, row-major C = A * B, reporting a "GFLOP/s" counter (2*M*N*K per call, wall
// time). Each engine is first checked against a double-precision reference. Ends with a summary
// table (GFLOP/s per shape, engine and thread count) and each engine's 1-thread peak.
//
//   gemm-peers [--engines=a,b] [--threads=1,2] [--verify-only] [benchmark flags...]
//
//===----------------------------------------------------------------------===//

#include "GemmEngines.h"

#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <unistd.h>

using namespace tessel::bench;

namespace {

struct Case {
  const GemmEngine *engine;
  const GemmShape *shape;
  int threads;
};

std::string caseName(const Case &c) {
  std::ostringstream os;
  os << "sgemm/" << c.engine->name << "/" << c.shape->model << "/" << c.shape->M << "x"
     << c.shape->N << "x" << c.shape->K << "/threads=" << c.threads;
  return os.str();
}

void runCase(benchmark::State &state, Case c) {
  // Another engine's idle threads (OpenMP, OpenBLAS) spin for a while after its last call:
  // let them go to sleep before this engine is timed.
  static const GemmEngine *previous = nullptr;
  if (previous != c.engine) {
    std::this_thread::sleep_for(std::chrono::milliseconds(300));
    previous = c.engine;
  }
  const int64_t M = c.shape->M, N = c.shape->N, K = c.shape->K;
  AlignedBuffer a(M * K), b(K * N), out(M * N);
  fillRandom(a, 11);
  fillRandom(b, 12);
  c.engine->sgemm(M, N, K, a.data, b.data, out.data, c.threads); // warm-up: threads, JIT, caches
  for (auto _ : state) {
    c.engine->sgemm(M, N, K, a.data, b.data, out.data, c.threads);
    benchmark::DoNotOptimize(out.data);
    benchmark::ClobberMemory();
  }
  state.counters["GFLOP/s"] =
      benchmark::Counter(2e-9 * double(M) * double(N) * double(K),
                         benchmark::Counter::kIsIterationInvariantRate);
}

/// Console output as usual, and the GFLOP/s of each case kept for the summary.
class SummaryReporter : public benchmark::ConsoleReporter {
public:
  SummaryReporter() : ConsoleReporter(isatty(STDOUT_FILENO) ? OO_ColorTabular : OO_Tabular) {}
  std::map<std::string, double> gflops; // by case name

  void ReportRuns(const std::vector<Run> &runs) override {
    for (const Run &run : runs) {
      auto it = run.counters.find("GFLOP/s");
      if (it == run.counters.end() || run.error_occurred)
        continue;
      bool mean = run.run_type == Run::RT_Aggregate && run.aggregate_name == "mean";
      if (run.run_type == Run::RT_Iteration && !gflops.count(run.run_name.function_name))
        gflops[run.run_name.function_name] = it->second.value;
      if (mean)
        gflops[run.run_name.function_name] = it->second.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }
};

std::vector<std::string> splitList(const std::string &text) {
  std::vector<std::string> items;
  std::stringstream ss(text);
  for (std::string item; std::getline(ss, item, ',');)
    if (!item.empty())
      items.push_back(item);
  return items;
}

void printSummary(const std::vector<const GemmEngine *> &engines, const std::vector<int> &threads,
                  const SummaryReporter &reporter) {
  std::printf("\nGEMM peers: GFLOP/s, fp32 row-major C = A*B (higher is better)\n");
  std::printf("%-12s %-32s %6s %6s %6s", "model", "shape", "M", "N", "K");
  for (const GemmEngine *e : engines)
    for (int t : threads)
      std::printf(" %12s", (e->name + " t" + std::to_string(t)).c_str());
  std::printf("\n");
  struct Peak {
    double gflops = 0;
    const GemmShape *shape = nullptr;
  };
  std::map<std::string, Peak> peaks; // 1-thread peak per engine
  for (const GemmShape &shape : gemmBenchmarkShapes()) {
    std::printf("%-12s %-32s %6lld %6lld %6lld", shape.model.c_str(), shape.what.c_str(),
                (long long)shape.M, (long long)shape.N, (long long)shape.K);
    for (const GemmEngine *e : engines) {
      for (int t : threads) {
        auto it = reporter.gflops.find(caseName({e, &shape, t}));
        if (it == reporter.gflops.end()) {
          std::printf(" %12s", "-");
          continue;
        }
        std::printf(" %12.1f", it->second);
        Peak &peak = peaks[e->name];
        if (t == 1 && it->second > peak.gflops)
          peak = {it->second, &shape};
      }
    }
    std::printf("\n");
  }
  for (const GemmEngine *e : engines) {
    auto it = peaks.find(e->name);
    if (it == peaks.end() || !it->second.shape)
      continue;
    const GemmShape &s = *it->second.shape;
    std::printf("1-thread peak %-10s %7.1f GFLOP/s (%s %lldx%lldx%lld)\n", e->name.c_str(),
                it->second.gflops, s.model.c_str(), (long long)s.M, (long long)s.N,
                (long long)s.K);
  }
}

} // namespace

int main(int argc, char **argv) {
  std::vector<std::string> engineNames;
  std::vector<int> threads = {1, 2};
  bool verifyOnly = false;
  std::vector<char *> rest = {argv[0]};
  for (int i = 1; i < argc; ++i) {
    if (std::strncmp(argv[i], "--engines=", 10) == 0) {
      engineNames = splitList(argv[i] + 10);
    } else if (std::strncmp(argv[i], "--threads=", 10) == 0) {
      threads.clear();
      for (const std::string &t : splitList(argv[i] + 10)) {
        int value = std::atoi(t.c_str());
        if (value < 1) {
          std::fprintf(stderr, "gemm-peers: --threads=%s: expected positive integers\n",
                       argv[i] + 10);
          return 2;
        }
        threads.push_back(value);
      }
    } else if (std::strcmp(argv[i], "--verify-only") == 0) {
      verifyOnly = true;
    } else {
      rest.push_back(argv[i]);
    }
  }
  std::vector<GemmEngine> all = gemmEngines();
  std::vector<const GemmEngine *> engines;
  if (engineNames.empty()) {
    for (const GemmEngine &e : all)
      engines.push_back(findGemmEngine(e.name));
  }
  for (const std::string &name : engineNames) {
    const GemmEngine *e = findGemmEngine(name);
    if (!e) {
      std::string known;
      for (const GemmEngine &k : all)
        known += (known.empty() ? "" : ", ") + k.name;
      std::fprintf(stderr, "gemm-peers: unknown engine '%s'; expected one of: %s\n",
                   name.c_str(), known.c_str());
      return 2;
    }
    engines.push_back(e);
  }

  for (const GemmEngine *e : engines) {
    std::string info = e->describe ? e->describe() : "";
    std::printf("engine %-10s %s\n", e->name.c_str(), info.c_str());
    benchmark::AddCustomContext("engine." + e->name, info);
    for (int t : threads) {
      std::string error = verifyGemmEngine(*e, t);
      if (!error.empty()) {
        std::fprintf(stderr, "gemm-peers: wrong result: %s\n", error.c_str());
        return 1;
      }
    }
  }
  std::printf("verified: every engine matches the double-precision reference\n");
  if (verifyOnly)
    return 0;

  std::vector<Case> cases;
  for (const GemmEngine *e : engines)
    for (int t : threads)
      for (const GemmShape &shape : gemmBenchmarkShapes())
        cases.push_back({e, &shape, t});
  for (const Case &c : cases)
    benchmark::RegisterBenchmark(caseName(c).c_str(), runCase, c)
        ->UseRealTime()
        ->Unit(benchmark::kMillisecond);

  int benchArgc = static_cast<int>(rest.size());
  benchmark::Initialize(&benchArgc, rest.data());
  if (benchmark::ReportUnrecognizedArguments(benchArgc, rest.data()))
    return 2;
  SummaryReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  benchmark::Shutdown();
  printSummary(engines, threads, reporter);
  return 0;
}
