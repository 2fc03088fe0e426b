//===- Artifact.cpp - encode and check the .tsl file format ---------------===//
//
// The byte layout is documented in docs/artifact.md; every multi-byte integer is little-endian.
// The decoder trusts nothing: each read is bounds-checked against its section, each count is
// checked against the bytes left before anything is allocated for it, and each cross-reference
// is checked against what it refers to.
//
//===----------------------------------------------------------------------===//

#include "tessel/runtime/Artifact.h"

#include "tessel/Support/Error.h"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <limits>
#include <set>
#include <sstream>

namespace tessel::runtime {

namespace {

constexpr uint32_t kMaxStringBytes = 1u << 20;
constexpr uint32_t kMaxRank = 32;

// Each ElemType's size, indexed by its code.
constexpr std::array<uint8_t, 14> kElemSizes = {0, 4, 2, 2, 8, 1, 1, 2, 2, 4, 4, 8, 8, 1};
constexpr std::array<const char *, 14> kElemNames = {
    "invalid", "f32", "f16", "bf16", "f64", "i8", "u8", "i16", "u16", "i32", "u32", "i64", "u64",
    "bool"};

uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

std::string hexBytes(const uint8_t *p, size_t n) {
  std::ostringstream os;
  for (size_t i = 0; i < n; ++i)
    os << (i ? " " : "") << std::hex << std::setw(2) << std::setfill('0') << unsigned(p[i]);
  return os.str();
}

/// What a file that is not an artifact probably is, from its first bytes.
std::string guessFormat(const uint8_t *p, size_t n) {
  auto startsWith = [&](const char *sig, size_t len) {
    return n >= len && std::memcmp(p, sig, len) == 0;
  };
  if (startsWith("\x7f" "ELF", 4))
    return " (an ELF file)";
  if (startsWith("\x89PNG\r\n\x1a\n", 8))
    return " (a PNG image)";
  if (startsWith("PK\x03\x04", 4))
    return " (a zip archive)";
  if (startsWith("\x93NUMPY", 6))
    return " (a .npy array)";
  if (startsWith("\x08", 1))
    return " (perhaps an ONNX protobuf: compile it with `tessel compile` first)";
  return "";
}

//===--- little-endian writer ---------------------------------------------===//

class ByteWriter {
public:
  std::vector<uint8_t> bytes;

  void u32(uint32_t v) {
    for (int i = 0; i < 4; ++i)
      bytes.push_back(uint8_t(v >> (8 * i)));
  }
  void u64(uint64_t v) {
    for (int i = 0; i < 8; ++i)
      bytes.push_back(uint8_t(v >> (8 * i)));
  }
  void i64(int64_t v) { u64(uint64_t(v)); }
  void str(const std::string &s) {
    TESSEL_CHECK(s.size() <= kMaxStringBytes, "artifact writer: string of ", s.size(),
                 " bytes is longer than the format's limit of ", kMaxStringBytes);
    u32(uint32_t(s.size()));
    bytes.insert(bytes.end(), s.begin(), s.end());
  }
  void count(size_t n, const char *what) {
    TESSEL_CHECK(n <= std::numeric_limits<uint32_t>::max(), "artifact writer: too many ", what,
                 " (", n, ")");
    u32(uint32_t(n));
  }
  void tensor(const TensorDesc &d) {
    str(d.name);
    u32(uint32_t(d.dtype));
    count(d.shape.size(), "dims");
    for (int64_t v : d.shape)
      i64(v);
  }
  void padTo(uint64_t alignment) { bytes.resize(alignUp(bytes.size(), alignment), 0); }
};

//===--- bounds-checked little-endian reader ------------------------------===//

class ByteReader {
public:
  ByteReader(const uint8_t *data, uint64_t size, uint64_t fileOffset, std::string what)
      : data_(data), size_(size), base_(fileOffset), what_(std::move(what)) {}

  uint64_t pos() const { return pos_; }
  uint64_t left() const { return size_ - pos_; }
  /// The file offset of the next byte, for error messages.
  uint64_t fileOffset() const { return base_ + pos_; }
  const std::string &what() const { return what_; }

  [[noreturn]] void error(const std::string &msg) const {
    fail(what_, " at byte ", fileOffset(), ": ", msg);
  }

