//===- Interpret.h - a reference interpreter for loop IR --------*- C++ -*-===//
//
// Runs a LoweredFunc directly on host data: slow and obviously correct, the oracle the loop
// lowering passes are tested against (a function before and after a pass must compute the same
// buffers). Vector expressions are evaluated lane by lane; every Load and Store is bounds
// checked (each index against the buffer's shape when it has several, and the flat offset
// against the data given) and a violation throws tessel::Error naming the buffer and index.
//
// Data: every buffer's elements are held as double (exact for integers up to 2^53); a store
// converts the value to the buffer's dtype with Cast semantics (evaluateCast: f32 rounds,
// integers wrap to the dtype's width). Every lane's arithmetic, cast and intrinsic goes
// through Evaluate.h (evaluateBinary, evaluateCast, evaluateCall): one definition of the
// IR's scalar semantics (floor Div/Mod, wrap-around at the dtype's width) for the
// interpreter and the simplifier's constant folder.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Loop/IR.h"

#include <string>
#include <unordered_map>
#include <vector>

namespace tessel::loop {

/// Buffer parameters by name: flat element data (row-major, or as laid out by the buffer's
/// strides). Allocations inside the function are created by the interpreter.
using InterpBuffers = std::unordered_map<std::string, std::vector<double>>;
/// Scalar parameters by name.
using InterpScalars = std::unordered_map<std::string, double>;

/// Runs `f`; stores go into `buffers`. Throws tessel::Error for a missing parameter, an
/// out-of-bounds access, an undefined variable or integer division by zero.
void interpret(const LoweredFunc &f, InterpBuffers &buffers, const InterpScalars &scalars = {});

} // namespace tessel::loop
