import { hostname } from 'node:os';
import type { Backend } from './backend/backend.ts';
import { RepositoryError, RepositoryErrorCode } from './errors.ts';
import { formatGoTime, parseGoTime } from './format/ids.ts';
import { lockSchema, type LockFile } from './format/snapshot.ts';
import { currentUsername } from './os-user.ts';

/** A lock older than this is stale (restic: 30 minutes). */
export const STALE_LOCK_MS = 30 * 60_000;
/** Locks are refreshed well before they turn stale (restic: every 5 minutes). */
const LOCK_REFRESH_MS = 5 * 60_000;

/** A held repository lock; release it on every path. */
export interface RepositoryLock {
  readonly id: string;
  readonly exclusive: boolean;
  /**
   * Settles once the second check is done: rejects (`VOLBACK_REPO_LOCKED`, the lock file removed)
   * when another process holds a conflicting lock. Already settled unless the lock was taken with
   * `confirmLater`.
   */
  readonly confirmed: Promise<void>;
  release(): Promise<void>;
}

/** What locking needs of an open repository: its backend and its `locks/` files, encrypted. */
export interface LockFiles {
  readonly backend: Backend;
  /** Writes a lock file; returns its name. */
  save(lock: LockFile): Promise<string>;
  /** Reads and decrypts `locks/<name>`. */
  load(name: string): Promise<unknown>;
}

async function readLocks(files: LockFiles): Promise<Array<{ id: string; lock: LockFile | undefined }>> {
  const out = [];
  for await (const { name } of files.backend.list('locks')) {
    try {
      const parsed = lockSchema.safeParse(await files.load(name));
      out.push({ id: name, lock: parsed.success ? parsed.data : undefined });
    } catch (error) {
      if ((error as RepositoryError).code === RepositoryErrorCode.FileNotFound) continue; // released meanwhile
      out.push({ id: name, lock: undefined });
    }
  }
  return out;
}

/** True when a lock no longer protects anything: too old, or its process is gone from this host. */
export function isStaleLock(lock: LockFile, now = Date.now()): boolean {
  const age = now - Number(parseGoTime(lock.time) / 1_000_000n);
  if (age > STALE_LOCK_MS) return true;
  if (lock.hostname !== hostname()) return false;
  try {
    process.kill(lock.pid, 0);
    return false;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

function conflicts(
  locks: Array<{ id: string; lock: LockFile | undefined }>,
  exclusive: boolean,
  own?: string,
): string[] {
  return locks
    .filter(({ id, lock }) => id !== own && lock && !isStaleLock(lock) && (exclusive || lock.exclusive))
    .map(
      ({ id, lock }) =>
        `${lock!.exclusive ? 'exclusive' : 'shared'} lock ${id.slice(0, 8)} by ${lock!.username ?? '?'}@${lock!.hostname} pid ${lock!.pid}`,
    );
}

/**
 * Takes a lock as restic does: shared for backup, exclusive for prune. Checks, writes its lock
 * file, checks again, and refreshes it until released. Stale locks ({@link isStaleLock}) neither
 * block it nor survive it.
 *
 * The second check lists the locks once a listing is sure to show every lock file saved before
 * it started: after the backend's {@link Backend.listingLagMs} (100 ms when unset; none on a local
 * directory). Of two processes racing for conflicting locks, the one that lists last then sees
 * the other's lock file, which was written before the other listed: at least one backs off.
 *
 * With `confirmLater` it returns once its lock file is written, and the second check settles
 * {@link RepositoryLock.confirmed}: a backup reads the index and walks meanwhile, and awaits it
 * before it writes an index or a snapshot (what it wrote before that is packs that nothing
 * refers to, as after an interrupted backup).
 */
export async function takeLock(
  files: LockFiles,
  exclusive: boolean,
  options: { confirmLater?: boolean } = {},
): Promise<RepositoryLock> {
  const { backend } = files;
  const before = conflicts(await readLocks(files), exclusive);
  if (before.length)
    throw new RepositoryError(RepositoryErrorCode.Locked, `repository is locked: ${before.join('; ')}`);
  const write = () =>
    files.save({
      time: formatGoTime(BigInt(Date.now()) * 1_000_000n),
      exclusive,
      hostname: hostname(),
      username: currentUsername(),
      pid: process.pid,
      uid: process.getuid?.() ?? 0,
      gid: process.getgid?.() ?? 0,
    });
  let id = await write();
  let released = false;
  let timer: ReturnType<typeof setInterval> | undefined;
  const confirm = async () => {
    const lag = backend.listingLagMs ?? 100;
    if (lag > 0) await new Promise((resolve) => setTimeout(resolve, lag));
    const after = conflicts(await readLocks(files), exclusive, id);
    if (after.length) {
      await backend.remove({ type: 'locks', name: id }).catch(() => undefined);
      throw new RepositoryError(RepositoryErrorCode.Locked, `repository is locked: ${after.join('; ')}`);
    }
    if (released) return;
    timer = setInterval(() => {
      void write().then(
        (fresh) => {
          const old = id;
          id = fresh;
          return backend.remove({ type: 'locks', name: old });
        },
        () => undefined,
      );
    }, LOCK_REFRESH_MS);
    timer.unref();
    // Locks left by dead processes (a kill -9) do not stop us, but restic refuses to lock while
    // they exist: tidy them up, as `restic unlock` would.
    await removeStaleLocks(files).catch(() => undefined);
  };
  const confirmed = confirm();
  // With confirmLater the holder awaits it later; until then a refusal is not unhandled.
  if (options.confirmLater) confirmed.catch(() => undefined);
  else await confirmed;
  return {
    get id() {
      return id;
    },
    exclusive,
    confirmed,
    release: async () => {
      released = true;
      const refused = await confirmed.then(
        () => false,
        () => true,
      );
      if (refused) return; // the check removed the lock file already
      clearInterval(timer);
      await backend.remove({ type: 'locks', name: id });
    },
  };
}

/** Removes stale locks (restic unlock); returns how many. */
export async function removeStaleLocks(files: LockFiles): Promise<number> {
  let removed = 0;
  for (const { id, lock } of await readLocks(files)) {
    if (lock && isStaleLock(lock)) {
      await files.backend.remove({ type: 'locks', name: id });
      removed++;
    }
  }
  return removed;
}
