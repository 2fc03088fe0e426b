//===- SinkTranspose.cpp ------------------------------------------------------------===//
#include "tessel/Graph/Transforms.h"

namespace tessel {

bool sinkTransposes(Graph &g, PassStats &stats) { return false; }

} // namespace tessel
