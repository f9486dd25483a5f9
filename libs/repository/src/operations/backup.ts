import { createReadStream } from 'node:fs';
import { lstat, readdir, readlink } from 'node:fs/promises';
import { availableParallelism, hostname as osHostname } from 'node:os';
import { currentUsername } from '../os-user.ts';
import { basename, dirname, matchesGlob, relative, resolve, sep } from 'node:path';
import { ChunkPool, chunkStream, parseChunkerPolynomial, type Pol } from '../chunker/index.ts';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { formatGoTime, sha256Hex } from '../format/ids.ts';
import { linkTargetFromBytes, nameFromBytes, nodeNameKey, type TreeNode } from '../format/tree.ts';
import type { Repository } from '../repository.ts';
import { repositorySink, saveTree, type BlobSink } from './blob-ports.ts';
import { readExtendedAttributes } from './extended-attributes.ts';
import { childPath, shownPath, type FsPath } from './fs-path.ts';
import { nodeFromStats, unchangedSince } from './node-metadata.ts';

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
    errors: [],
    warnings: [],
  };
}

/** Options of {@link snapshotDirectory}. */
export type SnapshotDirectoryOptions = Pick<
  BackupOptions,
  'excludes' | 'onProgress' | 'onError' | 'onWarning'
> & {
  /** The directory to read. */
  readonly source: string;
  /** The tree that held this directory in the parent snapshot: unchanged files are not read. */
  readonly parentTree?: string;
  /**
   * Worker threads that read, chunk and hash files (0: on the calling thread). Default: one
   * fewer than the cores, at least one.
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
  durationMs: number;
  /** Entries that could not be read (a partial backup). */
  errors: Array<{ path: string; reason: string }>;
  /** Entries kept without something (an extended attribute that could not be read). */
  warnings: Array<{ path: string; reason: string }>;
}

class BackupRun {
  readonly summary: WalkSummary = emptyWalkSummary();
  readonly #sink: BlobSink;
  readonly #pol: Pol;
  readonly #options: SnapshotDirectoryOptions;
  readonly #root: string;
  readonly #pool: ChunkPool | undefined;
  #files = 0;
  #dirs = 0;

  constructor(sink: BlobSink, options: SnapshotDirectoryOptions, pool: ChunkPool | undefined) {
    this.#sink = sink;
    this.#pol = parseChunkerPolynomial(sink.chunkerPolynomial);
    this.#options = options;
    this.#root = resolve(options.source);
    this.#pool = pool;
  }

  /** A file's chunks with their ids: from a worker thread, or read and hashed here. */
  async *#chunks(path: FsPath): AsyncGenerator<{ id: string; data: Buffer; length: number }> {
    if (this.#pool) {
      yield* this.#pool.chunkFile(path);
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

  async #content(path: FsPath): Promise<string[]> {
    const ids: string[] = [];
    for await (const chunk of this.#chunks(path)) {
      this.summary.bytesRead += chunk.length;
      await this.#sink.saveBlob('data', chunk.data, chunk.id, { handOver: true });
      ids.push(chunk.id);
      this.#progress(shownPath(path));
    }
    return ids;
  }

  /**
   * Backs up one directory's entries; returns the tree id. `path` is bytes below a name that is
   * not UTF-8 (Node's fs takes either).
   */
  async dir(path: FsPath, parentTree: string | undefined): Promise<{ tree: string; changed: boolean }> {
    const previous = new Map<string, TreeNode>();
    if (parentTree) {
      try {
        for (const node of await this.#sink.loadTree(parentTree)) previous.set(nodeNameKey(node), node);
      } catch (error) {
        this.#fail(
          shownPath(path),
          new Error(`parent tree unreadable, reading everything: ${(error as Error).message}`),
        );
      }
    }
    const nodes: TreeNode[] = [];
    let entries: Buffer[];
    try {
      entries = (await readdir(path, { encoding: 'buffer' })).sort(Buffer.compare);
    } catch (error) {
      this.#fail(shownPath(path), error);
      entries = [];
    }
    for (const raw of entries) {
      const name = nameFromBytes(raw);
      const full = childPath(path, name);
      const shown = shownPath(full);
      if (this.#options.excludes?.length && isExcluded(relative(this.#root, shown), this.#options.excludes))
        continue;
      try {
        const node = await this.entry(full, name, previous.get(nodeNameKey(name)));
        if (node) nodes.push(node);
      } catch (error) {
        // The repository failing (full, unreachable) ends the run; only source entries are skipped.
        if (error instanceof RepositoryError) throw error;
        this.#fail(shown, error);
      }
    }
    const tree = await saveTree(this.#sink, nodes);
    return { tree, changed: tree !== parentTree };
  }

  async entry(
    path: FsPath,
    name: Pick<TreeNode, 'name' | 'nameBytes'>,
    previous: TreeNode | undefined,
  ): Promise<TreeNode | undefined> {
    const stats = await lstat(path, { bigint: true });
    const node = nodeFromStats(name.name, stats);
    if (name.nameBytes) node.nameBytes = name.nameBytes;
    switch (node.type) {
      case 'file': {
        this.#files++;
        if (unchangedSince(previous, node) && (await this.#sink.hasBlobs('data', previous!.content!))) {
          node.content = previous!.content!;
          this.summary.filesUnmodified++;
        } else {
          node.content = await this.#content(path);
          if (previous?.type === 'file') this.summary.filesChanged++;
          else this.summary.filesNew++;
        }
        this.summary.totalBytes += node.size ?? 0;
        break;
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
    // Read every time, also for a file unchanged since the parent: the node carries today's.
    const attributes = this.extendedAttributes(path);
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
  const run = new BackupRun(sink, { ...options, source }, pool);
  let tree: string;
  try {
    ({ tree } = await run.dir(source, options.parentTree));
    await sink.drain();
  } finally {
    await pool?.close();
  }
  const root = nodeFromStats(basename(source) || '/', rootStats);
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

  const lock = await repo.lock(false);
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
      ...(parentTree ? { parentTree } : {}),
      ...(options.excludes ? { excludes: options.excludes } : {}),
      ...(options.onProgress ? { onProgress: options.onProgress } : {}),
      ...(options.onError ? { onError: options.onError } : {}),
      ...(options.onWarning ? { onWarning: options.onWarning } : {}),
    });
    let tree = walked.tree;
    // Wrap the source in its parent directories, up to /, as restic stores absolute paths.
    if (source !== dirname(source)) tree = await saveTree(sink, [{ ...walked.root, name: basename(source) }]);
    for (let dir = dirname(source); dir !== dirname(dir); dir = dirname(dir)) {
      const node = nodeFromStats(basename(dir), await lstat(dir, { bigint: true }));
      const attributes = readExtendedAttributes(dir, (error) => {
        walked.summary.warnings.push({ path: dir, reason: error.message });
        options.onWarning?.(dir, error);
      });
      if (attributes) node.extended_attributes = attributes;
      node.subtree = tree;
      node.content = null;
      tree = await saveTree(sink, [node]);
    }
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
