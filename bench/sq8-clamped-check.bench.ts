/**
 * What sq8's clamped-row check costs a rerank (native/src/sq8_codes.cc: once any stored row holds a code 0 or 255,
 * every scored row is checked for one, so that it is re-scored exactly). Two holders with the same codes, except that
 * one holds one clamped row, rerank the same candidate sets (1,000 random slots, rescore 50 from the vector file, on
 * the libuv pool as a retrieve under load does), alternated; the ratio is the check's cost.
 *
 *   node --import tsx bench/sq8-clamped-check.bench.ts [--n 1000000] [--vectors PATH] [--rounds 4]
 *
 * --vectors: an existing float32 file of at least --n x 512 rows (e.g. bench/vector-quant.bench.ts's `vectors.f32`);
 * without it a random one is written to a temporary directory (2 GB at 1M).
 */
import { closeSync, mkdtempSync, openSync, rmSync, writeSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { seededUniform } from '../src/eval/synthetic.ts';
import { loadFaissBinding, type NativeCodes } from '../src/vector/binding.ts';
import { benchArgs, markdownTable } from './lib.ts';

const args = benchArgs({
  n: { type: 'string', default: '1000000' },
  vectors: { type: 'string' },
  rounds: { type: 'string', default: '4' },
});
const dim = 512;
const n = Number(args.n);
const CHUNK = 10_000;
const rnd = seededUniform(1);
const { Sq8Codes, SlotMap } = loadFaissBinding();

function randomVectors(): { path: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), 'sidx-clamped-check-'));
  const path = join(dir, 'vectors.f32');
  const fd = openSync(path, 'w');
  const rows = new Float32Array(CHUNK * dim);
  for (let first = 0; first < n; first += CHUNK) {
    for (let i = 0; i < rows.length; i++) rows[i] = rnd() - 0.5;
    writeSync(fd, new Uint8Array(rows.buffer));
  }
  closeSync(fd);
  return { path, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}

const file = args.vectors ? { path: args.vectors, cleanup: () => undefined } : randomVectors();
const map = new SlotMap(file.path, dim, 'ip');
const holders = [0, 1].map(() => new Sq8Codes(dim, 'ip', new Float32Array(dim).fill(-1), new Float32Array(dim).fill(2 / 255)));
const [plain, flagged] = holders as [NativeCodes, NativeCodes];
const codes = new Uint8Array(CHUNK * dim);
for (let first = 0; first < n; first += CHUNK) {
  for (let i = 0; i < codes.length; i++) codes[i] = 1 + Math.floor(rnd() * 254); // 1..254: nothing clamped
  const slots = Int32Array.from({ length: CHUNK }, (_, i) => first + i);
  plain.put(slots, codes);
  flagged.put(slots, codes);
}
const clampedRow = new Uint8Array(dim).fill(7);
clampedRow[3] = 0;
flagged.put(Int32Array.of(n - 1), clampedRow); // slot n - 1: one clamped row, which no candidate set below holds
const query = Float32Array.from({ length: dim }, () => rnd() - 0.5);
const sets = Array.from({ length: 200 }, () => Int32Array.from({ length: 1000 }, () => Math.floor(rnd() * (n - 1))));

async function perCall(holder: NativeCodes): Promise<number> {
  const t0 = performance.now();
  for (const slots of sets) await holder.scoreAsync!(query, slots, map, 50);
  return ((performance.now() - t0) / sets.length) * 1000;
}

await perCall(plain);
await perCall(flagged);
const rows: string[][] = [];
for (let round = 0; round < Number(args.rounds); round++) {
  const a = await perCall(plain);
  const b = await perCall(flagged);
  rows.push([String(round + 1), a.toFixed(1), b.toFixed(1), (b / a).toFixed(3)]);
}
console.log(`# ${n} x ${dim} codes; 200 sets of 1,000 random slots; rescore 50 from ${args.vectors ?? 'a random vector file'}`);
console.log(markdownTable(['round', 'no clamped row stored: us per rerank', 'one clamped row stored (every row checked)', 'ratio'], rows));
for (const h of holders) h.close();
map.close();
file.cleanup();
