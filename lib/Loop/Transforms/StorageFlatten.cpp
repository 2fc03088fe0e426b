//===- StorageFlatten.cpp - multi-dimensional buffer accesses to flat ones ===//
//
// Halide's StorageFlattening / TVM's StorageFlatten: `B[i, j]` of a buffer with shape
// [n, m] and strides [s0, s1] (explicit from storage_align/padding, or dense row-major
// [m, 1]) becomes `B[i*s0 + j*s1]`, and every buffer becomes rank 1 with enough elements for
// its largest index: 1 + sum((shape_k - 1) * stride_k). Code generation expects flat buffers,
// so this runs last in the loop pipeline.
//
//===----------------------------------------------------------------------===//

#include "tessel/Loop/Passes.h"
#include "tessel/Loop/Visitor.h"

using namespace tessel;
using namespace tessel::loop;

namespace {

class Flattener : public IRMutator {
public:
  /// The rank-1 version of `b` (memoized so every access sees the same buffer node).
  Buffer flatBuffer(const Buffer &b) {
    auto it = flat_.find(b.get());
    if (it != flat_.end())
      return it->second;
    if (b.rank() == 1 && b->strides.empty()) {
      flat_.emplace(b.get(), b);
      return b;
    }
    std::vector<Expr> strides = stridesOf(b);
    Expr size;
    if (b->strides.empty()) {
      for (const Expr &d : b->shape)
        size = size.defined() ? mul(size, toI64(d)) : toI64(d);
    } else {
      size = makeConst(Type::i64(), int64_t(1));
      for (size_t k = 0; k < b.rank(); ++k)
        size =
            add(size, mul(sub(toI64(b->shape[k]), makeConst(Type::i64(), int64_t(1))), strides[k]));
    }
    if (!size.defined()) // rank 0: one element
      size = makeConst(Type::i64(), int64_t(1));
    auto node = std::make_shared<BufferNode>(*b.get());
    node->shape = {size};
    node->strides = {};
    Buffer result(std::move(node));
    flat_.emplace(b.get(), result);
    return result;
  }

public:
  using IRMutator::mutate;

protected:
  Expr mutate(const Expr &e, const LoadNode *op) override {
    bool changed = false;
    std::vector<Expr> indices = mutateAll(op->indices, changed);
    Expr pred = op->predicate.defined() ? mutate(op->predicate) : Expr();
    Buffer fb = flatBuffer(op->buffer);
    if (!changed && fb.same_as(op->buffer) && pred.same_as(op->predicate))
      return e;
    return LoadNode::make(fb, {flatIndex(op->buffer, indices)}, pred);
  }

  Stmt mutate(const Stmt &s, const StoreNode *op) override {
    bool changed = false;
    std::vector<Expr> indices = mutateAll(op->indices, changed);
    Expr value = mutate(op->value);
    Expr pred = op->predicate.defined() ? mutate(op->predicate) : Expr();
    Buffer fb = flatBuffer(op->buffer);
    if (!changed && fb.same_as(op->buffer) && value.same_as(op->value) &&
        pred.same_as(op->predicate))
      return s;
    return StoreNode::make(fb, value, {flatIndex(op->buffer, indices)}, pred);
  }

  Stmt mutate(const Stmt &s, const AllocateNode *op) override {
    Stmt body = mutate(op->body);
    Buffer fb = flatBuffer(op->buffer);
    if (body.same_as(op->body) && fb.same_as(op->buffer))
      return s;
    return AllocateNode::make(fb, body);
  }

private:
  static Expr toI64(const Expr &e) { return e.type() == Type::i64() ? e : cast(Type::i64(), e); }

  static std::vector<Expr> stridesOf(const Buffer &b) {
    if (b->strides.empty())
      return b.denseStrides();
    if (b->strides.size() != b.rank())
      throw Error("storage flatten: buffer '" + b.name() + "' has " +
                  std::to_string(b->strides.size()) + " strides for rank " +
                  std::to_string(b.rank()) + "; expected one stride per dimension");
    std::vector<Expr> s;
    for (const Expr &e : b->strides)
      s.push_back(toI64(e));
    return s;
  }

  /// sum(index_k * stride_k); vector indices (ramps) keep their lanes: a scalar stride is
  /// broadcast to the index's lanes.
  Expr flatIndex(const Buffer &b, const std::vector<Expr> &indices) {
    if (indices.size() != b.rank() && !(b.rank() == 0 && indices.size() == 1))
      throw Error("storage flatten: access to buffer '" + b.name() + "' has " +
                  std::to_string(indices.size()) + " indices; expected " +
                  std::to_string(b.rank()) + " (its rank)");
    if (indices.empty()) // rank 0: the buffer's one element
      return makeConst(Type::i64(), int64_t(0));
    if (indices.size() == 1 && b->strides.empty())
      return indices[0];
    std::vector<Expr> strides = stridesOf(b);
    int lanes = 1;
    for (const Expr &ix : indices)
      lanes = std::max(lanes, ix.type().lanes);
    Expr flat;
    for (size_t k = 0; k < indices.size(); ++k) {
      Expr ix = indices[k];
      Expr stride = strides[k];
      if (ix.type().element() != Type::i64())
        ix = cast(Type::i64(ix.type().lanes), ix);
      if (lanes > 1 && ix.type().lanes == 1)
        ix = broadcast(ix, lanes);
      if (lanes > 1)
        stride = broadcast(stride, lanes);
      Expr term = isOne(strides[k]) ? ix : mul(ix, stride);
      flat = flat.defined() ? add(flat, term) : term;
    }
    return flat;
  }

  std::unordered_map<const BufferNode *, Buffer> flat_;
};

} // namespace

Stmt tessel::loop::storageFlatten(const Stmt &s) { return Flattener().mutate(s); }

LoweredFunc tessel::loop::storageFlatten(const LoweredFunc &f) {
  Flattener flattener;
  LoweredFunc result = f;
  for (Param &p : result.params)
    if (p.isBuffer())
      p.buffer = flattener.flatBuffer(p.buffer);
  result.body = flattener.mutate(f.body);
  return result;
}
