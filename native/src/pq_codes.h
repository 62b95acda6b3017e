// JS class `PqCodes`: FAISS product-quantisation codes (faiss::ProductQuantizer, m sub-quantizers of 8 bits, so m
// bytes per vector) in native memory, addressed by slot (the row of the same vector in the slot file,
// vector/slot-file.ts), for the compressed rerank storage pq (vector/pq-store.ts). The last sub-quantizer's code 255
// is reserved (its centroid is a copy of code 254's, so no vector encodes to it) and marks a flagged row: an outlier
// whose code score may be far off, which a rerank scores exactly.
//
//   new PqCodes(dim, metric: "ip"|"l2", m, centroids: Float32Array | null, hugePages?, limit?: number)  [sync] m must
//                                                       divide dim; centroids m * 256 * (dim / m) floats in FAISS's
//                                                       layout (m, 256, dsub), the last sub-quantizer's code 255
//                                                       reserved here; null = not trained (put/exact only; encode and
//                                                       score throw); limit: the squared residual above which a row
//                                                       is flagged (default: infinity, none)
//   encode(vectors: Float32Array, reference?: boolean): Uint8Array  [sync] n*m codes: ProductQuantizer::compute_codes's,
//                                                       computed by an AVX2 loop where the CPU has it (reference: by
//                                                       FAISS itself, which tests compare with); a row's last code is
//                                                       255 (flagged) when the squared distance between the vector
//                                                       and its decoding is above `limit` (an outlier the codebooks
//                                                       do not reach: a rerank scores its row exactly)
//   encodeAsync(vectors: Float32Array): Promise<Uint8Array>  [async] encode() on the libuv pool (leave `vectors` untouched
//                                                       until it settles)
//   put(slots: Int32Array, codes: Uint8Array): void    [sync] stores row i of codes at slots[i] (grows as needed)
//   readFromAsync(fd, offset, count): Promise<void>    [async] slots 0 .. count-1 read from the file (rows back to
//                                                       back from offset) on the libuv pool; put nothing meanwhile
//   score(query: Float32Array, slots: Int32Array, reference?: boolean): Float32Array  [sync] asymmetric distance: one
//                                                       table per query (ip: <q_j, c_jk>, l2: ||q_j - c_jk||^2,
//                                                       m x 256; by an AVX2 loop, or by FAISS with `reference`),
//                                                       summed over each slot's m codes; NaN where slots[i] < 0 or unset
//   rankKeysAsync(query, keys: BigInt64Array, dense: Int32Array, denseKeys, coverRows, rows: SlotMap, rescore, head,
//     read?: boolean): Promise<{scores, exact, top, unresolved}>  [async] as Sq8Codes' (sq8_codes.h): the keys' slots,
//                                                       their code scores, the exact re-score of the best `rescore` from
//                                                       the slot map's rows (read: by pread, adding nothing to the RSS)
//                                                       and the best `head` positions, on the libuv pool
//   rankKeys(same arguments)                           [sync] the same on the calling thread; both re-score the flagged
//                                                       rows exactly first (clampedAt, clampedStored, release:
//                                                       flagged_codes.h)
//   exact(query: Float32Array, vectors: Float32Array): Float32Array  [sync] the same metric on float rows
//   bytes                                              [sync] bytes of codes allocated
//   close(): void                                      [sync] frees the codes; later calls throw
// Module function pqTrain(sample: Float32Array, dim, m, {niter, seed, reference}): {centroids: Float32Array,
// heldOut: Float32Array}  [sync] trains a ProductQuantizer (k-means per sub-space, fixed seed: deterministic) on >= 256
// rows, returns its centroids (code 255 of the last sub-quantizer reserved) and the squared residuals of the rows it held out of the k-means (from 512 rows on,
// every tenth row, in sample order; below, none); the k-means assigns with the AVX2 search of encode where the CPU
// has it (reference: with FAISS's IndexFlatL2).
// Module function pqTrainAsync(same arguments): Promise<{centroids, heldOut}>  [async] pqTrain on the libuv pool (the sample
// is pinned until it settles: do not write to it meanwhile).
// Every method throws an Error whose `code` is a SIDX_ERR_* string. A close while readFromAsync is in flight frees the
// codes once it settles.
#pragma once

#include <faiss/impl/ProductQuantizer.h>
#include <napi.h>

#include <cstdint>
#include <memory>

#include "codes_rerank.h"
#include "flagged_codes.h"
#include "slot_codes.h"

namespace sidx {

// The code of the last sub-quantizer that marks a flagged row.
constexpr uint8_t kFlagCode = 255;

class PqCodes : public FlaggedCodes<PqCodes> {
 public:
  static constexpr const char* kName = "PqCodes";
  static Napi::Function Define(Napi::Env env);
  explicit PqCodes(const Napi::CallbackInfo& info);

  // One query's table: m x 256 entries (ip: <q_j, c_jk>, l2: ||q_j - c_jk||^2).
  struct QueryTables {
    std::vector<float> table;
  };
  // The query's table (reads only the centroids, set at construction: any thread; throws when not trained): by an AVX2
  // loop where the CPU has it, by FAISS with `reference`.
  QueryTables Tables(const float* query, bool reference = false) const;
  // The asymmetric scores of n slots (NaN where a slot holds none), again when a layout step ran meanwhile (any thread).
  // `flagged` (when given): the positions whose rows are flagged (an outlier's codes, see EncodeRows), ascending.
  void ScoreSlots(const QueryTables& tables, const int32_t* slots, size_t n, float* out,
                  std::vector<int32_t>* flagged = nullptr) const;
  // The codes of `rows` vectors into out (rows * m bytes: by the AVX2 loop where the CPU has it, or by FAISS's own
  // (reference)), the last one kFlagCode where the vector's squared residual (its distance to its decoding) is above
  // the holder's limit; any thread, once trained.
  void EncodeRows(const float* vectors, size_t rows, uint8_t* out, bool reference) const;
  // A flagged row's last code is kFlagCode, which the last sub-quantizer's codebook reserves (ReserveFlagCode): no
  // vector encodes to it, and a flagged row's code score is replaced by its exact one.
  bool RowFlagged(const uint8_t* row) const { return row[m_ - 1] == kFlagCode; }
  void Neutralise(int32_t slot) {
    thread_local std::vector<uint8_t> zeros;
    zeros.assign(m_, 0);
    blocks_.Put(&slot, 1, zeros.data());
  }

 private:
  friend class CodesWrap<PqCodes>;
  Napi::Value Encode(const Napi::CallbackInfo& info);
  Napi::Value Score(const Napi::CallbackInfo& info);
  Napi::Value EncodeAsync(const Napi::CallbackInfo& info);
  Napi::Value RankKeysAsync(const Napi::CallbackInfo& info);
  Napi::Value RankKeys(const Napi::CallbackInfo& info);
  const faiss::ProductQuantizer& Trained() const;
  void ScoreRowsOnce(const QueryTables& tables, const int32_t* slots, size_t n, float* out, std::vector<int32_t>* flagged) const;

  size_t m_ = 0;
  // Rows whose squared residual is above it are flagged (the constructor's `limit`; infinity: none).
  float limit_ = 0.0f;
  std::unique_ptr<faiss::ProductQuantizer> pq_;  // null until trained
};

Napi::Value PqTrain(const Napi::CallbackInfo& info);
Napi::Value PqTrainAsync(const Napi::CallbackInfo& info);

}  // namespace sidx
