// sidx_faiss: N-API addon over FAISS's C++ API (see index_wrap.h, slot_map.h and clustering.h for the method lists).
// Module functions: readIndex [async], kmeans [async], assign [async], pca [async], gatherBeam [sync] (posting_gather.h), pqTrain [sync] and pqTrainAsync [async] (pq_codes.h), setNumThreads/getNumThreads/setPoolNice [sync],
// noop [sync], tuneAllocator [sync], and the `faissVersion` string.
#include <faiss/Index.h>
#include <napi.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <string>

#include "beam_search.h"
#include "boundary.h"
#include "clustering.h"
#include "index_wrap.h"
#include "pq_codes.h"
#include "posting_gather.h"
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

Napi::Value SetPoolNiceJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    double nice = info[0].IsNumber() ? info[0].As<Napi::Number>().DoubleValue() : -1;
    if (!(nice >= 0) || nice > 19 || nice != static_cast<int>(nice)) throw CodedError(kErrInvalidInput, "nice must be an integer in [0, 19]");
    SetPoolNice(static_cast<int>(nice));
    return info.Env().Undefined();
  });
}

Napi::Value GetNumThreadsJs(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), GetNumThreads());
}

// tuneAllocator(arenaMax, mmapThreshold): glibc's mallopt(M_ARENA_MAX) and mallopt(M_MMAP_THRESHOLD) for this
// process (0 leaves a setting as it is); a fixed mmap threshold also stops glibc raising it after each large free.
// Returns whether glibc took both (false on other C libraries).
Napi::Value TuneAllocatorJs(const Napi::CallbackInfo& info) {
  return Guard(info.Env(), [&] {
    auto arg = [&](size_t i, const char* name) {
      double v = info[i].IsNumber() ? info[i].As<Napi::Number>().DoubleValue() : -1;
      if (!(v >= 0) || v > (1 << 30) || v != static_cast<int>(v)) throw CodedError(kErrInvalidInput, std::string(name) + " must be an integer in [0, 2^30]");
      return static_cast<int>(v);
    };
    int arena_max = arg(0, "arenaMax");
    int mmap_threshold = arg(1, "mmapThreshold");
    bool ok = false;
#if defined(__GLIBC__)
    ok = (arena_max == 0 || mallopt(M_ARENA_MAX, arena_max) == 1) && (mmap_threshold == 0 || mallopt(M_MMAP_THRESHOLD, mmap_threshold) == 1);
#endif
    return Napi::Boolean::New(info.Env(), ok);
  });
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
  exports.Set("pqTrainAsync", Napi::Function::New<PqTrainAsync>(env, "pqTrainAsync"));
  exports.Set("SlotMap", SlotMapWrap::Define(env));
  exports.Set("BeamSearch", BeamSearch::Define(env));
  exports.Set("readIndex", Napi::Function::New<ReadIndex>(env, "readIndex"));
  exports.Set("kmeans", Napi::Function::New<KMeans>(env, "kmeans"));
  exports.Set("assign", Napi::Function::New<Assign>(env, "assign"));
  exports.Set("pca", Napi::Function::New<Pca>(env, "pca"));
  exports.Set("gatherBeam", Napi::Function::New<GatherBeam>(env, "gatherBeam"));
  exports.Set("setNumThreads", Napi::Function::New<SetNumThreadsJs>(env, "setNumThreads"));
  exports.Set("getNumThreads", Napi::Function::New<GetNumThreadsJs>(env, "getNumThreads"));
  exports.Set("setPoolNice", Napi::Function::New<SetPoolNiceJs>(env, "setPoolNice"));
  exports.Set("noop", Napi::Function::New<NoopJs>(env, "noop"));
  exports.Set("tuneAllocator", Napi::Function::New<TuneAllocatorJs>(env, "tuneAllocator"));
  exports.Set("faissVersion", Napi::String::New(env, std::to_string(FAISS_VERSION_MAJOR) + "." +
                                                        std::to_string(FAISS_VERSION_MINOR) + "." +
                                                        std::to_string(FAISS_VERSION_PATCH)));
  return exports;
}

NODE_API_MODULE(sidx_faiss, InitSidxFaiss)
