#include "sq8_rerank.h"

#include <algorithm>
#include <cmath>

#include "slot_codes.h"
#include "slot_map.h"
#include "sq8_codes.h"
#include "subset_scoring.h"

namespace sidx {
namespace {

// The codes stay allocated until the task settles (CodesWrap's in-flight count defers a close), as does the vector
// file's mapping (SlotMapWrap::PinMapping). A row rewritten meanwhile belongs to a slot that changed owner: the caller
// (vector/code-store.ts) notices the write and scores again. With a rescore count R, the best R code scores (ties in
// position order) are replaced by exact scores of their rows and kept above the others (BelowExact).
class Sq8RerankWorker : public PromiseWorker {
 public:
  // The query's tables are built in Run (from a copy of the query), off the JS thread.
  Sq8RerankWorker(Napi::Env env, Sq8Codes* codes, FloatView query, const Sq8Candidates& candidates)
      : PromiseWorker(env, "sidx.sq8Rerank"), codes_(codes), query_(query.data, query.data + query.length), in_(candidates),
        scores_(candidates.keys.data != nullptr ? candidates.keys.length : candidates.slots.length) {
    codes_->Started();
  }
  ~Sq8RerankWorker() override {
    codes_->Settled();
    if (map_ != nullptr) map_->Settled();
  }

  void Pin(const std::vector<Napi::Value>& values) {
    for (const Napi::Value& v : values) Keep(v);
  }

  void Rescore(const Sq8Rescore& r) {
    pinned_ = in_.keys.data != nullptr ? r.map->PinMapping(r.cover_rows) : r.map->PinMapping(in_.slots);
    map_ = r.map;
    rescore_ = r.rescore;
    head_ = r.head;
  }

 protected:
  void Run() override {
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

  Napi::Value Result(Napi::Env env) override {
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
    resolved_.resize(in_.keys.length);
    const int32_t* dense = in_.dense.data;
    for (size_t i = 0; i < in_.keys.length; ++i) {
      const int64_t key = in_.keys.data[i];
      if (key < 0 || static_cast<uint64_t>(key) >= in_.dense_keys) {
        resolved_[i] = -1;
        ++unresolved_;
      } else {
        resolved_[i] = static_cast<uint64_t>(key) < in_.dense.length ? __atomic_load_n(dense + key, __ATOMIC_ACQUIRE) - 1 : -1;
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

}  // namespace

Napi::Value StartSq8Rerank(Napi::Env env, Sq8Codes* codes, const std::vector<Napi::Value>& pinned, FloatView query,
                           const Sq8Candidates& candidates, const Sq8Rescore* rescore) {
  auto* worker = new Sq8RerankWorker(env, codes, query, candidates);
  try {
    worker->Pin(pinned);
    if (rescore != nullptr) worker->Rescore(*rescore);
  } catch (...) {
    delete worker;
    throw;
  }
  return StartWorker(worker);
}

}  // namespace sidx
