// gatherBeam [sync]: one beam query's candidate gathering over the live posting index's typed arrays
// (src/service/posting-index.ts, posting-runs.ts, posting-directory.ts) into a CandidateSet's arrays
// (src/service/candidate-set.ts), in one call: the same scans, row order, dedupe and stop rules as
// gatherCandidates with expand "beam" (src/service/candidates.ts), without a JS call per scan or per span.
#pragma once

#include <napi.h>

namespace sidx {

Napi::Value GatherBeam(const Napi::CallbackInfo& info);

}  // namespace sidx
