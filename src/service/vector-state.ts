/**
 * Keeps the FAISS index that reranks candidates, derived from the LMDB catalog (the source of truth), and its file.
 *
 * In memory: one FAISS flat index (IDMap2, labels = internal keys), the only in-memory copy of the vectors; the
 * rerank scores candidates on it (measured fastest: docs/benchmarks.md, "Each vector stored once in memory").
 * On disk: `vectors.slots` + `vectors.ids` (vector/slot-file.ts), updated in place after every committed batch (page-cache
 * writes, no fsync), and `vectors.json` ({format, seq, ntotal, dim, metric}): the slot files hold every change up to
 * `seq`.
 * A sync (`startSync`, every `checkpointThreshold` changes, off the write lock) fdatasyncs the slot file on the libuv
 * pool, then writes vectors.json and truncates the change log up to the seq taken before the fdatasync. Nothing is
 * ever rewritten whole, so writers never stall on it.
 *
 * At start: load the slot file into FAISS, then replay the change log after `seq` (every touched key leaves and
 * re-enters from the catalog); any doubt (no or other-format metadata, a slot file that disagrees, a truncated change
 * log, a count that differs from the catalog's) rebuilds from the catalog. Losing these files therefore loses
 * nothing. A data directory from before (a `vectors.faiss` checkpoint) is rebuilt once and the old file removed.
 *
 * Config `vectors.storage` sq8 swaps the in-memory copy for 8-bit codes re-scored from the slot file
 * (vector/sq8-store.ts, its own `vectors.sq8` synced with the slot file); the lines that differ are marked "sq8 seam".
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.ts';
import type { Catalog } from '../store/catalog.ts';
import type { RerankStore } from '../vector/rerank-store.ts';
import { SlotFile } from '../vector/slot-file.ts';
import { Sq8Store } from '../vector/sq8-store.ts';
import { VectorIndex, type Metric } from '../vector/vector-index.ts';

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

const META_FORMAT = 'slots-v1';
const REBUILD_BATCH = 10_000;
const SLOT_BASE = 'vectors';
const SLOT_FILE = `${SLOT_BASE}.slots`;
const META_FILE = 'vectors.json';
const LEGACY_FILES = ['vectors.faiss', 'vectors.faiss.tmp'];

interface SyncMeta {
  format: typeof META_FORMAT;
  seq: string;
  ntotal: number;
  dim: number;
  metric: Metric;
}

/** Config `vectors` (storage f32 when omitted). */
export type VectorStorage = Config['vectors'];
const F32: VectorStorage = { storage: 'f32', rescore: 50, trainSize: 10_000 };

export class VectorState {
  index: RerankStore;
  #slots: SlotFile;
  #dir: string;
  #catalog: Catalog;
  #log: Logger;
  #changesSinceSync = 0;
  #syncing: Promise<void> | null = null;

  private constructor(dir: string, catalog: Catalog, index: RerankStore, slots: SlotFile, log: Logger) {
    this.#dir = dir;
    this.#catalog = catalog;
    this.index = index;
    this.#slots = slots;
    this.#log = log;
  }

  static async open(dir: string, catalog: Catalog, dim: number, metric: Metric, log: Logger, storage: VectorStorage = F32): Promise<VectorState> {
    const slots = SlotFile.open(join(dir, SLOT_BASE), dim);
    // sq8 seam: the in-memory copy the rerank scores.
    const create = (): RerankStore => storage.storage === 'sq8'
      ? Sq8Store.open(join(dir, SLOT_BASE), slots, metric, storage)
      : VectorIndex.create({ dim, metric });
    // sq8 seam: f32 does not keep the codes up to date, so a codes file left from sq8 would be stale.
    if (storage.storage !== 'sq8') rmSync(join(dir, `${SLOT_BASE}.sq8`), { force: true });
    const state = new VectorState(dir, catalog, create(), slots, log);
    const meta = readMeta(dir, dim, metric, log);
    if (meta) {
      try {
        const replayed = state.#load(BigInt(meta.seq));
        if (state.index.ntotal === catalog.count) {
          log.info(`vector index: ${state.index.ntotal} vectors loaded from ${SLOT_FILE} (synced at seq ${meta.seq}), ${replayed} changes replayed`);
          return state;
        }
        log.warn(`vector index: ${state.index.ntotal} vectors after catch-up, the catalog holds ${catalog.count}: rebuilding`);
      } catch (err) {
        log.warn(`vector index: cannot load ${SLOT_FILE} and catch up from seq ${meta.seq} (${(err as Error).message}): rebuilding`);
      }
      state.index.close();
      state.index = create();
    }
    const count = state.#rebuild();
    await state.sync();
    for (const name of LEGACY_FILES) rmSync(join(dir, name), { force: true });
    log.info(`vector index: rebuilt from the catalog (${count} vectors)`);
    return state;
  }

  /** After a committed upsert: replaced items leave the index before the new vectors enter; the slots are rewritten. */
  applyUpsert(keys: BigInt64Array, vectors: Float32Array, replaced: readonly boolean[]): void {
    const stale = keys.filter((_k, i) => replaced[i]);
    if (stale.length > 0) this.index.remove(stale);
    this.#slots.put(keys, vectors); // sq8 seam: the slots first (the codes go where the vectors went)
    this.index.add(vectors, keys);
    this.#changesSinceSync += keys.length;
  }

