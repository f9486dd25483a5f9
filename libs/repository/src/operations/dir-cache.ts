import { createHash, hash, randomBytes } from 'node:crypto';
import type { BigIntStats } from 'node:fs';
import { mkdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ABSENT, Column, IdTable } from '../format/id-table.ts';

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

const FILE = 'dirs';
/** The file of the first version (JSON, by path): removed when found. */
const OLD_FILE = 'dirs.json';
/**
 * Bumped when the file's form (2: bytes, keyed by the path's SHA-256) or what a walk writes for the
 * same listing changes (a node's fields, their order).
 */
const VERSION = 2;
/**
 * Directories recorded at most: about 120 bytes each in memory (the path's key and its record in
 * pages, slots of the hash table), twice while a walk runs.
 */
const MAX_DIRS = 200_000;
const KEY_BYTES = 32;
const DIGEST_BYTES = 16;
const TREE_BYTES = 32;
/** A directory's record: its listing's digest, then its tree's id. */
const RECORD_BYTES = DIGEST_BYTES + TREE_BYTES;

/** One directory as the last walk found it: its listing's digest and the tree it wrote. */
interface CachedDir {
  readonly digest: string;
  readonly tree: string;
}

/**
 * Directories by path, kept as bytes: a path's key ({@link DirTable.key}) in an {@link IdTable},
 * its record in a {@link Column} by the same row. No string or object per directory: a `Map` of
 * paths to objects of hex strings took about 330 bytes a directory (16 MiB in the agent for the
 * 50,924 directories of a 4 GiB `many-small` volume).
 */
class DirTable {
  readonly #keys = new IdTable();
  readonly #records = new Column(Uint8Array, RECORD_BYTES);
  readonly #scratch = Buffer.alloc(KEY_BYTES);

  get size(): number {
    return this.#keys.size;
  }

  /**
   * The SHA-256 of the path's UTF-8; none for a string with a lone surrogate, which UTF-8 cannot
   * tell from U+FFFD (names that are not UTF-8 are not walked as strings, so this is not met).
   */
  static key(path: string): string | undefined {
    // In hex, decoded into a scratch buffer: a digest as a new Buffer costs several times more.
    return path.isWellFormed() ? hash('sha256', path, 'hex') : undefined;
  }

  /** `key` (64 hex digits) as bytes, in a buffer reused by the next call. */
  #bytesOf(key: string): Buffer {
    this.#scratch.write(key, 0, KEY_BYTES, 'hex');
    return this.#scratch;
  }

  get(path: string): CachedDir | undefined {
    const key = DirTable.key(path);
    const row = key === undefined ? ABSENT : this.#keys.findBytes(0, this.#bytesOf(key));
    if (row === ABSENT) return undefined;
    const page = Buffer.from(this.#records.page(row).buffer);
    const at = this.#records.at(row);
    return {
      digest: page.toString('hex', at, at + DIGEST_BYTES),
      tree: page.toString('hex', at + DIGEST_BYTES, at + RECORD_BYTES),
    };
  }

  /** Records `digest` (32 hex digits) and `tree` (an id) under `key`, in place of what it held. */
  set(key: string, digest: string, tree: string): void {
    const { page, at } = this.#record(this.#bytesOf(key));
    page.write(digest, at, DIGEST_BYTES, 'hex');
    page.write(tree, at + DIGEST_BYTES, TREE_BYTES, 'hex');
  }

  /** Where `key`'s record is, in a row added for it unless it has one. */
  #record(key: Uint8Array): { page: Buffer; at: number } {
    let row = this.#keys.findBytes(0, key);
    if (row === ABSENT) {
      row = this.#keys.rows;
      this.#keys.addBytes(0, key);
      this.#records.resize(this.#keys.capacity);
    }
    return { page: Buffer.from(this.#records.page(row).buffer), at: this.#records.at(row) };
  }

  /** Every directory as key, digest and tree ({@link KEY_BYTES} + {@link RECORD_BYTES} bytes each). */
  bytes(): Buffer {
    const out = Buffer.alloc(this.#keys.rows * (KEY_BYTES + RECORD_BYTES));
    for (let row = 0, at = 0; row < this.#keys.rows; row++) {
      at += this.#keys.copyId(row, out, at);
      const r = this.#records.at(row);
      at += Buffer.from(this.#records.page(row).buffer).copy(out, at, r, r + RECORD_BYTES);
    }
    return out;
  }

  /**
   * Adds the directories of {@link bytes}. Any bytes read as records: one that is wrong (a file
   * damaged) is a cache entry that proves nothing, like a stale one.
   */
  load(bytes: Buffer): void {
    for (let at = 0; at + KEY_BYTES + RECORD_BYTES <= bytes.length; at += KEY_BYTES + RECORD_BYTES) {
      const { page, at: to } = this.#record(bytes.subarray(at, at + KEY_BYTES));
      bytes.copy(page, to, at + KEY_BYTES, at + KEY_BYTES + RECORD_BYTES);
    }
  }
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
 *
 * The file: a line of JSON (`v`, `key`, `dirs`: the count), then per directory its path's key,
 * its listing's digest and its tree's id, as bytes.
 */
export class DirCache {
  readonly #path: string;
  readonly #key: string;
  readonly #previous: DirTable;
  readonly #next = new DirTable();

  private constructor(path: string, key: string, previous: DirTable) {
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
    await rm(join(dir, OLD_FILE), { force: true }).catch(() => undefined);
    const path = join(dir, FILE);
    const previous = new DirTable();
    try {
      const file = await readFile(path);
      const newline = file.indexOf(0x0a);
      const header = JSON.parse(file.toString('utf8', 0, Math.max(0, newline))) as unknown;
      const body = file.subarray(newline + 1);
      if (
        isHeader(header) &&
        header.v === VERSION &&
        header.key === key &&
        header.dirs <= MAX_DIRS &&
        body.length === header.dirs * (KEY_BYTES + RECORD_BYTES)
      )
        previous.load(body);
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
    const key = DirTable.key(path);
    if (key !== undefined && this.#next.size < MAX_DIRS) this.#next.set(key, digest, tree);
  }

  /** Replaces the file with this walk's directories (call once the walk is complete). */
  async save(): Promise<void> {
    const header = JSON.stringify({ v: VERSION, key: this.#key, dirs: this.#next.size });
    // A name of its own: two walks of one source at once must not write into each other's file.
    const tmp = `${this.#path}.${randomBytes(6).toString('hex')}.tmp`;
    try {
      await writeFile(tmp, [`${header}\n`, this.#next.bytes()], { mode: 0o600 });
      await rename(tmp, this.#path);
    } catch {
      // A cache that cannot be written costs the next backup time, nothing else.
      await rm(tmp, { force: true }).catch(() => undefined);
    }
  }
}

function isHeader(value: unknown): value is { v: number; key: string; dirs: number } {
  const v = value as { v?: unknown; key?: unknown; dirs?: unknown } | null;
  return typeof v === 'object' && v !== null && typeof v.key === 'string' && Number.isSafeInteger(v.dirs);
}
