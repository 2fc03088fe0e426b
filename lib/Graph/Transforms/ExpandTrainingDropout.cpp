//===- ExpandTrainingDropout.cpp - Dropout in training mode as plain ops --===//
//
// Dropout (opset 12+) whose training_mode input is not a constant false draws a random mask,
// which its lowering does not do (a Dropout in inference mode is an identity, removed by
// simplify's dropout-inference rule). This pass rewrites such a Dropout into ops that have
// lowerings, computing what the reference kernel (Normalization.cpp, kernelDropout) computes:
//
//   u       = the uniform draws: with a `seed` attribute, the constant numpy's legacy
//             RandomState(seed) draws for x's element count (tessel/Support/Random.h, the
//             reference's own generator: the same mask, bitwise); without one,
//             RandomUniformLike(x, dtype=double), new draws on every run
//   keep    = u >= double(ratio)                       (ratio: input 1, default 0.5)
//   active  = training_mode and double(ratio) != 0
//   output  = Where(active, Where(keep, x * (1 / (1 - T(ratio))), 0), x)     (T: x's type)
//   mask    = Or(Not(active), keep)
//
// A ratio outside [0, 1), which the reference rejects at run time, is not checked by the
// compiled ops. A seeded Dropout of non-static shape is left alone (its draws cannot be baked).
// compileModel runs the pass at every -O level; tessel-opt by name.
//
//===----------------------------------------------------------------------===//
#include "tessel/Graph/PassUtils.h"

#include "tessel/Graph/OpRegistry.h"
#include "tessel/Graph/Transforms.h"
#include "tessel/Support/Random.h"

#include <map>

namespace tessel {

using namespace passutils;

namespace {

class DropoutExpander {
public:
  DropoutExpander(Graph &g, PassStats &stats) : g_(g), stats_(stats) {}

  bool expand(Node &n) {
    Value *x = n.input(0);
    Value *ratio = n.numInputs() > 1 ? n.input(1) : nullptr;
    Value *train = n.numInputs() > 2 ? n.input(2) : nullptr;
    if (!x || !train || !x->type.isTensor() || !isFloatType(x->type.dtype))
      return false;
    if (const Tensor *t = constantOf(g_, train); t && t->numel() == 1 && t->getInt64(0) == 0)
      return false; // inference: simplify removes it
    const DType dt = x->type.dtype;
    base_ = n.name.empty() ? x->name() + ".dropout" : n.name;

    Value *u;
    if (n.attrs.count("seed")) {
      auto seed = intAttr(n, "seed", 0);
      if (!seed || !x->type.shape.isStatic())
        return false;
      Tensor draws(DType::f64, x->type.shape.staticDims());
      std::vector<double> d = numpyLegacyUniforms(uint32_t(*seed), draws.numel());
      std::copy(d.begin(), d.end(), draws.data<double>());
      u = addConstant(g_, base_ + ".uniforms", draws);
    } else {
      u = emit("RandomUniformLike", {x}, "uniforms",
               {{"dtype", Attribute::ofInt(dtypeToOnnx(DType::f64))}});
    }
    Value *r = ratio ? ratio : addConstant(g_, base_ + ".ratio", Tensor::scalar<float>(0.5f));
    Value *r64 = emit("Cast", {r}, "ratio_f64", {{"to", Attribute::ofInt(dtypeToOnnx(DType::f64))}});
    Value *rx = r->type.dtype == dt ? r : emit("Cast", {r}, "ratio_x", {{"to", Attribute::ofInt(dtypeToOnnx(dt))}});
    Value *keep = emit("GreaterOrEqual", {u, r64}, "keep");
    Value *one = constant(dt, 1), *zero = constant(dt, 0);
    Value *scale = emit("Div", {one, emit("Sub", {one, rx}, "one_minus_ratio")}, "scale");
    Value *dropped = emit("Where", {keep, emit("Mul", {x, scale}, "scaled"), zero}, "dropped");
    Value *ratioZero = emit("Equal", {r64, constant(DType::f64, 0)}, "ratio_is_zero");
    Value *active = emit("And", {train, emit("Not", {ratioZero}, "ratio_nonzero")}, "active");
    Value *y = emit("Where", {active, dropped, x}, "output");
    std::vector<Value *> results = {y};
    if (n.numOutputs() > 1 && n.output(1))
      results.push_back(emit("Or", {emit("Not", {active}, "inactive"), keep}, "mask"));
    for (size_t i = 0; i < results.size(); ++i) {
      Value *o = n.output(i);
      if (!o)
        continue;
      redirectCaptures(g_, o, results[i]);
      o->replaceAllUsesWith(results[i]);
    }
    g_.eraseNode(&n);
    stats_.add("dropouts-expanded");
    return true;
  }

private:
  Value *emit(const std::string &op, std::vector<Value *> inputs, const std::string &what,
              std::map<std::string, Attribute> attrs = {}) {
    return appendInferred(g_, op, std::move(inputs), base_ + "." + what, std::move(attrs))
        ->output(0);
  }

  Value *constant(DType dt, double v) {
    return addConstant(g_, base_ + ".const", Tensor::scalar<double>(v).cast(dt));
  }

  Graph &g_;
  PassStats &stats_;
  std::string base_;
};

} // namespace

bool expandTrainingDropout(Graph &g, PassStats &stats) {
  if (g.opsetVersion("") < 12) // training_mode is an input from opset 12
    return false;
  std::vector<Node *> drops;
  for (auto &n : g.nodes())
    if ((n->domain.empty() || n->domain == "ai.onnx") && n->opType == "Dropout")
      drops.push_back(n.get());
  if (drops.empty())
    return false;
  std::vector<std::string> outputNames;
  for (const Value *v : g.outputs)
    outputNames.push_back(v->name());
  DropoutExpander ex(g, stats);
  bool changed = false;
  for (Node *n : drops)
    changed |= ex.expand(*n);
  if (changed) {
    g.sortTopologically();
    g.restoreOutputNames(outputNames);
  }
  return changed;
}

} // namespace tessel
