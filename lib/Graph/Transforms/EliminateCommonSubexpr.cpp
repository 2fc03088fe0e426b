//===- EliminateCommonSubexpr.cpp ------------------------------------------------------------===//
#include "tessel/Graph/Transforms.h"

namespace tessel {

bool eliminateCommonSubexpr(Graph &g, PassStats &stats) { return false; }

} // namespace tessel
