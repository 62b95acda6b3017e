// JS class `SlotMap`: a vector slot file (row s at byte s * 4 * dim, dim x float32) mapped read-only from the page
// cache, scored in place. The file is written by its owner through ordinary pwrite calls (vector/slot-file.ts);
// with a shared mapping those writes are visible here at once, so no vector is ever copied into this process.
//
//   new SlotMap(path, dim, metric: "ip"|"l2")            [sync]  opens the file read-only and maps it
//   dim, metric, slots                                   [sync]  getters; slots = whole rows at the last refresh
//   refresh(): number                                    [sync]  re-reads the file size (remaps when it grew past
//                                                                the mapping); call after the file shrank
//   scoreSlots(query: Float32Array, slots: Int32Array): Float32Array
//                                                        [sync]  inner product or squared L2 per slot, NaN for a
//                                                                negative slot or one past the end of the file
//   readScoreSlots(query, slots): Float32Array           [sync]  the same scores from rows read with pread into one
//                                                                buffer: the mapping is never touched, so the rows
//                                                                add nothing to the process's RSS (storage pq)
//   scoreSlotsAsync(query, slots): Promise<Float32Array> [async] scoreSlots' scores computed on the libuv pool: the
//                                                                rows are resolved (and the file's size checked) on
//                                                                the JS thread, only the reads and the math run off
//                                                                it; a mapping replaced meanwhile stays mapped until
//                                                                no such call is in flight, as does a closed map
//   (C++ only) PinMapping / Settled: another object's pool work (codes_rerank.cc) reads rows under the same rule, from
//   the mapping (RowIn) or by pread (ReadRows: the file stays open until the last such call settled)
//   gather(slots: Int32Array): Float32Array              [sync]  the rows, slots.length x dim; throws
//                                                                SIDX_ERR_VECTOR on a slot out of range
//   close(): void                                        [sync]  unmaps; later calls throw
//
// The mapping reserves address space past the end of the file (the next power of two of its size), so a growing
// file is remapped only log2(growth) times; rows past the last known size are never touched (that would fault
// with SIGBUS): a slot at or past it triggers one fstat before it is declared absent. All calls run on the JS
// thread that owns the object; scoreSlotsAsync's pool thread only reads rows the JS thread resolved, in a mapping
// kept alive until the call settles (the vector file only grows while the service runs: no row it was given can
// fall past the end).
#pragma once

#include <napi.h>

#include "boundary.h"

#include <cstddef>
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace sidx {

class SlotMapWrap : public Napi::ObjectWrap<SlotMapWrap> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit SlotMapWrap(const Napi::CallbackInfo& info);
  ~SlotMapWrap() override;

  // The mapping as a pool thread may read it: rows [0, rows) from base, or by pread from fd.
  struct Pinned {
    const float* base = nullptr;
    size_t rows = 0;
    int fd = -1;
  };
  // On the JS thread: the mapping, covering every row of `slots` (the file's size re-read when one is past the known
  // rows), kept mapped until the matching Settled() (also on the JS thread); throws when closed. A pool thread resolves
  // the rows it needs with RowIn, so the JS thread resolves none.
  Pinned PinMapping(Int32View slots);
  // The same for slots below `cover_rows` (a pool thread resolves the slots).
  Pinned PinMapping(size_t cover_rows);
  // Row `slot` of a pinned mapping; nullptr when absent (any thread).
  const float* RowIn(const Pinned& pinned, int32_t slot) const {
    return slot < 0 || static_cast<size_t>(slot) >= pinned.rows ? nullptr : pinned.base + static_cast<size_t>(slot) * dim_;
  }
  // Rows `slots[i]` read with pread into buffer[i * dim], rows[i] pointing there (nullptr when absent): the mapping is
  // not touched, so they add nothing to the RSS (any thread; throws SIDX_ERR_VECTOR on a failed read).
  void ReadRows(const Pinned& pinned, const int32_t* slots, size_t n, float* buffer, const float** rows) const;
  // An async read settled (called on the JS thread): unmaps what was kept for the calls in flight once none is left.
  void Settled();
  size_t dim() const { return dim_; }
  bool inner_product() const { return inner_product_; }

 private:
  void Unmap();
  void Refresh();  // fstat; remap when the file outgrew the mapping
  void CheckOpen() const;
  void Cover(const int32_t* slots, size_t count);  // refreshes once when a slot is past the known rows
  const float* Row(int32_t slot) const {           // nullptr when out of range
    return slot < 0 || static_cast<size_t>(slot) >= rows_ ? nullptr : base_ + static_cast<size_t>(slot) * dim_;
  }
  // A score method's (query, slots), checked, with the file's size re-read when a slot is past it.
  std::pair<FloatView, Int32View> ScoreArgs(const Napi::CallbackInfo& info);
  std::vector<const float*> Rows(Int32View slots) const;
  // Rows(slots) of covered slots, counted in flight until Settled(): what every pool read of rows starts with.
  std::vector<const float*> Pin(Int32View slots);

  Napi::Value Dim(const Napi::CallbackInfo& info);
  Napi::Value Metric(const Napi::CallbackInfo& info);
  Napi::Value Slots(const Napi::CallbackInfo& info);
  Napi::Value RefreshJs(const Napi::CallbackInfo& info);
  Napi::Value ScoreSlots(const Napi::CallbackInfo& info);
  Napi::Value ReadScoreSlots(const Napi::CallbackInfo& info);
  Napi::Value ScoreSlotsAsync(const Napi::CallbackInfo& info);
  friend class ScoreSlotsWorker;
  Napi::Value Gather(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);

  int fd_ = -1;
  // Closed while pool reads were in flight: closed when the last one settles.
  int retired_fd_ = -1;
  bool closed_ = false;
  int in_flight_ = 0;
  // Mappings replaced (or closed) while async scores were in flight: unmapped when the last one settles.
  std::vector<std::pair<const float*, size_t>> retired_;
  size_t dim_ = 0;
  bool inner_product_ = true;
  const float* base_ = nullptr;
  size_t mapped_bytes_ = 0;
  size_t rows_ = 0;
};

}  // namespace sidx
