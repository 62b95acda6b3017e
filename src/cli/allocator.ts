/**
 * The C allocator of a long-running sidx process (`sidx serve`, `sidx index`). glibc gives each thread that contends
 * for memory an arena of its own (up to 8 per core) and, after a large block is freed, raises its mmap threshold so
 * later blocks of that size come from those arenas and are not given back: with encoder workers, libuv's pool and
 * ORT threads, and a 2 MB buffer per ingest batch, that holds on to memory the process no longer uses. Two arenas and
 * a fixed 128 KiB threshold cut the resident memory the ingest of 100,000 items leaves behind by about 70 MiB
 * (docs/benchmarks.md, "Allocator"). MALLOC_ARENA_MAX or MALLOC_MMAP_THRESHOLD_ set in the environment win.
 */
import { loadFaissBinding } from '../vector/binding.ts';

export const ARENA_MAX = 2;
export const MMAP_THRESHOLD = 128 * 1024;

/** The settings to apply given the environment (0: leave that one to glibc's own reading of the environment). */
export function allocatorSettings(env: NodeJS.ProcessEnv): { arenaMax: number; mmapThreshold: number } {
  return {
    arenaMax: env.MALLOC_ARENA_MAX === undefined ? ARENA_MAX : 0,
    mmapThreshold: env.MALLOC_MMAP_THRESHOLD_ === undefined ? MMAP_THRESHOLD : 0,
  };
}

/**
 * Applies allocatorSettings(process.env) to this process, before its threads start; returns whether the C library
 * took them (false, too, when the native addon cannot load: the process runs with glibc's defaults then).
 */
export function tuneAllocator(env: NodeJS.ProcessEnv = process.env): boolean {
  const { arenaMax, mmapThreshold } = allocatorSettings(env);
  try {
    return loadFaissBinding().tuneAllocator(arenaMax, mmapThreshold);
  } catch {
    return false;
  }
}
