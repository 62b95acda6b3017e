/**
 * FORGE's contrastive loss inside the trainer: pair batches interleave with reconstruction batches, the InfoNCE
 * loss falls, the logit scales move, and pairs are loaded from a JSON sequence file.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { trainRqVae } from '../../src/train/rqvae.ts';
import { loadPairs } from '../../src/train/pairs.ts';
import { tempDir } from '../helpers/paths.ts';
import { clusteredRows } from './vae-fixture.ts';

const N = 2048;
const DIM = 32;
const { data, labels } = clusteredRows(N, DIM, 32, 5);

/** Pairs of rows in the same cluster: row i with the next row of its cluster. */
function sameClusterPairs(): { a: Int32Array; b: Int32Array } {
  const last = new Map<number, number>();
  const a: number[] = [];
  const b: number[] = [];
  for (let i = 0; i < N; i++) {
    const prev = last.get(labels[i]!);
    if (prev !== undefined) { a.push(prev); b.push(i); }
    last.set(labels[i]!, i);
  }
  return { a: Int32Array.from(a), b: Int32Array.from(b) };
}

/** The small pair-trained RQ-VAE the option tests vary: `epochs` epochs over the same-cluster pairs. */
function pairOptions(epochs: number) {
  const { a, b } = sameClusterPairs();
  return {
    method: 'rqvae' as const, codebookSizes: [8, 8], hidden: [32], latentDim: 8, epochs, batchSize: 256, seed: 3, lr: 1e-2,
    warmupEpochs: 1, threads: 1, evalEvery: 0, pairs: { vectors: data, a, b, count: a.length },
  };
}

test('contrastive pair steps lower the InfoNCE loss and train the logit scales', async () => {
  const { a, b } = sameClusterPairs();
  const res = await trainRqVae(data, DIM, {
    method: 'rqvae', codebookSizes: [8, 8], hidden: [32], latentDim: 8, epochs: 8, batchSize: 256, seed: 3, lr: 1e-2,
    warmupEpochs: 1, threads: 1, evalEvery: 0, pairs: { vectors: data, a, b, count: a.length },
  });
  const first = res.history[0]!;
  const last = res.history.at(-1)!;
  assert.equal(first.steps, Math.floor(N / 256) + Math.floor(a.length / 256));
  assert.ok(last.contrastive! < 0.5 * first.contrastive!, `contrastive ${first.contrastive} -> ${last.contrastive}`);
  const { layout, params } = res.model;
  for (const name of layout.scales) {
    assert.notEqual(params[layout.byName.get(name)!.offset], Math.fround(Math.log(1 / 0.07)), name);
  }
  assert.ok(res.history.every((h) => Number.isFinite(h.recon) && Number.isFinite(h.contrastive!)));
});

test('pairBatches caps the pair steps per epoch, each epoch drawing a different slice of the pairs', async () => {
  const { a, b } = sameClusterPairs();
  const reconSteps = Math.floor(N / 256);
  assert.ok(Math.floor(a.length / 256) > 2, 'the fixture has more than 2 pair batches');
  const res = await trainRqVae(data, DIM, {
    method: 'rqvae', codebookSizes: [8, 8], hidden: [32], latentDim: 8, epochs: 3, batchSize: 256, seed: 3, lr: 1e-2,
    warmupEpochs: 1, threads: 1, evalEvery: 0, pairBatches: 2, pairs: { vectors: data, a, b, count: a.length },
  });
  assert.deepEqual(res.history.map((h) => h.steps), [reconSteps + 2, reconSteps + 2, reconSteps + 2]);
  assert.ok(res.history.every((h) => Number.isFinite(h.contrastive!)));
  await assert.rejects(trainRqVae(data, DIM, {
    method: 'rqvae', codebookSizes: [8], epochs: 1, pairBatches: 0, pairs: { vectors: data, a, b, count: a.length },
  }), /pairBatches must be an integer in 1\.\./);
});

test('pairFromEpoch / pairUntilEpoch: pair steps only inside the window', async () => {
  const base = pairOptions(5);
  const res = await trainRqVae(data, DIM, { ...base, pairFromEpoch: 2, pairUntilEpoch: 4 });
  assert.deepEqual(res.history.map((h) => h.contrastive !== undefined), [false, false, true, true, false]);
  assert.ok(res.history.every((h) => Number.isFinite(h.recon)));
  await assert.rejects(trainRqVae(data, DIM, { ...base, pairFromEpoch: 3, pairUntilEpoch: 3 }), /pairFromEpoch \(3\) < pairUntilEpoch \(3\)/);
  await assert.rejects(trainRqVae(data, DIM, { ...base, pairUntilEpoch: 6 }), /<= epochs \(5\)/);
});

