import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { join } from 'node:path';

import { SidxError } from '../../src/errors.ts';
import { sidQualityMetrics } from '../../src/train/metrics.ts';
import { exportRqKmeansBundle, fileSha256, readRqKmeansModel } from '../../src/train/export.ts';
import {
  l2NormalizeRows, reconstructFromCodes, sampleRowIndices, trainRqKmeans, type RqKmeansOptions, type RqKmeansProgress,
} from '../../src/train/rqkmeans.ts';
import { loadBundle } from '../../src/tokenizer/bundle.ts';
import { EncoderPool } from '../../src/tokenizer/encoder-pool.ts';
import { readNpy } from '../../src/io/npy.ts';
import { sharedFile, skipWithoutShared, tempDir } from '../helpers/paths.ts';
import { gaussian, randomMatrix, rng } from '../helpers/random.ts';

const DIM = 16;
const tmp = tempDir('sidx-rqkmeans-');
after(() => tmp.cleanup());

const training = { source: 'test', command: 'test', seed: 0, dataDigest: '0'.repeat(64) };

/** 90% of the rows in one tight blob, the rest spread out: plain k-means leaves a few huge clusters. */
function skewedData(n: number, seed: number): Float32Array {
  const g = gaussian(rng(seed));
  const out = new Float32Array(n * DIM);
  for (let i = 0; i < n; i++) {
    const dense = i % 10 !== 0;
    for (let j = 0; j < DIM; j++) out[i * DIM + j] = dense ? 0.05 * g() : 3 * g();
  }
  return out;
}

async function encodeWithBundle(dir: string, data: Float32Array, n: number): Promise<Int32Array> {
  const pool = await EncoderPool.create(await loadBundle(dir), { workers: 1, provider: 'cpu' });
  try {
    return (await pool.encode(data, n)).codes;
  } finally {
    await pool.close();
  }
}

function levelPerplexity(codes: Int32Array, n: number, sizes: number[], level: number): number {
  return sidQualityMetrics(codes, n, sizes).perLevel[level]!.perplexity;
}

test('same seed gives identical codebooks and codes; another seed gives others', async () => {
  const data = randomMatrix(300, DIM, 1);
  const options: RqKmeansOptions = { codebookSizes: [16, 8], seed: 5, iterations: 10 };
  const first = await trainRqKmeans(data, DIM, options);
  const second = await trainRqKmeans(data, DIM, options);
  assert.deepEqual(first.codebooks, second.codebooks);
  assert.deepEqual(first.codes, second.codes);
  const other = await trainRqKmeans(data, DIM, { ...options, seed: 6 });
  assert.notDeepEqual(other.codebooks[0], first.codebooks[0]);
  assert.equal(first.codes.length, 300 * 2);
  assert.equal(first.codebooks[0]!.length, 16 * DIM);
  assert.equal(first.codebooks[1]!.length, 8 * DIM);
  assert.deepEqual(first.levels.map((l) => l.kmeansObjective.length), [10, 10]);
});

test('balanced training is deterministic too', async () => {
  const data = skewedData(400, 2);
  const options: RqKmeansOptions = { codebookSizes: [16, 16], seed: 3, balanced: true, balancedRounds: 3 };
  const first = await trainRqKmeans(data, DIM, options);
  const second = await trainRqKmeans(data, DIM, options);
  assert.deepEqual(first.codebooks, second.codebooks);
  assert.deepEqual(first.levels.map((l) => l.balancedObjective.length), [3, 3]);
});

test('codes are argmin at every level, and reconstructions are the sum of the chosen codewords', async () => {
  const data = randomMatrix(200, DIM, 3);
  const result = await trainRqKmeans(data, DIM, { codebookSizes: [8, 8, 4], normalize: 'l2', seed: 1 });
  assert.deepEqual(result.inputs, l2NormalizeRows(data, DIM));
  const rebuilt = reconstructFromCodes(result, result.codes, result.n);
  for (let i = 0; i < rebuilt.length; i++) assert.ok(Math.abs(rebuilt[i]! - result.reconstructions[i]!) < 1e-5);
  // Level 1 code of row 0 is the nearest level-1 codeword of the normalised row.
  const x = result.inputs.subarray(0, DIM);
  let best = -1;
  let bestDistance = Infinity;
  for (let c = 0; c < 8; c++) {
    let d = 0;
    for (let j = 0; j < DIM; j++) d += (x[j]! - result.codebooks[0]![c * DIM + j]!) ** 2;
    if (d < bestDistance) [best, bestDistance] = [c, d];
  }
  assert.equal(result.codes[0], best);
});

for (const variant of [
  { name: 'plain, no normalisation', options: { normalize: 'none' as const } },
  { name: 'plain, l2', options: { normalize: 'l2' as const } },
  { name: 'balanced, l2', options: { normalize: 'l2' as const, balanced: true, balancedRounds: 3 } },
]) {
  test(`the exported encoder reproduces the trainer's codes on the training set (${variant.name})`, async () => {
    const n = 500;
    const data = skewedData(n, 4);
    const result = await trainRqKmeans(data, DIM, { codebookSizes: [32, 16, 16], seed: 2, ...variant.options });
    const dir = join(tmp.dir, `agree-${variant.name.replace(/\W+/g, '-')}`);
    const bundle = await exportRqKmeansBundle({ dir, id: 'agree', model: result, training });
    assert.equal(bundle.manifest.topM, 8);
    assert.deepEqual(await encodeWithBundle(dir, data, n), result.codes);
    const back = await readRqKmeansModel(bundle);
    assert.deepEqual(back.codebooks, result.codebooks);
    assert.equal(back.normalize, variant.options.normalize);
  });
}

