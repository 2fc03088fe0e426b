//===- Bench.cpp - `tessel bench` and `tessel accuracy` on compiled models -===//
//
// `tessel bench MODEL.{tsl,onnx}` measures the latency of one inference (docs/compile.md):
// a .tsl artifact is loaded by the runtime, an .onnx is compiled in memory first (as
// `tessel run --jit` does) and `--interp` measures the reference interpreter instead. Inputs are
// the given .npy files, else seeded random values of the model's input shapes (the same values
// `tessel run --seed N` makes). After `--warmup` runs, every one of `--runs` runs is timed on
// its own (steady_clock around Model::run); the statistics are min, median, p90, p99, max and
// mean in ms (percentiles by the nearest-rank rule on the sorted times; the median of an even
// count is the mean of the middle two). `--runs 0` (the default) picks the count from the
// warmup: enough runs for about two seconds, at least 10 and at most 10000.
//
// The last line is the machine-readable one that bench/ scripts parse, exactly:
//   bench MODEL engine=compiled threads=N runs=R median_ms=X p90_ms=X p99_ms=X max_ms=X min_ms=X mean_ms=X
//
// `--profile` then runs the model `--runs` more times with the runtime's per-step timer on
// (Model::run with a RunProfile; off, and free, in every other run) and prints, per kernel,
// the median time per run, its share of the kernels' total, the FLOPs the compiler recorded for
// it (Model::kernelFlops, metadata "kernel_flops") and the achieved GFLOP/s, sorted by time.
//
// The compiled path of `tessel accuracy` (a .tsl, or an .onnx with --jit) is here too: it
// classifies the images one by one through the runtime and prints the interpreter path's lines.
//
//===----------------------------------------------------------------------===//
#include "CliUtil.h"
#include "Commands.h"

#include "tessel/Artifact/Writer.h"
#include "tessel/Compiler/Compile.h"
#include "tessel/Compiler/InterpreterFallback.h"
#include "tessel/Frontend/ONNX.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/Support/Error.h"
#include "tessel/Support/Npy.h"
#include "tessel/runtime/Model.h"
#include "tessel/runtime/ThreadPool.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <numeric>
#include <optional>
#include <random>
#include <sstream>

