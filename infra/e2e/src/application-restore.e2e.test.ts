import { execFile, spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { connectNats, drainNats, type NatsConnection } from '@volback/messaging';
import { startDockerEngine, startNatsServer, type DockerEngine, type NatsServer } from '@volback/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  CLI_MAIN,
  EventLog,
  startCatalogService,
  startOnDemandScheduler,
  startService,
  type CatalogProcess,
  type ServiceProcess,
} from './stack.ts';
import { runInVolume } from './volume-fixture.ts';

const run = promisify(execFile);
const PASSWORD = 'e2e-application-restore-password';
const WRITE_TOKEN = 'e2e-application-restore-token';
/** An image only engine A has at first: the dry run on B must say it is missing. */
const ONLY_ON_A = 'volback-test/shop-worker:1';

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}
interface SetBackup {
  backupId: string;
  phase: string;
  setId: string;
  quiescedContainers: string[];
  members: { volumeName: string; snapshotId: string; backupId: string }[];
}
interface RecreatedContainer {
  name: string;
  image: string;
  imagePresent: boolean;
  mounts: string[];
  networks: string[];
  restartPolicy: string;
  envCount: number;
  warnings: string[];
  outcome: string;
}
interface SetRestore {
  restoreId: string;
  hostId: string;
  phase: string;
  dryRun: boolean;
  members: { volumeName: string; target: { kind: string; volumeName: string } }[];
  containers: RecreatedContainer[];
  error: { code: string; reason: string } | null;
}

const LOOP = 'trap "exit 0" TERM; while true; do sleep 1; done';

