/**
 * Two per-answer costs of POST /v1/retrieve on the event loop, each against the way it was done before, alternated:
 * - `json`: writing a beam answer (`--items` items, `--sids` querySids of 3 codes, as `sidx bench`'s answers) with
 *   the response schema's fast-json-stringify serializer over number-array copies of the SIDs (the route before
 *   src/http/retrieve-json.ts) and with retrieveAnswerJson;
 * - `record`: Catalog.recordOf (one LMDB read and decode per returned item) on a `--catalog`-item catalog built in a
 *   temporary directory, 10 random keys per call as an answer reads them, µs per read: compare builds by running this
 *   from each (alternated).
 * Prints µs per call, median over rounds.
 *
 *   node --import tsx bench/hot-reads.bench.ts [--rounds 5] [--calls 50000] [--items 10] [--sids 33] [--catalog 100000]
 *        [--ops json,record]
 */
import type { RetrieveOutput } from '../src/service/types.ts';
import { Catalog } from '../src/store/catalog.ts';
import { tempDir } from '../test/helpers/paths.ts';
import { benchArgs } from './lib.ts';

const args = benchArgs({
  rounds: { type: 'string', default: '5' }, calls: { type: 'string', default: '50000' },
  items: { type: 'string', default: '10' }, ops: { type: 'string', default: 'json,record' }, sids: { type: 'string', default: '33' }, catalog: { type: 'string', default: '100000' },
});
const [rounds, calls, nItems, nSids, nCatalog] = [args.rounds, args.calls, args.items, args.sids, args.catalog].map(Number) as [number, number, number, number, number];

let seed = 11;
const random = () => (seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31;
const sid = () => Int32Array.from({ length: 3 }, () => Math.floor(random() * 256));
const answer: RetrieveOutput = {
  model: 'rqkmeans-3x256', expand: 'beam',
  items: Array.from({ length: nItems }, (_, i) => ({ id: `item-${Math.floor(random() * 100000)}`, score: 0.8 - random() * 0.1, sid: sid(), match: i < 3 ? 'exact' : 'prefix' })),
  querySids: Array.from({ length: nSids }, sid),
  candidates: { exact: 3, hamming1: 0, beam: 97, prefix: 1150, total: 1250 },
  timingsMs: { encode: 0, beam: 0.35147584599997206, candidates: 0.05589990400000897, rerank: 0.28983606600001804, fetch: 0.08700040399995487, total: 0.7842122199999539 },
};
const wanted = new Set(String(args.ops).split(','));
// Imported only when measured, so that `--ops record` also runs from a build without retrieve-json.ts.
const { retrieveAnswerJson } = wanted.has('json') ? await import('../src/http/retrieve-json.ts') : { retrieveAnswerJson: undefined };
const { retrieveSchemaJson: before } = await import('../test/helpers/schema-json.ts');
if (retrieveAnswerJson && before(answer) !== retrieveAnswerJson(answer)) throw new Error('the two serialisers disagree');

const tmp = tempDir();
const catalog = Catalog.open(tmp.dir);
const dim = 8;
for (let first = 0; first < nCatalog; first += 10_000) {
  const n = Math.min(10_000, nCatalog - first);
  catalog.upsertBatch(1, Array.from({ length: n }, (_, i) => ({ id: `item-${first + i}`, codes: sid(), vector: new Float32Array(dim).fill(i) })));
}
const keys = BigInt64Array.from({ length: 4096 }, () => BigInt(1 + Math.floor(random() * nCatalog)));

const ops: Record<string, Array<[string, () => number]>> = {
  json: retrieveAnswerJson ? [['schema serializer + copies', () => before(answer).length], ['retrieveAnswerJson', () => retrieveAnswerJson(answer).length]] : [],
  record: [['recordOf', () => { let n = 0; for (let i = 0; i < 10; i++) n += catalog.recordOf(keys[(i * 409) % keys.length]!)!.slot; return n; }]],
};
const samples = new Map<string, number[]>();
for (let r = 0; r < rounds; r++) {
  for (const [op, variants] of Object.entries(ops)) {
    if (!wanted.has(op)) continue;
    for (const [name, fn] of r % 2 ? [...variants].reverse() : variants) {
      let sink = 0;
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) sink += fn();
      const us = ((performance.now() - t0) * 1000) / calls / (name === 'recordOf' ? 10 : 1);
      if (sink === -1) console.log(sink);
      samples.set(name, [...(samples.get(name) ?? []), us]);
    }
  }
}
await catalog.close();
tmp.cleanup();
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
for (const [name, v] of samples) console.log(`${name}: ${median(v).toFixed(2)} µs per call (rounds: ${v.map((x) => x.toFixed(2)).join(' / ')})`);
