//===- Compile.cpp - whole-model compilation to a .tsl artifact -----------===//
//
// See include/tessel/Compiler/Compile.h and docs/compile.md. One kernel per fusion group; one
// object per kernel, linked into one shared library that leaves `tessel_parallel_for`
// undefined (the loading process links libtessel_runtime.so, which defines it).
//
//===----------------------------------------------------------------------===//
#include "tessel/Compiler/Compile.h"
#include "tessel/Compiler/Flops.h"
#include "tessel/Compiler/InterpreterFallback.h"

#include "PackWeights.h"
#include "Schedule.h"

#include "tessel/Artifact/Writer.h"
#include "tessel/CodeGen/AOT.h"
#include "tessel/CodeGen/EmitLLVM.h"
#include "tessel/CodeGen/Target.h"
#include "tessel/Graph/Fusion.h"
#include "tessel/Graph/Lowering.h"
#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Transforms.h"
#include "tessel/Loop/Pass.h"
#include "tessel/Support/Error.h"
#include "tessel/TE/Gemm.h"
#include "tessel/TE/Lower.h"

#include "tessel/Graph/PassUtils.h"

#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Module.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <optional>
#include <set>
#include <unistd.h>
#include <unordered_map>
#include <unordered_set>

namespace fs = std::filesystem;

