/**
 * Reader for LETTER's published SIDs (`{"<item_id>": ["<a_128>", "<b_241>", "<c_146>", "<d_235>"], ...}`):
 * the token's letter is the level (a = first), the number the code. Used to compare our SIDs with LETTER's.
 */
import { readFile } from 'node:fs/promises';
import { SidxError } from '../errors.ts';
import { assertCodebookSizes, MAX_CODE, MAX_LEVELS } from '../sid/codec.ts';

export interface LetterSids {
  /** Item ids in file order. */
  itemIds: string[];
  /** n × levels codes, row-major. */
  codes: Int32Array;
  n: number;
  levels: number;
  /** As given, or else the largest code seen per level + 1 (LETTER itself uses 256 per level). */
  codebookSizes: number[];
}

const TOKEN = /^<([a-z])_(0|[1-9][0-9]{0,4})>$/;

function invalid(message: string, field: string): SidxError {
  return new SidxError('SIDX_ERR_INVALID_INPUT', message, { field });
}

/** Reads and parses a LETTER SID file; with `codebookSizes`, every code must fall inside its codebook. */
export async function readLetterSids(path: string, opts: { codebookSizes?: number[] } = {}): Promise<LetterSids> {
  return parseLetterSids(await readFile(path, 'utf8'), path, opts);
}

/** Parses the JSON text of a LETTER SID file; `source` names it in errors. */
export function parseLetterSids(text: string, source = 'letter_sids.json', opts: { codebookSizes?: number[] } = {}): LetterSids {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `${source}: not valid JSON (${(err as Error).message})`, { field: source, cause: err });
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed)) {
    throw invalid(`${source}: expected an object of item id -> SID tokens`, source);
  }
  const entries = Object.entries(parsed as Record<string, unknown>);
  if (entries.length === 0) throw invalid(`${source}: no items`, source);
  const first = entries[0][1];
  const levels = Array.isArray(first) ? first.length : 0;
  if (levels < 1 || levels > MAX_LEVELS) throw invalid(`${source}: item "${entries[0][0]}" must list 1..${MAX_LEVELS} tokens`, `${source}#${entries[0][0]}`);
  if (opts.codebookSizes !== undefined) {
    assertCodebookSizes(opts.codebookSizes);
    if (opts.codebookSizes.length !== levels) throw invalid(`${source}: ${levels} levels, codebookSizes lists ${opts.codebookSizes.length}`, 'codebookSizes');
  }

  const n = entries.length;
  const codes = new Int32Array(n * levels);
  const itemIds: string[] = new Array(n);
  const maxCode = new Array<number>(levels).fill(0);
  for (let i = 0; i < n; i++) {
    const [id, tokens] = entries[i];
    itemIds[i] = id;
    if (!Array.isArray(tokens) || tokens.length !== levels) {
      throw invalid(`${source}: item "${id}" must list ${levels} tokens like "<a_12>"`, `${source}#${id}`);
    }
    for (let l = 0; l < levels; l++) {
      const token: unknown = tokens[l];
      const match = typeof token === 'string' ? TOKEN.exec(token) : null;
      const expected = String.fromCharCode(97 + l);
      const code = match === null ? -1 : Number(match[2]);
      const limit = opts.codebookSizes?.[l] ?? MAX_CODE + 1;
      if (match === null || match[1] !== expected || code >= limit) {
        throw invalid(
          `${source}: item "${id}" token ${l} is ${JSON.stringify(token)}, expected "<${expected}_N>" with N in 0..${limit - 1}`,
          `${source}#${id}[${l}]`,
        );
      }
      codes[i * levels + l] = code;
      if (code > maxCode[l]) maxCode[l] = code;
    }
  }
  const codebookSizes = opts.codebookSizes ? [...opts.codebookSizes] : maxCode.map((c) => c + 1);
  return { itemIds, codes, n, levels, codebookSizes };
}
