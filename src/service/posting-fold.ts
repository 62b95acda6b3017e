/**
 * A fold of the live posting index (posting-index.ts): its main run without the rows marked dead, merged with its
 * delta, with the new run's rotated orders and prefix directory. Pure work over typed arrays, run in place for a
 * small index and on the fold thread (posting-fold-thread.ts) for a large one, where it would hold the event loop
 * for a time that grows with the catalog.
 */
import { directoryOf, type Directory } from './posting-directory.ts';
import { mergeRuns, runOf, withRotations, type Run } from './posting-runs.ts';

/** A run's rows as the fold thread receives them (`words` is rebuilt from `keys`). */
export interface RunRows {
  count: number;
  codes: Uint16Array;
  keys: BigInt64Array;
}

export interface FoldInput {
  levels: number;
  main: RunRows;
  /** main's dead-row bits (a copy when it goes to the fold thread), null when none is dead. */
  dead: Uint8Array | null;
  delta: RunRows;
  /** Rows of the result: main's live ones plus delta's. */
  count: number;
  /** The result's rows on SharedArrayBuffers, so that the next fold on the thread reads them without a copy. */
  shared: boolean;
}

export interface Folded {
  main: Run;
  dir: Directory | undefined;
}

/** Whether row `row` is marked in dead-row bits `bits` (one bit per row of a main run). */
export function isDeadRow(bits: Uint8Array, row: number): boolean {
  return (bits[row >> 3]! & (1 << (row & 7))) !== 0;
}

export function foldRuns(f: FoldInput): Folded {
  const dead = f.dead;
  const skip = dead ? (r: number) => isDeadRow(dead, r) : undefined;
  const main = runOf(f.main.count, f.main.codes, f.main.keys);
  const delta = runOf(f.delta.count, f.delta.codes, f.delta.keys);
  const folded = withRotations(mergeRuns(main, skip, delta, f.levels, f.count, f.shared), f.levels);
  return { main: folded, dir: directoryOf(folded, f.levels) };
}

export function rowsOf(run: Run): RunRows {
  return { count: run.count, codes: run.codes, keys: run.keys };
}
