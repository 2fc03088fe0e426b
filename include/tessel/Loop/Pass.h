//===- Pass.h - loop IR pass registry and pipeline --------------*- C++ -*-===//
//
// Every loop IR pass is registered by name in lib/Loop/Transforms/Pipeline.cpp (one line per
// pass) so that tessel-opt can run it (`--loop-passes=simplify,...`), and the ordered lowering
// pipeline is one list in the same file, with the reason for each ordering constraint.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Loop/IR.h"

#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace tessel::loop {

struct LoopPass {
  std::string name;        ///< the name used by tessel-opt --loop-passes
  std::string description; ///< one line
  std::function<LoweredFunc(const LoweredFunc &)> run;
};

/// Every registered pass, in registration order.
const std::vector<LoopPass> &loopPasses();
/// The pass named `name`; throws tessel::Error listing the known names otherwise.
const LoopPass &lookupLoopPass(std::string_view name);

struct PipelineOptions {
  /// Run verifyLoweredFunc after each pass (throws naming the pass that broke the IR).
  bool verifyEach = true;
  /// Called after each pass with its name and result (for --print-after-all style logging).
  std::function<void(const std::string &pass, const LoweredFunc &)> afterPass;
};

/// Runs the ordered loop lowering pipeline (see Pipeline.cpp for the order and its reasons).
LoweredFunc lowerPipeline(LoweredFunc f, const PipelineOptions &options = {});

/// Checks a function: every variable used is a parameter or bound by an enclosing
/// For/Let/LetStmt, every buffer is a parameter or allocated by an enclosing Allocate, Load/
/// Store index counts match the buffer rank, and the node type rules hold. Throws tessel::Error
/// naming the function and the problem.
void verifyLoweredFunc(const LoweredFunc &f);

} // namespace tessel::loop
