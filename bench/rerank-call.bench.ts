/**
 * What one sq8 rerank off the event loop (`scoreSubsetAsync`, the served path under load) costs the event loop: an
 * sq8 store over `--items` of `sidx bench`'s synthetic vectors (512-d, built in a temporary directory the way the
 * catalog writes them), then `--calls` reranks of `--candidates` random keys awaited one by one. Per call it prints the
 * synchronous part (from the call until its promise is returned) and the event loop's whole active time
 * (performance.eventLoopUtilization: that part, the continuation after the pool thread's answer, the promise
 * machinery), medians over rounds; compare builds by running it from each (alternated).
 *
 *   node --import tsx bench/rerank-call.bench.ts [--items 100000] [--candidates 1250] [--calls 3000] [--rounds 5]
 */
import { performance } from 'node:perf_hooks';
import { syntheticCatalog } from '../src/bench/synthetic-catalog.ts';
import { Sq8Store } from '../src/vector/sq8-store.ts';
import { fill, openCodeStore } from '../test/helpers/code-stores.ts';
import { tempDir } from '../test/helpers/paths.ts';
import { benchArgs } from './lib.ts';

const args = benchArgs({
  items: { type: 'string', default: '100000' }, candidates: { type: 'string', default: '1250' },
  calls: { type: 'string', default: '3000' }, rounds: { type: 'string', default: '5' },
});
const [N, C, calls, rounds] = [Number(args.items), Number(args.candidates), Number(args.calls), Number(args.rounds)];
const DIM = 512;
const tmp = tempDir();
const { put, store, close } = openCodeStore((base, slots, metric, opts) => Sq8Store.open(base, slots, metric, opts), tmp.dir, DIM, 'ip', 0, 10_000);
try {
  const { items, queries } = await syntheticCatalog({ n: N, q: 64, dim: DIM, seed: 1 });
  fill(put, items, DIM, 5000);
  let seed = 7;
  const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
  const keys = Array.from({ length: 64 }, () => BigInt64Array.from({ length: C }, () => BigInt(1 + Math.floor(random() * N))));
  const syncUs: number[] = [];
  const loopUs: number[] = [];
  for (let round = 0; round < rounds; round++) {
    let sync = 0;
    const before = performance.eventLoopUtilization();
    for (let i = 0; i < calls; i++) {
      const t0 = performance.now();
      const pending = store.scoreSubsetAsync(queries.subarray((i % 64) * DIM, (i % 64 + 1) * DIM), keys[i % 64]!, 10);
      sync += performance.now() - t0;
      await pending;
    }
    const elu = performance.eventLoopUtilization(before);
    syncUs.push((1000 * sync) / calls);
    loopUs.push((1000 * elu.active) / calls);
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!.toFixed(1);
  console.log(`sq8, ${N} items, ${C} candidates per rerank, ${calls} calls x ${rounds} rounds: synchronous part ${median(syncUs)} µs, `
    + `event loop active ${median(loopUs)} µs per call (medians; rounds: ${syncUs.map((v) => v.toFixed(1)).join(' / ')})`);
} finally {
  close();
  tmp.cleanup();
}
