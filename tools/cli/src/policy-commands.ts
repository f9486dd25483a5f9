// `volback policies list|show|set|remove`: set and remove wait for the scheduler's outcome.
import type { Policy } from './api.ts';
import { flagOf } from './api-fields.ts';
import { EXIT, type CatalogContext } from './catalog-context.ts';
import {
  displayTime,
  enc,
  hostLabel,
  hostNames,
  listLimit,
  noteTruncated,
  resolveVolume,
  retentionOf,
} from './catalog-lookups.ts';
import { table } from './output.ts';
import { UsageError } from './usage-error.ts';

/** Lists the policies, the scope of each told by host name. */
export async function policiesListCommand(
  ctx: CatalogContext,
  o: { limit?: string; all?: boolean },
): Promise<number> {
  const { items, more } = await ctx.client.collect<Policy>('/v1/policies', listLimit(o));
  const names = ctx.json ? new Map<string, string>() : await hostNames(ctx);
  ctx.out.result(items, () =>
    table(
      ['POLICY', 'SCOPE', 'ORIGIN', 'SCHEDULE', 'ENABLED'],
      items.map((p) => [
        p.policyId,
        p.scope.kind === 'volume'
          ? `${hostLabel(names, p.scope.hostId ?? '')}/${p.scope.volumeName}`
          : 'default',
        p.origin,
        (p.policy['schedule'] as { cron?: string } | undefined)?.cron ?? '-',
        p.policy['enabled'] === false ? 'no' : 'yes',
      ]),
    ),
  );
  if (more) noteTruncated(ctx.out, items.length, 'policies');
  return EXIT.ok;
}

/** A policy as a person reads it: one line per setting. */
function policyText(p: Policy, names: Map<string, string>): string {
  const spec = p.policy as {
    enabled?: boolean;
    schedule?: { cron?: string; timezone?: string };
    retention?: Record<string, unknown>;
    excludes?: string[];
    consistency?: { mode?: string };
    repositoryId?: string;
    rpoSeconds?: number;
  };
  const retention = Object.entries(spec.retention ?? {})
    .map(([k, v]) => `${k.replace(/^keep/, '').toLowerCase()} ${Array.isArray(v) ? v.join(',') : String(v)}`)
    .join(', ');
  const rows: Array<[string, string]> = [
    ['policy', p.policyId],
    [
      'scope',
      p.scope.kind === 'volume'
        ? `volume ${p.scope.volumeName} on ${hostLabel(names, p.scope.hostId ?? '')}`
        : 'default (every volume without its own)',
    ],
    ['origin', p.origin],
    ['enabled', spec.enabled === false ? 'no' : 'yes'],
    ['schedule', spec.schedule?.cron ? `${spec.schedule.cron} (${spec.schedule.timezone ?? 'UTC'})` : '-'],
    ['retention', retention ? `keep ${retention}` : '-'],
    ['excludes', spec.excludes?.length ? spec.excludes.join(', ') : '-'],
    ['consistency', spec.consistency?.mode ?? 'none'],
    ['repository', spec.repositoryId ?? 'default'],
    ...(spec.rpoSeconds ? [['rpo', `${spec.rpoSeconds} s`] as [string, string]] : []),
    ['defined', `${displayTime(p.definedAt)}${p.definedBy ? ` by ${p.definedBy}` : ''}`],
  ];
  return rows.map(([k, v]) => `${k.padEnd(12)} ${v}`).join('\n');
}

/** How long `policies set`/`remove` wait for the scheduler's answer before they give up. */
const POLICY_OUTCOME_WAIT_MS = 60_000;

interface PolicyOutcome {
  type: string;
  data: { reason?: string; issues?: Array<{ field: string; message: string }> };
}

/**
 * Sends a policy command and waits for the scheduler's outcome: the event on the policy whose
 * `causationid` is the command id the catalog answered (`PolicyDefined`, `PolicyRemoved` or
 * `PolicyRejected`). The live stream is open before the command is sent, so the answer is never missed.
 */
