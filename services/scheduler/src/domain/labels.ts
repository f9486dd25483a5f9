import { drillSpec, policySpec, repositoryId, scheduleIssues, type PolicySpec } from '@volback/contracts';

/** The policy labels, on a volume or on the containers that mount it (agent README, "Policy labels"). */
export const POLICY_LABELS = {
  enabled: 'volback.enabled',
  schedule: 'volback.schedule',
  timezone: 'volback.schedule.tz',
  keepLast: 'volback.retention.keep-last',
  keepHourly: 'volback.retention.keep-hourly',
  keepDaily: 'volback.retention.keep-daily',
  keepWeekly: 'volback.retention.keep-weekly',
  keepMonthly: 'volback.retention.keep-monthly',
  keepYearly: 'volback.retention.keep-yearly',
  keepWithin: 'volback.retention.keep-within',
  excludes: 'volback.excludes',
  repository: 'volback.repository',
  rpo: 'volback.rpo',
  drillSchedule: 'volback.drill.schedule',
  drillContainers: 'volback.drill.containers',
  drillHealth: 'volback.drill.health',
  drillHealthTimeout: 'volback.drill.health-timeout',
} as const;

const KNOWN = new Set<string>(Object.values(POLICY_LABELS));
const RETENTION_KEYS = [
  'keepLast',
  'keepHourly',
  'keepDaily',
  'keepWeekly',
  'keepMonthly',
  'keepYearly',
] as const;

