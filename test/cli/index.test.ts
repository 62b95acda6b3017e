import { test, type TestContext } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { writeNpy } from '../../src/io/npy.ts';
import { Catalog } from '../../src/store/catalog.ts';
import { verifyCatalog } from '../../src/store/catalog-verify.ts';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/paths.ts';
import { randomMatrix } from '../helpers/random.ts';
import { startService, writeTestBundle } from '../helpers/service.ts';

const DIM = 8;
const N = 500;

/** A temporary directory (removed after the test) with a test bundle in `model` and room for `data`. */
async function fixture(t: TestContext) {
  const tmp = tempDir();
  t.after(() => tmp.cleanup());
  const modelDir = join(tmp.dir, 'model');
  await writeTestBundle(modelDir, { dim: DIM, levels: 2, codebookSize: 8, seed: 1 });
  return { tmp, modelDir, dataDir: join(tmp.dir, 'data') };
}

test('sidx index bulk-loads .npy and streamed AL-GR CSV through the upsert path, with a progress line', async (t) => {
  const { tmp, modelDir, dataDir } = await fixture(t);
  const vectors = randomMatrix(N, DIM, 9);
  const npy = join(tmp.dir, 'items.npy');
  await writeNpy(npy, vectors, [N, DIM]);
  const first = await runCli(t, ['index', '--input', npy, '--model', modelDir, '--data-dir', dataDir, '--batch', '128']);
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /sidx index: 128 \/ 500 items, \d+ items\/s/);
  assert.match(first.stderr, /indexed 500 items \(0 replaced\) with test-rq-2x8-d8-s1 .* batches of 128\); the catalog holds 500 items\n$/);
  assert.doesNotMatch(first.stderr, /skipped/);

  // AL-GR CSV (streamed): ids from the file; "0".."99" replace rows of the .npy, the others are new.
  const b64 = (i: number) => Buffer.from(vectors.buffer, i * DIM * 4, DIM * 4).toString('base64');
  const lines = ['base62_string,feature', ...Array.from({ length: 150 }, (_, i) => `${i < 100 ? String(i) : `csv${i}`},${b64(i)}`), 'bad,***'];
  const csv = join(tmp.dir, 'items.csv');
  await writeFile(csv, `${lines.join('\n')}\n`);
  const second = await runCli(t, ['index', '--input', csv, '--model', modelDir, '--data-dir', dataDir]);
  assert.equal(second.code, 0, second.stderr);
  assert.match(second.stderr, /skipped .*items\.csv:152/);
  assert.match(second.stderr, /indexed 150 items \(100 replaced\) .* the catalog holds 550 items; 1 input line skipped \(see the "skipped" lines above\)\n$/);

  const report = await verifyCatalog(join(dataDir, 'catalog'));
  assert.ok(report.ok, report.problems.join('\n'));
  assert.equal(report.naturalOnly, true, 'the layout `sidx serve` gives a new catalog: natural-order postings alone');
  assert.equal(report.postings, 550);
  const svc = await startService(dataDir, modelDir);
  try {
    assert.equal(svc.service.readiness().vectors, 550, 'FAISS holds every item after the offline load');
    const enc = await svc.service.encode(vectors.slice(0, 3 * DIM), 3);
    for (let i = 0; i < 3; i++) assert.deepEqual(svc.service.getItem(String(i))!.sid, enc.codes.slice(i * 2, i * 2 + 2));
    // The load built no SID tries; the server counts them from the postings: every item under its level-0 code.
    const perCode = new Map<number, number>();
    for (const id of [...Array.from({ length: N }, (_, i) => String(i)), ...Array.from({ length: 50 }, (_, i) => `csv${i + 100}`)]) {
      const code = svc.service.getItem(id)!.sid[0]!;
      perCode.set(code, (perCode.get(code) ?? 0) + 1);
    }
    const top = svc.service.sids.next([[]]).next[0]!;
    assert.deepEqual(new Map(Array.from(top.codes, (c, j) => [c, top.counts[j]!])), perCode);
  } finally {
    await svc.close();
  }

  const other = join(tmp.dir, 'other');
  await writeTestBundle(other, { dim: DIM, levels: 2, codebookSize: 8, seed: 2 });
  const refused = await runCli(t, ['index', '--input', npy, '--model', other, '--data-dir', dataDir]);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /^sidx index: the catalog in .* is served by model test-rq-2x8-d8-s1, not test-rq-2x8-d8-s2: .*\[SIDX_ERR_CONFLICT\]\n$/);
  assert.doesNotMatch(refused.stderr, /warning|serving test-rq-2x8-d8-s1/, 'refused once, not first warned that it serves the catalog\'s model');
  assert.equal((await runCli(t, ['index', '--model', modelDir])).code, 2, '--input is required');
  const tsv = join(tmp.dir, 'ids.tsv');
  await writeFile(tsv, Array.from({ length: N }, (_, i) => `id${i}\t${i}\n`).join(''));
  const tabbed = await runCli(t, ['index', '--input', npy, '--id-file', tsv, '--model', modelDir, '--data-dir', dataDir]);
  assert.equal(tabbed.code, 1);
  assert.match(tabbed.stderr, /ids\.tsv:1: id "id0\\t0" holds a tab/);
});

