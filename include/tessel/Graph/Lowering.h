//===- Lowering.h - graph ops to tensor expressions ------------*- C++ -*-===//
//
// Every op that can be compiled registers, next to its inference and reference kernel in
// lib/Graph/Ops/<Family>.cpp, a lowering: a function that reads a LowerContext (the node, its
// attributes and static types, the te::Tensor of each input, the values of constant inputs) and
// sets the te::Tensor of each output as a TE compute (no schedule: the compiler applies one
// later). A case a lowering does not handle throws a tessel::Error naming the node and the case.
//
//   auto outs = lowerNode(node, {X, W, B});          // te::Tensors of the node's outputs
//   LoweredNode ln = lowerNode(node);                // placeholders made from the input types
//   auto f = tessel::build(te::create_schedule(ln.outputs), ln.args());
//
// The helpers below (broadcast index maps, axis normalization, padded loads, dtype checks) are
// shared by the family files. docs/lowering.md lists the ops with a lowering and their limits.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Graph/OpRegistry.h"
#include "tessel/TE/Tensor.h"

#include <functional>
#include <string>
#include <vector>

namespace tessel {

/// What a lowering sees: the node (attributes, types), the input te::Tensors, constant inputs'
/// values; it sets the output te::Tensors.
class LowerContext : public AttrReader {
public:
  /// `inputs` has one entry per node input (undefined te::Tensor for an omitted one).
  LowerContext(const Node &n, std::vector<te::Tensor> inputs);

  size_t numInputs() const { return inputs_.size(); }
  /// True when input i was given (not omitted).
  bool hasInput(size_t i) const { return i < inputs_.size() && inputs_[i].defined(); }
  /// Input i; an Error naming the node when it is missing.
  const te::Tensor &input(size_t i) const;
  /// The static shape of input i (Error naming the node when it is not a tensor of static shape).
  std::vector<int64_t> inputShape(size_t i) const;
  DType inputDType(size_t i) const;
  /// Input i's value when it is a constant (initializer or folded), else nullptr.
  const Tensor *inputConstant(size_t i) const;
  /// Input i's value as integers; an Error naming the node and `what` when it is not a constant.
  std::vector<int64_t> constantInts(size_t i, const char *what) const;
  /// Input i's value as doubles; an Error naming the node and `what` when it is not a constant.
  std::vector<double> constantFloats(size_t i, const char *what) const;

  size_t numOutputs() const { return node().numOutputs(); }
  bool hasOutput(size_t i) const { return node().output(i) != nullptr; }
  /// The static shape / dtype of output i (from shape inference).
  std::vector<int64_t> outputShape(size_t i) const;
  DType outputDType(size_t i) const;
  /// Sets output i; checks its shape and dtype against the node's output type.
  void setOutput(size_t i, te::Tensor t);
  const std::vector<te::Tensor> &outputs() const { return outputs_; }

  /// te::compute named name(what), kept alive until the node's lowering is scheduled. Every
  /// intermediate compute of a lowering must be made this way (or passed to keep()): a TE
  /// compute does not own the tensors it reads, so an intermediate held only by a local would
  /// be gone when the schedule looks for it.
  template <class F>
  te::Tensor compute(std::vector<loop::Expr> shape, F &&f, const std::string &what = "") const {
    return keep(te::compute(std::move(shape), std::forward<F>(f), name(what)));
  }
  te::Tensor keep(te::Tensor t) const {
    stages_.push_back(t);
    return t;
  }
  /// Every compute made by compute()/keep() and the outputs, in order of creation.
  const std::vector<te::Tensor> &stages() const { return stages_; }

  /// A kernel name that says what it is: "<op>_<dtype>_<node name>" plus "_<what>" for an
  /// intermediate compute ("conv_f32_conv1_pad").
  std::string name(const std::string &what = "") const;

