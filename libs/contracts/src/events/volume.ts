import { z } from 'zod';
import { defineEvent } from '../define.ts';
import {
  containerId,
  count,
  hostId,
  labels,
  reason,
  schedule,
  timestamp,
  volumeName,
  workId,
} from '../fields.ts';

const volumeKey = { hostId, volumeName };

export const VolumeDiscovered = defineEvent({
  name: 'VolumeDiscovered',
  aggregate: 'volume',
  what: 'discovered',
  description: 'An agent found a volume on its host (at start or when it was created).',
  schema: z.object({
    ...volumeKey,
    driver: z.string().min(1).max(200),
    driverOptions: z.record(z.string(), z.string()).default({}),
    labels: labels.default({}),
    scope: z.enum(['local', 'global']).default('local'),
    /** True for volumes Docker named itself (64 hex digits), created by a container's VOLUME. */
    anonymous: z.boolean(),
    /** Where the data lives on the host, when the driver has a mountpoint. */
    mountpoint: z.string().max(4096).optional(),
    createdAt: timestamp.optional(),
    discoveredAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.volumeName],
});

export const VolumeChanged = defineEvent({
  name: 'VolumeChanged',
  aggregate: 'volume',
  what: 'changed',
  description: 'Something about a known volume changed: mounted or unmounted by a container, or its labels.',
  schema: z.object({
    ...volumeKey,
    change: z.enum(['mounted', 'unmounted', 'labels']),
    /** Container that mounted or unmounted it. */
    containerId: containerId.optional(),
    labels: labels.optional(),
    /** Size on disk when the agent measured it. */
    sizeBytes: count.optional(),
    changedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.volumeName],
});

export const VolumeRemoved = defineEvent({
  name: 'VolumeRemoved',
  aggregate: 'volume',
  what: 'removed',
  description: 'A volume no longer exists on its host. Its snapshots stay in the repository.',
  schema: z.object({ ...volumeKey, removedAt: timestamp }),
  aggregateId: (d) => [d.hostId, d.volumeName],
});

export const VolumeAtRisk = defineEvent({
  name: 'VolumeAtRisk',
  aggregate: 'volume',
  what: 'at-risk',
  description: "A volume's last successful backup is older than its policy allows (its RPO is missed).",
  schema: z.object({
    ...volumeKey,
    lastSuccessAt: timestamp.optional(),
    /** The recovery point objective in seconds that is missed. */
    rpoSeconds: z.number().int().positive(),
    reason,
    detectedAt: timestamp,
  }),
  aggregateId: (d) => [d.hostId, d.volumeName],
});

export const VolumeProtectionRestored = defineEvent({
  name: 'VolumeProtectionRestored',
  aggregate: 'volume',
  what: 'protection-restored',
  description: 'A volume that was at risk has a recent enough backup again.',
  schema: z.object({ ...volumeKey, lastSuccessAt: timestamp, restoredAt: timestamp }),
  aggregateId: (d) => [d.hostId, d.volumeName],
});

export const VolumeBackupScheduled = defineEvent({
  name: 'VolumeBackupScheduled',
  aggregate: 'volume',
  what: 'backup-scheduled',
  description:
    "The scheduler's next planned backup of a volume (its schedule slot plus jitter); republished when it changes.",
  schema: z.object({
    ...volumeKey,
    /** When the scheduler will request the next backup: the cron slot plus the volume's jitter. */
    nextDueAt: timestamp,
    /** The policy whose schedule it follows. */
    policyId: workId.optional(),
    /** The policy's cron expression. */
    schedule: schedule.shape.cron,
    /** The time zone the cron expression is read in. */
    timezone: schedule.shape.timezone.removeDefault().optional(),
  }),
  aggregateId: (d) => [d.hostId, d.volumeName],
});