  applyDelete(keys: BigInt64Array): void {
    if (keys.length > 0) {
      this.index.remove(keys);
      this.#slots.remove(keys);
    }
    this.#changesSinceSync += keys.length;
  }

  /** Changes not yet covered by a finished or running sync. */
  get changesSinceSync(): number {
    return this.#changesSinceSync;
  }

  /** Starts a sync in the background unless one is running; writes go on meanwhile. */
  startSync(): void {
    if (this.#syncing) return;
    this.#syncing = this.#sync()
      .catch((err: Error) => this.#log.warn(`vector index: sync failed (${err.message}); the next one retries`))
      .finally(() => {
        this.#syncing = null;
      });
  }

  /** Resolves when no sync is running. */
  async idle(): Promise<void> {
    while (this.#syncing) await this.#syncing;
  }

  /** Waits for a running sync, then syncs everything written so far (shutdown, rebuild). */
  async sync(): Promise<void> {
    await this.idle();
    await this.#sync();
  }

  /** Waits for a running sync; closes FAISS and the slot file. */
  async close(): Promise<void> {
    await this.idle();
    this.index.close();
    this.#slots.close();
  }

  /** Durable up to the catalog's seq at the call: seq taken, fdatasync (off the event loop), metadata, change log cut. */
  async #sync(): Promise<void> {
    const seq = this.#catalog.lastSeq;
    const meta: SyncMeta = { format: META_FORMAT, seq: seq.toString(), ntotal: this.index.ntotal, dim: this.index.dim, metric: this.index.metric };
    const covered = this.#changesSinceSync;
    await Promise.all([this.#slots.datasync(), this.#sq8()?.datasync()]); // sq8 seam
    const path = join(this.#dir, META_FILE);
    writeFileSync(`${path}.tmp`, JSON.stringify(meta), { flush: true });
    renameSync(`${path}.tmp`, path);
    this.#catalog.truncateChanges(seq);
    this.#changesSinceSync -= covered;
  }

  /** Loads the slot file into FAISS and replays the changes after `seq`; returns how many were replayed. */
  #load(seq: bigint): number {
    const sq8 = this.#sq8(); // sq8 seam: the slot file's ids and the codes file, no vectors
    if (sq8) sq8.load();
    else this.#slots.load((ids, vectors) => this.index.add(vectors, ids));
    const touched = new Set<bigint>();
    let changes = 0;
    for (const change of this.#catalog.changesSince(seq)) {
      touched.add(change.key);
      changes++;
    }
    if (touched.size === 0) return 0;
    const keys = BigInt64Array.from(touched);
    this.index.remove(keys);
    this.#slots.remove(keys);
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
    this.#changesSinceSync = changes;
    return changes;
  }

  #rebuild(): number {
    this.#slots.reset();
    this.#sq8()?.reset(); // sq8 seam
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
    this.#changesSinceSync = count;
    return count;
  }

  #addBatch(keys: BigInt64Array, vectors: Float32Array[]): void {
    if (keys.length === 0) return;
    const dim = this.index.dim;
    const flat = new Float32Array(keys.length * dim);
    vectors.forEach((v, i) => flat.set(v, i * dim));
    this.#slots.put(keys, flat); // sq8 seam: the slots first
    this.index.add(flat, keys);
  }

  /** sq8 seam: the compressed store, whose files this state loads, resets and syncs with the slot file. */
  #sq8(): Sq8Store | null {
    return this.index instanceof Sq8Store ? this.index : null;
  }
}

/** The sync metadata, or null (with a log line when there was something) when it cannot be used. */
function readMeta(dir: string, dim: number, metric: Metric, log: Logger): SyncMeta | null {
  const path = join(dir, META_FILE);
  if (!existsSync(path)) return null;
  try {
    const meta = JSON.parse(readFileSync(path, 'utf8')) as Partial<SyncMeta>;
    if (meta.format !== META_FORMAT) {
      log.info(`vector index: ${META_FILE} is from an older format (a FAISS checkpoint): rebuilding once`);
      return null;
    }
    if (meta.dim !== dim || meta.metric !== metric) {
      log.warn(`vector index: ${SLOT_FILE} is ${meta.dim}-d ${meta.metric}, the model wants ${dim}-d ${metric}: rebuilding`);
      return null;
    }
    BigInt(meta.seq ?? '');
    return meta as SyncMeta;
  } catch (err) {
    log.warn(`vector index: ${META_FILE} unreadable (${(err as Error).message}): rebuilding`);
    return null;
  }
}

/** Changes between syncs of the vector slot file for an index of `ntotal` vectors. */
export function checkpointThreshold(storage: Pick<Config['storage'], 'checkpointEvery' | 'checkpointGrowthPercent'>, ntotal: number): number {
  return Math.max(storage.checkpointEvery, Math.ceil((ntotal * storage.checkpointGrowthPercent) / 100));
}
