/**
 * When a code store (code-store.ts) trains its quantiser, and how: the keys written before it is trained are held
 * (scored exactly); once `count` are, `count` of them spread evenly over the held ones are the sample (while a
 * catalog grows, its first items; on a rebuild, which holds the whole catalog, items from all of it: so that deleting
 * the codes file refits a catalog that drifted away from its first items). A fit that returns its quantiser
 * (sq8) is applied at once: the codes of everything held, then the header (code-file.ts), in the write that completed
 * the sample. A fit that returns a promise (pq: k-means on the libuv pool, seconds) trains in the background: writes
 * go on meanwhile and are held too; once the quantiser is in, new writes are encoded as they come and the codes of
 * everything held then are written FILL_SLOTS per turn of the event loop (encoded on the libuv pool where the holder
 * can: pq), skipping slots freed meanwhile, then the header, its fdatasyncs on the pool.
 * A load, reset or close (`drop`) meanwhile stops it at its next step, without touching the store.
 */
import { setImmediate as nextTurn } from 'node:timers/promises';
import type { NativeCodes } from './binding.ts';
import type { CodesFile } from './code-file.ts';
import { callNativeAsync } from './vector-index.ts';

/** Slots encoded per turn of the event loop after a background training (pq at m = 256: about 20 ms). */
const FILL_SLOTS = 1_024;

/** A trained quantiser: its holder, and the header payload (CodeFormat.payloadBytes). */
export interface Fitted {
  codes: NativeCodes;
  payload: Uint8Array;
}

/** What the training needs of its store. */
export interface TrainingHost {
  readonly file: CodesFile;
  /** Vectors the quantiser is trained on. */
  count(): number;
  slotsOf(keys: BigInt64Array): Int32Array;
  fit(sample: Int32Array): Fitted | Promise<Fitted>;
  /** The trained holder replaces the empty one: writes are encoded from now on. */
  install(codes: NativeCodes): void;
  /** Encodes the rows at `slots` (read from the slot file) and writes their codes. */
  encode(slots: Int32Array): void;
  /** The holder in use, its rows of `slots` read from the slot file, and a write of codes (row i for slots[i]). */
  holder(): NativeCodes;
  readRows(slots: Int32Array): Float32Array;
  store(slots: Int32Array, codes: Uint8Array): void;
  /** Slots in the slot file (the codes file must cover them all once trained, free ones too). */
  slots(): number;
  /** The codes of every held key and the header are written: scores come from the codes now. */
  trained(): void;
}

export class CodeTraining {
  readonly #host: TrainingHost;
  /** Keys written before training (the sample, one batch more, and what comes while a background training runs). */
  readonly #held = new HeldKeys();
  #running: Promise<boolean> | null = null;
  #filling = false;
  #failed = false;
  /** Grows at each drop: a background training started before ends at its next step. */
  #epoch = 0;
  /**
   * While the held codes are written in the background: slots the slot file freed meanwhile (a deleted or moved key),
   * whose rows the fill must not encode (a reused one got its codes from its own write).
   */
  #freed: Set<number> | null = null;
  /** While set, held keys wait: a bulk fill trains once at its end (defer). */
  #deferred = false;

  constructor(host: TrainingHost) {
    this.#host = host;
  }

  /** A background training's quantiser is in and the held codes are being written: writes are encoded, scores stay exact. */
  get filling(): boolean {
    return this.#filling;
  }

  /**
   * The background training, until its codes and header are written (true) or a drop stopped it (false); rejects when it
   * failed. Null when none runs.
   */
  get running(): Promise<boolean> | null {
    return this.#running;
  }

  /** Holds keys written before training; `start`: and trains once enough are held. */
  hold(keys: BigInt64Array, start = true): void {
    this.#held.add(keys);
    if (start) this.startIfReady();
  }

  /** While `on`, no training starts; turned off, it starts if enough keys are held (`start`; a failed fill passes false). */
  defer(on: boolean, start = true): void {
    this.#deferred = on;
    if (!on && start) this.startIfReady();
  }

