#!/usr/bin/env python3
"""PyTorch CPU baseline for `sidx bench`: the bundle's encoder (RQ-KMeans, or RQ-VAE / VQ-VAE: MLP then residual
quantiser; same codebooks and weights as its encoder.onnx), timed at the same batch sizes on the same embeddings.
Never a runtime dependency of sidx.

    python3 bench/torch-encode.py --dir DIR --batches 1,64,1024 --threads 2 [--min-seconds 2]

DIR holds what `sidx bench` writes: codebook_0.npy .. codebook_{L-1}.npy (float32 [K_l, H]), for an RQ-VAE the
encoder MLP enc0_w.npy, enc0_b.npy .. (weights [in, out], ReLU after every layer but the last), embeddings.npy
(float32 [N, D]) and meta.json ({"levels": L, "normalize": "l2"|"none", "topM": M, "mlpLayers": n}). The computation
mirrors src/numeric/residual-encoder.ts and src/train/rqvae-export-graphs.ts: optional L2 normalisation, the MLP
(if any), then per level dist = ||r||^2 - 2 r C^T + ||C||^2,
top-M smallest (codes = the argmin), r -= C[code]. Prints one JSON object on stdout: torch version, threads,
items/s per batch size, and the codes of the first rows (to check the two implementations agree).
"""
import argparse
import json
import os
import time

import numpy as np
import torch


def encode(x, codebooks, sqnorms, normalize, top_m, mlp=()):
    r = x
    if normalize == "l2":
        r = r / torch.clamp(torch.linalg.vector_norm(r, dim=1, keepdim=True), min=1e-12)
    for i, (w, b) in enumerate(mlp):
        r = torch.addmm(b, r, w)
        if i + 1 < len(mlp):
            r = torch.relu(r)
    codes, top_codes, top_dist = [], [], []
    for level, (c, cn) in enumerate(zip(codebooks, sqnorms)):
        dist = torch.addmm(cn.unsqueeze(0), r, c.t(), beta=1.0, alpha=-2.0) + (r * r).sum(dim=1, keepdim=True)
        d, idx = torch.topk(dist, top_m, dim=1, largest=False, sorted=True)
        code = idx[:, 0]
        codes.append(code)
        top_codes.append(idx)
        top_dist.append(torch.clamp(d, min=0))
        if level + 1 < len(codebooks):
            r = r - c.index_select(0, code)
    return torch.stack(codes, dim=1), torch.stack(top_codes, dim=1), torch.stack(top_dist, dim=1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dir", required=True)
    ap.add_argument("--batches", default="1,64,1024")
    ap.add_argument("--threads", type=int, default=0)
    ap.add_argument("--min-seconds", type=float, default=2.0)
    ap.add_argument("--check-rows", type=int, default=4096)
    a = ap.parse_args()
    if a.threads > 0:
        torch.set_num_threads(a.threads)
    meta = json.load(open(os.path.join(a.dir, "meta.json")))
    levels = meta["levels"]
    codebooks = [torch.from_numpy(np.load(os.path.join(a.dir, f"codebook_{l}.npy"))) for l in range(levels)]
    sqnorms = [(c * c).sum(dim=1) for c in codebooks]
    load = lambda name: torch.from_numpy(np.load(os.path.join(a.dir, name + ".npy")))
    mlp = [(load(f"enc{i}_w"), load(f"enc{i}_b")) for i in range(meta.get("mlpLayers", 0))]
    x_all = torch.from_numpy(np.load(os.path.join(a.dir, "embeddings.npy")))
    n = x_all.shape[0]
    config = torch.__config__.show()
    blas = next((part.split("=", 1)[1] for part in config.replace(",", " ").split() if part.startswith("BLAS_INFO=")), "unknown")
    out = {"torch": torch.__version__, "threads": torch.get_num_threads(), "blas": blas, "rates": {}}
    with torch.inference_mode():
        for b in [int(s) for s in a.batches.split(",")]:
            # Warm up, then run rounds over consecutive slices until min-seconds have passed.
            encode(x_all[:b], codebooks, sqnorms, meta["normalize"], meta["topM"], mlp)
            done, rounds, t0 = 0, 0, time.perf_counter()
            while True:
                start = (rounds * b) % max(1, n - b + 1)
                encode(x_all[start:start + b], codebooks, sqnorms, meta["normalize"], meta["topM"], mlp)
                done += b
                rounds += 1
                elapsed = time.perf_counter() - t0
                if elapsed >= a.min_seconds and rounds >= 3:
                    break
            out["rates"][str(b)] = done / elapsed
        rows = min(a.check_rows, n)
        codes, _, _ = encode(x_all[:rows], codebooks, sqnorms, meta["normalize"], meta["topM"], mlp)
        out["codes"] = codes.reshape(-1).tolist()
    print(json.dumps(out))


if __name__ == "__main__":
    main()
