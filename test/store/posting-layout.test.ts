/**
 * A natural-only catalog (postingRotations 'natural': each SID's natural posting alone) answers exact, prefix and
 * Hamming-1 scans exactly as one with every rotation, through upserts, re-upserts with another SID, deletes and side
 * SIDs; opened with 'all' it gets the rotated postings written (again after a crash before the flag was cleared).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { open } from 'lmdb';
import { Catalog } from '../../src/store/catalog.ts';
import { verifyCatalog } from '../../src/store/catalog-verify.ts';
import { tempDir } from '../helpers/paths.ts';
import { seededUniform } from '../../src/random.ts';

const D = 4;
const vec = (seed: number) => Float32Array.from({ length: D }, (_, j) => Math.sin(seed * 3.1 + j));

/** Applies the same seeded writes to `cat`: two models (3 levels of 7 codes, 4 levels up to code 299). */
function fill(cat: Catalog): void {
  const next = seededUniform(11);
  const sid3 = () => Int32Array.from({ length: 3 }, () => Math.floor(next() * 7));
  const sid4 = () => Int32Array.from({ length: 4 }, (_, l) => (l === 1 ? 250 : 0) + Math.floor(next() * (l === 1 ? 50 : 5)));
  for (let b = 0; b < 4; b++) {
    cat.upsertBatch(1, Array.from({ length: 150 }, (_, i) => ({ id: `a${b * 150 + i}`, codes: sid3(), vector: vec(b * 150 + i) })));
  }
  cat.upsertBatch(1, Array.from({ length: 100 }, (_, i) => ({ id: `a${i * 3}`, codes: sid3(), vector: vec(i) }))); // new SIDs
  cat.deleteBatch(Array.from({ length: 60 }, (_, i) => `a${i * 7 + 1}`));
  cat.upsertBatch(2, Array.from({ length: 200 }, (_, i) => ({ id: `b${i}`, codes: sid4(), vector: vec(1000 + i) })));
  cat.spaces.putSids(3, Array.from({ length: 40 }, (_, i) => ({ key: BigInt(i + 2), codes: sid3() })));
}

/** Every scan's answer over a grid of SIDs and limits. */
function answers(cat: Catalog): unknown[] {
  const out: unknown[] = [];
  for (const limit of [1, 4, 1000]) {
    for (let a = 0; a < 7; a++) for (let b = 0; b < 7; b++) for (let c = 0; c < 7; c += 3) {
      const sid = Int32Array.of(a, b, c);
      out.push(cat.exact(1, sid, limit), cat.prefix(1, sid.subarray(0, 2), limit), cat.hamming1(1, sid, limit), cat.hamming1(3, sid, limit));
    }
    for (let i = 0; i < 30; i++) out.push(cat.hamming1(2, Int32Array.of(i % 5, 250 + ((i * 7) % 50), (i * 3) % 5, i % 4), limit));
  }
  return out;
}

test('a natural-only catalog answers every scan as one with all rotations, holds one posting per SID, and gets the rotations when opened with all', async () => {
  const all = tempDir('sidx-layout-all-');
  const nat = tempDir('sidx-layout-nat-');
  try {
    const a = Catalog.open(all.dir);
    const n = Catalog.open(nat.dir, { postingRotations: 'natural' });
    fill(a);
    fill(n);
    const want = answers(a);
    assert.ok(want.some((x) => Array.isArray(x) && x.length > 3), 'the grid finds Hamming-1 neighbours');
    assert.deepEqual(answers(n), want);
    await Promise.all([a.close(), n.close()]);

    const ra = await verifyCatalog(all.dir);
    const rn = await verifyCatalog(nat.dir);
    assert.ok(ra.ok && rn.ok, [...ra.problems, ...rn.problems].join('\n'));
    assert.equal(ra.items, rn.items);
    assert.deepEqual([ra.naturalOnly, rn.naturalOnly], [false, true]);
    assert.equal(rn.postings * 3 + 200, ra.postings, 'one posting per SID held instead of one per rotation (4 for model 2)');

    // A crash after the rotations were written but before the flag was cleared: the rebuild runs again.
    for (const crashed of [false, true]) {
      const reopened = Catalog.open(nat.dir, { postingRotations: 'all' });
      assert.deepEqual(answers(reopened), want);
      await reopened.close();
      const report = await verifyCatalog(nat.dir);
      assert.ok(report.ok, report.problems.join('\n'));
      assert.deepEqual([report.naturalOnly, report.postings], [false, ra.postings], crashed ? 'after the repeated rebuild' : 'after the rebuild');
      if (!crashed) {
        const env = open<Buffer, Buffer>({ path: nat.dir, maxDbs: 12, encoding: 'binary', keyEncoding: 'binary', overlappingSync: false });
        const meta = env.openDB<Buffer, Buffer>({ name: 'meta', encoding: 'binary', keyEncoding: 'binary' });
        meta.putSync(Buffer.from('naturalPostingsOnly'), Buffer.from([0, 0, 0, 1]));
        await env.close();
      }
    }
  } finally {
    all.cleanup();
    nat.cleanup();
  }
});
