//===- Conformance.cpp - the ONNX backend conformance runner --------------===//
//
// Runs every test folder (model.onnx + test_data_set_*/{input,output}_N.pb) under the given
// directories. Each test runs in a forked child with a time limit, so a crash or a hang in one
// op is reported as that test's failure, not the runner's. Prints `SUITE: P passed, F failed, S
// skipped` per directory and can write a per-test markdown report and check the results
// against the checked-in expected-failure list.
//
//===----------------------------------------------------------------------===//
#include "Commands.h"

#include "tessel/Compiler/Compile.h"
#include "tessel/Compiler/InterpreterFallback.h"
#include "tessel/Frontend/ONNX.h"
#include "tessel/Graph/Transforms.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/runtime/Model.h"

#include <algorithm>
#include <cmath>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <poll.h>
#include <regex>
#include <set>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace tessel::cli {

namespace {

enum class Status { Pass, Fail, Skip };

struct Result {
  std::string suite, test;
  Status status = Status::Fail;
  std::string reason;
};

std::string compare(const Tensor &got, const Tensor &want, double rtol, double atol) {
  if (got.dtype() != want.dtype())
    return "dtype " + std::string(dtypeName(got.dtype())) + ", expected " +
           std::string(dtypeName(want.dtype()));
  if (got.shape() != want.shape())
    return "shape " + got.shapeString() + ", expected " + want.shapeString();
  if (got.dtype() == DType::string) {
    for (int64_t i = 0; i < got.numel(); ++i)
      if (got.data<std::string>()[i] != want.data<std::string>()[i])
        return "element " + std::to_string(i) + " is \"" + got.data<std::string>()[i] +
               "\", expected \"" + want.data<std::string>()[i] + "\"";
    return "";
  }
  bool exact = !isFloat(got.dtype());
  int64_t bad = 0, first = -1;
  double worst = 0;
  for (int64_t i = 0; i < got.numel(); ++i) {
    if (exact) {
      if (got.getInt64(i) != want.getInt64(i) || (got.dtype() == DType::u64 &&
                                                   got.data<uint64_t>()[i] != want.data<uint64_t>()[i])) {
        if (first < 0)
          first = i;
        ++bad;
      }
      continue;
    }
    double g = got.getDouble(i), w = want.getDouble(i);
    if (std::isnan(g) && std::isnan(w))
      continue;
    if (std::isinf(g) || std::isinf(w)) {
      if (g != w) {
        if (first < 0)
          first = i;
        ++bad;
      }
      continue;
    }
    double err = std::fabs(g - w);
    if (!(err <= atol + rtol * std::fabs(w))) {
      if (first < 0)
        first = i;
      ++bad;
      worst = std::max(worst, err);
    }
  }
  if (!bad)
    return "";
  std::ostringstream os;
  os << bad << " of " << got.numel() << " elements differ; first at " << first << ": got "
     << (exact ? std::to_string(got.getInt64(first)) : std::to_string(got.getDouble(first)))
     << ", expected "
     << (exact ? std::to_string(want.getInt64(first)) : std::to_string(want.getDouble(first)));
  if (!exact)
    os << " (max abs error " << worst << ")";
  return os.str();
}

std::string compareObject(const Object &got, const Object &want, double rtol, double atol) {
  if (got.kind != want.kind)
    return std::string("kind mismatch: got ") +
           (got.isTensor() ? "tensor" : got.isSequence() ? "sequence" : "empty optional") +
           ", expected " +
           (want.isTensor() ? "tensor" : want.isSequence() ? "sequence" : "empty optional");
  if (got.isTensor())
    return compare(got.tensor, want.tensor, rtol, atol);
  if (got.isSequence()) {
    if (got.sequence.size() != want.sequence.size())
      return "sequence length " + std::to_string(got.sequence.size()) + ", expected " +
             std::to_string(want.sequence.size());
    for (size_t i = 0; i < got.sequence.size(); ++i) {
      std::string r = compare(got.sequence[i], want.sequence[i], rtol, atol);
      if (!r.empty())
        return "sequence element " + std::to_string(i) + ": " + r;
    }
  }
  return "";
}

std::vector<std::string> sortedFiles(const fs::path &dir, const std::string &prefix) {
  std::vector<std::pair<int, std::string>> v;
  for (auto &e : fs::directory_iterator(dir)) {
    std::string n = e.path().filename().string();
    if (n.rfind(prefix, 0) == 0 && n.size() > 3 && n.substr(n.size() - 3) == ".pb")
      v.push_back({std::atoi(n.c_str() + prefix.size()), e.path().string()});
  }
  std::sort(v.begin(), v.end());
  std::vector<std::string> r;
  for (auto &p : v)
    r.push_back(p.second);
  return r;
}

std::string shapeKey(const std::vector<Object> &inputs) {
  std::string k;
  for (const Object &o : inputs) {
    if (o.isNone()) {
      k += "none;";
      continue;
    }
    if (!o.isSequence()) {
      k += o.tensor.shapeString() + ";";
      continue;
    }
    k += "seq(";
    for (const Tensor &t : o.sequence)
      k += t.shapeString() + ",";
    k += ");";
  }
  return k;
}

/// The artifact's `structured_values` (docs/artifact.md, "Graph outputs"): name -> "seq:N",
/// "opt:none", "opt:tensor" or "opt:seq:N".
std::map<std::string, std::string> structuredValues(const runtime::Model &rm) {
  std::map<std::string, std::string> r;
  const std::string *text = rm.info("structured_values");
  if (!text)
    return r;
  size_t pos = 0;
  while (pos < text->size()) {
    size_t end = text->find(';', pos);
    std::string entry = text->substr(pos, end == std::string::npos ? std::string::npos : end - pos);
    size_t eq = entry.rfind('=');
    TESSEL_CHECK(eq != std::string::npos, "structured_values entry '", entry,
                 "': expected NAME=FORM");
    r[entry.substr(0, eq)] = entry.substr(eq + 1);
    if (end == std::string::npos)
      break;
    pos = end + 1;
  }
  return r;
}

/// --mode compiled: compiles the model in this process (compileModel, then the runtime loads
/// the artifact's bytes, as `tessel run --jit` does) with its symbolic input dims fixed from the
/// test data, runs it on each data set and compares like the interpreter path. What the
/// compiler cannot handle (no lowering, a shape the data cannot fix, a dtype) is a skip whose
/// reason starts with "not compiled: "; a wrong value or a runtime error is a failure.
std::pair<Status, std::string> runCompiledTest(const fs::path &model,
                                               const std::vector<fs::path> &sets,
                                               const Graph &g, const ConformanceOptions &opts) {
  auto req = requiredInputs(g);
  std::string compiledFor;
  std::optional<runtime::Model> loaded;
  for (auto &set : sets) {
    auto inFiles = sortedFiles(set, "input_");
    auto outFiles = sortedFiles(set, "output_");
    TESSEL_CHECK(inFiles.size() <= req.size(), set.string(), ": ", inFiles.size(),
                 " input files for ", req.size(), " model inputs");
    TESSEL_CHECK(outFiles.size() == g.outputs.size(), set.string(), ": ", outFiles.size(),
                 " output files for ", g.outputs.size(), " model outputs");
    for (size_t i = inFiles.size(); i < req.size(); ++i)
      if (req[i]->type.kind != Type::Kind::Optional)
        return {Status::Skip, "not compiled: input '" + req[i]->name() +
                                  "' is left out of the test data (a compiled model takes every "
                                  "input but an absent optional)"};
    // Sequences and optionals: their structure in this data is fixed at compile time
    // (docs/compile.md, "Sequence and optional inputs and outputs"); a left-out trailing
    // optional is absent.
    std::vector<Object> inputs;
    for (size_t i = 0; i < req.size(); ++i)
      inputs.push_back(i < inFiles.size() ? readOnnxValueFile(inFiles[i], &req[i]->type)
                                          : Object::none());
    // One compile per distinct set of input shapes (data sets usually share them).
    if (!loaded || compiledFor != shapeKey(inputs)) {
      Model fresh = loadOnnx(model.string());
      CompileOptions c;
      c.optLevel = opts.optLevel;
      c.codegenOptLevel = unsigned(opts.codegenOptLevel);
      c.allowInterpreterFallback = opts.allowInterpreterFallback;
      for (size_t i = 0; i < req.size(); ++i) {
        const Type &t = req[i]->type;
        const Object &in = inputs[i];
        if (t.isTensor()) {
          if (!t.shape.isStatic())
            c.inputShapes[req[i]->name()] = in.tensor.shape();
          continue;
        }
        InputStructure st;
        if (in.isNone()) {
          st.kind = InputStructure::Kind::Absent;
        } else if (in.isSequence()) {
          st.kind = InputStructure::Kind::Sequence;
          for (const Tensor &e : in.sequence)
            st.elements.push_back(e.shape());
        } else {
          st.dims = in.tensor.shape();
        }
        c.inputStructures[req[i]->name()] = st;
      }
      CompiledModel cm;
      bool fixedValues = false;
      try {
        cm = compileModel(*fresh.graph, c);
      } catch (const Error &e) {
        std::string msg = e.what(), prefix = model.string() + ": ";
        if (msg.rfind(prefix, 0) == 0)
          msg = msg.substr(prefix.size());
        // A shape or a Loop trip count that follows from an input's value (a window's size,
        // Range's limits): compile for this data's values of the small inputs, as
        // `tessel compile --input-value` does; the runtime checks that each run gives them.
        const bool valueDependent = msg.find("a compiled model needs static shapes") !=
                                        std::string::npos ||
                                    msg.find("(Loop): op Loop has no lowering") != std::string::npos ||
                                    msg.find("not known at compile time") != std::string::npos;
        for (size_t i = 0; valueDependent && i < req.size(); ++i)
          if (req[i]->type.isTensor() && inputs[i].isTensor() && inputs[i].tensor.numel() <= 16)
            c.inputValues[req[i]->name()] = inputs[i].tensor;
        if (c.inputValues.empty())
          return {Status::Skip, "not compiled: " + msg};
        try {
          Model again = loadOnnx(model.string());
          cm = compileModel(*again.graph, c);
          fixedValues = true;
        } catch (const Error &) {
          return {Status::Skip, "not compiled: " + msg};
        }
      }
      loaded.reset();
      loaded.emplace(runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size(),
                                                    model.string()));
      // Compiled for these inputs' values: every data set compiles again.
      compiledFor = fixedValues ? std::string() : shapeKey(inputs);
    }
    const runtime::Model &rm = *loaded;
    std::vector<runtime::HostTensor> hin;
    for (const runtime::TensorDesc &d : rm.inputs()) {
      // `x[j]`: element j of sequence input x.
      std::string name = d.name;
      size_t element = SIZE_MAX;
      if (size_t lb = name.rfind('['); lb != std::string::npos && name.back() == ']') {
        bool isSeq = std::any_of(req.begin(), req.end(), [&](const Value *v) {
          return v->name() == name.substr(0, lb) && !v->type.isTensor();
        });
        if (isSeq) {
          element = size_t(std::stoull(name.substr(lb + 1, name.size() - lb - 2)));
          name = name.substr(0, lb);
        }
      }
      size_t i = 0;
      while (i < req.size() && req[i]->name() != name)
        ++i;
      TESSEL_CHECK(i < req.size(), "the compiled model's input '", d.name,
                   "' is not an input of the model");
      TESSEL_CHECK(element == SIZE_MAX || element < inputs[i].sequence.size(),
                   "the compiled model's input '", d.name, "' is no element of the data's sequence");
      const Tensor &t = element == SIZE_MAX ? inputs[i].tensor : inputs[i].sequence[element];
      DType want = DType(uint32_t(d.dtype));
      if (t.dtype() != want || t.shape() != d.shape)
        return {Status::Fail, set.filename().string() + " input '" + d.name + "' is " +
                                  t.typeString() + ", the compiled model expects " +
                                  Tensor(want, d.shape).typeString()};
      runtime::HostTensor h(d);
      if (!h.bytes.empty())
        std::memcpy(h.bytes.data(), t.raw(), h.bytes.size());
      hin.push_back(std::move(h));
    }
    std::vector<runtime::HostTensor> hout = rm.run(hin);
    auto tensorOutput = [&](const std::string &name) {
      auto it = std::find_if(hout.begin(), hout.end(),
                             [&](const runtime::HostTensor &h) { return h.desc.name == name; });
      TESSEL_CHECK(it != hout.end(), "the compiled model has no output '", name, "'");
      Tensor got(DType(uint32_t(it->desc.dtype)), it->desc.shape);
      if (!it->bytes.empty())
        std::memcpy(got.raw(), it->bytes.data(), it->bytes.size());
      return got;
    };
    // A sequence or optional output is rebuilt from its elements' outputs.
    const std::map<std::string, std::string> structured = structuredValues(rm);
    auto outputObject = [&](const std::string &name) -> Object {
      auto it = structured.find(name);
      if (it == structured.end() || it->second == "opt:tensor")
        return Object(tensorOutput(name));
      if (it->second == "opt:none")
        return Object::none();
      std::string form = it->second;
      if (form.rfind("opt:", 0) == 0)
        form = form.substr(4);
      TESSEL_CHECK(form.rfind("seq:", 0) == 0, "structured_values: output '", name, "' has form '",
                   it->second, "' (expected seq:N, opt:none, opt:tensor or opt:seq:N)");
      std::vector<Tensor> elems;
      for (size_t j = 0, n = size_t(std::stoull(form.substr(4))); j < n; ++j)
        elems.push_back(tensorOutput(name + "[" + std::to_string(j) + "]"));
      return Object::seq(std::move(elems));
    };
    for (size_t i = 0; i < outFiles.size(); ++i) {
      const std::string &name = g.outputs[i]->name();
      Object want = readOnnxValueFile(outFiles[i], &g.outputs[i]->type);
      std::string why = compareObject(outputObject(name), want, opts.rtol, opts.atol);
      if (!why.empty())
        return {Status::Fail, set.filename().string() + " output '" + name + "' (compiled): " + why};
    }
  }
  return {Status::Pass, ""};
}

