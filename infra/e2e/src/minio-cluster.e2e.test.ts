// The repository on a distributed MinIO (four server processes, one erasure set of 8 drives)
// through a real gateway: one MinIO server killed (kill -9) during a backup, another during a
// restore; both complete, and restic checks every byte afterwards.
// `npm run test:slow` runs it with a bigger volume (VOLBACK_SLOW=1).
import { mkdtemp, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { BackupVolume, RestoreSnapshot } from '@volback/contracts';
import { connectNats, type NatsConnection } from '@volback/messaging';
import {
  resolveBinary,
  RESTIC,
  runToEnd,
  startDockerEngine,
  startMinioCluster,
  startNatsServer,
  type DockerEngine,
  type MinioCluster,
  type NatsServer,
} from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  EventLog,
  progressReached,
  sendCommand,
  startService,
  stopTestStack,
  type ServiceProcess,
} from './stack.ts';
import { LIST_TREE_SCRIPT, runInVolume } from './volume-fixture.ts';

const SLOW = process.env['VOLBACK_SLOW'] === '1';
const MIB = SLOW ? 256 : 96;
const PASSWORD = 'e2e-minio-cluster-password';
/** The gateway's S3 endpoint is node 1; the nodes killed are others (a load balancer's job, not volback's). */
const GATEWAY_NODE = 0;

describe('a distributed MinIO losing a server during a backup and during a restore', () => {
  let nats: NatsServer;
  let engine: DockerEngine;
  let minio: MinioCluster;
  let nc: NatsConnection;
  let dir: string;
  let events: EventLog;
  let hostId: string;
  const services = new Set<ServiceProcess>();
  const figures: Record<string, number> = {};
  const location = () => `s3:${minio.urls[GATEWAY_NODE]}/volback/repo`;
  const s3Env = () => ({ AWS_ACCESS_KEY_ID: minio.accessKey, AWS_SECRET_ACCESS_KEY: minio.secretKey });

  const progressed = (workId: string, bytes: number) => progressReached(nc, hostId, workId, bytes);

  beforeAll(async () => {
    [nats, engine, minio] = await Promise.all([startNatsServer(), startDockerEngine(), startMinioCluster()]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-minio-cluster-'));
    nc = await connectNats({ servers: [nats.url], name: 'e2e-minio-cluster' });
    events = new EventLog(nc);
    await engine.docker.createVolume({ Name: 'big' });
    await runInVolume(
      engine.docker,
      engine.image,
      'big',
      `dd if=/dev/urandom of=/v/big.bin bs=1048576 count=${MIB} 2>/dev/null && mkdir /v/sub && echo small > /v/sub/small.txt`,
    );
    const gateway = await startService(
      'gateway',
      'gateway',
      {
        VOLBACK_NATS_URL: nats.url,
        VOLBACK_REPOSITORY: location(),
        VOLBACK_REPOSITORY_INIT: '1',
        VOLBACK_PASSWORD: PASSWORD,
        ...s3Env(),
      },
      dir,
    );
    services.add(gateway);
    const agent = await startService(
      'agent',
      'agent',
      {
        VOLBACK_NATS_URL: nats.url,
        DOCKER_HOST: engine.dockerHost,
        VOLBACK_AGENT_STATE_DIR: join(dir, 'agent'),
        VOLBACK_HELPER_IMAGE: engine.image,
      },
      dir,
    );
    services.add(agent);
    hostId = (await readFile(join(dir, 'agent', 'host-id'), 'utf8')).trim();
  }, 240_000);

  afterAll(async () => {
    console.log(`minio-cluster e2e figures: ${JSON.stringify(figures)}`);
    await stopTestStack({ events, services, nc, engine, nats, dir });
    await minio?.destroy(Boolean(process.env['VOLBACK_E2E_KEEP']));
  });

  let snapshotId: string;

  it('a MinIO server killed mid-backup: the backup completes', async () => {
    const halfway = progressed('minio-backup', (MIB / 4) * 1024 * 1024);
    const started = Date.now();
    await sendCommand(nc, BackupVolume, {
      backupId: 'minio-backup',
      hostId,
      volumeName: 'big',
      trigger: 'manual',
    });
    await halfway;
    await minio.kill(3);
    figures['backupKilledAtMs'] = Date.now() - started;
    const outcome = await events.outcome('minio-backup', 300_000);
    expect(outcome.type, JSON.stringify(outcome.data)).toBe('io.volback.backup.completed.v1');
    figures['backupMs'] = Date.now() - started;
    snapshotId = (outcome.data as { snapshotId: string }).snapshotId;
    const restartedAt = Date.now();
    await minio.restart(3);
    figures['minioNodeBackMs'] = Date.now() - restartedAt;
  }, 420_000);

  it('a MinIO server killed mid-restore: the restore completes with every byte', async () => {
    const halfway = progressed('minio-restore', (MIB / 10) * 1024 * 1024);
    const started = Date.now();
    await sendCommand(nc, RestoreSnapshot, {
      restoreId: 'minio-restore',
      hostId,
      snapshotId,
      target: { kind: 'new-volume', volumeName: 'big-restored' },
    });
    await halfway;
    await minio.kill(2);
    figures['restoreKilledAtMs'] = Date.now() - started;
    const outcome = await events.outcome('minio-restore', 300_000);
    expect(outcome.type, JSON.stringify(outcome.data)).toBe('io.volback.restore.completed.v1');
    figures['restoreMs'] = Date.now() - started;
    const original = await runInVolume(engine.docker, engine.image, 'big', LIST_TREE_SCRIPT);
    expect(await runInVolume(engine.docker, engine.image, 'big-restored', LIST_TREE_SCRIPT)).toBe(original);
    await minio.restart(2);
  }, 420_000);

  it('restic check --read-data passes on the repository afterwards', async () => {
    const started = Date.now();
    const check = await runToEnd(
      resolveBinary(RESTIC),
      ['-r', location(), '--no-cache', '--no-lock', 'check', '--read-data'],
      { ...process.env, ...s3Env(), RESTIC_PASSWORD: PASSWORD },
    );
    expect(check.code, check.output).toBe(0);
    figures['resticCheckMs'] = Date.now() - started;
  }, 300_000);
});
