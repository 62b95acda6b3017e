#include "beam_search.h"

#include <algorithm>
#include <limits>
#include <string>
#include <utility>

#include "boundary.h"
#include "cpu_features.h"
#include "subset_scoring.h"

extern "C" {
// BLAS (OpenBLAS, linked with FAISS): C = alpha op(A) op(B) + beta C, column-major.
int sgemm_(const char* transa, const char* transb, const int* m, const int* n, const int* k, const float* alpha,
           const float* a, const int* lda, const float* b, const int* ldb, const float* beta, float* c, const int* ldc);
}

namespace sidx {
namespace {

// out (rows_x x rows_y, row-major) = x (rows_x x d) y^T (y: rows_y x d), both row-major: FAISS's sgemm_ idiom.
void RowDots(const float* x, size_t rows_x, const float* y, size_t rows_y, size_t d, float* out) {
  const int m = static_cast<int>(rows_y), n = static_cast<int>(rows_x), k = static_cast<int>(d);
  const float one = 1.0f, zero = 0.0f;
  sgemm_("T", "N", &m, &n, &k, &one, y, &k, x, &k, &zero, out, &m);
}

// out[c] = (base + zc[c]) + (a[c] + b[c]) * two_w (b may be null): one parent's children. Cloned for AVX2, which the
// baseline x86-64 build cannot assume; the loop is most of a beam's time.
__attribute__((target_clones("avx2", "default")))
void ChildScores(float* out, float base, const float* zc, const float* a, const float* b, float two_w, size_t k) {
  if (b == nullptr) {
    for (size_t c = 0; c < k; ++c) out[c] = (base + zc[c]) + a[c] * two_w;
  } else {
    for (size_t c = 0; c < k; ++c) out[c] = (base + zc[c]) + (a[c] + b[c]) * two_w;
  }
}

// The first i in [from, n) with s[i] < t (an ordered compare: NaN never is), or n. Once the selection holds `keep`
// children nearly all others lose to its threshold, so it mostly scans; this skips 8 losers per compare.
size_t FirstBelowScalar(const float* s, size_t from, size_t n, float t) {
  for (size_t i = from; i < n; ++i)
    if (s[i] < t) return i;
  return n;
}

#ifdef SIDX_HAVE_AVX2
__attribute__((target("avx2"))) size_t FirstBelowAvx2(const float* s, size_t from, size_t n, float t) {
  const __m256 tv = _mm256_set1_ps(t);
  size_t i = from;
  for (; i + 8 <= n; i += 8) {
    const int mask = _mm256_movemask_ps(_mm256_cmp_ps(_mm256_loadu_ps(s + i), tv, _CMP_LT_OQ));
    if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(static_cast<unsigned>(mask)));
  }
  return FirstBelowScalar(s, i, n, t);
}

const bool kBeamAvx2 = CpuHasAvx2Fma();
#endif

size_t FirstBelow(const float* s, size_t from, size_t n, float t) {
#ifdef SIDX_HAVE_AVX2
  if (kBeamAvx2) return FirstBelowAvx2(s, from, n, t);
#endif
  return FirstBelowScalar(s, from, n, t);
}

__attribute__((target_clones("avx2", "default")))
void AddInto(float* acc, const float* part, size_t k) {
  for (size_t c = 0; c < k; ++c) acc[c] += part[c];
}

__attribute__((target_clones("avx2", "default")))
void AddScaled(float* acc, const float* part, float scale, size_t k) {
  for (size_t c = 0; c < k; ++c) acc[c] += scale * part[c];
}

}  // namespace

Napi::Function BeamSearch::Define(Napi::Env env) {
  return DefineClass(env, "BeamSearch",
                     {
                         InstanceAccessor<&BeamSearch::Levels>("levels"),
                         InstanceAccessor<&BeamSearch::Dim>("dim"),
                         InstanceMethod<&BeamSearch::Search>("search"),
                     });
}

