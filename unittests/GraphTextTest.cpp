//===- GraphTextTest.cpp - the graph IR's text form: print/parse round trips ---===//
#include "tessel/Graph/Text.h"

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

using namespace tessel;

namespace {

/// Parses `text`, prints it back and expects the same text; returns the graph.
std::unique_ptr<Graph> expectCanonical(const std::string &text) {
  std::unique_ptr<Graph> g;
  try {
    g = parseGraph(text, "test.tsl");
  } catch (const Error &e) {
    ADD_FAILURE() << "parse failed: " << e.what() << "\n" << text;
    return nullptr;
  }
  verifyGraph(*g);
  EXPECT_EQ(printGraph(*g), text);
  return g;
}

/// print -> parse -> print gives the same text; returns the reparsed graph.
std::unique_ptr<Graph> roundTrip(const Graph &g) {
  std::string a = printGraph(g);
  std::unique_ptr<Graph> h;
  try {
    h = parseGraph(a, "roundtrip.tsl");
  } catch (const Error &e) {
    ADD_FAILURE() << "parse failed: " << e.what() << "\n" << a;
    return nullptr;
  }
  verifyGraph(*h);
  EXPECT_EQ(printGraph(*h), a);
  return h;
}

std::string parseError(const std::string &text) {
  try {
    parseGraph(text, "bad.tsl");
  } catch (const Error &e) {
    return e.what();
  }
  return "<no error>";
}

const char *kEveryFeature = R"(graph @main(%x: f32[1,3,N,?], %s: str[*], %t: ?[2,"batch size"], %u, %q: seq<f32[*]>, %o: opt<seq<i64[]>>, %w: f32[2,3] = dense<[[1, 2.5, -3], [0.1, 1e-07, 3.4028235e+38]]>, %"odd name:0") opset {"": 13, "ai.onnx.ml": 3} {
  %b: i64[4] = dense<[-9223372036854775808, 0, 1, 9223372036854775807]>
  %z: f32[2,3] = dense<0>
  %e: f32[0,3] = dense<[]>
  %k: ? = dense<[true, false]> : bool[2]
  %c: f16[2] = const dense<[0.1, 65504]>
  %y, %mask = Dropout(%x, _, _) {name = "drop1", ratio = 0.5} : (f32[1,3,N,?], bool[1,3,N,?])
  %r = Relu(%y)
  %g = com.microsoft::Gelu(%r) {name = "gelu \"1\""} : f32[1,3,N,?]
  %a0, _ = "weird op"(%g, %w) {alpha = 1.0, beta = -inf, empty = [] : floats, f = [1.0, 2.5, nan], i = -3, ints = [1, -2, 3], "name" = "attr called name", s = "a\n\x01\xff", ss = ["x", ""], t = dense<[1, 2]> : u8[2], ts = [dense<1.5> : f64[], dense<[1, 2, 3, 4]> : f32[4]], ty = type<seq<f32[N]>>}
  %cond = Greater(%x, %x)
  %out = If(%cond) {else_branch = graph @else_body() {
    %e1 = Neg(%x)
    return %e1
  }, then_branch = graph @then_body() {
    %t1 = Loop(_, _) {body = graph @loop(%i: i64[], %c0: bool[]) {
      %t2 = Add(%x, %y) : f32[1,3,N,?]
      return %c0, %t2
    }}
    return %t1
  }} : f32[1,3,N,?]
  %l = SequenceConstruct() {branches = [graph() {
    return %x
  }, graph @two() opset {"": 11} {
    %renamed: ? = capture %y
    %retyped: f32[*] = capture %x
    return %renamed, %retyped
  }], no_graphs = [] : graphs, no_ints = [] : ints, no_strings = [] : strings, no_tensors = [] : tensors}
  Print(%out)
  _ = Identity(%out)
  return %out, %mask, %w
}
)";

