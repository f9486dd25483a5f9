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
  volumeName,
  workId,
} from '../fields.ts';
import { backupStats } from './backup.ts';

// The re-import of a repository's snapshots into the log (when the log was lost). It has events
// of its own rather than a new `operation` value of RepositoryMaintenanceRequested/Failed: a new
// enum value would be a breaking change for consumers of those `.v1` types.

export const RepositoryImportRequested = defineEvent({
  name: 'RepositoryImportRequested',
  aggregate: 'repository',
  what: 'import-requested',
  description:
    'A re-import of the repository\u2019s snapshots was sent to the gateways; its outcome event carries the same operationId.',
  schema: z.object({
    operationId: workId,
    repositoryId,
    requestedBy: z.string().max(200).optional(),
    requestedAt: timestamp,
  }),
  aggregateId: (d) => [d.repositoryId],
});

export const SnapshotImported = defineEvent({
  name: 'SnapshotImported',
  aggregate: 'snapshot',
  what: 'imported',
  description:
    'A volback snapshot found in the repository that the log did not know (no BackupCompleted, no earlier import) is known again. At most one per snapshot.',
  schema: z.object({
    snapshotId,
    repositoryId,
    /** The import that found it. */
    operationId: workId,
    /** From the `host-id:` tag (older snapshots: the snapshot's hostname). */
    hostId,
    /** From the `host:` tag, else the snapshot's hostname. */
    hostName: z.string().min(1).max(253),
    /** From the `volume:` tag, else the `/volumes/<name>` path. */
    volumeName,
    /** When the snapshot was taken (the snapshot's `time`). */
    time: timestamp,
    paths: z.array(z.string().min(1).max(4096)).min(1).max(100),
    tags: z.array(z.string().max(300)).max(100).default([]),
    /** The snapshot's own totals, when it records them; absent otherwise. */
    stats: backupStats.optional(),
    importedAt: timestamp,
  }),
  aggregateId: (d) => [d.snapshotId],
});

export const RepositoryImportCompleted = defineEvent({
  name: 'RepositoryImportCompleted',
  aggregate: 'repository',
  what: 'import-completed',
  description:
    'Every snapshot of the repository was looked at: those the log lacked were imported (one SnapshotImported each).',
  schema: z.object({
    operationId: workId,
    repositoryId,
    /** Snapshot files in the repository. */
    snapshots: count,
    /** New SnapshotImported events. */
    imported: count,
    /** volback snapshots the log already knew (a backup outcome or an earlier import). */
    alreadyKnown: count,
    /** Snapshots that are not volback's (no `volback` tag and no `/volumes/<name>` path) or name no valid host or volume. */
    skipped: count,
    durationMs,
    completedAt: timestamp,
  }),
  aggregateId: (d) => [d.repositoryId],
});

export const RepositoryImportFailed = defineEvent({
  name: 'RepositoryImportFailed',
  aggregate: 'repository',
  what: 'import-failed',
  description:
    'A re-import could not run or stopped; the snapshots imported before it stopped stay imported, a new import adds the rest.',
  schema: z.object({
    operationId: workId,
    repositoryId,
    code: errorCode,
    reason,
    failedAt: timestamp,
  }),
  aggregateId: (d) => [d.repositoryId],
});
