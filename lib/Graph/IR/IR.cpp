#include "tessel/Graph/IR.h"

#include <algorithm>
#include <sstream>
#include <unordered_map>

namespace tessel {

std::string Dim::str() const {
  if (isStatic())
    return std::to_string(value);
  if (isSymbolic())
    return symbol;
  return "?";
}

bool Shape::isStatic() const {
  if (!rankKnown)
    return false;
  for (auto &d : dims)
    if (!d.isStatic())
      return false;
  return true;
}

std::vector<int64_t> Shape::staticDims() const {
  std::vector<int64_t> r;
  for (auto &d : dims)
    r.push_back(d.value);
  return r;
}

std::string Shape::str() const {
  if (!rankKnown)
    return "[*]";
  std::string s = "[";
  for (size_t i = 0; i < dims.size(); ++i)
    s += (i ? "," : "") + dims[i].str();
  return s + "]";
}

bool Type::operator==(const Type &o) const {
  if (kind != o.kind)
    return false;
  switch (kind) {
  case Kind::Unknown: return true;
  case Kind::Tensor: return dtype == o.dtype && shape == o.shape;
  default: return (!elem && !o.elem) || (elem && o.elem && *elem == *o.elem);
  }
}

std::string Type::str() const {
  switch (kind) {
  case Kind::Unknown: return "?";
  case Kind::Tensor: return std::string(dtype == DType::undefined ? "?" : dtypeName(dtype)) + shape.str();
  case Kind::Sequence: return "seq<" + (elem ? elem->str() : "?") + ">";
  case Kind::Optional: return "opt<" + (elem ? elem->str() : "?") + ">";
  }
  return "?";
}

std::string_view attributeKindName(Attribute::Kind k) {
  switch (k) {
  case Attribute::Kind::Float: return "float";
  case Attribute::Kind::Int: return "int";
  case Attribute::Kind::String: return "string";
  case Attribute::Kind::Tensor: return "tensor";
  case Attribute::Kind::Graph: return "graph";
  case Attribute::Kind::Floats: return "floats";
  case Attribute::Kind::Ints: return "ints";
  case Attribute::Kind::Strings: return "strings";
  case Attribute::Kind::Tensors: return "tensors";
  case Attribute::Kind::Graphs: return "graphs";
  case Attribute::Kind::TypeAttr: return "type";
  }
  return "?";
}

void Value::replaceAllUsesWith(Value *v) {
  auto uses = uses_;
  for (auto &u : uses)
    u.user->setInput(u.operand, v);
  for (auto &o : graph_->outputs)
    if (o == this)
      o = v;
}

static void removeUse(Value *v, Node *n, size_t operand) {
  if (!v)
    return;
  auto &u = const_cast<std::vector<Use> &>(v->uses());
  for (size_t i = 0; i < u.size(); ++i)
    if (u[i].user == n && u[i].operand == operand) {
      u.erase(u.begin() + i);
      return;
    }
}

void Node::setInput(size_t i, Value *v) {
  TESSEL_CHECK(i < inputs_.size(), describe(), ": input index ", i, " out of range");
  removeUse(inputs_[i], this, i);
  inputs_[i] = v;
  if (v)
    const_cast<std::vector<Use> &>(v->uses()).push_back({this, i});
}

void Node::addInput(Value *v) {
  inputs_.push_back(nullptr);
  setInput(inputs_.size() - 1, v);
}

std::string Node::describe() const {
  std::string s = "node '" + name + "' (" + opType + ")";
  if (graph_ && !graph_->sourceFile.empty())
    s = graph_->root()->sourceFile + ": " + s;
  return s;
}

Value *Graph::createValue(const std::string &name, Type type) {
  TESSEL_CHECK(!name.empty(), "graph '", this->name, "': a value needs a name");
  TESSEL_CHECK(!byName_.count(name), (sourceFile.empty() ? "" : root()->sourceFile + ": "),
               "graph '", this->name, "': value '", name, "' is defined more than once");
  auto v = std::make_unique<Value>();
  v->name_ = name;
  v->type = std::move(type);
  v->graph_ = this;
  Value *p = v.get();
  values_.push_back(std::move(v));
  byName_[name] = p;
  return p;
}

Value *Graph::findValue(const std::string &name) const {
  auto it = byName_.find(name);
  return it == byName_.end() ? nullptr : it->second;
}

void Graph::renameValue(Value *v, const std::string &name) {
  TESSEL_CHECK(v && v->graph_ == this, "graph '", this->name, "': renaming a value of another graph");
  if (v->name_ == name)
    return;
  TESSEL_CHECK(!name.empty() && !byName_.count(name), "graph '", this->name, "': cannot rename '",
               v->name_, "' to '", name, "': the name is taken");
  byName_.erase(v->name_);
  v->name_ = name;
  byName_[name] = v;
}

void Graph::restoreOutputNames(const std::vector<std::string> &names) {
  TESSEL_CHECK(names.size() == outputs.size(), "graph '", this->name, "': ", names.size(),
               " output names for ", outputs.size(), " outputs");
  for (size_t i = 0; i < outputs.size(); ++i) {
    Value *v = outputs[i];
    if (v->name_ == names[i])
      continue;
    if (Value *holder = findValue(names[i]))
      renameValue(holder, uniqueName(names[i] + "_replaced"));
    bool shared = v->isConstant() || !v->producer_ || v->outer;
    for (size_t j = 0; j < outputs.size(); ++j)
      shared |= j != i && outputs[j] == v;
    if (!shared) {
      renameValue(v, names[i]);
      continue;
    }
    Node *id = appendNode("Identity", {v}, {names[i]}, names[i] + "_identity");
    id->outputs_[0]->type = v->type;
    outputs[i] = id->outputs_[0];
  }
}

Node *Graph::appendNode(std::string opType, std::vector<Value *> inputs,
                        const std::vector<std::string> &outputNames, std::string nodeName) {
  auto n = std::make_unique<Node>();
  n->opType = std::move(opType);
  n->name = std::move(nodeName);
  n->graph_ = this;
  Node *p = n.get();
  for (Value *v : inputs)
    p->addInput(v);
  for (size_t i = 0; i < outputNames.size(); ++i) {
    if (outputNames[i].empty()) {
      p->outputs_.push_back(nullptr);
      continue;
    }
    Value *v = createValue(outputNames[i]);
    v->producer_ = p;
    v->producerOutput_ = i;
    p->outputs_.push_back(v);
  }
  nodes_.push_back(std::move(n));
  return p;
}

void Graph::eraseNode(Node *n) {
  for (Value *o : n->outputs_)
    TESSEL_CHECK(!o || o->uses().empty(), n->describe(), ": cannot erase, output '", o->name(),
                 "' still has uses");
  for (size_t i = 0; i < n->inputs_.size(); ++i)
    removeUse(n->inputs_[i], n, i);
  for (Value *o : n->outputs_)
    if (o)
      o->producer_ = nullptr;
  auto it = std::find_if(nodes_.begin(), nodes_.end(), [&](auto &p) { return p.get() == n; });
  if (it != nodes_.end())
    nodes_.erase(it);
}

void collectCaptures(const Graph &sub, const Graph &owner, std::vector<const Value *> &out) {
  for (auto &v : sub.values()) {
    const Value *o = v->outer;
    while (o && o->graph() != &owner)
      o = o->outer;
    if (o)
      out.push_back(o);
  }
  for (auto &n : sub.nodes())
    for (auto &[name, a] : n->attrs) {
      if (a.g)
        collectCaptures(*a.g, owner, out);
      for (auto &sg : a.graphs)
        collectCaptures(*sg, owner, out);
    }
}

void collectNodeCaptures(const Node &n, const Graph &g, std::vector<const Value *> &out) {
  for (auto &[name, a] : n.attrs) {
    if (a.g)
      collectCaptures(*a.g, g, out);
    for (auto &sg : a.graphs)
      if (sg)
        collectCaptures(*sg, g, out);
  }
}

void Graph::sortTopologically() {
  const size_t n = nodes_.size();
  std::unordered_map<const Node *, size_t> index;
  for (size_t i = 0; i < n; ++i)
    index[nodes_[i].get()] = i;
  std::vector<std::vector<size_t>> deps(n);
  for (size_t i = 0; i < n; ++i) {
    std::vector<const Value *> used(nodes_[i]->inputs_.begin(), nodes_[i]->inputs_.end());
    for (auto &[name, a] : nodes_[i]->attrs) {
      if (a.g)
        collectCaptures(*a.g, *this, used);
      for (auto &sg : a.graphs)
        collectCaptures(*sg, *this, used);
    }
    for (const Value *v : used)
      if (v && v->producer_ && v->producer_->graph_ == this)
        deps[i].push_back(index.at(v->producer_));
  }
  // Repeatedly emit the earliest node whose dependencies are all emitted (stable order).
  std::vector<int> state(n, 0); // 0 new, 1 in progress, 2 done
  std::vector<size_t> order;
  for (size_t root = 0; root < n; ++root) {
    if (state[root])
      continue;
    std::vector<std::pair<size_t, size_t>> stack{{root, 0}};
    state[root] = 1;
    while (!stack.empty()) {
      auto &[i, k] = stack.back();
      if (k < deps[i].size()) {
        size_t d = deps[i][k++];
        TESSEL_CHECK(state[d] != 1, nodes_[d]->describe(), ": the graph has a cycle through this node");
        if (state[d] == 0) {
          state[d] = 1;
          stack.push_back({d, 0});
        }
        continue;
      }
      state[i] = 2;
      order.push_back(i);
      stack.pop_back();
    }
  }
  std::vector<std::unique_ptr<Node>> sorted;
  sorted.reserve(n);
  for (size_t i : order)
    sorted.push_back(std::move(nodes_[i]));
  nodes_ = std::move(sorted);
}

std::string Graph::uniqueName(const std::string &base) const {
  if (!findValue(base))
    return base;
  for (int i = 1;; ++i) {
    std::string s = base + "_" + std::to_string(i);
    if (!findValue(s))
      return s;
  }
}

int64_t Graph::opsetVersion(const std::string &domain) const {
  auto it = opsets.find(domain);
  if (it != opsets.end())
    return it->second;
  if (parent)
    return parent->opsetVersion(domain);
  return 0;
}

} // namespace tessel
