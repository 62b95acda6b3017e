/**
 * A background training's end (src/vector/code-training.ts, pq): the fill that writes the held items' codes (encoded
 * on the libuv pool) skips the slots freed while it runs, before or while their rows are encoded (their rows are stale:
 * counting them would overstate the flagged count until the next start), and the codes file covers every slot once
 * trained (a free last slot no longer leaves it short, which made the next start rebuild the codes).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { PqStore } from '../../src/vector/pq-store.ts';
import { fill, openCodeStore, pqFlaggedCount, storedPq } from '../helpers/code-stores.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';

const DIM = 16;
const open = (dir: string) => openCodeStore((base, slots, metric, opts) => PqStore.open(base, slots, metric, { ...opts, pqM: 0 }), dir, DIM, 'ip', 5, 600);

/** Bytes before the first slot's codes: the header with the codebooks and the limit, padded to 4 KiB. */
const HEADER = Math.ceil((16 + 1024 * DIM + 4) / 4096) * 4096;
type Opened = ReturnType<typeof open>;

/** Live vectors whose codes under the stored quantiser are flagged (the last code 255). */
const flaggedTruth = (dir: string, live: Map<number, Float32Array>) => pqFlaggedCount(join(dir, 'vectors.pq'), DIM, live.values());

/** Deletes `keys` as the catalog does: the slot file first, then the freed rows (for reuse) and their codes released. */
function removeKeys({ slots, rows, store }: Opened, keys: BigInt64Array): void {
  const freed = slots.slotsOf(keys);
  slots.remove(keys);
  rows.release(freed);
  store.releaseSlots(freed);
}

/** A restart: synced and closed, opened again, the codes file loaded and read in. */
async function restart(dir: string, opened: Opened): Promise<Opened> {
  await opened.store.datasync();
  opened.close();
  const again = open(dir);
  again.store.load();
  await again.store.codesLoaded();
  return again;
}

test('a background fill skips the slots freed while it runs, before or while their rows are encoded: codes and count are the live items\', before and after a restart', async () => {
  const n = 5000;
  const data = randomMatrix(n, DIM, 7);
  const far: number[] = [];
  for (let r = 1000; r < n; r += 20) {
    far.push(r + 1); // ids are rows + 1
    for (let d = 0; d < DIM; d++) data[r * DIM + d]! *= 3;
  }
  const tmp = tempDir();
  let opened = open(tmp.dir);
  const { put, slots, store } = opened;
  const live = new Map<number, Float32Array>();
  const remove = (ids: number[]) => {
    removeKeys(opened, BigInt64Array.from(ids, BigInt));
    for (const id of ids) live.delete(id);
  };
  try {
    fill(put, data, DIM, 500);
    for (let i = 1; i <= n; i++) live.set(i, data.subarray((i - 1) * DIM, i * DIM));
    const training = store.training();
    assert.ok(training, 'a background training runs');
    // The fill reads each step's rows, then encodes them on the libuv pool. Right after the first step's read (slots
    // 0-1,023): its two far items are deleted and their rows reused by two new items (written and encoded at once),
    // while the read rows are still being encoded; and the far items of the later steps are deleted before theirs.
    const readRows = slots.readRows.bind(slots);
    let steps = 0;
    slots.readRows = (at: Int32Array) => {
      const read = readRows(at);
      if (steps++ === 0) {
        remove([1001, 1021]);
        const fresh = randomMatrix(2, DIM, 8);
        put(BigInt64Array.of(9001n, 9002n), fresh);
        assert.deepEqual([...slots.slotsOf(BigInt64Array.of(9001n, 9002n))], [1000, 1020], 'the freed rows reused');
        live.set(9001, fresh.subarray(0, DIM));
        live.set(9002, fresh.subarray(DIM));
        remove(far.filter((id) => id > 3000));
      }
      return read;
    };
    assert.equal(await training, true);
    assert.ok(steps >= 5, `${steps} fill steps`);
    const truth = flaggedTruth(tmp.dir, live);
    assert.ok(truth >= 50, `the far items left are flagged (${truth})`);
    assert.equal(store.clampedRows(), truth, 'the deleted items\' stale rows are not counted');
    const reference = storedPq(join(tmp.dir, 'vectors.pq'), DIM, 'ip');
    const file = readFileSync(join(tmp.dir, 'vectors.pq'));
    const m = DIM / 2;
    for (const [id, vector] of live) {
      const slot = slots.slotsOf(BigInt64Array.of(BigInt(id)))[0]!;
      assert.deepEqual(file.subarray(HEADER + slot * m, HEADER + (slot + 1) * m), Buffer.from(reference.encode(vector)), `item ${id}'s codes at slot ${slot}`);
    }
    reference.close();
    opened = await restart(tmp.dir, opened);
    assert.equal(opened.store.clampedRows(), truth, 'after a restart');
  } finally {
    opened.close();
    tmp.cleanup();
  }
});

test('a training covers every slot in the codes file: a free last slot does not make the next start refuse it', async () => {
  const tmp = tempDir();
  let opened = open(tmp.dir);
  const { put, slots, store } = opened;
  try {
    fill(put, randomMatrix(600, DIM, 1), DIM, 600); // the training starts in the background
    put(BigInt64Array.of(601n), randomMatrix(1, DIM, 2)); // held, at slot 600
    removeKeys(opened, BigInt64Array.of(601n)); // before the fill writes it
    assert.equal(await store.training(), true);
    assert.equal(slots.slots, 601);
    assert.equal(statSync(join(tmp.dir, 'vectors.pq')).size, HEADER + 601 * (DIM / 2), 'the header, then every slot');
    opened = await restart(tmp.dir, opened); // throws if the file is refused as short
    assert.equal(opened.store.trained, true);
  } finally {
    opened.close();
    tmp.cleanup();
  }
});

test('a fill that fails leaves the writes after it held, not encoded into a codes file that will get no header', async () => {
  const tmp = tempDir();
  const { put, slots, store, close } = open(tmp.dir);
  try {
    fill(put, randomMatrix(3000, DIM, 3), DIM, 500); // the training starts in the background; everything is held
    slots.readRows = () => {
      throw new Error('disk gone');
    };
    await assert.rejects(store.training()!, (err: Error & { code?: string }) => err.code === 'SIDX_ERR_VECTOR' && /training failed \(disk gone\)/.test(err.message));
    assert.equal(store.encodes, false, 'no longer encoding');
    assert.equal(store.trained, false);
    const size = statSync(join(tmp.dir, 'vectors.pq')).size;
    assert.equal(store.prepare(randomMatrix(10, DIM, 4)), null, 'nothing encoded ahead');
    put(BigInt64Array.from({ length: 10 }, (_, i) => BigInt(5000 + i)), randomMatrix(10, DIM, 4));
    assert.equal(statSync(join(tmp.dir, 'vectors.pq')).size, size, 'a write after it adds no codes');
    assert.equal(store.training(), null, 'and starts no training until the next start');
  } finally {
    close();
    tmp.cleanup();
  }
});
