//===- Printer.cpp - the graph IR's text form: printing -------------------===//
//
// Writes a Graph in the text format of docs/ir.md. Parser.cpp reads it back; the two agree on
// which names may be written bare (kept in sync by the round-trip unit tests).
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/Text.h"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <cmath>
#include <cstring>
#include <ostream>
#include <set>
#include <sstream>
#include <type_traits>

namespace tessel {

namespace {

bool isIdentStart(char c) { return std::isalpha((unsigned char)c) || c == '_'; }
bool isIdentChar(char c) { return std::isalnum((unsigned char)c) || c == '_' || c == '.'; }
/// Characters of a bare %value / @graph name.
bool isNameChar(char c) {
  return std::isalnum((unsigned char)c) || c == '_' || c == '.' || c == '$' || c == '-' || c == '/';
}

bool isIdent(std::string_view s) {
  if (s.empty() || !isIdentStart(s[0]))
    return false;
  return std::all_of(s.begin(), s.end(), isIdentChar);
}

void printString(std::ostream &os, std::string_view s) {
  static const char hex[] = "0123456789abcdef";
  os << '"';
  for (char ch : s) {
    unsigned char c = (unsigned char)ch;
    switch (c) {
    case '"': os << "\\\""; break;
    case '\\': os << "\\\\"; break;
    case '\n': os << "\\n"; break;
    case '\t': os << "\\t"; break;
    case '\r': os << "\\r"; break;
    default:
      if (c >= 0x20 && c < 0x7f)
        os << ch;
      else
        os << "\\x" << hex[c >> 4] << hex[c & 15];
    }
  }
  os << '"';
}

/// An identifier-like name (op type, domain, attribute name, dim symbol): bare or quoted.
void printIdent(std::ostream &os, std::string_view s) {
  if (isIdent(s))
    os << s;
  else
    printString(os, s);
}

/// A %value or @graph name (sigil included).
void printName(std::ostream &os, char sigil, std::string_view s) {
  os << sigil;
  if (!s.empty() && std::all_of(s.begin(), s.end(), isNameChar))
    os << s;
  else
    printString(os, s);
}

void printTypeTo(std::ostream &os, const Type &t) {
  switch (t.kind) {
  case Type::Kind::Unknown: os << '?'; return;
  case Type::Kind::Sequence:
  case Type::Kind::Optional:
    os << (t.kind == Type::Kind::Sequence ? "seq<" : "opt<");
    if (t.elem)
      printTypeTo(os, *t.elem);
    else
      os << '?';
    os << '>';
    return;
  case Type::Kind::Tensor: break;
  }
  if (t.dtype == DType::undefined)
    os << '?';
  else
    os << dtypeName(t.dtype);
  if (!t.shape.rankKnown) {
    os << "[*]";
    return;
  }
  os << '[';
  for (size_t i = 0; i < t.shape.dims.size(); ++i) {
    const Dim &d = t.shape.dims[i];
    if (i)
      os << ',';
    if (d.isStatic())
      os << d.value;
    else if (d.isSymbolic())
      printIdent(os, d.symbol);
    else
      os << '?';
  }
  os << ']';
}

// Numbers. Floats print in the shortest decimal form that reads back to the same bits
// (std::to_chars); f16/bf16 search the shortest precision that survives the parser's path
// (decimal -> float -> f16/bf16).
template <class T> std::string floatText(T v) {
  char buf[64];
  if constexpr (std::is_same_v<T, float> || std::is_same_v<T, double>) {
    auto r = std::to_chars(buf, buf + sizeof(buf), v);
    return std::string(buf, r.ptr);
  } else {
    float f = float(v);
    if (std::isnan(f) || std::isinf(f)) {
      auto r = std::to_chars(buf, buf + sizeof(buf), f);
      return std::string(buf, r.ptr);
    }
    // The shortest text among the general formats of each precision and the exact float's
    // shortest form ("65504" rather than "6.55e+04"), that reads back to the same bits.
    auto r0 = std::to_chars(buf, buf + sizeof(buf), f);
    std::string best(buf, r0.ptr);
    for (int p = 1; p <= 9; ++p) {
      auto r = std::to_chars(buf, buf + sizeof(buf), f, std::chars_format::general, p);
      if (size_t(r.ptr - buf) >= best.size())
        continue;
      float back = 0;
      std::from_chars(buf, r.ptr, back);
      if (T(back).bits == v.bits)
        best.assign(buf, r.ptr);
    }
    return best;
  }
}

/// A float attribute: always recognisably a float ("1.0", not "1").
std::string floatAttrText(float f) {
  std::string s = floatText(f);
  if (s.find_first_of(".eEin") == std::string::npos)
    s += ".0";
  return s;
}

template <class T> void printElement(std::ostream &os, const T &v) {
  if constexpr (std::is_same_v<T, bool>)
    os << (v ? "true" : "false");
  else if constexpr (std::is_same_v<T, std::string>)
    printString(os, v);
  else if constexpr (std::is_integral_v<T>)
    os << +v;
  else
    os << floatText(v);
}

template <class T> bool sameElement(const T &a, const T &b) {
  if constexpr (std::is_same_v<T, Float16> || std::is_same_v<T, BFloat16>)
    return a.bits == b.bits;
  else if constexpr (std::is_floating_point_v<T>)
    return std::memcmp(&a, &b, sizeof(T)) == 0;
  else
    return a == b;
}

class Printer {
public:
  Printer(std::ostream &os, const PrintOptions &opts) : os(os), opts(opts) {}

