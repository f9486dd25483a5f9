import { z } from 'zod';
import { defineEvent } from '../define.ts';
import {
  containerName,
  durationMs,
  errorCode,
  hostId,
  reason,
  repositoryId,
  snapshotId,
  timestamp,
  volumeName,
  workId,
} from '../fields.ts';
import { volumeRestoreTarget } from '../restore-target.ts';
import { setId } from '../sets.ts';

const setBackupKey = { backupId: workId, hostId, setId };

/** A member volume whose snapshot was written; its own `BackupCompleted` has `backupId`. */
const setMember = z.object({ volumeName, backupId: workId, snapshotId });

/** A member volume that has no snapshot of this set backup. */
const failedMember = z.object({ volumeName, backupId: workId, code: errorCode, reason });

export const BackupSetStarted = defineEvent({
  name: 'BackupSetStarted',
  aggregate: 'backup',
  what: 'set-started',
  description:
    'The agent quiesced the containers of a set once and began backing up its volumes, in this order.',
  schema: z.object({
    ...setBackupKey,
    volumes: z.array(volumeName).min(1).max(500),
    /** Containers stopped or paused, in the order they were (started again in reverse). */
    quiescedContainers: z.array(z.string().max(255)).max(500).default([]),
    startedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.backupId],
});

export const BackupSetCompleted = defineEvent({
  name: 'BackupSetCompleted',
  aggregate: 'backup',
  what: 'set-completed',
  description:
    'Every volume of the set has a snapshot taken while its containers were quiesced together; the snapshots share the tag `volback-set:<backupId>`.',
  schema: z.object({
    ...setBackupKey,
    repositoryId: repositoryId.default('default'),
    members: z.array(setMember).min(1).max(500),
    quiescedContainers: z.array(z.string().max(255)).max(500).default([]),
    durationMs,
    completedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.backupId],
});

export const BackupSetPartiallyFailed = defineEvent({
  name: 'BackupSetPartiallyFailed',
  aggregate: 'backup',
  what: 'set-partially-failed',
  description:
    'Some volumes of the set have a snapshot of this point in time (`members`), others none (`failed`, with why).',
  schema: z.object({
    ...setBackupKey,
    repositoryId: repositoryId.default('default'),
    members: z.array(setMember).max(500),
    failed: z.array(failedMember).min(1).max(500),
    quiescedContainers: z.array(z.string().max(255)).max(500).default([]),
    durationMs,
    completedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.backupId],
});

export const BackupSetFailed = defineEvent({
  name: 'BackupSetFailed',
  aggregate: 'backup',
  what: 'set-failed',
  description: 'No volume of the set was backed up (an unknown set, a quiesce that failed).',
  schema: z.object({ ...setBackupKey, code: errorCode, reason, failedAt: timestamp }),
  aggregateId: (d) => [d.hostId, d.backupId],
});

/** A container of a restored set, as it was (or, in a dry run, would be) created. No env values. */
export const recreatedContainer = z.object({
  /** The name it gets on the target host. */
  name: containerName,
  /** The name it had when backed up. */
  originalName: containerName,
  image: z.string().min(1).max(1000),
  /** Whether the image is on the target engine; a container whose image is missing is not created. */
  imagePresent: z.boolean(),
  /** Mounts: restored volumes at their places (`db_restored:/var/lib/db`), then other volumes and binds as recorded. */
  mounts: z.array(z.string().max(5000)).max(100),
  /** Networks it joins (network mode first); those missing on the engine are in `warnings`. */
  networks: z.array(z.string().max(255)).max(100),
  ports: z.array(z.string().max(200)).max(500),
  restartPolicy: z.string().max(100),
  /** How many environment variables it gets (their values never leave the snapshot). */
  envCount: z.number().int().nonnegative(),
  /** What was left out or could not be kept (env values excluded at backup, a missing network…). */
  warnings: z.array(z.string().max(2000)).max(100),
  /** `created`, `started` (created and started), `would-create` (dry run), `failed` (see `warnings`). */
  outcome: z.enum(['created', 'started', 'would-create', 'failed']),
});

/** One volume of a restored set: its restore has its own `RestoreCompleted` under `restoreId`. */
const restoredMember = z.object({
  restoreId: workId,
  snapshotId,
  volumeName,
  target: volumeRestoreTarget,
});

const setRestoreKey = { restoreId: workId, hostId, setId };

export const RestoreSetRequested = defineEvent({
  name: 'RestoreSetRequested',
  aggregate: 'restore',
  what: 'set-requested',
  description: 'A restore of a set backup was asked for and sent to the agent of the target host.',
  schema: z.object({
    ...setRestoreKey,
    setBackupId: workId,
    repositoryId: repositoryId.default('default'),
    members: z.array(restoredMember).min(1).max(500),
    recreateContainers: z.boolean().default(false),
    dryRun: z.boolean().default(false),
    requestedBy: z.string().max(200).optional(),
    requestedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.restoreId],
});

export const RestoreSetCompleted = defineEvent({
  name: 'RestoreSetCompleted',
  aggregate: 'restore',
  what: 'set-completed',
  description:
    'Every volume of a set backup was restored and, when asked, its containers recreated; after a dry run nothing was, and `containers` says what would be.',
  schema: z.object({
    ...setRestoreKey,
    setBackupId: workId,
    dryRun: z.boolean().default(false),
    members: z.array(restoredMember).min(1).max(500),
    containers: z.array(recreatedContainer).max(500).default([]),
    durationMs,
    completedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.restoreId],
});

export const RestoreSetFailed = defineEvent({
  name: 'RestoreSetFailed',
  aggregate: 'restore',
  what: 'set-failed',
  description:
    'The restore of a set stopped: `reason` names the member volume or container that failed; volumes restored before it stay.',
  schema: z.object({
    ...setRestoreKey,
    setBackupId: workId,
    code: errorCode,
    reason,
    /** The member volume whose restore failed, when one did. */
    failedVolume: volumeName.optional(),
    members: z.array(restoredMember).max(500).default([]),
    containers: z.array(recreatedContainer).max(500).default([]),
    failedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.restoreId],
});
