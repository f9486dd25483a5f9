import { userInfo } from 'node:os';
import { DataPathError, DataPathErrorCode, type BlobRef } from '@volback/data-path';
import type { Logger } from '@volback/observability';
import {
  decodeTree,
  IdTable,
  isId,
  parseGoTime,
  plainLength,
  RepositoryErrorCode,
  type Repository,
  type RepositoryError,
  type RepositoryLock,
  type Snapshot,
  type TreeNode,
} from '@volback/repository';
import { findMissingBlobs, MalformedTreeError, treeLinks } from '../domain/reachability.ts';

/** The caller's blob did not match its id: its request fails, the repository handle is fine. */
const isMismatch = (error: unknown) => (error as RepositoryError).code === RepositoryErrorCode.BlobIdMismatch;

/** Trees {@link GatewayRepository.loadTrees} reads at a time (neighbours in a pack in one read). */
const LOAD_TREES_STEP = 256;
import {
  sameSnapshot,
  selectSnapshot,
  type SnapshotQuery,
  type SnapshotSelection,
  type StoredSnapshot,
} from '../domain/snapshot-selection.ts';
import { ReadWriteGate } from './read-write-gate.ts';
import { Semaphore } from './semaphore.ts';
import { storedSnapshots } from './stored-snapshots.ts';

/** Options of {@link GatewayRepository.open}. */
export interface GatewayRepositoryOptions {
  /** Opens a handle on the repository (again when a failed upload left the previous one unusable). */
  readonly open: () => Promise<Repository>;
  readonly logger: Logger;
  /** A session's lock is released this long after its last request (default 5 s). */
  readonly sessionIdleMs?: number;
  /** Open packs are written this long after the last stored blob (default 3 s). */
  readonly idleFlushMs?: number;
  /** Told how many packs each flush wrote. */
  readonly onFlush?: (packsWritten: number) => void;
}

/** The snapshot a commit asks for (validated by the data-path schema). */
export interface SnapshotRequest {
  readonly tree: string;
  readonly paths: readonly string[];
  readonly hostname: string;
  readonly time: string;
  readonly parent?: string | undefined;
  readonly tags?: readonly string[] | undefined;
}

interface Session {
  ready: Promise<void>;
  lock: RepositoryLock | undefined;
  timer: NodeJS.Timeout | undefined;
}

/** Trees loaded at once while a commit checks what a snapshot reaches. */
const TREE_LOADS = 16;
/** How long a session's count of stored bytes is kept after its last blob. */
const STORED_COUNT_TTL_MS = 24 * 3_600_000;
/**
 * Bound on remembered complete trees (80 MiB at this many); forgotten all at once when reached.
 * Each commit adds its snapshot's new trees: a `Set` of hex strings took about 100 bytes a tree
 * (193 MiB at the bound; 5.2 after one backup of a volume of 50,924 directories), an
 * {@link IdTable} takes 42–57.
 */
const MAX_COMPLETE_TREES = 2_000_000;
/** The kind of a tree's id in {@link IdTable}s. */
const TREE = 1;

function username(): string {
  try {
    return userInfo().username;
  } catch {
    return 'volback'; // no passwd entry (a container), as the repository library does
  }
}

/**
 * The gateway's one repository handle, shared by every session: blobs from concurrent sessions
 * go into the same packs. It tracks sessions (each holds a shared repository lock while active),
 * writes open packs after a quiet spell, and verifies a snapshot's blobs before writing it.
 *
 * Stores run concurrently; a flush or index reload runs alone (they change what the handle
 * tracks). A failed upload leaves a handle unusable, so it is replaced by a fresh one: blobs
 * that were pending in it are lost, and commits report them missing.
 */
