// Locks on a real directory backend: the second check of a lock taken with `confirmLater` (a
// backup walks while it waits) refuses when another process's conflicting lock appeared
// meanwhile, and removes the lock file it wrote.
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { LocalBackend } from './backend/local-backend.ts';
import { RepositoryErrorCode } from './errors.ts';
import { formatGoTime } from './format/ids.ts';
import { takeLock, type LockFiles } from './locks.ts';
import type { LockFile } from './format/snapshot.ts';

/** Lock files as plain JSON (the repository encrypts them; locking does not care). */
function lockFiles(dir: string): LockFiles {
  const backend = new LocalBackend(dir);
  return {
    backend,
    save: async (lock: LockFile) => {
      const body = Buffer.from(JSON.stringify(lock));
      const name = createHash('sha256').update(body).digest('hex');
      await backend.save({ type: 'locks', name }, body);
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

describe('takeLock with confirmLater', () => {
  it('returns once its lock file is written and confirms it 100 ms later', async () => {
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
    const files = lockFiles(dir);
    const lock = await takeLock(files, false, { confirmLater: true });
    const other = await files.save(otherLock(true));
    const refusal = await lock.confirmed.then(
      () => undefined,
      (error: Error & { code?: string }) => error,
    );
    expect(refusal?.code).toBe(RepositoryErrorCode.Locked);
    expect(refusal?.message).toContain('exclusive lock');
    expect(readdirSync(join(dir, 'locks'))).toEqual([other]);
    await lock.release(); // nothing left to remove: no error
    expect(readdirSync(join(dir, 'locks'))).toEqual([other]);
  });

  it('is not refused by another shared lock, and a lock taken without it waits for the check', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'volback-locks-'));
    const files = lockFiles(dir);
    const shared = await takeLock(files, false, { confirmLater: true });
    await files.save(otherLock(false));
    await shared.confirmed;
    const started = Date.now();
    const second = await takeLock(files, false);
    expect(Date.now() - started).toBeGreaterThanOrEqual(95);
    await expect(takeLock(files, true)).rejects.toMatchObject({ code: RepositoryErrorCode.Locked });
    await shared.release();
    await second.release();
  });
});
