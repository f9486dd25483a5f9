// Fixtures: the event log of a fleet over days of daily backups, as the agents, the scheduler and
// the gateways would have published it; the scheduler's start-up test and `npm run bench:startup`
// replay it.
import { createEvent, type OutgoingMessage } from './define.ts';
import { BackupCompleted, BackupRequested, BackupStarted } from './events/backup.ts';
import { HostRegistered } from './events/host.ts';
import {
  RepositoryChecked,
  RepositoryMaintenanceRequested,
  SnapshotsForgotten,
} from './events/repository.ts';
import { VolumeBackupScheduled, VolumeDiscovered } from './events/volume.ts';
import { createHeartbeat } from './heartbeat.ts';

/** The shape of a generated fleet's log. */
export interface FleetLogShape {
  readonly hosts: number;
  readonly volumesPerHost: number;
  /** Days of daily backups (02:00 UTC, spread over 30 minutes), the last one at or before `end`. */
  readonly days: number;
  /** The newest moment of the log. */
  readonly end: Date;
  /** The first day to write (the log of days `[fromDay, days)`; 0: from the start, with the hosts). */
  readonly fromDay?: number;
}

const DAY_MS = 86_400_000;
const SLOT_MS = 2 * 3600_000;
const JITTER_S = 1800;
const hex64 = (n: number) => n.toString(16).padStart(64, '0');

export const fleetLogHostId = (h: number): string => `fleet-host-${String(h).padStart(3, '0')}`;
export const fleetLogVolumeName = (v: number): string => `vol-${String(v).padStart(2, '0')}`;

/** Midnight UTC of the first day: the days end with the last 02:00 slot at or before `end`. */
function firstDay(shape: FleetLogShape): number {
  const endMs = shape.end.getTime();
  let lastSlotDay = Math.floor(endMs / DAY_MS) * DAY_MS;
  if (lastSlotDay + SLOT_MS + JITTER_S * 1000 + 60_000 > endMs) lastSlotDay -= DAY_MS;
  return lastSlotDay - (shape.days - 1) * DAY_MS;
}

/**
 * Events per volume and day: `BackupRequested` (schedule), `BackupStarted`, `BackupCompleted`,
 * the next `VolumeBackupScheduled`, the forget that follows (`RepositoryMaintenanceRequested`,
 * `SnapshotsForgotten`): 6; plus the repository's daily check (2 events) and, first, each host's
 * registration and volumes. Generated lazily.
 */