BeamSearch::BeamSearch(const Napi::CallbackInfo& info) : Napi::ObjectWrap<BeamSearch>(info) {
  Guard(info.Env(), [&] {
    if (!info[0].IsArray()) throw CodedError(kErrInvalidInput, "codebooks must be an array of Float32Array");
    Napi::Array books = info[0].As<Napi::Array>();
    dim_ = static_cast<size_t>(GetPositiveInt(info[1], "dim"));
    const double lut_max = info[2].IsNumber() ? info[2].As<Napi::Number>().DoubleValue() : -1;
    if (!(lut_max >= 0)) throw CodedError(kErrInvalidInput, "lutMaxBytes must be a non-negative number");
    if (books.Length() == 0) throw CodedError(kErrInvalidInput, "at least one codebook (level) is required");
    for (uint32_t l = 0; l < books.Length(); ++l) {
      FloatView book = GetFloat32Array(books.Get(l), "codebooks[l]");
      if (book.length == 0 || book.length % dim_ != 0) {
        throw CodedError(kErrDimension, "codebook " + std::to_string(l) + " has " + std::to_string(book.length) +
                                            " floats, not a whole number of " + std::to_string(dim_) + "-d rows");
      }
      const size_t k = book.length / dim_;
      if (k > (size_t{1} << 24)) throw CodedError(kErrInvalidInput, "codebooks hold at most 2^24 codes");
      sizes_.push_back(k);
      codebooks_.emplace_back(book.data, book.data + book.length);
      std::vector<float> norms(k);
      for (size_t c = 0; c < k; ++c) norms[c] = InnerProduct(book.data + c * dim_, book.data + c * dim_, dim_);
      norms_.push_back(std::move(norms));
    }
    double lut_bytes = 0;
    for (size_t l = 1; l < sizes_.size(); ++l)
      for (size_t j = 0; j < l; ++j) lut_bytes += 4.0 * static_cast<double>(sizes_[j]) * static_cast<double>(sizes_[l]);
    use_lut_ = lut_bytes <= lut_max;
    if (info.Length() > 3 && !info[3].IsUndefined()) {
      if (!info[3].IsArray() || info[3].As<Napi::Array>().Length() != sizes_.size()) {
        throw CodedError(kErrInvalidInput, "crossNorms must be an array of one Float32Array per level");
      }
      Napi::Array norms = info[3].As<Napi::Array>();
      for (uint32_t l = 0; l < norms.Length(); ++l) {
        FloatView v = GetFloat32Array(norms.Get(l), "crossNorms[l]");
        if (v.length != sizes_[l]) throw CodedError(kErrDimension, "crossNorms[" + std::to_string(l) + "] must have one float per code");
        cross_norms_.emplace_back(v.data, v.data + v.length);
      }
    }
    tables_.resize(sizes_.size());
    if (use_lut_) {
      for (size_t l = 1; l < sizes_.size(); ++l) {
        for (size_t j = 0; j < l; ++j) {
          std::vector<float> table(sizes_[j] * sizes_[l]);
          RowDots(codebooks_[j].data(), sizes_[j], codebooks_[l].data(), sizes_[l], dim_, table.data());
          tables_[l].push_back(std::move(table));
        }
      }
    }
    return info.Env().Undefined();
  });
}

Napi::Value BeamSearch::Levels(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(sizes_.size()));
}

Napi::Value BeamSearch::Dim(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(dim_));
}

void BeamSearch::SelectBest(size_t count, size_t keep) {
  // Buffered top-`keep`: children below the threshold (the keep-th best so far) are appended; when the buffer holds
  // 2 keep, nth_element cuts it back to the best keep and tightens the threshold. (score, child) pairs order as the
  // graph's TopK: a later child ties with the threshold only by a higher index, which loses, so a strict compare
  // decides. A NaN score (a non-finite latent) ranks last, so the order stays a strict weak one.
  std::vector<ScoredChild>& best = best_;
  best.clear();
  const float* s = children_.data();
  const auto cut = [&] {
    std::nth_element(best.begin(), best.begin() + static_cast<std::ptrdiff_t>(keep - 1), best.end());
    best.resize(keep);
    return best[keep - 1].first;
  };
  // The threshold starts as the keep-th best of the first 8 keep children (the best parent's, which come first): a
  // tight one, so that few later children pass it and few cuts follow.
  const size_t first = std::min(count, 8 * keep);
  float threshold = -std::numeric_limits<float>::infinity();
  for (uint32_t i = 0; i < first; ++i) {
    best.emplace_back(s[i] == s[i] ? s[i] : std::numeric_limits<float>::infinity(), i);
    threshold = std::max(threshold, best.back().first);
  }
  if (best.size() > keep) threshold = cut();
  for (size_t i = FirstBelow(s, first, count, threshold); i < count; i = FirstBelow(s, i + 1, count, threshold)) {
    best.emplace_back(s[i], static_cast<uint32_t>(i));
    if (best.size() == 2 * keep) threshold = cut();
  }
  if (best.size() > keep) cut();
  std::sort(best.begin(), best.end());
  order_.resize(keep);
  for (size_t b = 0; b < keep; ++b) order_[b] = best[b].second;
}

