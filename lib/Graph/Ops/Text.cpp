//===- Text.cpp - Text ops ---------------------------------------===//
//
// StringNormalizer (opset 10) and TfIdfVectorizer (opset 9).
//
//===----------------------------------------------------------------------===//
#include "OpUtils.h"

#include <algorithm>
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

} // namespace

void registerTextOps(OpRegistry &r) {
  r.add(OpDef{"StringNormalizer", "", 10, 17, 1, 1, 1, 1, "string",
              "case mapping is ASCII (std::tolower/toupper on bytes, \"C\" locale) whatever the "
              "locale attribute; non-ASCII UTF-8 characters are left unchanged",
              inferStringNormalizer, kernelStringNormalizer});
  r.add(OpDef{"TfIdfVectorizer", "", 9, 17, 1, 1, 1, 1, "input string/int32/int64, output float",
              "TF, IDF, TFIDF; n-grams with skips 0..max_skip_count (1-grams counted once)",
              inferTfIdf, kernelTfIdf});
}

} // namespace tessel
