//===- EmitLLVM.cpp - loop IR to LLVM IR ------------------------------------===//
//
// One FunctionEmitter per LLVM function (the kernel, and each outlined parallel body). It keeps
// the LLVM value of every loop IR variable in scope (keyed by the VarNode's identity; a buffer is
// bound through its data variable) and emits statements at the IRBuilder's insertion point.
//
// Vector code is explicit: a loop IR value with L lanes is an LLVM <L x T>. Memory accesses pick
// the cheapest exact form: a stride-1 Ramp index is one contiguous vector load/store (masked when
// predicated), any other vector index a gather/scatter, a scalar index a plain load/store.
//
//===----------------------------------------------------------------------===//
#include "tessel/CodeGen/EmitLLVM.h"
#include "tessel/CodeGen/JIT.h"
#include "tessel/Loop/IR.h"
#include "tessel/Support/Error.h"

#include <llvm/IR/Constants.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Metadata.h>
#include <llvm/IR/Module.h>

#include <unordered_map>

namespace tessel::codegen {
namespace {

using loop::Expr;
using loop::ExprKind;
using loop::Stmt;
using loop::StmtKind;
using loop::Type;

llvm::Type *scalarType(llvm::LLVMContext &ctx, DType dt, bool storage) {
  switch (dt) {
  case DType::f32:
    return llvm::Type::getFloatTy(ctx);
  case DType::f64:
    return llvm::Type::getDoubleTy(ctx);
  case DType::f16:
    return llvm::Type::getHalfTy(ctx);
  case DType::bf16:
    return llvm::Type::getBFloatTy(ctx);
  case DType::i8:
  case DType::u8:
    return llvm::Type::getInt8Ty(ctx);
  case DType::i16:
  case DType::u16:
    return llvm::Type::getInt16Ty(ctx);
  case DType::i32:
  case DType::u32:
    return llvm::Type::getInt32Ty(ctx);
  case DType::i64:
  case DType::u64:
    return llvm::Type::getInt64Ty(ctx);
  case DType::boolean: // i1 in registers, one byte in memory
    return storage ? llvm::Type::getInt8Ty(ctx) : llvm::Type::getInt1Ty(ctx);
  default:
    fail("LLVM emitter: element type '", dtypeName(dt),
         "' has no LLVM type; expected a float, integer or bool type");
  }
}

llvm::Type *llvmType(llvm::LLVMContext &ctx, const Type &t) {
  if (t.isHandle())
    return llvm::PointerType::get(ctx, 0);
  llvm::Type *s = scalarType(ctx, t.dtype, false);
  return t.lanes == 1 ? s : llvm::FixedVectorType::get(s, t.lanes);
}

/// Integer floor division (the loop IR's Div): truncating quotient, minus one when the
/// remainder is nonzero and has the other sign than the divisor.
llvm::Value *emitFloorDiv(llvm::IRBuilder<> &b, llvm::Value *x, llvm::Value *y, bool isSigned) {
  if (!isSigned)
    return b.CreateUDiv(x, y);
  llvm::Value *q = b.CreateSDiv(x, y);
  llvm::Value *r = b.CreateSRem(x, y);
  llvm::Value *zero = llvm::Constant::getNullValue(x->getType());
  llvm::Value *adjust =
      b.CreateAnd(b.CreateICmpNE(r, zero), b.CreateICmpSLT(b.CreateXor(r, y), zero));
  return b.CreateSub(q, b.CreateZExt(adjust, x->getType()));
}

/// Integer floor modulo (the loop IR's Mod): the result has the sign of the divisor.
llvm::Value *emitFloorMod(llvm::IRBuilder<> &b, llvm::Value *x, llvm::Value *y, bool isSigned) {
  if (!isSigned)
    return b.CreateURem(x, y);
  llvm::Value *r = b.CreateSRem(x, y);
  llvm::Value *zero = llvm::Constant::getNullValue(x->getType());
  llvm::Value *adjust =
      b.CreateAnd(b.CreateICmpNE(r, zero), b.CreateICmpSLT(b.CreateXor(r, y), zero));
  return b.CreateSelect(adjust, b.CreateAdd(r, y), r);
}

/// The LLVM intrinsic of a loop IR math call (vector forms are legal; the back end calls libm
/// per lane where the target has no instruction), or not_intrinsic for the libm-only ones.
llvm::Intrinsic::ID mathIntrinsic(const std::string &name) {
  static const std::unordered_map<std::string, llvm::Intrinsic::ID> table = {
      {"exp", llvm::Intrinsic::exp},     {"log", llvm::Intrinsic::log},
      {"sqrt", llvm::Intrinsic::sqrt},   {"fabs", llvm::Intrinsic::fabs},
      {"floor", llvm::Intrinsic::floor}, {"ceil", llvm::Intrinsic::ceil},
      {"round", llvm::Intrinsic::roundeven}, // ONNX Round: halves to even
      {"sin", llvm::Intrinsic::sin},     {"cos", llvm::Intrinsic::cos},
      {"pow", llvm::Intrinsic::pow},     {"fma", llvm::Intrinsic::fma},
  };
  auto it = table.find(name);
  return it == table.end() ? llvm::Intrinsic::not_intrinsic : it->second;
}

/// exp(x) for f32 scalars or vectors as straight-line code (Cephes' expf): n = round(x log2 e),
/// r = x - n ln 2 (ln 2 in two parts, so r is exact), exp(r) by a degree-6 polynomial on
/// |r| <= ln2 / 2, then times 2^n built from exponent bits, in two factors 2^(n/2) and
/// 2^(n - n/2) so that results near overflow and subnormal results come out right. Within
/// about 1 ulp of the correctly rounded result over the normal range (unittests/
/// CodeGenVectorMathTest.cpp checks many values against std::exp); +-inf and NaN as libm.
/// The back end would otherwise call expf once per lane of a vector.
llvm::Value *emitExpF32(llvm::IRBuilder<> &b, llvm::Value *x) {
  llvm::Type *ft = x->getType();
  llvm::Type *it = llvm::Type::getInt32Ty(b.getContext());
  if (auto *vt = llvm::dyn_cast<llvm::VectorType>(ft))
    it = llvm::VectorType::get(it, vt->getElementCount());
  auto c = [&](double v) { return llvm::ConstantFP::get(ft, v); };
  auto ci = [&](int64_t v) { return llvm::ConstantInt::get(it, uint64_t(v), true); };
  // Beyond these bounds the result is inf (overflow) or 0 (underflow) anyway.
  llvm::Value *xc = b.CreateBinaryIntrinsic(llvm::Intrinsic::minnum, x, c(88.8));
  xc = b.CreateBinaryIntrinsic(llvm::Intrinsic::maxnum, xc, c(-104.0));
  llvm::Value *n = b.CreateUnaryIntrinsic(llvm::Intrinsic::roundeven,
                                          b.CreateFMul(xc, c(1.44269504088896341)));
  llvm::Value *r = b.CreateFSub(xc, b.CreateFMul(n, c(0.693359375)));
  r = b.CreateFSub(r, b.CreateFMul(n, c(-2.12194440e-4)));
  llvm::Value *p = c(1.9875691500E-4);
  for (double k : {1.3981999507E-3, 8.3334519073E-3, 4.1665795894E-2, 1.6666665459E-1,
                   5.0000001201E-1})
    p = b.CreateFAdd(b.CreateFMul(p, r), c(k));
  llvm::Value *y = b.CreateFAdd(b.CreateFAdd(b.CreateFMul(p, b.CreateFMul(r, r)), r), c(1.0));
  llvm::Value *ni = b.CreateFPToSI(n, it);
  llvm::Value *n1 = b.CreateAShr(ni, ci(1));
  llvm::Value *n2 = b.CreateSub(ni, n1);
  auto pow2 = [&](llvm::Value *e) {
    return b.CreateBitCast(b.CreateShl(b.CreateAdd(e, ci(127)), ci(23)), ft);
  };
  llvm::Value *res = b.CreateFMul(b.CreateFMul(y, pow2(n1)), pow2(n2));
  // NaN in, NaN out (minnum/maxnum dropped it).
  return b.CreateSelect(b.CreateFCmpUNO(x, x), x, res);
}

/// Self-referencing loop ID with the given properties (llvm.loop.* metadata).
llvm::MDNode *loopMetadata(llvm::LLVMContext &ctx, const std::vector<llvm::Metadata *> &props) {
  std::vector<llvm::Metadata *> ops = {nullptr};
  ops.insert(ops.end(), props.begin(), props.end());
  llvm::MDNode *id = llvm::MDNode::getDistinct(ctx, ops);
  id->replaceOperandWith(0, id);
  return id;
}

llvm::Metadata *loopProperty(llvm::LLVMContext &ctx, const char *name, llvm::Constant *value) {
  std::vector<llvm::Metadata *> ops = {llvm::MDString::get(ctx, name)};
  if (value)
    ops.push_back(llvm::ConstantAsMetadata::get(value));
  return llvm::MDNode::get(ctx, ops);
}

class FunctionEmitter {
public:
  FunctionEmitter(llvm::Module &module, llvm::Function *fn, const std::string &kernel,
                  const EmitOptions &emit, int *parallelCounter)
      : module_(module), ctx_(module.getContext()), b_(ctx_), fn_(fn), kernel_(kernel),
        emit_(emit), parallelCounter_(parallelCounter) {}

