//===- ThreadPool.cpp - the runtime's fork-join thread pool ---------------===//
//
// One job at a time: the caller publishes the job under mutex_ and bumps generation_; workers
// that spin see the new generation at once, sleeping ones are woken through workCv_ (only when
// some sleep, so the fast path makes no system call). Chunk c is worker c's, but whoever
// claims it first runs it (claimed_[c]: the last job generation that claimed it, raised by a
// compare-exchange): the caller runs chunk 0, then every chunk whose worker has not started it
// yet (a worker still asleep or descheduled by the OS, which would otherwise cost the loop a
// wake-up or a scheduler tick), then spins a little and sleeps on doneCv_ until pending_ (the
// chunks other than 0 not yet finished) reaches 0. Who runs a chunk never changes its range
// or its index, so results stay bitwise the same.
//
//===----------------------------------------------------------------------===//

#include "tessel/runtime/ThreadPool.h"

#include "tessel/Support/Error.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <string>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

namespace tessel::runtime {

namespace {

/// True on worker threads, and on a caller while it runs a loop (inline or parallel).
thread_local bool tlsInsideRegion = false;

struct RegionGuard {
  bool previous = tlsInsideRegion;
  RegionGuard() { tlsInsideRegion = true; }
  ~RegionGuard() { tlsInsideRegion = previous; }
};

inline void cpuRelax() {
#if defined(__x86_64__) || defined(__i386__)
  _mm_pause();
#elif defined(__aarch64__)
  asm volatile("yield" ::: "memory");
#endif
}

/// Spins until pred() holds or `micros` microseconds have passed; returns pred().
template <class Pred> bool spinFor(int micros, Pred pred) {
  if (pred())
    return true;
  if (micros <= 0)
    return false;
  auto deadline = std::chrono::steady_clock::now() + std::chrono::microseconds(micros);
  for (unsigned k = 1;; ++k) {
    cpuRelax();
    if (pred())
      return true;
    if ((k & 63) != 0)
      continue;
    if (std::chrono::steady_clock::now() >= deadline)
      return false;
    // More threads than free cores: let the thread we wait for run.
    if ((k & 1023) == 0)
      std::this_thread::yield();
  }
}

} // namespace

ThreadPool::ThreadPool(ThreadPoolOptions options) {
  TESSEL_CHECK(options.numThreads >= 0 && options.numThreads <= kMaxThreads,
               "ThreadPool: numThreads = ", options.numThreads,
               "; expected 0 (the default) or a thread count from 1 to ", kMaxThreads);
  TESSEL_CHECK(options.spinMicroseconds >= 0, "ThreadPool: spinMicroseconds = ",
               options.spinMicroseconds, "; expected a time >= 0");
  spinMicroseconds_ = options.spinMicroseconds;
  startWorkers(options.numThreads == 0 ? defaultNumThreads() : options.numThreads);
}

ThreadPool::~ThreadPool() {
  std::lock_guard<std::mutex> lock(runMutex_);
  stopWorkers();
}

int ThreadPool::numChunks(int64_t n, int threads) {
  if (n <= 0)
    return 0;
  return static_cast<int>(std::min<int64_t>(n, std::max(threads, 1)));
}

std::pair<int64_t, int64_t> ThreadPool::chunkRange(int64_t n, int threads, int index) {
  int chunks = numChunks(n, threads);
  if (index < 0 || index >= chunks)
    return {n, n};
  int64_t base = n / chunks, extra = n % chunks;
  int64_t begin = index * base + std::min<int64_t>(index, extra);
  return {begin, begin + base + (index < extra ? 1 : 0)};
}

int ThreadPool::defaultNumThreads() {
  const char *env = std::getenv("TESSEL_NUM_THREADS");
  if (env && *env) {
    char *end = nullptr;
    errno = 0;
    long value = std::strtol(env, &end, 10);
    TESSEL_CHECK(errno == 0 && *end == '\0' && value >= 1 && value <= kMaxThreads,
                 "TESSEL_NUM_THREADS='", env, "': expected a thread count from 1 to ",
                 kMaxThreads);
    return static_cast<int>(value);
  }
  unsigned hw = std::thread::hardware_concurrency();
  return hw == 0 ? 1 : static_cast<int>(std::min<unsigned>(hw, kMaxThreads));
}

ThreadPool &ThreadPool::global() {
  // Leaked on purpose: kernels may run during static destruction.
  static ThreadPool *pool = new ThreadPool();
  return *pool;
}

bool ThreadPool::insideParallelRegion() { return tlsInsideRegion; }

void ThreadPool::startWorkers(int numThreads) {
  numThreads_.store(numThreads, std::memory_order_relaxed);
  errors_.assign(numThreads, nullptr);
  claimed_.reset(new std::atomic<uint64_t>[numThreads]);
  for (int i = 0; i < numThreads; ++i)
    claimed_[i].store(generation_.load(std::memory_order_relaxed), std::memory_order_relaxed);
  stop_ = false;
  uint64_t generation = generation_.load(std::memory_order_relaxed);
  workers_.reserve(numThreads - 1);
  for (int i = 1; i < numThreads; ++i)
    workers_.emplace_back([this, i, generation] { workerLoop(i, generation); });
}

void ThreadPool::stopWorkers() {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    stop_ = true;
    generation_.fetch_add(1, std::memory_order_release);
  }
  workCv_.notify_all();
  for (std::thread &t : workers_)
    t.join();
  workers_.clear();
  stop_ = false;
}

