/**
 * kill -9 harness for `sidx serve`: each round starts the real server on one data directory, runs concurrent
 * batch upserts, re-upserts and deletes against it, kills it with SIGKILL at a random moment (sometimes while it
 * is still opening its stores, i.e. during FAISS catch-up or rebuild), then checks the catalog on disk against
 * what the clients were told:
 *
 *   - every acknowledged item is present with the SID its upsert returned, every acknowledged delete stays deleted;
 *   - a batch whose answer was lost to the kill is all-or-nothing (one LMDB transaction), and then counts as what
 *     it turned out to be;
 *   - the catalog verifies clean (no posting without its item, no item without its postings, ids consistent),
 *     and holds exactly the expected items;
 *   - on the next start, /readyz reports as many vectors as LMDB items, a few items read back over HTTP, and a
 *     retrieve by one of their embeddings answers with the item itself among its results.
 *
 * FAISS checkpoints are made frequent (checkpointEvery) so kills also land inside checkpoint writes.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { CatalogInspector } from '../../src/store/catalog-verify.ts';
import { gaussian, rng } from './random.ts';
import { exited, startServer, waitReady, type ServerProcess } from './server-process.ts';

export interface CrashOptions {
  dataDir: string;
  modelDir: string;
  dim: number;
  rounds: number;
  seed: number;
  /** Changes between FAISS checkpoints in the server under test (small, so kills hit checkpoints too). */
  checkpointEvery?: number;
  /** Concurrent client loops per round. */
  writers?: number;
  /** Longest time writes run before the kill, ms (the delay is uniform in [10, this]). */
  maxWriteMs?: number;
  /** Share of rounds killed right after the server listens, before it is ready. */
  startupKillShare?: number;
  /** More environment for the server (e.g. another vectors.storage). */
  env?: Record<string, string>;
  log?: (line: string) => void;
}

export interface CrashSummary {
  rounds: number;
  startupKills: number;
  acknowledgedBatches: number;
  lostAnswers: number;
  lostButCommitted: number;
  liveItems: number;
  deletedItems: number;
  roundMs: { min: number; median: number; max: number };
  startMs: { median: number; max: number };
}

type Op = { kind: 'upsert' | 'reupsert' | 'delete'; ids: string[] };

/** The same id always gets the same vector, so a re-upsert keeps its SID and the check is exact. */
function vectorOf(id: string, dim: number): number[] {
  let h = 2166136261;
  for (let i = 0; i < id.length; i++) h = Math.imul(h ^ id.charCodeAt(i), 16777619);
  const g = gaussian(rng(h >>> 0));
  return Array.from({ length: dim }, () => Math.fround(g()));
}

