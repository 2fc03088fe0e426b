//===- ScheduleWinograd.cpp - Winograd convolution schedule ---------------===//
//
// See ScheduleWinograd.h. The stages are found by the names the lowering of
// tessel::ConvWinogradNCHWc (lib/Graph/Ops/Layout.cpp) gives them:
// "convwinogradnchwc_<dtype>_<node>_gemm" (reads "..._input_transform", which reads "..._pad").
//
//===----------------------------------------------------------------------===//
#include "ScheduleWinograd.h"
#include "ScheduleConv.h"
#include "tessel/Graph/Winograd.h"

#include <algorithm>
#include <cmath>
#include <tuple>

namespace tessel::compiler {

namespace {

bool isWinogradGemm(const te::Stage &st) {
  const te::Tensor &t = st->tensor;
  return !t.isPlaceholder() && st->reduce.has_value() && t.ndim() == 6 &&
         t.dtype() == DType::f32 && t.name().starts_with("convwinogradnchwc_") &&
         t.name().ends_with("_gemm");
}

/// The only computed input of `t` with `ndim` dims, or an undefined tensor.
te::Tensor computedInput(const te::Tensor &t, size_t ndim) {
  te::Tensor r;
  for (const te::Tensor &in : te::inputTensors(t))
    if (!in.isPlaceholder() && in.ndim() == ndim) {
      if (r.defined())
        return te::Tensor();
      r = in;
    }
  return r;
}

} // namespace

std::vector<te::Stage> scheduleWinogradConvs(te::Schedule &s, const ScheduleConfig &config,
                                             std::string &desc) {
  std::vector<te::Stage> handled;
  std::vector<te::Tensor> gemms;
  for (const te::Stage &st : s.stages())
    if (isWinogradGemm(st))
      gemms.push_back(st->tensor);
  for (te::Tensor M : gemms) {
    te::Tensor V = computedInput(M, 6);
    te::Tensor P = V.defined() ? computedInput(V, 5) : te::Tensor();
    if (!V.defined() || !P.defined() || !V.name().ends_with("_input_transform") ||
        s[V]->reduce || s[P]->reduce)
      continue;
    // The output transform: the one stage that reads M.
    te::Tensor Y;
    int readers = 0;
    for (const te::Stage &st : s.stages())
      if (!st->tensor.isPlaceholder())
        for (const te::Tensor &in : te::inputTensors(st->tensor))
          if (in.same_as(M)) {
            Y = st->tensor;
            ++readers;
          }
    if (readers != 1 || Y.ndim() != 5 || s[Y]->reduce)
      continue;
    // The stage that gets the output-transform schedule: the output reading Y through the
    // fused epilogue, else (Y also read by another output or stage) Y itself, computed whole
    // for its readers (the default schedule would inline it and the transforms' selects would
    // then be evaluated per element, never unrolled).
    std::vector<te::Tensor> path;
    te::Tensor out = epilogueOutput(s, Y, path);
    if (!out.defined()) {
      out = Y;
      path.clear();
    }
    const std::vector<int64_t> ms = constShape(M), os = constShape(out);
    if (std::any_of(ms.begin(), ms.end(), [](int64_t d) { return d <= 0; }) ||
        std::any_of(os.begin(), os.end(), [](int64_t d) { return d <= 0; }))
      continue;
    const int64_t N = ms[0], TH = ms[1], A2 = ms[2], OCo = ms[3], TW = ms[4], ob = ms[5];
    const int64_t A = int64_t(std::lround(std::sqrt(double(A2))));
    const int64_t m = A - 2;
    if (A * A != A2 || (m != 2 && m != 4))
      continue;
    const int64_t lanes = config.vectorLanesF32;
    const bool vec = config.vectorize && ob >= 4;

    // The output transform and the epilogue, one stage: tile rows in parallel.
    if (!out.same_as(Y))
      s[Y].compute_inline();
    for (const te::Tensor &p : path) {
      s[p].compute_inline();
      handled.push_back(s[p]);
    }
    if (!out.same_as(Y))
      handled.push_back(s[Y]);
    // The GEMM's register tile: R tile columns x T oc blocks (ow-major, as the direct conv's:
    // each broadcast of V serves the T FMAs next to it), R * T <= 28 accumulators. A tile row
    // of up to 14 tiles is one register tile (R = TW); a wider one (OW > 56) is split into
    // column groups of R tiles, the largest R in [7, 14] that divides TW (112 columns: 2 x 14;
    // 64: 2 x 8; 84: 3 x 7), M computed per group: its region through the tiling's ow / m is R
    // tile columns (te Lower's division rule, docs/te.md). When no such R exists (100 columns:
    // 25 tiles; the layout pass's chooseWinogradTile leaves those direct) the groups are
    // ceil(TW / 14) of ceil(TW / groups) tiles, the last one guarded at M's edge (correct, but
    // measured 3-4x slower than the direct conv at 100 columns).
    int64_t regN = winograd::columnGroupTiles(TW);
    if (regN == 0) {
      const int64_t groups = (TW + 13) / 14;
      regN = (TW + groups - 1) / groups;
    }
    const int64_t colGroups = (TW + regN - 1) / regN;
    const int64_t vecPerPoint = std::max<int64_t>(1, (ob + lanes - 1) / lanes);
    const int64_t registers = lanes >= 16 ? 32 : 16;
    const int64_t ocTile =
        OCo % 2 == 0 && 2 * regN * vecPerPoint + 2 * vecPerPoint + 2 <= registers ? 2 : 1;

    // E, the output transform (+ epilogue) of the tile row x T oc blocks the GEMM just
    // computed: [(n, tile row) parallel | oc_o / T | oc_o % T, tile column, i, j (unrolled),
    // oc_i (vector)], or with the oc pairs outer: [(n, oc_o / T) parallel | tile row | ...].
    // Loop order. When the whole transformed input fits L2 (<= 1 MiB: resnet18's 28x28x128
    // layers, 903 KiB), V is computed once, in parallel, and the oc-block pairs are the outer
    // (parallel) loop: each pair's slice of U (alpha^2 x IC x T blocks) is read once, not once
    // per tile row, and 2 threads share 4 oc pairs evenly instead of 7 tile rows (4 + 3).
    // Else (56x56x64: V is 1.8 MiB) the tile rows are outer and V is computed per tile row,
    // where it stays in L2 while the oc pairs read it.
    const int64_t vBytes = constBytes(V);
    const bool ocOuter = vBytes > 0 && vBytes <= (int64_t(1) << 20) && N * (OCo / ocTile) >= 2;
    te::Stage E = s[out];
    te::IterVar n = out.axis(0), oco = out.axis(1), oh = out.axis(2), ow = out.axis(3),
                oci = out.axis(4);
    auto [oho, ohi] = E.split(oh, m);
    auto [owo, owi] = E.split(ow, m);
    auto [ocoo, ocoi] = E.split(oco, ocTile);
    // A wide row's column groups: inside the oc pair loop, so that a pair's slice of U stays in
    // L2 while the groups of the tile row read it; M is computed per group.
    te::IterVar owoo, owoi = owo;
    if (colGroups > 1)
      std::tie(owoo, owoi) = E.split(owo, regN);
    te::IterVar rows, gemmAt;
    if (ocOuter) {
      if (colGroups > 1)
        E.reorder({n, ocoo, oho, owoo, ocoi, owoi, ohi, owi, oci});
      else
        E.reorder({n, ocoo, oho, ocoi, owo, ohi, owi, oci});
      rows = E.fuse(n, ocoo);
      gemmAt = colGroups > 1 ? owoo : oho;
      if (config.parallel && N * (OCo / ocTile) >= 2)
        E.parallel(rows);
    } else {
      if (colGroups > 1)
        E.reorder({n, oho, ocoo, owoo, ocoi, owoi, ohi, owi, oci});
      else
        E.reorder({n, oho, ocoo, ocoi, owo, ohi, owi, oci});
      rows = E.fuse(n, oho);
      gemmAt = colGroups > 1 ? owoo : ocoo;
      if (config.parallel && N * TH >= 2)
        E.parallel(rows);
    }
    E.unroll(ohi);
    E.unroll(owi);
    if (vec)
      E.vectorize(oci);
    handled.push_back(E);

    // M: computed per tile row x T oc blocks, all alpha^2 positions: [p | ic_o, ic_i | tile
    // column (R), oc_o (T), oc_i (vector)], accumulating in a small buffer indexed by constants
    // once unrolled (registers).
    te::Stage SM = s[M];
    SM.compute_at(E, gemmAt);
    std::vector<te::IterVar> order{M.axis(2)};
    for (const te::IterVar &iv : SM->rootIterVars)
      if (iv.isReduce())
        order.push_back(iv);
    order.push_back(M.axis(4));
    order.push_back(M.axis(3));
    order.push_back(M.axis(5));
    SM.reorder(order);
    SM.unroll(M.axis(4));
    SM.unroll(M.axis(3));
    if (vec)
      SM.vectorize(M.axis(5));
    handled.push_back(SM);

    // V: the input transform of a tile row, before the GEMM blocks read it.
    te::Stage SV = s[V];
    if (ocOuter) {
      te::IterVar vf = SV.fuse(SV.fuse(V.axis(0), V.axis(1)), V.axis(2));
      SV.reorder({vf, V.axis(4), V.axis(3), V.axis(5)});
      if (config.parallel)
        SV.parallel(vf);
    } else {
      SV.compute_at(E, rows);
      SV.reorder({V.axis(2), V.axis(4), V.axis(3), V.axis(5)});
    }
    SV.unroll(V.axis(3));
    const int64_t ib = constShape(V)[5];
    if (config.vectorize && ib >= 4)
      SV.vectorize(V.axis(5));
    handled.push_back(SV);

    // The padded input: once per kernel, rows in parallel.
    te::Stage SP = s[P];
    te::IterVar pf = SP.fuse(SP.fuse(P.axis(0), P.axis(1)), P.axis(2));
    if (config.parallel)
      SP.parallel(pf);
    if (config.vectorize && ib >= lanes && ib % lanes == 0)
      SP.vectorize(P.axis(4));
    handled.push_back(SP);

    desc += ", winograd F(" + std::to_string(m) + "x" + std::to_string(m) + ",3x3) gemm " +
            "reg_n " + std::to_string(regN) +
            (ocTile > 1 ? " x " + std::to_string(ocTile) + " oc blocks" : "") +
            (colGroups > 1 ? ", " + std::to_string(colGroups) + " column groups per tile row" : "") +
            (ocOuter ? ", oc blocks outer, input transform once" : ", tile rows outer");
  }
  return handled;
}

} // namespace tessel::compiler
