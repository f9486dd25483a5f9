import { execFile } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { promisify } from 'node:util';
import {
  freePort,
  resolveBinary,
  RESTIC,
  startDockerEngine,
  waitUntil,
  type DockerEngine,
} from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  agentLoopbackOverride,
  centralLoopbackOverride,
  Compose,
  copyImage,
  docker,
  importStandIns,
  removeStaged,
  secret,
  stageProject,
  writeEnvFile,
  type CentralPorts,
} from './deployment.ts';

const run = promisify(execFile);
const IMAGE = 'volback:local';
const CENTRAL = ['-f', 'docker-compose.yml', '-f', 'loopback.yml'];
const AGENT_ONLY = ['-f', 'compose.yml', '-f', 'loopback.yml'];

interface Volume {
  hostId: string;
  volumeName: string;
  protection: { lastSnapshotId: string | null; lastBackup: { backupId: string } | null };
}

/** Another compose project with a volume labelled to be backed up every 20 seconds. */
function appProject(name: string): string {
  return `name: ${name}
services:
  writer:
    image: volback-test/busybox:latest
    network_mode: none
    command: ['sh', '-c', 'cd /data && dd if=/dev/urandom of=random.bin bs=1024 count=3000 2>/dev/null && mkdir -p sub/deeper && echo hello from ${name} > sub/deeper/hello.txt && : > empty && exec sleep 86400']
    volumes: [data:/data]
volumes:
  data:
    labels:
      volback.schedule: '*/20 * * * * *'
`;
}

/** md5 of every file of two volumes, side by side (busybox, no network). */
async function digests(engine: DockerEngine, volumes: [string, string]): Promise<[string, string]> {
  const script =
    'for d in /a /b; do (cd $d && find . -type f | LC_ALL=C sort | xargs md5sum); echo ===; done';
  const out = await docker(engine, [
    'run',
    '--rm',
    '--network',
    'none',
    '-v',
    `${volumes[0]}:/a:ro`,
    '-v',
    `${volumes[1]}:/b:ro`,
    engine.image,
    'sh',
    '-c',
    script,
  ]);
  const [a, b] = out.split('===\n');
  return [a!, b!];
}

/**
 * The deployment as a user runs it, on private engines: the images built from the Dockerfile,
 * `docker compose up -d --wait` of the real docker-compose.yml (plus an override that keeps
 * everything on the loopback), a second Docker host from deploy/agent/compose.yml.
 */
