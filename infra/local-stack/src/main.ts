// The local stack behind `npm start`: a NATS server with JetStream (unless VOLBACK_NATS_URL names
// one), the volback streams, and the stack's health and metrics endpoints. Services join it as
// they are built (see the root README). Stops everything on SIGINT/SIGTERM.
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { STREAMS } from '@volback/contracts';
import { connectNats, drainNats, ensureStreams, natsHealthChecks } from '@volback/messaging';
import { createLogger, createMetrics, startOpsServer } from '@volback/observability';
import { freePort, startNatsServer, type NatsServer } from '@volback/testing';
import { ConfigError, readConfig } from './config.ts';

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
  await mkdir(config.dataDir, { recursive: true, mode: 0o700 });

  let nats: NatsServer | undefined;
  let natsUrl = config.natsUrl;
  if (!natsUrl) {
    if (!(await portIsFree(config.natsPort))) {
      throw new ConfigError(
        `port ${config.natsPort} on 127.0.0.1 is in use: set VOLBACK_NATS_PORT to another port, or VOLBACK_NATS_URL to use that NATS`,
      );
    }
    nats = await startNatsServer({
      dataDir: join(config.dataDir, 'nats'),
      port: config.natsPort || (await freePort()),
      serverName: 'volback-local',
    });
    natsUrl = nats.url;
    log.info({ url: natsUrl, pid: nats.pid, log: nats.logFile }, 'NATS server started');
  }

  const nc = await connectNats({
    servers: natsUrl,
    name: 'volback-local-stack',
    logger: log,
    connectTimeoutMs: 30_000,
  });
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm);
  const metrics = createMetrics({ service: 'local-stack' });
  const ops = await startOpsServer({
    host: '127.0.0.1',
    port: config.opsPort,
    logger: log,
    registry: metrics.registry,
    checks: { readiness: natsHealthChecks(nc) },
  });
  log.info(
    {
      nats: natsUrl,
      streams: Object.values(STREAMS).map((s) => s.name),
      dataDir: config.dataDir,
      health: `${ops.url}/readyz`,
      metrics: `${ops.url}/metrics`,
    },
    'volback local stack ready (Ctrl-C to stop)',
  );

  let stopping = false;
  const stop = async (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'stopping the local stack');
    await ops.close();
    await drainNats(nc);
    await nats?.stop();
    log.info('stopped');
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
}

main().catch((error: Error & { code?: string }) => {
  log.fatal({ code: error.code, err: error.message }, 'the local stack could not start');
  process.exit(1);
});
