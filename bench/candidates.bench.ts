/**
 * Candidate gathering (service/candidates.ts gatherCandidates) from the live posting index, through its one native
 * call for a beam query (PostingIndex.gatherBeam) and through the JS scans it replaces (`gathering.native` off), against
 * the catalog's LMDB scans, on a catalog served by a real model: the beam query of /v1/retrieve (the encoder's own SID, then the
 * beam of --beam-width prefixes, --max-candidates) and the sids mode of `sidx bench` (the final-level SIDs of a beam of
 * 32 given as sids, expand auto, k 10: Hamming-1 neighbours when they hold fewer than k items). The beams come from
 * the model's beam graph once; the timed part is gatherCandidates alone, alternating the sources. Before timing, every
 * query's candidates (keys and match kinds) are compared across the three.
 *
 *   node --import tsx bench/candidates.bench.ts [--items 40000] [--queries 300] [--model models/default] [--rounds 8]
 *
 * Items: clustered synthetic 512-d embeddings (src/eval/synthetic.ts, seed 1), upserted through the service.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { clusteredEmbeddings } from '../src/eval/synthetic.ts';
import { gatherCandidates, gathering, type CandidateSource } from '../src/service/candidates.ts';
import { kServiceTestHooks } from '../src/service/sidx-service.ts';
import type { BeamLevel } from '../src/tokenizer/encoder-pool.ts';
import { startService } from '../test/helpers/service.ts';
import { benchArgs, latencySummary, markdownTable } from './lib.ts';

const args = benchArgs({
  items: { type: 'string', default: '40000' },
  queries: { type: 'string', default: '300' },
  model: { type: 'string', default: 'models/default' },
  rounds: { type: 'string', default: '8' },
  'beam-width': { type: 'string', default: '128' },
  'max-candidates': { type: 'string', default: '1000' },
});
const N = Number(args.items);
const Q = Number(args.queries);
const root = mkdtempSync(join(tmpdir(), 'sidx-candidates-bench-'));
const svc = await startService(join(root, 'data'), args.model, {}, {});
try {
  const D = svc.service.model.inputDim;
  const L = svc.service.model.levels;
  const version = svc.service.model.version;
  const v = clusteredEmbeddings({ n: N + Q, dim: D, seed: 1 });
  for (let i = 0; i < N; i += 1000) {
    await svc.service.upsert(Array.from({ length: Math.min(1000, N - i) }, (_, j) => ({ id: `i${i + j}`, vector: v.subarray((i + j) * D, (i + j + 1) * D) })));
  }
  const hooks = svc.service[kServiceTestHooks];
  const index = hooks.postings().index(version)!;
  const sources: Array<[string, CandidateSource, boolean]> = [['index', index, true], ['index, JS scans', index, false], ['LMDB', hooks.postings().source(-1), false]];
  const beams: Array<{ own: Int32Array; levels: BeamLevel[]; sids: Int32Array[] }> = [];
  for (let q = 0; q < Q; q++) {
    const row = v.subarray((N + q) * D, (N + q + 1) * D);
    const wide = await hooks.pool().beam(row, 1, Number(args['beam-width']), 1);
    const last = (await hooks.pool().beam(row, 1, 32, 1)).levels[L - 1]!;
    beams.push({ own: wide.codes.slice(0, L), levels: wide.levels, sids: Array.from({ length: last.width }, (_, b) => last.codes.slice(b * L, (b + 1) * L)) });
  }
  const max = Number(args['max-candidates']);
  const beamQuery = (s: CandidateSource, b: (typeof beams)[number]) => gatherCandidates(s, version, [b.own], 'beam', 10, max, undefined, b.levels);
  const modes: Array<[string, (s: CandidateSource, b: (typeof beams)[number]) => number]> = [
    [`beam (width ${args['beam-width']}, ${max} candidates)`, (s, b) => beamQuery(s, b).count],
    ['sids mode (32 SIDs, expand auto, k 10)', (s, b) => gatherCandidates(s, version, b.sids, 'auto', 10, max).count],
  ];
  const candidatesOf = (source: CandidateSource, native: boolean, b: (typeof beams)[number]) => {
    gathering.native = native;
    const set = beamQuery(source, b);
    return `${Array.from(set.keys).join(',')}|${Array.from(set.match).join('')}`;
  };
  for (const b of beams) {
    const answers = sources.map(([, source, native]) => candidatesOf(source, native, b));
    if (answers.some((a) => a !== answers[0])) throw new Error('the sources gathered different beam candidates');
  }
  const rows: Array<Array<string | number>> = [];
  for (const [mode, run] of modes) {
    const per = new Map<string, number[]>(sources.map(([name]) => [name, []]));
    let candidates = 0;
    for (let round = 0; round < Number(args.rounds); round++) {
      for (const [name, source, native] of sources) {
        gathering.native = native;
        const t0 = performance.now();
        for (const b of beams) candidates += run(source, b);
        if (round > 0) per.get(name)!.push(((performance.now() - t0) / beams.length) * 1000);
      }
    }
    const cell = (name: string) => `${latencySummary(per.get(name)!).p50.toFixed(0)} (min ${Math.min(...per.get(name)!).toFixed(0)})`;
    const p50 = (name: string) => latencySummary(per.get(name)!).p50;
    rows.push([mode, ...sources.map(([name]) => cell(name)), (p50('LMDB') / p50('index')).toFixed(1), (candidates / (sources.length * Number(args.rounds) * beams.length)).toFixed(0)]);
  }
  console.log(`\n${N} items, ${Q} queries, ${args.model}; µs per query, median over rounds (the beam's index column: one native call)\n`);
  console.log(markdownTable(['query', 'index', 'index, JS scans', 'LMDB', 'LMDB / index', 'candidates'], rows));
} finally {
  gathering.native = true;
  await svc.close();
  rmSync(root, { recursive: true, force: true });
}
