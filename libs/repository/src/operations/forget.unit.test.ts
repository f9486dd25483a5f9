import { describe, expect, it } from 'vitest';
import type { Snapshot } from '../format/snapshot.ts';
import { applyPolicy, groupSnapshots, matchesFilter, policyIsEmpty, type ForgetPolicy } from './forget.ts';

const TREE = 'a'.repeat(64);
/** Later than every snapshot below unless a test says otherwise. */
const NOW = Date.parse('2030-01-01T00:00:00Z');

interface Given {
  time: string;
  host?: string;
  paths?: string[];
  tags?: string[];
}

let counter = 0;
/** A snapshot whose id names its time, so failures read well. */
function snap({ time, host = 'db-1', paths = ['/data'], tags }: Given): { id: string; snapshot: Snapshot } {
  counter++;
  const snapshot: Snapshot = { time, tree: TREE, paths, hostname: host, ...(tags ? { tags } : {}) };
  return { id: `${time}#${counter}`, snapshot };
}

function given(...times: Array<string | Given>): Array<{ id: string; snapshot: Snapshot }> {
  return times.map((t) => snap(typeof t === 'string' ? { time: t } : t));
}

/** The times of the snapshots the policy keeps, newest first. */
function kept(group: Array<{ id: string; snapshot: Snapshot }>, policy: ForgetPolicy, now = NOW): string[] {
  return applyPolicy(group, policy, now)
    .filter((d) => d.keep)
    .map((d) => d.snapshot.time);
}

