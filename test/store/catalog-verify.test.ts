import assert from 'node:assert/strict';
import { test } from 'node:test';
import { open } from 'lmdb';
import { Catalog } from '../../src/store/catalog.ts';
import { CatalogInspector, verifyCatalog } from '../../src/store/catalog-verify.ts';
import { encodeSidKey } from '../../src/sid/codec.ts';
import { u64Key } from '../../src/store/keys.ts';
import { tempDir } from '../helpers/paths.ts';

const vec = (seed: number) => Float32Array.from({ length: 4 }, (_, j) => Math.sin(seed + j));

function fill(cat: Catalog): void {
  cat.upsertBatch(1, [
    { id: 'a', codes: Int32Array.of(1, 2, 3), vector: vec(1) },
    { id: 'b', codes: Int32Array.of(1, 2, 4), vector: vec(2) },
    { id: 'ünï-🙂', codes: Int32Array.of(9, 2, 3), vector: vec(3) },
  ]);
  cat.upsertBatch(1, [{ id: 'a', codes: Int32Array.of(5, 5, 5), vector: vec(4) }]); // SID changes: old postings go
  cat.deleteBatch(['b']);
}

/** Raw write access to one named database of the catalog, to break it on purpose. */
async function tamper(dir: string, name: string, fn: (db: ReturnType<ReturnType<typeof open>['openDB']>) => void): Promise<void> {
  const env = open({ path: dir, maxDbs: 8, encoding: 'binary', keyEncoding: 'binary' });
  const db = env.openDB({ name, encoding: 'binary', keyEncoding: 'binary' });
  await env.transactionSync(() => fn(db));
  await env.close();
}

test('a catalog written by Catalog verifies clean, also while Catalog has it open', async () => {
  const { dir, cleanup } = tempDir('sidx-verify-');
  try {
    const cat = Catalog.open(dir);
    fill(cat);
    const inspector = CatalogInspector.open(dir);
    const report = inspector.verify();
    assert.deepEqual(report.problems, []);
    assert.equal(report.ok, true);
    assert.equal(report.items, 2);
    assert.equal(report.ids, 2);
    assert.equal(report.postings, 6);
    assert.equal(report.changes, 5);
    assert.deepEqual([...inspector.sids().keys()].sort(), ['a', 'ünï-🙂']);
    assert.deepEqual(inspector.sids().get('a')!.codes, Int32Array.of(5, 5, 5));
    await inspector.close();
    cat.upsertBatch(1, [{ id: 'c', codes: Int32Array.of(0, 0, 0), vector: vec(5) }]);
    assert.equal((await verifyCatalog(dir)).items, 3);
    await cat.close();
  } finally {
    cleanup();
  }
});

test('verify reports a missing posting, an orphan posting, a dangling id and a stale SID posting', async () => {
  const { dir, cleanup } = tempDir('sidx-verify-');
  try {
    const cat = Catalog.open(dir);
    fill(cat);
    const aKey = cat.get('a')!.key;
    await cat.close();

    const posting = (codes: number[], rotation: number, key: bigint) =>
      Buffer.concat([encodeSidKey(1, rotation, Int32Array.from(codes)), u64Key(key)]);

    await tamper(dir, 'postings', (db) => db.removeSync(posting([5, 5, 5], 0, aKey)));
    let r = await verifyCatalog(dir);
    assert.equal(r.ok, false);
    assert.match(r.problems.join('\n'), /posting of rotation 0 missing/);
    await tamper(dir, 'postings', (db) => db.putSync(posting([5, 5, 5], 0, aKey), Buffer.alloc(0)));
    assert.equal((await verifyCatalog(dir)).ok, true);

    await tamper(dir, 'postings', (db) => db.putSync(posting([7, 7, 7], 2, 999n), Buffer.alloc(0)));
    r = await verifyCatalog(dir);
    assert.match(r.problems.join('\n'), /-> key 999: no such item/);
    await tamper(dir, 'postings', (db) => db.removeSync(posting([7, 7, 7], 2, 999n)));

    await tamper(dir, 'postings', (db) => db.putSync(posting([1, 2, 3], 1, aKey), Buffer.alloc(0)));
    r = await verifyCatalog(dir);
    assert.match(r.problems.join('\n'), /the item's SID is 5-5-5/);
    await tamper(dir, 'postings', (db) => db.removeSync(posting([1, 2, 3], 1, aKey)));

    await tamper(dir, 'ids', (db) => db.putSync(Buffer.from('ghost'), u64Key(12345n)));
    r = await verifyCatalog(dir);
    assert.match(r.problems.join('\n'), /id "ghost": maps to key 12345 with no item/);
    await tamper(dir, 'ids', (db) => db.removeSync(Buffer.from('ghost')));

    await tamper(dir, 'ids', (db) => db.removeSync(Buffer.from('a')));
    r = await verifyCatalog(dir);
    assert.match(r.problems.join('\n'), /\("a"\): no id mapping/);
    assert.ok(r.problemCount >= 2, 'the id count no longer matches either');
  } finally {
    cleanup();
  }
});
