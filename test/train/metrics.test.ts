import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { compareMetricsTable, formatMetricsTable, giniOfCounts, sidQualityMetrics } from '../../src/train/metrics.ts';
import { parseLetterSids, readLetterSids } from '../../src/train/letter-sids.ts';
import { SidxError } from '../../src/errors.ts';
import { sharedFile, skipWithoutShared, tempDir } from '../helpers/paths.ts';

const close = (actual: number, expected: number, what: string) =>
  assert.ok(Math.abs(actual - expected) < 1e-12, `${what}: ${actual} vs ${expected}`);

function invalidInput(field: string | RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof SidxError);
    assert.equal(err.code, 'SIDX_ERR_INVALID_INPUT');
    if (typeof field === 'string') assert.equal(err.field, field);
    else assert.match(err.message, field);
    return true;
  };
}

// 6 items, 2 levels, K = 3:
//   level 0: 0 0 0 1 1 2 -> counts 3,2,1 (all 3 codes used)
//   level 1: 0 0 1 1 1 1 -> counts 2,4,0 (2 of 3 used)
//   full SIDs (0,0)x2 (0,1)x1 (1,1)x2 (2,1)x1 -> 4 distinct, counts 2,1,2,1
const six = Int32Array.from([0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 2, 1]);

test('per-level utilisation, entropy and perplexity match a hand computation', () => {
  const m = sidQualityMetrics(six, 6, [3, 3]);
  assert.equal(m.perLevel.length, 2);
  const h0 = -(0.5 * Math.log(0.5) + (1 / 3) * Math.log(1 / 3) + (1 / 6) * Math.log(1 / 6));
  const h1 = (1 / 3) * Math.log(3) + (2 / 3) * Math.log(3 / 2);
  assert.equal(m.perLevel[0].used, 3);
  close(m.perLevel[0].utilisation, 1, 'utilisation 0');
  close(m.perLevel[0].entropy, h0, 'entropy 0 (nats)');
  close(m.perLevel[0].entropyBits, h0 / Math.LN2, 'entropy 0 (bits)');
  close(m.perLevel[0].perplexity, Math.exp(h0), 'perplexity 0');
  assert.equal(m.perLevel[1].used, 2);
  close(m.perLevel[1].utilisation, 2 / 3, 'utilisation 1');
  close(m.perLevel[1].entropy, h1, 'entropy 1');
  close(m.perLevel[1].perplexity, Math.exp(h1), 'perplexity 1'); // ≈ 1.8899
});

test('full-SID collisions, load and Gini match a hand computation', () => {
  const m = sidQualityMetrics(six, 6, [3, 3]);
  assert.equal(m.items, 6);
  assert.equal(m.distinctSids, 4);
  close(m.collisionRate, 2 / 6, 'collision rate');
  assert.equal(m.maxItemsPerSid, 2);
  close(m.meanItemsPerSid, 1.5, 'mean items per SID');
  // counts ascending 1,1,2,2; N = 4, Σx = 6: Σ(2i−5)x = −3·1 −1·1 +1·2 +3·2 = 4 -> G = 4 / (4·6)
  close(m.gini, 1 / 6, 'gini');
  assert.equal(m.reconstructionError, undefined);
});

test('giniOfCounts: standard formula on a hand case, order does not matter, FORGE form agrees', () => {
  // ascending 1,1,2,4: Σ(2i−5)x = −3 −1 +2 +12 = 10; N·Σx = 4·8 -> 0.3125
  close(giniOfCounts(Int32Array.from([4, 1, 2, 1])), 0.3125, 'gini');
  // FORGE: (N+1)/N − 2 Σ x·(N+1−i) / (N Σx) with i ascending
  const x = [1, 1, 2, 4];
  const forge = 5 / 4 - (2 * x.reduce((s, v, i) => s + v * (4 - i), 0)) / (4 * 8);
  close(giniOfCounts(Int32Array.from(x)), forge, 'FORGE form');
  close(giniOfCounts(Int32Array.from([7])), 0, 'one SID');
  close(giniOfCounts(Int32Array.from([3, 3, 3])), 0, 'even');
  close(giniOfCounts(Int32Array.from([0, 0, 0, 9])), 0.75, 'one of four holds all: (N−1)/N');
  assert.equal(giniOfCounts(new Int32Array(0)), 0);
});

