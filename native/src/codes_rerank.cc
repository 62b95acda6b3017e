#include "codes_rerank.h"

#include <algorithm>
#include <cmath>
#include <iterator>

#include "slot_codes.h"
#include "slot_map.h"
#include "pq_codes.h"
#include "sq8_codes.h"
#include "subset_scoring.h"

namespace sidx {
namespace {

// Keys resolved this many ahead have their dense-map entry prefetched: at 1M items the map is 4 MB, and each lookup
// of a candidate's slot is otherwise a cache miss of its own.
constexpr size_t kKeysAhead = 16;

// One rerank: the candidates' code scores, those whose codes were clamped (sq8's ScoreSlots) re-scored exactly first
// (their code scores may be far off), then the exact re-score of the best R of them all (ties in position order), kept
// above the estimates (BelowExact; a clamped row outside the best R keeps its exact score, unmoved), and the best
// `head` positions. The codes stay allocated until it is done (CodesWrap's in-flight count defers a close), as do the vector file's mapping and descriptor (SlotMapWrap::PinMapping). Run on a
// pool thread, a row rewritten meanwhile belongs to a slot that changed owner: the caller (vector/code-store.ts)
// notices the write and scores again.
template <typename Codes>
class Ranking {
 public:
  Ranking(Codes* codes, FloatView query, const RerankCandidates& candidates)
      : codes_(codes), query_(query.data, query.data + query.length), in_(candidates),
        scores_(candidates.keys.data != nullptr ? candidates.keys.length : candidates.slots.length) {
    codes_->Started();
  }
  ~Ranking() {
    codes_->Settled();
    if (map_ != nullptr) map_->Settled();
  }
  Ranking(const Ranking&) = delete;
  Ranking& operator=(const Ranking&) = delete;

  void Rescore(const RerankRescore& r) {
    pinned_ = in_.keys.data != nullptr ? r.map->PinMapping(r.cover_rows) : r.map->PinMapping(in_.slots);
    map_ = r.map;
    rescore_ = r.rescore;
    head_ = r.head;
    read_ = r.read;
  }

  // The query's tables are built here (from a copy of the query): off the JS thread when a pool thread runs it.
  void Compute() {
    const int32_t* slots = in_.slots.data;
    if (in_.keys.data != nullptr) {
      ResolveKeys();
      slots = resolved_.data();
    }
    const bool rescores = map_ != nullptr && rescore_ > 0;
    std::vector<int32_t> clamped;
    codes_->ScoreSlots(codes_->Tables(query_.data()), slots, scores_.size(), scores_.data(), rescores ? &clamped : nullptr);
    if (!rescores) return;
    const float sign = map_->inner_product() ? 1.0f : -1.0f;
    ScoreExactly(slots, clamped);
    chosen_ = BestPositions(scores_, sign, rescore_);
    std::sort(chosen_.begin(), chosen_.end());
    std::vector<int32_t> fresh;
    std::set_difference(chosen_.begin(), chosen_.end(), clamped.begin(), clamped.end(), std::back_inserter(fresh));
    ScoreExactly(slots, fresh);
    BelowExact(scores_, chosen_, sign, clamped);
    if (!clamped.empty()) {
      std::vector<int32_t> exact;
      std::set_union(chosen_.begin(), chosen_.end(), clamped.begin(), clamped.end(), std::back_inserter(exact));
      chosen_.swap(exact);
    }
    if (head_ > 0) top_ = BestPositions(scores_, sign, static_cast<size_t>(head_));
  }

  // Without a rescore the code scores alone (Float32Array), else {scores, exact, top?, unresolved?}.
  Napi::Value Result(Napi::Env env) const {
    Napi::Float32Array scores = Napi::Float32Array::New(env, scores_.size());
    std::copy(scores_.begin(), scores_.end(), scores.Data());
    if (map_ == nullptr) return scores;
    Napi::Object out = Napi::Object::New(env);
    out.Set("scores", scores);
    out.Set("exact", ToInt32Array(env, chosen_));
    if (head_ >= 0) out.Set("top", ToInt32Array(env, top_));
    if (in_.keys.data != nullptr) out.Set("unresolved", Napi::Number::New(env, static_cast<double>(unresolved_)));
    return out;
  }

 private:
  // keys -> slots through the dense map, read while the JS thread may write it (each entry one aligned int32). Keys
  // below dense_keys past the map's end have no slot; keys at or above it are the slot file's other map's.
  void ResolveKeys() {
    const size_t n = in_.keys.length;
    resolved_.resize(n);
    const int32_t* dense = in_.dense.data;
    const int64_t* keys = in_.keys.data;
    const auto mapped = [&](int64_t key) { return key >= 0 && static_cast<uint64_t>(key) < in_.dense.length; };
    for (size_t i = 0; i < n && i < kKeysAhead; ++i) {
      if (mapped(keys[i])) __builtin_prefetch(dense + keys[i]);
    }
    for (size_t i = 0; i < n; ++i) {
      if (i + kKeysAhead < n && mapped(keys[i + kKeysAhead])) __builtin_prefetch(dense + keys[i + kKeysAhead]);
      const int64_t key = keys[i];
      if (key < 0 || static_cast<uint64_t>(key) >= in_.dense_keys) {
        resolved_[i] = -1;
        ++unresolved_;
      } else {
        resolved_[i] = mapped(key) ? __atomic_load_n(dense + key, __ATOMIC_ACQUIRE) - 1 : -1;
      }
    }
  }

