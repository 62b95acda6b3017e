#include "index_wrap.h"

#include <faiss/IVFlib.h>
#include <faiss/IndexFlatCodes.h>
#include <faiss/AutoTune.h>
#include <faiss/IndexIVF.h>
#include <faiss/impl/IDSelector.h>
#include <faiss/index_factory.h>
#include <faiss/index_io.h>

#include <cmath>
#include <limits>
#include <mutex>
#include <string>
#include <unordered_set>

#include "boundary.h"
#include "subset_scoring.h"

namespace sidx {
namespace {

struct AddonData {
  Napi::FunctionReference index_constructor;
};

const char* MetricName(faiss::MetricType metric) {
  return metric == faiss::METRIC_INNER_PRODUCT ? "ip" : "l2";
}

std::unique_ptr<faiss::IndexIDMap2> BuildIndex(int64_t dim, const std::string& metric, const std::string& description) {
  if (metric != "ip" && metric != "l2") throw CodedError(kErrInvalidInput, "metric must be \"ip\" or \"l2\"");
  if (description.find("IDMap") != std::string::npos) {
    throw CodedError(kErrInvalidInput, "factory description must not contain IDMap: the index is always wrapped in IDMap2");
  }
  faiss::MetricType faiss_metric = metric == "ip" ? faiss::METRIC_INNER_PRODUCT : faiss::METRIC_L2;
  std::unique_ptr<faiss::Index> storage(faiss::index_factory(static_cast<int>(dim), description.c_str(), faiss_metric));
  // scoreSubset reconstructs IVF vectors by position, which needs the IVF direct map (sequential ids suffice:
  // IndexIDMap2 adds to its storage with positions 0..n-1).
  if (faiss::IndexIVF* ivf = faiss::ivflib::try_extract_index_ivf(storage.get())) ivf->make_direct_map(true);
  auto index = std::make_unique<faiss::IndexIDMap2>(storage.get());
  index->own_fields = true;
  storage.release();
  return index;
}

// Rejects ids already stored or repeated within the batch: IndexIDMap2 would silently desynchronise rev_map.
void CheckNewIds(const faiss::IndexIDMap2& index, const int64_t* ids, size_t count) {
  std::unordered_set<int64_t> seen;
  seen.reserve(count);
  for (size_t i = 0; i < count; ++i) {
    if (index.rev_map.count(ids[i]) != 0 || !seen.insert(ids[i]).second) {
      throw CodedError(kErrDuplicateId, "id " + std::to_string(ids[i]) + " is already in the index or repeated in the batch");
    }
  }
}

void AddLocked(faiss::IndexIDMap2& index, size_t count, const float* vectors, const int64_t* ids) {
  if (count == 0) return;
  CheckNewIds(index, ids, count);
  index.add_with_ids(static_cast<faiss::Index::idx_t>(count), vectors, ids);
}

// Validates an (n x d vectors, n ids) pair and returns n.
size_t CheckBatch(const FloatView& vectors, const IdView& ids, size_t dim) {
  size_t rows = RowCount(vectors, dim, "vectors");
  if (ids.length != rows) {
    throw CodedError(kErrInvalidInput, "ids has " + std::to_string(ids.length) + " entries but vectors has " +
                                           std::to_string(rows) + " rows");
  }
  return rows;
}

class AddWorker : public PromiseWorker {
 public:
  AddWorker(Napi::Env env, std::shared_ptr<IndexState> state, const Napi::Value& vectors_value, const Napi::Value& ids_value)
      : PromiseWorker(env, "sidx.Index.addAsync"), state_(std::move(state)) {
    vectors_ = GetFloat32Array(vectors_value, "vectors");
    ids_ = GetBigInt64Array(ids_value, "ids");
    rows_ = CheckBatch(vectors_, ids_, static_cast<size_t>(state_->index->d));
    Keep(vectors_value);
    Keep(ids_value);
  }

 protected:
  void Run() override {
    std::unique_lock lock(state_->mutex);
    AddLocked(*state_->index, rows_, vectors_.data, ids_.data);
  }

 private:
  std::shared_ptr<IndexState> state_;
  FloatView vectors_{};
  IdView ids_{};
  size_t rows_ = 0;
};

class TrainWorker : public PromiseWorker {
 public:
  TrainWorker(Napi::Env env, std::shared_ptr<IndexState> state, const Napi::Value& vectors_value)
      : PromiseWorker(env, "sidx.Index.train"), state_(std::move(state)) {
    vectors_ = GetFloat32Array(vectors_value, "vectors");
    rows_ = RowCount(vectors_, static_cast<size_t>(state_->index->d), "vectors");
    if (rows_ == 0) throw CodedError(kErrInvalidInput, "training needs at least one vector");
    Keep(vectors_value);
  }