test('edge cases: every item in one SID, every item distinct', () => {
  const one = sidQualityMetrics(new Int32Array(5 * 3).fill(2), 5, [4, 4, 4]);
  assert.equal(one.distinctSids, 1);
  close(one.collisionRate, 4 / 5, 'collision (n−1)/n');
  assert.equal(one.maxItemsPerSid, 5);
  close(one.meanItemsPerSid, 5, 'mean');
  assert.equal(one.gini, 0);
  assert.equal(one.perLevel[0].used, 1);
  assert.equal(one.perLevel[0].entropy, 0);
  assert.equal(one.perLevel[0].perplexity, 1);

  const distinct = sidQualityMetrics(Int32Array.from([0, 0, 0, 1, 1, 0, 1, 1]), 4, [2, 2]);
  assert.equal(distinct.distinctSids, 4);
  assert.equal(distinct.collisionRate, 0);
  assert.equal(distinct.maxItemsPerSid, 1);
  assert.equal(distinct.gini, 0);
  close(distinct.perLevel[1].entropyBits, 1, 'uniform over 2 codes = 1 bit');
  close(distinct.perLevel[1].perplexity, 2, 'perplexity of 2 equally used codes');
});

test('SIDs beyond 2^53 combinations (8 levels × 65536) are counted exactly', () => {
  const n = 1000;
  const codes = new Int32Array(n * 8);
  for (let i = 0; i < n; i++) for (let l = 0; l < 8; l++) codes[i * 8 + l] = (i % 500) * 131 + l; // 500 distinct rows
  const m = sidQualityMetrics(codes, n, new Array(8).fill(65536));
  assert.equal(m.distinctSids, 500);
  assert.equal(m.maxItemsPerSid, 2);
});

test('relative reconstruction error matches a hand computation', () => {
  // x = [[1,0],[0,2]], x̂ = [[1,1],[0,1]]: Σ‖x−x̂‖² = 1 + 1 = 2, Σ‖x‖² = 1 + 4 = 5
  const m = sidQualityMetrics(Int32Array.from([0, 1]), 2, [2], {
    inputs: Float32Array.from([1, 0, 0, 2]),
    reconstructions: Float32Array.from([1, 1, 0, 1]),
  });
  close(m.reconstructionError!, 0.4, 'relative MSE');
  const withDim = sidQualityMetrics(Int32Array.from([0, 1]), 2, [2], {
    inputs: Float32Array.from([1, 0, 0, 2]),
    reconstructions: Float32Array.from([1, 0, 0, 2]),
    dim: 2,
  });
  assert.equal(withDim.reconstructionError, 0);
});

test('rejects bad input with the offending field', () => {
  assert.throws(() => sidQualityMetrics(six, 5, [3, 3]), invalidInput('codes'));
  assert.throws(() => sidQualityMetrics(six, 0, [3, 3]), invalidInput('n'));
  assert.throws(() => sidQualityMetrics(six, 6, [2, 3]), invalidInput('codes[10]'));
  assert.throws(() => sidQualityMetrics(six, 6, [3, 0]), invalidInput('codebookSizes[1]'));
  assert.throws(() => sidQualityMetrics(six, 6, [3, 3], { inputs: new Float32Array(12) }), invalidInput('reconstructions'));
  assert.throws(
    () => sidQualityMetrics(six, 6, [3, 3], { inputs: new Float32Array(13), reconstructions: new Float32Array(13) }),
    invalidInput('inputs'),
  );
  assert.throws(
    () => sidQualityMetrics(six, 6, [3, 3], { inputs: new Float32Array(12), reconstructions: new Float32Array(12) }),
    invalidInput(/all zero/),
  );
});

