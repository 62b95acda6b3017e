// JS class `Index`: a faiss::IndexIDMap2 (external int64 ids) around a storage index built by index_factory.
//
//   new Index(dim, metric: "ip"|"l2", description = "Flat")   [sync]  throws on a bad description
//   dim, metric, ntotal, isTrained                             [sync]  getters
//   add(vectors: Float32Array, ids: BigInt64Array): void        [sync]  zero-copy; throws on duplicate ids
//   addAsync(vectors, ids): Promise<void>                       [async] for large batches
//   train(vectors: Float32Array): Promise<void>                 [async]
//   remove(ids: BigInt64Array): number                          [sync]  flat-code storages only (see .cc)
//   scoreSubset(query: Float32Array, ids): Float32Array         [sync]  O(|ids| d), NaN for absent ids
//   search(queries: Float32Array, k): Promise<{distances, labels}>  [async] n*k, label -1 / distance NaN pads
//   setSearchParameter(name, value): void                       [sync]  faiss::ParameterSpace, e.g. "nprobe"
//   write(path): Promise<void>                                  [async]
//   close(): void                                               [sync]  later calls throw
//   noop(): void                                                [sync]  prices the JS <-> native boundary
//   readIndex(path): Promise<Index>  (module function)          [async] rejects unless the file holds an IDMap2
// Every method throws (or rejects with) an Error whose `code` is a SIDX_ERR_* string.
//
// Concurrency: the FAISS index sits in a shared IndexState guarded by a shared_mutex. search, scoreSubset, write
// and the getters take it shared; add, addAsync, remove and train take it exclusively, so a sync call waits for an
// in-flight async write. Each async worker holds its own shared_ptr to the state, so close() only drops the
// wrapper's reference: the FAISS index is freed when the last in-flight worker finishes, never under it.
#pragma once

#include <faiss/IndexIDMap.h>
#include <napi.h>

#include <memory>
#include <shared_mutex>

namespace sidx {

struct IndexState {
  explicit IndexState(std::unique_ptr<faiss::IndexIDMap2> owned) : index(std::move(owned)) {}
  std::unique_ptr<faiss::IndexIDMap2> index;  // owns its storage index (own_fields = true)
  std::shared_mutex mutex;
};

class IndexWrap : public Napi::ObjectWrap<IndexWrap> {
 public:
  // Defines the class and remembers its constructor in the addon's per-environment data.
  static Napi::Function Define(Napi::Env env);
  static Napi::Object NewInstance(Napi::Env env, std::unique_ptr<faiss::IndexIDMap2> index);
  explicit IndexWrap(const Napi::CallbackInfo& info);

 private:
  std::shared_ptr<IndexState> Live() const;  // throws once closed

  Napi::Value Dim(const Napi::CallbackInfo& info);
  Napi::Value Metric(const Napi::CallbackInfo& info);
  Napi::Value Ntotal(const Napi::CallbackInfo& info);
  Napi::Value IsTrained(const Napi::CallbackInfo& info);
  Napi::Value Add(const Napi::CallbackInfo& info);
  Napi::Value AddAsync(const Napi::CallbackInfo& info);
  Napi::Value Train(const Napi::CallbackInfo& info);
  Napi::Value Remove(const Napi::CallbackInfo& info);
  Napi::Value ScoreSubset(const Napi::CallbackInfo& info);
  Napi::Value Search(const Napi::CallbackInfo& info);
  Napi::Value SetSearchParameter(const Napi::CallbackInfo& info);
  Napi::Value Write(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Noop(const Napi::CallbackInfo& info);

  std::shared_ptr<IndexState> state_;
};

Napi::Value ReadIndex(const Napi::CallbackInfo& info);

}  // namespace sidx
