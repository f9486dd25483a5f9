import type { NatsAuthFiles } from '@volback/messaging';
import { envReader, type EnvReader } from '@volback/runtime';
import { hostname } from 'node:os';
import {
  DEFAULT_SETTINGS,
  policyFromLabels,
  POLICY_LABELS,
  scheduleProblem,
  type SchedulerSettings,
} from './domain/index.ts';
import type { NotifierSettings } from './adapters/notifier.ts';
import { ConfigError } from './errors.ts';
import { loadNotifierSettings } from './notify-config.ts';

/** The scheduler process's settings (README, "Configuration"). */
export interface SchedulerConfig {
  readonly natsServers: readonly string[];
  /** The NATS identity's files: nkey seed, CA, or a credentials file (never the secrets themselves). */
  readonly natsAuth: NatsAuthFiles;
  readonly streamReplicas: number;
  readonly instanceId: string;
  readonly tickMs: number;
  readonly leaseMs: number;
  /** State snapshots: every so many events read, and every so often when something was read. */
  readonly snapshotEveryEvents: number;
  readonly snapshotEveryMs: number;
  readonly opsHost: string;
  readonly opsPort: number;
  readonly settings: SchedulerSettings;
  readonly notifier: NotifierSettings;
}

/** Defaults of the process settings (the decision settings' are `DEFAULT_SETTINGS`). */
export const CONFIG_DEFAULTS = {
  natsUrl: 'nats://127.0.0.1:4222',
  opsHost: '127.0.0.1',
  opsPort: 9403,
  tickMs: 1000,
  leaseSeconds: 10,
  snapshotEvents: 10_000,
  snapshotSeconds: 60,
  maxConcurrentPerHost: 1,
} as const;

/** A maintenance schedule: a cron expression, or `off`. */
function maintenanceSchedule(read: EnvReader, name: string, fallback: string | undefined, timezone: string) {
  const raw = read.value(name) ?? fallback;
  if (raw === undefined || raw.toLowerCase() === 'off') return undefined;
  const schedule = { cron: raw.replace(/\s+/g, ' '), timezone };
  const problem = /^\S+(\s\S+){4,5}$/.test(schedule.cron)
    ? scheduleProblem(schedule)
    : 'not 5 or 6 cron fields';
  if (problem) throw new ConfigError(name, problem);
  return schedule;
}

const DEFAULT_POLICY_VARIABLES: Record<string, string> = {
  [POLICY_LABELS.schedule]: 'VOLBACK_SCHEDULER_DEFAULT_SCHEDULE',
  [POLICY_LABELS.timezone]: 'VOLBACK_SCHEDULER_DEFAULT_TIMEZONE',
  [POLICY_LABELS.excludes]: 'VOLBACK_SCHEDULER_DEFAULT_EXCLUDES',
  [POLICY_LABELS.repository]: 'VOLBACK_SCHEDULER_DEFAULT_REPOSITORY',
  [POLICY_LABELS.rpo]: 'VOLBACK_SCHEDULER_DEFAULT_RPO',
};

/** The configured default policy: the same words as the labels (`keep-daily=7,keep-weekly=4`). */
function defaultPolicy(read: EnvReader) {
  const labels = new Map<string, string>();
  for (const [label, variable] of Object.entries(DEFAULT_POLICY_VARIABLES)) {
    const raw = read.value(variable);
    if (raw !== undefined) labels.set(label, raw);
  }
  const retention = read.value('VOLBACK_SCHEDULER_DEFAULT_RETENTION');
  if (retention !== undefined) {
    for (const rule of retention
      .split(',')
      .map((r) => r.trim())
      .filter(Boolean)) {
      const match = /^(keep-(?:last|hourly|daily|weekly|monthly|yearly|within))=(\S+)$/.exec(rule);
      if (!match) {
        throw new ConfigError(
          'VOLBACK_SCHEDULER_DEFAULT_RETENTION',
          `${JSON.stringify(rule)} is not keep-<last|hourly|daily|weekly|monthly|yearly|within>=<value>`,
        );
      }
      labels.set(`volback.retention.${match[1]}`, match[2]!);
    }
  }
  const result = policyFromLabels(DEFAULT_SETTINGS.defaultPolicy, labels);
  if (!result.ok) {
    const variable = DEFAULT_POLICY_VARIABLES[result.problem.label] ?? 'VOLBACK_SCHEDULER_DEFAULT_RETENTION';
    throw new ConfigError(variable, result.problem.reason);
  }
  return result.policy;
}

