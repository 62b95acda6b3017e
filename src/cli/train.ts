/** `sidx train`: trains a tokenizer on an embedding file and writes the model bundle. */
import { existsSync, statSync } from 'node:fs';
import { basename, resolve } from 'node:path';
import { readEmbeddings, type Embeddings } from '../io/embeddings.ts';
import { sampleEmbeddings } from '../io/reservoir.ts';
import { DEFAULT_SINKHORN_EPSILON, DEFAULT_SINKHORN_ITERATIONS } from '../numeric/sinkhorn.ts';
import { exportRqKmeansBundle, fileSha256, DEFAULT_TOP_M } from '../train/export.ts';
import { formatMetricsTable, sidQualityMetrics } from '../train/metrics.ts';
import { formatHealth, sidHealth } from '../train/health.ts';
import {
  DEFAULT_BALANCED_ROUNDS, DEFAULT_KMEANS_ITERATIONS, trainRqKmeans, type Normalize, type RqKmeansProgress,
} from '../train/rqkmeans.ts';
import { setVectorThreads } from '../vector/vector-index.ts';
import { intFlag, parseFlags, UsageError } from './args.ts';
import { formatSeconds, ProgressLine } from './progress.ts';
import { trainVaeCommand, vaeMethodOf } from './train-vae.ts';

export const trainUsage = `Usage: sidx train --method rqkmeans --input FILE --levels L --codebook-size K|K1,K2,.. --out DIR
                  [--sample N] [--iters N] [--seed S] [--normalize l2|none] [--top-m M] [--id ID]
                  [--balanced [--balanced-rounds R] [--sinkhorn-eps E] [--sinkhorn-iters T]]
                  [--threads N] [--array NAME]

Trains residual k-means (RQ-KMeans) level by level with FAISS and writes DIR/model.json + DIR/encoder.onnx + DIR/beam.onnx.

  --method           rqkmeans; rqvae and vqvae take their own flags (sidx train --method rqvae --help)
  --input            embeddings: .npy, .npz (FORGE 'embeds' or --array NAME), AL-GR .csv / .csv.gz
  --levels           number of levels (optional when --codebook-size lists one size per level)
  --codebook-size    codes per level: one size for every level, or a comma-separated list
  --out              bundle directory (created; an existing bundle there is replaced)
  --sample           rows used to fit the codebooks, drawn with the seed (default: all rows); all rows are encoded,
                     except AL-GR CSV input, which is streamed into a sample of this size (any file size)
  --iters            FAISS k-means iterations per level (default ${DEFAULT_KMEANS_ITERATIONS})
  --seed             seed of the sample and of FAISS's initialisation (default 0); same seed, data and
                     --threads give the same model
  --normalize        l2: unit-normalise rows before training (the encoder does the same); none (default)
  --top-m            top-M codes per level reported by the encoder (default ${DEFAULT_TOP_M})
  --id               model id (default: the name of --out)
  --balanced         Sinkhorn-balanced codebooks (FORGE): after k-means, R Lloyd rounds whose assignment is
                     balanced by Sinkhorn; codes and inference stay nearest-codeword
  --balanced-rounds  R (default ${DEFAULT_BALANCED_ROUNDS})
  --sinkhorn-eps     inverse temperature on the z-scored distances, Q = exp(-eps D) (default ${DEFAULT_SINKHORN_EPSILON});
                     smaller = more uniform, larger = closer to nearest-codeword
  --sinkhorn-iters   row/column normalisation rounds (default ${DEFAULT_SINKHORN_ITERATIONS})
  --threads          FAISS/ORT threads (default: all cores)
  --array            .npz member holding the vectors`;

