//===- NN.cpp - NN ops: convolution, pooling, matrix products ------------===//
//
// Conv, ConvTranspose, MaxPool, AveragePool, LpPool, the global pools, MaxUnpool, MatMul, Gemm,
// Einsum and Det. One blocked GEMM (packed panels, a register-tile micro-kernel whose inner loop
// the compiler vectorizes) serves MatMul, Gemm, Conv (im2col per group; 1x1 stride-1 convs use
// the input directly) and ConvTranspose (GEMM + col2im). Depthwise convs use a direct loop.
// f16/bf16 are computed in f32 and rounded once at the end.
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"
#include "tessel/Graph/Lowering.h"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <functional>
#include <limits>
#include <string>
#include <type_traits>

namespace tessel {

namespace {

//===----------------------------------------------------------------------===//
// GEMM: C[M,N] += alpha * A[M,K] * B[K,N], A and B given by row/column strides (so any
// transposition is free), C row-major with leading dimension ldc.
//===----------------------------------------------------------------------===//

template <class T> struct GemmTile {
  static constexpr int MR = 4, NR = 16;
};
template <> struct GemmTile<double> {
  static constexpr int MR = 4, NR = 8;
};

constexpr int64_t kKC = 256; // depth of a packed panel
constexpr int64_t kMC = 96;  // rows of a packed A block (multiple of MR)
constexpr int64_t kNC = 2048; // columns of a packed B block (multiple of NR)

template <class T, int MR>
void packA(const T *A, int64_t rsA, int64_t csA, int64_t i0, int64_t mc, int64_t k0, int64_t kc,
           T *dst) {
  for (int64_t ib = 0; ib < mc; ib += MR) {
    int64_t mr = std::min<int64_t>(MR, mc - ib);
    for (int64_t k = 0; k < kc; ++k) {
      const T *src = A + (i0 + ib) * rsA + (k0 + k) * csA;
      int64_t i = 0;
      for (; i < mr; ++i)
        dst[i] = src[i * rsA];
      for (; i < MR; ++i)
        dst[i] = T(0);
      dst += MR;
    }
  }
}

template <class T, int NR>
void packB(const T *B, int64_t rsB, int64_t csB, int64_t k0, int64_t kc, int64_t j0, int64_t nc,
           T *dst) {
  for (int64_t jb = 0; jb < nc; jb += NR) {
    int64_t nr = std::min<int64_t>(NR, nc - jb);
    for (int64_t k = 0; k < kc; ++k) {
      const T *src = B + (k0 + k) * rsB + (j0 + jb) * csB;
      if (csB == 1 && nr == NR) {
        std::memcpy(dst, src, sizeof(T) * NR);
      } else {
        int64_t j = 0;
        for (; j < nr; ++j)
          dst[j] = src[j * csB];
        for (; j < NR; ++j)
          dst[j] = T(0);
      }
      dst += NR;
    }
  }
}

template <class T, int MR, int NR>
inline __attribute__((always_inline)) void microKernel(int64_t kc, const T *__restrict a,
                                                        const T *__restrict b, T *C, int64_t ldc,
                                                        int64_t mr, int64_t nr, T alpha) {
  T acc[MR][NR];
  for (int i = 0; i < MR; ++i)
    for (int j = 0; j < NR; ++j)
      acc[i][j] = T(0);
  for (int64_t k = 0; k < kc; ++k) {
    for (int i = 0; i < MR; ++i) {
      T av = a[i];
      for (int j = 0; j < NR; ++j)
        acc[i][j] += av * b[j];
    }
    a += MR;
    b += NR;
  }
  if (mr == MR && nr == NR) {
    for (int i = 0; i < MR; ++i)
      for (int j = 0; j < NR; ++j)
        C[i * ldc + j] += alpha * acc[i][j];
    return;
  }
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j)
      C[i * ldc + j] += alpha * acc[i][j];
}

template <class T, int MR, int NR>
inline __attribute__((always_inline)) void gemmBlocked(int64_t M, int64_t N, int64_t K,
                                                        const T *A, int64_t rsA, int64_t csA,
                                                        const T *B, int64_t rsB, int64_t csB,
                                                        T *C, int64_t ldc, T alpha) {
  thread_local std::vector<T> bufA, bufB;
  int64_t nc0 = std::min<int64_t>(kNC, (N + NR - 1) / NR * NR);
  int64_t kc0 = std::min<int64_t>(kKC, K);
  int64_t mc0 = std::min<int64_t>(kMC, (M + MR - 1) / MR * MR);
  if (int64_t(bufA.size()) < mc0 * kc0)
    bufA.resize(mc0 * kc0);
  if (int64_t(bufB.size()) < nc0 * kc0)
    bufB.resize(nc0 * kc0);
  T *pa = bufA.data(), *pb = bufB.data();
  for (int64_t j0 = 0; j0 < N; j0 += kNC) {
    int64_t nc = std::min(kNC, N - j0);
    for (int64_t k0 = 0; k0 < K; k0 += kKC) {
      int64_t kc = std::min(kKC, K - k0);
      packB<T, NR>(B, rsB, csB, k0, kc, j0, nc, pb);
      for (int64_t i0 = 0; i0 < M; i0 += kMC) {
        int64_t mc = std::min(kMC, M - i0);
        packA<T, MR>(A, rsA, csA, i0, mc, k0, kc, pa);
        for (int64_t jb = 0; jb < nc; jb += NR) {
          int64_t nr = std::min<int64_t>(NR, nc - jb);
          const T *bp = pb + (jb / NR) * kc * NR;
          for (int64_t ib = 0; ib < mc; ib += MR) {
            int64_t mr = std::min<int64_t>(MR, mc - ib);
            microKernel<T, MR, NR>(kc, pa + (ib / MR) * kc * MR, bp,
                                   C + (i0 + ib) * ldc + j0 + jb, ldc, mr, nr, alpha);
          }
        }
      }
    }
  }
}

void gemmF32Generic(int64_t M, int64_t N, int64_t K, const float *A, int64_t rsA, int64_t csA,
                    const float *B, int64_t rsB, int64_t csB, float *C, int64_t ldc, float alpha) {
  gemmBlocked<float, 4, 16>(M, N, K, A, rsA, csA, B, rsB, csB, C, ldc, alpha);
}

#if defined(__x86_64__) && defined(__GNUC__)
#define TESSEL_NN_HAVE_AVX2 1
// The same source compiled for AVX2+FMA: 6x16 tile = 12 ymm accumulators.
__attribute__((target("avx2,fma"))) void
gemmF32Avx2(int64_t M, int64_t N, int64_t K, const float *A, int64_t rsA, int64_t csA,
            const float *B, int64_t rsB, int64_t csB, float *C, int64_t ldc, float alpha) {
  gemmBlocked<float, 6, 16>(M, N, K, A, rsA, csA, B, rsB, csB, C, ldc, alpha);
}
#endif

/// C[M,N] += alpha * A * B (see above). T: float, double or an integer type.
template <class T>
void gemm(int64_t M, int64_t N, int64_t K, const T *A, int64_t rsA, int64_t csA, const T *B,
          int64_t rsB, int64_t csB, T *C, int64_t ldc, T alpha = T(1)) {
  if (M <= 0 || N <= 0 || K <= 0)
    return;
  if constexpr (std::is_same_v<T, float>) {
#ifdef TESSEL_NN_HAVE_AVX2
    static const bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
    if (avx2)
      return gemmF32Avx2(M, N, K, A, rsA, csA, B, rsB, csB, C, ldc, alpha);
#endif
    return gemmF32Generic(M, N, K, A, rsA, csA, B, rsB, csB, C, ldc, alpha);
  } else {
    gemmBlocked<T, GemmTile<T>::MR, GemmTile<T>::NR>(M, N, K, A, rsA, csA, B, rsB, csB, C, ldc,
                                                      alpha);
  }
}

/// The type kernels compute in: f16/bf16 tensors are converted to f32 before and back after.
DType computeType(DType dt) { return dt == DType::f16 || dt == DType::bf16 ? DType::f32 : dt; }

Tensor toCompute(const Tensor &t) { return t.dtype() == computeType(t.dtype()) ? t : t.cast(DType::f32); }
Tensor fromCompute(const Tensor &t, DType want) { return t.dtype() == want ? t : t.cast(want); }

//===----------------------------------------------------------------------===//
// Conv / pool geometry
//===----------------------------------------------------------------------===//

struct Geom {
  int64_t nsp = 0; // spatial rank
  std::vector<int64_t> kernel, strides, dil, padB, padE, in, out; // out: -1 = unknown
};

std::string readAutoPad(const AttrReader &ctx) {
  std::string ap = ctx.attrString("auto_pad", "NOTSET");
  if (ap.empty())
    ap = "NOTSET";
  if (ap != "NOTSET" && ap != "SAME_UPPER" && ap != "SAME_LOWER" && ap != "VALID")
    ctx.fail("auto_pad '", ap, "' is not one of NOTSET, SAME_UPPER, SAME_LOWER, VALID");
  return ap;
}

/// Reads strides/dilations/pads/auto_pad for a conv or pool with the given kernel; `in` holds the
/// input spatial dims (-1 = unknown). Computes the output dims and the pads.
Geom computeGeom(const AttrReader &ctx, const std::vector<int64_t> &in,
                 const std::vector<int64_t> &kernel, bool ceilMode, bool useDilations = true) {
  Geom g;
  g.nsp = int64_t(in.size());
  g.in = in;
  g.kernel = kernel;
  int64_t n = g.nsp;
  if (int64_t(kernel.size()) != n)
    ctx.fail("kernel_shape has ", kernel.size(), " values, expected ", n, " (one per spatial dim)");
  for (int64_t k : kernel)
    if (k <= 0)
      ctx.fail("kernel_shape values must be positive, got ", shapeToString(kernel));
  g.strides = ctx.attrInts("strides", std::vector<int64_t>(n, 1));
  if (int64_t(g.strides.size()) != n)
    ctx.fail("strides has ", g.strides.size(), " values, expected ", n);
  g.dil = useDilations ? ctx.attrInts("dilations", std::vector<int64_t>(n, 1))
                       : std::vector<int64_t>(n, 1);
  if (int64_t(g.dil.size()) != n)
    ctx.fail("dilations has ", g.dil.size(), " values, expected ", n);
  const int64_t kBig = int64_t(1) << 24; // keeps (k-1)*d + (in-1)*s + pads far from overflow
  for (int64_t i = 0; i < n; ++i)
    if (kernel[i] > kBig || g.strides[i] > kBig || g.dil[i] > kBig)
      ctx.fail("kernel_shape/strides/dilations values must be below 2^24");
  for (int64_t i = 0; i < n; ++i) {
    if (g.strides[i] <= 0)
      ctx.fail("strides must be positive, got ", shapeToString(g.strides));
    if (g.dil[i] <= 0)
      ctx.fail("dilations must be positive, got ", shapeToString(g.dil));
  }
  std::string ap = readAutoPad(ctx);
  std::vector<int64_t> pads = ctx.attrInts("pads", std::vector<int64_t>(2 * n, 0));
  if (int64_t(pads.size()) != 2 * n)
    ctx.fail("pads has ", pads.size(), " values, expected ", 2 * n);
  for (int64_t p : pads)
    if (p < 0 || p > kBig)
      ctx.fail("pads must be non-negative (and below 2^24), got ", shapeToString(pads));
  g.padB.assign(n, 0);
  g.padE.assign(n, 0);
  g.out.assign(n, -1);
  for (int64_t i = 0; i < n; ++i) {
    int64_t dk = (kernel[i] - 1) * g.dil[i] + 1;
    int64_t s = g.strides[i];
    if (ap == "NOTSET") {
      g.padB[i] = pads[i];
      g.padE[i] = pads[i + n];
      if (in[i] < 0)
        continue;
      int64_t span = in[i] + g.padB[i] + g.padE[i] - dk;
      if (span < 0)
        ctx.fail("the (dilated) kernel ", dk, " is larger than the padded input ",
                 in[i] + g.padB[i] + g.padE[i], " in spatial dim ", i);
      int64_t o = ceilMode ? (span + s - 1) / s + 1 : span / s + 1;
      // The last window must start inside the input or the begin padding.
      if (ceilMode && (o - 1) * s >= in[i] + g.padB[i])
        --o;
      g.out[i] = o;
    } else if (ap == "VALID") {
      if (in[i] < 0)
        continue;
      if (in[i] < dk)
        ctx.fail("the (dilated) kernel ", dk, " is larger than the input ", in[i],
                 " in spatial dim ", i);
      g.out[i] = ceilMode ? (in[i] - dk + s - 1) / s + 1 : (in[i] - dk) / s + 1;
    } else {
      if (in[i] < 0)
        continue;
      int64_t o = (in[i] + s - 1) / s;
      int64_t total = std::max<int64_t>(0, (o - 1) * s + dk - in[i]);
      g.padB[i] = ap == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.padE[i] = total - g.padB[i];
      g.out[i] = o;
    }
  }
  return g;
}

std::vector<int64_t> spatialOf(const Shape &s, int64_t nsp) {
  std::vector<int64_t> v(nsp, -1);
  if (!s.rankKnown || s.rank() != nsp + 2)
    return v;
  for (int64_t i = 0; i < nsp; ++i)
    if (s.dims[2 + i].isStatic())
      v[i] = s.dims[2 + i].value;
  return v;
}

/// The spatial rank of a conv/pool from the input's rank, the weight's rank or kernel_shape.
int64_t spatialRank(const InferContext &ctx, const Shape &x, const Shape *w) {
  if (x.rankKnown) {
    if (x.rank() < 3)
      ctx.fail("input 0 should have rank >= 3 (N, C, spatial...), got ", x.str());
    return x.rank() - 2;
  }
  if (w && w->rankKnown && w->rank() >= 3)
    return w->rank() - 2;
  if (ctx.hasAttr("kernel_shape"))
    return int64_t(ctx.attrInts("kernel_shape").size());
  return -1;
}

/// A shape of 1-3 spatial dims viewed as 3 (leading dims of size 1) for the loops below.
struct G3 {
  int64_t in[3], out[3], k[3], s[3], d[3], pb[3];
  int64_t inSize, outSize, kSize;
};

G3 to3(const AttrReader &ctx, const Geom &g) {
  if (g.nsp < 1 || g.nsp > 3)
    ctx.fail("only 1 to 3 spatial dims are supported, got ", g.nsp);
  G3 r;
  int64_t off = 3 - g.nsp;
  for (int i = 0; i < 3; ++i) {
    bool real = i >= off;
    r.in[i] = real ? g.in[i - off] : 1;
    r.out[i] = real ? g.out[i - off] : 1;
    r.k[i] = real ? g.kernel[i - off] : 1;
    r.s[i] = real ? g.strides[i - off] : 1;
    r.d[i] = real ? g.dil[i - off] : 1;
    r.pb[i] = real ? g.padB[i - off] : 0;
  }
  r.inSize = r.in[0] * r.in[1] * r.in[2];
  r.outSize = r.out[0] * r.out[1] * r.out[2];
  r.kSize = r.k[0] * r.k[1] * r.k[2];
  return r;
}

/// [lo, hi) of output positions o (0 <= o < out) with 0 <= o*s + off < in.
inline void validRange(int64_t out, int64_t s, int64_t off, int64_t in, int64_t &lo, int64_t &hi) {
  // o*s + off >= 0  ->  o >= ceil(-off / s)
  lo = off >= 0 ? 0 : (-off + s - 1) / s;
  // o*s + off <= in - 1 -> o <= floor((in - 1 - off) / s)
  int64_t top = in - 1 - off;
  hi = top < 0 ? 0 : top / s + 1;
  lo = std::min(lo, out);
  hi = std::min(std::max(hi, lo), out);
}

//===----------------------------------------------------------------------===//
// Conv
//===----------------------------------------------------------------------===//

/// col[(c, kd, kh, kw)][(od, oh, ow)] for one group of one image (C channels at x).
template <class T> void im2col(const T *x, int64_t C, const G3 &g, T *col) {
  for (int64_t c = 0; c < C; ++c)
    for (int64_t kd = 0; kd < g.k[0]; ++kd)
      for (int64_t kh = 0; kh < g.k[1]; ++kh)
        for (int64_t kw = 0; kw < g.k[2]; ++kw) {
          const T *xc = x + c * g.inSize;
          int64_t offW = kw * g.d[2] - g.pb[2];
          int64_t lo, hi;
          validRange(g.out[2], g.s[2], offW, g.in[2], lo, hi);
          for (int64_t od = 0; od < g.out[0]; ++od) {
            int64_t id = od * g.s[0] + kd * g.d[0] - g.pb[0];
            for (int64_t oh = 0; oh < g.out[1]; ++oh) {
              int64_t ih = oh * g.s[1] + kh * g.d[1] - g.pb[1];
              T *dst = col + (od * g.out[1] + oh) * g.out[2];
              if (id < 0 || id >= g.in[0] || ih < 0 || ih >= g.in[1]) {
                std::fill(dst, dst + g.out[2], T(0));
                continue;
              }
              const T *src = xc + (id * g.in[1] + ih) * g.in[2] + offW;
              std::fill(dst, dst + lo, T(0));
              if (g.s[2] == 1)
                std::memcpy(dst + lo, src + lo, sizeof(T) * (hi - lo));
              else
                for (int64_t ow = lo; ow < hi; ++ow)
                  dst[ow] = src[ow * g.s[2]];
              std::fill(dst + hi, dst + g.out[2], T(0));
            }
          }
          col += g.outSize;
        }
}

/// Depthwise-style direct conv: one input channel x -> one output channel y (y pre-filled).
template <class T> void convDirect1(const T *x, const T *w, T *y, const G3 &g) {
  for (int64_t kd = 0; kd < g.k[0]; ++kd)
    for (int64_t kh = 0; kh < g.k[1]; ++kh)
      for (int64_t kw = 0; kw < g.k[2]; ++kw) {
        T wv = w[(kd * g.k[1] + kh) * g.k[2] + kw];
        int64_t offW = kw * g.d[2] - g.pb[2];
        int64_t lo, hi;
        validRange(g.out[2], g.s[2], offW, g.in[2], lo, hi);
        for (int64_t od = 0; od < g.out[0]; ++od) {
          int64_t id = od * g.s[0] + kd * g.d[0] - g.pb[0];
          if (id < 0 || id >= g.in[0])
            continue;
          for (int64_t oh = 0; oh < g.out[1]; ++oh) {
            int64_t ih = oh * g.s[1] + kh * g.d[1] - g.pb[1];
            if (ih < 0 || ih >= g.in[1])
              continue;
            const T *src = x + (id * g.in[1] + ih) * g.in[2] + offW;
            T *dst = y + (od * g.out[1] + oh) * g.out[2];
            if (g.s[2] == 1) {
              for (int64_t ow = lo; ow < hi; ++ow)
                dst[ow] += wv * src[ow];
            } else if (g.s[2] == 2) {
              for (int64_t ow = lo; ow < hi; ++ow)
                dst[ow] += wv * src[2 * ow];
            } else {
              for (int64_t ow = lo; ow < hi; ++ow)
                dst[ow] += wv * src[ow * g.s[2]];
            }
          }
        }
      }
}

template <class T>
void convCompute(const T *x, const T *w, const T *b, T *y, int64_t N, int64_t C, int64_t M,
                 int64_t group, const G3 &g) {
  int64_t Cg = C / group, Mg = M / group;
  int64_t Kdim = Cg * g.kSize;
  bool pointwise = g.kSize == 1 && g.s[0] == 1 && g.s[1] == 1 && g.s[2] == 1 && g.pb[0] == 0 &&
                   g.pb[1] == 0 && g.pb[2] == 0 && g.outSize == g.inSize;
  bool direct = Cg == 1 && group > 1;
  std::vector<T> col;
  if (!pointwise && !direct)
    col.resize(size_t(checkedNumel({Kdim, g.outSize}, sizeof(T), "Conv im2col buffer")));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t m = 0; m < M; ++m) {
      T *ym = y + (n * M + m) * g.outSize;
      std::fill(ym, ym + g.outSize, b ? b[m] : T(0));
    }
    for (int64_t gi = 0; gi < group; ++gi) {
      const T *xg = x + (n * C + gi * Cg) * g.inSize;
      T *yg = y + (n * M + gi * Mg) * g.outSize;
      const T *wg = w + gi * Mg * Kdim;
      if (direct) {
        for (int64_t m = 0; m < Mg; ++m)
          convDirect1(xg, wg + m * g.kSize, yg + m * g.outSize, g);
        continue;
      }
      const T *B = xg;
      if (!pointwise) {
        im2col(xg, Cg, g, col.data());
        B = col.data();
      }
      gemm<T>(Mg, g.outSize, Kdim, wg, Kdim, 1, B, g.outSize, 1, yg, g.outSize);
    }
  }
}