  llvm::IRBuilder<> &builder() { return b_; }
  void bind(const loop::Var &v, llvm::Value *value) { vars_[v.get()] = value; }
  void bindBuffer(const loop::Buffer &buf, llvm::Value *data, unsigned align) {
    vars_[buf->data.get()] = data;
    aligns_[buf->data.get()] = align;
  }

  void emitStmt(const Stmt &s);
  llvm::Value *emitExpr(const Expr &e);

private:
  [[noreturn]] void unsupported(const std::string &what) {
    fail("LLVM emitter: function '", kernel_, "': ", what);
  }

  llvm::Value *lookup(const loop::VarNode *v) {
    auto it = vars_.find(v);
    if (it == vars_.end())
      unsupported(concat("variable '", v->name, "' is used outside its scope"));
    return it->second;
  }

  /// Binds `v` for the duration of `fn`, restoring a shadowed binding afterwards.
  template <class Fn> auto withBinding(const loop::VarNode *v, llvm::Value *value, Fn &&fn) {
    auto old = vars_.find(v);
    llvm::Value *saved = old == vars_.end() ? nullptr : old->second;
    vars_[v] = value;
    struct Restore {
      FunctionEmitter *self;
      const loop::VarNode *v;
      llvm::Value *saved;
      ~Restore() {
        if (saved)
          self->vars_[v] = saved;
        else
          self->vars_.erase(v);
      }
    } restore{this, v, saved};
    return fn();
  }

  llvm::Value *toI64(llvm::Value *v, bool isSigned) {
    llvm::Type *t = b_.getInt64Ty();
    if (auto *vt = llvm::dyn_cast<llvm::VectorType>(v->getType()))
      t = llvm::VectorType::get(t, vt->getElementCount());
    return isSigned ? b_.CreateSExtOrTrunc(v, t) : b_.CreateZExtOrTrunc(v, t);
  }

  llvm::AllocaInst *entryAlloca(llvm::Type *type, llvm::Value *count, unsigned align,
                                const std::string &name) {
    llvm::IRBuilder<> entry(&fn_->getEntryBlock(), fn_->getEntryBlock().begin());
    llvm::AllocaInst *a = entry.CreateAlloca(type, count, name);
    a->setAlignment(llvm::Align(align));
    return a;
  }

  llvm::Value *emitBinary(const Expr &e);
  llvm::Value *emitCast(const Type &to, const Expr &value);
  llvm::Value *emitCall(const loop::CallNode *call);
  llvm::Value *emitVectorReduce(const loop::VectorReduceNode *r);
  llvm::Value *emitLoad(const loop::LoadNode *load, const Type &type);
  void emitStore(const loop::StoreNode *store);
  void emitFor(const loop::ForNode *loop);
  void emitParallelFor(const loop::ForNode *loop, llvm::Value *min, llvm::Value *extent);
  void emitAllocate(const loop::AllocateNode *alloc);
  void emitIfThenElse(const loop::IfThenElseNode *node);

