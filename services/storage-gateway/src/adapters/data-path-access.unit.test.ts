import { createHash } from 'node:crypto';
import type { DataRequester, RestoreGrant } from '@volback/contracts';
import { DataPathErrorCode } from '@volback/data-path';
import { decodeTree, encodeTree, GoMode, type TreeNode } from '@volback/repository';
import { describe, expect, it } from 'vitest';
import type { StoredSnapshot } from '../domain/snapshot-selection.ts';
import { DataPathAccess } from './data-path-access.ts';

const sha = (data: Buffer) => createHash('sha256').update(data).digest('hex');
const TIME = '2025-03-14T03:00:00Z';
const base = { mtime: TIME, atime: TIME, ctime: TIME, uid: 0, gid: 0 };

/** A repository of trees in memory: a snapshot of host `hostId` whose root holds a dir with a file. */
function world() {
  const trees = new Map<string, Buffer>();
  const snapshots: StoredSnapshot[] = [];
  const put = (nodes: TreeNode[]) => {
    const bytes = encodeTree(nodes);
    trees.set(sha(bytes), bytes);
    return sha(bytes);
  };
  /** A tree of one directory per name, each holding a file `f` of the data blob `dataOf(name)`. */
  const dirsOf = (names: readonly string[], dataOf: (name: string) => string) => {
    const inners = names.map((name) =>
      put([{ ...base, name: 'f', type: 'file', mode: 0o644, size: 1, content: [dataOf(name)] }]),
    );
    const root = put(
      names.map((name, i) => ({ ...base, name, type: 'dir', mode: GoMode.Dir + 0o755, subtree: inners[i] })),
    );
    return { root, inners };
  };
  /** A snapshot of host `hostId` with the tree `root`, stored. */
  const commit = (hostId: string, root: string) => {
    const stored = {
      id: sha(Buffer.from(`${hostId}:${root}`)),
      snapshot: {
        time: TIME,
        tree: root,
        paths: ['/volumes/v'],
        hostname: hostId,
        tags: [`host-id:${hostId}`],
      },
    };
    snapshots.push(stored);
    return stored;
  };
  const snapshotOf = (hostId: string, dataId: string) => {
    const { root, inners } = dirsOf(['d'], () => dataId);
    return { ...commit(hostId, root), inner: inners[0]!, dataId };
  };
  /** A snapshot whose root holds a directory per name, each with a file of its own data blob. */
  const wideSnapshotOf = (hostId: string, names: readonly string[]) => {
    const dataOf = (name: string) => sha(Buffer.from(name));
    return { ...commit(hostId, dirsOf(names, dataOf).root), dataOf };
  };
  /** The trees loaded: how many, how many at most at once, and which cannot be read. */
  const loads = { count: 0, loading: 0, most: 0, failing: new Set<string>() };
  const grants = new Map<string, RestoreGrant>();
  let now = Date.parse('2025-03-14T04:00:00Z');
  const access = new DataPathAccess({
    repository: {
      snapshots: async () => snapshots,
      loadTree: async (id) => {
        loads.count++;
        loads.most = Math.max(loads.most, ++loads.loading);
        try {
          await new Promise((resolve) => setImmediate(resolve));
          if (loads.failing.has(id)) throw new Error(`tree ${id} cannot be read`);
          return decodeTree(trees.get(id)!, id);
        } finally {
          loads.loading--;
        }
      },
    },
    grants: { get: async (id) => grants.get(id) },
    clock: () => now,
    idleMs: 60_000,
    grantCacheMs: 0,
  });
  return {
    access,
    trees,
    snapshotOf,
    wideSnapshotOf,
    loads,
    grants,
    advance: (ms: number) => (now += ms),
    now: () => now,
  };
}

const A: DataRequester = { kind: 'host', hostId: 'a' };
const code = (work: Promise<unknown>) =>
  work.then(
    () => 'ok',
    (e: { code?: string }) => e.code,
  );

