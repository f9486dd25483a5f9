import { z } from 'zod';
import { defineEvent } from '../define.ts';
import {
  count,
  durationMs,
  errorCode,
  hostId,
  innerPath,
  reason,
  repositoryId,
  snapshotId,
  timestamp,
  workId,
} from '../fields.ts';
import { restoreTarget } from '../restore-target.ts';

const restoreKey = { restoreId: workId, hostId, snapshotId };

export const RestoreRequested = defineEvent({
  name: 'RestoreRequested',
  aggregate: 'restore',
  what: 'requested',
  description: 'A restore of a snapshot (or a path inside it) was asked for and sent to an agent.',
  schema: z.object({
    ...restoreKey,
    repositoryId: repositoryId.default('default'),
    target: restoreTarget,
    /** Sub-path of the snapshot to restore; the whole snapshot when omitted. */
    path: innerPath.optional(),
    requestedBy: z.string().max(200).optional(),
    requestedAt: timestamp,
  }),
  aggregateId: (d) => [d.restoreId],
});

export const RestoreStarted = defineEvent({
  name: 'RestoreStarted',
  aggregate: 'restore',
  what: 'started',
  description: 'The agent began writing the snapshot into its target.',
  schema: z.object({ ...restoreKey, target: restoreTarget, startedAt: timestamp }),
  aggregateId: (d) => [d.restoreId],
});

export const RestoreCompleted = defineEvent({
  name: 'RestoreCompleted',
  aggregate: 'restore',
  what: 'completed',
  description: 'Every file of the snapshot (or path) is in the target.',
  schema: z.object({
    ...restoreKey,
    target: restoreTarget,
    files: count,
    bytes: count,
    durationMs,
    completedAt: timestamp,
  }),
  aggregateId: (d) => [d.restoreId],
});

export const RestoreFailed = defineEvent({
  name: 'RestoreFailed',
  aggregate: 'restore',
  what: 'failed',
  description: 'The restore stopped; the reason says why and what, if anything, was written.',
  schema: z.object({ ...restoreKey, code: errorCode, reason, failedAt: timestamp }),
  aggregateId: (d) => [d.restoreId],
});
