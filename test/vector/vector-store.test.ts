/**
 * The mapped slot store (src/vector/vector-store.ts over native/src/slot_map.cc and slot-file.ts): scores read in
 * place from the mapped vector file equal a brute-force computation (ip and l2) through growth past the mapping
 * (remaps), keys moved to new rows (copy-on-write rewrites), deletes (NaN) and row reuse; gather returns the
 * stored rows; a reopened store sees the same vectors without reading them; the raw SlotMap validates its inputs.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { loadFaissBinding } from '../../src/vector/binding.ts';
import { MappedSlotStore } from '../../src/vector/vector-store.ts';
import { tempDir } from '../helpers/paths.ts';
import { RowWriter } from '../helpers/rows.ts';
import { dot, metricScore, randomMatrix } from '../helpers/random.ts';

const DIM = 64; // 256-byte rows: the first 1 MiB mapping holds 4,096 of them

/** Every key in 0..maxKey scored by the store and against `truth` (key -> vector; absent = NaN expected). */
function assertScores(store: MappedSlotStore, truth: Map<bigint, Float32Array>, query: Float32Array, maxKey: number): void {
  const keys = BigInt64Array.from({ length: maxKey + 1 }, (_, i) => BigInt(i));
  const got = store.score(query, keys);
  keys.forEach((key, i) => {
    const v = truth.get(key);
    if (!v) assert.ok(Number.isNaN(got[i]), `key ${key} not stored: NaN, got ${got[i]}`);
    else {
      const want = metricScore(store.metric, query, v);
      assert.ok(Math.abs(got[i]! - want) <= 1e-4 * (1 + Math.abs(want)), `key ${key}: ${got[i]} vs ${want}`);
    }
  });
  assert.equal(store.ntotal, truth.size);
}

for (const metric of ['ip', 'l2'] as const) {
  test(`${metric}: scores equal brute force through growth past the mapping, rewrites, deletes, slot reuse and a reopen`, () => {
    const tmp = tempDir();
    const base = join(tmp.dir, 'vectors');
    const file = join(tmp.dir, 'vectors.f32');
    const rows = new RowWriter(file, DIM);
    try {
      const n = 10_000;
      const vectors = randomMatrix(n + 100, DIM, 3);
      const row = (r: number) => vectors.subarray(r * DIM, (r + 1) * DIM);
      const query = randomMatrix(1, DIM, 4);
      const truth = new Map<bigint, Float32Array>();
      let store = MappedSlotStore.open(base, DIM, metric, file);
      store.reset();
      // Batches of 1,000 keys 1..n: the file grows to 2.4 MiB, past the first mapping (1 MiB) and the second (2 MiB);
      // each batch is scored right after its write, before anything else touches the file.
      for (let start = 0; start < n; start += 1000) {
        const keys = BigInt64Array.from({ length: 1000 }, (_, i) => BigInt(start + i + 1));
        store.put(keys, rows.write(vectors.subarray(start * DIM, (start + 1000) * DIM)));
        keys.forEach((k, i) => truth.set(k, row(start + i)));
        assertScores(store, truth, query, start + 1001);
      }
      assert.equal(statSync(file).size, n * DIM * 4);
      assert.equal(statSync(`${base}.ids`).size, n * 8);
      // Rewrites to new rows (keys 5 and 6 leave rows 4 and 5), deletes, then new keys in the freed rows.
      store.put(BigInt64Array.of(5n, 6n), rows.write(vectors.subarray((n + 1) * DIM, (n + 3) * DIM)));
      truth.set(5n, row(n + 1)).set(6n, row(n + 2));
      rows.release([4, 5]);
      assert.equal(store.remove(BigInt64Array.of(10n, 20n, 999_999n)), 2);
      rows.release([9, 19]);
      truth.delete(10n);
      truth.delete(20n);
      assertScores(store, truth, query, n + 5);
      store.put(BigInt64Array.of(20_001n, 20_002n, 20_003n), rows.write(vectors.subarray((n + 3) * DIM, (n + 6) * DIM)));
      truth.set(20_001n, row(n + 3)).set(20_002n, row(n + 4)).set(20_003n, row(n + 5));
      assert.equal(statSync(file).size, (n + 2) * DIM * 4, 'three of the four freed rows were reused');
      assertScores(store, truth, query, n + 5);
      const keys = BigInt64Array.of(20_002n, 5n, 1n);
      assert.deepEqual(store.gather(keys), Float32Array.from([...row(n + 4), ...row(n + 1), ...row(0)]));
      assert.throws(() => store.gather(BigInt64Array.of(10n)), { code: 'SIDX_ERR_VECTOR' });
      assert.throws(() => store.score(new Float32Array(DIM - 1), keys), { code: 'SIDX_ERR_DIMENSION' });
      store.close();
      assert.throws(() => store.score(query, keys), { code: 'SIDX_ERR_VECTOR' });

      store = MappedSlotStore.open(base, DIM, metric, file);
      store.load();
      assertScores(store, truth, query, n + 5);
      const high = store.score(query, BigInt64Array.of(20_001n))[0]!;
      assert.ok(Math.abs(high - metricScore(metric, query, row(n + 3))) <= 1e-4 * (1 + Math.abs(high)));
      store.reset();
      assertScores(store, new Map(), query, 20);
      store.close();
    } finally {
      rows.close();
      tmp.cleanup();
    }
  });
}