export class GatewayRepository {
  readonly #open: () => Promise<Repository>;
  readonly #log: Logger;
  readonly #sessionIdleMs: number;
  readonly #idleFlushMs: number;
  readonly #onFlush: ((packsWritten: number) => void) | undefined;
  readonly #gate = new ReadWriteGate();
  readonly #sessions = new Map<string, Session>();
  /** Trees whose every blob below is known to be stored ({@link MAX_COMPLETE_TREES}). */
  #complete = new IdTable();
  readonly #treeLoads = new Semaphore(TREE_LOADS);
  /** Bytes in packs of the blobs each session added here, and when it last added one. */
  readonly #storedBySession = new Map<string, { bytes: number; touched: number }>();
  #repo: Repository;
  #dirty = false;
  #idleTimer: NodeJS.Timeout | undefined;
  #queuedReload: Promise<void> | undefined;
  #recovering: Promise<void> | undefined;
  #listing: Promise<StoredSnapshot[]> | undefined;
  #closed = false;

  private constructor(repo: Repository, options: GatewayRepositoryOptions) {
    this.#repo = repo;
    this.#open = options.open;
    this.#log = options.logger;
    this.#sessionIdleMs = options.sessionIdleMs ?? 5_000;
    this.#idleFlushMs = options.idleFlushMs ?? 3_000;
    this.#onFlush = options.onFlush;
  }

  /** Opens the repository and reads its index. */
  static async open(options: GatewayRepositoryOptions): Promise<GatewayRepository> {
    const repo = await options.open();
    try {
      await repo.loadIndex();
    } catch (error) {
      await repo.close().catch(() => undefined);
      throw error;
    }
    return new GatewayRepository(repo, options);
  }

  /** Format version and chunker polynomial. */
  get config(): Repository['config'] {
    return this.#repo.config;
  }

  /** Sessions holding a lock on this gateway. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** Reads the repository's config file: true when the storage answers. */
  async ping(): Promise<void> {
    await this.#repo.backend.stat({ type: 'config', name: 'config' });
  }

  // ---- sessions ----

