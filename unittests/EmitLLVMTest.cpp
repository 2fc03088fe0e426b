//===- EmitLLVMTest.cpp - loop IR -> LLVM IR, JIT-compiled and checked ------===//
//
// Hand-built flattened loop IR functions (one index per Load/Store, as after StorageFlatten),
// compiled with compileLoweredFunc and compared with C++ references on fresh random inputs, at
// sizes that leave vector tails.
//
//===----------------------------------------------------------------------===//
#include "tessel/CodeGen/AOT.h"
#include "tessel/CodeGen/EmitLLVM.h"
#include "tessel/CodeGen/Optimize.h"
#include "tessel/Loop/IR.h"
#include "tessel/Support/Error.h"
#include "tessel/runtime/ThreadPool.h"
#include "TestUtils.h"

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <random>

using namespace tessel;
using namespace tessel::loop;
using tessel::codegen::CompiledFunc;
using tessel::codegen::compileLoweredFunc;

namespace {

const int64_t kSizes[] = {1, 7, 16, 1000};

/// Inputs in [-4, 4).
std::vector<float> randomFloats(int64_t n, unsigned seed) {
  return test::randomFloats(size_t(n), seed, -4.0f, 4.0f);
}


/// A 1-D f32 buffer of extent n.
Buffer vec(const std::string &name, const Var &n, DType dt = DType::f32) {
  return Buffer::make(name, dt, {n});
}

Stmt store(const Buffer &b, Expr value, Expr index, Expr pred = Expr()) {
  return StoreNode::make(b, std::move(value), {std::move(index)}, std::move(pred));
}
Expr load(const Buffer &b, Expr index, Expr pred = Expr()) {
  return LoadNode::make(b, {std::move(index)}, std::move(pred));
}
Stmt forLoop(const Var &v, Expr min, Expr extent, Stmt body, ForKind kind = ForKind::Serial) {
  return ForNode::make(v, std::move(min), std::move(extent), kind, std::move(body));
}

/// Calls f(A, B, ..., n) through the void** ABI.
void call(const CompiledFunc &f, std::vector<void *> buffers, int64_t n) {
  std::vector<void *> args = buffers;
  args.push_back(&n);
  f(args.data());
}

} // namespace

// for i in 0..n: C[i] = A[i] * 2 + B[i]
TEST(EmitLLVM, ScalarLoop) {
  Var n("n"), i("i");
  Buffer A = vec("A", n), B = vec("B", n), C = vec("C", n);
  LoweredFunc func{"f32_axpb_scalar",
                   {Param::ofBuffer(A), Param::ofBuffer(B), Param::ofBuffer(C), Param::ofVar(n)},
                   forLoop(i, 0, n, store(C, load(A, i) * 2.0f + load(B, i), i))};
  CompiledFunc f = compileLoweredFunc(func);
  for (int64_t size : kSizes) {
    auto a = randomFloats(size, 1), b = randomFloats(size, 2);
    std::vector<float> c(size + 1, -99.0f);
    call(f, {a.data(), b.data(), c.data()}, size);
    for (int64_t k = 0; k < size; ++k)
      ASSERT_EQ(c[k], a[k] * 2.0f + b[k]) << "n=" << size << " k=" << k;
    EXPECT_EQ(c[size], -99.0f);
  }
  // The typed form takes the params directly.
  auto *typed = reinterpret_cast<void (*)(float *, float *, float *, int64_t)>(f.typedAddress());
  auto a = randomFloats(5, 3), b = randomFloats(5, 4);
  std::vector<float> c(5);
  typed(a.data(), b.data(), c.data(), 5);
  EXPECT_EQ(c[4], a[4] * 2.0f + b[4]);
}

