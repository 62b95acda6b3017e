#include "sq8_codes.h"

#include <algorithm>
#include <cmath>
#include <string>

#include "boundary.h"
#include "slot_codes.h"
#include "slot_map.h"
#include "codes_rerank.h"

#include "cpu_features.h"

namespace sidx {
namespace {

// One code: round((x - vmin) / step), half to even, clamped to 0..255 (NaN -> 255 is never stored: inputs are finite).
inline uint8_t EncodeValue(float x, float vmin, float inv_step) {
  const float q = std::nearbyint((x - vmin) * inv_step);
  return static_cast<uint8_t>(q < 0.0f ? 0.0f : (q > 255.0f ? 255.0f : q));
}

// Decoded-code scores, one row: ip = sum w[i] * c[i] (w = query * step, as int16 with one scale; the caller adds
// sum query * vmin), l2 = sum (a[i] - s[i] * c[i])^2 (a = query - vmin, s = step).
int32_t WeightedSumI16Portable(const int16_t* w, const uint8_t* c, size_t d) {
  int32_t sum = 0;
#pragma omp simd reduction(+ : sum)
  for (size_t i = 0; i < d; ++i) sum += static_cast<int32_t>(w[i]) * static_cast<int32_t>(c[i]);
  return sum;
}

float ResidualPortable(const float* a, const float* s, const uint8_t* c, size_t d) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (size_t i = 0; i < d; ++i) {
    float diff = a[i] - s[i] * static_cast<float>(c[i]);
    sum += diff * diff;
  }
  return sum;
}

// Whether a row holds a code 0 or 255: (c + 1) mod 256 is 1 or 0 exactly for those.
bool HoldsClampedPortable(const uint8_t* c, size_t d) {
  uint8_t low = 255;
#pragma omp simd reduction(min : low)
  for (size_t i = 0; i < d; ++i) low = std::min(low, static_cast<uint8_t>(c[i] + 1));
  return low <= 1;
}

#ifdef SIDX_HAVE_AVX2
// 32 codes per step: four 8-lane float conversions (vpmovzxbd + vcvtdq2ps) feeding four FMA accumulators.
__attribute__((target("avx2,fma"))) inline void Widen32(const uint8_t* c, __m256* f) {
  __m128i lo = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c));
  __m128i hi = _mm_loadu_si128(reinterpret_cast<const __m128i*>(c + 16));
  f[0] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(lo));
  f[1] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(lo, 8)));
  f[2] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(hi));
  f[3] = _mm256_cvtepi32_ps(_mm256_cvtepu8_epi32(_mm_srli_si128(hi, 8)));
}

__attribute__((target("avx2,fma"))) inline float Lanes(const __m256* acc) {
  __m256 sum = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
  alignas(32) float lanes[8];
  _mm256_store_ps(lanes, sum);
  return ((lanes[0] + lanes[1]) + (lanes[2] + lanes[3])) + ((lanes[4] + lanes[5]) + (lanes[6] + lanes[7]));
}


// 32 codes per step: widened to int16 (vpmovzxbw) and multiplied with the int16 weights, pairs summed into int32
// (vpmaddwd): 16 multiply-adds per instruction against 8 for the float kernel, and no int-to-float conversion.
// No overflow: |w| <= 32767 and c <= 255, so each int32 lane sums d / 8 products of at most 2^23 (d <= 2^11 keeps it
// under 2^31; longer rows go to the portable loop's int32 sum in blocks, see WeightedSumI16).
__attribute__((target("avx2,fma"))) int32_t WeightedSumI16Avx2(const int16_t* w, const uint8_t* c, size_t d) {
  __m256i acc0 = _mm256_setzero_si256(), acc1 = acc0;
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    __m256i lo = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + i)));
    __m256i hi = _mm256_cvtepu8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i*>(c + i + 16)));
    acc0 = _mm256_add_epi32(acc0, _mm256_madd_epi16(lo, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i))));
    acc1 = _mm256_add_epi32(acc1, _mm256_madd_epi16(hi, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i + 16))));
  }
  __m256i acc = _mm256_add_epi32(acc0, acc1);
  __m128i half = _mm_add_epi32(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
  half = _mm_add_epi32(half, _mm_shuffle_epi32(half, _MM_SHUFFLE(1, 0, 3, 2)));
  half = _mm_add_epi32(half, _mm_shuffle_epi32(half, _MM_SHUFFLE(2, 3, 0, 1)));
  int32_t sum = _mm_cvtsi128_si32(half);
  for (; i < d; ++i) sum += static_cast<int32_t>(w[i]) * static_cast<int32_t>(c[i]);
  return sum;
}

