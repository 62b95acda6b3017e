/**
 * A pool of worker threads, each holding one onnxruntime-node session for a bundle's encoder.onnx
 * (ORT's `run()` blocks its thread, so calls run on the workers; the one exception is the optional inline lane,
 * inline-lane.ts, for a lone single-row call that says nothing else waits for the event loop).
 *
 * - `encode()` splits large batches into row chunks (at most `maxBatchRows`, spread over the workers); a worker's run
 *   (a chunk, or small ones coalesced) is copied once into its RunInput; results come back transferred, reassembled in
 *   order. The caller's array is read (never changed nor detached) until the call settles: keep it unchanged till then.
 * - provider 'cuda' falls back to 'cpu' when the CUDA execution provider cannot be created; a 'warn' log line says
 *   why, and `provider` reports what is in use. Only the first worker probes CUDA; the others use its outcome.
 * - An ORT failure rejects that call with SidxError SIDX_ERR_ENCODER. A worker that dies rejects the chunk it was
 *   running (SIDX_ERR_ENCODER) and is replaced; queued chunks wait for the replacement.
 * - Workers are unref'd while idle, so an open pool never keeps a finished process alive; call `close()` anyway.
 * - An empty batch (n = 0) is answered without ORT (ORT 1.30's TopK crashes the process on 0 rows).
 * - When the bundle has a beam.onnx, `beam()` runs the level-wise beam over code prefixes (src/numeric/beam-graph.ts)
 *   and the encoder, in one chunk of the same queue: on CPU one ORT run (codes, latent), then the addon's beam
 *   (beam-query.ts; `beamModel` 'merged'/'separate' keep it in ORT), with a CUDA encoder as two runs (beam on CPU).
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { SidxError } from '../errors.ts';
import { repoUrl } from '../paths.ts';
import type { ModelBundle } from './bundle.ts';
import { beamWidths } from '../numeric/beam-query-graph.ts';
import { derivedModels, type DerivedModels } from './beam-query.ts';
import { closeWorker, concatBeams, concatEncodes, MAX_COALESCED, resolveRun, RunInput, runRequest, sameKind, type BeamMode, type BeamResult, type Chunk, type EncodeResult, type WorkerReply } from './worker-protocol.ts';
import { INLINE_MAX_ROWS, InlineLane } from './inline-lane.ts';

export type Provider = 'cpu' | 'cuda';
export type PoolLog = (level: 'info' | 'warn', msg: string) => void;

export interface EncoderPoolOptions {
  workers: number;
  provider: Provider;
  /** ORT intra-op threads per session; default: available cores / workers (at least 1). */
  intraOpThreads?: number;
  /** Whether those threads spin between runs (ORT's default, true); see the encoder.spinWait config. */
  spinWait?: boolean;
  /** Niceness added to each worker thread and its ORT threads (Linux; server.threadNice). Default 0. */
  nice?: number;
  /** Largest chunk one worker runs at once; bounds the N × K distance matrix. Default: ~64 MiB of distances. */
  maxBatchRows?: number;
  /** How beams run on CPU workers: native (default), one merged ORT run, two runs (A/B, tests), or none (sidx index). */
  beamModel?: 'native' | 'merged' | 'separate' | 'none';
  /** CPU only: also open an inline lane (inline-lane.ts) for lone single-row calls that ask for it. */
  inline?: boolean;
  log?: PoolLog;
}

/** Per call: `inline` says no other request waits for the event loop (the inline lane may run the call). */
export interface CallOptions {
  inline?: boolean;
}

/** Per encode: `codesOnly` asks for the codes alone (the answer's top-M arrays are empty), from the codes-only model. */
export interface EncodeOptions extends CallOptions {
  codesOnly?: boolean;
}

export type { BeamLevel, BeamResult, EncodeResult } from './worker-protocol.ts';
/** Test-only hooks (white-box tests reach them through this symbol). */
export const kPoolTestHooks = Symbol('sidx.encoderPool.testHooks');

const WORKER_URL = repoUrl('src/tokenizer/encoder-worker.mjs');
const MIN_SPLIT_ROWS = 32;

