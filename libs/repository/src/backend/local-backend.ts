import { randomBytes } from 'node:crypto';
import { mkdir, open, readdir, rename, rm, stat, unlink, type FileHandle as FsFile } from 'node:fs/promises';
import { dirname, join, relative } from 'node:path';
import { RepositoryError, RepositoryErrorCode } from '../errors.ts';
import {
  FILE_TYPES,
  bodyPieces,
  checkRange,
  isFileId,
  layoutPath,
  resolveRange,
  type Backend,
  type ByteRange,
  type FileBody,
  type FileHandle,
  type FileInfo,
  type FileType,
  type StagedFile,
} from './backend.ts';
import { OpenFiles } from './open-files.ts';

/** Where half-written files wait for their rename; restic never looks there. */
const TEMP_DIR = '.volback-tmp';

function mapError(error: unknown, what: string): never {
  // Our own errors (a bad range, a bad file name) pass through unchanged.
  if (error instanceof RangeError || error instanceof RepositoryError) throw error;
  const code = (error as NodeJS.ErrnoException).code;
  if (code === 'ENOENT')
    throw new RepositoryError(RepositoryErrorCode.FileNotFound, `${what}: not found`, { cause: error });
  if (code === 'ENOSPC' || code === 'EDQUOT') {
    throw new RepositoryError(RepositoryErrorCode.NoSpace, `${what}: no space left on device`, {
      cause: error,
    });
  }
  throw new RepositoryError(RepositoryErrorCode.BackendUnavailable, `${what}: ${(error as Error).message}`, {
    cause: error,
  });
}

