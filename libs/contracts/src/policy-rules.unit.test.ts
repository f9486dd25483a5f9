import { describe, expect, it } from 'vitest';
import {
  nextScheduledRuns,
  policyDefinitionIssues,
  policyRemovalIssues,
  scheduleIssues,
} from './policy-rules.ts';

const daily = { cron: '0 2 * * *', timezone: 'UTC' };

describe('policy rules', () => {
  it('accept a good schedule, with or without seconds, in any IANA time zone', () => {
    expect(scheduleIssues(daily)).toEqual([]);
    expect(scheduleIssues({ cron: '*/5 * * * * *', timezone: 'Europe/Berlin' })).toEqual([]);
  });

  it('name every problem of a schedule at once, each with its field', () => {
    expect(scheduleIssues({ cron: '61 2 * * *', timezone: 'Mars/Base' })).toEqual([
      { field: 'policy.schedule.cron', message: expect.stringMatching(/minute/) },
      { field: 'policy.schedule.timezone', message: expect.stringMatching(/unknown time zone "Mars\/Base"/) },
    ]);
    expect(scheduleIssues({ cron: '0 0 30 2 *', timezone: 'UTC' })).toEqual([
      { field: 'policy.schedule.cron', message: '"0 0 30 2 *" never matches a date' },
    ]);
    expect(scheduleIssues({ cron: 'daily', timezone: 'UTC' })[0]!.message).toMatch(/5 fields/);
  });

  it('refuse the label policies’ ids and policies of other origins, besides the schedule', () => {
    const issues = policyDefinitionIssues({
      policyId: 'labels:h:v',
      policy: { schedule: { cron: '0 2 * * *', timezone: 'Nowhere' } },
    });
    expect(issues.map((i) => i.field)).toEqual(['policyId', 'policy.schedule.timezone']);
    expect(
      policyDefinitionIssues({ policyId: 'p', policy: { schedule: daily }, existingOrigin: 'labels' }),
    ).toHaveLength(1);
    expect(
      policyDefinitionIssues({ policyId: 'p', policy: { schedule: daily }, existingOrigin: 'api' }),
    ).toEqual([]);
    // A drill's schedule is checked as the backup schedule is.
    const drill = policyDefinitionIssues({
      policyId: 'p',
      policy: { schedule: daily, drill: { schedule: { cron: '0 25 * * *', timezone: 'UTC' } } },
    });
    expect(drill.map((i) => i.field)).toEqual(['policy.drill.schedule.cron']);
  });

  it('remove only API policies that exist', () => {
    expect(policyRemovalIssues('p', 'api')).toEqual([]);
    expect(policyRemovalIssues('p', undefined)).toEqual([
      { field: 'policyId', message: 'no policy p is defined' },
    ]);
    expect(policyRemovalIssues('labels:h:v', 'labels')[0]!.message).toMatch(/comes from labels/);
  });
});

describe('nextScheduledRuns', () => {
  it('given a daily schedule in a time zone, then it lists the next runs in that zone, after the reference', () => {
    const runs = nextScheduledRuns(
      { cron: '0 3 * * *', timezone: 'Europe/Berlin' },
      new Date('2025-03-28T12:00:00Z'),
      3,
    ).map((d) => d.toISOString());
    // 03:00 in Berlin: UTC+1 until the switch on 30 March, UTC+2 after.
    expect(runs).toEqual([
      '2025-03-29T02:00:00.000Z',
      '2025-03-30T01:00:00.000Z',
      '2025-03-31T01:00:00.000Z',
    ]);
  });
});
