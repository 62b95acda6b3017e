#include "pq_codes.h"

#include <omp.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "boundary.h"
#include "cpu_features.h"

namespace sidx {
namespace {

constexpr size_t kKsub = 256;  // 8 bits per sub-quantizer
// pqTrain holds one row in this many out of the k-means (TrainCentroids).
constexpr size_t kHeldOutEvery = 10;

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

// The squared distance between x and the decoding of its m codes (each sub-vector's centroid), summed in order: the
// same float arithmetic whichever loop chose the codes, so both give the same flag.
float ResidualSq(const faiss::ProductQuantizer& pq, const float* x, const uint8_t* code) {
  float sum = 0.0f;
  for (size_t m = 0; m < pq.M; ++m) {
    const float* c = pq.get_centroids(m, code[m]);
    const float* xs = x + m * pq.dsub;
    for (size_t j = 0; j < pq.dsub; ++j) {
      const float d = xs[j] - c[j];
      sum += d * d;
    }
  }
  return sum;
}

// The last sub-quantizer's code kFlagCode (255) made unreachable: its centroid becomes a copy of code 254's, and both
// encoders take the lower code of two at the same distance, so only a flagged row holds it (one centroid of m * 256).
void ReserveFlagCode(faiss::ProductQuantizer& pq) {
  float* last = pq.get_centroids(pq.M - 1, 0);
  std::copy_n(last + 254 * pq.dsub, pq.dsub, last + 255 * pq.dsub);
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

#ifdef SIDX_HAVE_AVX2
// The nearest of k centroids (k a multiple of 8) to xs by squared L2, eight centroids at a time: the float operations
// of FAISS's reference fvec_L2sqr_ny_nearest_y_transposed in the same order, with no fused multiply-add (the target
// has none), and its first minimum. Centroid i's dimension j is transposed[j * stride + i]; its squared length
// sq_lengths[i]. Writes the distance to *dis.
__attribute__((target("avx2"))) inline int32_t NearestAvx2(const float* xs, size_t dsub, const float* transposed, size_t stride,
                                                        const float* sq_lengths, size_t k, float* dis) {
  float x_sqlen = 0;
  for (size_t j = 0; j < dsub; ++j) x_sqlen += xs[j] * xs[j];
  const __m256 xsq = _mm256_set1_ps(x_sqlen);
  const __m256 two = _mm256_set1_ps(2.0f);
  const __m256i eight = _mm256_set1_epi32(8);
  __m256 best = _mm256_set1_ps(HUGE_VALF);
  __m256i best_index = _mm256_setzero_si256();
  __m256i index = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  for (size_t i = 0; i < k; i += 8) {
    const float* y = transposed + i;
    __m256 dp = _mm256_mul_ps(_mm256_set1_ps(xs[0]), _mm256_loadu_ps(y));
    for (size_t j = 1; j < dsub; ++j) dp = _mm256_add_ps(dp, _mm256_mul_ps(_mm256_set1_ps(xs[j]), _mm256_loadu_ps(y + j * stride)));
    const __m256 d = _mm256_sub_ps(_mm256_add_ps(xsq, _mm256_loadu_ps(sq_lengths + i)), _mm256_mul_ps(two, dp));
    const __m256 less = _mm256_cmp_ps(d, best, _CMP_LT_OQ);
    best = _mm256_blendv_ps(best, d, less);
    best_index = _mm256_castps_si256(_mm256_blendv_ps(_mm256_castsi256_ps(best_index), _mm256_castsi256_ps(index), less));
    index = _mm256_add_epi32(index, eight);
  }
  alignas(32) float lane_best[8];
  alignas(32) int32_t lane_index[8];
  _mm256_store_ps(lane_best, best);
  _mm256_store_si256(reinterpret_cast<__m256i*>(lane_index), best_index);
  // Each lane kept its first minimum; across lanes the smallest distance, the lowest index on a tie.
  float min_dis = HUGE_VALF;
  int32_t nearest = 0;
  for (int l = 0; l < 8; ++l) {
    if (lane_best[l] < min_dis || (lane_best[l] == min_dis && lane_index[l] < nearest)) {
      min_dis = lane_best[l];
      nearest = lane_index[l];
    }
  }
  *dis = min_dis;
  return nearest;
}

// compute_codes for 8-bit sub-quantizers with transposed centroids, as compute_code computes each code (one
// nearest-centroid search per sub-quantizer): the codes are FAISS's, bit for bit (test/vector/pq-store.test.ts), at a
// sixth of the time (0.13 ms per 512-d vector at m = 256 in FAISS's build here, on the event loop of a pq ingest).
__attribute__((target("avx2"))) void EncodeAvx2(const faiss::ProductQuantizer& pq, const float* x, size_t n, uint8_t* codes) {
  const size_t M = pq.M;
  float dis;
  for (size_t r = 0; r < n; ++r) {
    for (size_t m = 0; m < M; ++m) {
      codes[r * M + m] = static_cast<uint8_t>(NearestAvx2(x + r * pq.d + m * pq.dsub, pq.dsub, pq.transposed_centroids.data() + m * kKsub,
                                                          M * kKsub, pq.centroids_sq_lengths.data() + m * kKsub, kKsub, &dis));
    }
  }
}

// compute_inner_prod_table / compute_distance_table for 8-bit sub-quantizers from the transposed centroids, eight
// centroids at a time, each entry summed over its dsub dimensions in order with no fused multiply-add: the arithmetic
// of FAISS's loops in its build here, so the table is FAISS's bit for bit (test/vector/pq-store.test.ts). That build
// calls a generic kernel once per sub-quantizer and centroid: 0.2 ms per query at m = 256, as long as summing the codes
// of a rerank's 1,500 candidates.
__attribute__((target("avx2"))) void TableAvx2(const faiss::ProductQuantizer& pq, const float* x, bool inner_product, float* table) {
  const size_t M = pq.M;
  const size_t dsub = pq.dsub;
  const size_t stride = M * kKsub;
  for (size_t m = 0; m < M; ++m) {
    const float* xs = x + m * dsub;
    const float* t = pq.transposed_centroids.data() + m * kKsub;
    for (size_t k = 0; k < kKsub; k += 8) {
      __m256 acc = _mm256_setzero_ps();
      for (size_t j = 0; j < dsub; ++j) {
        const __m256 c = _mm256_loadu_ps(t + j * stride + k);
        const __m256 xj = _mm256_set1_ps(xs[j]);
        if (inner_product) {
          acc = _mm256_add_ps(acc, _mm256_mul_ps(xj, c));
        } else {
          const __m256 diff = _mm256_sub_ps(xj, c);
          acc = _mm256_add_ps(acc, _mm256_mul_ps(diff, diff));
        }
      }
      _mm256_storeu_ps(table + m * kKsub + k, acc);
    }
  }
}

// The assignment of FAISS's k-means inside ProductQuantizer::train (its assign_index; search with k = 1 only): the
// search above over the centroids Clustering adds (padded to a multiple of 8 with centroids at infinity), instead of
// IndexFlatL2's BLAS product of a dsub-wide matrix (dsub = 2 at the default m), with which training on 10,000 512-d
// vectors took 17-23 s on the event loop.
class NearestCentroids : public faiss::Index {
 public:
  explicit NearestCentroids(size_t dsub) : faiss::Index(static_cast<faiss::Index::idx_t>(dsub), faiss::METRIC_L2) {}

  void add(idx_t n, const float* x) override {
    centroids_.insert(centroids_.end(), x, x + n * d);
    ntotal += n;
  }

  void reset() override {
    centroids_.clear();
    ntotal = 0;
  }

  void search(idx_t n, const float* x, idx_t k, float* distances, idx_t* labels, const faiss::SearchParameters* = nullptr) const override {
    if (k != 1) throw CodedError(kErrVector, "the pq training's assignment searches one neighbour");
    const size_t dsub = static_cast<size_t>(d);
    const size_t count = static_cast<size_t>(ntotal);
    const size_t padded = (count + 7) / 8 * 8;
    std::vector<float> transposed(dsub * padded, 0.0f);
    std::vector<float> sq_lengths(padded, HUGE_VALF);
    for (size_t i = 0; i < count; ++i) {
      float sq = 0;
      for (size_t j = 0; j < dsub; ++j) {
        const float v = centroids_[i * dsub + j];
        transposed[j * padded + i] = v;
        sq += v * v;
      }
      sq_lengths[i] = sq;
    }
    for (idx_t r = 0; r < n; ++r) {
      labels[r] = NearestAvx2(x + r * dsub, dsub, transposed.data(), padded, sq_lengths.data(), padded, &distances[r]);
    }
  }

 private:
  std::vector<float> centroids_;
};

const bool kPqAvx2 = CpuHasAvx2Fma();
#endif

// The codes of `rows` vectors into out (rows * M bytes): the AVX2 loop where the CPU has it, or FAISS's own (reference).
void ComputeCodes(const faiss::ProductQuantizer& pq, const float* vectors, size_t rows, uint8_t* out, bool reference) {
#ifdef SIDX_HAVE_AVX2
  if (kPqAvx2 && !reference && pq.nbits == 8 && !pq.transposed_centroids.empty()) {
    EncodeAvx2(pq, vectors, rows, out);
    return;
  }
#endif
  OneThread one;
  pq.compute_codes(vectors, out, rows);
}

}  // namespace

Napi::Function PqCodes::Define(Napi::Env env) {
  return DefineFlagged(env, kName, {InstanceMethod("rankKeysAsync", &PqCodes::RankKeysAsync), InstanceMethod("rankKeys", &PqCodes::RankKeys),
                                    InstanceMethod("encodeAsync", &PqCodes::EncodeAsync)});
}

PqCodes::PqCodes(const Napi::CallbackInfo& info) : FlaggedCodes<PqCodes>(info) {
  Guard(info.Env(), [&] {
    dim_ = static_cast<size_t>(GetPositiveInt(info[0], "dim"));
    inner_product_ = ParseMetric(info[1]);
    m_ = SubQuantizers(info[2], dim_);
    blocks_ = SlotCodeBlocks(m_, HugePagesArg(info[4]));
    limit_ = HUGE_VALF;
    if (info.Length() > 5 && !info[5].IsUndefined()) {
      if (!info[5].IsNumber() || std::isnan(info[5].As<Napi::Number>().FloatValue())) throw CodedError(kErrInvalidInput, "limit must be a number");
      limit_ = info[5].As<Napi::Number>().FloatValue();
    }
    if (info[3].IsNull() || info[3].IsUndefined()) return;
    FloatView centroids = GetFloat32Array(info[3], "centroids");
    if (centroids.length != kKsub * dim_) throw CodedError(kErrDimension, "centroids must hold 256 * dim floats");
    for (size_t i = 0; i < centroids.length; ++i) {
      if (!std::isfinite(centroids.data[i])) throw CodedError(kErrInvalidInput, "centroids must be finite");
    }
    pq_ = std::make_unique<faiss::ProductQuantizer>(dim_, m_, 8);
    pq_->centroids.assign(centroids.data, centroids.data + centroids.length);
    ReserveFlagCode(*pq_);
    pq_->sync_transposed_centroids();  // compute_code's distance loop over (dsub, m, 256) rows
  });
}

const faiss::ProductQuantizer& PqCodes::Trained() const {
  CheckOpen();
  if (!pq_) throw CodedError(kErrVector, "PqCodes has no centroids (not trained)");
  return *pq_;
}

void PqCodes::EncodeRows(const float* vectors, size_t rows, uint8_t* out, bool reference) const {
  if (rows == 0) return;
  const faiss::ProductQuantizer& pq = *pq_;
  ComputeCodes(pq, vectors, rows, out, reference);
  for (size_t r = 0; r < rows; ++r) {
    uint8_t* row = out + r * m_;
    if (ResidualSq(pq, vectors + r * dim_, row) > limit_) row[m_ - 1] = kFlagCode;
  }
}

Napi::Value PqCodes::Encode(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    Trained();
    FloatView vectors = GetFloat32Array(info[0], "vectors");
    size_t rows = RowCount(vectors, dim_, "vectors");
    const bool reference = info.Length() > 1 && info[1].IsBoolean() && info[1].As<Napi::Boolean>().Value();
    Napi::Uint8Array out = Napi::Uint8Array::New(info.Env(), rows * m_);
    EncodeRows(vectors.data, rows, out.Data(), reference);
    return out;
  });
}

