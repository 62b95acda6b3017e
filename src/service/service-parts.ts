/** The parts a SidxService is made of (sidx-service.ts), and its open options. */
import type { Config } from '../config.ts';
import type { Catalog } from '../store/catalog.ts';
import type { ControlPlane } from '../store/control-plane.ts';
import type { DataDirLock } from '../store/data-dir-lock.ts';
import type { ModelBundle } from '../tokenizer/bundle.ts';
import type { EncoderPool } from '../tokenizer/encoder-pool.ts';
import type { CodeLayout } from './code-layout.ts';
import type { LivePostings } from './live-postings.ts';
import type { SidxMetrics } from './metrics.ts';
import type { ActiveModel, EncoderUse } from './model-space.ts';
import type { Logger, VectorState } from './vector-state.ts';

export interface Parts {
  config: Readonly<Config>;
  log: Logger;
  control: ControlPlane;
  catalog: Catalog;
  pool: EncoderPool;
  bundle: ModelBundle;
  vectors: VectorState;
  postings: LivePostings;
  /** The codes' layout in SID order (code-layout.ts), where there is one. */
  layout: CodeLayout | null;
  model: ActiveModel;
  dataDir: string;
  metrics: SidxMetrics;
  ownMetrics: boolean;
  lock: DataDirLock;
}

export interface OpenOptions {
  /** Shared with the HTTP app (`sidx serve`); default: a registry of the service's own. */
  metrics?: SidxMetrics;
  /** Names this process in the data directory's lock (a second one is refused with it); default 'sidx'. */
  command?: string;
  /**
   * Postings a new catalog keeps in LMDB (store/catalog.ts): default 'natural' under the in-memory posting index, which
   * keeps its own rotations, else 'all'. An existing catalog keeps its layout.
   */
  postingRotations?: 'natural' | 'all';
  /**
   * false: the SID tries (store/sid-occupancy.ts) are not built at open and no write updates them; an offline load
   * (`sidx index`) that never reads them. Default true.
   */
  sidTries?: boolean;
  /** What the served model's encoder pool is for (model-space.ts EncoderUse): default 'serve'; `sidx eval` 'batch', `sidx index` 'index'. */
  encoderUse?: EncoderUse;
  /**
   * true: a catalog served by another model than model.dir's is refused (SIDX_ERR_CONFLICT) before the rest opens,
   * instead of served with a warning; `sidx index`, whose --model must be the catalog's.
   */
  refuseOtherModel?: boolean;
}
