import { execFileSync } from 'node:child_process';
import {
  chmodSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  symlinkSync,
  unlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../backend/local-backend.ts';
import { formatChunkerPolynomial, randomIrreduciblePolynomial } from '../chunker/index.ts';
import { nameFromBytes } from '../format/tree.ts';
import { Repository } from '../repository.ts';
import { writeXattrs } from '../test-support/extended-attributes.ts';
import { TEST_PASSWORD } from '../test-support/restic.ts';
import { backup } from './backup.ts';
import { scanDirectory } from './dir-scan.ts';
import { nodeFromStat, nodeFromStats } from './node-metadata.ts';

let dir: string;
let source: string;
/** A name that is not UTF-8 (0xff), as bytes, and the path of a file with it. */
const LATIN1_NAME = Buffer.from([0x66, 0xff, 0x6f]);
const latin1Path = () => Buffer.concat([Buffer.from(`${source}/`), LATIN1_NAME]);

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'volback-dir-scan-'));
  source = join(dir, 'source');
  mkdirSync(join(source, 'sub/deeper'), { recursive: true });
  writeFileSync(join(source, 'file.txt'), 'some text\n');
  writeFileSync(join(source, 'empty'), '');
  writeFileSync(join(source, 'café ✓'), 'a UTF-8 name\n');
  writeFileSync(latin1Path(), 'a name that is not UTF-8\n');
  writeFileSync(join(source, 'sub/deeper/inner.bin'), Buffer.alloc(70_000, 7));
  writeFileSync(join(source, 'attributed'), 'with an attribute\n');
  writeXattrs({ [join(source, 'attributed')]: { 'user.note': Buffer.from('kept').toString('hex') } });
  symlinkSync('file.txt', join(source, 'link'));
  execFileSync('mkfifo', [join(source, 'pipe')]);
  chmodSync(join(source, 'file.txt'), 0o640);
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const describeWithAddon = scanDirectory ? describe : describe.skip;

describeWithAddon('a directory read on the thread pool', () => {
  it('gives what readdir, lstat and llistxattr give: names in byte order, each node as lstat makes it', async () => {
    const scanned = await scanDirectory!(source);
    const names = readdirSync(source, { encoding: 'buffer' }).sort(Buffer.compare);
    expect(scanned.size).toBe(names.length);
    for (const [i, raw] of names.entries()) {
      const name = nameFromBytes(raw);
      expect(scanned.name(i)).toEqual(name);
      const path = name.nameBytes ? Buffer.concat([Buffer.from(`${source}/`), raw]) : join(source, name.name);
      // atime too: the one field a backup reads only when asked to.
      expect(nodeFromStat(name.name, scanned.stat(i, path), true)).toEqual(
        nodeFromStats(name.name, lstatSync(path, { bigint: true }), true),
      );
      expect(scanned.isDirectory(i)).toBe(name.name === 'sub');
      expect(scanned.mayHaveAttributes(i)).toBe(name.name === 'attributed');
    }
    expect(names.map((n) => nameFromBytes(n).nameBytes).filter(Boolean)).toEqual([LATIN1_NAME]);
  });

  it('fails as readdir does for a path that is missing or not a directory', async () => {
    for (const path of [join(source, 'missing'), join(source, 'file.txt')]) {
      let expected: NodeJS.ErrnoException | undefined;
      try {
        readdirSync(path);
      } catch (error) {
        expected = error as NodeJS.ErrnoException;
      }
      await expect(scanDirectory!(path)).rejects.toMatchObject({
        message: expected!.message,
        code: expected!.code,
        errno: expected!.errno,
        syscall: 'scandir',
        path,
      });
    }
    // Not a path at all: a TypeError, nothing read.
    await expect(async () => scanDirectory!(Buffer.from('a\0b'))).rejects.toThrow(TypeError);
  });

  it('a backup with a parent reads through it and records what a backup without one records', async () => {
    const repo = await Repository.init(new LocalBackend(join(dir, 'repo')), TEST_PASSWORD, {
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
    });
    try {
      /** The source directory's tree in a snapshot (the directories above it may change meanwhile). */
      const treeOf = async (id: string) => {
        let tree = (await repo.findSnapshot(id)).snapshot.tree;
        for (const part of source.split('/').filter(Boolean)) {
          tree = (await repo.loadTree(tree)).find((node) => node.name === part)!.subtree!;
        }
        return tree;
      };
      const first = await backup(repo, { source, parent: null });
      // Nothing changed: every tree is the parent's.
      const unchanged = await backup(repo, { source });
      expect(unchanged.parentSnapshotId).toBe(first.snapshotId);
      expect(await treeOf(unchanged.snapshotId)).toBe(await treeOf(first.snapshotId));
      expect(unchanged.dirsUnmodified).toBeGreaterThan(0);

      // Changes of every kind the walk notices, deep and shallow.
      writeFileSync(join(source, 'sub/deeper/inner.bin'), Buffer.alloc(70_000, 8));
      utimesSync(join(source, 'empty'), new Date('2020-01-02T03:04:05Z'), new Date('2021-01-02T03:04:05Z'));
      chmodSync(join(source, 'sub'), 0o700);
      writeXattrs({ [join(source, 'file.txt')]: { 'user.added': '00' } });
      unlinkSync(join(source, 'link'));
      mkdirSync(join(source, 'sub/new-dir'));
      writeFileSync(join(source, 'sub/new-dir/new.txt'), 'new\n');
      writeFileSync(Buffer.concat([latin1Path(), Buffer.from('-2')]), 'another\n');
      const withParent = await backup(repo, { source });
      expect(withParent.parentSnapshotId).toBe(unchanged.snapshotId);
      expect(withParent.errors).toEqual([]);
      // The same directory read again without a parent: lstat on the walk's thread.
      const without = await backup(repo, { source, parent: null });
      expect(without.parentSnapshotId).toBeUndefined();
      expect(await treeOf(withParent.snapshotId)).toBe(await treeOf(without.snapshotId));
      expect(await treeOf(withParent.snapshotId)).not.toBe(await treeOf(first.snapshotId));
    } finally {
      await repo.close();
      await repo.backend.close();
    }
  });
});
