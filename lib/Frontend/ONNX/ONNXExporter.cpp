//===- ONNXExporter.cpp - graph IR -> ONNX protobuf -----------------------===//
//
// Writes a Graph as an ONNX ModelProto: opset imports, graph inputs and outputs with their
// types, initializers (raw_data; strings in string_data), nodes with every attribute kind
// (subgraphs included: a subgraph names outer-scope values it captures by their outer name),
// and value_info for intermediate values whose type is known. Initializers nothing uses are
// left out. Models over protobuf's 2 GiB limit would need external data, which the writer does
// not produce: that is an Error.
//
//===----------------------------------------------------------------------===//
#include "tessel/Frontend/ONNX.h"

#include <onnx/onnx_pb.h>

#include <algorithm>
#include <climits>
#include <fstream>
#include <map>
#include <set>
#include <unordered_map>
#include <unordered_set>

namespace tessel {

namespace {

// Protobuf cannot serialize a message of 2 GiB or more.
constexpr uint64_t kMaxModelBytes = uint64_t(INT_MAX);

/// The IR version that goes with an ai.onnx opset (onnx/helper.py's VERSION_TABLE), at least
/// 4 (initializers need not be graph inputs) and at most what the linked onnx knows.
int64_t irVersionFor(int64_t opset) {
  int64_t ir = opset <= 9 ? 4 : opset == 10 ? 5 : opset == 11 ? 6 : opset <= 14 ? 7
             : opset <= 18 ? 8 : opset <= 20 ? 9 : 10;
  return std::min<int64_t>(ir, onnx::Version::IR_VERSION);
}

bool typeKnown(const Type &t) {
  switch (t.kind) {
  case Type::Kind::Tensor: return t.dtype != DType::undefined;
  case Type::Kind::Sequence:
  case Type::Kind::Optional: return t.elem && typeKnown(*t.elem);
  case Type::Kind::Unknown: return false;
  }
  return false;
}

class Exporter {
public:
  Exporter(const Graph &root, const std::string &path) : path_(path) { collectCaptures(root); }

  void writeGraph(const Graph &g, onnx::GraphProto &gp, const std::string &fallbackName);

private:
  std::string name(const Value *v) const;
  void writeType(const Type &t, onnx::TypeProto &tp);
  void writeValueInfo(const Value *v, onnx::ValueInfoProto &vi);
  void writeTensor(const Tensor &t, const std::string &tname, onnx::TensorProto &tp,
                   const std::string &what);
  void writeAttribute(const std::string &aname, const Attribute &a, onnx::AttributeProto &ap,
                      const Node &n);
  void collectCaptures(const Graph &g);