/// Runs one test folder in this process. Returns {status, reason}.
std::pair<Status, std::string> runTest(const fs::path &dir, const ConformanceOptions &opts) {
  fs::path model = dir / "model.onnx";
  if (!fs::exists(model))
    return {Status::Skip, "no model.onnx"};
  std::vector<fs::path> sets;
  for (auto &e : fs::directory_iterator(dir))
    if (e.is_directory() && e.path().filename().string().rfind("test_data_set_", 0) == 0)
      sets.push_back(e.path());
  std::sort(sets.begin(), sets.end());
  if (sets.empty())
    return {Status::Skip, "no test_data_set_*"};
  Model m;
  try {
    m = loadOnnx(model.string());
  } catch (const Error &e) {
    std::string msg = e.what();
    if (msg.find("ai.onnx.preview.training") != std::string::npos)
      return {Status::Skip, "training op (ai.onnx.preview.training) is out of scope"};
    return {Status::Fail, msg};
  }
  if (opts.mode == "compiled")
    return runCompiledTest(model, sets, *m.graph, opts);
  // With --opt-level, the unoptimized graph is the reference too: optimization must give the
  // interpreter's -O0 answer within rtol 1e-4, not just pass the test's tolerance.
  Model ref;
  if (opts.optLevel > 0) {
    ref = loadOnnx(model.string());
    try {
      optimizeGraph(*m.graph, opts.optLevel);
    } catch (const Error &e) {
      return {Status::Fail, "optimizing at -O" + std::to_string(opts.optLevel) + ": " + e.what()};
    }
  }
  const Graph &g = *m.graph;
  auto req = requiredInputs(g);
  for (auto &set : sets) {
    auto inFiles = sortedFiles(set, "input_");
    auto outFiles = sortedFiles(set, "output_");
    std::vector<Object> inputs;
    TESSEL_CHECK(inFiles.size() <= req.size(), set.string(), ": ", inFiles.size(),
                 " input files for ", req.size(), " model inputs");
    for (size_t i = 0; i < inFiles.size(); ++i)
      inputs.push_back(readOnnxValueFile(inFiles[i], &req[i]->type));
    // Trailing optional inputs may be left out of the test data.
    std::map<std::string, Object> named;
    for (size_t i = 0; i < inputs.size(); ++i)
      named[req[i]->name()] = inputs[i];
    for (size_t i = inputs.size(); i < req.size(); ++i)
      if (req[i]->type.kind == Type::Kind::Optional)
        named[req[i]->name()] = Object::none();
    Interpreter interp(g);
    auto outs = interp.run(named);
    TESSEL_CHECK(outFiles.size() == g.outputs.size(), set.string(), ": ", outFiles.size(),
                 " output files for ", g.outputs.size(), " model outputs");
    if (ref.graph) {
      auto refOuts = Interpreter(*ref.graph).run(named);
      for (const Value *v : g.outputs) {
        std::string why = compareObject(outs[v->name()], refOuts[v->name()], 1e-4, 1e-5);
        if (!why.empty())
          return {Status::Fail, set.filename().string() + " output '" + v->name() + "' at -O" +
                                    std::to_string(opts.optLevel) + " differs from -O0: " + why};
      }
    }
    for (size_t i = 0; i < outFiles.size(); ++i) {
      Object want = readOnnxValueFile(outFiles[i], &g.outputs[i]->type);
      std::string why = compareObject(outs[g.outputs[i]->name()], want, opts.rtol, opts.atol);
      if (!why.empty())
        return {Status::Fail, set.filename().string() + " output '" + g.outputs[i]->name() + "': " + why};
    }
  }
  return {Status::Pass, ""};
}

