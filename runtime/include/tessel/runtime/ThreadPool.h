//===- ThreadPool.h - the runtime's fork-join thread pool -------*- C++ -*-===//
//
// A fixed set of worker threads that compiled kernels (JIT or AOT) and the runtime use for
// parallel loops. One idea: parallelFor(n, fn) splits [0, n) into at most numThreads()
// contiguous chunks by a static rule and runs chunk c on worker c (the calling thread runs
// chunk 0 itself, then any chunk whose worker has not started it yet: a sleeping or
// descheduled worker does not hold the loop up), then returns when every chunk is done.
//
//  - Static chunking: the partition depends only on n and numThreads(), never on timing, and a
//    chunk gets its own index whichever thread runs it, so a kernel that reduces per chunk
//    gives bitwise identical results from run to run.
//  - Nested calls (parallelFor inside a chunk, on this pool or any other) and calls made while
//    the pool is busy with another caller's loop run inline on the calling thread, chunk by
//    chunk in order, with the same partition: no deadlock, and still the same results.
//  - An exception thrown by a chunk (on any thread) is rethrown to the caller once every
//    chunk has finished; when several chunks throw, the one from the lowest chunk index wins.
//  - Low dispatch overhead: idle workers spin (with a pause instruction) for a short while
//    before they sleep on a condition variable, and the caller spins before it sleeps while it
//    waits for the last chunk, so back-to-back loops (one per kernel of a model) cost well
//    under a microsecond each instead of a futex wake-up per worker.
//
// Generated code reaches the process-wide pool through the C ABI at the bottom of this file
// (`tessel_parallel_for`), exported with default visibility from libtessel_runtime.so: a
// process that links the library (DT_NEEDED) lets an ORC JIT resolve the symbol by name
// (DynamicLibrarySearchGenerator::GetForCurrentProcess), with no -rdynamic needed.
// runtimeSymbols() lists the same entry points with their addresses for a JIT that defines
// them as absolute symbols instead, which works even when the runtime is linked statically:
//
//   llvm::orc::SymbolMap map;
//   for (const tessel::runtime::RuntimeSymbol &s : tessel::runtime::runtimeSymbols())
//     map[jit.mangleAndIntern(s.name)] = {llvm::orc::ExecutorAddr::fromPtr(s.address),
//                                         llvm::JITSymbolFlags::Exported};
//   cantFail(jit.getMainJITDylib().define(llvm::orc::absoluteSymbols(std::move(map))));
//
// In CMake: target_link_libraries(X PRIVATE TesselRuntime); an AOT kernel library links
// -ltessel_runtime. No LLVM, no protobuf: this library is part of the deployable runtime.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <exception>
#include <memory>
#include <mutex>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#if defined(_WIN32)
#define TESSEL_RUNTIME_EXPORT
#else
#define TESSEL_RUNTIME_EXPORT __attribute__((visibility("default")))
#endif

namespace tessel::runtime {

/// One chunk [begin, end) of a parallel loop and the index of that chunk, which is also the
/// index of the worker that runs it when the loop runs in parallel (0 = the calling thread).
using ChunkFn = void (*)(int64_t begin, int64_t end, int threadIndex, void *ctx);

struct ThreadPoolOptions {
  /// Total threads, the calling thread included. 0: TESSEL_NUM_THREADS from the environment
  /// when set, else std::thread::hardware_concurrency().
  int numThreads = 0;
  /// How long an idle worker (and a caller waiting for its workers) spins before it sleeps,
  /// in microseconds. 0 sleeps at once (lowest CPU use, a futex wake-up per worker per loop).
  int spinMicroseconds = 100;
};

class TESSEL_RUNTIME_EXPORT ThreadPool {
public:
  explicit ThreadPool(ThreadPoolOptions options = {});
  explicit ThreadPool(int numThreads) : ThreadPool(ThreadPoolOptions{numThreads}) {}
  ~ThreadPool();
  ThreadPool(const ThreadPool &) = delete;
  ThreadPool &operator=(const ThreadPool &) = delete;

  /// Threads that run chunks, the calling thread included (>= 1).
  int numThreads() const { return numThreads_.load(std::memory_order_relaxed); }

  /// Runs fn(begin, end, threadIndex) over the chunks of [0, n) (see chunkRange) and returns
  /// when all are done. Throws tessel::Error when n < 0; rethrows the exception of a chunk.
  template <class Fn> void parallelFor(int64_t n, Fn &&fn) {
    using F = std::remove_reference_t<Fn>;
    run(
        n,
        [](int64_t b, int64_t e, int t, void *ctx) { (*static_cast<F *>(ctx))(b, e, t); },
        const_cast<void *>(static_cast<const void *>(&fn)));
  }

