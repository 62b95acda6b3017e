// sidx_faiss: N-API addon over FAISS's C++ API (see index_wrap.h, slot_map.h and clustering.h for the method lists).
// Module functions: readIndex [async], kmeans [async], assign [async], pqTrain [sync] (pq_codes.h), setNumThreads/getNumThreads [sync],
// noop [sync], and the `faissVersion` string.
#include <faiss/Index.h>
#include <napi.h>

#include <string>

#include "boundary.h"
#include "clustering.h"
#include "index_wrap.h"
#include "pq_codes.h"
#include "sq8_codes.h"
#include "slot_map.h"

namespace sidx {
namespace {

Napi::Value SetNumThreadsJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    if (!info[0].IsNumber()) throw CodedError(kErrInvalidInput, "threads must be a number");
    double threads = info[0].As<Napi::Number>().DoubleValue();
    if (!(threads >= 0) || threads > 1024 || threads != static_cast<int>(threads)) {
      throw CodedError(kErrInvalidInput, "threads must be an integer in [0, 1024] (0 = library default)");
    }
    SetNumThreads(static_cast<int>(threads));
    return info.Env().Undefined();
  });
}

Napi::Value GetNumThreadsJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), GetNumThreads());
}

Napi::Value NoopJs(const Napi::CallbackInfo& info) {
  return info.Env().Undefined();
}

}  // namespace
}  // namespace sidx

static Napi::Object InitSidxFaiss(Napi::Env env, Napi::Object exports) {
  using namespace sidx;
  exports.Set("Index", IndexWrap::Define(env));
  exports.Set("Sq8Codes", Sq8Codes::Define(env));
  exports.Set("PqCodes", PqCodes::Define(env));
  exports.Set("pqTrain", Napi::Function::New<PqTrain>(env, "pqTrain"));
  exports.Set("SlotMap", SlotMapWrap::Define(env));
  exports.Set("readIndex", Napi::Function::New<ReadIndex>(env, "readIndex"));
  exports.Set("kmeans", Napi::Function::New<KMeans>(env, "kmeans"));
  exports.Set("assign", Napi::Function::New<Assign>(env, "assign"));
  exports.Set("setNumThreads", Napi::Function::New<SetNumThreadsJs>(env, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New<GetNumThreadsJs>(env, "getNumThreads"));
  exports.Set("noop", Napi::Function::New<NoopJs>(env, "noop"));
  exports.Set("faissVersion", Napi::String::New(env, std::to_string(FAISS_VERSION_MAJOR) + "." +
                                                        std::to_string(FAISS_VERSION_MINOR) + "." +
                                                        std::to_string(FAISS_VERSION_PATCH)));
  return exports;
}

NODE_API_MODULE(sidx_faiss, InitSidxFaiss)
