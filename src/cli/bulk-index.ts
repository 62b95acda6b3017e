/**
 * `sidx index`: bulk-loads an embedding file into a catalog offline, through the service's own upsert path
 * (validation, encoding in the worker pool, collision policy, one LMDB transaction per batch, FAISS and its slot file, synced on
 * close), with a progress line. AL-GR CSV is streamed (read whole for --order sid); other formats are read whole. Re-running it re-upserts
 * (an id already present is replaced). Stop `sidx serve` on the same data directory first: the server's FAISS
 * index would not see these writes.
 */
import { resolve } from 'node:path';
import { tuneAllocator } from './allocator.ts';
import { loadConfig } from '../config.ts';
import { SidxError } from '../errors.ts';
import { readAlgrCsv, skippedLinesNote } from '../io/algr-csv.ts';
import { embeddingFormatOf, readEmbeddings, type Embeddings } from '../io/embeddings.ts';
import { inputError } from '../io/input-error.ts';
import { SidxService } from '../service/sidx-service.ts';
import { sortRowsBySid } from '../sid/codec.ts';
import { normAbove, normMessage } from '../service/vector-norm.ts';
import { loadBundle } from '../tokenizer/bundle.ts';
import { intFlag, parseFlags, UsageError } from './args.ts';
import { formatSeconds, ProgressLine } from './progress.ts';

export const indexUsage = `Usage: sidx index --input FILE --model DIR [--data-dir DIR] [--batch N] [--id-file FILE] [--array NAME]
                  [--workers N] [--order input|sid]

Loads every embedding of --input (.npy, .npz, AL-GR .csv/.csv.gz) into the catalog in --data-dir (default
SIDX__STORAGE__DATA_DIR, else ./data), encoded with the model in --model, through the same code path as
POST /v1/items. Ids come from the input when it has them, else --id-file, else the row index.

An AL-GR CSV line that is malformed (no comma, more than 2 fields, empty id, bad base64, wrong dimension, a
non-finite value) or whose L2 norm is above limits.maxVectorNorm (SIDX__LIMITS__MAX_VECTOR_NORM, 0 = off) is
skipped, with a "skipped" line naming its file:line, and the last line counts the skipped lines; a file left with no
row to index is an error. A .npy/.npz row over the bound refuses the input before anything is written.

  --batch    items per committed batch (default 5000)
  --workers  encoder worker threads (default SIDX__ENCODER__WORKERS, else one per core, at most 4)
  --order    input (default): rows in file order; sid: rows in the order of their SIDs (one more encoding pass; the
             input is read whole, an AL-GR CSV too), so that the catalog's vector and code rows lie in SID order and a retrieve's
             rerank reads its candidates' rows in runs (docs/benchmarks.md); an id repeated in the input is indexed
             once, from its last row

Stop the server on that data directory first. A catalog already served by another model keeps it: re-index
(POST /v1/reindex) to change models.`;

interface Row { id: string; vector: Float32Array }

const IN_FLIGHT = 2;
const DEFAULT_BATCH = 5000;

