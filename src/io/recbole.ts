/**
 * RecBole sequential `.inter` reader: tab-separated, header naming typed columns, at least
 * `user_id:token`, `item_id_list:token_seq` (space-separated history, oldest first) and `item_id:token` (the next
 * item); other columns are ignored, columns may come in any order. Item tokens must be item indices (non-negative
 * integers below 2^31), as in the shared data sets. Streamed line by line (node:readline); CRLF tolerated; an empty
 * history is allowed. Any bad line is an error (SIDX_ERR_INVALID_INPUT) naming the file and the 1-based line.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { inputError, ioError } from './input-error.ts';
import { IntList, type PredictionSet } from './interactions.ts';

export interface RecboleInter extends PredictionSet {
  file: string;
  /** Number of rows (users.length). */
  n: number;
  /** Largest item index seen (history or target), -1 for an empty file. */
  maxItem: number;
}

const USER = 'user_id:token';
const HISTORY = 'item_id_list:token_seq';
const TARGET = 'item_id:token';
const MAX_INDEX = 2 ** 31 - 1;

/** Parses a non-negative integer token; -1 if it is not one (or too large). Allocation-free. */
function parseIndex(s: string, from: number, to: number): number {
  if (to <= from || to - from > 10) return -1;
  let v = 0;
  for (let i = from; i < to; i++) {
    const c = s.charCodeAt(i) - 48;
    if (c < 0 || c > 9) return -1;
    v = v * 10 + c;
  }
  return v > MAX_INDEX ? -1 : v;
}

/** Reads one `.inter` file into a CSR prediction set (row order = file order). */
export async function readRecboleInter(path: string): Promise<RecboleInter> {
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  const users: string[] = [];
  const offsets = new IntList();
  const items = new IntList(16384);
  const targets = new IntList();
  offsets.push(0);
  let line = 0;
  let cols: { user: number; history: number; target: number; count: number } | null = null;
  let maxItem = -1;
  try {
    for await (const raw of rl) {
      line++;
      const text = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      if (cols === null) {
        const names = (line === 1 && text.charCodeAt(0) === 0xfeff ? text.slice(1) : text).split('\t').map((s) => s.trim());
        const [user, history, target] = [USER, HISTORY, TARGET].map((c) => names.indexOf(c)) as [number, number, number];
        if (user < 0 || history < 0 || target < 0) {
          throw inputError(path, `bad header: expected tab-separated columns ${USER}, ${HISTORY}, ${TARGET}; got ${JSON.stringify(text)}`, line);
        }
        cols = { user, history, target, count: names.length };
        continue;
      }
      if (text.trim().length === 0) continue;
      const fields = text.split('\t');
      if (fields.length !== cols.count) {
        throw inputError(path, `expected ${cols.count} tab-separated fields, got ${fields.length}`, line);
      }
      const user = fields[cols.user]!.trim();
      if (user.length === 0) throw inputError(path, `empty ${USER}`, line);
      const target = fields[cols.target]!.trim();
      const t = parseIndex(target, 0, target.length);
      if (t < 0) throw inputError(path, `${TARGET} ${JSON.stringify(target)} is not an item index (integer 0..${MAX_INDEX})`, line);
      const hist = fields[cols.history]!;
      let start = 0;
      let position = 0;
      for (let i = 0; i <= hist.length; i++) {
        if (i < hist.length && hist.charCodeAt(i) !== 32) continue;
        if (i > start) {
          position++;
          const v = parseIndex(hist, start, i);
          if (v < 0) {
            throw inputError(path, `${HISTORY} token ${position} ${JSON.stringify(hist.slice(start, i))} is not an item index (integer 0..${MAX_INDEX})`, line);
          }
          items.push(v);
          if (v > maxItem) maxItem = v;
        }
        start = i + 1;
      }
      if (t > maxItem) maxItem = t;
      users.push(user);
      targets.push(t);
      offsets.push(items.length);
    }
  } catch (err) {
    throw ioError(path, err);
  } finally {
    rl.close();
  }
  if (cols === null) throw inputError(path, `empty file: expected a header with columns ${USER}, ${HISTORY}, ${TARGET}`);
  return { file: path, n: users.length, users, offsets: offsets.toArray(), items: items.toArray(), targets: targets.toArray(), maxItem };
}
