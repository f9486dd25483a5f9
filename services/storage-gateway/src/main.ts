// The storage gateway process: configuration, logger and metrics, the ops endpoint, NATS, the
// repository, the data path and maintenance commands; graceful shutdown on SIGTERM/SIGINT.
import { inboxPrefix } from '@volback/contracts';
import {
  connectNats,
  drainNats,
  ensureStreamsWithRetry,
  natsHealthChecks,
  type NatsConnection,
} from '@volback/messaging';
import {
  createLogger,
  createMetrics,
  onShutdownSignals,
  startupCheck,
  startOpsServer,
  type OpsServer,
} from '@volback/observability';
import { openBackend, RepositoryErrorCode, type Backend, type RepositoryError } from '@volback/repository';
import { describeConfig, loadConfig } from './config.ts';
import { startGateway, type Gateway } from './gateway.ts';

const log = createLogger({ service: 'storage-gateway' });
/** Longest a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_TIMEOUT_MS = 30_000;
/** Repository errors a later attempt may not see (the storage is starting or briefly away). */
const TRANSIENT = new Set<string>([RepositoryErrorCode.BackendUnavailable, RepositoryErrorCode.NoSpace]);

let gateway: Gateway | undefined;
let ops: OpsServer | undefined;
let nc: NatsConnection | undefined;
let backend: Backend | undefined;

const shutdown = onShutdownSignals({
  logger: log,
  timeoutMs: SHUTDOWN_TIMEOUT_MS,
  // Stop taking requests, answer those in hand, write open packs, release locks; then leave NATS.
  async stop() {
    await gateway?.stop().catch((error: Error) => log.error({ err: error.message }, 'gateway stop failed'));
    await ops?.close();
    if (nc) await drainNats(nc);
    await backend?.close().catch(() => undefined);
  },
});

/** Tries again with backoff while `transient` says so (at most `maxAttempts` times). */
async function retrying<T>(
  what: string,
  attempt: () => Promise<T>,
  transient: (error: unknown) => boolean,
  maxAttempts = Infinity,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      if (shutdown.stopping || n >= maxAttempts || !transient(error)) throw error;
      const waitMs = Math.min(10_000, 250 * 2 ** Math.min(n, 6));
      log.warn(
        { err: (error as Error).message, attempt: n, retryInMs: waitMs },
        `${what}: not yet; retrying`,
      );
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }
}

async function main(): Promise<void> {
  const config = loadConfig();
  log.info({ config: describeConfig(config) }, 'configuration');
  const metrics = createMetrics({ service: 'storage-gateway' });
  // Not ready until every dependency has its own check: /readyz must not pass while they are awaited.
  const startup = startupCheck('connecting to NATS');
  ops = await startOpsServer({
    host: config.opsHost,
    port: config.opsPort,
    logger: log,
    registry: metrics.registry,
    checks: {
      readiness: [startup],
    },
  });

  nc = await connectNats({
    servers: [...config.natsServers],
    name: `volback-storage-gateway-${config.gatewayId}`,
    logger: log,
    ...config.natsAuth,
    inboxPrefix: inboxPrefix({ kind: 'service', service: 'gateway' }),
  });
  if (shutdown.stopping) return;
  const connection = nc;
  startup.step('creating the streams');
  await ensureStreamsWithRetry(connection, {
    replicas: config.streamReplicas,
    logger: log,
    stopping: () => shutdown.stopping,
  });
  for (const check of natsHealthChecks(connection)) ops.addCheck('readiness', check);

  // An unreachable storage is waited for (readiness says so); a wrong password or a missing
  // repository that may not be created is fatal.
  startup.step('opening the repository');
  backend = openBackend(config.repository);
  const storage = backend;
  gateway = await retrying(
    'the repository',
    () =>
      startGateway({
        nc: connection,
        backend: storage,
        password: config.password,
        init: config.initRepository,
        gatewayId: config.gatewayId,
        repositoryId: config.repositoryId,
        logger: log,
        metrics,
        sessionIdleMs: config.sessionIdleSeconds * 1000,
        idleFlushMs: config.idleFlushSeconds * 1000,
        streams: { replicas: config.streamReplicas },
      }),
    (error) => TRANSIENT.has((error as RepositoryError).code),
  );
  if (shutdown.stopping) {
    await gateway.stop();
    return;
  }
  for (const check of gateway.healthChecks()) ops.addCheck('readiness', check);
  startup.done();
  log.info(
    { gatewayId: config.gatewayId, repository: storage.location, nats: config.natsServers, ops: ops.url },
    'storage gateway ready',
  );
}

main().catch((error: Error & { code?: string }) => {
  // Messages of config and repository errors never hold the password.
  log.fatal({ code: error.code, err: error.message }, 'the storage gateway could not start');
  process.exit(1);
});
