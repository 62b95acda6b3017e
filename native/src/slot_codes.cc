#include "slot_codes.h"

#include <sys/mman.h>
#include <unistd.h>


#include <algorithm>
#include <cmath>
#include <limits>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <string>

#include "boundary.h"

namespace sidx {

void SlotCodeBlocks::Unmap::operator()(uint8_t* p) const { ::munmap(p, bytes); }

void SlotCodeBlocks::FreeTable::operator()(std::atomic<uint8_t*>* p) const { std::free(p); }

void SlotCodeBlocks::FreeRowTable::operator()(std::atomic<int32_t*>* p) const { std::free(p); }

SlotCodeBlocks::SlotCodeBlocks(size_t code_size, bool huge_pages)
    // calloc: a large zeroed allocation is fresh pages, so the table costs RSS only for the blocks it holds.
    : code_size_(code_size), huge_pages_(huge_pages),
      table_(static_cast<std::atomic<uint8_t*>*>(std::calloc(kMaxBlocks, sizeof(std::atomic<uint8_t*>)))) {
  static_assert(std::atomic<uint8_t*>::is_always_lock_free, "the block table is read without locks");
  if (!table_) throw std::bad_alloc();
}

uint8_t* SlotCodeBlocks::BlockAt(size_t b) {
  // Laid out, the blocks have no gaps and each has its layout tables: a swap may move a row into any of them.
  if (laid_out_) {
    while (blocks_.size() <= b) {
      blocks_.emplace_back();
      Publish(blocks_.size() - 1);
      LayoutTablesAt(blocks_.size() - 1);
    }
    return blocks_[b].get();
  }
  if (b >= blocks_.size()) blocks_.resize(b + 1);
  if (!blocks_[b]) Publish(b);
  return blocks_[b].get();
}

void SlotCodeBlocks::Publish(size_t b) {
  blocks_[b] = NewBlock();
  table_[b].store(blocks_[b].get(), std::memory_order_release);
}

void SlotCodeBlocks::LayoutTablesAt(size_t b) {
  if (b >= row_of_blocks_.size()) {
    row_of_blocks_.resize(b + 1);
    slot_of_blocks_.resize(b + 1);
  }
  if (row_of_blocks_[b]) return;
  auto rows = std::make_unique<int32_t[]>(kBlockSlots);
  auto slots = std::make_unique<int32_t[]>(kBlockSlots);
  for (size_t i = 0; i < kBlockSlots; ++i) rows[i] = slots[i] = static_cast<int32_t>(b * kBlockSlots + i);
  row_of_[b].store(rows.get(), std::memory_order_release);
  row_of_blocks_[b] = std::move(rows);
  slot_of_blocks_[b] = std::move(slots);
}

void SlotCodeBlocks::Rows(const int32_t* slots, size_t n, const uint8_t** rows) const {
  constexpr size_t kAhead = 16;
  if (__atomic_load_n(&laid_out_, __ATOMIC_ACQUIRE)) {
    const auto entry = [&](size_t i) {
      if (slots[i] < 0) return;
      const auto slot = static_cast<size_t>(slots[i]);
      const int32_t* table = row_of_[slot / kBlockSlots].load(std::memory_order_acquire);
      if (table != nullptr) __builtin_prefetch(table + slot % kBlockSlots);
    };
    for (size_t i = 0; i < n && i < kAhead; ++i) entry(i);
    for (size_t i = 0; i < n; ++i) {
      if (i + kAhead < n) entry(i + kAhead);
      rows[i] = Row(slots[i]);
    }
    return;
  }
  for (size_t i = 0; i < n; ++i) rows[i] = Row(slots[i]);
}

void SlotCodeBlocks::PlanLayout(const int32_t* slots, size_t count) {
  if (!row_of_) {
    row_of_.reset(static_cast<std::atomic<int32_t*>*>(std::calloc(kMaxBlocks, sizeof(std::atomic<int32_t*>))));
    if (!row_of_) throw std::bad_alloc();
  }
  // Every block of rows the slots cover exists before a row moves, so that a swap never meets a missing one.
  for (size_t b = 0; b < blocks_.size(); ++b) {
    if (!blocks_[b]) Publish(b);
    LayoutTablesAt(b);
  }
  __atomic_store_n(&laid_out_, true, __ATOMIC_RELEASE);
  plan_.assign(slots, slots + count);
  plan_at_ = 0;
  next_row_ = 0;
  swap_row_.resize(code_size_);
}

size_t SlotCodeBlocks::LayoutStep(size_t positions) {
  const size_t covered = blocks_.size() * kBlockSlots;
  const uint32_t seq = layout_seq_;
  __atomic_store_n(&layout_seq_, seq + 1, __ATOMIC_RELAXED);
  std::atomic_thread_fence(std::memory_order_release);
  for (size_t done = 0; plan_at_ < plan_.size() && done < positions; ++plan_at_, ++done) {
    const int32_t slot = plan_[plan_at_];
    if (slot < 0 || static_cast<size_t>(slot) >= covered) continue;
    const size_t row = static_cast<size_t>(SlotRow(static_cast<size_t>(slot)));
    if (row < next_row_) continue;  // given twice: placed already
    if (row != next_row_) SwapRows(next_row_, row);
    ++next_row_;
  }
  __atomic_store_n(&layout_seq_, seq + 2, __ATOMIC_RELEASE);
  const size_t left = plan_.size() - plan_at_;
  if (left == 0) {
    plan_.clear();
    plan_.shrink_to_fit();
    plan_at_ = 0;
  }
  return left;
}

// Rows a and b trade places, codes and owners.
void SlotCodeBlocks::SwapRows(size_t a, size_t b) {
  uint8_t* row_a = blocks_[a / kBlockSlots].get() + (a % kBlockSlots) * code_size_;
  uint8_t* row_b = blocks_[b / kBlockSlots].get() + (b % kBlockSlots) * code_size_;
  std::memcpy(swap_row_.data(), row_a, code_size_);
  std::memcpy(row_a, row_b, code_size_);
  std::memcpy(row_b, swap_row_.data(), code_size_);
  const int32_t slot_a = RowSlot(a), slot_b = RowSlot(b);
  __atomic_store_n(&SlotRow(static_cast<size_t>(slot_a)), static_cast<int32_t>(b), __ATOMIC_RELAXED);
  __atomic_store_n(&SlotRow(static_cast<size_t>(slot_b)), static_cast<int32_t>(a), __ATOMIC_RELAXED);
  RowSlot(a) = slot_b;
  RowSlot(b) = slot_a;
}

SlotCodeBlocks::Block SlotCodeBlocks::NewBlock() const {
  const size_t bytes = kBlockSlots * code_size_;
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) throw std::bad_alloc();
  if (huge_pages_) ::madvise(p, bytes, MADV_HUGEPAGE);  // advice only: a kernel without THP refuses it, and that is fine
  return Block(static_cast<uint8_t*>(p), Unmap{bytes});
}

