import { execFile } from 'node:child_process';
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { DefinePolicy, type Envelope } from '@volback/contracts';
import { connectNats, type NatsConnection } from '@volback/messaging';
import {
  startDockerEngine,
  startNatsServer,
  waitUntil,
  type DockerEngine,
  type NatsServer,
} from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { EventLog, stopTestStack, sendCommand, startService, type ServiceProcess } from './stack.ts';
import { runInVolume } from './volume-fixture.ts';

const run = promisify(execFile);
const PASSWORD = 'e2e-scheduler-password';
const REQUESTED = 'io.volback.backup.requested.v1';
const COMPLETED = 'io.volback.backup.completed.v1';
/** A backup with unreadable entries (app-data's counter is rewritten every second) still makes a snapshot. */
const PARTIALLY_FAILED = 'io.volback.backup.partially-failed.v1';
const FORGOTTEN = 'io.volback.repository.snapshots-forgotten.v1';

type Data = Record<string, unknown> & { backupId?: string; volumeName?: string; snapshotId?: string };
const data = (e: Envelope) => e.data as Data;

describe('scheduler: automated backups with real agent, gateway, engine and restic', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  let repo: string;
  let events: EventLog;
  let hostId: string;
  const services = new Set<ServiceProcess>();
  let start: (
    kind: 'agent' | 'gateway' | 'scheduler',
    name: string,
    env: Record<string, string>,
  ) => Promise<ServiceProcess>;

  async function restic(args: string[]): Promise<string> {
    try {
      const { stdout } = await run('restic', ['-r', repo, '--no-cache', '--no-lock', ...args], {
        env: { ...process.env, RESTIC_PASSWORD: PASSWORD },
        maxBuffer: 64 * 1024 * 1024,
      });
      return stdout;
    } catch (error) {
      const e = error as { stderr?: string; stdout?: string };
      throw new Error(`restic ${args.join(' ')} failed: ${e.stderr ?? ''}${e.stdout ?? ''}`, {
        cause: error,
      });
    }
  }
  const of = (type: string, volume: string) =>
    events.events.filter((e) => e.type === type && data(e).volumeName === volume);
  const requestedOf = (volume: string) => of(REQUESTED, volume).map(data);
  /** Snapshots of a volume in the order they were made: complete and partial backups both make one. */
  const snapshotIdsOf = (volume: string) =>
    events.events
      .filter((e) => (e.type === COMPLETED || e.type === PARTIALLY_FAILED) && data(e).volumeName === volume)
      .map((e) => data(e).snapshotId!);

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-scheduler-'));
    repo = join(dir, 'repo');
    nc = await connectNats({ servers: [nats.url], name: 'e2e-scheduler' });
    events = new EventLog(nc);

    // A service whose container asks for a backup every 5 seconds, keeping the last two snapshots.
    await engine.docker.createVolume({ Name: 'app-data' });
    await runInVolume(
      engine.docker,
      engine.image,
      'app-data',
      'echo hello > /v/greeting && mkdir /v/sub && echo x > /v/sub/x',
    );
    const app = await engine.docker.createContainer({
      name: 'app',
      Image: engine.image,
      Cmd: ['sh', '-c', 'i=0; while true; do i=$((i+1)); echo $i > /data/counter; sleep 1; done'],
      Labels: { 'volback.schedule': '*/5 * * * * *', 'volback.retention.keep-last': '2' },
      HostConfig: { NetworkMode: 'none', Binds: ['app-data:/data'] },
    });
    await app.start();

    start = async (kind: 'agent' | 'gateway' | 'scheduler', name: string, env: Record<string, string>) => {
      const service = await startService(kind, name, { VOLBACK_NATS_URL: nats.url, ...env }, dir);
      services.add(service);
      return service;
    };
    await start('gateway', 'gateway', { VOLBACK_REPOSITORY: repo, VOLBACK_PASSWORD: PASSWORD });
    await start('agent', 'agent', {
      DOCKER_HOST: engine.dockerHost,
      VOLBACK_AGENT_STATE_DIR: join(dir, 'agent'),
      VOLBACK_HELPER_IMAGE: engine.image,
    });
    hostId = (await readFile(join(dir, 'agent', 'host-id'), 'utf8')).trim();
    await start('scheduler', 'scheduler', { ...SCHEDULER_ENV, VOLBACK_SCHEDULER_ID: 'scheduler-a' });
  }, 180_000);

  /** Every scheduler of the test runs with this. */
  const SCHEDULER_ENV = {
    // Protect every volume; the default daily schedule does not fire during the test.
    VOLBACK_SCHEDULER_DEFAULT_POLICY: 'all',
    VOLBACK_SCHEDULER_FIRST_BACKUP_DELAY_SECONDS: '1',
    VOLBACK_SCHEDULER_JITTER_SECONDS: '0',
    VOLBACK_SCHEDULER_PRUNE_SCHEDULE: '*/20 * * * * *',
    VOLBACK_SCHEDULER_PRUNE_HOLD_SECONDS: '10',
    VOLBACK_SCHEDULER_PRUNE_RETRY_SECONDS: '2',
    VOLBACK_SCHEDULER_CHECK_SCHEDULE: '*/30 * * * * *',
    VOLBACK_SCHEDULER_CHECK_READ_DATA: '1',
    VOLBACK_SCHEDULER_LEASE_SECONDS: '3',
  };

  afterAll(() => stopTestStack({ events, services, nc, engine, nats, dir }));

  it("a labelled container's volume is backed up on its seconds cron schedule", async () => {
    await waitUntil(
      'three scheduled backups of app-data completed',
      async () => {
        const scheduled = new Set(
          requestedOf('app-data')
            .filter((r) => r['trigger'] === 'schedule')
            .map((r) => r.backupId),
        );
        return of(COMPLETED, 'app-data').filter((e) => scheduled.has(data(e).backupId)).length >= 3;
      },
      90_000,
    );
    const requested = requestedOf('app-data');
    // one first backup, then slots on multiples of 5 seconds, each slot once, named after it
    expect(requested[0]?.['trigger']).toBe('volume-discovered');
    const slots = requested.filter((r) => r['slot']).map((r) => r['slot'] as string);
    expect(new Set(slots).size).toBe(slots.length);
    for (const slot of slots) expect(new Date(slot).getUTCSeconds() % 5).toBe(0);
    for (const r of requested.filter((r) => r['slot'])) {
      expect(r.backupId).toBe(`bk-${hostId}-app-data-${(r['slot'] as string).replace('.000Z', 'Z')}`);
    }
    // the scheduler's metrics say what it does
    const scheduler = [...services].find((s) => s.name === 'scheduler')!;
    const metrics = await (await fetch(`${scheduler.opsUrl}/metrics`)).text();
    for (const name of [
      'volback_scheduler_backups_due',
      'volback_scheduler_backups_running',
      'volback_scheduler_backups_failed',
      'volback_scheduler_volumes_at_risk',
    ]) {
      expect(metrics).toMatch(new RegExp(`^${name}\\{[^}]*\\} \\d+`, 'm'));
    }
    expect(metrics).toMatch(/^volback_scheduler_leader\{[^}]*\} 1$/m);
  }, 120_000);

  it('a new volume created on the running engine is backed up without any configuration', async () => {
    await engine.docker.createVolume({ Name: 'fresh' });
    await runInVolume(engine.docker, engine.image, 'fresh', 'echo new > /v/file');
    const completed = await events.waitFor(
      'the first backup of fresh',
      (e) => e.type === COMPLETED && data(e).volumeName === 'fresh',
      60_000,
    );
    expect(requestedOf('fresh').find((r) => r.backupId === data(completed).backupId)?.['trigger']).toBe(
      'volume-discovered',
    );
    const snapshots = JSON.parse(
      await restic(['snapshots', '--json', '--tag', `host-id:${hostId}`, '--path', '/volumes/fresh']),
    ) as unknown[];
    expect(snapshots.length).toBeGreaterThanOrEqual(1);
  }, 90_000);

  it('retention forgets what restic forget would, and prune leaves restic check --read-data passing', async () => {
    // Freeze app-data's schedule through the API (an API policy wins over labels), same retention.
    await sendCommand(nc, DefinePolicy, {
      policyId: 'app-data-frozen',
      scope: { kind: 'volume', hostId, volumeName: 'app-data' },
      policy: { schedule: { cron: '0 0 1 1 *', timezone: 'UTC' }, retention: { keepLast: 2 } },
      requestedBy: 'e2e',
    });
    await events.waitFor(
      'the API policy',
      (e) => e.type === 'io.volback.policy.defined.v1' && data(e)['policyId'] === 'app-data-frozen',
    );
    // when the backups in flight have ended and the last snapshot's forget has run
    let lastSnapshot = '';
    await waitUntil(
      'app-data quiet and forgotten after its last snapshot',
      async () => {
        const ids = requestedOf('app-data').map((r) => r.backupId);
        const ended = new Set(
          events.events
            .filter((e) => /backup\.(completed|failed|partially-failed)/.test(e.type))
            .map((e) => data(e).backupId),
        );
        if (!ids.every((id) => ended.has(id))) return false;
        lastSnapshot = snapshotIdsOf('app-data').at(-1)!;
        return of(FORGOTTEN, 'app-data').some((e) => (data(e)['kept'] as string[]).includes(lastSnapshot));
      },
      60_000,
    );
    const completedIds = snapshotIdsOf('app-data');
    expect(completedIds.length).toBeGreaterThanOrEqual(4);
    const forgotten = of(FORGOTTEN, 'app-data').flatMap((e) => data(e)['forgotten'] as string[]);
    const lastForget = data(of(FORGOTTEN, 'app-data').at(-1)!);

    // then volback kept the two newest snapshots and forgot every other one
    expect(new Set(lastForget['kept'] as string[])).toEqual(new Set(completedIds.slice(-2)));
    expect(new Set(forgotten)).toEqual(new Set(completedIds.slice(0, -2)));
    // and restic, given the same policy on the same repository, keeps exactly those and removes nothing more
    const current = (
      JSON.parse(
        await restic(['snapshots', '--json', '--tag', `host-id:${hostId}`, '--path', '/volumes/app-data']),
      ) as {
        id: string;
      }[]
    ).map((s) => s.id);
    const dryRun = JSON.parse(
      await restic([
        'forget',
        '--dry-run',
        '--json',
        '--keep-last',
        '2',
        // volback selects a host's snapshots by this tag (their hostname is the host's name)
        '--tag',
        `host-id:${hostId}`,
        '--path',
        '/volumes/app-data',
      ]),
    ) as { keep: { id: string }[] | null; remove: { id: string }[] | null }[];
    expect(dryRun).toHaveLength(1);
    expect(new Set((dryRun[0]!.keep ?? []).map((s) => s.id))).toEqual(new Set(current));
    expect(dryRun[0]!.remove ?? []).toEqual([]);
    expect(new Set(current)).toEqual(new Set(lastForget['kept'] as string[]));

    // when the prune slot comes (no backup is running), then the repository is pruned and restic checks it, data included
    const after = events.events.length;
    const pruned = await events.waitFor(
      'a prune after the forget',
      (e) =>
        events.events.indexOf(e) >= after &&
        /repository\.(pruned|maintenance-failed)/.test(e.type) &&
        data(e)['operationId']?.toString().startsWith('prune-') === true,
      60_000,
    );
    if (pruned.type !== 'io.volback.repository.pruned.v1') {
      // A session lock of the gateway stopped it: the scheduler tries again.
      expect(data(pruned)['code']).toBe('REPOSITORY_LOCKED');
      await events.waitFor('the prune retried', (e) => e.type === 'io.volback.repository.pruned.v1', 60_000);
    }
    await restic(['check', '--read-data']);
    const checked = await events.waitFor(
      'a scheduled check',
      (e) => e.type === 'io.volback.repository.checked.v1',
      60_000,
    );
    expect(data(checked)).toMatchObject({ ok: true, readDataFraction: 1 });
    // every snapshot restic lists is one volback wrote and did not forget
    const all = (JSON.parse(await restic(['snapshots', '--json'])) as { id: string }[]).map((s) => s.id);
    for (const id of forgotten) expect(all).not.toContain(id);
  }, 180_000);

  it('two schedulers: the leader killed, the other takes over within seconds; after downtime a missed slot runs once', async () => {
    const isLeader = async (s: ServiceProcess) =>
      /^volback_scheduler_leader\{[^}]*\} 1$/m.test(await (await fetch(`${s.opsUrl}/metrics`)).text());
    const first = [...services].find((s) => s.name === 'scheduler')!;
    const second = await start('scheduler', 'scheduler-b', {
      ...SCHEDULER_ENV,
      VOLBACK_SCHEDULER_ID: 'scheduler-b',
    });
    expect(await isLeader(first)).toBe(true);
    expect(await isLeader(second)).toBe(false);

    await engine.docker.createVolume({ Name: 'steady' });
    const steady = await engine.docker.createContainer({
      name: 'steady',
      Image: engine.image,
      Cmd: ['sleep', '3600'],
      Labels: { 'volback.schedule': '*/4 * * * * *' },
      HostConfig: { NetworkMode: 'none', Binds: ['steady:/data'] },
    });
    await steady.start();
    const scheduledDone = () => {
      const scheduled = new Set(
        requestedOf('steady')
          .filter((r) => r['slot'])
          .map((r) => r.backupId),
      );
      return of(COMPLETED, 'steady').filter((e) => scheduled.has(data(e).backupId)).length;
    };
    await waitUntil('two scheduled backups of steady', async () => scheduledDone() >= 2, 60_000);

    // when the leader is killed (kill -9: it cannot give its lease up)
    const killedAt = Date.now();
    await first.kill();
    services.delete(first);
    await waitUntil('the standby to lead', () => isLeader(second), 15_000);
    const takeoverMs = Date.now() - killedAt;
    // then the standby leads within the lease (3 s) and a little, and the schedule goes on under it
    expect(takeoverMs).toBeLessThan(6_000);
    const before = scheduledDone();
    await waitUntil(
      'two more scheduled backups of steady',
      async () => scheduledDone() >= before + 2,
      60_000,
    );
    const sources = new Set(of(REQUESTED, 'steady').map((e) => e.source));
    expect(sources).toEqual(new Set(['volback://scheduler/scheduler-a', 'volback://scheduler/scheduler-b']));

    // when no scheduler runs for three slots and one comes back
    await second.kill();
    services.delete(second);
    const downAt = Date.now();
    // steady's slots come every 4 s (`*/4`): wait until three of them have passed with no scheduler.
    const thirdMissedSlot = (Math.floor(downAt / 4_000) + 3) * 4_000;
    await waitUntil('three slots without a scheduler', async () => Date.now() > thirdMissedSlot, 20_000);
    const seenBefore = requestedOf('steady').length;
    const restartedAt = Date.now();
    await start('scheduler', 'scheduler-c', { ...SCHEDULER_ENV, VOLBACK_SCHEDULER_ID: 'scheduler-c' });
    await waitUntil(
      'a backup of steady after the restart',
      async () => requestedOf('steady').length > seenBefore,
      30_000,
    );
    // The next request after it: the rounds that could have asked for a missed slot again are over.
    await waitUntil(
      'a second backup of steady after the restart',
      async () => requestedOf('steady').length > seenBefore + 1,
      30_000,
    );
    // then the missed slots run once, as one catch-up for the latest of them (slots that came due
    // after the restart are regular ones, however slowly the new scheduler started)
    const after = requestedOf('steady').slice(seenBefore);
    const missed = after.filter(
      (r) =>
        r['slot'] &&
        Date.parse(r['slot'] as string) <= restartedAt &&
        Date.parse(r['slot'] as string) > downAt,
    );
    expect(missed.length).toBeLessThanOrEqual(1);
    expect(after[0]?.['trigger']).toBe('catch-up');
    // and over the whole test, no slot of steady was requested twice
    const slots = requestedOf('steady')
      .filter((r) => r['slot'])
      .map((r) => r['slot']);
    expect(new Set(slots).size).toBe(slots.length);
  }, 180_000);
});
