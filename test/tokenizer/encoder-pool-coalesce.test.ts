/** Under load, queued small calls of the same kind share one worker run; each still gets exactly its own rows. Codes-only runs. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildCodesModel } from '../../src/numeric/codes-model.ts';
import { encoderLane } from '../../src/tokenizer/encoder-session.mjs';
import { EncoderPool, kPoolTestHooks, type BeamResult } from '../../src/tokenizer/encoder-pool.ts';
import { loadBundle, type ModelBundle } from '../../src/tokenizer/bundle.ts';
import { tempDir, repoRoot } from '../helpers/paths.ts';
import { directEncode, randomRows, writeEncoderBundle, SPEC } from './fixtures/encoder-bundle.ts';

const D = SPEC.dim;
let tmp: { dir: string; cleanup: () => void };
let bundle: ModelBundle;

before(async () => {
  tmp = tempDir('sidx-pool-coalesce-');
  bundle = await writeEncoderBundle(join(tmp.dir, 'model'));
});
after(() => tmp.cleanup());

test('queued single-row encodes run as one coalesced run and resolve with their own rows', async () => {
  const n = 20;
  const x = randomRows(n, D, 11);
  const want = await directEncode(bundle, x, n);
  const pool = await EncoderPool.create(bundle, { workers: 2, provider: 'cpu', intraOpThreads: 1 });
  try {
    const hooks = pool[kPoolTestHooks];
    const release = hooks.hold();
    const runs0 = hooks.runs();
    const pending = Array.from({ length: n }, (_, i) => pool.encode(x.subarray(i * D, (i + 1) * D), 1));
    assert.equal(pool.queueLength, n);
    release();
    const got = await Promise.all(pending);
    assert.ok(hooks.runs() - runs0 <= 2, `${hooks.runs() - runs0} runs for ${n} queued calls`);
    const L = SPEC.sizes.length;
    const M = SPEC.topM;
    got.forEach((r, i) => {
      assert.deepEqual(r.codes, want.codes.subarray(i * L, (i + 1) * L), `codes of call ${i}`);
      assert.deepEqual(r.topCodes, want.topCodes.subarray(i * L * M, (i + 1) * L * M), `top codes of call ${i}`);
    });
    assert.equal(pool.inFlight, 0);
  } finally {
    await pool.close();
  }
});

test('the chunks of one split batch run on all free workers, not coalesced into one run', async () => {
  const n = 64; // two 32-row chunks on two workers
  const x = randomRows(n, D, 13);
  const want = await directEncode(bundle, x, n);
  const pool = await EncoderPool.create(bundle, { workers: 2, provider: 'cpu', intraOpThreads: 1 });
  try {
    const hooks = pool[kPoolTestHooks];
    const runs0 = hooks.runs();
    const got = await pool.encode(x, n);
    assert.equal(hooks.runs() - runs0, 2);
    assert.deepEqual(got.codes, want.codes);
  } finally {
    await pool.close();
  }
});

test('queued beams coalesce only with the same width and scoring; results equal one call at a time', async () => {
  const beamBundle = await loadBundle(join(repoRoot, 'models/rqkmeans-3x256'));
  const dim = beamBundle.manifest.inputDim;
  const pool = await EncoderPool.create(beamBundle, { workers: 1, provider: 'cpu', intraOpThreads: 1 });
  try {
    const calls = [
      ...Array.from({ length: 6 }, (_, i) => ({ row: i, width: 16, normWeight: 1 })),
      { row: 6, width: 8, normWeight: 1 }, { row: 7, width: 16, normWeight: 0 }, { row: 8, width: 16, normWeight: 1 },
    ];
    const x = randomRows(calls.length, dim, 12);
    const one = (c: (typeof calls)[number]) => pool.beam(x.subarray(c.row * dim, (c.row + 1) * dim), 1, c.width, c.normWeight);
    const want: BeamResult[] = [];
    for (const c of calls) want.push(await one(c));
    const hooks = pool[kPoolTestHooks];
    const release = hooks.hold();
    const runs0 = hooks.runs();
    const pending = calls.map(one);
    release();
    const got = await Promise.all(pending);
    // One worker: the six width-16 distance beams share a run; then one run each for the width-8, the inner-product
    // and the last width-16 call (only calls queued right behind each other coalesce, so the order is kept).
    assert.equal(hooks.runs() - runs0, 4);
    got.forEach((res, i) => res.levels.forEach((lv, l) => {
      assert.deepEqual(res.codes, want[i]!.codes, `call ${i}: the encoder's own codes`);
      assert.equal(lv.width, want[i]!.levels[l]!.width, `call ${i} level ${l + 1} width`);
      assert.deepEqual(lv.codes, want[i]!.levels[l]!.codes, `call ${i} level ${l + 1} codes`);
      const ws = want[i]!.levels[l]!.scores;
      assert.equal(lv.scores.length, ws.length);
      lv.scores.forEach((v, j) => assert.ok(Math.abs(v - ws[j]!) <= 1e-5 * Math.max(1, Math.abs(ws[j]!)), `call ${i} level ${l + 1} score ${j}`));
    }));
  } finally {
    await pool.close();
  }
});

test('codes-only encodes answer the codes alone, coalesce only with their own kind, and split batches like full encodes', async () => {
  const n = 12;
  const x = randomRows(n, D, 21);
  const want = await directEncode(bundle, x, n);
  const L = SPEC.sizes.length;
  const M = SPEC.topM;
  const pool = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu', intraOpThreads: 1 });
  try {
    const hooks = pool[kPoolTestHooks];
    const release = hooks.hold();
    const runs0 = hooks.runs();
    // Four codes-only calls, four full ones, four codes-only: three runs on one worker, each of one kind.
    const kinds = Array.from({ length: n }, (_, i) => i < 4 || i >= 8);
    const pending = kinds.map((codesOnly, i) => pool.encode(x.subarray(i * D, (i + 1) * D), 1, { codesOnly }));
    release();
    const got = await Promise.all(pending);
    assert.equal(hooks.runs() - runs0, 3);
    got.forEach((r, i) => {
      assert.deepEqual(r.codes, want.codes.subarray(i * L, (i + 1) * L), `codes of call ${i}`);
      if (kinds[i]) assert.deepEqual([r.topCodes.length, r.topDistances.length], [0, 0], `call ${i}: codes only`);
      else assert.deepEqual(r.topCodes, want.topCodes.subarray(i * L * M, (i + 1) * L * M), `top codes of call ${i}`);
    });
  } finally {
    await pool.close();
  }
  const big = 96; // three 32-row chunks over two workers, concatenated back
  const y = randomRows(big, D, 22);
  const two = await EncoderPool.create(bundle, { workers: 2, provider: 'cpu', intraOpThreads: 1 });
  try {
    const all = await two.encode(y, big, { codesOnly: true });
    assert.deepEqual(all.codes, (await directEncode(bundle, y, big)).codes);
    assert.deepEqual([all.topCodes.length, all.topDistances.length], [0, 0]);
    assert.deepEqual((await two.encode(new Float32Array(0), 0, { codesOnly: true })).codes, new Int32Array(0));
  } finally {
    await two.close();
  }
});

test("a lane answers 'codes' requests from its codes model, and from encoder.onnx without one it can open", async () => {
  const other = await writeEncoderBundle(join(tmp.dir, 'other'), 5); // same shapes, other codebooks
  const n = 40;
  const x = randomRows(n, D, 23);
  const [own, others] = [await directEncode(bundle, x, n), await directEncode(other, x, n)];
  assert.notDeepEqual(own.codes, others.codes);
  const params = { encoderPath: bundle.encoderPath, provider: 'cpu' as const, intraOpThreads: 1, inputDim: D, levels: SPEC.sizes.length, topM: SPEC.topM, codebookSizes: SPEC.sizes };
  // A model ORT refuses leaves 'codes' requests on encoder.onnx, as without one.
  const refused = Uint8Array.of(1, 2, 3);
  for (const [codesModel, want] of [[buildCodesModel(readFileSync(other.encoderPath)), others], [undefined, own], [refused, own]] as const) {
    const lane = encoderLane({ ...params, codesModel });
    await lane.open();
    try {
      const reply = await lane.run({ type: 'codes', id: 1, data: x, n });
      assert.equal(reply.type, 'result');
      assert.deepEqual('codes' in reply && [reply.codes, reply.topCodes.length], [want.codes, 0]);
    } finally {
      await lane.release();
    }
  }
});
