/**
 * `sidx train --method rqvae|vqvae` end to end: the bundle (model.json + encoder.onnx + decoder.onnx) with its
 * training provenance, the per-epoch checkpoint and --resume, and the service answering /v1/encode with the
 * trained model's codes.
 */
import { test, after, before } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { writeNpy } from '../../src/io/npy.ts';
import { loadBundle } from '../../src/tokenizer/bundle.ts';
import { EncoderPool } from '../../src/tokenizer/encoder-pool.ts';
import { repoRoot, tempDir } from '../helpers/paths.ts';
import { startService } from '../helpers/service.ts';
import { clusteredData } from './vae-fixture.ts';
import { runCli } from '../helpers/cli.ts';

const N = 1024;
const DIM = 24;
const data = clusteredData(N, DIM, 16, 9);
const tmp = tempDir('sidx-rqvae-cli-');
const input = join(tmp.dir, 'emb.npy');
before(() => writeNpy(input, data, [N, DIM]));
after(() => tmp.cleanup());


const small = ['--hidden', '32', '--latent-dim', '8', '--batch-size', '128', '--lr', '1e-2', '--warmup-epochs', '1',
  '--threads', '1', '--seed', '4'];

test('sidx train --method rqvae writes a bundle the service serves (/v1/encode, /v1/retrieve with expand beam)', async (t) => {
  const out = join(tmp.dir, 'rq');
  const argv = ['train', '--method', 'rqvae', '--input', input, '--out', out, '--levels', '2', '--codebook-size', '8',
    '--epochs', '3', '--top-m', '4', '--beam-norm-weight', '0.5', ...small];
  const run = await runCli(t, argv);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /epoch 3\/3: recon [0-9.]+, commit [0-9.]+, utilisation 100\.0%\/100\.0%/);
  assert.match(run.stdout, /\| collision rate +\|/);
  assert.match(run.stderr, /checkpoint after every epoch: .*\/rq\.checkpoint \(--resume it if the run stops; removed once the bundle is written\)/);
  assert.ok(!existsSync(`${out}.checkpoint`), 'the default checkpoint is removed once the bundle is written');
  const bundle = await loadBundle(out);
  const m = bundle.manifest;
  assert.deepEqual([m.method, m.inputDim, m.latentDim, m.levels, m.topM, m.beamNormWeight], ['rqvae', DIM, 8, 2, 4, 0.5]);
  assert.ok(bundle.decoderPath !== undefined);
  const training = m.training as Record<string, unknown>;
  assert.equal(training.command, `sidx train ${argv.slice(1).join(' ')}`);
  assert.deepEqual([training.assignment, training.commitment, training.codebookUpdate], ['sinkhorn', 'forge', 'gradient']);
  assert.deepEqual(training.sinkhorn, { epsilon: 10, iterations: 5 });

  const pool = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu' });
  const expected = await pool.encode(data.subarray(0, 20 * DIM), 20);
  await pool.close();
  const svc = await startService(join(tmp.dir, 'data'), out);
  try {
    const embeddings = Array.from({ length: 20 }, (_, i) => Array.from(data.subarray(i * DIM, (i + 1) * DIM)));
    const res = await svc.app.inject({ method: 'POST', url: '/v1/encode', payload: { embeddings } });
    assert.equal(res.statusCode, 200, res.body);
    const sids = (res.json() as { sids: number[][] }).sids;
    assert.deepEqual(sids, Array.from({ length: 20 }, (_, i) => Array.from(expected.codes.subarray(i * 2, i * 2 + 2))));
    const items = embeddings.map((embedding, i) => ({ id: `item-${i}`, embedding }));
    assert.equal((await svc.app.inject({ method: 'POST', url: '/v1/items', payload: { items } })).statusCode, 200);
    const retrieved = await svc.app.inject({ method: 'POST', url: '/v1/retrieve', payload: { embedding: embeddings[3], k: 5, expand: 'beam' } });
    assert.equal(retrieved.statusCode, 200, retrieved.body);
    assert.equal((retrieved.json() as { items: { id: string }[] }).items[0]!.id, 'item-3');
  } finally {
    await svc.close();
  }

  // sidx metrics decodes the SIDs with decoder.onnx: the same reconstruction error the trainer stored.
  const json = join(tmp.dir, 'rq-metrics.json');
  const metrics = await runCli(t, ['metrics', '--model', out, '--input', input, '--json', json]);
  assert.equal(metrics.code, 0, metrics.stderr);
  assert.match(metrics.stdout, /\| reconstruction error \(relative MSE\) +\| +[0-9.]+ \|/);
  const reported = (JSON.parse(readFileSync(json, 'utf8')) as { metrics: { reconstructionError: number } }[])[0]!.metrics;
  const stored = (m.metrics as { reconstructionError: number }).reconstructionError;
  assert.ok(stored > 0 && Math.abs(reported.reconstructionError - stored) <= 1e-6 * stored, `${reported.reconstructionError} vs ${stored}`);
});

