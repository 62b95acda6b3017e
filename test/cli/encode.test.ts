import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';

import { sidCsvHeader } from '../../src/cli/encode.ts';
import { writeNpy } from '../../src/io/npy.ts';
import { exportRqKmeansBundle } from '../../src/train/export.ts';
import { trainRqKmeans, type RqKmeansResult } from '../../src/train/rqkmeans.ts';
import { runCli } from '../helpers/cli.ts';
import { tempDir } from '../helpers/paths.ts';
import { gaussian, rng } from '../helpers/random.ts';

const DIM = 8;
const ROWS = 240;
const tmp = tempDir('sidx-cli-encode-');
const modelDir = join(tmp.dir, 'model');
const csvInput = join(tmp.dir, 'items.csv');
const npyInput = join(tmp.dir, 'items.npy');
const ids = Array.from({ length: ROWS }, (_, i) => `Item${i.toString(36).toUpperCase()}x`);
let trained: RqKmeansResult;
after(() => tmp.cleanup());

/** Crowded data: many items share a SID, so collision handling has work to do. */
function crowded(n: number): Float32Array {
  const g = gaussian(rng(21));
  const out = new Float32Array(n * DIM);
  for (let i = 0; i < n; i++) for (let j = 0; j < DIM; j++) out[i * DIM + j] = (i % 3 === 0 ? 2 : 0.2) * g();
  return out;
}

before(async () => {
  const data = crowded(ROWS);
  // Codebooks from 60 rows only, 8 x 8 codes: 64 SIDs for 240 items; top-M = 8 lets cap reach every last-level code.
  trained = await trainRqKmeans(data, DIM, { codebookSizes: [8, 8], seed: 1, sample: 60 });
  await exportRqKmeansBundle({
    dir: modelDir, id: 'encode-test', model: trained, topM: 8,
    training: { source: 'test', command: 'test', seed: 1, dataDigest: 'f'.repeat(64) },
  });
  const lines = ['base62_string,feature'];
  for (let i = 0; i < ROWS; i++) {
    lines.push(`${ids[i]},${Buffer.from(data.buffer, i * DIM * 4, DIM * 4).toString('base64')}`);
  }
  await writeFile(csvInput, `${lines.join('\n')}\n`);
  await writeNpy(npyInput, data, [ROWS, DIM]);
});

async function readCsv(path: string): Promise<{ header: string; ids: string[]; codes: number[][] }> {
  const [header, ...rows] = (await readFile(path, 'utf8')).trimEnd().split('\n');
  return {
    header: header!,
    ids: rows.map((r) => r.split(',')[0]!),
    codes: rows.map((r) => r.split(',').slice(1).map(Number)),
  };
}

function sidCounts(codes: number[][]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const c of codes) counts.set(c.join('-'), (counts.get(c.join('-')) ?? 0) + 1);
  return counts;
}

test('CSV output: AL-GR item_sid header, ids from the AL-GR input, the encoder codes', async (t) => {
  const out = join(tmp.dir, 'plain.csv');
  const run = await runCli(t, ['encode', '--model', modelDir, '--input', csvInput, '--out', out]);
  assert.equal(run.code, 0, run.stderr);
  const table = await readCsv(out);
  assert.equal(table.header, 'base62_string,codebook_lv1,codebook_lv2');
  assert.deepEqual(table.ids, ids);
  const expected = Array.from({ length: ROWS }, (_, i) => [trained.codes[2 * i]!, trained.codes[2 * i + 1]!]);
  assert.deepEqual(table.codes, expected);
  assert.ok(Math.max(...sidCounts(table.codes).values()) > 5, 'the data should crowd some SID beyond the cap');
});

