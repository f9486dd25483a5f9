import type { BigIntStats } from 'node:fs';
import { formatGoTime } from '../format/ids.ts';
import { goModeFromPosix, type TreeNode } from '../format/tree.ts';

/** restic's node type for a file's st_mode. */
export function nodeType(stats: BigIntStats): TreeNode['type'] {
  if (stats.isFile()) return 'file';
  if (stats.isDirectory()) return 'dir';
  if (stats.isSymbolicLink()) return 'symlink';
  if (stats.isBlockDevice()) return 'dev';
  if (stats.isCharacterDevice()) return 'chardev';
  if (stats.isFIFO()) return 'fifo';
  if (stats.isSocket()) return 'socket';
  return 'irregular';
}

/**
 * The metadata part of a node (everything but content, subtree and link target). Without
 * `withAtime` the node's atime is its mtime, as restic (0.17 on) and rustic record it unless told
 * otherwise: reading a file or a directory for a backup moves its atime, so recording it made
 * every backup after a change write its directories' trees again.
 */
export function nodeFromStats(name: string, stats: BigIntStats, withAtime = false): TreeNode {
  const type = nodeType(stats);
  const mtime = formatGoTime(stats.mtimeNs);
  const node: TreeNode = {
    name,
    type,
    mode: goModeFromPosix(Number(stats.mode)),
    mtime,
    atime: withAtime ? formatGoTime(stats.atimeNs) : mtime,
    ctime: formatGoTime(stats.ctimeNs),
    uid: Number(stats.uid),
    gid: Number(stats.gid),
    inode: Number(stats.ino),
    device_id: Number(stats.dev),
    links: Number(stats.nlink),
  };
  if (type === 'file') node.size = Number(stats.size);
  if (type === 'dev' || type === 'chardev') node.device = Number(stats.rdev);
  return node;
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

function sameValue(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b))
    return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    return (
      Array.isArray(a) &&
      Array.isArray(b) &&
      a.length === b.length &&
      a.every((item, i) => sameValue(item, b[i]))
    );
  }
  if (a && b && typeof a === 'object' && typeof b === 'object') {
    const keys = Object.keys(a).filter((k) => (a as Record<string, unknown>)[k] !== undefined);
    const other = Object.keys(b).filter((k) => (b as Record<string, unknown>)[k] !== undefined);
    return (
      keys.length === other.length &&
      keys.every((k) => sameValue((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k]))
    );
  }
  return false;
}

/**
 * True when a node read now records exactly what the parent's node does (every field, atime and
 * extended attributes included), so a tree of such nodes is the parent's tree.
 */
export function sameNode(current: TreeNode, previous: TreeNode | undefined): boolean {
  return previous !== undefined && sameValue(current, previous);
}
