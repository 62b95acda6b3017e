/**
 * FORGE HR@K from generated beams (`sidx eval-beams`): each row is an ordered list of SIDs a generative model
 * emitted (best first) and the set of items the user actually interacted with. As in FORGE's al_sid calc_hr
 * (algr/calc_hr.py): the items of each SID (in index order) are appended in beam order, without removing
 * repeats (a SID generated twice fills two runs of slots), the list is cut at K, and
 *   HR@K(row) = |set(first K items) ∩ truth| / |truth|,   HR@K = mean over rows with a non-empty truth.
 * SIDs that cannot be parsed, have the wrong number of levels or a code outside its codebook are skipped and
 * counted (`invalidSids`); valid SIDs that hold no item add nothing (`emptySids`).
 *
 * Files (JSON Lines, one row per line, blank lines ignored, the two files aligned line by line):
 * - beams: a JSON array of SIDs, or an object with a `sids`, `beams`, `_generated_new_text_` or `_generated_text_`
 *   array (al_sid's generation output); a SID is an array of codes [12, 7, 300], the text form "12-7-300", or the
 *   AL-GR form "C12C8199C16684".
 * - truth: a JSON array of item ids, one id, a string of ids separated by ";" (al_sid's `answer`), or an object
 *   with a `truth`, `items` or `answer` field holding one of those; numbers are turned into strings. Without a
 *   truth file, each beams line must be an object carrying `answer` (or `truth`).
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { SidxError } from '../errors.ts';
import { parseAlgr, parseSidText } from '../sid/codec.ts';

/** Items stored under one full SID, in index order, at most `limit`. */
export type SidLookup = (codes: Int32Array, limit: number) => string[];

export interface BeamHitRateResult {
  /** HR@K keyed by K. */
  hr: Record<string, number>;
  /** Rows scored (non-empty truth). */
  rows: number;
  /** Rows left out for an empty truth. */
  rowsWithoutTruth: number;
  sids: number;
  invalidSids: number;
  /** SIDs that parsed but hold no item. */
  emptySids: number;
  /** Mean item slots the beam filled per row (at most max K; repeats count). */
  meanItems: number;
}

async function* jsonLines(path: string, what: string): AsyncGenerator<{ line: number; value: unknown }> {
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let line = 0;
  try {
    for await (const text of rl) {
      line++;
      if (text.trim() === '') continue;
      try {
        yield { line, value: JSON.parse(text) };
      } catch (err) {
        throw new SidxError('SIDX_ERR_INVALID_INPUT', `${path}:${line}: ${what} line is not JSON (${(err as Error).message})`, { field: what });
      }
    }
  } catch (err) {
    if (err instanceof SidxError) throw err;
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `${path}: cannot be read (${(err as Error).message})`, { field: what, cause: err });
  }
}

function listOf(value: unknown, keys: readonly string[]): unknown[] | undefined {
  if (Array.isArray(value)) return value;
  if (typeof value === 'object' && value !== null) {
    for (const k of keys) {
      const v = (value as Record<string, unknown>)[k];
      if (Array.isArray(v)) return v;
    }
  }
  return undefined;
}

/** A SID of `codebookSizes.length` levels from any accepted form, or undefined when it is invalid. */
export function parseBeamSid(value: unknown, codebookSizes: readonly number[]): Int32Array | undefined {
  const levels = codebookSizes.length;
  try {
    let codes: Int32Array;
    if (Array.isArray(value)) {
      if (value.length !== levels || !value.every((c) => Number.isInteger(c) && c >= 0)) return undefined;
      codes = Int32Array.from(value as number[]);
    } else if (typeof value === 'string' && value.startsWith('C')) {
      codes = parseAlgr(value, codebookSizes);
    } else if (typeof value === 'string') {
      codes = parseSidText(value, levels);
    } else {
      return undefined;
    }
    return codes.every((c, l) => c < codebookSizes[l]!) ? codes : undefined;
  } catch {
    return undefined;
  }
}

const BEAM_KEYS = ['sids', 'beams', '_generated_new_text_', '_generated_text_'];

/** Item ids of a truth value (see module doc), or undefined when it has none of the accepted forms. */
function truthIds(value: unknown): string[] | undefined {
  if (typeof value === 'number') return [String(value)];
  if (typeof value === 'string') return value.split(';').map((s) => s.trim()).filter((s) => s !== '');
  if (Array.isArray(value)) return value.every((x) => typeof x === 'string' || typeof x === 'number') ? value.map(String) : undefined;
  if (typeof value === 'object' && value !== null) {
    const o = value as Record<string, unknown>;
    for (const key of ['truth', 'items', 'answer']) if (o[key] !== undefined) return truthIds(o[key]);
  }
  return undefined;
}

/** HR@K over a beams file and an aligned truth file (or truth carried by the beams lines when `truthPath` is undefined). */
export async function beamHitRate(beamsPath: string, truthPath: string | undefined, ks: readonly number[],
  codebookSizes: readonly number[], lookup: SidLookup): Promise<BeamHitRateResult> {
  const kMax = Math.max(...ks);
  const hits = new Float64Array(ks.length);
  const out = { rows: 0, rowsWithoutTruth: 0, sids: 0, invalidSids: 0, emptySids: 0 };
  let items = 0;
  const truthRows = truthPath === undefined ? undefined : jsonLines(truthPath, 'truth');
  for await (const { line, value } of jsonLines(beamsPath, 'beams')) {
    let truthValue: unknown = value;
    let where = `${beamsPath}:${line}`;
    if (truthRows) {
      const t = await truthRows.next();
      if (t.done) throw new SidxError('SIDX_ERR_INVALID_INPUT', `${truthPath} has fewer rows than ${beamsPath} (line ${line})`, { field: 'truth' });
      truthValue = t.value.value;
      where = `${truthPath}:${t.value.line}`;
    } else if (Array.isArray(value)) {
      truthValue = undefined;
    }
    const beam = listOf(value, BEAM_KEYS);
    if (!beam) throw new SidxError('SIDX_ERR_INVALID_INPUT', `${beamsPath}:${line}: expected an array of SIDs or {"sids": [...]}`, { field: 'beams' });
    const ids = truthIds(truthValue);
    if (!ids) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `${where}: expected item ids (an array, one id, "a;b", or {"truth"|"answer": ...})`, { field: 'truth' });
    }
    const ranked: string[] = [];
    for (const raw of beam) {
      out.sids++;
      const codes = parseBeamSid(raw, codebookSizes);
      if (!codes) {
        out.invalidSids++;
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
    const truth = new Set(ids);
    if (truth.size === 0) {
      out.rowsWithoutTruth++;
      continue;
    }
    out.rows++;
    items += ranked.length;
    ks.forEach((k, j) => {
      let h = 0;
      for (const id of new Set(ranked.slice(0, k))) if (truth.has(id)) h++;
      hits[j]! += h / truth.size;
    });
  }
  if (truthRows && !(await truthRows.next()).done) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `${truthPath} has more rows than ${beamsPath}`, { field: 'truth' });
  }
  const hr: Record<string, number> = {};
  ks.forEach((k, j) => {
    hr[String(k)] = out.rows > 0 ? hits[j]! / out.rows : 0;
  });
  return { hr, ...out, meanItems: out.rows > 0 ? items / out.rows : 0 };
}
