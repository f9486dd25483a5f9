import { execFile } from 'node:child_process';
import { chmod, copyFile, mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { get as httpsGet } from 'node:https';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connect } from '@nats-io/transport-node';
import {
  freePort,
  resolveBinary,
  RESTIC,
  serviceEnv,
  serviceNodeFlags,
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
  const figures: Record<string, string> = {};
  let upAt = 0;
  /** The central host's `.env` values. */
  let centralEnv: Record<string, string> = {};
  /** The NATS configuration as a version before store-blobs and load-trees wrote it. */
  const withoutNewerOperations = (config: string) =>
    config
      .split('\n')
      .filter((line) => !/store-blobs|load-trees/.test(line))
      .join('\n');
  /** A file of the set-up the `init` service wrote into ./secrets (the test runs as root). */
  const secretFile = (file: string) => join(staged, 'secrets', file);
  const secretOf = async (file: string) => (await readFile(secretFile(file), 'utf8')).trim();

  const catalog = async <T>(path: string): Promise<T> => {
    const response = await fetch(`http://127.0.0.1:${ports.catalog}${path}`, {
      headers: { authorization: `Bearer ${await secretOf('catalog/admin.token')}` },
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
      // The token as a file (README's alias): root, as the file is the set-up's (0600, root).
      '--user',
      'root',
      '-v',
      `${secretFile('catalog/admin.token')}:/token:ro`,
      '-e',
      'VOLBACK_TOKEN_FILE=/token',
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
    const allocatePorts = async (): Promise<CentralPorts> => ({
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
    });
    ports = await allocatePorts();
    await writeFile(join(staged, 'loopback.yml'), centralLoopbackOverride(ports));
    // No secret in .env: the init service writes them into ./secrets.
    centralEnv = {
      DOCKER_SOCKET: engineA.socketPath,
      DOCKER_VOLUMES_DIR: join(engineA.dataRoot, 'volumes'),
      // The first backup of the labelled volume comes from its schedule, not from its discovery.
      VOLBACK_SCHEDULER_FIRST_BACKUP_DELAY_SECONDS: '3600',
    };
    await writeEnvFile(staged, staged, centralEnv);

    let started = Date.now();
    await composeA.run(staged, [...CENTRAL, 'build']);
    figures['cold build'] = `${((Date.now() - started) / 1000).toFixed(1)} s`;
    started = Date.now();
    await composeA.run(staged, [...CENTRAL, 'build']);
    figures['warm build'] = `${((Date.now() - started) / 1000).toFixed(1)} s`;
    const size = Number(await docker(engineA, ['image', 'inspect', '-f', '{{.Size}}', IMAGE]));
    figures['image size'] = `${(size / 1e6).toFixed(1)} MB (${IMAGE})`;
    // Free ports again, just before they are used: a port free before the builds may be taken by
    // then on a shared machine.
    ports = await allocatePorts();
    await writeFile(join(staged, 'loopback.yml'), centralLoopbackOverride(ports));
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
      // Each service's Node runs with the services' flags and environment (the image's entry point
      // reads the files every launcher reads).
      const flags = serviceNodeFlags().join(' ');
      for (const service of ['storage-gateway', 'scheduler', 'catalog', 'agent']) {
        const started = await composeA.run(staged, [
          ...CENTRAL,
          'exec',
          '-T',
          service,
          'sh',
          '-c',
          'for d in /proc/[0-9]*; do c=$(tr "\\0" " " < $d/cmdline); case "$c" in node\\ *) echo "$c"; tr "\\0" "\\n" < $d/environ;; esac; done',
        ]);
        expect(started, service).toContain(`node ${flags} /app/services/${service}/src/main.ts`);
        for (const [name, value] of Object.entries(serviceEnv()))
          expect(started, service).toContain(`\n${name}=${value}\n`);
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

  it('refuses clients without an identity on NATS and plain HTTP on MinIO; each service holds only its own files, no secret in its environment', async () => {
    await logsOnFailure(async () => {
      const ca = await readFile(secretFile('ca/ca.crt'), 'utf8');
      const nats = `127.0.0.1:${ports.nats}`;
      // TLS with the right CA, but no nkey: refused by the server.
      await expect(
        connect({
          servers: nats,
          tls: { caFile: secretFile('ca/ca.crt') },
          reconnect: false,
          timeout: 5_000,
        }),
      ).rejects.toThrow(/authorization/i);
      // Without the CA the client does not trust the server (and the server speaks only TLS).
      await expect(connect({ servers: nats, reconnect: false, timeout: 5_000 })).rejects.toThrow();

      // MinIO: HTTPS only, with a certificate of the set-up's CA.
      const plain = await fetch(`http://127.0.0.1:${ports.minio}/minio/health/live`).then(
        (r) => r.status,
        () => 'refused',
      );
      expect(plain).not.toBe(200);
      const https = (options: { ca?: string }) =>
        new Promise<number>((resolve, reject) =>
          httpsGet(`https://127.0.0.1:${ports.minio}/minio/health/live`, options, (res) => {
            res.resume();
            resolve(res.statusCode ?? 0);
          }).once('error', reject),
        );
      expect(await https({ ca })).toBe(200);
      await expect(https({})).rejects.toThrow(/certificate/);

      // Each service's folder: its own files, 0600, owned by the user it runs as.
      const given: Record<string, [string[], number]> = {
        'storage-gateway': [['ca.crt', 'nats.nk', 'repository-password', 's3-secret-key'], 1000],
        scheduler: [['ca.crt', 'nats.nk'], 1000],
        catalog: [['ca.crt', 'nats.nk', 'tokens.json'], 1000],
        agent: [['agent.json', 'ca.crt', 'nats.nk'], 0],
      };
      for (const [service, [files, uid]] of Object.entries(given)) {
        const target = service === 'agent' ? '/etc/volback' : '/secrets';
        const listed = await composeA.run(staged, [...CENTRAL, 'exec', '-T', service, 'ls', '-A', target]);
        expect(listed.split('\n').filter(Boolean).sort(), service).toEqual(files);
        for (const file of files) {
          const info = await stat(secretFile(`mounts/${service}/${file}`));
          expect(info.mode & 0o777, `${service}/${file}`).toBe(0o600);
          expect(info.uid, `${service}/${file}`).toBe(uid);
        }
      }

      // No secret in any container's environment or command line.
      const secrets = [
        await secretOf('repository-password'),
        await secretOf('minio-root-password'),
        await secretOf('catalog/admin.token'),
        await secretOf('catalog/read.token'),
        ...(await Promise.all(
          (await readdir(secretFile('identities')))
            .filter((f) => f.endsWith('.nk'))
            .map((f) => secretOf(`identities/${f}`)),
        )),
      ];
      const ids = (await composeA.run(staged, [...CENTRAL, 'ps', '-a', '-q'])).split('\n').filter(Boolean);
      expect(ids.length).toBeGreaterThanOrEqual(6);
      for (const id of ids) {
        const config = await docker(engineA, ['inspect', '-f', '{{json .Config}}', id]);
        for (const value of secrets) expect(config.includes(value), `a secret in ${id}'s config`).toBe(false);
      }
    });
  }, 300_000);

  it('adds a second Docker host with deploy/agent/compose.yml: both hosts listed, backed up and restored', async () => {
    await logsOnFailure(async () => {
      engineB = await startDockerEngine();
      composeB = await Compose.for(engineB);
      await copyImage(engineA, engineB, IMAGE);
      const agentDir = join(staged, 'deploy/agent');
      // README, "More Docker hosts": the host's identity on the central host, NATS reloaded, its
      // three files copied to the host (0600).
      await composeA.run(staged, [
        ...CENTRAL,
        'run',
        '--rm',
        '-T',
        'init',
        'volback',
        'init',
        'agent',
        'host-b',
      ]);
      await composeA.run(staged, [...CENTRAL, 'kill', '-s', 'HUP', 'nats']);
      const identities = await readdir(secretFile('identities'));
      const identityB = [];
      for (const file of identities.filter((f) => /^agent-.*\.json$/.test(f))) {
        if (JSON.parse(await secretOf(`identities/${file}`)).name === 'host-b') identityB.push(file);
      }
      expect(identityB).toHaveLength(1);
      const copied = join(agentDir, 'secrets');
      await mkdir(copied, { mode: 0o700 });
      for (const [from, to] of [
        [`identities/${identityB[0]!.replace(/\.json$/, '.nk')}`, 'nats.nk'],
        [`identities/${identityB[0]}`, 'agent.json'],
        ['ca/ca.crt', 'ca.crt'],
      ] as const) {
        await copyFile(secretFile(from), join(copied, to));
        await chmod(join(copied, to), 0o600);
      }
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
      expect(hostB).toBe(JSON.parse(await readFile(join(copied, 'agent.json'), 'utf8')).hostId);
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
        AWS_ACCESS_KEY_ID: 'volback',
        AWS_SECRET_ACCESS_KEY: await secretOf('minio-root-password'),
        RESTIC_PASSWORD_FILE: secretFile('repository-password'),
        RESTIC_REPOSITORY: `s3:https://127.0.0.1:${ports.minio}/volback`,
      };
      let checked = '';
      await waitUntil(
        'restic check --read-data to pass',
        async () => {
          try {
            checked = (
              await run(restic, ['--no-cache', '--cacert', secretFile('ca/ca.crt'), 'check', '--read-data'], {
                env: resticEnv,
              })
            ).stdout;
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
      for (const service of ['init', 'storage-gateway', 'scheduler', 'catalog', 'agent'])
        expect(exits).toContain(`${service} 0`);
      await composeA.run(staged, [...CENTRAL, 'down']);
      // The NATS configuration as an earlier version wrote it, without the operations added since:
      // the init writes it as this version does before NATS starts.
      const natsConfig = secretFile('nats/nats-server.conf');
      const current = await readFile(natsConfig, 'utf8');
      await writeFile(natsConfig, withoutNewerOperations(current));
      await composeA.run(staged, [...CENTRAL, 'up', '-d', '--wait', '--pull', 'never']);
      expect(await readFile(natsConfig, 'utf8')).toBe(current);

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

  it('upgrades in place: the new init rewrites an older NATS configuration, and NATS restarts with it', async () => {
    await logsOnFailure(async () => {
      const natsConfig = secretFile('nats/nats-server.conf');
      const current = await readFile(natsConfig, 'utf8');
      await writeFile(natsConfig, withoutNewerOperations(current));
      const started = async () => {
        const id = (await composeA.run(staged, [...CENTRAL, 'ps', '-q', 'nats'])).trim();
        return (await docker(engineA, ['inspect', '-f', '{{.State.StartedAt}}', id])).trim();
      };
      const before = await started();
      // What an upgrade brings: another image for the volback services. Compose recreates them,
      // the init first; NATS (depends_on init, restart: true) is stopped and started after it.
      await docker(engineA, ['tag', IMAGE, 'volback:upgraded']);
      await writeEnvFile(staged, staged, { ...centralEnv, VOLBACK_IMAGE: 'volback:upgraded' });
      try {
        await composeA.run(staged, [...CENTRAL, 'up', '-d', '--wait', '--pull', 'never']);
        expect(await readFile(natsConfig, 'utf8')).toBe(current);
        expect(await started()).not.toBe(before);
      } finally {
        await writeEnvFile(staged, staged, centralEnv);
      }
    });
  }, 300_000);

  it('comes back on a new host from ./secrets and the repository alone (the event log restored from its own backup)', async () => {
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

      // README, "Restoring the whole system on a new host": ./secrets kept, the CLI of the init
      // service (the set-up's password, MinIO key and CA as files).
      await composeA.run(staged, [...CENTRAL, 'up', '-d', '--wait', '--pull', 'never', 'minio']);
      const repo = [...CENTRAL, 'run', '--rm', '-T'];
      const location = [
        '--repo',
        `s3:https://127.0.0.1:${ports.minio}/volback`,
        '--password-file',
        '/app/.volback/secrets/repository-password',
      ];
      // `run -v` takes a volume's full name (compose does not prefix it): create it as compose would.
      await docker(engineA, [
        'volume',
        'create',
        '--label',
        'com.docker.compose.project=volback',
        '--label',
        'com.docker.compose.volume=nats-data',
        'volback_nats-data',
      ]);
      const snapshots = JSON.parse(
        await composeA.run(staged, [...repo, 'init', 'volback', 'repo', 'snapshots', ...location, '--json']),
      ) as Array<{ id: string; time: string; paths: string[] }>;
      const latest = snapshots
        .filter((s) => s.paths.includes('/volumes/volback_nats-data'))
        .sort((a, b) => a.time.localeCompare(b.time))
        .at(-1)!;
      expect(latest.id).toBe(backup.snapshotId);
      const restored = await composeA.run(staged, [
        ...repo,
        '-v',
        'volback_nats-data:/restore',
        'init',
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
      expect(restored).toMatch(/restored [1-9]\d* files/);
      // What NATS will find in its store (said when the replay below does not come).
      const store = await docker(engineA, [
        'run',
        '--rm',
        '--network',
        'none',
        '-v',
        'volback_nats-data:/d:ro',
        engineA.image,
        'find',
        '/d',
        '-maxdepth',
        '5',
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
      ).catch((error: Error) => {
        throw new Error(`${error.message}\nrestore: ${restored}\nNATS store:\n${store}`, { cause: error });
      });
    });
  }, 600_000);
});
