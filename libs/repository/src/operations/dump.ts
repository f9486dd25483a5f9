import { Readable } from 'node:stream';
import { pack as tarPack } from 'tar-stream';
import { parseGoTime } from '../format/ids.ts';
import { posixPermissionsFromGo, type TreeNode } from '../format/tree.ts';
import type { Repository } from '../repository.ts';
import { loadBlobsFrom, type BlobSource } from './blob-ports.ts';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { assertSafeName, assertSafeTree, childNode, namesBelow, resolveTreePath } from './restore.ts';

type Headers = Parameters<ReturnType<typeof tarPack>['entry']>[0];

/** A PAX time (`seconds.nanoseconds`), which keeps what the tar header's whole seconds lose. */
function paxTime(goTime: string): string | undefined {
  const ns = parseGoTime(goTime);
  if (ns < 0n) return undefined; // before 1970: the header's seconds say it
  return `${ns / 1_000_000_000n}.${String(ns % 1_000_000_000n).padStart(9, '0')}`;
}

function header(node: TreeNode, name: string): Headers {
  const mtime = node.mtime ? paxTime(node.mtime) : undefined;
  const atime = node.atime ? paxTime(node.atime) : undefined;
  return {
    // Exact times for a reader that keeps them (Go's archive/tar, so the Docker Engine's import).
    ...(mtime || atime ? { pax: { ...(mtime ? { mtime } : {}), ...(atime ? { atime } : {}) } } : {}),
    name,
    mode: node.mode !== undefined ? posixPermissionsFromGo(node.mode) : 0o644,
    uid: node.uid,
    gid: node.gid,
    ...(node.user ? { uname: node.user } : {}),
    ...(node.group ? { gname: node.group } : {}),
    mtime: node.mtime ? new Date(Number(parseGoTime(node.mtime) / 1_000_000n)) : new Date(0),
  };
}

/** Small files written from one stream of blobs: at most this many … */
const SMALL_FILES_AT_ONCE = 128;
/** … of at most this many bytes each, and this many together. */
const SMALL_FILE_BYTES = 256 * 1024;
const SMALL_FILES_BYTES = 4 * 1024 * 1024;

/** The key of a file's inode when another name may share it (a hard link), else undefined. */
function linkKey(n: TreeNode): string | undefined {
  return (n.links ?? 1) > 1 && n.inode ? `${n.device_id ?? 0}:${n.inode}` : undefined;
}

/** The run of small files (no hard links) among `nodes` from `start` on. */
function smallFilesFrom(nodes: readonly TreeNode[], start: number): TreeNode[] {
  const run: TreeNode[] = [];
  let bytes = 0;
  for (let i = start; i < nodes.length && run.length < SMALL_FILES_AT_ONCE; i++) {
    const n = nodes[i]!;
    const size = n.size ?? 0;
    if (n.type !== 'file' || linkKey(n) || size > SMALL_FILE_BYTES || bytes + size > SMALL_FILES_BYTES) break;
    run.push(n);
    bytes += size;
  }
  return run;
}

/** The next `count` blobs of a shared stream (which ends early only if the repository is damaged). */
async function* take(blobs: AsyncIterator<Buffer>, count: number): AsyncGenerator<Buffer, void, undefined> {
  for (let i = 0; i < count; i++) {
    const next = await blobs.next();
    if (next.done) throw new Error('the blob stream ended before the file did');
    yield next.value;
  }
}

/**
 * Streams a snapshot sub-tree as a tar archive (like `restic dump`), names relative to `path`.
 * Hardlinked files are written once and linked after; names are checked as in restore.
 */
export async function dumpTar(repo: Repository, snapshotRef: string, path = '/'): Promise<Readable> {
  const { snapshot } = await repo.findSnapshot(snapshotRef);
  await repo.loadIndex();
  return dumpTree(repo, snapshot.tree, path);
}

