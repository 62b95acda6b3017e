/**
 * The candidates phase of a beam retrieve alone (`timingsMs.candidates`): one native call over the live posting index
 * (PostingIndex.gatherBeam) against the JS scans it replaces (`gathering.native = false`), on `sidx bench`'s
 * synthetic catalog in an in-process service, the two alternated per round on the same queries. Both must gather the
 * same candidates: the first round compares every query's keys and match kinds.
 *
 *   SIDX_SHARED_DATA=../shared/data node --import tsx bench/gather.bench.ts [--items 100000] [--queries 500]
 *     [--rounds 6] [--model models/default] [--max-candidates 1000]
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { syntheticCatalog } from '../src/bench/synthetic-catalog.ts';
import { loadConfig } from '../src/config.ts';
import { gathering } from '../src/service/candidates.ts';
import { SidxService } from '../src/service/sidx-service.ts';
import { benchArgs, percentile } from './lib.ts';

const args = benchArgs({
  items: { type: 'string', default: '100000' }, queries: { type: 'string', default: '500' }, rounds: { type: 'string', default: '6' },
  model: { type: 'string', default: 'models/default' }, 'max-candidates': { type: 'string', default: '1000' },
});
const n = Number(args.items);
const q = Number(args.queries);
const DIM = 512;
const { items, queries } = await syntheticCatalog({ n, q, dim: DIM, seed: 1 });
const dataDir = mkdtempSync(join(tmpdir(), 'sidx-gather-'));
const config = loadConfig({
  storage: { dataDir, checkpointEvery: 1e9 }, model: { dir: resolve(args.model!) },
  limits: { maxBatch: 1000, defaultMaxCandidates: Number(args['max-candidates']) },
}, {});
const service = await SidxService.open(config, { info: () => {}, warn: (msg: string) => console.error(`warn: ${msg}`) });
try {
  for (let start = 0; start < n; start += 1000) {
    const end = Math.min(n, start + 1000);
    await service.upsert(Array.from({ length: end - start }, (_, j) => ({ id: String(start + j), vector: items.subarray((start + j) * DIM, (start + j + 1) * DIM) })));
  }
  const maxCandidates = Number(args['max-candidates']);
  const pass = async (native: boolean) => {
    gathering.native = native;
    const ms: number[] = [];
    const answers: string[] = [];
    for (let i = 0; i < q; i++) {
      const out = await service.retrieve({ embedding: queries.subarray(i * DIM, (i + 1) * DIM), k: 10, maxCandidates });
      ms.push(out.timingsMs.candidates);
      answers.push(`${out.items.map((it) => `${it.id}:${it.match}`).join(',')}|${JSON.stringify(out.candidates)}`);
    }
    return { ms, answers };
  };
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  const rows: Array<{ native: boolean; mean: number; p50: number }> = [];
  for (let round = 0; round < Number(args.rounds); round++) {
    for (const native of round % 2 === 0 ? [false, true] : [true, false]) {
      const { ms, answers } = await pass(native);
      if (round === 0) (pass as unknown as { first?: string[] }).first ??= answers;
      if (round === 0 && native) {
        const js = (pass as unknown as { first: string[] }).first;
        const differ = answers.filter((a, i) => a !== js[i]).length;
        if (differ > 0) throw new Error(`native and JS gathering answered ${differ} of ${q} queries differently`);
      }
      rows.push({ native, mean: mean(ms), p50: percentile([...ms].sort((a, b) => a - b), 50) });
    }
  }
  const summary = (native: boolean) => {
    const own = rows.filter((r) => r.native === native).slice(1); // round 0 warms up
    return { mean: mean(own.map((r) => r.mean)), p50: mean(own.map((r) => r.p50)) };
  };
  const js = summary(false);
  const nat = summary(true);
  console.log(`${n} items, ${q} beam queries, maxCandidates ${maxCandidates}, ${args.rounds} rounds (the first a warm-up): `
    + `candidates phase, JS scans ${(1000 * js.mean).toFixed(1)} us mean (p50 ${(1000 * js.p50).toFixed(1)}), `
    + `native ${(1000 * nat.mean).toFixed(1)} us mean (p50 ${(1000 * nat.p50).toFixed(1)}): ${(js.mean / nat.mean).toFixed(2)}x; same answers`);
} finally {
  gathering.native = true;
  await service.close();
  rmSync(dataDir, { recursive: true, force: true });
}
