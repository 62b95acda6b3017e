/**
 * Consistency check of an LMDB catalog (layout in catalog.ts), for crash tests and operators:
 *
 *   - every item record decodes, its model's level count and the catalog dimension match, its key is below
 *     nextKey, its id maps back to it (`ids`), and its L postings (one per rotation) exist;
 *   - (schema 4) every record names a row of `vectors.f32` below nextSlot that no other record names and that is
 *     not on the free list; used + free rows = nextSlot, and the file holds at least nextSlot rows;
 *   - every id mapping points at an item carrying that id (no id without its item);
 *   - every posting decodes, names an existing item, and that item has exactly this SID in that model, in its
 *     record or in a `sids` side entry (no posting without its item, none left behind by a re-upsert that changed
 *     the SID); postings = sum of L over the SIDs of all items;
 *   - every side entry (catalog-spaces.ts) belongs to an existing item, in a model other than its record's, with
 *     that model's level count and its L postings;
 *   - every change-log pack ends in (truncatedSeq, lastSeq], after the one before it, with known ops and keys below nextKey;
 *   - every `sidLog` entry is well formed, and no SID's logged changes since its model's floor add up to more items
 *     than its postings hold.
 *
 * It opens its own read-only environment on the directory and reads one snapshot per database. Another process
 * (or this one, through `Catalog`) may have the catalog open: LMDB readers never block writers, and lmdb-js shares
 * one environment per path inside a process. Cost: one pass over items, ids, postings and changes, plus L point
 * lookups per item and one per posting.
 */
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { open, type RootDatabase } from 'lmdb';
import { decodeSidKey, sidKeyLength, writeSidKey } from '../sid/codec.ts';
import { CATALOG_SCHEMA_VERSION, modelLevels, openCatalogDbs, type CatalogDbs } from './catalog-meta.ts';
import { META_DIM, META_LAST_SEQ, META_NEXT_KEY, META_SCHEMA, META_TRUNCATED } from './catalog-meta.ts';
import { packChanges, packLast, wellFormedPack } from './change-log.ts';
import { readU64BE, U64_BYTES } from './keys.ts';
import { readStoredRecord as readRecord, readRecordSid } from './record.ts';
import { META_NEXT_SLOT, slotKey } from './catalog-vectors.ts';
import { VECTOR_FILE } from '../vector/vector-file.ts';
import { getSideSid, sideSids } from './catalog-spaces.ts';
import { forEachChange, SidLog } from './sid-log.ts';

export interface CatalogVerifyReport {
  ok: boolean;
  items: number;
  ids: number;
  postings: number;
  /** The catalog stores each SID's natural posting alone (catalog.ts), so `postings` counts one per SID held. */
  naturalOnly: boolean;
  /** Side entries: SIDs in a second model (re-index). */
  sides: number;
  changes: number;
  lastSeq: bigint;
  nextKey: bigint;
  /** The first `maxProblems` problems found, in words. */
  problems: string[];
  /** All problems found (may exceed problems.length). */
  problemCount: number;
}

export interface StoredSid {
  key: bigint;
  model: number;
  codes: Int32Array;
}

function sameCodes(a: Int32Array, b: Int32Array): boolean {
  return a.length === b.length && a.every((c, i) => c === b[i]);
}

export class CatalogInspector {
  #env: RootDatabase<Buffer, Buffer>;
  #db: CatalogDbs;
  #dir: string;

  private constructor(env: RootDatabase<Buffer, Buffer>, dir: string) {
    this.#env = env;
    this.#dir = dir;
    this.#db = openCatalogDbs(env);
  }

  /** Opens `dir` (the catalog directory, e.g. data/catalog) read-only; throws when it is not a catalog. */
  static open(dir: string): CatalogInspector {
    const env = open<Buffer, Buffer>({ path: dir, readOnly: true, maxDbs: 12, encoding: 'binary', keyEncoding: 'binary' });
    try {
      return new CatalogInspector(env, dir);
    } catch (err) {
      void env.close();
      throw err;
    }
  }

