//===- DynamicKernelTest.cpp - kernels of data-dependent output shapes ----===//
//
// The DynamicKernels of NonZero, Compress, Unique (lib/Graph/Ops/Indexing.cpp) and
// NonMaxSuppression (lib/Graph/Ops/Image.cpp), docs/lowering.md "Data-dependent output shapes".
// Each case builds a one-node graph, builds the node's kernel (buildDynamicKernel), runs the
// loop pipeline, JIT-compiles it (codegen::compileLoweredFunc) and calls it with output buffers
// of the bound's size (filled with a non-zero byte, as stale memory) plus a guard zone, then
// checks against the reference interpreter: the extent of each dynamic axis, the outputs bit
// for bit in the bound's layout (the element at actual index (i0, i1, ...) at the row-major
// position of (i0, i1, ...) in the bound's shape), every element of the bound outside the
// actual shape zero, and nothing written past the bound. Inputs the reference rejects (a
// condition selecting past the axis) run only for the zero and guard checks. Cases: every
// attribute case of each op, dtypes f16/bf16/f32/f64/integers/bool, random inputs with many
// duplicates, all zero, all equal, empty, scalar, one element, NaN, -0.0, score ties, constant
// and run-time optional inputs, negative and huge max_output_boxes_per_class; unsupported
// dtypes are errors naming the node. Also: the shared
// lowering::stableMergeSort against std::stable_sort, and the 19 ONNX node tests of the four ops
// (/usr/share/libonnx-testdata; skipped when absent) against their expected outputs.
//
//===----------------------------------------------------------------------===//
#include "GraphTestUtils.h"
#include "TestUtils.h"
#include "tessel/CodeGen/EmitLLVM.h"
#include "tessel/Frontend/ONNX.h"
#include "tessel/Graph/Lowering.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/Loop/Pass.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <limits>
#include <map>
#include <random>
#include <sstream>
#include <string>
#include <vector>

using namespace tessel;