__attribute__((target("avx2,fma"))) float ResidualAvx2(const float* a, const float* s, const uint8_t* c, size_t d) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  __m256 f[4];
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    Widen32(c + i, f);
    for (int j = 0; j < 4; ++j) {
      __m256 diff = _mm256_fnmadd_ps(_mm256_loadu_ps(s + i + 8 * j), f[j], _mm256_loadu_ps(a + i + 8 * j));
      acc[j] = _mm256_fmadd_ps(diff, diff, acc[j]);
    }
  }
  float sum = Lanes(acc);
  for (; i < d; ++i) {
    float diff = a[i] - s[i] * static_cast<float>(c[i]);
    sum += diff * diff;
  }
  return sum;
}

// 32 values per step, as the portable loop: round half to even ((x - vmin) * inv_step), clamped to 0..255, packed
// to bytes (the two packs interleave 128-bit lanes; the permute puts the four groups of 8 back in order).
__attribute__((target("avx2,fma"))) void EncodeRowAvx2(const float* x, const float* vmin, const float* inv_step, uint8_t* c, size_t d) {
  const __m256 zero = _mm256_setzero_ps();
  const __m256 top = _mm256_set1_ps(255.0f);
  const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    __m256i q[4];
    for (int j = 0; j < 4; ++j) {
      const size_t at = i + 8 * j;
      __m256 v = _mm256_mul_ps(_mm256_sub_ps(_mm256_loadu_ps(x + at), _mm256_loadu_ps(vmin + at)), _mm256_loadu_ps(inv_step + at));
      v = _mm256_round_ps(v, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
      q[j] = _mm256_cvtps_epi32(_mm256_min_ps(_mm256_max_ps(v, zero), top));
    }
    __m256i bytes = _mm256_packus_epi16(_mm256_packus_epi32(q[0], q[1]), _mm256_packus_epi32(q[2], q[3]));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(c + i), _mm256_permutevar8x32_epi32(bytes, order));
  }
  for (; i < d; ++i) c[i] = EncodeValue(x[i], vmin[i], inv_step[i]);
}

// HoldsClampedPortable 32 codes per step (one add and one unsigned min): a rerank checks every candidate's row.
__attribute__((target("avx2,fma"))) bool HoldsClampedAvx2(const uint8_t* c, size_t d) {
  const __m256i one = _mm256_set1_epi8(1);
  __m256i low = _mm256_set1_epi8(-1);
  size_t i = 0;
  for (; i + 32 <= d; i += 32) low = _mm256_min_epu8(low, _mm256_add_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(c + i)), one));
  if (_mm256_movemask_epi8(_mm256_cmpeq_epi8(_mm256_min_epu8(low, one), low)) != 0) return true;
  return i < d && HoldsClampedPortable(c + i, d - i);
}

const bool kSq8Avx2 = CpuHasAvx2Fma();
#endif


// Rows longer than this are summed in blocks, each block's int32 sum safe from overflow (see the AVX2 kernel).
constexpr size_t kI16Block = 2048;

