/**
 * Seeded synthetic catalogs for benchmarks and evaluation: clustered, L2-normalised embeddings.
 * Cluster centres are either given (e.g. real item embeddings, so a model trained on them sees familiar
 * directions) or drawn at random; each item is its centre plus isotropic Gaussian noise.
 */
import { seededGaussian, seededUniform } from '../random.ts';

export { seededGaussian, seededUniform };

export interface SyntheticOptions {
  n: number;
  dim: number;
  seed: number;
  /** Row-major centres × dim; random unit vectors when absent. */
  centres?: Float32Array;
  clusters?: number;
  /** Noise standard deviation per dimension, relative to a unit-norm centre. */
  noise?: number;
}

export function normalizeRows(m: Float32Array, dim: number): Float32Array {
  for (let o = 0; o < m.length; o += dim) {
    let s = 0;
    for (let j = 0; j < dim; j++) s += m[o + j]! * m[o + j]!;
    const inv = s > 0 ? 1 / Math.sqrt(s) : 0;
    for (let j = 0; j < dim; j++) m[o + j]! *= inv;
  }
  return m;
}

export function clusteredEmbeddings(opts: SyntheticOptions): Float32Array {
  const { n, dim, seed } = opts;
  const g = seededGaussian(seed);
  const u = seededUniform(seed ^ 0x9e3779b9);
  let centres = opts.centres;
  if (!centres) {
    const k = opts.clusters ?? Math.max(1, Math.round(Math.sqrt(n)));
    centres = new Float32Array(k * dim);
    for (let i = 0; i < centres.length; i++) centres[i] = g();
  } else {
    centres = centres.slice();
  }
  normalizeRows(centres, dim);
  const k = centres.length / dim;
  const sigma = (opts.noise ?? 0.5) / Math.sqrt(dim);
  const out = new Float32Array(n * dim);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(u() * k) * dim;
    const o = i * dim;
    for (let j = 0; j < dim; j++) out[o + j] = centres[c + j]! + sigma * g();
  }
  return normalizeRows(out, dim);
}