namespace tessel::cli {

namespace {

using Clock = std::chrono::steady_clock;

double msSince(Clock::time_point t0) {
  return std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
}

/// Loads (or, for an .onnx, compiles in memory) the model that bench and accuracy run.
runtime::Model loadCompiled(const std::string &path, bool quiet,
                            const std::vector<std::string> &inputShapes = {}) {
  // Artifacts compiled with --allow-interpreter-fallback run their fallback nodes here.
  registerInterpreterFallback();
  if (isArtifactPath(path))
    return runtime::Model::load(path);
  auto t0 = Clock::now();
  CompileOptions c;
  for (const std::string &spec : inputShapes)
    parseInputShapeSpec(spec, c);
  c.sourceHash = artifact::hashFile(path);
  Model m = loadOnnx(path);
  CompiledModel cm = compileModel(*m.graph, c);
  if (!quiet)
    std::cout << "compiled " << path << " in memory: " << cm.kernels.size() << " kernels in "
              << std::fixed << std::setprecision(2) << msSince(t0) / 1000 << " s\n"
              << std::defaultfloat;
  return runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size(), path);
}


struct Stats {
  double min = 0, median = 0, p90 = 0, p99 = 0, max = 0, mean = 0;
};

/// The value below which a fraction q of the sorted samples lie (nearest rank).
double nearestRank(const std::vector<double> &sorted, double q) {
  size_t rank = size_t(std::ceil(q * double(sorted.size())));
  return sorted[std::clamp<size_t>(rank, 1, sorted.size()) - 1];
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

Stats statsOf(std::vector<double> ms) {
  std::sort(ms.begin(), ms.end());
  Stats s;
  s.min = ms.front();
  s.max = ms.back();
  s.median = median(ms);
  s.p90 = nearestRank(ms, 0.90);
  s.p99 = nearestRank(ms, 0.99);
  s.mean = std::accumulate(ms.begin(), ms.end(), 0.0) / double(ms.size());
  return s;
}

std::string fixed(double v, int digits) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.*f", digits, v);
  return buf;
}

/// Warms up, picks the run count when `runs` is 0, and times each run of `once`.
std::vector<double> measure(const std::function<void()> &once, int warmup, int runs) {
  auto t0 = Clock::now();
  for (int i = 0; i < warmup; ++i)
    once();
  if (runs <= 0) {
    // About two seconds of measuring, from the warmup's pace (one more run when there was none).
    double per = warmup > 0 ? msSince(t0) / warmup : 0;
    if (warmup <= 0) {
      auto t1 = Clock::now();
      once();
      per = msSince(t1);
    }
    runs = int(std::clamp(2000.0 / std::max(per, 1e-3), 10.0, 10000.0));
  }
  std::vector<double> ms;
  ms.reserve(size_t(runs));
  for (int i = 0; i < runs; ++i) {
    auto t = Clock::now();
    once();
    ms.push_back(msSince(t));
  }
  return ms;
}

void printProfile(const runtime::Model &model, const std::vector<runtime::HostTensor> &inputs,
                  int runs) {
  const std::vector<runtime::Step> &steps = model.contents().steps;
  const std::vector<double> &flops = model.kernelFlops();
  std::vector<std::vector<double>> perStep(steps.size());
  runtime::RunProfile profile;
  for (int r = 0; r < runs; ++r) {
    model.run(inputs, &profile);
    for (size_t s = 0; s < steps.size(); ++s)
      perStep[s].push_back(double(profile.stepNanoseconds[s]) / 1e6);
  }
  struct Row {
    size_t step;
    double ms, meanMs;
  };
  std::vector<Row> rows;
  double total = 0, totalMean = 0, totalFlops = 0;
  for (size_t s = 0; s < steps.size(); ++s) {
    double mean = std::accumulate(perStep[s].begin(), perStep[s].end(), 0.0) /
                  double(std::max<size_t>(perStep[s].size(), 1));
    rows.push_back({s, median(perStep[s]), mean});
    total += rows.back().ms;
    totalMean += mean;
    totalFlops += flops.empty() ? 0 : flops[s];
  }
  std::stable_sort(rows.begin(), rows.end(), [](const Row &a, const Row &b) { return a.ms > b.ms; });
  std::cout << "profile: " << steps.size() << " kernels, median of " << runs
            << " profiled runs each; kernels total " << fixed(total, 4) << " ms (sum of means "
            << fixed(totalMean, 4) << " ms)";
  if (totalFlops > 0 && total > 0)
    std::cout << ", " << fixed(totalFlops / 1e6, 3) << " MFLOP, "
              << fixed(totalFlops / (total * 1e6), 2) << " GFLOP/s";
  std::cout << "\n";
  std::cout << "  " << std::left << std::setw(5) << "step" << std::right << std::setw(11)
            << "ms" << std::setw(11) << "mean ms" << std::setw(8) << "share" << std::setw(11)
            << "MFLOP" << std::setw(10)
            << "GFLOP/s" << "  kernel\n";
  for (const Row &r : rows) {
    std::cout << "  " << std::left << std::setw(5) << r.step << std::right << std::setw(11)
              << fixed(r.ms, 4) << std::setw(11) << fixed(r.meanMs, 4) << std::setw(7)
              << fixed(total > 0 ? 100 * r.ms / total : 0, 1)
              << "%";
    if (flops.empty())
      std::cout << std::setw(11) << "-" << std::setw(10) << "-";
    else
      std::cout << std::setw(11) << fixed(flops[r.step] / 1e6, 3) << std::setw(10)
                << (flops[r.step] > 0 && r.ms > 0 ? fixed(flops[r.step] / (r.ms * 1e6), 2)
                                                  : std::string("-"));
    std::cout << "  " << steps[r.step].symbol << "\n";
  }
  if (flops.empty())
    std::cout << "  (this artifact records no kernel_flops; recompile it for GFLOP/s)\n";
}

} // namespace