async function fsyncDir(path: string): Promise<void> {
  const dir = await open(path, 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}

/**
 * Writes the pieces in order with as few writev calls as the kernel allows; a short write (a
 * disk filling up) is followed by another, which then fails with the real error (ENOSPC).
 */
async function writeAll(file: FsFile, pieces: readonly Uint8Array[]): Promise<void> {
  let rest = pieces.filter((piece) => piece.byteLength > 0);
  while (rest.length > 0) {
    let { bytesWritten } = await file.writev(rest as Uint8Array[]);
    if (bytesWritten === 0) throw new Error('writev wrote nothing');
    while (rest.length > 0 && bytesWritten >= rest[0]!.byteLength) bytesWritten -= rest.shift()!.byteLength;
    if (bytesWritten > 0) rest = [rest[0]!.subarray(bytesWritten), ...rest.slice(1)];
  }
}

/**
 * A file written in pieces in the staging directory, renamed to its place by {@link commit}: the
 * same steps as a whole file's save (write, fsync, rename, fsync of the directory), spread out.
 */
class LocalStagedFile implements StagedFile {
  readonly #root: string;
  readonly #temp: string;
  readonly #type: FileType;
  #file: FsFile | undefined;

  constructor(root: string, type: FileType) {
    this.#root = root;
    this.#type = type;
    // Not named after the handle: a config handle's name is not checked and could hold a path.
    this.#temp = join(root, TEMP_DIR, `${type}-${randomBytes(12).toString('hex')}`);
  }

  async #open(): Promise<FsFile> {
    if (!this.#file) {
      await mkdir(dirname(this.#temp), { recursive: true, mode: 0o700 });
      this.#file = await open(this.#temp, 'wx', 0o600);
    }
    return this.#file;
  }

  async append(pieces: readonly Uint8Array[]): Promise<void> {
    try {
      await writeAll(await this.#open(), pieces);
    } catch (error) {
      await this.discard();
      mapError(error, `save a new ${this.#type} file (${relative(this.#root, this.#temp)}) in ${this.#root}`);
    }
  }

  async commit(handle: FileHandle, last: readonly Uint8Array[]): Promise<void> {
    const target = join(this.#root, layoutPath(handle));
    try {
      const file = await this.#open();
      await writeAll(file, last);
      await file.sync();
      this.#file = undefined;
      await file.close();
      await mkdir(dirname(target), { recursive: true, mode: 0o700 });
      await rename(this.#temp, target);
      await fsyncDir(dirname(target));
    } catch (error) {
      await this.discard();
      mapError(error, `save ${layoutPath(handle)} in ${this.#root}`);
    }
  }

  async discard(): Promise<void> {
    const file = this.#file;
    this.#file = undefined;
    await file?.close().catch(() => undefined);
    await unlink(this.#temp).catch(() => undefined);
  }
}

/** A repository in a local directory (also block or network storage mounted as one). */
export class LocalBackend implements Backend {
  readonly location: string;
  /**
   * None: a file is renamed into its directory before its save returns, and a listing (readdir)
   * that starts after that sees it. (An NFS client may serve a listing from its attribute cache
   * for up to a minute; restic's 200 ms would not cover that either.)
   */
  readonly listingLagMs: number = 0;
  readonly #root: string;
  /** Packs kept open between range reads (see {@link OpenFiles}). */
  readonly #packs = new OpenFiles();

  constructor(root: string) {
    this.#root = root;
    this.location = root;
  }

  #fail(error: unknown, what: string): never {
    return mapError(error, `${what} in ${this.#root}`);
  }

  #path(handle: FileHandle): string {
    return join(this.#root, layoutPath(handle));
  }

  async create(): Promise<void> {
    try {
      await mkdir(this.#root, { recursive: true, mode: 0o700 });
      for (const type of FILE_TYPES)
        if (type !== 'config') await mkdir(join(this.#root, type), { recursive: true, mode: 0o700 });
      for (let i = 0; i < 256; i++) {
        await mkdir(join(this.#root, 'data', i.toString(16).padStart(2, '0')), {
          recursive: true,
          mode: 0o700,
        });
      }
      await mkdir(join(this.#root, TEMP_DIR), { recursive: true, mode: 0o700 });
    } catch (error) {
      this.#fail(error, 'create');
    }
  }

  async save(handle: FileHandle, data: FileBody): Promise<void> {
    await this.stage(handle.type).commit(handle, bodyPieces(data));
  }

  stage(type: FileType): StagedFile {
    return new LocalStagedFile(this.#root, type);
  }

  async load(handle: FileHandle, range?: ByteRange): Promise<Buffer> {
    const path = this.#path(handle);
    if (range) checkRange(range);
    // A pack's blobs: from the open pack, without a stat (the range says where and how much).
    if (handle.type === 'data' && range && range.offset >= 0 && range.length !== undefined) {
      try {
        return await this.#packs.read(path, range.offset, range.length);
      } catch (error) {
        return this.#fail(error, `load ${layoutPath(handle)}`);
      }
    }
    let file: FsFile | undefined;
    try {
      file = await open(path, 'r');
      if (!range) return await file.readFile();
      const { start, length } = resolveRange((await file.stat()).size, range);
      const buffer = Buffer.allocUnsafe(length);
      let done = 0;
      while (done < length) {
        const { bytesRead } = await file.read(buffer, done, length - done, start + done);
        if (bytesRead === 0) break;
        done += bytesRead;
      }
      return buffer.subarray(0, done);
    } catch (error) {
      return this.#fail(error, `load ${layoutPath(handle)}`);
    } finally {
      await file?.close();
    }
  }

  async stat(handle: FileHandle): Promise<FileInfo> {
    try {
      return { name: handle.name, size: (await stat(this.#path(handle))).size };
    } catch (error) {
      return this.#fail(error, `stat ${layoutPath(handle)}`);
    }
  }

  async remove(handle: FileHandle): Promise<void> {
    try {
      await this.#packs.forget(this.#path(handle));
      await rm(this.#path(handle), { force: true });
    } catch (error) {
      this.#fail(error, `remove ${layoutPath(handle)}`);
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
        this.#fail(error, `list ${type}`);
      }
      for (const name of names) {
        if (!isFileId(name)) continue;
        const info = await stat(join(dir, name)).catch(() => undefined);
        if (info?.isFile()) yield { name, size: info.size };
      }
    }
  }

  async #subdirs(path: string): Promise<string[]> {
    try {
      return (await readdir(path, { withFileTypes: true }))
        .filter((d) => d.isDirectory())
        .map((d) => join(path, d.name));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
      return this.#fail(error, `list ${relative(this.#root, path)}`);
    }
  }

  async removeTemporary(): Promise<number> {
    const dir = join(this.#root, TEMP_DIR);
    let names: string[];
    try {
      names = await readdir(dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return 0;
      return mapError(error, `list ${dir}`);
    }
    for (const name of names) await rm(join(dir, name), { force: true, recursive: true });
    return names.length;
  }

  async close(): Promise<void> {
    await this.#packs.closeAll();
  }
}
