import { close, fstatSync, open, read } from 'node:fs';
import { promisify } from 'node:util';

const openFile = promisify(open);
const closeFile = promisify(close);
const readFile = promisify(read);

/** Files kept open at most (the least recently used beyond that are closed). */
const MAX_OPEN = 64;
/** A file unused this long is closed. */
const IDLE_MS = 2_000;

interface OpenFile {
  readonly fd: Promise<number>;
  users: number;
  lastUsed: number;
}

/**
 * Pack files kept open between range reads. A restore, and a backup loading its parent's trees,
 * read the same packs again and again; opening, stat-ing and closing one for every read cost three
 * more trips through libuv's thread pool than the read. A pack's name is the hash of its content,
 * so an open pack never holds other bytes; but one removed meanwhile (by prune elsewhere, or lost)
 * must read as gone, as it would without this: every read of a file already open first asks its
 * descriptor for its link count (a synchronous fstat, about a microsecond, no disk), and a file
 * with none left is closed and opened again, which fails as the file is gone. Files are closed
 * after {@link IDLE_MS} unused, when more than {@link MAX_OPEN} are open, and before this process
 * removes them ({@link forget}).
 */
export class OpenFiles {
  readonly #files = new Map<string, OpenFile>();
  #sweeper: ReturnType<typeof setInterval> | undefined;

  /** Up to `length` bytes at `position` (fewer at the file's end), as `fs.read` fails if it does. */
  async read(path: string, position: number, length: number): Promise<Buffer> {
    let file = this.#acquire(path);
    try {
      let fd = await file.fd;
      if (fstatSync(fd).nlink === 0) {
        // Removed since it was opened: forget it and open it again (which fails as it is gone).
        file.users--;
        if (this.#files.get(path) === file) this.#files.delete(path);
        void this.#close(file);
        file = this.#acquire(path);
        fd = await file.fd;
      }
      const buffer = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await readFile(fd, buffer, done, length - done, position + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return buffer.subarray(0, done);
    } finally {
      file.users--;
      file.lastUsed = Date.now();
      this.#trim();
    }
  }

  /** Closes `path` if it is open (before it is removed). */
  async forget(path: string): Promise<void> {
    const file = this.#files.get(path);
    if (!file) return;
    this.#files.delete(path);
    await this.#close(file);
  }

  /** Closes every file. */
  async closeAll(): Promise<void> {
    const files = [...this.#files.values()];
    this.#files.clear();
    this.#stopSweeper();
    await Promise.all(files.map((file) => this.#close(file)));
  }

  #acquire(path: string): OpenFile {
    let file = this.#files.get(path);
    if (!file) {
      const fd = openFile(path, 'r');
      file = { fd, users: 0, lastUsed: Date.now() };
      this.#files.set(path, file);
      // A file that cannot be opened is tried again by the next read.
      const opened = file;
      fd.catch(() => {
        if (this.#files.get(path) === opened) this.#files.delete(path);
      });
      this.#sweeper ??= setInterval(() => this.#sweep(), IDLE_MS / 2);
      this.#sweeper.unref();
    }
    file.users++;
    return file;
  }

  /** A file is closed once no read uses it; reads that started keep their descriptor until done. */
  async #close(file: OpenFile): Promise<void> {
    const fd = await file.fd.catch(() => undefined);
    if (fd === undefined) return;
    while (file.users > 0) await new Promise((resolve) => setTimeout(resolve, 1));
    await closeFile(fd).catch(() => undefined);
  }

  #trim(): void {
    if (this.#files.size <= MAX_OPEN) return;
    const idle = [...this.#files].filter(([, file]) => file.users === 0);
    idle.sort(([, a], [, b]) => a.lastUsed - b.lastUsed);
    for (const [path, file] of idle.slice(0, this.#files.size - MAX_OPEN)) {
      this.#files.delete(path);
      void this.#close(file);
    }
  }

  #sweep(): void {
    const now = Date.now();
    for (const [path, file] of this.#files) {
      if (file.users > 0 || now - file.lastUsed < IDLE_MS) continue;
      this.#files.delete(path);
      void this.#close(file);
    }
    if (this.#files.size === 0) this.#stopSweeper();
  }

  #stopSweeper(): void {
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = undefined;
  }
}
