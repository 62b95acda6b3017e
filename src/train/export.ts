/**
 * Export of a trained RQ-KMeans model as a model bundle (`model.json` + `encoder.onnx` + `beam.onnx`, see DESIGN.md
 * and src/tokenizer/bundle.ts), and the way back: the codebooks stored in an rqkmeans `encoder.onnx`.
 */
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile } from 'node:fs/promises';
import onnxProto from 'onnx-proto';
import { SidxError } from '../errors.ts';
import { BEAM_ENCODER_DIGEST_KEY, buildBeamGraph } from '../numeric/beam-graph.ts';
import { buildResidualEncoder } from '../numeric/residual-encoder.ts';
import { writeBundle, type ModelBundle, type ModelManifest, type TrainingInfo } from '../tokenizer/bundle.ts';
import type { RqKmeansModel } from './rqkmeans.ts';

export const DEFAULT_TOP_M = 8;
export const ENCODER_OPSET = 17;

/** What a bundle's manifest takes from its export options. */
export interface ManifestOptions {
  id: string;
  /** Top-M codes per level reported by the encoder (default 8, clipped to the smallest codebook). */
  topM?: number;
  training: TrainingInfo;
  metrics?: Record<string, unknown>;
  /** Retrieval metric recorded in the manifest (default 'ip'). */
  metric?: 'ip' | 'l2';
  /** The beam's prefix score weight recorded in the manifest (default: none, the service's rule by method and metric). */
  beamNormWeight?: number;
}

export interface ExportOptions extends ManifestOptions {
  dir: string;
  model: RqKmeansModel;
}

type ManifestModel = Pick<ModelManifest, 'method' | 'inputDim' | 'normalize' | 'latentDim' | 'opset'> & {
  codebookSizes: readonly number[];
};

/** A bundle manifest: `model` describes the codebooks, `opts` adds id, topM, metric and provenance. */
export function bundleManifest(model: ManifestModel, opts: ManifestOptions): ModelManifest {
  const manifest: ModelManifest = {
    id: opts.id,
    method: model.method,
    inputDim: model.inputDim,
    normalize: model.normalize,
    levels: model.codebookSizes.length,
    codebookSizes: [...model.codebookSizes],
    latentDim: model.latentDim,
    metric: opts.metric ?? 'ip',
    topM: Math.min(opts.topM ?? DEFAULT_TOP_M, ...model.codebookSizes),
    opset: model.opset,
    training: opts.training,
  };
  if (opts.beamNormWeight !== undefined) manifest.beamNormWeight = opts.beamNormWeight;
  if (opts.metrics !== undefined) manifest.metrics = opts.metrics;
  return manifest;
}

/** The manifest of an rqkmeans bundle (latentDim = inputDim: the codebooks live in the input space). */
export function rqkmeansManifest(opts: Omit<ExportOptions, 'dir'>): ModelManifest {
  const { model } = opts;
  return bundleManifest({
    method: 'rqkmeans', inputDim: model.dim, normalize: model.normalize, codebookSizes: model.codebookSizes,
    latentDim: model.dim, opset: ENCODER_OPSET,
  }, opts);
}

/** Builds encoder.onnx and beam.onnx (same codebooks) and writes the bundle into `opts.dir`. */
export async function exportRqKmeansBundle(opts: ExportOptions): Promise<ModelBundle> {
  const manifest = rqkmeansManifest(opts);
  const encoder = buildResidualEncoder({
    codebooks: opts.model.codebooks,
    dim: opts.model.dim,
    normalize: opts.model.normalize,
    topM: manifest.topM,
    opset: ENCODER_OPSET,
    metadata: { 'sidx.model_id': opts.id, 'sidx.method': 'rqkmeans' },
  });
  const beam = buildBeamGraph({
    codebooks: opts.model.codebooks,
    inputDim: opts.model.dim,
    normalize: opts.model.normalize,
    opset: ENCODER_OPSET,
    metadata: {
      'sidx.model_id': opts.id, 'sidx.method': 'rqkmeans',
      [BEAM_ENCODER_DIGEST_KEY]: createHash('sha256').update(encoder).digest('hex'),
    },
  });
  return writeBundle(opts.dir, manifest, encoder, undefined, beam);
}

/** sha256 (lowercase hex) of a file, streamed. */
export async function fileSha256(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Float32 initializers of a bundle's encoder.onnx, by name (copies; `dims` as stored). Only raw-data float32 tensors
 * are returned (all the exporters write); `accept` picks which names to read.
 */
export async function readEncoderInitializers(bundle: ModelBundle, accept: (name: string) => boolean):
  Promise<Map<string, { data: Float32Array; dims: number[] }>> {
  const { encoderPath } = bundle;
  let model: ReturnType<typeof onnxProto.onnx.ModelProto.decode>;
  try {
    model = onnxProto.onnx.ModelProto.decode(await readFile(encoderPath));
  } catch (err) {
    throw new SidxError('SIDX_ERR_MODEL_BUNDLE', `${encoderPath}: is not a readable ONNX model (${(err as Error).message})`, { field: 'encoder.onnx' });
  }
  const out = new Map<string, { data: Float32Array; dims: number[] }>();
  for (const t of model.graph?.initializer ?? []) {
    const raw = t.rawData;
    if (!accept(t.name ?? '') || t.dataType !== 1 || raw === undefined || raw === null || raw.length % 4 !== 0) continue;
    const data = new Float32Array(raw.length / 4);
    new Uint8Array(data.buffer).set(raw); // copy: raw may be unaligned inside the file buffer
    out.set(t.name!, { data, dims: (t.dims ?? []).map(Number) });
  }
  return out;
}

/**
 * The codebooks of an rqkmeans bundle, read back from the `codebook_<l>` initializers of its encoder.onnx
 * (written by buildResidualEncoder). Used to reconstruct embeddings from SIDs, e.g. for `sidx metrics`.
 */
export async function readRqKmeansModel(bundle: ModelBundle): Promise<RqKmeansModel> {
  const { manifest, encoderPath } = bundle;
  const fail = (msg: string) => new SidxError('SIDX_ERR_MODEL_BUNDLE', `${encoderPath}: ${msg}`, { field: 'encoder.onnx' });
  if (manifest.method !== 'rqkmeans') throw fail(`method is "${manifest.method}"; only rqkmeans codebooks can be read`);
  const dim = manifest.inputDim;
  const inits = await readEncoderInitializers(bundle, (name) => name.startsWith('codebook_'));
  const codebooks = manifest.codebookSizes.map((k, l) => {
    const tensor = inits.get(`codebook_${l}`);
    if (tensor === undefined) throw fail(`has no float32 raw-data initializer codebook_${l}`);
    if (tensor.data.length !== k * dim) throw fail(`codebook_${l} is not a float32 [${k}, ${dim}] tensor stored as raw data`);
    return tensor.data;
  });
  return { dim, normalize: manifest.normalize, codebookSizes: [...manifest.codebookSizes], codebooks };
}
