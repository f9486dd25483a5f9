// The catalog's answers: one zod schema per resource, shared by the queries (which build them)
// and the HTTP routes (which document and serialise them).
import {
  BackupPhase,
  backupStats,
  engineInfo,
  recreatedContainer,
  RestorePhase,
  restorePlan,
} from '@volback/contracts';
import { z } from 'zod';
import { ProtectionStatus } from './domain/status.ts';

const time = z.string().describe('ISO 8601 UTC time');
const labels = z.record(z.string(), z.string());

/** A page of a list and the cursor of the next one (null on the last page). */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({
    items: z.array(item),
    nextCursor: z.string().nullable().describe('pass as `cursor` for the next page; null on the last'),
  });
}
/** A page of items. */
export interface Page<T> {
  items: T[];
  nextCursor: string | null;
}

export const hostView = z.object({
  hostId: z.string(),
  name: z.string(),
  /** `online` while heartbeats arrive; `unknown` before the first one. */
  status: z.enum(['online', 'offline', 'unknown']),
  lastSeenAt: time.nullable(),
  /** When the host counts as offline unless another heartbeat arrives. */
  offlineAfter: time.nullable(),
  registeredAt: time.nullable(),
  agentVersion: z.string().nullable(),
  engine: engineInfo.nullable(),
  heartbeatSeconds: z.number().int().nullable(),
  containers: z.number().int().nullable(),
  volumes: z.number().int().nullable(),
  backupsRunning: z.number().int().nullable(),
});
export type HostView = z.infer<typeof hostView>;

const mountUse = z.object({
  containerId: z.string(),
  containerName: z.string(),
  containerState: z.string(),
  destination: z.string(),
  readOnly: z.boolean(),
});

/** A restore drill of a volume (`RestoreDrillRequested`, then `RestoreDrillPassed` or `RestoreDrillFailed`). */
export const drillView = z.object({
  drillId: z.string(),
  hostId: z.string(),
  volumeName: z.string(),
  phase: z.enum(['Requested', 'Passed', 'Failed']),
  trigger: z.string().nullable(),
  requestedBy: z.string().nullable(),
  requestedAt: time.nullable(),
  finishedAt: time.nullable(),
  snapshotId: z.string().nullable(),
  /** Restore + verify + health of a passed drill: the volume's measured recovery time. */
  rtoMs: z.number().int().nullable(),
  restoreMs: z.number().int().nullable(),
  verifyMs: z.number().int().nullable(),
  healthMs: z.number().int().nullable(),
  /** From the request to the failure, for a failed drill. */
  durationMs: z.number().int().nullable(),
  files: z.number().int().nullable(),
  bytes: z.number().int().nullable(),
  containers: z.array(z.string()),
  health: z.string().nullable(),
  /** The step that failed: snapshot, restore, verify, containers or health. */
  stage: z.string().nullable(),
  mismatches: z.array(z.object({ path: z.string(), problem: z.string() })),
  mismatchCount: z.number().int(),
  leftBehind: z.array(z.string()),
  error: z.object({ code: z.string(), reason: z.string() }).nullable(),
});
export type DrillView = z.infer<typeof drillView>;

export const volumeView = z.object({
  hostId: z.string(),
  volumeName: z.string(),
  driver: z.string().nullable(),
  driverOptions: z.record(z.string(), z.string()),
  labels,
  scope: z.string().nullable(),
  anonymous: z.boolean(),
  mountpoint: z.string().nullable(),
  createdAt: time.nullable(),
  discoveredAt: time.nullable(),
  removedAt: time.nullable(),
  /** Bytes of file content in the volume's last snapshot (or as the agent measured it). */
  sizeBytes: z.number().int().nullable(),
  protection: z.object({
    status: z.enum(Object.values(ProtectionStatus) as [ProtectionStatus, ...ProtectionStatus[]]),
    lastSuccessAt: time.nullable(),
    lastSnapshotId: z.string().nullable(),
    lastBackup: z
      .object({ backupId: z.string(), phase: z.string(), at: time })
      .nullable()
      .describe('the most recent backup, whatever its outcome'),
    atRisk: z
      .object({
        reason: z.string().nullable(),
        since: time.nullable(),
        rpoSeconds: z.number().int().nullable(),
      })
      .nullable(),
    /** The policy that applies: the volume's own, else the default one. */
    policyId: z.string().nullable(),
    nextDueAt: time
      .nullable()
      .describe(
        "the scheduler's next planned backup (schedule slot plus jitter); null until it announces one",
      ),
  }),
  /** Containers that mount the volume. */
  usedBy: z.array(mountUse),
  /** The volume's newest restore drill (null when none ran); `rtoMs` of a passed one is its measured RTO. */
  lastDrill: drillView.nullable(),
});
export type VolumeView = z.infer<typeof volumeView>;

const containerMountView = z.object({
  type: z.enum(['volume', 'bind', 'tmpfs']),
  volumeName: z.string().nullable(),
  source: z.string().nullable(),
  destination: z.string(),
  readOnly: z.boolean(),
});

