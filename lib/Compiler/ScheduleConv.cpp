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

std::vector<int64_t> constShape(const te::Tensor &t) {
  std::vector<int64_t> r;
  for (const loop::Expr &e : t.shape()) {
    const int64_t *v = loop::asConstInt(e);
    r.push_back(v ? *v : -1);
  }
  return r;
}

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

std::vector<te::Stage> scheduleBlockedConvs(te::Schedule &s, const ScheduleConfig &config,
                                            std::string &desc) {
  std::vector<te::Stage> handled;
  std::vector<te::Stage> convs;
  for (const te::Stage &st : s.stages())
    if (isBlockedConv(st))
      convs.push_back(st);
  for (te::Stage C : convs) {
    te::Tensor conv = C->tensor;
    // The output that reads the conv through elementwise computes (the fused epilogue).
    te::Tensor out;
    std::vector<te::Tensor> path;
    if (C->isOutput) {
      out = conv;
    } else {
      for (const te::Tensor &o : s.outputs()) {
        std::vector<te::Tensor> p;
        std::set<const te::OperationNode *> visited;
        if (!o.op()->reduce && constShape(o) == constShape(conv) && pathTo(o, conv, p, visited)) {
          if (out.defined()) { // read by two outputs: leave the conv to the default schedule
            out = te::Tensor();
            break;
          }
          out = o;
          path = p;
        }
      }
    }
    if (!out.defined())
      continue;
    // Every other reader of the conv must be on the path (else it would need the whole conv).
    bool ok = true;
    for (const te::Stage &st : s.stages()) {
      if (st->tensor.isPlaceholder() || st->tensor.same_as(out))
        continue;
      bool onPath = std::any_of(path.begin(), path.end(),
                                [&](const te::Tensor &p) { return p.same_as(st->tensor); });
      for (const te::Tensor &in : te::inputTensors(st->tensor))
        if (in.same_as(conv) && !onPath)
          ok = false;
    }
    if (!ok)
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
    const int64_t regN = chooseConvRegN(OW, ob, lanes);
    // A narrow output (resnet18's 7x7 layers: reg_n 7) gets two output-channel blocks per
    // tile, so that enough independent accumulators hide the FMA latency.
    const int64_t ocTile = regN < 12 && OCo % 2 == 0 ? 2 : 1;
    te::IterVar n = out.axis(0), oco = out.axis(1), oh = out.axis(2), ow = out.axis(3),
                oci = out.axis(4);
    auto [ocoo, ocoi] = E.split(oco, ocTile);
    auto [owo, owi] = E.split(ow, regN);
    E.reorder({n, ocoo, oh, owo, ocoi, owi, oci});
    E.unroll(ocoi);
    E.unroll(owi);
    if (config.vectorize && ob >= 4)
      E.vectorize(oci);
    te::IterVar outer = E.fuse(E.fuse(n, ocoo), oh);
    if (config.parallel && N * (OCo / ocTile) * OH >= 2)
      E.parallel(outer);
    C.compute_at(E, owo);
    // The conv's own loops: [n, oc_o, oh, ow, oc_i | reductions] -> reductions outside the
    // (oc tile x reg_n x oc_bn) tile.
    std::vector<te::IterVar> order;
    for (const te::IterVar &iv : C->rootIterVars)
      if (iv.isReduce())
        order.push_back(iv);
    order.push_back(conv.axis(1));
    order.push_back(conv.axis(3));
    order.push_back(conv.axis(4));
    C.reorder(order);
    C.unroll(conv.axis(1));
    C.unroll(conv.axis(3));
    if (config.vectorize && ob >= 4)
      C.vectorize(conv.axis(4));
    handled.push_back(C);
    handled.push_back(E);
    // The padded input: its own stage, once per kernel, rows in parallel. (Computing the
    // padded rows per output row inside the parallel loop instead was measured slower for
    // mobilenet_v2's depthwise convs: 0.22 -> 0.40 ms for the 112x112x32 one; for the
    // stride-2 ones alone it was within the noise: they are bound by reading their input.)
    for (const te::Tensor &in : te::inputTensors(conv)) {
      if (in.isPlaceholder() || in.op()->reduce || in.ndim() != 5)
        continue;
      te::Stage P = s[in];
      te::IterVar pf = P.fuse(P.fuse(in.axis(0), in.axis(1)), in.axis(2));
      const int64_t ib = constShape(in)[4];
      if (config.vectorize && ib >= lanes && ib % lanes == 0)
        P.vectorize(in.axis(4));
      if (config.parallel)
        P.parallel(pf);
      handled.push_back(P);
    }
    desc += ", conv nchwc reg_n " + std::to_string(regN) +
            (ocTile > 1 ? " x " + std::to_string(ocTile) + " oc blocks" : "");
  }
  return handled;
}

} // namespace tessel::compiler
