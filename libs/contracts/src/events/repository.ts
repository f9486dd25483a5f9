import { z } from 'zod';
import { defineEvent } from '../define.ts';
import {
  count,
  durationMs,
  errorCode,
  hostId,
  reason,
  repositoryId,
  retention,
  snapshotId,
  timestamp,
  volumeName,
  workId,
} from '../fields.ts';

export const RepositoryMaintenanceRequested = defineEvent({
  name: 'RepositoryMaintenanceRequested',
  aggregate: 'repository',
  what: 'maintenance-requested',
  description:
    'The scheduler sent a forget, prune or check command to the gateways; its outcome event carries the same operationId.',
  schema: z.object({
    operationId: workId,
    repositoryId,
    operation: z.enum(['forget', 'prune', 'check']),
    /** The volume a forget is about. */
    hostId: hostId.optional(),
    volumeName: volumeName.optional(),
    /** The schedule slot a prune or check stands for; a forget's is absent. */
    slot: timestamp.optional(),
    attempt: z.number().int().positive().default(1),
    requestedBy: z.string().max(200).optional(),
    requestedAt: timestamp,
  }),
  aggregateId: (d) => [d.repositoryId],
});

export const SnapshotsForgotten = defineEvent({
  name: 'SnapshotsForgotten',
  aggregate: 'repository',
  what: 'snapshots-forgotten',
  description:
    'Snapshots of a volume were removed by its retention policy (restic forget); data is freed by prune.',
  schema: z.object({
    operationId: workId,
    repositoryId,
    hostId: hostId.optional(),
    volumeName: volumeName.optional(),
    retention,
    forgotten: z.array(snapshotId),
    kept: z.array(snapshotId),
    forgottenAt: timestamp,
  }),
  aggregateId: (d) => [d.repositoryId],
});

export const RepositoryPruned = defineEvent({
  name: 'RepositoryPruned',
  aggregate: 'repository',
  what: 'pruned',
  description: 'Unreferenced data was removed from the repository and partly used packs repacked.',
  schema: z.object({
    operationId: workId,
    repositoryId,
    packsDeleted: count,
    packsRepacked: count,
    blobsRemoved: count,
    bytesFreed: count,
    durationMs,
    prunedAt: timestamp,
  }),
  aggregateId: (d) => [d.repositoryId],
});

export const RepositoryChecked = defineEvent({
  name: 'RepositoryChecked',
  aggregate: 'repository',
  what: 'checked',
  description: 'The repository structure (and a subset of its data) was verified; damage is named.',
  schema: z.object({
    operationId: workId,
    repositoryId,
    ok: z.boolean(),
    /** Share of pack data read and verified, 0..1 (0: structure only). */
    readDataFraction: z.number().min(0).max(1),
    packsChecked: count,
    errors: z.array(z.string().max(4000)).max(1000).default([]),
    damagedBlobs: z.array(z.string().regex(/^[0-9a-f]{64}$/)).default([]),
    damagedSnapshots: z.array(snapshotId).default([]),
    durationMs,
    checkedAt: timestamp,
  }),
  aggregateId: (d) => [d.repositoryId],
});

export const RepositoryMaintenanceFailed = defineEvent({
  name: 'RepositoryMaintenanceFailed',
  aggregate: 'repository',
  what: 'maintenance-failed',
  description:
    'A forget, prune or check could not run or stopped; the repository is left as restic would accept it.',
  schema: z.object({
    operationId: workId,
    repositoryId,
    operation: z.enum(['forget', 'prune', 'check']),
    code: errorCode,
    reason,
    failedAt: timestamp,
  }),
  aggregateId: (d) => [d.repositoryId],
});