  void graph(const Graph &g, int indent);

private:
  std::ostream &os;
  const PrintOptions &opts;

  void pad(int indent) {
    for (int i = 0; i < indent; ++i)
      os << ' ';
  }
  void value(const Value *v) {
    if (v)
      printName(os, '%', v->name());
    else
      os << '_';
  }
  void tensor(const Tensor &t, bool withType);
  void declaration(const Value *v);
  void node(const Node &n, int indent);
  void attribute(const Attribute &a, int indent);
};

/// `dense<[[1, 2], [3, 4]]> : f32[2,2]`, `dense<0> : f32[8]` (splat) or `hex<"..."> : f32[100]`.
void Printer::tensor(const Tensor &t, bool withType) {
  int64_t n = t.numel();
  if (opts.elideAbove > 0 && n > opts.elideAbove) {
    os << "dense<...>";
  } else if (t.dtype() != DType::string && n > opts.hexAbove) {
    static const char hex[] = "0123456789abcdef";
    const unsigned char *p = static_cast<const unsigned char *>(t.raw());
    std::string s;
    s.reserve(t.nbytes() * 2);
    for (size_t i = 0; i < t.nbytes(); ++i) {
      s += hex[p[i] >> 4];
      s += hex[p[i] & 15];
    }
    os << "hex<\"" << s << "\">";
  } else {
    os << "dense<";
    dispatchAll(t.dtype(), [&](auto tag) {
      using T = decltype(tag);
      const T *d = t.data<T>();
      if (n == 0) {
        os << "[]";
        return;
      }
      bool splat = n > 1 && std::all_of(d, d + n, [&](const T &x) { return sameElement(x, d[0]); });
      if (splat || t.rank() == 0) {
        printElement(os, d[0]);
        return;
      }
      // Nested brackets, one level per dim.
      const auto &shape = t.shape();
      int64_t r = t.rank();
      std::vector<int64_t> idx(r, 0);
      for (int64_t i = 0; i < n; ++i) {
        // open brackets for dims whose index is 0 (from the innermost that just wrapped)
        int64_t open = 0;
        for (int64_t k = r - 1; k >= 0 && idx[k] == 0; --k)
          ++open;
        if (i > 0)
          os << ", ";
        for (int64_t k = 0; k < open; ++k)
          os << '[';
        printElement(os, d[i]);
        // advance the index, closing brackets for dims that wrap
        for (int64_t k = r - 1; k >= 0; --k) {
          if (++idx[k] < shape[k])
            break;
          idx[k] = 0;
          os << ']';
        }
      }
    });
    os << '>';
  }
  if (withType)
    os << " : " << dtypeName(t.dtype()) << t.shapeString();
}

/// `%w: f32[2] = dense<[1, 2]>` (the tensor's type is left out when it equals the value's).
void Printer::declaration(const Value *v) {
  value(v);
  Type ct = Type::tensor(v->constant.dtype(), Shape::of(v->constant.shape()));
  os << ": ";
  printTypeTo(os, v->type);
  os << " = ";
  tensor(v->constant, !(v->type == ct));
}

void Printer::attribute(const Attribute &a, int indent) {
  switch (a.kind) {
  case Attribute::Kind::Int: os << a.i; return;
  case Attribute::Kind::Float: os << floatAttrText(a.f); return;
  case Attribute::Kind::String: printString(os, a.s); return;
  case Attribute::Kind::Tensor:
    if (a.t.defined())
      tensor(a.t, true);
    else
      os << "dense<[]> : f32[0]"; // an attribute always holds a tensor; undefined is not expected
    return;
  case Attribute::Kind::Graph:
    if (a.g)
      graph(*a.g, indent);
    else
    {
      os << "graph() {\n";
      pad(indent + 2);
      os << "return\n";
      pad(indent);
      os << '}';
    }
    return;
  case Attribute::Kind::TypeAttr:
    os << "type<";
    printTypeTo(os, a.type);
    os << '>';
    return;
  default: break;
  }
  // lists
  os << '[';
  size_t n = 0;
  switch (a.kind) {
  case Attribute::Kind::Ints:
    n = a.ints.size();
    for (size_t i = 0; i < n; ++i)
      os << (i ? ", " : "") << a.ints[i];
    break;
  case Attribute::Kind::Floats:
    n = a.floats.size();
    for (size_t i = 0; i < n; ++i)
      os << (i ? ", " : "") << floatAttrText(a.floats[i]);
    break;
  case Attribute::Kind::Strings:
    n = a.strings.size();
    for (size_t i = 0; i < n; ++i) {
      os << (i ? ", " : "");
      printString(os, a.strings[i]);
    }
    break;
  case Attribute::Kind::Tensors:
    n = a.tensors.size();
    for (size_t i = 0; i < n; ++i) {
      os << (i ? ", " : "");
      tensor(a.tensors[i], true);
    }
    break;
  case Attribute::Kind::Graphs:
    n = 0;
    for (auto &sg : a.graphs) {
      if (!sg)
        continue;
      os << (n++ ? ", " : "");
      graph(*sg, indent);
    }
    break;
  default: break;
  }
  os << ']';
  if (n == 0)
    os << " : " << attributeKindName(a.kind);
}

void Printer::node(const Node &n, int indent) {
  pad(indent);
  if (n.numOutputs()) {
    for (size_t i = 0; i < n.numOutputs(); ++i) {
      if (i)
        os << ", ";
      value(n.output(i));
    }
    os << " = ";
  }
  if (!n.domain.empty()) {
    printIdent(os, n.domain);
    os << "::";
  }
  static const std::set<std::string_view> keywords = {"return", "graph", "dense", "hex", "const",
                                                      "capture", "type", "_"};
  if (keywords.count(n.opType))
    printString(os, n.opType);
  else
    printIdent(os, n.opType);
  os << '(';
  for (size_t i = 0; i < n.numInputs(); ++i) {
    if (i)
      os << ", ";
    value(n.input(i));
  }
  os << ')';
  if (!n.name.empty() || !n.attrs.empty()) {
    os << " {";
    bool first = true;
    if (!n.name.empty()) {
      os << "name = ";
      printString(os, n.name);
      first = false;
    }
    for (auto &[k, a] : n.attrs) {
      if (!first)
        os << ", ";
      first = false;
      if (k == "name")
        printString(os, k); // a bare `name` is the node's name
      else
        printIdent(os, k);
      os << " = ";
      attribute(a, indent);
    }
    os << '}';
  }
  std::vector<const Value *> present;
  bool anyType = false;
  for (const Value *v : n.outputs())
    if (v) {
      present.push_back(v);
      anyType |= v->type.kind != Type::Kind::Unknown;
    }
  if (anyType) {
    os << " : ";
    if (present.size() != 1)
      os << '(';
    for (size_t i = 0; i < present.size(); ++i) {
      if (i)
        os << ", ";
      printTypeTo(os, present[i]->type);
    }
    if (present.size() != 1)
      os << ')';
  }
  os << '\n';
}

void Printer::graph(const Graph &g, int indent) {
  os << "graph";
  if (!g.name.empty()) {
    os << ' ';
    printName(os, '@', g.name);
  }
  os << '(';
  std::set<const Value *> initSet(g.initializers.begin(), g.initializers.end());
  std::set<const Value *> inputSet(g.inputs.begin(), g.inputs.end());
  for (size_t i = 0; i < g.inputs.size(); ++i) {
    const Value *v = g.inputs[i];
    if (i)
      os << ", ";
    if (!v) {
      os << '_';
      continue;
    }
    if (v->isConstant() && initSet.count(v)) {
      declaration(v);
      continue;
    }
    value(v);
    if (v->type.kind != Type::Kind::Unknown) {
      os << ": ";
      printTypeTo(os, v->type);
    }
  }
  os << ')';
  if (!g.opsets.empty()) {
    os << " opset {";
    bool first = true;
    for (auto &[dom, ver] : g.opsets) {
      os << (first ? "" : ", ");
      first = false;
      printString(os, dom);
      os << ": " << ver;
    }
    os << '}';
  }
  os << " {\n";
  int inner = indent + 2;
  // Captures that the parser cannot recreate implicitly (renamed, or retyped).
  for (auto &vp : g.values()) {
    const Value *v = vp.get();
    if (!v->outer)
      continue;
    bool implicit = v->name() == v->outer->name() && v->type == v->outer->type && g.parent &&
                    g.parent->findValue(v->name()) == v->outer;
    if (implicit)
      continue;
    pad(inner);
    value(v); // the type is always written: an omitted one would mean "the outer value's"
    os << ": ";
    printTypeTo(os, v->type);
    os << " = capture ";
    value(v->outer);
    os << '\n';
  }
  // Initializers that are not inputs, then free constants (folded values without a producer).
  for (const Value *v : g.initializers) {
    if (!v || inputSet.count(v) || !v->isConstant())
      continue;
    pad(inner);
    declaration(v);
    os << '\n';
  }
  for (auto &vp : g.values()) {
    const Value *v = vp.get();
    if (!v->isConstant() || v->producer() || v->outer || inputSet.count(v) || initSet.count(v))
      continue;
    pad(inner);
    value(v);
    os << ": ";
    printTypeTo(os, v->type);
    os << " = const ";
    Type ct = Type::tensor(v->constant.dtype(), Shape::of(v->constant.shape()));
    tensor(v->constant, !(v->type == ct));
    os << '\n';
  }
  for (auto &np : g.nodes())
    node(*np, inner);
  pad(inner);
  os << "return";
  for (size_t i = 0; i < g.outputs.size(); ++i) {
    os << (i ? ", " : " ");
    value(g.outputs[i]);
  }
  os << '\n';
  pad(indent);
  os << '}';
}

} // namespace

std::string printType(const Type &t) {
  std::ostringstream os;
  printTypeTo(os, t);
  return os.str();
}

void printGraph(std::ostream &os, const Graph &g, const PrintOptions &opts) {
  Printer(os, opts).graph(g, 0);
  os << '\n';
}

void printGraph(std::ostream &os, const Graph &g) { printGraph(os, g, PrintOptions()); }

std::string printGraph(const Graph &g) {
  std::ostringstream os;
  printGraph(os, g);
  return os.str();
}

} // namespace tessel
