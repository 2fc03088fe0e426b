//===- Npy.h - numpy .npy files ---------------------------------*- C++ -*-===//
#pragma once

#include "tessel/Support/Tensor.h"

#include <string>

namespace tessel {

/// Reads a .npy file (format 1.0/2.0/3.0, C order, little-endian numeric or bool dtypes).
/// Errors name the file and what was wrong (bad magic, unsupported dtype, truncated data, ...).
Tensor readNpy(const std::string &path);
/// Parses .npy bytes; `what` names the source in errors.
Tensor parseNpy(const std::string &bytes, const std::string &what);
/// Writes a tensor as .npy (format 1.0). Strings are not supported.
void writeNpy(const std::string &path, const Tensor &t);

/// Reads a whole file; Error naming the file if it cannot be read. Refuses files over maxBytes.
std::string readFile(const std::string &path, uint64_t maxBytes = uint64_t(4) << 30);

} // namespace tessel
