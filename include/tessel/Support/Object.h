//===- Object.h - a value at run time ---------------------------*- C++ -*-===//
//
// What flows along a graph edge when a model runs: a tensor, a sequence of tensors (ONNX
// sequence type), or an empty optional. A present optional is just its content.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Support/Tensor.h"

#include <vector>

namespace tessel {

struct Object {
  enum class Kind : uint8_t { Tensor, Sequence, None };
  Kind kind = Kind::None;
  Tensor tensor;
  std::vector<Tensor> sequence;

  Object() = default;
  Object(Tensor t) : kind(Kind::Tensor), tensor(std::move(t)) {}
  static Object seq(std::vector<Tensor> s) {
    Object o;
    o.kind = Kind::Sequence;
    o.sequence = std::move(s);
    return o;
  }
  static Object none() { return Object(); }
  bool isTensor() const { return kind == Kind::Tensor; }
  bool isSequence() const { return kind == Kind::Sequence; }
  bool isNone() const { return kind == Kind::None; }
};

} // namespace tessel