export function* fleetLog(shape: FleetLogShape): Generator<OutgoingMessage> {
  const day0 = firstDay(shape);
  const scheduler = { source: 'volback://scheduler/bench' };
  const gateway = { source: 'volback://gateway/bench' };
  if (!shape.fromDay) {
    const at = new Date(day0 - DAY_MS);
    for (let h = 0; h < shape.hosts; h++) {
      const hostId = fleetLogHostId(h);
      const agent = { source: `volback://agent/${hostId}`, time: at };
      yield createEvent(
        HostRegistered,
        {
          hostId,
          name: hostId,
          engine: { id: `engine-${h}`, version: '28.0.1', apiVersion: '1.48', os: 'Debian', arch: 'x86_64' },
          agentVersion: '0.8.0',
          registeredAt: at.toISOString(),
        },
        agent,
      );
      for (let v = 0; v < shape.volumesPerHost; v++) {
        yield createEvent(
          VolumeDiscovered,
          {
            hostId,
            volumeName: fleetLogVolumeName(v),
            driver: 'local',
            anonymous: false,
            labels: {},
            discoveredAt: at.toISOString(),
          },
          agent,
        );
      }
    }
  }
  let n = (shape.fromDay ?? 0) * shape.hosts * shape.volumesPerHost;
  for (let d = shape.fromDay ?? 0; d < shape.days; d++) {
    const slot = day0 + d * DAY_MS + SLOT_MS;
    for (let v = 0; v < shape.volumesPerHost; v++) {
      for (let h = 0; h < shape.hosts; h++) {
        n++;
        const hostId = fleetLogHostId(h);
        const volumeName = fleetLogVolumeName(v);
        const requestedAt = slot + ((h * shape.volumesPerHost + v) % JITTER_S) * 1000;
        const time = (ms: number) => ({ time: new Date(ms) });
        const iso = (ms: number) => new Date(ms).toISOString();
        const backupId = `bk-${hostId}-${volumeName}-${slot / 1000}`;
        const agent = { source: `volback://agent/${hostId}` };
        yield createEvent(
          BackupRequested,
          {
            backupId,
            hostId,
            volumeName,
            trigger: 'schedule',
            slot: iso(slot),
            maxAttempts: 3,
            requestedBy: 'scheduler',
            requestedAt: iso(requestedAt),
          },
          { ...scheduler, ...time(requestedAt) },
        );
        yield createEvent(
          BackupStarted,
          { backupId, hostId, volumeName, method: 'direct', startedAt: iso(requestedAt + 1000) },
          { ...agent, ...time(requestedAt + 1000) },
        );
        const completedAt = requestedAt + 20_000;
        yield createEvent(
          BackupCompleted,
          {
            backupId,
            hostId,
            volumeName,
            snapshotId: hex64(n),
            stats: {
              filesNew: n % 7,
              filesChanged: n % 5,
              filesUnmodified: 1000,
              dirsNew: 0,
              dirsChanged: 1,
              dirsUnmodified: 100,
              bytesRead: 1_000_000,
              bytesAdded: 10_000,
              bytesStored: 8_000,
              totalBytes: 50_000_000,
              durationMs: 19_000,
            },
            completedAt: iso(completedAt),
          },
          { ...agent, ...time(completedAt) },
        );
        yield createEvent(
          VolumeBackupScheduled,
          {
            hostId,
            volumeName,
            nextDueAt: iso(requestedAt + DAY_MS),
            schedule: '0 2 * * *',
            timezone: 'UTC',
          },
          { ...scheduler, ...time(completedAt + 500) },
        );
        const operationId = `fg-${backupId}`;
        yield createEvent(
          RepositoryMaintenanceRequested,
          {
            operationId,
            repositoryId: 'default',
            operation: 'forget',
            hostId,
            volumeName,
            requestedBy: 'scheduler',
            requestedAt: iso(completedAt + 1000),
          },
          { ...scheduler, ...time(completedAt + 1000) },
        );
        yield createEvent(
          SnapshotsForgotten,
          {
            operationId,
            repositoryId: 'default',
            hostId,
            volumeName,
            retention: { keepLast: 3, keepDaily: 7, keepWeekly: 4, keepMonthly: 6 },
            forgotten: [],
            kept: [hex64(n)],
            forgottenAt: iso(completedAt + 3000),
          },
          { ...gateway, ...time(completedAt + 3000) },
        );
      }
    }
    const checkAt = day0 + d * DAY_MS + 5 * 3600_000;
    const operationId = `ck-default-${checkAt / 1000}`;
    yield createEvent(
      RepositoryMaintenanceRequested,
      {
        operationId,
        repositoryId: 'default',
        operation: 'check',
        slot: new Date(checkAt).toISOString(),
        requestedBy: 'scheduler',
        requestedAt: new Date(checkAt).toISOString(),
      },
      { ...scheduler, time: new Date(checkAt) },
    );
    yield createEvent(
      RepositoryChecked,
      {
        operationId,
        repositoryId: 'default',
        ok: true,
        readDataFraction: 0.05,
        packsChecked: 100,
        durationMs: 60_000,
        checkedAt: new Date(checkAt + 60_000).toISOString(),
      },
      { ...gateway, time: new Date(checkAt + 60_000) },
    );
  }
}

/** Events {@link fleetLog} writes for `days` days (from day 0, the hosts included). */
export function fleetLogSize(shape: Pick<FleetLogShape, 'hosts' | 'volumesPerHost'>, days: number): number {
  const volumes = shape.hosts * shape.volumesPerHost;
  return shape.hosts + volumes + days * (volumes * 6 + 2);
}

/** Each host's heartbeat at `at`, as the agents publish them (on `VOLBACK_HEARTBEATS`). */
export function* fleetLogHeartbeats(
  shape: Pick<FleetLogShape, 'hosts'>,
  at: Date,
  volumesPerHost = 0,
): Generator<OutgoingMessage> {
  for (let h = 0; h < shape.hosts; h++) {
    const hostId = fleetLogHostId(h);
    yield createHeartbeat(
      {
        hostId,
        seenAt: at.toISOString(),
        intervalSeconds: 30,
        containers: volumesPerHost,
        volumes: volumesPerHost,
        backupsRunning: 0,
      },
      { source: `volback://agent/${hostId}`, time: at },
    );
  }
}
