import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../backend/local-backend.ts';
import { formatChunkerPolynomial, randomIrreduciblePolynomial } from '../chunker/index.ts';
import { Repository } from '../repository.ts';
import { pseudoRandom } from '../test-support/fixture-tree.ts';
import { repositoryState } from '../test-support/repository-state.ts';
import { backup } from './backup.ts';
import { check } from './check.ts';
import { forget } from './forget.ts';
import { prune } from './prune.ts';
import { restore } from './restore.ts';

const PASSWORD = 'handle-reuse-password';
const { expectResticCheckPasses } = repositoryState(PASSWORD);

/** A gateway keeps one repository handle for many operations: each must see the repository as it is now. */
describe('one repository handle across backup, forget, prune and backup again', () => {
  let dir: string;
  let repoPath: string;
  let source: string;
  let repo: Repository;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-handle-reuse-'));
    repoPath = join(dir, 'repo');
    source = join(dir, 'source');
    await mkdir(source);
    await writeFile(join(source, 'data.bin'), pseudoRandom(1_500_000, 42));
    await writeFile(join(source, 'note.txt'), 'kept across prune\n');
    repo = await Repository.init(new LocalBackend(repoPath), PASSWORD, {
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
    });
  });

  afterAll(async () => {
    await repo?.backend.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('checking twice counts every pack once', async () => {
    await backup(repo, { source });
    const first = await check(repo, { readDataFraction: 1 });
    const second = await check(repo, { readDataFraction: 1 });
    expect(first.ok).toBe(true);
    expect(second).toEqual(first);
    const listed = [...repo.index.packs().values()].reduce((n, entries) => n + entries.length, 0);
    expect(listed).toBe(repo.index.size);
  });

  it('a backup after prune removed the same data stores it again', async () => {
    const all = await repo.listSnapshots();
    // Forget everything (keep only a tag nobody has), then prune removes every pack.
    await forget(repo, { keepTags: [['nobody-has-this']] });
    expect(await repo.listSnapshots()).toEqual([]);
    const pruned = await prune(repo);
    expect(pruned.packsDeleted).toBeGreaterThan(0);
    expect(all.length).toBe(1);

    const again = await backup(repo, { source });
    // Nothing of the pruned packs may be taken for still present.
    expect(again.bytesAdded).toBeGreaterThan(1_500_000);
    await expectResticCheckPasses(repoPath, ['--read-data']);
    const target = join(dir, 'restored');
    const restored = await restore(repo, { snapshot: again.snapshotId, target });
    expect(restored.errors).toEqual([]);
    expect(await readFile(join(target, source, 'note.txt'), 'utf8')).toBe('kept across prune\n');
  });
});
