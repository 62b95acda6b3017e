/**
 * `sidx encode`: embeddings -> item/SID table with a model bundle, collisions resolved as asked.
 *
 * Output forms (by the extension of --out):
 *   .csv    AL-GR item_sid form: header `base62_string,codebook_lv1,...,codebook_lvL` (one more column with the
 *           suffix strategy), one row per item: its id, then its codes
 *   .jsonl  one object per line: {"id": "...", "sid": "12-7-300", "codes": [12, 7, 300]}
 * Ids come from the input when it has them (AL-GR CSV, FORGE .npz `ids`) or from --id-file, else the row index.
 * AL-GR CSV inputs are streamed batch by batch (a large file is never held whole); other inputs are read whole
 * and encoded in chunks. Collisions are resolved in input order against everything written before, so the same
 * input always gives the same table.
 */
import { once } from 'node:events';
import { createWriteStream, type WriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { readAlgrCsv, skippedLinesNote, type AlgrSkip } from '../io/algr-csv.ts';
import { embeddingFormatOf, readEmbeddings } from '../io/embeddings.ts';
import { inputError } from '../io/input-error.ts';
import { DEFAULT_SID_CAP, MapOccupancy, readsTopM, resolveCollisions, type CollisionStrategy } from '../sid/collisions.ts';
import { loadBundle, type ModelBundle } from '../tokenizer/bundle.ts';
import { EncoderPool, type EncodeResult } from '../tokenizer/encoder-pool.ts';
import { intFlag, parseFlags, UsageError } from './args.ts';
import { formatSeconds, ProgressLine } from './progress.ts';

export const encodeUsage = `Usage: sidx encode --model DIR --input FILE --out FILE.csv|FILE.jsonl
                   [--collisions none|cap|suffix] [--cap N] [--id-file FILE] [--array NAME] [--workers N]

Encodes every embedding of --input with the bundle in --model and writes the item -> SID table.

An AL-GR CSV line that is malformed (no comma, more than 2 fields, empty id, bad base64, wrong dimension, a
non-finite value) is skipped, with a "skipped" line naming it (file:line), and the summary line counts the skipped
lines. Rows are not checked against limits.maxVectorNorm (sidx index and the server check it).

  --collisions  none (default): SIDs as encoded; cap: at most --cap items per SID, overflow items take their
                nearest free last-level code among the encoder's top-M; suffix: an extra level numbering the
                items that share a SID (0, 1, ...)
  --cap         items per SID for --collisions cap (default ${DEFAULT_SID_CAP})
  --id-file     item ids, one per line and nothing else (line i names row i); default: ids in the input, else
                the row index
  --array       .npz member holding the vectors
  --workers     encoder worker threads (default 1)`;

const CHUNK_ROWS = 65536;

export function parseCollisionStrategy(kind: string | undefined, cap: number | undefined): CollisionStrategy {
  switch (kind ?? 'none') {
    case 'none':
      if (cap !== undefined) throw new UsageError('--cap needs --collisions cap');
      return { kind: 'none' };
    case 'cap':
      if (cap !== undefined && cap < 1) throw new UsageError(`--cap must be a positive integer, got ${cap}`);
      return { kind: 'cap', cap: cap ?? DEFAULT_SID_CAP };
    case 'suffix':
      if (cap !== undefined) throw new UsageError('--cap needs --collisions cap');
      return { kind: 'suffix' };
    default:
      throw new UsageError(`--collisions must be none, cap or suffix, got ${JSON.stringify(kind)}`);
  }
}

type OutputForm = 'csv' | 'jsonl';

function outputFormOf(path: string): OutputForm {
  const lower = path.toLowerCase();
  if (lower.endsWith('.csv')) return 'csv';
  if (lower.endsWith('.jsonl')) return 'jsonl';
  throw new UsageError(`--out must end in .csv or .jsonl, got ${JSON.stringify(path)}`);
}

/** The AL-GR item_sid header for `width` code columns. */
export function sidCsvHeader(width: number): string {
  const columns = ['base62_string'];
  for (let l = 1; l <= width; l++) columns.push(`codebook_lv${l}`);
  return columns.join(',');
}

function csvField(id: string): string {
  return /[",\r\n]/.test(id) ? `"${id.replace(/"/g, '""')}"` : id;
}

/** Formats n rows of `width` codes as table lines (each ending in a newline). */
export function formatSidRows(form: OutputForm, ids: (i: number) => string, codes: Int32Array, n: number, width: number): string {
  const lines: string[] = new Array<string>(n);
  for (let i = 0; i < n; i++) {
    const row = codes.subarray(i * width, (i + 1) * width);
    lines[i] = form === 'csv'
      ? `${csvField(ids(i))},${row.join(',')}\n`
      : `${JSON.stringify({ id: ids(i), sid: row.join('-'), codes: Array.from(row) })}\n`;
  }
  return lines.join('');
}

async function writeText(out: WriteStream, text: string): Promise<void> {
  if (!out.write(text)) await once(out, 'drain');
}

interface TableWriter {
  add(ids: (i: number) => string, encoded: EncodeResult, n: number): Promise<void>;
  readonly rows: number;
  readonly moved: number;
  readonly unresolved: number;
}

function tableWriter(out: WriteStream, form: OutputForm, bundle: ModelBundle, pool: EncoderPool, strategy: CollisionStrategy): TableWriter {
  const levels = bundle.manifest.levels;
  const width = strategy.kind === 'suffix' ? levels + 1 : levels;
  const occupancy = new MapOccupancy(levels);
  let headerWritten = false;
  const state = { rows: 0, moved: 0, unresolved: 0 };
  return {
    get rows() { return state.rows; },
    get moved() { return state.moved; },
    get unresolved() { return state.unresolved; },
    async add(ids, encoded, n) {
      if (!headerWritten && form === 'csv') await writeText(out, `${sidCsvHeader(width)}\n`);
      headerWritten = true;
      const resolved = resolveCollisions(strategy, {
        codes: encoded.codes, topCodes: encoded.topCodes, topDistances: encoded.topDistances, n, levels, topM: pool.topM,
      }, occupancy);
      occupancy.addRows(resolved.codes, n, width);
      state.rows += n;
      state.moved += resolved.moved;
      state.unresolved += resolved.unresolved;
      await writeText(out, formatSidRows(form, ids, resolved.codes, n, width));
    },
  };
}

export async function encodeCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    model: { type: 'string' }, input: { type: 'string' }, out: { type: 'string' }, collisions: { type: 'string' },
    cap: { type: 'string' }, 'id-file': { type: 'string' }, array: { type: 'string' }, workers: { type: 'string' },
  }, encodeUsage);
  if (values.help) {
    console.log(encodeUsage);
    return 0;
  }
  for (const flag of ['model', 'input', 'out'] as const) {
    if (values[flag] === undefined) throw new UsageError(`--${flag} is required\n\n${encodeUsage}`);
  }
  const form = outputFormOf(values.out!);
  const strategy = parseCollisionStrategy(values.collisions, intFlag(values.cap, 'cap'));
  const how = { codesOnly: !readsTopM(strategy.kind) };
  const workers = intFlag(values.workers, 'workers') ?? 1;
  if (workers < 1) throw new UsageError(`--workers must be a positive integer, got ${workers}`);
  const bundle = await loadBundle(values.model!);
  const dim = bundle.manifest.inputDim;
  const progress = new ProgressLine({ prefix: 'sidx encode' });
  const onSkip = (skip: AlgrSkip) => progress.log(`skipped ${skip.message}`);
  const streamed = embeddingFormatOf(values.input!) === 'algr-csv' && values['id-file'] === undefined;
  // Without streaming, read (and validate) the input before the output file is created.
  const whole = streamed ? null : await readEmbeddings(values.input!, { dim, idFile: values['id-file'], array: values.array, csv: { onSkip } });
  if (whole !== null && whole.n === 0) throw inputError(values.input!, 'has no rows to encode');
  let skipped = whole?.skipped ?? 0;

  const started = performance.now();
  const pool = await EncoderPool.create(bundle, { workers, provider: 'cpu' });
  const temporary = `${values.out}.tmp-${process.pid}`;
  const out = createWriteStream(temporary);
  try {
    const table = tableWriter(out, form, bundle, pool, strategy);
    if (whole !== null) {
      const { ids, vectors, n } = whole;
      for (let start = 0; start < n; start += CHUNK_ROWS) {
        const rows = Math.min(CHUNK_ROWS, n - start);
        const encoded = await pool.encode(vectors.subarray(start * dim, (start + rows) * dim), rows, how);
        await table.add(ids === null ? (i) => String(start + i) : (i) => ids[start + i]!, encoded, rows);
        progress.update(`${table.rows} / ${n} items`);
      }
    } else {
      const reader = readAlgrCsv(values.input!, { dim, onSkip });
      for await (const batch of reader) {
        const encoded = await pool.encode(batch.vectors, batch.n, how);
        await table.add((i) => batch.ids[i]!, encoded, batch.n);
        progress.update(`${table.rows} items`);
      }
      if (table.rows === 0) throw inputError(values.input!, `no valid rows (${reader.stats.skipped} skipped)`);
      skipped = reader.stats.skipped;
    }
    out.end();
    await once(out, 'finish');
    await rename(temporary, values.out!);
    progress.done(`wrote ${table.rows} items to ${values.out} in ${formatSeconds((performance.now() - started) / 1000)}`
      + (strategy.kind === 'cap' ? `; ${table.moved} moved to a free last-level code` : '') + skippedLinesNote(skipped));
    if (table.unresolved > 0) {
      progress.log(`warning: ${table.unresolved} items kept a SID already holding ${strategy.kind === 'cap' ? strategy.cap : 0} `
        + `items: none of their top-${pool.topM} last-level codes had room (a bundle with a larger --top-m helps)`);
    }
    return 0;
  } catch (err) {
    out.destroy();
    await rm(temporary, { force: true });
    throw err;
  } finally {
    await pool.close();
  }
}
