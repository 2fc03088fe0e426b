//===- ONNXImporter.cpp - ONNX protobuf -> graph IR, validated ------------===//
//
// The model is untrusted. Every count, size, index, name and path is checked before use, and a
// problem is an Error that names the file, the node (name and op type) or tensor, and what was
// expected. Nodes are imported in dependency order (ONNX requires topological order; a graph
// that is not, or has a cycle, is reported).
//
//===----------------------------------------------------------------------===//
#include "tessel/Frontend/ONNX.h"
#include "tessel/Graph/OpRegistry.h"
#include "tessel/Support/Npy.h"
#include "tessel/Support/Tensor.h"

#include <onnx/onnx_pb.h>
// onnx_pb.h first: it defines ONNX_API, which onnx-data.pb.h needs.
#include <onnx/onnx-data.pb.h>

#include <google/protobuf/io/coded_stream.h>

#include <climits>
#include <cstring>
#include <filesystem>
#include <functional>
#include <set>
#include <sys/stat.h>
#include <unordered_map>
#include <unordered_set>

namespace tessel {

namespace {

constexpr int kMaxSubgraphDepth = 64;

template <class Msg> void parseMessage(Msg &msg, const std::string &bytes, const std::string &what,
                                       const char *kind) {
  TESSEL_CHECK(bytes.size() < size_t(INT_MAX), what, ": file is too large for protobuf (",
               bytes.size(), " bytes; tensors over 2 GiB must use external data)");
  google::protobuf::io::CodedInputStream cis(reinterpret_cast<const uint8_t *>(bytes.data()),
                                             int(bytes.size()));
  cis.SetTotalBytesLimit(INT_MAX);
  cis.SetRecursionLimit(200);
  TESSEL_CHECK(msg.ParseFromCodedStream(&cis) && cis.ConsumedEntireMessage(), what,
               ": not a valid ONNX ", kind, " (protobuf parse failed: the file is truncated, "
               "corrupted or not ONNX)");
}

class Importer {
public:
  Importer(std::string path) : path_(std::move(path)) {
    modelDir_ = std::filesystem::path(path_).parent_path().string();
    if (modelDir_.empty())
      modelDir_ = ".";
  }

