import { parseGoTime } from '../format/ids.ts';
import type { Snapshot } from '../format/snapshot.ts';
import type { Repository } from '../repository.ts';

/** restic's forget policy (`--keep-*`); counts of 0 or absent, and zero durations, mean "no such rule". */
export interface ForgetPolicy {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  /** A restic duration (`1y2m3d4h`): keep every snapshot this close to the group's newest one. */
  keepWithin?: string;
  /** Keep the newest snapshot of each hour within this duration of the group's newest one. */
  keepWithinHourly?: string;
  keepWithinDaily?: string;
  keepWithinWeekly?: string;
  keepWithinMonthly?: string;
  keepWithinYearly?: string;
  /** Keep snapshots that carry all tags of any of these lists (restic `--keep-tag a,b`). */
  keepTags?: string[][];
}

/** Which snapshots a forget run considers, as restic's filters. */
export interface SnapshotFilter {
  hosts?: string[];
  /** Snapshots must carry all tags of at least one of these lists; `['']` selects untagged ones. */
  tags?: string[][];
  /** Snapshots that include all of these paths (they may have more, as in restic). */
  paths?: string[];
}

/** A snapshot and whether the policy keeps it. */
export interface ForgetDecision {
  id: string;
  snapshot: Snapshot;
  keep: boolean;
  reasons: string[];
}

/** A restic duration: years, months, days, hours. */
interface Duration {
  years: number;
  months: number;
  days: number;
  hours: number;
}

/** A snapshot time in its own recorded offset (restic buckets use the stored time zone). */
interface CalendarTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  isoWeekYear: number;
  isoWeek: number;
  /** Nanoseconds since the epoch, for exact comparisons. */
  ns: bigint;
  /** The recorded UTC offset in minutes. */
  offsetMin: number;
}

function offsetMinutes(time: string): number {
  const match = /([+-])(\d{2}):(\d{2})$/.exec(time);
  return match ? (match[1] === '-' ? -1 : 1) * (Number(match[2]) * 60 + Number(match[3])) : 0;
}

function calendar(time: string): CalendarTime {
  const offsetMin = offsetMinutes(time);
  const ns = parseGoTime(time);
  const local = new Date(Number(ns / 1_000_000n) + offsetMin * 60_000);
  const year = local.getUTCFullYear();
  // ISO 8601 week: weeks start on Monday; week 1 holds the year's first Thursday.
  const thursday = new Date(Date.UTC(year, local.getUTCMonth(), local.getUTCDate()));
  thursday.setUTCDate(thursday.getUTCDate() - ((thursday.getUTCDay() + 6) % 7) + 3);
  const isoWeekYear = thursday.getUTCFullYear();
  const firstThursday = new Date(Date.UTC(isoWeekYear, 0, 4));
  firstThursday.setUTCDate(firstThursday.getUTCDate() - ((firstThursday.getUTCDay() + 6) % 7) + 3);
  const isoWeek = 1 + Math.round((thursday.getTime() - firstThursday.getTime()) / (7 * 86_400_000));
  return {
    year,
    month: local.getUTCMonth() + 1,
    day: local.getUTCDate(),
    hour: local.getUTCHours(),
    isoWeekYear,
    isoWeek,
    ns,
    offsetMin,
  };
}

/**
 * Parses a restic duration as restic does (`internal/restic/duration.go`): numbers each followed
 * by `y`, `m`, `d` or `h`, in any order, a later one of a unit replacing an earlier one.
 */
function parseDuration(text: string): Duration {
  const duration: Duration = { years: 0, months: 0, days: 0, hours: 0 };
  const units = { y: 'years', m: 'months', d: 'days', h: 'hours' } as const;
  let rest = text.trim();
  while (rest !== '') {
    const match = /^(-?)(\d+)([a-zA-Z]?)/.exec(rest);
    if (!match) throw new RangeError(`not a restic duration (like 1y2m3d4h): ${JSON.stringify(text)}`);
    const unit = units[match[3] as keyof typeof units] as (typeof units)[keyof typeof units] | undefined;
    if (!unit) {
      throw new RangeError(
        `not a restic duration (like 1y2m3d4h): ${JSON.stringify(text)} has no unit y, m, d or h`,
      );
    }
    duration[unit] = Number(match[2]) * (match[1] ? -1 : 1);
    rest = rest.slice(match[0].length);
  }
  return duration;
}

function isZero(d: Duration): boolean {
  return d.years === 0 && d.months === 0 && d.days === 0 && d.hours === 0;
}

