import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { evalBeamsCommand } from '../../src/cli/eval-beams.ts';
import { parseBeamSid } from '../../src/eval/beam-hitrate.ts';
import { Catalog } from '../../src/store/catalog.ts';
import { ControlPlane } from '../../src/store/control-plane.ts';
import { tempDir } from '../helpers/paths.ts';

const SIZES = [4, 4, 4];
// Items in insertion (= index) order; a and b share a SID.
const ITEMS: [string, number[]][] = [['a', [0, 0, 0]], ['b', [0, 0, 0]], ['c', [1, 2, 3]], ['d', [3, 3, 3]], ['e', [2, 2, 2]]];

const BEAMS = [
  [[1, 2, 3], '0-0-0', 'C3C8195C16387'], // c, then a b, then d (AL-GR tokens: code + level x 8192)
  ['9-9-9', [1, 2], 'x', [2, 2, 2], 17], // four invalid SIDs (9-9-9 only holds no item without codebook sizes), then e
  [[0, 1, 1]], // valid but holds no item; the row's truth is empty
  { sids: ['0-0-0', '0-0-0'] }, // a, b, a, b
  ['0-0-0', '0-0-0', '2-2-2'], // a, b, a, b, e: repeats keep their slots (al_sid), so e is 5th
];
const TRUTH = [['a', 'd'], 'e', [], { truth: ['b', 'zz'] }, 'e;c'];
// As al_sid scores them, the row with an empty truth counts, as 0:
// HR@1 = (0 + 1 + 0 + 0 + 0) / 5; HR@2 = (1/2 + 1 + 0 + 1/2 + 0) / 5; HR@4 = (2/2 + 1 + 0 + 1/2 + 0) / 5.
// With --lenient-answers it is left out: the same sums over 4 rows.
const EXPECTED = { hr: { 1: 1 / 5, 2: 2 / 5, 4: 2.5 / 5 }, rows: 5, rowsWithoutTruth: 1, sids: 14, invalidSids: 4, emptySids: 1 };
const LENIENT = { ...EXPECTED, hr: { 1: 1 / 4, 2: 2 / 4, 4: 2.5 / 4 }, rows: 4 };
// Without --model an item table gives no codebook sizes, so '9-9-9' parses and holds no item.
const TABLE = { invalidSids: 3, emptySids: 2 };

function writeCase(dir: string): { beams: string; truth: string } {
  const beams = join(dir, 'beams.jsonl');
  const truth = join(dir, 'truth.jsonl');
  writeFileSync(beams, `${BEAMS.map((b) => JSON.stringify(b)).join('\n')}\n\n`);
  writeFileSync(truth, `${TRUTH.map((t) => JSON.stringify(t)).join('\n')}\n`);
  return { beams, truth };
}

function check(outPath: string, expected: typeof EXPECTED): void {
  const got = JSON.parse(readFileSync(outPath, 'utf8'));
  for (const [k, v] of Object.entries(expected.hr)) assert.ok(Math.abs(got.hr[k] - v) < 1e-12, `HR@${k}: ${got.hr[k]} vs ${v}`);
  assert.deepEqual(
    { rows: got.rows, rowsWithoutTruth: got.rowsWithoutTruth, sids: got.sids, invalidSids: got.invalidSids, emptySids: got.emptySids },
    { rows: expected.rows, rowsWithoutTruth: expected.rowsWithoutTruth, sids: expected.sids, invalidSids: expected.invalidSids, emptySids: expected.emptySids },
  );
}

test('eval-beams: HR@K through a service data directory (catalog order within a SID, invalid SIDs counted)', async () => {
  const tmp = tempDir();
  try {
    const control = ControlPlane.open(join(tmp.dir, 'control.sqlite'));
    const row = control.registerModel({ id: 'hand', method: 'rqkmeans', inputDim: 2, codebookSizes: SIZES, path: tmp.dir, sha256: 'f'.repeat(64) });
    control.activateModel(row.id);
    control.close();
    const catalog = Catalog.open(join(tmp.dir, 'catalog'));
    catalog.upsertBatch(row.version, ITEMS.map(([id, codes], i) => ({ id, codes: Int32Array.from(codes), vector: Float32Array.of(i, 1) })));
    await catalog.close();
    const { beams, truth } = writeCase(tmp.dir);
    const out = join(tmp.dir, 'hr.json');
    assert.equal(await evalBeamsCommand(['--beams', beams, '--truth', truth, '--k', '1,2,4', '--data-dir', tmp.dir, '--out', out]), 0);
    check(out, EXPECTED);
    assert.equal(await evalBeamsCommand(['--beams', beams, '--truth', truth, '--k', '1,2,4', '--data-dir', tmp.dir, '--out', out, '--lenient-answers']), 0);
    check(out, LENIENT);
  } finally {
    tmp.cleanup();
  }
});

test('eval-beams: the same through an item -> SID table (sidx encode JSONL)', async () => {
  const tmp = tempDir();
  try {
    const items = join(tmp.dir, 'items.jsonl');
    writeFileSync(items, ITEMS.map(([id, codes]) => JSON.stringify({ id, sid: codes.join('-'), codes })).join('\n'));
    const { beams, truth } = writeCase(tmp.dir);
    const out = join(tmp.dir, 'hr.json');
    assert.equal(await evalBeamsCommand(['--beams', beams, '--truth', truth, '--k', '1,2,4', '--items', items, '--out', out]), 0);
    check(out, { ...EXPECTED, ...TABLE });
    writeFileSync(truth, '["a"]\n');
    await assert.rejects(evalBeamsCommand(['--beams', beams, '--truth', truth, '--items', items]), /fewer rows/);
    // al_sid's generation output carries the truth in each line; a decoder-only model's beams are in _generated_new_text_.
    const alsid = join(tmp.dir, 'alsid.jsonl');
    writeFileSync(alsid, BEAMS.map((b, i) => JSON.stringify({
      _generated_new_text_: Array.isArray(b) ? b : b.sids, answer: [].concat(TRUTH[i] as never).flatMap((t: unknown) => (typeof t === 'object' && t !== null ? (t as { truth: string[] }).truth : [t])).join(';'),
    })).join('\n'));
    assert.equal(await evalBeamsCommand(['--beams', alsid, '--k', '1,2,4', '--items', items, '--out', out, '--decoder-only']), 0);
    check(out, { ...EXPECTED, ...TABLE });
  } finally {
    tmp.cleanup();
  }
});

test('parseBeamSid accepts arrays, text and AL-GR forms and rejects wrong levels or codes', () => {
  assert.deepEqual(parseBeamSid([1, 2, 3], SIZES), Int32Array.of(1, 2, 3));
  assert.deepEqual(parseBeamSid('1-2-3', SIZES), Int32Array.of(1, 2, 3));
  assert.deepEqual(parseBeamSid('C1C8194C16387', SIZES), Int32Array.of(1, 2, 3));
  assert.deepEqual(parseBeamSid('C1C6C11', SIZES, 4), Int32Array.of(1, 2, 3));
  for (const bad of [[1, 2], [1, 2, 4], [1, 2, -1], [1, 2, 1.5], '1-2', '1-2-4', 'C1C2C3', 'C1C6C11', '', null, 7, { codes: [1, 2, 3] }]) {
    assert.equal(parseBeamSid(bad, SIZES), undefined, JSON.stringify(bad));
  }
});
