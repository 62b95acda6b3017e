import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';

import { ProgressLine } from '../../src/cli/progress.ts';
import { writeNpy } from '../../src/io/npy.ts';
import { loadBundle } from '../../src/tokenizer/bundle.ts';
import { repoRoot, tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { runCli } from '../helpers/cli.ts';

const DIM = 16;
const ROWS = 300;
const tmp = tempDir('sidx-cli-train-');
const input = join(tmp.dir, 'emb.npy');
after(() => tmp.cleanup());
before(() => writeNpy(input, randomMatrix(ROWS, DIM, 11), [ROWS, DIM]));

/** Runs `sidx <argv>` in process: exit code and what it printed (console and stderr writes). */
export 
const base = (out: string) => ['train', '--method', 'rqkmeans', '--input', input, '--out', out, '--seed', '3'];

test('sidx train writes a loadable bundle with training provenance and prints the metrics table', async (t) => {
  const out = join(tmp.dir, 'model-a');
  const run = await runCli(t, [...base(out), '--levels', '2', '--codebook-size', '8', '--normalize', 'l2', '--top-m', '4']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /\| collision rate +\|/);
  assert.match(run.stdout, /reconstruction error/);
  assert.match(run.stderr, /level 2\/2 done/);
  const bundle = await loadBundle(out);
  const m = bundle.manifest;
  assert.equal(m.id, 'model-a');
  assert.equal(m.method, 'rqkmeans');
  assert.deepEqual([m.inputDim, m.latentDim, m.levels, m.topM, m.normalize, m.metric], [DIM, DIM, 2, 4, 'l2', 'ip']);
  assert.deepEqual(m.codebookSizes, [8, 8]);
  const training = m.training!;
  assert.equal(training.source, input);
  assert.equal(training.seed, 3);
  assert.equal(training.dataDigest, createHash('sha256').update(await readFile(input)).digest('hex'));
  assert.equal(training.command, `sidx train ${base(out).slice(1).join(' ')} --levels 2 --codebook-size 8 --normalize l2 --top-m 4`);
  assert.equal((m.metrics as { items: number }).items, ROWS);

  // Same command, same bundle bytes (the manifest holds no timestamps).
  const again = join(tmp.dir, 'model-a2');
  const rerun = await runCli(t, [...base(again), '--levels', '2', '--codebook-size', '8', '--normalize', 'l2', '--top-m', '4', '--id', 'model-a']);
  assert.equal(rerun.code, 0, rerun.stderr);
  assert.deepEqual(await readFile(join(again, 'encoder.onnx')), await readFile(join(out, 'encoder.onnx')));

  // sidx metrics on the training data reproduces the metrics recorded at training time.
  const jsonPath = join(tmp.dir, 'metrics.json');
  const metrics = await runCli(t, ['metrics', '--model', out, '--input', input, '--json', jsonPath]);
  assert.equal(metrics.code, 0, metrics.stderr);
  assert.match(metrics.stdout, /\| +model-a \|/);
  const [recorded] = JSON.parse(await readFile(jsonPath, 'utf8')) as [{ metrics: Record<string, unknown> }];
  const close = (a: unknown, b: unknown) => assert.ok(Math.abs(Number(a) - Number(b)) < 1e-6, `${a} vs ${b}`);
  const stored = m.metrics as Record<string, unknown>;
  for (const key of ['distinctSids', 'collisionRate', 'maxItemsPerSid', 'gini']) assert.equal(recorded.metrics[key], stored[key]);
  close(recorded.metrics.reconstructionError, stored.reconstructionError);
});

test('per-level codebook sizes, --balanced and its Sinkhorn flags are recorded', async (t) => {
  const out = join(tmp.dir, 'model-b');
  const run = await runCli(t, [...base(out), '--codebook-size', '16,8', '--balanced', '--balanced-rounds', '2',
    '--sinkhorn-eps', '4', '--sinkhorn-iters', '12', '--sample', '200', '--iters', '5', '--id', 'balanced-b']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /balanced round 2\/2/);
  const { manifest } = await loadBundle(out);
  assert.equal(manifest.id, 'balanced-b');
  assert.deepEqual(manifest.codebookSizes, [16, 8]);
  assert.deepEqual(manifest.training!.balanced, { rounds: 2, epsilon: 4, iterations: 12 });
  assert.equal(manifest.training!.sampleRows, 200);
  assert.equal(manifest.training!.iterations, 5);
});

test('usage errors exit 2 with a message that says what is wrong', async (t) => {
  const out = join(tmp.dir, 'never');
  const cases: [string[], RegExp][] = [
    [[...base(out), '--levels', '2', '--codebook-size', '8', '--bogus'], /Unknown option '--bogus'/],
    [[...base(out), '--levels', '2', '--codebook-size', '8', '--method', 'rqvae', '--assignment', 'greedy'], /--assignment must be one of sinkhorn, argmin/],
    [[...base(out), '--levels', '2', '--codebook-size', '8', '--method', 'pq'], /unknown --method "pq"/],
    [[...base(out), '--codebook-size', '8'], /--levels is required/],
    [[...base(out), '--levels', '2'], /--codebook-size is required/],
    [[...base(out), '--levels', '2', '--codebook-size', 'eight'], /--codebook-size: "eight" is not an integer/],
    [[...base(out), '--levels', '3', '--codebook-size', '8,4'], /--levels is 3 but --codebook-size lists 2 sizes/],
    [[...base(out), '--levels', '2', '--codebook-size', '8', '--normalize', 'max'], /--normalize must be l2 or none/],
    [[...base(out), '--levels', '2', '--codebook-size', '8', '--top-m', '9'], /--top-m 9 exceeds the smallest codebook size 8/],
    [[...base(out), '--levels', '2', '--codebook-size', '8', '--sinkhorn-eps', '3'], /need --balanced/],
    [[...base(out), '--levels', '2', '--codebook-size', '8', '--balanced', '--sinkhorn-eps', '0'], /--sinkhorn-eps must be a positive number/],
    [[...base(out), '--levels', '2', '--codebook-size', '8', '--iters', '1.5'], /--iters must be an integer/],
    [['train', '--input', input, '--levels', '2', '--codebook-size', '8'], /--out is required/],
    // --out an existing file: refused before training (the bundle could not be written there after it)
    [['train', '--input', input, '--levels', '2', '--codebook-size', '8', '--out', input], /--out .* is a file: give a directory/],
    [['train', '--method', 'rqvae', '--input', input, '--steps', '1', '--out', input], /--out .* is a file: give a directory/],
  ];
  for (const [argv, message] of cases) {
    const run = await runCli(t, argv);
    assert.equal(run.code, 2, `${argv.join(' ')}\n${run.stderr}`);
    assert.match(run.stderr, message);
  }
});

test('data errors exit 1 naming the file', async (t) => {
  const missing = join(tmp.dir, 'missing.npy');
  const run = await runCli(t, ['train', '--input', missing, '--levels', '2', '--codebook-size', '8', '--out', join(tmp.dir, 'x')]);
  assert.equal(run.code, 1);
  assert.ok(run.stderr.includes(missing), run.stderr);
  const tooMany = await runCli(t, [...base(join(tmp.dir, 'y')), '--levels', '1', '--codebook-size', String(ROWS + 1)]);
  assert.equal(tooMany.code, 1);
  assert.match(tooMany.stderr, /codebook size 301 of level 1 exceeds the 300 rows used for fitting/);
  const text = join(tmp.dir, 'emb.txt');
  const unknown = await runCli(t, ['train', '--input', text, '--levels', '1', '--codebook-size', '4', '--out', join(tmp.dir, 'z')]);
  assert.equal(unknown.code, 1);
  assert.match(unknown.stderr, /emb\.txt: unknown embedding file type/);
});

test('bin/sidx.js exits with the code main returns', async () => {
  const missing = join(tmp.dir, 'nope.npy');
  const result = await promisify(execFile)(process.execPath,
    [join(repoRoot, 'bin', 'sidx.js'), 'train', '--input', missing, '--levels', '1', '--codebook-size', '4', '--out', join(tmp.dir, 'w')],
    { cwd: repoRoot }).then(() => ({ code: 0, stderr: '' }), (err: { code: number; stderr: string }) => err);
  assert.equal(result.code, 1);
  assert.match(result.stderr, /sidx train: .*nope\.npy/);
});

test('the progress line redraws in place on a TTY and writes one line per update otherwise (or after a quiet spell)', () => {
  const written: string[] = [];
  let now = 0;
  const stream = { write: (s: string) => written.push(s) };
  const tty = new ProgressLine({ stream, tty: true, prefix: 'job', minIntervalMs: 100, now: () => now });
  tty.update('a');
  now = 50;
  tty.update('b'); // throttled
  now = 200;
  tty.update('c');
  tty.log('note');
  tty.done();
  assert.deepEqual(written, ['\r\x1b[2Kjob: a', '\r\x1b[2Kjob: c', '\r\x1b[2K', 'job: note\n', '\r\x1b[2Kjob: c', '\r\x1b[2Kjob: c', '\n']);
  written.length = 0;
  const lines = new ProgressLine({ stream, tty: false, prefix: 'job' });
  lines.update('a');
  lines.update('b');
  lines.done('end');
  assert.deepEqual(written, ['job: a\n', 'job: b\n', 'job: end\n']);
  // quietLineMs: an update line only after that long without output; log and done lines always.
  written.length = 0;
  now = 0;
  const quiet = new ProgressLine({ stream, tty: false, prefix: 'job', quietLineMs: 1000, now: () => now });
  quiet.update('a');
  now = 500;
  quiet.update('b'); // 500 ms after a
  quiet.log('note');
  now = 1400;
  quiet.update('c'); // 900 ms after the note
  now = 1500;
  quiet.update('d');
  quiet.done('end');
  assert.deepEqual(written, ['job: a\n', 'job: note\n', 'job: d\n', 'job: end\n']);
});
