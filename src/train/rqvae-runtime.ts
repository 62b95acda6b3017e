/**
 * ONNX Runtime plumbing for the RQ-VAE trainer: session creation, and the inference graphs run over a whole
 * data set in row chunks (latents for the codebook initialisation; codes and reconstructions for evaluation).
 * `run()` blocks the thread; the trainer is an offline job, so that is accepted here (the service runs its
 * encoders in worker threads). Chunks are never empty (ORT 1.30 CPU TopK crashes on 0 rows).
 */
import ort from 'onnxruntime-node';
import { ENCODER_INPUT, ENCODER_OUTPUTS } from '../numeric/residual-encoder.ts';
import {
  buildLatentGraph, buildVaeDecoder, buildVaeEncoder, DECODER_INPUT, DECODER_OUTPUT, LATENT_OUTPUT, type TrainedModel,
} from './rqvae-export-graphs.ts';

/** Upper bound on chunk rows x largest codebook (distance matrix floats) per run. */
const MAX_MATRIX_FLOATS = 1 << 23;

export async function createSession(bytes: Uint8Array, threads?: number): Promise<ort.InferenceSession> {
  return ort.InferenceSession.create(bytes, {
    executionProviders: ['cpu'],
    intraOpNumThreads: threads ?? 0,
    interOpNumThreads: 1,
    executionMode: 'sequential',
    graphOptimizationLevel: 'all',
    logSeverityLevel: 3,
    // Sinkhorn kernels hold exp(-large) values: denormal floats would make every pass over them many times slower.
    extra: { session: { set_denormal_as_zero: process.env.SIDX_DENORMAL === '0' ? '0' : '1' } },
  });
}

function chunkRows(model: TrainedModel): number {
  return Math.max(64, Math.floor(MAX_MATRIX_FLOATS / Math.max(...model.shape.codebookSizes)));
}

async function runChunks(session: ort.InferenceSession, input: string, data: Float32Array | BigInt64Array,
  width: number, rows: number, consume: (out: ort.InferenceSession.OnnxValueMapType, start: number, end: number) => void):
  Promise<void> {
  const n = data.length / width;
  for (let start = 0; start < n; start += rows) {
    const end = Math.min(n, start + rows);
    const slice = data.subarray(start * width, end * width);
    const tensor = slice instanceof BigInt64Array
      ? new ort.Tensor('int64', slice, [end - start, width])
      : new ort.Tensor('float32', slice, [end - start, width]);
    consume(await session.run({ [input]: tensor }), start, end);
  }
}

/** Encoder latents z of every row (n x latentDim). */
export async function latentsOf(model: TrainedModel, data: Float32Array, threads?: number): Promise<Float32Array> {
  const { inputDim, latentDim } = model.shape;
  const session = await createSession(buildLatentGraph(model), threads);
  const out = new Float32Array((data.length / inputDim) * latentDim);
  try {
    await runChunks(session, ENCODER_INPUT, data, inputDim, 8192, (o, start) => {
      out.set(o[LATENT_OUTPUT]!.data as Float32Array, start * latentDim);
    });
  } finally {
    await session.release();
  }
  return out;
}

/** Inference-mode (argmin) codes of every row, from exactly the encoder.onnx the bundle gets: n x L Int32. */
export async function encodeAll(model: TrainedModel, data: Float32Array, threads?: number,
  encoderBytes = buildVaeEncoder(model, 1)): Promise<Int32Array> {
  const { inputDim } = model.shape;
  const levels = model.shape.codebookSizes.length;
  const session = await createSession(encoderBytes, threads);
  const codes = new Int32Array((data.length / inputDim) * levels);
  try {
    await runChunks(session, ENCODER_INPUT, data, inputDim, chunkRows(model), (o, start) => {
      const c = o[ENCODER_OUTPUTS.codes]!.data as BigInt64Array;
      for (let i = 0; i < c.length; i++) codes[start * levels + i] = Number(c[i]);
    });
  } finally {
    await session.release();
  }
  return codes;
}

/** Decoder reconstructions (n x inputDim) of n x L codes. */
export async function decodeAll(model: TrainedModel, codes: Int32Array, threads?: number,
  decoderBytes = buildVaeDecoder(model)): Promise<Float32Array> {
  const levels = model.shape.codebookSizes.length;
  const { inputDim } = model.shape;
  const session = await createSession(decoderBytes, threads);
  const out = new Float32Array((codes.length / levels) * inputDim);
  try {
    await runChunks(session, DECODER_INPUT, BigInt64Array.from(codes, (c) => BigInt(c)), levels, 8192, (o, start) => {
      out.set(o[DECODER_OUTPUT]!.data as Float32Array, start * inputDim);
    });
  } finally {
    await session.release();
  }
  return out;
}
