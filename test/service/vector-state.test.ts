/**
 * The rerank's vector store (src/service/vector-state.ts, src/vector/vector-store.ts, slot-file.ts) against the
 * real LMDB catalog, whose vector file it maps: a restart after a crash loads the id file and replays the change log
 * after its last sync (no rebuild), with scores equal to a brute-force computation over the catalog's vectors;
 * deletes and re-upserts (rows freed, reused, re-upserts moved to new rows); a sync that runs while writes go on;
 * torn, inconsistent and legacy files; a restart that reads no vector (the vector file is scored in place);
 * verify() finds a store that disagrees with the catalog.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { appendFileSync, closeSync, existsSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import { Catalog } from '../../src/store/catalog.ts';
import { VectorState } from '../../src/service/vector-state.ts';
import { tempDir } from '../helpers/paths.ts';
import { dot, randomMatrix } from '../helpers/random.ts';

const DIM = 16;

function recorder() {
  const lines: string[] = [];
  return { lines, log: { info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`WARN ${m}`) } };
}

/** Upserts ids with rows of `vectors` (id i -> row i) through the catalog, then the state, as the service does. */
function upsert(catalog: Catalog, state: VectorState, ids: number[], vectors: Float32Array, rowOf = (id: number) => id): void {
  const flat = new Float32Array(ids.length * DIM);
  ids.forEach((id, i) => flat.set(vectors.subarray(rowOf(id) * DIM, (rowOf(id) + 1) * DIM), i * DIM));
  const items = ids.map((id, i) => ({ id: `it${id}`, vector: flat.subarray(i * DIM, (i + 1) * DIM), codes: Int32Array.of(id % 7, id % 5) }));
  const res = catalog.upsertBatch(1, items);
  state.applyUpsert(res.keys, res.slots, flat, res.seq);
}

function remove(catalog: Catalog, state: VectorState, ids: number[]): void {
  const res = catalog.deleteBatch(ids.map((id) => `it${id}`));
  state.applyDelete(res.removed, res.seq);
}

/** Scores of `query` for every key up to `maxKey` from the state, and by brute force over the catalog's vectors. */
function compareWithCatalog(catalog: Catalog, state: VectorState, query: Float32Array, maxKey: number): void {
  assert.equal(state.store.ntotal, catalog.count, 'one vector per catalog item');
  const want = new Map<bigint, number>();
  for (const item of catalog.items()) want.set(item.key, dot(query, item.vector));
  const keys = BigInt64Array.from({ length: maxKey + 2 }, (_, i) => BigInt(i));
  const got = state.store.score(query, keys);
  keys.forEach((key, i) => {
    const expected = want.get(key);
    if (expected === undefined) assert.ok(Number.isNaN(got[i]), `key ${key} is not stored: NaN, got ${got[i]}`);
    else assert.ok(Math.abs(got[i]! - expected) <= 1e-5 * (1 + Math.abs(expected)), `key ${key}: ${got[i]} vs ${expected}`);
  });
}

