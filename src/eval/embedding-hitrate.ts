/**
 * FORGE's Embedding HitRate: how well the SIDs alone keep the neighbourhoods users move through. Each item's SID is
 * decoded back to an embedding (the bundle's decoder.onnx; for RQ-KMeans bundles without one, the sum of the
 * SID's codewords, which is what an RQ-KMeans decoder computes); for every history item of a test row, its top-K
 * neighbours (K = 30) by inner product among all decoded items are found (FAISS Flat); the row hits when its
 * target is among the neighbours of any of its history items. HitRate = hits / rows with a history.
 * The same computed on the items' own embeddings (as the model sees them) is reported beside it as the reference.
 */
import { itemsOf, type PredictionSet } from '../io/interactions.ts';
import type { ModelBundle } from '../tokenizer/bundle.ts';
import { decodeSids } from '../train/sid-decoder.ts';
import { VectorIndex } from '../vector/vector-index.ts';

export const EMBEDDING_HITRATE_K = 30;

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
