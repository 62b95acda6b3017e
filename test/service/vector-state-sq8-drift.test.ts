/**
 * A catalog that drifted away from its first items under `vectors.storage` sq8: the ranges fitted on the first
 * `trainSize` items clamp most later ones; a start says so and how to refit; deleting `vectors.sq8` refits the ranges on
 * items spread over the whole catalog (src/vector/code-training.ts spread), after which few rows are clamped and the
 * scores near the top stay exact.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { rmSync } from 'node:fs';
import { join } from 'node:path';
import { Catalog } from '../../src/store/catalog.ts';
import type { Config } from '../../src/config.ts';
import { VectorState } from '../../src/service/vector-state.ts';
import { storeOpener } from '../../src/vector/sq8-slot-store.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { log, upsert } from '../helpers/vector-state-crash.ts';
import { storedPayload } from '../helpers/code-stores.ts';
import { loadFaissBinding } from '../../src/vector/binding.ts';

const DIM = 16;
const N = 1000;

test('sq8: a start warns when the catalog drifted beyond the ranges; deleting vectors.sq8 refits them on the whole catalog', async () => {
  const tmp = tempDir();
  const storage = storeOpener({ storage: 'sq8', rerankOffThread: true, rescore: 5, trainSize: 200, hugePages: true, layout: 'sid', pqM: 0 } satisfies Config['vectors']);
  const vectors = randomMatrix(N, DIM, 21);
  for (let i = 200 * DIM; i < vectors.length; i++) vectors[i]! *= 3; // the items after the first 200 at 3x the scale
  const reopen = async (lines: string[]) => {
    const catalog = Catalog.open(join(tmp.dir, 'catalog'));
    const state = await VectorState.open(tmp.dir, catalog, DIM, 'ip', log(lines), storage);
    await state.store.loaded?.();
    return { catalog, state, close: async () => { await state.close(); await catalog.close(); } };
  };
  try {
    const first = await reopen([]);
    for (let b = 0; b < N / 100; b++) upsert(first.catalog, first.state, DIM, Array.from({ length: 100 }, (_, i) => b * 100 + i), vectors);
    const all = first.state.store.clampedRows!();
    assert.ok(all > 0.5 * N, `most items after the first 200 are clamped (${all})`);
    // The last 100 deleted: their slots stay free (a rebuild gives them no codes: zeros in vectors.sq8, which must not
    // count as clamped, at the rebuild or after a restart) and stop counting now.
    const del = first.catalog.deleteBatch(Array.from({ length: 100 }, (_, i) => `it${N - 100 + i}`));
    first.state.applyDelete(del.removed, del.seq);
    const drifted = first.state.store.clampedRows!();
    assert.ok(drifted < all && drifted > all - 101, `${all} -> ${drifted} after deleting 100 clamped items`);
    await first.state.sync();
    await first.close();

    const lines: string[] = [];
    const second = await reopen(lines);
    await second.close();
    const warning = lines.find((l) => l.startsWith('WARN') && l.includes('sq8 ranges'));
    assert.ok(warning, lines.join('\n'));
    assert.match(warning, new RegExp(`${drifted} of ${N - 100} items`), 'the count read back is the count written');
    assert.ok(warning.includes(join(tmp.dir, 'vectors.sq8')), 'names the file to delete');

    rmSync(join(tmp.dir, 'vectors.sq8'));
    const refitLines: string[] = [];
    const third = await reopen(refitLines);
    const refitted = third.state.store.clampedRows!();
    try {
      assert.ok(refitted < 0.05 * N, `refitted on the whole catalog: ${refitted} clamped`);
      assert.ok(!refitLines.some((l) => l.includes('sq8 ranges')), refitLines.join('\n'));
    } finally {
      await third.close();
    }
    const fourth: string[] = [];
    const reopened = await reopen(fourth);
    assert.equal(reopened.state.store.clampedRows!(), refitted, 'read back: the free slots\' zero rows do not count');
    await reopened.close();
    assert.ok(!fourth.some((l) => l.includes('sq8 ranges')), 'the refitted codes are kept');
  } finally {
    tmp.cleanup();
  }
});

/** Live items whose vectors, encoded with the quantiser in vectors.sq8's header, hold a 0 or 255: what the count must say. */
function clampedTruth(dir: string, catalog: Catalog): number {
  const payload = storedPayload(join(dir, 'vectors.sq8'), 2 * DIM);
  const codes = new (loadFaissBinding().Sq8Codes)(DIM, 'ip', payload.subarray(0, DIM), payload.subarray(DIM));
  try {
    let n = 0;
    for (const item of catalog.items()) if (codes.encode(item.vector).some((c) => c === 0 || c === 255)) n++;
    return n;
  } finally {
    codes.close();
  }
}

test('sq8: the clamped count is the live items\' through moves before the training, deletes, a rebuild and a restart', async () => {
  const tmp = tempDir();
  const storage = storeOpener({ storage: 'sq8', rerankOffThread: true, rescore: 5, trainSize: 200, hugePages: true, layout: 'sid', pqM: 0 } satisfies Config['vectors']);
  const vectors = randomMatrix(400, DIM, 23);
  for (let i = 200 * DIM; i < vectors.length; i++) vectors[i]! *= 5;
  const open = async () => {
    const catalog = Catalog.open(join(tmp.dir, 'catalog'));
    const state = await VectorState.open(tmp.dir, catalog, DIM, 'ip', log([]), storage);
    await state.store.loaded?.();
    return { catalog, state, close: async () => { await state.close(); await catalog.close(); } };
  };
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
  try {
    const a = await open();
    upsert(a.catalog, a.state, DIM, range(0, 100), vectors);
    upsert(a.catalog, a.state, DIM, range(0, 20), vectors, (id) => id + 100); // moved before the training: 20 rows free, never coded
    upsert(a.catalog, a.state, DIM, range(100, 200), vectors); // the training completes here
    upsert(a.catalog, a.state, DIM, range(200, 240), vectors); // at 5x the scale: into the free rows first
    assert.equal(a.state.store.clampedRows!(), clampedTruth(tmp.dir, a.catalog), 'after the training and the clamped items');
    assert.ok(a.state.store.clampedRows!() > 30, `${a.state.store.clampedRows!()} clamped`);
    const del = a.catalog.deleteBatch(range(50, 70).map((i) => `it${i}`)); // free rows in the middle
    a.state.applyDelete(del.removed, del.seq);
    assert.equal(a.state.store.clampedRows!(), clampedTruth(tmp.dir, a.catalog), 'after the deletes');
    await a.state.sync();
    await a.close();

    rmSync(join(tmp.dir, 'vectors.json')); // the next start rebuilds the vector state from the catalog
    const b = await open();
    assert.equal(b.state.store.clampedRows!(), clampedTruth(tmp.dir, b.catalog), 'after the rebuild');
    await b.close();
    const c = await open();
    assert.equal(c.state.store.clampedRows!(), clampedTruth(tmp.dir, c.catalog), 'read back after a restart');
    await c.close();
  } finally {
    tmp.cleanup();
  }
});
