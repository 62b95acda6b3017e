#!/usr/bin/env python3
"""PyTorch baseline for bench/rqvae-epoch.bench.ts: the same RQ-VAE recipe as `sidx train --method rqvae`
(FORGE al_sid), timed per epoch on CPU. Not a dependency of sidx: run with Debian's python3-torch (1.13).

Recipe (as in FORGE's RQVAE_EMBED + RQBottleneck with VQ_ema=False, loss_type mse):
  z = enc(x) (Linear/ReLU MLP); residual quantisation of a detached copy of z, one codebook per level, the
  assignment by FORGE's Sinkhorn in training (distances z-scored, shifted to min 0, Q = exp(-eps cost), `iters`
  rounds of prototype/sample normalisation, argmax); commitment = 1/L sum_l 0.5 mse(z, sg s_l) + 0.5 mse(sg z, s_l);
  straight-through decoder input z + sg(s_L - z); loss = mse(dec(.), x) + commitment.
  AdamW (betas 0.9/0.999, eps 1e-8, weight decay on >= 2-d params), lr: linear warm-up then cosine to min_lr, set
  before every step from the fractional epoch. Batches: a random permutation per epoch, full batches only.
--sinkhorn scaling runs the same Sinkhorn written with scaling vectors (two matrix-vector products per round, as
sidx does) instead of FORGE's in-place normalisation of the whole matrix, to separate the algorithmic saving from
the runtime.

Inputs: --data X.npy (float32 [N, D]) and --params P.bin + P.json (the initial parameters written by the sidx
benchmark: flat float32, layout of src/train/rqvae-model.ts, weights [in, out]), so both runs start identically.
Prints one JSON object per epoch, then a summary object.
"""
import argparse
import json
import math
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn


def sinkhorn_forge(cost, iters, eps):
    """FORGE's algorithm on a [B, K] cost: returns Q [B, K] whose argmax is the assignment."""
    q = torch.exp(-cost * eps).t()  # [K, B]
    k, b = q.shape
    q /= q.sum() + 1e-8
    for _ in range(iters):
        q /= q.sum(dim=1, keepdim=True) + 1e-8
        q /= k
        q /= q.sum(dim=0, keepdim=True) + 1e-8
        q /= b
    q *= b
    return q.t()


def sinkhorn_scaling(cost, iters, eps):
    """The same fixed point with scaling vectors: Q = diag(u) exp(-eps cost) diag(v)."""
    e = torch.exp(-cost * eps)  # [B, K]
    u = torch.ones(e.shape[0], 1, dtype=e.dtype)
    v = None
    for t in range(iters):
        v = 1.0 / torch.clamp(u.t() @ e, min=1e-30)  # [1, K]
        if t + 1 < iters:
            u = 1.0 / torch.clamp(e @ v.t(), min=1e-30)  # [B, 1]
    return e * v


class RQVAE(nn.Module):
    def __init__(self, dims, levels, k, latent):
        super().__init__()
        enc, dec = [], []
        for i in range(len(dims) - 1):
            enc.append(nn.Linear(dims[i], dims[i + 1]))
            if i < len(dims) - 2:
                enc.append(nn.ReLU())
        rev = dims[::-1]
        for i in range(len(rev) - 1):
            dec.append(nn.Linear(rev[i], rev[i + 1]))
            if i < len(rev) - 2:
                dec.append(nn.ReLU())
        self.encoder = nn.Sequential(*enc)
        self.decoder = nn.Sequential(*dec)
        self.codebooks = nn.ParameterList([nn.Parameter(torch.empty(k, latent)) for _ in range(levels)])

    def forward(self, x, sinkhorn, iters, eps):
        z = self.encoder(x)
        residual = z.detach().clone()
        total = torch.zeros_like(z)
        partial = []
        codes = []
        for book in self.codebooks:
            with torch.no_grad():
                d = torch.addmm(residual.pow(2).sum(1, keepdim=True) + book.pow(2).sum(1)[None, :], residual, book.t(),
                                alpha=-2.0)
                if sinkhorn is not None:
                    d = (d - d.mean()) / (d.std() + 1e-6)
                    d = d - d.min()
                    idx = sinkhorn(d, iters, eps).argmax(dim=-1)
                else:
                    idx = d.argmin(dim=-1)
            q = F.embedding(idx, book)
            residual = residual - q
            total = total + q
            partial.append(total)
            codes.append(idx)
        commit = torch.stack([0.5 * F.mse_loss(z, s.detach()) + 0.5 * F.mse_loss(z.detach(), s) for s in partial]).mean()
        zq = z + (partial[-1] - z).detach()
        recon = F.mse_loss(self.decoder(zq), x)
        return recon, commit, torch.stack(codes, dim=1)


