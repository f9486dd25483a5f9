import { mkdir, mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startVolback, volback } from '../test-support/commands.ts';
import { pseudoRandom } from '../test-support/fixture-tree.ts';
import { lockFiles, packCount, repositoryState } from '../test-support/repository-state.ts';

const PASSWORD = 'kill-test-password';
const ENV = { VOLBACK_PASSWORD: PASSWORD, RESTIC_PASSWORD: PASSWORD };
const { expectResticCheckPasses, visibleHosts, packState } = repositoryState(PASSWORD);
/** 12 × 4 MiB plus small files: about 55 MiB, a few seconds of backup on this machine. */
const BIG_FILES = 12;

/** Deterministic pseudo-random numbers in [0, 1) from a seed that the test prints. */
function prng(seed: number): () => number {
  let x = seed >>> 0 || 1;
  return () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) / 2 ** 32;
  };
}

/**
 * Replaces `dir` with fresh incompressible data: `bigFiles` files of 4 MiB and 300 small files
 * in 10 directories. A new seed gives all-new blobs, so every backup of it writes packs.
 */
async function writeDataset(dir: string, seed: number, bigFiles: number): Promise<void> {
  await rm(dir, { recursive: true, force: true });
  for (let d = 0; d < 10; d++) await mkdir(join(dir, `dir-${d}`), { recursive: true });
  for (let i = 0; i < bigFiles; i++) {
    await writeFile(join(dir, `big-${i}.bin`), pseudoRandom(4 * 1024 * 1024, seed * 1000 + i));
  }
  for (let i = 0; i < 300; i++) {
    const size = 4096 + ((i * 7919) % 28_000);
    await writeFile(join(dir, `dir-${i % 10}`, `small-${i}.bin`), pseudoRandom(size, seed * 1000 + 500 + i));
  }
}

