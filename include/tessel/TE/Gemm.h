//===- Gemm.h - the TE-scheduled fp32 dense GEMM ----------------*- C++ -*-===//
//
// C[M][N] = A[M][K] * B[K][N] (row-major f32) as tensor expressions plus a schedule in the
// structure of GotoBLAS/BLIS and TVM's x86 `dense_pack`:
//
//   * B is packed into column panels Bp[N/nr][K][nr], each panel inside the panel loop right
//     before its row tiles use it (compute_at: it stays in L2); when nr does not divide N the
//     last panel starts at column N - nr, so every panel is whole columns of B (contiguous
//     vector loads, no guard, no gather). A is read in place (rows zero-padded to a multiple of
//     mr when needed), or optionally packed into row panels Ap[M/mr][K][mr];
//   * the micro-kernel accumulates an mr x nr tile (rows unrolled, columns vectorized, the k
//     loop around them) in the output, whose loads and stores LLVM keeps in registers across k:
//     per k, nr/16 vector loads of Bp, mr broadcasts of A, mr*nr/16 FMAs;
//   * the product is computed in panel layout [Mp, N/nr, nr], which IS C's row-major layout when
//     the tile divides M and N; otherwise a vector copy moves it into C;
//   * the panel loop is parallel (tessel_parallel_for).
//
// Options (GemmTiling) select K blocking, A packing, packing B up front, or a tile in a local
// buffer (cache_write) instead; unittests/TEGemmTest.cpp checks every variant numerically.
//
// MatMul/Gemm lowering (issue 5) reuses denseGemm + scheduleDenseGemm; the GEMM benchmark
// (bench/gemm.cpp) and unittests/TEGemmTest.cpp build it with buildDenseGemm.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/CodeGen/EmitLLVM.h"
#include "tessel/TE/Schedule.h"

#include <cstdint>
#include <string>


namespace tessel::te {

/// The register tile and the loop choices of the GEMM schedule.
struct GemmTiling {
  int64_t mr = 8;  ///< rows of the register tile (unrolled)
  int64_t nr = 32; ///< columns of the register tile (vectorized; a multiple of the vector width)
  bool parallel = true; ///< parallel outer loops (tessel_parallel_for; 1 thread runs them serially)
  /// Pack A into row panels [ceil(M/mr), K, mr] (the micro-kernel's broadcasts then read one
  /// contiguous stream instead of mr rows). Off by default: the packing loop is a scalar
  /// transposition and cost more than it saved at 1024^3 on Zen 5; A is then read in place
  /// (zero-padded to whole tiles, a vector copy, only when mr does not divide M).
  bool packA = false;
  /// Pack B into panels (off: the micro-kernel reads B in place, for a handful of rows, where
  /// packing would copy B to use each element a few times; needs N >= nr or nr dividing N).
  bool packB = true;
  /// Pack each nr-wide panel of B inside the panel loop, right before its row tiles use it
  /// (compute_at): the panel stays in cache. Off: all of B is packed first.
  bool packPanelInside = true;
  /// K blocking (GotoBLAS): 0 = none (the whole K per tile); kc > 0 dividing K: kc-deep slices
  /// with, when mc > 0, mc-row blocks of A inside each slice (B then packed up front).
  int64_t kc = 0;
  int64_t mc = 0;
  /// Accumulate the tile in a local buffer (cache_write) instead of in the output, with the
  /// (panel, row tile) loops fused into one parallel loop; B packed up front.
  bool localTile = false;
};

/// The tile for an M x N x K GEMM with vectors of `vectorLanes` floats: the candidate tile
/// (8 x 2L, 6 x 4L, 14 x 2L, ..., 1 x L) that fits the vector registers (32 with 16 lanes, else
/// 16) with the fewest estimated cycles, counting the padding of M and N up to whole tiles and
/// each micro-kernel step's FMA, load and latency bound. packB is off for M <= 4.
GemmTiling chooseGemmTiling(int64_t M, int64_t N, int64_t K, int vectorLanes);
/// The same for this CPU (16 lanes with AVX-512, 8 with AVX, 4 otherwise).
GemmTiling chooseGemmTiling(int64_t M, int64_t N, int64_t K);

/// The tensors of one dense GEMM: inputs, packed panels, output.
struct DenseGemm {
  Tensor A, B;    ///< placeholders (or the caller's tensors) [M, K] and [K, N]
  /// packA: [ceil(M/mr), K, mr] with Ap[io, k, ii] = A[io*mr + ii, k], 0 past M; otherwise A
  /// zero-padded to [Mp, K] (Mp: M rounded up to mr), or A itself when mr divides M.
  Tensor packedA;
  /// [ceil(N/nr), K, nr]: Bp[jo, k, ji] = B[k, jo*nr + ji] (the last panel starts at column
  /// N - nr when nr does not divide N and N >= nr; zero-padded when N < nr), or B itself when
  /// !tiling.packB.
  Tensor packedB;
  Tensor tiles;   ///< [Mp, ceil(N/nr), nr]: the product in panel layout (what is scheduled)
  /// The output, whose row-major layout is C [M, N]: `tiles` itself when the tile divides M
  /// and N, else a copy of its first M rows ([M, N/nr, nr]) or of its first N columns ([M, N]).
  Tensor C;
  GemmTiling tiling;
};

/// The computes of C = A * B for f32 tensors A [M, K] and B [K, N] with constant shapes.
/// Error naming the tensor if a dtype, rank or shape does not fit.
DenseGemm denseGemm(const Tensor &A, const Tensor &B, const GemmTiling &tiling,
                    const std::string &name = "C");
/// The same on fresh placeholders "A" [M, K] and "B" [K, N].
DenseGemm denseGemm(int64_t M, int64_t N, int64_t K, const GemmTiling &tiling,
                    const std::string &name = "C");

/// The schedule described at the top of this file, on a schedule whose outputs include g.C.
void scheduleDenseGemm(Schedule &s, const DenseGemm &g);
/// create_schedule(g.C) + scheduleDenseGemm.
Schedule scheduleDenseGemm(const DenseGemm &g);

/// A kernel name that says what it is: "f32_gemm_MxNxK_8x32" (+ "_packA", "_unpackedB",
/// "_parallel").
std::string denseGemmKernelName(int64_t M, int64_t N, int64_t K, const GemmTiling &tiling);

/// `acc + a * b` (f32, scalar or vector) -> fma(a, b, acc) everywhere in s: the contraction a
/// C compiler does with -ffp-contract=on (one rounding instead of two). tessel's code generator
/// keeps every fmul/fadd as written unless fast-math is on, so without this the GEMM's inner
/// loop would be a multiply and an add per element (half the FMA units' throughput).
loop::LoweredFunc contractMultiplyAdd(const loop::LoweredFunc &f);

/// A GEMM JIT-compiled for this CPU: call it with row-major A [M, K], B [K, N], C [M, N].
struct CompiledGemm {
  int64_t M = 0, N = 0, K = 0;
  GemmTiling tiling;
  loop::LoweredFunc func;         ///< after the loop pipeline: what was compiled
  codegen::CompiledFunc compiled; ///< entry point NAME(void **args)
  void operator()(const float *A, const float *B, float *C) const;
};

/// lower (te::lower) -> contractMultiplyAdd -> loop pipeline -> LLVM (64-byte aligned buffers)
/// -> JIT: tessel::build's steps plus the contraction. The buffers passed to the result must be
/// 64-byte aligned.
CompiledGemm buildDenseGemm(int64_t M, int64_t N, int64_t K, const GemmTiling &tiling);

} // namespace tessel::te
