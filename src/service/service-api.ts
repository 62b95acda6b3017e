/**
 * What the HTTP layer needs of a service: a single node's SidxService, or a cluster router (src/cluster/router.ts),
 * which offers the same surface over its shards (the registry and jobs in the cluster's KV bucket, the SID trie
 * routes merged from every shard). SIDX_ERR_CLUSTER_UNSUPPORTED stays for a route a router cannot serve; none is
 * left in this version (API keys work on a router: its own key store).
 */
import type { NextOutput, SidReads, SinceRef, TrieOutput } from './sid-reads.ts';
import type { SidxService } from './sidx-service.ts';
import type { JobView } from './job-view.ts';
import type { ModelView } from './lifecycle.ts';
import type { ItemView } from './types.ts';

type Surface = 'model' | 'metrics' | 'encoderQueueLength' | 'verifyKey' | 'ready' | 'readiness' | 'encode' | 'retrieve' | 'retrieveMany' | 'upsert' | 'delete'
  | 'registerModel' | 'activateModel' | 'startReindex' | 'cancelJob' | 'close';

export type ServiceApi = Pick<SidxService, Surface> & {
  readonly sids: Pick<SidReads, 'nextBinary' | 'binary'> & {
    next(prefixes: readonly (readonly number[])[], modelId?: string): NextOutput | Promise<NextOutput>;
    /** The ETag parts: "<version>.<seq>" (on a router: the registry version and a digest of the shards' tries). */
    tag(modelId?: string): ReturnType<SidReads['tag']> | Promise<ReturnType<SidReads['tag']>>;
    trie(modelId?: string, since?: SinceRef): TrieOutput | Promise<TrieOutput>;
  };
  getItem(id: string): ItemView | undefined | Promise<ItemView | undefined>;
  listModels(status?: string): ModelView[] | Promise<ModelView[]>;
  getJob(id: string): JobView | Promise<JobView>;
  /** A single node asks the HTTP layer whether the last requests came from several clients (one client from many). */
  useClientMix?(severalClients: () => boolean): void;
};
