// The local stack behind `npm start`: a NATS server with JetStream (unless VOLBACK_NATS_URL names
// one), the volback streams, a storage gateway on a filesystem repository in the data dir, the
// scheduler, the catalog, and an agent on the local Docker Engine (when one answers), each as its
// own process; the stack's health and metrics endpoints. Stops everything on SIGINT/SIGTERM.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { inboxPrefix, STREAMS } from '@volback/contracts';
import {
  freePort,
  restartOnExit,
  runService,
  startNatsServer,
  Supervisor,
  type NatsServer,
} from '@volback/runtime';
import { ConfigError, readConfig } from './config.ts';
import { natsIdentityEnv, stackSecrets } from './secrets.ts';
import { dockerAnswers, STACK_SERVICES, STOP_ORDER } from './services.ts';

async function portIsFree(port: number): Promise<boolean> {
  if (port === 0) return true;
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

// The same bootstrap as the services' (@volback/runtime): on SIGINT/SIGTERM the services stop
// (group by group), then the ops endpoint, the stack's NATS connection, and last the NATS server.
runService({
  service: 'local-stack',
  title: 'the local stack',
  // Each service stops within its own limit, one group after the other.
  shutdownTimeoutMs: 120_000,
  async start(service) {
    const { log } = service;
    const config = readConfig();
    // The password goes into the secrets file (first start); no process the stack starts (NATS, a
    // service) inherits it in its environment.
    delete process.env['VOLBACK_PASSWORD'];
    delete process.env['VOLBACK_PASSWORD_FILE'];
    await mkdir(config.dataDir, { recursive: true, mode: 0o700 });
    const withAgent = await dockerAnswers(config.dockerHost);
    // Secure by default: TLS and an identity per service on the NATS the stack starts.
    const secrets = await stackSecrets(config.dataDir, config.password, withAgent, log);
    const identity = (seedFile: string): Record<string, string> =>
      config.natsServers ? {} : natsIdentityEnv(secrets, seedFile);

    let natsUrl = config.natsServers?.join(',');
    if (!natsUrl) {
      if (!(await portIsFree(config.natsPort))) {
        throw new ConfigError(
          'VOLBACK_NATS_PORT',
          `port ${config.natsPort} on 127.0.0.1 is in use: set VOLBACK_NATS_PORT to another port, or VOLBACK_NATS_URL to use that NATS`,
        );
      }
      // The same port and store on every (re)start: the services reconnect to it and find their
      // streams and consumers where they were.
      const natsOptions = {
        dataDir: join(config.dataDir, 'nats'),
        port: config.natsPort || (await freePort()),
        serverName: 'volback-local',
        ownProcessGroup: true,
        configFile: secrets.natsConfig,
      };
      let nats: NatsServer = await startNatsServer(natsOptions);
      natsUrl = nats.url;
      log.info({ url: natsUrl, pid: nats.pid, log: nats.logFile }, 'NATS server started');
      // The stack started this NATS, so it keeps it running, and stops it after everything else.
      restartOnExit(nats, {
        name: 'NATS server',
        log,
        start: () => startNatsServer(natsOptions),
        stopping: () => service.stopping,
        onRestart: (again) => (nats = again),
        describe: (again) => ({ url: again.url }),
      });
      service.onClose(() => nats.stop());
    }

    // Ready means every service ready: failing until each one's /readyz passed once (then each is
    // checked on every probe).
    const { ops, startup } = await service.startOps({ opsHost: '127.0.0.1', opsPort: config.opsPort });
    const nc = await service.connectNats(
      {
        natsServers: config.natsServers ?? [natsUrl],
        natsAuth: config.natsServers ? {} : { nkeyFile: secrets.seed('admin'), caFile: secrets.caFile },
        streamReplicas: 1,
      },
      { name: 'volback-local-stack', inboxPrefix: inboxPrefix({ kind: 'admin' }), connectTimeoutMs: 30_000 },
    );
    if (!nc || service.stopping) return;
    startup.step('starting the services');

    const services = new Supervisor(log, STACK_SERVICES, STOP_ORDER);
    service.onStop(() => services.stop());
    const repository = join(config.dataDir, 'repository');
    const opsPort = async () => String(await freePort());
    // No secret in a service's environment: the password and seeds are files (an inherited
    // VOLBACK_PASSWORD is cleared).
    services.start('storage-gateway', {
      VOLBACK_NATS_URL: natsUrl,
      ...identity(secrets.seed('gateway')),
      VOLBACK_REPOSITORY: repository,
      VOLBACK_PASSWORD_FILE: secrets.repositoryPassword,
      VOLBACK_PASSWORD: '',
      VOLBACK_REPOSITORY_INIT: '1',
      VOLBACK_OPS_PORT: await opsPort(),
    });
    // A volume that appears is backed up within seconds here (the scheduler's own default is a
    // minute); every other default is the scheduler's (protect every volume, daily).
    services.start('scheduler', {
      VOLBACK_NATS_URL: natsUrl,
      ...identity(secrets.seed('scheduler')),
      VOLBACK_PASSWORD: '',
      VOLBACK_SCHEDULER_FIRST_BACKUP_DELAY_SECONDS: config.firstBackupDelaySeconds,
      VOLBACK_OPS_PORT: await opsPort(),
    });
    services.start('catalog', {
      VOLBACK_NATS_URL: natsUrl,
      ...identity(secrets.seed('catalog')),
      VOLBACK_DATA_DIR: config.dataDir,
      VOLBACK_CATALOG_PORT: String(config.catalogPort),
      VOLBACK_CATALOG_TOKENS_FILE: secrets.catalogTokens,
      VOLBACK_PASSWORD: '',
      VOLBACK_OPS_PORT: await opsPort(),
    });
    if (withAgent && secrets.agentSeed) {
      services.start('agent', {
        VOLBACK_NATS_URL: natsUrl,
        ...identity(secrets.agentSeed),
        DOCKER_HOST: config.dockerHost,
        VOLBACK_AGENT_STATE_DIR: join(config.dataDir, 'agent'),
        VOLBACK_PASSWORD: '',
        VOLBACK_OPS_PORT: await opsPort(),
      });
    } else {
      log.warn(
        { dockerHost: config.dockerHost },
        'no Docker Engine answers there: the stack runs without an agent. Start Docker, or set DOCKER_HOST ' +
          '(README, "Trying it with a private Docker Engine"), and start the stack again',
      );
    }

    for (const check of services.readinessChecks()) ops.addCheck('readiness', check);
    startup.step('waiting for every service to be ready');
    await services.waitUntilReady();
    if (service.stopping) return;
    startup.done();
    log.info(
      {
        nats: natsUrl,
        streams: Object.values(STREAMS).map((s) => s.name),
        dataDir: config.dataDir,
        secrets: secrets.dir,
        repository,
        catalog: `http://127.0.0.1:${config.catalogPort}`,
        dashboard: `http://127.0.0.1:${config.catalogPort}/`,
        health: `${ops.url}/readyz`,
        metrics: `${ops.url}/metrics`,
      },
      'volback local stack ready (Ctrl-C to stop)',
    );
  },
});
