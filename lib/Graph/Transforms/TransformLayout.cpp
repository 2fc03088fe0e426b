//===- TransformLayout.cpp - convolutions in the blocked NCHW[x]c layout --===//
//
// `transform-layout`: TVM's AlterOpLayout for x86, in two steps.
//
// 1. Every 2-D f32 Conv with constant weights (group 1, or depthwise: group = C = OC) becomes
//
//      Conv(X, W, B) -> FromBlocked(ConvNCHWc(ToBlocked(X){ib}, Wp, Bp))
//
//    with W packed here, at compile time, into a new initializer Wp [OC/ob, IC/ib, KH, KW, ib, ob]
//    (depthwise: [C/c, 1, KH, KW, 1, c]) and B reshaped to [OC/ob, ob]. The blocks: 16 when it
//    divides the channels (a 16-float AVX-512 vector of output channels), else 8, 4, else the
//    channels themselves when at most 16 (the first layer's 3 input channels: ib = 3), else 2, 1.
//    The ops are lib/Graph/Ops/Layout.cpp's (domain "tessel", opset 1, added to the graph's
//    opset imports). A 3x3 stride-1 conv with >= 64 channels and an output of >= 28x28 (rows
//    of tiles that split into register tiles of <= 14 without a tail) becomes Winograd
//    F(4x4, 3x3) instead (chooseWinogradTile):
//
//      Conv(X, W, B) -> FromBlocked(ConvWinogradNCHWc(ToBlocked(X){ib}, U, Bp)){tile = 4}
//
//    with U = G W G^T transformed here, at compile time, [36, OC/ob, IC, ob] (Winograd.h).
//
// 2. Layout changes move out of the way, to a fixed point, so that a whole conv trunk stays
//    blocked with one ToBlocked at its start and FromBlocked only where a non-blocked op reads:
//      ToBlocked(FromBlocked(y)){c}         -> y                  (same block c)
//      U(FromBlocked(y), s...)              -> FromBlocked(U(y, s...))   U elementwise unary
//                                              (Relu, Clip, ...; s = its scalar operands)
//      B(FromBlocked(a), FromBlocked(b))    -> FromBlocked(B(a, b))      B = Add, Sub, Mul, Div,
//                                              Max, Min; same shapes and blocks
//      B(FromBlocked(a), k)                 -> FromBlocked(B(a, k'))     k a constant scalar or
//                                              per-channel [C,1,1]/[1,C,1,1]; k' = [C/c,1,1,c]
//      MaxPool(FromBlocked(y))              -> FromBlocked(tessel::MaxPoolNCHWc(y))
//                                              (no dilation, no ceil_mode; else as AveragePool)
//      AveragePool(FromBlocked(y))          -> FromBlocked(Pool(y))      2-D pool as a 3-D pool
//                                              with kernel [kh, kw, 1] (pads 0 on the c axis)
//      GlobalAverage/MaxPool(FromBlocked(y))-> FromBlocked(Average/MaxPool(y){[H, W, 1]})
//    Nodes left without uses (the old Convs, FromBlockeds nothing reads) and their dead weights
//    are removed; graph outputs keep their names.
//
// compileModel runs the pass after optimizeGraph when the target has AVX-512 or AVX2
// (docs/compile.md, "Convolution"); `tessel-opt --passes=transform-layout` runs it alone
// (golden test test/Graph/transform-layout.tsl).
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Transforms.h"
#include "tessel/Graph/Winograd.h"
#include "tessel/Graph/PassUtils.h"

#include <algorithm>
#include <map>
#include <set>

