/** Float64 JavaScript reference of FORGE's contrastive objective (see src/train/rqvae-contrastive-graph.ts). */
import { paramLayout, type RqVaeShape } from '../../src/train/rqvae-model.ts';
import { referenceForward, type ReferenceOptions, type ReferenceResult } from './rqvae-reference.ts';

function normalise(y: Float64Array, p: number, d: number): Float64Array {
  const out = new Float64Array(y.length);
  for (let i = 0; i < p; i++) {
    let ss = 0;
    for (let j = 0; j < d; j++) ss += y[i * d + j]! ** 2;
    const norm = Math.max(Math.sqrt(ss), 1e-12);
    for (let j = 0; j < d; j++) out[i * d + j] = y[i * d + j]! / norm;
  }
  return out;
}

/** mean_i (logsumexp_j M_ij - M_ii) for M = s U V^T (P x P). */
function crossEntropy(s: number, u: Float64Array, v: Float64Array, p: number, d: number): number {
  let loss = 0;
  for (let i = 0; i < p; i++) {
    const row = Array.from({ length: p }, (_, j) => {
      let acc = 0;
      for (let k = 0; k < d; k++) acc += u[i * d + k]! * v[j * d + k]!;
      return s * acc;
    });
    const max = Math.max(...row);
    const lse = max + Math.log(row.reduce((a, m) => a + Math.exp(m - max), 0));
    loss += lse - row[i]!;
  }
  return loss / p;
}

export interface ContrastiveReference {
  clip: number;
  self: number;
  ori: number;
  cl: number;
  commit: number;
  /** Mean of the two items' reconstruction MSE. */
  recon: number;
  a: ReferenceResult;
  b: ReferenceResult;
}

export function referenceContrastive(shape: RqVaeShape, flat: Float64Array, xa: Float64Array, xb: Float64Array,
  p: number, a: ReferenceOptions, b: ReferenceOptions): ContrastiveReference {
  const layout = paramLayout(shape);
  const d = shape.inputDim;
  const ra = referenceForward(shape, flat, xa, p, a);
  const rb = referenceForward(shape, flat, xb, p, b);
  const ua = normalise(ra.y, p, d);
  const ub = normalise(rb.y, p, d);
  const [sSelf, sOri, sCl] = layout.scales.map((n) => Math.exp(flat[layout.byName.get(n)!.offset]!)) as [number, number, number];
  const self = (crossEntropy(sSelf, ua, ub, p, d) + crossEntropy(sSelf, ub, ua, p, d)) / 2;
  const ori = (crossEntropy(sOri, ua, xb, p, d) + crossEntropy(sOri, ub, xa, p, d)) / 2;
  const cl = (crossEntropy(sCl, ua, xa, p, d) + crossEntropy(sCl, ub, xb, p, d)) / 2;
  return { clip: (ori + self + cl) / 3, self, ori, cl, commit: (ra.commit + rb.commit) / 2, recon: (ra.recon + rb.recon) / 2, a: ra, b: rb };
}
