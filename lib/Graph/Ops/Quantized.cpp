//===- Quantized.cpp - Quantized ops ---------------------------------------===//
#include "OpUtils.h"

namespace tessel {

void registerQuantizedOps(OpRegistry &r) {}

} // namespace tessel
