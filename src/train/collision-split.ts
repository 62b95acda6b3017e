/**
 * Collision-aware last level (`maxItemsPerSid`): after training, splits SIDs that hold more than C items by
 * moving last-level codewords, so that the exported encoder (plain argmin) separates them by itself.
 *
 * Each round encodes every row with the bundle's encoder graph and, for every SID over the cap, relocates one
 * codeword of the last level onto the last-level residual of one of its items (the item farthest from the SID's
 * current codeword): that item's nearest codeword is then at distance 0. The codeword taken is the least-used one
 * not relocated yet (its few items fall back to their next-nearest codeword; the residuals of the other levels do
 * not change, since only the last codebook moves). Rounds stop when no SID is over the cap, or when `maxMoves`
 * codewords (default K / 8) have moved. The decoder is not retrained: the moved items' reconstructions use the new
 * codewords.
 */
import { SidCounter } from '../sid/collisions.ts';
import type { TrainedModel } from './rqvae-export-graphs.ts';
import { paramView } from './rqvae-model.ts';
import { encodeAll, latentsOf } from './rqvae-runtime.ts';

export interface SplitResult {
  codes: Int32Array;
  /** Codewords moved, and rounds run. */
  moved: number;
  rounds: number;
  /** Largest SID load after the last round. */
  maxItemsPerSid: number;
}

/** SID id of every row (n x L codes) and the load of each SID. */
function groups(codes: Int32Array, n: number, levels: number): { ids: Int32Array; counts: Int32Array } {
  const sids = new SidCounter(levels, n);
  const ids = new Int32Array(n);
  for (let i = 0; i < n; i++) ids[i] = sids.add(codes, i * levels);
  return { ids, counts: sids.counts() };
}

export async function splitCollisions(model: TrainedModel, inputs: Float32Array, cap: number,
  options: { threads?: number; maxMoves?: number } = {}): Promise<SplitResult> {
  const { shape, layout, params } = model;
  const levels = shape.codebookSizes.length;
  const last = levels - 1;
  const k = shape.codebookSizes[last]!;
  const h = shape.latentDim;
  const n = inputs.length / shape.inputDim;
  const maxMoves = options.maxMoves ?? Math.max(1, Math.floor(k / 8));
  const books = layout.codebooks.map((name) => paramView(params, layout.byName.get(name)!));
  let codes = await encodeAll(model, inputs, options.threads);
  // Last-level residuals: z minus the codewords of the levels before (those codes never change here).
  const residuals = await latentsOf(model, inputs, options.threads);
  for (let i = 0; i < n; i++) {
    for (let l = 0; l < last; l++) {
      const c = codes[i * levels + l]!;
      for (let j = 0; j < h; j++) residuals[i * h + j]! -= books[l]![c * h + j]!;
    }
  }
  const moved = new Uint8Array(k);
  let moves = 0;
  let rounds = 0;
  for (;;) {
    const { ids, counts } = groups(codes, n, levels);
    let worst = 0;
    for (let s = 0; s < counts.length; s++) if (counts[s]! > worst) worst = counts[s]!;
    if (worst <= cap || moves >= maxMoves) return { codes, moved: moves, rounds, maxItemsPerSid: worst };
    rounds++;
    const usage = new Int32Array(k);
    for (let i = 0; i < n; i++) usage[codes[i * levels + last]!]!++;
    // Per over-cap SID: its member farthest from its current last-level codeword.
    const far = new Int32Array(counts.length).fill(-1);
    const farDist = new Float64Array(counts.length);
    const book = books[last]!;
    for (let i = 0; i < n; i++) {
      const s = ids[i]!;
      if (counts[s]! <= cap) continue;
      const c = codes[i * levels + last]!;
      let d = 0;
      for (let j = 0; j < h; j++) {
        const e = residuals[i * h + j]! - book[c * h + j]!;
        d += e * e;
      }
      if (far[s] === -1 || d > farDist[s]!) {
        far[s] = i;
        farDist[s] = d;
      }
    }
    for (let s = 0; s < counts.length && moves < maxMoves; s++) {
      const item = far[s]!;
      if (item < 0) continue;
      let victim = -1;
      for (let c = 0; c < k; c++) if (moved[c] === 0 && (victim < 0 || usage[c]! < usage[victim]!)) victim = c;
      if (victim < 0) return { codes, moved: moves, rounds, maxItemsPerSid: worst };
      book.set(residuals.subarray(item * h, (item + 1) * h), victim * h);
      moved[victim] = 1;
      moves++;
    }
    codes = await encodeAll(model, inputs, options.threads);
  }
}
