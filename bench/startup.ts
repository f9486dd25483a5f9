// `npm run bench:startup [-- --days 365] [-- --hosts 100 --volumes 50] [-- --skip-catalog] [-- --json] [-- --dir DIR]`:
// start-up of the scheduler and the catalog against the log of a fleet (issue 15, item 4).
// Writes `--days` days of daily backups of hosts × volumes (6 events per volume and day, see
// libs/contracts/src/fleet-log.ts) into a real NATS server, and heartbeats as
// the agents send them (VOLBACK_HEARTBEATS keeps the last per host), then times the real service
// processes (their main.ts): the scheduler's first start (a full replay, after which it stores a
// snapshot) and its restart (from the snapshot); the catalog's first start (projecting the whole
// log into an empty read model) and its restart (from its checkpoint). Every figure is checked:
// the scheduler's projection sequence and the catalog's checkpoint reach the log's end, the
// catalog counts every snapshot and every host online.
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { parseArgs } from 'node:util';
import { jetstreamManager } from '@nats-io/jetstream';
import {
  fleetLog,
  fleetLogHeartbeats,
  fleetLogSize,
  SCHEDULER_SNAPSHOT_BUCKET,
  STREAMS,
} from '@volback/contracts';
import { connectNats, drainNats, ensureStreams, publishMany } from '@volback/messaging';
import { startNatsServer } from '@volback/process';
import { startCatalogService, startService, type ServiceProcess } from '../infra/e2e/src/stack.ts';

const { values } = parseArgs({
  options: {
    days: { type: 'string', default: '365' },
    hosts: { type: 'string', default: '100' },
    volumes: { type: 'string', default: '50' },
    'heartbeat-rounds': { type: 'string', default: '20' },
    json: { type: 'boolean', default: false },
    'skip-catalog': { type: 'boolean', default: false },
    dir: { type: 'string' },
  },
});
const count = (name: 'days' | 'hosts' | 'volumes' | 'heartbeat-rounds'): number => {
  const n = Number(values[name]);
  if (!Number.isInteger(n) || n < 1) throw new Error(`--${name}: not a positive integer: ${values[name]}`);
  return n;
};
const shape = {
  hosts: count('hosts'),
  volumesPerHost: count('volumes'),
  days: count('days'),
  end: new Date(),
};
const print = (line: Record<string, unknown>) =>
  console.log(
    values.json
      ? JSON.stringify(line)
      : Object.entries(line)
          .map(([k, v]) => `${k}=${typeof v === 'number' && !Number.isInteger(v) ? v.toFixed(2) : String(v)}`)
          .join(' '),
  );

const dir = values.dir ?? mkdtempSync(join(tmpdir(), 'volback-bench-startup-'));
const logDir = join(dir, 'logs');
mkdirSync(logDir, { recursive: true });
const nats = await startNatsServer({ dataDir: join(dir, 'nats') });
const nc = await connectNats({ servers: nats.url, name: 'bench-startup' });
const services: ServiceProcess[] = [];
let stopBeating = () => {};
const HOUR = 3_600_000;

async function until(what: string, check: () => Promise<boolean>, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`${what}: not within ${timeoutMs} ms`);
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

