import {
  LABEL_POLICY_PREFIX,
  PolicyDefined,
  PolicyRejected,
  PolicyRemoved,
  type PolicySpec,
} from '@volback/contracts';
import { boundedId, shortHash } from './ids.ts';
import { canonicalJson, eventIntent, type Decision } from './intents.ts';
import { mergePolicyLabels, policyFromLabels, type LabelSource } from './labels.ts';
import type { SchedulerSettings } from './settings.ts';
import { rejectionKey, type ContainerView, type SchedulerState, type VolumeView } from './state.ts';

/** The id of a volume's label policy. */
export function labelPolicyId(hostId: string, volumeName: string): string {
  return boundedId(`${LABEL_POLICY_PREFIX}${hostId}:${volumeName}`);
}

/**
 * Where a volume's policy comes from, most specific first (README, "Policy precedence"):
 * an API policy for the volume, its labels, an API default policy, the configured default.
 */
export type PolicySource = 'api-volume' | 'labels' | 'api-default' | 'configuration';

/** The policy a volume is protected by, and where it comes from. */
export interface EffectivePolicy {
  readonly source: PolicySource;
  readonly policyId?: string;
  readonly policy: PolicySpec;
}

/** The default every unlabelled volume gets, and the base label policies override. */
export function basePolicy(state: SchedulerState, settings: SchedulerSettings): EffectivePolicy {
  let best: { policyId: string; policy: PolicySpec; order: number } | undefined;
  for (const record of state.policies.values()) {
    if (
      record.origin !== 'labels' &&
      record.scope.kind === 'default' &&
      (!best || record.order > best.order)
    ) {
      best = record;
    }
  }
  return best
    ? { source: 'api-default', policyId: best.policyId, policy: best.policy }
    : { source: 'configuration', policy: settings.defaultPolicy };
}

/** The policy a volume is protected by, or undefined when no policy covers it. */
export function effectivePolicy(
  state: SchedulerState,
  volume: Pick<VolumeView, 'hostId' | 'volumeName' | 'anonymous'>,
  settings: SchedulerSettings,
): EffectivePolicy | undefined {
  let api: { policyId: string; policy: PolicySpec; order: number } | undefined;
  for (const record of state.policies.values()) {
    const scope = record.scope;
    if (
      record.origin !== 'labels' &&
      scope.kind === 'volume' &&
      scope.hostId === volume.hostId &&
      scope.volumeName === volume.volumeName &&
      (!api || record.order > api.order)
    ) {
      api = record;
    }
  }
  if (api) return { source: 'api-volume', policyId: api.policyId, policy: api.policy };
  const labels = state.policies.get(labelPolicyId(volume.hostId, volume.volumeName));
  if (labels) return { source: 'labels', policyId: labels.policyId, policy: labels.policy };
  if (settings.defaultMode === 'labelled' || (volume.anonymous && !settings.includeAnonymous))
    return undefined;
  return basePolicy(state, settings);
}

/** The policies that cover volumes, keyed once per decision round (policy lookups are per volume). */
export function containersByVolume(state: SchedulerState): Map<string, ContainerView[]> {
  const index = new Map<string, ContainerView[]>();
  for (const container of state.containers.values()) {
    for (const volumeName of container.volumeNames) {
      const key = `${container.hostId}\u0000${volumeName}`;
      const list = index.get(key);
      if (list) list.push(container);
      else index.set(key, [container]);
    }
  }
  return index;
}

/**
 * Keeps each volume's label policy in line with its labels and those of its containers: a
 * `PolicyDefined` (origin `labels`) when they say something new, `PolicyRemoved` when the policy
 * labels are gone, `PolicyRejected` (once per bad value) when one cannot be used, the volume then
 * keeping its last valid policy.
 */
export function decideLabelPolicies(
  state: SchedulerState,
  now: number,
  settings: SchedulerSettings,
  index = containersByVolume(state),
): Decision[] {
  const decisions: Decision[] = [];
  const base = basePolicy(state, settings).policy;
  const stamp = (id: string) => ({ id, now, source: settings.source });
  for (const volume of state.volumes.values()) {
    const policyId = labelPolicyId(volume.hostId, volume.volumeName);
    const current = state.policies.get(policyId);
    const sources: LabelSource[] = [
      { kind: 'volume', labels: volume.labels },
      ...(index.get(volume.key) ?? []).map((c) => ({
        kind: 'container' as const,
        name: c.name,
        labels: c.labels,
      })),
    ];
    const merged = mergePolicyLabels(sources);
    const version = `${policyId}\u0000${current?.order ?? 0}`;
    const reject = (label: string, value: string, reason: string): void => {
      const key = rejectionKey(label, value);
      if (state.rejections.get(policyId) === key) return;
      decisions.push({
        what: 'policy-rejected',
        intents: [
          eventIntent(
            PolicyRejected,
            {
              policyId,
              hostId: volume.hostId,
              volumeName: volume.volumeName,
              label: label.slice(0, 1000),
              value: value.slice(0, 10_000),
              reason:
                `volume ${volume.volumeName} on ${volume.hostId}: label ${label} is ${JSON.stringify(value.slice(0, 200))}: ${reason}`.slice(
                  0,
                  4000,
                ),
              rejectedAt: new Date(now).toISOString(),
            },
            stamp(`policy-rejected-${shortHash(`${version}\u0000${key}`)}`),
          ),
        ],
      });
    };
    if (!merged.ok) {
      reject(merged.problem.label, merged.problem.value, merged.problem.reason);
      continue;
    }
    if (merged.labels.size === 0) {
      if (current?.origin === 'labels') {
        decisions.push({
          what: 'policy-removed',
          intents: [
            eventIntent(
              PolicyRemoved,
              { policyId, removedBy: 'labels', removedAt: new Date(now).toISOString() },
              stamp(`policy-removed-${shortHash(version)}`),
            ),
          ],
        });
      }
      continue;
    }
    const result = policyFromLabels(base, merged.labels);
    if (!result.ok) {
      reject(result.problem.label, result.problem.value, result.problem.reason);
      continue;
    }
    const spec = canonicalJson(result.policy);
    if (current && canonicalJson(current.policy) === spec) continue;
    decisions.push({
      what: 'policy-defined',
      intents: [
        eventIntent(
          PolicyDefined,
          {
            policyId,
            scope: { kind: 'volume', hostId: volume.hostId, volumeName: volume.volumeName },
            origin: 'labels',
            policy: result.policy,
            definedBy: 'labels',
            definedAt: new Date(now).toISOString(),
          },
          stamp(`policy-defined-${shortHash(`${version}\u0000${spec}`)}`),
        ),
      ],
    });
  }
  return decisions;
}
