// The local stack behind `npm start`: a NATS server with JetStream (unless VOLBACK_NATS_URL names
// one), the volback streams, a storage gateway on a filesystem repository in the data dir, the
// scheduler, the catalog, and an agent on the local Docker Engine (when one answers), each as its
// own process; the stack's health and metrics endpoints. Stops everything on SIGINT/SIGTERM.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { STREAMS } from '@volback/contracts';
import { connectNats, drainNats, ensureStreams, natsHealthChecks } from '@volback/messaging';
import { createLogger, createMetrics, startOpsServer, startupCheck } from '@volback/observability';
import { inboxPrefix } from '@volback/contracts';
import { freePort, restartOnExit, startNatsServer, Supervisor, type NatsServer } from '@volback/runtime';
import { ConfigError, readConfig } from './config.ts';
import { natsIdentityEnv, stackSecrets } from './secrets.ts';
import { dockerAnswers, STACK_SERVICES, STOP_ORDER } from './services.ts';

const log = createLogger({ service: 'local-stack' });

async function portIsFree(port: number): Promise<boolean> {
  if (port === 0) return true;
  const { createServer } = await import('node:net');
  return new Promise((resolve) => {
    const probe = createServer();
    probe.once('error', () => resolve(false));
    probe.listen(port, '127.0.0.1', () => probe.close(() => resolve(true)));
  });
}

async function main(): Promise<void> {
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

  let nats: NatsServer | undefined;
  let natsUrl = config.natsServers?.join(',');
  let stopping = false;
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
    nats = await startNatsServer(natsOptions);
    natsUrl = nats.url;
    log.info({ url: natsUrl, pid: nats.pid, log: nats.logFile }, 'NATS server started');
    // The stack started this NATS, so it keeps it running.
    restartOnExit(nats, {
      name: 'NATS server',
      log,
      start: () => startNatsServer(natsOptions),
      stopping: () => stopping,
      onRestart: (again) => (nats = again),
      describe: (again) => ({ url: again.url }),
    });
  }

  const nc = await connectNats({
    servers: config.natsServers ? [...config.natsServers] : natsUrl,
    name: 'volback-local-stack',
    logger: log,
    connectTimeoutMs: 30_000,
    ...(config.natsServers
      ? {}
      : {
          nkeyFile: secrets.seed('admin'),
          caFile: secrets.caFile,
          inboxPrefix: inboxPrefix({ kind: 'admin' }),
        }),
  });
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm);
  const metrics = createMetrics({ service: 'local-stack' });
  // Ready means every service ready: failing until each one's /readyz passed once (then each is
  // checked on every probe).
  const startup = startupCheck('starting the services');
  const ops = await startOpsServer({
    host: '127.0.0.1',
    port: config.opsPort,
    logger: log,
    registry: metrics.registry,
    checks: { readiness: [startup, ...natsHealthChecks(nc)] },
  });

  const services = new Supervisor(log, STACK_SERVICES, STOP_ORDER);
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

  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping the local stack');
    await services.stop();
    await ops.close();
    await drainNats(nc);
    await nats?.stop();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));

  for (const check of services.readinessChecks()) ops.addCheck('readiness', check);
  startup.step('waiting for every service to be ready');
  await services.waitUntilReady();
  if (stopping) return;
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
}

main().catch((error: Error & { code?: string }) => {
  log.fatal({ code: error.code, err: error.message }, 'the local stack could not start');
  process.exit(1);
});
