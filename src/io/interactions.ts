/**
 * Compact in-memory shapes for user interaction data (CSR: one flat Int32Array of item indices plus offsets),
 * shared by the RecBole and JSON-sequence readers. Item ids are non-negative int32 indices; at most 2^31 - 1
 * items in total per set.
 */

/** Per user (or per row) item lists: row i's items are `items[offsets[i] .. offsets[i + 1])`, oldest first. */
export interface SequenceSet {
  users: string[];
  /** length users.length + 1, offsets[0] = 0. */
  offsets: Int32Array;
  items: Int32Array;
}

/** Next-item prediction rows: row i is user `users[i]` with history `itemsOf(set, i)` and target `targets[i]`. */
export interface PredictionSet extends SequenceSet {
  targets: Int32Array;
}

/** Row i's items, as a view (no copy). */
export function itemsOf(set: SequenceSet, row: number): Int32Array {
  return set.items.subarray(set.offsets[row]!, set.offsets[row + 1]!);
}

/** Total number of interactions in a prediction set counting each row's target once: sum of (history + 1). */
export function interactionCount(set: PredictionSet): number {
  return set.items.length + set.targets.length;
}

/** A growable Int32Array (doubling), for readers that do not know their sizes up front. */
export class IntList {
  #data: Int32Array;
  #length = 0;

  constructor(capacity = 1024) {
    this.#data = new Int32Array(Math.max(1, capacity));
  }

  get length(): number {
    return this.#length;
  }

  push(v: number): void {
    if (this.#length === this.#data.length) {
      const grown = new Int32Array(this.#data.length * 2);
      grown.set(this.#data);
      this.#data = grown;
    }
    this.#data[this.#length++] = v;
  }

  /** An exact-length copy. */
  toArray(): Int32Array {
    return this.#data.slice(0, this.#length);
  }
}
