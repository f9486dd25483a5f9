// Builders of valid events for the scheduler's tests: each goes through its contract schema.
import {
  BackupCompleted,
  BackupFailed,
  BackupRequested,
  BackupStarted,
  ContainerObserved,
  ContainerRemoved,
  ContainerStopped,
  createEvent,
  HostRegistered,
  HostSeen,
  RepositoryChecked,
  RepositoryMaintenanceFailed,
  RepositoryPruned,
  SnapshotsForgotten,
  VolumeChanged,
  VolumeDiscovered,
  VolumeRemoved,
  type EventDefinition,
} from '@volback/contracts';
import type { z } from 'zod';
import type { Decision, LoggedEvent } from '../domain/index.ts';

/** A host id and a 64-hex container id for tests. */
export const HOST = 'host-a';
export const containerIdOf = (n: number) => n.toString(16).padStart(64, '0');
const iso = (ms: number | string) => new Date(ms).toISOString();

function event<S extends z.ZodType>(def: EventDefinition<string, string, S>, data: z.input<S>): LoggedEvent {
  const { envelope } = createEvent(def, data, { source: 'volback://test' });
  return { type: envelope.type, data: envelope.data };
}

export const hostRegistered = (at: number | string, hostId = HOST) =>
  event(HostRegistered, {
    hostId,
    name: hostId,
    engine: { id: 'engine', version: '28.0.0', apiVersion: '1.48', os: 'linux', arch: 'x86_64' },
    agentVersion: '0.1.0',
    registeredAt: iso(at),
  });

export const hostSeen = (at: number | string, hostId = HOST, intervalSeconds = 30) =>
  event(HostSeen, { hostId, seenAt: iso(at), intervalSeconds, containers: 0, volumes: 0, backupsRunning: 0 });

export const volumeDiscovered = (
  volumeName: string,
  at: number | string,
  labels: Record<string, string> = {},
  hostId = HOST,
) =>
  event(VolumeDiscovered, {
    hostId,
    volumeName,
    driver: 'local',
    labels,
    anonymous: false,
    discoveredAt: iso(at),
  });

export const volumeLabelsChanged = (
  volumeName: string,
  at: number | string,
  labels: Record<string, string>,
  hostId = HOST,
) => event(VolumeChanged, { hostId, volumeName, change: 'labels', labels, changedAt: iso(at) });

export const volumeRemoved = (volumeName: string, at: number | string, hostId = HOST) =>
  event(VolumeRemoved, { hostId, volumeName, removedAt: iso(at) });

export const containerObserved = (
  n: number,
  name: string,
  volumes: string[],
  at: number | string,
  labels: Record<string, string> = {},
  state: 'running' | 'exited' | 'created' = 'running',
  hostId = HOST,
) =>
  event(ContainerObserved, {
    hostId,
    containerId: containerIdOf(n),
    name,
    image: 'busybox',
    labels,
    state,
    mounts: volumes.map((volumeName) => ({
      type: 'volume' as const,
      volumeName,
      destination: `/${volumeName}`,
      readOnly: false,
    })),
    observedAt: iso(at),
  });

/** A container stopped: by someone, or by volback itself (`byVolback`, a consistency stop). */
export const containerStopped = (
  n: number,
  name: string,
  at: number | string,
  { hostId = HOST, byVolback = false }: { hostId?: string; byVolback?: boolean } = {},
) =>
  event(ContainerStopped, {
    hostId,
    containerId: containerIdOf(n),
    name,
    exitCode: 0,
    byVolback,
    stoppedAt: iso(at),
  });

export const containerRemoved = (n: number, at: number | string, hostId = HOST) =>
  event(ContainerRemoved, { hostId, containerId: containerIdOf(n), removedAt: iso(at) });

export const backupStarted = (backupId: string, volumeName: string, at: number | string, hostId = HOST) =>
  event(BackupStarted, { backupId, hostId, volumeName, method: 'direct', startedAt: iso(at) });

const SNAPSHOT = (n: string) => n.padEnd(64, '0').slice(0, 64);

