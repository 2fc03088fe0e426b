//===- Printer.cpp - loop IR to text (see docs/loop-ir.md) ----------------===//

#include "tessel/Loop/Text.h"

#include <cmath>
#include <cstdio>
#include <unordered_map>
#include <unordered_set>

namespace tessel::loop {

namespace {

int precedence(ExprKind k) {
  switch (k) {
  case ExprKind::Or: return 1;
  case ExprKind::And: return 2;
  case ExprKind::EQ: case ExprKind::NE: case ExprKind::LT: case ExprKind::LE:
  case ExprKind::GT: case ExprKind::GE: return 3;
  case ExprKind::Add: case ExprKind::Sub: return 4;
  case ExprKind::Mul: case ExprKind::Div: case ExprKind::Mod: return 5;
  default: return 10; // atoms and calls
  }
}

const char *infix(ExprKind k) {
  switch (k) {
  case ExprKind::Add: return " + ";
  case ExprKind::Sub: return " - ";
  case ExprKind::Mul: return " * ";
  case ExprKind::Div: return " / ";
  case ExprKind::Mod: return " % ";
  case ExprKind::EQ: return " == ";
  case ExprKind::NE: return " != ";
  case ExprKind::LT: return " < ";
  case ExprKind::LE: return " <= ";
  case ExprKind::GT: return " > ";
  case ExprKind::GE: return " >= ";
  case ExprKind::And: return " && ";
  case ExprKind::Or: return " || ";
  default: return nullptr;
  }
}

std::string formatFloat(double v, Type t) {
  std::string s;
  if (std::isnan(v)) {
    s = "nan";
  } else if (std::isinf(v)) {
    s = v < 0 ? "-inf" : "inf";
  } else {
    char buf[64];
    std::snprintf(buf, sizeof buf, t.dtype == DType::f64 ? "%.17g" : "%.9g", v);
    s = buf;
    if (s.find_first_of(".e") == std::string::npos)
      s += ".0";
  }
  switch (t.dtype) {
  case DType::f32: return s + "f";
  case DType::f64: return s;
  default: return s + std::string(dtypeName(t.dtype));
  }
}

class Printer {
public:
  std::string os;

  /// A unique printed name per variable/buffer node (names need not be unique in the IR).
  std::string nameOf(const void *node, const std::string &base) {
    auto it = names_.find(node);
    if (it != names_.end())
      return it->second;
    std::string n = base.empty() ? "v" : base;
    for (int k = 1; used_.count(n); ++k)
      n = base + "." + std::to_string(k);
    used_.insert(n);
    names_[node] = n;
    return n;
  }
  std::string var(const Var &v) { return "%" + nameOf(v.get(), v.name()); }
  std::string buf(const Buffer &b) { return nameOf(b->data.get(), b.name()); }

  void list(const std::vector<Expr> &es) {
    for (size_t i = 0; i < es.size(); ++i) {
      if (i)
        os += ", ";
      expr(es[i]);
    }
  }

  void expr(const Expr &e, int parentPrec = 0) {
    if (!e.defined()) {
      os += "<undefined>";
      return;
    }
    Type t = e.type();
    if (const char *op = infix(e.kind())) {
      int p = precedence(e.kind());
      bool paren = p <= parentPrec;
      if (paren)
        os += "(";
      auto *x = static_cast<const BinaryNode<ExprKind::Add> *>(e.get()); // same layout
      expr(x->a, p - 1);
      os += op;
      expr(x->b, p);
      if (paren)
        os += ")";
      return;
    }
    switch (e.kind()) {
    case ExprKind::IntImm: {
      int64_t v = e.as<IntImmNode>()->value;
      if (t.isBool()) {
        os += v ? "true" : "false";
        return;
      }
      std::string s = t.dtype == DType::u64 ? std::to_string(uint64_t(v)) : std::to_string(v);
      if (t.dtype != DType::i64)
        s += std::string(dtypeName(t.dtype));
      if (v < 0 && parentPrec > 0)
        s = "(" + s + ")";
      os += s;
      return;
    }
    case ExprKind::FloatImm: {
      double v = e.as<FloatImmNode>()->value;
      std::string s = formatFloat(v, t);
      if ((v < 0 || std::signbit(v)) && parentPrec > 0)
        s = "(" + s + ")";
      os += s;
      return;
    }
    case ExprKind::Var: os += var(Var::fromExpr(e)); return;
    case ExprKind::Min:
    case ExprKind::Max: {
      auto *x = static_cast<const BinaryNode<ExprKind::Min> *>(e.get());
      os += e.kind() == ExprKind::Min ? "min(" : "max(";
      expr(x->a);
      os += ", ";
      expr(x->b);
      os += ")";
      return;
    }
    case ExprKind::Not:
      os += "!";
      expr(e.as<NotNode>()->a, 9);
      return;
    case ExprKind::Select: {
      auto *x = e.as<SelectNode>();
      os += "select(";
      list({x->cond, x->trueValue, x->falseValue});
      os += ")";
      return;
    }
    case ExprKind::Cast:
      os += t.toString() + "(";
      expr(e.as<CastNode>()->value);
      os += ")";
      return;
    case ExprKind::Call:
      os += e.as<CallNode>()->name + "(";
      list(e.as<CallNode>()->args);
      os += ")";
      return;
    case ExprKind::Load: {
      auto *x = e.as<LoadNode>();
      os += buf(x->buffer) + "[";
      list(x->indices);
      if (x->predicate.defined()) {
        os += " if ";
        expr(x->predicate);
      }
      os += "]";
      return;
    }
    case ExprKind::Ramp: {
      auto *x = e.as<RampNode>();
      os += "ramp(";
      list({x->base, x->stride});
      os += ", " + std::to_string(x->lanes) + ")";
      return;
    }
    case ExprKind::Broadcast:
      os += "x" + std::to_string(e.as<BroadcastNode>()->lanes) + "(";
      expr(e.as<BroadcastNode>()->value);
      os += ")";
      return;
    case ExprKind::Let: {
      auto *x = e.as<LetNode>();
      os += "(let " + var(x->var) + " = ";
      expr(x->value);
      os += " in ";
      expr(x->body);
      os += ")";
      return;
    }
    case ExprKind::Shuffle: {
      auto *x = e.as<ShuffleNode>();
      os += "shuffle(";
      list(x->vectors);
      os += ";";
      for (size_t i = 0; i < x->indices.size(); ++i)
        os += (i ? ", " : " ") + std::to_string(x->indices[i]);
      os += ")";
      return;
    }
    case ExprKind::VectorReduce:
      os += "reduce_" + std::string(reduceOpName(e.as<VectorReduceNode>()->op)) + "(";
      expr(e.as<VectorReduceNode>()->value);
      os += ")";
      return;
    default: os += "<?>"; return;
    }
  }

