//===- IR.h - the loop IR (expressions, statements, functions) --*- C++ -*-===//
//
// The loop IR is tessel's TIR: the target of lowering from tensor expressions (lib/TE) and the
// source of code generation (lib/CodeGen). It is modelled on Halide's IR and TVM's TIR:
//
//   * Expr: a pure, typed expression tree (constants, variables, arithmetic, comparisons,
//     logic, select, casts, intrinsic calls, buffer loads, vector ramps/broadcasts, ...).
//   * Stmt: a statement tree (for loops, stores, lets, if/else, allocations, sequences).
//   * Buffer: a named, typed, shaped region of memory; a function parameter ("global") or an
//     allocation ("local").
//   * LoweredFunc: a name, ordered parameters (buffers and scalar variables) and a body.
//
// Nodes are immutable and shared (std::shared_ptr<const Node>); Expr/Stmt/Buffer are cheap
// handles. Identity (`same_as`) compares pointers; structural equality is `exprEqual`/
// `stmtEqual`. Every node's `make` checks its operand types and throws tessel::Error naming
// the operation, both sides and what was expected.
//
// Semantics worth knowing:
//   * Integer Div and Mod are FLOOR division and FLOOR modulo (Python semantics): -7 / 2 == -4,
//     -7 % 2 == 1; the result of Mod has the sign of the divisor. Division by zero is
//     undefined behaviour in generated code (the simplifier never folds it).
//   * Float Div is IEEE division; float Mod is x - floor(x / y) * y.
//   * Integer arithmetic wraps around (two's complement) at the width of its dtype.
//   * Vector expressions have lanes > 1; elementwise ops need equal lanes on both sides.
//     Comparisons give boolean with the same lanes.
//   * Literals: C++ integers become i64 IntImm, `float` becomes f32, `double` f64 (Expr's
//     implicit constructors). In a binary operator with one Expr side, a literal takes the
//     type (dtype and lanes) of the other side, so `A(i) + 1.0f` and `x * 2` work for any
//     float/int dtype. A fractional float literal with an integer Expr is an error.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Support/DType.h"
#include "tessel/Support/Error.h"

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>
#include <unordered_map>
#include <utility>
#include <vector>

namespace tessel::loop {

//===----------------------------------------------------------------------===//
// Type
//===----------------------------------------------------------------------===//

/// The type of an expression: a scalar DType and a number of lanes (1 = scalar), or an opaque
/// pointer ("handle", the type of a buffer's data variable).
struct Type {
  DType dtype = DType::undefined;
  int lanes = 1;
  bool handle = false;

  Type() = default;
  Type(DType d, int l = 1) : dtype(d), lanes(l) {}

  static Type f32(int l = 1) { return {DType::f32, l}; }
  static Type f64(int l = 1) { return {DType::f64, l}; }
  static Type f16(int l = 1) { return {DType::f16, l}; }
  static Type i8(int l = 1) { return {DType::i8, l}; }
  static Type i16(int l = 1) { return {DType::i16, l}; }
  static Type i32(int l = 1) { return {DType::i32, l}; }
  static Type i64(int l = 1) { return {DType::i64, l}; }
  static Type u8(int l = 1) { return {DType::u8, l}; }
  static Type u32(int l = 1) { return {DType::u32, l}; }
  static Type u64(int l = 1) { return {DType::u64, l}; }
  static Type boolean(int l = 1) { return {DType::boolean, l}; }
  /// An opaque pointer (a buffer's data variable).
  static Type pointer() {
    Type t;
    t.handle = true;
    return t;
  }

  Type withLanes(int l) const {
    Type t = *this;
    t.lanes = l;
    return t;
  }
  /// The scalar type of one lane.
  Type element() const { return withLanes(1); }

  bool isScalar() const { return lanes == 1; }
  bool isVector() const { return lanes > 1; }
  bool isHandle() const { return handle; }
  bool isFloat() const { return !handle && tessel::isFloat(dtype); }
  /// Signed or unsigned integer (not bool).
  bool isInt() const { return !handle && tessel::isInteger(dtype) && tessel::isSigned(dtype); }
  bool isUInt() const { return !handle && tessel::isInteger(dtype) && !tessel::isSigned(dtype); }
  bool isIntOrUInt() const { return isInt() || isUInt(); }
  bool isBool() const { return !handle && dtype == DType::boolean; }
  /// Bits of one lane (bool: 1; handle: 64).
  int bits() const;

  /// "f32", "f32x16", "i64", "boolx8", "handle".
  std::string toString() const;
  /// Parses toString()'s form; std::nullopt when malformed.
  static std::optional<Type> parse(std::string_view s);

