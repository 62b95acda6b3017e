import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { BEAM_ENCODER_DIGEST_KEY, buildBeamGraph } from '../../src/numeric/beam-graph.ts';
import { buildResidualEncoder } from '../../src/numeric/residual-encoder.ts';
import { loadBundle, writeBundle } from '../../src/tokenizer/bundle.ts';
import { EncoderPool, kPoolTestHooks, type BeamLevel, type BeamResult } from '../../src/tokenizer/encoder-pool.ts';
import { SidxError } from '../../src/errors.ts';
import { repoRoot, tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';

const bytes = (a: Int32Array | Float32Array) => Buffer.from(a.buffer, a.byteOffset, a.byteLength);

/** The same own codes and level shapes; then `check` compares each level of `got` with `want`'s. */
function assertSameLevels(got: BeamResult, want: BeamResult, what: string, check: (lv: BeamLevel, w: BeamLevel, at: string) => void) {
  assert.deepEqual(got.codes, want.codes, `${what}: the encoder's own codes`);
  assert.equal(got.levels.length, want.levels.length);
  got.levels.forEach((lv, l) => {
    const w = want.levels[l]!;
    assert.deepEqual([lv.level, lv.width], [w.level, w.width], `${what} level ${l + 1}`);
    check(lv, w, `${what} level ${l + 1}`);
  });
}

/** Every code and score of `got` equals `want` bit for bit. */
function assertSameBeam(got: BeamResult, want: BeamResult, what: string) {
  assertSameLevels(got, want, what, (lv, w, at) => {
    assert.ok(bytes(lv.codes).equals(bytes(w.codes)), `${at}: codes`);
    assert.ok(bytes(lv.scores).equals(bytes(w.scores)), `${at}: scores, bit for bit`);
  });
}

/**
 * The native beam against ORT's: the same own codes, scores within float rounding (the addon sums in another order
 * than ORT's kernels), and the same prefixes except where two scores are that close (a near-tie may swap).
 */
function assertSameBeamNear(got: BeamResult, want: BeamResult, what: string) {
  const tol = (s: number) => 1e-5 * Math.max(1, Math.abs(s));
  assertSameLevels(got, want, what, (lv, w, at) => {
    lv.scores.forEach((s, i) => assert.ok(Math.abs(s - w.scores[i]!) <= tol(s), `${at} score ${i}: ${s} vs ${w.scores[i]}`));
    const rows = lv.scores.length / lv.width;
    for (let r = 0; r < rows; r++) {
      for (let b = 0; b < lv.width; b++) {
        const start = (r * lv.width + b) * lv.level;
        if (lv.codes.subarray(start, start + lv.level).every((c, j) => c === w.codes[start + j])) continue;
        const s = lv.scores[r * lv.width + b]!;
        const tie = b === lv.width - 1 || [b - 1, b + 1].some((o) => o >= 0 && o < lv.width && Math.abs(lv.scores[r * lv.width + o]! - s) <= 2 * tol(s));
        assert.ok(tie, `${at} row ${r} prefix ${b} differs without a near-tie`);
      }
    }
  });
}

for (const model of ['models/default', 'models/rqkmeans-3x256']) {
  test(`${model}: beams through the native beam and the merged model equal beams as two ORT runs (single, coalesced and batched calls)`, async () => {
    const bundle = await loadBundle(join(repoRoot, model));
    const dim = bundle.manifest.inputDim;
    const native = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu', intraOpThreads: 1 });
    const merged = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu', intraOpThreads: 1, beamModel: 'merged' });
    const separate = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu', intraOpThreads: 1, beamModel: 'separate' });
    try {
      assert.deepEqual([native.beamMode, merged.beamMode, separate.beamMode], ['native', 'merged', 'separate']);
      const n = 12;
      const x = randomMatrix(n, dim, 5);
      const row = (i: number) => x.subarray(i * dim, (i + 1) * dim);
      for (const [width, normWeight] of [[32, 1], [7, 0], [400, 1]] as const) {
        const at = `width ${width} normWeight ${normWeight}`;
        const want = await separate.beam(x, n, width, normWeight);
        assertSameBeam(await merged.beam(x, n, width, normWeight), want, `batch ${at}`);
        assertSameBeamNear(await native.beam(x, n, width, normWeight), want, `native batch ${at}`);
        for (const pool of [merged, native]) {
          const release = pool[kPoolTestHooks].hold();
          const pending = Array.from({ length: n }, (_, i) => pool.beam(row(i), 1, width, normWeight));
          release();
          const one = await Promise.all(pending);
          for (let i = 0; i < n; i++) {
            const single = await separate.beam(row(i), 1, width, normWeight);
            if (pool === merged) assertSameBeam(one[i]!, single, `row ${i} ${at}`);
            else assertSameBeamNear(one[i]!, single, `native row ${i} ${at}`);
          }
        }
      }
    } finally {
      await Promise.all([native.close(), merged.close(), separate.close()]);
    }
  });
}

test('a worker that dies during a beam fails that call and its replacement answers beams through the native beam', async () => {
  const bundle = await loadBundle(join(repoRoot, 'models/rqkmeans-3x256'));
  const dim = bundle.manifest.inputDim;
  const logs: string[] = [];
  const pool = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu', intraOpThreads: 1, log: (l, m) => logs.push(`${l}: ${m}`) });
  try {
    const x = randomMatrix(1, dim, 9);
    const want = await pool.beam(x, 1, 16, 1);
    pool[kPoolTestHooks].crashNext(0);
    await assert.rejects(pool.beam(x, 1, 16, 1), (err: unknown) =>
      err instanceof SidxError && err.code === 'SIDX_ERR_ENCODER' && /encoder worker died/.test(err.message));
    assertSameBeam(await pool.beam(x, 1, 16, 1), want, 'after the replacement');
    assert.equal(pool.beamMode, 'native');
    assert.ok(logs.some((m) => m.startsWith('warn: encoder worker died')), logs.join('\n'));
  } finally {
    await pool.close();
  }
});

test('a beam.onnx that cannot be merged with its encoder is run apart, with a warning', async () => {
  const { dir, cleanup } = tempDir();
  const logs: string[] = [];
  try {
    const dim = 6;
    const codebooks = [randomMatrix(8, dim, 1), randomMatrix(8, dim, 2, 0.5)];
    const encoder = buildResidualEncoder({ codebooks, dim, normalize: 'l2', topM: 2 });
    const metadata = { [BEAM_ENCODER_DIGEST_KEY]: createHash('sha256').update(encoder).digest('hex') };
    // Valid at opset 16 too, but the two graphs' opsets then differ: they are not merged.
    const beam = buildBeamGraph({ codebooks, inputDim: dim, normalize: 'l2', opset: 16, metadata });
    const bundle = await writeBundle(dir, {
      id: 'opsets', method: 'rqkmeans', inputDim: dim, normalize: 'l2', levels: 2, codebookSizes: [8, 8], latentDim: dim,
      metric: 'ip', topM: 2, opset: 17,
    }, encoder, undefined, beam);
    const pool = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu', log: (l, m) => logs.push(`${l}: ${m}`) });
    try {
      assert.equal(pool.beamMode, 'separate');
      assert.ok(logs.some((m) => /^warn: beam queries take two ORT runs: .*opset 16/.test(m)), logs.join('\n'));
      const x = randomMatrix(3, dim, 3);
      const res = await pool.beam(x, 3, 4, 1);
      assert.deepEqual(res.codes, (await pool.encode(x, 3)).codes);
      assert.deepEqual(res.levels.map((l) => [l.width, l.codes.length, l.scores.length]), [[4, 12, 12], [4, 24, 12]]);
    } finally {
      await pool.close();
    }
  } finally {
    cleanup();
  }
});

test('beamModel none opens no beam session: encode answers as with beams, beam() is refused', async () => {
  const bundle = await loadBundle(join(repoRoot, 'models/rqkmeans-3x256'));
  const dim = bundle.manifest.inputDim;
  const plain = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu', intraOpThreads: 1, beamModel: 'none' });
  const full = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu', intraOpThreads: 1 });
  try {
    assert.deepEqual([plain.hasBeam, plain.beamMode, full.hasBeam, full.beamMode], [false, 'none', true, 'native']);
    const x = randomMatrix(9, dim, 4);
    assert.deepEqual(await plain.encode(x, 9), await full.encode(x, 9));
    await assert.rejects(plain.beam(x, 9, 8, 0), (err: unknown) =>
      err instanceof SidxError && err.code === 'SIDX_ERR_INVALID_INPUT' && /no beam\.onnx loaded \(beamModel none\)/.test(err.message));
  } finally {
    await Promise.all([plain.close(), full.close()]);
  }
});
