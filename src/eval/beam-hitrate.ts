/**
 * FORGE HR@K from generated beams (`sidx eval-beams`), as FORGE's al_sid scores them (algr/calc_hr.py): each row is
 * an ordered list of SIDs a generative model emitted (best first) and the items the user went on to interact with.
 * The items of each SID (in index order) are appended in beam order, without removing repeats (a SID generated
 * twice fills two runs of slots), the list is cut at K, and
 *   HR@K(row) = |set(first K items) ∩ truth| / |truth|,   HR@K = mean over rows.
 * SIDs that cannot be parsed, have the wrong number of levels or a code outside its codebook are skipped and
 * counted (`invalidSids`, the first one kept in `firstInvalid`); valid SIDs that hold no item add nothing
 * (`emptySids`).
 *
 * Files (JSON Lines, the two files aligned line by line). As in al_sid, each line is stripped of Python's
 * whitespace (`str.strip()`: also \f, \x1c..\x1f, U+0085, NBSP; not the BOM) and blank lines are skipped; a line
 * that is not JSON is an error (al_sid prints and skips it) naming its invisible characters by code point.
 * - beams: a JSON array of SIDs, or an object with a `sids` or `beams` array, or al_sid's generation line: its
 *   `_generated_text_` array, or `_generated_new_text_` with `decoderOnly` (al_sid's --decoder_only); a SID is
 *   an array of codes [12, 7, 300], the text form "12-7-300", or AL-GR tokens "C12C8199C16684" (level l's token
 *   = code + l x `tokenOffset`, al_sid's 8192 by default). A beam given as a string is an error (al_sid would
 *   iterate its characters and score 0).
 * - truth: a JSON array of item ids, one id, a string of ids separated by ";" (al_sid's `answer`), or an object
 *   with a `truth`, `items` or `answer` field holding one of those; numbers are turned into strings. Without a
 *   truth file, each beams line must be an object carrying `answer` (or `truth`).
 * Answers as al_sid reads them: `answer.strip().split(";")` as a set, parts neither trimmed nor dropped when empty
 * (so "x; y" holds " y", "x;y;" holds "", which no item matches), and a row with an empty answer scores 0.
 * `lenientAnswers` instead strips each id, drops empty ones and leaves rows without ids out (`rowsWithoutTruth`).
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { SidxError } from '../errors.ts';
import { describeInvisible, pyStrip } from '../io/text-chars.ts';
import { ALGR_TOKEN_OFFSET, parseAlgr, parseSidText } from '../sid/codec.ts';

/** Items stored under one full SID, in index order, at most `limit`. */
export type SidLookup = (codes: Int32Array, limit: number) => string[];

export interface BeamHitRateOptions {
  ks: readonly number[];
  /** Per level; MAX_CODEBOOK_SIZE where the size is not known. */
  codebookSizes: readonly number[];
  lookup: SidLookup;
  /** AL-GR token offset per level (default 8192, al_sid's). */
  tokenOffset?: number;
  /** Read `_generated_new_text_` instead of `_generated_text_` (al_sid's --decoder_only). */
  decoderOnly?: boolean;
  /** Strip each answer id, drop empty ones, leave rows without ids out (not al_sid's scoring). */
  lenientAnswers?: boolean;
}

export interface BeamHitRateResult {
  /** HR@K keyed by K. */
  hr: Record<string, number>;
  /** Rows scored. */
  rows: number;
  /** Rows whose truth holds no non-empty id: scored 0 (al_sid), or left out with `lenientAnswers`. */
  rowsWithoutTruth: number;
  sids: number;
  invalidSids: number;
  /** The first invalid SID: where, what, why. */
  firstInvalid: { line: number; sid: unknown; reason: string } | null;
  /** SIDs that parsed but hold no item. */
  emptySids: number;
  /** Mean item slots the beam filled per row (at most max K; repeats count). */
  meanItems: number;
}

interface Line { line: number; text: string; value: unknown }

