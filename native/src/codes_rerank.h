// The rerank of the code holders (sq8_codes.h scoreAsync, rankKeysAsync, rankKeys; pq_codes.h rankKeysAsync,
// rankKeys): scores the candidates' codes, re-scores the best exactly from the vector file (slot_map.h: through its
// mapping, or by pread so that the rows add nothing to the RSS) and ranks them, resolving every candidate's row itself;
// off the JS thread as one libuv pool task (the JS thread only starts it), or on the calling thread.
//
// `Codes` (Sq8Codes, PqCodes) provides QueryTables, Tables(query) and ScoreSlots(tables, slots, n, out), which any
// thread may call, and Started() / Settled() around a pool thread's reads.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "boundary.h"

namespace sidx {

class SlotMapWrap;

// Where the candidates' slots come from: `slots` as given (the caller leaves the array untouched until the task
// settles), or `keys` whose slots the task reads from `dense` (vector/slot-file.ts's map: slot + 1 by key, 0 = none;
// keys below `dense_keys` past its end have none), counting keys from `dense_keys` on, which the slot file maps
// otherwise, as unresolved (NaN).
struct RerankCandidates {
  Int32View slots{nullptr, 0};
  IdView keys{nullptr, 0};
  Int32View dense{nullptr, 0};
  uint64_t dense_keys = 0;
};

// The exact re-score of the best `rescore` code scores from `map` (`read`: by pread, else through the mapping);
// `head` >= 0: the best `head` positions of the final scores come back as `top`, best first; `cover_rows`: rows the
// mapping must cover (keys mode, whose slots are known only on the pool thread).
struct RerankRescore {
  Napi::Object map_object;
  SlotMapWrap* map = nullptr;
  size_t rescore = 0;
  int64_t head = -1;
  size_t cover_rows = 0;
  bool read = false;
};

// (rows: SlotMap, rescore[, head]) from argument `at` on, checked against the codes' dim and metric.
RerankRescore RescoreArgs(const Napi::CallbackInfo& info, size_t at, size_t dim, bool inner_product);

// rankKeysAsync / rankKeys's (query, keys, dense, denseKeys, coverRows, rows, rescore, head[, read]), checked.
struct RankKeysCall {
  FloatView query{nullptr, 0};
  RerankCandidates candidates;
  RerankRescore rescore;
};
RankKeysCall RankKeysArgs(const Napi::CallbackInfo& info, size_t dim, bool inner_product);

// Queues the task and returns its promise; `pinned` JS values are kept until it settles. Without `rescore` it resolves
// to the code scores alone (Float32Array), else to {scores, exact, top?, unresolved}.
template <typename Codes>
Napi::Value StartRerank(Napi::Env env, Codes* codes, const std::vector<Napi::Value>& pinned, FloatView query,
                        const RerankCandidates& candidates, const RerankRescore* rescore);

// The same ranking with a rescore, on the calling thread; returns {scores, exact, top?, unresolved?} at once.
template <typename Codes>
Napi::Value RankNow(Napi::Env env, Codes* codes, FloatView query, const RerankCandidates& candidates,
                    const RerankRescore& rescore);

// rankKeysAsync and rankKeys of a code holder (`self` is info.This()).
template <typename Codes>
Napi::Value RankKeysAsyncOf(Codes* codes, const Napi::CallbackInfo& info) {
  const RankKeysCall call = RankKeysArgs(info, codes->dim(), codes->inner_product());
  return StartRerank(info.Env(), codes, {info.This(), info[1], info[2], call.rescore.map_object}, call.query, call.candidates, &call.rescore);
}

template <typename Codes>
Napi::Value RankKeysOf(Codes* codes, const Napi::CallbackInfo& info) {
  const RankKeysCall call = RankKeysArgs(info, codes->dim(), codes->inner_product());
  return RankNow(info.Env(), codes, call.query, call.candidates, call.rescore);
}

}  // namespace sidx
