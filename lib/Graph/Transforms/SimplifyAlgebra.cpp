//===- SimplifyAlgebra.cpp ------------------------------------------------------------===//
#include "tessel/Graph/Transforms.h"

namespace tessel {

bool simplifyAlgebra(Graph &g, PassStats &stats) { return false; }

} // namespace tessel
