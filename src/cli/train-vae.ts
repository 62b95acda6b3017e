/** `sidx train --method rqvae|vqvae`: trains an RQ-VAE / VQ-VAE on ONNX Runtime and writes the model bundle. */
import { rm } from 'node:fs/promises';
import { basename, resolve } from 'node:path';
import { readEmbeddings } from '../io/embeddings.ts';
import { fileSha256, DEFAULT_TOP_M } from '../train/export.ts';
import { formatMetricsTable } from '../train/metrics.ts';
import { formatHealth, sidHealth } from '../train/health.ts';
import { trainRqVae, type EpochSummary, type RqVaeProgress } from '../train/rqvae.ts';
import { exportVaeBundle } from '../train/rqvae-export.ts';
import {
  DEFAULT_STEPS, FORGE_HIDDEN, FORGE_LATENT_DIM, deadThresholdOf, firstTrainedLayer, type RqVaeOptions, type VaeMethod,
} from '../train/rqvae-options.ts';
import { loadPairs } from '../train/pairs.ts';
import { setVectorThreads } from '../vector/vector-index.ts';
import { intFlag, parseFlags, UsageError } from './args.ts';
import { formatSeconds, ProgressLine } from './progress.ts';
import { checkOutDir, parseCodebookSizes, shellQuote } from './train.ts';