async function sendPolicyCommand(
  ctx: CatalogContext,
  policyId: string,
  send: () => Promise<{ commandId: string }>,
): Promise<{ commandId: string; outcome: PolicyOutcome | undefined }> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), POLICY_OUTCOME_WAIT_MS);
  let commandId: string | undefined;
  let outcome: PolicyOutcome | undefined;
  try {
    await ctx.client.stream(
      `/v1/events/stream?type=${enc('io.volback.policy.')}`,
      (event) => {
        const envelope = JSON.parse(event.data) as PolicyOutcome & { causationid?: string };
        if (commandId === undefined || envelope.causationid !== commandId) return false;
        outcome = envelope;
        return true;
      },
      controller.signal,
      async () => {
        commandId = (await send()).commandId;
      },
    );
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
  if (commandId === undefined) throw new Error(`policy ${policyId}: the catalog did not take the command`);
  return { commandId, outcome };
}

/** The exit code and message of a policy command's outcome. */
function reportPolicyOutcome(
  ctx: CatalogContext,
  policyId: string,
  done: string,
  result: { commandId: string; outcome: PolicyOutcome | undefined },
): number {
  const { outcome, commandId } = result;
  if (outcome === undefined) {
    ctx.out.warn(
      `policy ${policyId}: sent (command ${commandId}) but the scheduler did not answer within ${POLICY_OUTCOME_WAIT_MS / 1000} s; is it running?`,
    );
    return EXIT.failed;
  }
  if (outcome.type.startsWith('io.volback.policy.rejected.')) {
    // The scheduler names fields in the command's data (`policy.schedule.timezone`); the API's
    // names for them carry `body.` (or `params.` for the id), which is what the flag table reads.
    const issues = outcome.data.issues?.length
      ? outcome.data.issues.map(
          (i) => `  ${flagOf(i.field === 'policyId' ? 'params.policyId' : `body.${i.field}`)}: ${i.message}`,
        )
      : [`  ${outcome.data.reason ?? 'no reason given'}`];
    if (ctx.json) ctx.out.result({ policyId, commandId, outcome: 'rejected', ...outcome.data }, () => '');
    else
      process.stderr.write(`volback: policy ${policyId} refused by the scheduler:\n${issues.join('\n')}\n`);
    return EXIT.failed;
  }
  ctx.out.result({ policyId, commandId, outcome: done }, () => `policy ${policyId} ${done}`);
  return EXIT.ok;
}

export async function policiesShowCommand(ctx: CatalogContext, id: string): Promise<number> {
  const policy = await ctx.client.get<Policy>(`/v1/policies/${enc(id)}`);
  const names = ctx.json ? new Map<string, string>() : await hostNames(ctx);
  ctx.out.result(policy, () => policyText(policy, names));
  return EXIT.ok;
}

export async function policiesRemoveCommand(ctx: CatalogContext, id: string): Promise<number> {
  const result = await sendPolicyCommand(ctx, id, () =>
    ctx.client.send<{ commandId: string }>('DELETE', `/v1/policies/${enc(id)}?requestedBy=volback-cli`),
  );
  return reportPolicyOutcome(ctx, id, 'removed', result);
}

export async function policiesSetCommand(
  ctx: CatalogContext,
  id: string,
  o: Record<string, unknown>,
): Promise<number> {
  let scope: object;
  if (o['default']) scope = { kind: 'default' };
  else if (typeof o['volume'] === 'string') {
    const volume = await resolveVolume(ctx, o['volume'], o['host'] as string | undefined);
    scope = { kind: 'volume', hostId: volume.hostId, volumeName: volume.volumeName };
  } else throw new UsageError('--default or --volume <name> is required');
  if ((o['drillHealth'] || o['drillContainers']) && !o['drillCron']) {
    throw new UsageError('--drill-health and --drill-containers need --drill-cron (when to drill)');
  }
  const drill = o['drillCron']
    ? {
        drill: {
          schedule: { cron: o['drillCron'], ...(o['timezone'] ? { timezone: o['timezone'] } : {}) },
          containers: Boolean(o['drillContainers']),
          ...(o['drillHealth'] ? { health: o['drillHealth'] } : {}),
        },
      }
    : {};
  const body = {
    scope,
    policy: {
      enabled: !o['disabled'],
      schedule: { cron: o['cron'], ...(o['timezone'] ? { timezone: o['timezone'] } : {}) },
      retention: retentionOf(o),
      ...(o['exclude'] ? { excludes: o['exclude'] } : {}),
      ...(o['consistency'] ? { consistency: { mode: o['consistency'] } } : {}),
      ...drill,
    },
    requestedBy: 'volback-cli',
  };
  const result = await sendPolicyCommand(ctx, id, () =>
    ctx.client.send<{ commandId: string }>('PUT', `/v1/policies/${enc(id)}`, body),
  );
  return reportPolicyOutcome(ctx, id, 'defined', result);
}
