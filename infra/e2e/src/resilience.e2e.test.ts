import { execFile } from 'node:child_process';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { BackupVolume, RestoreSnapshot } from '@volback/contracts';
import { connectNats, type NatsConnection } from '@volback/messaging';
import { startDockerEngine, startNatsServer, type DockerEngine, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EventLog,
  progressReached,
  stopTestStack,
  sendCommand,
  startService,
  type ServiceProcess,
} from './stack.ts';
import { LIST_TREE_SCRIPT, runInVolume } from './volume-fixture.ts';

const run = promisify(execFile);
const PASSWORD = 'e2e-resilience-password';
/** Big enough that a backup is still running when a test kills something. */
const BIG_MIB = 320;

describe('backups survive dying gateways and agents; quiesced containers always run again', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  let repo: string;
  let events: EventLog;
  const services = new Set<ServiceProcess>();

  const gatewayEnv = () => ({
    VOLBACK_NATS_URL: nats.url,
    VOLBACK_REPOSITORY: repo,
    VOLBACK_PASSWORD: PASSWORD,
  });
  const agentEnv = (state: string, dockerHost: string, image: string) => ({
    VOLBACK_NATS_URL: nats.url,
    DOCKER_HOST: dockerHost,
    VOLBACK_AGENT_STATE_DIR: join(dir, state),
    VOLBACK_HELPER_IMAGE: image,
    VOLBACK_COMMAND_ACK_WAIT_SECONDS: '5',
    VOLBACK_DATA_TIMEOUT_SECONDS: '3',
  });
  async function start(kind: 'agent' | 'gateway', name: string, env: Record<string, string>) {
    const service = await startService(kind, name, env, dir);
    services.add(service);
    return service;
  }
  async function hostIdOf(stateDir: string): Promise<string> {
    const { readFile } = await import('node:fs/promises');
    return (await readFile(join(dir, stateDir, 'host-id'), 'utf8')).trim();
  }
  /** Resolves once a backup has read `bytes` of its volume. */
  const progressed = (hostId: string, workId: string, bytes: number) =>
    progressReached(nc, hostId, workId, bytes);
  /** Rewrites the big file (new chunks to send), starts a backup of it, and resolves once it has read `bytes`. */
  async function backupNewDataUntil(backupId: string, hostId: string, bytes: number): Promise<void> {
    await runInVolume(
      engine.docker,
      engine.image,
      'big',
      `dd if=/dev/urandom of=/v/big.bin bs=1048576 count=${BIG_MIB} 2>/dev/null`,
    );
    const halfway = progressed(hostId, backupId, bytes);
    await sendCommand(nc, BackupVolume, { backupId, hostId, volumeName: 'big', trigger: 'manual' });
    await halfway;
  }
  async function state(container: string): Promise<{ Running: boolean; Paused: boolean; StartedAt: string }> {
    return (await engine.docker.getContainer(container).inspect()).State;
  }

  beforeAll(async () => {
    [nats, engine] = await Promise.all([startNatsServer(), startDockerEngine()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-resilience-'));
    repo = join(dir, 'repo');
    nc = await connectNats({ servers: [nats.url], name: 'e2e-resilience' });
    events = new EventLog(nc);
    await engine.docker.createVolume({ Name: 'big' });
    await runInVolume(
      engine.docker,
      engine.image,
      'big',
      `dd if=/dev/urandom of=/v/big.bin bs=1048576 count=${BIG_MIB} 2>/dev/null && echo small > /v/small.txt`,
    );
    // A running service that asks to be stopped while its volume is backed up.
    const db = await engine.docker.createContainer({
      name: 'db',
      Image: engine.image,
      Cmd: ['sleep', '3600'],
      Labels: { 'volback.consistency': 'stop', 'volback.stop.timeout': '1' },
      HostConfig: { NetworkMode: 'none', Binds: ['big:/data'] },
    });
    await db.start();
  }, 180_000);

  afterAll(() => stopTestStack({ events, services, nc, engine, nats, dir }));

  it('a container labelled "stop" is stopped during the backup and running after', async () => {
    await start('gateway', 'gateway-a', gatewayEnv());
    await start('agent', 'agent-a', agentEnv('agent-a', engine.dockerHost, engine.image));
    const hostId = await hostIdOf('agent-a');
    const before = await state('db');
    await sendCommand(nc, BackupVolume, {
      backupId: 'stop-ok',
      hostId,
      volumeName: 'big',
      trigger: 'manual',
    });
    const startedEvent = await events.waitFor(
      'backup started',
      (e) =>
        e.type === 'io.volback.backup.started.v1' && (e.data as { backupId: string }).backupId === 'stop-ok',
    );
    expect((startedEvent.data as { quiescedContainers: string[] }).quiescedContainers).toEqual(['db']);
    expect((await state('db')).Running).toBe(false);
    const outcome = await events.outcome('stop-ok');
    expect(outcome.type, JSON.stringify(outcome.data)).toBe('io.volback.backup.completed.v1');
    const after = await state('db');
    expect(after.Running).toBe(true);
    expect(after.StartedAt).not.toBe(before.StartedAt);
  }, 180_000);

  it('two gateways: one killed mid-backup, the backup still completes and restic checks the repository', async () => {
    const second = await start('gateway', 'gateway-b', gatewayEnv());
    const hostId = await hostIdOf('agent-a');
    // New data, so the backup has chunks to send while a gateway dies.
    await backupNewDataUntil('two-gateways', hostId, 60 * 1024 * 1024);
    await second.kill();
    services.delete(second);
    const outcome = await events.outcome('two-gateways', 180_000);
    expect(outcome.type, JSON.stringify(outcome.data)).toBe('io.volback.backup.completed.v1');
    expect((await state('db')).Running).toBe(true);

    const snapshotId = (outcome.data as { snapshotId: string }).snapshotId;
    await sendCommand(nc, RestoreSnapshot, {
      restoreId: 'two-gateways-restore',
      hostId,
      snapshotId,
      target: { kind: 'new-volume', volumeName: 'big-restored' },
    });
    const restored = await events.outcome('two-gateways-restore', 180_000);
    expect(restored.type, JSON.stringify(restored.data)).toBe('io.volback.restore.completed.v1');
    const original = await runInVolume(engine.docker, engine.image, 'big', LIST_TREE_SCRIPT);
    expect(await runInVolume(engine.docker, engine.image, 'big-restored', LIST_TREE_SCRIPT)).toBe(original);
    await run('restic', ['-r', repo, '--no-cache', '--no-lock', 'check', '--read-data'], {
      env: { ...process.env, RESTIC_PASSWORD: PASSWORD },
    });
  }, 300_000);

  it('the only gateway dies mid-backup: the backup fails with a reason and the container runs again', async () => {
    const gateways = [...services].filter((s) => s.name.startsWith('gateway'));
    const hostId = await hostIdOf('agent-a');
    await backupNewDataUntil('gateway-gone', hostId, 40 * 1024 * 1024);
    for (const gateway of gateways) {
      await gateway.kill();
      services.delete(gateway);
    }
    const outcome = await events.outcome('gateway-gone', 120_000);
    expect(outcome.type).toBe('io.volback.backup.failed.v1');
    // No gateway left: a request in flight at the kill times out and is tried again, and every
    // try after the kill finds no responders, so the backup ends on that.
    const { code, reason } = outcome.data as { code: string; reason: string };
    expect(code, reason).toBe('NO_GATEWAY');
    expect((await state('db')).Running).toBe(true);
    await start('gateway', 'gateway-c', gatewayEnv());
  }, 180_000);

  it('the agent killed mid-backup: the container runs again after restart and the command ends completed', async () => {
    const agent = [...services].find((s) => s.name === 'agent-a')!;
    const hostId = await hostIdOf('agent-a');
    await backupNewDataUntil('agent-killed', hostId, 40 * 1024 * 1024);
    await agent.kill();
    services.delete(agent);
    expect((await state('db')).Running).toBe(false); // left stopped by the dead agent

    await start('agent', 'agent-a-restarted', agentEnv('agent-a', engine.dockerHost, engine.image));
    const outcome = await events.outcome('agent-killed', 180_000);
    expect(outcome.type, JSON.stringify(outcome.data)).toBe('io.volback.backup.completed.v1');
    expect((await state('db')).Running).toBe(true);
    const started = events.of('agent-killed').filter((e) => e.type === 'io.volback.backup.started.v1');
    expect(started.length).toBe(2);
  }, 240_000);

  it('two hosts with a volume of the same name: both backed up, kept apart by host', async () => {
    const other = await startDockerEngine();
    try {
      await start('agent', 'agent-b', agentEnv('agent-b', other.dockerHost, other.image));
      const hostA = await hostIdOf('agent-a');
      const hostB = await hostIdOf('agent-b');
      for (const [docker, image, text] of [
        [engine.docker, engine.image, 'from host A'],
        [other.docker, other.image, 'from host B'],
      ] as const) {
        await docker.createVolume({ Name: 'same-name' });
        await runInVolume(docker, image, 'same-name', `echo '${text}' > /v/whoami.txt`);
      }
      await sendCommand(nc, BackupVolume, {
        backupId: 'same-a',
        hostId: hostA,
        volumeName: 'same-name',
        trigger: 'manual',
      });
      await sendCommand(nc, BackupVolume, {
        backupId: 'same-b',
        hostId: hostB,
        volumeName: 'same-name',
        trigger: 'manual',
      });
      const [a, b] = await Promise.all([events.outcome('same-a'), events.outcome('same-b')]);
      expect(a.type).toBe('io.volback.backup.completed.v1');
      expect(b.type).toBe('io.volback.backup.completed.v1');
      const snapA = (a.data as { snapshotId: string }).snapshotId;
      const snapB = (b.data as { snapshotId: string }).snapshotId;
      expect(snapA).not.toBe(snapB);

      const { stdout } = await run(
        'restic',
        ['-r', repo, '--no-cache', '--no-lock', 'snapshots', '--json', '--path', '/volumes/same-name'],
        {
          env: { ...process.env, RESTIC_PASSWORD: PASSWORD },
        },
      );
      // Both hosts run on this machine, so both have its name; the host-id tag tells them apart.
      const hosts = (JSON.parse(stdout) as Array<{ tags: string[] }>)
        .map((s) => s.tags.find((t) => t.startsWith('host-id:')))
        .sort();
      expect(hosts).toEqual([`host-id:${hostA}`, `host-id:${hostB}`].sort());

      // Host B's snapshot restored on host B gives host B's data back.
      await sendCommand(nc, RestoreSnapshot, {
        restoreId: 'same-b-restore',
        hostId: hostB,
        snapshotId: snapB,
        target: { kind: 'new-volume', volumeName: 'same-name-restored' },
      });
      expect((await events.outcome('same-b-restore')).type).toBe('io.volback.restore.completed.v1');
      expect(await runInVolume(other.docker, other.image, 'same-name-restored', 'cat /v/whoami.txt')).toBe(
        'from host B\n',
      );
    } finally {
      const agentB = [...services].find((s) => s.name === 'agent-b');
      if (agentB) {
        await agentB.stop(5_000);
        services.delete(agentB);
      }
      await other.stop();
    }
  }, 240_000);
});
