import { isUtf8 } from 'node:buffer';
import { z } from 'zod';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { goDisplayString, goQuote, goUnquote } from './go-quote.ts';

const id = z.string().regex(/^[0-9a-f]{64}$/);

/**
 * One entry of a tree blob, as restic's `Node` marshals it (internal/restic/node.go): `name` is
 * Go's `strconv.Quote` of the name's bytes without the quotes, and `linktarget_raw` (base64) holds
 * a link target that is not valid UTF-8 (`linktarget` then has U+FFFD for its invalid bytes).
 */
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
  linktarget_raw: z.base64().nullish(),
  extended_attributes: z.array(z.object({ name: z.string(), value: z.string().nullable() })).nullish(),
  /** st_rdev of a device node. */
  device: z.number().int().nonnegative().optional(),
  content: z.array(id).nullable().optional(),
  subtree: id.nullish(),
  error: z.string().optional(),
});
/**
 * A tree node in memory: `name` unquoted, and a `linktarget_raw` taken into the link target.
 * `name` and `linktarget` are always readable strings; bytes that are not valid UTF-8 live beside
 * them, and whatever touches the file system uses {@link nodeNameBytes} / {@link nodeLinkTarget}.
 */
export type TreeNode = Omit<z.infer<typeof nodeSchema>, 'linktarget_raw'> & {
  /**
   * The name's bytes, present only when they are not valid UTF-8; `name` then shows each invalid
   * byte as U+FFFD (two such names may show alike).
   */
  nameBytes?: Buffer;
  /** The link target's bytes, present only when they are not valid UTF-8 (restic's `linktarget_raw`). */
  linktargetBytes?: Buffer;
};

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

/** A name from the file system's bytes: the string when they are UTF-8, else readable text and the bytes. */
export function nameFromBytes(bytes: Buffer): Pick<TreeNode, 'name' | 'nameBytes'> {
  return isUtf8(bytes)
    ? { name: bytes.toString('utf8') }
    : { name: goDisplayString(bytes), nameBytes: bytes };
}

/** A link target from the file system's bytes, likewise. */
export function linkTargetFromBytes(bytes: Buffer): Pick<TreeNode, 'linktarget' | 'linktargetBytes'> {
  return isUtf8(bytes)
    ? { linktarget: bytes.toString('utf8') }
    : { linktarget: goDisplayString(bytes), linktargetBytes: bytes };
}

/** The bytes a node's name has on the file system. */
export function nodeNameBytes(node: Pick<TreeNode, 'name' | 'nameBytes'>): Buffer {
  return node.nameBytes ?? Buffer.from(node.name, 'utf8');
}

/**
 * A string equal for two nodes exactly when their name bytes are (for maps and sets): the name
 * itself when it is UTF-8; names never hold NUL, so the other keys cannot meet those.
 */
export function nodeNameKey(node: Pick<TreeNode, 'name' | 'nameBytes'>): string {
  return node.nameBytes ? `\0${node.nameBytes.toString('hex')}` : node.name;
}

/** A symlink's target as the file system should get it: its bytes when they are not UTF-8. */
export function nodeLinkTarget(node: Pick<TreeNode, 'linktarget' | 'linktargetBytes'>): string | Buffer {
  return node.linktargetBytes ?? node.linktarget ?? '';
}