// Vector main loop on ramps + scalar tail:
//   for io in 0..n/8: C[ramp(io*8, 1, 8)] = A[ramp] + B[ramp]
//   for t in (n/8)*8..n: C[t] = A[t] + B[t]
TEST(EmitLLVM, VectorizedRampsWithScalarTail) {
  Var n("n"), io("io"), t("t");
  Buffer A = vec("A", n), B = vec("B", n), C = vec("C", n);
  Expr r = ramp(io * 8, 1, 8);
  Expr mainEnd = n / 8;
  Stmt body = SeqNode::make({
      forLoop(io, 0, mainEnd, store(C, load(A, r) + load(B, r), r)),
      forLoop(t, mainEnd * 8, n - mainEnd * 8, store(C, load(A, t) + load(B, t), t)),
  });
  LoweredFunc func{"f32_add_x8", {Param::ofBuffer(A), Param::ofBuffer(B), Param::ofBuffer(C),
                                  Param::ofVar(n)},
                   body};
  llvm::LLVMContext ctx;
  std::string ir = codegen::printModule(
      *codegen::emitLLVM(func, ctx, codegen::Target::host()));
  EXPECT_NE(ir.find("load <8 x float>"), std::string::npos) << ir;
  EXPECT_NE(ir.find("store <8 x float>"), std::string::npos) << ir;
  EXPECT_NE(ir.find("llvm.loop.vectorize.enable"), std::string::npos) << ir;

  CompiledFunc f = compileLoweredFunc(func);
  for (int64_t size : kSizes) {
    auto a = randomFloats(size, 5), b = randomFloats(size, 6);
    std::vector<float> c(size + 1, -99.0f);
    call(f, {a.data(), b.data(), c.data()}, size);
    for (int64_t k = 0; k < size; ++k)
      ASSERT_EQ(c[k], a[k] + b[k]) << "n=" << size << " k=" << k;
    EXPECT_EQ(c[size], -99.0f);
  }
}

// A masked tail: for io in 0..(n+7)/8 with predicate ramp < n on the load and store.
TEST(EmitLLVM, MaskedTail) {
  Var n("n"), io("io");
  Buffer A = vec("A", n), C = vec("C", n);
  Expr r = ramp(io * 8, 1, 8);
  Expr pred = r < broadcast(n, 8);
  LoweredFunc func{"f32_relu_x8_masked", {Param::ofBuffer(A), Param::ofBuffer(C), Param::ofVar(n)},
                   forLoop(io, 0, (n + 7) / 8,
                           store(C, max(load(A, r, pred), broadcast(Expr(0.0f), 8)), r, pred))};
  CompiledFunc f = compileLoweredFunc(func);
  for (int64_t size : kSizes) {
    auto a = randomFloats(size, 7);
    std::vector<float> c(size + 8, -99.0f);
    call(f, {a.data(), c.data()}, size);
    for (int64_t k = 0; k < size; ++k)
      ASSERT_EQ(c[k], std::max(a[k], 0.0f)) << "n=" << size << " k=" << k;
    for (int64_t k = size; k < size + 8; ++k)
      ASSERT_EQ(c[k], -99.0f) << "masked lane written: n=" << size << " k=" << k;
  }
}

// Strided vector loads become gathers: C[ramp(i*4,1,4)] = A[ramp(i*4*2, 2, 4)] (every other).
TEST(EmitLLVM, StridedLoadIsGather) {
  Var n("n"), i("i");
  Buffer A = vec("A", n), C = vec("C", n);
  LoweredFunc func{"f32_every_other_x4", {Param::ofBuffer(A), Param::ofBuffer(C), Param::ofVar(n)},
                   forLoop(i, 0, n / 8,
                           store(C, load(A, ramp(i * 8, 2, 4)), ramp(i * 4, 1, 4)))};
  CompiledFunc f = compileLoweredFunc(func);
  for (int64_t size : {8, 16, 1000}) {
    auto a = randomFloats(size, 8);
    std::vector<float> c(size, -99.0f);
    call(f, {a.data(), c.data()}, size);
    for (int64_t k = 0; k < (size / 8) * 4; ++k)
      ASSERT_EQ(c[k], a[2 * k]) << "n=" << size << " k=" << k;
  }
}

