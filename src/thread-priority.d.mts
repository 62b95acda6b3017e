/**
 * Adds `nice` (> 0) to the calling thread's niceness (Linux), at most 19. Returns the niceness now in effect, or null
 * where it was not changed (`nice` 0, not Linux, not permitted).
 */
export function lowerThreadPriority(nice: number): number | null;
