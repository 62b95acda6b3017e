import { test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import {
  loadBundle, writeBundle, validateManifest, type ModelManifest,
} from '../../src/tokenizer/bundle.ts';
import { SidxError } from '../../src/errors.ts';
import { tempDir } from '../helpers/paths.ts';

const manifest = (): ModelManifest => ({
  id: 'rq-test', method: 'rqkmeans', inputDim: 8, normalize: 'l2', levels: 3, codebookSizes: [16, 16, 8],
  latentDim: 8, metric: 'ip', topM: 4, opset: 17,
  training: { source: 'unit test', command: 'sidx train rqkmeans', seed: 1, dataDigest: 'a'.repeat(64), epochs: 3 },
  metrics: { collisionRate: 0.01 },
});

function bundleError(file: string, field: string | undefined, pattern: RegExp) {
  return (err: unknown) => {
    assert.ok(err instanceof SidxError, String(err));
    assert.equal(err.code, 'SIDX_ERR_MODEL_BUNDLE');
    assert.equal(err.field, field);
    assert.ok(err.message.includes(file), `message names ${file}: ${err.message}`);
    if (field !== undefined) assert.ok(err.message.includes(field), `message names ${field}: ${err.message}`);
    assert.match(err.message, pattern);
    return true;
  };
}

test('writeBundle then loadBundle round-trips; sha256 matches `sha256sum ... | sha256sum`', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const b = await writeBundle(join(dir, 'm'), manifest(), new Uint8Array([1, 2, 3]));
    assert.deepEqual(b.manifest, manifest());
    assert.equal(b.encoderPath, join(dir, 'm', 'encoder.onnx'));
    assert.equal(b.decoderPath, undefined);
    assert.deepEqual(readdirSync(join(dir, 'm')).sort(), ['encoder.onnx', 'model.json'], 'no temp files left');
    const again = await loadBundle(join(dir, 'm'));
    assert.equal(again.sha256, b.sha256);
    try {
      const shell = execFileSync('bash', ['-c', 'sha256sum model.json encoder.onnx | sha256sum'], { cwd: join(dir, 'm') });
      assert.equal(shell.toString().split(' ')[0], b.sha256);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    }
    const withDecoder = await writeBundle(join(dir, 'm'), manifest(), new Uint8Array([1, 2, 3]), new Uint8Array([9]));
    assert.equal(withDecoder.decoderPath, join(dir, 'm', 'decoder.onnx'));
    assert.notEqual(withDecoder.sha256, b.sha256);
    assert.equal(withDecoder.encoderSha256, b.encoderSha256);
    const without = await writeBundle(join(dir, 'm'), manifest(), new Uint8Array([1, 2, 3]));
    assert.equal(without.decoderPath, undefined, 'a stale decoder.onnx is removed');
    assert.equal(without.sha256, b.sha256);
  } finally {
    cleanup();
  }
});

test('missing model.json, bad JSON and missing encoder.onnx name the file', async () => {
  const { dir, cleanup } = tempDir();
  try {
    await assert.rejects(loadBundle(dir), bundleError(join(dir, 'model.json'), undefined, /not found/));
    writeFileSync(join(dir, 'model.json'), '{ "id": ');
    await assert.rejects(loadBundle(dir), bundleError(join(dir, 'model.json'), undefined, /not valid JSON/));
    writeFileSync(join(dir, 'model.json'), JSON.stringify(manifest()));
    await assert.rejects(loadBundle(dir), bundleError(join(dir, 'encoder.onnx'), undefined, /not found/));
    writeFileSync(join(dir, 'encoder.onnx'), '');
    await assert.rejects(loadBundle(dir), bundleError(join(dir, 'encoder.onnx'), undefined, /empty/));
    writeFileSync(join(dir, 'encoder.onnx'), 'x');
    assert.equal((await loadBundle(dir)).manifest.id, 'rq-test');
  } finally {
    cleanup();
  }
});

