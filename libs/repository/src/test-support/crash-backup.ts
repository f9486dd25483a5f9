// A backup that kills its own process (SIGKILL, like `kill -9`) at an exact point of restic's
// write order, for crash tests that must not depend on timing.
//
//   node crash-backup.ts <repo> <source> <host> <before|after>:<file type>:<n>
//
// kills the process just before or just after the n-th file of that type (data, index,
// snapshots, locks) is saved. The password comes from VOLBACK_PASSWORD. Packs are small
// (256 KiB) so that a few MiB of data make many of them.
import type { Backend, ByteRange, FileBody, FileHandle, FileInfo, FileType } from '../backend/backend.ts';
import { LocalBackend } from '../backend/local-backend.ts';
import { backup } from '../operations/backup.ts';
import { Repository } from '../repository.ts';

class CrashingBackend implements Backend {
  readonly #inner: Backend;
  readonly #when: 'before' | 'after';
  readonly #type: FileType;
  readonly #nth: number;
  #saved = 0;

  constructor(inner: Backend, point: string) {
    const [when, type, nth] = point.split(':');
    if ((when !== 'before' && when !== 'after') || !type || !nth) throw new Error(`bad crash point ${point}`);
    this.#inner = inner;
    this.#when = when;
    this.#type = type as FileType;
    this.#nth = Number(nth);
  }

  get location(): string {
    return this.#inner.location;
  }

  get listingLagMs(): number | undefined {
    return this.#inner.listingLagMs;
  }

  create(): Promise<void> {
    return this.#inner.create();
  }

  async save(handle: FileHandle, data: FileBody): Promise<void> {
    const hit = handle.type === this.#type && ++this.#saved === this.#nth;
    if (hit && this.#when === 'before') process.kill(process.pid, 'SIGKILL');
    await this.#inner.save(handle, data);
    if (hit && this.#when === 'after') process.kill(process.pid, 'SIGKILL');
  }

  load(handle: FileHandle, range?: ByteRange): Promise<Buffer> {
    return this.#inner.load(handle, range);
  }

  stat(handle: FileHandle): Promise<FileInfo> {
    return this.#inner.stat(handle);
  }

  remove(handle: FileHandle): Promise<void> {
    return this.#inner.remove(handle);
  }

  list(type: FileType): AsyncIterable<FileInfo> {
    return this.#inner.list(type);
  }

  close(): Promise<void> {
    return this.#inner.close();
  }
}

const [repoPath, source, host, point] = process.argv.slice(2);
if (!repoPath || !source || !host || !point)
  throw new Error('usage: crash-backup.ts <repo> <source> <host> <point>');
const repo = await Repository.open(
  new CrashingBackend(new LocalBackend(repoPath), point),
  process.env['VOLBACK_PASSWORD'] ?? '',
  { packSize: 256 * 1024 },
);
await backup(repo, { source, hostname: host });
// Reaching this line means the crash point was never hit.
process.exitCode = 3;
