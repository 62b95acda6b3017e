/**
 * A background training's end (src/vector/code-training.ts, pq): the fill that writes the held items' codes (encoded
 * on the libuv pool) skips the slots freed while it runs, before or while their rows are encoded (their rows are stale:
 * counting them would overstate the flagged count until the next start), and the codes file covers every slot once trained (a free last slot no longer leaves it short, which made
 * the next start rebuild the codes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { setImmediate as nextTurn } from 'node:timers/promises';
import { PqStore } from '../../src/vector/pq-store.ts';
import { fill, openCodeStore, pqFlaggedCount } from '../helpers/code-stores.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';

const DIM = 16;
const open = (dir: string) => openCodeStore((base, slots, metric, opts) => PqStore.open(base, slots, metric, { ...opts, pqM: 0 }), dir, DIM, 'ip', 5, 600);

/** Live vectors whose codes under the stored quantiser are flagged (the last code 255). */
const flaggedTruth = (dir: string, live: Map<number, Float32Array>) => pqFlaggedCount(join(dir, 'vectors.pq'), DIM, live.values());

test('a background fill skips the slots freed while it runs: the flagged count is the live items\', before and after a restart', async () => {
  const n = 5000;
  const data = randomMatrix(n, DIM, 7);
  const far: number[] = [];
  for (let r = 1000; r < n; r += 20) {
    far.push(r + 1); // ids are rows + 1
    for (let d = 0; d < DIM; d++) data[r * DIM + d]! *= 3;
  }
  const tmp = tempDir();
  let { put, slots, store, close } = open(tmp.dir);
  try {
    fill(put, data, DIM, 500);
    const live = new Map<number, Float32Array>();
    for (let i = 1; i <= n; i++) live.set(i, data.subarray((i - 1) * DIM, i * DIM));
    const training = store.training();
    assert.ok(training, 'a background training runs');
    while (!store.encodes) await nextTurn(); // the quantiser is in; the held codes are written 1,024 per turn
    // One turn on, the first chunk (slots 0-1,023) is being encoded on the libuv pool: delete its far items meanwhile
    // (freed while their rows are encoded), and the far items of the later chunks (freed before theirs are read).
    await nextTurn();
    const gone = far.filter((id) => id <= 1024 || id > 3000);
    assert.deepEqual(gone.slice(0, 2), [1001, 1021]);
    const keys = BigInt64Array.from(gone, BigInt);
    const freed = slots.slotsOf(keys);
    slots.remove(keys);
    store.releaseSlots(freed);
    for (const id of gone) live.delete(id);
    assert.equal(await training, true);
    const truth = flaggedTruth(tmp.dir, live);
    assert.ok(truth >= 50, `the far items left are flagged (${truth})`);
    assert.equal(store.clampedRows(), truth, 'the deleted items\' stale rows are not counted');
    await store.datasync();
    close();
    ({ store, close } = open(tmp.dir));
    store.load();
    await store.codesLoaded();
    assert.equal(store.clampedRows(), truth, 'after a restart');
  } finally {
    close();
    tmp.cleanup();
  }
});

test('a training covers every slot in the codes file: a free last slot does not make the next start refuse it', async () => {
  const tmp = tempDir();
  let { put, slots, store, close } = open(tmp.dir);
  try {
    fill(put, randomMatrix(600, DIM, 1), DIM, 600); // the training starts in the background
    put(BigInt64Array.of(601n), randomMatrix(1, DIM, 2)); // held, at slot 600
    const last = BigInt64Array.of(601n);
    const freed = slots.slotsOf(last);
    slots.remove(last);
    store.releaseSlots(freed); // before the fill writes it
    assert.equal(await store.training(), true);
    assert.equal(slots.slots, 601);
    assert.equal(statSync(join(tmp.dir, 'vectors.pq')).size, Math.ceil((16 + 1024 * DIM + 4) / 4096) * 4096 + 601 * (DIM / 2), 'the header, then every slot');
    await store.datasync();
    close();
    ({ store, close } = open(tmp.dir));
    assert.doesNotThrow(() => store.load(), 'loaded, not refused as short');
    await store.codesLoaded();
    assert.equal(store.trained, true);
  } finally {
    close();
    tmp.cleanup();
  }
});
