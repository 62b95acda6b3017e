/**
 * The merged beam-query model (src/numeric/beam-query-graph.ts) an encoder pool hands its CPU workers: built once
 * per pool from the bundle's encoder.onnx and beam.onnx, in memory (the files and the bundle digest stay as they are).
 */
import { readFileSync } from 'node:fs';
import { buildBeamQueryModel } from '../numeric/beam-query-graph.ts';
import type { ModelBundle } from './bundle.ts';

/** The merged model's bytes, or undefined (with a 'warn' line saying why) when the two graphs cannot be merged. */
export function loadBeamQueryModel(bundle: ModelBundle, log: (level: 'warn', msg: string) => void): Uint8Array | undefined {
  if (bundle.beamPath === undefined) return undefined;
  try {
    const encoder = readFileSync(bundle.encoderPath);
    const beam = readFileSync(bundle.beamPath);
    return buildBeamQueryModel(encoder, beam, bundle.manifest.levels);
  } catch (err) {
    log('warn', `beam queries take two ORT runs: encoder.onnx and beam.onnx cannot be merged: ${(err as Error).message}`);
    return undefined;
  }
}
