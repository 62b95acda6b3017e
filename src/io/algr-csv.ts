/**
 * AL-GR Item-EMB CSV reader: lines `base62_string,feature`, feature = base64 (standard; the URL-safe alphabet is
 * accepted too) of D little-endian float32.
 * An optional header line (`base62_string,feature`, or any `<name>,feature`) is detected on line 1; a UTF-8 BOM,
 * CRLF line ends and double quotes around a field are tolerated; `.gz` files are gunzipped on the fly.
 *
 * Streaming: `readAlgrCsv(path)` is an async iterable of batches read line by line (node:readline over a read
 * stream), never the whole file. Each batch's vectors are decoded straight into that batch's Float32Array
 * (Buffer#write 'base64' at the row's byte offset: no per-row allocation). Bad rows are skipped, not fatal: missing
 * comma, extra field, empty id, invalid base64, wrong dimension (vs `options.dim`, else the first good row's),
 * non-finite values. Each skip is reported to `onSkip` as `file:line: reason` and counted in `reader.stats`
 * (complete once iteration ends); `strict: true` turns the first skip into a thrown SidxError instead.
 * Ids are not checked for duplicates (that would hold every id in memory).
 */
import { createReadStream } from 'node:fs';
import { endianness } from 'node:os';
import { createInterface } from 'node:readline';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { base64ByteLength } from '../base64.ts';
import { firstNonFinite } from '../finite.ts';
import { inputError, ioError } from './input-error.ts';

export type AlgrSkipReason = 'missing-field' | 'extra-field' | 'empty-id' | 'base64' | 'dimension' | 'not-finite';

export interface AlgrSkip {
  file: string;
  /** 1-based line number in the file. */
  line: number;
  reason: AlgrSkipReason;
  /** `file:line: what is wrong`. */
  message: string;
}

export interface AlgrBatch {
  ids: string[];
  /** Row-major [n, dim]; a fresh array per batch (the caller may keep it). */
  vectors: Float32Array;
  n: number;
  dim: number;
  /** Line number of the batch's first row; `lines[i]` is row i's line (skipped rows leave gaps). */
  firstLine: number;
  lines: Uint32Array;
}

export interface AlgrStats {
  file: string;
  /** The header line, when line 1 was one. */
  header: string | null;
  /** Lines read (header and blank lines included). */
  lines: number;
  rows: number;
  skipped: number;
  skippedBy: Record<AlgrSkipReason, number>;
  /** The first `keepSkips` skips (all of them are passed to `onSkip`). */
  firstSkips: AlgrSkip[];
  dim: number | null;
  /** true once the file was read to the end. */
  done: boolean;
}

export interface AlgrCsvOptions {
  /** Rows per batch (default 8192). */
  batchSize?: number;
  /** Expected dimension; without it the first good row sets it. */
  dim?: number;
  onSkip?: (skip: AlgrSkip) => void;
  /** Throw on the first bad row instead of skipping it. */
  strict?: boolean;
  /** How many skips `stats.firstSkips` keeps (default 100). */
  keepSkips?: number;
}

const B64 = /^[A-Za-z0-9+/_-]*={0,2}$/;
const LITTLE_ENDIAN_HOST = endianness() === 'LE';

function unquote(s: string): string {
  const t = s.trim();
  return t.length >= 2 && t.charCodeAt(0) === 34 && t.charCodeAt(t.length - 1) === 34 ? t.slice(1, -1) : t;
}

/** Why a feature of `nbytes` bytes is not a row of `dim` values; `dimFrom` names the row that set dim, if one did. */
function dimensionMismatch(nbytes: number, dim: number, dimFrom: string): string {
  const from = dimFrom === '' ? '' : `from ${dimFrom}`;
  if (nbytes % 4 !== 0) {
    return `feature decodes to ${nbytes} bytes, not a whole number of float32 values (expected ${dim} values = ${dim * 4} bytes${from && `, ${from}`})`;
  }
  return `feature decodes to ${nbytes / 4} values, expected ${dim}${from && ` (${from})`}`;
}

