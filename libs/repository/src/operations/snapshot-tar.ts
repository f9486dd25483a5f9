import type { Readable } from 'node:stream';
import { extract, type Header as Headers } from 'tar-stream';
import { chunkStream, parseChunkerPolynomial } from '../chunker/index.ts';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { formatGoTime, sha256Hex } from '../format/ids.ts';
import { goModeFromPosix, type TreeNode } from '../format/tree.ts';
import { saveTree, type BlobSink } from './blob-ports.ts';
import type { BackupProgress, WalkSummary } from './backup.ts';
import { emptyWalkSummary, isExcluded } from './backup.ts';
import type { ExtendedAttribute } from './extended-attributes.ts';

/** Options of {@link snapshotTar}. */
export interface SnapshotTarOptions {
  /** restic-style exclude patterns, matched against paths from the archive's root. */
  readonly excludes?: readonly string[];
  readonly onProgress?: (progress: BackupProgress) => void;
  /** Called for each entry that was refused (unsafe name, unknown type); the backup goes on. */
  readonly onError?: (path: string, error: Error) => void;
  /** Called for what an entry is kept without (an extended attribute that cannot be recorded intact). */
  readonly onWarning?: (path: string, error: Error) => void;
}

interface DirEntry {
  node: TreeNode;
  children: Map<string, DirEntry | TreeNode>;
}

const S_IFMT: Record<string, number> = {
  file: 0o100000,
  'contiguous-file': 0o100000,
  directory: 0o040000,
  symlink: 0o120000,
  fifo: 0o010000,
  'character-device': 0o020000,
  'block-device': 0o060000,
};

/** The nanosecond mtime of an entry: PAX `mtime` keeps sub-second precision, the header only seconds. */
function mtimeNs(header: Headers): bigint {
  const pax = (header.pax as Record<string, string> | null | undefined)?.['mtime'];
  const match = pax ? /^(\d+)(?:\.(\d{1,9}))?$/.exec(pax) : null;
  if (match) return BigInt(match[1]!) * 1_000_000_000n + BigInt((match[2] ?? '').padEnd(9, '0'));
  return BigInt(Math.floor((header.mtime ?? new Date(0)).getTime() / 1000)) * 1_000_000_000n;
}

/**
 * Splits an archive name into safe path components. `./` and empty components are dropped;
 * `..`, NUL and anything else that could leave the root is refused.
 */
export function tarPathComponents(name: string): string[] {
  const parts = name.split('/').filter((part) => part !== '' && part !== '.');
  for (const part of parts) {
    if (part === '..' || part.includes('\0')) {
      throw new RepositoryError(
        RepositoryErrorCode.UnsafePath,
        `refusing archive entry ${JSON.stringify(name)}`,
      );
    }
  }
  return parts;
}

/** A numeric PAX record (uid and gid of 2^21 and more live only there). */
function paxNumber(header: Headers, key: string): number | undefined {
  const raw = (header.pax as Record<string, string> | null | undefined)?.[key];
  return raw !== undefined && /^\d{1,10}$/.test(raw) ? Number(raw) : undefined;
}

const XATTR_RECORD = 'SCHILY.xattr.';

/**
 * Extended attributes from PAX `SCHILY.xattr.<name>` records (Go's archive/tar, hence the Docker
 * Engine, and GNU tar --xattrs write them). tar-stream decodes PAX records as UTF-8, so a value
 * that was not UTF-8 (a binary `security.capability`) arrives with U+FFFD in place of its bytes:
 * such an attribute is reported to `warn` and not recorded, rather than recorded wrong.
 */
function paxExtendedAttributes(
  header: Headers,
  warn: (error: Error) => void,
): ExtendedAttribute[] | undefined {
  const pax = header.pax as Record<string, string> | null | undefined;
  if (!pax) return undefined;
  const attributes: ExtendedAttribute[] = [];
  for (const [key, value] of Object.entries(pax)) {
    if (!key.startsWith(XATTR_RECORD)) continue;
    const name = key.slice(XATTR_RECORD.length);
    if (value.includes('\uFFFD')) {
      warn(
        new Error(
          `extended attribute ${name} not recorded: its value is not UTF-8, which tar-stream does not pass on intact`,
        ),
      );
      continue;
    }
    attributes.push({ name, value: Buffer.from(value, 'utf8').toString('base64') });
  }
  return attributes.length > 0 ? attributes : undefined;
}

