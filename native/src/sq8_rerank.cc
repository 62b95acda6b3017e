#include "sq8_rerank.h"

#include <algorithm>
#include <cmath>

#include "slot_codes.h"
#include "slot_map.h"
#include "sq8_codes.h"
#include "subset_scoring.h"

namespace sidx {
namespace {

// Keys resolved this many ahead have their dense-map entry prefetched: at 1M items the map is 4 MB, and each lookup
// of a candidate's slot is otherwise a cache miss of its own.
constexpr size_t kKeysAhead = 16;

// One rerank: the candidates' code scores, the exact re-score of the best R of them (ties in position order), kept
// above the others (BelowExact), and the best `head` positions. The codes stay allocated until it is done (CodesWrap's
// in-flight count defers a close), as does the vector file's mapping (SlotMapWrap::PinMapping). Run on a pool thread,
// a row rewritten meanwhile belongs to a slot that changed owner: the caller (vector/code-store.ts) notices the write
// and scores again.
class Sq8Ranking {
 public:
  Sq8Ranking(Sq8Codes* codes, FloatView query, const Sq8Candidates& candidates)
      : codes_(codes), query_(query.data, query.data + query.length), in_(candidates),
        scores_(candidates.keys.data != nullptr ? candidates.keys.length : candidates.slots.length) {
    codes_->Started();
  }
  ~Sq8Ranking() {
    codes_->Settled();
    if (map_ != nullptr) map_->Settled();
  }
  Sq8Ranking(const Sq8Ranking&) = delete;
  Sq8Ranking& operator=(const Sq8Ranking&) = delete;

  void Rescore(const Sq8Rescore& r) {
    pinned_ = in_.keys.data != nullptr ? r.map->PinMapping(r.cover_rows) : r.map->PinMapping(in_.slots);
    map_ = r.map;
    rescore_ = r.rescore;
    head_ = r.head;
  }

  // The query's tables are built here (from a copy of the query): off the JS thread when a pool thread runs it.
  void Compute() {
    const int32_t* slots = in_.slots.data;
    if (in_.keys.data != nullptr) {
      ResolveKeys();
      slots = resolved_.data();
    }
    codes_->ScoreSlots(codes_->Tables(query_.data()), slots, scores_.size(), scores_.data());
    if (map_ == nullptr || rescore_ == 0) return;
    const float sign = map_->inner_product() ? 1.0f : -1.0f;
    chosen_ = BestPositions(scores_, sign, rescore_);
    std::sort(chosen_.begin(), chosen_.end());
    std::vector<const float*> rows(chosen_.size());
    std::vector<float> exact(chosen_.size());
    for (size_t i = 0; i < chosen_.size(); ++i) rows[i] = map_->RowIn(pinned_, slots[chosen_[i]]);
    ScoreRows(rows.data(), query_.data(), rows.size(), query_.size(), map_->inner_product(), exact.data());
    for (size_t i = 0; i < chosen_.size(); ++i) scores_[chosen_[i]] = exact[i];
    BelowExact(scores_, chosen_, sign);
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

  static Napi::Int32Array ToInt32Array(Napi::Env env, const std::vector<int32_t>& v) {
    Napi::Int32Array out = Napi::Int32Array::New(env, v.size());
    std::copy(v.begin(), v.end(), out.Data());
    return out;
  }

  Sq8Codes* codes_;
  std::vector<float> query_;
  Sq8Candidates in_;
  std::vector<int32_t> resolved_;
  size_t unresolved_ = 0;
  std::vector<float> scores_;
  SlotMapWrap* map_ = nullptr;
  SlotMapWrap::Pinned pinned_;
  size_t rescore_ = 0;
  int64_t head_ = -1;  // no `top`
  std::vector<int32_t> chosen_;
  std::vector<int32_t> top_;
};

// A ranking on the libuv pool; its JS inputs are kept until it settles.
class Sq8RerankWorker : public PromiseWorker {
 public:
  Sq8RerankWorker(Napi::Env env, Sq8Codes* codes, FloatView query, const Sq8Candidates& candidates)
      : PromiseWorker(env, "sidx.sq8Rerank"), ranking_(codes, query, candidates) {}

  void Pin(const std::vector<Napi::Value>& values) {
    for (const Napi::Value& v : values) Keep(v);
  }
  Sq8Ranking& ranking() { return ranking_; }

 protected:
  void Run() override { ranking_.Compute(); }
  Napi::Value Result(Napi::Env env) override { return ranking_.Result(env); }

 private:
  Sq8Ranking ranking_;
};

}  // namespace

Napi::Value StartSq8Rerank(Napi::Env env, Sq8Codes* codes, const std::vector<Napi::Value>& pinned, FloatView query,
                           const Sq8Candidates& candidates, const Sq8Rescore* rescore) {
  auto* worker = new Sq8RerankWorker(env, codes, query, candidates);
  try {
    worker->Pin(pinned);
    if (rescore != nullptr) worker->ranking().Rescore(*rescore);
  } catch (...) {
    delete worker;
    throw;
  }
  return StartWorker(worker);
}

Napi::Value RankSq8Now(Napi::Env env, Sq8Codes* codes, FloatView query, const Sq8Candidates& candidates,
                       const Sq8Rescore& rescore) {
  Sq8Ranking ranking(codes, query, candidates);
  ranking.Rescore(rescore);
  ranking.Compute();
  return ranking.Result(env);
}

}  // namespace sidx
