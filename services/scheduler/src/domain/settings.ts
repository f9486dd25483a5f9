import type { PolicySpec, schedule } from '@volback/contracts';
import type { z } from 'zod';

/** A cron schedule with its time zone, as policies carry it. */
export type Schedule = z.output<typeof schedule>;

/** Which volumes the default policy covers. */
export type DefaultMode =
  /** Every volume without a more specific policy (labels with `volback.enabled=false` opt out). */
  | 'all'
  /** Only volumes with policy labels or an API policy; the rest are left alone. */
  | 'labelled';

/** Retries of failed backups. */
export interface RetrySettings {
  /** Attempts in all, the first included; 1 means no retry. */
  readonly maxAttempts: number;
  /** Wait before the second attempt; doubled for each further one. */
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}

/** A repository maintenance job on its own schedule. */
export interface MaintenanceSchedule {
  /** Absent: never. */
  readonly schedule?: Schedule;
}

/** Everything the decisions depend on besides the state and the clock (README, "Configuration"). */
export interface SchedulerSettings {
  readonly defaultMode: DefaultMode;
  /** The configured default policy (schedule, retention, …), below every API and label policy. */
  readonly defaultPolicy: PolicySpec;
  /** Whether anonymous volumes (named by Docker, 64 hex digits) fall under the default policy. */
  readonly includeAnonymous: boolean;
  /** Scheduled runs of one slot are spread over this window (at most half the schedule's period). */
  readonly jitterWindowMs: number;
  readonly maxConcurrentBackups: number;
  readonly maxConcurrentBackupsPerHost: number;
  /** A newly discovered volume is first backed up this long after discovery. */
  readonly firstBackupDelayMs: number;
  /** Back up the volumes of a container when it stops or is removed. */
  readonly backupOnContainerStop: boolean;
  readonly retry: RetrySettings;
  /** A backup without an outcome this long after its request no longer blocks its volume or counts as running. */
  readonly backupTimeoutMs: number;
  readonly prune: MaintenanceSchedule & {
    readonly maxUnusedFraction: number;
    /** From the prune slot on, new backups of the repository wait this long at most for the prune. */
    readonly holdBackupsMs: number;
    /** Wait after `REPOSITORY_LOCKED` before trying again. */
    readonly retryDelayMs: number;
    readonly maxAttempts: number;
  };
  readonly check: MaintenanceSchedule & { readonly readDataFraction: number };
  /** A forget, prune or check without an outcome this long after its request counts as lost. */
  readonly maintenanceTimeoutMs: number;
  /** Envelope `source` of what the scheduler publishes. */
  readonly source: string;
}

/** Defaults of the settings, as documented in the README. */
export const DEFAULT_SETTINGS: SchedulerSettings = {
  defaultMode: 'all',
  defaultPolicy: {
    enabled: true,
    schedule: { cron: '0 2 * * *', timezone: 'UTC' },
    retention: { keepLast: 3, keepDaily: 7, keepWeekly: 4, keepMonthly: 6 },
    excludes: [],
    consistency: { mode: 'none' },
    repositoryId: 'default',
  },
  includeAnonymous: true,
  jitterWindowMs: 30 * 60_000,
  maxConcurrentBackups: 10,
  maxConcurrentBackupsPerHost: 2,
  firstBackupDelayMs: 60_000,
  backupOnContainerStop: false,
  retry: { maxAttempts: 3, baseDelayMs: 5 * 60_000, maxDelayMs: 60 * 60_000 },
  backupTimeoutMs: 24 * 3600_000,
  prune: {
    schedule: { cron: '0 4 * * 0', timezone: 'UTC' },
    maxUnusedFraction: 0.05,
    holdBackupsMs: 60 * 60_000,
    retryDelayMs: 2 * 60_000,
    maxAttempts: 10,
  },
  check: { schedule: { cron: '0 5 * * *', timezone: 'UTC' }, readDataFraction: 0.05 },
  maintenanceTimeoutMs: 6 * 3600_000,
  source: 'volback://scheduler',
};
