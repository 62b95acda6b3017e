import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, test } from 'node:test';

import { writeNpy } from '../../src/io/npy.ts';
import { expectedUniformCollisionRate, healthContextOf, sidHealth } from '../../src/train/health.ts';
import { sidQualityMetrics } from '../../src/train/metrics.ts';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix, rng } from '../helpers/random.ts';

const tmp = tempDir('sidx-health-');
after(() => tmp.cleanup());

/** n items, 2 levels of K codes: level 0 uniform over all K codes, level 1 over the first `used1` codes only. */
function codes(n: number, k: number, used1: number, seed: number): Int32Array {
  const rand = rng(seed);
  const out = new Int32Array(n * 2);
  for (let i = 0; i < n; i++) {
    out[2 * i] = i % k;
    out[2 * i + 1] = Math.floor(rand() * used1);
  }
  return out;
}

test('expected uniform collision rate: exact on a hand case, ~ n / 2C when the capacity is large', () => {
  // 2 items over 2 SIDs: distinct = 2 (1 - 1/4) = 1.5 expected, so 0.25 of the items collide.
  assert.ok(Math.abs(expectedUniformCollisionRate(2, [2]) - 0.25) < 1e-12);
  assert.equal(expectedUniformCollisionRate(1, [4]), 0);
  const n = 1585;
  const c = 64 ** 3;
  const e = expectedUniformCollisionRate(n, [64, 64, 64]);
  assert.ok(Math.abs(e - (n - 1) / (2 * c)) / e < 0.01, `${e}`);
  // 8 levels of 65536 (2^128 SIDs) stays finite and ~0.
  const huge = expectedUniformCollisionRate(1e7, new Array<number>(8).fill(65536));
  assert.ok(huge >= 0 && huge < 1e-20, `${huge}`);
});

test('a level using few of its codes gets a warning naming that level and the flag to change', () => {
  const m = sidQualityMetrics(codes(2000, 64, 7, 1), 2000, [64, 64]);
  const vae = sidHealth(m, { method: 'rqvae' });
  const util = vae.filter((w) => w.kind === 'utilisation');
  assert.equal(util.length, 1);
  assert.equal(util[0]!.level, 1);
  assert.match(util[0]!.message, /^level 2 uses 7 of 64 codes \(10\.9%, below 90\.0%\): change --steps or --codebook-size$/);
  assert.deepEqual(sidHealth(m, { method: 'rqkmeans', balanced: false })[0]!.flags, ['--balanced', '--codebook-size']);
  assert.deepEqual(sidHealth(m, { method: 'rqkmeans', balanced: true })[0]!.flags, ['--codebook-size']);
  assert.deepEqual(sidHealth(m, { method: 'vqvae' })[0]!.flags, ['--steps', '--codebook-size']);
  assert.deepEqual(sidHealth(m)[0]!.flags, ['--codebook-size']);
});

test('collisions far above the capacity warn; a healthy tokenization gets no warning', () => {
  // 2000 items over 64 x 64 = 4096 SIDs: uniform would collide ~20%; 64 x 2 codes (128 SIDs) collide ~94%.
  const collapsed = sidQualityMetrics(codes(2000, 64, 2, 2), 2000, [64, 64]);
  const warnings = sidHealth(collapsed, { method: 'rqvae' });
  const collision = warnings.find((w) => w.kind === 'collisions');
  assert.ok(collision !== undefined, JSON.stringify(warnings));
  assert.match(collision.message, /collision rate 9\d\.\d% \(\d+ distinct SIDs for 2000 items\) is far above the 2\d\.\d% that 2 x 64 codes allow/);
  assert.deepEqual(collision.flags, ['--steps', '--codebook-size', '--levels']);

  const healthy = sidQualityMetrics(codes(2000, 64, 64, 3), 2000, [64, 64]);
  assert.ok(healthy.perLevel.every((l) => l.utilisation === 1));
  assert.deepEqual(sidHealth(healthy, { method: 'rqvae' }), []);
  // Fewer items than codes: the level is judged against the codes it could use (min(K, items)).
  const small = sidQualityMetrics(Int32Array.from({ length: 10 }, (_, i) => i), 10, [256]);
  assert.deepEqual(sidHealth(small, { method: 'vqvae' }), []);
});

