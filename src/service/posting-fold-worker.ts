/**
 * The fold thread's body (posting-fold-thread.ts): one message = one fold (posting-fold.ts). The folded run's rows
 * are on SharedArrayBuffers (shared back, not copied); its rotated orders and directory are transferred.
 */
import { parentPort } from 'node:worker_threads';
import { lowerThreadPriority } from '../thread-priority.mjs';
import { foldRuns, type FoldInput } from './posting-fold.ts';

/** Below the event loop's priority (Linux): requests come first on a busy host. */
lowerThreadPriority(10);

parentPort!.on('message', ({ id, input }: { id: number; input: FoldInput }) => {
  try {
    const { main, dir } = foldRuns({ ...input, shared: true });
    const rot = main.rot ?? [];
    const transfer = [...rot.map((r) => r.buffer), ...(dir ? [dir.starts.buffer] : [])] as ArrayBuffer[];
    parentPort!.postMessage({ id, ok: true, main: { count: main.count, codes: main.codes, keys: main.keys, rot }, dir }, transfer);
  } catch (err) {
    parentPort!.postMessage({ id, ok: false, message: err instanceof Error ? err.message : String(err) });
  }
});