export async function indexCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    input: { type: 'string' }, model: { type: 'string' }, 'data-dir': { type: 'string' }, batch: { type: 'string' },
    'id-file': { type: 'string' }, array: { type: 'string' }, workers: { type: 'string' }, order: { type: 'string' },
  }, indexUsage);
  if (values.help) {
    console.log(indexUsage);
    return 0;
  }
  for (const flag of ['input', 'model'] as const) {
    if (values[flag] === undefined) throw new UsageError(`--${flag} is required\n\n${indexUsage}`);
  }
  // 5,000 per commit: 1.2x the items/s of 1,000 (fewer commits, each B-tree page dirtied once per batch), 10,000 no more.
  const batchSize = intFlag(values.batch, 'batch') ?? DEFAULT_BATCH;
  if (batchSize < 1) throw new UsageError(`--batch must be a positive integer, got ${batchSize}`);
  const order = values.order ?? 'input';
  if (order !== 'input' && order !== 'sid') throw new UsageError(`--order must be input or sid, got ${order}`);
  // No retrieve runs here: the in-memory posting index (storage.postingIndex) would only add work to every batch.
  // Nor small runs: ORT's spinning threads took ~4 CPU s per 100K items from the LMDB writes (docs/benchmarks.md).
  const config = loadConfig({
    storage: { dataDir: values['data-dir'], postingIndex: 'lmdb' }, model: { dir: values.model },
    encoder: { workers: intFlag(values.workers, 'workers'), spinWait: false },
    limits: { maxBatch: batchSize },
  });
  tuneAllocator(); // before any worker thread starts
  const bundle = await loadBundle(resolve(values.model!));
  const dim = bundle.manifest.inputDim;
  const input = values.input!;
  const progress = new ProgressLine({ prefix: 'sidx index' });
  const logSkip = (what: string) => progress.log(`skipped ${what}`);
  const streamed = embeddingFormatOf(input) === 'algr-csv' && values['id-file'] === undefined && order === 'input';
  const maxNorm = config.limits.maxVectorNorm;
  let skipped = 0;
  let whole: Embeddings | null = null;
  if (!streamed) {
    const read = await readEmbeddings(input, {
      dim, idFile: values['id-file'], array: values.array, csv: { onSkip: (skip) => logSkip(skip.message) },
    });
    if (read.n === 0) throw inputError(input, 'has no rows to index');
    // Every row is checked before anything is written.
    const checked = rowsWithinNorm(input, read, maxNorm, logSkip);
    whole = checked.rows;
    skipped = read.skipped + checked.skipped;
    if (whole.n === 0) throw inputError(input, `no valid rows (${skipped} skipped)`);
  }

  const log = { info: () => {}, warn: (msg: string) => progress.log(`warning: ${msg}`) };
  // A new catalog gets the layout `sidx serve` gives one by default (natural-order postings alone), not the one its
  // LMDB posting index would write: a third of the posting puts.
  // Nor the SID tries: nothing here reads them (`sidx serve` counts them from the postings at open).
  const service = await SidxService.open(config, log, {
    command: 'sidx index', postingRotations: 'natural', sidTries: false, encoderUse: 'index', refuseOtherModel: true,
  });
  const started = performance.now();
  let done = 0;
  let replaced = 0;
  try {
    // Up to IN_FLIGHT batches at once: one encodes on a worker while another commits. Batches in flight hold
    // distinct ids, so their commit order does not matter; a row whose id is already in flight waits for them all.
    let pending: Row[] = [];
    let ids = new Set<string>();
    const inFlight = new Map<Promise<void>, Set<string>>();
    const drain = () => Promise.all(inFlight.keys());
    const inFlightHas = (id: string) => {
      for (const batchIds of inFlight.values()) if (batchIds.has(id)) return true;
      return false;
    };
    const flush = async () => {
      if (pending.length === 0) return;
      const rows = pending;
      const batch = (async () => {
        const out = await service.upsert(rows, undefined, { finite: true }); // every reader refuses non-finite values
        done += rows.length;
        replaced += out.items.filter((it) => it.replaced).length;
        const rate = done / Math.max(1e-3, (performance.now() - started) / 1000);
        progress.update(`${done}${whole ? ` / ${whole.n}` : ''} items, ${Math.round(rate)} items/s`);
      })();
      inFlight.set(batch, ids);
      void batch.then(() => inFlight.delete(batch), () => undefined);
      pending = [];
      ids = new Set();
      if (inFlight.size >= IN_FLIGHT) await Promise.race(inFlight.keys());
    };
    const addAfter = async (id: string, vector: Float32Array) => {
      if (ids.has(id)) await flush(); // the same id twice in one batch is an error: let the later row replace it
      if (inFlightHas(id)) await drain();
      pending.push({ id, vector });
      ids.add(id);
      if (pending.length >= batchSize) await flush();
    };
    // A promise only when the row has to wait (a flush, a duplicate id): most rows take no trip through the microtask queue.
    const add = (id: string, vector: Float32Array): Promise<void> | undefined => {
      if (ids.has(id) || pending.length + 1 >= batchSize || inFlightHas(id)) return addAfter(id, vector);
      pending.push({ id, vector });
      ids.add(id);
      return undefined;
    };
    if (whole !== null) {
      const rows = order === 'sid' ? await sidOrder(service, whole, progress) : undefined;
      for (let r = 0; r < (rows?.length ?? whole.n); r++) {
        const i = rows ? rows[r]! : r;
        const wait = add(whole.ids?.[i] ?? String(i), whole.vectors.subarray(i * dim, (i + 1) * dim));
        if (wait) await wait;
      }
    } else {
      const reader = readAlgrCsv(input, { dim, batchSize, onSkip: (skip) => logSkip(skip.message) });
      let overNorm = 0;
      for await (const batch of reader) {
        for (let i = 0; i < batch.n; i++) {
          // The row's name is built only for a row over the bound (most rows: none).
          const norm = normAbove(batch.vectors, i * dim, dim, maxNorm);
          if (norm !== undefined) {
            logSkip(normMessage(norm, maxNorm, `${input}:${batch.lines[i]}`));
            overNorm++;
          } else await add(batch.ids[i]!, batch.vectors.subarray(i * dim, (i + 1) * dim));
        }
      }
      skipped = reader.stats.skipped + overNorm;
      // As a CSV read whole: no row left to index is an error, whether the reader or the norm bound refused them.
      if (reader.stats.rows - overNorm === 0) throw inputError(input, `no valid rows (${skipped} skipped)`);
    }
    await flush();
    await drain();
    const seconds = (performance.now() - started) / 1000;
    progress.done(`indexed ${done} items (${replaced} replaced) with ${service.model.id} in ${formatSeconds(seconds)} `
      + `(${Math.round(done / Math.max(seconds, 1e-3))} items/s, batches of ${batchSize}); the catalog holds ${service.readiness().items} items`
      + skippedLinesNote(skipped));
    return 0;
  } finally {
    await service.close();
  }
}

