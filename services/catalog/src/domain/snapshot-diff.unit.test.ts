import type { TreeNode } from '@volback/repository';
import { describe, expect, it } from 'vitest';
import { diffDirectory } from './snapshot-diff.ts';

const file = (name: string, content: string[], extra: Partial<TreeNode> = {}): TreeNode => ({
  name,
  type: 'file',
  mode: 0o644,
  mtime: '2025-03-14T02:00:00Z',
  uid: 0,
  gid: 0,
  size: content.length * 10,
  content,
  ...extra,
});
const dir = (name: string, subtree: string, extra: Partial<TreeNode> = {}): TreeNode => ({
  name,
  type: 'dir',
  mode: 0o20000000755,
  uid: 0,
  gid: 0,
  subtree,
  ...extra,
});

describe('diffDirectory', () => {
  it('given a name only after or only before, then it is added or removed', () => {
    const diff = diffDirectory([file('old.txt', ['a'])], [file('new.txt', ['b'])]);
    expect(diff.added.map((n) => n.name)).toEqual(['new.txt']);
    expect(diff.removed.map((n) => n.name)).toEqual(['old.txt']);
    expect(diff.changed).toEqual([]);
    expect(diff.descend).toEqual([]);
  });

  it('given the same name with other blobs, size, or only another mtime, then content or metadata changed', () => {
    const diff = diffDirectory(
      [file('a', ['1']), file('b', ['2']), file('c', ['3']), file('same', ['4'])],
      [
        file('a', ['9']),
        file('b', ['2'], { size: 11 }),
        file('c', ['3'], { mtime: '2025-03-15T00:00:00Z' }),
        file('same', ['4']),
      ],
    );
    expect(diff.changed.map((c) => [c.after.name, c.kind])).toEqual([
      ['a', 'content'],
      ['b', 'content'],
      ['c', 'metadata'],
    ]);
  });

  it('given a file that became a directory, then its type changed and nothing is compared below', () => {
    const diff = diffDirectory([file('x', ['1'])], [dir('x', 't1')]);
    expect(diff.changed.map((c) => c.kind)).toEqual(['type']);
    expect(diff.descend).toEqual([]);
  });

  it('given directories, then only those with another subtree are descended into, and their own times do not count', () => {
    const diff = diffDirectory(
      [dir('same', 't1'), dir('other', 't2', { mtime: '2025-01-01T00:00:00Z' })],
      [dir('same', 't1'), dir('other', 't3', { mtime: '2025-02-01T00:00:00Z' })],
    );
    expect(diff.changed).toEqual([]);
    expect(diff.descend).toEqual([{ name: 'other', before: 't2', after: 't3' }]);
  });

  it('given a symlink pointing elsewhere, then its content changed', () => {
    const link = (target: string): TreeNode => ({
      name: 'l',
      type: 'symlink',
      uid: 0,
      gid: 0,
      linktarget: target,
    });
    expect(diffDirectory([link('a')], [link('b')]).changed.map((c) => c.kind)).toEqual(['content']);
  });
});