TEST(GraphText, EveryFeatureRoundTrips) {
  auto g = expectCanonical(kEveryFeature);
  ASSERT_TRUE(g);
  EXPECT_EQ(g->name, "main");
  EXPECT_EQ(g->opsets.at(""), 13);
  EXPECT_EQ(g->opsets.at("ai.onnx.ml"), 3);
  ASSERT_EQ(g->inputs.size(), 8u);
  EXPECT_EQ(g->inputs[0]->type.str(), "f32[1,3,N,?]");
  EXPECT_EQ(g->inputs[1]->type.str(), "str[*]");
  EXPECT_EQ(g->inputs[2]->type.shape.dims[1].symbol, "batch size");
  EXPECT_EQ(g->inputs[3]->type.kind, Type::Kind::Unknown);
  EXPECT_EQ(g->inputs[4]->type.str(), "seq<f32[*]>");
  EXPECT_EQ(g->inputs[5]->type.str(), "opt<seq<i64[]>>");
  EXPECT_EQ(g->inputs[7]->name(), "odd name:0");
  // Initializers: the input default first, then the body's, in order; the const is not one.
  ASSERT_EQ(g->initializers.size(), 5u);
  EXPECT_EQ(g->initializers[0]->name(), "w");
  EXPECT_EQ(g->initializers[1]->name(), "b");
  EXPECT_EQ(g->initializers[4]->name(), "k");
  EXPECT_EQ(g->initializers[4]->type.kind, Type::Kind::Unknown);
  Value *w = g->findValue("w");
  EXPECT_TRUE(w->constant.equals(Tensor::fromVector<float>(
      {2, 3}, {1, 2.5f, -3, 0.1f, 1e-7f, std::numeric_limits<float>::max()})));
  EXPECT_EQ(g->findValue("b")->constant.data<int64_t>()[0], std::numeric_limits<int64_t>::min());
  EXPECT_EQ(g->findValue("z")->constant.numel(), 6);
  EXPECT_EQ(g->findValue("e")->constant.numel(), 0);
  Value *c = g->findValue("c");
  EXPECT_TRUE(c->isConstant());
  EXPECT_EQ(float(c->constant.data<Float16>()[1]), 65504.0f);

  const auto &nodes = g->nodes();
  ASSERT_EQ(nodes.size(), 9u);
  const Node &drop = *nodes[0];
  EXPECT_EQ(drop.name, "drop1");
  EXPECT_EQ(drop.numInputs(), 3u);
  EXPECT_EQ(drop.input(1), nullptr);
  EXPECT_EQ(drop.attr("ratio")->kind, Attribute::Kind::Float);
  EXPECT_EQ(drop.output(1)->type.str(), "bool[1,3,N,?]");
  EXPECT_EQ(nodes[1]->output(0)->type.kind, Type::Kind::Unknown);
  EXPECT_EQ(nodes[2]->domain, "com.microsoft");
  EXPECT_EQ(nodes[2]->name, "gelu \"1\"");
  const Node &weird = *nodes[3];
  EXPECT_EQ(weird.opType, "weird op");
  EXPECT_EQ(weird.numOutputs(), 2u);
  EXPECT_EQ(weird.output(1), nullptr);
  EXPECT_EQ(weird.name, "");
  EXPECT_EQ(weird.attr("name")->s, "attr called name");
  EXPECT_EQ(weird.attr("alpha")->f, 1.0f);
  EXPECT_TRUE(std::isinf(weird.attr("beta")->f) && weird.attr("beta")->f < 0);
  EXPECT_TRUE(std::isnan(weird.attr("f")->floats[2]));
  EXPECT_EQ(weird.attr("i")->i, -3);
  EXPECT_EQ(weird.attr("ints")->ints, (std::vector<int64_t>{1, -2, 3}));
  EXPECT_EQ(weird.attr("s")->s, std::string("a\n\x01\xff"));
  EXPECT_EQ(weird.attr("ss")->strings, (std::vector<std::string>{"x", ""}));
  EXPECT_EQ(weird.attr("t")->t.typeString(), "u8[2]");
  EXPECT_EQ(weird.attr("ts")->tensors.size(), 2u);
  EXPECT_EQ(weird.attr("ts")->tensors[1].data<float>()[3], 4.0f);
  EXPECT_EQ(weird.attr("ty")->type.str(), "seq<f32[N]>");
  EXPECT_EQ(weird.attr("empty")->kind, Attribute::Kind::Floats);

  // Subgraphs: implicit captures point at the outer values, through two levels.
  const Node &ifNode = *nodes[5];
  const Graph &thenG = *ifNode.attr("then_branch")->g;
  EXPECT_EQ(thenG.parent, g.get());
  const Graph &loopG = *thenG.nodes()[0]->attr("body")->g;
  Value *capX = loopG.findValue("x");
  ASSERT_TRUE(capX && capX->outer);
  EXPECT_EQ(capX->outer->outer, g->findValue("x"));
  EXPECT_EQ(capX->type.str(), "f32[1,3,N,?]");
  const Graph &two = *nodes[6]->attr("branches")->graphs[1];
  EXPECT_EQ(two.opsets.at(""), 11);
  EXPECT_EQ(two.findValue("renamed")->outer, g->findValue("y"));
  EXPECT_EQ(two.findValue("retyped")->type.str(), "f32[*]");
  EXPECT_EQ(nodes[7]->numOutputs(), 0u);
  EXPECT_EQ(nodes[8]->numOutputs(), 1u);
  EXPECT_EQ(nodes[8]->output(0), nullptr);
  ASSERT_EQ(g->outputs.size(), 3u);
  EXPECT_EQ(g->outputs[2], w);
}