// parallel for i in 0..n: C[i] = A[i] * A[i] + s, with s a LetStmt value captured by the body.
TEST(EmitLLVM, ParallelLoop) {
  ASSERT_GE(tessel_get_num_threads(), 1); // the runtime is loaded in this process
  Var n("n"), i("i"), s("s", Type::f32());
  Buffer A = vec("A", n), C = vec("C", n);
  Expr a = load(A, i);
  LoweredFunc func{"f32_square_plus_parallel",
                   {Param::ofBuffer(A), Param::ofBuffer(C), Param::ofVar(n)},
                   LetStmtNode::make(s, Expr(0.5f),
                                     forLoop(i, 0, n, store(C, a * a + s, i), ForKind::Parallel))};
  llvm::LLVMContext ctx;
  std::string ir = codegen::printModule(*codegen::emitLLVM(func, ctx, codegen::Target::host()));
  EXPECT_NE(ir.find("call i32 @tessel_parallel_for"), std::string::npos) << ir;
  EXPECT_NE(ir.find("define internal void @f32_square_plus_parallel_parallel_0"),
            std::string::npos)
      << ir;
  CompiledFunc f = compileLoweredFunc(func);
  for (int64_t size : {1, 7, 16, 1000, 100000}) {
    auto av = randomFloats(size, 9);
    std::vector<float> c(size, -99.0f);
    call(f, {av.data(), c.data()}, size);
    for (int64_t k = 0; k < size; ++k)
      ASSERT_EQ(c[k], av[k] * av[k] + 0.5f) << "n=" << size << " k=" << k;
  }
}

// Sum with an 8-lane accumulator then VectorReduce:
//   allocate acc: f32[8] { acc[0:8] = 0; for io: acc[r] += A[r]; out[0] = reduce_add(acc[0:8]) }
// plus a max over the same data with VectorReduce(max) on the loaded vector.
TEST(EmitLLVM, VectorReduceSumAndMax) {
  Var n("n"), io("io");
  Buffer A = vec("A", n);
  Buffer out = Buffer::make("out", DType::f32, {Expr(int64_t(2))});
  Buffer acc = Buffer::make("acc", DType::f32, {Expr(int64_t(8))}, "local");
  Expr r = ramp(io * 8, 1, 8);
  Expr lanes = ramp(Expr(int64_t(0)), 1, 8);
  Stmt body = AllocateNode::make(
      acc, SeqNode::make({
               store(acc, broadcast(Expr(0.0f), 8), lanes),
               store(out, Expr(-1e30f), Expr(int64_t(1))),
               forLoop(io, 0, n / 8,
                       SeqNode::make({
                           store(acc, load(acc, lanes) + load(A, r), lanes),
                           store(out,
                                 max(load(out, Expr(int64_t(1))),
                                     vectorReduce(ReduceOp::Max, load(A, r))),
                                 Expr(int64_t(1))),
                       })),
               store(out, vectorReduce(ReduceOp::Add, load(acc, lanes)), Expr(int64_t(0))),
           }));
  LoweredFunc func{"f32_sum_max_x8", {Param::ofBuffer(A), Param::ofBuffer(out), Param::ofVar(n)},
                   body};
  CompiledFunc f = compileLoweredFunc(func);
  for (int64_t size : {8, 16, 1000}) {
    auto a = randomFloats(size, 10);
    float res[2] = {0, 0};
    call(f, {a.data(), res}, size);
    double sum = 0;
    float mx = -1e30f;
    for (int64_t k = 0; k < (size / 8) * 8; ++k) {
      sum += a[k];
      mx = std::max(mx, a[k]);
    }
    EXPECT_NEAR(res[0], sum, 1e-4 * size) << "n=" << size;
    EXPECT_EQ(res[1], mx) << "n=" << size;
  }
}

