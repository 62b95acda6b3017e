/**
 * The compressed stores' rerank off the event loop and in one native call (src/vector/code-store.ts rankSubsetAsync,
 * rankSubset; native/src/codes_rerank.cc), for sq8 and pq alike: the scores of scoreSubset, the first k of
 * score-rank.ts's order, a write racing a call in flight, keys outside the slot file's dense map, before training.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { selectTop } from '../../src/service/score-rank.ts';
import type { CodeStore } from '../../src/vector/code-store.ts';
import { PqStore } from '../../src/vector/pq-store.ts';
import { Sq8Store } from '../../src/vector/sq8-store.ts';
import type { Metric } from '../../src/vector/vector-index.ts';
import { fill, openCodeStore, type OpenCodes } from '../helpers/code-stores.ts';
import { tempDir } from '../helpers/paths.ts';
import { metricScore, randomMatrix } from '../helpers/random.ts';

const STORES: Array<[string, OpenCodes<CodeStore>]> = [
  ['sq8', (base, slots, metric, opts) => Sq8Store.open(base, slots, metric, opts)],
  ['pq', (base, slots, metric, opts) => PqStore.open(base, slots, metric, { ...opts, pqM: 0 })],
];

for (const [name, open] of STORES) {
  const openStore = (dir: string, dim: number, metric: Metric, rescore: number, trainSize: number) => openCodeStore(open, dir, dim, metric, rescore, trainSize);
  /** Runs `body` on a store opened in a temporary directory, then closes and removes it. */
  const withStore = async (dim: number, metric: Metric, rescore: number, trainSize: number, body: (opened: ReturnType<typeof openStore>) => Promise<void>) => {
    const tmp = tempDir();
    const opened = openStore(tmp.dir, dim, metric, rescore, trainSize);
    try {
      await body(opened);
    } finally {
      opened.close();
      tmp.cleanup();
    }
  };

  test(`${name}: scoreSubsetAsync: the scores of scoreSubset, off the event loop, for both metrics, before and after training`, async () => {
    const dim = 32;
    for (const metric of ['ip', 'l2'] as const) {
      for (const trainSize of [300, 10_000]) {
        const tmp = tempDir();
        const { put, store, close } = openStore(tmp.dir, dim, metric, 5, trainSize);
        try {
          const ids = fill(put, randomMatrix(600, dim, 21), dim);
          await store.training();
          assert.equal(store.trained, trainSize === 300);
          const asked = BigInt64Array.from([...ids, 99_999n]);
          for (const top of [0, 12]) {
            const query = randomMatrix(1, dim, 22 + top);
            const got = await store.scoreSubsetAsync(query, asked, top);
            assert.deepEqual(got, store.scoreSubset(query, asked, top), `${metric}, train ${trainSize}, exactTop ${top}`);
            assert.ok(Number.isNaN(got[600]!), 'an unknown key scores NaN');
          }
          await assert.rejects(store.scoreSubsetAsync(new Float32Array(dim - 1), ids), { code: 'SIDX_ERR_DIMENSION' });
        } finally {
          close();
          tmp.cleanup();
        }
      }
    }
  });

  test(`${name}: rankSubsetAsync and rankSubset: the scores of scoreSubset and, from the pool thread or the calling one, the first k of score-rank.ts's order, ties included`, async () => {
    const dim = 24;
    for (const metric of ['ip', 'l2'] as const) {
      await withStore(dim, metric, 5, 300, async ({ put, store }) => {
        const data = randomMatrix(400, dim, 51);
        const query = randomMatrix(1, dim, 52);
        // Eight copies of the row nearest the query: equal code and exact scores across the rescore boundary (5).
        const signedScore = (r: number) => (metric === 'ip' ? 1 : -1) * metricScore(metric, query, data.subarray(r * dim, (r + 1) * dim));
        let best = 0;
        for (let r = 1; r < 400; r++) if (signedScore(r) > signedScore(best)) best = r;
        for (const r of [7, 40, 41, 90, 200, 201, 333, 399]) data.copyWithin(r * dim, best * dim, (best + 1) * dim);
        const ids = fill(put, data, dim);
        await store.training();
        assert.ok(store.trained);
        const signed = (scores: Float32Array) => scores.map((x) => (metric === 'ip' ? x : -x));
        const asked = BigInt64Array.from([99_999n, ...ids, 88_888n]); // unknown keys score NaN and rank nowhere
        for (const k of [0, 3, 10, 12]) {
          const { scores, top } = await store.rankSubsetAsync(query, asked, k, k);
          assert.deepEqual(scores, store.scoreSubset(query, asked, k), `${metric}, k ${k}: the scores`);
          assert.ok(top, `${metric}, k ${k}: ranked on the pool thread`);
          assert.deepEqual(top, selectTop(signed(scores), k), `${metric}, k ${k}: the order`);
          assert.deepEqual(store.rankSubset(query, asked, k, k), { scores, top }, `${metric}, k ${k}: the same on the calling thread`);
        }
        // Fewer finite scores than k: all of them, best first.
        const few = BigInt64Array.from([ids[best === 3 ? 4 : 3]!, 99_999n, ids[7]!, ids[40]!]);
        const { scores, top } = await store.rankSubsetAsync(query, few, 10, 10);
        assert.deepEqual(top, selectTop(signed(scores), 10));
        assert.equal(top!.length, 3);
        assert.deepEqual([...top!].slice(0, 2), [2, 3], 'tied copies in position order');
        assert.deepEqual(store.rankSubset(query, few, 10, 10), { scores, top });
      });
    }
  });

  test(`${name}: rankSubset before training: the exact scores of scoreSubset, unranked`, async () => {
    const dim = 16;
    await withStore(dim, 'ip', 5, 300, async ({ put, store }) => {
      const ids = fill(put, randomMatrix(100, dim, 61), dim);
      assert.ok(!store.trained);
      const query = randomMatrix(1, dim, 62);
      assert.deepEqual(store.rankSubset(query, ids, 10, 10), { scores: store.scoreSubset(query, ids, 10) });
    });
  });

  test(`${name}: rankSubsetAsync in flight: with a key rewritten or deleted meanwhile the call is scored again, as scoreSubset scores it then (no top)`, async () => {
    const dim = 32;
    await withStore(dim, 'ip', 5, 300, async ({ put, store, slots }) => {
      const data = randomMatrix(602, dim, 31);
      const ids = fill(put, data.subarray(0, 600 * dim), dim);
      await store.training();
      assert.ok(store.trained);
      const query = randomMatrix(1, dim, 32);
      const asked = ids.slice();
      const pending = store.rankSubsetAsync(query, asked, 10, 10);
      put(BigInt64Array.of(1n), data.subarray(600 * dim, 601 * dim)); // a new row for key 1 (copy-on-write)
      const freed = slots.slotsOf(BigInt64Array.of(2n));
      slots.remove(BigInt64Array.of(2n));
      store.releaseSlots(freed);
      asked.fill(0n); // the caller's array is reused at once
      const { scores, top } = await pending;
      assert.equal(top, undefined);
      assert.deepEqual(scores, store.scoreSubset(query, ids, 10), 'the scores of the catalog as it is when the call resolves');
      assert.ok(Number.isNaN(scores[1]!), 'key 2: deleted');
      // Without a write meanwhile the pool thread's answer stands, top included.
      const again = await store.rankSubsetAsync(query, ids, 10, 10);
      assert.ok(again.top);
      assert.deepEqual(again.scores, store.scoreSubset(query, ids, 10));
    });
  });

  test(`${name}: rankSubsetAsync, rankSubset: keys the slot file maps outside its dense range are scored as scoreSubset scores them`, async () => {
    const dim = 16;
    await withStore(dim, 'l2', 5, 300, async ({ put, store }) => {
      const data = randomMatrix(402, dim, 81);
      const ids = fill(put, data.subarray(0, 400 * dim), dim);
      await store.training();
      const far = BigInt64Array.of(2n ** 40n, 2n ** 28n + 3n);
      put(far, data.subarray(400 * dim));
      const query = randomMatrix(1, dim, 82);
      const asked = BigInt64Array.from([...ids.subarray(0, 50), ...far]);
      const { scores, top } = await store.rankSubsetAsync(query, asked, 10, 10);
      assert.equal(top, undefined);
      assert.deepEqual(scores, store.scoreSubset(query, asked, 10));
      assert.ok(Number.isFinite(scores[50]!) && Number.isFinite(scores[51]!), 'the far keys are scored');
      assert.deepEqual(store.rankSubset(query, asked, 10, 10), { scores });
      const near = asked.subarray(0, 50);
      assert.ok(store.rankSubset(query, near, 10, 10).top, 'without them it ranks natively');
    });
  });
}
