import { parseGoTime, timeParts } from '../format/ids.ts';
import { posixPermissionsFromGo, type TreeNode } from '../format/tree.ts';
import { loadNativeAddon } from '../native-addon.ts';
import type { FsPath } from './fs-path.ts';

/** libs/repository/native/write.c (see there). */
interface NativeWrite {
  writeFiles(paths: FsPath[], datas: Uint8Array[], meta: Float64Array): Promise<Array<Error | null>>;
}

const META = 8;
const addon = loadNativeAddon<NativeWrite>('write');

/** The calls whose failure means a file's content is not there (write.c removes what it created). */
const CONTENT_SYSCALLS: ReadonlySet<string> = new Set(['open', 'write']);

/** True when a {@link writeRestoredFiles} failure left its file without its content. */
export function contentLost(error: unknown): boolean {
  return CONTENT_SYSCALLS.has((error as NodeJS.ErrnoException).syscall ?? '');
}

/**
 * Whether {@link writeRestoredFiles} can write a file of this node: the addon is built and the
 * node needs nothing but content, owner, mode and times (no extended attributes).
 */
export function writesWhole(node: TreeNode): boolean {
  return addon !== undefined && node.mode !== undefined && !!node.mtime && !node.extended_attributes?.length;
}

/**
 * Writes new files (never through a symlink, never over an entry) with their content, owner (with
 * `asOwner`), mode and times, one after the other in one job on libuv's thread pool; each file's
 * result is null or its error. Only for nodes {@link writesWhole} accepts; meant for small files
 * (their bytes are copied).
 */
export function writeRestoredFiles(
  files: ReadonlyArray<{ path: FsPath; data: Uint8Array; node: TreeNode }>,
  asOwner: boolean,
): Promise<Array<Error | null>> {
  const meta = new Float64Array(files.length * META);
  for (const [i, { node }] of files.entries()) {
    const mtime = parseGoTime(node.mtime!);
    const [as, an] = timeParts(node.atime ? parseGoTime(node.atime) : mtime);
    const [ms, mn] = timeParts(mtime);
    const owner = asOwner && node.uid !== undefined && node.gid !== undefined;
    meta.set(
      [posixPermissionsFromGo(node.mode!), owner ? 1 : 0, owner ? node.uid! : 0, owner ? node.gid! : 0],
      i * META,
    );
    meta.set([Number(as), an, Number(ms), mn], i * META + 4);
  }
  return addon!.writeFiles(
    files.map((f) => f.path),
    files.map((f) => f.data),
    meta,
  );
}
