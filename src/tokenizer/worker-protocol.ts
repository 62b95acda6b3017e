/**
 * The messages between EncoderPool (encoder-pool.ts) and its workers (encoder-worker.mjs, which documents each one),
 * and the close handshake.
 */
import type { Worker } from 'node:worker_threads';
import type { EncodeResult, Provider } from './encoder-pool.ts';

export type WorkerReply =
  | { type: 'ready'; provider: Provider; fallbackReason?: string }
  | { type: 'init-error'; message: string }
  | ({ type: 'result'; id: number } & EncodeResult)
  | { type: 'result'; id: number; codes: Int32Array; beam: Array<{ width: number; codes: Int32Array; scores: Float32Array }> }
  | { type: 'error'; id: number; message: string };

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
