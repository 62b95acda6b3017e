/**
 * FORGE's Embedding HitRate: how well the SIDs alone keep the neighbourhoods users move through. Each item's SID is
 * decoded back to an embedding (the bundle's decoder.onnx; for RQ-KMeans bundles without one, the sum of the
 * SID's codewords, which is what an RQ-KMeans decoder computes); for every history item of a test row, its top-K
 * neighbours (K = 30) by inner product among all decoded items are found (FAISS Flat); the row hits when its
 * target is among the neighbours of any of its history items. HitRate = hits / rows with a history.
 * The same computed on the items' own embeddings (as the model sees them) is reported beside it as the reference.
 */
import ort from 'onnxruntime-node';
import { itemsOf, type PredictionSet } from '../io/interactions.ts';
import type { ModelBundle } from '../tokenizer/bundle.ts';
import { readRqKmeansModel } from '../train/export.ts';
import { reconstructFromCodes } from '../train/rqkmeans.ts';
import { VectorIndex } from '../vector/vector-index.ts';

export const EMBEDDING_HITRATE_K = 30;
const DECODE_ROWS = 4096;

export interface EmbeddingHitRate {
  k: number;
  /** How the SIDs were decoded: "decoder.onnx" or "codeword sums". */
  decodedBy: string;
  /** Rows with a non-empty history (the denominator). */
  rows: number;
  /** HitRate on decoded SID embeddings. */
  decoded: number;
  /** HitRate on the items' own embeddings. */
  original: number;
}

/** n × outDim decoded embeddings of n × levels codes. */
export async function decodeSids(bundle: ModelBundle, codes: Int32Array, n: number): Promise<{ vectors: Float32Array; dim: number; by: string }> {
  const levels = bundle.manifest.levels;
  if (bundle.decoderPath === undefined) {
    if (bundle.manifest.method !== 'rqkmeans') throw new Error(`${bundle.dir} has no decoder.onnx`);
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

/** Fraction of rows whose target is among the top-k inner-product neighbours of one of their history items. */
export async function neighbourHitRate(vectors: Float32Array, n: number, dim: number, test: PredictionSet, k: number): Promise<{ rows: number; rate: number }> {
  const index = VectorIndex.create({ dim, metric: 'ip', factory: 'Flat' });
  try {
    index.add(vectors, BigInt64Array.from({ length: n }, (_, i) => BigInt(i)));
    const needed = [...new Set(test.items)].sort((a, b) => a - b);
    const queries = new Float32Array(needed.length * dim);
    needed.forEach((item, i) => queries.set(vectors.subarray(item * dim, (item + 1) * dim), i * dim));
    const kk = Math.min(k, n);
    const neighbours = new Map<number, Set<number>>();
    if (needed.length > 0) {
      const { labels } = await index.search(queries, kk);
      needed.forEach((item, i) => neighbours.set(item, new Set(Array.from(labels.subarray(i * kk, (i + 1) * kk), Number))));
    }
    let rows = 0;
    let hits = 0;
    for (let r = 0; r < test.targets.length; r++) {
      const history = itemsOf(test, r);
      if (history.length === 0) continue;
      rows++;
      const target = test.targets[r]!;
      if (history.some((h) => neighbours.get(h)!.has(target))) hits++;
    }
    return { rows, rate: rows > 0 ? hits / rows : 0 };
  } finally {
    index.close();
  }
}

/** Embedding HitRate of a bundle's SIDs (`codes`, n × levels) against the items' own `items` vectors. */
export async function embeddingHitRate(bundle: ModelBundle, codes: Int32Array, items: Float32Array, n: number, dim: number,
  test: PredictionSet, k = EMBEDDING_HITRATE_K): Promise<EmbeddingHitRate> {
  const decoded = await decodeSids(bundle, codes, n);
  const onDecoded = await neighbourHitRate(decoded.vectors, n, decoded.dim, test, k);
  const onOriginal = await neighbourHitRate(items, n, dim, test, k);
  return { k, decodedBy: decoded.by, rows: onDecoded.rows, decoded: onDecoded.rate, original: onOriginal.rate };
}