function metadataNode(
  name: string,
  header: Headers,
  type: TreeNode['type'],
  inode: number,
  warn: (error: Error) => void,
): TreeNode {
  const mtime = formatGoTime(mtimeNs(header));
  const node: TreeNode = {
    name,
    type,
    mode: goModeFromPosix((S_IFMT[header.type ?? 'file'] ?? 0o100000) | ((header.mode ?? 0o644) & 0o7777)),
    mtime,
    atime: mtime,
    ctime: mtime,
    uid: paxNumber(header, 'uid') ?? header.uid ?? 0,
    gid: paxNumber(header, 'gid') ?? header.gid ?? 0,
    ...(header.uname ? { user: header.uname } : {}),
    ...(header.gname ? { group: header.gname } : {}),
    inode,
    device_id: 0,
    links: 1,
  };
  const attributes = paxExtendedAttributes(header, warn);
  if (attributes) node.extended_attributes = attributes;
  if (type === 'dev' || type === 'chardev') {
    const major = header.devmajor ?? 0;
    const minor = header.devminor ?? 0;
    // Linux's encoding of st_rdev, as restic records it.
    node.device =
      (minor & 0xff) | ((major & 0xfff) << 8) | ((minor & ~0xff) << 12) | ((major & ~0xfff) * 2 ** 32);
  }
  return node;
}

/**
 * Reads a tar stream (the Docker Engine's archive of a volume) into trees through a sink, as
 * {@link snapshotDirectory} does for a directory: file contents are chunked with the repository's
 * polynomial as they stream by, hardlinks share an inode number, directories the archive only
 * implies get default metadata. The archive's own `./` entry, when present, gives the root's
 * metadata. Entries that could leave the root are refused and reported; the rest is kept.
 */
