/**
 * The models an encoder pool derives for its workers, built once per pool from the bundle's encoder.onnx and
 * beam.onnx, in memory (the files and the bundle digest stay as they are): the beam-query model (for a native beam,
 * the latent query model plus beam.onnx's codebooks for the addon's BeamSearch; for 'merged', both graphs as one ORT
 * model, src/numeric/beam-query-graph.ts) and the codes-only encoder (src/numeric/codes-model.ts).
 */
import { readFileSync } from 'node:fs';
import { buildBeamQueryModel, buildLatentQueryModel } from '../numeric/beam-query-graph.ts';
import { buildCodesModel } from '../numeric/codes-model.ts';
import { addonPath } from '../native-addon.ts';
import type { ModelBundle } from './bundle.ts';

/** Lane parameters (encoder-session.d.mts): the model a CPU lane runs beams with, and the native beam's inputs. */
export interface BeamQuery {
  beamQueryModel: Uint8Array;
  nativeBeam?: { codebooks: Float32Array[]; dim: number; addonPath: string; crossNorms?: Float32Array[] };
}

/**
 * The beam query of `mode` from the bundle's encoder.onnx bytes (`encoder`) and its beam.onnx, or undefined (with a
 * 'warn' line saying why) when the two graphs cannot be merged.
 */
function loadBeamQuery(bundle: ModelBundle, encoder: Uint8Array, mode: 'native' | 'merged', log: (level: 'warn', msg: string) => void): BeamQuery | undefined {
  if (bundle.beamPath === undefined) return undefined;
  try {
    const beam = readFileSync(bundle.beamPath);
    const levels = bundle.manifest.levels;
    if (mode === 'merged') return { beamQueryModel: buildBeamQueryModel(encoder, beam, levels) };
    const { model, codebooks, dim, crossNorms } = buildLatentQueryModel(encoder, beam, levels);
    return { beamQueryModel: model, nativeBeam: { codebooks, dim, addonPath, crossNorms } };
  } catch (err) {
    log('warn', `beam queries take two ORT runs: encoder.onnx and beam.onnx cannot be merged: ${(err as Error).message}`);
    return undefined;
  }
}

/** The codes-only encoder of encoder.onnx's bytes, or undefined (with a 'warn' line saying why) when they allow none. */
function loadCodesModel(encoder: Uint8Array, log: (level: 'warn', msg: string) => void): Uint8Array | undefined {
  try {
    return buildCodesModel(encoder);
  } catch (err) {
    log('warn', `codes-only encodes run the whole encoder.onnx: ${(err as Error).message}`);
    return undefined;
  }
}

/** The models a pool's lanes run besides encoder.onnx (encoder-session.d.mts LaneParams), from one read of it. */
export type DerivedModels = Partial<BeamQuery> & { codesModel?: Uint8Array };

/** The beam query of `beamModel` (native and merged have one) and the codes-only encoder of the bundle. */
export function derivedModels(bundle: ModelBundle, beamModel: 'native' | 'merged' | 'separate' | 'none', log: (level: 'warn', msg: string) => void): DerivedModels {
  const encoder = readFileSync(bundle.encoderPath);
  const beam = beamModel === 'native' || beamModel === 'merged' ? loadBeamQuery(bundle, encoder, beamModel, log) : undefined;
  return { ...beam, codesModel: loadCodesModel(encoder, log) };
}
