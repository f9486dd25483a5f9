// The real services on a 3-node NATS cluster with every stream and bucket at R3: scheduled
// backups of several volumes go on while one node is killed (kill -9) and while all three are
// restarted one after the other; nothing is lost or doubled between the log and the catalog.
// `npm run test:slow` runs it with more volumes and more backups per phase (VOLBACK_SLOW=1).
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { jetstreamManager, type JetStreamManager } from '@nats-io/jetstream';
import { GRANTS_BUCKET, SCHEDULER_LEADER_BUCKET, STREAMS } from '@volback/contracts';
import { connectNats, type NatsConnection } from '@volback/messaging';
import {
  runToEnd,
  resolveBinary,
  RESTIC,
  startDockerEngine,
  startNatsCluster,
  waitFor,
  waitUntil,
  type DockerEngine,
  type NatsCluster,
} from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { backupsOf, checkLogAndCatalog, failuresMadeGood, storedEvents } from './cluster-events.ts';
import {
  FAST_SCHEDULER_ENV,
  startCatalogService,
  startService,
  stopTestStack,
  type CatalogProcess,
  type ServiceProcess,
} from './stack.ts';
import { createScheduledVolumes, runInVolume } from './volume-fixture.ts';

const SLOW = process.env['VOLBACK_SLOW'] === '1';
// Three: with six on one host and a 3-second schedule, volumes 4 to 6 were never backed up in a
// slow run (the first three took every turn); the slow run asks for more backups instead.
const VOLUMES = ['cluster-vol-1', 'cluster-vol-2', 'cluster-vol-3'];
/** Backups of every volume that must complete in each phase of the test. */
const PER_PHASE = SLOW ? 5 : 2;
const PASSWORD = 'e2e-nats-cluster-password';
const COMPLETED = 'io.volback.backup.completed.v1';

