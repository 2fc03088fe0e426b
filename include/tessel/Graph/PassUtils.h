//===- PassUtils.h - small helpers shared by the graph passes -------------===//
//
// The checks and edits every rewrite pass needs (is a value a true constant, is it captured by a
// subgraph, does it have a single use, drop a dead initializer, make a new one), for the passes
// in lib/Graph/Transforms and the compiler's graph preparation (lib/Compiler: compile-time
// specialization of inputs). One copy here instead of one per pass.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Graph/IR.h"

#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

namespace tessel::passutils {

/// Set of values, as the passes pass captured values around.
using ConstValueSet = std::set<const Value *>;

/// True when `v` is one of g's inputs.
bool isGraphInput(const Graph &g, const Value *v);
/// True when `v` is one of g's outputs.
bool isGraphOutput(const Graph &g, const Value *v);

/// Data of `v` when it is an initializer/folded constant the caller cannot override (not a graph
/// input, not a capture) or the `value` tensor of an ai.onnx Constant node; else nullptr.
const Tensor *constantOf(const Graph &g, const Value *v);
/// Like constantOf, but only initializers/folded constants (Constant nodes do not count).
const Tensor *initializerOf(const Graph &g, const Value *v);

/// Values of g that subgraphs of g's nodes (at any depth) capture: their uses are not in uses().
ConstValueSet capturedValues(const Graph &g);
/// Points every capture of `from` in g's subgraphs (at any depth) at `to`.
void redirectCaptures(const Graph &g, const Value *from, Value *to);

/// True when `v` has exactly one use and is no graph output and not captured.
bool hasSingleUse(const Graph &g, const ConstValueSet &captured, const Value *v);
/// True when `v`'s only use is operand `operand` of `user` (see hasSingleUse).
bool onlyUsedBy(const Graph &g, const ConstValueSet &captured, const Value *v, const Node *user,
                size_t operand);

/// Attribute `name` of n: `dflt` when absent, nullopt when it has another kind.
std::optional<int64_t> intAttr(const Node &n, const std::string &name, int64_t dflt);
/// Float attribute `name` of n: `dflt` when absent, nullopt when it has another kind.
std::optional<float> floatAttr(const Node &n, const std::string &name, float dflt);
/// String attribute `name` of n: `dflt` when absent, nullopt when it has another kind.
std::optional<std::string> stringAttr(const Node &n, const std::string &name, std::string dflt);
/// Ints attribute `name` of n: `dflt` when absent, nullopt when it has another kind.
std::optional<std::vector<int64_t>> intsAttr(const Node &n, const std::string &name,
                                             std::vector<int64_t> dflt);

/// True for f32, f64, f16 and bf16.
bool isFloatType(DType dt);
/// True when the permutation `p` is the identity.
bool isIdentityPerm(const std::vector<int64_t> &p);

/// True when n holds a subgraph (or a Graph/Graphs attribute).
bool holdsSubgraph(const Node &n);
/// True for the ai.onnx random ops (Random*, Bernoulli, Multinomial).
bool isRandomOp(const Node &n);

/// Sets the types of n's outputs from its op's shape inference (a node a pass just made).
void setInferredTypes(Node &n);
/// Appends op(inputs) with `attrs`, its one output and the node both named uniquely after
/// `base`, its output types inferred at once (an inference error propagates).
Node *appendInferred(Graph &g, const std::string &op, std::vector<Value *> inputs,
                     const std::string &base, std::map<std::string, Attribute> attrs = {});
/// A new initializer of g holding `t`, named uniquely after `base`.
Value *addConstant(Graph &g, const std::string &base, const Tensor &t);
/// Drops initializer `v` (and its data) when nothing uses, returns, captures or feeds it.
void dropIfDead(Graph &g, const ConstValueSet &captured, Value *v);
/// Erases n and turns its outputs into initializers holding `data` (names and uses kept).
void replaceWithConstants(Graph &g, Node *n, const std::vector<Tensor> &data);

} // namespace tessel::passutils
