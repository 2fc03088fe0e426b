//===- Text.cpp - Text ops ---------------------------------------===//
//
// StringNormalizer (opset 10) and TfIdfVectorizer (opset 9); TfIdfVectorizer's lowering
// (int32/int64 inputs).
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"
#include "tessel/Graph/Lowering.h"

#include <algorithm>
#include <bit>
#include <cctype>
#include <cstring>
#include <string>
#include <unordered_map>
#include <type_traits>
#include <unordered_set>
#include <vector>

namespace tessel {

namespace {

//===----------------------------------------------------------------------===//
// StringNormalizer
//===----------------------------------------------------------------------===//

enum class CaseAction { None, Lower, Upper };

CaseAction caseAction(const AttrReader &ctx) {
  std::string a = ctx.attrString("case_change_action", "NONE");
  if (a == "NONE")
    return CaseAction::None;
  if (a == "LOWER")
    return CaseAction::Lower;
  if (a == "UPPER")
    return CaseAction::Upper;
  ctx.fail("attribute 'case_change_action' is '", a, "', expected LOWER, UPPER or NONE");
}

/// Byte-wise ASCII case mapping ("C" locale semantics: UTF-8 multibyte sequences are unchanged).
void mapCase(std::string &s, CaseAction a) {
  if (a == CaseAction::Lower)
    for (char &c : s)
      c = char(std::tolower(static_cast<unsigned char>(c)));
  else if (a == CaseAction::Upper)
    for (char &c : s)
      c = char(std::toupper(static_cast<unsigned char>(c)));
}

void inferStringNormalizer(InferContext &ctx) {
  const Shape &s = tensorShape(ctx, 0);
  caseAction(ctx);
  if (!s.rankKnown) {
    ctx.setOutputType(0, Type::tensor(DType::string, Shape::unknownRank()));
    return;
  }
  if (s.rank() != 1 && s.rank() != 2)
    ctx.fail("input has rank ", s.rank(), ", expected [C] or [1, C]");
  if (s.rank() == 2 && s.dims[0].isStatic() && s.dims[0].value != 1)
    ctx.fail("input has shape ", s.str(), ", expected [C] or [1, C]");
  const bool hasStop = !ctx.attrStrings("stopwords", {}).empty();
  Dim c = s.dims.back();
  if (hasStop || (c.isStatic() && c.value == 0))
    c = Dim();
  if (s.rank() == 1)
    ctx.setOutputType(0, Type::tensor(DType::string, Shape({c})));
  else
    ctx.setOutputType(0, Type::tensor(DType::string, Shape({Dim(1), c})));
}

void kernelStringNormalizer(KernelContext &ctx) {
  const Tensor &x = ctx.input(0);
  if (x.dtype() != DType::string)
    ctx.fail("input has element type ", dtypeName(x.dtype()), ", expected string");
  if (!(x.rank() == 1 || (x.rank() == 2 && x.dim(0) == 1)))
    ctx.fail("input has shape ", x.shapeString(), ", expected [C] or [1, C]");
  const CaseAction action = caseAction(ctx);
  const bool caseSensitive = ctx.attrInt("is_case_sensitive", 0) != 0;
  // locale: "" and en_US-like locales are handled with ASCII case mapping; others are accepted
  // with the same semantics.
  std::unordered_set<std::string> stop;
  for (std::string w : ctx.attrStrings("stopwords", {})) {
    if (!caseSensitive)
      mapCase(w, CaseAction::Lower);
    stop.insert(std::move(w));
  }
  const std::string *in = x.data<std::string>();
  std::vector<std::string> kept;
  std::string key;
  for (int64_t i = 0; i < x.numel(); ++i) {
    if (!stop.empty()) {
      key = in[i];
      if (!caseSensitive)
        mapCase(key, CaseAction::Lower);
      if (stop.count(key))
        continue;
    }
    kept.push_back(in[i]);
    mapCase(kept.back(), action);
  }
  if (kept.empty())
    kept.emplace_back();
  const int64_t n = int64_t(kept.size());
  Tensor out(DType::string, x.rank() == 1 ? std::vector<int64_t>{n} : std::vector<int64_t>{1, n});
  std::string *o = out.data<std::string>();
  for (int64_t i = 0; i < n; ++i)
    o[i] = std::move(kept[size_t(i)]);
  ctx.setOutput(0, std::move(out));
}

//===----------------------------------------------------------------------===//
// TfIdfVectorizer
//===----------------------------------------------------------------------===//

enum class TfMode { TF, IDF, TFIDF };

struct TfIdfConfig {
  int64_t minN = 1, maxN = 1, maxSkip = 0;
  TfMode mode = TfMode::TF;
  bool strings = false;
  int64_t outWidth = 0;
  std::vector<int64_t> indexes; // per pool n-gram: output coordinate
  std::vector<float> weights;   // per pool n-gram
  /// Per n (1-based, index n-1): n-gram key -> pool n-gram number.
  std::vector<std::unordered_map<std::string, int64_t>> maps;
};

void appendKey(std::string &key, int64_t v) {
  char b[8];
  std::memcpy(b, &v, 8);
  key.append(b, 8);
}
void appendKey(std::string &key, const std::string &s) {
  appendKey(key, int64_t(s.size()));
  key.append(s);
}

TfIdfConfig parseTfIdf(const AttrReader &ctx) {
  TfIdfConfig c;
  c.minN = ctx.attrInt("min_gram_length");
  c.maxN = ctx.attrInt("max_gram_length");
  c.maxSkip = ctx.attrInt("max_skip_count");
  if (c.minN < 1 || c.maxN < c.minN)
    ctx.fail("expected 1 <= min_gram_length <= max_gram_length, got ", c.minN, " and ", c.maxN);
  if (c.maxN > 1024)
    ctx.fail("max_gram_length ", c.maxN, " is too large (expected <= 1024)");
  if (c.maxSkip < 0)
    ctx.fail("max_skip_count is ", c.maxSkip, ", expected >= 0");
  std::string mode = ctx.attrString("mode");
  if (mode == "TF")
    c.mode = TfMode::TF;
  else if (mode == "IDF")
    c.mode = TfMode::IDF;
  else if (mode == "TFIDF")
    c.mode = TfMode::TFIDF;
  else
    ctx.fail("attribute 'mode' is '", mode, "', expected TF, IDF or TFIDF");
  const bool hasInts = ctx.hasAttr("pool_int64s"), hasStrings = ctx.hasAttr("pool_strings");
  if (hasInts == hasStrings)
    ctx.fail("exactly one of pool_int64s and pool_strings must be given");
  c.strings = hasStrings;
  std::vector<int64_t> poolI = ctx.attrInts("pool_int64s", {});
  std::vector<std::string> poolS = ctx.attrStrings("pool_strings", {});
  const int64_t poolSize = int64_t(hasStrings ? poolS.size() : poolI.size());
  std::vector<int64_t> counts = ctx.attrInts("ngram_counts");
  c.indexes = ctx.attrInts("ngram_indexes");
  for (size_t k = 0; k < counts.size(); ++k)
    if (counts[k] < 0 || counts[k] > poolSize || (k > 0 && counts[k] < counts[k - 1]))
      ctx.fail("ngram_counts must be non-decreasing offsets in [0, ", poolSize, "], got ",
               shapeToString(counts));
  c.maps.resize(size_t(std::max<int64_t>(c.maxN, int64_t(counts.size()))));
  int64_t ngram = 0;
  std::string key;
  for (size_t k = 0; k < counts.size(); ++k) {
    const int64_t n = int64_t(k) + 1;
    const int64_t begin = counts[k];
    const int64_t end = k + 1 < counts.size() ? counts[k + 1] : poolSize;
    if ((end - begin) % n != 0)
      ctx.fail("pool entries for ", n, "-grams (", end - begin, ") are not a multiple of ", n);
    for (int64_t p = begin; p < end; p += n, ++ngram) {
      key.clear();
      for (int64_t j = 0; j < n; ++j)
        hasStrings ? appendKey(key, poolS[size_t(p + j)]) : appendKey(key, poolI[size_t(p + j)]);
      c.maps[size_t(k)].emplace(key, ngram);
    }
  }
  if (int64_t(c.indexes.size()) != ngram)
    ctx.fail("ngram_indexes has ", c.indexes.size(), " entries, expected ", ngram,
             " (one per n-gram in the pool)");
  int64_t maxIdx = -1;
  for (int64_t i : c.indexes) {
    if (i < 0)
      ctx.fail("ngram_indexes contains ", i, ", expected >= 0");
    maxIdx = std::max(maxIdx, i);
  }
  if (maxIdx >= (int64_t(1) << 40))
    ctx.fail("ngram_indexes contains ", maxIdx, ", which is too large");
  c.outWidth = maxIdx + 1;
  c.weights = ctx.attrFloats("weights", {});
  if (c.weights.empty())
    c.weights.assign(size_t(ngram), 1.f);
  if (int64_t(c.weights.size()) != ngram)
    ctx.fail("weights has ", c.weights.size(), " entries, expected ", ngram);
  return c;
}

void inferTfIdf(InferContext &ctx) {
  TfIdfConfig c = parseTfIdf(ctx);
  const Shape &s = tensorShape(ctx, 0);
  if (!s.rankKnown) {
    ctx.setOutputType(0, Type::tensor(DType::f32, Shape::unknownRank()));
    return;
  }
  if (s.rank() == 1)
    ctx.setOutputType(0, Type::tensor(DType::f32, Shape({Dim(c.outWidth)})));
  else if (s.rank() == 2)
    ctx.setOutputType(0, Type::tensor(DType::f32, Shape({s.dims[0], Dim(c.outWidth)})));
  else
    ctx.fail("input has rank ", s.rank(), ", expected 1 or 2");
}

template <class T>
void countRow(const TfIdfConfig &c, const T *row, int64_t C, std::vector<int64_t> &counts,
              std::string &key) {
  for (int64_t n = c.minN; n <= c.maxN; ++n) {
    if (size_t(n - 1) >= c.maps.size() || c.maps[size_t(n - 1)].empty())
      continue;
    const auto &map = c.maps[size_t(n - 1)];
    const int64_t maxSkip = n == 1 ? 0 : c.maxSkip;
    for (int64_t skip = 0; skip <= maxSkip; ++skip) {
      const int64_t dist = skip + 1;
      // n >= 2 here (or skip is 0): once the gap reaches the row, no n-gram fits; stopping here
      // keeps max_skip_count = 2^62 from looping 2^62 times (and (n-1)*dist from overflowing).
      if (skip > 0 && dist >= C)
        break;
      const int64_t span = (n - 1) * dist; // last item offset
      for (int64_t i = 0; i + span < C; ++i) {
        key.clear();
        for (int64_t j = 0; j < n; ++j) {
          if constexpr (std::is_same_v<T, std::string>)
            appendKey(key, row[i + j * dist]);
          else
            appendKey(key, int64_t(row[i + j * dist]));
        }
        auto it = map.find(key);
        if (it != map.end())
          ++counts[size_t(it->second)];
      }
    }
  }
}

void kernelTfIdf(KernelContext &ctx) {
  TfIdfConfig c = parseTfIdf(ctx);
  const Tensor &x = ctx.input(0);
  if (c.strings ? x.dtype() != DType::string
                : (x.dtype() != DType::i32 && x.dtype() != DType::i64))
    ctx.fail("input has element type ", dtypeName(x.dtype()), ", expected ",
             c.strings ? "string (pool_strings is set)" : "int32 or int64 (pool_int64s is set)");
  if (x.rank() != 1 && x.rank() != 2)
    ctx.fail("input has shape ", x.shapeString(), ", expected [C] or [N, C]");
  const int64_t N = x.rank() == 2 ? x.dim(0) : 1;
  const int64_t C = x.dim(x.rank() - 1);
  std::vector<int64_t> outShape =
      x.rank() == 2 ? std::vector<int64_t>{N, c.outWidth} : std::vector<int64_t>{c.outWidth};
  Tensor out(DType::f32, outShape);
  float *o = out.data<float>();
  std::vector<int64_t> counts(c.indexes.size());
  std::string key;
  for (int64_t b = 0; b < N; ++b) {
    std::fill(counts.begin(), counts.end(), 0);
    if (x.dtype() == DType::string)
      countRow(c, x.data<std::string>() + b * C, C, counts, key);
    else if (x.dtype() == DType::i32)
      countRow(c, x.data<int32_t>() + b * C, C, counts, key);
    else
      countRow(c, x.data<int64_t>() + b * C, C, counts, key);
    float *row = o + b * c.outWidth;
    for (size_t i = 0; i < counts.size(); ++i) {
      if (counts[i] == 0)
        continue;
      float v = c.mode == TfMode::TF    ? float(counts[i])
                : c.mode == TfMode::IDF ? c.weights[i]
                                        : float(counts[i]) * c.weights[i];
      row[c.indexes[i]] += v;
    }
  }
  ctx.setOutput(0, std::move(out));
}

/// The most pool n-grams (of the counted lengths) that the lowering unrolls.
constexpr int64_t kMaxLoweredNgrams = 4096;

/// TfIdfVectorizer lowered for int32/int64 inputs. The pool is made of compile-time constants,
/// so the counting is unrolled over it, in three stages (docs/lowering.md):
///
///  1. codes_n<N>[b, s, i] (one stored stage per n-gram length n in [min, max] that has pool
///     entries): the code q of the pool n-gram that the n items starting at i with skip s
///     (stride s + 1) match, or -1 (no match, or the n-gram runs past the row): the max over
///     the pool's n-grams of length n of (AND of n equality tests against literals ? code : -1);
///     only the first of duplicate pool n-grams can match, as in the reference's map.
///  2. counts[b, q] = the number of positions whose code is q: one reduction over the
///     positions of every n (f32, exact while a row has fewer than 2^24 positions; else i64).
///  3. out[b, j] = the sum, in pool order, of the per-n-gram values (TF: count, IDF: weight
///     when count > 0, TFIDF: count * weight) of the pool n-grams whose ngram_indexes is j.
///
/// Codes number (output column, rank): q = j * R + r, where r counts the earlier countable pool
/// n-grams with the same column and R is the largest such multiplicity (1 when ngram_indexes
/// is injective), so the last stage reads counts[b, j * R + r] for r < R, and adds the values in
/// the reference's order (it skips zero counts: adding 0 changes nothing). Non-uniform weights
/// come from a stored table weights[q] (a select tree over the codes, computed once per run).
/// Every tree over the pool is balanced (depth log2 of the pool).
void lowerTfIdf(LowerContext &ctx) {
  using lowering::Expr;
  using lowering::Var;
  const TfIdfConfig c = parseTfIdf(ctx);
  const DType dt = ctx.inputDType(0);
  if (c.strings || dt == DType::string)
    ctx.fail("string inputs (pool_strings) are not compiled: the lowering handles int32/int64 "
             "inputs with pool_int64s");
  ctx.check(dt == DType::i32 || dt == DType::i64, "input has element type ", dtypeName(dt),
            ", expected int32 or int64 (pool_int64s is set)");
  const std::vector<int64_t> xs = ctx.inputShape(0);
  ctx.check(xs.size() == 1 || xs.size() == 2, "input has shape ", shapeToString(xs),
            ", expected [C] or [N, C]");
  const bool batched = xs.size() == 2;
  const int64_t N = batched ? xs[0] : 1, C = xs.back();
  const std::vector<int64_t> outShape = ctx.outputShape(0);
  const int64_t W = c.outWidth;

  // The countable pool n-grams (n in [min, max], first of duplicates), in pool order.
  struct Gram {
    int64_t n, ngram;
    std::vector<int64_t> values;
    int64_t code = 0;
  };
  std::vector<Gram> grams;
  const std::vector<int64_t> pool = ctx.attrInts("pool_int64s", {});
  const std::vector<int64_t> counts = ctx.attrInts("ngram_counts");
  int64_t ngram = 0;
  std::string key;
  for (size_t k = 0; k < counts.size(); ++k) {
    const int64_t n = int64_t(k) + 1;
    const int64_t end = k + 1 < counts.size() ? counts[k + 1] : int64_t(pool.size());
    for (int64_t p = counts[k]; p < end; p += n, ++ngram) {
      if (n < c.minN || n > c.maxN)
        continue;
      key.clear();
      for (int64_t j = 0; j < n; ++j)
        appendKey(key, pool[size_t(p + j)]);
      if (c.maps[k].at(key) != ngram)
        continue; // a duplicate: the reference's map keeps the first
      grams.push_back({n, ngram, std::vector<int64_t>(pool.begin() + p, pool.begin() + p + n)});
    }
  }
  // The pool is unrolled into the kernel: its code and LLVM's time grow with it (0.9 s for 2000
  // n-grams, 3.4 s for 4000, 20 s for 8000), so larger pools stay in the interpreter.
  ctx.check(int64_t(grams.size()) <= kMaxLoweredNgrams, "the pool has ", grams.size(),
            " n-grams to count; the lowering unrolls at most ", kMaxLoweredNgrams,
            " (--allow-interpreter-fallback runs this node in the interpreter)");
  // Codes: (column, rank among the countable n-grams of that column).
  std::unordered_map<int64_t, int64_t> perColumn;
  std::vector<int64_t> rank(grams.size());
  int64_t R = 1;
  for (size_t g = 0; g < grams.size(); ++g) {
    rank[g] = perColumn[c.indexes[size_t(grams[g].ngram)]]++;
    R = std::max(R, rank[g] + 1);
  }
  for (size_t g = 0; g < grams.size(); ++g)
    grams[g].code = c.indexes[size_t(grams[g].ngram)] * R + rank[g];
  const int64_t Q = W * R;

  // The n-gram lengths with pool entries and at least one position in a row, with their skip
  // counts: the reference tries skips 0..max_skip_count for n >= 2, stops at the first skip
  // whose stride reaches the row length, and an n-gram with stride d fits when (n-1)*d < C.
  struct Group {
    int64_t n, skips;
    te::Tensor codes;
  };
  std::vector<Group> groups;
  for (int64_t n = c.minN; n <= c.maxN; ++n) {
    bool any = false;
    for (const Gram &g : grams)
      any |= g.n == n;
    if (!any || C < n)
      continue;
    int64_t skips = 1;
    if (n >= 2 && C >= 2) {
      const int64_t bySkip = std::min(c.maxSkip, C - 2) + 1; // dist = s + 1 < C (or s == 0)
      const int64_t byFit = (C - 1) / (n - 1);              // (n - 1) * (s + 1) <= C - 1
      skips = std::max<int64_t>(1, std::min(bySkip, byFit));
    }
    groups.push_back({n, skips, te::Tensor()});
  }
  if (groups.empty() || N == 0 || W == 0) {
    ctx.setOutput(0, ctx.compute(lowering::shapeExprs(outShape),
                                 [](const std::vector<Var> &) { return Expr(0.0f); }));
    return;
  }

  const te::Tensor X = ctx.input(0);
  auto item = [&](const Expr &b, const Expr &i) {
    std::vector<Expr> idx;
    if (batched)
      idx.push_back(b);
    idx.push_back(loop::min(i, Expr(C - 1))); // in bounds: the caller masks positions past C
    Expr v = X.access(idx);
    return dt == DType::i64 ? v : loop::cast(DType::i64, v);
  };
  int64_t positions = 0;
  for (Group &gr : groups) {
    const int64_t n = gr.n;
    positions += gr.skips * C;
    gr.codes = lowering::storedCompute(
        ctx, {Expr(N), Expr(gr.skips), Expr(C)},
        [&](const std::vector<Var> &iv) {
          Expr b = iv[0], dist = Expr(iv[1]) + int64_t(1), i = iv[2];
          std::vector<Expr> items;
          for (int64_t j = 0; j < n; ++j)
            items.push_back(item(b, Expr(i) + dist * j));
          // At most one pool n-gram of length n matches (duplicates are dropped): the code is
          // the max of (match ? code : -1), combined as a balanced tree (a chain as deep as the
          // pool would overflow the stack of the recursive IR passes on large pools).
          std::vector<Expr> leaves;
          for (const Gram &g : grams) {
            if (g.n != n)
              continue;
            Expr match = items[0] == g.values[0];
            for (int64_t j = 1; j < n; ++j)
              match = match && (items[size_t(j)] == g.values[size_t(j)]);
            leaves.push_back(loop::select(match, Expr(g.code), Expr(int64_t(-1))));
          }
          Expr code = lowering::balancedTree(0, leaves.size(), [&](size_t k) { return leaves[k]; },
                                   [](size_t, Expr a, Expr b) { return loop::max(a, b); });
          if (n == 1)
            return code;
          return loop::select(Expr(i) + dist * (n - 1) < C, code, Expr(int64_t(-1)));
        },
        "codes_n" + std::to_string(n));
  }

  // counts[b, q]: positions over (s, i) in [0, max skips) x [0, C), each group masked to its
  // own skip count. f32 sums of ones are exact below 2^24 and vectorize; i64 beyond.
  int64_t maxSkips = 1;
  for (const Group &gr : groups)
    maxSkips = std::max(maxSkips, gr.skips);
  const bool f32Counts = positions < (int64_t(1) << 24);
  const DType countType = f32Counts ? DType::f32 : DType::i64;
  te::Tensor cnt = ctx.compute({Expr(N), Expr(Q)}, [&](Var b, Var q) {
    te::IterVar s = te::reduce_axis({Expr(int64_t(0)), Expr(maxSkips)}, "s");
    te::IterVar i = te::reduce_axis({Expr(int64_t(0)), Expr(C)}, "i");
    Expr one = lowering::constant(countType, 1), zero = lowering::constant(countType, 0);
    Expr sum;
    for (const Group &gr : groups) {
      Expr sIdx = gr.skips == maxSkips ? Expr(s.var())
                                       : loop::min(Expr(s.var()), Expr(gr.skips - 1));
      Expr hit = gr.codes.access({Expr(b), sIdx, Expr(i.var())}) == Expr(q);
      if (gr.skips != maxSkips)
        hit = hit && (Expr(s.var()) < gr.skips);
      Expr term = loop::select(hit, one, zero);
      sum = sum.defined() ? sum + term : term;
    }
    return te::ComputeBody(te::sum(sum, {s, i}));
  }, "counts");

  // The weight of each code (IDF, TFIDF): one literal when the countable n-grams share it
  // (bit for bit: -0 and NaN weights stay what they are).
  bool uniform = true;
  for (const Gram &g : grams)
    uniform &= std::bit_cast<uint32_t>(c.weights[size_t(g.ngram)]) ==
               std::bit_cast<uint32_t>(c.weights[size_t(grams[0].ngram)]);
  const float w0 = grams.empty() ? 1.f : c.weights[size_t(grams[0].ngram)];
  // Otherwise a table: a balanced select tree over the sorted codes (a code no n-gram has
  // gets a neighbour's weight, never used: its count is 0).
  te::Tensor wt;
  if (c.mode != TfMode::TF && !uniform) {
    std::vector<const Gram *> byCode;
    for (const Gram &g : grams)
      byCode.push_back(&g);
    std::sort(byCode.begin(), byCode.end(),
              [](const Gram *a, const Gram *b) { return a->code < b->code; });
    wt = lowering::storedCompute(
        ctx, {Expr(Q)},
        [&](const std::vector<Var> &iv) {
          Expr q = iv[0];
          return lowering::balancedTree(
              0, byCode.size(),
              [&](size_t k) { return Expr(c.weights[size_t(byCode[k]->ngram)]); },
              [&](size_t mid, Expr lo, Expr hi) {
                return loop::select(q < byCode[mid]->code, lo, hi);
              });
        },
        "weights");
  }

  ctx.setOutput(0, ctx.compute(lowering::shapeExprs(outShape), [&](const std::vector<Var> &iv) {
    Expr b = batched ? Expr(iv[0]) : Expr(int64_t(0));
    Expr j = iv.back();
    Expr out;
    for (int64_t r = 0; r < R; ++r) {
      Expr q = R == 1 ? j : j * R + r;
      Expr k = cnt.access({b, q});
      if (!f32Counts)
        k = loop::cast(DType::f32, k);
      Expr v = k;
      if (c.mode != TfMode::TF) {
        Expr w = wt.defined() ? wt.access({q}) : Expr(w0);
        v = loop::select(k > 0.0f, c.mode == TfMode::IDF ? w : k * w, Expr(0.0f));
      }
      out = out.defined() ? out + v : v;
    }
    return out;
  }));
}

} // namespace

void registerTextOps(OpRegistry &r) {
  r.add(OpDef{"StringNormalizer", "", 10, 17, 1, 1, 1, 1, "string",
              "case mapping is ASCII (std::tolower/toupper on bytes, \"C\" locale) whatever the "
              "locale attribute; non-ASCII UTF-8 characters are left unchanged",
              inferStringNormalizer, kernelStringNormalizer});
  r.add(OpDef{"TfIdfVectorizer", "", 9, 17, 1, 1, 1, 1, "input string/int32/int64, output float",
              "TF, IDF, TFIDF; n-grams with skips 0..max_skip_count (1-grams counted once)",
              inferTfIdf, kernelTfIdf});
  r.setLower("TfIdfVectorizer", lowerTfIdf);
}

} // namespace tessel