int runBench(const BenchOptions &o) {
  TESSEL_CHECK(o.runs >= 0 && o.warmup >= 0, "--runs and --warmup must be >= 0");
  TESSEL_CHECK(o.threads >= 0 && o.threads <= runtime::ThreadPool::kMaxThreads,
               "--threads ", o.threads, ": expected 1..", runtime::ThreadPool::kMaxThreads,
               " (0: TESSEL_NUM_THREADS or all cores)");
  std::vector<double> ms;
  std::string engine;
  int threads = 1;
  std::optional<runtime::Model> model;
  std::vector<runtime::HostTensor> compiledIn;
  if (o.interp) {
    TESSEL_CHECK(!isArtifactPath(o.model), o.model,
                 ": --interp runs the reference interpreter, which needs the .onnx model");
    TESSEL_CHECK(!o.profile, "--profile times the kernels of a compiled model; drop --interp");
    engine = "interp";
    Model m = loadOnnx(o.model);
    const Graph &g = *m.graph;
    std::vector<std::string> names;
    for (const Value *v : requiredInputs(g))
      names.push_back(v->name());
    std::map<std::string, Tensor> given = readInputSpecs(o.inputs, names);
    std::mt19937 rng(o.seed);
    std::map<std::string, Object> inputs;
    for (const Value *v : requiredInputs(g)) {
      const Type &t = v->type;
      TESSEL_CHECK(t.isTensor() && t.shape.isStatic(), "input '", v->name(), "' has type ",
                   t.str(), "; give it with --input ", v->name(), "=FILE.npy");
      if (auto it = given.find(v->name()); it != given.end()) {
        checkInput(v->name(), it->second, t.dtype, t.shape.staticDims());
        inputs[v->name()] = Object(it->second);
        continue;
      }
      inputs[v->name()] = Object(randomTensor(t.dtype, t.shape.staticDims(), rng));
      std::cout << "input " << v->name() << ": random " << inputs[v->name()].tensor.typeString()
                << "\n";
    }
    Interpreter interp(g);
    ms = measure([&] { interp.run(inputs); }, o.warmup, o.runs);
  } else {
    engine = "compiled";
    TESSEL_CHECK(o.inputShapes.empty() || !isArtifactPath(o.model),
                 "--input-shape applies to an .onnx compiled in memory; ", o.model,
                 " is compiled already");
    model.emplace(loadCompiled(o.model, false, o.inputShapes));
    runtime::ThreadPool &pool = runtime::ThreadPool::global();
    if (o.threads > 0)
      pool.setNumThreads(o.threads);
    threads = pool.numThreads();
    compiledIn = compiledInputs(*model, o.inputs, o.seed);
    std::vector<runtime::TensorArg> in, out;
    for (const runtime::HostTensor &t : compiledIn)
      in.push_back({t.desc.name, t.desc.dtype, t.desc.shape.data(), t.desc.shape.size(),
                    const_cast<uint8_t *>(t.bytes.data()), t.bytes.size()});
    std::vector<runtime::HostTensor> results;
    for (const runtime::TensorDesc &d : model->outputs())
      results.emplace_back(d);
    for (runtime::HostTensor &t : results)
      out.push_back({t.desc.name, t.desc.dtype, t.desc.shape.data(), t.desc.shape.size(),
                     t.bytes.data(), t.bytes.size()});
    // Buffers bound once: a run measures the runtime's run(), not the allocation of outputs.
    // A model with data-dependent output shapes reports them (Model::run rejects it otherwise).
    std::vector<std::vector<int64_t>> shapes;
    auto *shapesArg = model->dynamicOutputs().empty() ? nullptr : &shapes;
    ms = measure([&] { model->run(in.data(), in.size(), out.data(), out.size(), nullptr, shapesArg); },
                 o.warmup, o.runs);
  }
  Stats s = statsOf(ms);
  std::cout << "latency of " << o.model << " (" << engine << ", " << threads << " thread"
            << (threads == 1 ? "" : "s") << ", " << ms.size() << " runs after " << o.warmup
            << " warmup):\n";
  for (auto [name, v] : std::initializer_list<std::pair<const char *, double>>{
           {"min", s.min}, {"median", s.median}, {"p90", s.p90}, {"p99", s.p99},
           {"max", s.max}, {"mean", s.mean}})
    std::cout << "  " << std::left << std::setw(7) << name << std::right << std::setw(12)
              << fixed(v, 4) << " ms\n";
  if (o.profile)
    printProfile(*model, compiledIn, int(ms.size()));
  std::cout << "bench " << o.model << " engine=" << engine << " threads=" << threads
            << " runs=" << ms.size() << " median_ms=" << fixed(s.median, 6)
            << " p90_ms=" << fixed(s.p90, 6) << " p99_ms=" << fixed(s.p99, 6)
            << " max_ms=" << fixed(s.max, 6) << " min_ms=" << fixed(s.min, 6)
            << " mean_ms=" << fixed(s.mean, 6) << "\n";
  return 0;
}

