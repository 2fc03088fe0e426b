//===- Lower.cpp - schedule -> loop IR (bounds, loop nests, inlining) -----===//
//
// lower() runs, in order: inlining of compute_inline stages into their readers (so bound
// inference sees the real reads), bound inference from consumers to producers (reverse stage
// order: a producer's region depends on its consumer's loops), then the loop nests from the
// outputs inward (each stage's nest holds the nests of the stages attached to its loops), and
// the simplifier over the result.
//
//===----------------------------------------------------------------------===//
#include "tessel/TE/Lower.h"

#include "tessel/Loop/Simplify.h"
#include "tessel/Loop/Visitor.h"

#include <algorithm>
#include <map>
#include <set>
#include <unordered_map>

namespace tessel::te {

using namespace loop;

namespace {

//===----------------------------------------------------------------------===//
// Linear forms of index expressions: c + sum(coeff * atom), to cancel terms (extents of regions
// such as (xo*8 + 7) - (xo*8) + 1) without relying on a full simplifier.
//===----------------------------------------------------------------------===//

struct Lin {
  int64_t c = 0;
  std::vector<std::pair<Expr, int64_t>> terms; // atom (Var or opaque) -> coefficient

  void add(const Expr &atom, int64_t k) {
    for (auto &t : terms)
      if (t.first.same_as(atom) || exprEqual(t.first, atom)) {
        t.second += k;
        return;
      }
    terms.emplace_back(atom, k);
  }
  Lin scaled(int64_t k) const {
    Lin r;
    r.c = c * k;
    for (auto &t : terms)
      r.terms.emplace_back(t.first, t.second * k);
    return r;
  }
  Lin plus(const Lin &o, int64_t k = 1) const {
    Lin r = *this;
    r.c += o.c * k;
    for (auto &t : o.terms)
      r.add(t.first, t.second * k);
    return r;
  }
  const int64_t *constant() const {
    for (auto &t : terms)
      if (t.second != 0)
        return nullptr;
    return &c;
  }
};

Lin linearize(const Expr &e);

Expr linToExpr(const Lin &l, Type t = Type::i64()) {
  Expr r;
  for (auto &[atom, k] : l.terms) {
    if (k == 0)
      continue;
    Expr term = k == 1 ? atom : atom * makeConst(t, k);
    r = r.defined() ? r + term : term;
  }
  if (!r.defined())
    return makeConst(t, l.c);
  if (l.c != 0)
    r = r + makeConst(t, l.c);
  return r;
}

Lin linearize(const Expr &e) {
  Lin l;
  if (const int64_t *c = asConstInt(e); c && e.type().isScalar()) {
    l.c = *c;
    return l;
  }
  if (e.type() == Type::i64()) {
    if (const auto *op = e.as<AddNode>())
      return linearize(op->a).plus(linearize(op->b));
    if (const auto *op = e.as<SubNode>())
      return linearize(op->a).plus(linearize(op->b), -1);
    if (const auto *op = e.as<MulNode>()) {
      Lin a = linearize(op->a), b = linearize(op->b);
      if (const int64_t *k = b.constant())
        return a.scaled(*k);
      if (const int64_t *k = a.constant())
        return b.scaled(*k);
    }
    // Floor division and modulo by a positive constant k: the multiples of k leave the
    // division, (k*q*x + r) / k -> q*x + r / k and (k*q*x + r) % k -> r % k (exact for integer
    // x under floor semantics), so that a region read through a division, such as the rows
    // (xo*8 + 7) / 4 - (xo*8) / 4 + 1, has the constant extent 2.
    if (e.kind() == ExprKind::Div || e.kind() == ExprKind::Mod) {
      const auto *op = static_cast<const BinaryNode<ExprKind::Div> *>(e.get());
      const int64_t *k = asConstInt(op->b);
      if (k && *k > 0) {
        Lin a = linearize(op->a), out, rest;
        const int64_t fq = a.c >= 0 ? a.c / *k : -((-a.c + *k - 1) / *k); // floor(c / k)
        rest.c = a.c - fq * *k;                                          // in [0, k)
        if (e.kind() == ExprKind::Div)
          out.c = fq;
        for (auto &[atom, coeff] : a.terms) {
          if (coeff % *k == 0) {
            if (e.kind() == ExprKind::Div)
              out.add(atom, coeff / *k);
          } else {
            rest.add(atom, coeff);
          }
        }
        if (const int64_t *rc = rest.constant()) {
          out.c += e.kind() == ExprKind::Div ? 0 : *rc % *k; // rest.c / k is 0 for Div
          return out;
        }
        Expr re = linToExpr(rest);
        out.add(e.kind() == ExprKind::Div ? re / op->b : re % op->b, 1);
        return out;
      }
    }
    if (e.kind() == ExprKind::Min || e.kind() == ExprKind::Max) {
      const auto *op = static_cast<const BinaryNode<ExprKind::Min> *>(e.get());
      Lin a = linearize(op->a), b = linearize(op->b);
      Lin diff = a.plus(b, -1);
      if (const int64_t *d = diff.constant()) {
        bool aSmaller = *d <= 0;
        return (e.kind() == ExprKind::Min) == aSmaller ? a : b;
      }
      Expr ae = linToExpr(a), be = linToExpr(b);
      l.add(e.kind() == ExprKind::Min ? loop::min(ae, be) : loop::max(ae, be), 1);
      return l;
    }
  }
  l.add(e, 1);
  return l;
}

Expr canon(const Expr &e) {
  if (!e.defined() || e.type() != Type::i64())
    return e;
  return simplify(linToExpr(linearize(e)));
}

//===----------------------------------------------------------------------===//
// Interval analysis: bounds [lo, hi] (inclusive) of an integer expression when some variables
// range over intervals; other variables are fixed (points).
//===----------------------------------------------------------------------===//

struct Interval {
  Expr lo, hi; // undefined: unknown
  bool known() const { return lo.defined() && hi.defined(); }
};
using RangeMap = std::unordered_map<const VarNode *, Interval>;

struct UsesRanged : IRVisitor {
  const RangeMap *ranges;
  bool found = false;
  using IRVisitor::visit;
  void visit(const VarNode *op) override {
    if (ranges->count(op))
      found = true;
  }
};

bool usesRanged(const Expr &e, const RangeMap &r) {
  UsesRanged u;
  u.ranges = &r;
  u.visit(e);
  return u.found;
}

Interval bound(const Expr &e, const RangeMap &r) {
  if (!usesRanged(e, r))
    return {e, e};
  if (const auto *v = e.as<VarNode>())
    return r.at(v);
  if (const auto *op = e.as<AddNode>()) {
    Interval a = bound(op->a, r), b = bound(op->b, r);
    if (!a.known() || !b.known())
      return {};
    return {a.lo + b.lo, a.hi + b.hi};
  }
  if (const auto *op = e.as<SubNode>()) {
    Interval a = bound(op->a, r), b = bound(op->b, r);
    if (!a.known() || !b.known())
      return {};
    return {a.lo - b.hi, a.hi - b.lo};
  }
  if (const auto *op = e.as<MulNode>()) {
    const int64_t *ka = asConstInt(op->a), *kb = asConstInt(op->b);
    Expr other = kb ? op->a : op->b;
    const int64_t *k = kb ? kb : ka;
    if (!k)
      return {};
    Interval a = bound(other, r);
    if (!a.known())
      return {};
    Expr kc = makeConst(e.type(), *k);
    if (*k >= 0)
      return {a.lo * kc, a.hi * kc};
    return {a.hi * kc, a.lo * kc};
  }
  if (const auto *op = e.as<DivNode>()) {
    const int64_t *k = asConstInt(op->b);
    if (!k || *k <= 0 || !e.type().isInt())
      return {};
    Interval a = bound(op->a, r);
    if (!a.known())
      return {};
    return {a.lo / op->b, a.hi / op->b};
  }
  if (const auto *op = e.as<ModNode>()) {
    const int64_t *k = asConstInt(op->b);
    if (!k || *k <= 0 || !e.type().isInt())
      return {};
    return {makeZero(e.type()), makeConst(e.type(), *k - 1)};
  }
  if (e.kind() == ExprKind::Min || e.kind() == ExprKind::Max) {
    const auto *op = static_cast<const BinaryNode<ExprKind::Min> *>(e.get());
    Interval a = bound(op->a, r), b = bound(op->b, r);
    if (!a.known() || !b.known())
      return {};
    if (e.kind() == ExprKind::Min)
      return {loop::min(a.lo, b.lo), loop::min(a.hi, b.hi)};
    return {loop::max(a.lo, b.lo), loop::max(a.hi, b.hi)};
  }
  if (const auto *op = e.as<SelectNode>()) {
    Interval a = bound(op->trueValue, r), b = bound(op->falseValue, r);
    if (!a.known() || !b.known())
      return {};
    return {loop::min(a.lo, b.lo), loop::max(a.hi, b.hi)};
  }
  return {};
}

//===----------------------------------------------------------------------===//
// Per-stage lowering state
//===----------------------------------------------------------------------===//

struct StageState {
  StageNode *node = nullptr;
  Expr body;                      // after inlining (non-reduction)
  std::optional<Reduction> reduce; // after inlining
  std::vector<Expr> rootMin, rootExt; // per root axis (data axes, then reduction axes)
  std::vector<bool> guardShape;       // data axis d: guard rootMin + i < shape[d]
  Buffer realized;                    // where the stage's values live
  bool isArg = false;
  bool allocate = false;
  // loop nest pieces
  std::unordered_map<const VarNode *, Expr> leafExt;
  VarMap value;                               // root/inner IterVar -> expr of leaf vars
  std::vector<std::pair<Expr, bool>> guards;  // (condition, involves a reduction axis)
};

/// Replaces loads of inlined tensors by their bodies.
struct Inliner : IRMutator {
  // buffer -> (axis vars, body)
  std::unordered_map<const BufferNode *, std::pair<std::vector<IterVar>, Expr>> bodies;
  using IRMutator::mutate;
  Expr mutate(const Expr &e, const LoadNode *op) override {
    Expr r = IRMutator::mutate(e, op);
    const auto *ld = r.as<LoadNode>();
    if (!ld)
      return r;
    auto it = bodies.find(ld->buffer.get());
    if (it == bodies.end())
      return r;
    VarMap m;
    for (size_t d = 0; d < it->second.first.size(); ++d)
      m[it->second.first[d]] = ld->indices[d];
    return substitute(it->second.second, m);
  }
};

/// Rewrites loads of a producer to its realized buffer, offset by its region's min. The min is
/// an expression of the loop variables of the producer's consumer (and of the stages it sits
/// in), and a loop that was never split has the consumer's root variable as its variable; so
/// this runs on a reader's expressions only after its root variables were replaced by their
/// values (region min + loop expression), never before: `M[i]` read at a row `i` of a stage
/// whose own region starts at `xo*4` is `M.local[(xo*4 + i) - (xo*4 + i)]`, not
/// `M.local[i - (xo*4 + i)]` with the min then shifted again by the substitution.
struct RealizeLoads : IRMutator {
  std::unordered_map<const BufferNode *, std::pair<Buffer, std::vector<Expr>>> map;
  using IRMutator::mutate;
  Expr mutate(const Expr &e, const LoadNode *op) override {
    Expr r = IRMutator::mutate(e, op);
    const auto *ld = r.as<LoadNode>();
    if (!ld)
      return r;
    auto it = map.find(ld->buffer.get());
    if (it == map.end())
      return r;
    std::vector<Expr> idx = ld->indices;
    for (size_t d = 0; d < idx.size(); ++d)
      if (!isZero(it->second.second[d]))
        idx[d] = canon(idx[d] - it->second.second[d]);
    return LoadNode::make(it->second.first, idx, ld->predicate);
  }
};

struct CollectLoadsOf : IRVisitor {
  const BufferNode *target;
  std::vector<std::vector<Expr>> indices;
  using IRVisitor::visit;
  void visit(const LoadNode *op) override {
    IRVisitor::visit(op);
    if (op->buffer.get() == target)
      indices.push_back(op->indices);
  }
};

struct CollectBuffers : IRVisitor {
  std::set<const BufferNode *> found;
  using IRVisitor::visit;
  void visit(const LoadNode *op) override {
    IRVisitor::visit(op);
    found.insert(op->buffer.get());
  }
};

class Lowerer {
public:
  Lowerer(const Schedule &s, const std::vector<Tensor> &args, std::string name)
      : sched_(s), args_(args), name_(std::move(name)) {}

