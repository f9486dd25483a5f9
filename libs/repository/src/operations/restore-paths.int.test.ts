import { execFile } from 'node:child_process';
import {
  link,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  rm,
  symlink,
  unlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../backend/local-backend.ts';
import { formatChunkerPolynomial, randomIrreduciblePolynomial } from '../chunker/index.ts';
import { Repository } from '../repository.ts';
import { backup } from './backup.ts';
import { exactFileTimes } from './file-times.ts';
import { directoryProbe, planRestore } from './restore-plan.ts';
import { directoryBelow, restore } from './restore.ts';
import { errorOf } from '../test-support/errors.ts';

const run = promisify(execFile);

/** Every entry below `dir` with its type and, for files, content: to prove nothing changed. */
async function listing(dir: string): Promise<string[]> {
  const entries = (await readdir(dir, { recursive: true })).sort();
  return Promise.all(
    entries.map(async (entry) => {
      const stats = await lstat(join(dir, entry));
      const what = stats.isFile()
        ? `file ${await readFile(join(dir, entry), 'utf8')}`
        : stats.isDirectory()
          ? 'dir'
          : 'other';
      return `${entry} ${what}`;
    }),
  );
}

/** Times with every nanosecond digit set, which a double of seconds cannot hold. */
const STAMPS: Record<string, bigint> = {
  '2024/01/photo-3.jpg': 1_700_000_000_123_456_789n,
  '2024/01': 1_700_000_001_987_654_321n,
  '2024': 1_600_000_002_000_000_001n,
  link: 1_700_000_003_555_555_555n,
};

describe('restoring a path at its own place, dry runs, exact times', () => {
  let dir: string;
  let repo: Repository;
  let source: string;
  let snapshot: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-restore-paths-'));
    repo = await Repository.init(new LocalBackend(join(dir, 'repo')), 'paths', {
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
    });
    source = join(dir, 'source');
    await mkdir(join(source, '2024/01'), { recursive: true });
    await mkdir(join(source, '2024/02'), { recursive: true });
    for (let i = 1; i <= 8; i++) await writeFile(join(source, `2024/01/photo-${i}.jpg`), `photo ${i}\n`);
    await writeFile(join(source, '2024/02/other.jpg'), 'other\n');
    await writeFile(join(source, 'top.txt'), 'top\n');
    await symlink('2024/01/photo-1.jpg', join(source, 'link'));
    for (const [path, stamp] of Object.entries(STAMPS)) {
      const seconds = `${stamp / 1_000_000_000n}.${String(stamp % 1_000_000_000n).padStart(9, '0')}`;
      await run('touch', ['-h', '-d', `@${seconds}`, join(source, path)]);
    }
    snapshot = (await backup(repo, { source, hostname: 'paths' })).snapshotId;
  }, 60_000);

  afterAll(async () => {
    await repo?.backend.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('restores mtimes and atimes to the nanosecond (files, directories, symlinks)', async () => {
    expect(exactFileTimes, 'the times addon (scripts/build-native.sh)').toBe(true);
    const target = join(dir, 'times');
    const summary = await restore(repo, { snapshot, target, path: source });
    expect(summary.errors).toEqual([]);
    // `touch -d` set both times; the backup's reads moved the source's atimes since.
    for (const [path, stamp] of Object.entries(STAMPS)) {
      const restored = await lstat(join(target, path), { bigint: true });
      expect(restored.mtimeNs, path).toBe(stamp);
      expect(restored.atimeNs, path).toBe(stamp);
    }
    const [was, now] = await Promise.all([
      lstat(join(source, 'top.txt'), { bigint: true }),
      lstat(join(target, 'top.txt'), { bigint: true }),
    ]);
    expect(now.mtimeNs).toBe(was.mtimeNs);
  });

  it('records atimes only when asked (withAtime); else an entry comes back with its mtime as atime', async () => {
    const timed = join(dir, 'atimes');
    await mkdir(timed, { recursive: true });
    const file = join(timed, 'read-often.txt');
    await writeFile(file, 'read often\n');
    await run('touch', ['-m', '-d', '@1700000000.111111111', file]);
    await run('touch', ['-a', '-d', '@1750000000.222222222', file]);
    for (const withAtime of [false, true]) {
      const { snapshotId } = await backup(repo, { source: timed, hostname: 'atimes', withAtime });
      const target = join(dir, `atimes-restored-${withAtime}`);
      await restore(repo, { snapshot: snapshotId, target, path: timed });
      const restored = await lstat(join(target, 'read-often.txt'), { bigint: true });
      expect(restored.mtimeNs).toBe(1_700_000_000_111_111_111n);
      expect(restored.atimeNs).toBe(withAtime ? 1_750_000_000_222_222_222n : 1_700_000_000_111_111_111n);
    }
  });

  it('a path restored with root puts it at its own place and brings back a deleted file', async () => {
    const target = join(dir, 'existing');
    await restore(repo, { snapshot, target, path: source });
    await unlink(join(target, '2024/01/photo-7.jpg'));
    await writeFile(join(target, '2024/01/photo-1.jpg'), 'changed since\n');
    await writeFile(join(target, '2024/01/new-since.jpg'), 'kept\n');
    await writeFile(join(target, '2024/02/other.jpg'), 'outside the path\n');

    const summary = await restore(repo, { snapshot, target, path: `${source}/2024/01`, root: source });
    expect(summary.errors).toEqual([]);
    expect(summary.files).toBe(8);
    expect(await readFile(join(target, '2024/01/photo-7.jpg'), 'utf8')).toBe('photo 7\n');
    expect(await readFile(join(target, '2024/01/photo-1.jpg'), 'utf8')).toBe('photo 1\n');
    expect(await readFile(join(target, '2024/01/new-since.jpg'), 'utf8')).toBe('kept\n');
    expect(await readFile(join(target, '2024/02/other.jpg'), 'utf8')).toBe('outside the path\n');
    // Nothing landed at the target's root.
    expect((await readdir(target)).sort()).toEqual(['2024', 'link', 'top.txt']);
  });

  it('a path restored into an empty directory creates its parents with their recorded times', async () => {
    const target = join(dir, 'elsewhere');
    await restore(repo, { snapshot, target, path: `${source}/2024/01/photo-3.jpg`, root: source });
    expect(await listing(target)).toEqual(['2024 dir', '2024/01 dir', '2024/01/photo-3.jpg file photo 3\n']);
    expect((await lstat(join(target, '2024'), { bigint: true })).mtimeNs).toBe(1_600_000_002_000_000_001n);
    const outside = await errorOf(restore(repo, { snapshot, target, path: '/elsewhere', root: source }));
    expect(outside.code).toBe('VOLBACK_REPO_FILE_NOT_FOUND');
  });

  it('a dry run lists what would be written, replaced and left alone, and changes nothing', async () => {
    const target = join(dir, 'dry');
    await mkdir(join(target, '2024/01'), { recursive: true });
    await writeFile(join(target, '2024/01/photo-1.jpg'), 'changed since\n');
    await writeFile(join(target, '2024/01/photo-2.jpg'), 'changed since\n');
    await writeFile(join(target, '2024/01/new-since.jpg'), 'kept\n');
    await writeFile(join(target, 'unrelated.txt'), 'not in the restored path\n');
    const before = await listing(target);
    const { snapshot: found } = await repo.findSnapshot(snapshot);

    const plan = await planRestore(repo, {
      tree: found.tree,
      path: `${source}/2024/01`,
      root: source,
      probe: directoryProbe(target),
      maxListed: 4,
    });
    expect(plan.replaced).toEqual({
      count: 2,
      bytes: 16,
      paths: ['/2024/01/photo-1.jpg', '/2024/01/photo-2.jpg'],
    });
    expect(plan.written.count).toBe(6);
    expect(plan.written.bytes).toBe(6 * 8);
    expect(plan.written.paths).toEqual([
      '/2024/01/photo-3.jpg',
      '/2024/01/photo-4.jpg',
      '/2024/01/photo-5.jpg',
      '/2024/01/photo-6.jpg',
    ]);
    expect(plan.leftAlone).toEqual({ count: 1, bytes: 0, paths: ['/2024/01/new-since.jpg'] });
    expect(await listing(target)).toEqual(before);

    // Into a directory that does not exist yet: everything is written, parents included.
    const fresh = await planRestore(repo, {
      tree: found.tree,
      path: `${source}/2024/02`,
      root: source,
      probe: directoryProbe(join(dir, 'not-there')),
    });
    expect(fresh.written.paths).toEqual(['/2024/', '/2024/02/', '/2024/02/other.jpg']);
    expect(fresh.replaced.count + fresh.leftAlone.count).toBe(0);
  });

  it('a target directory inside a volume is reached without following a symlink', async () => {
    const volume = join(dir, 'volume');
    const outside = join(dir, 'outside');
    await mkdir(volume);
    await mkdir(outside);
    await symlink(outside, join(volume, 'link'));
    await writeFile(join(volume, 'file'), 'not a directory\n');
    for (const relative of ['link/restored', 'file/restored', 'link']) {
      expect((await errorOf(directoryBelow(volume, relative, true))).code).toBe('VOLBACK_REPO_UNSAFE_PATH');
    }
    expect(await readdir(outside)).toEqual([]);
    expect(await directoryBelow(volume, 'new/deeper', false)).toBeUndefined();
    expect(await readdir(volume)).toEqual(['file', 'link']);
    expect(await directoryBelow(volume, '/new/./deeper/', true)).toBe(join(volume, 'new/deeper'));
    expect((await lstat(join(volume, 'new/deeper'))).isDirectory()).toBe(true);
  });
});

describe('directories given their metadata while the restore goes on', () => {
  let dir: string;
  let repo: Repository;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-restore-dirs-'));
    repo = await Repository.init(new LocalBackend(join(dir, 'repo')), 'dirs', {
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
    });
  });

  afterAll(async () => {
    await repo?.backend.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('gives each of 300 directories (8,000 files in many batches, large files, a hard link across them) its recorded mtime and mode', async () => {
    const source = join(dir, 'source');
    const dirs = Array.from({ length: 300 }, (_, d) => `g${d % 10}/d${d}`);
    for (const [d, path] of dirs.entries()) {
      await mkdir(join(source, path), { recursive: true });
      for (let f = 0; f < (d % 3 === 0 ? 0 : 40); f++)
        await writeFile(join(source, path, `f${f}`), `${path} ${f}\n`.repeat(1 + (f % 7)));
      // every 25th directory also holds a file streamed on its own (more than 256 KiB)
      if (d % 25 === 1) await writeFile(join(source, path, 'large'), Buffer.alloc(300_000, d));
    }
    // a second name, in a directory walked later, of a file in one walked early
    await link(join(source, 'g1/d1/f0'), join(source, 'g9/d299/second-name'));
    const wanted = [...dirs, ...Array.from({ length: 10 }, (_, g) => `g${g}`)];
    for (const [i, path] of wanted.entries()) {
      await run('chmod', [i % 4 === 0 ? '0750' : '0755', join(source, path)]);
      await run('touch', ['-d', `@${1_600_000_000 + i}.${String(i).padStart(9, '0')}`, join(source, path)]);
    }
    const { snapshotId } = await backup(repo, { source, hostname: 'dirs' });
    const target = join(dir, 'target');
    const summary = await restore(repo, { snapshot: snapshotId, target });
    expect(summary.errors).toEqual([]);
    expect(summary.files).toBe(200 * 40 + 12); // the second name is a link, not a file written
    for (const path of wanted) {
      const [was, now] = await Promise.all([
        lstat(join(source, path), { bigint: true }),
        lstat(join(target, source, path), { bigint: true }),
      ]);
      expect([now.mtimeNs, now.mode], path).toEqual([was.mtimeNs, was.mode]);
    }
    expect(await readFile(join(target, source, 'g9/d299/second-name'), 'utf8')).toBe('g1/d1 0\n');
  }, 120_000);

  it('restores 20 directories of 260 subdirectories each: more entries than the walk loads ahead, the rest read when it gets there', async () => {
    const source = join(dir, 'wide');
    for (let d = 0; d < 20; d++) {
      for (let e = 0; e < 260; e++) {
        await mkdir(join(source, `d${d}`, `e${e}`), { recursive: true });
        if (e % 2 === 0) await writeFile(join(source, `d${d}`, `e${e}`, 'f'), `${d}/${e}\n`);
      }
    }
    const { snapshotId } = await backup(repo, { source, hostname: 'dirs' });
    const target = join(dir, 'wide-target');
    const summary = await restore(repo, { snapshot: snapshotId, target });
    expect(summary.errors).toEqual([]);
    expect([summary.files, summary.dirs]).toEqual([20 * 130, 20 * 261 + source.split('/').length - 1]);
    expect(await listing(join(target, source))).toEqual(await listing(source));
  }, 120_000);
});
