// The datasets of `npm run bench -- --shape <name>` and of the chunk cache tests: volume-shaped,
// seeded (the same bytes on every machine), each with the change an incremental backup sees (pages
// rewritten in place, small files added and deleted).
import {
  closeSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  statSync,
  writeFileSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';

export const SHAPES = ['few-large', 'many-small', 'database', 'mixed', 'media'] as const;
export type Shape = (typeof SHAPES)[number];

/** xorshift32: the same dataset on every machine. */
class Random {
  #x: number;
  constructor(seed: number) {
    this.#x = seed >>> 0 || 1;
  }
  next(): number {
    let x = this.#x;
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (this.#x = x >>> 0);
  }
  bytes(n: number): Buffer {
    const words = new Uint32Array(Math.ceil(n / 4));
    for (let i = 0; i < words.length; i++) words[i] = this.next();
    return Buffer.from(words.buffer, 0, n);
  }
}

const MiB = 1024 * 1024;
const WORDS = ['volume', 'backup', 'container', 'restore', 'snapshot', 'docker', 'data', 'log', '{"id":'];

/** `bytes` of database pages (8 KiB, half random and half repeated: about 2:1 compressible) in `count` files. */
function databaseFiles(rnd: Random, dir: string, bytes: number, count: number): number {
  mkdirSync(dir, { recursive: true });
  const each = Math.max(8192, Math.ceil(bytes / count / 8192) * 8192);
  let files = 0;
  for (let left = bytes, i = 0; left > 0; i++, files++) {
    const size = Math.min(left, each);
    const fd = openSync(join(dir, `1663_${16384 + i}`), 'w');
    const page = Buffer.alloc(8192);
    for (let off = 0; off < size; off += 8192) {
      rnd.bytes(4096).copy(page, 0);
      page.fill((off / 8192) % 251, 4096);
      writeSync(fd, page, 0, Math.min(8192, size - off));
    }
    closeSync(fd);
    left -= size;
  }
  return files;
}

/**
 * `bytes` of small files (text-like, one in eight binary) of `minSize`..`maxSize` bytes, spread
 * over directories two levels deep, about `perDir` files each.
 */
function smallFiles(
  rnd: Random,
  dir: string,
  bytes: number,
  minSize: number,
  maxSize: number,
  perDir: number,
): number {
  let files = 0;
  let made = -1;
  for (let left = bytes; left > 0; files++) {
    const size = Math.min(left, minSize + (rnd.next() % (maxSize - minSize)));
    const d = Math.floor(files / perDir);
    const sub = join(dir, `d${d % 64}`, `s${d}`);
    if (d !== made) mkdirSync(sub, { recursive: true });
    made = d;
    if (files % 8 === 7) writeFileSync(join(sub, `b${files}.bin`), rnd.bytes(size));
    else {
      let text = '';
      while (text.length < size) text += `${WORDS[rnd.next() % WORDS.length]} ${rnd.next().toString(36)}\n`;
      writeFileSync(join(sub, `f${files}.txt`), text.slice(0, size));
    }
    left -= size;
  }
  return files;
}

/** `bytes` of incompressible files of `each` bytes. */
function blobFiles(rnd: Random, dir: string, bytes: number, each: number): number {
  mkdirSync(dir, { recursive: true });
  let files = 0;
  for (let left = bytes, i = 0; left > 0; i++, files++) {
    const size = Math.min(left, each);
    const fd = openSync(join(dir, `blob${i}.bin`), 'w');
    for (let off = 0; off < size; off += 4 * MiB) writeSync(fd, rnd.bytes(Math.min(4 * MiB, size - off)));
    closeSync(fd);
    left -= size;
  }
  return files;
}

/**
 * A dataset of `shape` and about `total` bytes under `root`:
 * - `few-large`: 50% database pages in 64 MiB files, 10% small text files in 64 directories,
 *   40% incompressible 32 MiB files (the bench's first dataset);
 * - `many-small`: small files of 0.5–16 KiB (about 8 KiB each), ten to a directory;
 * - `database`: 8 KiB pages in 64 MiB files;
 * - `mixed`: the volume: 60% pages in 17 files, 10% small files of 1–24 KiB
 *   in about 1.4 per directory, 30% incompressible 8 MiB files;
 * - `media`: incompressible 64 MiB files.
 */
export function makeDataset(shape: Shape, root: string, total: number): { files: number } {
  const rnd = new Random(42);
  const db = join(root, 'postgres/base');
  const small = join(root, 'app/uploads');
  const media = join(root, 'media');
  switch (shape) {
    case 'few-large': {
      const dbBytes = Math.floor(total * 0.5);
      const smallBytes = Math.floor(total * 0.1);
      return {
        files:
          databaseFiles(rnd, db, dbBytes, Math.ceil(dbBytes / (64 * MiB))) +
          smallFiles(rnd, small, smallBytes, 1024, 64 * 1024, 200) +
          blobFiles(rnd, media, total - dbBytes - smallBytes, 32 * MiB),
      };
    }
    case 'many-small':
      return { files: smallFiles(rnd, small, total, 512, 16 * 1024, 10) };
    case 'database':
      return { files: databaseFiles(rnd, db, total, Math.ceil(total / (64 * MiB))) };
    case 'mixed': {
      const dbBytes = Math.floor(total * 0.6);
      const smallBytes = Math.floor(total * 0.1);
      return {
        files:
          databaseFiles(rnd, db, dbBytes, 17) +
          smallFiles(rnd, small, smallBytes, 1024, 24 * 1024, 1.4) +
          blobFiles(rnd, media, total - dbBytes - smallBytes, 8 * MiB),
      };
    }
    case 'media':
      return { files: blobFiles(rnd, media, total, 64 * MiB) };
  }
}

/** Every file below `dir`, sorted. */
function filesBelow(dir: string): string[] {
  const found: string[] = [];
  const walk = (d: string) => {
    for (const entry of readdirSync(d, { withFileTypes: true }).sort((a, b) => (a.name < b.name ? -1 : 1))) {
      if (entry.isDirectory()) walk(join(d, entry.name));
      else found.push(join(d, entry.name));
    }
  };
  try {
    walk(dir);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
  }
  return found;
}

/**
 * Changes about 1% of the dataset: pages rewritten in place in the database files, small files
 * rewritten, added and deleted, a new incompressible file where there are only such files.
 */
export function changeOnePercent(shape: Shape, root: string, total: number): void {
  const rnd = new Random(7);
  let budget = Math.floor(total * 0.01);
  const pages = filesBelow(join(root, 'postgres/base'));
  while (pages.length > 0 && budget > 0) {
    const path = pages[rnd.next() % pages.length]!;
    const size = statSync(path).size;
    const fd = openSync(path, 'r+');
    const pos = (rnd.next() % Math.max(1, Math.floor(size / 8192))) * 8192;
    writeSync(fd, rnd.bytes(8192), 0, 8192, pos);
    closeSync(fd);
    budget -= 8192 * 8; // a changed page dirties its whole chunk; count it generously
  }
  const small = filesBelow(join(root, 'app/uploads'));
  // Small files: 1 in 200 rewritten, 1 in 400 deleted (or the budget's worth), 20 added.
  for (let i = 0; i < small.length && budget > 0; i += 200) {
    const path = small[i]!;
    writeFileSync(path, rnd.bytes(statSync(path).size));
    budget -= statSync(path).size;
  }
  for (let i = 100; i < small.length; i += 400) rmSync(small[i]!, { force: true });
  mkdirSync(join(root, 'app/uploads/new'), { recursive: true });
  for (let i = 0; i < 20; i++)
    writeFileSync(join(root, `app/uploads/new/n${i}.txt`), rnd.bytes(2048).toString('base64'));
  if (shape === 'media') blobFiles(rnd, join(root, 'media/new'), budget, budget);
}