// Integer VectorReduce (exact) on i32 data: out[0] = sum over io of reduce_add(X[ramp]).
TEST(EmitLLVM, IntegerVectorReduce) {
  Var n("n"), io("io");
  Buffer X = vec("X", n, DType::i32);
  Buffer out = Buffer::make("out", DType::i32, {Expr(int64_t(1))});
  Expr zero = Expr(int64_t(0));
  Stmt body = SeqNode::make({
      store(out, cast(Type::i32(), Expr(int64_t(0))), zero),
      forLoop(io, 0, n / 4,
              store(out, load(out, zero) + vectorReduce(ReduceOp::Add, load(X, ramp(io * 4, 1, 4))),
                    zero)),
  });
  LoweredFunc func{"i32_sum_x4", {Param::ofBuffer(X), Param::ofBuffer(out), Param::ofVar(n)}, body};
  CompiledFunc f = compileLoweredFunc(func);
  std::mt19937 rng(11);
  std::vector<int32_t> x(1000);
  for (auto &v : x)
    v = int32_t(rng() % 2001) - 1000;
  int32_t res = 0;
  call(f, {x.data(), &res}, 1000);
  int32_t want = 0;
  for (int32_t v : x)
    want += v;
  EXPECT_EQ(res, want);
}

// Allocate: a small constant temporary (stack) and a symbolic one (heap):
//   allocate T: f32[n] { for i: T[i] = A[i] * 3; for i: C[i] = T[i] + 1 }
//   allocate S: f32[4] { for j in 0..4: S[j] = j; for i: C[i] = C[i] + S[i % 4] }
TEST(EmitLLVM, AllocateStackAndHeap) {
  Var n("n"), i("i"), j("j"), k("k");
  Buffer A = vec("A", n), C = vec("C", n);
  Buffer T = Buffer::make("T", DType::f32, {n}, "local");
  Buffer S = Buffer::make("S", DType::f32, {Expr(int64_t(4))}, "local");
  Stmt body = SeqNode::make({
      AllocateNode::make(T, SeqNode::make({
                                forLoop(i, 0, n, store(T, load(A, i) * 3.0f, i)),
                                forLoop(k, 0, n, store(C, load(T, k) + 1.0f, k)),
                            })),
      AllocateNode::make(S, SeqNode::make({
                                forLoop(j, 0, 4, store(S, cast(Type::f32(), j), j)),
                                forLoop(i, 0, n, store(C, load(C, i) + load(S, i % 4), i)),
                            })),
  });
  LoweredFunc func{"f32_temp_alloc", {Param::ofBuffer(A), Param::ofBuffer(C), Param::ofVar(n)},
                   body};
  llvm::LLVMContext ctx;
  std::string ir = codegen::printModule(*codegen::emitLLVM(func, ctx, codegen::Target::host()));
  EXPECT_NE(ir.find("@aligned_alloc"), std::string::npos) << ir;
  EXPECT_NE(ir.find("alloca float, i64 4, align 64"), std::string::npos) << ir;
  CompiledFunc f = compileLoweredFunc(func);
  for (int64_t size : kSizes) {
    auto a = randomFloats(size, 12);
    std::vector<float> c(size);
    call(f, {a.data(), c.data()}, size);
    for (int64_t q = 0; q < size; ++q)
      ASSERT_EQ(c[q], (a[q] * 3.0f + 1.0f) + float(q % 4)) << "n=" << size << " q=" << q;
  }
}

