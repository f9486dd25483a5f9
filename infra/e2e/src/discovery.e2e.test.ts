import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RequestBackup, type Envelope } from '@volback/contracts';
import { connectNats, drainNats, type NatsConnection } from '@volback/messaging';
import {
  startDockerEngine,
  startNatsServer,
  waitUntil,
  type DockerEngine,
  type NatsServer,
} from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog, sendCommand, startCatalogService, startService, type ServiceProcess } from './stack.ts';

const DISCOVERED = 'io.volback.volume.discovered.v1';
const REMOVED = 'io.volback.volume.removed.v1';
const CHANGED = 'io.volback.volume.changed.v1';
const SCHEDULED = 'io.volback.volume.backup-scheduled.v1';
const REQUESTED = 'io.volback.backup.requested.v1';
const MAINTENANCE_REQUESTED = 'io.volback.repository.maintenance-requested.v1';

type Data = Record<string, unknown>;
const data = (e: Envelope) => e.data as Data;

/** The value of a counter in a Prometheus text exposition, 0 when absent. */
function counter(metrics: string, name: string, labels: string): number {
  const line = metrics.split('\n').find((l) => l.startsWith(`${name}{`) && l.includes(labels));
  return line ? Number(line.split(' ').at(-1)) : 0;
}

/**
 * A volume's first use by a container moves its Docker `CreatedAt` (the local driver reads the
 * ctime of its directory). That is the same volume: no removal, no second first backup, and
 * its next due time is announced once.
 */
describe('discovery: a volume a container starts using stays the same volume', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  let events: EventLog;
  const services: ServiceProcess[] = [];

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-discovery-'));
    nc = await connectNats({ servers: [nats.url], name: 'e2e-discovery' });
    events = new EventLog(nc);
  }, 180_000);

  afterAll(async () => {
    events?.close();
    await Promise.all(services.map((s) => s.stop(10_000)));
    if (nc) await drainNats(nc);
    await engine?.stop();
    await nats?.stop();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  it('publishes no VolumeRemoved, requests one first backup and announces the next due time once', async () => {
    await engine.docker.createVolume({ Name: 'app-data' });
    const createdAt = async () =>
      ((await engine.docker.getVolume('app-data').inspect()) as { CreatedAt?: string }).CreatedAt;
    const before = await createdAt();

    const start = async (kind: 'agent' | 'gateway' | 'scheduler', env: Record<string, string>) => {
      const service = await startService(kind, kind, { VOLBACK_NATS_URL: nats.url, ...env }, dir);
      services.push(service);
      return service;
    };
    await start('gateway', { VOLBACK_REPOSITORY: join(dir, 'repo'), VOLBACK_PASSWORD: 'e2e-discovery' });
    await start('agent', {
      DOCKER_HOST: engine.dockerHost,
      VOLBACK_AGENT_STATE_DIR: join(dir, 'agent'),
      VOLBACK_HELPER_IMAGE: engine.image,
    });
    const scheduler = await start('scheduler', {
      VOLBACK_SCHEDULER_FIRST_BACKUP_DELAY_SECONDS: '1',
      VOLBACK_SCHEDULER_JITTER_SECONDS: '0',
      VOLBACK_SCHEDULER_PRUNE_SCHEDULE: 'off',
      VOLBACK_SCHEDULER_CHECK_SCHEDULE: 'off',
    });
    const catalog = await startCatalogService(
      'catalog',
      { VOLBACK_NATS_URL: nats.url },
      join(dir, 'catalog'),
      dir,
    );
    services.push(catalog);
    /** What `volback volumes` shows as NEXT DUE. */
    const nextDue = async () => {
      const page = (await (await fetch(`${catalog.url}/v1/volumes`)).json()) as {
        items: { volumeName: string; protection: { nextDueAt: string | null } }[];
      };
      return page.items.find((v) => v.volumeName === 'app-data')?.protection.nextDueAt ?? null;
    };
    try {
      const ofVolume = (type: string) =>
        events.events.filter((e) => e.type === type && data(e)['volumeName'] === 'app-data');
      await events.waitFor('the first backup to be requested', (e) => e.type === REQUESTED);
      const first = data(ofVolume(REQUESTED)[0]!)['backupId'] as string;
      expect((await events.outcome(first)).type).toBe('io.volback.backup.completed.v1');
      await events.waitFor('the next due time', (e) => e.type === SCHEDULED);

      // when a container starts using the volume and writes at its root
      const app = await engine.docker.createContainer({
        name: 'app',
        Image: engine.image,
        Cmd: ['sh', '-c', 'echo hello > /data/greeting && sleep 600'],
        HostConfig: { NetworkMode: 'none', Binds: ['app-data:/data'] },
      });
      await app.start();
      await events.waitFor(
        'the volume mounted by the container',
        (e) => e.type === CHANGED && data(e)['change'] === 'mounted',
      );
      // (the case that broke: the engine now reports another CreatedAt for the same volume; it
      // has whole seconds, and the agent looks again on the next engine event: a container created)
      await waitUntil('CreatedAt to move', async () => (await createdAt()) !== before, 15_000);
      await engine.docker.createContainer({
        name: 'poke',
        Image: engine.image,
        HostConfig: { NetworkMode: 'none' },
      });
      await events.waitFor(
        'the look after CreatedAt moved',
        (e) => e.type === 'io.volback.container.observed.v1' && data(e)['name'] === 'poke',
      );

      // then, up to a later marker (a manual backup, and the forget the scheduler decides after
      // it in a round of its own): nothing about the volume changed but its mount
      const manual = `manual-${Date.now()}`;
      await sendCommand(nc, RequestBackup, {
        hostId: data(ofVolume(DISCOVERED)[0]!)['hostId'] as string,
        volumeName: 'app-data',
        requestedBy: manual,
      });
      const manualRequest = await events.waitFor(
        'the manual backup',
        (e) => e.type === REQUESTED && data(e)['requestedBy'] === manual,
      );
      const manualId = data(manualRequest)['backupId'] as string;
      expect((await events.outcome(manualId)).type).toBe('io.volback.backup.completed.v1');
      await events.waitFor(
        'the forget after the manual backup',
        (e) =>
          e.type === MAINTENANCE_REQUESTED && events.events.indexOf(e) > events.events.indexOf(manualRequest),
      );

      expect(ofVolume(REMOVED)).toEqual([]);
      expect(ofVolume(DISCOVERED)).toHaveLength(1);
      expect(ofVolume(REQUESTED).map((e) => data(e)['trigger'])).toEqual(['volume-discovered', 'manual']);
      expect(ofVolume(SCHEDULED)).toHaveLength(1);
      // and the catalog still shows the volume's next due time
      const announced = data(ofVolume(SCHEDULED)[0]!)['nextDueAt'] as string;
      await waitUntil('the catalog to catch up', async () => (await nextDue()) !== null, 10_000);
      expect(Date.parse((await nextDue())!)).toBe(Date.parse(announced));
      // and the scheduler decided the announcement once (a duplicate JetStream drops would not show in the log)
      const metrics = await (await fetch(`${scheduler.opsUrl}/metrics`)).text();
      expect(counter(metrics, 'volback_scheduler_decisions_total', 'what="backup-scheduled"')).toBe(1);
    } catch (error) {
      const logs = await Promise.all(
        services.map(async (s) => `--- ${s.name}\n${(await s.log()).slice(-3000)}`),
      );
      throw new Error(`${(error as Error).message}\n${logs.join('\n')}`, { cause: error });
    }
  }, 240_000);
});