namespace {

using test::errorOf;

constexpr uint8_t kGuard = 0xA5;
constexpr size_t kGuardBytes = 64;

std::string dims(const std::vector<int64_t> &shape) {
  std::string s;
  for (size_t i = 0; i < shape.size(); ++i)
    s += (i ? "," : "") + std::to_string(shape[i]);
  return s;
}

std::string typeOf(const Tensor &t) {
  return std::string(dtypeName(t.dtype())) + "[" + dims(t.shape()) + "]";
}

/// The node whose op has a DynamicKernel (the only one in the test graphs).
const Node &dynamicNode(const Graph &g) {
  for (const auto &n : g.nodes())
    if (hasDynamicKernel(*n))
      return *n;
  ADD_FAILURE() << "no node with a DynamicKernel";
  return *g.nodes().front();
}

/// Compiles the graph's dynamic node and runs it on `inputs` (by graph input name; constants
/// come from the graph); with `compare`, checks every output against the interpreter, or
/// against `expected` (one per given node output) when given. Returns the extents of the
/// dynamic outputs (-1 for a static one).
std::vector<int64_t> runKernelOn(const Graph *g, const std::map<std::string, Tensor> &inputs,
                                 bool compare, const std::vector<Tensor> *expected = nullptr) {
  const Node &n = dynamicNode(*g);
  DynamicKernelFunc k = buildDynamicKernel(n, "dyn_" + std::to_string(std::rand()));
  loop::LoweredFunc f = loop::lowerPipeline(k.func);
  codegen::CompiledFunc cf = codegen::compileLoweredFunc(f);

  std::vector<std::vector<uint8_t>> store;
  std::vector<void *> args;
  for (size_t i = 0; i < n.numInputs(); ++i) {
    const Value *v = n.input(i);
    if (!v)
      continue;
    const Tensor &t = v->isConstant() ? v->constant : inputs.at(v->name());
    std::vector<uint8_t> bytes(std::max<size_t>(t.nbytes(), 1));
    if (t.nbytes())
      std::memcpy(bytes.data(), t.raw(), t.nbytes());
    store.push_back(std::move(bytes));
  }
  std::vector<size_t> outSlot(n.numOutputs(), size_t(-1)), extSlot(n.numOutputs(), size_t(-1));
  for (size_t i = 0; i < n.numOutputs(); ++i) {
    if (!n.output(i))
      continue;
    int64_t count = 1;
    for (int64_t d : k.bounds[i].shape)
      count *= d;
    outSlot[i] = store.size();
    store.emplace_back(size_t(count) * dtypeSize(n.output(i)->type.dtype) + kGuardBytes, kGuard);
  }
  for (size_t i = 0; i < n.numOutputs(); ++i)
    if (n.output(i) && k.bounds[i].axis >= 0) {
      extSlot[i] = store.size();
      std::vector<uint8_t> e(sizeof(int64_t));
      int64_t minusOne = -1;
      std::memcpy(e.data(), &minusOne, sizeof minusOne);
      store.push_back(std::move(e));
    }
  EXPECT_EQ(store.size(), f.params.size());
  for (auto &s : store)
    args.push_back(s.data());
  cf(args.data());

  std::map<std::string, Object> want;
  if (compare && expected) {
    size_t k = 0;
    for (size_t i = 0; i < n.numOutputs(); ++i)
      if (n.output(i) && k < expected->size())
        want[n.output(i)->name()] = Object((*expected)[k++]);
  } else if (compare) {
    std::map<std::string, Object> in;
    for (const auto &[name, t] : inputs)
      in[name] = Object(t);
    Interpreter interp(*g);
    want = interp.run(in);
  }
  std::vector<int64_t> extents(n.numOutputs(), -1);
  for (size_t i = 0; i < n.numOutputs(); ++i) {
    if (!n.output(i))
      continue;
    const DynamicOutputBound &b = k.bounds[i];
    std::vector<int64_t> shape = b.shape;
    if (b.axis >= 0) {
      std::memcpy(&extents[i], store[extSlot[i]].data(), sizeof(int64_t));
      EXPECT_GE(extents[i], 0) << "output " << i;
      EXPECT_LE(extents[i], b.shape[b.axis]) << "output " << i;
      if (extents[i] < 0 || extents[i] > b.shape[b.axis])
        continue;
      shape[b.axis] = extents[i];
    }
    const std::vector<uint8_t> &got = store[outSlot[i]];
    const size_t elem = dtypeSize(n.output(i)->type.dtype);
    const size_t boundBytes = got.size() - kGuardBytes;
    for (size_t j = boundBytes; j < got.size(); ++j)
      if (got[j] != kGuard) {
        ADD_FAILURE() << "output " << i << " written past its bound's " << boundBytes
                      << " bytes at byte " << j;
        break;
      }
    const Tensor *w = nullptr;
    if (compare) {
      if (!want.count(n.output(i)->name())) {
        ADD_FAILURE() << "no expected value of output " << i;
        continue;
      }
      w = &want.at(n.output(i)->name()).tensor;
      EXPECT_EQ(shapeToString(shape), shapeToString(w->shape())) << "output " << i;
      if (shape != w->shape())
        continue;
    }
    // The bound viewed as [outer, dim, inner] around the dynamic axis (a static output: one
    // block); the actual tensor is [outer, extent, inner]. `padded` is what the buffer must
    // hold: the actual rows (from the interpreter, or as written when not comparing) at their
    // places in the bound, zero elsewhere.
    const int64_t axis = std::max<int64_t>(b.axis, 0);
    int64_t outer = 1, inner = int64_t(elem);
    for (int64_t d = 0; d < axis; ++d)
      outer *= b.shape[d];
    for (size_t d = axis + 1; d < b.shape.size(); ++d)
      inner *= b.shape[d];
    const int64_t dim = b.shape.empty() ? 1 : b.shape[axis];
    const int64_t extent = b.shape.empty() ? 1 : shape[axis];
    std::vector<uint8_t> padded(boundBytes, 0);
    for (int64_t o = 0; o < outer; ++o)
      for (int64_t r = 0; r < extent; ++r) {
        const size_t at = size_t((o * dim + r) * inner);
        const uint8_t *src = w ? static_cast<const uint8_t *>(w->raw()) + (o * extent + r) * inner
                               : got.data() + at;
        std::memcpy(padded.data() + at, src, size_t(inner));
      }
    for (size_t j = 0; j < boundBytes; ++j)
      if (got[j] != padded[j]) {
        const int64_t e = int64_t(j / elem), r = int64_t(j) / inner % dim;
        ADD_FAILURE() << "output " << i << " element " << e << " of the bound "
                      << shapeToString(b.shape)
                      << (r < extent ? " differs from the interpreter's"
                                     : " lies outside the actual shape but is not zero");
        break;
      }
  }
  return extents;
}

std::vector<int64_t> runKernel(const std::string &text, const std::map<std::string, Tensor> &inputs,
                               bool compare = true) {
  SCOPED_TRACE(text);
  auto g = test::parseTestGraph(text);
  return runKernelOn(g.get(), inputs, compare);
}

/// Values drawn from `pool` (with NaN and signed zeros when the pool has them).
Tensor fromPool(DType dt, std::vector<int64_t> shape, const std::vector<double> &pool,
                unsigned seed) {
  Tensor t(DType::f64, std::move(shape));
  std::mt19937 rng(seed);
  std::uniform_int_distribution<size_t> u(0, pool.size() - 1);
  for (int64_t i = 0; i < t.numel(); ++i)
    t.data<double>()[i] = pool[u(rng)];
  return t.cast(dt);
}

const double kNaN = std::numeric_limits<double>::quiet_NaN();

//===----------------------------------------------------------------------===//
// lowering::stableMergeSort alone
//===----------------------------------------------------------------------===//

// Sorts (key, id) rows of n <= capacity random keys with few distinct values (many ties) by
// key, descending, and compares with std::stable_sort: the keys and the ids (stability).
TEST(DynamicKernel, StableMergeSortMatchesStdStableSort) {
  using loop::Buffer;
  using loop::Expr;
  using loop::Param;
  using loop::Var;
  for (int64_t capacity : {1, 2, 3, 8, 37, 1024, 1500}) {
    Buffer keys = Buffer::make("keys", DType::f64, {Expr(capacity)});
    Buffer ids = Buffer::make("ids", DType::i64, {Expr(capacity)});
    Var n("n");
    Buffer ks = lowering::localBuffer("keys_scratch", DType::f64, capacity);
    Buffer is = lowering::localBuffer("ids_scratch", DType::i64, capacity);
    loop::Stmt sort = lowering::stableMergeSort(
        {{keys, ks}, {ids, is}}, n, capacity,
        [](const std::vector<loop::Expr> &x, const std::vector<loop::Expr> &y) {
          return lowering::PrefixedCond{loop::Stmt(), x[0] > y[0]};
        },
        "sort");
    loop::LoweredFunc f{"sort_f64_desc_" + std::to_string(capacity),
                        {Param::ofBuffer(keys), Param::ofBuffer(ids), Param::ofVar(n)},
                        lowering::allocateAll({ks, is}, sort)};
    codegen::CompiledFunc cf = codegen::compileLoweredFunc(loop::lowerPipeline(f));
    std::mt19937 rng{unsigned(capacity)};
    for (int64_t size : {capacity, capacity / 2, capacity - 1, int64_t(0)}) {
      if (size < 0)
        continue;
      std::vector<double> k(capacity, -7.0);
      std::vector<int64_t> id(capacity, -1);
      for (int64_t i = 0; i < size; ++i) {
        k[i] = double(rng() % 7);
        id[i] = i;
      }
      std::vector<std::pair<double, int64_t>> want;
      for (int64_t i = 0; i < size; ++i)
        want.emplace_back(k[i], id[i]);
      std::stable_sort(want.begin(), want.end(),
                       [](const auto &a, const auto &b) { return a.first > b.first; });
      std::vector<void *> args = {k.data(), id.data(), &size};
      cf(args.data());
      for (int64_t i = 0; i < size; ++i) {
        ASSERT_EQ(k[i], want[i].first) << "capacity " << capacity << " n " << size << " at " << i;
        ASSERT_EQ(id[i], want[i].second) << "capacity " << capacity << " n " << size << " at " << i;
      }
      for (int64_t i = size; i < capacity; ++i)
        ASSERT_EQ(id[i], -1) << "written past n at " << i;
    }
  }
}

//===----------------------------------------------------------------------===//
// NonZero
//===----------------------------------------------------------------------===//

std::vector<int64_t> nonZero(const Tensor &x) {
  std::string text = "graph @g(%x: " + typeOf(x) +
                     ") {\n  %y = NonZero(%x) {name = \"nz\"}\n  return %y\n}\n";
  return runKernel(text, {{"x", x}});
}

TEST(DynamicKernel, NonZeroRandom) {
  const std::vector<double> pool = {0, 0, 1.5, -2, 3};
  for (DType dt : {DType::f16, DType::bf16, DType::f32, DType::f64, DType::i8, DType::i16,
                   DType::i32, DType::i64, DType::u8, DType::u16, DType::u32, DType::u64,
                   DType::boolean})
    for (auto shape : std::vector<std::vector<int64_t>>{{7}, {3, 4}, {2, 3, 4}, {2, 1, 3, 2}}) {
      SCOPED_TRACE(dtypeName(dt));
      nonZero(fromPool(dt, shape, pool, 11));
    }
}

TEST(DynamicKernel, NonZeroEdges) {
  EXPECT_EQ(nonZero(Tensor(DType::f32, {3, 4}))[0], 0); // all zero (Tensor is zeroed)
  EXPECT_EQ(nonZero(fromPool(DType::i32, {3, 4}, {5}, 1))[0], 12); // all non-zero
  EXPECT_EQ(nonZero(Tensor(DType::f32, {0, 3}))[0], 0);             // empty
  EXPECT_EQ(nonZero(fromPool(DType::f32, {}, {2}, 1))[0], 1);       // scalar: [1, count]
  EXPECT_EQ(nonZero(fromPool(DType::f32, {}, {0}, 1))[0], 0);
  EXPECT_EQ(nonZero(fromPool(DType::f32, {1}, {7}, 1))[0], 1);      // one element
  // NaN is non-zero, -0.0 is zero.
  EXPECT_EQ(nonZero(Tensor::fromVector<float>({4}, {float(kNaN), -0.0f, 0.0f, 1.0f}))[0], 2);
  EXPECT_EQ(nonZero(fromPool(DType::f64, {5, 6}, {kNaN, -0.0, 0.0}, 3))[0] >= 0, true);
}

TEST(DynamicKernel, NonZeroRejectsStrings) {
  auto g = test::parseTestGraph("graph @g(%x: str[3]) {\n  %y = NonZero(%x) {name = \"nz\"}\n"
                                "  return %y\n}\n");
  std::string e = errorOf([&] { buildDynamicKernel(dynamicNode(*g), "k"); });
  EXPECT_NE(e.find("nz"), std::string::npos) << e;
  EXPECT_NE(e.find("str"), std::string::npos) << e;
}

//===----------------------------------------------------------------------===//
// Compress
//===----------------------------------------------------------------------===//

/// axis: "" for none.
std::vector<int64_t> compress(const Tensor &x, const Tensor &cond, const std::string &axis,
                              bool compare = true) {
  std::string text = "graph @g(%x: " + typeOf(x) + ", %c: " + typeOf(cond) +
                     ") {\n  %y = Compress(%x, %c) {name = \"cp\"" +
                     (axis.empty() ? "" : ", axis = " + axis) + "}\n  return %y\n}\n";
  return runKernel(text, {{"x", x}, {"c", cond}}, compare);
}

Tensor boolTensor(const std::vector<int> &v) {
  Tensor t(DType::boolean, {int64_t(v.size())});
  for (size_t i = 0; i < v.size(); ++i)
    t.data<bool>()[i] = v[i] != 0;
  return t;
}

TEST(DynamicKernel, CompressAxes) {
  for (DType dt : {DType::f16, DType::bf16, DType::f32, DType::f64, DType::i32, DType::i64,
                   DType::u8, DType::boolean}) {
    SCOPED_TRACE(dtypeName(dt));
    Tensor x = test::randomTensor(dt, {3, 5, 4}, 7, -9, 9);
    EXPECT_EQ(compress(x, boolTensor({1, 0, 1}), "0")[0], 2);
    EXPECT_EQ(compress(x, boolTensor({0, 1, 1, 0, 1}), "1")[0], 3);
    EXPECT_EQ(compress(x, boolTensor({1, 0, 0, 1}), "-1")[0], 2);
    EXPECT_EQ(compress(x, boolTensor({1, 0, 0, 1, 0, 0, 0}), "2")[0], 2); // longer, extra false
    EXPECT_EQ(compress(x, boolTensor({0, 1, 1, 0, 1, 1, 1}), "")[0], 5);  // flattened
  }
}

TEST(DynamicKernel, CompressEdges) {
  Tensor x = test::randomTensor(DType::f32, {4, 3}, 3);
  EXPECT_EQ(compress(x, boolTensor({0, 1}), "0")[0], 1);          // shorter condition
  EXPECT_EQ(compress(x, boolTensor({0, 0, 0, 0}), "0")[0], 0);    // nothing kept
  EXPECT_EQ(compress(x, boolTensor({1, 1, 1}), "1")[0], 3);       // everything kept
  EXPECT_EQ(compress(x, Tensor(DType::boolean, {0}), "1")[0], 0); // empty condition
  EXPECT_EQ(compress(Tensor(DType::f32, {0, 3}), boolTensor({1, 1}), "1")[0], 2); // empty input
  EXPECT_EQ(compress(Tensor(DType::f32, {0, 3}), boolTensor({0}), "")[0], 0);
  EXPECT_EQ(compress(fromPool(DType::i64, {}, {4}, 1), boolTensor({1}), "")[0], 1); // scalar
  // Random long conditions over a bigger input.
  std::mt19937 rng(5);
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<int> c(40);
    for (int &v : c)
      v = int(rng() % 2);
    compress(test::randomTensor(DType::i32, {40, 7}, trial, -100, 100), boolTensor(c), "0");
    compress(test::randomTensor(DType::f64, {6, 40}, trial), boolTensor(c), "1");
  }
  // A condition selecting past the axis is the reference's error; the kernel ignores it and
  // stays inside its buffers.
  EXPECT_EQ(compress(x, boolTensor({1, 0, 0, 0, 1, 1}), "0", false)[0], 1);
}

