import { createHash, randomBytes } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isId } from '../format/ids.ts';

/**
 * Numbers of an entry's lstat a node is built from, in this order: device, inode, mode, links,
 * uid, gid, rdev, size, mtime (s, ns), ctime (s, ns). The atime is not among them: a walk that
 * records it (`withAtime`) uses no directory cache.
 */
export const LISTED_FIELDS = 12;

/**
 * The digest of a directory's listing as a backup's walk sees it: every entry it backs up (the
 * excluded ones left out), by name and by the lstat numbers its node is built from, in the walk's
 * order. Two listings of equal digest give equal nodes: a file's node is the parent's when its
 * mtime, ctime, size and inode are (restic's test), and the ctime moves with every change of an
 * entry's metadata, extended attributes included.
 */
export class ListingDigest {
  readonly #names: Array<string | Buffer> = [];
  #fields: Float64Array;

  constructor(entries: number) {
    this.#fields = new Float64Array(Math.max(1, entries) * LISTED_FIELDS);
  }

  /** A place for the next entry's {@link LISTED_FIELDS} numbers (its name `name`). */
  slot(name: string | Buffer): { fields: Float64Array; at: number } {
    const at = this.#names.length * LISTED_FIELDS;
    this.#names.push(name);
    if (at + LISTED_FIELDS > this.#fields.length) {
      const grown = new Float64Array(this.#fields.length * 2);
      grown.set(this.#fields);
      this.#fields = grown;
    }
    return { fields: this.#fields, at };
  }

  /** Adds an entry read with Node's lstat (`bigint: true`); its name as the directory lists it. */
  addStats(name: string | Buffer, stats: BigIntStats): void {
    const { fields: f, at } = this.slot(name);
    f[at] = Number(stats.dev);
    f[at + 1] = Number(stats.ino);
    f[at + 2] = Number(stats.mode);
    f[at + 3] = Number(stats.nlink);
    f[at + 4] = Number(stats.uid);
    f[at + 5] = Number(stats.gid);
    f[at + 6] = Number(stats.rdev);
    f[at + 7] = Number(stats.size);
    f[at + 8] = Number(stats.mtimeNs / 1_000_000_000n);
    f[at + 9] = Number(stats.mtimeNs % 1_000_000_000n);
    f[at + 10] = Number(stats.ctimeNs / 1_000_000_000n);
    f[at + 11] = Number(stats.ctimeNs % 1_000_000_000n);
  }

  /** 128 bits of SHA-256 (hex) over `key`, the names and their numbers. */
  digest(key: string): string {
    const hash = createHash('sha256').update(`${key}\0${this.#names.length}\0`);
    // Each name ends in a NUL, whichever way it is hashed.
    if (this.#names.every((name) => typeof name === 'string')) {
      if (this.#names.length > 0) hash.update(this.#names.join('\0')).update('\0');
    } else for (const name of this.#names) hash.update(name).update('\0');
    hash.update(new Uint8Array(this.#fields.buffer, 0, this.#names.length * LISTED_FIELDS * 8));
    return hash.digest('hex').slice(0, 32);
  }
}

const FILE = 'dirs.json';
/** Bumped when what a walk writes for the same listing changes (a node's fields, their order). */
const VERSION = 1;
/** Directories recorded at most: about 150 bytes each in memory, twice while a walk runs. */
const MAX_DIRS = 200_000;

/** One directory as the last walk found it: its listing's digest and the tree it wrote. */
interface CachedDir {
  readonly digest: string;
  readonly tree: string;
}

/**
 * The directory cache of one backup source (next to its chunk cache): per directory path, the
 * digest of its listing ({@link ListingDigest}) and the tree the last complete walk wrote for it.
 * A directory whose tree in the parent snapshot is that tree, and whose listing has that digest,
 * has that tree again once its subdirectories have theirs: its tree is not read, its entries'
 * nodes are not built. The entries of one file come from one walk, so a subdirectory's entry
 * holds the subtree its parent's tree names (a tree id fixes everything below it). A tree id that
 * is not the parent's proves nothing, and its directory is walked as without the cache; the
 * cache's loss costs time, never data.
 */
export class DirCache {
  readonly #path: string;
  readonly #key: string;
  readonly #previous: Map<string, CachedDir>;
  readonly #next = new Map<string, CachedDir>();

  private constructor(path: string, key: string, previous: Map<string, CachedDir>) {
    this.#path = path;
    this.#key = key;
    this.#previous = previous;
  }

  /**
   * Opens the cache in `dir`; `key` names what else decides a walk's trees (its excludes): a cache
   * written under another key is not used.
   */
  static async open(dir: string, key: string): Promise<DirCache> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const path = join(dir, FILE);
    const previous = new Map<string, CachedDir>();
    try {
      const saved = JSON.parse(await readFile(path, 'utf8')) as unknown;
      if (isSaved(saved) && saved.v === VERSION && saved.key === key)
        for (const [dirPath, digest, tree] of saved.dirs) previous.set(dirPath, { digest, tree });
    } catch {
      // None yet, or unreadable: every directory is walked.
    }
    return new DirCache(path, key, previous);
  }

  /** The listing digest under this cache's key. */
  digest(listing: ListingDigest): string {
    return listing.digest(this.#key);
  }

  /** What the last complete walk found at `path`. */
  get(path: string): CachedDir | undefined {
    return this.#previous.get(path);
  }

  /** Records what this walk found at `path` (written by {@link save}). */
  record(path: string, digest: string, tree: string): void {
    if (this.#next.size < MAX_DIRS) this.#next.set(path, { digest, tree });
  }

  /** Replaces the file with this walk's directories (call once the walk is complete). */
  async save(): Promise<void> {
    const dirs = [...this.#next].map(([path, { digest, tree }]) => [path, digest, tree]);
    // A name of its own: two walks of one source at once must not write into each other's file.
    const tmp = `${this.#path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, JSON.stringify({ v: VERSION, key: this.#key, dirs }), { mode: 0o600 });
      await rename(tmp, this.#path);
    } catch {
      // A cache that cannot be written costs the next backup time, nothing else.
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }
}

function isSaved(value: unknown): value is { v: number; key: string; dirs: Array<[string, string, string]> } {
  const v = value as { v?: unknown; key?: unknown; dirs?: unknown } | null;
  return (
    typeof v === 'object' &&
    v !== null &&
    typeof v.key === 'string' &&
    Array.isArray(v.dirs) &&
    v.dirs.every(
      (d: unknown) =>
        Array.isArray(d) &&
        d.length === 3 &&
        typeof d[0] === 'string' &&
        typeof d[1] === 'string' &&
        typeof d[2] === 'string' &&
        isId(d[2]),
    )
  );
}