/** A duration option, or undefined when absent or zero (restic ignores a zero duration). */
function durationOf(text: string | undefined): Duration | undefined {
  if (text === undefined) return undefined;
  const d = parseDuration(text);
  return isZero(d) ? undefined : d;
}

/**
 * `from - duration` as Go's `AddDate(-y, -m, -d).Add(-h hours)`: calendar arithmetic in the
 * time's own offset (overflowing days roll over), then whole hours.
 */
function pastTime(from: CalendarTime, d: Duration): bigint {
  const offsetMs = from.offsetMin * 60_000;
  const fromMs = Number(from.ns / 1_000_000n);
  const local = new Date(fromMs + offsetMs);
  local.setUTCFullYear(
    local.getUTCFullYear() - d.years,
    local.getUTCMonth() - d.months,
    local.getUTCDate() - d.days,
  );
  const shiftedMs = local.getTime() - offsetMs - d.hours * 3_600_000;
  // Keep the sub-millisecond part of `from`.
  return BigInt(shiftedMs - fromMs) * 1_000_000n + from.ns;
}

function hasTags(snapshot: Snapshot, list: readonly string[]): boolean {
  const tags = snapshot.tags ?? [];
  for (const tag of list) {
    // restic: an empty tag matches a snapshot without tags.
    if (tag === '' && tags.length === 0) return true;
    if (!tags.includes(tag)) return false;
  }
  return true;
}

function hasTagList(snapshot: Snapshot, lists: readonly string[][]): boolean {
  return lists.some((list) => hasTags(snapshot, list));
}

/** True when the filter selects this snapshot (restic's `--host`, `--tag`, `--path`). */
export function matchesFilter(snapshot: Snapshot, filter: SnapshotFilter): boolean {
  if (filter.hosts?.length && !filter.hosts.includes(snapshot.hostname ?? '')) return false;
  if (filter.tags?.length && !hasTagList(snapshot, filter.tags)) return false;
  if (filter.paths?.length && !filter.paths.every((path) => snapshot.paths.includes(path))) return false;
  return true;
}

/** True when the policy has no rule (restic then removes nothing). */
export function policyIsEmpty(policy: ForgetPolicy): boolean {
  const counts = [
    policy.keepLast,
    policy.keepHourly,
    policy.keepDaily,
    policy.keepWeekly,
    policy.keepMonthly,
    policy.keepYearly,
  ];
  const durations = [
    policy.keepWithin,
    policy.keepWithinHourly,
    policy.keepWithinDaily,
    policy.keepWithinWeekly,
    policy.keepWithinMonthly,
    policy.keepWithinYearly,
  ];
  return !(
    counts.some((n) => (n ?? 0) > 0) ||
    durations.some((d) => durationOf(d)) ||
    policy.keepTags?.length
  );
}

type Bucker = (t: CalendarTime, index: number) => string;
const hourly: Bucker = (t) => `${t.year}-${t.month}-${t.day}-${t.hour}`;
const daily: Bucker = (t) => `${t.year}-${t.month}-${t.day}`;
const weekly: Bucker = (t) => `${t.isoWeekYear}-${t.isoWeek}`;
const monthly: Bucker = (t) => `${t.year}-${t.month}`;
const yearly: Bucker = (t) => `${t.year}`;

/**
 * Applies a policy to one group of snapshots as restic 0.14's `ApplyPolicy` does: newest first,
 * each `--keep-<unit> n` keeps the newest snapshot of each of its next n time buckets, each
 * `--keep-within-<unit>` keeps the newest of every bucket within the duration; durations count
 * back from the group's newest snapshot that is not in the future (`now`). An empty policy keeps
 * everything.
 */