  void need(uint64_t n, const char *field) const {
    if (n > left())
      error(concat(field, " needs ", n, " bytes but only ", left(),
                   " are left in the section (truncated or corrupted)"));
  }
  uint32_t u32(const char *field) {
    need(4, field);
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i)
      v |= uint32_t(data_[pos_ + i]) << (8 * i);
    pos_ += 4;
    return v;
  }
  uint64_t u64(const char *field) {
    need(8, field);
    uint64_t v = 0;
    for (int i = 0; i < 8; ++i)
      v |= uint64_t(data_[pos_ + i]) << (8 * i);
    pos_ += 8;
    return v;
  }
  int64_t i64(const char *field) { return int64_t(u64(field)); }
  std::string str(const char *field) {
    uint64_t at = fileOffset();
    uint32_t n = u32(field);
    if (n > kMaxStringBytes)
      fail(what_, " at byte ", at, ": ", field, " is ", n, " bytes long, more than the limit of ",
           kMaxStringBytes);
    need(n, field);
    std::string s(reinterpret_cast<const char *>(data_ + pos_), n);
    pos_ += n;
    if (s.find('\0') != std::string::npos)
      fail(what_, " at byte ", at, ": ", field, " contains a NUL byte");
    return s;
  }
  /// A count of items each at least `minItemBytes` long: checked against the bytes left.
  uint32_t count(const char *field, uint64_t minItemBytes) {
    uint64_t at = fileOffset();
    uint32_t n = u32(field);
    if (uint64_t(n) * minItemBytes > left())
      fail(what_, " at byte ", at, ": ", field, " is ", n, " but only ", left(),
           " bytes are left in the section (at least ", minItemBytes, " per item)");
    return n;
  }
  void zero32(const char *field) {
    uint64_t at = fileOffset();
    uint32_t v = u32(field);
    if (v != 0)
      fail(what_, " at byte ", at, ": reserved field ", field, " is ", v, ", expected 0");
  }
  TensorDesc tensor(const char *role) {
    TensorDesc d;
    d.name = str(role);
    uint64_t at = fileOffset();
    uint32_t code = u32("dtype");
    if (elemTypeSize(code) == 0)
      fail(what_, " at byte ", at, ": ", role, " '", d.name, "' has dtype code ", code,
           ", expected 1..13 (f32, f16, bf16, f64, i8, u8, i16, u16, i32, u32, i64, u64, bool)");
    d.dtype = ElemType(code);
    at = fileOffset();
    uint32_t rank = u32("rank");
    if (rank > kMaxRank)
      fail(what_, " at byte ", at, ": ", role, " '", d.name, "' has rank ", rank,
           ", the most the format allows is ", kMaxRank);
    need(uint64_t(rank) * 8, "dims");
    for (uint32_t i = 0; i < rank; ++i)
      d.shape.push_back(i64("dim"));
    try {
      byteSize(d);
    } catch (const Error &e) {
      fail(what_, " at byte ", at, ": ", role, " '", d.name, "': ", e.what());
    }
    return d;
  }
  void skip(uint64_t n) {
    need(n, "bytes");
    pos_ += n;
  }
  void expectEnd() const {
    if (left() != 0)
      error(concat(left(), " unexpected trailing bytes at the end of the section"));
  }

private:
  const uint8_t *data_;
  uint64_t size_;
  uint64_t base_;
  std::string what_;
  uint64_t pos_ = 0;
};

struct SectionEntry {
  SectionKind kind;
  uint64_t offset = 0;
  uint64_t size = 0;
  uint64_t checksum = 0;
};

void checkUniqueNames(const std::vector<TensorDesc> &tensors, const char *role,
                      const std::string &what) {
  std::set<std::string> seen;
  for (const TensorDesc &t : tensors) {
    TESSEL_CHECK(!t.name.empty(), what, ": metadata: an ", role, " has an empty name");
    TESSEL_CHECK(seen.insert(t.name).second, what, ": metadata: ", role, " name '", t.name,
                 "' appears twice");
  }
}

Metadata decodeMetadata(ByteReader r) {
  Metadata m;
  m.targetTriple = r.str("target triple");
  m.cpuName = r.str("cpu name");
  uint32_t nFeatures = r.count("cpu feature count", 4);
  for (uint32_t i = 0; i < nFeatures; ++i) {
    std::string f = r.str("cpu feature");
    if (f.empty())
      r.error("an empty cpu feature name");
    m.cpuFeatures.push_back(std::move(f));
  }
  m.tesselVersion = r.str("tessel version");
  m.sourceHash = r.str("source hash");
  uint64_t at = r.fileOffset();
  m.bufferAlignment = r.u32("buffer alignment");
  if (m.bufferAlignment == 0 || (m.bufferAlignment & (m.bufferAlignment - 1)) != 0 ||
      m.bufferAlignment > 4096)
    fail(r.what(), " at byte ", at, ": buffer alignment ", m.bufferAlignment,
         " is not a power of two between 1 and 4096");
  uint32_t nFallback = r.count("fallback node count", 4);
  for (uint32_t i = 0; i < nFallback; ++i)
    m.fallbackNodes.push_back(r.str("fallback node"));
  uint32_t nInputs = r.count("input count", 12);
  for (uint32_t i = 0; i < nInputs; ++i)
    m.inputs.push_back(r.tensor("input"));
  uint32_t nOutputs = r.count("output count", 12);
  for (uint32_t i = 0; i < nOutputs; ++i)
    m.outputs.push_back(r.tensor("output"));
  uint32_t nExtra = r.count("extra key/value count", 8);
  for (uint32_t i = 0; i < nExtra; ++i) {
    std::string k = r.str("extra key");
    std::string v = r.str("extra value");
    m.extra.emplace_back(std::move(k), std::move(v));
  }
  r.expectEnd();
  checkUniqueNames(m.inputs, "input", r.what());
  checkUniqueNames(m.outputs, "output", r.what());
  return m;
}

void decodeWeights(ByteReader r, const uint8_t *sectionData, uint64_t sectionSize,
                   uint64_t sectionFileOffset, ArtifactContents &out) {
  uint64_t at = r.fileOffset();
  uint64_t dataOffset = r.u64("weight data offset");
  if (dataOffset % kArtifactAlignment != 0 || dataOffset > sectionSize)
    fail(r.what(), " at byte ", at, ": weight data offset ", dataOffset,
         " is not a multiple of 64 within the section's ", sectionSize, " bytes");
  uint32_t n = r.count("weight count", 36);
  r.zero32("reserved");
  for (uint32_t i = 0; i < n; ++i) {
    WeightDesc w;
    w.desc = r.tensor("weight");
    at = r.fileOffset();
    w.offset = r.u64("weight offset");
    w.size = r.u64("weight size");
    uint64_t expect = byteSize(w.desc);
    if (w.size != expect)
      fail(r.what(), " at byte ", at, ": weight '", w.desc.name, "' (", describe(w.desc),
           ") has size ", w.size, ", expected ", expect);
    if (w.offset % kArtifactAlignment != 0)
      fail(r.what(), " at byte ", at, ": weight '", w.desc.name, "' offset ", w.offset,
           " is not a multiple of 64");
    uint64_t dataSize = sectionSize - dataOffset;
    if (w.offset > dataSize || w.size > dataSize - w.offset)
      fail(r.what(), " at byte ", at, ": weight '", w.desc.name, "' [", w.offset, ", +", w.size,
           ") lies outside the weight data (", dataSize, " bytes)");
    out.weights.push_back(std::move(w));
  }
  if (r.pos() > dataOffset)
    fail(r.what(), ": the weight table ends at section byte ", r.pos(),
         ", past the weight data offset ", dataOffset);
  out.weightData = sectionData + dataOffset;
  out.weightDataSize = sectionSize - dataOffset;
  if ((sectionFileOffset + dataOffset) % kArtifactAlignment != 0)
    fail(r.what(), ": weight data at file offset ", sectionFileOffset + dataOffset,
         " is not 64-byte aligned");
}

MemoryPlan decodeMemoryPlan(ByteReader r) {
  MemoryPlan p;
  p.arenaSize = r.u64("arena size");
  uint32_t n = r.count("arena slice count", 20);
  r.zero32("reserved");
  for (uint32_t i = 0; i < n; ++i) {
    ArenaSlice s;
    s.name = r.str("arena slice name");
    uint64_t at = r.fileOffset();
    s.offset = r.u64("arena slice offset");
    s.size = r.u64("arena slice size");
    if (s.offset % kArtifactAlignment != 0)
      fail(r.what(), " at byte ", at, ": arena slice ", i, " '", s.name, "' offset ", s.offset,
           " is not a multiple of 64");
    if (s.offset > p.arenaSize || s.size > p.arenaSize - s.offset)
      fail(r.what(), " at byte ", at, ": arena slice ", i, " '", s.name, "' [", s.offset, ", +",
           s.size, ") lies outside the arena of ", p.arenaSize, " bytes");
    p.slices.push_back(std::move(s));
  }
  r.expectEnd();
  return p;
}

std::vector<FallbackNode> decodeFallbacks(ByteReader r, const uint8_t *sectionData) {
  std::vector<FallbackNode> nodes;
  uint32_t n = r.count("fallback node count", 24);
  for (uint32_t i = 0; i < n; ++i) {
    FallbackNode f;
    f.name = r.str("fallback node name");
    uint64_t at = r.fileOffset();
    f.opType = r.str("fallback op type");
    if (f.opType.empty())
      fail(r.what(), " at byte ", at, ": fallback node ", i, " ('", f.name,
           "') has an empty op type");
    uint32_t nin = r.count("fallback input count", 12);
    for (uint32_t k = 0; k < nin; ++k)
      f.inputs.push_back(r.tensor("fallback input"));
    uint32_t nout = r.count("fallback output count", 12);
    for (uint32_t k = 0; k < nout; ++k)
      f.outputs.push_back(r.tensor("fallback output"));
    at = r.fileOffset();
    uint64_t size = r.u64("fallback payload size");
    if (size > r.left())
      fail(r.what(), " at byte ", at, ": fallback node ", i, " ('", f.name, "') payload of ",
           size, " bytes, but only ", r.left(), " are left in the section");
    f.payload = sectionData + r.pos();
    f.payloadSize = size;
    r.skip(size);
    nodes.push_back(std::move(f));
  }
  r.expectEnd();
  return nodes;
}

/// Fallback steps ("$fallback.<i>"): each fallback node is run by exactly one step, whose
/// arguments are buffers that match the node's inputs, then its outputs.
void checkFallbackSteps(ArtifactContents &c, const std::string &what) {
  std::vector<int> uses(c.fallbacks.size(), 0);
  for (size_t i = 0; i < c.steps.size(); ++i) {
    Step &s = c.steps[i];
    if (s.symbol.rfind(kFallbackSymbolPrefix, 0) != 0)
      continue;
    std::string digits = s.symbol.substr(kFallbackSymbolPrefix.size());
    bool ok = !digits.empty() && digits.size() < 10 &&
              std::all_of(digits.begin(), digits.end(), [](char ch) { return ch >= '0' && ch <= '9'; });
    uint64_t index = ok ? std::stoull(digits) : 0;
    if (!ok || index >= c.fallbacks.size())
      fail(what, ": execution plan step ", i, " calls '", s.symbol, "', but the artifact has ",
           c.fallbacks.size(), " fallback node", c.fallbacks.size() == 1 ? "" : "s",
           " ($fallback.0 .. $fallback.N-1)");
    const FallbackNode &f = c.fallbacks[index];
    if (uses[index]++)
      fail(what, ": fallback node ", index, " ('", f.name, "') is run by two steps");
    if (s.args.size() != f.inputs.size() + f.outputs.size())
      fail(what, ": execution plan step ", i, " (", s.symbol, ", node '", f.name, "') has ",
           s.args.size(), " arguments, expected ", f.inputs.size(), " inputs + ",
           f.outputs.size(), " outputs");
    for (size_t a = 0; a < s.args.size(); ++a) {
      bool isOut = a >= f.inputs.size();
      const TensorDesc &want = isOut ? f.outputs[a - f.inputs.size()] : f.inputs[a];
      const StepArg &arg = s.args[a];
      const TensorDesc *have = nullptr;
      uint64_t haveBytes = 0;
      switch (arg.kind) {
      case ArgKind::Input: have = isOut ? nullptr : &c.metadata.inputs[size_t(arg.value)]; break;
      case ArgKind::Output: have = &c.metadata.outputs[size_t(arg.value)]; break;
      case ArgKind::Weight: have = isOut ? nullptr : &c.weights[size_t(arg.value)].desc; break;
      case ArgKind::Arena: haveBytes = c.memoryPlan.slices[size_t(arg.value)].size; break;
      case ArgKind::Scalar: break;
      }
      bool fits = have ? have->dtype == want.dtype && have->shape == want.shape
                       : arg.kind == ArgKind::Arena && haveBytes == byteSize(want);
      if (!fits)
        fail(what, ": execution plan step ", i, " (", s.symbol, ", node '", f.name,
             "') argument ", a, " is ", argKindName(arg.kind), " ", arg.value,
             have ? " (" + describe(*have) + ")" : std::string(), ", which cannot hold the node's ",
             isOut ? "output " : "input ", describe(want));
    }
    s.fallback = int64_t(index);
  }
  for (size_t k = 0; k < uses.size(); ++k)
    if (!uses[k])
      fail(what, ": fallback node ", k, " ('", c.fallbacks[k].name,
           "') is run by no step of the execution plan");
}

std::vector<DynamicOutput> decodeDynamicOutputs(ByteReader r, const ArtifactContents &c) {
  std::vector<DynamicOutput> out;
  uint32_t n = r.count("dynamic output count", 16);
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t at = r.fileOffset();
    DynamicOutput d;
    d.output = r.u32("output index");
    d.axis = r.u32("axis");
    d.slice = r.u32("extent slice");
    r.zero32("reserved");
    const std::vector<TensorDesc> &outs = c.metadata.outputs;
    if (d.output >= outs.size())
      fail(r.what(), " at byte ", at, ": dynamic output ", i, " names output ", d.output,
           ", but the artifact has ", outs.size(), " output", outs.size() == 1 ? "" : "s");
    const TensorDesc &o = outs[d.output];
    if (!out.empty() && d.output <= out.back().output)
      fail(r.what(), " at byte ", at, ": dynamic output ", i, " (output '", o.name,
           "') is not after the previous entry's output (expected increasing output indices)");
    if (d.axis >= o.shape.size())
      fail(r.what(), " at byte ", at, ": dynamic output '", o.name, "' axis ", d.axis,
           " is out of range for ", describe(o));
    if (d.slice >= c.memoryPlan.slices.size() || c.memoryPlan.slices[d.slice].size < 8)
      fail(r.what(), " at byte ", at, ": dynamic output '", o.name, "' extent slice ", d.slice,
           " is not an arena slice of at least 8 bytes (the artifact has ",
           c.memoryPlan.slices.size(), " slices)");
    out.push_back(d);
  }
  r.expectEnd();
  return out;
}

