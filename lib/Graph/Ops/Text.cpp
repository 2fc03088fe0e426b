//===- Text.cpp - Text ops ---------------------------------------===//
#include "OpUtils.h"

namespace tessel {

void registerTextOps(OpRegistry &r) {}

} // namespace tessel
