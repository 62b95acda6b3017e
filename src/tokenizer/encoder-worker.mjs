// Encoder worker: holds one onnxruntime-node InferenceSession for a bundle's encoder.onnx and runs encode requests
// sent by EncoderPool (src/tokenizer/encoder-pool.ts). Plain JavaScript on purpose: it needs no TypeScript loader,
// so it starts the same whether the parent runs under `node --import tsx` or tsx's register() API (bin/sidx.js).
//
// workerData: { encoderPath, beamPath?, provider: 'cpu'|'cuda', intraOpThreads, inputDim, levels, topM }
// -> { type: 'ready', provider, fallbackReason? } | { type: 'init-error', message }
// <- { type: 'encode', id, data: Float32Array (transferred), n }
// -> { type: 'result', id, codes: Int32Array, topCodes: Int32Array, topDistances: Float32Array } (all transferred)
//  | { type: 'error', id, message }
// <- { type: 'beam', id, data: Float32Array (transferred), n, width, normWeight }   (only with beamPath: beam.onnx)
// -> { type: 'result', id, codes: Int32Array (the encoder's own n x levels codes), beam: [{ width, codes: Int32Array,
//      scores: Float32Array }, ... one per level] }
// <- { type: 'crash-next' } (tests only): the next encode request kills the worker with an uncaught error.
// <- { type: 'close' }: finish in-flight runs, release the sessions, -> { type: 'closed' }.
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';

const { encoderPath, beamPath, provider, intraOpThreads, inputDim, levels, topM } = workerData;
const OUT = { codes: 'codes', topCodes: 'top_codes', topDistances: 'top_distances' };

function sessionOptions(ep) {
  return {
    executionProviders: [ep],
    intraOpNumThreads: intraOpThreads,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    // Only the failure is interesting when probing CUDA; keep ORT's own error lines for real CPU sessions.
    logSeverityLevel: ep === 'cuda' ? 4 : 3,
  };
}