TEST(GraphText, BuiltGraphRoundTrips) {
  Graph g;
  g.name = "built";
  g.opsets[""] = 17;
  Value *x = g.createValue("x", Type::tensor(DType::f32, Shape({Dim(2), Dim::sym("N")})));
  g.inputs.push_back(x);
  // Float values that need care: denormals, -0, the extremes, values with long decimals.
  float fvals[] = {0.1f, -0.0f, 1e-45f, 1.17549435e-38f, 3.4028235e38f, 1.0f / 3.0f,
                   std::numeric_limits<float>::infinity(), 16777217.0f, 123456.789f};
  Value *f = g.createValue("f", Type::tensor(DType::f32, Shape::of({9})));
  f->constant = Tensor::fromVector<float>({9}, std::vector<float>(std::begin(fvals), std::end(fvals)));
  g.initializers.push_back(f);
  Value *d = g.createValue("d", Type::tensor(DType::f64, Shape::of({4})));
  d->constant = Tensor::fromVector<double>({4}, {0.1, 1.0 / 3.0, 4.9e-324, -1.7976931348623157e308});
  g.initializers.push_back(d);
  Value *h = g.createValue("h");
  h->constant = Tensor(DType::f16, {3});
  h->constant.data<Float16>()[0].bits = 0x0001; // smallest subnormal
  h->constant.data<Float16>()[1].bits = 0x3555; // ~1/3
  h->constant.data<Float16>()[2].bits = 0xfbff; // -65504
  g.initializers.push_back(h);
  Value *bf = g.createValue("bf", Type::tensor(DType::bf16, Shape::unknownRank()));
  bf->constant = Tensor(DType::bf16, {2});
  bf->constant.data<BFloat16>()[0].bits = 0x3f81;
  bf->constant.data<BFloat16>()[1].bits = 0x0001;
  g.initializers.push_back(bf);
  Value *u = g.createValue("u", Type::tensor(DType::u64, Shape::of({2})));
  u->constant = Tensor::fromVector<uint64_t>({2}, {0, std::numeric_limits<uint64_t>::max()});
  g.initializers.push_back(u);
  Value *i8 = g.createValue("i8", Type::tensor(DType::i8, Shape::of({2})));
  i8->constant = Tensor::fromVector<int8_t>({2}, {-128, 127});
  g.initializers.push_back(i8);
  Value *s = g.createValue("s", Type::tensor(DType::string, Shape::of({3})));
  s->constant = Tensor::fromVector<std::string>({3}, {"plain", "q\"b\\s\t", std::string("\0\x80z", 3)});
  g.initializers.push_back(s);
  Value *big = g.createValue("big", Type::tensor(DType::f32, Shape::of({10, 10})));
  big->constant = Tensor(DType::f32, {10, 10});
  for (int i = 0; i < 100; ++i)
    big->constant.data<float>()[i] = std::sin(float(i)) * 1000;
  g.initializers.push_back(big);
  Value *bigb = g.createValue("bigb", Type::tensor(DType::boolean, Shape::of({100})));
  bigb->constant = Tensor(DType::boolean, {100});
  bigb->constant.data<bool>()[7] = true;
  g.initializers.push_back(bigb);
  Value *scalar = g.createValue("scalar", Type::tensor(DType::i32, Shape::of({})));
  scalar->constant = Tensor::scalar<int32_t>(-7);
  g.initializers.push_back(scalar);

  Node *n = g.appendNode("Conv", {x, f, nullptr}, {"y", "", "z"}, "conv/1");
  n->output(0)->type = Type::tensor(DType::f32, Shape::unknownDims(2));
  Attribute a;
  a.kind = Attribute::Kind::Floats;
  a.floats = {0.1f, 1e30f, -2.0f, 5e-39f};
  n->attrs["scales"] = a;
  Attribute gi;
  gi.kind = Attribute::Kind::Graph;
  gi.g = std::make_shared<Graph>();
  gi.g->parent = &g;
  Value *cap = gi.g->createValue("x", x->type);
  cap->outer = x;
  gi.g->appendNode("Identity", {cap}, {"id"});
  gi.g->outputs.push_back(gi.g->findValue("id"));
  n->attrs["body"] = gi;
  g.outputs.push_back(n->output(0));
  g.outputs.push_back(n->output(2));

  auto r = roundTrip(g);
  ASSERT_TRUE(r);
  // The data survives bit for bit.
  for (const char *name : {"f", "d", "h", "bf", "u", "i8", "s", "big", "bigb", "scalar"}) {
    SCOPED_TRACE(name);
    EXPECT_TRUE(r->findValue(name)->constant.equals(g.findValue(name)->constant));
    EXPECT_EQ(r->findValue(name)->type, g.findValue(name)->type);
  }
  EXPECT_EQ(r->findValue("h")->type.kind, Type::Kind::Unknown);
  const Node &conv = *r->nodes()[0];
  EXPECT_EQ(conv.name, "conv/1");
  EXPECT_EQ(conv.attr("scales")->floats, a.floats);
  EXPECT_EQ(conv.output(1), nullptr);
  std::string text = printGraph(g);
  EXPECT_NE(text.find("%big: f32[10,10] = hex<\""), std::string::npos) << text;
  EXPECT_NE(text.find("dense<[0.1, -0, 1e-45,"), std::string::npos) << text;
  EXPECT_NE(text.find("%scalar: i32[] = dense<-7>"), std::string::npos) << text;
  EXPECT_NE(text.find("{name = \"conv/1\", body = graph() {"), std::string::npos) << text;
}

