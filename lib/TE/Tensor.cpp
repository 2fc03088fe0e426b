//===- Tensor.cpp - placeholder, compute, reductions ----------------------===//
#include "tessel/TE/Tensor.h"

#include "tessel/Loop/Visitor.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <mutex>
#include <unordered_map>

namespace tessel::te {

IterVar::IterVar(Var v, Range dom, IterKind kind)
    : Var(v), node_(std::make_shared<IterVarNode>(IterVarNode{v, std::move(dom), kind})) {}

static void checkIndexExpr(const Expr &e, const char *what, const std::string &where) {
  if (!e.defined())
    fail(where, ": ", what, " is undefined; expected an integer expression");
  if (!e.type().isIntOrUInt() || !e.type().isScalar())
    fail(where, ": ", what, " has type ", e.type().toString(),
         "; expected a scalar integer expression");
}

IterVar reduce_axis(Range dom, const std::string &name) {
  checkIndexExpr(dom.min, "the range's min", "te::reduce_axis '" + name + "'");
  checkIndexExpr(dom.extent, "the range's extent", "te::reduce_axis '" + name + "'");
  Var v(name, dom.min.type());
  return IterVar(v, std::move(dom), IterKind::Reduce);
}

Var var(const std::string &name, Type type) { return Var(name, type); }

static Reduction makeReduction(loop::ReduceOp op, const char *fn, Expr source,
                               std::vector<IterVar> axes, Expr init, Expr where) {
  if (!source.defined())
    fail("te::", fn, ": the source expression is undefined");
  if (axes.empty())
    fail("te::", fn, ": no reduction axes; expected at least one te::reduce_axis");
  for (auto &a : axes)
    if (!a.isReduce())
      fail("te::", fn, ": axis '", a.name(),
           "' is not a reduction axis; expected axes made by te::reduce_axis");
  if (init.defined() && init.type() != source.type())
    fail("te::", fn, ": init has type ", init.type().toString(), " but the source has type ",
         source.type().toString(), "; expected the same type");
  if (where.defined() && !(where.type().isBool() && where.type().isScalar()))
    fail("te::", fn, ": the condition has type ", where.type().toString(),
         "; expected a scalar bool");
  return Reduction{op, std::move(source), std::move(axes), std::move(init), std::move(where)};
}

Reduction sum(Expr source, std::vector<IterVar> axes, Expr init, Expr where) {
  return makeReduction(loop::ReduceOp::Add, "sum", std::move(source), std::move(axes),
                       std::move(init), std::move(where));
}
Reduction max(Expr source, std::vector<IterVar> axes, Expr init, Expr where) {
  return makeReduction(loop::ReduceOp::Max, "max", std::move(source), std::move(axes),
                       std::move(init), std::move(where));
}
Reduction min(Expr source, std::vector<IterVar> axes, Expr init, Expr where) {
  return makeReduction(loop::ReduceOp::Min, "min", std::move(source), std::move(axes),
                       std::move(init), std::move(where));
}
Reduction prod(Expr source, std::vector<IterVar> axes, Expr init, Expr where) {
  return makeReduction(loop::ReduceOp::Mul, "prod", std::move(source), std::move(axes),
                       std::move(init), std::move(where));
}

Expr reduceIdentity(loop::ReduceOp op, Type type) {
  using loop::ReduceOp;
  switch (op) {
  case ReduceOp::Add:
    return loop::makeZero(type);
  case ReduceOp::Mul:
    return loop::makeOne(type);
  case ReduceOp::Max:
  case ReduceOp::Min: {
    bool isMax = op == ReduceOp::Max;
    if (type.isFloat())
      return loop::makeConst(type, isMax ? -std::numeric_limits<double>::infinity()
                                         : std::numeric_limits<double>::infinity());
    if (type.isBool())
      return loop::makeBool(!isMax, type.lanes);
    int bits = type.bits();
    if (type.isUInt()) {
      if (isMax)
        return loop::makeConst(type, int64_t(0));
      return loop::makeConst(type, bits >= 64 ? int64_t(-1) : int64_t((uint64_t(1) << bits) - 1));
    }
    int64_t lo = bits >= 64 ? std::numeric_limits<int64_t>::min() : -(int64_t(1) << (bits - 1));
    int64_t hi = bits >= 64 ? std::numeric_limits<int64_t>::max() : (int64_t(1) << (bits - 1)) - 1;
    return loop::makeConst(type, isMax ? lo : hi);
  }
  }
  fail("te: unknown reduction combiner");
}

Expr reduceCombine(loop::ReduceOp op, Expr a, Expr b) {
  using loop::ReduceOp;
  switch (op) {
  case ReduceOp::Add:
    return a + b;
  case ReduceOp::Mul:
    return a * b;
  case ReduceOp::Max:
    return loop::max(a, b);
  case ReduceOp::Min:
    return loop::min(a, b);
  }
  fail("te: unknown reduction combiner");
}

Expr if_then_else(Expr cond, Expr a, Expr b) {
  return loop::select(std::move(cond), std::move(a), std::move(b));
}

//===----------------------------------------------------------------------===//
// Tensor registry: buffer -> operation (weak), so lowering can find a body's producers.
//===----------------------------------------------------------------------===//

namespace {
struct Registry {
  std::mutex mu;
  std::unordered_map<const loop::BufferNode *, std::weak_ptr<const OperationNode>> map;
};
Registry &registry() {
  static Registry r;
  return r;
}
Tensor registerOp(std::shared_ptr<OperationNode> op) {
  auto &r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  // Drop entries whose operation is gone (their buffer nodes may be reused addresses).
  if (r.map.size() > 1024)
    for (auto it = r.map.begin(); it != r.map.end();)
      it = it->second.expired() ? r.map.erase(it) : std::next(it);
  r.map[op->buffer.get()] = op;
  return Tensor(std::move(op));
}
} // namespace

Tensor tensorOfBuffer(const Buffer &buffer) {
  auto &r = registry();
  std::lock_guard<std::mutex> lock(r.mu);
  auto it = r.map.find(buffer.get());
  if (it == r.map.end())
    return Tensor();
  auto op = it->second.lock();
  if (!op || !op->buffer.same_as(buffer))
    return Tensor();
  return Tensor(std::move(op));
}

const IterVar &Tensor::axis(size_t i) const {
  if (i >= op_->axis.size())
    fail("tensor '", name(), "': axis ", i, " does not exist; it has ", op_->axis.size(),
         " output axes");
  return op_->axis[i];
}

const IterVar &Tensor::reduceAxis(size_t i) const {
  if (i >= op_->reduceAxis.size())
    fail("tensor '", name(), "': reduction axis ", i, " does not exist; it has ",
         op_->reduceAxis.size(), " reduction axes");
  return op_->reduceAxis[i];
}

Expr Tensor::access(std::vector<Expr> indices) const {
  if (!op_)
    fail("te: access to an undefined tensor");
  if (indices.size() != op_->shape.size())
    fail("tensor '", name(), "' accessed with ", indices.size(), " index(es); expected ",
         op_->shape.size(), " (one per dimension)");
  for (size_t d = 0; d < indices.size(); ++d)
    checkIndexExpr(indices[d], ("index " + std::to_string(d)).c_str(), "tensor '" + name() + "'");
  return op_->buffer.load(std::move(indices));
}

static void checkShape(const std::vector<Expr> &shape, const std::string &where) {
  for (size_t d = 0; d < shape.size(); ++d) {
    checkIndexExpr(shape[d], ("shape entry " + std::to_string(d)).c_str(), where);
    if (const int64_t *c = loop::asConstInt(shape[d]); c && *c < 0)
      fail(where, ": shape entry ", d, " is ", *c, "; expected a non-negative extent");
  }
}

Tensor placeholder(std::vector<Expr> shape, DType dtype, const std::string &name) {
  checkShape(shape, "te::placeholder '" + name + "'");
  auto op = std::make_shared<OperationNode>();
  op->kind = OpKind::Placeholder;
  op->name = name;
  op->dtype = dtype;
  op->shape = shape;
  op->buffer = Buffer::make(name, dtype, shape, "global");
  return registerOp(std::move(op));
}

std::vector<Var> makeAxisVars(size_t rank) {
  static const char *names[] = {"i", "j"};
  std::vector<Var> v;
  for (size_t d = 0; d < rank; ++d)
    v.emplace_back(d < 2 ? std::string(names[d]) : "i" + std::to_string(d), Type::i64());
  return v;
}

Tensor computeFromBody(std::vector<Expr> shape, const std::vector<Var> &axisVars, ComputeBody body,
                       const std::string &name) {
  std::string where = "te::compute '" + name + "'";
  checkShape(shape, where);
  if (axisVars.size() != shape.size())
    fail(where, ": ", axisVars.size(), " axis variables for ", shape.size(),
         " dimensions; expected one per dimension");
  auto op = std::make_shared<OperationNode>();
  op->kind = OpKind::Compute;
  op->name = name;
  op->shape = shape;
  for (size_t d = 0; d < shape.size(); ++d)
    op->axis.emplace_back(axisVars[d], Range(Expr(int64_t(0)), shape[d]), IterKind::DataPar);
  if (body.reduce) {
    op->reduce = body.reduce;
    op->reduceAxis = body.reduce->axes;
    if (!op->reduce->init.defined())
      op->reduce->init = reduceIdentity(op->reduce->op, op->reduce->source.type());
    op->dtype = op->reduce->source.type().dtype;
    if (!op->reduce->source.type().isScalar())
      fail(where, ": the reduction has vector type ", op->reduce->source.type().toString(),
           "; expected a scalar");
  } else {
    if (!body.value.defined())
      fail(where, ": the body is undefined");
    if (!body.value.type().isScalar() || body.value.type().isHandle())
      fail(where, ": the body has type ", body.value.type().toString(),
           "; expected a scalar value");
    op->body = body.value;
    op->dtype = body.value.type().dtype;
  }
  op->buffer = Buffer::make(name, op->dtype, shape, "global");
  auto addInputs = [&](const Expr &root) {
    if (!root.defined())
      return;
    loop::postOrderVisit(root, [&](const Expr &e) {
      const auto *load = e.as<loop::LoadNode>();
      if (!load)
        return;
      Tensor producer = tensorOfBuffer(load->buffer);
      if (producer.defined() &&
          std::find(op->inputs.begin(), op->inputs.end(), producer.opPtr()) == op->inputs.end())
        op->inputs.push_back(producer.opPtr());
    });
  };
  addInputs(op->body);
  if (op->reduce) {
    addInputs(op->reduce->source);
    addInputs(op->reduce->init);
    addInputs(op->reduce->condition);
  }
  return registerOp(std::move(op));
}

namespace {
struct CollectLoads : loop::IRVisitor {
  std::vector<Tensor> found;
  using loop::IRVisitor::visit;
  void visit(const loop::LoadNode *op) override {
    loop::IRVisitor::visit(op);
    for (auto &t : found)
      if (t.buffer().same_as(op->buffer))
        return;
    Tensor t = tensorOfBuffer(op->buffer);
    if (t.defined())
      found.push_back(t);
  }
};
} // namespace

std::vector<Tensor> inputTensors(const Tensor &t) {
  if (!t.defined() || t.isPlaceholder())
    return {};
  CollectLoads c;
  const OperationNode *op = t.op();
  if (op->reduce) {
    c.visit(op->reduce->source);
    c.visit(op->reduce->init);
    if (op->reduce->condition.defined())
      c.visit(op->reduce->condition);
  } else {
    c.visit(op->body);
  }
  return c.found;
}

} // namespace tessel::te
