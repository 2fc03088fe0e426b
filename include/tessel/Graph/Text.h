//===- Text.h - the graph IR's text form ------------------------*- C++ -*-===//
//
// A Graph prints as text and parses back: print -> parse -> print gives the same text. The
// format (docs/ir.md) is one node per line, MLIR-like:
//
//   graph @main(%x: f32[1,3,N,?], %w: f32[2,3] = dense<[[1, 2, 3], [4, 5, 6]]>) opset {"": 13} {
//     %y, %mask = Dropout(%x, _, _) {name = "drop1", ratio = 0.5} : (f32[1,3,N,?], bool[1,3,N,?])
//     return %y
//   }
//
// Types after values are optional when parsing (an omitted type is unknown; shape inference
// fills it in). Parse errors name the source, line:column and what was expected; the parser
// never crashes on bad text.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Graph/IR.h"

#include <iosfwd>
#include <memory>
#include <string>
#include <string_view>

namespace tessel {

struct PrintOptions {
  /// Tensors with more elements than this print as a hex blob of their raw bytes
  /// (`hex<"...">`), smaller ones as readable decimal (`dense<[...]>`).
  int64_t hexAbove = 64;
  /// When > 0, tensors with more elements than this print as `dense<...>` without their data:
  /// shorter dumps (--print-after-all), but such text does not parse back.
  int64_t elideAbove = 0;
};

std::string printGraph(const Graph &g);
void printGraph(std::ostream &os, const Graph &g);
void printGraph(std::ostream &os, const Graph &g, const PrintOptions &opts);
/// A type as the text format writes it: "f32[1,3,N,?]", "seq<f32[*]>", "?".
std::string printType(const Type &t);

/// Parses one graph; throws tessel::Error "<sourceName>:<line>:<col>: error: ..." on bad text.
std::unique_ptr<Graph> parseGraph(std::string_view text, const std::string &sourceName);

} // namespace tessel
