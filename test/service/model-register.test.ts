/**
 * POST /v1/models and symlinks (issue 14): every bundle file must resolve inside model.registryDir, and a
 * model.json that is not JSON is refused without echoing its bytes. Links inside the registry still work.
 * Errors that help: a path not under the registry names it and suggests the bundle a tail of the path names;
 * an unknown model id lists the registered ones.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { copyFileSync, mkdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { tempDir } from '../helpers/paths.ts';
import { unknownModel } from '../../src/service/model-space.ts';
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

test('a path not under the registry: the answer names the registry and suggests the bundle a tail of the path names', async () => {
  const before = await registered();
  for (const path of ['models/b', './models/b', '/srv/elsewhere/models/b', 'other/models/./b']) {
    const res = await register(path);
    assert.deepEqual([res.status, res.body.code, res.body.field], [400, 'SIDX_ERR_INVALID_INPUT', 'path'], res.raw);
    assert.equal(res.body.message, `no bundle directory ${JSON.stringify(path)} under the models directory ${models} `
      + '(model.registryDir; paths are relative to it): did you mean "b"?');
  }
  // No suggestion for a tail that is no bundle, or a bundle only outside the registry (also through a link).
  symlinkSync(tmp.dir, join(models, 'up'));
  for (const path of ['models/nothing', 'models/a/..', '../outside', 'x/outside', 'up/outside', 'models/up/outside']) {
    const res = await register(path);
    assert.equal(res.status, 400, res.raw);
    assert.equal(res.body.message, `no bundle directory ${JSON.stringify(path)} under the models directory ${models} (model.registryDir; paths are relative to it)`);
  }
  assert.deepEqual(await registered(), before);
  const suggested = await register('b');
  assert.ok(suggested.status === 201 || suggested.status === 200, `the suggested name registers: ${suggested.raw}`);
});

test('an unknown model id: the answer lists the registered ids, those containing it first', async () => {
  const ids: string[] = await registered();
  assert.ok(ids.length >= 2, ids.join());
  for (const [url, payload, field] of [['/v1/reindex', { model: 'nope' }, 'model'], ['/v1/models/nope/activate', undefined, 'id']] as const) {
    const res = await svc.app.inject({ method: 'POST', url, payload: payload as never });
    assert.deepEqual([res.statusCode, res.json().code, res.json().field], [400, 'SIDX_ERR_UNKNOWN_MODEL', field], res.body);
    assert.equal(res.json().message, `no model "nope" (registered: ${ids.join(', ')}; POST /v1/models registers one)`);
  }
  const many = Array.from({ length: 12 }, (_, i) => `model-${i}`).concat(['default-rqvae-3x256']);
  assert.equal(unknownModel('Default', many, 'model').message, 'no model "Default" (registered: default-rqvae-3x256, model-0, model-1, '
    + 'model-2, model-3, model-4, model-5, model-6 and 5 more (GET /v1/models); POST /v1/models registers one)');
  assert.equal(unknownModel('x', [], 'model').message, 'no model "x" (none registered; POST /v1/models registers one)');
});
