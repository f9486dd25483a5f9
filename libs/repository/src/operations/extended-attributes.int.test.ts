import { spawn } from 'node:child_process';
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { pack as tarPack } from 'tar-stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LocalBackend } from '../backend/local-backend.ts';
import { formatChunkerPolynomial, randomIrreduciblePolynomial } from '../chunker/index.ts';
import type { TreeNode } from '../format/tree.ts';
import { Repository } from '../repository.ts';
import { readXattrs, writeXattrs, type XattrMap } from '../test-support/extended-attributes.ts';
import { restic, TEST_PASSWORD } from '../test-support/restic.ts';
import { backup } from './backup.ts';
import { repositorySink } from './blob-ports.ts';
import { listSnapshot } from './ls.ts';
import { restore, restoreTree } from './restore.ts';
import { snapshotTar } from './snapshot-tar.ts';

const hex = (text: string) => Buffer.from(text).toString('hex');
const BINARY = Buffer.from(Array.from({ length: 256 }, (_, i) => i)).toString('hex');

/** Entries of the fixture, relative to its root ('' is the root itself). */
const ENTRIES = ['', 'dir', 'dir/sub', 'dir/file.bin', 'readonly.txt', 'plain', 'link'];

/**
 * Files and directories with user.* attributes (binary, empty, with a NUL, text), a read-only file
 * with one, a file without, and a symlink (Linux refuses user.* attributes on symlinks).
 */
function buildXattrTree(root: string): void {
  mkdirSync(join(root, 'dir/sub'), { recursive: true });
  writeFileSync(join(root, 'dir/file.bin'), 'content\n');
  writeFileSync(join(root, 'readonly.txt'), 'read only\n');
  writeFileSync(join(root, 'plain'), 'no attributes\n');
  symlinkSync('dir/file.bin', join(root, 'link'));
  writeXattrs({
    [root]: { 'user.root': hex('the root') },
    [join(root, 'dir')]: { 'user.dir': hex('a directory'), 'user.empty': '' },
    [join(root, 'dir/sub')]: { 'user.deep': '00ff' },
    [join(root, 'dir/file.bin')]: {
      'user.binary': BINARY,
      'user.empty': '',
      'user.nul': hex('a\0b'),
      'user.text': hex('hello ✓'),
    },
    [join(root, 'readonly.txt')]: { 'user.ro': hex('kept') },
  });
  chmodSync(join(root, 'readonly.txt'), 0o444);
}

/** The attributes of each fixture entry under `root`, by relative path. */
function attributesUnder(root: string): Record<string, XattrMap> {
  const read = readXattrs(ENTRIES.map((entry) => join(root, entry)));
  return Object.fromEntries(ENTRIES.map((entry) => [entry, read[join(root, entry)]!]));
}

/** What a tree node should record for an entry: restic's form, in the file system's order. */
function recorded(map: XattrMap): TreeNode['extended_attributes'] {
  const entries = Object.entries(map);
  if (entries.length === 0) return undefined;
  return entries.map(([name, value]) => ({ name, value: Buffer.from(value, 'hex').toString('base64') }));
}

/** The nodes of the fixture's entries in a snapshot, by relative path. */
async function nodesOf(
  repo: Repository,
  snapshot: string,
  source: string,
): Promise<Record<string, TreeNode>> {
  const nodes: Record<string, TreeNode> = {};
  for await (const { path, node } of listSnapshot(repo, snapshot, '/')) {
    if (path === source) nodes[''] = node;
    else if (path.startsWith(`${source}/`)) nodes[path.slice(source.length + 1)] = node;
  }
  return nodes;
}

/** These need the addon; without it (VOLBACK_NATIVE=off) a backup records none, as xattr-native.int.test.ts checks. */
const withAddon = describe.skipIf(process.env['VOLBACK_NATIVE'] === 'off');