  /// Where a Load/Store goes: one pointer (scalar or contiguous vector) or a vector of pointers.
  struct Address {
    llvm::Value *ptr = nullptr;
    bool contiguous = true;
    unsigned align = 1;
  };
  Address address(const loop::Buffer &buf, const std::vector<Expr> &indices, const char *what);

  llvm::Module &module_;
  llvm::LLVMContext &ctx_;
  llvm::IRBuilder<> b_;
  llvm::Function *fn_;
  std::string kernel_;
  EmitOptions emit_;
  int *parallelCounter_;
  std::unordered_map<const loop::VarNode *, llvm::Value *> vars_;
  std::unordered_map<const loop::VarNode *, unsigned> aligns_;
  /// Vector values emitted so far: a loop whose body adds to it is already vectorized.
  int64_t vectorValues_ = 0;
};

//===----------------------------------------------------------------------===//
// Expressions
//===----------------------------------------------------------------------===//

llvm::Value *FunctionEmitter::emitExpr(const Expr &e) {
  TESSEL_CHECK(e.defined(), "LLVM emitter: function '", kernel_, "': undefined expression");
  const Type type = e.type();
  if (type.isVector())
    ++vectorValues_;
  switch (e.kind()) {
  case ExprKind::IntImm:
    return llvm::ConstantInt::get(llvmType(ctx_, type), e.as<loop::IntImmNode>()->value,
                                  /*IsSigned=*/true);
  case ExprKind::FloatImm:
    return llvm::ConstantFP::get(llvmType(ctx_, type), e.as<loop::FloatImmNode>()->value);
  case ExprKind::Var:
    return lookup(e.as<loop::VarNode>());
  case ExprKind::Not:
    return b_.CreateNot(emitExpr(e.as<loop::NotNode>()->a));
  case ExprKind::Select: {
    auto *s = e.as<loop::SelectNode>();
    llvm::Value *c = emitExpr(s->cond);
    llvm::Value *t = emitExpr(s->trueValue);
    llvm::Value *f = emitExpr(s->falseValue);
    return b_.CreateSelect(c, t, f);
  }
  case ExprKind::Cast:
    return emitCast(type, e.as<loop::CastNode>()->value);
  case ExprKind::Call:
    return emitCall(e.as<loop::CallNode>());
  case ExprKind::Load:
    return emitLoad(e.as<loop::LoadNode>(), type);
  case ExprKind::Ramp: {
    auto *r = e.as<loop::RampNode>();
    llvm::Value *base = b_.CreateVectorSplat(r->lanes, emitExpr(r->base));
    llvm::Value *stride = b_.CreateVectorSplat(r->lanes, emitExpr(r->stride));
    std::vector<llvm::Constant *> steps;
    llvm::Type *elem = llvmType(ctx_, type.element());
    for (int i = 0; i < r->lanes; ++i)
      steps.push_back(llvm::ConstantInt::get(elem, i));
    return b_.CreateAdd(base, b_.CreateMul(stride, llvm::ConstantVector::get(steps)));
  }
  case ExprKind::Broadcast: {
    auto *bc = e.as<loop::BroadcastNode>();
    return b_.CreateVectorSplat(bc->lanes, emitExpr(bc->value));
  }
  case ExprKind::Let: {
    auto *let = e.as<loop::LetNode>();
    llvm::Value *value = emitExpr(let->value);
    return withBinding(let->var.get(), value, [&] { return emitExpr(let->body); });
  }
  case ExprKind::Shuffle: {
    auto *sh = e.as<loop::ShuffleNode>();
    std::vector<llvm::Value *> lanes; // every lane of the concatenation
    for (const Expr &v : sh->vectors) {
      llvm::Value *value = emitExpr(v);
      if (v.type().lanes == 1) {
        lanes.push_back(value);
        continue;
      }
      for (int i = 0; i < v.type().lanes; ++i)
        lanes.push_back(b_.CreateExtractElement(value, uint64_t(i)));
    }
    if (sh->indices.size() == 1)
      return lanes.at(sh->indices[0]);
    llvm::Value *out = llvm::PoisonValue::get(llvmType(ctx_, type));
    for (size_t i = 0; i < sh->indices.size(); ++i)
      out = b_.CreateInsertElement(out, lanes.at(sh->indices[i]), uint64_t(i));
    return out;
  }
  case ExprKind::VectorReduce:
    return emitVectorReduce(e.as<loop::VectorReduceNode>());
  default:
    if (loop::isBinary(e.kind()))
      return emitBinary(e);
    unsupported(concat("expression kind '", loop::exprKindName(e.kind()), "' is not supported"));
  }
}

llvm::Value *FunctionEmitter::emitBinary(const Expr &e) {
  const auto [lhs, rhs] = loop::binaryOperands(e);
  const Type t = lhs.type();
  llvm::Value *a = emitExpr(lhs);
  llvm::Value *b = emitExpr(rhs);
  const bool isFloat = t.isFloat();
  const bool isSigned = t.isInt();
  switch (e.kind()) {
  case ExprKind::Add:
    return isFloat ? b_.CreateFAdd(a, b) : b_.CreateAdd(a, b);
  case ExprKind::Sub:
    return isFloat ? b_.CreateFSub(a, b) : b_.CreateSub(a, b);
  case ExprKind::Mul:
    return isFloat ? b_.CreateFMul(a, b) : b_.CreateMul(a, b);
  case ExprKind::Div:
    return isFloat ? b_.CreateFDiv(a, b) : emitFloorDiv(b_, a, b, isSigned);
  case ExprKind::Mod:
    if (isFloat) { // x - floor(x / y) * y
      llvm::Value *q = b_.CreateUnaryIntrinsic(llvm::Intrinsic::floor, b_.CreateFDiv(a, b));
      return b_.CreateFSub(a, b_.CreateFMul(q, b));
    }
    return emitFloorMod(b_, a, b, isSigned);
  case ExprKind::Min: // std::min(a, b) = b < a ? b : a
    if (isFloat)
      return b_.CreateSelect(b_.CreateFCmpOLT(b, a), b, a);
    return b_.CreateBinaryIntrinsic(isSigned ? llvm::Intrinsic::smin : llvm::Intrinsic::umin, a,
                                    b);
  case ExprKind::Max: // std::max(a, b) = a < b ? b : a
    if (isFloat)
      return b_.CreateSelect(b_.CreateFCmpOLT(a, b), b, a);
    return b_.CreateBinaryIntrinsic(isSigned ? llvm::Intrinsic::smax : llvm::Intrinsic::umax, a,
                                    b);
  case ExprKind::And:
    return b_.CreateAnd(a, b);
  case ExprKind::Or:
    return b_.CreateOr(a, b);
  default:
    break;
  }
  // Comparisons: ordered for floats (false on NaN) except NE (true on NaN), as in C++.
  using P = llvm::CmpInst::Predicate;
  P pred;
  switch (e.kind()) {
  case ExprKind::EQ:
    pred = isFloat ? P::FCMP_OEQ : P::ICMP_EQ;
    break;
  case ExprKind::NE:
    pred = isFloat ? P::FCMP_UNE : P::ICMP_NE;
    break;
  case ExprKind::LT:
    pred = isFloat ? P::FCMP_OLT : isSigned ? P::ICMP_SLT : P::ICMP_ULT;
    break;
  case ExprKind::LE:
    pred = isFloat ? P::FCMP_OLE : isSigned ? P::ICMP_SLE : P::ICMP_ULE;
    break;
  case ExprKind::GT:
    pred = isFloat ? P::FCMP_OGT : isSigned ? P::ICMP_SGT : P::ICMP_UGT;
    break;
  case ExprKind::GE:
    pred = isFloat ? P::FCMP_OGE : isSigned ? P::ICMP_SGE : P::ICMP_UGE;
    break;
  default:
    unsupported(concat("binary operator '", loop::exprKindName(e.kind()), "'"));
  }
  return isFloat ? b_.CreateFCmp(pred, a, b) : b_.CreateICmp(pred, a, b);
}

llvm::Value *FunctionEmitter::emitCast(const Type &to, const Expr &value) {
  const Type from = value.type();
  llvm::Value *v = emitExpr(value);
  llvm::Type *dst = llvmType(ctx_, to);
  if (from.dtype == to.dtype)
    return v;
  if (to.isBool()) // x != 0
    return from.isFloat() ? b_.CreateFCmpUNE(v, llvm::Constant::getNullValue(v->getType()))
                          : b_.CreateICmpNE(v, llvm::Constant::getNullValue(v->getType()));
  if (from.isBool()) // 0 or 1
    return to.isFloat() ? b_.CreateUIToFP(v, dst) : b_.CreateZExt(v, dst);
  if (from.isFloat() && to.isFloat())
    return b_.CreateFPCast(v, dst);
  if (from.isFloat())
    return to.isInt() ? b_.CreateFPToSI(v, dst) : b_.CreateFPToUI(v, dst);
  if (to.isFloat())
    return from.isInt() ? b_.CreateSIToFP(v, dst) : b_.CreateUIToFP(v, dst);
  return b_.CreateIntCast(v, dst, /*isSigned=*/from.isInt());
}

llvm::Value *FunctionEmitter::emitCall(const loop::CallNode *call) {
  const Type t = call->type;
  std::vector<llvm::Value *> args;
  for (const Expr &a : call->args)
    args.push_back(emitExpr(a));
  llvm::Type *type = llvmType(ctx_, t);
  const std::string &name = call->name;
  if (name == "abs") {
    if (t.isFloat())
      return b_.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, args[0]);
    if (t.isUInt())
      return args[0];
    return b_.CreateBinaryIntrinsic(llvm::Intrinsic::abs, args[0], b_.getFalse());
  }
  if (name == "rsqrt") // 1 / sqrt(x)
    return b_.CreateFDiv(llvm::ConstantFP::get(type, 1.0),
                         b_.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, args[0]));
  const bool f32 = t.dtype == DType::f32;
  if (name == "exp" && f32)
    return emitExpF32(b_, args[0]);
  if (name == "sigmoid") { // 1 / (1 + exp(-x))
    llvm::Value *e = f32 ? emitExpF32(b_, b_.CreateFNeg(args[0]))
                         : b_.CreateUnaryIntrinsic(llvm::Intrinsic::exp, b_.CreateFNeg(args[0]));
    llvm::Value *one = llvm::ConstantFP::get(type, 1.0);
    return b_.CreateFDiv(one, b_.CreateFAdd(one, e));
  }
  llvm::Intrinsic::ID id = mathIntrinsic(name);
  if (id != llvm::Intrinsic::not_intrinsic)
    return b_.CreateIntrinsic(id, {type}, args);

