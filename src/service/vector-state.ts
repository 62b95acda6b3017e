/**
 * Keeps what the rerank needs to find each item's vector, derived from the LMDB catalog (the source of truth: its
 * records name the row of `vectors.f32` that holds each vector, store/catalog-vectors.ts), and its files.
 *
 * The store (vector/vector-store.ts, `MappedSlotStore`): the catalog's vector file read in place through a shared
 * mapping (the rerank scores straight from the page cache, there is no in-memory copy), plus `vectors.ids`, the
 * key of each row, updated after every committed batch (page-cache writes, no fsync); `vectors.json`
 * ({format, seq, ntotal, dim, metric}) says the id file holds every change up to `seq`.
 * A sync (`startSync`, every `checkpointThreshold` changes, off the write lock) fdatasyncs the id file on the libuv
 * pool, then writes vectors.json and truncates the change log up to the seq taken before the fdatasync. Nothing is
 * ever rewritten whole, so writers never stall on it.
 *
 * At start: read the id file (no vector is read or copied), map the vector file, then replay the change log after
 * `seq` (every touched key leaves and re-enters with the row its record names); any doubt (no or other-format
 * metadata, a key stored twice, a truncated change log, a count that differs from the catalog's) rebuilds the
 * id file from the records (no vector is read for f32). Losing these files therefore loses nothing. Files of
 * earlier layouts (a `vectors.faiss` checkpoint, the `vectors.slots` copy of the vectors) are removed.
 *
 * Config `vectors.storage` sq8 or pq opens a CodedSlotStore instead (vector/sq8-slot-store.ts: 8-bit scalar or
 * FAISS product-quantisation codes in memory, their own `vectors.sq8` / `vectors.pq` synced with the id file, the
 * best candidates re-scored from the vector file).
 */
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../config.ts';
import type { Catalog } from '../store/catalog.ts';
import type { Metric } from '../vector/vector-index.ts';
import { MappedSlotStore, type OpenStore, type PreparedVectors, type VectorStore } from '../vector/vector-store.ts';

export interface Logger {
  info(msg: string): void;
  warn(msg: string): void;
}

const META_FORMAT = 'rows-v2';
const REBUILD_BATCH = 10_000;
const SLOT_BASE = 'vectors';
const ID_FILE = `${SLOT_BASE}.ids`;
const META_FILE = 'vectors.json';
const LEGACY_FILES = ['vectors.faiss', 'vectors.faiss.tmp', 'vectors.slots'];
/** The share of clamped sq8 rows above which a start warns (#warnClamped): in-distribution catalogs measured 0-0.4%. */
const CLAMPED_WARN = 0.05;

interface SyncMeta {
  format: typeof META_FORMAT;
  seq: string;
  ntotal: number;
  dim: number;
  metric: Metric;
}

export class VectorState {
  readonly store: VectorStore;
  #dir: string;
  #catalog: Catalog;
  #log: Logger;
  #changesSinceSync = 0;
  #syncing: Promise<void> | null = null;
  /** Every change up to it is in the store (the catalog's seq at open, then the last batch applied). */
  #appliedSeq: bigint;
  /** The store's background training last logged. */
  #watched: Promise<boolean> | null = null;

  private constructor(dir: string, catalog: Catalog, store: VectorStore, log: Logger) {
    this.#dir = dir;
    this.#catalog = catalog;
    this.store = store;
    this.#log = log;
    this.#appliedSeq = catalog.lastSeq;
  }

  /** `openStore`: the storage mode, given the files' base path (`<dir>/vectors`); default the mapped f32 slot file. */
  static async open(dir: string, catalog: Catalog, dim: number, metric: Metric, log: Logger, openStore: OpenStore = MappedSlotStore.open): Promise<VectorState> {
    const state = new VectorState(dir, catalog, openStore(join(dir, SLOT_BASE), dim, metric, catalog.vectorFile), log);
    const meta = readMeta(dir, dim, metric, log);
    if (meta) {
      try {
        const replayed = state.#load(BigInt(meta.seq));
        if (state.store.ntotal === catalog.count) {
          log.info(`vector index: ${state.store.ntotal} vectors opened from ${ID_FILE} (synced at seq ${meta.seq}), ${replayed} changes replayed`);
          const t0 = performance.now();
          state.store.loaded?.()?.then(() => {
            log.info(`vector index: codes read in ${Math.round(performance.now() - t0)} ms (until then the rerank scored exactly)`);
            state.#warnClamped();
          }, (err: Error) => log.warn(`vector index: ${err.message}`));
          state.#watchTraining();
          return state;
        }
        log.warn(`vector index: ${state.store.ntotal} vectors after catch-up, the catalog holds ${catalog.count}: rebuilding`);
      } catch (err) {
        log.warn(`vector index: cannot load ${ID_FILE} and catch up from seq ${meta.seq} (${(err as Error).message}): rebuilding`);
      }
    }
    const count = state.#rebuild();
    state.#watchTraining();
    await state.sync();
    for (const name of LEGACY_FILES) rmSync(join(dir, name), { force: true });
    log.info(`vector index: rebuilt from the catalog (${count} vectors)`);
    return state;
  }