// The entry-block slots of one function are all live at once: 24 nested Allocates of 32 KiB
// (each small enough for the stack alone) keep 512 KiB (EmitOptions::maxFunctionStackBytes)
// on the stack and the other 8 on the heap; the result is the same.
//   allocate T0 { allocate T1 { ... T_k[j] = A[j] + k ... C[i] = sum_k T_k[i % 8192] } }
TEST(EmitLLVM, AllocatesPastTheFunctionStackBudgetGoToTheHeap) {
  Var n("n"), i("i");
  Buffer A = vec("A", n), C = vec("C", n);
  const int kBuffers = 24;
  const int64_t len = 8192; // 32 KiB of f32
  std::vector<Buffer> bufs;
  for (int k = 0; k < kBuffers; ++k)
    bufs.push_back(Buffer::make("T" + std::to_string(k), DType::f32, {Expr(len)}, "local"));
  Expr sum = Expr(0.0f);
  for (const Buffer &b : bufs)
    sum = sum + load(b, i % len);
  std::vector<Stmt> fills;
  for (int k = 0; k < kBuffers; ++k) {
    Var j("j" + std::to_string(k));
    fills.push_back(forLoop(j, 0, len, store(bufs[k], load(A, j % n) + float(k), j)));
  }
  fills.push_back(forLoop(i, 0, n, store(C, sum, i)));
  Stmt body = SeqNode::make(fills);
  for (int k = kBuffers - 1; k >= 0; --k)
    body = AllocateNode::make(bufs[k], body);
  LoweredFunc func{"f32_many_allocs", {Param::ofBuffer(A), Param::ofBuffer(C), Param::ofVar(n)},
                   body};
  llvm::LLVMContext ctx;
  std::string ir = codegen::printModule(*codegen::emitLLVM(func, ctx, codegen::Target::host()));
  size_t allocas = 0, heap = 0;
  for (size_t p = 0; (p = ir.find("alloca float, i64 8192", p)) != std::string::npos; ++p)
    ++allocas;
  for (size_t p = 0; (p = ir.find("call ptr @aligned_alloc", p)) != std::string::npos; ++p)
    ++heap;
  EXPECT_EQ(allocas, 16u) << ir;
  EXPECT_EQ(heap, 8u) << ir;
  CompiledFunc f = compileLoweredFunc(func);
  const int64_t size = 100;
  auto a = randomFloats(size, 5);
  std::vector<float> c(size);
  call(f, {a.data(), c.data()}, size);
  for (int64_t q = 0; q < size; ++q) {
    float want = 0;
    for (int k = 0; k < kBuffers; ++k)
      want = want + (a[q] + float(k));
    ASSERT_EQ(c[q], want) << q;
  }
}

// Select and intrinsics, scalar and 8-lane vector:
//   C[i] = select(A[i] > 0, exp(A[i]), tanh(A[i])) + erf(A[i]) + sqrt(fabs(A[i])) + sigmoid(A[i])
TEST(EmitLLVM, SelectAndIntrinsics) {
  auto kernel = [](const Expr &a) {
    return select(a > 0.0f, exp(a), tanh(a)) + erf(a) + sqrt(fabs(a)) + sigmoid(a) +
           pow(fabs(a), a * 0.5f) + floor(a) * log(fabs(a) + 1.0f);
  };
  auto reference = [](float a) {
    return (a > 0 ? std::exp(a) : std::tanh(a)) + std::erf(a) + std::sqrt(std::fabs(a)) +
           1.0f / (1.0f + std::exp(-a)) + std::pow(std::fabs(a), a * 0.5f) +
           std::floor(a) * std::log(std::fabs(a) + 1.0f);
  };
  Var n("n"), i("i"), io("io");
  Buffer A = vec("A", n), C = vec("C", n), D = vec("D", n);
  Expr r = ramp(io * 8, 1, 8);
  LoweredFunc func{"f32_math_mix",
                   {Param::ofBuffer(A), Param::ofBuffer(C), Param::ofBuffer(D), Param::ofVar(n)},
                   SeqNode::make({
                       forLoop(i, 0, n, store(C, kernel(load(A, i)), i)),
                       forLoop(io, 0, n / 8, store(D, kernel(load(A, r)), r)),
                   })};
  CompiledFunc f = compileLoweredFunc(func);
  for (int64_t size : {8, 16, 1000}) {
    auto a = randomFloats(size, 13);
    std::vector<float> c(size), d(size);
    call(f, {a.data(), c.data(), d.data()}, size);
    for (int64_t q = 0; q < size; ++q) {
      float want = reference(a[q]);
      ASSERT_NEAR(c[q], want, 1e-5f * std::max(1.0f, std::fabs(want))) << "scalar q=" << q;
      if (q < (size / 8) * 8) {
        ASSERT_NEAR(d[q], want, 1e-5f * std::max(1.0f, std::fabs(want))) << "vector q=" << q;
      }
    }
  }
}

