//===- Writer.cpp - write a compiled-model artifact -----------------------===//

#include "tessel/Artifact/Writer.h"

#include "tessel/Support/Error.h"

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iterator>

namespace tessel::artifact {

using runtime::kArtifactAlignment;

namespace {

uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

runtime::TensorDesc makeDesc(std::string name, DType dtype, std::vector<int64_t> shape,
                             const char *role) {
  TESSEL_CHECK(!name.empty(), "artifact writer: an ", role, " needs a name");
  runtime::TensorDesc d{std::move(name), toElemType(dtype), std::move(shape)};
  try {
    runtime::byteSize(d);
  } catch (const Error &e) {
    fail("artifact writer: ", role, " '", d.name, "': ", e.what());
  }
  return d;
}

std::vector<uint8_t> readFile(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  TESSEL_CHECK(in, path, ": cannot open for reading");
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                             std::istreambuf_iterator<char>());
  TESSEL_CHECK(!in.bad(), path, ": read error");
  return bytes;
}

} // namespace

std::string hashBytes(const void *data, size_t size) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "fnv1a64:%016llx",
                static_cast<unsigned long long>(runtime::fnv1a64(data, size)));
  return buf;
}

std::string hashFile(const std::string &path) {
  std::vector<uint8_t> bytes = readFile(path);
  return hashBytes(bytes.data(), bytes.size());
}

runtime::ElemType toElemType(DType t) {
  TESSEL_CHECK(t != DType::undefined && t != DType::string, "artifact writer: dtype ",
               dtypeName(t), " cannot be stored in an artifact (expected a numeric or bool type)");
  auto code = uint32_t(t);
  TESSEL_CHECK(runtime::elemTypeSize(code) == dtypeSize(t), "artifact writer: dtype ",
               dtypeName(t), " has no artifact element type");
  return runtime::ElemType(code);
}

Writer::Writer(WriterOptions options) : options_(options) {
#ifdef TESSEL_VERSION_STRING
  metadata_.tesselVersion = TESSEL_VERSION_STRING;
#endif
}

void Writer::setTarget(std::string triple, std::string cpuName,
                       std::vector<std::string> features) {
  metadata_.targetTriple = std::move(triple);
  metadata_.cpuName = std::move(cpuName);
  metadata_.cpuFeatures.clear();
  for (std::string &f : features) {
    if (f.empty() || f[0] == '-')
      continue;
    if (f[0] == '+')
      f.erase(0, 1);
    metadata_.cpuFeatures.push_back(std::move(f));
  }
}

void Writer::setSourceHash(std::string hash) { metadata_.sourceHash = std::move(hash); }
void Writer::setTesselVersion(std::string version) {
  metadata_.tesselVersion = std::move(version);
}
void Writer::setBufferAlignment(uint32_t alignment) { metadata_.bufferAlignment = alignment; }
void Writer::addFallbackNode(std::string node) {
  metadata_.fallbackNodes.push_back(std::move(node));
}
void Writer::setExtra(std::string key, std::string value) {
  for (auto &[k, v] : metadata_.extra)
    if (k == key) {
      v = std::move(value);
      return;
    }
  metadata_.extra.emplace_back(std::move(key), std::move(value));
}

uint32_t Writer::addInput(std::string name, DType dtype, std::vector<int64_t> shape) {
  metadata_.inputs.push_back(makeDesc(std::move(name), dtype, std::move(shape), "input"));
  return uint32_t(metadata_.inputs.size() - 1);
}

uint32_t Writer::addOutput(std::string name, DType dtype, std::vector<int64_t> shape) {
  metadata_.outputs.push_back(makeDesc(std::move(name), dtype, std::move(shape), "output"));
  return uint32_t(metadata_.outputs.size() - 1);
}

uint32_t Writer::addWeight(std::string name, DType dtype, std::vector<int64_t> shape,
                           const void *data, size_t size) {
  runtime::WeightDesc w;
  w.desc = makeDesc(std::move(name), dtype, std::move(shape), "weight");
  w.size = runtime::byteSize(w.desc);
  TESSEL_CHECK(size == w.size, "artifact writer: weight '", w.desc.name, "' (",
               runtime::describe(w.desc), ") has ", size, " bytes of data, expected ", w.size);
  TESSEL_CHECK(data != nullptr || size == 0, "artifact writer: weight '", w.desc.name,
               "' has no data");
  w.offset = alignUp(weightData_.size(), kArtifactAlignment);
  weightData_.resize(w.offset, 0);
  if (size) {
    const auto *p = static_cast<const uint8_t *>(data);
    weightData_.insert(weightData_.end(), p, p + size);
  }
  weights_.push_back(std::move(w));
  return uint32_t(weights_.size() - 1);
}

