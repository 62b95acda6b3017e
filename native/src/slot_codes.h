// What the in-memory code holders (sq8_codes.h, pq_codes.h) share: fixed-size codes by slot (the row of the same
// vector in the slot file, vector/slot-file.ts) in 64 Ki-slot blocks. Their owners re-score the best candidates
// exactly from the vector file itself (SlotMap, slot_map.h).
#pragma once

#include <napi.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <limits>
#include <memory>
#include <thread>
#include <utility>
#include <vector>

#include "boundary.h"
#include "row_prefetch.h"

namespace sidx {

class SlotCodeBlocks {
 public:
  static constexpr size_t kBlockSlots = size_t{1} << 16;

  // huge_pages: ask for transparent huge pages for the blocks (madvise; the kernel may still give 4 KiB ones).
  SlotCodeBlocks(size_t code_size, bool huge_pages);

  // Blocks for every non-negative int32 slot.
  static constexpr size_t kMaxBlocks = (size_t{1} << 31) / kBlockSlots;

  size_t code_size() const { return code_size_; }
  // nullptr when the slot holds no codes (negative, or its block never written). Any thread: a block's address is
  // published once, in a table that never moves, so a pool thread resolves a rerank's rows while the JS thread adds
  // blocks (what a row holds meanwhile is the caller's concern: sq8_codes.cc). Inline: a rerank resolves every
  // candidate's row with it.
  const uint8_t* Row(int32_t slot) const {
    if (slot < 0) return nullptr;
    const size_t row = RowOf(static_cast<size_t>(slot));
    const uint8_t* block = table_[row / kBlockSlots].load(std::memory_order_acquire);
    return block == nullptr ? nullptr : block + (row % kBlockSlots) * code_size_;
  }
  // Row(slots[i]) into rows[i] for i < n; once laid out, the layout table's entries are prefetched ahead (a rerank's
  // slots are scattered over the table: 4 MB at 1M slots).
  void Rows(const int32_t* slots, size_t n, const uint8_t** rows) const;
  // The row that holds a slot's codes: the slot itself until a layout moved it (LayoutStep).
  size_t RowOf(size_t slot) const {
    if (!__atomic_load_n(&laid_out_, __ATOMIC_ACQUIRE)) return slot;
    const int32_t* rows = row_of_[slot / kBlockSlots].load(std::memory_order_acquire);
    return rows == nullptr ? slot : static_cast<size_t>(__atomic_load_n(rows + slot % kBlockSlots, __ATOMIC_RELAXED));
  }

  // Layout: the rows of the slots in `slots`, in that order, moved to rows 0, 1, ... (the other slots' rows after them),
  // so that a rerank whose candidates come from a few posting ranges reads runs of consecutive rows instead of one
  // DRAM miss per row. In steps on the JS thread, each a few swaps of two rows; a reader on another thread reads
  // between steps: it takes LayoutSeq() before and checks LayoutStable() after, and reads again when a step ran
  // meanwhile (a seqlock: odd while a step runs). Slots out of range, negative or given twice are skipped.
  void PlanLayout(const int32_t* slots, size_t count);
  // Up to `positions` positions of the plan; returns how many are left (0: done, the plan is dropped).
  size_t LayoutStep(size_t positions);
  uint32_t LayoutSeq() const { return __atomic_load_n(&layout_seq_, __ATOMIC_ACQUIRE); }
  bool LayoutStable(uint32_t seq) const {
    std::atomic_thread_fence(std::memory_order_acquire);
    return __atomic_load_n(&layout_seq_, __ATOMIC_RELAXED) == seq;
  }

  // Stores row r of `codes` (code_size bytes each) at slots[r] (in the row that holds it); throws on a negative slot.
  void Put(const int32_t* slots, size_t count, const uint8_t* codes);
  // Where slots 0 .. count-1, stored back to back in a file from `offset`, go: the blocks are allocated here (on the
  // JS thread), ReadSegments fills them (any thread; nothing else may write those blocks meanwhile). Before any layout
  // only (rows are slots then); throws after one.
  struct Segment {
    uint8_t* into;
    size_t bytes;
    int64_t at;
  };
  std::vector<Segment> Reserve(int64_t offset, size_t count);
  static void ReadSegments(int fd, const std::vector<Segment>& segments);
  // Bytes of blocks allocated.
  size_t Bytes() const;
  void Clear();

