// Encoder worker: holds one encoder lane (encoder-session.mjs: the onnxruntime-node sessions of a bundle) and runs
// the encode and beam requests sent by EncoderPool (src/tokenizer/encoder-pool.ts). Plain JavaScript on purpose: it
// needs no TypeScript loader, so it starts the same whether the parent runs under `node --import tsx` or tsx's
// register() API (bin/sidx.js).
//
// workerData: { nice?: niceness added to this thread (and so to the ORT threads its sessions start), encoderPath, beamPath?, beamQueryModel?: Uint8Array, nativeBeam?, codesModel?: Uint8Array, provider: 'cpu'|'cuda', intraOpThreads,
//   inputDim, levels, topM, codebookSizes }
// -> { type: 'ready', provider, fallbackReason?, beamMode: 'native'|'merged'|'separate'|'none', beamFallbackReason? }
//  | { type: 'init-error', message }
// <- { type: 'encode', id, data: Float32Array (on the pool slot's SharedArrayBuffer, or transferred), n }
// -> { type: 'result', id, codes: Int32Array, topCodes: Int32Array, topDistances: Float32Array } (all transferred)
//  | { type: 'error', id, message }
// <- { type: 'codes', ... as encode }: the codes alone (codesModel when given), topCodes and topDistances empty.
// <- { type: 'beam', id, data: Float32Array (shared or transferred, as for encode), n, width, normWeight }   (only with beamPath: beam.onnx)
// -> { type: 'result', id, beam: ArrayBuffer (transferred) }: the answer packed as src/numeric/beam-query-graph.ts
//    lays it out: int32 [n·L codes, then per level n·B_l·l prefix codes], then float32 [per level n·B_l scores].
//    On CPU the beam runs as one ORT run of beamQueryModel (with nativeBeam: the encoder's codes and the latent, then
//    the addon's BeamSearch; else encoder.onnx + beam.onnx merged, whose two outputs are those halves); otherwise
//    (CUDA encoder, or no such model) as two ORT runs packed here.
// <- { type: 'crash-next' } (tests only): the next encode or beam request kills the worker with an uncaught error.
// <- { type: 'close' }: finish in-flight runs, release the sessions, -> { type: 'closed' }.
import { parentPort, workerData } from 'node:worker_threads';
import { encoderLane, oneLine } from './encoder-session.mjs';
import { lowerThreadPriority } from '../thread-priority.mjs';

lowerThreadPriority(workerData.nice ?? 0); // before the sessions start their threads, which inherit it

const lane = encoderLane(workerData);
let ready = false;
try {
  const opened = await lane.open();
  parentPort.postMessage({ type: 'ready', ...opened });
  ready = true;
} catch (err) {
  // No message listener is installed, so the worker ends on its own once this message is flushed.
  parentPort.postMessage({ type: 'init-error', message: oneLine(err) });
}

// ORT takes no tensor over a SharedArrayBuffer: rows sent in the pool's shared buffer are copied into this one, kept
// between runs (the pool sends this worker one run at a time), so a run allocates nothing.
let rows = new Float32Array(0);
function ownRows(data) {
  if (!(data.buffer instanceof SharedArrayBuffer)) return data;
  if (rows.length < data.length) rows = new Float32Array(Math.max(data.length, 2 * rows.length));
  const view = rows.subarray(0, data.length);
  view.set(data);
  return view;
}

/** Runs one request and posts its reply, the result's arrays transferred. */
async function answer(msg) {
  const reply = await lane.run({ ...msg, data: ownRows(msg.data) });
  const transfer = reply.type !== 'result' ? [] : reply.beam ? [reply.beam] : [reply.codes.buffer, reply.topCodes.buffer, reply.topDistances.buffer];
  parentPort.postMessage(reply, transfer);
}

const RUNS = new Set(['encode', 'codes', 'beam']);

if (ready) {
  let crashNext = false;
  // Runs still in flight: a worker must not be torn down under a pending ORT run (its completion callback
  // would land in a dead environment and abort the process), so 'close' waits for them first.
  const inFlight = new Set();
  const track = (promise) => {
    inFlight.add(promise);
    void promise.finally(() => inFlight.delete(promise));
  };
  parentPort.on('message', (msg) => {
    if (msg.type === 'crash-next') crashNext = true;
    else if (RUNS.has(msg.type) && crashNext) setImmediate(() => { throw new Error('simulated encoder worker crash'); });
    else if (RUNS.has(msg.type)) track(answer(msg));
    else if (msg.type === 'close') {
      void Promise.allSettled([...inFlight])
        .then(() => lane.release())
        .then(() => parentPort.postMessage({ type: 'closed' }));
    }
  });
}
