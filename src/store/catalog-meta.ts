/** The catalog's databases (layout in catalog.ts) and its `meta` database: ascii name -> big-endian integer. */
import { open, type Database, type RootDatabase } from 'lmdb';
import { isSidxError, SidxError } from '../errors.ts';
import { readU64BE, u64Key } from './keys.ts';
import { openScanView, type ScanView } from './catalog-scan.ts';

/** Version of the catalog's byte layouts; a catalog written with another version refuses to open. */
export const CATALOG_SCHEMA_VERSION = 7;

export const META_SCHEMA = Buffer.from('schema'); // u32
export const META_NEXT_KEY = Buffer.from('nextKey'); // u64: next internal key to assign
export const META_LAST_SEQ = Buffer.from('lastSeq'); // u64: seq of the last change
export const META_TRUNCATED = Buffer.from('truncatedSeq'); // u64: changes with seq <= this were removed
export const META_DIM = Buffer.from('dim'); // u32, set by the first upsert
/** u32 1: `postings` holds the natural rotation (L-1) of each SID only (schema 5); absent: all L rotations. */
export const META_NATURAL_ONLY = Buffer.from('naturalPostingsOnly');
/** u8 level count of a model's SIDs, set by the model's first upsert. */
export const metaLevels = (model: number): Buffer => Buffer.from(`levels/${model}`);
const LEVELS_PREFIX = 'levels/';

type Bin = Database<Buffer, Buffer>;

export interface CatalogDbs {
  ids: Bin;
  items: Bin;
  postings: Bin;
  changes: Bin;
  meta: Bin;
  sids: Bin;
  freeSlots: Bin;
  /** `postings` for bulk scans: keys are views (openScanView). */
  postingScan: ScanView<null>;
  /** Which rotations `postings` holds, as read at open (the catalog updates it when it sets or clears the flag). */
  layout: PostingLayout;
}

export interface PostingLayout {
  naturalOnly: boolean;
}

/**
 * The catalog's LMDB environment, synced on every commit. `overlappingSync` (lmdb-js's Linux default) would make
 * lmdb-js's async writes and putSync/removeSync commit unsynced and flush later, and reopen then choose between the
 * last committed and the last flushed snapshot; with it off no path can commit unsynced. No writemap: LMDB has no
 * nested transactions with it, and pipelined upserts are child transactions (catalog-txns.ts).
 */
export function openCatalogEnv(dir: string, mapSizeBytes?: number): RootDatabase<Buffer, Buffer> {
  return open<Buffer, Buffer>({
    path: dir,
    noSubdir: false,
    maxDbs: 12,
    encoding: 'binary',
    keyEncoding: 'binary',
    overlappingSync: false,
    noSync: false,
    noMetaSync: false,
    useWritemap: false,
    ...(mapSizeBytes ? { mapSize: mapSizeBytes } : {}),
  });
}

/** Opens the catalog's seven named databases in `env`, binary keys and values. */
export function openCatalogDbs(env: RootDatabase<Buffer, Buffer>): CatalogDbs {
  const db = (name: string): Bin => env.openDB<Buffer, Buffer>({ name, encoding: 'binary', keyEncoding: 'binary' });
  return {
    ids: db('ids'), items: db('items'), postings: db('postings'), changes: db('changes'), meta: db('meta'), sids: db('sids'), freeSlots: db('freeSlots'),
    postingScan: openScanView(env, 'postings', () => null),
    layout: { naturalOnly: readMetaU32(db('meta'), META_NATURAL_ONLY) === 1 },
  };
}

/** Model version -> level count, for every model that has had a SID. */
export function modelLevels(meta: Bin): Map<number, number> {
  const out = new Map<number, number>();
  for (const { key, value } of meta.getRange({ start: Buffer.from(LEVELS_PREFIX) })) {
    const name = key.toString('latin1');
    if (!name.startsWith(LEVELS_PREFIX)) break;
    out.set(Number(name.slice(LEVELS_PREFIX.length)), value[0]!);
  }
  return out;
}

/** `err` as a SidxError: itself when it is one, else SIDX_ERR_STORE naming the catalog operation. */
export function storeError(err: unknown, what: string): SidxError {
  if (isSidxError(err)) return err;
  const message = err instanceof Error ? err.message : String(err);
  return new SidxError('SIDX_ERR_STORE', `catalog ${what} failed: ${message}`, { cause: err });
}

export function u32Value(n: number): Buffer {
  const b = Buffer.allocUnsafe(4);
  b.writeUInt32BE(n, 0);
  return b;
}

export function readMetaU64(meta: Bin, name: Buffer): bigint {
  const b = meta.getBinaryFast(name);
  return b === undefined ? 0n : readU64BE(b, 0);
}

export function readMetaU32(meta: Bin, name: Buffer): number | undefined {
  return meta.getBinary(name)?.readUInt32BE(0);
}

/** Writes the initial counters (and the natural-only flag) unless present; call inside a write transaction. */
export function initMeta(meta: Bin, firstKey: bigint, naturalOnly: boolean): void {
  if (meta.getBinary(META_SCHEMA) !== undefined) return; // another process initialised it first
  meta.put(META_SCHEMA, u32Value(CATALOG_SCHEMA_VERSION));
  if (naturalOnly) meta.put(META_NATURAL_ONLY, u32Value(1));
  meta.put(META_NEXT_KEY, u64Key(firstKey));
  meta.put(META_LAST_SEQ, u64Key(0n));
  meta.put(META_TRUNCATED, u64Key(0n));
}

/** Catalog.open's options. */
export interface CatalogOpenOptions {
  /** LMDB map size; lmdb-js grows the map on demand when omitted or 0. */
  mapSizeBytes?: number;
  /** First internal key of a new catalog (default 1); ignored when the catalog exists. */
  firstKey?: bigint;
  /** SID count changes the SID log keeps for trie deltas (default DEFAULT_SID_HISTORY). */
  sidHistory?: number;
  /**
   * Leave building the SID tries to `sids.load()` (or their first read). Call it before writing, or never read the
   * tries of that open (`sidx index`): a first build while a pipelined commit is being published would count it twice.
   */
  deferSids?: boolean;
  /**
   * 'natural': a new catalog stores each SID's natural posting only (Hamming-1 scans then skip-scan it; for services
   * whose candidates come from the in-memory posting index). 'all' (default): every rotation; a natural-only
   * catalog opened so gets its rotated postings written first. An existing catalog with all rotations keeps them.
   */
  postingRotations?: 'all' | 'natural';
}