/// Kernel shape of a conv: the attribute when given (checked against W), else W's spatial dims.
std::vector<int64_t> convKernelShape(const AttrReader &ctx, const std::vector<int64_t> &wShape) {
  std::vector<int64_t> ks(wShape.begin() + 2, wShape.end());
  if (ctx.hasAttr("kernel_shape")) {
    std::vector<int64_t> a = ctx.attrInts("kernel_shape");
    if (a != ks)
      ctx.fail("kernel_shape ", shapeToString(a), " does not match the weight's spatial dims ",
               shapeToString(ks));
  }
  return ks;
}

/// Conv/ConvTranspose's optional bias (input 2): 1-D of M values of X's dtype; undefined if absent.
Tensor convBias(const KernelContext &ctx, const Tensor &X, int64_t M) {
  Tensor B;
  if (ctx.hasInput(2)) {
    B = ctx.input(2);
    if (B.rank() != 1 || B.dim(0) != M)
      ctx.fail("bias B has shape ", B.shapeString(), ", expected [", M, "]");
    if (B.dtype() != X.dtype())
      ctx.fail("B has type ", dtypeName(B.dtype()), " but X has ", dtypeName(X.dtype()));
  }
  return B;
}

void convKernel(KernelContext &ctx) {
  const Tensor &X = ctx.input(0);
  const Tensor &W = ctx.input(1);
  if (X.rank() < 3)
    ctx.fail("input X should have rank >= 3 (N, C, spatial...), got ", X.shapeString());
  if (W.rank() != X.rank())
    ctx.fail("weight W has shape ", W.shapeString(), ", expected rank ", X.rank(), " like X ",
             X.shapeString());
  if (W.dtype() != X.dtype())
    ctx.fail("W has type ", dtypeName(W.dtype()), " but X has ", dtypeName(X.dtype()));
  int64_t group = ctx.attrInt("group", 1);
  int64_t N = X.dim(0), C = X.dim(1), M = W.dim(0);
  if (group <= 0 || C % group != 0 || M % group != 0)
    ctx.fail("group ", group, " must be positive and divide the input channels ", C,
             " and the output channels ", M);
  if (W.dim(1) != C / group)
    ctx.fail("W has shape ", W.shapeString(), ": dim 1 should be C/group = ", C / group);
  std::vector<int64_t> ks = convKernelShape(ctx, W.shape());
  std::vector<int64_t> in(X.shape().begin() + 2, X.shape().end());
  Geom geo = computeGeom(ctx, in, ks, false);
  G3 g = to3(ctx, geo);
  Tensor B = convBias(ctx, X, M);
  std::vector<int64_t> outShape{N, M};
  outShape.insert(outShape.end(), geo.out.begin(), geo.out.end());
  DType dt = X.dtype();
  Tensor Xc = toCompute(X), Wc = toCompute(W), Bc = B.defined() ? toCompute(B) : Tensor();
  Tensor Y(computeType(dt), outShape);
  dispatchFloat(
      Y.dtype(),
      [&](auto t) {
        using T = decltype(t);
        if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
          convCompute<T>(Xc.data<T>(), Wc.data<T>(), Bc.defined() ? Bc.data<T>() : nullptr,
                         Y.data<T>(), N, C, M, group, g);
      },
      "Conv");
  ctx.setOutput(0, fromCompute(Y, dt));
}

void convInfer(InferContext &ctx) {
  const Shape &x = tensorShape(ctx, 0);
  const Shape &w = tensorShape(ctx, 1);
  DType dt = ctx.inputType(0).dtype;
  int64_t nsp = spatialRank(ctx, x, &w);
  if (nsp < 0) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  std::vector<Dim> dims(nsp + 2);
  if (x.rankKnown)
    dims[0] = x.dims[0];
  if (w.rankKnown && w.rank() == nsp + 2)
    dims[1] = w.dims[0];
  std::vector<int64_t> ks;
  if (ctx.hasAttr("kernel_shape"))
    ks = ctx.attrInts("kernel_shape");
  else if (w.rankKnown && w.rank() == nsp + 2) {
    bool ok = true;
    for (int64_t i = 0; i < nsp; ++i)
      ok = ok && w.dims[2 + i].isStatic();
    if (ok)
      for (int64_t i = 0; i < nsp; ++i)
        ks.push_back(w.dims[2 + i].value);
  }
  if (int64_t(ks.size()) == nsp) {
    Geom g = computeGeom(ctx, spatialOf(x, nsp), ks, false);
    for (int64_t i = 0; i < nsp; ++i)
      if (g.out[i] >= 0)
        dims[2 + i] = Dim(g.out[i]);
  }
  ctx.setOutputType(0, Type::tensor(dt, Shape(dims)));
}

//===----------------------------------------------------------------------===//
// ConvTranspose
//===----------------------------------------------------------------------===//

struct TGeom {
  std::vector<int64_t> kernel, strides, dil, padB, out, in;
};

/// Output dims and begin pads of a ConvTranspose (in: -1 = unknown, out then -1).
TGeom convTransposeGeom(const AttrReader &ctx, const std::vector<int64_t> &in,
                        const std::vector<int64_t> &kernel) {
  int64_t n = int64_t(in.size());
  TGeom g;
  g.in = in;
  g.kernel = kernel;
  if (int64_t(kernel.size()) != n)
    ctx.fail("kernel_shape has ", kernel.size(), " values, expected ", n);
  g.strides = ctx.attrInts("strides", std::vector<int64_t>(n, 1));
  g.dil = ctx.attrInts("dilations", std::vector<int64_t>(n, 1));
  std::vector<int64_t> outPad = ctx.attrInts("output_padding", std::vector<int64_t>(n, 0));
  std::vector<int64_t> pads = ctx.attrInts("pads", std::vector<int64_t>(2 * n, 0));
  std::vector<int64_t> outShape = ctx.attrInts("output_shape", {});
  if (int64_t(g.strides.size()) != n || int64_t(g.dil.size()) != n ||
      int64_t(outPad.size()) != n || int64_t(pads.size()) != 2 * n)
    ctx.fail("strides/dilations/output_padding need ", n, " values and pads ", 2 * n);
  if (!outShape.empty()) {
    if (int64_t(outShape.size()) == n + 2)
      outShape.erase(outShape.begin(), outShape.begin() + 2);
    if (int64_t(outShape.size()) != n)
      ctx.fail("output_shape has ", outShape.size(), " values, expected ", n);
  }
  const int64_t kBig = int64_t(1) << 24; // keeps (k-1)*d + (in-1)*s + pads far from overflow
  for (int64_t i = 0; i < n; ++i)
    if (g.strides[i] <= 0 || g.dil[i] <= 0 || kernel[i] <= 0 || outPad[i] < 0 || pads[i] < 0 ||
        pads[i + n] < 0 || g.strides[i] > kBig || g.dil[i] > kBig || kernel[i] > kBig ||
        outPad[i] > kBig || pads[i] > kBig || pads[i + n] > kBig ||
        (!outShape.empty() && outShape[i] > kBig * kBig))
      ctx.fail("strides, dilations and kernel_shape must be positive, pads and output_padding "
               "non-negative (all below 2^24)");
  std::string ap = readAutoPad(ctx);
  g.padB.assign(n, 0);
  g.out.assign(n, -1);
  for (int64_t i = 0; i < n; ++i) {
    int64_t s = g.strides[i];
    int64_t dk = (kernel[i] - 1) * g.dil[i] + 1;
    if (!outShape.empty() || ap == "SAME_UPPER" || ap == "SAME_LOWER") {
      int64_t want = !outShape.empty() ? outShape[i] : (in[i] < 0 ? -1 : in[i] * s);
      if (want < 0 && !outShape.empty())
        ctx.fail("output_shape values must be non-negative");
      if (in[i] < 0)
        continue;
      int64_t full = (in[i] - 1) * s + outPad[i] + dk;
      int64_t total = std::max<int64_t>(0, full - want);
      g.padB[i] = ap == "SAME_UPPER" ? total / 2 : total - total / 2;
      g.out[i] = want;
      continue;
    }
    if (ap == "NOTSET")
      g.padB[i] = pads[i];
    if (in[i] < 0)
      continue;
    int64_t pe = ap == "NOTSET" ? pads[i + n] : 0;
    int64_t o = (in[i] - 1) * s + outPad[i] + dk - g.padB[i] - pe;
    if (o < 0)
      ctx.fail("the output size in spatial dim ", i, " would be negative (", o, ")");
    g.out[i] = o;
  }
  return g;
}

