/** How a job is shown by the API (GET /v1/jobs/{id}): status and progress from the control plane, rate and ETA. */
import { SidxError } from '../errors.ts';
import type { ControlPlane } from '../store/control-plane.ts';

export interface Stability {
  /** Items with a SID in both models at the report. */
  compared: number;
  changed: number;
  unchanged: number;
  /** Items without a SID in the target (encoded during the drop phase instead). */
  missing: number;
}

export interface JobView {
  id: string;
  kind: string;
  status: string;
  phase: string | null;
  model: string | null;
  fromModel: string | null;
  processed: number;
  total: number | null;
  itemsPerSecond: number | null;
  etaSeconds: number | null;
  error: string | null;
  stability: Stability | null;
  mappingFile: string | null;
  createdAt: string;
  updatedAt: string;
  /** A cluster re-index (GET /v1/jobs/{id} on a router): each shard replica's local job. */
  shards?: ReplicaJobView[];
}

export interface ReplicaJobView {
  shard: number;
  replica: string;
  status: string;
  phase: string | null;
  processed: number;
  total: number | null;
  /** Built: waits at (or is past) its swap. */
  ready: boolean;
  /** Serves the job's model. */
  swapped: boolean;
  error: string | null;
  updatedAt: string;
}

/** A job as the API shows it; `rate` gives items/s and ETA while this process runs it; a finished job shows its encode phase's rate. */
export function jobView(control: ControlPlane, id: string, rate?: { since: number; processed: number }, processedNow?: number): JobView {
  const row = control.getJob(id);
  if (!row) throw new SidxError('SIDX_ERR_JOB_NOT_FOUND', `no job ${JSON.stringify(id)}`, { field: 'id' });
  const state = control.jobState.get(id)!;
  const params = state.params as { fromModel?: string };
  const result = state.result as { stability?: Stability; mappingFile?: string | null; encodeItemsPerSecond?: number | null };
  let itemsPerSecond: number | null = null;
  let etaSeconds: number | null = null;
  const processed = processedNow ?? row.processed;
  if (rate && row.status === 'running') {
    const seconds = (performance.now() - rate.since) / 1000;
    if (seconds > 0.05 && processed > rate.processed) {
      itemsPerSecond = (processed - rate.processed) / seconds;
      etaSeconds = row.total !== null ? Math.max(0, row.total - processed) / itemsPerSecond : null;
    }
  } else if (row.status !== 'running' && state.phase === 'done') {
    // Finished (also after a restart): the rate its encode phase ran at, recorded when that phase ended.
    itemsPerSecond = result.encodeItemsPerSecond ?? null;
  }
  return {
    id, kind: row.kind, status: row.status, phase: state.phase, model: row.modelId, fromModel: params.fromModel ?? null,
    processed, total: row.total, itemsPerSecond, etaSeconds, error: row.error,
    stability: result.stability ?? null, mappingFile: result.mappingFile ?? null, createdAt: row.createdAt, updatedAt: row.updatedAt,
  };
}
