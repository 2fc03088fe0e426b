//===- FoldShapeComputations.cpp ------------------------------------------------------------===//
#include "tessel/Graph/Transforms.h"

namespace tessel {

bool foldShapeComputations(Graph &g, PassStats &stats) { return false; }

} // namespace tessel