  /// Lowering at f32 a node whose f16/bf16 values lowerNode widened (it sums or multiplies
  /// them): outputDType reports f32 for an f16/bf16 output, and setOutput expects it.
  void setWidened(bool w) { widened_ = w; }

private:
  bool widened_ = false;
  std::vector<te::Tensor> inputs_;
  std::vector<te::Tensor> outputs_;
  mutable std::vector<te::Tensor> stages_;
};

/// True when the node's op (at the model's opset) has a lowering.
bool hasLowering(const Node &n);
/// A lowered node. Keep it alive until its outputs are scheduled (te::create_schedule): it
/// holds the intermediate computes.
struct LoweredNode {
  std::vector<te::Tensor> inputs;  ///< undefined for omitted inputs
  std::vector<te::Tensor> outputs; ///< undefined for omitted outputs
  std::vector<te::Tensor> stages;  ///< every compute the lowering made (intermediates included)
  /// The defined outputs (what te::create_schedule takes).
  std::vector<te::Tensor> definedOutputs() const;
  /// Whether input i is read by the computes (inputs used only as constant values, or only for
  /// their type as CastLike's, are not).
  std::vector<bool> inputUsed;
  /// The arguments of tessel::build: the used inputs then the defined outputs, in order.
  std::vector<te::Tensor> args() const;
};
/// Lowers one node given its input tensors (one per node input; undefined for an omitted one).
/// Error naming the node when its op has no lowering or the case is unsupported.
LoweredNode lowerNode(const Node &n, const std::vector<te::Tensor> &inputs);
/// Lowers one node over fresh placeholders (one per given input, named after the value).
LoweredNode lowerNode(const Node &n);

/// The names of the ops (ai.onnx) that have a lowering or a DynamicKernel, sorted; with their
/// notes for docs.
struct LoweringInfo {
  std::string op;
  std::string dtypes;
  std::string notes;
};
std::vector<LoweringInfo> loweringList();

//===----------------------------------------------------------------------===//
// Data-dependent output shapes: kernels written directly in loop IR
//===----------------------------------------------------------------------===//

/// The static upper bound of one output of an op whose output shape depends on its input
/// values (NonZero, Unique, Compress, NonMaxSuppression): the caller's buffer holds `shape`,
/// and the extent of dim `axis` is decided at run time (0 .. shape[axis]). axis -1: the
/// output's shape is exactly `shape`.
struct DynamicOutputBound {
  std::vector<int64_t> shape;
  int64_t axis = -1;
};

/// What a DynamicKernel's body sees: the node (attributes, static input shapes, constant
/// inputs) and flat loop-IR buffers. Every buffer is one-dimensional and row-major:
///  - input(i): the input's elements (extent: its element count, 1 for a scalar);
///  - output(i): the bound's element count. The kernel writes the output in the bound's
///    layout: the element at actual multi-index (i0, i1, ...) at the row-major position of
///    (i0, i1, ...) in the bound's shape (for dynamic axis 0 the same as compact), and sets
///    every element of the bound outside the actual shape to zero of the dtype (false for
///    bool), so that kernels compiled over the bound's static shape read it as a whole and see
///    zeros, never stale memory (the runtime compacts model outputs after the run);
///  - extent(i) (i64, one element): for an output whose bound has a dynamic axis, the kernel
///    stores that axis's actual extent in element 0.
/// lowering::endDynamicOutput stores an extent and zeroes the bound past it.
class DynamicKernelContext : public AttrReader {
public:
  DynamicKernelContext(const Node &n, std::vector<DynamicOutputBound> bounds);

  size_t numInputs() const { return inputs_.size(); }
  bool hasInput(size_t i) const { return i < inputs_.size() && inputs_[i].defined(); }
  /// Input i's buffer; an Error naming the node when it is missing.
  const loop::Buffer &input(size_t i) const;
  std::vector<int64_t> inputShape(size_t i) const;
  DType inputDType(size_t i) const;
  /// Input i's value when it is a constant (initializer or folded), else nullptr.
  const Tensor *inputConstant(size_t i) const;

  size_t numOutputs() const { return outputs_.size(); }
  bool hasOutput(size_t i) const { return i < outputs_.size() && outputs_[i].defined(); }
  const loop::Buffer &output(size_t i) const;
  DType outputDType(size_t i) const;
  const DynamicOutputBound &bound(size_t i) const;
  /// Output i's extent slot (undefined Buffer when output i has no dynamic axis or is omitted).
  const loop::Buffer &extent(size_t i) const { return extents_.at(i); }

