import type { NatsConnection } from '@nats-io/nats-core';
import {
  MessagePublisher,
  RestoreGrants,
  type RunningConsumer,
  type StreamOptions,
} from '@volback/messaging';
import type { HealthCheck, Logger, Metrics } from '@volback/observability';
import {
  formatChunkerPolynomial,
  randomIrreduciblePolynomial,
  Repository,
  RepositoryErrorCode,
  type Backend,
  type RepositoryError,
  type RepositoryOptions,
} from '@volback/repository';
import { DataPathAccess } from './adapters/data-path-access.ts';
import { startDataPathServer, type DataPathServer } from './adapters/data-path-server.ts';
import { createGatewayMetrics, type GatewayMetrics } from './adapters/gateway-metrics.ts';
import { GatewayRepository } from './adapters/gateway-repository.ts';
import { startMaintenanceConsumer } from './adapters/maintenance-consumer.ts';

/** What {@link startGateway} needs. */
export interface GatewayOptions {
  readonly nc: NatsConnection;
  /** Where the repository lives; the gateway does not close it. */
  readonly backend: Backend;
  /** The repository password; never logged, never sent. */
  readonly password: string;
  /** Create the repository when the location holds none (default false). */
  readonly init?: boolean;
  /** This gateway's name in flush answers, events and logs. */
  readonly gatewayId: string;
  /** The repository id requests and commands must name (default `default`). */
  readonly repositoryId?: string;
  readonly logger: Logger;
  readonly metrics?: Metrics;
  /** Release a session's lock this long after its last request (default 60 s). */
  readonly sessionIdleMs?: number;
  /** Write open packs this long after the last stored blob (default 3 s). */
  readonly idleFlushMs?: number;
  /**
   * Run forget, prune and check commands from `VOLBACK_COMMANDS` (default true, durable
   * `storage-gateway`). Tests that share a NATS server pass false or their own durable name.
   */
  readonly maintenance?: boolean | { readonly durable?: string; readonly ackWaitMs?: number };
  /** Tuning of the repository handles (pack size, worker threads). */
  readonly repositoryOptions?: RepositoryOptions;
  /** Settings the streams are recreated with if they are deleted under the service. */
  readonly streams?: StreamOptions;
}

/** A running storage gateway. */
export interface Gateway {
  readonly gatewayId: string;
  readonly repositoryId: string;
  /** The restic repository config id. */
  readonly repositoryConfigId: string;
  /** Readiness check `repository-reachable`: the storage answers. */
  healthChecks(): HealthCheck[];
  /**
   * Graceful stop: stops taking requests and commands (other gateways take them), answers those
   * in hand, writes open packs and their index, releases the session locks.
   */
  stop(): Promise<void>;
  /**
   * Stops at once as a crash would: requests in hand are dropped and open packs are not written
   * (their blobs are lost; commits report them missing). Session locks are removed.
   */
  abort(): Promise<void>;
}

/** Opens the repository, creating it first when asked to and the location holds none. */
async function openOrInit(options: GatewayOptions, log: Logger): Promise<Repository> {
  const repoOptions = options.repositoryOptions ?? {};
  try {
    return await Repository.open(options.backend, options.password, repoOptions);
  } catch (error) {
    if (!options.init || (error as RepositoryError).code !== RepositoryErrorCode.NotARepository) throw error;
  }
  try {
    const created = await Repository.init(options.backend, options.password, {
      ...repoOptions,
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
    });
    await created.close();
    log.info({ location: options.backend.location, version: created.version }, 'created the repository');
  } catch (error) {
    // Another gateway created it first: open theirs.
    if ((error as RepositoryError).code !== RepositoryErrorCode.AlreadyExists) throw error;
  }
  // Open again rather than keep the new handle: when two gateways create it at once, the config
  // of one of them wins, and opening finds the key that fits it.
  return Repository.open(options.backend, options.password, repoOptions);
}

/**
 * Starts a storage gateway on an open NATS connection: opens (or creates) the repository, serves
 * the data path in the gateways' queue group, and runs maintenance commands. Throws when the
 * repository cannot be opened (wrong password, unreachable storage: a `RepositoryError`).
 */
