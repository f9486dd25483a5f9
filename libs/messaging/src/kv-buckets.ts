import type { NatsConnection } from '@nats-io/nats-core';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { Kvm, type KV, type KvOptions } from '@nats-io/kv';
import { isPermissionViolation } from './streams.ts';

/** Options of {@link ensureKvBucket}: those a volback bucket sets. */
export interface KvBucketOptions {
  /** 1 for a single server, 3 for a JetStream cluster (`VOLBACK_STREAM_REPLICAS`). */
  readonly replicas?: number;
  readonly history?: number;
  /** How long an entry lives, in milliseconds. */
  readonly ttl?: number;
}

/**
 * Opens KV bucket `name`, creating it when missing. A bucket that exists keeps its own settings,
 * except that its replicas are raised to `replicas` when fewer — never lowered, as for the streams
 * (`ensureStreams`). An identity that may not change the bucket's stream uses it as it is.
 */
export async function ensureKvBucket(
  nc: NatsConnection,
  name: string,
  options: KvBucketOptions = {},
): Promise<KV> {
  const kvm = new Kvm(nc);
  const replicas = options.replicas ?? 1;
  const settings: Partial<KvOptions> = { replicas };
  if (options.history !== undefined) settings.history = options.history;
  if (options.ttl !== undefined) settings.ttl = options.ttl;
  let kv: KV;
  try {
    // Also succeeds on a bucket that exists already, leaving its settings as they are.
    kv = await kvm.create(name, settings);
  } catch {
    // Created meanwhile with other settings: use it as it is.
    kv = await kvm.open(name);
  }
  const jsm = await jetstreamManager(nc, { timeout: 15_000 });
  const stream = `KV_${name}`;
  const info = await jsm.streams.info(stream);
  if (info.config.num_replicas < replicas) {
    try {
      await jsm.streams.update(stream, { ...info.config, num_replicas: replicas });
    } catch (error) {
      if (!isPermissionViolation(error)) throw error;
      return kv;
    }
    await replicasCurrent(jsm, stream, replicas);
  }
  return kv;
}

/**
 * Waits (up to `timeoutMs`) until `stream` has a leader and `replicas - 1` current followers: a
 * write right after the change may otherwise time out while the new peers catch up.
 */
async function replicasCurrent(
  jsm: JetStreamManager,
  stream: string,
  replicas: number,
  timeoutMs = 30_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const cluster = (await jsm.streams.info(stream)).cluster;
    const current = cluster?.replicas?.filter((peer) => peer.current).length ?? 0;
    if (cluster?.leader && current >= replicas - 1) return;
    if (Date.now() > deadline)
      throw new Error(`stream ${stream} has no leader with ${replicas - 1} current replicas yet`);
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
}
