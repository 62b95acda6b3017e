/**
 * JSON interaction sequences `{ "<user>": [item, item, ...] }` (items oldest first, non-negative integer item
 * indices below 2^31), e.g. instruments/inter.json from LETTER, and the leave-one-out split used with them.
 *
 * The file is read WHOLE (readFile + JSON.parse): fine for the shared sets (3.3 MB -> ~40 MB transient), not for
 * files of many GB. The result is compact CSR (./interactions.ts). User order is JavaScript object order: integer
 * keys ascending, then other keys in file order; a duplicated user key keeps its last list (JSON.parse semantics).
 * Errors are SIDX_ERR_INVALID_INPUT naming the file and the line: of the syntax error, or of the user entry at fault.
 */
import { readFile } from 'node:fs/promises';
import { inputError, ioError } from './input-error.ts';
import { IntList, type PredictionSet, type SequenceSet } from './interactions.ts';

export interface Sequences extends SequenceSet {
  file: string;
  /** Number of users. */
  n: number;
}

export interface LeaveOneOutOptions {
  /** Users with fewer items than this go wholly to train, with no valid/test row (default 3, at least 2). */
  minLength?: number;
}

export interface LeaveOneOut {
  /** Every user, with the last two items removed (users shorter than minLength keep all theirs). */
  train: SequenceSet;
  /** One row per user of at least minLength items: history = all but the last two, target = second last. */
  valid: PredictionSet;
  /** Same users as valid: history = all but the last, target = last. */
  test: PredictionSet;
  /** Users left out of valid/test for being shorter than minLength. */
  short: string[];
}

const MAX_INDEX = 2 ** 31 - 1;

function lineAt(text: string, pos: number): number {
  let line = 1;
  for (let i = text.indexOf('\n'); i >= 0 && i < pos; i = text.indexOf('\n', i + 1)) line++;
  return line;
}

/** Line where `"key":` first appears (for error messages); undefined if it cannot be located. */
function lineOfKey(text: string, key: string): number | undefined {
  const quoted = JSON.stringify(key).replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
  const m = new RegExp(`${quoted}\\s*:`).exec(text);
  return m ? lineAt(text, m.index) : undefined;
}

/** Reads `{user: [items]}` JSON into a CSR sequence set. */
export async function readSequences(path: string): Promise<Sequences> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw ioError(path, err);
  }
  let data: unknown;
  try {
    data = JSON.parse(text.charCodeAt(0) === 0xfeff ? text.slice(1) : text);
  } catch (err) {
    const msg = (err as Error).message;
    const pos = /position (\d+)/.exec(msg)?.[1];
    throw inputError(path, `not valid JSON (${msg})`, pos === undefined ? undefined : lineAt(text, Number(pos)), err);
  }
  if (typeof data !== 'object' || data === null || Array.isArray(data)) {
    throw inputError(path, 'expected a JSON object {"<user>": [item, ...]}', 1);
  }
  const users = Object.keys(data);
  const offsets = new Int32Array(users.length + 1);
  const items = new IntList(1 << 16);
  const record = data as Record<string, unknown>;
  for (let u = 0; u < users.length; u++) {
    const user = users[u]!;
    const list = record[user];
    const bad = (what: string) => inputError(path, `user ${JSON.stringify(user)} (entry ${u + 1}): ${what}`, lineOfKey(text, user));
    if (!Array.isArray(list)) throw bad(`expected an array of item indices, got ${list === null ? 'null' : typeof list}`);
    for (let i = 0; i < list.length; i++) {
      const v: unknown = list[i];
      if (typeof v !== 'number' || !Number.isInteger(v) || v < 0 || v > MAX_INDEX) {
        throw bad(`item ${i + 1} is ${JSON.stringify(v)}, expected an item index (integer 0..${MAX_INDEX})`);
      }
      items.push(v);
    }
    offsets[u + 1] = items.length;
  }
  return { file: path, n: users.length, users, offsets, items: items.toArray() };
}

/** Leave-one-out split: last item = test target, second last = validation target, the rest = training. */
export function leaveOneOut(seqs: SequenceSet, options: LeaveOneOutOptions = {}): LeaveOneOut {
  const minLength = options.minLength ?? 3;
  if (!Number.isSafeInteger(minLength) || minLength < 2) {
    throw inputError('minLength', `must be an integer >= 2, got ${minLength}`);
  }
  const n = seqs.users.length;
  const { offsets, items } = seqs;
  let kept = 0;
  let trainItems = 0;
  let validItems = 0;
  for (let u = 0; u < n; u++) {
    const len = offsets[u + 1]! - offsets[u]!;
    if (len >= minLength) { kept++; trainItems += len - 2; validItems += len - 2; } else trainItems += len;
  }
  const train: SequenceSet = { users: seqs.users, offsets: new Int32Array(n + 1), items: new Int32Array(trainItems) };
  const valid: PredictionSet = { users: [], offsets: new Int32Array(kept + 1), items: new Int32Array(validItems), targets: new Int32Array(kept) };
  const test: PredictionSet = {
    users: valid.users, offsets: new Int32Array(kept + 1), items: new Int32Array(validItems + kept), targets: new Int32Array(kept),
  };
  const short: string[] = [];
  let t = 0;
  let r = 0;
  for (let u = 0; u < n; u++) {
    const start = offsets[u]!;
    const len = offsets[u + 1]! - start;
    if (len < minLength) {
      short.push(seqs.users[u]!);
      train.items.set(items.subarray(start, start + len), t);
      t += len;
    } else {
      const head = items.subarray(start, start + len - 2);
      train.items.set(head, t);
      t += len - 2;
      valid.users.push(seqs.users[u]!);
      valid.items.set(head, valid.offsets[r]!);
      valid.offsets[r + 1] = valid.offsets[r]! + len - 2;
      valid.targets[r] = items[start + len - 2]!;
      test.items.set(items.subarray(start, start + len - 1), test.offsets[r]!);
      test.offsets[r + 1] = test.offsets[r]! + len - 1;
      test.targets[r] = items[start + len - 1]!;
      r++;
    }
    train.offsets[u + 1] = t;
  }
  return { train, valid, test, short };
}
