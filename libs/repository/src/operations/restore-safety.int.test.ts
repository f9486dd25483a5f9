import { randomBytes } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { extract } from 'tar-stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { LocalBackend } from '../backend/local-backend.ts';
import { formatChunkerPolynomial, randomIrreduciblePolynomial } from '../chunker/index.ts';
import { RepositoryErrorCode } from '../errors.ts';
import { GoMode, type TreeNode } from '../format/tree.ts';
import { Repository } from '../repository.ts';
import { dumpTar } from './dump.ts';
import { restore } from './restore.ts';
import { errorOf } from '../test-support/errors.ts';

const MTIME = '2024-01-02T03:04:05Z';

function dirNode(name: string, subtree: string): TreeNode {
  return {
    name,
    type: 'dir',
    mode: GoMode.Dir + 0o755,
    mtime: MTIME,
    uid: 0,
    gid: 0,
    subtree,
    content: null,
  };
}

function fileNode(name: string, content: string[], size: number): TreeNode {
  return { name, type: 'file', mode: 0o644, mtime: MTIME, uid: 0, gid: 0, size, content };
}

function symlinkNode(name: string, target: string): TreeNode {
  return {
    name,
    type: 'symlink',
    mode: GoMode.Symlink + 0o777,
    mtime: MTIME,
    uid: 0,
    gid: 0,
    linktarget: target,
    content: null,
  };
}

/** Every entry below `dir` (relative paths), to prove a directory stayed empty or holds only what it should. */
async function entriesBelow(dir: string): Promise<string[]> {
  return (await readdir(dir, { recursive: true })).sort();
}

/** Reads a tar stream to its end; returns the entry names (rejects with the stream's error). */
async function tarNames(stream: Readable): Promise<string[]> {
  const names: string[] = [];
  const reader = extract();
  const done = new Promise<void>((resolve, reject) => {
    reader.on('entry', (header, body, next) => {
      names.push(header.name);
      body.on('end', next);
      body.resume();
    });
    reader.on('finish', resolve);
    reader.on('error', reject);
    stream.on('error', reject);
  });
  stream.pipe(reader);
  await done;
  return names;
}