describe('applyPolicy (restic 0.14 ApplyPolicy)', () => {
  it('given no rule, when applied, then every snapshot is kept', () => {
    const group = given('2024-01-01T00:00:00Z', '2024-01-02T00:00:00Z');
    expect(policyIsEmpty({})).toBe(true);
    expect(policyIsEmpty({ keepLast: 0, keepWithin: '0d0h', keepTags: [] })).toBe(true);
    expect(kept(group, { keepWithin: '0d' })).toEqual(['2024-01-02T00:00:00Z', '2024-01-01T00:00:00Z']);
    expect(applyPolicy(group, {}, NOW).every((d) => d.reasons.includes('policy is empty'))).toBe(true);
  });

  it('given five snapshots, when keep-last 3, then the three newest are kept whatever their order', () => {
    const group = given(
      '2024-01-03T00:00:00Z',
      '2024-01-05T00:00:00Z',
      '2024-01-01T00:00:00Z',
      '2024-01-04T00:00:00Z',
      '2024-01-02T00:00:00Z',
    );
    expect(kept(group, { keepLast: 3 })).toEqual([
      '2024-01-05T00:00:00Z',
      '2024-01-04T00:00:00Z',
      '2024-01-03T00:00:00Z',
    ]);
  });

  it('given several snapshots an hour, when keep-hourly 2, then the newest of the two newest hours are kept', () => {
    const group = given(
      '2024-03-10T10:05:00Z',
      '2024-03-10T10:55:00Z',
      '2024-03-10T11:10:00Z',
      '2024-03-10T11:40:00Z',
      '2024-03-10T12:00:00Z',
    );
    expect(kept(group, { keepHourly: 2 })).toEqual(['2024-03-10T12:00:00Z', '2024-03-10T11:40:00Z']);
  });

  it('given gaps between days, when keep-daily 3, then buckets count days that have snapshots, not calendar days', () => {
    const group = given(
      '2024-03-01T08:00:00Z',
      '2024-03-01T20:00:00Z',
      '2024-03-05T09:00:00Z',
      '2024-03-09T09:00:00Z',
      '2024-03-09T10:00:00Z',
      '2024-03-20T09:00:00Z',
    );
    expect(kept(group, { keepDaily: 3 })).toEqual([
      '2024-03-20T09:00:00Z',
      '2024-03-09T10:00:00Z',
      '2024-03-05T09:00:00Z',
    ]);
  });

  it('given days around new year, when keep-weekly, then ISO weeks decide (2020-12-31 and 2021-01-03 share week 53)', () => {
    const group = given(
      '2020-12-28T12:00:00Z', // Monday, 2020-W53
      '2020-12-31T12:00:00Z', // Thursday, 2020-W53
      '2021-01-03T12:00:00Z', // Sunday, 2020-W53
      '2021-01-04T12:00:00Z', // Monday, 2021-W01
      '2020-12-27T12:00:00Z', // Sunday, 2020-W52
    );
    expect(kept(group, { keepWeekly: 3 })).toEqual([
      '2021-01-04T12:00:00Z',
      '2021-01-03T12:00:00Z',
      '2020-12-27T12:00:00Z',
    ]);
  });

  it('given a year of snapshots, when keep-monthly 2 and keep-yearly 3, then month and year buckets keep the newest of each', () => {
    const group = given(
      '2022-06-01T00:00:00Z',
      '2023-11-30T00:00:00Z',
      '2023-12-01T00:00:00Z',
      '2023-12-24T00:00:00Z',
      '2024-01-15T00:00:00Z',
      '2024-01-20T00:00:00Z',
    );
    expect(kept(group, { keepMonthly: 2 })).toEqual(['2024-01-20T00:00:00Z', '2023-12-24T00:00:00Z']);
    expect(kept(group, { keepYearly: 3 })).toEqual([
      '2024-01-20T00:00:00Z',
      '2023-12-24T00:00:00Z',
      '2022-06-01T00:00:00Z',
    ]);
  });

  it('given several rules, when one snapshot satisfies two, then it counts in both and lists both reasons', () => {
    const group = given('2024-05-01T10:00:00Z', '2024-05-01T09:00:00Z', '2024-04-30T09:00:00Z');
    const decisions = applyPolicy(group, { keepLast: 1, keepDaily: 2 }, NOW);
    expect(decisions.map((d) => [d.snapshot.time, d.keep, d.reasons])).toEqual([
      ['2024-05-01T10:00:00Z', true, ['last snapshot', 'daily snapshot']],
      ['2024-05-01T09:00:00Z', false, []],
      ['2024-04-30T09:00:00Z', true, ['daily snapshot']],
    ]);
  });

  it('given snapshots with a recorded offset, when bucketing, then their own local calendar counts (as Go does)', () => {
    // 23:30 UTC on Dec 31 is already Jan 1 at +02:00: both belong to the same local day and year.
    const group = given('2024-01-01T01:30:00+02:00', '2024-01-01T10:00:00+02:00', '2023-12-31T21:00:00Z');
    expect(kept(group, { keepDaily: 5 })).toEqual(['2024-01-01T10:00:00+02:00', '2023-12-31T21:00:00Z']);
    expect(kept(group, { keepYearly: 5 })).toEqual(['2024-01-01T10:00:00+02:00', '2023-12-31T21:00:00Z']);
  });

  it('given keep-within 2d, when applied, then snapshots strictly after newest-2d are kept', () => {
    const group = given(
      '2024-06-10T12:00:00Z',
      '2024-06-08T12:00:01Z',
      '2024-06-08T12:00:00Z',
      '2024-06-01T00:00:00Z',
    );
    expect(kept(group, { keepWithin: '2d' })).toEqual(['2024-06-10T12:00:00Z', '2024-06-08T12:00:01Z']);
  });

  it('given keep-within 1m on Mar 31, when applied, then months are calendar months that overflow as in Go (Feb 31 → Mar 2)', () => {
    const group = given(
      '2024-03-31T12:00:00Z',
      '2024-03-02T12:00:01Z',
      '2024-03-02T12:00:00Z',
      '2024-02-29T12:00:00Z',
    );
    expect(kept(group, { keepWithin: '1m' })).toEqual(['2024-03-31T12:00:00Z', '2024-03-02T12:00:01Z']);
  });

  it('given an offset, when keep-within counts months, then it counts in that offset (Go AddDate in the time zone)', () => {
    // Newest: Mar 1 00:30 at +02:00 (Feb 29 22:30 UTC). One month back is Feb 1 00:30 +02:00 = Jan 31 22:30 UTC.
    const group = given('2024-03-01T00:30:00+02:00', '2024-01-31T22:31:00Z', '2024-01-31T22:29:00Z');
    expect(kept(group, { keepWithin: '1m' })).toEqual(['2024-03-01T00:30:00+02:00', '2024-01-31T22:31:00Z']);
  });

  it('given a snapshot from the future, when keep-within, then durations count back from the newest past snapshot', () => {
    const now = Date.parse('2024-06-15T00:00:00Z');
    const group = given(
      '2025-01-01T00:00:00Z',
      '2024-06-14T00:00:00Z',
      '2024-06-13T12:00:00Z',
      '2024-06-12T00:00:00Z',
    );
    expect(kept(group, { keepWithin: '1d' }, now)).toEqual([
      '2025-01-01T00:00:00Z',
      '2024-06-14T00:00:00Z',
      '2024-06-13T12:00:00Z',
    ]);
  });

  it('given durations in any order or with hours, when parsed, then restic reads them the same', () => {
    const group = given('2024-06-10T12:00:00Z', '2024-06-09T09:30:00Z', '2024-06-09T08:30:00Z');
    expect(kept(group, { keepWithin: '1d3h' })).toEqual(kept(group, { keepWithin: '3h1d' }));
    expect(kept(group, { keepWithin: '1d3h' })).toEqual(['2024-06-10T12:00:00Z', '2024-06-09T09:30:00Z']);
    expect(() => applyPolicy(group, { keepWithin: '2w' }, NOW)).toThrow(/not a restic duration/);
    expect(() => applyPolicy(group, { keepWithin: '12' }, NOW)).toThrow(/not a restic duration/);
  });

  it('given keep-within-daily 3d, when applied, then the newest snapshot of each day within 3 days is kept', () => {
    const group = given(
      '2024-06-10T18:00:00Z',
      '2024-06-10T08:00:00Z',
      '2024-06-09T18:00:00Z',
      '2024-06-08T18:00:00Z',
      '2024-06-07T19:00:00Z',
      '2024-06-07T17:00:00Z',
    );
    expect(kept(group, { keepWithinDaily: '3d' })).toEqual([
      '2024-06-10T18:00:00Z',
      '2024-06-09T18:00:00Z',
      '2024-06-08T18:00:00Z',
      '2024-06-07T19:00:00Z',
    ]);
  });

  it('given keep-tag lists, when applied, then a snapshot is kept when it has all tags of any list', () => {
    const group = given(
      { time: '2024-01-01T00:00:00Z', tags: ['daily', 'db'] },
      { time: '2024-01-02T00:00:00Z', tags: ['daily'] },
      { time: '2024-01-03T00:00:00Z', tags: ['manual'] },
      { time: '2024-01-04T00:00:00Z' },
    );
    expect(kept(group, { keepTags: [['daily', 'db'], ['manual']] })).toEqual([
      '2024-01-03T00:00:00Z',
      '2024-01-01T00:00:00Z',
    ]);
    // restic: an empty tag stands for "no tags at all".
    expect(kept(group, { keepTags: [['']] })).toEqual(['2024-01-04T00:00:00Z']);
    // Tags are not counted: with keep-last 1 too, tagged ones stay and the newest is kept on top.
    expect(kept(group, { keepLast: 1, keepTags: [['manual']] })).toEqual([
      '2024-01-04T00:00:00Z',
      '2024-01-03T00:00:00Z',
    ]);
  });
});

