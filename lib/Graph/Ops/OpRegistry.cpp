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

void OpRegistry::setLower(const std::string &name, LowerFn fn) {
  bool found = false;
  for (auto &o : ops_)
    if (o.name == name && o.domain.empty()) {
      o.lower = fn;
      found = true;
    }
  TESSEL_CHECK(found, "setLower: op ", name, " is not registered; register the op before its lowering");
}

void OpRegistry::setDynamicKernel(const std::string &name,
                                  std::shared_ptr<const DynamicKernel> kernel) {
  bool found = false;
  for (auto &o : ops_)
    if (o.name == name && o.domain.empty()) {
      o.dynamicKernel = kernel;
      found = true;
    }
  TESSEL_CHECK(found, "setDynamicKernel: op ", name,
               " is not registered; register the op before its kernel");
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

} // namespace tessel
