//===- ONNX.h - ONNX frontend -----------------------------------*- C++ -*-===//
//
// Reads an ONNX model into the graph IR. The model is untrusted: every index, size, name and
// path is validated, and any problem is an Error naming the file, the node (name and op type) or
// tensor, and what was expected.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Graph/IR.h"
#include "tessel/Support/Object.h"

#include <memory>
#include <string>
#include <vector>

namespace tessel {

struct Model {
  std::unique_ptr<Graph> graph;
  int64_t irVersion = 0;
  std::string producerName, producerVersion;
};

/// Loads, validates and imports an ONNX model file; runs shape inference.
Model loadOnnx(const std::string &path);
/// Imports from bytes; `path` names the model in errors and anchors external data files.
Model parseOnnx(const std::string &bytes, const std::string &path);

/// Reads a serialized onnx TensorProto / SequenceProto / OptionalProto (.pb test data): the
/// kind is detected from `expected` (the graph's declared type) when given.
Object readOnnxValueFile(const std::string &path, const Type *expected = nullptr);
/// Reads a serialized TensorProto file.
Tensor readTensorProtoFile(const std::string &path);

/// Writes `g` as an ONNX model file: opset imports, inputs and outputs with types, initializers
/// (raw_data; unused ones are left out), nodes with all attribute kinds including subgraphs, and
/// value_info for intermediate values with known types. An Error when the model would exceed
/// protobuf's 2 GiB limit (external data is not written).
void saveOnnx(const Graph &g, const std::string &path);

} // namespace tessel
