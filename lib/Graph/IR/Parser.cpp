//===- Parser.cpp - the graph IR's text form: parsing ---------------------===//
//
// Reads the text format of docs/ir.md (written by Printer.cpp) into a Graph. The text is
// untrusted (hand-written tests, fuzzers): every problem is a tessel::Error
// "<source>:<line>:<col>: error: <what was wrong>, <what was expected>"; nesting is bounded so
// deep input cannot overflow the stack, and tensor sizes are checked before allocating.
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/Text.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <limits>
#include <set>
#include <type_traits>

namespace tessel {

namespace {

/// Nesting limit for graphs, types, lists and tensor literal brackets together.
constexpr int kMaxDepth = 200;
/// The largest tensor a splat literal (`dense<0> : f32[...]`) may create.
constexpr uint64_t kMaxSplatBytes = uint64_t(256) << 20;

enum class TK { Eof, Ident, Value, Global, Int, Float, String, Punct, Scope, Ellipsis };

struct Token {
  TK kind = TK::Eof;
  char punct = 0;   // TK::Punct
  std::string text; // identifier, number text, decoded string / name
  size_t begin = 0, end = 0;
  int line = 1, col = 1;
};

bool isIdentStart(char c) { return std::isalpha((unsigned char)c) || c == '_'; }
bool isIdentChar(char c) { return std::isalnum((unsigned char)c) || c == '_' || c == '.'; }
bool isNameChar(char c) {
  return std::isalnum((unsigned char)c) || c == '_' || c == '.' || c == '$' || c == '-' || c == '/';
}

class Lexer {
public:
  Lexer(std::string_view src, const std::string &source) : src(src), source(source) {}

  std::vector<Token> run() {
    std::vector<Token> toks;
    for (;;) {
      toks.push_back(lexOne());
      if (toks.back().kind == TK::Eof)
        return toks;
    }
  }

private:
  std::string_view src;
  const std::string &source;
  size_t pos = 0;
  int line = 1, col = 1;

  char cur(size_t k = 0) const { return pos + k < src.size() ? src[pos + k] : '\0'; }
  bool atEnd(size_t k = 0) const { return pos + k >= src.size(); }
  void advance() {
    if (src[pos] == '\n') {
      ++line;
      col = 1;
    } else {
      ++col;
    }
    ++pos;
  }
  [[noreturn]] void error(int l, int c, const std::string &msg) {
    fail(source, ":", l, ":", c, ": error: ", msg);
  }
  static std::string showChar(char ch) {
    unsigned char c = (unsigned char)ch;
    if (c >= 0x20 && c < 0x7f)
      return std::string("'") + ch + "'";
    static const char hex[] = "0123456789abcdef";
    return std::string("byte 0x") + hex[c >> 4] + hex[c & 15];
  }

  void skipSpace() {
    while (!atEnd()) {
      char c = cur();
      if (c == ' ' || c == '\t' || c == '\n' || c == '\r') {
        advance();
      } else if (c == '/' && cur(1) == '/') {
        while (!atEnd() && cur() != '\n')
          advance();
      } else {
        return;
      }
    }
  }

  /// A quoted string starting at the opening quote; returns the decoded bytes.
  std::string lexString() {
    int l = line, c = col;
    advance(); // "
    std::string out;
    for (;;) {
      if (atEnd() || cur() == '\n')
        error(l, c, "unterminated string (a string ends with '\"' on the same line)");
      char ch = cur();
      if (ch == '"') {
        advance();
        return out;
      }
      if (ch != '\\') {
        out += ch;
        advance();
        continue;
      }
      int el = line, ec = col;
      advance();
      char e = atEnd() ? '\0' : cur();
      switch (e) {
      case '"': out += '"'; advance(); break;
      case '\\': out += '\\'; advance(); break;
      case 'n': out += '\n'; advance(); break;
      case 't': out += '\t'; advance(); break;
      case 'r': out += '\r'; advance(); break;
      case 'x': {
        advance();
        int v = 0;
        for (int k = 0; k < 2; ++k) {
          char h = atEnd() ? '\0' : cur();
          int d = h >= '0' && h <= '9'   ? h - '0'
                  : h >= 'a' && h <= 'f' ? h - 'a' + 10
                  : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                         : -1;
          if (d < 0)
            error(el, ec, "invalid escape in string: \\x needs two hex digits");
          v = v * 16 + d;
          advance();
        }
        out += char(v);
        break;
      }
      default:
        error(el, ec, "invalid escape in string (expected \\\", \\\\, \\n, \\t, \\r or \\xHH)");
      }
    }
  }

