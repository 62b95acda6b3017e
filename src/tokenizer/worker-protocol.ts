/**
 * The messages between EncoderPool (encoder-pool.ts) and its workers (encoder-worker.mjs, which documents each one),
 * how one worker run serves several queued calls (calls of the same kind are concatenated row-wise into one run, and
 * the run's row-major results are cut back per call), and the close handshake.
 */
import type { Worker } from 'node:worker_threads';
import { SidxError } from '../errors.ts';
import { beamWidths } from '../numeric/beam-query-graph.ts';
import type { LaneOpened, LaneReply } from './encoder-session.mjs';

export interface EncodeResult {
  /** n × levels, row-major. */
  codes: Int32Array;
  /** n × levels × topM, ascending distance per level; topCodes[.., l, 0] === codes[.., l]. Empty for `codesOnly` calls. */
  topCodes: Int32Array;
  /** n × levels × topM squared L2 distances in the codebook space. Empty for `codesOnly` calls. */
  topDistances: Float32Array;
}

/** One level of a beam: `width` prefixes of `level` codes per row, best first. */
export interface BeamLevel {
  level: number;
  width: number;
  /** n × width × level codes. */
  codes: Int32Array;
  /** n × width scores, ascending (see beam-graph.ts: squared distance for normWeight 1). */
  scores: Float32Array;
}

/** `beam()`'s answer: the beam per level, and the encoder's own codes (n × levels) for the same rows. */
export interface BeamResult {
  codes: Int32Array;
  levels: BeamLevel[];
}

/** One call's rows waiting for (or in) a worker run. */
export interface Chunk {
  id: number;
  data: Float32Array;
  n: number;
  /** Set for beam requests. */
  beam?: { width: number; normWeight: number };
  /** An encode that needs the codes alone (a 'codes' run). */
  codesOnly?: boolean;
  resolve: (r: EncodeResult | BeamResult) => void;
  reject: (e: Error) => void;
}

/** A worker's messages: its lane's (encoder-session.mjs) open outcome, start failure, and run replies. */
export type WorkerReply =
  | ({ type: 'ready' } & LaneOpened)
  | { type: 'init-error'; message: string }
  | LaneReply;

/** How a worker runs beams: one run of the merged model, two runs (encoder, beam.onnx), or not at all. */
export type BeamMode = 'native' | 'merged' | 'separate' | 'none';

/** Most chunks one run may serve. */
export const MAX_COALESCED = 64;

export function sameKind(a: Chunk, b: Chunk): boolean {
  if (!a.beam || !b.beam) return !a.beam && !b.beam && !a.codesOnly === !b.codesOnly;
  return a.beam.width === b.beam.width && a.beam.normWeight === b.beam.normWeight;
}

/** The request a run of `first`'s kind sends its lane (encoder-session.d.mts LaneRequest), less id, rows and n. */
export function runRequest(first: Chunk): { type: 'beam'; width: number; normWeight: number } | { type: 'encode' | 'codes' } {
  return first.beam ? { type: 'beam', ...first.beam } : { type: first.codesOnly ? 'codes' : 'encode' };
}

/** The encodes of consecutive row chunks (`n` rows in all) as one answer; top-M parts empty for codes-only calls. */
export function concatEncodes(parts: readonly EncodeResult[], n: number, levels: number, topM: number, codesOnly = false): EncodeResult {
  const tops = codesOnly ? 0 : n * levels * topM;
  return {
    codes: concatRows(parts.map((r) => r.codes), new Int32Array(n * levels)),
    topCodes: concatRows(parts.map((r) => r.topCodes), new Int32Array(tops)),
    topDistances: concatRows(parts.map((r) => r.topDistances), new Float32Array(tops)),
  };
}

/** Row-major parts, in row order, copied into `out`. */
export function concatRows<T extends Int32Array | Float32Array>(parts: readonly T[], out: T): T {
  let at = 0;
  for (const part of parts) out.set(part, (at += part.length) - part.length);
  return out;
}

/** Runs up to this many input bytes go through the shared buffer; larger ones get a buffer of their own, transferred. */
const SHARED_INPUT_MAX_BYTES = 16 << 20;

/**
 * One worker's input buffer: a run's rows are copied into it at dispatch (grown to the largest run so far, up to
 * SHARED_INPUT_MAX_BYTES), so a run allocates nothing and writes warm pages, and the message carries a view on it (a
 * SharedArrayBuffer: nothing transferred). A worker runs one run at a time, so the buffer is free at each dispatch.
 */
export class RunInput {
  #shared: SharedArrayBuffer | undefined;