describe('docker compose: volback deployed from its images', () => {
  let engineA: DockerEngine;
  let engineB: DockerEngine | undefined;
  let staged: string;
  let composeA: Compose;
  let composeB: Compose | undefined;
  let ports: CentralPorts;
  const env = {
    VOLBACK_PASSWORD: secret(),
    MINIO_ROOT_USER: 'volback-admin',
    MINIO_ROOT_PASSWORD: secret(),
    VOLBACK_CATALOG_WRITE_TOKEN: secret(),
  };
  const figures: Record<string, string> = {};
  let upAt = 0;

  const catalog = async <T>(path: string): Promise<T> => {
    const response = await fetch(`http://127.0.0.1:${ports.catalog}${path}`, {
      headers: { authorization: `Bearer ${env.VOLBACK_CATALOG_WRITE_TOKEN}` },
    });
    if (!response.ok) throw new Error(`GET ${path}: ${response.status}`);
    return (await response.json()) as T;
  };
  const volumes = async () => (await catalog<{ items: Volume[] }>('/v1/volumes')).items;
  const snapshotOf = async (volumeName: string, hostId?: string) =>
    (await volumes()).find((v) => v.volumeName === volumeName && (!hostId || v.hostId === hostId))?.protection
      .lastSnapshotId ?? null;
  /** The `volback` CLI of the image, in a container on the host's network. */
  const cli = (engine: DockerEngine, args: string[]) =>
    docker(engine, [
      'run',
      '--rm',
      '--network',
      'host',
      '-e',
      `VOLBACK_CATALOG_URL=http://127.0.0.1:${ports.catalog}`,
      '-e',
      `VOLBACK_TOKEN=${env.VOLBACK_CATALOG_WRITE_TOKEN}`,
      IMAGE,
      'volback',
      ...args,
    ]);
  /** Every snapshot the catalog knows, forgotten ones too, by host and volume. */
  const history = async () => {
    const all = new Map<string, string[]>();
    for (const volume of await volumes()) {
      const page = await catalog<{ items: Array<{ snapshotId: string }> }>(
        `/v1/hosts/${volume.hostId}/volumes/${encodeURIComponent(volume.volumeName)}/snapshots?includeForgotten=true&limit=500`,
      );
      all.set(
        `${volume.hostId}/${volume.volumeName}`,
        page.items.map((s) => s.snapshotId),
      );
    }
    return all;
  };
  /** Starts the compose project `name` on `engine` and waits for a snapshot of its volume. */
  const startApp = async (compose: Compose, name: string) => {
    const app = join(staged, name);
    await mkdir(app);
    await writeFile(join(app, 'compose.yml'), appProject(name));
    await compose.run(app, ['up', '-d', '--pull', 'never']);
    await waitUntil(
      `a snapshot of ${name}_data`,
      async () => (await snapshotOf(`${name}_data`)) !== null,
      180_000,
    );
  };
  /** Restores `snapshot` with the image's CLI into `<volume>_restored` on `engine`; returns both volumes' digests. */
  const restoreAndDigest = async (engine: DockerEngine, volume: string, snapshot: string, hostId: string) => {
    const restored = JSON.parse(
      await cli(engine, [
        'restore',
        snapshot,
        '--to-volume',
        `${volume}_restored`,
        '--host',
        hostId,
        '--wait',
        '--json',
      ]),
    ) as { phase?: string };
    expect(restored.phase).toBe('Completed');
    return digests(engine, [volume, `${volume}_restored`]);
  };
  const logsOnFailure = async <T>(what: () => Promise<T>): Promise<T> => {
    try {
      return await what();
    } catch (error) {
      const logs = await composeA
        .run(staged, [...CENTRAL, 'logs', '--no-color', '--tail', '40'])
        .catch(String);
      const agentB = composeB
        ? await composeB
            .run(join(staged, 'deploy/agent'), [...AGENT_ONLY, 'logs', '--tail', '40'])
            .catch(String)
        : '';
      throw new Error(
        `${(error as Error).message}\n--- compose logs ---\n${logs}\n${agentB}`.slice(-20_000),
        {
          cause: error,
        },
      );
    }
  };

  beforeAll(async () => {
    engineA = await startDockerEngine();
    staged = await stageProject();
    composeA = await Compose.for(engineA);
    await importStandIns(engineA, [
      'debian:bookworm-slim',
      'node:24-bookworm',
      'node:24-bookworm-slim',
      'nats:2.12-alpine',
      'minio/minio:RELEASE.2025-09-07T16-13-09Z',
    ]);
    ports = {
      nats: await freePort(),
      natsHttp: await freePort(),
      minio: await freePort(),
      minioConsole: await freePort(),
      catalog: await freePort(),
      ops: {
        gateway: await freePort(),
        scheduler: await freePort(),
        catalog: await freePort(),
        agent: await freePort(),
      },
    };
    await writeFile(
      join(staged, 'loopback.yml'),
      centralLoopbackOverride(ports, env.MINIO_ROOT_USER, env.MINIO_ROOT_PASSWORD),
    );
    await writeEnvFile(staged, staged, {
      ...env,
      DOCKER_SOCKET: engineA.socketPath,
      DOCKER_VOLUMES_DIR: join(engineA.dataRoot, 'volumes'),
      // The first backup of the labelled volume comes from its schedule, not from its discovery.
      VOLBACK_SCHEDULER_FIRST_BACKUP_DELAY_SECONDS: '3600',
    });

    let started = Date.now();
    await composeA.run(staged, [...CENTRAL, 'build']);
    figures['cold build'] = `${((Date.now() - started) / 1000).toFixed(1)} s`;
    started = Date.now();
    await composeA.run(staged, [...CENTRAL, 'build']);
    figures['warm build'] = `${((Date.now() - started) / 1000).toFixed(1)} s`;
    const size = Number(await docker(engineA, ['image', 'inspect', '-f', '{{.Size}}', IMAGE]));
    figures['image size'] = `${(size / 1e6).toFixed(1)} MB (${IMAGE})`;
  }, 1_200_000);

  afterAll(async () => {
    console.log(
      `deployment figures:\n${Object.entries(figures)
        .map(([k, v]) => `  ${k}: ${v}`)
        .join('\n')}`,
    );
    await composeB?.run(join(staged, 'deploy/agent'), [...AGENT_ONLY, 'down']).catch(() => undefined);
    await composeA?.run(staged, [...CENTRAL, 'down']).catch(() => undefined);
    await engineB?.stop();
    await engineA?.stop();
    await removeStaged(staged);
  }, 180_000);

  it('builds one image with OCI labels that runs as node', async () => {
    const labels = JSON.parse(
      await docker(engineA, ['image', 'inspect', '-f', '{{json .Config.Labels}}', IMAGE]),
    ) as Record<string, string>;
    expect(labels['org.opencontainers.image.version']).toBe('0.1.0');
    expect(labels['org.opencontainers.image.licenses']).toBe('Apache-2.0');
    expect((await docker(engineA, ['image', 'inspect', '-f', '{{.Config.User}}', IMAGE])).trim()).toBe(
      'node',
    );
    expect(await docker(engineA, ['run', '--rm', '--network', 'none', IMAGE, 'volback', '--help'])).toContain(
      'Usage: volback',
    );
  });

  it('comes up healthy and backs up a labelled volume of another compose project on its schedule', async () => {
    await logsOnFailure(async () => {
      upAt = Date.now();
      await composeA.run(staged, [...CENTRAL, 'up', '-d', '--wait', '--pull', 'never']);
      figures['up --wait'] = `${((Date.now() - upAt) / 1000).toFixed(1)} s`;
      const states = await composeA.run(staged, [...CENTRAL, 'ps', '--format', '{{.Service}} {{.Health}}']);
      for (const service of ['nats', 'minio', 'storage-gateway', 'scheduler', 'catalog', 'agent']) {
        expect(states).toContain(`${service} healthy`);
      }

      await startApp(composeA, 'app');
      figures['up to first snapshot'] = `${((Date.now() - upAt) / 1000).toFixed(1)} s`;
      const volume = (await volumes()).find((v) => v.volumeName === 'app_data')!;
      // A schedule slot's id ends in the slot's time (a first backup's says `discovered`).
      expect(volume.protection.lastBackup?.backupId).toMatch(/-app_data-\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
      // Read in place, through the engine's volumes directory mounted read-only into the agent.
      const backup = await catalog<{ method: string | null }>(
        `/v1/backups/${encodeURIComponent(volume.protection.lastBackup!.backupId)}`,
      );
      expect(backup.method).toBe('direct');

      // Restore through the CLI of the image, into a new volume, and compare the bytes.
      const [source, copy] = await restoreAndDigest(
        engineA,
        'app_data',
        volume.protection.lastSnapshotId!,
        volume.hostId,
      );
      expect(source).toContain('./random.bin');
      expect(source).toContain('./sub/deeper/hello.txt');
      expect(copy).toBe(source);
    });
  }, 600_000);

  it('adds a second Docker host with deploy/agent/compose.yml: both hosts listed, backed up and restored', async () => {
    await logsOnFailure(async () => {
      engineB = await startDockerEngine();
      composeB = await Compose.for(engineB);
      await copyImage(engineA, engineB, IMAGE);
      const agentDir = join(staged, 'deploy/agent');
      await writeFile(join(agentDir, 'loopback.yml'), agentLoopbackOverride(await freePort()));
      await writeEnvFile(staged, agentDir, {
        VOLBACK_NATS_URL: `nats://127.0.0.1:${ports.nats}`,
        DOCKER_SOCKET: engineB.socketPath,
        DOCKER_VOLUMES_DIR: join(engineB.dataRoot, 'volumes'),
        VOLBACK_HOST_NAME: 'host-b',
      });
      await composeB.run(agentDir, [...AGENT_ONLY, 'up', '-d', '--wait', '--pull', 'never']);

      await startApp(composeB, 'appb');
      const listed = await volumes();
      const hostA = listed.find((v) => v.volumeName === 'app_data')!.hostId;
      const hostB = listed.find((v) => v.volumeName === 'appb_data')!.hostId;
      expect(hostB).not.toBe(hostA);
      const hosts = (await catalog<{ items: Array<{ hostId: string }> }>('/v1/hosts')).items.map(
        (h) => h.hostId,
      );
      expect(hosts).toEqual(expect.arrayContaining([hostA, hostB]));
      expect(await snapshotOf('app_data', hostA)).not.toBeNull();

      const [source, copy] = await restoreAndDigest(
        engineB,
        'appb_data',
        (await snapshotOf('appb_data', hostB))!,
        hostB,
      );
      expect(source).toContain('hello');
      expect(copy).toBe(source);
    });
  }, 600_000);

  it('keeps a repository restic checks with --read-data, and all history across down and up', async () => {
    await logsOnFailure(async () => {
      // No new backups while restic holds its exclusive lock; sessions release theirs at commit.
      await composeA.run(staged, [...CENTRAL, 'stop', 'scheduler']);
      const restic = resolveBinary(RESTIC);
      const resticEnv = {
        PATH: process.env['PATH'],
        HOME: process.env['HOME'],
        AWS_ACCESS_KEY_ID: env.MINIO_ROOT_USER,
        AWS_SECRET_ACCESS_KEY: env.MINIO_ROOT_PASSWORD,
        RESTIC_PASSWORD: env.VOLBACK_PASSWORD,
        RESTIC_REPOSITORY: `s3:http://127.0.0.1:${ports.minio}/volback`,
      };
      let checked = '';
      await waitUntil(
        'restic check --read-data to pass',
        async () => {
          try {
            checked = (await run(restic, ['--no-cache', 'check', '--read-data'], { env: resticEnv })).stdout;
            return true;
          } catch (error) {
            const output = `${(error as { stdout?: string }).stdout}${(error as { stderr?: string }).stderr}`;
            if (/locked/.test(output)) return false; // a backup in flight still holds its lock
            throw new Error(`restic check failed:\n${output}`, { cause: error });
          }
        },
        120_000,
      ).catch((error: Error) => {
        throw (error.cause as Error | undefined) ?? error;
      });
      expect(checked).toContain('no errors were found');
      const before = await history();
      expect(before.get([...before.keys()].find((k) => k.endsWith('/app_data'))!)?.length).toBeGreaterThan(0);
      expect(before.get([...before.keys()].find((k) => k.endsWith('/appb_data'))!)?.length).toBeGreaterThan(
        0,
      );

      // SIGTERM reaches each service through the init, and each stops cleanly within its grace period.
      const stopping = Date.now();
      await composeA.run(staged, [...CENTRAL, 'stop']);
      figures['stop'] = `${((Date.now() - stopping) / 1000).toFixed(1)} s`;
      const exits = await composeA.run(staged, [
        ...CENTRAL,
        'ps',
        '-a',
        '--format',
        '{{.Service}} {{.ExitCode}}',
      ]);
      for (const service of ['storage-gateway', 'scheduler', 'catalog', 'agent'])
        expect(exits).toContain(`${service} 0`);
      await composeA.run(staged, [...CENTRAL, 'down']);
      await composeA.run(staged, [...CENTRAL, 'up', '-d', '--wait', '--pull', 'never']);

      // Every volume of both hosts and every snapshot is still there (catalog and NATS volumes).
      const after = await history();
      for (const [volume, snapshots] of before) {
        expect(after.get(volume), volume).toEqual(expect.arrayContaining(snapshots));
      }
      // Same host id (agent state volume), same event log (NATS volume): the schedule goes on.
      const last = await snapshotOf('app_data');
      await waitUntil(
        'a new scheduled snapshot after the restart',
        async () => {
          const now = await snapshotOf('app_data');
          return now !== null && now !== last;
        },
        120_000,
      );
    });
  }, 600_000);

  it('comes back on a new host from .env and the repository alone (the event log restored from its own backup)', async () => {
    await logsOnFailure(async () => {
      await composeB?.run(join(staged, 'deploy/agent'), [...AGENT_ONLY, 'down']);
      // The NATS store is a volume like any other: back it up (the default policy does so daily).
      const nats = (await volumes()).find((v) => v.volumeName === 'volback_nats-data')!;
      const before = await history();
      const backup = JSON.parse(
        await cli(engineA, ['backup', 'volback_nats-data', '--host', nats.hostId, '--wait', '--json']),
      ) as { phase?: string; snapshotId?: string };
      expect(backup.phase).toBe('Completed');

      // The host is gone: everything but the repository (kept elsewhere, here its MinIO volume).
      await composeA.run(staged, [...CENTRAL, 'down']);
      await docker(engineA, [
        'volume',
        'rm',
        'volback_nats-data',
        'volback_catalog-data',
        'volback_agent-state',
      ]);

      // README, "Restoring the whole system on a new host".
      await composeA.run(staged, [...CENTRAL, 'up', '-d', '--wait', '--pull', 'never', 'minio']);
      await docker(engineA, [
        'volume',
        'create',
        '--label',
        'com.docker.compose.project=volback',
        '--label',
        'com.docker.compose.volume=nats-data',
        'volback_nats-data',
      ]);
      const repo = [
        '--rm',
        '--network',
        'host',
        '-e',
        `VOLBACK_PASSWORD=${env.VOLBACK_PASSWORD}`,
        '-e',
        `AWS_ACCESS_KEY_ID=${env.MINIO_ROOT_USER}`,
        '-e',
        `AWS_SECRET_ACCESS_KEY=${env.MINIO_ROOT_PASSWORD}`,
      ];
      const location = ['--repo', `s3:http://127.0.0.1:${ports.minio}/volback`];
      const snapshots = JSON.parse(
        await docker(engineA, ['run', ...repo, IMAGE, 'volback', 'repo', 'snapshots', ...location, '--json']),
      ) as Array<{ id: string; time: string; paths: string[] }>;
      const latest = snapshots
        .filter((s) => s.paths.includes('/volumes/volback_nats-data'))
        .sort((a, b) => a.time.localeCompare(b.time))
        .at(-1)!;
      expect(latest.id).toBe(backup.snapshotId);
      await docker(engineA, [
        'run',
        ...repo,
        '--user',
        'root',
        '-v',
        'volback_nats-data:/restore',
        IMAGE,
        'volback',
        'repo',
        'restore',
        latest.id,
        '--target',
        '/restore',
        '--path',
        '/volumes/volback_nats-data',
        ...location,
      ]);
      await composeA.run(staged, [...CENTRAL, 'up', '-d', '--wait', '--pull', 'never']);

      // The catalog replays the restored log: every host, volume and snapshot recorded before.
      await waitUntil(
        'the catalog to replay the restored event log',
        async () => {
          const after = await history().catch(() => new Map<string, string[]>());
          return [...before].every(([volume, ids]) => ids.every((id) => after.get(volume)?.includes(id)));
        },
        120_000,
      );
    });
  }, 600_000);
});
