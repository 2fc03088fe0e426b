//===- IR.cpp - loop IR node construction and checks ----------------------===//
//
// Every `make` checks its operands and throws tessel::Error naming the operation, the types
// found and what was expected.
//
//===----------------------------------------------------------------------===//

#include "tessel/Loop/IR.h"

#include <cmath>

namespace tessel::loop {

//===----------------------------------------------------------------------===//
// Type
//===----------------------------------------------------------------------===//

int Type::bits() const {
  if (handle)
    return 64;
  if (dtype == DType::boolean)
    return 1;
  return int(dtypeSize(dtype) * 8);
}

std::string Type::toString() const {
  if (handle)
    return "handle";
  std::string s(dtypeName(dtype));
  if (lanes != 1)
  {
    s += 'x';
    s += std::to_string(lanes);
  }
  return s;
}

std::optional<Type> Type::parse(std::string_view s) {
  if (s == "handle")
    return Type::pointer();
  // The longest dtype name that prefixes s, then an optional "x<lanes>".
  for (size_t n = s.size(); n > 0; --n) {
    auto d = parseDType(s.substr(0, n));
    if (!d || *d == DType::string || *d == DType::undefined)
      continue;
    std::string_view rest = s.substr(n);
    if (rest.empty())
      return Type(*d, 1);
    if (rest[0] != 'x' || rest.size() < 2 || rest.size() > 6)
      return std::nullopt;
    int lanes = 0;
    for (char c : rest.substr(1)) {
      if (c < '0' || c > '9')
        return std::nullopt;
      lanes = lanes * 10 + (c - '0');
    }
    if (lanes < 1)
      return std::nullopt;
    return Type(*d, lanes);
  }
  return std::nullopt;
}

//===----------------------------------------------------------------------===//
// Names
//===----------------------------------------------------------------------===//

std::string_view exprKindName(ExprKind k) {
  switch (k) {
  case ExprKind::IntImm: return "int_imm";
  case ExprKind::FloatImm: return "float_imm";
  case ExprKind::Var: return "var";
  case ExprKind::Add: return "add";
  case ExprKind::Sub: return "sub";
  case ExprKind::Mul: return "mul";
  case ExprKind::Div: return "div";
  case ExprKind::Mod: return "mod";
  case ExprKind::Min: return "min";
  case ExprKind::Max: return "max";
  case ExprKind::EQ: return "eq";
  case ExprKind::NE: return "ne";
  case ExprKind::LT: return "lt";
  case ExprKind::LE: return "le";
  case ExprKind::GT: return "gt";
  case ExprKind::GE: return "ge";
  case ExprKind::And: return "and";
  case ExprKind::Or: return "or";
  case ExprKind::Not: return "not";
  case ExprKind::Select: return "select";
  case ExprKind::Cast: return "cast";
  case ExprKind::Call: return "call";
  case ExprKind::Load: return "load";
  case ExprKind::Ramp: return "ramp";
  case ExprKind::Broadcast: return "broadcast";
  case ExprKind::Let: return "let";
  case ExprKind::Shuffle: return "shuffle";
  case ExprKind::VectorReduce: return "vector_reduce";
  }
  return "?";
}

std::string_view stmtKindName(StmtKind k) {
  switch (k) {
  case StmtKind::For: return "for";
  case StmtKind::Store: return "store";
  case StmtKind::LetStmt: return "let_stmt";
  case StmtKind::IfThenElse: return "if_then_else";
  case StmtKind::Allocate: return "allocate";
  case StmtKind::Evaluate: return "evaluate";
  case StmtKind::Seq: return "seq";
  }
  return "?";
}

std::string_view forKindName(ForKind k) {
  switch (k) {
  case ForKind::Serial: return "serial";
  case ForKind::Parallel: return "parallel";
  case ForKind::Vectorized: return "vectorized";
  case ForKind::Unrolled: return "unrolled";
  }
  return "?";
}

std::string_view reduceOpName(ReduceOp op) {
  switch (op) {
  case ReduceOp::Add: return "add";
  case ReduceOp::Mul: return "mul";
  case ReduceOp::Min: return "min";
  case ReduceOp::Max: return "max";
  }
  return "?";
}

namespace {

void requireDefined(const Expr &e, std::string_view op, std::string_view what) {
  TESSEL_CHECK(e.defined(), "loop IR: ", op, ": the ", what, " is undefined (expected an expression)");
}

void requireScalarInt(const Expr &e, std::string_view op, std::string_view what) {
  requireDefined(e, op, what);
  TESSEL_CHECK(e.type().isIntOrUInt() && e.type().isScalar(), "loop IR: ", op, ": the ", what,
               " has type ", e.type().toString(), " (expected a scalar integer)");
}

/// The lanes shared by all indices (throws when they differ or are not integers).
int indexLanes(const std::vector<Expr> &indices, const Buffer &buffer, std::string_view op) {
  TESSEL_CHECK(buffer.defined(), "loop IR: ", op, ": the buffer is undefined");
  TESSEL_CHECK(indices.size() == buffer.rank(), "loop IR: ", op, " of buffer '", buffer.name(),
               "': ", indices.size(), " indices for a buffer of rank ", buffer.rank(),
               " (expected one index per dimension)");
  int lanes = 1;
  for (size_t i = 0; i < indices.size(); ++i) {
    const Expr &ix = indices[i];
    TESSEL_CHECK(ix.defined(), "loop IR: ", op, " of buffer '", buffer.name(), "': index ", i,
                 " is undefined");
    TESSEL_CHECK(ix.type().isIntOrUInt(), "loop IR: ", op, " of buffer '", buffer.name(),
                 "': index ", i, " has type ", ix.type().toString(), " (expected an integer)");
    if (i == 0)
      lanes = ix.type().lanes;
    TESSEL_CHECK(ix.type().lanes == lanes, "loop IR: ", op, " of buffer '", buffer.name(),
                 "': index ", i, " has ", ix.type().lanes, " lanes but index 0 has ", lanes,
                 " (expected equal lanes)");
  }
  return lanes;
}

void checkPredicate(const Expr &p, int lanes, const Buffer &buffer, std::string_view op) {
  if (!p.defined())
    return;
  TESSEL_CHECK(p.type() == Type::boolean(lanes), "loop IR: ", op, " of buffer '", buffer.name(),
               "': the predicate has type ", p.type().toString(), " but the index has ", lanes,
               " lanes (expected ", Type::boolean(lanes).toString(), ")");
}

} // namespace

int64_t wrapInt(DType d, int64_t v) {
  switch (d) {
  case DType::i8: return int8_t(v);
  case DType::u8: return uint8_t(v);
  case DType::i16: return int16_t(v);
  case DType::u16: return uint16_t(v);
  case DType::i32: return int32_t(v);
  case DType::u32: return uint32_t(v);
  case DType::boolean: return v != 0;
  default: return v;
  }
}

//===----------------------------------------------------------------------===//
// Expr nodes
//===----------------------------------------------------------------------===//

Expr::Expr(float v) : Expr(FloatImmNode::make(Type::f32(), v)) {}
Expr::Expr(double v) : Expr(FloatImmNode::make(Type::f64(), v)) {}
Expr Expr::makeInt(int64_t v) { return IntImmNode::make(Type::i64(), v); }

Expr IntImmNode::make(Type t, int64_t value) {
  TESSEL_CHECK((t.isIntOrUInt() || t.isBool()) && t.isScalar(), "loop IR: int_imm of type ",
               t.toString(), " (expected a scalar integer or bool type; use broadcast for vectors)");
  return Expr(std::make_shared<IntImmNode>(t, wrapInt(t.dtype, value)));
}

Expr FloatImmNode::make(Type t, double value) {
  TESSEL_CHECK(t.isFloat() && t.isScalar(), "loop IR: float_imm of type ", t.toString(),
               " (expected a scalar float type; use broadcast for vectors)");
  switch (t.dtype) {
  case DType::f32: value = double(float(value)); break;
  case DType::f16: value = double(float(Float16(float(value)))); break;
  case DType::bf16: value = double(float(BFloat16(float(value)))); break;
  default: break;
  }
  return Expr(std::make_shared<FloatImmNode>(t, value));
}

Var::Var(std::string name, Type t) : Expr(std::make_shared<VarNode>(t, std::move(name))) {}

Var Var::fromExpr(const Expr &e) {
  TESSEL_CHECK(e.as<VarNode>(), "loop IR: expected a variable, got ",
               e.defined() ? exprKindName(e.kind()) : std::string_view("undefined"));
  Var v;
  static_cast<Expr &>(v) = e;
  return v;
}

template <ExprKind K> Expr BinaryNode<K>::make(Expr a, Expr b) {
  std::string_view op = exprKindName(K);
  requireDefined(a, op, "left operand");
  requireDefined(b, op, "right operand");
  Type ta = a.type(), tb = b.type();
  TESSEL_CHECK(ta == tb, "loop IR: ", op, ": operand types differ: ", ta.toString(), " vs ",
               tb.toString(), " (expected equal types and lanes; cast or broadcast one side)");
  TESSEL_CHECK(!ta.isHandle(), "loop IR: ", op, ": operands are handles (expected values)");
  Type result = ta;
  if constexpr (isComparison(K)) {
    result = Type::boolean(ta.lanes);
    TESSEL_CHECK(!ta.isBool() || K == ExprKind::EQ || K == ExprKind::NE, "loop IR: ", op,
                 ": operands are ", ta.toString(), " (expected numbers; bool allows only eq/ne)");
  } else if constexpr (isBinaryLogic(K)) {
    TESSEL_CHECK(ta.isBool(), "loop IR: ", op, ": operands are ", ta.toString(),
                 " (expected bool)");
  } else {
    TESSEL_CHECK(!ta.isBool() || K == ExprKind::Min || K == ExprKind::Max, "loop IR: ", op,
                 ": operands are ", ta.toString(), " (expected numbers, not bool)");
  }
  return Expr(std::make_shared<BinaryNode<K>>(result, std::move(a), std::move(b)));
}

template struct BinaryNode<ExprKind::Add>;
template struct BinaryNode<ExprKind::Sub>;
template struct BinaryNode<ExprKind::Mul>;
template struct BinaryNode<ExprKind::Div>;
template struct BinaryNode<ExprKind::Mod>;
template struct BinaryNode<ExprKind::Min>;
template struct BinaryNode<ExprKind::Max>;
template struct BinaryNode<ExprKind::EQ>;
template struct BinaryNode<ExprKind::NE>;
template struct BinaryNode<ExprKind::LT>;
template struct BinaryNode<ExprKind::LE>;
template struct BinaryNode<ExprKind::GT>;
template struct BinaryNode<ExprKind::GE>;
template struct BinaryNode<ExprKind::And>;
template struct BinaryNode<ExprKind::Or>;

Expr NotNode::make(Expr a) {
  requireDefined(a, "not", "operand");
  TESSEL_CHECK(a.type().isBool(), "loop IR: not: operand is ", a.type().toString(),
               " (expected bool)");
  Type t = a.type();
  return Expr(std::make_shared<NotNode>(t, std::move(a)));
}

Expr SelectNode::make(Expr cond, Expr trueValue, Expr falseValue) {
  requireDefined(cond, "select", "condition");
  requireDefined(trueValue, "select", "true value");
  requireDefined(falseValue, "select", "false value");
  Type t = trueValue.type();
  TESSEL_CHECK(t == falseValue.type(), "loop IR: select: value types differ: ", t.toString(),
               " vs ", falseValue.type().toString(), " (expected equal types)");
  Type ct = cond.type();
  TESSEL_CHECK(ct.isBool() && (ct.lanes == 1 || ct.lanes == t.lanes),
               "loop IR: select: the condition has type ", ct.toString(), " (expected bool or ",
               Type::boolean(t.lanes).toString(), ")");
  return Expr(std::make_shared<SelectNode>(t, std::move(cond), std::move(trueValue),
                                           std::move(falseValue)));
}

Expr CastNode::make(Type t, Expr value) {
  requireDefined(value, "cast", "value");
  TESSEL_CHECK(!t.isHandle() && !value.type().isHandle() && t.dtype != DType::undefined &&
                   t.dtype != DType::string,
               "loop IR: cast from ", value.type().toString(), " to ", t.toString(),
               " (expected numeric or bool types)");
  TESSEL_CHECK(t.lanes == value.type().lanes, "loop IR: cast from ", value.type().toString(),
               " to ", t.toString(), " changes the lanes (expected equal lanes)");
  return Expr(std::make_shared<CastNode>(t, std::move(value)));
}

const std::vector<IntrinsicInfo> &intrinsicTable() {
  static const std::vector<IntrinsicInfo> table = {
      {"exp", 1, true},   {"log", 1, true},   {"tanh", 1, true},    {"sqrt", 1, true},
      {"rsqrt", 1, true}, {"erf", 1, true},   {"sigmoid", 1, true}, {"fabs", 1, true},
      {"floor", 1, true}, {"ceil", 1, true},  {"round", 1, true},   {"sin", 1, true},
      {"cos", 1, true},   {"pow", 2, true},   {"fma", 3, true},     {"abs", 1, false},
      {"asin", 1, true},  {"acos", 1, true},  {"atan", 1, true},
      {"shl", 2, false, /*intOnly=*/true},    {"shr", 2, false, /*intOnly=*/true},
      {"prefetch", 1, false},
      // x with its f32 mantissa cut to bfloat16's 7 bits (toward zero), NaN quieted: the
      // float -> bfloat16 conversion of ONNX <= 1.13 (Cast's reference kernel); f32 only
      {"bf16_trunc", 1, true},
      // random ops (lib/Graph/Ops/Random.cpp): the generator's xor, and a fresh u64 per
      // evaluation (impure: a counter and the clock) for the unseeded ones
      {"xor", 2, false, /*intOnly=*/true},
      {"fresh_u64", 1, false, /*intOnly=*/true, /*fresh=*/true},
  };
  return table;
}

const IntrinsicInfo *lookupIntrinsic(std::string_view name) {
  for (auto &info : intrinsicTable())
    if (info.name == name)
      return &info;
  return nullptr;
}

bool isPrefetch(const Expr &e) {
  const auto *c = e.as<CallNode>();
  return c && c->name == "prefetch";
}

Expr CallNode::make(std::string name, std::vector<Expr> args) {
  const IntrinsicInfo *info = lookupIntrinsic(name);
  if (!info) {
    std::string known;
    for (auto &i : intrinsicTable())
      known += (known.empty() ? "" : ", ") + std::string(i.name);
    fail("loop IR: unknown intrinsic '", name, "' (expected one of: ", known, ")");
  }
  TESSEL_CHECK(int(args.size()) == info->arity, "loop IR: call ", name, ": ", args.size(),
               " arguments (expected ", info->arity, ")");
  for (size_t i = 0; i < args.size(); ++i) {
    requireDefined(args[i], name, "argument");
    TESSEL_CHECK(args[i].type() == args[0].type(), "loop IR: call ", name, ": argument ", i,
                 " has type ", args[i].type().toString(), " but argument 0 has ",
                 args[0].type().toString(), " (expected equal types)");
  }
  if (name == "prefetch")
    TESSEL_CHECK(args[0].as<LoadNode>(), "loop IR: call prefetch: the argument is a ",
                 exprKindName(args[0].kind()), " (expected a load: the element whose cache line "
                 "to fetch)");
  Type t = args[0].type();
  if (name == "fresh_u64")
    TESSEL_CHECK(t.dtype == DType::u64, "loop IR: call fresh_u64: the salt is ", t.toString(),
                 " (expected u64)");
  TESSEL_CHECK(!info->intOnly || t.isIntOrUInt(), "loop IR: call ", name, ": arguments are ",
               t.toString(), " (expected an integer type)");
  TESSEL_CHECK(t.isFloat() || (!info->floatOnly && t.isIntOrUInt()), "loop IR: call ", name,
               ": arguments are ", t.toString(),
               info->floatOnly ? " (expected a float type)" : " (expected a number type)");
  return Expr(std::make_shared<CallNode>(t, std::move(name), std::move(args)));
}

Expr LoadNode::make(Buffer buffer, std::vector<Expr> indices, Expr predicate) {
  int lanes = indexLanes(indices, buffer, "load");
  checkPredicate(predicate, lanes, buffer, "load");
  Type t(buffer.dtype(), lanes);
  return Expr(
      std::make_shared<LoadNode>(t, std::move(buffer), std::move(indices), std::move(predicate)));
}

Expr RampNode::make(Expr base, Expr stride, int lanes) {
  requireScalarInt(base, "ramp", "base");
  requireScalarInt(stride, "ramp", "stride");
  TESSEL_CHECK(base.type() == stride.type(), "loop IR: ramp: base is ", base.type().toString(),
               " but stride is ", stride.type().toString(), " (expected equal types)");
  TESSEL_CHECK(lanes > 1, "loop IR: ramp with ", lanes, " lanes (expected more than 1)");
  Type t = base.type().withLanes(lanes);
  return Expr(std::make_shared<RampNode>(t, std::move(base), std::move(stride), lanes));
}

Expr BroadcastNode::make(Expr value, int lanes) {
  requireDefined(value, "broadcast", "value");
  TESSEL_CHECK(value.type().isScalar() && !value.type().isHandle(), "loop IR: broadcast of ",
               value.type().toString(), " (expected a scalar value)");
  TESSEL_CHECK(lanes >= 1, "loop IR: broadcast to ", lanes, " lanes (expected at least 1)");
  if (lanes == 1)
    return value;
  Type t = value.type().withLanes(lanes);
  return Expr(std::make_shared<BroadcastNode>(t, std::move(value), lanes));
}

Expr LetNode::make(Var var, Expr value, Expr body) {
  TESSEL_CHECK(var.defined(), "loop IR: let: the variable is undefined");
  requireDefined(value, "let", "value");
  requireDefined(body, "let", "body");
  TESSEL_CHECK(var.type() == value.type(), "loop IR: let %", var.name(), ": the variable is ",
               var.type().toString(), " but the value is ", value.type().toString(),
               " (expected equal types)");
  Type t = body.type();
  return Expr(std::make_shared<LetNode>(t, std::move(var), std::move(value), std::move(body)));
}

Expr ShuffleNode::make(std::vector<Expr> vectors, std::vector<int> indices) {
  TESSEL_CHECK(!vectors.empty(), "loop IR: shuffle of no vectors (expected at least one)");
  TESSEL_CHECK(!indices.empty(), "loop IR: shuffle with no indices (expected at least one)");
  int total = 0;
  for (size_t i = 0; i < vectors.size(); ++i) {
    requireDefined(vectors[i], "shuffle", "vector");
    TESSEL_CHECK(vectors[i].type().element() == vectors[0].type().element(),
                 "loop IR: shuffle: vector ", i, " is ", vectors[i].type().toString(),
                 " but vector 0 is ", vectors[0].type().toString(),
                 " (expected one element type)");
    total += vectors[i].type().lanes;
  }
  for (int ix : indices)
    TESSEL_CHECK(ix >= 0 && ix < total, "loop IR: shuffle index ", ix, " out of range (expected 0..",
                 total - 1, ")");
  Type t = vectors[0].type().withLanes(int(indices.size()));
  return Expr(std::make_shared<ShuffleNode>(t, std::move(vectors), std::move(indices)));
}

Expr VectorReduceNode::make(ReduceOp op, Expr value) {
  requireDefined(value, "vector_reduce", "value");
  Type t = value.type();
  TESSEL_CHECK(t.isFloat() || t.isIntOrUInt(), "loop IR: vector_reduce ", reduceOpName(op),
               " of ", t.toString(), " (expected a number type)");
  return Expr(std::make_shared<VectorReduceNode>(t.element(), op, std::move(value)));
}

//===----------------------------------------------------------------------===//
// Buffer
//===----------------------------------------------------------------------===//

Buffer Buffer::make(std::string name, DType dtype, std::vector<Expr> shape, std::string scope,
                    std::vector<Expr> strides, int alignment) {
  TESSEL_CHECK(dtype != DType::undefined && dtype != DType::string, "loop IR: buffer '", name,
               "' has dtype ", dtypeName(dtype), " (expected a numeric or bool dtype)");
  for (size_t i = 0; i < shape.size(); ++i) {
    TESSEL_CHECK(shape[i].defined() && shape[i].type().isIntOrUInt() && shape[i].type().isScalar(),
                 "loop IR: buffer '", name, "': extent ", i, " is ",
                 shape[i].defined() ? shape[i].type().toString() : std::string("undefined"),
                 " (expected a scalar integer)");
  }
  TESSEL_CHECK(strides.empty() || strides.size() == shape.size(), "loop IR: buffer '", name,
               "': ", strides.size(), " strides for rank ", shape.size(),
               " (expected none or one per dimension)");
  for (size_t i = 0; i < strides.size(); ++i)
    TESSEL_CHECK(strides[i].defined() && strides[i].type().isIntOrUInt() &&
                     strides[i].type().isScalar(),
                 "loop IR: buffer '", name, "': stride ", i, " is not a scalar integer");
  TESSEL_CHECK(scope == "global" || scope == "local", "loop IR: buffer '", name, "' has scope '",
               scope, "' (expected global or local)");
  TESSEL_CHECK(alignment >= 0 && (alignment & (alignment - 1)) == 0, "loop IR: buffer '", name,
               "' has alignment ", alignment, " (expected 0 or a power of two)");
  auto n = std::make_shared<BufferNode>();
  n->name = name;
  n->dtype = dtype;
  n->shape = std::move(shape);
  n->strides = std::move(strides);
  n->data = Var(std::move(name), Type::pointer());
  n->scope = std::move(scope);
  n->alignment = alignment;
  return Buffer(std::move(n));
}

std::vector<Expr> Buffer::denseStrides() const {
  if (!node_->strides.empty())
    return node_->strides;
  std::vector<Expr> strides(rank());
  Expr stride = makeConst(Type::i64(), int64_t(1));
  for (size_t i = rank(); i-- > 0;) {
    strides[i] = stride;
    Expr extent = node_->shape[i];
    if (extent.type() != Type::i64())
      extent = cast(Type::i64(), extent);
    const int64_t *cs = asConstInt(stride);
    const int64_t *ce = asConstInt(extent);
    if (cs && ce)
      stride = makeConst(Type::i64(), *cs * *ce);
    else if (cs && *cs == 1)
      stride = extent;
    else
      stride = mul(stride, extent);
  }
  return strides;
}

Buffer Buffer::withShape(std::vector<Expr> shape, std::vector<Expr> strides) const {
  auto n = std::make_shared<BufferNode>(*node_);
  n->shape = std::move(shape);
  n->strides = std::move(strides);
  for (auto &e : n->shape)
    TESSEL_CHECK(e.defined() && e.type().isIntOrUInt() && e.type().isScalar(), "loop IR: buffer '",
                 n->name, "': withShape extent is not a scalar integer");
  TESSEL_CHECK(n->strides.empty() || n->strides.size() == n->shape.size(), "loop IR: buffer '",
               n->name, "': withShape given ", n->strides.size(), " strides for rank ",
               n->shape.size());
  return Buffer(std::move(n));
}

Expr Buffer::load(std::vector<Expr> indices, Expr predicate) const {
  return LoadNode::make(*this, std::move(indices), std::move(predicate));
}

//===----------------------------------------------------------------------===//
// Constants and operators
//===----------------------------------------------------------------------===//

Expr makeConst(Type t, int64_t v) {
  Type s = t.element();
  Expr c = s.isFloat() ? FloatImmNode::make(s, double(v)) : IntImmNode::make(s, v);
  return BroadcastNode::make(c, t.lanes);
}

Expr makeConst(Type t, double v) {
  Type s = t.element();
  Expr c;
  if (s.isFloat()) {
    c = FloatImmNode::make(s, v);
  } else {
    TESSEL_CHECK(std::isfinite(v) && v == std::trunc(v), "loop IR: the constant ", v,
                 " cannot be an ", s.toString(), " (expected an integral value)");
    c = IntImmNode::make(s, int64_t(v));
  }
  return BroadcastNode::make(c, t.lanes);
}

Expr makeZero(Type t) { return makeConst(t, int64_t(0)); }
Expr makeOne(Type t) { return makeConst(t, int64_t(1)); }
Expr makeBool(bool v, int lanes) { return makeConst(Type::boolean(lanes), int64_t(v)); }

const int64_t *asConstInt(const Expr &e) {
  if (!e.defined())
    return nullptr;
  if (auto *b = e.as<BroadcastNode>())
    return asConstInt(b->value);
  if (auto *i = e.as<IntImmNode>())
    return &i->value;
  return nullptr;
}

const double *asConstFloat(const Expr &e) {
  if (!e.defined())
    return nullptr;
  if (auto *b = e.as<BroadcastNode>())
    return asConstFloat(b->value);
  if (auto *f = e.as<FloatImmNode>())
    return &f->value;
  return nullptr;
}

bool isConstInt(const Expr &e, int64_t v) {
  const int64_t *c = asConstInt(e);
  return c && *c == v;
}

bool isZero(const Expr &e) {
  if (const int64_t *c = asConstInt(e))
    return *c == 0;
  if (const double *f = asConstFloat(e))
    return *f == 0.0;
  return false;
}

bool isOne(const Expr &e) {
  if (const int64_t *c = asConstInt(e))
    return *c == 1;
  if (const double *f = asConstFloat(e))
    return *f == 1.0;
  return false;
}

namespace detail {
Expr literalLike(const Expr &like, int64_t v) {
  requireDefined(like, "literal", "other operand");
  return makeConst(like.type(), v);
}
Expr literalLike(const Expr &like, double v) {
  requireDefined(like, "literal", "other operand");
  return makeConst(like.type(), v);
}
} // namespace detail

Expr add(Expr a, Expr b) { return AddNode::make(std::move(a), std::move(b)); }
Expr sub(Expr a, Expr b) { return SubNode::make(std::move(a), std::move(b)); }
Expr mul(Expr a, Expr b) { return MulNode::make(std::move(a), std::move(b)); }
Expr div(Expr a, Expr b) { return DivNode::make(std::move(a), std::move(b)); }
Expr mod(Expr a, Expr b) { return ModNode::make(std::move(a), std::move(b)); }
Expr eq(Expr a, Expr b) { return EQNode::make(std::move(a), std::move(b)); }
Expr ne(Expr a, Expr b) { return NENode::make(std::move(a), std::move(b)); }
Expr lt(Expr a, Expr b) { return LTNode::make(std::move(a), std::move(b)); }
Expr le(Expr a, Expr b) { return LENode::make(std::move(a), std::move(b)); }
Expr gt(Expr a, Expr b) { return GTNode::make(std::move(a), std::move(b)); }
Expr ge(Expr a, Expr b) { return GENode::make(std::move(a), std::move(b)); }
Expr logicalAnd(Expr a, Expr b) { return AndNode::make(std::move(a), std::move(b)); }
Expr logicalOr(Expr a, Expr b) { return OrNode::make(std::move(a), std::move(b)); }
Expr logicalNot(Expr a) { return NotNode::make(std::move(a)); }
Expr neg(Expr a) {
  requireDefined(a, "neg", "operand");
  // x * -1 is exact IEEE negation (0 - x would turn -0.0 into +0.0).
  if (a.type().isFloat())
    return mul(a, makeConst(a.type(), -1.0));
  return sub(makeZero(a.type()), a);
}
Expr min(Expr a, Expr b) { return MinNode::make(std::move(a), std::move(b)); }
Expr max(Expr a, Expr b) { return MaxNode::make(std::move(a), std::move(b)); }
Expr select(Expr c, Expr a, Expr b) {
  return SelectNode::make(std::move(c), std::move(a), std::move(b));
}
Expr cast(Type t, Expr value) {
  requireDefined(value, "cast", "value");
  if (value.type() == t)
    return value;
  return CastNode::make(t, std::move(value));
}
Expr cast(DType t, Expr value) {
  requireDefined(value, "cast", "value");
  // The type is computed before `value` is moved: argument evaluation order is unspecified.
  Type type(t, value.type().lanes);
  return cast(type, std::move(value));
}
Expr call(std::string name, std::vector<Expr> args) {
  return CallNode::make(std::move(name), std::move(args));
}
Expr exp(Expr x) { return call("exp", {std::move(x)}); }
Expr log(Expr x) { return call("log", {std::move(x)}); }
Expr tanh(Expr x) { return call("tanh", {std::move(x)}); }
Expr sqrt(Expr x) { return call("sqrt", {std::move(x)}); }
Expr rsqrt(Expr x) { return call("rsqrt", {std::move(x)}); }
Expr erf(Expr x) { return call("erf", {std::move(x)}); }
Expr sigmoid(Expr x) { return call("sigmoid", {std::move(x)}); }
Expr fabs(Expr x) { return call("fabs", {std::move(x)}); }
Expr abs(Expr x) { return call("abs", {std::move(x)}); }
Expr floor(Expr x) { return call("floor", {std::move(x)}); }
Expr ceil(Expr x) { return call("ceil", {std::move(x)}); }
Expr round(Expr x) { return call("round", {std::move(x)}); }
Expr sin(Expr x) { return call("sin", {std::move(x)}); }
Expr cos(Expr x) { return call("cos", {std::move(x)}); }
Expr asin(Expr x) { return call("asin", {std::move(x)}); }
Expr acos(Expr x) { return call("acos", {std::move(x)}); }
Expr atan(Expr x) { return call("atan", {std::move(x)}); }
Expr pow(Expr x, Expr y) { return call("pow", {std::move(x), std::move(y)}); }
Expr shl(Expr x, Expr y) { return call("shl", {std::move(x), std::move(y)}); }
Expr shr(Expr x, Expr y) { return call("shr", {std::move(x), std::move(y)}); }
Expr bitXor(Expr x, Expr y) { return call("xor", {std::move(x), std::move(y)}); }
Expr freshU64(Expr salt) { return call("fresh_u64", {std::move(salt)}); }
Expr fma(Expr a, Expr b, Expr c) { return call("fma", {std::move(a), std::move(b), std::move(c)}); }
Expr ramp(Expr base, Expr stride, int lanes) {
  return RampNode::make(std::move(base), std::move(stride), lanes);
}
Expr broadcast(Expr value, int lanes) { return BroadcastNode::make(std::move(value), lanes); }
Expr let(Var var, Expr value, Expr body) {
  return LetNode::make(std::move(var), std::move(value), std::move(body));
}
Expr shuffle(std::vector<Expr> vectors, std::vector<int> indices) {
  return ShuffleNode::make(std::move(vectors), std::move(indices));
}
Expr vectorReduce(ReduceOp op, Expr value) { return VectorReduceNode::make(op, std::move(value)); }

//===----------------------------------------------------------------------===//
// Stmt nodes
//===----------------------------------------------------------------------===//

Stmt ForNode::make(Var loopVar, Expr min, Expr extent, ForKind kind, Stmt body) {
  TESSEL_CHECK(loopVar.defined(), "loop IR: for: the loop variable is undefined");
  TESSEL_CHECK(loopVar.type().isIntOrUInt() && loopVar.type().isScalar(), "loop IR: for %",
               loopVar.name(), ": the loop variable is ", loopVar.type().toString(),
               " (expected a scalar integer)");
  requireDefined(min, "for", "min");
  requireDefined(extent, "for", "extent");
  TESSEL_CHECK(min.type() == loopVar.type(), "loop IR: for %", loopVar.name(), ": min is ",
               min.type().toString(), " but the loop variable is ", loopVar.type().toString(),
               " (expected equal types)");
  TESSEL_CHECK(extent.type() == loopVar.type(), "loop IR: for %", loopVar.name(), ": extent is ",
               extent.type().toString(), " but the loop variable is ",
               loopVar.type().toString(), " (expected equal types)");
  TESSEL_CHECK(body.defined(), "loop IR: for %", loopVar.name(), ": the body is undefined");
  return Stmt(std::make_shared<ForNode>(std::move(loopVar), std::move(min), std::move(extent),
                                        kind, std::move(body)));
}

Stmt StoreNode::make(Buffer buffer, Expr value, std::vector<Expr> indices, Expr predicate) {
  int lanes = indexLanes(indices, buffer, "store");
  checkPredicate(predicate, lanes, buffer, "store");
  TESSEL_CHECK(value.defined(), "loop IR: store to buffer '", buffer.name(),
               "': the value is undefined");
  Type expected(buffer.dtype(), lanes);
  TESSEL_CHECK(value.type() == expected, "loop IR: store to buffer '", buffer.name(),
               "': the value is ", value.type().toString(), " (expected ", expected.toString(),
               ": the buffer's dtype with the index lanes)");
  return Stmt(std::make_shared<StoreNode>(std::move(buffer), std::move(value), std::move(indices),
                                          std::move(predicate)));
}

Stmt LetStmtNode::make(Var var, Expr value, Stmt body) {
  TESSEL_CHECK(var.defined(), "loop IR: let: the variable is undefined");
  requireDefined(value, "let", "value");
  TESSEL_CHECK(var.type() == value.type(), "loop IR: let %", var.name(), ": the variable is ",
               var.type().toString(), " but the value is ", value.type().toString(),
               " (expected equal types)");
  TESSEL_CHECK(body.defined(), "loop IR: let %", var.name(), ": the body is undefined");
  return Stmt(std::make_shared<LetStmtNode>(std::move(var), std::move(value), std::move(body)));
}

Stmt IfThenElseNode::make(Expr cond, Stmt thenCase, Stmt elseCase) {
  requireDefined(cond, "if", "condition");
  TESSEL_CHECK(cond.type() == Type::boolean(), "loop IR: if: the condition is ",
               cond.type().toString(), " (expected a scalar bool)");
  TESSEL_CHECK(thenCase.defined(), "loop IR: if: the then branch is undefined");
  return Stmt(
      std::make_shared<IfThenElseNode>(std::move(cond), std::move(thenCase), std::move(elseCase)));
}

Stmt AllocateNode::make(Buffer buffer, Stmt body) {
  TESSEL_CHECK(buffer.defined(), "loop IR: allocate: the buffer is undefined");
  TESSEL_CHECK(body.defined(), "loop IR: allocate '", buffer.name(), "': the body is undefined");
  return Stmt(std::make_shared<AllocateNode>(std::move(buffer), std::move(body)));
}

Stmt EvaluateNode::make(Expr value) {
  requireDefined(value, "evaluate", "value");
  return Stmt(std::make_shared<EvaluateNode>(std::move(value)));
}

Stmt SeqNode::make(std::vector<Stmt> stmts) {
  std::vector<Stmt> flat;
  for (auto &s : stmts) {
    if (!s.defined())
      continue;
    if (auto *seq = s.as<SeqNode>())
      flat.insert(flat.end(), seq->stmts.begin(), seq->stmts.end());
    else
      flat.push_back(s);
  }
  if (flat.empty())
    return makeNoOp();
  if (flat.size() == 1)
    return flat[0];
  return Stmt(std::make_shared<SeqNode>(std::move(flat)));
}

Stmt makeNoOp() { return EvaluateNode::make(makeConst(Type::i32(), int64_t(0))); }

bool isNoOp(const Stmt &s) {
  if (!s.defined())
    return true;
  if (auto *e = s.as<EvaluateNode>())
    return e->value.as<IntImmNode>() || e->value.as<FloatImmNode>();
  if (auto *seq = s.as<SeqNode>())
    return seq->stmts.empty();
  return false;
}

std::pair<const Expr &, const Expr &> binaryOperands(const Expr &e) {
  switch (e.kind()) {
#define TESSEL_BINARY_OPERANDS(K)                                                                  \
  case ExprKind::K: {                                                                              \
    const auto *n = e.as<K##Node>();                                                               \
    return {n->a, n->b};                                                                           \
  }
    TESSEL_LOOP_BINARY_KINDS(TESSEL_BINARY_OPERANDS)
#undef TESSEL_BINARY_OPERANDS
  default:
    fail("loop IR: binaryOperands of a non-binary node '", exprKindName(e.kind()), "'");
  }
}

} // namespace tessel::loop
