/**
 * RQ-VAE trainer end to end on small synthetic clustered data: the loss falls and every code is used; the exported
 * bundle reproduces the trainer's inference codes (EncoderPool) and reconstructions (decoder.onnx); the codes
 * agree with a float64 JavaScript reference away from near-ties; resume from a checkpoint continues the same run.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync } from 'node:fs';
import { join } from 'node:path';
import ort from 'onnxruntime-node';
import { trainRqVae, type RqVaeResult, type TrainRqVaeOptions } from '../../src/train/rqvae.ts';
import { exportVaeBundle } from '../../src/train/rqvae-export.ts';
import { loadBundle } from '../../src/tokenizer/bundle.ts';
import { EncoderPool } from '../../src/tokenizer/encoder-pool.ts';
import { tempDir } from '../helpers/paths.ts';
import { clusteredData } from './vae-fixture.ts';
import { referenceForward } from './rqvae-reference.ts';

const N = 2048;
const DIM = 32;
const data = clusteredData(N, DIM, 32, 5);
const base: TrainRqVaeOptions = {
  method: 'rqvae', codebookSizes: [8, 8], hidden: [32], latentDim: 8, epochs: 20, batchSize: 256, seed: 3, lr: 1e-2,
  warmupEpochs: 1, threads: 1, evalEvery: 0,
};
const training = { source: 'synthetic', command: 'test', seed: 3, dataDigest: '0'.repeat(64) };

let trained: RqVaeResult | undefined;
async function train(): Promise<RqVaeResult> {
  trained ??= await trainRqVae(data, DIM, base);
  return trained;
}

test('a short RQ-VAE run lowers the loss and uses every code (Sinkhorn assignment)', async () => {
  const res = await train();
  const first = res.history[0]!;
  const last = res.history.at(-1)!;
  assert.equal(res.history.length, 20);
  assert.ok(last.recon < 0.6 * first.recon, `recon ${first.recon} -> ${last.recon}`);
  assert.ok(res.metrics.reconstructionError! < 0.6, `relative reconstruction error ${res.metrics.reconstructionError}`);
  for (const level of res.metrics.perLevel) assert.equal(level.utilisation, 1, `level ${level.level} utilisation`);
  assert.ok(last.trainUtilisation.every((u) => u === 1));
  assert.ok(res.history.every((h) => Number.isFinite(h.recon) && Number.isFinite(h.commit)));
});

test('the exported bundle reproduces the trainer codes (EncoderPool, beam.onnx) and reconstructions (decoder.onnx)', async () => {
  const res = await train();
  const tmp = tempDir();
  try {
    const bundle = await exportVaeBundle({ dir: tmp.dir, id: 'rqvae-test', method: 'rqvae', model: res.model, topM: 4, training });
    assert.equal(bundle.manifest.method, 'rqvae');
    assert.equal(bundle.manifest.latentDim, 8);
    assert.ok(bundle.decoderPath !== undefined);
    const pool = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu' });
    try {
      const out = await pool.encode(data, N);
      assert.deepEqual(out.codes, res.codes);
      for (let i = 0; i < N * 2; i++) assert.equal(out.topCodes[i * 4], res.codes[i]);
      for (let i = 0; i < N * 2; i++) {
        for (let m = 1; m < 4; m++) assert.ok(out.topDistances[i * 4 + m]! >= out.topDistances[i * 4 + m - 1]!);
      }
    } finally {
      await pool.close();
    }
    // beam.onnx in the latent space: width 1 with the residual-distance score is exactly the greedy encoder path.
    assert.ok(bundle.beamPath !== undefined);
    const beam = await ort.InferenceSession.create(bundle.beamPath!);
    const beamOut = await beam.run({
      embedding: new ort.Tensor('float32', data, [N, DIM]),
      beam_width: new ort.Tensor('int64', BigInt64Array.of(1n), [1]),
      norm_weight: new ort.Tensor('float32', Float32Array.of(1), [1]),
    });
    assert.deepEqual(Int32Array.from(beamOut.beam_codes_2!.data as BigInt64Array, Number), res.codes);
    await beam.release();
    const decoder = await ort.InferenceSession.create(bundle.decoderPath!);
    const decoded = await decoder.run({ codes: new ort.Tensor('int64', BigInt64Array.from(res.codes, BigInt), [N, 2]) });
    assert.deepEqual(decoded.embedding!.data, res.reconstructions);
    await decoder.release();
  } finally {
    tmp.cleanup();
  }
});

test('inference codes equal a float64 reference wherever the nearest codeword is not a near-tie', async () => {
  const res = await train();
  const flat = Float64Array.from(res.model.params);
  const ref = referenceForward(res.model.shape, flat, Float64Array.from(data), N, { commitment: 'forge', ema: false });
  let compared = 0;
  const r = ref.z.slice();
  const { layout, shape } = res.model;
  for (let l = 0; l < 2; l++) {
    const spec = layout.byName.get(layout.codebooks[l]!)!;
    const book = flat.subarray(spec.offset, spec.offset + spec.size);
    for (let i = 0; i < N; i++) {
      const d = Array.from({ length: 8 }, (_, k) => {
        let s = 0;
        for (let h = 0; h < 8; h++) s += (r[i * 8 + h]! - book[k * 8 + h]!) ** 2;
        return s;
      });
      const sorted = [...d].sort((a, b) => a - b);
      const code = res.codes[i * 2 + l]!;
      if (sorted[1]! - sorted[0]! > 1e-3 * (1 + sorted[0]!)) {
        assert.equal(code, ref.argminCodes[i * 2 + l], `row ${i} level ${l}`);
        compared++;
      }
      for (let h = 0; h < 8; h++) r[i * 8 + h]! -= book[code * 8 + h]!;
    }
  }
  assert.ok(compared > 0.95 * 2 * N, `only ${compared} rows compared`);
  assert.equal(shape.codebookSizes.length, 2);
});

test('resuming from an epoch checkpoint continues the same run bit for bit', async () => {
  const tmp = tempDir();
  try {
    const ckpt = join(tmp.dir, 'ckpt.bin');
    const mid = join(tmp.dir, 'epoch2.bin');
    const opts: TrainRqVaeOptions = { ...base, epochs: 4, checkpoint: ckpt };
    const full = await trainRqVae(data, DIM, {
      ...opts,
      onProgress: (e) => { if (e.kind === 'checkpoint' && e.epoch === 1) copyFileSync(ckpt, mid); },
    });
    const resumed = await trainRqVae(data, DIM, { ...opts, checkpoint: join(tmp.dir, 'ckpt2.bin'), resume: mid });
    assert.equal(resumed.startEpoch, 2);
    assert.equal(resumed.history.length, 2);
    assert.deepEqual(resumed.model.params, full.model.params);
    assert.deepEqual(resumed.codes, full.codes);
    await assert.rejects(
      trainRqVae(data, DIM, { ...opts, codebookSizes: [8, 4], resume: mid }),
      (err: Error & { code?: string }) => err.code === 'SIDX_ERR_INVALID_INPUT' && /was written for/.test(err.message),
    );
  } finally {
    tmp.cleanup();
  }
});
