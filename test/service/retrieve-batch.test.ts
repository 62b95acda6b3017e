import { test } from 'node:test';
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { loadConfig } from '../../src/config.ts';
import type { SidxError } from '../../src/errors.ts';
import { buildQueries, l2Normalized, loadEvalDataset } from '../../src/eval/eval-dataset.ts';
import { SidxService } from '../../src/service/sidx-service.ts';
import type { BatchVariant } from '../../src/service/retrieve-batch.ts';
import type { ExpandMode, RetrieveOutput } from '../../src/service/types.ts';
import { repoRoot, sharedFile, skipWithoutShared, tempDir } from '../helpers/paths.ts';

const QUERIES = 300;
const ITEM_QUERIES = 150;

/** What retrieve returns for one query, in the batch's terms. */
function viewOf(out: RetrieveOutput) {
  return { items: out.items.map((it) => ({ id: it.id, score: it.score, sid: Array.from(it.sid), match: it.match })), candidates: out.candidates };
}

type Case = { expand: ExpandMode; beamWidth?: number };

/** retrieveEach against retrieve, query by query, with the service's candidates in memory or in LMDB. */
async function compareWithRetrieve(postingIndex: 'memory' | 'lmdb', cases: Case[], queries: number, itemQueries: number): Promise<void> {
  const ds = await loadEvalDataset(sharedFile('scientific'));
  const tmp = tempDir();
  const config = loadConfig({
    storage: { dataDir: join(tmp.dir, 'data'), postingIndex }, model: { dir: join(repoRoot, 'models', 'default') },
    limits: { maxBatch: 2000, maxK: 2000, maxCandidates: ds.n }, encoder: { workers: 1, intraOpThreads: 1 },
  }, {});
  const service = await SidxService.open(config, { info: () => {}, warn: () => {} });
  try {
    const items = service.model.metric === 'ip' ? l2Normalized(ds.items, ds.dim) : ds.items;
    await service.upsert(Array.from({ length: ds.n }, (_, i) => ({ id: String(i), vector: items.subarray(i * ds.dim, (i + 1) * ds.dim) })));
    // Test-row profiles (their own SID is almost never occupied) and catalog items (it is: exact and Hamming-1 hits).
    const profiles = buildQueries(ds, 'mean5', queries).vectors;
    const embeddings = new Float32Array(profiles.length + itemQueries * ds.dim);
    embeddings.set(profiles);
    embeddings.set(items.subarray(0, itemQueries * ds.dim), profiles.length);
    const nq = embeddings.length / ds.dim;
    const variants: BatchVariant[] = [
      { k: 10, maxCandidates: 50, rerank: false }, { k: 10, maxCandidates: 50, rerank: true },
      { k: 300, maxCandidates: 300, rerank: false }, { k: 5, maxCandidates: 3, rerank: true },
    ];
    await assert.rejects(service.retrieveEach({ embeddings, n: nq, expand: 'none', beamWidth: 4, variants }, () => {}),
      (err: SidxError) => err.code === 'SIDX_ERR_INVALID_INPUT' && err.field === 'beamWidth');
    await assert.rejects(service.retrieveEach({ embeddings, n: nq + 1, expand: 'beam', variants }, () => {}),
      (err: SidxError) => err.code === 'SIDX_ERR_DIMENSION' && err.field === 'embedding');
    const seen = { items: 0, exact: 0, hamming1: 0, beam: 0, prefix: 0 };
    for (const c of cases) {
      const batch: ReturnType<typeof viewOf>[][] = Array.from({ length: nq }, () => []);
      await service.retrieveEach({ embeddings, n: nq, ...c, variants }, (q, hits, dir) => {
        batch[q] = hits.map((h) => ({
          items: Array.from(h.rows, (r, i) => ({ id: dir.ids[r]!, score: h.scores ? h.scores[i]! : null, sid: Array.from(dir.sid(r)), match: h.match[i]! })),
          candidates: h.candidates,
        }));
      });
      for (let q = 0; q < nq; q++) {
        for (const [v, variant] of variants.entries()) {
          const one = await service.retrieve({ embedding: embeddings.subarray(q * ds.dim, (q + 1) * ds.dim), ...c, ...variant });
          assert.deepEqual(batch[q]![v], viewOf(one), `${c.expand}/${c.beamWidth}, query ${q}, variant ${JSON.stringify(variant)}`);
          seen.items += one.items.length;
          for (const kind of ['exact', 'hamming1', 'beam', 'prefix'] as const) seen[kind] += one.candidates[kind];
        }
      }
    }
    // The query's own SID cell is gathered as exact before the beam, so with these caps fewer candidates are of the
    // beam kind (its full SIDs) than of the others.
    // Floors for the full run (450 queries), scaled to smaller ones.
    const least = (kind: string) => ((kind === 'beam' ? 25 : 100) * (queries + itemQueries)) / (QUERIES + ITEM_QUERIES);
    for (const [kind, count] of Object.entries(seen)) assert.ok(count > least(kind), `the comparison covers ${kind} candidates (${count})`);
  } finally {
    await service.close();
    tmp.cleanup();
  }
}

test('retrieveEach answers every query exactly as retrieve does (scientific, models/default: none, hamming1, auto, beam)',
  { skip: skipWithoutShared('scientific', 'text_emb.npy') }, () => compareWithRetrieve('memory', [
    { expand: 'none' }, { expand: 'hamming1' }, { expand: 'auto' }, { expand: 'beam', beamWidth: 64 }, { expand: 'beam', beamWidth: 4 },
  ], QUERIES, ITEM_QUERIES));

test('retrieveEach without a live posting index (storage.postingIndex lmdb) builds one for the pass and still answers as retrieve does',
  { skip: skipWithoutShared('scientific', 'text_emb.npy') }, () => compareWithRetrieve('lmdb', [
    { expand: 'hamming1' }, { expand: 'beam', beamWidth: 64 },
  ], 60, 60));
