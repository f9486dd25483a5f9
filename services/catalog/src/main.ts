// The catalog process: configuration, logger and metrics, the ops endpoint, NATS and the streams,
// the projection and the HTTP API; graceful shutdown on SIGTERM/SIGINT.
import { inboxPrefix } from '@volback/contracts';
import { runService } from '@volback/runtime';
import packageJson from '../package.json' with { type: 'json' };
import { loadOrCreateInstanceId } from './adapters/instance-id.ts';
import { startCatalog } from './catalog.ts';
import { loadConfig, readTlsFiles } from './config.ts';

runService({
  service: 'catalog',
  title: 'the catalog',
  shutdownTimeoutMs: 15_000,
  async start(service) {
    const { log } = service;
    const config = loadConfig(process.env, process.argv.slice(2));
    const tls = config.tls ? readTlsFiles(config.tls) : undefined;
    const instanceId = config.instanceId ?? (await loadOrCreateInstanceId(config.dataDir));
    const { ops, metrics, startup } = await service.startOps(config);
    const nc = await service.connectNats(config, {
      name: `volback-catalog-${instanceId}`,
      inboxPrefix: inboxPrefix({ kind: 'service', service: 'catalog' }),
    });
    if (!nc) return;
    startup.step('starting the projection');
    const catalog = await startCatalog({
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
    service.onStop(() => catalog.stop());
    ops.addCheck('readiness', {
      name: 'projection',
      async check() {
        const pending = await catalog.pending();
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
  },
});