std::vector<InputValue> decodeInputValues(ByteReader r, const ArtifactContents &c) {
  std::vector<InputValue> out;
  uint32_t n = r.count("input value count", 8);
  for (uint32_t i = 0; i < n; ++i) {
    uint64_t at = r.fileOffset();
    InputValue v;
    v.input = r.u32("input index");
    v.weight = r.u32("weight index");
    const std::vector<TensorDesc> &ins = c.metadata.inputs;
    if (v.input >= ins.size())
      fail(r.what(), " at byte ", at, ": input value ", i, " names input ", v.input,
           ", but the artifact has ", ins.size(), " input", ins.size() == 1 ? "" : "s");
    const TensorDesc &in = ins[v.input];
    if (!out.empty() && v.input <= out.back().input)
      fail(r.what(), " at byte ", at, ": input value ", i, " (input '", in.name,
           "') is not after the previous entry's input (expected increasing input indices)");
    if (v.weight >= c.weights.size())
      fail(r.what(), " at byte ", at, ": the value of input '", in.name, "' is weight ", v.weight,
           ", but the artifact has ", c.weights.size(), " weights");
    const TensorDesc &w = c.weights[v.weight].desc;
    if (w.dtype != in.dtype || w.shape != in.shape)
      fail(r.what(), " at byte ", at, ": the value of input '", in.name, "' (", describe(in),
           ") is weight '", w.name, "' of another type, ", describe(w));
    out.push_back(v);
  }
  r.expectEnd();
  return out;
}