test('after a crash the slot file is loaded and the changes after its last sync replayed, not rebuilt; deletes and re-upserts', async () => {
  const tmp = tempDir();
  try {
    const vectors = randomMatrix(500, DIM, 7);
    const query = randomMatrix(1, DIM, 8);
    let catalog = Catalog.open(join(tmp.dir, 'catalog'));
    let state = await VectorState.open(tmp.dir, catalog, DIM, 'ip', recorder().log);
    for (let b = 0; b < 3; b++) upsert(catalog, state, Array.from({ length: 100 }, (_, i) => b * 100 + i), vectors);
    await state.sync();
    const synced = JSON.parse(readFileSync(join(tmp.dir, 'vectors.json'), 'utf8')) as { seq: string; ntotal: number };
    assert.equal(synced.ntotal, 300);
    assert.equal(BigInt(synced.seq), catalog.lastSeq);
    // After the sync: deletes free rows, new items reuse them, re-upserts with other vectors move to new rows.
    remove(catalog, state, Array.from({ length: 20 }, (_, i) => 3 * i));
    upsert(catalog, state, Array.from({ length: 30 }, (_, i) => 100 + i), vectors, (id) => id + 300);
    upsert(catalog, state, Array.from({ length: 50 }, (_, i) => 300 + i), vectors);
    compareWithCatalog(catalog, state, query, 360);
    // kill -9: no sync, no clean close of the catalog's derived state.
    await state.close();
    await catalog.close();

    catalog = Catalog.open(join(tmp.dir, 'catalog'));
    const rec = recorder();
    state = await VectorState.open(tmp.dir, catalog, DIM, 'ip', rec.log);
    assert.match(rec.lines.join('\n'), /330 vectors opened from vectors.ids .* 100 changes replayed/);
    assert.doesNotMatch(rec.lines.join('\n'), /rebuil/);
    compareWithCatalog(catalog, state, query, 360);
    assert.deepEqual(state.verify(), [], 'the store agrees with the catalog after the replay');
    // The re-upserted items carry their new vectors.
    const key = catalog.get('it100')!.key;
    assert.deepEqual(state.store.gather(BigInt64Array.of(key)), vectors.slice(400 * DIM, 401 * DIM));
    await state.close();
    await catalog.close();
  } finally {
    tmp.cleanup();
  }
});

test('writes go on while a sync runs; the sync covers the seq at its start, the rest is replayed after a crash', async () => {
  const tmp = tempDir();
  try {
    const vectors = randomMatrix(200, DIM, 9);
    let catalog = Catalog.open(join(tmp.dir, 'catalog'));
    let state = await VectorState.open(tmp.dir, catalog, DIM, 'ip', recorder().log);
    upsert(catalog, state, Array.from({ length: 100 }, (_, i) => i), vectors);
    const seqAtStart = catalog.lastSeq;
    state.startSync();
    upsert(catalog, state, Array.from({ length: 60 }, (_, i) => 100 + i), vectors); // while the fdatasync runs
    assert.equal(state.changesSinceSync, 160, 'nothing counted as synced before the sync finished');
    await state.idle();
    assert.equal(state.changesSinceSync, 60, 'the running sync covered the first 100 changes only');
    assert.equal(BigInt((JSON.parse(readFileSync(join(tmp.dir, 'vectors.json'), 'utf8')) as { seq: string }).seq), seqAtStart);
    await state.close();
    await catalog.close();

    catalog = Catalog.open(join(tmp.dir, 'catalog'));
    const rec = recorder();
    state = await VectorState.open(tmp.dir, catalog, DIM, 'ip', rec.log);
    assert.match(rec.lines.join('\n'), /160 vectors opened .* 60 changes replayed/);
    compareWithCatalog(catalog, state, randomMatrix(1, DIM, 10), 170);
    await state.close();
    await catalog.close();
  } finally {
    tmp.cleanup();
  }
});

