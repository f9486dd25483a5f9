import { randomBytes } from 'node:crypto';
import { mkdir, readdir, readFile, rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { PreviousChunk } from '../chunker/index.ts';
import type { TreeNode } from '../format/tree.ts';

/** What the cache keeps of one file: its chunks at a backup, and which version of the file that was. */
interface CacheEntry {
  /** 2: digests by 64 KiB block ({@link fastDigest}); entries of version 1 (one per chunk) are not read. */
  v: 2;
  size: number;
  mtime: string;
  /** Blob ids, in file order: the node's `content` in the snapshot that backed it up. */
  ids: string[];
  lengths: number[];
  /** Fast digests of the chunks, with the cache's seed (`fastDigest`: by 64 KiB block). */
  digests: string[];
}

const SEED_FILE = 'seed';
const FILES = 'files';

function isEntry(value: unknown): value is CacheEntry {
  const e = value as Partial<CacheEntry> | null;
  return (
    e !== null &&
    typeof e === 'object' &&
    e.v === 2 &&
    Number.isSafeInteger(e.size) &&
    typeof e.mtime === 'string' &&
    Array.isArray(e.ids) &&
    Array.isArray(e.lengths) &&
    Array.isArray(e.digests) &&
    e.ids.length === e.lengths.length &&
    e.ids.length === e.digests.length &&
    e.ids.every((id) => typeof id === 'string') &&
    e.lengths.every((n) => Number.isSafeInteger(n) && n > 0) &&
    e.digests.every((d) => typeof d === 'string')
  );
}

/**
 * The chunk cache of one backup source (a directory of its own): per file of more than one
 * chunk, keyed by device and inode, the chunk lengths, blob ids and fast digests of its last
 * backup, with that version's size and mtime. An entry is used only for the file the parent
 * snapshot recorded with exactly that size, mtime and content (so only against the parent it
 * describes); anything else — missing, unreadable, stale — means chunking the file in full. Its
 * loss costs time, never data. Entries are written without fsync; entries of files a backup did
 * not see are removed at its end.
 */
export class ChunkCache {
  readonly #dir: string;
  /** Seed of the fast digest: random per cache, so digests cannot be predicted from outside it. */
  readonly seed: bigint;
  readonly #seen = new Set<string>();
  readonly #writes = new Set<Promise<void>>();

  private constructor(dir: string, seed: bigint) {
    this.#dir = dir;
    this.seed = seed;
  }

  /** Opens (or creates) the cache in `dir`. */
  static async open(dir: string): Promise<ChunkCache> {
    await mkdir(join(dir, FILES), { recursive: true, mode: 0o700 });
    const seedPath = join(dir, SEED_FILE);
    let text = await readFile(seedPath, 'utf8').catch(() => '');
    if (!/^[0-9a-f]{16}$/.test(text)) {
      text = randomBytes(8).toString('hex');
      // Written whole or not at all; a new seed only makes the old entries useless.
      await writeFile(`${seedPath}.tmp`, text, { mode: 0o600 });
      await rename(`${seedPath}.tmp`, seedPath);
      await rm(join(dir, FILES), { recursive: true, force: true });
      await mkdir(join(dir, FILES), { recursive: true, mode: 0o700 });
    }
    return new ChunkCache(dir, BigInt(`0x${text}`));
  }

  static #key(node: Pick<TreeNode, 'device_id' | 'inode'>): string {
    return `${(node.device_id ?? 0).toString(16)}-${(node.inode ?? 0).toString(16)}`;
  }

  /**
   * The chunks `current` (a file as read now) had at its last backup, when the cache holds them
   * for exactly the version `previous` (its node in the parent snapshot) records; else undefined.
   */
  async previousChunks(
    current: TreeNode,
    previous: TreeNode | undefined,
  ): Promise<PreviousChunk[] | undefined> {
    if (previous?.type !== 'file' || !Array.isArray(previous.content) || previous.content.length < 2) return;
    if (previous.inode !== current.inode || previous.device_id !== current.device_id) return;
    const key = ChunkCache.#key(current);
    let entry: unknown;
    try {
      entry = JSON.parse(await readFile(join(this.#dir, FILES, key), 'utf8'));
    } catch {
      return;
    }
    if (!isEntry(entry) || entry.size !== previous.size || entry.mtime !== previous.mtime) return;
    const content = previous.content;
    if (entry.ids.length !== content.length || entry.ids.some((id, i) => id !== content[i])) return;
    const chunks: PreviousChunk[] = [];
    let offset = 0;
    for (let i = 0; i < entry.ids.length; i++) {
      chunks.push({ offset, length: entry.lengths[i]!, digest: entry.digests[i]!, id: entry.ids[i]! });
      offset += entry.lengths[i]!;
    }
    return offset === entry.size ? chunks : undefined;
  }

  /** Keeps the entry of a file unchanged since the parent (it still describes the file). */
  keep(node: Pick<TreeNode, 'device_id' | 'inode'>): void {
    this.#seen.add(ChunkCache.#key(node));
  }

  /**
   * Records the chunks `node` (a file just backed up, as its snapshot records it) was cut into:
   * blob ids, lengths and fast digests; a file of one chunk is not kept (nothing to reuse).
   */
  remember(node: TreeNode, ids: string[], chunks: ReadonlyArray<{ length: number; digest: string }>): void {
    const key = ChunkCache.#key(node);
    if (ids.length < 2 || chunks.length !== ids.length) return;
    this.#seen.add(key);
    const entry: CacheEntry = {
      v: 2,
      size: node.size ?? 0,
      mtime: node.mtime ?? '',
      ids,
      lengths: chunks.map((c) => c.length),
      digests: chunks.map((c) => c.digest),
    };
    const path = join(this.#dir, FILES, key);
    const write = writeFile(`${path}.tmp`, JSON.stringify(entry), { mode: 0o600 })
      .then(() => rename(`${path}.tmp`, path))
      // A cache that cannot be written costs the next backup time, nothing else.
      .catch(() => rm(`${path}.tmp`, { force: true }).catch(() => undefined))
      .finally(() => this.#writes.delete(write));
    this.#writes.add(write);
  }

  /** Waits for the entries written; with `sweep`, removes those of files this backup did not see. */
  async close(sweep: boolean): Promise<void> {
    await Promise.all(this.#writes);
    if (!sweep) return;
    const names = await readdir(join(this.#dir, FILES)).catch(() => [] as string[]);
    for (const name of names) {
      if (!this.#seen.has(name)) await rm(join(this.#dir, FILES, name), { force: true });
    }
  }
}
