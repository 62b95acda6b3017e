/**
 * Input noise for denoising training (`--input-noise S`): the encoder sees each batch row plus isotropic Gaussian
 * noise, the decoder reconstructs the clean row. A row's noise level is u x S x ||row|| in expected norm (per
 * dimension u S ||row|| / sqrt(D)), u uniform in [0, 1] per row, so a batch spans clean to fully noisy rows; noisy
 * rows are re-normalised when the model L2-normalises its input. Seeded per step: runs and resumes reproduce.
 */
import { seededGaussian, seededUniform } from '../random.ts';

export function addInputNoise(clean: Float32Array, dim: number, level: number, l2: boolean, seed: number, out: Float32Array): void {
  const g = seededGaussian(seed);
  const u = seededUniform(seed ^ 0x5bd1e995);
  const perDim = level / Math.sqrt(dim);
  for (let o = 0; o < clean.length; o += dim) {
    let norm = 0;
    for (let j = 0; j < dim; j++) norm += clean[o + j]! * clean[o + j]!;
    const sigma = u() * perDim * Math.sqrt(norm);
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