namespace tessel {

namespace {

using Clock = std::chrono::steady_clock;
double seconds(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

/// A temporary folder removed when it goes out of scope.
struct TempDir {
  std::string path;
  TempDir() {
    std::string tmpl = (fs::temp_directory_path() / "tessel-compile-XXXXXX").string();
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    TESSEL_CHECK(mkdtemp(buf.data()) != nullptr, "tessel compile: cannot create a temporary folder ",
                 tmpl);
    path = buf.data();
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
};

std::string lower(std::string s) {
  for (char &c : s)
    c = char(std::tolower(uint8_t(c)));
  return s;
}

std::string sanitize(const std::string &s) {
  std::string r;
  for (char c : s)
    r += std::isalnum(uint8_t(c)) ? c : '_';
  if (r.empty() || std::isdigit(uint8_t(r[0])))
    r = "v_" + r;
  return r;
}

/// "k3_conv_add_relu_f32": the group's index, its ops in order (short), the output dtype.
std::string kernelName(size_t index, const FusionGroup &grp) {
  std::string name = "k" + std::to_string(index);
  size_t shown = 0;
  for (const Node *n : grp.nodes) {
    if (shown == 5) {
      name += "_etc";
      break;
    }
    name += "_" + lower(n->opType);
    ++shown;
  }
  const Node *last = grp.nodes.back();
  if (last->numOutputs() && last->output(0) && last->output(0)->type.isTensor())
    name += "_" + std::string(dtypeName(last->output(0)->type.dtype));
  return sanitize(name);
}

std::vector<int64_t> staticDims(const Value &v, const char *what) {
  TESSEL_CHECK(v.type.isTensor() && v.type.dtype != DType::undefined, what, " '", v.name(),
               "' has type ", v.type.str(), ": the compiler handles tensors of known dtype only");
  TESSEL_CHECK(v.type.shape.isStatic(), what, " '", v.name(), "' has shape ", v.type.shape.str(),
               ": a compiled model needs static shapes",
               v.producer() ? " (produced by " + v.producer()->describe() + ")" : std::string());
  return v.type.shape.staticDims();
}

int64_t byteSizeOf(const Value &v) {
  int64_t n = int64_t(dtypeSize(v.type.dtype));
  for (int64_t d : v.type.shape.staticDims())
    n *= d;
  return n;
}

/// The CPU features the runtime can check (runtime/Artifact.cpp hostHasCpuFeature) that the
/// target enables: the code may use them, so the loader requires them.
std::vector<std::string> requiredFeatures(const codegen::Target &t) {
  static const char *known[] = {"sse",      "sse2",      "sse3",       "ssse3",      "sse4.1",
                                "sse4.2",   "popcnt",    "avx",        "avx2",       "fma",
                                "bmi",      "bmi2",      "avx512f",    "avx512bw",   "avx512cd",
                                "avx512dq", "avx512vl",  "avx512vnni", "avx512ifma", "avx512vbmi",
                                "avx512vpopcntdq", "avx512bf16"};
  std::vector<std::string> r;
  for (const char *f : known)
    if (t.hasFeature(f))
      r.push_back(f);
  return r;
}

/// The artifact's name of each graph output whose value is named otherwise (see
/// computeEveryOutput); an output not in the map has its value's name.
using OutputNames = std::unordered_map<const Value *, std::string>;

/// Makes every graph output a distinct value that a kernel computes, so that each output of the
/// artifact is written by exactly one step (docs/artifact.md, "Graph outputs"):
///  - an output listed twice (the same value, so the same name) stays once: the runtime binds
///    outputs by name, and both entries would name the same tensor;
///  - an output that is a graph input is copied by an Identity node, which lowers to a copy
///    kernel; its value gets a fresh name, and `names` keeps the input's name for the artifact's
///    output (inputs and outputs are bound separately, so the names may coincide). Where
///    optimization removes the Identity, Dropout or same-shape Reshape between an input and an
///    output, the optimizer keeps a node that produces the output under its name
///    (Graph::restoreOutputNames); a graph input left as an output by any pass is copied here;
///  - an output that folding turned into a constant (Shape or Size of a static input, a
///    Constant node) is copied the same way: the constant keeps its bytes under another name,
///    and the Identity node produces the output under the output's name.
void computeEveryOutput(Graph &g, OutputNames &names) {
  std::vector<Value *> outputs;
  for (Value *o : g.outputs)
    if (std::find(outputs.begin(), outputs.end(), o) == outputs.end())
      outputs.push_back(o);
  g.outputs = outputs;
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    Value *o = g.outputs[i];
    if (o->producer())
      continue;
    std::string name = o->name();
    bool isInput = std::find(g.inputs.begin(), g.inputs.end(), o) != g.inputs.end();
    if (!isInput && !o->isConstant())
      continue; // not computable at all: the checks in prepareGraph name it
    if (isInput) {
      Node *copy = g.appendNode("Identity", {o}, {g.uniqueName(name + ".copy")},
                                g.uniqueName(name + ".copy"));
      g.outputs[i] = copy->output(0);
      names[g.outputs[i]] = name;
      continue;
    }
    g.renameValue(o, g.uniqueName(name + ".const"));
    g.outputs[i] = g.appendNode("Identity", {o}, {name}, g.uniqueName(name + ".copy"))->output(0);
  }
}

/// A value whose shape the data decides (docs/compile.md, "Outputs whose shape depends on the
/// data"): its type holds the static bound, dim `axis` varies, and its extent is the one the
/// kernel of `source` (an output of a DynamicKernel node) reports. Kernels keep such a value in
/// the bound's layout; the rows past the extent hold values computed from zeros.
struct DynamicAxis {
  int64_t axis = -1;
  const Value *source = nullptr;
};
struct DynamicValues {
  std::unordered_map<const Value *, DynamicAxis> axes;
  /// DynamicKernel nodes that run in the interpreter instead (--allow-interpreter-fallback,
  /// when a node after them cannot take a value of data-dependent shape).
  std::unordered_set<const Node *> fallback;
};

int64_t rankOf(const Value *v) {
  return v && v->type.isTensor() && v->type.shape.rankKnown ? v->type.shape.rank() : -1;
}

/// The axes a node lists (attribute before opset 13, constant input 1 after), normalized to
/// `rank`; false when they are not known at compile time.
bool listedAxes(const Node &n, int64_t rank, std::vector<int64_t> &axes) {
  std::vector<int64_t> a;
  if (const Attribute *at = n.attr("axes"))
    a = at->ints;
  else if (n.numInputs() > 1 && n.input(1) && n.input(1)->isConstant())
    a = n.input(1)->constant.toInt64Vector();
  else
    return false;
  for (int64_t &x : a)
    x = x < 0 ? x + rank : x;
  axes = a;
  return true;
}

/// Where the varying axis of a node's dynamic inputs lands in its output, for the nodes that
/// compute each output row from the matching input rows (so rows past the extent stay apart):
/// elementwise and broadcast ops, Transpose, Gather, GatherND with the value as index tuples,
/// Concat of such values along another axis, Unsqueeze, Squeeze and Slice off the axis, MatMul
/// and Gemm over the rows of A. -1 with `why` for any other node.
int64_t propagatedAxis(const Node &n, const std::unordered_map<const Value *, DynamicAxis> &axes,
                       const Value *&source, std::string &why) {
  std::vector<size_t> dyn;
  for (size_t i = 0; i < n.numInputs(); ++i)
    if (n.input(i) && axes.count(n.input(i)))
      dyn.push_back(i);
  source = axes.at(n.input(dyn[0])).source;
  for (size_t i : dyn)
    if (axes.at(n.input(i)).source != source) {
      why = "it reads values whose extents two different kernels decide";
      return -1;
    }
  if (hasDynamicKernel(n) || n.numOutputs() != 1 || !n.output(0)) {
    why = "it does not take a value of data-dependent shape";
    return -1;
  }
  const int64_t R = rankOf(n.output(0));
  auto in = [&](size_t i) { return axes.at(n.input(i)).axis; };
  const std::string &op = n.opType;
  const OpDef *def = OpRegistry::get().lookup(n.domain, n.opType,
                                              n.graph() ? n.graph()->opsetVersion(n.domain) : 17);
  if (R < 0) {
    why = "its output's rank is not known";
    return -1;
  }
  if (def && (def->pattern == OpPattern::ElemWise || def->pattern == OpPattern::Broadcast)) {
    int64_t out = -1;
    for (size_t i : dyn) {
      int64_t a = in(i) + (R - rankOf(n.input(i)));
      if (out >= 0 && a != out) {
        why = "its inputs vary along different axes";
        return -1;
      }
      out = a;
    }
    for (size_t i = 0; i < n.numInputs(); ++i) {
      const Value *v = n.input(i);
      if (!v || axes.count(v))
        continue;
      int64_t pos = out - (R - rankOf(v));
      if (pos >= 0 && !(v->type.shape.dims[size_t(pos)].isStatic() &&
                        v->type.shape.dims[size_t(pos)].value == 1)) {
        why = "its input '" + v->name() + "' spans the varying axis (its rows would pair with "
              "rows past the extent)";
        return -1;
      }
    }
    if ((op == "Div" || op == "Mod") && axes.count(n.input(1)) &&
        !isFloat(n.input(1)->type.dtype)) {
      why = "an integer division by a value of data-dependent shape would divide by the zeros "
            "past its extent";
      return -1;
    }
    return out;
  }
  if (op == "Transpose") {
    std::vector<int64_t> perm;
    if (const Attribute *a = n.attr("perm"))
      perm = a->ints;
    else
      for (int64_t k = R - 1; k >= 0; --k)
        perm.push_back(k);
    for (size_t p = 0; p < perm.size(); ++p)
      if (perm[p] == in(0))
        return int64_t(p);
  }
  if (op == "Gather" && dyn.size() == 1) {
    const int64_t r = rankOf(n.input(0)), q = rankOf(n.input(1));
    int64_t ax = n.attr("axis") ? n.attr("axis")->i : 0;
    ax = ax < 0 ? ax + r : ax;
    if (dyn[0] == 1) {
      // Indices past the extent are zeros (or values computed from them), which the Gather
      // kernel clamps into range.
      return ax + in(1);
    }
    if (in(0) != ax)
      return in(0) < ax ? in(0) : in(0) + q - 1;
  }
  if (op == "Concat" && dyn.size() == size_t(std::count_if(n.inputs().begin(), n.inputs().end(),
                                                           [](const Value *v) { return v; }))) {
    // Every input varies along the same axis with the same extent: rows stay rows.
    int64_t ax = n.attr("axis") ? n.attr("axis")->i : 0;
    ax = ax < 0 ? ax + R : ax;
    bool same = std::all_of(dyn.begin(), dyn.end(), [&](size_t i) { return in(i) == in(dyn[0]); });
    if (same && in(dyn[0]) != ax)
      return in(dyn[0]);
  }
  if (op == "GatherND" && dyn == std::vector<size_t>{1}) {
    // Each index tuple (a row of the indices but their last axis) gathers its own slice; the
    // tuples past the extent are zeros, which the kernel clamps.
    const int64_t q = rankOf(n.input(1));
    const int64_t b = n.attr("batch_dims") ? n.attr("batch_dims")->i : 0;
    if (in(1) >= b && in(1) < q - 1)
      return in(1);
  }
  if ((op == "Unsqueeze" || op == "Squeeze") && dyn == std::vector<size_t>{0}) {
    std::vector<int64_t> listed;
    const bool unsq = op == "Unsqueeze";
    if (listedAxes(n, unsq ? R : rankOf(n.input(0)), listed)) {
      int64_t a = in(0);
      if (unsq) {
        std::sort(listed.begin(), listed.end());
        for (int64_t x : listed) // inserted dims at or before the axis shift it
          if (x <= a)
            ++a;
        return a;
      }
      if (std::find(listed.begin(), listed.end(), a) == listed.end())
        return a - int64_t(std::count_if(listed.begin(), listed.end(),
                                         [&](int64_t x) { return x < a; }));
    }
  }
  if (op == "Slice" && dyn == std::vector<size_t>{0}) {
    std::vector<int64_t> listed;
    const int64_t r = rankOf(n.input(0));
    bool known = n.numInputs() < 4 || !n.input(3) ||
                 (n.input(3)->isConstant() && (listed = n.input(3)->constant.toInt64Vector(), true));
    if (n.numInputs() < 4 || !n.input(3))
      for (int64_t k = 0; k < r; ++k)
        listed.push_back(k);
    for (int64_t &x : listed)
      x = x < 0 ? x + r : x;
    if (known && std::find(listed.begin(), listed.end(), in(0)) == listed.end())
      return in(0);
  }
  if ((op == "MatMul" || op == "Gemm") && dyn == std::vector<size_t>{0}) {
    const int64_t r = rankOf(n.input(0));
    const bool transA = op == "Gemm" && n.attr("transA") && n.attr("transA")->i;
    if (r >= 2 && !transA && in(0) < r - 1)
      return in(0) + (R - r);
  }
  why = "op " + op + " does not take a value of data-dependent shape along that axis";
  return -1;
}

/// Decides which values have a shape the data decides and how it flows: from each DynamicKernel
/// output through the nodes propagatedAxis accepts. A node it rejects is an error naming both
/// nodes, or with `allowFallback` makes the DynamicKernel node run in the interpreter (which
/// needs its output shapes declared in the model). Then gives those values their static bound as
/// their type (the DynamicKernel's bounds, inferred again downstream) and returns them.
DynamicValues planDynamicValues(Graph &g, bool allowFallback) {
  DynamicValues dv;
  for (;;) {
    // A dry run over the current types (ranks are known where dims are not).
    std::unordered_map<const Value *, DynamicAxis> axes;
    const Node *failed = nullptr;
    std::string error;
    for (const auto &n : g.nodes()) {
      if (hasDynamicKernel(*n) && !dv.fallback.count(n.get())) {
        std::vector<DynamicOutputBound> bounds = dynamicOutputBounds(*n);
        for (size_t i = 0; i < n->numOutputs(); ++i)
          if (const Value *o = n->output(i); o && bounds[i].axis >= 0) {
            TESSEL_CHECK(rankOf(o) < 0 || rankOf(o) == int64_t(bounds[i].shape.size()),
                         n->describe(), ": output '", o->name(), "' has type ", o->type.str(),
                         " but its kernel's bound is ", shapeToString(bounds[i].shape));
            axes[o] = {bounds[i].axis, o};
          }
      }
      bool reads = std::any_of(n->inputs().begin(), n->inputs().end(),
                               [&](const Value *v) { return v && axes.count(v); });
      if (!reads)
        continue;
      const Value *source = nullptr;
      std::string why;
      int64_t a = propagatedAxis(*n, axes, source, why);
      if (a < 0) {
        failed = source->producer();
        error = concat(failed->describe(), ": output '", source->name(), "' has a shape that "
                       "depends on the data (", source->type.shape.str(), ") and node '", n->name,
                       "' (", n->opType, ") reads it, but ", why, ": a compiled model "
                       "takes such a value through elementwise ops, Transpose, Gather, GatherND "
                       "indices, Concat of such values, Unsqueeze/Squeeze, Slice off the axis "
                       "and MatMul/Gemm rows "
                       "(docs/compile.md); with --allow-interpreter-fallback the node runs in "
                       "the interpreter when the model declares the output's shape");
        break;
      }
      axes[n->output(0)] = {a, source};
    }
    if (!failed) {
      dv.axes = std::move(axes);
      break;
    }
    if (!allowFallback)
      fail(error);
    dv.fallback.insert(failed);
  }
  // The bounds, and the types after them.
  for (const auto &n : g.nodes()) {
    if (hasDynamicKernel(*n) && !dv.fallback.count(n.get())) {
      std::vector<DynamicOutputBound> bounds = dynamicOutputBounds(*n);
      for (size_t i = 0; i < n->numOutputs(); ++i)
        if (Value *o = n->output(i))
          o->type.shape = Shape(std::vector<Dim>(bounds[i].shape.begin(), bounds[i].shape.end()));
      continue;
    }
    if (n->outputs().size() == 1 && n->output(0) && dv.axes.count(n->output(0))) {
      int64_t rank = rankOf(n->output(0));
      passutils::setInferredTypes(*n);
      TESSEL_CHECK(rankOf(n->output(0)) == rank && n->output(0)->type.shape.isStatic(),
                   n->describe(), ": output '", n->output(0)->name(), "' has type ",
                   n->output(0)->type.str(), " over the bound of its input's data-dependent "
                   "shape; expected a static shape of rank ", rank);
    }
  }
  return dv;
}

/// The structure of the sequence and optional values at the model's inputs and outputs, in
/// the order the artifact's `structured_values` lists them: name -> "seq:N", "opt:none",
/// "opt:tensor" or "opt:seq:N" (docs/artifact.md, "Graph outputs").
using StructuredValues = std::vector<std::pair<std::string, std::string>>;

/// The graph's non-constant input named `name` (Error listing the inputs when there is none).
Value *findInput(Graph &g, const std::string &name, const char *option = "--input-shape") {
  for (Value *in : g.inputs)
    if (in->name() == name && !in->isConstant())
      return in;
  std::string names;
  for (Value *in : g.inputs)
    if (!in->isConstant())
      names += (names.empty() ? "" : ", ") + in->name();
  fail(option, " ", name, ": the model has no input '", name, "'; its inputs are: ", names);
}

/// Makes `with` stand for `old` (uses, graph outputs, subgraph captures) and takes its name.
void replaceValue(Graph &g, Value *old, Value *with) {
  const std::string name = old->name();
  passutils::redirectCaptures(g, old, with);
  old->replaceAllUsesWith(with);
  g.renameValue(old, g.uniqueName(name + ".replaced"));
  g.renameValue(with, name);
}

/// A tensor type of static `dims` that the model's (element) type `t` admits (Error naming the
/// input otherwise).
Type specializedTensor(const Type &t, const std::vector<int64_t> &dims, const std::string &what) {
  TESSEL_CHECK(t.isTensor() && t.dtype != DType::undefined, "--input-shape ", what, ": the model "
               "gives type ", t.str(), ", not a tensor of known dtype");
  if (t.shape.rankKnown) {
    TESSEL_CHECK(t.shape.rank() == int64_t(dims.size()), "--input-shape ", what, ": ",
                 dims.size(), " dims given, but the model's type ", t.str(), " has rank ",
                 t.shape.rank());
    for (size_t i = 0; i < dims.size(); ++i) {
      const Dim &d = t.shape.dims[i];
      TESSEL_CHECK(!d.isStatic() || d.value == dims[i], "--input-shape ", what, ": dim ", i,
                   " is ", d.value, " in the model, not ", dims[i]);
    }
  }
  return Type::tensor(t.dtype, Shape(std::vector<Dim>(dims.begin(), dims.end())));
}

/// Compile-time specialization of the sequence and optional inputs (docs/compile.md, "Sequence
/// and optional inputs and outputs"): a sequence input `x` of n elements becomes the tensor
/// inputs `x[0]`..`x[n-1]` feeding a SequenceConstruct (SequenceEmpty for none) that stands for
/// x; a present optional becomes the tensor input `x` (its shape fixed by opts.inputShapes or
/// its structure) wrapped by an Optional node, or, holding a sequence, the sequence's inputs; an
/// absent one an Optional node with no input. Records each in `structured`.
void specializeStructuredInputs(Graph &g, const CompileOptions &opts,
                                StructuredValues &structured) {
  for (auto &[name, st] : opts.inputStructures) {
    Value *v = findInput(g, name);
    TESSEL_CHECK(!v->type.isTensor(), "--input-shape ", name, ": input '", name, "' has type ",
                 v->type.str(), ", a tensor: expected a shape (", name, "=D0xD1x...), not a "
                 "sequence or optional spec");
    TESSEL_CHECK(!st.optional || v->type.kind == Type::Kind::Optional, "--input-shape ", name,
                 ": input '", name, "' has type ", v->type.str(), ", not an optional: drop opt(...)");
  }
  std::vector<Value *> inputs;
  for (Value *v : g.inputs) {
    if (v->isConstant() || v->type.isTensor()) {
      inputs.push_back(v);
      continue;
    }
    const std::string name = v->name();
    const bool isOptional = v->type.kind == Type::Kind::Optional;
    const Type inner = isOptional && v->type.elem ? *v->type.elem : v->type;
    InputStructure st;
    if (auto it = opts.inputStructures.find(name); it != opts.inputStructures.end()) {
      st = it->second;
    } else if (auto sh = opts.inputShapes.find(name);
               sh != opts.inputShapes.end() && isOptional && inner.isTensor()) {
      st.dims = sh->second; // a present optional tensor given by its shape
    } else {
      const char *hint = v->type.kind == Type::Kind::Sequence ? "=seq(D0xD1,...)"
                         : inner.kind == Type::Kind::Sequence ? "=opt(seq(D0xD1,...)) or =none"
                                                              : "=D0xD1x... or =none";
      fail("input '", name, "' has type ", v->type.str(), ": a compiled model fixes the structure "
           "of a sequence or optional input at compile time; give it with --input-shape ", name,
           hint, opts.inputShapes.count(name) ? " (a plain shape fits tensors and optional tensors)"
                                              : "");
    }
    if (st.kind == InputStructure::Kind::Absent) {
      TESSEL_CHECK(isOptional, "--input-shape ", name, "=none: input '", name, "' has type ",
                   v->type.str(), ", not an optional (only an optional may be absent)");
      TESSEL_CHECK(v->type.elem, "input '", name, "': an optional of unknown element type");
      Attribute t;
      t.kind = Attribute::Kind::TypeAttr;
      t.type = *v->type.elem;
      Node *n = g.appendNode("Optional", {}, {g.uniqueName(name + ".none")},
                             g.uniqueName(name + ".none"));
      n->attrs["type"] = t;
      n->output(0)->type = v->type;
      replaceValue(g, v, n->output(0));
      structured.push_back({name, "opt:none"});
      continue;
    }
    Value *value = nullptr;
    if (st.kind == InputStructure::Kind::Sequence) {
      TESSEL_CHECK(inner.kind == Type::Kind::Sequence && inner.elem, "--input-shape ", name,
                   ": input '", name, "' has type ", v->type.str(), ", not a sequence: expected ",
                   isOptional ? name + "=opt(D0xD1x...) or " + name + "=none"
                              : name + "=D0xD1x...");
      std::vector<Value *> elems;
      for (size_t i = 0; i < st.elements.size(); ++i) {
        const std::string en = name + "[" + std::to_string(i) + "]";
        TESSEL_CHECK(!g.findValue(en), "input '", name, "': its element input '", en,
                     "' would clash with a value of that name in the model");
        Value *e = g.createValue(en, specializedTensor(*inner.elem, st.elements[i], en));
        inputs.push_back(e);
        elems.push_back(e);
      }
      Node *n = elems.empty()
                    ? g.appendNode("SequenceEmpty", {}, {g.uniqueName(name + ".seq")},
                                   g.uniqueName(name + ".seq"))
                    : g.appendNode("SequenceConstruct", elems, {g.uniqueName(name + ".seq")},
                                   g.uniqueName(name + ".seq"));
      if (elems.empty()) {
        TESSEL_CHECK(inner.elem->dtype != DType::undefined, "input '", name,
                     "': an empty sequence of unknown element dtype");
        n->attrs["dtype"] = Attribute::ofInt(dtypeToOnnx(inner.elem->dtype));
      }
      passutils::setInferredTypes(*n);
      value = n->output(0);
      structured.push_back(
          {name, std::string(isOptional ? "opt:" : "") + "seq:" + std::to_string(elems.size())});
    } else {
      TESSEL_CHECK(isOptional && inner.isTensor(), "--input-shape ", name, ": input '", name,
                   "' has type ", v->type.str(), ": expected ",
                   v->type.kind == Type::Kind::Sequence ? name + "=seq(D0xD1,...)"
                                                        : name + "=opt(seq(D0xD1,...)) or " + name +
                                                              "=none");
      g.renameValue(v, g.uniqueName(name + ".optional"));
      value = g.createValue(name, specializedTensor(inner, st.dims, name));
      inputs.push_back(value);
      structured.push_back({name, "opt:tensor"});
    }
    if (isOptional) {
      Node *n = g.appendNode("Optional", {value}, {g.uniqueName(name + ".opt")},
                             g.uniqueName(name + ".opt"));
      passutils::setInferredTypes(*n);
      value = n->output(0);
    }
    replaceValue(g, v, value);
  }
  g.inputs = inputs;
  g.sortTopologically();
}

/// True when a node of g (not its subgraphs) produces a sequence or optional.
bool holdsStructuredValues(const Graph &g) {
  for (const auto &n : g.nodes())
    for (const Value *o : n->outputs())
      if (o && (o->type.kind == Type::Kind::Sequence || o->type.kind == Type::Kind::Optional))
        return true;
  return false;
}

/// Folds the sequences and optionals away (inline-control-flow, fold-static-sequences and
/// fold-constants, in turn until none changes the graph: a Loop's trip count may be a
/// SequenceLength that only folding makes constant, unrolling it makes sequence ops for
/// folding, and an If's condition may follow from an optional's presence), then makes the
/// sequence and optional graph outputs tensor outputs (docs/compile.md): a sequence output `y`
/// of n elements becomes the outputs `y[0]`..`y[n-1]`, a present optional keeps its name (`y`,
/// or `y[i]` for an optional sequence), an absent optional is no output. Records each in
/// `structured`; a sequence or optional output that did not fold is an Error naming it and its
/// producer.
void flattenStructuredOutputs(Graph &g, StructuredValues &structured) {
  PassStats stats;
  for (int round = 0; round < 16 && holdsStructuredValues(g); ++round) {
    bool inlined = inlineControlFlow(g, stats);
    bool folded = foldStaticSequences(g, stats);
    // An If's condition computed from a folded OptionalHasElement (Not, And, ...) is a constant
    // only once folded: the taken branch decides the structure.
    bool constants = foldConstants(g, stats);
    if (!inlined && !folded && !constants)
      break;
  }
  inferShapes(g);
  auto unfolded = [&](const Value *o, const char *what) {
    fail("output '", o->name(), "' is ", what, " (", o->type.str(), ") whose structure is not "
         "known at compile time: ",
         o->producer() ? "produced by " + o->producer()->describe() : std::string("no node"),
         ", which fold-static-sequences and inline-control-flow could not fold (a compiled "
         "model returns tensors; docs/compile.md, \"Sequence and optional inputs and outputs\")");
  };
  std::vector<Value *> outputs;
  bool changed = false;
  // The tensor `v` as the output named `name`: an Identity that the optimizer may remove again
  // (it keeps the output's name).
  auto emitOutput = [&](Value *v, const std::string &name) {
    if (v->name() == name) { // an input returned as it is: computeEveryOutput copies it
      outputs.push_back(v);
      return;
    }
    if (Value *holder = g.findValue(name)) {
      TESSEL_CHECK(std::find(g.inputs.begin(), g.inputs.end(), holder) == g.inputs.end(),
                   "output '", name, "': the name of a sequence or optional output's element is "
                   "taken by an input of the model");
      g.renameValue(holder, g.uniqueName(name + ".structured"));
    }
    outputs.push_back(
        g.appendNode("Identity", {v}, {name}, g.uniqueName(name + ".output"))->output(0));
  };
  // The elements of sequence `seq` as the outputs `name[0]`..; returns how many.
  auto emitSequence = [&](const Value *seq, const std::string &name) {
    const Node *p = seq->producer();
    if (!p || !p->domain.empty() ||
        (p->opType != "SequenceConstruct" && p->opType != "SequenceEmpty"))
      unfolded(seq, "a sequence");
    std::vector<Value *> elems;
    for (Value *e : p->inputs())
      if (e)
        elems.push_back(e);
    for (size_t i = 0; i < elems.size(); ++i)
      emitOutput(elems[i], name + "[" + std::to_string(i) + "]");
    return std::to_string(elems.size());
  };
  const std::vector<Value *> old = g.outputs;
  for (Value *o : old) {
    const std::string name = o->name();
    if (o->type.kind == Type::Kind::Sequence) {
      structured.push_back({name, "seq:" + emitSequence(o, name)});
      changed = true;
      continue;
    }
    if (o->type.kind != Type::Kind::Optional) {
      outputs.push_back(o);
      continue;
    }
    changed = true;
    const Node *p = o->producer();
    if (!p || !p->domain.empty() || p->opType != "Optional")
      unfolded(o, "an optional");
    Value *elem = p->numInputs() ? p->input(0) : nullptr;
    if (!elem) {
      structured.push_back({name, "opt:none"});
      continue;
    }
    if (elem->type.kind == Type::Kind::Sequence) {
      structured.push_back({name, "opt:seq:" + emitSequence(elem, name)});
      continue;
    }
    emitOutput(elem, name);
    structured.push_back({name, "opt:tensor"});
  }
  if (!changed)
    return;
  g.outputs = outputs;
  // The sequence and optional nodes that only the outputs read go (no lowering: also at -O0).
  foldStaticSequences(g, stats);
  inferShapes(g);
}

/// --input-value: each named input's readers read a constant of its value instead (the input
/// stays a graph input, unread, for the artifact to list and the runtime to check).
void fixInputValues(Graph &g, const CompileOptions &opts) {
  for (const auto &[name, value] : opts.inputValues) {
    Value *v = findInput(g, name, "--input-value");
    TESSEL_CHECK(v->type.isTensor() && v->type.dtype == value.dtype(), "--input-value ", name,
                 ": input '", name, "' has type ", v->type.str(), ", the value is ",
                 value.typeString());
    const Shape &s = v->type.shape;
    bool fits = !s.rankKnown || s.rank() == int64_t(value.rank());
    for (size_t i = 0; fits && s.rankKnown && i < size_t(value.rank()); ++i)
      fits = !s.dims[i].isStatic() || s.dims[i].value == value.dim(int64_t(i));
    TESSEL_CHECK(fits, "--input-value ", name, ": input '", name, "' has type ", v->type.str(),
                 ", the value is ", value.typeString());
    v->type.shape = Shape::of(value.shape());
    Value *c = passutils::addConstant(g, name + ".value", value);
    passutils::redirectCaptures(g, v, c);
    v->replaceAllUsesWith(c);
  }
}

/// Applies the input-shape overrides, optimizes, infers shapes and checks that every value the
/// kernels touch is a static tensor and every node has a lowering. Returns the artifact's names
/// of outputs whose values are named otherwise (computeEveryOutput).
OutputNames prepareGraph(Graph &g, const CompileOptions &opts, StructuredValues &structured,
                         DynamicValues &dynamic) {
  specializeStructuredInputs(g, opts, structured);
  for (auto &[name, dims] : opts.inputShapes) {
    Value *v = findInput(g, name);
    TESSEL_CHECK(v->type.isTensor(), "--input-shape ", name, ": input '", name, "' has type ",
                 v->type.str(), ", not a tensor");
    if (v->type.shape.rankKnown)
      TESSEL_CHECK(v->type.shape.rank() == int64_t(dims.size()), "--input-shape ", name, ": ",
                   dims.size(), " dims given, but input '", name, "' has rank ",
                   v->type.shape.rank(), " (", v->type.shape.str(), ")");
    for (size_t i = 0; v->type.shape.rankKnown && i < dims.size(); ++i) {
      const Dim &d = v->type.shape.dims[i];
      TESSEL_CHECK(!d.isStatic() || d.value == dims[i], "--input-shape ", name, ": dim ", i,
                   " is ", d.value, " in the model, not ", dims[i]);
    }
    std::vector<Dim> nd(dims.begin(), dims.end());
    v->type.shape = Shape(nd);
  }
  fixInputValues(g, opts);
  for (Value *in : g.inputs) {
    if (in->isConstant())
      continue;
    TESSEL_CHECK(in->type.isTensor() && in->type.shape.isStatic(), "input '", in->name(),
                 "' has type ", in->type.str(),
                 ": a compiled model needs static input shapes; fix them with --input-shape ",
                 in->name(), "=D0xD1x...");
  }
  // If/Loop/Scan, sequences and Dropout in training mode have no lowering: inline/unroll them
  // into plain ops (docs/compile.md, "Control flow") at every -O level, before the optimizer so
  // that it and FuseOps see the copies.
  runPasses(g, {"inline-control-flow", "fold-static-sequences", "expand-training-dropout"});
  flattenStructuredOutputs(g, structured);
  if (opts.optLevel > 0) {
    optimizeGraph(g, opts.optLevel);
    // A trip count computed from shapes (Shape -> Gather) is a constant only once fold-shapes
    // ran: a Loop left alone the first time may be inlined now.
    bool controlFlow = std::any_of(g.nodes().begin(), g.nodes().end(), [](const auto &n) {
      return n->domain.empty() && (n->opType == "If" || n->opType == "Loop" || n->opType == "Scan");
    });
    if (controlFlow) {
      runPasses(g, {"inline-control-flow"});
      optimizeGraph(g, opts.optLevel);
    }
  }
  // Convolutions in the blocked NCHW[x]c layout with packed weights (docs/compile.md,
  // "Convolution"): after optimizeGraph, whose BatchNorm folding and Pad folding it relies on.
  codegen::Target layoutTarget = codegen::Target::byName(opts.target);
  if (opts.optLevel >= 2 && opts.vectorize &&
      (layoutTarget.hasFeature("avx512f") || layoutTarget.hasFeature("avx2")))
    runPasses(g, {"transform-layout"});
  OutputNames outputNames;
  computeEveryOutput(g, outputNames);
  inferShapes(g);
  dynamic = planDynamicValues(g, opts.allowInterpreterFallback);
  for (const auto &n : g.nodes()) {
    // Strings: neither kernels nor the runtime (its C API has no string type) hold them, so
    // the interpreter fallback cannot take such a node either.
    auto holdsStrings = [](const Value *v) {
      return v && v->type.isTensor() && v->type.dtype == DType::string;
    };
    for (const std::vector<Value *> *vs : {&n->inputs(), &n->outputs()})
      for (const Value *v : *vs)
        TESSEL_CHECK(!holdsStrings(v), n->describe(), ": value '", v->name(), "' holds strings; "
                     "compiled models hold numeric and bool tensors only (the runtime has no "
                     "string type, so --allow-interpreter-fallback cannot take the node either): "
                     "run this model in the interpreter (tessel run MODEL.onnx)");
    if (hasDynamicKernel(*n) && !dynamic.fallback.count(n.get()))
      continue; // its outputs hold their bounds (planDynamicValues)
    TESSEL_CHECK(hasLowering(*n) || opts.allowInterpreterFallback, n->describe(), ": op ",
                 n->domain.empty() ? "" : n->domain + ".", n->opType,
                 " has no lowering to tensor expressions, so the model cannot be compiled "
                 "(docs/lowering.md lists the ops that have one; --allow-interpreter-fallback "
                 "runs such nodes in the reference interpreter)");
    for (const Value *o : n->outputs())
      if (o)
        staticDims(*o, "value");
  }
  std::set<const Value *> seen;
  for (const Value *o : g.outputs) {
    staticDims(*o, "output");
    TESSEL_CHECK(o->producer() != nullptr, "output '", o->name(),
                 "' is computed by no node (expected a graph input, a constant or a node's "
                 "output)");
    TESSEL_CHECK(seen.insert(o).second, "output '", o->name(), "' is listed twice among the "
                 "graph outputs after computeEveryOutput (expected each output once)");
  }
  return outputNames;
}

/// A value that crosses kernels: its byte range in the arena.
struct Slice {
  const Value *value;
  int64_t bytes, first, last; // lifetime in kernel indices, inclusive
  int64_t offset = 0;
};

/// Greedy by size, best fit (the algorithm of planMemory, Graph/MemoryPlan.h), over the values
/// that cross kernels with kernel-level lifetimes. Returns the arena size.
int64_t planSlices(std::vector<Slice> &slices) {
  constexpr int64_t align = 64;
  auto rounded = [](int64_t b) { return (std::max<int64_t>(b, 1) + align - 1) / align * align; };
  std::vector<size_t> order(slices.size());
  for (size_t i = 0; i < order.size(); ++i)
    order[i] = i;
  std::stable_sort(order.begin(), order.end(),
                   [&](size_t a, size_t b) { return slices[a].bytes > slices[b].bytes; });
  std::vector<size_t> placed;
  int64_t arena = 0;
  for (size_t i : order) {
    Slice &s = slices[i];
    std::vector<std::pair<int64_t, int64_t>> busy; // [begin, end) of overlapping placed slices
    for (size_t j : placed) {
      const Slice &o = slices[j];
      if (o.first <= s.last && s.first <= o.last)
        busy.push_back({o.offset, o.offset + rounded(o.bytes)});
    }
    std::sort(busy.begin(), busy.end());
    int64_t need = rounded(s.bytes), best = -1, bestGap = INT64_MAX, cursor = 0;
    for (auto &[b, e] : busy) {
      if (b - cursor >= need && b - cursor < bestGap) {
        best = cursor;
        bestGap = b - cursor;
      }
      cursor = std::max(cursor, e);
    }
    s.offset = best >= 0 ? best : cursor;
    arena = std::max(arena, s.offset + need);
    placed.push_back(i);
  }
  return arena;
}

/// With --allow-interpreter-fallback: the nodes that run in the interpreter. Those whose op has
/// no lowering, and those whose lowering rejects this node (a Slice whose starts are computed,
/// say: the lowering needs constants), tried one node at a time.
std::unordered_set<const Node *> fallbackNodes(const Graph &g, const DynamicValues &dynamic) {
  std::unordered_set<const Node *> out;
  for (const auto &n : g.nodes()) {
    if (hasDynamicKernel(*n)) {
      if (dynamic.fallback.count(n.get()))
        out.insert(n.get());
      continue;
    }
    if (!hasLowering(*n)) {
      out.insert(n.get());
      continue;
    }
    try {
      lowerNode(*n);
    } catch (const Error &) {
      out.insert(n.get());
    }
  }
  return out;
}

/// One kernel's TE: the placeholders it reads (group inputs) and the tensors it writes.
struct KernelTE {
  const Node *fallback = nullptr; // a node run by the interpreter fallback, not a kernel
  /// Outputs of a DynamicKernel whose extent the kernel reports: each gets an 8-byte arena slot,
  /// passed after the outputs (DynamicKernelContext::params).
  std::vector<const Value *> extentValues;
  std::vector<const Value *> paramValues; // used group inputs, in order of first use
  std::vector<te::Tensor> params;
  std::vector<const Value *> outputValues;
  std::vector<te::Tensor> outputs;
  std::vector<LoweredNode> keep; // holds every intermediate compute
  std::vector<te::Tensor> extra; // copies made for outputs that are not computes of their own
};

KernelTE lowerGroup(const FusionGroup &grp, const std::string &symbol) {
  KernelTE k;
  std::unordered_map<const Value *, te::Tensor> env;
  std::unordered_map<const Value *, size_t> placeholderIndex; // into `created`
  std::vector<std::pair<const Value *, te::Tensor>> created;
  std::vector<bool> used;
  auto get = [&](const Value *v) -> te::Tensor {
    if (!v)
      return {};
    auto it = env.find(v);
    if (it != env.end())
      return it->second;
    std::vector<int64_t> dims = staticDims(*v, "value");
    te::Tensor p = te::placeholder(lowering::shapeExprs(dims), v->type.dtype, sanitize(v->name()));
    env[v] = p;
    placeholderIndex[v] = created.size();
    created.push_back({v, p});
    used.push_back(false);
    return p;
  };
  for (const Node *n : grp.nodes) {
    std::vector<te::Tensor> ins;
    for (const Value *v : n->inputs()) {
      TESSEL_CHECK(!v || lowering::isLowerableDType(v->type.dtype), n->describe(), ": input '",
                   v ? v->name() : "", "' has dtype ", dtypeName(v ? v->type.dtype : DType::undefined),
                   ", which compiled code does not hold (expected f32, f64, f16, bf16, an "
                   "integer or bool)");
      ins.push_back(get(v));
    }
    LoweredNode ln = lowerNode(*n, ins);
    for (size_t i = 0; i < n->numInputs(); ++i) {
      const Value *v = n->input(i);
      if (!v || i >= ln.inputUsed.size() || !ln.inputUsed[i])
        continue;
      auto it = placeholderIndex.find(v);
      if (it != placeholderIndex.end())
        used[it->second] = true;
    }
    for (size_t i = 0; i < n->numOutputs(); ++i)
      if (n->output(i) && i < ln.outputs.size() && ln.outputs[i].defined())
        env[n->output(i)] = ln.outputs[i];
    k.keep.push_back(std::move(ln));
  }
  for (size_t i = 0; i < created.size(); ++i)
    if (used[i]) {
      k.paramValues.push_back(created[i].first);
      k.params.push_back(created[i].second);
    }
  for (const Value *v : grp.outputs) {
    auto it = env.find(v);
    TESSEL_CHECK(it != env.end() && it->second.defined(), "kernel ", symbol, ": output '",
                 v->name(), "' was not produced by the lowering of its node");
    te::Tensor t = it->second;
    bool dup = std::any_of(k.outputs.begin(), k.outputs.end(),
                           [&](const te::Tensor &o) { return o.same_as(t); });
    if (t.isPlaceholder() || dup) {
      // The output is an input (Identity, a view) or another output: copy it.
      te::Tensor src = t;
      t = te::compute(
          src.shape(), [src](const std::vector<loop::Var> &ix) {
            std::vector<loop::Expr> e(ix.begin(), ix.end());
            return src.access(e);
          },
          symbol + "_copy_" + sanitize(v->name()));
      k.extra.push_back(t);
      if (src.isPlaceholder()) {
        bool listed = std::any_of(k.params.begin(), k.params.end(),
                                  [&](const te::Tensor &p) { return p.same_as(src); });
        if (!listed)
          for (auto &[cv, ct] : created)
            if (ct.same_as(src)) {
              k.paramValues.push_back(cv);
              k.params.push_back(ct);
            }
      }
    }
    k.outputValues.push_back(v);
    k.outputs.push_back(t);
  }
  return k;
}

} // namespace

namespace {

/// "2x3" -> {2, 3}; "scalar" -> {} (rank 0).
std::vector<int64_t> parseDims(const std::string &spec, const std::string &text) {
  if (text == "scalar")
    return {};
  std::vector<int64_t> dims;
  size_t pos = 0;
  while (pos <= text.size()) {
    size_t x = text.find('x', pos);
    std::string d = text.substr(pos, x == std::string::npos ? std::string::npos : x - pos);
    TESSEL_CHECK(!d.empty() && d.size() < 12 &&
                     std::all_of(d.begin(), d.end(), [](char c) { return std::isdigit(uint8_t(c)); }),
                 "--input-shape '", spec, "': dim '", d,
                 "' is not a non-negative integer (expected D0xD1x..., or scalar for rank 0)");
    dims.push_back(std::stoll(d));
    if (x == std::string::npos)
      break;
    pos = x + 1;
  }
  return dims;
}

/// The text inside `word(...)` when `text` has that form.
std::optional<std::string> inside(const std::string &text, const std::string &word) {
  if (text.size() < word.size() + 2 || text.compare(0, word.size() + 1, word + "(") != 0 ||
      text.back() != ')')
    return std::nullopt;
  return text.substr(word.size() + 1, text.size() - word.size() - 2);
}

} // namespace

void parseInputShapeSpec(const std::string &spec, CompileOptions &opts) {
  size_t eq = spec.find('=');
  TESSEL_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < spec.size(), "--input-shape '", spec,
               "': expected NAME=D0xD1x... (e.g. input=1x3x224x224), NAME=scalar, "
               "NAME=seq(D0xD1,...), NAME=none or NAME=opt(...)");
  const std::string name = spec.substr(0, eq);
  std::string rest = spec.substr(eq + 1);
  InputStructure st;
  if (std::optional<std::string> in = inside(rest, "opt")) {
    st.optional = true;
    rest = *in;
    TESSEL_CHECK(rest != "none", "--input-shape '", spec,
                 "': an absent optional is written NAME=none, not opt(none)");
  }
  if (rest == "none") {
    st.kind = InputStructure::Kind::Absent;
  } else if (std::optional<std::string> elems = inside(rest, "seq")) {
    st.kind = InputStructure::Kind::Sequence;
    size_t pos = 0;
    while (!elems->empty() && pos <= elems->size()) {
      size_t comma = elems->find(',', pos);
      st.elements.push_back(parseDims(
          spec, elems->substr(pos, comma == std::string::npos ? std::string::npos : comma - pos)));
      if (comma == std::string::npos)
        break;
      pos = comma + 1;
    }
  } else {
    TESSEL_CHECK(rest.find_first_of("(),") == std::string::npos, "--input-shape '", spec,
                 "': expected D0xD1x..., scalar, seq(D0xD1,...), none or opt(...) after '='");
    std::vector<int64_t> dims = parseDims(spec, rest);
    if (!st.optional) {
      opts.inputShapes[name] = dims;
      return;
    }
    st.dims = dims;
  }
  opts.inputStructures[name] = st;
}

void CompiledModel::write(const std::string &path) const {
  std::string tmp = path + ".tmp";
  {
    std::ofstream f(tmp, std::ios::binary);
    TESSEL_CHECK(f.good(), "cannot write '", path, "'");
    f.write(reinterpret_cast<const char *>(artifact.data()), std::streamsize(artifact.size()));
    TESSEL_CHECK(f.good(), "cannot write '", path, "'");
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  TESSEL_CHECK(!ec, "cannot write '", path, "': ", ec.message());
}

CompiledModel compileModel(Graph &g, const CompileOptions &opts) {
  CompiledModel cm;
  auto t0 = Clock::now();
  TESSEL_CHECK(opts.optLevel >= 0 && opts.optLevel <= 3, "-O", opts.optLevel,
               ": expected an optimization level 0..3");
  StructuredValues structured;
  DynamicValues dynamic;
  OutputNames outputNames = prepareGraph(g, opts, structured, dynamic);
  auto artifactName = [&](const Value *v) -> const std::string & {
    auto it = outputNames.find(v);
    return it == outputNames.end() ? v->name() : it->second;
  };
  // Constant GEMM weights in the layout the kernels read (docs/compile.md, "Dense, ...").
  if (opts.vectorize)
    compiler::packDenseWeights(g);
  // Fallback nodes are picked before fusion and kept out of every group (Opaque), so the nodes
  // around them still fuse and each group's outputs count the values subgraphs capture.
  std::unordered_set<const Node *> fallback;
  if (opts.allowInterpreterFallback)
    fallback = fallbackNodes(g, dynamic);
  // Nodes with a DynamicKernel are kernels of their own too.
  std::unordered_set<const Node *> opaque = fallback;
  for (const auto &n : g.nodes())
    if (hasDynamicKernel(*n))
      opaque.insert(n.get());
  FuseOptions fo;
  fo.maxGroupSize = opts.maxGroupSize;
  fo.opaque = &opaque;
  FusionPlan plan = fuseOps(g, fo);
  cm.numNodes = plan.numNodes;
  auto t1 = Clock::now();
  cm.secondsGraph = seconds(t0, t1);

  codegen::Target target = codegen::Target::byName(opts.target);
  TESSEL_CHECK(target.kind() == codegen::TargetKind::Host || opts.target == "host",
               "--target ", opts.target, ": only the host target is supported by tessel compile");
  codegen::CodeGenOptions cg;
  cg.optLevel = opts.codegenOptLevel;
  codegen::EmitOptions emit; // buffers: 1-byte alignment promised (the runtime does not stage)
  compiler::ScheduleConfig sc;
  sc.parallel = opts.parallel;
  sc.vectorize = opts.vectorize;
  sc.vectorLanesF32 = target.hasFeature("avx512f") ? 16 : target.hasFeature("avx") ? 8 : 4;

  TempDir tmp;
  std::vector<std::string> objects;
  std::vector<KernelTE> kernels;
  std::unordered_map<const Value *, int64_t> producedBy; // value -> kernel index
  std::unordered_map<const Value *, int64_t> lastUse;
  size_t numFallbacks = 0;
  // A kernel's args: its parameters, then its outputs (the execution plan's order).
  auto recordArgs = [&](const KernelTE &k, CompiledKernel &ck, size_t idx) {
    for (const Value *v : k.paramValues) {
      ck.args.push_back(v->name());
      lastUse[v] = int64_t(idx);
    }
    for (const Value *v : k.outputValues) {
      ck.args.push_back(artifactName(v));
      producedBy[v] = int64_t(idx);
    }
    for (const Value *v : k.extentValues)
      ck.args.push_back(artifactName(v) + ".extent");
  };
  for (const FusionGroup &grp : plan.groups) {
    size_t idx = cm.kernels.size();
    if (grp.nodes.size() == 1 && fallback.count(grp.nodes[0])) {
      // An interpreter fallback step: its non-constant inputs and its outputs are its args
      // (constant inputs travel inside the serialized node).
      KernelTE k;
      k.fallback = grp.nodes[0];
      std::vector<const Value *> args(grp.inputs.begin(), grp.inputs.end());
      // Values its subgraphs (If, Loop, Scan bodies) read from this graph are arguments too:
      // the serialized node declares them as inputs of its one-node model.
      for (const Value *v : subgraphReads(*k.fallback))
        args.push_back(v);
      for (const Value *v : args) {
        if (v->isConstant() ||
            std::find(k.paramValues.begin(), k.paramValues.end(), v) != k.paramValues.end())
          continue;
        staticDims(*v, "value");
        bool isInput = std::find(g.inputs.begin(), g.inputs.end(), v) != g.inputs.end();
        TESSEL_CHECK(isInput || producedBy.count(v), k.fallback->describe(), ": value '",
                     v->name(), "' that its subgraph reads is not kept by the kernel that "
                     "computes it (it is fused away); expected a graph input or a kernel output");
        k.paramValues.push_back(v);
      }
      k.outputValues = grp.outputs;
      CompiledKernel ck;
      ck.symbol = std::string(runtime::kFallbackSymbolPrefix) + std::to_string(numFallbacks++);
      ck.nodes.push_back(fusionNodeLabel(*k.fallback));
      ck.flops = nodeFlops(*k.fallback).value_or(0);
      recordArgs(k, ck, idx);
      ck.schedule = hasDynamicKernel(*k.fallback)
                        ? "interpreter fallback (a node after it cannot take its data-dependent "
                          "shape)"
                        : "interpreter fallback (op has no lowering)";
      cm.fallbackNodes.push_back(k.fallback->describe());
      cm.kernels.push_back(std::move(ck));
      kernels.push_back(std::move(k));
      continue;
    }
    std::string symbol = kernelName(idx, grp);
    KernelTE k;
    std::string desc;
    std::unique_ptr<llvm::LLVMContext> ctx;
    std::unique_ptr<llvm::Module> mod;
    double lowerSecs = 0;
    if (grp.nodes.size() == 1 && hasDynamicKernel(*grp.nodes[0])) {
      // A kernel written in loop IR: its given inputs, its outputs, then its extent slots.
      const Node *n = grp.nodes[0];
      try {
        auto ta = Clock::now();
        DynamicKernelFunc dk = buildDynamicKernel(*n, symbol);
        loop::LoweredFunc f = loop::lowerPipeline(dk.func);
        lowerSecs += seconds(ta, Clock::now());
        ctx = std::make_unique<llvm::LLVMContext>();
        mod = codegen::emitLLVM(f, *ctx, target, cg, emit);
        for (const Value *v : n->inputs())
          if (v)
            k.paramValues.push_back(v);
        for (size_t i = 0; i < n->numOutputs(); ++i)
          if (const Value *v = n->output(i)) {
            k.outputValues.push_back(v);
            if (dk.bounds[i].axis >= 0)
              k.extentValues.push_back(v);
          }
      } catch (const Error &e) {
        fail("kernel ", symbol, ": ", e.what());
      }
      desc = "loop IR kernel (output shape depends on the data)";
    } else {
      try {
        k = lowerGroup(grp, symbol);
      } catch (const Error &e) {
        fail("kernel ", symbol, ": ", e.what());
      }
      std::vector<te::Tensor> args = k.params;
      args.insert(args.end(), k.outputs.begin(), k.outputs.end());
      // The default schedule; if a construct of it cannot be lowered or emitted, retry with
      // plain loops (and say so in the kernel's schedule line) rather than fail the whole model.
      for (int attempt = 0; attempt < 2 && !mod; ++attempt) {
        compiler::ScheduleConfig c = sc;
        if (attempt == 1)
          c.parallel = c.vectorize = false;
        try {
          auto ta = Clock::now();
          te::Schedule s = te::create_schedule(k.outputs);
          desc = compiler::applyDefaultSchedule(s, c);
          loop::LoweredFunc f = te::lower(s, args, symbol);
          // a * b + c -> fma (what -ffp-contract=on does): the contractions' inner step.
          f = loop::lowerPipeline(te::contractMultiplyAdd(f));
          auto tb = Clock::now();
          lowerSecs += seconds(ta, tb);
          ctx = std::make_unique<llvm::LLVMContext>();
          mod = codegen::emitLLVM(f, *ctx, target, cg, emit);
        } catch (const Error &e) {
          if (attempt == 1)
            fail("kernel ", symbol, ": ", e.what());
          if (opts.verbose)
            std::cerr << "kernel " << symbol << ": default schedule failed (" << e.what()
                      << "); retrying with plain loops\n";
          desc = "plain loops (default schedule failed)";
        }
      }
    }
    cm.secondsLower += lowerSecs;
    auto tc = Clock::now();
    std::string obj = tmp.path + "/" + symbol + ".o";
    codegen::writeObjectFile(*mod, target, obj, cg);
    objects.push_back(obj);
    cm.secondsLLVM += seconds(tc, Clock::now());

    CompiledKernel ck;
    ck.symbol = symbol;
    for (const Node *n : grp.nodes) {
      ck.nodes.push_back(fusionNodeLabel(*n));
      ck.flops += nodeFlops(*n).value_or(0);
    }
    recordArgs(k, ck, idx);
    ck.schedule = desc;
    cm.kernels.push_back(std::move(ck));
    kernels.push_back(std::move(k));
  }

  auto tk = Clock::now();
  std::string so = tmp.path + "/kernels.so";
  if (!objects.empty()) // every node may have fallen back: then there is no code
    codegen::linkSharedLibrary(objects, so);
  cm.secondsLink = seconds(tk, Clock::now());

  // The artifact.
  artifact::Writer w;
  w.setTarget(target.triple(), target.cpu(), requiredFeatures(target));
  if (!opts.sourceHash.empty())
    w.setSourceHash(opts.sourceHash);
  w.setExtra("opt_level", std::to_string(opts.optLevel));
  w.setExtra("num_kernels", std::to_string(cm.kernels.size()));
  if (!structured.empty()) { // docs/artifact.md, "Graph outputs"
    std::string text;
    std::set<std::string> listed;
    for (auto &[name, form] : structured)
      if (listed.insert(name).second)
        text += (text.empty() ? "" : ";") + name + "=" + form;
    w.setExtra("structured_values", text);
  }
  std::unordered_map<const Value *, uint32_t> inputIdx, outputIdx, weightIdx, arenaIdx;
  for (const Value *v : g.inputs)
    if (!v->isConstant())
      inputIdx[v] = w.addInput(v->name(), v->type.dtype, staticDims(*v, "input"));
  // --input-value: the value every run must give, which the runtime checks.
  for (const Value *v : g.inputs) {
    auto it = opts.inputValues.find(v->name());
    if (it == opts.inputValues.end() || !inputIdx.count(v))
      continue;
    const Tensor &t = it->second;
    uint32_t wi = w.addWeight(v->name() + ".input_value", t.dtype(), t.shape(), t.raw(),
                              t.nbytes());
    cm.weightBytes += int64_t(t.nbytes());
    w.addInputValue(inputIdx.at(v), wi);
  }
  for (const Value *v : g.outputs)
    outputIdx[v] = w.addOutput(artifactName(v), v->type.dtype, staticDims(*v, "output"));
  std::vector<Slice> slices;
  for (auto &[v, first] : producedBy) {
    if (outputIdx.count(v))
      continue;
    auto it = lastUse.find(v);
    slices.push_back({v, byteSizeOf(*v), first, it == lastUse.end() ? first : it->second});
  }
  std::sort(slices.begin(), slices.end(),
            [&](const Slice &a, const Slice &b) { return a.first != b.first ? a.first < b.first
                                                                              : a.value->name() < b.value->name(); });
  cm.arenaBytes = planSlices(slices);
  for (const Slice &s : slices)
    arenaIdx[s.value] = w.addArenaSlice(s.value->name(), uint64_t(s.offset), uint64_t(s.bytes));
  // The extent slots of dynamic outputs: 8 bytes each after the planned arena, live for the
  // whole run (the runtime reads the outputs' extents after the last step).
  std::unordered_map<const Value *, uint32_t> extentIdx;
  for (const KernelTE &k : kernels)
    for (const Value *v : k.extentValues) {
      extentIdx[v] = w.addArenaSlice(artifactName(v) + ".extent", uint64_t(cm.arenaBytes), 8);
      cm.arenaBytes += int64_t(runtime::kArtifactAlignment);
    }
  w.setArenaSize(uint64_t(cm.arenaBytes));
  for (size_t i = 0; i < g.outputs.size(); ++i)
    if (auto it = dynamic.axes.find(g.outputs[i]); it != dynamic.axes.end())
      w.addDynamicOutput(outputIdx.at(g.outputs[i]), uint32_t(it->second.axis),
                         extentIdx.at(it->second.source));
  for (size_t i = 0; i < kernels.size(); ++i) {
    std::vector<runtime::StepArg> args;
    auto argOf = [&](const Value *v) -> runtime::StepArg {
      if (auto it = inputIdx.find(v); it != inputIdx.end())
        return artifact::Writer::input(it->second);
      if (auto it = outputIdx.find(v); it != outputIdx.end())
        return artifact::Writer::output(it->second);
      if (auto it = arenaIdx.find(v); it != arenaIdx.end())
        return artifact::Writer::arena(it->second);
      if (v->isConstant()) {
        auto it = weightIdx.find(v);
        if (it == weightIdx.end()) {
          it = weightIdx
                   .emplace(v, w.addWeight(v->name(), v->type.dtype, v->constant.shape(),
                                           v->constant.raw(), v->constant.nbytes()))
                   .first;
          cm.weightBytes += int64_t(v->constant.nbytes());
        }
        return artifact::Writer::weight(it->second);
      }
      fail("kernel ", cm.kernels[i].symbol, " reads '", v->name(),
           "', which is no input, output, weight or earlier kernel's result");
    };
    for (const Value *v : kernels[i].paramValues)
      args.push_back(argOf(v));
    for (const Value *v : kernels[i].outputValues)
      args.push_back(argOf(v));
    for (const Value *v : kernels[i].extentValues)
      args.push_back(artifact::Writer::arena(extentIdx.at(v)));
    if (const Node *n = kernels[i].fallback) {
      auto desc = [](const Value *v) {
        return runtime::TensorDesc{v->name(), artifact::toElemType(v->type.dtype),
                                   staticDims(*v, "value")};
      };
      std::vector<runtime::TensorDesc> ins, outs;
      for (const Value *v : kernels[i].paramValues)
        ins.push_back(desc(v));
      for (const Value *v : kernels[i].outputValues)
        outs.push_back(desc(v));
      w.addFallbackStep(n->name, (n->domain.empty() ? "" : n->domain + ".") + n->opType,
                        std::move(ins), std::move(outs),
                        serializeFallbackNode(*n, kernels[i].paramValues, kernels[i].outputValues),
                        std::move(args));
      continue;
    }
    w.addStep(cm.kernels[i].symbol, std::move(args));
  }
  // One FLOP count per step, for `tessel bench --profile` (Model::kernelFlops).
  std::string flops;
  for (const CompiledKernel &k : cm.kernels)
    flops += (flops.empty() ? "" : ",") + std::to_string(k.flops);
  w.setExtra("kernel_flops", flops);
  if (!objects.empty()) {
    w.setCodeFromFile(so);
    cm.codeBytes = size_t(fs::file_size(so));
  }
  cm.artifact = w.finish();
  cm.secondsTotal = seconds(t0, Clock::now());
  return cm;
}

} // namespace tessel
