import { goModeFromPosix, posixPermissionsFromGo, type BlobSource, type TreeNode } from '@volback/repository';
import { describe, expect, it } from 'vitest';
import { filterSpecialEntries, SpecialEntryFilter } from './special-entries.ts';

function node(
  name: string,
  type: TreeNode['type'],
  posixMode: number,
  extra: Partial<TreeNode> = {},
): TreeNode {
  return { name, type, mode: goModeFromPosix(posixMode), uid: 0, gid: 0, content: null, ...extra };
}

const setuidRoot = node('su', 'file', 0o104755, { size: 10, content: [] });
const setgidFile = node('sg', 'file', 0o102755, { size: 5, content: [] });
const sharedDir = node('shared', 'dir', 0o42775, { subtree: 't-shared' });
const block = node('sda', 'dev', 0o60666, { device: 2048 });
const char = node('null', 'chardev', 0o20666, { device: 259 });
const fifo = node('queue', 'fifo', 0o10644);
const plain = node('notes.txt', 'file', 0o100644, { size: 3, content: [] });

describe('filterSpecialEntries', () => {
  it('given device nodes, then they are left out whatever is asked', () => {
    for (const keep of [false, true]) {
      const result = filterSpecialEntries([block, char, fifo, plain], keep);
      expect(result.kept.map((n) => n.name)).toEqual(['queue', 'notes.txt']);
      expect(result.devices.map((n) => n.name)).toEqual(['sda', 'null']);
    }
  });

  it('given setuid and setgid files, then their bits are cleared and the rest of the mode kept', () => {
    const { kept, stripped } = filterSpecialEntries([setuidRoot, setgidFile, plain], false);
    expect(stripped.map((n) => n.name)).toEqual(['su', 'sg']);
    expect(kept.map((n) => posixPermissionsFromGo(n.mode!))).toEqual([0o755, 0o755, 0o644]);
  });

  it('given setuid kept, or a setgid directory, then the bits stay', () => {
    expect(filterSpecialEntries([setuidRoot], true)).toMatchObject({ kept: [setuidRoot], stripped: [] });
    const { kept, stripped } = filterSpecialEntries([sharedDir], false);
    expect(stripped).toEqual([]);
    expect(posixPermissionsFromGo(kept[0]!.mode!)).toBe(0o2775);
  });
});

describe('SpecialEntryFilter', () => {
  const trees: Record<string, TreeNode[]> = {
    root: [node('volumes', 'dir', 0o40755, { subtree: 'volumes' })],
    volumes: [node('data', 'dir', 0o40755, { subtree: 'data' })],
    data: [
      node('a', 'dir', 0o40755, { subtree: 'same' }),
      node('b', 'dir', 0o40755, { subtree: 'same' }),
      block,
      plain,
    ],
    same: [setuidRoot, char],
  };
  const source: BlobSource = {
    loadBlob: async () => Buffer.alloc(0),
    loadTree: async (id) => trees[id]!,
  };

  async function walk(filter: SpecialEntryFilter, id: string): Promise<void> {
    for (const n of await filter.loadTree(id)) if (n.type === 'dir') await walk(filter, n.subtree!);
  }

  it('given a walk from the root, then what it left out is listed by path, a shared tree at each place', async () => {
    const filter = new SpecialEntryFilter(source, {
      rootTree: 'root',
      within: '/volumes/data',
      keepSpecialModes: false,
    });
    await walk(filter, 'root');
    expect([...filter.filtered.devices.keys()]).toEqual([
      '/volumes/data/sda',
      '/volumes/data/a/null',
      '/volumes/data/b/null',
    ]);
    expect([...filter.filtered.stripped.keys()]).toEqual(['/volumes/data/a/su', '/volumes/data/b/su']);
  });

  it('given a tree read again at a place its first read did not know, then that place is listed too', async () => {
    // Depth first: `same` is read below /x before /y is listed, then again below /y/z.
    const later: Record<string, TreeNode[]> = {
      root: [node('x', 'dir', 0o40755, { subtree: 'same' }), node('y', 'dir', 0o40755, { subtree: 'y' })],
      y: [node('z', 'dir', 0o40755, { subtree: 'same' })],
      same: [setuidRoot, char],
    };
    const filter = new SpecialEntryFilter(
      { loadBlob: async () => Buffer.alloc(0), loadTree: async (id) => later[id]! },
      { rootTree: 'root', within: '/', keepSpecialModes: false },
    );
    await walk(filter, 'root');
    expect([...filter.filtered.devices.keys()]).toEqual(['/x/null', '/y/z/null']);
    expect([...filter.filtered.stripped.keys()]).toEqual(['/x/su', '/y/z/su']);
  });

  it('given a sub-path, then only what is below it is listed (the rest is not restored)', async () => {
    // A restore's inner path of a whole volume ends with a slash (`/volumes/data/`).
    const filter = new SpecialEntryFilter(source, {
      rootTree: 'root',
      within: '/volumes/data/b/',
      keepSpecialModes: false,
    });
    await walk(filter, 'root');
    expect([...filter.filtered.devices.keys()]).toEqual(['/volumes/data/b/null']);
    expect([...filter.filtered.stripped.keys()]).toEqual(['/volumes/data/b/su']);
  });
});
