import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, closeSync, constants, lchownSync, mkdirSync, openSync, rmSync, writeSync } from 'node:fs';
import { link, lstat, mkdir, open, rename, symlink, unlink, rm, type FileHandle } from 'node:fs/promises';
import { resolve } from 'node:path';
import { promisify } from 'node:util';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { goQuote } from '../format/go-quote.ts';
import { parseGoTime } from '../format/ids.ts';
import { release } from '../format/release.ts';
import { nodeLinkTarget, nodeNameKey, posixPermissionsFromGo, type TreeNode } from '../format/tree.ts';
import type { Repository } from '../repository.ts';
import { loadBlobsFrom, type BlobSource } from './blob-ports.ts';
import { restoreExtendedAttributes } from './extended-attributes.ts';
import { setFileTimes } from './file-times.ts';
import { contentLost, writeRestoredFiles, writesWhole } from './file-write.ts';
import { childPath, shownPath, type FsPath } from './fs-path.ts';

const run = promisify(execFile);

/** Options of {@link restore}. */
export interface RestoreOptions {
  /** Snapshot id, unique prefix, or `latest`. */
  readonly snapshot: string;
  /** Directory to restore into; created when missing. Nothing is written outside it. */
  readonly target: string;
  /** Only this path inside the snapshot (e.g. `/data/db`); its contents land in the target. */
  readonly path?: string;
  /**
   * The snapshot directory the target stands for; `path` must be at or below it. By default
   * `path` itself, so its contents land in the target (`restic restore id:path`). With a `root`
   * above `path`, the path lands at its own place below the target (restic's `--include`): the
   * directories between are created when missing, with the metadata the snapshot records.
   */
  readonly root?: string;
  readonly onProgress?: (progress: { files: number; bytes: number; currentPath: string }) => void;
}

/** The outcome of a restore. */
export interface RestoreSummary {
  snapshotId: string;
  files: number;
  dirs: number;
  bytes: number;
  durationMs: number;
  /** Entries that could not be restored (damaged data, refused names); empty on success. */
  errors: Array<{ path: string; reason: string }>;
  /** Entries restored without something (extended attributes the target refused). */
  warnings: Array<{ path: string; reason: string }>;
}

/**
 * A name from a tree is only used when it is one plain path component: not empty, not `.` or
 * `..`, no `/`, no NUL. Anything else is a malicious or broken tree. Bytes (a name that is not
 * UTF-8) are checked as bytes.
 */
export function assertSafeName(name: string | Buffer): void {
  const unsafe =
    typeof name === 'string'
      ? name === '' || name === '.' || name === '..' || name.includes('/') || name.includes('\0')
      : name.length === 0 ||
        (name.length <= 2 && name.every((byte) => byte === 0x2e)) ||
        name.includes(0x2f) ||
        name.includes(0);
  if (unsafe) {
    const shown = typeof name === 'string' ? JSON.stringify(name) : `"${goQuote(name)}"`;
    throw new RepositoryError(RepositoryErrorCode.UnsafePath, `refusing tree entry name ${shown}`);
  }
}

/**
 * Checks a tree's entries before any of them is written: every name is safe and none appears
 * twice (a symlink followed by a directory of the same name would otherwise lead outside).
 */
export function assertSafeTree(nodes: readonly TreeNode[], treeId: string): void {
  const seen = new Set<string>();
  for (const node of nodes) {
    assertSafeName(node.nameBytes ?? node.name);
    const key = nodeNameKey(node);
    if (seen.has(key)) {
      throw new RepositoryError(
        RepositoryErrorCode.UnsafePath,
        `tree ${treeId} holds ${JSON.stringify(node.name)} twice`,
      );
    }
    seen.add(key);
  }
}

/** Walks from a snapshot's root tree to the tree of `path` inside it. */
export async function resolveTreePath(
  repo: Pick<BlobSource, 'loadTree'>,
  rootTree: string,
  path: string,
): Promise<{ tree: string; node?: TreeNode }> {
  let tree = rootTree;
  let node: TreeNode | undefined;
  for (const part of path.split('/').filter(Boolean)) {
    const found: TreeNode | undefined = (await repo.loadTree(tree)).find((n) => n.name === part);
    if (!found) throw new RepositoryError(RepositoryErrorCode.FileNotFound, `${path} is not in the snapshot`);
    node = found;
    if (found.type !== 'dir') return { tree: '', node };
    tree = found.subtree!;
  }
  return { tree, ...(node ? { node } : {}) };
}

