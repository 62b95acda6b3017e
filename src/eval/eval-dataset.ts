/**
 * Data sets for `sidx eval`: item embeddings (row i = item i) plus next-item prediction rows, in one of two layouts:
 * - RecBole (../shared/data/scientific): `test.inter.tsv` (history, next item) and an embedding .npy;
 * - JSON sequences (../shared/data/instruments): `inter.json` `{user: [items]}`, split leave-one-out (last item =
 *   test target, the rest = history) and an embedding .npy.
 * The `valid` split (model selection without touching the test rows) is `valid.inter.tsv`, resp. the second-last item
 * as target and the items before it as history.
 * The embedding file is `--embeddings` (relative to the data set directory or absolute), else the first of
 * text_emb.npy, sasrec_emb.npy, item_emb.npy found there.
 *
 * Query profiles: `mean5` = mean of the last 5 history items' L2-normalised embeddings; `last` = the last history
 * item's L2-normalised embedding. Rows with an empty history have no query and are left out (counted).
 */
import { existsSync } from 'node:fs';
import { basename, isAbsolute, join, resolve } from 'node:path';
import { SidxError } from '../errors.ts';
import { itemsOf, type PredictionSet } from '../io/interactions.ts';
import { readNpy } from '../io/npy.ts';
import { readRecboleInter } from '../io/recbole.ts';
import { leaveOneOut, readSequences } from '../io/sequences.ts';

export type QueryProfile = 'mean5' | 'last';
export type EvalSplit = 'test' | 'valid';
export const EVAL_SPLITS: readonly EvalSplit[] = ['test', 'valid'];
export const QUERY_PROFILES: readonly QueryProfile[] = ['mean5', 'last'];
const EMBEDDING_FILES = ['text_emb.npy', 'sasrec_emb.npy', 'item_emb.npy'];

export interface EvalDataset {
  /** The directory's name, e.g. "scientific". */
  name: string;
  dir: string;
  layout: 'recbole' | 'sequences';
  embeddingsFile: string;
  /** n × dim item embeddings as stored in the file. */
  items: Float32Array;
  n: number;
  dim: number;
  /** Which rows `test` holds. */
  split: EvalSplit;
  /** The evaluated rows (the test split unless `split` says valid): history (oldest first) and the held-out next item. */
  test: PredictionSet;
}

export interface EvalQueries {
  /** q × dim query embeddings. */
  vectors: Float32Array;
  /** Target item per query. */
  targets: Int32Array;
  /** Test rows left out for an empty history. */
  skipped: number;
}

function fail(message: string, field: string): SidxError {
  return new SidxError('SIDX_ERR_INVALID_INPUT', message, { field });
}

/** Reads a data set directory (layout detected from its files). */
export async function loadEvalDataset(dirArg: string, options: { embeddings?: string; split?: EvalSplit } = {}): Promise<EvalDataset> {
  const dir = resolve(dirArg);
  const split = options.split ?? 'test';
  if (!EVAL_SPLITS.includes(split)) throw fail(`split must be one of ${EVAL_SPLITS.join(', ')}, got ${String(split)}`, 'split');
  if (!existsSync(dir)) throw fail(`data set directory ${dir} does not exist`, 'dataset');
  let embeddingsFile: string | undefined;
  if (options.embeddings !== undefined) {
    embeddingsFile = isAbsolute(options.embeddings) ? options.embeddings : join(dir, options.embeddings);
    if (!existsSync(embeddingsFile)) throw fail(`embedding file ${embeddingsFile} does not exist`, 'embeddings');
  } else {
    embeddingsFile = EMBEDDING_FILES.map((f) => join(dir, f)).find((p) => existsSync(p));
    if (!embeddingsFile) throw fail(`${dir} holds none of ${EMBEDDING_FILES.join(', ')}; name one with --embeddings`, 'embeddings');
  }
  let layout: EvalDataset['layout'];
  let test: PredictionSet;
  if (existsSync(join(dir, 'test.inter.tsv'))) {
    layout = 'recbole';
    const file = join(dir, `${split}.inter.tsv`);
    if (!existsSync(file)) throw fail(`${dir} has test.inter.tsv but no ${split}.inter.tsv`, 'split');
    test = await readRecboleInter(file);
  } else if (existsSync(join(dir, 'inter.json'))) {
    layout = 'sequences';
    test = leaveOneOut(await readSequences(join(dir, 'inter.json')))[split];
  } else {
    throw fail(`${dir} has neither test.inter.tsv (RecBole) nor inter.json (JSON sequences)`, 'dataset');
  }
  const npy = await readNpy(embeddingsFile);
  if (npy.shape.length !== 2) throw fail(`${embeddingsFile}: expected a 2-D array, got shape [${npy.shape.join(', ')}]`, 'embeddings');
  const [n, dim] = npy.shape as [number, number];
  const check = (item: number, what: string) => {
    if (item >= n) throw fail(`${what} item ${item} has no row in ${embeddingsFile} (${n} rows)`, 'dataset');
  };
  test.items.forEach((item) => check(item, 'history'));
  test.targets.forEach((item) => check(item, 'target'));
  return { name: basename(dir), dir, layout, embeddingsFile, items: npy.data, n, dim, split, test };
}

/** `rows` L2-normalised (x / max(||x||, 1e-12)), as a copy. */
export function l2Normalized(rows: Float32Array, dim: number): Float32Array {
  const out = new Float32Array(rows.length);
  for (let o = 0; o < rows.length; o += dim) {
    let ss = 0;
    for (let j = 0; j < dim; j++) ss += rows[o + j]! * rows[o + j]!;
    const inv = 1 / Math.max(Math.sqrt(ss), 1e-12);
    for (let j = 0; j < dim; j++) out[o + j] = rows[o + j]! * inv;
  }
  return out;
}

/** Query embeddings of the test rows under `profile`, optionally only the first `limit` usable rows. */
export function buildQueries(ds: EvalDataset, profile: QueryProfile, limit = Number.POSITIVE_INFINITY): EvalQueries {
  const { dim, test } = ds;
  const normalized = l2Normalized(ds.items, dim);
  const rows = test.targets.length;
  const vectors: number[] = [];
  const targets: number[] = [];
  let skipped = 0;
  const q = new Float64Array(dim);
  for (let r = 0; r < rows && targets.length < limit; r++) {
    const history = itemsOf(test, r);
    if (history.length === 0) {
      skipped++;
      continue;
    }
    const used = profile === 'last' ? history.subarray(history.length - 1) : history.subarray(Math.max(0, history.length - 5));
    q.fill(0);
    for (const item of used) for (let j = 0; j < dim; j++) q[j] = q[j]! + normalized[item * dim + j]!;
    for (let j = 0; j < dim; j++) vectors.push(q[j]! / used.length);
    targets.push(test.targets[r]!);
  }
  return { vectors: Float32Array.from(vectors), targets: Int32Array.from(targets), skipped };
}
