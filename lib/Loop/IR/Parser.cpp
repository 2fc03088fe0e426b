//===- Parser.cpp - text to loop IR (see docs/loop-ir.md) -----------------===//
//
// A hand-written lexer and recursive-descent parser for the printer's form. Errors name the
// file, line and column and what was expected.
//
//===----------------------------------------------------------------------===//

#include "tessel/Loop/Text.h"

#include <cctype>
#include <cmath>
#include <cstdlib>
#include <unordered_map>

namespace tessel::loop {

namespace {

enum class Tok { Ident, Var, Func, Number, Punct, End };

struct Token {
  Tok kind;
  std::string text;
  int line, col;
};

bool isIdentChar(char c) { return std::isalnum((unsigned char)c) || c == '_' || c == '.'; }

std::vector<Token> lex(std::string_view s, std::string_view file) {
  std::vector<Token> out;
  int line = 1, col = 1;
  size_t i = 0;
  auto advance = [&](size_t n) {
    for (size_t k = 0; k < n; ++k, ++i) {
      if (s[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
  };
  while (i < s.size()) {
    char c = s[i];
    if (std::isspace((unsigned char)c)) {
      advance(1);
      continue;
    }
    if (c == '/' && i + 1 < s.size() && s[i + 1] == '/') {
      while (i < s.size() && s[i] != '\n')
        advance(1);
      continue;
    }
    Token t{Tok::Punct, "", line, col};
    size_t start = i;
    if ((c == '%' || c == '@') && i + 1 < s.size() && isIdentChar(s[i + 1])) {
      size_t j = i + 1;
      while (j < s.size() && isIdentChar(s[j]) &&
             !(s[j] == '.' && j + 1 < s.size() && s[j + 1] == '.'))
        ++j;
      t.kind = c == '%' ? Tok::Var : Tok::Func;
      t.text = std::string(s.substr(i + 1, j - i - 1));
      advance(j - start);
      out.push_back(t);
      continue;
    }
    if (std::isdigit((unsigned char)c)) {
      size_t j = i;
      while (j < s.size() && std::isdigit((unsigned char)s[j]))
        ++j;
      if (j + 1 < s.size() && s[j] == '.' && s[j + 1] != '.') {
        ++j;
        while (j < s.size() && std::isdigit((unsigned char)s[j]))
          ++j;
      }
      if (j < s.size() && (s[j] == 'e' || s[j] == 'E') && j + 1 < s.size() &&
          (std::isdigit((unsigned char)s[j + 1]) || s[j + 1] == '-' || s[j + 1] == '+')) {
        j += 2;
        while (j < s.size() && std::isdigit((unsigned char)s[j]))
          ++j;
      }
      while (j < s.size() && std::isalnum((unsigned char)s[j])) // type suffix
        ++j;
      t.kind = Tok::Number;
      t.text = std::string(s.substr(i, j - i));
      advance(j - start);
      out.push_back(t);
      continue;
    }
    if (std::isalpha((unsigned char)c) || c == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum((unsigned char)s[j]) || s[j] == '_'))
        ++j;
      t.kind = Tok::Ident;
      t.text = std::string(s.substr(i, j - i));
      advance(j - start);
      out.push_back(t);
      continue;
    }
    static const char *kPuncts[] = {"..+", "..", "==", "!=", "<=", ">=", "&&", "||", "(", ")",
                                    "[",   "]",  "{",  "}",  ",",  ":",  ";",  "=",  "<", ">",
                                    "!",   "+",  "-",  "*",  "/",  "%"};
    bool matched = false;
    for (const char *p : kPuncts) {
      std::string_view pv(p);
      if (s.substr(i, pv.size()) == pv) {
        t.text = std::string(pv);
        advance(pv.size());
        out.push_back(t);
        matched = true;
        break;
      }
    }
    if (!matched)
      fail(file, ":", line, ":", col, ": unexpected character '", std::string(1, c), "'");
  }
  out.push_back(Token{Tok::End, "", line, col});
  return out;
}

class Parser {
public:
  Parser(std::string_view text, std::string_view file) : file_(file), toks_(lex(text, file)) {}

  bool atEnd() const { return peek().kind == Tok::End; }

  LoweredFunc func() {
    expectIdent("func");
    LoweredFunc f;
    if (peek().kind != Tok::Func)
      error("a function name like @add_one");
    f.name = next().text;
    expect("(");
    scopes_.clear();
    scopes_.emplace_back();
    buffers_.clear();
    // Pass 1: scalar params (buffer shapes may name scalars declared after them).
    struct Pending {
      std::string name;
      size_t typePos;
    };
    std::vector<Pending> pending;
    std::vector<std::pair<bool, size_t>> order; // (isBuffer, index into pending / params)
    std::vector<Var> scalars;
    while (!isPunct(")")) {
      if (!order.empty())
        expect(",");
      if (peek().kind != Tok::Var)
        error("a parameter like %A: f32[%n] or %n: i64");
      std::string name = next().text;
      expect(":");
      size_t pos = pos_;
      if (isIdent() && peekAt(1).text == "[") {
        pending.push_back({name, pos});
        order.push_back({true, pending.size() - 1});
        skipBufferType();
      } else {
        Type t = type();
        Var v(name, t);
        define(name, v);
        scalars.push_back(v);
        order.push_back({false, scalars.size() - 1});
      }
    }
    size_t close = pos_;
    std::vector<Buffer> bufs;
    for (auto &p : pending) {
      pos_ = p.typePos;
      bufs.push_back(bufferType(p.name, "global"));
      TESSEL_CHECK(!buffers_.count(p.name), file_, ": duplicate buffer parameter '", p.name, "'");
      buffers_[p.name] = bufs.back();
    }
    pos_ = close;
    expect(")");
    for (auto &[isBuf, ix] : order)
      f.params.push_back(isBuf ? Param::ofBuffer(bufs[ix]) : Param::ofVar(scalars[ix]));
    f.body = block();
    return f;
  }

private:
  //===--- tokens ---===//
  const Token &peek() const { return toks_[pos_]; }
  const Token &peekAt(size_t k) const { return toks_[std::min(pos_ + k, toks_.size() - 1)]; }
  const Token &next() { return toks_[pos_ < toks_.size() - 1 ? pos_++ : pos_]; }
  bool isPunct(std::string_view p) const { return peek().kind == Tok::Punct && peek().text == p; }
  bool isIdent(std::string_view w = {}) const {
    return peek().kind == Tok::Ident && (w.empty() || peek().text == w);
  }
  bool accept(std::string_view p) {
    if (!isPunct(p))
      return false;
    next();
    return true;
  }
  [[noreturn]] void error(std::string_view expected) const {
    const Token &t = peek();
    fail(file_, ":", t.line, ":", t.col, ": expected ", expected, ", got ",
         t.kind == Tok::End ? std::string("end of input") : "'" + t.text + "'");
  }
  void expect(std::string_view p) {
    if (!accept(p))
      error(concat("'", p, "'"));
  }
  void expectIdent(std::string_view w) {
    if (!isIdent(w))
      error(concat("'", w, "'"));
    next();
  }

  //===--- scopes ---===//
  void define(const std::string &name, const Var &v) { scopes_.back()[name] = v; }
  Var lookup(const Token &t) {
    for (size_t i = scopes_.size(); i-- > 0;) {
      auto it = scopes_[i].find(t.text);
      if (it != scopes_[i].end())
        return it->second;
    }
    fail(file_, ":", t.line, ":", t.col, ": undefined variable %", t.text,
         " (expected a parameter or a variable bound by an enclosing for/let)");
  }

  Type type() {
    if (!isIdent())
      error("a type like f32, i64 or f32x8");
    const Token &t = peek();
    auto ty = Type::parse(t.text);
    if (!ty)
      error("a type like f32, i64 or f32x8");
    next();
    return *ty;
  }

  /// `%x = value` (then the keyword `then`, when given) after `let`: opens the variable's
  /// scope, which the caller closes after the body.
  std::pair<Var, Expr> letBinding(const char *then = nullptr) {
    if (peek().kind != Tok::Var)
      error("a variable like %x");
    std::string name = next().text;
    expect("=");
    Expr value = expr();
    if (then)
      expectIdent(then);
    Var v(name, value.type());
    scopes_.emplace_back();
    define(name, v);
    return {v, value};
  }

  void skipBufferType() {
    next(); // dtype
    skipBrackets();
    if (isIdent("strides")) {
      next();
      skipBrackets();
    }
    if (isIdent("align")) {
      next();
      next();
    }
  }
  void skipBrackets() {
    int depth = 0;
    do {
      if (peek().kind == Tok::End)
        error("']'");
      if (isPunct("["))
        ++depth;
      if (isPunct("]"))
        --depth;
      next();
    } while (depth > 0);
  }

  Buffer bufferType(const std::string &name, std::string scope) {
    if (!isIdent())
      error("a buffer dtype like f32");
    auto d = parseDType(peek().text);
    if (!d)
      error("a buffer dtype like f32");
    next();
    expect("[");
    std::vector<Expr> shape = exprList("]");
    std::vector<Expr> strides;
    int align = 0;
    if (isIdent("strides")) {
      next();
      expect("[");
      strides = exprList("]");
    }
    if (isIdent("align")) {
      next();
      if (peek().kind != Tok::Number)
        error("an alignment in bytes");
      align = std::atoi(next().text.c_str());
    }
    return Buffer::make(name, *d, std::move(shape), std::move(scope), std::move(strides), align);
  }

  std::vector<Expr> exprList(std::string_view close) {
    std::vector<Expr> out;
    if (accept(close))
      return out;
    do
      out.push_back(expr());
    while (accept(","));
    expect(close);
    return out;
  }

  //===--- statements ---===//
  Stmt block() {
    expect("{");
    scopes_.emplace_back();
    std::vector<Stmt> stmts;
    while (!accept("}")) {
      if (peek().kind == Tok::End)
        error("'}'");
      stmts.push_back(stmt());
    }
    scopes_.pop_back();
    return SeqNode::make(std::move(stmts));
  }

  Stmt stmt() {
    ForKind kind = ForKind::Serial;
    if (isIdent("parallel") || isIdent("vectorized") || isIdent("unrolled")) {
      std::string w = next().text;
      kind = w == "parallel" ? ForKind::Parallel
             : w == "vectorized" ? ForKind::Vectorized
                                 : ForKind::Unrolled;
      if (!isIdent("for"))
        error("'for' after '" + w + "'");
    }
    if (isIdent("for")) {
      next();
      if (peek().kind != Tok::Var)
        error("a loop variable like %i");
      std::string name = next().text;
      Type t = Type::i64();
      if (accept(":"))
        t = type();
      expectIdent("in");
      Expr mn = expr();
      Expr extent;
      if (accept("..+")) {
        extent = expr();
      } else {
        expect("..");
        if (!isConstInt(mn, 0))
          error("'..+' followed by the extent (the 'min..end' form needs min = 0)");
        extent = expr();
      }
      Var v(name, t);
      scopes_.emplace_back();
      define(name, v);
      Stmt body = block();
      scopes_.pop_back();
      return ForNode::make(v, mn, extent, kind, body);
    }
    if (isIdent("let")) {
      next();
      auto [v, value] = letBinding();
      Stmt body = block();
      scopes_.pop_back();
      return LetStmtNode::make(v, value, body);
    }
    if (isIdent("if")) {
      next();
      Expr c = expr();
      Stmt t = block();
      Stmt e;
      if (isIdent("else")) {
        next();
        e = block();
      }
      return IfThenElseNode::make(c, t, e);
    }
    if (isIdent("allocate")) {
      next();
      if (!isIdent())
        error("a buffer name");
      std::string name = next().text;
      expect(":");
      Buffer b = bufferType(name, "local");
      if (!isIdent("local") && !isIdent("global"))
        error("a scope (local or global)");
      std::string scope = next().text;
      if (scope != "local")
        b = Buffer::make(name, b.dtype(), b->shape, scope, b->strides, b->alignment);
      auto saved = buffers_.find(name) != buffers_.end() ? buffers_[name] : Buffer();
      buffers_[name] = b;
      Stmt body = block();
      if (saved.defined())
        buffers_[name] = saved;
      else
        buffers_.erase(name);
      return AllocateNode::make(b, body);
    }
    if (isIdent("evaluate")) {
      next();
      return EvaluateNode::make(expr());
    }
    if (isIdent() && peekAt(1).text == "[") {
      Token nameTok = next();
      Buffer b = buffer(nameTok);
      expect("[");
      auto [ix, pred] = indices();
      expect("=");
      Expr v = expr();
      return StoreNode::make(b, v, ix, pred);
    }
    error("a statement (for, let, if, allocate, evaluate or a store like B[%i] = ...)");
  }

  Buffer buffer(const Token &t) {
    auto it = buffers_.find(t.text);
    if (it == buffers_.end())
      fail(file_, ":", t.line, ":", t.col, ": undefined buffer '", t.text,
           "' (expected a buffer parameter or an enclosing allocate)");
    return it->second;
  }

  std::pair<std::vector<Expr>, Expr> indices() {
    std::vector<Expr> ix;
    Expr pred;
    if (!isPunct("]")) {
      do
        ix.push_back(expr());
      while (accept(","));
    }
    if (isIdent("if")) {
      next();
      pred = expr();
    }
    expect("]");
    return {ix, pred};
  }

  //===--- expressions ---===//
  static int binaryPrec(const Token &t, ExprKind &k) {
    if (t.kind != Tok::Punct)
      return -1;
    static const std::pair<const char *, std::pair<ExprKind, int>> kOps[] = {
        {"||", {ExprKind::Or, 1}}, {"&&", {ExprKind::And, 2}}, {"==", {ExprKind::EQ, 3}},
        {"!=", {ExprKind::NE, 3}}, {"<", {ExprKind::LT, 3}},   {"<=", {ExprKind::LE, 3}},
        {">", {ExprKind::GT, 3}},  {">=", {ExprKind::GE, 3}},  {"+", {ExprKind::Add, 4}},
        {"-", {ExprKind::Sub, 4}}, {"*", {ExprKind::Mul, 5}},  {"/", {ExprKind::Div, 5}},
        {"%", {ExprKind::Mod, 5}}};
    for (auto &[s, kp] : kOps)
      if (t.text == s) {
        k = kp.first;
        return kp.second;
      }
    return -1;
  }

  Expr makeBinary(ExprKind k, Expr a, Expr b, const Token &at) {
    try {
      switch (k) {
#define BIN(K)                                                                                     \
  case ExprKind::K:                                                                                \
    return K##Node::make(std::move(a), std::move(b));
        BIN(Add) BIN(Sub) BIN(Mul) BIN(Div) BIN(Mod) BIN(EQ) BIN(NE) BIN(LT) BIN(LE) BIN(GT)
        BIN(GE) BIN(And) BIN(Or)
#undef BIN
      default: break;
      }
    } catch (const Error &e) {
      fail(file_, ":", at.line, ":", at.col, ": ", e.what());
    }
    fail("parser: bad binary operator");
  }

  Expr expr(int minPrec = 1) {
    Expr lhs = unary();
    for (;;) {
      ExprKind k;
      int p = binaryPrec(peek(), k);
      if (p < minPrec)
        return lhs;
      Token op = next();
      Expr rhs = expr(p + 1);
      lhs = makeBinary(k, lhs, rhs, op);
    }
  }

  Expr unary() {
    if (accept("!"))
      return NotNode::make(unary());
    if (isPunct("-")) {
      next();
      Expr x = unary();
      if (auto *i = x.as<IntImmNode>())
        return IntImmNode::make(x.type(), -i->value);
      if (auto *f = x.as<FloatImmNode>())
        return FloatImmNode::make(x.type(), -f->value);
      return neg(x);
    }
    return primary();
  }

  Expr number(const Token &t) {
    const std::string &s = t.text;
    size_t end = 0;
    while (end < s.size() && (std::isdigit((unsigned char)s[end]) || s[end] == '.' ||
                              ((s[end] == 'e' || s[end] == 'E') && end + 1 < s.size() &&
                               !std::isalpha((unsigned char)s[end + 1])) ||
                              ((s[end] == '-' || s[end] == '+') && end > 0 &&
                               (s[end - 1] == 'e' || s[end - 1] == 'E'))))
      ++end;
    std::string digits = s.substr(0, end), suffix = s.substr(end);
    bool isFloatLit = digits.find_first_of(".eE") != std::string::npos;
    if (suffix == "f")
      return FloatImmNode::make(Type::f32(), std::strtod(digits.c_str(), nullptr));
    Type ty = isFloatLit ? Type::f64() : Type::i64();
    if (!suffix.empty()) {
      auto d = parseDType(suffix);
      if (!d)
        fail(file_, ":", t.line, ":", t.col, ": bad literal suffix '", suffix,
             "' (expected f, or a dtype like i32, u8, f16)");
      ty = Type(*d);
    }
    if (ty.isFloat())
      return FloatImmNode::make(ty, std::strtod(digits.c_str(), nullptr));
    if (isFloatLit)
      fail(file_, ":", t.line, ":", t.col, ": '", s, "' is not an integer (expected digits)");
    if (ty.dtype == DType::u64)
      return IntImmNode::make(ty, int64_t(std::strtoull(digits.c_str(), nullptr, 10)));
    return IntImmNode::make(ty, std::strtoll(digits.c_str(), nullptr, 10));
  }

  Expr primary() {
    const Token t = peek();
    if (t.kind == Tok::Number) {
      next();
      return number(t);
    }
    if (t.kind == Tok::Var) {
      next();
      return lookup(t);
    }
    if (accept("(")) {
      if (isIdent("let")) {
        next();
        auto [v, value] = letBinding("in");
        Expr body = expr();
        scopes_.pop_back();
        expect(")");
        return LetNode::make(v, value, body);
      }
      Expr e = expr();
      expect(")");
      return e;
    }
    if (t.kind != Tok::Ident)
      error("an expression");
    next();
    const std::string &w = t.text;
    if (w == "true" || w == "false")
      return makeBool(w == "true");
    for (std::string_view special : {"inf", "nan"}) {
      if (w.rfind(special, 0) == 0) {
        std::string suffix = w.substr(special.size());
        Type ty = suffix.empty() ? Type::f64()
                  : suffix == "f" ? Type::f32()
                                  : Type(parseDType(suffix).value_or(DType::undefined));
        if (!ty.isFloat())
          fail(file_, ":", t.line, ":", t.col, ": bad float literal '", w, "'");
        return FloatImmNode::make(ty, special == "inf" ? HUGE_VAL : NAN);
      }
    }
    if (isPunct("[")) {
      Buffer b = buffer(t);
      next();
      auto [ix, pred] = indices();
      return LoadNode::make(b, ix, pred);
    }
    if (!isPunct("("))
      error("'(' or '[' after '" + w + "'");
    next();
    try {
      if (w == "shuffle") {
        std::vector<Expr> vs;
        do
          vs.push_back(expr());
        while (accept(","));
        expect(";");
        std::vector<int> ix;
        do {
          if (peek().kind != Tok::Number)
            error("a lane index");
          ix.push_back(std::atoi(next().text.c_str()));
        } while (accept(","));
        expect(")");
        return ShuffleNode::make(vs, ix);
      }
      if (w == "ramp") {
        Expr b = expr();
        expect(",");
        Expr s = expr();
        expect(",");
        if (peek().kind != Tok::Number)
          error("the number of lanes");
        int lanes = std::atoi(next().text.c_str());
        expect(")");
        return RampNode::make(b, s, lanes);
      }
      std::vector<Expr> args = exprList(")");
      auto nargs = [&](size_t n) {
        if (args.size() != n)
          fail(file_, ":", t.line, ":", t.col, ": ", w, " takes ", n, " arguments, got ",
               args.size());
      };
      if (w == "min" || w == "max") {
        nargs(2);
        return w == "min" ? MinNode::make(args[0], args[1]) : MaxNode::make(args[0], args[1]);
      }
      if (w == "select") {
        nargs(3);
        return SelectNode::make(args[0], args[1], args[2]);
      }
      if (w.rfind("reduce_", 0) == 0) {
        nargs(1);
        std::string op = w.substr(7);
        for (ReduceOp r : {ReduceOp::Add, ReduceOp::Mul, ReduceOp::Min, ReduceOp::Max})
          if (reduceOpName(r) == op)
            return VectorReduceNode::make(r, args[0]);
        fail(file_, ":", t.line, ":", t.col, ": unknown reduction '", w,
             "' (expected reduce_add, reduce_mul, reduce_min or reduce_max)");
      }
      if (w.size() > 1 && w[0] == 'x' && std::isdigit((unsigned char)w[1])) {
        nargs(1);
        return BroadcastNode::make(args[0], std::atoi(w.c_str() + 1));
      }
      if (auto ty = Type::parse(w)) {
        nargs(1);
        return CastNode::make(*ty, args[0]);
      }
      return CallNode::make(w, args);
    } catch (const Error &e) {
      std::string msg = e.what();
      if (msg.rfind(std::string(file_), 0) == 0)
        throw;
      fail(file_, ":", t.line, ":", t.col, ": ", msg);
    }
  }

  std::string file_;
  std::vector<Token> toks_;
  size_t pos_ = 0;
  std::vector<std::unordered_map<std::string, Var>> scopes_;
  std::unordered_map<std::string, Buffer> buffers_;
};

} // namespace

std::vector<LoweredFunc> parseFuncs(std::string_view text, std::string_view file) {
  Parser p(text, file);
  std::vector<LoweredFunc> out;
  while (!p.atEnd())
    out.push_back(p.func());
  return out;
}

LoweredFunc parseFunc(std::string_view text, std::string_view file) {
  auto fs = parseFuncs(text, file);
  TESSEL_CHECK(fs.size() == 1, file, ": expected exactly one function, found ", fs.size());
  return fs[0];
}

} // namespace tessel::loop
