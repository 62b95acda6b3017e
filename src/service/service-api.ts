/**
 * What the HTTP layer needs of a service: a single node's SidxService, or a cluster router (src/cluster/router.ts),
 * which offers the same surface over its shards and answers SIDX_ERR_CLUSTER_UNSUPPORTED where it cannot yet.
 */
import type { NextOutput, SidReads } from './sid-reads.ts';
import type { SidxService } from './sidx-service.ts';
import type { ItemView } from './types.ts';

type Surface = 'model' | 'metrics' | 'encoderQueueLength' | 'verifyKey' | 'readiness' | 'encode' | 'retrieve' | 'upsert' | 'delete'
  | 'listModels' | 'registerModel' | 'activateModel' | 'startReindex' | 'getJob' | 'cancelJob' | 'close';

export type ServiceApi = Pick<SidxService, Surface> & {
  readonly sids: Pick<SidReads, 'model' | 'nextBinary' | 'tag' | 'trie' | 'binary'> & {
    next(prefixes: readonly (readonly number[])[], modelId?: string): NextOutput | Promise<NextOutput>;
  };
  getItem(id: string): ItemView | undefined | Promise<ItemView | undefined>;
};
