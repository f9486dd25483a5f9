import { describe, expect, it } from 'vitest';
import { policyDefinitionIssues, policyRemovalIssues, scheduleIssues } from './policy-rules.ts';

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
  });

  it('remove only API policies that exist', () => {
    expect(policyRemovalIssues('p', 'api')).toEqual([]);
    expect(policyRemovalIssues('p', undefined)).toEqual([
      { field: 'policyId', message: 'no policy p is defined' },
    ]);
    expect(policyRemovalIssues('labels:h:v', 'labels')[0]!.message).toMatch(/comes from labels/);
  });
});
