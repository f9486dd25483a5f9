import { execFile } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { RESTIC, resolveBinary } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../backend/local-backend.ts';
import { formatChunkerPolynomial, randomIrreduciblePolynomial } from '../chunker/index.ts';
import type { Snapshot } from '../format/snapshot.ts';
import { Repository } from '../repository.ts';
import { VOLBACK_MAIN } from '../test-support/commands.ts';
import { forget, type ForgetPolicy, type SnapshotFilter } from './forget.ts';

const run = promisify(execFile);
const PASSWORD = 'forget parity';

/** Deterministic pseudo-random numbers in [0, 1), so every run crafts the same history. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/** An RFC 3339 time with nanoseconds, written in the given UTC offset (minutes), as restic writes local times. */
function rfc3339(epochMs: number, extraNs: number, offsetMin: number): string {
  const local = new Date(epochMs + offsetMin * 60_000).toISOString().slice(0, 19);
  const ns = String((epochMs % 1000) * 1_000_000 + extraNs).padStart(9, '0');
  if (offsetMin === 0) return `${local}.${ns}Z`;
  const sign = offsetMin < 0 ? '-' : '+';
  const abs = Math.abs(offsetMin);
  return `${local}.${ns}${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
}

/**
 * About 40 snapshots over two years ending 2024-06-30: dense in the last weeks (several an hour,
 * several a day), sparse before; two hosts, two path sets (one written in both orders), tags,
 * three time zones, and one snapshot from the future.
 */
function craftHistory(tree: string): Snapshot[] {
  const random = prng(20240630);
  const end = Date.parse('2024-06-30T18:00:00Z');
  const hour = 3_600_000;
  const ages: number[] = [];
  for (let i = 0; i < 10; i++) ages.push(i * 0.4 * hour + random() * 0.3 * hour); // same hours, same days
  for (let i = 0; i < 12; i++) ages.push((1 + i * 2.5) * 24 * hour + random() * 6 * hour); // last month
  for (let i = 0; i < 18; i++) ages.push((40 + i * 38) * 24 * hour + random() * 48 * hour); // two years
  const snapshots: Snapshot[] = ages.map((age, i) => {
    const host = i % 3 === 2 ? 'web-1' : 'db-1';
    const paths = i % 4 === 0 ? ['/srv', '/etc'] : i % 4 === 1 ? ['/etc', '/srv'] : ['/data'];
    const tagChoices: Array<string[] | undefined> = [
      undefined,
      ['daily'],
      ['daily', 'db'],
      ['manual'],
      ['db'],
    ];
    const tags = tagChoices[Math.floor(random() * tagChoices.length)];
    const offsets = [0, 120, -300];
    const time = rfc3339(Math.round(end - age), Math.floor(random() * 1_000_000), offsets[i % 3]!);
    return { time, tree, paths, hostname: host, username: 'root', ...(tags ? { tags } : {}) };
  });
  snapshots.push({ time: '2099-01-01T00:00:00Z', tree, paths: ['/data'], hostname: 'db-1', tags: ['daily'] });
  return snapshots;
}

/** One policy as restic flags and as volback's policy and filter. */
interface Case {
  flags: string[];
  policy: ForgetPolicy;
  filter?: SnapshotFilter;
}

const CASES: Case[] = [
  { flags: ['--keep-last', '5'], policy: { keepLast: 5 } },
  { flags: ['--keep-hourly', '3', '--keep-daily', '7'], policy: { keepHourly: 3, keepDaily: 7 } },
  {
    flags: ['--keep-daily', '10', '--keep-weekly', '6', '--keep-monthly', '12', '--keep-yearly', '3'],
    policy: { keepDaily: 10, keepWeekly: 6, keepMonthly: 12, keepYearly: 3 },
  },
  { flags: ['--keep-weekly', '4', '--keep-monthly', '3'], policy: { keepWeekly: 4, keepMonthly: 3 } },
  { flags: ['--keep-within', '3m10d'], policy: { keepWithin: '3m10d' } },
  { flags: ['--keep-within', '1y', '--keep-last', '2'], policy: { keepWithin: '1y', keepLast: 2 } },
  { flags: ['--keep-within', '36h'], policy: { keepWithin: '36h' } },
  {
    flags: ['--keep-within-daily', '20d', '--keep-within-weekly', '3m', '--keep-within-monthly', '1y'],
    policy: { keepWithinDaily: '20d', keepWithinWeekly: '3m', keepWithinMonthly: '1y' },
  },
  {
    flags: ['--keep-within-hourly', '2d', '--keep-within-yearly', '5y', '--keep-yearly', '1'],
    policy: { keepWithinHourly: '2d', keepWithinYearly: '5y', keepYearly: 1 },
  },
  {
    flags: ['--keep-tag', 'manual', '--keep-tag', 'daily,db', '--keep-last', '1'],
    policy: { keepTags: [['manual'], ['daily', 'db']], keepLast: 1 },
  },
  { flags: ['--keep-tag', ''], policy: { keepTags: [['']] } },
  { flags: ['--host', 'db-1', '--keep-last', '3'], policy: { keepLast: 3 }, filter: { hosts: ['db-1'] } },
  {
    flags: ['--tag', 'daily', '--tag', 'manual', '--keep-monthly', '4'],
    policy: { keepMonthly: 4 },
    filter: { tags: [['daily'], ['manual']] },
  },
  { flags: ['--path', '/srv', '--keep-daily', '2'], policy: { keepDaily: 2 }, filter: { paths: ['/srv'] } },
  {
    flags: ['--path', '/data', '--host', 'web-1', '--keep-weekly', '2'],
    policy: { keepWeekly: 2 },
    filter: { paths: ['/data'], hosts: ['web-1'] },
  },
];

/** The ids kept and removed, each sorted. */
function keepAndRemove(decisions: ReadonlyArray<{ id: string; keep: boolean }>): {
  keep: string[];
  remove: string[];
} {
  return {
    keep: decisions
      .filter((d) => d.keep)
      .map((d) => d.id)
      .sort(),
    remove: decisions
      .filter((d) => !d.keep)
      .map((d) => d.id)
      .sort(),
  };
}

interface ResticSnapshot {
  id: string;
}
interface ResticGroup {
  host: string;
  paths: string[] | null;
  keep: ResticSnapshot[] | null;
  remove: ResticSnapshot[] | null;
}

describe('forget keeps exactly what restic 0.14 keeps', () => {
  let dir: string;
  let repoDir: string;
  let repo: Repository;
  let ids: string[];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-forget-parity-'));
    repoDir = join(dir, 'repo');
    repo = await Repository.init(new LocalBackend(repoDir), PASSWORD, {
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
    });
    const tree = await repo.saveTree([]);
    await repo.flush();
    ids = [];
    for (const snapshot of craftHistory(tree)) ids.push(await repo.saveSnapshot(snapshot));
  });

  afterAll(async () => {
    await repo?.backend.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  async function resticForget(flags: string[]): Promise<{ keep: string[]; remove: string[] }> {
    const { stdout } = await run(
      resolveBinary(RESTIC),
      ['-r', repoDir, '--no-lock', '--no-cache', '--json', 'forget', '--dry-run', ...flags],
      { env: { ...process.env, RESTIC_PASSWORD: PASSWORD }, maxBuffer: 64 * 1024 * 1024 },
    );
    // restic prints one JSON array of groups (possibly `null` when nothing matched).
    const groups = (JSON.parse(stdout.trim().split('\n').at(-1)!) as ResticGroup[] | null) ?? [];
    return {
      keep: groups.flatMap((g) => (g.keep ?? []).map((s) => s.id)).sort(),
      remove: groups.flatMap((g) => (g.remove ?? []).map((s) => s.id)).sort(),
    };
  }

  async function volbackForget(flags: string[]): Promise<{ keep: string[]; remove: string[] }> {
    const { stdout } = await run(
      process.execPath,
      [VOLBACK_MAIN, 'repo', 'forget', '--dry-run', '--json', '--repo', repoDir, ...flags],
      { env: { ...process.env, VOLBACK_PASSWORD: PASSWORD } },
    );
    return keepAndRemove(JSON.parse(stdout) as Array<{ id: string; keep: boolean }>);
  }

  it('crafted a varied history', async () => {
    expect(ids).toHaveLength(41);
    expect(new Set(ids).size).toBe(41);
    const { stdout } = await run(
      resolveBinary(RESTIC),
      ['-r', repoDir, '--no-lock', '--no-cache', '--json', 'snapshots'],
      {
        env: { ...process.env, RESTIC_PASSWORD: PASSWORD },
      },
    );
    expect((JSON.parse(stdout) as unknown[]).length).toBe(41);
  });

  for (const c of CASES) {
    it(`restic forget ${c.flags.map((f) => (f === '' ? "''" : f)).join(' ')}`, async () => {
      const decisions = await forget(repo, c.policy, {
        dryRun: true,
        ...(c.filter ? { filter: c.filter } : {}),
      });
      const ours = keepAndRemove(decisions);
      const theirs = await resticForget(c.flags);
      expect(ours).toEqual(theirs);
      // The command line reads the same flags into the same policy.
      expect(await volbackForget(c.flags)).toEqual(theirs);
      // Every case must decide something both ways or it proves little.
      expect(theirs.keep.length).toBeGreaterThan(0);
    });
  }

  it('a dry run removed nothing', async () => {
    expect((await repo.listSnapshots()).length).toBe(41);
  });
});
