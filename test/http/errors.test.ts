import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { ErrorCodes } from '../../src/errors.ts';
import { fieldFromPointer, statusOf } from '../../src/http/errors.ts';
import { repoRoot } from '../helpers/paths.ts';

test('every error code has an HTTP status and a row in docs/errors.md, and the doc lists no other code', () => {
  const doc = readFileSync(join(repoRoot, 'docs', 'errors.md'), 'utf8');
  const documented = new Map<string, number>();
  // The first status is the code's own (statusOf); Fastify's client errors (413, 414, 415) follow it in its row.
  for (const m of doc.matchAll(/^\| `(SIDX_ERR_[A-Z0-9_]+)` \| (\d{3})((?:, \d{3})*) \|/gm)) {
    documented.set(m[1]!, Number(m[2]));
    if (m[3]) assert.equal(m[1], 'SIDX_ERR_INVALID_INPUT', `${m[1]}: only Fastify's client errors share a code`);
  }
  for (const code of Object.keys(ErrorCodes)) {
    assert.ok(code in statusOf, `${code} has no status in src/http/errors.ts`);
    assert.equal(documented.get(code), statusOf[code as keyof typeof statusOf], `${code}: docs/errors.md status differs`);
  }
  assert.deepEqual([...documented.keys()].sort(), Object.keys(ErrorCodes).sort());
});

test('JSON pointers become readable field names', () => {
  assert.equal(fieldFromPointer('/items/3/embedding'), 'items[3].embedding');
  assert.equal(fieldFromPointer('/embedding/7'), 'embedding[7]');
  assert.equal(fieldFromPointer(''), '');
});
