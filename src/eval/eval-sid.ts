/**
 * The SID rows of `sidx eval` for one expansion, in one batched pass over the queries (SidxService.retrieveEach,
 * which answers each query as SidxService.retrieve does): the row without rerank and the row with it (k = the
 * largest K, maxCandidates = the budget), and, for the budget sweep, the ordered candidate list at the largest
 * budget (rerank off, k = that budget), whose prefixes are reranked here (SubsetRanker) for each smaller budget.
 */
import type { SidxService } from '../service/sidx-service.ts';
import type { ItemDirectory } from '../service/item-directory.ts';
import type { BatchVariant } from '../service/retrieve-batch.ts';
import type { ExpandMode } from '../service/types.ts';
import type { SubsetRanker } from './eval-faiss.ts';
import { RankAccumulator, type EvalRow } from './eval-metrics.ts';

export interface SidPassInput {
  /** q × dim query embeddings and their targets. */
  vectors: Float32Array;
  targets: Int32Array;
  dim: number;
  /** Catalog size (items have ids "0" .. String(n - 1)). */
  n: number;
  ks: readonly number[];
  /** maxCandidates of the two rows. */
  budgetN: number;
  /** Budgets of the sweep, ascending; none: no sweep. */
  budgets?: readonly number[];
  ranker: SubsetRanker;
}

export interface SidPassResult {
  plain: EvalRow;
  reranked: EvalRow;
  /** The reranked row at each sweep budget. */
  sweep?: EvalRow[];
}

export const SID_METHODS: { method: string; expand: ExpandMode; rerank: boolean }[] = [
  { method: 'sid', expand: 'none', rerank: false },
  { method: 'sid+rerank', expand: 'none', rerank: true },
  { method: 'sid+hamming1', expand: 'hamming1', rerank: false },
  { method: 'sid+hamming1+rerank', expand: 'hamming1', rerank: true },
  { method: 'sid+beam', expand: 'beam', rerank: false },
  { method: 'sid+beam+rerank', expand: 'beam', rerank: true },
];

/** `opts.onQuery(answered)`: after each query is scored, with the count so far (progress; called per query, keep it cheap). */
export async function sidPass(service: SidxService, input: SidPassInput,
  opts: { expand: ExpandMode; beamWidth?: number; onQuery?: (answered: number) => void }): Promise<SidPassResult> {
  const { ks, budgetN, budgets, dim } = input;
  const kMax = Math.max(...ks);
  const method = (rerank: boolean) => SID_METHODS.find((sm) => sm.expand === opts.expand && sm.rerank === rerank)!.method;
  const variants: BatchVariant[] = [{ k: kMax, maxCandidates: budgetN, rerank: false }, { k: kMax, maxCandidates: budgetN, rerank: true }];
  const maxBudget = budgets?.[budgets.length - 1];
  if (maxBudget !== undefined) variants.push({ k: maxBudget, maxCandidates: maxBudget, rerank: false });
  const plain = new RankAccumulator(ks);
  const reranked = new RankAccumulator(ks);
  const sweep = budgets?.map(() => new RankAccumulator(ks));
  let itemOf = new Int32Array(0);
  let mapped: ItemDirectory | undefined;
  const itemsOf = (rows: Int32Array) => rows.map((r) => itemOf[r]!);
  let answered = 0;
  await service.retrieveEach({ embeddings: input.vectors, n: input.targets.length, expand: opts.expand, beamWidth: opts.beamWidth, variants },
    (q, hits, directory) => {
      if (mapped !== directory) {
        itemOf = Int32Array.from(directory.ids, Number);
        mapped = directory;
      }
      const target = input.targets[q]!;
      plain.add(itemsOf(hits[0]!.rows), target, hits[0]!.candidates.total);
      reranked.add(itemsOf(hits[1]!.rows), target, hits[1]!.candidates.total);
      if (sweep) {
        const list = itemsOf(hits[2]!.rows);
        const tops = input.ranker.topOfPrefixes(input.vectors.subarray(q * dim, (q + 1) * dim), list, budgets!, kMax);
        tops.forEach((ranked, j) => sweep[j]!.add(ranked, target, Math.min(budgets![j]!, list.length)));
      }
      opts.onQuery?.(++answered);
    });
  return { plain: plain.row(method(false), input.n), reranked: reranked.row(method(true), input.n), sweep: sweep?.map((acc) => acc.row(method(true), input.n)) };
}
