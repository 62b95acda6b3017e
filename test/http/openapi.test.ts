import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { renderOpenApi } from '../../src/http/app.ts';
import { loadConfig } from '../../src/config.ts';
import { repoRoot } from '../helpers/paths.ts';

test('openapi/openapi.json matches the route schemas (regenerate: npx sidx openapi --out openapi/openapi.json)', async () => {
  const committed = readFileSync(join(repoRoot, 'openapi', 'openapi.json'), 'utf8');
  const generated = await renderOpenApi(loadConfig({}, {}));
  assert.equal(committed, generated);
});

test('every /v1 route declares a request schema and 2xx + 400 responses', async () => {
  const doc = JSON.parse(await renderOpenApi(loadConfig({}, {})));
  const paths = Object.keys(doc.paths).sort();
  assert.deepEqual(paths, [
    '/healthz', '/metrics', '/readyz', '/v1/encode', '/v1/items', '/v1/items/delete', '/v1/items/{id}', '/v1/jobs/{id}', '/v1/jobs/{id}/cancel',
    '/v1/models', '/v1/models/{id}/activate', '/v1/reindex', '/v1/retrieve', '/v1/retrieve/batch', '/v1/sids/next', '/v1/sids/trie',
  ]);
  for (const [path, ops] of Object.entries<Record<string, { responses: Record<string, unknown>; requestBody?: unknown; parameters?: unknown }>>(doc.paths)) {
    if (!path.startsWith('/v1')) continue;
    for (const [method, op] of Object.entries(ops)) {
      assert.ok(Object.keys(op.responses).some((code) => /^2\d\d$/.test(code)), `${method} ${path}: a 2xx response`);
      assert.ok(op.responses['400'], `${method} ${path}: 400`);
      assert.ok(op.requestBody || op.parameters, `${method} ${path}: request schema`);
    }
  }
});
