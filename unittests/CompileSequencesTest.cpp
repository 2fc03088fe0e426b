//===- CompileSequencesTest.cpp - sequence and optional inputs/outputs, compiled --===//
//
// Compile-time specialization of sequence and optional values at a model's inputs and outputs
// (docs/compile.md, "Sequence and optional inputs and outputs"): a sequence input becomes one
// tensor input per element (`x[i]`), a present optional the tensor input `x`, an absent one no
// input; sequence and optional outputs come back as `y[i]` / `y` / nothing, described by the
// artifact's `structured_values`. Each model is compiled (no interpreter fallback), run through
// the runtime on the flattened inputs, its outputs rebuilt from `structured_values` and compared
// with the reference interpreter on the original graph. Bad specs give errors naming the input.
//
//===----------------------------------------------------------------------===//

#include "CompileTestUtils.h"
#include "TestUtils.h"

#include <gtest/gtest.h>

#include <sstream>

using namespace tessel;

namespace {

Tensor ramp(DType dt, std::vector<int64_t> shape, double start) {
  Tensor t(dt, shape);
  for (int64_t i = 0; i < t.numel(); ++i) {
    const double v = start + 0.25 * double(i) - 1.5;
    if (dt == DType::i32)
      t.data<int32_t>()[i] = int32_t(v * 4);
    else
      t.data<float>()[i] = float(v);
  }
  return t;
}

/// The artifact's `structured_values`, parsed: name -> form.
std::map<std::string, std::string> structuredValues(const runtime::Model &m) {
  std::map<std::string, std::string> r;
  const std::string *text = m.info("structured_values");
  if (!text)
    return r;
  std::stringstream ss(*text);
  std::string entry;
  while (std::getline(ss, entry, ';')) {
    size_t eq = entry.rfind('=');
    if (eq != std::string::npos)
      r[entry.substr(0, eq)] = entry.substr(eq + 1);
  }
  return r;
}

void expectSameTensor(const Tensor &got, const Tensor &want, const std::string &what) {
  ASSERT_EQ(got.dtype(), want.dtype()) << what;
  ASSERT_EQ(got.shape(), want.shape()) << what;
  for (int64_t i = 0; i < want.numel(); ++i)
    EXPECT_NEAR(got.getDouble(i), want.getDouble(i), 1e-5 + 1e-5 * std::fabs(want.getDouble(i)))
        << what << "[" << i << "]";
}

struct Compiled {
  CompiledModel cm;
  std::string structured; // the metadata string
  std::vector<std::string> inputs, outputs; // the artifact's names
};

/// Compiles `text` with `opts` (-O0 and -O3), feeds the flattened `in` to the artifact, rebuilds
/// the outputs from `structured_values` and compares them with the interpreter's. Returns the
/// -O3 compile.
Compiled compileAndCheck(const std::string &text, const CompileOptions &base,
                         const std::map<std::string, Object> &in) {
  Compiled last;
  for (int opt : {0, 3}) {
    auto ref = parseGraph(text, "test");
    auto g = parseGraph(text, "test");
    CompileOptions opts = base;
    opts.optLevel = opt;
    Compiled c;
    c.cm = compileModel(*g, opts);
    EXPECT_TRUE(c.cm.fallbackNodes.empty());
    runtime::Model m = runtime::Model::loadFromMemory(c.cm.artifact.data(), c.cm.artifact.size());
    if (const std::string *s = m.info("structured_values"))
      c.structured = *s;
    std::vector<runtime::HostTensor> hin;
    for (const runtime::TensorDesc &d : m.inputs()) {
      c.inputs.push_back(d.name);
      const Tensor *t = nullptr;
      if (auto it = in.find(d.name); it != in.end()) {
        t = &it->second.tensor;
      } else {
        size_t lb = d.name.rfind('[');
        EXPECT_NE(lb, std::string::npos) << d.name;
        const Object &seq = in.at(d.name.substr(0, lb));
        t = &seq.sequence.at(size_t(std::stoul(d.name.substr(lb + 1))));
      }
      runtime::HostTensor h(d);
      EXPECT_EQ(h.bytes.size(), size_t(t->nbytes())) << d.name;
      std::memcpy(h.bytes.data(), t->raw(), std::min(h.bytes.size(), size_t(t->nbytes())));
      hin.push_back(std::move(h));
    }
    std::map<std::string, Tensor> out;
    for (const runtime::HostTensor &h : m.run(hin)) {
      c.outputs.push_back(h.desc.name);
      Tensor t(DType(uint32_t(h.desc.dtype)), h.desc.shape);
      std::memcpy(t.raw(), h.bytes.data(), h.bytes.size());
      out[h.desc.name] = t;
    }
    auto want = Interpreter(*ref).run(in);
    auto forms = structuredValues(m);
    auto check = [&](const Value *o) {
      const std::string &name = o->name();
      const Object &w = want.at(name);
      std::string form = forms.count(name) ? forms[name] : "tensor";
      if (form == "opt:none") {
        EXPECT_TRUE(w.isNone()) << name;
        return;
      }
      if (form == "tensor" || form == "opt:tensor") {
        ASSERT_TRUE(w.isTensor()) << name;
        ASSERT_TRUE(out.count(name)) << name;
        expectSameTensor(out[name], w.tensor, name);
        return;
      }
      if (form.rfind("opt:", 0) == 0)
        form = form.substr(4);
      ASSERT_EQ(form.rfind("seq:", 0), 0u) << name << ": " << form;
      ASSERT_TRUE(w.isSequence()) << name;
      ASSERT_EQ(std::stoul(form.substr(4)), w.sequence.size()) << name;
      for (size_t i = 0; i < w.sequence.size(); ++i) {
        std::string en = name + "[" + std::to_string(i) + "]";
        ASSERT_TRUE(out.count(en)) << en;
        expectSameTensor(out[en], w.sequence[i], en);
      }
    };
    for (const Value *o : ref->outputs)
      check(o);
    last = std::move(c);
  }
  return last;
}

CompileOptions spec(std::initializer_list<const char *> specs) {
  CompileOptions o;
  for (const char *s : specs)
    parseInputShapeSpec(s, o);
  return o;
}

TEST(CompileSequences, SequenceInputAndOutput) {
  const char *text = R"(
graph @g(%x: seq<f32[?,3]>, %t: f32[2,3]) opset {"": 12} {
  %one: i64[] = dense<1>
  %s = SequenceInsert(%x, %t)
  %y = Identity(%s)
  %n = SequenceLength(%x)
  %a = SequenceAt(%x, %one)
  %r = Relu(%a)
  return %y, %n, %r
}
)";
  std::map<std::string, Object> in{
      {"x", Object::seq({ramp(DType::f32, {2, 3}, 0), ramp(DType::f32, {4, 3}, 1)})},
      {"t", ramp(DType::f32, {2, 3}, 2)}};
  Compiled c = compileAndCheck(text, spec({"x=seq(2x3,4x3)"}), in);
  EXPECT_EQ(c.structured, "x=seq:2;y=seq:3");
  EXPECT_EQ(c.inputs, (std::vector<std::string>{"x[0]", "x[1]", "t"}));
  EXPECT_EQ(c.outputs, (std::vector<std::string>{"y[0]", "y[1]", "y[2]", "n", "r"}));
}

