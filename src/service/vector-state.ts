/**
 * Keeps the FAISS index derived from the LMDB catalog. At start it loads the checkpoint and replays the
 * change log written after it, or rebuilds from the catalog when the checkpoint is missing, unreadable or
 * does not match. Losing the FAISS files therefore loses nothing.
 *
 * Checkpoint = `vectors.faiss` (FAISS's own format) + `vectors.json` ({seq, ntotal, dim, metric}); the JSON is
 * written last, so a torn checkpoint is detected by a count mismatch and rebuilt.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.ts';
import type { Catalog } from '../store/catalog.ts';
import { VectorIndex, type Metric } from '../vector/vector-index.ts';

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

interface CheckpointMeta {
  seq: string;
  ntotal: number;
  dim: number;
  metric: Metric;
}

const REBUILD_BATCH = 10_000;

export class VectorState {
  readonly index: VectorIndex;
  #dir: string;
  #catalog: Catalog;
  #checkpointSeq: bigint;
  #changesSinceCheckpoint = 0;

  private constructor(dir: string, catalog: Catalog, index: VectorIndex, checkpointSeq: bigint) {
    this.#dir = dir;
    this.#catalog = catalog;
    this.index = index;
    this.#checkpointSeq = checkpointSeq;
  }

  static async open(dir: string, catalog: Catalog, dim: number, metric: Metric, log: Logger): Promise<VectorState> {
    const loaded = await loadCheckpoint(dir, dim, metric, log);
    if (loaded) {
      const state = new VectorState(dir, catalog, loaded.index, loaded.seq);
      try {
        const replayed = state.#catchUp(loaded.seq);
        if (state.index.ntotal === catalog.count) {
          log.info(`vector index: checkpoint at seq ${loaded.seq} loaded (${loaded.index.ntotal} vectors), ${replayed} changes replayed`);
          return state;
        }
        log.warn(`vector index: ${state.index.ntotal} vectors after catch-up, the catalog holds ${catalog.count}: rebuilding`);
      } catch (err) {
        log.warn(`vector index: cannot catch up from seq ${loaded.seq} (${(err as Error).message}): rebuilding`);
      }
      state.close();
    }
    const index = VectorIndex.create({ dim, metric });
    const state = new VectorState(dir, catalog, index, 0n);
    const count = state.#rebuild();
    log.info(`vector index: rebuilt from the catalog (${count} vectors)`);
    return state;
  }

  get checkpointSeq(): bigint {
    return this.#checkpointSeq;
  }

  /** After a committed upsert: replaced items leave the index before the new vectors enter. */
  applyUpsert(keys: BigInt64Array, vectors: Float32Array, replaced: readonly boolean[]): void {
    const stale = keys.filter((_k, i) => replaced[i]);
    if (stale.length > 0) this.index.remove(stale);
    this.index.add(vectors, keys);
    this.#changesSinceCheckpoint += keys.length;
  }

  applyDelete(keys: BigInt64Array): void {
    if (keys.length > 0) this.index.remove(keys);
    this.#changesSinceCheckpoint += keys.length;
  }

  get changesSinceCheckpoint(): number {
    return this.#changesSinceCheckpoint;
  }

  /** Writes the index and its sequence number; the change log up to it is then no longer needed. */
  async checkpoint(): Promise<void> {
    const seq = this.#catalog.lastSeq;
    const meta: CheckpointMeta = { seq: seq.toString(), ntotal: this.index.ntotal, dim: this.index.dim, metric: this.index.metric };
    await this.index.write(join(this.#dir, 'vectors.faiss'));
    const metaPath = join(this.#dir, 'vectors.json');
    writeFileSync(`${metaPath}.tmp`, JSON.stringify(meta));
    renameSync(`${metaPath}.tmp`, metaPath);
    this.#catalog.truncateChanges(seq);
    this.#checkpointSeq = seq;
    this.#changesSinceCheckpoint = 0;
  }

  close(): void {
    this.index.close();
  }

  /** Replays changes after `seq`: every touched key leaves the index, and re-enters if it still exists. */
  #catchUp(seq: bigint): number {
    const touched = new Set<bigint>();
    let changes = 0;
    for (const change of this.#catalog.changesSince(seq)) {
      touched.add(change.key);
      changes++;
    }
    if (touched.size === 0) return 0;
    const keys = BigInt64Array.from(touched);
    this.index.remove(keys);
    const present: bigint[] = [];
    const vectors: Float32Array[] = [];
    for (const key of keys) {
      const item = this.#catalog.getByKey(key);
      if (item) {
        present.push(key);
        vectors.push(item.vector);
      }
    }
    this.#addBatch(BigInt64Array.from(present), vectors);
    this.#changesSinceCheckpoint = changes;
    return changes;
  }

  #rebuild(): number {
    let keys: bigint[] = [];
    let vectors: Float32Array[] = [];
    let count = 0;
    for (const item of this.#catalog.items()) {
      keys.push(item.key);
      vectors.push(item.vector);
      if (keys.length === REBUILD_BATCH) {
        this.#addBatch(BigInt64Array.from(keys), vectors);
        count += keys.length;
        keys = [];
        vectors = [];
      }
    }
    this.#addBatch(BigInt64Array.from(keys), vectors);
    count += keys.length;
    this.#changesSinceCheckpoint = count;
    return count;
  }

  #addBatch(keys: BigInt64Array, vectors: Float32Array[]): void {
    if (keys.length === 0) return;
    const dim = this.index.dim;
    const flat = new Float32Array(keys.length * dim);
    vectors.forEach((v, i) => flat.set(v, i * dim));
    this.index.add(flat, keys);
  }
}

async function loadCheckpoint(dir: string, dim: number, metric: Metric, log: Logger): Promise<{ index: VectorIndex; seq: bigint } | null> {
  const indexPath = join(dir, 'vectors.faiss');
  const metaPath = join(dir, 'vectors.json');
  if (!existsSync(indexPath) || !existsSync(metaPath)) return null;
  try {
    const meta = JSON.parse(readFileSync(metaPath, 'utf8')) as CheckpointMeta;
    if (meta.dim !== dim || meta.metric !== metric) {
      log.warn(`vector index: checkpoint is ${meta.dim}-d ${meta.metric}, the model wants ${dim}-d ${metric}: rebuilding`);
      return null;
    }
    const index = await VectorIndex.read(indexPath);
    if (index.ntotal !== meta.ntotal || index.dim !== dim) {
      log.warn('vector index: checkpoint does not match its metadata: rebuilding');
      index.close();
      return null;
    }
    return { index, seq: BigInt(meta.seq) };
  } catch (err) {
    log.warn(`vector index: checkpoint unreadable (${(err as Error).message}): rebuilding`);
    return null;
  }
}

/** Changes between FAISS checkpoints for an index of `ntotal` vectors. */
export function checkpointThreshold(storage: Pick<Config['storage'], 'checkpointEvery' | 'checkpointGrowthPercent'>, ntotal: number): number {
  return Math.max(storage.checkpointEvery, Math.ceil((ntotal * storage.checkpointGrowthPercent) / 100));
}