 private:
  // Anonymous mappings, advised for transparent huge pages unless huge_pages_ is false: a rerank reads its
  // candidates' rows at random across every block, and with 4 KiB pages most of those reads also walk the page tables.
  struct Unmap {
    size_t bytes;
    void operator()(uint8_t* p) const;
  };
  using Block = std::unique_ptr<uint8_t[], Unmap>;
  Block NewBlock() const;
  // blocks_[b] created when missing, its address published in table_.
  uint8_t* BlockAt(size_t b);
  // A new blocks_[b], published in table_.
  void Publish(size_t b);
  struct FreeTable {
    void operator()(std::atomic<uint8_t*>* p) const;
  };
  struct FreeRowTable {
    void operator()(std::atomic<int32_t*>* p) const;
  };

  // Block b's slot -> row and row -> slot tables, as identity, where missing (layouts only).
  void LayoutTablesAt(size_t b);
  void SwapRows(size_t a, size_t b);
  int32_t& SlotRow(size_t slot) { return row_of_blocks_[slot / kBlockSlots][slot % kBlockSlots]; }
  int32_t& RowSlot(size_t row) { return slot_of_blocks_[row / kBlockSlots][row % kBlockSlots]; }

  size_t code_size_;
  bool huge_pages_;
  // Layout state: off (rows are slots) until the first PlanLayout; then per block of slots a table of their rows
  // (published in row_of_, which readers use) and per block of rows a table of their slots (the JS thread's).
  // Read and written with __atomic builtins (plain members keep the holder movable).
  bool laid_out_ = false;
  std::vector<std::unique_ptr<int32_t[]>> row_of_blocks_;
  std::vector<std::unique_ptr<int32_t[]>> slot_of_blocks_;
  std::unique_ptr<std::atomic<int32_t*>[], FreeRowTable> row_of_;
  uint32_t layout_seq_ = 0;
  std::vector<int32_t> plan_;
  size_t plan_at_ = 0;
  size_t next_row_ = 0;
  std::vector<uint8_t> swap_row_;
  // Allocated on first write, never moved: growing costs no copy and no 2x peak; untouched pages cost no RSS.
  std::vector<Block> blocks_;
  // kMaxBlocks addresses (null: no block), zero pages until written: what Row reads.
  std::unique_ptr<std::atomic<uint8_t*>[], FreeTable> table_;
};

// Keeps the re-scored positions `exact` (holding exact scores) above every other finite score: when a code score
// beats the worst exact one, all the others move by the same amount to just below it; `kept` (also holding exact
// scores: sq8's clamped rows) neither set that bar nor move. Bit for bit the arithmetic of vector/code-ranking.ts
// belowExact (double, each moved score rounded to float32), which the sync path runs.
void BelowExact(std::vector<float>& scores, const std::vector<int32_t>& exact, float sign, const std::vector<int32_t>& kept = {});

// The best `count` positions of `scores` whose signed score (sign * score) is finite, best first: higher signed score,
// ties by lower position (a strict order, so the set and its order are those of a full sort, and of
// service/score-rank.ts selectTop). One pass with a heap of `count` positions whose root is the worst kept.
std::vector<int32_t> BestPositions(const std::vector<float>& scores, float sign, size_t count);

Napi::Uint8Array GetUint8Array(const Napi::Value& value, const char* name);
// The codes holders' optional hugePages argument: true when undefined.
bool HugePagesArg(const Napi::Value& value);

// A put's arguments: codes.length == slots.length * code size, every slot >= 0; throws otherwise.
void CheckPut(Int32View slots, const Napi::Uint8Array& codes, size_t code_size);
void ThrowIfClosed(bool closed, const char* name);

// "ip" -> true, "l2" -> false; throws otherwise.
bool ParseMetric(const Napi::Value& value);

// Base of the JS code holders (T: Sq8Codes, PqCodes): T brings encode(vectors), score(query, slots),
// Replacing(slots, n) (told of the slots a put is about to write), Covering(count) (told that a read will fill slots
// 0 .. count - 1) and Stored(codes, bytes) (told of every code byte put or read in; any thread) and sets dim_,
// inner_product_ and blocks_ in its constructor; put(slots, codes), readFromAsync(fd, offset, count), bytes and
// close() are the same for all.
template <typename T>
class CodesWrap : public Napi::ObjectWrap<T> {
 public:
  explicit CodesWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<T>(info) {}