test('--collisions cap: no SID holds more than the cap; moved items keep their prefix', async (t) => {
  // The smallest cap every prefix can honour: its items fit in its 8 last-level codes.
  const perPrefix = new Map<number, number>();
  for (let i = 0; i < ROWS; i++) perPrefix.set(trained.codes[2 * i]!, (perPrefix.get(trained.codes[2 * i]!) ?? 0) + 1);
  const feasible = Math.ceil(Math.max(...perPrefix.values()) / 8);
  for (const cap of [feasible, feasible + 2]) {
    const out = join(tmp.dir, `cap-${cap}.csv`);
    const run = await runCli(t, ['encode', '--model', modelDir, '--input', npyInput, '--out', out, '--collisions', 'cap', '--cap', String(cap)]);
    assert.equal(run.code, 0, run.stderr);
    assert.match(run.stderr, /moved to a free last-level code/);
    assert.doesNotMatch(run.stderr, /warning/);
    const table = await readCsv(out);
    assert.deepEqual(table.ids, ids.map((_, i) => String(i)), 'a .npy has no ids: rows are numbered');
    assert.ok(Math.max(...sidCounts(table.codes).values()) <= cap, `cap ${cap}`);
    let moved = 0;
    table.codes.forEach((c, i) => {
      assert.equal(c[0], trained.codes[2 * i], `item ${i} changed its first level`);
      if (c[1] !== trained.codes[2 * i + 1]) moved++;
    });
    assert.ok(moved > 0);
  }
});

test('--collisions suffix: an extra level makes every full SID unique', async (t) => {
  const out = join(tmp.dir, 'suffix.csv');
  const run = await runCli(t, ['encode', '--model', modelDir, '--input', csvInput, '--out', out, '--collisions', 'suffix']);
  assert.equal(run.code, 0, run.stderr);
  const table = await readCsv(out);
  assert.equal(table.header, sidCsvHeader(3));
  assert.equal(sidCounts(table.codes).size, ROWS);
  const seen = new Map<string, number>();
  for (const c of table.codes) {
    const prefix = c.slice(0, 2).join('-');
    assert.equal(c[2], seen.get(prefix) ?? 0, 'suffixes number the items of a SID 0, 1, 2, ... in input order');
    seen.set(prefix, (seen.get(prefix) ?? 0) + 1);
  }
});

test('JSONL output: id, SID text and codes per line', async (t) => {
  const out = join(tmp.dir, 'sids.jsonl');
  const run = await runCli(t, ['encode', '--model', modelDir, '--input', csvInput, '--out', out]);
  assert.equal(run.code, 0, run.stderr);
  const rows = (await readFile(out, 'utf8')).trimEnd().split('\n').map((l) => JSON.parse(l) as { id: string; sid: string; codes: number[] });
  assert.equal(rows.length, ROWS);
  assert.deepEqual(rows[0], { id: ids[0], sid: `${trained.codes[0]}-${trained.codes[1]}`, codes: [trained.codes[0], trained.codes[1]] });
});

test('--id-file names the rows of a .npy', async (t) => {
  const idFile = join(tmp.dir, 'ids.txt');
  await writeFile(idFile, `${ids.join('\n')}\n`);
  const out = join(tmp.dir, 'named.csv');
  const run = await runCli(t, ['encode', '--model', modelDir, '--input', npyInput, '--id-file', idFile, '--out', out]);
  assert.equal(run.code, 0, run.stderr);
  assert.deepEqual((await readCsv(out)).ids, ids);
});

