"""The FAISS Python baseline of bench/rqkmeans-vs-faiss.ts: the same residual k-means as `sidx train --method
rqkmeans` (same normalisation, k-means parameters, seeds and residual update), with faiss.Kmeans from Python.

    python3 bench/rqkmeans-vs-faiss.py FILE.npy LEVELS K ITERS SEED NORMALIZE THREADS

Prints one JSON line: {"seconds": training time (load excluded), "objective": [final k-means objective per level],
"faiss": version}. Needs numpy and faiss (Debian: python3-faiss); this is a benchmark baseline, not a dependency.
"""
import json
import math
import sys
import time

import faiss
import numpy as np


def main() -> None:
    path, levels, k, iters, seed, normalize, threads = sys.argv[1:8]
    levels, k, iters, seed, threads = int(levels), int(k), int(iters), int(seed), int(threads)
    faiss.omp_set_num_threads(threads)
    data = np.ascontiguousarray(np.load(path), dtype=np.float32)
    n, dim = data.shape
    started = time.perf_counter()
    residual = data.copy()
    if normalize == "l2":
        faiss.normalize_L2(residual)
    objectives = []
    for level in range(levels):
        kmeans = faiss.Kmeans(dim, k, niter=iters, seed=seed + level, max_points_per_centroid=math.ceil(n / k),
                              min_points_per_centroid=1, verbose=False)
        kmeans.train(residual)
        _, labels = kmeans.index.search(residual, 1)
        residual -= kmeans.centroids[labels[:, 0]]
        objectives.append(float(kmeans.obj[-1]))
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "objective": objectives, "faiss": faiss.__version__}))


if __name__ == "__main__":
    main()