TEST(GraphText, NaNPayloadSignSurvivesAsText) {
  Graph g;
  Value *v = g.createValue("v", Type::tensor(DType::f32, Shape::of({2})));
  v->constant = Tensor::fromVector<float>({2}, {std::nanf(""), -std::nanf("")});
  g.initializers.push_back(v);
  g.outputs.push_back(v);
  auto r = roundTrip(g);
  ASSERT_TRUE(r);
  const float *d = r->findValue("v")->constant.data<float>();
  EXPECT_TRUE(std::isnan(d[0]) && !std::signbit(d[0]));
  EXPECT_TRUE(std::isnan(d[1]) && std::signbit(d[1]));
}

TEST(GraphText, ElidedConstantsDoNotParse) {
  Graph g;
  Value *v = g.createValue("v", Type::tensor(DType::f32, Shape::of({1000})));
  v->constant = Tensor(DType::f32, {1000});
  g.initializers.push_back(v);
  g.outputs.push_back(v);
  std::ostringstream os;
  PrintOptions po;
  po.elideAbove = 10;
  printGraph(os, g, po);
  EXPECT_EQ(os.str(), "graph() {\n  %v: f32[1000] = dense<...>\n  return %v\n}\n");
  EXPECT_NE(parseError(os.str()).find("elided"), std::string::npos);
}

