/** Seeded randomness for tests (mulberry32 + Box-Muller), so failures reproduce. */
import { seededUniform } from '../../src/eval/synthetic.ts';

/** Uniform [0, 1) from mulberry32, the generator the synthetic catalogs use. */
export const rng = seededUniform;

export function gaussian(rand: () => number): () => number {
  return () => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());
}

export function randomMatrix(rows: number, cols: number, seed: number, scale = 1): Float32Array {
  const g = gaussian(rng(seed));
  const out = new Float32Array(rows * cols);
  for (let i = 0; i < out.length; i++) out[i] = g() * scale;
  return out;
}

export function dot(a: Float32Array, b: Float32Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}

/** The metric's score of `v` for `query`: inner product (ip) or squared L2 distance (l2). */
export function metricScore(metric: 'ip' | 'l2', query: Float32Array, v: Float32Array): number {
  if (metric === 'ip') return dot(query, v);
  let s = 0;
  for (let i = 0; i < v.length; i++) s += (query[i]! - v[i]!) ** 2;
  return s;
}
