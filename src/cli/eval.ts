/**
 * `sidx eval`: retrieval quality of a model's SIDs on a data set vs exact search and an equal-work IVF-Flat
 * baseline (src/eval/eval-run.ts). Writes report.json, and beside it report.md (table) and report.svg (plot);
 * prints the table on stdout. On stderr: a line per finished row, and while a phase runs, a progress line
 * (EvalProgressLine).
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { EVAL_SPLITS, loadEvalDataset, QUERY_PROFILES, type EvalSplit, type QueryProfile } from '../eval/eval-dataset.ts';
import { renderEvalMarkdown, renderEvalSvg } from '../eval/eval-render.ts';
import { DEFAULT_SWEEP, runEval, type EvalProgress } from '../eval/eval-run.ts';
import { DEFAULT_BEAM_WIDTH, MAX_BEAM_WIDTH } from '../service/types.ts';
import { intFlag, parseFlags, UsageError } from './args.ts';
import { formatSeconds, ProgressLine, type ProgressOptions } from './progress.ts';

export const evalUsage = `Usage: sidx eval --dataset DIR --model DIR --out report.json [--profile mean5|last] [--split test|valid] [--k 10,20,50]
                 [--budget 0.02] [--beam-width ${DEFAULT_BEAM_WIDTH}] [--sweep ${DEFAULT_SWEEP.join(',')}]
                 [--embeddings FILE] [--queries N] [--workers N]

Indexes every item of the data set through the service (in process, temporary data directory), then, for each
test row, queries with the mean of the last 5 L2-normalised history embeddings (--profile last: the last one)
and checks the held-out next item. Rows: exact (FAISS Flat), sid, sid+rerank, sid+hamming1, sid+hamming1+rerank,
sid+beam, sid+beam+rerank (when the bundle has beam.onnx), ivf-flat (FAISS IVF-Flat, nprobe matched to the beam's
candidate count). Writes report.json, report.md and report.svg (Recall@K vs candidates scored), and prints the
table. Stderr gets a line per finished row and, while a phase runs, where it stands (on a terminal one line
redrawn in place; in a log or pipe a line when nothing was written for 5 s), e.g. "sid+beam w=32: 1,280 / 24,772
queries (3.1 s)".

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

/** In a log (no TTY) a progress line only after this long without output: the row lines carry the history. */
const QUIET_LINE_MS = 5000;
/** How often a running phase's line is drawn again (its elapsed time; a log's heartbeat). */
const TICK_MS = 1000;

/**
 * The progress of `sidx eval` on stderr (src/cli/progress.ts): runEval's `progress` calls as "PHASE: DONE / TOTAL
 * UNIT (elapsed)" and its `log` lines as permanent lines, which also end the running phase's line (its result is
 * in: a terminal then shows no stale progress line, and the timer draws nothing until the next phase); its `warn`
 * lines (warnings, notes) are printed above the progress line, which goes on.
 */
class EvalProgressLine {
  #line: ProgressLine;
  #now: () => number;
  #opened: number;
  #timer: ReturnType<typeof setInterval>;
  #active = false;
  #phase = '';
  #started = 0;
  #done = 0;
  #total = 0;
  #unit = '';

  constructor(options: ProgressOptions) {
    this.#line = new ProgressLine({ prefix: 'sidx eval', quietLineMs: QUIET_LINE_MS, ...options });
    this.#now = options.now ?? (() => performance.now());
    this.#opened = this.#now();
    this.#timer = setInterval(() => this.#show(), TICK_MS).unref();
  }

  readonly progress: EvalProgress = (phase, done, total, unit) => {
    if (phase !== this.#phase) {
      this.#phase = phase;
      this.#started = this.#now();
    }
    this.#active = true;
    this.#done = done;
    this.#total = total;
    this.#unit = unit;
    this.#show();
  };

  readonly log = (msg: string): void => {
    this.#active = false;
    this.#line.done(msg); // as `log`, and the progress line is over (on a terminal: replaced by msg)
  };

  /** A warning or note: printed above the progress line, which goes on. */
  readonly warn = (msg: string): void => {
    this.#line.log(msg);
  };

  /** Stops the timer; a phase still running (a failure) keeps its last line. */
  close(): void {
    clearInterval(this.#timer);
    this.#active = false;
    this.#line.done();
  }

  #show(): void {
    if (!this.#active) return;
    const now = this.#now();
    // A log's first line too waits for QUIET_LINE_MS (ProgressLine writes a first update at once).
    if (!this.#line.tty && now - this.#opened < QUIET_LINE_MS) return;
    const elapsed = formatSeconds((now - this.#started) / 1000);
    const count = (x: number) => x.toLocaleString('en-US');
    this.#line.update(this.#total > 0
      ? `${this.#phase}: ${count(this.#done)} / ${count(this.#total)} ${this.#unit} (${elapsed})`
      : `${this.#phase} (${elapsed})`);
  }
}

/** `progress`: the progress line's stream, TTY mode, clock or throttle (tests); default: stderr as it is. */
export async function evalCommand(argv: string[], io: { progress?: ProgressOptions } = {}): Promise<number> {
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

  const progress = new EvalProgressLine(io.progress ?? {});
  try {
    progress.progress(`reading ${values.dataset}`, 0, 0, '');
    const dataset = await loadEvalDataset(values.dataset!, { embeddings: values.embeddings, split });
    const report = await runEval({
      dataset, modelDir: values.model!, profile, ks, budget: budget!, beamWidth, sweep, maxQueries, workers,
      log: progress.log, warn: progress.warn, progress: progress.progress,
    });
    const out = resolve(values.out!);
    await mkdir(dirname(out), { recursive: true });
    const base = out.replace(/\.json$/i, '');
    await writeFile(out, `${JSON.stringify(report, null, 2)}\n`);
    const markdown = renderEvalMarkdown(report);
    await writeFile(`${base}.md`, markdown);
    await writeFile(`${base}.svg`, renderEvalSvg(report));
    console.log(markdown);
    progress.log(`wrote ${out}, ${base}.md, ${base}.svg`);
    return 0;
  } finally {
    progress.close();
  }
}
