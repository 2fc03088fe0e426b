//===- Lowering.cpp - the lowering context and helpers shared by lowerings -===//
//
// The per-op lowerings live in lib/Graph/Ops/<Family>.cpp next to each op's inference and
// reference kernel; this file holds what they share: the LowerContext, the node driver
// (lowerNode) and the index helpers (broadcasting, padding, axes, dtypes).
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/Lowering.h"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace tessel {

using loop::Expr;
using loop::Var;

/// f16 and bf16: stored as 16 bits, computed in f32 (docs/lowering.md).
static bool isNarrowFloat(DType dt) { return dt == DType::f16 || dt == DType::bf16; }

//===----------------------------------------------------------------------===//
// LowerContext
//===----------------------------------------------------------------------===//

LowerContext::LowerContext(const Node &n, std::vector<te::Tensor> inputs)
    : AttrReader(n), inputs_(std::move(inputs)), outputs_(n.numOutputs()) {
  check(inputs_.size() == n.numInputs(), "lowering was given ", inputs_.size(),
        " input tensor(s) but the node has ", n.numInputs(), " input(s)");
}

const te::Tensor &LowerContext::input(size_t i) const {
  check(hasInput(i), "lowering needs input ", i, " but it is missing");
  return inputs_[i];
}

static std::vector<int64_t> staticShapeOf(const AttrReader &ctx, const Value *v, const char *what,
                                          size_t i) {
  ctx.check(v != nullptr, what, " ", i, " is missing");
  ctx.check(v->type.isTensor() && v->type.shape.isStatic(), what, " ", i, " ('", v->name(),
            "') has type ", v->type.str(), "; lowering expects a tensor of static shape");
  return v->type.shape.staticDims();
}

std::vector<int64_t> LowerContext::inputShape(size_t i) const {
  if (hasInput(i) && inputs_[i].defined()) {
    // The te::Tensor's shape is authoritative when it is static.
    std::vector<int64_t> s;
    for (const Expr &e : inputs_[i].shape()) {
      const int64_t *c = loop::asConstInt(e);
      if (!c)
        return staticShapeOf(*this, node().input(i), "input", i);
      s.push_back(*c);
    }
    return s;
  }
  return staticShapeOf(*this, node().input(i), "input", i);
}

DType LowerContext::inputDType(size_t i) const { return input(i).dtype(); }

/// Input i's value when it is a constant (an outer graph's constant for a subgraph's capture).
static const Tensor *constantInput(const Node &n, size_t i) {
  Value *v = i < n.numInputs() ? n.input(i) : nullptr;
  while (v && v->outer)
    v = v->outer;
  if (!v || !v->isConstant())
    return nullptr;
  return &v->constant;
}

const Tensor *LowerContext::inputConstant(size_t i) const { return constantInput(node(), i); }

std::vector<int64_t> LowerContext::constantInts(size_t i, const char *what) const {
  const Tensor *t = inputConstant(i);
  check(t != nullptr, "input ", i, " (", what,
        ") is not a constant; lowering needs its value (an initializer or a folded constant)");
  return t->toInt64Vector();
}

std::vector<double> LowerContext::constantFloats(size_t i, const char *what) const {
  const Tensor *t = inputConstant(i);
  check(t != nullptr, "input ", i, " (", what,
        ") is not a constant; lowering needs its value (an initializer or a folded constant)");
  return t->toDoubleVector();
}

std::vector<int64_t> LowerContext::outputShape(size_t i) const {
  return staticShapeOf(*this, node().output(i), "output", i);
}

DType LowerContext::outputDType(size_t i) const {
  const Value *v = node().output(i);
  check(v && v->type.isTensor() && v->type.dtype != DType::undefined, "output ", i,
        " has no known tensor dtype; run shape inference before lowering");
  if (widened_ && isNarrowFloat(v->type.dtype))
    return DType::f32;
  return v->type.dtype;
}

