//===- Random.cpp - Random ops ---------------------------------------===//
#include "OpUtils.h"

namespace tessel {

void registerRandomOps(OpRegistry &r) {}

} // namespace tessel
