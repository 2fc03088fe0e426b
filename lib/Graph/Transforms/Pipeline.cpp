//===- Pipeline.cpp - the graph passes by name, and the default pipeline --===//
//
// The one place that lists the order of graph passes, with the reason for each constraint.
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/Transforms.h"

namespace tessel {

const std::vector<PassInfo> &allGraphPasses() {
  static const std::vector<PassInfo> passes = {
      {"dce", "remove nodes whose outputs are unused", eliminateDeadCode},
      {"cse", "merge nodes with the same op, attributes and inputs", eliminateCommonSubexpr},
      {"fold-constants", "evaluate nodes whose inputs are all constant (size-capped)", foldConstants},
      {"simplify", "algebraic simplification by a table of rules", simplifyAlgebra},
      {"fold-shapes", "fold Shape/Gather/Concat/Reshape chains once shapes are static", foldShapeComputations},
      {"fold-batchnorm", "fold BatchNormalization into a preceding Conv/Gemm/MatMul", foldBatchNorm},
      {"matmul-add-to-gemm", "rewrite MatMul + Add (bias) into Gemm", fuseMatMulAdd},
      {"fold-pad", "fold a constant zero Pad into the following Conv or pool", foldPadIntoConvPool},
      {"sink-transpose", "cancel and sink Transposes through elementwise ops", sinkTransposes},
      // Not in the default pipelines: compileModel runs it when the target has AVX-512/AVX2.
      {"transform-layout", "2-D convs in the blocked NCHW[x]c layout, weights packed, layout changes hoisted", transformLayout},
      // Not in the default pipelines: compileModel runs these three at every -O level, before
      // optimizing (they turn nodes without a lowering into plain ops).
      {"fold-static-sequences", "sequences of compile-time structure as their tensors (SequenceAt, Length, ConcatFromSequence, SplitToSequence)", foldStaticSequences},
      {"expand-training-dropout", "Dropout whose training_mode is not a constant false as elementwise ops over uniform draws (a constant for a seeded one)", expandTrainingDropout},
      {"inline-control-flow", "inline If branches, unroll Loops with a constant trip count and Scans of a static length", inlineControlFlow},
  };
  return passes;
}

const PassInfo *findGraphPass(const std::string &name) {
  for (auto &p : allGraphPasses())
    if (name == p.name)
      return &p;
  return nullptr;
}

std::vector<std::string> defaultPipeline(int optLevel) {
  if (optLevel <= 0)
    return {};
  // -O1: cleanups that never change numbers.
  std::vector<std::string> p = {
      "fold-constants", // first: turns exporter-emitted Constant subgraphs into initializers
      "fold-shapes",    // needs constants folded so shape inputs are known
      "simplify",       // rules like x*1 see the constants folding produced
      "cse",            // after simplify: rewritten nodes become identical more often
      "dce",            // last: removes what the passes above disconnected
  };
  if (optLevel == 1)
    return p;
  // -O2/-O3: rewrites that change rounding within tolerance (BN folding reassociates).
  for (const char *s : {"fold-batchnorm",     // needs BN scale/bias constant (after fold-constants)
                        "fold-pad",           // before layout decisions; Pad must be constant
                        "matmul-add-to-gemm", // after fold-batchnorm (which turns MatMul+BN into Gemm itself)
                        "sink-transpose",     // after Gemm formation: Gemm absorbs transposes itself
                        "fold-constants",     // folds what the rewrites made constant
                        "cse", "dce"})
    p.push_back(s);
  return p;
}

} // namespace tessel
