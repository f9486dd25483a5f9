// The rules a policy must meet beyond its schema, in one place: the catalog checks them before it
// sends a command (400 with every issue), the scheduler when it decides (PolicyRejected with
// every issue). Both read the same functions, so they cannot disagree.
import { Cron } from 'croner';
import { CONFIGURED_DEFAULT_POLICY_ID } from './effective-policy.ts';

/** One reason a policy cannot be used: the field at fault (path in the command's data) and why. */
export interface PolicyIssue {
  /** `policyId`, `policy.schedule.cron`, `policy.schedule.timezone`. */
  readonly field: string;
  readonly message: string;
}

/** Ids of the policies the scheduler derives from labels (`labels:<hostId>:<volumeName>`). */
export const LABEL_POLICY_PREFIX = 'labels:';

/** Where a policy came from (the `origin` of `PolicyDefined`). */
export type PolicyOrigin = 'api' | 'labels' | 'configuration';

/** Why a time zone cannot be used, or undefined (IANA names, as `Intl` knows them). */
export function timeZoneIssue(timezone: string): string | undefined {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: timezone });
    return undefined;
  } catch {
    return `unknown time zone ${JSON.stringify(timezone)} (an IANA name such as UTC or Europe/Berlin)`;
  }
}

/** Why a cron expression cannot be used (5 fields, or 6 with seconds first), or undefined. */
export function cronIssue(cron: string): string | undefined {
  if (!/^\S+(\s+\S+){4,5}$/.test(cron.trim())) {
    return `${JSON.stringify(cron)} is not a cron expression of 5 fields, or 6 with seconds first`;
  }
  try {
    const parsed = new Cron(cron, { timezone: 'UTC', paused: true, mode: '5-or-6-parts' });
    if (parsed.nextRun(new Date(0)) === null) return `${JSON.stringify(cron)} never matches a date`;
    return undefined;
  } catch (error) {
    return `${JSON.stringify(cron)}: ${(error as Error).message.replace(/^Cron\w*: /, '')}`;
  }
}

/** Every problem of a schedule at once (expression and time zone), under `field`. */
export function scheduleIssues(
  schedule: { readonly cron: string; readonly timezone: string },
  field = 'policy.schedule',
): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  const cron = cronIssue(schedule.cron);
  if (cron) issues.push({ field: `${field}.cron`, message: cron });
  const timezone = timeZoneIssue(schedule.timezone);
  if (timezone) issues.push({ field: `${field}.timezone`, message: timezone });
  return issues;
}

/**
 * Every reason a `DefinePolicy` from the API is refused: an id of the label policies, an id held
 * by a policy of another origin (`existingOrigin`, when one is defined), a bad schedule or drill schedule.
 */
export function policyDefinitionIssues(command: {
  readonly policyId: string;
  readonly policy: {
    readonly schedule: { readonly cron: string; readonly timezone: string };
    readonly drill?: { readonly schedule: { readonly cron: string; readonly timezone: string } } | undefined;
  };
  readonly existingOrigin?: PolicyOrigin | undefined;
}): PolicyIssue[] {
  const issues: PolicyIssue[] = [];
  if (command.policyId.startsWith(LABEL_POLICY_PREFIX)) {
    issues.push({
      field: 'policyId',
      message: `policy ids starting with "${LABEL_POLICY_PREFIX}" are the scheduler's label policies`,
    });
  } else if (command.policyId === CONFIGURED_DEFAULT_POLICY_ID) {
    issues.push({
      field: 'policyId',
      message: `${CONFIGURED_DEFAULT_POLICY_ID} is the scheduler's configured default; change its VOLBACK_SCHEDULER_DEFAULT_* settings`,
    });
  } else if (command.existingOrigin && command.existingOrigin !== 'api') {
    issues.push({
      field: 'policyId',
      message: `policy ${command.policyId} is a ${command.existingOrigin} policy; it cannot be replaced through the API`,
    });
  }
  const drill = command.policy.drill;
  return [
    ...issues,
    ...scheduleIssues(command.policy.schedule),
    ...(drill ? scheduleIssues(drill.schedule, 'policy.drill.schedule') : []),
  ];
}

/**
 * Every reason a `RemovePolicy` is refused: no such policy (`existingOrigin` undefined), or one
 * that does not come from the API (label policies go with their labels).
 */
export function policyRemovalIssues(
  policyId: string,
  existingOrigin: PolicyOrigin | undefined,
): PolicyIssue[] {
  if (!existingOrigin) return [{ field: 'policyId', message: `no policy ${policyId} is defined` }];
  if (existingOrigin === 'api') return [];
  const how =
    existingOrigin === 'labels'
      ? 'change or remove the volback.* labels of the volume and its containers'
      : "change the scheduler's VOLBACK_SCHEDULER_DEFAULT_* settings";
  return [
    {
      field: 'policyId',
      message: `policy ${policyId} comes from ${existingOrigin}, not the API: ${how} to remove it`,
    },
  ];
}

/** The issues as one sentence, for a reason field or a log line. */
export function issuesText(issues: readonly PolicyIssue[]): string {
  return issues.map((i) => `${i.field}: ${i.message}`).join('; ');
}

/**
 * The next `count` runs of a schedule strictly after `after`, as the scheduler reads the
 * expression (croner, 5 or 6 fields, in the schedule's time zone); check {@link scheduleIssues}
 * first. The scheduler adds its jitter to each slot.
 */
export function nextScheduledRuns(
  schedule: { readonly cron: string; readonly timezone: string },
  after: Date,
  count: number,
): Date[] {
  return new Cron(schedule.cron, {
    timezone: schedule.timezone,
    paused: true,
    mode: '5-or-6-parts',
  }).nextRuns(count, after);
}
