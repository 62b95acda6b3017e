/**
 * Key orders ("rotations") for the SID key spaces. Rotation i lists the codes of every position except i in
 * natural order, then position i last: for L = 3, rotation 0 = (c1,c2,c0), rotation 1 = (c0,c2,c1),
 * rotation 2 = (c0,c1,c2). Rotation L-1 is therefore the natural order, which is the one SID prefix scans use.
 * A prefix scan over the first L-1 codes of rotation i lists every item that agrees with a SID everywhere except
 * possibly at position i: that is how Hamming-1 neighbours are found without enumerating K-1 codes.
 */
import { SidxError } from '../errors.ts';

/** Rotation index is one key byte and L is one record byte. */
export const MAX_LEVELS = 255;

const cache: Uint8Array[][] = [];

function assertLevels(levels: number): void {
  if (!Number.isInteger(levels) || levels < 1 || levels > MAX_LEVELS) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `levels must be an integer in 1..${MAX_LEVELS}, got ${levels}`, {
      field: 'levels',
    });
  }
}

/** Shared, cached orders; callers inside sid/ and store/ must not mutate them. */
export function cachedRotationOrders(levels: number): readonly Uint8Array[] {
  let orders = cache[levels];
  if (orders === undefined) {
    assertLevels(levels);
    orders = [];
    for (let i = 0; i < levels; i++) {
      const order = new Uint8Array(levels);
      let j = 0;
      for (let p = 0; p < levels; p++) if (p !== i) order[j++] = p;
      order[j] = i;
      orders.push(order);
    }
    cache[levels] = orders;
  }
  return orders;
}

/** All L key orders; index i is the order with position i last (a fresh copy). */
export function rotationOrders(levels: number): Uint8Array[] {
  return cachedRotationOrders(levels).map((o) => o.slice());
}

/** The key order with `position` last (a fresh copy): key code j is `codes[order[j]]`. */
export function rotationOrder(levels: number, position: number): Uint8Array {
  const orders = cachedRotationOrders(levels);
  if (!Number.isInteger(position) || position < 0 || position >= levels) {
    throw new SidxError('SIDX_ERR_INVALID_INPUT', `rotation must be in 0..${levels - 1}, got ${position}`, {
      field: 'rotation',
    });
  }
  return orders[position].slice();
}

/** The rotation whose key order is the natural one (also the exact-SID and SID-prefix key space). */
export function naturalRotation(levels: number): number {
  assertLevels(levels);
  return levels - 1;
}