TEST(GraphText, HandWrittenShortcuts) {
  // Types are optional; comments; `: float` makes an int a float; `[1, 2.5]` is floats; splats;
  // node type lists with one type per present result.
  auto g = parseGraph(R"(
    // a comment
    graph(%a, %b: f32[4]) {
      %w = dense<[1, 2]> : i64[2]   // the value takes the literal's type
      %p = Pad(%a, %w) {mode = "reflect", value = 1 : float, scales = [1, 2.5]}
      %q, _ = Split(%b) : f32[2]
      return %p, %q
    })",
                      "hand.tsl");
  verifyGraph(*g);
  EXPECT_EQ(g->inputs[0]->type.kind, Type::Kind::Unknown);
  EXPECT_EQ(g->findValue("w")->type.str(), "i64[2]");
  const Node &pad = *g->nodes()[0];
  EXPECT_EQ(pad.attr("value")->kind, Attribute::Kind::Float);
  EXPECT_EQ(pad.attr("value")->f, 1.0f);
  EXPECT_EQ(pad.attr("scales")->floats, (std::vector<float>{1.0f, 2.5f}));
  EXPECT_EQ(g->findValue("q")->type.str(), "f32[2]");
  EXPECT_EQ(printGraph(*g), R"(graph(%a, %b: f32[4]) {
  %w: i64[2] = dense<[1, 2]>
  %p = Pad(%a, %w) {mode = "reflect", scales = [1.0, 2.5], value = 1.0}
  %q, _ = Split(%b) : f32[2]
  return %p, %q
}
)");
}

TEST(GraphText, TensorLiteralForms) {
  auto g = parseGraph(R"(graph() {
  %a: f16[2,2] = dense<0.1>
  %b: bool[3] = dense<[1, 0, true]>
  %c: str[2] = dense<["x", "\x00y"]>
  %d: u8[2,0] = dense<[]>
  %e = hex<"0100FF7F"> : i16[2]
  %f: f32[3] = dense<[-inf, nan, 1e-50]>
  %g: f32[1] = dense<[1e39]>
  return %a, %b, %c, %d, %e, %f, %g
})",
                      "lit.tsl");
  EXPECT_EQ(g->findValue("a")->constant.data<Float16>()[3].bits, Float16(0.1f).bits);
  EXPECT_EQ(g->findValue("b")->constant.data<bool>()[2], true);
  EXPECT_EQ(g->findValue("c")->constant.data<std::string>()[1], std::string("\0y", 2));
  EXPECT_EQ(g->findValue("d")->constant.numel(), 0);
  EXPECT_EQ(g->findValue("e")->constant.data<int16_t>()[0], 1);
  EXPECT_EQ(g->findValue("e")->constant.data<int16_t>()[1], 0x7fff);
  const float *f = g->findValue("f")->constant.data<float>();
  EXPECT_TRUE(std::isinf(f[0]) && f[0] < 0);
  EXPECT_TRUE(std::isnan(f[1]));
  EXPECT_EQ(f[2], 0.0f); // underflows to 0
  EXPECT_TRUE(std::isinf(g->findValue("g")->constant.data<float>()[0]));
  // The printer writes the splat form for repeated values and keeps f16 short.
  std::string text = printGraph(*g);
  EXPECT_NE(text.find("%a: f16[2,2] = dense<0.1>"), std::string::npos) << text;
  EXPECT_NE(text.find("%e: i16[2] = dense<[1, 32767]>"), std::string::npos) << text;
  EXPECT_NE(text.find("%d: u8[2,0] = dense<[]>"), std::string::npos) << text;
  roundTrip(*g);
}

