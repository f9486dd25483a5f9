import {
  closeSync,
  constants as fsConstants,
  createReadStream,
  fstatSync,
  lstatSync,
  openSync,
  readdirSync,
  readSync,
} from 'node:fs';
import { lstat, readlink } from 'node:fs/promises';
import { availableParallelism, hostname as osHostname } from 'node:os';
import { currentUsername } from '../os-user.ts';
import { basename, dirname, matchesGlob, relative, resolve, sep } from 'node:path';
import {
  CHUNKER_MIN_SIZE,
  Chunker,
  ChunkPool,
  ChunkPoolErrorCode,
  chunkStream,
  type ChunkPoolError,
  parseChunkerPolynomial,
  type Pol,
} from '../chunker/index.ts';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { formatGoTime, sha256Hex } from '../format/ids.ts';
import { linkTargetFromBytes, nameFromBytes, nodeNameKey, type TreeNode } from '../format/tree.ts';
import type { Repository } from '../repository.ts';
import { repositorySink, saveTree, type BlobSink } from './blob-ports.ts';
import { ChunkCache } from './chunk-cache.ts';
import { DirCache, ListingDigest } from './dir-cache.ts';
import { scanDirectories, scanDirectory, type ScannedDirectory } from './dir-scan.ts';
import { readExtendedAttributes } from './extended-attributes.ts';
import { childPath, shownPath, type FsPath } from './fs-path.ts';
import { nodeFromStat, nodeFromStats, sameNode, unchangedSince } from './node-metadata.ts';

/** What a backup reports while it runs. */
export interface BackupProgress {
  files: number;
  dirs: number;
  bytesRead: number;
  bytesAdded: number;
  currentPath: string;
}

/** Options of {@link backup}. */
export interface BackupOptions {
  /** The directory to back up (absolute or relative to the working directory). */
  readonly source: string;
  /** Parent snapshot id to compare metadata against; `undefined` picks the latest of the same host and path. */
  readonly parent?: string | null;
  readonly hostname?: string;
  readonly tags?: readonly string[];
  /** restic-style exclude patterns (see {@link isExcluded}). */
  readonly excludes?: readonly string[];
  readonly onProgress?: (progress: BackupProgress) => void;
  /** Called for each entry that could not be read; the backup goes on without it. */
  readonly onError?: (path: string, error: Error) => void;
  /** Called for what an entry is kept without (an unreadable extended attribute); not a partial backup. */
  readonly onWarning?: (path: string, error: Error) => void;
  /**
   * A directory of this source's own for the chunk cache (see {@link ChunkCache}): changed
   * files are cut and hashed only where their bytes changed. Without it every changed file is
   * chunked in full; the snapshot is the same either way.
   */
  readonly chunkCacheDir?: string;
  /**
   * Record each entry's atime (restic's `--with-atime`). Without it a node's atime is its mtime,
   * as restic and rustic record it by default.
   */
  readonly withAtime?: boolean;
}

/** What a directory walk reports, before any snapshot is written. */
export type WalkSummary = Omit<BackupSummary, 'snapshotId' | 'parentSnapshotId' | 'durationMs'>;

/** A walk that has read nothing yet. */
export function emptyWalkSummary(): WalkSummary {
  return {
    filesNew: 0,
    filesChanged: 0,
    filesUnmodified: 0,
    dirsNew: 0,
    dirsChanged: 0,
    dirsUnmodified: 0,
    bytesRead: 0,
    totalBytes: 0,
    bytesAdded: 0,
    bytesStored: 0,
    bytesReused: 0,
    errors: [],
    warnings: [],
  };
}

/** Options of {@link snapshotDirectory}. */
export type SnapshotDirectoryOptions = Pick<
  BackupOptions,
  'excludes' | 'onProgress' | 'onError' | 'onWarning' | 'chunkCacheDir' | 'withAtime'
> & {
  /** The directory to read. */
  readonly source: string;
  /** The tree that held this directory in the parent snapshot: unchanged files are not read. */
  readonly parentTree?: string;
  /**
   * Worker threads that read, chunk and hash files (0: on the calling thread). Default: one
   * fewer than the cores, at least one (the walk's thread sends the blobs on: the agent's to the
   * gateway). {@link backup}, which seals in this process on libuv's thread pool, takes one per
   * core.
   */
  readonly chunkWorkers?: number;
};

/**
 * True when `relativePath` (from the backup's root, `/`-separated) matches an exclude pattern:
 * a pattern without `/` matches any entry by its name (`*.tmp`, `cache`), one with `/` matches
 * the path from the root (`/db/tmp`, `logs/*.gz`); `**` spans directories.
 */
export function isExcluded(relativePath: string, patterns: readonly string[]): boolean {
  const name = relativePath.slice(relativePath.lastIndexOf('/') + 1);
  return patterns.some((pattern) =>
    pattern.includes('/')
      ? matchesGlob(relativePath, pattern.replace(/^\/+/, ''))
      : matchesGlob(name, pattern),
  );
}

