import type { TreeNode } from '@volback/repository';
import { describe, expect, it } from 'vitest';
import { findMissingBlobs, MalformedTreeError, type ReachabilityLookup, treeLinks } from './reachability.ts';

const id = (n: number) => n.toString(16).padStart(64, '0');
const file = (name: string, ...content: number[]): TreeNode => ({
  name,
  type: 'file',
  uid: 0,
  gid: 0,
  content: content.map(id),
});
const dir = (name: string, subtree: number): TreeNode => ({
  name,
  type: 'dir',
  uid: 0,
  gid: 0,
  subtree: id(subtree),
});

/** A repository of trees (id → nodes) and stored blobs. */
function repository(trees: Record<number, TreeNode[]>, stored: { data: number[]; tree: number[] }) {
  const loads: string[] = [];
  const complete = new Set<string>();
  const storedIds = { data: new Set(stored.data.map(id)), tree: new Set(stored.tree.map(id)) };
  const lookup: ReachabilityLookup = {
    has: (type, blob) => storedIds[type].has(blob),
    loadLinks: async (tree) => {
      loads.push(tree);
      return treeLinks(tree, trees[Number.parseInt(tree, 16)] ?? []);
    },
    isComplete: (tree) => complete.has(tree),
    markComplete: (tree) => complete.add(tree),
  };
  return { lookup, loads, complete };
}

describe('finding the blobs a snapshot reaches that are not stored', () => {
  const trees = {
    1: [dir('volumes', 2), file('top', 10)],
    2: [dir('a', 3), dir('b', 3), file('x', 11, 12)],
    3: [file('shared', 13), { name: 'link', type: 'symlink', uid: 0, gid: 0, linktarget: 'x' } as TreeNode],
  };

  it('given everything stored, when walked, then nothing is missing and every tree is complete', async () => {
    const repo = repository(trees, { data: [10, 11, 12, 13], tree: [1, 2, 3] });
    expect(await findMissingBlobs(id(1), repo.lookup)).toEqual([]);
    expect([...repo.complete].sort()).toEqual([id(1), id(2), id(3)]);
    expect(repo.loads.filter((t) => t === id(3))).toHaveLength(1); // a shared subtree is walked once
  });

  it('given a lost data blob and a lost tree, when walked, then both are named and what the tree hides is not', async () => {
    const repo = repository(trees, { data: [10, 11], tree: [1, 2] });
    expect(await findMissingBlobs(id(1), repo.lookup)).toEqual([
      { type: 'data', id: id(12) },
      { type: 'tree', id: id(3) },
    ]);
    expect(repo.complete.size).toBe(0);
  });

  it('given a lost data blob named at several places, when walked, then it is named once and no tree naming it is complete', async () => {
    const repo = repository(
      {
        1: [dir('volumes', 2)],
        2: [dir('a', 3), dir('c', 4), file('x', 12, 12)],
        3: trees[3],
        4: [file('y', 10, 12)],
      },
      { data: [10, 13], tree: [1, 2, 3, 4] },
    );
    expect(await findMissingBlobs(id(1), repo.lookup)).toEqual([{ type: 'data', id: id(12) }]);
    expect([...repo.complete]).toEqual([id(3)]);
  });

  it('given trees known complete, when walked again, then they are not loaded', async () => {
    const repo = repository(trees, { data: [10, 11, 12, 13], tree: [1, 2, 3] });
    await findMissingBlobs(id(1), repo.lookup);
    repo.loads.length = 0;
    expect(await findMissingBlobs(id(1), repo.lookup)).toEqual([]);
    expect(repo.loads).toEqual([]);
  });

  it('given a missing root, when walked, then the root is named', async () => {
    const repo = repository(trees, { data: [], tree: [] });
    expect(await findMissingBlobs(id(1), repo.lookup)).toEqual([{ type: 'tree', id: id(1) }]);
  });

  it('given a directory without subtree, when walked, then the tree is malformed', async () => {
    const repo = repository({ 1: [{ name: 'd', type: 'dir', uid: 0, gid: 0 }] }, { data: [], tree: [1] });
    await expect(findMissingBlobs(id(1), repo.lookup)).rejects.toBeInstanceOf(MalformedTreeError);
  });

  it('given a subtree missing a blob, named by two trees, when walked, then neither tree nor the root is complete', async () => {
    const repo = repository(
      {
        1: [dir('a', 2), dir('b', 3)],
        2: [dir('x', 4)],
        3: [dir('y', 4), file('z', 10)],
        4: [file('w', 12)],
      },
      { data: [10], tree: [1, 2, 3, 4] },
    );
    expect(await findMissingBlobs(id(1), repo.lookup)).toEqual([{ type: 'data', id: id(12) }]);
    expect(repo.complete.size).toBe(0);
    expect(repo.loads.filter((t) => t === id(4))).toHaveLength(1);
  });

  it('given 3,000 directories in one, one of them missing a blob, when walked, then each is loaded once and only that one and the root are incomplete', async () => {
    const wide: Record<number, TreeNode[]> = { 1: [] };
    for (let n = 2; n < 3_002; n++) {
      wide[1]!.push(dir(`d${n}`, n));
      wide[n] = [file('f', n === 2_500 ? 99_999 : 10), dir('empty', 5_000)];
    }
    wide[5_000] = [];
    const stored = { data: [10], tree: [1, 5_000, ...Array.from({ length: 3_000 }, (_, i) => i + 2)] };
    const repo = repository(wide, stored);
    expect(await findMissingBlobs(id(1), repo.lookup)).toEqual([{ type: 'data', id: id(99_999) }]);
    expect(repo.loads).toHaveLength(3_002);
    expect(new Set(repo.loads).size).toBe(3_002);
    expect(repo.complete.size).toBe(3_000); // all but the root and d2500
    expect(repo.complete.has(id(1)) || repo.complete.has(id(2_500))).toBe(false);
  });

  it('given a tree that cannot be read, when walked, then the walk fails with its error', async () => {
    const repo = repository(trees, { data: [10, 11, 12, 13], tree: [1, 2, 3] });
    const unreadable = new Error('pack unreadable');
    const lookup: ReachabilityLookup = {
      ...repo.lookup,
      loadLinks: (tree) => (tree === id(3) ? Promise.reject(unreadable) : repo.lookup.loadLinks(tree)),
    };
    await expect(findMissingBlobs(id(1), lookup)).rejects.toBe(unreadable);
  });
});
