// The sq8 rerank (sq8_codes.h scoreAsync, rankKeysAsync, rankKeys): scores the candidates' codes, re-scores the best
// exactly from the vector file's mapping (slot_map.h) and ranks them, resolving every candidate's row itself; off the
// JS thread as one libuv pool task (the JS thread only starts it), or on the calling thread.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <vector>

#include "boundary.h"

namespace sidx {

class Sq8Codes;
class SlotMapWrap;

// Where the candidates' slots come from: `slots` as given (the caller leaves the array untouched until the task
// settles), or `keys` whose slots the task reads from `dense` (vector/slot-file.ts's map: slot + 1 by key, 0 = none;
// keys below `dense_keys` past its end have none), counting keys from `dense_keys` on, which the slot file maps
// otherwise, as unresolved (NaN).
struct Sq8Candidates {
  Int32View slots{nullptr, 0};
  IdView keys{nullptr, 0};
  Int32View dense{nullptr, 0};
  uint64_t dense_keys = 0;
};

// The exact re-score of the best `rescore` code scores from `map`; `head` >= 0: the best `head` positions of the final
// scores come back as `top`, best first; `cover_rows`: rows the mapping must cover (keys mode, whose slots are known
// only on the pool thread).
struct Sq8Rescore {
  Napi::Object map_object;
  SlotMapWrap* map = nullptr;
  size_t rescore = 0;
  int64_t head = -1;
  size_t cover_rows = 0;
};

// Queues the task and returns its promise; `pinned` JS values are kept until it settles. Without `rescore` it resolves
// to the code scores alone (Float32Array), else to {scores, exact, top?, unresolved}.
Napi::Value StartSq8Rerank(Napi::Env env, Sq8Codes* codes, const std::vector<Napi::Value>& pinned, FloatView query,
                           const Sq8Candidates& candidates, const Sq8Rescore* rescore);

// The same ranking with a rescore, on the calling thread; returns {scores, exact, top?, unresolved?} at once.
Napi::Value RankSq8Now(Napi::Env env, Sq8Codes* codes, FloatView query, const Sq8Candidates& candidates,
                       const Sq8Rescore& rescore);

}  // namespace sidx