void ThreadPool::setNumThreads(int numThreads) {
  TESSEL_CHECK(!tlsInsideRegion, "ThreadPool::setNumThreads(", numThreads,
               ") called inside a parallel loop; expected a call outside any parallel region");
  TESSEL_CHECK(numThreads >= 0 && numThreads <= kMaxThreads, "ThreadPool::setNumThreads(",
               numThreads, "): expected 0 (the default) or a thread count from 1 to ",
               kMaxThreads);
  int want = numThreads == 0 ? defaultNumThreads() : numThreads;
  std::lock_guard<std::mutex> lock(runMutex_);
  if (want == this->numThreads())
    return;
  stopWorkers();
  startWorkers(want);
}

void ThreadPool::workerLoop(int index, uint64_t seen) {
  tlsInsideRegion = true;
  for (;;) {
    spinFor(spinMicroseconds_,
            [&] { return generation_.load(std::memory_order_acquire) != seen; });
    Job job;
    {
      std::unique_lock<std::mutex> lock(mutex_);
      if (!stop_ && generation_.load(std::memory_order_relaxed) == seen) {
        ++sleepers_;
        workCv_.wait(lock, [&] {
          return stop_ || generation_.load(std::memory_order_relaxed) != seen;
        });
        --sleepers_;
      }
      if (stop_)
        return;
      seen = generation_.load(std::memory_order_relaxed);
      job = job_;
    }
    if (index >= job.chunks || !claim(index, job.generation))
      continue; // not this worker's (fewer chunks than threads), or the caller took it
    runChunk(job, index);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
      // The caller checks pending_ under mutex_ before it sleeps: taking the lock here means
      // it either sees 0 or is already waiting and gets this notification.
      { std::lock_guard<std::mutex> lock(mutex_); }
      doneCv_.notify_one();
    }
  }
}

bool ThreadPool::claim(int index, uint64_t generation) {
  uint64_t seen = claimed_[index].load(std::memory_order_relaxed);
  // >= : already claimed for this job, or the claimant holds a job that has since finished.
  while (seen < generation)
    if (claimed_[index].compare_exchange_weak(seen, generation, std::memory_order_acq_rel))
      return true;
  return false;
}

void ThreadPool::runChunk(const Job &job, int index) {
  auto [begin, end] = chunkRange(job.n, job.threads, index);
  try {
    job.fn(begin, end, index, job.ctx);
  } catch (...) {
    errors_[index] = std::current_exception();
  }
}

void ThreadPool::run(int64_t n, ChunkFn fn, void *ctx) {
  TESSEL_CHECK(n >= 0, "parallelFor: n = ", n, "; expected a loop length >= 0");
  TESSEL_CHECK(fn != nullptr, "parallelFor: null chunk function; expected a function");
  if (n == 0)
    return;
  int threads = numThreads();
  if (threads == 1 || n == 1) {
    // One chunk: a plain call (a parallel loop nested inside may still use the pool).
    fn(0, n, 0, ctx);
    return;
  }
  if (tlsInsideRegion)
    return runInline(n, threads, fn, ctx);
  std::unique_lock<std::mutex> owner(runMutex_, std::try_to_lock);
  if (!owner.owns_lock())
    return runInline(n, threads, fn, ctx); // another caller's loop holds the workers
  runParallel(n, numThreads(), fn, ctx);
}