  Token lexOne() {
    skipSpace();
    Token t;
    t.line = line;
    t.col = col;
    t.begin = pos;
    if (atEnd()) {
      t.kind = TK::Eof;
      t.end = pos;
      return t;
    }
    char c = cur();
    if (c == '%' || c == '@') {
      t.kind = c == '%' ? TK::Value : TK::Global;
      advance();
      if (cur() == '"' && !atEnd()) {
        t.text = lexString();
      } else {
        while (!atEnd() && isNameChar(cur())) {
          t.text += cur();
          advance();
        }
        if (t.text.empty())
          error(t.line, t.col, std::string("expected a name after '") + c +
                                   "' (letters, digits, _ . $ - / or a quoted string)");
      }
    } else if (c == '"') {
      t.kind = TK::String;
      t.text = lexString();
    } else if (isIdentStart(c)) {
      t.kind = TK::Ident;
      while (!atEnd() && isIdentChar(cur())) {
        t.text += cur();
        advance();
      }
    } else if (std::isdigit((unsigned char)c) || (c == '-' && (std::isdigit((unsigned char)cur(1)) ||
                                                               cur(1) == '.' || cur(1) == 'i' ||
                                                               cur(1) == 'n'))) {
      lexNumber(t);
    } else if (c == ':' && cur(1) == ':') {
      t.kind = TK::Scope;
      advance();
      advance();
    } else if (c == '.' && cur(1) == '.' && cur(2) == '.') {
      t.kind = TK::Ellipsis;
      advance();
      advance();
      advance();
    } else if (c != '\0' && std::strchr("()[]{}<>,:=?*", c)) {
      t.kind = TK::Punct;
      t.punct = c;
      advance();
    } else {
      error(t.line, t.col, "unexpected character " + showChar(c));
    }
    t.end = pos;
    return t;
  }

  void lexNumber(Token &t) {
    bool isFloat = false;
    if (cur() == '-') {
      t.text += '-';
      advance();
      if (cur() == 'i' || cur() == 'n') { // -inf, -nan
        std::string w;
        while (!atEnd() && isIdentChar(cur())) {
          w += cur();
          advance();
        }
        if (w != "inf" && w != "nan")
          error(t.line, t.col, "invalid number '-" + w + "' (expected digits, -inf or -nan)");
        t.kind = TK::Float;
        t.text += w;
        return;
      }
    }
    size_t digits = 0;
    auto takeDigits = [&] {
      while (!atEnd() && std::isdigit((unsigned char)cur())) {
        t.text += cur();
        advance();
        ++digits;
      }
    };
    takeDigits();
    if (cur() == '.') {
      isFloat = true;
      t.text += '.';
      advance();
      takeDigits();
    }
    if (digits == 0)
      error(t.line, t.col, "invalid number (expected digits)");
    if (cur() == 'e' || cur() == 'E') {
      isFloat = true;
      t.text += cur();
      advance();
      if (cur() == '+' || cur() == '-') {
        t.text += cur();
        advance();
      }
      size_t before = digits;
      takeDigits();
      if (digits == before)
        error(t.line, t.col, "invalid number '" + t.text + "' (expected digits after the exponent)");
    }
    if (!atEnd() && (isIdentChar(cur()) || cur() == '%'))
      error(line, col, "unexpected " + showChar(cur()) + " after number '" + t.text + "'");
    t.kind = isFloat ? TK::Float : TK::Int;
  }
};

//===----------------------------------------------------------------------===//
// Number conversion
//===----------------------------------------------------------------------===//

bool parseDoubleText(const std::string &s, double &out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  if (r.ec == std::errc() && r.ptr == s.data() + s.size())
    return true;
  if (r.ec == std::errc::result_out_of_range) { // overflow -> inf, underflow -> 0 (strtod)
    char *end = nullptr;
    out = std::strtod(s.c_str(), &end);
    return end == s.c_str() + s.size();
  }
  return false;
}

bool parseFloatText(const std::string &s, float &out) {
  auto r = std::from_chars(s.data(), s.data() + s.size(), out);
  if (r.ec == std::errc() && r.ptr == s.data() + s.size())
    return true;
  if (r.ec == std::errc::result_out_of_range) {
    char *end = nullptr;
    out = std::strtof(s.c_str(), &end);
    return end == s.c_str() + s.size();
  }
  return false;
}

//===----------------------------------------------------------------------===//
// Parser
//===----------------------------------------------------------------------===//

class Parser {
public:
  Parser(std::vector<Token> toks, std::string_view src, const std::string &source)
      : toks(std::move(toks)), src(src), source(source) {}

  std::unique_ptr<Graph> parseTop() {
    auto g = std::make_unique<Graph>();
    g->sourceFile = source;
    expectKeyword("graph", "at the start of the text");
    parseGraphBody(*g);
    if (peek().kind != TK::Eof)
      error(peek(), "expected end of input after the graph's closing '}'");
    return g;
  }

private:
  std::vector<Token> toks;
  std::string_view src;
  const std::string &source;
  size_t pos = 0;
  int depth = 0;

