// The JS <-> C++ boundary: coded errors, typed-array views, the OpenMP/BLAS thread setting and the
// promise-returning worker base. No C++ exception may cross into N-API: sync methods run their body in
// Guard(), async work runs in PromiseWorker::Run(); both turn any exception into a JS Error with `code`.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>
#include <stdexcept>
#include <string>
#include <vector>

namespace sidx {

constexpr const char* kErrVector = "SIDX_ERR_VECTOR";
constexpr const char* kErrDimension = "SIDX_ERR_DIMENSION";
constexpr const char* kErrInvalidInput = "SIDX_ERR_INVALID_INPUT";
constexpr const char* kErrDuplicateId = "SIDX_ERR_DUPLICATE_ID";

// An error raised on purpose, carrying the domain code the JS Error will get.
class CodedError : public std::runtime_error {
 public:
  CodedError(const char* code, const std::string& message) : std::runtime_error(message), code_(code) {}
  const char* code() const noexcept { return code_; }

 private:
  const char* code_;
};

struct ErrorInfo {
  const char* code;
  std::string message;
};

// Classifies the exception being handled; call only inside a catch block.
ErrorInfo DescribeCurrentException();

Napi::Error MakeError(Napi::Env env, const char* code, const std::string& message);

// Runs `body` on the JS thread; a C++ exception (FaissException, std::exception, ...) becomes a coded JS Error.
template <typename Body>
auto Guard(Napi::Env env, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    ErrorInfo info = DescribeCurrentException();
    throw MakeError(env, info.code, info.message);
  }
}

// Like Guard, for [async] methods: a failure before the work is queued becomes a rejected promise, so callers
// see one failure channel.
template <typename Body>
Napi::Value GuardAsync(Napi::Env env, Body&& body) {
  try {
    return body();
  } catch (const Napi::Error& e) {
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(e.Value());
    return deferred.Promise();
  } catch (...) {
    ErrorInfo info = DescribeCurrentException();
    auto deferred = Napi::Promise::Deferred::New(env);
    deferred.Reject(MakeError(env, info.code, info.message).Value());
    return deferred.Promise();
  }
}

// Zero-copy views of typed arrays: pointers into the ArrayBuffer's backing store. They stay valid while the
// typed array is reachable (an async worker keeps it reachable with a Reference) and not detached.
struct FloatView {
  const float* data;
  size_t length;
};
struct IdView {
  const int64_t* data;
  size_t length;
};
struct Int32View {
  const int32_t* data;
  size_t length;
};

FloatView GetFloat32Array(const Napi::Value& value, const char* name);
IdView GetBigInt64Array(const Napi::Value& value, const char* name);
Int32View GetInt32Array(const Napi::Value& value, const char* name);
int64_t GetPositiveInt(const Napi::Value& value, const char* name);
int64_t GetNonNegativeInt(const Napi::Value& value, const char* name);

// Checks that `vectors` is a whole number of rows of `dim` floats and returns the row count.
size_t RowCount(const FloatView& vectors, size_t dim, const char* name);

// Process-wide thread count for FAISS's OpenMP loops and OpenBLAS; 0 restores the defaults seen at load
// (OMP_NUM_THREADS or all cores). omp_set_num_threads only affects the calling thread, so every native entry
// point that may run OpenMP code re-applies the setting on its own thread.
void SetNumThreads(int threads);
int GetNumThreads();
void ApplyThreadSetting();
// Niceness added (Linux) to each libuv pool thread when it next runs one of the addon's [async] methods, so that under
// load the event loop runs before the rerank's scoring; 0 = none (a thread raised before stays raised unless the
// process may lower it). ApplyPoolNice applies it to the calling thread: PromiseWorker calls it on the pool thread
// before Run(); never call it on a JS thread.
void SetPoolNice(int nice);
void ApplyPoolNice();

// Base for [async] methods: Run() on a libuv pool thread (no N-API calls there), then Result() on the JS thread
// resolves the promise; an exception in Run() rejects it with a coded Error. Keep() pins JS objects (the input
// and preallocated output typed arrays) until the worker is destroyed, after settlement.
class PromiseWorker : public Napi::AsyncWorker {
 public:
  PromiseWorker(Napi::Env env, const char* resource_name);
  Napi::Promise Promise() { return deferred_.Promise(); }

 protected:
  virtual void Run() = 0;
  virtual Napi::Value Result(Napi::Env env) { return env.Undefined(); }
  void Keep(const Napi::Value& value);

 private:
  void Execute() final;
  void OnOK() final;
  void OnError(const Napi::Error& error) final;

  Napi::Promise::Deferred deferred_;
  std::vector<Napi::ObjectReference> kept_;
  const char* error_code_ = kErrVector;
};

// Queues the worker and returns its promise (the worker deletes itself after settling).
Napi::Value StartWorker(PromiseWorker* worker);

}  // namespace sidx
