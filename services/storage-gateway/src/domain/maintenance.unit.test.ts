import { ForgetSnapshots, RepositoryChecked, RepositoryPruned, SnapshotsForgotten } from '@volback/contracts';
import type { ForgetDecision } from '@volback/repository';
import { describe, expect, it } from 'vitest';
import {
  forgetSelection,
  forgetPolicy,
  maintenanceFailed,
  repositoryChecked,
  repositoryPruned,
  snapshotsForgotten,
  type ForgetCommand,
} from './maintenance.ts';

const now = new Date('2025-03-14T05:00:00Z');
const ids = ['1', '2', '3'].map((c) => c.repeat(64));
const command: ForgetCommand = ForgetSnapshots.schema.parse({
  operationId: 'forget-1',
  hostId: 'docker-01',
  volumeName: 'shop_db.data',
  retention: { keepDaily: 7, keepTags: ['keep,forever', 'pinned'] },
});
const decisions: ForgetDecision[] = ids.map((id, i) => ({
  id,
  snapshot: { time: '2025-03-14T03:00:00Z', tree: id, paths: ['/volumes/shop_db.data'] },
  keep: i === 0,
  reasons: i === 0 ? ['daily snapshot'] : [],
}));

describe('maintenance outcomes', () => {
  it('turns a retention into restic’s policy and filter: one volume of one host', () => {
    expect(forgetPolicy(command.retention)).toEqual({
      keepDaily: 7,
      keepTags: [['keep', 'forever'], ['pinned']],
    });
    const { filter, select } = forgetSelection(command);
    expect(filter).toEqual({ paths: ['/volumes/shop_db.data'] });
    const snapshot = { time: now.toISOString(), tree: ids[0]!, paths: ['/volumes/shop_db.data'] };
    // Tagged by the agent (the hostname is the host's name), or from before the tags.
    expect(select({ ...snapshot, hostname: 'db.example', tags: ['host-id:docker-01'] })).toBe(true);
    expect(select({ ...snapshot, hostname: 'docker-01' })).toBe(true);
    expect(select({ ...snapshot, hostname: 'db.example', tags: ['host-id:docker-02'] })).toBe(false);
    // Another host that names itself after this one is not in its retention.
    expect(select({ ...snapshot, hostname: 'docker-01', tags: ['host-id:docker-02'] })).toBe(false);
  });

  it('given forget decisions, then the event lists forgotten and kept snapshots', () => {
    const data = snapshotsForgotten(command, decisions, now);
    expect(SnapshotsForgotten.schema.parse(data)).toMatchObject({ forgotten: ids.slice(1), kept: [ids[0]] });
  });

  it('given a dry run, then nothing is reported forgotten', () => {
    const data = snapshotsForgotten({ ...command, dryRun: true }, decisions, now);
    expect(data).toMatchObject({ forgotten: [], kept: [ids[0]] });
  });

  it('given a prune summary, then every removed pack counts, orphaned ones included', () => {
    const data = repositoryPruned(
      { operationId: 'p', repositoryId: 'default', maxUnusedFraction: 0.05 },
      {
        packsDeleted: 2,
        orphanedPacksDeleted: 1,
        packsRepacked: 1,
        temporaryFilesRemoved: 0,
        blobsRemoved: 9,
        bytesFreed: 100,
        durationMs: 12.6,
      },
      now,
    );
    expect(RepositoryPruned.schema.parse(data)).toMatchObject({
      packsDeleted: 3,
      packsRepacked: 1,
      durationMs: 13,
    });
  });

  it('given a check report with many errors, then the event stays within the contract', () => {
    const data = repositoryChecked(
      { operationId: 'c', repositoryId: 'default', readDataFraction: 1 },
      {
        ok: false,
        snapshots: 1,
        packs: 4,
        packsRead: 4,
        blobs: 10,
        errors: Array.from({ length: 1500 }, () => 'e'.repeat(5000)),
        damagedBlobs: [ids[1]!],
        damagedSnapshots: [ids[2]!],
        unusedBlobs: 0,
        orphanedPacks: [],
      },
      1234,
      now,
    );
    const parsed = RepositoryChecked.schema.parse(data);
    expect(parsed.errors).toHaveLength(1000);
    expect(parsed.errors[0]).toHaveLength(4000);
    expect(parsed).toMatchObject({
      ok: false,
      packsChecked: 4,
      damagedBlobs: [ids[1]],
      damagedSnapshots: [ids[2]],
    });
  });

  it('given a failure, then the reason is never empty', () => {
    expect(
      maintenanceFailed({ operationId: 'x', repositoryId: 'default' }, 'prune', 'REPOSITORY_LOCKED', '', now),
    ).toMatchObject({
      code: 'REPOSITORY_LOCKED',
      reason: 'REPOSITORY_LOCKED',
    });
  });
});