// Integer floor division and modulo (Python semantics), casts between widths, float<->int, bool.
TEST(EmitLLVM, FloorDivModAndCasts) {
  Var n("n"), i("i");
  Buffer X = vec("X", n, DType::i32), Q = vec("Q", n, DType::i32), R = vec("R", n, DType::i32);
  Buffer F = vec("F", n, DType::f32), Bo = vec("Bo", n, DType::boolean);
  Expr x = load(X, i);
  Expr d = cast(Type::i32(), Expr(int64_t(-3))); // negative divisor
  Expr seven = cast(Type::i32(), Expr(int64_t(7)));
  Stmt body = forLoop(i, 0, n, SeqNode::make({
      store(Q, x / seven + x / d, i),
      store(R, x % seven + x % d, i),
      store(F, cast(Type::f32(), cast(Type::i64(), x)) * 0.5f + cast(Type::f32(), x > 0), i),
      store(Bo, cast(Type::boolean(), x % seven), i),
  }));
  LoweredFunc func{"i32_floordiv_mod",
                   {Param::ofBuffer(X), Param::ofBuffer(Q), Param::ofBuffer(R), Param::ofBuffer(F),
                    Param::ofBuffer(Bo), Param::ofVar(n)},
                   body};
  CompiledFunc f = compileLoweredFunc(func);
  auto floorDiv = [](int64_t a, int64_t b) {
    int64_t q = a / b;
    return (a % b != 0 && ((a < 0) != (b < 0))) ? q - 1 : q;
  };
  auto floorMod = [&](int64_t a, int64_t b) { return a - floorDiv(a, b) * b; };
  std::mt19937 rng(14);
  const int64_t size = 1000;
  std::vector<int32_t> xs(size), q(size), r(size);
  std::vector<float> fl(size);
  std::vector<uint8_t> bo(size, 7);
  for (auto &v : xs)
    v = int32_t(rng() % 201) - 100;
  call(f, {xs.data(), q.data(), r.data(), fl.data(), bo.data()}, size);
  for (int64_t k = 0; k < size; ++k) {
    int64_t v = xs[k];
    ASSERT_EQ(q[k], floorDiv(v, 7) + floorDiv(v, -3)) << "x=" << v;
    ASSERT_EQ(r[k], floorMod(v, 7) + floorMod(v, -3)) << "x=" << v;
    ASSERT_EQ(fl[k], float(v) * 0.5f + (v > 0 ? 1.0f : 0.0f)) << "x=" << v;
    ASSERT_EQ(bo[k], floorMod(v, 7) != 0 ? 1 : 0) << "x=" << v;
  }
}

TEST(EmitLLVM, ErrorsNameTheFunction) {
  Var n("n"), i("i"), j("j");
  Buffer M = Buffer::make("M", DType::f32, {n, n});
  LoweredFunc func{"f32_unflattened", {Param::ofBuffer(M), Param::ofVar(n)},
                   forLoop(i, 0, n, StoreNode::make(M, Expr(1.0f), {i, i}))};
  try {
    compileLoweredFunc(func);
    FAIL() << "expected an Error";
  } catch (const Error &e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("f32_unflattened"), std::string::npos) << msg;
    EXPECT_NE(msg.find("StorageFlatten"), std::string::npos) << msg;
  }
  Var stray("stray");
  Buffer V = vec("V", n);
  LoweredFunc bad{"uses_unbound", {Param::ofBuffer(V), Param::ofVar(n)},
                  forLoop(i, 0, n, store(V, Expr(1.0f), stray))};
  try {
    compileLoweredFunc(bad);
    FAIL() << "expected an Error";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("'stray'"), std::string::npos) << e.what();
  }
}

