//===- ExpandTrainingDropoutTest.cpp - Dropout in training mode, compiled --===//
//
// The expand-training-dropout pass (lib/Graph/Transforms/ExpandTrainingDropout.cpp) end to end:
// a seeded Dropout with run-time ratio and training_mode compiles and gives the interpreter's
// output and mask bit for bit (both training_mode values, f32 and f64, a zero ratio); an
// unseeded one (Monte Carlo dropout) draws a new mask on every run, keeps about 1 - ratio of
// the elements and scales them by 1 / (1 - ratio).
//
//===----------------------------------------------------------------------===//

#include "CompileTestUtils.h"

#include <gtest/gtest.h>

using namespace tessel;

namespace {

TEST(ExpandTrainingDropout, SeededMatchesTheInterpreterBitwise) {
  for (const char *dt : {"f32", "f64"}) {
    std::string text = R"(
graph @drop(%x: T[3,50], %r: f32[], %t: bool[]) opset {"": 13} {
  %y, %m = Dropout(%x, %r, %t) {name = "drop", seed = 7}
  %z = Relu(%y)
  return %z, %m
}
)";
    text.replace(text.find("T["), 1, dt);
    const DType d = std::string(dt) == "f32" ? DType::f32 : DType::f64;
    for (bool training : {true, false})
      for (float ratio : {0.0f, 0.3f, 0.75f}) {
        SCOPED_TRACE(std::string(dt) + " training " + std::to_string(training) + " ratio " +
                     std::to_string(ratio));
        test::CompareOptions o;
        o.given = {{"x", test::randomTensor(d, {3, 50}, 5, -2, 2)},
                   {"r", Tensor::scalar<float>(ratio)},
                   {"t", Tensor::scalar<bool>(training)}};
        o.tol = 0; // bitwise: the same draws, the same arithmetic
        test::CompareResult r = test::compileAndCompare(text, o);
        EXPECT_TRUE(r.cm.fallbackNodes.empty());
      }
  }
}

TEST(ExpandTrainingDropout, UnseededDrawsANewMaskEveryRun) {
  const char *text = R"(
graph @mc(%x: f32[4096]) opset {"": 13} {
  %r: f32[] = dense<0.25>
  %t: bool[] = dense<true>
  %y, %m = Dropout(%x, %r, %t) {name = "mc"}
  return %y, %m
}
)";
  auto g = parseGraph(text, "test");
  CompiledModel cm = compileModel(*g);
  EXPECT_TRUE(cm.fallbackNodes.empty());
  runtime::Model m = runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size());
  runtime::HostTensor x(m.inputs()[0]);
  for (int i = 0; i < 4096; ++i)
    x.data<float>()[i] = 1.0f;
  std::vector<std::vector<uint8_t>> masks;
  for (int run = 0; run < 2; ++run) {
    auto out = m.run({x});
    ASSERT_EQ(out.size(), 2u);
    const float *y = out[0].data<float>();
    const bool *mask = out[1].data<bool>();
    int kept = 0;
    for (int i = 0; i < 4096; ++i) {
      ASSERT_EQ(y[i], mask[i] ? 1.0f / 0.75f : 0.0f) << "run " << run << " element " << i;
      kept += mask[i];
    }
    // 0.75 of 4096 kept; one standard deviation is 28 elements: 6 of them either way
    EXPECT_NEAR(kept, 3072, 170) << "run " << run;
    masks.emplace_back(out[1].bytes.begin(), out[1].bytes.end());
  }
  EXPECT_NE(masks[0], masks[1]);
}

} // namespace
