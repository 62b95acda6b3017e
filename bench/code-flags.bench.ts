/**
 * The flagged rows of the compressed storages: how many rows the quantiser fitted on the first `--train` items flags,
 * and what that does to recall@10 against exact float32, for each margin. A flagged row is always re-scored exactly, so
 * flags cost reads, not order.
 * - sq8 (src/vector/sq8-store.ts): a row holding a value beyond the ranges (a code 0 or 255: clamped); the margin widens
 *   each range, which costs code precision (seen at a rescore below 10, where the code order alone picks the top 10).
 * - pq (src/vector/pq-store.ts): a row whose residual is above the held-out training rows' `--quantile`, widened by
 *   the margin; the margin changes nothing but which rows are flagged.
 *
 *   SIDX_SHARED_DATA=../shared/data node --import tsx bench/code-flags.bench.ts [--storage sq8|pq]
 *     [--margins 0,0.1,0.2] [--quantile 0.99] [--n 100000] [--queries 200] [--only NAME-PART]
 *
 * Catalogs: the scientific text and image embeddings (1,585 x 512) and the instruments SASRec embeddings (9,922 x 32),
 * queries = 200 items moved slightly, trained on the first 1,000; `sidx bench`'s catalog (--n clustered around the
 * scientific text embeddings, its own queries), trained on the first 10,000; and that catalog drifted: its first half
 * around one half of the centres, the rest around the other half (a catalog growing into new categories); and (pq)
 * that catalog with every 100th item after the training ones at 3x the norm (outliers). Each row builds a store in a
 * temporary directory (slot file + codes), as a server's writes do.
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { clusteredEmbeddings } from '../src/eval/synthetic.ts';
import { readNpy } from '../src/io/npy.ts';
import { rankByScore } from '../src/service/score-rank.ts';
import { SlotFile } from '../src/vector/slot-file.ts';
import { Sq8Store } from '../src/vector/sq8-store.ts';
import { PqStore, RESIDUAL_QUANTILE } from '../src/vector/pq-store.ts';
import { VectorFile } from '../src/vector/vector-file.ts';
import { VectorIndex } from '../src/vector/vector-index.ts';
import { benchArgs, markdownTable } from './lib.ts';

const args = benchArgs({
  storage: { type: 'string', default: 'sq8' },
  margins: { type: 'string', default: '0,0.1,0.2' },
  quantile: { type: 'string', default: String(RESIDUAL_QUANTILE) },
  n: { type: 'string', default: '100000' },
  queries: { type: 'string', default: '200' },
  only: { type: 'string', default: '' },
});
const margins = args.margins.split(',').map(Number);
const nq = Number(args.queries);
const shared = resolve(process.env.SIDX_SHARED_DATA ?? '../shared/data');
const pq = args.storage === 'pq';
if (!pq && args.storage !== 'sq8') throw new Error(`--storage must be sq8 or pq, got ${args.storage}`);
/** The last: the storage's default rescore. */
const RESCORES = pq ? [10, 50, 200] : [5, 10, 50];

interface Catalog {
  name: string;
  data: Float32Array;
  dim: number;
  queries: Float32Array;
  train: number;
}

/** Items moved slightly (not equal to any item), as test/vector/sq8-store.test.ts's queries. */
function nearItems(data: Float32Array, dim: number): Float32Array {
  return data.slice(0, nq * dim).map((x, i) => x + 0.01 * Math.sin(i));
}

