import { mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { changeOnePercent, makeDataset, SHAPES, type Shape } from '../test-support/volume-shapes.ts';
import {
  backup,
  formatChunkerPolynomial,
  LocalBackend,
  randomIrreduciblePolynomial,
  Repository,
} from '../index.ts';
import { restic, TEST_PASSWORD } from '../test-support/restic.ts';

const MiB = 1024 * 1024;
/** Small enough for a test, large enough that database and media files span several chunks. */
const SIZE = 12 * MiB;

const scratch = () => mkdtempSync(join(tmpdir(), 'volback-chunk-cache-'));

/** Every file of a snapshot with its blob ids, by path. */
async function fileContents(repo: Repository, snapshotId: string): Promise<Map<string, string[]>> {
  const files = new Map<string, string[]>();
  const walk = async (tree: string, path: string): Promise<void> => {
    for (const node of await repo.loadTree(tree)) {
      if (node.type === 'dir') await walk(node.subtree!, `${path}/${node.name}`);
      else if (node.type === 'file') files.set(`${path}/${node.name}`, node.content ?? []);
    }
  };
  await walk((await repo.findSnapshot(snapshotId)).snapshot.tree, '');
  return files;
}

/** The tree of the source directory in a snapshot (below the nodes of its parent directories). */
async function sourceTree(repo: Repository, snapshotId: string, source: string): Promise<string> {
  let tree = (await repo.findSnapshot(snapshotId)).snapshot.tree;
  for (const part of source.split('/').filter(Boolean)) {
    const node = (await repo.loadTree(tree)).find((n) => n.name === part);
    tree = node!.subtree!;
  }
  return tree;
}

/** The shape's dataset backed up with a chunk cache, changed as the bench changes it. */
async function backedUpAndChanged(shape: Shape) {
  const source = join(scratch(), 'data');
  makeDataset(shape, source, SIZE);
  const dir = join(scratch(), 'repo');
  const repo = await Repository.init(new LocalBackend(dir), TEST_PASSWORD, {
    chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
  });
  const chunkCacheDir = join(scratch(), 'cache');
  const full = await backup(repo, { source, chunkCacheDir });
  expect(full.errors).toEqual([]);
  changeOnePercent(shape, source, SIZE);
  return { source, dir, repo, chunkCacheDir };
}

/** Backs up through the cache, then everything again without parent or cache; both must agree. */
async function expectSameAsFullChunking(
  repo: Repository,
  dir: string,
  source: string,
  chunkCacheDir: string,
) {
  const cached = await backup(repo, { source, chunkCacheDir });
  expect(cached.errors).toEqual([]);
  const reread = await backup(repo, { source, parent: null });
  expect(reread.bytesReused).toBe(0);
  // Nothing new: the cached backup already stored every blob a full chunking cuts.
  expect(reread.bytesAdded).toBe(0);
  expect(await fileContents(repo, cached.snapshotId)).toEqual(await fileContents(repo, reread.snapshotId));
  await restic(dir, ['check', '--read-data']);
  return cached;
}

describe('chunk cache: the same snapshot, blob for blob, as chunking every changed file in full', () => {
  for (const shape of SHAPES) {
    it(`on the bench's ${shape} shape, and restic checks the repository`, async () => {
      const { source, dir, repo, chunkCacheDir } = await backedUpAndChanged(shape);
      const cached = await expectSameAsFullChunking(repo, dir, source, chunkCacheDir);
      // Pages rewritten in place in files of several chunks (at this size, mixed's 17 database
      // files are one chunk each): most of each changed file is reused, not cut again.
      if (shape === 'database' || shape === 'few-large') expect(cached.bytesReused).toBeGreaterThan(0);
    });
  }

  it('a stale cache (every block digest wrong) proves nothing: the files are cut afresh', async () => {
    const { source, dir, repo, chunkCacheDir } = await backedUpAndChanged('database');
    const files = join(chunkCacheDir, 'files');
    for (const name of readdirSync(files)) {
      const entry = JSON.parse(readFileSync(join(files, name), 'utf8')) as { digests: string[] };
      // Of the right length: every block of every chunk looks changed, so each is rolled whole.
      entry.digests = entry.digests.map((digest) => '0'.repeat(digest.length));
      writeFileSync(join(files, name), JSON.stringify(entry));
    }
    const cached = await expectSameAsFullChunking(repo, dir, source, chunkCacheDir);
    expect(cached.bytesReused).toBe(0);
    expect(cached.filesChanged).toBeGreaterThan(0);
  });

  it('an unreadable cache entry or a new seed falls back to full chunking', async () => {
    const { source, dir, repo, chunkCacheDir } = await backedUpAndChanged('mixed');
    const files = join(chunkCacheDir, 'files');
    for (const name of readdirSync(files)) writeFileSync(join(files, name), '{"v":1,');
    writeFileSync(join(chunkCacheDir, 'seed'), 'not a seed');
    const cached = await expectSameAsFullChunking(repo, dir, source, chunkCacheDir);
    expect(cached.bytesReused).toBe(0);
  });

  it('an unchanged backup keeps every tree of its parent', async () => {
    const { source, repo, chunkCacheDir } = await backedUpAndChanged('many-small');
    // The backup of the changes reads changed directories, which moves their atimes (relatime):
    // atimes are not recorded (as restic and rustic by default), so the next backup changes nothing.
    const changed = await backup(repo, { source, chunkCacheDir });
    const unchanged = await backup(repo, { source, chunkCacheDir });
    expect(unchanged.parentSnapshotId).toBe(changed.snapshotId);
    expect(unchanged.filesChanged + unchanged.filesNew).toBe(0);
    expect(unchanged.dirsChanged + unchanged.dirsNew).toBe(0);
    // The source's own tree (the wrapper trees above it record /tmp, which others change).
    expect(await sourceTree(repo, unchanged.snapshotId, source)).toBe(
      await sourceTree(repo, changed.snapshotId, source),
    );
  });
});
