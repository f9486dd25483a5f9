import {
  ImportSnapshots,
  RepositoryImportCompleted,
  snapshotTags,
  SnapshotImported,
  volumeSnapshotPath,
} from '@volback/contracts';
import { parseGoTime, type Snapshot } from '@volback/repository';
import { describe, expect, it } from 'vitest';
import { decodeVolbackSnapshot, importCompleted, planImport } from './snapshot-import.ts';

const tree = 'a'.repeat(64);
const hostId = '3b1f0c9e-8d7a-4c6b-9e5f-1a2b3c4d5e6f';
const now = new Date('2025-03-20T09:00:00Z');
const command = ImportSnapshots.schema.parse({ operationId: 'import-1' });

/** A snapshot as an agent writes it today: the tags of `snapshotTags`, the host's name as hostname. */
function agentSnapshot(volumeName: string, time = '2025-03-14T03:00:02.125000000Z'): Snapshot {
  return {
    time,
    tree,
    paths: [volumeSnapshotPath(volumeName)],
    hostname: 'db-host',
    tags: snapshotTags({ hostId, hostName: 'db-host', volumeName }),
  };
}

describe('decoding volback snapshots', () => {
  it('given an agent’s tags, then host id, host name and volume come from them', () => {
    expect(decodeVolbackSnapshot(agentSnapshot('shop_db.data'))).toEqual({
      hostId,
      hostName: 'db-host',
      volumeName: 'shop_db.data',
    });
  });

  it('given a snapshot from before the tags, then the hostname is the host id and the path names the volume', () => {
    const old: Snapshot = {
      time: '2024-01-01T00:00:00Z',
      tree,
      paths: ['/volumes/pgdata'],
      hostname: hostId,
    };
    expect(decodeVolbackSnapshot(old)).toEqual({ hostId, hostName: hostId, volumeName: 'pgdata' });
  });

  it('given the tags but another path, then the tags still decide', () => {
    const tagged = { ...agentSnapshot('photos'), paths: ['/somewhere/else'] };
    expect(decodeVolbackSnapshot(tagged)?.volumeName).toBe('photos');
  });

  it('given a snapshot restic wrote of something else, then it is not volback’s', () => {
    const foreign: Snapshot = { time: '2024-01-01T00:00:00Z', tree, paths: ['/home/me'], hostname: 'laptop' };
    expect(decodeVolbackSnapshot(foreign)).toBeUndefined();
    // Several paths are not one volume either.
    expect(
      decodeVolbackSnapshot({ ...foreign, paths: ['/volumes/a1', '/volumes/b1'], hostname: hostId }),
    ).toBeUndefined();
  });

  it('given names the contracts refuse, then the snapshot is not decoded', () => {
    expect(
      decodeVolbackSnapshot({ ...agentSnapshot('ok1'), tags: ['volback', 'volume:bad name'] }),
    ).toBeUndefined();
    // No host id tag and no hostname: no host to file it under.
    const noHost: Snapshot = { time: '2024-01-01T00:00:00Z', tree, paths: ['/volumes/pgdata'] };
    expect(decodeVolbackSnapshot(noHost)).toBeUndefined();
    // A host id that is a service's command target.
    expect(decodeVolbackSnapshot({ ...noHost, hostname: 'gateway' })).toBeUndefined();
  });
});

describe('planning an import', () => {
  const known = '1'.repeat(64);
  const fresh = '2'.repeat(64);
  const older = '3'.repeat(64);
  const foreign = '4'.repeat(64);
  const withTime = (id: string, snapshot: Snapshot) => ({ id, snapshot, timeNs: parseGoTime(snapshot.time) });
  const snapshots = [
    withTime(known, agentSnapshot('photos')),
    withTime(fresh, agentSnapshot('photos', '2025-03-15T03:00:00Z')),
    withTime(older, agentSnapshot('notes', '2025-03-13T03:00:00.5+02:00')),
    withTime(foreign, { time: '2025-03-13T00:00:00Z', tree, paths: ['/etc'], hostname: 'laptop' }),
  ];

  it('given snapshots the log knows, then only the others are imported, oldest first, each valid', () => {
    const plan = planImport(command, snapshots, new Set([known]), now);
    expect(plan.imports.map((i) => i.snapshotId)).toEqual([older, fresh]);
    expect(plan).toMatchObject({ snapshots: 4, alreadyKnown: 1, skipped: 1 });
    const first = SnapshotImported.schema.parse(plan.imports[0]);
    expect(first).toMatchObject({
      hostId,
      hostName: 'db-host',
      volumeName: 'notes',
      time: '2025-03-13T01:00:00.500Z',
      paths: ['/volumes/notes'],
      operationId: 'import-1',
    });
    expect(first.tags).toContain('volback');
  });

  it('given events the log refused as duplicates, then they count as already known', () => {
    const plan = planImport(command, snapshots, new Set(), now);
    const data = RepositoryImportCompleted.schema.parse(importCompleted(command, plan, 1, 12.6, now));
    expect(data).toMatchObject({ snapshots: 4, imported: 1, alreadyKnown: 2, skipped: 1, durationMs: 13 });
  });
});
