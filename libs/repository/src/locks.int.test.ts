// Locks on a real directory backend: the second check of a lock taken with `confirmLater` (a
// backup walks while it waits) refuses when another process's conflicting lock appeared
// meanwhile, and removes the lock file it wrote; it waits as long as the backend's listings may
// lag its saves (none for a local directory), and of two racing processes at least one backs off.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBackend } from './backend/local-backend.ts';
import { RepositoryErrorCode } from './errors.ts';
import { formatGoTime } from './format/ids.ts';
import { takeLock, type LockFiles } from './locks.ts';
import type { LockFile } from './format/snapshot.ts';

/** A directory whose listings may lag its saves by 100 ms, as an eventually consistent store's. */
class LaggingBackend extends LocalBackend {
  override readonly listingLagMs = 100;
}

/**
 * Lock files as plain JSON (the repository encrypts them; locking does not care). `afterSave`
 * runs once, right after the first lock file is saved: another process writing its lock then.
 */
function lockFiles(
  dir: string,
  options: { lagging?: boolean; afterSave?: () => Promise<unknown> } = {},
): LockFiles {
  const backend = options.lagging ? new LaggingBackend(dir) : new LocalBackend(dir);
  let afterSave = options.afterSave;
  return {
    backend,
    save: async (lock: LockFile) => {
      const body = Buffer.from(JSON.stringify(lock));
      const name = randomBytes(32).toString('hex'); // as a sealed file's id: never the same twice
      await backend.save({ type: 'locks', name }, body);
      const racer = afterSave;
      afterSave = undefined;
      await racer?.();
      return name;
    },
    load: async (name) => JSON.parse((await backend.load({ type: 'locks', name })).toString()) as unknown,
  };
}

/** Another live process's lock on this host (this process's pid: not stale). */
const otherLock = (exclusive: boolean): LockFile => ({
  time: formatGoTime(BigInt(Date.now()) * 1_000_000n),
  exclusive,
  hostname: hostname(),
  username: 'other',
  pid: process.pid,
  uid: 0,
  gid: 0,
});

/** The error a promise rejects with, or undefined when it fulfils. */
const refusalOf = (promise: Promise<unknown>) =>
  promise.then(
    () => undefined,
    (error: Error & { code?: string }) => error,
  );

describe('takeLock with confirmLater', () => {
  it('returns once its lock file is written and confirms it with a second check', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volback-locks-'));
    const files = lockFiles(dir);
    const lock = await takeLock(files, false, { confirmLater: true });
    expect(readdirSync(join(dir, 'locks'))).toEqual([lock.id]);
    await lock.confirmed;
    await lock.release();
    expect(readdirSync(join(dir, 'locks'))).toEqual([]);
  });

  it('refuses when an exclusive lock appeared before the second check, and removes its own', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volback-locks-'));
    let other = '';
    const files: LockFiles = lockFiles(dir, {
      afterSave: async () => (other = await files.save(otherLock(true))),
    });
    const lock = await takeLock(files, false, { confirmLater: true });
    const refusal = await refusalOf(lock.confirmed);
    expect(refusal?.code).toBe(RepositoryErrorCode.Locked);
    expect(refusal?.message).toContain('exclusive lock');
    expect(readdirSync(join(dir, 'locks'))).toEqual([other]);
    await lock.release(); // nothing left to remove: no error
    expect(readdirSync(join(dir, 'locks'))).toEqual([other]);
  });

  it('on a backend whose listings lag, waits that long: a lock saved meanwhile is seen', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volback-locks-'));
    const files = lockFiles(dir, { lagging: true });
    const lock = await takeLock(files, false, { confirmLater: true });
    const other = await files.save(otherLock(true)); // within the 100 ms before the second check
    expect((await refusalOf(lock.confirmed))?.code).toBe(RepositoryErrorCode.Locked);
    expect(readdirSync(join(dir, 'locks'))).toEqual([other]);

    const shared = lockFiles(mkdtempSync(join(tmpdir(), 'volback-locks-')), { lagging: true });
    const started = Date.now();
    await (await takeLock(shared, false)).release();
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
  });

  it('is not refused by another shared lock, and a lock taken without it returns confirmed', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volback-locks-'));
    const files = lockFiles(dir);
    const shared = await takeLock(files, false, { confirmLater: true });
    await files.save(otherLock(false));
    await shared.confirmed;
    const second = await takeLock(files, false);
    let settled = false;
    void second.confirmed.then(() => (settled = true));
    await Promise.resolve();
    expect(settled).toBe(true);
    await expect(takeLock(files, true)).rejects.toMatchObject({ code: RepositoryErrorCode.Locked });
    await shared.release();
    await second.release();
  });

  it('of two processes racing for exclusive locks, never lets both hold one', async () => {
    for (let round = 0; round < 20; round++) {
      const dir = mkdtempSync(join(tmpdir(), 'volback-locks-'));
      // Two holders of the same pid: each sees the other's lock as live.
      const [a, b] = await Promise.allSettled([
        takeLock(lockFiles(dir), true),
        takeLock(lockFiles(dir), true),
      ]);
      const held = [a, b].flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
      expect(held.length).toBeLessThanOrEqual(1);
      for (const result of [a, b])
        if (result.status === 'rejected')
          expect((result.reason as { code?: string }).code).toBe(RepositoryErrorCode.Locked);
      expect(readdirSync(join(dir, 'locks'))).toEqual(held.map((lock) => lock.id));
      for (const lock of held) await lock.release();
    }
  });
});
