/**
 * What travels between EncoderPool and its workers, and how one worker run serves several queued calls: calls of
 * the same kind are concatenated row-wise into one run, and the run's row-major results are cut back per call.
 */
import type { Worker } from 'node:worker_threads';
import { SidxError } from '../errors.ts';
import type { BeamLevel, EncodeResult, Provider } from './encoder-pool.ts';

export interface Chunk {
  id: number;
  data: Float32Array;
  n: number;
  /** Set for beam requests. */
  beam?: { width: number; normWeight: number };
  resolve: (r: EncodeResult | BeamLevel[]) => void;
  reject: (e: Error) => void;
}

export type WorkerReply =
  | { type: 'ready'; provider: Provider; fallbackReason?: string }
  | { type: 'init-error'; message: string }
  | ({ type: 'result'; id: number } & EncodeResult)
  | { type: 'result'; id: number; beam: Array<{ width: number; codes: Int32Array; scores: Float32Array }> }
  | { type: 'error'; id: number; message: string };

/** Most chunks one run may serve. */
export const MAX_COALESCED = 64;

export function sameKind(a: Chunk, b: Chunk): boolean {
  if (!a.beam || !b.beam) return !a.beam && !b.beam;
  return a.beam.width === b.beam.width && a.beam.normWeight === b.beam.normWeight;
}

export function concatRows(run: readonly Chunk[]): Float32Array {
  const out = new Float32Array(run.reduce((a, c) => a + c.data.length, 0));
  let offset = 0;
  for (const c of run) {
    out.set(c.data, offset);
    offset += c.data.length;
  }
  return out;
}

/** Settles every call of a run with its own rows of the worker's answer (all rejected on an error). */
export function resolveRun(run: readonly Chunk[], msg: Extract<WorkerReply, { type: 'result' | 'error' }>, levels: number, topM: number): void {
  if (msg.type === 'error') {
    for (const chunk of run) chunk.reject(new SidxError('SIDX_ERR_ENCODER', `encoder run failed: ${msg.message}`));
    return;
  }
  const rows = <T extends Int32Array | Float32Array>(all: T, a: number, b: number, width: number): T =>
    (run.length === 1 ? all : all.slice(a * width, b * width)) as T;
  let a = 0;
  for (const chunk of run) {
    const b = a + chunk.n;
    if ('beam' in msg) {
      chunk.resolve(msg.beam.map((lv, l) => ({
        level: l + 1, width: lv.width, codes: rows(lv.codes, a, b, lv.width * (l + 1)), scores: rows(lv.scores, a, b, lv.width),
      })));
    } else {
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