/** `path` as names below `root`, or FileNotFound when it is not below it. */
export function namesBelow(root: string, path: string): string[] {
  const rootNames = root.split('/').filter(Boolean);
  const names = path.split('/').filter(Boolean);
  if (rootNames.some((name, i) => names[i] !== name)) {
    throw new RepositoryError(RepositoryErrorCode.FileNotFound, `${path} is not below ${root}`);
  }
  return names.slice(rootNames.length);
}

/** The entry `name` of a tree, checked like every tree a restore reads. */
export async function childNode(
  source: Pick<BlobSource, 'loadTree'>,
  tree: string,
  name: string,
  path: string,
): Promise<TreeNode> {
  const nodes = await source.loadTree(tree);
  assertSafeTree(nodes, tree);
  const found = nodes.find((n) => n.name === name);
  if (!found) throw new RepositoryError(RepositoryErrorCode.FileNotFound, `${path} is not in the snapshot`);
  return found;
}

/**
 * The directory `relative` below `base`, reached without following a symlink: each missing
 * directory on the way is created (mode 0755) when `create`, else the answer is undefined.
 * A symlink, or anything but a directory, on the way is {@link RepositoryErrorCode.UnsafePath}.
 */
export async function directoryBelow(
  base: string,
  relative: string,
  create: boolean,
): Promise<string | undefined> {
  let path = resolve(base);
  for (const name of relative.split('/').filter((part) => part !== '' && part !== '.')) {
    assertSafeName(name);
    path = resolve(path, name);
    let stats = await lstat(path).catch((error: NodeJS.ErrnoException) => {
      if (error.code !== 'ENOENT') throw error;
      return undefined;
    });
    if (!stats) {
      if (!create) return undefined;
      await mkdir(path, { mode: 0o755 }).catch((error: NodeJS.ErrnoException) => {
        if (error.code !== 'EEXIST') throw error;
      });
      stats = await lstat(path);
    }
    if (!stats.isDirectory()) {
      throw new RepositoryError(
        RepositoryErrorCode.UnsafePath,
        `${path} is not a directory (a symlink is never followed): refusing to restore through it`,
      );
    }
  }
  return path;
}

/**
 * Small files are restored in batches: the blobs of a batch are fetched in one go (neighbouring
 * blobs of a pack in one read, opened together in a worker), not one read per file. A batch
 * ends at this many files …
 */
const BATCH_FILES = 128;
/** … or this many content bytes (a larger file is a batch of its own). */
const BATCH_BYTES = 4 * 1024 * 1024;
/** Files of at most this many bytes (and one blob) are written with synchronous calls. */
const SMALL_FILE = 256 * 1024;
/** Batches restored at once, across directories: their reads, decryption and writes overlap. */
const BATCHES_AT_ONCE = 4;
/** Subtrees of a directory loaded ahead of the walk, together (then one more per subtree walked). */
const TREES_AHEAD = 16;
/**
 * The one more is skipped while the subtrees of that directory loaded ahead and not yet walked
 * hold this many entries: sixteen directories of 795 subdirectories each stayed loaded, 12,700
 * entries, through a restore of a 4 GiB volume. A tree skipped is read when the walk gets there.
 */
const ENTRIES_AHEAD = 4096;

/** How many times each id occurs in `ids`. */
function usesOf(ids: readonly string[]): Map<string, number> {
  const uses = new Map<string, number>();
  for (const id of ids) uses.set(id, (uses.get(id) ?? 0) + 1);
  return uses;
}

/**
 * Counts a blob taken from a stream against `uses` ({@link usesOf} its ids): true when the stream
 * yields it no more, so that its buffer may be freed once written. A stream yields one buffer for
 * an id it repeats: freed at an earlier place, a later file would be written from an empty one.
 */
function lastUse(uses: Map<string, number>, id: string): boolean {
  const left = (uses.get(id) ?? 1) - 1;
  uses.set(id, left);
  return left === 0;
}

/** Whether this process runs as root (asked once: a restore of small files asked it per file). */
let asRoot: boolean | undefined;

