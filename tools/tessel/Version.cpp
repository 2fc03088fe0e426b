//===- Version.cpp - `tessel version`: tessel, LLVM and the host CPU -------===//
#include "Commands.h"

#include <llvm/Config/llvm-config.h>
#include <llvm/TargetParser/Host.h>
#include <llvm/ADT/StringMap.h>

#include <algorithm>
#include <iostream>
#include <string>
#include <vector>

namespace tessel::cli {

int printVersion() {
  std::cout << "tessel 0.1.0\n";
  std::cout << "LLVM " << LLVM_VERSION_STRING << " (shared libLLVM)\n";
  std::cout << "host: " << llvm::sys::getProcessTriple() << ", cpu " << llvm::sys::getHostCPUName().str() << "\n";
  std::vector<std::string> feats;
  for (auto &f : llvm::sys::getHostCPUFeatures())
    if (f.second && (f.first().starts_with("avx") || f.first().starts_with("fma") ||
                     f.first().starts_with("amx") || f.first().starts_with("f16c")))
      feats.push_back(f.first().str());
  std::sort(feats.begin(), feats.end());
  std::cout << "features:";
  for (auto &f : feats)
    std::cout << " " << f;
  std::cout << "\n";
  return 0;
}

} // namespace tessel::cli