// sum over i of w[i] * c[i] in int64 (blocks of kI16Block in int32).
int64_t WeightedSumI16(const int16_t* w, const uint8_t* c, size_t d) {
  int64_t total = 0;
  for (size_t at = 0; at < d; at += kI16Block) {
    const size_t n = std::min(kI16Block, d - at);
#ifdef SIDX_HAVE_AVX2
    if (kSq8Avx2) {
      total += WeightedSumI16Avx2(w + at, c + at, n);
      continue;
    }
#endif
    total += WeightedSumI16Portable(w + at, c + at, n);
  }
  return total;
}

bool HoldsClamped(const uint8_t* c, size_t d) {
#ifdef SIDX_HAVE_AVX2
  if (kSq8Avx2) return HoldsClampedAvx2(c, d);
#endif
  return HoldsClampedPortable(c, d);
}

float Residual(const float* a, const float* s, const uint8_t* c, size_t d) {
#ifdef SIDX_HAVE_AVX2
  if (kSq8Avx2) return ResidualAvx2(a, s, c, d);
#endif
  return ResidualPortable(a, s, c, d);
}

}  // namespace

Napi::Function Sq8Codes::Define(Napi::Env env) {
  return DefineFlagged(env, kName, {InstanceMethod("scoreAsync", &Sq8Codes::ScoreAsync), InstanceMethod("rankKeysAsync", &Sq8Codes::RankKeysAsync),
                                     InstanceMethod("rankKeys", &Sq8Codes::RankKeys)});
}

Sq8Codes::Sq8Codes(const Napi::CallbackInfo& info) : FlaggedCodes<Sq8Codes>(info) {
  Guard(info.Env(), [&] {
    dim_ = static_cast<size_t>(GetPositiveInt(info[0], "dim"));
    inner_product_ = ParseMetric(info[1]);
    blocks_ = SlotCodeBlocks(dim_, HugePagesArg(info[4]));
    FloatView vmin = GetFloat32Array(info[2], "vmin");
    FloatView step = GetFloat32Array(info[3], "step");
    if (vmin.length != dim_ || step.length != dim_) throw CodedError(kErrDimension, "vmin and step must have dim floats each");
    vmin_.assign(vmin.data, vmin.data + dim_);
    step_.assign(step.data, step.data + dim_);
    inv_step_.resize(dim_);
    for (size_t i = 0; i < dim_; ++i) {
      if (!std::isfinite(vmin_[i]) || !std::isfinite(step_[i]) || step_[i] < 0) {
        throw CodedError(kErrInvalidInput, "vmin and step must be finite, step >= 0");
      }
      inv_step_[i] = step_[i] > 0 ? 1.0f / step_[i] : 0.0f;
    }
  });
}

Napi::Value Sq8Codes::Encode(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckOpen();
    FloatView vectors = GetFloat32Array(info[0], "vectors");
    size_t rows = RowCount(vectors, dim_, "vectors");
    Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), rows * dim_);
    uint8_t* codes = out.Data();
    for (size_t r = 0; r < rows; ++r) {
      const float* x = vectors.data + r * dim_;
      uint8_t* c = codes + r * dim_;
#ifdef SIDX_HAVE_AVX2
      if (kSq8Avx2) {
        EncodeRowAvx2(x, vmin_.data(), inv_step_.data(), c, dim_);
        continue;
      }
#endif
      for (size_t i = 0; i < dim_; ++i) c[i] = EncodeValue(x[i], vmin_[i], inv_step_[i]);
    }
    return out;
  });
}