/**
 * Gives a restored entry the owner (when running as root), extended attributes, mode and times
 * its node records; a symlink's mode is left alone and its own attributes and times are set, not
 * its target's. Attributes the target refuses go to `warn` and the rest is still applied.
 */
export async function applyNodeMetadata(
  node: TreeNode,
  path: FsPath,
  warn: (error: Error) => void = () => undefined,
): Promise<void> {
  const isLink = node.type === 'symlink';
  // Synchronous, as the attributes and times: each call is a few microseconds on a local disk,
  // less than a round trip through libuv's thread pool (a restore of small files does little else).
  asRoot ??= process.getuid?.() === 0;
  if (asRoot) {
    try {
      lchownSync(path, node.uid, node.gid);
    } catch {
      // an owner the target refuses is left as it is
    }
  }
  // After chown, which clears security.capability; before chmod, as user.* needs write permission.
  restoreExtendedAttributes(node, path, warn);
  if (!isLink && node.mode !== undefined) chmodSync(path, posixPermissionsFromGo(node.mode));
  if (node.mtime) {
    const mtime = parseGoTime(node.mtime);
    await setFileTimes(path, node.atime ? parseGoTime(node.atime) : mtime, mtime, isLink);
  }
}

/**
 * Makes a FIFO or device node with `command -- <path> ...args` (Node has no mkfifo or mknod).
 * A command line cannot hold bytes that are not UTF-8, so such a path is made under a temporary
 * name in its directory, reached through /proc's link to a descriptor of it, then renamed.
 */
async function makeNode(path: FsPath, command: string, args: readonly string[]): Promise<void> {
  if (typeof path === 'string') {
    await run(command, ['--', path, ...args]);
    return;
  }
  const slash = path.lastIndexOf(0x2f);
  const dir = slash === 0 ? Buffer.from('/') : path.subarray(0, slash);
  const temporary = `.volback-restore-${randomBytes(8).toString('hex')}`;
  const handle = await open(dir, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await run(command, ['--', `/proc/${process.pid}/fd/${handle.fd}/${temporary}`, ...args]);
    const made = childPath(dir, { name: temporary });
    await rename(made, path).catch(async (error: unknown) => {
      await rm(made, { force: true });
      throw error;
    });
  } finally {
    await handle.close();
  }
}

/** The error of a file whose content could not be written (nothing of it is left). */
function notRestored(error: unknown): RepositoryError {
  return new RepositoryError(
    ((error as RepositoryError).code as RepositoryErrorCode | undefined) ?? RepositoryErrorCode.Malformed,
    `${(error as Error).message}; the file was not restored`,
    { cause: error },
  );
}

/** A file waiting in a batch. */
interface FileJob {
  readonly node: TreeNode;
  readonly path: FsPath;
  /** Its directory was created by this run: nothing is there to replace. */
  readonly fresh: boolean;
}

/**
 * One restore: the walk goes through the trees in order, creating directories, links and special
 * files as it goes, and hands files to batches that run several at once across directories;
 * directories get their metadata in one pass at the end ({@link finish}), deepest first.
 */
class RestoreRun {
  readonly summary = {
    files: 0,
    dirs: 0,
    bytes: 0,
    errors: [] as Array<{ path: string; reason: string }>,
    warnings: [] as Array<{ path: string; reason: string }>,
  };
  readonly #repo: BlobSource;
  readonly #options: Pick<RestoreOptions, 'onProgress'>;
  /** (device, inode) → the first restored path (undefined if it failed), to recreate hardlinks. */
  readonly #links = new Map<string, Promise<FsPath | undefined>>();
  #batch: FileJob[] = [];
  #batchBytes = 0;
  readonly #batches = new Set<Promise<void>>();
  /** Works {@link #start}ed, numbered from 1 in order, and the most of the first ones all done. */
  #started = 0;
  #doneThrough = 0;
  /** Works done after one still running. */
  readonly #doneAhead = new Set<number>();
  /**
   * Restored directories waiting for their metadata, each after everything below it: `after` is
   * the last work that may write into it or below it. A directory gets its metadata as soon as
   * those are done, not at the end of the restore: a volume's tens of thousands of directories
   * were all held until then.
   */
  readonly #dirs: Array<{ node: TreeNode; path: FsPath; after: number }> = [];
  /** Directories' metadata being set, one at a time. */
  #metadata: Promise<void> = Promise.resolve();
  /**
   * Subtrees loading ahead of the walk; once loaded, their entries, counted in `level` too (the
   * entries of one directory's subtrees loaded ahead and not walked yet).
   */
  readonly #trees = new Map<
    string,
    { loading: Promise<TreeNode[]>; entries: number; level: { entries: number } }
  >();
  #unsafe: { error: unknown } | undefined;
  /** Whether the source was asked to open blobs on every core ({@link BlobSource.openWithEveryCore}). */
  #everyCore = false;

