/** The synthetic RecBole data set and RQ-KMeans bundle the `sidx eval` tests run on (eval-run, eval-progress). */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { writeNpy } from '../../src/io/npy.ts';
import { exportRqKmeansBundle } from '../../src/train/export.ts';
import { trainRqKmeans } from '../../src/train/rqkmeans.ts';
import { gaussian, rng } from '../helpers/random.ts';

export const DIM = 8;
export const N = 1200;

/** Clustered items; users walk within a cluster, so the next item is near the history. */
export function syntheticDataset(dir: string): { items: Float32Array; rows: { history: number[]; target: number }[] } {
  const g = gaussian(rng(5));
  const r = rng(6);
  const centers = Array.from({ length: 30 }, () => Array.from({ length: DIM }, () => 3 * g()));
  const cluster = Int32Array.from({ length: N }, () => Math.floor(r() * 30));
  const items = new Float32Array(N * DIM);
  for (let i = 0; i < N; i++) for (let j = 0; j < DIM; j++) items[i * DIM + j] = centers[cluster[i]!]![j]! + g();
  const members = Array.from({ length: 30 }, (_, c) => Array.from(cluster.keys()).filter((i) => cluster[i] === c));
  const rows = Array.from({ length: 300 }, (_, u) => {
    const pool = members[u % 30]!;
    const pick = () => pool[Math.floor(r() * pool.length)]!;
    const history = u % 50 === 7 ? [] : Array.from({ length: 1 + (u % 7) }, pick);
    return { history, target: pick() };
  });
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'test.inter.tsv'), `user_id:token\titem_id_list:token_seq\titem_id:token\n${
    rows.map((row, u) => `${u}\t${row.history.join(' ')}\t${row.target}`).join('\n')}\n`);
  return { items, rows };
}

/** The data set (with text_emb.npy) under `root`/synthetic and a 3-level bundle trained on it under `root`/model. */
export async function syntheticEvalSet(root: string): Promise<{ dsDir: string; modelDir: string; items: Float32Array }> {
  const dsDir = join(root, 'synthetic');
  const { items } = syntheticDataset(dsDir);
  await writeNpy(join(dsDir, 'text_emb.npy'), items, [N, DIM]);
  const trained = await trainRqKmeans(items, DIM, { codebookSizes: [16, 8, 8], seed: 0 });
  const modelDir = join(root, 'model');
  await exportRqKmeansBundle({
    dir: modelDir, id: 'synthetic-3x16', model: trained,
    training: { source: 'synthetic', command: 'test', seed: 0, dataDigest: '0'.repeat(64) },
  });
  return { dsDir, modelDir, items };
}