async function post(url: string, path: string, body: unknown): Promise<{ status: number; json: any }> {
  const res = await fetch(`${url}${path}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, json: await res.json() };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;

export async function runCrashRounds(opts: CrashOptions): Promise<CrashSummary> {
  const rand = rng(opts.seed);
  const log = opts.log ?? (() => {});
  const writers = opts.writers ?? 3;
  const maxWriteMs = opts.maxWriteMs ?? 400;
  const startupShare = opts.startupKillShare ?? 0.15;
  const env = { SIDX__STORAGE__CHECKPOINT_EVERY: String(opts.checkpointEvery ?? 120), SIDX__STORAGE__CHECKPOINT_GROWTH_PERCENT: '0', ...opts.env };
  const args = ['--data-dir', opts.dataDir, '--model', opts.modelDir];
  const catalogDir = join(opts.dataDir, 'catalog');

  const live = new Map<string, string>(); // id -> SID text, as acknowledged (or found committed after a lost answer)
  const deleted = new Set<string>();
  let nextId = 0;
  const summary = { startupKills: 0, acknowledgedBatches: 0, lostAnswers: 0, lostButCommitted: 0 };
  const roundMs: number[] = [];
  const startMs: number[] = [];

  const pickLive = (n: number, busy: Set<string>): string[] => {
    const out: string[] = [];
    for (const id of live.keys()) {
      if (out.length >= n) break;
      if (!busy.has(id) && rand() < 0.3) out.push(id);
    }
    return out;
  };

  /** One client loop: batches until the server dies; returns the batch whose answer was lost, if any. */
  async function writer(server: ServerProcess, busy: Set<string>, w: number): Promise<Op | undefined> {
    for (let b = 0; ; b++) {
      const r = rand();
      let op: Op;
      if (r < 0.15 && live.size > 50) op = { kind: 'delete', ids: pickLive(1 + Math.floor(rand() * 20), busy) };
      else if (r < 0.3 && live.size > 50) op = { kind: 'reupsert', ids: pickLive(1 + Math.floor(rand() * 20), busy) };
      else op = { kind: 'upsert', ids: Array.from({ length: 1 + Math.floor(rand() * 40) }, () => `it-${nextId++}-w${w}`) };
      if (op.ids.length === 0) continue;
      op.ids.forEach((id) => busy.add(id));
      let res;
      try {
        res = op.kind === 'delete'
          ? await post(server.url, '/v1/items/delete', { ids: op.ids })
          : await post(server.url, '/v1/items', { items: op.ids.map((id) => ({ id, embedding: vectorOf(id, opts.dim) })) });
      } catch {
        return op; // the server died with this batch in flight
      }
      assert.equal(res.status, 200, `${op.kind} answered ${res.status}: ${JSON.stringify(res.json)}`);
      summary.acknowledgedBatches++;
      if (op.kind === 'delete') {
        assert.deepEqual(res.json.missing, [], 'deleted ids were live');
        op.ids.forEach((id) => {
          live.delete(id);
          deleted.add(id);
        });
      } else {
        for (const it of res.json.items as Array<{ id: string; sid: number[]; replaced: boolean }>) {
          const sid = it.sid.join('-');
          assert.equal(it.replaced, op.kind === 'reupsert', `${it.id}: replaced flag`);
          if (op.kind === 'reupsert') assert.equal(sid, live.get(it.id), `${it.id}: same vector, same SID`);
          live.set(it.id, sid);
        }
      }
      op.ids.forEach((id) => busy.delete(id));
    }
  }

  /** Compares the catalog on disk with the acknowledged state; resolves the lost batches. */
  async function inspect(lost: Op[], round: number): Promise<void> {
    const inspector = CatalogInspector.open(catalogDir);
    try {
      const report = inspector.verify();
      assert.ok(report.ok, `round ${round}: catalog verify failed (${report.problemCount}):\n${report.problems.join('\n')}`);
      const stored = inspector.sids();
      for (const op of lost) {
        const present = op.ids.filter((id) => stored.has(id));
        if (op.kind === 'reupsert') continue; // present either way
        assert.ok(present.length === 0 || present.length === op.ids.length,
          `round ${round}: a lost ${op.kind} batch of ${op.ids.length} is half applied (${present.length} present)`);
        const committed = op.kind === 'upsert' ? present.length > 0 : present.length === 0;
        if (committed) summary.lostButCommitted++;
        for (const id of op.ids) {
          if (op.kind === 'upsert' && committed) live.set(id, [...stored.get(id)!.codes].join('-'));
          if (op.kind === 'delete' && committed) {
            live.delete(id);
            deleted.add(id);
          }
        }
      }
      for (const [id, sid] of live) {
        const got = stored.get(id);
        assert.ok(got, `round ${round}: acknowledged item ${id} lost`);
        assert.equal([...got.codes].join('-'), sid, `round ${round}: ${id} has another SID`);
      }
      for (const id of deleted) assert.ok(!stored.has(id), `round ${round}: acknowledged delete of ${id} undone`);
      assert.equal(report.items, live.size, `round ${round}: catalog holds items nobody wrote`);
    } finally {
      await inspector.close();
    }
  }

  /** After a start: FAISS agrees with LMDB, and a few items read back over HTTP with their SIDs. */
  async function checkServed(server: ServerProcess, round: number): Promise<void> {
    const ready = await waitReady(server.url);
    assert.equal(ready.items, live.size, `round ${round}: /readyz items`);
    assert.equal(ready.vectors, ready.items, `round ${round}: FAISS count equals LMDB count`);
    const sample = [...live.entries()].filter(() => rand() < 5 / Math.max(5, live.size));
    for (const [id, sid] of sample) {
      const res = await fetch(`${server.url}/v1/items/${encodeURIComponent(id)}`);
      assert.equal(res.status, 200, `round ${round}: GET ${id}`);
      assert.equal(((await res.json()) as { sid: number[] }).sid.join('-'), sid);
    }
    const [probe] = sample.length > 0 ? sample[0]! : [...live.entries()].at(-1) ?? [];
    if (probe !== undefined) {
      const res = await post(server.url, '/v1/retrieve', { embedding: vectorOf(probe, opts.dim), k: 50, expand: 'auto' });
      assert.equal(res.status, 200, `round ${round}: retrieve: ${JSON.stringify(res.json)}`);
      const ids = (res.json.items as Array<{ id: string }>).map((it) => it.id);
      assert.ok(ids.includes(probe), `round ${round}: a retrieve by ${probe}'s embedding finds it (exact SID, reranked)`);
    }
    const gone = [...deleted].find(() => rand() < 0.1);
    if (gone) assert.equal((await fetch(`${server.url}/v1/items/${gone}`)).status, 404);
  }

  for (let round = 0; round < opts.rounds; round++) {
    const t0 = performance.now();
    const server = await startServer(args, env);
    const lost: Op[] = [];
    if (round > 0 && rand() < startupShare) {
      // Kill while the service is opening: FAISS checkpoint load, change-log catch-up or rebuild.
      summary.startupKills++;
      await new Promise((r) => setTimeout(r, Math.floor(rand() * 150)));
    } else {
      await checkServed(server, round);
      startMs.push(performance.now() - t0);
      const busy = new Set<string>();
      const loops = Array.from({ length: writers }, (_, w) => writer(server, busy, w));
      await new Promise((r) => setTimeout(r, 10 + Math.floor(rand() * (maxWriteMs - 10))));
      server.child.kill('SIGKILL');
      for (const op of await Promise.all(loops)) if (op) lost.push(op);
      summary.lostAnswers += lost.length;
    }
    server.child.kill('SIGKILL');
    await exited(server.child);
    await inspect(lost, round);
    roundMs.push(performance.now() - t0);
    log(`round ${round}: ${live.size} live, ${deleted.size} deleted, ${lost.length} lost answers, ${(performance.now() - t0).toFixed(0)} ms`);
  }

  // A last clean start and a graceful stop.
  const server = await startServer(args, env);
  await checkServed(server, opts.rounds);
  server.child.kill('SIGTERM');
  assert.equal(await exited(server.child), 0, server.output());
  await inspect([], opts.rounds);

  return {
    rounds: opts.rounds,
    ...summary,
    liveItems: live.size,
    deletedItems: deleted.size,
    roundMs: { min: Math.min(...roundMs), median: median(roundMs), max: Math.max(...roundMs) },
    startMs: { median: median(startMs), max: Math.max(...startMs) },
  };
}