  constructor(repo: BlobSource, options: Pick<RestoreOptions, 'onProgress'>) {
    this.#repo = repo;
    this.#options = options;
  }

  #fail(path: FsPath, error: unknown): void {
    this.summary.errors.push({ path: shownPath(path), reason: (error as Error).message ?? String(error) });
  }

  #warn(path: FsPath): (error: Error) => void {
    return (error) => this.summary.warnings.push({ path: shownPath(path), reason: error.message });
  }

  /** Restores one entry, recording its failure; unsafe paths end the whole restore. */
  async #guarded(node: TreeNode, path: FsPath, fresh = false): Promise<void> {
    try {
      await this.node(node, path, fresh);
    } catch (error) {
      if ((error as RepositoryError).code === RepositoryErrorCode.UnsafePath) throw error;
      this.#fail(path, error);
    }
  }

  #loadTree(id: string): Promise<TreeNode[]> {
    const ahead = this.#trees.get(id);
    this.#trees.delete(id);
    if (!ahead) return this.#repo.loadTree(id);
    ahead.level.entries -= ahead.entries;
    return ahead.loading;
  }

  /**
   * Starts loading subtrees the walk will want, together where the source can; their entries
   * count in `level` once loaded.
   */
  #loadAhead(wanted: ReadonlyArray<string | null | undefined>, level: { entries: number }): void {
    const ids = wanted.filter((id): id is string => !!id && !this.#trees.has(id));
    if (ids.length === 0) return;
    const repo = this.#repo;
    const loads = repo.loadTrees ? repo.loadTrees(ids) : ids.map((id) => repo.loadTree(id));
    ids.forEach((id, i) => {
      const loading = { loading: loads[i]!, entries: 0, level };
      loading.loading.then(
        (nodes) => {
          if (this.#trees.get(id) !== loading) return; // walked already
          loading.entries = nodes.length;
          level.entries += nodes.length;
        },
        () => undefined, // awaited when the walk gets there
      );
      this.#trees.set(id, loading);
    });
  }

  /**
   * Restores a tree's entries into `dir`, which this run created (`fresh`) or checked to be a
   * real directory. Files go to batches that may still be writing when this returns.
   */
  async tree(treeId: string, dir: FsPath, fresh = false): Promise<void> {
    const nodes = await this.#loadTree(treeId);
    assertSafeTree(nodes, treeId);
    const subtrees = nodes.filter((n) => n.type === 'dir').map((n) => n.subtree);
    let descended = 0;
    const ahead = { entries: 0 };
    this.#loadAhead(subtrees.slice(0, TREES_AHEAD), ahead);
    for (const node of nodes) {
      if (this.#unsafe) return;
      const path = childPath(dir, node);
      if (node.type === 'file') await this.#enqueue({ node, path, fresh });
      else {
        const next = node.type === 'dir' ? subtrees[TREES_AHEAD + descended++] : undefined;
        if (next && ahead.entries < ENTRIES_AHEAD) this.#loadAhead([next], ahead);
        await this.#guarded(node, path, fresh);
      }
    }
  }

  async #enqueue(job: FileJob): Promise<void> {
    if (this.#linkKey(job.node)) {
      // A hard link waits for another name of its inode: never while holding a batch's blobs.
      await this.#flushBatch();
      return this.#start(() => this.#guarded(job.node, job.path, job.fresh));
    }
    const size = job.node.size ?? 0;
    if (this.#batch.length > 0 && this.#batchBytes + size > BATCH_BYTES) await this.#flushBatch();
    this.#batch.push(job);
    this.#batchBytes += size;
    if (this.#batch.length >= BATCH_FILES || this.#batchBytes >= BATCH_BYTES) await this.#flushBatch();
  }

  /** Starts the batch gathered so far. */
  async #flushBatch(): Promise<void> {
    const files = this.#batch;
    this.#batch = [];
    this.#batchBytes = 0;
    if (files.length > 0) await this.#start(() => this.#restoreBatch(files));
  }

  /** Starts `work` once fewer than {@link BATCHES_AT_ONCE} batches run. */
  async #start(work: () => Promise<void>): Promise<void> {
    // Numbered now: the batch being gathered is always the next work ({@link #waitingDir}).
    const number = ++this.#started;
    while (this.#batches.size >= BATCHES_AT_ONCE) await Promise.race(this.#batches);
    const running = work().catch((error: unknown) => {
      this.#unsafe ??= { error };
    });
    this.#batches.add(running);
    void running.finally(() => {
      this.#batches.delete(running);
      this.#doneAhead.add(number);
      while (this.#doneAhead.delete(this.#doneThrough + 1)) this.#doneThrough++;
      this.#setDirMetadata();
    });
  }

  /** A directory whose entries are all restored or in works: its metadata once they are done. */
  #waitingDir(node: TreeNode, path: FsPath): void {
    // Its last files may be in the batch being gathered, which starts as the next work.
    this.#dirs.push({ node, path, after: this.#started + (this.#batch.length > 0 ? 1 : 0) });
    this.#setDirMetadata();
  }

  /** Sets the metadata of the directories whose works are all done, children before parents. */
  #setDirMetadata(): Promise<void> {
    if (!this.#dirReady()) return this.#metadata;
    this.#metadata = this.#metadata.then(async () => {
      for (let dir = this.#dirReady(); dir; dir = this.#dirReady()) {
        this.#dirs.shift();
        try {
          await applyNodeMetadata(dir.node, dir.path, this.#warn(dir.path));
        } catch (error) {
          this.#fail(dir.path, error);
        }
      }
    });
    return this.#metadata;
  }

  /** The next directory waiting, if its works are done (and the restore has not failed). */
  #dirReady(): { node: TreeNode; path: FsPath } | undefined {
    const next = this.#dirs[0];
    return next && next.after <= this.#doneThrough && !this.#unsafe ? next : undefined;
  }

  /**
   * Restores a batch's files in order from one stream of their blobs. Once a file fails the
   * stream is closed (it stopped anywhere in that file's blobs) before the rest are restored,
   * each from its own blobs: a batch never holds two streams.
   */
  async #restoreBatch(files: readonly FileJob[]): Promise<void> {
    const ids = files.flatMap((f) => f.node.content ?? []);
    const uses = usesOf(ids);
    const stream = loadBlobsFrom(
      this.#repo,
      'data',
      ids,
      files.reduce((bytes, f) => bytes + (f.node.size ?? 0), 0),
    )[Symbol.asyncIterator]();
    /**
     * Small files read from the stream, to be written together ({@link writeRestoredFiles});
     * `last`: their blob's buffer is freed once they are written ({@link lastUse}).
     */
    let whole: Array<{ path: FsPath; data: Buffer; node: TreeNode; last: boolean }> = [];
    const writeWhole = async () => {
      if (whole.length === 0) return;
      const written = whole;
      whole = [];
      asRoot ??= process.getuid?.() === 0;
      const results = await writeRestoredFiles(written, asRoot);
      for (const [i, { path, data }] of written.entries()) {
        const error = results[i];
        if (error && contentLost(error)) {
          this.#fail(path, notRestored(error));
          continue;
        }
        this.#restored(path, data.length);
        if (error) this.#fail(path, error); // its content is there, its mode or times are not
      }
      for (const { data, last } of written) if (last) release(data); // the addon copied them
    };
    let streaming = true;
    try {
      for (const { node, path, fresh } of files) {
        if (this.#unsafe) return;
        if (streaming && this.#small(node) && writesWhole(node)) {
          // Its blob now, its file with the others: the stream's blobs stay valid while kept.
          streaming = false; // until the blob is taken
          try {
            if (!fresh) await this.#clear(path);
            const data = await this.#smallBlob(node, stream);
            const id = node.content?.[0];
            whole.push({ path, data, node, last: id !== undefined && lastUse(uses, id) });
            streaming = true;
          } catch (error) {
            if ((error as RepositoryError).code === RepositoryErrorCode.UnsafePath) throw error;
            this.#fail(path, notRestored(error));
            await stream.return?.();
          }
          continue;
        }
        await writeWhole();
        if (!streaming) {
          await this.#guarded(node, path, fresh);
          continue;
        }
        streaming = false; // until the file is whole
        try {
          if (!fresh) await this.#clear(path);
          await this.#content(node, path, stream, uses);
          streaming = true;
          await applyNodeMetadata(node, path, this.#warn(path));
        } catch (error) {
          if ((error as RepositoryError).code === RepositoryErrorCode.UnsafePath) throw error;
          this.#fail(path, error);
        }
        if (!streaming) await stream.return?.();
      }
      await writeWhole();
    } finally {
      await stream.return?.();
    }
  }

  /** Waits for every batch, then for the last directories' metadata, deepest first. */
  async finish(): Promise<void> {
    await this.#flushBatch();
    while (this.#batches.size > 0) await Promise.all(this.#batches);
    await this.#metadata;
    if (this.#unsafe) throw this.#unsafe.error;
    await this.#setDirMetadata();
    this.#dirs.length = 0;
  }

  /** Waits for the batches under way, for a walk that failed (nothing is left writing). */
  async abandon(): Promise<void> {
    this.#batch = [];
    while (this.#batches.size > 0) await Promise.all(this.#batches);
    await this.#metadata;
  }

  async #clear(path: FsPath): Promise<void> {
    // Whatever is there (a symlink above all) is replaced, never followed.
    const existing = await lstat(path).catch(() => undefined);
    if (existing && !existing.isDirectory()) await unlink(path);
  }

  /**
   * Makes `path` a real directory: whatever else is there (a symlink above all) is replaced,
   * never followed. True when it had to be created.
   */
  async directory(path: FsPath, fresh = false): Promise<boolean> {
    if (!fresh) await this.#clear(path);
    // Synchronous, as the metadata (applyNodeMetadata): a mkdir is a few microseconds, less than
    // its round trip through libuv's thread pool, and a restore of small files makes thousands.
    try {
      mkdirSync(path, { mode: 0o700 });
      return true;
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const stats = await lstat(path);
    if (!stats.isDirectory() || stats.isSymbolicLink()) {
      throw new RepositoryError(
        RepositoryErrorCode.UnsafePath,
        `${shownPath(path)} is not a directory we can restore into`,
      );
    }
    return false;
  }

  /**
   * Restores one entry at `path` (in a directory this run created when `fresh`). A file is
   * whole when this returns; a directory's files may still be in their batches and its metadata
   * comes once they are written ({@link #waitingDir}), at the latest with {@link finish}.
   */
  async node(node: TreeNode, path: FsPath, fresh = false): Promise<void> {
    switch (node.type) {
      case 'dir': {
        const created = await this.directory(path, fresh);
        this.summary.dirs++;
        if (!node.subtree)
          throw new RepositoryError(RepositoryErrorCode.Malformed, `directory ${node.name} has no subtree`);
        await this.tree(node.subtree, path, created);
        this.#waitingDir(node, path);
        return;
      }
      case 'file':
        if (!fresh) await this.#clear(path);
        await this.#file(node, path);
        break;
      case 'symlink':
        if (!fresh) await this.#clear(path);
        await symlink(nodeLinkTarget(node), path);
        break;
      case 'fifo':
        if (!fresh) await this.#clear(path);
        await makeNode(path, 'mkfifo', []);
        break;
      case 'dev':
      case 'chardev': {
        if (!fresh) await this.#clear(path);
        const dev = node.device ?? 0;
        // Linux's encoding of st_rdev.
        const major = ((dev >>> 8) & 0xfff) | (Math.floor(dev / 2 ** 32) & ~0xfff);
        const minor = (dev & 0xff) | ((dev >>> 12) & ~0xff);
        await makeNode(path, 'mknod', [node.type === 'dev' ? 'b' : 'c', String(major), String(minor)]);
        break;
      }
      default:
        return; // sockets and irregular files are not restored (as restic)
    }
    await applyNodeMetadata(node, path, this.#warn(path));
  }

  #linkKey(node: TreeNode): string | undefined {
    return (node.links ?? 1) > 1 && node.inode ? `${node.device_id ?? 0}:${node.inode}` : undefined;
  }

  /** A file from its own blobs, or a hard link to another name of its inode restored first. */
  async #file(node: TreeNode, path: FsPath): Promise<void> {
    const linkKey = this.#linkKey(node);
    const own = async () => {
      const blobs = loadBlobsFrom(this.#repo, 'data', node.content ?? [], node.size)[Symbol.asyncIterator]();
      try {
        await this.#content(node, path, blobs, usesOf(node.content ?? []));
      } finally {
        // Taken to its last blob, a stream still holds what it reserved (a gateway's reply
        // budget) until it is closed.
        await blobs.return?.();
      }
    };
    if (!linkKey) return own();
    // Another name of this inode restored (or being restored) first: link to it.
    for (let pending = this.#links.get(linkKey); pending; pending = this.#links.get(linkKey)) {
      const first = await pending;
      if (first) return link(first, path);
      if (this.#links.get(linkKey) === pending) this.#links.delete(linkKey); // it failed: write it here
    }
    const restored = own();
    this.#links.set(
      linkKey,
      restored.then(
        () => path,
        () => undefined,
      ),
    );
    return restored;
  }

  /**
   * Writes a file from the next `node.content.length` blobs of `blobs`. `uses`: how many more
   * times the stream yields each id ({@link lastUse}): a blob's buffer is freed once written the
   * last time.
   */
  async #content(
    node: TreeNode,
    path: FsPath,
    blobs: AsyncIterator<Buffer>,
    uses: Map<string, number>,
  ): Promise<void> {
    if (this.#small(node)) return this.#smallContent(node, path, blobs, uses);
    if (!this.#everyCore && (node.content?.length ?? 0) > 1) {
      // A file of several blobs: opening them is the work, this thread mostly waits (database
      // shape by hand: 0.78 -> 0.71 s). Not for small files, where this thread is busy too.
      this.#everyCore = true;
      this.#repo.openWithEveryCore?.();
    }
    const file = await open(
      path,
      constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
      0o600,
    );
    // One write in flight while the next blobs load and decrypt (the source reads ahead).
    let writing: Promise<void> = Promise.resolve();
    try {
      let position = 0;
      for (let i = 0; i < (node.content?.length ?? 0); i++) {
        const next = await blobs.next();
        if (next.done)
          throw new RepositoryError(RepositoryErrorCode.Malformed, 'the blob stream ended early');
        const data = next.value;
        const at = position;
        position += data.length;
        const last = lastUse(uses, node.content![i]!);
        await writing;
        writing = this.#write(file, data, at, path, last);
        writing.catch(() => undefined); // awaited in turn
      }
      await writing;
    } catch (error) {
      await writing.catch(() => undefined);
      await file.close();
      await rm(path, { force: true });
      throw new RepositoryError(
        (error as RepositoryError).code ?? RepositoryErrorCode.Malformed,
        `${(error as Error).message}; the file was not restored`,
        { cause: error },
      );
    }
    await file.close();
    this.summary.files++;
  }

  /** A file of at most one blob and {@link SMALL_FILE} bytes: written with synchronous calls, or in a batch. */
  #small(node: TreeNode): boolean {
    return (node.content?.length ?? 0) <= 1 && (node.size ?? Infinity) <= SMALL_FILE;
  }

  /** A small file's bytes: its one blob from `blobs`, or none. */
  async #smallBlob(node: TreeNode, blobs: AsyncIterator<Buffer>): Promise<Buffer> {
    if (!node.content?.length) return Buffer.alloc(0);
    const next = await blobs.next();
    if (next.done) throw new RepositoryError(RepositoryErrorCode.Malformed, 'the blob stream ended early');
    return next.value;
  }

  #restored(path: FsPath, bytes: number): void {
    this.summary.files++;
    this.summary.bytes += bytes;
    this.#options.onProgress?.({
      files: this.summary.files,
      bytes: this.summary.bytes,
      currentPath: shownPath(path),
    });
  }

  /**
   * A file of at most one small blob, written with synchronous calls once its blob is in hand:
   * open, write and close cost a few microseconds each on a local disk, less than three round
   * trips through libuv's thread pool.
   */
  async #smallContent(
    node: TreeNode,
    path: FsPath,
    blobs: AsyncIterator<Buffer>,
    uses: Map<string, number>,
  ): Promise<void> {
    let data: Buffer;
    let last = false;
    try {
      data = await this.#smallBlob(node, blobs);
      const id = node.content?.[0];
      last = id !== undefined && lastUse(uses, id);
      const fd = openSync(
        path,
        constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
        0o600,
      );
      try {
        for (let done = 0; done < data.length;) done += writeSync(fd, data, done, data.length - done, done);
      } catch (error) {
        closeSync(fd);
        rmSync(path, { force: true });
        throw error;
      }
      closeSync(fd);
    } catch (error) {
      throw notRestored(error);
    }
    this.#restored(path, data.length);
    if (last) release(data);
  }

  /** Writes a blob at `position`; with `last`, frees its buffer afterwards (nothing reads it again). */
  async #write(file: FileHandle, data: Buffer, position: number, path: FsPath, last: boolean): Promise<void> {
    for (let done = 0; done < data.length;) {
      const { bytesWritten } = await file.write(data, done, data.length - done, position + done);
      done += bytesWritten;
    }
    this.summary.bytes += data.length;
    // Written: free it now, not when the collector comes round (in a restore of large files the
    // dead blobs, not the live ones, set the peak RSS).
    if (last) release(data);
    this.#options.onProgress?.({
      files: this.summary.files,
      bytes: this.summary.bytes,
      currentPath: shownPath(path),
    });
  }
}

