//===- Simplify.h - the loop IR simplifier ----------------------*- C++ -*-===//
//
// Constant folding (with floor div/mod and wrap-around integer overflow) and a table of
// algebraic rewrite rules (see lib/Loop/Transforms/Simplify.cpp, one rule per comment), plus
// statement clean-ups: For with extent 1 -> body with the variable substituted, For with
// extent 0 -> no-op, IfThenElse on a constant, LetStmt of a constant or variable substituted.
// Float rules are applied only where they are exact in IEEE arithmetic (x*1.0 -> x, but NOT
// x+0.0 -> x, which is wrong for x = -0.0). Signed integer offsets are canonical: x + (-8)
// and (x - 1) + (-7) read x - 8; (x + k*c) / c -> x / c + k (floor division, c > 0); min/max
// of terms with a known order (x + c1 vs x + c2, (x + c1) / d vs (x + c2) / d) pick one, so
// the bounds of split-by-factor tails read like max(n / 8, 0). Intrinsic calls with constant
// arguments fold through evaluateCall (kept when the result is not finite). Returns the same
// node when nothing changed.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Loop/IR.h"

namespace tessel::loop {

Expr simplify(const Expr &e);
Stmt simplify(const Stmt &s);
LoweredFunc simplify(const LoweredFunc &f);

} // namespace tessel::loop