namespace {

// encodeAsync: the codes computed on the libuv pool. The centroids live as long as the holder, which is kept.
class PqEncodeWorker : public PromiseWorker {
 public:
  PqEncodeWorker(const Napi::CallbackInfo& info, const PqCodes* codes, FloatView vectors, size_t rows, size_t m)
      : PromiseWorker(info.Env(), "sidx.pqEncode"), codes_(codes), vectors_(vectors), rows_(rows), out_(rows * m) {
    Keep(info.This());
    Keep(info[0]);
  }

 protected:
  void Run() override { codes_->EncodeRows(vectors_.data, rows_, out_.data(), false); }
  Napi::Value Result(Napi::Env env) override {
    Napi::Uint8Array out = Napi::Uint8Array::New(env, out_.size());
    std::copy(out_.begin(), out_.end(), out.Data());
    return out;
  }

 private:
  const PqCodes* codes_;
  FloatView vectors_;
  size_t rows_;
  std::vector<uint8_t> out_;
};

}  // namespace

Napi::Value PqCodes::EncodeAsync(const Napi::CallbackInfo& info) {
  return GuardAsync(info.Env(), [&]() -> Napi::Value {
    Trained();
    FloatView vectors = GetFloat32Array(info[0], "vectors");
    size_t rows = RowCount(vectors, dim_, "vectors");
    return StartWorker(new PqEncodeWorker(info, this, vectors, rows, m_));
  });
}

