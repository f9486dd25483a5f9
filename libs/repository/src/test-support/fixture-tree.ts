import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  chownSync,
  linkSync,
  lstatSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  readlinkSync,
  symlinkSync,
  utimesSync,
  writeFileSync,
  openSync,
  ftruncateSync,
  closeSync,
  writeSync,
  type Stats,
} from 'node:fs';
import { join, relative } from 'node:path';

/** Deterministic pseudo-random bytes (xorshift), so fixtures are the same on every run. */
export function pseudoRandom(size: number, seed: number): Buffer {
  const words = new Uint32Array(Math.ceil(size / 4));
  let x = seed >>> 0 || 1;
  for (let i = 0; i < words.length; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    words[i] = x >>> 0;
  }
  return Buffer.from(words.buffer, 0, size);
}

/**
 * Builds a directory with every kind of entry a volume holds: nested dirs, a multi-chunk file,
 * an empty file, a sparse file, hardlinks, symlinks (relative, absolute, dangling), a fifo,
 * a character device (as root), unicode and 255-byte names, odd modes, owners and times.
 */
export function buildFixtureTree(root: string): void {
  mkdirSync(join(root, 'app/config/nested/deeper'), { recursive: true });
  writeFileSync(join(root, 'app/config/settings.json'), JSON.stringify({ volback: true, list: [1, 2, 3] }));
  writeFileSync(join(root, 'app/big.bin'), pseudoRandom(5 * 1024 * 1024 + 123, 7));
  writeFileSync(join(root, 'app/compressible.log'), 'GET /health 200\n'.repeat(100_000));
  writeFileSync(join(root, 'app/empty'), '');
  // Sparse: 3 MiB hole then a little data.
  const fd = openSync(join(root, 'app/sparse.img'), 'w');
  ftruncateSync(fd, 3 * 1024 * 1024);
  writeSync(fd, Buffer.from('tail data'), 0, 9, 3 * 1024 * 1024);
  closeSync(fd);
  writeFileSync(join(root, 'app/config/nested/deeper/leaf.txt'), 'leaf\n');
  writeFileSync(join(root, 'app/hard-a'), 'shared by two names\n');
  linkSync(join(root, 'app/hard-a'), join(root, 'app/config/hard-b'));
  symlinkSync('config/settings.json', join(root, 'app/link-relative'));
  symlinkSync('/etc/hostname', join(root, 'app/link-absolute'));
  symlinkSync('does/not/exist', join(root, 'app/link-dangling'));
  execFileSync('mkfifo', [join(root, 'app/queue.fifo')]);
  if (process.getuid?.() === 0) execFileSync('mknod', [join(root, 'app/null-device'), 'c', '1', '3']);
  writeFileSync(join(root, 'app/ünïcødé ✓ 名前.txt'), 'unicode name\n');
  writeFileSync(join(root, `app/${'L'.repeat(255)}`), 'a 255-byte name\n');
  writeFileSync(join(root, 'app/script.sh'), '#!/bin/sh\necho hi\n');
  chmodSync(join(root, 'app/script.sh'), 0o4755);
  chmodSync(join(root, 'app/config/settings.json'), 0o640);
  mkdirSync(join(root, 'app/sticky'), { mode: 0o1777 });
  chmodSync(join(root, 'app/sticky'), 0o1777);
  if (process.getuid?.() === 0) chownSync(join(root, 'app/config/settings.json'), 1234, 5678);
  utimesSync(
    join(root, 'app/config/nested/deeper/leaf.txt'),
    new Date('2001-02-03T04:05:06.789Z'),
    new Date('2002-03-04T05:06:07.891Z'),
  );
  utimesSync(
    join(root, 'app/config/nested'),
    new Date('2010-01-01T00:00:00Z'),
    new Date('2011-01-01T00:00:00Z'),
  );
}

/** What a restore must reproduce of each entry. */
export interface ManifestEntry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  size?: number;
  mtimeMs?: number;
  sha256?: string;
  linktarget?: string;
  rdev?: number;
  /** Entries sharing an inode share this group label. */
  hardlinkGroup?: string;
}

/** Reads a directory tree into comparable facts, keyed by relative path. */
/** An entry's type as a tree node names it ('other' for sockets). */
export function entryType(s: Stats): string {
  if (s.isFile()) return 'file';
  if (s.isDirectory()) return 'dir';
  if (s.isSymbolicLink()) return 'symlink';
  if (s.isFIFO()) return 'fifo';
  if (s.isCharacterDevice()) return 'chardev';
  if (s.isBlockDevice()) return 'dev';
  return 'other';
}

export function manifest(root: string): Record<string, ManifestEntry> {
  const out: Record<string, ManifestEntry> = {};
  const inodes = new Map<number, string>();
  const walk = (dir: string) => {
    for (const name of readdirSync(dir).sort()) {
      const path = join(dir, name);
      const rel = relative(root, path);
      const s = lstatSync(path);
      const type = entryType(s);
      const entry: ManifestEntry = { type, mode: s.mode & 0o7777, uid: s.uid, gid: s.gid };
      if (type !== 'symlink') entry.mtimeMs = Math.floor(s.mtimeMs);
      if (type === 'file') {
        entry.size = s.size;
        entry.sha256 = createHash('sha256').update(readFileSync(path)).digest('hex');
        if (s.nlink > 1) {
          if (!inodes.has(s.ino)) inodes.set(s.ino, rel);
          entry.hardlinkGroup = inodes.get(s.ino)!;
        }
      }
      if (type === 'symlink') entry.linktarget = readlinkSync(path);
      if (type === 'chardev' || type === 'dev') entry.rdev = s.rdev;
      out[rel] = entry;
      if (type === 'dir') walk(path);
    }
  };
  walk(root);
  return out;
}