  struct DepthGuard {
    Parser &p;
    DepthGuard(Parser &p, const Token &at) : p(p) {
      if (++p.depth > kMaxDepth)
        p.error(at, "nesting deeper than ", kMaxDepth, " levels");
    }
    ~DepthGuard() { --p.depth; }
  };

  const Token &peek(size_t k = 0) const {
    size_t i = std::min(pos + k, toks.size() - 1);
    return toks[i];
  }
  const Token &next() {
    const Token &t = toks[pos];
    if (pos + 1 < toks.size())
      ++pos;
    return t;
  }

  std::string describe(const Token &t) const {
    if (t.kind == TK::Eof)
      return "end of input";
    std::string s(src.substr(t.begin, t.end - t.begin));
    if (s.size() > 40)
      s = s.substr(0, 37) + "...";
    return "'" + s + "'";
  }
  template <class... Args> [[noreturn]] void error(const Token &t, Args &&...args) {
    fail(source, ":", t.line, ":", t.col, ": error: ", std::forward<Args>(args)...);
  }
  /// "expected X <context>, got 'tok'".
  template <class... Args> [[noreturn]] void expected(const Token &t, Args &&...args) {
    error(t, "expected ", std::forward<Args>(args)..., ", got ", describe(t));
  }

  bool isPunct(char c, size_t k = 0) const {
    return peek(k).kind == TK::Punct && peek(k).punct == c;
  }
  bool isKeyword(const char *kw, size_t k = 0) const {
    return peek(k).kind == TK::Ident && peek(k).text == kw;
  }
  bool consumePunct(char c) {
    if (!isPunct(c))
      return false;
    next();
    return true;
  }
  void expectPunct(char c, const char *context) {
    if (!isPunct(c))
      expected(peek(), "'", c, "' ", context);
    next();
  }
  void expectKeyword(const char *kw, const char *context) {
    if (!isKeyword(kw))
      expected(peek(), "'", kw, "' ", context);
    next();
  }

  //===--------------------------------------------------------------------===//
  // Types
  //===--------------------------------------------------------------------===//

  Shape parseShape() {
    expectPunct('[', "to start a shape (f32[2,3], f32[] for a scalar, f32[*] for unknown rank)");
    if (consumePunct('*')) {
      expectPunct(']', "after '*' (unknown rank)");
      return Shape::unknownRank();
    }
    std::vector<Dim> dims;
    if (consumePunct(']'))
      return Shape(std::move(dims));
    for (;;) {
      const Token &t = peek();
      if (t.kind == TK::Int) {
        int64_t v = 0;
        auto r = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
        if (r.ec != std::errc() || v < 0)
          error(t, "dimension ", describe(t), " is out of range (expected 0 .. 2^63-1)");
        dims.push_back(Dim(v));
      } else if (t.kind == TK::Ident || t.kind == TK::String) {
        dims.push_back(Dim::sym(t.text));
      } else if (t.kind == TK::Punct && t.punct == '?') {
        dims.push_back(Dim());
      } else {
        expected(t, "a dimension (a number, a symbol such as N, or ?)");
      }
      next();
      if (consumePunct(']'))
        return Shape(std::move(dims));
      if (!consumePunct(','))
        expected(peek(), "',' or ']' in a shape");
    }
  }

  Type parseType() {
    const Token &t = peek();
    DepthGuard guard(*this, t);
    if (t.kind == TK::Punct && t.punct == '?') {
      next();
      if (isPunct('['))
        return Type::tensor(DType::undefined, parseShape());
      return Type::unknown();
    }
    if (t.kind == TK::Ident && (t.text == "seq" || t.text == "opt") && isPunct('<', 1)) {
      bool seq = t.text == "seq";
      next();
      next();
      Type e = parseType();
      expectPunct('>', seq ? "to close 'seq<'" : "to close 'opt<'");
      return seq ? Type::sequence(std::move(e)) : Type::optional(std::move(e));
    }
    if (t.kind == TK::Ident) {
      if (auto dt = parseDType(t.text)) {
        next();
        return Type::tensor(*dt, parseShape());
      }
      error(t, "unknown element type '", t.text,
            "' (expected f32, f16, bf16, f64, i8, u8, i16, u16, i32, u32, i64, u64, bool or str)");
    }
    expected(t, "a type (f32[2,N,?], f32[*], ?, seq<...> or opt<...>)");
  }

  //===--------------------------------------------------------------------===//
  // Tensor literals
  //===--------------------------------------------------------------------===//