void BeamSearch::LevelDots(const float* z, size_t rows, float w) {
  // Codeword-major: each codeword is read from memory once per block and scored against every row of it, while it
  // is in L1 (a 3 x 256 x 512 codebook is 1.5 MB, more than L2). Each dot product is the same call as for a lone row,
  // so a row's scores do not depend on the rows it is batched with.
  zc_.resize(sizes_.size());
  for (size_t l = 0; l < sizes_.size(); ++l) {
    const size_t k = sizes_[l];
    const float* book = codebooks_[l].data();
    const float* norms = norms_[l].data();
    zc_[l].resize(rows * k);
    float* out = zc_[l].data();
    for (size_t c = 0; c < k; ++c) {
      const float* cw = book + c * dim_;
      for (size_t r = 0; r < rows; ++r) out[r * k + c] = -2.0f * InnerProduct(z + r * dim_, cw, dim_) + w * norms[c];
    }
  }
}

void BeamSearch::CrossDots(size_t first, size_t rows, float w, const int32_t* own, const std::vector<FloatView>& cross) {
  const size_t levels = sizes_.size();
  zc_.resize(levels);
  for (size_t l = 0; l < levels; ++l) {
    const size_t k = sizes_[l];
    const float* norms = cross_norms_[l].data();
    zc_[l].resize(rows * k);
    for (size_t r = 0; r < rows; ++r) {
      float* out = zc_[l].data() + r * k;
      const float* g = cross[l].data + (first + r) * k;
      for (size_t c = 0; c < k; ++c) out[c] = g[c] + (w - 1.0f) * norms[c];
      for (size_t j = 0; j < l; ++j) {
        const int32_t a = own[(first + r) * levels + j];
        if (a < 0 || static_cast<size_t>(a) >= sizes_[j]) throw CodedError(kErrInvalidInput, "own codes outside the codebooks");
        AddScaled(out, tables_[l][j].data() + static_cast<size_t>(a) * k, -2.0f, k);
      }
    }
  }
}

void BeamSearch::SearchRow(const float* z, size_t width, float w, size_t row, size_t row_in_block, size_t n, int32_t* codes, float* scores) {
  const size_t levels = sizes_.size();
  const float two_w = 2.0f * w;
  size_t parents = 1;
  size_t codes_at = 0, scores_at = 0;  // where level l's block starts in the outputs
  for (size_t l = 0; l < levels; ++l) {
    const size_t k = sizes_[l];
    const float* book = codebooks_[l].data();
    const float* zc = zc_[l].data() + row_in_block * k;
    const size_t count = parents * k;
    children_.resize(count);
    if (l == 0) {
      const float zz = InnerProduct(z, z, dim_);
      for (size_t c = 0; c < k; ++c) children_[c] = zc[c] + zz;
    } else if (use_lut_) {
      for (size_t p = 0; p < parents; ++p) {
        const int32_t* codes_p = prefix_.data() + p * l;
        const float* first = tables_[l][0].data() + static_cast<size_t>(codes_p[0]) * k;
        const float* second = l > 1 ? tables_[l][1].data() + static_cast<size_t>(codes_p[1]) * k : nullptr;
        if (l > 2) {  // more than two tables: sum them first
          pair_.assign(first, first + k);
          for (size_t j = 1; j < l; ++j) AddInto(pair_.data(), tables_[l][j].data() + static_cast<size_t>(codes_p[j]) * k, k);
          first = pair_.data();
          second = nullptr;
        }
        ChildScores(children_.data() + p * k, beam_scores_[p], zc, first, second, two_w, k);
      }
    } else {
      pair_.resize(count);
      RowDots(sums_.data(), parents, book, k, dim_, pair_.data());
      for (size_t p = 0; p < parents; ++p) {
        ChildScores(children_.data() + p * k, beam_scores_[p], zc, pair_.data() + p * k, nullptr, two_w, k);
      }
    }
    const size_t keep = std::min(width, count);
    SelectBest(count, keep);

    next_prefix_.resize(keep * (l + 1));
    const bool track_sums = !use_lut_ && l + 1 < levels;
    if (track_sums) next_sums_.resize(keep * dim_);
    kept_.resize(keep);
    for (size_t b = 0; b < keep; ++b) {
      const uint32_t child = order_[b];
      const size_t parent = child / k;
      const int32_t code = static_cast<int32_t>(child % k);
      std::copy(prefix_.begin() + parent * l, prefix_.begin() + parent * l + l, next_prefix_.begin() + b * (l + 1));
      next_prefix_[b * (l + 1) + l] = code;
      kept_[b] = children_[child];
      if (track_sums) {
        float* into = next_sums_.data() + b * dim_;
        const float* cw = book + static_cast<size_t>(code) * dim_;
        if (l == 0) {
          std::copy(cw, cw + dim_, into);
        } else {
          const float* from = sums_.data() + parent * dim_;
          for (size_t d = 0; d < dim_; ++d) into[d] = from[d] + cw[d];
        }
      }
    }
    prefix_.swap(next_prefix_);
    if (track_sums) sums_.swap(next_sums_);
    beam_scores_.swap(kept_);
    std::copy(prefix_.begin(), prefix_.end(), codes + codes_at + row * keep * (l + 1));
    std::copy(beam_scores_.begin(), beam_scores_.end(), scores + scores_at + row * keep);
    codes_at += n * keep * (l + 1);
    scores_at += n * keep;
    parents = keep;
  }
}

