import type { Snapshot } from '../format/snapshot.ts';
import type { Repository } from '../repository.ts';

/** restic's forget policy (`--keep-*`); counts of 0 or absent mean "no such rule". */
export interface ForgetPolicy {
  keepLast?: number;
  keepHourly?: number;
  keepDaily?: number;
  keepWeekly?: number;
  keepMonthly?: number;
  keepYearly?: number;
  /** A restic duration (`1y2m3d4h`): keep every snapshot this close to the group's newest one. */
  keepWithin?: string;
  /** Keep snapshots that carry all tags of any of these lists (restic `--keep-tag a,b`). */
  keepTags?: string[][];
}

/** Which snapshots a forget run considers, as restic's filters. */
export interface SnapshotFilter {
  hosts?: string[];
  /** Snapshots must carry all tags of at least one of these lists. */
  tags?: string[][];
  /** Snapshots whose paths are exactly these (in any order). */
  paths?: string[];
}

/** A snapshot and whether the policy keeps it. */
export interface ForgetDecision {
  id: string;
  snapshot: Snapshot;
  keep: boolean;
  reasons: string[];
}

interface Bucket {
  name: string;
  count: number;
  key: (t: CalendarTime, index: number) => string;
  last?: string;
}

/** A snapshot time in its own recorded offset (restic buckets use the stored time zone). */
interface CalendarTime {
  year: number;
  month: number;
  day: number;
  hour: number;
  isoWeekYear: number;
  isoWeek: number;
  epochMs: number;
}

function calendar(time: string): CalendarTime {
  const match = /([+-])(\d{2}):(\d{2})$/.exec(time);
  const offsetMin = match ? (match[1] === '-' ? -1 : 1) * (Number(match[2]) * 60 + Number(match[3])) : 0;
  const epochMs = Date.parse(time);
  const local = new Date(epochMs + offsetMin * 60_000);
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
    epochMs,
  };
}

/** `1y2m3d4h` → a function moving a time back by that much, restic's calendar arithmetic. */
function subtractDuration(duration: string, fromMs: number): number {
  const match = /^(?:(\d+)y)?(?:(\d+)m)?(?:(\d+)d)?(?:(\d+)h)?$/.exec(duration);
  if (!match || duration === '') throw new RangeError(`not a restic duration: ${duration}`);
  const [, y = '0', m = '0', d = '0', h = '0'] = match;
  const t = new Date(fromMs);
  t.setUTCFullYear(t.getUTCFullYear() - Number(y), t.getUTCMonth() - Number(m), t.getUTCDate() - Number(d));
  t.setUTCHours(t.getUTCHours() - Number(h));
  return t.getTime();
}

function hasTags(snapshot: Snapshot, lists: string[][]): boolean {
  const tags = new Set(snapshot.tags ?? []);
  return lists.some((list) => list.every((tag) => tags.has(tag)));
}

/** True when the filter selects this snapshot. */
export function matchesFilter(snapshot: Snapshot, filter: SnapshotFilter): boolean {
  if (filter.hosts?.length && !filter.hosts.includes(snapshot.hostname ?? '')) return false;
  if (filter.tags?.length && !hasTags(snapshot, filter.tags)) return false;
  if (filter.paths?.length) {
    const want = [...filter.paths].sort().join('\0');
    if ([...snapshot.paths].sort().join('\0') !== want) return false;
  }
  return true;
}

/** True when the policy has any rule (restic refuses to forget with none). */
export function policyIsEmpty(policy: ForgetPolicy): boolean {
  return !(
    policy.keepLast ||
    policy.keepHourly ||
    policy.keepDaily ||
    policy.keepWeekly ||
    policy.keepMonthly ||
    policy.keepYearly ||
    policy.keepWithin ||
    policy.keepTags?.length
  );
}

/**
 * Applies a policy to one group of snapshots (restic `ApplyPolicy`): newest first, each rule keeps
 * the newest snapshot of each of its next N time buckets. An empty policy keeps everything.
 */
export function applyPolicy(
  group: Array<{ id: string; snapshot: Snapshot }>,
  policy: ForgetPolicy,
): ForgetDecision[] {
  const sorted = [...group].sort((a, b) => Date.parse(b.snapshot.time) - Date.parse(a.snapshot.time));
  if (policyIsEmpty(policy)) return sorted.map((s) => ({ ...s, keep: true, reasons: ['no policy'] }));
  const buckets: Bucket[] = [
    { name: 'last snapshot', count: policy.keepLast ?? 0, key: (_t, i) => String(i) },
    {
      name: 'hourly snapshot',
      count: policy.keepHourly ?? 0,
      key: (t) => `${t.year}-${t.month}-${t.day}-${t.hour}`,
    },
    { name: 'daily snapshot', count: policy.keepDaily ?? 0, key: (t) => `${t.year}-${t.month}-${t.day}` },
    { name: 'weekly snapshot', count: policy.keepWeekly ?? 0, key: (t) => `${t.isoWeekYear}-${t.isoWeek}` },
    { name: 'monthly snapshot', count: policy.keepMonthly ?? 0, key: (t) => `${t.year}-${t.month}` },
    { name: 'yearly snapshot', count: policy.keepYearly ?? 0, key: (t) => `${t.year}` },
  ];
  const newest = sorted[0] ? Date.parse(sorted[0].snapshot.time) : 0;
  const withinFrom = policy.keepWithin ? subtractDuration(policy.keepWithin, newest) : undefined;
  return sorted.map(({ id, snapshot }, index) => {
    const reasons: string[] = [];
    const t = calendar(snapshot.time);
    if (policy.keepTags?.length && hasTags(snapshot, policy.keepTags)) reasons.push('has tags');
    for (const bucket of buckets) {
      if (bucket.count <= 0) continue;
      const key = bucket.key(t, index);
      if (key !== bucket.last) {
        bucket.last = key;
        bucket.count--;
        reasons.push(bucket.name);
      }
    }
    if (withinFrom !== undefined && t.epochMs > withinFrom) reasons.push(`within ${policy.keepWithin}`);
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

/** Decides and (unless `dryRun`) removes the snapshots the policy does not keep. */
export async function forget(
  repo: Repository,
  policy: ForgetPolicy,
  options: { filter?: SnapshotFilter; dryRun?: boolean } = {},
): Promise<ForgetDecision[]> {
  const lock = options.dryRun ? undefined : await repo.lock(false);
  try {
    const selected = (await repo.listSnapshots()).filter((s) =>
      matchesFilter(s.snapshot, options.filter ?? {}),
    );
    const decisions = [...groupSnapshots(selected).values()].flatMap((group) => applyPolicy(group, policy));
    if (!options.dryRun) for (const d of decisions) if (!d.keep) await repo.removeSnapshot(d.id);
    return decisions;
  } finally {
    await lock?.release();
  }
}
