//===- Evaluate.h - evaluating scalar loop IR expressions -------*- C++ -*-===//
//
// The reference semantics of scalar expressions: used to test the simplifier's rules (both
// sides on random values) and by the loop IR interpreter. Integers are computed at the width
// of their dtype with wrap-around; Div/Mod are floor division/modulo; floats of f32 type are
// rounded to float after each operation.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Loop/IR.h"

#include <unordered_map>

namespace tessel::loop {

/// A scalar value: integers and bools in `i` (bool = 0/1), floats in `f`.
struct Value {
  Type type;
  int64_t i = 0;
  double f = 0;
  static Value ofInt(Type t, int64_t v);
  static Value ofFloat(Type t, double v);
  bool isFloat() const { return type.isFloat(); }
};

/// Var -> value, keyed by identity.
using Env = std::unordered_map<const ExprNode *, Value>;

/// Evaluates a scalar expression (no Load, Ramp, Broadcast, Shuffle or VectorReduce). Throws
/// tessel::Error for an unbound variable, a vector expression, an unsupported node, or an
/// integer division by zero.
Value evaluate(const Expr &e, const Env &env = {});

/// Applies a binary operation to two scalar values of one type (the constant folder's core).
Value evaluateBinary(ExprKind op, const Value &a, const Value &b);
/// Converts a scalar value to type t (Cast semantics).
Value evaluateCast(Type t, const Value &v);
/// Applies an intrinsic (by name) to float/int scalar arguments.
Value evaluateCall(const std::string &name, const std::vector<Value> &args);

} // namespace tessel::loop