  bool operator==(const Type &o) const {
    return dtype == o.dtype && lanes == o.lanes && handle == o.handle;
  }
  bool operator!=(const Type &o) const { return !(*this == o); }
};

//===----------------------------------------------------------------------===//
// Node kinds
//===----------------------------------------------------------------------===//

enum class ExprKind : uint8_t {
  IntImm,
  FloatImm,
  Var,
  // binary arithmetic (operands and result of one type)
  Add,
  Sub,
  Mul,
  Div,
  Mod,
  Min,
  Max,
  // comparisons (operands of one type, result boolean with the operands' lanes)
  EQ,
  NE,
  LT,
  LE,
  GT,
  GE,
  // logic (boolean operands)
  And,
  Or,
  Not,
  Select,
  Cast,
  Call,
  Load,
  Ramp,
  Broadcast,
  Let,
  Shuffle,
  VectorReduce,
};

enum class StmtKind : uint8_t {
  For,
  Store,
  LetStmt,
  IfThenElse,
  Allocate,
  Evaluate,
  Seq,
};

/// X-macro lists of the node kinds, for one dispatch `switch` written once: X(Add) expands per
/// kind (the node class is K##Node).
#define TESSEL_LOOP_BINARY_KINDS(X)                                                                \
  X(Add) X(Sub) X(Mul) X(Div) X(Mod) X(Min) X(Max) X(EQ) X(NE) X(LT) X(LE) X(GT) X(GE) X(And) X(Or)
#define TESSEL_LOOP_EXPR_KINDS(X)                                                                  \
  X(IntImm) X(FloatImm) X(Var) TESSEL_LOOP_BINARY_KINDS(X) X(Not) X(Select) X(Cast) X(Call)        \
  X(Load) X(Ramp) X(Broadcast) X(Let) X(Shuffle) X(VectorReduce)
#define TESSEL_LOOP_STMT_KINDS(X)                                                                  \
  X(For) X(Store) X(LetStmt) X(IfThenElse) X(Allocate) X(Evaluate) X(Seq)

/// Wraps v to the width and signedness of the integer (or boolean) dtype d.
int64_t wrapInt(DType d, int64_t v);

/// "add", "lt", "vector_reduce", ...: the lower-case spelling used in diagnostics.
std::string_view exprKindName(ExprKind k);
std::string_view stmtKindName(StmtKind k);

constexpr bool isBinaryArith(ExprKind k) { return k >= ExprKind::Add && k <= ExprKind::Max; }
constexpr bool isComparison(ExprKind k) { return k >= ExprKind::EQ && k <= ExprKind::GE; }
constexpr bool isBinaryLogic(ExprKind k) { return k == ExprKind::And || k == ExprKind::Or; }
/// Every node of the BinaryNode<K> template: arithmetic, comparisons, And, Or.
constexpr bool isBinary(ExprKind k) { return isBinaryArith(k) || isComparison(k) || isBinaryLogic(k); }

//===----------------------------------------------------------------------===//
// Expr
//===----------------------------------------------------------------------===//

struct ExprNode {
  ExprKind kind;
  Type type;
  ExprNode(ExprKind k, Type t) : kind(k), type(t) {}
  virtual ~ExprNode() = default;
};

struct VarNode;
class Var;

/// A handle to an immutable expression node (possibly null: `defined()`).
class Expr {
public:
  Expr() = default;
  explicit Expr(std::shared_ptr<const ExprNode> n) : node_(std::move(n)) {}
  /// Integer literal: an i64 IntImm (the index type).
  template <class T, std::enable_if_t<std::is_integral_v<T> && !std::is_same_v<T, bool>, int> = 0>
  Expr(T v) : Expr(makeInt(int64_t(v))) {}
  /// `float` literal: an f32 FloatImm.
  Expr(float v);
  /// `double` literal: an f64 FloatImm.
  Expr(double v);

  bool defined() const { return node_ != nullptr; }
  const ExprNode *get() const { return node_.get(); }
  const ExprNode *operator->() const { return node_.get(); }
  const std::shared_ptr<const ExprNode> &ptr() const { return node_; }
  ExprKind kind() const { return node_->kind; }
  Type type() const { return node_->type; }
  /// Identity: both handles point to the same node.
  bool same_as(const Expr &o) const { return node_ == o.node_; }

