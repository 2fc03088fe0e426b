//===- Image.cpp - Image ops ---------------------------------------===//
#include "OpUtils.h"

namespace tessel {

void registerImageOps(OpRegistry &r) {}

} // namespace tessel
