/**
 * A plain float64 JavaScript reference of the RQ-VAE forward pass and loss terms (independent of the graphs), for
 * checking loss values and codes on tiny models.
 */
import { paramLayout, type RqVaeShape } from '../../src/train/rqvae-model.ts';

function dense(x: Float64Array, n: number, w: Float64Array, b: Float64Array, inDim: number, outDim: number,
  relu: boolean): Float64Array {
  const out = new Float64Array(n * outDim);
  for (let i = 0; i < n; i++) {
    for (let o = 0; o < outDim; o++) {
      let acc = b[o]!;
      for (let k = 0; k < inDim; k++) acc += x[i * inDim + k]! * w[k * outDim + o]!;
      out[i * outDim + o] = relu ? Math.max(0, acc) : acc;
    }
  }
  return out;
}

export interface ReferenceResult {
  z: Float64Array;
  /** s_l = sum of the first l+1 codewords of each row, per level (n x H each). */
  partialSums: Float64Array[];
  y: Float64Array;
  recon: number;
  commit: number;
  /** Nearest-codeword residual codes (n x L). */
  argminCodes: Int32Array;
}

export interface ReferenceOptions {
  commitment: 'forge' | 'classic';
  ema: boolean;
  beta?: number;
  /** Codes to quantise with (n x L); default: argmin. */
  codes?: ArrayLike<number>;
  /**
   * Stop-gradient anchors: the z and partial sums of the point where gradients are taken. With them the result's
   * `recon` and `commit` are the surrogate objective whose true gradient is the straight-through / stop-gradient
   * gradient the graph computes: every sg(.) is replaced by its anchor value.
   */
  anchor?: { z: Float64Array; partialSums: Float64Array[] };
  /** Reconstruction target (denoising); default: x. */
  target?: Float64Array;
}

function meanSquaredDiff(a: Float64Array, b: Float64Array): number {
  let acc = 0;
  for (let i = 0; i < a.length; i++) acc += (a[i]! - b[i]!) ** 2;
  return acc / a.length;
}

export function referenceForward(shape: RqVaeShape, flat: Float64Array, x: Float64Array, n: number,
  options: ReferenceOptions): ReferenceResult {
  const layout = paramLayout(shape);
  const view = (name: string) => {
    const s = layout.byName.get(name)!;
    return flat.subarray(s.offset, s.offset + s.size);
  };
  const run = (input: Float64Array, layers: typeof layout.encoder) => layers.reduce(
    (h, l) => dense(h, n, view(l.weight), view(l.bias), l.inDim, l.outDim, l.relu), input);
  const z = run(x, layout.encoder);
  const H = shape.latentDim;
  const L = shape.codebookSizes.length;
  const r = z.slice();
  const s = new Float64Array(n * H);
  const partialSums: Float64Array[] = [];
  const argminCodes = new Int32Array(n * L);
  for (let l = 0; l < L; l++) {
    const c = view(layout.codebooks[l]!);
    const k = shape.codebookSizes[l]!;
    for (let i = 0; i < n; i++) {
      let best = 0;
      let bestD = Infinity;
      for (let j = 0; j < k; j++) {
        let d = 0;
        for (let h = 0; h < H; h++) d += (r[i * H + h]! - c[j * H + h]!) ** 2;
        if (d < bestD) { bestD = d; best = j; }
      }
      argminCodes[i * L + l] = best;
      const code = options.codes ? Number(options.codes[i * L + l]) : best;
      for (let h = 0; h < H; h++) {
        r[i * H + h]! -= c[code * H + h]!;
        s[i * H + h]! += c[code * H + h]!;
      }
    }
    partialSums.push(s.slice());
  }
  const anchor = options.anchor ?? { z, partialSums };
  // Decoder input: value s_L, gradient to z (straight-through).
  const decIn = Float64Array.from(z, (v, i) => v + anchor.partialSums[L - 1]![i]! - anchor.z[i]!);
  const y = run(decIn, layout.decoder);
  const recon = meanSquaredDiff(y, options.target ?? x);
  const beta = options.beta ?? 0.25;
  let commit = 0;
  for (let l = 0; l < L; l++) {
    const toCodes = meanSquaredDiff(z, anchor.partialSums[l]!); // z moves, codewords fixed
    if (options.commitment === 'forge') {
      const toZ = options.ema ? 0 : meanSquaredDiff(anchor.z, partialSums[l]!); // codewords move, z fixed
      commit += (0.5 * toCodes + 0.5 * toZ) / L;
    } else {
      // mean((sg r_l - q_l)^2) = mean((z_a - s_a,{l-1} - q_l)^2) = mean((z_a - s_a,{l-1} - s_l + s_{l-1}))^2
      let codebookTerm = 0;
      if (!options.ema) {
        const prevA = l === 0 ? new Float64Array(n * H) : anchor.partialSums[l - 1]!;
        const prev = l === 0 ? new Float64Array(n * H) : partialSums[l - 1]!;
        const target = Float64Array.from(anchor.z, (v, i) => v - prevA[i]! + prev[i]!);
        codebookTerm = meanSquaredDiff(target, partialSums[l]!);
      }
      commit += codebookTerm + beta * toCodes;
    }
  }
  return { z, partialSums, y, recon, commit, argminCodes };
}
