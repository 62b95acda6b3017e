#include "sq8_codes.h"

#include <cmath>
#include <limits>
#include <string>

#include "boundary.h"
#include "slot_codes.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define SIDX_HAVE_AVX2_SQ8 1
#endif

namespace sidx {
namespace {

constexpr size_t kPrefetchRows = 4;

// Decoded-code scores, one row: ip = sum w[i] * c[i] (w = query * step; the caller adds sum query * vmin),
// l2 = sum (a[i] - s[i] * c[i])^2 (a = query - vmin, s = step).
float WeightedSumPortable(const float* w, const uint8_t* c, size_t d) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (size_t i = 0; i < d; ++i) sum += w[i] * static_cast<float>(c[i]);
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

#ifdef SIDX_HAVE_AVX2_SQ8
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

__attribute__((target("avx2,fma"))) float WeightedSumAvx2(const float* w, const uint8_t* c, size_t d) {
  __m256 acc[4] = {_mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps(), _mm256_setzero_ps()};
  __m256 f[4];
  size_t i = 0;
  for (; i + 32 <= d; i += 32) {
    Widen32(c + i, f);
    for (int j = 0; j < 4; ++j) acc[j] = _mm256_fmadd_ps(_mm256_loadu_ps(w + i + 8 * j), f[j], acc[j]);
  }
  float sum = Lanes(acc);
  for (; i < d; ++i) sum += w[i] * static_cast<float>(c[i]);
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

bool Sq8HasAvx2Fma() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
}
const bool kSq8Avx2 = Sq8HasAvx2Fma();
#endif

float WeightedSum(const float* w, const uint8_t* c, size_t d) {
#ifdef SIDX_HAVE_AVX2_SQ8
  if (kSq8Avx2) return WeightedSumAvx2(w, c, d);
#endif
  return WeightedSumPortable(w, c, d);
}

float Residual(const float* a, const float* s, const uint8_t* c, size_t d) {
#ifdef SIDX_HAVE_AVX2_SQ8
  if (kSq8Avx2) return ResidualAvx2(a, s, c, d);
#endif
  return ResidualPortable(a, s, c, d);
}

}  // namespace

Napi::Function Sq8Codes::Define(Napi::Env env) {
  return DefineCodes(env, kName);
}

Sq8Codes::Sq8Codes(const Napi::CallbackInfo& info) : CodesWrap<Sq8Codes>(info) {
  Guard(info.Env(), [&] {
    dim_ = static_cast<size_t>(GetPositiveInt(info[0], "dim"));
    inner_product_ = ParseMetric(info[1]);
    blocks_ = SlotCodeBlocks(dim_);
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
      for (size_t i = 0; i < dim_; ++i) {
        float q = std::nearbyint((x[i] - vmin_[i]) * inv_step_[i]);
        c[i] = static_cast<uint8_t>(q < 0.0f ? 0.0f : (q > 255.0f ? 255.0f : q));  // NaN -> 255 is never stored: inputs are finite
      }
    }
    return out;
  });
}

Napi::Value Sq8Codes::Score(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    CheckOpen();
    FloatView query = GetFloat32Array(info[0], "query");
    if (query.length != dim_) throw CodedError(kErrDimension, "query must have dim floats");
    Int32View slots = GetInt32Array(info[1], "slots");
    const size_t n = slots.length;
    // Per-query tables: ip folds the step into the query, l2 shifts the query by vmin.
    std::vector<float> first(dim_);
    float base = 0.0f;
    for (size_t i = 0; i < dim_; ++i) {
      if (inner_product_) {
        first[i] = query.data[i] * step_[i];
        base += query.data[i] * vmin_[i];
      } else {
        first[i] = query.data[i] - vmin_[i];
      }
    }
    Napi::Float32Array out = Napi::Float32Array::New(info.Env(), n);
    std::vector<const uint8_t*> rows(n);
    for (size_t r = 0; r < n; ++r) rows[r] = blocks_.Row(slots.data[r]);
    for (size_t r = 0; r < n; ++r) {
      if (r + kPrefetchRows < n && rows[r + kPrefetchRows] != nullptr) {
        for (size_t offset = 0; offset < dim_; offset += 64) __builtin_prefetch(rows[r + kPrefetchRows] + offset);
      }
      if (rows[r] == nullptr) {
        out[r] = std::numeric_limits<float>::quiet_NaN();
      } else {
        out[r] = inner_product_ ? base + WeightedSum(first.data(), rows[r], dim_) : Residual(first.data(), step_.data(), rows[r], dim_);
      }
    }
    return out;
  });
}

}  // namespace sidx