export async function snapshotTar(
  sink: BlobSink,
  archive: Readable,
  options: SnapshotTarOptions = {},
): Promise<{ tree: string; root: TreeNode; summary: WalkSummary }> {
  const pol = parseChunkerPolynomial(sink.chunkerPolynomial);
  const summary: WalkSummary = emptyWalkSummary();
  let nextInode = 1;
  let files = 0;
  let dirs = 0;
  const implied = (name: string): DirEntry => ({
    node: {
      name,
      type: 'dir',
      mode: goModeFromPosix(0o040755),
      mtime: formatGoTime(0n),
      atime: formatGoTime(0n),
      ctime: formatGoTime(0n),
      uid: 0,
      gid: 0,
      inode: nextInode++,
      device_id: 0,
      links: 1,
    },
    children: new Map(),
  });
  const root = implied('/');
  /** File nodes by archive path, for hardlinks. */
  const byPath = new Map<string, TreeNode>();
  const progress = (path: string) =>
    options.onProgress?.({
      files,
      dirs,
      bytesRead: summary.bytesRead,
      bytesAdded: sink.bytesAdded,
      currentPath: path,
    });
  const fail = (path: string, error: Error) => {
    summary.errors.push({ path, reason: error.message });
    options.onError?.(path, error);
  };
  const warnFor = (path: string) => (error: Error) => {
    summary.warnings.push({ path, reason: error.message });
    options.onWarning?.(path, error);
  };

  const parentOf = (parts: readonly string[]): DirEntry => {
    let dir = root;
    for (const part of parts) {
      let child = dir.children.get(part);
      if (!child || !('children' in child)) {
        // A file replaced by a directory of the same name: the later entry wins, as tar extraction does.
        child = implied(part);
        dir.children.set(part, child);
      }
      dir = child;
    }
    return dir;
  };

  const reader = extract();
  const done = (async () => {
    for await (const entry of reader) {
      const header = entry.header;
      let parts: string[];
      try {
        parts = tarPathComponents(header.name);
      } catch (error) {
        fail(header.name, error as Error);
        entry.resume();
        continue;
      }
      const path = parts.join('/');
      if (parts.length > 0 && options.excludes?.length && isExcluded(path, options.excludes)) {
        entry.resume();
        continue;
      }
      const name = parts.at(-1) ?? '/';
      try {
        switch (header.type) {
          case 'directory': {
            const dir = parts.length === 0 ? root : parentOf(parts.slice(0, -1));
            const existing = parts.length === 0 ? root : dir.children.get(name);
            const node = metadataNode(name, header, 'dir', nextInode++, warnFor(path || '/'));
            if (existing && 'children' in existing) existing.node = node;
            else dir.children.set(name, { node, children: new Map() });
            dirs++;
            summary.dirsNew++;
            entry.resume();
            break;
          }
          case 'file':
          case 'contiguous-file': {
            if (parts.length === 0) throw new Error('a file cannot be the archive root');
            const node = metadataNode(name, header, 'file', nextInode++, warnFor(path));
            const content: string[] = [];
            let size = 0;
            for await (const chunk of chunkStream(entry as AsyncIterable<Uint8Array>, pol)) {
              const id = sha256Hex(chunk.data);
              await sink.saveBlob('data', chunk.data, id);
              content.push(id);
              size += chunk.length;
              summary.bytesRead += chunk.length;
              progress(path);
            }
            node.size = size;
            node.content = content;
            summary.totalBytes += size;
            parentOf(parts.slice(0, -1)).children.set(name, node);
            byPath.set(path, node);
            files++;
            summary.filesNew++;
            break;
          }
          case 'link': {
            entry.resume();
            if (parts.length === 0) throw new Error('a hardlink cannot be the archive root');
            const target = byPath.get(tarPathComponents(header.linkname ?? '').join('/'));
            if (!target)
              throw new Error(
                `hardlink to ${JSON.stringify(header.linkname)}, which is not in the archive before it`,
              );
            const node: TreeNode = { ...target, name };
            summary.totalBytes += target.size ?? 0;
            parentOf(parts.slice(0, -1)).children.set(name, node);
            byPath.set(path, node);
            files++;
            summary.filesUnmodified++;
            break;
          }
          case 'symlink':
          case 'fifo':
          case 'character-device':
          case 'block-device': {
            entry.resume();
            if (parts.length === 0) throw new Error(`a ${header.type} cannot be the archive root`);
            const type =
              header.type === 'character-device'
                ? 'chardev'
                : header.type === 'block-device'
                  ? 'dev'
                  : header.type;
            const node = metadataNode(name, header, type, nextInode++, warnFor(path));
            if (type === 'symlink') node.linktarget = header.linkname ?? '';
            node.content = null;
            parentOf(parts.slice(0, -1)).children.set(name, node);
            break;
          }
          default:
            entry.resume();
            throw new Error(`archive entry type ${String(header.type)} is not backed up`);
        }
      } catch (error) {
        if (error instanceof RepositoryError && error.code !== RepositoryErrorCode.UnsafePath) throw error;
        fail(path || '/', error as Error);
      }
      progress(path);
    }
  })();
  archive.on('error', (error) => reader.destroy(error));
  archive.pipe(reader);
  await done;

  // Hardlinked files share their inode; restic restores them as links when `links` > 1.
  const linkCounts = new Map<number, number>();
  for (const node of byPath.values()) linkCounts.set(node.inode!, (linkCounts.get(node.inode!) ?? 0) + 1);
  for (const node of byPath.values()) node.links = linkCounts.get(node.inode!) ?? 1;

  const writeDir = async (dir: DirEntry): Promise<string> => {
    const nodes: TreeNode[] = [];
    for (const child of dir.children.values()) {
      if ('children' in child) {
        const subtree = await writeDir(child);
        nodes.push({ ...child.node, subtree, content: null });
      } else {
        nodes.push(child.content === undefined ? { ...child, content: null } : child);
      }
    }
    return saveTree(sink, nodes);
  };
  const tree = await writeDir(root);
  await sink.drain();
  summary.bytesAdded = sink.bytesAdded;
  return { tree, root: { ...root.node, subtree: tree, content: null }, summary };
}
