#include "boundary.h"

#include <faiss/impl/FaissException.h>
#include <omp.h>

#if defined(__linux__)
#include <sys/resource.h>
#include <sys/syscall.h>
#include <unistd.h>
#endif

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <climits>
#include <cmath>
#include <new>

extern "C" void openblas_set_num_threads(int num_threads);
extern "C" int openblas_get_num_threads(void);

namespace sidx {

ErrorInfo DescribeCurrentException() {
  try {
    throw;
  } catch (const CodedError& e) {
    return {e.code(), e.what()};
  } catch (const faiss::FaissException& e) {
    return {kErrVector, e.what()};
  } catch (const std::bad_alloc&) {
    return {kErrVector, "out of memory in the FAISS addon"};
  } catch (const std::exception& e) {
    return {kErrVector, e.what()};
  } catch (...) {
    return {kErrVector, "unknown native error in the FAISS addon"};
  }
}

Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message) {
  Napi::Error error = Napi::Error::New(env, message.empty() ? std::string("native error") : message);
  error.Set("code", Napi::String::New(env, code));
  return error;
}

FloatView GetFloat32Array(const Napi::Value& value, const char* name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_float32_array) {
    throw CodedError(kErrInvalidInput, std::string(name) + " must be a Float32Array");
  }
  Napi::Float32Array array = value.As<Napi::Float32Array>();
  return {array.Data(), array.ElementLength()};
}

IdView GetBigInt64Array(const Napi::Value& value, const char* name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_bigint64_array) {
    throw CodedError(kErrInvalidInput, std::string(name) + " must be a BigInt64Array");
  }
  Napi::BigInt64Array array = value.As<Napi::BigInt64Array>();
  return {array.Data(), array.ElementLength()};
}

Int32View GetInt32Array(const Napi::Value& value, const char* name) {
  if (!value.IsTypedArray() || value.As<Napi::TypedArray>().TypedArrayType() != napi_int32_array) {
    throw CodedError(kErrInvalidInput, std::string(name) + " must be an Int32Array");
  }
  Napi::Int32Array array = value.As<Napi::Int32Array>();
  return {array.Data(), array.ElementLength()};
}

namespace {
// An integer number in [min, 2^53 - 1]; `what` names the kind in the error.
int64_t GetIntegerFrom(const Napi::Value& value, const char* name, double min, const char* what) {
  if (!value.IsNumber()) throw CodedError(kErrInvalidInput, std::string(name) + " must be a number");
  double number = value.As<Napi::Number>().DoubleValue();
  if (!(number >= min) || number > 9007199254740991.0 || std::floor(number) != number) {
    throw CodedError(kErrInvalidInput, std::string(name) + " must be a " + what);
  }
  return static_cast<int64_t>(number);
}
}  // namespace

int64_t GetPositiveInt(const Napi::Value& value, const char* name) {
  return GetIntegerFrom(value, name, 1, "positive integer");
}

int64_t GetNonNegativeInt(const Napi::Value& value, const char* name) {
  return GetIntegerFrom(value, name, 0, "non-negative integer");
}

size_t RowCount(const FloatView& vectors, size_t dim, const char* name) {
  if (vectors.length % dim != 0) {
    throw CodedError(kErrDimension, std::string(name) + " has " + std::to_string(vectors.length) +
                                        " floats, not a multiple of the dimension " + std::to_string(dim));
  }
  return vectors.length / dim;
}

namespace {
std::atomic<int> g_threads{0};
std::atomic<int> g_pool_nice{0};
// Per thread: the niceness it had before sidx changed it, and the pool niceness last applied to it.
thread_local int t_base_nice = INT_MIN;
thread_local int t_applied_nice = 0;
// Captured once, on the thread that loads the addon, before sidx changes anything.
const int g_default_omp_threads = omp_get_max_threads();
const int g_default_blas_threads = openblas_get_num_threads();
}  // namespace

void SetNumThreads(int threads) {
  g_threads.store(threads < 0 ? 0 : threads);
  omp_set_num_threads(GetNumThreads());
  openblas_set_num_threads(threads > 0 ? threads : g_default_blas_threads);
}

int GetNumThreads() {
  int threads = g_threads.load();
  return threads > 0 ? threads : g_default_omp_threads;
}

void SetPoolNice(int nice) {
  g_pool_nice.store(std::clamp(nice, 0, 19));
}

void ApplyPoolNice() {
#if defined(__linux__)
  int nice = g_pool_nice.load(std::memory_order_relaxed);
  if (nice == t_applied_nice) return;
  t_applied_nice = nice;
  const id_t tid = static_cast<id_t>(syscall(SYS_gettid));
  if (t_base_nice == INT_MIN) {
    errno = 0;
    int current = getpriority(PRIO_PROCESS, tid);
    t_base_nice = errno == 0 ? current : 0;
  }
  setpriority(PRIO_PROCESS, tid, std::min(19, t_base_nice + nice));  // lowering it may be refused: then it stays
#endif
}

void ApplyThreadSetting() {
  int threads = GetNumThreads();
  if (omp_get_max_threads() != threads) omp_set_num_threads(threads);
}

PromiseWorker::PromiseWorker(Napi::Env env, const char* resource_name)
    : Napi::AsyncWorker(env, resource_name), deferred_(Napi::Promise::Deferred::New(env)) {}

void PromiseWorker::Keep(const Napi::Value& value) {
  kept_.push_back(Napi::Persistent(value.As<Napi::Object>()));
}

void PromiseWorker::Execute() {
  try {
    ApplyThreadSetting();
    ApplyPoolNice();  // a pool thread: never the JS thread, whose sync methods call ApplyThreadSetting only
    Run();
  } catch (...) {
    ErrorInfo info = DescribeCurrentException();
    error_code_ = info.code;
    SetError(info.message.empty() ? std::string("native error") : info.message);
  }
}

void PromiseWorker::OnOK() {
  Napi::Env env = Env();
  Napi::HandleScope scope(env);
  try {
    deferred_.Resolve(Result(env));
  } catch (const Napi::Error& e) {
    deferred_.Reject(e.Value());
  } catch (...) {
    ErrorInfo info = DescribeCurrentException();
    deferred_.Reject(MakeError(env, info.code, info.message).Value());
  }
}

void PromiseWorker::OnError(const Napi::Error& error) {
  Napi::HandleScope scope(Env());
  deferred_.Reject(MakeError(Env(), error_code_, error.Message()).Value());
}

Napi::Value StartWorker(PromiseWorker* worker) {
  Napi::Promise promise = worker->Promise();
  worker->Queue();
  return promise;
}

}  // namespace sidx
