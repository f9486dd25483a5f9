import { spawn } from 'node:child_process';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pack as tarPack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../backend/local-backend.ts';
import { formatChunkerPolynomial, randomIrreduciblePolynomial } from '../chunker/index.ts';
import { formatGoTime } from '../format/ids.ts';
import { Repository } from '../repository.ts';
import { buildFixtureTree, manifest } from '../test-support/fixture-tree.ts';
import { restic, TEST_PASSWORD } from '../test-support/restic.ts';
import { snapshotDirectory } from './backup.ts';
import { repositorySink, saveTree } from './blob-ports.ts';
import { restoreTree } from './restore.ts';
import { snapshotTar, tarPathComponents } from './snapshot-tar.ts';

/** GNU tar's pax archive of a directory's contents (entries `./…`), as the Engine's archive API sends. */
function tarOf(dir: string): Readable {
  const child = spawn('tar', ['--format=pax', '-C', dir, '-cf', '-', '.'], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return child.stdout;
}

describe('snapshotTar: a volume read from an archive stream', () => {
  let dir: string;
  let source: string;
  let repo: Repository;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-snapshot-tar-'));
    source = join(dir, 'source');
    await mkdir(source);
    buildFixtureTree(source);
    repo = await Repository.init(new LocalBackend(join(dir, 'repo')), TEST_PASSWORD, {
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
    });
  });

  afterAll(async () => {
    await repo?.close();
    await repo?.backend.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('restores to the same bytes and metadata as the directory, and restic agrees', async () => {
    const sink = repositorySink(repo);
    const walked = await snapshotTar(sink, tarOf(source));
    expect(walked.summary.errors).toEqual([]);
    await repo.flush();
    const snapshotId = await repo.saveSnapshot({
      time: formatGoTime(BigInt(Date.now()) * 1_000_000n),
      tree: walked.tree,
      paths: ['/volumes/fixture'],
      hostname: 'tar-test',
      username: 'root',
      program_version: 'volback',
    });

    const ours = join(dir, 'restored-ours');
    const restored = await restoreTree(repo, { tree: walked.tree, target: ours });
    expect(restored.errors).toEqual([]);
    const expected = manifest(source);
    expect(manifest(ours)).toEqual(expected);

    await restic(join(dir, 'repo'), ['check', '--read-data']);
    const theirs = join(dir, 'restored-restic');
    await restic(join(dir, 'repo'), ['restore', snapshotId, '--target', theirs]);
    expect(manifest(theirs)).toEqual(expected);
  });

  it('stores the same file content as reading the directory (same blobs, nothing added twice)', async () => {
    const sink = repositorySink(repo);
    const before = sink.bytesAdded;
    const walked = await snapshotDirectory(sink, { source });
    expect(walked.summary.errors).toEqual([]);
    // Every chunk of every file was stored by the archive backup before.
    expect(sink.bytesAdded - before).toBeLessThan(64 * 1024);
    await repo.flush();
  });

  it('refuses entries that climb out of the root, and keeps the rest', async () => {
    const archive = tarPack();
    archive.entry({ name: './', type: 'directory', mode: 0o755 });
    archive.entry({ name: './ok.txt', mode: 0o644 }, 'fine\n');
    archive.entry({ name: '../escape.txt', mode: 0o644 }, 'no\n');
    archive.entry({ name: './a/../../escape2.txt', mode: 0o644 }, 'no\n');
    archive.entry({ name: './hard', type: 'link', linkname: '../../etc/passwd' });
    archive.finalize();
    const errors: string[] = [];
    const walked = await snapshotTar(repositorySink(repo), Readable.from(archive), {
      onError: (path) => errors.push(path),
    });
    expect(errors).toEqual(['../escape.txt', './a/../../escape2.txt', 'hard']);
    await repo.flush();
    const target = join(dir, 'restored-unsafe');
    await restoreTree(repo, { tree: walked.tree, target });
    expect(Object.keys(manifest(target))).toEqual(['ok.txt']);
  });

  it('leaves out excluded entries by name and by path', async () => {
    const walked = await snapshotDirectory(repositorySink(repo), {
      source,
      excludes: ['*.log', '/app/config/nested'],
    });
    await repo.flush();
    const target = join(dir, 'restored-excludes');
    await restoreTree(repo, { tree: walked.tree, target });
    const names = Object.keys(manifest(target));
    expect(names).toContain('app/config/settings.json');
    expect(names.filter((n) => n.endsWith('.log') || n.startsWith('app/config/nested'))).toEqual([]);
  });

  it('splits archive names into safe components', () => {
    expect(tarPathComponents('./a/b/')).toEqual(['a', 'b']);
    expect(tarPathComponents('/abs/path')).toEqual(['abs', 'path']);
    expect(tarPathComponents('.')).toEqual([]);
    expect(() => tarPathComponents('a/../../b')).toThrow(/refusing/);
  });

  it('a tree written through saveTree is found by id', async () => {
    const sink = repositorySink(repo);
    const id = await saveTree(sink, []);
    await repo.flush();
    expect(await repo.loadTree(id)).toEqual([]);
  });
});
