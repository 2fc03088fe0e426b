//===- InterpreterFallback.cpp - run unlowered nodes in the interpreter ----===//
//
// See include/tessel/Compiler/InterpreterFallback.h and docs/compile.md.
//
//===----------------------------------------------------------------------===//
#include "tessel/Compiler/InterpreterFallback.h"

#include "tessel/Frontend/ONNX.h"
#include "tessel/Interp/Interpreter.h"
#include "tessel/Support/Error.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <map>
#include <memory>
#include <unistd.h>
#include <unordered_map>

namespace fs = std::filesystem;

namespace tessel {

namespace {

std::vector<uint8_t> readAndRemove(const std::string &path) {
  std::ifstream in(path, std::ios::binary);
  std::vector<uint8_t> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  bool ok = in.good() || in.eof();
  std::remove(path.c_str());
  TESSEL_CHECK(ok, path, ": cannot read back the serialized fallback node");
  return bytes;
}

} // namespace

std::vector<const Value *> subgraphReads(const Node &n) {
  std::vector<const Value *> caps, out;
  if (n.graph())
    collectNodeCaptures(n, *n.graph(), caps);
  for (const Value *v : caps) // in order of first capture, once each
    if (std::find(out.begin(), out.end(), v) == out.end())
      out.push_back(v);
  return out;
}

std::vector<uint8_t> serializeFallbackNode(const Node &n, const std::vector<const Value *> &inputs,
                                           const std::vector<const Value *> &outputs) {
  Graph sub;
  sub.name = "fallback_" + n.name;
  if (n.graph())
    sub.opsets = n.graph()->root()->opsets;
  std::unordered_map<const Value *, Value *> map;
  for (const Value *v : inputs) {
    Value *c = sub.createValue(v->name(), v->type);
    sub.inputs.push_back(c);
    map[v] = c;
  }
  std::vector<Value *> ins;
  for (const Value *v : n.inputs()) {
    if (!v) {
      ins.push_back(nullptr);
      continue;
    }
    auto it = map.find(v);
    if (it == map.end()) {
      TESSEL_CHECK(v->isConstant(), n.describe(), ": input '", v->name(),
                   "' is neither a step argument nor a constant");
      Value *c = sub.createValue(v->name(), v->type);
      c->constant = v->constant;
      sub.initializers.push_back(c);
      it = map.emplace(v, c).first;
    }
    ins.push_back(it->second);
  }
  // Constants that its subgraphs capture travel as initializers of the one-node model (the
  // non-constant captures are among `inputs`): the subgraphs read them by name.
  for (const Value *v : subgraphReads(n)) {
    if (map.count(v))
      continue;
    TESSEL_CHECK(v->isConstant(), n.describe(), ": its subgraph reads '", v->name(),
                 "', which is neither a step argument nor a constant");
    Value *c = sub.createValue(v->name(), v->type);
    c->constant = v->constant;
    sub.initializers.push_back(c);
    // Also a graph input with that initializer as its value: no node of the one-node model
    // uses it (the subgraphs name it), and the writer keeps only initializers in use.
    sub.inputs.push_back(c);
    map.emplace(v, c);
  }
  std::vector<std::string> outNames;
  for (const Value *v : n.outputs())
    outNames.push_back(v ? v->name() : "");
  Node *m = sub.appendNode(n.opType, ins, outNames, n.name);
  m->domain = n.domain;
  m->attrs = n.attrs;
  for (size_t i = 0; i < n.numOutputs(); ++i)
    if (n.output(i)) {
      m->output(i)->type = n.output(i)->type;
      map[n.output(i)] = m->output(i);
    }
  for (const Value *v : outputs) {
    auto it = map.find(v);
    TESSEL_CHECK(it != map.end(), n.describe(), ": '", v->name(), "' is not one of its outputs");
    sub.outputs.push_back(it->second);
  }
  std::string tmpl = (fs::temp_directory_path() / "tessel-fallback-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  int fd = mkstemp(buf.data());
  TESSEL_CHECK(fd >= 0, "cannot create a temporary file ", tmpl, " for fallback node '", n.name, "'");
  ::close(fd);
  std::string path = buf.data();
  try {
    saveOnnx(sub, path);
  } catch (...) {
    std::remove(path.c_str());
    throw;
  }
  return readAndRemove(path);
}

runtime::FallbackKernel interpreterFallbackKernel(const runtime::FallbackNode &node) {
  std::string what = "fallback node '" + node.name + "' (" + node.opType + ")";
  std::string bytes(reinterpret_cast<const char *>(node.payload), size_t(node.payloadSize));
  auto model = std::make_shared<Model>(parseOnnx(bytes, what));
  const Graph &g = *model->graph;
  std::vector<std::string> inNames;
  for (const Value *v : requiredInputs(g))
    inNames.push_back(v->name());
  TESSEL_CHECK(inNames.size() == node.inputs.size(), what, ": the payload has ", inNames.size(),
               " inputs, the step ", node.inputs.size());
  TESSEL_CHECK(g.outputs.size() == node.outputs.size(), what, ": the payload has ",
               g.outputs.size(), " outputs, the step ", node.outputs.size());
  std::vector<runtime::TensorDesc> ins = node.inputs, outs = node.outputs;
  return [model, what, inNames, ins, outs](void *const *args) {
    std::map<std::string, Object> named;
    for (size_t i = 0; i < ins.size(); ++i) {
      Tensor t(DType(uint32_t(ins[i].dtype)), ins[i].shape);
      if (t.nbytes())
        std::memcpy(t.raw(), args[i], t.nbytes());
      named[inNames[i]] = Object(std::move(t));
    }
    Interpreter interp(*model->graph);
    std::map<std::string, Object> results = interp.run(named);
    for (size_t j = 0; j < outs.size(); ++j) {
      const std::string &name = model->graph->outputs[j]->name();
      const Object &o = results[name];
      DType want = DType(uint32_t(outs[j].dtype));
      TESSEL_CHECK(o.isTensor() && o.tensor.dtype() == want && o.tensor.shape() == outs[j].shape,
                   what, ": output '", name, "' is ",
                   o.isTensor() ? o.tensor.typeString() : std::string("not a tensor"),
                   ", the compiled model expects ", dtypeName(want), shapeToString(outs[j].shape));
      if (o.tensor.nbytes())
        std::memcpy(args[ins.size() + j], o.tensor.raw(), o.tensor.nbytes());
    }
  };
}

void registerInterpreterFallback() { runtime::setFallbackHandler(interpreterFallbackKernel); }

} // namespace tessel