template <class T>
void convTransposeCompute(const T *x, const T *w, const T *b, T *y, int64_t N, int64_t C,
                          int64_t M, int64_t group, const G3 &g) {
  // Here g.in is the input (small) and g.out the output (large) spatial size; s, d, pb relate an
  // input position i and kernel tap k to the output position i*s + k*d - pb.
  int64_t Cg = C / group, Mg = M / group;
  int64_t rows = Mg * g.kSize;
  std::vector<T> col(size_t(checkedNumel({rows, g.inSize}, sizeof(T), "ConvTranspose buffer")));
  for (int64_t n = 0; n < N; ++n) {
    for (int64_t m = 0; m < M; ++m) {
      T *ym = y + (n * M + m) * g.outSize;
      std::fill(ym, ym + g.outSize, b ? b[m] : T(0));
    }
    for (int64_t gi = 0; gi < group; ++gi) {
      const T *xg = x + (n * C + gi * Cg) * g.inSize;
      const T *wg = w + gi * Cg * rows; // [Cg][rows]
      std::fill(col.begin(), col.end(), T(0));
      // col[rows][inSize] = wg^T [rows][Cg] * xg [Cg][inSize]
      gemm<T>(rows, g.inSize, Cg, wg, 1, rows, xg, g.inSize, 1, col.data(), g.inSize);
      for (int64_t m = 0; m < Mg; ++m) {
        T *ym = y + (n * M + gi * Mg + m) * g.outSize;
        for (int64_t kd = 0; kd < g.k[0]; ++kd)
          for (int64_t kh = 0; kh < g.k[1]; ++kh)
            for (int64_t kw = 0; kw < g.k[2]; ++kw) {
              const T *cr = col.data() + (((m * g.k[0] + kd) * g.k[1] + kh) * g.k[2] + kw) * g.inSize;
              for (int64_t id = 0; id < g.in[0]; ++id) {
                int64_t od = id * g.s[0] + kd * g.d[0] - g.pb[0];
                if (od < 0 || od >= g.out[0])
                  continue;
                for (int64_t ih = 0; ih < g.in[1]; ++ih) {
                  int64_t oh = ih * g.s[1] + kh * g.d[1] - g.pb[1];
                  if (oh < 0 || oh >= g.out[1])
                    continue;
                  const T *src = cr + (id * g.in[1] + ih) * g.in[2];
                  T *dst = ym + (od * g.out[1] + oh) * g.out[2];
                  for (int64_t iw = 0; iw < g.in[2]; ++iw) {
                    int64_t ow = iw * g.s[2] + kw * g.d[2] - g.pb[2];
                    if (ow >= 0 && ow < g.out[2])
                      dst[ow] += src[iw];
                  }
                }
              }
            }
      }
    }
  }
}

void convTransposeKernel(KernelContext &ctx) {
  const Tensor &X = ctx.input(0);
  const Tensor &W = ctx.input(1);
  if (X.rank() < 3)
    ctx.fail("input X should have rank >= 3 (N, C, spatial...), got ", X.shapeString());
  if (W.rank() != X.rank())
    ctx.fail("weight W has shape ", W.shapeString(), ", expected rank ", X.rank());
  if (W.dtype() != X.dtype())
    ctx.fail("W has type ", dtypeName(W.dtype()), " but X has ", dtypeName(X.dtype()));
  int64_t group = ctx.attrInt("group", 1);
  int64_t N = X.dim(0), C = X.dim(1);
  if (group <= 0 || C % group != 0)
    ctx.fail("group ", group, " must be positive and divide the input channels ", C);
  if (W.dim(0) != C)
    ctx.fail("W has shape ", W.shapeString(), ": dim 0 should be C = ", C);
  int64_t M = W.dim(1) * group;
  std::vector<int64_t> ks = convKernelShape(ctx, W.shape());
  std::vector<int64_t> in(X.shape().begin() + 2, X.shape().end());
  TGeom tg = convTransposeGeom(ctx, in, ks);
  Geom geo;
  geo.nsp = int64_t(in.size());
  geo.in = in;
  geo.out = tg.out;
  geo.kernel = ks;
  geo.strides = tg.strides;
  geo.dil = tg.dil;
  geo.padB = tg.padB;
  G3 g = to3(ctx, geo);
  Tensor B = convBias(ctx, X, M);
  std::vector<int64_t> outShape{N, M};
  outShape.insert(outShape.end(), tg.out.begin(), tg.out.end());
  DType dt = X.dtype();
  Tensor Xc = toCompute(X), Wc = toCompute(W), Bc = B.defined() ? toCompute(B) : Tensor();
  Tensor Y(computeType(dt), outShape);
  dispatchFloat(
      Y.dtype(),
      [&](auto t) {
        using T = decltype(t);
        if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>)
          convTransposeCompute<T>(Xc.data<T>(), Wc.data<T>(),
                                  Bc.defined() ? Bc.data<T>() : nullptr, Y.data<T>(), N, C, M,
                                  group, g);
      },
      "ConvTranspose");
  ctx.setOutput(0, fromCompute(Y, dt));
}

void convTransposeInfer(InferContext &ctx) {
  const Shape &x = tensorShape(ctx, 0);
  const Shape &w = tensorShape(ctx, 1);
  DType dt = ctx.inputType(0).dtype;
  int64_t nsp = spatialRank(ctx, x, &w);
  if (nsp < 0) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  std::vector<Dim> dims(nsp + 2);
  if (x.rankKnown)
    dims[0] = x.dims[0];
  int64_t group = ctx.attrInt("group", 1);
  if (w.rankKnown && w.rank() == nsp + 2 && w.dims[1].isStatic())
    dims[1] = Dim(w.dims[1].value * group);
  std::vector<int64_t> ks;
  if (ctx.hasAttr("kernel_shape"))
    ks = ctx.attrInts("kernel_shape");
  else if (w.rankKnown && w.rank() == nsp + 2) {
    bool ok = true;
    for (int64_t i = 0; i < nsp; ++i)
      ok = ok && w.dims[2 + i].isStatic();
    if (ok)
      for (int64_t i = 0; i < nsp; ++i)
        ks.push_back(w.dims[2 + i].value);
  }
  if (int64_t(ks.size()) == nsp) {
    TGeom g = convTransposeGeom(ctx, spatialOf(x, nsp), ks);
    for (int64_t i = 0; i < nsp; ++i)
      if (g.out[i] >= 0)
        dims[2 + i] = Dim(g.out[i]);
  }
  ctx.setOutputType(0, Type::tensor(dt, Shape(dims)));
}

//===----------------------------------------------------------------------===//
// Pooling
//===----------------------------------------------------------------------===//

enum class PoolKind { Max, Avg, Lp };

struct PoolAttrs {
  PoolKind kind;
  bool countIncludePad = false;
  int64_t storageOrder = 0;
  double p = 2;
};

template <class T>
void poolCompute(const T *x, T *y, int64_t *ind, int64_t NC, const G3 &g, const Geom &geo,
                 const PoolAttrs &pa) {
  using Acc = std::conditional_t<std::is_same_v<T, double>, double, float>;
  int64_t padE[3] = {0, 0, 0};
  int64_t off = 3 - geo.nsp;
  for (int64_t i = 0; i < geo.nsp; ++i)
    padE[off + i] = geo.padE[i];
  for (int64_t c = 0; c < NC; ++c) {
    const T *xc = x + c * g.inSize;
    T *yc = y + c * g.outSize;
    for (int64_t od = 0; od < g.out[0]; ++od)
      for (int64_t oh = 0; oh < g.out[1]; ++oh)
        for (int64_t ow = 0; ow < g.out[2]; ++ow) {
          int64_t st[3] = {od * g.s[0] - g.pb[0], oh * g.s[1] - g.pb[1], ow * g.s[2] - g.pb[2]};
          int64_t oidx = (od * g.out[1] + oh) * g.out[2] + ow;
          if (pa.kind == PoolKind::Max) {
            bool found = false;
            T best{};
            int64_t bestIdx = 0;
            for (int64_t kd = 0; kd < g.k[0]; ++kd) {
              int64_t id = st[0] + kd * g.d[0];
              if (id < 0 || id >= g.in[0])
                continue;
              for (int64_t kh = 0; kh < g.k[1]; ++kh) {
                int64_t ih = st[1] + kh * g.d[1];
                if (ih < 0 || ih >= g.in[1])
                  continue;
                for (int64_t kw = 0; kw < g.k[2]; ++kw) {
                  int64_t iw = st[2] + kw * g.d[2];
                  if (iw < 0 || iw >= g.in[2])
                    continue;
                  int64_t xi = (id * g.in[1] + ih) * g.in[2] + iw;
                  T v = xc[xi];
                  if (!found || v > best) {
                    best = v;
                    bestIdx = xi;
                    found = true;
                  }
                }
              }
            }
            if (!found) {
              if constexpr (std::numeric_limits<T>::has_infinity)
                best = -std::numeric_limits<T>::infinity();
              else
                best = std::numeric_limits<T>::lowest();
            }
            yc[oidx] = best;
            if (ind) {
              int64_t idx = bestIdx;
              if (pa.storageOrder == 1) {
                // column-major within the image: the spatial index with reversed dim order
                int64_t iw = bestIdx % g.in[2], rest = bestIdx / g.in[2];
                int64_t ih = rest % g.in[1], id = rest / g.in[1];
                idx = (iw * g.in[1] + ih) * g.in[0] + id;
              }
              ind[c * g.outSize + oidx] = c * g.inSize + idx;
            }
            continue;
          }
          Acc sum = 0;
          int64_t cnt = 0;
          for (int64_t kd = 0; kd < g.k[0]; ++kd) {
            int64_t id = st[0] + kd * g.d[0];
            if (id < 0 || id >= g.in[0])
              continue;
            for (int64_t kh = 0; kh < g.k[1]; ++kh) {
              int64_t ih = st[1] + kh * g.d[1];
              if (ih < 0 || ih >= g.in[1])
                continue;
              const T *row = xc + (id * g.in[1] + ih) * g.in[2];
              for (int64_t kw = 0; kw < g.k[2]; ++kw) {
                int64_t iw = st[2] + kw * g.d[2];
                if (iw < 0 || iw >= g.in[2])
                  continue;
                Acc v = Acc(row[iw]);
                if (pa.kind == PoolKind::Avg)
                  sum += v;
                else if (pa.p == 1)
                  sum += std::abs(v);
                else if (pa.p == 2)
                  sum += v * v;
                else
                  sum += Acc(std::pow(std::abs(double(v)), pa.p));
                ++cnt;
              }
            }
          }
          if (pa.kind == PoolKind::Lp) {
            yc[oidx] = T(pa.p == 1   ? sum
                         : pa.p == 2 ? Acc(std::sqrt(double(sum)))
                                     : Acc(std::pow(double(sum), 1.0 / pa.p)));
            continue;
          }
          int64_t div = cnt;
          if (pa.countIncludePad) {
            // window clipped to the padded input (begin pads + input + end pads)
            div = 1;
            for (int a = 0; a < 3; ++a) {
              int64_t lo = st[a];
              int64_t hi = std::min(st[a] + (g.k[a] - 1) * g.d[a] + 1, g.in[a] + padE[a]);
              int64_t n = hi > lo ? (hi - lo + g.d[a] - 1) / g.d[a] : 0;
              div *= n;
            }
          }
          yc[oidx] = div > 0 ? T(sum / Acc(div)) : T(0);
        }
  }
}

Geom poolGeomFor(const AttrReader &ctx, const std::vector<int64_t> &in, bool dilations) {
  std::vector<int64_t> ks = ctx.attrInts("kernel_shape");
  bool ceilMode = ctx.attrInt("ceil_mode", 0) != 0;
  return computeGeom(ctx, in, ks, ceilMode, dilations);
}

KernelFn poolKernel(PoolKind kind) {
  return [kind](KernelContext &ctx) {
    const Tensor &X = ctx.input(0);
    if (X.rank() < 3)
      ctx.fail("input X should have rank >= 3 (N, C, spatial...), got ", X.shapeString());
    std::vector<int64_t> in(X.shape().begin() + 2, X.shape().end());
    Geom geo = poolGeomFor(ctx, in, kind == PoolKind::Max);
    G3 g = to3(ctx, geo);
    PoolAttrs pa;
    pa.kind = kind;
    pa.countIncludePad = ctx.attrInt("count_include_pad", 0) != 0;
    pa.storageOrder = ctx.attrInt("storage_order", 0);
    if (kind == PoolKind::Lp) {
      pa.p = ctx.opset() < 2 ? ctx.attrFloat("p", 2.f) : double(ctx.attrInt("p", 2));
      if (!(pa.p > 0))
        ctx.fail("p must be positive, got ", pa.p);
    }
    std::vector<int64_t> outShape{X.dim(0), X.dim(1)};
    outShape.insert(outShape.end(), geo.out.begin(), geo.out.end());
    DType dt = X.dtype();
    bool wantInd = kind == PoolKind::Max && ctx.hasOutput(1);
    Tensor Ind = wantInd ? Tensor(DType::i64, outShape) : Tensor();
    if (kind != PoolKind::Max && !isFloat(dt))
      ctx.fail("expected a float input, got ", dtypeName(dt));
    Tensor Xc = toCompute(X);
    Tensor Y(Xc.dtype(), outShape);
    dispatchNumeric(
        Xc.dtype(),
        [&](auto t) {
          using T = decltype(t);
          if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16> ||
                        std::is_same_v<T, bool>)
            ctx.fail("unsupported element type ", dtypeName(dt));
          else
            poolCompute<T>(Xc.data<T>(), Y.data<T>(), wantInd ? Ind.data<int64_t>() : nullptr,
                           X.dim(0) * X.dim(1), g, geo, pa);
        },
        "pool");
    ctx.setOutput(0, fromCompute(Y, dt));
    if (wantInd)
      ctx.setOutput(1, Ind);
  };
}

void poolInfer(InferContext &ctx) {
  const Shape &x = tensorShape(ctx, 0);
  DType dt = ctx.inputType(0).dtype;
  int64_t nsp = spatialRank(ctx, x, nullptr);
  Shape s;
  if (nsp >= 0) {
    std::vector<Dim> dims(nsp + 2);
    if (x.rankKnown) {
      dims[0] = x.dims[0];
      dims[1] = x.dims[1];
    }
    if (ctx.hasAttr("kernel_shape")) {
      Geom g = poolGeomFor(ctx, spatialOf(x, nsp), ctx.node().opType == "MaxPool");
      for (int64_t i = 0; i < nsp; ++i)
        if (g.out[i] >= 0)
          dims[2 + i] = Dim(g.out[i]);
    }
    s = Shape(dims);
  }
  ctx.setOutputType(0, Type::tensor(dt, s));
  if (ctx.numOutputs() > 1 && ctx.hasOutput(1))
    ctx.setOutputType(1, Type::tensor(DType::i64, s));
}

