//===- OpRegistry.cpp - the registry, attribute access, shared op helpers -===//
#include "tessel/Graph/OpRegistry.h"

#include "OpUtils.h"

#include <algorithm>

namespace tessel {

//===----------------------------------------------------------------------===//
// OpRegistry
//===----------------------------------------------------------------------===//

const OpRegistry &OpRegistry::get() {
  static const OpRegistry registry = [] {
    OpRegistry r;
#define TESSEL_CALL_FAMILY(F) register##F##Ops(r);
    TESSEL_OP_FAMILIES(TESSEL_CALL_FAMILY)
#undef TESSEL_CALL_FAMILY
    std::sort(r.ops_.begin(), r.ops_.end(), [](const OpDef &a, const OpDef &b) {
      return std::tie(a.domain, a.name, a.sinceVersion) < std::tie(b.domain, b.name, b.sinceVersion);
    });
    return r;
  }();
  return registry;
}

void OpRegistry::add(OpDef def) {
  for (auto &o : ops_)
    TESSEL_CHECK(!(o.name == def.name && o.domain == def.domain &&
                   o.sinceVersion <= def.untilVersion && def.sinceVersion <= o.untilVersion),
                 "op ", def.name, " registered twice for overlapping opset versions");
  ops_.push_back(std::move(def));
}

const OpDef *OpRegistry::lookup(const std::string &domain, const std::string &name,
                                int64_t version) const {
  std::string d = domain == "ai.onnx" ? "" : domain;
  for (auto &o : ops_)
    if (o.name == name && o.domain == d && version >= o.sinceVersion && version <= o.untilVersion)
      return &o;
  return nullptr;
}

const OpDef *OpRegistry::lookupAny(const std::string &domain, const std::string &name) const {
  std::string d = domain == "ai.onnx" ? "" : domain;
  for (auto &o : ops_)
    if (o.name == name && o.domain == d)
      return &o;
  return nullptr;
}

//===----------------------------------------------------------------------===//
// AttrReader
//===----------------------------------------------------------------------===//

const Attribute *AttrReader::find(const std::string &name, Attribute::Kind kind) const {
  const Attribute *a = node_.attr(name);
  if (!a)
    return nullptr;
  if (a->kind != kind)
    fail("attribute '", name, "' should be of type ", attributeKindName(kind), ", got ",
         attributeKindName(a->kind));
  return a;
}

const Attribute &AttrReader::get(const std::string &name, Attribute::Kind kind) const {
  const Attribute *a = find(name, kind);
  if (!a)
    fail("missing required attribute '", name, "' (", attributeKindName(kind), ")");
  return *a;
}

int64_t AttrReader::attrInt(const std::string &n) const { return get(n, Attribute::Kind::Int).i; }
int64_t AttrReader::attrInt(const std::string &n, int64_t d) const {
  auto *a = find(n, Attribute::Kind::Int);
  return a ? a->i : d;
}
float AttrReader::attrFloat(const std::string &n) const { return get(n, Attribute::Kind::Float).f; }
float AttrReader::attrFloat(const std::string &n, float d) const {
  auto *a = find(n, Attribute::Kind::Float);
  return a ? a->f : d;
}
std::string AttrReader::attrString(const std::string &n) const {
  return get(n, Attribute::Kind::String).s;
}
std::string AttrReader::attrString(const std::string &n, const std::string &d) const {
  auto *a = find(n, Attribute::Kind::String);
  return a ? a->s : d;
}
std::vector<int64_t> AttrReader::attrInts(const std::string &n) const {
  return get(n, Attribute::Kind::Ints).ints;
}
std::vector<int64_t> AttrReader::attrInts(const std::string &n, std::vector<int64_t> d) const {
  auto *a = find(n, Attribute::Kind::Ints);
  return a ? a->ints : d;
}
std::vector<float> AttrReader::attrFloats(const std::string &n) const {
  return get(n, Attribute::Kind::Floats).floats;
}
std::vector<float> AttrReader::attrFloats(const std::string &n, std::vector<float> d) const {
  auto *a = find(n, Attribute::Kind::Floats);
  return a ? a->floats : d;
}
std::vector<std::string> AttrReader::attrStrings(const std::string &n,
                                                 std::vector<std::string> d) const {
  auto *a = find(n, Attribute::Kind::Strings);
  return a ? a->strings : d;
}
const Tensor &AttrReader::attrTensor(const std::string &n) const {
  return get(n, Attribute::Kind::Tensor).t;
}
const Graph &AttrReader::attrGraph(const std::string &n) const {
  const Attribute &a = get(n, Attribute::Kind::Graph);
  check(a.g != nullptr, "attribute '", n, "' has no graph");
  return *a.g;
}
int64_t AttrReader::opset() const {
  return node_.graph() ? node_.graph()->opsetVersion(node_.domain) : 0;
}

//===----------------------------------------------------------------------===//
// InferContext / KernelContext
//===----------------------------------------------------------------------===//

const Type &InferContext::inputType(size_t i) const {
  Value *v = node().input(i);
  check(v != nullptr, "input ", i, " is required but missing");
  return v->type;
}

const Tensor *InferContext::inputConstant(size_t i) const {
  Value *v = node().input(i);
  while (v && v->outer)
    v = v->outer;
  if (!v || !v->isConstant())
    return nullptr;
  return &v->constant;
}

void InferContext::setOutputType(size_t i, Type t) {
  check(i < outputTypes_.size(), "inference set output ", i, " but the node has ",
        outputTypes_.size(), " outputs");
  outputTypes_[i] = std::move(t);
}

const Object &KernelContext::inputObject(size_t i) const {
  check(i < inputs_.size() && inputs_[i], "input ", i, " is required but missing");
  return *inputs_[i];
}

const Tensor &KernelContext::input(size_t i) const {
  const Object &o = inputObject(i);
  check(o.isTensor(), "input ", i, " should be a tensor, got a ",
        o.isSequence() ? "sequence" : "empty optional");
  return o.tensor;
}

void KernelContext::setOutputObject(size_t i, Object o) {
  check(i < outputs_.size(), "kernel set output ", i, " but the node has ", outputs_.size(),
        " outputs");
  outputs_[i] = std::move(o);
}

//===----------------------------------------------------------------------===//
// OpUtils
//===----------------------------------------------------------------------===//

int64_t normalizeAxis(const AttrReader &ctx, int64_t axis, int64_t rank, const char *what) {
  if (axis < -rank || axis >= std::max<int64_t>(rank, 1))
    ctx.fail(what, " ", axis, " is out of range for a tensor of rank ", rank, " (expected [",
             -rank, ", ", rank - 1, "])");
  return axis < 0 ? axis + rank : axis;
}

std::vector<int64_t> stridesOf(const std::vector<int64_t> &shape) {
  std::vector<int64_t> s(shape.size());
  int64_t acc = 1;
  for (int64_t i = int64_t(shape.size()) - 1; i >= 0; --i) {
    s[i] = acc;
    acc *= shape[i];
  }
  return s;
}

std::vector<int64_t> broadcastStatic(const AttrReader &ctx, const std::vector<int64_t> &a,
                                     const std::vector<int64_t> &b) {
  size_t r = std::max(a.size(), b.size());
  std::vector<int64_t> out(r);
  for (size_t i = 0; i < r; ++i) {
    int64_t da = i < r - a.size() ? 1 : a[i - (r - a.size())];
    int64_t db = i < r - b.size() ? 1 : b[i - (r - b.size())];
    if (da != db && da != 1 && db != 1)
      ctx.fail("shapes ", shapeToString(a), " and ", shapeToString(b), " cannot be broadcast");
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Shape broadcastShapes(const AttrReader &ctx, const Shape &a, const Shape &b) {
  if (!a.rankKnown || !b.rankKnown)
    return Shape::unknownRank();
  size_t r = std::max(a.dims.size(), b.dims.size());
  std::vector<Dim> out(r);
  for (size_t i = 0; i < r; ++i) {
    Dim da = i < r - a.dims.size() ? Dim(1) : a.dims[i - (r - a.dims.size())];
    Dim db = i < r - b.dims.size() ? Dim(1) : b.dims[i - (r - b.dims.size())];
    if (da.isStatic() && db.isStatic()) {
      if (da.value != db.value && da.value != 1 && db.value != 1)
        ctx.fail("shapes ", a.str(), " and ", b.str(), " cannot be broadcast");
      out[i] = da.value == 1 ? db : da;
    } else if (da == db) {
      out[i] = da;
    } else if (da.isStatic() && da.value == 1) {
      out[i] = db;
    } else if (db.isStatic() && db.value == 1) {
      out[i] = da;
    } else if (da.isStatic() && da.value != 1) {
      out[i] = da;
    } else if (db.isStatic() && db.value != 1) {
      out[i] = db;
    } else {
      out[i] = Dim();
    }
  }
  return Shape(out);
}

std::vector<int64_t> broadcastStrides(const std::vector<int64_t> &in,
                                      const std::vector<int64_t> &out) {
  std::vector<int64_t> s(out.size(), 0);
  std::vector<int64_t> is = stridesOf(in);
  size_t off = out.size() - in.size();
  for (size_t i = 0; i < in.size(); ++i)
    s[off + i] = in[i] == 1 ? 0 : is[i];
  return s;
}

InferFn inferSameAs(size_t from) {
  return [from](InferContext &ctx) {
    for (size_t i = 0; i < ctx.numOutputs(); ++i)
      ctx.setOutputType(i, ctx.inputType(from));
  };
}

InferFn inferBroadcast(DType outType) {
  return [outType](InferContext &ctx) {
    Shape s;
    bool first = true;
    DType dt = outType;
    for (size_t i = 0; i < ctx.numInputs(); ++i) {
      if (!ctx.hasInput(i))
        continue;
      const Shape &si = tensorShape(ctx, i);
      if (first) {
        s = si;
        if (dt == DType::undefined)
          dt = ctx.inputType(i).dtype;
        first = false;
      } else {
        s = broadcastShapes(ctx, s, si);
      }
    }
    ctx.setOutputType(0, Type::tensor(dt, s));
  };
}

const Shape &tensorShape(const InferContext &ctx, size_t input) {
  const Type &t = ctx.inputType(input);
  static const Shape unknown;
  if (t.kind == Type::Kind::Unknown)
    return unknown;
  if (!t.isTensor())
    ctx.fail("input ", input, " should be a tensor, got ", t.str());
  return t.shape;
}

} // namespace tessel
