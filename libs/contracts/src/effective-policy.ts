// Which policy protects a volume, in one place: the scheduler decides backups by it, the catalog
// shows it (and its policy id) from the same records, so they cannot disagree.
import type { PolicyCoverage, PolicySpec } from './policy.ts';
import type { PolicyOrigin } from './policy-rules.ts';

/** Id of the policy the scheduler publishes from its configuration (origin `configuration`). */
export const CONFIGURED_DEFAULT_POLICY_ID = 'configuration:default';

/**
 * Where a volume's policy comes from, most specific first: an API policy for the volume, its
 * labels, an API default policy, the scheduler's configured default.
 */
export type PolicySource = 'api-volume' | 'labels' | 'api-default' | 'configuration';

/** A defined policy as the rule needs it: `PolicyDefined`'s fields and when it was defined. */
export interface PolicyRecord {
  readonly policyId: string;
  readonly scope:
    | { readonly kind: 'default' }
    | { readonly kind: 'volume'; readonly hostId: string; readonly volumeName: string };
  readonly origin: PolicyOrigin;
  readonly policy: PolicySpec;
  /** Definition order in the event log: of two policies for one scope, the later one wins. */
  readonly order: number;
}

/** The scheduler's configured default: its policy, and which volumes the defaults protect. */
export interface ConfiguredDefault {
  readonly policy: PolicySpec;
  readonly coverage: PolicyCoverage;
}

/** The policy a volume is protected by, and where it comes from. */
export interface EffectivePolicy {
  readonly source: PolicySource;
  /** Absent only for a configured default known from configuration rather than the log. */
  readonly policyId?: string;
  readonly policy: PolicySpec;
}

/** The volume a policy is looked up for. */
export interface PolicyTarget {
  readonly hostId: string;
  readonly volumeName: string;
  readonly anonymous: boolean;
}

/** The latest of each kind of record that may apply to `volume` (one pass: rules run per volume). */
function candidates(records: Iterable<PolicyRecord>, volume?: PolicyTarget) {
  let apiVolume: PolicyRecord | undefined;
  let labels: PolicyRecord | undefined;
  let apiDefault: PolicyRecord | undefined;
  let configuration: PolicyRecord | undefined;
  const later = (best: PolicyRecord | undefined, r: PolicyRecord) =>
    !best || r.order > best.order ? r : best;
  for (const r of records) {
    if (r.scope.kind === 'default') {
      if (r.origin === 'api') apiDefault = later(apiDefault, r);
      else if (r.origin === 'configuration') configuration = later(configuration, r);
    } else if (volume && r.scope.hostId === volume.hostId && r.scope.volumeName === volume.volumeName) {
      if (r.origin === 'api') apiVolume = later(apiVolume, r);
      else if (r.origin === 'labels') labels = later(labels, r);
    }
  }
  return { apiVolume, labels, apiDefault, configuration };
}

function base(
  found: ReturnType<typeof candidates>,
  configured: Pick<ConfiguredDefault, 'policy'> | undefined,
): EffectivePolicy | undefined {
  const { apiDefault, configuration } = found;
  if (apiDefault) return { source: 'api-default', policyId: apiDefault.policyId, policy: apiDefault.policy };
  if (configured) {
    return { source: 'configuration', policyId: CONFIGURED_DEFAULT_POLICY_ID, policy: configured.policy };
  }
  return (
    configuration && {
      source: 'configuration',
      policyId: configuration.policyId,
      policy: configuration.policy,
    }
  );
}

/**
 * The default every unlabelled volume gets, and the base label policies build on: the latest API
 * default policy, else the configured default (`configured`: the scheduler's own settings; when
 * absent, the `configuration` policy the log holds). Undefined when neither is known.
 */
export function basePolicy(
  records: Iterable<PolicyRecord>,
  configured?: Pick<ConfiguredDefault, 'policy'>,
): EffectivePolicy | undefined {
  return base(candidates(records), configured);
}

/**
 * The policy a volume is protected by, or undefined when none covers it. Most specific first: an
 * API policy for the volume (the latest defined), its label policy, then — when `coverage` lets
 * the defaults protect it — the {@link basePolicy}. Without a known coverage the defaults protect
 * nothing.
 */
export function effectivePolicy(
  records: Iterable<PolicyRecord>,
  volume: PolicyTarget,
  coverage: PolicyCoverage | undefined,
  configured?: Pick<ConfiguredDefault, 'policy'>,
): EffectivePolicy | undefined {
  const found = candidates(records, volume);
  if (found.apiVolume) {
    return { source: 'api-volume', policyId: found.apiVolume.policyId, policy: found.apiVolume.policy };
  }
  if (found.labels) return { source: 'labels', policyId: found.labels.policyId, policy: found.labels.policy };
  if (!coverage || coverage.mode === 'labelled' || (volume.anonymous && !coverage.includeAnonymous)) {
    return undefined;
  }
  return base(found, configured);
}
