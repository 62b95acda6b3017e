// Prefetching for gathers of rows read at random (a rerank's candidates, scattered over every block of codes or the
// whole vector file): each row is asked into L2 a few KiB of rows before it is read. prefetcht1 rather than t0: L2
// keeps more misses in flight than L1, so more rows' misses overlap. bench/row-gather.bench.ts (1,250 random rows of
// 100K x 512, caches flushed): f32 rows 154-227 µs a call against 271-416 with prefetcht0 4 rows ahead; sq8 rows lower
// in 5 of 7 alternated pairs (docs/benchmarks.md, stop 41).
#pragma once

#include <algorithm>
#include <cstddef>

namespace sidx {

// How far ahead, in bytes of rows, a gather prefetches.
constexpr size_t kPrefetchAheadBytes = 6144;

// Rows ahead for rows of `row_bytes`: about kPrefetchAheadBytes, at least 2 rows and at most 16.
constexpr size_t RowsAhead(size_t row_bytes) {
  return std::clamp<size_t>(row_bytes == 0 ? 16 : kPrefetchAheadBytes / row_bytes, 2, 16);
}

// Every cache line of a row into L2 (nothing for null).
inline void PrefetchRow(const void* row, size_t bytes) {
  if (row == nullptr) return;
  const char* p = static_cast<const char*>(row);
  for (size_t offset = 0; offset < bytes; offset += 64) __builtin_prefetch(p + offset, 0, 2);
}

}  // namespace sidx