struct BadCase {
  const char *text;
  const char *where;   // "line:col"
  const char *message; // a substring of the error
};

TEST(GraphText, ParseErrors) {
  const BadCase cases[] = {
      {"", "1:1", "expected 'graph' at the start of the text, got end of input"},
      {"graph(%x) {\n  return %y\n}", "2:10", "use of undefined value '%y'"},
      {"graph(%x) {\n  %y = Relu(%x\n}", "3:1", "expected ',' or ')' after a node input, got '}'"},
      {"graph(%x) {\n  %x = Relu(%x)\n  return %x\n}", "2:3", "'%x' is defined more than once"},
      {"graph(%x: f33[2]) {\n  return %x\n}", "1:11", "unknown element type 'f33'"},
      {"graph(%x: f32[2,-1]) {\n  return %x\n}", "1:17", "dimension '-1' is out of range"},
      {"graph() {\n  %w: u8[2] = dense<[1, 256]>\n  return %w\n}", "2:25",
       "integer 256 is out of range for u8"},
      {"graph() {\n  %w: f32[2,2] = dense<[[1, 2], [3]]>\n  return %w\n}", "2:33",
       "ragged tensor literal"},
      {"graph() {\n  %w: f32[3] = dense<[1, 2]>\n  return %w\n}", "2:22",
       "tensor data has shape [2] but the type is f32[3]"},
      {"graph() {\n  %w = dense<[1, 2]>\n  return %w\n}", "2:8", "a tensor literal needs its type"},
      {"graph() {\n  %w = hex<\"00\"> : f32[1]\n  return %w\n}", "2:12", "has 2 hex digits, expected 8"},
      {"graph(%x) {\n  %y = Relu(%x) {alpha = }\n  return %y\n}", "2:26", "expected an attribute value"},
      {"graph(%x) {\n  %y = Relu(%x) {a = 1, a = 2}\n  return %y\n}", "2:25", "attribute 'a' is given twice"},
      {"graph(%x) {\n  %y = Relu(%x) : (f32[2], f32[2])\n  return %y\n}", "2:17",
       "the node has 1 result(s) but 2 type(s)"},
      {"graph(%x) {\n  %y = Relu(%x) {s = \"abc}\n  return %y\n}", "2:22", "unterminated string"},
      {"graph(%x) {\n  %y = Relu(%x) {s = \"\\q\"}\n  return %y\n}", "2:23", "invalid escape"},
      {"graph(%x) {\n  return %x\n} extra", "3:3", "expected end of input"},
      {"graph(%x) {\n  %y = Relu(%x) # comment\n  return %y\n}", "2:17", "unexpected character '#'"},
      {"graph(%x) {\n  %y: f32[2] = Relu(%x)\n  return %y\n}", "2:16", "result type goes after the node"},
      {"graph(%x) {\n  %c = capture %x\n  return %c\n}", "2:8", "only valid in a subgraph"},
      {"graph(%x) {\n  %y = If(%x) {then_branch = graph() {\n    %z = Relu(%y)\n    return %z\n  }}\n"
       "  return %y\n}",
       "3:15", "use of undefined value '%y'"},
      {"graph(%x) {\n  %y = Relu(%x) {k = 99999999999999999999}\n  return %y\n}", "2:22",
       "out of range for a 64-bit integer"},
      {"graph(%x) {\n  %y = Relu(%x) {k = [1, \"a\"]}\n  return %y\n}", "2:26", "a number in a list"},
      {"graph() {\n  %w = dense<0> : f32[100000,100000,100000]\n  return %w\n}", "2:17", "too many elements"},
      {"graph() {\n  %w = dense<0> : f32[10000,10000]\n  return %w\n}", "2:17", "splat tensor"},
      {"graph() opset {\"\": 13, \"\": 14} {\n  return\n}", "1:24", "appears twice"},
  };
  for (const BadCase &c : cases) {
    std::string err = parseError(c.text);
    SCOPED_TRACE(c.text);
    EXPECT_NE(err.find(std::string("bad.tsl:") + c.where + ": error: "), std::string::npos) << err;
    EXPECT_NE(err.find(c.message), std::string::npos) << err;
  }
}

