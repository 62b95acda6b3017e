/** The NATS connection of a cluster node and the JetStream stream holding the write log (created when missing). */
import { jetstreamManager, RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import type { Config } from '../config.ts';
import { SidxError } from '../errors.ts';

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
        name: c.stream, subjects: ['sidx.writes.>'], storage: StorageType.File, retention: RetentionPolicy.Limits, num_replicas: c.streamReplicas,
      });
    }
    return { nc, jsm };
  } catch (err) {
    await nc.close();
    throw new SidxError('SIDX_ERR_CLUSTER', `JetStream stream ${c.stream} on ${c.url}: ${(err as Error).message}`, { cause: err });
  }
}
