import {
  BackupCompleted,
  BackupFailed,
  createEvent,
  HostRegistered,
  HostSeen,
  VolumeDiscovered,
  type OutgoingMessage,
} from '@volback/contracts';
import { publishMany } from '@volback/messaging';

/** The shape of a generated fleet's history. */
export interface FleetShape {
  hosts: number;
  volumesPerHost: number;
  /** Snapshots in all, spread evenly over the volumes, one a day back from {@link end}. */
  snapshots: number;
  /** One backup in `failEvery` fails (no snapshot) instead, each volume in turn; 0: none fail. */
  failEvery?: number;
  /** The time of the newest snapshot. */
  end: Date;
}

export const fleetHostId = (h: number): string => `fleet-host-${String(h).padStart(3, '0')}`;
export const fleetVolumeName = (v: number): string => `vol-${String(v).padStart(2, '0')}`;
/** A deterministic 64-hex snapshot id for the `n`th snapshot. */
export const fleetSnapshotId = (n: number): string => n.toString(16).padStart(16, '0').repeat(4);

const DAY_MS = 24 * 3600_000;
const stats = (n: number) => ({
  filesNew: n % 7,
  filesChanged: n % 5,
  filesUnmodified: 1000,
  dirsNew: 0,
  dirsChanged: 1,
  dirsUnmodified: 100,
  bytesRead: 1_000_000 + (n % 1000),
  bytesAdded: 10_000 + (n % 997),
  bytesStored: 8_000,
  totalBytes: 50_000_000 + n,
  durationMs: 1_000 + (n % 300),
});

/**
 * The events of a fleet: each host registered, its volumes discovered, then the backups of every
 * volume, oldest first (one `BackupCompleted` per snapshot, a `BackupFailed` now and then), as the
 * agents would have published them over the days. Generated lazily: a million snapshots never sit
 * in memory at once.
 */
export function* fleetHistory(shape: FleetShape): Generator<OutgoingMessage> {
  const volumes = shape.hosts * shape.volumesPerHost;
  const failing = shape.failEvery ? 1 / shape.failEvery : 0;
  const rounds = Math.ceil(shape.snapshots / (volumes * (1 - failing)));
  const start = shape.end.getTime() - rounds * DAY_MS;
  for (let h = 0; h < shape.hosts; h++) {
    const hostId = fleetHostId(h);
    const source = `volback://agent/${hostId}`;
    const at = new Date(start - DAY_MS);
    yield createEvent(
      HostRegistered,
      {
        hostId,
        name: hostId,
        engine: { id: `engine-${h}`, version: '28.0.1', apiVersion: '1.48', os: 'Debian', arch: 'x86_64' },
        agentVersion: '0.1.0',
        registeredAt: at.toISOString(),
      },
      { source, time: at },
    );
    for (let v = 0; v < shape.volumesPerHost; v++) {
      yield createEvent(
        VolumeDiscovered,
        {
          hostId,
          volumeName: fleetVolumeName(v),
          driver: 'local',
          anonymous: false,
          labels: { 'volback.schedule': '@daily' },
          discoveredAt: at.toISOString(),
        },
        { source, time: at },
      );
    }
  }
  let n = 0;
  for (let round = 0; n < shape.snapshots; round++) {
    for (let i = 0; i < volumes && n < shape.snapshots; i++) {
      const h = i % shape.hosts;
      const v = Math.floor(i / shape.hosts);
      const hostId = fleetHostId(h);
      const time = new Date(start + round * DAY_MS + (i % 3600) * 1000);
      const key = { hostId, volumeName: fleetVolumeName(v), backupId: `fleet-backup-${round}-${i}` };
      const options = { source: `volback://agent/${hostId}`, time };
      if (shape.failEvery && (round + i) % shape.failEvery === shape.failEvery - 1) {
        yield createEvent(
          BackupFailed,
          {
            ...key,
            code: 'VOLBACK_AGENT_READ_FAILED',
            reason: 'generated failure',
            failedAt: time.toISOString(),
          },
          options,
        );
        continue;
      }
      n++;
      yield createEvent(
        BackupCompleted,
        { ...key, snapshotId: fleetSnapshotId(n), stats: stats(n), completedAt: time.toISOString() },
        options,
      );
    }
  }
}

/** One heartbeat (`HostSeen`) of every host of the fleet, at `at`. */
export function* fleetHeartbeats(shape: FleetShape, at: Date): Generator<OutgoingMessage> {
  for (let h = 0; h < shape.hosts; h++) {
    const hostId = fleetHostId(h);
    yield createEvent(
      HostSeen,
      {
        hostId,
        seenAt: at.toISOString(),
        intervalSeconds: 30,
        containers: shape.volumesPerHost,
        volumes: shape.volumesPerHost,
        backupsRunning: 0,
      },
      { source: `volback://agent/${hostId}`, time: at },
    );
  }
}

/** Publishes messages to JetStream, many at once (`publishMany` of libs/messaging). */
export const publishAll = publishMany;
