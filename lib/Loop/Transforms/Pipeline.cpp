//===- Pipeline.cpp - the loop pass registry and the lowering pipeline ----===//
//
// Adding a pass: declare its entry point in a header, implement it in its own file in this
// folder, and add ONE line to kPasses below. The ordered pipeline is lowerPipeline(), with the
// reason for each ordering constraint written where the pass is called.
//
//===----------------------------------------------------------------------===//

#include "tessel/Loop/Pass.h"
#include "tessel/Loop/Passes.h"
#include "tessel/Loop/Simplify.h"

namespace tessel::loop {

namespace {

LoweredFunc runSimplify(const LoweredFunc &f) { return simplify(f); }
LoweredFunc withBody(LoweredFunc f, Stmt body) { // helper P's passes work on the body
  f.body = std::move(body);
  return f;
}

} // namespace

const std::vector<LoopPass> &loopPasses() {
  static const std::vector<LoopPass> kPasses = {
      {"simplify", "constant folding, algebraic rules, trivial loops/ifs/lets", runSimplify},
      {"loop-partition", "split guarded loops into a guard-free main loop and a tail", [](const LoweredFunc &f) { return withBody(f, loopPartition(f.body)); }},
      {"vectorize", "vectorized loops of constant extent -> ramps, broadcasts, vector loads/stores", [](const LoweredFunc &f) { return withBody(f, vectorizeLoops(f.body)); }},
      {"unroll", "unrolled loops of constant extent -> one copy of the body per iteration", [](const LoweredFunc &f) { return withBody(f, unrollLoops(f.body)); }},
      {"storage-flatten", "multi-index buffer accesses -> one flat index (strides/padding kept)", [](const LoweredFunc &f) { return storageFlatten(f); }},
      {"remove-noop", "drop empty loops, branches, lets, allocations and sequences", [](const LoweredFunc &f) { return withBody(f, removeNoOp(f.body)); }},
  };
  return kPasses;
}

const LoopPass &lookupLoopPass(std::string_view name) {
  for (auto &p : loopPasses())
    if (p.name == name)
      return p;
  std::string known;
  for (auto &p : loopPasses())
    known += (known.empty() ? "" : ", ") + p.name;
  fail("unknown loop pass '", name, "' (expected one of: ", known, ")");
}

LoweredFunc lowerPipeline(LoweredFunc f, const PipelineOptions &options) {
  auto run = [&](std::string_view name) {
    f = lookupLoopPass(name).run(f);
    if (options.verifyEach) {
      try {
        verifyLoweredFunc(f);
      } catch (const Error &e) {
        fail("loop pass '", name, "' produced invalid IR: ", e.what());
      }
    }
    if (options.afterPass)
      options.afterPass(std::string(name), f);
  };
  // Simplify first: folds the index arithmetic that lowering from TE leaves behind, so later
  // passes see constant extents.
  run("simplify");
  // Partition before vectorize: a vectorized loop must have a constant extent and no per-lane
  // guard; partitioning the loop around it leaves a guard-free vector main loop and a scalar
  // tail.
  run("loop-partition");
  run("simplify"); // fold the partition bounds
  run("vectorize");
  // Unroll after vectorize: unrolling copies the (already vector) body, so each copy is one
  // vector statement rather than L scalar ones.
  run("unroll");
  run("simplify"); // fold min + k and the ramps/broadcasts the copies leave
  // Flatten last before codegen: the passes above reason about multi-dimensional indices,
  // code generation needs one flat index per access.
  run("storage-flatten");
  run("simplify"); // fold the index arithmetic flattening introduced
  run("remove-noop");
  return f;
}

} // namespace tessel::loop