 protected:
  void Run() override {
    std::unique_lock lock(state_->mutex);
    state_->index->train(static_cast<faiss::Index::idx_t>(rows_), vectors_.data);
  }

 private:
  std::shared_ptr<IndexState> state_;
  FloatView vectors_{};
  size_t rows_ = 0;
};

class SearchWorker : public PromiseWorker {
 public:
  SearchWorker(Napi::Env env, std::shared_ptr<IndexState> state, const Napi::Value& queries_value, int64_t k)
      : PromiseWorker(env, "sidx.Index.search"), state_(std::move(state)), k_(k) {
    queries_ = GetFloat32Array(queries_value, "queries");
    rows_ = RowCount(queries_, static_cast<size_t>(state_->index->d), "queries");
    // Bounds n * k before it sizes the output buffers FAISS writes into (an overflow would under-allocate).
    constexpr uint64_t kMaxResults = uint64_t{1} << 32;
    if (static_cast<uint64_t>(k_) > kMaxResults || (rows_ > 0 && static_cast<uint64_t>(k_) > kMaxResults / rows_)) {
      throw CodedError(kErrInvalidInput, "n * k = " + std::to_string(rows_) + " * " + std::to_string(k_) +
                                             " results is too large");
    }
    // Outputs are allocated here, on the JS thread, and filled in place by FAISS on the pool thread.
    Napi::Float32Array distances = Napi::Float32Array::New(env, rows_ * static_cast<size_t>(k_));
    Napi::BigInt64Array labels = Napi::BigInt64Array::New(env, rows_ * static_cast<size_t>(k_));
    distances_ = distances.Data();
    labels_ = labels.Data();
    Keep(queries_value);
    Keep(distances);
    Keep(labels);
    distances_ref_ = Napi::Persistent(distances);
    labels_ref_ = Napi::Persistent(labels);
  }

 protected:
  void Run() override {
    if (rows_ == 0) return;
    std::shared_lock lock(state_->mutex);
    state_->index->search(static_cast<faiss::Index::idx_t>(rows_), queries_.data, k_, distances_, labels_);
    lock.unlock();
    const size_t total = rows_ * static_cast<size_t>(k_);
    for (size_t i = 0; i < total; ++i) {
      if (labels_[i] < 0) distances_[i] = std::numeric_limits<float>::quiet_NaN();
    }
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object result = Napi::Object::New(env);
    result.Set("distances", distances_ref_.Value());
    result.Set("labels", labels_ref_.Value());
    return result;
  }

 private:
  std::shared_ptr<IndexState> state_;
  int64_t k_;
  FloatView queries_{};
  size_t rows_ = 0;
  float* distances_ = nullptr;
  int64_t* labels_ = nullptr;
  Napi::Reference<Napi::Float32Array> distances_ref_;
  Napi::Reference<Napi::BigInt64Array> labels_ref_;
};

class WriteWorker : public PromiseWorker {
 public:
  WriteWorker(Napi::Env env, std::shared_ptr<IndexState> state, std::string path)
      : PromiseWorker(env, "sidx.Index.write"), state_(std::move(state)), path_(std::move(path)) {}

 protected:
  void Run() override {
    std::shared_lock lock(state_->mutex);
    faiss::write_index(state_->index.get(), path_.c_str());
  }

 private:
  std::shared_ptr<IndexState> state_;
  std::string path_;
};

class ReadWorker : public PromiseWorker {
 public:
  ReadWorker(Napi::Env env, std::string path) : PromiseWorker(env, "sidx.readIndex"), path_(std::move(path)) {}

 protected:
  void Run() override {
    std::unique_ptr<faiss::Index> loaded(faiss::read_index(path_.c_str()));
    auto* id_map = dynamic_cast<faiss::IndexIDMap2*>(loaded.get());
    if (id_map == nullptr) {
      throw CodedError(kErrVector, path_ + " holds a FAISS index that is not IndexIDMap2-wrapped; sidx cannot use its ids");
    }
    if (id_map->metric_type != faiss::METRIC_INNER_PRODUCT && id_map->metric_type != faiss::METRIC_L2) {
      throw CodedError(kErrVector, path_ + " uses a metric other than inner product or L2");
    }
    loaded.release();
    index_.reset(id_map);
  }

