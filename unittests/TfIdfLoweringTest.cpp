//===- TfIdfLoweringTest.cpp - TfIdfVectorizer compiled vs the interpreter ===//
//
// The lowering of TfIdfVectorizer (lib/Graph/Ops/Text.cpp, docs/lowering.md) for int32/int64
// inputs: each graph is compiled end to end (tessel::compileModel at -O3, the artifact run by
// the runtime) and its output must equal the reference interpreter's exactly (tolerance 0).
// Inputs are seeded random integers in a small range, so that the pool's n-grams occur often,
// and values outside the pool too. Cases: the three modes with uniform and per-n-gram weights,
// unigrams and bigrams and trigrams with skips (0, some, more than the row holds), gram ranges
// that exclude some pool lengths, a length with an empty pool, a pool longer than the counted
// lengths, batches and 1-D inputs, int32 and int64, rows shorter than the n-grams, output
// columns no n-gram maps to, several n-grams (and a duplicate n-gram) mapped to one column, a
// 500-entry pool, zero-sized inputs; a string input and a pool over the unroll limit (4096
// n-grams) are errors naming the node.
//
//===----------------------------------------------------------------------===//
#include "CompileTestUtils.h"
#include "TestUtils.h"
#include "tessel/Compiler/Compile.h"
#include "tessel/Graph/Lowering.h"
#include "tessel/Graph/Text.h"

#include <gtest/gtest.h>

#include <iomanip>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace tessel;