describe('an application (two containers, two volumes) backed up as a set on engine A and recreated on engine B', () => {
  let nats: NatsServer;
  let engineA: DockerEngine;
  let engineB: DockerEngine;
  let nc: NatsConnection;
  let dir: string;
  let events: EventLog;
  let catalog: CatalogProcess;
  const services: ServiceProcess[] = [];
  let hostA: string;
  let hostB: string;
  let backup: SetBackup;

  const volback = (args: string[]): Promise<Run> =>
    new Promise((resolve) => {
      const child = spawn(process.execPath, [CLI_MAIN, ...args], {
        env: { ...process.env, VOLBACK_CATALOG_URL: catalog.url, VOLBACK_TOKEN: WRITE_TOKEN },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      let out = '';
      let err = '';
      child.stdout.on('data', (d: Buffer) => (out += d.toString()));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('close', (code) => resolve({ code, stdout: out, stderr: err }));
    });
  const json = <T>(result: Run): T => {
    expect(result.code, result.stderr + result.stdout).toBe(0);
    return JSON.parse(result.stdout) as T;
  };
  /** `docker` on one engine. */
  const docker = async (engine: DockerEngine, args: string[]): Promise<string> =>
    (await run('docker', args, { env: { ...process.env, DOCKER_HOST: engine.dockerHost } })).stdout;

  beforeAll(async () => {
    [nats, engineA, engineB] = await Promise.all([
      startNatsServer(),
      startDockerEngine(),
      startDockerEngine(),
    ]);
    dir = await mkdtemp(join(tmpdir(), 'volback-e2e-application-'));
    nc = await connectNats({ servers: [nats.url], name: 'e2e-application-restore' });
    events = new EventLog(nc);

    // The application on A, as compose would label it: web depends on db.
    const compose = (service: string) => ({
      'com.docker.compose.project': 'shop',
      'com.docker.compose.service': service,
    });
    for (const name of ['shop_db', 'shop_uploads']) {
      await engineA.docker.createVolume({ Name: name, Labels: { 'com.docker.compose.project': 'shop' } });
    }
    await runInVolume(engineA.docker, engineA.image, 'shop_db', 'echo "orders: 42" > /v/orders.txt');
    await runInVolume(
      engineA.docker,
      engineA.image,
      'shop_uploads',
      'echo logo > /v/logo.txt; dd if=/dev/urandom of=/v/photo.bin bs=1024 count=300 2>/dev/null; md5sum /v/photo.bin | cut -c1-32 > /v/photo.md5',
    );
    await docker(engineA, ['tag', engineA.image, ONLY_ON_A]);
    const db = await engineA.docker.createContainer({
      name: 'shop-db-1',
      Image: engineA.image,
      Cmd: ['sh', '-c', LOOP],
      Env: ['DB_PASSWORD=s3cret-never-in-events'],
      Healthcheck: { Test: ['CMD', 'test', '-d', '/data'], Interval: 1_000_000_000 },
      StopSignal: 'SIGINT',
      Labels: {
        ...compose('db'),
        'volback.consistency': 'stop',
        'volback.stop.timeout': '5',
        'volback.containers-json.env': 'exclude',
      },
      HostConfig: {
        NetworkMode: 'none',
        RestartPolicy: { Name: 'unless-stopped' },
        Binds: ['shop_db:/data'],
        Memory: 256 * 1024 * 1024,
        Ulimits: [{ Name: 'nofile', Soft: 512, Hard: 1024 }],
        CapAdd: ['NET_ADMIN'],
      },
    });
    const web = await engineA.docker.createContainer({
      name: 'shop-web-1',
      Image: engineA.image,
      Cmd: ['sh', '-c', LOOP],
      Env: ['GREETING=hello'],
      Labels: {
        ...compose('web'),
        'com.docker.compose.depends_on': 'db:service_started:false,worker:service_started:false',
        'volback.consistency': 'stop',
        'volback.stop.timeout': '5',
      },
      HostConfig: { NetworkMode: 'none', Binds: ['shop_uploads:/uploads', 'shop_db:/db:ro'] },
    });
    const worker = await engineA.docker.createContainer({
      name: 'shop-worker-1',
      Image: ONLY_ON_A,
      Cmd: ['sh', '-c', LOOP],
      Labels: {
        ...compose('worker'),
        'com.docker.compose.depends_on': 'db:service_started:false',
        'volback.consistency': 'pause',
      },
      HostConfig: { NetworkMode: 'none', Binds: ['shop_uploads:/work'] },
    });
    await Promise.all([db.start(), web.start(), worker.start()]);

    services.push(
      await startService(
        'gateway',
        'gateway-1',
        { VOLBACK_NATS_URL: nats.url, VOLBACK_REPOSITORY: join(dir, 'repo'), VOLBACK_PASSWORD: PASSWORD },
        dir,
      ),
    );
    catalog = await startCatalogService(
      'catalog-1',
      { VOLBACK_NATS_URL: nats.url, VOLBACK_CATALOG_WRITE_TOKEN: WRITE_TOKEN },
      join(dir, 'catalog'),
      dir,
    );
    services.push(catalog, await startOnDemandScheduler('scheduler-1', nats.url, dir));
    const agent = (name: string, engine: DockerEngine) =>
      startService(
        'agent',
        name,
        {
          VOLBACK_NATS_URL: nats.url,
          DOCKER_HOST: engine.dockerHost,
          VOLBACK_AGENT_STATE_DIR: join(dir, `${name}-state`),
          VOLBACK_HELPER_IMAGE: engine.image,
          VOLBACK_HOST_NAME: name,
        },
        dir,
      );
    services.push(await agent('host-a', engineA), await agent('host-b', engineB));
    const registered = (name: string) =>
      events.waitFor(`${name} to register`, (e) => {
        const d = e.data as { name?: string };
        return e.type === 'io.volback.host.registered.v1' && d.name === name;
      });
    hostA = ((await registered('host-a')).data as { hostId: string }).hostId;
    hostB = ((await registered('host-b')).data as { hostId: string }).hostId;
    // The catalog knows the set once it has projected the containers that make it.
    for (;;) {
      const sets = json<{ setId: string; containers: string[] }[]>(await volback(['sets', '--json']));
      if (sets.find((s) => s.setId === 'compose:shop')?.containers.length === 3) break;
      await new Promise((resolve) => setTimeout(resolve, 250));
    }
  }, 240_000);

  afterAll(async () => {
    events?.close();
    await Promise.allSettled(services.map((s) => s.stop()));
    if (nc) await drainNats(nc);
    await Promise.allSettled([engineA?.stop(), engineB?.stop(), nats?.stop()]);
    if (dir && !process.env['VOLBACK_E2E_KEEP']) await rm(dir, { recursive: true, force: true });
  });

  it('lists the compose project as a set with its volumes and containers', async () => {
    const sets = json<{ setId: string; hostId: string; volumes: string[]; containers: string[] }[]>(
      await volback(['sets', '--json']),
    );
    expect(sets).toEqual([
      expect.objectContaining({
        setId: 'compose:shop',
        hostId: hostA,
        volumes: ['shop_db', 'shop_uploads'],
        containers: ['shop-db-1', 'shop-web-1', 'shop-worker-1'],
      }),
    ]);
  });

  it('backs up the set at one point in time: dependents quiesced first, the database last, all resumed', async () => {
    backup = json<SetBackup>(await volback(['backup-set', 'shop', '--wait', '--json']));
    expect(backup.phase).toBe('Completed');
    expect(backup.quiescedContainers).toEqual(['shop-web-1', 'shop-worker-1', 'shop-db-1']);
    expect(backup.members.map((m) => m.volumeName)).toEqual(['shop_db', 'shop_uploads']);
    const started = events.events.find(
      (e) =>
        e.type === 'io.volback.backup.set-started.v1' && (e.data as SetBackup).backupId === backup.backupId,
    );
    expect(started).toBeDefined();
    // Each member is a backup of its own, completed while the set was quiesced.
    for (const member of backup.members) {
      const outcome = await events.outcome(member.backupId);
      expect(outcome.type).toBe('io.volback.backup.completed.v1');
    }
    for (const name of ['shop-db-1', 'shop-web-1', 'shop-worker-1']) {
      expect((await engineA.docker.getContainer(name).inspect()).State.Status).toBe('running');
    }
    // No event carries the env value the label excluded (nor any env value).
    expect(JSON.stringify(events.events)).not.toContain('s3cret-never-in-events');

    // restic users see the set: both snapshots share the set backup's tag.
    const { stdout } = await run(
      'restic',
      [
        '-r',
        join(dir, 'repo'),
        '--no-cache',
        'snapshots',
        '--json',
        '--tag',
        `volback-set:${backup.backupId}`,
      ],
      { env: { ...process.env, RESTIC_PASSWORD: PASSWORD } },
    );
    const tagged = JSON.parse(stdout) as { id: string; paths: string[]; tags: string[] }[];
    expect(tagged.map((s) => s.id).sort()).toEqual(backup.members.map((m) => m.snapshotId).sort());
    expect(tagged.every((s) => s.tags.includes('set:compose:shop'))).toBe(true);
  });

  it('a dry run on B lists the volumes and containers it would create, says which image is missing, and creates nothing', async () => {
    const plan = json<SetRestore>(
      await volback([
        'restore-set',
        'compose:shop',
        '--to-host',
        'host-b',
        '--recreate-containers',
        '--dry-run',
        '--json',
      ]),
    );
    expect(plan.phase).toBe('Completed');
    expect(plan.dryRun).toBe(true);
    expect(plan.members.map((m) => m.target)).toEqual([
      { kind: 'new-volume', volumeName: 'shop_db-restored' },
      { kind: 'new-volume', volumeName: 'shop_uploads-restored' },
    ]);
    // Start order: the database first, the dependents after it.
    expect(plan.containers.map((c) => c.name)).toEqual(['shop-db-1', 'shop-worker-1', 'shop-web-1']);
    const [db, worker, web] = plan.containers;
    expect(db).toMatchObject({
      outcome: 'would-create',
      imagePresent: true,
      restartPolicy: 'unless-stopped',
    });
    expect(db!.mounts).toEqual(['shop_db-restored:/data']);
    expect(db!.warnings.join('\n')).toContain('DB_PASSWORD left out');
    expect(web!.mounts.sort()).toEqual(['shop_db-restored:/db:ro', 'shop_uploads-restored:/uploads']);
    expect(web!.envCount).toBeGreaterThanOrEqual(1);
    expect(worker).toMatchObject({ outcome: 'failed', imagePresent: false });
    expect(worker!.warnings.join('\n')).toContain(`image ${ONLY_ON_A} is not on this host's engine`);

    const text = await volback([
      'restore-set',
      'shop',
      '--to-host',
      'host-b',
      '--recreate-containers',
      '--dry-run',
    ]);
    expect(text.code).toBe(0);
    expect(text.stdout).toContain('container shop-worker-1: NOT created');
    expect(text.stdout).toContain(`image ${ONLY_ON_A} (NOT on the engine)`);

    expect((await engineB.docker.listVolumes()).Volumes ?? []).toEqual([]);
    expect(await engineB.docker.listContainers({ all: true })).toEqual([]);
  });

  it('restores the set on B, recreates the containers, starts them, and their data is there from inside', async () => {
    await docker(engineB, ['tag', engineB.image, ONLY_ON_A]);
    const restored = json<SetRestore>(
      await volback([
        'restore-set',
        'shop',
        '--to-host',
        'host-b',
        '--recreate-containers',
        '--wait',
        '--json',
      ]),
    );
    expect(restored.error).toBeNull();
    expect(restored.phase).toBe('Completed');
    expect(restored.hostId).toBe(hostB);
    expect(restored.containers.map((c) => [c.name, c.outcome])).toEqual([
      ['shop-db-1', 'started'],
      ['shop-worker-1', 'started'],
      ['shop-web-1', 'started'],
    ]);

    const exec = (container: string, script: string) =>
      docker(engineB, ['exec', container, 'sh', '-c', script]);
    expect(await exec('shop-db-1', 'cat /data/orders.txt')).toBe('orders: 42\n');
    expect(await exec('shop-web-1', 'cat /uploads/logo.txt; cat /db/orders.txt')).toBe('logo\norders: 42\n');
    expect(
      await exec('shop-web-1', 'md5sum /uploads/photo.bin | cut -c1-32; cat /uploads/photo.md5'),
    ).toMatch(/^([0-9a-f]{32})\n\1\n$/);
    expect(await exec('shop-web-1', 'echo $GREETING')).toBe('hello\n');
    // The excluded value was not recorded, so it is not set; the name is in the warning.
    expect(await exec('shop-db-1', 'echo "[$DB_PASSWORD]"')).toBe('[]\n');
    await expect(exec('shop-web-1', 'touch /db/x')).rejects.toThrow(/Read-only/);

    const db = await engineB.docker.getContainer('shop-db-1').inspect();
    expect(db.HostConfig.RestartPolicy?.Name).toBe('unless-stopped');
    expect(db.HostConfig.NetworkMode).toBe('none');
    // Limits and the health check as recorded; an added capability is not granted again, but named.
    expect(db.Config.Healthcheck?.Test).toEqual(['CMD', 'test', '-d', '/data']);
    expect((db.Config as { StopSignal?: string }).StopSignal).toBe('SIGINT');
    expect(db.HostConfig.Memory).toBe(256 * 1024 * 1024);
    expect(db.HostConfig.Ulimits).toEqual([{ Name: 'nofile', Soft: 512, Hard: 1024 }]);
    expect(db.HostConfig.CapAdd ?? []).toEqual([]);
    expect(restored.containers.find((c) => c.name === 'shop-db-1')?.warnings.join('\n')).toContain(
      'cap-add NET_ADMIN',
    );
    expect(db.Config.Labels['com.docker.compose.project']).toBe('shop');
    expect(db.Config.Labels['io.volback.restore-id']).toBe(restored.restoreId);
    expect(db.Mounts.map((m) => m.Name)).toEqual(['shop_db-restored']);
  });

  it('restores the set in place on A: the volumes get the backup back, their containers stopped meanwhile and running after', async () => {
    const execA = (container: string, script: string) =>
      docker(engineA, ['exec', container, 'sh', '-c', script]);
    await execA('shop-db-1', 'echo "orders: 0 (a bad migration)" > /data/orders.txt');
    // B has the set too now (its recreated containers carry the compose labels): say which host.
    const ambiguous = await volback(['restore-set', 'shop', '--in-place', '--wait']);
    expect(ambiguous.code).not.toBe(0);
    expect(ambiguous.stderr).toContain('set compose:shop is on several hosts');
    const restored = json<SetRestore>(
      await volback(['restore-set', 'shop', '--host', 'host-a', '--in-place', '--wait', '--json']),
    );
    expect(restored.error).toBeNull();
    expect(restored.hostId).toBe(hostA);
    expect(restored.members.map((m) => m.target)).toEqual([
      { kind: 'existing-volume', volumeName: 'shop_db', stopContainers: true },
      { kind: 'existing-volume', volumeName: 'shop_uploads', stopContainers: true },
    ]);
    expect(restored.containers).toEqual([]);
    expect(await execA('shop-db-1', 'cat /data/orders.txt')).toBe('orders: 42\n');
    for (const name of ['shop-db-1', 'shop-web-1', 'shop-worker-1']) {
      expect((await engineA.docker.getContainer(name).inspect()).State.Status).toBe('running');
    }
  });
});
