import { test } from 'node:test';
import assert from 'node:assert/strict';
import { EXPANSION_STEPS, smallestExpansion } from '../../src/bench/peers.ts';

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
