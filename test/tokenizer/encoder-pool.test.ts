import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { EncoderPool, kPoolTestHooks, type EncodeResult } from '../../src/tokenizer/encoder-pool.ts';
import { writeBundle, type ModelBundle } from '../../src/tokenizer/bundle.ts';
import { GraphBuilder } from '../../src/numeric/onnx-builder.ts';
import { SidxError } from '../../src/errors.ts';
import { tempDir, repoRoot } from '../helpers/paths.ts';
import { directEncode, randomRows, writeEncoderBundle, SPEC } from './fixtures/encoder-bundle.ts';
import { runPool } from './fixtures/pool-driver.ts';

const L = SPEC.sizes.length;
const M = SPEC.topM;
const D = SPEC.dim;
let tmp: { dir: string; cleanup: () => void };
let bundle: ModelBundle;

before(async () => {
  tmp = tempDir('sidx-pool-');
  bundle = await writeEncoderBundle(join(tmp.dir, 'model'));
});
after(() => tmp.cleanup());

function assertSameRows(got: EncodeResult, want: EncodeResult, wantRow0: number, n: number, msg = '') {
  assert.deepEqual(got.codes, want.codes.subarray(wantRow0 * L, (wantRow0 + n) * L), `codes ${msg}`);
  assert.deepEqual(got.topCodes, want.topCodes.subarray(wantRow0 * L * M, (wantRow0 + n) * L * M), `topCodes ${msg}`);
  const wd = want.topDistances.subarray(wantRow0 * L * M, (wantRow0 + n) * L * M);
  assert.equal(got.topDistances.length, wd.length);
  for (let i = 0; i < wd.length; i++) assert.ok(Math.abs(got.topDistances[i]! - wd[i]!) <= 1e-5, `distance ${i} ${msg}`);
}

const encoderError = (pattern: RegExp, code = 'SIDX_ERR_ENCODER') => (err: unknown) => {
  assert.ok(err instanceof SidxError, String(err));
  assert.equal(err.code, code);
  assert.match(err.message, pattern);
  return true;
};

test('pool encode (split over workers, many chunks) equals a direct single-session run', async () => {
  const n = 1000;
  const x = randomRows(n, D, 7);
  const copy = x.slice();
  const want = await directEncode(bundle, x, n);
  const pool = await EncoderPool.create(bundle, { workers: 2, provider: 'cpu', intraOpThreads: 1, maxBatchRows: 96 });
  try {
    assert.equal(pool.provider, 'cpu');
    assert.equal(pool.workers, 2);
    const got = await pool.encode(x, n);
    assert.deepEqual(x, copy, 'the input array is neither detached nor modified');
    assertSameRows(got, want, 0, n);
    for (let i = 0; i < n * L; i++) assert.equal(got.topCodes[i * M], got.codes[i], 'top_codes[.., 0] is the code');
    const one = await pool.encode(x.subarray(5 * D, 6 * D), 1);
    assertSameRows(one, want, 5, 1, 'single row from a subarray');
    const empty = await pool.encode(new Float32Array(0), 0);
    assert.equal(empty.codes.length, 0);
  } finally {
    await pool.close();
  }
});

test('a pool whose 2-thread sessions do not spin (spinWait false, as sidx index runs) encodes the same rows', async () => {
  const n = 300;
  const x = randomRows(n, D, 9);
  const want = await directEncode(bundle, x, n);
  const pool = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu', intraOpThreads: 2, spinWait: false });
  try {
    assertSameRows(await pool.encode(x, n), want, 0, n);
  } finally {
    await pool.close();
  }
});

