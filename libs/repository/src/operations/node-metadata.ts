import type { BigIntStats } from 'node:fs';
import { formatGoTime } from '../format/ids.ts';
import { goModeFromPosix, type TreeNode } from '../format/tree.ts';

/** restic's node type for a file's st_mode. */
export function nodeTypeOfMode(mode: number): TreeNode['type'] {
  switch (mode & 0o170000) {
    case 0o100000:
      return 'file';
    case 0o040000:
      return 'dir';
    case 0o120000:
      return 'symlink';
    case 0o060000:
      return 'dev';
    case 0o020000:
      return 'chardev';
    case 0o010000:
      return 'fifo';
    case 0o140000:
      return 'socket';
    default:
      return 'irregular';
  }
}

/** What a node records of an entry's lstat: its numbers, and its times as restic writes them. */
export interface EntryStat {
  mode: number;
  uid: number;
  gid: number;
  ino: number;
  dev: number;
  nlink: number;
  size: number;
  rdev: number;
  mtime: string;
  ctime: string;
  /** Read only with `withAtime`. */
  atime: () => string;
}

/**
 * The metadata part of a node (everything but content, subtree and link target). Without
 * `withAtime` the node's atime is its mtime, as restic (0.17 on) and rustic record it unless told
 * otherwise: reading a file or a directory for a backup moves its atime, so recording it made
 * every backup after a change write its directories' trees again.
 */
export function nodeFromStat(name: string, stat: EntryStat, withAtime = false): TreeNode {
  const type = nodeTypeOfMode(stat.mode);
  const node: TreeNode = {
    name,
    type,
    mode: goModeFromPosix(stat.mode),
    mtime: stat.mtime,
    atime: withAtime ? stat.atime() : stat.mtime,
    ctime: stat.ctime,
    uid: stat.uid,
    gid: stat.gid,
    inode: stat.ino,
    device_id: stat.dev,
    links: stat.nlink,
  };
  if (type === 'file') node.size = stat.size;
  if (type === 'dev' || type === 'chardev') node.device = stat.rdev;
  return node;
}

/** {@link nodeFromStat} of Node's lstat with `bigint: true`. */
export function nodeFromStats(name: string, stats: BigIntStats, withAtime = false): TreeNode {
  return nodeFromStat(
    name,
    {
      mode: Number(stats.mode),
      uid: Number(stats.uid),
      gid: Number(stats.gid),
      ino: Number(stats.ino),
      dev: Number(stats.dev),
      nlink: Number(stats.nlink),
      size: Number(stats.size),
      rdev: Number(stats.rdev),
      mtime: formatGoTime(stats.mtimeNs),
      ctime: formatGoTime(stats.ctimeNs),
      atime: () => formatGoTime(stats.atimeNs),
    },
    withAtime,
  );
}

/** restic's test for an unchanged file: same type, mtime, ctime, size and inode as in the parent. */
export function unchangedSince(previous: TreeNode | undefined, current: TreeNode): boolean {
  return (
    previous !== undefined &&
    previous.type === 'file' &&
    current.type === 'file' &&
    previous.mtime === current.mtime &&
    previous.ctime === current.ctime &&
    previous.size === current.size &&
    previous.inode === current.inode &&
    Array.isArray(previous.content)
  );
}

/** Deep equality of tree-node values; fields set to undefined count as absent. No allocation. */
function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a !== 'object' || typeof b !== 'object' || a === null || b === null) return false;
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b))
    return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    for (let i = 0; i < a.length; i++) if (!sameValue(a[i], b[i])) return false;
    return true;
  }
  const x = a as Record<string, unknown>;
  const y = b as Record<string, unknown>;
  let fields = 0;
  for (const key in x) {
    if (!Object.hasOwn(x, key) || x[key] === undefined) continue;
    if (!Object.hasOwn(y, key) || !sameValue(x[key], y[key])) return false;
    fields++;
  }
  for (const key in y) if (Object.hasOwn(y, key) && y[key] !== undefined) fields--;
  return fields === 0;
}

/**
 * True when a node read now records exactly what the parent's node does (every field, atime and
 * extended attributes included), so a tree of such nodes is the parent's tree.
 */
export function sameNode(current: TreeNode, previous: TreeNode | undefined): boolean {
  return previous !== undefined && sameValue(current, previous);
}