bool validSymbol(const std::string &s) {
  if (s.empty())
    return false;
  return std::all_of(s.begin(), s.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           c == '_' || c == '.' || c == '$';
  });
}

std::vector<Step> decodeExecutionPlan(ByteReader r, const ArtifactContents &c) {
  std::vector<Step> steps;
  uint32_t n = r.count("step count", 8);
  for (uint32_t i = 0; i < n; ++i) {
    Step s;
    uint64_t at = r.fileOffset();
    s.symbol = r.str("kernel symbol");
    if (!validSymbol(s.symbol))
      fail(r.what(), " at byte ", at, ": step ", i, " kernel symbol '", s.symbol,
           "' is not a symbol name (letters, digits, '_', '.', '$')");
    uint32_t nargs = r.count("argument count", 16);
    for (uint32_t a = 0; a < nargs; ++a) {
      at = r.fileOffset();
      uint32_t kind = r.u32("argument kind");
      r.zero32("reserved");
      int64_t v = r.i64("argument value");
      if (kind > uint32_t(ArgKind::Scalar))
        fail(r.what(), " at byte ", at, ": step ", i, " (", s.symbol, ") argument ", a,
             " has kind ", kind, ", expected 0 input, 1 output, 2 weight, 3 arena, 4 scalar");
      size_t limit = 0;
      switch (ArgKind(kind)) {
      case ArgKind::Input: limit = c.metadata.inputs.size(); break;
      case ArgKind::Output: limit = c.metadata.outputs.size(); break;
      case ArgKind::Weight: limit = c.weights.size(); break;
      case ArgKind::Arena: limit = c.memoryPlan.slices.size(); break;
      case ArgKind::Scalar: break;
      }
      if (ArgKind(kind) != ArgKind::Scalar && (v < 0 || uint64_t(v) >= limit))
        fail(r.what(), " at byte ", at, ": step ", i, " (", s.symbol, ") argument ", a, " is ",
             argKindName(ArgKind(kind)), " ", v, ", out of range: the artifact has ", limit, " ",
             argKindName(ArgKind(kind)), limit == 1 ? "" : "s");
      s.args.push_back({ArgKind(kind), v});
    }
    steps.push_back(std::move(s));
  }
  r.expectEnd();
  return steps;
}

} // namespace

