// Encoder worker: holds one onnxruntime-node InferenceSession for a bundle's encoder.onnx and runs encode requests
// sent by EncoderPool (src/tokenizer/encoder-pool.ts). Plain JavaScript on purpose: it needs no TypeScript loader,
// so it starts the same whether the parent runs under `node --import tsx` or tsx's register() API (bin/sidx.js).
//
// workerData: { encoderPath, beamPath?, beamQueryModel?: Uint8Array, provider: 'cpu'|'cuda', intraOpThreads,
//   inputDim, levels, topM, codebookSizes }
// -> { type: 'ready', provider, fallbackReason?, beamMode: 'merged'|'separate'|'none', beamFallbackReason? }
//  | { type: 'init-error', message }
// <- { type: 'encode', id, data: Float32Array (transferred), n }
// -> { type: 'result', id, codes: Int32Array, topCodes: Int32Array, topDistances: Float32Array } (all transferred)
//  | { type: 'error', id, message }
// <- { type: 'beam', id, data: Float32Array (transferred), n, width, normWeight }   (only with beamPath: beam.onnx)
// -> { type: 'result', id, beam: ArrayBuffer (transferred) }: the answer packed as src/numeric/beam-query-graph.ts
//    lays it out: int32 [n·L codes, then per level n·B_l·l prefix codes], then float32 [per level n·B_l scores].
//    On CPU the beam runs as one ORT run of beamQueryModel (encoder.onnx + beam.onnx merged by the pool), whose two
//    outputs are those halves; otherwise (CUDA encoder, or no merged model) as two runs packed here.
// <- { type: 'crash-next' } (tests only): the next encode or beam request kills the worker with an uncaught error.
// <- { type: 'close' }: finish in-flight runs, release the sessions, -> { type: 'closed' }.
import { parentPort, workerData } from 'node:worker_threads';
import ort from 'onnxruntime-node';

const { encoderPath, beamPath, beamQueryModel, provider, intraOpThreads, inputDim, levels, topM, codebookSizes } = workerData;
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

/**
 * int64 codes (small, non-negative) -> Int32Array by taking the low little-endian words; no BigInt per element.
 * Writes into `out` when given (its length must match).
 */
