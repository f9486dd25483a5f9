import { Readable } from 'node:stream';
import { pack as tarPack } from 'tar-stream';
import { parseGoTime } from '../format/ids.ts';
import { posixPermissionsFromGo, type TreeNode } from '../format/tree.ts';
import type { Repository } from '../repository.ts';
import { loadBlobsFrom, type BlobSource } from './blob-ports.ts';
import { assertSafeName, assertSafeTree, resolveTreePath } from './restore.ts';

type Headers = Parameters<ReturnType<typeof tarPack>['entry']>[0];

function header(node: TreeNode, name: string): Headers {
  return {
    name,
    mode: node.mode !== undefined ? posixPermissionsFromGo(node.mode) : 0o644,
    uid: node.uid,
    gid: node.gid,
    ...(node.user ? { uname: node.user } : {}),
    ...(node.group ? { gname: node.group } : {}),
    mtime: node.mtime ? new Date(Number(parseGoTime(node.mtime) / 1_000_000n)) : new Date(0),
  };
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
  options: { /** Also write a `./` entry carrying the directory's own metadata. */ rootEntry?: boolean } = {},
): Promise<Readable> {
  const { tree, node } = await resolveTreePath(repo, rootTree, path);
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
        const key = (n.links ?? 1) > 1 && n.inode ? `${n.device_id ?? 0}:${n.inode}` : undefined;
        const first = key ? links.get(key) : undefined;
        if (first) {
          await entry({ ...h, type: 'link', linkname: first });
          return;
        }
        const size = n.size ?? 0;
        await new Promise<void>((resolve, reject) => {
          const stream = archive.entry({ ...h, type: 'file', size }, (error) =>
            error ? reject(error) : resolve(),
          );
          void (async () => {
            try {
              // Leaving the loop early returns the blob reader, which gives back its share of
              // the connection's reply budget: a reader gone (client closed) must not keep it.
              for await (const data of loadBlobsFrom(repo, 'data', n.content ?? [])) {
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
        if (key) links.set(key, name);
        return;
      }
      default:
        return; // devices and sockets are not archived
    }
  };
  const writeTree = async (treeId: string, prefix: string): Promise<void> => {
    const children = await repo.loadTree(treeId);
    assertSafeTree(children, treeId);
    for (const child of children) await writeNode(child, `${prefix}${child.name}`);
  };

  void (async () => {
    try {
      if (node && node.type !== 'dir') await writeNode(node, node.name);
      else {
        if (options.rootEntry && node) await entry({ ...header(node, './'), type: 'directory' });
        await writeTree(tree, '');
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