const char *sectionKindName(SectionKind kind) {
  switch (kind) {
  case SectionKind::Metadata: return "metadata";
  case SectionKind::Code: return "code";
  case SectionKind::Weights: return "weights";
  case SectionKind::MemoryPlan: return "memory plan";
  case SectionKind::ExecutionPlan: return "execution plan";
  case SectionKind::Fallback: return "fallback";
  case SectionKind::DynamicOutputs: return "dynamic outputs";
  case SectionKind::InputValues: return "input values";
  }
  return "unknown";
}

const char *argKindName(ArgKind kind) {
  switch (kind) {
  case ArgKind::Input: return "input";
  case ArgKind::Output: return "output";
  case ArgKind::Weight: return "weight";
  case ArgKind::Arena: return "arena slice";
  case ArgKind::Scalar: return "scalar";
  }
  return "unknown";
}

size_t elemTypeSize(uint32_t code) { return code < kElemSizes.size() ? kElemSizes[code] : 0; }

const char *elemTypeName(uint32_t code) {
  return code < kElemNames.size() ? kElemNames[code] : "invalid";
}

uint64_t fnv1a64(const void *data, size_t size) {
  const auto *p = static_cast<const uint8_t *>(data);
  uint64_t h = 0xcbf29ce484222325ull;
  for (size_t i = 0; i < size; ++i) {
    h ^= p[i];
    h *= 0x100000001b3ull;
  }
  return h;
}

uint64_t numElements(const std::vector<int64_t> &shape) {
  uint64_t n = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    int64_t d = shape[i];
    TESSEL_CHECK(d >= 0, "dim ", i, " is ", d, ", expected a non-negative size");
    TESSEL_CHECK(d == 0 || n <= (uint64_t(1) << 62) / uint64_t(d),
                 "the element count overflows at dim ", i, " (", d, ")");
    n *= uint64_t(d);
  }
  return n;
}

uint64_t byteSize(const TensorDesc &desc) {
  size_t es = elemTypeSize(uint32_t(desc.dtype));
  TESSEL_CHECK(es != 0, "dtype code ", uint32_t(desc.dtype), " is not a valid element type");
  uint64_t n = numElements(desc.shape);
  TESSEL_CHECK(n <= (uint64_t(1) << 62) / es, "the byte size of ", n, " elements overflows");
  return n * es;
}

std::string describe(const TensorDesc &desc) {
  std::ostringstream os;
  os << elemTypeName(uint32_t(desc.dtype)) << '[';
  for (size_t i = 0; i < desc.shape.size(); ++i)
    os << (i ? "," : "") << desc.shape[i];
  os << ']';
  return os.str();
}

