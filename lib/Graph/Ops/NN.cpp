//===- NN.cpp - NN ops ---------------------------------------===//
#include "OpUtils.h"

namespace tessel {

void registerNNOps(OpRegistry &r) {}

} // namespace tessel
