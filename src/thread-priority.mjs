// The CPU priority of one thread (plain JavaScript, so the encoder worker, which runs without a TypeScript loader,
// can use it too). On Linux each thread has a niceness of its own (setpriority on its thread id); sidx's helper
// threads raise theirs, so that on busy cores the event loop, which every request passes through several times,
// runs first. Raising is always allowed; lowering it again needs privilege.
import { readlinkSync } from 'node:fs';
import { getPriority, setPriority } from 'node:os';

/**
 * Adds `nice` (> 0) to the calling thread's niceness, at most 19. Returns the niceness now in effect, or null where
 * it was not changed (`nice` 0, not Linux, not permitted).
 */
export function lowerThreadPriority(nice) {
  if (!(Number.isSafeInteger(nice) && nice > 0)) return null;
  try {
    const tid = Number(readlinkSync('/proc/thread-self').split('/').pop());
    if (!Number.isSafeInteger(tid) || tid <= 0) return null;
    setPriority(tid, Math.min(19, getPriority(tid) + nice));
    return getPriority(tid);
  } catch {
    return null;
  }
}