test('pairNoise feeds the pair steps noisy items: another model than without, the same for the same seed', async () => {
  const base = pairOptions(2);
  const clean = await trainRqVae(data, DIM, base);
  const noisy = await trainRqVae(data, DIM, { ...base, pairNoise: 1 });
  const again = await trainRqVae(data, DIM, { ...base, pairNoise: 1 });
  assert.notDeepEqual(noisy.model.params, clean.model.params);
  assert.deepEqual(again.model.params, noisy.model.params);
  // Noisy pairs are harder to tell apart: the InfoNCE loss of the first epoch is higher.
  assert.ok(noisy.history[0]!.contrastive! > clean.history[0]!.contrastive!, `${noisy.history[0]!.contrastive} vs ${clean.history[0]!.contrastive}`);
  await assert.rejects(trainRqVae(data, DIM, { ...base, pairNoise: -1 }), /pairNoise must be a non-negative number/);
});

test('selfPairs: copies of (i, i) join the pairs, their sides noised at selfPairNoise; none without copies', async () => {
  const base = pairOptions(2);
  const plain = await trainRqVae(data, DIM, base);
  const withSelf = await trainRqVae(data, DIM, { ...base, selfPairs: 2, selfPairNoise: 1 });
  const again = await trainRqVae(data, DIM, { ...base, selfPairs: 2, selfPairNoise: 1 });
  const reconSteps = Math.floor(N / 256);
  const pairs = base.pairs.count;
  assert.equal(plain.history[0]!.steps, reconSteps + Math.floor(pairs / 256));
  assert.equal(withSelf.history[0]!.steps, reconSteps + Math.floor((pairs + 2 * N) / 256));
  assert.deepEqual(again.model.params, withSelf.model.params);
  // Without copies the self-pair noise has nothing to act on; with copies but no noise the pairs still count.
  const noCopies = await trainRqVae(data, DIM, { ...base, selfPairNoise: 1 });
  assert.deepEqual(noCopies.model.params, plain.model.params);
  const clean = await trainRqVae(data, DIM, { ...base, selfPairs: 2 });
  assert.notDeepEqual(clean.model.params, withSelf.model.params);
  // The pair noise defaults to the self pairs' too: noising both kinds differs from noising the self pairs alone.
  const both = await trainRqVae(data, DIM, { ...base, selfPairs: 2, pairNoise: 1 });
  assert.notDeepEqual(both.model.params, withSelf.model.params);
  assert.equal(both.options.selfPairNoise, 1);
  await assert.rejects(trainRqVae(data, DIM, { ...base, selfPairs: 1.5 }), /selfPairs must be/);
  await assert.rejects(trainRqVae(data, DIM, { ...base, selfPairs: 1, selfPairNoise: -1 }), /selfPairNoise must be a non-negative number/);
});

test('pairs from JSON sequences and RecBole .inter files: consecutive distinct items once, items outside the input dropped', async () => {
  const tmp = tempDir();
  try {
    const path = join(tmp.dir, 'seq.json');
    writeFileSync(path, JSON.stringify({ u1: [0, 1, 1, 2], u2: [5, 4000, 6], u3: [7], u4: [0, 1] }));
    const input = { ids: null, vectors: data, n: N, dim: DIM, format: 'npy' as const, skipped: 0 };
    const pairs = await loadPairs(path, input);
    assert.deepEqual([Array.from(pairs.a), Array.from(pairs.b)], [[0, 1], [1, 2]]);
    assert.equal(pairs.dropped, 2);
    assert.equal(pairs.vectors, data);
    const inter = join(tmp.dir, 'train.inter');
    writeFileSync(inter, 'user_id:token\titem_id_list:token_seq\titem_id:token\n0\t3 4\t9\n0\t3\t4\n1\t\t8\n');
    const fromInter = await loadPairs(inter, input);
    assert.deepEqual([Array.from(fromInter.a), Array.from(fromInter.b)], [[3, 4], [4, 9]]);
  } finally {
    tmp.cleanup();
  }
});
