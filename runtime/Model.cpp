//===- Model.cpp - load and run a compiled model --------------------------===//
//
// Loading: read the file into one 64-byte-aligned buffer, parseArtifact (structure and
// checksums), host checks (architecture, CPU features), dlopen the code through a memfd, resolve
// every kernel. Running: bind the caller's tensors by name, take an arena from the pool, call
// the steps in order, give the arena back.
//
//===----------------------------------------------------------------------===//

#include "tessel/runtime/Model.h"
#include "tessel/runtime/ThreadPool.h"

#include "tessel/Support/Error.h"

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>

#include <dlfcn.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

namespace tessel::runtime {

namespace {

using KernelFn = void (*)(void **args);

struct AlignedFree {
  void operator()(void *p) const { std::free(p); }
};
using AlignedBytes = std::unique_ptr<uint8_t, AlignedFree>;

uint64_t alignUp(uint64_t v, uint64_t a) { return (v + a - 1) / a * a; }

/// Buffers from 1 MiB up (weights, arenas) are 2 MiB-aligned and asked to be backed by
/// transparent huge pages: physically contiguous memory streams at the prefetchers' full
/// speed (they stop at 4 KiB page boundaries) and lands in the caches the same way in every
/// process. With 4 KiB pages mlp's 1.6 MB weight matrix ran at 23-24 us or 28-31 us per
/// inference depending on the process.
constexpr uint64_t kHugePage = 2u << 20;

AlignedBytes allocAligned(uint64_t size, const std::string &what) {
  bool huge = size >= (1u << 20);
  uint64_t align = huge ? kHugePage : kArtifactAlignment;
  uint64_t n = alignUp(std::max<uint64_t>(size, 1), align);
  void *p = std::aligned_alloc(align, n);
  TESSEL_CHECK(p != nullptr, what, ": cannot allocate ", size, " bytes");
#if defined(__linux__) && defined(MADV_HUGEPAGE)
  if (huge)
    (void)madvise(p, n, MADV_HUGEPAGE); // a hint: without THP the pages stay 4 KiB
#endif
  return AlignedBytes(static_cast<uint8_t *>(p));
}

std::string errnoText() { return std::strerror(errno); }

/// Writes `code` to a private file and returns its descriptor (caller closes) and the path
/// dlopen takes; `unlinkPath` is set when a temp file must be removed after dlopen.
int writeCodeFile(const uint8_t *code, uint64_t size, const std::string &what, std::string &path,
                  std::string &unlinkPath) {
  int fd = -1;
#if defined(__linux__) && defined(MFD_CLOEXEC)
  fd = memfd_create("tessel-kernels", MFD_CLOEXEC);
  if (fd >= 0)
    path = "/proc/self/fd/" + std::to_string(fd);
#endif
  if (fd < 0) {
    const char *dir = std::getenv("TMPDIR");
    std::string tmpl = std::string(dir && *dir ? dir : "/tmp") + "/tessel-kernels-XXXXXX";
    std::vector<char> buf(tmpl.begin(), tmpl.end());
    buf.push_back('\0');
    fd = mkstemp(buf.data());
    TESSEL_CHECK(fd >= 0, what, ": cannot create a temporary file for the code section in ",
                 tmpl, ": ", errnoText());
    path = unlinkPath = buf.data();
  }
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = ::write(fd, code + done, std::min<uint64_t>(size - done, 1u << 30));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      std::string err = errnoText();
      ::close(fd);
      if (!unlinkPath.empty())
        ::unlink(unlinkPath.c_str());
      fail(what, ": cannot write the code section to ", path, ": ", err);
    }
    done += uint64_t(n);
  }
  return fd;
}

