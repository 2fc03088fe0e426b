//===- FoldStaticSequencesTest.cpp - sequences of static structure, compiled --===//
//
// The fold-static-sequences pass end to end: a graph that builds, edits and reads back
// sequences at constant positions, splits and concatenates them, compiles at -O0 and -O3 (no
// interpreter fallback) and matches the interpreter; a position that is a run-time input keeps
// the "has no lowering" error naming the node.
//
//===----------------------------------------------------------------------===//

#include "CompileTestUtils.h"
#include "TestUtils.h"

#include <gtest/gtest.h>

using namespace tessel;

namespace {

TEST(FoldStaticSequences, CompiledMatchesTheInterpreter) {
  const char *text = R"(
graph @seqs(%x: f32[2,6], %y: f32[2,6], %pos: i64[] = dense<-1>) opset {"": 12} {
  %one: i64[] = dense<1>
  %three: i64[] = dense<3>
  %s = SequenceConstruct(%x, %y)
  %s2 = SequenceInsert(%s, %y, %pos)
  %s3 = SequenceErase(%s2)
  %a = SequenceAt(%s3, %one)
  %c = ConcatFromSequence(%s2) {axis = 0, new_axis = 1}
  %p = SplitToSequence(%x, %three) {axis = 1}
  %q = SequenceAt(%p, %one)
  %r = Mul(%q, %q)
  %n = SequenceLength(%s2)
  return %r, %a, %c, %n
}
)";
  for (int opt : {0, 3}) {
    test::CompareOptions o;
    o.optLevel = opt;
    test::CompareResult r = test::compileAndCompare(text, o);
    EXPECT_TRUE(r.cm.fallbackNodes.empty()) << "-O" << opt;
  }
}

TEST(FoldStaticSequences, RuntimePositionKeepsTheError) {
  auto g = parseGraph(R"(
graph @seqs(%x: f32[2], %y: f32[2], %p: i64[]) opset {"": 12} {
  %s = SequenceConstruct(%x, %y)
  %a = SequenceAt(%s, %p) {name = "at"}
  return %a
}
)", "test");
  std::string e = test::errorOf([&] { compileModel(*g); });
  EXPECT_NE(e.find("has no lowering"), std::string::npos) << e;
}

} // namespace
