//===- FoldPad.cpp ------------------------------------------------------------===//
#include "tessel/Graph/Transforms.h"

namespace tessel {

bool foldPadIntoConvPool(Graph &g, PassStats &stats) { return false; }

} // namespace tessel