  /// Brackets of a `dense<...>` literal: appends the leaf tokens, returns the nested shape.
  std::vector<int64_t> parseNested(std::vector<const Token *> &leaves) {
    const Token &t = peek();
    DepthGuard guard(*this, t);
    if (t.kind == TK::Punct && t.punct == '[') {
      next();
      if (consumePunct(']'))
        return {0};
      std::vector<int64_t> first = parseNested(leaves);
      int64_t count = 1;
      while (consumePunct(',')) {
        const Token &at = peek();
        std::vector<int64_t> s = parseNested(leaves);
        if (s != first)
          error(at, "ragged tensor literal: this element has shape ", shapeToString(s),
                ", the first one ", shapeToString(first));
        ++count;
      }
      if (!isPunct(']'))
        expected(peek(), "',' or ']' in a tensor literal");
      next();
      first.insert(first.begin(), count);
      return first;
    }
    if (t.kind == TK::Int || t.kind == TK::Float || t.kind == TK::String ||
        t.kind == TK::Ident) {
      leaves.push_back(&t);
      next();
      return {};
    }
    expected(t, "a tensor element or '['");
  }

  template <class T> void convertLeaf(const Token &t, T &out, DType dt) {
    if constexpr (std::is_same_v<T, std::string>) {
      if (t.kind != TK::String)
        expected(t, "a quoted string (the tensor is of type str)");
      out = t.text;
    } else if constexpr (std::is_same_v<T, bool>) {
      if (t.kind == TK::Ident && (t.text == "true" || t.text == "false"))
        out = t.text == "true";
      else if (t.kind == TK::Int && (t.text == "0" || t.text == "1"))
        out = t.text == "1";
      else
        expected(t, "true or false (the tensor is of type bool)");
    } else if constexpr (std::is_integral_v<T>) {
      if (t.kind != TK::Int)
        expected(t, "an integer (the tensor is of type ", dtypeName(dt), ")");
      using Wide = std::conditional_t<std::is_signed_v<T>, int64_t, uint64_t>;
      Wide v = 0;
      auto r = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
      if (r.ec != std::errc() || r.ptr != t.text.data() + t.text.size() ||
          v < Wide(std::numeric_limits<T>::lowest()) || v > Wide(std::numeric_limits<T>::max()))
        error(t, "integer ", t.text, " is out of range for ", dtypeName(dt));
      out = T(v);
    } else {
      out = T(parseFloatToken<std::conditional_t<std::is_same_v<T, double>, double, float>>(t));
    }
  }

  /// A float from an Int, Float or inf/nan token.
  template <class F> F parseFloatToken(const Token &t) {
    bool ok = false;
    F v = 0;
    if (t.kind == TK::Int || t.kind == TK::Float ||
        (t.kind == TK::Ident && (t.text == "inf" || t.text == "nan"))) {
      if constexpr (std::is_same_v<F, double>)
        ok = parseDoubleText(t.text, v);
      else
        ok = parseFloatText(t.text, v);
    }
    if (!ok)
      expected(t, "a number (digits, inf or nan)");
    return v;
  }

  /// `dense<DATA> [: type]` or `hex<"..."> [: type]`; `declared` supplies the type when the
  /// literal has none (a declaration `%w: f32[2] = dense<[1, 2]>`).
  Tensor parseTensorLiteral(const Type *declared) {
    const Token &kw = next(); // dense | hex
    bool isHex = kw.text == "hex";
    expectPunct('<', isHex ? "after 'hex'" : "after 'dense'");
    std::vector<const Token *> leaves;
    std::vector<int64_t> dataShape;
    const Token *hexTok = nullptr;
    const Token &dataStart = peek();
    if (isHex) {
      if (peek().kind != TK::String)
        expected(peek(), "a quoted string of hex digits in hex<...>");
      hexTok = &next();
    } else {
      if (peek().kind == TK::Ellipsis)
        error(peek(), "the tensor's data was elided when it was printed (dense<...>); print "
                      "without PrintOptions::elideAbove to get text that parses");
      dataShape = parseNested(leaves);
    }
    expectPunct('>', isHex ? "to close 'hex<'" : "to close 'dense<'");
    const Token &typeTok = peek();
    Type ty;
    if (consumePunct(':')) {
      ty = parseType();
    } else if (declared && declared->isTensor() && declared->dtype != DType::undefined &&
               declared->shape.isStatic()) {
      ty = *declared;
    } else {
      error(kw, "a tensor literal needs its type, e.g. dense<[1, 2]> : f32[2] (or a "
                     "declared static type: %w: f32[2] = dense<[1, 2]>)");
    }
    if (!ty.isTensor() || ty.dtype == DType::undefined || !ty.shape.isStatic())
      error(typeTok, "the type of a tensor literal must have an element type and static dims, got ",
            printType(ty));
    std::vector<int64_t> shape = ty.shape.staticDims();
    int64_t numel = 0;
    try {
      numel = checkedNumel(shape, dtypeSize(ty.dtype), "tensor literal");
    } catch (const Error &e) {
      error(typeTok, e.what());
    }
    if (isHex) {
      if (ty.dtype == DType::string)
        error(typeTok, "a hex<...> literal cannot hold strings (use dense<[\"a\", ...]>)");
      size_t nbytes = size_t(numel) * dtypeSize(ty.dtype);
      if (hexTok->text.size() != nbytes * 2)
        error(*hexTok, "hex<...> has ", hexTok->text.size(), " hex digits, expected ", nbytes * 2,
              " (2 per byte of ", printType(ty), ")");
      Tensor out = makeTensor(ty.dtype, shape, typeTok);
      unsigned char *p = static_cast<unsigned char *>(out.raw());
      for (size_t i = 0; i < nbytes; ++i) {
        int v = 0;
        for (int k = 0; k < 2; ++k) {
          char h = hexTok->text[2 * i + k];
          int d = h >= '0' && h <= '9'   ? h - '0'
                  : h >= 'a' && h <= 'f' ? h - 'a' + 10
                  : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                         : -1;
          if (d < 0)
            error(*hexTok, "hex<...> contains a character that is not a hex digit");
          v = v * 16 + d;
        }
        p[i] = (unsigned char)v;
      }
      if (ty.dtype == DType::boolean)
        for (size_t i = 0; i < nbytes; ++i)
          p[i] = p[i] != 0;
      return out;
    }
    bool splat = dataShape.empty() && !shape.empty();
    if (splat) {
      if (numel == 0)
        error(dataStart, "a tensor of type ", printType(ty), " has no elements: write dense<[]>");
      if (uint64_t(numel) * dtypeSize(ty.dtype) > kMaxSplatBytes)
        error(typeTok, "splat tensor of type ", printType(ty), " is too large (limit ",
              kMaxSplatBytes, " bytes)");
    } else if (dataShape != shape && !(numel == 0 && dataShape == std::vector<int64_t>{0})) {
      error(dataStart, "tensor data has shape ", shapeToString(dataShape), " but the type is ",
            printType(ty));
    }
    Tensor out = makeTensor(ty.dtype, shape, typeTok);
    dispatchAll(ty.dtype, [&](auto tag) {
      using T = decltype(tag);
      T *d = out.data<T>();
      if (splat) {
        T v{};
        convertLeaf(*leaves[0], v, ty.dtype);
        for (int64_t i = 0; i < numel; ++i)
          d[i] = v;
        return;
      }
      for (int64_t i = 0; i < numel; ++i)
        convertLeaf(*leaves[i], d[i], ty.dtype);
    });
    return out;
  }