test('tables: one column per result, "—" where a result has no such row', () => {
  const a = sidQualityMetrics(six, 6, [3, 3]);
  const b = sidQualityMetrics(Int32Array.from([0, 0, 1, 1, 0, 2]), 2, [2, 2, 3]);
  const single = formatMetricsTable(a, 'ours');
  assert.match(single, /^\| metric +\| +ours \|\n\|-+\|-+:\|/);
  assert.match(single, /\| collision rate +\| +33\.33% \|/);
  assert.match(single, /\| Gini \(items \/ occupied SID\) +\| +0\.1667 \|/);
  assert.doesNotMatch(single, /reconstruction/);
  const both = compareMetricsTable([{ label: 'A', metrics: a }, { label: 'B', metrics: b }]);
  assert.match(both, /\| L3 used \/ K +\| +— \| +2 \/ 3 \(66\.67%\) \|/);
  const widths = new Set(both.split('\n').map((line) => line.length));
  assert.equal(widths.size, 1, 'columns are padded to equal width');
});

test('parseLetterSids: codes and ids; a malformed token names its item', () => {
  const parsed = parseLetterSids('{"10": ["<a_1>", "<b_255>"], "7": ["<a_0>", "<b_3>"]}', 'x.json');
  assert.deepEqual(parsed.itemIds, ['7', '10']); // JS orders integer-like keys numerically
  assert.deepEqual([...parsed.codes], [0, 3, 1, 255]);
  assert.deepEqual(parsed.codebookSizes, [2, 256]);
  const bad = (text: string, field: string, pattern: RegExp) =>
    assert.throws(() => parseLetterSids(text, 'x.json'), (err: unknown) => {
      assert.ok(err instanceof SidxError && err.code === 'SIDX_ERR_INVALID_INPUT');
      assert.equal(err.field, field);
      assert.match(err.message, pattern);
      return true;
    });
  bad('{"1": ["<a_1>", "<b_2>"], "2": ["<a_1>", "<c_2>"]}', 'x.json#2[1]', /item "2" token 1 is "<c_2>"/);
  bad('{"1": ["<a_1>", "<b_2>"], "2": ["<a_1>", "b_2"]}', 'x.json#2[1]', /item "2"/);
  bad('{"1": ["<a_1>", "<b_2>"], "2": ["<a_01>", "<b_2>"]}', 'x.json#2[0]', /item "2"/);
  bad('{"1": ["<a_1>", "<b_2>"], "2": ["<a_1>"]}', 'x.json#2', /item "2" must list 2 tokens/);
  bad('{"1": ["<a_1>"', 'x.json', /not valid JSON/);
  assert.throws(
    () => parseLetterSids('{"1": ["<a_1>", "<b_300>"]}', 'x.json', { codebookSizes: [256, 256] }),
    invalidInput('x.json#1[1]'),
  );
});

test('readLetterSids reads a file', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const path = join(dir, 'sids.json');
    writeFileSync(path, JSON.stringify({ a: ['<a_5>', '<b_6>', '<c_7>'] }));
    const s = await readLetterSids(path, { codebookSizes: [8, 8, 8] });
    assert.equal(s.n, 1);
    assert.equal(s.levels, 3);
    assert.deepEqual([...s.codes], [5, 6, 7]);
  } finally {
    cleanup();
  }
});

test(
  'LETTER instruments SIDs: 9,922 items × 4 levels, metrics printed',
  { skip: skipWithoutShared('instruments', 'letter_sids.json') },
  async () => {
    const letter = await readLetterSids(sharedFile('instruments', 'letter_sids.json'), { codebookSizes: [256, 256, 256, 256] });
    assert.equal(letter.n, 9922);
    assert.equal(letter.levels, 4);
    const m = sidQualityMetrics(letter.codes, letter.n, letter.codebookSizes);
    assert.ok(m.distinctSids > 9800 && m.distinctSids <= 9922);
    assert.ok(m.gini >= 0 && m.gini < 0.1);
    console.log(`\n${formatMetricsTable(m, 'LETTER (instruments)')}\n`);
  },
);
