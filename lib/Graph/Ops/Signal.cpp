//===- Signal.cpp - Signal ops ---------------------------------------===//
#include "OpUtils.h"

namespace tessel {

void registerSignalOps(OpRegistry &r) {}

} // namespace tessel
