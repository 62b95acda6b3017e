// Module functions over faiss::Clustering (all [async], resolving typed arrays):
//   kmeans(data: Float32Array, d, k, {niter, seed, spherical, maxPointsPerCentroid, minPointsPerCentroid})
//     -> {centroids: Float32Array k*d, objective: Float32Array, one sum of squared distances per iteration}
//     Deterministic for a seed (and a fixed thread count). Assignment uses an exact IndexFlatL2.
//   assign(data: Float32Array, d, centroids: Float32Array, k) -> {labels: Int32Array n, distances: Float32Array n}
//     nearest centroid by squared L2 (IndexFlatL2, k = 1).
#pragma once

#include <napi.h>

namespace sidx {

Napi::Value KMeans(const Napi::CallbackInfo& info);
Napi::Value Assign(const Napi::CallbackInfo& info);

}  // namespace sidx
