/**
 * The synthetic catalog every serving bench uses (`sidx bench`, bench/cluster.bench.ts): 512-d items and queries
 * clustered around the scientific text embeddings of the shared data when they are there (so the shipped models,
 * trained on real embeddings, see their kind of input), else around 1,024 random centres; noise 0.6, L2-normalised.
 * With fixed centres, a prefix of a larger catalog is a smaller catalog of the same distribution.
 */
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { clusteredEmbeddings } from '../eval/synthetic.ts';
import { readNpy } from '../io/npy.ts';

export interface SyntheticCatalog {
  items: Float32Array;
  queries: Float32Array;
  /** One line for reports: where the centres came from. */
  data: string;
}

export async function syntheticCatalog(o: { n: number; q: number; dim: number; seed: number }): Promise<SyntheticCatalog> {
  const shared = resolve(process.env.SIDX_SHARED_DATA ?? '../shared/data', 'scientific/text_emb.npy');
  const centres = existsSync(shared) && o.dim === 512 ? (await readNpy(shared)).data : undefined;
  const data = centres
    ? `synthetic, clustered around the ${centres.length / o.dim} scientific text embeddings (noise 0.6, L2-normalised)`
    : 'synthetic, 1024 random clusters (noise 0.6, L2-normalised)';
  const items = clusteredEmbeddings({ n: o.n, dim: o.dim, seed: o.seed, centres, clusters: 1024, noise: 0.6 });
  const queries = clusteredEmbeddings({ n: o.q, dim: o.dim, seed: o.seed + 1_000_003, centres, clusters: 1024, noise: 0.6 });
  return { items, queries, data };
}
