/**
 * The frozen input projection of the RQ-VAE (`inputProjection`): fitted to the training rows' principal components
 * before training, never updated, exported as the encoder's first layer; codes ignore input outside its subspace.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trainRqVae, type TrainRqVaeOptions } from '../../src/train/rqvae.ts';
import { exportVaeBundle } from '../../src/train/rqvae-export.ts';
import { paramView } from '../../src/train/rqvae-model.ts';
import { encodeAll } from '../../src/train/rqvae-runtime.ts';
import { loadBundle } from '../../src/tokenizer/bundle.ts';
import { EncoderPool } from '../../src/tokenizer/encoder-pool.ts';
import { principalComponents } from '../../src/vector/vector-index.ts';
import { gaussian, rng } from '../helpers/random.ts';
import { tempDir } from '../helpers/paths.ts';
import { clusteredData } from './vae-fixture.ts';

const N = 1024;
const DIM = 24;
const SUB = 6;
// Clustered rows in the first SUB coordinates; the other DIM - SUB are zero.
const inSubspace = clusteredData(N, SUB, 16, 9);
const data = new Float32Array(N * DIM);
for (let i = 0; i < N; i++) data.set(inSubspace.subarray(i * SUB, (i + 1) * SUB), i * DIM);
// The same rows plus large noise outside that subspace.
const noisy = data.slice();
const g = gaussian(rng(10));
for (let i = 0; i < N; i++) for (let j = SUB; j < DIM; j++) noisy[i * DIM + j] = 2 * g();

const base: TrainRqVaeOptions = {
  method: 'rqvae', codebookSizes: [8, 8], hidden: [24], latentDim: 8, epochs: 6, batchSize: 128, seed: 4, lr: 1e-2,
  warmupEpochs: 1, threads: 1, evalEvery: 0,
};

test('an input projection is fitted to the principal subspace, stays frozen, and codes ignore input outside it', async () => {
  const messages: string[] = [];
  const res = await trainRqVae(data, DIM, {
    ...base, inputProjection: SUB, onProgress: (e) => { if (e.kind === 'init') messages.push(e.message); },
  });
  assert.ok(messages.some((m) => /top 6 principal components keep 100\.0% of the variance/.test(m)), messages.join('\n'));
  const { layout, params } = res.model;
  assert.equal(layout.frozenEncoderLayers, 1);
  const fitted = await principalComponents(data, DIM, SUB);
  assert.deepEqual(paramView(params, layout.byName.get('proj_w')!), fitted.weight);
  assert.deepEqual(paramView(params, layout.byName.get('proj_b')!), fitted.bias);
  assert.ok(res.history.at(-1)!.recon < res.history[0]!.recon);

  const noisyCodes = await encodeAll(res.model, noisy, 1);
  assert.deepEqual(noisyCodes, res.codes);
  // Without the projection the same run's codes move with that noise.
  const plain = await trainRqVae(data, DIM, base);
  const plainNoisy = await encodeAll(plain.model, noisy, 1);
  const moved = plainNoisy.reduce((s, c, i) => s + (c === plain.codes[i] ? 0 : 1), 0);
  assert.ok(moved > N / 10, `only ${moved} codes moved without the projection`);

  // The bundle's encoder is the trainer's: the projection is its first layer.
  const tmp = tempDir();
  try {
    const training = { source: 'synthetic', command: 'test', seed: 4, dataDigest: '0'.repeat(64) };
    await exportVaeBundle({ dir: tmp.dir, id: 'projection-test', method: 'rqvae', model: res.model, topM: 2, training });
    const pool = await EncoderPool.create(await loadBundle(tmp.dir), { workers: 1, provider: 'cpu' });
    try {
      assert.deepEqual((await pool.encode(noisy, N)).codes, res.codes);
    } finally {
      await pool.close();
    }
  } finally {
    tmp.cleanup();
  }
});

test('an input projection wider than the input, or a resume under another width, is refused', async () => {
  await assert.rejects(trainRqVae(data, DIM, { ...base, inputProjection: DIM + 1 }),
    (e: Error & { code?: string; details?: { field?: string } }) => e.code === 'SIDX_ERR_INVALID_INPUT' && /inputProjection/.test(e.message));
  const tmp = tempDir();
  try {
    const checkpoint = `${tmp.dir}/ckpt.bin`;
    await trainRqVae(data, DIM, { ...base, epochs: 1, inputProjection: SUB, checkpoint });
    await assert.rejects(trainRqVae(data, DIM, { ...base, inputProjection: SUB - 1, resume: checkpoint }),
      (e: Error & { code?: string }) => e.code === 'SIDX_ERR_INVALID_INPUT' && /was written for/.test(e.message));
  } finally {
    tmp.cleanup();
  }
});
