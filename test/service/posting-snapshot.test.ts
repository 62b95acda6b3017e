import { test } from 'node:test';
import assert from 'node:assert/strict';
import { PostingSnapshot } from '../../src/service/posting-snapshot.ts';
import { Catalog, type UpsertInput } from '../../src/store/catalog.ts';
import { tempDir } from '../helpers/paths.ts';
import { rng } from '../helpers/random.ts';

const LEVELS = 3;
const K = 5;
const ITEMS = 1500;

test('PostingSnapshot answers exact, prefix and hamming1 as the catalog does (order, limits, churn, other key spaces)', async () => {
  const tmp = tempDir();
  const catalog = Catalog.open(tmp.dir);
  try {
    const r = rng(7);
    const code = () => Int32Array.from({ length: LEVELS }, () => Math.floor(r() * K));
    const items = (prefix: string, n: number): UpsertInput[] =>
      Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, codes: code(), vector: Float32Array.of(i, 0) }));
    catalog.upsertBatch(1, items('a', ITEMS));
    catalog.upsertBatch(2, items('b', 300)); // another key space with the same level count: not model 1's postings
    catalog.upsertBatch(1, items('a', 200)); // re-upserts move 200 items to new SIDs
    catalog.deleteBatch(Array.from({ length: 100 }, (_, i) => `a${3 * i + 1}`));
    catalog.spaces.setActiveModel(1);
    const snap = PostingSnapshot.build(catalog, 1, LEVELS);
    assert.equal(snap.count, ITEMS - 100);
    assert.throws(() => snap.exact(2, code(), 10), /key space/);
    let nonEmpty = 0;
    for (let q = 0; q < 300; q++) {
      const sid = code();
      for (const limit of [1, 3, 20, 5000]) {
        assert.deepEqual(snap.exact(1, sid, limit), catalog.exact(1, sid, limit), `exact ${sid} limit ${limit}`);
        for (let p = 0; p <= LEVELS; p++) {
          const prefix = sid.slice(0, p);
          assert.deepEqual(snap.prefix(1, prefix, limit), catalog.prefix(1, prefix, limit), `prefix ${prefix} limit ${limit}`);
        }
        const h = snap.hamming1(1, sid, limit);
        assert.deepEqual(h, catalog.hamming1(1, sid, limit), `hamming1 ${sid} limit ${limit}`);
        nonEmpty += h.length;
      }
      const key = snap.keys[q]!;
      assert.equal(snap.ids[snap.rowOf(key)], catalog.getByKey(key)!.id);
      assert.deepEqual(snap.sid(snap.rowOf(key)), catalog.getByKey(key)!.codes);
    }
    assert.ok(nonEmpty > 1000);
    assert.equal(snap.rowOf(-5n), -1);
  } finally {
    await catalog.close();
    tmp.cleanup();
  }
});
