/**
 * Two per-answer costs of POST /v1/retrieve on the event loop, each against the way it was done before, alternated:
 * - `json`: writing a beam answer (`--items` items, `--sids` querySids of 3 codes, as `sidx bench`'s answers) with
 *   the response schema's fast-json-stringify serializer over number-array copies of the SIDs (the route before
 *   src/http/retrieve-json.ts) and with retrieveAnswerJson;
 * - `record`: Catalog.recordOf (one LMDB read and decode per returned item) on a `--catalog`-item catalog built in a
 *   temporary directory (only when measured), 10 reads per call as an answer does them, each a new key of 65,536
 *   random ones, µs per read: compare builds by running this from each (alternated).
 * Prints µs per call, median over rounds.
 *
 *   node --import tsx bench/hot-reads.bench.ts [--rounds 5] [--calls 50000] [--items 10] [--sids 33] [--catalog 100000]
 *        [--ops json,record]
 */
import type { RetrieveOutput } from '../src/service/types.ts';
import { Catalog } from '../src/store/catalog.ts';
import { tempDir } from '../test/helpers/paths.ts';
import { benchArgs } from './lib.ts';
import { seededUniform } from '../src/random.ts';

const args = benchArgs({
  rounds: { type: 'string', default: '5' }, calls: { type: 'string', default: '50000' },
  items: { type: 'string', default: '10' }, ops: { type: 'string', default: 'json,record' }, sids: { type: 'string', default: '33' }, catalog: { type: 'string', default: '100000' },
});
const [rounds, calls, nItems, nSids, nCatalog] = [args.rounds, args.calls, args.items, args.sids, args.catalog].map(Number) as [number, number, number, number, number];

const random = seededUniform(11);
const sid = () => Int32Array.from({ length: 3 }, () => Math.floor(random() * 256));
const answer: RetrieveOutput = {
  model: 'rqkmeans-3x256', expand: 'beam',
  items: Array.from({ length: nItems }, (_, i) => ({ id: `item-${Math.floor(random() * 100000)}`, score: 0.8 - random() * 0.1, sid: sid(), match: i < 3 ? 'exact' : 'prefix' })),
  querySids: Array.from({ length: nSids }, sid),
  candidates: { exact: 3, hamming1: 0, beam: 97, prefix: 1150, total: 1250 },
  timingsMs: { encode: 0, beam: 0.35147584599997206, candidates: 0.05589990400000897, rerank: 0.28983606600001804, fetch: 0.08700040399995487, total: 0.7842122199999539 },
};
const wanted = new Set(String(args.ops).split(','));
type Variant = { name: string; run: () => number; per: number; unit: string };
const ops: Record<string, Variant[]> = {};
let catalog: Catalog | undefined;
const tmp = tempDir();

if (wanted.has('json')) {
  // Imported only when measured, so that `--ops record` also runs from a build without retrieve-json.ts.
  const { retrieveAnswerJson } = await import('../src/http/retrieve-json.ts');
  const { retrieveSchemaJson: before } = await import('../test/helpers/schema-json.ts');
  if (before(answer) !== retrieveAnswerJson(answer)) throw new Error('the two serialisers disagree');
  ops.json = [
    { name: 'schema serializer + copies', run: () => before(answer).length, per: 1, unit: 'answer' },
    { name: 'retrieveAnswerJson', run: () => retrieveAnswerJson(answer).length, per: 1, unit: 'answer' },
  ];
}
if (wanted.has('record')) {
  const cat = (catalog = Catalog.open(tmp.dir));
  const dim = 8;
  for (let first = 0; first < nCatalog; first += 10_000) {
    const n = Math.min(10_000, nCatalog - first);
    cat.upsertBatch(1, Array.from({ length: n }, (_, i) => ({ id: `item-${first + i}`, codes: sid(), vector: new Float32Array(dim).fill(i) })));
  }
  const keys = BigInt64Array.from({ length: 1 << 16 }, () => BigInt(1 + Math.floor(random() * nCatalog)));
  let next = 0;
  const READS = 10; // an answer's k
  ops.record = [{
    name: 'recordOf',
    run: () => {
      let n = 0;
      for (let i = 0; i < READS; i++) n += cat.recordOf(keys[next++ & (keys.length - 1)]!)!.slot;
      return n;
    },
    per: READS,
    unit: 'read',
  }];
}

const samples = new Map<string, { unit: string; us: number[] }>();
for (let r = 0; r < rounds; r++) {
  for (const variants of Object.values(ops)) {
    for (const { name, run, per, unit } of r % 2 ? [...variants].reverse() : variants) {
      let sink = 0;
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) sink += run();
      if (sink === -1) console.log(sink);
      const entry = samples.get(name) ?? { unit, us: [] };
      entry.us.push(((performance.now() - t0) * 1000) / calls / per);
      samples.set(name, entry);
    }
  }
}
await catalog?.close();
tmp.cleanup();
const median = (v: number[]) => [...v].sort((a, b) => a - b)[v.length >> 1]!;
for (const [name, { unit, us }] of samples) console.log(`${name}: ${median(us).toFixed(2)} µs per ${unit} (rounds: ${us.map((x) => x.toFixed(2)).join(' / ')})`);
