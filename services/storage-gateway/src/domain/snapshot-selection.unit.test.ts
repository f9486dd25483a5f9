import { parseGoTime, type Snapshot } from '@volback/repository';
import { describe, expect, it } from 'vitest';
import {
  sameSnapshot,
  selectSnapshot,
  snapshotHostId,
  tagsOfCommit,
  type StoredSnapshot,
} from './snapshot-selection.ts';

const tree = 'a'.repeat(64);
const snap = (id: string, hostname: string, path: string, time: string): StoredSnapshot => ({
  id: id.padEnd(64, '0'),
  snapshot: { time, tree, paths: [path], hostname },
  timeNs: parseGoTime(time),
});

const all = [
  snap('aa11', 'host-1', '/volumes/db', '2025-03-14T03:00:00Z'),
  snap('aa22', 'host-1', '/volumes/db', '2025-03-14T04:00:00.5+01:00'), // 03:00:00.5 UTC: newest
  snap('bb33', 'host-1', '/volumes/web', '2025-03-15T03:00:00Z'),
  snap('cc44', 'host-2', '/volumes/db', '2025-03-16T03:00:00Z'),
];

describe('selecting a snapshot', () => {
  it('takes the newest of a host and path for latest, comparing instants across offsets', () => {
    expect(selectSnapshot(all, { ref: 'latest', hostname: 'host-1', path: '/volumes/db' })).toEqual({
      kind: 'found',
      snapshot: all[1],
    });
    expect(selectSnapshot(all, { ref: 'latest' })).toEqual({ kind: 'found', snapshot: all[3] });
    expect(selectSnapshot(all, { ref: 'latest', hostname: 'host-3' })).toEqual({ kind: 'none' });
  });

  it('finds by id or unique prefix, and says when a prefix is ambiguous', () => {
    expect(selectSnapshot(all, { ref: 'bb' })).toEqual({ kind: 'found', snapshot: all[2] });
    expect(selectSnapshot(all, { ref: all[0]!.id })).toEqual({ kind: 'found', snapshot: all[0] });
    expect(selectSnapshot(all, { ref: 'aa' })).toEqual({ kind: 'ambiguous', count: 2 });
    expect(selectSnapshot(all, { ref: 'ff' })).toEqual({ kind: 'none' });
    expect(selectSnapshot(all, { ref: 'LATEST' }).kind).toBe('invalid');
  });

  it('treats a commit sent twice as the same snapshot, and any difference as another', () => {
    const a: Snapshot = {
      time: '2025-03-14T03:00:00Z',
      tree,
      paths: ['/volumes/db'],
      hostname: 'h',
      tags: ['x'],
    };
    expect(sameSnapshot(a, { ...a, username: 'root', program_version: 'volback' })).toBe(true);
    expect(sameSnapshot(a, { ...a, tags: null })).toBe(false);
    expect(sameSnapshot(a, { ...a, parent: tree })).toBe(false);
    expect(sameSnapshot(a, { ...a, time: '2025-03-14T03:00:01Z' })).toBe(false);
  });
});

describe('whose a snapshot is', () => {
  it('given a host-id tag, then that host; given none (before the tag), then the hostname', () => {
    expect(snapshotHostId({ ...all[0]!.snapshot, tags: ['volback', 'host-id:h-9'] })).toBe('h-9');
    expect(snapshotHostId(all[0]!.snapshot)).toBe('host-1');
  });

  it('given a commit by host h-1 that names another host, then its host-id tag is h-1 alone', () => {
    expect(tagsOfCommit(['volback', 'host-id:h-2', 'volume:db'], 'h-1')).toEqual([
      'volback',
      'volume:db',
      'host-id:h-1',
    ]);
    expect(tagsOfCommit(undefined, 'h-1')).toEqual(['host-id:h-1']);
    expect(tagsOfCommit(['volback', 'host-id:h-1', 'nightly'], 'h-1')).toEqual([
      'volback',
      'host-id:h-1',
      'nightly',
    ]);
  });

  it('given a readable filter, then latest picks only among the snapshots it keeps', () => {
    const readable = (s: StoredSnapshot) => s.snapshot.hostname === 'host-1';
    expect(selectSnapshot(all, { ref: 'latest', readable })).toEqual({ kind: 'found', snapshot: all[2] });
  });
});
