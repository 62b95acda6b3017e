import type { Config } from '../config.ts';
import { readsTopM, resolveCollisions } from '../sid/collisions.ts';
import type { Catalog } from '../store/catalog.ts';
import type { EncodeOptions, EncodeResult } from '../tokenizer/encoder-pool.ts';
import type { ActiveModel } from './model-space.ts';

/** Encode options for items the policy will place: without a cap, nothing reads the encoder's top-M. */
export function encodeOptionsFor(policy: Config['collisions']): EncodeOptions {
  return { codesOnly: !readsTopM(policy.strategy) };
}

/**
 * Under the `cap` policy an item whose SID already holds `cap` items moves to its nearest free last-level
 * alternative. Call under the write lock: occupancy is what is committed. An item being replaced still counts at its
 * old SID.
 */
export function applyCollisionPolicy(policy: Config['collisions'], catalog: Catalog, enc: EncodeResult, n: number, model: ActiveModel): Int32Array {
  if (policy.strategy === 'none') return enc.codes;
  const { levels, version } = model;
  const cap = policy.cap;
  const result = resolveCollisions(
    { kind: 'cap', cap },
    { codes: enc.codes, topCodes: enc.topCodes, topDistances: enc.topDistances, n, levels, topM: enc.topCodes.length / (n * levels) },
    { count: (sid) => catalog.exact(version, sid, cap + 1).length },
  );
  return result.codes;
}
