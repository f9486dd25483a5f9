// Names and link targets as bytes: restic Go-quotes tree node names and keeps link targets that
// are not UTF-8 in linktarget_raw; volback must write and read both the same way.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  readlinkSync,
  renameSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  backup,
  formatChunkerPolynomial,
  listSnapshot,
  LocalBackend,
  randomIrreduciblePolynomial,
  Repository,
  decodeTree,
  RepositoryErrorCode,
  resolveTreePath,
  restore,
} from './index.ts';
import { assertSafeTree } from './operations/restore.ts';
import { entryType } from './test-support/fixture-tree.ts';
import { restic, TEST_PASSWORD } from './test-support/restic.ts';

const scratch = () => mkdtempSync(join(tmpdir(), 'volback-names-'));
const latin1 = (text: string) => Buffer.from(text, 'latin1');
const utf8 = (text: string) => Buffer.from(text, 'utf8');
const under = (dir: string | Buffer, name: Buffer) => Buffer.concat([Buffer.from(dir), utf8('/'), name]);

/** Names restic quotes, or that are not UTF-8 at all. */
const NAMES = [
  utf8('a\\b'),
  utf8('q"x'),
  utf8('tab\there'),
  utf8('new\nline'),
  utf8('nb\u00a0space'),
  utf8('emoji 😀'),
  latin1('f\x80\xff'),
];
const BAD_DIR = latin1('dir \xfe');
const BAD_TARGET = latin1('../t\x80\xffrget');

/** The bytes of the readable form restic (and volback) show for a target that is not UTF-8. */
const shownTarget = utf8('../t\ufffd\ufffdrget');

/** The same directory every test backs up (files, a directory, symlinks, a FIFO, all named in bytes). */
function buildSource(root: string): void {
  for (const [i, name] of NAMES.entries())
    writeFileSync(under(root, name), `content ${i} of ${name.toString('hex')}\n`);
  mkdirSync(under(root, BAD_DIR));
  writeFileSync(under(under(root, BAD_DIR), latin1('inner \x81')), 'nested\n');
  writeFileSync(under(under(root, BAD_DIR), utf8('plain.txt')), 'plain\n');
  symlinkSync(BAD_TARGET, under(root, utf8('link')));
  symlinkSync(utf8('a\\b'), under(root, latin1('link \xfa')));
  execFileSync('mkfifo', [join(root, 'fifo-tmp')]);
  renameSync(join(root, 'fifo-tmp'), under(root, latin1('fifo \xfb')));
  utimesSync(under(root, BAD_DIR), new Date('2012-03-04T05:06:07Z'), new Date('2012-03-04T05:06:07Z'));
}

interface Entry {
  type: string;
  mode: number;
  mtimeMs?: number;
  sha256?: string;
  /** Hex of the link target's bytes. */
  linktarget?: string;
}

/** A directory tree as comparable facts, keyed by the hex of each relative path's bytes. */
function byteManifest(root: string | Buffer): Record<string, Entry> {
  const out: Record<string, Entry> = {};
  const walk = (dir: Buffer, rel: Buffer) => {
    for (const name of readdirSync(dir, { encoding: 'buffer' }).sort(Buffer.compare)) {
      const path = under(dir, name);
      const key = rel.length ? under(rel, name) : name;
      const s = lstatSync(path);
      const type = entryType(s);
      const entry: Entry = { type, mode: s.mode & 0o7777 };
      if (type !== 'symlink') entry.mtimeMs = Math.floor(s.mtimeMs);
      if (type === 'file') entry.sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
      if (type === 'symlink') entry.linktarget = readlinkSync(path, { encoding: 'buffer' }).toString('hex');
      out[key.toString('hex')] = entry;
      if (type === 'dir') walk(path, key);
    }
  };
  walk(Buffer.from(root), Buffer.alloc(0));
  return out;
}

/** The manifest with the link target that is not UTF-8 as it is shown (what restic < 0.16 stores). */
function withShownTarget(manifest: Record<string, Entry>): Record<string, Entry> {
  return {
    ...manifest,
    [utf8('link').toString('hex')]: {
      ...manifest[utf8('link').toString('hex')]!,
      linktarget: shownTarget.toString('hex'),
    },
  };
}

let source: string;
/** restic stores link targets that are not UTF-8 as bytes (linktarget_raw) from 0.16 on. */
let resticKeepsRawTargets: boolean;
beforeAll(() => {
  source = scratch();
  buildSource(source);
  const [, major, minor] = /restic (\d+)\.(\d+)/.exec(
    execFileSync('restic', ['version'], { encoding: 'utf8' }),
  )!;
  resticKeepsRawTargets = Number(major) > 0 || Number(minor) >= 16;
});

