/** A posting index's keys in (SID, key) order, as the codes' layout takes them (code-layout.ts), in one go. */
import { keysInOrderParts } from '../../src/service/code-layout.ts';
import type { PostingIndex } from '../../src/service/posting-index.ts';

export function keysInOrder(index: PostingIndex): BigInt64Array {
  const parts = keysInOrderParts(index, Number.POSITIVE_INFINITY);
  let part = parts.next();
  while (!part.done) part = parts.next();
  return part.value;
}