  Napi::Value Result(Napi::Env env) override { return IndexWrap::NewInstance(env, std::move(index_)); }

 private:
  std::string path_;
  std::unique_ptr<faiss::IndexIDMap2> index_;
};

std::string GetPath(const Napi::Value& value) {
  if (!value.IsString() || value.As<Napi::String>().Utf8Value().empty()) {
    throw CodedError(kErrInvalidInput, "path must be a non-empty string");
  }
  return value.As<Napi::String>().Utf8Value();
}

}  // namespace

Napi::Function IndexWrap::Define(Napi::Env env) {
  Napi::Function constructor = DefineClass(
      env, "Index",
      {
          InstanceAccessor<&IndexWrap::Dim>("dim"),
          InstanceAccessor<&IndexWrap::Metric>("metric"),
          InstanceAccessor<&IndexWrap::Ntotal>("ntotal"),
          InstanceAccessor<&IndexWrap::IsTrained>("isTrained"),
          InstanceMethod<&IndexWrap::Add>("add"),
          InstanceMethod<&IndexWrap::AddAsync>("addAsync"),
          InstanceMethod<&IndexWrap::Train>("train"),
          InstanceMethod<&IndexWrap::Remove>("remove"),
          InstanceMethod<&IndexWrap::ScoreSubset>("scoreSubset"),
          InstanceMethod<&IndexWrap::Search>("search"),
          InstanceMethod<&IndexWrap::SetSearchParameter>("setSearchParameter"),
          InstanceMethod<&IndexWrap::Write>("write"),
          InstanceMethod<&IndexWrap::Close>("close"),
          InstanceMethod<&IndexWrap::Noop>("noop"),
      });
  auto* data = new AddonData();
  data->index_constructor = Napi::Persistent(constructor);
  env.SetInstanceData<AddonData>(data);
  return constructor;
}

Napi::Object IndexWrap::NewInstance(Napi::Env env, std::unique_ptr<faiss::IndexIDMap2> index) {
  // The External carries ownership into the constructor, which adopts it before anything can throw.
  auto external = Napi::External<faiss::IndexIDMap2>::New(env, index.release());
  return env.GetInstanceData<AddonData>()->index_constructor.New({external});
}

IndexWrap::IndexWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<IndexWrap>(info) {
  Guard(info.Env(), [&] {
    if (info.Length() == 1 && info[0].IsExternal()) {
      std::unique_ptr<faiss::IndexIDMap2> adopted(info[0].As<Napi::External<faiss::IndexIDMap2>>().Data());
      state_ = std::make_shared<IndexState>(std::move(adopted));
      return;
    }
    int64_t dim = GetPositiveInt(info[0], "dim");
    if (dim > (1 << 20)) throw CodedError(kErrInvalidInput, "dim must be at most 1048576");
    if (!info[1].IsString()) throw CodedError(kErrInvalidInput, "metric must be \"ip\" or \"l2\"");
    std::string description = "Flat";
    if (info.Length() > 2 && !info[2].IsUndefined()) {
      if (!info[2].IsString()) throw CodedError(kErrInvalidInput, "description must be a string");
      description = info[2].As<Napi::String>().Utf8Value();
    }
    state_ = std::make_shared<IndexState>(BuildIndex(dim, info[1].As<Napi::String>().Utf8Value(), description));
  });
}

std::shared_ptr<IndexState> IndexWrap::Live() const {
  if (!state_) throw CodedError(kErrVector, "the index is closed");
  return state_;
}

Napi::Value IndexWrap::Dim(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] { return Napi::Number::New(info.Env(), static_cast<double>(Live()->index->d)); });
}

Napi::Value IndexWrap::Metric(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] { return Napi::String::New(info.Env(), MetricName(Live()->index->metric_type)); });
}

Napi::Value IndexWrap::Ntotal(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    auto state = Live();
    std::shared_lock lock(state->mutex);
    return Napi::Number::New(info.Env(), static_cast<double>(state->index->ntotal));
  });
}

Napi::Value IndexWrap::IsTrained(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    auto state = Live();
    std::shared_lock lock(state->mutex);
    return Napi::Boolean::New(info.Env(), state->index->is_trained);
  });
}

Napi::Value IndexWrap::Add(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    auto state = Live();
    FloatView vectors = GetFloat32Array(info[0], "vectors");
    IdView ids = GetBigInt64Array(info[1], "ids");
    size_t rows = CheckBatch(vectors, ids, static_cast<size_t>(state->index->d));
    ApplyThreadSetting();
    std::unique_lock lock(state->mutex);
    AddLocked(*state->index, rows, vectors.data, ids.data);
    return info.Env().Undefined();
  });
}