test('sidx index refuses a row whose norm exceeds limits.maxVectorNorm before writing anything; a CSV row is skipped', async (t) => {
  const { tmp, modelDir, dataDir } = await fixture(t);
  const vectors = randomMatrix(20, DIM, 10);
  vectors.fill(3e38, 7 * DIM, 8 * DIM); // row 7 (0-based, the 8th): finite float32 values whose scores would overflow
  const npy = join(tmp.dir, 'huge.npy');
  await writeNpy(npy, vectors, [20, DIM]);
  const refused = await runCli(t, ['index', '--input', npy, '--model', modelDir, '--data-dir', dataDir, '--batch', '4']);
  assert.equal(refused.code, 1);
  // The row as the default ids count it, so that the message and the item's id agree.
  assert.match(refused.stderr, new RegExp(String.raw`huge\.npy: row 7 \(0-based; id "7"\) has L2 norm 8\.485e\+38, above limits\.maxVectorNorm \(10000\): `
    + String.raw`normalise the rows, or raise SIDX__LIMITS__MAX_VECTOR_NORM \(0 = off\) \[SIDX_ERR_NORM_TOO_LARGE\]`));
  const idFile = join(tmp.dir, 'ids.txt');
  await writeFile(idFile, `${Array.from({ length: 20 }, (_, i) => `sku-${i}`).join('\n')}\n`);
  const named = await runCli(t, ['index', '--input', npy, '--id-file', idFile, '--model', modelDir, '--data-dir', dataDir]);
  assert.equal(named.code, 1);
  assert.match(named.stderr, /huge\.npy: row 7 \(0-based; id "sku-7"\) has L2 norm 8\.485e\+38, .*: normalise the rows/);

  const b64 = (i: number) => Buffer.from(vectors.buffer, i * DIM * 4, DIM * 4).toString('base64');
  const csv = join(tmp.dir, 'huge.csv');
  await writeFile(csv, `base62_string,feature\n${Array.from({ length: 20 }, (_, i) => `c${i},${b64(i)}`).join('\n')}\n`);
  const streamed = await runCli(t, ['index', '--input', csv, '--model', modelDir, '--data-dir', dataDir]);
  assert.equal(streamed.code, 0, streamed.stderr);
  assert.match(streamed.stderr, /skipped .*huge\.csv:9 has L2 norm 8\.485e\+38/);
  assert.match(streamed.stderr, /indexed 19 items \(0 replaced\) .* the catalog holds 19 items; 1 input line skipped/, 'the .npy runs wrote nothing');
  // Read whole (--order sid), the CSV skips the same row, named by its line as when streamed.
  const sorted = await runCli(t, ['index', '--input', csv, '--model', modelDir, '--data-dir', dataDir, '--order', 'sid']);
  assert.equal(sorted.code, 0, sorted.stderr);
  assert.match(sorted.stderr, /skipped .*huge\.csv:9 has L2 norm 8\.485e\+38/);
  assert.match(sorted.stderr, /indexed 19 items \(19 replaced\) .* the catalog holds 19 items; 1 input line skipped/);

  // A CSV whose every row is over the bound has nothing to index, streamed or read whole: an error either way.
  const allHuge = join(tmp.dir, 'all-huge.csv');
  await writeFile(allHuge, `base62_string,feature\n${[7, 7, 7].map((i, j) => `h${j},${b64(i)}`).join('\n')}\n`);
  for (const extra of [[], ['--order', 'sid']]) {
    const run = await runCli(t, ['index', '--input', allHuge, '--model', modelDir, '--data-dir', dataDir, ...extra]);
    assert.equal(run.code, 1, `${extra.join(' ')}: ${run.stderr}`);
    assert.match(run.stderr, /all-huge\.csv: no valid rows \(3 skipped\)/, extra.join(' '));
  }
});

