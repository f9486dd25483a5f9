// A bounded chaos loop: scheduled backups of several volumes every 3 s, and again and again a
// service (agent, gateway, scheduler, catalog) killed with kill -9 while a backup runs,
// then started again. Afterwards every failed backup was made good, the catalog lists what the
// log says, and restic checks every byte of the repository.
// Each round of four kills hits every service once, in a random order. Reduced in `npm test`
// (4 kills or 2 minutes); `npm run test:slow` runs 20 kills or 10 minutes.
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectNats, type NatsConnection } from '@volback/messaging';
import {
  resolveBinary,
  RESTIC,
  runToEnd,
  startDockerEngine,
  startNatsServer,
  type DockerEngine,
  type NatsServer,
} from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkLogAndCatalog, failuresMadeGood } from './cluster-events.ts';
import {
  EventLog,
  FAST_SCHEDULER_ENV,
  startCatalogService,
  startService,
  stopTestStack,
  type CatalogProcess,
  type ServiceProcess,
} from './stack.ts';
import { createScheduledVolumes } from './volume-fixture.ts';

const SLOW = process.env['VOLBACK_SLOW'] === '1';
const MAX_KILLS = SLOW ? 20 : 4;
const MAX_MS = SLOW ? 600_000 : 120_000;
const VOLUMES = ['chaos-1', 'chaos-2', 'chaos-3'];
const PASSWORD = 'e2e-chaos-password';
const KINDS = ['agent', 'gateway', 'scheduler', 'catalog'] as const;
type Kind = (typeof KINDS)[number];

describe('chaos: services killed at random during scheduled backups', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  let repo: string;
  let events: EventLog;
  const running = new Map<Kind, ServiceProcess>();
  const figures: Record<string, number | string> = {};
  let starts = 0;

  const catalog = () => running.get('catalog') as CatalogProcess;
  async function start(kind: Kind): Promise<void> {
    const name = `${kind}-${++starts}`;
    const common = { VOLBACK_NATS_URL: nats.url };
    const service =
      kind === 'catalog'
        ? await startCatalogService(name, common, join(dir, 'catalog'), dir)
        : await startService(
            kind,
            name,
            {
              ...common,
              ...(kind === 'gateway' ? { VOLBACK_REPOSITORY: repo, VOLBACK_PASSWORD: PASSWORD } : {}),
              ...(kind === 'agent'
                ? {
                    DOCKER_HOST: engine.dockerHost,
                    VOLBACK_AGENT_STATE_DIR: join(dir, 'agent'),
                    VOLBACK_HELPER_IMAGE: engine.image,
                    VOLBACK_COMMAND_ACK_WAIT_SECONDS: '5',
                    VOLBACK_DATA_TIMEOUT_SECONDS: '3',
                  }
                : {}),
              ...(kind === 'scheduler'
                ? {
                    ...FAST_SCHEDULER_ENV,
                    VOLBACK_SCHEDULER_ID: 'scheduler',
                  }
                : {}),
            },
            dir,
            60_000,
          );
    running.set(kind, service);
  }

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-chaos-'));
    repo = join(dir, 'repo');
    nc = await connectNats({ servers: [nats.url], name: 'e2e-chaos' });
    events = new EventLog(nc);
    await createScheduledVolumes(engine.docker, engine.image, VOLUMES, 8);
    for (const kind of KINDS) await start(kind);
  }, 240_000);

  afterAll(async () => {
    console.log(`chaos e2e figures: ${JSON.stringify(figures)}`);
    await stopTestStack({ events, services: running.values(), nc, engine, nats, dir });
  });

  it(
    'survives every kill: backups go on, failures are made good, the log and catalog agree',
    async () => {
      const started = Date.now();
      const killed: Record<Kind, number> = { agent: 0, gateway: 0, scheduler: 0, catalog: 0 };
      let kills = 0;
      let round: Kind[] = [];
      while (kills < MAX_KILLS && Date.now() - started < MAX_MS) {
        // During a backup: the next one that starts.
        const after = events.events.length;
        await events.waitFor(
          'a backup to start',
          (e) => e.type === 'io.volback.backup.started.v1' && events.events.indexOf(e) >= after,
          60_000,
        );
        // Random, but every kind once in each round of four.
        if (kills % KINDS.length === 0) round = [...KINDS].sort(() => Math.random() - 0.5);
        const kind = round[kills % KINDS.length]!;
        await running.get(kind)!.kill();
        running.delete(kind);
        kills++;
        killed[kind]++;
        await start(kind);
        // Backups go on after each kill before the next one.
        const since = events.events.length;
        await events.waitFor(
          `a backup completed after killing the ${kind}`,
          (e) => e.type === 'io.volback.backup.completed.v1' && events.events.indexOf(e) >= since,
          120_000,
        );
      }
      figures['kills'] = kills;
      figures['killed'] = JSON.stringify(killed);
      figures['chaosMs'] = Date.now() - started;

      // Failures so far made good (a retry or a newer slot), then no more backups are asked for.
      await failuresMadeGood(nc);
      const scheduler = running.get('scheduler')!;
      await scheduler.stop(10_000);
      running.delete('scheduler');
      Object.assign(figures, await checkLogAndCatalog(nc, catalog()));

      const restic = (args: string[]) =>
        runToEnd(resolveBinary(RESTIC), ['-r', repo, '--no-cache', ...args], {
          ...process.env,
          RESTIC_PASSWORD: PASSWORD,
        });
      // With locking: no exclusive lock was left behind by a killed gateway.
      const check = await restic(['check', '--read-data']);
      expect(check.code, check.output).toBe(0);
      figures['locksLeft'] = (await restic(['list', 'locks', '--no-lock'])).output
        .trim()
        .split('\n')
        .filter(Boolean).length;
    },
    MAX_MS + 600_000,
  );
});