const NORM_ADVICE = 'normalise the rows, or raise SIDX__LIMITS__MAX_VECTOR_NORM (0 = off)';

/** Row i of an input read whole: a CSV's file:line, else the row 0-based as the default ids are, with its id. */
function rowName(input: string, whole: Embeddings, i: number): string {
  if (whole.lines) return `${input}:${whole.lines[i]}`;
  return `${input}: row ${i} (0-based; id ${JSON.stringify(whole.ids?.[i] ?? String(i))})`;
}

/**
 * The rows within limits.maxVectorNorm. A .npy/.npz row above it refuses the input; an AL-GR CSV's is skipped (logged,
 * counted), as when the CSV is streamed, so that --order and --id-file do not change which rows a file loads.
 */
function rowsWithinNorm(input: string, whole: Embeddings, maxNorm: number, logSkip: (what: string) => void): { rows: Embeddings; skipped: number } {
  if (maxNorm <= 0) return { rows: whole, skipped: 0 };
  const over = new Set<number>();
  for (let i = 0; i < whole.n; i++) {
    const norm = normAbove(whole.vectors, i * whole.dim, whole.dim, maxNorm);
    if (norm === undefined) continue; // most rows: no name to build
    const row = rowName(input, whole, i);
    const problem = normMessage(norm, maxNorm, row);
    if (whole.format !== 'algr-csv') throw new SidxError('SIDX_ERR_NORM_TOO_LARGE', `${problem}: ${NORM_ADVICE}`, { field: row });
    logSkip(problem);
    over.add(i);
  }
  return { rows: over.size === 0 ? whole : withoutRows(whole, over), skipped: over.size };
}

/** `whole` without the rows in `drop`, compacted in place (no second copy of a large input's vectors). */
function withoutRows(whole: Embeddings, drop: Set<number>): Embeddings {
  const { dim, vectors, lines } = whole;
  const ids: string[] = [];
  for (let i = 0; i < whole.n; i++) {
    if (drop.has(i)) continue;
    if (ids.length !== i) {
      vectors.copyWithin(ids.length * dim, i * dim, (i + 1) * dim);
      if (lines) lines[ids.length] = lines[i]!;
    }
    ids.push(whole.ids?.[i] ?? String(i));
  }
  return { ...whole, ids, vectors: vectors.subarray(0, ids.length * dim), n: ids.length, lines: lines?.subarray(0, ids.length) };
}

/**
 * The rows to index, in the order of their SIDs under the served model (lexicographic; ties in input order): the
 * catalog then gives them vector-file slots, and so vector and code rows, in that order. An id given more than once
 * keeps its last row only (in input order the last would replace the others).
 */
async function sidOrder(service: SidxService, whole: Embeddings, progress: ProgressLine): Promise<Int32Array> {
  const t0 = performance.now();
  const { codes } = await service.encode(whole.vectors, whole.n);
  const lastRow = new Map<string, number>();
  whole.ids?.forEach((id, i) => lastRow.set(id, i));
  const rows = sortRowsBySid(Int32Array.from({ length: whole.n }, (_, i) => i).filter((i) => !whole.ids || lastRow.get(whole.ids[i]!) === i),
    codes, service.model.levels);
  const dropped = whole.n - rows.length;
  progress.log(`rows ordered by SID in ${formatSeconds((performance.now() - t0) / 1000)}${dropped > 0 ? `; ${dropped} row(s) left out for a later row with the same id` : ''}`);
  return rows;
}