  LoweredFunc run();

private:
  StageState &state(const StageNode *n) { return states_[index_.at(n)]; }
  std::vector<Expr> stageExprs(const StageState &st) const;
  void inlineStages();
  void checkArgs();
  void inferBounds();
  void inferAttached(StageState &p);
  void computeLeafValues(StageState &st);
  void realizeBuffers();
  Stmt makeNest(StageState &st);
  Stmt makePrefetch(StageState &st, const PrefetchSpec &spec, size_t leafPos, const Expr &reads);
  Stmt wrapAttached(StageState &consumer, size_t leafPos, Stmt body);
  Expr inLeaves(const Expr &e, const VarMap &rootMap);
  std::string where(const StageState &st) const { return "stage '" + st.node->tensor.name() + "'"; }

  Schedule sched_;
  std::vector<Tensor> args_;
  std::string name_;
  std::vector<StageState> states_;
  std::unordered_map<const StageNode *, size_t> index_;
  RealizeLoads realize_; // loads of stored tensors -> their realized buffers (realizeBuffers)
};

std::vector<Expr> Lowerer::stageExprs(const StageState &st) const {
  if (st.reduce) {
    std::vector<Expr> v{st.reduce->source, st.reduce->init};
    if (st.reduce->condition.defined())
      v.push_back(st.reduce->condition);
    return v;
  }
  if (st.body.defined())
    return {st.body};
  return {};
}

void Lowerer::inlineStages() {
  Inliner inl;
  for (auto &st : states_) {
    if (st.node->tensor.isPlaceholder())
      continue;
    if (st.reduce) {
      st.reduce->source = inl.mutate(st.reduce->source);
      st.reduce->init = inl.mutate(st.reduce->init);
      if (st.reduce->condition.defined())
        st.reduce->condition = inl.mutate(st.reduce->condition);
    } else {
      st.body = inl.mutate(st.body);
    }
    if (st.node->attach == AttachKind::Inline)
      inl.bodies[st.node->tensor.buffer().get()] = {st.node->tensor.axis(), st.body};
  }
}

void Lowerer::checkArgs() {
  for (auto &a : args_) {
    if (!a.defined())
      fail("te::lower '", name_, "': an argument tensor is undefined");
    Stage s = sched_.stageOfBuffer(a.buffer());
    if (!s.defined())
      fail("te::lower '", name_, "': argument '", a.name(),
           "' is not part of the schedule; expected its placeholders and outputs");
    StageState &st = state(s.get());
    if (st.node->attach == AttachKind::Inline)
      fail("te::lower '", name_, "': argument '", a.name(),
           "' is computed inline, so it is never stored; expected a stored tensor");
    st.isArg = true;
  }
  // Every placeholder read (after inlining) and every output must be an argument.
  for (auto &st : states_) {
    if (st.node->attach == AttachKind::Inline)
      continue;
    if (st.node->isOutput && !st.isArg)
      fail("te::lower '", name_, "': output '", st.node->tensor.name(),
           "' is not in the argument list; expected every output of the schedule in args");
  }
  std::set<const BufferNode *> read;
  for (auto &st : states_) {
    if (st.node->attach == AttachKind::Inline)
      continue;
    CollectBuffers cb;
    for (auto &e : stageExprs(st))
      cb.visit(e);
    read.insert(cb.found.begin(), cb.found.end());
  }
  for (auto &st : states_)
    if (st.node->tensor.isPlaceholder() && !st.isArg && read.count(st.node->tensor.buffer().get()))
      fail("te::lower '", name_, "': placeholder '", st.node->tensor.name(),
           "' is read but is not in the argument list; expected every input in args");
}

/// Root values of a stage's IterVars as expressions of its leaf loop variables, the leaf
/// extents, and the tail guards of splits that do not divide.
void Lowerer::computeLeafValues(StageState &st) {
  StageNode *s = st.node;
  std::unordered_map<const VarNode *, Expr> ext;
  for (size_t r = 0; r < s->rootIterVars.size(); ++r)
    ext[s->rootIterVars[r].get()] = st.rootExt[r];
  std::unordered_map<const VarNode *, bool> divides;
  for (auto &[isSplit, idx] : s->relations) {
    if (isSplit) {
      const SplitRelation &rel = s->splits[idx];
      Expr E = ext.at(rel.parent.get());
      const int64_t *ec = asConstInt(E);
      if (rel.factor.defined()) {
        int64_t f = *asConstInt(rel.factor);
        ext[rel.inner.get()] = Expr(f);
        ext[rel.outer.get()] = ec ? Expr(int64_t((*ec + f - 1) / f)) : canon((E + (f - 1)) / f);
        divides[rel.parent.get()] = ec && *ec % f == 0;
      } else {
        int64_t n = *asConstInt(rel.nparts);
        ext[rel.outer.get()] = Expr(n);
        ext[rel.inner.get()] = ec ? Expr(int64_t((*ec + n - 1) / n)) : canon((E + (n - 1)) / n);
        divides[rel.parent.get()] = ec && *ec % n == 0;
      }
    } else {
      const FuseRelation &rel = s->fuses[idx];
      Expr eo = ext.at(rel.outer.get()), ei = ext.at(rel.inner.get());
      const int64_t *a = asConstInt(eo), *b = asConstInt(ei);
      ext[rel.fused.get()] = a && b ? Expr(int64_t(*a * *b)) : eo * ei;
    }
  }
  VarMap value;
  for (auto &l : s->leafIterVars)
    value[l] = l;
  for (auto it = s->relations.rbegin(); it != s->relations.rend(); ++it) {
    if (it->first) {
      const SplitRelation &rel = s->splits[it->second];
      value[rel.parent] = canon(value.at(rel.outer) * ext.at(rel.inner.get()) + value.at(rel.inner));
    } else {
      const FuseRelation &rel = s->fuses[it->second];
      Expr ei = ext.at(rel.inner.get());
      value[rel.outer] = value.at(rel.fused) / ei;
      value[rel.inner] = value.at(rel.fused) % ei;
    }
  }
  st.guards.clear();
  for (auto &[isSplit, idx] : s->relations) {
    if (!isSplit)
      continue;
    const SplitRelation &rel = s->splits[idx];
    if (divides[rel.parent.get()])
      continue;
    st.guards.emplace_back(value.at(rel.parent) < ext.at(rel.parent.get()), rel.parent.isReduce());
  }
  st.value = value;
  st.leafExt.clear();
  for (auto &l : s->leafIterVars)
    st.leafExt[l.get()] = ext.at(l.get());
}

/// The leaf position of iv in stage s, or -1.
int leafPos(const StageNode *s, const IterVar &iv) {
  for (size_t i = 0; i < s->leafIterVars.size(); ++i)
    if (s->leafIterVars[i].same_as(iv))
      return int(i);
  return -1;
}

void Lowerer::inferAttached(StageState &p) {
  StageNode *pn = p.node;
  StageState &c = state(pn->attachStage.get());
  if (c.node->attach == AttachKind::Inline)
    fail(where(p), ": compute_at to stage '", c.node->tensor.name(),
         "', which is computed inline; expected a stage with loops");
  int pos = leafPos(c.node, pn->attachIv);
  if (pos < 0)
    fail(where(p), ": compute_at to axis '", pn->attachIv.name(), "', which is no longer a loop of '",
         c.node->tensor.name(), "' (split or fused after compute_at); expected one of its loops");
  // A reduction's init nest runs before its first reduction loop: a producer computed at that
  // loop or deeper does not exist yet when the init reads it.
  if (c.reduce) {
    CollectLoadsOf col;
    col.target = pn->tensor.buffer().get();
    col.visit(c.reduce->init);
    for (size_t i = 0; i <= size_t(pos) && !col.indices.empty(); ++i)
      if (c.node->leafIterVars[i].isReduce())
        fail(where(p), ": computed at loop '", pn->attachIv.name(), "' of stage '",
             c.node->tensor.name(), "', at or inside its reduction loop '",
             c.node->leafIterVars[i].name(), "', but the reduction's init reads '",
             pn->tensor.name(), "' before that loop runs; expected compute_at to a loop of '",
             c.node->tensor.name(), "' outside its reduction loops (or compute_root)");
  }
  // The loops of the consumer inside the attach point range over their extents; the others
  // are fixed for one computation of the producer.
  RangeMap inner, all;
  for (size_t i = 0; i < c.node->leafIterVars.size(); ++i) {
    const IterVar &l = c.node->leafIterVars[i];
    Interval iv{makeZero(Type::i64()), canon(c.leafExt.at(l.get()) - 1)};
    all[l.get()] = iv;
    if (int(i) > pos)
      inner[l.get()] = iv;
  }
  // A consumer computed at another stage's loop has a region that moves with that stage's loops
  // (and so on outwards): ranging them too gives the indices over every iteration, so that a
  // region that stays inside the tensor gets no edge guard.
  for (const StageNode *o = c.node; o->attach == AttachKind::Scope;) {
    const StageState &os = state(o->attachStage.get());
    for (const IterVar &l : os.node->leafIterVars)
      all[l.get()] = Interval{makeZero(Type::i64()), canon(os.leafExt.at(l.get()) - 1)};
    o = os.node;
  }
  // Readers: the consumer, and stages attached to the consumer at the same loop or deeper
  // (their nests run inside the producer's scope, after it: softmax's sum reading exp).
  struct Reads {
    std::vector<std::vector<Expr>> indices; // in the reader's root variables
    VarMap rootVal;                         // reader root var -> expr of leaves
    RangeMap inner, all;
  };
  std::vector<Reads> readers;
  for (auto &r : states_) {
    if (r.node->attach == AttachKind::Inline || r.node->tensor.isPlaceholder() || &r == &p)
      continue;
    CollectLoadsOf col;
    col.target = pn->tensor.buffer().get();
    for (auto &e : stageExprs(r))
      col.visit(e);
    if (col.indices.empty())
      continue;
    Reads rd{col.indices, {}, inner, all};
    if (&r != &c) {
      bool nested = r.node->attach == AttachKind::Scope && r.node->attachStage.get() == c.node &&
                    leafPos(c.node, r.node->attachIv) >= pos;
      if (!nested)
        fail(where(p), ": computed at stage '", c.node->tensor.name(), "' but also read by stage '",
             r.node->tensor.name(), "'; expected compute_at to the only consumer (or the other "
             "readers computed at the same loop of '", c.node->tensor.name(), "' or deeper)");
      for (auto &l : r.node->leafIterVars) {
        Interval iv{makeZero(Type::i64()), canon(r.leafExt.at(l.get()) - 1)};
        rd.inner[l.get()] = iv;
        rd.all[l.get()] = iv;
      }
    }
    for (size_t k = 0; k < r.node->rootIterVars.size(); ++k) {
      const IterVar &rv = r.node->rootIterVars[k];
      rd.rootVal[rv] = canon(r.rootMin[k] + r.value.at(rv));
    }
    readers.push_back(std::move(rd));
  }
  bool readByConsumer = false;
  {
    CollectLoadsOf col;
    col.target = pn->tensor.buffer().get();
    for (auto &e : stageExprs(c))
      col.visit(e);
    readByConsumer = !col.indices.empty();
  }
  if (!readByConsumer && readers.empty())
    fail(where(p), ": compute_at to stage '", c.node->tensor.name(),
         "', which does not read it; expected a consumer of '", pn->tensor.name(), "'");
  size_t nd = pn->tensor.ndim();
  p.rootMin.assign(pn->rootIterVars.size(), Expr());
  p.rootExt.assign(pn->rootIterVars.size(), Expr());
  p.guardShape.assign(nd, false);
  for (size_t d = 0; d < nd; ++d) {
    Expr shape = pn->tensor.shape()[d];
    Expr lo, hi;
    bool ok = true;
    std::vector<Interval> globals;
    for (auto &rd : readers) {
      for (auto &ix : rd.indices) {
        Expr e = canon(substitute(ix[d], rd.rootVal));
        Interval b = bound(e, rd.inner);
        if (!b.known()) {
          ok = false;
          break;
        }
        Expr blo = canon(b.lo), bhi = canon(b.hi);
        lo = lo.defined() ? canon(loop::min(lo, blo)) : blo;
        hi = hi.defined() ? canon(loop::max(hi, bhi)) : bhi;
        globals.push_back(bound(e, rd.all));
      }
      if (!ok)
        break;
    }
    const int64_t *extc = nullptr;
    Expr ext;
    if (ok) {
      ext = canon(hi - lo + 1);
      extc = asConstInt(ext);
    }
    if (!ok || !extc) {
      // Unknown or symbolic region: compute the whole dimension (correct, just more work).
      p.rootMin[d] = makeZero(Type::i64());
      p.rootExt[d] = shape;
      continue;
    }
    p.rootMin[d] = lo;
    p.rootExt[d] = ext;
    // Guard against computing outside the tensor where the region may cross its edges.
    bool safe = true;
    const int64_t *sc = asConstInt(shape);
    for (auto &g : globals) {
      if (!g.known()) {
        safe = false;
        break;
      }
      const Expr lo = canon(g.lo), hi = canon(g.hi); // held: asConstInt points into them
      const int64_t *glo = asConstInt(lo), *ghi = asConstInt(hi);
      if (!glo || !ghi || !sc || *glo < 0 || *ghi > *sc - 1)
        safe = false;
    }
    p.guardShape[d] = !safe;
  }
  for (size_t r = nd; r < pn->rootIterVars.size(); ++r) {
    p.rootMin[r] = pn->rootIterVars[r].dom().min;
    p.rootExt[r] = pn->rootIterVars[r].dom().extent;
  }
}

void Lowerer::inferBounds() {
  for (auto it = states_.rbegin(); it != states_.rend(); ++it) {
    StageState &st = *it;
    StageNode *s = st.node;
    if (s->tensor.isPlaceholder() || s->attach == AttachKind::Inline)
      continue;
    if (s->attach == AttachKind::Scope) {
      inferAttached(st);
    } else {
      st.rootMin.clear();
      st.rootExt.clear();
      for (auto &rv : s->rootIterVars) {
        st.rootMin.push_back(rv.isReduce() ? rv.dom().min : makeZero(Type::i64()));
        st.rootExt.push_back(rv.dom().extent);
      }
      st.guardShape.assign(s->tensor.ndim(), false);
    }
    computeLeafValues(st);
  }
}

/// Where each stored tensor lives: the args and placeholders in their own buffers, every other
/// tensor in a buffer the size of its region (allocated at its attach point). Reads are
/// redirected later, in inLeaves, once they are in loop variables.
void Lowerer::realizeBuffers() {
  for (auto &st : states_) {
    StageNode *s = st.node;
    if (s->attach == AttachKind::Inline)
      continue;
    if (st.isArg || s->tensor.isPlaceholder()) {
      st.realized = s->tensor.buffer();
      continue;
    }
    size_t nd = s->tensor.ndim();
    std::vector<Expr> shape(st.rootExt.begin(), st.rootExt.begin() + nd);
    for (auto &al : s->aligns) {
      if (size_t(al.dim) + 2 != nd)
        fail(where(st), ": storage_align of axis ", al.dim, " of a ", nd,
             "-dimensional tensor; only the second-innermost axis is supported (its stride is "
             "the padded innermost extent)");
      const int64_t *last = asConstInt(shape[nd - 1]);
      if (!last)
        fail(where(st), ": storage_align needs a constant innermost extent; the region's is ",
             shape[nd - 1].defined() ? "symbolic" : "unknown");
      int64_t v = *last;
      while (((v % al.factor) + al.factor) % al.factor != al.offset)
        ++v;
      shape[nd - 1] = Expr(v);
    }
    st.realized = Buffer::make(s->tensor.name(), s->tensor.dtype(), shape,
                               s->scope == "global" ? "local" : s->scope);
    st.allocate = true;
    std::vector<Expr> mins(st.rootMin.begin(), st.rootMin.begin() + nd);
    realize_.map[s->tensor.buffer().get()] = {st.realized, mins};
  }
}

/// An expression of a stage's root variables (its body, a reduction's source, init or
/// condition) in its loop variables, reading the realized buffers: root variables replaced by
/// their values first, then the loads offset by the producers' region mins (RealizeLoads says
/// why in this order).
Expr Lowerer::inLeaves(const Expr &e, const VarMap &rootMap) {
  return realize_.mutate(substitute(e, rootMap));
}

/// Appends the variables of e not yet seen (in order of first use).
void collectFreeVars(const Expr &e, std::vector<const VarNode *> &seen, std::vector<Var> &out) {
  struct Collect : IRVisitor {
    std::vector<const VarNode *> *seen;
    std::vector<Var> *out;
    using IRVisitor::visit;
    void visit(const Expr &x) override {
      if (const auto *v = x.as<VarNode>()) {
        if (std::find(seen->begin(), seen->end(), v) == seen->end()) {
          seen->push_back(v);
          out->push_back(Var::fromExpr(x));
        }
        return;
      }
      IRVisitor::visit(x);
    }
  } c;
  c.seen = &seen;
  c.out = &out;
  c.visit(e);
}

/// Puts every Load/Store index into canonical linear form, so that region offsets cancel:
/// B[(xo*8 + xi) - xo*8] -> B[xi].
struct CanonIndices : IRMutator {
  using IRMutator::mutate;
  static std::vector<Expr> canonAll(const std::vector<Expr> &ix, bool &changed) {
    std::vector<Expr> r;
    for (auto &e : ix) {
      Expr c = e.type() == Type::i64() ? canon(e) : e;
      changed |= !c.same_as(e);
      r.push_back(c);
    }
    return r;
  }
  Expr mutate(const Expr &e, const LoadNode *op) override {
    Expr r = IRMutator::mutate(e, op);
    const auto *ld = r.as<LoadNode>();
    bool changed = false;
    auto ix = canonAll(ld->indices, changed);
    return changed ? LoadNode::make(ld->buffer, ix, ld->predicate) : r;
  }
  Stmt mutate(const Stmt &s, const StoreNode *op) override {
    Stmt r = IRMutator::mutate(s, op);
    const auto *st = r.as<StoreNode>();
    bool changed = false;
    auto ix = canonAll(st->indices, changed);
    return changed ? StoreNode::make(st->buffer, st->value, ix, st->predicate) : r;
  }
};

bool usesVar(const Expr &e, const Expr &v) {
  struct Find : IRVisitor {
    const ExprNode *target;
    bool found = false;
    using IRVisitor::visit;
    void visit(const VarNode *op) override { found |= op == target; }
  } f;
  f.target = v.get();
  f.visit(e);
  return f.found;
}

Stmt guarded(const std::vector<Expr> &conds, Stmt body) {
  Expr c;
  for (auto &e : conds)
    c = c.defined() ? (c && e) : e;
  return c.defined() ? IfThenElseNode::make(c, body) : body;
}

Stmt Lowerer::wrapAttached(StageState &consumer, size_t leafPos, Stmt body) {
  std::vector<Stmt> nests;
  std::vector<Buffer> allocs;
  for (auto &st : states_) {
    StageNode *s = st.node;
    if (s->attach != AttachKind::Scope || s->attachStage.get() != consumer.node ||
        !s->attachIv.same_as(consumer.node->leafIterVars[leafPos]))
      continue;
    nests.push_back(makeNest(st));
    if (st.allocate)
      allocs.push_back(st.realized);
  }
  if (nests.empty())
    return body;
  nests.push_back(body);
  Stmt r = SeqNode::make(nests);
  for (auto it = allocs.rbegin(); it != allocs.rend(); ++it)
    r = AllocateNode::make(*it, r);
  return r;
}

Stmt Lowerer::makeNest(StageState &st) {
  StageNode *s = st.node;
  size_t nd = s->tensor.ndim();
  // Root variables -> their values (region min + leaf expression).
  VarMap rootMap;
  std::vector<Expr> storeIdx, shapeGuards;
  for (size_t r = 0; r < s->rootIterVars.size(); ++r) {
    const IterVar &rv = s->rootIterVars[r];
    Expr local = st.value.at(rv);
    Expr full = canon(st.rootMin[r] + local);
    rootMap[rv] = full;
    if (r < nd) {
      storeIdx.push_back(st.allocate ? local : full);
      if (st.guardShape[r])
        shapeGuards.push_back(full < s->tensor.shape()[r]);
    }
  }
  auto forKindOf = [&](const IterVar &l) {
    auto it = s->forKinds.find(l.get());
    ForKind k = it == s->forKinds.end() ? ForKind::Serial : it->second;
    if (k == ForKind::Vectorized && !asConstInt(st.leafExt.at(l.get())))
      fail(where(st), ": vectorize of axis '", l.name(),
           "', whose extent is not a constant; expected a constant extent (split it first)");
    return k;
  };
  // Guards (tail of splits, edges of an attached region, the reduction's condition) sit just
  // inside the deepest loop whose variable they use: LoopPartition splits such a loop, and a
  // guard on outer loops only is tested once per outer iteration.
  int firstReduce = -1; // leaf position of the first reduction loop
  std::vector<std::pair<Expr, bool>> guards; // (condition, only in the update of a reduction)
  for (auto &g : shapeGuards)
    guards.emplace_back(g, false);
  for (auto &[g, isReduce] : st.guards)
    guards.emplace_back(g, isReduce);
  auto deepest = [&](const Expr &cond, const VarMap &rename) {
    int d = -1;
    for (size_t i = 0; i < s->leafIterVars.size(); ++i) {
      auto it = rename.find(s->leafIterVars[i]);
      Expr v = it == rename.end() ? Expr(s->leafIterVars[i]) : it->second;
      if (usesVar(cond, v))
        d = int(i);
    }
    return d;
  };
  auto guardsAt = [&](int level, const VarMap &rename, bool update, Stmt body) {
    std::vector<Expr> conds;
    for (auto &[g, reduceOnly] : guards) {
      if (reduceOnly && !update)
        continue;
      Expr c = rename.empty() ? g : substitute(g, rename);
      int at = deepest(c, rename);
      if (reduceOnly) // never around the init: at the first reduction loop or deeper
        at = std::max(at, firstReduce);
      if (at == level)
        conds.push_back(c);
    }
    return guarded(conds, body);
  };
  Stmt body;
  if (st.reduce) {
    Expr src = inLeaves(st.reduce->source, rootMap);
    Expr cur = LoadNode::make(st.realized, storeIdx);
    body = StoreNode::make(st.realized, reduceCombine(st.reduce->op, cur, src), storeIdx);
    if (st.reduce->condition.defined())
      guards.emplace_back(inLeaves(st.reduce->condition, rootMap), true);
    for (size_t i = 0; i < s->leafIterVars.size(); ++i)
      if (s->leafIterVars[i].isReduce()) {
        firstReduce = int(i);
        break;
      }
  } else {
    body = StoreNode::make(st.realized, inLeaves(st.body, rootMap), storeIdx);
  }
  // The init nest: the data-parallel loops inside the first reduction loop, fresh variables.
  Stmt init;
  int initTop = firstReduce < 0 ? int(s->leafIterVars.size()) : firstReduce;
  if (st.reduce) {
    VarMap fresh;
    std::vector<int> loops;
    for (int i = initTop; i < int(s->leafIterVars.size()); ++i)
      if (!s->leafIterVars[size_t(i)].isReduce()) {
        loops.push_back(i);
        fresh[s->leafIterVars[size_t(i)]] = Var(s->leafIterVars[size_t(i)].name() + ".init");
      }
    std::vector<Expr> idx;
    for (auto &e : storeIdx)
      idx.push_back(substitute(e, fresh));
    init = StoreNode::make(st.realized, substitute(inLeaves(st.reduce->init, rootMap), fresh), idx);
    for (auto it = loops.rbegin(); it != loops.rend(); ++it) {
      const IterVar &l = s->leafIterVars[size_t(*it)];
      init = guardsAt(*it, fresh, false, init);
      init = ForNode::make(Var::fromExpr(fresh.at(l)), makeZero(Type::i64()), st.leafExt.at(l.get()),
                           forKindOf(l), init);
    }
  }
  // What the stage reads, in leaf variables (for prefetches).
  Expr reads = inLeaves(st.reduce ? st.reduce->source : st.body, rootMap);
  for (const PrefetchSpec &pf : s->prefetches) {
    bool leaf = false;
    for (const IterVar &l : s->leafIterVars)
      leaf |= l.same_as(pf.axis);
    if (!leaf)
      fail(where(st), ": prefetch at axis '", pf.axis.name(),
           "', which is no longer a loop of the stage (split or fused after prefetch)");
  }
  for (int p = int(s->leafIterVars.size()) - 1; p >= 0; --p) {
    const IterVar &l = s->leafIterVars[p];
    body = guardsAt(p, {}, true, body);
    body = wrapAttached(st, size_t(p), body);
    for (auto it = s->prefetches.rbegin(); it != s->prefetches.rend(); ++it)
      if (it->axis.same_as(l))
        body = SeqNode::make({makePrefetch(st, *it, size_t(p), reads), body});
    body = ForNode::make(l, makeZero(Type::i64()), st.leafExt.at(l.get()), forKindOf(l), body);
    if (p == firstReduce)
      body = SeqNode::make({init, body});
  }
  body = guardsAt(-1, {}, true, body);
  if (st.reduce && firstReduce < 0) // a reduction with no axes left (cannot happen today)
    body = SeqNode::make({init, body});
  return body;
}

/// One prefetch per cache line of the region of `spec.tensor` that iteration l + offset of
/// leaf loop `leafPos` reads (`reads`: the stage's body in leaf variables): the loops inside it
/// range over their extents, the outer ones stay variables. Each dimension of the region gets
/// an unrolled loop; the innermost steps by a cache line.
Stmt Lowerer::makePrefetch(StageState &st, const PrefetchSpec &spec, size_t leafPos,
                           const Expr &reads) {
  StageNode *s = st.node;
  const StageState &src = state(sched_[spec.tensor].get());
  if (src.node->attach == AttachKind::Inline)
    fail(where(st), ": prefetch of '", spec.tensor.name(),
         "', which is computed inline (it has no buffer to prefetch)");
  CollectLoadsOf c;
  c.target = src.realized.get();
  c.visit(reads);
  if (c.indices.empty())
    fail(where(st), ": prefetch of '", spec.tensor.name(),
         "', which the stage does not read; expected one of its inputs");
  const IterVar &axis = s->leafIterVars[leafPos];
  RangeMap ranges;
  for (size_t i = leafPos + 1; i < s->leafIterVars.size(); ++i) {
    const IterVar &l = s->leafIterVars[i];
    ranges[l.get()] = Interval{makeZero(Type::i64()), canon(st.leafExt.at(l.get()) - Expr(int64_t(1)))};
  }
  VarMap shift;
  shift[axis] = Expr(axis) + Expr(spec.offset);
  const int64_t line = std::max<int64_t>(1, 64 / int64_t(dtypeSize(spec.tensor.dtype())));
  std::vector<Stmt> out;
  std::vector<std::vector<Expr>> done;
  for (const std::vector<Expr> &idx0 : c.indices) {
    std::vector<Expr> lo, ext;
    for (const Expr &e : idx0) {
      Interval iv = bound(canon(substitute(e, shift)), ranges);
      const Expr n = iv.known() ? canon(iv.hi - iv.lo + Expr(int64_t(1))) : Expr();
      const int64_t *k = n.defined() ? asConstInt(n) : nullptr;
      if (!k)
        fail(where(st), ": prefetch of '", spec.tensor.name(), "' at axis '", axis.name(),
             "': the region it reads there has a non-constant extent");
      lo.push_back(canon(iv.lo));
      ext.push_back(Expr(*k));
    }
    bool dup = false;
    for (const auto &d : done)
      dup |= std::equal(d.begin(), d.end(), lo.begin(), lo.end(),
                        [](const Expr &a, const Expr &b) { return exprEqual(a, b); });
    if (dup)
      continue;
    done.push_back(lo);
    std::vector<Var> vars;
    std::vector<Expr> idx;
    for (size_t d = 0; d < lo.size(); ++d) {
      const int64_t n = *asConstInt(ext[d]);
      const bool last = d + 1 == lo.size();
      const int64_t count = last ? (n + line - 1) / line : n;
      Var v("pf." + spec.tensor.name() + "." + std::to_string(d));
      vars.push_back(count > 1 ? v : Var());
      Expr at = count > 1 ? (last ? Expr(v) * Expr(line) : Expr(v)) : makeZero(Type::i64());
      idx.push_back(canon(lo[d] + at));
      ext[d] = Expr(count);
    }
    Stmt body = EvaluateNode::make(CallNode::make("prefetch", {LoadNode::make(src.realized, idx)}));
    for (size_t d = lo.size(); d-- > 0;)
      if (vars[d].defined())
        body = ForNode::make(vars[d], makeZero(Type::i64()), ext[d], ForKind::Unrolled, body);
    out.push_back(body);
  }
  return out.size() == 1 ? out[0] : SeqNode::make(out);
}

LoweredFunc Lowerer::run() {
  if (!sched_.get())
    fail("te::lower '", name_, "': the schedule is empty");
  for (auto &s : sched_.stages()) {
    index_[s.get()] = states_.size();
    StageState st;
    st.node = s.get();
    st.body = s->body;
    st.reduce = s->reduce;
    states_.push_back(std::move(st));
  }
  inlineStages();
  checkArgs();
  inferBounds();
  realizeBuffers();
  std::vector<Stmt> top;
  std::vector<Buffer> allocs;
  for (auto &st : states_) {
    StageNode *s = st.node;
    if (s->tensor.isPlaceholder() || s->attach != AttachKind::Root)
      continue;
    top.push_back(makeNest(st));
    if (st.allocate)
      allocs.push_back(st.realized);
  }
  Stmt body = SeqNode::make(top);
  for (auto it = allocs.rbegin(); it != allocs.rend(); ++it)
    body = AllocateNode::make(*it, body);
  LoweredFunc f;
  f.name = name_;
  std::vector<const VarNode *> seen;
  std::vector<Var> scalars;
  for (auto &a : args_) {
    f.params.push_back(Param::ofBuffer(a.buffer()));
    for (auto &e : a.shape())
      collectFreeVars(e, seen, scalars);
  }
  for (auto &v : scalars)
    f.params.push_back(Param::ofVar(v));
  f.body = simplify(CanonIndices().mutate(body));
  return f;
}

} // namespace

LoweredFunc lower(const Schedule &schedule, const std::vector<Tensor> &args,
                  const std::string &name) {
  return Lowerer(schedule, args, name).run();
}

} // namespace tessel::te
