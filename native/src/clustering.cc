#include "clustering.h"

#include <faiss/Clustering.h>
#include <faiss/IndexFlat.h>
#include <faiss/VectorTransform.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "boundary.h"

namespace sidx {
namespace {

// Reads an optional integer option, keeping `fallback` when absent.
int IntOption(const Napi::Object& options, const char* name, int fallback, int minimum) {
  Napi::Value value = options.Get(name);
  if (value.IsUndefined()) return fallback;
  if (!value.IsNumber()) throw CodedError(kErrInvalidInput, std::string(name) + " must be a number");
  double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= minimum) || number > 2147483647.0 || number != static_cast<int>(number)) {
    throw CodedError(kErrInvalidInput, std::string(name) + " must be an integer >= " + std::to_string(minimum));
  }
  return static_cast<int>(number);
}

// The (data, d, k) arguments every function here starts with: rows of d floats and a count k.
struct RowsAndK {
  FloatView data{};
  size_t dim = 0;
  size_t k = 0;
  size_t rows = 0;
};

RowsAndK ReadRowsAndK(const Napi::CallbackInfo& info) {
  RowsAndK in;
  in.data = GetFloat32Array(info[0], "data");
  in.dim = static_cast<size_t>(GetPositiveInt(info[1], "d"));
  in.k = static_cast<size_t>(GetPositiveInt(info[2], "k"));
  in.rows = RowCount(in.data, in.dim, "data");
  return in;
}

Napi::Float32Array CopyToJs(Napi::Env env, const std::vector<float>& values) {
  Napi::Float32Array out = Napi::Float32Array::New(env, values.size());
  std::memcpy(out.Data(), values.data(), values.size() * sizeof(float));
  return out;
}

class KMeansWorker : public PromiseWorker {
 public:
  KMeansWorker(Napi::Env env, const Napi::CallbackInfo& info) : PromiseWorker(env, "sidx.kmeans") {
    RowsAndK in = ReadRowsAndK(info);
    data_ = in.data;
    dim_ = in.dim;
    k_ = in.k;
    rows_ = in.rows;
    if (rows_ < k_) {
      throw CodedError(kErrInvalidInput, "k-means needs at least k = " + std::to_string(k_) + " points, got " +
                                             std::to_string(rows_));
    }
    params_.verbose = false;
    params_.seed = 1234;
    if (info.Length() > 3 && info[3].IsObject()) {
      Napi::Object options = info[3].As<Napi::Object>();
      params_.niter = IntOption(options, "niter", params_.niter, 1);
      params_.seed = IntOption(options, "seed", params_.seed, 0);
      params_.max_points_per_centroid = IntOption(options, "maxPointsPerCentroid", params_.max_points_per_centroid, 1);
      params_.min_points_per_centroid = IntOption(options, "minPointsPerCentroid", params_.min_points_per_centroid, 0);
      Napi::Value spherical = options.Get("spherical");
      if (!spherical.IsUndefined()) params_.spherical = spherical.ToBoolean().Value();
    } else if (info.Length() > 3 && !info[3].IsUndefined()) {
      throw CodedError(kErrInvalidInput, "options must be an object");
    }
    Keep(info[0]);
  }

 protected:
  void Run() override {
    faiss::Clustering clustering(static_cast<int>(dim_), static_cast<int>(k_), params_);
    faiss::IndexFlatL2 assigner(static_cast<faiss::Index::idx_t>(dim_));
    clustering.train(static_cast<faiss::Index::idx_t>(rows_), data_.data, assigner);
    centroids_ = std::move(clustering.centroids);
    objective_.reserve(clustering.iteration_stats.size());
    for (const auto& stats : clustering.iteration_stats) objective_.push_back(stats.obj);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object result = Napi::Object::New(env);
    result.Set("centroids", CopyToJs(env, centroids_));
    result.Set("objective", CopyToJs(env, objective_));
    return result;
  }

 private:
  FloatView data_{};
  size_t dim_ = 0;
  size_t k_ = 0;
  size_t rows_ = 0;
  faiss::ClusteringParameters params_;
  std::vector<float> centroids_;
  std::vector<float> objective_;
};

class AssignWorker : public PromiseWorker {
 public:
  AssignWorker(Napi::Env env, const Napi::CallbackInfo& info) : PromiseWorker(env, "sidx.assign") {
    data_ = GetFloat32Array(info[0], "data");
    dim_ = static_cast<size_t>(GetPositiveInt(info[1], "d"));
    centroids_ = GetFloat32Array(info[2], "centroids");
    k_ = static_cast<size_t>(GetPositiveInt(info[3], "k"));
    rows_ = RowCount(data_, dim_, "data");
    if (centroids_.length != k_ * dim_) {
      throw CodedError(kErrDimension, "centroids has " + std::to_string(centroids_.length) + " floats, expected k * d = " +
                                          std::to_string(k_ * dim_));
    }
    Napi::Int32Array labels = Napi::Int32Array::New(env, rows_);
    Napi::Float32Array distances = Napi::Float32Array::New(env, rows_);
    labels_ = labels.Data();
    distances_ = distances.Data();
    Keep(info[0]);
    Keep(info[2]);
    labels_ref_ = Napi::Persistent(labels);
    distances_ref_ = Napi::Persistent(distances);
  }