test('the raw SlotMap: NaN for a negative slot or one past the file, gather and constructor errors, close', () => {
  const tmp = tempDir();
  try {
    const rows = new RowWriter(join(tmp.dir, 'v.f32'), 4);
    const store = MappedSlotStore.open(join(tmp.dir, 'v'), 4, 'ip', join(tmp.dir, 'v.f32'));
    store.reset();
    store.put(BigInt64Array.of(1n, 2n), rows.write(Float32Array.of(1, 2, 3, 4, 5, 6, 7, 8)));
    store.close();
    rows.close();
    const { SlotMap } = loadFaissBinding();
    const map = new SlotMap(join(tmp.dir, 'v.f32'), 4, 'ip');
    assert.equal(map.slots, 2);
    assert.deepEqual(map.scoreSlots(Float32Array.of(1, 1, 1, 1), Int32Array.of(1, -1, 2, 0)), Float32Array.of(26, NaN, NaN, 10));
    assert.deepEqual(map.gather(Int32Array.of(1, 0)), Float32Array.of(5, 6, 7, 8, 1, 2, 3, 4));
    assert.throws(() => map.gather(Int32Array.of(2)), { code: 'SIDX_ERR_VECTOR' });
    assert.throws(() => map.scoreSlots(Float32Array.of(1, 1, 1, 1), new Uint32Array(1) as unknown as Int32Array), { code: 'SIDX_ERR_INVALID_INPUT' });
    assert.throws(() => map.scoreSlots(new Float32Array(3), Int32Array.of(0)), { code: 'SIDX_ERR_DIMENSION' });
    map.close();
    assert.throws(() => map.scoreSlots(Float32Array.of(1, 1, 1, 1), Int32Array.of(0)), { code: 'SIDX_ERR_VECTOR' });
    assert.throws(() => new SlotMap(join(tmp.dir, 'missing.slots'), 4, 'ip'), { code: 'SIDX_ERR_VECTOR' });
    assert.throws(() => new SlotMap(join(tmp.dir, 'v.f32'), 4, 'cosine' as 'ip'), { code: 'SIDX_ERR_INVALID_INPUT' });
  } finally {
    tmp.cleanup();
  }
});

