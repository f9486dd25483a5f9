import type { NatsConnection } from '@nats-io/nats-core';
import type { KV } from '@nats-io/kv';
import { ensureKvBucket } from '@volback/messaging';
import { SCHEDULER_LEADER_BUCKET } from '@volback/contracts';
import type { Logger } from '@volback/observability';

/** The JetStream KV bucket the schedulers elect their leader in, and its key. */
export const LEADER_BUCKET = SCHEDULER_LEADER_BUCKET;
export const LEADER_KEY = 'leader';

/** Options of {@link startLeaderElection}. */
export interface LeaderElectionOptions {
  readonly nc: NatsConnection;
  /** This scheduler's name, written as the lease's value. */
  readonly instanceId: string;
  /** How long a lease lives without renewal: a dead leader is replaced within about this long. */
  readonly leaseMs: number;
  readonly logger: Logger;
  readonly replicas?: number;
  readonly bucket?: string;
  /** Called when this instance gains or loses the lease. */
  readonly onChange?: (leader: boolean) => void;
}

/** A running election. */
export interface LeaderElection {
  /** True while this instance holds an unexpired lease (by its own clock, with a safety margin). */
  isLeader(): boolean;
  /** Stops campaigning; a leader gives its lease up at once so a standby takes over without waiting. */
  stop(): Promise<void>;
}

/**
 * Leader election through JetStream KV: the lease is the key `leader` in a bucket whose entries
 * expire after `leaseMs` (the stream's max age). A candidate takes it with `create` (only when the
 * key holds nothing); the leader renews it every third of the lease with `update` at its last
 * revision (compare-and-set), so two instances can never both renew. A leader that cannot renew
 * steps down when its lease would have expired; a standby polls and takes over once the dead
 * leader's entry has expired.
 */
export async function startLeaderElection(options: LeaderElectionOptions): Promise<LeaderElection> {
  const log = options.logger.child({ component: 'leader-election', instanceId: options.instanceId });
  const bucket = options.bucket ?? LEADER_BUCKET;
  // An existing bucket keeps its lease ttl (another scheduler's); its replicas only ever go up.
  const kv: KV = await ensureKvBucket(options.nc, bucket, {
    ttl: options.leaseMs,
    history: 1,
    replicas: options.replicas ?? 1,
  });
  const value = () => JSON.stringify({ instanceId: options.instanceId, renewedAt: new Date().toISOString() });
  const intervalMs = Math.max(200, Math.floor(options.leaseMs / 3));
  // Step down a little before the server would let the lease expire: clocks and delays differ.
  const validMs = Math.max(intervalMs, options.leaseMs - intervalMs);
  let revision: number | undefined;
  let renewedAt = 0;
  let stopped = false;
  let leader = false;

  const setLeader = (now: boolean) => {
    if (now === leader) return;
    leader = now;
    log.info({ leader: now }, now ? 'became the leader' : 'no longer the leader');
    options.onChange?.(now);
  };

  const round = async () => {
    const started = Date.now();
    try {
      if (revision !== undefined) {
        revision = await kv.update(LEADER_KEY, value(), revision);
      } else {
        revision = await kv.create(LEADER_KEY, value());
      }
      renewedAt = started;
    } catch (error) {
      if (revision !== undefined) {
        log.warn({ err: (error as Error).message }, 'could not renew the lease');
        // Lost for good when someone else holds the key now; else retried until the lease runs out.
        const entry = await kv.get(LEADER_KEY).catch(() => null);
        if (entry && entry.operation === 'PUT' && entry.revision !== revision) revision = undefined;
      }
    }
    if (revision !== undefined && Date.now() - renewedAt >= validMs) revision = undefined;
    setLeader(revision !== undefined && Date.now() - renewedAt < validMs);
  };

  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> = Promise.resolve();
  const schedule = () => {
    if (stopped) return;
    timer = setTimeout(() => {
      running = round().finally(schedule);
    }, intervalMs);
  };
  running = round().finally(schedule);

  return {
    isLeader: () => leader && Date.now() - renewedAt < validMs,
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running.catch(() => undefined);
      if (revision !== undefined) {
        await kv.delete(LEADER_KEY, { previousSeq: revision }).catch(() => undefined);
        revision = undefined;
      }
      setLeader(false);
    },
  };
}