test('the exported encoder reproduces the trainer on the scientific text embeddings (3 x 256)',
  { skip: skipWithoutShared('scientific', 'text_emb.npy') }, async () => {
    const { data, shape } = await readNpy(sharedFile('scientific', 'text_emb.npy'));
    const n = shape[0]!;
    const dim = shape[1]!;
    const result = await trainRqKmeans(data, dim, { codebookSizes: [256, 256, 256], normalize: 'l2', seed: 0 });
    const dir = join(tmp.dir, 'scientific');
    await exportRqKmeansBundle({ dir, id: 'scientific', model: result, training });
    assert.deepEqual(await encodeWithBundle(dir, data, n), result.codes);
    assert.deepEqual(result.levels.map((l) => l.emptyClusters), [0, 0, 0]);
  });

test('balanced training spreads skewed data over the codes more evenly than plain k-means', async () => {
  const n = 1000;
  const data = skewedData(n, 5);
  const sizes = [16, 16];
  const plain = await trainRqKmeans(data, DIM, { codebookSizes: sizes, seed: 0 });
  const balanced = await trainRqKmeans(data, DIM, { codebookSizes: sizes, seed: 0, balanced: true });
  for (const level of [0, 1]) {
    const p = levelPerplexity(plain.codes, n, sizes, level);
    const b = levelPerplexity(balanced.codes, n, sizes, level);
    assert.ok(b > p * 1.2, `level ${level + 1}: balanced perplexity ${b.toFixed(2)} vs plain ${p.toFixed(2)}`);
  }
  const plainMetrics = sidQualityMetrics(plain.codes, n, sizes);
  const balancedMetrics = sidQualityMetrics(balanced.codes, n, sizes);
  assert.ok(balancedMetrics.maxItemsPerSid < plainMetrics.maxItemsPerSid);
});

test('FAISS re-seeds empty clusters: duplicate rows force empty clusters at init, none remain', async () => {
  // 100 distinct points, each 6 times. FAISS starts from k = 40 rows picked at random; about C(40,2) * 5/599 = 6.5
  // pairs of them are the same point (P(none) ~ e^-6.5), and two equal centroids leave one cluster empty after the
  // first assignment. FAISS splits a large cluster into each empty one, so the final assignment uses every codeword.
  // (A cluster made of copies of one point cannot be split; on such data an empty cluster can remain, and
  // `emptyClusters` reports it.)
  const distinct = randomMatrix(100, DIM, 7);
  const data = new Float32Array(600 * DIM);
  for (let i = 0; i < 600; i++) data.set(distinct.subarray((i % 100) * DIM, (i % 100 + 1) * DIM), i * DIM);
  for (const seed of [0, 1, 2]) {
    const result = await trainRqKmeans(data, DIM, { codebookSizes: [40], seed });
    assert.equal(result.levels[0]!.emptyClusters, 0, `seed ${seed}`);
  }
});

test('--sample fits on a seeded subset, every row is still encoded', async () => {
  const data = randomMatrix(400, DIM, 8);
  const result = await trainRqKmeans(data, DIM, { codebookSizes: [8, 8], sample: 100, seed: 4 });
  assert.equal(result.sampleRows, 100);
  assert.equal(result.codes.length, 800);
  const rows = sampleRowIndices(400, 100, 4);
  assert.equal(new Set(rows).size, 100);
  assert.deepEqual(rows, sampleRowIndices(400, 100, 4));
  assert.notDeepEqual(rows, sampleRowIndices(400, 100, 5));
  assert.ok(rows.every((r, i) => i === 0 || r > rows[i - 1]!));
});

test('progress reports every level, its k-means iterations and balanced rounds', async () => {
  const events: RqKmeansProgress[] = [];
  await trainRqKmeans(randomMatrix(200, DIM, 9), DIM, {
    codebookSizes: [8, 4], iterations: 5, balanced: true, balancedRounds: 2, onProgress: (e) => events.push(e),
  });
  const count = (kind: RqKmeansProgress['kind']) => events.filter((e) => e.kind === kind).length;
  assert.equal(count('level-start'), 2);
  assert.equal(count('kmeans'), 10);
  assert.equal(count('balanced'), 4);
  assert.equal(count('level-done'), 2);
  assert.ok(events.every((e) => !('objective' in e) || Number.isFinite(e.objective)));
});

test('bad options are rejected with SIDX_ERR_INVALID_INPUT naming the field', async () => {
  const data = randomMatrix(20, DIM, 10);
  const rejects = (options: Partial<RqKmeansOptions>, field: string) =>
    assert.rejects(trainRqKmeans(data, DIM, { codebookSizes: [4], ...options }),
      (err: unknown) => err instanceof SidxError && err.code === 'SIDX_ERR_INVALID_INPUT' && err.field === field);
  await rejects({ codebookSizes: [32] }, 'codebookSizes[0]');
  await rejects({ codebookSizes: [] }, 'codebookSizes');
  await rejects({ sample: 0 }, 'sample');
  await rejects({ iterations: 0 }, 'iterations');
  await rejects({ seed: -1 }, 'seed');
  await rejects({ normalize: 'max' as 'l2' }, 'normalize');
  await rejects({ codebookSizes: [4], sample: 3 }, 'codebookSizes[0]');
});

test('fileSha256 is the sha256 of the file bytes', async () => {
  const path = join(tmp.dir, 'digest.txt');
  const { writeFile } = await import('node:fs/promises');
  await writeFile(path, 'abc');
  assert.equal(await fileSha256(path), 'ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad');
});