KernelFn globalPoolKernel(PoolKind kind) {
  return [kind](KernelContext &ctx) {
    const Tensor &X = ctx.input(0);
    if (X.rank() < 2)
      ctx.fail("input X should have rank >= 2 (N, C, spatial...), got ", X.shapeString());
    if (!isFloat(X.dtype()))
      ctx.fail("expected a float input, got ", dtypeName(X.dtype()));
    std::vector<int64_t> outShape(X.rank(), 1);
    outShape[0] = X.dim(0);
    outShape[1] = X.dim(1);
    int64_t NC = X.dim(0) * X.dim(1);
    int64_t S = NC ? X.numel() / NC : 0;
    double p = 2;
    if (kind == PoolKind::Lp) {
      p = ctx.opset() < 2 ? ctx.attrFloat("p", 2.f) : double(ctx.attrInt("p", 2));
      if (!(p > 0))
        ctx.fail("p must be positive, got ", p);
    }
    DType dt = X.dtype();
    Tensor Xc = toCompute(X);
    Tensor Y(Xc.dtype(), outShape);
    dispatchFloat(Xc.dtype(), [&](auto t) {
      using T = decltype(t);
      if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
        const T *x = Xc.data<T>();
        T *y = Y.data<T>();
        for (int64_t c = 0; c < NC; ++c) {
          const T *xc = x + c * S;
          if (kind == PoolKind::Max) {
            T best = -std::numeric_limits<T>::infinity();
            for (int64_t i = 0; i < S; ++i)
              best = xc[i] > best ? xc[i] : best;
            y[c] = best;
          } else if (kind == PoolKind::Avg) {
            T sum = 0;
            for (int64_t i = 0; i < S; ++i)
              sum += xc[i];
            y[c] = S ? sum / T(S) : T(0);
          } else {
            double sum = 0;
            for (int64_t i = 0; i < S; ++i)
              sum += std::pow(std::abs(double(xc[i])), p);
            y[c] = T(std::pow(sum, 1.0 / p));
          }
        }
      }
    });
    ctx.setOutput(0, fromCompute(Y, dt));
  };
}

void globalPoolInfer(InferContext &ctx) {
  const Shape &x = tensorShape(ctx, 0);
  DType dt = ctx.inputType(0).dtype;
  if (!x.rankKnown) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  if (x.rank() < 2)
    ctx.fail("input X should have rank >= 2 (N, C, spatial...), got ", x.str());
  std::vector<Dim> dims(x.rank(), Dim(1));
  dims[0] = x.dims[0];
  dims[1] = x.dims[1];
  ctx.setOutputType(0, Type::tensor(dt, Shape(dims)));
}

//===----------------------------------------------------------------------===//
// MaxUnpool
//===----------------------------------------------------------------------===//

std::vector<int64_t> maxUnpoolDefaultShape(const AttrReader &ctx, const std::vector<int64_t> &x) {
  int64_t nsp = int64_t(x.size()) - 2;
  std::vector<int64_t> ks = ctx.attrInts("kernel_shape");
  if (int64_t(ks.size()) != nsp)
    ctx.fail("kernel_shape has ", ks.size(), " values, expected ", nsp);
  std::vector<int64_t> strides = ctx.attrInts("strides", std::vector<int64_t>(nsp, 1));
  std::vector<int64_t> pads = ctx.attrInts("pads", std::vector<int64_t>(2 * nsp, 0));
  if (int64_t(strides.size()) != nsp || int64_t(pads.size()) != 2 * nsp)
    ctx.fail("strides need ", nsp, " values and pads ", 2 * nsp);
  std::vector<int64_t> out{x[0], x[1]};
  for (int64_t i = 0; i < nsp; ++i) {
    if (x[2 + i] < 0) {
      out.push_back(-1);
      continue;
    }
    int64_t o = (x[2 + i] - 1) * strides[i] + ks[i] - pads[i] - pads[i + nsp];
    if (o < 0 || strides[i] <= 0 || ks[i] <= 0)
      ctx.fail("invalid kernel_shape/strides/pads: output dim ", i, " would be ", o);
    out.push_back(o);
  }
  return out;
}

void maxUnpoolKernel(KernelContext &ctx) {
  const Tensor &X = ctx.input(0);
  const Tensor &I = ctx.input(1);
  if (X.rank() < 3)
    ctx.fail("input X should have rank >= 3, got ", X.shapeString());
  if (I.shape() != X.shape())
    ctx.fail("indices I have shape ", I.shapeString(), ", expected the shape of X ",
             X.shapeString());
  if (I.dtype() != DType::i64)
    ctx.fail("indices I should be int64, got ", dtypeName(I.dtype()));
  std::vector<int64_t> defShape = maxUnpoolDefaultShape(ctx, X.shape());
  std::vector<int64_t> outShape = defShape;
  if (ctx.hasInput(2)) {
    const Tensor &os = ctx.input(2);
    if (os.rank() != 1 || os.numel() != X.rank())
      ctx.fail("output_shape has shape ", os.shapeString(), ", expected [", X.rank(), "]");
    outShape = os.toInt64Vector();
    if (outShape[0] != X.dim(0) || outShape[1] != X.dim(1))
      ctx.fail("output_shape ", shapeToString(outShape), " must keep N and C of X ",
             X.shapeString());
  }
  Tensor Y(X.dtype(), outShape);
  const int64_t *idx = I.data<int64_t>();
  int64_t total = Y.numel();
  // Indices address the default output (the shape MaxPool's input had); with a different
  // output_shape each index keeps its coordinates (as the ONNX reference does).
  bool remap = outShape != defShape;
  int64_t defTotal = 1;
  for (int64_t d : defShape)
    defTotal *= d;
  std::vector<int64_t> outStr = stridesOf(outShape);
  int64_t rank = X.rank();
  dispatchAll(X.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *x = X.data<T>();
    T *y = Y.data<T>();
    for (int64_t k = 0; k < X.numel(); ++k) {
      int64_t j = idx[k];
      if (remap) {
        if (j < 0 || j >= defTotal)
          ctx.fail("index ", j, " at position ", k, " is out of range for the pooled input of ",
                   defTotal, " elements");
        int64_t rest = j, nj = 0;
        for (int64_t d = rank - 1; d >= 0; --d) {
          int64_t c = rest % defShape[d];
          rest /= defShape[d];
          if (c >= outShape[d])
            ctx.fail("index ", j, " at position ", k, " falls outside output_shape ",
                     shapeToString(outShape));
          nj += c * outStr[d];
        }
        j = nj;
      }
      if (j < 0 || j >= total)
        ctx.fail("index ", j, " at position ", k, " is out of range for the output of ", total,
                 " elements");
      y[j] = x[k];
    }
  });
  ctx.setOutput(0, Y);
}

void maxUnpoolInfer(InferContext &ctx) {
  const Shape &x = tensorShape(ctx, 0);
  DType dt = ctx.inputType(0).dtype;
  if (ctx.numInputs() > 2 && ctx.hasInput(2)) {
    if (const Tensor *c = ctx.inputConstant(2)) {
      ctx.setOutputType(0, Type::tensor(dt, Shape::of(c->toInt64Vector())));
      return;
    }
    const Shape &os = tensorShape(ctx, 2);
    if (os.rankKnown && os.rank() == 1 && os.dims[0].isStatic())
      ctx.setOutputType(0, Type::tensor(dt, unknownDimsOrRank(os.dims[0].value)));
    else
      ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  if (!x.rankKnown) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  if (x.rank() < 3)
    ctx.fail("input X should have rank >= 3, got ", x.str());
  std::vector<int64_t> xs(x.rank(), -1);
  for (int64_t i = 0; i < x.rank(); ++i)
    if (x.dims[i].isStatic())
      xs[i] = x.dims[i].value;
  std::vector<int64_t> o = maxUnpoolDefaultShape(ctx, xs);
  std::vector<Dim> dims(o.size());
  dims[0] = x.dims[0];
  dims[1] = x.dims[1];
  for (size_t i = 2; i < o.size(); ++i)
    if (o[i] >= 0)
      dims[i] = Dim(o[i]);
  ctx.setOutputType(0, Type::tensor(dt, Shape(dims)));
}

//===----------------------------------------------------------------------===//
// MatMul
//===----------------------------------------------------------------------===//

void matmulKernel(KernelContext &ctx) {
  const Tensor &A0 = ctx.input(0);
  const Tensor &B0 = ctx.input(1);
  if (A0.dtype() != B0.dtype())
    ctx.fail("A has type ", dtypeName(A0.dtype()), " but B has ", dtypeName(B0.dtype()));
  if (A0.rank() == 0 || B0.rank() == 0)
    ctx.fail("MatMul operands must have rank >= 1, got ", A0.shapeString(), " and ",
             B0.shapeString());
  std::vector<int64_t> as = A0.shape(), bs = B0.shape();
  bool aVec = as.size() == 1, bVec = bs.size() == 1;
  if (aVec)
    as.insert(as.begin(), 1);
  if (bVec)
    bs.push_back(1);
  int64_t M = as[as.size() - 2], K = as.back(), N = bs.back();
  if (bs[bs.size() - 2] != K)
    ctx.fail("inner dimensions differ: A ", A0.shapeString(), ", B ", B0.shapeString());
  std::vector<int64_t> ab(as.begin(), as.end() - 2), bb(bs.begin(), bs.end() - 2);
  std::vector<int64_t> batch = broadcastStatic(ctx, ab, bb);
  std::vector<int64_t> outShape = batch;
  if (!aVec)
    outShape.push_back(M);
  if (!bVec)
    outShape.push_back(N);
  DType dt = A0.dtype();
  if (dt == DType::boolean || dt == DType::string)
    ctx.fail("unsupported element type ", dtypeName(dt));
  Tensor A = toCompute(A0), B = toCompute(B0);
  Tensor Y(A.dtype(), outShape);
  int64_t nb = 1;
  for (int64_t d : batch)
    nb *= d;
  // batch offsets of A and B (broadcast strides over the batch dims)
  std::vector<int64_t> aStr = broadcastStrides(ab, batch), bStr = broadcastStrides(bb, batch);
  bool bShared = true;
  for (int64_t s : bStr)
    bShared = bShared && s == 0;
  bool aContig = ab.size() == batch.size() && ab == batch;
  dispatchNumeric(A.dtype(), [&](auto t) {
    using T = decltype(t);
    if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16> ||
                  std::is_same_v<T, bool>) {
      ctx.fail("unsupported element type");
    } else {
      const T *a = A.data<T>();
      const T *b = B.data<T>();
      T *y = Y.data<T>();
      if (bShared && aContig) {
        // One GEMM over all rows of A: [nb*M, K] x [K, N].
        gemm<T>(nb * M, N, K, a, K, 1, b, N, 1, y, N);
        return;
      }
      std::vector<int64_t> idx(batch.size(), 0);
      for (int64_t i = 0; i < nb; ++i) {
        int64_t ao = 0, bo = 0;
        for (size_t d = 0; d < batch.size(); ++d) {
          ao += idx[d] * aStr[d];
          bo += idx[d] * bStr[d];
        }
        gemm<T>(M, N, K, a + ao * M * K, K, 1, b + bo * K * N, N, 1, y + i * M * N, N);
        for (int64_t d = int64_t(batch.size()) - 1; d >= 0; --d) {
          if (++idx[d] < batch[d])
            break;
          idx[d] = 0;
        }
      }
    }
  });
  ctx.setOutput(0, fromCompute(Y, dt));
}

void matmulInfer(InferContext &ctx) {
  const Shape &a = tensorShape(ctx, 0);
  const Shape &b = tensorShape(ctx, 1);
  DType dt = ctx.inputType(0).dtype;
  if (!a.rankKnown || !b.rankKnown) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  if (a.rank() == 0 || b.rank() == 0)
    ctx.fail("MatMul operands must have rank >= 1, got ", a.str(), " and ", b.str());
  std::vector<Dim> ad = a.dims, bd = b.dims;
  bool aVec = ad.size() == 1, bVec = bd.size() == 1;
  if (aVec)
    ad.insert(ad.begin(), Dim(1));
  if (bVec)
    bd.push_back(Dim(1));
  const Dim &ka = ad.back(), &kb = bd[bd.size() - 2];
  if (ka.isStatic() && kb.isStatic() && ka.value != kb.value)
    ctx.fail("inner dimensions differ: A ", a.str(), ", B ", b.str());
  Shape batch = broadcastShapes(ctx, Shape(std::vector<Dim>(ad.begin(), ad.end() - 2)),
                                Shape(std::vector<Dim>(bd.begin(), bd.end() - 2)));
  std::vector<Dim> out = batch.dims;
  if (!aVec)
    out.push_back(ad[ad.size() - 2]);
  if (!bVec)
    out.push_back(bd.back());
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

//===----------------------------------------------------------------------===//
// Gemm
//===----------------------------------------------------------------------===//

void gemmKernel(KernelContext &ctx) {
  const Tensor &A0 = ctx.input(0);
  const Tensor &B0 = ctx.input(1);
  if (A0.rank() != 2 || B0.rank() != 2)
    ctx.fail("A and B must be matrices, got ", A0.shapeString(), " and ", B0.shapeString());
  if (A0.dtype() != B0.dtype())
    ctx.fail("A has type ", dtypeName(A0.dtype()), " but B has ", dtypeName(B0.dtype()));
  bool tA = ctx.attrInt("transA", 0) != 0, tB = ctx.attrInt("transB", 0) != 0;
  float alpha = ctx.attrFloat("alpha", 1.f), beta = ctx.attrFloat("beta", 1.f);
  int64_t M = tA ? A0.dim(1) : A0.dim(0), K = tA ? A0.dim(0) : A0.dim(1);
  int64_t Kb = tB ? B0.dim(1) : B0.dim(0), N = tB ? B0.dim(0) : B0.dim(1);
  if (K != Kb)
    ctx.fail("inner dimensions differ: A ", A0.shapeString(), (tA ? " (transposed)" : ""), ", B ",
             B0.shapeString(), (tB ? " (transposed)" : ""));
  DType dt = A0.dtype();
  Tensor A = toCompute(A0), B = toCompute(B0);
  Tensor C;
  if (ctx.hasInput(2)) {
    C = toCompute(ctx.input(2));
    if (ctx.input(2).dtype() != dt)
      ctx.fail("C has type ", dtypeName(ctx.input(2).dtype()), " but A has ", dtypeName(dt));
    if (C.rank() > 2)
      ctx.fail("C has shape ", C.shapeString(), ", expected rank <= 2");
    std::vector<int64_t> bc = broadcastStatic(ctx, C.shape(), {M, N});
    if (bc != std::vector<int64_t>{M, N})
      ctx.fail("C of shape ", C.shapeString(), " cannot be broadcast to [", M, ",", N, "]");
  }
  Tensor Y(A.dtype(), {M, N});
  dispatchNumeric(A.dtype(), [&](auto t) {
    using T = decltype(t);
    if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16> ||
                  std::is_same_v<T, bool>) {
      ctx.fail("unsupported element type");
    } else {
      T *y = Y.data<T>();
      if (C.defined() && beta != 0) {
        const T *c = C.data<T>();
        std::vector<int64_t> cs = C.shape();
        while (cs.size() < 2)
          cs.insert(cs.begin(), 1);
        int64_t rs = cs[0] == 1 ? 0 : cs[1], csd = cs[1] == 1 ? 0 : 1;
        for (int64_t i = 0; i < M; ++i)
          for (int64_t j = 0; j < N; ++j)
            y[i * N + j] = T(beta * c[i * rs + j * csd]);
      }
      const T *a = A.data<T>();
      const T *b = B.data<T>();
      int64_t rsA = tA ? 1 : K, csA = tA ? M : 1;
      int64_t rsB = tB ? 1 : N, csB = tB ? K : 1;
      gemm<T>(M, N, K, a, rsA, csA, b, rsB, csB, y, N, T(alpha));
    }
  });
  ctx.setOutput(0, fromCompute(Y, dt));
}