test('healthContextOf reads the method and --balanced from a manifest', () => {
  assert.deepEqual(healthContextOf({ method: 'rqkmeans', training: { balanced: { rounds: 5 } } }), { method: 'rqkmeans', balanced: true });
  assert.deepEqual(healthContextOf({ method: 'rqkmeans', training: { balanced: false } }), { method: 'rqkmeans', balanced: false });
  assert.deepEqual(healthContextOf({ method: 'vqvae' }), { method: 'vqvae' });
});

/** 300 rows that are only 3 distinct vectors: no quantiser can use more than 3 codes of a level. */
async function threePoints(): Promise<string> {
  const distinct = randomMatrix(3, 16, 5);
  const rows = new Float32Array(300 * 16);
  for (let i = 0; i < 300; i++) rows.set(distinct.subarray((i % 3) * 16, (i % 3 + 1) * 16), i * 16);
  const path = join(tmp.dir, 'three.npy');
  await writeNpy(path, rows, [300, 16]);
  return path;
}

test('sidx train warns after a collapsed run (rqkmeans and rqvae) and not after a healthy one; sidx metrics prints the same', async (t) => {
  const collapsed = await threePoints();
  const kmOut = join(tmp.dir, 'km');
  const km = await runCli(t, ['train', '--method', 'rqkmeans', '--input', collapsed, '--out', kmOut, '--levels', '2', '--codebook-size', '8', '--top-m', '4']);
  assert.equal(km.code, 0, km.stderr);
  assert.match(km.stderr, /sidx train: warning: level 1 uses 3 of 8 codes \(37\.5%, below 90\.0%\): change --balanced or --codebook-size/);
  assert.match(km.stderr, /sidx train: warning: collision rate 99\.0% \(3 distinct SIDs for 300 items\) is far above/);

  const vaeOut = join(tmp.dir, 'vae');
  const vae = await runCli(t, ['train', '--method', 'rqvae', '--input', collapsed, '--out', vaeOut, '--levels', '2', '--codebook-size', '8',
    '--top-m', '4', '--hidden', '16', '--latent-dim', '4', '--steps', '4', '--checkpoint', 'none']);
  assert.equal(vae.code, 0, vae.stderr);
  assert.match(vae.stderr, /sidx train: warning: level 1 uses [1-3] of 8 codes .*change --steps or --codebook-size/);

  const metrics = await runCli(t, ['metrics', '--model', kmOut, '--input', collapsed, '--json', join(tmp.dir, 'm.json')]);
  assert.equal(metrics.code, 0, metrics.stderr);
  assert.match(metrics.stdout, /warning: km: level 1 uses 3 of 8 codes \(37\.5%, below 90\.0%\): change --balanced or --codebook-size/);

  const healthyInput = join(tmp.dir, 'random.npy');
  await writeNpy(healthyInput, randomMatrix(300, 16, 11), [300, 16]);
  const ok = await runCli(t, ['train', '--method', 'rqkmeans', '--input', healthyInput, '--out', join(tmp.dir, 'ok'), '--levels', '2', '--codebook-size', '8']);
  assert.equal(ok.code, 0, ok.stderr);
  assert.doesNotMatch(ok.stderr, /warning/);
  const okMetrics = await runCli(t, ['metrics', '--model', join(tmp.dir, 'ok'), '--input', healthyInput]);
  assert.doesNotMatch(okMetrics.stdout, /warning/);
});

test('sidx metrics --sids: a collapsed SID file gets the verdicts too', async (t) => {
  const path = join(tmp.dir, 'sids.json');
  const sids: Record<string, string[]> = {};
  for (let i = 0; i < 200; i++) sids[String(i)] = [`<a_${i % 16}>`, `<b_${i % 2}>`];
  await writeFile(path, JSON.stringify(sids));
  const run = await runCli(t, ['metrics', '--sids', path, '--sids-codebook-size', '16']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stdout, /warning: sids\.json: level 2 uses 2 of 16 codes \(12\.5%, below 90\.0%\): change --codebook-size/);
});
