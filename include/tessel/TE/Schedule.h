//===- Schedule.h - how tensor expressions become loops ---------*- C++ -*-===//
//
// A Schedule holds one Stage per operation reachable from its outputs (producers first). A
// Stage starts with one loop per axis of its compute (output axes, then reduction axes) and is
// transformed by primitives that record relations between IterVars, as in TVM:
//
//   auto s = te::create_schedule(C);
//   auto [xo, xi] = s[C].split(C.axis(0), 8);       // xo * 8 + xi, tail guarded
//   s[C].vectorize(xi);
//   s[C].parallel(xo);
//   s[B].compute_at(s[C], xo);                      // B computed per tile of C
//
// Every primitive checks its operands and throws tessel::Error naming the stage and the axis:
// vectorize/parallel of a reduction axis, an axis that is not (or no longer) a leaf of the
// stage, reorder with duplicates, compute_inline of a reduction or an output, fuse of axes that
// are not adjacent or of different kinds, ... Lowering (Lower.h) turns a Schedule into loop IR.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/TE/Tensor.h"

#include <array>
#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace tessel::te {

/// parent = outer * factor + inner (factor given, or derived from nparts).
struct SplitRelation {
  IterVar parent, outer, inner;
  Expr factor; ///< defined: split by factor
  Expr nparts; ///< defined: split into nparts outer iterations
};
/// fused = outer * extent(inner) + inner.
struct FuseRelation {
  IterVar outer, inner, fused;
};

enum class AttachKind : uint8_t { Root, Inline, Scope };

struct StorageAlign {
  int dim;
  int64_t factor, offset;
};

/// Stage::prefetch: at the start of each iteration of `axis`, prefetch the region of `tensor`
/// that the iteration `offset` iterations later reads.
struct PrefetchSpec {
  Tensor tensor;
  IterVar axis;
  int64_t offset;
};

struct StageNode;
struct ScheduleNode;
class Schedule;

/// One operation's loop nest in a schedule. A handle: copies refer to the same stage.
class Stage {
public:
  Stage() = default;
  explicit Stage(std::shared_ptr<StageNode> n) : node_(std::move(n)) {}

  bool defined() const { return node_ != nullptr; }
  StageNode *get() const { return node_.get(); }
  StageNode *operator->() const { return node_.get(); }
  bool same_as(const Stage &o) const { return node_ == o.node_; }
  const std::string &name() const;

  /// parent -> (outer, inner) with inner of extent `factor` (a positive constant).
  std::pair<IterVar, IterVar> split(const IterVar &parent, int64_t factor);
  /// parent -> (outer, inner) with outer of extent `nparts` (a positive constant).
  std::pair<IterVar, IterVar> split_nparts(const IterVar &parent, int64_t nparts);
  /// Two adjacent leaf axes (outer immediately before inner) -> one.
  IterVar fuse(const IterVar &outer, const IterVar &inner);
  /// Puts these leaf axes, in this order, in the positions they occupy together.
  Stage &reorder(const std::vector<IterVar> &order);
  /// split x and y, then reorder to (xo, yo, xi, yi): returns {xo, yo, xi, yi}.
  std::array<IterVar, 4> tile(const IterVar &x, const IterVar &y, int64_t xFactor,
                              int64_t yFactor);
  Stage &vectorize(const IterVar &iv);
  Stage &unroll(const IterVar &iv);
  Stage &parallel(const IterVar &iv);
  /// Computes this stage inside `consumer`'s loop `axis` (a leaf axis of the consumer), over
  /// the region the consumer needs in one iteration of that loop.
  Stage &compute_at(const Stage &consumer, const IterVar &axis);
  /// Substitutes this stage's body into its consumers: no loops, no buffer.
  Stage &compute_inline();
  /// Computes this stage on its own at the top level (the default).
  Stage &compute_root();
  /// Pads the allocation so that the stride of dimension `axis` (0 = outermost) is
  /// factor * k + offset elements (TVM's storage_align; e.g. factor 64, offset 1 to avoid
  /// cache-set conflicts). For intermediate tensors with constant region sizes.
  Stage &storage_align(const IterVar &axis, int64_t factor, int64_t offset);
  /// TVM's prefetch: at the start of each iteration of the leaf loop `axis`, one prefetch per
  /// cache line of the region of `tensor` (a tensor this stage reads) that iteration
  /// i + `offset` reads (its inner loops' whole ranges). The index is linear in the loop
  /// variable, so an offset past the loop's end reaches into what the enclosing loops read
  /// next (for a tensor laid out in the order the loops read it: the next stretch of the
  /// stream), or past the buffer's end, which a prefetch may (it never faults).
  Stage &prefetch(const Tensor &tensor, const IterVar &axis, int64_t offset);

private:
  std::shared_ptr<StageNode> node_;
};

struct StageNode {
  Tensor tensor;     ///< the operation's output (for placeholders: the input)
  /// The stage's own copy of the body (cache_read/cache_write rewrite it, never the Tensor).
  Expr body;
  std::optional<Reduction> reduce;
  std::vector<IterVar> rootIterVars; ///< output axes then reduction axes
  std::vector<IterVar> allIterVars;  ///< root and every IterVar made by split/fuse
  std::vector<IterVar> leafIterVars; ///< the loops, outermost first
  std::vector<SplitRelation> splits;
  std::vector<FuseRelation> fuses;
  /// Relations in the order they were made: (true, index into splits) or (false, into fuses).
  std::vector<std::pair<bool, size_t>> relations;
  std::map<const loop::VarNode *, loop::ForKind> forKinds;
  AttachKind attach = AttachKind::Root;
  Stage attachStage;
  IterVar attachIv;
  bool isOutput = false;
  std::string scope = "global";
  std::vector<StorageAlign> aligns;
  std::vector<PrefetchSpec> prefetches;
  ScheduleNode *schedule = nullptr; ///< the owning schedule (for checks across stages)
};

struct ScheduleNode;

/// The stages of every operation reachable from `outputs`, producers before consumers.
class Schedule {
public:
  Schedule() = default;
  explicit Schedule(std::shared_ptr<ScheduleNode> n) : node_(std::move(n)) {}

  /// The stage of `t` (Error naming the tensor if it is not part of this schedule).
  Stage operator[](const Tensor &t) const;
  const std::vector<Stage> &stages() const;
  const std::vector<Tensor> &outputs() const;
  /// The stage whose tensor has buffer `b`, or an undefined Stage.
  Stage stageOfBuffer(const Buffer &b) const;

  /// A new stage `T.scope` that copies `t` and that `readers` read instead of `t`.
  Tensor cache_read(const Tensor &t, const std::string &scope, const std::vector<Tensor> &readers);
  /// A new stage `T.scope` that computes what `t` computed (with fresh axes and reduction axes);
  /// `t` then copies it. Must come before any other primitive on t's stage.
  Tensor cache_write(const Tensor &t, const std::string &scope);

  ScheduleNode *get() const { return node_.get(); }

private:
  std::shared_ptr<ScheduleNode> node_;
};

struct ScheduleNode {
  std::vector<Tensor> outputs;
  std::vector<Stage> stages;
};

Schedule create_schedule(const std::vector<Tensor> &outputs);
inline Schedule create_schedule(const Tensor &output) {
  return create_schedule(std::vector<Tensor>{output});
}

} // namespace tessel::te