  /// Down-cast: the node as T when its kind is T::kKind, else nullptr.
  template <class T> const T *as() const {
    if (node_ && node_->kind == T::kKind)
      return static_cast<const T *>(node_.get());
    return nullptr;
  }

private:
  static Expr makeInt(int64_t v);
  std::shared_ptr<const ExprNode> node_;
};

/// Hash/equality by identity (pointer), for maps keyed by Expr or Var.
struct NodeHash {
  size_t operator()(const Expr &e) const { return std::hash<const void *>()(e.get()); }
};
struct NodeEqual {
  bool operator()(const Expr &a, const Expr &b) const { return a.same_as(b); }
};

/// An integer (or boolean: 0/1) constant of any integer/bool dtype, possibly a vector type is
/// NOT allowed (use Broadcast): lanes must be 1. The value is stored wrapped/sign-extended to the
/// dtype's width.
struct IntImmNode : ExprNode {
  static constexpr ExprKind kKind = ExprKind::IntImm;
  int64_t value;
  IntImmNode(Type t, int64_t v) : ExprNode(kKind, t), value(v) {}
  static Expr make(Type t, int64_t value);
};

/// A floating-point constant of a float dtype (scalar). f32/f16/bf16 values are stored
/// rounded to their dtype.
struct FloatImmNode : ExprNode {
  static constexpr ExprKind kKind = ExprKind::FloatImm;
  double value;
  FloatImmNode(Type t, double v) : ExprNode(kKind, t), value(v) {}
  static Expr make(Type t, double value);
};

/// A variable. Identity is the node pointer; names are for printing and need not be unique.
struct VarNode : ExprNode {
  static constexpr ExprKind kKind = ExprKind::Var;
  std::string name;
  VarNode(Type t, std::string n) : ExprNode(kKind, t), name(std::move(n)) {}
};

/// A handle that is known to hold a VarNode.
class Var : public Expr {
public:
  Var() = default;
  /// A fresh variable (a new identity) of the given type (default i64, the index type).
  explicit Var(std::string name, Type t = Type::i64());
  /// Views an Expr that holds a VarNode as a Var; throws tessel::Error otherwise.
  static Var fromExpr(const Expr &e);
  const VarNode *get() const { return static_cast<const VarNode *>(Expr::get()); }
  const VarNode *operator->() const { return get(); }
  const std::string &name() const { return get()->name; }
};

/// Arithmetic, comparison and logical binary nodes share one layout.
template <ExprKind K> struct BinaryNode : ExprNode {
  static constexpr ExprKind kKind = K;
  Expr a, b;
  BinaryNode(Type t, Expr x, Expr y) : ExprNode(K, t), a(std::move(x)), b(std::move(y)) {}
  /// Checks: arithmetic needs equal non-bool types (Min/Max/EQ/NE also accept bool); comparisons
  /// need equal types and give boolean with the same lanes; And/Or need boolean operands of equal
  /// lanes.
  static Expr make(Expr a, Expr b);
};

using AddNode = BinaryNode<ExprKind::Add>;
using SubNode = BinaryNode<ExprKind::Sub>;
using MulNode = BinaryNode<ExprKind::Mul>;
using DivNode = BinaryNode<ExprKind::Div>; ///< integers: floor division
using ModNode = BinaryNode<ExprKind::Mod>; ///< integers: floor modulo (sign of the divisor)
using MinNode = BinaryNode<ExprKind::Min>;
using MaxNode = BinaryNode<ExprKind::Max>;
using EQNode = BinaryNode<ExprKind::EQ>;
using NENode = BinaryNode<ExprKind::NE>;
using LTNode = BinaryNode<ExprKind::LT>;
using LENode = BinaryNode<ExprKind::LE>;
using GTNode = BinaryNode<ExprKind::GT>;
using GENode = BinaryNode<ExprKind::GE>;
using AndNode = BinaryNode<ExprKind::And>;
using OrNode = BinaryNode<ExprKind::Or>;

/// Logical negation of a boolean (scalar or vector).
struct NotNode : ExprNode {
  static constexpr ExprKind kKind = ExprKind::Not;
  Expr a;
  NotNode(Type t, Expr x) : ExprNode(kKind, t), a(std::move(x)) {}
  static Expr make(Expr a);
};

/// cond ? trueValue : falseValue, evaluated lane-wise; both values are evaluated (no short
/// circuit: use IfThenElse to guard a load). cond is boolean with 1 lane or the values' lanes.
struct SelectNode : ExprNode {
  static constexpr ExprKind kKind = ExprKind::Select;
  Expr cond, trueValue, falseValue;
  SelectNode(Type t, Expr c, Expr a, Expr b)
      : ExprNode(kKind, t), cond(std::move(c)), trueValue(std::move(a)), falseValue(std::move(b)) {}
  static Expr make(Expr cond, Expr trueValue, Expr falseValue);
};

/// Conversion to `type` (same lanes as value): float->int truncates toward zero, int->int
/// wraps or extends by the source's signedness, x->bool is x != 0, bool->x is 0/1.
struct CastNode : ExprNode {
  static constexpr ExprKind kKind = ExprKind::Cast;
  Expr value;
  CastNode(Type t, Expr v) : ExprNode(kKind, t), value(std::move(v)) {}
  static Expr make(Type t, Expr value);
};

/// A pure intrinsic call. Known names, their arity and operand rules are in intrinsicTable();
/// all take and return the same (float, unless noted) type:
///   exp log tanh sqrt erf fabs floor ceil round sigmoid sin cos asin acos atan rsqrt (1 float
///   arg), pow fma(3) (float), abs (int or float, 1 arg),
///   shl shr (2 integer args: x shifted by y bits; shr is logical for unsigned and arithmetic
///   for signed types; an amount outside [0, bits) gives 0, or -1 for shr of a negative x),
///   prefetch (1 arg, a Load: a hint to bring the cache line of that element close to the core;
///   it reads nothing, has the load's type and value 0, and its element may lie outside the
///   buffer, since a prefetch never faults. Used as Evaluate(prefetch(B[i])); te::Stage::prefetch
///   makes it),
///   xor (2 integer args: bitwise exclusive or; the counter-based generator of the random
///   ops, lib/Graph/Ops/Random.cpp),
///   fresh_u64 (1 u64 arg, a salt: NOT pure. Each evaluation yields a new value: a module
///   counter bumped atomically, mixed with the cycle counter, the counter's address and the
///   salt; thread-safe, different across runs and processes. Never folded (Simplify), so that
///   an unseeded random op draws new values on each run: docs/lowering.md, "Random ops").
struct CallNode : ExprNode {
  static constexpr ExprKind kKind = ExprKind::Call;
  std::string name;
  std::vector<Expr> args;
  CallNode(Type t, std::string n, std::vector<Expr> a)
      : ExprNode(kKind, t), name(std::move(n)), args(std::move(a)) {}
  /// Checks the name against intrinsicTable(), the arity and the argument types (all equal);
  /// the result type is the arguments' type.
  static Expr make(std::string name, std::vector<Expr> args);
};

/// True for a prefetch(B[i]) call (see CallNode): evaluators must not read its argument.
bool isPrefetch(const Expr &e);

/// One entry of the intrinsic table.
struct IntrinsicInfo {
  std::string_view name;
  int arity;
  bool floatOnly; ///< false: integers are accepted too (abs)
  bool intOnly = false; ///< integers only (shl, shr)
  bool fresh = false; ///< not a function of its arguments (fresh_u64): Simplify never folds it
};
const std::vector<IntrinsicInfo> &intrinsicTable();
const IntrinsicInfo *lookupIntrinsic(std::string_view name);

//===----------------------------------------------------------------------===//
// Buffer
//===----------------------------------------------------------------------===//

struct BufferNode {
  std::string name;
  DType dtype = DType::f32;
  /// Extents, outermost first (row-major). Integer expressions (constants or scalar params).
  std::vector<Expr> shape;
  /// Element strides per dimension; empty = dense row-major (computed from shape).
  std::vector<Expr> strides;
  /// The pointer to the first element (type handle). Identity of the buffer's memory.
  Var data;
  /// "global": a function parameter (caller's memory); "local": allocated by an Allocate.
  std::string scope = "global";
  /// Guaranteed alignment of `data` in bytes (0 = unknown / element alignment).
  int alignment = 0;
};

/// A handle to an immutable BufferNode. Identity (same_as) is the node pointer.
class Buffer {
public:
  Buffer() = default;
  explicit Buffer(std::shared_ptr<const BufferNode> n) : node_(std::move(n)) {}
  /// A new buffer; shape entries must be scalar integers; strides empty or one per dimension.
  /// The data variable is a fresh Var named `name` of type handle.
  static Buffer make(std::string name, DType dtype, std::vector<Expr> shape,
                     std::string scope = "global", std::vector<Expr> strides = {},
                     int alignment = 0);

