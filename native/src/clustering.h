// Module functions over faiss::Clustering and faiss::PCAMatrix (all [async], resolving typed arrays):
//   kmeans(data: Float32Array, d, k, {niter, seed, spherical, maxPointsPerCentroid, minPointsPerCentroid})
//     -> {centroids: Float32Array k*d, objective: Float32Array, one sum of squared distances per iteration}
//     Deterministic for a seed (and a fixed thread count). Assignment uses an exact IndexFlatL2.
//   assign(data: Float32Array, d, centroids: Float32Array, k) -> {labels: Int32Array n, distances: Float32Array n}
//     nearest centroid by squared L2 (IndexFlatL2, k = 1).
//   pca(data: Float32Array, d, k) -> {weight: Float32Array d*k, bias: Float32Array k, eigenvalues: Float32Array k,
//     totalVariance: number}  faiss::PCAMatrix (centred, no whitening): the top-k principal components as
//     y = x weight + bias (weight [d, k] row-major, bias = -mean weight); eigenvalues: the variance along each,
//     descending; totalVariance: the rows' whole variance (all d eigenvalues). Over faiss's training sample: at most
//     1000 * d rows.
#pragma once

#include <napi.h>

namespace sidx {

Napi::Value KMeans(const Napi::CallbackInfo& info);
Napi::Value Assign(const Napi::CallbackInfo& info);
Napi::Value Pca(const Napi::CallbackInfo& info);

}  // namespace sidx
