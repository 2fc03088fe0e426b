//===- Sequence.cpp - Sequence ops ---------------------------------------===//
#include "OpUtils.h"

namespace tessel {

void registerSequenceOps(OpRegistry &r) {}

} // namespace tessel