const METHODS = ['rqkmeans', 'rqvae', 'vqvae'];
const MODEL_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** A command line as a shell would need it typed: arguments with special characters in single quotes. */
export function shellQuote(args: readonly string[]): string {
  return args.map((a) => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`)).join(' ');
}

/** "256" with levels 3 -> [256, 256, 256]; "512,256,256" -> that list (levels, if given, must agree). */
/** Refuses, before any training, an --out that exists and is not a directory (the bundle could not be written there). */
export function checkOutDir(out: string): void {
  if (existsSync(out) && !statSync(out).isDirectory()) throw new UsageError(`--out ${out} is a file: give a directory for the bundle`);
}

export function parseCodebookSizes(text: string | undefined, levels: number | undefined): number[] {
  if (text === undefined) throw new UsageError(`--codebook-size is required\n\n${trainUsage}`);
  const parts = text.split(',').map((p) => p.trim());
  const sizes = parts.map((p) => {
    const k = Number(p);
    if (p === '' || !Number.isInteger(k) || k < 1 || k > 65536) {
      throw new UsageError(`--codebook-size: ${JSON.stringify(p)} is not an integer in 1..65536`);
    }
    return k;
  });
  if (sizes.length === 1) {
    if (levels === undefined) throw new UsageError(`--levels is required with a single --codebook-size\n\n${trainUsage}`);
    if (levels < 1 || levels > 64) throw new UsageError(`--levels must be in 1..64, got ${levels}`);
    return new Array<number>(levels).fill(sizes[0]!);
  }
  if (levels !== undefined && levels !== sizes.length) {
    throw new UsageError(`--levels is ${levels} but --codebook-size lists ${sizes.length} sizes`);
  }
  return sizes;
}

function positive(value: string | undefined, name: string): number | undefined {
  const n = intFlag(value, name);
  if (n !== undefined && n < 1) throw new UsageError(`--${name} must be a positive integer, got ${n}`);
  return n;
}

/**
 * The progress line for an event, or null. FAISS reports a level's k-means iterations together when the level's
 * fit ends, so they become one line (first and last objective) instead of a burst of updates.
 */
function progressText(event: RqKmeansProgress, firstObjective: number): string | null {
  const level = `level ${event.level + 1}`;
  switch (event.kind) {
    case 'level-start':
      return `${level}/${event.levels}: k-means, ${event.codebookSize} codes on ${event.sampleRows} rows`;
    case 'kmeans':
      if (event.iteration !== event.iterations) return null;
      return `${level}: k-means ${event.iterations} iterations, objective ${firstObjective.toPrecision(6)} -> `
        + `${event.objective.toPrecision(6)}`;
    case 'balanced':
      return `${level}: balanced round ${event.round}/${event.rounds}, objective ${event.objective.toPrecision(6)}, `
        + `largest cluster ${event.largestCluster}`;
    default:
      return null;
  }
}

export async function trainCommand(argv: string[]): Promise<number> {
  if (vaeMethodOf(argv) !== null) return trainVaeCommand(argv);
  const { values } = parseFlags(argv, {
    method: { type: 'string' }, input: { type: 'string' }, levels: { type: 'string' },
    'codebook-size': { type: 'string' }, out: { type: 'string' }, sample: { type: 'string' },
    iters: { type: 'string' }, seed: { type: 'string' }, normalize: { type: 'string' },
    balanced: { type: 'boolean' }, 'balanced-rounds': { type: 'string' }, 'sinkhorn-eps': { type: 'string' },
    'sinkhorn-iters': { type: 'string' }, 'top-m': { type: 'string' }, id: { type: 'string' },
    threads: { type: 'string' }, array: { type: 'string' },
  }, trainUsage);
  if (values.help) {
    console.log(trainUsage);
    return 0;
  }
  const method = values.method ?? 'rqkmeans';
  if (!METHODS.includes(method)) throw new UsageError(`unknown --method ${JSON.stringify(method)}; use one of ${METHODS.join(', ')}\n\n${trainUsage}`);
  if (values.input === undefined) throw new UsageError(`--input is required\n\n${trainUsage}`);
  if (values.out === undefined) throw new UsageError(`--out is required\n\n${trainUsage}`);
  checkOutDir(values.out);
  const codebookSizes = parseCodebookSizes(values['codebook-size'], intFlag(values.levels, 'levels'));
  const normalize = (values.normalize ?? 'none') as Normalize;
  if (normalize !== 'l2' && normalize !== 'none') {
    throw new UsageError(`--normalize must be l2 or none, got ${JSON.stringify(values.normalize)}`);
  }
  const seed = intFlag(values.seed, 'seed') ?? 0;
  if (seed < 0 || seed > 2 ** 31 - 65) throw new UsageError(`--seed must be in 0..${2 ** 31 - 65}, got ${seed}`);
  const epsilon = values['sinkhorn-eps'] === undefined ? undefined : Number(values['sinkhorn-eps']);
  if (epsilon !== undefined && !(epsilon > 0 && Number.isFinite(epsilon))) {
    throw new UsageError(`--sinkhorn-eps must be a positive number, got ${JSON.stringify(values['sinkhorn-eps'])}`);
  }
  if (!values.balanced && (values['balanced-rounds'] ?? values['sinkhorn-eps'] ?? values['sinkhorn-iters']) !== undefined) {
    throw new UsageError('--balanced-rounds, --sinkhorn-eps and --sinkhorn-iters need --balanced');
  }
  const sinkhornIterations = positive(values['sinkhorn-iters'], 'sinkhorn-iters');
  const topM = positive(values['top-m'], 'top-m') ?? Math.min(DEFAULT_TOP_M, ...codebookSizes);
  if (topM > Math.min(...codebookSizes)) {
    throw new UsageError(`--top-m ${topM} exceeds the smallest codebook size ${Math.min(...codebookSizes)}`);
  }
  const id = values.id ?? basename(resolve(values.out));
  if (!MODEL_ID.test(id)) {
    throw new UsageError(`model id ${JSON.stringify(id)} must be letters, digits, . _ - (at most 128); pass --id`);
  }
  const threads = intFlag(values.threads, 'threads');
  if (threads !== undefined) {
    if (threads < 1) throw new UsageError(`--threads must be a positive integer, got ${threads}`);
    setVectorThreads(threads);
  }

  const progress = new ProgressLine({ prefix: 'sidx train' });
  const started = performance.now();
  let firstObjective = NaN;
  // With --sample, AL-GR CSV input is streamed into a seeded reservoir: a file of any size trains in
  // sample × dim floats of memory (SID metrics are then measured on the sample).
  const sampleSize = positive(values.sample, 'sample');
  const input: Embeddings & { rows?: number } = sampleSize === undefined
    ? await readEmbeddings(values.input, { array: values.array })
    : await sampleEmbeddings(values.input, sampleSize, seed, { array: values.array });
  const dataDigest = await fileSha256(values.input);
  const sampled = input.rows !== undefined && input.rows > input.n ? `, a seeded sample of ${input.rows} rows` : '';
  progress.log(`read ${input.n} x ${input.dim} from ${values.input}${sampled}${input.skipped ? ` (${input.skipped} bad rows skipped)` : ''}`);

  const result = await trainRqKmeans(input.vectors, input.dim, {
    codebookSizes, normalize, seed,
    sample: sampleSize,
    iterations: positive(values.iters, 'iters'),
    balanced: values.balanced === true,
    balancedRounds: positive(values['balanced-rounds'], 'balanced-rounds'),
    sinkhorn: { epsilon, iterations: sinkhornIterations },
    onProgress: (event) => {
      if (event.kind === 'kmeans' && event.iteration === 1) firstObjective = event.objective;
      const text = progressText(event, firstObjective);
      if (text !== null) progress.update(text);
      if (event.kind === 'level-done') {
        progress.log(`level ${event.level + 1}/${event.levels} done in ${formatSeconds(event.seconds)}: `
          + `objective ${event.objective.toPrecision(6)}, empty clusters ${event.emptyClusters}`);
      }
    },
  });
  const trainSeconds = (performance.now() - started) / 1000;
  progress.done();

  const metrics = sidQualityMetrics(result.codes, result.n, codebookSizes, {
    inputs: result.inputs, reconstructions: result.reconstructions, dim: result.dim,
  });
  const bundle = await exportRqKmeansBundle({
    dir: values.out,
    id,
    model: result,
    topM,
    metrics: { ...metrics },
    training: {
      source: values.input,
      command: `sidx train ${shellQuote(argv)}`,
      seed,
      dataDigest,
      rows: result.n,
      sampleRows: result.sampleRows,
      iterations: values.iters === undefined ? DEFAULT_KMEANS_ITERATIONS : Number(values.iters),
      threads: result.threads,
      balanced: values.balanced === true
        ? {
          rounds: values['balanced-rounds'] === undefined ? DEFAULT_BALANCED_ROUNDS : Number(values['balanced-rounds']),
          epsilon: epsilon ?? DEFAULT_SINKHORN_EPSILON,
          iterations: sinkhornIterations ?? DEFAULT_SINKHORN_ITERATIONS,
        }
        : false,
      emptyClusters: result.levels.map((l) => l.emptyClusters),
    },
  });
  console.log(formatMetricsTable(metrics, id));
  const health = sidHealth(metrics, { method: 'rqkmeans', balanced: values.balanced === true });
  for (const line of formatHealth(health, 'sidx train: warning: ')) console.error(line);
  console.error(`sidx train: wrote ${bundle.dir} (model ${id}, sha256 ${bundle.sha256.slice(0, 12)}) in ${formatSeconds(trainSeconds)}`);
  return 0;
}