namespace tessel {

using namespace passutils;

namespace {

constexpr const char *kDomain = "tessel";

/// The channel block for C channels (see the file comment).
int64_t chooseBlock(int64_t C) {
  for (int64_t b : {16, 8, 4})
    if (C % b == 0)
      return b;
  if (C <= 16)
    return C;
  return C % 2 == 0 ? 2 : 1;
}

/// The output tile m of Winograd F(m x m, 3 x 3) for a regular conv, or 0 for the direct conv
/// (docs/compile.md, "Convolution", has the measurements behind the rule). Winograd F(4x4, 3x3)
/// for a 3x3 stride-1 conv with at least 64 input and output channels (full vector blocks of 8
/// or 16: the GEMM over input channels is long enough to run at the register tile's speed)
/// and an output of at least 28x28 whose rows of TW tiles of 4 split into register tiles of
/// the GEMM without a tail: TW <= 14 (one register tile per tile row), or column groups of R
/// tiles, R in [7, 14] dividing TW (OW 61-64: 2 x 8, 81-84: 3 x 7, 109-112: 2 x 14, 221-224:
/// 4 x 14; ScheduleWinograd.cpp picks the same R, the largest). resnet18's 56x56 and 28x28
/// convs: 0.92-1.00 -> 0.39-0.47 ms at one thread; 64x64, 112x112 and 224x224 convs 2-2.8x
/// faster than direct. A row with a tail group (OW = 100: 25 tiles, 13 + 12) was 3-4x slower
/// than direct: it stays direct, as do 15-, 17-, 19- and 23-tile rows. Smaller outputs stay direct: there the transformed weights, (6x6)/(3x3) = 4 times
/// the direct conv's, come from DRAM (resnet18's 14x14x256 convs: 0.90 -> 0.85-0.89 ms at
/// best, for 9.4 MB of weights per conv instead of 2.4; 7x7x512: 0.95 -> 2.4 ms).
int64_t chooseWinogradTile(int64_t IC, int64_t OC, int64_t KH, int64_t KW,
                           const std::vector<int64_t> &strides, const std::vector<int64_t> &dil,
                           int64_t OH, int64_t OW, int64_t ib, int64_t ob) {
  constexpr int64_t m = 4;
  if (KH != 3 || KW != 3 || strides != std::vector<int64_t>{1, 1} ||
      dil != std::vector<int64_t>{1, 1} || (ib != 8 && ib != 16) || (ob != 8 && ob != 16))
    return 0;
  const bool noTail = winograd::columnGroupTiles((OW + m - 1) / m) > 0;
  return IC >= 64 && OC >= 64 && OH >= 28 && OW >= 28 && noTail ? m : 0;
}

const std::vector<int64_t> *staticShape(const Value *v, std::vector<int64_t> &buf) {
  if (!v || !v->type.isTensor() || v->type.dtype != DType::f32 || !v->type.shape.isStatic())
    return nullptr;
  buf = v->type.shape.staticDims();
  return &buf;
}

class LayoutRewriter {
public:
  LayoutRewriter(Graph &g, PassStats &stats) : g_(g), stats_(stats) {}

  bool run() {
    std::vector<std::string> outNames;
    for (Value *o : g_.outputs)
      outNames.push_back(o->name());
    captured_ = capturedValues(g_);
    std::vector<Node *> convs;
    for (auto &n : g_.nodes())
      if (n->opType == "Conv" && n->domain.empty())
        convs.push_back(n.get());
    bool changed = false;
    for (Node *c : convs)
      changed |= blockConv(*c);
    if (!changed)
      return false;
    for (bool again = true; again;) {
      again = false;
      std::vector<Node *> nodes;
      for (auto &n : g_.nodes())
        nodes.push_back(n.get());
      for (Node *n : nodes)
        if (hoist(*n))
          again = true;
      if (again)
        g_.sortTopologically();
    }
    removeDead();
    g_.sortTopologically();
    g_.restoreOutputNames(outNames);
    return true;
  }

private:
  Graph &g_;
  PassStats &stats_;
  ConstValueSet captured_;
  std::map<std::pair<const Value *, int64_t>, Value *> packedWeights_;
  std::set<Node *> touched_; ///< replaced and created nodes: the candidates for removal

