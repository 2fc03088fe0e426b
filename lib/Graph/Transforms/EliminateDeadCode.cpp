//===- EliminateDeadCode.cpp ------------------------------------------------------------===//
#include "tessel/Graph/Transforms.h"

namespace tessel {

bool eliminateDeadCode(Graph &g, PassStats &stats) { return false; }

} // namespace tessel