function lineError(path: string, line: number, text: string, message: string, field: string): SidxError {
  const invisible = describeInvisible(text);
  return new SidxError('SIDX_ERR_INVALID_INPUT', `${path}:${line}: ${message}${invisible ? `; the line holds ${invisible}` : ''}`, { field });
}

async function* jsonLines(path: string, what: string): AsyncGenerator<Line> {
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of rl) {
      line++;
      const stripped = pyStrip(text);
      if (stripped === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(stripped);
      } catch (err) {
        throw lineError(path, line, text, `${what} line is not JSON (${(err as Error).message})`, what);
      }
      yield { line, text, value };
    }
  } catch (err) {
    if (err instanceof SidxError) throw err;
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `${path}: cannot be read (${(err as Error).message})`, { field: what, cause: err });
  }
}

const GENERATED = '_generated_text_';
const GENERATED_NEW = '_generated_new_text_';

/** The beam of a beams line, or a reason why there is none. */
function beamOf(value: unknown, decoderOnly: boolean): unknown[] | string {
  if (Array.isArray(value)) return value;
  if (typeof value !== 'object' || value === null) {
    return `expected an array of SIDs or an object holding one, got ${typeof value === 'string' ? 'a string' : JSON.stringify(value)}`;
  }
  const o = value as Record<string, unknown>;
  let key: string | undefined;
  if (GENERATED in o || GENERATED_NEW in o) {
    key = decoderOnly ? GENERATED_NEW : GENERATED;
    if (!(key in o)) {
      return decoderOnly
        ? `--decoder-only reads ${GENERATED_NEW}, which this line lacks (it has ${GENERATED}: drop --decoder-only)`
        : `al_sid reads ${GENERATED} unless --decoder-only, and this line has only ${GENERATED_NEW}: pass --decoder-only`;
    }
  } else {
    key = ['sids', 'beams'].find((k) => k in o);
    if (key === undefined) return `expected an array of SIDs or {"sids" | "${GENERATED}" | "${GENERATED_NEW}": [...]}`;
  }
  const beam = o[key];
  if (typeof beam === 'string') {
    return `"${key}" is a string, not an array of SIDs (al_sid would iterate its characters and score 0): write [${JSON.stringify(beam.slice(0, 40))}, ...]`;
  }
  return Array.isArray(beam) ? beam : `"${key}" must be an array of SIDs, got ${JSON.stringify(beam)}`;
}

/** A SID of `codebookSizes.length` levels from any accepted form, or why it is invalid. */
export function readBeamSid(value: unknown, codebookSizes: readonly number[], tokenOffset = ALGR_TOKEN_OFFSET): Int32Array | string {
  const levels = codebookSizes.length;
  let codes: Int32Array;
  try {
    if (Array.isArray(value)) {
      if (value.length !== levels || !value.every((c) => Number.isInteger(c) && c >= 0)) return `expected ${levels} non-negative integer codes`;
      codes = Int32Array.from(value as number[]);
    } else if (typeof value === 'string') {
      codes = value.startsWith('C') ? parseAlgr(value, codebookSizes, 'sid', tokenOffset) : parseSidText(value, levels);
    } else {
      return 'a SID is a string or an array of codes';
    }
  } catch (err) {
    const invisible = typeof value === 'string' ? describeInvisible(value) : '';
    return `${(err as Error).message}${invisible ? ` (it holds ${invisible})` : ''}`;
  }
  const l = codes.findIndex((c, i) => c >= codebookSizes[i]!);
  return l < 0 ? codes : `code ${codes[l]} at level ${l} is outside the codebook (size ${codebookSizes[l]})`;
}

/** `readBeamSid`, undefined when invalid. */
export function parseBeamSid(value: unknown, codebookSizes: readonly number[], tokenOffset = ALGR_TOKEN_OFFSET): Int32Array | undefined {
  const codes = readBeamSid(value, codebookSizes, tokenOffset);
  return typeof codes === 'string' ? undefined : codes;
}

