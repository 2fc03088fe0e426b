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
#include <llvm/IR/GlobalVariable.h>
#include <llvm/IR/IRBuilder.h>
#include <llvm/IR/Intrinsics.h>
#include <llvm/IR/LLVMContext.h>
#include <llvm/IR/Metadata.h>
#include <llvm/IR/Module.h>
#include <llvm/TargetParser/Triple.h>

#include <algorithm>
#include <cstdlib>
#include <numeric>
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
  case DType::f16: // IEEE bits in memory, an f32 in registers (see emitHalfToFloat)
  case DType::bf16:
    return storage ? llvm::Type::getInt16Ty(ctx) : llvm::Type::getFloatTy(ctx);
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

//===----------------------------------------------------------------------===//
// f16 and bf16
//
// An f16 or bf16 value is 16 bits in memory and an f32 in registers that holds a value of the
// narrow type exactly. Loads widen the bits (exact), stores narrow them, and every arithmetic
// result of a narrow type (Add, Sub, Mul, Div, Mod, math calls, vector reductions, casts to it)
// is rounded to it at once: the interpreter's reference kernels compute each op in float and
// round its result (Float16/BFloat16 in Support/DType.h), and this gives the same bits. The
// conversions are integer code written after Float16::fromFloat/toFloat and BFloat16::fromFloat
// (round to nearest even; NaN quieted with its payload's top bits kept; f16 subnormals exact):
// neither a libgcc call (__truncsfhf2, __truncsfbf2) nor a target instruction whose handling
// of subnormals differs (vcvtneps2bf16 flushes them to zero).
//===----------------------------------------------------------------------===//

/// An i32 (or vector of i32) type shaped like `like` (a float or vector of floats).
llvm::Type *int32Like(llvm::IRBuilder<> &b, llvm::Type *like) {
  llvm::Type *it = b.getInt32Ty();
  if (auto *vt = llvm::dyn_cast<llvm::VectorType>(like))
    it = llvm::VectorType::get(it, vt->getElementCount());
  return it;
}

/// f16 bits (i16 or a vector of i16) to the f32 of the same value.
llvm::Value *emitHalfToFloat(llvm::IRBuilder<> &b, llvm::Value *bits) {
  llvm::Type *it = int32Like(b, bits->getType());
  llvm::Type *ft = b.getFloatTy();
  if (auto *vt = llvm::dyn_cast<llvm::VectorType>(it))
    ft = llvm::VectorType::get(ft, vt->getElementCount());
  auto ci = [&](uint32_t v) { return llvm::ConstantInt::get(it, v); };
  llvm::Value *h = b.CreateZExt(bits, it);
  llvm::Value *sign = b.CreateShl(b.CreateAnd(h, ci(0x8000)), ci(16));
  llvm::Value *exp = b.CreateAnd(b.CreateLShr(h, ci(10)), ci(0x1f));
  llvm::Value *mant = b.CreateAnd(h, ci(0x3ff));
  llvm::Value *mant13 = b.CreateShl(mant, ci(13));
  // normal: rebias the exponent by 127 - 15
  llvm::Value *normal =
      b.CreateOr(b.CreateShl(b.CreateAdd(exp, ci(112)), ci(23)), mant13);
  // inf/NaN: all-ones exponent, payload kept
  llvm::Value *special = b.CreateOr(ci(0x7f800000), mant13);
  // zero/subnormal: mant * 2^-24, exact in f32
  llvm::Value *sub = b.CreateBitCast(
      b.CreateFMul(b.CreateUIToFP(mant, ft), llvm::ConstantFP::get(ft, 0x1p-24)), it);
  llvm::Value *mag = b.CreateSelect(b.CreateICmpEQ(exp, ci(0)), sub,
                                    b.CreateSelect(b.CreateICmpEQ(exp, ci(31)), special, normal));
  return b.CreateBitCast(b.CreateOr(sign, mag), ft);
}