TEST(CompileSequences, EmptySequenceInput) {
  const char *text = R"(
graph @g(%x: seq<f32[?]>, %t: f32[3]) opset {"": 12} {
  %s = SequenceInsert(%x, %t)
  %n = SequenceLength(%x)
  return %s, %n
}
)";
  std::map<std::string, Object> in{{"x", Object::seq({})}, {"t", ramp(DType::f32, {3}, 0)}};
  Compiled c = compileAndCheck(text, spec({"x=seq()"}), in);
  EXPECT_EQ(c.structured, "x=seq:0;s=seq:1");
  EXPECT_EQ(c.inputs, (std::vector<std::string>{"t"}));
}

TEST(CompileSequences, ScalarElements) {
  const char *text = R"(
graph @g(%x: seq<f32[]>) opset {"": 12} {
  %c = ConcatFromSequence(%x) {axis = 0, new_axis = 1}
  return %c
}
)";
  std::map<std::string, Object> in{
      {"x", Object::seq({ramp(DType::f32, {}, 0), ramp(DType::f32, {}, 3)})}};
  compileAndCheck(text, spec({"x=seq(scalar,scalar)"}), in);
}

TEST(CompileSequences, OptionalPresent) {
  const char *text = R"(
graph @g(%o: opt<f32[?]>) opset {"": 15} {
  %h = OptionalHasElement(%o)
  %e = OptionalGetElement(%o)
  %r = Relu(%e)
  %p = Identity(%o)
  return %h, %r, %p
}
)";
  std::map<std::string, Object> in{{"o", ramp(DType::f32, {5}, 0)}};
  // A present optional tensor: by its shape, or written opt(...).
  Compiled c = compileAndCheck(text, spec({"o=5"}), in);
  EXPECT_EQ(c.structured, "o=opt:tensor;p=opt:tensor");
  EXPECT_EQ(c.inputs, (std::vector<std::string>{"o"}));
  EXPECT_EQ(c.outputs, (std::vector<std::string>{"h", "r", "p"}));
  compileAndCheck(text, spec({"o=opt(5)"}), in);
}