test('concurrent encodes resolve with their own rows, in order; the queue length is visible', async () => {
  const n = 600;
  const x = randomRows(n, D, 8);
  const want = await directEncode(bundle, x, n);
  const pool = await EncoderPool.create(bundle, { workers: 2, provider: 'cpu', intraOpThreads: 1, maxBatchRows: 40 });
  try {
    const slices: [number, number][] = [];
    for (let start = 0; start < n;) {
      const len = 1 + ((start * 7919) % 97);
      slices.push([start, Math.min(len, n - start)]);
      start += len;
    }
    const pending = slices.map(([s, len]) => pool.encode(x.subarray(s * D, (s + len) * D), len));
    assert.ok(pool.queueLength > 0, 'chunks wait in the queue');
    assert.ok(pool.inFlight <= 2);
    let ticks = 0;
    const timer = setInterval(() => ticks++, 0);
    const results = await Promise.all(pending);
    clearInterval(timer);
    results.forEach((r, i) => assertSameRows(r, want, slices[i]![0], slices[i]![1], `slice ${i}`));
    assert.equal(pool.queueLength, 0);
    assert.equal(pool.inFlight, 0);
    assert.ok(ticks > 0, 'the event loop kept turning while encoding');
  } finally {
    await pool.close();
  }
});

test('wrong lengths fail with SIDX_ERR_DIMENSION; a closed pool refuses work', async () => {
  const pool = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu' });
  await assert.rejects(pool.encode(new Float32Array(D * 2 + 1), 2), (err: unknown) => {
    assert.ok(err instanceof SidxError);
    assert.equal(err.code, 'SIDX_ERR_DIMENSION');
    assert.equal(err.field, 'embedding');
    assert.match(err.message, /expected 2 × 32 = 64 floats, got 65/);
    return true;
  });
  await assert.rejects(pool.encode(new Float32Array(D), 1.5), encoderError(/expected/, 'SIDX_ERR_DIMENSION'));
  const inflight = assert.rejects(pool.encode(randomRows(50, D, 1), 50), encoderError(/closed/));
  await pool.close();
  await inflight;
  await assert.rejects(pool.encode(new Float32Array(D), 1), encoderError(/closed/));
});

test('provider cuda falls back to cpu with a warning saying why, and still encodes the same', async () => {
  const logs: [string, string][] = [];
  const pool = await EncoderPool.create(bundle, { workers: 2, provider: 'cuda', log: (l, m) => logs.push([l, m]) });
  try {
    const n = 64;
    const x = randomRows(n, D, 9);
    assertSameRows(await pool.encode(x, n), await directEncode(bundle, x, n), 0, n);
    if (pool.provider === 'cpu') {
      const warns = logs.filter(([l]) => l === 'warn');
      assert.equal(warns.length, 1, 'one warning, from the worker that probed CUDA');
      assert.match(warns[0]![1], /CUDA execution provider unavailable, falling back to CPU: .+/);
    } else {
      assert.equal(pool.provider, 'cuda');
    }
    assert.ok(logs.some(([l, m]) => l === 'info' && m.includes(`provider ${pool.provider}`)));
  } finally {
    await pool.close();
  }
});

test('a worker that dies fails its pending call with SIDX_ERR_ENCODER and is replaced', async () => {
  const logs: string[] = [];
  const pool = await EncoderPool.create(bundle, { workers: 2, provider: 'cpu', log: (_l, m) => logs.push(m) });
  try {
    const x = randomRows(10, D, 10);
    const before = pool[kPoolTestHooks].threadIds();
    pool[kPoolTestHooks].crashNext(0);
    await assert.rejects(pool.encode(x, 10), encoderError(/encoder worker died .*simulated encoder worker crash/));
    const want = await directEncode(bundle, x, 10);
    assertSameRows(await pool.encode(x, 10), want, 0, 10, 'after the crash');
    for (let i = 0; i < 100 && pool.workers < 2; i++) await new Promise((r) => setTimeout(r, 20));
    assert.equal(pool.workers, 2, 'replacement started');
    assert.notDeepEqual(pool[kPoolTestHooks].threadIds(), before);
    assert.ok(logs.some((m) => /starting a replacement/.test(m)));
    const big = randomRows(300, D, 11);
    assertSameRows(await pool.encode(big, 300), await directEncode(bundle, big, 300), 0, 300, 'both workers');
  } finally {
    await pool.close();
  }
});