/** Where a label value came from: the volume itself, or a container that mounts it. */
export interface LabelSource {
  readonly kind: 'volume' | 'container';
  /** The container's name, for a container. */
  readonly name?: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** A label value that cannot be used, named for an operator. */
export interface LabelProblem {
  readonly label: string;
  readonly value: string;
  readonly reason: string;
}

/** The policy labels that apply to one volume, merged from its sources. */
export type MergedLabels =
  | { readonly ok: true; readonly labels: ReadonlyMap<string, string> }
  | { readonly ok: false; readonly problem: LabelProblem };

/**
 * Merges the policy labels of a volume and of the containers that mount it. The volume's own
 * labels win; containers that disagree about a label the volume does not set are a problem.
 */
export function mergePolicyLabels(sources: readonly LabelSource[]): MergedLabels {
  const merged = new Map<string, { value: string; from: string }>();
  const ordered = [...sources].sort((a, b) =>
    a.kind === b.kind ? (a.name ?? '').localeCompare(b.name ?? '') : a.kind === 'volume' ? -1 : 1,
  );
  for (const source of ordered) {
    for (const [label, value] of Object.entries(source.labels)) {
      if (!KNOWN.has(label)) continue;
      const from = source.kind === 'volume' ? 'the volume' : `container ${source.name}`;
      const existing = merged.get(label);
      if (!existing) merged.set(label, { value, from });
      else if (existing.from !== 'the volume' && existing.value !== value && source.kind === 'container') {
        return {
          ok: false,
          problem: {
            label,
            value,
            reason: `${existing.from} says ${JSON.stringify(existing.value)} and ${from} says ${JSON.stringify(value)}; set it on the volume or make them agree`,
          },
        };
      }
    }
  }
  return { ok: true, labels: new Map([...merged].map(([label, { value }]) => [label, value])) };
}

/** True when any policy label is set: the volume counts as labelled. */
export function hasPolicyLabels(labels: ReadonlyMap<string, string>): boolean {
  return labels.size > 0;
}

const WHOLE = /^\d{1,9}$/;
const RESTIC_DURATION = /^(?:\d+y)?(?:\d+m)?(?:\d+d)?(?:\d+h)?$/;
const RPO = /^(\d{1,9})([smhd]?)$/;
const RPO_UNIT_SECONDS: Record<string, number> = { '': 1, s: 1, m: 60, h: 3600, d: 86_400 };

function bool(value: string): boolean | undefined {
  const v = value.trim().toLowerCase();
  if (['true', 'yes', '1', 'on'].includes(v)) return true;
  if (['false', 'no', '0', 'off'].includes(v)) return false;
  return undefined;
}

/** The label policy: `base` with what the labels override, or the first label that cannot be used. */
export function policyFromLabels(
  base: PolicySpec,
  labels: ReadonlyMap<string, string>,
): { ok: true; policy: PolicySpec } | { ok: false; problem: LabelProblem } {
  const fail = (label: string, reason: string) => ({
    ok: false as const,
    problem: { label, value: labels.get(label) ?? '', reason },
  });
  const policy: { -readonly [K in keyof PolicySpec]: PolicySpec[K] } = structuredClone(base);

  const enabled = labels.get(POLICY_LABELS.enabled);
  if (enabled !== undefined) {
    const parsed = bool(enabled);
    if (parsed === undefined) return fail(POLICY_LABELS.enabled, 'not true or false');
    policy.enabled = parsed;
  }

  const cron = labels.get(POLICY_LABELS.schedule);
  const timezone = labels.get(POLICY_LABELS.timezone);
  if (cron !== undefined || timezone !== undefined) {
    const schedule = {
      cron: cron?.trim().replace(/\s+/g, ' ') ?? base.schedule.cron,
      timezone: timezone?.trim() ?? base.schedule.timezone,
    };
    if (cron !== undefined && !/^\S+(\s\S+){4,5}$/.test(schedule.cron)) {
      return fail(POLICY_LABELS.schedule, 'a cron expression of 5 fields, or 6 with seconds first');
    }
    // One rejection names one label: the expression's when it is bad, else the time zone's.
    const [issue] = scheduleIssues(schedule);
    if (issue) {
      return fail(
        issue.field.endsWith('.cron') ? POLICY_LABELS.schedule : POLICY_LABELS.timezone,
        issue.message,
      );
    }
    policy.schedule = schedule;
  }

  // Any retention label replaces the whole default retention: "keep 7 daily" means only that.
  const retention: Record<string, number | string> = {};
  for (const key of RETENTION_KEYS) {
    const label = POLICY_LABELS[key];
    const value = labels.get(label);
    if (value === undefined) continue;
    if (!WHOLE.test(value.trim())) return fail(label, 'not a whole number');
    retention[key] = Number(value.trim());
  }
  const within = labels.get(POLICY_LABELS.keepWithin);
  if (within !== undefined) {
    const v = within.trim();
    if (v.length < 2 || !RESTIC_DURATION.test(v)) {
      return fail(POLICY_LABELS.keepWithin, 'a restic duration such as 7d or 1y6m (y, m, d, h)');
    }
    retention['keepWithin'] = v;
  }
  if (Object.keys(retention).length > 0) {
    policy.retention = retention;
    const checked = policySpec.shape.retention.safeParse(retention);
    if (!checked.success) {
      const label =
        Object.keys(retention).length === 1 ? labelOf(Object.keys(retention)[0]!) : 'volback.retention.*';
      return {
        ok: false,
        problem: {
          label,
          value:
            labels.get(label) ??
            Object.entries(retention)
              .map(([k, v]) => `${k}=${v}`)
              .join(','),
          reason: checked.error.issues[0]?.message ?? 'invalid retention',
        },
      };
    }
  }

  const excludes = labels.get(POLICY_LABELS.excludes);
  if (excludes !== undefined) {
    const patterns = excludes
      .split(',')
      .map((p) => p.trim())
      .filter(Boolean);
    if (patterns.length > 1000 || patterns.some((p) => p.length > 4096)) {
      return fail(POLICY_LABELS.excludes, 'at most 1000 patterns of at most 4096 characters');
    }
    policy.excludes = patterns;
  }

  const repository = labels.get(POLICY_LABELS.repository);
  if (repository !== undefined) {
    if (!repositoryId.safeParse(repository.trim()).success) {
      return fail(POLICY_LABELS.repository, 'lower-case letters, digits, - and _, at most 63');
    }
    policy.repositoryId = repository.trim();
  }

  const rpo = labels.get(POLICY_LABELS.rpo);
  if (rpo !== undefined) {
    const match = RPO.exec(rpo.trim());
    const seconds = match ? Number(match[1]) * RPO_UNIT_SECONDS[match[2]!]! : 0;
    if (!match || seconds <= 0)
      return fail(POLICY_LABELS.rpo, 'a positive duration such as 3600, 90m, 26h or 2d');
    policy.rpoSeconds = seconds;
  }

  const drill = drillFromLabels(labels, policy.schedule.timezone);
  if (drill && 'problem' in drill) return { ok: false, problem: drill.problem };
  if (drill) policy.drill = drill.drill;

  const valid = policySpec.safeParse(policy);
  if (!valid.success) {
    const issue = valid.error.issues[0];
    return fail('volback.*', `${issue?.path.join('.') ?? ''}: ${issue?.message ?? 'invalid'}`);
  }
  return { ok: true, policy: valid.data };
}

function labelOf(retentionKey: string): string {
  return POLICY_LABELS[retentionKey as keyof typeof POLICY_LABELS] ?? 'volback.retention.*';
}

/**
 * The drill the `volback.drill.*` labels ask for (undefined without `volback.drill.schedule`); its
 * cron runs in the backup schedule's time zone. The other drill labels need the schedule.
 */
function drillFromLabels(
  labels: ReadonlyMap<string, string>,
  timezone: string,
): { drill: NonNullable<PolicySpec['drill']> } | { problem: LabelProblem } | undefined {
  const fail = (label: string, reason: string) => ({
    problem: { label, value: labels.get(label) ?? '', reason },
  });
  const cron = labels.get(POLICY_LABELS.drillSchedule)?.trim().replace(/\s+/g, ' ');
  if (cron === undefined) {
    const orphan = [
      POLICY_LABELS.drillContainers,
      POLICY_LABELS.drillHealth,
      POLICY_LABELS.drillHealthTimeout,
    ].find((label) => labels.has(label));
    return orphan ? fail(orphan, `needs ${POLICY_LABELS.drillSchedule} (when to run the drill)`) : undefined;
  }
  const schedule = { cron, timezone };
  if (!/^\S+(\s\S+){4,5}$/.test(cron)) {
    return fail(POLICY_LABELS.drillSchedule, 'a cron expression of 5 fields, or 6 with seconds first');
  }
  const [issue] = scheduleIssues(schedule);
  if (issue) return fail(POLICY_LABELS.drillSchedule, issue.message);
  const spec: Record<string, unknown> = { schedule };
  const containers = labels.get(POLICY_LABELS.drillContainers);
  if (containers !== undefined) {
    const parsed = bool(containers);
    if (parsed === undefined) return fail(POLICY_LABELS.drillContainers, 'not true or false');
    spec['containers'] = parsed;
  }
  const health = labels.get(POLICY_LABELS.drillHealth)?.trim();
  if (health !== undefined) {
    if (!health || health.length > 2000)
      return fail(POLICY_LABELS.drillHealth, 'a shell command of 1 to 2000 characters');
    spec['health'] = health;
  }
  const timeout = labels.get(POLICY_LABELS.drillHealthTimeout)?.trim();
  if (timeout !== undefined) {
    const seconds = WHOLE.test(timeout) ? Number(timeout) : 0;
    if (seconds < 1 || seconds > 3600)
      return fail(POLICY_LABELS.drillHealthTimeout, 'whole seconds, 1 to 3600');
    spec['healthTimeoutSeconds'] = seconds;
  }
  const parsed = drillSpec.safeParse(spec);
  if (!parsed.success)
    return fail(POLICY_LABELS.drillSchedule, parsed.error.issues[0]?.message ?? 'invalid drill');
  return { drill: parsed.data };
}
