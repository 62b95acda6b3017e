/**
 * Noise on the RQ-VAE / VQ-VAE training rows, so that a model generalises to catalogs scattered around its training
 * data: denoising input noise (`--input-noise S`: the encoder sees each batch row plus isotropic Gaussian noise of
 * expected norm u x S x ||row||, u uniform in [0, 1] per row, and the decoder reconstructs the clean row), noisy
 * copies appended to the rows (`--augment-copies N --augment-noise S`) and mixture rows (`--input-mix P`). Noisy rows
 * are re-normalised when the model L2-normalises its input. Seeded: runs and resumes reproduce.
 */
import { seededGaussian, seededUniform } from '../random.ts';

/** `level`: the noise scale S of every row, or one per row. */
export function addInputNoise(clean: Float32Array, dim: number, level: number | Float32Array, l2: boolean, seed: number, out: Float32Array): void {
  const u = seededUniform(seed ^ 0x5bd1e995);
  let row = 0;
  noisyRows(clean, dim, typeof level === 'number' ? () => u() * level : () => u() * level[row++]!, l2, seededGaussian(seed), out);
}

/**
 * Augmented training rows (`--augment-copies N --augment-noise S`): the rows followed by N noisy copies of each
 * (copy c of row i at row (c + 1) n + i), noise of expected norm S x ||row||, re-normalised when `l2`. Seeded.
 */
export function noisyCopies(rows: Float32Array, dim: number, copies: number, level: number, l2: boolean, seed: number): Float32Array {
  const out = new Float32Array(rows.length * (copies + 1));
  out.set(rows);
  const g = seededGaussian(seed);
  for (let c = 1; c <= copies; c++) noisyRows(rows, dim, () => level, l2, g, out.subarray(c * rows.length, (c + 1) * rows.length));
  return out;
}

/** out = each row + isotropic Gaussian noise of expected norm level() x ||row|| (re-normalised when l2). */
function noisyRows(clean: Float32Array, dim: number, level: () => number, l2: boolean, g: () => number, out: Float32Array): void {
  const perDim = 1 / Math.sqrt(dim);
  for (let o = 0; o < clean.length; o += dim) {
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += clean[o + j]! * clean[o + j]!;
    const sigma = level() * perDim * Math.sqrt(norm);
    let ss = 0;
    for (let j = 0; j < dim; j++) {
      const v = clean[o + j]! + sigma * g();
      out[o + j] = v;
      ss += v * v;
    }
    if (l2 && ss > 0) {
      const inv = 1 / Math.sqrt(ss);
      for (let j = 0; j < dim; j++) out[o + j]! *= inv;
    }
  }
}

/**
 * Mixture rows (`--input-mix P`): with probability P a batch row is replaced, in `out`, by the mean of itself and 1 to
 * 4 other rows of the input drawn at random (re-normalised when the model L2-normalises), the shape of a query built
 * from several items (`sidx eval`'s mean of a history). The row is reconstructed as fed (plain autoencoding).
 */
export function mixRows(batch: Float32Array, all: Float32Array, dim: number, share: number, l2: boolean, seed: number, out: Float32Array): void {
  const u = seededUniform(seed);
  const n = all.length / dim;
  if (out !== batch) out.set(batch);
  for (let o = 0; o < batch.length; o += dim) {
    if (u() >= share) continue;
    const extra = 1 + Math.floor(u() * 4);
    for (let e = 0; e < extra; e++) {
      const r = Math.floor(u() * n) * dim;
      for (let j = 0; j < dim; j++) out[o + j]! += all[r + j]!;
    }
    let ss = 0;
    const inv = 1 / (extra + 1);
    for (let j = 0; j < dim; j++) {
      out[o + j]! *= inv;
      ss += out[o + j]! * out[o + j]!;
    }
    if (l2 && ss > 0) {
      const s = 1 / Math.sqrt(ss);
      for (let j = 0; j < dim; j++) out[o + j]! *= s;
    }
  }
}