describe('a 3-node NATS cluster at R3: backups go on through a killed node and a rolling restart', () => {
  let cluster: NatsCluster;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let jsm: JetStreamManager;
  let dir: string;
  let repo: string;
  let catalog: CatalogProcess;
  const schedulers: ServiceProcess[] = [];
  const services = new Set<ServiceProcess>();
  const figures: Record<string, number | string> = {};

  const start = async (
    kind: 'agent' | 'gateway' | 'scheduler',
    name: string,
    env: Record<string, string>,
  ) => {
    const service = await startService(kind, name, { ...clusterEnv(), ...env }, dir, 60_000);
    services.add(service);
    return service;
  };
  const clusterEnv = () => ({ VOLBACK_NATS_URL: cluster.url, VOLBACK_STREAM_REPLICAS: '3' });
  const isLeader = async (s: ServiceProcess) =>
    /^volback_scheduler_leader\{[^}]*\} 1$/m.test(await (await fetch(`${s.opsUrl}/metrics`)).text());

  /** Waits until every volume has `count` more completed backups requested after `since`. */
  async function backupsComplete(what: string, since: string, count: number): Promise<void> {
    await waitUntil(
      `${what}: ${count} completed backups of each volume requested after ${since}`,
      async () => {
        const backups = [...backupsOf((await storedEvents(nc)).events).values()];
        return VOLUMES.every(
          (volume) =>
            backups.filter(
              (b) => b.request.volumeName === volume && b.requestedAt > since && b.outcome === COMPLETED,
            ).length >= count,
        );
      },
      SLOW ? 300_000 : 120_000,
    );
  }
  const replicasOf = async (stream: string) => (await jsm.streams.info(stream)).config.num_replicas;

  beforeAll(async () => {
    [cluster, engine] = await Promise.all([startNatsCluster(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-nats-cluster-'));
    repo = join(dir, 'repo');
    nc = await connectNats({ servers: [...cluster.urls], name: 'e2e-nats-cluster' });
    jsm = await jetstreamManager(nc, { timeout: 15_000 });
    // Every snapshot kept: with the default retention a backup 3 s later forgot the one the
    // restore test had picked, before a slow machine's restore reached it (SNAPSHOT_NOT_FOUND).
    await createScheduledVolumes(engine.docker, engine.image, VOLUMES, 2, {
      'volback.retention.keep-last': '10000',
    });
    await start('gateway', 'gateway', { VOLBACK_REPOSITORY: repo, VOLBACK_PASSWORD: PASSWORD });
    await start('agent', 'agent', {
      DOCKER_HOST: engine.dockerHost,
      VOLBACK_AGENT_STATE_DIR: join(dir, 'agent'),
      VOLBACK_HELPER_IMAGE: engine.image,
      VOLBACK_COMMAND_ACK_WAIT_SECONDS: '5',
    });
    catalog = await startCatalogService('catalog', clusterEnv(), join(dir, 'catalog'), dir);
    services.add(catalog);
    for (const id of ['scheduler-a', 'scheduler-b'])
      schedulers.push(await start('scheduler', id, { ...FAST_SCHEDULER_ENV, VOLBACK_SCHEDULER_ID: id }));
  }, 240_000);

  afterAll(async () => {
    console.log(`nats-cluster e2e figures: ${JSON.stringify(figures)}`);
    await stopTestStack({ services, nc, engine, dir });
    await cluster?.destroy(Boolean(process.env['VOLBACK_E2E_KEEP']));
  });

  it('every service made the streams and the leader bucket R3', async () => {
    for (const stream of [STREAMS.events.name, STREAMS.commands.name, `KV_${SCHEDULER_LEADER_BUCKET}`])
      expect(await replicasOf(stream), stream).toBe(3);
    await backupsComplete('before any fault', '', 1);
  }, 180_000);

  it('kill -9 of the node leading the event stream: backups go on, a standby scheduler takes over', async () => {
    const leaderName = (await jsm.streams.info(STREAMS.events.name)).cluster?.leader;
    const victim = Math.max(0, ['n1', 'n2', 'n3'].indexOf(leaderName ?? 'n1'));
    const killedAt = new Date().toISOString();
    const started = Date.now();
    await cluster.kill(victim);
    figures['killedNode'] = `n${victim + 1} (events stream leader: ${leaderName})`;
    await waitFor(
      'a new leader of the event stream',
      async () => {
        const leader = (await jsm.streams.info(STREAMS.events.name)).cluster?.leader;
        return leader && leader !== leaderName ? leader : undefined;
      },
      30_000,
    );
    figures['streamLeaderElectedMs'] = Date.now() - started;
    await backupsComplete('with a node down', killedAt, PER_PHASE);
    figures['backupsWithNodeDownMs'] = Date.now() - started;

    // The leading scheduler killed too while the node is down: the other one leads.
    const leading = await waitFor('a leading scheduler', async () => {
      for (const s of schedulers) if (await isLeader(s)) return s;
      return undefined;
    });
    const standby = schedulers.find((s) => s !== leading)!;
    const schedulerKilledAt = Date.now();
    await leading.kill();
    services.delete(leading);
    await waitUntil('the standby scheduler to lead', () => isLeader(standby), 20_000);
    figures['schedulerTakeoverMs'] = Date.now() - schedulerKilledAt;
    await backupsComplete('under the standby scheduler', new Date().toISOString(), 1);
    schedulers.splice(schedulers.indexOf(leading), 1);
    schedulers.push(
      await start('scheduler', 'scheduler-c', { ...FAST_SCHEDULER_ENV, VOLBACK_SCHEDULER_ID: 'scheduler-c' }),
    );

    const restartedAt = Date.now();
    await cluster.restart(victim);
    figures['killedNodeBackHealthyMs'] = Date.now() - restartedAt;
  }, 420_000);

  it('a rolling restart of all three nodes, each back and current before the next', async () => {
    const started = Date.now();
    const since = new Date().toISOString();
    for (const index of [0, 1, 2]) {
      await cluster.stop(index);
      await cluster.restart(index);
    }
    figures['rollingRestartMs'] = Date.now() - started;
    await backupsComplete('after the rolling restart', since, PER_PHASE);
    for (const stream of [STREAMS.events.name, STREAMS.commands.name, `KV_${SCHEDULER_LEADER_BUCKET}`])
      expect(await replicasOf(stream), stream).toBe(3);
  }, 420_000);

  it('a restore through the catalog on the cluster: its grant bucket at R3, the data back', async () => {
    const hostId = (await readFile(join(dir, 'agent', 'host-id'), 'utf8')).trim();
    const { events } = await storedEvents(nc);
    const last = [...backupsOf(events).values()]
      .reverse()
      .find((b) => b.request.volumeName === VOLUMES[0] && b.outcome === COMPLETED)!;
    const completed = events.find(
      (e) => e.type === COMPLETED && (e.data as { backupId: string }).backupId === last.request.backupId,
    )!;
    const snapshotId = (completed.data as { snapshotId: string }).snapshotId;
    // The catalog projects the event log a moment after the stream has the event: a snapshot it
    // does not know yet is a 404 that changes nothing, so the request is sent again until it knows.
    const res = await waitFor(
      'the catalog to know the snapshot',
      async () => {
        const answer = await fetch(`${catalog.url}/v1/restores`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({
            snapshotId,
            hostId,
            target: { kind: 'new-volume', volumeName: 'restored' },
          }),
        });
        return answer.status === 404 ? undefined : answer;
      },
      30_000,
    );
    expect(res.status, await res.clone().text()).toBe(202);
    const { restoreId } = (await res.json()) as { restoreId: string };
    const outcome = await waitFor(
      'the restore to end',
      async () =>
        (await storedEvents(nc)).events.find(
          (e) =>
            (e.data as { restoreId?: string }).restoreId === restoreId &&
            /restore\.(completed|failed)/.test(e.type),
        ),
      120_000,
    );
    expect(outcome.type, JSON.stringify(outcome.data)).toBe('io.volback.restore.completed.v1');
    expect(await replicasOf(`KV_${GRANTS_BUCKET}`)).toBe(3);
    expect(await runInVolume(engine.docker, engine.image, 'restored', 'cat /v/name')).toBe(`${VOLUMES[0]}\n`);
  }, 180_000);

  it('the log and the catalog agree: every backup ended or was retried to completion, none doubled', async () => {
    // Every failure so far made good (a retry, or a newer slot, made a snapshot), then no
    // scheduler asks for more.
    await failuresMadeGood(nc);
    for (const s of schedulers) {
      await s.stop(10_000);
      services.delete(s);
    }
    Object.assign(figures, await checkLogAndCatalog(nc, catalog));

    const check = await runToEnd(
      resolveBinary(RESTIC),
      ['-r', repo, '--no-cache', '--no-lock', 'check', '--read-data'],
      { ...process.env, RESTIC_PASSWORD: PASSWORD },
    );
    expect(check.code, check.output).toBe(0);
  }, 420_000);
});
