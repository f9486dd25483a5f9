import { lstat, mkdtemp, readdir, readFile, readlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { pack, type Header } from 'tar-stream';
import { describe, expect, it } from 'vitest';
import { extractTar, TargetNotEmptyError, UnsafeEntryError } from './extract-tar.ts';

/** A tar archive of `entries` (a body for files). */
function archive(entries: Array<Partial<Header> & Pick<Header, 'name'> & { body?: string }>): Readable {
  const p = pack();
  for (const { body, ...header } of entries) {
    if (body === undefined) p.entry(header);
    else p.entry(header, body);
  }
  p.finalize();
  return p as unknown as Readable;
}

const scratch = () => mkdtemp(join(tmpdir(), 'volback-extract-'));

describe('extractTar (restore --to-dir) on a real filesystem', () => {
  it('writes files, directories, symlinks and hard links with their modes and times', async () => {
    const root = join(await scratch(), 'out');
    const mtime = new Date('2024-01-02T03:04:05Z');
    const result = await extractTar(
      archive([
        { name: 'app/', type: 'directory', mode: 0o750, mtime },
        { name: 'app/a.txt', type: 'file', mode: 0o640, mtime, body: 'alpha\n' },
        { name: 'app/link', type: 'symlink', linkname: '../elsewhere' },
        { name: 'app/hard', type: 'link', linkname: 'app/a.txt' },
      ]),
      root,
    );
    expect(result).toMatchObject({ files: 2, dirs: 1, symlinks: 1, skipped: [] });
    expect(await readFile(join(root, 'app/a.txt'), 'utf8')).toBe('alpha\n');
    expect(await readFile(join(root, 'app/hard'), 'utf8')).toBe('alpha\n');
    expect((await lstat(join(root, 'app/a.txt'))).mode & 0o777).toBe(0o640);
    expect((await lstat(join(root, 'app/a.txt'))).mtime.toISOString()).toBe(mtime.toISOString());
    expect((await lstat(join(root, 'app'))).mtime.toISOString()).toBe(mtime.toISOString());
    // The symlink is created as it is, pointing outside, and never followed.
    expect(await readlink(join(root, 'app/link'))).toBe('../elsewhere');
  });

  it('refuses names that climb out, absolute names, and writing through a symlink', async () => {
    const base = await scratch();
    await expect(
      extractTar(archive([{ name: '../escape.txt', type: 'file', body: 'x' }]), join(base, 'a')),
    ).rejects.toBeInstanceOf(UnsafeEntryError);
    await expect(
      extractTar(archive([{ name: 'ok/../../escape.txt', type: 'file', body: 'x' }]), join(base, 'b')),
    ).rejects.toBeInstanceOf(UnsafeEntryError);
    await expect(
      extractTar(archive([{ name: '/etc/passwd', type: 'file', body: 'x' }]), join(base, 'c')),
    ).rejects.toBeInstanceOf(UnsafeEntryError);
    await expect(
      extractTar(
        archive([
          { name: 'out', type: 'symlink', linkname: base },
          { name: 'out/planted.txt', type: 'file', body: 'x' },
        ]),
        join(base, 'd'),
      ),
    ).rejects.toThrow(/symlink/);
    await expect(
      extractTar(
        archive([
          { name: 'same', type: 'symlink', linkname: join(base, 'victim.txt') },
          { name: 'same', type: 'file', body: 'x' },
        ]),
        join(base, 'e'),
      ),
    ).rejects.toThrow();
    expect((await readdir(base)).sort()).not.toContain('escape.txt');
    expect(await readdir(base)).not.toContain('planted.txt');
    expect(await readdir(base)).not.toContain('victim.txt');
  });

  it('skips device nodes and FIFOs and reports them; never merges into a non-empty directory', async () => {
    const root = join(await scratch(), 'out');
    const result = await extractTar(
      archive([
        { name: 'null', type: 'character-device', devmajor: 1, devminor: 3 },
        { name: 'disk', type: 'block-device', devmajor: 8, devminor: 0 },
        { name: 'pipe', type: 'fifo' },
        { name: 'kept.txt', type: 'file', body: 'k' },
      ]),
      root,
    );
    expect(result.skipped.map((s) => s.name).sort()).toEqual(['disk', 'null', 'pipe']);
    const below = join(await scratch(), 'below');
    await extractTar(archive([{ name: 'x.txt', type: 'file', body: 'x' }]), below, ['2024', '01']);
    expect(await readFile(join(below, '2024/01/x.txt'), 'utf8')).toBe('x');
    await expect(
      extractTar(archive([{ name: 'x.txt', type: 'file', body: 'x' }]), join(below, 'up'), ['..']),
    ).rejects.toBeInstanceOf(UnsafeEntryError);
    expect(await readdir(root)).toEqual(['kept.txt']);

    const busy = await scratch();
    await writeFile(join(busy, 'mine.txt'), 'mine');
    await expect(extractTar(archive([{ name: 'a', type: 'file', body: 'a' }]), busy)).rejects.toBeInstanceOf(
      TargetNotEmptyError,
    );
    expect(await readFile(join(busy, 'mine.txt'), 'utf8')).toBe('mine');
  });
});