// The same vectorized kernel for AArch64: an ELF object with e_machine 183 (EM_AARCH64).
TEST(EmitLLVM, AArch64Object) {
  auto target = codegen::Target::aarch64Linux();
  if (!target.isAvailable())
    GTEST_SKIP() << "this LLVM has no AArch64 back end";
  Var n("n"), io("io");
  Buffer A = vec("A", n), C = vec("C", n);
  Expr r = ramp(io * 4, 1, 4);
  LoweredFunc func{"f32_scale_x4", {Param::ofBuffer(A), Param::ofBuffer(C), Param::ofVar(n)},
                   forLoop(io, 0, n / 4, store(C, load(A, r) * 3.0f, r), ForKind::Parallel)};
  llvm::LLVMContext ctx;
  auto module = codegen::emitLLVM(func, ctx, target);
  std::vector<char> object = codegen::emitObject(*module, target);
  ASSERT_GE(object.size(), 64u);
  EXPECT_EQ(std::memcmp(object.data(), "\x7f" "ELF", 4), 0);
  uint16_t machine;
  std::memcpy(&machine, object.data() + 18, 2);
  EXPECT_EQ(machine, 183);
}

// The rest of the intrinsic table (round is half to even, as the loop IR's evaluator), and abs
// on integers, on 4-lane vectors: C[r] = round(A) + ceil(A) + rsqrt(|A|+1) + fma(A, A, 1) +
// sin(A) * cos(A);  Y[r] = abs(X[r]).
TEST(EmitLLVM, RemainingIntrinsicsVectorized) {
  Var n("n"), io("io");
  Buffer A = vec("A", n), C = vec("C", n);
  Buffer X = vec("X", n, DType::i32), Y = vec("Y", n, DType::i32);
  Expr r = ramp(io * 4, 1, 4);
  Expr a = load(A, r);
  Expr value = round(a) + ceil(a) + rsqrt(fabs(a) + 1.0f) + fma(a, a, broadcast(Expr(1.0f), 4)) +
               sin(a) * cos(a);
  LoweredFunc func{"f32_more_math_x4",
                   {Param::ofBuffer(A), Param::ofBuffer(C), Param::ofBuffer(X), Param::ofBuffer(Y),
                    Param::ofVar(n)},
                   forLoop(io, 0, n / 4,
                           SeqNode::make({store(C, value, r), store(Y, abs(load(X, r)), r)}))};
  CompiledFunc f = compileLoweredFunc(func);
  const int64_t size = 1000;
  auto av = randomFloats(size, 15);
  av[0] = 2.5f; // halves round to even
  av[1] = -0.5f;
  av[2] = 3.5f;
  std::vector<float> c(size);
  std::vector<int32_t> x(size), y(size);
  std::mt19937 rng(16);
  for (auto &v : x)
    v = int32_t(rng() % 2001) - 1000;
  call(f, {av.data(), c.data(), x.data(), y.data()}, size);
  for (int64_t k = 0; k < size; ++k) {
    float v = av[k];
    float want = std::nearbyint(v) + std::ceil(v) + 1.0f / std::sqrt(std::fabs(v) + 1.0f) +
                 std::fma(v, v, 1.0f) + std::sin(v) * std::cos(v);
    ASSERT_NEAR(c[k], want, 1e-5f * std::max(1.0f, std::fabs(want))) << "k=" << k << " a=" << v;
    ASSERT_EQ(y[k], std::abs(x[k]));
  }
  EXPECT_EQ(std::nearbyint(2.5f), 2.0f); // the reference itself rounds half to even
}