void LowerContext::setOutput(size_t i, te::Tensor t) {
  check(i < outputs_.size(), "lowering set output ", i, " but the node has ", outputs_.size(),
        " output(s)");
  check(t.defined(), "lowering set output ", i, " to an undefined tensor");
  std::vector<int64_t> want = outputShape(i);
  bool same = want.size() == t.ndim();
  for (size_t d = 0; same && d < want.size(); ++d) {
    const int64_t *c = loop::asConstInt(t.shape()[d]);
    same = c && *c == want[d];
  }
  check(same, "lowering of output ", i, " made a tensor of rank ", t.ndim(),
        " that does not match the inferred shape ", shapeToString(want));
  check(t.dtype() == outputDType(i), "lowering of output ", i, " made dtype ",
        dtypeName(t.dtype()), " but the inferred dtype is ", dtypeName(outputDType(i)));
  outputs_[i] = std::move(t);
}

/// "<op>_<dtype>_<node name>[_<what>]" with every other character made '_'.
static std::string kernelNameOf(const Node &n, const std::string &what) {
  std::string op = n.opType;
  std::transform(op.begin(), op.end(), op.begin(), [](unsigned char c) { return std::tolower(c); });
  std::string s = op;
  if (n.numOutputs() && n.output(0) && n.output(0)->type.isTensor() &&
      n.output(0)->type.dtype != DType::undefined)
    s += "_" + std::string(dtypeName(n.output(0)->type.dtype));
  if (!n.name.empty())
    s += "_" + n.name;
  if (!what.empty())
    s += "_" + what;
  for (char &c : s)
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_')
      c = '_';
  return s;
}

std::string LowerContext::name(const std::string &what) const {
  return kernelNameOf(node(), what);
}

//===----------------------------------------------------------------------===//
// Node driver
//===----------------------------------------------------------------------===//

static const OpDef *opDefOf(const Node &n) {
  const Graph *g = n.graph();
  int64_t version = 17;
  if (g) {
    auto it = g->opsets.find(n.domain);
    if (it != g->opsets.end())
      version = it->second;
  }
  const OpRegistry &reg = OpRegistry::get();
  const OpDef *d = reg.lookup(n.domain, n.opType, version);
  return d ? d : reg.lookupAny(n.domain, n.opType);
}

bool hasLowering(const Node &n) {
  const OpDef *d = opDefOf(n);
  return d && d->lower;
}

/// `t` converted elementwise to `to`, as a compute named `name`.
static te::Tensor castCompute(const te::Tensor &t, DType to, const std::string &name) {
  return te::compute(t.shape(), [t, to](const std::vector<Var> &iv) {
    return loop::cast(to, t.access(std::vector<Expr>(iv.begin(), iv.end())));
  }, name);
}

/// A sum or product over f16/bf16 values among `outputs` and the computes they read: generated
/// code would round it at every step.
static const te::Tensor *narrowAccumulation(const std::vector<te::Tensor> &outputs,
                                            std::vector<te::Tensor> &seen) {
  std::vector<te::Tensor> work = outputs;
  while (!work.empty()) {
    te::Tensor t = work.back();
    work.pop_back();
    if (std::any_of(seen.begin(), seen.end(), [&](const te::Tensor &o) { return o.same_as(t); }))
      continue;
    seen.push_back(t);
    if (const auto &red = t.op()->reduce;
        red && (red->op == loop::ReduceOp::Add || red->op == loop::ReduceOp::Mul) &&
        isNarrowFloat(t.dtype()))
      return &seen.back();
    for (auto &p : te::inputTensors(t))
      work.push_back(p);
  }
  return nullptr;
}

