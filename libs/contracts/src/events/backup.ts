import { z } from 'zod';
import { defineEvent } from '../define.ts';
import {
  backupTrigger,
  count,
  durationMs,
  errorCode,
  hostId,
  innerPath,
  reason,
  repositoryId,
  snapshotId,
  timestamp,
  volumeName,
  workId,
} from '../fields.ts';
import { setId } from '../sets.ts';

const backupKey = { backupId: workId, hostId, volumeName };

/** Totals of a finished backup, as restic reports them. */
export const backupStats = z.object({
  filesNew: count,
  filesChanged: count,
  filesUnmodified: count,
  dirsNew: count,
  dirsChanged: count,
  dirsUnmodified: count,
  /** Bytes of file content read from the volume. */
  bytesRead: count,
  /** Bytes of file content the snapshot holds, unchanged files included: the volume's size. */
  totalBytes: count.optional(),
  /** Bytes of new blobs added to the repository, before compression. */
  bytesAdded: count,
  /** Bytes written to the backend after compression and encryption. */
  bytesStored: count,
  durationMs,
});

/** A database dump a container's labels asked for, taken during the backup and stored as a file. */
export const databaseDump = z.object({
  /** The container the dump ran in (its name at the time). */
  container: z.string().min(1).max(255),
  /** The preset of its `volback.dump` label (`postgres`, `mysql`, …, `command`). */
  preset: z.string().min(1).max(32),
  /** `alongside`: the volume's files are in the snapshot too; `instead`: only the dump. */
  mode: z.enum(['alongside', 'instead']),
  /** Where the file is in the snapshot: `/.volback/dumps/<container>.<extension>`. */
  path: innerPath,
  sizeBytes: count,
  durationMs,
});

/** The dumps of a backup (absent when none was asked for). */
const dumps = z.array(databaseDump).max(1000).optional();

export const BackupRequested = defineEvent({
  name: 'BackupRequested',
  aggregate: 'backup',
  what: 'requested',
  description:
    'A backup of a volume was asked for (schedule, event, retry or a person) and sent to its agent.',
  schema: z.object({
    ...backupKey,
    trigger: backupTrigger,
    /** The schedule slot this run stands for, when scheduled (idempotency: one backup per volume and slot). */
    slot: timestamp.optional(),
    attempt: z.number().int().positive().default(1),
    /** For a retry (`attempt` > 1): the backup id of the first attempt. */
    retryOf: workId.optional(),
    /** Attempts in all this backup may take: the scheduler retries a failed one (`backupFailureIsRetried`); absent: none. */
    maxAttempts: z.number().int().positive().max(100).optional(),
    repositoryId: repositoryId.default('default'),
    requestedBy: z.string().max(200).optional(),
    requestedAt: timestamp,
    /** A member of a set backup: the set and the set backup's id (its command is `BackupSet`). */
    setId: setId.optional(),
    setBackupId: workId.optional(),
  }),
  aggregateId: (d) => [d.hostId, d.backupId],
});

export const BackupStarted = defineEvent({
  name: 'BackupStarted',
  aggregate: 'backup',
  what: 'started',
  description: 'The agent began reading the volume.',
  schema: z.object({
    ...backupKey,
    /** `direct`: from the engine volumes root; `archive`: through the Engine archive API. */
    method: z.enum(['direct', 'archive']),
    parentSnapshotId: snapshotId.optional(),
    /** Containers stopped or paused for consistency. */
    quiescedContainers: z.array(z.string().max(255)).default([]),
    startedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.backupId],
});

export const BackupCompleted = defineEvent({
  name: 'BackupCompleted',
  aggregate: 'backup',
  what: 'completed',
  description: 'The backup is a snapshot in the repository; every file was read.',
  schema: z.object({
    ...backupKey,
    snapshotId,
    repositoryId: repositoryId.default('default'),
    stats: backupStats,
    dumps,
    completedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.backupId],
});

export const BackupPartiallyFailed = defineEvent({
  name: 'BackupPartiallyFailed',
  aggregate: 'backup',
  what: 'partially-failed',
  description: 'A snapshot was written, but some files could not be read; they are listed.',
  schema: z.object({
    ...backupKey,
    snapshotId,
    repositoryId: repositoryId.default('default'),
    stats: backupStats,
    unreadable: z
      .array(z.object({ path: innerPath, reason }))
      .min(1)
      .max(1000),
    /** How many unreadable files there were in all (the list is capped). */
    unreadableCount: count,
    dumps,
    completedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.backupId],
});

export const BackupFailed = defineEvent({
  name: 'BackupFailed',
  aggregate: 'backup',
  what: 'failed',
  description:
    'No snapshot was written. `willRetry`: whether the scheduler tries again (`backupFailureIsRetried` of attempt, the command\u2019s `maxAttempts` and code).',
  schema: z.object({
    ...backupKey,
    code: errorCode,
    reason,
    attempt: z.number().int().positive().default(1),
    willRetry: z.boolean().default(false),
    failedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.backupId],
});

export const BackupAbandoned = defineEvent({
  name: 'BackupAbandoned',
  aggregate: 'backup',
  what: 'abandoned',
  description:
    "The scheduler stopped trying: the last attempt of a backup failed and no retry is left. On the first attempt's subject.",
  schema: z.object({
    ...backupKey,
    /** The schedule slot the backup stood for, when scheduled. */
    slot: timestamp.optional(),
    /** Attempts made, the first included. */
    attempts: z.number().int().positive(),
    /** The backup id of the last attempt (retries have ids of their own). */
    lastBackupId: workId,
    /** The last attempt's failure. */
    code: errorCode,
    reason,
    abandonedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.backupId],
});