export const containerView = z.object({
  hostId: z.string(),
  containerId: z.string(),
  name: z.string(),
  image: z.string().nullable(),
  imageDigest: z.string().nullable(),
  labels,
  state: z.string(),
  compose: z.object({ project: z.string(), service: z.string() }).nullable(),
  createdAt: time.nullable(),
  startedAt: time.nullable(),
  stoppedAt: time.nullable(),
  exitCode: z.number().int().nullable(),
  mounts: z.array(containerMountView),
});
export type ContainerView = z.infer<typeof containerView>;

export const policyView = z.object({
  policyId: z.string(),
  scope: z.union([
    z.object({ kind: z.literal('default') }),
    z.object({ kind: z.literal('volume'), hostId: z.string(), volumeName: z.string() }),
  ]),
  origin: z.string(),
  /** The policy as the scheduler applies it (`policySpec` in libs/contracts). */
  policy: z.record(z.string(), z.unknown()),
  definedBy: z.string().nullable(),
  definedAt: time,
});
export type PolicyView = z.infer<typeof policyView>;

const workError = z.object({ code: z.string(), reason: z.string() });

export const backupView = z.object({
  backupId: z.string(),
  hostId: z.string(),
  volumeName: z.string(),
  phase: z.enum(Object.values(BackupPhase) as [BackupPhase, ...BackupPhase[]]),
  trigger: z.string().nullable(),
  attempt: z.number().int(),
  repositoryId: z.string(),
  requestedBy: z.string().nullable(),
  /** When the catalog first heard of it (requested, else started, else finished). */
  createdAt: time,
  requestedAt: time.nullable(),
  startedAt: time.nullable(),
  finishedAt: time.nullable(),
  method: z.string().nullable(),
  parentSnapshotId: z.string().nullable(),
  quiescedContainers: z.array(z.string()),
  snapshotId: z.string().nullable(),
  stats: backupStats.nullable(),
  unreadable: z.array(z.object({ path: z.string(), reason: z.string() })),
  unreadableCount: z.number().int(),
  error: workError.extend({ willRetry: z.boolean() }).nullable(),
  /** For a retry: the backup id of the first attempt. */
  retryOf: z.string().nullable(),
  /** Set on the first attempt when the scheduler gave up retrying. */
  abandoned: z.object({ at: time, attempts: z.number().int(), lastBackupId: z.string() }).nullable(),
});
export type BackupView = z.infer<typeof backupView>;

export const restoreView = z.object({
  restoreId: z.string(),
  hostId: z.string(),
  snapshotId: z.string(),
  repositoryId: z.string(),
  target: z.record(z.string(), z.unknown()).nullable(),
  path: z.string().nullable(),
  /** The directory in the target volume the restore writes into (`/` when null). */
  targetPath: z.string().nullable(),
  /** A dry run: nothing is written; `plan` says what would be, once completed. */
  dryRun: z.boolean(),
  plan: restorePlan.nullable(),
  phase: z.enum(Object.values(RestorePhase) as [RestorePhase, ...RestorePhase[]]),
  requestedBy: z.string().nullable(),
  createdAt: time,
  requestedAt: time.nullable(),
  startedAt: time.nullable(),
  finishedAt: time.nullable(),
  files: z.number().int().nullable(),
  bytes: z.number().int().nullable(),
  durationMs: z.number().int().nullable(),
  error: workError.nullable(),
});
export type RestoreView = z.infer<typeof restoreView>;

export const snapshotView = z.object({
  snapshotId: z.string(),
  shortId: z.string(),
  repositoryId: z.string(),
  hostId: z.string(),
  volumeName: z.string(),
  /** The backup that wrote it; null for a snapshot known only from the repository (`origin: import`). */
  backupId: z.string().nullable(),
  /** `backup`: recorded by its backup's outcome; `import`: re-imported from the repository. */
  origin: z.enum(['backup', 'import']),
  time,
  /** Some files could not be read (the backup partially failed). */
  partial: z.boolean(),
  /** The backup's totals; null when unknown (an imported snapshot that records none). */
  stats: backupStats.nullable(),
  /** Set once retention forgot it: its data goes with the next prune. */
  forgottenAt: time.nullable(),
});
export type SnapshotView = z.infer<typeof snapshotView>;

export const repositoryOperationView = z.object({
  operationId: z.string(),
  repositoryId: z.string(),
  operation: z.enum(['forget', 'prune', 'check', 'import']),
  /** `Requested` (sent to the gateways), `Succeeded` or `Failed` (a check that found damage too). */
  status: z.enum(['Requested', 'Succeeded', 'Failed']),
  createdAt: time,
  requestedAt: time.nullable(),
  finishedAt: time.nullable(),
  /** The volume a forget was about. */
  hostId: z.string().nullable(),
  volumeName: z.string().nullable(),
  summary: z.record(z.string(), z.unknown()),
  error: workError.nullable(),
});
export type RepositoryOperationView = z.infer<typeof repositoryOperationView>;

/** One entry of a snapshot directory listing. */
export const treeEntryView = z.object({
  name: z.string(),
  /** Volume-relative path. */
  path: z.string(),
  type: z.string(),
  size: z.number().int().nullable(),
  mode: z.number().int().nullable(),
  mtime: z.string().nullable(),
  uid: z.number().int(),
  gid: z.number().int(),
  linkTarget: z.string().nullable(),
});
export type TreeEntryView = z.infer<typeof treeEntryView>;