export const trainVaeUsage = `Usage: sidx train --method rqvae|vqvae --input FILE --out DIR [--levels L] [--codebook-size K|K1,K2,..]
                  [--steps S | --epochs E] [--batch-size B] [--seed S] [--normalize l2|none] [--hidden 256,256] [--latent-dim 64]
                  [--input-projection P] [--identity-pull R]
                  [--lr LR] [--min-lr LR] [--warmup-epochs W] [--weight-decay WD]
                  [--assignment sinkhorn|argmin] [--sinkhorn-eps E] [--sinkhorn-iters T]
                  [--commitment forge|classic] [--beta B] [--commit-weight W]
                  [--codebook-update gradient|ema] [--ema-decay D] [--dead-restart on|off] [--dead-threshold T|auto]
                  [--init rqkmeans|random] [--init-sample N] [--init-iters N]
                  [--pairs FILE [--pair-ids FILE] [--pair-batches N|all] [--contrastive-weight W]
                  [--pair-recon-weight W] [--pair-from-epoch E] [--pair-until-epoch E] [--pair-noise S]
                  [--self-pairs N [--self-pair-noise S]]] [--checkpoint FILE|none] [--resume FILE]
                  [--max-items-per-sid C] [--input-noise S] [--input-mix P]
                  [--augment-copies N [--augment-noise S]] [--eval-every N] [--top-m M] [--beam-norm-weight W]
                  [--id ID] [--threads N] [--array NAME]

Trains an RQ-VAE (FORGE recipe) or a VQ-VAE with forward and backward passes as ONNX graphs on ONNX Runtime and
writes DIR/model.json + DIR/encoder.onnx + DIR/decoder.onnx + DIR/beam.onnx. Defaults (rqvae = FORGE al_sid for 512-d input):

  --levels / --codebook-size  rqvae: 3 x 256 unless given (FORGE: 3 x 8192); vqvae: one codebook, default 4096
  --steps            optimiser (reconstruction) steps, default ${DEFAULT_STEPS}, rounded up to whole epochs;
                     --epochs E instead sets the epochs directly (FORGE: 150)
  --batch-size       default rows / 8 within 64..2048 (FORGE's 2048 from 16,384 rows), at most the rows
  --normalize        l2: unit-normalise rows before training (the encoder does the same: for embeddings compared by
                     cosine, as the shipped models and every documented run); none (default): rows as they are
  --hidden           encoder hidden widths, decoder mirrored (default ${FORGE_HIDDEN.join(',')}; '' = a linear encoder and
                     decoder); --latent-dim ${FORGE_LATENT_DIM}
  --input-projection the encoder's first layer: the input rows' top P principal components (FAISS PCA), frozen;
                     the MLP then sees only the subspace the rows span (default 0: none)
  --identity-pull    draw the first trained encoder layer (square: e.g. --hidden '' with --latent-dim P) towards the
                     identity after each step, at R x the learning rate (default 0: off); a higher R keeps the codes of
                     noisy copies together (Hamming-1) at some cost to the learned metric (docs/rqvae.md)
  --beam-norm-weight how expand "beam" scores a prefix with codeword sum c, recorded in model.json: W ||c||^2 - 2 q.c
                     for W in [0, 1] (1, the default: squared distance; 0: inner product; with --identity-pull, 0.5
                     served user-profile queries better at no loss on item-like ones, docs/rqvae.md)
  --lr / --min-lr    AdamW peak and final learning rate (2e-3 / 1e-7), linear warm-up for --warmup-epochs
                     (default 40/150 of the epochs), then cosine; --weight-decay 1e-4 on matrices
  --assignment       training assignment: sinkhorn (rqvae default; FORGE, eps 10, 5 rounds) or argmin (vqvae);
                     inference (the exported encoder) is always argmin
  --commitment       forge: 1/L sum_l 0.5 mse(z, sg s_l) + 0.5 mse(sg z, s_l) (rqvae default);
                     classic: sum_l mse(sg r_l, q_l) + beta mse(r_l, sg q_l), beta 0.25 (vqvae default)
  --codebook-update  gradient (rqvae default) or ema with decay --ema-decay 0.99 (vqvae default)
  --dead-restart     replace codes whose usage EMA (hits per step) < --dead-threshold by random batch latents
                     (default: on for vqvae, off for rqvae); threshold auto = min(1, 0.5 batch / K): FORGE's 1
                     when batch >= 2K, else half the uniform rate (with batch < K, "< 1" restarts every code)
  --init             rqkmeans: codebooks from RQ-KMeans on the initial encoder's latents (default); random
  --pairs            co-occurring items for FORGE's contrastive loss: a FORGE contrastive .npz ('pairs' of item
                     ids, mapped to rows of its embeds by --pair-ids) or a sequence file whose items are input
                     rows: JSON {user: [row, ...]} or RecBole .inter/.tsv (consecutive items become pairs)
  --pair-batches     contrastive batches per epoch: all (FORGE, default) or at most N, a new draw each epoch;
                     where pairs far outnumber items, N near the reconstruction batches keeps the decoder honest
  --contrastive-weight  weight of the InfoNCE terms in a contrastive step (default 1, FORGE)
  --pair-recon-weight   weight of the pair items' reconstruction MSE in a contrastive step (default 0, FORGE:
                     none); > 0 keeps the decoder's output norm from drifting when pair batches dominate
  --pair-from-epoch / --pair-until-epoch  contrastive steps only in epochs E1 + 1 .. E2 (defaults 0 and all the
                     epochs); the other epochs skip their pair steps (reconstruction warm-up, or a reconstruction-only tail)
  --pair-noise       pair steps feed both items plus fresh Gaussian noise of norm up to S x their norm (uniform per
                     row and step), so that the contrastive codes hold for items scattered around the pairs (default 0)
  --self-pairs       N pairs (i, i) per item join the contrastive pairs (default 0); their two sides get independent
                     noise of norm up to --self-pair-noise S x their norm (default: --pair-noise), so that noisy items
                     near one item keep its SID or differ in one code (Hamming-1 neighbours)
  --checkpoint       written after every epoch, for --resume after a stopped run (default DIR.checkpoint, removed
                     once the bundle is written; a FILE given here is kept; none = off)
  --max-items-per-sid  collision-aware last level: after training, move the least-used last-level codewords onto
                     items of SIDs holding more than C items until none does (at most K/8 codewords); the
                     encoder stays argmin (default: off)
  --input-noise      denoising: reconstruction steps feed each row plus Gaussian noise of norm up to S x its norm
                     (uniform per row and step) and reconstruct the clean row, so that SIDs of catalogs scattered
                     around the training rows stay close (default 0: off)
  --input-mix        share P of the reconstruction rows replaced by the mean of 2-5 input rows (a query made of
                     several items), reconstructed as fed (default 0: off)
  --augment-copies   train on the rows plus N noisy copies of each (Gaussian noise of norm --augment-noise S x
                     the row's, default 0.5), reconstructed as fed; batches and --steps count the copies, the
                     metrics only the input rows (default 0: off)
  --eval-every       inference codes + SID metrics every N epochs (default: a tenth of the epochs; 0 = after
                     the last only)
  --threads          ONNX Runtime / FAISS threads (default: all cores)`;