  // libm, one call per lane; f16/bf16 go through float.
  static const std::unordered_map<std::string, std::pair<const char *, const char *>> libm = {
      {"tanh", {"tanhf", "tanh"}}, {"erf", {"erff", "erf"}}};
  auto it = libm.find(name);
  if (it == libm.end())
    unsupported(concat("intrinsic '", name, "' has no LLVM lowering"));
  const bool isDouble = t.dtype == DType::f64;
  llvm::Type *callTy = isDouble ? b_.getDoubleTy() : b_.getFloatTy();
  llvm::FunctionCallee fn = module_.getOrInsertFunction(
      isDouble ? it->second.second : it->second.first,
      llvm::FunctionType::get(callTy, std::vector<llvm::Type *>(args.size(), callTy), false));
  auto callLane = [&](std::vector<llvm::Value *> laneArgs, llvm::Type *laneTy) {
    for (auto &a : laneArgs)
      a = b_.CreateFPCast(a, callTy);
    llvm::CallInst *c = b_.CreateCall(fn, laneArgs);
    c->setDoesNotAccessMemory(); // errno is not observed: lets LLVM hoist and CSE it
    c->setDoesNotThrow();
    return b_.CreateFPCast(c, laneTy);
  };
  llvm::Type *laneTy = llvmType(ctx_, t.element());
  if (t.lanes == 1)
    return callLane(args, laneTy);
  llvm::Value *out = llvm::PoisonValue::get(type);
  for (int i = 0; i < t.lanes; ++i) {
    std::vector<llvm::Value *> laneArgs;
    for (llvm::Value *a : args)
      laneArgs.push_back(b_.CreateExtractElement(a, uint64_t(i)));
    out = b_.CreateInsertElement(out, callLane(laneArgs, laneTy), uint64_t(i));
  }
  return out;
}

