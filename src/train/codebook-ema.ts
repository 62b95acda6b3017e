/**
 * Per-level codebook bookkeeping between training steps (O(K x H) per step, on typed arrays):
 * - usage: an EMA of how many batch rows each code received (decay d): usage = d usage + (1 - d) counts;
 * - EMA codebooks (VQ-VAE-2 / Kakao RQ-VAE, as in FORGE's VQEmbedding with ema=True):
 *     embedEma = d embedEma + (1 - d) sums   (sums: per code, the sum of the level inputs assigned to it)
 *     C_k = embedEma_k / ((usage_k + 1e-5) n / (n + K 1e-5)),  n = sum_k usage_k
 * - dead-code restart: a code whose usage falls below the threshold (FORGE: 1) is replaced by a random level input
 *   of the current batch (plus uniform noise of scale 0.01 / sqrt(H) when the batch has fewer rows than codes to
 *   restart, FORGE's `_tile_with_noise`), and its usage is reset to max(1, threshold). With gradient codebooks the
 *   codeword itself is overwritten (the caller clears its optimiser moments); with EMA codebooks embedEma is.
 * Usage starts from the initial assignment's expected counts per step (k-means init) rather than FORGE's zeros,
 * so the first step does not restart a freshly fitted codebook.
 */
import { seededRandom } from './rqvae-model.ts';

export interface LevelStepInput {
  /** Batch codes, int64 [B, L] row-major; this level is column `level`. */
  codes: BigInt64Array;
  levels: number;
  level: number;
  batch: number;
  /** The level inputs [B, H] (needed for restart). */
  levelInput?: Float32Array;
  /** EMA sums [K, H] (EMA codebooks only). */
  sums?: Float32Array;
}

export class CodebookState {
  readonly size: number;
  readonly dim: number;
  readonly decay: number;
  readonly ema: boolean;
  readonly restart: boolean;
  readonly threshold: number;
  readonly usage: Float32Array;
  readonly embedEma: Float32Array | null;
  #counts: Float32Array;

  constructor(size: number, dim: number, options: { decay: number; ema: boolean; restart: boolean; threshold: number }) {
    this.size = size;
    this.dim = dim;
    this.decay = options.decay;
    this.ema = options.ema;
    this.restart = options.restart;
    this.threshold = options.threshold;
    this.usage = new Float32Array(size);
    this.embedEma = options.ema ? new Float32Array(size * dim) : null;
    this.#counts = new Float32Array(size);
  }

  /** Starts usage at `perStep` expected counts per code and embedEma at codebook * usage. */
  initialise(codebook: Float32Array, perStep: Float32Array): void {
    this.usage.set(perStep);
    if (this.embedEma !== null) {
      for (let k = 0; k < this.size; k++) {
        for (let h = 0, o = k * this.dim; h < this.dim; h++) this.embedEma[o + h] = codebook[o + h]! * perStep[k]!;
      }
    }
  }

  /**
   * One step: updates usage (and EMA sums), restarts dead codes, and for EMA codebooks rewrites `codebook`.
   * Returns the restarted code indices.
   */
  update(step: LevelStepInput, codebook: Float32Array, seed: number): number[] {
    const { size: k, dim, decay } = this;
    const counts = this.#counts.fill(0);
    const { codes, levels, level, batch } = step;
    // int64 codes are small and non-negative: the low little-endian 32-bit word is the value.
    const words = new Int32Array(codes.buffer, codes.byteOffset, codes.length * 2);
    for (let i = 0; i < batch; i++) counts[words[2 * (i * levels + level)]!]!++;
    for (let c = 0; c < k; c++) this.usage[c] = decay * this.usage[c]! + (1 - decay) * counts[c]!;
    if (this.embedEma !== null) {
      const sums = step.sums!;
      for (let i = 0; i < this.embedEma.length; i++) this.embedEma[i] = decay * this.embedEma[i]! + (1 - decay) * sums[i]!;
    }
    const restarted: number[] = [];
    if (this.restart) {
      for (let c = 0; c < k; c++) if (this.usage[c]! < this.threshold) restarted.push(c);
      if (restarted.length > 0) this.#restart(restarted, step, codebook, seed);
    }
    if (this.embedEma !== null) this.#writeEmaCodebook(codebook);
    return restarted;
  }

  #restart(dead: number[], step: LevelStepInput, codebook: Float32Array, seed: number): void {
    const input = step.levelInput;
    if (input === undefined) throw new Error('dead-code restart needs the level inputs');
    const { dim } = this;
    const rand = seededRandom(seed);
    const noise = dead.length > step.batch ? 0.01 / Math.sqrt(dim) : 0;
    const target = this.embedEma ?? codebook;
    const reset = Math.max(1, this.threshold);
    for (const c of dead) {
      const row = Math.floor(rand() * step.batch);
      for (let h = 0; h < dim; h++) target[c * dim + h] = input[row * dim + h]! + noise * rand();
      this.usage[c] = reset;
    }
    // EMA: embedEma_k = vector * usage_k so that the codeword equals the vector (up to the 1e-5 smoothing).
    if (this.embedEma !== null) {
      for (const c of dead) for (let h = 0; h < dim; h++) this.embedEma[c * dim + h]! *= reset;
    }
  }

  #writeEmaCodebook(codebook: Float32Array): void {
    const eps = 1e-5;
    const { size: k, dim } = this;
    let n = 0;
    for (let c = 0; c < k; c++) n += this.usage[c]!;
    const ema = this.embedEma!;
    for (let c = 0; c < k; c++) {
      const norm = (n * (this.usage[c]! + eps)) / (n + k * eps);
      const inv = 1 / norm;
      for (let h = 0, o = c * dim; h < dim; h++) codebook[o + h] = ema[o + h]! * inv;
    }
  }
}