/** Streams a tree (or a path in it) from any blob source as a tar archive; see {@link dumpTar}. */
export async function dumpTree(
  repo: BlobSource,
  rootTree: string,
  path = '/',
  options: {
    /** Also write a `./` entry carrying the directory's own metadata (when `path` is `root`). */
    rootEntry?: boolean;
    /**
     * The snapshot directory the archive's root stands for (default `path`): with one above
     * `path`, names keep the path's place below it and the directories between are written.
     */
    root?: string;
    /** Directory names every entry is put in; written first as plain directories (mode 0755). */
    under?: readonly string[];
  } = {},
): Promise<Readable> {
  const root = options.root ?? path;
  const names = namesBelow(root, path);
  const { tree, node } = await resolveTreePath(repo, rootTree, root);
  const under = options.under ?? [];
  for (const name of under) assertSafeName(name);
  const prefix = under.map((name) => `${name}/`).join('');
  const archive = tarPack();
  const links = new Map<string, string>();
  let aborted = false;
  /** Resolves on `drain`, or when the entry or the archive closes (no drain comes then). */
  const drained = (stream: NodeJS.EventEmitter) =>
    new Promise<void>((resolve) => {
      const done = () => {
        stream.off('drain', done);
        stream.off('close', done);
        archive.off('close', done);
        resolve();
      };
      stream.once('drain', done);
      stream.once('close', done);
      archive.once('close', done);
      if (aborted) done();
    });

  const entry = (h: Headers, body?: Buffer) =>
    new Promise<void>((resolve, reject) => {
      const done = (error?: Error | null) => (error ? reject(error) : resolve());
      if (body) archive.entry(h, body, done);
      else archive.entry(h, done);
    });

  const writeNode = async (n: TreeNode, name: string): Promise<void> => {
    assertSafeName(n.name);
    const h = header(n, name);
    switch (n.type) {
      case 'dir':
        await entry({ ...h, name: `${name}/`, type: 'directory' });
        if (n.subtree) await writeTree(n.subtree, `${name}/`);
        return;
      case 'symlink':
        await entry({ ...h, type: 'symlink', linkname: n.linktarget ?? '' });
        return;
      case 'fifo':
        await entry({ ...h, type: 'fifo' });
        return;
      case 'file': {
        const key = linkKey(n);
        const first = key ? links.get(key) : undefined;
        if (first) {
          await entry({ ...h, type: 'link', linkname: first });
          return;
        }
        await writeFile(n, name, loadBlobsFrom(repo, 'data', n.content ?? [], n.size));
        if (key) links.set(key, name);
        return;
      }
      default:
        return; // devices and sockets are not archived
    }
  };
  /** A file's entry, its content from `blobs` (left early, the reader gives back its share of the reply budget). */
  const writeFile = (n: TreeNode, name: string, blobs: AsyncIterable<Buffer>): Promise<void> =>
    new Promise<void>((resolve, reject) => {
      const stream = archive.entry({ ...header(n, name), type: 'file', size: n.size ?? 0 }, (error) =>
        error ? reject(error) : resolve(),
      );
      void (async () => {
        try {
          for await (const data of blobs) {
            if (!stream.write(data)) await drained(stream);
            if (aborted) throw new DumpAbortedError();
          }
          stream.end(Buffer.alloc(0));
        } catch (error) {
          stream.destroy(error as Error);
          reject(error as Error);
        }
      })();
    });

  /** Neighbouring small files from one stream of their blobs: one request for many, from a gateway. */
  const writeSmallFiles = async (files: readonly TreeNode[], prefix: string): Promise<void> => {
    const blobs = loadBlobsFrom(
      repo,
      'data',
      files.flatMap((f) => f.content ?? []),
      files.reduce((bytes, f) => bytes + (f.size ?? 0), 0),
    )[Symbol.asyncIterator]();
    try {
      for (const file of files) {
        assertSafeName(file.name);
        await writeFile(file, `${prefix}${file.name}`, take(blobs, file.content?.length ?? 0));
      }
    } finally {
      await blobs.return?.();
    }
  };

  const writeTree = async (treeId: string, prefix: string): Promise<void> => {
    const children = await repo.loadTree(treeId);
    assertSafeTree(children, treeId);
    for (let i = 0; i < children.length;) {
      const run = smallFilesFrom(children, i);
      if (run.length > 1) await writeSmallFiles(run, prefix);
      else await writeNode(children[i]!, `${prefix}${children[i]!.name}`);
      i += Math.max(1, run.length);
    }
  };

  const plainDirectory = (name: string): Headers => ({
    name,
    type: 'directory',
    mode: 0o755,
    uid: process.getuid?.() ?? 0,
    gid: process.getgid?.() ?? 0,
    mtime: new Date(),
  });

  void (async () => {
    try {
      const rootEntry = Boolean(options.rootEntry && node && names.length === 0 && node.type === 'dir');
      for (let i = 0; i < under.length; i++) {
        if (rootEntry && i === under.length - 1) break; // the root entry is that directory
        await entry(plainDirectory(`${under.slice(0, i + 1).join('/')}/`));
      }
      if (names.length === 0) {
        if (node && node.type !== 'dir') await writeNode(node, `${prefix}${node.name}`);
        else {
          if (rootEntry) await entry({ ...header(node!, prefix || './'), type: 'directory' });
          await writeTree(tree, prefix);
        }
      } else {
        if (node && node.type !== 'dir')
          throw new RepositoryError(RepositoryErrorCode.FileNotFound, `${path} is not in the snapshot`);
        let at = tree;
        let dir = prefix;
        for (const [i, name] of names.entries()) {
          const child = await childNode(repo, at, name, path);
          if (i === names.length - 1) {
            await writeNode(child, `${dir}${child.name}`);
            break;
          }
          if (child.type !== 'dir' || !child.subtree) {
            throw new RepositoryError(RepositoryErrorCode.FileNotFound, `${path} is not in the snapshot`);
          }
          dir = `${dir}${child.name}/`;
          await entry({ ...header(child, dir), type: 'directory' });
          at = child.subtree;
        }
      }
      archive.finalize();
    } catch (error) {
      if (!aborted) archive.destroy(error as Error);
    }
  })();
  const out = Readable.from(archive);
  // The reader went away (an HTTP client closed the download): stop reading blobs at once.
  const abort = () => {
    if (aborted) return;
    aborted = true;
    archive.destroy();
  };
  out.once('close', abort);
  archive.once('close', () => (aborted = true));
  return out;
}

/** The tar's reader closed before the end: the dump stops (not a failure of the repository). */
class DumpAbortedError extends Error {
  override name = 'DumpAbortedError';
  constructor() {
    super('the tar stream was closed by its reader');
  }
}