std::string oneLine(std::string s) {
  for (char &c : s)
    if (c == '\n' || c == '\r' || c == '|')
      c = ' ';
  if (s.size() > 400)
    s = s.substr(0, 400) + "...";
  return s;
}

struct Child {
  pid_t pid;
  int fd;
  size_t index;
  std::string out;
  time_t start;
};

void runAll(std::vector<Result> &results, const std::vector<fs::path> &dirs,
            const ConformanceOptions &opts) {
  std::vector<Child> running;
  size_t next = 0;
  auto finish = [&](Child &c, int status) {
    Result &r = results[c.index];
    if (WIFSIGNALED(status)) {
      r.status = Status::Fail;
      r.reason = c.out == "TIMEOUT" ? "timed out after " + std::to_string(opts.timeoutSeconds) + " s"
                                    : "crashed (signal " + std::to_string(WTERMSIG(status)) + ": " +
                                          strsignal(WTERMSIG(status)) + ")";
      return;
    }
    if (c.out.empty()) {
      r.status = Status::Fail;
      r.reason = "test process exited with status " + std::to_string(WEXITSTATUS(status));
      return;
    }
    r.status = c.out[0] == 'P' ? Status::Pass : c.out[0] == 'S' ? Status::Skip : Status::Fail;
    r.reason = c.out.substr(1);
  };
  while (next < dirs.size() || !running.empty()) {
    while (next < dirs.size() && int(running.size()) < std::max(1, opts.jobs)) {
      int fds[2];
      TESSEL_CHECK(pipe(fds) == 0, "pipe failed");
      std::cout.flush();
      pid_t pid = fork();
      TESSEL_CHECK(pid >= 0, "fork failed");
      if (pid == 0) {
        close(fds[0]);
        alarm(unsigned(opts.timeoutSeconds));
        std::string msg;
        try {
          auto [st, why] = runTest(dirs[next], opts);
          msg = std::string(st == Status::Pass ? "P" : st == Status::Skip ? "S" : "F") + oneLine(why);
        } catch (const std::exception &e) {
          msg = "F" + oneLine(e.what());
        }
        ssize_t w = write(fds[1], msg.data(), msg.size());
        (void)w;
        close(fds[1]);
        _exit(0);
      }
      close(fds[1]);
      running.push_back({pid, fds[0], next, "", time(nullptr)});
      ++next;
    }
    std::vector<pollfd> pfds;
    for (auto &c : running)
      pfds.push_back({c.fd, POLLIN, 0});
    poll(pfds.data(), pfds.size(), 1000);
    for (size_t i = 0; i < running.size();) {
      Child &c = running[i];
      char buf[4096];
      ssize_t n = 0;
      if (pfds[i].revents & (POLLIN | POLLHUP)) {
        while ((n = read(c.fd, buf, sizeof buf)) > 0)
          c.out.append(buf, size_t(n));
      }
      int status = 0;
      pid_t done = waitpid(c.pid, &status, WNOHANG);
      if (done == c.pid) {
        while ((n = read(c.fd, buf, sizeof buf)) > 0)
          c.out.append(buf, size_t(n));
        close(c.fd);
        if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
          c.out = "TIMEOUT";
        finish(c, status);
        if (opts.verbose) {
          const Result &r = results[c.index];
          std::cout << (r.status == Status::Pass ? "PASS " : r.status == Status::Skip ? "SKIP " : "FAIL ")
                    << r.suite << "/" << r.test << (r.reason.empty() ? "" : ": " + r.reason) << "\n";
        }
        running.erase(running.begin() + i);
        pfds.erase(pfds.begin() + i);
        continue;
      }
      ++i;
    }
  }
}

} // namespace

