/**
 * `sidx eval-beams` pinned to FORGE al_sid's algr/calc_hr.py on the fixtures in test/fixtures/eval-beams:
 * - items.jsonl: 7 items of a 3 x 64 catalog (a and b share a SID), in `sidx encode --out FILE.jsonl` form;
 * - t5.jsonl: al_sid generation lines carrying both `_generated_text_` and `_generated_new_text_` (T5 output),
 *   AL-GR tokens code + level x 8192, answers "x; y", "g;c;", ";", "", "\x1cc\u00a0", "\ufeffe", "  a ; b  ",
 *   blank lines of NBSP and \x1c, a line wrapped in \f ... \x1c, a token with a trailing space, one written with
 *   offsets 0/64/128 and one with a code outside the 64-code codebook, a SID repeated;
 * - offset64.jsonl: tokens written with the sum of the earlier codebook sizes (0, 64, 128) as offsets.
 * The expected HR@K were computed once by a throwaway Python re-implementation of calc_hr.py's scoring (its map
 * `C{lv1}C{lv2+8192}C{lv3+16384}` -> items in table order, each line `str.strip()`'d then `json.loads`,
 * `_generated_new_text_` with --decoder_only else `_generated_text_`, truth `set(answer.strip().split(";"))`,
 * HR@K = mean over rows of |set(ids[:K]) & truth| / |truth|), run with python3 on these files; the printed reprs
 * are recorded below. The `lenient` numbers are sidx's --lenient-answers (ids stripped, empty ids dropped, rows
 * without ids left out), computed by the same script with that change.
 */
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, test, type TestContext } from 'node:test';
import { Catalog } from '../../src/store/catalog.ts';
import { ControlPlane } from '../../src/store/control-plane.ts';
import { runCli } from '../helpers/cli.ts';
import { repoRoot, tempDir } from '../helpers/paths.ts';

const FIXTURES = join(repoRoot, 'test', 'fixtures', 'eval-beams');
const ITEMS = join(FIXTURES, 'items.jsonl');
const T5 = join(FIXTURES, 't5.jsonl');
const OFFSET64 = join(FIXTURES, 'offset64.jsonl');
const K = ['1', '2', '4', '20'];

// python3 alsid_ref.py items.jsonl t5.jsonl 1,2,4,20 8192 (al_sid default, then --decoder_only; then lenient).
const T5_ALSID = [0.31481481481481477, 0.31481481481481477, 0.4629629629629629, 0.4629629629629629];
const T5_ALSID_DECODER = [0.09259259259259259, 0.12962962962962962, 0.12962962962962962, 0.12962962962962962];
const T5_LENIENT = [0.5, 0.6428571428571429, 0.8571428571428571, 0.8571428571428571];
const T5_LENIENT_DECODER = [0.2857142857142857, 0.42857142857142855, 0.42857142857142855, 0.42857142857142855];
// python3 alsid_ref.py items.jsonl offset64.jsonl 1,2,4,20 64 (al_sid with its 8192 replaced by 64); with 8192: all 0.
const OFFSET64_AT_64 = [0.16666666666666666, 0.5, 0.6666666666666666, 0.6666666666666666];

const tmp = tempDir('sidx-eval-beams-alsid-');
const dataDir = join(tmp.dir, 'data');
const out = join(tmp.dir, 'hr.json');
after(() => tmp.cleanup());

before(async () => {
  // The same items in a service data directory whose model has 3 x 64 codebooks (the case).
  mkdirSync(dataDir);
  const control = ControlPlane.open(join(dataDir, 'control.sqlite'));
  const row = control.registerModel({ id: 'c64', method: 'rqkmeans', inputDim: 2, codebookSizes: [64, 64, 64], path: tmp.dir, sha256: 'f'.repeat(64) });
  control.activateModel(row.id);
  control.close();
  const items = readFileSync(ITEMS, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as { id: string; codes: number[] });
  const catalog = Catalog.open(join(dataDir, 'catalog'));
  catalog.upsertBatch(row.version, items.map(({ id, codes }, i) => ({ id, codes: Int32Array.from(codes), vector: Float32Array.of(i, 1) })));
  await catalog.close();
});

interface Report { hr: Record<string, number>; rows: number; rowsWithoutTruth: number; sids: number; invalidSids: number; emptySids: number }

async function score(t: TestContext, args: string[]): Promise<{ report: Report; stderr: string }> {
  const run = await runCli(t, ['eval-beams', '--k', K.join(','), '--out', out, ...args]);
  assert.equal(run.code, 0, run.stderr);
  return { report: JSON.parse(readFileSync(out, 'utf8')) as Report, stderr: run.stderr };
}

function assertHr(report: Report, expected: number[]): void {
  K.forEach((k, i) => assert.ok(Math.abs(report.hr[k]! - expected[i]!) < 1e-12, `HR@${k}: ${report.hr[k]} vs al_sid ${expected[i]}`));
}

const counts = (r: Report) => ({ rows: r.rows, rowsWithoutTruth: r.rowsWithoutTruth, sids: r.sids, invalidSids: r.invalidSids, emptySids: r.emptySids });