  /**
   * sq8, pq: when more than CLAMPED_WARN of the codes read are flagged (values beyond the sq8 ranges, or residuals beyond
   * the pq codebooks' reach, both fitted on the catalog's first items: it drifted away from them), says so and how to
   * refit: each such row costs an exact re-score in every rerank. Not after a rebuild or a training at the start: those
   * fit on items spread over the whole catalog already.
   */
  #warnClamped(): void {
    const clamped = this.store.clampedRows?.() ?? 0;
    const total = this.store.ntotal;
    const name = this.store.codesName;
    if (total === 0 || clamped / total <= CLAMPED_WARN || name === undefined) return;
    const what = name === 'sq8' ? 'lie beyond the sq8 ranges' : 'lie beyond the reach of the pq codebooks (a residual above the training items\')';
    this.#log.warn(`vector index: ${clamped} of ${total} items (${(100 * clamped / total).toFixed(1)}%) ${what} fitted `
      + `on the catalog's first items, and every rerank re-scores those it meets exactly from the vector file; to refit the `
      + `${name} codes on items from the whole catalog, stop the server, delete ${join(this.#dir, `${SLOT_BASE}.${name}`)} and start it again `
      + `(the codes are rebuilt at the start)`);
  }

  /**
   * What the store derives from a batch's vectors, computed before its write (pq's codes, on the libuv pool), for
   * applyUpsert; never rejects (null: the store derives them in applyUpsert). Leave `vectors` untouched until it settles.
   */
  prepare(vectors: Float32Array): Promise<PreparedVectors | null> {
    return this.store.prepare?.(vectors)?.catch(() => null) ?? Promise.resolve(null);
  }

  /**
   * After a committed upsert whose last change is `seq`: keys[i]'s vector is in row slots[i] (`vectors`: the batch's,
   * for modes that derive codes; `prepared`: what `prepare` gave for them). Batches are applied in commit order.
   */
  applyUpsert(keys: BigInt64Array, slots: Uint32Array, vectors: Float32Array | undefined, seq: bigint, prepared?: PreparedVectors | null): void {
    this.store.put(keys, slots, vectors, prepared ?? undefined);
    this.#watchTraining();
    this.#applied(keys.length, seq);
  }

  applyDelete(keys: BigInt64Array, seq: bigint): void {
    if (keys.length > 0) this.store.remove(keys);
    this.#applied(keys.length, seq);
  }

  #applied(changes: number, seq: bigint): void {
    this.#changesSinceSync += changes;
    if (seq > this.#appliedSeq) this.#appliedSeq = seq;
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

  /**
   * Waits for a running sync and a background training (its codes are written with it), then syncs everything written
   * so far (shutdown, rebuild).
   */
  async sync(): Promise<void> {
    await this.idle();
    await this.store.training?.()?.catch(() => undefined); // logged by #watchTraining
    await this.#sync();
  }

  /** Logs the start and the end of the store's background training (pq's quantiser), once each. */
  #watchTraining(): void {
    const training = this.store.training?.() ?? null;
    if (training === null || training === this.#watched) return;
    this.#watched = training;
    const t0 = performance.now();
    this.#log.info(`vector index: training the codes in the background on ${this.store.ntotal} vectors (until they are written the rerank scores exactly)`);
    training.then((done) => {
      if (done) this.#log.info(`vector index: codes trained and written in ${Math.round(performance.now() - t0)} ms`);
    }, (err: Error) => this.#log.warn(`vector index: ${err.message}`));
  }

  /** Waits for a running sync; unmaps and closes the slot file. */
  async close(): Promise<void> {
    await this.idle();
    this.store.close();
  }

  /** Durable up to the catalog's seq at the call: seq taken, fdatasync (off the event loop), metadata, change log cut. */
  async #sync(): Promise<void> {
    // Not the catalog's last seq: a pipelined commit may be in LMDB before the service has applied it here.
    const seq = this.#appliedSeq;
    const meta: SyncMeta = { format: META_FORMAT, seq: seq.toString(), ntotal: this.store.ntotal, dim: this.store.dim, metric: this.store.metric };
    const covered = this.#changesSinceSync;
    await this.store.datasync();
    const path = join(this.#dir, META_FILE);
    writeFileSync(`${path}.tmp`, JSON.stringify(meta), { flush: true });
    renameSync(`${path}.tmp`, path);
    this.#catalog.truncateChanges(seq);
    this.#changesSinceSync -= covered;
  }

  /** Reads the slot ids back and replays the changes after `seq`; returns how many were replayed. */
  #load(seq: bigint): number {
    this.store.load();
    const touched = new Set<bigint>();
    let changes = 0;
    for (const change of this.#catalog.changesSince(seq)) {
      touched.add(change.key);
      changes++;
    }
    if (touched.size === 0) return 0;
    const keys = BigInt64Array.from(touched);
    this.store.remove(keys);
    const present: bigint[] = [];
    const slots: number[] = [];
    for (const key of keys) {
      const rec = this.#catalog.recordOf(key);
      if (rec) {
        present.push(key);
        slots.push(rec.slot);
      }
    }
    this.#addBatch(present, slots);
    this.#changesSinceSync = changes;
    return changes;
  }

  /**
   * Where the store disagrees with the catalog (at most `maxProblems` lines; empty = agrees): the vector count, an
   * item without a stored vector, one whose stored vector differs from its record's. With the counts equal and every
   * item present, no stored key lacks an item. Reads every vector: a check for tests and tools, not a serving path.
   */
  verify(maxProblems = 20): string[] {
    const problems: string[] = [];
    const note = (message: string) => {
      if (problems.length < maxProblems) problems.push(message);
    };
    if (this.store.ntotal !== this.#catalog.count) note(`${this.store.ntotal} vectors stored, the catalog holds ${this.#catalog.count} items`);
    const probe = new Float32Array(this.store.dim);
    let batch: { key: bigint; id: string; vector: Float32Array }[] = [];
    const check = () => {
      const present = this.store.score(probe, BigInt64Array.from(batch, (item) => item.key));
      const stored = batch.filter((_item, i) => !Number.isNaN(present[i]));
      for (const [i, item] of batch.entries()) if (Number.isNaN(present[i])) note(`item ${item.id} (key ${item.key}) has no stored vector`);
      const vectors = this.store.gather(BigInt64Array.from(stored, (item) => item.key));
      stored.forEach((item, i) => {
        const got = vectors.subarray(i * this.store.dim, (i + 1) * this.store.dim);
        if (got.some((x, j) => !Object.is(x, item.vector[j]))) note(`item ${item.id} (key ${item.key}): the stored vector differs from its record's`);
      });
      batch = [];
    };
    for (const item of this.#catalog.items()) {
      batch.push(item);
      if (batch.length === REBUILD_BATCH) check();
    }
    if (batch.length > 0) check();
    return problems;
  }

  /** A code store trains once the whole catalog is in (VectorStore.filling), on a sample spread over all of it. */
  #rebuild(): number {
    this.store.reset();
    let count = 0;
    const fill = () => {
      let keys: bigint[] = [];
      let slots: number[] = [];
      for (const rec of this.#catalog.records()) {
        keys.push(rec.key);
        slots.push(rec.slot);
        if (keys.length === REBUILD_BATCH) {
          this.#addBatch(keys, slots);
          count += keys.length;
          keys = [];
          slots = [];
        }
      }
      this.#addBatch(keys, slots);
      count += keys.length;
    };
    if (this.store.filling) this.store.filling(fill);
    else fill();
    this.#changesSinceSync = count;
    return count;
  }

  #addBatch(keys: bigint[], slots: number[]): void {
    if (keys.length > 0) this.store.put(BigInt64Array.from(keys), Uint32Array.from(slots));
  }
}

/** The sync metadata, or null (with a log line when there was something) when it cannot be used. */
function readMeta(dir: string, dim: number, metric: Metric, log: Logger): SyncMeta | null {
  const path = join(dir, META_FILE);
  if (!existsSync(path)) return null;
  try {
    const meta = JSON.parse(readFileSync(path, 'utf8')) as Partial<SyncMeta>;
    if (meta.format !== META_FORMAT) {
      log.info(`vector index: ${META_FILE} is from an older layout: rebuilding once`);
      return null;
    }
    if (meta.dim !== dim || meta.metric !== metric) {
      log.warn(`vector index: ${ID_FILE} is for ${meta.dim}-d ${meta.metric}, the model wants ${dim}-d ${metric}: rebuilding`);
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