TEST(DynamicKernel, CompressRejectsNonBoolCondition) {
  auto g = test::parseTestGraph("graph @g(%x: f32[3], %c: i64[3]) {\n"
                                "  %y = Compress(%x, %c) {name = \"cp\"}\n  return %y\n}\n");
  std::string e = errorOf([&] { buildDynamicKernel(dynamicNode(*g), "k"); });
  EXPECT_NE(e.find("cp"), std::string::npos) << e;
  EXPECT_NE(e.find("condition must be bool"), std::string::npos) << e;
}

//===----------------------------------------------------------------------===//
// Unique
//===----------------------------------------------------------------------===//

/// `outs`: the results, "_" for an omitted one ("%y, _, %v").
std::vector<int64_t> unique(const Tensor &x, const std::string &attrs,
                            const std::string &outs = "%y, %i, %v, %c") {
  std::string ret;
  std::stringstream ss(outs);
  for (std::string o; std::getline(ss, o, ',');) {
    o.erase(0, o.find_first_not_of(' '));
    if (o != "_")
      ret += (ret.empty() ? "" : ", ") + o;
  }
  std::string text = "graph @g(%x: " + typeOf(x) + ") {\n  " + outs +
                     " = Unique(%x) {name = \"uq\"" + attrs + "}\n  return " + ret + "\n}\n";
  return runKernel(text, {{"x", x}});
}

