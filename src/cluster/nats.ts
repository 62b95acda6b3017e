/** The NATS connection of a cluster node and the JetStream stream holding the write log (created when missing). */
import { jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Config } from '../config.ts';
import { SidxError } from '../errors.ts';
import { shardOfWriteSubject, WRITE_SUBJECTS } from './wire.ts';

export interface ClusterLink {
  nc: NatsConnection;
  jsm: JetStreamManager;
}

export async function connectCluster(c: Readonly<Config['cluster']>, name: string): Promise<ClusterLink> {
  let nc: NatsConnection;
  try {
    nc = await connect({ servers: c.url.split(',').map((s) => s.trim()), name, maxReconnectAttempts: -1 });
  } catch (err) {
    throw new SidxError('SIDX_ERR_CLUSTER', `cannot reach NATS at ${c.url}: ${(err as Error).message}`, { cause: err });
  }
  try {
    const jsm = await jetstreamManager(nc);
    try {
      await jsm.streams.info(c.stream);
    } catch {
      // File storage: a write acknowledged by JetStream is on its disk (and on `streamReplicas` servers).
      await jsm.streams.add({
        name: c.stream, subjects: [WRITE_SUBJECTS], storage: StorageType.File, retention: RetentionPolicy.Limits, num_replicas: c.streamReplicas,
      });
    }
    return { nc, jsm };
  } catch (err) {
    await nc.close();
    throw new SidxError('SIDX_ERR_CLUSTER', `JetStream stream ${c.stream} on ${c.url}: ${(err as Error).message}`, { cause: err });
  }
}

/**
 * How many shards the write log shows: one more than the highest shard whose subject holds a message (0 for an empty
 * log). What a cluster that has not recorded its shard count yet (one written before it did) has been run with, at
 * least.
 */
export async function shardsInLog(link: ClusterLink, stream: string): Promise<number> {
  const info = await link.jsm.streams.info(stream, { subjects_filter: WRITE_SUBJECTS });
  let shards = 0;
  for (const subject of Object.keys(info.state.subjects ?? {})) {
    const shard = shardOfWriteSubject(subject);
    if (Number.isSafeInteger(shard)) shards = Math.max(shards, shard + 1);
  }
  return shards;
}
