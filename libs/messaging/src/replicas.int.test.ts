// Streams and KV buckets on a real 3-node JetStream cluster: VOLBACK_STREAM_REPLICAS=3 creates
// or raises them to R3, and a service still configured for R1 never lowers them again.
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { GRANTS_BUCKET, STREAMS } from '@volback/contracts';
import { startNatsCluster, type NatsCluster } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  connectNats,
  drainNats,
  ensureKvBucket,
  ensureStreamsWithRetry,
  RestoreGrants,
  type NatsConnection,
} from './index.ts';

let cluster: NatsCluster;
let nc: NatsConnection;
let jsm: JetStreamManager;

const replicasOf = async (stream: string) => (await jsm.streams.info(stream)).config.num_replicas;
const volbackStreams = [STREAMS.events.name, STREAMS.commands.name];

beforeAll(async () => {
  cluster = await startNatsCluster();
  nc = await connectNats({ servers: [...cluster.urls], name: 'replicas-test', connectTimeoutMs: 10_000 });
  jsm = await jetstreamManager(nc, { timeout: 10_000 });
}, 120_000);
afterAll(async () => {
  if (nc) await drainNats(nc);
  await cluster?.destroy();
});

describe('replicas on a 3-node cluster', () => {
  it('streams: created at R1, raised to R3, never lowered by a service at R1', async () => {
    await ensureStreamsWithRetry(nc, { replicas: 1 });
    for (const name of volbackStreams) expect(await replicasOf(name)).toBe(1);
    await ensureStreamsWithRetry(nc, { replicas: 3 });
    for (const name of volbackStreams) expect(await replicasOf(name)).toBe(3);
    await ensureStreamsWithRetry(nc, { replicas: 1 });
    for (const name of volbackStreams) expect(await replicasOf(name)).toBe(3);
    // Every other setting still converges.
    await ensureStreamsWithRetry(nc, { replicas: 1, commandMaxAgeMs: 3_600_000 });
    const commands = await jsm.streams.info(STREAMS.commands.name);
    expect(commands.config.num_replicas).toBe(3);
    expect(commands.config.max_age).toBe(3_600_000 * 1_000_000);
  });

  it('KV buckets: created at the asked replicas, raised, never lowered, ttl kept', async () => {
    const bucket = `replicas_test_${Date.now()}`;
    await ensureKvBucket(nc, bucket, { replicas: 1, history: 1, ttl: 60_000 });
    expect(await replicasOf(`KV_${bucket}`)).toBe(1);
    const raised = await ensureKvBucket(nc, bucket, { replicas: 3, history: 1, ttl: 60_000 });
    expect(await replicasOf(`KV_${bucket}`)).toBe(3);
    await raised.put('k', 'v');
    const again = await ensureKvBucket(nc, bucket, { replicas: 1, history: 1, ttl: 5_000 });
    expect(await replicasOf(`KV_${bucket}`)).toBe(3);
    expect((await jsm.streams.info(`KV_${bucket}`)).config.max_age).toBe(60_000 * 1_000_000);
    expect((await again.get('k'))?.string()).toBe('v');
  });

  it('the restore grants bucket is created at the catalog’s replicas', async () => {
    const grants = new RestoreGrants(nc, { replicas: 3 });
    await grants.put('restore-r3', {
      hostId: 'host-1',
      snapshotId: 'a'.repeat(64),
      expiresAt: new Date(Date.now() + 60_000).toISOString(),
    });
    expect(await replicasOf(`KV_${GRANTS_BUCKET}`)).toBe(3);
    expect((await new RestoreGrants(nc).get('restore-r3'))?.hostId).toBe('host-1');
  });
});