/// A [rows, cols] tensor whose rows are drawn from `distinct` random rows (many repeats).
Tensor repeatedRows(DType dt, int64_t rows, int64_t cols, int64_t distinct, unsigned seed) {
  Tensor pool = test::randomTensor(DType::f64, {distinct, cols}, seed, -3, 3);
  Tensor t(DType::f64, {rows, cols});
  std::mt19937 rng(seed);
  for (int64_t r = 0; r < rows; ++r) {
    int64_t k = int64_t(rng() % uint64_t(distinct));
    for (int64_t c = 0; c < cols; ++c)
      t.data<double>()[r * cols + c] = pool.data<double>()[k * cols + c];
  }
  return t.cast(dt);
}

const std::vector<std::string> kSortedAttrs = {"", ", sorted = 1", ", sorted = 0"};

TEST(DynamicKernel, UniqueFlattened) {
  const std::vector<double> pool = {0, 1, -2, 3, 7, 1, -2};
  for (DType dt : {DType::f16, DType::bf16, DType::f32, DType::f64, DType::i8, DType::i32,
                   DType::i64, DType::u8, DType::u64, DType::boolean})
    for (const std::string &sorted : kSortedAttrs) {
      SCOPED_TRACE(std::string(dtypeName(dt)) + sorted);
      unique(fromPool(dt, {23}, pool, 3), sorted);
      unique(fromPool(dt, {3, 4, 2}, pool, 4), sorted);
    }
}

