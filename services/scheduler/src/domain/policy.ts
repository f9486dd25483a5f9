import {
  basePolicy as sharedBasePolicy,
  CONFIGURED_DEFAULT_POLICY_ID,
  effectivePolicy as sharedEffectivePolicy,
  LABEL_POLICY_PREFIX,
  PolicyDefined,
  PolicyRejected,
  PolicyRemoved,
  policySpec,
  type ConfiguredDefault,
  type EffectivePolicy,
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

export type { EffectivePolicy, PolicySource } from '@volback/contracts';

/** The scheduler's own configured default: its policy, and which volumes the defaults protect. */
export function configuredDefault(settings: SchedulerSettings): ConfiguredDefault {
  return {
    policy: settings.defaultPolicy,
    coverage: { mode: settings.defaultMode, includeAnonymous: settings.includeAnonymous },
  };
}

/** The default every unlabelled volume gets, and the base label policies override (the contracts' rule). */
export function basePolicy(state: SchedulerState, settings: SchedulerSettings): EffectivePolicy {
  return sharedBasePolicy(state.policies.values(), configuredDefault(settings))!;
}

/**
 * The policy a volume is protected by, or undefined when no policy covers it: the contracts' rule
 * (`effectivePolicy`, the one the catalog shows), with this scheduler's configured default.
 */
export function effectivePolicy(
  state: SchedulerState,
  volume: Pick<VolumeView, 'hostId' | 'volumeName' | 'anonymous'>,
  settings: SchedulerSettings,
): EffectivePolicy | undefined {
  const configured = configuredDefault(settings);
  return sharedEffectivePolicy(state.policies.values(), volume, configured.coverage, configured);
}

/**
 * `PolicyDefined` (origin `configuration`, id {@link CONFIGURED_DEFAULT_POLICY_ID}) when the
 * configured default or its coverage differs from what the log holds: the catalog then shows the
 * same effective policies as the scheduler decides by.
 */
export function decideConfiguredDefault(
  state: SchedulerState,
  now: number,
  settings: SchedulerSettings,
): Decision[] {
  const configured = configuredDefault(settings);
  const current = state.policies.get(CONFIGURED_DEFAULT_POLICY_ID);
  // As the log holds it: parsed, defaults filled in.
  const spec = canonicalJson({ ...configured, policy: policySpec.parse(configured.policy) });
  if (
    current?.origin === 'configuration' &&
    canonicalJson({ policy: current.policy, coverage: current.coverage }) === spec
  ) {
    return [];
  }
  const version = `${CONFIGURED_DEFAULT_POLICY_ID}\u0000${current?.order ?? 0}\u0000${spec}`;
  return [
    {
      what: 'policy-defined',
      intents: [
        eventIntent(
          PolicyDefined,
          {
            policyId: CONFIGURED_DEFAULT_POLICY_ID,
            scope: { kind: 'default' },
            origin: 'configuration',
            policy: configured.policy,
            coverage: configured.coverage,
            definedBy: 'configuration',
            definedAt: new Date(now).toISOString(),
          },
          { id: `policy-defined-${shortHash(version)}`, now, source: settings.source },
        ),
      ],
    },
  ];
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
