import { describe, expect, it } from 'vitest';
import {
  basePolicy,
  CONFIGURED_DEFAULT_POLICY_ID,
  effectivePolicy,
  type PolicyRecord,
} from './effective-policy.ts';
import { policyDefinitionIssues } from './policy-rules.ts';
import { policySpec, type PolicyCoverage } from './policy.ts';

const spec = (cron: string) => policySpec.parse({ schedule: { cron }, retention: { keepLast: 1 } });
const volume = { hostId: 'h', volumeName: 'data', anonymous: false };
const all: PolicyCoverage = { mode: 'all', includeAnonymous: false };
let order = 0;
const record = (
  policyId: string,
  origin: PolicyRecord['origin'],
  scope: PolicyRecord['scope'] = { kind: 'default' },
): PolicyRecord => ({ policyId, origin, scope, policy: spec('0 3 * * *'), order: ++order });
const forData = { kind: 'volume', hostId: 'h', volumeName: 'data' } as const;

describe('effective policy (one rule for the scheduler and the catalog)', () => {
  it('most specific first: the volume’s API policy, its labels, an API default, the configured default', () => {
    const configured = record(CONFIGURED_DEFAULT_POLICY_ID, 'configuration');
    const apiDefault = record('everything', 'api');
    const labels = record('labels:h:data', 'labels', forData);
    const apiVolume = record('data-policy', 'api', forData);
    const id = (records: PolicyRecord[]) => effectivePolicy(records, volume, all)?.policyId;
    expect(id([configured])).toBe(CONFIGURED_DEFAULT_POLICY_ID);
    expect(id([configured, apiDefault])).toBe('everything');
    expect(id([apiDefault, labels])).toBe('labels:h:data');
    expect(id([labels, apiVolume, configured])).toBe('data-policy');
    expect(effectivePolicy([labels, apiVolume], volume, all)?.source).toBe('api-volume');
  });

  it('of two policies for one scope, the one defined later wins, whatever its id', () => {
    const first = record('zzz', 'api', forData);
    const later = record('aaa', 'api', forData);
    expect(effectivePolicy([later, first], volume, all)?.policyId).toBe('aaa');
    const d1 = record('b-default', 'api');
    const d2 = record('a-default', 'api');
    expect(basePolicy([d2, d1])?.policyId).toBe('a-default');
  });

  it('the defaults protect what the coverage says: nothing unlabelled in `labelled` mode, anonymous volumes when included', () => {
    const records = [record(CONFIGURED_DEFAULT_POLICY_ID, 'configuration'), record('everything', 'api')];
    expect(effectivePolicy(records, volume, { mode: 'labelled', includeAnonymous: true })).toBeUndefined();
    const anonymous = { ...volume, anonymous: true };
    expect(effectivePolicy(records, anonymous, all)).toBeUndefined();
    expect(effectivePolicy(records, anonymous, { ...all, includeAnonymous: true })?.policyId).toBe(
      'everything',
    );
    // without a known coverage (no scheduler has published its configuration) the defaults protect nothing
    expect(effectivePolicy(records, volume, undefined)).toBeUndefined();
    // a volume's own policies apply whatever the coverage
    const labels = record('labels:h:data', 'labels', forData);
    expect(effectivePolicy([labels], volume, undefined)?.policyId).toBe('labels:h:data');
  });

  it('the scheduler’s own configured default stands in for the one in the log', () => {
    const logged = record(CONFIGURED_DEFAULT_POLICY_ID, 'configuration');
    const own = { policy: spec('0 4 * * *') };
    expect(effectivePolicy([logged], volume, all, own)).toEqual({
      source: 'configuration',
      policyId: CONFIGURED_DEFAULT_POLICY_ID,
      policy: own.policy,
    });
    expect(basePolicy([])).toBeUndefined();
  });

  it('the API cannot define the configured default', () => {
    expect(
      policyDefinitionIssues({
        policyId: CONFIGURED_DEFAULT_POLICY_ID,
        policy: { schedule: { cron: '0 2 * * *', timezone: 'UTC' } },
      }).map((i) => i.field),
    ).toEqual(['policyId']);
  });
});