  bool defined() const { return node_ != nullptr; }
  const BufferNode *get() const { return node_.get(); }
  const BufferNode *operator->() const { return node_.get(); }
  bool same_as(const Buffer &o) const { return node_ == o.node_; }

  const std::string &name() const { return node_->name; }
  DType dtype() const { return node_->dtype; }
  size_t rank() const { return node_->shape.size(); }
  /// The element stride of each dimension: `strides` when given, else dense row-major products
  /// of the shape (built as expressions, constants folded).
  std::vector<Expr> denseStrides() const;
  /// A copy with a different shape/strides (same name, dtype, data var, scope, alignment):
  /// used by StorageFlatten to make the one-dimensional view.
  Buffer withShape(std::vector<Expr> shape, std::vector<Expr> strides = {}) const;

  /// A Load of this buffer at the given indices (one per dimension before flattening).
  Expr load(std::vector<Expr> indices, Expr predicate = Expr()) const;
  template <class... Ix> Expr operator()(Ix &&...ix) const {
    return load(std::vector<Expr>{Expr(std::forward<Ix>(ix))...});
  }

private:
  std::shared_ptr<const BufferNode> node_;
};

struct BufferHash {
  size_t operator()(const Buffer &b) const { return std::hash<const void *>()(b.get()); }
};
struct BufferEqual {
  bool operator()(const Buffer &a, const Buffer &b) const { return a.same_as(b); }
};

/// buffer[indices] (with an optional boolean predicate: lanes where it is false are not read
/// and give an unspecified value). There is exactly one index per buffer dimension: before
/// StorageFlatten the buffers are multi-dimensional; StorageFlatten rewrites accesses to a
/// one-dimensional view of the buffer (Buffer::withShape, same data var) and one flat index. All indices are integers with the same lanes L; the result
/// has the buffer's dtype with L lanes (L > 1: a vector load, e.g. a Ramp index). The predicate
/// is boolean with L lanes.
struct LoadNode : ExprNode {
  static constexpr ExprKind kKind = ExprKind::Load;
  Buffer buffer;
  std::vector<Expr> indices;
  Expr predicate; ///< may be undefined (all lanes)
  LoadNode(Type t, Buffer b, std::vector<Expr> ix, Expr p)
      : ExprNode(kKind, t), buffer(std::move(b)), indices(std::move(ix)), predicate(std::move(p)) {}
  static Expr make(Buffer buffer, std::vector<Expr> indices, Expr predicate = Expr());
};

/// The vector base, base + stride, ..., base + (lanes-1)*stride. base and stride are scalar
/// integers of one type; lanes > 1.
struct RampNode : ExprNode {
  static constexpr ExprKind kKind = ExprKind::Ramp;
  Expr base, stride;
  int lanes;
  RampNode(Type t, Expr b, Expr s, int l)
      : ExprNode(kKind, t), base(std::move(b)), stride(std::move(s)), lanes(l) {}
  static Expr make(Expr base, Expr stride, int lanes);
};

/// A scalar value repeated `lanes` times (lanes >= 1; 1 gives the value itself from make()).
struct BroadcastNode : ExprNode {
  static constexpr ExprKind kKind = ExprKind::Broadcast;
  Expr value;
  int lanes;
  BroadcastNode(Type t, Expr v, int l) : ExprNode(kKind, t), value(std::move(v)), lanes(l) {}
  static Expr make(Expr value, int lanes);
};

/// let var = value in body (var's type must equal value's type).
struct LetNode : ExprNode {
  static constexpr ExprKind kKind = ExprKind::Let;
  Var var;
  Expr value, body;
  LetNode(Type t, Var v, Expr val, Expr b)
      : ExprNode(kKind, t), var(std::move(v)), value(std::move(val)), body(std::move(b)) {}
  static Expr make(Var var, Expr value, Expr body);
};

/// Concatenates the lanes of `vectors` (all of one element dtype) and picks `indices` from the
/// concatenation: result lanes = indices.size(). Covers slices, concatenation, interleaves.
struct ShuffleNode : ExprNode {
  static constexpr ExprKind kKind = ExprKind::Shuffle;
  std::vector<Expr> vectors;
  std::vector<int> indices;
  ShuffleNode(Type t, std::vector<Expr> v, std::vector<int> ix)
      : ExprNode(kKind, t), vectors(std::move(v)), indices(std::move(ix)) {}
  static Expr make(std::vector<Expr> vectors, std::vector<int> indices);
};

enum class ReduceOp : uint8_t { Add, Mul, Min, Max };
std::string_view reduceOpName(ReduceOp op); // "add", "mul", "min", "max"

/// Reduces all lanes of a vector to a scalar of its element type (float Add: the order of the
/// additions is unspecified).
struct VectorReduceNode : ExprNode {
  static constexpr ExprKind kKind = ExprKind::VectorReduce;
  ReduceOp op;
  Expr value;
  VectorReduceNode(Type t, ReduceOp o, Expr v) : ExprNode(kKind, t), op(o), value(std::move(v)) {}
  static Expr make(ReduceOp op, Expr value);
};

//===----------------------------------------------------------------------===//
// Constants and operators (for TE users and passes)
//===----------------------------------------------------------------------===//

/// A constant of type t (IntImm/FloatImm, broadcast when t has lanes > 1). Bool: v != 0.
Expr makeConst(Type t, int64_t v);
Expr makeConst(Type t, double v);
Expr makeZero(Type t);
Expr makeOne(Type t);
Expr makeBool(bool v, int lanes = 1);

/// The constant value when e is a scalar IntImm (or a Broadcast of one); nullptr otherwise.
const int64_t *asConstInt(const Expr &e);
/// The constant value when e is a scalar FloatImm (or a Broadcast of one); nullptr otherwise.
const double *asConstFloat(const Expr &e);
bool isConstInt(const Expr &e, int64_t v);
bool isZero(const Expr &e);
bool isOne(const Expr &e);

namespace detail {
template <class T>
inline constexpr bool isLiteral =
    std::is_arithmetic_v<std::remove_cvref_t<T>> && !std::is_same_v<std::remove_cvref_t<T>, bool>;
/// The literal as a constant of `like`'s type (dtype and lanes); throws for a fractional
/// value with an integer/bool type.
Expr literalLike(const Expr &like, int64_t v);
Expr literalLike(const Expr &like, double v);
template <class T> Expr lit(const Expr &like, T v) {
  if constexpr (std::is_floating_point_v<T>)
    return literalLike(like, double(v));
  else
    return literalLike(like, int64_t(v));
}
} // namespace detail

#define TESSEL_LOOP_BINARY_OP(OP, FN)                                                               \
  Expr FN(Expr a, Expr b);                                                                         \
  inline Expr operator OP(const Expr &a, const Expr &b) { return FN(a, b); }                       \
  template <class T, std::enable_if_t<detail::isLiteral<T>, int> = 0>                              \
  Expr operator OP(const Expr &a, T b) {                                                           \
    return FN(a, detail::lit(a, b));                                                               \
  }                                                                                                \
  template <class T, std::enable_if_t<detail::isLiteral<T>, int> = 0>                              \
  Expr operator OP(T a, const Expr &b) {                                                           \
    return FN(detail::lit(b, a), b);                                                               \
  }

TESSEL_LOOP_BINARY_OP(+, add)
TESSEL_LOOP_BINARY_OP(-, sub)
TESSEL_LOOP_BINARY_OP(*, mul)
TESSEL_LOOP_BINARY_OP(/, div) // integers: floor division
TESSEL_LOOP_BINARY_OP(%, mod) // integers: floor modulo
TESSEL_LOOP_BINARY_OP(==, eq) // returns a boolean Expr, NOT a C++ bool: use same_as/exprEqual
TESSEL_LOOP_BINARY_OP(!=, ne)
TESSEL_LOOP_BINARY_OP(<, lt)
TESSEL_LOOP_BINARY_OP(<=, le)
TESSEL_LOOP_BINARY_OP(>, gt)
TESSEL_LOOP_BINARY_OP(>=, ge)
#undef TESSEL_LOOP_BINARY_OP

Expr logicalAnd(Expr a, Expr b);
Expr logicalOr(Expr a, Expr b);
Expr logicalNot(Expr a);
inline Expr operator&&(const Expr &a, const Expr &b) { return logicalAnd(a, b); }
inline Expr operator||(const Expr &a, const Expr &b) { return logicalOr(a, b); }
inline Expr operator!(const Expr &a) { return logicalNot(a); }
/// 0 - a (in a's type).
Expr neg(Expr a);
inline Expr operator-(const Expr &a) { return neg(a); }

Expr min(Expr a, Expr b);
Expr max(Expr a, Expr b);
template <class T, std::enable_if_t<detail::isLiteral<T>, int> = 0> Expr min(const Expr &a, T b) {
  return min(a, detail::lit(a, b));
}
template <class T, std::enable_if_t<detail::isLiteral<T>, int> = 0> Expr max(const Expr &a, T b) {
  return max(a, detail::lit(a, b));
}
Expr select(Expr cond, Expr trueValue, Expr falseValue);
Expr cast(Type t, Expr value);
/// cast to t's dtype keeping value's lanes.
Expr cast(DType t, Expr value);
Expr call(std::string name, std::vector<Expr> args);
Expr exp(Expr x);
Expr log(Expr x);
Expr tanh(Expr x);
Expr sqrt(Expr x);
Expr rsqrt(Expr x);
Expr erf(Expr x);
Expr sigmoid(Expr x);
Expr fabs(Expr x);
Expr abs(Expr x);
Expr floor(Expr x);
Expr ceil(Expr x);
Expr round(Expr x);
Expr sin(Expr x);
Expr cos(Expr x);
Expr asin(Expr x);
Expr acos(Expr x);
Expr atan(Expr x);
Expr pow(Expr x, Expr y);
/// x << y and x >> y (see CallNode: amounts outside [0, bits) are defined).
Expr shl(Expr x, Expr y);
Expr shr(Expr x, Expr y);
/// x ^ y (integers) and a fresh 64-bit value per evaluation (see CallNode).
Expr bitXor(Expr x, Expr y);
Expr freshU64(Expr salt);
Expr fma(Expr a, Expr b, Expr c);
Expr ramp(Expr base, Expr stride, int lanes);
Expr broadcast(Expr value, int lanes);
Expr let(Var var, Expr value, Expr body);
Expr shuffle(std::vector<Expr> vectors, std::vector<int> indices);
Expr vectorReduce(ReduceOp op, Expr value);

//===----------------------------------------------------------------------===//
// Stmt
//===----------------------------------------------------------------------===//

struct StmtNode {
  StmtKind kind;
  explicit StmtNode(StmtKind k) : kind(k) {}
  virtual ~StmtNode() = default;
};

/// A handle to an immutable statement node (possibly null: `defined()`).
class Stmt {
public:
  Stmt() = default;
  explicit Stmt(std::shared_ptr<const StmtNode> n) : node_(std::move(n)) {}
  bool defined() const { return node_ != nullptr; }
  const StmtNode *get() const { return node_.get(); }
  const StmtNode *operator->() const { return node_.get(); }
  const std::shared_ptr<const StmtNode> &ptr() const { return node_; }
  StmtKind kind() const { return node_->kind; }
  bool same_as(const Stmt &o) const { return node_ == o.node_; }
  template <class T> const T *as() const {
    if (node_ && node_->kind == T::kKind)
      return static_cast<const T *>(node_.get());
    return nullptr;
  }

private:
  std::shared_ptr<const StmtNode> node_;
};

enum class ForKind : uint8_t { Serial, Parallel, Vectorized, Unrolled };
/// "serial", "parallel", "vectorized", "unrolled".
std::string_view forKindName(ForKind k);

/// for loopVar in [min, min + extent): body. min/extent are scalar integers of loopVar's type
/// (an integer type). Vectorized loops are turned into vector code by the Vectorize pass;
/// Parallel loops become a tessel_parallel_for call in code generation.
struct ForNode : StmtNode {
  static constexpr StmtKind kKind = StmtKind::For;
  Var loopVar;
  Expr min, extent;
  ForKind forKind;
  Stmt body;
  ForNode(Var v, Expr mn, Expr ext, ForKind k, Stmt b)
      : StmtNode(kKind), loopVar(std::move(v)), min(std::move(mn)), extent(std::move(ext)),
        forKind(k), body(std::move(b)) {}
  static Stmt make(Var loopVar, Expr min, Expr extent, ForKind kind, Stmt body);
};

/// buffer[indices] = value (lanes where the optional predicate is false are not written).
/// Index rules as LoadNode; value has the buffer's dtype and the indices' lanes.
struct StoreNode : StmtNode {
  static constexpr StmtKind kKind = StmtKind::Store;
  Buffer buffer;
  Expr value;
  std::vector<Expr> indices;
  Expr predicate; ///< may be undefined
  StoreNode(Buffer b, Expr v, std::vector<Expr> ix, Expr p)
      : StmtNode(kKind), buffer(std::move(b)), value(std::move(v)), indices(std::move(ix)),
        predicate(std::move(p)) {}
  static Stmt make(Buffer buffer, Expr value, std::vector<Expr> indices, Expr predicate = Expr());
};

/// let var = value in body (statement form).
struct LetStmtNode : StmtNode {
  static constexpr StmtKind kKind = StmtKind::LetStmt;
  Var var;
  Expr value;
  Stmt body;
  LetStmtNode(Var v, Expr val, Stmt b)
      : StmtNode(kKind), var(std::move(v)), value(std::move(val)), body(std::move(b)) {}
  static Stmt make(Var var, Expr value, Stmt body);
};

/// if (cond) thenCase else elseCase; cond is a scalar boolean; elseCase may be undefined.
struct IfThenElseNode : StmtNode {
  static constexpr StmtKind kKind = StmtKind::IfThenElse;
  Expr cond;
  Stmt thenCase, elseCase;
  IfThenElseNode(Expr c, Stmt t, Stmt e)
      : StmtNode(kKind), cond(std::move(c)), thenCase(std::move(t)), elseCase(std::move(e)) {}
  static Stmt make(Expr cond, Stmt thenCase, Stmt elseCase = Stmt());
};

/// Allocates `buffer` (scope "local"; size = product of its shape times its dtype's size) for
/// the duration of body.
struct AllocateNode : StmtNode {
  static constexpr StmtKind kKind = StmtKind::Allocate;
  Buffer buffer;
  Stmt body;
  AllocateNode(Buffer b, Stmt s) : StmtNode(kKind), buffer(std::move(b)), body(std::move(s)) {}
  static Stmt make(Buffer buffer, Stmt body);
};

/// Evaluates an expression for its effects (none today: used as a no-op `Evaluate(0)`).
struct EvaluateNode : StmtNode {
  static constexpr StmtKind kKind = StmtKind::Evaluate;
  Expr value;
  explicit EvaluateNode(Expr v) : StmtNode(kKind), value(std::move(v)) {}
  static Stmt make(Expr value);
};

/// Statements run in order. make() flattens nested Seqs, drops undefined entries, and returns
/// the single statement itself when one remains (a no-op Evaluate(0) when none).
struct SeqNode : StmtNode {
  static constexpr StmtKind kKind = StmtKind::Seq;
  std::vector<Stmt> stmts;
  explicit SeqNode(std::vector<Stmt> s) : StmtNode(kKind), stmts(std::move(s)) {}
  static Stmt make(std::vector<Stmt> stmts);
};

/// The canonical no-op statement: Evaluate(0).
Stmt makeNoOp();
/// True for Evaluate of a constant and for an empty Seq.
bool isNoOp(const Stmt &s);

//===----------------------------------------------------------------------===//
// LoweredFunc
//===----------------------------------------------------------------------===//

/// One function parameter: a buffer (its data pointer is passed) or a scalar variable.
struct Param {
  Buffer buffer; ///< defined for a buffer parameter
  Var var;       ///< defined for a scalar parameter
  static Param ofBuffer(Buffer b) { return Param{std::move(b), Var()}; }
  static Param ofVar(Var v) { return Param{Buffer(), std::move(v)}; }
  bool isBuffer() const { return buffer.defined(); }
  const std::string &name() const { return isBuffer() ? buffer.name() : var.name(); }
};

/// A function ready for code generation: `name(params...)` running `body`.
struct LoweredFunc {
  std::string name;
  std::vector<Param> params;
  Stmt body;
};

//===----------------------------------------------------------------------===//
// Structural equality, hashing, substitution
//===----------------------------------------------------------------------===//

/// Structural equality: same kinds, types, constants, names of calls, and operands; Vars and
/// Buffers compare by identity, except that variables bound inside the compared trees (Let,
/// LetStmt, For) are matched up positionally (alpha-equivalence).
bool exprEqual(const Expr &a, const Expr &b);
bool stmtEqual(const Stmt &a, const Stmt &b);
/// A hash consistent with exprEqual for expressions without binders (Vars hash by identity).
size_t exprHash(const Expr &e);

struct ExprStructHash {
  size_t operator()(const Expr &e) const { return exprHash(e); }
};
struct ExprStructEqual {
  bool operator()(const Expr &a, const Expr &b) const { return exprEqual(a, b); }
};

/// Var -> replacement (keyed by identity).
using VarMap = std::unordered_map<Expr, Expr, NodeHash, NodeEqual>;
/// Replaces free occurrences of the map's variables (declared in Visitor.h's implementation;
/// returns the same node when nothing changed).
/// The operands (a, b) of any binary node (isBinary(e.kind())), read through its own node type;
/// Error for any other kind.
std::pair<const Expr &, const Expr &> binaryOperands(const Expr &e);
Expr substitute(const Expr &e, const VarMap &map);
Stmt substitute(const Stmt &s, const VarMap &map);
inline Expr substitute(const Expr &e, const Var &v, const Expr &value) {
  return substitute(e, VarMap{{v, value}});
}
inline Stmt substitute(const Stmt &s, const Var &v, const Expr &value) {
  return substitute(s, VarMap{{v, value}});
}

} // namespace tessel::loop
