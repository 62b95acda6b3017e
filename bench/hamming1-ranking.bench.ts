/**
 * Which Hamming-1 neighbours to take first at a fixed candidate budget: the encoder's per-level distances (the service's
 * `orderNeighbours`, as `expand: "hamming1"`: the differing code's distance above the level's best, codes outside the top-M
 * last) against the query's similarity to each neighbour SID's decoded embedding in the input space (decoder.onnx, or
 * the codeword sums of an RQ-KMeans bundle). On the generalisation proxy (bench/lib.ts `proxyCatalog`): the items of
 * the query's own SID, then of its occupied Hamming-1 neighbours in each order, until C candidates; those re-scored
 * exactly; the share of the exact top k found.
 *
 *   SIDX_SHARED_DATA=../shared/data node --import tsx bench/hamming1-ranking.bench.ts --model models/default
 *     [--items 20000] [--queries 300] [--budgets 6,9,20,50]
 */
import { resolve } from 'node:path';
import { recallAtK } from '../src/bench/baselines.ts';
import { orderNeighbours } from '../src/service/candidates.ts';
import type { Neighbour as ItemNeighbour } from '../src/store/catalog-scan.ts';
import { decodeSids } from '../src/train/sid-decoder.ts';
import { loadBundle } from '../src/tokenizer/bundle.ts';
import { EncoderPool } from '../src/tokenizer/encoder-pool.ts';
import { benchArgs, markdownTable, proxyCatalog } from './lib.ts';

const args = benchArgs({
  model: { type: 'string', default: 'models/default' }, items: { type: 'string', default: '20000' },
  queries: { type: 'string', default: '300' }, budgets: { type: 'string', default: '6,9,20,50' }, seed: { type: 'string', default: '1' },
});
const n = Number(args.items);
const q = Number(args.queries);
const k = 10;
const budgets = String(args.budgets).split(',').map(Number);
const bundle = await loadBundle(resolve(String(args.model)));
const { levels: L, inputDim: dim, topM: M, metric } = bundle.manifest;
const { items, queries, truth } = await proxyCatalog({ n, q, dim, seed: Number(args.seed), k, metric });

const pool = await EncoderPool.create(bundle, { workers: 2, provider: 'cpu', intraOpThreads: 1 });
const itemEnc = await pool.encode(items, n);
const queryEnc = await pool.encode(queries, q);
await pool.close();

const sidKey = (codes: ArrayLike<number>, at: number) => Array.from({ length: L }, (_, l) => codes[at + l]).join(',');
const bySid = new Map<string, number[]>();
for (let i = 0; i < n; i++) {
  const key = sidKey(itemEnc.codes, i * L);
  const list = bySid.get(key);
  if (list) list.push(i);
  else bySid.set(key, [i]);
}

interface Neighbour { query: number; codes: Int32Array; level: number; inputScore: number }
const K = bundle.manifest.codebookSizes;
const perQuery: Neighbour[][] = [];
for (let qi = 0; qi < q; qi++) {
  const own = queryEnc.codes.subarray(qi * L, (qi + 1) * L);
  const list: Neighbour[] = [];
  for (let l = L - 1; l >= 0; l--) {
    for (let c = 0; c < K[l]!; c++) {
      if (c === own[l]) continue;
      const codes = own.slice();
      codes[l] = c;
      if (bySid.has(sidKey(codes, 0))) list.push({ query: qi, codes, level: l, inputScore: 0 });
    }
  }
  perQuery.push(list);
}
const all = perQuery.flat();
const decoded = await decodeSids(bundle, Int32Array.from(all.flatMap((nb) => Array.from(nb.codes))), all.length);
const dot = (a: Float32Array, ao: number, b: Float32Array, bo: number, d: number) => {
  let s = 0;
  for (let j = 0; j < d; j++) s += a[ao + j]! * b[bo + j]!;
  return s;
};
all.forEach((nb, i) => {
  const norm = Math.sqrt(dot(decoded.vectors, i * decoded.dim, decoded.vectors, i * decoded.dim, decoded.dim)) || 1;
  nb.inputScore = dot(queries, nb.query * dim, decoded.vectors, i * decoded.dim, dim) / norm; // cosine up to the query's norm
});

const itemsOf = (nb: Neighbour): ItemNeighbour[] => bySid.get(sidKey(nb.codes, 0))!.map((i) => ({ key: BigInt(i), codes: nb.codes, position: nb.level }));
/** A query's neighbouring items in each order: the service's own (orderNeighbours over the encoder's top-M), or by input-space score. */
const orders: Record<string, (qi: number) => ItemNeighbour[]> = {
  'encoder distances (the service)': (qi) => orderNeighbours(perQuery[qi]!.flatMap(itemsOf), {
    topCodes: queryEnc.topCodes.subarray(qi * L * M, (qi + 1) * L * M), topDistances: queryEnc.topDistances.subarray(qi * L * M, (qi + 1) * L * M), topM: M,
  }),
  'decoded SID, input space': (qi) => [...perQuery[qi]!].sort((a, b) => b.inputScore - a.inputScore).flatMap(itemsOf),
};
const rows: Array<Array<string | number>> = [];
for (const [name, order] of Object.entries(orders)) {
  const row: Array<string | number> = [name];
  for (const C of budgets) {
    const found = new BigInt64Array(q * k).fill(-1n);
    let total = 0;
    for (let qi = 0; qi < q; qi++) {
      const taken = [...(bySid.get(sidKey(queryEnc.codes, qi * L)) ?? [])].slice(0, C);
      for (const nb of order(qi)) {
        if (taken.length >= C) break;
        taken.push(Number(nb.key));
      }
      total += taken.length;
      const scored = taken.map((i) => ({ i, s: dot(queries, qi * dim, items, i * dim, dim) })).sort((a, b) => b.s - a.s).slice(0, k);
      scored.forEach((h, j) => { found[qi * k + j] = BigInt(h.i); });
    }
    row.push(`${recallAtK(found, truth, q, k).toFixed(3)} (${(total / q).toFixed(1)})`);
  }
  rows.push(row);
}
console.log(`${bundle.manifest.id}, ${n} items, ${q} queries, top-${M} per level; share of the exact top ${k} (mean candidates) at each budget:`);
console.log(markdownTable(['neighbour order', ...budgets.map((C) => `C = ${C}`)], rows));
