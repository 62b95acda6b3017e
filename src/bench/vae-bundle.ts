/**
 * An RQ-VAE bundle of a given shape without training, for encode benchmarks (FORGE's 512-256-256-64, 3 x 8192 in
 * seconds instead of hours): seeded initial weights (src/train/rqvae-model.ts's initParams, PyTorch's nn.Linear
 * default), codebooks drawn from the latents of `sample` (level 0: latents of K distinct sample rows; deeper levels:
 * halved differences of two distinct latents, the scale of a residual), so that every level's codes spread as a trained model's do.
 * Written by the trainer's own exporter (exportVaeBundle), so encoder.onnx is exactly what `sidx serve` runs.
 * Encode time does not depend on the weights' values, only on the shape.
 */
import { createHash } from 'node:crypto';
import * as ort from 'onnxruntime-node';
import type { ModelBundle } from '../tokenizer/bundle.ts';
import { clusteredEmbeddings } from '../eval/synthetic.ts';
import { buildLatentGraph, type TrainedModel } from '../train/rqvae-export-graphs.ts';
import { exportVaeBundle } from '../train/rqvae-export.ts';
import { initParams, paramLayout, paramView, seededPermutation, type RqVaeShape } from '../train/rqvae-model.ts';

export interface SeededVaeOptions {
  dir: string;
  shape: RqVaeShape;
  seed: number;
  /** Rows (row-major, shape.inputDim wide) whose latents seed the codebooks; at least max(K) rows (2 K or more keeps the
   *  deeper levels' pairs distinct). */
  sample: Float32Array;
  normalize: 'l2' | 'none';
  id?: string;
}

async function latents(model: TrainedModel, rows: Float32Array, n: number): Promise<Float32Array> {
  const session = await ort.InferenceSession.create(buildLatentGraph(model), { intraOpNumThreads: 1 });
  try {
    const out = await session.run({ embedding: new ort.Tensor('float32', rows, [n, model.shape.inputDim]) });
    return out.latent!.data as Float32Array;
  } finally {
    await session.release();
  }
}

export async function seededVaeBundle(o: SeededVaeOptions): Promise<ModelBundle> {
  const { shape } = o;
  const n = o.sample.length / shape.inputDim;
  const maxK = Math.max(...shape.codebookSizes);
  if (!Number.isInteger(n) || n < maxK) throw new RangeError(`sample must hold at least ${maxK} rows of ${shape.inputDim}, got ${n}`);
  const layout = paramLayout(shape);
  const model: TrainedModel = { shape, layout, params: initParams(layout, o.seed), normalize: o.normalize };
  const z = await latents(model, o.sample, n);
  const h = shape.latentDim;
  layout.codebooks.forEach((name, l) => {
    // Distinct rows (no duplicate codewords, which would tie exactly): a, b from one permutation per level.
    const order = seededPermutation(n, o.seed + 1 + l);
    const c = paramView(model.params, layout.byName.get(name)!);
    for (let k = 0; k < shape.codebookSizes[l]!; k++) {
      const a = order[k]! * h;
      const b = order[n - 1 - k]! * h;
      for (let j = 0; j < h; j++) c[k * h + j] = l === 0 ? z[a + j]! : 0.5 * (z[a + j]! - z[b + j]!);
    }
  });
  return exportVaeBundle({
    dir: o.dir, method: 'rqvae', model, id: o.id ?? `seeded-rqvae-${shape.codebookSizes.length}x${maxK}`,
    training: { source: 'seeded sample (untrained: encode benchmarks only)', command: 'seededVaeBundle', seed: o.seed, dataDigest: createHash('sha256').update(new Uint8Array(o.sample.buffer, o.sample.byteOffset, o.sample.byteLength)).digest('hex') },
  });
}

/** FORGE's RQ-VAE shape (al_sid, 512-d item embeddings): MLP 512-256-256-64, 3 levels x 8192 codes. */
export const FORGE_SHAPE: RqVaeShape = { inputDim: 512, hidden: [256, 256], latentDim: 64, codebookSizes: [8192, 8192, 8192] };

/**
 * The encode benchmarks' bundle of a shape (default FORGE's): seededVaeBundle (seed 1, input L2-normalised) with the
 * codebooks drawn from 2 K synthetic rows (1,000 clusters, seed 7). `sidx bench --encode-model forge` and
 * bench/forge-encode.bench.ts build it alike.
 */
export function encodeBenchBundle(dir: string, shape: RqVaeShape = FORGE_SHAPE): Promise<ModelBundle> {
  const sample = clusteredEmbeddings({ n: 2 * Math.max(...shape.codebookSizes), dim: shape.inputDim, seed: 7, clusters: 1000 });
  return seededVaeBundle({ dir, shape, seed: 1, sample, normalize: 'l2' });
}

/** Rows the encode benchmarks time: synthetic, 1,000 clusters, seed 42, L2-normalised. */
export function encodeBenchRows(n: number, dim: number): Float32Array {
  return clusteredEmbeddings({ n, dim, seed: 42, clusters: 1000 });
}