LoweredNode lowerNode(const Node &n, const std::vector<te::Tensor> &inputs) {
  const OpDef *d = opDefOf(n);
  if (!d)
    fail(n.describe(), ": op '", n.opType, "' is not registered; it cannot be lowered");
  if (!d->lower)
    fail(n.describe(), ": op '", n.opType,
         "' has no lowering to tensor expressions (docs/lowering.md lists the ops that have one)");
  LowerContext ctx(n, inputs);
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined())
      lowering::checkDType(ctx, inputs[i].dtype(), "input dtype");
  d->lower(ctx);
  LoweredNode ln;
  ln.inputs = inputs;
  ln.outputs = ctx.outputs();
  ln.stages = ctx.stages();
  std::vector<te::Tensor> seen;
  if (narrowAccumulation(ln.definedOutputs(), seen)) {
    // f16/bf16 values are rounded after every operation in generated code, so a sum or product
    // of them (ReduceSum, MatMul, Conv, a Softmax's sum) would round at each step. Such a node
    // is lowered again at f32, as the reference kernels compute it: its f16/bf16 inputs widened
    // (exactly), every output narrowed once at the end.
    std::vector<te::Tensor> wide = inputs;
    std::vector<te::Tensor> stages;
    for (size_t i = 0; i < wide.size(); ++i) {
      if (!wide[i].defined() || !isNarrowFloat(wide[i].dtype()))
        continue;
      wide[i] = castCompute(wide[i], DType::f32, ctx.name("widen" + std::to_string(i)));
      stages.push_back(wide[i]);
    }
    LowerContext wctx(n, wide);
    wctx.setWidened(true);
    d->lower(wctx);
    ln.outputs = wctx.outputs();
    ln.stages = wctx.stages();
    ln.stages.insert(ln.stages.begin(), stages.begin(), stages.end());
    for (size_t i = 0; i < n.numOutputs(); ++i) {
      const Value *v = n.output(i);
      if (!v || !ln.outputs[i].defined() || !isNarrowFloat(v->type.dtype))
        continue;
      ln.stages.push_back(ln.outputs[i]);
      ln.outputs[i] = castCompute(ln.outputs[i], v->type.dtype,
                                  ctx.name("narrow" + (n.numOutputs() > 1 ? std::to_string(i)
                                                                          : std::string())));
    }
    seen.clear();
    if (const te::Tensor *t = narrowAccumulation(ln.definedOutputs(), seen))
      ctx.fail("'", t->op()->name, "' accumulates ", dtypeName(t->dtype()),
               " values even when the node is lowered at f32; expected an f32 or f64 "
               "accumulation");
  }
  // the placeholders the outputs read, transitively
  ln.inputUsed.assign(inputs.size(), false);
  for (const te::Tensor &t : seen)
    for (size_t i = 0; i < inputs.size(); ++i)
      if (inputs[i].defined() && inputs[i].same_as(t))
        ln.inputUsed[i] = true;
  for (size_t i = 0; i < n.numOutputs(); ++i) {
    if (n.output(i) && !ln.outputs[i].defined())
      ctx.fail("lowering did not set output ", i, " ('", n.output(i)->name(), "')");
    if (ln.outputs[i].defined())
      ln.stages.push_back(ln.outputs[i]);
  }
  return ln;
}

std::vector<te::Tensor> LoweredNode::definedOutputs() const {
  std::vector<te::Tensor> a;
  for (auto &t : outputs)
    if (t.defined())
      a.push_back(t);
  return a;
}

std::vector<te::Tensor> LoweredNode::args() const {
  std::vector<te::Tensor> a;
  for (size_t i = 0; i < inputs.size(); ++i)
    if (inputs[i].defined() && i < inputUsed.size() && inputUsed[i])
      a.push_back(inputs[i]);
  for (auto &t : outputs)
    if (t.defined())
      a.push_back(t);
  return a;
}

LoweredNode lowerNode(const Node &n) {
  AttrReader r(n);
  std::vector<te::Tensor> inputs;
  for (size_t i = 0; i < n.numInputs(); ++i) {
    const Value *v = n.input(i);
    if (!v) {
      inputs.emplace_back();
      continue;
    }
    std::vector<int64_t> s = staticShapeOf(r, v, "input", i);
    r.check(lowering::isLowerableDType(v->type.dtype), "input ", i, " ('", v->name(), "') has dtype ",
            dtypeName(v->type.dtype),
            ", which lowering does not support; expected f32, f64, f16, bf16, a signed/unsigned "
            "integer or bool");
    inputs.push_back(te::placeholder(lowering::shapeExprs(s), v->type.dtype, v->name()));
  }
  return lowerNode(n, inputs);
}

