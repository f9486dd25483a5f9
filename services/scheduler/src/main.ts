// The scheduler process: configuration, logger and metrics, the ops endpoint, NATS, the streams,
// the scheduler; graceful shutdown on SIGTERM/SIGINT (a leader gives its lease up at once).
import { inboxPrefix } from '@volback/contracts';
import { runService } from '@volback/runtime';
import { loadConfig } from './config.ts';
import { startScheduler } from './scheduler.ts';

runService({
  service: 'scheduler',
  title: 'the scheduler',
  shutdownTimeoutMs: 15_000,
  async start(service) {
    const { log } = service;
    const config = loadConfig();
    const { ops, metrics, startup } = await service.startOps(config);
    const nc = await service.connectNats(config, {
      name: `volback-scheduler-${config.instanceId}`,
      inboxPrefix: inboxPrefix({ kind: 'service', service: 'scheduler' }),
    });
    if (!nc || service.stopping) return;
    startup.step('rebuilding the state from its snapshot and the event log');
    const scheduler = await startScheduler({
      nc,
      settings: config.settings,
      instanceId: config.instanceId,
      logger: log,
      metrics,
      tickMs: config.tickMs,
      leaseMs: config.leaseMs,
      kvReplicas: config.streamReplicas,
      notifier: config.notifier,
      snapshots: { everyEvents: config.snapshotEveryEvents, everyMs: config.snapshotEveryMs },
    });
    service.onStop(() => scheduler.stop());
    for (const check of scheduler.healthChecks()) ops.addCheck('readiness', check);
    startup.done();
    log.info(
      {
        instanceId: config.instanceId,
        nats: config.natsServers,
        ops: ops.url,
        defaultMode: config.settings.defaultMode,
        defaultSchedule: config.settings.defaultPolicy.schedule,
        notifyChannels: config.notifier.channels.map((c) => c.name),
      },
      'scheduler started',
    );
  },
});