test('scoreAsync: the scores of score, off the event loop; a key rewritten or deleted in flight is scored as it is when it resolves', async () => {
  const tmp = tempDir();
  const file = join(tmp.dir, 'vectors.f32');
  const rows = new RowWriter(file, DIM);
  const store = MappedSlotStore.open(join(tmp.dir, 'vectors'), DIM, 'ip', file);
  try {
    store.reset();
    const n = 3000;
    const vectors = randomMatrix(n + 10, DIM, 8);
    const keys = BigInt64Array.from({ length: n }, (_, i) => BigInt(i + 1));
    store.put(keys, rows.write(vectors.subarray(0, n * DIM)));
    const query = randomMatrix(1, DIM, 9);
    const asked = BigInt64Array.from([...keys.subarray(0, 500), 999_999n]);
    assert.deepEqual(await store.scoreAsync(query, asked), store.score(query, asked));
    for (const length of [1, 255, 256, 501]) { // below and above the rows scoreShared keeps on the calling thread
      const some = asked.subarray(asked.length - length);
      assert.deepEqual(await store.scoreShared(query, some), store.score(query, some), `scoreShared of ${length} keys`);
    }

    // In flight: key 1 moves to a new row (copy-on-write) whose old row is reused by key 9,000; key 2 is deleted;
    // the file grows past its mapping. The caller's array is reused at once.
    const pending = store.scoreAsync(query, asked);
    store.put(BigInt64Array.of(1n), rows.write(vectors.subarray(n * DIM, (n + 1) * DIM)));
    rows.release([0]);
    store.remove(BigInt64Array.of(2n));
    store.put(BigInt64Array.of(9_000n), rows.write(vectors.subarray((n + 1) * DIM, (n + 2) * DIM)));
    store.put(BigInt64Array.from({ length: 8 }, (_, i) => BigInt(10_000 + i)), rows.write(randomMatrix(8, DIM, 10)));
    asked.fill(0n);
    const got = await pending;
    assert.ok(Math.abs(got[0]! - dot(query, vectors.subarray(n * DIM, (n + 1) * DIM))) < 1e-4, 'key 1: its new row');
    assert.ok(Number.isNaN(got[1]!), 'key 2: deleted');
    assert.ok(Number.isNaN(got[500]!), 'an unknown key');
    for (let i = 2; i < 500; i++) assert.ok(Math.abs(got[i]! - dot(query, vectors.subarray(i * DIM, (i + 1) * DIM))) < 1e-4, `key ${i + 1}`);
    await assert.rejects(store.scoreAsync(new Float32Array(DIM - 1), keys), { code: 'SIDX_ERR_DIMENSION' });
    await assert.rejects(store.scoreShared(new Float32Array(DIM - 1), keys), { code: 'SIDX_ERR_DIMENSION' });
  } finally {
    store.close();
    rows.close();
    tmp.cleanup();
  }
});

test('the raw SlotMap: scoreSlotsAsync keeps its mapping through a remap and a close in flight', async () => {
  const tmp = tempDir();
  try {
    const file = join(tmp.dir, 'v.f32');
    const rows = new RowWriter(file, DIM);
    const data = randomMatrix(4000, DIM, 11); // 1 MiB: the first mapping's whole size
    rows.write(data.subarray(0, 4000 * DIM));
    const { SlotMap } = loadFaissBinding();
    const map = new SlotMap(file, DIM, 'ip');
    const query = randomMatrix(1, DIM, 12);
    const slots = Int32Array.from({ length: 4000 }, (_, i) => 3999 - i);
    const want = map.scoreSlots(query, slots);
    const inFlight = Array.from({ length: 8 }, () => map.scoreSlotsAsync(query, slots));
    rows.write(randomMatrix(4000, DIM, 13)); // past the mapping: the next call remaps
    assert.equal(map.refresh(), 8000);
    const late = map.scoreSlotsAsync(query, Int32Array.of(7999, 0));
    map.close();
    for (const p of inFlight) assert.deepEqual(await p, want);
    assert.equal((await late)[1], want[3999]);
    await assert.rejects(map.scoreSlotsAsync(query, slots), { code: 'SIDX_ERR_VECTOR' });
    rows.close();
  } finally {
    tmp.cleanup();
  }
});