test('al_sid numbers on T5 output through an item table: _generated_text_ by default, _generated_new_text_ with --decoder-only', async (t) => {
  const def = await score(t, ['--beams', T5, '--items', ITEMS]);
  assertHr(def.report, T5_ALSID);
  // 19 SIDs; "C1C66C131" (level 1 below 8192) and "C63C8255C16447 " do not parse; "C99C8192C16384" holds no item
  // (no codebook sizes without --model). ";" and "" are rows without truth, scored 0 as al_sid does.
  assert.deepEqual(counts(def.report), { rows: 9, rowsWithoutTruth: 2, sids: 19, invalidSids: 2, emptySids: 1 });
  assert.match(def.stderr, /2 row\(s\) with an empty answer scored 0, as in al_sid/);
  assert.doesNotMatch(def.stderr, /are invalid/);
  assertHr((await score(t, ['--beams', T5, '--items', ITEMS, '--decoder-only'])).report, T5_ALSID_DECODER);
});

test('the same numbers through a 3 x 64 catalog, where a code beyond 63 is invalid', async (t) => {
  const { report } = await score(t, ['--beams', T5, '--data-dir', dataDir]);
  assertHr(report, T5_ALSID);
  assert.deepEqual(counts(report), { rows: 9, rowsWithoutTruth: 2, sids: 19, invalidSids: 3, emptySids: 0 });
  assertHr((await score(t, ['--beams', T5, '--data-dir', dataDir, '--decoder-only'])).report, T5_ALSID_DECODER);
});

test('--lenient-answers: ids stripped, empty ones dropped, rows without ids left out', async (t) => {
  const def = await score(t, ['--beams', T5, '--items', ITEMS, '--lenient-answers']);
  assertHr(def.report, T5_LENIENT);
  assert.equal(def.report.rows, 7);
  assert.match(def.stderr, /2 row\(s\) with an empty answer were left out \(--lenient-answers\)/);
  assertHr((await score(t, ['--beams', T5, '--data-dir', dataDir, '--lenient-answers', '--decoder-only'])).report, T5_LENIENT_DECODER);
});

test('tokens with other offsets score 0 with a warning that names --token-offset, and al_sid\'s numbers with it', async (t) => {
  const def = await score(t, ['--beams', OFFSET64, '--data-dir', dataDir]);
  assertHr(def.report, [0, 0, 0, 0]);
  assert.equal(def.report.invalidSids, 5);
  assert.match(def.stderr, /5 of 5 SIDs \(100\.0%\) are invalid for 3 levels of codebook sizes 64,64,64 with AL-GR tokens read as code \+ level x 8192/);
  assert.match(def.stderr, /"C1C66C131": AL-GR SID "C1C66C131": token 1 is 66, level 1 accepts 8192\.\.8255/);
  assert.match(def.stderr, /--token-offset N/);
  for (const mapping of [['--data-dir', dataDir], ['--items', ITEMS]]) {
    const at64 = await score(t, ['--beams', OFFSET64, ...mapping, '--token-offset', '64']);
    assertHr(at64.report, OFFSET64_AT_64);
    assert.equal(at64.report.invalidSids, 0);
    assert.doesNotMatch(at64.stderr, /are invalid/);
  }
  const bad = await runCli(t, ['eval-beams', '--beams', OFFSET64, '--items', ITEMS, '--token-offset=-1']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--token-offset must be in 0\.\./);
});

test('malformed lines: invisible characters named by code point, a string beam and a missing al_sid key said so', async (t) => {
  const line = (answer: string) => JSON.stringify({ _generated_text_: ['C1C8194C16387'], answer });
  const cases: [string, string[], RegExp][] = [
    [`\ufeff${line('a')}`, [], /beams line is not JSON .*U\+FEFF \(byte order mark\) at column 1/],
    [line('a').replace(':', ':\u00a0'), [], /not JSON .*U\+00A0 \(no-break space\) at column 21/],
    [line('a').replace(':', ':\f'), [], /not JSON .*U\+000C \(form feed\) at column 21/],
    [line('a').replace(':', ':\x1c'), [], /not JSON .*U\+001C \(file separator\) at column 21/],
    [JSON.stringify({ _generated_text_: 'C1C8194C16387', answer: 'a' }), [],
      /:1: "_generated_text_" is a string, not an array of SIDs \(al_sid would iterate its characters and score 0\)/],
    [JSON.stringify({ _generated_new_text_: ['C1C8194C16387'], answer: 'a' }), [],
      /al_sid reads _generated_text_ unless --decoder-only, and this line has only _generated_new_text_: pass --decoder-only/],
    [line('a'), ['--decoder-only'], /--decoder-only reads _generated_new_text_, which this line lacks/],
    [JSON.stringify({ _generated_text_: ['C1C8194C16387'], answer: ['a', { x: 1 }] }), [], /expected item ids/],
  ];
  const beams = join(tmp.dir, 'bad.jsonl');
  for (const [text, flags, message] of cases) {
    writeFileSync(beams, `${text}\n`);
    const run = await runCli(t, ['eval-beams', '--beams', beams, '--items', ITEMS, ...flags]);
    assert.equal(run.code, 1, JSON.stringify(text));
    assert.match(run.stderr, message, JSON.stringify(text));
    assert.match(run.stderr, /SIDX_ERR_INVALID_INPUT|bad\.jsonl:1/, JSON.stringify(text));
  }
});
