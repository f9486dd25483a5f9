import type { NatsConnection } from '@nats-io/nats-core';
import { followHeartbeats, MessagePublisher, type RunningConsumer } from '@volback/messaging';
import type { HealthCheck, Logger, Metrics } from '@volback/observability';
import { startSchedulerCommandConsumer } from './adapters/command-consumer.ts';
import { publishDecisions } from './adapters/decision-publisher.ts';
import { startEventProjection, type EventProjection } from './adapters/event-projection.ts';
import { startLeaderElection, type LeaderElection } from './adapters/leader-election.ts';
import { DEFAULT_NOTIFIER_SETTINGS, startNotifier, type NotifierSettings } from './adapters/notifier.ts';
import { createSchedulerMetrics, observeState } from './adapters/scheduler-metrics.ts';
import { openSnapshotStore } from './adapters/snapshot-store.ts';
import {
  decideScheduleAnnouncements,
  decideTakeover,
  decideTick,
  observeHeartbeat,
  type Decision,
  type SchedulerSettings,
  type SchedulerState,
} from './domain/index.ts';

/** Event types that end a backup (and free its volume and a place under the limits). */
const OUTCOME = /^io\.volback\.backup\.(set-)?(completed|partially-failed|failed|abandoned)\.v\d+$/;
/** How soon after an outcome the next round comes (outcomes arriving together share it). */
const HURRY_MS = 20;

/** Options of {@link startScheduler}. */
export interface SchedulerOptions {
  readonly nc: NatsConnection;
  readonly settings: SchedulerSettings;
  /** This replica's name (leader lease value, logs). */
  readonly instanceId: string;
  readonly logger: Logger;
  readonly metrics: Metrics;
  /** How often the leader decides. */
  readonly tickMs: number;
  /** Leader lease: a dead leader is replaced within about this long. */
  readonly leaseMs: number;
  readonly kvReplicas?: number;
  readonly leaderBucket?: string;
  /** The clock of every decision (tests pass a fake one). */
  readonly clock?: () => number;
  /** Notification channels of the configuration and delivery settings (README, "Notifications"). */
  readonly notifier?: NotifierSettings;
  /**
   * Start from the stored snapshot of the state and store new ones (README, "Start-up"); without
   * it the state is replayed from the whole log at every start.
   */
  readonly snapshots?: { readonly everyEvents?: number; readonly everyMs?: number; readonly bucket?: string };
}

/** A running scheduler. */
export interface Scheduler {
  isLeader(): boolean;
  /** The projected state (read-only use). */
  readonly state: SchedulerState;
  readonly projection: EventProjection;
  healthChecks(): HealthCheck[];
  /** Stops deciding, gives the lease up, stops consuming; resolves when idle. */
  stop(): Promise<void>;
}

/**
 * Wires the scheduler: state rebuilt from the event log and followed, leader election, the
 * command consumer, and the leader's decision rounds every `tickMs`.
 */
