// The catalog process: configuration, logger and metrics, the ops endpoint, NATS and the streams,
// the projection and the HTTP API; graceful shutdown on SIGTERM/SIGINT.
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
import packageJson from '../package.json' with { type: 'json' };
import { loadOrCreateInstanceId } from './adapters/instance-id.ts';
import { startCatalog, type Catalog } from './catalog.ts';
import { loadConfig, readTlsFiles } from './config.ts';

const log = createLogger({ service: 'catalog' });
/** Longest a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_TIMEOUT_MS = 15_000;

let catalog: Catalog | undefined;
let ops: OpsServer | undefined;
let nc: NatsConnection | undefined;

const shutdown = onShutdownSignals({
  logger: log,
  timeoutMs: SHUTDOWN_TIMEOUT_MS,
  async stop() {
    await catalog?.stop();
    await ops?.close();
    if (nc) await drainNats(nc);
  },
});

async function main(): Promise<void> {
  const config = loadConfig(process.env, process.argv.slice(2));
  const tls = config.tls ? readTlsFiles(config.tls) : undefined;
  const instanceId = config.instanceId ?? (await loadOrCreateInstanceId(config.dataDir));
  const metrics = createMetrics({ service: 'catalog' });
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
    name: `volback-catalog-${instanceId}`,
    logger: log,
    ...config.natsAuth,
    inboxPrefix: inboxPrefix({ kind: 'service', service: 'catalog' }),
  });
  if (shutdown.stopping) return;
  startup.step('creating the streams');
  await ensureStreamsWithRetry(nc, {
    replicas: config.streamReplicas,
    logger: log,
    stopping: () => shutdown.stopping,
  });
  for (const check of natsHealthChecks(nc)) ops.addCheck('readiness', check);
  startup.step('starting the projection');
  catalog = await startCatalog({
    nc,
    databaseFile: config.databaseFile,
    instanceId,
    rebuild: config.rebuild,
    access: {
      tokens: config.tokens,
      trustLoopback: config.trustLoopback,
      bindHost: config.host,
      allowedHosts: config.allowedHosts,
    },
    ...(tls ? { tls } : {}),
    logger: log,
    metrics,
    version: packageJson.version,
    dataTimeoutMs: config.dataTimeoutSeconds * 1000,
    streams: { replicas: config.streamReplicas },
  });
  ops.addCheck('readiness', {
    name: 'projection',
    async check() {
      const pending = await catalog!.pending();
      return { ok: true, detail: `${pending} event(s) to apply` };
    },
  });
  await catalog.app.listen({ host: config.host, port: config.port });
  const address = catalog.app.server.address();
  const port = typeof address === 'object' && address ? address.port : config.port;
  if (!config.tokens.some((t) => t.scope === 'write')) {
    log.warn(
      { host: config.host },
      'no write token configured: 127.0.0.1 and ::1 may read and send commands without a token, other addresses nothing',
    );
  } else if (!config.trustLoopback) {
    log.info('VOLBACK_CATALOG_TRUST_LOOPBACK=false: loopback clients need tokens too');
  }
  startup.done();
  log.info(
    {
      url: `${tls ? 'https' : 'http'}://${config.host.includes(':') ? `[${config.host}]` : config.host}:${port}`,
      docs: '/docs',
      database: config.databaseFile,
      durable: catalog.durable,
      ops: ops.url,
      rebuild: config.rebuild,
      tokens: config.tokens.map((t) => `${t.name} (${t.scope})`),
    },
    'catalog started',
  );
}

main().catch((error: Error & { code?: string }) => {
  log.fatal({ code: error.code, err: error.message }, 'the catalog could not start');
  process.exit(1);
});