Napi::Value IndexWrap::AddAsync(const Napi::CallbackInfo& info) {
  return GuardAsync(info.Env(), [&] {
    auto worker = std::make_unique<AddWorker>(info.Env(), Live(), info[0], info[1]);
    return StartWorker(worker.release());
  });
}

Napi::Value IndexWrap::Train(const Napi::CallbackInfo& info) {
  return GuardAsync(info.Env(), [&] {
    auto worker = std::make_unique<TrainWorker>(info.Env(), Live(), info[0]);
    return StartWorker(worker.release());
  });
}

// IndexIDMap::remove_ids assumes the storage renumbers survivors in order, which only IndexFlatCodes storages
// (Flat, SQ, PQ, ...) do; on IVF or HNSW it would silently corrupt the id map, so those refuse removal.
Napi::Value IndexWrap::Remove(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    auto state = Live();
    IdView ids = GetBigInt64Array(info[0], "ids");
    if (dynamic_cast<const faiss::IndexFlatCodes*>(state->index->index) == nullptr) {
      throw CodedError(kErrVector, "remove is supported only on flat-code storage (Flat, SQ, PQ); rebuild this index instead");
    }
    std::unique_lock lock(state->mutex);
    if (ids.length == 0 || state->index->ntotal == 0) return Napi::Number::New(info.Env(), 0);
    faiss::IDSelectorBatch selector(static_cast<faiss::Index::idx_t>(ids.length), ids.data);
    return Napi::Number::New(info.Env(), static_cast<double>(state->index->remove_ids(selector)));
  });
}

Napi::Value IndexWrap::ScoreSubset(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    auto state = Live();
    FloatView query = GetFloat32Array(info[0], "query");
    IdView ids = GetBigInt64Array(info[1], "ids");
    if (query.length != static_cast<size_t>(state->index->d)) {
      throw CodedError(kErrDimension, "query has " + std::to_string(query.length) + " floats, expected " +
                                          std::to_string(state->index->d));
    }
    Napi::Float32Array scores = Napi::Float32Array::New(info.Env(), ids.length);
    std::shared_lock lock(state->mutex);
    sidx::ScoreSubset(*state->index, query.data, ids.data, ids.length, scores.Data());
    return scores;
  });
}

Napi::Value IndexWrap::Search(const Napi::CallbackInfo& info) {
  return GuardAsync(info.Env(), [&] {
    auto state = Live();
    int64_t k = GetPositiveInt(info[1], "k");
    auto worker = std::make_unique<SearchWorker>(info.Env(), state, info[0], k);
    return StartWorker(worker.release());
  });
}

// faiss::ParameterSpace names: "nprobe" (IVF), "efSearch" (HNSW), ...; an unknown name or index type throws.
Napi::Value IndexWrap::SetSearchParameter(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    auto state = Live();
    if (!info[0].IsString()) throw CodedError(kErrInvalidInput, "name must be a string");
    if (!info[1].IsNumber()) throw CodedError(kErrInvalidInput, "value must be a number");
    std::string name = info[0].As<Napi::String>().Utf8Value();
    double value = info[1].As<Napi::Number>().DoubleValue();
    if (!std::isfinite(value)) throw CodedError(kErrInvalidInput, "value must be finite");
    std::unique_lock lock(state->mutex);
    faiss::ParameterSpace().set_index_parameter(state->index.get(), name, value);
    return info.Env().Undefined();
  });
}

Napi::Value IndexWrap::Write(const Napi::CallbackInfo& info) {
  return GuardAsync(info.Env(), [&] {
    auto worker = std::make_unique<WriteWorker>(info.Env(), Live(), GetPath(info[0]));
    return StartWorker(worker.release());
  });
}

Napi::Value IndexWrap::Close(const Napi::CallbackInfo& info) {
  state_.reset();
  return info.Env().Undefined();
}

Napi::Value IndexWrap::Noop(const Napi::CallbackInfo& info) {
  return info.Env().Undefined();
}

Napi::Value ReadIndex(const Napi::CallbackInfo& info) {
  return GuardAsync(info.Env(), [&] {
    auto worker = std::make_unique<ReadWorker>(info.Env(), GetPath(info[0]));
    return StartWorker(worker.release());
  });
}

}  // namespace sidx