/// An f32 (or vector) to f16 bits (i16 or a vector of i16): Float16::fromFloat.
llvm::Value *emitFloatToHalf(llvm::IRBuilder<> &b, llvm::Value *f) {
  llvm::Type *ft = f->getType();
  llvm::Type *it = int32Like(b, ft);
  auto ci = [&](uint32_t v) { return llvm::ConstantInt::get(it, v); };
  llvm::Value *x = b.CreateBitCast(f, it);
  llvm::Value *sign = b.CreateAnd(b.CreateLShr(x, ci(16)), ci(0x8000));
  llvm::Value *absx = b.CreateAnd(x, ci(0x7fffffff));
  // inf stays inf; NaN becomes a quiet NaN with the payload's top bits
  llvm::Value *nanBits = b.CreateOr(ci(0x200), b.CreateAnd(b.CreateLShr(absx, ci(13)), ci(0x3ff)));
  llvm::Value *special = b.CreateOr(
      ci(0x7c00), b.CreateSelect(b.CreateICmpUGT(absx, ci(0x7f800000)), nanBits, ci(0)));
  // subnormal (or zero): round absx * 2^24 to an integer, to nearest even, by adding 2^23
  // (the sum is below 2^24, where the f32 spacing is 1)
  llvm::Value *scaled = b.CreateFMul(b.CreateBitCast(absx, ft), llvm::ConstantFP::get(ft, 0x1p24));
  llvm::Value *sub = b.CreateSub(
      b.CreateBitCast(b.CreateFAdd(scaled, llvm::ConstantFP::get(ft, 0x1p23)), it),
      ci(0x4b000000));
  // normal: rebias, keep 10 mantissa bits, round the 13 dropped bits to nearest even (a carry
  // into the exponent is right, up to inf)
  llvm::Value *h = b.CreateOr(b.CreateShl(b.CreateSub(b.CreateLShr(absx, ci(23)), ci(112)), ci(10)),
                              b.CreateLShr(b.CreateAnd(absx, ci(0x7fffff)), ci(13)));
  llvm::Value *rest = b.CreateAnd(absx, ci(0x1fff));
  llvm::Value *up = b.CreateOr(
      b.CreateICmpUGT(rest, ci(0x1000)),
      b.CreateAnd(b.CreateICmpEQ(rest, ci(0x1000)), b.CreateICmpNE(b.CreateAnd(h, ci(1)), ci(0))));
  llvm::Value *normal = b.CreateAdd(h, b.CreateZExt(up, it));
  llvm::Value *mag = b.CreateSelect(
      b.CreateICmpUGE(absx, ci(0x7f800000)), special,
      b.CreateSelect(b.CreateICmpUGE(absx, ci(0x477ff000)), ci(0x7c00),
                     b.CreateSelect(b.CreateICmpULT(absx, ci(0x38800000)), sub, normal)));
  llvm::Type *i16 = b.getInt16Ty();
  if (auto *vt = llvm::dyn_cast<llvm::VectorType>(it))
    i16 = llvm::VectorType::get(i16, vt->getElementCount());
  return b.CreateTrunc(b.CreateOr(sign, mag), i16);
}

/// bf16 bits to the f32 of the same value: the top half of its bits.
llvm::Value *emitBFloatToFloat(llvm::IRBuilder<> &b, llvm::Value *bits) {
  llvm::Type *it = int32Like(b, bits->getType());
  llvm::Type *ft = b.getFloatTy();
  if (auto *vt = llvm::dyn_cast<llvm::VectorType>(it))
    ft = llvm::VectorType::get(ft, vt->getElementCount());
  return b.CreateBitCast(b.CreateShl(b.CreateZExt(bits, it), llvm::ConstantInt::get(it, 16)), ft);
}

/// An f32 (or vector) to bf16 bits: BFloat16::fromFloat (NaN quieted, else nearest even).
llvm::Value *emitFloatToBFloat(llvm::IRBuilder<> &b, llvm::Value *f) {
  llvm::Type *it = int32Like(b, f->getType());
  auto ci = [&](uint32_t v) { return llvm::ConstantInt::get(it, v); };
  llvm::Value *x = b.CreateBitCast(f, it);
  llvm::Value *isNaN = b.CreateICmpUGT(b.CreateAnd(x, ci(0x7fffffff)), ci(0x7f800000));
  llvm::Value *lsb = b.CreateAnd(b.CreateLShr(x, ci(16)), ci(1));
  llvm::Value *rounded = b.CreateLShr(b.CreateAdd(x, b.CreateAdd(ci(0x7fff), lsb)), ci(16));
  llvm::Value *nan = b.CreateOr(b.CreateLShr(x, ci(16)), ci(0x40));
  llvm::Type *i16 = b.getInt16Ty();
  if (auto *vt = llvm::dyn_cast<llvm::VectorType>(it))
    i16 = llvm::VectorType::get(i16, vt->getElementCount());
  return b.CreateTrunc(b.CreateSelect(isNaN, nan, rounded), i16);
}

bool isNarrowFloat(DType dt) { return dt == DType::f16 || dt == DType::bf16; }

/// Bits in memory of a narrow float to its f32 register value, and back.
llvm::Value *emitNarrowToFloat(llvm::IRBuilder<> &b, DType dt, llvm::Value *bits) {
  return dt == DType::f16 ? emitHalfToFloat(b, bits) : emitBFloatToFloat(b, bits);
}
llvm::Value *emitFloatToNarrow(llvm::IRBuilder<> &b, DType dt, llvm::Value *f) {
  return dt == DType::f16 ? emitFloatToHalf(b, f) : emitFloatToBFloat(b, f);
}