void SlotCodeBlocks::Put(const int32_t* slots, size_t count, const uint8_t* codes) {
  for (size_t r = 0; r < count; ++r) {
    int32_t slot = slots[r];
    if (slot < 0) throw CodedError(kErrInvalidInput, "slots must be >= 0");
    BlockAt(static_cast<size_t>(slot) / kBlockSlots);  // with its layout tables, when laid out
    const size_t row = RowOf(static_cast<size_t>(slot));
    uint8_t* block = BlockAt(row / kBlockSlots);
    std::copy_n(codes + r * code_size_, code_size_, block + (row % kBlockSlots) * code_size_);
  }
}

std::vector<SlotCodeBlocks::Segment> SlotCodeBlocks::Reserve(int64_t offset, size_t count) {
  if (laid_out_) throw CodedError(kErrVector, "codes laid out already: read the file into a new holder");
  const size_t blocks = (count + kBlockSlots - 1) / kBlockSlots;
  std::vector<Segment> segments;
  for (size_t b = 0; b < blocks; ++b) {
    const size_t bytes = (std::min(count, (b + 1) * kBlockSlots) - b * kBlockSlots) * code_size_;
    segments.push_back({BlockAt(b), bytes, offset + static_cast<int64_t>(b * kBlockSlots * code_size_)});
  }
  return segments;
}

void SlotCodeBlocks::ReadSegments(int fd, const std::vector<Segment>& segments) {
  for (const Segment& segment : segments) {
    size_t done = 0;
    while (done < segment.bytes) {
      ssize_t got = ::pread(fd, segment.into + done, segment.bytes - done, static_cast<off_t>(segment.at + static_cast<int64_t>(done)));
      if (got < 0 && errno == EINTR) continue;
      if (got < 0) throw CodedError(kErrVector, std::string("pread of the codes file: ") + std::strerror(errno));
      if (got == 0) throw CodedError(kErrVector, "the codes file ended before its last slot");
      done += static_cast<size_t>(got);
    }
  }
}

