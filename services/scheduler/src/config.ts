import { natsAuthFromEnv, type NatsAuthFiles } from '@volback/messaging';
import { hostname } from 'node:os';
import {
  DEFAULT_SETTINGS,
  policyFromLabels,
  POLICY_LABELS,
  scheduleProblem,
  type SchedulerSettings,
} from './domain/index.ts';
import { ConfigError } from './errors.ts';

/** The scheduler process's settings (README, "Configuration"). */
export interface SchedulerConfig {
  readonly natsServers: readonly string[];
  /** The NATS identity's files: nkey seed, CA, or a credentials file (never the secrets themselves). */
  readonly natsAuth: NatsAuthFiles;
  readonly streamReplicas: number;
  readonly instanceId: string;
  readonly tickMs: number;
  readonly leaseMs: number;
  readonly opsHost: string;
  readonly opsPort: number;
  readonly settings: SchedulerSettings;
}

/** Defaults of the process settings (the decision settings' are `DEFAULT_SETTINGS`). */
export const CONFIG_DEFAULTS = {
  natsUrl: 'nats://127.0.0.1:4222',
  opsHost: '127.0.0.1',
  opsPort: 9403,
  tickMs: 1000,
  leaseSeconds: 10,
  maxConcurrentPerHost: 1,
} as const;

function value(env: NodeJS.ProcessEnv, name: string): string | undefined {
  const raw = env[name]?.trim();
  return raw === undefined || raw === '' ? undefined : raw;
}

function integer(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number, max: number): number {
  const raw = value(env, name);
  if (raw === undefined) return fallback;
  if (!/^\d+$/.test(raw) || Number(raw) < min || Number(raw) > max) {
    throw new ConfigError(name, `${JSON.stringify(raw)} is not a whole number from ${min} to ${max}`);
  }
  return Number(raw);
}

function fraction(env: NodeJS.ProcessEnv, name: string, fallback: number): number {
  const raw = value(env, name);
  if (raw === undefined) return fallback;
  const parsed = Number(raw);
  if (!/^\d*\.?\d+$/.test(raw) || parsed < 0 || parsed > 1) {
    throw new ConfigError(name, `${JSON.stringify(raw)} is not a number from 0 to 1`);
  }
  return parsed;
}

function flag(env: NodeJS.ProcessEnv, name: string, fallback: boolean): boolean {
  const raw = value(env, name)?.toLowerCase();
  if (raw === undefined) return fallback;
  if (['1', 'true', 'yes'].includes(raw)) return true;
  if (['0', 'false', 'no'].includes(raw)) return false;
  throw new ConfigError(name, `${JSON.stringify(env[name])} is not 1/true/yes or 0/false/no`);
}