export function applyPolicy(
  group: Array<{ id: string; snapshot: Snapshot }>,
  policy: ForgetPolicy,
  now: number = Date.now(),
): ForgetDecision[] {
  const timed = group.map((s) => ({ ...s, t: calendar(s.snapshot.time) }));
  timed.sort((a, b) => (a.t.ns > b.t.ns ? -1 : a.t.ns < b.t.ns ? 1 : 0));
  if (policyIsEmpty(policy))
    return timed.map(({ id, snapshot }) => ({ id, snapshot, keep: true, reasons: ['policy is empty'] }));

  const counted = [
    { reason: 'last snapshot', count: policy.keepLast ?? 0, bucker: ((_t, i) => String(i)) satisfies Bucker },
    { reason: 'hourly snapshot', count: policy.keepHourly ?? 0, bucker: hourly },
    { reason: 'daily snapshot', count: policy.keepDaily ?? 0, bucker: daily },
    { reason: 'weekly snapshot', count: policy.keepWeekly ?? 0, bucker: weekly },
    { reason: 'monthly snapshot', count: policy.keepMonthly ?? 0, bucker: monthly },
    { reason: 'yearly snapshot', count: policy.keepYearly ?? 0, bucker: yearly },
  ].map((b) => ({ ...b, last: undefined as string | undefined }));

  // The newest snapshot that is not in the future; none → every snapshot is "within".
  const nowNs = BigInt(now) * 1_000_000n;
  const latest = timed.find((s) => s.t.ns < nowNs)?.t;
  const since = (text: string | undefined): bigint | undefined => {
    const d = durationOf(text);
    if (!d) return undefined;
    return latest ? pastTime(latest, d) : -(2n ** 100n);
  };
  const withinFrom = since(policy.keepWithin);
  const within = [
    { reason: 'hourly within', text: policy.keepWithinHourly, bucker: hourly },
    { reason: 'daily within', text: policy.keepWithinDaily, bucker: daily },
    { reason: 'weekly within', text: policy.keepWithinWeekly, bucker: weekly },
    { reason: 'monthly within', text: policy.keepWithinMonthly, bucker: monthly },
    { reason: 'yearly within', text: policy.keepWithinYearly, bucker: yearly },
  ].map((b) => ({ ...b, from: since(b.text), last: undefined as string | undefined }));

  return timed.map(({ id, snapshot, t }, index) => {
    const reasons: string[] = [];
    for (const list of policy.keepTags ?? [])
      if (hasTags(snapshot, list)) reasons.push(`has tags ${list.join(',')}`);
    if (withinFrom !== undefined && t.ns > withinFrom) reasons.push(`within ${policy.keepWithin}`);
    for (const bucket of counted) {
      if (bucket.count <= 0) continue;
      const key = bucket.bucker(t, index);
      if (key !== bucket.last) {
        bucket.last = key;
        bucket.count--;
        reasons.push(bucket.reason);
      }
    }
    for (const bucket of within) {
      if (bucket.from === undefined || t.ns <= bucket.from) continue;
      const key = bucket.bucker(t, index);
      if (key !== bucket.last) {
        bucket.last = key;
        reasons.push(`${bucket.reason} ${bucket.text}`);
      }
    }
    return { id, snapshot, keep: reasons.length > 0, reasons };
  });
}

/** Groups snapshots by host and paths (restic's default `--group-by host,paths`). */
export function groupSnapshots(
  list: Array<{ id: string; snapshot: Snapshot }>,
): Map<string, Array<{ id: string; snapshot: Snapshot }>> {
  const groups = new Map<string, Array<{ id: string; snapshot: Snapshot }>>();
  for (const s of list) {
    const key = JSON.stringify([s.snapshot.hostname ?? '', [...s.snapshot.paths].sort()]);
    let group = groups.get(key);
    if (!group) groups.set(key, (group = []));
    group.push(s);
  }
  return groups;
}

/**
 * Decides and (unless `dryRun`) removes the snapshots the policy does not keep. Snapshots are
 * those `filter` and `select` accept, in groups of one host and paths as restic makes them,
 * or by `groupBy`.
 */
export async function forget(
  repo: Repository,
  policy: ForgetPolicy,
  options: {
    filter?: SnapshotFilter;
    select?: (snapshot: Snapshot) => boolean;
    groupBy?: (snapshot: Snapshot) => string;
    dryRun?: boolean;
    now?: number;
  } = {},
): Promise<ForgetDecision[]> {
  // Parse every duration before touching anything: a bad policy changes nothing.
  policyIsEmpty(policy);
  const lock = options.dryRun ? undefined : await repo.lock(false);
  try {
    const selected = (await repo.listSnapshots()).filter(
      (s) => matchesFilter(s.snapshot, options.filter ?? {}) && (options.select?.(s.snapshot) ?? true),
    );
    const { groupBy } = options;
    const groups = groupBy ? Map.groupBy(selected, (s) => groupBy(s.snapshot)) : groupSnapshots(selected);
    const decisions = [...groups.values()].flatMap((group) => applyPolicy(group, policy, options.now));
    if (!options.dryRun) for (const d of decisions) if (!d.keep) await repo.removeSnapshot(d.id);
    return decisions;
  } finally {
    await lock?.release();
  }
}
