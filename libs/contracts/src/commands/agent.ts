import { z } from 'zod';
import { defineCommand } from '../define.ts';
import {
  backupTrigger,
  consistency,
  hostId,
  repositoryId,
  snapshotId,
  volumeName,
  workId,
} from '../fields.ts';
import { restoreSelection, restoreTarget, volumeRestoreTarget } from '../restore-target.ts';
import { drillTrigger } from '../events/drill.ts';
import { drillSpec } from '../policy.ts';
import { setId } from '../sets.ts';

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

/**
 * v2: `path` lands at its own place in the volume (v1 agents wrote its contents at the volume's
 * root), and `targetPath` and `dryRun` are new. A v1 agent would ignore `dryRun` and write, so the
 * type changed rather than gaining fields; v1 is no longer sent or run (see the README).
 */
export const RestoreSnapshot = defineCommand({
  name: 'RestoreSnapshot',
  commandName: 'restore-snapshot',
  version: 2,
  description:
    'Restore a snapshot (or a path in it, at its own place) into a volume on a host, or say what that would do (dryRun). Sent to that host\u2019s agent.',
  schema: z.object({
    restoreId: workId,
    hostId,
    snapshotId,
    repositoryId: repositoryId.default('default'),
    target: restoreTarget,
    ...restoreSelection,
    /**
     * Keep the setuid and setgid bits the snapshot records. Honoured only for a snapshot of the
     * agent's own host (its `host-id:` tag); otherwise, and by default, they are stripped. Device
     * nodes are never written either way.
     */
    preserveSpecialModes: z.boolean().default(false),
  }),
  target: (d) => ({ kind: 'host', hostId: d.hostId }),
});

/**
 * Back up every volume of a set (`compose:<project>` or `group:<name>`) as one point in time:
 * the agent finds the set's containers and volumes on its engine, quiesces the containers once
 * (labels decide how; order in the agent's README), snapshots each volume, resumes them.
 * Each member is a backup of its own (`<backupId>.<volume>`); the set's outcome is one
 * `BackupSetCompleted`, `BackupSetPartiallyFailed` or `BackupSetFailed`.
 */
export const BackupSet = defineCommand({
  name: 'BackupSet',
  commandName: 'backup-set',
  description: "Back up every volume of a set at one point in time. Sent to the agent of the set's host.",
  schema: z.object({
    backupId: workId,
    hostId,
    setId,
    trigger: backupTrigger,
    repositoryId: repositoryId.default('default'),
    tags: z.array(z.string().min(1).max(200)).max(50).default([]),
    requestedBy: z.string().max(200).optional(),
  }),
  target: (d) => ({ kind: 'host', hostId: d.hostId }),
});

/**
 * Restore the member snapshots of one set backup on a host, each into its own target, and with
 * `recreateContainers` create the set's containers again from the configuration the snapshots
 * recorded (`/.volback/containers.json`), their mounts pointed at the restored volumes. Each
 * member is a restore of its own (`restoreId` of the member; the catalog grants each its
 * snapshot); the set's outcome is one `RestoreSetCompleted` or `RestoreSetFailed`.
 */
export const RestoreSet = defineCommand({
  name: 'RestoreSet',
  commandName: 'restore-set',
  description:
    "Restore every volume of a set backup and optionally recreate its containers, or say what that would do (dryRun). Sent to the target host's agent.",
  schema: z.object({
    restoreId: workId,
    hostId,
    setId,
    setBackupId: workId,
    repositoryId: repositoryId.default('default'),
    members: z
      .array(z.object({ restoreId: workId, snapshotId, volumeName, target: volumeRestoreTarget }))
      .min(1)
      .max(500),
    recreateContainers: z.boolean().default(false),
    /** Appended to each recreated container's name (`-restored`); empty keeps the names. */
    containerSuffix: z
      .string()
      .max(60)
      .regex(/^[a-zA-Z0-9_.-]*$/, 'letters, digits, _ . -')
      .default(''),
    /** Start the recreated containers that were running at backup time (databases first). */
    startContainers: z.boolean().default(true),
    dryRun: z.boolean().default(false),
  }),
  target: (d) => ({ kind: 'host', hostId: d.hostId }),
});

/**
 * A restore drill of one volume: restore its latest snapshot of this host (or `snapshotId`) into
 * a scratch volume with the agent's restore engine, compare every file with the snapshot, start
 * the recorded containers on it and run `health` when asked, time it, and remove the scratch
 * volume and containers on every path. The outcome is `RestoreDrillPassed` or `RestoreDrillFailed`.
 */
export const RestoreDrill = defineCommand({
  name: 'RestoreDrill',
  commandName: 'restore-drill',
  description:
    "Restore a volume's latest snapshot into a scratch volume, verify it, optionally start its containers there, and remove it all. Sent to the volume's host's agent.",
  schema: z.object({
    drillId: workId,
    hostId,
    volumeName,
    trigger: drillTrigger,
    repositoryId: repositoryId.default('default'),
    /** A snapshot of this host's volume; the latest one when absent. */
    snapshotId: snapshotId.optional(),
    containers: drillSpec.shape.containers,
    health: drillSpec.shape.health,
    healthTimeoutSeconds: drillSpec.shape.healthTimeoutSeconds,
  }),
  target: (d) => ({ kind: 'host', hostId: d.hostId }),
});