PqCodes::QueryTables PqCodes::Tables(const float* query, bool reference) const {
  if (!pq_) throw CodedError(kErrVector, "PqCodes has no centroids (not trained)");
  QueryTables t;
  t.table.resize(m_ * kKsub);
#ifdef SIDX_HAVE_AVX2
  if (kPqAvx2 && !reference && !pq_->transposed_centroids.empty()) {
    TableAvx2(*pq_, query, inner_product_, t.table.data());
    return t;
  }
#endif
  if (inner_product_) {
    pq_->compute_inner_prod_table(query, t.table.data());
  } else {
    pq_->compute_distance_table(query, t.table.data());
  }
  return t;
}

void PqCodes::ScoreSlots(const QueryTables& t, const int32_t* slots, size_t n, float* out, std::vector<int32_t>* flagged) const {
  ScoreFlagged(flagged, [&](std::vector<int32_t>* look) { ScoreRowsOnce(t, slots, n, out, look); });
}

void PqCodes::ScoreRowsOnce(const QueryTables& t, const int32_t* slots, size_t n, float* out, std::vector<int32_t>* flagged) const {
  ScoreCodeRows(slots, n, out, [&](const uint8_t* row, size_t r) {
    if (flagged != nullptr && RowFlagged(row)) flagged->push_back(static_cast<int32_t>(r));
    return AdcSum(t.table.data(), row, m_);
  });
}

