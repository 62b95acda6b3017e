/**
 * Export of a trained RQ-VAE / VQ-VAE as a model bundle: model.json (method rqvae | vqvae, latentDim = the
 * encoder's output width), encoder.onnx (same contract as RQ-KMeans: codes + top-M codes and latent-space
 * distances per level), decoder.onnx (SID codes -> reconstructed embedding) and beam.onnx (the level-wise beam in
 * the latent space, for `expand: "beam"`). See rqvae-export-graphs.ts.
 */
import { createHash } from 'node:crypto';
import { BEAM_ENCODER_DIGEST_KEY } from '../numeric/beam-graph.ts';
import { writeBundle, type ModelBundle, type ModelManifest } from '../tokenizer/bundle.ts';
import { bundleManifest, type ManifestOptions } from './export.ts';
import { buildVaeBeam, buildVaeDecoder, buildVaeEncoder, EXPORT_OPSET, type TrainedModel } from './rqvae-export-graphs.ts';

export interface VaeExportOptions extends ManifestOptions {
  dir: string;
  method: 'rqvae' | 'vqvae';
  model: TrainedModel;
}

export function vaeManifest(opts: Omit<VaeExportOptions, 'dir'>): ModelManifest {
  const { shape, normalize } = opts.model;
  return bundleManifest({
    method: opts.method, inputDim: shape.inputDim, normalize, codebookSizes: shape.codebookSizes,
    latentDim: shape.latentDim, opset: EXPORT_OPSET,
  }, opts);
}

/** Builds encoder.onnx and decoder.onnx from the trained parameters and writes the bundle into `opts.dir`. */
export async function exportVaeBundle(opts: VaeExportOptions): Promise<ModelBundle> {
  const manifest = vaeManifest(opts);
  const metadata = { 'sidx.model_id': opts.id, 'sidx.method': opts.method };
  const encoder = buildVaeEncoder(opts.model, manifest.topM, metadata);
  const decoder = buildVaeDecoder(opts.model, metadata);
  const beam = buildVaeBeam(opts.model, {
    ...metadata, [BEAM_ENCODER_DIGEST_KEY]: createHash('sha256').update(encoder).digest('hex'),
  });
  return writeBundle(opts.dir, manifest, encoder, decoder, beam);
}