//===----------------------------------------------------------------------===//
// Kernels of data-dependent output shapes
//===----------------------------------------------------------------------===//

DynamicKernelContext::DynamicKernelContext(const Node &n, std::vector<DynamicOutputBound> bounds)
    : AttrReader(n), inputs_(n.numInputs()), outputs_(n.numOutputs()),
      extents_(n.numOutputs()), bounds_(std::move(bounds)) {
  check(bounds_.size() == n.numOutputs(), "the kernel's bounds give ", bounds_.size(),
        " output(s) but the node has ", n.numOutputs());
  auto count = [](const std::vector<int64_t> &dims) {
    int64_t c = 1;
    for (int64_t d : dims)
      c *= d;
    return c;
  };
  for (size_t i = 0; i < n.numInputs(); ++i)
    if (n.input(i))
      inputs_[i] = loop::Buffer::make(n.input(i)->name(), inputDType(i),
                                      {Expr(count(inputShape(i)))});
  for (size_t i = 0; i < n.numOutputs(); ++i) {
    if (!n.output(i))
      continue;
    const DynamicOutputBound &b = bounds_[i];
    check(b.axis >= -1 && b.axis < int64_t(b.shape.size()), "output ", i, " bound ",
          shapeToString(b.shape), " has dynamic axis ", b.axis, "; expected -1 or a dim");
    for (int64_t d : b.shape)
      check(d >= 0, "output ", i, " bound ", shapeToString(b.shape), " has a negative dim");
    outputs_[i] = loop::Buffer::make(n.output(i)->name(), outputDType(i), {Expr(count(b.shape))});
    if (b.axis >= 0)
      extents_[i] = loop::Buffer::make(n.output(i)->name() + ".extent", DType::i64,
                                       {Expr(int64_t(1))});
  }
}

const loop::Buffer &DynamicKernelContext::input(size_t i) const {
  check(hasInput(i), "the kernel needs input ", i, " but it is missing");
  return inputs_[i];
}

std::vector<int64_t> DynamicKernelContext::inputShape(size_t i) const {
  return staticShapeOf(*this, i < node().numInputs() ? node().input(i) : nullptr, "input", i);
}

DType DynamicKernelContext::inputDType(size_t i) const {
  const Value *v = i < node().numInputs() ? node().input(i) : nullptr;
  check(v && v->type.isTensor(), "input ", i, " is missing or not a tensor");
  return v->type.dtype;
}

const Tensor *DynamicKernelContext::inputConstant(size_t i) const {
  return constantInput(node(), i);
}

const loop::Buffer &DynamicKernelContext::output(size_t i) const {
  check(hasOutput(i), "the kernel writes output ", i, " but the node does not have it");
  return outputs_[i];
}

DType DynamicKernelContext::outputDType(size_t i) const {
  const Value *v = i < node().numOutputs() ? node().output(i) : nullptr;
  check(v && v->type.isTensor() && v->type.dtype != DType::undefined, "output ", i,
        " has no known tensor dtype; run shape inference before building the kernel");
  return v->type.dtype;
}

const DynamicOutputBound &DynamicKernelContext::bound(size_t i) const { return bounds_.at(i); }

std::vector<loop::Param> DynamicKernelContext::params() const {
  std::vector<loop::Param> ps;
  for (const loop::Buffer &b : inputs_)
    if (b.defined())
      ps.push_back(loop::Param::ofBuffer(b));
  for (const loop::Buffer &b : outputs_)
    if (b.defined())
      ps.push_back(loop::Param::ofBuffer(b));
  for (const loop::Buffer &b : extents_)
    if (b.defined())
      ps.push_back(loop::Param::ofBuffer(b));
  return ps;
}

std::string DynamicKernelContext::name(const std::string &what) const {
  return kernelNameOf(node(), what);
}

bool hasDynamicKernel(const Node &n) {
  const OpDef *d = opDefOf(n);
  return d && d->dynamicKernel;
}