 protected:
  // `extra`: the subclass's own methods besides the shared ones.
  static Napi::Function DefineCodes(Napi::Env env, const char* name,
                                    std::vector<Napi::ClassPropertyDescriptor<T>> extra = {}) {
    using Wrap = Napi::ObjectWrap<T>;
    using Method = Napi::Value (T::*)(const Napi::CallbackInfo&);
    std::vector<Napi::ClassPropertyDescriptor<T>> properties = {
        Wrap::InstanceMethod("encode", static_cast<Method>(&T::Encode)),
        Wrap::InstanceMethod("put", static_cast<Method>(&CodesWrap::Put)),
        Wrap::InstanceMethod("readFromAsync", static_cast<Method>(&CodesWrap::ReadFromAsync)),
        Wrap::InstanceMethod("score", static_cast<Method>(&T::Score)),
        Wrap::InstanceAccessor("bytes", static_cast<Method>(&CodesWrap::Bytes), nullptr),
        Wrap::InstanceMethod("planLayout", static_cast<Method>(&CodesWrap::PlanLayout)),
        Wrap::InstanceMethod("layoutStep", static_cast<Method>(&CodesWrap::LayoutStep)),
        Wrap::InstanceMethod("rowsOf", static_cast<Method>(&CodesWrap::RowsOf)),
        Wrap::InstanceMethod("close", static_cast<Method>(&CodesWrap::Close))};
    properties.insert(properties.end(), extra.begin(), extra.end());
    return Wrap::DefineClass(env, name, properties);
  }

 public:
  // A pool thread reads the codes from Started() until Settled() (both on the JS thread): a close meanwhile keeps
  // them allocated until the last one settles.
  void Started() { ++in_flight_; }
  size_t dim() const { return dim_; }
  bool inner_product() const { return inner_product_; }
  void Settled() {
    if (--in_flight_ == 0 && closed_) blocks_.Clear();
  }

 protected:
  void CheckOpen() const { ThrowIfClosed(closed_, T::kName); }

  // out[r] = score(the codes of slots[r], r), NaN where a slot holds none, the rows prefetched ahead: one pass (any thread;
  // see ScoreStable).
  template <typename Score>
  void ScoreCodeRows(const int32_t* slots, size_t n, float* out, Score&& score) const {
    thread_local std::vector<const uint8_t*> rows;
    rows.resize(n);
    blocks_.Rows(slots, n, rows.data());
    const size_t size = blocks_.code_size();
    const size_t ahead = RowsAhead(size);
    for (size_t r = 0; r < n && r < ahead; ++r) PrefetchRow(rows[r], size);
    for (size_t r = 0; r < n; ++r) {
      if (r + ahead < n) PrefetchRow(rows[r + ahead], size);
      out[r] = rows[r] == nullptr ? std::numeric_limits<float>::quiet_NaN() : score(rows[r], r);
    }
  }

  // Runs `score` (one pass over the rows) until no layout step ran meanwhile: a step on the JS thread moves rows, so a
  // pool thread scores again when one did (the JS thread, which runs the steps, never sees one).
  template <typename Score>
  void ScoreStable(Score&& score) const {
    for (;;) {
      const uint32_t seq = blocks_.LayoutSeq();
      if (seq % 2 != 0) {
        std::this_thread::yield();
        continue;
      }
      score();
      if (blocks_.LayoutStable(seq)) return;
    }
  }

