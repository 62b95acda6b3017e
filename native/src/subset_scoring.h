// Exact scores of one query against a chosen subset of stored vectors (the rerank primitive).
// Cost O(|ids| * d): each id's storage position comes from IndexIDMap2::rev_map, and the vector is read in place
// from IndexFlat storage (or reconstructed for other storages). It never scans the index, unlike FAISS search.
#pragma once

#include <faiss/IndexIDMap.h>

#include <cstddef>
#include <cstdint>

namespace sidx {

float InnerProduct(const float* x, const float* y, size_t d);
float SquaredL2(const float* x, const float* y, size_t d);

// out[i] = <query, rows[i]> (inner_product) or ||query - rows[i]||^2; NaN where rows[i] is null.
// Rows are prefetched a few ahead as they are scored (row_prefetch.h), so the cache misses of a random gather overlap.
void ScoreRows(const float* const* rows, const float* query, size_t count, size_t d, bool inner_product, float* out);

// out[i] = <query, x_id> for inner-product indexes, ||query - x_id||^2 for L2 ones; NaN where ids[i] is absent.
void ScoreSubset(const faiss::IndexIDMap2& index, const float* query, const int64_t* ids, size_t count, float* out);

}  // namespace sidx
