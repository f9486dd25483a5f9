import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { promisify } from 'node:util';

const run = promisify(execFile);

/** The kernel escapes space, tab, newline and backslash in mount paths as octal (`\040`). */
function unescapeMountPath(path: string): string {
  return path.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8)));
}

/**
 * Mount points at or below `dir` in this process's mount namespace, newest first: the order they
 * can be unmounted in, since a later mount may sit on top of an earlier one.
 */
export async function mountsUnder(dir: string): Promise<string[]> {
  const mountinfo = await readFile('/proc/self/mountinfo', 'utf8');
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  return mountinfo
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((point): point is string => point !== undefined)
    .map(unescapeMountPath)
    .filter((point) => point === dir || point.startsWith(prefix))
    .reverse();
}

/** Error raised when something below a directory stays mounted. */
export class MountsLeftError extends Error {
  override readonly name = 'MountsLeftError';
  readonly code = 'VOLBACK_MOUNTS_LEFT';
}

/**
 * Unmounts everything at or below `dir`, deepest and newest first; a busy mount is detached lazily
 * so that the directory can be removed. Needs root, as the servers that mounted them.
 */
export async function unmountAll(dir: string): Promise<void> {
  for (let pass = 0; pass < 5; pass++) {
    const points = await mountsUnder(dir);
    if (points.length === 0) return;
    for (const point of points) {
      try {
        await run('umount', [point]);
      } catch {
        await run('umount', ['--lazy', point]).catch(() => undefined);
      }
    }
  }
  const left = await mountsUnder(dir);
  if (left.length > 0) throw new MountsLeftError(`still mounted below ${dir}: ${left.join(', ')}`);
}
