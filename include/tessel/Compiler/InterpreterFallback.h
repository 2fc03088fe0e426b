//===- InterpreterFallback.h - run unlowered nodes in the interpreter -*- C++ -*-===//
//
// `--allow-interpreter-fallback` (docs/compile.md): a node whose op has no lowering to tensor
// expressions becomes a fallback step of the artifact's execution plan instead of a compile
// error. The artifact carries the node serialized (serializeFallbackNode: a one-node ONNX model
// whose constant inputs are initializers), and at load time the runtime asks the process's
// fallback handler (runtime/Model.h setFallbackHandler) for a kernel for it. The runtime itself
// stays free of the interpreter, protobuf and LLVM; a process that wants such artifacts to run
// registers tessel's handler once:
//
//   tessel::registerInterpreterFallback();
//   tessel::runtime::Model m = tessel::runtime::Model::load("model.tsl");
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Graph/IR.h"
#include "tessel/runtime/Model.h"

#include <cstdint>
#include <vector>

namespace tessel {

/// The values of `n`'s graph that its subgraphs (If branches, Loop and Scan bodies, nested
/// ones too) read: captured ones and ones their nodes take directly (graph inputs,
/// initializers), each once, in first-use order.
std::vector<const Value *> subgraphReads(const Node &n);

/// `n` as a one-node ONNX model (the payload of a fallback step): graph inputs `inputs` (the
/// node's non-constant inputs and the non-constant values its subgraphs read, in the step's
/// argument order), its constant inputs and the constants its subgraphs read as initializers,
/// graph outputs `outputs` (the node's outputs that the step writes), with the types of `n`'s
/// graph.
std::vector<uint8_t> serializeFallbackNode(const Node &n, const std::vector<const Value *> &inputs,
                                           const std::vector<const Value *> &outputs);

/// The reference interpreter as a fallback handler: parses the node's payload once and returns
/// a kernel that copies the step's input buffers into tensors, runs the node in the interpreter
/// and copies the outputs back (checking their dtypes and shapes against the step's).
runtime::FallbackKernel interpreterFallbackKernel(const runtime::FallbackNode &node);

/// runtime::setFallbackHandler(interpreterFallbackKernel): call once before loading artifacts
/// compiled with --allow-interpreter-fallback.
void registerInterpreterFallback();

} // namespace tessel
