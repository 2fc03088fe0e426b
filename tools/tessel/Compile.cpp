//===- Compile.cpp - `tessel compile` and running compiled models ---------===//
//
// `tessel compile MODEL.onnx -O3 -o OUT.tsl` (compileModel, docs/compile.md) and the compiled
// paths of `tessel run`: a .tsl artifact loaded by the runtime, or `MODEL.onnx --jit`, which
// compiles in memory and loads the artifact's bytes the same way (Model::loadFromMemory), so the
// JIT path runs exactly the code an artifact would.
//
//===----------------------------------------------------------------------===//
#include "CliUtil.h"
#include "Commands.h"

#include "tessel/Artifact/Writer.h"
#include "tessel/Compiler/Compile.h"
#include "tessel/Compiler/InterpreterFallback.h"
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
  for (const std::string &spec : o.inputValues) {
    size_t eq = spec.find('=');
    TESSEL_CHECK(eq != std::string::npos && eq > 0 && eq + 1 < spec.size(), "--input-value '",
                 spec, "': expected NAME=FILE.npy");
    std::string name = spec.substr(0, eq);
    TESSEL_CHECK(!c.inputValues.count(name), "--input-value '", spec, "': input '", name,
                 "' is given twice");
    c.inputValues[name] = readNpy(spec.substr(eq + 1));
  }
  c.sourceHash = artifact::hashFile(model);
  c.verbose = o.verbose;
  c.parallel = !o.noParallel;
  c.vectorize = !o.noVectorize;
  c.allowInterpreterFallback = o.allowInterpreterFallback;
  return c;
}

CompiledModel compileFile(const CompileCommandOptions &o, const std::string &model) {
  CompileOptions c = makeOptions(o, model);
  Model m = loadOnnx(model);
  return compileModel(*m.graph, c);
}

/// The file name for output `name`: characters that are not safe in a file name become '_'
/// ('[' and ']' stay: a sequence output's elements are the outputs `y[0]`, `y[1]`, ...).
std::string fileName(const std::string &name) {
  std::string s = name;
  for (char &c : s)
    if (!(std::isalnum(uint8_t(c)) || c == '_' || c == '-' || c == '.' || c == '[' || c == ']'))
      c = '_';
  if (s.empty() || s == "." || s == "..")
    s = "_" + s;
  return s;
}

int runLoaded(const runtime::Model &model, const std::vector<std::string> &inputSpecs,
              const std::string &outDir, unsigned seed, const std::string &how) {
  std::vector<runtime::HostTensor> inputs = compiledInputs(model, inputSpecs, seed);
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
  if (!cm.fallbackNodes.empty()) {
    std::cout << "interpreter fallback: " << cm.fallbackNodes.size() << " node"
              << (cm.fallbackNodes.size() == 1 ? "" : "s") << ":";
    for (size_t i = 0; i < cm.fallbackNodes.size(); ++i)
      std::cout << (i ? ", " : " ") << cm.fallbackNodes[i];
    std::cout << "\n";
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
  // Artifacts compiled with --allow-interpreter-fallback run their fallback nodes here.
  registerInterpreterFallback();
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