/// The code section calls tessel_parallel_for, which dlopen resolves among the process's
/// global symbols. A program linked with libtessel_runtime has them there; a host that loaded
/// the runtime with dlopen(RTLD_LOCAL) (Python's ctypes, a plugin) does not, so promote the
/// library holding this code to RTLD_GLOBAL (RTLD_NOLOAD: only if it is loaded, which it is).
void makeRuntimeSymbolsGlobal() {
  static std::once_flag once;
  std::call_once(once, [] {
    Dl_info info;
    if (!dladdr(reinterpret_cast<void *>(&tessel_parallel_for), &info) || !info.dli_fname)
      return;
    if (void *self = dlopen(info.dli_fname, RTLD_LAZY | RTLD_NOLOAD | RTLD_GLOBAL))
      dlclose(self); // the promotion stays; the reference count is back where it was
  });
}

std::string join(const std::vector<std::string> &v) {
  std::string s;
  for (size_t i = 0; i < v.size(); ++i)
    s += (i ? "," : "") + v[i];
  return s;
}

} // namespace

struct Model::Impl {
  std::string what; // the path or name, for errors
  AlignedBytes file;
  uint64_t fileSize = 0;
  ArtifactContents contents;
  void *library = nullptr;
  std::vector<KernelFn> kernels; // per step (nullptr for a fallback step)
  std::vector<FallbackKernel> fallbackKernels; // per fallback node
  std::map<std::string, std::string, std::less<>> info;
  size_t totalArgs = 0;
  std::vector<double> kernelFlops; // per step; empty when the artifact has no "kernel_flops"

  mutable std::mutex poolMutex;
  mutable std::vector<AlignedBytes> arenaPool;

  // The code file stays open while the library is loaded: dlopen knows a library by its path,
  // and "/proc/self/fd/N" of a closed descriptor would be reused by the next model's code
  // file, which dlopen would then answer with this (already loaded) library.
  int codeFd = -1;

  ~Impl() {
    if (library)
      dlclose(library);
    if (codeFd >= 0)
      ::close(codeFd);
  }

  void init();
  void checkHost() const;
  void loadCode();
  void prepareFallbacks();
  void callStep(size_t s, void **args) const {
    const Step &step = contents.steps[s];
    if (step.fallback >= 0)
      fallbackKernels[size_t(step.fallback)](args);
    else
      kernels[s](args);
  }
  void parseKernelFlops();
  AlignedBytes takeArena() const;
  void giveArena(AlignedBytes arena) const;
};

void Model::Impl::checkHost() const {
  const Metadata &m = contents.metadata;
  if (!m.targetTriple.empty()) {
    std::string arch = m.targetTriple.substr(0, m.targetTriple.find('-'));
    if (arch == "amd64")
      arch = "x86_64";
    if (arch == "arm64")
      arch = "aarch64";
    TESSEL_CHECK(arch == hostArch(), what, ": compiled for target '", m.targetTriple,
                 "' (", arch, "), but this machine is ", hostArch());
  }
  std::vector<std::string> missing;
  for (const std::string &f : m.cpuFeatures)
    if (!hostHasCpuFeature(f))
      missing.push_back(f);
  if (!missing.empty())
    fail(what, ": this CPU lacks required CPU feature", missing.size() > 1 ? "s " : " ",
         join(missing), " (the code was compiled for cpu '", m.cpuName, "' with features ",
         join(m.cpuFeatures), "); recompile the model for this machine");
}

static std::mutex &fallbackMutex() {
  static std::mutex m;
  return m;
}
static FallbackHandler &fallbackHandler() {
  static FallbackHandler h;
  return h;
}

void Model::Impl::prepareFallbacks() {
  if (contents.fallbacks.empty())
    return;
  FallbackHandler handler;
  {
    std::lock_guard<std::mutex> lock(fallbackMutex());
    handler = fallbackHandler();
  }
  if (!handler) {
    std::string names;
    for (const FallbackNode &f : contents.fallbacks)
      names += (names.empty() ? "" : ", ") + f.name + " (" + f.opType + ")";
    fail(what, ": the model runs ", contents.fallbacks.size(), " node",
         contents.fallbacks.size() == 1 ? "" : "s", " through the interpreter fallback (",
         names, "), but this process registered no fallback handler; run it with the tessel "
         "tool, or compile the model without --allow-interpreter-fallback");
  }
  for (const FallbackNode &f : contents.fallbacks) {
    FallbackKernel k;
    try {
      k = handler(f);
    } catch (const std::exception &e) {
      fail(what, ": fallback node '", f.name, "' (", f.opType, "): ", e.what());
    }
    TESSEL_CHECK(bool(k), what, ": the fallback handler gave no kernel for node '", f.name,
                 "' (", f.opType, ")");
    fallbackKernels.push_back(std::move(k));
  }
}