void BelowExact(std::vector<float>& scores, const std::vector<int32_t>& exact, float sign, const std::vector<int32_t>& kept) {
  if (exact.empty()) return;
  std::vector<uint8_t> is_exact(scores.size());
  for (int32_t p : kept) is_exact[static_cast<size_t>(p)] = 1;
  double worst = std::numeric_limits<double>::infinity();
  for (int32_t p : exact) {
    is_exact[static_cast<size_t>(p)] = 1;
    const double v = static_cast<double>(sign) * scores[static_cast<size_t>(p)];
    if (std::isnan(v)) return;  // as Math.min: a NaN worst compares false below
    worst = std::min(worst, v);
  }
  double best = -std::numeric_limits<double>::infinity();
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!is_exact[i] && std::isfinite(scores[i])) best = std::max(best, static_cast<double>(sign) * scores[i]);
  }
  if (best == -std::numeric_limits<double>::infinity() || !(best >= worst)) return;
  const double gap = best - worst + std::max(std::fabs(worst) * 0x1p-20, 0x1p-100);
  const double below = worst - std::fabs(worst) * 0x1p-20 - 0x1p-100;
  for (size_t i = 0; i < scores.size(); ++i) {
    if (is_exact[i] || !std::isfinite(scores[i])) continue;
    const double moved = static_cast<float>(static_cast<double>(sign) * scores[i] - gap);
    scores[i] = static_cast<float>(sign * (moved < worst ? moved : below));
  }
}

std::vector<int32_t> BestPositions(const std::vector<float>& scores, float sign, size_t count) {
  std::vector<int32_t> heap;
  if (count == 0) return heap;
  heap.reserve(std::min(count, scores.size()));
  // before(a, b): a ranks before b. As the heap's "less", it keeps the worst kept position at the root.
  auto before = [&](int32_t a, int32_t b) {
    const float sa = sign * scores[static_cast<size_t>(a)], sb = sign * scores[static_cast<size_t>(b)];
    return sa > sb || (sa == sb && a < b);
  };
  for (size_t i = 0; i < scores.size(); ++i) {
    if (!std::isfinite(scores[i])) continue;
    const auto p = static_cast<int32_t>(i);
    if (heap.size() < count) {
      heap.push_back(p);
      std::push_heap(heap.begin(), heap.end(), before);
    } else if (before(p, heap.front())) {
      std::pop_heap(heap.begin(), heap.end(), before);
      heap.back() = p;
      std::push_heap(heap.begin(), heap.end(), before);
    }
  }
  std::sort_heap(heap.begin(), heap.end(), before);
  return heap;
}

size_t SlotCodeBlocks::Bytes() const {
  size_t allocated = 0;
  for (const auto& block : blocks_) allocated += block ? kBlockSlots * code_size_ : 0;
  for (const auto& rows : row_of_blocks_) allocated += rows ? 2 * kBlockSlots * sizeof(int32_t) : 0;
  return allocated;
}

void SlotCodeBlocks::Clear() {
  for (size_t b = 0; b < blocks_.size(); ++b) table_[b].store(nullptr, std::memory_order_relaxed);
  blocks_.clear();
  blocks_.shrink_to_fit();
  __atomic_store_n(&laid_out_, false, __ATOMIC_RELAXED);
  for (size_t b = 0; b < row_of_blocks_.size(); ++b) row_of_[b].store(nullptr, std::memory_order_relaxed);
  row_of_blocks_.clear();
  slot_of_blocks_.clear();
  plan_.clear();
}

Napi::Uint8Array GetUint8Array(const Napi::Value& value, const char* name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_uint8_array) {
    throw CodedError(kErrInvalidInput, std::string(name) + " must be a Uint8Array");
  }
  return value.As<Napi::Uint8Array>();
}

void CheckPut(Int32View slots, const Napi::Uint8Array& codes, size_t code_size) {
  if (codes.ElementLength() != slots.length * code_size) throw CodedError(kErrDimension, "codes must hold slots.length * code size bytes");
  for (size_t r = 0; r < slots.length; ++r) {
    if (slots.data[r] < 0) throw CodedError(kErrInvalidInput, "slots must be >= 0");
  }
}

bool HugePagesArg(const Napi::Value& value) {
  if (value.IsUndefined()) return true;
  if (!value.IsBoolean()) throw CodedError(kErrInvalidInput, "hugePages must be a boolean");
  return value.As<Napi::Boolean>().Value();
}

void ThrowIfClosed(bool closed, const char* name) {
  if (closed) throw CodedError(kErrVector, std::string(name) + " is closed");
}

bool ParseMetric(const Napi::Value& value) {
  std::string metric = value.IsString() ? value.As<Napi::String>().Utf8Value() : "";
  if (metric != "ip" && metric != "l2") throw CodedError(kErrInvalidInput, "metric must be \"ip\" or \"l2\"");
  return metric == "ip";
}

}  // namespace sidx