  /// Appends a node and sets its output types by inference.
  Node *add(const std::string &domain, const std::string &op, std::vector<Value *> ins,
            const std::string &outBase, const std::string &name,
            std::map<std::string, Attribute> attrs) {
    Node *n = g_.appendNode(op, std::move(ins), {g_.uniqueName(outBase)}, name);
    n->domain = domain;
    n->attrs = std::move(attrs);
    std::vector<Type> ts = inferNode(*n);
    n->output(0)->type = ts.at(0);
    touched_.insert(n);
    return n;
  }

  Value *fromBlocked(Value *yb, const std::string &base) {
    return add(kDomain, "FromBlocked", {yb}, base, "", {})->output(0);
  }

  /// y's blocked source when y = FromBlocked(yb), else nullptr.
  static Value *blockedSource(const Value *y) {
    Node *p = y ? y->producer() : nullptr;
    if (!p || p->domain != kDomain || p->opType != "FromBlocked")
      return nullptr;
    return p->input(0);
  }

  void replace(Node &old, Value *with) {
    old.output(0)->replaceAllUsesWith(with);
    touched_.insert(&old);
    // The old node is erased once nothing reads it (removeDead).
  }

  bool blockConv(Node &conv) {
    std::vector<int64_t> xsb, wsb, ysb;
    const std::vector<int64_t> *xs = staticShape(conv.input(0), xsb);
    const std::vector<int64_t> *ws = staticShape(conv.input(1), wsb);
    const std::vector<int64_t> *ys = staticShape(conv.output(0), ysb);
    if (conv.numOutputs() != 1 || !xs || !ws || !ys || xs->size() != 4 || ws->size() != 4)
      return false;
    const Tensor *W = initializerOf(g_, conv.input(1));
    if (!W || W->dtype() != DType::f32)
      return false;
    const Tensor *B = nullptr;
    if (conv.numInputs() > 2 && conv.input(2)) {
      B = initializerOf(g_, conv.input(2));
      if (!B || B->dtype() != DType::f32)
        return false;
    }
    auto autoPad = stringAttr(conv, "auto_pad", "NOTSET");
    auto group = intAttr(conv, "group", 1);
    auto strides = intsAttr(conv, "strides", {1, 1});
    auto dil = intsAttr(conv, "dilations", {1, 1});
    auto pads = intsAttr(conv, "pads", {0, 0, 0, 0});
    auto ks = intsAttr(conv, "kernel_shape", {(*ws)[2], (*ws)[3]});
    if (!autoPad || (*autoPad != "NOTSET" && *autoPad != "VALID") || !group || !strides || !dil ||
        !pads || !ks || strides->size() != 2 || dil->size() != 2 || ks->size() != 2 ||
        (*autoPad == "NOTSET" && pads->size() != 4) || (*ks)[0] != (*ws)[2] || (*ks)[1] != (*ws)[3])
      return false;
    if (*autoPad == "VALID")
      pads = std::vector<int64_t>{0, 0, 0, 0};
    const int64_t IC = (*xs)[1], OC = (*ws)[0], KH = (*ws)[2], KW = (*ws)[3];
    const bool depthwise = *group != 1;
    if (depthwise && !(*group == IC && OC == IC && (*ws)[1] == 1))
      return false;
    if (!depthwise && (*ws)[1] != IC)
      return false;
    const int64_t ib = chooseBlock(IC), ob = depthwise ? ib : chooseBlock(OC);
    if (depthwise && ib == 1 && IC > 16)
      return false;
    const std::string base = conv.name.empty() ? conv.output(0)->name() : conv.name;
    // The blocked op's operands: ToBlocked(X), the weights in its layout, the blocked bias.
    auto operands = [&](Value *weights) {
      std::vector<Value *> ins;
      ins.push_back(add(kDomain, "ToBlocked", {conv.input(0)},
                        conv.input(0)->name() + "_nchw" + std::to_string(ib) + "c", "",
                        {{"block", Attribute::ofInt(ib)}})
                        ->output(0));
      ins.push_back(weights);
      if (B)
        ins.push_back(addConstant(g_, conv.input(2)->name() + "_blocked",
                                  B->reshaped({OC / ob, ob})));
      return ins;
    };
    const int64_t OH = (*ys)[2], OW = (*ys)[3];
    if (int64_t m = depthwise ? 0
                              : chooseWinogradTile(IC, OC, KH, KW, *strides, *dil, OH, OW, ib, ob)) {
      // The weights transformed at compile time, U = G g G^T: one copy per (weights, tile, ob).
      Value *&u = packedWeights_[{conv.input(1), -(m * 1000 + ob)}];
      if (!u)
        u = addConstant(g_, conv.input(1)->name() + "_winograd" + std::to_string(m),
                        winograd::transformWeights(*W, m, ob));
      Node *c = add(kDomain, "ConvWinogradNCHWc", operands(u),
                    conv.output(0)->name() + "_nchw" + std::to_string(ob) + "c",
                    base + "_winograd", {{"tile", Attribute::ofInt(m)}, {"pads", Attribute::ofInts(*pads)}});
      replace(conv, fromBlocked(c->output(0), conv.output(0)->name() + "_unblocked"));
      stats_.add("convs-winograd");
      return true;
    }
    // Pack the weights: Wp[oco, ico, kh, kw, ici, oci] = W[oco*ob + oci, ico*ib + ici, kh, kw]
    // (depthwise: Wp[co, 0, kh, kw, 0, ci] = W[co*c + ci, 0, kh, kw]).
    const int64_t ICo = depthwise ? 1 : IC / ib, ibw = depthwise ? 1 : ib;
    Tensor Wp(DType::f32, {OC / ob, ICo, KH, KW, ibw, ob});
    const float *w = W->data<float>();
    float *wp = Wp.data<float>();
    const int64_t Cg = (*ws)[1];
    for (int64_t oco = 0; oco < OC / ob; ++oco)
      for (int64_t ico = 0; ico < ICo; ++ico)
        for (int64_t kh = 0; kh < KH; ++kh)
          for (int64_t kw = 0; kw < KW; ++kw)
            for (int64_t ici = 0; ici < ibw; ++ici)
              for (int64_t oci = 0; oci < ob; ++oci)
                wp[((((oco * ICo + ico) * KH + kh) * KW + kw) * ibw + ici) * ob + oci] =
                    w[(((oco * ob + oci) * Cg + ico * ibw + ici) * KH + kh) * KW + kw];
    // One packed copy per (weights, blocks): a weight shared by two convs is packed once.
    Value *&packed = packedWeights_[{conv.input(1), ib * 1000 + ob}];
    if (!packed)
      packed = addConstant(g_, conv.input(1)->name() + "_packed", Wp);
    Node *c = add(kDomain, "ConvNCHWc", operands(packed),
                  conv.output(0)->name() + "_nchw" + std::to_string(ob) + "c",
                  base + "_nchwc",
                  {{"kernel_shape", Attribute::ofInts({KH, KW})},
                   {"strides", Attribute::ofInts(*strides)},
                   {"dilations", Attribute::ofInts(*dil)},
                   {"pads", Attribute::ofInts(*pads)},
                   {"group", Attribute::ofInt(*group)}});
    replace(conv, fromBlocked(c->output(0), conv.output(0)->name() + "_unblocked"));
    stats_.add(depthwise ? "depthwise-convs-blocked" : "convs-blocked");
    return true;
  }

