//===- OpRegistry.h - ops as attributes of behaviour ------------*- C++ -*-===//
//
// Every op registers, in the file of its family (lib/Graph/Ops/<Family>.cpp), an OpDef: its
// type/shape inference and its reference kernel (the one implementation of its semantics that
// the interpreter runs and every later stage is tested against). Adding an op touches one file.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Graph/IR.h"
#include "tessel/Support/Object.h"

#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace tessel {

/// Typed access to a node's attributes, with errors that name the node.
class AttrReader {
public:
  explicit AttrReader(const Node &n) : node_(n) {}
  const Node &node() const { return node_; }
  bool hasAttr(const std::string &name) const { return node_.attr(name) != nullptr; }
  int64_t attrInt(const std::string &name) const; // required
  int64_t attrInt(const std::string &name, int64_t dflt) const;
  float attrFloat(const std::string &name) const;
  float attrFloat(const std::string &name, float dflt) const;
  std::string attrString(const std::string &name) const;
  std::string attrString(const std::string &name, const std::string &dflt) const;
  std::vector<int64_t> attrInts(const std::string &name) const;
  std::vector<int64_t> attrInts(const std::string &name, std::vector<int64_t> dflt) const;
  std::vector<float> attrFloats(const std::string &name) const;
  std::vector<float> attrFloats(const std::string &name, std::vector<float> dflt) const;
  std::vector<std::string> attrStrings(const std::string &name, std::vector<std::string> dflt = {}) const;
  const Tensor &attrTensor(const std::string &name) const;
  const Graph &attrGraph(const std::string &name) const;
  /// The opset version of the node's domain in the model.
  int64_t opset() const;

  /// Throws an Error prefixed with the node's description.
  template <class... Args> [[noreturn]] void fail(Args &&...args) const {
    ::tessel::fail(node_.describe(), ": ", std::forward<Args>(args)...);
  }
  template <class... Args> void check(bool cond, Args &&...args) const {
    if (!cond)
      fail(std::forward<Args>(args)...);
  }

private:
  const Attribute &get(const std::string &name, Attribute::Kind kind) const;
  const Attribute *find(const std::string &name, Attribute::Kind kind) const;
  const Node &node_;
};

/// What shape inference sees of a node: input types, constant inputs, attributes.
class InferContext : public AttrReader {
public:
  InferContext(const Node &n) : AttrReader(n), outputTypes_(n.numOutputs()) {}
  size_t numInputs() const { return node().numInputs(); }
  bool hasInput(size_t i) const { return node().input(i) != nullptr; }
  const Type &inputType(size_t i) const;
  /// The input's value when it is a constant (initializer or folded), else nullptr.
  const Tensor *inputConstant(size_t i) const;
  size_t numOutputs() const { return node().numOutputs(); }
  bool hasOutput(size_t i) const { return node().output(i) != nullptr; }
  void setOutputType(size_t i, Type t);
  const std::vector<Type> &outputTypes() const { return outputTypes_; }

private:
  std::vector<Type> outputTypes_;
};

/// What a reference kernel sees: input objects, attributes; it sets the outputs.
class KernelContext : public AttrReader {
public:
  using SubgraphRunner =
      std::function<std::vector<Object>(const Graph &, const std::vector<Object> &)>;
  KernelContext(const Node &n, std::vector<const Object *> inputs, SubgraphRunner runner)
      : AttrReader(n), inputs_(std::move(inputs)), outputs_(n.numOutputs()),
        runner_(std::move(runner)) {}

  size_t numInputs() const { return inputs_.size(); }
  /// True when input i was given (not omitted) and is not an empty optional.
  bool hasInput(size_t i) const { return i < inputs_.size() && inputs_[i] && !inputs_[i]->isNone(); }
  /// Input i as a tensor; an Error naming the node when missing or not a tensor.
  const Tensor &input(size_t i) const;
  const Object &inputObject(size_t i) const;
  size_t numOutputs() const { return outputs_.size(); }
  bool hasOutput(size_t i) const { return i < outputs_.size() && node().output(i) != nullptr; }
  void setOutput(size_t i, Tensor t) { setOutputObject(i, Object(std::move(t))); }
  void setOutputObject(size_t i, Object o);
  std::vector<Object> &outputs() { return outputs_; }
  /// Runs a subgraph (If/Loop/Scan body) with the given inputs; outer-scope values are visible.
  std::vector<Object> runSubgraph(const Graph &g, const std::vector<Object> &inputs) const {
    return runner_(g, inputs);
  }

private:
  std::vector<const Object *> inputs_;
  std::vector<Object> outputs_;
  SubgraphRunner runner_;
};

