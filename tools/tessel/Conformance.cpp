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
  for (const Object &o : inputs)
    k += o.tensor.shapeString() + ";";
  return k;
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
    if (inFiles.size() < req.size())
      return {Status::Skip, "not compiled: optional input '" + req[inFiles.size()]->name() +
                                "' is left out of the test data (a compiled model takes every input)"};
    std::vector<Object> inputs;
    for (size_t i = 0; i < inFiles.size(); ++i) {
      inputs.push_back(readOnnxValueFile(inFiles[i], &req[i]->type));
      if (!inputs.back().isTensor())
        return {Status::Skip, "not compiled: input '" + req[i]->name() +
                                  "' is a sequence or optional; compiled models take tensors"};
    }
    for (size_t i = 0; i < g.outputs.size(); ++i)
      if (!g.outputs[i]->type.isTensor())
        return {Status::Skip, "not compiled: output '" + g.outputs[i]->name() + "' has type " +
                                  g.outputs[i]->type.str() + "; compiled models produce tensors"};
    // One compile per distinct set of input shapes (data sets usually share them).
    if (!loaded || compiledFor != shapeKey(inputs)) {
      Model fresh = loadOnnx(model.string());
      CompileOptions c;
      c.optLevel = opts.optLevel;
      c.codegenOptLevel = unsigned(opts.codegenOptLevel);
      c.allowInterpreterFallback = opts.allowInterpreterFallback;
      for (size_t i = 0; i < req.size(); ++i)
        if (!req[i]->type.shape.isStatic())
          c.inputShapes[req[i]->name()] = inputs[i].tensor.shape();
      CompiledModel cm;
      try {
        cm = compileModel(*fresh.graph, c);
      } catch (const Error &e) {
        std::string msg = e.what(), prefix = model.string() + ": ";
        if (msg.rfind(prefix, 0) == 0)
          msg = msg.substr(prefix.size());
        return {Status::Skip, "not compiled: " + msg};
      }
      loaded.reset();
      loaded.emplace(runtime::Model::loadFromMemory(cm.artifact.data(), cm.artifact.size(),
                                                    model.string()));
      compiledFor = shapeKey(inputs);
    }
    const runtime::Model &rm = *loaded;
    std::vector<runtime::HostTensor> hin;
    for (const runtime::TensorDesc &d : rm.inputs()) {
      size_t i = 0;
      while (i < req.size() && req[i]->name() != d.name)
        ++i;
      TESSEL_CHECK(i < req.size(), "the compiled model's input '", d.name,
                   "' is not an input of the model");
      const Tensor &t = inputs[i].tensor;
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
    for (size_t i = 0; i < outFiles.size(); ++i) {
      const std::string &name = g.outputs[i]->name();
      auto it = std::find_if(hout.begin(), hout.end(),
                             [&](const runtime::HostTensor &h) { return h.desc.name == name; });
      TESSEL_CHECK(it != hout.end(), "the compiled model has no output '", name, "'");
      Tensor got(DType(uint32_t(it->desc.dtype)), it->desc.shape);
      if (!it->bytes.empty())
        std::memcpy(got.raw(), it->bytes.data(), it->bytes.size());
      Object want = readOnnxValueFile(outFiles[i], &g.outputs[i]->type);
      std::string why = compareObject(Object(std::move(got)), want, opts.rtol, opts.atol);
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