test('sidx index refuses a non-finite value in its input before writing anything; a CSV row with one is skipped', async (t) => {
  // The readers are the only check: the catalog takes sidx index's rows as checked (UpsertChecks.finite).
  const { tmp, modelDir, dataDir } = await fixture(t);
  const vectors = randomMatrix(12, DIM, 11);
  vectors[4 * DIM + 2] = Number.NaN; // row 5, column 3
  const npy = join(tmp.dir, 'nan.npy');
  await writeNpy(npy, vectors, [12, DIM]);
  const refused = await runCli(t, ['index', '--input', npy, '--model', modelDir, '--data-dir', dataDir, '--batch', '4']);
  assert.equal(refused.code, 1);
  assert.match(refused.stderr, /nan\.npy: row 5 has NaN at column 3 \(values must be finite\)/);

  const b64 = (i: number) => Buffer.from(vectors.buffer, i * DIM * 4, DIM * 4).toString('base64');
  const csv = join(tmp.dir, 'nan.csv');
  await writeFile(csv, `base62_string,feature\n${Array.from({ length: 12 }, (_, i) => `c${i},${b64(i)}`).join('\n')}\n`);
  const streamed = await runCli(t, ['index', '--input', csv, '--model', modelDir, '--data-dir', dataDir]);
  assert.equal(streamed.code, 0, streamed.stderr);
  assert.match(streamed.stderr, /skipped .*nan\.csv:6/);
  assert.match(streamed.stderr, /indexed 11 items \(0 replaced\) .* the catalog holds 11 items; 1 input line skipped/, 'the .npy run wrote nothing');
  const report = await verifyCatalog(join(dataDir, 'catalog'));
  assert.ok(report.ok, report.problems.join('\n'));
  assert.equal(report.postings, 11);
});

test('sidx index keeps the input order for an id repeated across batches in flight: the later row wins', async (t) => {
  const { tmp, modelDir, dataDir } = await fixture(t);
  const vectors = randomMatrix(40, DIM, 10);
  const b64 = (i: number) => Buffer.from(vectors.buffer, i * DIM * 4, DIM * 4).toString('base64');
  // Rows 0-19 hold ids r0..r19, rows 20-39 the same ids again; batches of 3 put every repeat in a later batch.
  const lines = ['base62_string,feature', ...Array.from({ length: 40 }, (_, i) => `r${i % 20},${b64(i)}`)];
  const csv = join(tmp.dir, 'items.csv');
  await writeFile(csv, `${lines.join('\n')}\n`);
  const run = await runCli(t, ['index', '--input', csv, '--model', modelDir, '--data-dir', dataDir, '--batch', '3']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /indexed 40 items \(20 replaced\) .* the catalog holds 20 items/);
  const catalog = Catalog.open(join(dataDir, 'catalog'));
  try {
    for (let i = 0; i < 20; i++) assert.deepEqual(catalog.get(`r${i}`)!.vector, vectors.slice((20 + i) * DIM, (21 + i) * DIM), `r${i}: the later row`);
  } finally {
    await catalog.close();
  }
});

