//===- Tensor.h - tensor expressions (placeholder, compute, reduce) -*- C++ -*-===//
//
// Tensor expressions are tessel's TVM `te`: a Tensor is the output of an Operation, either a
// placeholder (an input) or a compute (out[i, j, ...] = body(i, j, ...)). Compute bodies ARE
// loop IR expressions (include/tessel/Loop/IR.h): `A(i, j)` is a multi-dimensional Load of A's
// buffer, so every loop IR operator, cast and intrinsic is available in a body:
//
//   auto n = te::var("n");
//   auto A = te::placeholder({n}, DType::f32, "A");
//   auto B = te::compute(A.shape(), [&](Var i) { return A(i) + 1.0f; }, "B");
//   auto k = te::reduce_axis({0, n}, "k");
//   auto S = te::compute({1}, [&](Var) { return te::sum(A(k), {k}); }, "S");
//
// A reduction (sum/max/min/prod) must be the whole body of its compute, as in TVM; the compute
// lambda then returns a te::Reduction instead of an Expr. Lowering to loop IR is in Lower.h,
// scheduling in Schedule.h; docs/te.md describes the whole API.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Loop/IR.h"

#include <memory>
#include <optional>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

namespace tessel::te {

using loop::Buffer;
using loop::Expr;
using loop::Type;
using loop::Var;
using loop::cast;
using loop::select;

/// [min, min + extent) of an integer index.
struct Range {
  Expr min, extent;
  Range() = default;
  Range(Expr mn, Expr ext) : min(std::move(mn)), extent(std::move(ext)) {}
};

enum class IterKind : uint8_t {
  DataPar, ///< an output axis of a compute
  Reduce,  ///< a reduction axis (te::reduce_axis)
};

struct IterVarNode {
  Var var;
  Range dom;
  IterKind kind = IterKind::DataPar;
};

/// An iteration axis: a loop variable with its range and kind. An IterVar IS a Var (so it can
/// be used in index expressions: `A(i, k)`), and identity is its variable's identity.
class IterVar : public Var {
public:
  IterVar() = default;
  IterVar(Var v, Range dom, IterKind kind);
  const Range &dom() const { return node_->dom; }
  IterKind iterKind() const { return node_->kind; }
  bool isReduce() const { return node_->kind == IterKind::Reduce; }
  const Var &var() const { return node_->var; }
  /// Identity: the same iteration axis.
  bool same_as(const IterVar &o) const { return get() == o.get(); }

private:
  std::shared_ptr<const IterVarNode> node_;
};

/// A reduction axis over `dom` (TVM's te.reduce_axis).
IterVar reduce_axis(Range dom, const std::string &name = "k");

/// A scalar integer variable (a symbolic shape, a scalar parameter): i64 unless told.
Var var(const std::string &name, Type type = Type::i64());

/// A reduction: combine `source` over `axes` starting from `init`, where `condition` holds.
/// Returned by sum/max/min/prod; a compute lambda may return one (as its whole body).
struct Reduction {
  loop::ReduceOp op = loop::ReduceOp::Add;
  Expr source;
  std::vector<IterVar> axes;
  Expr init;      ///< the starting value (the combiner's identity when not given)
  Expr condition; ///< optional: iterations where it is false contribute nothing
};

/// sum/max/min/prod of `source` over `axes` (each a reduce_axis). `init`, when given, is the
/// starting value instead of the identity (0, -inf/lowest, +inf/highest, 1); `where` skips
/// iterations where it is false.
Reduction sum(Expr source, std::vector<IterVar> axes, Expr init = Expr(), Expr where = Expr());
Reduction max(Expr source, std::vector<IterVar> axes, Expr init = Expr(), Expr where = Expr());
Reduction min(Expr source, std::vector<IterVar> axes, Expr init = Expr(), Expr where = Expr());
Reduction prod(Expr source, std::vector<IterVar> axes, Expr init = Expr(), Expr where = Expr());

/// The combiner's identity for `type` (0 for Add, lowest/-inf for Max, ...).
Expr reduceIdentity(loop::ReduceOp op, Type type);
/// combine(a, b) for the combiner (a + b, max(a, b), ...).
Expr reduceCombine(loop::ReduceOp op, Expr a, Expr b);

/// cond ? a : b (TVM's if_then_else; both sides are evaluated: it is a Select).
Expr if_then_else(Expr cond, Expr a, Expr b);

enum class OpKind : uint8_t { Placeholder, Compute };

struct OperationNode {
  OpKind kind = OpKind::Placeholder;
  std::string name;
  DType dtype = DType::f32;
  std::vector<Expr> shape;
  /// The tensor's storage as seen by expressions: `T(i, j)` loads from it. For an argument
  /// of a lowered function this is its parameter buffer.
  Buffer buffer;
  // Compute only:
  std::vector<IterVar> axis;        ///< one DataPar axis per output dimension
  std::vector<IterVar> reduceAxis;  ///< the reduction's axes (empty: no reduction)
  Expr body;                        ///< the value (non-reduction computes)
  std::optional<Reduction> reduce;  ///< the value (reduction computes)
  /// The operations whose tensors the body reads: holding them keeps every producer alive as
  /// long as a consumer is (a compute held only by a local variable stays schedulable).
  std::vector<std::shared_ptr<const OperationNode>> inputs;
};

/// The output of an operation (placeholder or compute). Copies share the operation.
class Tensor {
public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<const OperationNode> op) : op_(std::move(op)) {}

