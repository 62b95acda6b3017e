/**
 * The codes' layout (native/src/slot_codes.h PlanLayout / LayoutStep, vector/code-store.ts planLayout): moving the
 * rows of the codes in memory into a given order of slots changes no score, before, during or after, on the JS thread
 * and on pool threads that a step overlaps; puts after a layout land where the slot's row is now; the plan skips
 * slots given twice and slots out of range; a layout on a store scores its keys as before.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { seededUniform } from '../../src/random.ts';
import { loadFaissBinding, type NativeCodes } from '../../src/vector/binding.ts';
import { Sq8Store } from '../../src/vector/sq8-store.ts';
import { seededPermutation } from '../../src/train/rqvae-model.ts';
import { PqStore } from '../../src/vector/pq-store.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { fill, openCodeStore } from '../helpers/code-stores.ts';

const DIM = 32;
/** Two blocks of 64 Ki slots and a part of a third: swaps cross blocks. */
const N = 140_000;

function sq8Holder(): NativeCodes {
  return new (loadFaissBinding().Sq8Codes)(DIM, 'ip', new Float32Array(DIM).fill(-1), new Float32Array(DIM).fill(2 / 255));
}

function randomSlots(count: number, below: number, seed: number): Int32Array {
  const random = seededUniform(seed);
  return Int32Array.from({ length: count }, () => Math.floor(random() * below));
}

test('Sq8Codes: a layout moves rows, not scores: the same scores before, between steps and after, and puts land on the moved rows', async () => {
  const codes = sq8Holder();
  try {
    const all = Int32Array.from({ length: N }, (_, i) => i);
    codes.put(all, codes.encode(randomMatrix(N, DIM, 1)));
    const query = randomMatrix(1, DIM, 2);
    const asked = randomSlots(3000, N, 3);
    const before = codes.score(query, asked);
    const bytes = codes.bytes;
    // Every slot once, in a shuffled order, with a duplicate, a negative slot and one past the codes among them.
    const order = seededPermutation(N, 4);
    const plan = Int32Array.from([...order.subarray(0, 10), order[3]!, -5, N + 70_000, ...order.subarray(10)]);
    codes.planLayout(plan);
    assert.ok(codes.bytes > bytes, 'the layout tables count in bytes');
    let left = plan.length;
    let steps = 0;
    while (left > 0) {
      const next = codes.layoutStep(9_999);
      assert.ok(next < left);
      left = next;
      if (++steps % 4 === 0) assert.deepEqual(codes.score(query, asked), before, `scores between steps (${left} left)`);
    }
    assert.deepEqual(codes.score(query, asked), before);
    assert.equal(codes.layoutStep(100), 0, 'no plan left');

    // A put after the layout: an existing slot rewritten, and slots in a block never written before.
    const fresh = randomMatrix(3, DIM, 5);
    const putSlots = Int32Array.of(order[17]!, 200_000, 200_001);
    codes.put(putSlots, codes.encode(fresh));
    const reference = sq8Holder();
    try {
      reference.put(all, reference.encode(randomMatrix(N, DIM, 1)));
      reference.put(putSlots, reference.encode(fresh));
      const probe = Int32Array.from([...asked, ...putSlots, order[18]!, 300_000]);
      assert.deepEqual(codes.score(query, probe), reference.score(query, probe));
    } finally {
      reference.close();
    }
    // A second layout over the moved rows, then back to identity order: still the same scores.
    codes.planLayout(all);
    while (codes.layoutStep(50_000) > 0);
    assert.deepEqual(codes.score(query, asked), before.map((s, i) => (asked[i] === order[17] ? codes.score(query, Int32Array.of(order[17]!))[0]! : s)));
    await assert.rejects(codes.readFromAsync(1, 4096, 1), { code: 'SIDX_ERR_VECTOR' }, 'a laid-out holder is not read from a file');
  } finally {
    codes.close();
  }
});