std::vector<uint8_t> encodeArtifact(const ArtifactContents &c) {
  std::array<ByteWriter, kMaxSectionKinds> sec;
  // The optional sections are written only when they have entries, so an artifact without
  // fallback nodes or dynamic outputs is byte for byte what a runtime that predates them reads.
  std::vector<uint32_t> kinds; // the sections written, by kind (1-based), in kind order
  for (uint32_t k = 1; k <= kMaxSectionKinds; ++k)
    if (k <= kNumSectionKinds || (k == uint32_t(SectionKind::Fallback) && !c.fallbacks.empty()) ||
        (k == uint32_t(SectionKind::DynamicOutputs) && !c.dynamicOutputs.empty()) ||
        (k == uint32_t(SectionKind::InputValues) && !c.inputValues.empty()))
      kinds.push_back(k);
  const uint32_t nSections = uint32_t(kinds.size());

  ByteWriter &meta = sec[0];
  const Metadata &m = c.metadata;
  meta.str(m.targetTriple);
  meta.str(m.cpuName);
  meta.count(m.cpuFeatures.size(), "cpu features");
  for (const std::string &f : m.cpuFeatures)
    meta.str(f);
  meta.str(m.tesselVersion);
  meta.str(m.sourceHash);
  meta.u32(m.bufferAlignment);
  meta.count(m.fallbackNodes.size(), "fallback nodes");
  for (const std::string &f : m.fallbackNodes)
    meta.str(f);
  meta.count(m.inputs.size(), "inputs");
  for (const TensorDesc &t : m.inputs)
    meta.tensor(t);
  meta.count(m.outputs.size(), "outputs");
  for (const TensorDesc &t : m.outputs)
    meta.tensor(t);
  meta.count(m.extra.size(), "extra pairs");
  for (const auto &[k, v] : m.extra) {
    meta.str(k);
    meta.str(v);
  }

  ByteWriter &code = sec[1];
  if (c.codeSize)
    code.bytes.assign(c.code, c.code + c.codeSize);

  ByteWriter &w = sec[2];
  size_t dataOffsetAt = w.bytes.size();
  w.u64(0); // patched below
  w.count(c.weights.size(), "weights");
  w.u32(0);
  for (const WeightDesc &wd : c.weights) {
    w.tensor(wd.desc);
    w.u64(wd.offset);
    w.u64(wd.size);
  }
  w.padTo(kArtifactAlignment);
  uint64_t dataOffset = w.bytes.size();
  for (int i = 0; i < 8; ++i)
    w.bytes[dataOffsetAt + i] = uint8_t(dataOffset >> (8 * i));
  if (c.weightDataSize)
    w.bytes.insert(w.bytes.end(), c.weightData, c.weightData + c.weightDataSize);

  ByteWriter &plan = sec[3];
  plan.u64(c.memoryPlan.arenaSize);
  plan.count(c.memoryPlan.slices.size(), "arena slices");
  plan.u32(0);
  for (const ArenaSlice &s : c.memoryPlan.slices) {
    plan.str(s.name);
    plan.u64(s.offset);
    plan.u64(s.size);
  }

  ByteWriter &exec = sec[4];
  exec.count(c.steps.size(), "steps");
  for (const Step &s : c.steps) {
    exec.str(s.symbol);
    exec.count(s.args.size(), "arguments");
    for (const StepArg &a : s.args) {
      exec.u32(uint32_t(a.kind));
      exec.u32(0);
      exec.i64(a.value);
    }
  }

  ByteWriter &fb = sec[5];
  fb.count(c.fallbacks.size(), "fallback nodes");
  for (const FallbackNode &f : c.fallbacks) {
    fb.str(f.name);
    fb.str(f.opType);
    fb.count(f.inputs.size(), "fallback inputs");
    for (const TensorDesc &t : f.inputs)
      fb.tensor(t);
    fb.count(f.outputs.size(), "fallback outputs");
    for (const TensorDesc &t : f.outputs)
      fb.tensor(t);
    fb.u64(f.payloadSize);
    if (f.payloadSize)
      fb.bytes.insert(fb.bytes.end(), f.payload, f.payload + f.payloadSize);
  }

  ByteWriter &dyn = sec[6];
  dyn.count(c.dynamicOutputs.size(), "dynamic outputs");
  for (const DynamicOutput &d : c.dynamicOutputs) {
    dyn.u32(d.output);
    dyn.u32(d.axis);
    dyn.u32(d.slice);
    dyn.u32(0);
  }

  ByteWriter &iv = sec[7];
  iv.count(c.inputValues.size(), "input values");
  for (const InputValue &v : c.inputValues) {
    iv.u32(v.input);
    iv.u32(v.weight);
  }

  // Layout: header, table, then the sections in kind order, each at a multiple of 64.
  uint64_t offsets[kMaxSectionKinds];
  uint64_t pos = alignUp(kHeaderSize + nSections * kSectionEntrySize, kArtifactAlignment);
  for (uint32_t i = 0; i < nSections; ++i) {
    offsets[i] = pos;
    pos = alignUp(pos + sec[kinds[i] - 1].bytes.size(), kArtifactAlignment);
  }
  uint64_t total = offsets[nSections - 1] + sec[kinds[nSections - 1] - 1].bytes.size();

  ByteWriter out;
  out.bytes.insert(out.bytes.end(), kArtifactMagic, kArtifactMagic + 8);
  out.u32(kArtifactVersion);
  out.u32(kEndianMark);
  out.u64(total);
  out.u32(nSections);
  out.u32(uint32_t(kHeaderSize));
  out.u64(0); // header checksum, patched below
  out.bytes.resize(kHeaderSize, 0);
  for (uint32_t i = 0; i < nSections; ++i) {
    const ByteWriter &b = sec[kinds[i] - 1];
    out.u32(kinds[i]);
    out.u32(0);
    out.u64(offsets[i]);
    out.u64(b.bytes.size());
    out.u64(fnv1a64(b.bytes.data(), b.bytes.size()));
  }
  uint64_t headerSum = fnv1a64(out.bytes.data(), out.bytes.size());
  for (int i = 0; i < 8; ++i)
    out.bytes[32 + i] = uint8_t(headerSum >> (8 * i));
  for (uint32_t i = 0; i < nSections; ++i) {
    const ByteWriter &b = sec[kinds[i] - 1];
    out.bytes.resize(offsets[i], 0);
    out.bytes.insert(out.bytes.end(), b.bytes.begin(), b.bytes.end());
  }
  return out.bytes;
}

