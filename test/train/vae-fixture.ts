/** Small synthetic clustered data for the RQ-VAE / VQ-VAE tests. */
import { gaussian, rng } from '../helpers/random.ts';

/** n rows of dim: `clusters` Gaussian centres (unit variance per coordinate) plus noise of std `noise`; and labels. */
export function clusteredRows(n: number, dim: number, clusters: number, seed: number, noise = 0.3):
  { data: Float32Array; labels: Int32Array } {
  const g = gaussian(rng(seed));
  const centres = Float32Array.from({ length: clusters * dim }, () => g());
  const data = new Float32Array(n * dim);
  const labels = new Int32Array(n);
  const pick = rng(seed + 1);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(pick() * clusters);
    labels[i] = c;
    for (let j = 0; j < dim; j++) data[i * dim + j] = centres[c * dim + j]! + noise * g();
  }
  return { data, labels };
}

export function clusteredData(n: number, dim: number, clusters: number, seed: number, noise = 0.3): Float32Array {
  return clusteredRows(n, dim, clusters, seed, noise).data;
}