test('sidx index --order sid: rows take vector-file slots in SID order, the catalog holds the same items, an id given twice keeps its last row', async (t) => {
  const { tmp, modelDir, dataDir } = await fixture(t);
  const vectors = randomMatrix(N, DIM, 11);
  const npy = join(tmp.dir, 'items.npy');
  await writeNpy(npy, vectors, [N, DIM]);
  // Ids from a file: row 7's id again on row 400, whose row wins as it would in input order.
  const ids = Array.from({ length: N }, (_, i) => (i === 400 ? 'id7' : `id${i}`));
  const idFile = join(tmp.dir, 'ids.txt');
  await writeFile(idFile, `${ids.join('\n')}\n`);
  const run = await runCli(t, ['index', '--input', npy, '--id-file', idFile, '--model', modelDir, '--data-dir', dataDir, '--batch', '64', '--order', 'sid']);
  assert.equal(run.code, 0, run.stderr);
  assert.match(run.stderr, /rows ordered by SID in .*; 1 row\(s\) left out for a later row with the same id/);
  assert.match(run.stderr, /indexed 499 items \(0 replaced\) .* the catalog holds 499 items/);

  const catalog = Catalog.open(join(dataDir, 'catalog'));
  try {
    const file = new Float32Array((await readFile(join(dataDir, 'catalog', 'vectors.f32'))).buffer.slice(0));
    const slotOfRow = new Map<string, number>(); // input row (by its first value) -> vector-file slot
    for (let s = 0; s < file.length / DIM; s++) slotOfRow.set(String(file[s * DIM]), s);
    const sids: Array<[number, Int32Array]> = [];
    for (let i = 0; i < N; i++) {
      if (i === 7) continue;
      const rec = catalog.get(ids[i]!)!;
      assert.deepEqual(rec.vector, vectors.slice(i * DIM, (i + 1) * DIM), `${ids[i]}: its (last) row`);
      sids.push([slotOfRow.get(String(vectors[i * DIM]))!, rec.codes]);
    }
    sids.sort((a, b) => a[0] - b[0]);
    const before = (a: Int32Array, b: Int32Array) => { // a <= b lexicographically
      for (let l = 0; l < a.length; l++) if (a[l] !== b[l]) return a[l]! < b[l]!;
      return true;
    };
    for (let j = 1; j < sids.length; j++) assert.ok(before(sids[j - 1]![1], sids[j]![1]), `slot ${sids[j]![0]}: SIDs ascend with the slots`);
  } finally {
    await catalog.close();
  }
  // An AL-GR CSV is read whole for it (not streamed): ids from the file, the bad row skipped as when streamed.
  const b64 = (i: number) => Buffer.from(vectors.buffer, i * DIM * 4, DIM * 4).toString('base64');
  const csv = join(tmp.dir, 'items.csv');
  await writeFile(csv, `${['base62_string,feature', ...Array.from({ length: 30 }, (_, i) => `csv${i},${b64(i)}`), 'bad,***'].join('\n')}\n`);
  const fromCsv = await runCli(t, ['index', '--input', csv, '--model', modelDir, '--data-dir', dataDir, '--order', 'sid']);
  assert.equal(fromCsv.code, 0, fromCsv.stderr);
  assert.match(fromCsv.stderr, /rows ordered by SID/);
  assert.match(fromCsv.stderr, /skipped .*items\.csv:32: feature is not valid base64/, 'read whole, its skips are logged too');
  assert.match(fromCsv.stderr, /indexed 30 items \(0 replaced\) .* the catalog holds 529 items; 1 input line skipped/);
  const bad = await runCli(t, ['index', '--input', npy, '--model', modelDir, '--data-dir', dataDir, '--order', 'size']);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /--order must be input or sid, got size/);
});

