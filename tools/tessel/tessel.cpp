//===- tessel.cpp - the tessel command line -------------------------------===//
#include "CliUtil.h"
#include "Commands.h"

#include "tessel/Frontend/ONNX.h"
#include "tessel/Graph/Transforms.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/Support/Npy.h"

#include <CLI/CLI.hpp>

#include <chrono>
#include <cstring>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <random>

using namespace tessel;
namespace fs = std::filesystem;

namespace {

Tensor randomTensor(const Value &v, std::mt19937 &rng) {
  const Type &t = v.type;
  TESSEL_CHECK(t.isTensor() && t.dtype != DType::undefined, "input '", v.name(),
               "' has type ", t.str(), "; give it with --input ", v.name(), "=FILE.npy");
  TESSEL_CHECK(t.shape.rankKnown, "input '", v.name(),
               "' has unknown rank; give it with --input ", v.name(), "=FILE.npy");
  std::vector<int64_t> shape;
  for (auto &d : t.shape.dims)
    shape.push_back(d.isStatic() ? d.value : 1);
  return cli::randomTensor(t.dtype, shape, rng);
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

void printSummary(const std::string &name, const Object &o) {
  if (!o.isTensor()) {
    std::cout << "output " << name << ": "
              << (o.isSequence() ? "sequence of " + std::to_string(o.sequence.size()) + " tensors"
                                 : std::string("empty optional"))
              << "\n";
    return;
  }
  const Tensor &t = o.tensor;
  std::cout << "output " << name << ": " << t.typeString();
  if (t.dtype() != DType::string && t.numel() > 0) {
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
}

int cmdRun(const std::string &modelPath, const std::vector<std::string> &inputSpecs,
           const std::string &outDir, unsigned seed, int optLevel) {
  Model m = loadOnnx(modelPath);
  if (optLevel > 0)
    optimizeGraph(*m.graph, optLevel);
  const Graph &g = *m.graph;
  std::map<std::string, Object> inputs;
  for (auto &spec : inputSpecs) {
    size_t eq = spec.find('=');
    TESSEL_CHECK(eq != std::string::npos && eq > 0, "--input '", spec,
                 "': expected NAME=FILE.npy (or NAME=FILE.pb)");
    std::string name = spec.substr(0, eq), file = spec.substr(eq + 1);
    const Value *target = nullptr;
    for (Value *v : g.inputs)
      if (v->name() == name)
        target = v;
    if (!target) {
      std::string names;
      for (const Value *v : requiredInputs(g))
        names += (names.empty() ? "" : ", ") + v->name();
      fail("--input '", spec, "': the model has no input '", name, "'; its inputs are: ", names);
    }
    if (file.size() > 3 && file.substr(file.size() - 3) == ".pb")
      inputs[name] = readOnnxValueFile(file, &target->type);
    else
      inputs[name] = Object(readNpy(file));
  }
  std::mt19937 rng(seed);
  for (const Value *v : requiredInputs(g))
    if (!inputs.count(v->name())) {
      inputs[v->name()] = Object(randomTensor(*v, rng));
      std::cout << "input " << v->name() << ": random " << inputs[v->name()].tensor.typeString()
                << "\n";
    }
  Interpreter interp(g);
  auto t0 = std::chrono::steady_clock::now();
  auto outs = interp.run(inputs);
  auto t1 = std::chrono::steady_clock::now();
  for (Value *v : g.outputs)
    printSummary(v->name(), outs[v->name()]);
  std::cout << "time: " << std::chrono::duration<double, std::milli>(t1 - t0).count()
            << " ms (reference interpreter)\n";
  if (!outDir.empty()) {
    fs::create_directories(outDir);
    for (Value *v : g.outputs) {
      const Object &o = outs[v->name()];
      TESSEL_CHECK(o.isTensor(), "output '", v->name(), "' is not a tensor; cannot write .npy");
      std::string path = (fs::path(outDir) / (fileName(v->name()) + ".npy")).string();
      Tensor t = o.tensor;
      if (t.dtype() == DType::bf16)
        t = t.cast(DType::f32);
      writeNpy(path, t);
    }
  }
  return 0;
}

/// Loads, optimizes at `optLevel` and writes the model as ONNX.
int cmdOptimize(const std::string &modelPath, const std::string &outPath, int optLevel,
                const PassOptions &popts) {
  Model m = loadOnnx(modelPath);
  Graph &g = *m.graph;
  size_t before = g.nodes().size();
  optimizeGraph(g, optLevel, popts);
  saveOnnx(g, outPath);
  std::cout << "optimized at -O" << optLevel << ": " << before << " -> " << g.nodes().size()
            << " nodes; wrote " << outPath << "\n";
  return 0;
}

int cmdOps(bool markdown) {
  const auto &ops = OpRegistry::get().all();
  if (!markdown) {
    for (auto &o : ops)
      std::cout << (o.domain.empty() ? "" : o.domain + ".") << o.name << " " << o.sinceVersion
                << ".." << o.untilVersion << "\n";
    return 0;
  }
  std::cout << "# Supported ops\n\nGenerated from the op registry by `tessel ops --markdown` "
               "(`make docs`). "
            << ops.size()
            << " ops. Each has shape inference and a reference kernel (the interpreter).\n\n"
               "| op | domain | opsets | dtypes | notes |\n|---|---|---|---|---|\n";
  for (auto &o : ops)
    std::cout << "| " << o.name << " | " << (o.domain.empty() ? "ai.onnx" : o.domain) << " | "
              << o.sinceVersion << "-" << o.untilVersion << " | " << o.dtypes << " | " << o.notes
              << " |\n";
  return 0;
}

/// Largest absolute and relative difference of two tensors; fails if outside rtol/atol.
int cmdCompare(const std::string &gotPath, const std::string &wantPath, double rtol, double atol) {
  Tensor got = readNpy(gotPath), want = readNpy(wantPath);
  TESSEL_CHECK(got.shape() == want.shape(), gotPath, ": shape ", got.shapeString(), " but ",
               wantPath, " has ", want.shapeString());
  double maxAbs = 0;
  int64_t bad = 0, worst = -1;
  for (int64_t i = 0; i < got.numel(); ++i) {
    double g = got.getDouble(i), w = want.getDouble(i);
    double err = std::fabs(g - w);
    if (std::isnan(g) != std::isnan(w) || !(std::isnan(g) || err <= atol + rtol * std::fabs(w))) {
      ++bad;
      if (worst < 0)
        worst = i;
    }
    if (!std::isnan(err))
      maxAbs = std::max(maxAbs, err);
  }
  std::cout << "compare: " << got.numel() << " elements, max abs diff " << maxAbs << ", "
            << bad << " outside rtol " << rtol << " atol " << atol << "\n";
  if (bad)
    std::cout << "first mismatch at " << worst << ": " << got.getDouble(worst) << " vs "
              << want.getDouble(worst) << "\n";
  return bad ? 1 : 0;
}

/// Runs a one-image classifier over a batch of images (axis 0) and reports accuracy.
int cmdAccuracy(const std::string &modelPath, const std::string &imagesPath,
                const std::string &labelsPath, bool printPredictions, double minAccuracy) {
  Model m = loadOnnx(modelPath);
  const Graph &g = *m.graph;
  auto req = requiredInputs(g);
  TESSEL_CHECK(req.size() == 1 && g.outputs.size() == 1, modelPath,
               ": accuracy needs a model with one input and one output");
  Tensor images = readNpy(imagesPath), labels = readNpy(labelsPath);
  TESSEL_CHECK(images.rank() >= 1 && labels.rank() == 1 && labels.dim(0) == images.dim(0),
               imagesPath, " ", images.shapeString(), " and ", labelsPath, " ",
               labels.shapeString(), ": expected N images and N labels");
  const Type &in = req[0]->type;
  TESSEL_CHECK(in.isTensor() && in.shape.isStatic() && in.dtype == images.dtype(), modelPath,
               ": input '", req[0]->name(), "' is ", in.str(), "; images are ", images.typeString());
  std::vector<int64_t> shape = in.shape.staticDims();
  int64_t n = images.dim(0), per = images.numel() / std::max<int64_t>(n, 1);
  TESSEL_CHECK(checkedNumel(shape, 1, "input") == per, "one image has ", per,
               " elements but the model input ", in.str(), " needs ", checkedNumel(shape, 1, "input"));
  Interpreter interp(g);
  cli::AccuracyTally tally;
  tally.printPredictions = printPredictions;
  for (int64_t i = 0; i < n; ++i) {
    Tensor x(images.dtype(), shape);
    std::memcpy(x.raw(), static_cast<const char *>(images.raw()) + i * per * dtypeSize(images.dtype()),
                x.nbytes());
    auto t0 = std::chrono::steady_clock::now();
    auto out = interp.run({{req[0]->name(), Object(x)}});
    double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    tally.add(out[g.outputs[0]->name()].tensor, labels.getInt64(i), ms);
  }
  return tally.report("reference interpreter", minAccuracy);
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"tessel: an ahead-of-time and JIT compiler for ONNX models"};
  app.require_subcommand(1);

  auto *run = app.add_subcommand(
      "run", "Run a model: .onnx in the reference interpreter, .tsl (or --jit) compiled");
  std::string model, outDir;
  std::vector<std::string> inputs;
  unsigned seed = 0;
  run->add_option("model", model, "Model file (.onnx, or a .tsl artifact)")->required();
  run->add_option("--input,-i", inputs, "NAME=FILE.npy (or .pb); random data for inputs not given");
  run->add_option("--output-dir,-o", outDir, "Write each output as DIR/<output name>.npy");
  run->add_option("--seed", seed, "Seed for random inputs");
  int runOpt = 0;
  run->add_option("--opt-level", runOpt, "Optimize the graph at this level (0-3) before running")
      ->check(CLI::Range(0, 3));
  bool runJit = false;
  run->add_flag("--jit", runJit, "Compile the model in memory (as tessel compile -O3) and run that");
  cli::CompileCommandOptions runCompOpts;
  run->add_flag("--allow-interpreter-fallback", runCompOpts.allowInterpreterFallback,
                "With --jit: run nodes whose op has no lowering in the reference interpreter");
  run->add_option("--input-shape", runCompOpts.inputShapes,
                  "With --jit: as tessel compile --input-shape (repeatable)");

  auto *comp = app.add_subcommand("compile", "Compile a model into one .tsl artifact (docs/compile.md)");
  std::string compOut;
  cli::CompileCommandOptions compOpts;
  comp->add_option("model", model, "Model file (.onnx)")->required();
  comp->add_option("-o,--output", compOut, "Output artifact (.tsl)")->required();
  comp->add_option("-O,--opt-level", compOpts.optLevel, "Graph optimization level 0-3 (default 3)")
      ->check(CLI::Range(0, 3));
  comp->add_option("--input-shape", compOpts.inputShapes,
                   "NAME=D0xD1x... (NAME=scalar for rank 0): fix an input's symbolic dims; "
                   "NAME=seq(D0xD1,...), NAME=none, NAME=opt(...): fix a sequence or optional "
                   "input's structure (docs/compile.md; repeatable)");
  comp->add_option("--input-value", compOpts.inputValues,
                   "NAME=FILE.npy: compile for this value of an input (shapes and trip counts "
                   "computed from it become static; runs must give it; repeatable)");
  comp->add_flag("-v,--verbose", compOpts.verbose, "One line per kernel: nodes and schedule");
  comp->add_flag("--no-parallel", compOpts.noParallel, "Generate no parallel loops");
  comp->add_flag("--no-vectorize", compOpts.noVectorize, "Generate no vector loops");
  comp->add_flag("--allow-interpreter-fallback", compOpts.allowInterpreterFallback,
                 "Run nodes whose op has no lowering in the reference interpreter (listed in the artifact)");

  auto *conf = app.add_subcommand("conformance", "Run ONNX backend test folders");
  cli::ConformanceOptions copts;
  conf->add_option("dirs", copts.dirs, "Directories holding test folders")->required();
  conf->add_option("--filter", copts.filter, "Only tests whose folder name matches this regex");
  conf->add_flag("-v,--verbose", copts.verbose, "One line per test");
  conf->add_option("--report", copts.report, "Write a markdown report (test, status, reason)");
  conf->add_option("--expected-failures", copts.expectedFailures,
                   "Fail when a test not on this list fails, or a test on it passes");
  conf->add_option("-j,--jobs", copts.jobs, "Tests run at once");
  conf->add_option("--timeout", copts.timeoutSeconds, "Seconds per test");
  auto *confOpt = conf->add_option("--opt-level", copts.optLevel,
                   "Optimize each model at this level (0-3) before interpreting it (compiled mode: default 3)")
      ->check(CLI::Range(0, 3));
  conf->add_option("--mode", copts.mode, "interp (reference interpreter) or compiled (tessel compile + runtime)")
      ->check(CLI::IsMember({"interp", "compiled"}));
  conf->add_flag("--allow-interpreter-fallback", copts.allowInterpreterFallback,
                 "Compiled mode: run nodes whose op has no lowering in the reference interpreter");
  conf->add_option("--codegen-opt-level", copts.codegenOptLevel, "Compiled mode: LLVM level 0-3 (default 2, as tessel compile)")
      ->check(CLI::Range(0, 3));

  auto *opt = app.add_subcommand("optimize", "Optimize a model's graph and write it as ONNX");
  std::string optOut;
  int optLevel = 3;
  PassOptions popts;
  std::vector<std::string> printAfter;
  opt->add_option("model", model, "Model file (.onnx)")->required();
  opt->add_option("-o,--output", optOut, "Output model file (.onnx)")->required();
  opt->add_option("-O,--opt-level", optLevel, "Optimization level 0-3 (default 3)")
      ->check(CLI::Range(0, 3));
  opt->add_flag("--print-after-all", popts.printAfterAll, "Print the graph after every pass");
  opt->add_option("--print-after", printAfter, "Print the graph after this pass (repeatable; a,b)")
      ->allow_extra_args(false)
      ->multi_option_policy(CLI::MultiOptionPolicy::TakeAll)
      ->delimiter(',');
  opt->add_flag("--pass-timing", popts.timing, "Time each pass");
  opt->add_flag("--stats", popts.stats, "Per-pass statistics");

  auto *insp = app.add_subcommand(
      "inspect", "Op histogram, node count, parameters, FLOPs/MACs before and after optimization");
  int inspLevel = 3;
  insp->add_option("model", model, "Model file (.onnx), or a compiled artifact (.tsl)")->required();
  insp->add_option("-O,--opt-level", inspLevel, "Optimization level 0-3 (default 3)")
      ->check(CLI::Range(0, 3));
  bool inspFusion = false;
  std::string inspDot;
  insp->add_flag("--fusion", inspFusion, "Print the fusion groups of the optimized graph");
  insp->add_option("--dot-prefix", inspDot,
                   "Write PATH.before.dot / PATH.after.dot (+ .svg with Graphviz) of the fusion");

  auto *ops = app.add_subcommand("ops", "List the supported ops");
  bool markdown = false;
  ops->add_flag("--markdown", markdown, "As the markdown table of docs/ops.md");

  auto *cmp = app.add_subcommand("compare", "Compare two .npy files within tolerances");
  std::string gotPath, wantPath;
  double rtol = 1e-3, atol = 1e-4;
  cmp->add_option("got", gotPath)->required();
  cmp->add_option("want", wantPath)->required();
  cmp->add_option("--rtol", rtol);
  cmp->add_option("--atol", atol);

  auto *acc = app.add_subcommand("accuracy", "Classify a batch of images one by one; print accuracy");
  std::string images, labels;
  bool printPredictions = false;
  double minAccuracy = 0;
  acc->add_option("model", model, "Model file (.onnx)")->required();
  acc->add_option("--images", images, "N images (.npy), axis 0 = image")->required();
  acc->add_option("--labels", labels, "N integer labels (.npy)")->required();
  acc->add_flag("--print-predictions", printPredictions);
  acc->add_option("--min-accuracy", minAccuracy, "Exit 1 below this accuracy (0..1)");
  bool accJit = false;
  acc->add_flag("--jit", accJit, "Compile the .onnx in memory and classify through the runtime");

  auto *bench = app.add_subcommand("bench", "Latency statistics of a model (docs/compile.md)");
  cli::BenchOptions bopts;
  bench->add_option("model", bopts.model, ".tsl artifact, or .onnx (compiled in memory)")->required();
  bench->add_option("--threads", bopts.threads, "Runtime threads (default: TESSEL_NUM_THREADS or all cores)");
  bench->add_option("--runs", bopts.runs, "Timed runs (default 0: about 2 s worth, 10..10000)");
  bench->add_option("--warmup", bopts.warmup, "Untimed runs first (default 3)");
  bench->add_option("--input,-i", bopts.inputs, "NAME=FILE.npy; seeded random values for the others");
  bench->add_option("--seed", bopts.seed, "Seed for random inputs");
  bench->add_option("--input-shape", bopts.inputShapes,
                    "NAME=D0xD1x...: fix an .onnx input's symbolic dims (seq(...), none, opt(...): "
                    "a sequence or optional input's structure, as tessel compile)");
  bench->add_flag("--interp", bopts.interp, "Benchmark the reference interpreter on the .onnx");
  bench->add_flag("--profile", bopts.profile, "Time per kernel, share of total, GFLOP/s");

  auto *version = app.add_subcommand("version", "Print tessel's and LLVM's versions and the host CPU");

  CLI11_PARSE(app, argc, argv);
  try {
    if (run->parsed() && (runJit || cli::isArtifactPath(model)))
      return cli::runCompiled(model, inputs, outDir, seed, runJit, runCompOpts);
    if (run->parsed())
      return cmdRun(model, inputs, outDir, seed, runOpt);
    if (comp->parsed())
      return cli::runCompile(model, compOut, compOpts);
    if (version->parsed())
      return cli::printVersion();
    if (conf->parsed()) {
      if (copts.mode == "compiled" && confOpt->count() == 0)
        copts.optLevel = 3;
      return cli::runConformance(copts);
    }
    if (opt->parsed()) {
      for (auto &p : printAfter)
        if (!findGraphPass(p)) {
          std::string known;
          for (auto &q : allGraphPasses())
            known += (known.empty() ? "" : ", ") + std::string(q.name);
          fail("--print-after=", p, ": no such pass; known passes: ", known);
        }
      popts.printAfter.insert(printAfter.begin(), printAfter.end());
      return cmdOptimize(model, optOut, optLevel, popts);
    }
    if (insp->parsed())
      return cli::runInspect(model, inspLevel, inspFusion, inspDot);
    if (ops->parsed())
      return cmdOps(markdown);
    if (cmp->parsed())
      return cmdCompare(gotPath, wantPath, rtol, atol);
    if (bench->parsed())
      return cli::runBench(bopts);
    if (acc->parsed() && (accJit || cli::isArtifactPath(model)))
      return cli::runCompiledAccuracy(model, images, labels, printPredictions, minAccuracy);
    if (acc->parsed())
      return cmdAccuracy(model, images, labels, printPredictions, minAccuracy);
  } catch (const std::exception &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