describe('groupSnapshots (restic --group-by host,paths)', () => {
  it('given hosts and path sets, when grouped, then each host and set of paths (in any order) is one group', () => {
    const list = given(
      { time: '2024-01-01T00:00:00Z', host: 'a', paths: ['/x', '/y'] },
      { time: '2024-01-02T00:00:00Z', host: 'a', paths: ['/y', '/x'] },
      { time: '2024-01-03T00:00:00Z', host: 'b', paths: ['/x', '/y'] },
      { time: '2024-01-04T00:00:00Z', host: 'a', paths: ['/x'] },
      { time: '2024-01-05T00:00:00Z', host: 'a', paths: ['/x'], tags: ['t'] },
    );
    const groups = [...groupSnapshots(list).values()].map((g) => g.map((s) => s.snapshot.time.slice(0, 10)));
    expect(groups).toEqual([['2024-01-01', '2024-01-02'], ['2024-01-03'], ['2024-01-04', '2024-01-05']]);
  });

  it('given two groups, when keep-last 1 applies to each, then each keeps its own newest', () => {
    const list = given(
      { time: '2024-01-01T00:00:00Z', host: 'a' },
      { time: '2024-01-02T00:00:00Z', host: 'a' },
      { time: '2024-01-03T00:00:00Z', host: 'b' },
      { time: '2024-01-04T00:00:00Z', host: 'b' },
    );
    const keptTimes = [...groupSnapshots(list).values()].flatMap((g) => kept(g, { keepLast: 1 }));
    expect(keptTimes).toEqual(['2024-01-02T00:00:00Z', '2024-01-04T00:00:00Z']);
  });
});

describe('matchesFilter (restic --host, --tag, --path)', () => {
  const s = snap({
    time: '2024-01-01T00:00:00Z',
    host: 'db-1',
    paths: ['/data', '/etc'],
    tags: ['daily', 'db'],
  }).snapshot;
  const untagged = snap({ time: '2024-01-01T00:00:00Z' }).snapshot;

  it('given no filter, when matched, then every snapshot is selected', () => {
    expect(matchesFilter(s, {})).toBe(true);
    expect(matchesFilter(s, { hosts: [], tags: [], paths: [] })).toBe(true);
  });

  it('given hosts, when matched, then any of them selects', () => {
    expect(matchesFilter(s, { hosts: ['web', 'db-1'] })).toBe(true);
    expect(matchesFilter(s, { hosts: ['web'] })).toBe(false);
  });

  it('given tag lists, when matched, then all tags of one list must be present; an empty tag selects untagged snapshots', () => {
    expect(matchesFilter(s, { tags: [['daily', 'db']] })).toBe(true);
    expect(matchesFilter(s, { tags: [['daily', 'web'], ['db']] })).toBe(true);
    expect(matchesFilter(s, { tags: [['daily', 'web']] })).toBe(false);
    expect(matchesFilter(s, { tags: [['']] })).toBe(false);
    expect(matchesFilter(untagged, { tags: [['']] })).toBe(true);
  });

  it('given paths, when matched, then the snapshot must include all of them and may have more', () => {
    expect(matchesFilter(s, { paths: ['/data'] })).toBe(true);
    expect(matchesFilter(s, { paths: ['/etc', '/data'] })).toBe(true);
    expect(matchesFilter(s, { paths: ['/data', '/srv'] })).toBe(false);
    expect(matchesFilter(s, { paths: ['/dat'] })).toBe(false);
  });

  it('given all three, when matched, then every filter must select', () => {
    expect(matchesFilter(s, { hosts: ['db-1'], tags: [['db']], paths: ['/data'] })).toBe(true);
    expect(matchesFilter(s, { hosts: ['db-1'], tags: [['web']], paths: ['/data'] })).toBe(false);
  });
});