  Model importModel(const onnx::ModelProto &m);
  Tensor convertTensor(const onnx::TensorProto &t, const std::string &what);
  Type convertType(const onnx::TypeProto &t, const std::string &what);

private:
  void importGraph(const onnx::GraphProto &gp, Graph &g, int depth);
  Attribute convertAttribute(const onnx::AttributeProto &a, const std::string &where, Graph &g,
                             int depth);
  Value *resolve(Graph &g, const std::string &name);
  Tensor readExternal(const onnx::TensorProto &t, DType dt, const std::vector<int64_t> &dims,
                      const std::string &what);
  std::string path_, modelDir_;
};

/// Names a graph uses but does not define (its free variables), including nested subgraphs.
void freeVariables(const onnx::GraphProto &g, std::set<std::string> &out, int depth) {
  TESSEL_CHECK(depth < kMaxSubgraphDepth, "subgraphs nested more than ", kMaxSubgraphDepth,
               " deep");
  std::unordered_set<std::string> defined;
  for (auto &i : g.input())
    defined.insert(i.name());
  for (auto &i : g.initializer())
    defined.insert(i.name());
  for (auto &n : g.node())
    for (auto &o : n.output())
      defined.insert(o);
  auto use = [&](const std::string &s) {
    if (!s.empty() && !defined.count(s))
      out.insert(s);
  };
  for (auto &n : g.node()) {
    for (auto &i : n.input())
      use(i);
    for (auto &a : n.attribute()) {
      std::set<std::string> inner;
      if (a.has_g())
        freeVariables(a.g(), inner, depth + 1);
      for (auto &sg : a.graphs())
        freeVariables(sg, inner, depth + 1);
      for (auto &s : inner)
        use(s);
    }
  }
  for (auto &o : g.output())
    use(o.name());
}

std::string nodeLabel(const onnx::NodeProto &n, int index) {
  return "node '" + (n.name().empty() ? "#" + std::to_string(index) : n.name()) + "' (" +
         n.op_type() + ")";
}

} // namespace

//===----------------------------------------------------------------------===//
// Types and tensors
//===----------------------------------------------------------------------===//

Type Importer::convertType(const onnx::TypeProto &t, const std::string &what) {
  switch (t.value_case()) {
  case onnx::TypeProto::kTensorType: {
    auto &tt = t.tensor_type();
    DType dt = DType::undefined;
    if (tt.elem_type() != 0) {
      auto d = dtypeFromOnnx(tt.elem_type());
      TESSEL_CHECK(d, path_, ": ", what, ": unsupported element type ", tt.elem_type(),
                   " (supported: float, float16, bfloat16, double, int8..int64, uint8..uint64, "
                   "bool, string)");
      dt = *d;
    }
    if (!tt.has_shape())
      return Type::tensor(dt, Shape::unknownRank());
    std::vector<Dim> dims;
    for (auto &d : tt.shape().dim()) {
      if (d.has_dim_value()) {
        TESSEL_CHECK(d.dim_value() >= 0, path_, ": ", what, ": negative dimension ",
                     d.dim_value());
        // No tensor tessel can hold has a longer dim; larger ones only feed overflows to shape
        // inference (a dim of 2^60 times 128 channels).
        TESSEL_CHECK(uint64_t(d.dim_value()) <= kMaxTensorBytes, path_, ": ", what, ": dimension ",
                     d.dim_value(), " is over the limit of ", kMaxTensorBytes,
                     " (the most bytes in one tensor)");
        dims.push_back(Dim(d.dim_value()));
      } else if (d.has_dim_param() && !d.dim_param().empty()) {
        dims.push_back(Dim::sym(d.dim_param()));
      } else {
        dims.push_back(Dim());
      }
    }
    return Type::tensor(dt, Shape(dims));
  }
  case onnx::TypeProto::kSequenceType:
    return Type::sequence(t.sequence_type().has_elem_type()
                              ? convertType(t.sequence_type().elem_type(), what)
                              : Type());
  case onnx::TypeProto::kOptionalType:
    return Type::optional(t.optional_type().has_elem_type()
                              ? convertType(t.optional_type().elem_type(), what)
                              : Type());
  case onnx::TypeProto::VALUE_NOT_SET: return Type();
  default:
    fail(path_, ": ", what, ": unsupported value type (map and sparse tensor types are not "
                            "supported; expected tensor, sequence or optional)");
  }
}

Tensor Importer::readExternal(const onnx::TensorProto &t, DType dt,
                              const std::vector<int64_t> &dims, const std::string &what) {
  std::string location;
  int64_t offset = 0, length = -1;
  for (auto &kv : t.external_data()) {
    if (kv.key() == "location") {
      location = kv.value();
    } else if (kv.key() == "offset" || kv.key() == "length") {
      char *end = nullptr;
      errno = 0;
      long long v = std::strtoll(kv.value().c_str(), &end, 10);
      TESSEL_CHECK(!kv.value().empty() && *end == 0 && errno == 0 && v >= 0, path_, ": ", what,
                   ": external data ", kv.key(), " '", kv.value(),
                   "' is not a non-negative integer");
      (kv.key() == "offset" ? offset : length) = v;
    }
  }
  TESSEL_CHECK(!location.empty(), path_, ": ", what, ": external data has no 'location'");
  TESSEL_CHECK(location.find('\0') == std::string::npos && location[0] != '/' &&
                   location.find('\\') == std::string::npos,
               path_, ": ", what, ": external data location '", location,
               "' must be a relative path inside the model's directory");
  std::filesystem::path rel(location);
  for (auto &part : rel)
    TESSEL_CHECK(part != "..", path_, ": ", what, ": external data location '", location,
                 "' must not contain '..' (it must stay inside the model's directory)");
  // No component may be a symlink: it could point outside the model's directory.
  std::filesystem::path cur(modelDir_);
  for (auto &part : rel) {
    cur /= part;
    struct stat st;
    TESSEL_CHECK(::lstat(cur.c_str(), &st) == 0, path_, ": ", what, ": external data file '",
                 cur.string(), "' not found");
    TESSEL_CHECK(!S_ISLNK(st.st_mode), path_, ": ", what, ": external data path '", cur.string(),
                 "' is a symbolic link; links are refused");
  }
  struct stat st;
  TESSEL_CHECK(::stat(cur.c_str(), &st) == 0 && S_ISREG(st.st_mode), path_, ": ", what,
               ": external data '", cur.string(), "' is not a regular file");
  Tensor out(dt, dims);
  uint64_t need = out.nbytes();
  if (length >= 0)
    TESSEL_CHECK(uint64_t(length) == need, path_, ": ", what, ": external data length ", length,
                 " does not match shape ", shapeToString(dims), " (", need, " bytes)");
  TESSEL_CHECK(uint64_t(offset) <= uint64_t(st.st_size) && need <= uint64_t(st.st_size) - offset,
               path_, ": ", what, ": external data offset ", offset, " + length ", need,
               " is past the end of '", cur.string(), "' (", st.st_size, " bytes)");
  FILE *f = std::fopen(cur.c_str(), "rb");
  TESSEL_CHECK(f, path_, ": ", what, ": cannot open external data '", cur.string(), "'");
  bool ok = std::fseek(f, long(offset), SEEK_SET) == 0 &&
            std::fread(out.raw(), 1, need, f) == need;
  std::fclose(f);
  TESSEL_CHECK(ok, path_, ": ", what, ": short read of external data '", cur.string(), "'");
  return out;
}

Tensor Importer::convertTensor(const onnx::TensorProto &t, const std::string &whatIn) {
  std::string what = whatIn.empty() ? "tensor '" + t.name() + "'" : whatIn;
  auto d = dtypeFromOnnx(t.data_type());
  TESSEL_CHECK(d, path_, ": ", what, ": unsupported or missing data_type ", t.data_type());
  DType dt = *d;
  TESSEL_CHECK(!t.has_segment(), path_, ": ", what, ": segmented tensors are not supported");
  std::vector<int64_t> dims(t.dims().begin(), t.dims().end());
  for (int64_t x : dims)
    TESSEL_CHECK(x >= 0, path_, ": ", what, ": negative dimension ", x, " in dims ",
                 shapeToString(dims));
  int64_t n = checkedNumel(dims, dtypeSize(dt), path_ + ": " + what);
  // checkedNumel accepts any dim beside a 0; a dim of 2^62 would still overflow shape inference.
  for (int64_t x : dims)
    TESSEL_CHECK(uint64_t(x) <= kMaxTensorBytes, path_, ": ", what, ": dimension ", x, " in dims ",
                 shapeToString(dims), " is over the limit of ", kMaxTensorBytes);
  if (t.data_location() == onnx::TensorProto::EXTERNAL) {
    TESSEL_CHECK(dt != DType::string, path_, ": ", what, ": string tensors cannot be external");
    return readExternal(t, dt, dims, what);
  }
  auto countCheck = [&](int64_t have, const char *field) {
    TESSEL_CHECK(have == n, path_, ": ", what, ": ", field, " has ", have,
                 " elements, but dims ", shapeToString(dims), " need ", n);
  };
  if (dt == DType::string) {
    countCheck(t.string_data_size(), "string_data");
    Tensor out(dt, dims);
    for (int64_t i = 0; i < n; ++i)
      out.data<std::string>()[i] = t.string_data(int(i));
    return out;
  }
  if (t.has_raw_data()) {
    size_t es = dtypeSize(dt);
    TESSEL_CHECK(t.raw_data().size() == size_t(n) * es, path_, ": ", what, ": raw_data has ",
                 t.raw_data().size(), " bytes, but dims ", shapeToString(dims), " of ",
                 dtypeName(dt), " need ", size_t(n) * es);
    Tensor out(dt, dims);
    std::memcpy(out.raw(), t.raw_data().data(), out.nbytes());
    return out;
  }
  Tensor out(dt, dims);
  switch (dt) {
  case DType::f32:
    countCheck(t.float_data_size(), "float_data");
    std::copy(t.float_data().begin(), t.float_data().end(), out.data<float>());
    break;
  case DType::f64:
    countCheck(t.double_data_size(), "double_data");
    std::copy(t.double_data().begin(), t.double_data().end(), out.data<double>());
    break;
  case DType::i64:
    countCheck(t.int64_data_size(), "int64_data");
    std::copy(t.int64_data().begin(), t.int64_data().end(), out.data<int64_t>());
    break;
  case DType::u32:
  case DType::u64:
    countCheck(t.uint64_data_size(), "uint64_data");
    for (int64_t i = 0; i < n; ++i) {
      if (dt == DType::u32)
        out.data<uint32_t>()[i] = uint32_t(t.uint64_data(int(i)));
      else
        out.data<uint64_t>()[i] = t.uint64_data(int(i));
    }
    break;
  default: // i8 u8 i16 u16 i32 bool f16 bf16 live in int32_data
    countCheck(t.int32_data_size(), "int32_data");
    for (int64_t i = 0; i < n; ++i) {
      int32_t v = t.int32_data(int(i));
      switch (dt) {
      case DType::i8: out.data<int8_t>()[i] = int8_t(v); break;
      case DType::u8: out.data<uint8_t>()[i] = uint8_t(v); break;
      case DType::i16: out.data<int16_t>()[i] = int16_t(v); break;
      case DType::u16: out.data<uint16_t>()[i] = uint16_t(v); break;
      case DType::i32: out.data<int32_t>()[i] = v; break;
      case DType::boolean: out.data<bool>()[i] = v != 0; break;
      case DType::f16: out.data<Float16>()[i].bits = uint16_t(v); break;
      case DType::bf16: out.data<BFloat16>()[i].bits = uint16_t(v); break;
      default: fail(path_, ": ", what, ": unexpected element type");
      }
    }
  }
  return out;
}

//===----------------------------------------------------------------------===//
// Graphs
//===----------------------------------------------------------------------===//

Value *Importer::resolve(Graph &g, const std::string &name) {
  if (Value *v = g.findValue(name))
    return v;
  if (!g.parent)
    return nullptr;
  Value *outer = resolve(*g.parent, name);
  if (!outer)
    return nullptr;
  Value *cap = g.createValue(name, outer->type);
  cap->outer = outer;
  return cap;
}

Attribute Importer::convertAttribute(const onnx::AttributeProto &a, const std::string &where,
                                     Graph &g, int depth) {
  std::string what = where + ": attribute '" + a.name() + "'";
  TESSEL_CHECK(!a.name().empty(), path_, ": ", where, ": an attribute has no name");
  TESSEL_CHECK(a.ref_attr_name().empty(), path_, ": ", what,
               ": references to function attributes are not supported");
  Attribute r;
  int type = a.type();
  if (type == onnx::AttributeProto::UNDEFINED) { // old models: infer from the field that is set
    if (a.has_f()) type = onnx::AttributeProto::FLOAT;
    else if (a.has_i()) type = onnx::AttributeProto::INT;
    else if (a.has_s()) type = onnx::AttributeProto::STRING;
    else if (a.has_t()) type = onnx::AttributeProto::TENSOR;
    else if (a.has_g()) type = onnx::AttributeProto::GRAPH;
    else if (a.floats_size()) type = onnx::AttributeProto::FLOATS;
    else if (a.ints_size()) type = onnx::AttributeProto::INTS;
    else if (a.strings_size()) type = onnx::AttributeProto::STRINGS;
    else if (a.tensors_size()) type = onnx::AttributeProto::TENSORS;
    else if (a.graphs_size()) type = onnx::AttributeProto::GRAPHS;
    else fail(path_, ": ", what, ": has no type and no value");
  }
  auto subgraph = [&](const onnx::GraphProto &gp) {
    auto sg = std::make_shared<Graph>();
    sg->parent = &g;
    sg->sourceFile = g.sourceFile;
    sg->name = gp.name();
    importGraph(gp, *sg, depth + 1);
    return sg;
  };
  switch (type) {
  case onnx::AttributeProto::FLOAT: r.kind = Attribute::Kind::Float; r.f = a.f(); break;
  case onnx::AttributeProto::INT: r.kind = Attribute::Kind::Int; r.i = a.i(); break;
  case onnx::AttributeProto::STRING: r.kind = Attribute::Kind::String; r.s = a.s(); break;
  case onnx::AttributeProto::TENSOR:
    TESSEL_CHECK(a.has_t(), path_, ": ", what, ": type TENSOR but no tensor");
    r.kind = Attribute::Kind::Tensor;
    r.t = convertTensor(a.t(), what);
    break;
  case onnx::AttributeProto::GRAPH:
    TESSEL_CHECK(a.has_g(), path_, ": ", what, ": type GRAPH but no graph");
    r.kind = Attribute::Kind::Graph;
    r.g = subgraph(a.g());
    break;
  case onnx::AttributeProto::FLOATS:
    r.kind = Attribute::Kind::Floats;
    r.floats.assign(a.floats().begin(), a.floats().end());
    break;
  case onnx::AttributeProto::INTS:
    r.kind = Attribute::Kind::Ints;
    r.ints.assign(a.ints().begin(), a.ints().end());
    break;
  case onnx::AttributeProto::STRINGS:
    r.kind = Attribute::Kind::Strings;
    r.strings.assign(a.strings().begin(), a.strings().end());
    break;
  case onnx::AttributeProto::TENSORS:
    r.kind = Attribute::Kind::Tensors;
    for (auto &t : a.tensors())
      r.tensors.push_back(convertTensor(t, what));
    break;
  case onnx::AttributeProto::GRAPHS:
    r.kind = Attribute::Kind::Graphs;
    for (auto &gp : a.graphs())
      r.graphs.push_back(subgraph(gp));
    break;
  case onnx::AttributeProto::TYPE_PROTO:
    TESSEL_CHECK(a.has_tp(), path_, ": ", what, ": type TYPE_PROTO but no type");
    r.kind = Attribute::Kind::TypeAttr;
    r.type = convertType(a.tp(), what);
    break;
  case onnx::AttributeProto::SPARSE_TENSOR:
  case onnx::AttributeProto::SPARSE_TENSORS:
    fail(path_, ": ", what, ": sparse tensor attributes are not supported");
  default: fail(path_, ": ", what, ": unknown attribute type ", a.type());
  }
  return r;
}

void Importer::importGraph(const onnx::GraphProto &gp, Graph &g, int depth) {
  TESSEL_CHECK(depth < kMaxSubgraphDepth, path_, ": subgraphs nested more than ",
               kMaxSubgraphDepth, " deep");
  std::string gname = "graph '" + gp.name() + "'";
  TESSEL_CHECK(gp.sparse_initializer_size() == 0, path_, ": ", gname,
               ": sparse initializers are not supported");

  std::unordered_map<std::string, const onnx::TypeProto *> declared;
  for (auto &vi : gp.value_info())
    if (vi.has_type())
      declared[vi.name()] = &vi.type();
  for (auto &vi : gp.output())
    if (vi.has_type())
      declared[vi.name()] = &vi.type();

  // Initializers.
  std::unordered_map<std::string, Value *> inits;
  for (auto &t : gp.initializer()) {
    TESSEL_CHECK(!t.name().empty(), path_, ": ", gname, ": an initializer has no name");
    TESSEL_CHECK(!g.findValue(t.name()), path_, ": ", gname, ": initializer '", t.name(),
                 "' is defined more than once");
    Tensor data = convertTensor(t, "initializer '" + t.name() + "'");
    Value *v = g.createValue(t.name(), Type::tensor(data.dtype(), Shape::of(data.shape())));
    v->constant = std::move(data);
    g.initializers.push_back(v);
    inits[t.name()] = v;
  }
  // Inputs (an input may also be an initializer: a default the caller can override).
  std::unordered_set<std::string> inputNames;
  for (auto &vi : gp.input()) {
    TESSEL_CHECK(!vi.name().empty(), path_, ": ", gname, ": an input has no name");
    TESSEL_CHECK(inputNames.insert(vi.name()).second, path_, ": ", gname, ": input '", vi.name(),
                 "' is listed more than once");
    Type t = vi.has_type() ? convertType(vi.type(), "input '" + vi.name() + "'") : Type();
    auto it = inits.find(vi.name());
    if (it != inits.end()) {
      const Tensor &c = it->second->constant;
      if (t.isTensor()) {
        TESSEL_CHECK(t.dtype == DType::undefined || t.dtype == c.dtype(), path_, ": ", gname,
                     ": input '", vi.name(), "' is declared ", t.str(), " but its initializer is ",
                     c.typeString());
      }
      g.inputs.push_back(it->second);
      continue;
    }
    g.inputs.push_back(g.createValue(vi.name(), t));
  }

  // Order nodes by dependencies (explicit inputs and names their subgraphs capture).
  const int n = gp.node_size();
  std::unordered_map<std::string, int> producer;
  for (int i = 0; i < n; ++i) {
    const auto &np = gp.node(i);
    TESSEL_CHECK(!np.op_type().empty(), path_, ": ", gname, ": node #", i, " ('", np.name(),
                 "') has no op_type");
    for (auto &o : np.output()) {
      if (o.empty())
        continue;
      TESSEL_CHECK(!g.findValue(o) && !producer.count(o), path_, ": ", nodeLabel(np, i),
                   ": output '", o, "' is already defined (values must have one producer)");
      producer[o] = i;
    }
  }
  std::vector<std::vector<int>> deps(n);
  for (int i = 0; i < n; ++i) {
    const auto &np = gp.node(i);
    std::set<std::string> used(np.input().begin(), np.input().end());
    for (auto &a : np.attribute()) {
      if (a.has_g())
        freeVariables(a.g(), used, depth + 1);
      for (auto &sg : a.graphs())
        freeVariables(sg, used, depth + 1);
    }
    for (auto &u : used) {
      if (u.empty())
        continue;
      auto it = producer.find(u);
      if (it != producer.end()) {
        deps[i].push_back(it->second);
        continue;
      }
      TESSEL_CHECK(g.findValue(u) || (g.parent && resolve(*g.parent, u)), path_, ": ",
                   nodeLabel(np, i), ": input '", u,
                   "' is not a graph input, an initializer or the output of any node");
    }
  }
  std::vector<int> order, state(n, 0); // 0 new, 1 on stack, 2 done
  for (int root = 0; root < n; ++root) {
    if (state[root])
      continue;
    std::vector<std::pair<int, size_t>> stack{{root, 0}};
    state[root] = 1;
    while (!stack.empty()) {
      auto &[i, k] = stack.back();
      if (k < deps[i].size()) {
        int d = deps[i][k++];
        if (state[d] == 1)
          fail(path_, ": ", nodeLabel(gp.node(d), d), ": the graph has a cycle through this node");
        if (state[d] == 0) {
          state[d] = 1;
          stack.push_back({d, 0});
        }
        continue;
      }
      state[i] = 2;
      order.push_back(i);
      stack.pop_back();
    }
  }

  for (int i : order) {
    const auto &np = gp.node(i);
    std::string label = nodeLabel(np, i);
    std::vector<Value *> ins;
    for (auto &in : np.input()) {
      if (in.empty()) {
        ins.push_back(nullptr);
        continue;
      }
      Value *v = resolve(g, in);
      TESSEL_CHECK(v, path_, ": ", label, ": input '", in, "' is not defined");
      ins.push_back(v);
    }
    std::vector<std::string> outs(np.output().begin(), np.output().end());
    Node *node = g.appendNode(np.op_type(), ins, outs,
                              np.name().empty() ? np.op_type() + "_" + std::to_string(i) : np.name());
    node->domain = np.domain() == "ai.onnx" ? "" : np.domain();
    for (auto &a : np.attribute()) {
      TESSEL_CHECK(!node->attrs.count(a.name()), path_, ": ", label, ": attribute '", a.name(),
                   "' is given more than once");
      node->attrs[a.name()] = convertAttribute(a, label, g, depth);
    }
    for (Value *o : node->outputs()) {
      if (!o)
        continue;
      auto it = declared.find(o->name());
      if (it != declared.end())
        o->type = convertType(*it->second, "value '" + o->name() + "'");
    }
  }

  std::unordered_set<std::string> outNames;
  for (auto &vi : gp.output()) {
    TESSEL_CHECK(!vi.name().empty(), path_, ": ", gname, ": an output has no name");
    Value *v = resolve(g, vi.name());
    TESSEL_CHECK(v, path_, ": ", gname, ": output '", vi.name(),
                 "' is not produced by any node, input or initializer");
    g.outputs.push_back(v);
  }
}

Model Importer::importModel(const onnx::ModelProto &m) {
  TESSEL_CHECK(m.has_graph(), path_, ": the model has no graph");
  Model model;
  model.irVersion = m.ir_version();
  model.producerName = m.producer_name();
  model.producerVersion = m.producer_version();
  model.graph = std::make_unique<Graph>();
  Graph &g = *model.graph;
  g.sourceFile = path_;
  g.name = m.graph().name();
  for (auto &op : m.opset_import()) {
    std::string domain = op.domain() == "ai.onnx" ? "" : op.domain();
    TESSEL_CHECK(op.version() > 0, path_, ": opset_import for domain '", op.domain(),
                 "' has invalid version ", op.version());
    g.opsets[domain] = op.version();
  }
  if (!g.opsets.count(""))
    g.opsets[""] = m.opset_import_size() == 0 ? 1 : 1;
  TESSEL_CHECK(m.functions_size() == 0, path_,
               ": model-local functions are not supported (found ", m.functions_size(), ")");
  importGraph(m.graph(), g, 0);
  inferShapes(g);
  verifyGraph(g);
  return model;
}

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

Model parseOnnx(const std::string &bytes, const std::string &path) {
  onnx::ModelProto m;
  parseMessage(m, bytes, path, "model");
  Importer imp(path);
  return imp.importModel(m);
}

Model loadOnnx(const std::string &path) { return parseOnnx(readFile(path), path); }

Tensor readTensorProtoFile(const std::string &path) {
  onnx::TensorProto t;
  parseMessage(t, readFile(path), path, "TensorProto");
  Importer imp(path);
  return imp.convertTensor(t, "tensor");
}

namespace {
Object convertSequence(Importer &imp, const onnx::SequenceProto &s, const std::string &path);

Object convertOptional(Importer &imp, const onnx::OptionalProto &o, const std::string &path) {
  switch (o.elem_type()) {
  case onnx::OptionalProto::TENSOR:
    return o.has_tensor_value() ? Object(imp.convertTensor(o.tensor_value(), "optional tensor"))
                                : Object::none();
  case onnx::OptionalProto::SEQUENCE:
    return o.has_sequence_value() ? convertSequence(imp, o.sequence_value(), path)
                                  : Object::none();
  case onnx::OptionalProto::UNDEFINED: return Object::none();
  default: fail(path, ": unsupported optional element type ", o.elem_type());
  }
}

Object convertSequence(Importer &imp, const onnx::SequenceProto &s, const std::string &path) {
  TESSEL_CHECK(s.elem_type() == onnx::SequenceProto::TENSOR ||
                   s.elem_type() == onnx::SequenceProto::UNDEFINED,
               path, ": only sequences of tensors are supported");
  std::vector<Tensor> items;
  for (auto &t : s.tensor_values())
    items.push_back(imp.convertTensor(t, "sequence element"));
  return Object::seq(std::move(items));
}
} // namespace

Object readOnnxValueFile(const std::string &path, const Type *expected) {
  std::string bytes = readFile(path);
  Importer imp(path);
  if (expected && expected->kind == Type::Kind::Sequence) {
    onnx::SequenceProto s;
    parseMessage(s, bytes, path, "SequenceProto");
    return convertSequence(imp, s, path);
  }
  if (expected && expected->kind == Type::Kind::Optional) {
    onnx::OptionalProto o;
    parseMessage(o, bytes, path, "OptionalProto");
    return convertOptional(imp, o, path);
  }
  onnx::TensorProto t;
  parseMessage(t, bytes, path, "TensorProto");
  Tensor r = imp.convertTensor(t, "tensor");
  // ONNX's own test data stores bfloat16 tensors as uint16 bit patterns.
  if (expected && expected->isTensor() && expected->dtype == DType::bf16 && r.dtype() == DType::u16) {
    Tensor b(DType::bf16, r.shape());
    std::memcpy(b.raw(), r.raw(), r.nbytes());
    r = b;
  }
  return Object(r);
}

} // namespace tessel
