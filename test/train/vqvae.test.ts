/**
 * VQ-VAE (one codebook, EMA updates): dead-code restart keeps the codebook in use where plain EMA leaves a large
 * part of it dead (the collapse the public Semantic-ID VQ-VAE pipeline showed).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { trainRqVae, type TrainRqVaeOptions } from '../../src/train/rqvae.ts';
import { clusteredData } from './vae-fixture.ts';

const DIM = 32;
const data = clusteredData(4096, DIM, 256, 5, 0.5);
const base: TrainRqVaeOptions = {
  method: 'vqvae', codebookSizes: [256], hidden: [64], latentDim: 16, epochs: 15, batchSize: 512, seed: 3, lr: 5e-3,
  warmupEpochs: 1, threads: 1, evalEvery: 0, init: 'random',
};

test('dead-code restart keeps a 256-code VQ-VAE codebook >= 90% used; without it, under 70%', async () => {
  const restarted = await trainRqVae(data, DIM, { ...base, restartDead: true });
  const plain = await trainRqVae(data, DIM, { ...base, restartDead: false });
  const used = (r: typeof plain) => r.metrics.perLevel[0]!.utilisation;
  assert.ok(used(restarted) >= 0.9, `with restart: ${used(restarted)}`);
  assert.ok(used(plain) < 0.7, `without restart: ${used(plain)}`);
  assert.ok(restarted.history.some((h) => h.restarts[0]! > 0));
  assert.ok(plain.history.every((h) => h.restarts[0] === 0));
  assert.equal(restarted.options.codebookUpdate, 'ema');
  assert.ok(restarted.history.at(-1)!.recon < restarted.history[0]!.recon);
});

test('with batches smaller than the codebook, the auto dead threshold restarts dead codes without churning live ones', async () => {
  const small = clusteredData(2048, DIM, 256, 5, 0.5);
  const opts: TrainRqVaeOptions = { ...base, epochs: 6, batchSize: 64 };
  const literal = await trainRqVae(small, DIM, { ...opts, restartDead: true, deadThreshold: 1 });
  const auto = await trainRqVae(small, DIM, { ...opts, restartDead: true });
  const steps = Math.floor(2048 / 64);
  // "< 1 hit per step" with 64 rows for 256 codes: (nearly) every code is restarted at every step.
  assert.ok(literal.history.every((h) => h.restarts[0]! > 0.75 * steps * 256), JSON.stringify(literal.history.map((h) => h.restarts)));
  // auto = 0.5 * 64 / 256: a few restarts, then (almost) none.
  const total = auto.history.reduce((s, h) => s + h.restarts[0]!, 0);
  assert.ok(total > 0 && total < 2 * 256, `auto restarts ${total}`);
  assert.ok(auto.history.at(-1)!.restarts[0]! < 16);
  assert.ok(auto.metrics.perLevel[0]!.utilisation >= 0.8, `utilisation ${auto.metrics.perLevel[0]!.utilisation}`);
});
