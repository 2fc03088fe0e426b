//===- TensorManip.cpp - TensorManip ops ---------------------------------------===//
#include "OpUtils.h"

namespace tessel {

void registerTensorManipOps(OpRegistry &r) {}

} // namespace tessel
