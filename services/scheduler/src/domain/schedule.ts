import { scheduleIssues } from '@volback/contracts';
import { Cron } from 'croner';
import { stableFraction } from './ids.ts';
import type { Schedule } from './settings.ts';

/** A schedule croner cannot read: a bad expression or an unknown time zone. */
export class InvalidScheduleError extends Error {
  override readonly name = 'InvalidScheduleError';
  readonly code = 'VOLBACK_SCHEDULER_INVALID_SCHEDULE';
}

const crons = new Map<string, Cron>();
const nextCache = new Map<string, number | null>();
const periods = new Map<string, number>();
/** Caches are only memory: they hold what the pure functions would compute again. */
const MAX_CACHED = 50_000;

function keyOf(schedule: Schedule): string {
  return `${schedule.timezone}\u0000${schedule.cron}`;
}

/** The parsed schedule; throws {@link InvalidScheduleError} naming what croner refused. */
export function cronOf(schedule: Schedule): Cron {
  const key = keyOf(schedule);
  let cron = crons.get(key);
  if (!cron) {
    try {
      cron = new Cron(schedule.cron, { timezone: schedule.timezone, paused: true, mode: '5-or-6-parts' });
      // An unknown time zone only shows when a date is computed.
      if (cron.nextRun(new Date(0)) === null) throw new Error('the expression never matches');
    } catch (error) {
      throw new InvalidScheduleError(
        `schedule "${schedule.cron}" in ${schedule.timezone}: ${(error as Error).message.replace(/^Cron\w*: /, '')}`,
        { cause: error },
      );
    }
    if (crons.size > MAX_CACHED) crons.clear();
    crons.set(key, cron);
  }
  return cron;
}

/** Why a schedule cannot be used (every problem, the rules of `@volback/contracts`), or undefined. */
export function scheduleProblem(schedule: Schedule): string | undefined {
  const issues = scheduleIssues(schedule);
  return issues.length > 0 ? issues.map((i) => i.message).join('; ') : undefined;
}

/** Between two consecutive slots of a schedule: `slot` <= t < `next`. */
interface SlotInterval {
  readonly slot: number;
  readonly next: number;
}
const intervals = new Map<string, SlotInterval[]>();
/** Intervals kept per schedule: the jitter window and the anchors of a round span a few slots. */
const MAX_INTERVALS = 64;

/**
 * The slots around `atMs`, memoised as intervals: every time between two slots has the same
 * answers, so the thousands of volumes of a fleet sharing a schedule (each with its own anchor
 * and jitter) ask croner once per slot, not once each per round (which took seconds a round at
 * 5,000 volumes). Undefined before the schedule's first slot or after its last.
 */
function slotInterval(schedule: Schedule, atMs: number): SlotInterval | undefined {
  const key = keyOf(schedule);
  let known = intervals.get(key);
  const found = known?.find((i) => i.slot <= atMs && atMs < i.next);
  if (found) return found;
  // croner counts a run earlier in the reference's second as before it: +1 ms makes `atMs` itself count.
  const cron = cronOf(schedule);
  const [latest] = cron.previousRuns(1, new Date(atMs + 1));
  if (!latest || latest.getTime() > atMs) return undefined;
  const next = cron.nextRun(new Date(latest.getTime()))?.getTime();
  if (next === undefined || next <= atMs) return undefined;
  const interval = { slot: latest.getTime(), next };
  if (!known) {
    if (intervals.size > MAX_CACHED) intervals.clear();
    intervals.set(key, (known = []));
  }
  if (known.length >= MAX_INTERVALS) known.shift();
  known.push(interval);
  return interval;
}

/** The first slot strictly after `afterMs` (memoised: many volumes share a schedule and an anchor). */
export function nextSlotAfter(schedule: Schedule, afterMs: number): number | undefined {
  const interval = slotInterval(schedule, afterMs);
  if (interval) return interval.next;
  const key = `${keyOf(schedule)}\u0000${afterMs}`;
  let next = nextCache.get(key);
  if (next === undefined) {
    next = cronOf(schedule).nextRun(new Date(afterMs))?.getTime() ?? null;
    if (nextCache.size > MAX_CACHED) nextCache.clear();
    nextCache.set(key, next);
  }
  return next ?? undefined;
}

/** The last slot at or before `atMs`. */
export function latestSlotAtOrBefore(schedule: Schedule, atMs: number): number | undefined {
  return slotInterval(schedule, atMs)?.slot;
}

/** The shortest gap between two runs, over a sample of runs: what "the schedule's period" means here. */
export function periodMs(schedule: Schedule): number {
  const key = keyOf(schedule);
  let period = periods.get(key);
  if (period === undefined) {
    const runs = cronOf(schedule)
      .nextRuns(12, new Date(Date.UTC(2001, 0, 1)))
      .map((d) => d.getTime());
    period = Infinity;
    for (let i = 1; i < runs.length; i++) period = Math.min(period, runs[i]! - runs[i - 1]!);
    if (!Number.isFinite(period)) period = 365 * 24 * 3600_000;
    periods.set(key, period);
  }
  return period;
}

/**
 * How long after each slot this volume's scheduled backup starts: a fixed share of the jitter
 * window derived from the volume's identity, so runs of one slot spread evenly and a volume keeps
 * its place from slot to slot. Never more than half the schedule's period.
 */
export function jitterMs(volumeKey: string, schedule: Schedule, windowMs: number): number {
  const span = Math.min(windowMs, Math.floor(periodMs(schedule) / 2));
  return span <= 0 ? 0 : Math.floor(stableFraction(volumeKey) * span);
}

/** The slot a volume's scheduled backup stands for now, if one is due. */
export interface DueSlot {
  readonly slot: number;
  /** When this slot's backup was due (slot + jitter). */
  readonly dueAt: number;
  /** When the first slot since the anchor was due: how long the volume has waited. */
  readonly firstDueAt: number;
  /** At least one earlier slot since the anchor was never run (the scheduler was down or held). */
  readonly skippedEarlier: boolean;
}

/**
 * The latest slot after `anchorMs` whose time plus jitter has come. Missed slots are not returned
 * one by one: after downtime only the latest runs (catch-up once).
 */
export function dueSlot(
  schedule: Schedule,
  anchorMs: number,
  nowMs: number,
  jitter: number,
): DueSlot | undefined {
  const first = nextSlotAfter(schedule, anchorMs);
  if (first === undefined || first + jitter > nowMs) return undefined;
  const latest = latestSlotAtOrBefore(schedule, nowMs - jitter);
  if (latest === undefined || latest <= anchorMs) return undefined;
  return { slot: latest, dueAt: latest + jitter, firstDueAt: first + jitter, skippedEarlier: latest > first };
}
