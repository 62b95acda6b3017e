import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EXPANSION_STEPS, post, smallestExpansion, startPeer } from '../../src/bench/peers.ts';
import { seededUniform } from '../../src/random.ts';
import { tempDir } from '../helpers/paths.ts';

/** A recall that rises with ef and first reaches `target` at `edge`. */
const rising = (edge: number) => async (ef: number) => (ef >= edge ? 0.95 + ef / 1e5 : 0.5 + ef / 1e4);

test('smallestExpansion walks the coarse steps, then bisects to the smallest ef that reaches the target', async () => {
  for (const edge of [43, 41, 48, 10, 11, 700]) {
    const tuning = await smallestExpansion(10, 0.95, rising(edge));
    assert.equal(tuning.reached, true);
    assert.equal(tuning.expansionSearch, edge, `edge ${edge}`);
    assert.ok(tuning.recall >= 0.95);
    assert.ok(tuning.tried.some((t) => t.expansionSearch === edge));
    // Only a logarithmic number of points beyond the coarse steps.
    const coarse = EXPANSION_STEPS.filter((s) => s >= 10 && s <= edge).length + 1;
    assert.ok(tuning.tried.length <= coarse + Math.ceil(Math.log2(edge)), `${tuning.tried.length} points for edge ${edge}`);
  }
});

test('smallestExpansion keeps the largest step when no step reaches the target, and starts at k', async () => {
  const never = await smallestExpansion(10, 0.99, async () => 0.5);
  assert.equal(never.reached, false);
  assert.equal(never.expansionSearch, EXPANSION_STEPS.at(-1));
  const fromK = await smallestExpansion(20, 0.9, async () => 0.95);
  assert.deepEqual(fromK.tried.map((t) => t.expansionSearch), [20]);
});

test('two HNSW peers given the same batches build the same graph: the same neighbours at a low ef', async () => {
  const dim = 24;
  const tmp = tempDir();
  const peers = await Promise.all([0, 1].map(() => startPeer('hnsw', { dim, metric: 'ip', connectivity: 8, addThreads: 1, bodyLimitBytes: 1 << 26, workDir: tmp.dir })));
  try {
    const uniform = seededUniform(11);
    const row = () => Array.from({ length: dim }, () => uniform() - 0.5);
    const batches = Array.from({ length: 4 }, (_, b) => JSON.stringify({ items: Array.from({ length: 1500 }, (_, i) => ({ id: `i${b * 1500 + i}`, embedding: row() })) }));
    const queries = Array.from({ length: 60 }, () => JSON.stringify({ embedding: row(), k: 10 }));
    const answers: string[][] = [];
    for (const peer of peers) {
      for (const body of batches) await post(peer.url, '/v1/items', body);
      await post(peer.url, '/admin/expansion', JSON.stringify({ expansionSearch: 10 }));
      const ids: string[] = [];
      for (const q of queries) ids.push(((await post(peer.url, '/v1/retrieve', q)) as { items: { id: string }[] }).items.map((it) => it.id).join(','));
      answers.push(ids);
    }
    assert.equal(answers[0]!.length, queries.length);
    assert.ok(answers[0]!.every((ids) => ids.split(',').length === 10));
    assert.deepEqual(answers[1], answers[0]);
  } finally {
    await Promise.all(peers.map((p) => p.stop()));
    tmp.cleanup();
  }
});
