/**
 * The drop thread's body (space-drop-thread.ts): its own handles on the catalog's LMDB environment (lmdb-js shares
 * one environment between the threads of a process, and each commit is visible to the others' next read). One
 * message = one drop batch in one synced write transaction: the keys after the cursor, dropSpaceTxn, and the SID
 * count changes of the dropped key space (quiet: not logged, its delta floor moved), which the main thread publishes
 * to its tries.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { lowerThreadPriority } from '../thread-priority.mjs';
import { MAX_LEVELS, sidKeyLength } from '../sid/codec.ts';
import { META_LAST_SEQ, openCatalogDbs, openCatalogEnv, readMetaU64 } from './catalog-meta.ts';
import { dropSpaceTxn, keysAfterIn, type DropRequest } from './catalog-spaces.ts';
import { U64_BYTES } from './keys.ts';
import { PostingJournal } from './posting-journal.ts';
import { flushQuietTally, SidTally } from './sid-occupancy.ts';
import { SidLog } from './sid-log.ts';

const { dir, mapSizeBytes, nice } = workerData as { dir: string; mapSizeBytes?: number; nice: number };

// A background job: on Linux this thread alone gets a lower CPU priority, so requests' threads run first when the
// cores are busy. Elsewhere, or when not allowed, it keeps the process's.
lowerThreadPriority(nice);
const env = openCatalogEnv(dir, mapSizeBytes);
// No journal watcher: the posting index untracks a key space before a re-index drops it.
const dbs = { ...openCatalogDbs(env), tally: new SidTally(), journal: new PostingJournal() };
const log = new SidLog(env, dbs.meta);
const scratch = Buffer.alloc(sidKeyLength(MAX_LEVELS) + U64_BYTES);

function dropBatch(req: DropRequest) {
  const tally = dbs.tally;
  try {
    return env.transactionSync(() => {
      const keys = keysAfterIn(dbs.items, req.after, req.limit);
      if (keys.length === 0) return null;
      tally.quiet(req.drop);
      const res = dropSpaceTxn(dbs, req.drop, req.keep, keys, scratch);
      const changes = flushQuietTally(log, tally, readMetaU64(dbs.meta, META_LAST_SEQ));
      return { ...res, last: keys[keys.length - 1]!, n: keys.length, changes };
    });
  } finally {
    tally.reset();
  }
}

parentPort!.on('message', (msg: { id: number; req: DropRequest } | 'close') => {
  if (msg === 'close') {
    void env.close().then(() => parentPort!.close());
    return;
  }
  try {
    parentPort!.postMessage({ id: msg.id, ok: true, result: dropBatch(msg.req) });
  } catch (err) {
    const e = err as Error & { code?: string };
    parentPort!.postMessage({ id: msg.id, ok: false, message: e.message, code: e.code });
  }
});
parentPort!.postMessage({ ready: true });
