/**
 * What the HTTP layer needs of a service: a single node's SidxService, or a cluster router (src/cluster/router.ts),
 * which offers the same surface over its shards (the registry and jobs in the cluster's KV bucket) and answers
 * SIDX_ERR_CLUSTER_UNSUPPORTED where it cannot (GET /v1/sids/trie, API keys).
 */
import type { NextOutput, SidReads } from './sid-reads.ts';
import type { SidxService } from './sidx-service.ts';
import type { JobView } from './job-view.ts';
import type { ModelView } from './lifecycle.ts';
import type { ItemView } from './types.ts';

type Surface = 'model' | 'metrics' | 'encoderQueueLength' | 'verifyKey' | 'readiness' | 'encode' | 'retrieve' | 'upsert' | 'delete'
  | 'registerModel' | 'activateModel' | 'startReindex' | 'cancelJob' | 'close';

export type ServiceApi = Pick<SidxService, Surface> & {
  readonly sids: Pick<SidReads, 'model' | 'nextBinary' | 'tag' | 'trie' | 'binary'> & {
    next(prefixes: readonly (readonly number[])[], modelId?: string): NextOutput | Promise<NextOutput>;
  };
  getItem(id: string): ItemView | undefined | Promise<ItemView | undefined>;
  listModels(status?: string): ModelView[] | Promise<ModelView[]>;
  getJob(id: string): JobView | Promise<JobView>;
};
