//===- ScheduleConv.cpp - blocked convolution schedules -------------------===//
//
// See ScheduleConv.h. The conv's stages are found by name: the lowering of tessel::ConvNCHWc
// (lib/Graph/Ops/Layout.cpp) names its reduction "convnchwc_<dtype>_<node>[_nobias]" and its
// padded input "..._pad".
//
//===----------------------------------------------------------------------===//
#include "ScheduleConv.h"

#include <algorithm>
#include <set>

namespace tessel::compiler {

namespace {

bool isBlockedConv(const te::Stage &st) {
  const te::Tensor &t = st->tensor;
  return !t.isPlaceholder() && st->reduce.has_value() && t.ndim() == 5 &&
         t.name().rfind("convnchwc_", 0) == 0 && t.dtype() == DType::f32;
}

/// The path of non-reduction computes from `from` (exclusive) up to `to` (inclusive) when `to`
/// reads `from` only through such computes; empty when it does not read it at all.
bool pathTo(const te::Tensor &to, const te::Tensor &from, std::vector<te::Tensor> &path,
            std::set<const te::OperationNode *> &visited) {
  if (!visited.insert(to.op()).second)
    return false;
  bool found = false;
  for (const te::Tensor &in : te::inputTensors(to)) {
    if (in.same_as(from)) {
      found = true;
      continue;
    }
    if (in.isPlaceholder() || in.op()->reduce)
      continue;
    if (pathTo(in, from, path, visited)) {
      path.push_back(in);
      found = true;
    }
  }
  return found;
}

} // namespace

te::Tensor epilogueOutput(const te::Schedule &s, const te::Tensor &conv,
                          std::vector<te::Tensor> &path) {
  // The output that reads the conv through elementwise computes (the fused epilogue).
  te::Tensor out;
  path.clear();
  if (s[conv]->isOutput) {
    out = conv;
  } else {
    for (const te::Tensor &o : s.outputs()) {
      std::vector<te::Tensor> p;
      std::set<const te::OperationNode *> visited;
      if (!o.op()->reduce && constShape(o) == constShape(conv) && pathTo(o, conv, p, visited)) {
        if (out.defined()) // read by two outputs: leave the conv to the default schedule
          return te::Tensor();
        out = o;
        path = p;
      }
    }
  }
  if (!out.defined())
    return out;
  // Every other reader of the conv must be on the path (else it would need the whole conv).
  for (const te::Stage &st : s.stages()) {
    if (st->tensor.isPlaceholder() || st->tensor.same_as(out))
      continue;
    bool onPath = std::any_of(path.begin(), path.end(),
                              [&](const te::Tensor &p) { return p.same_as(st->tensor); });
    for (const te::Tensor &in : te::inputTensors(st->tensor))
      if (in.same_as(conv) && !onPath)
        return te::Tensor();
  }
  return out;
}

int64_t chooseConvRegN(int64_t ow, int64_t ocBlock, int64_t lanes) {
  const int64_t registers = lanes >= 16 ? 32 : 16;
  const int64_t vecPerPoint = std::max<int64_t>(1, (ocBlock + lanes - 1) / lanes);
  // accumulators + one weight vector per accumulator column + one broadcast
  int64_t maxRegN = std::max<int64_t>(1, (registers - vecPerPoint - 1) / vecPerPoint);
  maxRegN = std::min<int64_t>(maxRegN, 28);
  for (int64_t r = std::min(ow, maxRegN); r >= 1; --r)
    if (ow % r == 0)
      return r;
  return 1;
}

namespace {

/// tessel::ToBlocked as a kernel's output, [n, C/c, h, w, c] from [n, C, h, w]: a transpose of
/// the channel axis to the innermost place. Rows (in parallel when large), then [w | c] with c
/// unrolled (up to 16; the first layer's c = 3), so the loop over w is a plain counted loop
/// with constant strides that LLVM vectorizes, no div/mod of a fused index per element (the
/// default schedule's: 0.127 ms for mobilenet_v2's 3x224x224 input, now 0.017 ms).
bool scheduleToBlocked(te::Stage E, const ScheduleConfig &config) {
  const te::Tensor &t = E->tensor;
  if (t.isPlaceholder() || E->reduce || !E->isOutput || t.ndim() != 5 ||
      t.name().rfind("toblocked_", 0) != 0)
    return false;
  const std::vector<int64_t> shape = constShape(t);
  if (std::any_of(shape.begin(), shape.end(), [](int64_t d) { return d < 0; }) || shape[4] > 16)
    return false;
  te::IterVar rows = E.fuse(E.fuse(t.axis(0), t.axis(1)), t.axis(2));
  E.unroll(t.axis(4));
  // In parallel only when large: for mobilenet_v2's 150528-element input the second thread's
  // start cost more than it saved (2 threads: 0.030 ms parallel, 0.018 ms on one thread).
  if (config.parallel && shape[0] * shape[1] * shape[2] >= 2 &&
      shape[0] * shape[1] * shape[2] * shape[3] * shape[4] >= (int64_t(1) << 20))
    E.parallel(rows);
  return true;
}

} // namespace

int64_t chooseDepthwiseRowChunk(int64_t outerTiles, int64_t oh, int64_t paddedH,
                                int64_t paddedW, int64_t kh, int64_t lanesPerPoint) {
  // Input rows per output row (the stride, for dilation 1).
  const int64_t step = oh > 1 ? std::max<int64_t>(1, (paddedH - kh) / (oh - 1)) : 1;
  const int64_t budget = 32 * 1024; // bytes of the padded-rows buffer: within L1 (32-48 KiB)
  int64_t best = 1;
  for (int64_t r = 1; r <= oh; ++r) {
    if (oh % r)
      continue;
    const int64_t rows = std::min(paddedH, (r - 1) * step + kh);
    if (r > 1 && rows * paddedW * lanesPerPoint * 4 > budget)
      break;
    // Keep enough parallel chunks for 2 threads to share evenly (>= 8 when there are that
    // many rows to split).
    if (r > 1 && outerTiles * (oh / r) < std::min<int64_t>(8, outerTiles * oh))
      break;
    best = r;
  }
  return best;
}

std::vector<te::Stage> scheduleBlockedConvs(te::Schedule &s, const ScheduleConfig &config,
                                            std::string &desc) {
  std::vector<te::Stage> handled;
  for (const te::Stage &st : s.stages())
    if (scheduleToBlocked(st, config)) {
      handled.push_back(st);
      desc += ", toblocked rows x w x c unrolled";
    }
  std::vector<te::Stage> convs;
  for (const te::Stage &st : s.stages())
    if (isBlockedConv(st))
      convs.push_back(st);
  for (te::Stage C : convs) {
    te::Tensor conv = C->tensor;
    std::vector<te::Tensor> path;
    te::Tensor out = epilogueOutput(s, conv, path);
    if (!out.defined())
      continue;
    if (out.same_as(conv)) {
      // No epilogue: accumulate in a local tile that the output copies.
      te::Tensor acc = s.cache_write(conv, "local");
      C = s[acc];
      conv = acc;
    }
    for (const te::Tensor &p : path) {
      s[p].compute_inline();
      handled.push_back(s[p]);
    }
    te::Stage E = s[out];
    const std::vector<int64_t> shape = constShape(out);
    const int64_t N = shape[0], OCo = shape[1], OH = shape[2], OW = shape[3], ob = shape[4];
    if (N < 0 || OCo < 0 || OH < 0 || OW < 0 || ob < 0)
      continue;
    const int64_t lanes = config.vectorLanesF32;
    int64_t regN = chooseConvRegN(OW, ob, lanes);
    // The conv's reduction axes: [kh, kw] for a depthwise conv, [ic_o, kh, kw, ic_i] else.
    std::vector<te::IterVar> order;
    for (const te::IterVar &iv : C->rootIterVars)
      if (iv.isReduce())
        order.push_back(iv);
    const bool depthwise = order.size() == 2;
    // A regular conv whose output rows split into tiles of 12 to 14 columns (a whole row of
    // the 14x14 layers, or a divisor of a wider row: 28, 56, 112) and that has an even number
    // of full-vector oc blocks gets two output-channel blocks per tile, the oc blocks inside
    // the output columns (`ow-major`): 28 accumulators, and per reduction step 2 weight
    // vectors and 14 broadcasts (each used by the two FMAs next to it, so one or two broadcast
    // registers suffice: 32 in all) instead of the 28 broadcasts + 1 weight vector of a 28-wide
    // tile or of two rows per tile (29 loads per 28 FMAs: load-bound). resnet18's 14x14 3x3
    // convs: 229-232 -> 242-245 GFLOP/s; then for wider rows (reg_n 14 instead of 28) its
    // 56x56 and 28x28 convs 245-251 -> 256-265, the 7x7/2 stem 247 -> 254-257, the 1x1/2
    // downsample 220 -> 241-252, the model 14.75 -> 14.30 ms at one thread; mobilenet_v2's
    // 112x112 16 -> 96 1x1 conv 0.198 -> 0.175 ms. With the oc blocks outside ow, the 14
    // broadcasts stay live across both blocks and spill (1.33 ms vs 1.03).
    const int64_t vecPerPoint = std::max<int64_t>(1, (ob + lanes - 1) / lanes);
    const int64_t registers = lanes >= 16 ? 32 : 16;
    if (!depthwise && OCo % 2 == 0 && ob % lanes == 0 && OW > 14)
      for (int64_t r = 14; r >= 12; --r)
        if (OW % r == 0) {
          regN = r;
          break;
        }
    const bool owMajorOcPair = !depthwise && OCo % 2 == 0 && OW % regN == 0 && regN >= 12 &&
                               regN <= 14 &&
                               2 * regN * vecPerPoint + 2 * vecPerPoint + 2 <= registers;
    // A narrow output (resnet18's 7x7 layers: reg_n 7) gets two output-channel blocks per
    // tile, so that enough independent accumulators hide the FMA latency.
    const int64_t ocTile = (regN < 12 || owMajorOcPair) && OCo % 2 == 0 ? 2 : 1;
    bool prefetched = false; // the weights stream with prefetches (below)
    te::Tensor padded; // the conv's zero-padded input stage, if any
    for (const te::Tensor &in : te::inputTensors(conv))
      if (!in.isPlaceholder() && !in.op()->reduce && in.ndim() == 5)
        padded = in;
    // Depthwise: output rows in chunks of `rowChunk`, the padded rows of a chunk computed
    // right before it (see chooseDepthwiseRowChunk). Not with two oc blocks per tile (the 7x7
    // layers): there one row per chunk measured faster (mobilenet_v2's 7x7x960: 3.9 vs 5.2 us).
    int64_t rowChunk = 1;
    // A narrow regular conv with a spatial kernel (resnet18's 3x3 convs on 7x7 outputs: two oc
    // blocks per tile, the whole row in the tile) computes all its output rows per oc-block
    // pair, with the rows inside the [ic_o, kh, kw] reduction loops (see the file comment):
    // each weight vector, loaded once, serves all rows while it is in L1.
    bool allRows = !depthwise && ocTile == 2 && OW == regN && !owMajorOcPair;
    if (allRows) {
      const int64_t *kh = loop::asConstInt(order[1].dom().extent);
      const int64_t *kw = loop::asConstInt(order[2].dom().extent);
      allRows = kh && kw && *kh * *kw > 1;
    }
    if (allRows)
      rowChunk = OH;
    if (depthwise && padded.defined() && ocTile == 1) {
      const std::vector<int64_t> ps = constShape(padded);
      const int64_t *kh = loop::asConstInt(order[0].dom().extent);
      if (kh && ps[2] > 0 && ps[3] > 0)
        rowChunk = chooseDepthwiseRowChunk(N * (OCo / ocTile), OH, ps[2], ps[3], *kh,
                                           ocTile * ps[4]);
    }
    te::IterVar n = out.axis(0), oco = out.axis(1), oh = out.axis(2), ow = out.axis(3),
                oci = out.axis(4);
    auto [ocoo, ocoi] = E.split(oco, ocTile);
    // A regular conv whose whole output row is one tile of at most 14 and that has no oc pair
    // (one oc block, or an odd number) gets two rows per register tile (28 accumulators):
    // each weight vector serves 28 outputs per load instead of 14 (resnet18's 14x14 3x3 convs
    // went 196-219 -> 225-232 GFLOP/s with it, before the ow-major oc pair replaced it there).
    const int64_t rowTile =
        !depthwise && ocTile == 1 && rowChunk == 1 && OW == regN && regN * 2 <= 28 && OH % 2 == 0
            ? 2
            : 1;
    auto [oho, ohi] = E.split(oh, rowTile > 1 ? rowTile : rowChunk);
    auto [owo, owi] = E.split(ow, regN);
    if (rowTile > 1) {
      E.reorder({n, ocoo, oho, owo, ohi, ocoi, owi, oci});
      E.unroll(ohi);
    } else {
      E.reorder({n, ocoo, oho, ohi, owo, ocoi, owi, oci});
    }
    E.unroll(ocoi);
    E.unroll(owi);
    if (config.vectorize && ob >= 4)
      E.vectorize(oci);
    te::IterVar outer = E.fuse(E.fuse(n, ocoo), oho);
    if (config.parallel && N * (OCo / ocTile) * (OH / rowChunk / rowTile) >= 2)
      E.parallel(outer);
    // The conv's own loops: [n, oc_o, oh, ow, oc_i | reductions] -> reductions outside the
    // ([row tile x] oc tile x reg_n x oc_bn) tile; with all rows per tile, the rows between the
    // spatial reduction and ic_i: [ic_o, kh, kw, oh, ic_i | oc tile, ow, oc_i].
    if (allRows) {
      C.compute_at(E, outer);
      C.reorder({conv.axis(0), order[0], order[1], order[2], conv.axis(2), order[3],
                 conv.axis(1), conv.axis(3), conv.axis(4)});
    } else {
      C.compute_at(E, owo);
      if (rowTile > 1) {
        order.push_back(conv.axis(2));
        C.unroll(conv.axis(2));
      }
      if (owMajorOcPair) {
        order.push_back(conv.axis(3));
        order.push_back(conv.axis(1));
      } else {
        order.push_back(conv.axis(1));
        order.push_back(conv.axis(3));
      }
      order.push_back(conv.axis(4));
      C.reorder(order);
    }
    C.unroll(conv.axis(1));
    C.unroll(conv.axis(3));
    // Weights too large to stay in L2 between inferences (>= 512 KiB: resnet18's 28x28,
    // 14x14 and 7x7 layers) stream from L3 or DRAM, and the hardware prefetcher does not run
    // far enough ahead of this bursty stream: the 7x7 layers reached 255 GFLOP/s with their
    // weights in cache but 217 streaming them. Each kw step prefetches the weights that the
    // step kPrefetchSteps later reads (2-4 KiB ahead; the index is linear, so near the end of
    // an oc block it reaches into what comes next): 7x7 layers 217 -> 248-253 GFLOP/s, 14x14
    // ones 243 -> 250-252 (distances 1, 2, 4, 8 measured: 2 and 4 best). Smaller weights stay
    // in L2, where the extra loads only cost issue slots.
    if (!depthwise) {
      constexpr int64_t kPrefetchSteps = 2;
      for (const te::Tensor &w : te::inputTensors(conv)) {
        if (!w.isPlaceholder() || w.ndim() != 6)
          continue;
        if (constBytes(w) >= kStreamedWeightBytes) {
          C.prefetch(w, order[2], kPrefetchSteps);
          prefetched = true;
        }
      }
    }
    // Depthwise: the kh x kw taps unrolled too (up to 3x3), so the tile's loads use constant
    // offsets and no loop runs per tap (mobilenet_v2's 112x112 and 56x56 ones: 20-35% faster;
    // unrolling kw alone helped only the stride-2 one).
    const int64_t *taps[2] = {loop::asConstInt(order[0].dom().extent),
                              loop::asConstInt(order[1].dom().extent)};
    if (depthwise && taps[0] && taps[1] && *taps[0] * *taps[1] <= 9) {
      C.unroll(order[0]);
      C.unroll(order[1]);
    }
    if (config.vectorize && ob >= 4)
      C.vectorize(conv.axis(4));
    handled.push_back(C);
    handled.push_back(E);
    // The padded input. Depthwise: computed per chunk of output rows, inside the parallel
    // loop, into a small buffer that stays in L1 while the chunk reads it; the input is read
    // from memory once (the whole padded copy, written and read back, doubled the traffic of
    // these memory-bound kernels: mobilenet_v2's stride-2 112x112x96 one went 0.35 -> 0.17 ms
    // with the chunks, then 0.11 ms with the taps unrolled).
    // A regular conv: its own stage, once per kernel, rows in parallel (per row chunk it was
    // slower for resnet18: 16.9 -> 19.4 ms, each chunk copies all input channels' rows).
    if (padded.defined()) {
      te::Stage P = s[padded];
      const int64_t ib = constShape(padded)[4];
      if (depthwise) {
        P.compute_at(E, outer);
      } else {
        te::IterVar pf = P.fuse(P.fuse(padded.axis(0), padded.axis(1)), padded.axis(2));
        if (config.parallel)
          P.parallel(pf);
      }
      if (config.vectorize && ib >= lanes && ib % lanes == 0)
        P.vectorize(padded.axis(4));
      handled.push_back(P);
    }
    desc += ", conv nchwc reg_n " + std::to_string(regN) +
            (ocTile > 1 ? " x " + std::to_string(ocTile) + " oc blocks" : "") +
            (owMajorOcPair ? ", ow-major" : "") +
            (rowTile > 1 ? " x " + std::to_string(rowTile) + " rows" : "") +
            (allRows ? ", all rows per tile inside kh, kw" : "") +
            (prefetched ? ", weights prefetched 2 kw steps ahead" : "") +
            (depthwise && padded.defined() ? ", padded rows per " + std::to_string(rowChunk) +
                                                 " output rows"
                                           : "");
  }
  return handled;
}

} // namespace tessel::compiler