describe('DataPathAccess', () => {
  it('given a snapshot of A, then A reads its trees and data, walking them when nothing was served yet', async () => {
    const w = world();
    const s = w.snapshotOf('a', 'd'.repeat(64));
    expect(await code(w.access.admitBlobs(A, undefined, 'data', [s.dataId]))).toBe('ok');
    expect(await code(w.access.admitBlobs(A, undefined, 'tree', [s.inner]))).toBe('ok');
  });

  it("given B's snapshot, then A is refused it, its trees and its data, and the catalog is not", async () => {
    const w = world();
    w.snapshotOf('a', 'a'.repeat(64));
    const s = w.snapshotOf('b', 'b'.repeat(64));
    expect(await code(w.access.admitSnapshot(A, undefined, s))).toBe(DataPathErrorCode.Forbidden);
    expect(await code(w.access.admitBlobs(A, undefined, 'tree', [s.snapshot.tree]))).toBe(
      DataPathErrorCode.Forbidden,
    );
    expect(await code(w.access.admitBlobs(A, undefined, 'data', [s.dataId]))).toBe(
      DataPathErrorCode.Forbidden,
    );
    expect(await w.access.admitBlobs({ kind: 'catalog' }, undefined, 'data', [s.dataId])).toBeUndefined();
  });

  it('given a grant, then A reads the granted snapshot until the grant expires', async () => {
    const w = world();
    const s = w.snapshotOf('b', 'b'.repeat(64));
    w.grants.set('r1', {
      hostId: 'a',
      snapshotId: s.id,
      expiresAt: new Date(w.now() + 60_000).toISOString(),
    });
    await w.access.admitSnapshot(A, 'r1', s);
    const scope = await w.access.admitBlobs(A, 'r1', 'tree', [s.snapshot.tree]);
    // serving the root makes its children readable without a walk
    w.access.served(scope, 'tree', [s.snapshot.tree], [w.trees.get(s.snapshot.tree)!]);
    expect(await code(w.access.admitBlobs(A, 'r1', 'tree', [s.inner]))).toBe('ok');
    w.advance(60_000);
    expect(await code(w.access.admitBlobs(A, 'r1', 'data', [s.dataId]))).toBe(DataPathErrorCode.Forbidden);
    expect(await code(w.access.admitSnapshot(A, 'r1', s))).toBe(DataPathErrorCode.Forbidden);
  });

  it('given a snapshot committed after a walk, then a later read walks it too', async () => {
    const w = world();
    const first = w.snapshotOf('a', '1'.repeat(64));
    expect(await code(w.access.admitBlobs(A, undefined, 'data', [first.dataId]))).toBe('ok');
    const second = w.snapshotOf('a', '2'.repeat(64));
    expect(await code(w.access.admitBlobs(A, undefined, 'data', [second.dataId]))).toBe('ok');
    // and a record unused for longer than idleMs is dropped, then rebuilt by a walk
    w.advance(120_000);
    expect(await code(w.access.admitBlobs(A, undefined, 'data', [first.dataId]))).toBe('ok');
  });

  it('given a snapshot of 3,000 directories, then a walk loads each tree once, at most 64 at a time, and a later one only what is new', async () => {
    const w = world();
    const dirs = Array.from({ length: 3000 }, (_, i) => `dir-${i}`);
    const first = w.wideSnapshotOf('a', dirs);
    expect(await code(w.access.admitBlobs(A, undefined, 'data', [first.dataOf('dir-2999')]))).toBe('ok');
    expect([w.loads.count, w.loads.most]).toEqual([3001, 64]);
    // a newer snapshot sharing 3,000 directories: its root and its one new directory are read
    const second = w.wideSnapshotOf('a', [...dirs, 'dir-new']);
    expect(await code(w.access.admitBlobs(A, undefined, 'data', [second.dataOf('dir-new')]))).toBe('ok');
    expect(w.loads.count).toBe(3003);
    expect(await code(w.access.admitBlobs(A, undefined, 'data', [sha(Buffer.from('elsewhere'))]))).toBe(
      DataPathErrorCode.Forbidden,
    );
  });

  it('given a tree that cannot be read, then the walk fails with its error and a later one reads the whole snapshot', async () => {
    const w = world();
    const s = w.wideSnapshotOf(
      'a',
      Array.from({ length: 300 }, (_, i) => `dir-${i}`),
    );
    const root = decodeTree(w.trees.get(s.snapshot.tree)!, s.snapshot.tree);
    const unreadable = root[150]!.subtree!;
    w.loads.failing.add(unreadable);
    await expect(w.access.admitBlobs(A, undefined, 'data', [s.dataOf(root[150]!.name)])).rejects.toThrow(
      `tree ${unreadable} cannot be read`,
    );
    w.loads.failing.clear();
    expect(await code(w.access.admitBlobs(A, undefined, 'data', [s.dataOf(root[150]!.name)]))).toBe('ok');
    expect(await code(w.access.admitBlobs(A, undefined, 'data', [s.dataOf(root[299]!.name)]))).toBe('ok');
  });
});