int runConformance(const ConformanceOptions &opts) {
  TESSEL_CHECK(opts.mode == "interp" || opts.mode == "compiled", "--mode ", opts.mode,
               ": expected interp or compiled");
  if (opts.mode == "compiled" && opts.allowInterpreterFallback)
    registerInterpreterFallback();
  std::regex filter(opts.filter.empty() ? std::string(".*") : opts.filter);
  std::vector<Result> results;
  std::vector<fs::path> testDirs;
  std::vector<std::string> suites;
  for (auto &d : opts.dirs) {
    fs::path dir = fs::path(d);
    TESSEL_CHECK(fs::is_directory(dir), d, ": not a directory");
    std::string suite = fs::path(d).lexically_normal().filename().string();
    if (suite.empty())
      suite = fs::path(d).lexically_normal().parent_path().filename().string();
    suites.push_back(suite);
    std::vector<fs::path> tests;
    for (auto &e : fs::directory_iterator(dir))
      if (e.is_directory() && std::regex_search(e.path().filename().string(), filter))
        tests.push_back(e.path());
    std::sort(tests.begin(), tests.end());
    for (auto &t : tests) {
      results.push_back({suite, t.filename().string(), Status::Fail, ""});
      testDirs.push_back(t);
    }
  }
  runAll(results, testDirs, opts);

  for (auto &s : suites) {
    int p = 0, f = 0, k = 0;
    for (auto &r : results)
      if (r.suite == s)
        (r.status == Status::Pass ? p : r.status == Status::Fail ? f : k)++;
    std::cout << s << ": " << p << " passed, " << f << " failed, " << k << " skipped" << std::endl;
  }

  if (!opts.report.empty()) {
    std::ofstream out(opts.report);
    TESSEL_CHECK(out.good(), opts.report, ": cannot write the report");
    out << (opts.mode == "compiled" ? "# ONNX conformance (compiled: tessel compile -O"
                                       + std::to_string(opts.optLevel) + ", LLVM -O" +
                                       std::to_string(opts.codegenOptLevel) + ")\n\n"
                                 : std::string("# ONNX conformance (reference interpreter)\n\n"))
        << "Generated by `tessel conformance --report`; rtol " << opts.rtol << ", atol " << opts.atol
        << ".\n\n";
    for (auto &s : suites) {
      int p = 0, f = 0, k = 0;
      for (auto &r : results)
        if (r.suite == s)
          (r.status == Status::Pass ? p : r.status == Status::Fail ? f : k)++;
      out << "- **" << s << "**: " << p << " passed, " << f << " failed, " << k << " skipped\n";
    }
    out << "\n| test | status | reason |\n|---|---|---|\n";
    for (auto &r : results)
      out << "| " << r.suite << "/" << r.test << " | "
          << (r.status == Status::Pass ? "pass" : r.status == Status::Skip ? "skip" : "FAIL") << " | "
          << r.reason << " |\n";
  }

  if (opts.expectedFailures.empty())
    return 0;
  // The list: one `suite/test  reason...` per line; '#' starts a comment line. A reason that
  // starts with "flaky:" accepts either outcome (random draws that the test data may or may not
  // happen to match).
  std::ifstream in(opts.expectedFailures);
  TESSEL_CHECK(in.good(), opts.expectedFailures, ": cannot read the expected-failure list");
  std::set<std::string> expected, flaky;
  std::string line;
  while (std::getline(in, line)) {
    if (line.empty() || line[0] == '#')
      continue;
    const size_t end = line.find_first_of(" \t");
    std::string key = line.substr(0, end);
    expected.insert(key);
    const size_t reason = end == std::string::npos ? end : line.find_first_not_of(" \t", end);
    if (reason != std::string::npos && line.compare(reason, 6, "flaky:") == 0)
      flaky.insert(key);
  }
  int bad = 0;
  for (auto &r : results) {
    std::string key = r.suite + "/" + r.test;
    bool exp = expected.count(key);
    if (r.status == Status::Fail && !exp) {
      std::cout << "UNEXPECTED FAIL " << key << ": " << r.reason << "\n";
      ++bad;
    } else if (r.status == Status::Pass && exp && !flaky.count(key)) {
      std::cout << "UNEXPECTED PASS " << key << " (remove it from " << opts.expectedFailures << ")\n";
      ++bad;
    }
  }
  if (bad)
    std::cout << bad << " unexpected results against " << opts.expectedFailures << "\n";
  return bad ? 1 : 0;
}

} // namespace tessel::cli
