//===- ScheduleAttention.cpp - attention as one kernel ---------------------===//
//
// See ScheduleAttention.h. The stages are found by the names their lowerings give them:
// MatMul's contraction "matmul_<dtype>_<node>", Softmax's row-wise stages "softmax_<dtype>_
// <node>[_max_partial|_max|_exp|_sum_partial|_sum]" (lib/Graph/Ops/Normalization.cpp).
//
//===----------------------------------------------------------------------===//
#include "ScheduleAttention.h"

namespace tessel::compiler {

namespace {

bool isSumOverOneAxis(const te::Stage &st) {
  return st->reduce && st->reduce->op == loop::ReduceOp::Add && st->reduce->axes.size() == 1 &&
         !st->reduce->condition.defined();
}

/// The largest of 2 * lanes, lanes that divides n; 0 when neither does.
int64_t vectorTile(int64_t n, int64_t lanes) {
  return n % (2 * lanes) == 0 ? 2 * lanes : n % lanes == 0 ? lanes : 0;
}

} // namespace

std::vector<te::Stage> scheduleAttention(te::Schedule &s, const ScheduleConfig &config,
                                         std::string &desc) {
  const int64_t lanes = config.vectorLanesF32;
  if (!config.vectorize || lanes < 4)
    return {};
  // O = P V: the output, a sum over one axis, reading P (Softmax's output stage).
  te::Stage O;
  for (const te::Stage &st : s.stages())
    if (st->isOutput && !st->tensor.isPlaceholder() && isSumOverOneAxis(st) &&
        st->tensor.name().starts_with("matmul_"))
      O = st;
  if (!O.defined() || O->tensor.dtype() != DType::f32)
    return {};
  te::Tensor P;
  for (const te::Tensor &in : te::inputTensors(O->tensor))
    if (!in.isPlaceholder() && !in.op()->reduce && in.name().starts_with("softmax_"))
      P = in;
  if (!P.defined())
    return {};
  // S = Q K^T, the Softmax's row stages (and P), the elementwise nodes between S and Softmax.
  te::Stage S;
  std::vector<te::Stage> rows, inlined;
  for (const te::Stage &st : s.stages()) {
    if (st->tensor.isPlaceholder() || st.same_as(O))
      continue;
    if (st->tensor.dtype() != DType::f32 || st->isOutput)
      return {};
    if (st->reduce && st->tensor.name().starts_with("matmul_")) {
      if (S.defined() || !isSumOverOneAxis(st))
        return {};
      S = st;
    } else if (st->reduce || st->tensor.same_as(P)) {
      if (!st->tensor.name().starts_with("softmax_"))
        return {};
      rows.push_back(st);
    } else {
      inlined.push_back(st);
    }
  }
  if (!S.defined() || rows.size() < 2)
    return {};
  const te::Tensor &o = O->tensor, &sc = S->tensor;
  const size_t r = o.ndim();
  if (r < 2 || sc.ndim() != r || P.ndim() != r)
    return {};
  for (size_t d = 0; d < r; ++d)
    if (constExtent(o.axis(d)) < 1 || constExtent(sc.axis(d)) < 1)
      return {};
  const int64_t M = constExtent(o.axis(r - 2)), N = constExtent(o.axis(r - 1));
  const int64_t keys = constExtent(sc.axis(r - 1));
  const int64_t mr = M % 8 == 0 ? 8 : M % 4 == 0 ? 4 : 0;
  const int64_t nr = vectorTile(N, lanes), kr = vectorTile(keys, lanes);
  if (!mr || !nr || !kr || constExtent(sc.axis(r - 2)) != M)
    return {};

  for (te::Stage st : inlined)
    st.compute_inline();
  // O: [(batch, i / mr) | d / nr | j | i % mr, d % nr]
  te::IterVar j = O->reduce->axes[0];
  auto [io, ii] = O.split(o.axis(r - 2), mr);
  auto [dOut, dIn] = O.split(o.axis(r - 1), nr);
  std::vector<te::IterVar> order;
  for (size_t d = 0; d + 2 < r; ++d)
    order.push_back(o.axis(d));
  order.insert(order.end(), {io, dOut, j, ii, dIn});
  O.reorder(order);
  O.unroll(ii);
  O.vectorize(dIn);
  te::IterVar par = io;
  for (size_t d = r - 2; d-- > 0;)
    par = O.fuse(o.axis(d), par);
  if (config.parallel && constExtent(par) >= 2)
    O.parallel(par);
  // S at the row block: [j / kr | k | i (mr), j % kr], the dense 8 x 32 register tile.
  S.compute_at(O, par);
  te::IterVar k = S->reduce->axes[0];
  auto [jo, ji] = S.split(sc.axis(r - 1), kr);
  S.reorder({jo, k, sc.axis(r - 2), ji});
  S.unroll(sc.axis(r - 2));
  S.vectorize(ji);
  // The row stages at the row block, the last axis vectorized inside their reductions.
  for (te::Stage st : rows) {
    st.compute_at(O, par);
    const te::IterVar c = st->tensor.axis(r - 1);
    const int64_t ext = constExtent(c);
    if (ext < lanes || ext % lanes != 0)
      continue;
    auto [co, ci] = st.split(c, lanes);
    std::vector<te::IterVar> ord{co};
    if (st->reduce)
      for (const te::IterVar &red : st->reduce->axes)
        ord.push_back(red);
    ord.push_back(ci);
    st.reorder(ord);
    st.vectorize(ci);
  }
  desc += ", attention rows " + std::to_string(mr) + " x " + std::to_string(nr) +
          ", scores at the row block";
  std::vector<te::Stage> handled{O, S};
  handled.insert(handled.end(), rows.begin(), rows.end());
  handled.insert(handled.end(), inlined.begin(), inlined.end());
  return handled;
}

} // namespace tessel::compiler
