//===- Normalization.cpp - Normalization ops ---------------------------------------===//
#include "OpUtils.h"

namespace tessel {

void registerNormalizationOps(OpRegistry &r) {}

} // namespace tessel