int runCompiledAccuracy(const std::string &modelPath, const std::string &imagesPath,
                        const std::string &labelsPath, bool printPredictions,
                        double minAccuracy) {
  runtime::Model model = loadCompiled(modelPath, false);
  TESSEL_CHECK(model.inputs().size() == 1 && model.outputs().size() == 1, modelPath,
               ": accuracy needs a model with one input and one output");
  Tensor images = readNpy(imagesPath), labels = readNpy(labelsPath);
  TESSEL_CHECK(images.rank() >= 1 && labels.rank() == 1 && labels.dim(0) == images.dim(0),
               imagesPath, " ", images.shapeString(), " and ", labelsPath, " ",
               labels.shapeString(), ": expected N images and N labels");
  const runtime::TensorDesc &in = model.inputs()[0], &outDesc = model.outputs()[0];
  DType dt = dtypeOf(in.dtype);
  TESSEL_CHECK(dt == images.dtype(), modelPath, ": input '", in.name, "' is ", dtypeName(dt),
               "; images are ", images.typeString());
  int64_t n = images.dim(0), per = images.numel() / std::max<int64_t>(n, 1);
  runtime::HostTensor x(in), y(outDesc);
  TESSEL_CHECK(int64_t(x.bytes.size()) == per * int64_t(dtypeSize(dt)), "one image has ", per,
               " elements but the model input ", in.name, " ", shapeToString(in.shape), " needs ",
               x.bytes.size() / dtypeSize(dt));
  DType outType = dtypeOf(outDesc.dtype);
  runtime::TensorArg inArg{in.name, in.dtype, in.shape.data(), in.shape.size(), x.bytes.data(),
                           x.bytes.size()};
  runtime::TensorArg outArg{outDesc.name, outDesc.dtype, outDesc.shape.data(),
                            outDesc.shape.size(), y.bytes.data(), y.bytes.size()};
  Tensor scores(outType, outDesc.shape);
  AccuracyTally tally;
  tally.printPredictions = printPredictions;
  for (int64_t i = 0; i < n; ++i) {
    std::memcpy(x.bytes.data(), static_cast<const char *>(images.raw()) + i * int64_t(x.bytes.size()),
                x.bytes.size());
    auto t0 = Clock::now();
    model.run(&inArg, 1, &outArg, 1);
    double ms = msSince(t0);
    std::memcpy(scores.raw(), y.bytes.data(), y.bytes.size());
    tally.add(scores, labels.getInt64(i), ms);
  }
  return tally.report("compiled", minAccuracy);
}

} // namespace tessel::cli