ArtifactContents parseArtifact(const uint8_t *data, size_t size, std::string_view whatView) {
  const std::string what(whatView);
  TESSEL_CHECK(data != nullptr || size == 0, what, ": no data");
  if (size > 0 && size < 8 && std::memcmp(data, kArtifactMagic, size) == 0)
    fail(what, ": truncated: ", size, " bytes, not even the 8-byte magic");
  if (size < 8 || std::memcmp(data, kArtifactMagic, 8) != 0)
    fail(what, ": not a tessel artifact: it starts with ", size ? hexBytes(data, std::min<size_t>(size, 8)) : "nothing (empty file)",
         guessFormat(data, size), ", expected the magic 54 45 53 53 45 4c 00 01 (\"TESSEL\\0\\1\")");
  if (size < kHeaderSize)
    fail(what, ": truncated: ", size, " bytes, but the header alone is ", kHeaderSize);

  ByteReader h(data, kHeaderSize, 0, what + ": header");
  h.u64("magic");
  uint32_t version = h.u32("version");
  if (version != kArtifactVersion)
    fail(what, ": format version ", version, ", this runtime reads version ", kArtifactVersion,
         " (recompile the model with a matching tessel)");
  uint32_t endian = h.u32("endianness mark");
  if (endian != kEndianMark)
    fail(what, ": endianness mark reads 0x", std::hex, endian, ", expected 0x", kEndianMark,
         std::dec, " (the file is corrupted or from a big-endian writer)");
  uint64_t total = h.u64("file size");
  if (total != size)
    fail(what, ": the header says the file is ", total, " bytes but it is ", size,
         total > size ? " (truncated)" : " (extra bytes at the end)");
  uint32_t nSections = h.u32("section count");
  if (nSections < kNumSectionKinds || nSections > kMaxSectionKinds)
    fail(what, ": header byte 24: section count ", nSections, ", expected ", kNumSectionKinds,
         " to ", kMaxSectionKinds,
         " (with the optional fallback, dynamic-outputs and input-values sections)");
  uint32_t headerSize = h.u32("header size");
  if (headerSize != kHeaderSize)
    fail(what, ": header byte 28: header size ", headerSize, ", expected ", kHeaderSize);
  uint64_t headerSum = h.u64("header checksum");
  for (uint64_t i = 40; i < kHeaderSize; ++i)
    if (data[i] != 0)
      fail(what, ": header byte ", i, " is reserved and must be 0, found ", unsigned(data[i]));

  uint64_t tableEnd = kHeaderSize + uint64_t(nSections) * kSectionEntrySize;
  if (tableEnd > size)
    fail(what, ": truncated: the section table ends at byte ", tableEnd, " but the file has ",
         size);
  {
    std::vector<uint8_t> headerCopy(data, data + tableEnd);
    std::memset(headerCopy.data() + 32, 0, 8);
    uint64_t got = fnv1a64(headerCopy.data(), headerCopy.size());
    if (got != headerSum)
      fail(what, ": header checksum mismatch (stored 0x", std::hex, headerSum, ", computed 0x",
           got, std::dec, "): the header or section table is corrupted");
  }

  std::array<SectionEntry, kMaxSectionKinds> entries{};
  std::array<bool, kMaxSectionKinds> seen{};
  ByteReader t(data + kHeaderSize, tableEnd - kHeaderSize, kHeaderSize, what + ": section table");
  for (uint32_t i = 0; i < nSections; ++i) {
    uint64_t at = t.fileOffset();
    uint32_t kind = t.u32("section kind");
    t.zero32("reserved");
    SectionEntry e;
    e.offset = t.u64("section offset");
    e.size = t.u64("section size");
    e.checksum = t.u64("section checksum");
    if (kind < 1 || kind > kMaxSectionKinds)
      fail(what, ": section table entry ", i, " at byte ", at, ": kind ", kind,
           ", expected 1..8 (metadata, code, weights, memory plan, execution plan, fallback, "
           "dynamic outputs, input values)");
    e.kind = SectionKind(kind);
    const char *name = sectionKindName(e.kind);
    if (seen[kind - 1])
      fail(what, ": the ", name, " section appears twice in the section table");
    seen[kind - 1] = true;
    if (e.offset < tableEnd || e.offset > size || e.size > size - e.offset)
      fail(what, ": the ", name, " section [", e.offset, ", +", e.size,
           ") lies outside the file's section area [", tableEnd, ", ", size, ")",
           e.offset <= size && e.size > size - e.offset ? " (truncated?)" : "");
    if (e.offset % kArtifactAlignment != 0)
      fail(what, ": the ", name, " section offset ", e.offset, " is not a multiple of 64");
    entries[kind - 1] = e;
  }
  for (uint32_t k = 1; k <= kNumSectionKinds; ++k)
    if (!seen[k - 1])
      fail(what, ": the ", sectionKindName(SectionKind(k)),
           " section is missing from the section table");
  std::vector<SectionEntry> present;
  for (uint32_t k = 0; k < kMaxSectionKinds; ++k)
    if (seen[k])
      present.push_back(entries[k]);
  for (size_t i = 0; i < present.size(); ++i)
    for (size_t j = i + 1; j < present.size(); ++j) {
      const SectionEntry &a = present[i], &b = present[j];
      if (a.size && b.size && a.offset < b.offset + b.size && b.offset < a.offset + a.size)
        fail(what, ": the ", sectionKindName(a.kind), " section [", a.offset, ", +", a.size,
             ") overlaps the ", sectionKindName(b.kind), " section [", b.offset, ", +", b.size,
             ")");
    }
  // Padding between and after sections is zero, so that no byte of the file goes unchecked.
  {
    std::vector<SectionEntry> sorted = present;
    std::sort(sorted.begin(), sorted.end(),
              [](const SectionEntry &a, const SectionEntry &b) { return a.offset < b.offset; });
    uint64_t pos = tableEnd;
    auto checkZero = [&](uint64_t from, uint64_t to) {
      for (uint64_t i = from; i < to; ++i)
        if (data[i] != 0)
          fail(what, ": byte ", i, " lies between sections and must be 0, found ",
               unsigned(data[i]), " (the file is corrupted)");
    };
    for (const SectionEntry &e : sorted) {
      if (e.offset > pos)
        checkZero(pos, e.offset);
      pos = std::max(pos, e.offset + e.size);
    }
    checkZero(pos, size);
  }
  for (const SectionEntry &e : present) {
    uint64_t got = fnv1a64(data + e.offset, e.size);
    if (got != e.checksum)
      fail(what, ": the ", sectionKindName(e.kind), " section (bytes ", e.offset, "..",
           e.offset + e.size, ") fails its checksum (stored 0x", std::hex, e.checksum,
           ", computed 0x", got, std::dec, "): the file is corrupted");
  }

  auto reader = [&](SectionKind k) {
    const SectionEntry &e = entries[uint32_t(k) - 1];
    return ByteReader(data + e.offset, e.size, e.offset,
                      what + ": " + sectionKindName(k) + " section");
  };
  ArtifactContents c;
  c.fileSize = size;
  for (const SectionEntry &e : present)
    c.sections.push_back({e.kind, e.offset, e.size});
  std::sort(c.sections.begin(), c.sections.end(),
            [](const SectionInfo &a, const SectionInfo &b) { return a.offset < b.offset; });
  c.metadata = decodeMetadata(reader(SectionKind::Metadata));
  const SectionEntry &code = entries[uint32_t(SectionKind::Code) - 1];
  c.code = data + code.offset;
  c.codeSize = code.size;
  const SectionEntry &weights = entries[uint32_t(SectionKind::Weights) - 1];
  decodeWeights(reader(SectionKind::Weights), data + weights.offset, weights.size,
                weights.offset, c);
  c.memoryPlan = decodeMemoryPlan(reader(SectionKind::MemoryPlan));
  if (seen[uint32_t(SectionKind::Fallback) - 1]) {
    const SectionEntry &fe = entries[uint32_t(SectionKind::Fallback) - 1];
    c.fallbacks = decodeFallbacks(reader(SectionKind::Fallback), data + fe.offset);
  }
  if (seen[uint32_t(SectionKind::DynamicOutputs) - 1])
    c.dynamicOutputs = decodeDynamicOutputs(reader(SectionKind::DynamicOutputs), c);
  if (seen[uint32_t(SectionKind::InputValues) - 1])
    c.inputValues = decodeInputValues(reader(SectionKind::InputValues), c);
  c.steps = decodeExecutionPlan(reader(SectionKind::ExecutionPlan), c);
  checkFallbackSteps(c, what);
  size_t kernelSteps = size_t(std::count_if(c.steps.begin(), c.steps.end(),
                                            [](const Step &s) { return s.fallback < 0; }));
  if (kernelSteps && c.codeSize == 0)
    fail(what, ": the execution plan has ", kernelSteps,
         " kernel steps but the code section is empty");
  return c;
}