  bool defined() const { return op_ != nullptr; }
  const OperationNode *op() const { return op_.get(); }
  const std::shared_ptr<const OperationNode> &opPtr() const { return op_; }
  bool same_as(const Tensor &o) const { return op_ == o.op_; }

  const std::string &name() const { return op_->name; }
  DType dtype() const { return op_->dtype; }
  const std::vector<Expr> &shape() const { return op_->shape; }
  size_t ndim() const { return op_->shape.size(); }
  const Buffer &buffer() const { return op_->buffer; }
  bool isPlaceholder() const { return op_->kind == OpKind::Placeholder; }
  /// The output axes of a compute (empty for a placeholder): `auto x = C.axis(0)`.
  const std::vector<IterVar> &axis() const { return op_->axis; }
  const IterVar &axis(size_t i) const;
  /// The reduction axes of a compute.
  const std::vector<IterVar> &reduceAxis() const { return op_->reduceAxis; }
  const IterVar &reduceAxis(size_t i) const;

  /// T[indices]: an element access, one index per dimension (Error otherwise).
  Expr access(std::vector<Expr> indices) const;
  template <class... Ix> Expr operator()(Ix &&...ix) const {
    return access(std::vector<Expr>{toExpr(std::forward<Ix>(ix))...});
  }

private:
  template <class T> static Expr toExpr(T &&v) {
    if constexpr (std::is_base_of_v<Expr, std::remove_cvref_t<T>>)
      return Expr(v);
    else
      return Expr(std::forward<T>(v));
  }
  std::shared_ptr<const OperationNode> op_;
};

/// An input tensor of the given shape (constants or Vars) and dtype.
Tensor placeholder(std::vector<Expr> shape, DType dtype, const std::string &name = "placeholder");

/// The compute's body: an expression or a (top-level) reduction.
struct ComputeBody {
  Expr value;
  std::optional<Reduction> reduce;
  ComputeBody(Expr v) : value(std::move(v)) {}
  ComputeBody(Reduction r) : reduce(std::move(r)) {}
  template <class T, std::enable_if_t<loop::detail::isLiteral<T>, int> = 0>
  ComputeBody(T v) : value(Expr(v)) {}
};

/// The compute from explicit axis variables (one per shape entry) and its body over them.
Tensor computeFromBody(std::vector<Expr> shape, const std::vector<Var> &axisVars, ComputeBody body,
                       const std::string &name);
/// Fresh axis variables for a compute of `rank` dimensions: i, j, then i2, i3, ...
std::vector<Var> makeAxisVars(size_t rank);

/// out[i0, i1, ...] = f(i0, i1, ...) over `shape`. f takes 1..6 Vars or one
/// std::vector<Var>, and returns an Expr (or a literal) or a Reduction.
template <class F>
Tensor compute(std::vector<Expr> shape, F &&f, const std::string &name = "compute") {
  std::vector<Var> v = makeAxisVars(shape.size());
  auto need = [&](size_t n) {
    if (shape.size() != n)
      fail("te::compute '", name, "': the body takes ", n, " index variable(s) but the shape has ",
           shape.size(), " dimension(s); expected one variable per dimension");
  };
  if constexpr (std::is_invocable_v<F, std::vector<Var>>) {
    return computeFromBody(shape, v, ComputeBody(f(v)), name);
  } else if constexpr (std::is_invocable_v<F, Var>) {
    need(1);
    return computeFromBody(shape, v, ComputeBody(f(v[0])), name);
  } else if constexpr (std::is_invocable_v<F, Var, Var>) {
    need(2);
    return computeFromBody(shape, v, ComputeBody(f(v[0], v[1])), name);
  } else if constexpr (std::is_invocable_v<F, Var, Var, Var>) {
    need(3);
    return computeFromBody(shape, v, ComputeBody(f(v[0], v[1], v[2])), name);
  } else if constexpr (std::is_invocable_v<F, Var, Var, Var, Var>) {
    need(4);
    return computeFromBody(shape, v, ComputeBody(f(v[0], v[1], v[2], v[3])), name);
  } else if constexpr (std::is_invocable_v<F, Var, Var, Var, Var, Var>) {
    need(5);
    return computeFromBody(shape, v, ComputeBody(f(v[0], v[1], v[2], v[3], v[4])), name);
  } else {
    static_assert(std::is_invocable_v<F, Var, Var, Var, Var, Var, Var>,
                  "te::compute: the body must take 1..6 Vars or a std::vector<Var>");
    need(6);
    return computeFromBody(shape, v, ComputeBody(f(v[0], v[1], v[2], v[3], v[4], v[5])), name);
  }
}

/// The tensor whose buffer is `buffer` (every placeholder/compute registers its own), or an
/// undefined Tensor. Lowering uses it to find the producers a body reads.
Tensor tensorOfBuffer(const Buffer &buffer);

/// The tensors a compute reads (each once, in order of first use); empty for a placeholder.
std::vector<Tensor> inputTensors(const Tensor &t);

} // namespace tessel::te