void gemmInfer(InferContext &ctx) {
  const Shape &a = tensorShape(ctx, 0);
  const Shape &b = tensorShape(ctx, 1);
  DType dt = ctx.inputType(0).dtype;
  bool tA = ctx.attrInt("transA", 0) != 0, tB = ctx.attrInt("transB", 0) != 0;
  Dim M, N;
  if (a.rankKnown) {
    if (a.rank() != 2)
      ctx.fail("A must be a matrix, got ", a.str());
    M = a.dims[tA ? 1 : 0];
  }
  if (b.rankKnown) {
    if (b.rank() != 2)
      ctx.fail("B must be a matrix, got ", b.str());
    N = b.dims[tB ? 0 : 1];
  }
  // The inner dimensions must agree: checked here so that a mismatch is an import error, not a
  // run-time one after every producer has been computed.
  if (a.rankKnown && b.rankKnown) {
    const Dim &ka = a.dims[tA ? 0 : 1], &kb = b.dims[tB ? 1 : 0];
    if (ka.isStatic() && kb.isStatic() && ka.value != kb.value)
      ctx.fail("inner dimensions differ: A ", a.str(), (tA ? " (transposed)" : ""), ", B ",
               b.str(), (tB ? " (transposed)" : ""));
  }
  ctx.setOutputType(0, Type::tensor(dt, Shape({M, N})));
}

//===----------------------------------------------------------------------===//
// Einsum
//===----------------------------------------------------------------------===//

/// Labels: 'a'..'z' -> 0..25, 'A'..'Z' -> 26..51 (in the implicit output ordered by ASCII, so
/// uppercase first), ellipsis dims -> 52 + position (right-aligned over all operands).
constexpr int kEllBase = 52;

int labelOf(char c) {
  if (c >= 'a' && c <= 'z')
    return c - 'a';
  if (c >= 'A' && c <= 'Z')
    return 26 + (c - 'A');
  return -1;
}

struct EinsumTerm {
  std::vector<int> labels; // letters in order; -1 marks the ellipsis position
  bool hasEll = false;
};

struct EinsumSpec {
  std::vector<EinsumTerm> inputs;
  EinsumTerm output;
  bool explicitOut = false;
};

EinsumSpec parseEinsum(const AttrReader &ctx, const std::string &eq0) {
  std::string eq;
  for (char c : eq0)
    if (c != ' ')
      eq += c;
  EinsumSpec spec;
  std::string lhs = eq, rhs;
  size_t arrow = eq.find("->");
  if (arrow != std::string::npos) {
    lhs = eq.substr(0, arrow);
    rhs = eq.substr(arrow + 2);
    spec.explicitOut = true;
  }
  auto parseTerm = [&](const std::string &s) {
    EinsumTerm t;
    for (size_t i = 0; i < s.size(); ++i) {
      if (s[i] == '.') {
        if (s.compare(i, 3, "...") != 0 || t.hasEll)
          ctx.fail("malformed ellipsis in einsum term '", s, "' of '", eq0, "'");
        t.hasEll = true;
        t.labels.push_back(-1);
        i += 2;
        continue;
      }
      int l = labelOf(s[i]);
      if (l < 0)
        ctx.fail("invalid character '", s[i], "' in einsum equation '", eq0, "'");
      t.labels.push_back(l);
    }
    return t;
  };
  size_t start = 0;
  while (true) {
    size_t comma = lhs.find(',', start);
    spec.inputs.push_back(parseTerm(lhs.substr(start, comma - start)));
    if (comma == std::string::npos)
      break;
    start = comma + 1;
  }
  if (spec.explicitOut)
    spec.output = parseTerm(rhs);
  return spec;
}

struct EinsumPlan {
  std::vector<int> outLabels;             // output dims, as label ids
  std::vector<int> redLabels;             // summed labels
  std::vector<std::vector<int>> inLabels; // per input, per dim: label id
  int ellRank = 0;
};

/// Resolves labels for inputs of the given ranks (-1 = unknown rank: then ellRank may be wrong
/// and `ok` is false).
EinsumPlan planEinsum(const AttrReader &ctx, const EinsumSpec &spec,
                      const std::vector<int64_t> &ranks, bool &ok) {
  ok = true;
  EinsumPlan p;
  if (spec.inputs.size() != ranks.size())
    ctx.fail("the einsum equation has ", spec.inputs.size(), " operands but the node has ",
             ranks.size(), " inputs");
  std::vector<int> ellOf(ranks.size(), 0);
  for (size_t i = 0; i < ranks.size(); ++i) {
    const EinsumTerm &t = spec.inputs[i];
    int letters = int(t.labels.size()) - (t.hasEll ? 1 : 0);
    if (ranks[i] < 0) {
      if (t.hasEll)
        ok = false;
      continue;
    }
    if (!t.hasEll && ranks[i] != letters)
      ctx.fail("einsum operand ", i, " has rank ", ranks[i], " but its term has ", letters,
               " labels");
    if (t.hasEll && ranks[i] < letters)
      ctx.fail("einsum operand ", i, " has rank ", ranks[i], ", less than its ", letters,
               " labels");
    ellOf[i] = t.hasEll ? int(ranks[i]) - letters : 0;
    p.ellRank = std::max(p.ellRank, ellOf[i]);
  }
  if (p.ellRank > 64)
    ctx.fail("too many ellipsis dims");
  int count[kEllBase] = {};
  p.inLabels.resize(ranks.size());
  for (size_t i = 0; i < ranks.size(); ++i) {
    for (int l : spec.inputs[i].labels) {
      if (l < 0) {
        for (int e = 0; e < ellOf[i]; ++e)
          p.inLabels[i].push_back(kEllBase + (p.ellRank - ellOf[i]) + e);
        continue;
      }
      p.inLabels[i].push_back(l);
      ++count[l];
    }
  }
  bool used[kEllBase + 64] = {};
  if (spec.explicitOut) {
    for (int l : spec.output.labels) {
      if (l < 0) {
        for (int e = 0; e < p.ellRank; ++e)
          p.outLabels.push_back(kEllBase + e);
        continue;
      }
      if (!count[l])
        ctx.fail("output label '", char(l < 26 ? 'a' + l : 'A' + l - 26),
                 "' does not appear in any input");
      if (used[l])
        ctx.fail("output label '", char(l < 26 ? 'a' + l : 'A' + l - 26), "' repeated");
      used[l] = true;
      p.outLabels.push_back(l);
    }
    if (!spec.output.hasEll)
      for (int e = 0; e < p.ellRank; ++e) // ellipsis dims not in the output are summed
        p.redLabels.push_back(kEllBase + e);
  } else {
    for (int e = 0; e < p.ellRank; ++e)
      p.outLabels.push_back(kEllBase + e);
    for (int l = 26; l < 52; ++l) // uppercase first (ASCII order)
      if (count[l] == 1)
        p.outLabels.push_back(l);
    for (int l = 0; l < 26; ++l)
      if (count[l] == 1)
        p.outLabels.push_back(l);
  }
  for (int l : p.outLabels)
    used[l] = true;
  for (int l = 0; l < kEllBase; ++l)
    if (count[l] && !used[l])
      p.redLabels.push_back(l);
  return p;
}

void einsumKernel(KernelContext &ctx) {
  EinsumSpec spec = parseEinsum(ctx, ctx.attrString("equation"));
  size_t n = ctx.numInputs();
  std::vector<Tensor> ins(n);
  std::vector<int64_t> ranks(n);
  DType dt = ctx.input(0).dtype();
  for (size_t i = 0; i < n; ++i) {
    if (ctx.input(i).dtype() != dt)
      ctx.fail("all inputs must have the same type; input ", i, " is ",
               dtypeName(ctx.input(i).dtype()), ", input 0 is ", dtypeName(dt));
    ins[i] = toCompute(ctx.input(i));
    ranks[i] = ins[i].rank();
  }
  bool ok;
  EinsumPlan p = planEinsum(ctx, spec, ranks, ok);
  const int NL = kEllBase + 64;
  std::vector<int64_t> size(NL, -1);
  for (size_t i = 0; i < n; ++i)
    for (size_t d = 0; d < p.inLabels[i].size(); ++d) {
      int l = p.inLabels[i][d];
      int64_t s = ins[i].dim(int64_t(d));
      if (size[l] < 0 || size[l] == s)
        size[l] = s;
      else if (l >= kEllBase && (size[l] == 1 || s == 1))
        size[l] = std::max(size[l], s);
      else
        ctx.fail("einsum label dims disagree: ", size[l], " vs ", s, " (input ", i, ", dim ", d,
                 ")");
    }
  for (int l = kEllBase; l < kEllBase + p.ellRank; ++l)
    if (size[l] < 0)
      size[l] = 1;
  // Loop order: output labels then reduction labels; strides per input per loop label.
  std::vector<int> loops = p.outLabels;
  loops.insert(loops.end(), p.redLabels.begin(), p.redLabels.end());
  size_t L = loops.size(), nOut = p.outLabels.size();
  std::vector<int64_t> extent(L);
  std::vector<int> pos(NL, -1);
  for (size_t k = 0; k < L; ++k) {
    extent[k] = size[loops[k]];
    pos[loops[k]] = int(k);
  }
  std::vector<std::vector<int64_t>> str(n, std::vector<int64_t>(L, 0));
  for (size_t i = 0; i < n; ++i) {
    std::vector<int64_t> st = stridesOf(ins[i].shape());
    for (size_t d = 0; d < p.inLabels[i].size(); ++d) {
      int l = p.inLabels[i][d];
      if (ins[i].dim(int64_t(d)) == 1 && size[l] != 1)
        continue; // broadcast
      str[i][pos[l]] += st[d];
    }
  }
  std::vector<int64_t> outShape(extent.begin(), extent.begin() + nOut);
  Tensor Y(ins[0].dtype(), outShape);
  int64_t outN = Y.numel(), redN = 1;
  for (size_t k = nOut; k < L; ++k) {
    redN *= extent[k];
    if (redN > (int64_t(1) << 40))
      ctx.fail("einsum reduction too large");
  }
  if (double(outN) * double(redN) > 4e10)
    ctx.fail("einsum '", ctx.attrString("equation"), "' needs ", double(outN) * double(redN),
             " multiply-adds; too many for the reference kernel");
  if (outN == 0) {
    ctx.setOutput(0, fromCompute(Y, dt));
    return;
  }
  dispatchNumeric(Y.dtype(), [&](auto t) {
    using T = decltype(t);
    if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16> ||
                  std::is_same_v<T, bool>) {
      ctx.fail("unsupported element type");
    } else {
      std::vector<const T *> src(n);
      for (size_t i = 0; i < n; ++i)
        src[i] = ins[i].data<T>();
      T *y = Y.data<T>();
      std::vector<int64_t> idx(L, 0), off(n, 0);
      if (redN == 0)
        return;
      for (int64_t o = 0; o < outN; ++o) {
        // offsets of this output element, reduction index at 0
        T acc = T(0);
        for (int64_t r = 0; r < redN; ++r) {
          T prod = T(1);
          for (size_t i = 0; i < n; ++i)
            prod *= src[i][off[i]];
          acc += prod;
          // advance the reduction odometer
          for (int64_t k = int64_t(L) - 1; k >= int64_t(nOut); --k) {
            ++idx[k];
            for (size_t i = 0; i < n; ++i)
              off[i] += str[i][k];
            if (idx[k] < extent[k])
              break;
            for (size_t i = 0; i < n; ++i)
              off[i] -= str[i][k] * extent[k];
            idx[k] = 0;
          }
        }
        y[o] = acc;
        for (int64_t k = int64_t(nOut) - 1; k >= 0; --k) {
          ++idx[k];
          for (size_t i = 0; i < n; ++i)
            off[i] += str[i][k];
          if (idx[k] < extent[k])
            break;
          for (size_t i = 0; i < n; ++i)
            off[i] -= str[i][k] * extent[k];
          idx[k] = 0;
        }
      }
    }
  });
  ctx.setOutput(0, fromCompute(Y, dt));
}

void einsumInfer(InferContext &ctx) {
  EinsumSpec spec = parseEinsum(ctx, ctx.attrString("equation"));
  size_t n = ctx.numInputs();
  DType dt = ctx.inputType(0).dtype;
  std::vector<int64_t> ranks(n);
  for (size_t i = 0; i < n; ++i) {
    const Shape &s = tensorShape(ctx, i);
    ranks[i] = s.rankKnown ? s.rank() : -1;
  }
  bool ok;
  EinsumPlan p = planEinsum(ctx, spec, ranks, ok);
  if (!ok) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  std::vector<Dim> label(kEllBase + 64);
  for (size_t i = 0; i < n; ++i) {
    const Shape &s = tensorShape(ctx, i);
    if (!s.rankKnown)
      continue;
    for (size_t d = 0; d < p.inLabels[i].size(); ++d) {
      int l = p.inLabels[i][d];
      const Dim &dd = s.dims[d];
      if (l >= kEllBase) {
        // broadcast: a static 1 gives way to anything
        if (label[l].isUnknown() && !(i > 0 && label[l].isStatic()))
          label[l] = dd;
        else if (label[l].isStatic() && label[l].value == 1)
          label[l] = dd;
        else if (dd.isStatic() && dd.value != 1 && !label[l].isStatic())
          label[l] = dd;
        continue;
      }
      if (label[l].isUnknown() || (dd.isStatic() && !label[l].isStatic()))
        label[l] = dd;
    }
  }
  // An ellipsis label seen only in some operands of unknown size stays unknown; if never seen, 1.
  std::vector<Dim> out;
  for (int l : p.outLabels) {
    bool seen = false;
    for (auto &il : p.inLabels)
      for (int x : il)
        seen = seen || x == l;
    out.push_back(seen ? label[l] : Dim(1));
  }
  ctx.setOutputType(0, Type::tensor(dt, Shape(out)));
}

//===----------------------------------------------------------------------===//
// Det
//===----------------------------------------------------------------------===//

void detKernel(KernelContext &ctx) {
  const Tensor &X = ctx.input(0);
  if (X.rank() < 2 || X.dim(X.rank() - 1) != X.dim(X.rank() - 2))
    ctx.fail("input should be [..., M, M], got ", X.shapeString());
  if (!isFloat(X.dtype()))
    ctx.fail("expected a float input, got ", dtypeName(X.dtype()));
  int64_t M = X.dim(X.rank() - 1);
  std::vector<int64_t> outShape(X.shape().begin(), X.shape().end() - 2);
  Tensor Y(X.dtype(), outShape);
  int64_t nb = Y.numel();
  std::vector<double> a(size_t(M * M));
  dispatchFloat(X.dtype(), [&](auto t) {
    using T = decltype(t);
    const T *x = X.data<T>();
    T *y = Y.data<T>();
    for (int64_t b = 0; b < nb; ++b) {
      for (int64_t i = 0; i < M * M; ++i) {
        if constexpr (std::is_same_v<T, double>)
          a[i] = x[b * M * M + i];
        else
          a[i] = double(float(x[b * M * M + i]));
      }
      double det = 1;
      for (int64_t c = 0; c < M; ++c) {
        int64_t piv = c;
        for (int64_t r = c + 1; r < M; ++r)
          if (std::abs(a[r * M + c]) > std::abs(a[piv * M + c]))
            piv = r;
        if (a[piv * M + c] == 0) {
          det = 0;
          break;
        }
        if (piv != c) {
          for (int64_t j = 0; j < M; ++j)
            std::swap(a[c * M + j], a[piv * M + j]);
          det = -det;
        }
        double d = a[c * M + c];
        det *= d;
        for (int64_t r = c + 1; r < M; ++r) {
          double f = a[r * M + c] / d;
          if (f == 0)
            continue;
          for (int64_t j = c; j < M; ++j)
            a[r * M + j] -= f * a[c * M + j];
        }
      }
      y[b] = T(det);
    }
  });
  ctx.setOutput(0, Y);
}

