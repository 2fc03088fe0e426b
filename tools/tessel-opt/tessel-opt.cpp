//===- tessel-opt.cpp - run graph passes over text IR or ONNX -------------===//
//
// The driver of the graph golden tests (test/Graph, lit + FileCheck):
//
//   tessel-opt INPUT [--passes=a,b,c] [-O N] [--split-input-file] [--print-after-all]
//              [--print-after=P] [--pass-timing] [--stats] [--verify-numerics] [-o OUT]
//
// INPUT is text IR (docs/ir.md) or an ONNX model (by the .onnx extension); "-" reads stdin.
// The graph is shape-inferred, the passes run, and the result prints as text IR. With
// --split-input-file the text is cut at lines `// -----` and each chunk is processed on its own
// (outputs separated by `// -----`, as mlir-opt does). Text without an opset clause gets
// opset {"": 17}. --verify-numerics runs the reference interpreter on fresh random inputs
// before and after the passes and fails on a mismatch.
//
// Loop IR mode: an INPUT ending in .tir is loop IR (docs/loop-ir.md); `--loop-passes=a,b` runs
// loop passes by their registry name (include/tessel/Loop/Pass.h) with the loop verifier before
// and after each (unless --no-verify); --split-input-file and --print-after-all work as above.
//
// --print-memory-plan prints, after the graph, its static memory plan (docs/memory-plan.md),
// checked by verifyMemoryPlan; --plan-outputs-in-arena, --plan-alignment=N and --plan-first-fit
// set its options.
//
// --print-fusion prints, after the graph, its fusion groups (include/tessel/Graph/Fusion.h,
// docs/fusion.md), checked by verifyFusionPlan; --fuse-max-group-size=N limits a group's size.
//
// --print-dynamic-kernels prints, after the graph, the loop-IR kernel of each node whose output
// shape depends on its input values (NonZero, Compress, Unique, NonMaxSuppression: a
// DynamicKernel, include/tessel/Graph/Lowering.h) as built, before the loop pipeline, preceded
// by its output bounds (docs/lowering.md, "Data-dependent output shapes").
//
//===----------------------------------------------------------------------===//
#include "tessel/Frontend/ONNX.h"
#include "tessel/Graph/Fusion.h"
#include "tessel/Graph/Lowering.h"
#include "tessel/Graph/MemoryPlan.h"
#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Text.h"
#include "tessel/Graph/Transforms.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/Loop/Pass.h"
#include "tessel/Loop/Text.h"

#include <CLI/CLI.hpp>

#include <cctype>
#include <cmath>
#include <fstream>
#include <iostream>
#include <optional>
#include <random>
#include <set>
#include <sstream>

using namespace tessel;