llvm::Value *FunctionEmitter::emitVectorReduce(const loop::VectorReduceNode *r) {
  const Type t = r->value.type();
  llvm::Value *v = emitExpr(r->value);
  if (t.isBool())
    return r->op == loop::ReduceOp::Add || r->op == loop::ReduceOp::Max
               ? b_.CreateOrReduce(v)
               : b_.CreateAndReduce(v);
  if (t.isFloat()) {
    llvm::Type *elem = llvmType(ctx_, t.element());
    llvm::Instruction *out = nullptr;
    switch (r->op) {
    case loop::ReduceOp::Add:
      out = llvm::cast<llvm::Instruction>(
          b_.CreateFAddReduce(llvm::ConstantFP::getNegativeZero(elem), v));
      break;
    case loop::ReduceOp::Mul:
      out = llvm::cast<llvm::Instruction>(b_.CreateFMulReduce(llvm::ConstantFP::get(elem, 1.0), v));
      break;
    case loop::ReduceOp::Min:
      return b_.CreateFPMinReduce(v);
    case loop::ReduceOp::Max:
      return b_.CreateFPMaxReduce(v);
    }
    // The IR leaves the order of a float reduction unspecified: a tree, not a chain.
    out->setHasAllowReassoc(true);
    return out;
  }
  const bool isSigned = t.isInt();
  switch (r->op) {
  case loop::ReduceOp::Add:
    return b_.CreateAddReduce(v);
  case loop::ReduceOp::Mul:
    return b_.CreateMulReduce(v);
  case loop::ReduceOp::Min:
    return b_.CreateIntMinReduce(v, isSigned);
  case loop::ReduceOp::Max:
    return b_.CreateIntMaxReduce(v, isSigned);
  }
  unsupported("unknown vector reduction");
}

//===----------------------------------------------------------------------===//
// Memory
//===----------------------------------------------------------------------===//

FunctionEmitter::Address FunctionEmitter::address(const loop::Buffer &buf,
                                                   const std::vector<Expr> &indices,
                                                   const char *what) {
  if (indices.size() != 1)
    unsupported(concat(what, " of buffer '", buf.name(), "' has ", indices.size(),
                       " indices; expected one (run StorageFlatten before code generation)"));
  llvm::Value *data = lookup(buf->data.get());
  llvm::Type *elem = scalarType(ctx_, buf.dtype(), true);
  const Expr &index = indices[0];
  unsigned elemAlign = unsigned(dtypeSize(buf.dtype()));
  if (const auto *r = index.as<loop::RampNode>()) {
    const int64_t *stride = loop::asConstInt(r->stride);
    if (stride && *stride == 1) {
      llvm::Value *base = toI64(emitExpr(r->base), r->base.type().isInt());
      ++vectorValues_;
      return {b_.CreateInBoundsGEP(elem, data, base), true, elemAlign};
    }
  }
  llvm::Value *ix = toI64(emitExpr(index), index.type().isInt());
  return {b_.CreateInBoundsGEP(elem, data, ix), index.type().lanes == 1, elemAlign};
}

llvm::Value *FunctionEmitter::emitLoad(const loop::LoadNode *load, const Type &type) {
  Address addr = address(load->buffer, load->indices, "a load");
  const bool isBool = load->buffer.dtype() == DType::boolean;
  llvm::Type *storeTy = scalarType(ctx_, load->buffer.dtype(), true);
  if (type.lanes > 1)
    storeTy = llvm::FixedVectorType::get(storeTy, type.lanes);
  llvm::Align align(addr.align);
  llvm::Value *mask = load->predicate.defined() ? emitExpr(load->predicate) : nullptr;
  llvm::Value *v;
  if (type.lanes == 1 && mask) {
    // Scalar predicated load: read only when the predicate holds (else 0).
    llvm::BasicBlock *from = b_.GetInsertBlock();
    auto *then = llvm::BasicBlock::Create(ctx_, "load.pred", fn_);
    auto *done = llvm::BasicBlock::Create(ctx_, "load.done", fn_);
    b_.CreateCondBr(mask, then, done);
    b_.SetInsertPoint(then);
    llvm::Value *loaded = b_.CreateAlignedLoad(storeTy, addr.ptr, align);
    b_.CreateBr(done);
    b_.SetInsertPoint(done);
    auto *phi = b_.CreatePHI(storeTy, 2);
    phi->addIncoming(loaded, then);
    phi->addIncoming(llvm::Constant::getNullValue(storeTy), from);
    v = phi;
  } else if (addr.contiguous) {
    v = mask ? static_cast<llvm::Value *>(b_.CreateMaskedLoad(storeTy, addr.ptr, align, mask))
             : b_.CreateAlignedLoad(storeTy, addr.ptr, align);
  } else {
    v = b_.CreateMaskedGather(storeTy, addr.ptr, align, mask);
  }
  if (isBool)
    return b_.CreateICmpNE(v, llvm::Constant::getNullValue(v->getType()));
  return v;
}

void FunctionEmitter::emitStore(const loop::StoreNode *store) {
  llvm::Value *value = emitExpr(store->value);
  Address addr = address(store->buffer, store->indices, "a store");
  if (store->buffer.dtype() == DType::boolean) {
    llvm::Type *byte = b_.getInt8Ty();
    if (auto *vt = llvm::dyn_cast<llvm::VectorType>(value->getType()))
      byte = llvm::VectorType::get(byte, vt->getElementCount());
    value = b_.CreateZExt(value, byte);
  }
  llvm::Align align(addr.align);
  llvm::Value *mask = store->predicate.defined() ? emitExpr(store->predicate) : nullptr;
  const int lanes = store->value.type().lanes;
  if (lanes == 1 && mask) {
    auto *then = llvm::BasicBlock::Create(ctx_, "store.pred", fn_);
    auto *done = llvm::BasicBlock::Create(ctx_, "store.done", fn_);
    b_.CreateCondBr(mask, then, done);
    b_.SetInsertPoint(then);
    b_.CreateAlignedStore(value, addr.ptr, align);
    b_.CreateBr(done);
    b_.SetInsertPoint(done);
    return;
  }
  if (addr.contiguous) {
    if (mask)
      b_.CreateMaskedStore(value, addr.ptr, align, mask);
    else
      b_.CreateAlignedStore(value, addr.ptr, align);
    return;
  }
  b_.CreateMaskedScatter(value, addr.ptr, align, mask);
}

