import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager } from '@nats-io/jetstream';
import { connectNats, drainNats, ensureStreams, type NatsConnection } from '@volback/messaging';
import { startNatsServer, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCatalog, type Catalog } from './catalog.ts';
import {
  fleetHeartbeats,
  fleetHistory,
  fleetHostId,
  fleetVolumeName,
  publishAll,
  type FleetShape,
} from './test-support/fleet-history.ts';
import { measureQueries } from './test-support/query-latency.ts';

// The reduced run of `npm run bench:catalog` (a million snapshots there): the same generated fleet,
// projected by a real catalog from a real NATS server, every list and search query answered and
// checked. Figures are the bench's job; this proves the bench's path and the totals.
const shape: FleetShape = {
  hosts: 20,
  volumesPerHost: 10,
  snapshots: 6_000,
  failEvery: 50,
  end: new Date(Date.now() - 3600_000),
};

describe('the catalog on a generated fleet', () => {
  let nats: NatsServer;
  let nc: NatsConnection;
  let dir: string;
  let catalog: Catalog;
  let events: number;

  beforeAll(async () => {
    nats = await startNatsServer();
    nc = await connectNats({ servers: nats.url, name: 'catalog-fleet-scale-test' });
    await ensureStreams(await jetstreamManager(nc));
    dir = await mkdtemp(join(tmpdir(), 'volback-catalog-fleet-'));
    events = await publishAll(nc, fleetHistory(shape));
    catalog = await startCatalog({ nc, databaseFile: join(dir, 'catalog.sqlite'), instanceId: 'fleet' });
    await catalog.caughtUp(120_000);
  }, 180_000);

  afterAll(async () => {
    await catalog?.stop();
    if (nc) await drainNats(nc);
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('projects every event, in batches, to the checkpoint at the end of the log', async () => {
    const status = (await catalog.app.inject({ url: '/v1/status' })).json<{
      checkpoint: number;
      snapshots: number;
      hosts: { total: number };
      volumes: { total: number };
    }>();
    expect(status.checkpoint).toBe(events);
    expect(status.snapshots).toBe(shape.snapshots);
    expect(status.hosts.total).toBe(shape.hosts);
    expect(status.volumes.total).toBe(shape.hosts * shape.volumesPerHost);
  });

  it("keeps the status totals equal to a count over the rows (the triggers' running sums)", async () => {
    const db = catalog.database.db;
    const counted = db.prepare('SELECT count(*) AS n FROM snapshots WHERE forgotten_at IS NULL').get() as {
      n: number;
    };
    const stored = db
      .prepare(
        "SELECT sum(json_extract(stats, '$.bytesStored')) AS n FROM backups WHERE phase IN ('Completed', 'PartiallyFailed')",
      )
      .get() as { n: number };
    const status = (await catalog.app.inject({ url: '/v1/status' })).json<{
      snapshots: number;
      repository: { sizeBytes: number };
    }>();
    expect(status.snapshots).toBe(counted.n);
    expect(status.repository.sizeBytes).toBe(stored.n);
  });

  it('answers every list and search query with what the fleet holds', async () => {
    const eventsSince = new Date(Date.now() - 1000);
    await publishAll(nc, fleetHeartbeats(shape, new Date()));
    await catalog.caughtUp(30_000);
    await catalog.app.listen({ host: '127.0.0.1', port: 0 });
    const address = catalog.app.server.address();
    if (!address || typeof address === 'string') throw new Error('not listening on TCP');
    const results = await measureQueries({
      baseUrl: `http://127.0.0.1:${address.port}`,
      samples: 3,
      hostIds: Array.from({ length: shape.hosts }, (_, h) => fleetHostId(h)),
      volumeNames: Array.from({ length: shape.volumesPerHost }, (_, v) => fleetVolumeName(v)),
      snapshots: shape.snapshots,
      eventsSince,
    });
    expect(results.map((r) => r.name)).toContain('snapshots, page 6');
    expect(results.every((r) => r.samples === 3)).toBe(true);
  });
});
