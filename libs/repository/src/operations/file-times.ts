import { lutimes, utimes } from 'node:fs/promises';
import { timeParts } from '../format/ids.ts';
import { loadNativeAddon } from '../native-addon.ts';
import type { FsPath } from './fs-path.ts';

/** libs/repository/native/times.c: utimensat with exact seconds and nanoseconds. */
interface NativeTimes {
  set(
    path: FsPath,
    atimeSeconds: bigint,
    atimeNanos: number,
    mtimeSeconds: bigint,
    mtimeNanos: number,
    follow: boolean,
  ): void;
}

const nativeTimes = loadNativeAddon<NativeTimes>('times');

/** Whether restored times are exact to the nanosecond (the addon is built). */
export const exactFileTimes = nativeTimes !== undefined;

/**
 * Sets a file's access and modification times, in nanoseconds since the epoch; a symlink's own
 * times when `symlink`. Exact with the native addon; without it, through Node's utimes, whose
 * seconds are a double (about 240 ns off at today's dates).
 */
export async function setFileTimes(
  path: FsPath,
  atime: bigint,
  mtime: bigint,
  symlink: boolean,
): Promise<void> {
  if (nativeTimes) {
    const [as, an] = timeParts(atime);
    const [ms, mn] = timeParts(mtime);
    nativeTimes.set(path, as, an, ms, mn, !symlink);
    return;
  }
  const a = Number(atime) / 1e9;
  const m = Number(mtime) / 1e9;
  await (symlink ? lutimes(path, a, m) : utimes(path, a, m));
}
