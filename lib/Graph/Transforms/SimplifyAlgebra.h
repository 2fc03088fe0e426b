//===- SimplifyAlgebra.h - the simplify pass's rule table (internal) -----===//
//
// Exposes the names of the rules of simplifyAlgebra (lib/Graph/Transforms/SimplifyAlgebra.cpp)
// so that unittests/SimplifyAlgebraTest.cpp can check that every rule has a test. Each rule
// counts its rewrites in PassStats under its name.
//
//===----------------------------------------------------------------------===//
#pragma once

#include <vector>

namespace tessel {

struct SimplifyRuleInfo {
  const char *name;    // the PassStats counter, e.g. "mul-one"
  const char *pattern; // the rule, e.g. "x*1 -> x"
  const char *op;      // the op type it matches
};

/// Every rule of the simplify pass, in the order they are tried.
std::vector<SimplifyRuleInfo> simplifyRules();

} // namespace tessel
