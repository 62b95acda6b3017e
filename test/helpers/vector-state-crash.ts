/**
 * The crash scenario of the code-storage VectorState tests (test/service/vector-state-{sq8,pq}.test.ts): three
 * synced batches, then (no sync) deletes freeing rows, new items reusing them, re-upserts moving to new rows; the
 * state is closed without a sync (what a kill -9 leaves: page-cache writes survive it) and reopened, which must load
 * and replay, not rebuild. `check` compares the store with the catalog before the crash and after the reopen.
 */
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { Catalog } from '../../src/store/catalog.ts';
import { VectorState } from '../../src/service/vector-state.ts';
import type { OpenStore } from '../../src/vector/vector-store.ts';

export const log = (lines: string[]) => ({ info: (m: string) => lines.push(m), warn: (m: string) => lines.push(`WARN ${m}`) });

/** Upserts items `it<id>` with row rowOf(id) of `vectors` and applies the batch to the state. */
export function upsert(catalog: Catalog, state: VectorState, dim: number, ids: number[], vectors: Float32Array, rowOf = (id: number) => id): void {
  const flat = new Float32Array(ids.length * dim);
  ids.forEach((id, i) => flat.set(vectors.subarray(rowOf(id) * dim, (rowOf(id) + 1) * dim), i * dim));
  const res = catalog.upsertBatch(1, ids.map((id, i) => ({ id: `it${id}`, vector: flat.subarray(i * dim, (i + 1) * dim), codes: Int32Array.of(id % 7, id % 5) })));
  state.applyUpsert(res.keys, res.slots, flat, res.seq);
}

/** 500 rows of `vectors` (dim each): ids 0..299 synced, then the unsynced changes; keys up to 360 are in use. */
export async function crashAndReopen(dir: string, dim: number, storage: OpenStore, vectors: Float32Array,
  check: (catalog: Catalog, state: VectorState) => void): Promise<void> {
  let catalog = Catalog.open(join(dir, 'catalog'));
  let state = await VectorState.open(dir, catalog, dim, 'ip', log([]), storage);
  for (let b = 0; b < 3; b++) upsert(catalog, state, dim, Array.from({ length: 100 }, (_, i) => b * 100 + i), vectors);
  await state.sync();
  const remove = Array.from({ length: 20 }, (_, i) => `it${3 * i}`);
  const del = catalog.deleteBatch(remove);
  state.applyDelete(del.removed, del.seq);
  upsert(catalog, state, dim, Array.from({ length: 30 }, (_, i) => 100 + i), vectors, (id) => id + 300);
  upsert(catalog, state, dim, Array.from({ length: 50 }, (_, i) => 300 + i), vectors);
  check(catalog, state);
  await state.close(); // no sync
  await catalog.close();

  catalog = Catalog.open(join(dir, 'catalog'));
  const lines: string[] = [];
  state = await VectorState.open(dir, catalog, dim, 'ip', log(lines), storage);
  try {
    assert.match(lines.join('\n'), /330 vectors opened from vectors.ids .* 100 changes replayed/);
    assert.doesNotMatch(lines.join('\n'), /rebuil/);
    await state.store.loaded?.(); // the codes are read in the background
    check(catalog, state);
  } finally {
    await state.close();
    await catalog.close();
  }
}