function newStats(file: string): AlgrStats {
  return {
    file, header: null, lines: 0, rows: 0, skipped: 0, dim: null, done: false, firstSkips: [],
    skippedBy: { 'missing-field': 0, 'extra-field': 0, 'empty-id': 0, base64: 0, dimension: 0, 'not-finite': 0 },
  };
}

export class AlgrCsvReader implements AsyncIterable<AlgrBatch> {
  readonly path: string;
  readonly #options: AlgrCsvOptions;
  #stats: AlgrStats;

  constructor(path: string, options: AlgrCsvOptions = {}) {
    const { batchSize = 8192, dim, keepSkips = 100 } = options;
    if (!Number.isSafeInteger(batchSize) || batchSize < 1) throw inputError('batchSize', `must be a positive integer, got ${batchSize}`);
    if (dim !== undefined && (!Number.isSafeInteger(dim) || dim < 1)) throw inputError('dim', `must be a positive integer, got ${dim}`);
    this.path = path;
    this.#options = { ...options, batchSize, keepSkips };
    this.#stats = newStats(path);
  }

  /** Counts so far; final once iteration has ended (`done`). Each new iteration starts them afresh. */
  get stats(): Readonly<AlgrStats> {
    return this.#stats;
  }

  async *[Symbol.asyncIterator](): AsyncGenerator<AlgrBatch> {
    const stats = newStats(this.path);
    this.#stats = stats;
    const file = this.path;
    const batchSize = this.#options.batchSize!;
    let dim = this.#options.dim ?? 0;
    let dimFrom = ''; // the row that set dim; none when options.dim did (the caller's own dimension needs no source)
    let vectors = new Float32Array(0);
    let bytes = Buffer.alloc(0);
    let ids: string[] = [];
    let lines = new Uint32Array(batchSize);
    let n = 0;
    const startBatch = () => {
      vectors = new Float32Array(batchSize * dim);
      bytes = Buffer.from(vectors.buffer, 0, vectors.byteLength);
      ids = [];
      lines = new Uint32Array(batchSize);
      n = 0;
    };
    const finishBatch = (): AlgrBatch => {
      const full = n === batchSize;
      const batch: AlgrBatch = {
        ids, n, dim, vectors: full ? vectors : vectors.slice(0, n * dim), lines: full ? lines : lines.slice(0, n), firstLine: lines[0]!,
      };
      startBatch();
      return batch;
    };
    const skip = (line: number, reason: AlgrSkipReason, what: string) => {
      const s: AlgrSkip = { file, line, reason, message: `${file}:${line}: ${what}` };
      if (this.#options.strict) throw inputError(file, what, line);
      stats.skipped++;
      stats.skippedBy[reason]++;
      if (stats.firstSkips.length < this.#options.keepSkips!) stats.firstSkips.push(s);
      this.#options.onSkip?.(s);
    };
    if (dim > 0) startBatch();

    const input = openInput(file);
    const rl = createInterface({ input, crlfDelay: Infinity });
    try {
      for await (let text of rl) {
        const line = ++stats.lines;
        if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        const comma = text.indexOf(',');
        if (comma < 0) {
          if (text.trim().length > 0) skip(line, 'missing-field', 'missing comma: expected `base62_string,feature`');
          continue;
        }
        const feature = unquote(text.slice(comma + 1));
        if (line === 1 && feature.toLowerCase() === 'feature') {
          stats.header = text.trim();
          continue;
        }
        if (feature.includes(',')) { skip(line, 'extra-field', 'more than 2 fields: expected `base62_string,feature`'); continue; }
        const id = unquote(text.slice(0, comma));
        if (id.length === 0) { skip(line, 'empty-id', 'empty id (base62_string)'); continue; }
        const len = feature.length;
        const nbytes = base64ByteLength(feature);
        if (nbytes < 0) {
          skip(line, 'base64', `feature is not valid base64 (${len} characters, not a positive multiple of 4)`);
          continue;
        }
        if (dim === 0 || nbytes !== dim * 4) {
          // Rare path (first row, or a bad one): full character check so the reason is right.
          if (!B64.test(feature)) { skip(line, 'base64', `feature is not valid base64 (${len} characters)`); continue; }
          if (dim === 0) {
            if (nbytes === 0 || nbytes % 4 !== 0) {
              skip(line, 'dimension', `feature decodes to ${nbytes} bytes, not a whole number of float32 values`);
              continue;
            }
            dim = nbytes / 4;
            dimFrom = `line ${line}, the first row`;
            startBatch();
          } else {
            skip(line, 'dimension', dimensionMismatch(nbytes, dim, dimFrom));
            continue;
          }
        }
        const at = n * dim * 4;
        // Node's decoder skips characters outside the alphabet, so a short write means invalid base64.
        if (bytes.write(feature, at, nbytes, 'base64') !== nbytes) {
          skip(line, 'base64', `feature is not valid base64 (${len} characters)`);
          continue;
        }
        if (!LITTLE_ENDIAN_HOST) bytes.subarray(at, at + nbytes).swap32();
        const bad = firstNonFinite(vectors, n * dim, (n + 1) * dim);
        if (bad >= 0) { skip(line, 'not-finite', `value ${bad - n * dim + 1} is ${vectors[bad]} (values must be finite)`); continue; }
        ids.push(id);
        lines[n++] = line;
        stats.rows++;
        if (n === batchSize) yield finishBatch();
      }
      if (n > 0) yield finishBatch();
      stats.dim = dim > 0 ? dim : null;
      stats.done = true;
    } catch (err) {
      throw ioError(file, err);
    } finally {
      rl.close();
      input.destroy();
    }
  }
}

function openInput(file: string): Readable {
  const raw = createReadStream(file);
  if (!file.endsWith('.gz')) return raw;
  const gunzip = createGunzip();
  raw.on('error', (err) => gunzip.destroy(err));
  gunzip.on('close', () => raw.destroy());
  return raw.pipe(gunzip);
}

/** The end of a command's summary line for `skipped` input lines, each logged as it was skipped ('' for none). */
export function skippedLinesNote(skipped: number): string {
  return skipped === 0 ? '' : `; ${skipped} input line${skipped === 1 ? '' : 's'} skipped (see the "skipped" lines above)`;
}

/** Streams an AL-GR CSV in batches; read `.stats` after the loop for the row and skip counts. */
export function readAlgrCsv(path: string, options: AlgrCsvOptions = {}): AlgrCsvReader {
  return new AlgrCsvReader(path, options);
}

export interface AlgrCsvData {
  ids: string[];
  /** Row-major [n, dim]. */
  vectors: Float32Array;
  n: number;
  dim: number;
  /** lines[i]: row i's line in the file (1-based), for messages about a row. */
  lines: Uint32Array;
  stats: AlgrStats;
}

/** Reads a whole AL-GR CSV into one matrix (for files that fit in memory; use `readAlgrCsv` for the rest). */
export async function collectAlgrCsv(path: string, options: AlgrCsvOptions = {}): Promise<AlgrCsvData> {
  const reader = readAlgrCsv(path, options);
  const batches: AlgrBatch[] = [];
  for await (const b of reader) batches.push(b);
  const stats = reader.stats as AlgrStats;
  const dim = stats.dim ?? options.dim ?? 0;
  const n = stats.rows;
  if (n === 0) {
    const first = stats.firstSkips[0];
    throw inputError(path, `no valid rows (${stats.lines} lines, ${stats.skipped} skipped)${first ? `; first problem: ${first.message}` : ''}`);
  }
  if (batches.length === 1) return { ids: batches[0]!.ids, vectors: batches[0]!.vectors, n, dim, lines: batches[0]!.lines, stats };
  const vectors = new Float32Array(n * dim);
  const ids: string[] = new Array<string>(n);
  const lines = new Uint32Array(n);
  let row = 0;
  for (const b of batches) {
    vectors.set(b.vectors, row * dim);
    lines.set(b.lines, row);
    for (let i = 0; i < b.n; i++) ids[row + i] = b.ids[i]!;
    row += b.n;
  }
  return { ids, vectors, n, dim, lines, stats };
}