async function initRepo(dir: string): Promise<Repository> {
  return Repository.init(new LocalBackend(dir), TEST_PASSWORD, {
    chunkerPolynomial: formatChunkerPolynomial(randomIrreduciblePolynomial()),
  });
}

describe('names restic quotes and names that are not UTF-8', () => {
  it('volback backs them up completely; restic checks, lists and restores the exact bytes', async () => {
    const dir = join(scratch(), 'repo');
    const repo = await initRepo(dir);
    const summary = await backup(repo, { source });
    expect(summary.errors).toEqual([]);
    expect(summary.filesNew).toBe(NAMES.length + 2);

    await restic(dir, ['check', '--read-data']);
    const listed = (await restic(dir, ['ls', '--json', '--recursive', 'latest', source]))
      .trim()
      .split('\n')
      .map((line) => JSON.parse(line) as { struct_type: string; name?: string })
      .filter((line) => line.struct_type === 'node')
      .map((node) => node.name);
    // restic's JSON shows each byte that is not UTF-8 as U+FFFD, like volback's readable names.
    expect(listed).toEqual(
      expect.arrayContaining([
        'a\\b',
        'q"x',
        'tab\there',
        'new\nline',
        'nb\u00a0space',
        'emoji 😀',
        'f\ufffd\ufffd',
        'dir \ufffd',
        'inner \ufffd',
        'link \ufffd',
        'fifo \ufffd',
      ]),
    );

    const target = scratch();
    await restic(dir, ['restore', summary.snapshotId, '--target', target]);
    const expected = byteManifest(source);
    expect(byteManifest(join(target, source))).toEqual(
      resticKeepsRawTargets ? expected : withShownTarget(expected),
    );
  });

  it('volback restores its own snapshot to the exact bytes, and lists readable names', async () => {
    const repo = await initRepo(join(scratch(), 'repo'));
    const { snapshotId } = await backup(repo, { source });
    const target = scratch();
    const result = await restore(repo, { snapshot: snapshotId, target });
    expect(result.errors).toEqual([]);
    expect(byteManifest(join(target, source))).toEqual(byteManifest(source));

    const names: string[] = [];
    for await (const { node } of listSnapshot(repo, snapshotId, source)) names.push(node.name);
    expect(names).toEqual(expect.arrayContaining(['f\ufffd\ufffd', 'dir \ufffd', 'inner \ufffd', 'q"x']));
  });

  it('volback restores what restic backed up, names as bytes', async () => {
    const dir = join(scratch(), 'repo');
    await restic(dir, ['init', '--repository-version', '2']);
    await restic(dir, ['backup', source]);
    const repo = await Repository.open(new LocalBackend(dir), TEST_PASSWORD);
    const target = scratch();
    const result = await restore(repo, { snapshot: 'latest', target });
    expect(result.errors).toEqual([]);
    const expected = byteManifest(source);
    expect(byteManifest(join(target, source))).toEqual(
      resticKeepsRawTargets ? expected : withShownTarget(expected),
    );
  });

  it('an unchanged second backup reads nothing and adds no data: the same tree', async () => {
    const dir = join(scratch(), 'repo');
    const repo = await initRepo(dir);
    const first = await backup(repo, { source });
    const second = await backup(repo, { source });
    expect(second.parentSnapshotId).toBe(first.snapshotId);
    expect(second.errors).toEqual([]);
    expect(second.filesUnmodified).toBe(NAMES.length + 2);
    expect(second.filesNew + second.filesChanged).toBe(0);
    expect(second.dirsChanged).toBe(0);
    expect(second.bytesRead).toBe(0);
    expect(second.bytesAdded).toBe(0);
    const treeOf = async (id: string) =>
      (await resolveTreePath(repo, (await repo.findSnapshot(id)).snapshot.tree, source)).tree;
    expect(await treeOf(second.snapshotId)).toBe(await treeOf(first.snapshotId));
    await restic(dir, ['check', '--read-data']);
  });

  it('checks names on their bytes before a restore: escapes smuggle no separator, duplicates are by bytes', () => {
    const tree = (...names: string[]) =>
      decodeTree(
        Buffer.from(JSON.stringify({ nodes: names.map((name) => ({ name, type: 'file', uid: 0, gid: 0 })) })),
        'crafted',
      );
    for (const name of ['a\\x2fb', '\\057etc', '\\x2e\\x2e', '\\x2e', 'nul\\x00', 'bad\\x80/x']) {
      expect(() => assertSafeTree(tree(name), 'crafted'), name).toThrowError(
        expect.objectContaining({ code: RepositoryErrorCode.UnsafePath }),
      );
    }
    expect(() => assertSafeTree(tree('f\\x80', 'f\\x80'), 'crafted')).toThrowError(/twice/);
    // Both show as "f\ufffd"; their bytes differ.
    expect(() => assertSafeTree(tree('f\\x80', 'f\\x81'), 'crafted')).not.toThrow();
  });
});