/** The outcome of a backup (restic's summary). */
export interface BackupSummary {
  snapshotId: string;
  parentSnapshotId: string | undefined;
  filesNew: number;
  filesChanged: number;
  filesUnmodified: number;
  dirsNew: number;
  dirsChanged: number;
  dirsUnmodified: number;
  bytesRead: number;
  /** Bytes of file content the snapshot holds, unchanged files included (a hardlinked file per name). */
  totalBytes: number;
  /** Plaintext bytes of blobs new to the repository. */
  bytesAdded: number;
  /** Bytes those blobs take in packs (compressed and encrypted). */
  bytesStored: number;
  /**
   * Bytes of changed files that the chunk cache found unchanged at their offset: read and
   * compared by fast digest, not cut or hashed again (part of `bytesRead`).
   */
  bytesReused: number;
  durationMs: number;
  /** Entries that could not be read (a partial backup). */
  errors: Array<{ path: string; reason: string }>;
  /** Entries kept without something (an extended attribute that could not be read). */
  warnings: Array<{ path: string; reason: string }>;
}

/**
 * Changed files read at once: the walk goes on while they are chunked and saved, and their
 * chunking (workers), sealing (workers) and the walk's own work (readdir, lstat, trees) overlap.
 * (16 were faster while small files went to the chunk workers too; since they are read here,
 * 4 and 16 take the same time: 2.1–2.3 s for 256 MiB of small files, 1.1–1.2 s for `mixed`.)
 */
const FILES_IN_FLIGHT = 4;
/**
 * Parent subtrees loaded ahead of the walk, at most this many waiting to be used (a walk depth
 * first leaves the subtrees of every level's later siblings waiting: with 64, 1,214 of the 3,244
 * trees of many-small found no room and were loaded when reached, 0.07 s of a 0.75 s backup) …
 */
const TREES_AHEAD = 256;
/** … and with at most this many nodes in those loaded (a tree of a huge directory is huge). */
const TREE_NODES_AHEAD = 65_536;
/** Directories read ahead of the walk, at most this many waiting to be used … */
const SCANS_AHEAD = 64;
/** … in jobs of at most this many directories (each job wakes two threads: ~25 µs of the walk's) … */
const SCANS_PER_JOB = 8;
/** … and this many jobs at once (libuv's thread pool has 4 threads). */
const SCANS_AT_ONCE = 3;

/** Small files read and hashed on the walk's thread until this much, then the chunk workers start. */
const INLINE_READ_BYTES = 4 * 1024 * 1024;
/**
 * Files up to this size are always read and hashed on the walk's thread: a trip to a chunk worker
 * and back (two messages, two thread wake-ups) costs more than reading and hashing one. 256 MiB of
 * small files: 2.35–2.40 s against 3.21–3.69 s through the workers.
 */
const INLINE_FILE_BYTES = 64 * 1024;
const NOATIME = fsConstants.O_NOATIME ?? 0;

/**
 * A regular file's bytes, read here (`O_NOATIME` where allowed, as the chunk workers read), in an
 * ArrayBuffer of their own; undefined when it is not a regular file (the workers read those).
 */
function readSmallFile(path: FsPath): Buffer | undefined {
  const flags = fsConstants.O_RDONLY | fsConstants.O_NONBLOCK;
  let fd: number;
  try {
    fd = openSync(path, flags | NOATIME);
  } catch (error) {
    if (NOATIME === 0 || (error as NodeJS.ErrnoException).code !== 'EPERM') throw error;
    fd = openSync(path, flags);
  }
  try {
    const stats = fstatSync(fd);
    if (!stats.isFile()) return undefined;
    // A byte more than fstat says: the read that finds the end needs no larger buffer.
    let buffer = Buffer.allocUnsafeSlow(stats.size + 1);
    let filled = 0;
    for (;;) {
      if (filled === buffer.length) {
        const grown = Buffer.allocUnsafeSlow(buffer.length * 2);
        buffer.copy(grown);
        buffer = grown;
      }
      const n = readSync(fd, buffer, filled, buffer.length - filled, filled);
      if (n === 0) break;
      filled += n;
    }
    return filled === buffer.length ? buffer : buffer.subarray(0, filled);
  } finally {
    closeSync(fd);
  }
}

/** A changed file's node, once its content is read (undefined when it could not be: reported). */
class FileRead {
  readonly node: Promise<TreeNode | undefined>;
  constructor(node: Promise<TreeNode | undefined>) {
    this.node = node;
  }
}

