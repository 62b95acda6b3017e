// Code holders whose rows can be flagged as unreliable (sq8: a value clamped to its range's end, code 0 or 255; pq: a
// residual beyond what the codebooks were trained for, the row's last code 255): a rerank scores a flagged row exactly,
// since its code score may be far off. FlaggedCodes<T> counts the flagged rows by slot and gives the JS methods that
// share that count; T brings RowFlagged(row) (whether a row of codes is flagged; any thread) and Neutralise(slot) (a
// released slot's row becomes one never flagged).
//
//   clampedAt(slots: Int32Array): Int32Array   [sync] the positions whose rows are flagged, ascending
//   clampedStored                              [sync] slots holding a flagged row (freed ones too until released)
//   release(slots: Int32Array, settle?): void  [sync] freed slots: their rows (stale, or zeros where none were written)
//                                              become neutral (Neutralise) and stop counting; `settle` (right after a read):
//                                              when none is left, scores stop looking
#pragma once

#include <napi.h>

#include <algorithm>
#include <cstdint>
#include <vector>

#include "slot_codes.h"

namespace sidx {

template <typename T>
class FlaggedCodes : public CodesWrap<T> {
 public:
  explicit FlaggedCodes(const Napi::CallbackInfo& info) : CodesWrap<T>(info) {}

  // The put and read hooks of CodesWrap: Replacing uncounts the flagged rows a put overwrites (JS thread only, as puts
  // are); a slot never written holds zeros, not codes, so only slots put or read in (Covering) count; Stored counts the
  // flagged rows of every code byte put or read in (any thread).
  void Replacing(const int32_t* slots, size_t n) {
    const bool any = Looking();
    int64_t gone = 0;
    for (size_t r = 0; r < n; ++r) {  // slots >= 0: CheckPut ran first
      const auto slot = static_cast<size_t>(slots[r]);
      if (any && Counted(slots[r]) && SlotFlagged(slots[r])) ++gone;
      if (slot >= counted_.size()) counted_.resize(std::max(slot + 1, 2 * counted_.size()));
      counted_[slot] = 1;
    }
    if (gone > 0) __atomic_fetch_sub(&flagged_stored_, gone, __ATOMIC_RELAXED);
  }

  void Covering(size_t count) {
    if (count > counted_.size()) counted_.resize(count);
    std::fill(counted_.begin(), counted_.begin() + static_cast<std::ptrdiff_t>(count), 1);
  }

  void Stored(const uint8_t* rows, size_t bytes) {
    const size_t size = this->blocks_.code_size();
    int64_t found = 0;
    for (size_t at = 0; at + size <= bytes; at += size) found += Self().RowFlagged(rows + at) ? 1 : 0;
    if (found == 0) return;
    __atomic_fetch_add(&flagged_stored_, found, __ATOMIC_RELAXED);
    __atomic_store_n(&flagged_rows_, true, __ATOMIC_RELEASE);
  }

 protected:
  static Napi::Function DefineFlagged(Napi::Env env, const char* name, std::vector<Napi::ClassPropertyDescriptor<T>> extra) {
    using Wrap = Napi::ObjectWrap<T>;
    using Method = Napi::Value (T::*)(const Napi::CallbackInfo&);
    extra.push_back(Wrap::InstanceMethod("clampedAt", static_cast<Method>(&FlaggedCodes::ClampedAt)));
    extra.push_back(Wrap::InstanceMethod("release", static_cast<Method>(&FlaggedCodes::Release)));
    extra.push_back(Wrap::InstanceAccessor("clampedStored", static_cast<Method>(&FlaggedCodes::ClampedStored), nullptr));
    return CodesWrap<T>::DefineCodes(env, name, std::move(extra));
  }

  // Whether scores look for flagged rows: set once a row put or read in is flagged, cleared only by a settling release
  // that leaves none (any thread).
  bool Looking() const { return __atomic_load_n(&flagged_rows_, __ATOMIC_ACQUIRE); }

  // A ScoreSlots: `pass(look)` (one pass over the rows, appending the flagged positions to `look` unless null) until no
  // layout step ran meanwhile (ScoreStable); `look` is `flagged` when scores look for flagged rows, else null.
  template <typename Pass>
  void ScoreFlagged(std::vector<int32_t>* flagged, Pass&& pass) const {
    std::vector<int32_t>* look = flagged != nullptr && Looking() ? flagged : nullptr;
    this->ScoreStable([&] {
      if (look != nullptr) look->clear();
      pass(look);
    });
  }

 private:
  const T& Self() const { return *static_cast<const T*>(this); }
  T& Self() { return *static_cast<T*>(this); }

  // Whether the row stored for a slot is flagged (none stored: not).
  bool SlotFlagged(int32_t slot) const {
    const uint8_t* row = this->blocks_.Row(slot);
    return row != nullptr && Self().RowFlagged(row);
  }

  bool Counted(int32_t slot) const {
    return slot >= 0 && static_cast<size_t>(slot) < counted_.size() && counted_[static_cast<size_t>(slot)] != 0;
  }

  Napi::Value Release(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      this->CheckOpen();
      Int32View slots = GetInt32Array(info[0], "slots");
      int64_t gone = 0;
      for (size_t r = 0; r < slots.length; ++r) {
        const int32_t slot = slots.data[r];
        if (!Counted(slot) || this->blocks_.Row(slot) == nullptr) continue;  // no codes (zeros, or no block): nothing to release
        if (SlotFlagged(slot)) ++gone;
        Self().Neutralise(slot);
      }
      const int64_t left = __atomic_sub_fetch(&flagged_stored_, gone, __ATOMIC_RELAXED);
      // `settle` (after a read, the free slots released): the count is fresh, so none left means none to look for.
      const bool settle = info.Length() > 1 && info[1].ToBoolean().Value();
      if (settle && left <= 0) __atomic_store_n(&flagged_rows_, false, __ATOMIC_RELEASE);
      return info.Env().Undefined();
    });
  }

  Napi::Value ClampedStored(const Napi::CallbackInfo& info) {
    const int64_t stored = __atomic_load_n(&flagged_stored_, __ATOMIC_RELAXED);
    return Napi::Number::New(info.Env(), static_cast<double>(std::max<int64_t>(stored, 0)));
  }

  Napi::Value ClampedAt(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      this->CheckOpen();
      Int32View slots = GetInt32Array(info[0], "slots");
      std::vector<int32_t> found;
      if (Looking()) {
        for (size_t r = 0; r < slots.length; ++r) {
          if (SlotFlagged(slots.data[r])) found.push_back(static_cast<int32_t>(r));
        }
      }
      Napi::Int32Array out = Napi::Int32Array::New(info.Env(), found.size());
      std::copy(found.begin(), found.end(), out.Data());
      return out;
    });
  }

  // __atomic: read by pool threads. How many slots hold a flagged row now (released slots do not).
  bool flagged_rows_ = false;
  int64_t flagged_stored_ = 0;
  // By slot: 1 when its row holds codes put or read in, so counted; JS thread only.
  std::vector<uint8_t> counted_;
};

}  // namespace sidx