interface Slot {
  worker: Worker;
  input: RunInput;
  /** The chunks of the run in flight: one, or several small ones coalesced into one run (same kind and width). */
  busy?: Chunk[];
  /** Id of the run in flight (its first chunk's). */
  runId?: number;
  lastError?: Error;
}

export class EncoderPool {
  readonly bundle: ModelBundle;
  readonly inputDim: number;
  readonly levels: number;
  readonly topM: number;
  readonly maxBatchRows: number;
  #provider: Provider;
  /** Each worker session's ORT threads (the inline lane runs one), and the workers' niceness. */
  #threads: { intraOpThreads: number; spinWait: boolean; nice: number };
  #target: number;
  #log: PoolLog;
  #slots: Slot[] = [];
  #spawning = 0;
  #queue: Chunk[] = [];
  #nextId = 1;
  #closed = false;
  #held = false;
  #runs = 0;
  #codesRuns = 0;
  #derived: DerivedModels = {};
  #beamMode: BeamMode = 'none';
  #beams: boolean;
  /** Opened on the first call that asks for it (start-up does not wait for its sessions); null: not wanted. */
  #inline: InlineLane | undefined | null = null;

  private constructor(bundle: ModelBundle, options: EncoderPoolOptions) {
    const m = bundle.manifest;
    this.bundle = bundle;
    this.inputDim = m.inputDim;
    this.levels = m.levels;
    this.topM = m.topM;
    this.#beams = options.beamModel !== 'none';
    this.#provider = options.provider;
    this.#target = options.workers;
    const intraOpThreads = options.intraOpThreads ?? Math.max(1, Math.floor(availableParallelism() / options.workers));
    this.#threads = { intraOpThreads, spinWait: options.spinWait ?? true, nice: options.nice ?? 0 };
    this.#log = options.log ?? (() => {});
    // Gemm output and distances: about two N × K float32 matrices alive at once.
    this.maxBatchRows = options.maxBatchRows ?? Math.max(MIN_SPLIT_ROWS, Math.floor((64 << 20) / (8 * Math.max(...m.codebookSizes))));
  }