TEST(GraphText, DeepNestingIsAnErrorNotACrash) {
  EXPECT_NE(parseError(std::string("graph(\0) {}", 12)).find("1:7: error: unexpected character byte 0x00"),
            std::string::npos);
  std::string seq;
  for (int i = 0; i < 100000; ++i)
    seq += "seq<";
  EXPECT_NE(parseError("graph(%x: " + seq + ") {\n  return\n}").find("nesting deeper"),
            std::string::npos);
  EXPECT_NE(parseError("graph() {\n  %w = dense<" + std::string(100000, '[') + "> : f32[1]\n  return\n}")
                .find("nesting deeper"),
            std::string::npos);
  std::string graphs = "graph() {\n";
  for (int i = 0; i < 10000; ++i)
    graphs += "Foo() {g = graph() {\n";
  EXPECT_NE(parseError(graphs).find("nesting deeper"), std::string::npos);
}

TEST(GraphText, MutatedTextNeverCrashes) {
  // Every prefix, and random byte mutations, of a text covering every feature: the parser must
  // either succeed or throw tessel::Error.
  std::string base = kEveryFeature;
  size_t errors = 0;
  for (size_t n = 0; n < base.size(); n += 3) {
    try {
      parseGraph(base.substr(0, n), "prefix.tsl");
    } catch (const Error &) {
      ++errors;
    }
  }
  EXPECT_GT(errors, 0u);
  std::mt19937 rng(42);
  const char alphabet[] = "%@\"\\[](){}<>,:=?*_-.0123456789aefinx \n";
  for (int iter = 0; iter < 3000; ++iter) {
    std::string t = base;
    int edits = 1 + int(rng() % 4);
    for (int e = 0; e < edits; ++e) {
      size_t p = rng() % t.size();
      switch (rng() % 3) {
      case 0: t[p] = alphabet[rng() % (sizeof(alphabet) - 1)]; break;
      case 1: t.erase(p, 1 + rng() % 8); break;
      default: t.insert(p, 1, char(rng() % 256)); break;
      }
      if (t.empty())
        t.assign(1, 'x');
    }
    try {
      auto g = parseGraph(t, "fuzz.tsl");
      // What parses must print and parse again to the same text.
      std::string a = printGraph(*g);
      EXPECT_EQ(printGraph(*parseGraph(a, "fuzz2.tsl")), a);
    } catch (const Error &) {
    }
  }
}

TEST(GraphText, PrintType) {
  EXPECT_EQ(printType(Type::tensor(DType::f32, Shape({Dim(1), Dim::sym("N"), Dim()}))),
            "f32[1,N,?]");
  EXPECT_EQ(printType(Type::tensor(DType::i64, Shape::of({}))), "i64[]");
  EXPECT_EQ(printType(Type::tensor(DType::undefined)), "?[*]");
  EXPECT_EQ(printType(Type::sequence(Type::optional(Type::unknown()))), "seq<opt<?>>");
  EXPECT_EQ(printType(Type::tensor(DType::f32, Shape({Dim::sym("a b"), Dim::sym("2x")}))),
            "f32[\"a b\",\"2x\"]");
}

} // namespace