function oneLine(err) {
  // ORT messages can carry ANSI colour codes and several lines; keep the first meaningful line.
  const text = String(err && err.message ? err.message : err).replace(/\u001b\[[0-9;]*m/g, '');
  return text.split('\n').map((s) => s.trim()).filter(Boolean)[0] ?? 'unknown error';
}

/** Checks the session's declared inputs/outputs against the manifest; returns a problem or undefined. */
function checkSignature(session) {
  if (!session.inputNames.includes('embedding')) return `encoder input "embedding" missing (has ${session.inputNames})`;
  for (const name of Object.values(OUT)) {
    if (!session.outputNames.includes(name)) return `encoder output "${name}" missing (has ${session.outputNames})`;
  }
  const meta = (list, name) => list.find((m) => m.name === name);
  const input = meta(session.inputMetadata ?? [], 'embedding');
  const dimOk = (d, want) => typeof d !== 'number' || d === want;
  if (input?.shape && (input.shape.length !== 2 || !dimOk(input.shape[1], inputDim))) {
    return `encoder input "embedding" has shape [${input.shape}], manifest inputDim is ${inputDim}`;
  }
  const top = meta(session.outputMetadata ?? [], OUT.topCodes);
  if (top?.shape && (top.shape.length !== 3 || !dimOk(top.shape[1], levels) || !dimOk(top.shape[2], topM))) {
    return `encoder output "top_codes" has shape [${top.shape}], manifest says [N, ${levels}, ${topM}]`;
  }
  return undefined;
}

/** int64 codes (small, non-negative) -> Int32Array by taking the low little-endian words; no BigInt per element. */
function lowWords(big) {
  const words = new Int32Array(big.buffer, big.byteOffset, big.length * 2);
  const out = new Int32Array(big.length);
  for (let i = 0; i < out.length; i++) out[i] = words[2 * i];
  return out;
}

/** A Float32Array that owns its whole buffer (transferable); copies only when ORT's array is a view. */
function owned(f32) {
  return f32.byteOffset === 0 && f32.byteLength === f32.buffer.byteLength ? f32 : f32.slice();
}

async function init() {
  let session;
  let active = provider;
  let fallbackReason;
  try {
    session = await ort.InferenceSession.create(encoderPath, sessionOptions(provider));
  } catch (err) {
    if (provider === 'cpu') throw err;
    fallbackReason = oneLine(err);
    active = 'cpu';
    session = await ort.InferenceSession.create(encoderPath, sessionOptions('cpu'));
  }
  const problem = checkSignature(session);
  if (problem) throw new Error(problem);
  // The beam graph runs on CPU: its work per query is small and its TopK inputs are tiny.
  const beam = beamPath ? await ort.InferenceSession.create(beamPath, sessionOptions('cpu')) : undefined;
  return { session, beam, active, fallbackReason };
}

/** Runs the encoder; returns its codes as Int32Array plus its top-M outputs. */
async function runEncoder(session, data, n) {
  const out = await session.run({ embedding: new ort.Tensor('float32', data, [n, inputDim]) });
  const codes = out[OUT.codes];
  const topCodes = out[OUT.topCodes];
  if (codes.dims[0] !== n || codes.dims[1] !== levels || topCodes.dims[1] !== levels || topCodes.dims[2] !== topM) {
    throw new Error(`encoder returned codes [${codes.dims}] / top_codes [${topCodes.dims}], expected `
      + `[${n}, ${levels}] / [${n}, ${levels}, ${topM}]`);
  }
  return { codes: lowWords(codes.data), topCodes: lowWords(topCodes.data), topDistances: owned(out[OUT.topDistances].data) };
}

// The encoder's own codes come with the beam, in the same queue slot: retrieval gathers the query's own SID cell
// first (the beam's ranking may leave it out, or reach it only past the candidate cap).
async function runBeam(encoder, session, { id, data, n, width, normWeight }) {
  try {
    if (!session) throw new Error('the model bundle has no beam.onnx');
    const { codes: own } = await runEncoder(encoder, data, n);
    const out = await session.run({
      embedding: new ort.Tensor('float32', data, [n, inputDim]),
      beam_width: new ort.Tensor('int64', BigInt64Array.of(BigInt(width)), [1]),
      norm_weight: new ort.Tensor('float32', Float32Array.of(normWeight), [1]),
    });
    const beam = [];
    for (let l = 1; l <= levels; l++) {
      const codes = out[`beam_codes_${l}`];
      const scores = out[`beam_scores_${l}`];
      if (!codes || !scores || codes.dims[0] !== n || codes.dims[2] !== l) {
        throw new Error(`beam returned beam_codes_${l} [${codes?.dims}], expected [${n}, B, ${l}]`);
      }
      beam.push({ width: codes.dims[1], codes: lowWords(codes.data), scores: owned(scores.data) });
    }
    const transfer = [own.buffer, ...beam.flatMap((b) => [b.codes.buffer, b.scores.buffer])];
    parentPort.postMessage({ type: 'result', id, codes: own, beam }, transfer);
  } catch (err) {
    parentPort.postMessage({ type: 'error', id, message: oneLine(err) });
  }
}

async function encode(session, { id, data, n }) {
  try {
    const result = { type: 'result', id, ...(await runEncoder(session, data, n)) };
    parentPort.postMessage(result, [result.codes.buffer, result.topCodes.buffer, result.topDistances.buffer]);
  } catch (err) {
    parentPort.postMessage({ type: 'error', id, message: oneLine(err) });
  }
}

let ready;
try {
  ready = await init();
  parentPort.postMessage({ type: 'ready', provider: ready.active, fallbackReason: ready.fallbackReason });
} catch (err) {
  // No message listener is installed, so the worker ends on its own once this message is flushed.
  parentPort.postMessage({ type: 'init-error', message: oneLine(err) });
}

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
    else if (msg.type === 'encode' && crashNext) setImmediate(() => { throw new Error('simulated encoder worker crash'); });
    else if (msg.type === 'encode') track(encode(ready.session, msg));
    else if (msg.type === 'beam') track(runBeam(ready.session, ready.beam, msg));
    else if (msg.type === 'close') {
      void Promise.allSettled([...inFlight])
        .then(() => Promise.allSettled([ready.session.release(), ready.beam?.release()]))
        .then(() => parentPort.postMessage({ type: 'closed' }));
    }
  });
}
