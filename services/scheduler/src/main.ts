// The scheduler process: configuration, logger and metrics, the ops endpoint, NATS, the streams,
// the scheduler; graceful shutdown on SIGTERM/SIGINT (a leader gives its lease up at once).
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
import { loadConfig } from './config.ts';
import { startScheduler, type Scheduler } from './scheduler.ts';

const log = createLogger({ service: 'scheduler' });
/** Longest a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_TIMEOUT_MS = 15_000;

let scheduler: Scheduler | undefined;
let ops: OpsServer | undefined;
let nc: NatsConnection | undefined;

const shutdown = onShutdownSignals({
  logger: log,
  timeoutMs: SHUTDOWN_TIMEOUT_MS,
  async stop() {
    await scheduler?.stop();
    await ops?.close();
    if (nc) await drainNats(nc);
  },
});

async function main(): Promise<void> {
  const config = loadConfig();
  const metrics = createMetrics({ service: 'scheduler' });
  // Not ready until every dependency has its own check: /readyz must not pass while NATS is awaited.
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
    name: `volback-scheduler-${config.instanceId}`,
    logger: log,
    ...config.natsAuth,
    inboxPrefix: inboxPrefix({ kind: 'service', service: 'scheduler' }),
  });
  if (shutdown.stopping) return;
  startup.step('creating the streams');
  await ensureStreamsWithRetry(nc, {
    replicas: config.streamReplicas,
    logger: log,
    stopping: () => shutdown.stopping,
  });
  for (const check of natsHealthChecks(nc)) ops.addCheck('readiness', check);
  if (shutdown.stopping) return;
  startup.step('rebuilding the state from the event log');
  scheduler = await startScheduler({
    nc,
    settings: config.settings,
    instanceId: config.instanceId,
    logger: log,
    metrics,
    tickMs: config.tickMs,
    leaseMs: config.leaseMs,
    kvReplicas: config.streamReplicas,
  });
  for (const check of scheduler.healthChecks()) ops.addCheck('readiness', check);
  startup.done();
  log.info(
    {
      instanceId: config.instanceId,
      nats: config.natsServers,
      ops: ops.url,
      defaultMode: config.settings.defaultMode,
      defaultSchedule: config.settings.defaultPolicy.schedule,
    },
    'scheduler started',
  );
}

main().catch((error: Error & { code?: string }) => {
  log.fatal({ code: error.code, err: error.message }, 'the scheduler could not start');
  process.exit(1);
});
