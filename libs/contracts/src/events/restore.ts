import { z } from 'zod';
import { defineEvent } from '../define.ts';
import {
  count,
  durationMs,
  errorCode,
  hostId,
  reason,
  repositoryId,
  snapshotId,
  timestamp,
  workId,
} from '../fields.ts';
import { restorePlan, restoreSelection, restoreSkipped, restoreTarget } from '../restore-target.ts';

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
    ...restoreSelection,
    requestedBy: z.string().max(200).optional(),
    requestedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.restoreId],
});

export const RestoreStarted = defineEvent({
  name: 'RestoreStarted',
  aggregate: 'restore',
  what: 'started',
  description: 'The agent began writing the snapshot into its target.',
  schema: z.object({ ...restoreKey, target: restoreTarget, startedAt: timestamp }),
  aggregateId: (d) => [d.hostId, d.restoreId],
});

export const RestoreCompleted = defineEvent({
  name: 'RestoreCompleted',
  aggregate: 'restore',
  what: 'completed',
  description:
    'Every file of the snapshot (or path) is in the target; after a dry run, nothing was written and `plan` says what would be.',
  schema: z.object({
    ...restoreKey,
    target: restoreTarget,
    /** Files and bytes written (0 after a dry run). */
    files: count,
    bytes: count,
    durationMs,
    /** A dry run: nothing was written. */
    dryRun: z.boolean().default(false),
    /** After a dry run: what the restore would write, replace and leave alone. */
    plan: restorePlan.optional(),
    /** What was left out for safety (device nodes, setuid/setgid bits); absent when nothing was. */
    skipped: restoreSkipped.optional(),
    completedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.restoreId],
});

export const RestoreFailed = defineEvent({
  name: 'RestoreFailed',
  aggregate: 'restore',
  what: 'failed',
  description: 'The restore stopped; the reason says why and what, if anything, was written.',
  schema: z.object({ ...restoreKey, code: errorCode, reason, failedAt: timestamp }),
  aggregateId: (d) => [d.hostId, d.restoreId],
});
