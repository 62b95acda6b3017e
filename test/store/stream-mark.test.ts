import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Catalog } from '../../src/store/catalog.ts';
import { tempDir } from '../helpers/paths.ts';

const item = (id: string, d = 4) => ({ id, codes: Int32Array.of(1, 2), vector: new Float32Array(d).fill(0.5) });

test('the write log position is written with the batch it applied, and only with it', async () => {
  const { dir, cleanup } = tempDir('sidx-stream-mark-');
  let cat = Catalog.open(dir);
  try {
    assert.equal(cat.stream.applied, 0n);
    cat.stream.within(7n, () => cat.upsertBatch(1, [item('a'), item('b')]));
    assert.equal(cat.stream.applied, 7n);
    assert.throws(() => cat.stream.within(8n, () => cat.upsertBatch(1, [item('c', 5)])), { code: 'SIDX_ERR_DIMENSION' });
    assert.equal(cat.stream.applied, 7n, 'a refused batch marks nothing');
    cat.upsertBatch(1, [item('c')]);
    assert.equal(cat.stream.applied, 7n, 'a write outside the log leaves the mark');
    cat.stream.within(9n, () => cat.deleteBatch(['a']));
    assert.equal(cat.stream.applied, 9n);
    cat.stream.record(10n);
    assert.equal(cat.stream.applied, 10n, 'an entry that changes nothing is marked on its own');
    await cat.close();
    cat = Catalog.open(dir);
    assert.equal(cat.stream.applied, 10n, 'durable');
    assert.equal(cat.count, 2);
  } finally {
    await cat.close();
    cleanup();
  }
});

test('upsertBatchPipelined: the batch and its log position commit together, after the vector file is synced; a transaction committed meanwhile carries neither', async () => {
  const { dir, cleanup } = tempDir('sidx-stream-mark-async-');
  let cat = Catalog.open(dir);
  try {
    cat.upsertBatch(1, [item('a')]);
    const pending = cat.upsertBatchPipelined(1, [item('b'), item('c')], undefined, 12n);
    cat.truncateChanges(cat.lastSeq); // a checkpoint's transaction, committed while the batch's fdatasync runs
    assert.equal(cat.stream.applied, 0n, 'the checkpoint did not carry the batch\'s log position');
    assert.equal(cat.get('b'), undefined, 'nothing of the batch is committed before its vectors are synced');
    const res = await (await pending).committed;
    assert.equal(res.keys.length, 2);
    assert.equal(cat.stream.applied, 12n);
    await assert.rejects((await cat.upsertBatchPipelined(1, [item('d', 5)], undefined, 13n)).committed, { code: 'SIDX_ERR_DIMENSION' });
    assert.equal(cat.stream.applied, 12n, 'a refused batch marks nothing');
    await cat.close();
    cat = Catalog.open(dir);
    assert.deepEqual([cat.stream.applied, cat.count], [12n, 3]);
    assert.deepEqual(Array.from(cat.get('c')!.vector), Array.from(item('c').vector));
  } finally {
    await cat.close();
    cleanup();
  }
});