function lowWords(big, out = new Int32Array(big.length)) {
  const words = new Int32Array(big.buffer, big.byteOffset, big.length * 2);
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
  // The beam runs on CPU: its work per query is small and its TopK inputs are tiny. With a CPU encoder, one merged
  // session answers a beam query in one run; a CUDA encoder keeps the two runs (encoder on CUDA, beam on CPU).
  let beamQuery;
  let beamFallbackReason;
  if (beamQueryModel && active === 'cpu') {
    beamQuery = await ort.InferenceSession.create(beamQueryModel, sessionOptions('cpu'))
      .catch((err) => void (beamFallbackReason = oneLine(err)));
  }
  const beam = beamPath && !beamQuery ? await ort.InferenceSession.create(beamPath, sessionOptions('cpu')) : undefined;
  const beamMode = beamQuery ? 'merged' : beam ? 'separate' : 'none';
  return { session, beam, beamQuery, beamMode, active, fallbackReason, beamFallbackReason };
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

/** Where each part of a packed beam answer lies (see the header): int32 offsets, then the float32 scores' offsets. */
function beamLayout(n, width) {
  const widths = [];
  const codes = [n * levels];
  const scores = [];
  let prefixes = 1;
  let intAt = n * levels;
  let floatAt = 0;
  for (let l = 0; l < levels; l++) {
    const w = (prefixes = Math.min(width, prefixes * codebookSizes[l]));
    widths.push(w);
    codes.push((intAt += n * w * (l + 1)));
    scores.push((floatAt += n * w));
  }
  return { widths, codes, scores, ints: intAt, floats: floatAt };
}

// The scalar inputs' tensors, kept while the parameters repeat (most calls use the defaults): fewer small buffers.
const scalars = { width: Number.NaN, normWeight: Number.NaN, feeds: {} };
function beamFeeds(data, n, width, normWeight) {
  if (scalars.width !== width || !Object.is(scalars.normWeight, normWeight)) {
    Object.assign(scalars, { width, normWeight });
    scalars.feeds = {
      beam_width: new ort.Tensor('int64', BigInt64Array.of(BigInt(width)), [1]),
      norm_weight: new ort.Tensor('float32', Float32Array.of(normWeight), [1]),
    };
  }
  return { embedding: new ort.Tensor('float32', data, [n, inputDim]), ...scalars.feeds };
}

/** One run of the merged model; its two outputs are copied into the two halves of the packed answer. */
async function runBeamQuery(session, { data, n, width, normWeight }) {
  const { ints, floats } = beamLayout(n, width);
  const out = await session.run(beamFeeds(data, n, width, normWeight));
  const codes = out.packed_codes.data;
  const scores = out.packed_scores.data;
  if (codes.length !== ints || scores.length !== floats) {
    throw new Error(`beam query returned ${codes.length} codes and ${scores.length} scores, expected ${ints} and ${floats}`);
  }
  const buffer = new ArrayBuffer(4 * (ints + floats));
  new Int32Array(buffer, 0, ints).set(codes);
  new Float32Array(buffer, 4 * ints, floats).set(scores);
  return buffer;
}

/** The encoder run, then the beam.onnx run, packed into one buffer. */
async function runBeamSeparate(encoder, session, { data, n, width, normWeight }) {
  const { codes: own } = await runEncoder(encoder, data, n);
  const out = await session.run(beamFeeds(data, n, width, normWeight));
  const layout = beamLayout(n, width);
  const buffer = new ArrayBuffer(4 * (layout.ints + layout.floats));
  new Int32Array(buffer, 0, own.length).set(own);
  for (let l = 1; l <= levels; l++) {
    const codes = out[`beam_codes_${l}`];
    const scores = out[`beam_scores_${l}`];
    if (!codes || !scores || codes.dims[0] !== n || codes.dims[1] !== layout.widths[l - 1] || codes.dims[2] !== l) {
      throw new Error(`beam returned beam_codes_${l} [${codes?.dims}], expected [${n}, ${layout.widths[l - 1]}, ${l}]`);
    }
    const at = layout.codes[l - 1];
    lowWords(codes.data, new Int32Array(buffer, 4 * at, layout.codes[l] - at));
    new Float32Array(buffer, 4 * (layout.ints + (l > 1 ? layout.scores[l - 2] : 0)), scores.data.length).set(scores.data);
  }
  return buffer;
}

// The encoder's own codes come with the beam, in the same queue slot: retrieval gathers the query's own SID cell
// first (the beam's ranking may leave it out, or reach it only past the candidate cap).
async function runBeam(state, msg) {
  try {
    if (state.beamMode === 'none') throw new Error('the model bundle has no beam.onnx');
    const buffer = state.beamQuery ? await runBeamQuery(state.beamQuery, msg) : await runBeamSeparate(state.session, state.beam, msg);
    parentPort.postMessage({ type: 'result', id: msg.id, beam: buffer }, [buffer]);
  } catch (err) {
    parentPort.postMessage({ type: 'error', id: msg.id, message: oneLine(err) });
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
  const { active, fallbackReason, beamMode, beamFallbackReason } = ready;
  parentPort.postMessage({ type: 'ready', provider: active, fallbackReason, beamMode, beamFallbackReason });
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
    else if ((msg.type === 'encode' || msg.type === 'beam') && crashNext) setImmediate(() => { throw new Error('simulated encoder worker crash'); });
    else if (msg.type === 'encode') track(encode(ready.session, msg));
    else if (msg.type === 'beam') track(runBeam(ready, msg));
    else if (msg.type === 'close') {
      void Promise.allSettled([...inFlight])
        .then(() => Promise.allSettled([ready.session.release(), ready.beam?.release(), ready.beamQuery?.release()]))
        .then(() => parentPort.postMessage({ type: 'closed' }));
    }
  });
}