describe('kill -9 of a volback backup at random moments', () => {
  const seed = Number(process.env['VOLBACK_KILL_SEED'] ?? Date.now() % 1_000_000);
  const random = prng(seed);
  let dir: string;
  let repo: string;
  let data: string;
  /** Wall time of the last complete backup of a fresh dataset, process start to exit. */
  let fullBackupMs = 0;
  let orphansSeen = 0;
  /** Hosts of runs that finished before their kill (legitimate snapshots). */
  const finishedHosts: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-kill-'));
    repo = join(dir, 'repo');
    data = join(dir, 'data');
    expect((await volback(['repo', 'init', '--repo', repo], ENV)).code).toBe(0);
    await writeDataset(data, 1, BIG_FILES);
    const first = await volback(['repo', 'backup', data, '--repo', repo, '--host', 'complete'], ENV);
    expect(first.code, first.stderr).toBe(0);
    fullBackupMs = first.durationMs;
    console.info(`kill test: seed ${seed} (VOLBACK_KILL_SEED), a full backup takes ${fullBackupMs} ms`);
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /**
   * Starts a backup of fresh data and kills it after `share` of a full backup's time. Should it
   * finish first (the machine got faster), it tries again sooner; the runs that did finish are
   * legitimate snapshots and their hosts are returned apart.
   */
  async function killBackup(
    round: number,
    share: number,
  ): Promise<{ host: string; finished: string[]; delay: number }> {
    await writeDataset(data, 100 + round, BIG_FILES);
    const finished: string[] = [];
    let delay = Math.round(fullBackupMs * share);
    for (let attempt = 1; ; attempt++) {
      const host = `killed-${round}-${attempt}`;
      const running = startVolback(['repo', 'backup', data, '--repo', repo, '--host', host], ENV);
      const timer = setTimeout(() => running.child.kill('SIGKILL'), delay);
      const result = await running.result;
      clearTimeout(timer);
      if (result.signal === 'SIGKILL') return { host, finished, delay };
      expect(result.code, result.stderr).toBe(0);
      finishedHosts.push(host);
      expect(attempt, `the backup always finished before ${delay} ms`).toBeLessThan(3);
      finished.push(host);
      delay = Math.round(delay * 0.6);
      await writeDataset(data, 100 + round + attempt * 10, BIG_FILES);
    }
  }

  /** What must hold right after a kill, before anything else touches the repository. */
  async function expectConsistentAfterKill(host: string, finished: string[]): Promise<void> {
    // Nothing of the killed run is visible; restic's check (without its own lock: ours may be
    // left behind, stale) accepts the repository; unreferenced packs are only a notice.
    const hosts = await visibleHosts(repo);
    expect(hosts).not.toContain(host);
    for (const done of finished) expect(hosts).toContain(done);
    const check = await expectResticCheckPasses(repo, ['--no-lock']);
    orphansSeen += (check.stdout.match(/not referenced in any index/g) ?? []).length;
  }

  const shares = [0.1 + random() * 0.2, 0.3 + random() * 0.2, 0.5 + random() * 0.2, 0.7 + random() * 0.15];

  for (const [i, share] of shares.entries()) {
    it(`round ${i + 1}: killed at ${Math.round(share * 100)}% of a backup, the repository stays valid and the next backup succeeds`, async () => {
      const { host, finished, delay } = await killBackup(i + 1, share);
      console.info(`kill test round ${i + 1}: killed after ${delay} ms`);
      await expectConsistentAfterKill(host, finished);

      // The next backup of the same data succeeds, whatever lock the killed run left.
      const next = await volback(
        ['repo', 'backup', data, '--repo', repo, '--host', `after-${i + 1}`, '--json'],
        ENV,
      );
      expect(next.code, next.stderr).toBe(0);
      fullBackupMs = Math.min(fullBackupMs, next.durationMs);
      expect(await visibleHosts(repo)).toContain(`after-${i + 1}`);
      // The stale lock is gone with it, so restic can lock the repository again.
      expect(await lockFiles(repo)).toEqual([]);
      await expectResticCheckPasses(repo);
    });
  }

  it('a prune right after a kill ignores the stale lock and removes every orphaned pack', async () => {
    // Killed once it holds its lock and has written a pack (plus a random moment), so that a stale
    // lock and an orphaned pack are surely there for prune.
    // A run can finish in the random moment (or write its snapshot and die on its way out): that
    // one is a finished backup (kept apart, as in killBackup), and the next is killed at once.
    const finished: string[] = [];
    let host = '';
    for (let attempt = 1; ; attempt++) {
      await writeDataset(data, 200 + attempt, BIG_FILES);
      const packsBefore = await packCount(repo);
      host = `killed-before-prune-${attempt}`;
      const running = startVolback(['repo', 'backup', data, '--repo', repo, '--host', host], ENV);
      while ((await packCount(repo)) === packsBefore && running.child.exitCode === null) await sleep(20);
      if (attempt === 1) await sleep(Math.round(random() * 300));
      running.child.kill('SIGKILL');
      const result = await running.result;
      if (result.signal === 'SIGKILL' && !(await visibleHosts(repo)).includes(host)) break;
      expect(result.signal === 'SIGKILL' || result.code === 0, result.stderr).toBe(true);
      expect(attempt, 'the backup finished before the kill each time').toBeLessThan(5);
      finished.push(host);
      finishedHosts.push(host);
    }
    await expectConsistentAfterKill(host, finished);
    const stale = await lockFiles(repo);
    expect(stale.length).toBeGreaterThan(0);

    const before = await packState(repo);
    expect(before.unindexed.length).toBeGreaterThan(0);
    expect(orphansSeen).toBeGreaterThan(0);
    const pruned = await volback(['repo', 'prune', '--repo', repo, '--json'], ENV);
    expect(pruned.code, pruned.stderr).toBe(0);
    const summary = JSON.parse(pruned.stdout) as { orphanedPacksDeleted: number; packsDeleted: number };
    expect(summary.orphanedPacksDeleted).toBe(before.unindexed.length);
    expect(summary.packsDeleted).toBe(0);

    const after = await packState(repo);
    expect(after.unindexed).toEqual([]);
    expect(after.indexed).toBe(before.indexed);
    expect(await lockFiles(repo)).toEqual([]);
    // Half-written files of the killed runs are gone from the staging directory too.
    expect(await readdir(join(repo, '.volback-tmp'))).toEqual([]);
    const verified = await expectResticCheckPasses(repo, ['--read-data']);
    expect(verified.stdout).not.toContain('not referenced in any index');
    expect(await visibleHosts(repo)).toEqual(
      ['complete', 'after-1', 'after-2', 'after-3', 'after-4', ...finishedHosts].sort(),
    );
  });
});