/// An f32 register value rounded to the nearest value of the narrow type `dt`.
llvm::Value *emitRoundToNarrow(llvm::IRBuilder<> &b, DType dt, llvm::Value *f) {
  return emitNarrowToFloat(b, dt, emitFloatToNarrow(b, dt, f));
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

/// tanh(x) for f32 scalars or vectors as straight-line code (the rational approximation of
/// Eigen's generic_fast_tanh_float): x clamped to +-7.905311 (tanh is within 3e-7 of +-1
/// beyond), then x * P(x^2) / Q(x^2) with P of degree 6 and Q of degree 3 in x^2, the result
/// clamped to [-1, 1], and +-1 beyond |x| = 9.02; |x| < 4e-4
/// gives x itself (tanh(x) = x - x^3/3 rounds to x there; -0 stays -0). NaN stays NaN (the
/// clamps are compares and selects, which keep it). Within 4 ulp of std::tanh
/// (unittests/CodeGenVectorMathTest.cpp); the back end would otherwise call tanhf per lane.
llvm::Value *emitTanhF32(llvm::IRBuilder<> &b, llvm::Value *x) {
  llvm::Type *ft = x->getType();
  auto c = [&](double v) { return llvm::ConstantFP::get(ft, v); };
  const double bound = 7.90531110763549805;
  llvm::Value *xc = b.CreateSelect(b.CreateFCmpOGT(x, c(bound)), c(bound), x);
  xc = b.CreateSelect(b.CreateFCmpOLT(xc, c(-bound)), c(-bound), xc);
  llvm::Value *x2 = b.CreateFMul(xc, xc);
  auto fma = [&](llvm::Value *a, llvm::Value *m, llvm::Value *add) {
    return b.CreateIntrinsic(llvm::Intrinsic::fma, {ft}, {a, m, add});
  };
  llvm::Value *p = c(-2.76076847742355e-16);
  for (double k : {2.00018790482477e-13, -8.60467152213735e-11, 5.12229709037114e-08,
                   1.48572235717979e-05, 6.37261928875436e-04, 4.89352455891786e-03})
    p = fma(p, x2, c(k));
  p = b.CreateFMul(p, xc);
  llvm::Value *q = c(1.19825839466702e-06);
  for (double k : {1.18534705686654e-04, 2.26843463243900e-03, 4.89352518554385e-03})
    q = fma(q, x2, c(k));
  llvm::Value *res = b.CreateFDiv(p, q);
  // The quotient can round a little beyond +-1 near the clamp: tanh never does.
  res = b.CreateSelect(b.CreateFCmpOGT(res, c(1.0)), c(1.0), res);
  res = b.CreateSelect(b.CreateFCmpOLT(res, c(-1.0)), c(-1.0), res);
  // Beyond 9.02 tanh rounds to +-1 in f32 (the clamped quotient is ~4 ulp below).
  llvm::Value *ax = b.CreateUnaryIntrinsic(llvm::Intrinsic::fabs, x);
  llvm::Value *one = b.CreateBinaryIntrinsic(llvm::Intrinsic::copysign, c(1.0), x);
  res = b.CreateSelect(b.CreateFCmpOGT(ax, c(9.02)), one, res);
  return b.CreateSelect(b.CreateFCmpOLT(ax, c(4e-4)), x, res);
}

/// erf(x) for f32 scalars or vectors as straight-line code (the rational approximation of
/// Eigen's generic_fast_erf_float): x clamped to +-4 (erf rounds to +-1 in f32 beyond), then
/// x * P(x^2) / Q(x^2) with P of degree 6 and Q of degree 4 in x^2 (relative error ~6.5e-8 in
/// exact arithmetic). NaN stays NaN, -0 stays -0. Gelu's erf; the back end would otherwise
/// call erff per lane.
llvm::Value *emitErfF32(llvm::IRBuilder<> &b, llvm::Value *x) {
  llvm::Type *ft = x->getType();
  auto c = [&](double v) { return llvm::ConstantFP::get(ft, v); };
  llvm::Value *xc = b.CreateSelect(b.CreateFCmpOGT(x, c(4.0)), c(4.0), x);
  xc = b.CreateSelect(b.CreateFCmpOLT(xc, c(-4.0)), c(-4.0), xc);
  llvm::Value *x2 = b.CreateFMul(xc, xc);
  auto fma = [&](llvm::Value *a, llvm::Value *m, llvm::Value *add) {
    return b.CreateIntrinsic(llvm::Intrinsic::fma, {ft}, {a, m, add});
  };
  llvm::Value *p = c(-2.72614225801306e-10);
  for (double k : {2.77068142495902e-08, -2.10102402082508e-06, -5.69250639462346e-05,
                   -7.34990630326855e-04, -2.95459980854025e-03, -1.60960333262415e-02})
    p = fma(p, x2, c(k));
  p = b.CreateFMul(p, xc);
  llvm::Value *q = c(-1.45660718464996e-05);
  for (double k : {-2.13374055278905e-04, -1.68282697438203e-03, -7.37332916720468e-03,
                   -1.42647390514189e-02})
    q = fma(q, x2, c(k));
  llvm::Value *res = b.CreateFDiv(p, q);
  res = b.CreateSelect(b.CreateFCmpOGT(res, c(1.0)), c(1.0), res);
  return b.CreateSelect(b.CreateFCmpOLT(res, c(-1.0)), c(-1.0), res);
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

Expr foldVectorIndex(const Expr &e);

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
  /// fresh_u64(salt) for one lane (loop IR CallNode; lib/Graph/Ops/Random.cpp).
  llvm::Value *emitFreshU64(llvm::Value *salt);
  /// f(lane's arguments) for each lane of a call of type t, reassembled into t's vector.
  template <class F>
  llvm::Value *emitPerLane(const Type &t, const std::vector<llvm::Value *> &args, F &&f) {
    if (t.lanes == 1)
      return f(args);
    llvm::Value *out = llvm::PoisonValue::get(llvmType(ctx_, t));
    for (int i = 0; i < t.lanes; ++i) {
      std::vector<llvm::Value *> lane;
      for (llvm::Value *a : args)
        lane.push_back(b_.CreateExtractElement(a, uint64_t(i)));
      out = b_.CreateInsertElement(out, f(lane), uint64_t(i));
    }
    return out;
  }
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
  llvm::Value *emitSplitIndex(const Expr &e, int64_t &offset);
  llvm::Value *pointerAt(llvm::Type *elem, llvm::Value *data, const Expr &index);

  llvm::Module &module_;
  llvm::LLVMContext &ctx_;
  llvm::IRBuilder<> b_;
  llvm::Function *fn_;
  std::string kernel_;
  EmitOptions emit_;
  int64_t stackBytes_ = 0; // bytes of this function's entry-block Allocate slots
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
  case ExprKind::Call: {
    llvm::Value *v = emitCall(e.as<loop::CallNode>());
    return isNarrowFloat(type.dtype) ? emitRoundToNarrow(b_, type.dtype, v) : v;
  }
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
  case ExprKind::VectorReduce: {
    llvm::Value *v = emitVectorReduce(e.as<loop::VectorReduceNode>());
    return isNarrowFloat(type.dtype) ? emitRoundToNarrow(b_, type.dtype, v) : v;
  }
  default:
    if (loop::isBinary(e.kind())) {
      llvm::Value *v = emitBinary(e);
      // f16/bf16: computed in f32, rounded (Min/Max pick an operand: nothing to round)
      const ExprKind k = e.kind();
      if (isNarrowFloat(type.dtype) && (k == ExprKind::Add || k == ExprKind::Sub ||
                                        k == ExprKind::Mul || k == ExprKind::Div ||
                                        k == ExprKind::Mod))
        v = emitRoundToNarrow(b_, type.dtype, v);
      return v;
    }
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
  if (isNarrowFloat(to.dtype) && !from.isBool()) {
    // As the interpreter's convertElement: through float (integers through double), rounded.
    if (from.isFloat()) {
      if (v->getType() != dst)
        v = b_.CreateFPCast(v, dst); // f64 -> f32
    } else {
      llvm::Type *via = from.bits() == 64 ? llvmType(ctx_, Type(DType::f64, to.lanes)) : dst;
      v = from.isInt() ? b_.CreateSIToFP(v, via) : b_.CreateUIToFP(v, via);
      if (via != dst)
        v = b_.CreateFPCast(v, dst);
    }
    return emitRoundToNarrow(b_, to.dtype, v);
  }
  if (from.isFloat() && to.isFloat())
    return v->getType() == dst ? v : b_.CreateFPCast(v, dst);
  if (from.isFloat())
    return to.isInt() ? b_.CreateFPToSI(v, dst) : b_.CreateFPToUI(v, dst);
  if (to.isFloat())
    return from.isInt() ? b_.CreateSIToFP(v, dst) : b_.CreateUIToFP(v, dst);
  return b_.CreateIntCast(v, dst, /*isSigned=*/from.isInt());
}

llvm::Value *FunctionEmitter::emitCall(const loop::CallNode *call) {
  const Type t = call->type;
  if (call->name == "prefetch") {
    // llvm.prefetch(address, read, locality 3 (keep in all levels), data cache) of the
    // element's (first lane's) address; plain GEPs, since the element may be past the end.
    const auto *ld = call->args[0].as<loop::LoadNode>();
    llvm::Value *data = lookup(ld->buffer->data.get());
    llvm::Type *elem = scalarType(ctx_, ld->buffer.dtype(), true);
    Expr index = foldVectorIndex(ld->indices.at(0));
    if (const auto *r = index.as<loop::RampNode>())
      index = r->base;
    if (index.type().lanes != 1)
      unsupported("prefetch of a gathered address (expected a scalar or contiguous index)");
    llvm::Value *ptr = pointerAt(elem, data, index);
    b_.CreateIntrinsic(llvm::Intrinsic::prefetch, {ptr->getType()},
                       {ptr, b_.getInt32(0), b_.getInt32(3), b_.getInt32(1)});
    return llvm::Constant::getNullValue(llvmType(ctx_, t));
  }
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
  if (name == "shl" || name == "shr") {
    // The loop IR defines every amount: one outside [0, bits) shifts all bits out (LLVM's
    // shifts would be poison there), so the amount is compared unsigned with the width.
    llvm::Value *x = args[0], *y = args[1];
    llvm::Value *bits = llvm::ConstantInt::get(type, uint64_t(t.bits()));
    llvm::Value *inRange = b_.CreateICmpULT(y, bits);
    if (name == "shr" && t.isInt()) { // arithmetic: an amount >= bits fills with the sign bit
      llvm::Value *last = llvm::ConstantInt::get(type, uint64_t(t.bits() - 1));
      return b_.CreateAShr(x, b_.CreateSelect(inRange, y, last));
    }
    llvm::Value *safe = b_.CreateSelect(inRange, y, llvm::Constant::getNullValue(type));
    llvm::Value *shifted = name == "shl" ? b_.CreateShl(x, safe) : b_.CreateLShr(x, safe);
    return b_.CreateSelect(inRange, shifted, llvm::Constant::getNullValue(type));
  }
  // --- random ops (lib/Graph/Ops/Random.cpp): xor and fresh_u64
  if (name == "xor")
    return b_.CreateXor(args[0], args[1]);
  if (name == "fresh_u64") // one fresh value per lane
    return emitPerLane(t, args, [&](std::vector<llvm::Value *> a) { return emitFreshU64(a[0]); });
  // --- end of the random ops' intrinsics
  if (name == "bf16_trunc") { // keep the top 16 bits; NaN: set the quiet bit first
    if (t.dtype != DType::f32)
      unsupported(concat("bf16_trunc of ", t.toString(), " (expected f32)"));
    llvm::Type *it = int32Like(b_, type);
    llvm::Value *x = b_.CreateBitCast(args[0], it);
    llvm::Value *isNaN = b_.CreateFCmpUNO(args[0], args[0]);
    x = b_.CreateSelect(isNaN, b_.CreateOr(x, llvm::ConstantInt::get(it, 0x400000)), x);
    return b_.CreateBitCast(b_.CreateAnd(x, llvm::ConstantInt::get(it, 0xffff0000u)), type);
  }
  if (name == "rsqrt") // 1 / sqrt(x)
    return b_.CreateFDiv(llvm::ConstantFP::get(type, 1.0),
                         b_.CreateUnaryIntrinsic(llvm::Intrinsic::sqrt, args[0]));
  const bool f32 = t.dtype == DType::f32;
  if (name == "exp" && f32)
    return emitExpF32(b_, args[0]);
  if (name == "tanh" && f32)
    return emitTanhF32(b_, args[0]);
  if (name == "erf" && f32)
    return emitErfF32(b_, args[0]);
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
      {"tanh", {"tanhf", "tanh"}}, {"erf", {"erff", "erf"}},   {"asin", {"asinf", "asin"}},
      {"acos", {"acosf", "acos"}}, {"atan", {"atanf", "atan"}}};
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

/// fresh_u64(salt): SplitMix64's finalizer of (n * golden + (clock ^ &counter ^ salt)), where n
/// is the post-increment of a module-private i64 counter (atomicrmw add: thread-safe, distinct
/// within a process), the clock is the cycle counter on x86 (rdtsc) and the virtual counter on
/// AArch64 (llvm.readsteadycounter; the cycle counter may trap there), none elsewhere, and the
/// counter's address differs between processes (ASLR). The runtime sees nothing of it.
llvm::Value *FunctionEmitter::emitFreshU64(llvm::Value *salt) {
  llvm::Type *i64 = b_.getInt64Ty();
  const char *kName = "tessel.fresh_u64.counter";
  llvm::GlobalVariable *counter = module_.getGlobalVariable(kName, /*AllowInternal=*/true);
  if (!counter)
    counter = new llvm::GlobalVariable(module_, i64, /*isConstant=*/false,
                                       llvm::GlobalValue::InternalLinkage,
                                       llvm::ConstantInt::get(i64, 0), kName);
  llvm::Value *n = b_.CreateAtomicRMW(llvm::AtomicRMWInst::Add, counter,
                                      llvm::ConstantInt::get(i64, 1), llvm::MaybeAlign(8),
                                      llvm::AtomicOrdering::Monotonic);
  n = b_.CreateAdd(n, llvm::ConstantInt::get(i64, 1));
  llvm::Triple triple(module_.getTargetTriple());
  llvm::Value *clock = llvm::ConstantInt::get(i64, 0);
  if (triple.isX86())
    clock = b_.CreateIntrinsic(llvm::Intrinsic::readcyclecounter, {}, {});
  else if (triple.isAArch64())
    clock = b_.CreateIntrinsic(llvm::Intrinsic::readsteadycounter, {}, {});
  llvm::Value *mixIn = b_.CreateXor(b_.CreateXor(clock, b_.CreatePtrToInt(counter, i64)), salt);
  llvm::Value *z = b_.CreateAdd(b_.CreateMul(n, llvm::ConstantInt::get(i64, 0x9E3779B97F4A7C15ull)),
                                mixIn);
  auto xorShift = [&](llvm::Value *v, uint64_t k) {
    return b_.CreateXor(v, b_.CreateLShr(v, llvm::ConstantInt::get(i64, k)));
  };
  z = b_.CreateMul(xorShift(z, 30), llvm::ConstantInt::get(i64, 0xBF58476D1CE4E5B9ull));
  z = b_.CreateMul(xorShift(z, 27), llvm::ConstantInt::get(i64, 0x94D049BB133111EBull));
  return xorShift(z, 31);
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

/// A known divisor of an integer expression's value (1 when nothing is known): literals,
/// sums, products and floor moduli of them. 0 (any multiple) is a literal 0.
int64_t knownMultiple(const Expr &e) {
  constexpr int64_t kAny = int64_t(1) << 40;
  if (const int64_t *c = loop::asConstInt(e))
    return *c == 0 ? kAny : (*c > -kAny && *c < kAny ? std::abs(*c) : 1);
  switch (e.kind()) {
  case ExprKind::Add:
  case ExprKind::Sub: {
    const auto [a, b] = loop::binaryOperands(e);
    return std::gcd(knownMultiple(a), knownMultiple(b));
  }
  case ExprKind::Mul: {
    const auto [a, b] = loop::binaryOperands(e);
    const int64_t x = knownMultiple(a), y = knownMultiple(b); // both <= 2^40
    return x > kAny / y ? std::max(x, y) : x * y; // either factor divides the product
  }
  case ExprKind::Mod: { // x - c * floor(x / c)
    const auto [a, b] = loop::binaryOperands(e);
    return std::gcd(knownMultiple(a), knownMultiple(b));
  }
  default:
    return 1;
  }
}

/// Rewrites a vector index built from ramps and broadcasts by division, modulo, products and
/// sums with constants (what a Reshape or Transpose of a vectorized loop leaves: `ramp(b, 1,
/// 16) / x16(256) % x16(128) * x16(768) + ramp(b, 1, 16) % x16(256)`) into one ramp or
/// broadcast where that is exact, so the access is a contiguous vector load or store instead
/// of a gather or scatter. A unit ramp of L lanes whose base is a known multiple of L, divided
/// by (or taken modulo) a constant multiple of L, does not cross a multiple of the divisor:
/// its lanes share the quotient (a broadcast) and their remainders form a unit ramp. Returns
/// `e` itself when nothing applies.
Expr foldVectorIndex(const Expr &e) {
  if (e.type().lanes <= 1 || !e.type().isInt())
    return e;
  auto asRamp = [](const Expr &x) { return x.as<loop::RampNode>(); };
  auto asBcast = [](const Expr &x) { return x.as<loop::BroadcastNode>(); };
  switch (e.kind()) {
  case ExprKind::Add:
  case ExprKind::Sub:
  case ExprKind::Mul:
  case ExprKind::Div:
  case ExprKind::Mod:
    break;
  default:
    return e;
  }
  const auto [a0, b0] = loop::binaryOperands(e);
  const Expr a = foldVectorIndex(a0), b = foldVectorIndex(b0);
  const auto *ra = asRamp(a), *rb = asRamp(b);
  const auto *ba = asBcast(a), *bb = asBcast(b);
  const int lanes = e.type().lanes;
  const ExprKind kind = e.kind();
  auto rebuilt = [&]() -> Expr {
    if (a.same_as(a0) && b.same_as(b0))
      return e;
    switch (kind) {
    case ExprKind::Add: return a + b;
    case ExprKind::Sub: return a - b;
    case ExprKind::Mul: return a * b;
    case ExprKind::Div: return a / b;
    default: return a % b;
    }
  };
  if (ba && bb) { // op(x16(p), x16(q)) -> x16(op(p, q))
    Expr p = ba->value, q = bb->value;
    switch (kind) {
    case ExprKind::Add: return loop::broadcast(p + q, lanes);
    case ExprKind::Sub: return loop::broadcast(p - q, lanes);
    case ExprKind::Mul: return loop::broadcast(p * q, lanes);
    case ExprKind::Div: return loop::broadcast(p / q, lanes);
    default: return loop::broadcast(p % q, lanes);
    }
  }
  if (kind == ExprKind::Add && ra && bb) // ramp(p, s) + x16(q) -> ramp(p + q, s)
    return loop::ramp(ra->base + bb->value, ra->stride, lanes);
  if (kind == ExprKind::Add && ba && rb)
    return loop::ramp(ba->value + rb->base, rb->stride, lanes);
  if (kind == ExprKind::Sub && ra && bb)
    return loop::ramp(ra->base - bb->value, ra->stride, lanes);
  if (kind == ExprKind::Add && ra && rb) // ramp(p, s) + ramp(q, t) -> ramp(p + q, s + t)
    return loop::ramp(ra->base + rb->base, ra->stride + rb->stride, lanes);
  if (kind == ExprKind::Mul && ra && bb && loop::asConstInt(bb->value)) // ramp(p, s) * k
    return loop::ramp(ra->base * bb->value, ra->stride * bb->value, lanes);
  if (kind == ExprKind::Mul && ba && rb && loop::asConstInt(ba->value))
    return loop::ramp(rb->base * ba->value, rb->stride * ba->value, lanes);
  if ((kind == ExprKind::Div || kind == ExprKind::Mod) && ra && bb) {
    const int64_t *stride = loop::asConstInt(ra->stride);
    const int64_t *c = loop::asConstInt(bb->value);
    // A ramp whose stride is a multiple k of the divisor (a transpose's vector axis crossing
    // rows: ramp(p, 256, 16) / x16(256)): p + i k c floor-divided by c is p / c + i k, and its
    // remainder is p % c for every lane.
    if (stride && c && *c > 0 && *stride % *c == 0) {
      if (kind == ExprKind::Div)
        return loop::ramp(ra->base / bb->value, Expr(*stride / *c), lanes);
      return loop::broadcast(ra->base % bb->value, lanes);
    }
    if (stride && *stride == 1 && c && *c > 0 && *c % lanes == 0 &&
        knownMultiple(ra->base) % lanes == 0) {
      if (kind == ExprKind::Div)
        return loop::broadcast(ra->base / bb->value, lanes);
      return loop::ramp(ra->base % bb->value, ra->stride, lanes);
    }
  }
  return rebuilt();
}

/// An i64 index as (the sum of its non-constant terms) + offset, where constants inside sums,
/// differences and multiplications by constants are gathered into `offset` (wrapping
/// arithmetic: the same value). Returns nullptr when the index is a constant. The unrolled rows
/// of a register tile then share one variable part (the same instructions, merged by CSE) and
/// differ only in the offset, which is what LLVM's alias analysis needs to prove them
/// disjoint: emitted as written, `(j * 8 + 1) * 64 + p * 32` and row 0's `j * 512 + p * 32`
/// were canonicalized differently (one into an `or` of two variables, which BasicAA cannot
/// decompose), and a GEMM tile's accumulators then went through memory every k step.
llvm::Value *FunctionEmitter::emitSplitIndex(const Expr &e, int64_t &offset) {
  if (const int64_t *c = loop::asConstInt(e); c && e.type().lanes == 1) {
    offset += *c;
    return nullptr;
  }
  auto combine = [&](llvm::Value *x, llvm::Value *y, bool sub) -> llvm::Value * {
    if (!y)
      return x;
    if (!x)
      return sub ? b_.CreateNeg(y) : y;
    return sub ? b_.CreateSub(x, y) : b_.CreateAdd(x, y);
  };
  switch (e.kind()) {
  case ExprKind::Add:
  case ExprKind::Sub: {
    const auto [lhs, rhs] = loop::binaryOperands(e);
    int64_t cb = 0;
    llvm::Value *x = emitSplitIndex(lhs, offset);
    llvm::Value *y = emitSplitIndex(rhs, cb);
    const bool sub = e.kind() == ExprKind::Sub;
    offset = int64_t(uint64_t(offset) + (sub ? 0 - uint64_t(cb) : uint64_t(cb)));
    return combine(x, y, sub);
  }
  case ExprKind::Mul: {
    const auto [lhs, rhs] = loop::binaryOperands(e);
    const int64_t *k = loop::asConstInt(rhs);
    const Expr *var = &lhs;
    if (!k) {
      k = loop::asConstInt(lhs);
      var = &rhs;
    }
    if (!k)
      break;
    int64_t c = 0;
    llvm::Value *x = emitSplitIndex(*var, c);
    offset = int64_t(uint64_t(offset) + uint64_t(c) * uint64_t(*k));
    return x ? b_.CreateMul(x, b_.getInt64(uint64_t(*k))) : nullptr;
  }
  default:
    break;
  }
  return emitExpr(e);
}

/// &data[index] for a scalar index; an i64 index is split into its variable part and a
/// constant offset (emitSplitIndex), as two GEPs.
llvm::Value *FunctionEmitter::pointerAt(llvm::Type *elem, llvm::Value *data, const Expr &index) {
  if (index.type().lanes != 1 || index.type().dtype != DType::i64)
    return b_.CreateInBoundsGEP(elem, data, toI64(emitExpr(index), index.type().isInt()));
  int64_t offset = 0;
  llvm::Value *var = emitSplitIndex(index, offset);
  llvm::Value *p = var ? b_.CreateGEP(elem, data, var) : data;
  return offset ? b_.CreateGEP(elem, p, b_.getInt64(uint64_t(offset))) : p;
}

FunctionEmitter::Address FunctionEmitter::address(const loop::Buffer &buf,
                                                   const std::vector<Expr> &indices,
                                                   const char *what) {
  if (indices.size() != 1)
    unsupported(concat(what, " of buffer '", buf.name(), "' has ", indices.size(),
                       " indices; expected one (run StorageFlatten before code generation)"));
  llvm::Value *data = lookup(buf->data.get());
  llvm::Type *elem = scalarType(ctx_, buf.dtype(), true);
  const Expr index = foldVectorIndex(indices[0]);
  unsigned elemAlign = unsigned(dtypeSize(buf.dtype()));
  if (const auto *r = index.as<loop::RampNode>()) {
    const int64_t *stride = loop::asConstInt(r->stride);
    if (stride && *stride == 1) {
      ++vectorValues_;
      return {pointerAt(elem, data, r->base), true, elemAlign};
    }
  }
  if (index.type().lanes == 1)
    return {pointerAt(elem, data, index), true, elemAlign};
  llvm::Value *ix = toI64(emitExpr(index), index.type().isInt());
  return {b_.CreateInBoundsGEP(elem, data, ix), false, elemAlign};
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
  if (isNarrowFloat(load->buffer.dtype()))
    return emitNarrowToFloat(b_, load->buffer.dtype(), v);
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
  if (isNarrowFloat(store->buffer.dtype()))
    value = emitFloatToNarrow(b_, store->buffer.dtype(), value);
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
  const int64_t stackBytes = (std::max<int64_t>(constCount, 1) * elemSize + 63) / 64 * 64;
  if (isConst && constCount * elemSize <= emit_.maxStackBytes &&
      stackBytes_ + stackBytes <= emit_.maxFunctionStackBytes) {
    // In the entry block: one slot per function (per thread inside a parallel body), not one
    // per loop iteration. Every slot of the function lives at once: stackBytes_ sums them.
    stackBytes_ += stackBytes;
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
  // A constant min (the usual 0) is used as such, not loaded from ctx: with it and the chunk
  // bounds below, LLVM knows the loop variable's range (floor division and modulo of a fused
  // parallel index by a constant become shifts and masks, and the tile addresses they make
  // stay provably disjoint, so a GEMM tile's accumulators stay in registers).
  llvm::Value *innerMin = llvm::isa<llvm::Constant>(min) ? min : impl->getArg(2);
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
  // The runtime calls the body with 0 <= begin < end <= extent (tessel_parallel_for's chunks).
  ib.CreateAssumption(ib.CreateICmpSGE(begin, llvm::ConstantInt::get(ivTy, 0)));
  if (auto *n = llvm::dyn_cast<llvm::ConstantInt>(extent))
    ib.CreateAssumption(ib.CreateICmpSLE(end, ib.CreateIntCast(n, ivTy, true)));
  llvm::BasicBlock *pre = ib.GetInsertBlock();
  auto *loopBB = llvm::BasicBlock::Create(ctx_, "chunk.loop", impl);
  auto *exitBB = llvm::BasicBlock::Create(ctx_, "chunk.exit", impl);
  ib.CreateCondBr(ib.CreateICmpSLT(begin, end), loopBB, exitBB);
  ib.SetInsertPoint(loopBB);
  llvm::PHINode *i = ib.CreatePHI(ivTy, 2, "chunk.i");
  i->addIncoming(begin, pre);
  inner.vars_[loop->loopVar.get()] = ib.CreateNSWAdd(innerMin, i, loop->loopVar.name());
  inner.emitStmt(loop->body);
  llvm::Value *next = ib.CreateNSWAdd(i, llvm::ConstantInt::get(ivTy, 1));
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
