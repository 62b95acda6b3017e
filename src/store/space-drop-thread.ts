/**
 * The thread that runs a re-index's drop batches (KeySpaces.dropAfterOffThread). Before it, each batch's reads and
 * writes ran on the main thread inside lmdb-js's async transaction, and requests (even /healthz) waited behind
 * them: p99 several times the one outside a drop. Here the main thread only posts the request and, after the
 * synced commit, publishes the dropped space's SID count changes to its tries. Started at the first batch,
 * stopped by close() (the catalog's close waits for it, before closing its own handles).
 */
import { Worker } from 'node:worker_threads';
import { SidxError, type ErrorCode } from '../errors.ts';
import { repoUrl } from '../paths.ts';
import type { DropBatch, DropRequest } from './catalog-spaces.ts';
import type { CountChange } from './sid-occupancy.ts';
import { WorkerCalls } from '../worker-calls.ts';

const WORKER_URL = repoUrl('src/store/space-drop-worker.mjs');
/** Added to the drop thread's niceness (Linux; at most 19): requests come first on a busy host. */
const DROP_THREAD_NICE = 10;

export type DropThreadBatch = DropBatch & { changes: CountChange[] };

type Reply = { id: number; ok: true; result: DropThreadBatch | null } | { id: number; ok: false; message: string; code?: string };

export class SpaceDropThread {
  #dir: string;
  #mapSizeBytes: number | undefined;
  #worker: Worker | undefined;
  #ready: Promise<void> | undefined;
  #calls = new WorkerCalls<DropThreadBatch | null>();

  constructor(dir: string, mapSizeBytes?: number) {
    this.#dir = dir;
    this.#mapSizeBytes = mapSizeBytes;
  }

  async run(req: DropRequest): Promise<DropThreadBatch | null> {
    await this.#start();
    return this.#calls.call((id) => this.#worker!.postMessage({ id, req }));
  }

  /** `run` for KeySpaces: checks the catalog is open first, and hands each batch's count changes to `publish`. */
  runner(assertOpen: () => void, publish: (changes: CountChange[]) => void): (req: DropRequest) => Promise<DropBatch | null> {
    return async (req) => {
      assertOpen();
      const batch = await this.run(req);
      if (batch) publish(batch.changes);
      return batch;
    };
  }

  #start(): Promise<void> {
    this.#ready ??= new Promise<void>((resolve, reject) => {
      // Plain node flags: the bootstrap registers tsx itself (and the thread must not inherit e.g. --test).
      const worker = new Worker(WORKER_URL, { execArgv: [], workerData: { dir: this.#dir, mapSizeBytes: this.#mapSizeBytes, nice: DROP_THREAD_NICE } });
      this.#worker = worker;
      worker.on('message', (msg: Reply | { ready: true }) => {
        if ('ready' in msg) return resolve();
        const call = this.#calls.take(msg.id);
        if (!call) return;
        if (msg.ok) call.resolve(msg.result);
        else call.reject(new SidxError((msg.code?.startsWith('SIDX_ERR_') ? msg.code : 'SIDX_ERR_STORE') as ErrorCode, `dropSpace: ${msg.message}`));
      });
      const fail = (err: Error) => {
        reject(err);
        this.#calls.failAll(new SidxError('SIDX_ERR_STORE', `drop thread stopped: ${err.message}`, { cause: err }));
        this.#worker = undefined;
        this.#ready = undefined;
      };
      worker.on('error', fail);
      worker.on('exit', (code) => fail(new Error(`exited with code ${code}`)));
    });
    return this.#ready;
  }

  /** Stops the thread after its current batch; its handles are closed before this resolves. */
  async close(): Promise<void> {
    const worker = this.#worker;
    if (!worker) return;
    const exited = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
    worker.postMessage('close');
    await exited;
  }
}