class BackupRun {
  readonly summary: WalkSummary = emptyWalkSummary();
  readonly #sink: BlobSink;
  readonly #pol: Pol;
  readonly #options: SnapshotDirectoryOptions;
  readonly #root: string;
  readonly #pool: ChunkPool | undefined;
  readonly #cache: ChunkCache | undefined;
  readonly #dirCache: DirCache | undefined;
  /**
   * Directories walked while their parent tried {@link #unchanged} and did not find itself
   * unchanged, by path: the parent's walk takes their result from here.
   */
  readonly #walked = new Map<string, { parentTree: string; result: { tree: string; changed: boolean } }>();
  /** Directories read by {@link #unchanged} that their walk reads from here, by path. */
  readonly #scanned = new Map<string, ScannedDirectory>();
  /** Bytes of small files read on this thread before the chunk workers started. */
  #inlineBytes = 0;
  /** Files being read ({@link FILES_IN_FLIGHT}), and the walk waiting for one of them to end. */
  #reading = 0;
  #readWaiters: Array<() => void> = [];
  /** Parent subtrees loading ahead of the walk, by tree id. */
  readonly #treesAhead = new Map<string, Promise<TreeNode[]>>();
  /** Nodes in the trees of {@link #treesAhead} loaded so far. */
  #treeNodesAhead = 0;
  /** Directories read ahead of the walk ({@link scanDirectory}), by path, not yet walked. */
  readonly #scansAhead = new Map<string, Promise<ScannedDirectory>>();
  /** Directories to read ahead, the next one in the walk's order last; and the same as a set. */
  readonly #scansWanted: string[] = [];
  readonly #scansWantedSet = new Set<string>();
  #scansRunning = 0;
  #files = 0;
  #dirs = 0;

  constructor(
    sink: BlobSink,
    options: SnapshotDirectoryOptions,
    pool: ChunkPool | undefined,
    cache: ChunkCache | undefined,
    dirCache?: DirCache,
  ) {
    this.#sink = sink;
    this.#pol = parseChunkerPolynomial(sink.chunkerPolynomial);
    this.#options = options;
    this.#root = resolve(options.source);
    this.#pool = pool;
    this.#cache = cache;
    this.#dirCache = dirCache;
  }

