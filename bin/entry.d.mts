/** Newest modification time (ms) of the files under `dir`, recursively; 0 for none. */
export function newestMtime(dir: string): number;
/** 'bundle' when `root`/dist/sidx.mjs exists and is newer than everything under `root`/src, else 'source'. */
export function chooseEntry(root: string, env?: Record<string, string | undefined>): 'bundle' | 'source';