TEST(DynamicKernel, UniqueNaNAndSignedZeros) {
  const std::vector<double> pool = {kNaN, -0.0, 0.0, 1.5, -1.5, kNaN, 2};
  for (DType dt : {DType::f16, DType::bf16, DType::f32, DType::f64})
    for (const std::string &sorted : kSortedAttrs) {
      SCOPED_TRACE(std::string(dtypeName(dt)) + sorted);
      unique(fromPool(dt, {31}, pool, 9), sorted);
      unique(repeatedRows(dt, 9, 2, 3, 2), sorted + ", axis = 0"); // no NaN rows
      Tensor rows = fromPool(dt, {8, 2}, {kNaN, 0.0, -0.0, 1.0}, 5);
      unique(rows, sorted + ", axis = 0");
      unique(rows, sorted + ", axis = 1");
    }
}

TEST(DynamicKernel, UniqueAxes) {
  for (DType dt : {DType::f32, DType::i64, DType::u8})
    for (const std::string &sorted : kSortedAttrs) {
      SCOPED_TRACE(std::string(dtypeName(dt)) + sorted);
      Tensor x = repeatedRows(dt, 12, 3, 4, 7);
      unique(x, sorted + ", axis = 0");
      unique(x, sorted + ", axis = -2");
      Tensor t = fromPool(dt, {3, 7}, {0, 1, 2}, 8); // columns repeat too
      unique(t, sorted + ", axis = 1");
      unique(t, sorted + ", axis = -1");
      Tensor x3 = fromPool(dt, {2, 9, 2}, {0, 1}, 10);
      unique(x3, sorted + ", axis = 1");
      unique(x3, sorted + ", axis = 0");
      unique(x3, sorted + ", axis = 2");
    }
}

