import { getSystemErrorMessage, getSystemErrorName } from 'node:util';
import { formatGoTimeParts } from '../format/ids.ts';
import { nameFromBytes, type TreeNode } from '../format/tree.ts';
import { loadNativeAddon } from '../native-addon.ts';
import type { ListingDigest } from './dir-cache.ts';
import { shownPath, type FsPath } from './fs-path.ts';
import type { EntryStat } from './node-metadata.ts';

/** What libs/repository/native/scan.c gives for one directory (see there). */
interface RawScan {
  names: Array<string | Buffer>;
  stats: Float64Array;
}

interface NativeScan {
  scan(paths: readonly FsPath[]): Promise<Array<RawScan | Error>>;
  readonly FIELDS: number;
}

const addon = loadNativeAddon<NativeScan>('scan');

/**
 * One directory as a backup's walk sees it: its entries' names (sorted bytewise, as the walk
 * reads them) with their lstat and whether they list extended attributes, all read on libuv's
 * thread pool in one call. Without the native addon (no C compiler, `VOLBACK_NATIVE=off`)
 * {@link scanDirectory} is undefined and the walk calls readdir and lstat itself.
 */
export class ScannedDirectory {
  readonly #names: Array<string | Buffer>;
  readonly #stats: Float64Array;
  readonly #fields: number;

  constructor(raw: RawScan, fields: number) {
    this.#names = raw.names;
    this.#stats = raw.stats;
    this.#fields = fields;
  }

  get size(): number {
    return this.#names.length;
  }

  /** Entry `i`'s name (with its bytes when they are not UTF-8). */
  name(i: number): Pick<TreeNode, 'name' | 'nameBytes'> {
    const name = this.#names[i]!;
    return typeof name === 'string' ? { name } : nameFromBytes(name);
  }

  /** Whether entry `i` is a directory (its lstat said so). */
  isDirectory(i: number): boolean {
    const f = this.#stats;
    const at = i * this.#fields;
    return f[at + 14] === 0 && (f[at + 2]! & 0o170000) === 0o040000;
  }

  /** Entry `i`'s lstat; its error, as Node's lstat throws it, when that failed. */
  stat(i: number, path: FsPath): EntryStat {
    const f = this.#stats;
    const at = i * this.#fields;
    const errno = f[at + 14]!;
    if (errno !== 0) throw systemError(-errno, 'lstat', path);
    return {
      dev: f[at]!,
      ino: f[at + 1]!,
      mode: f[at + 2]!,
      nlink: f[at + 3]!,
      uid: f[at + 4]!,
      gid: f[at + 5]!,
      rdev: f[at + 6]!,
      size: f[at + 7]!,
      atime: () => formatGoTimeParts(f[at + 8]!, f[at + 9]!),
      mtime: formatGoTimeParts(f[at + 10]!, f[at + 11]!),
      ctime: formatGoTimeParts(f[at + 12]!, f[at + 13]!),
    };
  }

  /**
   * Adds entry `i` to a directory's listing digest (as {@link ListingDigest.addStats} does with
   * Node's lstat); false, adding nothing, when its lstat failed.
   */
  addTo(listing: ListingDigest, i: number): boolean {
    const f = this.#stats;
    const from = i * this.#fields;
    if (f[from + 14] !== 0) return false;
    const { fields, at } = listing.slot(this.#names[i]!);
    for (let k = 0; k < 8; k++) fields[at + k] = f[from + k]!;
    for (let k = 8; k < 12; k++) fields[at + k] = f[from + k + 2]!;
    return true;
  }

  /** Entry `i`'s size and, for the chunk cache, device and inode (its lstat held). */
  fileIdentity(i: number): { size: number; device_id: number; inode: number } {
    const f = this.#stats;
    const at = i * this.#fields;
    return { size: f[at + 7]!, device_id: f[at]!, inode: f[at + 1]! };
  }

  /** Whether entry `i` is a regular file (its lstat said so). */
  isFile(i: number): boolean {
    const f = this.#stats;
    const at = i * this.#fields;
    return f[at + 14] === 0 && (f[at + 2]! & 0o170000) === 0o100000;
  }

  /** False when entry `i` lists no extended attributes (or its filesystem has none). */
  mayHaveAttributes(i: number): boolean {
    return this.#stats[i * this.#fields + 15] !== 0;
  }
}

/** The error Node's fs throws for `errno` (negative, libuv's) of `syscall` on `path`. */
function systemError(errno: number, syscall: string, path: FsPath): NodeJS.ErrnoException {
  const code = getSystemErrorName(errno);
  const shown = shownPath(path);
  const error: NodeJS.ErrnoException = new Error(
    `${code}: ${getSystemErrorMessage(errno)}, ${syscall} '${shown}'`,
  );
  Object.assign(error, { code, errno, syscall, path: shown });
  return error;
}

/**
 * Reads directories on the thread pool, one after the other in one job (see
 * {@link ScannedDirectory}): one element per path, in order, or the Error Node's readdir throws
 * (`scandir`) for one that cannot be opened or read. Undefined without the native addon.
 */
export const scanDirectories:
  ((paths: readonly FsPath[]) => Promise<Array<ScannedDirectory | Error>>) | undefined = addon
  ? async (paths) =>
      (await addon.scan(paths)).map((raw) =>
        raw instanceof Error ? raw : new ScannedDirectory(raw, addon.FIELDS),
      )
  : undefined;

/** {@link scanDirectories} of one directory; rejects with its Error. */
export const scanDirectory: ((path: FsPath) => Promise<ScannedDirectory>) | undefined = scanDirectories
  ? async (path) => {
      const [scanned] = await scanDirectories!([path]);
      if (scanned instanceof Error) throw scanned;
      return scanned!;
    }
  : undefined;