/** A file found by `find`, in one snapshot. */
export const foundFileView = treeEntryView.extend({
  snapshotId: z.string(),
  snapshotTime: time,
});
export type FoundFileView = z.infer<typeof foundFileView>;

/** How two snapshots of a volume differ (`GET /v1/snapshots/{id}/diff`). */
export const snapshotDiffView = z.object({
  added: z
    .array(treeEntryView)
    .describe('in the later snapshot only (a new directory: itself, not its contents)'),
  removed: z.array(treeEntryView).describe('in the earlier snapshot only'),
  changed: z
    .array(
      z.object({
        path: z.string(),
        kind: z
          .enum(['type', 'content', 'metadata'])
          .describe(
            'type: a file became a directory or the like; content: data, size or link target; metadata: mode, owner or mtime only',
          ),
        type: z.string().describe('the type in the later snapshot'),
        sizeBefore: z.number().int().nullable(),
        sizeAfter: z.number().int().nullable(),
        mtimeBefore: z.string().nullable(),
        mtimeAfter: z.string().nullable(),
      }),
    )
    .describe('in both, different'),
  truncated: z.boolean().describe('the diff stopped at `limit` entries'),
});
export type SnapshotDiffView = z.infer<typeof snapshotDiffView>;

export const statusView = z.object({
  hosts: z.object({ total: z.number().int(), online: z.number().int(), offline: z.number().int() }),
  volumes: z.object({
    total: z.number().int(),
    protected: z.number().int(),
    atRisk: z.number().int(),
    unprotected: z.number().int(),
    removed: z.number().int(),
  }),
  backups: z.object({
    running: z.number().int(),
    queued: z.number().int(),
    failedLast24h: z.number().int(),
    lastCompletedAt: time.nullable(),
  }),
  restores: z.object({ running: z.number().int(), queued: z.number().int() }),
  repository: z
    .object({
      sizeBytes: z
        .number()
        .int()
        .describe(
          "bytes backups stored (after compression and encryption) less what prune freed: the repositories' size as the event log knows it (index files and snapshots not counted)",
        ),
      addedLast24hBytes: z
        .number()
        .int()
        .describe('bytes stored by backups that finished in the last 24 hours'),
    })
    .describe('all repositories together'),
  snapshots: z.number().int(),
  policies: z.number().int(),
  /** Stream sequence of the last event applied. */
  checkpoint: z.number().int(),
});
export type StatusView = z.infer<typeof statusView>;

const setMember = z.object({ volumeName: z.string(), backupId: z.string(), snapshotId: z.string() });

/** One backup of a set: one point in time of every member volume. */
export const setBackupView = z.object({
  backupId: z.string(),
  hostId: z.string(),
  setId: z.string(),
  /** `Running`, `Completed`, `PartiallyFailed` (some members have no snapshot) or `Failed`. */
  phase: z.enum(['Running', 'Completed', 'PartiallyFailed', 'Failed']),
  volumes: z.array(z.string()),
  quiescedContainers: z.array(z.string()),
  /** Member snapshots of this point in time (tag `volback-set:<backupId>` in restic). */
  members: z.array(setMember),
  /** Members without a snapshot, and why. */
  failed: z.array(
    z.object({ volumeName: z.string(), backupId: z.string(), code: z.string(), reason: z.string() }),
  ),
  startedAt: time.nullable(),
  finishedAt: time.nullable(),
  error: z.object({ code: z.string(), reason: z.string() }).nullable(),
});
export type SetBackupView = z.infer<typeof setBackupView>;

/** A set on one host: what its labels gather now, and its last backup. */
export const setView = z.object({
  setId: z.string(),
  hostId: z.string(),
  containers: z.array(z.string()),
  volumes: z.array(z.string()),
  lastBackup: setBackupView.nullable(),
  /** The newest backup that has snapshots (`Completed` or `PartiallyFailed`): what a restore takes. */
  lastRestorable: setBackupView.nullable(),
});
export type SetView = z.infer<typeof setView>;

/** A restore of a set backup, and the containers it recreated (or, in a dry run, would). */
export const setRestoreView = z.object({
  restoreId: z.string(),
  hostId: z.string(),
  setId: z.string(),
  setBackupId: z.string(),
  phase: z.enum(['Queued', 'Completed', 'Failed']),
  dryRun: z.boolean(),
  members: z.array(
    z.object({
      restoreId: z.string(),
      snapshotId: z.string(),
      volumeName: z.string(),
      target: z.object({ kind: z.string(), volumeName: z.string() }).loose(),
    }),
  ),
  /** Each container as created (or, in a dry run, as it would be): image, mounts, networks, warnings. */
  containers: z.array(recreatedContainer),
  requestedAt: time.nullable(),
  finishedAt: time.nullable(),
  error: z.object({ code: z.string(), reason: z.string(), failedVolume: z.string().nullable() }).nullable(),
});
export type SetRestoreView = z.infer<typeof setRestoreView>;
