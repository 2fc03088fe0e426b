//===- Recurrent.cpp - Recurrent ops ---------------------------------------===//
#include "OpUtils.h"

namespace tessel {

void registerRecurrentOps(OpRegistry &r) {}

} // namespace tessel