void FunctionEmitter::emitAllocate(const loop::AllocateNode *alloc) {
  const loop::Buffer &buf = alloc->buffer;
  llvm::Type *elem = scalarType(ctx_, buf.dtype(), true);
  const int64_t elemSize = int64_t(dtypeSize(buf.dtype()));
  // Element count: the product of the shape (constant when every extent is).
  int64_t constCount = 1;
  bool isConst = true;
  llvm::Value *count = b_.getInt64(1);
  for (const Expr &extent : buf->shape) {
    if (const int64_t *c = loop::asConstInt(extent))
      constCount *= *c;
    else
      isConst = false;
    count = b_.CreateMul(count, toI64(emitExpr(extent), extent.type().isInt()));
  }
  if (isConst && constCount * elemSize <= emit_.maxStackBytes) {
    // In the entry block: one slot per function (per thread inside a parallel body), not one
    // per loop iteration.
    llvm::AllocaInst *slot = entryAlloca(elem, b_.getInt64(std::max<int64_t>(constCount, 1)), 64,
                                         buf.name());
    withBinding(buf->data.get(), slot, [&] {
      aligns_[buf->data.get()] = 64;
      emitStmt(alloc->body);
      return 0;
    });
    return;
  }
  // Heap: aligned_alloc(64, bytes rounded up to 64), freed after the body.
  llvm::Value *bytes = b_.CreateMul(count, b_.getInt64(elemSize));
  bytes = b_.CreateAnd(b_.CreateAdd(bytes, b_.getInt64(63)), b_.getInt64(~int64_t(63)));
  bytes = b_.CreateBinaryIntrinsic(llvm::Intrinsic::umax, bytes, b_.getInt64(64));
  llvm::Type *ptr = b_.getPtrTy();
  llvm::FunctionCallee alignedAlloc = module_.getOrInsertFunction(
      "aligned_alloc", llvm::FunctionType::get(ptr, {b_.getInt64Ty(), b_.getInt64Ty()}, false));
  llvm::FunctionCallee freeFn =
      module_.getOrInsertFunction("free", llvm::FunctionType::get(b_.getVoidTy(), {ptr}, false));
  llvm::Value *mem = b_.CreateCall(alignedAlloc, {b_.getInt64(64), bytes}, buf.name());
  withBinding(buf->data.get(), mem, [&] {
    aligns_[buf->data.get()] = 64;
    emitStmt(alloc->body);
    return 0;
  });
  b_.CreateCall(freeFn, {mem});
}

//===----------------------------------------------------------------------===//
// Statements
//===----------------------------------------------------------------------===//

void FunctionEmitter::emitStmt(const Stmt &s) {
  if (!s.defined())
    return;
  switch (s.kind()) {
  case StmtKind::For:
    return emitFor(s.as<loop::ForNode>());
  case StmtKind::Store:
    return emitStore(s.as<loop::StoreNode>());
  case StmtKind::LetStmt: {
    auto *let = s.as<loop::LetStmtNode>();
    llvm::Value *value = emitExpr(let->value);
    withBinding(let->var.get(), value, [&] {
      emitStmt(let->body);
      return 0;
    });
    return;
  }
  case StmtKind::IfThenElse:
    return emitIfThenElse(s.as<loop::IfThenElseNode>());
  case StmtKind::Allocate:
    return emitAllocate(s.as<loop::AllocateNode>());
  case StmtKind::Evaluate: {
    const Expr &v = s.as<loop::EvaluateNode>()->value;
    if (v.defined() && !v.as<loop::IntImmNode>() && !v.as<loop::FloatImmNode>())
      emitExpr(v); // pure today: LLVM deletes it
    return;
  }
  case StmtKind::Seq:
    for (const Stmt &child : s.as<loop::SeqNode>()->stmts)
      emitStmt(child);
    return;
  }
  unsupported(concat("statement kind '", loop::stmtKindName(s.kind()), "'"));
}

void FunctionEmitter::emitIfThenElse(const loop::IfThenElseNode *node) {
  llvm::Value *cond = emitExpr(node->cond);
  auto *thenBB = llvm::BasicBlock::Create(ctx_, "then", fn_);
  auto *elseBB = node->elseCase.defined() ? llvm::BasicBlock::Create(ctx_, "else", fn_) : nullptr;
  auto *done = llvm::BasicBlock::Create(ctx_, "endif", fn_);
  b_.CreateCondBr(cond, thenBB, elseBB ? elseBB : done);
  b_.SetInsertPoint(thenBB);
  emitStmt(node->thenCase);
  b_.CreateBr(done);
  if (elseBB) {
    b_.SetInsertPoint(elseBB);
    emitStmt(node->elseCase);
    b_.CreateBr(done);
  }
  b_.SetInsertPoint(done);
}

void FunctionEmitter::emitFor(const loop::ForNode *loop) {
  llvm::Value *min = emitExpr(loop->min);
  llvm::Value *extent = emitExpr(loop->extent);
  if (loop->forKind == loop::ForKind::Parallel)
    return emitParallelFor(loop, min, extent);
  const bool isSigned = !loop->loopVar.type().isUInt();
  llvm::Value *end = b_.CreateAdd(min, extent, loop->loopVar.name() + ".end");
  llvm::BasicBlock *pre = b_.GetInsertBlock();
  auto *body = llvm::BasicBlock::Create(ctx_, loop->loopVar.name() + ".loop", fn_);
  auto *exit = llvm::BasicBlock::Create(ctx_, loop->loopVar.name() + ".exit", fn_);
  b_.CreateCondBr(isSigned ? b_.CreateICmpSLT(min, end) : b_.CreateICmpULT(min, end), body, exit);
  b_.SetInsertPoint(body);
  llvm::PHINode *iv = b_.CreatePHI(min->getType(), 2, loop->loopVar.name());
  iv->addIncoming(min, pre);
  int64_t vectorsBefore = vectorValues_;
  withBinding(loop->loopVar.get(), iv, [&] {
    emitStmt(loop->body);
    return 0;
  });
  llvm::Value *next = b_.CreateAdd(iv, llvm::ConstantInt::get(min->getType(), 1));
  iv->addIncoming(next, b_.GetInsertBlock());
  llvm::BranchInst *latch = b_.CreateCondBr(
      isSigned ? b_.CreateICmpSLT(next, end) : b_.CreateICmpULT(next, end), body, exit);

  std::vector<llvm::Metadata *> props;
  switch (loop->forKind) {
  case loop::ForKind::Unrolled: // not unrolled by the loop pipeline: LLVM does it
    props.push_back(loopProperty(ctx_, "llvm.loop.unroll.full", nullptr));
    break;
  case loop::ForKind::Vectorized: // not vectorized by the loop pipeline: ask LLVM's vectorizer
    props.push_back(loopProperty(ctx_, "llvm.loop.vectorize.enable", b_.getTrue()));
    if (const int64_t *c = loop::asConstInt(loop->extent); c && *c > 1 && *c <= 64)
      props.push_back(loopProperty(ctx_, "llvm.loop.vectorize.width", b_.getInt32(int32_t(*c))));
    break;
  default:
    if (emit_.disableLLVMVectorizerOnVectorLoops && vectorValues_ != vectorsBefore)
      props.push_back(loopProperty(ctx_, "llvm.loop.vectorize.enable", b_.getFalse()));
    break;
  }
  if (!props.empty())
    latch->setMetadata(llvm::LLVMContext::MD_loop, loopMetadata(ctx_, props));
  b_.SetInsertPoint(exit);
}