try {
  const jsm = await jetstreamManager(nc);
  await ensureStreams(jsm);
  const t = performance.now();
  const events = await publishMany(nc, fleetLog(shape));
  if (events !== fleetLogSize(shape, shape.days)) throw new Error(`wrote ${events} events, expected more`);
  const seconds = (performance.now() - t) / 1000;
  print({
    bench: 'startup',
    phase: 'write-log',
    hosts: shape.hosts,
    volumes: shape.volumesPerHost,
    days: shape.days,
    events,
    seconds,
    eventsPerSecond: events / seconds,
  });

  // Heartbeats as the agents send them: every round replaces the last (one message per host).
  const rounds = count('heartbeat-rounds');
  for (let r = rounds - 1; r >= 0; r--)
    await publishMany(nc, fleetLogHeartbeats(shape, new Date(Date.now() - r * 30_000), shape.volumesPerHost));
  const hb = (await jsm.streams.info(STREAMS.heartbeats.name)).state;
  if (hb.messages !== shape.hosts) throw new Error(`the heartbeats stream holds ${hb.messages} messages`);
  // From now on the agents are alive: a round of heartbeats every 20 s, as they would send them.
  const beating = setInterval(
    () =>
      void publishMany(nc, fleetLogHeartbeats(shape, new Date(), shape.volumesPerHost)).catch(
        () => undefined,
      ),
    20_000,
  );
  stopBeating = () => clearInterval(beating);
  const last = (await jsm.streams.info(STREAMS.events.name)).state;
  print({
    bench: 'startup',
    phase: 'log',
    events: last.messages,
    bytes: last.bytes,
    heartbeatsSent: rounds * shape.hosts,
    heartbeatsStored: hb.messages,
    // A HostSeen every 30 s per host in the event log, as before 0.7.0, over the same days.
    heartbeatsInTheLogBefore070: shape.hosts * 2 * 60 * 24 * shape.days,
  });

  const env = { VOLBACK_NATS_URL: nats.url, LOG_LEVEL: 'info' };
  const timeScheduler = async (phase: string): Promise<void> => {
    const target = (await jsm.streams.info(STREAMS.events.name)).state.last_seq;
    const started = performance.now();
    const scheduler = await startService(
      'scheduler',
      phase,
      { ...env, VOLBACK_SCHEDULER_ID: 'bench' },
      logDir,
      HOUR,
    );
    const readySeconds = (performance.now() - started) / 1000;
    services.push(scheduler);
    const rebuilt = (await scheduler.log())
      .split('\n')
      .find((l) => l.includes('state rebuilt from the event log'));
    const facts = rebuilt
      ? (JSON.parse(rebuilt) as { events: number; read: number; fromSnapshot: number; ms: number })
      : undefined;
    if (!facts || facts.events < target) {
      throw new Error(`the scheduler is ready at sequence ${facts?.events}, the log ends at ${target}`);
    }
    print({
      bench: 'startup',
      phase,
      service: 'scheduler',
      readySeconds,
      fromSnapshotAt: facts.fromSnapshot,
      snapshotBytes: (await jsm.streams.info(`KV_${SCHEDULER_SNAPSHOT_BUCKET}`).catch(() => undefined))?.state
        .bytes,
      eventsRead: facts.read,
      projectionMs: facts.ms,
    });
    await scheduler.stop();
    services.pop();
  };
  await timeScheduler('scheduler-first-start');
  await timeScheduler('scheduler-restart');

  const dataDir = join(dir, 'catalog');
  const timeCatalog = async (phase: string): Promise<void> => {
    const target = (await jsm.streams.info(STREAMS.events.name)).state.last_seq;
    const started = performance.now();
    const catalog = await startCatalogService(
      phase,
      { ...env, VOLBACK_CATALOG_ID: 'bench' },
      dataDir,
      logDir,
    );
    services.push(catalog);
    const readySeconds = (performance.now() - started) / 1000;
    // Its readiness check says how many events of the log it has not applied yet.
    await until(
      'the catalog to catch up',
      async () => /"0 event\(s\) to apply"/.test(await (await fetch(`${catalog.opsUrl}/readyz`)).text()),
      24 * HOUR,
    );
    const caughtUpSeconds = (performance.now() - started) / 1000;
    const status = (await (await fetch(`${catalog.url}/v1/status`)).json()) as {
      snapshots: number;
      hosts: { total: number; online: number };
    };
    const snapshots = shape.hosts * shape.volumesPerHost * shape.days;
    if (status.snapshots !== snapshots || status.hosts.online !== shape.hosts) {
      throw new Error(
        `the catalog shows ${JSON.stringify(status)}, expected ${snapshots} snapshots and every host online`,
      );
    }
    print({
      bench: 'startup',
      phase,
      service: 'catalog',
      readySeconds,
      caughtUpSeconds,
      events: target,
      eventsPerSecond: target / caughtUpSeconds,
    });
    await catalog.stop();
    services.pop();
  };
  if (!values['skip-catalog']) {
    await timeCatalog('catalog-first-start');
    await timeCatalog('catalog-restart');
  }
} finally {
  stopBeating();
  for (const service of services) await service.stop().catch(() => undefined);
  await drainNats(nc);
  await nats.stop();
  if (!values.dir) rmSync(dir, { recursive: true, force: true });
}
