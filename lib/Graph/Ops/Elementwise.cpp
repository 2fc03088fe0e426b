//===- Elementwise.cpp - Elementwise ops ---------------------------------------===//
#include "OpUtils.h"

namespace tessel {

void registerElementwiseOps(OpRegistry &r) {}

} // namespace tessel
