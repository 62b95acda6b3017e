/**
 * Ranking metrics of `sidx eval` with one held-out target per query: Recall@K (the target is in the top K) and
 * NDCG@K (1 / log2(rank + 1) for a hit at 1-based rank <= K, else 0; the ideal DCG of a single target is 1).
 * A query whose method produced no candidates counts as a miss at every K (never replaced by a full search).
 */

/** One row of report.json (the shape issue 6 specifies). */
export interface EvalRow {
  method: string;
  /** Recall@K keyed by K ("10", "20", ...). */
  recall: Record<string, number>;
  ndcg: Record<string, number>;
  /** Mean number of catalog items the method examined (and, with rerank, scored) per query. */
  meanCandidates: number;
  /** meanCandidates / catalog size. */
  catalogFraction: number;
  /** Queries for which the method produced no candidate at all (counted as misses). */
  noCandidateQueries: number;
}

export class RankAccumulator {
  readonly ks: readonly number[];
  #hits: Float64Array;
  #gains: Float64Array;
  #queries = 0;
  #candidates = 0;
  #empty = 0;

  constructor(ks: readonly number[]) {
    this.ks = ks;
    this.#hits = new Float64Array(ks.length);
    this.#gains = new Float64Array(ks.length);
  }

  /** Records one query: `ranked` item indices (best first), the target, and how many candidates were examined. */
  add(ranked: ArrayLike<number>, target: number, candidates: number): void {
    this.#queries++;
    this.#candidates += candidates;
    if (candidates === 0) {
      this.#empty++;
      return;
    }
    let rank = -1;
    for (let i = 0; i < ranked.length; i++) {
      if (ranked[i] === target) {
        rank = i + 1;
        break;
      }
    }
    if (rank < 0) return;
    this.ks.forEach((k, j) => {
      if (rank <= k) {
        this.#hits[j]! += 1;
        this.#gains[j]! += 1 / Math.log2(rank + 1);
      }
    });
  }

  get queries(): number {
    return this.#queries;
  }

  row(method: string, catalogSize: number): EvalRow {
    const q = Math.max(1, this.#queries);
    const recall: Record<string, number> = {};
    const ndcg: Record<string, number> = {};
    this.ks.forEach((k, j) => {
      recall[String(k)] = this.#hits[j]! / q;
      ndcg[String(k)] = this.#gains[j]! / q;
    });
    const meanCandidates = this.#candidates / q;
    return { method, recall, ndcg, meanCandidates, catalogFraction: meanCandidates / catalogSize, noCandidateQueries: this.#empty };
  }
}
