//===- Interpreter.h - the reference interpreter ----------------*- C++ -*-===//
//
// Runs a graph node by node with each op's reference kernel. Slow where it must be, obviously
// correct: the oracle every compiled, fused, quantized or pruned result is tested against.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Graph/OpRegistry.h"

#include <map>
#include <string>
#include <vector>

namespace tessel {

struct InterpOptions {
  /// Check each kernel's outputs against the node's inferred types (dtype, rank, static dims).
  bool checkInferredTypes = true;
};

class Interpreter {
public:
  explicit Interpreter(const Graph &g, InterpOptions opts = {});
  /// Runs with inputs given by graph input name (initializer-backed inputs may be omitted).
  /// Checks names, dtypes and static/symbolic dims of the inputs; errors name the input.
  std::map<std::string, Object> run(const std::map<std::string, Object> &inputs);
  /// Runs with inputs in graph-input order (non-initializer inputs only); outputs in order.
  std::vector<Object> runOrdered(const std::vector<Object> &inputs);

private:
  const Graph &graph_;
  InterpOptions opts_;
};

/// The graph inputs the caller must provide (graph inputs that are not initializers).
std::vector<const Value *> requiredInputs(const Graph &g);

} // namespace tessel
