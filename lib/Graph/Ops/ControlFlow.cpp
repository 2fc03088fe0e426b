//===- ControlFlow.cpp - ControlFlow ops ---------------------------------------===//
#include "OpUtils.h"

namespace tessel {

void registerControlFlowOps(OpRegistry &r) {}

} // namespace tessel