TEST(DynamicKernel, UniqueEdges) {
  for (const std::string &sorted : kSortedAttrs) {
    SCOPED_TRACE(sorted);
    EXPECT_EQ(unique(fromPool(DType::f32, {10}, {4}, 1), sorted)[0], 1); // all equal
    EXPECT_EQ(unique(fromPool(DType::i32, {1}, {4}, 1), sorted)[0], 1);  // one element
    EXPECT_EQ(unique(fromPool(DType::i32, {}, {4}, 1), sorted)[0], 1);   // scalar, flattened
    EXPECT_EQ(unique(Tensor(DType::f32, {0}), sorted)[0], 0);            // empty
    EXPECT_EQ(unique(Tensor(DType::f32, {0, 3}), sorted + ", axis = 0")[0], 0);
    EXPECT_EQ(unique(Tensor(DType::f32, {3, 0}), sorted + ", axis = 0")[0], 1); // empty slices
    EXPECT_EQ(unique(fromPool(DType::f32, {6}, {kNaN}, 1), sorted)[0], 1); // all NaN
    // Descending and already sorted inputs, distinct values.
    Tensor down(DType::i64, {9}), up(DType::i64, {9});
    for (int64_t i = 0; i < 9; ++i) {
      down.data<int64_t>()[i] = 9 - i;
      up.data<int64_t>()[i] = i;
    }
    EXPECT_EQ(unique(down, sorted)[0], 9);
    EXPECT_EQ(unique(up, sorted)[0], 9);
  }
}

TEST(DynamicKernel, UniqueOmittedOutputs) {
  Tensor x = fromPool(DType::f32, {17}, {1, 2, 3, kNaN}, 2);
  unique(x, "", "%y");
  unique(x, ", sorted = 0", "%y, _, %v");
  unique(x, ", sorted = 0", "%y, %i, _, %c");
  unique(repeatedRows(DType::i32, 7, 2, 3, 1), ", axis = 0, sorted = 0", "%y, _, _, %c");
}

TEST(DynamicKernel, UniqueLarge) {
  // Many merge passes (n not a power of two) and large groups.
  unique(test::randomTensor(DType::i32, {3001}, 4, -50, 50), "");
  unique(test::randomTensor(DType::i64, {2048}, 5, -1000000, 1000000), ", sorted = 0");
  unique(fromPool(DType::f32, {1000}, {kNaN, 1, 2, -0.0, 0.0, 3.25}, 6), ", sorted = 0");
  unique(repeatedRows(DType::f64, 700, 3, 40, 3), ", axis = 0");
}

//===----------------------------------------------------------------------===//
// NonMaxSuppression
//===----------------------------------------------------------------------===//

/// An optional scalar input of NonMaxSuppression: absent, a constant, or a run-time input.
struct Opt {
  enum Kind { Absent, Const, Runtime } kind = Absent;
  double value = 0;
};
Opt absent() { return {}; }
Opt constant(double v) { return {Opt::Const, v}; }
Opt runtime(double v) { return {Opt::Runtime, v}; }

std::vector<int64_t> nms(const Tensor &boxes, const Tensor &scores, int center, Opt maxOut,
                         Opt iou, Opt scoreTh, bool scalarShapes = false) {
  std::map<std::string, Tensor> in = {{"boxes", boxes}, {"scores", scores}};
  std::string params = "%boxes: " + typeOf(boxes) + ", %scores: " + typeOf(scores), consts;
  std::vector<std::string> uses = {"%boxes", "%scores"};
  const std::string shape = scalarShapes ? "[]" : "[1]";
  auto add = [&](const char *name, Opt o, DType dt) {
    const std::string type = std::string(dtypeName(dt)) + shape;
    if (o.kind == Opt::Absent) {
      uses.push_back("_");
      return;
    }
    uses.push_back(std::string("%") + name);
    Tensor t(DType::f64, scalarShapes ? std::vector<int64_t>{} : std::vector<int64_t>{1});
    t.data<double>()[0] = o.value;
    std::ostringstream lit;
    lit.precision(17);
    lit << o.value;
    std::string v = dt == DType::i64 ? std::to_string(int64_t(o.value)) : lit.str();
    if (dt != DType::i64 && v.find_first_of(".en") == std::string::npos)
      v += ".0";
    if (o.kind == Opt::Const)
      consts += "  %" + std::string(name) + ": " + type + " = dense<" +
                (scalarShapes ? v : "[" + v + "]") + ">\n";
    else {
      params += ", %" + std::string(name) + ": " + type;
      in[name] = t.cast(dt);
    }
  };
  add("max", maxOut, DType::i64);
  add("iou", iou, DType::f32);
  add("sth", scoreTh, DType::f32);
  while (uses.back() == "_")
    uses.pop_back();
  std::string args;
  for (size_t i = 0; i < uses.size(); ++i)
    args += (i ? ", " : "") + uses[i];
  std::string text = "graph @g(" + params + ") {\n" + consts + "  %y = NonMaxSuppression(" + args +
                     ") {name = \"nms\", center_point_box = " + std::to_string(center) +
                     "}\n  return %y\n}\n";
  return runKernel(text, in);
}

