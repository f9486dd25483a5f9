import type { Counter, Gauge, Histogram, Metrics } from '@volback/observability';
import { BackupPhase } from '@volback/contracts';
import {
  dueBackups,
  effectivePolicy,
  heldRepositories,
  isLive,
  type SchedulerSettings,
  type SchedulerState,
} from '../domain/index.ts';

/** The scheduler's metrics (README, "Metrics"). */
export interface SchedulerMetrics {
  readonly backupsDue: Gauge;
  readonly backupsRunning: Gauge;
  readonly backupsFailed: Gauge;
  readonly volumesAtRisk: Gauge;
  readonly volumes: Gauge<'protected'>;
  readonly leader: Gauge;
  readonly decisions: Counter<'what'>;
  readonly tickDuration: Histogram;
  readonly projectionSequence: Gauge;
  readonly notifications: Counter<'kind' | 'outcome'>;
}

export function createSchedulerMetrics(metrics: Metrics): SchedulerMetrics {
  return {
    backupsDue: metrics.gauge({
      name: 'scheduler_backups_due',
      help: 'Backups due now and not yet requested (waiting for a round or for the concurrency limits)',
    }),
    backupsRunning: metrics.gauge({
      name: 'scheduler_backups_running',
      help: 'Backups requested or running, without an outcome',
    }),
    backupsFailed: metrics.gauge({
      name: 'scheduler_backups_failed',
      help: 'Volumes whose last backup attempt failed (awaiting a retry) or was abandoned',
    }),
    volumesAtRisk: metrics.gauge({
      name: 'scheduler_volumes_at_risk',
      help: 'Volumes whose last snapshot is older than their RPO',
    }),
    volumes: metrics.gauge({
      name: 'scheduler_volumes',
      help: 'Volumes the scheduler knows, by whether a policy protects them',
      labelNames: ['protected'],
    }),
    leader: metrics.gauge({ name: 'scheduler_leader', help: '1 while this instance is the leader' }),
    decisions: metrics.counter({
      name: 'scheduler_decisions_total',
      help: 'Decisions published, by kind (backup, forget, prune, check, policy-defined, volume-at-risk, …)',
      labelNames: ['what'],
    }),
    notifications: metrics.counter({
      name: 'scheduler_notifications_total',
      help: 'Notifications sent to a channel, by kind and outcome (delivered, failed)',
      labelNames: ['kind', 'outcome'],
    }),
    tickDuration: metrics.histogram({
      name: 'scheduler_round_duration_seconds',
      help: 'Time to decide and publish one round',
      buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10],
    }),
    projectionSequence: metrics.gauge({
      name: 'scheduler_projection_sequence',
      help: 'Last event log sequence applied',
    }),
  };
}

/** Sets the gauges from the state (every instance, leader or not: each has the whole state). */
export function observeState(
  m: SchedulerMetrics,
  state: SchedulerState,
  now: number,
  settings: SchedulerSettings,
): void {
  let running = 0;
  for (const flight of state.inFlight.values()) if (isLive(flight, now, settings)) running++;
  let failed = 0;
  let atRisk = 0;
  let protectedVolumes = 0;
  for (const volume of state.volumes.values()) {
    const phase = volume.lastOutcome?.phase;
    if (phase === BackupPhase.Failed) failed++;
    if (volume.atRisk) atRisk++;
    if (effectivePolicy(state, volume, settings)?.policy.enabled) protectedVolumes++;
  }
  m.backupsRunning.set(running);
  m.backupsFailed.set(failed);
  m.volumesAtRisk.set(atRisk);
  m.volumes.set({ protected: 'true' }, protectedVolumes);
  m.volumes.set({ protected: 'false' }, state.volumes.size - protectedVolumes);
  m.backupsDue.set(
    dueBackups(state, now, settings, { heldRepositories: heldRepositories(state, now, settings) }).length,
  );
}