  /// Elementwise unary ops whose other operands (if any) are scalars (Clip's min and max).
  static bool isUnaryElementwise(const Node &n) {
    static const std::set<std::string> ops = {
        "Relu", "Clip", "LeakyRelu", "Sigmoid", "HardSigmoid", "HardSwish", "Tanh", "Elu",
        "Selu", "Softplus", "Abs", "Neg", "Exp", "Sqrt", "Identity", "Erf", "Mish"};
    if (!n.domain.empty() || !ops.count(n.opType) || n.numOutputs() != 1)
      return false;
    for (size_t i = 1; i < n.numInputs(); ++i) {
      const Value *v = n.input(i);
      if (v && (!v->type.isTensor() || !v->type.shape.isStatic() ||
                !v->type.shape.staticDims().empty()))
        return false;
    }
    return true;
  }

  /// k re-laid out for a blocked tensor with block c when k is a constant scalar (returned as
  /// is) or per-channel over C channels ([C,1,1] or [1,C,1,1]); nullptr otherwise.
  Value *blockedConstant(Value *k, int64_t C, int64_t c) {
    const Tensor *t = constantOf(g_, k);
    if (!t || t->dtype() != DType::f32)
      return nullptr;
    if (t->numel() == 1 && t->rank() <= 1)
      return k;
    std::vector<int64_t> s = t->shape();
    bool perChannel = (s == std::vector<int64_t>{C, 1, 1}) || (s == std::vector<int64_t>{1, C, 1, 1});
    if (!perChannel)
      return nullptr;
    return addConstant(g_, k->name() + "_blocked", t->reshaped({C / c, 1, 1, c}));
  }