  /// The type-erased form of parallelFor (what the C ABI calls). Throws tessel::Error when
  /// n < 0 or fn is null.
  void run(int64_t n, ChunkFn fn, void *ctx);

  /// Replaces the workers by a new set of numThreads - 1 (0: the default, as in
  /// ThreadPoolOptions). Waits for a loop in progress on another thread; throws tessel::Error
  /// when called from inside a parallel region or with numThreads < 0.
  void setNumThreads(int numThreads);

  /// How many chunks a loop of n iterations gets on `threads` threads: min(n, threads).
  static int numChunks(int64_t n, int threads);
  /// Chunk `index` of [0, n) split over `threads` threads: the first n % chunks chunks get one
  /// iteration more than the others; chunks are contiguous and in order.
  static std::pair<int64_t, int64_t> chunkRange(int64_t n, int threads, int index);

  /// TESSEL_NUM_THREADS when set (a positive integer; tessel::Error for anything else), else
  /// hardware_concurrency() (1 when unknown).
  static int defaultNumThreads();

  /// The process-wide pool (created on first use with defaultNumThreads(); never destroyed, so
  /// that kernels running during static destruction still find it).
  static ThreadPool &global();

  /// True on a pool's worker threads and on a caller while it runs a parallel loop.
  static bool insideParallelRegion();

  /// The most threads a pool accepts.
  static constexpr int kMaxThreads = 1024;

private:
  struct Job {
    ChunkFn fn = nullptr;
    void *ctx = nullptr;
    int64_t n = 0;
    int threads = 1; // the thread count the partition is computed for
    int chunks = 0;
    uint64_t generation = 0; // generation_ while this job is current
  };

  void startWorkers(int numThreads);
  void stopWorkers();
  void workerLoop(int index, uint64_t seenGeneration);
  void runInline(int64_t n, int threads, ChunkFn fn, void *ctx);
  void runParallel(int64_t n, int threads, ChunkFn fn, void *ctx);
  /// Claims chunk `index` of the job of `generation` for the calling thread; false when
  /// another thread has it (or that job is over).
  bool claim(int index, uint64_t generation);
  /// Runs chunk `index` of `job` and records its exception in errors_[index].
  void runChunk(const Job &job, int index);

  std::atomic<int> numThreads_{1}; // changed only by setNumThreads, under runMutex_
  int spinMicroseconds_ = 0;
  std::vector<std::thread> workers_;

  /// Held by the caller whose loop owns the workers; others run inline.
  std::mutex runMutex_;

  std::mutex mutex_; // guards job_, stop_, sleepers_, and the waits below
  std::condition_variable workCv_;
  std::condition_variable doneCv_;
  Job job_;
  bool stop_ = false;
  int sleepers_ = 0;                       // workers asleep on workCv_
  std::atomic<uint64_t> generation_{0};    // bumped under mutex_ per job; spinning workers poll
  std::atomic<int> pending_{0};            // worker chunks of the current job not yet finished
  std::vector<std::exception_ptr> errors_; // per chunk, of the current job
  std::unique_ptr<std::atomic<uint64_t>[]> claimed_; // per chunk: last generation claiming it
};

/// One entry point of the runtime's C ABI: its symbol name and address.
struct RuntimeSymbol {
  const char *name;
  void *address;
};
/// The runtime's C entry points, for a JIT that defines them as absolute symbols.
TESSEL_RUNTIME_EXPORT const std::vector<RuntimeSymbol> &runtimeSymbols();

} // namespace tessel::runtime

extern "C" {
/// Runs fn(begin, end, ctx) over the static chunks of [0, n) on the global pool (see
/// ThreadPool::chunkRange). Returns 0 on success; -1 when n < 0, fn is null, the global pool
/// cannot be created (a bad TESSEL_NUM_THREADS), or a chunk threw (a C++ exception is not
/// allowed to cross into C; the chunk functions of generated code never throw).
TESSEL_RUNTIME_EXPORT int tessel_parallel_for(int64_t n,
                                              void (*fn)(int64_t begin, int64_t end, void *ctx),
                                              void *ctx);
/// Sets the global pool's thread count (the calling thread included; 0: the default). Returns
/// 0 on success, -1 when n < 0 or n > kMaxThreads or when called inside a parallel region.
TESSEL_RUNTIME_EXPORT int tessel_set_num_threads(int n);
/// The global pool's thread count (the calling thread included); -1 when the pool cannot be
/// created.
TESSEL_RUNTIME_EXPORT int tessel_get_num_threads(void);
/// The message of the last error one of the functions above reported on this thread (empty
/// when none); valid until the next call on this thread.
TESSEL_RUNTIME_EXPORT const char *tessel_get_last_error(void);
}
