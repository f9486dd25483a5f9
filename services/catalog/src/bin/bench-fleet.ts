// `npm run bench:catalog [-- --snapshots 1000000] [-- --hosts 100 --volumes 50] [-- --json]`: the
// catalog at fleet scale. Generates the events of a fleet's backups into a real NATS server,
// then measures how fast the catalog projects them (events/s), how long a restart against that log
// takes until it answers, and the latency (p50/p95/p99 over --samples requests each) of every list
// and search query of the HTTP API, over real HTTP. Every page is checked to hold what it should.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { performance } from 'node:perf_hooks';
import { jetstreamManager } from '@nats-io/jetstream';
import { connectNats, drainNats, ensureStreams } from '@volback/messaging';
import { createLogger } from '@volback/observability';
import { startNatsServer } from '@volback/process';
import { startCatalog, type Catalog } from '../catalog.ts';
import {
  fleetHeartbeats,
  fleetHistory,
  fleetHostId,
  fleetVolumeName,
  publishAll,
  type FleetShape,
} from '../test-support/fleet-history.ts';
import { measureQueries } from '../test-support/query-latency.ts';

const { values } = parseArgs({
  options: {
    snapshots: { type: 'string', default: '1000000' },
    hosts: { type: 'string', default: '100' },
    volumes: { type: 'string', default: '50' },
    samples: { type: 'string', default: '200' },
    json: { type: 'boolean', default: false },
    dir: { type: 'string' },
  },
});

const count = (name: 'snapshots' | 'hosts' | 'volumes' | 'samples'): number => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: not a positive integer: ${values[name]}`);
  return n;
};

const shape: FleetShape = {
  hosts: count('hosts'),
  volumesPerHost: count('volumes'),
  snapshots: count('snapshots'),
  failEvery: 50,
  end: new Date(Date.now() - 3600_000),
};
const print = (line: Record<string, unknown>) =>
  console.log(
    values.json
      ? JSON.stringify(line)
      : Object.entries(line)
          .map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(2) : String(v)}`)
          .join(' '),
  );

// Warnings only (a rejected or failing event), on stderr: the figures stay alone on stdout.
const logger = createLogger({
  service: 'bench-catalog',
  level: 'warn',
  pretty: false,
  destination: process.stderr,
});
const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'volback-bench-catalog-'));
const nats = await startNatsServer({ dataDir: join(dir, 'nats') });
const nc = await connectNats({ servers: nats.url, name: 'bench-catalog' });
let catalog: Catalog | undefined;
try {
  await ensureStreams(await jetstreamManager(nc));
  let t = performance.now();
  const events = await publishAll(nc, fleetHistory(shape));
  const publishSeconds = (performance.now() - t) / 1000;
  print({
    bench: 'catalog',
    phase: 'publish',
    events,
    seconds: publishSeconds,
    eventsPerSecond: events / publishSeconds,
  });

  const databaseFile = join(dir, 'catalog.sqlite');
  t = performance.now();
  catalog = await startCatalog({ nc, databaseFile, instanceId: 'bench', logger });
  await catalog.caughtUp(3_600_000);
  const projectSeconds = (performance.now() - t) / 1000;
  print({
    bench: 'catalog',
    phase: 'project',
    events,
    seconds: projectSeconds,
    eventsPerSecond: events / projectSeconds,
  });

  // A restart against the whole log: the read model is on disk, the projection resumes.
  await catalog.stop();
  t = performance.now();
  catalog = await startCatalog({ nc, databaseFile, instanceId: 'bench', logger });
  await catalog.caughtUp(600_000);
  print({ bench: 'catalog', phase: 'restart', events, seconds: (performance.now() - t) / 1000 });

  // The recent past of the log: one heartbeat of every host, stored now.
  const eventsSince = new Date(Date.now() - 1000);
  await publishAll(nc, fleetHeartbeats(shape, new Date()));
  await catalog.caughtUp(60_000);

  await catalog.app.listen({ host: '127.0.0.1', port: 0 });
  const address = catalog.app.server.address();
  if (!address || typeof address === 'string') throw new Error('the catalog is not listening on TCP');
  const results = await measureQueries({
    baseUrl: `http://127.0.0.1:${address.port}`,
    samples: count('samples'),
    hostIds: Array.from({ length: shape.hosts }, (_, h) => fleetHostId(h)),
    volumeNames: Array.from({ length: shape.volumesPerHost }, (_, v) => fleetVolumeName(v)),
    snapshots: shape.snapshots,
    eventsSince,
  });
  for (const r of results)
    print({
      bench: 'catalog',
      phase: 'query',
      query: r.name,
      snapshots: shape.snapshots,
      p50Ms: r.p50Ms,
      p95Ms: r.p95Ms,
      p99Ms: r.p99Ms,
      maxMs: r.maxMs,
    });
} finally {
  await catalog?.stop().catch(() => undefined);
  await drainNats(nc);
  await nats.stop();
  if (!values.dir) rmSync(dir, { recursive: true, force: true });
}
