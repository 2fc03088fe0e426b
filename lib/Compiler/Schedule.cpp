//===- Schedule.cpp - default schedules of a fused kernel -----------------===//
//
// See Schedule.h. Correctness first: simple splits, no tiling. Extents are static (the
// compiler requires static shapes).
//
//===----------------------------------------------------------------------===//
#include "Schedule.h"
#include "ScheduleAttention.h"
#include "ScheduleConv.h"
#include "ScheduleDense.h"
#include "ScheduleWinograd.h"

#include "tessel/Support/DType.h"

#include <algorithm>
#include <sstream>

namespace tessel::compiler {

int64_t constExtent(const te::IterVar &iv) {
  const int64_t *e = loop::asConstInt(iv.dom().extent);
  return e ? *e : -1;
}

std::vector<int64_t> constShape(const te::Tensor &t) {
  std::vector<int64_t> r;
  for (const loop::Expr &e : t.shape()) {
    const int64_t *v = loop::asConstInt(e);
    r.push_back(v ? *v : -1);
  }
  return r;
}

int64_t constBytes(const te::Tensor &t) {
  int64_t bytes = int64_t(dtypeSize(t.dtype()));
  for (int64_t d : constShape(t)) {
    if (d < 0)
      return 0;
    bytes *= d;
  }
  return bytes;
}

namespace {

/// Fuses the leading `count` axes of `axes` into one; returns it.
te::IterVar fuseLeading(te::Stage &st, const std::vector<te::IterVar> &axes, size_t count) {
  te::IterVar f = axes[0];
  for (size_t i = 1; i < count; ++i)
    f = st.fuse(f, axes[i]);
  return f;
}

} // namespace

std::string applyDefaultSchedule(te::Schedule &s, const ScheduleConfig &config) {
  int inlined = 0, roots = 0, parallel = 0, vectorized = 0;
  std::string denseDesc; // ", dense 8x32 packedB parallel" per contraction
  // Blocked convolutions first (ScheduleConv.h): they schedule their epilogue and padding too.
  std::string convDesc;
  std::vector<te::Stage> convStages = scheduleBlockedConvs(s, config, convDesc);
  for (const te::Stage &st : scheduleWinogradConvs(s, config, convDesc))
    convStages.push_back(st);
  // An attention group (ScheduleAttention.h) as one row-block loop.
  for (const te::Stage &st : scheduleAttention(s, config, convDesc))
    convStages.push_back(st);
  // Copy: the contraction schedule adds cache stages (computed at their reader, scheduled
  // there), which this loop must not visit.
  std::vector<te::Stage> stages = s.stages();
  for (te::Stage st : stages) {
    const te::Tensor &t = st->tensor;
    if (t.isPlaceholder() ||
        std::any_of(convStages.begin(), convStages.end(), [&](const te::Stage &c) { return c.same_as(st); }))
      continue;
    bool isReduce = st->reduce.has_value();
    if (!st->isOutput && !isReduce) {
      st.compute_inline();
      ++inlined;
      continue;
    }
    ++roots;
    std::vector<te::IterVar> data;
    int64_t outElems = 1, reduceWork = 1;
    for (const te::IterVar &iv : st->rootIterVars) {
      int64_t e = constExtent(iv);
      if (e < 0)
        e = 1 << 10; // not constant: count as large
      if (iv.isReduce())
        reduceWork *= e;
      else {
        data.push_back(iv);
        outElems *= e;
      }
    }
    if (data.empty())
      continue;
    std::string dense;
    if (isReduce && config.denseContractions && scheduleContraction(s, st, config, dense)) {
      denseDesc += ", " + dense;
      parallel += dense.find("parallel") != std::string::npos;
      ++vectorized;
      continue;
    }
    size_t rank = data.size();
    int64_t inner = constExtent(data.back());
    int64_t lanes = 0;
    if (t.dtype() == DType::f32)
      lanes = config.vectorLanesF32;
    else if (t.dtype() == DType::f64)
      lanes = config.vectorLanesF32 / 2;
    bool vec = config.vectorize && !isReduce && lanes >= 2 && inner >= lanes;
    // Reductions: vectorize the innermost data axis inside the reduction loops
    // ([outer data, xo, reduce..., xi]): each reduction step updates `lanes` outputs at once.
    bool vecReduce = config.vectorize && config.vectorizeReductions && isReduce && lanes >= 2 &&
                     inner >= lanes;
    if (vecReduce) {
      auto [xo, xi] = st.split(data.back(), lanes);
      std::vector<te::IterVar> order(data.begin(), data.end() - 1);
      order.push_back(xo);
      for (const te::IterVar &iv : st->rootIterVars)
        if (iv.isReduce())
          order.push_back(iv);
      order.push_back(xi);
      st.reorder(order);
      st.vectorize(xi);
      ++vectorized;
      te::IterVar outer;
      int64_t outerExtent;
      if (rank >= 2) {
        outer = fuseLeading(st, data, rank - 1);
        outerExtent = outElems / inner;
        // Leading axes of extent 1 (a [1, N] matrix-vector product: mobilenet_v2's 1000-class
        // head) leave nothing to split between threads: the vector column blocks next to them
        // are the parallel loop instead (0.14 -> 0.10-0.11 ms at two threads, measured with the
        // other core busy; the same at one).
        if (outerExtent < 2) {
          outer = xo;
          outerExtent = (inner + lanes - 1) / lanes;
        }
      } else {
        outer = xo;
        outerExtent = (inner + lanes - 1) / lanes;
      }
      if (config.parallel && outerExtent >= 2 && outElems * reduceWork >= config.minParallelWork) {
        st.parallel(outer);
        ++parallel;
      }
      continue;
    }

    // The loop that may run in parallel: the fused outer data axes (all but the innermost when
    // the innermost is vectorized or rank > 1), else the outer part of the innermost split.
    te::IterVar outer;
    int64_t outerExtent = 1;
    if (vec) {
      auto [xo, xi] = st.split(data.back(), lanes);
      st.vectorize(xi);
      ++vectorized;
      if (rank >= 2) {
        outer = fuseLeading(st, data, rank - 1);
        outerExtent = outElems / inner;
      } else {
        outer = xo;
        outerExtent = (inner + lanes - 1) / lanes;
      }
    } else if (rank >= 2 && !isReduce) {
      outer = fuseLeading(st, data, rank - 1);
      outerExtent = outElems / std::max<int64_t>(inner, 1);
    } else {
      // Reductions: the data axes are the leading leaves (the reduction axes follow them).
      outer = fuseLeading(st, data, rank);
      outerExtent = outElems;
    }
    if (config.parallel && outerExtent >= 2 && outElems * reduceWork >= config.minParallelWork) {
      st.parallel(outer);
      ++parallel;
    }
  }
  std::ostringstream os;
  os << "inline " << inlined << ", root " << roots << ", parallel " << parallel << ", vectorized "
     << vectorized;
  os << denseDesc;
  os << convDesc;
  return os.str();
}

} // namespace tessel::compiler
