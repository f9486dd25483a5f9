import { jetstreamManager } from '@nats-io/jetstream';
import { Kvm } from '@nats-io/kv';
import type { NatsConnection } from '@nats-io/nats-core';
import { fleetLog, fleetLogHeartbeats, fleetLogHostId, fleetLogSize, STREAMS } from '@volback/contracts';
import { connectNats, drainNats, ensureStreams, publishMany } from '@volback/messaging';
import { createLogger, createMetrics } from '@volback/observability';
import { startNatsServer, waitUntil, type NatsServer } from '@volback/testing';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEventProjection } from './adapters/event-projection.ts';
import { openSnapshotStore, SNAPSHOT_KEY } from './adapters/snapshot-store.ts';
import { DEFAULT_SETTINGS, hostOnline, serializeState, type SchedulerState } from './domain/index.ts';
import { startScheduler, type Scheduler } from './scheduler.ts';

const logger = createLogger({
  service: 'scheduler-test',
  level: process.env['LOG_LEVEL'] === 'debug' ? 'debug' : 'warn',
});
const BUCKET = 'volback-scheduler-state-test';
const shape = { hosts: 10, volumesPerHost: 10, days: 12, end: new Date() };

let nats: NatsServer;
let nc: NatsConnection;

/** A scheduler that never decides (no round within the test): only its state is looked at. */
async function start(instanceId: string, snapshots: boolean): Promise<Scheduler> {
  return startScheduler({
    nc,
    settings: { ...DEFAULT_SETTINGS, source: `volback://scheduler/${instanceId}` },
    instanceId,
    logger,
    metrics: createMetrics({ service: 'scheduler', defaultMetrics: false }),
    tickMs: 3_600_000,
    leaseMs: 3_000,
    leaderBucket: `leader-${instanceId}`,
    ...(snapshots ? { snapshots: { bucket: BUCKET, everyEvents: 1_000_000, everyMs: 3_600_000 } } : {}),
  });
}

/** The state as comparable JSON: map entries in key order. */
function canonical(state: SchedulerState): string {
  const serialized = serializeState(state) as unknown as Record<string, unknown>;
  for (const [key, value] of Object.entries(serialized)) {
    if (Array.isArray(value))
      serialized[key] = [...(value as [string, unknown][])].sort(([a], [b]) => (a < b ? -1 : 1));
  }
  return JSON.stringify(serialized);
}

/** Starts a scheduler with a full replay (no snapshot) and returns its state, canonical. */
async function replayed(instanceId: string): Promise<string> {
  const full = await start(instanceId, false);
  try {
    expect(full.projection.start.fromSequence).toBe(0);
    return canonical(full.state);
  } finally {
    await full.stop();
  }
}

const lastSequence = async () =>
  (await (await jetstreamManager(nc)).streams.info(STREAMS.events.name)).state.last_seq;

beforeAll(async () => {
  nats = await startNatsServer();
  nc = await connectNats({ servers: [nats.url], name: 'startup-test' });
  await ensureStreams(await jetstreamManager(nc));
  await publishMany(nc, fleetLog({ ...shape, days: shape.days - 1 }));
  await publishMany(nc, fleetLogHeartbeats(shape, new Date(), shape.volumesPerHost));
}, 60_000);

afterAll(async () => {
  if (nc) await drainNats(nc);
  await nats?.stop();
});