def load_params(model, path_bin, path_json):
    layout = json.load(open(path_json))
    flat = np.fromfile(path_bin, dtype=np.float32)
    linears = [m for m in model.encoder if isinstance(m, nn.Linear)] + [m for m in model.decoder if isinstance(m, nn.Linear)]
    names = [s['name'] for s in layout if s['kind'] == 'weight']
    assert len(names) == len(linears), (names, len(linears))
    by = {s['name']: s for s in layout}
    with torch.no_grad():
        for name, lin in zip(names, linears):
            w = by[name]
            b = by[name[:-2] + '_b']
            lin.weight.copy_(torch.from_numpy(flat[w['offset']:w['offset'] + w['size']].reshape(w['dims'])).t())
            lin.bias.copy_(torch.from_numpy(flat[b['offset']:b['offset'] + b['size']]))
        for l, book in enumerate(model.codebooks):
            c = by[f'codebook_{l}']
            book.copy_(torch.from_numpy(flat[c['offset']:c['offset'] + c['size']].reshape(c['dims'])))


def learning_rate(e, lr, min_lr, warmup, epochs):
    if e < warmup:
        return lr * e / warmup
    return min_lr + (lr - min_lr) * 0.5 * (1 + math.cos(math.pi * min(1.0, (e - warmup) / max(1e-9, epochs - warmup))))


def main():
    p = argparse.ArgumentParser()
    p.add_argument('--data', required=True)
    p.add_argument('--params', required=True, help='prefix of PARAMS.bin / PARAMS.json')
    p.add_argument('--hidden', default='256,256')
    p.add_argument('--latent-dim', type=int, default=64)
    p.add_argument('--levels', type=int, default=3)
    p.add_argument('--codebook-size', type=int, default=8192)
    p.add_argument('--batch-size', type=int, default=2048)
    p.add_argument('--epochs', type=int, default=3)
    p.add_argument('--schedule-epochs', type=int, default=150, help='epochs of the lr schedule (the timed run is a prefix)')
    p.add_argument('--warmup-epochs', type=float, default=40)
    p.add_argument('--lr', type=float, default=2e-3)
    p.add_argument('--min-lr', type=float, default=1e-7)
    p.add_argument('--sinkhorn', choices=['forge', 'scaling', 'none'], default='forge')
    p.add_argument('--sinkhorn-iters', type=int, default=5)
    p.add_argument('--sinkhorn-eps', type=float, default=10.0)
    p.add_argument('--threads', type=int, default=2)
    p.add_argument('--seed', type=int, default=0)
    a = p.parse_args()
    torch.set_num_threads(a.threads)
    torch.manual_seed(a.seed)
    x_all = torch.from_numpy(np.load(a.data).astype(np.float32, copy=False))
    n, d = x_all.shape
    dims = [d] + [int(h) for h in a.hidden.split(',') if h] + [a.latent_dim]
    model = RQVAE(dims, a.levels, a.codebook_size, a.latent_dim)
    load_params(model, a.params + '.bin', a.params + '.json')
    decay = [q for q in model.parameters() if q.ndim >= 2]
    no_decay = [q for q in model.parameters() if q.ndim < 2]
    opt = torch.optim.AdamW([{'params': decay, 'weight_decay': 1e-4}, {'params': no_decay, 'weight_decay': 0.0}],
                            lr=a.lr, betas=(0.9, 0.999), eps=1e-8)
    sink = {'forge': sinkhorn_forge, 'scaling': sinkhorn_scaling, 'none': None}[a.sinkhorn]
    batch = min(a.batch_size, n)
    steps = max(1, n // batch)
    gen = torch.Generator().manual_seed(a.seed)
    model.train()
    times = []
    for epoch in range(a.epochs):
        perm = torch.randperm(n, generator=gen)
        t0 = time.perf_counter()
        recon_sum = commit_sum = 0.0
        for step in range(steps):
            lr = learning_rate(epoch + step / steps, a.lr, a.min_lr, a.warmup_epochs, a.schedule_epochs)
            for g in opt.param_groups:
                g['lr'] = lr
            x = x_all.index_select(0, perm[step * batch:(step + 1) * batch])
            recon, commit, _ = model(x, sink, a.sinkhorn_iters, a.sinkhorn_eps)
            loss = recon + commit
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            recon_sum += recon.item()
            commit_sum += commit.item()
        dt = time.perf_counter() - t0
        times.append(dt)
        print(json.dumps({'epoch': epoch, 'seconds': dt, 'steps': steps, 'recon': recon_sum / steps,
                          'commit': commit_sum / steps}), flush=True)
    print(json.dumps({'summary': True, 'torch': torch.__version__, 'threads': torch.get_num_threads(),
                      'sinkhorn': a.sinkhorn, 'epoch_seconds': times}), flush=True)


if __name__ == '__main__':
    main()