  /**
   * A file's chunks with their ids: from a worker thread, or read and hashed here (without a
   * pool, or a small file while no worker has started: a backup that finds a few small files
   * changed starts no thread for them).
   */
  async *#chunks(path: FsPath, size: number): AsyncGenerator<{ id: string; data: Buffer; length: number }> {
    const pool = this.#pool;
    if (
      size <= INLINE_FILE_BYTES ||
      (pool && !pool.started && size < CHUNKER_MIN_SIZE && this.#inlineBytes + size <= INLINE_READ_BYTES)
    ) {
      this.#inlineBytes += size;
      const data = readSmallFile(path);
      if (data && data.length < CHUNKER_MIN_SIZE) {
        // No cut comes before the chunker's minimum size: the file is one chunk (none when
        // empty), in the buffer it was read into. Through the chunker it was copied once more,
        // and the read buffer left to the collector, per file.
        if (data.length > 0) yield { id: sha256Hex(data), data, length: data.length };
        return;
      }
      if (data) {
        const chunker = new Chunker(this.#pol);
        const chunks = chunker.push(data);
        const last = chunker.finish();
        if (last) chunks.push(last);
        for (const chunk of chunks)
          yield { id: sha256Hex(chunk.data), data: chunk.data, length: chunk.length };
        return;
      }
    }
    if (pool) {
      this.#warmSink(pool);
      yield* pool.chunkFile(path);
      return;
    }
    const stream = createReadStream(path, { highWaterMark: 1024 * 1024 });
    for await (const chunk of chunkStream(stream, this.#pol)) {
      yield { id: sha256Hex(chunk.data), data: chunk.data, length: chunk.length };
    }
  }

  get bytesAdded(): number {
    return this.#sink.bytesAdded;
  }

  /**
   * The first file for the chunk workers starts the sink's workers too: their chunks will need
   * sealing, and a seal worker started with the first chunk left them waiting for its start (tens
   * of ms) at the end of an incremental backup.
   */
  #warmSink(pool: ChunkPool): void {
    if (!pool.started) this.#sink.warm?.();
  }

  #progress(path: string): void {
    this.#options.onProgress?.({
      files: this.#files,
      dirs: this.#dirs,
      bytesRead: this.summary.bytesRead,
      bytesAdded: this.#sink.bytesAdded,
      currentPath: path,
    });
  }

  #fail(path: string, error: unknown): void {
    const reason = (error as Error).message ?? String(error);
    this.summary.errors.push({ path, reason });
    this.#options.onError?.(path, error as Error);
  }

  /** An entry's extended attributes, what cannot be read of them reported as warnings. */
  extendedAttributes(path: FsPath): TreeNode['extended_attributes'] {
    return readExtendedAttributes(path, (error) => {
      const shown = shownPath(path);
      this.summary.warnings.push({ path: shown, reason: error.message });
      this.#options.onWarning?.(shown, error);
    });
  }

  async #content(path: FsPath, node: TreeNode, previous: TreeNode | undefined): Promise<string[]> {
    const cache = this.#cache;
    if (this.#pool && cache && (node.size ?? 0) > CHUNKER_MIN_SIZE) {
      return this.#cachedContent(this.#pool, cache, path, node, previous);
    }
    const ids: string[] = [];
    for await (const chunk of this.#chunks(path, node.size ?? 0)) {
      this.summary.bytesRead += chunk.length;
      await this.#sink.saveBlob('data', chunk.data, chunk.id, { handOver: true });
      ids.push(chunk.id);
      this.#progress(shownPath(path));
    }
    return ids;
  }

  /** {@link #content} through the chunk cache: only what changed since the last backup is cut. */
  async #cachedContent(
    pool: ChunkPool,
    cache: ChunkCache,
    path: FsPath,
    node: TreeNode,
    previous: TreeNode | undefined,
  ): Promise<string[]> {
    let previousChunks = await cache.previousChunks(node, previous);
    if (
      previousChunks &&
      !(await this.#sink.hasBlobs(
        'data',
        previousChunks.map((c) => c.id),
      ))
    )
      previousChunks = undefined;
    const ids: string[] = [];
    const cut: Array<{ length: number; digest: string }> = [];
    let bytes = 0;
    this.#warmSink(pool);
    const chunks = pool.chunkFileWithCache(path, {
      seed: cache.seed,
      ...(previousChunks ? { previous: previousChunks } : {}),
    });
    for await (const chunk of chunks) {
      this.summary.bytesRead += chunk.length;
      bytes += chunk.length;
      if (chunk.data) await this.#sink.saveBlob('data', chunk.data, chunk.id, { handOver: true });
      else this.summary.bytesReused += chunk.length;
      ids.push(chunk.id);
      cut.push({ length: chunk.length, digest: chunk.digest! });
      this.#progress(shownPath(path));
    }
    // A file that changed size while it was read is not described by what was read.
    if (bytes === node.size) cache.remember(node, ids, cut);
    return ids;
  }

  /**
   * A changed file's content read into its node, at most {@link FILES_IN_FLIGHT} files at once
   * (the walk waits here for room, then goes on while this one is read). Undefined when the file
   * could not be read (reported); the repository failing rejects, and ends the run.
   */
  async #read(path: FsPath, node: TreeNode, previous: TreeNode | undefined): Promise<FileRead> {
    while (this.#reading >= FILES_IN_FLIGHT) await new Promise<void>((wake) => this.#readWaiters.push(wake));
    this.#reading++;
    const done = async (): Promise<TreeNode | undefined> => {
      try {
        node.content = await this.#content(path, node, previous);
        if (previous?.type === 'file') this.summary.filesChanged++;
        else this.summary.filesNew++;
        this.#progress(shownPath(path));
        return node;
      } catch (error) {
        // The repository failing ends the run, and its end closes the chunk workers under the
        // files still being read: neither is the file's fault.
        if (error instanceof RepositoryError || (error as ChunkPoolError).code === ChunkPoolErrorCode.Closed)
          throw error;
        this.summary.totalBytes -= node.size ?? 0;
        this.#fail(shownPath(path), error);
        return undefined;
      } finally {
        this.#reading--;
        this.#readWaiters.shift()?.();
      }
    };
    const read = done();
    read.catch(() => undefined); // the directory awaits it (and the run ends) after its other entries
    return new FileRead(read);
  }

  /**
   * Starts loading the parent's subtrees of a directory's entries, so that the walk finds them
   * loaded when it gets there (at most {@link TREES_AHEAD} waiting, {@link TREE_NODES_AHEAD} nodes
   * in them; the rest load when reached).
   */
  #loadAhead(nodes: readonly TreeNode[], path: FsPath): void {
    const ids: string[] = [];
    for (const node of nodes) {
      if (this.#treesAhead.size + ids.length >= TREES_AHEAD || this.#treeNodesAhead >= TREE_NODES_AHEAD)
        break;
      if (node.type !== 'dir' || !node.subtree || this.#treesAhead.has(node.subtree)) continue;
      if (this.#dirCache && typeof path === 'string' && !node.nameBytes) {
        // Walked already, or likely unchanged through the directory cache: its tree is not read.
        const child = childPath(path, node) as string;
        if (this.#walked.has(child) || this.#dirCache.get(child)?.tree === node.subtree) continue;
      }
      ids.push(node.subtree);
    }
    if (ids.length === 0) return;
    const sink = this.#sink;
    const loads = sink.loadTrees ? sink.loadTrees(ids) : ids.map((id) => sink.loadTree(id));
    ids.forEach((id, i) => {
      const loading = loads[i]!;
      // Counted before the walk takes it (reactions run in order); a failure is reported when the
      // walk gets there and loads it again.
      loading.then((nodes) => (this.#treeNodesAhead += nodes.length)).catch(() => undefined);
      this.#treesAhead.set(id, loading);
    });
  }

  #excluded(shown: string): boolean {
    const excludes = this.#options.excludes;
    return excludes !== undefined && excludes.length > 0 && isExcluded(relative(this.#root, shown), excludes);
  }

  /** A directory's scan: the one started ahead of the walk, or one started now. */
  #scan(path: FsPath): Promise<ScannedDirectory> {
    if (typeof path === 'string') {
      this.#scansWantedSet.delete(path);
      const ahead = this.#scansAhead.get(path);
      if (ahead) {
        this.#scansAhead.delete(path);
        this.#pumpScans();
        return ahead;
      }
    }
    return scanDirectory!(path);
  }

  /**
   * Queues the subdirectories of a directory just read that the parent snapshot has too, to be
   * read ahead of the walk in the order the walk takes them: depth first, so they go before the
   * directories queued earlier. Directories whose path is not UTF-8 are read when the walk gets
   * there.
   */
  #scanAhead(
    path: FsPath,
    scanned: ScannedDirectory,
    known: (name: Pick<TreeNode, 'name' | 'nameBytes'>, full: string) => boolean,
  ): void {
    if (typeof path !== 'string') return;
    const children: string[] = [];
    for (let i = 0; i < scanned.size; i++) {
      if (!scanned.isDirectory(i)) continue;
      const name = scanned.name(i);
      if (name.nameBytes) continue;
      const full = childPath(path, name) as string;
      if (this.#walked.has(full) || this.#scansAhead.has(full)) continue; // walked, or read already
      if (known(name, full) && !this.#excluded(full)) children.push(full);
    }
    for (const child of children.reverse()) {
      this.#scansWanted.push(child);
      this.#scansWantedSet.add(child);
    }
    this.#pumpScans();
  }

  /**
   * Starts reading queued directories, {@link SCANS_PER_JOB} to a job, while fewer than
   * {@link SCANS_AT_ONCE} jobs run.
   */
  #pumpScans(): void {
    while (this.#scansRunning < SCANS_AT_ONCE && this.#scansAhead.size < SCANS_AHEAD) {
      const batch: string[] = [];
      while (
        batch.length < SCANS_PER_JOB &&
        this.#scansAhead.size + batch.length < SCANS_AHEAD &&
        this.#scansWanted.length > 0
      ) {
        const next = this.#scansWanted.pop()!;
        if (this.#scansWantedSet.delete(next)) batch.push(next); // else walked meanwhile
      }
      if (batch.length === 0) return;
      this.#scansRunning++;
      const scanning = scanDirectories!(batch);
      scanning
        .catch(() => undefined) // reported when the walk gets there and reads it again
        .finally(() => {
          this.#scansRunning--;
          this.#pumpScans();
        });
      batch.forEach((path, i) => {
        const one = scanning.then((scanned) => {
          const result = scanned[i]!;
          if (result instanceof Error) throw result;
          return result;
        });
        one.catch(() => undefined); // as above
        this.#scansAhead.set(path, one);
      });
    }
  }

  /**
   * Backs up one directory's entries; returns the tree id. `path` is bytes below a name that is
   * not UTF-8 (Node's fs takes either).
   */
  async dir(path: FsPath, parentTree: string | undefined): Promise<{ tree: string; changed: boolean }> {
    if (typeof path === 'string') {
      const walked = this.#walked.get(path);
      if (walked) {
        this.#walked.delete(path);
        if (walked.parentTree === parentTree) return walked.result;
      }
    }
    if (parentTree && this.#dirCache && scanDirectory && typeof path === 'string') {
      const unchanged = await this.#unchanged(this.#dirCache, path, parentTree);
      if (unchanged) return unchanged;
    }
    const problemsBefore = this.summary.errors.length + this.summary.warnings.length;
    const previous = new Map<string, TreeNode>();
    /** Nodes in the parent's tree (one not written by volback might repeat a name). */
    let previousCount = -1;
    if (parentTree) {
      try {
        const ahead = this.#treesAhead.get(parentTree);
        this.#treesAhead.delete(parentTree);
        const nodes = await (ahead ?? this.#sink.loadTree(parentTree));
        if (ahead) this.#treeNodesAhead -= nodes.length;
        for (const node of nodes) previous.set(nodeNameKey(node), node);
        previousCount = nodes.length;
        this.#loadAhead(nodes, path);
      } catch (error) {
        this.#fail(
          shownPath(path),
          new Error(`parent tree unreadable, reading everything: ${(error as Error).message}`),
        );
      }
    }
    /** In the entries' order; a changed file's node once its content is read (undefined: skipped). */
    const nodes: Array<TreeNode | Promise<TreeNode | undefined>> = [];
    let entries: Buffer[] = [];
    let scanned: ScannedDirectory | undefined;
    try {
      // Read on the thread pool where a parent tree tells what changed: there the walk only
      // compares metadata and waits for the file system. In a directory new since the parent the
      // walk reads files on this thread, and the thread pool's wake-ups cost more than they save.
      if (scanDirectory && parentTree) {
        const already = typeof path === 'string' ? this.#scanned.get(path) : undefined;
        if (already) this.#scanned.delete(path as string);
        scanned = already ?? (await this.#scan(path));
        this.#scanAhead(path, scanned, (name) => {
          const before = previous.get(nodeNameKey(name));
          return before?.type === 'dir' && !!before.subtree;
        });
      } else {
        // Synchronous, as the entries' lstat: the walk waits for it anyway, and a trip through
        // libuv's thread pool per directory left the walk idle a quarter of its time (many-small).
        entries = readdirSync(path, { encoding: 'buffer' }).sort(Buffer.compare);
      }
    } catch (error) {
      this.#fail(shownPath(path), error);
    }
    const count = scanned ? scanned.size : entries.length;
    // What the directory cache records of this directory (not of one whose path is not UTF-8).
    const listing = this.#dirCache && typeof path === 'string' ? new ListingDigest(count) : undefined;
    for (let i = 0; i < count; i++) {
      const name = scanned ? scanned.name(i) : nameFromBytes(entries[i]!);
      const full = childPath(path, name);
      const shown = shownPath(full);
      if (this.#excluded(shown)) continue;
      try {
        if (listing && scanned) scanned.addTo(listing, i);
        const found = scanned ? { directory: scanned, index: i } : undefined;
        const node = await this.entry(
          full,
          name,
          previous.get(nodeNameKey(name)),
          found,
          listing && !scanned ? listing : undefined,
        );
        if (node) nodes.push(node instanceof FileRead ? node.node : node);
      } catch (error) {
        // The repository failing (full, unreachable) ends the run; only source entries are skipped.
        if (error instanceof RepositoryError) throw error;
        this.#fail(shown, error);
      }
    }
    const read = (await Promise.all(nodes)).filter((node) => node !== undefined);
    // Every entry as the parent recorded it: the parent's tree is this one, not encoded again.
    const unchanged =
      parentTree !== undefined &&
      read.length === previousCount &&
      read.every((n) => sameNode(n, previous.get(nodeNameKey(n))));
    const tree = unchanged ? parentTree : await saveTree(this.#sink, read);
    // A directory with an entry left out or kept without part of it (or such a subdirectory) is
    // not recorded: its tree is not what a walk finding the same listing writes.
    if (listing && this.summary.errors.length + this.summary.warnings.length === problemsBefore)
      this.#dirCache!.record(path as string, this.#dirCache!.digest(listing), tree);
    return { tree, changed: tree !== parentTree };
  }

  /**
   * A directory found as the last walk left it, through the directory cache ({@link DirCache}):
   * its listing has the digest recorded with its tree in the parent snapshot, and each
   * subdirectory finds itself so too. Then its tree is the parent's, and neither the tree nor a
   * node of its entries is read or built. Undefined when not: the walk reads the directory as
   * without the cache (the scan and the subdirectories walked here are not done again).
   */
  async #unchanged(
    dirCache: DirCache,
    path: string,
    parentTree: string,
  ): Promise<{ tree: string; changed: false } | undefined> {
    const cached = dirCache.get(path);
    if (cached?.tree !== parentTree) return undefined;
    const scanned = await this.#scan(path);
    const listing = new ListingDigest(scanned.size);
    /** The subdirectories' paths (undefined: not UTF-8, never recorded), and the files' indexes. */
    const subdirs: Array<string | undefined> = [];
    const files: number[] = [];
    const excludes = (this.#options.excludes?.length ?? 0) > 0;
    let complete = true;
    for (let i = 0; i < scanned.size && complete; i++) {
      if (excludes && this.#excluded(shownPath(childPath(path, scanned.name(i))))) continue;
      complete = scanned.addTo(listing, i);
      if (scanned.isDirectory(i)) {
        const name = scanned.name(i);
        subdirs.push(name.nameBytes ? undefined : (childPath(path, name) as string));
      } else if (scanned.isFile(i)) files.push(i);
    }
    if (
      !complete ||
      dirCache.digest(listing) !== cached.digest ||
      !(await this.#sink.hasBlobs('tree', [parentTree]))
    ) {
      this.#scanned.set(path, scanned);
      return undefined;
    }
    this.#scanAhead(path, scanned, (_, full) => dirCache.get(full) !== undefined);
    for (const child of subdirs) {
      const sub = child === undefined ? undefined : dirCache.get(child);
      // A subdirectory the last walk did not record (or one whose path is not UTF-8).
      if (!sub) {
        this.#scanned.set(path, scanned);
        return undefined;
      }
      const result = await this.dir(child!, sub.tree);
      this.#walked.set(child!, { parentTree: sub.tree, result });
      if (result.changed) {
        this.#scanned.set(path, scanned);
        return undefined;
      }
    }
    // Counted as the walk would count the entries.
    for (const child of subdirs) this.#walked.delete(child!);
    this.#dirs += subdirs.length;
    this.summary.dirsUnmodified += subdirs.length;
    for (const i of files) {
      const file = scanned.fileIdentity(i);
      this.#files++;
      this.summary.totalBytes += file.size;
      this.summary.filesUnmodified++;
      if (file.size > CHUNKER_MIN_SIZE) this.#cache?.keep(file);
    }
    dirCache.record(path, cached.digest, parentTree);
    this.#progress(path);
    return { tree: parentTree, changed: false };
  }

  /**
   * One entry's node. A changed file's comes as a promise (resolved once its content is read,
   * undefined when it could not be: reported): the walk goes on meanwhile.
   */
  async entry(
    path: FsPath,
    name: Pick<TreeNode, 'name' | 'nameBytes'>,
    previous: TreeNode | undefined,
    scanned?: { directory: ScannedDirectory; index: number },
    listing?: ListingDigest,
  ): Promise<TreeNode | FileRead | undefined> {
    // Read with its directory; else synchronous: the walk awaits each entry in turn, and a trip
    // through libuv's thread pool costs more than the lstat itself.
    let node: TreeNode;
    if (scanned) {
      node = nodeFromStat(name.name, scanned.directory.stat(scanned.index, path), this.#options.withAtime);
    } else {
      const stats = lstatSync(path, { bigint: true });
      listing?.addStats(name.nameBytes ?? name.name, stats);
      node = nodeFromStats(name.name, stats, this.#options.withAtime);
    }
    const listsAttributes = !scanned || scanned.directory.mayHaveAttributes(scanned.index);
    if (name.nameBytes) node.nameBytes = name.nameBytes;
    switch (node.type) {
      case 'file': {
        this.#files++;
        this.summary.totalBytes += node.size ?? 0;
        // Read before the content: the node records them as the walk found the file, and before
        // `content` is set: a tree's JSON keeps the order the fields were set in, and an unchanged
        // file must encode as the same file read again does.
        const attributes = listsAttributes ? this.extendedAttributes(path) : undefined;
        if (attributes) node.extended_attributes = attributes;
        if (unchangedSince(previous, node) && (await this.#sink.hasBlobs('data', previous!.content!))) {
          node.content = previous!.content!;
          // Only files of several chunks have an entry (ChunkCache.remember).
          if (node.content.length > 1) this.#cache?.keep(node);
          this.summary.filesUnmodified++;
          this.#progress(shownPath(path));
          return node;
        }
        return this.#read(path, node, previous);
      }
      case 'dir': {
        this.#dirs++;
        const sub = await this.dir(
          path,
          previous?.type === 'dir' ? (previous.subtree ?? undefined) : undefined,
        );
        node.subtree = sub.tree;
        node.content = null;
        if (!previous) this.summary.dirsNew++;
        else if (sub.changed) this.summary.dirsChanged++;
        else this.summary.dirsUnmodified++;
        break;
      }
      case 'symlink':
        Object.assign(node, linkTargetFromBytes(await readlink(path, { encoding: 'buffer' })));
        break;
      case 'socket':
        return undefined; // restic does not back up sockets
      default:
        break;
    }
    // Read every time (a file's above): the node carries today's.
    const attributes = listsAttributes ? this.extendedAttributes(path) : undefined;
    if (attributes) node.extended_attributes = attributes;
    if (node.content === undefined) node.content = null;
    this.#progress(shownPath(path));
    return node;
  }
}

/**
 * Reads a directory into trees through a sink: files are chunked with the repository's
 * polynomial, files unchanged since the parent tree (same mtime, ctime, size, inode) are not read
 * again. Returns the directory's tree and its own metadata node (without name changes); nothing
 * is durable until the sink is drained and a snapshot refers to the tree.
 */
export async function snapshotDirectory(
  sink: BlobSink,
  options: SnapshotDirectoryOptions,
): Promise<{ tree: string; root: TreeNode; summary: WalkSummary }> {
  const source = resolve(options.source);
  const rootStats = await lstat(source, { bigint: true }).catch((cause: Error) => {
    throw new RepositoryError(RepositoryErrorCode.FileNotFound, `cannot read ${source}: ${cause.message}`, {
      cause,
    });
  });
  if (!rootStats.isDirectory())
    throw new RepositoryError(RepositoryErrorCode.FileNotFound, `${source} is not a directory`);
  const workers = options.chunkWorkers ?? Math.max(1, availableParallelism() - 1);
  const pool =
    workers > 0 ? new ChunkPool(parseChunkerPolynomial(sink.chunkerPolynomial), { workers }) : undefined;
  const cache = pool && options.chunkCacheDir ? await ChunkCache.open(options.chunkCacheDir) : undefined;
  // A walk recording atimes finds every directory read since changed: no directory cache.
  const dirCache =
    options.chunkCacheDir && !options.withAtime
      ? await DirCache.open(options.chunkCacheDir, JSON.stringify(options.excludes ?? []))
      : undefined;
  const run = new BackupRun(sink, { ...options, source }, pool, cache, dirCache);
  let tree: string;
  let walked = false;
  try {
    ({ tree } = await run.dir(source, options.parentTree));
    await sink.drain();
    walked = true;
    await dirCache?.save();
  } finally {
    await pool?.close();
    // Entries of files this walk did not see go only when it saw everything.
    await cache?.close(walked);
  }
  const root = nodeFromStats(basename(source) || '/', rootStats, options.withAtime);
  const rootAttributes = run.extendedAttributes(source);
  if (rootAttributes) root.extended_attributes = rootAttributes;
  root.subtree = tree;
  root.content = null;
  run.summary.bytesAdded = sink.bytesAdded;
  return { tree, root, summary: run.summary };
}

/**
 * Backs up a directory tree into a snapshot, the way restic does: the snapshot's tree holds the
 * source's absolute path (each parent directory a node), files are chunked with the repository's
 * polynomial, and files unchanged since the parent snapshot (same mtime, ctime, size, inode) are
 * not read again. Packs, then the index, then the snapshot are written; until the snapshot file
 * exists nothing of this run is visible.
 */
export async function backup(repo: Repository, options: BackupOptions): Promise<BackupSummary> {
  const started = Date.now();
  const source = resolve(options.source);
  const host = options.hostname ?? osHostname();

  // The walk starts while the lock's second check waits; nothing is indexed before it passed.
  const lock = await repo.lock(false, { confirmLater: true });
  const storedBefore = repo.storedBytes;
  try {
    await repo.loadIndex();
    let parentId: string | undefined;
    if (options.parent) parentId = (await repo.findSnapshot(options.parent)).id;
    else if (options.parent === undefined) {
      const same = (await repo.listSnapshots()).filter(
        (s) =>
          s.snapshot.hostname === host && s.snapshot.paths.length === 1 && s.snapshot.paths[0] === source,
      );
      parentId = same.at(-1)?.id;
    }
    // Find the parent's tree for the source directory itself (below the path's parent dirs).
    const parts = source.split(sep).filter(Boolean);
    let parentTree: string | undefined;
    if (parentId) {
      parentTree = (await repo.findSnapshot(parentId)).snapshot.tree;
      for (const part of parts) {
        if (!parentTree) break;
        const node: TreeNode | undefined = (await repo.loadTree(parentTree)).find((n) => n.name === part);
        parentTree = node?.type === 'dir' ? (node.subtree ?? undefined) : undefined;
      }
    }

    const sink = repositorySink(repo);
    const walked = await snapshotDirectory(sink, {
      source,
      // One per core: the walk's thread mostly waits while large files are read, and the blobs
      // are sealed on libuv's thread pool; with one fewer a full backup of 256 MiB on 2 cores left
      // a core idle a third of the time (`mixed` 1.34-1.55 s against 1.14-1.28 s with two,
      // `media` 0.96-1.13 against 0.83-0.93, `database` 0.97-1.23 against 0.92-1.09; peak RSS
      // 30-40 MiB more). The agent keeps one fewer: end to end on the same 2 cores, with the
      // gateway sealing beside it, its full backups took 8-16 % longer with two.
      chunkWorkers: Math.max(1, availableParallelism()),
      ...(parentTree ? { parentTree } : {}),
      ...(options.excludes ? { excludes: options.excludes } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.onError ? { onError: options.onError } : {}),
      ...(options.onWarning ? { onWarning: options.onWarning } : {}),
      ...(options.chunkCacheDir ? { chunkCacheDir: options.chunkCacheDir } : {}),
      ...(options.withAtime ? { withAtime: true } : {}),
    });
    let tree = walked.tree;
    // Wrap the source in its parent directories, up to /, as restic stores absolute paths.
    if (source !== dirname(source)) tree = await saveTree(sink, [{ ...walked.root, name: basename(source) }]);
    for (let dir = dirname(source); dir !== dirname(dir); dir = dirname(dir)) {
      const node = nodeFromStats(basename(dir), await lstat(dir, { bigint: true }), options.withAtime);
      const attributes = readExtendedAttributes(dir, (error) => {
        walked.summary.warnings.push({ path: dir, reason: error.message });
        options.onWarning?.(dir, error);
      });
      if (attributes) node.extended_attributes = attributes;
      node.subtree = tree;
      node.content = null;
      tree = await saveTree(sink, [node]);
    }
    await lock.confirmed;
    await repo.flush();
    const summary = walked.summary;
    summary.bytesStored = repo.storedBytes - storedBefore;
    const snapshotId = await repo.saveSnapshot({
      time: formatGoTime(BigInt(started) * 1_000_000n),
      ...(parentId ? { parent: parentId } : {}),
      tree,
      paths: [source],
      hostname: host,
      username: currentUsername(),
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      ...(options.tags?.length ? { tags: [...options.tags] } : {}),
      program_version: 'volback',
    });
    return { ...summary, snapshotId, parentSnapshotId: parentId, durationMs: Date.now() - started };
  } finally {
    await lock.release();
  }
}