async function catalogs(): Promise<Catalog[]> {
  const out: Catalog[] = [];
  for (const [name, file] of [['scientific text', 'scientific/text_emb.npy'], ['scientific image', 'scientific/image_emb.npy'], ['instruments', 'instruments/sasrec_emb.npy']]) {
    const path = join(shared, file!);
    if (!existsSync(path)) continue;
    const { data, shape } = await readNpy(path);
    out.push({ name: name!, data, dim: shape[1]!, queries: nearItems(data, shape[1]!), train: 1000 });
  }
  const text = join(shared, 'scientific/text_emb.npy');
  const centres = existsSync(text) ? (await readNpy(text)).data : undefined;
  const n = Number(args.n);
  const dim = 512;
  const bench = (o: { n: number; seed: number; centres?: Float32Array }) => clusteredEmbeddings({ dim, clusters: 1024, noise: 0.6, ...o });
  out.push({ name: '`sidx bench` catalog', data: bench({ n, seed: 1, centres }), dim, queries: bench({ n: nq, seed: 1_000_004, centres }), train: 10_000 });
  if (centres) {
    const half = Math.floor(centres.length / dim / 2) * dim; // whole centres (1,585 of them: 792 and 793)
    const drifted = new Float32Array(n * dim);
    drifted.set(bench({ n: n / 2, seed: 1, centres: centres.subarray(0, half) }));
    drifted.set(bench({ n: n / 2, seed: 2, centres: centres.subarray(half) }), (n / 2) * dim);
    out.push({ name: 'drifted (new centres in the second half)', data: drifted, dim, queries: bench({ n: nq, seed: 1_000_004, centres }), train: 10_000 });
  }
  if (pq) {
    const outliers = bench({ n, seed: 1, centres });
    for (let i = 10_000; i < n; i += 100) for (let d = 0; d < dim; d++) outliers[i * dim + d]! *= 3;
    out.push({ name: '1% outliers at 3x the norm', data: outliers, dim, queries: bench({ n: nq, seed: 1_000_004, centres }), train: 10_000 });
  }
  return out;
}

/** recall@10 of the codes' ranking (rankSubset over every item, exactTop 0) against exact scores; exact scores per query. */
async function measure(c: Catalog, margin: number) {
  const { data, dim, queries } = c;
  const n = data.length / dim;
  const dir = mkdtempSync(join(tmpdir(), 'sidx-code-flags-'));
  const file = VectorFile.open(join(dir, 'vectors.f32'), dim);
  const slots = SlotFile.open(join(dir, 'vectors'), dim, join(dir, 'vectors.f32'));
  const opts = { rescore: RESCORES[0]!, trainSize: c.train, rangeMargin: margin, residualMargin: margin, residualQuantile: Number(args.quantile), pqM: 0 };
  const store = pq ? PqStore.open(join(dir, 'vectors'), slots, 'ip', opts) : Sq8Store.open(join(dir, 'vectors'), slots, 'ip', opts);
  const flat = VectorIndex.create({ dim, metric: 'ip' });
  try {
    slots.reset();
    store.reset();
    const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(i + 1));
    for (let first = 0; first < n; first += 1000) {
      const count = Math.min(1000, n - first);
      const rows = data.subarray(first * dim, (first + count) * dim);
      const at = Uint32Array.from({ length: count }, (_, i) => first + i);
      file.write(at, rows);
      slots.assign(ids.subarray(first, first + count), at);
      store.add(rows, ids.subarray(first, first + count));
    }
    await store.training();
    flat.add(data, ids);
    const clamped = 'clampedRows' in store ? store.clampedRows() : NaN; // NaN: a build before flagged rows were re-scored
    const q = queries.length / dim;
    const hits = RESCORES.map(() => 0);
    let exactScores = 0;
    for (let i = 0; i < q; i++) {
      const query = queries.subarray(i * dim, (i + 1) * dim);
      const exact = flat.scoreSubset(query, ids);
      const want = new Set([...rankByScore(exact.slice(), 1, 10)].slice(0, 10));
      RESCORES.forEach((r, j) => {
        opts.rescore = r; // read at each rerank
        const { scores } = store.rankSubset(query, ids, 0, 10);
        if (r === RESCORES[1]) exactScores += scores.reduce((s, x, p) => s + (x === exact[p] ? 1 : 0), 0);
        for (const p of [...rankByScore(scores.slice(), 1, 10)].slice(0, 10)) if (want.has(p)) hits[j]!++;
      });
    }
    return { clamped: clamped / n, recall: hits.map((h) => h / (q * 10)), exactPerQuery: exactScores / q };
  } finally {
    flat.close();
    store.close();
    slots.close();
    file.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

const rows: string[][] = [];
for (const c of (await catalogs()).filter((c) => c.name.includes(args.only))) {
  for (const margin of margins) {
    const m = await measure(c, margin);
    rows.push([c.name, `${c.data.length / c.dim} x ${c.dim}`, String(c.train), String(margin), `${(100 * m.clamped).toFixed(2)}%`,
      ...m.recall.map((r) => r.toFixed(4)), m.exactPerQuery.toFixed(0)]);
    console.error(rows.at(-1)!.join(' | '));
  }
}
console.log(markdownTable(['catalog', 'items', 'trained on', 'margin', pq ? 'rows flagged' : 'rows clamped', ...RESCORES.map((r) => `recall@10, rescore ${r}`),
  `exact scores per query (rescore ${RESCORES[1]})`], rows));
