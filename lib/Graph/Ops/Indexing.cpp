//===- Indexing.cpp - Indexing ops ---------------------------------------===//
#include "OpUtils.h"

namespace tessel {

void registerIndexingOps(OpRegistry &r) {}

} // namespace tessel