  Tensor makeTensor(DType dt, const std::vector<int64_t> &shape, const Token &at) {
    try {
      return Tensor(dt, shape);
    } catch (const Error &e) {
      error(at, e.what());
    }
  }

  bool atTensorLiteral(size_t k = 0) const {
    return (isKeyword("dense", k) || isKeyword("hex", k)) && isPunct('<', k + 1);
  }

  //===--------------------------------------------------------------------===//
  // Attributes
  //===--------------------------------------------------------------------===//

  enum class Elem { Int, Float, String, Tensor, Graph, None };

  Elem classify(size_t k = 0) const {
    const Token &t = peek(k);
    if (t.kind == TK::Int)
      return Elem::Int;
    if (t.kind == TK::Float || (t.kind == TK::Ident && (t.text == "inf" || t.text == "nan")))
      return Elem::Float;
    if (t.kind == TK::String)
      return Elem::String;
    if (atTensorLiteral(k))
      return Elem::Tensor;
    if (isKeyword("graph", k))
      return Elem::Graph;
    return Elem::None;
  }

  int64_t parseIntToken(const Token &t) {
    int64_t v = 0;
    auto r = std::from_chars(t.text.data(), t.text.data() + t.text.size(), v);
    if (r.ec != std::errc() || r.ptr != t.text.data() + t.text.size())
      error(t, "integer ", t.text, " is out of range for a 64-bit integer");
    return v;
  }