void detInfer(InferContext &ctx) {
  const Shape &x = tensorShape(ctx, 0);
  DType dt = ctx.inputType(0).dtype;
  if (!x.rankKnown) {
    ctx.setOutputType(0, Type::tensor(dt));
    return;
  }
  if (x.rank() < 2)
    ctx.fail("input should be [..., M, M], got ", x.str());
  ctx.setOutputType(0, Type::tensor(dt, Shape(std::vector<Dim>(x.dims.begin(), x.dims.end() - 2))));
}

} // namespace

// --- lowerings of the NN ops
// Conv, pools, MatMul and Gemm as TE computes: an explicit zero/-inf padding stage where there
// are pads (TVM's pad compute: schedules can inline it or compute it at the consumer), then one
// reduction over the window (and the channels of the group for Conv). Geometry (auto_pad,
// strides, dilations, ceil_mode) comes from computeGeom, the same code the reference kernel uses.
// Det is the reference's elimination with partial pivoting, one group of stored stages per
// column (lowerDet).
namespace {

using loop::Expr;
using loop::Var;

/// X padded with `value` by (padB, padE) in the spatial dims (2..); X itself when no pads.
te::Tensor padSpatial(const LowerContext &ctx, const te::Tensor &X, const std::vector<int64_t> &xs,
                      const Geom &g, Expr value) {
  bool any = false;
  for (int64_t i = 0; i < g.nsp; ++i)
    any |= g.padB[i] || g.padE[i];
  if (!any)
    return X;
  std::vector<int64_t> ps = xs;
  for (int64_t i = 0; i < g.nsp; ++i)
    ps[2 + i] += g.padB[i] + g.padE[i];
  return ctx.compute(lowering::shapeExprs(ps), [&](std::vector<Var> iv) {
    std::vector<Expr> idx(iv.begin(), iv.end());
    for (int64_t i = 0; i < g.nsp; ++i)
      idx[2 + i] = idx[2 + i] - g.padB[i];
    return lowering::loadPadded(X, idx, xs, value);
  }, "pad");
}

void lowerConv(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0), ws = ctx.inputShape(1);
  ctx.check(xs.size() >= 3 && ws.size() == xs.size(), "lowering expects X as [N, C, spatial...] and W of the same rank, got ",
            shapeToString(xs), " and ", shapeToString(ws));
  DType dt = ctx.inputDType(0);
  ctx.check(isFloat(dt), "lowering of Conv handles float inputs only, got ", dtypeName(dt));
  int64_t nsp = int64_t(xs.size()) - 2;
  std::vector<int64_t> in(xs.begin() + 2, xs.end());
  std::vector<int64_t> ks = ctx.attrInts("kernel_shape", std::vector<int64_t>(ws.begin() + 2, ws.end()));
  Geom g = computeGeom(ctx, in, ks, false);
  int64_t group = ctx.attrInt("group", 1);
  int64_t M = ws[0], Cg = ws[1];
  ctx.check(group > 0 && xs[1] == Cg * group && M % group == 0, "channels do not match: X has ",
            xs[1], ", W has ", Cg, " per group, group = ", group, ", M = ", M);
  int64_t Mg = M / group;
  te::Tensor Xp = padSpatial(ctx, ctx.input(0), xs, g, lowering::constant(dt, 0));
  te::Tensor W = ctx.input(1);
  std::vector<te::IterVar> red;
  red.push_back(te::reduce_axis({0, Cg}, "rc"));
  for (int64_t i = 0; i < nsp; ++i)
    red.push_back(te::reduce_axis({0, ks[i]}, "rk" + std::to_string(i)));
  std::vector<int64_t> out = ctx.outputShape(0);
  bool bias = ctx.hasInput(2);
  te::Tensor Y = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    Expr cin = group == 1 ? Expr(red[0]) : Expr(iv[1] / Mg * Cg + red[0]);
    std::vector<Expr> xi{iv[0], cin}, wi{iv[1], red[0]};
    for (int64_t i = 0; i < nsp; ++i) {
      xi.push_back(iv[2 + i] * g.strides[i] + red[1 + i] * g.dil[i]);
      wi.push_back(red[1 + i]);
    }
    return te::sum(Xp.access(xi) * W.access(wi), red);
  }, bias ? "nobias" : "");
  if (bias) {
    te::Tensor B = ctx.input(2);
    ctx.check(ctx.inputShape(2) == std::vector<int64_t>{M}, "bias B should have shape [", M, "], got ",
              shapeToString(ctx.inputShape(2)));
    Y = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
      std::vector<Expr> idx(iv.begin(), iv.end());
      return Y.access(idx) + B(iv[1]);
    });
  }
  ctx.setOutput(0, Y);
}

enum class LPool { Max, Avg };

/// One reduce axis per spatial dim of a pool window.
std::vector<te::IterVar> poolWindowAxes(const Geom &g) {
  std::vector<te::IterVar> red;
  for (size_t i = 0; i < g.kernel.size(); ++i)
    red.push_back(te::reduce_axis({0, g.kernel[i]}, "rk" + std::to_string(i)));
  return red;
}

/// The input index of tap `red` of pool output `iv` (may fall in the pads or past the end).
std::vector<Expr> poolTapIndex(const Geom &g, const std::vector<te::IterVar> &red,
                               const std::vector<Var> &iv) {
  std::vector<Expr> idx{iv[0], iv[1]};
  for (size_t i = 0; i < red.size(); ++i)
    idx.push_back(iv[2 + i] * g.strides[i] - g.padB[i] + red[i] * g.dil[i]);
  return idx;
}

/// What a max pool's padding taps read: -inf for floats, the type's lowest value otherwise.
Expr maxPoolPadValue(DType dt) {
  return isFloat(dt) ? loop::makeConst(loop::Type(dt), -double(INFINITY))
                     : te::reduceIdentity(loop::ReduceOp::Max, loop::Type(dt));
}

/// MaxPool's Indices output as the reference kernel picks it: taps in order (row-major over
/// the window, which is row-major over the image), the first in-bounds tap starts as the best
/// and a later tap replaces it only when strictly greater, so the index is that of the first
/// in-bounds tap when its value is NaN, else of the first in-bounds tap holding the maximum of
/// the window's other values (NaN never wins later), flattened over [N * C, spatial...]
/// (storage_order 1: the spatial dims in reverse order). Returns the values output to use:
/// `Y` (the plain max, which skips NaN) with NaN where the first in-bounds tap is NaN, as the
/// reference (a MaxPool without Indices keeps the plain max: docs/lowering.md).
te::Tensor lowerMaxPoolIndices(LowerContext &ctx, const te::Tensor &X, const te::Tensor &Y,
                               const std::vector<int64_t> &xs, const std::vector<int64_t> &out,
                               const Geom &g) {
  const int64_t nsp = int64_t(xs.size()) - 2;
  const DType dt = ctx.inputDType(0);
  int64_t inSize = 1;
  for (int64_t i = 0; i < nsp; ++i)
    inSize *= xs[2 + i];
  const Expr none = Expr(inSize); // past every tap
  auto inBounds = [&](const std::vector<Expr> &idx) {
    Expr ok;
    for (int64_t i = 0; i < nsp; ++i) {
      Expr c = (idx[2 + i] >= int64_t(0)) && (idx[2 + i] < xs[2 + i]);
      ok = ok.defined() ? (ok && c) : c;
    }
    return ok;
  };
  const std::vector<int64_t> spatial(xs.begin() + 2, xs.end());
  auto flat = [&](const std::vector<Expr> &idx) { // row-major spatial index
    return lowering::rowMajorIndex(std::vector<Expr>(idx.begin() + 2, idx.end()), spatial);
  };
  auto tapValue = [&](const std::vector<Expr> &idx) {
    return lowering::loadPadded(X, idx, xs, lowering::constant(dt, 0));
  };
  const bool isF = isFloat(dt);
  const Expr lowest = maxPoolPadValue(dt);
  // The first in-bounds tap, the first NaN tap, and the maximum of the values that are not NaN.
  std::vector<te::IterVar> r1 = poolWindowAxes(g), r2 = poolWindowAxes(g), r3 = poolWindowAxes(g),
                           r4 = poolWindowAxes(g);
  te::Tensor First = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    std::vector<Expr> idx = poolTapIndex(g, r1, iv);
    return te::min(loop::select(inBounds(idx), flat(idx), none), r1);
  }, "first_tap");
  te::Tensor FirstNaN, Max;
  if (isF)
    FirstNaN = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
      std::vector<Expr> idx = poolTapIndex(g, r2, iv);
      Expr v = tapValue(idx);
      return te::min(loop::select(inBounds(idx) && (v != v), flat(idx), none), r2);
    }, "first_nan");
  Max = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    std::vector<Expr> idx = poolTapIndex(g, r3, iv);
    Expr v = tapValue(idx);
    Expr skip = isF ? Expr(!inBounds(idx) || (v != v)) : Expr(!inBounds(idx));
    return te::max(loop::select(skip, lowest, v), r3);
  }, "max_not_nan");
  te::Tensor Best = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    std::vector<Expr> idx = poolTapIndex(g, r4, iv);
    std::vector<Expr> o(iv.begin(), iv.end());
    Expr hit = inBounds(idx) && (tapValue(idx) == Max.access(o));
    return te::min(loop::select(hit, flat(idx), none), r4);
  }, "first_max");
  const bool columnMajor = ctx.attrInt("storage_order", 0) == 1;
  ctx.setOutput(1, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    std::vector<Expr> o(iv.begin(), iv.end());
    Expr first = First.access(o), best = Best.access(o);
    Expr pick = isF ? loop::select(FirstNaN.access(o) == first, first, best) : best;
    pick = loop::select(pick == none, loop::select(first == none, Expr(int64_t(0)), first), pick);
    if (columnMajor) { // the spatial dims in reverse order
      std::vector<Expr> sp(nsp);
      Expr rest = pick;
      for (int64_t i = nsp - 1; i >= 0; --i) {
        sp[i] = rest % xs[2 + i];
        rest = rest / xs[2 + i];
      }
      pick = Expr(int64_t(0));
      for (int64_t i = nsp - 1; i >= 0; --i)
        pick = pick * xs[2 + i] + sp[i];
    }
    return (Expr(iv[0]) * xs[1] + iv[1]) * inSize + pick;
  }, "indices"));
  if (!isF)
    return Y;
  // The values to match: NaN where the window's first in-bounds tap is NaN (the max ignores it).
  return ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    std::vector<Expr> o(iv.begin(), iv.end());
    Expr first = First.access(o);
    return loop::select((FirstNaN.access(o) == first) && (first != none),
                        loop::makeConst(loop::Type(dt), std::nan("")), Y.access(o));
  }, "values");
}

void lowerPool(LowerContext &ctx, LPool kind) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  ctx.check(xs.size() >= 3, "input X should have rank >= 3 (N, C, spatial...), got ", shapeToString(xs));
  DType dt = ctx.inputDType(0);
  ctx.check(kind == LPool::Max || isFloat(dt), "AveragePool lowering expects a float input, got ", dtypeName(dt));
  int64_t nsp = int64_t(xs.size()) - 2;
  std::vector<int64_t> in(xs.begin() + 2, xs.end());
  Geom g = poolGeomFor(ctx, in, kind == LPool::Max);
  std::vector<int64_t> out = ctx.outputShape(0);
  te::Tensor X = ctx.input(0);
  const std::vector<te::IterVar> red = poolWindowAxes(g);
  auto tapIndex = [&](const std::vector<Var> &iv) { return poolTapIndex(g, red, iv); };
  if (kind == LPool::Max) {
    const Expr lowest = maxPoolPadValue(dt);
    te::Tensor Y = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
      return te::max(lowering::loadPadded(X, tapIndex(iv), xs, lowest), red);
    });
    if (ctx.numOutputs() > 1 && ctx.hasOutput(1))
      Y = lowerMaxPoolIndices(ctx, X, Y, xs, out, g);
    ctx.setOutput(0, Y);
    return;
  }
  bool includePad = ctx.attrInt("count_include_pad", 0) != 0;
  te::Tensor S = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    return te::sum(lowering::loadPadded(X, tapIndex(iv), xs, lowering::constant(dt, 0)), red);
  }, "sum");
  // the divisor: taps inside the input, or (count_include_pad) inside begin pads + input + end pads
  te::Tensor Cnt = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    std::vector<Expr> idx = tapIndex(iv);
    Expr ok;
    for (int64_t i = 0; i < nsp; ++i) {
      Expr c = includePad ? Expr(idx[2 + i] < in[i] + g.padE[i])
                          : Expr((idx[2 + i] >= int64_t(0)) && (idx[2 + i] < in[i]));
      ok = ok.defined() ? (ok && c) : c;
    }
    return te::sum(loop::select(ok, lowering::constant(dt, 1), lowering::constant(dt, 0)), red);
  }, "count");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    std::vector<Expr> idx(iv.begin(), iv.end());
    Expr c = Cnt.access(idx);
    return loop::select(c > lowering::constant(dt, 0), S.access(idx) / c, lowering::constant(dt, 0));
  }));
}

void lowerGlobalPool(LowerContext &ctx, LPool kind) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  ctx.check(xs.size() >= 3, "input X should have rank >= 3 (N, C, spatial...), got ", shapeToString(xs));
  DType dt = ctx.inputDType(0);
  ctx.check(isFloat(dt), "lowering expects a float input, got ", dtypeName(dt));
  std::vector<te::IterVar> red;
  int64_t count = 1;
  for (size_t i = 2; i < xs.size(); ++i) {
    red.push_back(te::reduce_axis({0, xs[i]}, "rk" + std::to_string(i - 2)));
    count *= xs[i];
  }
  std::vector<int64_t> out = ctx.outputShape(0);
  te::Tensor X = ctx.input(0);
  auto body = [&](const std::vector<Var> &iv) {
    std::vector<Expr> idx{iv[0], iv[1]};
    for (auto &r : red)
      idx.push_back(r);
    return X.access(idx);
  };
  if (kind == LPool::Max) {
    ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
      return te::max(body(iv), red);
    }));
    return;
  }
  te::Tensor S = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    return te::sum(body(iv), red);
  }, "sum");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    return S.access(std::vector<Expr>(iv.begin(), iv.end())) / lowering::constant(dt, double(count));
  }));
}