std::vector<DynamicOutputBound> dynamicOutputBounds(const Node &n) {
  const OpDef *d = opDefOf(n);
  if (!d || !d->dynamicKernel)
    fail(n.describe(), ": op ", n.opType, " has no kernel for data-dependent output shapes");
  AttrReader r(n);
  std::vector<DynamicOutputBound> b = d->dynamicKernel->bounds(r);
  r.check(b.size() == n.numOutputs(), "the kernel's bounds give ", b.size(),
          " output(s) but the node has ", n.numOutputs());
  return b;
}

DynamicKernelFunc buildDynamicKernel(const Node &n, const std::string &symbol) {
  DynamicKernelFunc out;
  out.bounds = dynamicOutputBounds(n);
  DynamicKernelContext ctx(n, out.bounds);
  out.func.name = symbol;
  out.func.params = ctx.params();
  out.func.body = opDefOf(n)->dynamicKernel->body(ctx);
  ctx.check(out.func.body.defined(), "the kernel built no statement");
  return out;
}

std::vector<LoweringInfo> loweringList() {
  std::vector<LoweringInfo> out;
  for (const OpDef &d : OpRegistry::get().all()) {
    if (!(d.lower || d.dynamicKernel) || !d.domain.empty())
      continue;
    bool seen = false;
    for (auto &o : out)
      seen |= o.op == d.name;
    if (seen)
      continue;
    std::string notes = d.notes;
    if (!d.lower) // a DynamicKernel
      notes = std::string("output shape depends on the data: a loop-IR kernel over a static "
                          "bound; flows on through row-wise nodes only") + (notes.empty() ? "" : "; ") + notes;
    out.push_back({d.name, d.dtypes, notes});
  }
  std::sort(out.begin(), out.end(),
            [](const LoweringInfo &a, const LoweringInfo &b) { return a.op < b.op; });
  return out;
}

