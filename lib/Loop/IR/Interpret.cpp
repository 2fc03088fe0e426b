//===- Interpret.cpp - the loop IR reference interpreter -------------------===//

#include "tessel/Loop/Interpret.h"
#include "tessel/Loop/Evaluate.h"

#include <cmath>
#include <optional>

using namespace tessel;
using namespace tessel::loop;

namespace {

/// One value: a scalar Value per lane (the lane type is the element type).
struct Val {
  Type type;
  std::vector<Value> v;
  int lanes() const { return type.lanes; }
  /// Lane l, or lane 0 of a scalar used among vectors.
  const Value &lane(int l) const { return v[v.size() == 1 ? 0 : size_t(l)]; }
};

/// A buffer element (held as double) as a value of type t.
Value fromElement(Type t, double d) {
  return t.isFloat() ? Value::ofFloat(t, d) : Value::ofInt(t, int64_t(d));
}

/// A value as a buffer element of dtype d (Cast semantics: rounded, or wrapped to the width).
double toElement(DType d, const Value &x) {
  Type t(d);
  if (t.isFloat())
    return evaluateCast(t, x).f;
  return double(evaluateCast(t, x).i);
}

struct Storage {
  std::vector<double> *data;
  Buffer buffer;
};

class Interpreter {
public:
  Interpreter(InterpBuffers &buffers) : buffers_(buffers) {}

  std::unordered_map<const VarNode *, Val> vars;
  std::unordered_map<const BufferNode *, Storage> storage;
  std::vector<std::unique_ptr<std::vector<double>>> locals;

  /// A value of type t with every lane taken from `lane(l)`.
  template <class F> static Val lanewise(Type t, F lane) {
    Val r;
    r.type = t;
    r.v.reserve(size_t(t.lanes));
    for (int l = 0; l < t.lanes; ++l)
      r.v.push_back(lane(l));
    return r;
  }

  static Val scalar(const Value &x) { return Val{x.type, {x}}; }

  /// A scalar integer (a loop bound, shape or stride).
  int64_t evalInt(const Expr &e) {
    Value x = eval(e).v.at(0);
    return x.isFloat() ? int64_t(x.f) : x.i;
  }

