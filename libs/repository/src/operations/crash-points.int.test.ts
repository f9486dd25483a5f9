import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runScript, volback } from '../test-support/commands.ts';
import { pseudoRandom } from '../test-support/fixture-tree.ts';
import { lockFiles, repositoryState } from '../test-support/repository-state.ts';

const PASSWORD = 'crash-points-test-password';
const ENV = { VOLBACK_PASSWORD: PASSWORD, RESTIC_PASSWORD: PASSWORD };
const { expectResticCheckPasses, visibleHosts, packState } = repositoryState(PASSWORD);
/** A backup that SIGKILLs itself at a chosen point of the write order. */
const CRASH_BACKUP = fileURLToPath(new URL('../test-support/crash-backup.ts', import.meta.url));

describe('kill -9 of a backup at exact points of the write order', () => {
  let dir: string;
  let repo: string;
  let data: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-crash-points-'));
    repo = join(dir, 'repo');
    data = join(dir, 'data');
    expect((await volback(['repo', 'init', '--repo', repo], ENV)).code).toBe(0);
  });

  afterAll(async () => {
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  const POINTS: Array<{ point: string; what: string; snapshotVisible: boolean }> = [
    { point: 'after:locks:1', what: 'with only its lock written', snapshotVisible: false },
    { point: 'after:data:1', what: 'after its first pack', snapshotVisible: false },
    { point: 'before:data:4', what: 'between packs', snapshotVisible: false },
    { point: 'after:index:1', what: 'after the index, before the snapshot', snapshotVisible: false },
    {
      point: 'after:snapshots:1',
      what: 'after the snapshot, before releasing the lock',
      snapshotVisible: true,
    },
  ];

  for (const [i, { point, what, snapshotVisible }] of POINTS.entries()) {
    it(`killed ${what} (${point}): restic check passes, ${snapshotVisible ? 'the finished' : 'no'} snapshot is visible`, async () => {
      await rm(data, { recursive: true, force: true });
      await mkdir(data);
      for (let f = 0; f < 6; f++)
        await writeFile(join(data, `f-${f}.bin`), pseudoRandom(400_000, 7000 + i * 10 + f));
      const running = await runScript(CRASH_BACKUP, [repo, data, `crash-${i}`, point], ENV);
      expect(running.signal, running.stderr).toBe('SIGKILL');
      expect((await lockFiles(repo)).length).toBeGreaterThanOrEqual(1);
      const hosts = await visibleHosts(repo);
      expect(hosts.includes(`crash-${i}`)).toBe(snapshotVisible);
      await expectResticCheckPasses(repo, ['--no-lock']);
      // The dead process's lock does not block the next volback command, which removes it, so
      // that restic can take its own lock again.
      const check = await volback(['repo', 'check', '--repo', repo], ENV);
      expect(check.code, check.stderr + check.stdout).toBe(0);
      expect(await lockFiles(repo)).toEqual([]);
      await expectResticCheckPasses(repo);
    });
  }

  it('then a backup succeeds and prune leaves only indexed, used packs', async () => {
    const next = await volback(['repo', 'backup', data, '--repo', repo, '--host', 'next'], ENV);
    expect(next.code, next.stderr).toBe(0);
    expect(await lockFiles(repo)).toEqual([]);
    expect((await packState(repo)).unindexed.length).toBeGreaterThan(0);
    const pruned = await volback(['repo', 'prune', '--repo', repo, '--json'], ENV);
    expect(pruned.code, pruned.stderr).toBe(0);
    const summary = JSON.parse(pruned.stdout) as { orphanedPacksDeleted: number; packsDeleted: number };
    expect(summary.orphanedPacksDeleted).toBeGreaterThan(0);
    // The run killed after its index wrote packs no snapshot uses: prune removes those too.
    expect(summary.packsDeleted).toBeGreaterThan(0);
    expect((await packState(repo)).unindexed).toEqual([]);
    const verified = await expectResticCheckPasses(repo, ['--read-data']);
    expect(verified.stdout).not.toContain('not referenced in any index');
    expect(await visibleHosts(repo)).toEqual([`crash-${POINTS.length - 1}`, 'next']);
  });
});
