// JS class `Sq8Codes`: 8-bit scalar-quantised vectors in native memory, addressed by slot (the slot of the same
// vector in the slot file, vector/slot-file.ts), for the compressed rerank storage (vector/sq8-store.ts).
//
//   new Sq8Codes(dim, metric: "ip"|"l2", vmin: Float32Array, step: Float32Array)  [sync] per-dimension ranges
//   encode(vectors: Float32Array): Uint8Array          [sync] n*dim codes, round((x - vmin) / step) clamped to 0..255
//   put(slots: Int32Array, codes: Uint8Array): void    [sync] stores row i of codes at slots[i] (grows as needed)
//   readFromAsync(fd, offset, count): Promise<void>    [async] slots 0 .. count-1 read from the file (rows back to
//                                                       back from offset) on the libuv pool; put nothing meanwhile
//   score(query: Float32Array, slots: Int32Array): Float32Array  [sync] ip / squared L2 on the decoded codes
//                                                       (vmin + code * step); NaN where slots[i] < 0 or unset
//   clampedAt(slots: Int32Array): Int32Array           [sync] the positions whose codes hold a 0 or 255 (a value
//                                                       clamped to its range's end: vector/sq8-store.ts fits the
//                                                       ranges so that training values get none), ascending
//   clampedStored                                      [sync] slots whose codes hold a 0 or 255 (freed ones too until
//                                                       released)
//   release(slots: Int32Array, settle?): void          [sync] freed slots: their codes (stale, or zeros where none
//                                                       were written) become neutral (128) and stop counting; `settle`
//                                                       (right after a read): when none is left, scores stop looking
//   scoreAsync(query, slots): Promise<Float32Array>   [async] score() on the libuv pool (`slots` left untouched until
//                                                       it settles)
//   scoreAsync(query, slots, rows: SlotMap, rescore): Promise<{scores: Float32Array, exact: Int32Array}>
//                                                       [async] the same, then the clamped ones (clampedAt) and the
//                                                       best `rescore` of all (ties in position order) re-scored
//                                                       exactly from the slot map's rows and kept above the others
//                                                       (as vector/code-ranking.ts withExact);
//                                                       `exact`: their positions, ascending
//   scoreAsync(query, slots, rows, rescore, head): Promise<{scores, exact, top: Int32Array}>
//                                                       [async] the same, and the best `head` positions of the final
//                                                       scores, best first (finite ones only; ties in position
//                                                       order: service/score-rank.ts's order)
//   rankKeysAsync(query, keys: BigInt64Array, dense: Int32Array, denseKeys, coverRows, rows: SlotMap, rescore, head)
//     : Promise<{scores, exact, top, unresolved}>       [async] scoreAsync with `head` for keys: each key's slot is read on
//                                                       the pool thread from `dense` (the slot file's map, slot + 1 by
//                                                       key, 0 = none, for keys below denseKeys; vector/slot-file.ts);
//                                                       `unresolved` counts keys from denseKeys on (scored NaN);
//                                                       `coverRows`: rows the slot map must cover. The caller checks
//                                                       for writes meanwhile.
//   rankKeys(same arguments): {scores, exact, top, unresolved}   [sync] the same on the calling thread (a lone
//                                                       retrieve: no hop to the pool)
//   planLayout(slots: Int32Array): void                [sync] starts moving the rows of `slots` to rows 0, 1, ... in that
//                                                       order (slot_codes.h PlanLayout); scores and puts are unchanged
//   layoutStep(positions): number                      [sync] up to `positions` of the plan; returns those left
//   rowsOf(slots: Int32Array): Int32Array              [sync] the row that holds each slot's codes (-1 for a negative slot)
//   bytes                                              [sync] bytes of codes (and layout tables) allocated
//   close(): void                                      [sync] frees the codes; later calls throw
// Every method throws an Error whose `code` is a SIDX_ERR_* string. A close while a scoreAsync is in flight frees the
// codes once it settles.
#pragma once

#include <napi.h>

#include <cstdint>
#include <vector>

#include "codes_rerank.h"
#include "flagged_codes.h"
#include "slot_codes.h"

namespace sidx {

class Sq8Codes : public FlaggedCodes<Sq8Codes> {
 public:
  static constexpr const char* kName = "Sq8Codes";
  static Napi::Function Define(Napi::Env env);
  explicit Sq8Codes(const Napi::CallbackInfo& info);

  // One query's tables: ip weights as int16 with one scale plus the vmin term, l2 the query shifted by vmin.
  struct QueryTables {
    std::vector<float> first;
    std::vector<int16_t> weights;
    float base = 0.0f;
    float scale = 0.0f;
  };
  // Scores the codes of n slots (NaN where a slot holds none), resolving their rows as it goes; touches no JS value,
  // so any thread may run it. `clamped` (when given): the positions whose codes hold a value clamped to the ranges'
  // ends (a code 0 or 255), ascending: their code scores may be far off, so the rerank scores them exactly.
  void ScoreSlots(const QueryTables& tables, const int32_t* slots, size_t n, float* out,
                  std::vector<int32_t>* clamped = nullptr) const;
  // ScoreSlots' scores (and clamped positions, when given) of one pass, without the check for a layout step meanwhile.
  void ScoreRowsOnce(const QueryTables& tables, const int32_t* slots, size_t n, float* out,
                     std::vector<int32_t>* clamped = nullptr) const;
  // A row holding a clamped value (0 or 255); a released slot's row: neutral codes (128), never clamped.
  bool RowFlagged(const uint8_t* row) const;
  void Neutralise(int32_t slot);
  // The query's tables (reads only what the constructor set: any thread).
  QueryTables Tables(const float* query) const;

 private:
  friend class CodesWrap<Sq8Codes>;
  Napi::Value Encode(const Napi::CallbackInfo& info);
  Napi::Value Score(const Napi::CallbackInfo& info);
  Napi::Value ScoreAsync(const Napi::CallbackInfo& info);
  Napi::Value RankKeysAsync(const Napi::CallbackInfo& info);
  Napi::Value RankKeys(const Napi::CallbackInfo& info);
  // A score method's (query, slots), checked.
  struct ScoreCall {
    FloatView query;
    Int32View slots;
  };
  ScoreCall ScoreArgs(const Napi::CallbackInfo& info) const;

  std::vector<float> vmin_;
  std::vector<float> step_;
  std::vector<float> inv_step_;
};

}  // namespace sidx
