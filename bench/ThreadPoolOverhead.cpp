//===- ThreadPoolOverhead.cpp - cost of dispatching an empty parallel loop ===//
//
// What a generated kernel pays per parallel loop: ThreadPool::parallelFor and the C ABI
// tessel_parallel_for with an empty body, at 1, 2 and 4 threads, with the default spin and with
// spinning off (every loop then wakes sleeping workers through the kernel).
//
//===----------------------------------------------------------------------===//

#include "tessel/runtime/ThreadPool.h"

#include <benchmark/benchmark.h>

using tessel::runtime::ThreadPool;
using tessel::runtime::ThreadPoolOptions;

namespace {

void emptyChunk(int64_t, int64_t, void *) {}

void BM_EmptyParallelFor(benchmark::State &state) {
  ThreadPool pool(ThreadPoolOptions{int(state.range(0)), int(state.range(1))});
  auto empty = [](int64_t, int64_t, int) {};
  for (auto _ : state)
    pool.parallelFor(pool.numThreads(), empty);
}
BENCHMARK(BM_EmptyParallelFor)
    ->ArgNames({"threads", "spin_us"})
    ->Args({1, 100})
    ->Args({2, 100})
    ->Args({2, 0})
    ->Args({4, 100})
    ->UseRealTime();

void BM_EmptyTesselParallelFor(benchmark::State &state) {
  tessel_set_num_threads(int(state.range(0)));
  for (auto _ : state)
    tessel_parallel_for(1024, emptyChunk, nullptr);
}
BENCHMARK(BM_EmptyTesselParallelFor)->ArgName("threads")->Arg(1)->Arg(2)->UseRealTime();

} // namespace

BENCHMARK_MAIN();