void Model::Impl::loadCode() {
  bool anyKernel = std::any_of(contents.steps.begin(), contents.steps.end(),
                               [](const Step &s) { return s.fallback < 0; });
  if (!anyKernel) {
    kernels.assign(contents.steps.size(), nullptr);
    return;
  }
  const uint8_t *code = contents.code;
  if (contents.codeSize < 4 || std::memcmp(code, "\x7f" "ELF", 4) != 0)
    fail(what, ": the code section is not an ELF shared object (it starts with ",
         contents.codeSize >= 4 ? "other bytes" : "fewer than 4 bytes", ")");
  makeRuntimeSymbolsGlobal();
  std::string path, unlinkPath;
  int fd = writeCodeFile(code, contents.codeSize, what, path, unlinkPath);
  dlerror();
  library = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  std::string dlErr;
  if (!library) {
    const char *e = dlerror();
    dlErr = e ? e : "unknown dlopen error";
  }
  if (library && unlinkPath.empty())
    codeFd = fd; // a memfd: keep it (and its /proc/self/fd path) while the library lives
  else
    ::close(fd);
  if (!unlinkPath.empty())
    ::unlink(unlinkPath.c_str());
  if (!library)
    fail(what, ": cannot load the code section as a shared object: ", dlErr);
  for (size_t i = 0; i < contents.steps.size(); ++i) {
    const Step &s = contents.steps[i];
    if (s.fallback >= 0) {
      kernels.push_back(nullptr);
      continue;
    }
    dlerror();
    void *sym = dlsym(library, s.symbol.c_str());
    if (!sym)
      fail(what, ": execution plan step ", i, " calls kernel '", s.symbol,
           "', which the code section does not define");
    kernels.push_back(reinterpret_cast<KernelFn>(sym));
  }
}

void Model::Impl::init() {
  contents = parseArtifact(file.get(), fileSize, what);
  checkHost();
  prepareFallbacks();
  loadCode();
  for (const Step &s : contents.steps)
    totalArgs += s.args.size();
  const Metadata &m = contents.metadata;
  info["target_triple"] = m.targetTriple;
  info["cpu_name"] = m.cpuName;
  info["cpu_features"] = join(m.cpuFeatures);
  info["fallback_nodes"] = join(m.fallbackNodes);
  info["tessel_version"] = m.tesselVersion;
  info["source_hash"] = m.sourceHash;
  info["buffer_alignment"] = std::to_string(m.bufferAlignment);
  info["arena_size"] = std::to_string(contents.memoryPlan.arenaSize);
  info["num_steps"] = std::to_string(contents.steps.size());
  for (const auto &[k, v] : m.extra)
    info.emplace(k, v);
  parseKernelFlops();
}

void Model::Impl::parseKernelFlops() { kernelFlops = runtime::parseKernelFlops(contents, what); }

AlignedBytes Model::Impl::takeArena() const {
  {
    std::lock_guard<std::mutex> lock(poolMutex);
    if (!arenaPool.empty()) {
      AlignedBytes a = std::move(arenaPool.back());
      arenaPool.pop_back();
      return a;
    }
  }
  return allocAligned(contents.memoryPlan.arenaSize, what + ": arena");
}

void Model::Impl::giveArena(AlignedBytes arena) const {
  std::lock_guard<std::mutex> lock(poolMutex);
  arenaPool.push_back(std::move(arena));
}

void setFallbackHandler(FallbackHandler handler) {
  std::lock_guard<std::mutex> lock(fallbackMutex());
  fallbackHandler() = std::move(handler);
}

bool hasFallbackHandler() {
  std::lock_guard<std::mutex> lock(fallbackMutex());
  return bool(fallbackHandler());
}

