/**
 * FORGE HR@K from generated beams (`sidx eval-beams`): each row is an ordered list of SIDs a generative model
 * emitted (best first) and the set of items the user actually interacted with. The SIDs map to items through the
 * index in beam order (within one SID, in index order), each item counted once, truncated to K items:
 *   HR@K(row) = |top-K items ∩ truth| / |truth|,   HR@K = mean over rows with a non-empty truth
 * (FORGE al_sid calc_hr semantics). SIDs that cannot be parsed, have the wrong number of levels or a code outside
 * its codebook are skipped and counted.
 *
 * Files (JSON Lines, one row per line, blank lines ignored, the two files aligned line by line):
 * - beams: a JSON array of SIDs, or an object with a `sids` (or `beams`) array; a SID is an array of codes
 *   [12, 7, 300], the text form "12-7-300", or the AL-GR form "C12C8199C16684".
 * - truth: a JSON array of item ids, a single id, or an object with a `truth` (or `items`) array; ids are strings
 *   (numbers are turned into strings).
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
  /** Mean items the beam gave per row (at most max K). */
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

/** HR@K over aligned beam and truth files. */
export async function beamHitRate(beamsPath: string, truthPath: string, ks: readonly number[],
  codebookSizes: readonly number[], lookup: SidLookup): Promise<BeamHitRateResult> {
  const kMax = Math.max(...ks);
  const hits = new Float64Array(ks.length);
  const out = { rows: 0, rowsWithoutTruth: 0, sids: 0, invalidSids: 0, emptySids: 0 };
  let items = 0;
  const truthRows = jsonLines(truthPath, 'truth');
  for await (const { line, value } of jsonLines(beamsPath, 'beams')) {
    const t = await truthRows.next();
    if (t.done) throw new SidxError('SIDX_ERR_INVALID_INPUT', `${truthPath} has fewer rows than ${beamsPath} (line ${line})`, { field: 'truth' });
    const beam = listOf(value, ['sids', 'beams']);
    if (!beam) throw new SidxError('SIDX_ERR_INVALID_INPUT', `${beamsPath}:${line}: expected an array of SIDs or {"sids": [...]}`, { field: 'beams' });
    const rawTruth = typeof t.value.value === 'string' || typeof t.value.value === 'number' ? [t.value.value] : listOf(t.value.value, ['truth', 'items']);
    if (!rawTruth || !rawTruth.every((x) => typeof x === 'string' || typeof x === 'number')) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `${truthPath}:${t.value.line}: expected item ids (an array, one id, or {"truth": [...]})`, { field: 'truth' });
    }
    const ranked: string[] = [];
    const seen = new Set<string>();
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
        if (seen.has(id)) continue;
        seen.add(id);
        ranked.push(id);
      }
    }
    const truth = new Set(rawTruth.map(String));
    if (truth.size === 0) {
      out.rowsWithoutTruth++;
      continue;
    }
    out.rows++;
    items += ranked.length;
    ks.forEach((k, j) => {
      let h = 0;
      for (let i = 0; i < Math.min(k, ranked.length); i++) if (truth.has(ranked[i]!)) h++;
      hits[j]! += h / truth.size;
    });
  }
  if (!(await truthRows.next()).done) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `${truthPath} has more rows than ${beamsPath}`, { field: 'truth' });
  }
  const hr: Record<string, number> = {};
  ks.forEach((k, j) => {
    hr[String(k)] = out.rows > 0 ? hits[j]! / out.rows : 0;
  });
  return { hr, ...out, meanItems: out.rows > 0 ? items / out.rows : 0 };
}