Napi::Value PqCodes::Score(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    Trained();
    FloatView query = GetFloat32Array(info[0], "query");
    if (query.length != dim_) throw CodedError(kErrDimension, "query must have dim floats");
    Int32View slots = GetInt32Array(info[1], "slots");
    const bool reference = info.Length() > 2 && info[2].IsBoolean() && info[2].As<Napi::Boolean>().Value();
    Napi::Float32Array out = Napi::Float32Array::New(info.Env(), slots.length);
    ScoreRowsOnce(Tables(query.data, reference), slots.data, slots.length, out.Data(), nullptr);
    return out;
  });
}

Napi::Value PqCodes::RankKeysAsync(const Napi::CallbackInfo& info) {
  return GuardAsync(info.Env(), [&]() -> Napi::Value {
    Trained();
    return RankKeysAsyncOf(this, info);
  });
}

Napi::Value PqCodes::RankKeys(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value {
    Trained();
    return RankKeysOf(this, info);
  });
}

namespace {

// pqTrain's arguments, read on the JS thread.
struct PqTrainArgs {
  FloatView sample{};
  size_t dim = 0;
  size_t m = 0;
  size_t rows = 0;
  int niter = 0;  // 0: FAISS's default
  int seed = 0;
  bool reference = false;
};

PqTrainArgs ReadPqTrainArgs(const Napi::CallbackInfo& info) {
  PqTrainArgs args;
  args.sample = GetFloat32Array(info[0], "sample");
  args.dim = static_cast<size_t>(GetPositiveInt(info[1], "dim"));
  args.m = SubQuantizers(info[2], args.dim);
  args.rows = RowCount(args.sample, args.dim, "sample");
  if (args.rows < kKsub) throw CodedError(kErrInvalidInput, "pq training needs at least 256 vectors, got " + std::to_string(args.rows));
  if (info[3].IsObject()) {
    Napi::Object options = info[3].As<Napi::Object>();
    if (options.Has("niter")) args.niter = static_cast<int>(GetPositiveInt(options.Get("niter"), "niter"));
    if (options.Has("seed")) args.seed = static_cast<int>(GetPositiveInt(options.Get("seed"), "seed"));
    args.reference = options.Has("reference") && options.Get("reference").ToBoolean().Value();
  }
  return args;
}

// The trained centroids and the held-out rows' squared residuals (no N-API calls: runs on the JS thread or a pool thread).
struct PqTrained {
  std::vector<float> centroids;
  std::vector<float> held_out;  // the held-out rows' squared residuals, in sample order
};

PqTrained TrainCentroids(const PqTrainArgs& args) {
  faiss::ProductQuantizer pq(args.dim, args.m, 8);
  pq.verbose = false;
  if (args.niter > 0) pq.cp.niter = args.niter;
  if (args.seed > 0) pq.cp.seed = args.seed;
  pq.cp.verbose = false;
  // Below 39 rows per centroid FAISS only warns on stderr; the owner decides how many rows to train on.
  pq.cp.min_points_per_centroid = 1;
  OneThread one;
#ifdef SIDX_HAVE_AVX2
  NearestCentroids assign(args.dim / args.m);
  if (kPqAvx2 && !args.reference) pq.assign_index = &assign;
#endif
  // From 512 rows on, every tenth is held out of the k-means and measures the residual of rows the codebooks were not
  // fitted to (a training row's own residual is biased low: with as many rows as centroids it is zero); below that,
  // none (the owner sets no limit).
  const bool hold_out = args.rows >= 2 * kKsub;
  std::vector<float> fitted;
  std::vector<float> held;
  if (hold_out) {
    for (size_t r = 0; r < args.rows; ++r) {
      const float* x = args.sample.data + r * args.dim;
      std::vector<float>& into = r % kHeldOutEvery == kHeldOutEvery - 1 ? held : fitted;
      into.insert(into.end(), x, x + args.dim);
    }
  }
  const size_t fit_rows = hold_out ? fitted.size() / args.dim : args.rows;
  pq.train(fit_rows, hold_out ? fitted.data() : args.sample.data);
  pq.assign_index = nullptr;
  ReserveFlagCode(pq);
  PqTrained trained;
  if (hold_out) {
    pq.sync_transposed_centroids();
    const size_t held_rows = held.size() / args.dim;
    std::vector<uint8_t> codes(held_rows * args.m);
    ComputeCodes(pq, held.data(), held_rows, codes.data(), args.reference);
    trained.held_out.resize(held_rows);
    for (size_t r = 0; r < held_rows; ++r) trained.held_out[r] = ResidualSq(pq, held.data() + r * args.dim, codes.data() + r * args.m);
  }
  trained.centroids = std::move(pq.centroids);
  return trained;
}

Napi::Object TrainedToJs(Napi::Env env, const PqTrained& trained) {
  Napi::Float32Array centroids = Napi::Float32Array::New(env, trained.centroids.size());
  std::copy(trained.centroids.begin(), trained.centroids.end(), centroids.Data());
  Napi::Object out = Napi::Object::New(env);
  out.Set("centroids", centroids);
  Napi::Float32Array held_out = Napi::Float32Array::New(env, trained.held_out.size());
  std::copy(trained.held_out.begin(), trained.held_out.end(), held_out.Data());
  out.Set("heldOut", held_out);
  return out;
}

class PqTrainWorker : public PromiseWorker {
 public:
  PqTrainWorker(Napi::Env env, const Napi::CallbackInfo& info) : PromiseWorker(env, "sidx.pqTrain"), args_(ReadPqTrainArgs(info)) {
    Keep(info[0]);
  }

 protected:
  void Run() override { trained_ = TrainCentroids(args_); }
  Napi::Value Result(Napi::Env env) override { return TrainedToJs(env, trained_); }

 private:
  PqTrainArgs args_;
  PqTrained trained_;
};

}  // namespace

Napi::Value PqTrain(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value { return TrainedToJs(info.Env(), TrainCentroids(ReadPqTrainArgs(info))); });
}

Napi::Value PqTrainAsync(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&]() -> Napi::Value { return StartWorker(new PqTrainWorker(info.Env(), info)); });
}

}  // namespace sidx
