/**
 * A catalog that drifted away from its first items under `vectors.storage` pq: the codebooks trained on the first
 * `trainSize` items leave most later ones with a residual above the training's (flagged rows, each re-scored exactly by
 * every rerank); a start says so and how to refit; deleting `vectors.pq` retrains on items spread over the whole
 * catalog (src/vector/code-training.ts spread), after which few rows are flagged. The count of flagged rows follows
 * moves before the training, deletes, a rebuild and a restart. As test/service/vector-state-sq8-drift.test.ts for sq8.
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
import { pqFlaggedCount } from '../helpers/code-stores.ts';

const DIM = 16;
const M = 4;
/** At least 512: below that pqTrain holds no rows out, so there is no limit and nothing is flagged. */
const TRAIN = 600;
const storage = storeOpener({ storage: 'pq', rerankOffThread: true, rescore: 5, trainSize: TRAIN, hugePages: true, layout: 'sid', pqM: M } satisfies Config['vectors']);

/** Opens the state on `dir` (logging into `lines`), with the codes read in or trained. */
async function open(dir: string, lines: string[] = []) {
  const catalog = Catalog.open(join(dir, 'catalog'));
  const state = await VectorState.open(dir, catalog, DIM, 'ip', log(lines), storage);
  await state.store.loaded?.();
  await state.store.training?.();
  return { catalog, state, close: async () => { await state.close(); await catalog.close(); } };
}

test('pq: a start warns when the catalog drifted beyond the codebooks\' reach; deleting vectors.pq retrains them on the whole catalog', async (t) => {
  const tmp = tempDir();
  const n = 2000;
  const vectors = randomMatrix(n, DIM, 31);
  for (let i = TRAIN * DIM; i < vectors.length; i++) vectors[i]! *= 3; // the items after the first 600 at 3x the scale
  try {
    const first = await open(tmp.dir);
    for (let b = 0; b < n / 100; b++) upsert(first.catalog, first.state, DIM, Array.from({ length: 100 }, (_, i) => b * 100 + i), vectors);
    assert.equal(await first.state.store.training?.(), true, 'trained in the background on the first 600');
    const all = first.state.store.clampedRows!();
    assert.ok(all > 0.5 * n, `most items after the first 600 are flagged (${all})`);
    const del = first.catalog.deleteBatch(Array.from({ length: 100 }, (_, i) => `it${n - 100 + i}`));
    first.state.applyDelete(del.removed, del.seq);
    const drifted = first.state.store.clampedRows!();
    assert.ok(drifted < all && drifted > all - 101, `${all} -> ${drifted} after deleting 100 flagged items`);
    await first.state.sync();
    await first.close();

    const lines: string[] = [];
    const second = await open(tmp.dir, lines);
    assert.equal(second.state.store.clampedRows!(), drifted, 'the count read back');
    await second.close();
    const warning = lines.find((l) => l.startsWith('WARN') && l.includes('pq codebooks'));
    assert.ok(warning, lines.join('\n'));
    assert.match(warning, new RegExp(`${drifted} of ${n - 100} items`), 'the count read back is the count written');
    assert.ok(warning.includes(join(tmp.dir, 'vectors.pq')), 'names the file to delete');
    assert.ok(!warning.includes('sq8'), warning);

    rmSync(join(tmp.dir, 'vectors.pq'));
    const refitLines: string[] = [];
    const third = await open(tmp.dir, refitLines);
    const refitted = third.state.store.clampedRows!();
    t.diagnostic(`${drifted} of ${n - 100} flagged on the first items' codebooks, ${refitted} after retraining on a spread sample`);
    try {
      assert.ok(refitted < 0.05 * n, `retrained on the whole catalog: ${refitted} flagged`);
      assert.ok(!refitLines.some((l) => l.includes('pq codebooks')), refitLines.join('\n'));
    } finally {
      await third.close();
    }
    const fourth: string[] = [];
    const reopened = await open(tmp.dir, fourth);
    assert.equal(reopened.state.store.clampedRows!(), refitted, 'read back: the free slots\' rows do not count');
    await reopened.close();
    assert.ok(!fourth.some((l) => l.includes('pq codebooks')), 'the retrained codes are kept');
  } finally {
    tmp.cleanup();
  }
});

/** Live items whose vectors, encoded with the quantiser in vectors.pq's header, are flagged: what the count must say. */
function flaggedTruth(dir: string, catalog: Catalog): number {
  return pqFlaggedCount(join(dir, 'vectors.pq'), DIM, Array.from(catalog.items(), (item) => item.vector), M);
}

test('pq: the flagged count is the live items\' through moves before the training, deletes, a rebuild and a restart', async () => {
  const tmp = tempDir();
  const vectors = randomMatrix(800, DIM, 33);
  for (let i = TRAIN * DIM; i < vectors.length; i++) vectors[i]! *= 5;
  const range = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => from + i);
  try {
    const a = await open(tmp.dir);
    upsert(a.catalog, a.state, DIM, range(0, 300), vectors);
    upsert(a.catalog, a.state, DIM, range(0, 20), vectors, (id) => id + 300); // moved before the training: 20 rows free, never coded
    upsert(a.catalog, a.state, DIM, range(300, 600), vectors); // the training starts here, in the background
    upsert(a.catalog, a.state, DIM, range(600, 680), vectors); // at 5x the scale, while it trains: into the free rows first
    assert.equal(await a.state.store.training?.(), true);
    const trained = a.state.store.clampedRows!();
    assert.equal(trained, flaggedTruth(tmp.dir, a.catalog), 'after the training and the flagged items');
    assert.ok(trained >= 80 && trained < 100, `${trained} flagged`);
    const del = a.catalog.deleteBatch(range(650, 670).map((i) => `it${i}`)); // 20 flagged items
    a.state.applyDelete(del.removed, del.seq);
    assert.equal(a.state.store.clampedRows!(), flaggedTruth(tmp.dir, a.catalog), 'after the deletes');
    assert.equal(a.state.store.clampedRows!(), trained - 20);
    upsert(a.catalog, a.state, DIM, range(600, 610), vectors, (id) => id - 600); // flagged items moved to unflagged vectors
    assert.equal(a.state.store.clampedRows!(), flaggedTruth(tmp.dir, a.catalog), 'after the moves');
    assert.equal(a.state.store.clampedRows!(), trained - 30);
    await a.state.sync();
    await a.close();

    rmSync(join(tmp.dir, 'vectors.json')); // the next start rebuilds the vector state from the catalog
    const b = await open(tmp.dir);
    assert.equal(b.state.store.clampedRows!(), flaggedTruth(tmp.dir, b.catalog), 'after the rebuild');
    const rebuilt = b.state.store.clampedRows!();
    await b.close();
    const c = await open(tmp.dir);
    assert.equal(c.state.store.clampedRows!(), rebuilt, 'read back after a restart');
    assert.equal(c.state.store.clampedRows!(), flaggedTruth(tmp.dir, c.catalog));
    await c.close();
  } finally {
    tmp.cleanup();
  }
});