void lowerMatMul(LowerContext &ctx) {
  std::vector<int64_t> as = ctx.inputShape(0), bs = ctx.inputShape(1);
  ctx.check(!as.empty() && !bs.empty(), "MatMul inputs must have rank >= 1");
  te::Tensor A = ctx.input(0), B = ctx.input(1);
  bool aVec = as.size() == 1, bVec = bs.size() == 1;
  int64_t K = as.back();
  ctx.check(K == (bVec ? bs[0] : bs[bs.size() - 2]), "inner dimensions differ: ", shapeToString(as),
            " x ", shapeToString(bs));
  std::vector<int64_t> out = ctx.outputShape(0);
  // batch dims of A and B (without the matrix dims)
  std::vector<int64_t> ab(as.begin(), as.end() - (aVec ? 1 : 2));
  std::vector<int64_t> bb(bs.begin(), bs.end() - (bVec ? 1 : 2));
  size_t nb = out.size() - (aVec ? 0 : 1) - (bVec ? 0 : 1);
  te::IterVar k = te::reduce_axis({0, K}, "k");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    std::vector<Var> batch(iv.begin(), iv.begin() + nb);
    std::vector<Expr> ai = lowering::broadcastIndex(batch, ab), bi = lowering::broadcastIndex(batch, bb);
    if (!aVec)
      ai.push_back(iv[nb]);
    ai.push_back(k);
    bi.push_back(k);
    if (!bVec)
      bi.push_back(iv.back());
    return te::sum(A.access(ai) * B.access(bi), {k});
  }));
}

void lowerGemm(LowerContext &ctx) {
  std::vector<int64_t> as = ctx.inputShape(0), bs = ctx.inputShape(1);
  ctx.check(as.size() == 2 && bs.size() == 2, "A and B must be matrices, got ", shapeToString(as),
            " and ", shapeToString(bs));
  bool ta = ctx.attrInt("transA", 0) != 0, tb = ctx.attrInt("transB", 0) != 0;
  double alpha = ctx.attrFloat("alpha", 1.0f), beta = ctx.attrFloat("beta", 1.0f);
  int64_t K = ta ? as[0] : as[1];
  ctx.check(K == (tb ? bs[1] : bs[0]), "inner dimensions differ: A ", shapeToString(as),
            (ta ? " (transposed)" : ""), ", B ", shapeToString(bs), (tb ? " (transposed)" : ""));
  DType dt = ctx.outputDType(0);
  std::vector<int64_t> out = ctx.outputShape(0);
  te::Tensor A = ctx.input(0), B = ctx.input(1);
  te::IterVar k = te::reduce_axis({0, K}, "k");
  bool epilogue = alpha != 1.0 || (ctx.hasInput(2) && beta != 0.0);
  te::Tensor P = ctx.compute(lowering::shapeExprs(out), [&](Var i, Var j) {
    Expr a = ta ? A(k, i) : A(i, k);
    Expr b = tb ? B(j, k) : B(k, j);
    return te::sum(a * b, {k});
  }, epilogue ? "product" : "");
  if (!epilogue) {
    ctx.setOutput(0, P);
    return;
  }
  ctx.check(isFloat(dt) || (alpha == std::floor(alpha) && beta == std::floor(beta)),
            "fractional alpha/beta with integer dtype ", dtypeName(dt), " is not supported by lowering");
  std::vector<int64_t> cs = ctx.hasInput(2) ? ctx.inputShape(2) : std::vector<int64_t>{};
  ctx.check(cs.size() <= 2, "C must broadcast to [M, N], got ", shapeToString(cs));
  te::Tensor C = ctx.hasInput(2) ? ctx.input(2) : te::Tensor();
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](Var i, Var j) {
    Expr y = P(i, j);
    if (alpha != 1.0)
      y = y * lowering::constant(dt, alpha);
    if (C.defined() && beta != 0.0) {
      Expr c = C.access(lowering::broadcastIndex({i, j}, cs));
      y = y + (beta == 1.0 ? c : c * lowering::constant(dt, beta));
    }
    return y;
  }));
}

/// ConvTranspose as a gather over the output: y[n, m, o...] = b[m] + sum over the group's input
/// channels c and kernel taps k of x[n, c, i...] * w[c, m % Mg, k...], where the tap reaches o
/// from the input position i = (o + padB - k * dil) / stride when that division is exact and
/// i is inside the input (other taps contribute zero). Geometry (output_shape, output_padding,
/// auto_pad) comes from convTransposeGeom, as in the reference kernel.
void lowerConvTranspose(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0), ws = ctx.inputShape(1);
  ctx.check(xs.size() >= 3 && ws.size() == xs.size(),
            "lowering expects X as [N, C, spatial...] and W of the same rank, got ",
            shapeToString(xs), " and ", shapeToString(ws));
  DType dt = ctx.inputDType(0);
  ctx.check(isFloat(dt), "lowering of ConvTranspose handles float inputs only, got ", dtypeName(dt));
  int64_t nsp = int64_t(xs.size()) - 2;
  std::vector<int64_t> in(xs.begin() + 2, xs.end());
  std::vector<int64_t> ks = convKernelShape(ctx, ws);
  ctx.check(int64_t(ks.size()) == nsp && std::equal(ks.begin(), ks.end(), ws.begin() + 2),
            "kernel_shape ", shapeToString(ks), " must match W's spatial dims ", shapeToString(ws));
  TGeom g = convTransposeGeom(ctx, in, ks);
  int64_t group = ctx.attrInt("group", 1);
  int64_t C = xs[1], Mg = ws[1];
  ctx.check(group > 0 && C % group == 0 && ws[0] == C, "channels do not match: X has ", C,
            ", W has shape ", shapeToString(ws), ", group = ", group);
  int64_t Cg = C / group, M = Mg * group;
  te::Tensor X = ctx.input(0), W = ctx.input(1);
  std::vector<int64_t> out = ctx.outputShape(0);
  bool bias = ctx.hasInput(2);
  if (bias)
    ctx.check(ctx.inputShape(2) == std::vector<int64_t>{M}, "bias B should have shape [", M,
              "], got ", shapeToString(ctx.inputShape(2)));
  te::Tensor Y = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    std::vector<te::IterVar> red;
    red.push_back(te::reduce_axis({0, Cg}, "rc"));
    for (int64_t i = 0; i < nsp; ++i)
      red.push_back(te::reduce_axis({0, ks[i]}, "rk" + std::to_string(i)));
    Expr cin = group == 1 ? Expr(red[0]) : Expr(iv[1] / Mg * Cg + red[0]);
    std::vector<Expr> xi{iv[0], cin}, wi{cin, group == 1 ? Expr(iv[1]) : Expr(iv[1] % Mg)};
    Expr ok;
    for (int64_t i = 0; i < nsp; ++i) {
      Expr t = iv[2 + i] + g.padB[i] - red[1 + i] * g.dil[i]; // = input position * stride
      Expr pos = t / g.strides[i];
      Expr c = (t >= int64_t(0)) && (pos < in[i]);
      if (g.strides[i] > 1)
        c = c && (t % g.strides[i] == int64_t(0));
      ok = ok.defined() ? (ok && c) : c;
      xi.push_back(loop::max(loop::min(pos, Expr(in[i] - 1)), Expr(int64_t(0))));
      wi.push_back(red[1 + i]);
    }
    Expr prod = X.access(xi) * W.access(wi);
    return te::sum(loop::select(ok, prod, lowering::constant(dt, 0)), red);
  }, bias ? "nobias" : "");
  if (bias) {
    te::Tensor B = ctx.input(2);
    Y = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
      return Y.access(std::vector<Expr>(iv.begin(), iv.end())) + B(iv[1]);
    });
  }
  ctx.setOutput(0, Y);
}

/// The p of LpPool / GlobalLpPool (a float attribute before opset 2, an int from 2).
double lpOrder(const LowerContext &ctx) {
  double p = ctx.opset() < 2 ? ctx.attrFloat("p", 2.f) : double(ctx.attrInt("p", 2));
  ctx.check(p > 0, "p must be positive, got ", p);
  return p;
}

/// |v|^p as the reference computes it: |v| (p = 1), v * v (p = 2), else pow(|v|, p) in double.
Expr lpTerm(Expr v, double p, DType acc) {
  if (p == 1)
    return loop::abs(v);
  if (p == 2)
    return v * v;
  return loop::cast(acc, loop::pow(loop::abs(loop::cast(DType::f64, v)), Expr(p)));
}

/// sum^(1/p) (sqrt for p = 2, pow in double otherwise), in dtype dt.
Expr lpRoot(Expr sum, double p, DType dt) {
  if (p == 1)
    return sum;
  Expr d = loop::cast(DType::f64, sum);
  Expr r = p == 2 ? loop::sqrt(d) : loop::pow(d, Expr(1.0 / p));
  return loop::cast(dt, r);
}

/// LpPool: (sum over the window's in-bounds taps of |x|^p)^(1/p); pads contribute nothing.
void lowerLpPool(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  ctx.check(xs.size() >= 3, "input X should have rank >= 3 (N, C, spatial...), got ", shapeToString(xs));
  DType dt = ctx.inputDType(0);
  ctx.check(isFloat(dt), "LpPool lowering expects a float input, got ", dtypeName(dt));
  double p = lpOrder(ctx);
  int64_t nsp = int64_t(xs.size()) - 2;
  std::vector<int64_t> in(xs.begin() + 2, xs.end());
  Geom g = poolGeomFor(ctx, in, false);
  std::vector<int64_t> out = ctx.outputShape(0);
  te::Tensor X = ctx.input(0);
  te::Tensor S = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    std::vector<te::IterVar> red;
    for (int64_t i = 0; i < nsp; ++i)
      red.push_back(te::reduce_axis({0, g.kernel[i]}, "rk" + std::to_string(i)));
    std::vector<Expr> idx{iv[0], iv[1]};
    Expr ok;
    for (int64_t i = 0; i < nsp; ++i) {
      Expr t = iv[2 + i] * g.strides[i] - g.padB[i] + red[i] * g.dil[i];
      Expr c = (t >= int64_t(0)) && (t < in[i]);
      ok = ok.defined() ? (ok && c) : c;
      idx.push_back(loop::max(loop::min(t, Expr(in[i] - 1)), Expr(int64_t(0))));
    }
    return te::sum(loop::select(ok, lpTerm(X.access(idx), p, dt), lowering::constant(dt, 0)), red);
  }, "sum");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    return lpRoot(S.access(std::vector<Expr>(iv.begin(), iv.end())), p, dt);
  }));
}

/// GlobalLpPool: (sum over the spatial dims of |x|^p, in double)^(1/p), as the reference.
void lowerGlobalLpPool(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  ctx.check(xs.size() >= 3, "input X should have rank >= 3 (N, C, spatial...), got ", shapeToString(xs));
  DType dt = ctx.inputDType(0);
  ctx.check(isFloat(dt), "lowering expects a float input, got ", dtypeName(dt));
  double p = lpOrder(ctx);
  std::vector<int64_t> out = ctx.outputShape(0);
  te::Tensor X = ctx.input(0);
  te::Tensor S = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    std::vector<te::IterVar> red;
    std::vector<Expr> idx{iv[0], iv[1]};
    for (size_t i = 2; i < xs.size(); ++i) {
      red.push_back(te::reduce_axis({0, xs[i]}, "rk" + std::to_string(i - 2)));
      idx.push_back(red.back());
    }
    Expr v = loop::fabs(loop::cast(DType::f64, X.access(idx)));
    return te::sum(loop::pow(v, Expr(p)), red);
  }, "sum");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    Expr s = S.access(std::vector<Expr>(iv.begin(), iv.end()));
    return loop::cast(dt, loop::pow(s, Expr(1.0 / p)));
  }));
}

/// Einsum: one compute with an output axis per output label and a reduction axis per summed
/// label (planEinsum, as the reference); each input reads its labels' variables (a repeated
/// label is a diagonal; an ellipsis dim of extent 1 broadcasts). out = sum of the product.
void lowerEinsum(LowerContext &ctx) {
  EinsumSpec spec = parseEinsum(ctx, ctx.attrString("equation"));
  size_t n = ctx.numInputs();
  std::vector<std::vector<int64_t>> shapes(n);
  std::vector<int64_t> ranks(n);
  DType dt = ctx.inputDType(0);
  ctx.check(dt != DType::boolean, "lowering of Einsum expects numeric inputs, got bool");
  for (size_t i = 0; i < n; ++i) {
    shapes[i] = ctx.inputShape(i);
    ranks[i] = int64_t(shapes[i].size());
    ctx.check(ctx.inputDType(i) == dt, "all inputs must have the same type; input ", i, " is ",
              dtypeName(ctx.inputDType(i)), ", input 0 is ", dtypeName(dt));
  }
  bool ok;
  EinsumPlan p = planEinsum(ctx, spec, ranks, ok);
  const int NL = kEllBase + 64;
  std::vector<int64_t> size(NL, -1);
  for (size_t i = 0; i < n; ++i)
    for (size_t d = 0; d < p.inLabels[i].size(); ++d) {
      int l = p.inLabels[i][d];
      int64_t s = shapes[i][d];
      if (size[l] < 0 || size[l] == s)
        size[l] = s;
      else if (l >= kEllBase && (size[l] == 1 || s == 1))
        size[l] = std::max(size[l], s);
      else
        ctx.fail("einsum label dims disagree: ", size[l], " vs ", s, " (input ", i, ", dim ", d, ")");
    }
  for (int l = kEllBase; l < kEllBase + p.ellRank; ++l)
    if (size[l] < 0)
      size[l] = 1;
  std::vector<int64_t> out = ctx.outputShape(0);
  ctx.check(out.size() == p.outLabels.size(), "output rank ", out.size(), " does not match the equation's ",
            p.outLabels.size(), " output labels");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    std::vector<Expr> var(NL);
    for (size_t k = 0; k < p.outLabels.size(); ++k)
      var[p.outLabels[k]] = iv[k];
    std::vector<te::IterVar> red;
    for (int l : p.redLabels) {
      red.push_back(te::reduce_axis({Expr(int64_t(0)), Expr(size[l])}, "r" + std::to_string(l)));
      var[l] = red.back();
    }
    Expr prod;
    for (size_t i = 0; i < n; ++i) {
      std::vector<Expr> idx;
      for (size_t d = 0; d < p.inLabels[i].size(); ++d) {
        int l = p.inLabels[i][d];
        idx.push_back(shapes[i][d] == 1 && size[l] != 1 ? Expr(int64_t(0)) : var[l]);
      }
      Expr v = ctx.input(i).access(idx);
      prod = prod.defined() ? prod * v : v;
    }
    if (red.empty())
      return te::ComputeBody(prod);
    return te::ComputeBody(te::sum(prod, red));
  }));
}