  std::string path_;
  uint64_t bytes_ = 0;
  std::unordered_set<const Value *> captured_; // values some subgraph names
};

/// A capture is written under the name of the outer value it stands for.
std::string Exporter::name(const Value *v) const {
  if (!v)
    return "";
  while (v->outer)
    v = v->outer;
  return v->name();
}

void Exporter::collectCaptures(const Graph &g) {
  for (auto &v : g.values())
    for (const Value *o = v->outer; o; o = o->outer)
      captured_.insert(o);
  for (auto &n : g.nodes())
    for (auto &[k, a] : n->attrs) {
      if (a.g)
        collectCaptures(*a.g);
      for (auto &sg : a.graphs)
        if (sg)
          collectCaptures(*sg);
    }
}

void Exporter::writeType(const Type &t, onnx::TypeProto &tp) {
  switch (t.kind) {
  case Type::Kind::Unknown: return;
  case Type::Kind::Tensor: {
    auto *tt = tp.mutable_tensor_type();
    if (t.dtype != DType::undefined)
      tt->set_elem_type(dtypeToOnnx(t.dtype));
    if (!t.shape.rankKnown)
      return;
    auto *sp = tt->mutable_shape();
    for (auto &d : t.shape.dims) {
      auto *dp = sp->add_dim();
      if (d.isStatic())
        dp->set_dim_value(d.value);
      else if (d.isSymbolic())
        dp->set_dim_param(d.symbol);
    }
    return;
  }
  case Type::Kind::Sequence: {
    auto *st = tp.mutable_sequence_type();
    if (t.elem && t.elem->kind != Type::Kind::Unknown)
      writeType(*t.elem, *st->mutable_elem_type());
    return;
  }
  case Type::Kind::Optional: {
    auto *ot = tp.mutable_optional_type();
    if (t.elem && t.elem->kind != Type::Kind::Unknown)
      writeType(*t.elem, *ot->mutable_elem_type());
    return;
  }
  }
}

void Exporter::writeValueInfo(const Value *v, onnx::ValueInfoProto &vi) {
  vi.set_name(name(v));
  if (v->type.kind != Type::Kind::Unknown)
    writeType(v->type, *vi.mutable_type());
}

void Exporter::writeTensor(const Tensor &t, const std::string &tname, onnx::TensorProto &tp,
                           const std::string &what) {
  TESSEL_CHECK(t.defined(), path_, ": ", what, ": tensor has no data type");
  bytes_ += t.dtype() == DType::string ? 0 : t.nbytes();
  if (t.dtype() == DType::string)
    for (int64_t i = 0; i < t.numel(); ++i)
      bytes_ += t.data<std::string>()[i].size();
  TESSEL_CHECK(bytes_ < kMaxModelBytes, path_, ": ", what, ": the model's tensors exceed 2 GiB (",
               bytes_, " bytes so far); protobuf cannot hold that and the writer does not "
               "produce external data files");
  if (!tname.empty())
    tp.set_name(tname);
  tp.set_data_type(dtypeToOnnx(t.dtype()));
  for (int64_t d : t.shape())
    tp.add_dims(d);
  if (t.dtype() == DType::string) {
    for (int64_t i = 0; i < t.numel(); ++i)
      tp.add_string_data(t.data<std::string>()[i]);
    return;
  }
  tp.set_raw_data(static_cast<const char *>(t.raw()), t.nbytes());
}

void Exporter::writeAttribute(const std::string &aname, const Attribute &a,
                              onnx::AttributeProto &ap, const Node &n) {
  std::string what = n.describe() + ": attribute '" + aname + "'";
  ap.set_name(aname);
  using K = Attribute::Kind;
  auto sub = [&](const std::shared_ptr<Graph> &g, onnx::GraphProto &gp, size_t idx) {
    TESSEL_CHECK(g, path_, ": ", what, ": subgraph is missing");
    writeGraph(*g, gp, n.name + "_" + aname + (idx ? "_" + std::to_string(idx) : ""));
  };
  switch (a.kind) {
  case K::Float: ap.set_type(onnx::AttributeProto::FLOAT); ap.set_f(a.f); return;
  case K::Int: ap.set_type(onnx::AttributeProto::INT); ap.set_i(a.i); return;
  case K::String: ap.set_type(onnx::AttributeProto::STRING); ap.set_s(a.s); return;
  case K::Tensor:
    ap.set_type(onnx::AttributeProto::TENSOR);
    writeTensor(a.t, "", *ap.mutable_t(), what);
    return;
  case K::Graph:
    ap.set_type(onnx::AttributeProto::GRAPH);
    sub(a.g, *ap.mutable_g(), 0);
    return;
  case K::Floats:
    ap.set_type(onnx::AttributeProto::FLOATS);
    for (float f : a.floats)
      ap.add_floats(f);
    return;
  case K::Ints:
    ap.set_type(onnx::AttributeProto::INTS);
    for (int64_t i : a.ints)
      ap.add_ints(i);
    return;
  case K::Strings:
    ap.set_type(onnx::AttributeProto::STRINGS);
    for (auto &s : a.strings)
      ap.add_strings(s);
    return;
  case K::Tensors:
    ap.set_type(onnx::AttributeProto::TENSORS);
    for (auto &t : a.tensors)
      writeTensor(t, "", *ap.add_tensors(), what);
    return;
  case K::Graphs:
    ap.set_type(onnx::AttributeProto::GRAPHS);
    for (size_t i = 0; i < a.graphs.size(); ++i)
      sub(a.graphs[i], *ap.add_graphs(), i);
    return;
  case K::TypeAttr:
    ap.set_type(onnx::AttributeProto::TYPE_PROTO);
    writeType(a.type, *ap.mutable_tp());
    return;
  }
  fail(path_, ": ", what, ": unknown attribute kind");
}

void Exporter::writeGraph(const Graph &g, onnx::GraphProto &gp, const std::string &fallbackName) {
  gp.set_name(g.name.empty() ? fallbackName : g.name);
  std::unordered_set<const Value *> isInput(g.inputs.begin(), g.inputs.end());
  std::unordered_set<const Value *> isOutput(g.outputs.begin(), g.outputs.end());

  for (const Value *v : g.inputs)
    writeValueInfo(v, *gp.add_input());

  // Initializers: the declared ones and constants a pass left without a producer, when used.
  auto used = [&](const Value *v) {
    return !v->uses().empty() || isOutput.count(v) || isInput.count(v) || captured_.count(v);
  };
  std::unordered_set<const Value *> written;
  auto writeInit = [&](const Value *v) {
    if (!v || !v->isConstant() || v->producer() || v->outer || !written.insert(v).second || !used(v))
      return;
    writeTensor(v->constant, name(v), *gp.add_initializer(), "initializer '" + name(v) + "'");
  };
  for (const Value *v : g.initializers)
    writeInit(v);
  for (auto &v : g.values())
    if (!isInput.count(v.get()))
      writeInit(v.get());

  for (auto &np : g.nodes()) {
    const Node &n = *np;
    auto *p = gp.add_node();
    if (!n.name.empty())
      p->set_name(n.name);
    p->set_op_type(n.opType);
    if (!n.domain.empty())
      p->set_domain(n.domain);
    for (const Value *v : n.inputs())
      p->add_input(name(v));
    for (const Value *v : n.outputs())
      p->add_output(name(v));
    for (auto &[aname, a] : n.attrs)
      writeAttribute(aname, a, *p->add_attribute(), n);
    for (const Value *v : n.outputs())
      if (v && !isOutput.count(v) && typeKnown(v->type))
        writeValueInfo(v, *gp.add_value_info());
  }

  for (size_t i = 0; i < g.outputs.size(); ++i) {
    const Value *v = g.outputs[i];
    TESSEL_CHECK(v, path_, ": graph '", gp.name(), "' has a missing output");
    writeValueInfo(v, *gp.add_output());
  }
}

} // namespace

void saveOnnx(const Graph &g, const std::string &path) {
  Exporter ex(g, path);
  onnx::ModelProto m;
  int64_t opset = g.opsetVersion("");
  m.set_ir_version(irVersionFor(opset));
  m.set_producer_name("tessel");
  bool haveDefault = false;
  for (auto &[domain, version] : g.opsets) {
    auto *op = m.add_opset_import();
    op->set_domain(domain);
    op->set_version(version);
    haveDefault |= domain.empty();
  }
  if (!haveDefault) {
    auto *op = m.add_opset_import();
    op->set_domain("");
    op->set_version(opset > 0 ? opset : 1);
  }
  ex.writeGraph(g, *m.mutable_graph(), "tessel");
  size_t size = m.ByteSizeLong();
  TESSEL_CHECK(size < kMaxModelBytes, path, ": the model is ", size,
               " bytes, over protobuf's 2 GiB limit; the writer does not produce external data");
  std::string bytes;
  TESSEL_CHECK(m.SerializeToString(&bytes), path, ": protobuf serialization failed");
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  TESSEL_CHECK(out.good(), path, ": cannot open for writing");
  out.write(bytes.data(), std::streamsize(bytes.size()));
  out.close();
  TESSEL_CHECK(out.good(), path, ": write failed (disk full?)");
}

} // namespace tessel
