/**
 * The fold thread's body (posting-fold-thread.ts): one message = one fold (posting-fold.ts). The folded run's rows
 * are on SharedArrayBuffers (shared back, not copied); its rotated orders and directory are transferred.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { parentPort } from 'node:worker_threads';
import { lowerThreadPriority } from '../thread-priority.mjs';
import { foldRuns, type FoldInput } from './posting-fold.ts';

/** Below the event loop's priority (Linux): requests come first on a busy host. */
lowerThreadPriority(10);

/**
 * A full collection of this thread's small heap after each fold: the runs it read stay allocated while any thread
 * holds them, and an idle thread would not collect them by itself (at 1M items, about 130 MiB more RSS after an
 * ingest without it).
 */
setFlagsFromString('--expose-gc');
const collect = runInNewContext('gc') as () => void;

parentPort!.on('message', ({ id, input }: { id: number; input: FoldInput }) => {
  try {
    const { main, dir } = foldRuns({ ...input, shared: true });
    const rot = main.rot ?? [];
    const transfer = [...rot.map((r) => r.buffer), ...(dir ? [dir.starts.buffer] : [])] as ArrayBuffer[];
    parentPort!.postMessage({ id, ok: true, main: { count: main.count, codes: main.codes, keys: main.keys, rot }, dir }, transfer);
  } catch (err) {
    parentPort!.postMessage({ id, ok: false, message: err instanceof Error ? err.message : String(err) });
  }
  setImmediate(collect); // once this message's references are gone
});
