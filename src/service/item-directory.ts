/**
 * The items of one key space as rows: internal key -> row, and each row's external id and SID. Batched retrieval
 * (retrieve-batch.ts) answers with rows so that `sidx eval` maps thousands of answers to its item numbers without a
 * record read each. A copy taken when `build` runs: an item written later has no row (rowOf -1).
 */
import type { Catalog } from '../store/catalog.ts';

export class ItemDirectory {
  readonly model: number;
  readonly levels: number;
  /** count × levels, row-major. */
  readonly codes: Int32Array;
  readonly ids: readonly string[];
  /** Keyed by Number(key) when every key is below 2^53 (a number-keyed map is faster), else by the bigint. */
  #rowOfKey = new Map<number | bigint, number>();
  #numberKeys: boolean;

  private constructor(model: number, levels: number, keys: BigInt64Array, codes: Int32Array, ids: string[]) {
    this.model = model;
    this.levels = levels;
    this.codes = codes;
    this.ids = ids;
    this.#numberKeys = keys.every((k) => k <= BigInt(Number.MAX_SAFE_INTEGER));
    keys.forEach((k, r) => this.#rowOfKey.set(this.#numberKeys ? Number(k) : k, r));
  }

  /** The items whose SID in key space `model` (the catalog's active one, which item reads resolve to) has `levels` codes. */
  static build(catalog: Catalog, model: number, levels: number): ItemDirectory {
    const keys = catalog.prefix(model, new Int32Array(0), Math.max(1, catalog.count));
    const codes = new Int32Array(keys.length * levels);
    const ids = Array.from(keys, (key, r) => {
      const rec = catalog.recordOf(key);
      if (rec?.model !== model || rec.codes.length !== levels) {
        throw new Error(`item directory: item key ${key} has no ${levels}-level SID in key space ${model} (not the active one?)`);
      }
      codes.set(rec.codes, r * levels);
      return rec.id;
    });
    return new ItemDirectory(model, levels, keys, codes, ids);
  }

  get count(): number {
    return this.ids.length;
  }

  /** Row of an internal key, or -1. */
  rowOf(key: bigint): number {
    return this.#rowOfKey.get(this.#numberKeys ? Number(key) : key) ?? -1;
  }

  /** SID of a row (a view, not a copy). */
  sid(row: number): Int32Array {
    return this.codes.subarray(row * this.levels, (row + 1) * this.levels);
  }
}
