import { describe, expect, it } from 'vitest';
import { mergePolicyLabels, policyFromLabels, POLICY_LABELS } from './labels.ts';
import { DEFAULT_SETTINGS } from './settings.ts';

const base = DEFAULT_SETTINGS.defaultPolicy;
const labels = (record: Record<string, string>) => new Map(Object.entries(record));

describe('policy labels', () => {
  it('override the base policy: schedule with time zone, retention, excludes, repository, rpo, enabled', () => {
    const result = policyFromLabels(
      base,
      labels({
        'volback.schedule': '15 3 * * *',
        'volback.schedule.tz': 'Europe/Berlin',
        'volback.retention.keep-daily': '7',
        'volback.retention.keep-within': '1y6m',
        'volback.excludes': 'cache/**, *.tmp',
        'volback.repository': 'offsite',
        'volback.rpo': '26h',
        'volback.enabled': 'yes',
      }),
    );
    expect(result).toEqual({
      ok: true,
      policy: {
        ...base,
        schedule: { cron: '15 3 * * *', timezone: 'Europe/Berlin' },
        // any retention label replaces the whole default retention
        retention: { keepDaily: 7, keepWithin: '1y6m' },
        excludes: ['cache/**', '*.tmp'],
        repositoryId: 'offsite',
        rpoSeconds: 26 * 3600,
      },
    });
  });

  it.each([
    ['volback.enabled', 'maybe', /not true or false/],
    ['volback.schedule', 'every night', /5 fields/],
    ['volback.schedule', '0 25 * * *', /hour/i],
    ['volback.schedule.tz', 'Mars/Base', /Mars\/Base/],
    ['volback.retention.keep-last', '-1', /whole number/],
    ['volback.retention.keep-last', '0', /keep something/],
    ['volback.retention.keep-within', '7 days', /restic duration/],
    ['volback.repository', 'Off Site', /lower-case/],
    ['volback.rpo', '0', /positive duration/],
  ])('%s=%j is refused with a reason naming the label', (label, value, reason) => {
    const result = policyFromLabels(base, labels({ [label]: value }));
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.problem.label).toBe(label);
    expect(result.problem.value).toBe(value);
    expect(result.problem.reason).toMatch(reason);
  });

  it('merge the volume and its containers: the volume wins, ignored labels stay out', () => {
    const merged = mergePolicyLabels([
      { kind: 'container', name: 'app', labels: { 'volback.schedule': '0 1 * * *', 'com.example': 'x' } },
      { kind: 'volume', labels: { 'volback.schedule': '0 4 * * *' } },
      {
        kind: 'container',
        name: 'web',
        labels: { 'volback.retention.keep-last': '3', 'volback.consistency': 'stop' },
      },
    ]);
    expect(merged).toEqual({
      ok: true,
      labels: new Map([
        [POLICY_LABELS.schedule, '0 4 * * *'],
        [POLICY_LABELS.keepLast, '3'],
      ]),
    });
  });

  it('containers that disagree about a label are a problem naming both', () => {
    const merged = mergePolicyLabels([
      { kind: 'container', name: 'a', labels: { 'volback.schedule': '0 1 * * *' } },
      { kind: 'container', name: 'b', labels: { 'volback.schedule': '0 2 * * *' } },
    ]);
    expect(merged.ok).toBe(false);
    if (!merged.ok)
      expect(merged.problem.reason).toMatch(
        /container a says "0 1 \* \* \*" and container b says "0 2 \* \* \*"/,
      );
  });
});