/** Options of {@link restoreTree}. */
export type RestoreTreeOptions = Omit<RestoreOptions, 'snapshot'> & {
  /** The snapshot's root tree. */
  readonly tree: string;
};

/**
 * Restores a tree (or a path in it) from any blob source into a directory, which is created
 * when missing and must be a real directory. Entries are written only below it.
 */
export async function restoreTree(
  source: BlobSource,
  options: RestoreTreeOptions,
): Promise<Omit<RestoreSummary, 'snapshotId' | 'durationMs'>> {
  const target = resolve(options.target);
  await mkdir(target, { recursive: true });
  const targetStats = await lstat(target);
  if (!targetStats.isDirectory())
    throw new RepositoryError(RepositoryErrorCode.UnsafePath, `${target} is not a directory`);
  const runState = new RestoreRun(source, options);
  try {
    await walk(source, options, target, runState);
  } catch (error) {
    await runState.abandon();
    throw error;
  }
  return runState.summary;
}

/** The walk of {@link restoreTree} through `runState`, finished (every batch written) on return. */
async function walk(
  source: BlobSource,
  options: RestoreTreeOptions,
  target: string,
  runState: RestoreRun,
): Promise<void> {
  const path = options.path ?? '/';
  const root = options.root ?? path;
  const names = namesBelow(root, path);
  let { tree, node } = await resolveTreePath(source, options.tree, root);
  if (names.length === 0) {
    if (node && node.type !== 'dir') {
      assertSafeName(node.nameBytes ?? node.name);
      await runState.node(node, childPath(target, node));
    } else {
      await runState.tree(tree, target);
    }
    await runState.finish();
    return;
  }
  if (node && node.type !== 'dir') {
    throw new RepositoryError(RepositoryErrorCode.FileNotFound, `${path} is not in the snapshot`);
  }
  // The directories between root and path: created when missing, given their metadata last.
  const made: Array<{ node: TreeNode; path: FsPath }> = [];
  let dir: FsPath = target;
  for (const [i, name] of names.entries()) {
    node = await childNode(source, tree, name, path);
    const at = childPath(dir, node);
    if (i === names.length - 1) {
      await runState.node(node, at);
      break;
    }
    if (node.type !== 'dir' || !node.subtree) {
      throw new RepositoryError(RepositoryErrorCode.FileNotFound, `${path} is not in the snapshot`);
    }
    if (await runState.directory(at)) {
      runState.summary.dirs++;
      made.push({ node, path: at });
    }
    dir = at;
    tree = node.subtree;
  }
  await runState.finish();
  for (const created of made.reverse()) {
    await applyNodeMetadata(created.node, created.path, (error) =>
      runState.summary.warnings.push({ path: shownPath(created.path), reason: error.message }),
    );
  }
}

/** Restores a snapshot (or a path in it) into a directory. */
export async function restore(repo: Repository, options: RestoreOptions): Promise<RestoreSummary> {
  const started = Date.now();
  const { id, snapshot } = await repo.findSnapshot(options.snapshot);
  await repo.loadIndex();
  const summary = await restoreTree(repo, { ...options, tree: snapshot.tree });
  return { snapshotId: id, ...summary, durationMs: Date.now() - started };
}