/** Item ids of a truth value (see module doc), or undefined when it has none of the accepted forms. */
function truthIds(value: unknown, lenient: boolean): string[] | undefined {
  const tidy = (ids: string[]): string[] => (lenient ? ids.map(pyStrip).filter((s) => s !== '') : ids);
  if (typeof value === 'number') return [String(value)];
  if (typeof value === 'string') return tidy((lenient ? value : pyStrip(value)).split(';'));
  if (Array.isArray(value)) return value.every((x) => typeof x === 'string' || typeof x === 'number') ? tidy(value.map(String)) : undefined;
  if (typeof value === 'object' && value !== null) {
    const o = value as Record<string, unknown>;
    for (const key of ['truth', 'items', 'answer']) if (o[key] !== undefined) return truthIds(o[key], lenient);
  }
  return undefined;
}

/** HR@K over a beams file and an aligned truth file (or truth carried by the beams lines when `truthPath` is undefined). */
export async function beamHitRate(beamsPath: string, truthPath: string | undefined, options: BeamHitRateOptions): Promise<BeamHitRateResult> {
  const { ks, codebookSizes, lookup, tokenOffset = ALGR_TOKEN_OFFSET, decoderOnly = false, lenientAnswers = false } = options;
  const kMax = Math.max(...ks);
  const hits = new Float64Array(ks.length);
  const out = { rows: 0, rowsWithoutTruth: 0, sids: 0, invalidSids: 0, emptySids: 0 };
  let firstInvalid: BeamHitRateResult['firstInvalid'] = null;
  let items = 0;
  const truthRows = truthPath === undefined ? undefined : jsonLines(truthPath, 'truth');
  for await (const { line, text, value } of jsonLines(beamsPath, 'beams')) {
    let truth: Line = { line, text, value: Array.isArray(value) ? undefined : value };
    let truthWhere = beamsPath;
    if (truthRows) {
      const t = await truthRows.next();
      if (t.done) throw new SidxError('SIDX_ERR_INVALID_INPUT', `${truthPath} has fewer rows than ${beamsPath} (line ${line})`, { field: 'truth' });
      truth = t.value;
      truthWhere = truthPath!;
    }
    const beam = beamOf(value, decoderOnly);
    if (typeof beam === 'string') throw lineError(beamsPath, line, text, beam, 'beams');
    const ids = truthIds(truth.value, lenientAnswers);
    if (!ids) {
      throw lineError(truthWhere, truth.line, truth.text, 'expected item ids (an array, one id, "a;b", or {"truth"|"answer": ...})', 'truth');
    }
    const ranked: string[] = [];
    for (const raw of beam) {
      out.sids++;
      const codes = readBeamSid(raw, codebookSizes, tokenOffset);
      if (typeof codes === 'string') {
        out.invalidSids++;
        firstInvalid ??= { line, sid: raw, reason: codes };
        continue;
      }
      if (ranked.length >= kMax) continue;
      const found = lookup(codes, kMax);
      if (found.length === 0) out.emptySids++;
      for (const id of found) {
        if (ranked.length >= kMax) break;
        ranked.push(id);
      }
    }
    const truthSet = new Set(ids);
    if (ids.every((id) => id === '')) {
      out.rowsWithoutTruth++;
      if (lenientAnswers) continue;
    }
    out.rows++;
    items += ranked.length;
    if (truthSet.size === 0) continue; // an empty array: scores 0, like al_sid's empty answer
    ks.forEach((k, j) => {
      let h = 0;
      for (const id of new Set(ranked.slice(0, k))) if (truthSet.has(id)) h++;
      hits[j]! += h / truthSet.size;
    });
  }
  if (truthRows && !(await truthRows.next()).done) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `${truthPath} has more rows than ${beamsPath}`, { field: 'truth' });
  }
  const hr: Record<string, number> = {};
  ks.forEach((k, j) => {
    hr[String(k)] = out.rows > 0 ? hits[j]! / out.rows : 0;
  });
  return { hr, ...out, firstInvalid, meanItems: out.rows > 0 ? items / out.rows : 0 };
}