/// A parallel loop: the body is outlined into `void KERNEL_parallel_N(int64_t begin, int64_t
/// end, void *ctx)`; every value in scope (loop IR variables, buffer pointers) and the loop's
/// min travel in a struct that ctx points to. The kernel calls tessel_parallel_for(extent, body,
/// ctx), which returns when every chunk is done.
void FunctionEmitter::emitParallelFor(const loop::ForNode *loop, llvm::Value *min,
                                      llvm::Value *extent) {
  llvm::Type *i64 = b_.getInt64Ty();
  llvm::Type *ptr = b_.getPtrTy();
  std::vector<const loop::VarNode *> captured;
  std::vector<llvm::Type *> fields = {min->getType()};
  for (const auto &[var, value] : vars_) {
    captured.push_back(var);
    fields.push_back(value->getType());
  }
  auto *ctxTy = llvm::StructType::get(ctx_, fields);

  auto *bodyTy = llvm::FunctionType::get(b_.getVoidTy(), {i64, i64, ptr}, false);
  auto *body = llvm::Function::Create(bodyTy, llvm::Function::InternalLinkage,
                                      concat(kernel_, "_parallel_", (*parallelCounter_)++),
                                      module_);
  body->addParamAttr(2, llvm::Attribute::NoAlias);
  body->addFnAttr(llvm::Attribute::NoUnwind);

  // Caller side: pack, call when the loop runs at all.
  llvm::AllocaInst *packed = entryAlloca(ctxTy, nullptr, 8, "parallel.ctx");
  b_.CreateStore(min, b_.CreateStructGEP(ctxTy, packed, 0));
  for (size_t i = 0; i < captured.size(); ++i)
    b_.CreateStore(vars_.at(captured[i]), b_.CreateStructGEP(ctxTy, packed, unsigned(i + 1)));
  llvm::Value *n = toI64(extent, !loop->loopVar.type().isUInt());
  auto *run = llvm::BasicBlock::Create(ctx_, "parallel.run", fn_);
  auto *done = llvm::BasicBlock::Create(ctx_, "parallel.done", fn_);
  b_.CreateCondBr(b_.CreateICmpSGT(n, b_.getInt64(0)), run, done);
  b_.SetInsertPoint(run);
  llvm::FunctionCallee parallelFor = module_.getOrInsertFunction(
      "tessel_parallel_for", llvm::FunctionType::get(b_.getInt32Ty(), {i64, ptr, ptr}, false));
  // -1 when the runtime could not run the loop at all (its pool could not be created; n >= 0,
  // the function is not null and never throws): the calling thread then runs every iteration.
  llvm::Value *status = b_.CreateCall(parallelFor, {n, body, packed});
  auto *serial = llvm::BasicBlock::Create(ctx_, "parallel.serial", fn_);
  b_.CreateCondBr(b_.CreateICmpEQ(status, b_.getInt32(0)), done, serial);
  b_.SetInsertPoint(serial);
  b_.CreateCall(bodyTy, body, {b_.getInt64(0), n, packed});
  b_.CreateBr(done);
  b_.SetInsertPoint(done);

  // Outlined side: body(begin, end, ctx) unpacks ctx and calls body.impl(begin, end, min,
  // captured...), which runs a serial loop over [begin, end) of the chunk. The captured buffer
  // pointers are parameters of body.impl, marked noalias like the kernel's own buffer params
  // (EmitOptions::noaliasBuffers; allocations never alias anything): loaded from ctx they
  // would carry no aliasing facts, and LLVM could then not keep values such as a GEMM's
  // accumulators in registers across a loop that also reads other buffers. body.impl is
  // always inlined into body; the inliner turns the noalias params into scoped metadata.
  std::vector<llvm::Type *> implParams = {i64, i64};
  implParams.insert(implParams.end(), fields.begin(), fields.end());
  auto *impl = llvm::Function::Create(
      llvm::FunctionType::get(b_.getVoidTy(), implParams, false),
      llvm::Function::InternalLinkage, body->getName() + ".impl", module_);
  impl->addFnAttr(llvm::Attribute::AlwaysInline);
  impl->addFnAttr(llvm::Attribute::NoUnwind);
  {
    llvm::IRBuilder<> bb(llvm::BasicBlock::Create(ctx_, "entry", body));
    llvm::Value *ctxArg = body->getArg(2);
    std::vector<llvm::Value *> args = {body->getArg(0), body->getArg(1)};
    for (size_t i = 0; i < fields.size(); ++i)
      args.push_back(bb.CreateLoad(fields[i], bb.CreateStructGEP(ctxTy, ctxArg, unsigned(i)),
                                   i == 0 ? std::string("min") : captured[i - 1]->name));
    bb.CreateCall(impl, args);
    bb.CreateRetVoid();
  }
  FunctionEmitter inner(module_, impl, kernel_, emit_, parallelCounter_);
  llvm::IRBuilder<> &ib = inner.builder();
  ib.SetInsertPoint(llvm::BasicBlock::Create(ctx_, "entry", impl));
  llvm::Value *innerMin = impl->getArg(2);
  for (size_t i = 0; i < captured.size(); ++i) {
    llvm::Argument *v = impl->getArg(unsigned(i + 3));
    v->setName(captured[i]->name);
    if (emit_.noaliasBuffers && v->getType()->isPointerTy())
      impl->addParamAttr(unsigned(i + 3), llvm::Attribute::NoAlias);
    inner.vars_[captured[i]] = v;
    auto a = aligns_.find(captured[i]);
    if (a != aligns_.end())
      inner.aligns_[captured[i]] = a->second;
  }
  llvm::Type *ivTy = min->getType();
  llvm::Value *begin = ib.CreateIntCast(impl->getArg(0), ivTy, true);
  llvm::Value *end = ib.CreateIntCast(impl->getArg(1), ivTy, true);
  llvm::BasicBlock *pre = ib.GetInsertBlock();
  auto *loopBB = llvm::BasicBlock::Create(ctx_, "chunk.loop", impl);
  auto *exitBB = llvm::BasicBlock::Create(ctx_, "chunk.exit", impl);
  ib.CreateCondBr(ib.CreateICmpSLT(begin, end), loopBB, exitBB);
  ib.SetInsertPoint(loopBB);
  llvm::PHINode *i = ib.CreatePHI(ivTy, 2, "chunk.i");
  i->addIncoming(begin, pre);
  inner.vars_[loop->loopVar.get()] = ib.CreateAdd(innerMin, i, loop->loopVar.name());
  inner.emitStmt(loop->body);
  llvm::Value *next = ib.CreateAdd(i, llvm::ConstantInt::get(ivTy, 1));
  i->addIncoming(next, ib.GetInsertBlock());
  ib.CreateCondBr(ib.CreateICmpSLT(next, end), loopBB, exitBB);
  ib.SetInsertPoint(exitBB);
  ib.CreateRetVoid();
}

} // namespace

