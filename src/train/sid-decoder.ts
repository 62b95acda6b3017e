/**
 * SID -> embedding: a bundle's decoder.onnx (RQ-VAE / VQ-VAE), or for RQ-KMeans bundles without one the sum of the
 * SID's codewords (what an RQ-KMeans decoder computes). Used for reconstruction error (`sidx metrics`) and FORGE's
 * Embedding HitRate (`sidx eval`).
 */
import ort from 'onnxruntime-node';
import type { ModelBundle } from '../tokenizer/bundle.ts';
import { readRqKmeansModel } from './export.ts';
import { reconstructFromCodes } from './rqkmeans.ts';

const DECODE_ROWS = 4096;

/** True when `decodeSids` can decode this bundle's SIDs. */
export function canDecode(bundle: ModelBundle): boolean {
  return bundle.decoderPath !== undefined || bundle.manifest.method === 'rqkmeans';
}

/** n × outDim decoded embeddings of n × levels codes. */
export async function decodeSids(bundle: ModelBundle, codes: Int32Array, n: number): Promise<{ vectors: Float32Array; dim: number; by: string }> {
  const levels = bundle.manifest.levels;
  if (!canDecode(bundle)) throw new Error(`${bundle.dir} has no decoder.onnx`);
  if (bundle.decoderPath === undefined) {
    const model = await readRqKmeansModel(bundle);
    return { vectors: reconstructFromCodes(model, codes, n), dim: model.dim, by: 'codeword sums' };
  }
  const session = await ort.InferenceSession.create(bundle.decoderPath, { intraOpNumThreads: 1, graphOptimizationLevel: 'all' });
  try {
    const parts: Float32Array[] = [];
    let dim = 0;
    for (let start = 0; start < n; start += DECODE_ROWS) {
      const rows = Math.min(DECODE_ROWS, n - start);
      const input = BigInt64Array.from(codes.subarray(start * levels, (start + rows) * levels), (c) => BigInt(c));
      const out = await session.run({ [session.inputNames[0]!]: new ort.Tensor('int64', input, [rows, levels]) });
      const t = out[session.outputNames[0]!]!;
      dim = t.dims[1] as number;
      parts.push((t.data as Float32Array).slice());
    }
    const vectors = new Float32Array(n * dim);
    parts.reduce((offset, p) => (vectors.set(p, offset), offset + p.length), 0);
    return { vectors, dim, by: 'decoder.onnx' };
  } finally {
    await session.release();
  }
}