namespace {

constexpr double kRtol = 1e-4, kAtol = 1e-5;
constexpr int64_t kSymbolicDim = 2; // symbolic and unknown dims of random inputs
constexpr int64_t kDefaultOpset = 17; // for text IR without an `opset {...}` clause

struct Options {
  std::vector<std::string> passes;
  PassOptions pass;
  bool verifyNumerics = false;
  unsigned seed = 1;
  bool printMemoryPlan = false;
  PlanOptions plan;
  bool printFusion = false;
  FuseOptions fuse;
  bool printDynamicKernels = false;
};

std::string readFile(const std::string &path) {
  if (path == "-") {
    std::ostringstream ss;
    ss << std::cin.rdbuf();
    return ss.str();
  }
  std::ifstream in(path, std::ios::binary);
  TESSEL_CHECK(in, path, ": cannot open the input file");
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

bool endsWith(const std::string &s, const std::string &suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

/// A chunk of the input and the line it starts on (0-based).
struct Chunk {
  std::string text;
  size_t firstLine = 0;
};

/// Splits at lines whose text (after leading blanks) starts with `// -----`.
std::vector<Chunk> splitInput(const std::string &text) {
  std::vector<Chunk> chunks(1);
  size_t line = 0, pos = 0;
  while (pos < text.size()) {
    size_t end = text.find('\n', pos);
    size_t next = end == std::string::npos ? text.size() : end + 1;
    std::string_view l(text.data() + pos, next - pos);
    size_t b = l.find_first_not_of(" \t");
    if (b != std::string_view::npos && l.substr(b).starts_with("// -----")) {
      chunks.push_back({"", line + 1});
    } else {
      chunks.back().text.append(l);
    }
    ++line;
    pos = next;
  }
  return chunks;
}

/// Random data of a tensor type: never all zeros; symbolic and unknown dims are 2.
Tensor randomTensor(const Type &t, const std::string &name, std::mt19937 &rng) {
  TESSEL_CHECK(t.isTensor() && t.dtype != DType::undefined && t.shape.rankKnown,
               "--verify-numerics: input '", name, "' has type ", t.str(),
               "; random inputs need a known element type and rank");
  std::vector<int64_t> shape;
  for (auto &d : t.shape.dims)
    shape.push_back(d.isStatic() ? d.value : kSymbolicDim);
  Tensor r(t.dtype, shape);
  if (t.dtype == DType::string) {
    std::uniform_int_distribution<int> ui(0, 25);
    auto *p = r.data<std::string>();
    for (int64_t i = 0; i < r.numel(); ++i)
      p[i] = std::string(1, char('a' + ui(rng)));
    return r;
  }
  std::uniform_real_distribution<float> mag(0.1f, 1.f);
  std::uniform_int_distribution<int> ui(0, 2);
  dispatchNumeric(t.dtype, [&](auto z) {
    using T = decltype(z);
    T *p = r.data<T>();
    for (int64_t i = 0; i < r.numel(); ++i) {
      if constexpr (std::is_same_v<T, bool>)
        p[i] = (ui(rng) & 1) || i == 0;
      else if constexpr (std::is_integral_v<T>)
        p[i] = T(i == 0 ? 1 : ui(rng));
      else
        p[i] = T((ui(rng) & 1 ? -1.f : 1.f) * mag(rng));
    }
  });
  return r;
}

/// Random data for a graph input: a tensor, a sequence of two tensors, or an optional's content.
Object randomInput(const Value &v, std::mt19937 &rng) {
  const Type *t = &v.type;
  if (t->kind == Type::Kind::Optional && t->elem)
    t = t->elem.get();
  if (t->kind == Type::Kind::Sequence && t->elem) {
    Tensor a = randomTensor(*t->elem, v.name(), rng);
    return Object::seq({a, randomTensor(*t->elem, v.name(), rng)});
  }
  return Object(randomTensor(*t, v.name(), rng));
}

/// "" when `got` matches `want` within the tolerances, else the reason.
std::string compareTensors(const Tensor &got, const Tensor &want) {
  if (got.dtype() != want.dtype() || got.shape() != want.shape())
    return "type " + got.typeString() + ", expected " + want.typeString();
  if (got.dtype() == DType::string) {
    for (int64_t i = 0; i < got.numel(); ++i)
      if (got.data<std::string>()[i] != want.data<std::string>()[i])
        return "string element " + std::to_string(i) + " differs";
    return "";
  }
  for (int64_t i = 0; i < got.numel(); ++i) {
    double g = got.getDouble(i), w = want.getDouble(i);
    if (std::isnan(g) && std::isnan(w))
      continue;
    if (g == w)
      continue;
    if (std::isnan(g) != std::isnan(w) || !(std::fabs(g - w) <= kAtol + kRtol * std::fabs(w)))
      return concat("element ", i, " is ", g, ", expected ", w, " (rtol ", kRtol, ", atol ", kAtol, ")");
  }
  return "";
}

std::string compareObjects(const Object &got, const Object &want) {
  if (got.kind != want.kind)
    return "kind of value changed";
  if (got.isTensor())
    return compareTensors(got.tensor, want.tensor);
  if (got.isSequence()) {
    if (got.sequence.size() != want.sequence.size())
      return concat("sequence of ", got.sequence.size(), " tensors, expected ", want.sequence.size());
    for (size_t i = 0; i < got.sequence.size(); ++i) {
      std::string why = compareTensors(got.sequence[i], want.sequence[i]);
      if (!why.empty())
        return concat("sequence element ", i, ": ", why);
    }
  }
  return "";
}

bool isRandomOp(const Node &n) {
  return n.domain.empty() && (n.opType.starts_with("Random") || n.opType == "Bernoulli" ||
                              n.opType == "Multinomial");
}

/// Marks which graph outputs depend on a random op without a seed (they cannot be compared).
std::vector<bool> nondeterministicOutputs(const Graph &g) {
  std::set<const Value *> tainted;
  for (auto &n : g.nodes()) {
    bool t = isRandomOp(*n) && !n->attr("seed");
    for (Value *v : n->inputs())
      t |= v && tainted.count(v);
    if (t)
      for (Value *v : n->outputs())
        if (v)
          tainted.insert(v);
  }
  std::vector<bool> r;
  for (Value *v : g.outputs)
    r.push_back(tainted.count(v) > 0);
  return r;
}

struct NumericsBaseline {
  std::map<std::string, Object> inputs;
  std::vector<Object> outputs;
  std::vector<bool> skip;
};

NumericsBaseline runBaseline(const Graph &g, unsigned seed) {
  NumericsBaseline b;
  std::mt19937 rng(seed);
  for (const Value *v : requiredInputs(g))
    b.inputs[v->name()] = randomInput(*v, rng);
  b.skip = nondeterministicOutputs(g);
  std::map<std::string, Object> outs;
  try {
    outs = Interpreter(g).run(b.inputs);
  } catch (const std::exception &e) {
    fail("--verify-numerics: the graph before the passes fails on random inputs: ", e.what());
  }
  for (Value *v : g.outputs)
    b.outputs.push_back(outs[v->name()]);
  return b;
}

void checkNumerics(const Graph &g, const NumericsBaseline &b) {
  TESSEL_CHECK(g.outputs.size() == b.outputs.size(), "--verify-numerics: the graph had ",
               b.outputs.size(), " outputs before the passes and ", g.outputs.size(), " after");
  std::map<std::string, Object> outs;
  try {
    outs = Interpreter(g).run(b.inputs);
  } catch (const std::exception &e) {
    fail("--verify-numerics: the graph after the passes fails on the inputs the graph before "
         "them ran on: ", e.what());
  }
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    if (b.skip[i])
      continue;
    std::string why = compareObjects(outs[g.outputs[i]->name()], b.outputs[i]);
    TESSEL_CHECK(why.empty(), "--verify-numerics: output ", i, " '", g.outputs[i]->name(),
                 "' differs after the passes: ", why);
  }
}

/// --print-dynamic-kernels: each DynamicKernel's bounds and loop IR, named dynamic_<op>_<node>.
void printDynamicKernels(const Graph &g, std::ostream &out) {
  for (const auto &n : g.nodes()) {
    if (!hasDynamicKernel(*n))
      continue;
    std::string symbol = "dynamic_" + n->opType + "_" + n->name;
    for (char &c : symbol)
      if (!std::isalnum(static_cast<unsigned char>(c)))
        c = '_';
    DynamicKernelFunc k = buildDynamicKernel(*n, symbol);
    out << "// dynamic kernel of " << n->describe() << "\n";
    for (size_t i = 0; i < k.bounds.size(); ++i) {
      if (!n->output(i))
        continue;
      out << "//   output " << i << " %" << n->output(i)->name() << ": bound "
          << shapeToString(k.bounds[i].shape);
      if (k.bounds[i].axis >= 0)
        out << ", dynamic axis " << k.bounds[i].axis;
      out << "\n";
    }
    loop::verifyLoweredFunc(k.func);
    out << loop::printFunc(k.func);
  }
}

void processGraph(Graph &g, const Options &opts, std::ostream &out) {
  inferShapes(g);
  verifyGraph(g);
  std::optional<NumericsBaseline> baseline;
  if (opts.verifyNumerics)
    baseline = runBaseline(g, opts.seed);
  runPasses(g, opts.passes, opts.pass);
  if (baseline)
    checkNumerics(g, *baseline);
  printGraph(out, g);
  if (opts.printMemoryPlan) {
    MemoryPlan plan = planMemory(g, opts.plan);
    verifyMemoryPlan(g, plan);
    printMemoryPlan(out, plan);
  }
  if (opts.printFusion) {
    FusionPlan fusion = fuseOps(g, opts.fuse);
    verifyFusionPlan(g, fusion);
    out << "fusion: " << fusion.numNodes << " nodes -> " << fusion.groups.size() << " kernels\n";
    printFusionPlan(out, fusion);
  }
  if (opts.printDynamicKernels)
    printDynamicKernels(g, out);
}

/// Loop IR mode (inputs ending in .tir): parse, verify, run the named loop passes with the
/// verifier after each, print.
void processLoopFuncs(const std::string &text, const std::string &source,
                      const std::vector<std::string> &passes, bool verify, bool printAfterAll,
                      std::ostream &out) {
  for (auto &p : passes)
    loop::lookupLoopPass(p); // unknown names fail before any work
  for (loop::LoweredFunc f : loop::parseFuncs(text, source)) {
    if (verify)
      loop::verifyLoweredFunc(f);
    for (auto &p : passes) {
      f = loop::lookupLoopPass(p).run(f);
      if (verify) {
        try {
          loop::verifyLoweredFunc(f);
        } catch (const std::exception &e) {
          fail("loop pass '", p, "' produced invalid IR: ", e.what());
        }
      }
      if (printAfterAll)
        std::cerr << "// after " << p << "\n" << loop::printFunc(f);
    }
    out << loop::printFunc(f);
  }
}

std::vector<std::string> splitCommas(const std::vector<std::string> &items) {
  std::vector<std::string> r;
  for (auto &item : items) {
    std::stringstream ss(item);
    std::string s;
    while (std::getline(ss, s, ','))
      if (!s.empty())
        r.push_back(s);
  }
  return r;
}

} // namespace

int main(int argc, char **argv) {
  CLI::App app{"tessel-opt: run graph passes over text IR (or ONNX) and print text IR"};
  std::string input, output;
  std::vector<std::string> passList, printAfter;
  int optLevel = -1;
  bool split = false, noVerify = false;
  Options opts;
  app.add_option("input", input, "Text IR (.tsl or any other extension), .onnx, or - for stdin")
      ->required();
  app.add_option("--passes", passList, "Comma-separated passes to run, in order");
  app.add_option("-O", optLevel, "Run the default pipeline of this level (0..3) before --passes")
      ->check(CLI::Range(0, 3));
  app.add_flag("--split-input-file", split, "Process each chunk between `// -----` lines separately");
  app.add_flag("--print-after-all", opts.pass.printAfterAll, "Print the graph after every pass (stderr)");
  app.add_option("--print-after", printAfter, "Print the graph after these passes (stderr)");
  app.add_flag("--pass-timing", opts.pass.timing, "Print the wall time of each pass (stderr)");
  app.add_flag("--stats", opts.pass.stats, "Print each pass's counters (stderr)");
  app.add_flag("--no-verify", noVerify, "Do not run shape inference and the verifier between passes");
  app.add_flag("--verify-numerics", opts.verifyNumerics,
               "Run the interpreter on random inputs before and after the passes; fail on a "
               "mismatch beyond rtol 1e-4, atol 1e-5");
  app.add_option("--seed", opts.seed, "Seed for --verify-numerics inputs");
  app.add_flag("--print-memory-plan", opts.printMemoryPlan,
               "After the graph, print its static memory plan (docs/memory-plan.md)");
  app.add_flag("--plan-outputs-in-arena", opts.plan.outputsInArena,
               "Memory plan: give graph outputs arena space too");
  app.add_option("--plan-alignment", opts.plan.alignment, "Memory plan: offset alignment in bytes");
  bool firstFit = false;
  app.add_flag("--plan-first-fit", firstFit, "Memory plan: first fit instead of best fit");
  app.add_flag("--print-fusion", opts.printFusion,
               "After the graph, print its fusion groups (docs/fusion.md)");
  app.add_flag("--print-dynamic-kernels", opts.printDynamicKernels,
               "After the graph, print the loop-IR kernel of each node whose output shape "
               "depends on the data (docs/lowering.md)");
  app.add_option("--fuse-max-group-size", opts.fuse.maxGroupSize,
                 "Fusion: the most nodes in one group (default 256)");
  app.add_option("-o", output, "Write the result here instead of stdout");
  std::vector<std::string> loopPassList;
  app.add_option("--loop-passes", loopPassList,
                 "Loop IR mode (inputs ending in .tir): comma-separated loop passes to run");
  CLI11_PARSE(app, argc, argv);
  if (firstFit)
    opts.plan.fit = PlanOptions::Fit::First;
  const bool loopMode = endsWith(input, ".tir");

  std::vector<std::string> names = splitCommas(passList);
  if (optLevel >= 0)
    opts.passes = defaultPipeline(optLevel);
  opts.passes.insert(opts.passes.end(), names.begin(), names.end());
  for (auto &p : splitCommas(printAfter))
    opts.pass.printAfter.insert(p);
  opts.pass.verify = !noVerify;

  std::ofstream file;
  std::ostream *out = &std::cout;
  if (!output.empty()) {
    file.open(output, std::ios::binary);
    if (!file) {
      std::cerr << "error: " << output << ": cannot open the output file\n";
      return 1;
    }
    out = &file;
  }

  try {
    for (auto &p : opts.pass.printAfter)
      TESSEL_CHECK(findGraphPass(p), "--print-after: unknown pass '", p, "'");
    TESSEL_CHECK(loopMode || loopPassList.empty(),
                 "--loop-passes needs loop IR input (a file ending in .tir)");
    if (endsWith(input, ".onnx")) {
      Model m = loadOnnx(input);
      processGraph(*m.graph, opts, *out);
      return 0;
    }
  } catch (const std::exception &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }

  int rc = 0;
  std::vector<Chunk> chunks;
  try {
    std::string text = readFile(input);
    chunks = split ? splitInput(text) : std::vector<Chunk>{{text, 0}};
  } catch (const std::exception &e) {
    std::cerr << "error: " << e.what() << "\n";
    return 1;
  }
  const std::string source = input == "-" ? "<stdin>" : input;
  for (size_t i = 0; i < chunks.size(); ++i) {
    if (i)
      *out << "// -----\n";
    try {
      // Leading newlines keep the parser's line numbers those of the whole file.
      std::string text = std::string(chunks[i].firstLine, '\n') + chunks[i].text;
      if (loopMode) {
        processLoopFuncs(text, source, splitCommas(loopPassList), !noVerify,
                         opts.pass.printAfterAll, *out);
        out->flush();
        continue;
      }
      auto g = parseGraph(text, source);
      if (g->opsets.empty()) // hand-written tests may leave the opset out: the newest supported
        g->opsets[""] = kDefaultOpset;
      processGraph(*g, opts, *out);
    } catch (const std::exception &e) {
      std::cerr << "error: " << e.what() << "\n";
      rc = 1;
    }
    out->flush();
  }
  return rc;
}