Model::Model(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Model::Model(Model &&) noexcept = default;
Model &Model::operator=(Model &&) noexcept = default;
Model::~Model() = default;

namespace {

/// Reads the regular file at `path` into one aligned buffer (errors name the path).
AlignedBytes readWholeFile(const std::string &path, uint64_t &size) {
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  TESSEL_CHECK(fd >= 0, path, ": cannot open: ", errnoText());
  struct stat st;
  if (::fstat(fd, &st) != 0) {
    std::string err = errnoText();
    ::close(fd);
    fail(path, ": cannot stat: ", err);
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    fail(path, ": not a regular file");
  }
  size = uint64_t(st.st_size);
  AlignedBytes file = allocAligned(size, path);
  uint64_t done = 0;
  while (done < size) {
    ssize_t n = ::read(fd, file.get() + done, std::min<uint64_t>(size - done, 1u << 30));
    if (n < 0 && errno == EINTR)
      continue;
    if (n <= 0) {
      std::string err = n < 0 ? errnoText() : "unexpected end of file";
      ::close(fd);
      fail(path, ": cannot read: ", err);
    }
    done += uint64_t(n);
  }
  ::close(fd);
  return file;
}

} // namespace

ArtifactFile ArtifactFile::read(const std::string &path) {
  uint64_t size = 0;
  AlignedBytes file = readWholeFile(path, size);
  ArtifactFile f;
  f.contents_ = parseArtifact(file.get(), size, path);
  f.bytes_ = std::unique_ptr<uint8_t, void (*)(void *)>(file.release(), std::free);
  return f;
}

Model Model::load(const std::string &path) {
  auto impl = std::make_unique<Impl>();
  impl->what = path;
  impl->file = readWholeFile(path, impl->fileSize);
  impl->init();
  return Model(std::move(impl));
}

Model Model::loadFromMemory(const void *data, size_t size, std::string_view name) {
  auto impl = std::make_unique<Impl>();
  impl->what = std::string(name);
  TESSEL_CHECK(data != nullptr || size == 0, impl->what, ": null data");
  impl->fileSize = size;
  impl->file = allocAligned(size, impl->what);
  if (size)
    std::memcpy(impl->file.get(), data, size);
  impl->init();
  return Model(std::move(impl));
}

const std::vector<TensorDesc> &Model::inputs() const { return impl_->contents.metadata.inputs; }
const std::vector<TensorDesc> &Model::outputs() const {
  return impl_->contents.metadata.outputs;
}
const Metadata &Model::metadata() const { return impl_->contents.metadata; }
const ArtifactContents &Model::contents() const { return impl_->contents; }

const std::vector<double> &Model::kernelFlops() const { return impl_->kernelFlops; }

const std::vector<DynamicOutput> &Model::dynamicOutputs() const {
  return impl_->contents.dynamicOutputs;
}

const std::string *Model::info(std::string_view key) const {
  auto it = impl_->info.find(key);
  return it == impl_->info.end() ? nullptr : &it->second;
}

namespace {

/// Matches `given` to `expected` by name; returns, per expected tensor, its argument.
std::vector<const TensorArg *> bind(const std::vector<TensorDesc> &expected,
                                    const TensorArg *given, size_t numGiven, const char *role,
                                    const std::string &what) {
  TESSEL_CHECK(given != nullptr || numGiven == 0, what, ": ", role, "s: null array");
  std::vector<const TensorArg *> bound(expected.size(), nullptr);
  for (size_t g = 0; g < numGiven; ++g) {
    const TensorArg &a = given[g];
    auto it = std::find_if(expected.begin(), expected.end(),
                           [&](const TensorDesc &d) { return d.name == a.name; });
    if (it == expected.end()) {
      std::string names;
      for (const TensorDesc &d : expected)
        names += (names.empty() ? "'" : ", '") + d.name + "'";
      fail(what, ": the model has no ", role, " named '", a.name, "' (its ", role, "s: ",
           names.empty() ? "none" : names, ")");
    }
    size_t i = size_t(it - expected.begin());
    TESSEL_CHECK(!bound[i], what, ": ", role, " '", a.name, "' is given twice");
    const TensorDesc &d = *it;
    TensorDesc got{std::string(a.name), a.dtype, {}};
    // The rank first, so that a wrong rank never makes us read past the caller's shape array.
    TESSEL_CHECK(a.rank == d.shape.size(), what, ": ", role, " '", a.name, "' has rank ",
                 a.rank, ", expected ", describe(d));
    TESSEL_CHECK(a.shape != nullptr || a.rank == 0, what, ": ", role, " '", a.name,
                 "': null shape with rank ", a.rank);
    got.shape.assign(a.shape, a.shape + a.rank);
    TESSEL_CHECK(got.dtype == d.dtype && got.shape == d.shape, what, ": ", role, " '", a.name,
                 "' is ", describe(got), ", expected ", describe(d));
    uint64_t bytes = byteSize(d);
    TESSEL_CHECK(a.sizeBytes == bytes, what, ": ", role, " '", a.name, "' buffer has ",
                 a.sizeBytes, " bytes, expected ", bytes, " (", describe(d), ")");
    TESSEL_CHECK(a.data != nullptr || bytes == 0, what, ": ", role, " '", a.name,
                 "' has a null data pointer");
    bound[i] = &a;
  }
  for (size_t i = 0; i < expected.size(); ++i)
    TESSEL_CHECK(bound[i], what, ": ", role, " '", expected[i].name, "' (",
                 describe(expected[i]), ") is not given");
  return bound;
}

/// A tensor's first values as text ("[3, 7, ...]"; a scalar without brackets), for errors.
std::string valueText(const void *data, const TensorDesc &d) {
  const uint64_t n = numElements(d.shape), shown = std::min<uint64_t>(n, 6);
  std::string s = d.shape.empty() ? "" : "[";
  for (uint64_t i = 0; i < shown; ++i) {
    const uint8_t *p = static_cast<const uint8_t *>(data) + i * elemTypeSize(uint32_t(d.dtype));
    auto get = [&](auto v) {
      std::memcpy(&v, p, sizeof v);
      return v;
    };
    std::string t;
    switch (d.dtype) {
    case ElemType::f32: t = concat(get(float())); break;
    case ElemType::f64: t = concat(get(double())); break;
    case ElemType::i8: t = concat(int(get(int8_t()))); break;
    case ElemType::u8: t = concat(unsigned(get(uint8_t()))); break;
    case ElemType::i16: t = concat(get(int16_t())); break;
    case ElemType::u16: t = concat(get(uint16_t())); break;
    case ElemType::i32: t = concat(get(int32_t())); break;
    case ElemType::u32: t = concat(get(uint32_t())); break;
    case ElemType::i64: t = concat(get(int64_t())); break;
    case ElemType::u64: t = concat(get(uint64_t())); break;
    case ElemType::boolean: t = get(uint8_t()) ? "true" : "false"; break;
    default: t = concat("0x", std::hex, get(uint16_t())); break; // f16, bf16: the bits
    }
    s += (i ? ", " : "") + t;
  }
  if (shown < n)
    s += ", ...";
  return s + (d.shape.empty() ? "" : "]");
}

bool overlaps(const TensorArg *a, const TensorArg *b) {
  if (!a->sizeBytes || !b->sizeBytes)
    return false;
  auto pa = reinterpret_cast<uintptr_t>(a->data), pb = reinterpret_cast<uintptr_t>(b->data);
  return pa < pb + b->sizeBytes && pb < pa + a->sizeBytes;
}

} // namespace

void Model::run(const TensorArg *inputs, size_t numInputs, const TensorArg *outputs,
                size_t numOutputs) const {
  run(inputs, numInputs, outputs, numOutputs, nullptr);
}

void Model::run(const TensorArg *inputs, size_t numInputs, const TensorArg *outputs,
                size_t numOutputs, RunProfile *profile) const {
  run(inputs, numInputs, outputs, numOutputs, profile, nullptr);
}

void Model::run(const TensorArg *inputs, size_t numInputs, const TensorArg *outputs,
                size_t numOutputs, RunProfile *profile,
                std::vector<std::vector<int64_t>> *outputShapes) const {
  using ProfileClock = std::chrono::steady_clock;
  const Impl &m = *impl_;
  const Metadata &meta = m.contents.metadata;
  if (!outputShapes && !m.contents.dynamicOutputs.empty()) {
    const DynamicOutput &d = m.contents.dynamicOutputs.front();
    fail(m.what, ": output '", meta.outputs[d.output].name, "' has a shape that depends on the "
         "data (dim ", d.axis, " of at most ", describe(meta.outputs[d.output]), "); run the "
         "model through the overload that reports output shapes (C: tessel_run_dynamic)");
  }
  std::vector<const TensorArg *> in = bind(meta.inputs, inputs, numInputs, "input", m.what);
  std::vector<const TensorArg *> out = bind(meta.outputs, outputs, numOutputs, "output", m.what);
  for (size_t i = 0; i < out.size(); ++i) {
    for (size_t j = i + 1; j < out.size(); ++j)
      TESSEL_CHECK(!overlaps(out[i], out[j]), m.what, ": output buffers '", out[i]->name,
                   "' and '", out[j]->name, "' overlap");
    for (const TensorArg *x : in)
      TESSEL_CHECK(!overlaps(out[i], x), m.what, ": output buffer '", out[i]->name,
                   "' overlaps input '", x->name, "'");
  }

  // Inputs the model was compiled for one value of must have that value.
  for (const InputValue &v : m.contents.inputValues) {
    const WeightDesc &w = m.contents.weights[v.weight];
    const uint8_t *want = m.contents.weightData + w.offset;
    if (w.size && std::memcmp(in[v.input]->data, want, w.size) != 0)
      fail(m.what, ": input '", meta.inputs[v.input].name, "' is ",
           valueText(in[v.input]->data, w.desc), ", but the model was compiled for ",
           valueText(want, w.desc), " only (tessel compile --input-value: its shapes or loop "
           "trip counts follow from it); recompile for this value");
  }

  // The pointers the kernels see; misaligned caller buffers go through aligned copies.
  std::vector<void *> inPtr(in.size()), outPtr(out.size());
  std::vector<AlignedBytes> staging;
  auto misaligned = [&](const void *p) {
    return reinterpret_cast<uintptr_t>(p) % meta.bufferAlignment != 0;
  };
  for (size_t i = 0; i < in.size(); ++i) {
    inPtr[i] = in[i]->data;
    if (in[i]->sizeBytes && misaligned(in[i]->data)) {
      staging.push_back(allocAligned(in[i]->sizeBytes, m.what));
      std::memcpy(staging.back().get(), in[i]->data, in[i]->sizeBytes);
      inPtr[i] = staging.back().get();
    }
  }
  std::vector<std::pair<size_t, uint8_t *>> copyBack;
  for (size_t i = 0; i < out.size(); ++i) {
    outPtr[i] = out[i]->data;
    if (out[i]->sizeBytes && misaligned(out[i]->data)) {
      staging.push_back(allocAligned(out[i]->sizeBytes, m.what));
      outPtr[i] = staging.back().get();
      copyBack.emplace_back(i, staging.back().get());
    }
  }

  if (profile)
    profile->stepNanoseconds.assign(m.contents.steps.size(), 0);
  AlignedBytes arena = m.takeArena();
  std::vector<void *> args(std::max<size_t>(m.totalArgs, 1));
  size_t next = 0;
  for (size_t s = 0; s < m.contents.steps.size(); ++s) {
    const Step &step = m.contents.steps[s];
    void **stepArgs = args.data() + next;
    for (const StepArg &a : step.args) {
      void *p = nullptr;
      switch (a.kind) {
      case ArgKind::Input: p = inPtr[size_t(a.value)]; break;
      case ArgKind::Output: p = outPtr[size_t(a.value)]; break;
      case ArgKind::Weight:
        p = const_cast<uint8_t *>(m.contents.weightData) +
            m.contents.weights[size_t(a.value)].offset;
        break;
      case ArgKind::Arena:
        p = arena.get() + m.contents.memoryPlan.slices[size_t(a.value)].offset;
        break;
      case ArgKind::Scalar: p = const_cast<int64_t *>(&a.value); break;
      }
      args[next++] = p;
    }
    if (!profile) {
      m.callStep(s, stepArgs);
      continue;
    }
    ProfileClock::time_point t0 = ProfileClock::now();
    m.callStep(s, stepArgs);
    profile->stepNanoseconds[s] = uint64_t(
        std::chrono::duration_cast<std::chrono::nanoseconds>(ProfileClock::now() - t0).count());
  }
  // The actual shapes, checked against the bounds before the arena goes back to the pool.
  std::vector<std::vector<int64_t>> shapes;
  std::string badExtent;
  if (outputShapes) {
    for (const TensorDesc &d : meta.outputs)
      shapes.push_back(d.shape);
    for (const DynamicOutput &d : m.contents.dynamicOutputs) {
      int64_t extent = 0;
      std::memcpy(&extent, arena.get() + m.contents.memoryPlan.slices[d.slice].offset,
                  sizeof extent);
      int64_t bound = shapes[d.output][d.axis];
      if (extent < 0 || extent > bound) {
        badExtent = concat(m.what, ": the kernel reported ", extent, " for dim ", d.axis,
                           " of output '", meta.outputs[d.output].name, "', outside its bound ",
                           describe(meta.outputs[d.output]));
        break;
      }
      shapes[d.output][d.axis] = extent;
      // The kernels keep the value in the bound's layout: move its rows together.
      uint8_t *base = static_cast<uint8_t *>(outPtr[d.output]);
      const std::vector<int64_t> &bs = meta.outputs[d.output].shape;
      uint64_t outer = 1, inner = elemTypeSize(uint32_t(meta.outputs[d.output].dtype));
      for (size_t k = 0; k < bs.size(); ++k)
        (k < d.axis ? outer : inner) *= k == d.axis ? 1 : uint64_t(bs[k]);
      const uint64_t row = uint64_t(extent) * inner, boundRow = uint64_t(bound) * inner;
      for (uint64_t r = 1; r < outer && row; ++r)
        std::memmove(base + r * row, base + r * boundRow, row);
    }
  }
  m.giveArena(std::move(arena));
  TESSEL_CHECK(badExtent.empty(), badExtent);
  for (const auto &[i, p] : copyBack)
    std::memcpy(out[i]->data, p, out[i]->sizeBytes);
  if (outputShapes) {
    // In the caller's order: given[g] is bound to model output `out` index i where out[i] == &given[g].
    outputShapes->assign(numOutputs, {});
    for (size_t i = 0; i < out.size(); ++i)
      (*outputShapes)[size_t(out[i] - outputs)] = std::move(shapes[i]);
  }
}

std::vector<HostTensor> Model::run(const std::vector<HostTensor> &inputs) const {
  return run(inputs, nullptr);
}

std::vector<HostTensor> Model::run(const std::vector<HostTensor> &inputs,
                                   RunProfile *profile) const {
  std::vector<TensorArg> in;
  for (const HostTensor &t : inputs)
    in.push_back({t.desc.name, t.desc.dtype, t.desc.shape.data(), t.desc.shape.size(),
                  const_cast<uint8_t *>(t.bytes.data()), t.bytes.size()});
  std::vector<HostTensor> results;
  for (const TensorDesc &d : outputs())
    results.emplace_back(d);
  std::vector<TensorArg> out;
  for (HostTensor &t : results)
    out.push_back({t.desc.name, t.desc.dtype, t.desc.shape.data(), t.desc.shape.size(),
                   t.bytes.data(), t.bytes.size()});
  std::vector<std::vector<int64_t>> shapes;
  run(in.data(), in.size(), out.data(), out.size(), profile, &shapes);
  for (size_t i = 0; i < results.size(); ++i)
    if (shapes[i] != results[i].desc.shape) {
      results[i].desc.shape = shapes[i];
      results[i].bytes.resize(byteSize(results[i].desc));
    }
  return results;
}

} // namespace tessel::runtime
