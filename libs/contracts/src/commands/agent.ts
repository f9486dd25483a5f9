import { z } from 'zod';
import { defineCommand } from '../define.ts';
import {
  backupTrigger,
  consistency,
  hostId,
  innerPath,
  repositoryId,
  snapshotId,
  volumeName,
  workId,
} from '../fields.ts';
import { restoreTarget } from '../restore-target.ts';

export const BackupVolume = defineCommand({
  name: 'BackupVolume',
  commandName: 'backup-volume',
  description: "Back up one volume now. Sent to the agent of the volume's host.",
  schema: z.object({
    backupId: workId,
    hostId,
    volumeName,
    trigger: backupTrigger,
    attempt: z.number().int().positive().default(1),
    /** As in `BackupRequested`: attempts in all; the agent's `BackupFailed.willRetry` derives from it. */
    maxAttempts: z.number().int().positive().max(100).optional(),
    repositoryId: repositoryId.default('default'),
    consistency: consistency.default({ mode: 'none' }),
    excludes: z.array(z.string().min(1).max(4096)).max(1000).default([]),
    /** Snapshot to compare metadata against, so unchanged files are not read again. */
    parentSnapshotId: snapshotId.optional(),
    tags: z.array(z.string().min(1).max(200)).max(50).default([]),
    /** Override the agent's choice of reading method. */
    method: z.enum(['auto', 'direct', 'archive']).default('auto'),
  }),
  target: (d) => ({ kind: 'host', hostId: d.hostId }),
});

export const RestoreSnapshot = defineCommand({
  name: 'RestoreSnapshot',
  commandName: 'restore-snapshot',
  description: 'Restore a snapshot (or a path in it) on a host. Sent to that host\u2019s agent.',
  schema: z.object({
    restoreId: workId,
    hostId,
    snapshotId,
    repositoryId: repositoryId.default('default'),
    target: restoreTarget,
    path: innerPath.optional(),
  }),
  target: (d) => ({ kind: 'host', hostId: d.hostId }),
});