/** A maintenance schedule: a cron expression, or `off`. */
function maintenanceSchedule(
  env: NodeJS.ProcessEnv,
  name: string,
  fallback: string | undefined,
  timezone: string,
) {
  const raw = value(env, name) ?? fallback;
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
function defaultPolicy(env: NodeJS.ProcessEnv) {
  const labels = new Map<string, string>();
  for (const [label, variable] of Object.entries(DEFAULT_POLICY_VARIABLES)) {
    const raw = value(env, variable);
    if (raw !== undefined) labels.set(label, raw);
  }
  const retention = value(env, 'VOLBACK_SCHEDULER_DEFAULT_RETENTION');
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
  const natsServers = (value(env, 'VOLBACK_NATS_URL') ?? CONFIG_DEFAULTS.natsUrl)
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  for (const server of natsServers) {
    if (!/^(nats|tls|wss?):\/\/\S+$/.test(server)) {
      throw new ConfigError('VOLBACK_NATS_URL', `${JSON.stringify(server)} is not a nats://host:port URL`);
    }
  }
  const mode = value(env, 'VOLBACK_SCHEDULER_DEFAULT_POLICY') ?? DEFAULT_SETTINGS.defaultMode;
  if (mode !== 'all' && mode !== 'labelled') {
    throw new ConfigError(
      'VOLBACK_SCHEDULER_DEFAULT_POLICY',
      `${JSON.stringify(mode)} is not "all" or "labelled"`,
    );
  }
  const instanceId = value(env, 'VOLBACK_SCHEDULER_ID') ?? `${hostname()}-${process.pid}`;
  if (!/^[\x21-\x7e]{1,100}$/.test(instanceId)) {
    throw new ConfigError('VOLBACK_SCHEDULER_ID', 'printable ASCII without spaces, at most 100 characters');
  }
  const maintenanceTimezone = value(env, 'VOLBACK_SCHEDULER_MAINTENANCE_TIMEZONE') ?? 'UTC';
  const d = DEFAULT_SETTINGS;
  const seconds = (name: string, fallbackMs: number, min: number, max: number) =>
    integer(env, name, Math.round(fallbackMs / 1000), min, max) * 1000;
  return {
    natsServers,
    natsAuth: natsAuthFromEnv(env, cwd),
    streamReplicas: integer(env, 'VOLBACK_STREAM_REPLICAS', 1, 1, 5),
    instanceId,
    tickMs: integer(env, 'VOLBACK_SCHEDULER_TICK_MS', CONFIG_DEFAULTS.tickMs, 100, 60_000),
    leaseMs: integer(env, 'VOLBACK_SCHEDULER_LEASE_SECONDS', CONFIG_DEFAULTS.leaseSeconds, 2, 300) * 1000,
    opsHost: value(env, 'VOLBACK_OPS_HOST') ?? CONFIG_DEFAULTS.opsHost,
    opsPort: integer(env, 'VOLBACK_OPS_PORT', CONFIG_DEFAULTS.opsPort, 0, 65_535),
    settings: {
      defaultMode: mode,
      defaultPolicy: defaultPolicy(env),
      includeAnonymous: flag(env, 'VOLBACK_SCHEDULER_INCLUDE_ANONYMOUS', d.includeAnonymous),
      jitterWindowMs: seconds('VOLBACK_SCHEDULER_JITTER_SECONDS', d.jitterWindowMs, 0, 86_400),
      maxConcurrentBackups: integer(
        env,
        'VOLBACK_SCHEDULER_MAX_CONCURRENT',
        d.maxConcurrentBackups,
        1,
        10_000,
      ),
      maxConcurrentBackupsPerHost: integer(
        env,
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
      backupOnContainerStop: flag(env, 'VOLBACK_SCHEDULER_BACKUP_ON_CONTAINER_STOP', d.backupOnContainerStop),
      retry: {
        maxAttempts: integer(env, 'VOLBACK_SCHEDULER_RETRY_ATTEMPTS', d.retry.maxAttempts, 1, 100),
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
          env,
          'VOLBACK_SCHEDULER_PRUNE_SCHEDULE',
          d.prune.schedule?.cron,
          maintenanceTimezone,
        ),
        maxUnusedFraction: fraction(env, 'VOLBACK_SCHEDULER_PRUNE_MAX_UNUSED', d.prune.maxUnusedFraction),
        holdBackupsMs: seconds('VOLBACK_SCHEDULER_PRUNE_HOLD_SECONDS', d.prune.holdBackupsMs, 0, 86_400),
        retryDelayMs: seconds('VOLBACK_SCHEDULER_PRUNE_RETRY_SECONDS', d.prune.retryDelayMs, 1, 86_400),
        maxAttempts: integer(env, 'VOLBACK_SCHEDULER_PRUNE_ATTEMPTS', d.prune.maxAttempts, 1, 1000),
      },
      check: {
        schedule: maintenanceSchedule(
          env,
          'VOLBACK_SCHEDULER_CHECK_SCHEDULE',
          d.check.schedule?.cron,
          maintenanceTimezone,
        ),
        readDataFraction: fraction(env, 'VOLBACK_SCHEDULER_CHECK_READ_DATA', d.check.readDataFraction),
      },
      maintenanceTimeoutMs: d.maintenanceTimeoutMs,
      source: `volback://scheduler/${instanceId}`,
    },
  };
}