export async function startGateway(options: GatewayOptions): Promise<Gateway> {
  const log = options.logger.child({ gatewayId: options.gatewayId });
  const repositoryId = options.repositoryId ?? 'default';
  let opened = false;
  const open = async () => {
    const repo = opened
      ? await Repository.open(options.backend, options.password, options.repositoryOptions ?? {})
      : await openOrInit(options, log);
    opened = true;
    return repo;
  };

  const counted: { metrics?: GatewayMetrics | undefined } = {};
  const gatewayStore = await GatewayRepository.open({
    open,
    logger: log,
    ...(options.sessionIdleMs !== undefined ? { sessionIdleMs: options.sessionIdleMs } : {}),
    ...(options.idleFlushMs !== undefined ? { idleFlushMs: options.idleFlushMs } : {}),
    onFlush: (packs) => counted.metrics?.packs.inc(packs),
  });
  // Registered only once the repository is open: a caller that retries a failed open (main.ts,
  // while the storage is away) would otherwise register the metrics twice.
  const metrics = options.metrics && createGatewayMetrics(options.metrics, () => gatewayStore.sessionCount);
  counted.metrics = metrics;

  // Maintenance gets a handle of its own, opened on first use: prune repacks through the
  // handle's packers, which must not hold the data path's pending blobs.
  let maintenanceRepo: Promise<Repository> | undefined;
  const maintenanceRepository = () => {
    maintenanceRepo ??= open().catch((error: unknown) => {
      maintenanceRepo = undefined;
      throw error;
    });
    return maintenanceRepo;
  };

  const closeMaintenance = async () => {
    const repo = await maintenanceRepo?.catch(() => undefined);
    await repo?.close().catch(() => undefined);
  };

  const server: DataPathServer = startDataPathServer({
    nc: options.nc,
    store: gatewayStore,
    access: new DataPathAccess({ repository: gatewayStore, grants: new RestoreGrants(options.nc) }),
    gatewayId: options.gatewayId,
    repositoryId,
    logger: log,
    ...(metrics ? { metrics } : {}),
  });
  let consumer: RunningConsumer | undefined;
  try {
    // The server has the subscriptions once it answers a ping: only then is this gateway serving.
    await options.nc.flush();
    if (options.maintenance !== false) {
      const settings = typeof options.maintenance === 'object' ? options.maintenance : {};
      consumer = await startMaintenanceConsumer({
        nc: options.nc,
        publisher: new MessagePublisher(options.nc),
        repository: maintenanceRepository,
        repositoryId,
        gatewayId: options.gatewayId,
        logger: log,
        ...(metrics ? { metrics } : {}),
        ...(settings.durable ? { durable: settings.durable } : {}),
        ...(settings.ackWaitMs ? { ackWaitMs: settings.ackWaitMs } : {}),
        ...(options.streams ? { streams: options.streams } : {}),
      });
    }
  } catch (error) {
    server.abort();
    await gatewayStore.abandon();
    await closeMaintenance();
    throw error;
  }

  log.info(
    {
      repositoryId,
      location: options.backend.location,
      version: gatewayStore.config.version,
      maintenance: consumer !== undefined,
    },
    'storage gateway started',
  );

  let stopping: Promise<void> | undefined;
  return {
    gatewayId: options.gatewayId,
    repositoryId,
    repositoryConfigId: gatewayStore.config.id,
    healthChecks: () => [
      {
        name: 'repository-reachable',
        async check() {
          try {
            await gatewayStore.ping();
            return { ok: true, detail: options.backend.location };
          } catch (error) {
            return { ok: false, detail: `${options.backend.location}: ${(error as Error).message}` };
          }
        },
      },
    ],
    stop() {
      stopping ??= (async () => {
        log.info('stopping: no new requests');
        await Promise.all([server.stop(), consumer?.stop()]);
        await gatewayStore.close();
        await closeMaintenance();
        log.info('stopped');
      })();
      return stopping;
    },
    abort() {
      stopping ??= (async () => {
        server.abort();
        await Promise.all([gatewayStore.abandon(), consumer?.stop()]);
        await closeMaintenance();
      })();
      return stopping;
    },
  };
}