describe('scheduler start-up', () => {
  it('replays the log once, then starts from its snapshot, reads only the events after it, and has the state of a full replay', async () => {
    const first = await start('first', true);
    expect(first.projection.start.replayReason).toBe('no snapshot stored');
    expect(first.projection.eventsRead).toBe(fleetLogSize(shape, shape.days - 1));
    const snapshotAt = await first.projection.saveSnapshot();
    expect(snapshotAt).toBe(await lastSequence());
    await first.stop();

    // A day of the fleet's log after the snapshot.
    await publishMany(nc, fleetLog({ ...shape, fromDay: shape.days - 1 }));
    const last = await lastSequence();
    expect(last - snapshotAt).toBe(shape.hosts * shape.volumesPerHost * 6 + 2);

    const next = await start('next', true);
    try {
      expect(next.projection.start).toEqual({ fromSequence: snapshotAt });
      expect(next.projection.eventsRead).toBe(last - snapshotAt);
      expect(next.projection.sequence).toBe(last);
      expect(canonical(next.state)).toBe(await replayed('full'));
      // Liveness came from VOLBACK_HEARTBEATS: every host is online, none has a HostSeen in the log.
      for (let h = 0; h < shape.hosts; h++)
        expect(hostOnline(next.state, fleetLogHostId(h), Date.now())).toBe(true);
    } finally {
      await next.stop();
    }
  }, 60_000);

  it('follows new heartbeats: a host seen again moves on, one that stopped goes offline', async () => {
    const scheduler = await start('heartbeats', true);
    try {
      const later = new Date(Date.now() + 60_000);
      const [first] = fleetLogHeartbeats({ hosts: 1 }, later);
      await publishMany(nc, [first!]);
      const host = fleetLogHostId(0);
      await waitUntil(
        'the heartbeat applied',
        async () => scheduler.state.hosts.get(host)?.lastSeenAt === later.getTime(),
        10_000,
      );
      // Nothing heard of host 1 for 10 minutes: its backups wait (backups.ts).
      expect(hostOnline(scheduler.state, fleetLogHostId(1), Date.now() + 10 * 60_000)).toBe(false);
      expect(hostOnline(scheduler.state, host, Date.now() + 60_000)).toBe(true);
    } finally {
      await scheduler.stop();
    }
  }, 30_000);

  it('replays the whole log when the snapshot is corrupt or of another format', async () => {
    const kv = await new Kvm(nc).open(BUCKET);
    const expected = await replayed('reference');
    await kv.put(SNAPSHOT_KEY, new TextEncoder().encode('not gzip at all'));
    const corrupt = await start('corrupt', true);
    try {
      expect(corrupt.projection.start.fromSequence).toBe(0);
      expect(corrupt.projection.start.replayReason).toMatch(/cannot be read/);
      expect(canonical(corrupt.state)).toBe(expected);
    } finally {
      await corrupt.stop();
    }
    await kv.put(
      SNAPSHOT_KEY,
      gzipSync(JSON.stringify({ format: 999, sequence: 1, streamCreated: 'x', state: {} })),
    );
    const other = await start('other-format', true);
    try {
      expect(other.projection.start.replayReason).toMatch(/format 999/);
      expect(canonical(other.state)).toBe(expected);
      // It stored a snapshot of its own once replayed: the next start uses it.
      await other.projection.saveSnapshot();
    } finally {
      await other.stop();
    }
    const again = await start('again', true);
    try {
      expect(again.projection.start.fromSequence).toBe(await lastSequence());
      expect(again.projection.eventsRead).toBe(0);
    } finally {
      await again.stop();
    }
  }, 60_000);

  it('notices a stream that was replaced: the snapshot of the old one is not used', async () => {
    const jsm = await jetstreamManager(nc);
    await jsm.streams.delete(STREAMS.events.name);
    await ensureStreams(jsm);
    await publishMany(nc, fleetLog({ ...shape, days: 1 }));
    const scheduler = await start('new-stream', true);
    try {
      expect(scheduler.projection.start.replayReason).toMatch(/of a stream created/);
      expect(scheduler.projection.eventsRead).toBe(fleetLogSize(shape, 1));
      expect(canonical(scheduler.state)).toBe(await replayed('new-stream-full'));
    } finally {
      await scheduler.stop();
    }
  }, 60_000);
  it('writes a snapshot every so many events while replaying, one at a time, never one per event', async () => {
    const store = await openSnapshotStore(nc, { bucket: `${BUCKET}-writes` });
    let writes = 0;
    let inFlight = 0;
    let most = 0;
    const counting = {
      load: () => store.load(),
      async save(snapshot: Parameters<typeof store.save>[0]) {
        writes++;
        most = Math.max(most, ++inFlight);
        try {
          return await store.save(snapshot);
        } finally {
          inFlight--;
        }
      },
    };
    const projection = await startEventProjection({
      nc,
      logger,
      snapshots: { store: counting, everyEvents: 500 },
    });
    try {
      await projection.replayed;
      const events = projection.eventsRead;
      await projection.saveSnapshot();
      expect(most).toBe(1);
      // One per 500 events at most, plus the one after the replay and the one asked for.
      expect(writes).toBeGreaterThan(1);
      expect(writes).toBeLessThanOrEqual(Math.ceil(events / 500) + 2);
    } finally {
      await projection.stop();
    }
  }, 60_000);
});
