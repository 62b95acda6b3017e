#include "subset_scoring.h"

#include <faiss/IndexFlat.h>

#include <limits>
#include <vector>

// One build serves any x86-64 CPU: GCC emits an AVX2+FMA clone and a baseline clone, picked at load time.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define SIDX_SIMD_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define SIDX_SIMD_CLONES
#endif

namespace sidx {

SIDX_SIMD_CLONES float InnerProduct(const float* x, const float* y, size_t d) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (size_t i = 0; i < d; ++i) sum += x[i] * y[i];
  return sum;
}

SIDX_SIMD_CLONES float SquaredL2(const float* x, const float* y, size_t d) {
  float sum = 0.0f;
#pragma omp simd reduction(+ : sum)
  for (size_t i = 0; i < d; ++i) {
    float diff = x[i] - y[i];
    sum += diff * diff;
  }
  return sum;
}

void ScoreSubset(const faiss::IndexIDMap2& index, const float* query, const int64_t* ids, size_t count, float* out) {
  const size_t d = static_cast<size_t>(index.d);
  const bool inner_product = index.metric_type == faiss::METRIC_INNER_PRODUCT;
  const auto* flat = dynamic_cast<const faiss::IndexFlat*>(index.index);
  std::vector<float> reconstructed(flat ? 0 : d);

  for (size_t i = 0; i < count; ++i) {
    auto found = index.rev_map.find(ids[i]);
    if (found == index.rev_map.end()) {
      out[i] = std::numeric_limits<float>::quiet_NaN();
      continue;
    }
    const float* vector;
    if (flat) {
      vector = flat->get_xb() + static_cast<size_t>(found->second) * d;
    } else {
      index.index->reconstruct(found->second, reconstructed.data());
      vector = reconstructed.data();
    }
    out[i] = inner_product ? InnerProduct(query, vector, d) : SquaredL2(query, vector, d);
  }
}

}  // namespace sidx
