import { test } from 'node:test';
import assert from 'node:assert/strict';
import { ItemDirectory } from '../../src/service/item-directory.ts';
import { Catalog, type UpsertInput } from '../../src/store/catalog.ts';
import { tempDir } from '../helpers/paths.ts';
import { rng } from '../helpers/random.ts';

test('ItemDirectory: one row per item of the key space, its id and SID; later, deleted and unknown keys have none', async () => {
  const tmp = tempDir();
  const catalog = Catalog.open(tmp.dir);
  try {
    const r = rng(3);
    const code = () => Int32Array.from({ length: 3 }, () => Math.floor(r() * 6));
    const items = (prefix: string, n: number): UpsertInput[] =>
      Array.from({ length: n }, (_, i) => ({ id: `${prefix}${i}`, codes: code(), vector: Float32Array.of(i, 0) }));
    catalog.upsertBatch(1, items('a', 400));
    catalog.upsertBatch(1, items('a', 50)); // re-upserts move items to new SIDs
    catalog.deleteBatch(['a7', 'a8']);
    catalog.spaces.setActiveModel(1);
    const dir = ItemDirectory.build(catalog, 1, 3);
    assert.equal(dir.count, 398);
    const rows = new Set<number>();
    for (let i = 0; i < 400; i++) {
      const rec = catalog.get(`a${i}`);
      if (i === 7 || i === 8) {
        assert.equal(rec, undefined);
        continue;
      }
      const row = dir.rowOf(rec!.key);
      assert.ok(row >= 0, `a${i} has a row`);
      rows.add(row);
      assert.equal(dir.ids[row], `a${i}`);
      assert.deepEqual(dir.sid(row), rec!.codes);
    }
    assert.equal(rows.size, 398);
    catalog.upsertBatch(1, items('late', 1));
    assert.equal(dir.rowOf(catalog.get('late0')!.key), -1, 'a copy: later items have no row');
    assert.equal(dir.rowOf(-5n), -1);
  } finally {
    await catalog.close();
    tmp.cleanup();
  }
});