TEST(CompileSequences, OptionalAbsent) {
  const char *text = R"(
graph @g(%o: opt<i32[]>, %x: f32[2]) opset {"": 15} {
  %h = OptionalHasElement(%o)
  %p = Identity(%o)
  %y = Neg(%x)
  return %h, %p, %y
}
)";
  std::map<std::string, Object> in{{"o", Object::none()}, {"x", ramp(DType::f32, {2}, 0)}};
  Compiled c = compileAndCheck(text, spec({"o=none"}), in);
  EXPECT_EQ(c.structured, "o=opt:none;p=opt:none");
  EXPECT_EQ(c.inputs, (std::vector<std::string>{"x"}));
  EXPECT_EQ(c.outputs, (std::vector<std::string>{"h", "y"})); // no output for the absent p
}

TEST(CompileSequences, InputsReturnedAsTheyAre) {
  // A sequence input that is also the output: the artifact's input and output `x[i]` are bound
  // separately (computeEveryOutput copies each element); an absent optional returned as the
  // only output leaves an artifact without outputs.
  const char *seq = R"(
graph @g(%x: seq<f32[?]>) opset {"": 15} {
  return %x
}
)";
  std::map<std::string, Object> in{
      {"x", Object::seq({ramp(DType::f32, {2}, 0), ramp(DType::f32, {3}, 1)})}};
  Compiled c = compileAndCheck(seq, spec({"x=seq(2,3)"}), in);
  EXPECT_EQ(c.structured, "x=seq:2");
  EXPECT_EQ(c.inputs, (std::vector<std::string>{"x[0]", "x[1]"}));
  EXPECT_EQ(c.outputs, (std::vector<std::string>{"x[0]", "x[1]"}));
  const char *none = R"(
graph @g(%o: opt<f32[2]>) opset {"": 15} {
  %p = Identity(%o)
  return %p
}
)";
  Compiled n = compileAndCheck(none, spec({"o=none"}), {{"o", Object::none()}});
  EXPECT_EQ(n.structured, "o=opt:none;p=opt:none");
  EXPECT_TRUE(n.inputs.empty());
  EXPECT_TRUE(n.outputs.empty());
}

