/**
 * What one sq8 rerank off the event loop (the served path under load) costs: an sq8 store over `--items` of `sidx
 * bench`'s synthetic vectors (512-d, built in a temporary directory the way the catalog writes them), then `--calls`
 * reranks of `--candidates` random keys awaited one by one, each followed by the first k = 10 of its order as a
 * retrieve reads them, two ways alternated round by round: `scoreSubsetAsync` then the ranking on the event loop
 * (score-rank.ts selectTop), or `rankSubsetAsync` with the pool thread ranking (`top`, what the service uses). Per call
 * it prints the synchronous part (from the call until its promise is returned), the event loop's whole active time
 * (performance.eventLoopUtilization: that part, the continuation after the pool thread's answer, the promise
 * machinery, the ranking) and the process's CPU (every thread), medians over rounds.
 *
 *   node --import tsx bench/rerank-call.bench.ts [--items 100000] [--candidates 1250] [--calls 3000] [--rounds 5]
 */
import { performance } from 'node:perf_hooks';
import { syntheticCatalog } from '../src/bench/synthetic-catalog.ts';
import { Sq8Store } from '../src/vector/sq8-store.ts';
import { fill, openCodeStore } from '../test/helpers/code-stores.ts';
import { tempDir } from '../test/helpers/paths.ts';
import { benchArgs } from './lib.ts';
import { rankByScore } from '../src/service/score-rank.ts';
import { seededUniform } from '../src/random.ts';

const args = benchArgs({
  items: { type: 'string', default: '100000' }, candidates: { type: 'string', default: '1250' },
  calls: { type: 'string', default: '3000' }, rounds: { type: 'string', default: '5' },
});
const [N, C, calls, rounds] = [Number(args.items), Number(args.candidates), Number(args.calls), Number(args.rounds)];
const K = 10;
/** The first k positions of an order, as fetchItems reads them. */
const take = (order: Iterable<number>) => {
  let n = 0;
  for (const _p of order) if (++n >= K) break;
  return n;
};
const DIM = 512;
const tmp = tempDir();
const { put, store, close } = openCodeStore((base, slots, metric, opts) => Sq8Store.open(base, slots, metric, opts), tmp.dir, DIM, 'ip', 0, 10_000);
try {
  const { items, queries } = await syntheticCatalog({ n: N, q: 64, dim: DIM, seed: 1 });
  fill(put, items, DIM, 5000);
  const random = seededUniform(7);
  const keys = Array.from({ length: 64 }, () => BigInt64Array.from({ length: C }, () => BigInt(1 + Math.floor(random() * N))));
  // The served sequence (service/retrieve-steps.ts orderCandidatesOffThread), both ways, alternated round by round:
  // the scores awaited, then the first k ranked on the event loop; or ranked on the pool thread (`top`).
  // A build without rankSubsetAsync (before stop 40) runs the first way alone: run this file from each build to compare.
  const ways: Record<string, (query: Float32Array, asked: BigInt64Array) => Promise<number>> = {
    'event loop ranks': async (query, asked) => take(rankByScore(await store.scoreSubsetAsync(query, asked, K), 1, K)),
  };
  if ('rankSubsetAsync' in store) {
    ways['pool thread ranks'] = async (query, asked) => {
      const { scores, top } = await store.rankSubsetAsync(query, asked, K, K);
      return take(rankByScore(scores, 1, K, top));
    };
  }
  const stats = new Map<string, { sync: number[]; loop: number[]; cpu: number[] }>();
  for (let round = 0; round < rounds; round++) {
    for (const [name, way] of Object.entries(ways)) {
      let sync = 0;
      const before = performance.eventLoopUtilization();
      const cpu0 = process.cpuUsage();
      for (let i = 0; i < calls; i++) {
        const t0 = performance.now();
        const pending = way(queries.subarray((i % 64) * DIM, (i % 64 + 1) * DIM), keys[i % 64]!);
        sync += performance.now() - t0;
        await pending;
      }
      const elu = performance.eventLoopUtilization(before);
      const cpu = process.cpuUsage(cpu0);
      const entry = stats.get(name) ?? { sync: [], loop: [], cpu: [] };
      entry.sync.push((1000 * sync) / calls);
      entry.loop.push((1000 * elu.active) / calls);
      entry.cpu.push((cpu.user + cpu.system) / calls);
      stats.set(name, entry);
    }
  }
  const median = (v: number[]) => [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)]!.toFixed(1);
  console.log(`sq8, ${N} items, ${C} candidates per rerank, k ${K}, ${calls} calls x ${rounds} rounds, medians per call:`);
  for (const [name, v] of stats) {
    console.log(`  ${name}: synchronous part ${median(v.sync)} µs, event loop active ${median(v.loop)} µs, process CPU ${median(v.cpu)} µs `
      + `(event loop per round: ${v.loop.map((x) => x.toFixed(1)).join(' / ')})`);
  }
} finally {
  close();
  tmp.cleanup();
}
