import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle as FsFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import { FILE_TYPES, layoutPath, type Backend, type FileHandle, type FileInfo, type FileType } from './backend.ts';

/** Where half-written files wait for their rename; restic never looks there. */
const TEMP_DIR = '.volback-tmp';

function mapError(error: unknown, what: string): never {
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') throw new RepositoryError(RepositoryErrorCode.FileNotFound, `${what}: not found`, { cause: error });
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    throw new RepositoryError(RepositoryErrorCode.NoSpace, `${what}: no space left on device`, { cause: error });
  }
  throw new RepositoryError(
    RepositoryErrorCode.BackendUnavailable,
    `${what}: ${(error as Error).message}`,
    { cause: error },
  );
}

async function fsyncDir(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/** A repository in a local directory (also block or network storage mounted as one). */
export class LocalBackend implements Backend {
  readonly location: string;
  readonly #root: string;

  constructor(root: string) {
    this.#root = root;
    this.location = root;
  }

  #path(handle: FileHandle): string {
    return join(this.#root, layoutPath(handle));
  }

  async create(): Promise<void> {
    try {
      await mkdir(this.#root, { recursive: true, mode: 0o700 });
      for (const type of FILE_TYPES) if (type !== 'config') await mkdir(join(this.#root, type), { recursive: true, mode: 0o700 });
      for (let i = 0; i < 256; i++) {
        await mkdir(join(this.#root, 'data', i.toString(16).padStart(2, '0')), { recursive: true, mode: 0o700 });
      }
      await mkdir(join(this.#root, TEMP_DIR), { recursive: true, mode: 0o700 });
    } catch (error) {
      mapError(error, `create ${this.#root}`);
    }
  }

  async save(handle: FileHandle, data: Uint8Array): Promise<void> {
    const target = this.#path(handle);
    const tempDir = join(this.#root, TEMP_DIR);
    const temp = join(tempDir, `${handle.name}-${randomBytes(6).toString('hex')}`);
    let file: FsFile | undefined;
    try {
      await mkdir(tempDir, { recursive: true, mode: 0o700 });
      await mkdir(dirname(target), { recursive: true, mode: 0o700 });
      file = await open(temp, 'wx', 0o600);
      await file.writeFile(data);
      await file.sync();
      await file.close();
      file = undefined;
      await rename(temp, target);
      await fsyncDir(dirname(target));
    } catch (error) {
      await file?.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      mapError(error, `save ${layoutPath(handle)}`);
    }
  }

  async load(handle: FileHandle, range?: { offset: number; length?: number }): Promise<Buffer> {
    const path = this.#path(handle);
    let file: FsFile | undefined;
    try {
      file = await open(path, 'r');
      if (!range) return await file.readFile();
      const size = (await file.stat()).size;
      const offset = range.offset < 0 ? Math.max(0, size + range.offset) : range.offset;
      const length = Math.max(0, Math.min(range.length ?? size - offset, size - offset));
      const buffer = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await file.read(buffer, done, length - done, offset + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return buffer.subarray(0, done);
    } catch (error) {
      return mapError(error, `load ${layoutPath(handle)}`);
    } finally {
      await file?.close();
    }
  }

  async stat(handle: FileHandle): Promise<FileInfo> {
    try {
      return { name: handle.name, size: (await stat(this.#path(handle))).size };
    } catch (error) {
      return mapError(error, `stat ${layoutPath(handle)}`);
    }
  }

  async remove(handle: FileHandle): Promise<void> {
    try {
      await rm(this.#path(handle), { force: true });
    } catch (error) {
      mapError(error, `remove ${layoutPath(handle)}`);
    }
  }

  async *list(type: FileType): AsyncIterable<FileInfo> {
    if (type === 'config') {
      const info = await this.stat({ type, name: 'config' }).catch(() => undefined);
      if (info) yield info;
      return;
    }
    const dirs = type === 'data' ? await this.#subdirs(join(this.#root, 'data')) : [join(this.#root, type)];
    for (const dir of dirs) {
      let names: string[];
      try {
        names = await readdir(dir);
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') continue;
        mapError(error, `list ${type}`);
      }
      for (const name of names) {
        if (!/^[0-9a-f]{64}$/.test(name)) continue;
        const info = await stat(join(dir, name)).catch(() => undefined);
        if (info?.isFile()) yield { name, size: info.size };
      }
    }
  }

  async #subdirs(path: string): Promise<string[]> {
    try {
      return (await readdir(path, { withFileTypes: true })).filter((d) => d.isDirectory()).map((d) => join(path, d.name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      return mapError(error, `list ${path}`);
    }
  }

  async close(): Promise<void> {}
}