test('--resume continues from the checkpoint; a checkpoint of another shape is refused', async (t) => {
  const out = join(tmp.dir, 'rq-resume');
  const ckpt = join(tmp.dir, 'rq-resume.ckpt');
  const base = ['train', '--method', 'rqvae', '--input', input, '--out', out, '--levels', '2', '--codebook-size', '8',
    '--checkpoint', ckpt, ...small];
  const first = await runCli(t, [...base, '--epochs', '2']);
  assert.equal(first.code, 0, first.stderr);
  assert.ok(existsSync(ckpt), 'a --checkpoint FILE given is kept');
  assert.match(first.stderr, /wrote .*rq-resume \(.*\) in .*; checkpoint .*rq-resume\.ckpt\n/);
  const resumed = await runCli(t, [...base, '--epochs', '2', '--resume', ckpt, '--eval-every', '0']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.match(resumed.stderr, /resumed from .* after epoch 2/);
  assert.doesNotMatch(resumed.stderr, /epoch 1\/2/);
  // A stopped run's default checkpoint (made here by naming that path) resumes, and goes once the bundle is written.
  const stopped = join(tmp.dir, 'rq-stopped');
  const shape = ['--levels', '2', '--codebook-size', '8', ...small];
  const one = await runCli(t, ['train', '--method', 'rqvae', '--input', input, '--out', stopped, '--epochs', '1', '--checkpoint', `${stopped}.checkpoint`, ...shape]);
  assert.equal(one.code, 0, one.stderr);
  const rest = await runCli(t, ['train', '--method', 'rqvae', '--input', input, '--out', stopped, '--epochs', '2', '--resume', `${stopped}.checkpoint`, ...shape]);
  assert.equal(rest.code, 0, rest.stderr);
  assert.match(rest.stderr, /resumed from .* after epoch 1\n[^]*epoch 2\/2/);
  assert.ok(!existsSync(`${stopped}.checkpoint`));
  const other = await runCli(t, ['train', '--method', 'rqvae', '--input', input, '--out', out, '--levels', '2',
    '--codebook-size', '4', '--top-m', '4', '--epochs', '3', '--resume', ckpt, '--checkpoint', 'none', ...small]);
  assert.equal(other.code, 1);
  assert.match(other.stderr, /was written for/);
});

test('in a log (stderr not a terminal) training writes its epoch lines, not a line per step', async () => {
  const out = join(tmp.dir, 'rq-log');
  const started = Date.now();
  // 1024 rows in batches of 64: 16 steps an epoch, 48 in all.
  const { stderr } = await promisify(execFile)(process.execPath, [join(repoRoot, 'bin', 'sidx.js'), 'train', '--method', 'rqvae',
    '--input', input, '--out', out, '--levels', '2', '--codebook-size', '8', '--epochs', '3', '--checkpoint', 'none',
    ...small, '--batch-size', '64'], { cwd: repoRoot });
  const wallMs = Date.now() - started;
  const lines = stderr.trimEnd().split('\n');
  assert.equal(lines.filter((l) => /: epoch \d\/3: recon/.test(l)).length, 3, stderr);
  // A step line only after 10 s without output (train-vae.ts), so at most one per 10 s of the run.
  const stepLines = lines.filter((l) => /step \d+\/16:/.test(l));
  assert.ok(stepLines.length <= 1 + Math.floor(wallMs / 10_000), stderr);
  assert.doesNotMatch(stderr, /\r/);
});

test('sidx train --method vqvae: one EMA codebook with dead-code restart', async (t) => {
  const out = join(tmp.dir, 'vq');
  const run = await runCli(t, ['train', '--method', 'vqvae', '--input', input, '--out', out, '--codebook-size', '32',
    '--epochs', '3', '--checkpoint', 'none', ...small]);
  assert.equal(run.code, 0, run.stderr);
  const m = (await loadBundle(out)).manifest;
  assert.deepEqual([m.method, m.levels, m.codebookSizes[0]], ['vqvae', 1, 32]);
  const training = m.training as Record<string, unknown>;
  assert.deepEqual([training.assignment, training.commitment, training.codebookUpdate], ['argmin', 'classic', 'ema']);
  assert.deepEqual(training.deadRestart, { threshold: 'auto', perLevel: [1] }); // batch 128 >= 2 x 32 codes
  assert.ok(!existsSync(`${out}.checkpoint`));
});

test('sidx train --input-projection P --hidden \'\': a linear encoder over the top P principal components', async (t) => {
  const out = join(tmp.dir, 'projected');
  const run = await runCli(t, ['train', '--method', 'rqvae', '--input', input, '--out', out, '--levels', '2', '--codebook-size', '8',
    '--epochs', '3', '--checkpoint', 'none', ...small, '--hidden', '', '--input-projection', '12', '--assignment', 'argmin']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /input projection: top 12 principal components keep \d+\.\d% of the variance/);
  const bundle = await loadBundle(out);
  const training = bundle.manifest.training as Record<string, unknown>;
  assert.deepEqual([training.inputProjection, training.hidden, training.assignment], [12, [], 'argmin']);
  const pool = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu' });
  try {
    assert.equal((await pool.encode(data.subarray(0, 4 * DIM), 4)).codes.length, 8);
  } finally {
    await pool.close();
  }
});

test('sidx train --identity-pull R: a linear encoder drawn towards the identity, recorded in the manifest', async (t) => {
  const out = join(tmp.dir, 'pulled');
  const run = await runCli(t, ['train', '--method', 'rqvae', '--input', input, '--out', out, '--levels', '2', '--codebook-size', '8',
    '--epochs', '3', '--checkpoint', 'none', ...small, '--hidden', '', '--input-projection', '8', '--assignment', 'argmin', '--identity-pull', '3']);
  assert.equal(run.code, 0, run.stderr);
  const training = (await loadBundle(out)).manifest.training as Record<string, unknown>;
  assert.deepEqual([training.identityPull, training.inputProjection, training.latentDim], [3, 8, 8]);
});

test('rqvae/vqvae usage errors exit 2 naming the flag', async (t) => {
  const out = join(tmp.dir, 'never');
  const base = ['train', '--input', input, '--out', out];
  const cases: [string[], RegExp][] = [
    [[...base, '--method', 'vqvae', '--levels', '2'], /vqvae has exactly one level/],
    [[...base, '--method', 'rqvae', '--commitment', 'cosine'], /--commitment must be one of forge, classic/],
    [[...base, '--method', 'rqvae', '--lr', '0'], /--lr must be a positive number/],
    [[...base, '--method', 'rqvae', '--ema-decay', '1'], /--ema-decay must be in \(0, 1\)/],
    [[...base, '--method', 'rqvae', '--hidden', '32,x'], /--hidden: "x" is not a positive integer/],
    [[...base, '--method', 'rqvae', '--dead-restart', 'yes'], /--dead-restart must be one of on, off/],
    [[...base, '--method', 'rqvae', '--top-m', '300'], /--top-m 300 exceeds the smallest codebook size 256/],
    [[...base, '--method', 'rqvae', '--beam-norm-weight', '2'], /--beam-norm-weight must be a number in \[0, 1\], got "2"/],
    [['train', '--method', 'rqvae', '--input', input], /--out is required/],
    [[...base, '--method', 'rqvae', '--pair-batches', '0'], /--pair-batches must be a positive integer/],
    [[...base, '--method', 'rqvae', '--pair-batches', '4'], /--pair-batches needs --pairs/],
    [[...base, '--method', 'rqvae', '--contrastive-weight', '0.5'], /--contrastive-weight needs --pairs/],
    [[...base, '--method', 'rqvae', '--pair-recon-weight', '1'], /--pair-recon-weight needs --pairs/],
    [[...base, '--method', 'rqvae', '--self-pairs', '2'], /--self-pairs needs --pairs/],
    [[...base, '--method', 'rqvae', '--self-pairs', '1.5'], /--self-pairs must be a non-negative integer/],
    [[...base, '--method', 'rqvae', '--input-noise', 'x'], /--input-noise must be a non-negative number/],
    [[...base, '--method', 'rqvae', '--input-mix', '2'], /--input-mix must be in \[0, 1\]/],
    [[...base, '--method', 'rqvae', '--augment-copies', '1.5'], /--augment-copies must be a non-negative integer/],
    [[...base, '--method', 'rqvae', '--input-projection', '25'], /--input-projection 25 exceeds the 24 dimensions of .*emb\.npy/],
    [[...base, '--method', 'rqvae', '--identity-pull', '2'], /--identity-pull needs a square first trained encoder layer, here 24 -> 256/],
    [[...base, '--method', 'rqvae', '--identity-pull=-1'], /--identity-pull must be a non-negative number/],
  ];
  for (const [argv, message] of cases) {
    const run = await runCli(t, argv);
    assert.equal(run.code, 2, `${argv.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, message);
  }
});
