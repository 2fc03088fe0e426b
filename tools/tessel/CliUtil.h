//===- CliUtil.h - helpers the tessel subcommands share ---------*- C++ -*-===//
//
// Input handling for the commands that run models (run, bench, accuracy): --input NAME=FILE.npy
// specs checked against the model's inputs, seeded random inputs (uniform in [-1, 1) for
// floats, 0..9 for integers: the same values for the same --seed in every command), the
// runtime's element types as tessel dtypes, and the accuracy tally of `tessel accuracy`.
//
//===----------------------------------------------------------------------===//
#pragma once

#include "tessel/Support/Tensor.h"
#include "tessel/runtime/Model.h"

#include <cstdint>
#include <map>
#include <random>
#include <string>
#include <vector>

namespace tessel::cli {

/// The tessel dtype of a runtime element type (an Error when there is none).
DType dtypeOf(runtime::ElemType e);

/// Seeded random values: uniform in [-1, 1) for floats, 0..9 for integers, 0/1 for bool.
Tensor randomTensor(DType dt, const std::vector<int64_t> &shape, std::mt19937 &rng);

/// Reads --input NAME=FILE.npy specs; an error names the spec when the name is not one of
/// `names`, is given twice, or the file is not .npy.
std::map<std::string, Tensor> readInputSpecs(const std::vector<std::string> &specs,
                                             const std::vector<std::string> &names);

/// Checks a given input's shape and dtype against what the model expects.
void checkInput(const std::string &name, const Tensor &t, DType dt,
                const std::vector<int64_t> &shape);

/// The inputs of a compiled model: the given files, random values (printed) for the others.
std::vector<runtime::HostTensor> compiledInputs(const runtime::Model &model,
                                                const std::vector<std::string> &specs,
                                                unsigned seed);

/// The index of the largest element (the first on ties).
int64_t argmax(const Tensor &t);

/// Counts the correct predictions of `tessel accuracy` and prints its lines.
struct AccuracyTally {
  bool printPredictions = false;
  int64_t correct = 0, n = 0;
  double ms = 0; // summed inference time
  /// Scores image `n` (the next one) classified as argmax(scores) in `ms` milliseconds.
  void add(const Tensor &scores, int64_t label, double ms);
  /// Prints accuracy and latency ("ms per image (ENGINE)"); 1 when below minAccuracy.
  int report(const std::string &engine, double minAccuracy) const;
};

} // namespace tessel::cli