  Val eval(const Expr &e) {
    Type elem = e.type().element();
    switch (e.kind()) {
    case ExprKind::IntImm:
      return scalar(Value::ofInt(elem, e.as<IntImmNode>()->value));
    case ExprKind::FloatImm:
      return scalar(Value::ofFloat(elem, e.as<FloatImmNode>()->value));
    case ExprKind::Var: {
      auto it = vars.find(e.as<VarNode>());
      if (it == vars.end())
        throw Error("interpret: variable '" + e.as<VarNode>()->name +
                    "' is not defined here; expected a parameter, loop or let variable");
      return it->second;
    }
#define TESSEL_BIN(K)                                                                              \
  case ExprKind::K: {                                                                              \
    Val a = eval(e.as<K##Node>()->a), b = eval(e.as<K##Node>()->b);                                \
    return lanewise(e.type(),                                                                      \
                    [&](int l) { return evaluateBinary(ExprKind::K, a.lane(l), b.lane(l)); });     \
  }
      TESSEL_BIN(Add) TESSEL_BIN(Sub) TESSEL_BIN(Mul) TESSEL_BIN(Div) TESSEL_BIN(Mod)
      TESSEL_BIN(Min) TESSEL_BIN(Max) TESSEL_BIN(EQ) TESSEL_BIN(NE) TESSEL_BIN(LT) TESSEL_BIN(LE)
      TESSEL_BIN(GT) TESSEL_BIN(GE) TESSEL_BIN(And) TESSEL_BIN(Or)
#undef TESSEL_BIN
    case ExprKind::Not: {
      Val a = eval(e.as<NotNode>()->a);
      return lanewise(e.type(), [&](int l) { return Value::ofInt(elem, !a.lane(l).i); });
    }
    case ExprKind::Select: {
      const auto *op = e.as<SelectNode>();
      Val c = eval(op->cond), t = eval(op->trueValue), f = eval(op->falseValue);
      return lanewise(e.type(), [&](int l) { return c.lane(l).i ? t.lane(l) : f.lane(l); });
    }
    case ExprKind::Cast: {
      Val a = eval(e.as<CastNode>()->value);
      return lanewise(e.type(), [&](int l) { return evaluateCast(elem, a.lane(l)); });
    }
    case ExprKind::Call: {
      const auto *op = e.as<CallNode>();
      if (isPrefetch(e)) // a hint: no value, and its address is not read (it may be past the end)
        return lanewise(e.type(), [&](int) {
          return elem.isFloat() ? Value::ofFloat(elem, 0) : Value::ofInt(elem, 0);
        });
      std::vector<Val> args;
      for (const Expr &a : op->args)
        args.push_back(eval(a));
      return lanewise(e.type(), [&](int l) {
        std::vector<Value> xs;
        for (const Val &a : args)
          xs.push_back(a.lane(l));
        return evaluateCall(op->name, xs);
      });
    }
    case ExprKind::Load: {
      const auto *op = e.as<LoadNode>();
      Access a = access(op->buffer, op->indices, op->predicate);
      return lanewise(e.type(), [&](int l) {
        if (!a.active(l))
          return fromElement(elem, 0); // a masked-off lane
        return fromElement(elem, (*a.storage->data)[offset(*a.storage, a.indices, l)]);
      });
    }
    case ExprKind::Ramp: {
      const auto *op = e.as<RampNode>();
      Value b = eval(op->base).v[0], st = eval(op->stride).v[0];
      return lanewise(e.type(), [&](int l) {
        Value k = elem.isFloat() ? Value::ofFloat(elem, l) : Value::ofInt(elem, l);
        return evaluateBinary(ExprKind::Add, b, evaluateBinary(ExprKind::Mul, st, k));
      });
    }
    case ExprKind::Broadcast: {
      Value x = eval(e.as<BroadcastNode>()->value).v[0];
      return lanewise(e.type(), [&](int) { return x; });
    }
    case ExprKind::Let: {
      const auto *op = e.as<LetNode>();
      Val v = eval(op->value);
      auto saved = vars.find(op->var.get()) != vars.end() ? std::optional<Val>(vars[op->var.get()])
                                                          : std::nullopt;
      vars[op->var.get()] = v;
      Val r = eval(op->body);
      if (saved)
        vars[op->var.get()] = *saved;
      else
        vars.erase(op->var.get());
      return r;
    }
    case ExprKind::Shuffle: {
      const auto *op = e.as<ShuffleNode>();
      std::vector<Value> all;
      for (const Expr &v : op->vectors) {
        Val x = eval(v);
        all.insert(all.end(), x.v.begin(), x.v.end());
      }
      return lanewise(e.type(), [&](int l) { return all.at(size_t(op->indices[l])); });
    }
    case ExprKind::VectorReduce: {
      const auto *op = e.as<VectorReduceNode>();
      Val v = eval(op->value);
      Value r = v.v.at(0);
      for (int l = 1; l < v.lanes(); ++l)
        r = evaluateBinary(reduceKind(op->op), r, v.v[size_t(l)]);
      return scalar(r);
    }
    }
    throw Error("interpret: unknown expression kind");
  }

  static ExprKind reduceKind(ReduceOp op) {
    switch (op) {
    case ReduceOp::Add: return ExprKind::Add;
    case ReduceOp::Mul: return ExprKind::Mul;
    case ReduceOp::Min: return ExprKind::Min;
    case ReduceOp::Max: return ExprKind::Max;
    }
    throw Error("interpret: unknown reduction");
  }

  /// A Load's or Store's evaluated indices and predicate.
  struct Access {
    Storage *storage;
    std::vector<Val> indices;
    std::optional<Val> predicate;
    bool active(int l) const { return !predicate || predicate->lane(l).i; }
  };

  Access access(const Buffer &b, const std::vector<Expr> &indices, const Expr &predicate) {
    Access a{&lookup(b), {}, std::nullopt};
    for (const Expr &x : indices)
      a.indices.push_back(eval(x));
    if (predicate.defined())
      a.predicate = eval(predicate);
    return a;
  }

  Storage &lookup(const Buffer &b) {
    auto it = storage.find(b.get());
    if (it != storage.end())
      return it->second;
    // Passes may rebuild a buffer node (same data variable): match by data var, then name.
    for (auto &[node, s] : storage)
      if (s.buffer->data.same_as(b->data) || s.buffer.name() == b.name())
        return s;
    throw Error("interpret: buffer '" + b.name() + "' is neither a parameter nor allocated here");
  }

  size_t offset(const Storage &s, const std::vector<Val> &ix, int lane) {
    const Buffer &b = s.buffer;
    int64_t flat = 0;
    std::string shown;
    if (ix.size() == 1 && b.rank() <= 1 && b->strides.empty()) {
      flat = ix[0].lane(lane).i;
      shown = std::to_string(flat);
    } else {
      std::vector<Expr> strides = b->strides.empty() ? b.denseStrides() : b->strides;
      if (ix.size() != b.rank())
        throw Error("interpret: access to '" + b.name() + "' has " + std::to_string(ix.size()) +
                    " indices; expected " + std::to_string(b.rank()));
      for (size_t k = 0; k < ix.size(); ++k) {
        int64_t v = ix[k].lane(lane).i;
        int64_t extent = evalInt(b->shape[k]);
        shown += (k ? "," : "") + std::to_string(v);
        if (v < 0 || v >= extent)
          throw Error("interpret: index [" + shown + "] of buffer '" + b.name() +
                      "' is out of bounds in dimension " + std::to_string(k) + " (extent " +
                      std::to_string(extent) + ")");
        flat += v * evalInt(strides[k]);
      }
    }
    if (flat < 0 || size_t(flat) >= s.data->size())
      throw Error("interpret: index [" + shown + "] of buffer '" + b.name() +
                  "' is out of bounds (flat offset " + std::to_string(flat) + ", " +
                  std::to_string(s.data->size()) + " elements)");
    return size_t(flat);
  }

  void exec(const Stmt &s) {
    switch (s.kind()) {
    case StmtKind::For: {
      const auto *op = s.as<ForNode>();
      int64_t mn = evalInt(op->min), ext = evalInt(op->extent);
      for (int64_t k = mn; k < mn + ext; ++k) {
        vars[op->loopVar.get()] = scalar(Value::ofInt(op->loopVar.type(), k));
        exec(op->body);
      }
      vars.erase(op->loopVar.get());
      return;
    }
    case StmtKind::Store: {
      const auto *op = s.as<StoreNode>();
      Val value = eval(op->value);
      Access a = access(op->buffer, op->indices, op->predicate);
      int lanes = value.lanes();
      for (const Val &x : a.indices)
        lanes = std::max(lanes, x.lanes());
      for (int l = 0; l < lanes; ++l)
        if (a.active(l))
          (*a.storage->data)[offset(*a.storage, a.indices, l)] =
              toElement(op->buffer.dtype(), value.lane(l));
      return;
    }
    case StmtKind::LetStmt: {
      const auto *op = s.as<LetStmtNode>();
      vars[op->var.get()] = eval(op->value);
      exec(op->body);
      vars.erase(op->var.get());
      return;
    }
    case StmtKind::IfThenElse: {
      const auto *op = s.as<IfThenElseNode>();
      if (eval(op->cond).v.at(0).i)
        exec(op->thenCase);
      else if (op->elseCase.defined())
        exec(op->elseCase);
      return;
    }
    case StmtKind::Allocate: {
      const auto *op = s.as<AllocateNode>();
      const Buffer &b = op->buffer;
      int64_t size = 1;
      if (!b->strides.empty()) {
        size = 1;
        for (size_t k = 0; k < b.rank(); ++k)
          size += (evalInt(b->shape[k]) - 1) * evalInt(b->strides[k]);
      } else {
        for (const Expr &d : b->shape)
          size *= evalInt(d);
      }
      locals.push_back(
          std::make_unique<std::vector<double>>(size_t(std::max<int64_t>(size, 0)), std::nan("")));
      storage[b.get()] = Storage{locals.back().get(), b};
      exec(op->body);
      storage.erase(b.get());
      return;
    }
    case StmtKind::Evaluate:
      eval(s.as<EvaluateNode>()->value);
      return;
    case StmtKind::Seq:
      for (const Stmt &c : s.as<SeqNode>()->stmts)
        exec(c);
      return;
    }
  }

  InterpBuffers &buffers_;
};

} // namespace

void tessel::loop::interpret(const LoweredFunc &f, InterpBuffers &buffers,
                             const InterpScalars &scalars) {
  Interpreter in(buffers);
  for (const Param &p : f.params) {
    if (p.isBuffer())
      continue;
    auto it = scalars.find(p.name());
    if (it == scalars.end())
      throw Error("interpret: function '" + f.name + "' needs scalar parameter '" + p.name() +
                  "'; expected it among the scalars given");
    in.vars[p.var.get()] = Interpreter::scalar(fromElement(p.var.type(), it->second));
  }
  for (const Param &p : f.params) {
    if (!p.isBuffer())
      continue;
    auto it = buffers.find(p.name());
    if (it == buffers.end())
      throw Error("interpret: function '" + f.name + "' needs buffer '" + p.name() +
                  "'; expected it among the buffers given");
    in.storage[p.buffer.get()] = Storage{&it->second, p.buffer};
  }
  in.exec(f.body);
}