/// [B, N, 4] boxes in many overlapping positions: corners (y1, x1, y2, x2), some flipped, or
/// centers (x, y, w, h).
Tensor randomBoxes(DType dt, int64_t B, int64_t N, int center, unsigned seed) {
  std::mt19937 rng(seed);
  std::uniform_real_distribution<double> pos(0, 8), size(0.5, 4);
  Tensor t(DType::f64, {B, N, 4});
  double *p = t.data<double>();
  for (int64_t i = 0; i < B * N; ++i) {
    double a = pos(rng), b = pos(rng), h = size(rng), w = size(rng);
    if (center)
      p[i * 4 + 0] = a, p[i * 4 + 1] = b, p[i * 4 + 2] = w, p[i * 4 + 3] = h;
    else if (i % 3 == 1) // flipped corners
      p[i * 4 + 0] = a + h, p[i * 4 + 1] = b + w, p[i * 4 + 2] = a, p[i * 4 + 3] = b;
    else
      p[i * 4 + 0] = a, p[i * 4 + 1] = b, p[i * 4 + 2] = a + h, p[i * 4 + 3] = b + w;
  }
  return t.cast(dt);
}

const std::vector<double> kScorePool = {0.1, 0.3, 0.3, 0.5, 0.7, 0.9, 0.9, 0.95, 0.05};

TEST(DynamicKernel, NonMaxSuppressionConstantInputs) {
  for (int center : {0, 1})
    for (DType dt : {DType::f32, DType::f64}) {
      SCOPED_TRACE(std::to_string(center) + std::string(dtypeName(dt)));
      Tensor boxes = randomBoxes(dt, 2, 14, center, 3 + center);
      Tensor scores = fromPool(dt, {2, 3, 14}, kScorePool, 4);
      nms(boxes, scores, center, constant(3), constant(0.5), constant(0.2));
      nms(boxes, scores, center, constant(10), constant(0.3), absent());
      nms(boxes, scores, center, constant(1), constant(0.0), constant(0.0));
      nms(boxes, scores, center, constant(14), constant(1.0), absent());
      nms(boxes, scores, center, constant(5), absent(), absent());
    }
}

TEST(DynamicKernel, NonMaxSuppressionRuntimeInputs) {
  for (int center : {0, 1}) {
    SCOPED_TRACE(center);
    Tensor boxes = randomBoxes(DType::f32, 2, 11, center, 7);
    Tensor scores = fromPool(DType::f32, {2, 2, 11}, kScorePool, 8);
    nms(boxes, scores, center, runtime(3), runtime(0.5), runtime(0.2));
    nms(boxes, scores, center, runtime(11), constant(0.4), runtime(0.5));
    nms(boxes, scores, center, constant(4), runtime(0.6), absent());
    nms(boxes, scores, center, runtime(2), runtime(0.5), runtime(0.3), true); // scalar inputs
  }
}

TEST(DynamicKernel, NonMaxSuppressionLimits) {
  Tensor boxes = randomBoxes(DType::f32, 1, 9, 0, 1);
  Tensor scores = fromPool(DType::f32, {1, 2, 9}, kScorePool, 2);
  const double huge = 9e18;
  EXPECT_EQ(nms(boxes, scores, 0, absent(), constant(0.5), absent())[0], 0);
  EXPECT_EQ(nms(boxes, scores, 0, constant(0), constant(0.5), absent())[0], 0);
  EXPECT_EQ(nms(boxes, scores, 0, constant(-4), constant(0.5), absent())[0], 0);
  EXPECT_EQ(nms(boxes, scores, 0, runtime(-4), constant(0.5), absent())[0], 0);
  nms(boxes, scores, 0, constant(huge), constant(0.5), absent());
  nms(boxes, scores, 0, runtime(huge), runtime(0.5), absent());
  // iou 1 suppresses nothing: every box of every class comes out (the bound exactly).
  EXPECT_EQ(nms(boxes, scores, 0, constant(huge), constant(1.0), absent())[0], 18);
}