  size_t dim_ = 0;
  bool inner_product_ = true;
  bool closed_ = false;
  SlotCodeBlocks blocks_{0, true};
  int in_flight_ = 0;

 private:
  Napi::Value Put(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckOpen();
      Int32View slots = GetInt32Array(info[0], "slots");
      Napi::Uint8Array codes = GetUint8Array(info[1], "codes");
      CheckPut(slots, codes, blocks_.code_size());  // before Replacing reads and marks the rows it will overwrite
      static_cast<T*>(this)->Replacing(slots.data, slots.length);
      blocks_.Put(slots.data, slots.length, codes.Data());
      static_cast<T*>(this)->Stored(codes.Data(), codes.ByteLength());
      return info.Env().Undefined();
    });
  }

  // readFromAsync(fd, offset, count): slots 0 .. count-1 read from the file on the libuv pool; the caller puts nothing
  // meanwhile and keeps fd open until it settles.
  Napi::Value ReadFromAsync(const Napi::CallbackInfo& info) {
    return GuardAsync(info.Env(), [&]() -> Napi::Value {
      CheckOpen();
      const int64_t fd = GetPositiveInt(info[0], "fd");
      const int64_t offset = GetPositiveInt(info[1], "offset");
      const int64_t count = GetPositiveInt(info[2], "count");
      static_cast<T*>(this)->Covering(static_cast<size_t>(count));
      return StartWorker(new ReadWorker(info.Env(), this, info.This().As<Napi::Object>(), static_cast<int>(fd),
                                        blocks_.Reserve(offset, static_cast<size_t>(count))));
    });
  }

  class ReadWorker : public PromiseWorker {
   public:
    ReadWorker(Napi::Env env, CodesWrap* owner, Napi::Object self, int fd, std::vector<SlotCodeBlocks::Segment> segments)
        : PromiseWorker(env, "sidx.codesRead"), owner_(owner), fd_(fd), segments_(std::move(segments)) {
      Keep(self);
      owner_->Started();
    }
    ~ReadWorker() override { owner_->Settled(); }

   protected:
    void Run() override {
      SlotCodeBlocks::ReadSegments(fd_, segments_);
      for (const SlotCodeBlocks::Segment& s : segments_) static_cast<T*>(owner_)->Stored(s.into, s.bytes);
    }

   private:
    CodesWrap* owner_;
    int fd_;
    std::vector<SlotCodeBlocks::Segment> segments_;
  };

  Napi::Value PlanLayout(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckOpen();
      Int32View slots = GetInt32Array(info[0], "slots");
      blocks_.PlanLayout(slots.data, slots.length);
      return info.Env().Undefined();
    });
  }

  Napi::Value LayoutStep(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckOpen();
      const int64_t positions = GetPositiveInt(info[0], "positions");
      return Napi::Number::New(info.Env(), static_cast<double>(blocks_.LayoutStep(static_cast<size_t>(positions))));
    });
  }

  Napi::Value RowsOf(const Napi::CallbackInfo& info) {
    return Guard(info.Env(), [&]() -> Napi::Value {
      CheckOpen();
      Int32View slots = GetInt32Array(info[0], "slots");
      Napi::Int32Array out = Napi::Int32Array::New(info.Env(), slots.length);
      for (size_t i = 0; i < slots.length; ++i) {
        out[i] = slots.data[i] < 0 ? -1 : static_cast<int32_t>(blocks_.RowOf(static_cast<size_t>(slots.data[i])));
      }
      return out;
    });
  }

  Napi::Value Bytes(const Napi::CallbackInfo& info) { return Napi::Number::New(info.Env(), static_cast<double>(blocks_.Bytes())); }

  Napi::Value Close(const Napi::CallbackInfo& info) {
    if (in_flight_ == 0) blocks_.Clear();
    closed_ = true;
    return info.Env().Undefined();
  }
};

}  // namespace sidx
