//===- Evaluate.cpp - reference semantics of scalar loop IR expressions ---===//

#include "tessel/Loop/Evaluate.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstring>

namespace tessel::loop {

namespace {

double roundFloat(DType d, double v) {
  switch (d) {
  case DType::f32: return double(float(v));
  case DType::f16: return double(float(Float16(float(v))));
  case DType::bf16: return double(float(BFloat16(float(v))));
  default: return v;
  }
}

bool isU64(Type t) { return t.dtype == DType::u64; }

int64_t floorDiv(int64_t a, int64_t b) {
  if (b == -1)
    return int64_t(0 - uint64_t(a)); // wraps for INT64_MIN instead of trapping
  int64_t q = a / b, r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? q - 1 : q;
}

int64_t floorMod(int64_t a, int64_t b) {
  if (b == -1)
    return 0;
  int64_t r = a % b;
  return (r != 0 && ((r < 0) != (b < 0))) ? r + b : r;
}

/// A comparison of two numbers of one representation.
template <class T> bool compare(ExprKind op, T x, T y) {
  switch (op) {
  case ExprKind::EQ: return x == y;
  case ExprKind::NE: return x != y;
  case ExprKind::LT: return x < y;
  case ExprKind::LE: return x <= y;
  case ExprKind::GT: return x > y;
  default: return x >= y;
  }
}

} // namespace

Value Value::ofInt(Type t, int64_t v) {
  Value r;
  r.type = t;
  r.i = wrapInt(t.dtype, v);
  return r;
}

Value Value::ofFloat(Type t, double v) {
  Value r;
  r.type = t;
  r.f = roundFloat(t.dtype, v);
  return r;
}

Value evaluateBinary(ExprKind op, const Value &a, const Value &b) {
  Type t = a.type;
  if (isComparison(op)) {
    bool r = t.isFloat() ? compare(op, a.f, b.f)
             : isU64(t)  ? compare(op, uint64_t(a.i), uint64_t(b.i))
                         : compare(op, a.i, b.i); // narrower unsigned values are zero-extended
    return Value::ofInt(Type::boolean(), r);
  }
  if (t.isFloat()) {
    double x = a.f, y = b.f, r = 0;
    switch (op) {
    case ExprKind::Add: r = x + y; break;
    case ExprKind::Sub: r = x - y; break;
    case ExprKind::Mul: r = x * y; break;
    case ExprKind::Div: r = x / y; break;
    case ExprKind::Mod: r = x - std::floor(x / y) * y; break;
    case ExprKind::Min: r = std::isnan(x) || std::isnan(y) ? NAN : std::min(x, y); break;
    case ExprKind::Max: r = std::isnan(x) || std::isnan(y) ? NAN : std::max(x, y); break;
    default: fail("evaluate: ", exprKindName(op), " of ", t.toString(), " (expected numbers)");
    }
    return Value::ofFloat(t, r);
  }
  uint64_t ux = uint64_t(a.i), uy = uint64_t(b.i);
  int64_t x = a.i, y = b.i, r = 0;
  switch (op) {
  case ExprKind::Add: r = int64_t(ux + uy); break;
  case ExprKind::Sub: r = int64_t(ux - uy); break;
  case ExprKind::Mul: r = int64_t(ux * uy); break;
  case ExprKind::Div:
  case ExprKind::Mod:
    TESSEL_CHECK(y != 0, "evaluate: integer ", exprKindName(op), " by zero");
    if (isU64(t))
      r = int64_t(op == ExprKind::Div ? ux / uy : ux % uy);
    else
      r = op == ExprKind::Div ? floorDiv(x, y) : floorMod(x, y);
    break;
  case ExprKind::Min: r = isU64(t) ? int64_t(std::min(ux, uy)) : std::min(x, y); break;
  case ExprKind::Max: r = isU64(t) ? int64_t(std::max(ux, uy)) : std::max(x, y); break;
  case ExprKind::And: r = x && y; break;
  case ExprKind::Or: r = x || y; break;
  default: fail("evaluate: unsupported binary ", exprKindName(op));
  }
  return Value::ofInt(t, r);
}

Value evaluateCast(Type t, const Value &v) {
  t = t.element();
  if (t.isBool())
    return Value::ofInt(t, v.isFloat() ? v.f != 0 : v.i != 0);
  if (t.isFloat()) {
    if (v.isFloat())
      return Value::ofFloat(t, v.f);
    return Value::ofFloat(t, isU64(v.type) ? double(uint64_t(v.i)) : double(v.i));
  }
  if (v.isFloat()) {
    TESSEL_CHECK(std::isfinite(v.f) && std::fabs(v.f) < 9.2e18, "evaluate: cast of ", v.f,
                 " to ", t.toString(), " is out of range");
    return Value::ofInt(t, int64_t(std::trunc(v.f)));
  }
  return Value::ofInt(t, v.i);
}

Value evaluateCall(const std::string &name, const std::vector<Value> &args) {
  TESSEL_CHECK(!args.empty(), "evaluate: call ", name, " without arguments");
  Type t = args[0].type;
  if (!t.isFloat() && (name == "shl" || name == "shr")) {
    // amounts outside [0, bits) shift every bit out (CallNode's definition)
    const uint64_t amount = uint64_t(args.at(1).i), bits = uint64_t(t.bits());
    const int64_t x = args[0].i;
    if (name == "shl")
      return Value::ofInt(t, amount >= bits ? 0 : int64_t(uint64_t(x) << amount));
    if (t.isUInt())
      return Value::ofInt(t, amount >= bits ? 0 : int64_t(uint64_t(x) >> amount));
    return Value::ofInt(t, x >> std::min<uint64_t>(amount, 63)); // sign-extended in 64 bits
  }
  if (!t.isFloat() && name == "xor")
    return Value::ofInt(t, args[0].i ^ args.at(1).i);
  if (name == "fresh_u64") {
    // As generated code (EmitLLVM.cpp): a process-wide counter, the clock and the counter's
    // address, mixed with the salt by SplitMix64's finalizer: a new value on every call.
    static std::atomic<uint64_t> counter{0};
    uint64_t z = (counter.fetch_add(1, std::memory_order_relaxed) + 1) * 0x9E3779B97F4A7C15ull;
    z += uint64_t(std::chrono::steady_clock::now().time_since_epoch().count()) ^
         uint64_t(reinterpret_cast<uintptr_t>(&counter)) ^ uint64_t(args[0].i);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return Value::ofInt(t, int64_t(z ^ (z >> 31)));
  }
  if (!t.isFloat()) {
    TESSEL_CHECK(name == "abs", "evaluate: call ", name, " of ", t.toString());
    return Value::ofInt(t, args[0].i < 0 ? int64_t(0 - uint64_t(args[0].i)) : args[0].i);
  }
  double x = args[0].f, r = 0;
  if (name == "bf16_trunc") {
    TESSEL_CHECK(t.dtype == DType::f32, "evaluate: call bf16_trunc of ", t.toString(),
                 " (expected f32)");
    float f = float(x);
    uint32_t u;
    std::memcpy(&u, &f, 4);
    u = std::isnan(f) ? (u | 0x400000u) & 0xffff0000u : u & 0xffff0000u;
    std::memcpy(&f, &u, 4);
    return Value::ofFloat(t, f);
  }
  if (name == "exp") r = std::exp(x);
  else if (name == "log") r = std::log(x);
  else if (name == "tanh") r = std::tanh(x);
  else if (name == "sqrt") r = std::sqrt(x);
  else if (name == "rsqrt") r = 1.0 / std::sqrt(x);
  else if (name == "erf") r = std::erf(x);
  else if (name == "sigmoid") r = 1.0 / (1.0 + std::exp(-x));
  else if (name == "fabs" || name == "abs") r = std::fabs(x);
  else if (name == "floor") r = std::floor(x);
  else if (name == "ceil") r = std::ceil(x);
  else if (name == "round") r = std::nearbyint(x); // round half to even
  else if (name == "sin") r = std::sin(x);
  else if (name == "cos") r = std::cos(x);
  else if (name == "asin") r = std::asin(x);
  else if (name == "acos") r = std::acos(x);
  else if (name == "atan") r = std::atan(x);
  else if (name == "pow") r = std::pow(x, args.at(1).f);
  else if (name == "fma") r = std::fma(x, args.at(1).f, args.at(2).f);
  else fail("evaluate: unknown intrinsic '", name, "'");
  return Value::ofFloat(t, r);
}

Value evaluate(const Expr &e, const Env &env) {
  TESSEL_CHECK(e.defined(), "evaluate: undefined expression");
  TESSEL_CHECK(e.type().isScalar(), "evaluate: ", exprKindName(e.kind()), " has vector type ",
               e.type().toString(), " (expected a scalar expression)");
  switch (e.kind()) {
  case ExprKind::IntImm: return Value::ofInt(e.type(), e.as<IntImmNode>()->value);
  case ExprKind::FloatImm: return Value::ofFloat(e.type(), e.as<FloatImmNode>()->value);
  case ExprKind::Var: {
    auto it = env.find(e.get());
    TESSEL_CHECK(it != env.end(), "evaluate: variable %", e.as<VarNode>()->name, " is unbound");
    return it->second;
  }
#define BIN(K)                                                                                     \
  case ExprKind::K:                                                                                \
    return evaluateBinary(ExprKind::K, evaluate(e.as<K##Node>()->a, env),                          \
                          evaluate(e.as<K##Node>()->b, env));
    TESSEL_LOOP_BINARY_KINDS(BIN)
#undef BIN
  case ExprKind::Not: return Value::ofInt(e.type(), !evaluate(e.as<NotNode>()->a, env).i);
  case ExprKind::Select: {
    auto *s = e.as<SelectNode>();
    Value c = evaluate(s->cond, env);
    Value a = evaluate(s->trueValue, env), b = evaluate(s->falseValue, env);
    return c.i ? a : b;
  }
  case ExprKind::Cast: return evaluateCast(e.type(), evaluate(e.as<CastNode>()->value, env));
  case ExprKind::Call: {
    if (isPrefetch(e)) // a hint: no value, and its address is not read
      return e.type().isFloat() ? Value::ofFloat(e.type(), 0) : Value::ofInt(e.type(), 0);
    std::vector<Value> args;
    for (auto &a : e.as<CallNode>()->args)
      args.push_back(evaluate(a, env));
    return evaluateCall(e.as<CallNode>()->name, args);
  }
  case ExprKind::Let: {
    auto *l = e.as<LetNode>();
    Env inner = env;
    inner[l->var.get()] = evaluate(l->value, env);
    return evaluate(l->body, inner);
  }
  default:
    fail("evaluate: ", exprKindName(e.kind()), " is not supported (expected a scalar expression "
         "without loads or vectors)");
  }
}

} // namespace tessel::loop