  bool hoist(Node &n) {
    if (n.numOutputs() != 1 || !n.output(0) ||
        (n.output(0)->uses().empty() && !isGraphOutput(g_, n.output(0))))
      return false;
    Value *y = n.output(0);
    // ToBlocked(FromBlocked(yb)) with the same block -> yb
    if (n.domain == kDomain && n.opType == "ToBlocked") {
      Value *yb = blockedSource(n.input(0));
      if (!yb || yb->type.shape.staticDims().back() != n.attrs.at("block").i)
        return false;
      replace(n, yb);
      stats_.add("layout-pairs-cancelled");
      return true;
    }
    if (!n.domain.empty() || n.numInputs() == 0)
      return false;
    Value *xb = blockedSource(n.input(0));
    if (isUnaryElementwise(n) && xb) {
      std::vector<Value *> ins = n.inputs();
      ins[0] = xb;
      Node *u = add("", n.opType, ins, y->name() + "_blk", n.name, n.attrs);
      replace(n, fromBlocked(u->output(0), y->name() + "_unblocked"));
      stats_.add("elementwise-hoisted");
      return true;
    }
    static const std::set<std::string> binary = {"Add", "Sub", "Mul", "Div", "Max", "Min"};
    if (binary.count(n.opType) && n.numInputs() == 2) {
      for (size_t k = 0; k < 2; ++k) {
        Value *a = blockedSource(n.input(k));
        if (!a || n.input(k)->type.shape != y->type.shape)
          continue;
        const std::vector<int64_t> as = a->type.shape.staticDims();
        Value *other = n.input(1 - k);
        Value *ob = blockedSource(other);
        Value *kb = nullptr;
        if (ob && other->type.shape == y->type.shape && ob->type.shape == a->type.shape)
          kb = ob;
        else if (!ob)
          kb = blockedConstant(other, as[1] * as[4], as[4]);
        if (!kb)
          continue;
        std::vector<Value *> ins(2);
        ins[k] = a;
        ins[1 - k] = kb;
        Node *b = add("", n.opType, ins, y->name() + "_blk", n.name, n.attrs);
        replace(n, fromBlocked(b->output(0), y->name() + "_unblocked"));
        stats_.add("elementwise-hoisted");
        return true;
      }
      return false;
    }
    if (!xb)
      return false;
    const std::vector<int64_t> bs = xb->type.shape.staticDims();
    if ((n.opType == "MaxPool" || n.opType == "AveragePool") && n.numInputs() == 1 &&
        (n.numOutputs() == 1)) {
      auto autoPad = stringAttr(n, "auto_pad", "NOTSET");
      auto ks = intsAttr(n, "kernel_shape", {});
      auto st = intsAttr(n, "strides", {1, 1});
      auto dl = intsAttr(n, "dilations", {1, 1});
      auto pd = intsAttr(n, "pads", {0, 0, 0, 0});
      if (!autoPad || (*autoPad != "NOTSET" && *autoPad != "VALID") || !ks || ks->size() != 2 ||
          !st || st->size() != 2 || !dl || dl->size() != 2 || !pd ||
          (*autoPad == "NOTSET" && pd->size() != 4))
        return false;
      if (*autoPad == "VALID")
        pd = std::vector<int64_t>{0, 0, 0, 0};
      auto ceil = intAttr(n, "ceil_mode", 0);
      if (n.opType == "MaxPool" && ceil && *ceil == 0 && (*dl)[0] == 1 && (*dl)[1] == 1 &&
          (*pd)[0] < (*ks)[0] && (*pd)[2] < (*ks)[0] && (*pd)[1] < (*ks)[1] &&
          (*pd)[3] < (*ks)[1]) {
        // The blocked max pool: a vector of channels per load, no clamp on the channel axis.
        Node *p = add(kDomain, "MaxPoolNCHWc", {xb}, y->name() + "_blk", n.name,
                      {{"kernel_shape", Attribute::ofInts(*ks)},
                       {"strides", Attribute::ofInts(*st)},
                       {"pads", Attribute::ofInts(*pd)}});
        replace(n, fromBlocked(p->output(0), y->name() + "_unblocked"));
        stats_.add("pools-hoisted");
        return true;
      }
      std::map<std::string, Attribute> attrs = n.attrs;
      attrs.erase("auto_pad");
      attrs["kernel_shape"] = Attribute::ofInts({(*ks)[0], (*ks)[1], 1});
      attrs["strides"] = Attribute::ofInts({(*st)[0], (*st)[1], 1});
      if (n.attr("dilations"))
        attrs["dilations"] = Attribute::ofInts({(*dl)[0], (*dl)[1], 1});
      attrs["pads"] = Attribute::ofInts({(*pd)[0], (*pd)[1], 0, (*pd)[2], (*pd)[3], 0});
      Node *p = add("", n.opType, {xb}, y->name() + "_blk", n.name, attrs);
      replace(n, fromBlocked(p->output(0), y->name() + "_unblocked"));
      stats_.add("pools-hoisted");
      return true;
    }
    if ((n.opType == "GlobalAveragePool" || n.opType == "GlobalMaxPool") && n.numInputs() == 1) {
      std::string op = n.opType == "GlobalAveragePool" ? "AveragePool" : "MaxPool";
      Node *p = add("", op, {xb}, y->name() + "_blk", n.name,
                    {{"kernel_shape", Attribute::ofInts({bs[2], bs[3], 1})}});
      replace(n, fromBlocked(p->output(0), y->name() + "_unblocked"));
      stats_.add("pools-hoisted");
      return true;
    }
    return false;
  }

