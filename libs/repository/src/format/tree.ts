import { z } from 'zod';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';

const id = z.string().regex(/^[0-9a-f]{64}$/);

/** One entry of a tree blob, as restic's `Node` marshals it (internal/restic/node.go). */
export const nodeSchema = z.object({
  name: z.string(),
  type: z.enum(['file', 'dir', 'symlink', 'dev', 'chardev', 'fifo', 'socket', 'irregular']),
  /** Go's os.FileMode: permission bits plus Go's type bits ({@link GoMode}). */
  mode: z.number().int().nonnegative().optional(),
  mtime: z.string().optional(),
  atime: z.string().optional(),
  ctime: z.string().optional(),
  uid: z.number().int().nonnegative(),
  gid: z.number().int().nonnegative(),
  user: z.string().optional(),
  group: z.string().optional(),
  inode: z.number().int().nonnegative().optional(),
  device_id: z.number().int().nonnegative().optional(),
  size: z.number().int().nonnegative().optional(),
  links: z.number().int().nonnegative().optional(),
  linktarget: z.string().optional(),
  extended_attributes: z.array(z.object({ name: z.string(), value: z.string().nullable() })).nullish(),
  /** st_rdev of a device node. */
  device: z.number().int().nonnegative().optional(),
  content: z.array(id).nullable().optional(),
  subtree: id.nullish(),
  error: z.string().optional(),
});
/** A tree node. */
export type TreeNode = z.infer<typeof nodeSchema>;

/** A tree blob's JSON. */
export const treeSchema = z.object({ nodes: z.array(nodeSchema).nullable() });

/** Go's os.FileMode type bits, which restic stores in `mode`. */
export const GoMode = {
  Dir: 2 ** 31,
  Append: 2 ** 30,
  Exclusive: 2 ** 29,
  Temporary: 2 ** 28,
  Symlink: 2 ** 27,
  Device: 2 ** 26,
  NamedPipe: 2 ** 25,
  Socket: 2 ** 24,
  Setuid: 2 ** 23,
  Setgid: 2 ** 22,
  CharDevice: 2 ** 21,
  Sticky: 2 ** 20,
  Irregular: 2 ** 19,
} as const;

/** Go FileMode from a POSIX st_mode. */
export function goModeFromPosix(mode: number): number {
  let go = mode & 0o777;
  if (mode & 0o4000) go += GoMode.Setuid;
  if (mode & 0o2000) go += GoMode.Setgid;
  if (mode & 0o1000) go += GoMode.Sticky;
  switch (mode & 0o170000) {
    case 0o040000:
      return go + GoMode.Dir;
    case 0o120000:
      return go + GoMode.Symlink;
    case 0o060000:
      return go + GoMode.Device;
    case 0o020000:
      return go + GoMode.Device + GoMode.CharDevice;
    case 0o010000:
      return go + GoMode.NamedPipe;
    case 0o140000:
      return go + GoMode.Socket;
    default:
      return go;
  }
}

/** The permission, setuid, setgid and sticky bits of a Go FileMode, as POSIX bits. */
export function posixPermissionsFromGo(mode: number): number {
  let posix = mode & 0o777;
  const high = Math.floor(mode / 2 ** 19);
  if (high & (GoMode.Setuid / 2 ** 19)) posix |= 0o4000;
  if (high & (GoMode.Setgid / 2 ** 19)) posix |= 0o2000;
  if (high & (GoMode.Sticky / 2 ** 19)) posix |= 0o1000;
  return posix;
}

/** A tree blob's bytes: restic writes the JSON followed by a newline; nodes sorted by name. */
export function encodeTree(nodes: readonly TreeNode[]): Buffer {
  const sorted = [...nodes].sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
  return Buffer.from(`${JSON.stringify({ nodes: sorted })}\n`, 'utf8');
}

/** Parses a tree blob. */
export function decodeTree(bytes: Uint8Array, treeId: string): TreeNode[] {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (cause) {
    throw new RepositoryError(RepositoryErrorCode.Malformed, `tree ${treeId}: not JSON`, { cause });
  }
  const parsed = treeSchema.safeParse(value);
  if (!parsed.success)
    throw new RepositoryError(
      RepositoryErrorCode.Malformed,
      `tree ${treeId}: ${z.prettifyError(parsed.error)}`,
    );
  return parsed.data.nodes ?? [];
}
