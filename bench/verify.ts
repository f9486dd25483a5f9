// What the bench checks after each restore, outside the timed section: the restored tree is its
// source, byte for byte. A fast wrong answer must fail the run, not win it.
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

interface Entry {
  readonly type: 'file' | 'dir' | 'symlink' | 'other';
  readonly size: number;
  readonly target?: string;
}

/** Every entry under `root`, by path relative to it. */
async function entriesOf(root: string): Promise<Map<string, Entry>> {
  const entries = new Map<string, Entry>();
  const walk = async (rel: string): Promise<void> => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const stat = await lstat(join(root, path));
      if (stat.isDirectory()) {
        entries.set(path, { type: 'dir', size: 0 });
        await walk(path);
      } else if (stat.isSymbolicLink()) {
        entries.set(path, { type: 'symlink', size: 0, target: await readlink(join(root, path)) });
      } else {
        entries.set(path, { type: stat.isFile() ? 'file' : 'other', size: stat.size });
      }
    }
  };
  await walk('');
  return entries;
}

/** True when the two files hold the same bytes (read side by side, 1 MiB at a time). */
async function sameBytes(a: string, b: string): Promise<boolean> {
  const [fa, fb] = await Promise.all([open(a, 'r'), open(b, 'r')]);
  try {
    const ba = Buffer.allocUnsafe(1024 * 1024);
    const bb = Buffer.allocUnsafe(1024 * 1024);
    for (;;) {
      const [ra, rb] = await Promise.all([fa.read(ba, 0, ba.length, null), fb.read(bb, 0, bb.length, null)]);
      if (ra.bytesRead !== rb.bytesRead) return false;
      if (ra.bytesRead === 0) return true;
      if (!ba.subarray(0, ra.bytesRead).equals(bb.subarray(0, rb.bytesRead))) return false;
    }
  } finally {
    await Promise.all([fa.close(), fb.close()]);
  }
}

/** What a verified restore held. */
export interface Verified {
  readonly files: number;
  readonly bytes: number;
}

/**
 * Checks that `restored` is `source`: the same paths, each of the same type, symlinks with the
 * same target, files with the same bytes. Throws naming (up to ten of) the differences.
 */
export async function assertSameTree(source: string, restored: string, what: string): Promise<Verified> {
  const [want, got] = await Promise.all([entriesOf(source), entriesOf(restored)]);
  const problems: string[] = [];
  let files = 0;
  let bytes = 0;
  for (const [path, entry] of want) {
    if (problems.length >= 10) break;
    const other = got.get(path);
    if (!other) problems.push(`${path}: missing`);
    else if (other.type !== entry.type) problems.push(`${path}: a ${other.type}, not a ${entry.type}`);
    else if (entry.type === 'symlink' && other.target !== entry.target)
      problems.push(`${path}: points to ${other.target}, not ${entry.target}`);
    else if (entry.type === 'file') {
      if (other.size !== entry.size) problems.push(`${path}: ${other.size} bytes, not ${entry.size}`);
      else if (!(await sameBytes(join(source, path), join(restored, path))))
        problems.push(`${path}: other bytes`);
      else {
        files++;
        bytes += entry.size;
      }
    }
  }
  for (const path of got.keys()) {
    if (problems.length >= 10) break;
    if (!want.has(path)) problems.push(`${path}: not in the source`);
  }
  if (problems.length > 0) {
    throw new Error(
      `${what}: the restore differs from its source (${restored}):\n  ${problems.join('\n  ')}`,
    );
  }
  return { files, bytes };
}