test('every manifest field is validated, with the field named', async () => {
  const cases: [string, (m: Record<string, unknown>) => void, RegExp][] = [
    ['id', (m) => { m.id = '../escape'; }, /must match/],
    ['id', (m) => { delete m.id; }, /must match/],
    ['method', (m) => { m.method = 'pq'; }, /one of "rqkmeans", "rqvae", "vqvae"/],
    ['inputDim', (m) => { m.inputDim = 0; }, /integer in \[1/],
    ['inputDim', (m) => { m.inputDim = '512'; }, /integer/],
    ['normalize', (m) => { m.normalize = 'L2'; }, /one of "l2", "none"/],
    ['levels', (m) => { m.levels = 2.5; }, /integer/],
    ['codebookSizes', (m) => { m.codebookSizes = [16, 16]; }, /has 2 entries, levels is 3/],
    ['codebookSizes', (m) => { m.codebookSizes = 16; }, /array/],
    ['codebookSizes[1]', (m) => { m.codebookSizes = [16, -1, 8]; }, /integer/],
    ['latentDim', (m) => { m.latentDim = 4; }, /must equal inputDim \(8\) for method "rqkmeans"/],
    ['metric', (m) => { m.metric = 'cosine'; }, /one of "ip", "l2"/],
    ['topM', (m) => { m.topM = 9; }, /integer in \[1, 8\]/],
    ['opset', (m) => { m.opset = 11; }, />= 13/],
    ['beamNormWeight', (m) => { m.beamNormWeight = 1.5; }, /number in \[0, 1\], got 1\.5/],
    ['beamNormWeight', (m) => { m.beamNormWeight = '0.5'; }, /number in \[0, 1\]/],
    ['training', (m) => { m.training = 'yesterday'; }, /must be an object/],
    ['training.command', (m) => { delete (m.training as Record<string, unknown>).command; }, /non-empty string/],
    ['training.seed', (m) => { (m.training as Record<string, unknown>).seed = '1'; }, /integer/],
    ['training.dataDigest', (m) => { (m.training as Record<string, unknown>).dataDigest = 'abc'; }, /sha256/],
    ['metrics', (m) => { m.metrics = [1]; }, /must be an object/],
    ['extra', (m) => { m.extra = true; }, /not a known manifest field/],
  ];
  const { dir, cleanup } = tempDir();
  try {
    writeFileSync(join(dir, 'encoder.onnx'), 'x');
    for (const [field, mutate, pattern] of cases) {
      const m = structuredClone(manifest()) as unknown as Record<string, unknown>;
      mutate(m);
      writeFileSync(join(dir, 'model.json'), JSON.stringify(m));
      await assert.rejects(loadBundle(dir), bundleError(join(dir, 'model.json'), field, pattern), field);
      assert.throws(() => validateManifest(m, 'x/model.json'), bundleError('x/model.json', field, pattern));
    }
    const vae = { ...manifest(), method: 'rqvae', latentDim: 4 };
    assert.equal(validateManifest(vae).latentDim, 4, 'rqvae may have a latent dim other than inputDim');
    const bare: Record<string, unknown> = { ...manifest() };
    delete bare.training;
    delete bare.metrics;
    assert.deepEqual(validateManifest(bare), bare, 'training and metrics are optional');
    for (const w of [0, 0.5, 1]) assert.equal(validateManifest({ ...manifest(), beamNormWeight: w }).beamNormWeight, w);
  } finally {
    cleanup();
  }
});

test('writeBundle validates before touching the directory', async () => {
  const { dir, cleanup } = tempDir();
  try {
    const bad = { ...manifest(), levels: 2 };
    await assert.rejects(writeBundle(join(dir, 'b'), bad, new Uint8Array([1])), bundleError(join(dir, 'b'), 'codebookSizes', /entries/));
    assert.equal(existsSync(join(dir, 'b')), false);
    await writeBundle(join(dir, 'b'), manifest(), new Uint8Array([1]));
    assert.equal(JSON.parse(readFileSync(join(dir, 'b', 'model.json'), 'utf8')).id, 'rq-test');
    rmSync(join(dir, 'b', 'encoder.onnx'));
    await assert.rejects(loadBundle(join(dir, 'b')), /encoder\.onnx/);
  } finally {
    cleanup();
  }
});