  /// The kernel's parameters: each given input, then each given output, then each extent slot
  /// (in output order): the order of the execution-plan step's arguments.
  std::vector<loop::Param> params() const;
  /// "<op>_<node name>[_<what>]", for local buffers' names.
  std::string name(const std::string &what = "") const;

private:
  std::vector<loop::Buffer> inputs_, outputs_, extents_;
  std::vector<DynamicOutputBound> bounds_;
};

/// The kernel of an op whose output shapes depend on its input values: instead of a TE
/// lowering (which needs static shapes), the op registers (OpRegistry::setDynamicKernel) the
/// bound of each output and a loop-IR body. FuseOps keeps such a node alone (Opaque); the
/// compiler builds its function with buildDynamicKernel, and the artifact records each dynamic
/// output's extent slot (docs/artifact.md).
struct DynamicKernel {
  /// One bound per node output (an omitted output's entry is ignored), from the node's static
  /// input shapes, attributes and constant inputs; an Error naming the node when there is none.
  std::function<std::vector<DynamicOutputBound>(const AttrReader &node)> bounds;
  /// The statement that computes every given output and extent (see DynamicKernelContext):
  /// each output's whole bound-sized buffer, in the bound's layout with zeros outside the
  /// actual shape. It must stay inside the buffers for any input values (a hostile input must
  /// not make it write out of bounds). Its local buffers (Allocate) follow the emitter's rule:
  /// at most 512 KiB of a function's allocations on the stack, the rest on the heap.
  std::function<loop::Stmt(const DynamicKernelContext &ctx)> body;
};

/// True when the node's op has a DynamicKernel.
bool hasDynamicKernel(const Node &n);
/// The output bounds of a node whose op has a DynamicKernel (Error naming the node otherwise).
std::vector<DynamicOutputBound> dynamicOutputBounds(const Node &n);
/// A node's DynamicKernel as a loop-IR function named `symbol` (params: DynamicKernelContext::
/// params), ready for loop::lowerPipeline and code generation, with the bounds it was built for.
struct DynamicKernelFunc {
  loop::LoweredFunc func;
  std::vector<DynamicOutputBound> bounds; ///< one per node output
};
DynamicKernelFunc buildDynamicKernel(const Node &n, const std::string &symbol);

//===----------------------------------------------------------------------===//
// Helpers shared by the lowerings of the op families
//===----------------------------------------------------------------------===//
namespace lowering {

using loop::Expr;
using loop::Var;

/// Static shape as TE shape expressions.
std::vector<Expr> shapeExprs(const std::vector<int64_t> &shape);
/// Numpy broadcasting: the index into an input of shape `in` for output indices `out` (right
/// aligned; a broadcast dimension of extent 1 reads index 0).
std::vector<Expr> broadcastIndex(const std::vector<Var> &out, const std::vector<int64_t> &in);
/// Combines leaf(k) for k in [begin, end) (non-empty) as a balanced binary tree:
/// combine(mid, tree(begin, mid), tree(mid, end)) (a select tree over many cases stays of depth
/// log2 instead of a chain as deep as the cases).
template <class Leaf, class Combine>
Expr balancedTree(size_t begin, size_t end, const Leaf &leaf, const Combine &combine) {
  if (end - begin == 1)
    return leaf(begin);
  const size_t mid = begin + (end - begin) / 2;
  return combine(mid, balancedTree(begin, mid, leaf, combine),
                 balancedTree(mid, end, leaf, combine));
}
/// The row-major linear index of `idx` (one index per dim) in a tensor of extents `dims` (i64).
Expr rowMajorIndex(const std::vector<Expr> &idx, const std::vector<int64_t> &dims);
/// axis in [-rank, rank) -> [0, rank); an Error naming the node and `what` otherwise.
int64_t normalizeAxis(const LowerContext &ctx, int64_t axis, int64_t rank, const char *what = "axis");
/// t[idx] where every index is in range, else `padValue`. The load itself uses clamped indices
/// (a Select evaluates both sides, so the load must stay in bounds).
Expr loadPadded(const te::Tensor &t, const std::vector<Expr> &idx, const std::vector<int64_t> &shape,
                Expr padValue);
/// The dtypes generated code handles (f32, f64, signed/unsigned integers, bool).
bool isLowerableDType(DType dt);
/// Error naming the node and `what` when dt is not lowerable.
void checkDType(const LowerContext &ctx, DType dt, const char *what);
/// A literal of dtype dt.
Expr constant(DType dt, double v);
/// Elementwise map with numpy broadcasting of every defined input to output 0's shape:
/// out[i] = f({in0[bcast(i)], in1[bcast(i)], ...}); sets output 0.
void lowerBroadcast(LowerContext &ctx, const std::function<Expr(const std::vector<Expr> &)> &f);
/// ONNX integer division (truncation toward zero) from the loop IR's floor division.
Expr truncDiv(Expr a, Expr b);
/// A compute (ctx.compute) that the default schedule keeps as a stored root stage, computed
/// once, instead of inlining it into every reader: its value is written as a sum over one unit
/// reduction axis. For intermediates read many times (DFT twiddle tables) or chained
/// (recurrent states, Det's eliminated blocks: inlined into each other they would re-expand
/// the whole chain).
te::Tensor storedCompute(const LowerContext &ctx, std::vector<Expr> shape,
                         const std::function<Expr(const std::vector<Var> &)> &f,
                         const std::string &what);

//--- Building blocks of the DynamicKernels (data-dependent output shapes, docs/lowering.md)

/// Whether input i of the node is given (not omitted).
bool hasNodeInput(const AttrReader &node, size_t i);
/// Input i's static shape, for a DynamicKernel's bounds; an Error naming the node otherwise.
std::vector<int64_t> nodeInputShape(const AttrReader &node, size_t i);
/// Input i's value when it is a constant (initializer or folded), else nullptr.
const Tensor *nodeInputConstant(const AttrReader &node, size_t i);

/// A scalar variable of loop IR: a one-element local buffer (the loop IR has no mutable
/// variables). The statements that use it go inside alloc().
struct LocalScalar {
  loop::Buffer buf;
  LocalScalar(const std::string &name, DType dt);
  Expr get() const;
  loop::Stmt set(Expr v) const;
  /// v += 1
  loop::Stmt increment() const;
  loop::Stmt alloc(loop::Stmt body) const;
};
/// A one-dimensional local buffer of n elements (scope "local", for an Allocate).
loop::Buffer localBuffer(const std::string &name, DType dt, int64_t n);
/// Allocate(bufs[0], Allocate(bufs[1], ... body)).
loop::Stmt allocateAll(const std::vector<loop::Buffer> &bufs, loop::Stmt body);
/// A serial loop: for v in [lo, lo + extent): body(v) (v: i64 named `name`).
loop::Stmt forRange(const std::string &name, Expr lo, Expr extent,
                    const std::function<loop::Stmt(Expr)> &body);
/// `let name = value in body(var)`, for a value read more than once.
loop::Stmt letIn(const std::string &name, Expr value, const std::function<loop::Stmt(Expr)> &body);
/// Named intermediate values of a statement, so that a formula reads as in its reference:
///   LetChain lets; Expr area = lets("area", w * h); ...; Stmt s = lets.wrap(body);
/// gives `let %area = w * h { ... body }` (each value may use the earlier ones).
struct LetChain {
  std::vector<std::pair<Var, Expr>> lets;
  Expr operator()(const std::string &name, Expr value);
  loop::Stmt wrap(loop::Stmt body) const;
};
/// x is NaN (x != x: the loop IR's float NE is unordered; never folded for floats).
Expr isNaN(Expr x);
/// The total order of Unique and sorting: a < b with NaN after every number and equal to
/// every NaN (integers and bools: a < b).
Expr totalLess(Expr a, Expr b);

/// A test that may need statements first: run `prefix` (undefined: none), then read `value`
/// (a boolean).
struct PrefixedCond {
  loop::Stmt prefix;
  Expr value;
};
/// One array a sort permutes: its elements and a scratch buffer of the same dtype, both of the
/// sort's capacity.
struct SortColumn {
  loop::Buffer data, scratch;
};
/// Sorts the rows [0, n) of `columns` (parallel arrays, n <= capacity) stably by
/// `before(x, y)`: row x goes strictly before row y, given each column's value of both rows.
/// Carrying the sort key as a column (not only an index to load it through) keeps the merge's
/// reads sequential. A bottom-up merge sort: ceil(log2 n) passes of branch-free merges of
/// sorted runs of width 1, 2, 4, ..., each pass from one buffer to the other, with a copy back
/// when the number of passes is odd: O(n log n) comparisons, every index in [0, n). `name`
/// prefixes its loop variables and scalars.
loop::Stmt stableMergeSort(
    const std::vector<SortColumn> &columns, Expr n, int64_t capacity,
    const std::function<PrefixedCond(const std::vector<Expr> &x, const std::vector<Expr> &y)>
        &before,
    const std::string &name);

/// The end of output i of a DynamicKernel (DynamicKernelContext: written in the bound's
/// layout): stores `extent` (i64, in [0, the bound's dim]) as the actual extent of the bound's
/// dynamic axis in the output's extent slot, and sets every element of the bound whose index
/// along that axis is >= extent to zero of the output's dtype (false for bool), so that no
/// element of the buffer is left stale. For each index of the dims before the axis, one loop
/// over the contiguous tail of the bound's row-major layout.
loop::Stmt endDynamicOutput(const DynamicKernelContext &ctx, size_t i, Expr extent);

} // namespace lowering
} // namespace tessel