/** Names Go's Quote leaves as they are, without looking at their bytes: printable ASCII but `"` and `\`. */
const PLAIN_NAME = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
/** What makes a quoted name differ from its bytes, or be refused: an escape, a quote, a newline. */
const QUOTING_CHARACTERS = /["\\\n]/;

function wireNode(node: TreeNode, nameBytes: Buffer): object {
  const name = node.nameBytes === undefined && PLAIN_NAME.test(node.name) ? node.name : goQuote(nameBytes);
  if (name === node.name && node.nameBytes === undefined && node.linktargetBytes === undefined) return node;
  const wire: Record<string, unknown> = { ...node, name };
  delete wire.nameBytes;
  delete wire.linktargetBytes;
  if (node.linktargetBytes) {
    // restic writes linktarget_raw only for targets that are not UTF-8.
    const { linktarget, linktargetBytes } = linkTargetFromBytes(node.linktargetBytes);
    wire.linktarget = linktarget;
    if (linktargetBytes) wire.linktarget_raw = linktargetBytes.toString('base64');
  }
  return wire;
}

/**
 * A tree blob's bytes: restic writes the JSON followed by a newline, nodes sorted by their name's
 * bytes (Go compares strings bytewise), names Go-quoted.
 */
export function encodeTree(nodes: readonly TreeNode[]): Buffer {
  const sorted = nodes
    .map((node) => ({ node, nameBytes: nodeNameBytes(node) }))
    .sort((a, b) => Buffer.compare(a.nameBytes, b.nameBytes));
  const wire = sorted.map(({ node, nameBytes }) => wireNode(node, nameBytes));
  return Buffer.from(`${JSON.stringify({ nodes: wire })}\n`, 'utf8');
}

/** The in-memory node of a wire node (parsed by {@link nodeSchema}), changed in place. */
function fromWire(wire: z.infer<typeof nodeSchema>, treeId: string): TreeNode {
  const node: TreeNode & { linktarget_raw?: string | null } = wire;
  if (QUOTING_CHARACTERS.test(node.name) || !node.name.isWellFormed()) {
    Object.assign(node, nameFromBytes(goUnquote(node.name, `tree ${treeId}: node name`)));
  }
  if ('linktarget_raw' in node) {
    const raw = node.linktarget_raw;
    delete node.linktarget_raw;
    // As restic: the raw bytes, when present, override linktarget.
    if (raw != null) Object.assign(node, linkTargetFromBytes(Buffer.from(raw, 'base64')));
  }
  return node;
}

const NODE_TYPES: ReadonlySet<unknown> = new Set(nodeSchema.shape.type.options);
const HEX_ID = /^[0-9a-f]{64}$/;
const isCount = (v: unknown) => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * A tree's wire nodes when the tree and every node are of the common shape and valid exactly as
 * {@link treeSchema} says, checked here without zod building its result (zod took about 150 ms of a
 * restore of 32,000 small files; this takes a few); else undefined, and the tree goes through the
 * schema, which also words the error. Only what the schema accepts passes (the unit test holds
 * the two together); a node with extended attributes, a raw link target or a key the schema does
 * not know always goes through the schema. The nodes are kept as written, key order included.
 */
export function plainTreeNodes(value: unknown): Array<z.infer<typeof nodeSchema>> | null | undefined {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1 || keys[0] !== 'nodes') return undefined;
  const nodes = (value as { nodes: unknown }).nodes;
  if (nodes === null) return null;
  if (!Array.isArray(nodes)) return undefined;
  for (const node of nodes) if (!isPlainNode(node)) return undefined;
  return nodes as Array<z.infer<typeof nodeSchema>>;
}

function isPlainNode(node: unknown): boolean {
  if (typeof node !== 'object' || node === null || Array.isArray(node)) return false;
  const fields = node as Record<string, unknown>;
  for (const key of Object.keys(fields)) {
    const v = fields[key];
    switch (key) {
      case 'name':
      case 'mtime':
      case 'atime':
      case 'ctime':
      case 'user':
      case 'group':
      case 'linktarget':
      case 'error':
        if (typeof v !== 'string') return false;
        break;
      case 'type':
        if (!NODE_TYPES.has(v)) return false;
        break;
      case 'uid':
      case 'gid':
      case 'mode':
      case 'inode':
      case 'device_id':
      case 'size':
      case 'links':
      case 'device':
        if (!isCount(v)) return false;
        break;
      case 'content':
        if (v !== null) {
          if (!Array.isArray(v)) return false;
          for (const id of v) if (typeof id !== 'string' || !HEX_ID.test(id)) return false;
        }
        break;
      case 'subtree':
        if (v !== null && (typeof v !== 'string' || !HEX_ID.test(v))) return false;
        break;
      default:
        return false;
    }
  }
  return 'name' in fields && 'type' in fields && 'uid' in fields && 'gid' in fields;
}

/** Parses a tree blob; names are unquoted (as restic's Node.UnmarshalJSON does). */
export function decodeTree(bytes: Uint8Array, treeId: string): TreeNode[] {
  let value: unknown;
  try {
    value = JSON.parse(Buffer.from(bytes).toString('utf8'));
  } catch (cause) {
    throw new RepositoryError(RepositoryErrorCode.Malformed, `tree ${treeId}: not JSON`, { cause });
  }
  let nodes = plainTreeNodes(value);
  if (nodes === undefined) {
    const parsed = treeSchema.safeParse(value);
    if (!parsed.success)
      throw new RepositoryError(
        RepositoryErrorCode.Malformed,
        `tree ${treeId}: ${z.prettifyError(parsed.error)}`,
      );
    nodes = parsed.data.nodes;
  }
  return (nodes ?? []).map((wire) => fromWire(wire, treeId));
}