describe('restore and dump never write outside their target', () => {
  let dir: string;
  let repo: Repository;
  /** A directory beside the targets that nothing may ever touch. */
  let outside: string;
  /** Where each test restores; the outside directory is its sibling. */
  let target: string;
  let payload: { id: string; size: number };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'volback-restore-safety-'));
    repo = await Repository.init(new LocalBackend(join(dir, 'repo')), 'safety', {
      chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
    });
    const bytes = Buffer.from('written by a malicious tree\n');
    payload = { id: (await repo.saveBlob('data', bytes)).id, size: bytes.length };
    await repo.flush();
  });

  afterAll(async () => {
    await repo?.backend.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  beforeEach(async () => {
    const case_ = randomBytes(4).toString('hex');
    outside = join(dir, `outside-${case_}`);
    target = join(dir, `restore-${case_}`, 'target');
    await mkdir(outside, { recursive: true });
    await mkdir(target, { recursive: true });
  });

  /** Saves a snapshot whose root tree holds `nodes` (trees below are saved by the caller). */
  async function snapshotOf(nodes: TreeNode[]): Promise<string> {
    const tree = await repo.saveTree(nodes);
    await repo.flush();
    return repo.saveSnapshot({ time: new Date().toISOString(), tree, paths: ['/evil'], hostname: 'evil' });
  }

  async function payloadFile(name: string): Promise<TreeNode> {
    return fileNode(name, [payload.id], payload.size);
  }

  async function treeOf(nodes: TreeNode[]): Promise<string> {
    return repo.saveTree(nodes);
  }

  async function expectNothingOutside(): Promise<void> {
    expect(await entriesBelow(outside)).toEqual([]);
    // The target's parent holds only the target.
    expect(await readdir(join(target, '..'))).toEqual(['target']);
  }

  const UNSAFE = ['..', '.', 'a/b', '../../escape', '', 'nul\0byte'];

  for (const name of UNSAFE) {
    for (const shape of ['file', 'dir', 'nested dir'] as const) {
      it(`refuses a ${shape} named ${JSON.stringify(name)} (restore and dump)`, async () => {
        let root: TreeNode[];
        if (shape === 'file') root = [await payloadFile(name)];
        else {
          const evil = dirNode(name, await treeOf([await payloadFile('pwned')]));
          root = shape === 'dir' ? [evil] : [dirNode('sub', await treeOf([evil]))];
        }
        const snapshot = await snapshotOf(root);
        const error = await errorOf(restore(repo, { snapshot, target }));
        expect(error.code).toBe(RepositoryErrorCode.UnsafePath);
        expect(error.message).toContain(JSON.stringify(name));
        await expectNothingOutside();
        expect(await entriesBelow(target)).toEqual(shape === 'nested dir' ? ['sub'] : []);

        const dumped = await errorOf(tarNames(await dumpTar(repo, snapshot)));
        expect(dumped.code).toBe(RepositoryErrorCode.UnsafePath);
      });
    }
  }

  it('refuses absolute names, /etc/x and one pointing into the outside directory', async () => {
    for (const name of ['/etc/x', join(outside, 'abs')]) {
      const snapshot = await snapshotOf([dirNode(name, await treeOf([await payloadFile('pwned')]))]);
      const error = await errorOf(restore(repo, { snapshot, target }));
      expect(error.code).toBe(RepositoryErrorCode.UnsafePath);
      expect((await errorOf(tarNames(await dumpTar(repo, snapshot)))).code).toBe(
        RepositoryErrorCode.UnsafePath,
      );
      await expectNothingOutside();
      await expect(lstat('/etc/x/pwned')).rejects.toThrow();
    }
  });

  it('refuses a symlink to the outside followed by a directory of the same name', async () => {
    const inside = await treeOf([await payloadFile('pwned')]);
    // encodeTree sorts stably by name: the symlink stays first, then the directory.
    const linkFirst = await snapshotOf([symlinkNode('escape', outside), dirNode('escape', inside)]);
    const dirFirst = await snapshotOf([dirNode('escape', inside), symlinkNode('escape', outside)]);
    for (const snapshot of [linkFirst, dirFirst]) {
      const error = await errorOf(restore(repo, { snapshot, target }));
      expect(error.code).toBe(RepositoryErrorCode.UnsafePath);
      expect(error.message).toMatch(/"escape" twice/);
      await expectNothingOutside();
      expect(await entriesBelow(target)).toEqual([]);
      const dumped = await errorOf(tarNames(await dumpTar(repo, snapshot)));
      expect(dumped.code).toBe(RepositoryErrorCode.UnsafePath);
    }
  });

  it('refuses two files of one name (the second could land through a link made by the first)', async () => {
    const snapshot = await snapshotOf([await payloadFile('twice'), await payloadFile('twice')]);
    expect((await errorOf(restore(repo, { snapshot, target }))).code).toBe(RepositoryErrorCode.UnsafePath);
    expect((await errorOf(tarNames(await dumpTar(repo, snapshot)))).code).toBe(
      RepositoryErrorCode.UnsafePath,
    );
    await expectNothingOutside();
  });

  it('restores a lone symlink pointing outside as a link, and follows it for nothing', async () => {
    const snapshot = await snapshotOf([
      symlinkNode('escape', outside),
      symlinkNode('up', '../../..'),
      dirNode('data', await treeOf([await payloadFile('kept')])),
    ]);
    const summary = await restore(repo, { snapshot, target });
    expect(summary.errors).toEqual([]);
    expect((await lstat(join(target, 'escape'))).isSymbolicLink()).toBe(true);
    expect(await readlink(join(target, 'escape'))).toBe(outside);
    expect(await readlink(join(target, 'up'))).toBe('../../..');
    expect(await readFile(join(target, 'data/kept'), 'utf8')).toBe('written by a malicious tree\n');
    await expectNothingOutside();

    const names = await tarNames(await dumpTar(repo, snapshot));
    expect(names.sort()).toEqual(['data/', 'data/kept', 'escape', 'up']);
  });

  it('replaces a symlink already in the target instead of writing through it', async () => {
    // The target already holds links to the outside where the snapshot has a directory and a file.
    const victim = join(outside, 'victim.txt');
    await writeFile(victim, 'original\n');
    await symlink(outside, join(target, 'escape'));
    await symlink(victim, join(target, 'config'));
    await symlink(outside, join(target, 'as-link'));
    const snapshot = await snapshotOf([
      dirNode('escape', await treeOf([await payloadFile('pwned')])),
      await payloadFile('config'),
      symlinkNode('as-link', 'somewhere/else'),
    ]);
    const summary = await restore(repo, { snapshot, target });
    expect(summary.errors).toEqual([]);
    expect((await lstat(join(target, 'escape'))).isDirectory()).toBe(true);
    expect(await readFile(join(target, 'escape/pwned'), 'utf8')).toBe('written by a malicious tree\n');
    expect((await lstat(join(target, 'config'))).isFile()).toBe(true);
    expect(await readFile(join(target, 'config'), 'utf8')).toBe('written by a malicious tree\n');
    expect(await readlink(join(target, 'as-link'))).toBe('somewhere/else');
    expect(await readFile(victim, 'utf8')).toBe('original\n');
    expect(await entriesBelow(outside)).toEqual(['victim.txt']);
  });

  it('refuses a target that is itself a symlink', async () => {
    const link = join(target, '..', 'link-target');
    await symlink(outside, link);
    const snapshot = await snapshotOf([await payloadFile('pwned')]);
    expect((await errorOf(restore(repo, { snapshot, target: link }))).code).toBe(
      RepositoryErrorCode.UnsafePath,
    );
    expect(await entriesBelow(outside)).toEqual([]);
  });

  it('refuses unsafe names when restoring or dumping a sub-path', async () => {
    const snapshot = await snapshotOf([
      dirNode('sub', await treeOf([dirNode('..', await treeOf([await payloadFile('pwned')]))])),
    ]);
    expect((await errorOf(restore(repo, { snapshot, target, path: '/sub' }))).code).toBe(
      RepositoryErrorCode.UnsafePath,
    );
    expect((await errorOf(tarNames(await dumpTar(repo, snapshot, '/sub')))).code).toBe(
      RepositoryErrorCode.UnsafePath,
    );
    await expectNothingOutside();
  });
});
