import { constants } from 'node:fs';
import { link, lstat, mkdir, open, readdir, symlink, utimes } from 'node:fs/promises';
import { isAbsolute, join, sep } from 'node:path';
import type { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { extract, type Header } from 'tar-stream';

/** A tar entry that was not written, and why. */
export interface SkippedEntry {
  name: string;
  reason: string;
}

/** What an extraction wrote. */
export interface ExtractResult {
  files: number;
  dirs: number;
  symlinks: number;
  bytes: number;
  /** Device nodes, FIFOs and other entries that are never created. */
  skipped: SkippedEntry[];
}

/** An archive entry that would write outside the target, or through a link. */
export class UnsafeEntryError extends Error {
  override readonly name = 'UnsafeEntryError';
  readonly code = 'VOLBACK_CLI_UNSAFE_TAR_ENTRY';
}

/** The target directory is not empty (an extraction never merges into or replaces existing files). */
export class TargetNotEmptyError extends Error {
  override readonly name = 'TargetNotEmptyError';
  readonly code = 'VOLBACK_CLI_TARGET_NOT_EMPTY';
}

/** The parts of an entry name, refused when it could leave the target. */
function safeParts(name: string): string[] {
  if (isAbsolute(name) || name.startsWith('/') || name.includes('\0'))
    throw new UnsafeEntryError(`refusing the absolute path ${JSON.stringify(name)} in the archive`);
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  if (parts.some((p) => p === '..' || p.includes(sep)))
    throw new UnsafeEntryError(`refusing ${JSON.stringify(name)} in the archive: it climbs out with ..`);
  return parts;
}

/**
 * Every directory from `root` down to `parts` (excluding the last) exists as a real directory:
 * created when missing, refused when one is a symlink or not a directory (never followed).
 */
async function ensureParents(root: string, parts: readonly string[]): Promise<void> {
  let current = root;
  for (const part of parts.slice(0, -1)) {
    current = join(current, part);
    const st = await lstat(current).catch(() => undefined);
    if (!st) await mkdir(current, { mode: 0o755 });
    else if (!st.isDirectory())
      throw new UnsafeEntryError(
        `refusing to write below ${JSON.stringify(current)}: it is ${st.isSymbolicLink() ? 'a symlink' : 'not a directory'}`,
      );
  }
}

/**
 * Extracts a tar stream into `root` (below `prefix`), which must be missing or empty. Never writes outside it: no
 * absolute names, no `..`, no writing through symlinks (each parent is checked with lstat, files
 * are opened with O_NOFOLLOW and O_EXCL), hard links only to entries inside it; device nodes and
 * FIFOs are skipped and reported, never created.
 */
export async function extractTar(
  source: Readable,
  root: string,
  /** Directories inside `root` that every entry goes below (a sub-path restored at its own path). */
  prefix: readonly string[] = [],
): Promise<ExtractResult> {
  const base = prefix.flatMap((p) => safeParts(p));
  await mkdir(root, { recursive: true });
  if ((await readdir(root)).length > 0)
    throw new TargetNotEmptyError(`${root} is not empty: restore into a new or empty directory`);
  const result: ExtractResult = { files: 0, dirs: 0, symlinks: 0, bytes: 0, skipped: [] };
  const dirTimes: Array<{ path: string; mtime: Date }> = [];
  const ex = extract();
  ex.on('entry', (header: Header, stream, next) => {
    void (async () => {
      const own = safeParts(header.name);
      if (own.length === 0 && base.length === 0) {
        stream.resume();
        return;
      }
      const parts = [...base, ...own];
      const path = join(root, ...parts);
      await ensureParents(root, parts);
      const mode = (header.mode ?? 0o644) & 0o7777;
      switch (header.type) {
        case 'directory': {
          const st = await lstat(path).catch(() => undefined);
          if (!st) await mkdir(path, { mode: mode | 0o700 });
          else if (!st.isDirectory()) throw new UnsafeEntryError(`refusing ${path}: it is not a directory`);
          if (header.mtime) dirTimes.push({ path, mtime: header.mtime });
          result.dirs++;
          stream.resume();
          return;
        }
        case 'file':
        case 'contiguous-file': {
          const handle = await open(
            path,
            constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW,
            mode,
          );
          try {
            await handle.chmod(mode);
          } catch (error) {
            await handle.close();
            throw error;
          }
          // The write stream closes the handle when done (or failed).
          await pipeline(stream, handle.createWriteStream());
          if (header.mtime) await utimes(path, header.mtime, header.mtime);
          result.files++;
          result.bytes += header.size ?? 0;
          return;
        }
        case 'symlink':
          // Created as it is, never followed: later entries below it are refused by ensureParents.
          await symlink(header.linkname ?? '', path);
          result.symlinks++;
          stream.resume();
          return;
        case 'link': {
          const target = join(root, ...safeParts(header.linkname ?? ''));
          const st = await lstat(target).catch(() => undefined);
          if (!st?.isFile())
            throw new UnsafeEntryError(`refusing the hard link ${path}: its target is not a file here`);
          await link(target, path);
          result.files++;
          stream.resume();
          return;
        }
        default:
          result.skipped.push({
            name: parts.join('/'),
            reason: `${header.type ?? 'unknown'} entries are not created`,
          });
          stream.resume();
      }
    })().then(
      () => next(),
      (error: unknown) => {
        stream.resume();
        ex.destroy(error as Error);
      },
    );
  });
  await pipeline(source, ex);
  // Directory times last: writing into a directory changes its mtime.
  for (const { path, mtime } of dirTimes.reverse()) await utimes(path, mtime, mtime).catch(() => undefined);
  return result;
}