/// MaxUnpool as a select over the output (TE has no scatter): for out[p], the last input
/// position k (row-major over X, the reference's order) whose index I[k] addresses p gives
/// X[k], else 0. I[k] addresses the default output (the shape MaxPool's input had); with an
/// output_shape that differs, its coordinates in the default shape are re-laid out in the
/// output's (an index whose coordinates fall outside it, or out of range, matches nothing,
/// where the reference reports an error). One pass over X per output element: O(|Y| |X|).
void lowerMaxUnpool(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  const int64_t rank = int64_t(xs.size());
  ctx.check(rank >= 3, "input X should have rank >= 3, got ", shapeToString(xs));
  ctx.check(ctx.inputShape(1) == xs, "indices I have shape ", shapeToString(ctx.inputShape(1)),
            ", expected the shape of X ", shapeToString(xs));
  ctx.check(ctx.inputDType(1) == DType::i64, "indices I should be int64, got ",
            dtypeName(ctx.inputDType(1)));
  DType dt = ctx.inputDType(0);
  std::vector<int64_t> defShape = maxUnpoolDefaultShape(ctx, xs);
  std::vector<int64_t> out = ctx.outputShape(0);
  ctx.check(int64_t(out.size()) == rank && out[0] == xs[0] && out[1] == xs[1], "output shape ",
            shapeToString(out), " must keep N and C of X ", shapeToString(xs));
  const bool remap = out != defShape;
  std::vector<int64_t> outStr(size_t(rank), 1), defStr(size_t(rank), 1), xStr(size_t(rank), 1);
  for (int64_t d = rank - 1; d-- > 0;) {
    outStr[size_t(d)] = outStr[size_t(d + 1)] * out[size_t(d + 1)];
    defStr[size_t(d)] = defStr[size_t(d + 1)] * defShape[size_t(d + 1)];
    xStr[size_t(d)] = xStr[size_t(d + 1)] * xs[size_t(d + 1)];
  }
  int64_t xTotal = 1, defTotal = 1;
  for (int64_t d = 0; d < rank; ++d) {
    xTotal *= xs[size_t(d)];
    defTotal *= defShape[size_t(d)];
  }
  te::Tensor X = ctx.input(0), I = ctx.input(1);
  if (xTotal == 0) { // nothing to scatter
    ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var>) {
      return lowering::constant(dt, 0.0);
    }));
    return;
  }
  std::vector<te::IterVar> red;
  for (int64_t d = 0; d < rank; ++d)
    red.push_back(te::reduce_axis({0, xs[size_t(d)]}, "k" + std::to_string(d)));
  te::Tensor Last = ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    Expr flatP = Expr(int64_t(0)), flatK = Expr(int64_t(0));
    for (int64_t d = 0; d < rank; ++d) {
      flatP = flatP + Expr(iv[size_t(d)]) * outStr[size_t(d)];
      flatK = flatK + Expr(red[size_t(d)]) * xStr[size_t(d)];
    }
    Expr j = I.access(std::vector<Expr>(red.begin(), red.end()));
    Expr match;
    if (!remap) {
      match = j == flatP;
    } else { // j's coordinates in the default shape, laid out in the output's
      Expr nj = Expr(int64_t(0));
      match = j >= int64_t(0) && j < defTotal;
      for (int64_t d = 0; d < rank; ++d) {
        Expr c = (j / defStr[size_t(d)]) % defShape[size_t(d)];
        match = match && c < out[size_t(d)];
        nj = nj + c * outStr[size_t(d)];
      }
      match = match && nj == flatP;
    }
    return te::max(loop::select(match, flatK, Expr(int64_t(-1))), red, Expr(int64_t(-1)));
  }, "last_index");
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(out), [&](std::vector<Var> iv) {
    Expr l = Last.access(std::vector<Expr>(iv.begin(), iv.end()));
    Expr k = loop::min(loop::max(l, Expr(int64_t(0))), Expr(xTotal - 1));
    std::vector<Expr> xi;
    for (int64_t d = 0; d < rank; ++d)
      xi.push_back((k / xStr[size_t(d)]) % xs[size_t(d)]);
    return loop::select(l >= int64_t(0), X.access(xi), lowering::constant(dt, 0.0));
  }));
}

/// The largest matrix Det lowers (3 (n - 1) stages; larger ones are an error naming the case).
constexpr int64_t kMaxLoweredDet = 128;
/// How much memory Det's stages may take together (they are all live at once; the emitter puts
/// them on the stack up to its per-function budget, the rest on the heap).
constexpr int64_t kMaxDetStageBytes = int64_t(1) << 30;

/// Det of [..., n, n] (float): Gaussian elimination with partial pivoting in f64, as the
/// reference computes it, one group of stages per column k (the trailing (n - k) x (n - k)
/// block A_k, A_0 = X):
///   max_k[b]   = max over rows t of |A_k[b, t, 0]|
///   pivot_k[b] = the first row t with |A_k[b, t, 0]| == max_k[b] (the reference's strict `>`
///                scan keeps the first maximum)
///   A_{k+1}[b, r, j] = S[r + 1, j + 1] - f * S[0, j + 1], f = S[r + 1, 0] / S[0, 0], where S is
///                A_k with rows 0 and pivot_k swapped (f = 0 when the pivot is 0: the column is
///                zero and the determinant is 0)
/// and det = prod_k (pivot_k != 0 ? -1 : 1) * S_k[0, 0] in the reference's order. Each stage is
/// stored (a unit reduction keeps it a root stage: inlined, the stages would grow
/// exponentially); the work is O(n^3) per matrix and the stages take O(n^3) doubles.
void lowerDet(LowerContext &ctx) {
  std::vector<int64_t> xs = ctx.inputShape(0);
  const size_t rank = xs.size();
  ctx.check(rank >= 2 && xs[rank - 1] == xs[rank - 2], "input should be [..., M, M], got ",
            shapeToString(xs));
  DType dt = ctx.inputDType(0);
  ctx.check(dt == DType::f32 || dt == DType::f64, "lowering of Det handles f32 and f64, got ",
            dtypeName(dt));
  const int64_t n = xs.back();
  ctx.check(n <= kMaxLoweredDet, "lowering of Det makes 3 stages per column; a ", n, "x", n,
            " matrix is larger than the ", kMaxLoweredDet, "x", kMaxLoweredDet,
            " it accepts");
  std::vector<int64_t> bs(xs.begin(), xs.end() - 2); // the batch shape (= output shape)
  int64_t batch = 1;
  for (int64_t d : bs)
    batch *= d;
  // The stages are all live at once: O(n^3) doubles per matrix.
  int64_t stageBytes = 0;
  for (int64_t m = n; m >= 2; --m) // per column: the max, the pivot, the next block
    stageBytes += batch * (2 + (m - 1) * (m - 1)) * 8;
  ctx.check(stageBytes <= kMaxDetStageBytes, "lowering of Det of ", batch, " matrices of ", n,
            "x", n, " would keep ", stageBytes, " bytes of stages; expected at most ",
            kMaxDetStageBytes, " (fewer matrices per node, or smaller ones)");
  const te::Tensor &X = ctx.input(0);
  // A_k[b, r, c] as an f64 expression (A_0 reads X)
  std::function<Expr(const std::vector<Expr> &, Expr, Expr)> load =
      [&X](const std::vector<Expr> &b, Expr r, Expr c) {
        std::vector<Expr> idx = b;
        idx.push_back(r);
        idx.push_back(c);
        return loop::cast(DType::f64, X.access(idx));
      };
  // the signed pivots of the columns, each a function of the batch index
  std::vector<std::function<Expr(const std::vector<Expr> &)>> pivots;
  for (int64_t k = 0; k + 1 < n; ++k) {
    const int64_t m = n - k; // A_k is m x m
    const std::string sk = std::to_string(k);
    te::Tensor mx = ctx.compute(lowering::shapeExprs(bs), [&](std::vector<Var> bv) {
      te::IterVar t = te::reduce_axis({Expr(int64_t(0)), Expr(m)}, "t");
      std::vector<Expr> b(bv.begin(), bv.end());
      return te::ComputeBody(te::max(loop::fabs(load(b, Expr(t), Expr(int64_t(0)))), {t}));
    }, "col" + sk + "_max");
    te::Tensor pv = ctx.compute(lowering::shapeExprs(bs), [&](std::vector<Var> bv) {
      te::IterVar t = te::reduce_axis({Expr(int64_t(0)), Expr(m)}, "t");
      std::vector<Expr> b(bv.begin(), bv.end());
      Expr hit = loop::fabs(load(b, Expr(t), Expr(int64_t(0)))) == mx.access(b);
      return te::ComputeBody(te::min(loop::select(hit, Expr(t), Expr(m)), {t}, Expr(m)));
    }, "col" + sk + "_pivot");
    // the pivot row (0 when no row matched, which only NaNs cause: the reference keeps row k)
    auto pivotRow = [pv, m](const std::vector<Expr> &b) {
      Expr p = pv.access(b);
      return loop::select(p < m, p, Expr(int64_t(0)));
    };
    auto prev = load;
    pivots.push_back([prev, pivotRow](const std::vector<Expr> &b) {
      Expr p = pivotRow(b);
      Expr d = prev(b, p, Expr(int64_t(0)));
      return loop::select(p != int64_t(0), -d, d);
    });
    te::Tensor next = lowering::storedCompute(
        ctx,
        [&] {
          std::vector<Expr> s = lowering::shapeExprs(bs);
          s.push_back(Expr(m - 1));
          s.push_back(Expr(m - 1));
          return s;
        }(),
        [&](const std::vector<Var> &iv) {
          std::vector<Expr> b(iv.begin(), iv.end() - 2);
          Expr r = Expr(iv[iv.size() - 2]) + 1, j = Expr(iv.back()) + 1;
          Expr p = pivotRow(b);
          Expr row = loop::select(r == p, Expr(int64_t(0)), r); // S[r] after the swap
          Expr d = prev(b, p, Expr(int64_t(0)));
          Expr f = loop::select(d == 0.0, Expr(0.0),
                                prev(b, row, Expr(int64_t(0))) /
                                    loop::select(d == 0.0, Expr(1.0), d));
          return prev(b, row, j) - f * prev(b, p, j);
        },
        "elim" + sk);
    load = [next](const std::vector<Expr> &b, Expr r, Expr c) {
      std::vector<Expr> idx = b;
      idx.push_back(r);
      idx.push_back(c);
      return next.access(idx);
    };
  }
  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(bs), [&](std::vector<Var> bv) {
    std::vector<Expr> b(bv.begin(), bv.end());
    Expr det = Expr(1.0);
    for (auto &pivot : pivots)
      det = det * pivot(b);
    if (n > 0) // the last 1 x 1 block
      det = det * load(b, Expr(int64_t(0)), Expr(int64_t(0)));
    return dt == DType::f64 ? det : loop::cast(dt, det);
  }));
}

void attachNNLowerings(OpRegistry &r) {
  r.setLower("Det", lowerDet);
  r.setLower("MaxUnpool", lowerMaxUnpool);
  r.setLower("Einsum", lowerEinsum);
  r.setLower("ConvTranspose", lowerConvTranspose);
  r.setLower("LpPool", lowerLpPool);
  r.setLower("GlobalLpPool", lowerGlobalLpPool);
  r.setLower("Conv", lowerConv);
  r.setLower("MaxPool", [](LowerContext &c) { lowerPool(c, LPool::Max); });
  r.setLower("AveragePool", [](LowerContext &c) { lowerPool(c, LPool::Avg); });
  r.setLower("GlobalAveragePool", [](LowerContext &c) { lowerGlobalPool(c, LPool::Avg); });
  r.setLower("GlobalMaxPool", [](LowerContext &c) { lowerGlobalPool(c, LPool::Max); });
  r.setLower("MatMul", lowerMatMul);
  r.setLower("Gemm", lowerGemm);
}

} // namespace
// --- end of the NN lowerings

void registerNNOps(OpRegistry &r) {
  const std::string fl = "f16, bf16, f32, f64";
  r.add(OpDef{"Conv", "", 1, 17, 2, 3, 1, 1, fl,
              "1-3 spatial dims; im2col + blocked GEMM (f32/f64), direct loop for depthwise",
              convInfer, convKernel, OpPattern::OutEWiseFusable});
  r.add(OpDef{"ConvTranspose", "", 1, 17, 2, 3, 1, 1, fl, "1-3 spatial dims; GEMM + col2im",
              convTransposeInfer, convTransposeKernel, OpPattern::OutEWiseFusable});
  r.add(OpDef{"MaxPool", "", 1, 17, 1, 1, 1, 2, fl + ", i8, u8",
              "1-3 spatial dims; Indices output (storage_order 0/1)", poolInfer,
              poolKernel(PoolKind::Max), OpPattern::OutEWiseFusable});
  r.add(OpDef{"AveragePool", "", 1, 17, 1, 1, 1, 1, fl, "1-3 spatial dims", poolInfer,
              poolKernel(PoolKind::Avg), OpPattern::OutEWiseFusable});
  r.add(OpDef{"LpPool", "", 1, 17, 1, 1, 1, 1, fl, "1-3 spatial dims", poolInfer,
              poolKernel(PoolKind::Lp), OpPattern::OutEWiseFusable});
  r.add(OpDef{"GlobalAveragePool", "", 1, 17, 1, 1, 1, 1, fl, "", globalPoolInfer,
              globalPoolKernel(PoolKind::Avg), OpPattern::CommReduce});
  r.add(OpDef{"GlobalMaxPool", "", 1, 17, 1, 1, 1, 1, fl, "", globalPoolInfer,
              globalPoolKernel(PoolKind::Max), OpPattern::CommReduce});
  r.add(OpDef{"GlobalLpPool", "", 1, 17, 1, 1, 1, 1, fl, "", globalPoolInfer,
              globalPoolKernel(PoolKind::Lp), OpPattern::CommReduce});
  r.add(OpDef{"MaxUnpool", "", 9, 17, 2, 3, 1, 1, "all", "", maxUnpoolInfer, maxUnpoolKernel});
  r.add(OpDef{"MatMul", "", 1, 17, 2, 2, 1, 1, fl + ", i32, i64, u32, u64",
              "numpy batched broadcasting; f32 uses the blocked GEMM", matmulInfer, matmulKernel,
              OpPattern::OutEWiseFusable});
  r.add(OpDef{"Gemm", "", 1, 17, 2, 3, 1, 1, fl + ", i32, i64, u32, u64",
              "C optional (all opsets)", gemmInfer, gemmKernel, OpPattern::OutEWiseFusable});
  r.add(OpDef{"Einsum", "", 12, 17, 1, 1 << 20, 1, 1, "all numeric",
              "general loop (explicit/implicit output, ellipsis, diagonals); no contraction "
              "order optimization",
              einsumInfer, einsumKernel, OpPattern::OutEWiseFusable});
  r.add(OpDef{"Det", "", 11, 17, 1, 1, 1, 1, fl, "LU with partial pivoting in f64", detInfer,
              detKernel});
  attachNNLowerings(r);
}

} // namespace tessel
