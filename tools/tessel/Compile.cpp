//===- Compile.cpp - `tessel compile` and running compiled models ---------===//
//
// `tessel compile MODEL.onnx -O3 -o OUT.tsl` (compileModel, docs/compile.md) and the compiled
// paths of `tessel run`: a .tsl artifact loaded by the runtime, or `MODEL.onnx --jit`, which
// compiles in memory and loads the artifact's bytes the same way (Model::loadFromMemory), so the
// JIT path runs exactly the code an artifact would.
//
//===----------------------------------------------------------------------===//
#include "Commands.h"

#include "tessel/Artifact/Writer.h"
#include "tessel/Compiler/Compile.h"
#include "tessel/Frontend/ONNX.h"
#include "tessel/Support/Error.h"
#include "tessel/Support/Npy.h"
#include "tessel/runtime/Model.h"

#include <chrono>
#include <cmath>
#include <cstring>
#include <filesystem>
#include <iomanip>
#include <iostream>
#include <map>
#include <random>

namespace fs = std::filesystem;

namespace tessel::cli {

namespace {

using Clock = std::chrono::steady_clock;

CompileOptions makeOptions(const CompileCommandOptions &o, const std::string &model) {
  CompileOptions c;
  c.optLevel = o.optLevel;
  for (auto &spec : o.inputShapes)
    parseInputShapeSpec(spec, c);
  c.sourceHash = artifact::hashFile(model);
  c.verbose = o.verbose;
  c.parallel = !o.noParallel;
  c.vectorize = !o.noVectorize;
  return c;
}

CompiledModel compileFile(const CompileCommandOptions &o, const std::string &model) {
  CompileOptions c = makeOptions(o, model);
  Model m = loadOnnx(model);
  return compileModel(*m.graph, c);
}

DType dtypeOf(runtime::ElemType e) {
  for (DType d : {DType::f32, DType::f64, DType::f16, DType::bf16, DType::i8, DType::i16,
                  DType::i32, DType::i64, DType::u8, DType::u16, DType::u32, DType::u64,
                  DType::boolean}) {
    try {
      if (artifact::toElemType(d) == e)
        return d;
    } catch (const Error &) {
    }
  }
  fail("element type ", runtime::elemTypeName(uint32_t(e)), " has no tessel dtype");
}

std::string shapeStr(const std::vector<int64_t> &s) {
  std::string r = "[";
  for (size_t i = 0; i < s.size(); ++i)
    r += (i ? "," : "") + std::to_string(s[i]);
  return r + "]";
}

std::string fileName(const std::string &name) {
  std::string s = name;
  for (char &c : s)
    if (!(std::isalnum(uint8_t(c)) || c == '_' || c == '-' || c == '.'))
      c = '_';
  if (s.empty() || s == "." || s == "..")
    s = "_" + s;
  return s;
}

Tensor randomTensor(DType dt, const std::vector<int64_t> &shape, std::mt19937 &rng) {
  Tensor r(dt, shape);
  std::uniform_real_distribution<float> uf(-1.f, 1.f);
  std::uniform_int_distribution<int> ui(0, 9);
  dispatchNumeric(dt, [&](auto z) {
    using T = decltype(z);
    T *p = r.data<T>();
    for (int64_t i = 0; i < r.numel(); ++i) {
      if constexpr (std::is_same_v<T, bool>)
        p[i] = ui(rng) & 1;
      else if constexpr (std::is_integral_v<T>)
        p[i] = T(ui(rng));
      else
        p[i] = T(uf(rng));
    }
  });
  return r;
}

int runLoaded(const runtime::Model &model, const std::vector<std::string> &inputSpecs,
              const std::string &outDir, unsigned seed, const std::string &how) {
  std::map<std::string, Tensor> given;
  for (auto &spec : inputSpecs) {
    size_t eq = spec.find('=');
    TESSEL_CHECK(eq != std::string::npos && eq > 0, "--input '", spec, "': expected NAME=FILE.npy");
    std::string name = spec.substr(0, eq), file = spec.substr(eq + 1);
    bool known = false;
    std::string names;
    for (auto &d : model.inputs()) {
      known |= d.name == name;
      names += (names.empty() ? "" : ", ") + d.name;
    }
    TESSEL_CHECK(known, "--input '", spec, "': the model has no input '", name,
                 "'; its inputs are: ", names);
    TESSEL_CHECK(!(file.size() > 3 && file.substr(file.size() - 3) == ".pb"), "--input '", spec,
                 "': a compiled model takes .npy inputs");
    given[name] = readNpy(file);
  }
  std::mt19937 rng(seed);
  std::vector<runtime::HostTensor> inputs;
  for (auto &d : model.inputs()) {
    DType dt = dtypeOf(d.dtype);
    Tensor t;
    if (auto it = given.find(d.name); it != given.end()) {
      t = it->second;
      TESSEL_CHECK(t.shape() == d.shape, "input '", d.name, "': the file has shape ",
                   shapeStr(t.shape()), ", the compiled model expects ", shapeStr(d.shape));
      if (t.dtype() != dt)
        fail("input '", d.name, "': the file holds ", dtypeName(t.dtype()),
             ", the compiled model expects ", dtypeName(dt));
    } else {
      t = randomTensor(dt, d.shape, rng);
      std::cout << "input " << d.name << ": random " << t.typeString() << "\n";
    }
    runtime::HostTensor h(d);
    std::memcpy(h.bytes.data(), t.raw(), h.bytes.size());
    inputs.push_back(std::move(h));
  }
  auto t0 = Clock::now();
  std::vector<runtime::HostTensor> outs = model.run(inputs);
  auto t1 = Clock::now();
  std::vector<Tensor> results;
  for (auto &h : outs) {
    Tensor t(dtypeOf(h.desc.dtype), h.desc.shape);
    std::memcpy(t.raw(), h.bytes.data(), h.bytes.size());
    std::cout << "output " << h.desc.name << ": " << t.typeString();
    if (t.numel() > 0) {
      double mn = INFINITY, mx = -INFINITY, sum = 0;
      for (int64_t i = 0; i < t.numel(); ++i) {
        double v = t.getDouble(i);
        mn = std::min(mn, v);
        mx = std::max(mx, v);
        sum += v;
      }
      std::cout << " min=" << mn << " max=" << mx << " mean=" << sum / double(t.numel());
    }
    std::cout << "\n";
    results.push_back(std::move(t));
  }
  std::cout << "time: " << std::chrono::duration<double, std::milli>(t1 - t0).count() << " ms ("
            << how << ")\n";
  if (!outDir.empty()) {
    fs::create_directories(outDir);
    for (size_t i = 0; i < outs.size(); ++i) {
      Tensor t = results[i];
      if (t.dtype() == DType::bf16 || t.dtype() == DType::f16)
        t = t.cast(DType::f32);
      writeNpy((fs::path(outDir) / (fileName(outs[i].desc.name) + ".npy")).string(), t);
    }
  }
  return 0;
}

} // namespace

int runCompile(const std::string &model, const std::string &output,
               const CompileCommandOptions &o) {
  CompiledModel cm = compileFile(o, model);
  cm.write(output);
  std::cout << "compiled " << model << ": " << cm.numNodes << " nodes -> " << cm.kernels.size()
            << " kernels\n";
  if (o.verbose)
    for (auto &k : cm.kernels) {
      std::cout << "  kernel " << k.symbol << " (";
      for (size_t i = 0; i < k.nodes.size(); ++i)
        std::cout << (i ? ", " : "") << k.nodes[i];
      std::cout << "): " << k.schedule << "\n";
    }
  std::cout << "artifact: " << output << ", " << cm.artifact.size() << " bytes (code "
            << cm.codeBytes << ", weights " << cm.weightBytes << ", arena " << cm.arenaBytes
            << ")\n";
  std::cout << std::fixed << std::setprecision(2) << "compile time: " << cm.secondsTotal
            << " s (graph " << cm.secondsGraph << ", lower " << cm.secondsLower << ", llvm "
            << cm.secondsLLVM << ", link " << cm.secondsLink << ")\n";
  return 0;
}

int runCompiled(const std::string &model, const std::vector<std::string> &inputs,
                const std::string &outDir, unsigned seed, bool jit,
                const CompileCommandOptions &o) {
  if (jit) {
    auto t0 = Clock::now();
    CompiledModel cm = compileFile(o, model);
    double secs = std::chrono::duration<double>(Clock::now() - t0).count();
    std::cout << "compiled " << model << " in memory: " << cm.kernels.size() << " kernels in "
              << secs << " s\n";
    runtime::Model m = runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size(), model);
    return runLoaded(m, inputs, outDir, seed, "compiled, jit");
  }
  runtime::Model m = runtime::Model::load(model);
  return runLoaded(m, inputs, outDir, seed, "compiled");
}

bool isArtifactPath(const std::string &path) {
  return path.size() > 4 && path.substr(path.size() - 4) == ".tsl";
}

} // namespace tessel::cli
