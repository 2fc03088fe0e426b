//===- ControlFlow.cpp - If, Loop, Scan, SequenceMap ------------------------===//
//
// Ops whose behaviour is a subgraph: the kernels run the body through ctx.runSubgraph (the
// interpreter resolves outer-scope captures), and inference reads the body graph's own value
// types (inferred before the node, as inferShapes visits subgraphs first).
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"

#include <algorithm>
#include <cstring>

namespace tessel {

namespace {

/// The most iterations a Loop (or Scan / SequenceMap) runs before failing: a model whose trip
/// count is absent (or huge) and whose condition never turns false would otherwise never end.
constexpr int64_t kMaxLoopIterations = int64_t(1) << 24;

//===----------------------------------------------------------------------===//
// Type merging (inference of values that may come from several places)
//===----------------------------------------------------------------------===//

Type elemOf(const Type &t) { return t.elem ? *t.elem : Type::unknown(); }

/// The most precise type that holds every value of type a and every value of type b.
Type mergeTypes(const Type &a, const Type &b) {
  using K = Type::Kind;
  // Different kinds (e.g. an optional initial value and a sequence from the body) give an
  // unknown type: opt<X> would hold both, but inferShapes then replaces the model's declared type
  // of the value with it, and readers that go by that type (the conformance runner reading the
  // expected outputs) would parse the wrong proto.
  if (a.kind != b.kind)
    return Type::unknown();
  switch (a.kind) {
  case K::Unknown: return Type::unknown();
  case K::Tensor:
    return Type::tensor(a.dtype == b.dtype ? a.dtype : DType::undefined,
                        mergeShapes(a.shape, b.shape));
  case K::Sequence: return Type::sequence(mergeTypes(elemOf(a), elemOf(b)));
  case K::Optional: return Type::optional(mergeTypes(elemOf(a), elemOf(b)));
  }
  return Type::unknown();
}

/// The type of one body output (unknown when the body has fewer outputs).
Type bodyOutputType(const Graph &g, size_t i) {
  if (i >= g.outputs.size() || !g.outputs[i])
    return Type::unknown();
  return g.outputs[i]->type;
}

/// `t` (a tensor type) with `d` inserted at `axis` (of the result); unknown rank stays unknown.
Type insertDim(const AttrReader &ctx, const Type &t, int64_t axis, Dim d) {
  if (!t.isTensor())
    return Type::unknown();
  if (!t.shape.rankKnown)
    return Type::tensor(t.dtype, Shape::unknownRank());
  int64_t r = t.shape.rank() + 1;
  int64_t a = normalizeAxis(ctx, axis, r, "scan output axis");
  std::vector<Dim> dims = t.shape.dims;
  dims.insert(dims.begin() + a, d);
  return Type::tensor(t.dtype, Shape(std::move(dims)));
}

//===----------------------------------------------------------------------===//
// Data movement helpers
//===----------------------------------------------------------------------===//

/// Slice `index` of t along `axis`, with that axis removed.
Tensor sliceAt(const Tensor &t, int64_t axis, int64_t index) {
  const auto &s = t.shape();
  std::vector<int64_t> os = s;
  os.erase(os.begin() + axis);
  Tensor out(t.dtype(), os);
  int64_t outer = product(s, 0, axis), dim = s[axis], inner = product(s, axis + 1, s.size());
  for (int64_t o = 0; o < outer; ++o)
    copyElems(out, o * inner, t, (o * dim + index) * inner, inner);
  return out;
}

/// Stacks equally shaped tensors along a new axis `axis` (already normalized to [0, rank]).
Tensor stackAt(const std::vector<Tensor> &ts, int64_t axis) {
  const auto &s = ts.front().shape();
  std::vector<int64_t> os = s;
  int64_t n = int64_t(ts.size());
  os.insert(os.begin() + axis, n);
  Tensor out(ts.front().dtype(), os);
  int64_t outer = product(s, 0, axis), inner = product(s, axis, s.size());
  for (int64_t o = 0; o < outer; ++o)
    for (int64_t i = 0; i < n; ++i)
      copyElems(out, (o * n + i) * inner, ts[i], o * inner, inner);
  return out;
}

/// An empty stacked output ([0] inserted at `axis` into the body output's shape) for a loop that
/// ran zero times; dims the body's type does not fix statically are 0.
Tensor emptyStack(const AttrReader &ctx, const Type &bodyType, int64_t axis, const char *what) {
  DType dt = bodyType.isTensor() && bodyType.dtype != DType::undefined ? bodyType.dtype : DType::f32;
  std::vector<int64_t> s;
  if (bodyType.isTensor() && bodyType.shape.rankKnown)
    for (const Dim &d : bodyType.shape.dims)
      s.push_back(d.isStatic() ? d.value : 0);
  int64_t a = normalizeAxis(ctx, axis, int64_t(s.size()) + 1, what);
  s.insert(s.begin() + a, 0);
  return Tensor(dt, s);
}

/// Accumulates the per-iteration values of one scan output, checking they agree.
struct ScanAccumulator {
  std::vector<Tensor> parts;
  uint64_t bytes = 0;

