/**
 * What a rerank's gather of rows read at random costs, without the rest of the rerank: the native scorers over
 * `--candidates` random rows of `--items` (512-d), the caches flushed (a 64 MiB sweep) every 16 calls, as a served
 * rerank finds them after the other requests' reads: sq8 codes (`Sq8Codes.score`, 512-byte rows in huge pages, the
 * first pass of the default storage), and f32 rows mapped from a slot file (`SlotMap.scoreSlots`, 2 KiB rows in 4 KiB
 * page-cache pages: the f32 storage's rerank, and sq8's exact re-score of its best 50). Prints median and p90 µs per
 * call; run it from two builds (worktrees) alternately to compare a change to the gathers (native/src/row_prefetch.h).
 * `--runs R`: each call's rows as R runs of consecutive rows at random places (0: every row on its own, as a rerank
 * finds its candidates in a catalog laid out in arrival order; the codes laid out in SID order see posting ranges as runs).
 * `--laid-out`: the sq8 rows moved by a layout first (`planLayout`, a random permutation of the slots), and each call's
 * slots those of R runs of consecutive rows: what a served rerank reads once the codes are laid out (every slot found
 * through the layout's table), against the same runs without one.
 *
 *   node --import tsx bench/row-gather.bench.ts [--items 100000] [--candidates 1250,50] [--calls 3000] [--runs 0] [--laid-out]
 */
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seededUniform } from '../src/random.ts';
import { seededPermutation } from '../src/train/rqvae-model.ts';
import { loadFaissBinding } from '../src/vector/binding.ts';
import { tempDir } from '../test/helpers/paths.ts';
import { benchArgs, markdownTable, percentile } from './lib.ts';

const args = benchArgs({
  items: { type: 'string', default: '100000' }, candidates: { type: 'string', default: '1250,50' },
  calls: { type: 'string', default: '3000' }, runs: { type: 'string', default: '0' }, 'laid-out': { type: 'boolean', default: false },
});
const N = Number(args.items);
const DIM = 512;
const counts = String(args.candidates).split(',').map(Number);
const calls = Number(args.calls);
const runs = Number(args.runs);

const random = seededUniform(7);
const vectors = Float32Array.from({ length: N * DIM }, () => random() - 0.5);
const query = Float32Array.from({ length: DIM }, () => random() - 0.5);
const binding = loadFaissBinding();
const tmp = tempDir();
const file = join(tmp.dir, 'rows.slots');
writeFileSync(file, vectors);
const map = new binding.SlotMap(file, DIM, 'ip');
const sq8 = new binding.Sq8Codes(DIM, 'ip', new Float32Array(DIM).fill(-0.5), new Float32Array(DIM).fill(1 / 255));
const allSlots = Int32Array.from({ length: N }, (_, i) => i);
sq8.put(allSlots, sq8.encode(vectors));
/** With --laid-out: row r of the codes holds slot rowSlots[r]. */
const rowSlots = args['laid-out'] ? seededPermutation(N, 7) : allSlots;
if (args['laid-out']) {
  sq8.planLayout(rowSlots);
  while (sq8.layoutStep(1 << 20) > 0);
}

const sweep = new Uint8Array(64 << 20);
/** `count` random slots, or `runs` runs of consecutive slots (as even as they divide), each from a random start. */
function slotSet(count: number): Int32Array {
  if (runs <= 0 || runs >= count) return Int32Array.from({ length: count }, () => Math.floor(random() * N));
  const out = new Int32Array(count);
  for (let r = 0, at = 0; r < runs; r++) {
    const length = Math.floor((count * (r + 1)) / runs) - at;
    const start = Math.floor(random() * (N - length));
    for (let i = 0; i < length; i++) out[at++] = rowSlots[start + i]!;
  }
  return out;
}

/** Median and p90 µs of `score` over `calls` calls on 64 slot sets of `count` (slotSet), caches flushed every 16. */
function measure(count: number, score: (slots: Int32Array) => unknown): [number, number] {
  const sets = Array.from({ length: 64 }, () => slotSet(count));
  const us: number[] = [];
  for (let call = 0; call < calls; call++) {
    if (call % 16 === 0) for (let i = 0; i < sweep.length; i += 64) sweep[i]! += 1;
    const t0 = process.hrtime.bigint();
    score(sets[call % 64]!);
    us.push(Number(process.hrtime.bigint() - t0) / 1000);
  }
  us.sort((a, b) => a - b);
  return [percentile(us, 50), percentile(us, 90)];
}

try {
  const rows: Array<Array<string | number>> = [];
  for (const count of counts) {
    const [sqMedian, sqP90] = measure(count, (slots) => sq8.score(query, slots));
    const [f32Median, f32P90] = args['laid-out'] ? [NaN, NaN] : measure(count, (slots) => map.scoreSlots(query, slots));
    rows.push([count, sqMedian.toFixed(1), sqP90.toFixed(1), f32Median.toFixed(1), f32P90.toFixed(1)]);
  }
  console.log(`${N} x ${DIM} rows${runs > 0 ? ` in ${runs} runs a call` : ', each at random'}${args['laid-out'] ? ', sq8 laid out (f32 not measured)' : ''}, ${calls} calls per cell, µs per call`);
  console.log(markdownTable(['rows per call', 'sq8 codes, median', 'sq8 p90', 'f32 mapped, median', 'f32 p90'], rows));
} finally {
  sq8.close();
  map.close();
  rmSync(file, { force: true });
  tmp.cleanup();
}