std::vector<double> parseKernelFlops(const ArtifactContents &contents, std::string_view whatView) {
  const std::string what(whatView);
  std::vector<double> flops;
  const std::string *text = nullptr;
  for (const auto &[k, v] : contents.metadata.extra)
    if (k == "kernel_flops" && !text) // the first one, as Model::info sees it
      text = &v;
  if (!text)
    return flops;
  size_t pos = 0;
  while (pos <= text->size() && !text->empty()) {
    size_t comma = std::min(text->find(',', pos), text->size());
    std::string item = text->substr(pos, comma - pos);
    char *end = nullptr;
    errno = 0;
    double v = item.empty() ? -1 : std::strtod(item.c_str(), &end);
    TESSEL_CHECK(!item.empty() && errno == 0 && end == item.c_str() + item.size() && v >= 0,
                 what, ": metadata 'kernel_flops' item ", flops.size(), " is '", item,
                 "', expected a non-negative number");
    flops.push_back(v);
    pos = comma + 1;
  }
  TESSEL_CHECK(flops.size() == contents.steps.size(), what, ": metadata 'kernel_flops' has ",
               flops.size(), " numbers, expected one per execution-plan step (",
               contents.steps.size(), ")");
  return flops;
}

//===--- host checks --------------------------------------------------------===//

const char *hostArch() {
#if defined(__x86_64__)
  return "x86_64";
#elif defined(__aarch64__)
  return "aarch64";
#elif defined(__riscv) && __riscv_xlen == 64
  return "riscv64";
#else
  return "unknown";
#endif
}

bool hostHasCpuFeature(std::string_view feature) {
  if (!feature.empty() && feature.front() == '+')
    feature.remove_prefix(1);
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
  __builtin_cpu_init();
  // __builtin_cpu_supports needs a string literal, hence the table.
#define TESSEL_FEATURE(llvmName, gccName)                                                          \
  if (feature == llvmName)                                                                         \
    return __builtin_cpu_supports(gccName);
  TESSEL_FEATURE("sse", "sse")
  TESSEL_FEATURE("sse2", "sse2")
  TESSEL_FEATURE("sse3", "sse3")
  TESSEL_FEATURE("ssse3", "ssse3")
  TESSEL_FEATURE("sse4.1", "sse4.1")
  TESSEL_FEATURE("sse4.2", "sse4.2")
  TESSEL_FEATURE("popcnt", "popcnt")
  TESSEL_FEATURE("avx", "avx")
  TESSEL_FEATURE("avx2", "avx2")
  TESSEL_FEATURE("fma", "fma")
  TESSEL_FEATURE("bmi", "bmi")
  TESSEL_FEATURE("bmi2", "bmi2")
  TESSEL_FEATURE("avx512f", "avx512f")
  TESSEL_FEATURE("avx512bw", "avx512bw")
  TESSEL_FEATURE("avx512cd", "avx512cd")
  TESSEL_FEATURE("avx512dq", "avx512dq")
  TESSEL_FEATURE("avx512vl", "avx512vl")
  TESSEL_FEATURE("avx512vnni", "avx512vnni")
  TESSEL_FEATURE("avx512ifma", "avx512ifma")
  TESSEL_FEATURE("avx512vbmi", "avx512vbmi")
  TESSEL_FEATURE("avx512vpopcntdq", "avx512vpopcntdq")
  TESSEL_FEATURE("avx512bf16", "avx512bf16")
#undef TESSEL_FEATURE
  return false;
#else
  (void)feature;
  return false;
#endif
}

} // namespace tessel::runtime
