//===- ScheduleDense.cpp - register-tiled contractions ---------------------===//
//
// See ScheduleDense.h. The structure is te::scheduleDenseGemm's (include/tessel/TE/Gemm.h:
// panel-outer loop order, the tile accumulated in the output, whose loads and stores LLVM keeps
// in registers across k) applied to the stage the lowering made, whatever its batch axes and
// broadcasts, so the epilogue (bias, ReLU, residual Add) stays fused in the same kernel.
//
//===----------------------------------------------------------------------===//
#include "ScheduleDense.h"

#include "tessel/Loop/Visitor.h"

#include <algorithm>
#include <set>

namespace tessel::compiler {

namespace {

/// The variables each load of an expression reads in its indices.
class LoadVars : public loop::IRVisitor {
public:
  using IRVisitor::visit;
  std::vector<std::set<const loop::VarNode *>> loads;
  std::vector<loop::Buffer> buffers; ///< per load

private:
  std::set<const loop::VarNode *> *current = nullptr;
  void visit(const loop::VarNode *op) override {
    if (current)
      current->insert(op);
  }
  void visit(const loop::LoadNode *op) override {
    std::set<const loop::VarNode *> vars, *saved = current;
    current = &vars;
    for (const loop::Expr &i : op->indices)
      visit(i);
    current = saved;
    if (current) // a load inside an index: its variables count for the outer load too
      current->insert(vars.begin(), vars.end());
    loads.push_back(std::move(vars));
    buffers.push_back(op->buffer);
  }
};

} // namespace

bool scheduleContraction(te::Schedule &s, te::Stage st, const ScheduleConfig &config,
                         std::string &desc) {
  const te::Tensor &t = st->tensor;
  if (!st->reduce || st->reduce->op != loop::ReduceOp::Add || st->reduce->axes.size() != 1 ||
      st->reduce->condition.defined() || t.dtype() != DType::f32 || !config.vectorize)
    return false;
  const int64_t L = config.vectorLanesF32;
  if (L < 4)
    return false;
  std::vector<te::IterVar> data;
  te::IterVar k;
  for (const te::IterVar &iv : st->rootIterVars) {
    if (constExtent(iv) < 1)
      return false;
    if (iv.isReduce())
      k = iv;
    else
      data.push_back(iv);
  }
  if (data.empty() || !k.defined() || st->leafIterVars.size() != st->rootIterVars.size())
    return false; // already scheduled
  const te::IterVar j = data.back();
  const int64_t N = constExtent(j);
  LoadVars lv;
  lv.visit(st->reduce->source);
  auto uses = [](const std::set<const loop::VarNode *> &s, const te::IterVar &iv) {
    return s.count(iv.var().get()) != 0;
  };
  // The row axis: the largest data axis that no load using j uses (B does not depend on it),
  // whose extent the row tile divides.
  te::IterVar r;
  int64_t mr = 0;
  const int64_t rowTiles[] = {8, 6, 4, 3, 2};
  for (size_t d = 0; d + 1 < data.size(); ++d) {
    bool shared = true;
    for (const auto &s : lv.loads)
      if (uses(s, j) && uses(s, data[d]))
        shared = false;
    if (!shared)
      continue;
    int64_t e = constExtent(data[d]);
    for (int64_t m : rowTiles)
      if (e % m == 0) {
        if (m > mr || (m == mr && e > constExtent(r))) {
          mr = m;
          r = data[d];
        }
        break;
      }
  }
  // Columns: 2 vectors per row with a row tile (mr x 2 accumulators + 2 B vectors + a
  // broadcast fit 16 registers for mr <= 6, 32 for 8); up to 4 without one.
  int64_t nr = 0;
  const int64_t registers = L >= 16 ? 32 : 16;
  std::vector<int64_t> colTiles =
      mr ? std::vector<int64_t>{2 * L, L} : std::vector<int64_t>{4 * L, 2 * L, L};
  for (int64_t c : colTiles) {
    if (N % c != 0)
      continue;
    if (mr && mr * (c / L) + c / L + 1 > registers)
      continue;
    nr = c;
    break;
  }
  if (!nr) {
    // A few columns that do not tile by vectors and no row tile (the mlp's 10-class head,
    // [1, 256] x [256, 10]): k outside, the columns unrolled inside, so that the N scalar
    // accumulators are independent FMA chains held in registers (the default schedule ran
    // N serial chains of K dependent FMAs: 1.9 us for 2560 multiply-adds).
    if (mr || N > 32)
      return false;
    std::vector<te::IterVar> order(data.begin(), data.end() - 1);
    order.push_back(k);
    order.push_back(j);
    st.reorder(order);
    st.unroll(j);
    desc = "dense 1x" + std::to_string(N) + " scalar";
    return true;
  }
  auto [jo, ji] = st.split(j, nr);
  // Axes of extent 1 stay outermost, unfused: a fused index with a trivial factor would
  // carry a division and a remainder into every address of the tile, which keeps LLVM from
  // proving the tile's rows disjoint and holding them in registers across k.
  std::vector<te::IterVar> order, outer, unit;
  for (size_t d = 0; d + 1 < data.size(); ++d)
    if (!r.defined() || !data[d].same_as(r))
      (constExtent(data[d]) == 1 ? unit : outer).push_back(data[d]);
  outer.push_back(jo);
  te::IterVar ro, ri;
  if (r.defined())
    std::tie(ro, ri) = st.split(r, mr);
  order = unit;
  order.insert(order.end(), outer.begin(), outer.end());
  if (ro.defined())
    order.push_back(ro);
  order.push_back(k);
  if (ri.defined())
    order.push_back(ri);
  order.push_back(ji);
  st.reorder(order);
  if (ri.defined())
    st.unroll(ri);
  st.vectorize(ji);
  int64_t outerExtent = 1;
  for (const te::IterVar &iv : outer)
    outerExtent *= constExtent(iv);
  const int64_t batchExtent = outerExtent / constExtent(jo);
  const int64_t work = outerExtent * constExtent(k) * nr * (ro.defined() ? constExtent(r) : 1);
  // Batch axes (attention's heads) with enough iterations for the threads (an even count, or
  // >= 8) are the parallel loop on their own, and the column panels a serial loop inside:
  // fused with jo, every tile address carried (fused / panels) * stride + (fused % panels) * nr,
  // a division and a remainder that LLVM's alias analysis could not see through, so the
  // accumulators went through memory every k step (attention's Q * K^T: ~105 GFLOP/s; now
  // ~250 with this and EmitLLVM's constant-offset addresses).
  te::IterVar panel = jo, parLoop;
  int64_t parExtent = outerExtent;
  if (outer.size() >= 2 && (batchExtent % 2 == 0 || batchExtent >= 8)) {
    parLoop = outer[0];
    for (size_t i = 1; i + 1 < outer.size(); ++i)
      parLoop = st.fuse(parLoop, outer[i]);
    parExtent = batchExtent;
  } else {
    panel = outer[0];
    for (size_t i = 1; i < outer.size(); ++i)
      panel = st.fuse(panel, outer[i]);
    parLoop = panel;
  }
  bool par = config.parallel && parExtent >= 2 && work >= config.minParallelWork;
  if (par)
    st.parallel(parLoop);
  // The panel of B (what the loads that use j read: K x nr, whole rows of nr floats) copied
  // into a contiguous local buffer inside the panel loop, once per panel: every row tile then
  // reads it with unit stride (a strided panel of a row-major B with a power-of-two row
  // length maps onto a few L1 sets and is evicted between row tiles).
  bool packed = false, prefetched = false;
  if (ro.defined() && constExtent(r) / mr >= 2) {
    loop::Buffer bbuf;
    bool one = true;
    for (size_t i = 0; i < lv.loads.size(); ++i)
      if (uses(lv.loads[i], j)) {
        if (bbuf.defined() && !bbuf.same_as(lv.buffers[i]))
          one = false;
        bbuf = lv.buffers[i];
      }
    // B must be read by the panel loads only (A * A^T reads one buffer both ways; the copy
    // would then have to hold A's rows too).
    for (size_t i = 0; i < lv.loads.size() && bbuf.defined(); ++i)
      if (!uses(lv.loads[i], j) && bbuf.same_as(lv.buffers[i]))
        one = false;
    te::Stage bst = bbuf.defined() && one ? s.stageOfBuffer(bbuf) : te::Stage();
    if (bst.defined() && bst->attach != te::AttachKind::Inline && bst->tensor.ndim() >= 2) {
      te::Tensor B = bst->tensor;
      te::Tensor Bp = s.cache_read(B, "local", {t});
      te::Stage pst = s[Bp];
      pst.compute_at(st, panel);
      const int64_t last = constExtent(Bp.axis(Bp.ndim() - 1));
      if (last >= L && last % L == 0)
        pst.vectorize(pst.split(Bp.axis(Bp.ndim() - 1), L).second);
      // A B of 512 KiB or more (the transformer's weights: 1-4 MiB per MatMul, 50 MiB in all)
      // streams from DRAM at about the rate the tiles consume it (16 FLOP per byte at 32
      // rows): the copy prefetches the rows 16 ahead (2 KiB at nr 32), so the stream
      // overlaps the copy instead of stalling it. Transformer MatMuls 207-222 -> 221-230
      // GFLOP/s at one thread, the model 4.40 -> 4.26-4.30 ms (distances 4, 8, 32: 4.28-4.35).
      if (constBytes(B) >= kStreamedWeightBytes) {
        pst.prefetch(B, Bp.axis(Bp.ndim() - 2), 16);
        prefetched = true;
      }
      packed = true;
    }
  }
  desc = "dense " + std::to_string(std::max<int64_t>(mr, 1)) + "x" + std::to_string(nr) +
         (packed ? " packedB" : "") + (prefetched ? " prefetched" : "") +
         (par ? " parallel" : "");
  return true;
}

} // namespace tessel::compiler
