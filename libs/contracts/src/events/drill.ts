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

/** What started a drill: its policy's schedule, or someone (`volback drill`, the API). */
export const drillTrigger = z.enum(['schedule', 'manual']);

const drillKey = { drillId: workId, hostId, volumeName };

/** Where a drill stopped: the step whose failure ended it. */
export const drillStage = z.enum(['snapshot', 'restore', 'verify', 'containers', 'health']);

/** One file (or directory, link) whose restored copy differs from the snapshot. */
export const drillMismatch = z.object({
  /** Path in the volume (`/2024/photo.jpg`). */
  path: z.string().max(4096),
  problem: z.string().min(1).max(500),
});

/** What the drill timed: its RTO is the sum. */
const timings = {
  /** Restore into the scratch volume. */
  restoreMs: durationMs,
  /** Reading every restored file back and comparing it with the snapshot. */
  verifyMs: durationMs,
  /** Starting the containers and waiting for them to be healthy (0 without containers). */
  healthMs: durationMs,
};

export const RestoreDrillRequested = defineEvent({
  name: 'RestoreDrillRequested',
  aggregate: 'drill',
  what: 'requested',
  description: 'A restore drill of a volume was asked for (its schedule, or someone) and sent to its agent.',
  schema: z.object({
    ...drillKey,
    trigger: drillTrigger,
    repositoryId: repositoryId.default('default'),
    requestedBy: z.string().max(200).optional(),
    requestedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.drillId],
});

export const RestoreDrillPassed = defineEvent({
  name: 'RestoreDrillPassed',
  aggregate: 'drill',
  what: 'passed',
  description:
    "The volume's latest snapshot restored into a scratch volume, every file matched the snapshot, the containers (if asked) were healthy; `rtoMs` is the volume's measured recovery time. The scratch volume and containers are gone.",
  schema: z.object({
    ...drillKey,
    snapshotId,
    /** The scratch volume it restored into (removed again). */
    scratchVolume: volumeName,
    /** Entries compared with the snapshot. */
    files: count,
    dirs: count,
    symlinks: count,
    bytes: count,
    /** Containers started on the scratch volume (removed again). */
    containers: z.array(z.string().max(300)).max(100).default([]),
    /** The health command that exited 0 in them, if one was asked for. */
    health: z.string().max(2000).optional(),
    ...timings,
    /** Restore + verify + health: the volume's measured recovery time. */
    rtoMs: durationMs,
    startedAt: timestamp,
    completedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.drillId],
});

export const RestoreDrillFailed = defineEvent({
  name: 'RestoreDrillFailed',
  aggregate: 'drill',
  what: 'failed',
  description:
    'A restore drill found the volume cannot be recovered as it should (no snapshot, a restore error, a file unlike the snapshot, an unhealthy container); the scratch volume and containers are gone.',
  schema: z.object({
    ...drillKey,
    snapshotId: snapshotId.optional(),
    stage: drillStage,
    code: errorCode,
    reason,
    /** The first differences found (verify stage); `mismatchCount` says how many in all. */
    mismatches: z.array(drillMismatch).max(50).default([]),
    mismatchCount: count.default(0),
    /** Time from the drill's start to its failure. */
    durationMs,
    /** A scratch volume or container that could not be removed (named so an operator can). */
    leftBehind: z.array(z.string().max(300)).max(100).default([]),
    failedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.drillId],
});
