import { lstatSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { TreeNode } from '../format/tree.ts';
import { contentLost, writeRestoredFiles, writesWhole } from './file-write.ts';

let dir: string;

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), 'volback-file-write-'));
});

afterAll(() => {
  if (dir) rmSync(dir, { recursive: true, force: true });
});

const node = (fields: Partial<TreeNode>): TreeNode => ({
  name: 'f',
  type: 'file',
  mode: 0o640,
  mtime: '2024-05-06T07:08:09.123456789Z',
  atime: '2023-01-02T03:04:05.5Z',
  uid: process.getuid?.() ?? 0,
  gid: process.getgid?.() ?? 0,
  ...fields,
});

const probe = node({});
const describeWithAddon = writesWhole(probe) ? describe : describe.skip;

describeWithAddon('small files written in a batch on the thread pool', () => {
  it('writes each file with its mode and exact times; refuses existing entries and symlinks, file by file', async () => {
    const target = join(dir, 'elsewhere');
    writeFileSync(target, 'must stay');
    writeFileSync(join(dir, 'taken'), 'already here');
    symlinkSync(target, join(dir, 'link'));
    const files = [
      { path: join(dir, 'a'), data: Buffer.from('first file\n'), node: node({ mode: 0o600 }) },
      { path: join(dir, 'taken'), data: Buffer.from('not written'), node: node({}) },
      { path: join(dir, 'link'), data: Buffer.from('not through a symlink'), node: node({}) },
      { path: join(dir, 'missing/b'), data: Buffer.from('no directory'), node: node({}) },
      { path: Buffer.from(`${dir}/\xff-name`, 'latin1'), data: Buffer.alloc(0), node: node({ mode: 0o755 }) },
    ];
    const results = await writeRestoredFiles(files, false);
    expect(results.map((r) => r && (r as NodeJS.ErrnoException).code)).toEqual([
      null,
      'EEXIST',
      'EEXIST',
      'ENOENT',
      null,
    ]);
    expect(results.filter(Boolean).every((error) => contentLost(error) && /open/.test(error!.message))).toBe(
      true,
    );

    // Before reading it: a read moves the access time.
    const a = lstatSync(join(dir, 'a'), { bigint: true });
    expect(Number(a.mode) & 0o7777).toBe(0o600);
    expect(a.mtimeNs).toBe(1714979289123456789n);
    expect(a.atimeNs).toBe(1672628645500000000n);
    expect(readFileSync(join(dir, 'a'), 'utf8')).toBe('first file\n');
    const latin1 = lstatSync(Buffer.from(`${dir}/\xff-name`, 'latin1'));
    expect(latin1.size).toBe(0);
    expect(latin1.mode & 0o7777).toBe(0o755);
    // What was there is left as it was.
    expect(readFileSync(join(dir, 'taken'), 'utf8')).toBe('already here');
    expect(readFileSync(target, 'utf8')).toBe('must stay');
    expect(lstatSync(join(dir, 'link')).isSymbolicLink()).toBe(true);
  });

  it('takes no node it cannot write whole', () => {
    expect(writesWhole(node({ extended_attributes: [{ name: 'user.x', value: '' }] }))).toBe(false);
    expect(writesWhole(node({ mode: undefined }))).toBe(false);
  });
});