export async function startScheduler(options: SchedulerOptions): Promise<Scheduler> {
  const log = options.logger.child({ component: 'scheduler', instanceId: options.instanceId });
  const clock = options.clock ?? Date.now;
  const metrics = createSchedulerMetrics(options.metrics);
  const publisher = new MessagePublisher(options.nc);
  let timer: NodeJS.Timeout | undefined;
  let hurry = () => {};
  const snapshots = options.snapshots && {
    ...options.snapshots,
    store: await openSnapshotStore(options.nc, {
      ...(options.snapshots.bucket ? { bucket: options.snapshots.bucket } : {}),
      ...(options.kvReplicas ? { replicas: options.kvReplicas } : {}),
    }),
  };
  const projection = await startEventProjection({
    nc: options.nc,
    logger: log,
    onEvent: (type, seq) => {
      metrics.projectionSequence.set(seq);
      if (OUTCOME.test(type)) hurry();
    },
    ...(snapshots ? { snapshots } : {}),
  });
  await projection.replayed;
  // Liveness (VOLBACK_HEARTBEATS): each host's last heartbeat before the first decision, so
  // hosts that are up do not look offline for a round.
  const heartbeats = await followHeartbeats({
    nc: options.nc,
    logger: log,
    onHeartbeat: (heartbeat) => observeHeartbeat(projection.state, heartbeat),
  });
  const heartbeatsRead = await Promise.race([
    heartbeats.caughtUp.then(() => true),
    new Promise<boolean>((resolve) => setTimeout(resolve, 10_000, false).unref()),
  ]);
  if (!heartbeatsRead)
    log.warn("the hosts' last heartbeats are not read yet; hosts may look offline for a while");

  const notifier = startNotifier({
    nc: options.nc,
    publisher,
    settings: options.notifier ?? DEFAULT_NOTIFIER_SETTINGS,
    source: options.settings.source,
    logger: log,
    clock,
    ...(options.kvReplicas ? { replicas: options.kvReplicas } : {}),
    onDelivery: (kind, ok) => metrics.notifications.inc({ kind, outcome: ok ? 'delivered' : 'failed' }),
  });
  let takeoverDue = false;
  const election: LeaderElection = await startLeaderElection({
    nc: options.nc,
    instanceId: options.instanceId,
    leaseMs: options.leaseMs,
    logger: log,
    ...(options.kvReplicas ? { replicas: options.kvReplicas } : {}),
    ...(options.leaderBucket ? { bucket: options.leaderBucket } : {}),
    onChange: (leader) => {
      metrics.leader.set(leader ? 1 : 0);
      if (leader) takeoverDue = true;
      notifier.setLeader(leader);
    },
  });
  const commands: RunningConsumer = await startSchedulerCommandConsumer({
    nc: options.nc,
    publisher,
    projection,
    settings: options.settings,
    notifier,
    logger: log,
    clock,
    onDecision: (what) => metrics.decisions.inc({ what }),
  });

  /** Publishes decisions: whether the projection has applied their events, and how many failed. */
  const publish = async (decisions: readonly Decision[]): Promise<{ applied: boolean; failed: number }> => {
    if (decisions.length === 0) return { applied: true, failed: 0 };
    const outcome = await publishDecisions(publisher, decisions, log, (d) =>
      metrics.decisions.inc({ what: d.what }),
    );
    log.debug({ decided: decisions.map((d) => d.what), failed: outcome.failed }, 'round');
    // The next decisions must see these events, or they would be decided again.
    const applied =
      outcome.lastEventSequence === 0 || (await projection.waitFor(outcome.lastEventSequence, 10_000));
    return { applied, failed: outcome.failed };
  };
  // A decision whose publish failed may have stored its event and not its command (a NATS node
  // going down between the two, or an ack lost after the store): its backup is in flight in the
  // state, so no round decides it again, and without its command it would hold its volume until
  // the backup timeout. The rounds after a failure send the commands of everything queued again,
  // as a new leader does (same ids: JetStream or the agent drops what arrived), until one succeeds.
  let resendDue = false;
  let stopped = false;
  let lastRoundOk = true;
  const round = async () => {
    const end = metrics.tickDuration.startTimer();
    try {
      if (election.isLeader()) {
        const resending = takeoverDue || resendDue;
        // Decide on the whole log: a standby that just took over must see its predecessor's last
        // events, and a resend the events a failed publish may have stored.
        if (resending && !(await projection.catchUp(10_000))) return;
        const now = clock();
        const decisions = resending
          ? [
              ...decideTakeover(projection.state, now, options.settings),
              ...decideTick(projection.state, now, options.settings),
            ]
          : decideTick(projection.state, now, options.settings);
        takeoverDue = false;
        const published = await publish(decisions);
        resendDue = published.failed > 0;
        // Announced on the state after the round (a backup just requested moves its volume's next slot).
        if (published.applied) {
          await publish(decideScheduleAnnouncements(projection.state, now, options.settings));
        }
      }
      observeState(metrics, projection.state, clock(), options.settings);
      lastRoundOk = true;
    } catch (error) {
      lastRoundOk = false;
      log.error({ err: (error as Error).message }, 'decision round failed');
    } finally {
      end();
    }
  };
  let running: Promise<void> = Promise.resolve();
  let inRound = false;
  let hurried = false;
  const loop = () => {
    if (stopped) return;
    const delay = hurried ? Math.min(HURRY_MS, options.tickMs) : options.tickMs;
    hurried = false;
    timer = setTimeout(() => {
      inRound = true;
      running = round().finally(() => {
        inRound = false;
        loop();
      });
    }, delay);
  };
  // An outcome frees a volume and room under the limits: the next round comes at once, not a tick
  // later (on a host backing up 50 volumes one at a time, a tick per backup adds up to minutes).
  hurry = () => {
    if (stopped || !election.isLeader()) return;
    hurried = true;
    if (inRound) return;
    clearTimeout(timer);
    loop();
  };
  loop();
  log.info({ events: projection.sequence, volumes: projection.state.volumes.size }, 'scheduler started');

  return {
    isLeader: () => election.isLeader(),
    state: projection.state,
    projection,
    healthChecks: () => [
      {
        name: 'decision-rounds',
        check: async () =>
          lastRoundOk ? { ok: true } : { ok: false, detail: 'the last decision round failed (see the log)' },
      },
      {
        name: 'leadership',
        check: async () => ({ ok: true, detail: election.isLeader() ? 'leader' : 'standby' }),
      },
    ],
    async stop() {
      stopped = true;
      clearTimeout(timer);
      await running;
      await election.stop();
      await commands.stop();
      await notifier.stop();
      await heartbeats.stop();
      await projection.stop();
    },
  };
}
