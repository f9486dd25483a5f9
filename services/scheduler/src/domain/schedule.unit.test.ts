import { describe, expect, it } from 'vitest';
import {
  dueSlot,
  InvalidScheduleError,
  cronOf,
  jitterMs,
  latestSlotAtOrBefore,
  nextSlotAfter,
  periodMs,
} from './schedule.ts';

const t = (iso: string) => Date.parse(iso);
const iso = (ms: number | undefined) => (ms === undefined ? undefined : new Date(ms).toISOString());

describe('schedules', () => {
  it('Europe/Berlin spring forward: a 02:30 job runs once, at 03:00 local, on the day 02:30 does not exist', () => {
    // given a daily job at 02:30 Berlin time
    const schedule = { cron: '30 2 * * *', timezone: 'Europe/Berlin' };
    // when asking for the slots around 2024-03-31 (clocks jump from 02:00 to 03:00)
    const first = nextSlotAfter(schedule, t('2024-03-30T12:00:00Z'));
    const second = nextSlotAfter(schedule, first!);
    const third = nextSlotAfter(schedule, second!);
    // then the day before is 02:30 CET, the day itself 03:00 CEST, the day after 02:30 CEST
    expect([first, second, third].map(iso)).toEqual([
      '2024-03-31T01:00:00.000Z',
      '2024-04-01T00:30:00.000Z',
      '2024-04-02T00:30:00.000Z',
    ]);
  });

  it('Europe/Berlin fall back: a 02:30 job runs once on the day 02:30 happens twice', () => {
    const schedule = { cron: '30 2 * * *', timezone: 'Europe/Berlin' };
    const first = nextSlotAfter(schedule, t('2024-10-26T12:00:00Z'));
    const second = nextSlotAfter(schedule, first!);
    expect([first, second].map(iso)).toEqual(['2024-10-27T00:30:00.000Z', '2024-10-28T01:30:00.000Z']);
    // and the slot due at 01:45 UTC (the second 02:45 local) is still the first 02:30
    expect(iso(latestSlotAtOrBefore(schedule, t('2024-10-27T01:45:00Z')))).toBe('2024-10-27T00:30:00.000Z');
  });

  it('a leap-day job runs on 29 February of leap years only', () => {
    const schedule = { cron: '0 3 29 2 *', timezone: 'UTC' };
    const first = nextSlotAfter(schedule, t('2023-01-01T00:00:00Z'));
    expect([first, nextSlotAfter(schedule, first!)].map(iso)).toEqual([
      '2024-02-29T03:00:00.000Z',
      '2028-02-29T03:00:00.000Z',
    ]);
    // a scheduler down from 2024 to 2029 catches up once, on the 2028 slot
    const due = dueSlot(schedule, t('2024-02-29T03:00:00Z'), t('2029-01-01T00:00:00Z'), 0);
    expect(iso(due?.slot)).toBe('2028-02-29T03:00:00.000Z');
    expect(due?.skippedEarlier).toBe(false);
  });

  it('a slot is due only once its time plus the jitter has come', () => {
    const schedule = { cron: '0 2 * * *', timezone: 'UTC' };
    const anchor = t('2025-01-01T02:00:00Z');
    const jitter = 7 * 60_000;
    expect(dueSlot(schedule, anchor, t('2025-01-02T02:06:59Z'), jitter)).toBeUndefined();
    expect(iso(dueSlot(schedule, anchor, t('2025-01-02T02:07:00Z'), jitter)?.slot)).toBe(
      '2025-01-02T02:00:00.000Z',
    );
    // the anchor's own slot is never due again
    expect(dueSlot(schedule, anchor, t('2025-01-01T23:00:00Z'), 0)).toBeUndefined();
  });

  it('after downtime only the latest missed slot is due, once, and it says others were skipped', () => {
    const schedule = { cron: '0 * * * *', timezone: 'UTC' };
    const due = dueSlot(schedule, t('2025-01-01T00:00:00Z'), t('2025-01-03T12:34:00Z'), 0);
    expect(iso(due?.slot)).toBe('2025-01-03T12:00:00.000Z');
    expect(due?.skippedEarlier).toBe(true);
    expect(dueSlot(schedule, due!.slot, t('2025-01-03T12:59:59Z'), 0)).toBeUndefined();
  });

  it('seconds-granularity schedules have six fields', () => {
    const schedule = { cron: '*/5 * * * * *', timezone: 'UTC' };
    expect(periodMs(schedule)).toBe(5_000);
    expect(iso(nextSlotAfter(schedule, t('2025-01-01T00:00:00Z')))).toBe('2025-01-01T00:00:05.000Z');
  });

  it('jitter spreads a thousand volumes over the window, each keeps its place, and it never exceeds half the period', () => {
    const daily = { cron: '0 2 * * *', timezone: 'UTC' };
    const window = 30 * 60_000;
    const offsets = Array.from({ length: 1000 }, (_, i) =>
      jitterMs(`host-${i % 10}\u0000vol-${i}`, daily, window),
    );
    expect(Math.min(...offsets)).toBeGreaterThanOrEqual(0);
    expect(Math.max(...offsets)).toBeLessThan(window);
    // every minute of the window gets some, none gets more than three times its share
    const perMinute = new Array<number>(30).fill(0);
    for (const o of offsets) perMinute[Math.floor(o / 60_000)]!++;
    expect(Math.min(...perMinute)).toBeGreaterThan(0);
    expect(Math.max(...perMinute)).toBeLessThan((3 * 1000) / 30);
    expect(jitterMs('host-1\u0000vol-1', daily, window)).toBe(offsets[1]);
    // a schedule every 10 s gets at most 5 s of jitter
    const fast = { cron: '*/10 * * * * *', timezone: 'UTC' };
    for (let i = 0; i < 100; i++) expect(jitterMs(`v${i}`, fast, window)).toBeLessThan(5_000);
  });

  it('refuses bad expressions and unknown time zones with a reason', () => {
    expect(() => cronOf({ cron: '61 2 * * *', timezone: 'UTC' })).toThrow(InvalidScheduleError);
    expect(() => cronOf({ cron: '0 2 * * *', timezone: 'Mars/Olympus_Mons' })).toThrow(/Mars\/Olympus_Mons/);
  });

  it('memoised slots answer as croner does, at every time of a day with both clock changes', () => {
    // given an hourly and a quarter-hourly schedule in Berlin, asked in a shuffled order (the
    // intervals a round remembers are then found, missed and built in every order)
    for (const cron of ['0 * * * *', '*/15 1-3 * * *']) {
      const schedule = { cron, timezone: 'Europe/Berlin' };
      const times: number[] = [];
      for (const day of ['2024-03-31', '2024-10-27'])
        for (let m = -60; m < 24 * 60; m += 7)
          times.push(t(`${day}T00:00:00Z`) + m * 60_000 + (m % 3) * 1000);
      times.sort((a, b) => ((a * 7919) % 1000) - ((b * 7919) % 1000));
      for (const at of times) {
        // when asking for the slot at or before it and the one after it
        const [previous] = cronOf(schedule).previousRuns(1, new Date(at + 1));
        const expectedLatest = previous && previous.getTime() <= at ? previous.getTime() : undefined;
        // then the answers equal croner's own
        expect(iso(latestSlotAtOrBefore(schedule, at)), `${cron} latest at ${iso(at)}`).toBe(
          iso(expectedLatest),
        );
        expect(iso(nextSlotAfter(schedule, at)), `${cron} next after ${iso(at)}`).toBe(
          iso(cronOf(schedule).nextRun(new Date(at))?.getTime()),
        );
      }
    }
  });
});