//===----------------------------------------------------------------------===//
// Helpers
//===----------------------------------------------------------------------===//
namespace lowering {

std::vector<Expr> shapeExprs(const std::vector<int64_t> &shape) {
  return std::vector<Expr>(shape.begin(), shape.end());
}

Expr rowMajorIndex(const std::vector<Expr> &idx, const std::vector<int64_t> &dims) {
  Expr f = Expr(int64_t(0));
  for (size_t d = 0; d < idx.size(); ++d)
    f = f * dims[d] + idx[d];
  return f;
}

std::vector<Expr> broadcastIndex(const std::vector<Var> &out, const std::vector<int64_t> &in) {
  std::vector<Expr> idx;
  for (size_t d = 0; d < in.size(); ++d) {
    // right-aligned: input dim d pairs with output dim d + out.size() - in.size()
    bool paired = d + out.size() >= in.size();
    idx.push_back(in[d] == 1 || !paired ? Expr(int64_t(0))
                                        : Expr(out[d + out.size() - in.size()]));
  }
  return idx;
}

int64_t normalizeAxis(const LowerContext &ctx, int64_t axis, int64_t rank, const char *what) {
  ctx.check(axis >= -rank && axis < rank, what, " ", axis, " is out of range for rank ", rank,
            "; expected a value in [", -rank, ", ", rank, ")");
  return axis < 0 ? axis + rank : axis;
}

Expr loadPadded(const te::Tensor &t, const std::vector<Expr> &idx, const std::vector<int64_t> &shape,
                Expr padValue) {
  Expr inside;
  std::vector<Expr> clamped;
  for (size_t d = 0; d < idx.size(); ++d) {
    Expr ok = (idx[d] >= int64_t(0)) && (idx[d] < shape[d]);
    inside = inside.defined() ? (inside && ok) : ok;
    clamped.push_back(loop::max(loop::min(idx[d], Expr(shape[d] - 1)), Expr(int64_t(0))));
  }
  Expr v = t.access(clamped);
  if (!inside.defined())
    return v;
  return te::if_then_else(inside, v, padValue);
}

bool isLowerableDType(DType dt) {
  switch (dt) {
  case DType::f32:
  case DType::f64:
  case DType::f16: // 16 bits in memory, each op computed in f32 and rounded (docs/lowering.md)
  case DType::bf16:
  case DType::i8:
  case DType::i16:
  case DType::i32:
  case DType::i64:
  case DType::u8:
  case DType::u16:
  case DType::u32:
  case DType::u64:
  case DType::boolean:
    return true;
  default:
    return false;
  }
}

void checkDType(const LowerContext &ctx, DType dt, const char *what) {
  ctx.check(isLowerableDType(dt), what, " ", dtypeName(dt),
            " is not supported by lowering; expected f32, f64, f16, bf16, a signed/unsigned "
            "integer or bool");
}

Expr constant(DType dt, double v) {
  if (isFloat(dt))
    return loop::makeConst(loop::Type(dt), v);
  return loop::makeConst(loop::Type(dt), int64_t(v));
}

void lowerBroadcast(LowerContext &ctx, const std::function<Expr(const std::vector<Expr> &)> &f) {
  std::vector<int64_t> out = ctx.outputShape(0);
  // An f16/bf16 op computes in f32 and rounds once, as the reference kernels do: its inputs of
  // the output's dtype are widened (exactly) and the result narrowed at the end. Computed in
  // the narrow type, an op the lowering writes as several operations (Atanh's log((1+x)/(1-x)),
  // HardSigmoid, Selu, Mod) would round after each of them (Atanh at x = 0.001: 26 f16 ulp off).
  const DType outDType = ctx.outputDType(0);
  const bool narrow = isNarrowFloat(outDType);
  std::vector<std::vector<int64_t>> shapes(ctx.numInputs());
  for (size_t i = 0; i < ctx.numInputs(); ++i)
    if (ctx.hasInput(i))
      shapes[i] = ctx.inputShape(i);
  te::Tensor t = te::compute(
      shapeExprs(out),
      [&](std::vector<Var> iv) {
        std::vector<Expr> vals;
        for (size_t i = 0; i < ctx.numInputs(); ++i) {
          if (!ctx.hasInput(i)) {
            vals.emplace_back();
            continue;
          }
          ctx.check(shapes[i].size() <= out.size(), "input ", i, " has rank ", shapes[i].size(),
                    " above the output's ", out.size());
          Expr v = ctx.input(i).access(broadcastIndex(iv, shapes[i]));
          if (narrow && ctx.inputDType(i) == outDType)
            v = loop::cast(DType::f32, v);
          vals.push_back(v);
        }
        Expr r = f(vals);
        if (narrow && r.type().dtype == DType::f32)
          r = loop::cast(outDType, r);
        return r;
      },
      ctx.name());
  ctx.setOutput(0, t);
}

te::Tensor storedCompute(const LowerContext &ctx, std::vector<Expr> shape,
                         const std::function<Expr(const std::vector<Var> &)> &f,
                         const std::string &what) {
  return ctx.compute(std::move(shape), [&](std::vector<Var> iv) {
    te::IterVar u = te::reduce_axis({Expr(int64_t(0)), Expr(int64_t(1))}, "u");
    return te::ComputeBody(te::sum(f(iv), {u}));
  }, what);
}

Expr truncDiv(Expr a, Expr b) {
  if (a.type().isFloat())
    return a / b;
  Expr q = a / b;
  if (a.type().isUInt())
    return q;
  Expr r = a % b;
  Expr zero = loop::makeZero(a.type());
  // floor and truncation differ when the remainder is non-zero and the signs differ
  return loop::select((r != zero) && ((a < zero) != (b < zero)), q + loop::makeOne(a.type()), q);
}

//--- Building blocks of the DynamicKernels

bool hasNodeInput(const AttrReader &node, size_t i) {
  return i < node.node().numInputs() && node.node().input(i) != nullptr;
}

std::vector<int64_t> nodeInputShape(const AttrReader &node, size_t i) {
  return staticShapeOf(node, hasNodeInput(node, i) ? node.node().input(i) : nullptr, "input", i);
}

const Tensor *nodeInputConstant(const AttrReader &node, size_t i) {
  return constantInput(node.node(), i);
}

LocalScalar::LocalScalar(const std::string &name, DType dt)
    : buf(localBuffer(name, dt, 1)) {}

Expr LocalScalar::get() const { return buf.load({Expr(int64_t(0))}); }

loop::Stmt LocalScalar::set(Expr v) const {
  return loop::StoreNode::make(buf, std::move(v), {Expr(int64_t(0))});
}

loop::Stmt LocalScalar::increment() const { return set(get() + 1); }

loop::Stmt LocalScalar::alloc(loop::Stmt body) const {
  return loop::AllocateNode::make(buf, std::move(body));
}

loop::Buffer localBuffer(const std::string &name, DType dt, int64_t n) {
  return loop::Buffer::make(name, dt, {Expr(n)}, "local");
}

loop::Stmt allocateAll(const std::vector<loop::Buffer> &bufs, loop::Stmt body) {
  for (size_t k = bufs.size(); k-- > 0;)
    body = loop::AllocateNode::make(bufs[k], std::move(body));
  return body;
}

loop::Stmt forRange(const std::string &name, Expr lo, Expr extent,
                    const std::function<loop::Stmt(Expr)> &body) {
  Var v(name);
  return loop::ForNode::make(v, std::move(lo), std::move(extent), loop::ForKind::Serial, body(v));
}

loop::Stmt letIn(const std::string &name, Expr value,
                 const std::function<loop::Stmt(Expr)> &body) {
  Var v(name, value.type());
  return loop::LetStmtNode::make(v, std::move(value), body(v));
}

Expr LetChain::operator()(const std::string &name, Expr value) {
  Var v(name, value.type());
  lets.emplace_back(v, std::move(value));
  return v;
}

loop::Stmt LetChain::wrap(loop::Stmt body) const {
  for (auto it = lets.rbegin(); it != lets.rend(); ++it)
    body = loop::LetStmtNode::make(it->first, it->second, std::move(body));
  return body;
}

Expr isNaN(Expr x) { return x != x; }

Expr totalLess(Expr a, Expr b) {
  if (a.type().isBool())
    return loop::cast(DType::u8, a) < loop::cast(DType::u8, b);
  if (!a.type().isFloat())
    return a < b;
  // !isnan(a) && (isnan(b) || a < b)
  return !isNaN(a) && (isNaN(b) || a < b);
}

loop::Stmt stableMergeSort(
    const std::vector<SortColumn> &columns, Expr n, int64_t capacity,
    const std::function<PrefixedCond(const std::vector<Expr> &x, const std::vector<Expr> &y)>
        &before,
    const std::string &name) {
  int64_t passes = 0;
  while (passes < 62 && (int64_t(1) << passes) < capacity)
    ++passes;
  if (passes == 0 || columns.empty())
    return loop::makeNoOp();
  LocalScalar i(name + "_i", DType::i64), j(name + "_j", DType::i64);
  LocalScalar done(name + "_passes", DType::i64);
  using loop::IfThenElseNode;
  using loop::SeqNode;
  using loop::Stmt;
  using loop::StoreNode;
  // One pass: merges the runs [lo, mid) and [mid, hi) of width w from the `fromData` side into
  // the other. The merge takes from the right run only when its head goes strictly before the
  // left run's head (stability); the heads' indices are clamped into the runs, so a load never
  // leaves [0, n). Branch-free: the comparison is unpredictable on random data.
  auto merge = [&](bool fromData, Expr w) {
    auto src = [&](const SortColumn &c) { return fromData ? c.data : c.scratch; };
    auto dst = [&](const SortColumn &c) { return fromData ? c.scratch : c.data; };
    Expr runs = (n + 2 * w - 1) / (2 * w);
    return forRange(name + "_run", 0, runs, [&](Expr r) {
      LetChain run;
      Expr lo = run(name + "_lo", r * (2 * w));
      Expr mid = run(name + "_mid", loop::min(lo + w, n));
      Expr hi = run(name + "_hi", loop::min(lo + 2 * w, n));
      Stmt loop = forRange(name + "_k", lo, hi - lo, [&](Expr k) {
        LetChain heads;
        Expr ic = heads(name + "_ic", loop::min(i.get(), mid - 1));
        Expr jc = heads(name + "_jc", loop::min(j.get(), hi - 1));
        std::vector<Expr> x, y;
        for (size_t c = 0; c < columns.size(); ++c) {
          const std::string col = name + "_" + std::to_string(c);
          x.push_back(heads(col + "_right", src(columns[c]).load({jc})));
          y.push_back(heads(col + "_left", src(columns[c]).load({ic})));
        }
        PrefixedCond cond = before(x, y);
        Stmt take = letIn(name + "_take_right", j.get() < hi && (i.get() >= mid || cond.value),
                          [&](Expr right) {
                            std::vector<Stmt> st;
                            for (size_t c = 0; c < columns.size(); ++c)
                              st.push_back(StoreNode::make(dst(columns[c]),
                                                           loop::select(right, x[c], y[c]), {k}));
                            Expr step = loop::cast(DType::i64, right);
                            st.push_back(j.set(j.get() + step));
                            st.push_back(i.set(i.get() + (1 - step)));
                            return SeqNode::make(st);
                          });
        return heads.wrap(SeqNode::make({cond.prefix, take}));
      });
      return run.wrap(SeqNode::make({i.set(lo), j.set(mid), loop}));
    });
  };
  Stmt sortPasses = forRange(name + "_pass", 0, passes, [&](Expr p) {
    return letIn(name + "_w", loop::shl(Expr(int64_t(1)), p), [&](Expr w) {
      Stmt pass = IfThenElseNode::make(p % 2 == 0, merge(true, w), merge(false, w));
      return IfThenElseNode::make(w < n, SeqNode::make({pass, done.increment()}));
    });
  });
  Stmt copyBack = IfThenElseNode::make(
      done.get() % 2 == 1, forRange(name + "_c", 0, n, [&](Expr k) {
        std::vector<Stmt> st;
        for (const SortColumn &c : columns)
          st.push_back(StoreNode::make(c.data, c.scratch.load({k}), {k}));
        return SeqNode::make(st);
      }));
  return allocateAll({i.buf, j.buf, done.buf},
                     SeqNode::make({done.set(0), sortPasses, copyBack}));
}

loop::Stmt endDynamicOutput(const DynamicKernelContext &ctx, size_t i, Expr extent) {
  const DynamicOutputBound &b = ctx.bound(i);
  ctx.check(b.axis >= 0, "output ", i, " has no dynamic axis to end");
  const loop::Buffer &out = ctx.output(i);
  int64_t outer = 1, inner = 1;
  for (int64_t d = 0; d < b.axis; ++d)
    outer *= b.shape[d];
  for (size_t d = b.axis + 1; d < b.shape.size(); ++d)
    inner *= b.shape[d];
  const int64_t n = b.shape[b.axis];
  const Expr zero = loop::makeZero(loop::Type(ctx.outputDType(i)));
  return letIn(out.name() + "_extent", std::move(extent), [&](Expr e) {
    // The elements [(o * n + e) * inner, (o * n + n) * inner) of each outer index o.
    auto elems = [&](Expr rows) { return inner == 1 ? rows : rows * inner; };
    auto zeroFrom = [&](Expr row) {
      return forRange(out.name() + "_z", elems(row), elems(n - e), [&](Expr z) {
        return loop::StoreNode::make(out, zero, {z});
      });
    };
    auto zeroRows = [&](Expr o) { return zeroFrom(o * n + e); };
    loop::Stmt zeros = outer == 1 ? zeroFrom(e) : forRange(out.name() + "_o", 0, outer, zeroRows);
    return loop::SeqNode::make(
        {loop::StoreNode::make(ctx.extent(i), e, {Expr(int64_t(0))}), zeros});
  });
}

} // namespace lowering
} // namespace tessel