//===----------------------------------------------------------------------===//
// Entry points
//===----------------------------------------------------------------------===//

std::unique_ptr<llvm::Module> emitLLVM(const loop::LoweredFunc &func, llvm::LLVMContext &context,
                                       const Target &target, const CodeGenOptions &opts,
                                       const EmitOptions &emit) {
  TESSEL_CHECK(!func.name.empty(), "LLVM emitter: the function has no name");
  TESSEL_CHECK(emit.bufferAlignment == 0 || (emit.bufferAlignment & (emit.bufferAlignment - 1)) == 0,
               "LLVM emitter: function '", func.name, "': buffer alignment ",
               emit.bufferAlignment, " is not a power of two");
  auto module = std::make_unique<llvm::Module>(func.name, context);
  module->setTargetTriple(target.triple());
  llvm::IRBuilder<> b(context);
  llvm::Type *ptr = b.getPtrTy();

  // NAME_typed(params...): buffers as pointers, scalars by value.
  std::vector<llvm::Type *> types;
  for (const loop::Param &p : func.params) {
    if (p.isBuffer()) {
      types.push_back(ptr);
      continue;
    }
    TESSEL_CHECK(p.var.defined(), "LLVM emitter: function '", func.name,
                 "' has a parameter that is neither a buffer nor a variable");
    types.push_back(llvmType(context, p.var.type()));
  }
  auto *typedTy = llvm::FunctionType::get(b.getVoidTy(), types, false);
  auto *typed = llvm::Function::Create(typedTy, llvm::Function::ExternalLinkage,
                                       func.name + "_typed", *module);
  typed->addFnAttr(llvm::Attribute::NoUnwind);
  int parallelCounter = 0;
  FunctionEmitter emitter(*module, typed, func.name, emit, &parallelCounter);
  for (size_t i = 0; i < func.params.size(); ++i) {
    const loop::Param &p = func.params[i];
    llvm::Argument *arg = typed->getArg(unsigned(i));
    arg->setName(p.name());
    if (!p.isBuffer()) {
      emitter.bind(p.var, arg);
      continue;
    }
    unsigned elemAlign = unsigned(std::max<size_t>(1, dtypeSize(p.buffer.dtype())));
    unsigned align = std::max({elemAlign, emit.bufferAlignment, unsigned(p.buffer->alignment)});
    if (emit.noaliasBuffers)
      arg->addAttr(llvm::Attribute::NoAlias);
    arg->addAttr(llvm::Attribute::getWithAlignment(context, llvm::Align(align)));
    emitter.bindBuffer(p.buffer, arg, align);
  }
  emitter.builder().SetInsertPoint(llvm::BasicBlock::Create(context, "entry", typed));
  emitter.emitStmt(func.body);
  emitter.builder().CreateRetVoid();

  // NAME(void **args): unpack and call NAME_typed.
  auto *entry = llvm::Function::Create(llvm::FunctionType::get(b.getVoidTy(), {ptr}, false),
                                       llvm::Function::ExternalLinkage, func.name, *module);
  entry->addFnAttr(llvm::Attribute::NoUnwind);
  entry->getArg(0)->setName("args");
  b.SetInsertPoint(llvm::BasicBlock::Create(context, "entry", entry));
  std::vector<llvm::Value *> values;
  for (size_t i = 0; i < func.params.size(); ++i) {
    llvm::Value *slot = b.CreateLoad(
        ptr, b.CreateConstInBoundsGEP1_64(ptr, entry->getArg(0), i), func.params[i].name());
    values.push_back(func.params[i].isBuffer() ? slot : b.CreateLoad(types[i], slot));
  }
  b.CreateCall(typed, values);
  b.CreateRetVoid();
  return module;
}

CompiledFunc compileLoweredFunc(const loop::LoweredFunc &func, const CodeGenOptions &opts,
                                const EmitOptions &emit) {
  auto jit = std::make_shared<JIT>(opts);
  auto context = std::make_unique<llvm::LLVMContext>();
  auto module = emitLLVM(func, *context, jit->target(), opts, emit);
  jit->addModule(std::move(module), std::move(context));
  CompiledFunc out;
  out.entry_ = jit->lookupFunction<void(void **)>(func.name);
  out.typed_ = jit->lookup(func.name + "_typed");
  out.name_ = func.name;
  out.jit_ = std::move(jit);
  return out;
}

} // namespace tessel::codegen