  void indent(int n) { os.append(size_t(n) * 2, ' '); }

  void bufferType(const Buffer &b) {
    os += std::string(dtypeName(b.dtype())) + "[";
    list(b->shape);
    os += "]";
    if (!b->strides.empty()) {
      os += " strides[";
      list(b->strides);
      os += "]";
    }
    if (b->alignment)
      os += " align " + std::to_string(b->alignment);
  }

  void block(const Stmt &s, int n) {
    os += "{\n";
    stmt(s, n + 1);
    indent(n);
    os += "}";
  }

  void stmt(const Stmt &s, int n) {
    if (!s.defined())
      return;
    switch (s.kind()) {
    case StmtKind::Seq:
      for (auto &x : s.as<SeqNode>()->stmts)
        stmt(x, n);
      return;
    case StmtKind::For: {
      auto *x = s.as<ForNode>();
      indent(n);
      if (x->forKind != ForKind::Serial)
        os += std::string(forKindName(x->forKind)) + " ";
      os += "for " + var(x->loopVar);
      if (x->loopVar.type() != Type::i64())
        os += ": " + x->loopVar.type().toString();
      os += " in ";
      expr(x->min);
      if (isConstInt(x->min, 0)) {
        os += "..";
      } else {
        os += "..+";
      }
      expr(x->extent);
      os += " ";
      block(x->body, n);
      os += "\n";
      return;
    }
    case StmtKind::Store: {
      auto *x = s.as<StoreNode>();
      indent(n);
      os += buf(x->buffer) + "[";
      list(x->indices);
      if (x->predicate.defined()) {
        os += " if ";
        expr(x->predicate);
      }
      os += "] = ";
      expr(x->value);
      os += "\n";
      return;
    }
    case StmtKind::LetStmt: {
      auto *x = s.as<LetStmtNode>();
      indent(n);
      os += "let " + var(x->var) + " = ";
      expr(x->value);
      os += " ";
      block(x->body, n);
      os += "\n";
      return;
    }
    case StmtKind::IfThenElse: {
      auto *x = s.as<IfThenElseNode>();
      indent(n);
      os += "if ";
      expr(x->cond);
      os += " ";
      block(x->thenCase, n);
      if (x->elseCase.defined()) {
        os += " else ";
        block(x->elseCase, n);
      }
      os += "\n";
      return;
    }
    case StmtKind::Allocate: {
      auto *x = s.as<AllocateNode>();
      indent(n);
      os += "allocate " + buf(x->buffer) + ": ";
      bufferType(x->buffer);
      os += " " + x->buffer->scope + " ";
      block(x->body, n);
      os += "\n";
      return;
    }
    case StmtKind::Evaluate:
      indent(n);
      os += "evaluate ";
      expr(s.as<EvaluateNode>()->value);
      os += "\n";
      return;
    }
  }

  void func(const LoweredFunc &f) {
    os += "func @" + f.name + "(";
    for (size_t i = 0; i < f.params.size(); ++i) {
      if (i)
        os += ", ";
      const Param &p = f.params[i];
      if (p.isBuffer()) {
        os += "%" + buf(p.buffer) + ": ";
        // Shapes may name scalar params printed later: reserve their names first.
        bufferTypeLater_.push_back(i);
        os += "\x01";
      } else {
        os += var(p.var) + ": " + p.var.type().toString();
      }
    }
    // Now print buffer types (their shapes may use scalar params, already named).
    for (size_t i : bufferTypeLater_) {
      std::string saved;
      std::swap(saved, os);
      bufferType(f.params[i].buffer);
      std::string type = os;
      os = saved;
      size_t pos = os.find('\x01');
      os.replace(pos, 1, type);
    }
    os += ") ";
    block(f.body, 0);
    os += "\n";
  }

private:
  std::unordered_map<const void *, std::string> names_;
  std::unordered_set<std::string> used_;
  std::vector<size_t> bufferTypeLater_;
};

} // namespace

std::string printExpr(const Expr &e) {
  Printer p;
  p.expr(e);
  return p.os;
}

std::string printStmt(const Stmt &s, int indent) {
  Printer p;
  p.stmt(s, indent);
  return p.os;
}

std::string printFunc(const LoweredFunc &f) {
  Printer p;
  p.func(f);
  return p.os;
}

} // namespace tessel::loop