TEST(CompileSequences, OptionalSequence) {
  const char *text = R"(
graph @g(%o: opt<seq<i32[2]>>) opset {"": 15} {
  %s = OptionalGetElement(%o)
  %c = ConcatFromSequence(%s) {axis = 0}
  return %o, %c
}
)";
  std::map<std::string, Object> in{
      {"o", Object::seq({ramp(DType::i32, {2}, 4), ramp(DType::i32, {2}, 9)})}};
  Compiled c = compileAndCheck(text, spec({"o=opt(seq(2,2))"}), in);
  EXPECT_EQ(c.structured, "o=opt:seq:2");
  EXPECT_EQ(c.outputs, (std::vector<std::string>{"o[0]", "o[1]", "c"}));
}

TEST(CompileSequences, SequenceMap) {
  // Two sequences and a tensor; the body's outputs of different shapes per element.
  const char *text = R"(
graph @g(%x: seq<f32[?]>, %y: seq<f32[?]>, %t: f32[1]) opset {"": 17} {
  %z, %sh = SequenceMap(%x, %y, %t) {body = graph @body(%a: f32[?], %b: f32[?], %c: f32[1]) {
    %s = Add(%a, %b) {name = "add"}
    %u = Mul(%s, %c) {name = "mul"}
    %k = Shape(%u) {name = "shape"}
    return %u, %k
  }}
  return %z, %sh
}
)";
  std::map<std::string, Object> in{
      {"x", Object::seq({ramp(DType::f32, {3}, 0), ramp(DType::f32, {5}, 1)})},
      {"y", Object::seq({ramp(DType::f32, {3}, 2), ramp(DType::f32, {5}, 3)})},
      {"t", ramp(DType::f32, {1}, 4)}};
  Compiled c = compileAndCheck(text, spec({"x=seq(3,5)", "y=seq(3,5)"}), in);
  EXPECT_EQ(c.structured, "x=seq:2;y=seq:2;z=seq:2;sh=seq:2");
}

TEST(CompileSequences, SequenceInsertAtRunTimePosition) {
  const char *text = R"(
graph @g(%x: seq<f32[2]>, %t: f32[2], %p: i64[1]) opset {"": 12} {
  %s = SequenceInsert(%x, %t, %p)
  return %s
}
)";
  for (int64_t p : {0, 1, 3, -1, -3}) {
    std::map<std::string, Object> in{
        {"x", Object::seq({ramp(DType::f32, {2}, 0), ramp(DType::f32, {2}, 1),
                           ramp(DType::f32, {2}, 2)})},
        {"t", ramp(DType::f32, {2}, 7)},
        {"p", Tensor::fromVector<int64_t>({1}, {p})}};
    compileAndCheck(text, spec({"x=seq(2,2,2)"}), in);
  }
}

TEST(CompileSequences, IfSelectsSequencesAtRunTime) {
  const char *text = R"(
graph @g(%c: bool[], %x: f32[3], %y: f32[3]) opset {"": 13} {
  %r = If(%c) {else_branch = graph @e() {
    %n = Neg(%y) {name = "neg"}
    %s = SequenceConstruct(%n, %x) {name = "se"}
    return %s
  }, then_branch = graph @t() {
    %s = SequenceConstruct(%x, %y) {name = "st"}
    return %s
  }}
  return %r
}
)";
  for (bool c : {true, false}) {
    std::map<std::string, Object> in{{"c", Tensor::scalar<bool>(c)},
                                     {"x", ramp(DType::f32, {3}, 0)},
                                     {"y", ramp(DType::f32, {3}, 5)}};
    Compiled r = compileAndCheck(text, {}, in);
    EXPECT_EQ(r.structured, "r=seq:2");
  }
}

