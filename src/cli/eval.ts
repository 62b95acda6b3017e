/**
 * `sidx eval`: retrieval quality of a model's SIDs on a data set vs exact search and an equal-work IVF-Flat
 * baseline (src/eval/eval-run.ts). Writes report.json, and beside it report.md (table) and report.svg (plot).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { EVAL_SPLITS, loadEvalDataset, QUERY_PROFILES, type EvalSplit, type QueryProfile } from '../eval/eval-dataset.ts';
import { renderEvalMarkdown, renderEvalSvg } from '../eval/eval-render.ts';
import { DEFAULT_SWEEP, runEval } from '../eval/eval-run.ts';
import { DEFAULT_BEAM_WIDTH, MAX_BEAM_WIDTH } from '../service/types.ts';
import { intFlag, parseFlags, UsageError } from './args.ts';

export const evalUsage = `Usage: sidx eval --dataset DIR --model DIR --out report.json [--profile mean5|last] [--split test|valid] [--k 10,20,50]
                 [--budget 0.02] [--beam-width ${DEFAULT_BEAM_WIDTH}] [--sweep ${DEFAULT_SWEEP.join(',')}]
                 [--embeddings FILE] [--queries N] [--workers N]

Indexes every item of the data set through the service (in process, temporary data directory), then, for each
test row, queries with the mean of the last 5 L2-normalised history embeddings (--profile last: the last one)
and checks the held-out next item. Rows: exact (FAISS Flat), sid, sid+rerank, sid+hamming1, sid+hamming1+rerank,
sid+beam, sid+beam+rerank (when the bundle has beam.onnx), ivf-flat (FAISS IVF-Flat, nprobe matched to the beam's
candidate count). Writes report.json, report.md and report.svg (Recall@K vs candidates scored).

  --dataset      RecBole splits (test.inter.tsv) or JSON sequences (inter.json, leave-one-out) + item embeddings
  --split        the rows evaluated: test (default) or valid (RecBole valid.inter.tsv; JSON sequences: the
                 second-last item, history before it), to choose a model without looking at the test rows
  --embeddings   embedding .npy (relative to --dataset); default: text_emb.npy, sasrec_emb.npy or item_emb.npy
  --k            cut-offs for Recall@K and NDCG@K; the first is the plot's (default 10,20,50)
  --budget       candidate budget of the SID rows as a fraction of the catalog (default 0.02; never below max K)
  --beam-width   prefixes kept per level by expand "beam" (default ${DEFAULT_BEAM_WIDTH})
  --sweep        budget fractions for the curves (default ${DEFAULT_SWEEP.join(',')})
  --queries      only the first N usable test rows (default: all)
  --workers      encoder workers for the batched encoder and beam passes (default: one per core, at most 4)`;

function numberList(value: string | undefined, name: string, fallback: number[], integer: boolean): number[] {
  if (value === undefined) return fallback;
  const list = value.split(',').map((s) => Number(s.trim()));
  if (list.length === 0 || list.some((v) => !Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v)))) {
    throw new UsageError(`--${name} must be a comma-separated list of positive ${integer ? 'integers' : 'numbers'}, got ${JSON.stringify(value)}`);
  }
  return list;
}

export async function evalCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    dataset: { type: 'string' }, model: { type: 'string' }, out: { type: 'string' }, profile: { type: 'string' },
    k: { type: 'string' }, budget: { type: 'string' }, 'beam-width': { type: 'string' }, sweep: { type: 'string' },
    embeddings: { type: 'string' }, split: { type: 'string' }, queries: { type: 'string' }, workers: { type: 'string' },
  }, evalUsage);
  if (values.help) {
    console.log(evalUsage);
    return 0;
  }
  for (const flag of ['dataset', 'model', 'out'] as const) {
    if (values[flag] === undefined) throw new UsageError(`--${flag} is required\n\n${evalUsage}`);
  }
  const profile = (values.profile ?? 'mean5') as QueryProfile;
  if (!QUERY_PROFILES.includes(profile)) throw new UsageError(`--profile must be one of ${QUERY_PROFILES.join(', ')}`);
  const split = (values.split ?? 'test') as EvalSplit;
  if (!EVAL_SPLITS.includes(split)) throw new UsageError(`--split must be one of ${EVAL_SPLITS.join(', ')}`);
  const ks = [...new Set(numberList(values.k, 'k', [10, 20, 50], true))];
  const [budget] = numberList(values.budget, 'budget', [0.02], false);
  if (budget! > 1) throw new UsageError('--budget is a fraction of the catalog, at most 1');
  const sweep = numberList(values.sweep, 'sweep', DEFAULT_SWEEP, false);
  if (sweep.some((f) => f > 1)) throw new UsageError('--sweep values are fractions of the catalog, at most 1');
  const beamWidth = intFlag(values['beam-width'], 'beam-width');
  if (beamWidth !== undefined && (beamWidth < 1 || beamWidth > MAX_BEAM_WIDTH)) {
    throw new UsageError(`--beam-width must be in [1, ${MAX_BEAM_WIDTH}]`);
  }
  const maxQueries = intFlag(values.queries, 'queries');
  const workers = intFlag(values.workers, 'workers');
  if ((maxQueries !== undefined && maxQueries < 1) || (workers !== undefined && workers < 1)) throw new UsageError('--queries and --workers must be >= 1');

  const dataset = await loadEvalDataset(values.dataset!, { embeddings: values.embeddings, split });
  const report = await runEval({
    dataset, modelDir: values.model!, profile, ks, budget: budget!, beamWidth, sweep, maxQueries, workers,
    log: (msg) => console.error(`sidx eval: ${msg}`),
  });
  const out = resolve(values.out!);
  await mkdir(dirname(out), { recursive: true });
  const base = out.replace(/\.json$/i, '');
  await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
  const markdown = renderEvalMarkdown(report);
  await writeFile(`${base}.md`, markdown);
  await writeFile(`${base}.svg`, renderEvalSvg(report));
  console.log(markdown);
  console.error(`sidx eval: wrote ${out}, ${base}.md, ${base}.svg`);
  return 0;
}