TEST(DynamicKernel, NonMaxSuppressionEdges) {
  // Ties: all scores equal (the reference's stable order: box index).
  Tensor boxes = randomBoxes(DType::f32, 1, 10, 1, 5);
  nms(boxes, fromPool(DType::f32, {1, 1, 10}, {0.5}, 1), 1, constant(10), constant(0.3), absent());
  // NaN scores are never candidates; NaN boxes never suppress.
  Tensor nanScores = fromPool(DType::f32, {1, 2, 10}, {kNaN, 0.5, 0.7, 0.7}, 3);
  nms(boxes, nanScores, 1, constant(10), constant(0.3), constant(0.1));
  Tensor nanBoxes = boxes;
  nanBoxes.data<float>()[5] = float(kNaN);
  nms(nanBoxes, nanScores, 1, constant(10), constant(0.3), absent());
  // Identical and degenerate (zero-area) boxes.
  Tensor same = fromPool(DType::f32, {1, 6, 4}, {1.0}, 1);
  nms(same, fromPool(DType::f32, {1, 1, 6}, kScorePool, 4), 0, constant(6), constant(0.5),
      absent());
  Tensor mixed = randomBoxes(DType::f32, 1, 6, 0, 9);
  for (int k = 0; k < 4; ++k)
    mixed.data<float>()[8 + k] = mixed.data<float>()[12 + k] = 2.0f;
  nms(mixed, fromPool(DType::f32, {1, 1, 6}, kScorePool, 4), 0, constant(6), constant(0.5),
      absent());
  // No boxes; one box; no classes.
  EXPECT_EQ(nms(Tensor(DType::f32, {2, 0, 4}), Tensor(DType::f32, {2, 3, 0}), 0, constant(5),
                constant(0.5), absent())[0],
            0);
  EXPECT_EQ(nms(randomBoxes(DType::f32, 1, 1, 0, 2), fromPool(DType::f32, {1, 1, 1}, {0.5}, 1),
                0, constant(5), constant(0.5), absent())[0],
            1);
  EXPECT_EQ(nms(randomBoxes(DType::f32, 2, 3, 0, 2), Tensor(DType::f32, {2, 0, 3}), 0,
                runtime(5), constant(0.5), absent())[0],
            0);
  // Many boxes: a long sort and many suppressions.
  nms(randomBoxes(DType::f32, 1, 300, 0, 11),
      test::randomTensor(DType::f32, {1, 2, 300}, 12, 0, 1), 0, constant(40), constant(0.4),
      constant(0.3));
}

TEST(DynamicKernel, NonMaxSuppressionRejectsBadShapes) {
  auto g = test::parseTestGraph(
      "graph @g(%b: f32[1,3,4], %s: f32[1,2,4]) {\n"
      "  %y = NonMaxSuppression(%b, %s) {name = \"nms\"}\n  return %y\n}\n");
  std::string e = errorOf([&] { buildDynamicKernel(dynamicNode(*g), "k"); });
  EXPECT_NE(e.find("nms"), std::string::npos) << e;
  EXPECT_NE(e.find("scores must have shape"), std::string::npos) << e;
  auto h = test::parseTestGraph(
      "graph @g(%b: f32[1,3,4], %s: f32[1,2,3], %m: i64[2]) {\n"
      "  %y = NonMaxSuppression(%b, %s, %m) {name = \"nms\"}\n  return %y\n}\n");
  e = errorOf([&] { buildDynamicKernel(dynamicNode(*h), "k"); });
  EXPECT_NE(e.find("max_output_boxes_per_class must hold one value"), std::string::npos) << e;
}

//===----------------------------------------------------------------------===//
// The ONNX conformance node tests of the four ops
//===----------------------------------------------------------------------===//

// Every node test of NonZero, Compress, Unique and NonMaxSuppression in Debian's
// libonnx-testdata: the kernel's outputs must equal the expected outputs exactly (the optional
// inputs of these tests are run-time inputs).
TEST(DynamicKernel, ConformanceNodeTests) {
  namespace fs = std::filesystem;
  const fs::path root = "/usr/share/libonnx-testdata/data/node";
  if (!fs::exists(root))
    GTEST_SKIP() << root << " is absent (Debian package libonnx-testdata)";
  int ran = 0;
  for (const auto &e : fs::directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (!(name.starts_with("test_nonzero") || name.starts_with("test_compress") ||
          name.starts_with("test_unique") || name.starts_with("test_nonmaxsuppression")))
      continue;
    SCOPED_TRACE(name);
    Model m = loadOnnx((e.path() / "model.onnx").string());
    Graph &g = *m.graph;
    const fs::path data = e.path() / "test_data_set_0";
    std::map<std::string, Tensor> inputs;
    std::vector<const Value *> req = requiredInputs(g);
    for (size_t i = 0; i < req.size(); ++i)
      inputs[req[i]->name()] =
          readTensorProtoFile((data / ("input_" + std::to_string(i) + ".pb")).string());
    // The test models declare symbolic shapes: make the inputs' static, as the compiler does
    // for a given input shape.
    for (Value *v : g.inputs)
      if (inputs.count(v->name()))
        v->type = Type::tensor(inputs[v->name()].dtype(), Shape::of(inputs[v->name()].shape()));
    inferShapes(g);
    std::vector<Tensor> expected;
    for (size_t k = 0; fs::exists(data / ("output_" + std::to_string(k) + ".pb")); ++k)
      expected.push_back(
          readTensorProtoFile((data / ("output_" + std::to_string(k) + ".pb")).string()));
    runKernelOn(&g, inputs, true, &expected);
    ++ran;
  }
  EXPECT_EQ(ran, 19);
}

} // namespace
