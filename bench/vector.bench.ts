/**
 * Rerank primitive vs FAISS search on one flat index, and the price of crossing the JS <-> native boundary.
 * Prints ratios only (no thresholds). Run: node --import tsx bench/vector.bench.ts [--n 100000] [--dim 512]
 */
import { parseArgs } from 'node:util';

import { loadFaissBinding } from '../src/vector/binding.ts';
import { VectorIndex } from '../src/vector/vector-index.ts';

const { values } = parseArgs({
  options: {
    n: { type: 'string', default: '100000' },
    dim: { type: 'string', default: '512' },
    candidates: { type: 'string', default: '1000' },
    k: { type: 'string', default: '10' },
  },
});
const n = Number(values.n);
const dim = Number(values.dim);
const candidateCount = Number(values.candidates);
const k = Number(values.k);

function randomUnitVectors(count: number): Float32Array {
  const out = new Float32Array(count * dim);
  for (let i = 0; i < out.length; i++) out[i] = Math.random() - 0.5;
  for (let r = 0; r < count; r++) {
    const v = out.subarray(r * dim, (r + 1) * dim);
    const norm = Math.hypot(...v);
    for (let j = 0; j < dim; j++) v[j] /= norm;
  }
  return out;
}

/** Median wall time per call in nanoseconds over `rounds` rounds of `calls` calls. */
async function medianNs(rounds: number, calls: number, body: () => unknown): Promise<number> {
  const samples: number[] = [];
  for (let r = 0; r < rounds; r++) {
    const start = process.hrtime.bigint();
    for (let c = 0; c < calls; c++) await body();
    samples.push(Number(process.hrtime.bigint() - start) / calls);
  }
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

const binding = loadFaissBinding();
const index = VectorIndex.create({ dim, metric: 'ip' });
const raw = new binding.Index(dim, 'ip');
const vectors = randomUnitVectors(n);
const ids = BigInt64Array.from({ length: n }, (_, i) => BigInt(i) * 1_000_003n);
await index.addAsync(vectors, ids);
raw.add(vectors, ids);
const query = randomUnitVectors(1);
const batch = randomUnitVectors(64);
const candidates = BigInt64Array.from({ length: candidateCount }, () => ids[Math.floor(Math.random() * n)]);

const noopModule = await medianNs(5, 200_000, () => binding.noop());
const noopMethod = await medianNs(5, 200_000, () => raw.noop());
const scoreRaw = await medianNs(7, 200, () => raw.scoreSubset(query, candidates));
const scoreWrapped = await medianNs(7, 200, () => index.scoreSubset(query, candidates));
const searchOne = await medianNs(5, 3, () => index.search(query, k));
const searchBatch = (await medianNs(3, 1, () => index.search(batch, k))) / 64;
index.close();
raw.close();

const us = (ns: number) => `${(ns / 1000).toFixed(2)} µs`;
console.log(`# vector bench: ${n} x ${dim} Flat/IP, ${candidateCount} candidates, k=${k}, FAISS ${binding.faissVersion}, ` +
  `${binding.getNumThreads()} OpenMP threads`);
console.log('| measurement | time per call | ratio |');
console.log('|---|---|---|');
console.log(`| noop() module function | ${us(noopModule)} | 1 |`);
console.log(`| Index.noop() method | ${us(noopMethod)} | ${(noopMethod / noopModule).toFixed(2)} x noop |`);
console.log(`| scoreSubset raw binding | ${us(scoreRaw)} | ${(scoreRaw / noopMethod).toFixed(0)} x noop |`);
console.log(`| scoreSubset VectorIndex | ${us(scoreWrapped)} | ${(scoreWrapped / scoreRaw).toFixed(2)} x raw |`);
console.log(`| search, 1 query (full scan) | ${us(searchOne)} | ${(searchOne / scoreWrapped).toFixed(1)} x scoreSubset |`);
console.log(`| search, 64-query batch, per query | ${us(searchBatch)} | ${(searchBatch / scoreWrapped).toFixed(1)} x scoreSubset |`);