/** Reads the scheduler's configuration; throws {@link ConfigError} naming the variable at fault. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, cwd = process.cwd()): SchedulerConfig {
  const read = envReader(env, cwd, ConfigError);
  const { natsServers, natsAuth } = read.nats();
  const mode = read.value('VOLBACK_SCHEDULER_DEFAULT_POLICY') ?? DEFAULT_SETTINGS.defaultMode;
  if (mode !== 'all' && mode !== 'labelled') {
    throw new ConfigError(
      'VOLBACK_SCHEDULER_DEFAULT_POLICY',
      `${JSON.stringify(mode)} is not "all" or "labelled"`,
    );
  }
  const instanceId = read.value('VOLBACK_SCHEDULER_ID') ?? `${hostname()}-${process.pid}`;
  if (!/^[\x21-\x7e]{1,100}$/.test(instanceId)) {
    throw new ConfigError('VOLBACK_SCHEDULER_ID', 'printable ASCII without spaces, at most 100 characters');
  }
  const maintenanceTimezone = read.value('VOLBACK_SCHEDULER_MAINTENANCE_TIMEZONE') ?? 'UTC';
  const d = DEFAULT_SETTINGS;
  const seconds = (name: string, fallbackMs: number, min: number, max: number) =>
    read.integer(name, Math.round(fallbackMs / 1000), min, max) * 1000;
  return {
    natsServers,
    natsAuth,
    streamReplicas: read.integer('VOLBACK_STREAM_REPLICAS', 1, 1, 5),
    instanceId,
    tickMs: read.integer('VOLBACK_SCHEDULER_TICK_MS', CONFIG_DEFAULTS.tickMs, 100, 60_000),
    leaseMs: read.integer('VOLBACK_SCHEDULER_LEASE_SECONDS', CONFIG_DEFAULTS.leaseSeconds, 2, 300) * 1000,
    snapshotEveryEvents: read.integer(
      'VOLBACK_SCHEDULER_SNAPSHOT_EVENTS',
      CONFIG_DEFAULTS.snapshotEvents,
      100,
      100_000_000,
    ),
    snapshotEveryMs:
      read.integer('VOLBACK_SCHEDULER_SNAPSHOT_SECONDS', CONFIG_DEFAULTS.snapshotSeconds, 1, 86_400) * 1000,
    opsHost: read.value('VOLBACK_OPS_HOST') ?? CONFIG_DEFAULTS.opsHost,
    opsPort: read.integer('VOLBACK_OPS_PORT', CONFIG_DEFAULTS.opsPort, 0, 65_535),
    notifier: loadNotifierSettings(read, cwd),
    settings: {
      defaultMode: mode,
      defaultPolicy: defaultPolicy(read),
      includeAnonymous: read.flag('VOLBACK_SCHEDULER_INCLUDE_ANONYMOUS', d.includeAnonymous),
      jitterWindowMs: seconds('VOLBACK_SCHEDULER_JITTER_SECONDS', d.jitterWindowMs, 0, 86_400),
      maxConcurrentBackups: read.integer(
        'VOLBACK_SCHEDULER_MAX_CONCURRENT',
        d.maxConcurrentBackups,
        1,
        10_000,
      ),
      maxConcurrentBackupsPerHost: read.integer(
        'VOLBACK_SCHEDULER_MAX_CONCURRENT_PER_HOST',
        CONFIG_DEFAULTS.maxConcurrentPerHost,
        1,
        1000,
      ),
      firstBackupDelayMs: seconds(
        'VOLBACK_SCHEDULER_FIRST_BACKUP_DELAY_SECONDS',
        d.firstBackupDelayMs,
        0,
        86_400 * 7,
      ),
      backupOnContainerStop: read.flag('VOLBACK_SCHEDULER_BACKUP_ON_CONTAINER_STOP', d.backupOnContainerStop),
      retry: {
        maxAttempts: read.integer('VOLBACK_SCHEDULER_RETRY_ATTEMPTS', d.retry.maxAttempts, 1, 100),
        baseDelayMs: seconds('VOLBACK_SCHEDULER_RETRY_DELAY_SECONDS', d.retry.baseDelayMs, 1, 86_400),
        maxDelayMs: seconds('VOLBACK_SCHEDULER_RETRY_MAX_DELAY_SECONDS', d.retry.maxDelayMs, 1, 7 * 86_400),
      },
      backupTimeoutMs: seconds(
        'VOLBACK_SCHEDULER_BACKUP_TIMEOUT_SECONDS',
        d.backupTimeoutMs,
        60,
        30 * 86_400,
      ),
      prune: {
        ...d.prune,
        schedule: maintenanceSchedule(
          read,
          'VOLBACK_SCHEDULER_PRUNE_SCHEDULE',
          d.prune.schedule?.cron,
          maintenanceTimezone,
        ),
        maxUnusedFraction: read.fraction('VOLBACK_SCHEDULER_PRUNE_MAX_UNUSED', d.prune.maxUnusedFraction),
        holdBackupsMs: seconds('VOLBACK_SCHEDULER_PRUNE_HOLD_SECONDS', d.prune.holdBackupsMs, 0, 86_400),
        retryDelayMs: seconds('VOLBACK_SCHEDULER_PRUNE_RETRY_SECONDS', d.prune.retryDelayMs, 1, 86_400),
        maxAttempts: read.integer('VOLBACK_SCHEDULER_PRUNE_ATTEMPTS', d.prune.maxAttempts, 1, 1000),
      },
      check: {
        schedule: maintenanceSchedule(
          read,
          'VOLBACK_SCHEDULER_CHECK_SCHEDULE',
          d.check.schedule?.cron,
          maintenanceTimezone,
        ),
        readDataFraction: read.fraction('VOLBACK_SCHEDULER_CHECK_READ_DATA', d.check.readDataFraction),
      },
      maintenanceTimeoutMs: d.maintenanceTimeoutMs,
      source: `volback://scheduler/${instanceId}`,
    },
  };
}
