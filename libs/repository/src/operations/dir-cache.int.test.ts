import {
  chmodSync,
  existsSync,
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../backend/local-backend.ts';
import { formatChunkerPolynomial, randomIrreduciblePolynomial } from '../chunker/index.ts';
import { Repository } from '../repository.ts';
import { writeXattrs } from '../test-support/extended-attributes.ts';
import { restic, TEST_PASSWORD } from '../test-support/restic.ts';
import { makeDataset } from '../test-support/volume-shapes.ts';
import { backup, snapshotDirectory } from './backup.ts';
import { repositorySink, type BlobSink } from './blob-ports.ts';

const MiB = 1024 * 1024;

let dir: string;
let source: string;
let cacheDir: string;
let repo: Repository;

/** The tree of the source directory in a snapshot (below the nodes of its parent directories). */
async function sourceTree(snapshotId: string): Promise<string> {
  let tree = (await repo.findSnapshot(snapshotId)).snapshot.tree;
  for (const part of source.split('/').filter(Boolean)) {
    tree = (await repo.loadTree(tree)).find((n) => n.name === part)!.subtree!;
  }
  return tree;
}

/**
 * A backup through the directory cache, then one that reads everything (no parent, no cache):
 * both must give the source the same tree. Returns the cached backup's summary.
 */
async function expectSameAsRereading(excludes?: string[]) {
  const cached = await backup(repo, { source, chunkCacheDir: cacheDir, ...(excludes ? { excludes } : {}) });
  expect(cached.errors).toEqual([]);
  const reread = await backup(repo, { source, parent: null, ...(excludes ? { excludes } : {}) });
  expect(reread.errors).toEqual([]);
  expect(await sourceTree(cached.snapshotId)).toBe(await sourceTree(reread.snapshotId));
  expect(cached.filesUnmodified + cached.filesChanged + cached.filesNew).toBe(reread.filesNew);
  expect(cached.dirsUnmodified + cached.dirsChanged + cached.dirsNew).toBe(reread.dirsNew);
  expect(cached.totalBytes).toBe(reread.totalBytes);
  return cached;
}

/** A walk of the source against its last snapshot's tree, counting the parent trees it loads. */
async function treesLoadedByWalk(parentSnapshot: string): Promise<{ loaded: number; tree: string }> {
  const sink = repositorySink(repo);
  let loaded = 0;
  const counting = new Proxy(sink, {
    get(target, key, receiver) {
      if (key === 'loadTree')
        return (id: string) => {
          loaded++;
          return target.loadTree(id);
        };
      if (key === 'loadTrees')
        return (ids: string[]) => {
          loaded += ids.length;
          return target.loadTrees!(ids);
        };
      return Reflect.get(target, key, receiver) as unknown;
    },
  }) as BlobSink;
  const walked = await snapshotDirectory(counting, {
    source,
    parentTree: await sourceTree(parentSnapshot),
    chunkCacheDir: cacheDir,
  });
  await repo.flush();
  return { loaded, tree: walked.tree };
}

/** A directory deep in the many-small dataset, and one of its files. */
function deepest(): { directory: string; file: string } {
  let directory = source;
  for (;;) {
    const sub = readdirSync(directory, { withFileTypes: true }).find((e) => e.isDirectory());
    if (!sub) break;
    directory = join(directory, sub.name);
  }
  const file = readdirSync(directory, { withFileTypes: true }).find((e) => e.isFile())!.name;
  return { directory, file: join(directory, file) };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'volback-dir-cache-'));
  source = join(dir, 'data');
  cacheDir = join(dir, 'cache');
  makeDataset('many-small', source, 4 * MiB);
  symlinkSync('nowhere', join(source, 'link'));
  repo = await Repository.init(new LocalBackend(join(dir, 'repo')), TEST_PASSWORD, {
    chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
  });
});

afterAll(async () => {
  await repo?.close();
  await repo?.backend.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

describe('directory cache: the same trees as a backup that reads everything', () => {
  it('records the first walk; an unchanged walk loads no tree and keeps the parent tree', async () => {
    const first = await expectSameAsRereading();
    expect(first.filesNew).toBeGreaterThan(400);
    const second = await expectSameAsRereading();
    expect(second.filesUnmodified).toBe(first.filesNew);
    const walk = await treesLoadedByWalk(second.snapshotId);
    expect(walk.loaded).toBe(0);
    expect(walk.tree).toBe(await sourceTree(second.snapshotId));
  });

  it('a file rewritten deep down (same size): only the trees on its path are loaded', async () => {
    const { directory, file } = deepest();
    writeFileSync(file, Buffer.alloc(readdirSync(directory).length, 7)); // another size too
    const before = await backup(repo, { source, chunkCacheDir: cacheDir });
    expect(before.filesChanged).toBe(1);
    writeFileSync(file, Buffer.alloc(readdirSync(directory).length, 8)); // same size, other bytes
    const depth = directory.slice(source.length).split('/').length; // the source and each level
    const walk = await treesLoadedByWalk(before.snapshotId);
    expect(walk.loaded).toBeGreaterThan(0);
    expect(walk.loaded).toBeLessThanOrEqual(depth * 2);
    const cached = await expectSameAsRereading();
    expect(cached.filesChanged).toBe(1);
  });

  it('metadata only: a directory chmod-ed, an extended attribute, a hard link, a new symlink target', async () => {
    const { directory, file } = deepest();
    chmodSync(directory, 0o750);
    await expectSameAsRereading();
    writeXattrs({ [file]: { 'user.note': Buffer.from('kept').toString('hex') } });
    await expectSameAsRereading();
    linkSync(file, join(source, 'hard-link'));
    await expectSameAsRereading();
    rmSync(join(source, 'link'));
    symlinkSync('elsewhere', join(source, 'link'));
    await expectSameAsRereading();
  });

  it('entries added, removed and renamed; excludes change the trees and the cache follows', async () => {
    const { directory, file } = deepest();
    renameSync(file, `${file}.renamed`);
    mkdirSync(join(directory, 'new/deeper'), { recursive: true });
    writeFileSync(join(directory, 'new/deeper/file.txt'), 'new\n');
    await expectSameAsRereading();
    rmSync(join(directory, 'new'), { recursive: true });
    await expectSameAsRereading();
    const excluded = await expectSameAsRereading(['*.bin']);
    await expectSameAsRereading(['*.bin']);
    const all = await expectSameAsRereading();
    // The excluded files come back as new (the parent has none).
    expect(all.filesNew).toBeGreaterThan(0);
    expect(all.totalBytes).toBeGreaterThan(excluded.totalBytes);
  });

  it('a cache file cut short or unreadable (a file of the first version removed), and a backup against an older parent, read as without the cache', async () => {
    const file = join(cacheDir, 'dirs');
    const saved = readFileSync(file);
    writeFileSync(file, saved.subarray(0, saved.length - 1)); // a record cut short
    await expectSameAsRereading();
    writeFileSync(file, '{"v":2,"key":');
    writeFileSync(join(cacheDir, 'dirs.json'), '{"v":1,"key":"[]","dirs":[]}'); // the first version's
    await expectSameAsRereading();
    expect(existsSync(join(cacheDir, 'dirs.json'))).toBe(false);
    const older = (await repo.listSnapshots())[0]!.id;
    const cached = await backup(repo, { source, parent: older, chunkCacheDir: cacheDir });
    const reread = await backup(repo, { source, parent: null });
    expect(await sourceTree(cached.snapshotId)).toBe(await sourceTree(reread.snapshotId));
    await restic(repo.backend.location, ['check', '--read-data']);
  });
});