namespace {

using test::errorOf;

/// The attributes of one TfIdfVectorizer node.
struct TfIdf {
  std::string mode = "TF";
  int64_t minN = 1, maxN = 1, maxSkip = 0;
  std::vector<int64_t> counts{0}, indexes, pool;
  std::vector<float> weights; // empty: not given
};

template <class T> std::string list(const std::vector<T> &v) {
  std::ostringstream os;
  os << std::showpoint << std::setprecision(9) << "["; // floats keep their point: 1.00000000
  for (size_t i = 0; i < v.size(); ++i)
    os << (i ? ", " : "") << v[i];
  os << "]";
  return os.str();
}

/// A one-node graph: %y = TfIdfVectorizer(%x: `dtype`[shape]).
std::string graphText(const TfIdf &a, const std::string &dtype, const std::vector<int64_t> &shape) {
  std::string dims;
  for (size_t i = 0; i < shape.size(); ++i)
    dims += (i ? "," : "") + std::to_string(shape[i]);
  std::ostringstream os;
  os << "graph @tfidf(%x: " << dtype << "[" << dims << "]) opset {\"\": 17} {\n"
     << "  %y = TfIdfVectorizer(%x) {name = \"tf\", mode = \"" << a.mode
     << "\", min_gram_length = " << a.minN << ", max_gram_length = " << a.maxN
     << ", max_skip_count = " << a.maxSkip << ", ngram_counts = " << list(a.counts)
     << ", ngram_indexes = " << list(a.indexes) << ", pool_int64s = " << list(a.pool);
  if (!a.weights.empty())
    os << ", weights = " << list(a.weights);
  os << "}\n  return %y\n}\n";
  return os.str();
}

/// Random integers in [lo, hi] of the given dtype (i32 or i64) and shape.
Tensor randomInts(DType dt, const std::vector<int64_t> &shape, int64_t lo, int64_t hi,
                  unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int64_t> u(lo, hi);
  Tensor t(dt, shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    if (dt == DType::i32)
      t.data<int32_t>()[i] = int32_t(u(rng));
    else
      t.data<int64_t>()[i] = u(rng);
  }
  return t;
}

/// Compiles the node over `x` and checks the compiled output equals the interpreter's (exact);
/// returns it.
Tensor check(const TfIdf &a, const Tensor &x) {
  const std::string dtype = x.dtype() == DType::i32 ? "i32" : "i64";
  test::CompareOptions o;
  o.tol = 0;
  o.given["x"] = x;
  auto r = test::compileAndCompare(graphText(a, dtype, x.shape()), o);
  EXPECT_EQ(r.outputs.count("y"), 1u);
  return r.outputs["y"];
}

/// Non-zero entries of a compiled output (a case where nothing matched would test little).
int64_t nonZero(const Tensor &t) {
  int64_t n = 0;
  for (int64_t i = 0; i < t.numel(); ++i)
    n += t.data<float>()[i] != 0.f;
  return n;
}

/// The ONNX example's pool: unigrams 2..7 (indexes 0..3), bigrams (5,6), (7,8), (6,7) and
/// (8,7) (indexes 4..7), with weights.
TfIdf uniAndBigrams(const std::string &mode, int64_t maxSkip) {
  TfIdf a;
  a.mode = mode;
  a.minN = 1;
  a.maxN = 2;
  a.maxSkip = maxSkip;
  a.counts = {0, 4};
  a.pool = {2, 3, 5, 4, 5, 6, 7, 8, 6, 7, 8, 7};
  a.indexes = {0, 1, 2, 3, 4, 5, 6, 7};
  return a;
}

TEST(TfIdfLowering, ModesWithAndWithoutWeights) {
  const Tensor x = randomInts(DType::i64, {4, 12}, 2, 9, 1);
  for (const char *mode : {"TF", "IDF", "TFIDF"}) {
    for (bool weighted : {false, true}) {
      TfIdf a = uniAndBigrams(mode, 2);
      if (weighted)
        a.weights = {0.5f, 1.25f, -2.f, 3.f, 0.1f, 7.5f, 1.f, 0.3f};
      SCOPED_TRACE(std::string(mode) + (weighted ? " weighted" : ""));
      EXPECT_GT(nonZero(check(a, x)), 4);
    }
  }
}

TEST(TfIdfLowering, Skips) {
  const Tensor x = randomInts(DType::i64, {3, 10}, 2, 9, 2);
  // 0; some; as many as the row holds; far more (the reference stops once the stride reaches
  // the row, the lowering counts only the skips that fit).
  for (int64_t skip : {int64_t(0), int64_t(1), int64_t(3), int64_t(8), int64_t(1) << 40}) {
    SCOPED_TRACE("max_skip_count " + std::to_string(skip));
    check(uniAndBigrams("TFIDF", skip), x);
  }
}

TEST(TfIdfLowering, GramRanges) {
  // unigrams, bigrams and trigrams in the pool; each [min, max] counts only its lengths.
  TfIdf a;
  a.counts = {0, 3, 9};
  a.pool = {1, 2, 3, /*bigrams*/ 1, 2, 2, 3, 3, 1, /*trigrams*/ 1, 2, 3, 3, 3, 3};
  a.indexes = {0, 1, 2, 3, 4, 5, 6, 7};
  a.weights = {1.f, 2.f, 3.f, 4.f, 5.f, 6.f, 7.f, 8.f};
  a.mode = "TFIDF";
  a.maxSkip = 1;
  const Tensor x = randomInts(DType::i64, {5, 9}, 0, 4, 3);
  for (auto [lo, hi] : std::vector<std::pair<int64_t, int64_t>>{{1, 1}, {1, 2}, {2, 2}, {2, 3},
                                                                 {3, 3}, {1, 3}, {3, 5}, {4, 6}}) {
    a.minN = lo;
    a.maxN = hi;
    SCOPED_TRACE("grams " + std::to_string(lo) + ".." + std::to_string(hi));
    Tensor y = check(a, x);
    if (lo > 3)
      EXPECT_EQ(nonZero(y), 0); // no pool n-gram of these lengths
  }
}

TEST(TfIdfLowering, EmptyPoolForALength) {
  // ngram_counts [0, 0]: no unigrams, only bigrams (the ONNX "levelempty" case), min 1.
  TfIdf a;
  a.minN = 1;
  a.maxN = 2;
  a.maxSkip = 0;
  a.counts = {0, 0};
  a.pool = {5, 6, 7, 8, 6, 7};
  a.indexes = {0, 1, 2};
  const Tensor x = randomInts(DType::i32, {2, 12}, 5, 8, 4);
  EXPECT_GT(nonZero(check(a, x)), 0);
  // a pool of unigrams only, counting bigrams (min = max = 2): zeros.
  a.counts = {0};
  a.pool = {5, 6};
  a.indexes = {0, 1};
  a.minN = a.maxN = 2;
  EXPECT_EQ(nonZero(check(a, x)), 0);
}

TEST(TfIdfLowering, OneDimensionalAndInt32) {
  TfIdf a = uniAndBigrams("TF", 5);
  for (DType dt : {DType::i32, DType::i64}) {
    SCOPED_TRACE(dtypeName(dt));
    EXPECT_GT(nonZero(check(a, randomInts(dt, {16}, 2, 9, 5))), 2);
    EXPECT_GT(nonZero(check(a, randomInts(dt, {1, 16}, 2, 9, 6))), 2);
  }
  // int32 values never equal a pool value outside int32's range.
  a.pool[0] = int64_t(1) << 33 | 2;
  check(a, randomInts(DType::i32, {3, 7}, 2, 9, 7));
}

TEST(TfIdfLowering, ShortRows) {
  // rows of 1 and 2 items: no bigram fits a row of 1; with 2, only skip 0.
  for (int64_t C : {1, 2, 3}) {
    SCOPED_TRACE("C " + std::to_string(C));
    check(uniAndBigrams("TFIDF", 4), randomInts(DType::i64, {6, C}, 2, 8, 8));
  }
}

TEST(TfIdfLowering, IndexesWithGapsSharedColumnsAndDuplicates) {
  // Column 1 and 4 get no n-gram (zeros; the width is max index + 1 = 9); columns 0 and 6 get
  // two n-grams each, added in pool order; the bigram (3, 3) appears twice in the pool: the
  // reference counts the first only (its column 7), the second's (column 8) stays 0.
  TfIdf a;
  a.minN = 1;
  a.maxN = 2;
  a.maxSkip = 1;
  a.counts = {0, 4};
  a.pool = {1, 2, 3, 4, /*bigrams*/ 1, 2, 3, 3, 2, 1, 3, 3, 4, 4};
  a.indexes = {0, 2, 3, 6, 0, 7, 6, 8, 5};
  a.weights = {0.25f, 1.5f, 2.f, -1.f, 3.75f, 0.5f, 9.f, 100.f, 0.125f};
  const Tensor x = randomInts(DType::i64, {4, 11}, 0, 5, 9);
  for (const char *mode : {"TF", "IDF", "TFIDF"}) {
    a.mode = mode;
    SCOPED_TRACE(mode);
    Tensor y = check(a, x);
    ASSERT_EQ(y.shape(), (std::vector<int64_t>{4, 9}));
    for (int64_t b = 0; b < 4; ++b) {
      EXPECT_EQ(y.data<float>()[b * 9 + 1], 0.f);
      EXPECT_EQ(y.data<float>()[b * 9 + 4], 0.f);
      EXPECT_EQ(y.data<float>()[b * 9 + 8], 0.f);
    }
  }
}

TEST(TfIdfLowering, LargePool) {
  // 300 unigrams and 100 bigrams (500 pool entries) over [8, 64], skips up to 2, weights.
  TfIdf a;
  a.mode = "TFIDF";
  a.minN = 1;
  a.maxN = 2;
  a.maxSkip = 2;
  a.counts = {0, 300};
  std::mt19937 rng(10);
  std::uniform_int_distribution<int64_t> u(0, 399);
  for (int64_t v = 0; v < 300; ++v)
    a.pool.push_back(v * 7 % 400);
  for (int i = 0; i < 200; ++i)
    a.pool.push_back(u(rng) % 40);
  for (int64_t k = 0; k < 400; ++k) {
    a.indexes.push_back((k * 37) % 400);
    a.weights.push_back(0.5f + float(k % 13));
  }
  Tensor x = randomInts(DType::i64, {8, 64}, 0, 399, 11);
  for (int64_t i = 0; i < x.numel(); i += 3)
    x.data<int64_t>()[i] %= 40; // more bigram hits
  EXPECT_GT(nonZero(check(a, x)), 100);
}

TEST(TfIdfLowering, ZeroSizedInputs) {
  // no rows, empty rows, an empty 1-D input: zeros of the output shape ([0, 8], [3, 8], [8]).
  TfIdf a = uniAndBigrams("TF", 1);
  check(a, randomInts(DType::i64, {0, 5}, 2, 8, 12));
  check(a, randomInts(DType::i64, {3, 0}, 2, 8, 12));
  check(a, randomInts(DType::i64, {0}, 2, 8, 12));
}

TEST(TfIdfLowering, PoolsOverTheUnrollLimitAreAnErrorNamingTheNode) {
  // At most 4096 counted n-grams are unrolled. A pool of 4097 unigrams and 500 bigrams:
  // counting the bigrams only lowers; counting the unigrams is refused, naming the node and
  // the fallback option.
  TfIdf a;
  a.counts = {0, 4097};
  for (int64_t v = 0; v < 4097; ++v)
    a.pool.push_back(v);
  for (int64_t v = 0; v < 1000; ++v)
    a.pool.push_back(v % 37);
  for (int64_t k = 0; k < 4097 + 500; ++k)
    a.indexes.push_back(k);
  a.minN = a.maxN = 2;
  auto g = parseGraph(graphText(a, "i64", {2, 8}), "test");
  EXPECT_EQ(errorOf([&] { compileModel(*g, {}); }), "");
  a.minN = a.maxN = 1;
  g = parseGraph(graphText(a, "i64", {2, 8}), "test");
  std::string err = errorOf([&] { compileModel(*g, {}); });
  EXPECT_NE(err.find("node 'tf' (TfIdfVectorizer)"), std::string::npos) << err;
  EXPECT_NE(err.find("4097 n-grams"), std::string::npos) << err;
  EXPECT_NE(err.find("--allow-interpreter-fallback"), std::string::npos) << err;
}

TEST(TfIdfLowering, HasALoweringAndStringsAreAnErrorNamingTheNode) {
  TfIdf a = uniAndBigrams("TF", 0);
  auto g = parseGraph(graphText(a, "i64", {2, 5}), "test");
  for (const auto &n : g->nodes())
    EXPECT_TRUE(hasLowering(*n));
  const char *text = R"(
graph @s(%x: str[2,3]) opset {"": 17} {
  %y = TfIdfVectorizer(%x) {name = "words", mode = "TF", min_gram_length = 1, max_gram_length = 1, max_skip_count = 0, ngram_counts = [0], ngram_indexes = [0, 1], pool_strings = ["a", "b"]}
  return %y
}
)";
  // Strings are not compiled: lowering the node is an error naming it and the dtype;
  // compiling the model fails naming the node and its string input (the runtime has no string
  // type, so the interpreter fallback cannot take it either).
  auto sg = parseGraph(text, "test");
  std::string err = errorOf([&] { lowerNode(*sg->nodes().front()); });
  EXPECT_NE(err.find("node 'words' (TfIdfVectorizer)"), std::string::npos) << err;
  EXPECT_NE(err.find("dtype str"), std::string::npos) << err;
  err = errorOf([&] { compileModel(*sg, {}); });
  EXPECT_NE(err.find("node 'words' (TfIdfVectorizer): value 'x' holds strings"),
            std::string::npos)
      << err;
}

} // namespace
