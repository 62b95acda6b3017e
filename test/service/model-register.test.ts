/**
 * POST /v1/models and symlinks (issue 14): every bundle file must resolve inside model.registryDir, and a
 * model.json that is not JSON is refused without echoing its bytes. Links inside the registry still work.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/paths.ts';
import { startService, writeTestBundle, type RunningService } from '../helpers/service.ts';

const DIM = 8;
const tmp = tempDir();
const models = join(tmp.dir, 'models');
const outside = join(tmp.dir, 'outside');
const SECRET = 'root:x:0:0:root:/root:/bin/bash\n';
let svc: RunningService;

before(async () => {
  await writeTestBundle(join(models, 'a'), { dim: DIM, levels: 2, codebookSize: 8, seed: 1 });
  await writeTestBundle(join(models, 'b'), { dim: DIM, levels: 3, codebookSize: 4, seed: 2 });
  await writeTestBundle(outside, { dim: DIM, levels: 3, codebookSize: 4, seed: 3 });
  writeFileSync(join(tmp.dir, 'passwd'), SECRET);
  svc = await startService(join(tmp.dir, 'data'), join(models, 'a'), {}, { model: { registryDir: models } });
});

after(async () => {
  await svc.close();
  tmp.cleanup();
});

/** A bundle directory under the registry with a copy of b's model.json, and `links` (name -> target) as symlinks. */
function bundleWith(name: string, links: Record<string, string>, files: Record<string, string> = {}): void {
  const dir = join(models, name);
  mkdirSync(dir);
  for (const [file, text] of Object.entries(files)) writeFileSync(join(dir, file), text);
  for (const file of ['model.json', 'encoder.onnx']) {
    if (!(file in links) && !(file in files)) copyFileSync(join(models, 'b', file), join(dir, file));
  }
  for (const [file, target] of Object.entries(links)) symlinkSync(target, join(dir, file));
}

async function register(path: string) {
  const res = await svc.app.inject({ method: 'POST', url: '/v1/models', payload: { path } });
  return { status: res.statusCode, body: res.json(), raw: res.body };
}

const registered = async () => (await svc.app.inject({ method: 'GET', url: '/v1/models' })).json().models.map((m: { id: string }) => m.id);

test('a bundle file that links outside the registry is refused, and nothing is registered', async () => {
  const before = await registered();
  bundleWith('enc-out', { 'encoder.onnx': join(outside, 'encoder.onnx') });
  bundleWith('json-out', { 'model.json': join(outside, 'model.json') }, {});
  bundleWith('beam-out', { 'beam.onnx': join(outside, 'encoder.onnx') });
  bundleWith('dangling', { 'decoder.onnx': join(tmp.dir, 'nowhere') });
  for (const [path, file] of [['enc-out', 'encoder.onnx'], ['json-out', 'model.json'], ['beam-out', 'beam.onnx'], ['dangling', 'decoder.onnx']]) {
    const res = await register(path!);
    assert.equal(res.status, 400, `${path}: ${res.raw}`);
    assert.equal(res.body.code, 'SIDX_ERR_INVALID_INPUT');
    assert.equal(res.body.field, 'path');
    assert.ok(res.body.message.includes(join(models, path!, file!)), res.body.message);
    assert.ok(!res.body.message.includes(outside), 'the link target is not named');
  }
  assert.deepEqual(await registered(), before);
});

test('a model.json that is not JSON (here a link to a passwd file) is refused without a byte of its content', async () => {
  bundleWith('passwd', { 'model.json': join(tmp.dir, 'passwd') });
  bundleWith('garbled', {}, { 'model.json': `{"id": "x", ${SECRET}` });
  for (const path of ['passwd', 'garbled']) {
    const res = await register(path);
    assert.equal(res.status, 400, res.raw);
    assert.equal(res.body.field, 'path');
    for (const piece of ['root', 'bin/bash', 'x:0', '"r', "'r"]) assert.ok(!res.raw.includes(piece), `${path}: ${piece} in ${res.raw}`);
  }
  assert.match((await register('garbled')).body.message, /model\.json: is not valid JSON/);
});

test('links that stay inside the registry are followed', async () => {
  bundleWith('inner', { 'encoder.onnx': join(models, 'b', 'encoder.onnx') });
  const res = await register('inner');
  assert.equal(res.status, 201, res.raw);
  assert.ok((await registered()).includes(res.body.id));
});