Sq8Codes::QueryTables Sq8Codes::Tables(const float* query) const {
  // Per-query tables: ip folds the step into the query (then quantises it to int16 with one scale: the code scores
  // only choose what is re-scored exactly, and the int16 rounding moves a score by about 1e-5 of its range), l2
  // shifts the query by vmin.
  QueryTables t;
  t.first.resize(dim_);
  t.weights.resize(inner_product_ ? dim_ : 0);
  for (size_t i = 0; i < dim_; ++i) {
    if (inner_product_) {
      t.first[i] = query[i] * step_[i];
      t.base += query[i] * vmin_[i];
      t.scale = std::max(t.scale, std::fabs(t.first[i]));
    } else {
      t.first[i] = query[i] - vmin_[i];
    }
  }
  if (inner_product_) {
    t.scale /= 32767.0f;
    const float inverse = t.scale > 0.0f ? 1.0f / t.scale : 0.0f;
    for (size_t i = 0; i < dim_; ++i) t.weights[i] = static_cast<int16_t>(std::lrint(t.first[i] * inverse));
  }
  return t;
}

void Sq8Codes::ScoreSlots(const QueryTables& t, const int32_t* slots, size_t n, float* out, std::vector<int32_t>* clamped) const {
  ScoreFlagged(clamped, [&](std::vector<int32_t>* look) { ScoreRowsOnce(t, slots, n, out, look); });
}

void Sq8Codes::ScoreRowsOnce(const QueryTables& t, const int32_t* slots, size_t n, float* out, std::vector<int32_t>* clamped) const {
  // The clamped check reads the row just scored (in L1): a second pass over the rows would miss the caches again.
  ScoreCodeRows(slots, n, out, [&](const uint8_t* row, size_t r) {
    const float score = inner_product_ ? t.base + t.scale * static_cast<float>(WeightedSumI16(t.weights.data(), row, dim_))
                                       : Residual(t.first.data(), step_.data(), row, dim_);
    if (clamped != nullptr && HoldsClamped(row, dim_)) clamped->push_back(static_cast<int32_t>(r));
    return score;
  });
}

bool Sq8Codes::RowFlagged(const uint8_t* row) const {
  return HoldsClamped(row, dim_);
}

void Sq8Codes::Neutralise(int32_t slot) {
  thread_local std::vector<uint8_t> neutral;
  neutral.assign(dim_, 128);
  blocks_.Put(&slot, 1, neutral.data());
}

Sq8Codes::ScoreCall Sq8Codes::ScoreArgs(const Napi::CallbackInfo& info) const {
  CheckOpen();
  FloatView query = GetFloat32Array(info[0], "query");
  if (query.length != dim_) throw CodedError(kErrDimension, "query must have dim floats");
  return {query, GetInt32Array(info[1], "slots")};
}

Napi::Value Sq8Codes::Score(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    ScoreCall call = ScoreArgs(info);
    Napi::Float32Array out = Napi::Float32Array::New(info.Env(), call.slots.length);
    ScoreSlots(Tables(call.query.data), call.slots.data, call.slots.length, out.Data());
    return out;
  });
}

// scoreAsync(query, slots[, rows, rescore[, head]]) and rankKeysAsync(query, keys, dense, denseKeys, coverRows, rows,
// rescore, head): the arguments checked here, the pool task in codes_rerank.cc.
Napi::Value Sq8Codes::ScoreAsync(const Napi::CallbackInfo& info) {
  return GuardAsync(info.Env(), [&]() -> Napi::Value {
    ScoreCall call = ScoreArgs(info);
    RerankCandidates candidates;
    candidates.slots = call.slots;
    if (info.Length() <= 2 || info[2].IsUndefined()) return StartRerank(info.Env(), this, {info.This(), info[1]}, call.query, candidates, nullptr);
    RerankRescore rescore = RescoreArgs(info, 2, dim_, inner_product_);
    return StartRerank(info.Env(), this, {info.This(), info[1], rescore.map_object}, call.query, candidates, &rescore);
  });
}

Napi::Value Sq8Codes::RankKeysAsync(const Napi::CallbackInfo& info) {
  return GuardAsync(info.Env(), [&]() -> Napi::Value {
    CheckOpen();
    return RankKeysAsyncOf(this, info);
  });
}

Napi::Value Sq8Codes::RankKeys(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckOpen();
    return RankKeysOf(this, info);
  });
}

}  // namespace sidx