  rows(run: readonly Chunk[]): Float32Array {
    const floats = run.reduce((a, c) => a + c.data.length, 0);
    const bytes = 4 * floats;
    if (bytes > SHARED_INPUT_MAX_BYTES) return concatRows(run.map((c) => c.data), new Float32Array(floats));
    if (this.#shared === undefined || this.#shared.byteLength < bytes) {
      this.#shared = new SharedArrayBuffer(Math.min(SHARED_INPUT_MAX_BYTES, Math.max(bytes, 2 * (this.#shared?.byteLength ?? 0), 64 << 10)));
    }
    return concatRows(run.map((c) => c.data), new Float32Array(this.#shared, 0, floats));
  }
}

/** The beams of consecutive row chunks (`n` rows in all, per-level widths `widths`) as one answer. */
export function concatBeams(parts: readonly BeamResult[], n: number, widths: readonly number[]): BeamResult {
  return {
    codes: concatRows(parts.map((r) => r.codes), new Int32Array(n * widths.length)),
    levels: widths.map((w, l) => ({
      level: l + 1,
      width: w,
      codes: concatRows(parts.map((r) => r.levels[l]!.codes), new Int32Array(n * w * (l + 1))),
      scores: concatRows(parts.map((r) => r.levels[l]!.scores), new Float32Array(n * w)),
    })),
  };
}

/** Row `row` of an n-row beam answer, as a one-row answer of views on it. */
export function beamRow(res: BeamResult, row: number): BeamResult {
  const L = res.levels.length;
  return {
    codes: res.codes.subarray(row * L, (row + 1) * L),
    levels: res.levels.map((lv) => ({
      level: lv.level,
      width: lv.width,
      codes: lv.codes.subarray(row * lv.width * lv.level, (row + 1) * lv.width * lv.level),
      scores: lv.scores.subarray(row * lv.width, (row + 1) * lv.width),
    })),
  };
}

/** Row `row` of an n-row encode answer (`levels` codes per row), as a one-row answer of views on it. */
export function encodeRow(res: EncodeResult, row: number, n: number, levels: number): EncodeResult {
  const tops = res.topCodes.length / n;
  return {
    codes: res.codes.subarray(row * levels, (row + 1) * levels),
    topCodes: res.topCodes.subarray(row * tops, (row + 1) * tops),
    topDistances: res.topDistances.subarray(row * tops, (row + 1) * tops),
  };
}

/**
 * A worker's packed beam answer for `n` rows (layout: src/numeric/beam-query-graph.ts) as views on its buffer:
 * int32 codes [n·L], then per level codes [n·B_l·l]; then float32 scores per level [n·B_l].
 */
export function unpackBeam(buffer: ArrayBuffer, n: number, width: number, codebookSizes: readonly number[]): BeamResult {
  const widths = beamWidths(width, codebookSizes);
  let at = n * codebookSizes.length;
  let scoresAt = 4 * widths.reduce((a, w, l) => a + n * w * (l + 1), at);
  const levels = widths.map((w, l) => {
    const codes = new Int32Array(buffer, 4 * at, n * w * (l + 1));
    const scores = new Float32Array(buffer, scoresAt, n * w);
    at += codes.length;
    scoresAt += scores.byteLength;
    return { level: l + 1, width: w, codes, scores };
  });
  if (scoresAt !== buffer.byteLength) throw new Error(`packed beam of ${buffer.byteLength} bytes, expected ${scoresAt}`);
  return { codes: new Int32Array(buffer, 0, n * codebookSizes.length), levels };
}

/** Settles every call of a run with its own rows of the worker's answer (all rejected on an error). */
export function resolveRun(run: readonly Chunk[], msg: Extract<WorkerReply, { type: 'result' | 'error' }>,
  codebookSizes: readonly number[], topM: number): void {
  if (msg.type === 'error') {
    for (const chunk of run) chunk.reject(new SidxError('SIDX_ERR_ENCODER', `encoder run failed: ${msg.message}`));
    return;
  }
  const levels = codebookSizes.length;
  const rows = <T extends Int32Array | Float32Array>(all: T, a: number, b: number, width: number): T =>
    (run.length === 1 ? all : all.slice(a * width, b * width)) as T;
  let all: BeamResult | undefined;
  if ('beam' in msg) {
    try {
      all = unpackBeam(msg.beam, run.reduce((n, c) => n + c.n, 0), run[0]!.beam!.width, codebookSizes);
    } catch (err) {
      for (const chunk of run) chunk.reject(new SidxError('SIDX_ERR_ENCODER', `encoder run failed: ${(err as Error).message}`));
      return;
    }
  }
  if (all && run.length === 1) return run[0]!.resolve(all);
  let a = 0;
  for (const chunk of run) {
    const b = a + chunk.n;
    if (all) {
      chunk.resolve({
        codes: rows(all.codes, a, b, levels),
        levels: all.levels.map((lv) => ({ ...lv, codes: rows(lv.codes, a, b, lv.width * lv.level), scores: rows(lv.scores, a, b, lv.width) })),
      });
    } else if (!('beam' in msg)) {
      chunk.resolve({
        codes: rows(msg.codes, a, b, levels), topCodes: rows(msg.topCodes, a, b, levels * topM),
        topDistances: rows(msg.topDistances, a, b, levels * topM),
      });
    }
    a = b;
  }
}

/**
 * Asks a worker to finish its in-flight run and release its ORT sessions (terminating under a pending run can
 * abort the process), then terminates it; after 10 s without an answer it is terminated anyway.
 */
export async function closeWorker(worker: Worker): Promise<void> {
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, 10_000);
    const done = () => (clearTimeout(timer), resolve());
    worker.on('message', (msg: { type?: string }) => msg?.type === 'closed' && done());
    worker.once('exit', done);
    worker.ref();
    worker.postMessage({ type: 'close' });
  });
  await worker.terminate();
}
