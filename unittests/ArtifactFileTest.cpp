//===- ArtifactFileTest.cpp - runtime::ArtifactFile and parseKernelFlops --------------===//
//
// The runtime's read-only view of a .tsl file (what `tessel inspect model.tsl` prints): the
// checked contents with the section table and file size, the per-step FLOPs, and no host
// checks (an artifact that needs a CPU feature this machine lacks still opens, while
// Model::load refuses it).
//
//===----------------------------------------------------------------------===//
#include "tessel/Compiler/Compile.h"
#include "tessel/Graph/Text.h"
#include "tessel/Support/Error.h"
#include "tessel/runtime/Artifact.h"
#include "tessel/runtime/Model.h"

#include <gtest/gtest.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <unistd.h>
#include <vector>

using namespace tessel;

namespace {

std::vector<uint8_t> compileSmall() {
  auto g = parseGraph(R"(
graph @small(%x: f32[4,16]) opset {"": 17} {
  %w: f32[16,8] = dense<0.5>
  %y = MatMul(%x, %w) {name = "mm"}
  %r = Relu(%y) {name = "relu"}
  %e = Exp(%r) {name = "exp"}
  %s = ReduceSum(%e) {name = "sum", axes = [1], keepdims = 1}
  return %s, %x
}
)",
                      "test");
  CompileOptions o;
  o.maxGroupSize = 1; // one kernel per node: intermediates in the arena
  return compileModel(*g, o).artifact;
}

std::string writeTemp(const std::vector<uint8_t> &bytes, const std::string &tag) {
  std::string path = (std::filesystem::temp_directory_path() /
                      ("tessel-artifactfile-" + std::to_string(getpid()) + "-" + tag + ".tsl"))
                         .string();
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
  return path;
}

TEST(ArtifactFile, ReadsContentsSectionsAndFlops) {
  std::vector<uint8_t> bytes = compileSmall();
  std::string path = writeTemp(bytes, "ok");
  runtime::ArtifactFile file = runtime::ArtifactFile::read(path);
  const runtime::ArtifactContents &c = file.contents();
  EXPECT_EQ(c.fileSize, bytes.size());
  ASSERT_EQ(c.sections.size(), runtime::kNumSectionKinds);
  uint64_t end = 0, total = 0;
  for (const runtime::SectionInfo &s : c.sections) {
    EXPECT_GE(s.offset, end) << runtime::sectionKindName(s.kind); // by offset, no overlap
    end = s.offset + s.size;
    total += s.size;
    if (s.kind == runtime::SectionKind::Code)
      EXPECT_EQ(s.size, c.codeSize);
  }
  EXPECT_LE(end, c.fileSize);
  EXPECT_LT(total, c.fileSize); // header, table and padding are the rest
  ASSERT_EQ(c.metadata.outputs.size(), 2u);
  EXPECT_EQ(c.metadata.outputs[1].name, "x"); // the input passed through
  EXPECT_GE(c.steps.size(), 4u);
  EXPECT_FALSE(c.memoryPlan.slices.empty());

  // The FLOPs are the compiler's per-kernel counts, as Model::kernelFlops reads them.
  std::vector<double> flops = runtime::parseKernelFlops(c, path);
  ASSERT_EQ(flops.size(), c.steps.size());
  EXPECT_EQ(flops[0], 2.0 * 4 * 16 * 8); // the MatMul
  runtime::Model m = runtime::Model::loadFromMemory(bytes.data(), bytes.size());
  EXPECT_EQ(m.kernelFlops(), flops);

  // Moving keeps the contents' pointers valid (they point into the bytes the file owns).
  runtime::ArtifactFile moved = std::move(file);
  EXPECT_EQ(moved.contents().code, c.code);
  EXPECT_EQ(moved.contents().code[0], 0x7f);
  std::remove(path.c_str());
}

TEST(ArtifactFile, TruncatedOrMissingIsTheCheckersError) {
  std::vector<uint8_t> bytes = compileSmall();
  bytes.resize(bytes.size() / 2);
  std::string path = writeTemp(bytes, "trunc");
  try {
    runtime::ArtifactFile::read(path);
    FAIL() << "expected an error";
  } catch (const Error &e) {
    std::string m = e.what();
    EXPECT_EQ(m.rfind(path + ": the header says the file is ", 0), 0u) << m;
    EXPECT_NE(m.find("(truncated)"), std::string::npos) << m;
  }
  std::remove(path.c_str());
  EXPECT_THROW(runtime::ArtifactFile::read(path), Error); // now missing
}

TEST(ArtifactFile, OpensAnArtifactForAnotherCpu) {
  std::vector<uint8_t> bytes = compileSmall();
  runtime::ArtifactContents c = runtime::parseArtifact(bytes.data(), bytes.size());
  c.metadata.cpuFeatures.push_back("no-such-feature");
  std::vector<uint8_t> foreign = runtime::encodeArtifact(c);
  std::string path = writeTemp(foreign, "cpu");
  runtime::ArtifactFile file = runtime::ArtifactFile::read(path);
  EXPECT_EQ(file.contents().metadata.cpuFeatures.back(), "no-such-feature");
  try {
    runtime::Model::load(path);
    FAIL() << "expected the CPU check to fail";
  } catch (const Error &e) {
    EXPECT_NE(std::string(e.what()).find("no-such-feature"), std::string::npos) << e.what();
  }
  // parseKernelFlops rejects a count that does not match the steps.
  for (auto &[k, v] : c.metadata.extra)
    if (k == "kernel_flops")
      v += ",7";
  EXPECT_THROW(runtime::parseKernelFlops(c, "test"), Error);
  std::remove(path.c_str());
}

} // namespace