TEST(CompileSequences, ExpandedSequenceMapLoop) {
  // SequenceMap's function body: a Loop over SequenceLength(x) that reads SequenceAt(x, i) and
  // carries a sequence; unrolled once the length folds.
  const char *text = R"(
graph @g(%x: seq<f32[?]>) opset {"": 17} {
  %len = SequenceLength(%x)
  %true: bool[] = dense<true>
  %empty = SequenceEmpty() {dtype = 1}
  %y = Loop(%len, %true, %empty) {body = graph @b(%i: i64[], %cin: bool[], %acc: seq<f32[?]>) {
    %cout = Identity(%cin) {name = "id"}
    %e = SequenceAt(%x, %i) {name = "at"}
    %d = Add(%e, %e) {name = "add"}
    %acc2 = SequenceInsert(%acc, %d) {name = "ins"}
    return %cout, %acc2
  }}
  return %y
}
)";
  std::map<std::string, Object> in{
      {"x", Object::seq({ramp(DType::f32, {2}, 0), ramp(DType::f32, {4}, 1),
                         ramp(DType::f32, {1}, 2)})}};
  Compiled c = compileAndCheck(text, spec({"x=seq(2,4,1)"}), in);
  EXPECT_EQ(c.structured, "x=seq:3;y=seq:3");
}

TEST(CompileSequences, LoopCarriesAnOptionalThatBecomesASequence) {
  // test_loop16_seq_none with a constant trip count: the carried value starts as an optional
  // (absent, or present) and the body's If on OptionalHasElement turns it into a sequence; the
  // If's condition folds (fold-constants in the folding rounds) once the optional's presence
  // is known, and OptionalHasElement of the sequence carried into the next copy is true.
  const char *text = R"(
graph @g(%o: opt<seq<f32[?]>>) opset {"": 16} {
  %trips: i64[] = dense<3>
  %true: bool[] = dense<true>
  %y = Loop(%trips, %true, %o) {body = graph @b(%i: i64[], %cin: bool[], %acc: opt<seq<f32[?]>>) {
    %cout = Identity(%cin) {name = "id"}
    %has = OptionalHasElement(%acc) {name = "has"}
    %none = Not(%has) {name = "not"}
    %s = If(%none) {name = "if", else_branch = graph @e() {
      %got = OptionalGetElement(%acc) {name = "get"}
      return %got
    }, then_branch = graph @t() {
      %zero: f32[1] = dense<[0]>
      %init = SequenceConstruct(%zero) {name = "init"}
      return %init
    }}
    %x: f32[5] = dense<[1, 2, 3, 4, 5]>
    %one: i64[] = dense<1>
    %start: i64[1] = dense<[0]>
    %axes: i64[1] = dense<[0]>
    %end = Add(%i, %one) {name = "end"}
    %endv = Unsqueeze(%end, %axes) {name = "endv"}
    %piece = Slice(%x, %start, %endv) {name = "slice"}
    %out = SequenceInsert(%s, %piece) {name = "ins"}
    return %cout, %out
  }}
  return %y
}
)";
  Compiled absent = compileAndCheck(text, spec({"o=none"}), {{"o", Object::none()}});
  EXPECT_EQ(absent.structured, "o=opt:none;y=seq:4");
  Compiled present = compileAndCheck(
      text, spec({"o=opt(seq(2))"}), {{"o", Object::seq({ramp(DType::f32, {2}, 3)})}});
  EXPECT_EQ(present.structured, "o=opt:seq:1;y=seq:4");
}