test('ORT run errors become SIDX_ERR_ENCODER and the pool keeps working', async () => {
  // A graph that reshapes [N, 4] to [-1, 3] and back: ORT fails at run time unless 4N is a multiple of 3.
  const g = new GraphBuilder('bad');
  const x = g.input('embedding', 'float32', ['N', 4]);
  const y = g.op('Reshape', [g.op('Reshape', [x, g.int64([-1, 3])]), g.int64([-1, 4])]);
  const first = g.op('Cast', [g.op('ArgMin', [y], { axis: 1, keepdims: 1 })], { to: 7 });
  g.output(first, 'int64', ['N', 1], 'codes');
  g.output(g.op('Unsqueeze', [first, g.int64([2])]), 'int64', ['N', 1, 1], 'top_codes');
  g.output(g.op('Unsqueeze', [g.op('ReduceMin', [y], { axes: [1], keepdims: 1 }), g.int64([2])]), 'float32',
    ['N', 1, 1], 'top_distances');
  const { dir, cleanup } = tempDir();
  try {
    const b = await writeBundle(dir, {
      id: 'bad', method: 'rqkmeans', inputDim: 4, normalize: 'none', levels: 1, codebookSizes: [3], latentDim: 4,
      metric: 'l2', topM: 1, opset: 17,
    }, g.serialize());
    const pool = await EncoderPool.create(b, { workers: 1, provider: 'cpu' });
    try {
      await assert.rejects(pool.encode(new Float32Array(4), 1), encoderError(/encoder run failed: .*Reshape|shape/i));
      const ok = await pool.encode(Float32Array.from([3, 1, 2, 5, 0, 4, 9, 9, 9, 9, 9, 9]), 3);
      assert.deepEqual([...ok.codes], [1, 0, 0]);
      assert.deepEqual([...ok.topDistances], [1, 0, 9]);
    } finally {
      await pool.close();
    }
  } finally {
    cleanup();
  }
});

test('an encoder that does not match its manifest or is not ONNX fails create() with SIDX_ERR_MODEL_BUNDLE', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const wrongDim = await writeBundle(join(dir, 'a'), { ...bundle.manifest, inputDim: 16, latentDim: 16 },
      readFileSync(bundle.encoderPath));
    await assert.rejects(EncoderPool.create(wrongDim, { workers: 2, provider: 'cpu' }),
      encoderError(/encoder\.onnx: cannot be loaded: .*manifest inputDim is 16/, 'SIDX_ERR_MODEL_BUNDLE'));
    const garbage = await writeBundle(join(dir, 'b'), bundle.manifest, new TextEncoder().encode('not a model'));
    await assert.rejects(EncoderPool.create(garbage, { workers: 1, provider: 'cpu' }),
      encoderError(/cannot be loaded/, 'SIDX_ERR_MODEL_BUNDLE'));
    await assert.rejects(EncoderPool.create(bundle, { workers: 0, provider: 'cpu' }), encoderError(/workers/, 'SIDX_ERR_CONFIG'));
  } finally {
    cleanup();
  }
});

test('works in a process started the way bin/sidx.js starts (tsx register() API, no --import flag)', async () => {
  const entry = fileURLToPath(new URL('./fixtures/register-entry.mjs', import.meta.url));
  const n = 20;
  const { stdout } = await promisify(execFile)(process.execPath, [entry, bundle.dir, String(n), 'cuda'],
    { cwd: repoRoot, env: { ...process.env, NODE_OPTIONS: '' } });
  const res = JSON.parse(stdout.trim().split('\n').pop()!);
  assert.ok(!res.execArgv.join(' ').includes('tsx'), `no tsx in execArgv: ${res.execArgv}`);
  const want = await directEncode(bundle, randomRows(n, D, 42), n);
  assert.deepEqual(res.codes, [...want.codes]);
  if (res.provider === 'cpu') assert.ok(res.logs.some((m: string) => m.startsWith('warn: CUDA')));
  const inProcess = await runPool(bundle.dir, n, 'cpu');
  assert.deepEqual(inProcess.codes, res.codes);
});