  Attribute parseAttrValue(Graph &g) {
    const Token &t = peek();
    Attribute a;
    switch (classify()) {
    case Elem::Int:
      a.kind = Attribute::Kind::Int;
      a.i = parseIntToken(next());
      break;
    case Elem::Float:
      a.kind = Attribute::Kind::Float;
      a.f = parseFloatToken<float>(next());
      break;
    case Elem::String:
      a.kind = Attribute::Kind::String;
      a.s = next().text;
      break;
    case Elem::Tensor:
      a.kind = Attribute::Kind::Tensor;
      a.t = parseTensorLiteral(nullptr);
      return a;
    case Elem::Graph:
      a.kind = Attribute::Kind::Graph;
      a.g = parseSubgraph(g);
      return a;
    case Elem::None:
      if (isKeyword("type") && isPunct('<', 1)) {
        next();
        next();
        a.kind = Attribute::Kind::TypeAttr;
        a.type = parseType();
        expectPunct('>', "to close 'type<'");
        return a;
      }
      if (isPunct('[')) {
        parseAttrList(g, a);
        break;
      }
      expected(t, "an attribute value (1, 0.5, \"s\", [1, 2], dense<...> : T, graph ..., or "
                  "type<T>)");
    }
    // Optional kind suffix: `1 : float`, `[] : floats`.
    if (!isPunct(':'))
      return a;
    next();
    const Token &k = peek();
    if (k.kind != TK::Ident)
      expected(k, "an attribute kind after ':' (int, float, string, ints, floats, strings, "
                  "tensors or graphs)");
    next();
    using K = Attribute::Kind;
    auto empty = [&] {
      return a.ints.empty() && a.floats.empty() && a.strings.empty() && a.tensors.empty() &&
             a.graphs.empty();
    };
    bool isList = a.kind == K::Ints || a.kind == K::Floats || a.kind == K::Strings ||
                  a.kind == K::Tensors || a.kind == K::Graphs;
    const std::string &kn = k.text;
    if (kn == attributeKindName(a.kind))
      return a;
    if (kn == "float" && a.kind == K::Int) {
      a.kind = K::Float;
      a.f = float(a.i);
      return a;
    }
    if (kn == "floats" && a.kind == K::Ints) {
      a.kind = K::Floats;
      for (int64_t v : a.ints)
        a.floats.push_back(float(v));
      a.ints.clear();
      return a;
    }
    if (isList && empty()) {
      if (kn == "ints") a.kind = K::Ints;
      else if (kn == "floats") a.kind = K::Floats;
      else if (kn == "strings") a.kind = K::Strings;
      else if (kn == "tensors") a.kind = K::Tensors;
      else if (kn == "graphs") a.kind = K::Graphs;
      else error(k, "an empty list cannot be of kind '", kn,
                 "' (expected ints, floats, strings, tensors or graphs)");
      return a;
    }
    error(k, "a value of kind ", attributeKindName(a.kind), " cannot be written as '", kn, "'");
  }

  void parseAttrList(Graph &g, Attribute &a) {
    const Token &open = next(); // [
    DepthGuard guard(*this, open);
    a.kind = Attribute::Kind::Ints;
    if (consumePunct(']'))
      return;
    // The list's kind: strings, tensors or graphs by the first element; numbers are floats if
    // any element is a float.
    Elem kind = classify();
    if (kind == Elem::Int || kind == Elem::Float) {
      std::vector<const Token *> nums;
      bool anyFloat = false;
      for (;;) {
        Elem e = classify();
        if (e != Elem::Int && e != Elem::Float)
          expected(peek(), "a number in a list of numbers");
        anyFloat |= e == Elem::Float;
        nums.push_back(&next());
        if (consumePunct(']'))
          break;
        if (!consumePunct(','))
          expected(peek(), "',' or ']' in a list");
      }
      a.kind = anyFloat ? Attribute::Kind::Floats : Attribute::Kind::Ints;
      for (const Token *t : nums) {
        if (anyFloat)
          a.floats.push_back(parseFloatToken<float>(*t));
        else
          a.ints.push_back(parseIntToken(*t));
      }
      return;
    }
    if (kind == Elem::None)
      expected(peek(), "a list element (a number, a string, a tensor literal or a graph)");
    a.kind = kind == Elem::String   ? Attribute::Kind::Strings
             : kind == Elem::Tensor ? Attribute::Kind::Tensors
                                    : Attribute::Kind::Graphs;
    for (;;) {
      if (classify() != kind)
        expected(peek(), "an element of the same kind as the list's first (",
                 attributeKindName(a.kind), ")");
      if (kind == Elem::String)
        a.strings.push_back(next().text);
      else if (kind == Elem::Tensor)
        a.tensors.push_back(parseTensorLiteral(nullptr));
      else
        a.graphs.push_back(parseSubgraph(g));
      if (consumePunct(']'))
        return;
      if (!consumePunct(','))
        expected(peek(), "',' or ']' in a list");
    }
  }

  std::shared_ptr<Graph> parseSubgraph(Graph &parent) {
    const Token &kw = next(); // graph
    DepthGuard guard(*this, kw);
    auto sg = std::make_shared<Graph>();
    sg->parent = &parent;
    sg->sourceFile = parent.sourceFile;
    parseGraphBody(*sg);
    return sg;
  }

  //===--------------------------------------------------------------------===//
  // Values
  //===--------------------------------------------------------------------===//

  /// A name visible in `g`: its own values, else an outer scope's (creating the captures).
  static Value *resolve(Graph &g, const std::string &name) {
    if (Value *v = g.findValue(name))
      return v;
    if (!g.parent)
      return nullptr;
    Value *outer = resolve(*g.parent, name);
    if (!outer)
      return nullptr;
    Value *cap = g.createValue(name, outer->type);
    cap->outer = outer;
    return cap;
  }

  /// `%name` (a use) or `_` (omitted).
  Value *parseOperand(Graph &g, const char *context) {
    const Token &t = peek();
    if (t.kind == TK::Ident && t.text == "_") {
      next();
      return nullptr;
    }
    if (t.kind != TK::Value)
      expected(t, "a value (%name) or _ ", context);
    next();
    Value *v = resolve(g, t.text);
    if (!v)
      error(t, "use of undefined value ", describe(t),
            " (values must be defined before they are used)");
    return v;
  }