  /**
   * Makes sure this gateway holds the session's shared lock; the first time, it takes the lock and
   * then rebuilds the index (after a prune, known packs may be gone). `REPOSITORY_LOCKED` when an
   * exclusive lock (prune) is held. True when this call started the session (the index was just
   * read).
   */
  async joinSession(sessionId: string): Promise<boolean> {
    this.#checkOpen();
    let session = this.#sessions.get(sessionId);
    const starting = !session;
    if (!session) {
      const fresh: Session = { ready: Promise.resolve(), lock: undefined, timer: undefined };
      fresh.ready = (async () => {
        try {
          fresh.lock = await this.#repo.lock(false);
          await this.reloadIndex();
          this.#log.debug({ sessionId, lock: fresh.lock.id.slice(0, 8) }, 'session started');
        } catch (error) {
          if (this.#sessions.get(sessionId) === fresh) this.#sessions.delete(sessionId);
          await fresh.lock?.release().catch(() => undefined);
          throw error;
        }
      })();
      this.#sessions.set(sessionId, fresh);
      session = fresh;
    }
    await session.ready;
    if (this.#sessions.get(sessionId) !== session) return starting; // ended meanwhile
    clearTimeout(session.timer);
    session.timer = setTimeout(() => void this.#expire(sessionId, session), this.#sessionIdleMs);
    session.timer.unref();
    return starting;
  }

  /** Releases the session's lock (after its commit). */
  async endSession(sessionId: string): Promise<void> {
    const session = this.#sessions.get(sessionId);
    if (!session) return;
    this.#sessions.delete(sessionId);
    clearTimeout(session.timer);
    await session.lock
      ?.release()
      .catch((error: Error) =>
        this.#log.warn({ sessionId, err: error.message }, 'could not remove a session lock'),
      );
  }

  async #expire(sessionId: string, session: Session): Promise<void> {
    if (this.#sessions.get(sessionId) !== session) return;
    this.#sessions.delete(sessionId);
    // Packs this gateway holds open may hold the session's blobs: write them while still locked.
    if (this.#dirty) await this.flush().catch(() => undefined);
    await session.lock?.release().catch(() => undefined);
    this.#log.info({ sessionId }, 'session idle: lock released');
  }

  // ---- blobs ----

  /** Which blobs the repository lacks (pending blobs of this gateway count as present). */
  missingBlobs(blobs: readonly BlobRef[]): BlobRef[] {
    const repo = this.#repo;
    return blobs.filter((b) => !repo.hasBlob(b.type, b.id)).map(({ type, id }) => ({ type, id }));
  }

  /**
   * Adds a blob to an open pack unless the repository has it; written by a flush. The bytes it
   * takes in its pack count for `sessionId` ({@link storedBytesOf}).
   */
  async storeBlob(
    type: 'data' | 'tree',
    id: string,
    data: Uint8Array,
    sessionId?: string,
  ): Promise<{ added: boolean; storedLength: number }> {
    const onSealed = sessionId ? (length: number) => this.#countStored(sessionId, length) : undefined;
    const saved = await this.#saving(
      (repo) => repo.saveBlob(type, data, id, { verify: true, ...(onSealed ? { onSealed } : {}) }),
      (result) => result.added,
    );
    return { added: saved.added, storedLength: saved.storedLength };
  }

  /**
   * {@link storeBlob} of several small blobs of one type, sealed together; `added[i]` is false
   * when the repository already had blob `i`.
   */
  async storeBlobs(
    type: 'data' | 'tree',
    blobs: ReadonlyArray<{ readonly id: string; readonly data: Uint8Array }>,
    sessionId: string,
  ): Promise<boolean[]> {
    const onSealed = (length: number) => this.#countStored(sessionId, length);
    return this.#saving(
      (repo) => repo.saveBlobs(type, blobs, { onSealed, verify: true }),
      (added) => added.includes(true),
    );
  }

  /**
   * Runs a save on the current handle, sharing the gate with other saves. A handle whose write
   * failed is replaced; a blob that did not match its id is the caller's error, and leaves it be.
   */
  async #saving<T>(save: (repo: Repository) => Promise<T>, added: (result: T) => boolean): Promise<T> {
    this.#checkOpen();
    const result = await this.#gate.shared(async () => {
      const repo = this.#repo;
      try {
        const saved = await save(repo);
        if (added(saved)) this.#dirty = true;
        return saved;
      } catch (error) {
        if (!isMismatch(error)) void this.#recover(repo, error);
        throw error;
      }
    });
    this.#scheduleIdleFlush();
    return result;
  }

  #countStored(sessionId: string, length: number): void {
    const now = Date.now();
    const counted = this.#storedBySession.get(sessionId) ?? { bytes: 0, touched: now };
    counted.bytes += length;
    counted.touched = now;
    this.#storedBySession.set(sessionId, counted);
  }

  /**
   * Bytes the blobs `sessionId` added through this gateway take in packs (compressed and
   * encrypted), since its first blob. Counts outlive the session's lock (a backup may pause
   * longer than a session stays open) and are dropped a day after their last blob.
   */
  storedBytesOf(sessionId: string): number {
    const forgetBefore = Date.now() - STORED_COUNT_TTL_MS;
    for (const [id, counted] of this.#storedBySession) {
      if (counted.touched < forgetBefore) this.#storedBySession.delete(id);
    }
    return this.#storedBySession.get(sessionId)?.bytes ?? 0;
  }

  /** Writes the open packs and the index naming them; returns how many packs were written. */
  async flush(): Promise<number> {
    let broken: { repo: Repository; error: unknown } | undefined;
    const written = await this.#gate
      .exclusive(async () => {
        const repo = this.#repo;
        this.#dirty = false;
        try {
          return await repo.flush();
        } catch (error) {
          broken = { repo, error };
          throw error;
        }
      })
      .finally(() => {
        if (broken) void this.#recover(broken.repo, broken.error);
      });
    if (written > 0) {
      this.#onFlush?.(written);
      this.#log.debug({ packs: written }, 'packs and index written');
    }
    return written;
  }

  #scheduleIdleFlush(): void {
    clearTimeout(this.#idleTimer);
    if (this.#closed) return;
    this.#idleTimer = setTimeout(() => {
      if (!this.#dirty || this.#closed) return;
      this.flush().catch((error: Error) =>
        this.#log.error({ err: error.message }, 'idle flush failed; pending blobs are lost'),
      );
    }, this.#idleFlushMs);
    this.#idleTimer.unref();
  }

  /** Rebuilds the index from the index files; requests made while one waits share it. */
  reloadIndex(): Promise<void> {
    if (this.#queuedReload) return this.#queuedReload;
    const reload = this.#gate.exclusive(async () => {
      this.#queuedReload = undefined;
      await this.#loadIndex();
    });
    this.#queuedReload = reload;
    return reload;
  }

  /** Call holding the gate exclusively. */
  async #loadIndex(): Promise<void> {
    const repo = this.#repo;
    const before = [...repo.index.packIds()];
    await repo.loadIndex();
    // A pack gone (prune) may have held blobs of trees known complete: know nothing any more.
    if (before.some((packId) => !repo.index.hasPack(packId))) this.#complete = new IdTable();
  }

  /** Replaces a handle a failed upload left unusable. */
  #recover(broken: Repository, error: unknown): Promise<void> {
    if (this.#repo !== broken || this.#closed) return Promise.resolve();
    this.#recovering ??= this.#gate
      .exclusive(async () => {
        if (this.#repo !== broken) return;
        this.#log.error(
          { err: (error as Error).message, code: (error as RepositoryError).code },
          'writing to the repository failed: reopening it; blobs not yet written are lost',
        );
        for (let attempt = 1; !this.#closed; attempt++) {
          try {
            const fresh = await this.#open();
            await fresh.loadIndex();
            this.#repo = fresh;
            this.#complete = new IdTable();
            this.#dirty = false;
            break;
          } catch (reopenError) {
            this.#log.warn(
              { err: (reopenError as Error).message, attempt },
              'could not reopen the repository',
            );
            await new Promise((resolve) => setTimeout(resolve, Math.min(10_000, 500 * 2 ** attempt)));
          }
        }
        await broken.close().catch(() => undefined);
      })
      .finally(() => (this.#recovering = undefined));
    return this.#recovering;
  }

  /** Reads and verifies a blob; `NOT_FOUND` when no index names it, after reading the index again. */
  async loadBlob(type: 'data' | 'tree', id: string): Promise<Buffer> {
    this.#checkOpen();
    if (!this.#repo.index.has(type, id)) await this.reloadIndex();
    if (!this.#repo.index.has(type, id)) {
      throw new DataPathError(DataPathErrorCode.NotFound, `the repository has no ${type} blob ${id}`);
    }
    try {
      return await this.#repo.loadBlob(type, id);
    } catch (error) {
      // The pack is gone (a prune since the index was read): read the index again, once.
      if ((error as RepositoryError).code !== RepositoryErrorCode.FileNotFound) throw error;
      await this.reloadIndex();
      if (!this.#repo.index.has(type, id)) {
        throw new DataPathError(DataPathErrorCode.NotFound, `the repository has no ${type} blob ${id}`);
      }
      return this.#repo.loadBlob(type, id);
    }
  }

  /**
   * Reads blobs of `ids` in order (an id may repeat), MACs verified (their ids are the client's to
   * check), as many as `fits` allows in
   * one reply, and at least the first: a prefix of `ids`. Neighbouring blobs of a pack are read
   * together ({@link Repository.loadBlobs}). Ids the index lacks, after reading it again once,
   * end the prefix (`NOT_FOUND` when the first is one of them); so does a blob that cannot be
   * read (its error is thrown when it is the first, after one index reload when its pack is gone).
   */
  async loadBlobs(
    type: 'data' | 'tree',
    ids: readonly string[],
    fits: (blobs: number, bytes: number) => boolean,
  ): Promise<Buffer[]> {
    this.#checkOpen();
    if (!ids.every((id) => this.#repo.index.has(type, id))) await this.reloadIndex();
    const blobs: Buffer[] = [];
    let bytes = 0;
    for (let reloaded = false; ; reloaded = true) {
      const repo = this.#repo;
      const wanted = this.#plan(repo, type, ids, fits);
      if (wanted.length === 0) {
        throw new DataPathError(DataPathErrorCode.NotFound, `the repository has no ${type} blob ${ids[0]}`);
      }
      // Returning from the loop ends the generator, which lets go of what it read ahead.
      // MACs verified here; the ids are checked by the client, which hashes every blob it gets
      // (a second SHA-256 here took a third of the seal worker's time in a restore).
      const loading = repo.loadBlobs(type, wanted, undefined, { checkIds: false });
      try {
        for await (const blob of loading) {
          if (blobs.length > 0 && !fits(blobs.length + 1, bytes + blob.length)) return blobs;
          if (blobs.length === 0 && !fits(1, blob.length)) throw this.#tooLarge(type, ids[0]!, blob.length);
          blobs.push(blob);
          bytes += blob.length;
        }
        return blobs;
      } catch (error) {
        // The blobs before it make the reply; the client asks again from the one that failed.
        if (blobs.length > 0) return blobs;
        // The pack is gone (a prune since the index was read): read the index again, once.
        if ((error as RepositoryError).code !== RepositoryErrorCode.FileNotFound || reloaded) throw error;
        await this.reloadIndex();
      }
    }
  }

  /**
   * A tree and the trees below it, breadth first, each once, as many as `fits` allows (at least
   * the root), with their nodes. The root's failure is thrown (`NOT_FOUND`, `BLOB_CORRUPT`…); a
   * tree below it that cannot be read ends the list before it (the client asks for it on its
   * own when it gets there).
   */
  async loadTrees(
    root: string,
    fits: (trees: number, bytes: number) => boolean,
  ): Promise<Array<{ id: string; data: Buffer; nodes: TreeNode[] }>> {
    const first = await this.loadBlob('tree', root);
    if (!fits(1, first.length)) throw this.#tooLarge('tree', root, first.length);
    const trees = [{ id: root, data: first, nodes: decodeTree(first, root) }];
    let bytes = first.length;
    const seen = new Set([root]);
    const waiting: string[] = [];
    const below = (nodes: readonly TreeNode[]) => {
      for (const node of nodes) {
        if (node.type !== 'dir' || !node.subtree || seen.has(node.subtree)) continue;
        seen.add(node.subtree);
        waiting.push(node.subtree);
      }
    };
    below(trees[0]!.nodes);
    while (waiting.length > 0) {
      const ids = waiting.splice(0, LOAD_TREES_STEP);
      let loaded: Buffer[];
      try {
        loaded = await this.loadBlobs('tree', ids, (n, b) => fits(trees.length + n, bytes + b));
      } catch {
        break; // the first of them cannot be read: the list ends before it
      }
      for (const [i, data] of loaded.entries()) {
        const id = ids[i]!;
        const nodes = decodeTree(data, id);
        trees.push({ id, data, nodes });
        bytes += data.length;
        below(nodes);
      }
      if (loaded.length < ids.length) break; // full, or the next cannot be read
    }
    return trees;
  }

  /** The prefix of `ids` the index knows and one reply carries, by the sizes the index records. */
  #plan(
    repo: Repository,
    type: 'data' | 'tree',
    ids: readonly string[],
    fits: (blobs: number, bytes: number) => boolean,
  ): string[] {
    let bytes = 0;
    let count = 0;
    for (const id of ids) {
      const entry = repo.index.get(type, id);
      if (!entry) break;
      const size = plainLength(entry);
      if (count === 0 && !fits(1, size)) throw this.#tooLarge(type, id, size);
      if (!fits(count + 1, bytes + size)) break;
      bytes += size;
      count++;
    }
    return ids.slice(0, count);
  }

  #tooLarge(type: 'data' | 'tree', id: string, size: number): DataPathError {
    return new DataPathError(
      DataPathErrorCode.BlobTooLarge,
      `${type} blob ${id} has ${size} bytes, more than this NATS server carries in a message`,
    );
  }

  // ---- snapshots ----

  /**
   * Writes the snapshot once every blob it reaches is in an index file: this gateway's open packs
   * are written first and the index read again, then the trees are walked. `MISSING_BLOBS` names
   * the rest. Committing the same snapshot again returns the existing one.
   */
  async commit(sessionId: string, request: SnapshotRequest): Promise<string> {
    try {
      parseGoTime(request.time);
    } catch {
      throw new DataPathError(
        DataPathErrorCode.BadRequest,
        `snapshot.time: ${JSON.stringify(request.time)} is not RFC 3339 with at most nanoseconds`,
      );
    }
    const indexJustRead = await this.joinSession(sessionId);
    const snapshot: Snapshot = {
      time: request.time,
      ...(request.parent ? { parent: request.parent } : {}),
      tree: request.tree,
      paths: [...request.paths],
      hostname: request.hostname,
      username: username(),
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
      ...(request.tags?.length ? { tags: [...request.tags] } : {}),
      program_version: 'volback',
    };
    const existing = (await this.#listSnapshots()).find((s) => sameSnapshot(s.snapshot, snapshot));
    if (existing) {
      await this.endSession(sessionId);
      return existing.id;
    }

    // Our own packs join the in-memory index as they are written; other gateways' (flushed before
    // this commit was sent) are read from their index files, unless the session just did so.
    await this.flush();
    if (!indexJustRead) await this.reloadIndex();
    const repo = this.#repo;
    let missing: BlobRef[];
    try {
      missing = await findMissingBlobs(request.tree, {
        has: (type, id) => repo.index.has(type, id),
        loadLinks: treesTogether(repo, treeLinks),
        isComplete: (id) => this.#complete.has(TREE, id),
        markComplete: (id) => {
          if (!isId(id)) return; // a tree loaded by its id has one
          if (this.#complete.size >= MAX_COMPLETE_TREES) this.#complete = new IdTable();
          this.#complete.add(TREE, id);
        },
      });
    } catch (error) {
      if (error instanceof MalformedTreeError)
        throw new DataPathError(DataPathErrorCode.BadRequest, error.message);
      if ((error as RepositoryError).code === RepositoryErrorCode.Malformed) {
        throw new DataPathError(
          DataPathErrorCode.BadRequest,
          `a tree of the snapshot is not a restic tree: ${(error as Error).message}`,
        );
      }
      throw error;
    }
    if (missing.length > 0) {
      throw new DataPathError(
        DataPathErrorCode.MissingBlobs,
        `${missing.length} blob(s) the snapshot reaches are not stored (a gateway stopped before writing them?): send them again and commit again`,
        { missing },
      );
    }
    const snapshotId = await repo.saveSnapshot(snapshot);
    await this.endSession(sessionId);
    this.#log.info(
      { sessionId, snapshotId, hostname: snapshot.hostname, paths: snapshot.paths },
      'snapshot committed',
    );
    return snapshotId;
  }

  /** A snapshot by id, unique prefix or `latest` of a host and path. */
  async findSnapshot(query: SnapshotQuery): Promise<SnapshotSelection> {
    this.#checkOpen();
    return selectSnapshot(await this.#listSnapshots(), query);
  }

  /** Every snapshot of the repository (read again only when the set of files changed). */
  async snapshots(): Promise<readonly StoredSnapshot[]> {
    this.#checkOpen();
    return this.#listSnapshots();
  }

  /** The nodes of a tree blob, for the gateway's own walks (at most {@link TREE_LOADS} at once). */
  async loadTree(id: string): Promise<TreeNode[]> {
    const bytes = await this.#treeLoads.run(() => this.loadBlob('tree', id));
    return decodeTree(bytes, id);
  }

  /**
   * Every snapshot. The repository reads only snapshot files it has not read before
   * (`Repository.listSnapshots`); listings asked for at the same time share one.
   */
  #listSnapshots(): Promise<StoredSnapshot[]> {
    this.#listing ??= (async () => storedSnapshots(await this.#repo.listSnapshots()))().finally(
      () => (this.#listing = undefined),
    );
    return this.#listing;
  }

  // ---- lifecycle ----

  #checkOpen(): void {
    if (this.#closed) {
      throw new DataPathError(DataPathErrorCode.RepositoryUnavailable, 'this gateway is shutting down');
    }
  }

  /** Writes open packs, releases every session lock and stops the worker threads. */
  async close(): Promise<void> {
    if (this.#closed) return;
    clearTimeout(this.#idleTimer);
    if (this.#dirty) {
      await this.flush().catch((error: Error) =>
        this.#log.error({ err: error.message }, 'final flush failed; pending blobs are lost'),
      );
    }
    this.#closed = true;
    await this.#recovering;
    await this.#releaseAll();
    await this.#repo.close();
  }

  /** Stops without writing open packs, as a crash would (their blobs are lost); locks are released. */
  async abandon(): Promise<void> {
    this.#closed = true;
    clearTimeout(this.#idleTimer);
    await this.#releaseAll();
    await this.#repo.close().catch(() => undefined);
  }

  async #releaseAll(): Promise<void> {
    const sessions = [...this.#sessions.entries()];
    this.#sessions.clear();
    await Promise.all(
      sessions.map(async ([, session]) => {
        clearTimeout(session.timer);
        await session.ready.catch(() => undefined);
        await session.lock?.release().catch(() => undefined);
      }),
    );
  }
}

/**
 * A tree loader for walks that ask for many trees at once: the trees asked for in the same turn of
 * the event loop are read together (`Repository.loadBlobs`: neighbours in a pack in one read,
 * opened in one worker job) instead of one read each, at most {@link LOAD_TREES_STEP} at a time,
 * however many a caller asks for (the commit's walk keeps 512 asked). Each tree is reduced by
 * `reduce` as soon as it is decoded, so that its nodes are not held while the rest are read. A
 * tree that cannot be read or reduced that way is read alone, so that its error is its own.
 */
function treesTogether<T>(
  repo: Repository,
  reduce: (id: string, nodes: TreeNode[]) => T,
): (id: string) => Promise<T> {
  type Asked = { id: string; resolve: (reduced: T) => void; reject: (error: unknown) => void };
  const reading = new Semaphore(LOAD_TREES_STEP);
  let asked: Asked[] | undefined;
  const load = async (batch: readonly Asked[]) => {
    const ids = [...new Set(batch.map((a) => a.id))];
    const loaded = new Map<string, T>();
    try {
      for (let start = 0; start < ids.length; start += LOAD_TREES_STEP) {
        const step = ids.slice(start, start + LOAD_TREES_STEP);
        for await (const blob of repo.loadBlobs('tree', step)) {
          const id = step[loaded.size - start]!;
          loaded.set(id, reduce(id, decodeTree(blob, id)));
        }
      }
    } catch {
      // Read alone below.
    }
    for (const { id, resolve, reject } of batch) {
      if (loaded.has(id)) resolve(loaded.get(id)!);
      else
        repo
          .loadTree(id)
          .then((nodes) => reduce(id, nodes))
          .then(resolve, reject);
    }
  };
  return (id) =>
    reading.run(
      () =>
        new Promise<T>((resolve, reject) => {
          if (!asked) {
            const batch: Asked[] = (asked = []);
            setImmediate(() => {
              asked = undefined;
              void load(batch);
            });
          }
          asked.push({ id, resolve, reject });
        }),
    );
}