  /**
   * Trains when enough held keys are still stored (a deleted key has no slot), no training runs and none failed since
   * the last drop, and none is deferred.
   */
  startIfReady(): void {
    if (this.#deferred || this.#held.count < this.#host.count() || this.#running !== null || this.#failed) return;
    const host = this.#host;
    const slots = this.#held.slots(host.slotsOf);
    if (slots.length < host.count()) return;
    const fitted = host.fit(spread(slots, host.count()));
    if (!(fitted instanceof Promise)) {
      host.install(fitted.codes);
      host.encode(slots);
      host.file.cover(host.slots());
      host.file.writeHeader(fitted.payload);
      this.#held.clear();
      host.trained();
      return;
    }
    const epoch = this.#epoch;
    this.#running = this.#background(fitted, epoch).catch((err: Error) => {
      if (epoch === this.#epoch) {
        // Writes are held again (not encoded into a file that will get no header), scored exactly until the next start.
        this.#running = null;
        this.#failed = true;
        this.#filling = false;
        this.#freed = null;
      }
      throw host.file.error(`training failed (${err.message}); candidates are scored exactly until the next start`, 'SIDX_ERR_VECTOR');
    });
    this.#running.catch(() => undefined); // the owner asks `running` when it wants to know
  }

  /** Forgets the held keys and a background training (it ends at its next step without touching the store). */
  drop(): void {
    this.#epoch++;
    this.#held.clear();
    this.#running = null;
    this.#filling = false;
    this.#freed = null;
    this.#failed = false;
  }

  /** Slots the slot file just freed: a background fill skips them. */
  released(slots: Int32Array): void {
    if (this.#freed) for (const slot of slots) this.#freed.add(slot);
  }

  /** The held rows are read back at their turn, so a row rewritten meanwhile is encoded as it is then. */
  async #background(fit: Promise<Fitted>, epoch: number): Promise<boolean> {
    const fitted = await fit;
    const live = () => epoch === this.#epoch;
    if (!live()) {
      fitted.codes.close();
      return false;
    }
    const host = this.#host;
    host.install(fitted.codes);
    this.#filling = true;
    const freed = new Set<number>();
    this.#freed = freed;
    const held = this.#held.slots(host.slotsOf);
    this.#held.clear();
    for (let first = 0; first < held.length; first += FILL_SLOTS) {
      await nextTurn();
      if (!live()) return false;
      const part = held.subarray(first, first + FILL_SLOTS);
      const todo = freed.size === 0 ? part : part.filter((slot) => !freed.has(slot));
      const holder = host.holder();
      if (!holder.encodeAsync || todo.length === 0) {
        host.encode(todo);
        continue;
      }
      const encoded = await callNativeAsync(() => holder.encodeAsync!(host.readRows(todo)));
      if (!live()) return false;
      // Slots freed while it encoded may hold another item's row now, whose own write stored its codes.
      const kept = withoutFreed(todo, encoded, freed);
      host.store(kept.slots, kept.codes);
    }
    host.file.cover(host.slots());
    await host.file.writeHeaderAsync(fitted.payload, live);
    if (!live()) return false;
    this.#filling = false;
    this.#freed = null;
    this.#running = null;
    host.trained();
    return true;
  }
}

/**
 * Keys held before training, as the chunks they came in: a Set of bigints stops at 2^24 entries (a catalog's rebuild
 * holds them all). A key deleted or written again meanwhile is resolved when the slots are taken: no slot, or its
 * current one.
 */
class HeldKeys {
  #chunks: BigInt64Array[] = [];
  #count = 0;

  add(keys: BigInt64Array): void {
    if (keys.length === 0) return;
    this.#chunks.push(keys.slice());
    this.#count += keys.length;
  }

  /** Keys added since the last clear, repeats and deleted ones included (an upper bound of those still stored). */
  get count(): number {
    return this.#count;
  }

  clear(): void {
    this.#chunks = [];
    this.#count = 0;
  }

  /** The held keys' current slots, each once, ascending; keys no longer stored are left out. */
  slots(slotsOf: (keys: BigInt64Array) => Int32Array): Int32Array {
    const all = new Int32Array(this.#count);
    let n = 0;
    for (const chunk of this.#chunks) for (const slot of slotsOf(chunk)) if (slot >= 0) all[n++] = slot;
    const sorted = all.subarray(0, n).sort();
    let unique = 0;
    for (let i = 0; i < n; i++) if (i === 0 || sorted[i] !== sorted[i - 1]) sorted[unique++] = sorted[i]!;
    return sorted.slice(0, unique);
  }
}

/** `slots` but those in `freed`, with their rows of `codes` (as many bytes each). */
export function withoutFreed(slots: Int32Array, codes: Uint8Array, freed: ReadonlySet<number>): { slots: Int32Array; codes: Uint8Array } {
  if (!slots.some((slot) => freed.has(slot))) return { slots, codes };
  const size = codes.length / slots.length;
  const kept = slots.filter((slot) => !freed.has(slot));
  const keptCodes = new Uint8Array(kept.length * size);
  let at = 0;
  slots.forEach((slot, i) => {
    if (!freed.has(slot)) keptCodes.set(codes.subarray(i * size, (i + 1) * size), size * at++);
  });
  return { slots: kept, codes: keptCodes };
}

/** `count` of `slots` at even steps (all of them when there are no more). */
export function spread(slots: Int32Array, count: number): Int32Array {
  if (slots.length <= count) return slots;
  return Int32Array.from({ length: count }, (_, i) => slots[Math.floor((i * slots.length) / count)]!);
}