export const backupCompleted = (backupId: string, volumeName: string, at: number | string, hostId = HOST) =>
  event(BackupCompleted, {
    backupId,
    hostId,
    volumeName,
    snapshotId: SNAPSHOT(Buffer.from(backupId).toString('hex')),
    stats: {
      filesNew: 1,
      filesChanged: 0,
      filesUnmodified: 0,
      dirsNew: 1,
      dirsChanged: 0,
      dirsUnmodified: 0,
      bytesRead: 1,
      bytesAdded: 1,
      bytesStored: 1,
      durationMs: 1,
    },
    completedAt: iso(at),
  });

/** A `BackupRequested` from elsewhere than the scheduler (the catalog's "back up now"): no maxAttempts. */
export const backupRequested = (
  backupId: string,
  volumeName: string,
  at: number | string,
  trigger: 'manual' | 'schedule' = 'manual',
  hostId = HOST,
) =>
  event(BackupRequested, {
    backupId,
    hostId,
    volumeName,
    trigger,
    repositoryId: 'default',
    requestedBy: 'api',
    requestedAt: iso(at),
  });

export const backupFailed = (
  backupId: string,
  volumeName: string,
  at: number | string,
  attempt = 1,
  code = 'VOLBACK_GATEWAY_UNAVAILABLE',
  hostId = HOST,
) =>
  event(BackupFailed, {
    backupId,
    hostId,
    volumeName,
    code,
    reason: `failed with ${code}`,
    attempt,
    failedAt: iso(at),
  });

export const snapshotsForgotten = (
  operationId: string,
  at: number | string,
  hostId = HOST,
  volumeName = 'data',
) =>
  event(SnapshotsForgotten, {
    operationId,
    repositoryId: 'default',
    hostId,
    volumeName,
    retention: { keepLast: 1 },
    forgotten: [],
    kept: [],
    forgottenAt: iso(at),
  });

export const repositoryPruned = (operationId: string, at: number | string) =>
  event(RepositoryPruned, {
    operationId,
    repositoryId: 'default',
    packsDeleted: 0,
    packsRepacked: 0,
    blobsRemoved: 0,
    bytesFreed: 0,
    durationMs: 1,
    prunedAt: iso(at),
  });

export const repositoryChecked = (operationId: string, at: number | string, ok = true) =>
  event(RepositoryChecked, {
    operationId,
    repositoryId: 'default',
    ok,
    readDataFraction: 0.1,
    packsChecked: 1,
    durationMs: 1,
    checkedAt: iso(at),
  });

export const maintenanceFailed = (
  operationId: string,
  operation: 'forget' | 'prune' | 'check',
  at: number | string,
  code = 'REPOSITORY_LOCKED',
) =>
  event(RepositoryMaintenanceFailed, {
    operationId,
    repositoryId: 'default',
    operation,
    code,
    reason: 'locked by a backup session',
    failedAt: iso(at),
  });

/** The events of some decisions, as the projection will read them back. */
export function eventsOf(decisions: readonly Decision[]): LoggedEvent[] {
  return decisions.flatMap((d) =>
    d.intents.flatMap((i) =>
      i.kind === 'event' ? [{ type: i.message.envelope.type, data: i.message.envelope.data }] : [],
    ),
  );
}

/** The commands of some decisions: `[type, data]`. */
export function commandsOf(
  decisions: readonly Decision[],
): { type: string; subject: string; data: Record<string, unknown> }[] {
  return decisions.flatMap((d) =>
    d.intents.flatMap((i) =>
      i.kind === 'command'
        ? [
            {
              type: i.message.envelope.type,
              subject: i.message.subject,
              data: i.message.envelope.data as Record<string, unknown>,
            },
          ]
        : [],
    ),
  );
}

/** Short names of what some decisions publish, e.g. `backup.requested`. */
export function typesOf(decisions: readonly Decision[]): string[] {
  return decisions.flatMap((d) =>
    d.intents.map((i) => i.message.envelope.type.replace(/^io\.volback\.(cmd\.)?/, '').replace(/\.v1$/, '')),
  );
}
