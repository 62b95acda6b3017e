#include "slot_map.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <vector>

#include "boundary.h"
#include "subset_scoring.h"

namespace sidx {
namespace {

constexpr size_t kMinMapBytes = size_t{1} << 20;

size_t NextPowerOfTwo(size_t n) {
  size_t p = kMinMapBytes;
  while (p < n) p <<= 1;
  return p;
}

std::string Errno(const std::string& what) {
  return what + ": " + std::strerror(errno);
}

}  // namespace

Napi::Function SlotMapWrap::Define(Napi::Env env) {
  return DefineClass(env, "SlotMap",
                     {
                         InstanceAccessor<&SlotMapWrap::Dim>("dim"),
                         InstanceAccessor<&SlotMapWrap::Metric>("metric"),
                         InstanceAccessor<&SlotMapWrap::Slots>("slots"),
                         InstanceMethod<&SlotMapWrap::RefreshJs>("refresh"),
                         InstanceMethod<&SlotMapWrap::ScoreSlots>("scoreSlots"),
                         InstanceMethod<&SlotMapWrap::ReadScoreSlots>("readScoreSlots"),
                         InstanceMethod<&SlotMapWrap::ScoreSlotsAsync>("scoreSlotsAsync"),
                         InstanceMethod<&SlotMapWrap::Gather>("gather"),
                         InstanceMethod<&SlotMapWrap::Close>("close"),
                     });
}

SlotMapWrap::SlotMapWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<SlotMapWrap>(info) {
  Guard(info.Env(), [&] {
    if (!info[0].IsString()) throw CodedError(kErrInvalidInput, "path must be a string");
    int64_t dim = GetPositiveInt(info[1], "dim");
    if (dim > (1 << 20)) throw CodedError(kErrInvalidInput, "dim must be at most 1048576");
    std::string metric = info[2].IsString() ? info[2].As<Napi::String>().Utf8Value() : "";
    if (metric != "ip" && metric != "l2") throw CodedError(kErrInvalidInput, "metric must be \"ip\" or \"l2\"");
    std::string path = info[0].As<Napi::String>().Utf8Value();
    dim_ = static_cast<size_t>(dim);
    inner_product_ = metric == "ip";
    fd_ = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd_ < 0) throw CodedError(kErrVector, Errno("cannot open vector slot file " + path));
    Refresh();
  });
}

SlotMapWrap::~SlotMapWrap() {
  Unmap();
  if (fd_ >= 0) ::close(fd_);
  if (retired_fd_ >= 0) ::close(retired_fd_);
}

void SlotMapWrap::Unmap() {
  if (base_ != nullptr) {
    if (in_flight_ > 0) {
      retired_.emplace_back(base_, mapped_bytes_);
    } else {
      ::munmap(const_cast<float*>(base_), mapped_bytes_);
    }
  }
  base_ = nullptr;
  mapped_bytes_ = 0;
}

void SlotMapWrap::Settled() {
  if (--in_flight_ > 0) return;
  for (const auto& [base, bytes] : retired_) ::munmap(const_cast<float*>(base), bytes);
  retired_.clear();
  if (retired_fd_ >= 0) ::close(retired_fd_);
  retired_fd_ = -1;
}

void SlotMapWrap::CheckOpen() const {
  if (fd_ < 0 || closed_) throw CodedError(kErrVector, "the slot map is closed");
}

void SlotMapWrap::Refresh() {
  struct stat st;
  if (::fstat(fd_, &st) != 0) throw CodedError(kErrVector, Errno("fstat of the vector slot file"));
  const size_t row_bytes = dim_ * sizeof(float);
  const size_t file_bytes = static_cast<size_t>(st.st_size);
  if (file_bytes > mapped_bytes_) {
    const size_t want = NextPowerOfTwo(file_bytes);
    void* mapped = ::mmap(nullptr, want, PROT_READ, MAP_SHARED, fd_, 0);
    if (mapped == MAP_FAILED) throw CodedError(kErrVector, Errno("mmap of the vector slot file"));
    Unmap();
    base_ = static_cast<const float*>(mapped);
    mapped_bytes_ = want;
  }
  rows_ = file_bytes / row_bytes;
}

void SlotMapWrap::Cover(const int32_t* slots, size_t count) {
  int32_t highest = -1;
  for (size_t i = 0; i < count; ++i) highest = std::max(highest, slots[i]);
  if (highest >= 0 && static_cast<size_t>(highest) >= rows_) Refresh();
}

Napi::Value SlotMapWrap::Dim(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(dim_));
}

Napi::Value SlotMapWrap::Metric(const Napi::CallbackInfo& info) {
  return Napi::String::New(info.Env(), inner_product_ ? "ip" : "l2");
}

Napi::Value SlotMapWrap::Slots(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(rows_));
}

Napi::Value SlotMapWrap::RefreshJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    CheckOpen();
    Refresh();
    return Napi::Number::New(info.Env(), static_cast<double>(rows_));
  });
}

std::pair<FloatView, Int32View> SlotMapWrap::ScoreArgs(const Napi::CallbackInfo& info) {
  CheckOpen();
  FloatView query = GetFloat32Array(info[0], "query");
  Int32View slots = GetInt32Array(info[1], "slots");
  if (query.length != dim_) {
    throw CodedError(kErrDimension, "query has " + std::to_string(query.length) + " floats, expected " + std::to_string(dim_));
  }
  Cover(slots.data, slots.length);  // the one remap, if any, before a row pointer is taken
  return {query, slots};
}