  void add(const AttrReader &ctx, size_t k, const Object &o) {
    if (!o.isTensor())
      ctx.fail("scan output ", k, " of the body should be a tensor, got a ",
               o.isSequence() ? "sequence" : "empty optional");
    const Tensor &t = o.tensor;
    if (!parts.empty() &&
        (t.dtype() != parts.front().dtype() || t.shape() != parts.front().shape()))
      ctx.fail("scan output ", k, " changed from ", parts.front().typeString(), " to ",
               t.typeString(), " between iterations; every iteration must produce the same shape");
    bytes += t.nbytes();
    if (bytes > kMaxTensorBytes)
      ctx.fail("scan output ", k, " grows over the limit of ", kMaxTensorBytes, " bytes");
    parts.push_back(t);
  }
};

bool readCond(const AttrReader &ctx, const Object &o, const char *what) {
  if (!o.isTensor())
    ctx.fail(what, " should be a boolean tensor with one element");
  const Tensor &t = o.tensor;
  if (t.numel() != 1 || t.dtype() == DType::string)
    ctx.fail(what, " should be a boolean tensor with one element, got ", t.typeString());
  return t.getDouble(0) != 0;
}

int64_t readScalarInt(const AttrReader &ctx, const Tensor &t, const char *what) {
  if (!isInteger(t.dtype()) || t.numel() != 1)
    ctx.fail(what, " should be an integer tensor with one element, got ", t.typeString());
  return t.getInt64(0);
}

Object objectOrNone(const KernelContext &ctx, size_t i) {
  return ctx.hasInput(i) ? ctx.inputObject(i) : Object::none();
}

//===----------------------------------------------------------------------===//
// If
//===----------------------------------------------------------------------===//

void inferIf(InferContext &ctx) {
  const Graph &t = ctx.attrGraph("then_branch");
  const Graph &e = ctx.attrGraph("else_branch");
  ctx.check(t.outputs.size() == e.outputs.size(), "then_branch has ", t.outputs.size(),
            " outputs but else_branch has ", e.outputs.size(), "; they must match");
  ctx.check(t.outputs.size() >= ctx.numOutputs(), "the node has ", ctx.numOutputs(),
            " outputs but its branches produce ", t.outputs.size());
  for (size_t i = 0; i < ctx.numOutputs(); ++i)
    ctx.setOutputType(i, mergeTypes(bodyOutputType(t, i), bodyOutputType(e, i)));
}

void runIf(KernelContext &ctx) {
  bool c = readCond(ctx, ctx.inputObject(0), "cond");
  const Graph &g = ctx.attrGraph(c ? "then_branch" : "else_branch");
  ctx.check(g.inputs.empty(), c ? "then_branch" : "else_branch", " should have no inputs, has ",
            g.inputs.size());
  std::vector<Object> outs = ctx.runSubgraph(g, {});
  ctx.check(outs.size() >= ctx.numOutputs(), "the node has ", ctx.numOutputs(),
            " outputs but the ", c ? "then" : "else", " branch produced ", outs.size());
  for (size_t i = 0; i < ctx.numOutputs(); ++i)
    ctx.setOutputObject(i, std::move(outs[i]));
}

//===----------------------------------------------------------------------===//
// Loop
//===----------------------------------------------------------------------===//

struct LoopShape {
  size_t n = 0; // loop-carried values
  size_t k = 0; // scan outputs
};

LoopShape loopShape(const AttrReader &ctx, const Graph &body, size_t numInputs, size_t numOutputs) {
  ctx.check(numInputs >= 2, "expected inputs (M, cond, v_initial...), got ", numInputs);
  LoopShape s;
  s.n = numInputs - 2;
  ctx.check(body.inputs.size() == s.n + 2, "the body should have ", s.n + 2,
            " inputs (iteration_num, cond, ", s.n, " loop-carried values), has ",
            body.inputs.size());
  ctx.check(body.outputs.size() >= s.n + 1, "the body should have at least ", s.n + 1,
            " outputs (cond, ", s.n, " loop-carried values, scan outputs...), has ",
            body.outputs.size());
  s.k = body.outputs.size() - 1 - s.n;
  ctx.check(numOutputs <= s.n + s.k, "the node has ", numOutputs, " outputs but at most ",
            s.n + s.k, " (loop-carried + scan outputs of the body) are defined");
  return s;
}

void inferLoop(InferContext &ctx) {
  const Graph &body = ctx.attrGraph("body");
  LoopShape s = loopShape(ctx, body, ctx.numInputs(), ctx.numOutputs());
  for (size_t i = 0; i < ctx.numOutputs(); ++i) {
    if (i < s.n) {
      // After zero iterations the initial value, else the body's last output.
      Type init = ctx.hasInput(i + 2) ? ctx.inputType(i + 2) : Type::optional(Type::unknown());
      ctx.setOutputType(i, mergeTypes(init, bodyOutputType(body, 1 + i)));
      continue;
    }
    const Type bt = bodyOutputType(body, 1 + i);
    ctx.setOutputType(i, bt.isTensor() ? insertDim(ctx, bt, 0, Dim()) : Type::unknown());
  }
}

void runLoop(KernelContext &ctx) {
  const Graph &body = ctx.attrGraph("body");
  LoopShape s = loopShape(ctx, body, ctx.numInputs(), ctx.numOutputs());
  bool hasM = ctx.hasInput(0);
  int64_t m = hasM ? readScalarInt(ctx, ctx.input(0), "trip count M") : 0;
  bool cond = ctx.hasInput(1) ? readCond(ctx, ctx.inputObject(1), "cond") : true;

  std::vector<Object> carried(s.n);
  for (size_t j = 0; j < s.n; ++j)
    carried[j] = objectOrNone(ctx, j + 2);
  std::vector<ScanAccumulator> scans(s.k);

  std::vector<Object> in(s.n + 2);
  for (int64_t i = 0; cond && (!hasM || i < m); ++i) {
    if (i >= kMaxLoopIterations)
      ctx.fail("ran ", kMaxLoopIterations, " iterations without its condition turning false ",
               hasM ? "before the trip count" : "(no trip count)",
               "; tessel stops loops at this limit");
    in[0] = Object(Tensor::scalar<int64_t>(i));
    in[1] = Object(Tensor::scalar<bool>(cond));
    for (size_t j = 0; j < s.n; ++j)
      in[j + 2] = std::move(carried[j]);
    std::vector<Object> out = ctx.runSubgraph(body, in);
    ctx.check(out.size() == body.outputs.size(), "the body produced ", out.size(),
              " outputs, expected ", body.outputs.size());
    cond = readCond(ctx, out[0], "the body's condition output");
    for (size_t j = 0; j < s.n; ++j)
      carried[j] = std::move(out[1 + j]);
    for (size_t k = 0; k < s.k; ++k)
      scans[k].add(ctx, k, out[1 + s.n + k]);
  }

  for (size_t i = 0; i < ctx.numOutputs(); ++i) {
    if (i < s.n) {
      ctx.setOutputObject(i, std::move(carried[i]));
      continue;
    }
    size_t k = i - s.n;
    if (scans[k].parts.empty())
      ctx.setOutput(i, emptyStack(ctx, bodyOutputType(body, 1 + i), 0, "scan output axis"));
    else
      ctx.setOutput(i, stackAt(scans[k].parts, 0));
  }
}

//===----------------------------------------------------------------------===//
// Scan
//===----------------------------------------------------------------------===//

struct ScanAttrs {
  size_t n = 0, m = 0, k = 0; // states, scan inputs, scan outputs
  std::vector<int64_t> inAxes, inDirs, outAxes, outDirs;
};

/// Reads and checks Scan's attributes; `first` is the index of the first state input.
ScanAttrs scanAttrs(const AttrReader &ctx, const Graph &body, size_t numInputs, size_t first,
                    size_t numOutputs) {
  ScanAttrs a;
  int64_t m = ctx.attrInt("num_scan_inputs");
  ctx.check(m >= 1 && size_t(m) + first <= numInputs, "num_scan_inputs is ", m,
            " but the node has ", numInputs - first, " state and scan inputs");
  a.m = size_t(m);
  a.n = numInputs - first - a.m;
  ctx.check(body.inputs.size() == a.n + a.m, "the body should have ", a.n + a.m,
            " inputs (", a.n, " states, ", a.m, " scan inputs), has ", body.inputs.size());
  ctx.check(body.outputs.size() >= a.n, "the body should have at least ", a.n,
            " outputs (the states), has ", body.outputs.size());
  a.k = body.outputs.size() - a.n;
  ctx.check(numOutputs <= a.n + a.k, "the node has ", numOutputs, " outputs but the body has ",
            a.n + a.k);
  auto list = [&](const char *name, size_t len) {
    std::vector<int64_t> v = ctx.attrInts(name, std::vector<int64_t>(len, 0));
    ctx.check(v.size() == len, "attribute '", name, "' has ", v.size(), " entries, expected ", len);
    return v;
  };
  bool v8 = ctx.opset() < 9;
  a.inDirs = list(v8 ? "directions" : "scan_input_directions", a.m);
  for (int64_t d : a.inDirs)
    ctx.check(d == 0 || d == 1, "scan direction ", d, " should be 0 (forward) or 1 (reverse)");
  if (v8) {
    a.inAxes.assign(a.m, 0);
    a.outAxes.assign(a.k, 0);
    a.outDirs.assign(a.k, 0);
    return a;
  }
  a.inAxes = list("scan_input_axes", a.m);
  a.outAxes = list("scan_output_axes", a.k);
  a.outDirs = list("scan_output_directions", a.k);
  for (int64_t d : a.outDirs)
    ctx.check(d == 0 || d == 1, "scan output direction ", d, " should be 0 (append) or 1 (prepend)");
  return a;
}

/// Runs the body `len` times over scan inputs (axes already normalized), updating `states` and
/// collecting the scan outputs' slices in iteration order.
void scanLoop(const KernelContext &ctx, const Graph &body, const ScanAttrs &a,
              std::vector<Object> &states, const std::vector<Tensor> &scanIns,
              const std::vector<int64_t> &axes, int64_t len, std::vector<ScanAccumulator> &outs) {
  ctx.check(len <= kMaxLoopIterations, "sequence length ", len, " is over the limit of ",
            kMaxLoopIterations, " iterations");
  std::vector<Object> in(a.n + a.m);
  for (int64_t t = 0; t < len; ++t) {
    for (size_t j = 0; j < a.n; ++j)
      in[j] = std::move(states[j]);
    for (size_t j = 0; j < a.m; ++j)
      in[a.n + j] = Object(sliceAt(scanIns[j], axes[j], a.inDirs[j] ? len - 1 - t : t));
    std::vector<Object> out = ctx.runSubgraph(body, in);
    ctx.check(out.size() == a.n + a.k, "the body produced ", out.size(), " outputs, expected ",
              a.n + a.k);
    for (size_t j = 0; j < a.n; ++j) {
      ctx.check(out[j].isTensor(), "state output ", j, " of the body should be a tensor");
      states[j] = std::move(out[j]);
    }
    for (size_t k = 0; k < a.k; ++k)
      outs[k].add(ctx, k, out[a.n + k]);
  }
}

void runScan9(KernelContext &ctx) {
  const Graph &body = ctx.attrGraph("body");
  ScanAttrs a = scanAttrs(ctx, body, ctx.numInputs(), 0, ctx.numOutputs());
  std::vector<Object> states(a.n);
  for (size_t j = 0; j < a.n; ++j)
    states[j] = Object(ctx.input(j));
  std::vector<Tensor> scanIns(a.m);
  std::vector<int64_t> axes(a.m);
  int64_t len = -1;
  for (size_t j = 0; j < a.m; ++j) {
    scanIns[j] = ctx.input(a.n + j);
    axes[j] = normalizeAxis(ctx, a.inAxes[j], scanIns[j].rank(), "scan input axis");
    int64_t l = scanIns[j].dim(axes[j]);
    ctx.check(len < 0 || l == len, "scan inputs have different sequence lengths (", len, " and ",
              l, ")");
    len = l;
  }
  std::vector<ScanAccumulator> outs(a.k);
  scanLoop(ctx, body, a, states, scanIns, axes, len, outs);
  for (size_t i = 0; i < ctx.numOutputs(); ++i) {
    if (i < a.n) {
      ctx.setOutputObject(i, std::move(states[i]));
      continue;
    }
    size_t k = i - a.n;
    auto &parts = outs[k].parts;
    if (parts.empty()) {
      ctx.setOutput(i, emptyStack(ctx, bodyOutputType(body, i), a.outAxes[k], "scan output axis"));
      continue;
    }
    if (a.outDirs[k])
      std::reverse(parts.begin(), parts.end());
    int64_t axis = normalizeAxis(ctx, a.outAxes[k], parts.front().rank() + 1, "scan output axis");
    ctx.setOutput(i, stackAt(parts, axis));
  }
}

/// Scan-8: every state and scan input has a leading batch axis; scan inputs are [batch, seq, ...];
/// the optional sequence_lens gives each batch entry's length (outputs past it are zero).
void runScan8(KernelContext &ctx) {
  const Graph &body = ctx.attrGraph("body");
  ScanAttrs a = scanAttrs(ctx, body, ctx.numInputs(), 1, ctx.numOutputs());
  int64_t batch = -1, maxLen = -1;
  auto checkBatch = [&](const Tensor &t, size_t idx, int64_t minRank) {
    ctx.check(t.rank() >= minRank, "input ", idx, " should have rank >= ", minRank,
              " (batch axis", minRank > 1 ? ", sequence axis" : "", "), got ", t.typeString());
    ctx.check(batch < 0 || t.dim(0) == batch, "input ", idx, " has batch size ", t.dim(0),
              ", expected ", batch);
    batch = t.dim(0);
  };
  std::vector<Tensor> states(a.n), scanIns(a.m);
  for (size_t j = 0; j < a.n; ++j) {
    states[j] = ctx.input(1 + j);
    checkBatch(states[j], 1 + j, 1);
  }
  for (size_t j = 0; j < a.m; ++j) {
    scanIns[j] = ctx.input(1 + a.n + j);
    checkBatch(scanIns[j], 1 + a.n + j, 2);
    ctx.check(maxLen < 0 || scanIns[j].dim(1) == maxLen,
              "scan inputs have different sequence lengths (", maxLen, " and ",
              scanIns[j].dim(1), ")");
    maxLen = scanIns[j].dim(1);
  }
  std::vector<int64_t> lens(size_t(batch), maxLen);
  if (ctx.hasInput(0)) {
    std::vector<int64_t> l = ctx.input(0).toInt64Vector();
    ctx.check(int64_t(l.size()) == batch, "sequence_lens has ", l.size(), " entries, expected ",
              batch, " (the batch size)");
    for (int64_t v : l)
      ctx.check(v >= 0 && v <= maxLen, "sequence length ", v, " is out of range [0, ", maxLen, "]");
    lens = l;
  }
  std::vector<std::vector<Tensor>> finalStates(a.n), scanOuts(a.k);
  std::vector<int64_t> axes(a.m, 0);
  for (int64_t b = 0; b < batch; ++b) {
    std::vector<Object> st(a.n);
    for (size_t j = 0; j < a.n; ++j)
      st[j] = Object(sliceAt(states[j], 0, b));
    std::vector<Tensor> ins(a.m);
    for (size_t j = 0; j < a.m; ++j)
      ins[j] = sliceAt(scanIns[j], 0, b);
    std::vector<ScanAccumulator> outs(a.k);
    scanLoop(ctx, body, a, st, ins, axes, lens[b], outs);
    for (size_t j = 0; j < a.n; ++j)
      finalStates[j].push_back(st[j].tensor);
    for (size_t k = 0; k < a.k; ++k) {
      auto &parts = outs[k].parts;
      if (parts.empty()) {
        scanOuts[k].push_back(Tensor()); // filled with zeros below, once a shape is known
        continue;
      }
      Tensor s = stackAt(parts, 0);
      if (lens[b] < maxLen) { // pad to [maxLen, ...] with zeros
        std::vector<int64_t> shp = s.shape();
        shp[0] = maxLen;
        Tensor padded(s.dtype(), shp);
        copyElems(padded, 0, s, 0, s.numel());
        s = padded;
      }
      scanOuts[k].push_back(s);
    }
  }
  for (size_t i = 0; i < ctx.numOutputs(); ++i) {
    if (i < a.n) {
      if (finalStates[i].empty())
        ctx.setOutput(i, ctx.input(1 + i));
      else
        ctx.setOutput(i, stackAt(finalStates[i], 0));
      continue;
    }
    size_t k = i - a.n;
    auto &per = scanOuts[k];
    Tensor proto;
    for (auto &t : per)
      if (t.defined())
        proto = t;
    if (!proto.defined()) {
      Tensor e = emptyStack(ctx, bodyOutputType(body, i), 0, "scan output axis");
      std::vector<int64_t> shp = e.shape();
      shp[0] = maxLen;
      shp.insert(shp.begin(), batch);
      ctx.setOutput(i, Tensor(e.dtype(), shp));
      continue;
    }
    for (auto &t : per)
      if (!t.defined())
        t = Tensor(proto.dtype(), proto.shape());
      else
        ctx.check(t.shape() == proto.shape(), "scan output ", k,
                  " has different shapes across the batch");
    ctx.setOutput(i, stackAt(per, 0));
  }
}

void inferScan(InferContext &ctx) {
  const Graph &body = ctx.attrGraph("body");
  bool v8 = ctx.opset() < 9;
  size_t first = v8 ? 1 : 0;
  ScanAttrs a = scanAttrs(ctx, body, ctx.numInputs(), first, ctx.numOutputs());
  // The sequence length (and for Scan-8 the batch size) from the scan inputs' shapes.
  Dim len, batch;
  for (size_t j = 0; j < a.m; ++j) {
    const Shape &s = tensorShape(ctx, first + a.n + j);
    if (!s.rankKnown)
      continue;
    int64_t ax = v8 ? 1 : normalizeAxis(ctx, a.inAxes[j], s.rank(), "scan input axis");
    if (ax >= s.rank())
      continue;
    if (len.isUnknown())
      len = s.dims[ax];
    if (v8 && batch.isUnknown())
      batch = s.dims[0];
  }
  for (size_t i = 0; i < ctx.numOutputs(); ++i) {
    Type bt = bodyOutputType(body, i);
    if (i < a.n) {
      Type t = v8 ? insertDim(ctx, bt, 0, batch) : bt;
      const Type &init = ctx.inputType(first + i);
      // An unknown body type still keeps the state's dtype (the body must keep it).
      if (t.kind == Type::Kind::Unknown && init.isTensor())
        t = Type::tensor(init.dtype, Shape::unknownRank());
      else
        t = mergeTypes(init, t);
      ctx.setOutputType(i, t);
      continue;
    }
    size_t k = i - a.n;
    if (!bt.isTensor()) {
      ctx.setOutputType(i, Type::unknown());
      continue;
    }
    Type t = insertDim(ctx, bt, v8 ? 0 : a.outAxes[k], len);
    if (v8)
      t = insertDim(ctx, t, 0, batch);
    ctx.setOutputType(i, t);
  }
}

//===----------------------------------------------------------------------===//
// SequenceMap
//===----------------------------------------------------------------------===//

void inferSequenceMap(InferContext &ctx) {
  const Graph &body = ctx.attrGraph("body");
  ctx.check(body.inputs.size() == ctx.numInputs(), "the body should have ", ctx.numInputs(),
            " inputs (one per node input), has ", body.inputs.size());
  ctx.check(body.outputs.size() >= ctx.numOutputs(), "the node has ", ctx.numOutputs(),
            " outputs but the body has ", body.outputs.size());
  for (size_t i = 0; i < ctx.numOutputs(); ++i) {
    Type bt = bodyOutputType(body, i);
    ctx.setOutputType(i, Type::sequence(bt.kind == Type::Kind::Unknown
                                            ? Type::tensor(DType::undefined, Shape::unknownRank())
                                            : bt));
  }
}

void runSequenceMap(KernelContext &ctx) {
  const Graph &body = ctx.attrGraph("body");
  ctx.check(body.inputs.size() == ctx.numInputs(), "the body should have ", ctx.numInputs(),
            " inputs (one per node input), has ", body.inputs.size());
  ctx.check(body.outputs.size() >= ctx.numOutputs(), "the node has ", ctx.numOutputs(),
            " outputs but the body has ", body.outputs.size());
  const Object &seq = ctx.inputObject(0);
  ctx.check(seq.isSequence(), "input 0 should be a sequence");
  size_t n = seq.sequence.size();
  for (size_t j = 1; j < ctx.numInputs(); ++j) {
    const Object &o = ctx.inputObject(j);
    ctx.check(!o.isNone(), "input ", j, " should be a tensor or a sequence, got an empty optional");
    ctx.check(!o.isSequence() || o.sequence.size() == n, "input ", j, " is a sequence of ",
              o.sequence.size(), " elements but input 0 has ", n);
  }
  ctx.check(int64_t(n) <= kMaxLoopIterations, "sequence of ", n, " elements is over the limit");
  std::vector<std::vector<Tensor>> outs(body.outputs.size());
  std::vector<Object> in(ctx.numInputs());
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < ctx.numInputs(); ++j) {
      const Object &o = ctx.inputObject(j);
      in[j] = o.isSequence() ? Object(o.sequence[i]) : o;
    }
    std::vector<Object> out = ctx.runSubgraph(body, in);
    ctx.check(out.size() == body.outputs.size(), "the body produced ", out.size(),
              " outputs, expected ", body.outputs.size());
    for (size_t k = 0; k < out.size(); ++k) {
      ctx.check(out[k].isTensor(), "output ", k, " of the body should be a tensor");
      outs[k].push_back(std::move(out[k].tensor));
    }
  }
  for (size_t i = 0; i < ctx.numOutputs(); ++i)
    ctx.setOutputObject(i, Object::seq(std::move(outs[i])));
}

} // namespace

void registerControlFlowOps(OpRegistry &r) {
  r.add(OpDef{"If", "", 1, 17, 1, 1, 1, 1 << 20, "any (tensors, sequences, optionals)",
              "branch outputs may differ in shape: inference keeps the dims they agree on",
              inferIf, runIf});
  r.add(OpDef{"Loop", "", 1, 17, 2, 1 << 20, 1, 1 << 20, "any (tensors, sequences, optionals)",
              "stops with an error after 2^24 iterations (trip count absent or huge and the "
              "condition never false); scan outputs must keep one shape across iterations",
              inferLoop, runLoop});
  r.add(OpDef{"Scan", "", 8, 17, 1, 1 << 20, 1, 1 << 20, "all",
              "opset 8 form (batch axis, sequence_lens; outputs past a length are zero) and "
              "opset 9+ form (axes, directions)",
              inferScan, [](KernelContext &ctx) {
                if (ctx.opset() < 9)
                  runScan8(ctx);
                else
                  runScan9(ctx);
              }});
  r.add(OpDef{"SequenceMap", "", 17, 17, 1, 1 << 20, 1, 1 << 20, "all",
              "additional inputs may be sequences (same length) or tensors", inferSequenceMap,
              runSequenceMap});
}

} // namespace tessel