uint32_t Writer::addArenaSlice(std::string name, uint64_t offset, uint64_t size) {
  TESSEL_CHECK(offset % kArtifactAlignment == 0, "artifact writer: arena slice '", name,
               "' offset ", offset, " is not a multiple of 64");
  TESSEL_CHECK(offset <= (uint64_t(1) << 62) && size <= (uint64_t(1) << 62),
               "artifact writer: arena slice '", name, "' is too large");
  memoryPlan_.slices.push_back({std::move(name), offset, size});
  if (!arenaSizeSet_)
    memoryPlan_.arenaSize =
        std::max(memoryPlan_.arenaSize, alignUp(offset + size, kArtifactAlignment));
  return uint32_t(memoryPlan_.slices.size() - 1);
}

uint32_t Writer::appendArenaSlice(std::string name, uint64_t size) {
  uint64_t end = 0;
  for (const runtime::ArenaSlice &s : memoryPlan_.slices)
    end = std::max(end, s.offset + s.size);
  return addArenaSlice(std::move(name), alignUp(end, kArtifactAlignment), size);
}

void Writer::setArenaSize(uint64_t size) {
  memoryPlan_.arenaSize = size;
  arenaSizeSet_ = true;
}

void Writer::setCode(std::vector<uint8_t> sharedObject) { code_ = std::move(sharedObject); }

void Writer::setCodeFromFile(const std::string &path) { code_ = readFile(path); }

void Writer::addStep(std::string symbol, std::vector<runtime::StepArg> args) {
  steps_.push_back({std::move(symbol), std::move(args)});
}

uint32_t Writer::addFallbackStep(std::string name, std::string opType,
                                 std::vector<runtime::TensorDesc> inputs,
                                 std::vector<runtime::TensorDesc> outputs,
                                 std::vector<uint8_t> payload, std::vector<runtime::StepArg> args) {
  TESSEL_CHECK(args.size() == inputs.size() + outputs.size(), "artifact writer: fallback node '",
               name, "' has ", args.size(), " step arguments for ", inputs.size(), " inputs and ",
               outputs.size(), " outputs");
  uint32_t index = uint32_t(fallbacks_.size());
  metadata_.fallbackNodes.push_back(name + " (" + opType + ")");
  fallbacks_.push_back({std::move(name), std::move(opType), std::move(inputs), std::move(outputs),
                        std::move(payload)});
  steps_.push_back({std::string(runtime::kFallbackSymbolPrefix) + std::to_string(index),
                    std::move(args)});
  return index;
}

void Writer::addDynamicOutput(uint32_t output, uint32_t axis, uint32_t extentSlice) {
  dynamicOutputs_.push_back({output, axis, extentSlice});
}

void Writer::addInputValue(uint32_t input, uint32_t weight) {
  inputValues_.push_back({input, weight});
}

std::vector<uint8_t> Writer::finish() const {
  runtime::ArtifactContents c;
  c.dynamicOutputs = dynamicOutputs_;
  c.inputValues = inputValues_;
  for (const PendingFallback &f : fallbacks_)
    c.fallbacks.push_back({f.name, f.opType, f.inputs, f.outputs, f.payload.data(),
                           f.payload.size()});
  c.metadata = metadata_;
  c.weights = weights_;
  c.memoryPlan = memoryPlan_;
  c.steps = steps_;
  c.code = code_.data();
  c.codeSize = code_.size();
  c.weightData = weightData_.data();
  c.weightDataSize = weightData_.size();
  std::vector<uint8_t> bytes = runtime::encodeArtifact(c);
  if (options_.validate) {
    try {
      runtime::parseArtifact(bytes.data(), bytes.size(), "artifact");
    } catch (const Error &e) {
      fail("artifact writer: the artifact would be invalid: ", e.what());
    }
  }
  return bytes;
}

void Writer::write(const std::string &path) const {
  std::vector<uint8_t> bytes = finish();
  std::string tmp = path + ".tmp";
  {
    std::ofstream out(tmp, std::ios::binary | std::ios::trunc);
    TESSEL_CHECK(out, tmp, ": cannot open for writing");
    out.write(reinterpret_cast<const char *>(bytes.data()), std::streamsize(bytes.size()));
    out.close();
    if (!out) {
      std::remove(tmp.c_str());
      fail(tmp, ": write error");
    }
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    std::remove(tmp.c_str());
    fail(path, ": cannot move ", tmp, " into place");
  }
}

} // namespace tessel::artifact
