/**
 * `sidx metrics`: SID quality metrics of one or more tokenizations, side by side.
 *   --model DIR --input FILE   encode FILE with the bundle (pairs in order; --model and --input may repeat)
 *   --sids FILE                SIDs given as data: LETTER's `{item: ["<a_1>", ...]}` JSON (repeatable)
 * Prints one Markdown table (a column per tokenization) and, with --json FILE, writes the metrics as JSON.
 * Reconstruction error is reported for every bundle that can decode its SIDs: RQ-VAE / VQ-VAE through decoder.onnx,
 * RQ-KMeans as the sum of its codewords (read back from encoder.onnx). The error is relative to the input as the
 * model sees it, i.e. L2-normalised when the bundle normalises.
 */
import { writeFile } from 'node:fs/promises';
import { basename } from 'node:path';
import { readEmbeddings } from '../io/embeddings.ts';
import { readLetterSids } from '../train/letter-sids.ts';
import { compareMetricsTable, sidQualityMetrics, type SidMetrics } from '../train/metrics.ts';
import { healthContextOf, sidHealth } from '../train/health.ts';
import { l2NormalizeRows } from '../train/rqkmeans.ts';
import { canDecode, decodeSids } from '../train/sid-decoder.ts';
import { loadBundle } from '../tokenizer/bundle.ts';
import { EncoderPool } from '../tokenizer/encoder-pool.ts';
import { intFlag, parseFlags, UsageError } from './args.ts';

export const metricsUsage = `Usage: sidx metrics [--model DIR --input FILE]... [--sids FILE]... [--sids-codebook-size K] [--label TEXT]...
                    [--json FILE]

SID quality metrics (per-level utilisation, perplexity, entropy; collision rate; items per SID; Gini;
reconstruction error) of each tokenization, printed as one table with a column each, then a warning line for each
level that uses < 90% of its codes and for a collision rate far above what the codebooks allow (the verdicts
\`sidx train\` prints).

  --model, --input      a model bundle and the embeddings to encode with it (repeat both for more columns)
  --sids                SIDs from a file: LETTER's JSON {"item": ["<a_12>", "<b_7>", ...]} (repeatable)
  --sids-codebook-size  codebook size per level of --sids files (default: largest code seen + 1)
  --array               .npz member holding the vectors
  --label               column titles, one per column (models first, then --sids files); default: the model id,
                        the SID file's name
  --json                also write [{label, metrics, warnings}] to this file`;

export interface LabelledMetrics {
  label: string;
  metrics: SidMetrics;
  /** The health verdicts (src/train/health.ts); empty when healthy. */
  warnings: string[];
}

/** Metrics of the SIDs a bundle gives the embeddings in `input`. */
export async function bundleMetrics(modelDir: string, input: string, array?: string): Promise<LabelledMetrics> {
  const bundle = await loadBundle(modelDir);
  const { manifest } = bundle;
  const data = await readEmbeddings(input, { dim: manifest.inputDim, array });
  const pool = await EncoderPool.create(bundle, { workers: 1, provider: 'cpu' });
  let codes: Int32Array;
  try {
    codes = (await pool.encode(data.vectors, data.n, { codesOnly: true })).codes;
  } finally {
    await pool.close();
  }
  let reconstruction = {};
  if (canDecode(bundle)) {
    const inputs = manifest.normalize === 'l2' ? l2NormalizeRows(data.vectors, data.dim) : data.vectors;
    reconstruction = { inputs, reconstructions: (await decodeSids(bundle, codes, data.n)).vectors, dim: data.dim };
  }
  const metrics = sidQualityMetrics(codes, data.n, manifest.codebookSizes, reconstruction);
  return { label: manifest.id, metrics, warnings: sidHealth(metrics, healthContextOf(manifest)).map((w) => w.message) };
}

export async function metricsCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    model: { type: 'string', multiple: true }, input: { type: 'string', multiple: true },
    sids: { type: 'string', multiple: true }, 'sids-codebook-size': { type: 'string' }, array: { type: 'string' },
    label: { type: 'string', multiple: true }, json: { type: 'string' },
  }, metricsUsage);
  if (values.help) {
    console.log(metricsUsage);
    return 0;
  }
  const models = values.model ?? [];
  const inputs = values.input ?? [];
  const sidFiles = values.sids ?? [];
  if (models.length !== inputs.length) {
    throw new UsageError(`each --model needs its --input (got ${models.length} --model, ${inputs.length} --input)\n\n${metricsUsage}`);
  }
  if (models.length + sidFiles.length === 0) throw new UsageError(`give --model DIR --input FILE or --sids FILE\n\n${metricsUsage}`);
  const labels = values.label ?? [];
  if (labels.length > 0 && labels.length !== models.length + sidFiles.length) {
    throw new UsageError(`--label given ${labels.length} times for ${models.length + sidFiles.length} columns`);
  }
  const sidCodebookSize = intFlag(values['sids-codebook-size'], 'sids-codebook-size');
  if (sidCodebookSize !== undefined && (sidCodebookSize < 1 || sidCodebookSize > 65536)) {
    throw new UsageError(`--sids-codebook-size must be in 1..65536, got ${sidCodebookSize}`);
  }

  const rows: LabelledMetrics[] = [];
  for (let i = 0; i < models.length; i++) rows.push(await bundleMetrics(models[i]!, inputs[i]!, values.array));
  for (const file of sidFiles) {
    let sids = await readLetterSids(file);
    if (sidCodebookSize !== undefined) sids = await readLetterSids(file, { codebookSizes: new Array<number>(sids.levels).fill(sidCodebookSize) });
    const metrics = sidQualityMetrics(sids.codes, sids.n, sids.codebookSizes);
    rows.push({ label: basename(file), metrics, warnings: sidHealth(metrics).map((w) => w.message) });
  }
  labels.forEach((label, i) => (rows[i]!.label = label));
  console.log(compareMetricsTable(rows));
  for (const row of rows) for (const w of row.warnings) console.log(`warning: ${row.label}: ${w}`);
  if (values.json !== undefined) await writeFile(values.json, `${JSON.stringify(rows, null, 2)}\n`);
  return 0;
}
