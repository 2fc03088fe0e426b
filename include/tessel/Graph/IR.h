//===- IR.h - the graph IR --------------------------------------*- C++ -*-===//
//
// A Graph is a list of Nodes in topological order over SSA Values. A Value is produced by one
// node (or is a graph input or an initializer, i.e. a constant weight) and used by any number of
// nodes. Types are tensor types (dtype + shape with static, symbolic or unknown dims) or, for
// ONNX's sequence and optional values, a kind with an element type. Subgraphs (If/Loop/Scan
// bodies) are Graphs held in node attributes; a subgraph Value that names an outer-scope value
// is a capture (`outer` points at the outer Value).
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Support/Tensor.h"

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace tessel {

/// One dimension: static (value >= 0), symbolic (named), or unknown.
struct Dim {
  int64_t value = -1;
  std::string symbol;

  Dim() = default;
  Dim(int64_t v) : value(v) {}
  static Dim sym(std::string s) {
    Dim d;
    d.symbol = std::move(s);
    return d;
  }
  bool isStatic() const { return value >= 0; }
  bool isSymbolic() const { return value < 0 && !symbol.empty(); }
  bool isUnknown() const { return value < 0 && symbol.empty(); }
  bool operator==(const Dim &o) const { return value == o.value && symbol == o.symbol; }
  std::string str() const; // "3", "N", "?"
};

/// A shape: unknown rank, or a list of dims.
struct Shape {
  bool rankKnown = false;
  std::vector<Dim> dims;

  Shape() = default;
  Shape(std::vector<Dim> d) : rankKnown(true), dims(std::move(d)) {}
  static Shape unknownRank() { return Shape(); }
  static Shape of(const std::vector<int64_t> &s) {
    std::vector<Dim> d(s.begin(), s.end());
    return Shape(std::move(d));
  }
  static Shape unknownDims(int64_t rank) { return Shape(std::vector<Dim>(rank)); }
  int64_t rank() const { return int64_t(dims.size()); }
  bool isStatic() const; // rank known and every dim static
  std::vector<int64_t> staticDims() const; // requires isStatic()
  bool operator==(const Shape &o) const { return rankKnown == o.rankKnown && dims == o.dims; }
  std::string str() const; // "[1,3,N,?]" or "[*]"
};

/// The type of a Value.
struct Type {
  enum class Kind : uint8_t { Unknown, Tensor, Sequence, Optional };
  Kind kind = Kind::Unknown;
  DType dtype = DType::undefined; // Tensor: element type (undefined = unknown)
  Shape shape;                    // Tensor: shape
  std::shared_ptr<Type> elem;     // Sequence/Optional: element type

  static Type unknown() { return Type(); }
  static Type tensor(DType dt, Shape s = Shape()) {
    Type t;
    t.kind = Kind::Tensor;
    t.dtype = dt;
    t.shape = std::move(s);
    return t;
  }
  static Type sequence(Type e) {
    Type t;
    t.kind = Kind::Sequence;
    t.elem = std::make_shared<Type>(std::move(e));
    return t;
  }
  static Type optional(Type e) {
    Type t;
    t.kind = Kind::Optional;
    t.elem = std::make_shared<Type>(std::move(e));
    return t;
  }
  bool isTensor() const { return kind == Kind::Tensor; }
  bool operator==(const Type &o) const;
  std::string str() const; // "f32[1,3]", "seq<f32[*]>", "opt<...>", "?"
};

class Graph;
class Node;
class Value;

/// A node attribute (ONNX AttributeProto).
struct Attribute {
  enum class Kind : uint8_t { Float, Int, String, Tensor, Graph, Floats, Ints, Strings, Tensors, Graphs, TypeAttr };
  Kind kind = Kind::Int;
  float f = 0;
  int64_t i = 0;
  std::string s;
  tessel::Tensor t;
  std::shared_ptr<tessel::Graph> g;
  std::vector<float> floats;
  std::vector<int64_t> ints;
  std::vector<std::string> strings;
  std::vector<tessel::Tensor> tensors;
  std::vector<std::shared_ptr<tessel::Graph>> graphs;
  tessel::Type type;

  static Attribute ofInt(int64_t v) {
    Attribute a;
    a.kind = Kind::Int;
    a.i = v;
    return a;
  }
  static Attribute ofInts(std::vector<int64_t> v) {
    Attribute a;
    a.kind = Kind::Ints;
    a.ints = std::move(v);
    return a;
  }
};
std::string_view attributeKindName(Attribute::Kind k);

struct Use {
  Node *user;
  size_t operand;
};

class Value {
public:
  const std::string &name() const { return name_; }
  Type type;
  /// Defined for initializers (weights) and folded constants.
  Tensor constant;
  bool isConstant() const { return constant.defined(); }
  /// For a subgraph capture: the outer-scope value it names.
  Value *outer = nullptr;

  Node *producer() const { return producer_; }
  size_t producerOutput() const { return producerOutput_; }
  const std::vector<Use> &uses() const { return uses_; }
  Graph *graph() const { return graph_; }
  void replaceAllUsesWith(Value *v);

private:
  friend class Graph;
  friend class Node;
  std::string name_;
  Node *producer_ = nullptr;
  size_t producerOutput_ = 0;
  std::vector<Use> uses_;
  Graph *graph_ = nullptr;
};

class Node {
public:
  std::string name;
  std::string opType;
  std::string domain; // "" = ai.onnx
  std::map<std::string, Attribute> attrs;

  /// Inputs; an omitted optional input is nullptr.
  const std::vector<Value *> &inputs() const { return inputs_; }
  Value *input(size_t i) const { return i < inputs_.size() ? inputs_[i] : nullptr; }
  size_t numInputs() const { return inputs_.size(); }
  /// Outputs; an omitted optional output is nullptr.
  const std::vector<Value *> &outputs() const { return outputs_; }
  Value *output(size_t i) const { return i < outputs_.size() ? outputs_[i] : nullptr; }
  size_t numOutputs() const { return outputs_.size(); }

  void setInput(size_t i, Value *v);
  void addInput(Value *v);
  const Attribute *attr(const std::string &n) const {
    auto it = attrs.find(n);
    return it == attrs.end() ? nullptr : &it->second;
  }
  Graph *graph() const { return graph_; }
  /// "node 'conv1' (Conv)": how diagnostics name a node.
  std::string describe() const;

private:
  friend class Graph;
  std::vector<Value *> inputs_;
  std::vector<Value *> outputs_;
  Graph *graph_ = nullptr;
};

class Graph {
public:
  Graph() = default;
  Graph(const Graph &) = delete;
  Graph &operator=(const Graph &) = delete;

  std::string name;
  /// Opset imports: domain ("" = ai.onnx) -> version. Subgraphs inherit their parent's.
  std::map<std::string, int64_t> opsets;
  Graph *parent = nullptr;
  std::string sourceFile; // for diagnostics

  std::vector<Value *> inputs;       // graph inputs, in order (may include initializers)
  std::vector<Value *> outputs;      // graph outputs, in order
  std::vector<Value *> initializers; // constants, in declaration order

  /// Nodes in topological order.
  const std::vector<std::unique_ptr<Node>> &nodes() const { return nodes_; }
  const std::vector<std::unique_ptr<Value>> &values() const { return values_; }

  /// New value owned by this graph; the name must be unique in the graph.
  Value *createValue(const std::string &name, Type type = Type());
  Value *findValue(const std::string &name) const;
  /// Renames a value of this graph; an Error if another value already has the name.
  void renameValue(Value *v, const std::string &name);
  /// Graph outputs keep their names through rewrites (users and files are keyed by them): for
  /// each output position whose value is no longer named `names[i]`, give the value that name
  /// back (renaming a dead holder of the name aside), or, where the value is a graph input, an
  /// initializer or another output, route it through an Identity node of that name.
  void restoreOutputNames(const std::vector<std::string> &names);
  /// Appends a node; `outputNames` gives one output per entry ("" = omitted output).
  Node *appendNode(std::string opType, std::vector<Value *> inputs,
                   const std::vector<std::string> &outputNames, std::string nodeName = "");
  /// Removes a node whose outputs have no uses.
  void eraseNode(Node *n);
  /// Stable topological re-sort of the nodes (after appending nodes that must come earlier);
  /// an Error on a cycle. Subgraph captures count as uses of the node holding the subgraph.
  void sortTopologically();
  /// Returns a name not used in this graph, starting with `base`.
  std::string uniqueName(const std::string &base) const;

  int64_t opsetVersion(const std::string &domain = "") const;
  const Graph *root() const { return parent ? parent->root() : this; }

private:
  std::vector<std::unique_ptr<Node>> nodes_;
  std::vector<std::unique_ptr<Value>> values_;
  std::unordered_map<std::string, Value *> byName_;
};

/// Appends to `out` the values of graph `owner` that subgraph `sub` (or a subgraph nested in it)
/// captures: the implicit inputs of the node holding `sub`.
void collectCaptures(const Graph &sub, const Graph &owner, std::vector<const Value *> &out);
/// Appends to `out` the values of g that the subgraphs of node n (at any depth) capture.
void collectNodeCaptures(const Node &n, const Graph &g, std::vector<const Value *> &out);

/// Checks SSA and structural invariants; throws Error naming the first violation.
void verifyGraph(const Graph &g);

} // namespace tessel