void ThreadPool::runInline(int64_t n, int threads, ChunkFn fn, void *ctx) {
  RegionGuard region;
  std::exception_ptr first;
  int chunks = numChunks(n, threads);
  for (int c = 0; c < chunks; ++c) {
    auto [begin, end] = chunkRange(n, threads, c);
    try {
      fn(begin, end, c, ctx);
    } catch (...) {
      if (!first)
        first = std::current_exception();
    }
  }
  if (first)
    std::rethrow_exception(first);
}

void ThreadPool::runParallel(int64_t n, int threads, ChunkFn fn, void *ctx) {
  RegionGuard region;
  int chunks = numChunks(n, threads);
  Job job{fn, ctx, n, threads, chunks};
  bool wake;
  {
    std::lock_guard<std::mutex> lock(mutex_);
    std::fill(errors_.begin(), errors_.begin() + chunks, nullptr);
    pending_.store(chunks - 1, std::memory_order_relaxed);
    job.generation = generation_.load(std::memory_order_relaxed) + 1;
    job_ = job;
    generation_.store(job.generation, std::memory_order_release);
    wake = sleepers_ > 0;
  }
  if (wake)
    workCv_.notify_all();

  runChunk(job, 0);
  for (int c = 1; c < chunks; ++c)
    if (claim(c, job.generation)) {
      runChunk(job, c);
      pending_.fetch_sub(1, std::memory_order_acq_rel);
    }

  auto done = [&] { return pending_.load(std::memory_order_acquire) == 0; };
  if (!spinFor(spinMicroseconds_, done)) {
    std::unique_lock<std::mutex> lock(mutex_);
    doneCv_.wait(lock, done);
  }
  for (int c = 0; c < chunks; ++c) {
    if (errors_[c]) {
      std::exception_ptr error = std::move(errors_[c]);
      std::fill(errors_.begin(), errors_.begin() + chunks, nullptr);
      std::rethrow_exception(error);
    }
  }
}

const std::vector<RuntimeSymbol> &runtimeSymbols() {
  static const std::vector<RuntimeSymbol> symbols = {
      {"tessel_parallel_for", reinterpret_cast<void *>(&tessel_parallel_for)},
      {"tessel_set_num_threads", reinterpret_cast<void *>(&tessel_set_num_threads)},
      {"tessel_get_num_threads", reinterpret_cast<void *>(&tessel_get_num_threads)},
      {"tessel_get_last_error", reinterpret_cast<void *>(&tessel_get_last_error)},
  };
  return symbols;
}

} // namespace tessel::runtime

//===----------------------------------------------------------------------===//
// C ABI
//===----------------------------------------------------------------------===//

namespace {

thread_local std::string tlsLastError;

struct CLoop {
  void (*fn)(int64_t, int64_t, void *);
  void *ctx;
};

void runCChunk(int64_t begin, int64_t end, int, void *p) {
  auto *loop = static_cast<CLoop *>(p);
  loop->fn(begin, end, loop->ctx);
}

int reportCurrentException(const char *where) {
  try {
    throw;
  } catch (const std::exception &e) {
    tlsLastError = std::string(where) + ": " + e.what();
  } catch (...) {
    tlsLastError = std::string(where) + ": a chunk threw a non-standard exception";
  }
  return -1;
}

} // namespace

using tessel::runtime::ThreadPool;

extern "C" int tessel_parallel_for(int64_t n, void (*fn)(int64_t, int64_t, void *),
                                   void *ctx) {
  tlsLastError.clear();
  try {
    TESSEL_CHECK(fn != nullptr, "null chunk function; expected a function");
    CLoop loop{fn, ctx};
    ThreadPool::global().run(n, runCChunk, &loop);
    return 0;
  } catch (...) {
    return reportCurrentException("tessel_parallel_for");
  }
}

extern "C" int tessel_set_num_threads(int n) {
  tlsLastError.clear();
  try {
    ThreadPool::global().setNumThreads(n);
    return 0;
  } catch (...) {
    return reportCurrentException("tessel_set_num_threads");
  }
}

extern "C" int tessel_get_num_threads(void) {
  tlsLastError.clear();
  try {
    return ThreadPool::global().numThreads();
  } catch (...) {
    return reportCurrentException("tessel_get_num_threads");
  }
}

extern "C" const char *tessel_get_last_error(void) { return tlsLastError.c_str(); }
