/**
 * One entry point for the training / encoding CLIs: `readEmbeddings(path)` picks the reader by extension and
 * returns an in-memory [n, dim] float32 matrix with optional row ids.
 * - `.npy`  (./npy.ts): a 2-D float array; ids only from `idFile`.
 * - `.npz`  (./npz.ts): array `options.array`, else `embeds` (FORGE), else the only 2-D float array; ids from an
 *   int `ids` array of n rows when there is one (FORGE reconstruct_data_mask.npz), else from `idFile`.
 * - `.csv`, `.csv.gz` (./algr-csv.ts): AL-GR Item-EMB rows, collected whole; bad rows are skipped and counted
 *   (`skipped`, `csv.onSkip`). For files too large to hold twice, use `readAlgrCsv` (streaming) directly.
 * Every value must be finite (NaN/Infinity is an error naming the row; CSV rows are skipped instead). With
 * `options.dim`, a matrix of another dimension is an error. Unknown extensions are an error listing the known ones.
 */
import { inputError } from './input-error.ts';
import { collectAlgrCsv, type AlgrCsvOptions } from './algr-csv.ts';
import { checkFiniteRows } from './forge.ts';
import { checkIdCount, readIdFile } from './id-file.ts';
import { readNpy } from './npy.ts';
import { listNpz, readNpz } from './npz.ts';

export type EmbeddingFormat = 'npy' | 'npz' | 'algr-csv';

export interface ReadEmbeddingsOptions {
  /** Expected dimension. */
  dim?: number;
  /** .npz only: the array holding the vectors. */
  array?: string;
  /** Row ids, one per line (line i = row i); takes precedence over ids stored in the file. */
  idFile?: string;
  /** .csv only: streaming options. */
  csv?: Pick<AlgrCsvOptions, 'onSkip' | 'batchSize' | 'strict'>;
}

export interface Embeddings {
  /** ids[i] names row i; null when the file carries none and no idFile was given. */
  ids: string[] | null;
  /** Row-major [n, dim]. */
  vectors: Float32Array;
  n: number;
  dim: number;
  format: EmbeddingFormat;
  /** Rows skipped as bad (CSV only; 0 otherwise). */
  skipped: number;
  /** CSV only: lines[i] is row i's line in the file (1-based). */
  lines?: Uint32Array;
}

const FORMATS: [string, EmbeddingFormat][] = [['.npy', 'npy'], ['.npz', 'npz'], ['.csv', 'algr-csv'], ['.csv.gz', 'algr-csv']];

/** The format for a path by its extension, or null. */
export function embeddingFormatOf(path: string): EmbeddingFormat | null {
  const lower = path.toLowerCase();
  return FORMATS.find(([ext]) => lower.endsWith(ext))?.[1] ?? null;
}

export async function readEmbeddings(path: string, options: ReadEmbeddingsOptions = {}): Promise<Embeddings> {
  const format = embeddingFormatOf(path);
  if (format === null) {
    throw inputError(path, `unknown embedding file type (supported: ${FORMATS.map(([e]) => e).join(', ')})`);
  }
  let out: Embeddings;
  if (format === 'algr-csv') {
    const c = await collectAlgrCsv(path, { ...options.csv, dim: options.dim });
    out = { ids: c.ids, vectors: c.vectors, n: c.n, dim: c.dim, format, skipped: c.stats.skipped, lines: c.lines };
  } else if (format === 'npy') {
    const a = await readNpy(path);
    if (a.shape.length !== 2) throw inputError(path, `expected a 2-D [N, D] array, got shape (${a.shape.join(', ')})`);
    out = { ids: null, vectors: a.data, n: a.shape[0]!, dim: a.shape[1]!, format, skipped: 0 };
    checkFiniteRows(path, '', out.vectors, out.dim);
  } else {
    out = await fromNpz(path, options.array, options.idFile === undefined);
  }
  if (out.dim < 1) throw inputError(path, `vectors have dimension ${out.dim}`);
  if (options.dim !== undefined && out.dim !== options.dim) {
    throw inputError(path, `vectors have dimension ${out.dim}, expected ${options.dim}`);
  }
  if (options.idFile !== undefined) {
    const ids = await readIdFile(options.idFile);
    checkIdCount(options.idFile, ids.length, out.n, path);
    out.ids = ids;
  }
  return out;
}

async function fromNpz(path: string, wanted: string | undefined, withIds: boolean): Promise<Embeddings> {
  const members = await listNpz(path);
  const isMatrix = (m: (typeof members)[number]) => m.shape.length === 2 && m.dtype.startsWith('float');
  let name = wanted;
  if (name === undefined) {
    if (members.some((m) => m.name === 'embeds')) name = 'embeds';
    else {
      const matrices = members.filter(isMatrix);
      if (matrices.length !== 1) {
        throw inputError(path, `${matrices.length === 0 ? 'no' : 'more than one'} 2-D float array; name the one to use `
          + `(arrays: ${members.map((m) => `${m.name} ${m.dtype} (${m.shape.join(', ')})`).join('; ') || 'none'})`);
      }
      name = matrices[0]!.name;
    }
  }
  const info = members.find((m) => m.name === name);
  if (info && !isMatrix(info)) {
    throw inputError(path, `array '${name}' is ${info.dtype} (${info.shape.join(', ')}), expected a 2-D float array`);
  }
  const idInfo = withIds && members.find((m) => m.name === 'ids' && m.shape.length === 1 && (m.dtype === 'int64' || m.dtype === 'int32'));
  const arrays = await readNpz(path, { only: idInfo && name !== 'ids' ? [name, 'ids'] : [name] });
  const a = arrays.get(name)!;
  const [n, dim] = a.shape as [number, number];
  checkFiniteRows(path, name, a.data as Float32Array, dim);
  let ids: string[] | null = null;
  const idArray = arrays.get('ids');
  if (idArray && idArray !== a) {
    if (idArray.data.length !== n) {
      throw inputError(path, `'ids' has ${idArray.data.length} rows but '${name}' has ${n}: `
        + (idArray.data.length > n ? `row ${n + 1} of 'ids' has no vector` : `row ${idArray.data.length + 1} of '${name}' has no id`));
    }
    ids = Array.from(idArray.data as ArrayLike<bigint | number>, String);
  }
  return { ids, vectors: a.data as Float32Array, n, dim, format: 'npz', skipped: 0 };
}
