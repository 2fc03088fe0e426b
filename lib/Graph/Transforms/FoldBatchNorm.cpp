//===- FoldBatchNorm.cpp ------------------------------------------------------------===//
#include "tessel/Graph/Transforms.h"

namespace tessel {

bool foldBatchNorm(Graph &g, PassStats &stats) { return false; }

} // namespace tessel
