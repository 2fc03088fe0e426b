//===- RuntimeTestUtils.h - helpers for tests of loaded artifacts ---------===//
//
// expectThreadsBitwiseEqual: the "same artifact from many threads at once" check that the
// artifact tests (ArtifactTest.cpp) and the compiled-model tests (CompiledThreadsTest.cpp)
// share.
//
//===----------------------------------------------------------------------===//

#ifndef TESSEL_UNITTESTS_RUNTIMETESTUTILS_H
#define TESSEL_UNITTESTS_RUNTIMETESTUTILS_H

#include "tessel/runtime/Model.h"

#include <gtest/gtest.h>

#include <exception>
#include <string>
#include <thread>
#include <vector>

namespace tessel::test {

/// Runs `model` from `threads` threads at once, `runsPerThread` times each (thread t, run r on
/// inputs[(t + r) % inputs.size()]), and expects every output bitwise equal to want[i].
inline void expectThreadsBitwiseEqual(const runtime::Model &model,
                                      const std::vector<std::vector<runtime::HostTensor>> &inputs,
                                      const std::vector<std::vector<runtime::HostTensor>> &want,
                                      int threads, int runsPerThread) {
  std::vector<int> mismatches(threads, 0);
  std::vector<std::string> errors(threads);
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      try {
        for (int r = 0; r < runsPerThread; ++r) {
          size_t i = size_t(t + r) % inputs.size();
          std::vector<runtime::HostTensor> got = model.run(inputs[i]);
          for (size_t o = 0; o < got.size(); ++o)
            if (got[o].bytes != want[i][o].bytes)
              ++mismatches[t];
        }
      } catch (const std::exception &e) {
        errors[t] = e.what();
      }
    });
  for (std::thread &th : pool)
    th.join();
  for (int t = 0; t < threads; ++t) {
    EXPECT_EQ(errors[t], "") << "thread " << t;
    EXPECT_EQ(mismatches[t], 0) << "thread " << t << ": outputs differ from the 1-thread run";
  }
}

} // namespace tessel::test

#endif
