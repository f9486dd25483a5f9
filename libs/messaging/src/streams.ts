import {
  DiscardPolicy,
  jetstreamManager,
  JetStreamApiCodes,
  JetStreamApiError,
  RetentionPolicy,
  StorageType,
  type JetStreamManager,
  type StreamConfig,
  type StreamInfo,
} from '@nats-io/jetstream';
import { nanos, type NatsConnection } from '@nats-io/nats-core';
import { STREAMS } from '@volback/contracts';

/** Options of {@link ensureStreams}. */
export interface StreamOptions {
  /** 1 for a single server, 3 for a JetStream cluster (DESIGN.md §6). */
  replicas?: number;
  /** How long a `Nats-Msg-Id` is remembered for de-duplication (default 10 minutes). */
  duplicateWindowMs?: number;
  /** How long an unconsumed command waits for its consumer (default 7 days). */
  commandMaxAgeMs?: number;
}

/** The desired configuration of the streams. */
export function streamConfigs(options: StreamOptions = {}): (Partial<StreamConfig> & { name: string })[] {
  const common = {
    storage: StorageType.File,
    num_replicas: options.replicas ?? 1,
    duplicate_window: nanos(options.duplicateWindowMs ?? 10 * 60_000),
    discard: DiscardPolicy.Old,
    allow_atomic: true,
  };
  return [
    {
      ...common,
      name: STREAMS.events.name,
      subjects: [...STREAMS.events.subjects],
      description: 'volback events: every fact, one subject per aggregate (the system log)',
      retention: RetentionPolicy.Limits,
      // The event log is the source of truth for every projection: keep it all by default.
      max_age: 0,
      allow_direct: true,
    },
    {
      ...common,
      name: STREAMS.commands.name,
      subjects: [...STREAMS.commands.subjects],
      description: 'volback commands: work to do, each consumed once',
      retention: RetentionPolicy.Workqueue,
      max_age: nanos(options.commandMaxAgeMs ?? 7 * 24 * 3600_000),
    },
    {
      ...common,
      name: STREAMS.heartbeats.name,
      subjects: [...STREAMS.heartbeats.subjects],
      description: 'volback heartbeats: the last HostSeen of each host (liveness, not history)',
      retention: RetentionPolicy.Limits,
      // One per host: a heartbeat every 30 s replaces the last instead of growing a log.
      max_msgs_per_subject: 1,
      max_age: 0,
      allow_direct: true,
    },
  ];
}

/**
 * Creates the streams, or brings an existing stream's mutable settings in line (an update only
 * when they differ; replicas are raised, never lowered). Safe to call from every service at
 * start; concurrent callers converge.
 */
export async function ensureStreams(
  jsm: JetStreamManager,
  options: StreamOptions = {},
): Promise<StreamInfo[]> {
  const infos: StreamInfo[] = [];
  for (const config of streamConfigs(options)) {
    const name = config.name;
    let current: StreamInfo | undefined;
    try {
      current = await jsm.streams.info(name);
    } catch (error) {
      if (!(error instanceof JetStreamApiError && error.code === JetStreamApiCodes.StreamNotFound))
        throw error;
    }
    if (!current) {
      try {
        infos.push(await jsm.streams.add(config));
        continue;
      } catch (error) {
        // Another service created it between our info and add: fall through to update.
        current = await jsm.streams.info(name).catch(() => {
          throw error;
        });
      }
    }
    if (current.config.retention !== config.retention) {
      throw new Error(
        `stream ${name} exists with retention ${current.config.retention}, volback needs ${config.retention}; it cannot be changed in place`,
      );
    }
    const { retention: _r, storage: _s, ...wanted } = config;
    // Replicas only ever go up: an operator who raised a stream to R3 (or a service started with
    // VOLBACK_STREAM_REPLICAS=3) is never undone by a service still configured for R1.
    const mutable = {
      ...wanted,
      num_replicas: Math.max(wanted.num_replicas ?? 1, current.config.num_replicas),
    };
    const differs = Object.entries(mutable).some(
      ([key, value]) => JSON.stringify(current.config[key as keyof StreamConfig]) !== JSON.stringify(value),
    );
    // Only a change is sent: updating a stream is the admin's alone once NATS has identities,
    // and an identity that may not change it works with the stream as the admin set it up.
    if (!differs) infos.push(current);
    else infos.push(await jsm.streams.update(name, { ...current.config, ...mutable }).catch(keep(current)));
  }
  return infos;
}

/** True when NATS refused a request for lack of permission (the identity may not do it). */
export function isPermissionViolation(error: unknown): boolean {
  const names = [(error as Error).name, ((error as Error).cause as Error | undefined)?.name];
  return names.includes('PermissionViolationError');
}

/** Keeps `current` when the change was refused for lack of permission; rethrows anything else. */
function keep(current: StreamInfo): (error: unknown) => StreamInfo {
  return (error) => {
    if (isPermissionViolation(error)) return current;
    throw error;
  };
}

/**
 * {@link ensureStreams} with patience: a JetStream that is still starting (or electing a leader)
 * is asked again with a growing pause, up to `attempts` times, unless `stopping()` says to give up.
 */
export async function ensureStreamsWithRetry(
  nc: NatsConnection,
  options: StreamOptions & {
    readonly logger?: { warn(obj: object, msg?: string): void };
    readonly attempts?: number;
    readonly stopping?: () => boolean;
  } = {},
): Promise<void> {
  const { logger, attempts = 10, stopping = () => false, ...streamOptions } = options;
  for (let attempt = 1; ; attempt++) {
    try {
      await ensureStreams(await jetstreamManager(nc), streamOptions);
      return;
    } catch (error) {
      if (attempt >= attempts || stopping()) throw error;
      logger?.warn({ err: (error as Error).message, attempt }, 'JetStream not ready; retrying');
      await new Promise((resolve) => setTimeout(resolve, Math.min(5_000, 250 * 2 ** attempt)));
    }
  }
}
