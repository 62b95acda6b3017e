/**
 * Explicit id files: one id per line, line i (1-based) names row i-1 of the embedding matrix it goes with.
 * Surrounding whitespace and CR (CRLF files) are trimmed; trailing blank lines are ignored, a blank line before
 * the last id is an error (it would shift every later row), and so is a tab inside a line (a TSV such as
 * item2index.tsv would otherwise give ids like "B00O47ILVA\t0"). Streamed line by line.
 */
import { createReadStream } from 'node:fs';
import { createInterface } from 'node:readline';
import { inputError, ioError } from './input-error.ts';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

async function eachId(path: string, fn: (id: string, line: number) => void): Promise<number> {
  const rl = createInterface({ input: createReadStream(path), crlfDelay: Infinity });
  let line = 0;
  let blankAt = 0;
  let count = 0;
  try {
    for await (const raw of rl) {
      line++;
      const id = raw.trim();
      if (id.length === 0) {
        if (blankAt === 0) blankAt = line;
        continue;
      }
      if (blankAt !== 0) throw inputError(path, 'blank line before the last id (line i must be the id of row i)', blankAt);
      if (id.includes('\t')) {
        throw inputError(path, `id ${JSON.stringify(id)} holds a tab: one id per line, no other columns (of a TSV, pass its id column: cut -f1)`, line);
      }
      fn(id, line);
      count++;
    }
  } catch (err) {
    throw ioError(path, err);
  } finally {
    rl.close();
  }
  return count;
}

/** Reads an id file as strings. */
export async function readIdFile(path: string): Promise<string[]> {
  const ids: string[] = [];
  await eachId(path, (id) => { ids.push(id); });
  return ids;
}

/** Reads an id file whose ids are decimal 64-bit integers (FORGE item ids). */
export async function readInt64IdFile(path: string): Promise<BigInt64Array> {
  let out = new BigInt64Array(1024);
  const n = await eachId(path, (id, line) => {
    if (!/^[+-]?\d{1,20}$/.test(id)) throw inputError(path, `id ${JSON.stringify(id)} is not a decimal integer`, line);
    const v = BigInt(id);
    if (v < INT64_MIN || v > INT64_MAX) throw inputError(path, `id ${id} does not fit in int64`, line);
    if (line - 1 >= out.length) {
      const grown = new BigInt64Array(out.length * 2);
      grown.set(out);
      out = grown;
    }
    out[line - 1] = v;
  });
  return out.slice(0, n);
}

/** Throws unless an id file with `ids` ids matches a matrix of `rows` rows (from `matrix`, named in the message). */
export function checkIdCount(idFile: string, ids: number, rows: number, matrix: string): void {
  if (ids === rows) return;
  if (ids > rows) throw inputError(idFile, `has ${ids} ids but ${matrix} has ${rows} rows: this line has no row`, rows + 1);
  throw inputError(idFile, `has ${ids} ids but ${matrix} has ${rows} rows: row ${ids + 1} has no id (line ${ids + 1} is missing)`);
}