Napi::Value BeamSearch::Search(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    FloatView z = GetFloat32Array(info[0], "z");
    const size_t n = static_cast<size_t>(GetPositiveInt(info[1], "n"));
    const size_t width = static_cast<size_t>(GetPositiveInt(info[2], "width"));
    if (!info[3].IsNumber()) throw CodedError(kErrInvalidInput, "normWeight must be a number");
    const float w = info[3].As<Napi::Number>().FloatValue();
    if (!info[4].IsTypedArray() || info[4].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
      throw CodedError(kErrInvalidInput, "codes must be an Int32Array");
    }
    Napi::Int32Array codes = info[4].As<Napi::Int32Array>();
    FloatView scores_view = GetFloat32Array(info[5], "scores");
    if (z.length != n * dim_) {
      throw CodedError(kErrDimension, "z has " + std::to_string(z.length) + " floats, expected " + std::to_string(n) +
                                          " x " + std::to_string(dim_));
    }
    size_t want_codes = 0, want_scores = 0, parents = 1;
    for (size_t l = 0; l < sizes_.size(); ++l) {
      parents = std::min(width, parents * sizes_[l]);
      want_codes += n * parents * (l + 1);
      want_scores += n * parents;
    }
    if (codes.ElementLength() != want_codes || scores_view.length != want_scores) {
      throw CodedError(kErrInvalidInput, "codes / scores have " + std::to_string(codes.ElementLength()) + " / " +
                                             std::to_string(scores_view.length) + " elements, expected " +
                                             std::to_string(want_codes) + " / " + std::to_string(want_scores));
    }
    float* scores = const_cast<float*>(scores_view.data);
    // With the encoder's own codes and its quantizer's Gemm outputs (beam-query-graph.ts), no codebook is read here.
    const int32_t* own = nullptr;
    std::vector<FloatView> cross;
    if (info.Length() > 7 && !info[6].IsUndefined() && use_lut_ && !cross_norms_.empty()) {
      if (!info[6].IsTypedArray() || info[6].As<Napi::TypedArray>().TypedArrayType() != napi_int32_array ||
          info[6].As<Napi::Int32Array>().ElementLength() != n * sizes_.size()) {
        throw CodedError(kErrInvalidInput, "own must be an Int32Array of n x levels codes");
      }
      own = info[6].As<Napi::Int32Array>().Data();
      if (!info[7].IsArray() || info[7].As<Napi::Array>().Length() != sizes_.size()) throw CodedError(kErrInvalidInput, "cross must hold one Float32Array per level");
      for (size_t l = 0; l < sizes_.size(); ++l) {
        cross.push_back(GetFloat32Array(info[7].As<Napi::Array>().Get(static_cast<uint32_t>(l)), "cross[l]"));
        if (cross.back().length != n * sizes_[l]) throw CodedError(kErrDimension, "cross[" + std::to_string(l) + "] must be n x K_l floats");
      }
    }
    for (size_t first = 0; first < n; first += kDotBlockRows) {
      const size_t rows = std::min(kDotBlockRows, n - first);
      if (own != nullptr) {
        CrossDots(first, rows, w, own, cross);
      } else {
        LevelDots(z.data + first * dim_, rows, w);
      }
      for (size_t r = 0; r < rows; ++r) {
        prefix_.clear();
        SearchRow(z.data + (first + r) * dim_, width, w, first + r, r, n, codes.Data(), scores);
      }
    }
    return info.Env().Undefined();
  });
}

}  // namespace sidx