  // scores_[p] = the exact score of the row of slots[p], for each position p of `positions`.
  void ScoreExactly(const int32_t* slots, const std::vector<int32_t>& positions) {
    if (positions.empty()) return;
    const size_t n = positions.size();
    std::vector<const float*> rows(n);
    std::vector<float> exact(n);
    std::vector<int32_t> row_slots(n);
    for (size_t i = 0; i < n; ++i) row_slots[i] = slots[positions[i]];
    std::vector<float> read_rows(read_ ? n * query_.size() : 0);
    if (read_) {
      map_->ReadRows(pinned_, row_slots.data(), n, read_rows.data(), rows.data());
    } else {
      for (size_t i = 0; i < n; ++i) rows[i] = map_->RowIn(pinned_, row_slots[i]);
    }
    ScoreRows(rows.data(), query_.data(), n, query_.size(), map_->inner_product(), exact.data());
    for (size_t i = 0; i < n; ++i) scores_[positions[i]] = exact[i];
  }

  static Napi::Int32Array ToInt32Array(Napi::Env env, const std::vector<int32_t>& v) {
    Napi::Int32Array out = Napi::Int32Array::New(env, v.size());
    std::copy(v.begin(), v.end(), out.Data());
    return out;
  }

  Codes* codes_;
  std::vector<float> query_;
  RerankCandidates in_;
  std::vector<int32_t> resolved_;
  size_t unresolved_ = 0;
  std::vector<float> scores_;
  SlotMapWrap* map_ = nullptr;
  SlotMapWrap::Pinned pinned_;
  size_t rescore_ = 0;
  int64_t head_ = -1;  // no `top`
  bool read_ = false;
  std::vector<int32_t> chosen_;
  std::vector<int32_t> top_;
};

// A ranking on the libuv pool; its JS inputs are kept until it settles.
template <typename Codes>
class RerankWorker : public PromiseWorker {
 public:
  RerankWorker(Napi::Env env, Codes* codes, FloatView query, const RerankCandidates& candidates)
      : PromiseWorker(env, "sidx.rerank"), ranking_(codes, query, candidates) {}

  void Pin(const std::vector<Napi::Value>& values) {
    for (const Napi::Value& v : values) Keep(v);
  }
  Ranking<Codes>& ranking() { return ranking_; }

 protected:
  void Run() override { ranking_.Compute(); }
  Napi::Value Result(Napi::Env env) override { return ranking_.Result(env); }

 private:
  Ranking<Codes> ranking_;
};

}  // namespace

template <typename Codes>
Napi::Value StartRerank(Napi::Env env, Codes* codes, const std::vector<Napi::Value>& pinned, FloatView query,
                        const RerankCandidates& candidates, const RerankRescore* rescore) {
  auto* worker = new RerankWorker<Codes>(env, codes, query, candidates);
  try {
    worker->Pin(pinned);
    if (rescore != nullptr) worker->ranking().Rescore(*rescore);
  } catch (...) {
    delete worker;
    throw;
  }
  return StartWorker(worker);
}

template <typename Codes>
Napi::Value RankNow(Napi::Env env, Codes* codes, FloatView query, const RerankCandidates& candidates,
                    const RerankRescore& rescore) {
  Ranking<Codes> ranking(codes, query, candidates);
  ranking.Rescore(rescore);
  ranking.Compute();
  return ranking.Result(env);
}

template Napi::Value StartRerank<Sq8Codes>(Napi::Env, Sq8Codes*, const std::vector<Napi::Value>&, FloatView, const RerankCandidates&, const RerankRescore*);
template Napi::Value StartRerank<PqCodes>(Napi::Env, PqCodes*, const std::vector<Napi::Value>&, FloatView, const RerankCandidates&, const RerankRescore*);
template Napi::Value RankNow<Sq8Codes>(Napi::Env, Sq8Codes*, FloatView, const RerankCandidates&, const RerankRescore&);
template Napi::Value RankNow<PqCodes>(Napi::Env, PqCodes*, FloatView, const RerankCandidates&, const RerankRescore&);

RerankRescore RescoreArgs(const Napi::CallbackInfo& info, size_t at, size_t dim, bool inner_product) {
  if (!info[at].IsObject()) throw CodedError(kErrInvalidInput, "rows must be a SlotMap");
  RerankRescore r;
  r.map_object = info[at].As<Napi::Object>();
  r.map = Napi::ObjectWrap<SlotMapWrap>::Unwrap(r.map_object);
  if (r.map == nullptr) throw CodedError(kErrInvalidInput, "rows must be a SlotMap");
  if (r.map->dim() != dim || r.map->inner_product() != inner_product) throw CodedError(kErrDimension, "the slot map's dim or metric differs");
  r.rescore = static_cast<size_t>(GetPositiveInt(info[at + 1], "rescore"));
  r.head = info.Length() > at + 2 && !info[at + 2].IsUndefined() ? GetNonNegativeInt(info[at + 2], "head") : -1;
  return r;
}

RankKeysCall RankKeysArgs(const Napi::CallbackInfo& info, size_t dim, bool inner_product) {
  RankKeysCall call;
  call.query = GetFloat32Array(info[0], "query");
  if (call.query.length != dim) throw CodedError(kErrDimension, "query must have dim floats");
  call.candidates.keys = GetBigInt64Array(info[1], "keys");
  call.candidates.dense = GetInt32Array(info[2], "dense");
  call.candidates.dense_keys = static_cast<uint64_t>(GetNonNegativeInt(info[3], "denseKeys"));
  call.rescore = RescoreArgs(info, 5, dim, inner_product);
  call.rescore.cover_rows = static_cast<size_t>(GetNonNegativeInt(info[4], "coverRows"));
  call.rescore.read = info.Length() > 8 && info[8].ToBoolean().Value();
  return call;
}

}  // namespace sidx
