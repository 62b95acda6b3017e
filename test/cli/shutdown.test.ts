/**
 * Graceful shutdown: SIGTERM while upserts are in flight. Every request the server acknowledged (200) must be in
 * the catalog afterwards with the SID it was told; requests that were not acknowledged wrote all or nothing; the
 * process exits 0, the FAISS checkpoint it wrote on the way out covers every item (no catch-up needed at the next
 * start).
 */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CatalogInspector } from '../../src/store/catalog-verify.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { writeTestBundle } from '../helpers/service.ts';
import { exited, startServer, waitReady } from '../helpers/server-process.ts';

const DIM = 16;
const BATCHES = 40;
const PER_BATCH = 100;
const tmp = tempDir();
after(() => tmp.cleanup());

interface Outcome { batch: number; status: number | 'error'; at: number; sids?: Map<string, string> }

async function upsertBatch(url: string, batch: number): Promise<Outcome> {
  const vectors = randomMatrix(PER_BATCH, DIM, 1000 + batch);
  const items = Array.from({ length: PER_BATCH }, (_, i) => ({ id: `b${batch}-${i}`, embedding: Array.from(vectors.subarray(i * DIM, (i + 1) * DIM)) }));
  try {
    const res = await fetch(`${url}/v1/items`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ items }) });
    const body = (await res.json()) as { items?: Array<{ id: string; sid: number[] }> };
    const sids = res.status === 200 ? new Map(body.items!.map((it) => [it.id, it.sid.join('-')])) : undefined;
    return { batch, status: res.status, at: performance.now(), sids };
  } catch {
    return { batch, status: 'error', at: performance.now() };
  }
}

test('SIGTERM with upserts in flight: every acknowledged write survives, exit 0, FAISS checkpointed', async () => {
  const modelDir = join(tmp.dir, 'model');
  const dataDir = join(tmp.dir, 'data');
  await writeTestBundle(modelDir, { dim: DIM, levels: 3, codebookSize: 16, seed: 9 });
  const server = await startServer(['--data-dir', dataDir, '--model', modelDir]);
  await waitReady(server.url);

  const pending = Array.from({ length: BATCHES }, (_, b) => upsertBatch(server.url, b));
  const first = await Promise.race(pending);
  assert.equal(first.status, 200, 'the first batch is acknowledged before the signal');
  const signalledAt = performance.now();
  server.child.kill('SIGTERM');
  const outcomes = await Promise.all(pending);
  assert.equal(await exited(server.child), 0, server.output());

  const acked = outcomes.filter((o) => o.status === 200);
  const refused = outcomes.filter((o) => o.status !== 200);
  assert.ok(acked.some((o) => o.at > signalledAt), 'some requests in flight at the signal were still answered');
  for (const o of refused) assert.ok(o.status === 503 || o.status === 'error', `batch ${o.batch}: ${o.status}`);
  assert.match(server.output(), /SIGTERM: draining requests and closing stores/);

  const inspector = CatalogInspector.open(join(dataDir, 'catalog'));
  try {
    const report = inspector.verify();
    assert.ok(report.ok, report.problems.join('\n'));
    const stored = inspector.sids();
    for (const o of acked) {
      for (const [id, sid] of o.sids!) assert.equal(stored.get(id)?.codes.join('-'), sid, `acknowledged ${id}`);
    }
    const committedBatches = new Set([...stored.keys()].map((id) => id.split('-')[0]));
    for (const o of refused) {
      const present = [...Array(PER_BATCH).keys()].filter((i) => stored.has(`b${o.batch}-${i}`)).length;
      assert.ok(present === 0 || present === PER_BATCH, `unacknowledged batch ${o.batch} is all or nothing (${present})`);
    }
    assert.equal(stored.size, committedBatches.size * PER_BATCH);
    const checkpoint = JSON.parse(readFileSync(join(dataDir, 'vectors.json'), 'utf8')) as { ntotal: number; seq: string };
    assert.equal(checkpoint.ntotal, stored.size, 'the shutdown checkpoint holds every item');
    assert.equal(BigInt(checkpoint.seq), report.lastSeq);
  } finally {
    await inspector.close();
  }
});