  /** Starts `options.workers` workers and resolves once every one holds a session. */
  static async create(bundle: ModelBundle, options: EncoderPoolOptions): Promise<EncoderPool> {
    if (!Number.isInteger(options.workers) || options.workers < 1) {
      throw new SidxError('SIDX_ERR_CONFIG', `workers must be a positive integer, got ${options.workers}`, { field: 'workers' });
    }
    if (options.provider !== 'cpu' && options.provider !== 'cuda') {
      throw new SidxError('SIDX_ERR_CONFIG', `provider must be "cpu" or "cuda", got ${String(options.provider)}`, { field: 'provider' });
    }
    const pool = new EncoderPool(bundle, options);
    const mode = options.beamModel ?? 'native';
    pool.#derived = derivedModels(bundle, mode, pool.#log); // sync, as the spawn
    try {
      await pool.#spawn(); // the first worker settles the provider
      await Promise.all(Array.from({ length: options.workers - 1 }, () => pool.#spawn()));
    } catch (err) {
      await pool.close();
      throw err;
    }
    if (options.inline && pool.#provider === 'cpu') pool.#inline = undefined;
    pool.#log('info', `encoder pool ready: ${options.workers} worker(s), provider ${pool.#provider}, `
      + `${pool.#threads.intraOpThreads} intra-op thread(s) each${pool.#threads.nice > 0 ? ` at niceness +${pool.#threads.nice}` : ''}, model ${bundle.manifest.id}`);
    return pool;
  }

  /** The execution provider actually in use. */
  get provider(): Provider {
    return this.#provider;
  }

  /** How the last worker started runs beams (see EncoderPoolOptions.beamModel). */
  get beamMode(): BeamMode {
    return this.#beamMode;
  }

  /** Chunks waiting for a free worker. */
  get queueLength(): number { return this.#queue.length; }
  /** Worker runs in flight (each serves one chunk, or several small ones coalesced). */
  get inFlight(): number { return this.#slots.reduce((a, s) => a + (s.busy ? 1 : 0), 0); }
  /** Live workers. */
  get workers(): number { return this.#slots.length; }

  /** Encodes `n` row-major embeddings of `inputDim` floats. The input array is read, never changed, until the call settles. */
  async encode(vectors: Float32Array, n: number, opts?: EncodeOptions): Promise<EncodeResult> {
    if (!(vectors instanceof Float32Array)) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', 'embeddings must be a Float32Array', { field: 'embedding' });
    }
    if (!Number.isSafeInteger(n) || n < 0 || vectors.length !== n * this.inputDim) {
      throw new SidxError('SIDX_ERR_DIMENSION',
        `expected ${n} × ${this.inputDim} = ${n * this.inputDim} floats, got ${vectors.length}`, { field: 'embedding' });
    }
    if (this.#closed) throw new SidxError('SIDX_ERR_ENCODER', 'encoder pool is closed');
    if (n === 0) return concatEncodes([], 0, this.levels, this.topM);
    const split = Math.max(MIN_SPLIT_ROWS, Math.ceil(n / this.#target));
    const rows = Math.min(this.maxBatchRows, split);
    const parts = this.#submit<EncodeResult>(vectors, n, rows, { codesOnly: opts?.codesOnly === true }, opts?.inline);
    return parts.length === 1 ? parts[0]! : concatEncodes(await Promise.all(parts), n, this.levels, this.topM, opts?.codesOnly);
  }

  /** Whether the bundle has a beam.onnx and the pool was not opened without beams, i.e. `beam()` can run. */
  get hasBeam(): boolean {
    return this.#beams && this.bundle.beamPath !== undefined;
  }

  /**
   * The level-wise beam of width `width` for `n` row-major embeddings: per level, the best prefixes and scores;
   * with the encoder's codes. `normWeight` 1 scores prefixes by squared distance to their codeword sum, 0 by
   * partial inner product.
   */
  async beam(vectors: Float32Array, n: number, width: number, normWeight: number, opts?: CallOptions): Promise<BeamResult> {
    if (!this.hasBeam) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `model ${this.bundle.manifest.id} has no beam.onnx${this.#beams ? '' : ' loaded (beamModel none)'}`, { field: 'expand' });
    }
    if (!Number.isSafeInteger(width) || width < 1) {
      throw new SidxError('SIDX_ERR_INVALID_INPUT', `beam width must be a positive integer, got ${width}`, { field: 'beamWidth' });
    }
    if (!Number.isSafeInteger(n) || n < 0 || !(vectors instanceof Float32Array) || vectors.length !== n * this.inputDim) {
      throw new SidxError('SIDX_ERR_DIMENSION', `expected ${n} × ${this.inputDim} floats`, { field: 'embedding' });
    }
    if (this.#closed) throw new SidxError('SIDX_ERR_ENCODER', 'encoder pool is closed');
    const widths = () => beamWidths(width, this.bundle.manifest.codebookSizes);
    if (n === 0) return concatBeams([], 0, widths());
    const parts = this.#submit<BeamResult>(vectors, n, this.#beamRows(width), { beam: { width, normWeight } }, opts?.inline);
    return parts.length === 1 ? parts[0]! : concatBeams(await Promise.all(parts), n, widths());
  }

  /** Terminates every worker; pending and queued calls reject with SIDX_ERR_ENCODER. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    const closedErr = () => new SidxError('SIDX_ERR_ENCODER', 'encoder pool closed before the batch was encoded');
    for (const c of this.#queue.splice(0)) c.reject(closedErr());
    const slots = this.#slots.splice(0);
    for (const s of slots) for (const c of s.busy ?? []) c.reject(closedErr());
    await Promise.all([...slots.map((s) => closeWorker(s.worker)), this.#inline?.close()]);
  }

  get [kPoolTestHooks]() {
    return {
      /** The next chunk sent to worker `i` kills it with an uncaught error. */
      crashNext: (i: number) => this.#slots[i]!.worker.postMessage({ type: 'crash-next' }),
      threadIds: () => this.#slots.map((s) => s.worker.threadId),
      /** Worker runs started so far (coalesced chunks share one). */
      runs: () => this.#runs,
      codesRuns: () => this.#codesRuns, // of those, the codes-only ones
      inlineFree: () => this.#inline?.free ?? false, // the inline lane is open and free
      /** No chunk goes to a worker until the returned release is called: calls stay queued (load-shedding tests). */
      hold: () => {
        this.#held = true;
        return () => {
          this.#held = false;
          this.#dispatch();
        };
      },
    };
  }

  #submit<T extends EncodeResult | BeamResult>(vectors: Float32Array, n: number, rows: number, kind: Pick<Chunk, 'beam' | 'codesOnly'>, inline = false): Promise<T>[] {
    const d = this.inputDim;
    const parts: Promise<T>[] = [];
    if (inline && this.#inline === undefined) this.#inline = InlineLane.start(this.#laneParams(), (msg) => this.#log('warn', msg));
    const lane = this.#inline;
    if (inline && lane?.free && n <= INLINE_MAX_ROWS && !this.#held && this.#queue.length === 0 && this.inFlight === 0) {
      return [new Promise<T>((resolve, reject) => {
        const chunk: Chunk = { id: this.#nextId++, data: vectors, n, ...kind, resolve: resolve as Chunk['resolve'], reject };
        void lane.run({ ...runRequest(chunk), id: chunk.id, data: vectors, n })
          .then((reply) => resolveRun([chunk], reply, this.bundle.manifest.codebookSizes, this.topM));
      })];
    }
    for (let start = 0; start < n; start += rows) {
      const end = Math.min(n, start + rows);
      parts.push(new Promise<T>((resolve, reject) => this.#queue.push({
        id: this.#nextId++, data: vectors.subarray(start * d, end * d), n: end - start, ...kind,
        resolve: resolve as (r: EncodeResult | BeamResult) => void, reject,
      })));
    }
    this.#replenish();
    this.#dispatch();
    return parts;
  }

  /**
   * Gives each free worker the next queued chunk, together with the small chunks queued right behind it that
   * the same run can serve (same kind and beam parameters, rows within the chunk limit): under load, concurrent
   * single-query encodes and beams share one worker hop and one ORT run instead of queueing one by one. A worker
   * takes at most its share of the queue (queued chunks / free workers), so the chunks of one split batch run on
   * all free workers in parallel rather than coalesced into one run.
   */
  #dispatch(): void {
    if (this.#held) return;
    let free = this.#slots.filter((s) => !s.busy).length;
    for (const slot of this.#slots) {
      if (this.#queue.length === 0) return;
      if (slot.busy) continue;
      const run = this.#takeRun(Math.ceil(this.#queue.length / free--));
      const first = run[0]!;
      slot.busy = run;
      slot.runId = first.id;
      slot.worker.ref();
      this.#runs++;
      if (first.codesOnly) this.#codesRuns++;
      const data = slot.input.rows(run);
      slot.worker.postMessage({ ...runRequest(first), id: first.id, data, n: data.length / this.inputDim }, data.buffer instanceof SharedArrayBuffer ? [] : [data.buffer]);
    }
  }

  /** Rows of one beam run: each row scores width × K children per level; keep that matrix near 64 MiB. */
  #beamRows(width: number): number {
    return Math.max(1, Math.floor((64 << 20) / (4 * width * Math.max(...this.bundle.manifest.codebookSizes))));
  }

  #takeRun(maxChunks: number): Chunk[] {
    const first = this.#queue.shift()!;
    const run = [first];
    const limit = first.beam ? this.#beamRows(first.beam.width) : this.maxBatchRows;
    let rows = first.n;
    while (run.length < Math.min(MAX_COALESCED, maxChunks) && this.#queue.length > 0) {
      const next = this.#queue[0]!;
      if (rows + next.n > limit || !sameKind(first, next)) break;
      run.push(this.#queue.shift()!);
      rows += next.n;
    }
    return run;
  }

  /** Starts replacements until live + starting workers reach the target. */
  #replenish(): void {
    while (!this.#closed && this.#slots.length + this.#spawning < this.#target) {
      this.#spawn().catch((err: Error) => {
        this.#log('warn', `encoder worker could not be replaced: ${err.message}`);
        if (this.#slots.length === 0 && this.#spawning === 0) {
          for (const c of this.#queue.splice(0)) {
            c.reject(new SidxError('SIDX_ERR_ENCODER', `no encoder worker available: ${err.message}`, { cause: err }));
          }
        }
      });
    }
  }

  #laneParams() {
    return {
      encoderPath: this.bundle.encoderPath, beamPath: this.hasBeam ? this.bundle.beamPath : undefined, ...this.#derived,
      inputDim: this.inputDim,
      levels: this.levels, topM: this.topM, codebookSizes: this.bundle.manifest.codebookSizes,
    };
  }

  #spawn(): Promise<void> {
    this.#spawning++;
    // The worker is plain JavaScript: it needs no TS loader flags (and must not inherit e.g. --test).
    const worker = new Worker(WORKER_URL, { execArgv: [], workerData: { ...this.#laneParams(), provider: this.#provider, ...this.#threads } });
    return new Promise<void>((resolve, reject) => {
      let settled = false;
      const slot: Slot = { worker, input: new RunInput() };
      const fail = (err: Error) => {
        if (settled) return;
        settled = true;
        this.#spawning--;
        void worker.terminate();
        reject(err);
      };
      worker.on('message', (msg: WorkerReply) => {
        if (msg.type === 'ready') {
          if (settled) return;
          settled = true;
          this.#spawning--;
          if (this.#closed) {
            void worker.terminate();
            return reject(new SidxError('SIDX_ERR_ENCODER', 'encoder pool closed while a worker was starting'));
          }
          if (msg.fallbackReason !== undefined && this.#provider === 'cuda') {
            this.#log('warn', `CUDA execution provider unavailable, falling back to CPU: ${msg.fallbackReason}`);
          }
          this.#provider = msg.provider;
          if (msg.beamFallbackReason !== undefined) this.#log('warn', `merged beam model refused, beams take two runs: ${msg.beamFallbackReason}`);
          this.#beamMode = msg.beamMode;
          worker.unref();
          this.#slots.push(slot);
          resolve();
          this.#dispatch();
        } else if (msg.type === 'init-error') {
          fail(new SidxError('SIDX_ERR_MODEL_BUNDLE', `${this.bundle.encoderPath}: cannot be loaded: ${msg.message}`,
            { field: 'encoder.onnx' }));
        } else {
          this.#settle(slot, msg);
        }
      });
      worker.on('error', (err) => {
        slot.lastError = err;
        fail(new SidxError('SIDX_ERR_ENCODER', `encoder worker failed to start: ${err.message}`, { cause: err }));
      });
      worker.on('exit', (code) => {
        fail(new SidxError('SIDX_ERR_ENCODER', `encoder worker exited during start (code ${code})`));
        this.#onExit(slot, code);
      });
    });
  }

  #settle(slot: Slot, msg: Extract<WorkerReply, { type: 'result' | 'error' }>): void {
    const run = slot.busy;
    if (!run || slot.runId !== msg.id) return;
    slot.busy = undefined;
    slot.runId = undefined;
    slot.worker.unref();
    resolveRun(run, msg, this.bundle.manifest.codebookSizes, this.topM);
    this.#dispatch();
  }

  #onExit(slot: Slot, code: number): void {
    const i = this.#slots.indexOf(slot);
    if (i < 0) return; // never became ready, or closed
    this.#slots.splice(i, 1);
    const why = slot.lastError ? `: ${slot.lastError.message}` : '';
    for (const chunk of slot.busy ?? []) {
      chunk.reject(new SidxError('SIDX_ERR_ENCODER', `encoder worker died (exit code ${code})${why}`, { cause: slot.lastError }));
    }
    if (this.#closed) return;
    this.#log('warn', `encoder worker died (exit code ${code})${why}; starting a replacement`);
    this.#replenish();
  }
}