  void checkNewName(Graph &g, const Token &t) {
    if (g.findValue(t.text))
      error(t, "value ", describe(t), " is defined more than once in this graph");
  }

  Value *newValue(Graph &g, const Token &t, Type type) {
    checkNewName(g, t);
    return g.createValue(t.text, std::move(type));
  }

  //===--------------------------------------------------------------------===//
  // Graphs and statements
  //===--------------------------------------------------------------------===//

  /// After the 'graph' keyword: `[@name] (params) [opset {...}] { statements return ... }`.
  void parseGraphBody(Graph &g) {
    if (peek().kind == TK::Global)
      g.name = next().text;
    expectPunct('(', "to start the graph's inputs");
    if (!consumePunct(')')) {
      for (;;) {
        parseParam(g);
        if (consumePunct(')'))
          break;
        if (!consumePunct(','))
          expected(peek(), "',' or ')' in the graph's inputs");
      }
    }
    if (isKeyword("opset")) {
      next();
      expectPunct('{', "after 'opset'");
      if (!consumePunct('}')) {
        for (;;) {
          const Token &d = peek();
          if (d.kind != TK::String)
            expected(d, "a quoted domain (\"\" for ai.onnx) in the opset list");
          next();
          if (g.opsets.count(d.text))
            error(d, "domain ", describe(d), " appears twice in the opset list");
          expectPunct(':', "after the domain in the opset list");
          const Token &v = peek();
          if (v.kind != TK::Int)
            expected(v, "an opset version (an integer)");
          g.opsets[d.text] = parseIntToken(next());
          if (consumePunct('}'))
            break;
          if (!consumePunct(','))
            expected(peek(), "',' or '}' in the opset list");
        }
      }
    }
    expectPunct('{', "to start the graph's body");
    while (!isKeyword("return"))
      parseStatement(g);
    next(); // return
    if (peek().kind == TK::Value || isKeyword("_")) {
      for (;;) {
        g.outputs.push_back(parseOperand(g, "in 'return'"));
        if (!consumePunct(','))
          break;
      }
    }
    expectPunct('}', "to close the graph after 'return'");
  }

  /// `%x`, `%x: T`, `%w: T = dense<...>`, `%w = dense<...> : T`, or `_`.
  void parseParam(Graph &g) {
    const Token &t = peek();
    if (isKeyword("_")) {
      next();
      g.inputs.push_back(nullptr);
      return;
    }
    if (t.kind != TK::Value)
      expected(t, "a graph input (%name)");
    next();
    checkNewName(g, t);
    Type type;
    bool typed = consumePunct(':');
    if (typed)
      type = parseType();
    if (consumePunct('=')) {
      if (!atTensorLiteral())
        expected(peek(), "a tensor literal (dense<...> or hex<...>) as the input's default");
      Tensor c = parseTensorLiteral(typed ? &type : nullptr);
      if (!typed)
        type = Type::tensor(c.dtype(), Shape::of(c.shape()));
      Value *v = newValue(g, t, type);
      v->constant = std::move(c);
      g.inputs.push_back(v);
      g.initializers.push_back(v);
      return;
    }
    g.inputs.push_back(newValue(g, t, type));
  }

  void parseStatement(Graph &g) {
    const Token &first = peek();
    if (first.kind == TK::Value && (isPunct(':', 1) || isPunct('=', 1)) &&
        (isPunct(':', 1) || atTensorLiteral(2) || (isKeyword("const", 2) && atTensorLiteral(3)) ||
         (isKeyword("capture", 2) && peek(3).kind == TK::Value))) {
      parseDeclaration(g);
      return;
    }
    std::vector<const Token *> results;
    if (first.kind == TK::Value || isKeyword("_")) {
      for (;;) {
        const Token &r = peek();
        if (r.kind != TK::Value && !(r.kind == TK::Ident && r.text == "_"))
          expected(r, "a result (%name or _)");
        results.push_back(&next());
        if (consumePunct('='))
          break;
        if (!consumePunct(','))
          expected(peek(), "',' or '=' after a node's result");
      }
    } else if (first.kind != TK::Ident && first.kind != TK::String) {
      expected(first, "a statement (%y = Op(...), a declaration %w: T = dense<...>, or 'return')");
    }
    parseNode(g, results);
  }

