// JS class `Sq8Codes`: 8-bit scalar-quantised vectors in native memory, addressed by slot (the slot of the same
// vector in the slot file, vector/slot-file.ts), for the compressed rerank storage (vector/sq8-store.ts).
//
//   new Sq8Codes(dim, metric: "ip"|"l2", vmin: Float32Array, step: Float32Array)  [sync] per-dimension ranges
//   encode(vectors: Float32Array): Uint8Array          [sync] n*dim codes, round((x - vmin) / step) clamped to 0..255
//   put(slots: Int32Array, codes: Uint8Array): void    [sync] stores row i of codes at slots[i] (grows as needed)
//   score(query: Float32Array, slots: Int32Array): Float32Array  [sync] ip / squared L2 on the decoded codes
//                                                       (vmin + code * step); NaN where slots[i] < 0 or unset
//   exact(query: Float32Array, vectors: Float32Array): Float32Array  [sync] the same metric on float rows
//   bytes                                              [sync] bytes of codes allocated
//   close(): void                                      [sync] frees the codes; later calls throw
// Every method throws an Error whose `code` is a SIDX_ERR_* string. Sync only: no worker ever sees the codes.
#pragma once

#include <napi.h>

#include <cstdint>
#include <vector>

#include "slot_codes.h"

namespace sidx {

class Sq8Codes : public CodesWrap<Sq8Codes> {
 public:
  static constexpr const char* kName = "Sq8Codes";
  static Napi::Function Define(Napi::Env env);
  explicit Sq8Codes(const Napi::CallbackInfo& info);

 private:
  friend class CodesWrap<Sq8Codes>;
  Napi::Value Encode(const Napi::CallbackInfo& info);
  Napi::Value Score(const Napi::CallbackInfo& info);

  std::vector<float> vmin_;
  std::vector<float> step_;
  std::vector<float> inv_step_;
};

}  // namespace sidx
