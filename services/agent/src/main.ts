// The agent process: configuration, host identity, logger and metrics, the ops endpoint, NATS and
// the Docker Engine, discovery; graceful shutdown on SIGTERM/SIGINT.
import { join } from 'node:path';
import { inboxPrefix } from '@volback/contracts';
import { runService } from '@volback/runtime';
import packageJson from '../package.json' with { type: 'json' };
import { DockerEngineClient } from './adapters/docker-engine.ts';
import { loadHostIdFromIdentity, loadOrCreateHostId } from './adapters/host-id-store.ts';
import { ApplicationEngine } from './adapters/applications.ts';
import { DatabaseDumper } from './adapters/database-dump.ts';
import { Quiescer } from './adapters/quiesce.ts';
import { VolumeAccess } from './adapters/volume-access.ts';
import { startAgent } from './agent.ts';
import { loadConfig } from './config.ts';
import { startCommandConsumer } from './work/command-consumer.ts';

runService({
  service: 'agent',
  title: 'the agent',
  shutdownTimeoutMs: 15_000,
  async start(service) {
    const { log } = service;
    const config = loadConfig();
    const { hostId, created, file } = config.hostIdFile
      ? await loadHostIdFromIdentity(config.stateDir, config.hostIdFile)
      : await loadOrCreateHostId(config.stateDir);
    log.info({ hostId, file, created }, created ? 'created the host id' : 'host id');

    const { ops, metrics, startup } = await service.startOps(config);

    const engine = await DockerEngineClient.connect(config.docker);
    const nc = await service.connectNats(config, {
      name: `volback-agent-${hostId}`,
      inboxPrefix: inboxPrefix({ kind: 'agent', hostId }),
    });
    if (!nc) return;

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
    const agent = startAgent({
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
    service.onStop(() => agent.stop());
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
    if (service.stopping) return;
    /** Operations the NATS server refused, each warned about once. */
    const refusals = new Set<string>();
    const commands = await startCommandConsumer({
      hostId,
      hostName: async () => config.hostName ?? (await engine.info()).hostName,
      nc,
      volumes,
      quiescer,
      applications: new ApplicationEngine(engine.docker, engine.local),
      dumper: new DatabaseDumper(engine.docker, { local: engine.local }),
      logger: log,
      ackWaitMs: config.commandAckWaitSeconds * 1000,
      dataPath: {
        timeoutMs: config.dataTimeoutSeconds * 1000,
        // Said once per operation: the message names the subject and the remedy.
        onNotPermitted: (error) => {
          if (refusals.has(error.message)) return;
          refusals.add(error.message);
          log.warn({ code: error.code }, error.message);
        },
      },
      security: { hookContainers: config.hookContainers, containersJsonEnv: config.containersJsonEnv },
      streams: { replicas: config.streamReplicas },
      chunkCacheRoot: join(config.stateDir, 'chunk-cache'),
      onStreamsRecreated: () => agent.republish(),
    });
    service.onStop(() => commands.stop());
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
  },
});