  /// Erases nodes whose outputs nothing reads (the replaced nodes, unread layout changes) and
  /// the initializers they leave unused.
  void removeDead() {
    for (bool again = true; again;) {
      again = false;
      std::vector<Node *> dead;
      for (auto &n : g_.nodes()) {
        if (!touched_.count(n.get()))
          continue;
        bool used = false;
        for (Value *o : n->outputs())
          used |= o && (!o->uses().empty() || isGraphOutput(g_, o) || captured_.count(o));
        if (!used)
          dead.push_back(n.get());
      }
      for (auto it = dead.rbegin(); it != dead.rend(); ++it) {
        std::vector<Value *> ins = (*it)->inputs();
        touched_.erase(*it);
        g_.eraseNode(*it);
        for (Value *v : ins)
          if (v && v->isConstant())
            dropIfDead(g_, captured_, v);
        again = true;
      }
    }
  }
};

} // namespace

bool transformLayout(Graph &g, PassStats &stats) {
  // The layout ops' opset (inference of the new nodes needs it); dropped again if unused.
  const bool hadOpset = g.opsets.count(kDomain) != 0;
  if (!hadOpset)
    g.opsets[kDomain] = 1;
  bool changed = LayoutRewriter(g, stats).run();
  if (!changed && !hadOpset)
    g.opsets.erase(kDomain);
  return changed;
}

} // namespace tessel