 protected:
  void Run() override {
    if (rows_ == 0) return;
    faiss::IndexFlatL2 index(static_cast<faiss::Index::idx_t>(dim_));
    index.add(static_cast<faiss::Index::idx_t>(k_), centroids_.data);
    std::vector<faiss::Index::idx_t> nearest(rows_);
    index.search(static_cast<faiss::Index::idx_t>(rows_), data_.data, 1, distances_, nearest.data());
    for (size_t i = 0; i < rows_; ++i) labels_[i] = static_cast<int32_t>(nearest[i]);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object result = Napi::Object::New(env);
    result.Set("labels", labels_ref_.Value());
    result.Set("distances", distances_ref_.Value());
    return result;
  }

 private:
  FloatView data_{};
  FloatView centroids_{};
  size_t dim_ = 0;
  size_t k_ = 0;
  size_t rows_ = 0;
  int32_t* labels_ = nullptr;
  float* distances_ = nullptr;
  Napi::Reference<Napi::Int32Array> labels_ref_;
  Napi::Reference<Napi::Float32Array> distances_ref_;
};

class PcaWorker : public PromiseWorker {
 public:
  PcaWorker(Napi::Env env, const Napi::CallbackInfo& info) : PromiseWorker(env, "sidx.pca") {
    in_ = ReadRowsAndK(info);
    const size_t dim_ = in_.dim, k_ = in_.k, rows_ = in_.rows;
    if (k_ > dim_) throw CodedError(kErrInvalidInput, "k = " + std::to_string(k_) + " exceeds d = " + std::to_string(dim_));
    if (rows_ < 2 || rows_ < k_) {
      throw CodedError(kErrInvalidInput, "PCA to k = " + std::to_string(k_) + " needs at least max(2, k) rows, got " +
                                             std::to_string(rows_));
    }
    Keep(info[0]);
  }

 protected:
  void Run() override {
    const size_t dim_ = in_.dim, k_ = in_.k, rows_ = in_.rows;
    faiss::PCAMatrix pca(static_cast<int>(dim_), static_cast<int>(k_));
    // faiss trains on at most max_points_per_d * d rows (a subsample beyond) and reports the eigenvalues of that
    // sample's unnormalised scatter matrix: variances are them / the sample's rows.
    const size_t sample = std::min(rows_, pca.max_points_per_d * dim_);
    pca.train(static_cast<faiss::Index::idx_t>(rows_), in_.data.data);
    // faiss stores A as [k, d] (y = A x + b); the result is its transpose [d, k] for row-vector products x W + b.
    weight_.resize(dim_ * k_);
    for (size_t j = 0; j < k_; ++j) {
      for (size_t i = 0; i < dim_; ++i) weight_[i * k_ + j] = pca.A[j * dim_ + i];
    }
    bias_.assign(pca.b.begin(), pca.b.begin() + k_);
    eigenvalues_.resize(k_);
    for (size_t j = 0; j < k_; ++j) eigenvalues_[j] = pca.eigenvalues[j] / static_cast<float>(sample);
    double total = 0;
    for (float v : pca.eigenvalues) total += v;
    total_variance_ = total / static_cast<double>(sample);
  }

  Napi::Value Result(Napi::Env env) override {
    Napi::Object result = Napi::Object::New(env);
    result.Set("weight", CopyToJs(env, weight_));
    result.Set("bias", CopyToJs(env, bias_));
    result.Set("eigenvalues", CopyToJs(env, eigenvalues_));
    result.Set("totalVariance", Napi::Number::New(env, total_variance_));
    return result;
  }

 private:
  RowsAndK in_;
  std::vector<float> weight_;
  std::vector<float> bias_;
  std::vector<float> eigenvalues_;
  double total_variance_ = 0;
};

}  // namespace

Napi::Value KMeans(const Napi::CallbackInfo& info) {
  return GuardAsync(info.Env(), [&] {
    auto worker = std::make_unique<KMeansWorker>(info.Env(), info);
    return StartWorker(worker.release());
  });
}

Napi::Value Assign(const Napi::CallbackInfo& info) {
  return GuardAsync(info.Env(), [&] {
    auto worker = std::make_unique<AssignWorker>(info.Env(), info);
    return StartWorker(worker.release());
  });
}

Napi::Value Pca(const Napi::CallbackInfo& info) {
  return GuardAsync(info.Env(), [&] {
    auto worker = std::make_unique<PcaWorker>(info.Env(), info);
    return StartWorker(worker.release());
  });
}

}  // namespace sidx
