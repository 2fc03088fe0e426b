//===- FuseMatMulAdd.cpp ------------------------------------------------------------===//
#include "tessel/Graph/Transforms.h"

namespace tessel {

bool fuseMatMulAdd(Graph &g, PassStats &stats) { return false; }

} // namespace tessel
