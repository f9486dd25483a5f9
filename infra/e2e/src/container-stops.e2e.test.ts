import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Envelope } from '@volback/contracts';
import { connectNats, type NatsConnection } from '@volback/messaging';
import { startDockerEngine, startNatsServer, type DockerEngine, type NatsServer } from '@volback/testing';
import type Dockerode from 'dockerode';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog, stopTestStack, startService, type ServiceProcess } from './stack.ts';

const PASSWORD = 'e2e-container-stops-password';
const REQUESTED = 'io.volback.backup.requested.v1';
const STOPPED = 'io.volback.container.stopped.v1';
const STARTED = 'io.volback.container.started.v1';

type Data = Record<string, unknown>;
const data = (e: Envelope) => e.data as Data;

describe('container stops: volback says which are its own, the scheduler backs up after the others', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  let events: EventLog;
  let db: Dockerode.Container;
  const services = new Set<ServiceProcess>();

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-stops-'));
    nc = await connectNats({ servers: [nats.url], name: 'e2e-container-stops' });
    events = new EventLog(nc);

    // A container whose volume is backed up with the container stopped (consistency `stop`).
    await engine.docker.createVolume({ Name: 'db-data' });
    db = await engine.docker.createContainer({
      name: 'db',
      Image: engine.image,
      Cmd: ['sh', '-c', 'trap "exit 0" TERM; while true; do sleep 1; done'],
      Labels: { 'volback.consistency': 'stop', 'volback.stop.timeout': '10' },
      HostConfig: { NetworkMode: 'none', Binds: ['db-data:/data'] },
    });
    await db.start();

    const start = async (kind: 'agent' | 'gateway' | 'scheduler', env: Record<string, string>) => {
      services.add(await startService(kind, kind, { VOLBACK_NATS_URL: nats.url, ...env }, dir));
    };
    await start('gateway', { VOLBACK_REPOSITORY: join(dir, 'repo'), VOLBACK_PASSWORD: PASSWORD });
    await start('agent', {
      DOCKER_HOST: engine.dockerHost,
      VOLBACK_AGENT_STATE_DIR: join(dir, 'agent'),
      VOLBACK_HELPER_IMAGE: engine.image,
    });
    await start('scheduler', {
      VOLBACK_SCHEDULER_DEFAULT_POLICY: 'all',
      VOLBACK_SCHEDULER_FIRST_BACKUP_DELAY_SECONDS: '1',
      VOLBACK_SCHEDULER_JITTER_SECONDS: '0',
      VOLBACK_SCHEDULER_BACKUP_ON_CONTAINER_STOP: '1',
      VOLBACK_SCHEDULER_ID: 'scheduler-a',
    });
  }, 180_000);

  afterAll(() => stopTestStack({ events, services, nc, engine, nats, dir }));

  it('a stop for a backup is published as volback’s and triggers nothing; a stop by someone triggers a backup', async () => {
    const requestsOf = (volumeName: string) =>
      events.events.filter((e) => e.type === REQUESTED && data(e)['volumeName'] === volumeName).map(data);
    const stopsOfDb = () => events.events.filter((e) => e.type === STOPPED && data(e)['name'] === 'db');

    // given the first backup of db-data, which stops the container and starts it again
    const first = data(
      await events.waitFor(
        'the first backup of db-data',
        (e) => e.type === REQUESTED && data(e)['volumeName'] === 'db-data',
      ),
    );
    expect(first['trigger']).toBe('volume-discovered');
    const outcome = await events.outcome(first['backupId'] as string);
    expect(outcome.type).toBe('io.volback.backup.completed.v1');
    const ownStop = await events.waitFor('the backup’s stop of db', (e) => stopsOfDb().includes(e));
    expect(data(ownStop)['byVolback']).toBe(true);
    await events.waitFor(
      'db started again',
      (e) =>
        e.type === STARTED &&
        data(e)['name'] === 'db' &&
        events.events.indexOf(e) > events.events.indexOf(ownStop),
    );

    // and a marker: a volume discovered after that stop gets its first backup, so the scheduler
    // has decided with the stop in its state
    await engine.docker.createVolume({ Name: 'marker' });
    await events.waitFor(
      'the first backup of the marker volume',
      (e) => e.type === REQUESTED && data(e)['volumeName'] === 'marker',
    );
    expect(requestsOf('db-data').map((r) => r['trigger'])).toEqual(['volume-discovered']);

    // when someone stops the container
    await db.stop();

    // then the stop is published as theirs, and the scheduler backs the volume up after it
    const userStop = await events.waitFor(
      'the user’s stop of db',
      (e) => stopsOfDb().includes(e) && data(e)['byVolback'] === false,
    );
    const onStop = data(
      await events.waitFor(
        'a backup after the stop',
        (e) => e.type === REQUESTED && data(e)['trigger'] === 'container-stopped',
      ),
    );
    const stoppedAt = (data(userStop)['stoppedAt'] as string).slice(0, 19);
    expect(onStop).toMatchObject({ volumeName: 'db-data' });
    expect(onStop['backupId']).toContain(`stopped-${stoppedAt}`);
    expect(requestsOf('db-data').map((r) => r['trigger'])).toEqual([
      'volume-discovered',
      'container-stopped',
    ]);
    expect(stopsOfDb().map((e) => data(e)['byVolback'])).toEqual([true, false]);
  }, 180_000);
});
