// The storage gateway process: configuration, logger and metrics, the ops endpoint, NATS, the
// repository, the data path and maintenance commands; graceful shutdown on SIGTERM/SIGINT.
import { inboxPrefix } from '@volback/contracts';
import { openBackend, RepositoryErrorCode, type RepositoryError } from '@volback/repository';
import { runService, type ServiceProcess } from '@volback/runtime';
import { describeConfig, loadConfig } from './config.ts';
import { startGateway } from './gateway.ts';

/** Repository errors a later attempt may not see (the storage is starting or briefly away). */
const TRANSIENT = new Set<string>([RepositoryErrorCode.BackendUnavailable, RepositoryErrorCode.NoSpace]);

/** Tries again with backoff while `transient` says so (at most `maxAttempts` times). */
async function retrying<T>(
  service: ServiceProcess,
  what: string,
  attempt: () => Promise<T>,
  transient: (error: unknown) => boolean,
  maxAttempts = Infinity,
): Promise<T> {
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      if (service.stopping || n >= maxAttempts || !transient(error)) throw error;
      const waitMs = Math.min(10_000, 250 * 2 ** Math.min(n, 6));
      service.log.warn(
        { err: (error as Error).message, attempt: n, retryInMs: waitMs },
        `${what}: not yet; retrying`,
      );
      await new Promise((resolve) => setTimeout(resolve, waitMs));
    }
  }
}

runService({
  service: 'storage-gateway',
  // Messages of config and repository errors never hold the password.
  title: 'the storage gateway',
  shutdownTimeoutMs: 30_000,
  async start(service) {
    const { log } = service;
    const config = loadConfig();
    log.info({ config: describeConfig(config) }, 'configuration');
    const { ops, metrics, startup } = await service.startOps(config);
    const nc = await service.connectNats(config, {
      name: `volback-storage-gateway-${config.gatewayId}`,
      inboxPrefix: inboxPrefix({ kind: 'service', service: 'gateway' }),
    });
    if (!nc) return;

    // An unreachable storage is waited for (readiness says so); a wrong password or a missing
    // repository that may not be created is fatal.
    startup.step('opening the repository');
    const storage = openBackend(config.repository);
    // Closed once NATS is drained: the gateway may still write what it was sent until then.
    service.onClose(() => storage.close().catch(() => undefined));
    const gateway = await retrying(
      service,
      'the repository',
      () =>
        startGateway({
          nc,
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
    if (service.stopping) {
      await gateway.stop();
      return;
    }
    // Stop taking requests, answer those in hand, write open packs, release locks; then leave NATS.
    service.onStop(() =>
      gateway.stop().catch((error: Error) => log.error({ err: error.message }, 'gateway stop failed')),
    );
    for (const check of gateway.healthChecks()) ops.addCheck('readiness', check);
    startup.done();
    log.info(
      { gatewayId: config.gatewayId, repository: storage.location, nats: config.natsServers, ops: ops.url },
      'storage gateway ready',
    );
  },
});
