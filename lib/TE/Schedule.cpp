//===- Schedule.cpp - stages and scheduling primitives --------------------===//
#include "tessel/TE/Schedule.h"

#include "tessel/Loop/Visitor.h"

#include <algorithm>
#include <functional>
#include <set>

namespace tessel::te {

namespace {

std::string where(const StageNode *s) { return "stage '" + s->tensor.name() + "'"; }

/// Position of iv among the stage's leaf axes, or -1.
int leafIndex(const StageNode *s, const IterVar &iv) {
  for (size_t i = 0; i < s->leafIterVars.size(); ++i)
    if (s->leafIterVars[i].same_as(iv))
      return int(i);
  return -1;
}

bool isKnown(const StageNode *s, const IterVar &iv) {
  for (auto &a : s->allIterVars)
    if (a.same_as(iv))
      return true;
  return false;
}

/// The leaf position of iv, or an Error that says why it is not a leaf of this stage.
size_t requireLeaf(const StageNode *s, const IterVar &iv, const char *primitive) {
  if (!iv.defined())
    fail(where(s), ": ", primitive, " of an undefined axis");
  int i = leafIndex(s, iv);
  if (i >= 0)
    return size_t(i);
  if (isKnown(s, iv))
    fail(where(s), ": ", primitive, " of axis '", iv.name(),
         "', which was already split or fused away; expected one of the current loops: ",
         [&] {
           std::string names;
           for (auto &l : s->leafIterVars)
             names += (names.empty() ? "" : ", ") + l.name();
           return names;
         }());
  fail(where(s), ": ", primitive, " of axis '", iv.name(),
       "', which is not an axis of this stage; expected one of its loops");
}

void requireComputeStage(const StageNode *s, const char *primitive) {
  if (s->tensor.isPlaceholder())
    fail(where(s), ": ", primitive, " on a placeholder; expected a compute stage");
  if (s->attach == AttachKind::Inline)
    fail(where(s), ": ", primitive, " on a stage that is computed inline (it has no loops)");
}

Expr ceilDiv(const Expr &a, int64_t b) {
  if (const int64_t *c = loop::asConstInt(a))
    return Expr(int64_t((*c + b - 1) / b));
  return (a + (b - 1)) / b;
}

Expr extentOf(const IterVar &iv) { return iv.dom().extent; }

/// Makes a stage for a compute or placeholder tensor.
std::shared_ptr<StageNode> makeStage(const Tensor &t, ScheduleNode *sched) {
  auto s = std::make_shared<StageNode>();
  s->tensor = t;
  s->schedule = sched;
  const OperationNode *op = t.op();
  if (op->kind == OpKind::Compute) {
    s->body = op->body;
    s->reduce = op->reduce;
    s->rootIterVars = op->axis;
    for (auto &r : op->reduceAxis)
      s->rootIterVars.push_back(r);
    s->allIterVars = s->rootIterVars;
    s->leafIterVars = s->rootIterVars;
  }
  return s;
}

/// Replaces loads of `from` by loads of `to` (same indices).
struct ReplaceBuffer : loop::IRMutator {
  Buffer from, to;
  using loop::IRMutator::mutate;
  Expr mutate(const Expr &e, const loop::LoadNode *op) override {
    Expr r = loop::IRMutator::mutate(e, op);
    const auto *ld = r.as<loop::LoadNode>();
    if (ld && ld->buffer.same_as(from))
      return loop::LoadNode::make(to, ld->indices, ld->predicate);
    return r;
  }
};

void replaceReads(StageNode *s, const Buffer &from, const Buffer &to) {
  ReplaceBuffer rb;
  rb.from = from;
  rb.to = to;
  if (s->reduce) {
    s->reduce->source = rb.mutate(s->reduce->source);
    s->reduce->init = rb.mutate(s->reduce->init);
    if (s->reduce->condition.defined())
      s->reduce->condition = rb.mutate(s->reduce->condition);
  } else if (s->body.defined()) {
    s->body = rb.mutate(s->body);
  }
}

} // namespace

const std::string &Stage::name() const { return node_->tensor.name(); }

std::pair<IterVar, IterVar> Stage::split(const IterVar &parent, int64_t factor) {
  StageNode *s = node_.get();
  requireComputeStage(s, "split");
  size_t pos = requireLeaf(s, parent, "split");
  if (factor <= 0)
    fail(where(s), ": split of axis '", parent.name(), "' by ", factor,
         "; expected a positive factor");
  IterKind k = parent.iterKind();
  IterVar outer(Var(parent.name() + ".outer"), Range(Expr(int64_t(0)), ceilDiv(extentOf(parent), factor)), k);
  IterVar inner(Var(parent.name() + ".inner"), Range(Expr(int64_t(0)), Expr(factor)), k);
  s->splits.push_back(SplitRelation{parent, outer, inner, Expr(factor), Expr()});
  s->relations.emplace_back(true, s->splits.size() - 1);
  s->allIterVars.push_back(outer);
  s->allIterVars.push_back(inner);
  s->leafIterVars[pos] = outer;
  s->leafIterVars.insert(s->leafIterVars.begin() + pos + 1, inner);
  return {outer, inner};
}

std::pair<IterVar, IterVar> Stage::split_nparts(const IterVar &parent, int64_t nparts) {
  StageNode *s = node_.get();
  requireComputeStage(s, "split_nparts");
  size_t pos = requireLeaf(s, parent, "split_nparts");
  if (nparts <= 0)
    fail(where(s), ": split_nparts of axis '", parent.name(), "' into ", nparts,
         "; expected a positive number of parts");
  IterKind k = parent.iterKind();
  IterVar outer(Var(parent.name() + ".outer"), Range(Expr(int64_t(0)), Expr(nparts)), k);
  IterVar inner(Var(parent.name() + ".inner"), Range(Expr(int64_t(0)), ceilDiv(extentOf(parent), nparts)), k);
  s->splits.push_back(SplitRelation{parent, outer, inner, Expr(), Expr(nparts)});
  s->relations.emplace_back(true, s->splits.size() - 1);
  s->allIterVars.push_back(outer);
  s->allIterVars.push_back(inner);
  s->leafIterVars[pos] = outer;
  s->leafIterVars.insert(s->leafIterVars.begin() + pos + 1, inner);
  return {outer, inner};
}

IterVar Stage::fuse(const IterVar &outer, const IterVar &inner) {
  StageNode *s = node_.get();
  requireComputeStage(s, "fuse");
  size_t po = requireLeaf(s, outer, "fuse");
  size_t pi = requireLeaf(s, inner, "fuse");
  if (pi != po + 1)
    fail(where(s), ": fuse of axes '", outer.name(), "' (loop ", po, ") and '", inner.name(),
         "' (loop ", pi, "); expected adjacent loops, the outer one immediately before the inner");
  if (outer.iterKind() != inner.iterKind())
    fail(where(s), ": fuse of axes '", outer.name(), "' and '", inner.name(),
         "' of different kinds (one is a reduction axis); expected two data-parallel or two "
         "reduction axes");
  Expr ext = extentOf(outer) * extentOf(inner);
  if (const int64_t *a = loop::asConstInt(extentOf(outer)))
    if (const int64_t *b = loop::asConstInt(extentOf(inner)))
      ext = Expr(int64_t(*a * *b));
  IterVar fused(Var(outer.name() + "." + inner.name() + ".fused"), Range(Expr(int64_t(0)), ext),
                outer.iterKind());
  s->fuses.push_back(FuseRelation{outer, inner, fused});
  s->relations.emplace_back(false, s->fuses.size() - 1);
  s->allIterVars.push_back(fused);
  s->leafIterVars[po] = fused;
  s->leafIterVars.erase(s->leafIterVars.begin() + pi);
  return fused;
}

Stage &Stage::reorder(const std::vector<IterVar> &order) {
  StageNode *s = node_.get();
  requireComputeStage(s, "reorder");
  std::vector<size_t> pos;
  for (auto &iv : order) {
    size_t p = requireLeaf(s, iv, "reorder");
    if (std::find(pos.begin(), pos.end(), p) != pos.end())
      fail(where(s), ": reorder lists axis '", iv.name(),
           "' more than once; expected each axis at most once");
    pos.push_back(p);
  }
  std::vector<size_t> sorted = pos;
  std::sort(sorted.begin(), sorted.end());
  std::vector<IterVar> leaves = s->leafIterVars;
  for (size_t i = 0; i < order.size(); ++i)
    leaves[sorted[i]] = order[i];
  s->leafIterVars = leaves;
  return *this;
}

std::array<IterVar, 4> Stage::tile(const IterVar &x, const IterVar &y, int64_t xFactor,
                                   int64_t yFactor) {
  auto [xo, xi] = split(x, xFactor);
  auto [yo, yi] = split(y, yFactor);
  reorder({xo, yo, xi, yi});
  return {xo, yo, xi, yi};
}

static void setKind(StageNode *s, const IterVar &iv, loop::ForKind kind, const char *primitive) {
  requireComputeStage(s, primitive);
  requireLeaf(s, iv, primitive);
  if (iv.isReduce() && kind != loop::ForKind::Unrolled)
    fail(where(s), ": ", primitive, " of reduction axis '", iv.name(),
         "': its iterations update the same element; expected a data-parallel axis (reorder the "
         "reduction outward and ", primitive, " a data-parallel axis instead)");
  auto it = s->forKinds.find(iv.get());
  if (it != s->forKinds.end() && it->second != kind)
    fail(where(s), ": ", primitive, " of axis '", iv.name(), "', which is already marked ",
         loop::forKindName(it->second), "; expected one mark per axis");
  s->forKinds[iv.get()] = kind;
}

Stage &Stage::vectorize(const IterVar &iv) {
  setKind(node_.get(), iv, loop::ForKind::Vectorized, "vectorize");
  return *this;
}
Stage &Stage::unroll(const IterVar &iv) {
  setKind(node_.get(), iv, loop::ForKind::Unrolled, "unroll");
  return *this;
}
Stage &Stage::parallel(const IterVar &iv) {
  setKind(node_.get(), iv, loop::ForKind::Parallel, "parallel");
  return *this;
}

Stage &Stage::compute_at(const Stage &consumer, const IterVar &axis) {
  StageNode *s = node_.get();
  requireComputeStage(s, "compute_at");
  if (!consumer.defined())
    fail(where(s), ": compute_at to an undefined stage");
  if (consumer.same_as(*this))
    fail(where(s), ": compute_at to itself; expected a consumer stage");
  if (s->isOutput)
    fail(where(s), ": compute_at of an output of the schedule; expected an intermediate stage");
  StageNode *c = consumer.get();
  if (c->attach == AttachKind::Inline)
    fail(where(s), ": compute_at to stage '", c->tensor.name(),
         "', which is computed inline and has no loops");
  if (leafIndex(c, axis) < 0)
    fail(where(s), ": compute_at to axis '", axis.defined() ? axis.name() : std::string("?"),
         "', which is not a loop of consumer stage '", c->tensor.name(),
         "'; expected one of that stage's current (leaf) axes");
  s->attach = AttachKind::Scope;
  s->attachStage = consumer;
  s->attachIv = axis;
  return *this;
}

Stage &Stage::compute_inline() {
  StageNode *s = node_.get();
  if (s->tensor.isPlaceholder())
    fail(where(s), ": compute_inline of a placeholder; expected a compute stage");
  if (s->reduce)
    fail(where(s), ": compute_inline of a reduction; expected an elementwise (non-reduction) "
                   "compute");
  if (s->isOutput)
    fail(where(s), ": compute_inline of an output of the schedule; an output must be stored");
  s->attach = AttachKind::Inline;
  s->attachStage = Stage();
  s->attachIv = IterVar();
  return *this;
}

Stage &Stage::compute_root() {
  StageNode *s = node_.get();
  requireComputeStage(s, "compute_root");
  s->attach = AttachKind::Root;
  s->attachStage = Stage();
  s->attachIv = IterVar();
  return *this;
}

Stage &Stage::storage_align(const IterVar &axis, int64_t factor, int64_t offset) {
  StageNode *s = node_.get();
  requireComputeStage(s, "storage_align");
  int dim = -1;
  for (size_t d = 0; d < s->tensor.axis().size(); ++d)
    if (s->tensor.axis()[d].same_as(axis))
      dim = int(d);
  if (dim < 0)
    fail(where(s), ": storage_align of axis '", axis.defined() ? axis.name() : std::string("?"),
         "'; expected an output axis of the tensor (tensor.axis(d))");
  if (factor <= 0 || offset < 0 || offset >= factor)
    fail(where(s), ": storage_align(", axis.name(), ", ", factor, ", ", offset,
         "); expected factor > 0 and 0 <= offset < factor");
  if (size_t(dim) + 1 == s->tensor.ndim())
    fail(where(s), ": storage_align of the innermost axis '", axis.name(),
         "' (its stride is 1); expected an outer axis");
  s->aligns.push_back(StorageAlign{dim, factor, offset});
  return *this;
}

Stage &Stage::prefetch(const Tensor &tensor, const IterVar &axis, int64_t offset) {
  StageNode *s = node_.get();
  requireComputeStage(s, "prefetch");
  if (!tensor.defined())
    fail(where(s), ": prefetch of an undefined tensor; expected a tensor the stage reads");
  bool leaf = false;
  for (const IterVar &l : s->leafIterVars)
    leaf |= l.same_as(axis);
  if (!leaf)
    fail(where(s), ": prefetch at axis '", axis.defined() ? axis.name() : std::string("?"),
         "'; expected a loop (leaf axis) of this stage");
  s->prefetches.push_back(PrefetchSpec{tensor, axis, offset});
  return *this;
}

//===----------------------------------------------------------------------===//
// Schedule
//===----------------------------------------------------------------------===//

Stage Schedule::operator[](const Tensor &t) const {
  for (auto &s : node_->stages)
    if (s->tensor.same_as(t))
      return s;
  fail("schedule: tensor '", t.defined() ? t.name() : std::string("?"),
       "' has no stage; expected a tensor that the schedule's outputs depend on");
}

const std::vector<Stage> &Schedule::stages() const { return node_->stages; }
const std::vector<Tensor> &Schedule::outputs() const { return node_->outputs; }

Stage Schedule::stageOfBuffer(const Buffer &b) const {
  for (auto &s : node_->stages)
    if (s->tensor.buffer().same_as(b))
      return s;
  return Stage();
}

/// The tensors a stage's (current) body reads.
static std::vector<Buffer> stageReads(const StageNode *s) {
  struct Collect : loop::IRVisitor {
    std::vector<Buffer> found;
    using loop::IRVisitor::visit;
    void visit(const loop::LoadNode *op) override {
      loop::IRVisitor::visit(op);
      for (auto &b : found)
        if (b.same_as(op->buffer))
          return;
      found.push_back(op->buffer);
    }
  } c;
  if (s->reduce) {
    c.visit(s->reduce->source);
    c.visit(s->reduce->init);
    if (s->reduce->condition.defined())
      c.visit(s->reduce->condition);
  } else if (s->body.defined()) {
    c.visit(s->body);
  }
  return c.found;
}

Schedule create_schedule(const std::vector<Tensor> &outputs) {
  auto sn = std::make_shared<ScheduleNode>();
  sn->outputs = outputs;
  std::set<const OperationNode *> done, active;
  std::function<void(const Tensor &)> visit = [&](const Tensor &t) {
    if (done.count(t.op()))
      return;
    if (active.count(t.op()))
      fail("te::create_schedule: tensor '", t.name(), "' depends on itself");
    active.insert(t.op());
    for (auto &in : inputTensors(t))
      visit(in);
    active.erase(t.op());
    done.insert(t.op());
    sn->stages.emplace_back(makeStage(t, sn.get()));
  };
  for (auto &t : outputs) {
    if (!t.defined())
      fail("te::create_schedule: an output tensor is undefined");
    visit(t);
  }
  for (auto &t : outputs)
    for (auto &s : sn->stages)
      if (s->tensor.same_as(t))
        s->isOutput = true;
  return Schedule(sn);
}

Tensor Schedule::cache_read(const Tensor &t, const std::string &scope,
                            const std::vector<Tensor> &readers) {
  Stage src = (*this)[t];
  std::vector<Stage> readerStages;
  for (auto &r : readers) {
    Stage rs = (*this)[r];
    auto reads = stageReads(rs.get());
    bool found = std::any_of(reads.begin(), reads.end(),
                             [&](const Buffer &b) { return b.same_as(t.buffer()); });
    if (!found)
      fail("schedule: cache_read of '", t.name(), "' for reader '", r.name(),
           "', which does not read it; expected readers of '", t.name(), "'");
    readerStages.push_back(rs);
  }
  std::vector<Var> vars;
  for (size_t d = 0; d < t.ndim(); ++d)
    vars.emplace_back("ax" + std::to_string(d));
  std::vector<Expr> idx(vars.begin(), vars.end());
  Tensor cache = computeFromBody(t.shape(), vars, ComputeBody(t.access(idx)),
                                 t.name() + "." + scope);
  auto st = makeStage(cache, node_.get());
  st->scope = scope;
  for (auto &rs : readerStages)
    replaceReads(rs.get(), t.buffer(), cache.buffer());
  auto &stages = node_->stages;
  auto it = std::find_if(stages.begin(), stages.end(), [&](const Stage &s) { return s.same_as(src); });
  stages.insert(it + 1, Stage(st));
  return cache;
}

Tensor Schedule::cache_write(const Tensor &t, const std::string &scope) {
  Stage orig = (*this)[t];
  StageNode *s = orig.get();
  if (t.isPlaceholder())
    fail("schedule: cache_write of placeholder '", t.name(), "'; expected a compute tensor");
  if (!s->relations.empty() || s->leafIterVars.size() != s->rootIterVars.size() ||
      !s->forKinds.empty() || s->attach != AttachKind::Root)
    fail("schedule: cache_write of '", t.name(),
         "' after other primitives on its stage; expected cache_write first");
  // The cache computes the original body over fresh axes (and fresh reduction axes).
  std::vector<Var> vars = makeAxisVars(t.ndim());
  loop::VarMap map;
  for (size_t d = 0; d < vars.size(); ++d)
    map[t.axis(d)] = vars[d];
  Tensor cache;
  std::string name = t.name() + "." + scope;
  if (s->reduce) {
    Reduction r = *s->reduce;
    std::vector<IterVar> axes;
    for (auto &a : r.axes) {
      IterVar na(Var(a.name()), a.dom(), IterKind::Reduce);
      map[a] = na;
      axes.push_back(na);
    }
    r.axes = axes;
    r.source = loop::substitute(r.source, map);
    r.init = loop::substitute(r.init, map);
    if (r.condition.defined())
      r.condition = loop::substitute(r.condition, map);
    cache = computeFromBody(t.shape(), vars, ComputeBody(r), name);
  } else {
    cache = computeFromBody(t.shape(), vars, ComputeBody(loop::substitute(s->body, map)), name);
  }
  auto st = makeStage(cache, node_.get());
  st->scope = scope;
  // The original stage now copies the cache.
  std::vector<Expr> idx;
  for (auto &a : t.axis())
    idx.push_back(a);
  s->reduce.reset();
  s->body = cache.access(idx);
  s->rootIterVars = t.axis();
  s->allIterVars = s->rootIterVars;
  s->leafIterVars = s->rootIterVars;
  auto &stages = node_->stages;
  auto it = std::find_if(stages.begin(), stages.end(), [&](const Stage &x) { return x.same_as(orig); });
  stages.insert(it, Stage(st));
  return cache;
}

} // namespace tessel::te