using InferFn = std::function<void(InferContext &)>;
using KernelFn = std::function<void(KernelContext &)>;
/// Lowering to tensor expressions: reads the node and its input te::Tensors from the context and
/// sets the output te::Tensors (include/tessel/Graph/Lowering.h).
class LowerContext;
using LowerFn = std::function<void(LowerContext &)>;
/// A kernel written in loop IR for an op whose output shapes depend on the data (Lowering.h).
struct DynamicKernel;

/// How an op combines with its neighbours in operator fusion (FuseOps, include/tessel/Graph/
/// Fusion.h, docs/fusion.md): TVM's TOpPattern classes, ordered from most to least fusable.
enum class OpPattern : uint8_t {
  /// Output element i depends only on element i of each input, all of the output's shape
  /// (Relu, Exp, Neg, Cast).
  ElemWise,
  /// Elementwise after numpy broadcasting of the inputs (Add, Mul, Where, PRelu, Max, ...).
  Broadcast,
  /// Each output element reads one input element (or a few) at an index computed from its own
  /// index, with no arithmetic across elements (Reshape, Transpose, Concat, Slice, Gather, Pad).
  Injective,
  /// A commutative reduction over some axes (ReduceSum, ReduceMean, ArgMax,
  /// GlobalAveragePool); its inputs may be injective computations fused into it.
  CommReduce,
  /// A complex op (Conv, MatMul, Gemm) whose output can take an elementwise/broadcast epilogue
  /// (bias, ReLU, residual add) fused after it, but nothing fused before it.
  OutEWiseFusable,
  /// Fuses with nothing: control flow, random, sequence and string ops, multi-stage ops.
  Opaque,
};

struct OpDef {
  std::string name;
  std::string domain;       // "" = ai.onnx
  int sinceVersion = 1;     // first opset version supported
  int untilVersion = 17;    // last opset version supported
  int minInputs = 0, maxInputs = 1 << 20;
  int minOutputs = 1, maxOutputs = 1 << 20;
  std::string dtypes;       // for docs: "float, int" / "all numeric" ...
  std::string notes;        // for docs
  InferFn infer;
  KernelFn kernel;
  OpPattern pattern = OpPattern::Opaque; // fusion class (FuseOps); Opaque fuses with nothing
  LowerFn lower{}; // the TE compute of the op (Lowering.h); empty = no lowering
  /// For an op whose output shapes depend on its input values, instead of `lower`.
  std::shared_ptr<const DynamicKernel> dynamicKernel{};
};

class OpRegistry {
public:
  /// The registry with every op family registered.
  static const OpRegistry &get();
  void add(OpDef def);
  /// Sets the lowering of every registered version of (ai.onnx) op `name`: how a family file
  /// attaches the lowerings written next to its ops. Error when no such op is registered.
  void setLower(const std::string &name, LowerFn fn);
  /// The same for an op's DynamicKernel (Lowering.h).
  void setDynamicKernel(const std::string &name, std::shared_ptr<const DynamicKernel> kernel);
  /// The op for (domain, name) valid at `opsetVersion`, or nullptr.
  const OpDef *lookup(const std::string &domain, const std::string &name, int64_t opsetVersion) const;
  /// The op for (domain, name) at any version, or nullptr.
  const OpDef *lookupAny(const std::string &domain, const std::string &name) const;
  const std::vector<OpDef> &all() const { return ops_; }

private:
  std::vector<OpDef> ops_;
};

/// Runs type/shape inference over a graph (and its subgraphs), setting each node output's type.
/// Errors name the node and what was wrong (e.g. incompatible shapes).
void inferShapes(Graph &g);
/// Inference of one node: the output types (does not modify the graph).
std::vector<Type> inferNode(const Node &n);

} // namespace tessel
