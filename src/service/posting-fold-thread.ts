/**
 * The thread that folds large posting indexes (posting-index.ts, posting-fold.ts): a fold of a 1M-item index took
 * 0.1-0.5 s on the event loop (docs/benchmarks.md), and grows with the catalog. Here the event loop only copies the
 * dead-row bits and posts the runs (on SharedArrayBuffers: no copy), and swaps the folded run in when it comes back.
 * Started at the first fold, stopped by close(); its handle does not keep the process alive.
 */
import { Worker } from 'node:worker_threads';
import { repoUrl } from '../paths.ts';
import type { Directory } from './posting-directory.ts';
import type { Folded, FoldInput } from './posting-fold.ts';
import { runOf } from './posting-runs.ts';
import { WorkerCalls } from '../worker-calls.ts';

const WORKER_URL = repoUrl('src/service/posting-fold-worker.mjs');

type Reply =
  | { id: number; ok: true; main: { count: number; codes: Uint16Array; keys: BigInt64Array; rot: Int32Array[] }; dir: Directory | undefined }
  | { id: number; ok: false; message: string };

export class FoldThread {
  #worker: Worker | undefined;
  #calls = new WorkerCalls<Folded>();
  #closed = false;

  fold(input: FoldInput): Promise<Folded> {
    if (this.#closed) return Promise.reject(new Error('the fold thread is closed'));
    const worker = this.#start();
    return this.#calls.call((id) => {
      worker.postMessage({ id, input });
      worker.ref(); // while a fold is out, its answer is awaited
    });
  }

  async close(): Promise<void> {
    this.#closed = true;
    const worker = this.#worker;
    this.#worker = undefined;
    if (worker) await worker.terminate();
    this.#calls.failAll(new Error('the fold thread is closed'));
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    // Plain node flags: the bootstrap registers tsx itself (and the thread must not inherit e.g. --test).
    const worker = new Worker(WORKER_URL, { execArgv: [] });
    worker.on('message', (reply: Reply) => {
      const call = this.#calls.take(reply.id);
      if (this.#calls.size === 0) worker.unref();
      if (!call) return;
      if (!reply.ok) return call.reject(new Error(reply.message));
      const main = runOf(reply.main.count, reply.main.codes, reply.main.keys);
      main.rot = reply.main.rot;
      call.resolve({ main, dir: reply.dir });
    });
    worker.on('error', (err) => this.#calls.failAll(err));
    worker.on('exit', (code) => {
      if (this.#worker === worker) this.#worker = undefined;
      this.#calls.failAll(new Error(`the fold thread exited (code ${code})`));
    });
    worker.unref();
    this.#worker = worker;
    return worker;
  }
}
