// The agent process: configuration, host identity, logger and metrics, the ops endpoint, NATS and
// the Docker Engine, discovery; graceful shutdown on SIGTERM/SIGINT.
import { inboxPrefix } from '@volback/contracts';
import {
  connectNats,
  drainNats,
  ensureStreamsWithRetry,
  natsHealthChecks,
  type NatsConnection,
  type RunningConsumer,
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
import { DockerEngineClient } from './adapters/docker-engine.ts';
import { loadHostIdFromIdentity, loadOrCreateHostId } from './adapters/host-id-store.ts';
import { Quiescer } from './adapters/quiesce.ts';
import { VolumeAccess } from './adapters/volume-access.ts';
import { startAgent, type Agent } from './agent.ts';
import { loadConfig } from './config.ts';
import { startCommandConsumer } from './work/command-consumer.ts';

const log = createLogger({ service: 'agent' });
/** Longest a graceful shutdown may take before the process exits anyway. */
const SHUTDOWN_TIMEOUT_MS = 15_000;

let agent: Agent | undefined;
let commands: RunningConsumer | undefined;
let ops: OpsServer | undefined;
let nc: NatsConnection | undefined;

const shutdown = onShutdownSignals({
  logger: log,
  timeoutMs: SHUTDOWN_TIMEOUT_MS,
  async stop() {
    await commands?.stop();
    await agent?.stop();
    await ops?.close();
    if (nc) await drainNats(nc);
  },
});

async function main(): Promise<void> {
  const config = loadConfig();
  const { hostId, created, file } = config.hostIdFile
    ? await loadHostIdFromIdentity(config.stateDir, config.hostIdFile)
    : await loadOrCreateHostId(config.stateDir);
  log.info({ hostId, file, created }, created ? 'created the host id' : 'host id');

  const metrics = createMetrics({ service: 'agent' });
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

  const engine = await DockerEngineClient.connect(config.docker);
  nc = await connectNats({
    servers: [...config.natsServers],
    name: `volback-agent-${hostId}`,
    logger: log,
    ...config.natsAuth,
    inboxPrefix: inboxPrefix({ kind: 'agent', hostId }),
  });
  if (shutdown.stopping) return;
  startup.step('creating the streams');
  await ensureStreamsWithRetry(nc, {
    replicas: config.streamReplicas,
    logger: log,
    stopping: () => shutdown.stopping,
  });
  for (const check of natsHealthChecks(nc)) ops.addCheck('readiness', check);

  // Containers a crashed run left stopped or paused are resumed before discovery and new work
  // start: discovery then publishes their stops as volback's (the journal names the runs).
  const quiescer = new Quiescer(engine.docker, { stateDir: config.stateDir, local: engine.local });
  startup.step('resuming containers a previous run left stopped');
  const recovered = await quiescer.recover();
  if (recovered.containers.length || recovered.errors.length) {
    log.warn(
      { containers: recovered.containers, errors: recovered.errors },
      'resumed containers a previous run left stopped or paused',
    );
  }
  agent = startAgent({
    hostId,
    ...(config.hostName ? { hostName: config.hostName } : {}),
    agentVersion: packageJson.version,
    engine,
    nc,
    logger: log,
    metrics,
    heartbeatSeconds: config.heartbeatSeconds,
    volbackStops: quiescer,
  });
  for (const check of agent.healthChecks()) ops.addCheck('readiness', check);

  const volumes = new VolumeAccess(engine.docker, {
    helperImage: config.helperImage,
    hostId,
    local: engine.local,
  });
  const leftovers = await volumes.removeLeftoverHelpers().catch((error: Error) => {
    log.warn({ err: error.message }, 'could not remove helper containers a previous run left');
    return [];
  });
  if (leftovers.length) log.info({ helpers: leftovers }, 'removed helper containers a previous run left');
  if (shutdown.stopping) return;
  commands = await startCommandConsumer({
    hostId,
    hostName: async () => config.hostName ?? (await engine.info()).hostName,
    nc,
    volumes,
    quiescer,
    logger: log,
    ackWaitMs: config.commandAckWaitSeconds * 1000,
    dataPath: { timeoutMs: config.dataTimeoutSeconds * 1000 },
    security: { hookContainers: config.hookContainers, containersJsonEnv: config.containersJsonEnv },
    streams: { replicas: config.streamReplicas },
    onStreamsRecreated: () => agent?.republish(),
  });
  startup.done();
  log.info(
    {
      docker: config.dockerHost,
      nats: config.natsServers,
      ops: ops.url,
      heartbeatSeconds: config.heartbeatSeconds,
    },
    'agent started',
  );
}

main().catch((error: Error & { code?: string }) => {
  log.fatal({ code: error.code, err: error.message }, 'the agent could not start');
  process.exit(1);
});
