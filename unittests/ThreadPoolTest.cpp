//===- ThreadPoolTest.cpp - the runtime thread pool and its C ABI ---------===//

#include "tessel/runtime/ThreadPool.h"

#include "tessel/Support/Error.h"

#include <gtest/gtest.h>

#include <dlfcn.h>

#include <atomic>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <numeric>
#include <random>
#include <set>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

using tessel::runtime::ThreadPool;
using tessel::runtime::ThreadPoolOptions;

namespace {

int64_t parallelSum(ThreadPool &pool, int64_t n) {
  std::vector<int64_t> partial(pool.numThreads(), 0);
  pool.parallelFor(n, [&](int64_t b, int64_t e, int t) {
    int64_t s = 0;
    for (int64_t i = b; i < e; ++i)
      s += i;
    partial[t] += s;
  });
  return std::accumulate(partial.begin(), partial.end(), int64_t{0});
}

TEST(ThreadPool, SumsMatchClosedForm) {
  for (int threads : {1, 2, 3, 4, 7}) {
    ThreadPool pool(threads);
    EXPECT_EQ(pool.numThreads(), threads);
    for (int64_t n : {0, 1, 2, 3, 5, 64, 1000, 1000003}) {
      SCOPED_TRACE(testing::Message() << "threads=" << threads << " n=" << n);
      EXPECT_EQ(parallelSum(pool, n), n * (n - 1) / 2);
    }
  }
}

TEST(ThreadPool, ChunkRangeIsAStaticBalancedPartition) {
  for (int threads : {1, 2, 3, 8, 16}) {
    for (int64_t n : {1, 2, 7, 8, 9, 100, 12345}) {
      int chunks = ThreadPool::numChunks(n, threads);
      ASSERT_EQ(chunks, std::min<int64_t>(n, threads));
      int64_t next = 0, largest = 0, smallest = n;
      for (int c = 0; c < chunks; ++c) {
        auto [b, e] = ThreadPool::chunkRange(n, threads, c);
        EXPECT_EQ(b, next) << "chunks must be contiguous and in order";
        EXPECT_LT(b, e) << "no empty chunk";
        largest = std::max(largest, e - b);
        smallest = std::min(smallest, e - b);
        next = e;
      }
      EXPECT_EQ(next, n);
      EXPECT_LE(largest - smallest, 1);
    }
  }
  // The first n % chunks chunks get the extra iteration.
  EXPECT_EQ(ThreadPool::chunkRange(10, 4, 0), std::make_pair(int64_t{0}, int64_t{3}));
  EXPECT_EQ(ThreadPool::chunkRange(10, 4, 1), std::make_pair(int64_t{3}, int64_t{6}));
  EXPECT_EQ(ThreadPool::chunkRange(10, 4, 2), std::make_pair(int64_t{6}, int64_t{8}));
  EXPECT_EQ(ThreadPool::chunkRange(10, 4, 3), std::make_pair(int64_t{8}, int64_t{10}));
  EXPECT_EQ(ThreadPool::numChunks(0, 4), 0);
}

TEST(ThreadPool, PartitionAndFloatResultsAreReproducible) {
  ThreadPool pool(3);
  std::vector<float> data(100003);
  std::mt19937 rng(7);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  for (float &x : data)
    x = dist(rng);
  using Chunk = std::tuple<int64_t, int64_t, int>;
  std::vector<Chunk> firstChunks;
  float firstSum = 0;
  for (int run = 0; run < 50; ++run) {
    std::vector<Chunk> chunks(pool.numThreads());
    std::vector<float> partial(pool.numThreads(), 0.0f);
    pool.parallelFor(static_cast<int64_t>(data.size()), [&](int64_t b, int64_t e, int t) {
      chunks[t] = {b, e, t};
      float s = 0;
      for (int64_t i = b; i < e; ++i)
        s += data[i];
      partial[t] = s;
    });
    float sum = 0;
    for (float p : partial)
      sum += p;
    if (run == 0) {
      firstChunks = chunks;
      firstSum = sum;
      for (int t = 0; t < pool.numThreads(); ++t) {
        auto [b, e] = ThreadPool::chunkRange(data.size(), 3, t);
        EXPECT_EQ(chunks[t], Chunk(b, e, t)) << "chunk t runs as threadIndex t";
      }
      continue;
    }
    EXPECT_EQ(chunks, firstChunks);
    EXPECT_EQ(std::memcmp(&sum, &firstSum, sizeof(float)), 0) << "bitwise identical sums";
  }
}

// Chunk 0 runs on the caller; a worker that is awake takes its own chunk (here chunk 0 waits,
// up to 10 s, for the other two to start, so the caller does not take them over).
TEST(ThreadPool, ChunksRunOnDistinctThreadsAndChunkZeroOnTheCaller) {
  ThreadPool pool(3);
  std::vector<std::thread::id> ids(3);
  std::atomic<int> started{0};
  pool.parallelFor(3000, [&](int64_t, int64_t, int t) {
    ids[t] = std::this_thread::get_id();
    if (t != 0) {
      started.fetch_add(1);
      return;
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
    while (started.load() < 2 && std::chrono::steady_clock::now() < deadline)
      std::this_thread::yield();
  });
  EXPECT_EQ(ids[0], std::this_thread::get_id());
  EXPECT_EQ(std::set<std::thread::id>(ids.begin(), ids.end()).size(), 3u);
}

// Every chunk runs exactly once, with its own range and index, whichever thread runs it: the
// caller takes over the chunks of workers that have not started (sleeping workers, no spin).
TEST(ThreadPool, EveryChunkRunsOnceWhoeverRunsIt) {
  ThreadPoolOptions o;
  o.numThreads = 4;
  o.spinMicroseconds = 0;
  ThreadPool pool(o);
  for (int rep = 0; rep < 200; ++rep) {
    std::vector<std::atomic<int>> runs(4);
    std::vector<std::pair<int64_t, int64_t>> ranges(4);
    pool.parallelFor(103, [&](int64_t b, int64_t e, int t) {
      runs[t].fetch_add(1);
      ranges[t] = {b, e};
    });
    for (int c = 0; c < 4; ++c) {
      EXPECT_EQ(runs[c].load(), 1) << "rep " << rep << " chunk " << c;
      EXPECT_EQ(ranges[c], ThreadPool::chunkRange(103, 4, c)) << "rep " << rep << " chunk " << c;
    }
  }
}

TEST(ThreadPool, OneThreadRunsEverythingOnTheCaller) {
  ThreadPool pool(1);
  EXPECT_EQ(pool.numThreads(), 1);
  int calls = 0;
  pool.parallelFor(1000, [&](int64_t b, int64_t e, int t) {
    ++calls;
    EXPECT_EQ(b, 0);
    EXPECT_EQ(e, 1000);
    EXPECT_EQ(t, 0);
    EXPECT_EQ(std::this_thread::get_id(), std::this_thread::get_id());
  });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(parallelSum(pool, 10000), 10000 * 9999 / 2);
}

TEST(ThreadPool, NestedCallsRunInlineWithoutDeadlock) {
  ThreadPool pool(2);
  ThreadPool other(2);
  std::atomic<int64_t> total{0};
  pool.parallelFor(8, [&](int64_t b, int64_t e, int) {
    EXPECT_TRUE(ThreadPool::insideParallelRegion());
    for (int64_t i = b; i < e; ++i) {
      // Same pool and another pool: both run inline, with the same static partition.
      std::vector<std::pair<int64_t, int64_t>> seen;
      pool.parallelFor(100, [&](int64_t ib, int64_t ie, int t) {
        seen.emplace_back(ib, ie);
        EXPECT_EQ(ThreadPool::chunkRange(100, 2, t), std::make_pair(ib, ie));
        total += ie - ib;
      });
      EXPECT_EQ(seen.size(), 2u);
      other.parallelFor(100, [&](int64_t ib, int64_t ie, int) { total += ie - ib; });
    }
  });
  EXPECT_EQ(total.load(), 8 * 200);
  EXPECT_FALSE(ThreadPool::insideParallelRegion());
}

TEST(ThreadPool, ExceptionsPropagateToTheCaller) {
  ThreadPool pool(3);
  // A worker's chunk throws.
  try {
    pool.parallelFor(30, [](int64_t, int64_t, int t) {
      if (t == 2)
        throw std::runtime_error("chunk 2 failed");
    });
    FAIL() << "expected an exception";
  } catch (const std::runtime_error &e) {
    EXPECT_STREQ(e.what(), "chunk 2 failed");
  }
  // Several throw: the lowest chunk index wins, and every chunk still ran.
  std::atomic<int> ran{0};
  try {
    pool.parallelFor(30, [&](int64_t, int64_t, int t) {
      ++ran;
      if (t >= 1)
        throw std::runtime_error("chunk " + std::to_string(t));
    });
    FAIL() << "expected an exception";
  } catch (const std::runtime_error &e) {
    EXPECT_STREQ(e.what(), "chunk 1");
  }
  EXPECT_EQ(ran.load(), 3);
  // The caller's own chunk.
  EXPECT_THROW(pool.parallelFor(30, [](int64_t, int64_t, int t) {
    if (t == 0)
      throw std::logic_error("caller");
  }),
               std::logic_error);
  // The pool still works afterwards.
  EXPECT_EQ(parallelSum(pool, 999), 999 * 998 / 2);
  // A bad loop length is a tessel::Error naming what was expected.
  try {
    pool.parallelFor(-3, [](int64_t, int64_t, int) {});
    FAIL() << "expected tessel::Error";
  } catch (const tessel::Error &e) {
    EXPECT_NE(std::string(e.what()).find("n = -3"), std::string::npos) << e.what();
  }
}

TEST(ThreadPool, ManyShortJobsLoseNoWakeups) {
  // spinMicroseconds = 0 forces the sleep/wake path on every job; the default spins.
  for (int spin : {0, 100}) {
    ThreadPool pool(ThreadPoolOptions{2, spin});
    std::atomic<int64_t> chunks{0};
    auto start = std::chrono::steady_clock::now();
    const int jobs = 20000;
    for (int j = 0; j < jobs; ++j)
      pool.parallelFor(2, [&](int64_t, int64_t, int) { chunks.fetch_add(1); });
    double seconds =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    EXPECT_EQ(chunks.load(), 2 * jobs);
    EXPECT_LT(seconds, 30.0) << "spin=" << spin;
  }
}

TEST(ThreadPool, ConcurrentCallersGetCorrectResults) {
  ThreadPool pool(2);
  std::atomic<int> failures{0};
  std::vector<std::thread> callers;
  for (int c = 0; c < 4; ++c) {
    callers.emplace_back([&, c] {
      for (int j = 0; j < 500; ++j) {
        int64_t n = 1000 + 37 * c + j;
        std::atomic<int64_t> sum{0};
        pool.parallelFor(n, [&](int64_t b, int64_t e, int) {
          int64_t s = 0;
          for (int64_t i = b; i < e; ++i)
            s += i;
          sum += s;
        });
        if (sum.load() != n * (n - 1) / 2)
          ++failures;
      }
    });
  }
  for (std::thread &t : callers)
    t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(ThreadPool, SetNumThreadsResizes) {
  ThreadPool pool(2);
  for (int threads : {3, 1, 4, 2}) {
    pool.setNumThreads(threads);
    EXPECT_EQ(pool.numThreads(), threads);
    std::set<int> indices;
    std::mutex m;
    pool.parallelFor(100, [&](int64_t, int64_t, int t) {
      std::lock_guard<std::mutex> lock(m);
      indices.insert(t);
    });
    EXPECT_EQ(static_cast<int>(indices.size()), threads);
    EXPECT_EQ(parallelSum(pool, 5000), 5000 * 4999 / 2);
  }
  EXPECT_THROW(pool.parallelFor(4, [&](int64_t, int64_t, int) { pool.setNumThreads(3); }),
               tessel::Error);
  EXPECT_THROW(pool.setNumThreads(-1), tessel::Error);
  EXPECT_THROW(ThreadPool(ThreadPoolOptions{-2}), tessel::Error);
}

TEST(ThreadPool, NumThreadsFromEnvironment) {
  const char *saved = std::getenv("TESSEL_NUM_THREADS");
  std::string savedValue = saved ? saved : "";
  setenv("TESSEL_NUM_THREADS", "3", 1);
  EXPECT_EQ(ThreadPool::defaultNumThreads(), 3);
  EXPECT_EQ(ThreadPool().numThreads(), 3);
  for (const char *bad : {"abc", "0", "-2", "4x", "100000"}) {
    setenv("TESSEL_NUM_THREADS", bad, 1);
    try {
      ThreadPool::defaultNumThreads();
      ADD_FAILURE() << "expected tessel::Error for " << bad;
    } catch (const tessel::Error &e) {
      EXPECT_NE(std::string(e.what()).find("TESSEL_NUM_THREADS"), std::string::npos);
    }
  }
  unsetenv("TESSEL_NUM_THREADS");
  EXPECT_GE(ThreadPool::defaultNumThreads(), 1);
  if (saved)
    setenv("TESSEL_NUM_THREADS", savedValue.c_str(), 1);
}

// The C ABI generated code calls.
struct SumCtx {
  const int32_t *data;
  std::atomic<int64_t> sum{0};
};
void sumChunk(int64_t b, int64_t e, void *p) {
  auto *ctx = static_cast<SumCtx *>(p);
  int64_t s = 0;
  for (int64_t i = b; i < e; ++i)
    s += ctx->data[i];
  ctx->sum += s;
}
void throwingChunk(int64_t, int64_t, void *) { throw std::runtime_error("boom"); }

TEST(ThreadPoolCABI, ParallelForSetAndGetThreads) {
  ASSERT_EQ(tessel_set_num_threads(2), 0);
  EXPECT_EQ(tessel_get_num_threads(), 2);
  std::vector<int32_t> data(100001);
  std::iota(data.begin(), data.end(), 1);
  const int64_t want = 100001LL * 100002 / 2;
  SumCtx ctx{data.data()};
  EXPECT_EQ(tessel_parallel_for(static_cast<int64_t>(data.size()), sumChunk, &ctx), 0);
  EXPECT_EQ(ctx.sum.load(), want);
  EXPECT_STREQ(tessel_get_last_error(), "");

  EXPECT_EQ(tessel_parallel_for(-1, sumChunk, &ctx), -1);
  EXPECT_NE(std::string(tessel_get_last_error()).find("n = -1"), std::string::npos);
  EXPECT_EQ(tessel_parallel_for(10, nullptr, nullptr), -1);
  EXPECT_EQ(tessel_parallel_for(10, throwingChunk, nullptr), -1);
  EXPECT_NE(std::string(tessel_get_last_error()).find("boom"), std::string::npos);
  EXPECT_EQ(tessel_set_num_threads(-4), -1);
  EXPECT_EQ(tessel_get_num_threads(), 2);

  ASSERT_EQ(tessel_set_num_threads(1), 0);
  ctx.sum = 0;
  EXPECT_EQ(tessel_parallel_for(static_cast<int64_t>(data.size()), sumChunk, &ctx), 0);
  EXPECT_EQ(ctx.sum.load(), want);
  ASSERT_EQ(tessel_set_num_threads(0), 0);
  EXPECT_EQ(tessel_get_num_threads(), ThreadPool::defaultNumThreads());
}

TEST(ThreadPoolCABI, SymbolsResolveByNameInTheProcess) {
  // What an ORC JIT's DynamicLibrarySearchGenerator::GetForCurrentProcess does.
  void *byName = dlsym(RTLD_DEFAULT, "tessel_parallel_for");
  EXPECT_EQ(byName, reinterpret_cast<void *>(&tessel_parallel_for));
  std::set<std::string> names;
  for (const auto &s : tessel::runtime::runtimeSymbols()) {
    names.insert(s.name);
    EXPECT_EQ(dlsym(RTLD_DEFAULT, s.name), s.address) << s.name;
  }
  EXPECT_TRUE(names.count("tessel_parallel_for"));
  EXPECT_TRUE(names.count("tessel_set_num_threads"));
  EXPECT_TRUE(names.count("tessel_get_num_threads"));
}

TEST(ThreadPool, EmptyLoopDispatchOverheadTwoThreads) {
  ThreadPool pool(2);
  auto empty = [](int64_t, int64_t, int) {};
  for (int i = 0; i < 1000; ++i)
    pool.parallelFor(2, empty);
  const int calls = 100000;
  auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < calls; ++i)
    pool.parallelFor(2, empty);
  double ns = std::chrono::duration<double, std::nano>(std::chrono::steady_clock::now() - start)
                  .count() /
              calls;
  std::printf("empty parallelFor, 2 threads: %.0f ns per call\n", ns);
  RecordProperty("empty_parallel_for_ns", static_cast<int>(ns));
  EXPECT_LT(ns, 200000.0) << "dispatch should cost microseconds at most, even on a busy machine";
}

} // namespace
