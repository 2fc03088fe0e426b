//===- Text.h - loop IR text form (printer and parser) ----------*- C++ -*-===//
//
// A readable, round-tripping text form (print -> parse -> print gives the same text); see
// docs/loop-ir.md. Example:
//
//   func @add_one(%A: f32[%n], %B: f32[%n], %n: i64) {
//     for %i in 0..%n {
//       B[%i] = A[%i] + 1.0f
//     }
//   }
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Loop/IR.h"

#include <string>
#include <string_view>
#include <vector>

namespace tessel::loop {

std::string printExpr(const Expr &e);
std::string printStmt(const Stmt &s, int indent = 0);
std::string printFunc(const LoweredFunc &f);

/// Parses one function; errors are tessel::Error with "<file>:line:col: expected ...".
LoweredFunc parseFunc(std::string_view text, std::string_view file = "<input>");
/// Parses zero or more functions.
std::vector<LoweredFunc> parseFuncs(std::string_view text, std::string_view file = "<input>");

} // namespace tessel::loop