TEST(CompileSequences, SpecsParse) {
  CompileOptions o = spec({"a=seq(2x3,4x3)", "b=seq()", "c=none", "d=opt(seq(scalar))",
                           "e=opt(1x2)", "f=scalar", "g=1x2"});
  EXPECT_EQ(o.inputStructures.at("a").kind, InputStructure::Kind::Sequence);
  EXPECT_EQ(o.inputStructures.at("a").elements,
            (std::vector<std::vector<int64_t>>{{2, 3}, {4, 3}}));
  EXPECT_TRUE(o.inputStructures.at("b").elements.empty());
  EXPECT_EQ(o.inputStructures.at("c").kind, InputStructure::Kind::Absent);
  EXPECT_TRUE(o.inputStructures.at("d").optional);
  EXPECT_EQ(o.inputStructures.at("d").elements, (std::vector<std::vector<int64_t>>{{}}));
  EXPECT_EQ(o.inputStructures.at("e").kind, InputStructure::Kind::Tensor);
  EXPECT_EQ(o.inputStructures.at("e").dims, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(o.inputShapes.at("f"), std::vector<int64_t>{});
  EXPECT_EQ(o.inputShapes.at("g"), (std::vector<int64_t>{1, 2}));
}

TEST(CompileSequences, BadSpecsNameTheInput) {
  const char *text = R"(
graph @g(%x: seq<f32[?,3]>, %t: f32[2,3], %o: opt<f32[2]>) opset {"": 15} {
  %s = SequenceInsert(%x, %t)
  %e = OptionalGetElement(%o)
  return %s, %e
}
)";
  auto errorFor = [&](std::initializer_list<const char *> specs) {
    auto g = parseGraph(text, "test");
    return test::errorOf([&] { compileModel(*g, spec(specs)); });
  };
  auto expectHas = [](const std::string &e, const std::string &part) {
    EXPECT_NE(e.find(part), std::string::npos) << "expected '" << part << "' in: " << e;
  };
  // Malformed specs.
  CompileOptions o;
  expectHas(test::errorOf([&] { parseInputShapeSpec("x=seq(2x3,)", o); }), "dim ''");
  expectHas(test::errorOf([&] { parseInputShapeSpec("x=opt(none)", o); }), "NAME=none");
  expectHas(test::errorOf([&] { parseInputShapeSpec("x=seq(2x3", o); }), "expected D0xD1");
  // No structure for the sequence input.
  expectHas(errorFor({"o=2"}), "input 'x' has type seq<f32[?,3]>");
  expectHas(errorFor({"o=2"}), "--input-shape x=seq(");
  // A plain shape for a sequence input.
  expectHas(errorFor({"x=2x3", "o=2"}), "a plain shape fits tensors");
  // A sequence spec for a tensor input.
  expectHas(errorFor({"x=seq(2x3)", "t=seq(2x3)", "o=2"}), "input 't' has type f32[2,3], a tensor");
  // A wrong element rank; a static dim that disagrees.
  expectHas(errorFor({"x=seq(2x3,6)", "o=2"}), "x[1]: 1 dims given");
  expectHas(errorFor({"x=seq(2x4)", "o=2"}), "x[0]: dim 1 is 3 in the model, not 4");
  // none for a sequence; opt(...) for a non-optional; a sequence for an optional tensor.
  expectHas(errorFor({"x=none", "o=2"}), "only an optional may be absent");
  expectHas(errorFor({"x=opt(seq(2x3))", "o=2"}), "not an optional");
  expectHas(errorFor({"x=seq(2x3)", "o=seq(2)"}), "input 'o' has type opt<f32[2]>, not a sequence");
  // An unknown input.
  expectHas(errorFor({"x=seq(2x3)", "o=2", "w=seq()"}), "the model has no input 'w'");
}

TEST(CompileSequences, UnfoldedOutputNamesItsProducer) {
  // An erase at a run-time position: the length is static but which element goes is not.
  auto g = parseGraph(R"(
graph @g(%x: seq<f32[2]>, %p: i64[]) opset {"": 12} {
  %s = SequenceErase(%x, %p) {name = "erase"}
  return %s
}
)", "test");
  std::string e = test::errorOf([&] { compileModel(*g, spec({"x=seq(2,2)"})); });
  EXPECT_NE(e.find("output 's' is a sequence"), std::string::npos) << e;
  EXPECT_NE(e.find("node 'erase' (SequenceErase)"), std::string::npos) << e;
}

} // namespace