test('skipped AL-GR CSV lines: each logged with file:line, counted in the summary line, streamed or read whole', async (t) => {
  const good = (await readFile(csvInput, 'utf8')).trimEnd().split('\n');
  const withBad = join(tmp.dir, 'with-bad.csv');
  await writeFile(withBad, `${[...good.slice(0, 11), 'nocomma', ...good.slice(11), `short,${Buffer.alloc(3).toString('base64')}`].join('\n')}\n`);
  const out = join(tmp.dir, 'with-bad.csv.out.csv');
  const streamed = await runCli(t, ['encode', '--model', modelDir, '--input', withBad, '--out', out]);
  assert.equal(streamed.code, 0, streamed.stderr);
  assert.match(streamed.stderr, /skipped .*with-bad\.csv:12: missing comma/);
  assert.match(streamed.stderr, new RegExp(`skipped .*with-bad\\.csv:${ROWS + 3}: feature decodes to 3 bytes, not a whole number of float32 values \\(expected ${DIM} values = ${DIM * 4} bytes\\)\n`));
  assert.match(streamed.stderr, new RegExp(`wrote ${ROWS} items to .* in [^;]*; 2 input lines skipped \\(see the "skipped" lines above\\)\n$`));
  assert.deepEqual((await readCsv(out)).ids, ids);

  const idFile = join(tmp.dir, 'csv-ids.txt');
  await writeFile(idFile, `${ids.join('\n')}\n`);
  const whole = await runCli(t, ['encode', '--model', modelDir, '--input', withBad, '--id-file', idFile, '--out', out]);
  assert.equal(whole.code, 0, whole.stderr);
  assert.match(whole.stderr, /skipped .*with-bad\.csv:12: missing comma/, 'read whole (--id-file): skips logged too');
  assert.match(whole.stderr, /; 2 input lines skipped \(see the "skipped" lines above\)\n$/);
  const clean = await runCli(t, ['encode', '--model', modelDir, '--input', csvInput, '--out', out]);
  assert.doesNotMatch(clean.stderr, /skipped/);
});

test('errors: bad flags exit 2, bad model or input exit 1 naming the file, and no output is left behind', async (t) => {
  const out = join(tmp.dir, 'never.csv');
  const usage: [string[], RegExp][] = [
    [['--collisions', 'drop'], /--collisions must be none, cap or suffix, got "drop"/],
    [['--cap', '3'], /--cap needs --collisions cap/],
    [['--collisions', 'cap', '--cap', '0'], /--cap must be a positive integer/],
    [['--collisions', 'cap', '--cap', 'x'], /--cap must be an integer/],
    [['--workers', '0'], /--workers must be a positive integer/],
  ];
  for (const [extra, message] of usage) {
    const run = await runCli(t, ['encode', '--model', modelDir, '--input', npyInput, '--out', out, ...extra]);
    assert.equal(run.code, 2, run.stderr);
    assert.match(run.stderr, message);
  }
  const txt = await runCli(t, ['encode', '--model', modelDir, '--input', npyInput, '--out', join(tmp.dir, 'sids.txt')]);
  assert.equal(txt.code, 2);
  assert.match(txt.stderr, /--out must end in \.csv or \.jsonl/);
  const noModel = await runCli(t, ['encode', '--model', join(tmp.dir, 'nomodel'), '--input', npyInput, '--out', out]);
  assert.equal(noModel.code, 1);
  assert.match(noModel.stderr, /nomodel\/model\.json: not found/);
  const wrongDim = join(tmp.dir, 'wide.npy');
  await writeNpy(wrongDim, new Float32Array(4 * (DIM + 1)), [4, DIM + 1]);
  const dim = await runCli(t, ['encode', '--model', modelDir, '--input', wrongDim, '--out', out]);
  assert.equal(dim.code, 1);
  assert.match(dim.stderr, /wide\.npy: vectors have dimension 9, expected 8/);
  // A two-column TSV (e.g. item2index.tsv: id, row) as --id-file: refused at its first line, not ids with a tab.
  const tsv = join(tmp.dir, 'item2index.tsv');
  await writeFile(tsv, ids.map((id, i) => `${id}\t${i}\n`).join(''));
  const tabbed = await runCli(t, ['encode', '--model', modelDir, '--input', npyInput, '--id-file', tsv, '--out', out]);
  assert.equal(tabbed.code, 1);
  assert.match(tabbed.stderr, /item2index\.tsv:1: id ".*\\t0" holds a tab: one id per line, no other columns \(of a TSV, pass its id column: cut -f1\)/);
  const missing = await runCli(t, ['encode', '--model', modelDir, '--input', join(tmp.dir, 'gone.csv'), '--out', out]);
  assert.equal(missing.code, 1);
  assert.match(missing.stderr, /gone\.csv/);
  await assert.rejects(readFile(out), /ENOENT/);
});
