/** Types of encoder-session.mjs (plain JavaScript, shared by the encoder worker and the pool's inline lane). */
import type { BeamMode, EncodeResult } from './worker-protocol.ts';

export interface LaneParams {
  encoderPath: string;
  beamPath?: string;
  /** The merged beam-query model, or with `nativeBeam` the latent query model (src/numeric/beam-query-graph.ts). */
  beamQueryModel?: Uint8Array;
  /** The beam runs in the addon (native/src/beam_search.h) over beam.onnx's codebooks (`dim` wide each). */
  nativeBeam?: { codebooks: Float32Array[]; dim: number; addonPath: string; crossNorms?: Float32Array[] };
  /** The encoder's codes alone (src/numeric/codes-model.ts), for 'codes' requests; without it they run encoder.onnx. */
  codesModel?: Uint8Array;
  provider: 'cpu' | 'cuda';
  intraOpThreads: number;
  /** false: ORT's intra-op threads sleep between runs instead of spinning (config encoder.spinWait). */
  spinWait?: boolean;
  inputDim: number;
  levels: number;
  topM: number;
  codebookSizes: readonly number[];
}

export interface LaneRequest {
  /** 'codes': an encode whose reply carries empty topCodes and topDistances. */
  type: 'encode' | 'codes' | 'beam';
  id: number;
  data: Float32Array;
  n: number;
  width?: number;
  normWeight?: number;
}

export type LaneReply =
  | ({ type: 'result'; id: number } & EncodeResult)
  | { type: 'result'; id: number; beam: ArrayBuffer }
  | { type: 'error'; id: number; message: string };

export interface LaneOpened {
  provider: 'cpu' | 'cuda';
  fallbackReason?: string;
  beamMode: BeamMode;
  beamFallbackReason?: string;
}

export interface EncoderLane {
  open(): Promise<LaneOpened>;
  /** Never rejects: a failed run answers with an 'error' reply. */
  run(msg: LaneRequest): Promise<LaneReply>;
  release(): Promise<unknown>;
}

export function encoderLane(params: LaneParams): EncoderLane;
export function oneLine(err: unknown): string;