  #u64(name: Buffer): bigint {
    const b = this.#db.meta.getBinary(name);
    return b === undefined ? 0n : readU64BE(b, 0);
  }

  /** Every item's id and SID (no vectors), for tests comparing against what a client was told. */
  sids(): Map<string, StoredSid> {
    this.#env.resetReadTxn();
    const out = new Map<string, StoredSid>();
    for (const { key, value } of this.#db.items.getRange({})) {
      const rec = readRecord(value, readU64BE(key, 0));
      out.set(rec.id, { key: rec.key, model: rec.model, codes: rec.codes });
    }
    return out;
  }

  /** Free rows below nextSlot and named by no record; every row up to nextSlot in the vector file. */
  #verifySlots(nextSlot: number, used: Uint8Array, dim: number | undefined, problem: (text: string) => void): void {
    let free = 0;
    for (const key of this.#db.freeSlots.getKeys({})) {
      const slot = key.readUInt32BE(0);
      free++;
      if (slot >= nextSlot) problem(`free vector row ${slot}: not below nextSlot ${nextSlot}`);
    }
    const named = used.reduce((n, u) => n + (u > 0 ? 1 : 0), 0);
    if (named + free !== nextSlot) problem(`vector rows: ${named} named by records + ${free} free, nextSlot is ${nextSlot}`);
    const file = join(this.#dir, VECTOR_FILE);
    const rows = dim === undefined || !existsSync(file) ? 0 : Math.floor(statSync(file).size / (4 * dim));
    if (rows < nextSlot) problem(`${VECTOR_FILE}: ${rows} rows, nextSlot is ${nextSlot}`);
  }

  verify(opts: { maxProblems?: number } = {}): CatalogVerifyReport {
    // Read the latest committed state, even one committed a moment ago through another handle in this process.
    this.#env.resetReadTxn();
    const maxProblems = opts.maxProblems ?? 20;
    const problems: string[] = [];
    let problemCount = 0;
    const problem = (text: string) => {
      if (problems.length < maxProblems) problems.push(text);
      problemCount++;
    };

    const schema = this.#db.meta.getBinary(META_SCHEMA);
    if (schema === undefined) problem('meta: no schema version (catalog never initialised)');
    else if (schema.readUInt32BE(0) !== CATALOG_SCHEMA_VERSION) problem(`meta: schema ${schema.readUInt32BE(0)}, expected ${CATALOG_SCHEMA_VERSION}`);
    const nextKey = this.#u64(META_NEXT_KEY);
    const lastSeq = this.#u64(META_LAST_SEQ);
    const truncated = this.#u64(META_TRUNCATED);
    const dim = this.#db.meta.getBinary(META_DIM)?.readUInt32BE(0);
    const levels = modelLevels(this.#db.meta);
    const nextSlot = Number(this.#u64(META_NEXT_SLOT));
    const usedSlots = new Uint8Array(nextSlot);

    // Items: record, id mapping, postings.
    let items = 0;
    let expectedPostings = 0;
    let scratch = Buffer.alloc(0);
    for (const { key: rawKey, value } of this.#db.items.getRange({})) {
      items++;
      // Range buffers may be reused by the point lookups below: copy what is needed after them.
      const key = Buffer.from(rawKey);
      const k = key.length === U64_BYTES ? readU64BE(key, 0) : -1n;
      const where = `item key ${k}`;
      if (k < 0n) {
        problem(`items: key of ${key.length} bytes`);
        continue;
      }
      if (k >= nextKey) problem(`${where}: key is not below nextKey ${nextKey}`);
      let rec;
      try {
        rec = readRecord(value, k);
      } catch (err) {
        problem(`${where}: ${(err as Error).message}`);
        continue;
      }
      const L = levels.get(rec.model);
      if (L === undefined) problem(`${where}: model ${rec.model} has no level count in meta`);
      else if (L !== rec.codes.length) problem(`${where}: ${rec.codes.length} codes, model ${rec.model} has ${L} levels`);
      if (dim !== undefined && rec.dim !== dim) problem(`${where}: ${rec.dim}-d vector, catalog is ${dim}-d`);
      if (rec.slot < 0) problem(`${where}: vector inside the record (format 0) in a schema-${CATALOG_SCHEMA_VERSION} catalog`);
      else if (rec.slot >= nextSlot) problem(`${where}: vector row ${rec.slot} is not below nextSlot ${nextSlot}`);
      else if (usedSlots[rec.slot]++ > 0) problem(`${where}: vector row ${rec.slot} is named by another record too`);
      else if (this.#db.freeSlots.getBinaryFast(slotKey(rec.slot)) !== undefined) problem(`${where}: vector row ${rec.slot} is on the free list`);
      const mapped = this.#db.ids.getBinary(Buffer.from(rec.id, 'utf8'));
      if (mapped === undefined) problem(`${where} (${JSON.stringify(rec.id)}): no id mapping`);
      else if (!mapped.equals(key)) problem(`${where} (${JSON.stringify(rec.id)}): id maps to key ${readU64BE(mapped, 0)}`);
      const len = sidKeyLength(rec.codes.length) + U64_BYTES;
      if (scratch.length < len) scratch = Buffer.alloc(len);
      const posting = scratch.subarray(0, len);
      key.copy(posting, len - U64_BYTES);
      const first = (L: number) => (this.#db.layout.naturalOnly ? L - 1 : 0); // natural-only: rotation L-1 alone
      for (let r = first(rec.codes.length); r < rec.codes.length; r++) {
        writeSidKey(posting, 0, rec.model, r, rec.codes);
        expectedPostings++;
        if (this.#db.postings.getBinaryFast(posting) === undefined) problem(`${where} (${JSON.stringify(rec.id)}): posting of rotation ${r} missing`);
      }
      for (const side of sideSids(this.#db.sids, key)) {
        const what = `${where}: side SID in model ${side.model}`;
        if (side.model === rec.model) problem(`${what} repeats the record's model`);
        if (levels.get(side.model) !== side.codes.length) problem(`${what} has ${side.codes.length} codes, model has ${levels.get(side.model) ?? 'no'} levels`);
        const sideLen = sidKeyLength(side.codes.length) + U64_BYTES;
        const sidePosting = Buffer.alloc(sideLen);
        key.copy(sidePosting, sideLen - U64_BYTES);
        for (let r = first(side.codes.length); r < side.codes.length; r++) {
          writeSidKey(sidePosting, 0, side.model, r, side.codes);
          expectedPostings++;
          if (this.#db.postings.getBinaryFast(sidePosting) === undefined) problem(`${what}: posting of rotation ${r} missing`);
        }
      }
    }
    this.#verifySlots(nextSlot, usedSlots, dim, problem);
    let sides = 0;
    for (const { key } of this.#db.sids.getRange({})) {
      sides++;
      if (key.length !== U64_BYTES + 2 || this.#db.items.getBinaryFast(key.subarray(0, U64_BYTES)) === undefined) {
        problem(`side SID ${key.toString('hex')}: no such item`);
      }
    }

    // Id mappings without their item (or pointing at another id's item).
    let ids = 0;
    for (const { key: idBytes, value: rawKeyBuf } of this.#db.ids.getRange({})) {
      ids++;
      const keyBuf = Buffer.from(rawKeyBuf);
      const id = idBytes.toString('utf8');
      const value = this.#db.items.getBinaryFast(keyBuf);
      if (value === undefined) {
        problem(`id ${JSON.stringify(id)}: maps to key ${keyBuf.length === U64_BYTES ? readU64BE(keyBuf, 0) : '?'} with no item`);
        continue;
      }
      const rec = readRecord(value, readU64BE(keyBuf, 0));
      if (rec.id !== id) problem(`id ${JSON.stringify(id)}: its item carries id ${JSON.stringify(rec.id)}`);
    }
    if (ids !== items) problem(`${ids} id mappings for ${items} items`);

    // Postings without their item, or disagreeing with the item's SID; items per SID from the natural rotation.
    let postings = 0;
    const perSid = new Map<string, number>();
    for (const rawK of this.#db.postings.getKeys({})) {
      postings++;
      const k = Buffer.from(rawK);
      const model = (k[0]! << 8) | k[1]!;
      const L = levels.get(model);
      if (L === undefined || k.length !== sidKeyLength(L) + U64_BYTES) {
        problem(`posting ${k.toString('hex')}: ${k.length} bytes, model ${model} has ${L ?? 'no'} levels`);
        continue;
      }
      let sid;
      try {
        sid = decodeSidKey(k, L);
      } catch (err) {
        problem(`posting ${k.toString('hex')}: ${(err as Error).message}`);
        continue;
      }
      if (sid.rotation === L - 1) {
        const name = k.toString('latin1', 0, 2) + k.toString('latin1', 3, sidKeyLength(L));
        perSid.set(name, (perSid.get(name) ?? 0) + 1);
      }
      const itemKey = k.subarray(k.length - U64_BYTES);
      const value = this.#db.items.getBinaryFast(itemKey);
      if (value === undefined) {
        problem(`posting ${sid.codes.join('-')} (rotation ${sid.rotation}) -> key ${readU64BE(itemKey, 0)}: no such item`);
        continue;
      }
      const own = readRecordSid(value);
      const side = own.model === model ? undefined : getSideSid(this.#db.sids, itemKey, model);
      if (side !== undefined ? !sameCodes(side, sid.codes) : own.model !== model || !sameCodes(own.codes, sid.codes)) {
        problem(`posting ${sid.codes.join('-')} (rotation ${sid.rotation}) -> key ${readU64BE(itemKey, 0)}: the item's SID is ${own.codes.join('-')}`);
      }
    }
    if (postings !== expectedPostings) problem(`${postings} postings, the items need ${expectedPostings}`);
    if (schema?.readUInt32BE(0) === CATALOG_SCHEMA_VERSION) this.#verifySidLog(perSid, levels, problem);

    // Change log: packs of consecutive changes (change-log.ts), disjoint, none wholly truncated.
    let changes = 0;
    let previous = -1n;
    for (const { key, value } of this.#db.changes.getRange({})) {
      const first = readU64BE(key, 0);
      if (!wellFormedPack(value)) {
        problem(`change ${first}: malformed value ${value.toString('hex')}`);
        continue;
      }
      const last = packLast(key, value);
      if (last <= truncated || last > lastSeq || first <= previous) problem(`changes ${first}..${last}: outside (truncatedSeq ${truncated}, lastSeq ${lastSeq}] or overlapping ${previous}`);
      previous = last;
      for (const c of packChanges(key, value)) {
        if (c.seq > truncated) changes++;
        if (c.key >= nextKey) problem(`change ${c.seq}: key ${c.key} is not below nextKey ${nextKey}`);
      }
    }

    return { ok: problemCount === 0, items, ids, postings, naturalOnly: this.#db.layout.naturalOnly, sides, changes, lastSeq, nextKey, problems, problemCount };
  }

  /**
   * The SID log (sid-log.ts) against the postings: each entry well formed with its model's level count, and no SID
   * whose logged changes since its model's floor add up to more items than its postings hold now.
   */
  #verifySidLog(perSid: Map<string, number>, levels: Map<number, number>, problem: (text: string) => void): void {
    const log = new SidLog(this.#env, this.#db.meta);
    const sums = new Map<string, number>();
    for (const { seq, model, value, problem: bad } of log.entries()) {
      if (bad) {
        problem(bad);
        continue;
      }
      if (value[0] !== levels.get(model)) problem(`sidLog ${seq}/${model}: SIDs of ${value[0]} levels, the model has ${levels.get(model) ?? 'none'}`);
      else if (seq >= log.floor(model)) {
        const head = String.fromCharCode(model >> 8, model & 0xff);
        forEachChange(value, (bytes, at, L, delta) => {
          const name = head + bytes.toString('latin1', at, at + 2 * L);
          sums.set(name, (sums.get(name) ?? 0) + delta);
        });
      }
    }
    for (const [name, sum] of sums) {
      const held = perSid.get(name) ?? 0;
      if (held - sum < 0) problem(`sidLog: SID ${Buffer.from(name, 'latin1').toString('hex')} gained ${sum} items since the log's floor, the postings hold ${held}`);
    }
  }

  async close(): Promise<void> {
    await this.#env.close();
  }
}

/** Opens `dir` read-only, verifies it, closes it. */
export async function verifyCatalog(dir: string, opts: { maxProblems?: number } = {}): Promise<CatalogVerifyReport> {
  const inspector = CatalogInspector.open(dir);
  try {
    return inspector.verify(opts);
  } finally {
    await inspector.close();
  }
}
