// The ORT sessions of one encoder lane and their runs, shared by the encoder worker (encoder-worker.mjs) and the pool's
// inline lane (inline-lane.ts). Plain JavaScript for the worker's sake (no TypeScript loader there); types in
// encoder-session.d.mts. `params`: { encoderPath, beamPath?, beamQueryModel?: Uint8Array, nativeBeam?, codesModel?: Uint8Array,
// provider: 'cpu'|'cuda', intraOpThreads, inputDim, levels, topM, codebookSizes }. Replies follow the worker protocol (encoder-worker.mjs).
import { createRequire } from 'node:module';
import ort from 'onnxruntime-node';

// The native beam's C_j C_l^T tables, at most (as beam-graph.ts's default): above it each level runs an sgemm.
const LUT_MAX_BYTES = 64 << 20;

export function oneLine(err) {
  // ORT messages can carry ANSI colour codes and several lines; keep the first meaningful line.
  const text = String(err && err.message ? err.message : err).replace(/\u001b\[[0-9;]*m/g, '');
  return text.split('\n').map((s) => s.trim()).filter(Boolean)[0] ?? 'unknown error';
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

/** One lane's sessions and runs: `open()` once, then `run(request)` for each encode or beam request. */
export function encoderLane(params) {
  const { encoderPath, beamPath, beamQueryModel, nativeBeam, provider, intraOpThreads, spinWait, inputDim, levels, topM, codebookSizes } = params;
  let { codesModel } = params;
  const OUT = { codes: 'codes', topCodes: 'top_codes', topDistances: 'top_distances' };

  function sessionOptions(ep) {
    return {
      executionProviders: [ep],
      intraOpNumThreads: intraOpThreads,
      interOpNumThreads: 1,
      executionMode: 'sequential',
      graphOptimizationLevel: 'all',
      // encoder.spinWait false: ORT's intra-op threads sleep between runs instead of spinning (no effect with one).
      ...(spinWait === false ? { extra: { session: { intra_op: { allow_spinning: '0' } } } } : {}),
      // Only the failure is interesting when probing CUDA; keep ORT's own error lines for real CPU sessions.
      logSeverityLevel: ep === 'cuda' ? 4 : 3,
    };
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
    // With nativeBeam, beamQueryModel is the latent query model (beam-query-graph.ts) and the beam runs in the addon.
    let search;
    if (beamQuery && nativeBeam) {
      try {
        const { BeamSearch } = createRequire(import.meta.url)(nativeBeam.addonPath);
        search = new BeamSearch(nativeBeam.codebooks, nativeBeam.dim, LUT_MAX_BYTES, nativeBeam.crossNorms);
      } catch (err) {
        beamFallbackReason = oneLine(err);
        await beamQuery.release();
        beamQuery = undefined;
      }
    }
    const beam = beamPath && !beamQuery ? await ort.InferenceSession.create(beamPath, sessionOptions('cpu')) : undefined;
    const beamMode = search ? 'native' : beamQuery ? 'merged' : beam ? 'separate' : 'none';
    return { session, beam, beamQuery, search, beamMode, active, fallbackReason, beamFallbackReason };
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

  /**
   * The codes alone, from the codes-only model (src/numeric/codes-model.ts) when the lane has one: its session opens on
   * the first such run, on the encoder's provider. Without one, the whole encoder runs and its top-M is dropped.
   */
  async function runCodes(state, data, n) {
    if (codesModel && !state.codes) {
      // A model this ORT refused would leave these runs on the whole encoder, as without one.
      state.codes = ort.InferenceSession.create(codesModel, sessionOptions(state.active)).catch(() => null);
      codesModel = undefined; // the session holds what it needs
    }
    const session = await state.codes;
    const codes = session ? await runCodesModel(session, data, n) : (await runEncoder(state.session, data, n)).codes;
    return { codes, topCodes: new Int32Array(0), topDistances: new Float32Array(0) };
  }

  async function runCodesModel(session, data, n) {
    const codes = (await session.run({ embedding: new ort.Tensor('float32', data, [n, inputDim]) }))[OUT.codes];
    if (codes.dims[0] !== n || codes.dims[1] !== levels) throw new Error(`codes model returned [${codes.dims}], expected [${n}, ${levels}]`);
    return lowWords(codes.data);
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

  /** One run of the latent query model, then the addon's beam over its latent, written into the packed answer. */
  async function runBeamNative(session, search, { data, n, width, normWeight }) {
    const { ints, floats } = beamLayout(n, width);
    const out = await session.run({ embedding: new ort.Tensor('float32', data, [n, inputDim]) });
    const own = out.query_codes.data;
    const z = out.query_latent.data;
    if (own.length !== n * levels || z.length !== n * search.dim) {
      throw new Error(`latent query returned ${own.length} codes and ${z.length} latent floats, expected ${n * levels} and ${n * search.dim}`);
    }
    const buffer = new ArrayBuffer(4 * (ints + floats));
    new Int32Array(buffer, 0, own.length).set(own);
    // With the encoder's quantizer outputs (beam-query-graph.ts crossNorms) the addon reads no codebook.
    const cross = nativeBeam?.crossNorms ? Array.from({ length: levels }, (_, l) => out[`query_cross_${l}`]?.data) : undefined;
    const crossArgs = cross && cross.every((c) => c instanceof Float32Array) ? [own, cross] : [];
    search.search(z, n, width, normWeight, new Int32Array(buffer, 4 * own.length, ints - own.length), new Float32Array(buffer, 4 * ints, floats), ...crossArgs);
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
    if (state.beamMode === 'none') throw new Error('the model bundle has no beam.onnx');
    const buffer = state.search ? await runBeamNative(state.beamQuery, state.search, msg)
      : state.beamQuery ? await runBeamQuery(state.beamQuery, msg) : await runBeamSeparate(state.session, state.beam, msg);
    return { type: 'result', id: msg.id, beam: buffer };
  }

  let state;
  return {
    /** Creates the sessions; resolves to { provider, fallbackReason?, beamMode, beamFallbackReason? }. */
    async open() {
      state = await init();
      const { active, fallbackReason, beamMode, beamFallbackReason } = state;
      return { provider: active, fallbackReason, beamMode, beamFallbackReason };
    },
    /** Answers an encode or beam request with its 'result' reply, or an 'error' reply; never throws. */
    async run(msg) {
      try {
        if (msg.type === 'beam') return await runBeam(state, msg);
        if (msg.type === 'codes') return { type: 'result', id: msg.id, ...(await runCodes(state, msg.data, msg.n)) };
        return { type: 'result', id: msg.id, ...(await runEncoder(state.session, msg.data, msg.n)) };
      } catch (err) {
        return { type: 'error', id: msg.id, message: oneLine(err) };
      }
    },
    release() {
      return Promise.allSettled([state?.session.release(), state?.beam?.release(), state?.beamQuery?.release(), state?.codes?.then((c) => c?.release())]);
    },
  };
}

