/**
 * FORGE data readers (the public FORGE benchmark's `.npz` files, read with ./npz.ts):
 * - `reconstruct_data_mask.npz`: `ids` int64 [N], `embeds` float [N, D] (D = 512 in FORGE).
 * - `contrastive_data_mask.npz`: `pairs` int64 [M, 2], `embeds` float [N, D], `itemEncID` a pickled Python dict.
 *   sidx cannot read pickles, so the row ids come from an explicit id file (`--ids FILE`, one id per line,
 *   line i = row i of `embeds`); if `itemEncID` happens to be a plain integer array of N ids it is used as is.
 * `pairs` are returned as stored (their values are not interpreted or range-checked here).
 * Every embedding value is checked to be finite; errors name the file and the 1-based row at fault.
 */
import { firstNonFinite } from '../finite.ts';
import { inputError } from './input-error.ts';
import { checkIdCount, readInt64IdFile } from './id-file.ts';
import { listNpz, PICKLED, readNpz, type NpzArray } from './npz.ts';

export interface ForgeReconstruct {
  ids: BigInt64Array;
  /** Row-major [n, dim]. */
  embeds: Float32Array;
  n: number;
  dim: number;
}

export interface ForgeContrastive {
  /** Row-major [m, 2]. */
  pairs: BigInt64Array;
  m: number;
  embeds: Float32Array;
  n: number;
  dim: number;
  /** ids[i] is the item id of embeds row i. */
  ids: BigInt64Array;
}

export interface ForgeContrastiveOptions {
  /** Id file (one id per line, line i = embeds row i); required when `itemEncID` is pickled, which it is in FORGE. */
  idFile?: string;
}

function get(path: string, arrays: Map<string, NpzArray>, name: string): NpzArray {
  const a = arrays.get(name);
  if (!a) throw inputError(path, `missing array '${name}'`);
  return a;
}

/** Throws naming the first row (1-based) of `data` [?, dim] holding NaN or +-Infinity; `name` may be ''. Allocation-free. */
export function checkFiniteRows(path: string, name: string, data: Float32Array, dim: number): void {
  const i = firstNonFinite(data);
  if (i < 0) return;
  const row = Math.floor(i / dim) + 1;
  throw inputError(path, `row ${row}${name ? ` of '${name}'` : ''} has ${data[i]} at column ${(i % dim) + 1} (values must be finite)`);
}

function embedsOf(path: string, arrays: Map<string, NpzArray>): { embeds: Float32Array; n: number; dim: number } {
  const a = get(path, arrays, 'embeds');
  if (a.dtype !== 'float32' && a.dtype !== 'float16' && a.dtype !== 'float64') {
    throw inputError(path, `array 'embeds' has dtype ${a.dtype}, expected float32/float16/float64`);
  }
  if (a.shape.length !== 2 || a.shape[1]! < 1) {
    throw inputError(path, `array 'embeds' has shape (${a.shape.join(', ')}), expected [N, D] with D >= 1`);
  }
  const [n, dim] = a.shape as [number, number];
  checkFiniteRows(path, 'embeds', a.data, dim);
  return { embeds: a.data, n, dim };
}

/** int64 (or int32, widened) array as BigInt64Array. */
function int64Of(path: string, name: string, a: NpzArray): BigInt64Array {
  if (a.dtype === 'int64') return a.data;
  if (a.dtype === 'int32') return BigInt64Array.from(a.data, (v) => BigInt(v));
  throw inputError(path, `array '${name}' has dtype ${a.dtype}, expected int64`);
}

function checkRows(path: string, name: string, rows: number, n: number): void {
  if (rows === n) return;
  const detail = rows > n ? `row ${n + 1} of '${name}' has no embedding` : `row ${rows + 1} of 'embeds' has no entry in '${name}'`;
  throw inputError(path, `'${name}' has ${rows} rows but 'embeds' has ${n}: ${detail}`);
}

/** Reads FORGE `reconstruct_data_mask.npz`: `ids` [N] and `embeds` [N, D]. */
export async function readForgeReconstruct(path: string): Promise<ForgeReconstruct> {
  const arrays = await readNpz(path, { only: ['ids', 'embeds'] });
  const { embeds, n, dim } = embedsOf(path, arrays);
  const idArray = get(path, arrays, 'ids');
  if (idArray.shape.length !== 1) throw inputError(path, `array 'ids' has shape (${idArray.shape.join(', ')}), expected [N]`);
  const ids = int64Of(path, 'ids', idArray);
  checkRows(path, 'ids', ids.length, n);
  return { ids, embeds, n, dim };
}

/** Reads FORGE `contrastive_data_mask.npz`: `pairs` [M, 2], `embeds` [N, D], ids from `idFile` (or a non-pickled `itemEncID`). */
export async function readForgeContrastive(path: string, options: ForgeContrastiveOptions = {}): Promise<ForgeContrastive> {
  const members = await listNpz(path);
  const wanted = ['pairs', 'embeds'];
  const encId = members.find((m) => m.name === 'itemEncID');
  if (options.idFile === undefined) {
    const howTo = "pass the row ids explicitly with --ids FILE (one id per line, line i = row i of 'embeds')";
    if (!encId) throw inputError(path, `has no 'itemEncID' array to name the rows of 'embeds': ${howTo}`);
    if (encId.dtype === 'object') throw inputError(path, `array 'itemEncID' ${PICKLED}: ${howTo}`);
    wanted.push('itemEncID');
  }
  const arrays = await readNpz(path, { only: wanted });
  const { embeds, n, dim } = embedsOf(path, arrays);
  const pairArray = get(path, arrays, 'pairs');
  if (pairArray.shape.length !== 2 || pairArray.shape[1] !== 2) {
    throw inputError(path, `array 'pairs' has shape (${pairArray.shape.join(', ')}), expected [M, 2]`);
  }
  const pairs = int64Of(path, 'pairs', pairArray);
  let ids: BigInt64Array;
  if (options.idFile !== undefined) {
    ids = await readInt64IdFile(options.idFile);
    checkIdCount(options.idFile, ids.length, n, `'embeds' in ${path}`);
  } else {
    const a = get(path, arrays, 'itemEncID');
    if (a.shape.length !== 1) {
      throw inputError(path, `array 'itemEncID' has shape (${a.shape.join(', ')}), expected [N] ids; pass --ids FILE instead`);
    }
    ids = int64Of(path, 'itemEncID', a);
    checkRows(path, 'itemEncID', ids.length, n);
  }
  return { pairs, m: pairArray.shape[0]!, embeds, n, dim, ids };
}
