#include "pq_codes.h"

#include <omp.h>

#include <cmath>
#include <limits>
#include <string>
#include <vector>

#include "boundary.h"
#include "row_prefetch.h"

namespace sidx {
namespace {

constexpr size_t kKsub = 256;  // 8 bits per sub-quantizer

size_t SubQuantizers(const Napi::Value& value, size_t dim) {
  size_t m = static_cast<size_t>(GetPositiveInt(value, "m"));
  if (dim % m != 0) throw CodedError(kErrInvalidInput, "m (" + std::to_string(m) + ") must divide dim (" + std::to_string(dim) + ")");
  return m;
}

// Sum of table[j * 256 + code[j]] over the m sub-quantizers, four independent accumulators.
inline float AdcSum(const float* table, const uint8_t* code, size_t m) {
  float a0 = 0.0f, a1 = 0.0f, a2 = 0.0f, a3 = 0.0f;
  size_t j = 0;
  for (; j + 4 <= m; j += 4) {
    a0 += table[(j + 0) * kKsub + code[j + 0]];
    a1 += table[(j + 1) * kKsub + code[j + 1]];
    a2 += table[(j + 2) * kKsub + code[j + 2]];
    a3 += table[(j + 3) * kKsub + code[j + 3]];
  }
  for (; j < m; ++j) a0 += table[j * kKsub + code[j]];
  return (a0 + a1) + (a2 + a3);
}

// OpenMP on one thread (the calling JS thread's setting) for its lifetime, then the process setting again. The
// per-sub-space work (n x dsub against 256 centroids) is too small to share: with 2 threads on 2 busy cores,
// training 10,000 x 512 took 29 s against 2.8 s on one.
class OneThread {
 public:
  OneThread() { omp_set_num_threads(1); }
  ~OneThread() { ApplyThreadSetting(); }
  OneThread(const OneThread&) = delete;
  OneThread& operator=(const OneThread&) = delete;
};

}  // namespace

Napi::Function PqCodes::Define(Napi::Env env) {
  return DefineCodes(env, kName);
}

PqCodes::PqCodes(const Napi::CallbackInfo& info) : CodesWrap<PqCodes>(info) {
  Guard(info.Env(), [&] {
    dim_ = static_cast<size_t>(GetPositiveInt(info[0], "dim"));
    inner_product_ = ParseMetric(info[1]);
    m_ = SubQuantizers(info[2], dim_);
    blocks_ = SlotCodeBlocks(m_, HugePagesArg(info[4]));
    if (info[3].IsNull() || info[3].IsUndefined()) return;
    FloatView centroids = GetFloat32Array(info[3], "centroids");
    if (centroids.length != kKsub * dim_) throw CodedError(kErrDimension, "centroids must hold 256 * dim floats");
    for (size_t i = 0; i < centroids.length; ++i) {
      if (!std::isfinite(centroids.data[i])) throw CodedError(kErrInvalidInput, "centroids must be finite");
    }
    pq_ = std::make_unique<faiss::ProductQuantizer>(dim_, m_, 8);
    pq_->centroids.assign(centroids.data, centroids.data + centroids.length);
    pq_->sync_transposed_centroids();  // compute_code's distance loop over (dsub, m, 256) rows
  });
}

const faiss::ProductQuantizer& PqCodes::Trained() const {
  CheckOpen();
  if (!pq_) throw CodedError(kErrVector, "PqCodes has no centroids (not trained)");
  return *pq_;
}

Napi::Value PqCodes::Encode(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const faiss::ProductQuantizer& pq = Trained();
    FloatView vectors = GetFloat32Array(info[0], "vectors");
    size_t rows = RowCount(vectors, dim_, "vectors");
    Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), rows * m_);
    OneThread one;
    if (rows > 0) pq.compute_codes(vectors.data, out.Data(), rows);
    return out;
  });
}

Napi::Value PqCodes::Score(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    const faiss::ProductQuantizer& pq = Trained();
    FloatView query = GetFloat32Array(info[0], "query");
    if (query.length != dim_) throw CodedError(kErrDimension, "query must have dim floats");
    Int32View slots = GetInt32Array(info[1], "slots");
    const size_t n = slots.length;
    std::vector<float> table(m_ * kKsub);
    if (inner_product_) {
      pq.compute_inner_prod_table(query.data, table.data());
    } else {
      pq.compute_distance_table(query.data, table.data());
    }
    Napi::Float32Array out = Napi::Float32Array::New(info.Env(), n);
    float* scores = out.Data();
    std::vector<const uint8_t*> rows(n);
    blocks_.Rows(slots.data, n, rows.data());
    const size_t ahead = RowsAhead(m_);
    for (size_t r = 0; r < n && r < ahead; ++r) PrefetchRow(rows[r], m_);
    for (size_t r = 0; r < n; ++r) {
      if (r + ahead < n) PrefetchRow(rows[r + ahead], m_);
      scores[r] = rows[r] == nullptr ? std::numeric_limits<float>::quiet_NaN() : AdcSum(table.data(), rows[r], m_);
    }
    return out;
  });
}

Napi::Value PqTrain(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    FloatView sample = GetFloat32Array(info[0], "sample");
    size_t dim = static_cast<size_t>(GetPositiveInt(info[1], "dim"));
    size_t m = SubQuantizers(info[2], dim);
    size_t rows = RowCount(sample, dim, "sample");
    if (rows < kKsub) throw CodedError(kErrInvalidInput, "pq training needs at least 256 vectors, got " + std::to_string(rows));
    faiss::ProductQuantizer pq(dim, m, 8);
    pq.verbose = false;
    if (info[3].IsObject()) {
      Napi::Object options = info[3].As<Napi::Object>();
      if (options.Has("niter")) pq.cp.niter = static_cast<int>(GetPositiveInt(options.Get("niter"), "niter"));
      if (options.Has("seed")) pq.cp.seed = static_cast<int>(GetPositiveInt(options.Get("seed"), "seed"));
    }
    pq.cp.verbose = false;
    // Below 39 rows per centroid FAISS only warns on stderr; the owner decides how many rows to train on.
    pq.cp.min_points_per_centroid = 1;
    OneThread one;
    pq.train(rows, sample.data);
    Napi::Float32Array out = Napi::Float32Array::New(info.Env(), pq.centroids.size());
    std::copy(pq.centroids.begin(), pq.centroids.end(), out.Data());
    return out;
  });
}

}  // namespace sidx