  /// `%w[: T] = dense<...>`, `%c: T = const dense<...>`, `%a: T = capture %b`.
  void parseDeclaration(Graph &g) {
    const Token &name = next();
    checkNewName(g, name);
    Type type;
    bool typed = consumePunct(':');
    if (typed)
      type = parseType();
    expectPunct('=', "after the declared value");
    if (isKeyword("capture")) {
      const Token &kw = next();
      if (!g.parent)
        error(kw, "'capture' is only valid in a subgraph");
      const Token &o = peek();
      if (o.kind != TK::Value)
        expected(o, "the captured outer value (%name) after 'capture'");
      next();
      Value *outer = resolve(*g.parent, o.text);
      if (!outer)
        error(o, "capture of undefined outer value ", describe(o));
      Value *v = newValue(g, name, typed ? type : outer->type);
      v->outer = outer;
      return;
    }
    bool isConst = false;
    if (isKeyword("const")) {
      next();
      isConst = true;
    }
    if (!atTensorLiteral()) {
      if (typed && !isConst)
        error(peek(), "a node's result type goes after the node: %y = Op(%x) : f32[2]");
      expected(peek(), "a tensor literal (dense<...> or hex<...>)");
    }
    Tensor c = parseTensorLiteral(typed ? &type : nullptr);
    if (!typed)
      type = Type::tensor(c.dtype(), Shape::of(c.shape()));
    Value *v = newValue(g, name, type);
    v->constant = std::move(c);
    if (!isConst)
      g.initializers.push_back(v);
  }

  /// `[domain::]Op(%a, _, ...) [{attrs}] [: T | : (T, ...)]`, results already read.
  void parseNode(Graph &g, const std::vector<const Token *> &results) {
    const Token &opTok = peek();
    if (opTok.kind != TK::Ident && opTok.kind != TK::String)
      expected(opTok, "an op type (e.g. Relu, or com.microsoft::Gelu)");
    next();
    std::string domain, opType = opTok.text;
    if (peek().kind == TK::Scope) {
      next();
      const Token &o = peek();
      if (o.kind != TK::Ident && o.kind != TK::String)
        expected(o, "an op type after '::'");
      next();
      domain = opType;
      opType = o.text;
    }
    if (opType.empty())
      error(opTok, "the op type is empty");
    expectPunct('(', "after the op type");
    std::vector<Value *> inputs;
    if (!consumePunct(')')) {
      for (;;) {
        inputs.push_back(parseOperand(g, "as a node input"));
        if (consumePunct(')'))
          break;
        if (!consumePunct(','))
          expected(peek(), "',' or ')' after a node input");
      }
    }
    std::string nodeName;
    std::map<std::string, Attribute> attrs;
    if (consumePunct('{') && !consumePunct('}')) {
      for (;;) {
        const Token &k = peek();
        if (k.kind != TK::Ident && k.kind != TK::String)
          expected(k, "an attribute name");
        next();
        expectPunct('=', "after the attribute name");
        if (k.kind == TK::Ident && k.text == "name") {
          const Token &v = peek();
          if (v.kind != TK::String)
            expected(v, "the node's name as a quoted string (an attribute called 'name' is "
                        "written \"name\" = ...)");
          if (!nodeName.empty())
            error(k, "the node's name is given twice");
          nodeName = next().text;
          if (nodeName.empty())
            error(v, "the node's name is empty (leave 'name' out instead)");
        } else {
          if (attrs.count(k.text))
            error(k, "attribute ", describe(k), " is given twice");
          attrs[k.text] = parseAttrValue(g);
        }
        if (consumePunct('}'))
          break;
        if (!consumePunct(','))
          expected(peek(), "',' or '}' after an attribute");
      }
    }
    // Result types.
    size_t present = 0;
    for (const Token *r : results)
      present += r->kind == TK::Value;
    std::vector<Type> types;
    if (isPunct(':')) {
      const Token &colon = next();
      if (consumePunct('(')) {
        if (!consumePunct(')')) {
          for (;;) {
            types.push_back(parseType());
            if (consumePunct(')'))
              break;
            if (!consumePunct(','))
              expected(peek(), "',' or ')' in the list of result types");
          }
        }
      } else {
        types.push_back(parseType());
      }
      if (types.size() != present)
        error(colon, "the node has ", present, " result(s) but ", types.size(),
              " type(s) are given (one per result that is not _)");
    }
    // Results: new, distinct names.
    std::vector<std::string> outNames;
    std::set<std::string> seen;
    for (const Token *r : results) {
      if (r->kind != TK::Value) {
        outNames.emplace_back();
        continue;
      }
      checkNewName(g, *r);
      if (!seen.insert(r->text).second)
        error(*r, "value ", describe(*r), " is defined more than once in this graph");
      outNames.push_back(r->text);
    }
    Node *n = g.appendNode(opType, inputs, outNames, nodeName);
    n->domain = domain;
    n->attrs = std::move(attrs);
    size_t k = 0;
    for (Value *o : n->outputs())
      if (o && k < types.size())
        o->type = types[k++];
  }
};

} // namespace

std::unique_ptr<Graph> parseGraph(std::string_view text, const std::string &sourceName) {
  std::vector<Token> toks = Lexer(text, sourceName).run();
  return Parser(std::move(toks), text, sourceName).parseTop();
}

} // namespace tessel