const VAE_METHODS: readonly string[] = ['rqvae', 'vqvae'];
const STEP_LINE_QUIET_MS = 10_000;

/**
 * The --method of an argv if it is rqvae or vqvae, else null (lets `sidx train` dispatch before parsing). The last
 * --method wins, as in node:util parseArgs.
 */
export function vaeMethodOf(argv: readonly string[]): VaeMethod | null {
  let method: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (a === '--') break;
    if (a === '--method') method = argv[++i];
    else if (a.startsWith('--method=')) method = a.slice('--method='.length);
  }
  return method !== undefined && VAE_METHODS.includes(method) ? (method as VaeMethod) : null;
}

function num(value: string | undefined, name: string, check: (v: number) => boolean, what: string): number | undefined {
  if (value === undefined) return undefined;
  const v = Number(value);
  if (value.trim() === '' || !Number.isFinite(v) || !check(v)) throw new UsageError(`--${name} must be ${what}, got ${JSON.stringify(value)}`);
  return v;
}

function choice<T extends string>(value: string | undefined, name: string, allowed: readonly T[]): T | undefined {
  if (value === undefined) return undefined;
  if (!(allowed as readonly string[]).includes(value)) {
    throw new UsageError(`--${name} must be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

function epochLine(e: EpochSummary & { epochs: number }): string {
  const parts = [`epoch ${e.epoch + 1}/${e.epochs}: recon ${e.recon.toPrecision(4)}, commit ${e.commit.toPrecision(4)}`];
  if (e.contrastive !== undefined) parts.push(`contrastive ${e.contrastive.toPrecision(4)}`);
  if (e.metrics !== undefined) {
    parts.push(`utilisation ${e.metrics.perLevel.map((l) => `${(100 * l.utilisation).toFixed(1)}%`).join('/')}`,
      `collisions ${(100 * e.metrics.collisionRate).toFixed(2)}%`);
  } else {
    parts.push(`batch utilisation ${e.trainUtilisation.map((u) => `${(100 * u).toFixed(1)}%`).join('/')}`);
  }
  const restarts = e.restarts.reduce((s, r) => s + r, 0);
  if (restarts > 0) parts.push(`restarts ${e.restarts.join('/')}`);
  parts.push(`${formatSeconds(e.trainSeconds)} train (${formatSeconds(e.seconds)} total)`);
  return parts.join(', ');
}

export async function trainVaeCommand(argv: string[]): Promise<number> {
  const { values } = parseFlags(argv, {
    method: { type: 'string' }, input: { type: 'string' }, out: { type: 'string' }, levels: { type: 'string' },
    'codebook-size': { type: 'string' }, steps: { type: 'string' }, epochs: { type: 'string' }, 'batch-size': { type: 'string' },
    seed: { type: 'string' }, normalize: { type: 'string' }, hidden: { type: 'string' }, 'latent-dim': { type: 'string' },
    'input-projection': { type: 'string' }, lr: { type: 'string' }, 'min-lr': { type: 'string' }, 'warmup-epochs': { type: 'string' },
    'weight-decay': { type: 'string' }, 'identity-pull': { type: 'string' }, assignment: { type: 'string' }, 'sinkhorn-eps': { type: 'string' },
    'sinkhorn-iters': { type: 'string' }, commitment: { type: 'string' }, beta: { type: 'string' },
    'commit-weight': { type: 'string' }, 'codebook-update': { type: 'string' }, 'ema-decay': { type: 'string' },
    'dead-restart': { type: 'string' }, 'dead-threshold': { type: 'string' }, init: { type: 'string' },
    'init-sample': { type: 'string' }, 'init-iters': { type: 'string' }, pairs: { type: 'string' },
    'pair-ids': { type: 'string' }, 'pair-batches': { type: 'string' },
    'contrastive-weight': { type: 'string' }, 'pair-recon-weight': { type: 'string' }, 'pair-from-epoch': { type: 'string' }, 'pair-until-epoch': { type: 'string' }, 'pair-noise': { type: 'string' }, 'self-pairs': { type: 'string' }, 'self-pair-noise': { type: 'string' }, checkpoint: { type: 'string' }, resume: { type: 'string' },
    'max-items-per-sid': { type: 'string' }, 'input-noise': { type: 'string' }, 'input-mix': { type: 'string' }, 'augment-copies': { type: 'string' }, 'augment-noise': { type: 'string' }, 'eval-every': { type: 'string' }, 'top-m': { type: 'string' }, 'beam-norm-weight': { type: 'string' }, id: { type: 'string' }, threads: { type: 'string' },
    array: { type: 'string' },
  }, trainVaeUsage);
  if (values.help) {
    console.log(trainVaeUsage);
    return 0;
  }
  const method = values.method as VaeMethod;
  if (values.input === undefined) throw new UsageError(`--input is required\n\n${trainVaeUsage}`);
  if (values.out === undefined) throw new UsageError(`--out is required\n\n${trainVaeUsage}`);
  checkOutDir(values.out);
  const levels = intFlag(values.levels, 'levels');
  let codebookSizes: number[];
  if (method === 'vqvae') {
    if (levels !== undefined && levels !== 1) throw new UsageError('--method vqvae has exactly one level');
    codebookSizes = parseCodebookSizes(values['codebook-size'] ?? '4096', 1);
  } else {
    codebookSizes = parseCodebookSizes(values['codebook-size'] ?? '256', levels ?? (values['codebook-size'] === undefined ? 3 : undefined));
  }
  const posInt = (v: string | undefined, name: string) => num(v, name, (x) => Number.isInteger(x) && x >= 1, 'a positive integer');
  const nonNegInt = (v: string | undefined, name: string) => num(v, name, (x) => Number.isInteger(x) && x >= 0, 'a non-negative integer');
  const positive = (v: string | undefined, name: string) => num(v, name, (x) => x > 0, 'a positive number');
  const nonNeg = (v: string | undefined, name: string) => num(v, name, (x) => x >= 0, 'a non-negative number');
  const hidden = values.hidden === undefined ? undefined : values.hidden === '' ? [] : values.hidden.split(',').map((h) => {
    const v = Number(h);
    if (!Number.isInteger(v) || v < 1) throw new UsageError(`--hidden: ${JSON.stringify(h)} is not a positive integer`);
    return v;
  });
  const deadRestart = choice(values['dead-restart'], 'dead-restart', ['on', 'off'] as const);
  const id = values.id ?? basename(resolve(values.out));
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/.test(id)) {
    throw new UsageError(`model id ${JSON.stringify(id)} must be letters, digits, . _ - (at most 128); pass --id`);
  }
  const topM = posInt(values['top-m'], 'top-m') ?? DEFAULT_TOP_M;
  const beamNormWeight = num(values['beam-norm-weight'], 'beam-norm-weight', (x) => x >= 0 && x <= 1, 'a number in [0, 1]');
  if (topM > Math.min(...codebookSizes)) throw new UsageError(`--top-m ${topM} exceeds the smallest codebook size ${Math.min(...codebookSizes)}`);
  const threads = posInt(values.threads, 'threads');
  if (threads !== undefined) setVectorThreads(threads);
  const checkpoint = values.checkpoint === 'none' ? undefined : values.checkpoint ?? `${resolve(values.out)}.checkpoint`;
  // Only a stopped run needs the default checkpoint; a --checkpoint FILE the user named is theirs to keep.
  const keepCheckpoint = values.checkpoint !== undefined;
  const seed = nonNegInt(values.seed, 'seed') ?? 0;

  const options: RqVaeOptions = {
    method, codebookSizes, seed,
    ...(hidden === undefined ? {} : { hidden }),
    latentDim: posInt(values['latent-dim'], 'latent-dim'),
    inputProjection: nonNegInt(values['input-projection'], 'input-projection'),
    normalize: choice(values.normalize, 'normalize', ['l2', 'none'] as const),
    steps: posInt(values.steps, 'steps'),
    epochs: posInt(values.epochs, 'epochs'),
    batchSize: posInt(values['batch-size'], 'batch-size'),
    lr: positive(values.lr, 'lr'),
    minLr: nonNeg(values['min-lr'], 'min-lr'),
    warmupEpochs: nonNegInt(values['warmup-epochs'], 'warmup-epochs'),
    weightDecay: nonNeg(values['weight-decay'], 'weight-decay'),
    identityPull: nonNeg(values['identity-pull'], 'identity-pull'),
    assignment: choice(values.assignment, 'assignment', ['sinkhorn', 'argmin'] as const),
    sinkhornEpsilon: positive(values['sinkhorn-eps'], 'sinkhorn-eps'),
    sinkhornIterations: posInt(values['sinkhorn-iters'], 'sinkhorn-iters'),
    commitment: choice(values.commitment, 'commitment', ['forge', 'classic'] as const),
    beta: nonNeg(values.beta, 'beta'),
    commitWeight: nonNeg(values['commit-weight'], 'commit-weight'),
    codebookUpdate: choice(values['codebook-update'], 'codebook-update', ['gradient', 'ema'] as const),
    emaDecay: num(values['ema-decay'], 'ema-decay', (x) => x > 0 && x < 1, 'in (0, 1)'),
    restartDead: deadRestart === undefined ? undefined : deadRestart === 'on',
    deadThreshold: values['dead-threshold'] === 'auto' ? 'auto' : nonNeg(values['dead-threshold'], 'dead-threshold'),
    init: choice(values.init, 'init', ['rqkmeans', 'random'] as const),
    initSample: posInt(values['init-sample'], 'init-sample'),
    initIterations: posInt(values['init-iters'], 'init-iters'),
    threads,
    evalEvery: nonNegInt(values['eval-every'], 'eval-every'),
    pairBatches: values['pair-batches'] === 'all' ? 'all' : posInt(values['pair-batches'], 'pair-batches'),
    contrastiveWeight: positive(values['contrastive-weight'], 'contrastive-weight'),
    pairReconWeight: nonNeg(values['pair-recon-weight'], 'pair-recon-weight'),
    pairFromEpoch: nonNegInt(values['pair-from-epoch'], 'pair-from-epoch'),
    pairNoise: nonNeg(values['pair-noise'], 'pair-noise'),
    pairUntilEpoch: posInt(values['pair-until-epoch'], 'pair-until-epoch'),
    selfPairs: nonNegInt(values['self-pairs'], 'self-pairs'),
    selfPairNoise: nonNeg(values['self-pair-noise'], 'self-pair-noise'),
    maxItemsPerSid: posInt(values['max-items-per-sid'], 'max-items-per-sid'),
    inputNoise: nonNeg(values['input-noise'], 'input-noise'),
    inputMix: num(values['input-mix'], 'input-mix', (x) => x >= 0 && x <= 1, 'in [0, 1]'),
    augmentCopies: nonNegInt(values['augment-copies'], 'augment-copies'),
    augmentNoise: nonNeg(values['augment-noise'], 'augment-noise'),
    checkpoint,
    resume: values.resume,
  };
  for (const key of Object.keys(options) as (keyof RqVaeOptions)[]) if (options[key] === undefined) delete options[key];
  if (options.steps !== undefined && options.epochs !== undefined) throw new UsageError('give --steps or --epochs, not both');
  if (values.pairs === undefined) {
    const pairFlag = (['pair-ids', 'pair-batches', 'contrastive-weight', 'pair-recon-weight', 'pair-from-epoch', 'pair-until-epoch', 'pair-noise', 'self-pairs', 'self-pair-noise'] as const).find((f) => values[f] !== undefined);
    if (pairFlag !== undefined) throw new UsageError(`--${pairFlag} needs --pairs`);
  }

  // In a log (no TTY) a step line only after STEP_LINE_QUIET_MS without output: the epoch lines carry the history.
  const progress = new ProgressLine({ prefix: 'sidx train', quietLineMs: STEP_LINE_QUIET_MS });
  const started = performance.now();
  const input = await readEmbeddings(values.input, { array: values.array });
  const dataDigest = await fileSha256(values.input);
  progress.log(`read ${input.n} x ${input.dim} from ${values.input}${input.skipped ? ` (${input.skipped} bad rows skipped)` : ''}`);
  if ((options.inputProjection ?? 0) > input.dim) {
    throw new UsageError(`--input-projection ${options.inputProjection} exceeds the ${input.dim} dimensions of ${values.input}`);
  }
  const pulled = firstTrainedLayer(options, input.dim);
  if ((options.identityPull ?? 0) > 0 && pulled.in !== pulled.out) {
    throw new UsageError(`--identity-pull needs a square first trained encoder layer, here ${pulled.in} -> ${pulled.out}: e.g. --hidden '' with --latent-dim equal to --input-projection`);
  }
  const pairs = values.pairs === undefined ? undefined : await loadPairs(values.pairs, input, values['pair-ids']);
  if (pairs !== undefined) progress.log(`contrastive: ${pairs.count} pairs from ${values.pairs}`);

  const history: EpochSummary[] = [];
  let checkpointShown = false;
  const result = await trainRqVae(input.vectors, input.dim, {
    ...options,
    ...(pairs === undefined ? {} : { pairs }),
    onProgress: (e: RqVaeProgress) => {
      if (e.kind === 'init') progress.log(e.message);
      else if (e.kind === 'checkpoint' && !checkpointShown) {
        checkpointShown = true;
        progress.log(`checkpoint after every epoch: ${e.path} (--resume it if the run stops${keepCheckpoint ? '' : '; removed once the bundle is written'})`);
      }
      else if (e.kind === 'step') {
        progress.update(`epoch ${e.epoch + 1}/${e.epochs} step ${e.step + 1}/${e.steps}: recon ${e.recon.toPrecision(4)}, `
          + `commit ${e.commit.toPrecision(4)}, lr ${e.lr.toExponential(2)}`);
      } else if (e.kind === 'split') {
        progress.log(`collision-aware last level: moved ${e.moved} codewords in ${e.rounds} rounds, at most ${e.maxItemsPerSid} items per SID`);
      } else if (e.kind === 'epoch') {
        history.push(e);
        progress.log(epochLine(e));
      }
    },
  });
  progress.done();
  const trainSeconds = (performance.now() - started) / 1000;
  const o = result.options;
  const bundle = await exportVaeBundle({
    dir: values.out, id, method, model: result.model, topM, beamNormWeight, metrics: { ...result.metrics },
    training: {
      source: values.input, command: `sidx train ${shellQuote(argv)}`, seed, dataDigest, rows: result.n,
      steps: o.steps, epochs: o.epochs, batchSize: o.batchSize, hidden: o.hidden, latentDim: o.latentDim,
      inputProjection: o.inputProjection,
      lr: o.lr, minLr: o.minLr, warmupEpochs: o.warmupEpochs, weightDecay: o.weightDecay,
      ...(o.identityPull > 0 ? { identityPull: o.identityPull } : {}),
      assignment: o.assignment, sinkhorn: o.assignment === 'sinkhorn' ? { epsilon: o.sinkhornEpsilon, iterations: o.sinkhornIterations } : false,
      commitment: o.commitment, beta: o.beta, commitWeight: o.commitWeight, codebookUpdate: o.codebookUpdate,
      emaDecay: o.emaDecay, init: o.init,
      deadRestart: o.restartDead
        ? { threshold: o.deadThreshold, perLevel: o.codebookSizes.map((k) => deadThresholdOf(o, o.batchSize, k)) }
        : false,
      contrastivePairs: pairs?.count ?? 0, pairBatches: o.pairBatches, contrastiveWeight: o.contrastiveWeight,
      pairReconWeight: o.pairReconWeight, pairEpochs: [o.pairFromEpoch, o.pairUntilEpoch], pairNoise: o.pairNoise, selfPairs: o.selfPairs, selfPairNoise: o.selfPairNoise, maxItemsPerSid: o.maxItemsPerSid, inputNoise: o.inputNoise, inputMix: o.inputMix,
      augmentCopies: o.augmentCopies, augmentNoise: o.augmentNoise,
      finalEpoch: history.at(-1) === undefined ? null : { recon: history.at(-1)!.recon, commit: history.at(-1)!.commit },
      meanEpochTrainSeconds: history.length === 0 ? null : history.reduce((s, h) => s + h.trainSeconds, 0) / history.length,
    },
  });
  if (checkpoint !== undefined && !keepCheckpoint) await rm(checkpoint, { force: true });
  console.log(formatMetricsTable(result.metrics, id));
  for (const line of formatHealth(sidHealth(result.metrics, { method }), 'sidx train: warning: ')) console.error(line);
  const kept = checkpoint !== undefined && keepCheckpoint ? `; checkpoint ${checkpoint}` : '';
  console.error(`sidx train: wrote ${bundle.dir} (model ${id}, ${method}, sha256 ${bundle.sha256.slice(0, 12)}) in ${formatSeconds(trainSeconds)}${kept}`);
  return 0;
}
