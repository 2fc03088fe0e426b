//===- Gemm.cpp - the TE-scheduled fp32 dense GEMM ------------------------===//
//
// See include/tessel/TE/Gemm.h for the structure (packed panels, register tile, loop order).
//
//===----------------------------------------------------------------------===//
#include "tessel/TE/Gemm.h"

#include "tessel/CodeGen/Target.h"
#include "tessel/Loop/Pass.h"
#include "tessel/Loop/Visitor.h"
#include "tessel/TE/Lower.h"

#include <algorithm>
#include <tuple>
#include <utility>

namespace tessel::te {

namespace {

int64_t ceilDiv(int64_t a, int64_t b) { return (a + b - 1) / b; }

/// The first column of panel jo when N is not a multiple of nr (and N >= nr): jo * nr, except
/// for the last panel, which starts at N - nr so that every panel is nr whole columns of B
/// (contiguous vector loads when packing, no zero padding, no clamped gather).
Expr panelStart(const Expr &jo, int64_t nr, int64_t N) { return loop::min(jo * nr, Expr(N - nr)); }

} // namespace

GemmTiling chooseGemmTiling(int64_t M, int64_t N, int64_t K, int vectorLanes) {
  (void)K;
  const int64_t L = vectorLanes > 0 ? vectorLanes : 16;
  // Candidates in order of preference on ties. The mr x (nr / L) accumulators, the nr / L B
  // vectors and one broadcast must fit the vector registers: 32 with AVX-512, else 16.
  const int64_t registers = L >= 16 ? 32 : 16;
  const std::pair<int64_t, int64_t> candidates[] = {
      {8, 2 * L}, {6, 4 * L}, {14, 2 * L}, {12, 2 * L}, {4, 4 * L}, {16, L}, {24, L},
      {6, 2 * L}, {2, 4 * L}, {1, 4 * L}, {12, L}, {8, L}, {4, L}, {1, L}};
  GemmTiling best;
  double bestCycles = 0, bestPadded = 0;
  for (auto [mr, nr] : candidates) {
    if (mr * (nr / L) + nr / L + 1 > registers)
      continue;
    // Cycles of one k step of the micro-kernel: FMAs (2 per cycle), loads (mr broadcasts + the
    // B vectors, 2 per cycle) or the FMA latency (4 cycles) that each accumulator waits for.
    double vectors = double(mr * nr / L);
    double step = std::max({vectors / 2, double(mr + nr / L) / 2, 4.0});
    double cycles = double(ceilDiv(M, mr)) * double(ceilDiv(N, nr)) * step;
    // On a tie, the tile with less padding (less packing and copying).
    double padded = double(ceilDiv(M, mr) * mr) * double(ceilDiv(N, nr) * nr);
    if (bestCycles == 0 || cycles < bestCycles || (cycles == bestCycles && padded < bestPadded)) {
      bestCycles = cycles;
      bestPadded = padded;
      best.mr = mr;
      best.nr = nr;
    }
  }
  best.packB = M > 4; // a B element feeds at most M rows: packing only pays with a few
  return best;
}

GemmTiling chooseGemmTiling(int64_t M, int64_t N, int64_t K) {
  codegen::Target host = codegen::Target::host();
  if (host.hasFeature("avx512f"))
    return chooseGemmTiling(M, N, K, 16);
  if (host.hasFeature("avx"))
    return chooseGemmTiling(M, N, K, 8);
  return chooseGemmTiling(M, N, K, 4);
}

namespace {

int64_t constantDim(const Tensor &t, size_t dim) {
  const int64_t *v = loop::asConstInt(t.shape()[dim]);
  if (!v)
    fail("denseGemm: tensor '", t.name(), "' has a symbolic dimension ", dim,
         "; expected constant shapes");
  return *v;
}

} // namespace

DenseGemm denseGemm(const Tensor &A, const Tensor &B, const GemmTiling &tiling,
                    const std::string &name) {
  for (const Tensor *t : {&A, &B}) {
    if (t->dtype() != DType::f32 || t->ndim() != 2)
      fail("denseGemm: tensor '", t->name(), "' is ", dtypeName(t->dtype()), " of rank ",
           t->ndim(), "; expected an f32 matrix");
  }
  if (tiling.mr < 1 || tiling.nr < 1)
    fail("denseGemm: register tile ", tiling.mr, "x", tiling.nr, "; expected positive sizes");
  const int64_t M = constantDim(A, 0), K = constantDim(A, 1), N = constantDim(B, 1);
  if (constantDim(B, 0) != K)
    fail("denseGemm: A '", A.name(), "' is [", M, ", ", K, "] and B '", B.name(), "' is [",
         constantDim(B, 0), ", ", N, "]; expected B to have ", K, " rows");
  const int64_t mr = tiling.mr, nr = tiling.nr;
  const int64_t Mp = ceilDiv(M, mr) * mr, NB = ceilDiv(N, nr);
  DenseGemm g;
  g.A = A;
  g.B = B;
  g.tiling = tiling;
  // Zero padding up to whole tiles: the micro-kernel then has no edge case and no guard. The
  // clamped index keeps the (discarded) load of a padding element inside the input, since a
  // Select evaluates both sides.
  g.packedA = A;
  if (tiling.packA)
    g.packedA = compute(
        {Mp / mr, K, mr},
        [&](Var io, Var k, Var ii) {
          Expr i = io * mr + ii;
          return select(i < M, A(loop::min(i, Expr(M - 1)), k), 0.0f);
        },
        name + ".packedA");
  else if (Mp != M)
    g.packedA = compute(
        {Mp, K},
        [&](Var i, Var k) { return select(i < M, A(loop::min(i, Expr(M - 1)), k), 0.0f); },
        name + ".paddedA");
  g.packedB = compute(
      {NB, K, nr},
      [&](Var jo, Var k, Var ji) {
        Expr j = jo * nr + ji;
        if (N % nr == 0) // whole panels: a contiguous vector copy
          return B(k, j);
        if (N >= nr) // the last panel ends at column N (it overlaps the one before it)
          return B(k, panelStart(jo, nr, N) + ji);
        return select(j < N, B(k, loop::min(j, Expr(N - 1))), 0.0f);
      },
      name + ".packedB");
  // The product in panel layout [Mp, N/nr, nr]: every index is a loop variable (no division),
  // and when the tile divides M and N this IS C's row-major layout, so it is the output itself.
  // With few rows, B is read in place: each element is used by at most mr rows, so packing
  // (a full copy of B) would cost as much as the product.
  const bool readBInPlace = !tiling.packB && (N % nr == 0 || N >= nr);
  if (readBInPlace)
    g.packedB = B;
  auto k = reduce_axis({0, K}, "k");
  g.tiles = compute(
      {Mp, NB, nr},
      [&](Var i, Var jo, Var ji) {
        Expr a = tiling.packA ? g.packedA(i / mr, k, i % mr) : g.packedA(i, k);
        Expr b = !readBInPlace    ? g.packedB(jo, k, ji)
                 : N % nr == 0 ? B(k, jo * nr + ji)
                               : B(k, panelStart(jo, nr, N) + ji);
        return sum(a * b, {k});
      },
      Mp == M && NB * nr == N ? name : name + ".tiles");
  g.C = g.tiles;
  if (Mp == M && NB * nr == N)
    return g;
  if (NB * nr == N) { // only rows to drop: the same layout with M rows
    g.C = compute(
        {M, NB, nr}, [&](Var i, Var jo, Var ji) { return g.tiles(i, jo, ji); }, name);
    return g;
  }
  g.C = compute(
      {M, N},
      [&](Var i, Var j) {
        if (N < nr) // one zero-padded panel
          return g.tiles(i, j / nr, j % nr);
        // Column j is in panel min(j / nr, last) at its offset from the panel's first column.
        Expr jo = loop::min(j / nr, Expr(NB - 1));
        return g.tiles(i, jo, j - panelStart(jo, nr, N));
      },
      name);
  return g;
}

DenseGemm denseGemm(int64_t M, int64_t N, int64_t K, const GemmTiling &tiling,
                    const std::string &name) {
  return denseGemm(placeholder({M, K}, DType::f32, "A"), placeholder({K, N}, DType::f32, "B"),
                   tiling, name);
}

namespace {

/// No K blocking: an mr x nr block of `tiles` accumulates in a local buffer (cache_write) per
/// (panel, row block), the k loop outside the unrolled rows and vectorized columns, so the
/// accumulators stay in registers for the whole reduction.
void scheduleRegisterTile(Schedule &s, const DenseGemm &g) {
  const GemmTiling &t = g.tiling;
  Tensor CC = s.cache_write(g.tiles, "local");
  Stage T = s[g.tiles];
  const int64_t Mp = *loop::asConstInt(g.tiles.shape()[0]);
  auto [io, ii] = T.split(g.tiles.axis(0), t.mr);
  IterVar jo = g.tiles.axis(1), ji = g.tiles.axis(2);
  T.vectorize(ji);
  if (t.mc > 0 && t.mc < Mp) {
    // mc-row blocks of A (mc * K floats, kept in L2) outermost; inside a block, every nr-wide
    // panel of packedB (K * nr floats, in L2 too) meets each of the block's mr-row tiles.
    auto [mo, io2] = T.split(io, std::max<int64_t>(1, t.mc / t.mr));
    T.reorder({mo, jo, io2, ii, ji});
    if (t.parallel) // one parallel loop over every (row block, panel) pair
      T.parallel(T.fuse(mo, jo));
    s[CC].compute_at(T, io2);
  } else {
    // Panel-outer: one panel of packedB stays in L2 while every row tile of A streams past.
    T.reorder({jo, io, ii, ji});
    IterVar tile = io;
    if (t.parallel) // one parallel loop over every (panel, row tile) pair
      T.parallel(tile = T.fuse(jo, io));
    s[CC].compute_at(T, tile);
  }
  s[CC].reorder({CC.reduceAxis(0), CC.axis(0), CC.axis(1), CC.axis(2)});
  s[CC].unroll(CC.axis(0));
  s[CC].vectorize(CC.axis(2));
}

} // namespace

void scheduleDenseGemm(Schedule &s, const DenseGemm &g) {
  const GemmTiling &t = g.tiling;
  const int64_t K = *loop::asConstInt(g.A.shape()[1]);
  const int64_t Mp = *loop::asConstInt(g.tiles.shape()[0]);
  if (t.localTile) {
    scheduleRegisterTile(s, g);
  } else {
    // The tile accumulates straight into `tiles`: inside the (panel, row tile) loops its loads
    // and stores do not depend on the k loop, so LLVM keeps the mr x nr accumulators in
    // registers across it (the reduction's init, mr x nr zeros, sits right before the k loop).
    Stage T = s[g.tiles];
    const bool blockK = t.kc > 0 && t.kc < K && K % t.kc == 0;
    IterVar k = g.tiles.reduceAxis(0), ko;
    if (blockK)
      std::tie(ko, k) = T.split(k, t.kc);
    IterVar jo = g.tiles.axis(1), ji = g.tiles.axis(2);
    auto [io, ii] = T.split(g.tiles.axis(0), t.mr);
    if (blockK && t.mc > 0 && t.mc < Mp) {
      // GotoBLAS: for each kc-deep slice of K and mc-row block of A (in L2), every panel's
      // kc x nr slice of packedB (in L1) meets every mr-row tile of the block.
      auto [mo, io2] = T.split(io, std::max<int64_t>(1, t.mc / t.mr));
      T.reorder({ko, mo, jo, io2, k, ii, ji});
    } else if (blockK) {
      T.reorder({ko, jo, io, k, ii, ji});
    } else {
      // Panel-outer: one panel of packedB (K x nr, in L2) meets every row tile of A.
      T.reorder({jo, io, k, ii, ji});
    }
    T.unroll(ii);
    T.vectorize(ji);
    if (t.parallel)
      T.parallel(jo);
    if (t.packPanelInside && !g.packedB.same_as(g.B) && !(blockK && t.mc > 0 && t.mc < Mp)) {
      // Each panel packed right before its use, into a K x nr buffer that stays in L2 (one pass
      // over B that hits the cache instead of a separate pass over all of B).
      s[g.packedB].compute_at(T, jo);
    }
  }
  // Packing: vector copies along the panel.
  if (!g.packedB.same_as(g.B)) {
    s[g.packedB].vectorize(g.packedB.axis(2));
    if (t.parallel && s[g.packedB]->attach == AttachKind::Root)
      s[g.packedB].parallel(g.packedB.axis(0));
  }
  if (t.packA) {
    if (t.parallel)
      s[g.packedA].parallel(g.packedA.axis(0));
  } else if (!g.packedA.same_as(g.A) && K % 16 == 0)
    s[g.packedA].vectorize(s[g.packedA].split(g.packedA.axis(1), 16).second);
  if (g.C.same_as(g.tiles))
    return;
  // Unpacking the padded product into C: vector copies along the rows.
  Stage C = s[g.C];
  IterVar last = g.C.axis(g.C.ndim() - 1);
  if (g.C.ndim() == 3) {
    C.vectorize(last);
  } else if (*loop::asConstInt(g.C.shape()[1]) >= t.nr) {
    // Split by nr so that tiles(i, j / nr, j % nr) of a vector of columns is one contiguous
    // vector; the columns past the last whole panel are a scalar tail.
    C.vectorize(C.split(last, t.nr).second);
  }
  if (t.parallel)
    C.parallel(g.C.axis(0));
}

Schedule scheduleDenseGemm(const DenseGemm &g) {
  Schedule s = create_schedule(g.C);
  scheduleDenseGemm(s, g);
  return s;
}

std::string denseGemmKernelName(int64_t M, int64_t N, int64_t K, const GemmTiling &tiling) {
  return "f32_gemm_" + std::to_string(M) + "x" + std::to_string(N) + "x" + std::to_string(K) +
         "_" + std::to_string(tiling.mr) + "x" + std::to_string(tiling.nr) +
         (tiling.packA ? "_packA" : "") + (tiling.packB ? "" : "_unpackedB") +
         (tiling.parallel ? "_parallel" : "");
}

namespace {

/// acc + a * b -> fma(a, b, acc) for floating-point values.
class ContractMultiplyAdd : public loop::IRMutator {
public:
  using IRMutator::mutate;

private:
  Expr mutate(const Expr &e, const loop::AddNode *op) override {
    Expr a = mutate(op->a), b = mutate(op->b);
    if (e.type().isFloat()) {
      if (auto *m = b.as<loop::MulNode>())
        return loop::fma(m->a, m->b, a);
      if (auto *m = a.as<loop::MulNode>())
        return loop::fma(m->a, m->b, b);
    }
    if (a.same_as(op->a) && b.same_as(op->b))
      return e;
    return loop::AddNode::make(std::move(a), std::move(b));
  }
};

} // namespace

loop::LoweredFunc contractMultiplyAdd(const loop::LoweredFunc &f) {
  loop::LoweredFunc out = f;
  out.body = ContractMultiplyAdd().mutate(f.body);
  return out;
}

void CompiledGemm::operator()(const float *A, const float *B, float *C) const {
  void *args[] = {const_cast<float *>(A), const_cast<float *>(B), C};
  compiled(args);
}

CompiledGemm buildDenseGemm(int64_t M, int64_t N, int64_t K, const GemmTiling &tiling) {
  DenseGemm g = denseGemm(M, N, K, tiling);
  Schedule s = scheduleDenseGemm(g);
  CompiledGemm out;
  out.M = M;
  out.N = N;
  out.K = K;
  out.tiling = tiling;
  out.func = loop::lowerPipeline(
      contractMultiplyAdd(lower(s, {g.A, g.B, g.C}, denseGemmKernelName(M, N, K, tiling))));
  codegen::EmitOptions emit;
  emit.bufferAlignment = 64;
  out.compiled = codegen::compileLoweredFunc(out.func, {}, emit);
  return out;
}

} // namespace tessel::te