test('Sq8Codes: pool-thread scores that layout steps overlap equal the scores without a layout', async () => {
  // Rows large and score calls long enough (about 20,000 rows of 256 bytes each) that the steps run while they do.
  const dim = 256;
  const n = 70_000;
  const codes = new (loadFaissBinding().Sq8Codes)(dim, 'ip', new Float32Array(dim).fill(-1), new Float32Array(dim).fill(2 / 255));
  const tmp = tempDir();
  try {
    const all = Int32Array.from({ length: n }, (_, i) => i);
    const vectors = randomMatrix(n, dim, 6);
    codes.put(all, codes.encode(vectors));
    const file = join(tmp.dir, 'rows.f32');
    writeFileSync(file, vectors);
    const map = new (loadFaissBinding().SlotMap)(file, dim, 'ip');
    try {
      const query = randomMatrix(1, dim, 7);
      const sets = Array.from({ length: 8 }, (_, i) => randomSlots(20_000, n, 10 + i));
      const plain = sets.map((slots) => codes.score(query, slots));
      const ranked = await Promise.all(sets.map((slots) => codes.scoreAsync!(query, slots, map, 20, 10)));
      let layouts = 0;
      for (let round = 0; round < 4; round++) {
        // Start every score on the pool, then step layouts on this thread (a new one whenever one ends) until they all
        // settled, so that each of them runs while rows move.
        const scoring = Promise.all(sets.map((slots) => codes.scoreAsync!(query, slots)));
        const ranking = Promise.all(sets.map((slots) => codes.scoreAsync!(query, slots, map, 20, 10)));
        let settled = false;
        void Promise.allSettled([scoring, ranking]).then(() => { settled = true; });
        while (!settled) {
          if (codes.layoutStep(256) === 0) codes.planLayout(seededPermutation(n, 100 + layouts++));
          await new Promise(setImmediate);
        }
        assert.deepEqual(await scoring, plain, `round ${round}: code scores`);
        assert.deepEqual(await ranking, ranked, `round ${round}: ranked with the exact re-score`);
      }
    } finally {
      map.close();
    }
  } finally {
    codes.close();
    tmp.cleanup();
  }
});

for (const [name, open] of [['sq8', Sq8Store.open], ['pq', PqStore.open]] as const) {
  test(`${name} store: a layout in a key order keeps every score and ranking; not ready before training`, async () => {
    const tmp = tempDir();
    const { store, put, close } = openCodeStore(open as typeof Sq8Store.open, tmp.dir, DIM, 'ip', 8, 1000);
    try {
      assert.equal(store.layout.ready(), false, 'nothing to lay out before training');
      const ids = fill(put, randomMatrix(3000, DIM, 8), DIM);
      await store.training();
      assert.ok(store.trained);
      const query = randomMatrix(1, DIM, 9);
      const asked = ids.filter((_id, i) => i % 3 === 0);
      const before = store.scoreSubset(query, asked, 0);
      const reversed = ids.slice().reverse();
      assert.equal(store.layout.ready(), true);
      const order = BigInt64Array.from([...reversed, 99_999n]);
      const slots = new Int32Array(order.length);
      store.layout.slotsOf(order, slots);
      assert.equal(slots.at(-1), -1, 'a key not stored has no slot, and the plan skips it');
      store.layout.plan(slots);
      while (store.layout.step(700) > 0);
      assert.deepEqual(store.scoreSubset(query, asked, 0), before);
      put(BigInt64Array.of(5n, 4000n), randomMatrix(2, DIM, 10)); // a re-upsert and a new key, after the layout
      const after = store.scoreSubset(query, BigInt64Array.of(5n, 4000n), 0);
      assert.ok(after.every(Number.isFinite));
      assert.notEqual(after[0], before[asked.indexOf(5n)] ?? NaN);
    } finally {
      close();
      tmp.cleanup();
    }
  });
}