test('a torn last id is cut off; an id stored twice, or legacy files rebuild the ids from the catalog', async () => {
  const tmp = tempDir();
  try {
    const vectors = randomMatrix(100, DIM, 11);
    const query = randomMatrix(1, DIM, 12);
    const open = async () => {
      const catalog = Catalog.open(join(tmp.dir, 'catalog'));
      const rec = recorder();
      const state = await VectorState.open(tmp.dir, catalog, DIM, 'ip', rec.log);
      return { catalog, state, log: rec.lines.join('\n') };
    };
    const shut = async (s: { catalog: Catalog; state: VectorState }) => {
      await s.state.sync();
      await s.state.close();
      await s.catalog.close();
    };
    let s = await open();
    upsert(s.catalog, s.state, Array.from({ length: 100 }, (_, i) => i), vectors);
    await shut(s);
    const slotIds = join(tmp.dir, 'vectors.ids');
    assert.equal(readFileSync(join(tmp.dir, 'catalog', 'vectors.f32')).length, 100 * 4 * DIM, 'one row per vector');
    assert.equal(readFileSync(slotIds).length, 100 * 8);

    appendFileSync(slotIds, Buffer.alloc(5, 0)); // a write cut short by a crash
    s = await open();
    assert.match(s.log, /100 vectors opened/);
    compareWithCatalog(s.catalog, s.state, query, 110);
    await shut(s);
    assert.equal(readFileSync(slotIds).length, 100 * 8, 'the torn tail was cut off');

    appendFileSync(slotIds, readFileSync(slotIds).subarray(0, 8)); // row 0's key again
    s = await open();
    assert.match(s.log, /stored twice.*rebuilding[\s\S]*rebuilt from the catalog \(100 vectors\)/);
    compareWithCatalog(s.catalog, s.state, query, 110);
    await shut(s);

    writeFileSync(join(tmp.dir, 'vectors.json'), JSON.stringify({ format: 'slots-v1', seq: '100', ntotal: 100, dim: DIM, metric: 'ip' }));
    writeFileSync(join(tmp.dir, 'vectors.faiss'), 'an old FAISS checkpoint');
    writeFileSync(join(tmp.dir, 'vectors.slots'), 'the copy of the vectors before schema 4');
    s = await open();
    assert.match(s.log, /older layout[\s\S]*rebuilt from the catalog \(100 vectors\)/);
    assert.ok(!existsSync(join(tmp.dir, 'vectors.faiss')), 'the legacy checkpoint is removed');
    assert.ok(!existsSync(join(tmp.dir, 'vectors.slots')), 'the legacy copy of the vectors is removed');
    await shut(s);
  } finally {
    tmp.cleanup();
  }
});

test('a restart reads no vector: the rerank scores the vector file in place (bytes changed on disk after open are what it scores)', async () => {
  const tmp = tempDir();
  try {
    const vectors = randomMatrix(50, DIM, 13);
    let catalog = Catalog.open(join(tmp.dir, 'catalog'));
    let state = await VectorState.open(tmp.dir, catalog, DIM, 'ip', recorder().log);
    upsert(catalog, state, Array.from({ length: 50 }, (_, i) => i), vectors);
    await state.sync();
    await state.close();
    await catalog.close();

    catalog = Catalog.open(join(tmp.dir, 'catalog'));
    const rec = recorder();
    state = await VectorState.open(tmp.dir, catalog, DIM, 'ip', rec.log);
    assert.match(rec.lines.join('\n'), /50 vectors opened from vectors.ids .* 0 changes replayed/);
    // Row 7 rewritten behind the store's back after the open: a state that copied the vectors at open (FAISS did)
    // would still score the old ones; the mapped store reads the page cache, so it scores these.
    const key = BigInt64Array.of(readFileSync(join(tmp.dir, 'vectors.ids')).readBigInt64LE(7 * 8));
    assert.ok(key[0]! > 0n, 'row 7 holds an item');
    const planted = Float32Array.from({ length: DIM }, (_, j) => j + 1);
    const fd = openSync(catalog.vectorFile, 'r+');
    writeSync(fd, new Uint8Array(planted.buffer), 0, 4 * DIM, 7 * 4 * DIM);
    closeSync(fd);
    assert.deepEqual(state.store.score(new Float32Array(DIM).fill(1), key), Float32Array.of((DIM * (DIM + 1)) / 2));
    assert.deepEqual(state.store.gather(key), planted);
    assert.deepEqual(state.verify(), [], 'the vector file is the catalog\'s truth too');
    // The store told that the item is in another row (its ids out of step with the records) disagrees.
    const item = [...catalog.items()].find((it) => it.key === key[0])!;
    state.store.put(key, Uint32Array.of(8));
    state.store.remove(BigInt64Array.of(3n));
    assert.deepEqual(state.verify(), [
      '49 vectors stored, the catalog holds 50 items',
      `item ${[...catalog.items()].find((it) => it.key === 3n)!.id} (key 3) has no stored vector`,
      `item ${item.id} (key ${key[0]}): the stored vector differs from its record's`,
    ]);
    await state.close();
    await catalog.close();
  } finally {
    tmp.cleanup();
  }
});
