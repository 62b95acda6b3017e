/**
 * The catalog's checks of a write's input (ids: non-empty, no unpaired surrogate, at most 512 UTF-8 bytes, distinct;
 * vectors: one dimension, finite), for a node that writes through a log rather than the catalog: a cluster router
 * refuses what its shards' catalogs would refuse before it acknowledges anything.
 */
export { idBytesOf as checkItemId, validateDelete as checkDelete, validateUpsertRows as checkUpsertRows } from '../store/catalog-input.ts';