let dir: string;
let source: string;
let expected: Record<string, XattrMap>;
let repo: Repository;

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), 'volback-xattr-interop-'));
  source = join(dir, 'source');
  mkdirSync(source);
  buildXattrTree(source);
  expected = attributesUnder(source);
  repo = await Repository.init(new LocalBackend(join(dir, 'repo')), TEST_PASSWORD, {
    chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
  });
});

afterAll(async () => {
  await repo?.close();
  await repo?.backend.close();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

withAddon('extended attributes, with the real restic', () => {
  it('the fixture has what the tests expect', () => {
    expect(expected['dir/file.bin']).toMatchObject({ 'user.binary': BINARY, 'user.empty': '' });
    expect(expected['plain']).toEqual({});
    expect(expected['link']).toEqual({});
  });

  it('volback records them as restic does; restic check passes and restic restore gives them back', async () => {
    const summary = await backup(repo, { source });
    expect(summary.errors).toEqual([]);
    expect(summary.warnings).toEqual([]);
    const nodes = await nodesOf(repo, summary.snapshotId, source);
    for (const entry of ENTRIES)
      expect(nodes[entry]?.extended_attributes, entry).toEqual(recorded(expected[entry]!));

    await restic(repo.backend.location, ['check', '--read-data']);
    const target = join(dir, 'restic-restored');
    await restic(repo.backend.location, ['restore', summary.snapshotId, '--target', target]);
    expect(attributesUnder(join(target, source))).toEqual(expected);
  });

  it('volback restores its own snapshot with them', async () => {
    const target = join(dir, 'volback-restored');
    const result = await restore(repo, { snapshot: 'latest', target });
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
    expect(attributesUnder(join(target, source))).toEqual(expected);
  });

  it('volback restores what restic recorded, and both record the same', async () => {
    const resticRepo = join(dir, 'restic-repo');
    await restic(resticRepo, ['init', '--repository-version', '2']);
    await restic(resticRepo, ['backup', source]);
    const theirs = await Repository.open(new LocalBackend(resticRepo), TEST_PASSWORD);
    try {
      const nodes = await nodesOf(theirs, 'latest', source);
      for (const entry of ENTRIES) {
        // restic writes an empty value as "" (a Go []byte that is empty, not nil).
        expect(nodes[entry]?.extended_attributes ?? undefined, entry).toEqual(recorded(expected[entry]!));
      }
      const target = join(dir, 'from-restic');
      const result = await restore(theirs, { snapshot: 'latest', target });
      expect(result.errors).toEqual([]);
      expect(result.warnings).toEqual([]);
      expect(attributesUnder(join(target, source))).toEqual(expected);
    } finally {
      await theirs.close();
      await theirs.backend.close();
    }
  });

  it('a file unchanged since the parent carries the attributes it has now', async () => {
    const src = join(dir, 'changing');
    mkdirSync(src);
    writeFileSync(join(src, 'a'), 'a\n');
    writeFileSync(join(src, 'b'), 'b\n');
    const first = await backup(repo, { source: src });
    expect(first.filesNew).toBe(2);
    // A new attribute changes ctime: restic's comparison reads the file again.
    writeXattrs({ [join(src, 'a')]: { 'user.added': hex('later') } });
    const second = await backup(repo, { source: src });
    expect(second.parentSnapshotId).toBe(first.snapshotId);
    expect([second.filesChanged, second.filesUnmodified]).toEqual([1, 1]);
    // Nothing changed: both files reuse their content and still carry today's attributes.
    const third = await backup(repo, { source: src });
    expect(third.filesUnmodified).toBe(2);
    for (const snapshot of [second.snapshotId, third.snapshotId]) {
      const nodes = await nodesOf(repo, snapshot, src);
      expect(nodes['a']?.extended_attributes).toEqual([{ name: 'user.added', value: 'bGF0ZXI=' }]);
      expect(nodes['b']?.extended_attributes).toBeUndefined();
    }
  });
});

withAddon('extended attributes in archives and refused on restore', () => {
  it('records SCHILY.xattr records of a GNU tar --xattrs archive; a value that is not UTF-8 is a warning', async () => {
    const archive = spawn(
      'tar',
      ['--format=pax', '--xattrs', '--xattrs-include=user.*', '-C', source, '-cf', '-', '.'],
      { stdio: ['ignore', 'pipe', 'inherit'] },
    ).stdout;
    const warned: string[] = [];
    const walked = await snapshotTar(repositorySink(repo), archive, {
      onWarning: (path, error) => warned.push(`${path}: ${error.message}`),
    });
    expect(walked.summary.errors).toEqual([]);
    // tar-stream decodes PAX records as UTF-8: values with bytes 0x80-0xff cannot arrive intact.
    expect(warned.sort()).toEqual([
      expect.stringMatching(
        /^dir\/file\.bin: extended attribute user\.binary not recorded: its value is not UTF-8/,
      ),
      expect.stringMatching(/^dir\/sub: extended attribute user\.deep not recorded/),
    ]);
    expect(walked.summary.warnings).toHaveLength(2);
    // The archive's ./ entry carries the root's.
    expect(walked.root.extended_attributes).toEqual(recorded(expected['']!));
    await repo.flush();

    const target = join(dir, 'from-archive');
    const result = await restoreTree(repo, { tree: walked.tree, target });
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([]);
    const utf8Only = structuredClone(expected);
    delete utf8Only['dir/file.bin']!['user.binary'];
    delete utf8Only['dir/sub']!['user.deep'];
    utf8Only[''] = {}; // restoreTree writes into the target, leaving the root's metadata to its caller
    expect(attributesUnder(target)).toEqual(utf8Only);
  });

  it('attributes the target refuses are warnings: the restore goes on and nothing outside is touched', async () => {
    const outside = join(dir, 'outside');
    mkdirSync(outside);
    writeFileSync(join(outside, 'victim'), 'not to be touched\n');
    const archive = tarPack();
    archive.entry({ name: './', type: 'directory', mode: 0o755 });
    archive.entry(
      {
        name: './file',
        mode: 0o644,
        pax: { 'SCHILY.xattr.user.ok': 'yes', 'SCHILY.xattr.nonsense.ns': 'x' },
      },
      'data\n',
    );
    // A symlink leading out of the target, with an attribute: set (refused) on the link, never its target.
    archive.entry({
      name: './escape',
      type: 'symlink',
      linkname: join(outside, 'victim'),
      pax: { 'SCHILY.xattr.user.follow': 'no' },
    });
    archive.entry(
      { name: './after', mode: 0o644, pax: { 'SCHILY.xattr.user.after': 'restored' } },
      'after\n',
    );
    archive.finalize();
    const walked = await snapshotTar(repositorySink(repo), Readable.from(archive));
    expect(walked.summary.errors).toEqual([]);
    expect(walked.summary.warnings).toEqual([]);
    await repo.flush();

    const target = join(dir, 'refusing');
    const result = await restoreTree(repo, { tree: walked.tree, target });
    expect(result.errors).toEqual([]);
    expect(result.warnings).toEqual([
      {
        path: join(target, 'escape'),
        reason: expect.stringMatching(/^extended attributes not restored: user\.follow \(EPERM: .*lsetxattr/),
      },
      {
        path: join(target, 'file'),
        reason: expect.stringMatching(
          /^extended attributes not restored: nonsense\.ns \(ENOTSUP: .*lsetxattr/,
        ),
      },
    ]);
    expect(readdirSync(target).sort()).toEqual(['after', 'escape', 'file']);
    const read = readXattrs([join(target, 'file'), join(target, 'after'), join(outside, 'victim')]);
    expect(read).toEqual({
      [join(target, 'file')]: { 'user.ok': hex('yes') },
      [join(target, 'after')]: { 'user.after': hex('restored') },
      [join(outside, 'victim')]: {},
    });
  });
});