std::vector<const float*> SlotMapWrap::Rows(Int32View slots) const {
  std::vector<const float*> rows(slots.length);
  for (size_t i = 0; i < slots.length; ++i) rows[i] = Row(slots.data[i]);
  return rows;
}

std::vector<const float*> SlotMapWrap::Pin(Int32View slots) {
  std::vector<const float*> rows = Rows(slots);
  ++in_flight_;
  return rows;
}

SlotMapWrap::Pinned SlotMapWrap::PinMapping(Int32View slots) {
  CheckOpen();
  Cover(slots.data, slots.length);
  ++in_flight_;
  return {base_, rows_, fd_};
}

SlotMapWrap::Pinned SlotMapWrap::PinMapping(size_t cover_rows) {
  CheckOpen();
  if (cover_rows > rows_) Refresh();
  ++in_flight_;
  return {base_, rows_, fd_};
}

Napi::Value SlotMapWrap::ScoreSlots(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    auto [query, slots] = ScoreArgs(info);
    std::vector<const float*> rows = Rows(slots);
    Napi::Float32Array scores = Napi::Float32Array::New(info.Env(), slots.length);
    ScoreRows(rows.data(), query.data, slots.length, dim_, inner_product_, scores.Data());
    return scores;
  });
}

void SlotMapWrap::ReadRows(const Pinned& pinned, const int32_t* slots, size_t n, float* buffer, const float** rows) const {
  const size_t row_bytes = dim_ * sizeof(float);
  for (size_t i = 0; i < n; ++i) {
    rows[i] = nullptr;
    const int32_t slot = slots[i];
    if (slot < 0 || static_cast<size_t>(slot) >= pinned.rows) continue;
    char* into = reinterpret_cast<char*>(buffer + i * dim_);
    const off_t at = static_cast<off_t>(slot) * static_cast<off_t>(row_bytes);
    size_t done = 0;
    while (done < row_bytes) {
      ssize_t got = ::pread(pinned.fd, into + done, row_bytes - done, at + static_cast<off_t>(done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) throw CodedError(kErrVector, Errno("pread of the vector slot file"));
      done += static_cast<size_t>(got);
    }
    rows[i] = buffer + i * dim_;
  }
}

Napi::Value SlotMapWrap::ReadScoreSlots(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    auto [query, slots] = ScoreArgs(info);
    std::vector<float> buffer(slots.length * dim_);
    std::vector<const float*> rows(slots.length);
    ReadRows({base_, rows_, fd_}, slots.data, slots.length, buffer.data(), rows.data());
    Napi::Float32Array scores = Napi::Float32Array::New(info.Env(), slots.length);
    ScoreRows(rows.data(), query.data, slots.length, dim_, inner_product_, scores.Data());
    return scores;
  });
}

// Scores rows the JS thread pinned (Pin), on the libuv pool; the owner (kept reachable) learns when it settled.
class ScoreSlotsWorker : public PromiseWorker {
 public:
  ScoreSlotsWorker(Napi::Env env, SlotMapWrap* owner, Napi::Object self, const float* query, std::vector<const float*> rows)
      : PromiseWorker(env, "sidx.scoreSlots"),
        owner_(owner),
        query_(query, query + owner->dim_),
        rows_(std::move(rows)),
        scores_(rows_.size()) {
    Keep(self);
  }
  // Runs on the JS thread once the promise is settled (AsyncWorker deletes itself there).
  ~ScoreSlotsWorker() override { owner_->Settled(); }

 protected:
  void Run() override {
    ScoreRows(rows_.data(), query_.data(), rows_.size(), query_.size(), owner_->inner_product_, scores_.data());
  }
  Napi::Value Result(Napi::Env env) override {
    Napi::Float32Array out = Napi::Float32Array::New(env, scores_.size());
    std::memcpy(out.Data(), scores_.data(), scores_.size() * sizeof(float));
    return out;
  }

 private:
  SlotMapWrap* owner_;
  std::vector<float> query_;
  std::vector<const float*> rows_;
  std::vector<float> scores_;
};

Napi::Value SlotMapWrap::ScoreSlotsAsync(const Napi::CallbackInfo& info) {
  return GuardAsync(info.Env(), [&]() -> Napi::Value {
    auto [query, slots] = ScoreArgs(info);
    return StartWorker(new ScoreSlotsWorker(info.Env(), this, info.This().As<Napi::Object>(), query.data, Pin(slots)));
  });
}

Napi::Value SlotMapWrap::Gather(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    CheckOpen();
    Int32View slots = GetInt32Array(info[0], "slots");
    Cover(slots.data, slots.length);
    Napi::Float32Array out = Napi::Float32Array::New(info.Env(), slots.length * dim_);
    for (size_t i = 0; i < slots.length; ++i) {
      const float* row = Row(slots.data[i]);
      if (row == nullptr) {
        throw CodedError(kErrVector, "slot " + std::to_string(slots.data[i]) + " is outside the vector slot file (" +
                                         std::to_string(rows_) + " slots)");
      }
      std::memcpy(out.Data() + i * dim_, row, dim_ * sizeof(float));
    }
    return out;
  });
}

Napi::Value SlotMapWrap::Close(const Napi::CallbackInfo& info) {
  Unmap();  // kept mapped until the async scores in flight settle
  if (fd_ >= 0 && in_flight_ > 0) {
    retired_fd_ = fd_;  // a pool thread may pread it: closed when the last one settles
  } else if (fd_ >= 0) {
    ::close(fd_);
  }
  fd_ = -1;
  closed_ = true;
  rows_ = 0;
  return info.Env().Undefined();
}

}  // namespace sidx
