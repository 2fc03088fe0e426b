//===- Winograd.h - Winograd F(m x m, 3 x 3) transforms -------------------===//
//
// The matrices of Lavin & Gray's minimal filtering algorithm F(m x m, 3 x 3) for m = 2 and 4
// (interpolation points 0, 1, -1 for m = 2; 0, 1, -1, 2, -2 for m = 4; plus infinity), used by
// tessel::ConvWinogradNCHWc (lib/Graph/Ops/Layout.cpp: reference kernel and lowering) and by
// the layout pass, which transforms the weights at compile time (transform-layout). An output
// tile Y (m x m) of a 3x3 stride-1 convolution of an input tile d ((m+2) x (m+2)) with a filter
// g (3 x 3) is
//
//     Y = A^T [ (G g G^T) . (B^T d B) ] A        (. elementwise)
//
// with A^T (m x alpha), G (alpha x 3), B^T (alpha x alpha), alpha = m + 2.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Support/Tensor.h"

#include <cstdint>

namespace tessel::winograd {

/// The matrices of F(m x m, 3 x 3), row-major: at[m][alpha], g[alpha][3], bt[alpha][alpha].
struct Matrices {
  int64_t m = 0, alpha = 0;
  const double *at = nullptr, *g = nullptr, *bt = nullptr;
};

/// F(m x m, 3 x 3) for m = 2 or 4; throws tessel::Error for another m.
Matrices matrices(int64_t m);

/// The transformed weights U [alpha*alpha, OC/ob, IC, ob], U[p, oco, ic, oci] = (G g G^T)[p]
/// for the filter g = W[oco*ob + oci, ic, :, :] of W [OC, IC, 3, 3] (f32). Computed in double.
Tensor transformWeights(const Tensor &W, int64_t m, int64_t ob);

/// The tiles per register tile of a row of `tiles` output tiles: the whole row up to 14, else
/// the largest R in [7, 14] that divides it (column groups of equal size), else 0 (no such R:
/// the layout pass keeps such convs direct; docs/compile.md has the measurements).
inline int64_t columnGroupTiles(int64_t tiles) {
  if (tiles <= 14)
    return tiles;
  for (int64_t r = 14; r >= 7; --r)
    if (tiles % r == 0)
      return r;
  return 0;
}

} // namespace tessel::winograd
